import Foundation
import GRDB
import TillDomain

/// Everything needed to journal one sale in one transaction.
public struct JournalEntry: Sendable {
    public var request: SaleRequest
    /// Digest of the request body: a retry with the same clientSaleId must carry the same sale.
    public var requestDigest: String
    /// The sale's rules, run in the journal's own transaction against the packages as it reads them, so
    /// what was checked is what is written (and no separate read, whose page cache every commit empties).
    public var validate: @Sendable ([String: PackageSnapshot]) throws(TillError) -> [ValidatedLine]
    /// The terminal selling; the journal refuses the sale if it was revoked meanwhile (in any process).
    public var terminalId: Int64?
    public var actor: String
    public var license: String
    public var soldAt: Date
    public var salesDateTimeLocal: String
    public var businessDate: String
    /// The sale's own first report attempt holds its journal row until then; the reporter leaves it alone.
    public var firstAttemptLease: Date
    /// The JSON object Metrc gets for the sale (`POST /sales/v2/receipts`), journaled with it.
    public var receiptBody: @Sendable (Sale) -> String
    /// Anything the audit record must flag (e.g. a medical sale made on a stale patient status).
    public var note: String?

    public init(request: SaleRequest, requestDigest: String,
                validate: @escaping @Sendable ([String: PackageSnapshot]) throws(TillError) -> [ValidatedLine],
                terminalId: Int64?, actor: String, license: String, soldAt: Date, salesDateTimeLocal: String,
                businessDate: String, firstAttemptLease: Date, receiptBody: @escaping @Sendable (Sale) -> String,
                note: String? = nil) {
        self.receiptBody = receiptBody
        self.note = note
        self.request = request
        self.requestDigest = requestDigest
        self.validate = validate
        self.terminalId = terminalId
        self.actor = actor
        self.license = license
        self.soldAt = soldAt
        self.salesDateTimeLocal = salesDateTimeLocal
        self.businessDate = businessDate
        self.firstAttemptLease = firstAttemptLease
    }
}

/// What journaling did.
public enum JournalResult: Sendable {
    /// A new sale was recorded; its report is owed, as this journal row (leased to the sale's first attempt).
    case recorded(Sale, JournalRow)
    /// The clientSaleId was already recorded with the same content: this is the original sale.
    case replay(Sale)
}

