import Foundation

/// Where returned goods go.
public enum ReturnDisposition: String, Sendable, Codable, CaseIterable {
    /// Back on the shelf: sellable again at once.
    case restock
    /// Kept apart, never sellable (California, Michigan and Oregon forbid reselling returned cannabis).
    case quarantine
    /// Destroyed: kept apart, and Metrc's package is adjusted down so it does not count them.
    case waste
}

/// One line of a return as a manager asks for it: how much of which package, in the unit it was sold in.
public struct ReturnLineRequest: Sendable, Hashable, Codable {
    public var packageLabel: String
    public var quantity: Decimal
    public var unit: String

    public init(packageLabel: String, quantity: Decimal, unit: String) {
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unit = unit
    }
}

/// A return of part or all of a sale, as asked for.
public struct ReturnRequest: Sendable, Hashable, Codable {
    public var clientReturnId: String
    /// What comes back; empty when `all` is set.
    public var lines: [ReturnLineRequest]
    /// Everything that remains of the sale.
    public var all: Bool
    public var reason: String
    /// nil: the facility's default (`TILL_RETURN_DISPOSITION`).
    public var disposition: ReturnDisposition?
    public var note: String?

    public init(clientReturnId: String, lines: [ReturnLineRequest] = [], all: Bool = false, reason: String,
                disposition: ReturnDisposition? = nil, note: String? = nil) {
        self.clientReturnId = clientReturnId
        self.lines = lines
        self.all = all
        self.reason = reason
        self.disposition = disposition
        self.note = note
    }
}

/// A line of a sale as returns see it: what was sold, and what earlier returns took back.
public struct ReturnableLine: Sendable, Hashable {
    public var lineNumber: Int
    public var line: SaleLine
    /// Returned so far, in the unit it was sold in.
    public var returned: Decimal

    public init(lineNumber: Int, line: SaleLine, returned: Decimal) {
        self.lineNumber = lineNumber
        self.line = line
        self.returned = returned
    }

    public var remaining: Decimal { line.quantity - returned }
}

/// What one return takes back from one sale line: quantity, the package's stock, and money, each the
/// difference of the line's cumulative returned share before and after, so that a line returned in parts
/// adds up exactly to the line.
public struct ReturnedLine: Sendable, Hashable {
    public var lineNumber: Int
    public var packageLabel: String
    /// In the unit the line was sold in.
    public var quantity: Decimal
    public var unit: String
    /// In the package's own unit, exactly, in 10⁻¹² of it.
    public var packagePicos: Int64
    public var totalAmount: Money
    public var discountAmount: Money?
    public var taxes: LineTaxes?

    public init(lineNumber: Int, packageLabel: String, quantity: Decimal, unit: String, packagePicos: Int64,
                totalAmount: Money, discountAmount: Money?, taxes: LineTaxes?) {
        self.lineNumber = lineNumber
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unit = unit
        self.packagePicos = packagePicos
        self.totalAmount = totalAmount
        self.discountAmount = discountAmount
        self.taxes = taxes
    }
}

/// How a return reaches Metrc.
public enum ReturnMetrcAction: String, Sendable, Codable {
    /// Folded into the sale's receipt before it left: Metrc gets the receipt as it now stands, or nothing.
    case folded
    /// `PUT /sales/v2/receipts`: the receipt's full content less what came back.
    case update
    /// `DELETE /sales/v2/receipts/{id}`: nothing of the sale remains.
    case archive
}

/// A recorded return, with where it stands with Metrc.
public struct SaleReturn: Sendable, Hashable {
    public var id: Int64
    public var clientReturnId: String
    public var saleId: Int64
    public var actor: String
    public var reason: String
    public var disposition: ReturnDisposition
    public var note: String?
    public var returnedAt: Date
    public var businessDate: String
    public var lines: [ReturnedLine]
    public var totalAmount: Money
    public var metrcAction: ReturnMetrcAction
    /// `pendingReport` while a write it caused is owed, `rejected` when Metrc refused one, else `reported`.
    public var status: SaleStatus
    /// Metrc's words, when it refused.
    public var rejection: [String]?

    public init(id: Int64, clientReturnId: String, saleId: Int64, actor: String, reason: String,
                disposition: ReturnDisposition, note: String?, returnedAt: Date, businessDate: String,
                lines: [ReturnedLine], totalAmount: Money, metrcAction: ReturnMetrcAction, status: SaleStatus,
                rejection: [String]?) {
        self.id = id
        self.clientReturnId = clientReturnId
        self.saleId = saleId
        self.actor = actor
        self.reason = reason
        self.disposition = disposition
        self.note = note
        self.returnedAt = returnedAt
        self.businessDate = businessDate
        self.lines = lines
        self.totalAmount = totalAmount
        self.metrcAction = metrcAction
        self.status = status
        self.rejection = rejection
    }
}

