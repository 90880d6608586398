import Foundation
import GRDB
import Testing
@testable import TillStore

/// The audit log's hash chain: whoever edits, deletes or moves an event with sqlite3 (after dropping the
/// append-only triggers) is named by `verifyAuditLog`.
@Suite final class AuditChainTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("till-audit-\(UUID().uuidString.prefix(8))").path

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// A store with events 1…5 (actions e1…e5).
    func storeWithFiveEvents() throws -> TillStore {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try TillStore(path: directory + "/till.sqlite")
        for n in 1...5 {
            try store.appendAudit(AuditEvent(actor: "test", terminalId: n == 3 ? 7 : nil, action: "e\(n)", detail: "event \(n)"))
        }
        return store
    }

    /// Tampers as someone with sqlite3 and write access would: the triggers first.
    func tamper(_ store: TillStore, _ sql: String) throws {
        try store.pool.writeWithoutTransaction { db in
            try db.execute(sql: """
                DROP TRIGGER audit_log_is_append_only_update;
                DROP TRIGGER audit_log_is_append_only_delete;
                \(sql)
                """)
        }
    }

    func broken(_ store: TillStore) throws -> AuditBreak? {
        guard case .broken(let found) = try store.verifyAuditLog() else { return nil }
        return found
    }

    @Test func anIntactLogIsCountedAndItsLastEventNamed() throws {
        let store = try storeWithFiveEvents()
        guard case .intact(let events, let head) = try store.verifyAuditLog() else {
            Issue.record("an untouched log was found broken")
            return
        }
        #expect(events == 5)
        #expect(head?.id == 5)
        let last = try store.pool.read { db in try String.fetchOne(db, sql: "SELECT hash FROM audit_log WHERE id = 5") }
        #expect(head?.hash == last)
    }

    @Test func anEditedEventIsNamed() throws {
        let store = try storeWithFiveEvents()
        try tamper(store, "UPDATE audit_log SET detail = 'nothing happened' WHERE id = 3")
        let found = try #require(try broken(store))
        #expect(found.kind == .edited && found.eventId == 3 && found.intactBefore == 2, "\(found)")
    }

    @Test func anEventEditedInAColumnLeftNullIsNamed() throws {
        let store = try storeWithFiveEvents()
        try tamper(store, "UPDATE audit_log SET terminal_id = NULL WHERE id = 3")
        #expect(try broken(store)?.eventId == 3)
    }

    @Test func anEventRewrittenWithAFreshHashIsNamedByTheLinkAfterIt() throws {
        let store = try storeWithFiveEvents()
        let rewritten = AuditChain.hash(previous: try store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT hash FROM audit_log WHERE id = 1")!
        }, ["0", "test", nil, "e2", nil, nil, nil, nil, nil, "nothing happened"])
        try tamper(store, "UPDATE audit_log SET at = 0, detail = 'nothing happened', hash = '\(rewritten)' WHERE id = 2")
        let found = try #require(try broken(store))
        #expect(found.kind == .edited && found.eventId == 2, "\(found)")
    }

    @Test func aDeletedEventIsNamed() throws {
        let store = try storeWithFiveEvents()
        try tamper(store, "DELETE FROM audit_log WHERE id = 2")
        let found = try #require(try broken(store))
        #expect(found.kind == .deleted && found.eventId == 2 && found.intactBefore == 1, "\(found)")
    }

    @Test func deletingTheFirstEventIsNamed() throws {
        let store = try storeWithFiveEvents()
        try tamper(store, "DELETE FROM audit_log WHERE id = 1")
        let found = try #require(try broken(store))
        #expect(found.kind == .deleted && found.eventId == 1, "\(found)")
    }

    @Test func reorderedEventsAreNamed() throws {
        let store = try storeWithFiveEvents()
        try tamper(store, """
            UPDATE audit_log SET id = -2 WHERE id = 2;
            UPDATE audit_log SET id = 2 WHERE id = 3;
            UPDATE audit_log SET id = 3 WHERE id = -2;
            """)
        let found = try #require(try broken(store))
        #expect(found.kind == .reordered && found.eventId == 2, "\(found)")
        #expect(found.description.contains("written after event 3"), "\(found)")
    }

    @Test func theAuditLogStaysAppendOnly() throws {
        let store = try storeWithFiveEvents()
        #expect(throws: DatabaseError.self) {
            try store.pool.write { db in try db.execute(sql: "UPDATE audit_log SET detail = 'x' WHERE id = 1") }
        }
        #expect(throws: DatabaseError.self) {
            try store.pool.write { db in try db.execute(sql: "DELETE FROM audit_log WHERE id = 5") }
        }
    }

    /// Events logged before the chain existed are chained by its migration, and the next event follows them.
    @Test func theMigrationChainsTheEventsAlreadyLogged() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/till.sqlite"
        let pool = try DatabasePool(path: path)
        try TillStore.migrator().migrate(pool, upTo: "0004_metrc_journal")
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO audit_log (id, at, actor, terminal_id, action, subject, detail) VALUES
                    (1, 1000, 'cli', NULL, 'terminal.added', 'front-1', 'register'),
                    (2, 2000, 'terminal:front-1', 1, 'sale.journaled', 'ABC-000001', 'total 35.00'),
                    (4, 3000, 'cli', NULL, 'terminal.revoked', 'front-1', NULL);
                """)
        }
        try pool.close()

        let store = try TillStore(path: path)
        #expect(try store.verifyAuditLog() == .intact(events: 3, head: (4, try store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT hash FROM audit_log WHERE id = 4")!
        })))
        let first = try store.pool.read { db in try Row.fetchOne(db, sql: "SELECT prev_hash, hash FROM audit_log WHERE id = 1")! }
        #expect(first["prev_hash"] as String == AuditChain.genesis)
        #expect(first["hash"] as String == AuditChain.hash(previous: AuditChain.genesis,
                                                            ["1000", "cli", nil, "terminal.added", nil, nil, nil, nil, "front-1", "register"]))
        try store.appendAudit(AuditEvent(actor: "test", action: "after"))
        guard case .intact(let events, _) = try store.verifyAuditLog() else {
            Issue.record("the chain broke at the first event after the migration")
            return
        }
        #expect(events == 4)
    }
}
