import Foundation
import GRDB
import Testing
import TillStore

/// `till audit verify` as a manager or an inspector runs it, over the data folder `till serve` uses.
@Suite struct AuditCommandTests {
    @Test func auditVerifyCountsAnIntactLogAndNamesTheFirstTamperedEvent() async throws {
        try await TillProcessWorld.run { world in
            let till = try await world.launch()
            #expect([201, 202].contains(try await world.sell("audit-1").status))
            #expect(till.terminate(within: .seconds(15)) == 0)
            #expect(try await world.command(["terminals", "add", "manager-1", "--role", "manager"]).status == 0)
            #expect(try await world.command(["terminals", "revoke", "manager-1"]).status == 0)

            let store = try TillStore(path: world.directory + "/till.sqlite")
            let events = try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_log")! }
            #expect(events >= 4)
            let intact = try await world.command(["audit", "verify"])
            #expect(intact.status == 0)
            #expect(intact.output.hasPrefix("audit log intact: \(events) events checked; the last is event "), "\(intact.output)")

            // Someone with write access to the file hides the sale's audit event, as sqlite3 would let them.
            let sale = try await store.pool.read { db in
                try Int64.fetchOne(db, sql: "SELECT id FROM audit_log WHERE action = 'sale.journaled'")!
            }
            try await store.pool.writeWithoutTransaction { db in
                try db.execute(sql: """
                    DROP TRIGGER audit_log_is_append_only_update;
                    UPDATE audit_log SET subject = 'nothing' WHERE id = \(sale);
                    """)
            }
            let edited = try await world.command(["audit", "verify"])
            #expect(edited.status == 1)
            #expect(edited.output.hasPrefix("audit log broken: event \(sale) was edited"), "\(edited.output)")

            try await store.pool.writeWithoutTransaction { db in
                try db.execute(sql: """
                    DROP TRIGGER audit_log_is_append_only_delete;
                    DELETE FROM audit_log WHERE id = \(sale);
                    """)
            }
            let deleted = try await world.command(["audit", "verify"])
            #expect(deleted.status == 1)
            #expect(deleted.output.hasPrefix("audit log broken: event \(sale) was deleted"), "\(deleted.output)")
        }
    }
}