/// How much of a sale a return takes, and what the sale comes to afterwards.
public enum ReturnRules {
    /// How a return reaches Metrc, from where its sale's receipt stands: not sent yet (folded into it), or
    /// (possibly) in Metrc, then edited or, when nothing remains, archived, a finalized receipt unfinalized
    /// first and (when edited) finalized again. Wasted goods add an adjust after these.
    public static func metrcWrites(receiptUnsent: Bool, finalInMetrc: Bool, nothingRemains: Bool)
        -> (action: ReturnMetrcAction, writes: [JournalKind]) {
        if receiptUnsent { return (.folded, []) }
        if nothingRemains { return (.archive, (finalInMetrc ? [.receiptUnfinalize] : []) + [.receiptArchive]) }
        return (.update, finalInMetrc ? [.receiptUnfinalize, .receiptUpdate, .receiptFinalize] : [.receiptUpdate])
    }

    /// The reasons a facility accepts when it names none: `TILL_RETURN_REASONS` replaces them.
    public static let defaultReasons = ["Defective", "Wrong item", "Customer changed mind", "Adverse reaction"]

    /// Checks the request's shape: an id, a known reason, lines or `all` (not both), positive quantities in
    /// at most six decimal places, and a note when one is required.
    public static func checkShape(_ request: ReturnRequest, reasons: [String]) throws(TillError) -> String {
        guard !request.clientReturnId.isEmpty, request.clientReturnId.count <= 64,
              request.clientReturnId.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) }) else {
            throw .invalid("invalid_client_return_id", "clientReturnId is 1 to 64 letters, digits, '-', '_', '.' or ':'.",
                           details: ["field": "clientReturnId"])
        }
        guard let reason = reasons.first(where: { $0.caseInsensitiveCompare(request.reason.trimmingCharacters(in: .whitespaces)) == .orderedSame }) else {
            throw .invalid("unknown_return_reason", "reason must be one of: \(reasons.joined(separator: ", ")).",
                           details: ["field": "reason", "reasons": reasons.joined(separator: "\n")])
        }
        guard request.all != !request.lines.isEmpty else {
            throw .invalid("invalid_return_lines", "Give either lines to return or \"all\": true, not both and not neither.",
                           details: ["field": "lines"])
        }
        for (index, line) in request.lines.enumerated() {
            guard line.quantity > 0, Quantities.hasAtMost(Quantities.inputDecimalPlaces, decimalPlacesIn: line.quantity) else {
                throw .invalid("invalid_quantity", "Line \(index): a quantity is positive, with at most \(Quantities.inputDecimalPlaces) decimal places.",
                               details: ["line": "\(index)", "field": "quantity"])
            }
        }
        if let note = request.note, note.count > 500 {
            throw .invalid("invalid_note", "note is at most 500 characters.", details: ["field": "note"])
        }
        return reason
    }

    /// What the return takes from each sale line. A requested line goes to the sale's lines of that package in
    /// their order; more than remains, a package not on the sale, or another unit is refused, naming the line.
    public static func plan(_ request: ReturnRequest, lines: [ReturnableLine]) throws(TillError) -> [ReturnedLine] {
        var wanted: [(lineNumber: Int, quantity: Decimal)] = []
        if request.all {
            wanted = lines.filter { $0.remaining > 0 }.map { ($0.lineNumber, $0.remaining) }
            guard !wanted.isEmpty else {
                throw .unprocessable("nothing_to_return", "Everything this sale sold has been returned already.")
            }
        } else {
            var left = Dictionary(uniqueKeysWithValues: lines.map { ($0.lineNumber, $0.remaining) })
            for (index, asked) in request.lines.enumerated() {
                let details = ["line": "\(index)", "packageLabel": asked.packageLabel]
                let candidates = lines.filter { $0.line.packageLabel.caseInsensitiveCompare(asked.packageLabel) == .orderedSame }
                guard !candidates.isEmpty else {
                    throw .unprocessable("line_not_on_sale", "Line \(index): package \(asked.packageLabel) is not on this sale.", details: details)
                }
                guard let unit = candidates.first(where: { $0.line.unit.caseInsensitiveCompare(asked.unit) == .orderedSame })?.line.unit else {
                    throw .unprocessable("return_unit_mismatch",
                                         "Line \(index): package \(asked.packageLabel) was sold in \(candidates[0].line.unit); return it in that unit.",
                                         details: details.merging(["unit": candidates[0].line.unit]) { a, _ in a })
                }
                var needed = asked.quantity
                for candidate in candidates where candidate.line.unit == unit && needed > 0 {
                    let take = min(needed, left[candidate.lineNumber, default: 0])
                    guard take > 0 else { continue }
                    wanted.append((candidate.lineNumber, take))
                    left[candidate.lineNumber, default: 0] -= take
                    needed -= take
                }
                guard needed == 0 else {
                    let remaining = candidates.filter { $0.line.unit == unit }.reduce(Decimal(0)) { $0 + $1.remaining }
                    throw .unprocessable("return_exceeds_sale",
                                         "Line \(index): \(asked.quantity) \(unit) of \(asked.packageLabel) is more than remains to return (\(remaining)).",
                                         details: details.merging(["remaining": "\(remaining)", "unit": unit]) { a, _ in a })
                }
            }
        }
        let byNumber = Dictionary(uniqueKeysWithValues: lines.map { ($0.lineNumber, $0) })
        var merged: [Int: Decimal] = [:]
        for item in wanted { merged[item.lineNumber, default: 0] += item.quantity }
        return merged.keys.sorted().map { number in
            let line = byNumber[number]!
            return returned(merged[number]!, of: line)
        }
    }

    /// The share of a line that `quantity` more takes back, on top of what was returned before.
    public static func returned(_ quantity: Decimal, of line: ReturnableLine) -> ReturnedLine {
        let before = line.returned, after = line.returned + quantity
        let sold = line.line
        func share(_ amount: Money?) -> Money? {
            amount.map { Money(cents: cumulative($0, after, of: sold.quantity).cents - cumulative($0, before, of: sold.quantity).cents) }
        }
        let picos = cumulativePicos(sold.packageDecrementPicos, after, of: sold.quantity)
            - cumulativePicos(sold.packageDecrementPicos, before, of: sold.quantity)
        let taxes = sold.taxes.map { taxes in
            LineTaxes(salesTax: share(taxes.salesTax), exciseTax: share(taxes.exciseTax), cityTax: share(taxes.cityTax),
                      countyTax: share(taxes.countyTax), municipalTax: share(taxes.municipalTax))
        }
        return ReturnedLine(lineNumber: line.lineNumber, packageLabel: sold.packageLabel, quantity: quantity, unit: sold.unit,
                            packagePicos: picos, totalAmount: share(sold.totalAmount)!, discountAmount: share(sold.discountAmount),
                            taxes: taxes)
    }

    /// The line as it stands once `returned` of it has come back: Metrc's receipt keeps this (nil: nothing left).
    public static func remaining(of line: SaleLine, returned: Decimal) -> SaleLine? {
        guard returned < line.quantity else { return nil }
        func left(_ amount: Money?) -> Money? {
            amount.map { Money(cents: $0.cents - cumulative($0, returned, of: line.quantity).cents) }
        }
        var rest = line
        rest.quantity = line.quantity - returned
        rest.totalAmount = left(line.totalAmount)!
        rest.discountAmount = left(line.discountAmount)
        rest.taxes = line.taxes.map { taxes in
            LineTaxes(salesTax: left(taxes.salesTax), exciseTax: left(taxes.exciseTax), cityTax: left(taxes.cityTax),
                      countyTax: left(taxes.countyTax), municipalTax: left(taxes.municipalTax))
        }
        rest.packageDecrementPicos = line.packageDecrementPicos - cumulativePicos(line.packageDecrementPicos, returned, of: line.quantity)
        return rest
    }

    /// `amount × part / whole` rounded half-even to the cent, from the cumulative part: the same part always
    /// comes to the same cents, and the whole to the amount itself, so parts never drift from the line.
    static func cumulative(_ amount: Money, _ part: Decimal, of whole: Decimal) -> Money {
        guard part < whole else { return amount }
        guard part > 0 else { return .zero }
        var exact = Decimal(amount.cents) * part / whole
        var rounded = Decimal()
        NSDecimalRound(&rounded, &exact, 0, .bankers)
        return Money(cents: NSDecimalNumber(decimal: rounded).int64Value)
    }

    /// The package picos `part` of a line takes (exact when the sale's conversion was; rounded down to the
    /// pico otherwise, the whole line always exactly its decrement).
    static func cumulativePicos(_ picos: Int64, _ part: Decimal, of whole: Decimal) -> Int64 {
        guard part < whole else { return picos }
        guard part > 0 else { return 0 }
        var exact = Decimal(picos) * part / whole
        var rounded = Decimal()
        NSDecimalRound(&rounded, &exact, 0, .down)
        return NSDecimalNumber(decimal: rounded).int64Value
    }
}
