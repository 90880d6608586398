import Foundation
import GRDB
import TillDomain

/// What managers see of reporting sales: what is owed, what Metrc refused, when it last worked.
public struct ReportingSummary: Sendable {
    public var pending: Int
    public var oldestPendingSoldAt: Date?
    public var rejected: [Sale]
    public var lastReportedAt: Date?
    public var lastError: String?
}

extension TillStore {
    /// Sales Metrc has not confirmed yet, per business day, with the oldest one's time.
    public func pendingSalesByDay() throws -> [(businessDate: String, count: Int, oldestSoldAt: Date)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT business_date_local, COUNT(*) AS n, MIN(sold_at) AS oldest FROM sales
                WHERE status = 'pending_report' GROUP BY business_date_local ORDER BY business_date_local
                """).map { ($0["business_date_local"], $0["n"], Date(epochMilliseconds: $0["oldest"])) }
        }
    }

    /// How many sales Metrc has not confirmed yet.
    public func pendingReportCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM sales WHERE status = 'pending_report'")) ?? 0 }
    }

    public func reportingSummary() throws -> ReportingSummary {
        try pool.read { db in
            let pending = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM sales WHERE status = 'pending_report'")) ?? 0
            let oldest = try Int64.fetchOne(db.cachedStatement(sql: "SELECT MIN(sold_at) FROM sales WHERE status = 'pending_report'"))
            let rejected = try Self.sales(from: db.rows("SELECT * FROM sales WHERE status = 'rejected' ORDER BY id"), db)
            let lastReported = try Int64.fetchOne(db.cachedStatement(sql: "SELECT MAX(reported_at) FROM sales"))
            let lastError = try String.fetchOne(db.cachedStatement(sql: """
                SELECT last_error FROM metrc_journal
                WHERE state = 'pending' AND last_error IS NOT NULL AND kind = 'receipt.create'
                ORDER BY next_attempt_at DESC LIMIT 1
                """))
            return ReportingSummary(pending: pending, oldestPendingSoldAt: oldest.map(Date.init(epochMilliseconds:)),
                                    rejected: rejected, lastReportedAt: lastReported.map(Date.init(epochMilliseconds:)),
                                    lastError: lastError)
        }
    }
}
