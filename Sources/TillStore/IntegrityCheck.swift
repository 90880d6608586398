import GRDB

extension TillStore {
    /// SQLite's `PRAGMA integrity_check` of the database at `path`, opened read-only (no migration, nothing
    /// written): what it found wrong, empty when nothing.
    public static func integrityProblems(path: String) throws -> [String] {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? queue.close() }
        let findings = try queue.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
        return findings == ["ok"] ? [] : findings
    }
}
