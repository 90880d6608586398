import Foundation
import GRDB

/// Why `till backup` made no copy.
public enum BackupError: Error, CustomStringConvertible {
    case noDatabase(String)
    case destinationExists(String)
    case copyFailsIntegrityCheck([String])

    public var description: String {
        switch self {
        case .noDatabase(let path): "no database at \(path)"
        case .destinationExists(let path): "\(path) exists; give --force to replace it"
        case .copyFailsIntegrityCheck(let findings): "the copy fails PRAGMA integrity_check: " + findings.prefix(3).joined(separator: "; ")
        }
    }
}

/// What a backup holds.
public struct BackupSummary: Sendable {
    public var bytes: UInt64
    public var sales: Int
    public var owedToMetrc: Int
    public var auditEvents: Int
}

extension TillStore {
    /// A `meta` key set in every backup: the first store to open a restored copy sees it (see `restoreFixups`).
    static let backupMark = "backup_taken_at"

    /// Copies the database at `path` to `destination` with `VACUUM INTO`: one consistent snapshot, read on a
    /// connection of its own while sales go on (WAL readers never hold the writer up), checked with
    /// `PRAGMA integrity_check`, mode 0600, synced, and put in place only when whole. An existing
    /// `destination` is replaced only when `overwrite` is true.
    ///
    /// The copy is marked as a backup, so that the store restored from it never reuses a receipt number
    /// that the database it replaces may already have sent to Metrc (see `restoreFixups`).
    public static func backup(databaseAt path: String, to destination: String, overwrite: Bool,
                              at: Date = Date()) throws -> BackupSummary {
        guard FileManager.default.fileExists(atPath: path) else { throw BackupError.noDatabase(path) }
        if !overwrite && FileManager.default.fileExists(atPath: destination) {
            throw BackupError.destinationExists(destination)
        }
        let folder = (destination as NSString).deletingLastPathComponent
        let partial = (folder.isEmpty ? "." : folder) + "/." + (destination as NSString).lastPathComponent
            + ".partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: partial) }

        var sourceConfiguration = Configuration()
        sourceConfiguration.busyMode = .timeout(10)
        let source = try DatabaseQueue(path: path, configuration: sourceConfiguration)
        try source.inDatabase { db in try db.execute(sql: "VACUUM INTO ?", arguments: [partial]) }
        try source.close()

        let copy = try DatabaseQueue(path: partial)
        let summary = try copy.inDatabase { db -> BackupSummary in
            try db.execute(sql: "PRAGMA journal_mode = DELETE")  // one self-contained file, whatever the source's mode
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                           arguments: [backupMark, at.formatted(.iso8601)])
            let findings = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            guard findings == ["ok"] else { throw BackupError.copyFailsIntegrityCheck(findings) }
            return BackupSummary(bytes: 0, sales: try Int.fetchOne(db, sql: "SELECT count(*) FROM sales") ?? 0,
                                 owedToMetrc: try Int.fetchOne(db, sql: "SELECT count(*) FROM metrc_journal") ?? 0,
                                 auditEvents: try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_log") ?? 0)
        }
        try copy.close()

        guard chmod(partial, StoreFiles.fileMode) == 0 else { throw posixError("chmod \(partial)") }
        try fsync(path: partial)
        if overwrite {
            guard rename(partial, destination) == 0 else { throw posixError("rename to \(destination)") }
        } else {
            // link() never replaces: a file that appeared at `destination` meanwhile is refused, not overwritten.
            guard link(partial, destination) == 0 else {
                if errno == EEXIST { throw BackupError.destinationExists(destination) }
                throw posixError("link to \(destination)")
            }
        }
        try fsync(path: folder.isEmpty ? "." : folder)
        var result = summary
        result.bytes = (try? FileManager.default.attributesOfItem(atPath: destination)[.size] as? UInt64) ?? 0
        return result
    }

    /// On the first open of a database restored from a backup: the database it replaces may have gone on
    /// selling after the backup, and reported those sales under receipt numbers this copy would issue again
    /// (the prefix and the next sale id are the backup's), so the copy takes a new receipt prefix. Writes it
    /// still owes Metrc may have been sent by that database after the backup, so each is marked in doubt
    /// from now: looked up first, and sent again only if Metrc does not have it once it can no longer land.
    static func restoreFixups(_ pool: DatabasePool, at now: Date = Date()) throws {
        try pool.write { db in
            guard let taken = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [Self.backupMark]) else {
                return
            }
            let old = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'receipt_prefix'") ?? "?"
            try db.execute(sql: "UPDATE meta SET value = upper(hex(randomblob(3))) WHERE key = 'receipt_prefix'")
            let new = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'receipt_prefix'") ?? "?"
            try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [Self.backupMark])
            try db.execute(sql: "UPDATE metrc_journal SET in_doubt = 1, attempt_started_at = ? WHERE state = 'pending'",
                           arguments: [now.epochMilliseconds])
            let owed = db.changesCount
            try Self.appendAudit(AuditEvent(actor: "till", action: "database.restored", detail:
                "from a backup taken \(taken); receipt prefix \(old) is now \(new); \(owed) writes owed to Metrc are looked up before any is sent again"),
                                 at: now, db)
        }
    }
}

private func fsync(path: String) throws {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { throw posixError("open \(path)") }
    defer { close(descriptor) }
    guard fsync(descriptor) == 0 else { throw posixError("fsync \(path)") }
}

private func posixError(_ what: String) -> NSError {
    NSError(domain: NSPOSIXErrorDomain, code: Int(errno),
            userInfo: [NSLocalizedDescriptionKey: "\(what): \(String(cString: strerror(errno)))"])
}