extension TillStore {
    /// Records the sale, its lines, the package decrements, its receipt's Metrc write and an audit event in one
    /// transaction, after the replay check, the terminal check and the sale's rules in that same
    /// transaction. Stock is guarded in the UPDATE itself, so concurrent registers can never oversell.
    ///
    /// Async so that waiting for SQLite's single writer suspends the task instead of blocking one of the
    /// few threads every request shares (the connections' event loops). Sales journaled at the same moment share one synced
    /// commit; each is answered only once that commit is on disk.
    public func journal(_ entry: JournalEntry) async throws -> JournalResult {
        let receiptPrefix = self.receiptPrefix
        return try await committer.write(.synced) { db in
            if let terminalId = entry.terminalId {
                guard try Self.terminalIsLive(id: terminalId, db) else { throw TillError.invalidToken }
            }
            if let existing = try Self.replayed(clientSaleId: entry.request.clientSaleId, digest: entry.requestDigest, db) {
                return .replay(existing)
            }
            let lines = try entry.validate(Self.packages(labels: entry.request.lines.map(\.packageLabel), db))
            let id = try db.firstDirect("SELECT COALESCE(MAX(id), 0) + 1 FROM sales") { $0.int64(0) } ?? 1
            let receiptNumber = "\(receiptPrefix)-\(FacilityDate.padded(id, 6))"
            let total = lines.reduce(Money.zero) { $0 + $1.request.totalAmount }
            let request = entry.request
            try db.executeDirect("""
                INSERT INTO sales (id, client_sale_id, request_digest, receipt_number, terminal_id, customer_type,
                                   patient_license_number, caregiver_license_number, identification_method,
                                   patient_registration_location_id, sold_at, sales_date_time_local, business_date_local,
                                   total_cents, status)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending_report')
                """, id, request.clientSaleId, entry.requestDigest, receiptNumber, entry.terminalId,
                                 request.customerType.rawValue, request.patientLicenseNumber, request.caregiverLicenseNumber,
                                 request.identificationMethod, request.patientRegistrationLocationId,
                                 entry.soldAt.epochMilliseconds, entry.salesDateTimeLocal, entry.businessDate, total.cents)
            for (number, line) in lines.enumerated() {
                let taxes = line.request.taxes
                try db.executeDirect("""
                    INSERT INTO sale_lines (sale_id, line_number, package_label, quantity, unit, package_quantity_picos,
                                            total_cents, discount_cents, sales_tax_cents, excise_tax_cents, city_tax_cents,
                                            county_tax_cents, municipal_tax_cents)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, id, number, line.request.packageLabel, "\(line.request.quantity)", line.unitName,
                                     line.packageDecrementPicos, line.request.totalAmount.cents,
                                     line.request.discountAmount?.cents, taxes?.salesTax?.cents, taxes?.exciseTax?.cents,
                                     taxes?.cityTax?.cents, taxes?.countyTax?.cents, taxes?.municipalTax?.cents)
                try db.executeDirect("""
                    UPDATE packages SET quantity_picos = quantity_picos - ?1
                    WHERE label = ?2 AND active = 1 AND quantity_picos >= ?1
                    """, line.packageDecrementPicos, line.request.packageLabel)
                guard db.changesCount == 1 else {
                    let left = try Int64.fetchOne(db.cachedStatement(sql: "SELECT quantity_picos FROM packages WHERE label = ?"),
                                                  arguments: [line.request.packageLabel]) ?? 0
                    throw TillError.unprocessable(
                        "insufficient_quantity",
                        "Package \(line.request.packageLabel) has \(Quantities.decimal(picos: left)) left; another sale took the rest.",
                        details: ["line": "\(number)", "packageLabel": line.request.packageLabel,
                                  "available": "\(Quantities.decimal(picos: left))"])
                }
            }
            try Self.appendAudit(AuditEvent(actor: entry.actor, terminalId: entry.terminalId, action: "sale.journaled",
                                            license: entry.license, requestDigest: entry.requestDigest,
                                            subject: receiptNumber,
                                            detail: "total \(total)" + (entry.note.map { "; \($0)" } ?? "")),
                                 at: entry.soldAt, db)
            // Built from what was just written rather than read back: the writer is held for less time.
            let sale = Sale(
                id: id, clientSaleId: request.clientSaleId, receiptNumber: receiptNumber, customerType: request.customerType,
                patientLicenseNumber: request.patientLicenseNumber, caregiverLicenseNumber: request.caregiverLicenseNumber,
                identificationMethod: request.identificationMethod,
                patientRegistrationLocationId: request.patientRegistrationLocationId,
                soldAt: Date(epochMilliseconds: entry.soldAt.epochMilliseconds), salesDateTime: entry.salesDateTimeLocal,
                businessDate: entry.businessDate,
                lines: lines.map { line in
                    SaleLine(packageLabel: line.request.packageLabel, quantity: line.request.quantity, unit: line.unitName,
                             totalAmount: line.request.totalAmount, discountAmount: line.request.discountAmount,
                             taxes: line.request.taxes == LineTaxes() ? nil : line.request.taxes,
                             packageDecrementPicos: line.packageDecrementPicos)
                },
                totalAmount: total, status: .pendingReport, metrcReceiptId: nil, reportedAt: nil, rejection: nil)
            // The receipt's POST, first of the sale's writes, in doubt from now: its first attempt is about to be
            // sent, and should the process die mid-flight the reporter must ask Metrc before sending it again.
            let body = entry.receiptBody(sale)
            let soldAt = entry.soldAt.epochMilliseconds
            try db.executeDirect("""
                INSERT INTO metrc_journal (kind, subject_type, subject_id, seq, body, created_at, attempts, next_attempt_at,
                                           in_doubt, attempt_started_at)
                VALUES ('receipt.create', 'sale', ?, 1, ?, ?, 1, ?, 1, ?)
                """, id, body, soldAt, entry.firstAttemptLease.epochMilliseconds, soldAt)
            let row = JournalRow(id: db.lastInsertedRowID, kind: .receiptCreate, subject: .sale(id), seq: 1, body: body,
                                 createdAt: sale.soldAt, attempts: 1,
                                 nextAttemptAt: Date(epochMilliseconds: entry.firstAttemptLease.epochMilliseconds),
                                 inDoubt: true, attemptStartedAt: sale.soldAt)
            return .recorded(sale, row)
        }
    }

    /// The sale this `clientSaleId` already made, if any: a register's retry. The same id with a request
    /// of another digest is not a retry but a conflict, and throws.
    public func replayed(clientSaleId: String, digest: String) throws -> Sale? {
        try pool.read { db in try Self.replayed(clientSaleId: clientSaleId, digest: digest, db) }
    }

    static func replayed(clientSaleId: String, digest: String, _ db: Database) throws -> Sale? {
        guard let (id, receiptNumber, earlierDigest) = try db.firstDirect(
            "SELECT id, receipt_number, request_digest FROM sales WHERE client_sale_id = ?", clientSaleId,
            read: { row in (row.int64(0), row.string(1), row.string(2)) })
        else { return nil }
        guard earlierDigest == digest else {
            throw TillError(.conflict, code: "client_sale_id_reused",
                            "clientSaleId \(clientSaleId) was already used for a different sale.",
                            details: ["saleId": "\(id)", "receiptNumber": receiptNumber])
        }
        return try sale(id: id, db)
    }

    public func sale(id: Int64) throws -> Sale? {
        try pool.read { db in try Self.sale(id: id, db) }
    }

    public func sale(clientSaleId: String) throws -> Sale? {
        try pool.read { db in try Self.sale(clientSaleId: clientSaleId, db) }
    }

    /// Sales of one facility-local business day, oldest first.
    public func sales(businessDate: String) throws -> [Sale] {
        try pool.read { db in
            let rows = try db.rows("SELECT * FROM sales WHERE business_date_local = ? ORDER BY id", [businessDate])
            return try Self.sales(from: rows, db)
        }
    }

    static func sale(id: Int64, _ db: Database) throws -> Sale? {
        try sales(from: db.rows("SELECT * FROM sales WHERE id = ?", [id]), db).first
    }

    static func sale(clientSaleId: String, _ db: Database) throws -> Sale? {
        try sales(from: db.rows("SELECT * FROM sales WHERE client_sale_id = ?", [clientSaleId]), db).first
    }

    static func sales(from rows: [Row], _ db: Database) throws -> [Sale] {
        guard !rows.isEmpty else { return [] }
        let ids = rows.map { $0["id"] as Int64 }
        var linesBySale: [Int64: [SaleLine]] = [:]
        let lineRows = try db.rows("""
            SELECT * FROM sale_lines WHERE sale_id IN (\(databaseQuestionMarks(count: ids.count))) ORDER BY sale_id, line_number
            """, StatementArguments(ids))
        for row in lineRows {
            let cents: (String) -> Money? = { column in (row[column] as Int64?).map(Money.init(cents:)) }
            let taxes = LineTaxes(salesTax: cents("sales_tax_cents"), exciseTax: cents("excise_tax_cents"),
                                  cityTax: cents("city_tax_cents"), countyTax: cents("county_tax_cents"),
                                  municipalTax: cents("municipal_tax_cents"))
            let line = SaleLine(packageLabel: row["package_label"], quantity: Decimal(string: row["quantity"]) ?? 0,
                                unit: row["unit"], totalAmount: Money(cents: row["total_cents"]),
                                discountAmount: cents("discount_cents"),
                                taxes: taxes == LineTaxes() ? nil : taxes,
                                packageDecrementPicos: row["package_quantity_picos"])
            linesBySale[row["sale_id"], default: []].append(line)
        }
        return rows.map { row in
            let id: Int64 = row["id"]
            let rejection = (row["rejection_json"] as String?).flatMap {
                try? JSONDecoder().decode([String].self, from: Data($0.utf8))
            }
            return Sale(id: id, clientSaleId: row["client_sale_id"], receiptNumber: row["receipt_number"],
                        customerType: CustomerType(rawValue: row["customer_type"]) ?? .consumer,
                        patientLicenseNumber: row["patient_license_number"],
                        caregiverLicenseNumber: row["caregiver_license_number"],
                        identificationMethod: row["identification_method"],
                        patientRegistrationLocationId: row["patient_registration_location_id"],
                        soldAt: Date(epochMilliseconds: row["sold_at"]), salesDateTime: row["sales_date_time_local"],
                        businessDate: row["business_date_local"], lines: linesBySale[id] ?? [],
                        totalAmount: Money(cents: row["total_cents"]),
                        status: SaleStatus(rawValue: row["status"]) ?? .pendingReport,
                        metrcReceiptId: row["metrc_receipt_id"],
                        reportedAt: (row["reported_at"] as Int64?).map(Date.init(epochMilliseconds:)),
                        rejection: rejection, saleUndone: row["sale_undone"])
        }
    }
}
