import Foundation
import GRDB
import TillDomain
import TillMigrations

/// Till's durable state in one SQLite file: WAL for concurrent readers, `synchronous=FULL` so a
/// committed sale survives power loss, foreign keys on, schema from `Migrations/sql`.
public final class TillStore: Sendable {
    public let pool: DatabasePool
    /// The sale path's writes (journal, Metrc's answers): concurrent ones share a commit.
    let committer: GroupCommit
    /// Prefix of every receipt number this database issues (random per database).
    public let receiptPrefix: String

    /// Opens (creating if needed) and migrates the database at `path`.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)  // another process (`till sync`, `till terminals`) may hold the write lock briefly
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        committer = GroupCommit(pool: pool)
        // GRDB's WAL set-up runs after prepareDatabase and sets the *writer* to NORMAL ("many applications
        // choose NORMAL in WAL mode"); a sale the register was told about must survive power loss, so
        // every commit syncs.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try Self.migrator().migrate(pool)
        try Self.restoreFixups(pool)
        receiptPrefix = try pool.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'receipt_prefix'") ?? "TILL"
        }
    }

    /// Applies pending migrations and returns the names of all applied ones.
    public static func migrate(path: String) throws -> [String] {
        let store = try TillStore(path: path)
        return try store.pool.read { db in try migrator().appliedMigrations(db) }
    }

    static func migrator() throws -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in try SQLMigrations.all() {
            migrator.registerMigration(migration.name) { db in
                db.add(function: AuditChain.sqlFunction)  // 0005 chains the audit events already logged
                try db.execute(sql: migration.sql)
            }
        }
        return migrator
    }

    /// Returns once every write of the sale path handed in before this call (Metrc's answers are recorded
    /// without their callers waiting) has committed or failed: read after it to see them.
    public func caughtUp() async {
        await committer.caughtUp()
    }

    /// The journal mode and synchronous setting of the connection that commits, for `till status` and tests.
    public func durabilitySettings() throws -> (journalMode: String, synchronous: Int) {
        try pool.writeWithoutTransaction { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "?",
             try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1)
        }
    }
}

extension Date {
    var epochMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
    init(epochMilliseconds: Int64) { self.init(timeIntervalSince1970: Double(epochMilliseconds) / 1000) }
}

extension Database {
    /// Executes a statement prepared once per connection (GRDB's cache): the sale path repeats the same
    /// few statements, and preparing them anew each time (with GRDB's authorizer) was a visible cost.
    func run(_ sql: String, _ arguments: StatementArguments = StatementArguments()) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }

    func rows(_ sql: String, _ arguments: StatementArguments = StatementArguments()) throws -> [Row] {
        try Row.fetchAll(cachedStatement(sql: sql), arguments: arguments)
    }

    func row(_ sql: String, _ arguments: StatementArguments = StatementArguments()) throws -> Row? {
        try Row.fetchOne(cachedStatement(sql: sql), arguments: arguments)
    }
}
