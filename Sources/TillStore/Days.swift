import Foundation
import GRDB
import TillDomain

/// Where a day's close stands.
public struct DayClose: Sendable, Hashable {
    public var businessDate: String
    public var requestedAt: Date
    public var requestedBy: String
    public var finalizeAfter: Date
    /// Receipts the close finalizes, and how many Metrc holds finalized so far.
    public var receipts: Int
    public var finalized: Int
    /// Set once every finalize is applied: the day is closed.
    public var closedAt: Date?
    /// Finalizes Metrc refused (each a blocker until resolved).
    public var refused: Int
}

extension TillStore {
    /// The day's sales as Metrc should hold them now: each with the lines its returns left, whether Till still
    /// owes a write for it, Metrc's refusal if any, and whether Till finalized it. Sales undone by a refusal
    /// and sales voided before they were reported are not Metrc's business.
    public func expectedReceipts(businessDate: String) throws -> [ExpectedReceipt] {
        try pool.read { db in
            let sales = try Self.sales(from: db.rows("""
                SELECT * FROM sales WHERE business_date_local = ? AND status <> 'voided'
                AND NOT (status = 'rejected' AND sale_undone = 1) ORDER BY id
                """, [businessDate]), db)
            guard !sales.isEmpty else { return [] }
            let ids = sales.map(\.id)
            let marks = databaseQuestionMarks(count: ids.count)
            // The close's own finalizes are its progress, not a write the day still owes.
            let owed = Set(try Int64.fetchAll(db, sql: """
                SELECT DISTINCT subject_id FROM metrc_journal WHERE subject_type = 'sale' AND state = 'pending'
                AND origin_type IS NOT 'day' AND subject_id IN (\(marks))
                """, arguments: StatementArguments(ids)))
            let final = Set(try Int64.fetchAll(db, sql: "SELECT id FROM sales WHERE metrc_final = 1 AND id IN (\(marks))",
                                               arguments: StatementArguments(ids)))
            var returned: [Int64: [Int: Decimal]] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT sale_id, line_number, quantity FROM return_lines WHERE sale_id IN (\(marks))
                """, arguments: StatementArguments(ids)) {
                returned[row["sale_id"], default: [:]][row["line_number"], default: 0] += Decimal(string: row["quantity"]) ?? 0
            }
            let categories = try Self.packages(labels: Set(sales.flatMap { $0.lines.map(\.packageLabel) }), db).mapValues(\.category)
            return sales.map { sale in
                let lines = sale.lines.enumerated().compactMap { number, line in
                    ReturnRules.remaining(of: line, returned: returned[sale.id]?[number] ?? 0)
                }.map { ReceiptLine(packageLabel: $0.packageLabel, quantity: $0.quantity, totalAmount: $0.totalAmount.decimal,
                                    category: categories[$0.packageLabel] ?? nil) }
                return ExpectedReceipt(saleId: sale.id, receiptNumber: sale.receiptNumber, recordedId: sale.metrcReceiptId,
                                       customerType: sale.customerType.rawValue, patientLicenseNumber: sale.patientLicenseNumber,
                                       salesDateTime: sale.salesDateTime, lines: lines, archived: lines.isEmpty, owed: owed.contains(sale.id) || sale.status == .pendingReport,
                                       refusal: sale.status == .rejected ? (sale.rejection ?? []) : nil, final: final.contains(sale.id))
            }
        }
    }

    /// Writes of the day's sales still owed (or in doubt): they block the close.
    public func owedWrites(businessDate: String) throws -> [JournalRow] {
        try pool.read { db in
            try JournalRow.fetchAll(db, sql: """
                SELECT j.* FROM metrc_journal j
                WHERE j.state = 'pending' AND j.origin_type IS NOT 'day' AND (
                    (j.subject_type = 'sale' AND j.subject_id IN (SELECT id FROM sales WHERE business_date_local = ?1))
                    OR (j.subject_type = 'delivery' AND j.subject_id IN (SELECT id FROM deliveries WHERE business_date_local = ?1))
                    OR (j.subject_type = 'trip' AND j.subject_id IN (SELECT id FROM trips WHERE business_date_local = ?1)))
                ORDER BY j.id
                """, arguments: [businessDate])
        }
    }

    /// Records a day's close and journals the finalize of each receipt, due `finalizeAfter`, in one transaction.
    /// A day already closing or closed is left as it is.
    public func journalDayClose(businessDate: String, receipts: [(saleId: Int64, body: String)], by actor: String,
                                license: String, at: Date, finalizeAfter: Date) throws -> DayClose {
        try pool.write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM day_closes WHERE business_date_local = ?", arguments: [businessDate]) == nil {
                try db.execute(sql: """
                    INSERT INTO day_closes (business_date_local, requested_at, requested_by, finalize_after, receipts) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [businessDate, at.epochMilliseconds, actor, finalizeAfter.epochMilliseconds, receipts.count])
                for receipt in receipts {
                    let id = try Self.appendJournal(.receiptFinalize, subject: .sale(receipt.saleId), body: receipt.body, at: at,
                                                    origin: (type: "day", id: Self.dayNumber(businessDate)), db)
                    try db.execute(sql: "UPDATE metrc_journal SET next_attempt_at = ? WHERE id = ?",
                                   arguments: [finalizeAfter.epochMilliseconds, id])
                }
                try Self.appendAudit(AuditEvent(actor: actor, action: "day.close", license: license, subject: businessDate,
                                                detail: "finalizing \(receipts.count) receipts"
                                                    + (finalizeAfter > at ? " from \(finalizeAfter.formatted(.iso8601))" : "")),
                                     at: at, db)
            }
            return try Self.dayClose(businessDate, at: at, db)!
        }
    }

    /// Where a day's close stands, nil if it was never asked for; marks the day closed once every finalize of it
    /// is applied.
    public func dayClose(businessDate: String, at: Date = Date()) throws -> DayClose? {
        let close = try pool.read { db in try Self.dayClose(businessDate, at: at, db) }
        if let close, close.closedAt == nil, close.finalized == close.receipts, close.refused == 0 {
            try pool.write { db in
                try db.execute(sql: "UPDATE day_closes SET closed_at = ? WHERE business_date_local = ? AND closed_at IS NULL",
                               arguments: [at.epochMilliseconds, businessDate])
            }
            return try pool.read { db in try Self.dayClose(businessDate, at: at, db) }
        }
        return close
    }

    static func dayClose(_ businessDate: String, at: Date, _ db: Database) throws -> DayClose? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM day_closes WHERE business_date_local = ?", arguments: [businessDate])
        else { return nil }
        let counts = try Row.fetchOne(db, sql: """
            SELECT SUM(state = 'pending') AS pending, SUM(state = 'refused') AS refused FROM metrc_journal
            WHERE origin_type = 'day' AND origin_id = ?
            """, arguments: [dayNumber(businessDate)])
        let pending: Int = counts?["pending"] ?? 0, refused: Int = counts?["refused"] ?? 0
        let receipts: Int = row["receipts"]
        return DayClose(businessDate: businessDate, requestedAt: Date(epochMilliseconds: row["requested_at"]),
                        requestedBy: row["requested_by"], finalizeAfter: Date(epochMilliseconds: row["finalize_after"]),
                        receipts: receipts, finalized: receipts - pending - refused,
                        closedAt: (row["closed_at"] as Int64?).map(Date.init(epochMilliseconds:)), refused: refused)
    }

    /// `2026-12-05` as 20261205: how a day names the journal rows it caused.
    static func dayNumber(_ businessDate: String) -> Int64 {
        Int64(businessDate.replacingOccurrences(of: "-", with: "")) ?? 0
    }
}
