import Foundation
import GRDB
import TillDomain

/// What the metrics read from the database at a scrape: the journal's depth and doubts, and the last sync.
public struct StoreGauges: Sendable, Equatable {
    /// Writes owed to Metrc, by kind (refused ones not counted).
    public var pendingByKind: [JournalKind: Int] = [:]
    /// Writes Metrc refused, waiting for a person, by kind.
    public var refusedByKind: [JournalKind: Int] = [:]
    /// Owed writes whose last attempt may have reached Metrc (a fresh sale's among them while its POST is out).
    public var inDoubt = 0
    /// When the oldest of those attempts began.
    public var oldestInDoubtAttempt: Date?
    /// When the oldest owed write was journaled.
    public var oldestPending: Date?
    /// When the last inventory sync that succeeded finished.
    public var lastSuccessfulSync: Date?
}

extension TillStore {
    /// One read, off the writer: a scrape never holds up a sale.
    public func gauges() throws -> StoreGauges {
        try pool.read { db in
            var gauges = StoreGauges()
            for row in try Row.fetchAll(db, sql: """
                SELECT kind, state, COUNT(*) AS n, SUM(in_doubt) AS doubts,
                       MIN(CASE WHEN in_doubt = 1 THEN attempt_started_at END) AS oldest_doubt, MIN(created_at) AS oldest
                FROM metrc_journal GROUP BY kind, state
                """) {
                guard let kind = JournalKind(rawValue: row["kind"]) else { continue }
                let count: Int = row["n"]
                guard row["state"] as String == "pending" else {
                    gauges.refusedByKind[kind, default: 0] += count
                    continue
                }
                gauges.pendingByKind[kind, default: 0] += count
                gauges.inDoubt += row["doubts"] as Int
                gauges.oldestInDoubtAttempt = Self.earlier(gauges.oldestInDoubtAttempt, row["oldest_doubt"])
                gauges.oldestPending = Self.earlier(gauges.oldestPending, row["oldest"])
            }
            gauges.lastSuccessfulSync = try Int64.fetchOne(db, sql: "SELECT MAX(finished_at) FROM sync_runs WHERE error IS NULL")
                .map(Date.init(epochMilliseconds:))
            return gauges
        }
    }

    private static func earlier(_ date: Date?, _ milliseconds: Int64?) -> Date? {
        guard let milliseconds else { return date }
        let other = Date(epochMilliseconds: milliseconds)
        return date.map { min($0, other) } ?? other
    }
}
