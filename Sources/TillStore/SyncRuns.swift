import Foundation
import GRDB

extension TillStore {
    /// The end of the last successful sync's window: where the next incremental sync starts (less an overlap).
    public func lastSuccessfulSyncEnd() throws -> Date? {
        try pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT MAX(window_end) FROM sync_runs WHERE error IS NULL AND finished_at IS NOT NULL")
                .map(Date.init(epochMilliseconds:))
        }
    }

    public func recordSyncRun(startedAt: Date, finishedAt: Date, full: Bool, windowStart: Date?, windowEnd: Date,
                              packagesSeen: Int, error: String?) throws {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO sync_runs (started_at, finished_at, full_sync, window_start, window_end, packages_seen, error)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [startedAt.epochMilliseconds, finishedAt.epochMilliseconds, full,
                                 windowStart?.epochMilliseconds, windowEnd.epochMilliseconds, packagesSeen, error])
        }
    }
}
