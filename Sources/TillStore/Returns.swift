import Foundation
import GRDB
import TillDomain

/// The JSON objects a return may journal for Metrc, written by the layer that knows Metrc's wire format.
public struct ReturnBodies: Sendable {
    /// A sale's receipt as `POST /sales/v2/receipts` takes it (the sale carrying the lines that remain).
    public var receipt: @Sendable (Sale) -> String
    /// `PUT /sales/v2/receipts`: the receipt's Id (nil until Metrc has given it) and its full content.
    public var edit: @Sendable (Int64?, Sale) -> String
    /// `{"Id":n}` (null until known): an archive, finalize or unfinalize.
    public var receiptId: @Sendable (Int64?) -> String
    /// `POST /packages/v2/adjust`: so much of a package (in its unit) destroyed, with a note naming the return.
    public var wasteAdjust: @Sendable (_ label: String, _ quantity: Decimal, _ unit: String, _ date: String, _ note: String) -> String

    public init(receipt: @escaping @Sendable (Sale) -> String, edit: @escaping @Sendable (Int64?, Sale) -> String,
                receiptId: @escaping @Sendable (Int64?) -> String,
                wasteAdjust: @escaping @Sendable (String, Decimal, String, String, String) -> String) {
        self.receipt = receipt
        self.edit = edit
        self.receiptId = receiptId
        self.wasteAdjust = wasteAdjust
    }
}

/// Everything needed to record one return in one transaction.
public struct ReturnEntry: Sendable {
    public var saleId: Int64
    public var request: ReturnRequest
    /// The reason as the facility spells it.
    public var reason: String
    public var disposition: ReturnDisposition
    public var requestDigest: String
    public var terminalId: Int64?
    public var actor: String
    public var license: String
    public var at: Date
    public var businessDate: String
    public var bodies: ReturnBodies

    public init(saleId: Int64, request: ReturnRequest, reason: String, disposition: ReturnDisposition,
                requestDigest: String, terminalId: Int64?, actor: String, license: String, at: Date,
                businessDate: String, bodies: ReturnBodies) {
        self.saleId = saleId
        self.request = request
        self.reason = reason
        self.disposition = disposition
        self.requestDigest = requestDigest
        self.terminalId = terminalId
        self.actor = actor
        self.license = license
        self.at = at
        self.businessDate = businessDate
        self.bodies = bodies
    }
}

/// Packages held off the shelf by returns, one entry per return and package.
public struct HeldStock: Sendable, Hashable {
    public var returnId: Int64
    public var saleId: Int64
    public var packageLabel: String
    public var disposition: ReturnDisposition
    public var quantity: Decimal
    public var unit: String
    public var heldAt: Date
}

