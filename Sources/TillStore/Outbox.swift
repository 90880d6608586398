import Foundation
import GRDB
import TillDomain

/// A receipt Till still owes Metrc.
public struct PendingReport: Sendable {
    public var sale: Sale
    public var attempts: Int
    /// An earlier attempt may have reached Metrc: look it up by external number before posting.
    public var needsLookup: Bool
    public var lastError: String?
}

/// A sale and the Id Metrc gave its receipt.
private struct Receipt: Sendable {
    var saleId: Int64
    var metrcReceiptId: Int64
}

/// What managers see of reporting: what is owed, what Metrc refused, when it last worked.
public struct ReportingSummary: Sendable {
    public var pending: Int
    public var oldestPendingSoldAt: Date?
    public var rejected: [Sale]
    public var lastReportedAt: Date?
    public var lastError: String?
}

extension TillStore {
    /// Outbox rows due now, oldest sale first; rows leased to an attempt in flight are not due.
    public func dueReports(now: Date, limit: Int) throws -> [PendingReport] {
        try pool.read { db in
            let rows = try db.rows("""
                SELECT sale_id, attempts, needs_lookup, last_error FROM outbox
                WHERE kind = 'receipt' AND next_attempt_at <= ? ORDER BY sale_id LIMIT ?
                """, [now.epochMilliseconds, limit])
            let sales = try Self.sales(from: db.rows("""
                SELECT * FROM sales WHERE id IN (\(databaseQuestionMarks(count: rows.count)))
                """, StatementArguments(rows.map { $0["sale_id"] as Int64 })), db)
            let byId = Dictionary(uniqueKeysWithValues: sales.map { ($0.id, $0) })
            return rows.compactMap { row in
                byId[row["sale_id"]].map { sale in
                    PendingReport(sale: sale, attempts: row["attempts"], needsLookup: row["needs_lookup"],
                                  lastError: row["last_error"])
                }
            }
        }
    }

    /// When the next outbox row falls due, if any.
    public func nextReportDue() throws -> Date? {
        try pool.read { db in
            try Int64.fetchOne(db.cachedStatement(sql: "SELECT MIN(next_attempt_at) FROM outbox")).map(Date.init(epochMilliseconds:))
        }
    }

    /// Takes rows for an attempt: nobody else picks them up until `until`, and should the process die
    /// mid-flight the next attempt looks Metrc up first.
    public func leaseReports(saleIds: [Int64], until: Date, now: Date) throws {
        try lease(.sale, ids: saleIds, until: until, now: now)
    }

    /// What an outbox row reports: the column naming its subject.
    enum OutboxSubject: String {
        case sale = "sale_id"
        case checkIn = "checkin_id"
    }

    func lease(_ subject: OutboxSubject, ids: [Int64], until: Date, now: Date) throws {
        guard !ids.isEmpty else { return }
        try pool.write { db in
            try db.run("""
                UPDATE outbox SET next_attempt_at = ?, needs_lookup = 1, attempts = attempts + 1, last_attempt_at = ?
                WHERE \(subject.rawValue) IN (\(databaseQuestionMarks(count: ids.count)))
                """, StatementArguments([until.epochMilliseconds, now.epochMilliseconds] + ids))
        }
    }

    func recordFailure(_ subject: OutboxSubject, ids: [Int64], message: String, needsLookup: Bool, nextAttemptAt: Date,
                       at: Date) throws {
        guard !ids.isEmpty else { return }
        try pool.write { db in
            try db.run("""
                UPDATE outbox SET last_error = ?, needs_lookup = ?, next_attempt_at = ?, last_attempt_at = ?
                WHERE \(subject.rawValue) IN (\(databaseQuestionMarks(count: ids.count)))
                """, StatementArguments([message, needsLookup, nextAttemptAt.epochMilliseconds, at.epochMilliseconds]
                                                   + ids.map { $0 as (any DatabaseValueConvertible)? }))
        }
    }

    /// Makes every row waiting out a retry delay due now; returns how many. Only rows with a failed attempt
    /// on record wait so (`last_error`), and none of them is in flight while the reporter's drain, which alone
    /// retries them, is between passes: a fresh sale's first attempt leases a row with no error yet.
    public func bringRetriesForward(now: Date) throws -> Int {
        try pool.write { db in
            try db.run("UPDATE outbox SET next_attempt_at = ? WHERE last_error IS NOT NULL AND next_attempt_at > ?",
                       [now.epochMilliseconds, now.epochMilliseconds])
            return db.changesCount
        }
    }

