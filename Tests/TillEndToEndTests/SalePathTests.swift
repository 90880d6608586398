import Foundation
import MetrcSimulator
import Testing
import TillDomain
import TillReporter
import TillStore

/// The sale path as registers feel it: over the socket, against a simulated Metrc.
@Suite struct SalePathTests {
    @Test func saleIsReportedToMetrcOnceAndStockIsTakenExactly() async throws {
        try await TillHarness.run { till in
            let before = try #require(try till.localQuantity(Labels.flower))
            let metrcBefore = try #require(await till.simulation.packageQuantity(license: TillHarness.license, label: Labels.flower))

            // Only Till's own user and group may talk to it.
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: till.socketPath)[.posixPermissions] as? Int)
            #expect(mode & 0o777 == 0o660)

            let answer = try await till.sell("sale-1", quantity: "3.5", amount: "35.10")

            #expect(answer.status == 201)
            #expect(answer["status"] as? String == "reported")
            let receiptNumber = try #require(answer["receiptNumber"] as? String)
            let metrcId = try #require(answer["metrcReceiptId"] as? Int)
            #expect((answer["totalAmount"] as? NSNumber)?.decimalValue == Decimal(string: "35.1"))
            let receipts = await till.receiptsInMetrc(for: receiptNumber)
            #expect(receipts.count == 1)
            #expect(receipts.first.map { Int($0.id) } == metrcId)
            #expect(receipts.first?.transactions.first?.quantity == Decimal(string: "3.5"))
            #expect(receipts.first?.transactions.first?.totalAmount == Decimal(string: "35.1"))
            #expect(try till.localQuantity(Labels.flower) == before - Decimal(string: "3.5")!)
            #expect(await till.simulation.packageQuantity(license: TillHarness.license, label: Labels.flower)
                    == metrcBefore - Decimal(string: "3.5")!)

            let fetched = try await till.request("GET", "/v1/sales/\(answer["id"] as? Int ?? 0)", token: till.registerToken)
            #expect(fetched.status == 200)
            #expect(fetched["status"] as? String == "reported")
            // The answer was built in memory; it must be exactly what the journal holds (the sale's page adds its returns).
            var page = fetched.json
            #expect((page.removeValue(forKey: "returns") as? [Any])?.isEmpty == true)
            #expect(NSDictionary(dictionary: page) == NSDictionary(dictionary: answer.json))
            // SalesDateTime went to Metrc as facility-local time without a zone.
            let salesDateTime = try #require(receipts.first?.salesDateTime)
            #expect(salesDateTime.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}/) != nil)
        }
    }

    @Test func registerRetryWithTheSameClientSaleIdMakesNoSecondSale() async throws {
        try await TillHarness.run { till in
            let first = try await till.sell("retry-1")
            let second = try await till.sell("retry-1")

            #expect(first.status == 201)
            #expect(second.status == 201)
            #expect(second["id"] as? Int == first["id"] as? Int)
            #expect(second["receiptNumber"] as? String == first["receiptNumber"] as? String)
            let receiptNumber = try #require(first["receiptNumber"] as? String)
            #expect(await till.receiptsInMetrc(for: receiptNumber).count == 1)
            #expect(await till.simulation.receipts(license: TillHarness.license).count == 1)

            let different = try await till.sell("retry-1", quantity: "1")
            #expect(different.status == 409)
            #expect(different.errorCode == "client_sale_id_reused")
        }
    }

    @Test func aTerminalRevokedByAnotherProcessCanSellNoMore() async throws {
        try await TillHarness.run { till in
            #expect(try await till.sell("before-revoke").status == 201)
            let stock = try till.localQuantity(Labels.flower)

            // `till terminals revoke` runs in a process of its own: its own connection to the same file.
            #expect(try TillStore(path: till.services.configuration.databasePath).revokeTerminal(name: "register-1"))

            let refused = try await till.sell("after-revoke")
            #expect(refused.status == 401)
            #expect(refused.errorCode == "invalid_token")
            #expect(try await till.sell("before-revoke").status == 401)  // not even a replay
            #expect(try till.services.store.sale(clientSaleId: "after-revoke") == nil)
            #expect(try till.localQuantity(Labels.flower) == stock)
            #expect(await till.simulation.receipts(license: TillHarness.license).count == 1)
            #expect(try await till.request("GET", "/v1/packages", token: till.registerToken).status == 401)
        }
    }

    @Test func twentyConcurrentRegistersNeverOversellAPackageOfTen() async throws {
        try await TillHarness.run { till in
            #expect(try till.localQuantity(Labels.tenEach) == 10)

            let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for register in 0..<20 {
                    group.addTask {
                        let answer = try await till.sell("concurrent-\(register)", label: Labels.tenEach, quantity: "1",
                                                         unit: "Each", amount: "12.00")
                        return (answer.status, answer.errorCode)
                    }
                }
                return try await group.reduce(into: [(Int, String?)]()) { $0.append($1) }
            }

            #expect(statuses.filter { $0.0 == 201 }.count == 10)
            #expect(statuses.filter { $0.0 == 422 }.allSatisfy { $0.1 == "insufficient_quantity" })
            #expect(statuses.filter { $0.0 == 422 }.count == 10)
            #expect(try till.localQuantity(Labels.tenEach) == 0)
            #expect(await till.simulation.packageQuantity(license: TillHarness.license, label: Labels.tenEach) == 0)
            #expect(await till.simulation.receipts(license: TillHarness.license).count == 10)
        }
    }

    @Test func saleStaysPendingWhileMetrcAnswers503AndIsThenReportedExactlyOnce() async throws {
        try await TillHarness.run(deadline: .milliseconds(500)) { till in
            await till.simulation.setFaults([SimFault(.status(503, body: "<html>Service Unavailable</html>", retryAfterSeconds: nil),
                                                      method: "POST", pathPrefix: "/sales/v2/receipts")])

            let answer = try await till.sell("outage-1")
            #expect(answer.status == 202)
            #expect(answer["status"] as? String == "pending_report")
            let id = try #require(answer["id"] as? Int)
            let receiptNumber = try #require(answer["receiptNumber"] as? String)
            let reporting = try await till.request("GET", "/v1/reporting", token: till.managerToken)
            #expect(reporting["pending"] as? Int == 1)

            // Metrc keeps failing for a while; the reporter keeps trying without giving up or duplicating.
            try await till.waitUntil("the reporter retried") {
                await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") >= 3
            }
            await till.simulation.clearFaults()
            try await till.waitUntil("the sale is reported") {
                try await till.request("GET", "/v1/sales/\(id)", token: till.registerToken)["status"] as? String == "reported"
            }
            #expect(await till.receiptsInMetrc(for: receiptNumber).count == 1)
            let after = try await till.request("GET", "/v1/reporting", token: till.managerToken)
            #expect(after["pending"] as? Int == 0)
        }
    }

    @Test func metrcCommittingThenDroppingTheConnectionStillLeavesExactlyOneReceipt() async throws {
        try await TillHarness.run { till in
            await till.simulation.setFaults([SimFault(.commitThenDrop, method: "POST", pathPrefix: "/sales/v2/receipts", times: 1)])

            let answer = try await till.sell("drop-1")
            #expect(answer.status == 202)
            let id = try #require(answer["id"] as? Int)
            let receiptNumber = try #require(answer["receiptNumber"] as? String)
            #expect(await till.receiptsInMetrc(for: receiptNumber).count == 1)  // Metrc did commit it

            try await till.waitUntil("the sale is reported") {
                try await till.request("GET", "/v1/sales/\(id)", token: till.registerToken)["status"] as? String == "reported"
            }
            let receipts = await till.receiptsInMetrc(for: receiptNumber)
            #expect(receipts.count == 1)
            let sale = try await till.request("GET", "/v1/sales/\(id)", token: till.registerToken)
            #expect(sale["metrcReceiptId"] as? Int == receipts.first.map { Int($0.id) })
            // The reporter asked before posting again, and never posted again.
            #expect(await till.simulation.requestCount(method: "GET", pathPrefix: "/sales/v2/receipts/external") >= 1)
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 1)
        }
    }

    @Test func aReadAfterTheAnswerSeesMetrcsIdEvenWhileItsWriteWaitsForTheWriter() async throws {
        try await TillHarness.run { till in
            await till.simulation.setFaults([SimFault(.latency(.milliseconds(400)), method: "POST",
                                                      pathPrefix: "/sales/v2/receipts", times: 1)])
            let sale = Task { try await till.sell("held-1") }
            // While the POST is out, a long write takes SQLite's writer: Metrc's answer is handed in, the
            // register hears it, and the write recording it waits.
            try await Task.sleep(for: .milliseconds(150))
            let writerFree = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                till.services.store.pool.writeWithoutTransaction { _ in Thread.sleep(forTimeInterval: 1) }
                writerFree.signal()
            }
            let answer = try await sale.value
            #expect(answer["status"] as? String == "reported")
            let id = try #require(answer["id"] as? Int)
            let fetched = try await till.request("GET", "/v1/sales/\(id)", token: till.registerToken)
            #expect(fetched["status"] as? String == "reported")
            #expect(fetched["metrcReceiptId"] as? Int == answer["metrcReceiptId"] as? Int)
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async { writerFree.wait(); continuation.resume() }
            }
        }
    }

    @Test func anAnswerThatCouldNotBeRecordedIsFoundInMetrcWithTheIdTheRegisterHeard() async throws {
        try await TillHarness.run { till in
            // The register hears Metrc's answer before the write recording it commits; make that write fail.
            try await till.services.store.pool.writeWithoutTransaction { db in
                try db.execute(sql: """
                    CREATE TEMP TRIGGER refuse_recording BEFORE UPDATE OF metrc_receipt_id ON sales
                    BEGIN SELECT RAISE(ABORT, 'disk trouble'); END
                    """)
            }
            let answer = try await till.sell("unrecorded-1")
            #expect(answer.status == 201)
            #expect(answer["status"] as? String == "reported")
            let id = try #require(answer["id"] as? Int)
            let heardId = try #require(answer["metrcReceiptId"] as? Int)
            let unrecorded = try await till.request("GET", "/v1/sales/\(id)", token: till.registerToken)
            #expect(unrecorded["status"] as? String == "pending_report")  // Metrc holds it; Till has yet to record it

            try await till.services.store.pool.writeWithoutTransaction { db in
                try db.execute(sql: "DROP TRIGGER temp.refuse_recording")
            }
            // By itself, within the retry delays, not at the end of the first attempt's lease (a minute).
            try await till.waitUntil("the sale is reported") {
                try await till.request("GET", "/v1/sales/\(id)", token: till.registerToken)["status"] as? String == "reported"
            }
            let sale = try await till.request("GET", "/v1/sales/\(id)", token: till.registerToken)
            #expect(sale["metrcReceiptId"] as? Int == heardId)
            let receiptNumber = try #require(answer["receiptNumber"] as? String)
            #expect(await till.receiptsInMetrc(for: receiptNumber).count == 1)
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 1)
            #expect(try till.services.store.auditLog(action: "metrc.receipt.create.found").count == 1)
        }
    }

    @Test func metrcRefusingTheReceiptRefusesTheSaleAndRestoresStock() async throws {
        try await TillHarness.run { till in
            let before = try #require(try till.localQuantity(Labels.flower))
            // Metrc knows less stock than Till does (someone adjusted it on the Metrc website): it refuses.
            await till.simulation.setPackageQuantity(license: TillHarness.license, label: Labels.flower, quantity: 1)

            let answer = try await till.sell("refused-1", quantity: "3.5")

            #expect(answer.status == 422)
            #expect(answer.errorCode == "metrc_rejected")
            let message = try #require(answer.error?["message"] as? String)
            #expect(message.hasPrefix("Metrc refused the sale:"))
            #expect(try till.localQuantity(Labels.flower) == before)
            #expect(await till.simulation.receipts(license: TillHarness.license).isEmpty)

            let reporting = try await till.request("GET", "/v1/reporting", token: till.managerToken)
            #expect(reporting["pending"] as? Int == 0)
            let rejected = try #require(reporting["rejected"] as? [[String: Any]])
            #expect(rejected.count == 1)
            #expect((rejected.first?["messages"] as? [String])?.isEmpty == false)

            // The register retrying the same sale hears the same refusal; nothing is sent again.
            let retry = try await till.sell("refused-1", quantity: "3.5")
            #expect(retry.status == 422)
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 1)
        }
    }

    @Test func aBacklogOfOneHundredSalesDrainsInBatchesOfTen() async throws {
        try await TillHarness.run(deadline: .milliseconds(300), runReporter: false) { till in
            await till.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil),
                                                      method: "POST", pathPrefix: "/sales/v2/receipts")])
            for number in 0..<100 {
                let answer = try await till.sell("backlog-\(number)", quantity: "1")
                #expect(answer.status == 202)
            }
            await till.simulation.clearFaults()
            await till.simulation.resetCounters()

            try await till.drainBacklog()

            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 10)
            let receipts = await till.simulation.receipts(license: TillHarness.license)
            #expect(receipts.count == 100)
            #expect(Set(receipts.compactMap(\.externalReceiptNumber)).count == 100)
        }
    }

    @Test func whenMetrcAnswersAgainTheSalesWaitingOutABackoffGoAtOnceInFullPOSTs() async throws {
        // A minute's backoff: without being brought forward, nothing below would go within the test's wait.
        let slowRetry = RetryPolicy(base: .seconds(60), cap: .seconds(60), jitter: 0)
        try await TillHarness.run(deadline: .milliseconds(300), retry: slowRetry) { till in
            await till.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil),
                                                      method: "POST", pathPrefix: "/sales/v2/receipts")])
            for number in 0..<12 {
                #expect(try await till.sell("outage-\(number)", quantity: "1").status == 202)
            }
            try await till.waitUntil("every failed first attempt is recorded") {
                let waiting = try till.services.store.dueJournal(now: .distantFuture, limit: 100)
                return waiting.count == 12 && waiting.allSatisfy { $0.lastError != nil }
            }
            await till.simulation.clearFaults()
            await till.simulation.resetCounters()

            // The next sale finds Metrc back: the twelve go now, looked up first (a 503 may have been applied).
            #expect(try await till.sell("back-again", quantity: "1").status == 201)
            try await till.waitUntil("the backlog drains", timeout: .seconds(10)) {
                try till.services.store.reportingSummary().pending == 0
            }
            let receipts = await till.simulation.receipts(license: TillHarness.license)
            #expect(receipts.count == 13)
            #expect(Set(receipts.compactMap(\.externalReceiptNumber)).count == 13)
            // The fresh sale's POST, then the backlog in one POST of 10 and one of 2.
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 3)
        }
    }

    @Test func oneReceiptMetrcRefusesInABacklogBatchNeverHoldsUpTheOthers() async throws {
        try await TillHarness.run(deadline: .milliseconds(300), runReporter: false) { till in
            let other = "1A4FF0100000022000000102"
            await till.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil),
                                                      method: "POST", pathPrefix: "/sales/v2/receipts")])
            for number in 0..<9 {
                #expect(try await till.sell("batch-\(number)", quantity: "1").status == 202)
            }
            let doomed = try await till.sell("batch-doomed", label: other, quantity: "5")
            #expect(doomed.status == 202)
            let stockAfterSale = try #require(try till.localQuantity(other))
            // Someone empties that package on the Metrc website meanwhile: Metrc will refuse that one receipt.
            await till.simulation.setPackageQuantity(license: TillHarness.license, label: other, quantity: 0)
            await till.simulation.clearFaults()
            await till.simulation.resetCounters()

            try await till.drainBacklog()

            let receipts = await till.simulation.receipts(license: TillHarness.license)
            #expect(receipts.count == 9)
            #expect(!receipts.contains { $0.externalReceiptNumber == doomed["receiptNumber"] as? String })
            // The refused batch of 10 went again at once without the bad receipt: two POSTs in all.
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 2)
            let reporting = try await till.request("GET", "/v1/reporting", token: till.managerToken)
            let rejected = try #require(reporting["rejected"] as? [[String: Any]])
            #expect(rejected.count == 1)
            #expect(rejected.first?["saleUndone"] as? Bool == false)  // the register was told it stands
            #expect(try till.localQuantity(other) == stockAfterSale)
        }
    }
}

