import Foundation
import MetrcSimulator
import Testing
import TillDomain

/// Sales made while earlier ones are still on their way to Metrc share the next POST.
@Suite struct SharedPostTests {
    /// Metrc takes this long for every receipt POST, so that the sales below find both POST slots busy.
    static let slowPost = SimFault(.latency(.milliseconds(400)), method: "POST", pathPrefix: "/sales/v2/receipts")

    @Test func salesMadeWhileMetrcIsBusyShareAPostAndAreEachReportedOnce() async throws {
        try await TillHarness.run { till in
            await till.simulation.setFaults([Self.slowPost])

            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for number in 0..<8 {
                    group.addTask { try await till.sell("shared-\(number)", quantity: "1") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }

            #expect(answers.allSatisfy { $0.status == 201 && $0["status"] as? String == "reported" })
            let ids = answers.compactMap { $0["metrcReceiptId"] as? Int }
            #expect(Set(ids).count == 8)
            let receipts = await till.simulation.receipts(license: TillHarness.license)
            #expect(receipts.count == 8)
            #expect(Set(receipts.map { Int($0.id) }) == Set(ids))
            // Two went at once; the six made meanwhile waited for a slot and went together.
            let posts = await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts")
            #expect(posts < 8)
            #expect(posts >= 3)
        }
    }

    @Test func aReceiptMetrcRefusesInASharedPostRefusesOnlyItsOwnSale() async throws {
        try await TillHarness.run { till in
            let other = "1A4FF0100000022000000102"
            let stockBefore = try #require(try till.localQuantity(other))
            // Metrc knows that package is empty (adjusted on its website); Till does not.
            await till.simulation.setPackageQuantity(license: TillHarness.license, label: other, quantity: 0)
            await till.simulation.setFaults([Self.slowPost])

            // Two sales take both POST slots; the four after them queue for one shared POST.
            let first = Task { try await [till.sell("busy-0", quantity: "1"), till.sell("busy-1", quantity: "1")] }
            try await Task.sleep(for: .milliseconds(100))
            async let good0 = till.sell("queued-0", quantity: "1")
            async let good1 = till.sell("queued-1", quantity: "1")
            async let doomed = till.sell("queued-doomed", label: other, quantity: "5")
            async let good2 = till.sell("queued-2", quantity: "1")
            let goods = try await [good0, good1, good2]
            let refused = try await doomed
            _ = try await first.value

            #expect(goods.allSatisfy { $0.status == 201 })
            #expect(refused.status == 422)
            #expect(refused.errorCode == "metrc_rejected")
            #expect(try till.localQuantity(other) == stockBefore)  // the register was told: the sale is undone
            let numbers = Set(await till.simulation.receipts(license: TillHarness.license).compactMap(\.externalReceiptNumber))
            #expect(numbers.count == 5)
            #expect(!numbers.contains(refused.error?["details"].flatMap { ($0 as? [String: Any])?["receiptNumber"] as? String } ?? ""))
        }
    }

    @Test func salesStillQueuedAtTheDeadlineGoToTheReporterAndAreReportedOnce() async throws {
        try await TillHarness.run(deadline: .milliseconds(200)) { till in
            // Every POST outlasts the deadline: however the five sales are batched (two may share the first POST
            // on a busy machine, freeing a slot for a third), none is answered in time.
            await till.simulation.setFaults([SimFault(.latency(.milliseconds(800)), method: "POST",
                                                      pathPrefix: "/sales/v2/receipts")])

            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for number in 0..<5 {
                    group.addTask { try await till.sell("late-\(number)", quantity: "1") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.allSatisfy { $0.status == 202 && $0["status"] as? String == "pending_report" })

            try await till.waitUntil("every sale is reported") {
                try till.services.store.reportingSummary().pending == 0
            }
            let receipts = await till.simulation.receipts(license: TillHarness.license)
            #expect(receipts.count == 5)
            #expect(Set(receipts.compactMap(\.externalReceiptNumber)) == Set(answers.compactMap { $0["receiptNumber"] as? String }))
        }
    }
}
