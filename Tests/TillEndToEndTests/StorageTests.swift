import Foundation
import GRDB
import MetrcSimulator
import Testing
import TillStore

/// A full disk or a read-only database: registers hear a clear 503, nothing is half-written, and Till goes on
/// by itself once the database can be written again. The database's writer is limited from the test, as a
/// full disk would limit it: `PRAGMA max_page_count` and `PRAGMA query_only` hold only for that connection.
@Suite struct StorageTests {
    /// The sales the database holds, and what their journal and audit log hold for them.
    static func recorded(_ store: TillStore) async throws -> (sales: Int, owed: Int, journaled: Int) {
        try await store.pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM sales")!,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM metrc_journal WHERE kind = 'receipt.create'")!,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_log WHERE action = 'sale.journaled'")!)
        }
    }

    @Test func salesOnAFullDiskAnswer503StorageFullAndGoOnOnceThereIsRoomAgain() async throws {
        try await TillHarness.run(deadline: .milliseconds(300)) { till in
            // Metrc down: nothing Till records meanwhile (a reported sale's journal row deleted) makes room again.
            await till.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil), method: "POST",
                                                      pathPrefix: "/sales/v2/receipts")])
            let store = till.services.store
            let before = try #require(try till.localQuantity(Labels.flower))
            try await store.pool.writeWithoutTransaction { db in
                let pages = try Int.fetchOne(db, sql: "PRAGMA page_count")!
                try db.execute(sql: "PRAGMA max_page_count = \(pages)")
            }
            var answered: [String] = []
            var refused: String?
            for n in 1...400 where refused == nil {
                let answer = try await till.sell("full-\(n)", quantity: "1", amount: "10.00")
                switch answer.status {
                case 202: answered.append("full-\(n)")
                case 503:
                    #expect(answer.errorCode == "storage_full", "\(answer.json)")
                    #expect((answer.error?["message"] as? String)?.contains("disk") == true)
                    refused = "full-\(n)"
                default: Issue.record("sale full-\(n) answered \(answer.status): \(answer.json)")
                }
            }
            let full = try #require(refused, "the capped database never filled up")

            // Nothing of the refused sale: only the answered ones, each whole, and their stock taken.
            let recorded = try await Self.recorded(store)
            #expect(recorded.sales == answered.count && recorded.owed == answered.count && recorded.journaled == answered.count)
            #expect(try till.localQuantity(Labels.flower) == before - Decimal(answered.count))
            guard case .intact = try store.verifyAuditLog() else {
                Issue.record("the audit chain broke")
                return
            }

            try await store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA max_page_count = 1073741823") }
            await till.simulation.clearFaults()
            let retried = try await till.sell(full, quantity: "1", amount: "10.00")
            #expect(retried.status == 201 || retried.status == 202, "\(retried.json)")
            answered.append(full)
            try await till.waitUntil("every answered sale is reported") {
                try store.reportingSummary().pending == 0
            }
            for clientSaleId in answered {
                let sale = try #require(try await store.pool.read { db in
                    try String.fetchOne(db, sql: "SELECT receipt_number FROM sales WHERE client_sale_id = ?", arguments: [clientSaleId])
                })
                #expect(await till.receiptsInMetrc(for: sale).count == 1, "\(clientSaleId)")
            }
            #expect(try till.localQuantity(Labels.flower) == before - Decimal(answered.count))
        }
    }

    @Test func salesOnAReadOnlyDatabaseAnswer503StorageReadOnlyAndGoOnOnceItIsWritable() async throws {
        try await TillHarness.run { till in
            let store = till.services.store
            try await store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = 1") }
            let refused = try await till.sell("read-only-1")
            #expect(refused.status == 503)
            #expect(refused.errorCode == "storage_read_only", "\(refused.json)")
            #expect(try await Self.recorded(store).sales == 0)

            try await store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = 0") }
            #expect(try await till.sell("read-only-1").status == 201)
            #expect(try await Self.recorded(store).sales == 1)
        }
    }
}