    /// After a restart no attempt is in flight: every lease is void.
    public func releaseLeases(now: Date) throws {
        try pool.write { db in
            try db.run("UPDATE outbox SET next_attempt_at = ? WHERE next_attempt_at > ?", [now.epochMilliseconds, now.epochMilliseconds])
        }
    }

    /// Metrc holds these receipts: the sales are reported and nothing more is owed for them.
    ///
    /// Handed to the committer without waiting for the commit: `meanwhile` hears the time recorded (as
    /// stored) once the write is handed in, so that a read after `caughtUp()` sees it; `completion` hears
    /// the outcome.
    ///
    /// Not synced either (the next synced commit carries it to disk): should the process die or the power
    /// fail first, the sale's outbox row is still there, leased and marked for lookup, and the reporter
    /// finds the receipt in Metrc by its external number and records the same Id.
    public func recordReported(_ receipts: [(saleId: Int64, metrcReceiptId: Int64)], at: Date, audit: AuditEvent,
                               meanwhile: (_ recordedAt: Date) -> Void,
                               completion: @escaping @Sendable (Result<Void, any Error>) -> Void) async {
        let at = Date(epochMilliseconds: at.epochMilliseconds)
        guard !receipts.isEmpty else {
            meanwhile(at)
            completion(.success(()))
            return
        }
        let receipts = receipts.map { Receipt(saleId: $0.saleId, metrcReceiptId: $0.metrcReceiptId) }
        await committer.submit(.unsynced, { db in
            for receipt in receipts {
                try db.executeDirect("""
                    UPDATE sales SET status = 'reported', metrc_receipt_id = ?, reported_at = ?, rejection_json = NULL
                    WHERE id = ?
                    """, receipt.metrcReceiptId, at.epochMilliseconds, receipt.saleId)
                try db.executeDirect("DELETE FROM outbox WHERE sale_id = ?", receipt.saleId)
            }
            var event = audit
            event.subject = event.subject ?? receipts.map { "\($0.saleId)" }.joined(separator: ",")
            try Self.appendAudit(event, at: at, db)
        }, meanwhile: { meanwhile(at) }, completion: completion)
    }

    /// Metrc refused the receipt. When the register was told so (`restoreStock`), the sale never
    /// happened and its quantities go back; a sale already handed over stays and becomes an exception.
    public func recordRejected(saleId: Int64, messages: [String], restoreStock: Bool, at: Date, audit: AuditEvent) throws {
        let json = String(decoding: try JSONEncoder().encode(messages), as: UTF8.self)
        try pool.write { db in
            try db.run("UPDATE sales SET status = 'rejected', rejection_json = ?, sale_undone = ? WHERE id = ?", [json, restoreStock, saleId])
            try db.run("DELETE FROM outbox WHERE sale_id = ?", [saleId])
            if restoreStock {
                try db.run("""
                    UPDATE packages SET quantity_picos = quantity_picos +
                        (SELECT SUM(package_quantity_picos) FROM sale_lines l WHERE l.sale_id = ?1 AND l.package_label = packages.label)
                    WHERE label IN (SELECT package_label FROM sale_lines WHERE sale_id = ?1)
                    """, [saleId])
            }
            try Self.appendAudit(audit, at: at, db)
        }
    }

    /// An attempt failed in a way worth retrying; try again at `nextAttemptAt`.
    public func recordFailure(saleIds: [Int64], message: String, needsLookup: Bool, nextAttemptAt: Date, at: Date) throws {
        try recordFailure(.sale, ids: saleIds, message: message, needsLookup: needsLookup, nextAttemptAt: nextAttemptAt, at: at)
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
                SELECT last_error FROM outbox WHERE last_error IS NOT NULL ORDER BY last_attempt_at DESC LIMIT 1
                """))
            return ReportingSummary(pending: pending, oldestPendingSoldAt: oldest.map(Date.init(epochMilliseconds:)),
                                    rejected: rejected, lastReportedAt: lastReported.map(Date.init(epochMilliseconds:)),
                                    lastError: lastError)
        }
    }
}
