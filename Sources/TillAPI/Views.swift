import Foundation
import JSONWriting
import TillDomain
import TillReporter
import TillStore

/// A sale as registers see it.
/// A sale as registers see it; written by `JSONWriter` (every sale's answer), keys sorted.
struct SaleView {
    var id: Int64
    var clientSaleId: String
    var receiptNumber: String
    var status: String
    var metrcReceiptId: Int64?
    var salesDateTime: String
    var businessDate: String
    var customerType: String
    var patientLicenseNumber: String?
    var caregiverLicenseNumber: String?
    var lines: [LineView]
    var totalAmount: Money
    var reportedAt: Date?
    var rejection: [String]?
    /// Only for rejected sales: true when the refusal undid the sale, false when it stands as an exception.
    var saleUndone: Bool?
    /// The sale's returns, where they are asked for (a sale's own page; not the answer to a new sale).
    var returns: [SaleReturn]?

    struct LineView {
        var packageLabel: String
        var quantity: Decimal
        var unit: String
        var totalAmount: Money
        var discountAmount: Money?
        var taxes: LineTaxes?

        func write(into json: inout JSONWriter) {
            json.object { json in
                json.field("discountAmount", discountAmount)
                json.field("packageLabel", packageLabel)
                json.field("quantity", quantity)
                if let taxes { json.field("taxes") { json in taxes.write(into: &json) } }
                json.field("totalAmount", totalAmount)
                json.field("unit", unit)
            }
        }
    }

    init(_ sale: Sale, returns: [SaleReturn]? = nil) {
        self.returns = returns
        id = sale.id
        clientSaleId = sale.clientSaleId
        receiptNumber = sale.receiptNumber
        status = sale.status.rawValue
        metrcReceiptId = sale.metrcReceiptId
        salesDateTime = sale.salesDateTime
        businessDate = sale.businessDate
        customerType = sale.customerType.rawValue
        patientLicenseNumber = sale.patientLicenseNumber
        caregiverLicenseNumber = sale.caregiverLicenseNumber
        lines = sale.lines.map {
            LineView(packageLabel: $0.packageLabel, quantity: $0.quantity, unit: $0.unit, totalAmount: $0.totalAmount,
                     discountAmount: $0.discountAmount, taxes: $0.taxes)
        }
        totalAmount = sale.totalAmount
        reportedAt = sale.reportedAt
        rejection = sale.rejection
        saleUndone = sale.status == .rejected ? sale.saleUndone : nil
    }

    func write(into json: inout JSONWriter) {
        json.object { json in
            json.field("businessDate", businessDate)
            json.field("caregiverLicenseNumber", caregiverLicenseNumber)
            json.field("clientSaleId", clientSaleId)
            json.field("customerType", customerType)
            json.field("id", id)
            json.field("lines") { json in json.array(lines) { json, line in line.write(into: &json) } }
            json.field("metrcReceiptId", metrcReceiptId)
            json.field("patientLicenseNumber", patientLicenseNumber)
            json.field("receiptNumber", receiptNumber)
            json.field("rejection", rejection)
            json.field("reportedAt", reportedAt)
            if let returns {
                json.field("returns") { json in json.array(returns) { json, r in ReturnView(r).write(into: &json) } }
            }
            json.field("saleUndone", saleUndone)
            json.field("salesDateTime", salesDateTime)
            json.field("status", status)
            json.field("totalAmount", totalAmount)
        }
    }
}

struct SalesListView {
    var date: String
    var count: Int
    /// Sum over sales that stand (those undone by a refusal excluded), before returns.
    var grossAmount: Money
    /// What returns of these sales gave back.
    var returnedAmount: Money
    /// The day net of returns: gross less returned.
    var totalAmount: Money { Money(cents: grossAmount.cents - returnedAmount.cents) }
    var sales: [SaleView]

