import Foundation
import GRDB
import Testing
import TillDomain
@testable import TillStore

@Suite struct StoreTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("till-store-\(UUID().uuidString.prefix(8))").path

    func openStore() throws -> TillStore {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try TillStore(path: directory + "/till.sqlite")
        try store.applyMetrcPackages([
            MetrcPackageState(label: "PKG-1", metrcId: 1, itemName: "Flower", category: "Buds", unit: "Grams", quantity: 10,
                              onHold: false, labTestingState: "TestPassed", active: true, lastModified: nil),
        ], fullSync: true)
        return store
    }

    func entry(_ id: String, quantity: Decimal = 1, digest: String = "d") throws -> JournalEntry {
        let line = SaleLineRequest(packageLabel: "PKG-1", quantity: quantity, unit: "Grams", totalAmount: Money(cents: 500))
        let request = SaleRequest(clientSaleId: id, customerType: .consumer, lines: [line])
        return JournalEntry(request: request, requestDigest: digest,
                            lines: [ValidatedLine(request: line, unitName: "Grams",
                                                  packageDecrementPicos: Quantities.picos(exactly: quantity)!)],
                            terminalId: nil, actor: "test", license: "LIC", soldAt: Date(),
                            salesDateTimeLocal: "2026-11-23T10:00:00.000", businessDate: "2026-11-23",
                            firstAttemptLease: Date().addingTimeInterval(60))
    }

    @Test func databaseIsWALWithFullSynchronousAndMigrated() async throws {
        let store = try openStore()
        let settings = try store.durabilitySettings()
        #expect(settings.journalMode == "wal")
        #expect(settings.synchronous == 2)  // FULL
        #expect(try TillStore.migrate(path: directory + "/till.sqlite") == ["0001_core", "0002_patients"])
        #expect(store.receiptPrefix.count == 6)
    }

    @Test func journalingTakesStockAndOwesAReport() async throws {
        let store = try openStore()
        guard case .recorded(let sale) = try await store.journal(entry("a", quantity: Decimal(string: "2.5")!)) else {
            Issue.record("expected a new sale")
            return
        }
        #expect(sale.status == .pendingReport)
        #expect(sale.receiptNumber == "\(store.receiptPrefix)-000001")
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == Decimal(string: "7.5"))
        #expect(try store.reportingSummary().pending == 1)
        #expect(try store.dueReports(now: Date(), limit: 10).isEmpty)  // leased to its first attempt
        #expect(try store.dueReports(now: Date().addingTimeInterval(120), limit: 10).map(\.sale.id) == [sale.id])
        #expect(try store.auditLog(action: "sale.journaled").count == 1)
    }

    @Test func theStockGuardInSQLRefusesAndRollsBackEverything() async throws {
        let store = try openStore()
        _ = try await store.journal(entry("a", quantity: 8))
        await #expect(throws: TillError.self) { try await store.journal(entry("b", quantity: 3)) }
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 2)
        #expect(try store.sale(clientSaleId: "b") == nil)
        #expect(try store.reportingSummary().pending == 1)
    }

    @Test func sameClientSaleIdReplaysAndADifferentBodyConflicts() async throws {
        let store = try openStore()
        _ = try await store.journal(entry("a"))
        guard case .replay = try await store.journal(entry("a")) else {
            Issue.record("expected a replay")
            return
        }
        await #expect(throws: TillError.self) { try await store.journal(entry("a", digest: "other")) }
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 9)
    }

    @Test func aRejectionToldToTheRegisterRestoresStock() async throws {
        let store = try openStore()
        guard case .recorded(let sale) = try await store.journal(entry("a", quantity: 4)) else { return }
        try store.recordRejected(saleId: sale.id, messages: ["Package is empty"], restoreStock: true, at: Date(),
                                 audit: AuditEvent(actor: "test", action: "metrc.receipt.rejected"))
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 10)
        let summary = try store.reportingSummary()
        #expect(summary.pending == 0)
        #expect(summary.rejected.map(\.rejection) == [["Package is empty"]])
    }

    @Test func syncSubtractsWhatUnreportedSalesTook() async throws {
        let store = try openStore()
        _ = try await store.journal(entry("a", quantity: 3))
        // Metrc still says 10: the sale has not reached it yet.
        try store.applyMetrcPackages([
            MetrcPackageState(label: "PKG-1", metrcId: 1, itemName: "Flower", category: "Buds", unit: "Grams", quantity: 10,
                              onHold: false, labTestingState: "TestPassed", active: true, lastModified: nil),
        ], fullSync: true)
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 7)
    }

    @Test func theAuditLogIsAppendOnly() async throws {
        let store = try openStore()
        try store.appendAudit(AuditEvent(actor: "test", action: "x"))
        #expect(throws: DatabaseError.self) {
            try store.pool.write { db in try db.execute(sql: "UPDATE audit_log SET actor = 'someone else'") }
        }
        #expect(throws: DatabaseError.self) {
            try store.pool.write { db in try db.execute(sql: "DELETE FROM audit_log") }
        }
    }

    @Test func terminalTokensAreStoredHashedAndCanBeRevoked() async throws {
        let store = try openStore()
        let (terminal, token) = try store.addTerminal(name: "front-1", role: .register)
        #expect(try store.terminal(token: token)?.id == terminal.id)
        let stored = try await store.pool.read { db in try String.fetchOne(db, sql: "SELECT token_hash FROM terminals") }
        #expect(stored != token)
        #expect(stored?.contains(token) == false)
        #expect(try store.revokeTerminal(name: "front-1"))
        #expect(try store.terminal(token: token) == nil)
    }
}

@Suite struct DigestTests {
    @Test func sha256HexMatchesTheKnownDigest() {
        #expect(sha256Hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(sha256Hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
