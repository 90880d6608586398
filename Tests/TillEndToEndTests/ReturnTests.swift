import Foundation
import MetrcKit
import MetrcSimulator
import Testing
import TillAPI
import TillDomain
import TillStore

/// Returns end to end over the socket, asserted against the simulator's receipts, packages and adjustments.
@Suite struct ReturnTests {
    static let preRoll = "1A4FF0100000022000000106"  // 100 Each
    static let shake = "1A4FF0100000022000000105"  // 453.6 Grams

    /// A two-line sale: 3.5 g of flower for 35.10 with 2.81 sales tax and a 1.00 discount, and 2 pre-rolls for 20.00.
    static let twoLines = """
        {"clientSaleId":"%@","customerType":"Consumer","lines":[
         {"packageLabel":"\(Labels.flower)","quantity":3.5,"unit":"Grams","totalAmount":35.10,"discountAmount":1.00,
          "taxes":{"salesTax":2.81}},
         {"packageLabel":"\(preRoll)","quantity":2,"unit":"Each","totalAmount":20.00}]}
        """

    func sell(_ till: TillHarness, _ body: String, id: String) async throws -> (id: Int, answer: Answer) {
        let answer = try await till.request("POST", "/v1/sales", body: String(format: body, id), token: till.registerToken)
        #expect([201, 202].contains(answer.status), "\(answer.json)")
        return (try #require(answer["id"] as? Int), answer)
    }

    func waitUntilReturnReported(_ till: TillHarness, saleId: Int, count: Int = 1) async throws {
        try await till.waitUntil("the return is reported") {
            let sale = try await till.request("GET", "/v1/sales/\(saleId)", token: till.managerToken)
            let returns = sale["returns"] as? [[String: Any]] ?? []
            return returns.count == count && returns.allSatisfy { $0["status"] as? String == "reported" }
        }
    }

    @Test func aPartialReturnEditsTheReceiptOnceWithTheRemainingLinesAndExactlyProratedMoney() async throws {
        try await TillHarness.run { till in
            let (saleId, answer) = try await sell(till, Self.twoLines, id: "partial-1")
            let receiptId = Int64(try #require(answer["metrcReceiptId"] as? Int))
            let before = try #require(await till.simulation.receipt(id: receiptId))
            let shelf = try #require(try till.localQuantity(Labels.flower))
            let metrcShelf = try #require(await till.simulation.packageQuantity(license: TillHarness.license, label: Labels.flower))

            let returned = try await till.returnSale(saleId, """
                {"clientReturnId":"r-partial-1","lines":[{"packageLabel":"\(Labels.flower)","quantity":1,"unit":"Grams"}],
                 "reason":"defective","disposition":"restock","note":"cracked jar"}
                """)
            #expect(returned.status == 202, "\(returned.json)")
            #expect(returned["metrcAction"] as? String == "update")
            #expect(returned["reason"] as? String == "Defective")  // as the facility spells it
            // 1 of 3.5 g: 35.10 × 1/3.5 = 10.0286 → 10.03; discount 0.2857 → 0.29; tax 0.8029 → 0.80.
            let line = try #require((returned["lines"] as? [[String: Any]])?.first)
            #expect((line["totalAmount"] as? NSNumber)?.decimalValue == Decimal(string: "10.03"))
            #expect((line["discountAmount"] as? NSNumber)?.decimalValue == Decimal(string: "0.29"))
            #expect(((line["taxes"] as? [String: Any])?["salesTax"] as? NSNumber)?.decimalValue == Decimal(string: "0.8"))
            try await waitUntilReturnReported(till, saleId: saleId)

            #expect(await till.simulation.requestCount(method: "PUT", pathPrefix: "/sales/v2/receipts") == 1)
            let after = try #require(await till.simulation.receipt(id: receiptId))
            #expect(after.transactions.map(\.quantity) == [Decimal(string: "2.5")!, 2])
            #expect(after.transactions.map(\.totalAmount) == [Decimal(string: "25.07")!, 20])
            #expect(after.transactions.first?.discountAmount == Decimal(string: "0.71"))
            #expect(after.transactions.first?.salesTax == Decimal(string: "2.01"))
            // Everything else as it was sent.
            #expect(after.salesDateTime == before.salesDateTime && after.externalReceiptNumber == before.externalReceiptNumber)
            #expect(after.salesCustomerType == before.salesCustomerType && !after.archived)
            // Restocked: back on Till's shelf at once, and on Metrc's package by the edit.
            #expect(try till.localQuantity(Labels.flower) == shelf + 1)
            #expect(await till.simulation.packageQuantity(license: TillHarness.license, label: Labels.flower) == metrcShelf + 1)
            let audit = try #require(try till.services.store.auditLog(action: "sale.returned").first)
            #expect(audit.event.actor == "terminal:manager-1")
            #expect(audit.event.detail?.contains("reason: Defective; to restock") == true)
        }
    }

    @Test func twoPartialReturnsOfALineThenTheRestStayExactAndTheLastArchivesTheReceipt() async throws {
        try await TillHarness.run { till in
            let (saleId, answer) = try await sell(till, """
                {"clientSaleId":"%@","customerType":"Consumer","lines":[
                 {"packageLabel":"\(Self.preRoll)","quantity":3,"unit":"Each","totalAmount":10.00}]}
                """, id: "thirds-1")
            let receiptId = Int64(try #require(answer["metrcReceiptId"] as? Int))
            var amounts: [Decimal] = []
            for (number, body) in [#""lines":[{"packageLabel":"\#(Self.preRoll)","quantity":1,"unit":"Each"}]"#,
                                   #""lines":[{"packageLabel":"\#(Self.preRoll)","quantity":1,"unit":"Each"}]"#,
                                   #""all":true"#].enumerated() {
                let returned = try await till.returnSale(saleId, #"{"clientReturnId":"r-thirds-\#(number)",\#(body),"reason":"Wrong item"}"#)
                #expect(returned.status == 202, "\(returned.json)")
                amounts.append(try #require((returned["totalAmount"] as? NSNumber)?.decimalValue))
                try await waitUntilReturnReported(till, saleId: saleId, count: number + 1)
            }
            // 10.00 / 3: 3.33, then 6.67 − 3.33 = 3.34, then the rest 3.33: never a cent lost or made.
            #expect(amounts == [Decimal(string: "3.33")!, Decimal(string: "3.34")!, Decimal(string: "3.33")!])
            #expect(await till.simulation.requestCount(method: "PUT", pathPrefix: "/sales/v2/receipts") == 2)
            #expect(await till.simulation.requestCount(method: "DELETE", pathPrefix: "/sales/v2/receipts") == 1)
            let receipt = try #require(await till.simulation.receipt(id: receiptId))
            #expect(receipt.archived)
            #expect(receipt.transactions.map(\.quantity) == [1])  // its last content, never an empty receipt
            let nothing = try await till.returnSale(saleId, #"{"clientReturnId":"r-thirds-9","all":true,"reason":"Wrong item"}"#)
            #expect(nothing.status == 422 && nothing.errorCode == "nothing_to_return")
            let day = try await till.request("GET", "/v1/sales", token: till.managerToken)
            #expect((day["totalAmount"] as? NSNumber)?.decimalValue == 0)
            #expect((day["returnedAmount"] as? NSNumber)?.decimalValue == 10)
        }
    }

    @Test func aReturnOfASaleNotYetSentChangesItsReceiptBeforeItGoesWithNoEditAtAll() async throws {
        // Metrc says "later" (a 429 that asks for longer than Till waits within a call): nothing was applied,
        // so the receipt is owed and not in doubt.
        try await TillHarness.run(deadline: .milliseconds(500), runReporter: false) { till in
            await till.simulation.setFaults([SimFault(.status(429, body: nil, retryAfterSeconds: 120), method: "POST",
                                                      pathPrefix: "/sales/v2/receipts")])
            let (partId, partAnswer) = try await sell(till, Self.twoLines, id: "unsent-1")
            let (allId, allAnswer) = try await sell(till, Self.twoLines, id: "unsent-2")
            #expect(partAnswer.status == 202 && allAnswer.status == 202)

            let part = try await till.returnSale(partId, """
                {"clientReturnId":"r-unsent-1","lines":[{"packageLabel":"\(Self.preRoll)","quantity":2,"unit":"Each"}],
                 "reason":"Customer changed mind"}
                """)
            #expect(part["metrcAction"] as? String == "folded" && part["status"] as? String == "pending_report")
            let all = try await till.returnSale(allId, #"{"clientReturnId":"r-unsent-2","all":true,"reason":"Customer changed mind"}"#)
            #expect(all["metrcAction"] as? String == "folded" && all.status == 201)
            #expect((try await till.request("GET", "/v1/sales/\(allId)", token: till.managerToken))["status"] as? String == "voided")

            await till.simulation.clearFaults()
            try await till.drainBacklog()
            let receipts = await till.simulation.receipts(license: TillHarness.license)
            #expect(receipts.count == 1)  // the voided sale never reaches Metrc
            #expect(receipts.first?.externalReceiptNumber == partAnswer["receiptNumber"] as? String)
            #expect(receipts.first?.transactions.map(\.packageLabel) == [Labels.flower])  // the POST carries the remainder
            #expect(await till.simulation.requestCount(method: "PUT") == 0)
            #expect(await till.simulation.requestCount(method: "DELETE") == 0)
            try await waitUntilReturnReported(till, saleId: partId)
        }
    }

    @Test func aReturnWaitsWhileTheSalesPostIsInDoubtThenEditsTheReceiptItMade() async throws {
        try await TillHarness.run(deadline: .milliseconds(300), metrcTimeout: .seconds(1), inDoubt: .seconds(4)) { till in
            await till.simulation.setFaults([SimFault(.holdThenApply(.milliseconds(2500)), method: "POST",
                                                      pathPrefix: "/sales/v2/receipts", times: 1)])
            let (saleId, answer) = try await sell(till, Self.twoLines, id: "doubt-1")
            #expect(answer.status == 202)
            try await till.waitUntil("the POST is in doubt") {
                try till.services.store.journalSummary().inDoubt.count == 1
            }
            let returned = try await till.returnSale(saleId, """
                {"clientReturnId":"r-doubt-1","lines":[{"packageLabel":"\(Self.preRoll)","quantity":1,"unit":"Each"}],"reason":"Defective"}
                """)
            #expect(returned["metrcAction"] as? String == "update" && returned.status == 202)
            try await waitUntilReturnReported(till, saleId: saleId)
            let receipts = await till.receiptsInMetrc(for: try #require(answer["receiptNumber"] as? String))
            #expect(receipts.count == 1)
            #expect(receipts.first?.transactions.map(\.quantity) == [Decimal(string: "3.5")!, 1])
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 1)
            #expect(await till.simulation.requestCount(method: "PUT", pathPrefix: "/sales/v2/receipts") == 1)
        }
    }

    @Test func anOverReturnOrALineNotOnTheSaleIsRefusedAndChangesNothing() async throws {
        try await TillHarness.run { till in
            let (saleId, _) = try await sell(till, Self.twoLines, id: "over-1")
            let shelf = try till.localQuantity(Self.preRoll)
            let over = try await till.returnSale(saleId, """
                {"clientReturnId":"r-over-1","lines":[{"packageLabel":"\(Labels.flower)","quantity":1,"unit":"Grams"},
                 {"packageLabel":"\(Self.preRoll)","quantity":3,"unit":"Each"}],"reason":"Defective","disposition":"restock"}
                """)
            #expect(over.status == 422 && over.errorCode == "return_exceeds_sale")
            #expect((over.error?["details"] as? [String: Any])?["line"] as? String == "1")
            #expect((over.error?["details"] as? [String: Any])?["remaining"] as? String == "2")
            let stranger = try await till.returnSale(saleId, """
                {"clientReturnId":"r-over-2","lines":[{"packageLabel":"\(Self.shake)","quantity":1,"unit":"Grams"}],"reason":"Defective"}
                """)
            #expect(stranger.status == 422 && stranger.errorCode == "line_not_on_sale")
            let unit = try await till.returnSale(saleId, """
                {"clientReturnId":"r-over-3","lines":[{"packageLabel":"\(Labels.flower)","quantity":0.1,"unit":"Ounces"}],"reason":"Defective"}
                """)
            #expect(unit.status == 422 && unit.errorCode == "return_unit_mismatch")
            let reason = try await till.returnSale(saleId, #"{"clientReturnId":"r-over-4","all":true,"reason":"bored"}"#)
            #expect(reason.status == 400 && reason.errorCode == "unknown_return_reason")
            let register = try await till.returnSale(saleId, #"{"clientReturnId":"r-over-5","all":true,"reason":"Defective"}"#,
                                                     token: till.registerToken)
            #expect(register.status == 403)  // TILL_REGISTER_RETURNS is off
            #expect(try till.services.store.returns(saleId: Int64(saleId)).isEmpty)
            #expect(try till.localQuantity(Self.preRoll) == shelf)
            #expect(try till.services.store.journalSummary().pending == 0)
            #expect(await till.simulation.requestCount(method: "PUT") == 0)
        }
    }

    @Test func aReturnReplayedIsTheSameReturnAndTheSameIdWithAnotherBodyIsAConflict() async throws {
        try await TillHarness.run(configure: { $0.registerReturns = true }) { till in
            let (saleId, _) = try await sell(till, Self.twoLines, id: "replay-1")
            let body = """
                {"clientReturnId":"r-replay-1","lines":[{"packageLabel":"\(Self.preRoll)","quantity":1,"unit":"Each"}],"reason":"Defective"}
                """
            let first = try await till.returnSale(saleId, body, token: till.registerToken)
            #expect(first.status == 202)
            // The same content, spelt otherwise: the same return.
            let again = try await till.returnSale(saleId, """
                { "reason" : "Defective", "lines":[{"unit":"Each","quantity":1.0,"packageLabel":"\(Self.preRoll)"}],
                  "clientReturnId":"r-replay-1" }
                """, token: till.registerToken)
            #expect([201, 202].contains(again.status))
            #expect(again["id"] as? Int == first["id"] as? Int)
            let other = try await till.returnSale(saleId, body.replacingOccurrences(of: #""quantity":1"#, with: #""quantity":2"#),
                                                  token: till.registerToken)
            #expect(other.status == 409 && other.errorCode == "client_return_id_reused")
            try await waitUntilReturnReported(till, saleId: saleId)
            #expect(try till.services.store.returns(saleId: Int64(saleId)).count == 1)
            #expect(await till.simulation.requestCount(method: "PUT", pathPrefix: "/sales/v2/receipts") == 1)
        }
    }

    @Test func quarantinedUnitsAreNotSellableAfterAFullSync() async throws {
        try await TillHarness.run { till in
            let (saleId, _) = try await sell(till, Self.twoLines, id: "quarantine-1")
            let shelf = try #require(try till.localQuantity(Self.preRoll))
            let metrcShelf = try #require(await till.simulation.packageQuantity(license: TillHarness.license, label: Self.preRoll))
            let returned = try await till.returnSale(saleId, """
                {"clientReturnId":"r-quarantine-1","lines":[{"packageLabel":"\(Self.preRoll)","quantity":2,"unit":"Each"}],
                 "reason":"Adverse reaction"}
                """)
            #expect(returned["disposition"] as? String == "quarantine")  // TILL_RETURN_DISPOSITION's default
            try await waitUntilReturnReported(till, saleId: saleId)
            // Metrc's package has them again (the edit gave them back); Till's shelf must not.
            #expect(await till.simulation.packageQuantity(license: TillHarness.license, label: Self.preRoll) == metrcShelf + 2)
            try await till.services.sync.syncOnce(full: true)
            #expect(try till.localQuantity(Self.preRoll) == shelf)
            let held = try await till.request("GET", "/v1/quarantine", token: till.managerToken)
            let packages = held["packages"] as? [[String: Any]] ?? []
            #expect(packages.count == 1 && packages.first?["packageLabel"] as? String == Self.preRoll)
            #expect((packages.first?["quantity"] as? NSNumber)?.decimalValue == 2)
        }
    }

    @Test func wasteIsReportedAsAPackageAdjustmentAndItsReasonsNoteIsRequired() async throws {
        try await TillHarness.run { till in
            let (saleId, _) = try await sell(till, Self.twoLines, id: "waste-1")
            let metrcShelf = try #require(await till.simulation.packageQuantity(license: TillHarness.license, label: Labels.flower))
            let returned = try await till.returnSale(saleId, """
                {"clientReturnId":"r-waste-1","lines":[{"packageLabel":"\(Labels.flower)","quantity":1.5,"unit":"Grams"}],
                 "reason":"Defective","disposition":"waste","note":"moldy"}
                """)
            #expect(returned.status == 202, "\(returned.json)")
            try await waitUntilReturnReported(till, saleId: saleId)
            let adjustments = await till.simulation.adjustments(license: TillHarness.license)
            #expect(adjustments.count == 1)
            #expect(adjustments.first?.packageLabel == Labels.flower)
            #expect(adjustments.first?.quantity == Decimal(string: "-1.5"))
            #expect(adjustments.first?.reason == "Waste")
            #expect(adjustments.first?.note?.contains("r-waste-1") == true)
            // Given back by the edit, taken off by the adjustment: Metrc counts what is on the shelf.
            #expect(await till.simulation.packageQuantity(license: TillHarness.license, label: Labels.flower) == metrcShelf)
            #expect(try till.services.store.heldStock().isEmpty)
        }
        try await TillHarness.run(configure: { $0.returns.wasteAdjustReason = "Damage" }) { till in
            let (saleId, _) = try await sell(till, Self.twoLines, id: "waste-2")
            let noNote = try await till.returnSale(saleId, """
                {"clientReturnId":"r-waste-2","all":true,"reason":"Defective","disposition":"waste"}
                """)
            #expect(noNote.status == 400 && noNote.errorCode == "note_required")
            #expect(try till.services.store.returns(saleId: Int64(saleId)).isEmpty)
        }
    }

    @Test func aPatientsAllowanceIsCreditedOnceMetrcHoldsTheReturn() async throws {
        try await TillHarness.run { till in
            // PT-LOW-0004 may buy 0.25 oz (7.087… g) of flower.
            func sell(_ id: String, grams: String) async throws -> Answer {
                try await till.request("POST", "/v1/sales", body: """
                    {"clientSaleId":"\(id)","customerType":"Patient","patientLicenseNumber":"PT-LOW-0004",
                     "lines":[{"packageLabel":"\(Labels.flower)","quantity":\(grams),"unit":"Grams","totalAmount":10.00}]}
                    """, token: till.registerToken)
            }
            let first = try await sell("allowance-1", grams: "7")
            #expect(first.status == 201, "\(first.json)")
            #expect(try await sell("allowance-2", grams: "1").errorCode == "allowance_exceeded")
            let saleId = try #require(first["id"] as? Int)
            _ = try await till.returnSale(saleId, """
                {"clientReturnId":"r-allowance-1","lines":[{"packageLabel":"\(Labels.flower)","quantity":2,"unit":"Grams"}],
                 "reason":"Adverse reaction"}
                """)
            try await waitUntilReturnReported(till, saleId: saleId)
            #expect(try await sell("allowance-3", grams: "1").status == 201)
        }
    }

    @Test func aReturnMetrcRefusesStaysVisibleWithMetrcsWords() async throws {
        try await TillHarness.run { till in
            let (saleId, answer) = try await sell(till, Self.twoLines, id: "refused-1")
            // Archived on the Metrc website behind Till's back: Metrc will not edit it.
            try await till.services.metrc.archiveReceipt(id: Int64(try #require(answer["metrcReceiptId"] as? Int)))
            _ = try await till.returnSale(saleId, """
                {"clientReturnId":"r-refused-1","lines":[{"packageLabel":"\(Self.preRoll)","quantity":1,"unit":"Each"}],"reason":"Defective"}
                """)
            try await till.waitUntil("Metrc refuses the return") {
                let reporting = try await till.request("GET", "/v1/reporting", token: till.managerToken)
                return (reporting["returns"] as? [String: Any])?["rejected"] as? Int == 1
            }
            let reporting = try await till.request("GET", "/v1/reporting", token: till.managerToken)
            let refused = ((reporting["journal"] as? [String: Any])?["refused"] as? [[String: Any]])?.first
            #expect(refused?["kind"] as? String == "receipt.update")
            #expect((refused?["messages"] as? [String])?.first?.contains("archived") == true)
            let sale = try await till.request("GET", "/v1/sales/\(saleId)", token: till.managerToken)
            let saleReturn = (sale["returns"] as? [[String: Any]])?.first
            #expect(saleReturn?["status"] as? String == "rejected")
            #expect((saleReturn?["rejection"] as? [String])?.first?.contains("archived") == true)
        }
    }
}