    func write(into json: inout JSONWriter) {
        json.object { json in
            json.field("count", Int64(count))
            json.field("date", date)
            json.field("grossAmount", grossAmount)
            json.field("returnedAmount", returnedAmount)
            json.field("sales") { json in json.array(sales) { json, sale in sale.write(into: &json) } }
            json.field("totalAmount", totalAmount)
        }
    }
}

extension LineTaxes {
    func write(into json: inout JSONWriter) {
        json.object { json in
            json.field("cityTax", cityTax)
            json.field("countyTax", countyTax)
            json.field("exciseTax", exciseTax)
            json.field("municipalTax", municipalTax)
            json.field("salesTax", salesTax)
        }
    }
}

struct PackageView: Encodable {
    var label: String
    var itemName: String
    var category: String?
    var quantity: Decimal
    var unit: String
    var onHold: Bool
    var labTestingState: String?

    init(_ package: PackageSnapshot) {
        label = package.label
        itemName = package.itemName
        category = package.category
        quantity = package.quantity
        unit = package.unit
        onHold = package.onHold
        labTestingState = package.labTestingState
    }
}

struct PackagesView: Encodable {
    var packages: [PackageView]
}

struct ReportingView: Encodable {
    struct Rejected: Encodable {
        var saleId: Int64
        var receiptNumber: String
        var clientSaleId: String
        var salesDateTime: String
        var totalAmount: Money
        var messages: [String]
        /// True: refused at the register and undone. False: the sale stands; a manager must resolve it with Metrc.
        var saleUndone: Bool
    }
    struct MetrcView: Encodable {
        var reachable: Bool?
        var lastError: String?
        var lastErrorAt: Date?
        var lastSuccessAt: Date?
    }
    /// Every write owed to Metrc, by kind; those in doubt with their age; those Metrc refused with its words.
    struct JournalView: Encodable {
        struct Write: Encodable {
            var id: Int64
            var kind: String
            var subject: String
            var attempts: Int
            /// In doubt: since when its last attempt may be landing in Metrc, and for how long.
            var attemptStartedAt: Date?
            var ageSeconds: Int?
            var lastError: String?
            /// Refused: Metrc's words.
            var messages: [String]?
            var refusedAt: Date?
        }
        var pending: Int
        var pendingByKind: [String: Int]
        /// Owed writes held back by a refused earlier write of their subject.
        var blocked: Int
        var inDoubt: [Write]
        var refused: [Write]
        /// Duplicate receipts in Metrc that the sweep archived.
        var duplicatesArchived: Int

        init(_ summary: JournalSummary, now: Date) {
            pending = summary.pending
            pendingByKind = Dictionary(uniqueKeysWithValues: summary.pendingByKind.map { ($0.key.rawValue, $0.value) })
            blocked = summary.blocked
            inDoubt = summary.inDoubt.map { row in
                Write(id: row.id, kind: row.kind.rawValue, subject: "\(row.subject)", attempts: row.attempts,
                      attemptStartedAt: row.attemptStartedAt,
                      ageSeconds: row.attemptStartedAt.map { max(0, Int(now.timeIntervalSince($0))) },
                      lastError: row.lastError)
            }
            refused = summary.refused.map { row in
                Write(id: row.id, kind: row.kind.rawValue, subject: "\(row.subject)", attempts: row.attempts,
                      messages: row.refusal ?? [], refusedAt: row.refusedAt)
            }
            duplicatesArchived = summary.duplicatesArchived
        }
    }

    /// Every sale not yet confirmed in Metrc.
    var pending: Int
    var oldestPendingSoldAt: Date?
    var rejected: [Rejected]
    var lastReportedAt: Date?
    var metrc: MetrcView
    var journal: JournalView
    /// Returns whose writes Metrc still owes, and returns Metrc refused (each also in `journal.refused`).
    var returns: ReturnCounts
    /// What a manager must look at: days whose sales are still unreported as the state's deadline nears (or
    /// has passed), and deliveries or trips frozen because Metrc shows a step Till did not take.
    var alerts: [DeadlineAlert] = []

