import Foundation
import GRDB
import Synchronization
import Testing
import TillDomain
import TillMigrations
@testable import TillStore

/// A class so that each test's folder (database and WAL) is removed when the test is done.
@Suite final class StoreTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("till-store-\(UUID().uuidString.prefix(8))").path

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func openStore() throws -> TillStore {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try TillStore(path: directory + "/till.sqlite")
        try store.applyMetrcPackages([
            MetrcPackageState(label: "PKG-1", metrcId: 1, itemName: "Flower", category: "Buds", unit: "Grams", quantity: 10,
                              onHold: false, labTestingState: "TestPassed", active: true, lastModified: nil),
        ], fullSync: true)
        return store
    }

    /// - Parameter rulesSee: the stock the sale's rules are shown instead of the stored one, so that only
    ///   the journal's SQL guard stands between the sale and an oversold package.
    func entry(_ id: String, quantity: Decimal = 1, digest: String = "d", terminal: Int64? = nil,
               rulesSee stock: Decimal? = nil) throws -> JournalEntry {
        let line = SaleLineRequest(packageLabel: "PKG-1", quantity: quantity, unit: "Grams", totalAmount: Money(cents: 500))
        let request = SaleRequest(clientSaleId: id, customerType: .consumer, lines: [line])
        return JournalEntry(request: request, requestDigest: digest,
                            validate: { packages throws(TillError) in
                                try SaleRules.validate(request, packages: packages.mapValues { package in
                                    var seen = package
                                    seen.quantity = stock ?? package.quantity
                                    return seen
                                })
                            },
                            terminalId: terminal, actor: "test", license: "LIC", soldAt: Date(),
                            salesDateTimeLocal: "2026-11-23T10:00:00.000", businessDate: "2026-11-23",
                            firstAttemptLease: Date().addingTimeInterval(60), receiptBody: Self.receiptBody)
    }

    /// What the journal holds for a sale's receipt in these tests (the reporter journals MetrcKit's JSON).
    @Sendable static func receiptBody(_ sale: Sale) -> String {
        #"{"ExternalReceiptNumber":"\#(sale.receiptNumber)"}"#
    }

    @Test func databaseIsWALWithFullSynchronousAndMigrated() async throws {
        let store = try openStore()
        let settings = try store.durabilitySettings()
        #expect(settings.journalMode == "wal")
        #expect(settings.synchronous == 2)  // FULL
        // Every file of Migrations/sql, in order.
        let applied = try TillStore.migrate(path: directory + "/till.sqlite")
        #expect(applied == (try SQLMigrations.all().map(\.name)))
        #expect(applied == ["0001_core", "0002_patients", "0003_patient_sales_any_case", "0004_metrc_journal", "0005_audit_chain",
                           "0006_returns", "0007_days", "0008_deliveries"])
        #expect(store.receiptPrefix.count == 6)
    }

    @Test func journalingTakesStockAndOwesAReport() async throws {
        let store = try openStore()
        guard case .recorded(let sale, let row) = try await store.journal(entry("a", quantity: Decimal(string: "2.5")!)) else {
            Issue.record("expected a new sale")
            return
        }
        #expect(sale.status == .pendingReport)
        #expect(sale.receiptNumber == "\(store.receiptPrefix)-000001")
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == Decimal(string: "7.5"))
        #expect(try store.reportingSummary().pending == 1)
        // Its receipt's POST, journaled with it: the body as given, in doubt from now (about to be sent).
        #expect(row.kind == .receiptCreate && row.subject == .sale(sale.id) && row.seq == 1 && row.inDoubt)
        #expect(row.body == Self.receiptBody(sale))
        #expect(try store.journalRows(subject: .sale(sale.id)) == [row])
        #expect(try store.dueJournal(now: Date(), limit: 10).isEmpty)  // leased to its first attempt
        #expect(try store.dueJournal(now: Date().addingTimeInterval(120), limit: 10).map(\.id) == [row.id])
        #expect(try store.auditLog(action: "sale.journaled").count == 1)
    }

    @Test func theStockGuardInSQLRefusesAndRollsBackEverything() async throws {
        let store = try openStore()
        _ = try await store.journal(entry("a", quantity: 8))
        // The rules pass (they are shown plenty), the sale row is written, then the UPDATE's guard refuses:
        // the journal's lone transaction is rolled back whole.
        await #expect(throws: TillError.self) { try await store.journal(entry("b", quantity: 3, rulesSee: 100)) }
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

    @Test func concurrentJournalsShareCommitsAndARefusedOneUndoesOnlyItself() async throws {
        let store = try openStore()  // PKG-1 holds 10 g
        let commits = CommitCounter()
        try await store.pool.writeWithoutTransaction { db in db.add(transactionObserver: commits, extent: .databaseLifetime) }
        // Hold the writer so that the journals arrive while it is busy, as registers' sales do under load.
        // A thread of its own: a task would take one of the few threads the journals need to run at all.
        let released = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            store.pool.writeWithoutTransaction { _ in Thread.sleep(forTimeInterval: 0.3) }
            released.signal()
        }
        try await Task.sleep(for: .milliseconds(50))
        let recorded = await withTaskGroup(of: Bool.self) { group in
            for number in 0..<30 {
                let entry = try! self.entry("group-\(number)")
                // Off the shared cooperative pool, which other suites running alongside may keep busy: the
                // journals must really be concurrent for this test to mean anything.
                group.addTask(executorPreference: GCDExecutor.shared) { (try? await store.journal(entry)) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        released.wait()

        #expect(recorded == 10)  // the other twenty found the package sold out, each alone
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 0)
        #expect(try store.reportingSummary().pending == 10)
        #expect(try store.auditLog(action: "sale.journaled").count == 10)
        #expect(commits.count < 10)  // one commit each would be ten
        let numbers = try (1...10).map { try #require(try store.sale(id: Int64($0))?.receiptNumber) }
        #expect(Set(numbers).count == 10)
    }

    @Test func metrcsAnswerIsRecordedWithoutLoweringTheWritersDurability() async throws {
        let store = try openStore()
        guard case .recorded(let sale, let row) = try await store.journal(entry("a")) else {
            Issue.record("expected a new sale")
            return
        }
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        await store.recordApplied([(row: row, metrcId: 42)], at: Date(),
                                  audit: AuditEvent(actor: "test", action: "metrc.receipt.create.sent"),
                                  meanwhile: { _ in }, completion: { result in outcome.withLock { $0 = result } })
        await store.caughtUp()
        try #require(outcome.withLock { $0 }).get()
        #expect(try store.sale(id: sale.id)?.metrcReceiptId == 42)
        #expect(try store.journalRows(subject: .sale(sale.id)).isEmpty)  // nothing more owed
        #expect(try store.durabilitySettings().synchronous == 2)  // FULL again for every other write
    }

    @Test func anAnswerRecordedWithoutWaitingIsSeenByAReadThatCatchesUp() async throws {
        let store = try openStore()
        guard case .recorded(let sale, let row) = try await store.journal(entry("a")) else {
            Issue.record("expected a new sale")
            return
        }
        // A commit in progress until the test lets it go, so that the recording queues behind it as it
        // does under load.
        let committing = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let slowCommit = Task(executorPreference: GCDExecutor.shared) {
            try await store.committer.write(.unsynced) { _ in
                committing.signal()
                release.wait()
            }
        }
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { committing.wait(); continuation.resume() }
        }
        var heardAt: Date?
        await store.recordApplied([(row: row, metrcId: 42)], at: Date(),
                                  audit: AuditEvent(actor: "test", action: "metrc.receipt.create.sent"),
                                  meanwhile: { heardAt = $0 }, completion: { _ in })
        #expect(heardAt != nil)  // told before the commit…
        #expect(try store.sale(id: sale.id)?.status == .pendingReport)  // …which a plain read does not see yet

        release.signal()
        await store.caughtUp()
        let recorded = try #require(try store.sale(id: sale.id))
        #expect(recorded.status == .reported)
        #expect(recorded.metrcReceiptId == 42)
        #expect(recorded.reportedAt == heardAt)  // what the register heard is what is stored
        try await slowCommit.value
        await store.caughtUp()  // nothing handed in: returns at once
    }

    @Test func aRejectionToldToTheRegisterRestoresStock() async throws {
        let store = try openStore()
        guard case .recorded(let sale, let row) = try await store.journal(entry("a", quantity: 4)) else { return }
        try store.recordRefused(row, messages: ["Package is empty"], restoreStock: true, at: Date(),
                                audit: AuditEvent(actor: "test", action: "metrc.receipt.create.refused"))
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 10)
        let summary = try store.reportingSummary()
        #expect(summary.pending == 0)
        #expect(summary.rejected.map(\.rejection) == [["Package is empty"]])
        // The refused write stays, with Metrc's words, for a person to see.
        let refused = try store.journalSummary().refused
        #expect(refused.map(\.id) == [row.id])
        #expect(refused.first?.refusal == ["Package is empty"])
    }

    @Test func syncSubtractsWhatReceiptsNotYetSentTake() async throws {
        let store = try openStore()
        guard case .recorded(_, let row) = try await store.journal(entry("a", quantity: 3)) else { return }
        // Never sent (handed over unsent): Metrc surely does not show it.
        try store.recordJournalFailure([row.id], message: "not sent", inDoubt: false, nextAttemptAt: Date(), at: Date())
        try store.applyMetrcPackages([Self.metrcSays(10)], fullSync: true)
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 7)
    }

    @Test func aSyncLeavesAPackageWithAWriteInDoubtAsJournaled() async throws {
        let store = try openStore()
        _ = try await store.journal(entry("a", quantity: 3))  // in doubt: its POST may or may not have landed
        try store.applyMetrcPackages([Self.metrcSays(10)], fullSync: true)  // not landed (yet)
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 7)
        try store.applyMetrcPackages([Self.metrcSays(7)], fullSync: true)  // landed
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 7)
        try store.applyMetrcPackages([Self.metrcSays(4)], fullSync: true)  // landed twice: a duplicate, not the truth
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 7)
    }

    @Test func aSyncNeverTakesTwiceWhatMetrcAlreadyHolds() async throws {
        let store = try openStore()
        guard case .recorded(_, let row) = try await store.journal(entry("a", quantity: 3)) else { return }
        let syncBegan = Date()
        await store.recordApplied([(row: row, metrcId: 42)], at: Date(), audit: AuditEvent(actor: "test", action: "x"),
                                  meanwhile: { _ in }, completion: { _ in })
        await store.caughtUp()
        // Reported while the sync was reading: Metrc's figure may or may not show it, so it is left alone.
        try store.applyMetrcPackages([Self.metrcSays(10)], fullSync: true, readSince: syncBegan)
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 7)
        // A later sync reads Metrc after the receipt landed: Metrc's figure is the truth, nothing subtracted.
        try store.applyMetrcPackages([Self.metrcSays(7)], fullSync: true, readSince: Date())
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 7)
        try store.applyMetrcPackages([Self.metrcSays(8)], fullSync: true, readSince: Date())  // adjusted on the website
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 8)
    }

    static func metrcSays(_ quantity: Decimal) -> MetrcPackageState {
        MetrcPackageState(label: "PKG-1", metrcId: 1, itemName: "Flower", category: "Buds", unit: "Grams", quantity: quantity,
                          onHold: false, labTestingState: "TestPassed", active: true, lastModified: nil)
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

    @Test func aPatientsPurchasesAreFoundInAnyCaseThroughTheIndex() async throws {
        let store = try openStore()
        let line = SaleLineRequest(packageLabel: "PKG-1", quantity: 2, unit: "Grams", totalAmount: Money(cents: 500))
        let request = SaleRequest(clientSaleId: "m-1", customerType: .patient, lines: [line], patientLicenseNumber: "pt-low-0004")
        _ = try await store.journal(JournalEntry(
            request: request, requestDigest: "d",
            validate: { packages throws(TillError) in try SaleRules.validate(request, packages: packages) },
            terminalId: nil, actor: "test", license: "LIC", soldAt: Date(), salesDateTimeLocal: "2026-11-23T10:00:00.000",
            businessDate: "2026-11-23", firstAttemptLease: Date().addingTimeInterval(60), receiptBody: Self.receiptBody))
        let bought = try store.patientPurchases(patientLicenseNumber: "PT-LOW-0004", since: Date().addingTimeInterval(-60))
        #expect(bought.map(\.line.quantity) == [2])
        #expect(bought.first?.package.label == "PKG-1")
        let plan = try await store.pool.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + TillStore.patientSalesSQL, arguments: ["PT-LOW-0004", 0])
                .map { $0["detail"] as String }.joined(separator: "; ")
        }
        // Looked up by the upper-cased number itself, not scanned.
        #expect(plan.contains("USING INDEX sales_by_patient (<expr>=?"), "\(plan)")
    }

    @Test func aCheckInRetryIsTheSameCheckInAcrossMidnightUnlessItNamesAnotherDay() async throws {
        let store = try openStore()
        func record(_ date: String?, today: String) throws -> PatientCheckInRecord {
            try store.recordCheckIn(clientCheckInId: "front-9", patientLicenseNumber: "PT-1", locationId: 1, checkInDate: date,
                                    today: today, registrationStartDate: nil, registrationExpiryDate: nil, terminalId: nil,
                                    actor: "test", license: "LIC", at: Date(), metrcBody: { _ in "{}" })
        }
        let first = try record(nil, today: "2026-11-23")
        #expect(first.checkInDate == "2026-11-23")
        #expect(try record(nil, today: "2026-11-24").id == first.id)
        #expect(try record("2026-11-23", today: "2026-11-24").id == first.id)
        let conflict = #expect(throws: TillError.self) { try record("2026-11-24", today: "2026-11-24") }
        #expect(conflict?.code == "client_checkin_id_reused")
    }

    @Test func terminalsAreRevokedByNamePrefixAndOthersStayLive() async throws {
        let store = try openStore()
        let old = try store.addTerminal(name: "demo-register-1", role: .register).token
        let older = try store.addTerminal(name: "demo-register-2", role: .register).token
        let front = try store.addTerminal(name: "front-1", role: .register).token
        #expect(try store.revokeTerminals(namePrefix: "demo-register") == 2)
        #expect(try store.terminal(token: old) == nil)
        #expect(try store.terminal(token: older) == nil)
        #expect(try store.terminal(token: front) != nil)
        #expect(try store.revokeTerminals(namePrefix: "demo-register") == 0)
        #expect(try store.auditLog(action: "terminal.revoked").count == 2)
    }

    @Test func theJournalRefusesASaleFromARevokedTerminalAndWritesNothing() async throws {
        let store = try openStore()
        let (terminal, _) = try store.addTerminal(name: "front-1", role: .register)
        guard case .recorded = try await store.journal(entry("a", terminal: terminal.id)) else {
            Issue.record("expected a new sale")
            return
        }
        // Revoked by another connection, as `till terminals revoke` would from its own process.
        try TillStore(path: directory + "/till.sqlite").revokeTerminal(name: "front-1")
        await #expect(throws: TillError.invalidToken) { try await store.journal(entry("b", terminal: terminal.id)) }
        await #expect(throws: TillError.invalidToken) { try await store.journal(entry("a", terminal: terminal.id)) }
        #expect(try store.sale(clientSaleId: "b") == nil)
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 9)
    }

    @Test func theJournalChecksTheSaleAgainstThePackagesItWritesTo() async throws {
        let store = try openStore()
        try await store.pool.write { db in try db.execute(sql: "UPDATE packages SET on_hold = 1") }
        await #expect(throws: TillError.self) { try await store.journal(entry("a")) }
        #expect(try store.sale(clientSaleId: "a") == nil)
        #expect(try store.packages(labels: ["PKG-1"])["PKG-1"]?.quantity == 10)
    }
}

@Suite struct DigestTests {
    @Test func sha256HexMatchesTheKnownDigest() {
        #expect(sha256Hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(sha256Hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}

/// Counts the commits of the connection it observes.
private final class CommitCounter: TransactionObserver, @unchecked Sendable {
    // @unchecked: only touched under its lock.
    private let lock = NSLock()
    private var commits = 0

    var count: Int { lock.withLock { commits } }

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { true }
    func databaseDidChange(with event: DatabaseEvent) {}
    func databaseDidCommit(_ db: Database) { lock.withLock { commits += 1 } }
    func databaseDidRollback(_ db: Database) {}
}

/// Runs each job on a serial queue of its own: GCD's overcommitting pool, which adds a thread whenever its
/// others are blocked (its global concurrent queues stop at the core count).
/// Runs each job on a GCD queue: for a test task that blocks its thread (a commit held open), which must
/// not be one of the few cooperative threads the rest of the test needs.
final class GCDExecutor: TaskExecutor {
    static let shared = GCDExecutor()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        DispatchQueue(label: "test.journal").async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
