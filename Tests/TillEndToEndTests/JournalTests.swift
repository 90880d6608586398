import Foundation
import MetrcKit
import MetrcSimulator
import Testing
import TillAPI
import TillDomain
import TillReporter
import TillStore

/// The Metrc journal end to end: writes in doubt settled only by their probe, a subject's order, refusals that
/// hold back their own subject only, and the duplicate sweep.
@Suite struct JournalTests {
    /// Metrc holds the POST past Till's request timeout, then applies it: Till's attempt ends without an answer,
    /// its lookup finds nothing yet, and it must not post again while that POST can still land.
    @Test func aPostThatOutlivesTheRequestTimeoutLeavesOneReceiptWithTheIdTheSaleShows() async throws {
        try await TillHarness.run(deadline: .milliseconds(300), metrcTimeout: .seconds(1), inDoubt: .seconds(4)) { till in
            await till.simulation.setFaults([SimFault(.holdThenApply(.milliseconds(2500)), method: "POST",
                                                      pathPrefix: "/sales/v2/receipts", times: 1)])
            let initial = try #require(await till.simulation.packageQuantity(license: TillHarness.license, label: Labels.flower))
            let answer = try await till.sell("held-1")
            #expect(answer.status == 202)
            let saleId = try #require(answer["id"] as? Int)
            let number = try #require(answer["receiptNumber"] as? String)

            // While the attempt may still land, Till says so, with its age.
            try await till.waitUntil("the write shows as in doubt") {
                let reporting = try await till.request("GET", "/v1/reporting", token: till.managerToken)
                let inDoubt = (reporting["journal"] as? [String: Any])?["inDoubt"] as? [[String: Any]] ?? []
                return inDoubt.first?["subject"] as? String == "sale:\(saleId)" && inDoubt.first?["ageSeconds"] is Int
            }
            // A sync meanwhile, once Metrc has applied the held POST: it must not take the sale a second time.
            try await till.waitUntil("Metrc applies the held POST", timeout: .seconds(10)) {
                await !till.receiptsInMetrc(for: number).isEmpty
            }
            try await till.services.sync.syncOnce(full: true)
            #expect(try till.localQuantity(Labels.flower) == initial - Decimal(string: "3.5")!)

            try await till.waitUntil("the sale is reported", timeout: .seconds(15)) {
                (try await till.request("GET", "/v1/sales/\(saleId)", token: till.registerToken))["status"] as? String == "reported"
            }
            let receipts = await till.receiptsInMetrc(for: number)
            #expect(receipts.count == 1)
            let sale = try await till.request("GET", "/v1/sales/\(saleId)", token: till.registerToken)
            #expect((sale["metrcReceiptId"] as? Int).map(Int64.init) == receipts.first?.id)
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 1)
            #expect(await till.simulation.packageQuantity(license: TillHarness.license, label: Labels.flower)
                == initial - Decimal(string: "3.5")!)
        }
    }

    /// The same, when Metrc never applies it: the write is sent again once its attempt can no longer land.
    @Test func aPostLostForGoodIsSentAgainOnceItCanNoLongerLand() async throws {
        try await TillHarness.run(deadline: .milliseconds(300), metrcTimeout: .seconds(1), inDoubt: .seconds(2)) { till in
            await till.simulation.setFaults([SimFault(.dropBeforeCommit, method: "POST", pathPrefix: "/sales/v2/receipts",
                                                      times: 1)])
            // Before the sale, not after its answer: under load the answer can come well after the journaling.
            let journaledAt = Date()
            let answer = try await till.sell("lost-1")
            #expect(answer.status == 202)
            let number = try #require(answer["receiptNumber"] as? String)
            try await till.waitUntil("the sale is reported", timeout: .seconds(15)) {
                try till.services.store.reportingSummary().pending == 0
            }
            #expect(Date().timeIntervalSince(journaledAt) >= 1.5)  // not before the window ended
            #expect(await till.receiptsInMetrc(for: number).count == 1)
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 2)
        }
    }

    @Test func aRefusedWriteHoldsBackOnlyTheLaterWritesOfItsOwnSubject() async throws {
        try await TillHarness.run(deadline: .milliseconds(300), runReporter: false) { till in
            let other = "1A4FF0100000022000000102"
            await till.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil),
                                                      method: "POST", pathPrefix: "/sales/v2/receipts")])
            let doomed = try await till.sell("doomed", label: other, quantity: "1")
            let fine = try await till.sell("fine", quantity: "1")
            let doomedId = Int64(try #require(doomed["id"] as? Int))
            let fineId = Int64(try #require(fine["id"] as? Int))
            // A finalize after each receipt's POST, in the same subject: it names the receipt by the Id Metrc
            // gives the POST.
            try till.services.store.appendJournal([
                (kind: .receiptFinalize, subject: .sale(doomedId), body: #"{"Id":null}"#),
                (kind: .receiptFinalize, subject: .sale(fineId), body: #"{"Id":null}"#),
            ], at: Date(), audit: AuditEvent(actor: "test", action: "test.finalize"))
            await till.simulation.setPackageOnHold(license: TillHarness.license, label: other, true)
            await till.simulation.clearFaults()

            let reporter = Task { try await till.services.reporter.run() }
            defer { reporter.cancel() }
            try await till.waitUntil("the other sale's receipt is finalized, and Till knows it") {
                await till.services.store.caughtUp()
                return try await till.simulation.receipts(license: TillHarness.license).first?.isFinal == true
                    && till.services.store.journalRows(subject: .sale(fineId)).isEmpty
            }
            let receipts = await till.simulation.receipts(license: TillHarness.license)
            #expect(receipts.map(\.externalReceiptNumber) == [fine["receiptNumber"] as? String])
            let journal = try till.services.store.journalSummary()
            #expect(journal.refused.map(\.subject) == [.sale(doomedId)])
            #expect(journal.refused.first?.refusal?.first?.contains("hold") == true)
            #expect(journal.blocked == 1)
            #expect(try till.services.store.journalRows(subject: .sale(doomedId)).map(\.kind) == [.receiptCreate, .receiptFinalize])
            // Held back for good: nothing of it is sent, however long the reporter runs.
            await till.services.reporter.drainOnce()
            #expect(await till.simulation.requestCount(method: "PUT", pathPrefix: "/sales/v2/receipts/finalize") == 1)
        }
    }

    @Test func aPlantedDuplicateIsArchivedByTheSweepKeepingTheRecordedIdAndForeignReceiptsAreUntouched() async throws {
        try await TillHarness.run { till in
            let initial = try #require(await till.simulation.packageQuantity(license: TillHarness.license, label: Labels.flower))
            let answer = try await till.sell("once")
            #expect(answer.status == 201)
            let recorded = Int64(try #require(answer["metrcReceiptId"] as? Int))
            let saleId = Int64(try #require(answer["id"] as? Int))
            let duplicate = try #require(await till.simulation.duplicateReceipt(id: recorded))
            // Another system's receipts, one number twice: not Till's to touch.
            let foreign = MetrcReceiptDraft(salesDateTime: MetrcLocalTime.format(Date(), in: till.services.metrc.timeZone),
                                            salesCustomerType: "Consumer", externalReceiptNumber: "WEB-000777",
                                            transactions: [MetrcTransactionDraft(packageLabel: "1A4FF0100000022000000102",
                                                                                 quantity: 1, unitOfMeasure: "Grams",
                                                                                 totalAmount: 10)])
            let foreignIds = try await till.services.metrc.postReceipts([foreign, foreign])

            // Till takes Metrc's doubled decrement for the truth until the duplicate is gone...
            try await till.services.sync.syncOnce(full: true)
            #expect(try till.localQuantity(Labels.flower) == initial - 7)

            let report = try await till.services.sweep.sweepOnce()
            #expect(report.archivesJournaled == 1)
            try await till.waitUntil("the duplicate is archived") {
                await till.simulation.receipt(id: duplicate.id)?.archived == true
            }
            #expect(await till.simulation.receipt(id: recorded)?.archived == false)
            for id in foreignIds { #expect(await till.simulation.receipt(id: id)?.archived == false) }
            #expect(try await till.services.sweep.sweepOnce().archivesJournaled == 0)  // nothing more to do
            #expect(try till.services.store.sale(id: saleId)?.metrcReceiptId == recorded)

            // ...and agrees with Metrc again at the next sync.
            #expect(await till.simulation.packageQuantity(license: TillHarness.license, label: Labels.flower) == initial - 3.5)
            try await till.services.sync.syncOnce(full: true)
            #expect(try till.localQuantity(Labels.flower) == initial - 3.5)

            let reporting = try await till.request("GET", "/v1/reporting", token: till.managerToken)
            #expect((reporting["journal"] as? [String: Any])?["duplicatesArchived"] as? Int == 1)
            #expect(try till.services.store.auditLog(action: "metrc.duplicate.found").count == 1)
            #expect(try till.services.store.auditLog(action: "metrc.receipt.archive.sent").count == 1)
        }
    }
}