    struct DeadlineAlert: Encodable {
        /// `reporting_deadline`, `delivery_frozen` or `trip_frozen`.
        var kind: String = "reporting_deadline"
        var date: String?
        var pending: Int?
        var deadline: Date?
        var overdue: Bool?
        /// A frozen delivery or trip: `delivery:7`, `trip:3`.
        var subject: String?
        var message: String
    }

    struct ReturnCounts: Encodable {
        var pending: Int
        var rejected: Int
    }

    init(summary: ReportingSummary, journal: JournalSummary, returns: (pending: Int, rejected: Int),
         health: MetrcHealth.Snapshot, now: Date) {
        self.journal = JournalView(journal, now: now)
        self.returns = ReturnCounts(pending: returns.pending, rejected: returns.rejected)
        pending = summary.pending
        oldestPendingSoldAt = summary.oldestPendingSoldAt
        rejected = summary.rejected.map {
            Rejected(saleId: $0.id, receiptNumber: $0.receiptNumber, clientSaleId: $0.clientSaleId,
                     salesDateTime: $0.salesDateTime, totalAmount: $0.totalAmount, messages: $0.rejection ?? [],
                     saleUndone: $0.saleUndone)
        }
        lastReportedAt = summary.lastReportedAt
        metrc = MetrcView(reachable: health.reachable, lastError: health.lastError ?? summary.lastError,
                          lastErrorAt: health.lastErrorAt, lastSuccessAt: health.lastSuccessAt)
    }
}

struct HealthView: Encodable {
    var status: String
    var license: String
    var journalMode: String
    var synchronous: String
    var pendingReports: Int
}

/// A return as managers and registers see it; written by `JSONWriter` like the sale it belongs to, keys sorted.
struct ReturnView {
    let saleReturn: SaleReturn

    init(_ saleReturn: SaleReturn) {
        self.saleReturn = saleReturn
    }

    func write(into json: inout JSONWriter) {
        let r = saleReturn
        json.object { json in
            json.field("businessDate", r.businessDate)
            json.field("clientReturnId", r.clientReturnId)
            json.field("disposition", r.disposition.rawValue)
            json.field("id", r.id)
            json.field("lines") { json in
                json.array(r.lines) { json, line in
                    SaleView.LineView(packageLabel: line.packageLabel, quantity: line.quantity, unit: line.unit,
                                      totalAmount: line.totalAmount, discountAmount: line.discountAmount, taxes: line.taxes)
                        .write(into: &json)
                }
            }
            json.field("metrcAction", r.metrcAction.rawValue)
            json.field("note", r.note)
            json.field("reason", r.reason)
            json.field("rejection", r.rejection)
            json.field("returnedAt", r.returnedAt)
            json.field("returnedBy", r.actor)
            json.field("saleId", r.saleId)
            json.field("status", r.status.rawValue)
            json.field("totalAmount", r.totalAmount)
        }
    }
}

/// Returned goods held off the shelf (`GET /v1/quarantine`).
struct HeldStockView: Encodable {
    struct Item: Encodable {
        var returnId: Int64
        var saleId: Int64
        var packageLabel: String
        var disposition: String
        var quantity: Decimal
        var unit: String
        var heldAt: Date
    }
    struct Package: Encodable {
        var packageLabel: String
        var quantity: Decimal
        var unit: String
    }
    var items: [Item]
    /// Held per package, all returns together: never sellable, whatever Metrc's count says.
    var packages: [Package]

    init(_ held: [HeldStock]) {
        items = held.map {
            Item(returnId: $0.returnId, saleId: $0.saleId, packageLabel: $0.packageLabel, disposition: $0.disposition.rawValue,
                 quantity: $0.quantity, unit: $0.unit, heldAt: $0.heldAt)
        }
        packages = Dictionary(grouping: held, by: \.packageLabel).map { label, entries in
            Package(packageLabel: label, quantity: entries.reduce(Decimal(0)) { $0 + $1.quantity }, unit: entries[0].unit)
        }.sorted { $0.packageLabel < $1.packageLabel }
    }
}