extension TillStore {
    /// Records a return in one transaction: its lines, the stock it puts back or holds, and the writes Metrc
    /// is owed, in the sale's order: folded into the sale's receipt if it has not left, else an edit or an
    /// archive (a finalized receipt unfinalized first), then an adjust for wasted goods. The same
    /// `clientReturnId` with the same body is the original return (`replay`); with another body, 409.
    public func recordReturn(_ entry: ReturnEntry) throws -> (saleReturn: SaleReturn, replay: Bool) {
        try pool.write { db in
            if let existing = try Row.fetchOne(db, sql: "SELECT id, request_digest, sale_id FROM returns WHERE client_return_id = ?",
                                               arguments: [entry.request.clientReturnId]) {
                guard existing["request_digest"] == entry.requestDigest, existing["sale_id"] == entry.saleId else {
                    throw TillError(.conflict, code: "client_return_id_reused",
                                    "clientReturnId \(entry.request.clientReturnId) was already used for a different return.",
                                    details: ["returnId": "\(existing["id"] as Int64)"])
                }
                return (try Self.saleReturns(where: "r.id = ?", [existing["id"] as Int64], db)[0], true)
            }
            guard let sale = try Self.sale(id: entry.saleId, db) else {
                throw TillError(.notFound, code: "sale_not_found", "No sale with id \(entry.saleId).")
            }
            switch sale.status {
            case .rejected:
                throw TillError.unprocessable("sale_not_in_metrc",
                                              "Metrc refused this sale's receipt, so there is nothing in Metrc to return against; "
                                                  + "resolve the refusal first (see /v1/reporting).")
            case .voided:
                throw TillError.unprocessable("nothing_to_return", "This sale was returned in full already.")
            case .pendingReport, .reported:
                break
            }
            let returnable = try Self.returnableLines(of: sale, db)
            let returned = try ReturnRules.plan(entry.request, lines: returnable)
            let returnedByLine = Dictionary(uniqueKeysWithValues: returned.map { ($0.lineNumber, $0.quantity) })
            let remainingLines = returnable.compactMap { line in
                ReturnRules.remaining(of: line.line, returned: line.returned + (returnedByLine[line.lineNumber] ?? 0))
            }
            var remainingSale = sale
            remainingSale.lines = remainingLines
            let total = returned.reduce(Money.zero) { $0 + $1.totalAmount }

            // Where the receipt stands: its POST still owed and not in doubt has not left (an attempt in doubt
            // from its start, on disk before anything is sent), so it can still be rewritten.
            let subject = JournalSubject.sale(sale.id)
            let pending = try JournalRow.fetchAll(db, sql: """
                SELECT * FROM metrc_journal WHERE subject_type = 'sale' AND subject_id = ? ORDER BY seq
                """, arguments: [sale.id])
            let post = pending.first { $0.kind == .receiptCreate && $0.state == .pending }
            let unsent = post.map { !$0.inDoubt } ?? false
            var final = try Bool.fetchOne(db, sql: "SELECT metrc_final FROM sales WHERE id = ?", arguments: [sale.id]) ?? false
            for row in pending where row.state == .pending {
                if row.kind == .receiptFinalize { final = true }
                if row.kind == .receiptUnfinalize { final = false }
            }
            let route = ReturnRules.metrcWrites(receiptUnsent: unsent, finalInMetrc: final, nothingRemains: remainingLines.isEmpty)

            try db.execute(sql: """
                INSERT INTO returns (client_return_id, request_digest, sale_id, terminal_id, actor, reason, disposition, note,
                                     returned_at, business_date_local, total_cents, metrc_action)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [entry.request.clientReturnId, entry.requestDigest, sale.id, entry.terminalId, entry.actor,
                                 entry.reason, entry.disposition.rawValue, entry.request.note, entry.at.epochMilliseconds,
                                 entry.businessDate, total.cents, route.action.rawValue])
            let returnId = db.lastInsertedRowID
            for line in returned {
                let taxes = line.taxes
                try db.execute(sql: """
                    INSERT INTO return_lines (return_id, sale_id, line_number, package_label, quantity, unit, package_quantity_picos,
                                              total_cents, discount_cents, sales_tax_cents, excise_tax_cents, city_tax_cents,
                                              county_tax_cents, municipal_tax_cents)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [returnId, sale.id, line.lineNumber, line.packageLabel, "\(line.quantity)", line.unit,
                                     line.packagePicos, line.totalAmount.cents, line.discountAmount?.cents,
                                     taxes?.salesTax?.cents, taxes?.exciseTax?.cents, taxes?.cityTax?.cents,
                                     taxes?.countyTax?.cents, taxes?.municipalTax?.cents])
            }

            // Stock: back on the shelf, or held off it (Metrc's count will include it again once the receipt is
            // edited, or never lost it if the receipt had not left; a sync takes held stock off Metrc's count).
            var byPackage: [String: Int64] = [:]
            for line in returned { byPackage[line.packageLabel, default: 0] += line.packagePicos }
            for (label, picos) in byPackage.sorted(by: { $0.key < $1.key }) where picos > 0 {
                if entry.disposition == .restock {
                    try db.execute(sql: "UPDATE packages SET quantity_picos = quantity_picos + ? WHERE label = ?",
                                   arguments: [picos, label])
                } else {
                    try db.execute(sql: """
                        INSERT INTO held_stock (return_id, package_label, disposition, quantity_picos, held_at) VALUES (?, ?, ?, ?, ?)
                        """, arguments: [returnId, label, entry.disposition.rawValue, picos, entry.at.epochMilliseconds])
                }
            }

            // What Metrc is owed, in the sale's order.
            let origin = (type: "return", id: returnId)
            switch route.action {
            case .folded:
                guard let post else { break }
                if remainingLines.isEmpty {
                    try db.execute(sql: "DELETE FROM metrc_journal WHERE id = ?", arguments: [post.id])
                    try db.execute(sql: "UPDATE sales SET status = 'voided' WHERE id = ?", arguments: [sale.id])
                } else {
                    try db.execute(sql: "UPDATE metrc_journal SET body = ? WHERE id = ?",
                                   arguments: [entry.bodies.receipt(remainingSale), post.id])
                }
            case .update, .archive:
                for kind in route.writes {
                    let body = kind == .receiptUpdate ? entry.bodies.edit(sale.metrcReceiptId, remainingSale)
                        : entry.bodies.receiptId(sale.metrcReceiptId)
                    try Self.appendJournal(kind, subject: subject, body: body, at: entry.at, origin: origin, db)
                }
            }
            if entry.disposition == .waste {
                let units = try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: """
                    SELECT label, unit FROM packages WHERE label IN (\(databaseQuestionMarks(count: byPackage.count)))
                    """, arguments: StatementArguments(Array(byPackage.keys))).map { ($0["label"] as String, $0["unit"] as String) })
                for (label, picos) in byPackage.sorted(by: { $0.key < $1.key }) where picos > 0 {
                    let note = "Till return \(entry.request.clientReturnId) of receipt \(sale.receiptNumber): \(entry.reason)"
                        + (entry.request.note.map { ". \($0)" } ?? "")
                    try Self.appendJournal(.packageAdjust, subject: subject,
                                           body: entry.bodies.wasteAdjust(label, -Quantities.decimal(picos: picos),
                                                                          units[label] ?? "Each", entry.businessDate, note),
                                           at: entry.at, origin: origin, db)
                }
            }
            let lines = returned.map { "\($0.quantity) \($0.unit) of \($0.packageLabel)" }.joined(separator: ", ")
            try Self.appendAudit(AuditEvent(actor: entry.actor, terminalId: entry.terminalId, action: "sale.returned",
                                            license: entry.license, requestDigest: entry.requestDigest,
                                            subject: sale.receiptNumber,
                                            detail: "\(lines) (\(total)); reason: \(entry.reason); to \(entry.disposition.rawValue)"
                                                + "; Metrc: \(route.action.rawValue)" + (entry.request.note.map { "; note: \($0)" } ?? "")),
                                 at: entry.at, db)
            return (try Self.saleReturns(where: "r.id = ?", [returnId], db)[0], false)
        }
    }

    /// A sale's lines with what earlier returns took back from each.
    static func returnableLines(of sale: Sale, _ db: Database) throws -> [ReturnableLine] {
        let returned = try returnedQuantities(saleId: sale.id, db)
        return sale.lines.enumerated().map { number, line in
            ReturnableLine(lineNumber: number, line: line, returned: returned[number] ?? 0)
        }
    }

    /// What returns took back from each line of a sale so far, in the unit sold.
    public func returnedQuantities(saleId: Int64) throws -> [Int: Decimal] {
        try pool.read { db in try Self.returnedQuantities(saleId: saleId, db) }
    }

    static func returnedQuantities(saleId: Int64, _ db: Database) throws -> [Int: Decimal] {
        var returned: [Int: Decimal] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT line_number, quantity FROM return_lines WHERE sale_id = ?", arguments: [saleId]) {
            returned[row["line_number"], default: 0] += Decimal(string: row["quantity"]) ?? 0
        }
        return returned
    }

    public func returns(saleId: Int64) throws -> [SaleReturn] {
        try pool.read { db in try Self.saleReturns(where: "r.sale_id = ?", [saleId], db) }
    }

    public func saleReturn(clientReturnId: String) throws -> SaleReturn? {
        try pool.read { db in try Self.saleReturns(where: "r.client_return_id = ?", [clientReturnId], db).first }
    }

    /// Returns of the sales of a business day, whenever they were made: what nets that day's sales.
    public func returns(ofSalesOn businessDate: String) throws -> [SaleReturn] {
        try pool.read { db in try Self.saleReturns(where: "s.business_date_local = ?", [businessDate], db) }
    }

    /// Returns still owed to Metrc, and refused by it.
    public func returnCounts() throws -> (pending: Int, rejected: Int) {
        try pool.read { db in
            let statuses = try Self.saleReturns(where: """
                r.id IN (SELECT origin_id FROM metrc_journal WHERE origin_type = 'return')
                OR (r.metrc_action = 'folded' AND s.status IN ('pending_report', 'rejected'))
                """, [], db).map(\.status)
            return (statuses.filter { $0 == .pendingReport }.count, statuses.filter { $0 == .rejected }.count)
        }
    }

    /// Returns, with their status read from the writes they caused (or, folded into a receipt not yet sent,
    /// from the sale's own).
    static func saleReturns(where condition: String, _ arguments: StatementArguments, _ db: Database) throws -> [SaleReturn] {
        let rows = try Row.fetchAll(db, sql: """
            SELECT r.*, s.status AS sale_status,
                   (SELECT COUNT(*) FROM metrc_journal j WHERE j.origin_type = 'return' AND j.origin_id = r.id
                                                         AND j.state = 'pending') AS owed,
                   (SELECT refusal_json FROM metrc_journal j WHERE j.origin_type = 'return' AND j.origin_id = r.id
                                                             AND j.state = 'refused' ORDER BY j.id LIMIT 1) AS refusal
            FROM returns r JOIN sales s ON s.id = r.sale_id
            WHERE \(condition) ORDER BY r.id
            """, arguments: arguments)
        guard !rows.isEmpty else { return [] }
        let ids = rows.map { $0["id"] as Int64 }
        var linesByReturn: [Int64: [ReturnedLine]] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT * FROM return_lines WHERE return_id IN (\(databaseQuestionMarks(count: ids.count))) ORDER BY return_id, line_number
            """, arguments: StatementArguments(ids)) {
            let cents: (String) -> Money? = { column in (row[column] as Int64?).map(Money.init(cents:)) }
            let taxes = LineTaxes(salesTax: cents("sales_tax_cents"), exciseTax: cents("excise_tax_cents"),
                                  cityTax: cents("city_tax_cents"), countyTax: cents("county_tax_cents"),
                                  municipalTax: cents("municipal_tax_cents"))
            linesByReturn[row["return_id"], default: []].append(ReturnedLine(
                lineNumber: row["line_number"], packageLabel: row["package_label"],
                quantity: Decimal(string: row["quantity"]) ?? 0, unit: row["unit"], packagePicos: row["package_quantity_picos"],
                totalAmount: Money(cents: row["total_cents"]), discountAmount: cents("discount_cents"),
                taxes: taxes == LineTaxes() ? nil : taxes))
        }
        return rows.map { row in
            let id: Int64 = row["id"]
            let action = ReturnMetrcAction(rawValue: row["metrc_action"]) ?? .update
            let refusal = (row["refusal"] as String?).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
            let saleStatus = SaleStatus(rawValue: row["sale_status"]) ?? .pendingReport
            let status: SaleStatus
            if refusal != nil {
                status = .rejected
            } else if (row["owed"] as Int) > 0 || (action == .folded && saleStatus == .pendingReport) {
                status = .pendingReport
            } else if action == .folded && saleStatus == .rejected {
                status = .rejected
            } else {
                status = .reported
            }
            return SaleReturn(id: id, clientReturnId: row["client_return_id"], saleId: row["sale_id"], actor: row["actor"],
                              reason: row["reason"], disposition: ReturnDisposition(rawValue: row["disposition"]) ?? .quarantine,
                              note: row["note"], returnedAt: Date(epochMilliseconds: row["returned_at"]),
                              businessDate: row["business_date_local"], lines: linesByReturn[id] ?? [],
                              totalAmount: Money(cents: row["total_cents"]), metrcAction: action, status: status,
                              rejection: refusal ?? (action == .folded && saleStatus == .rejected ? [] : nil))
        }
    }

    /// Returned goods held off the shelf, newest first.
    public func heldStock() throws -> [HeldStock] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT h.*, r.sale_id, p.unit FROM held_stock h JOIN returns r ON r.id = h.return_id
                LEFT JOIN packages p ON p.label = h.package_label ORDER BY h.held_at DESC, h.return_id DESC
                """).map { row in
                HeldStock(returnId: row["return_id"], saleId: row["sale_id"], packageLabel: row["package_label"],
                          disposition: ReturnDisposition(rawValue: row["disposition"]) ?? .quarantine,
                          quantity: Quantities.decimal(picos: row["quantity_picos"]), unit: row["unit"] ?? "",
                          heldAt: Date(epochMilliseconds: row["held_at"]))
            }
        }
    }

    /// What returns hold off each package's shelf: an inventory sync takes it off Metrc's count.
    static func heldPicos(_ db: Database) throws -> [String: Int64] {
        Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: """
            SELECT package_label, SUM(quantity_picos) AS held FROM held_stock GROUP BY package_label
            """).map { ($0["package_label"] as String, $0["held"] as Int64) })
    }
}
