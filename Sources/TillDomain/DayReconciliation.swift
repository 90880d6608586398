import Foundation

/// One line of a receipt as both sides are compared: which package, how much, for how much.
public struct ReceiptLine: Sendable, Hashable {
    public var packageLabel: String
    public var quantity: Decimal
    public var totalAmount: Decimal
    public var category: String?

    public init(packageLabel: String, quantity: Decimal, totalAmount: Decimal, category: String? = nil) {
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.totalAmount = totalAmount
        self.category = category
    }

    var key: String { "\(packageLabel.uppercased())|\(quantity)|\(totalAmount)" }
}

/// A sale of the day as Metrc should hold it now, by Till's record (its returns taken off).
public struct ExpectedReceipt: Sendable, Hashable {
    public var saleId: Int64
    public var receiptNumber: String
    public var recordedId: Int64?
    public var customerType: String
    public var patientLicenseNumber: String?
    /// Facility-local wall-clock time, as Metrc holds it.
    public var salesDateTime: String
    /// Lines as they remain after returns; empty when everything came back.
    public var lines: [ReceiptLine]
    /// Everything came back after Metrc had it: Metrc should hold it archived.
    public var archived: Bool
    /// Till still owes Metrc a write for it (or one is in doubt).
    public var owed: Bool
    /// Metrc refused its receipt: Metrc should hold nothing, and Metrc's words say why.
    public var refusal: [String]?
    /// Finalized in Metrc as far as Till knows.
    public var final: Bool

    public init(saleId: Int64, receiptNumber: String, recordedId: Int64?, customerType: String, patientLicenseNumber: String?,
                salesDateTime: String, lines: [ReceiptLine], archived: Bool, owed: Bool, refusal: [String]?, final: Bool) {
        self.salesDateTime = salesDateTime
        self.saleId = saleId
        self.receiptNumber = receiptNumber
        self.recordedId = recordedId
        self.customerType = customerType
        self.patientLicenseNumber = patientLicenseNumber
        self.lines = lines
        self.archived = archived
        self.owed = owed
        self.refusal = refusal
        self.final = final
    }
}

/// A receipt as Metrc holds it.
public struct HeldReceipt: Sendable, Hashable {
    public var id: Int64
    public var externalReceiptNumber: String?
    public var customerType: String?
    public var patientLicenseNumber: String?
    public var salesDateTime: String?
    public var lines: [ReceiptLine]
    public var archived: Bool
    public var final: Bool
    public var totalPrice: Decimal

    public init(id: Int64, externalReceiptNumber: String?, customerType: String?, patientLicenseNumber: String?,
                salesDateTime: String?, lines: [ReceiptLine], archived: Bool, final: Bool, totalPrice: Decimal) {
        self.salesDateTime = salesDateTime
        self.id = id
        self.externalReceiptNumber = externalReceiptNumber
        self.customerType = customerType
        self.patientLicenseNumber = patientLicenseNumber
        self.lines = lines
        self.archived = archived
        self.final = final
        self.totalPrice = totalPrice
    }
}

/// How a receipt of the day stands between Till and Metrc.
public enum DayStanding: String, Sendable, Codable, CaseIterable {
    case matched
    /// Till still owes Metrc a write for it.
    case pending
    /// Till believed Metrc held it; Metrc does not.
    case missingInMetrc = "missing_in_metrc"
    /// Metrc holds it otherwise than Till's record: each difference named.
    case changedInMetrc = "changed_in_metrc"
    /// Metrc holds Till's receipt number more than once.
    case duplicate
    /// Metrc holds it and Till never issued it (made on the website or by another system): never touched.
    case unknownToTill = "unknown_to_till"

    /// A difference a manager must resolve (repair) before the day can close.
    public var isDifference: Bool { self == .missingInMetrc || self == .changedInMetrc || self == .duplicate }
}

/// One row of the day view.
public struct DayEntry: Sendable, Hashable {
    public var standing: DayStanding
    public var saleId: Int64?
    public var receiptNumber: String?
    /// Metrc's receipts for it (active first).
    public var metrcIds: [Int64]
    public var differences: [String]
    public var expected: ExpectedReceipt?
    public var held: [HeldReceipt]
}

/// Till's receipts of a day and Metrc's, side by side.
public enum DayReconciliation {
    public static func classify(expected: [ExpectedReceipt], held: [HeldReceipt]) -> [DayEntry] {
        var byNumber: [String: [HeldReceipt]] = [:]
        for receipt in held {
            byNumber[(receipt.externalReceiptNumber ?? "").uppercased(), default: []].append(receipt)
        }
        var claimed = Set<String>()
        var entries: [DayEntry] = []
        for sale in expected {
            let key = sale.receiptNumber.uppercased()
            claimed.insert(key)
            let copies = (byNumber[key] ?? []).sorted { ($0.archived ? 1 : 0, $0.id) < ($1.archived ? 1 : 0, $1.id) }
            let active = copies.filter { !$0.archived }
            func entry(_ standing: DayStanding, _ differences: [String] = []) -> DayEntry {
                DayEntry(standing: standing, saleId: sale.saleId, receiptNumber: sale.receiptNumber, metrcIds: copies.map(\.id),
                         differences: differences, expected: sale, held: copies)
            }
            if sale.owed {
                entries.append(entry(.pending))
            } else if let refusal = sale.refusal {
                entries.append(active.isEmpty ? entry(.missingInMetrc, ["Metrc refused it: " + refusal.joined(separator: "; ")])
                               : entry(.changedInMetrc, ["Metrc refused Till's receipt but holds one under its number"]))
            } else if sale.archived {
                entries.append(active.isEmpty ? entry(.matched)
                               : entry(.changedInMetrc, ["returned in full, yet active in Metrc"]))
            } else if active.count > 1 {
                entries.append(entry(.duplicate, ["Metrc holds it \(active.count) times: \(active.map { "\($0.id)" }.joined(separator: ", "))"]))
            } else if let receipt = active.first {
                let differences = compare(sale, receipt)
                entries.append(differences.isEmpty ? entry(.matched) : entry(.changedInMetrc, differences))
            } else if !copies.isEmpty {
                entries.append(entry(.changedInMetrc, ["archived in Metrc"]))
            } else {
                entries.append(entry(.missingInMetrc, ["not in Metrc"]))
            }
        }
        for (number, receipts) in byNumber.sorted(by: { $0.key < $1.key }) where !claimed.contains(number) {
            for receipt in receipts where !receipt.archived {
                entries.append(DayEntry(standing: .unknownToTill, saleId: nil, receiptNumber: receipt.externalReceiptNumber,
                                        metrcIds: [receipt.id], differences: [], expected: nil, held: [receipt]))
            }
        }
        return entries
    }

    /// What differs between Till's record and Metrc's receipt, each in a short sentence.
    static func compare(_ sale: ExpectedReceipt, _ receipt: HeldReceipt) -> [String] {
        var differences: [String] = []
        if let recorded = sale.recordedId, recorded != receipt.id {
            differences.append("Metrc's receipt is \(receipt.id); Till recorded \(recorded)")
        }
        // To the second: Metrc writes the time back with or without its milliseconds.
        if let time = receipt.salesDateTime, time.prefix(19) != sale.salesDateTime.prefix(19) {
            differences.append("sold at \(time.prefix(19)) in Metrc, \(sale.salesDateTime.prefix(19)) in Till")
        }
        if let type = receipt.customerType, type.caseInsensitiveCompare(sale.customerType) != .orderedSame {
            differences.append("customer type \(type) in Metrc, \(sale.customerType) in Till")
        }
        if (receipt.patientLicenseNumber ?? "").uppercased() != (sale.patientLicenseNumber ?? "").uppercased() {
            differences.append("patient \(receipt.patientLicenseNumber ?? "none") in Metrc, \(sale.patientLicenseNumber ?? "none") in Till")
        }
        let ours = Dictionary(grouping: sale.lines, by: { $0.packageLabel.uppercased() })
        let theirs = Dictionary(grouping: receipt.lines, by: { $0.packageLabel.uppercased() })
        for label in Set(ours.keys).union(theirs.keys).sorted() {
            let mine = ours[label] ?? [], held = theirs[label] ?? []
            let name = (mine.first ?? held.first)?.packageLabel ?? label
            if mine.isEmpty {
                differences.append("line \(name) is in Metrc only")
            } else if held.isEmpty {
                differences.append("line \(name) is missing in Metrc")
            } else {
                let quantity = (mine.reduce(0) { $0 + $1.quantity }, held.reduce(0) { $0 + $1.quantity })
                let amount = (mine.reduce(0) { $0 + $1.totalAmount }, held.reduce(0) { $0 + $1.totalAmount })
                if quantity.0 != quantity.1 { differences.append("line \(name): quantity \(quantity.1) in Metrc, \(quantity.0) in Till") }
                if amount.0 != amount.1 { differences.append("line \(name): amount \(amount.1) in Metrc, \(amount.0) in Till") }
            }
        }
        return differences
    }
}
