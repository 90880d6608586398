import Foundation
import TillDomain
import TillReporter
import TillStore

/// The day view as JSON (`GET /v1/days/{date}`).
struct DayJSON: Encodable {
    struct Receipt: Encodable {
        var standing: String
        var saleId: Int64?
        var receiptNumber: String?
        var metrcIds: [Int64]
        var differences: [String]
        var tillAmount: Decimal?
        var metrcAmount: Decimal?
    }
    struct Totals: Encodable {
        struct Group: Encodable {
            var receipts: Int
            var amount: Decimal
        }
        var receipts: Int
        var amount: Decimal
        var byCustomerType: [String: Group]
        var byCategory: [String: Decimal]
        var taxes: [String: Decimal]?
        var returned: Decimal
        var voided: Int

        init(_ totals: DayTotals) {
            receipts = totals.receipts
            amount = totals.amount
            byCustomerType = totals.byCustomerType.mapValues { Group(receipts: $0.receipts, amount: $0.amount) }
            byCategory = totals.byCategory
            taxes = totals.taxes
            returned = totals.returned
            voided = totals.voided
        }
    }
    struct Close: Encodable {
        /// `open`, `closing` (finalizes under way or scheduled) or `closed`.
        var status: String
        var requestedAt: Date?
        var requestedBy: String?
        var finalizeAfter: Date?
        var receipts: Int?
        var finalized: Int?
        var refused: Int?
        var closedAt: Date?

        init(_ close: DayClose?) {
            guard let close else {
                status = "open"
                return
            }
            status = close.closedAt == nil ? "closing" : "closed"
            requestedAt = close.requestedAt
            requestedBy = close.requestedBy
            finalizeAfter = close.finalizeAfter
            receipts = close.receipts
            finalized = close.finalized
            refused = close.refused
            closedAt = close.closedAt
        }
    }
    struct Amendment: Encodable {
        var returnId: Int64
        var saleId: Int64
        var returnedAt: Date
        var returnedBy: String
        var totalAmount: Money
        var status: String
    }

    var date: String
    var windowStart: Date
    var windowEnd: Date
    var generatedAt: Date
    /// Receipts per standing.
    var summary: [String: Int]
    var receipts: [Receipt]
    var till: Totals
    var metrc: Totals
    var close: Close
    /// Returns made after the day was closed: the day is "amended after close".
    var amendedAfterClose: [Amendment]

    init(_ view: DayView) {
        date = view.date
        windowStart = view.windowStart
        windowEnd = view.windowEnd
        generatedAt = view.generatedAt
        summary = Dictionary(uniqueKeysWithValues: DayStanding.allCases.map { ($0.rawValue, view.count($0)) })
        receipts = view.entries.map { entry in
            Receipt(standing: entry.standing.rawValue, saleId: entry.saleId, receiptNumber: entry.receiptNumber,
                    metrcIds: entry.metrcIds, differences: entry.differences,
                    tillAmount: entry.expected.map { $0.lines.reduce(0) { $0 + $1.totalAmount } },
                    metrcAmount: entry.held.first { !$0.archived }?.totalPrice)
        }
        till = Totals(view.till)
        metrc = Totals(view.metrc)
        close = Close(view.close)
        amendedAfterClose = view.amendedAfterClose.map {
            Amendment(returnId: $0.id, saleId: $0.saleId, returnedAt: $0.returnedAt, returnedBy: $0.actor, totalAmount: $0.totalAmount,
                      status: $0.status.rawValue)
        }
    }

    /// The same as CSV: the receipts, then the totals side by side.
    var csv: String {
        var rows = [["standing", "receiptNumber", "saleId", "metrcIds", "tillAmount", "metrcAmount", "differences"]]
        for receipt in receipts {
            rows.append([receipt.standing, receipt.receiptNumber ?? "", receipt.saleId.map { "\($0)" } ?? "",
                         receipt.metrcIds.map { "\($0)" }.joined(separator: " "), receipt.tillAmount.map { "\($0)" } ?? "",
                         receipt.metrcAmount.map { "\($0)" } ?? "", receipt.differences.joined(separator: "; ")])
        }
        rows.append([])
        rows.append(["total", "side", "group", "receipts", "amount"])
        for (side, totals) in [("till", till), ("metrc", metrc)] {
            rows.append(["total", side, "all", "\(totals.receipts)", "\(totals.amount)"])
            for (type, group) in totals.byCustomerType.sorted(by: { $0.key < $1.key }) {
                rows.append(["total", side, "customerType:\(type)", "\(group.receipts)", "\(group.amount)"])
            }
            for (category, amount) in totals.byCategory.sorted(by: { $0.key < $1.key }) {
                rows.append(["total", side, "category:\(category)", "", "\(amount)"])
            }
            for (kind, amount) in (totals.taxes ?? [:]).sorted(by: { $0.key < $1.key }) {
                rows.append(["total", side, "tax:\(kind)", "", "\(amount)"])
            }
            rows.append(["total", side, "returned", "", "\(totals.returned)"])
            rows.append(["total", side, "voided", "\(totals.voided)", ""])
        }
        return CSV.text(rows)
    }
}

/// The day report (`GET /v1/days/{date}/report`): what a manager files and prints.
struct DayReportJSON: Encodable {
    var date: String
    var gross: Decimal
    var discounts: Decimal
    var returns: Decimal
    var net: Decimal
    var taxes: [String: Decimal]
    var byCustomerType: [String: DayJSON.Totals.Group]
    var byCategory: [String: Decimal]
    /// Receipts per standing between Till and Metrc.
    var reconciliation: [String: Int]
    var metrc: DayJSON.Totals
    var close: DayJSON.Close

    init(_ view: DayView, sales: [Sale], returns: [SaleReturn]) {
        let standing = sales.filter { !($0.status == .rejected && $0.saleUndone) && $0.status != .voided }
        date = view.date
        gross = standing.reduce(0) { $0 + $1.totalAmount.decimal }
        discounts = standing.flatMap(\.lines).reduce(0) { $0 + ($1.discountAmount?.decimal ?? 0) }
        self.returns = returns.reduce(0) { $0 + $1.totalAmount.decimal }
        net = gross - self.returns
        taxes = view.till.taxes ?? [:]
        byCustomerType = view.till.byCustomerType.mapValues { .init(receipts: $0.receipts, amount: $0.amount) }
        byCategory = view.till.byCategory
        reconciliation = Dictionary(uniqueKeysWithValues: DayStanding.allCases.map { ($0.rawValue, view.count($0)) })
        metrc = DayJSON.Totals(view.metrc)
        close = DayJSON.Close(view.close)
    }

    var rows: [(String, String)] {
        var rows: [(String, String)] = [("gross", "\(gross)"), ("discounts", "\(discounts)"), ("returns", "\(returns)"),
                                        ("net", "\(net)")]
        rows += taxes.sorted { $0.key < $1.key }.map { ("tax: \($0.key)", "\($0.value)") }
        rows += byCustomerType.sorted { $0.key < $1.key }.map { ("customer type: \($0.key)", "\($0.value.amount) (\($0.value.receipts) receipts)") }
        rows += byCategory.sorted { $0.key < $1.key }.map { ("category: \($0.key)", "\($0.value)") }
        rows += reconciliation.sorted { $0.key < $1.key }.map { ("Metrc: \($0.key)", "\($0.value)") }
        rows.append(("Metrc: total of its active receipts", "\(metrc.amount)"))
        rows.append(("day", close.status))
        return rows
    }

    var csv: String { CSV.text([["item", "value"]] + rows.map { [$0.0, $0.1] }) }

    var html: String {
        let body = rows.map { "<tr><th>\(HTML.escape($0.0))</th><td>\(HTML.escape($0.1))</td></tr>" }.joined(separator: "\n")
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Day report \(HTML.escape(date))</title>
            <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}th,td{border:1px solid #999;padding:.3em .8em;text-align:left}
            td{text-align:right}@media print{body{margin:0}}</style></head>
            <body><h1>Day report \(HTML.escape(date))</h1>
            <table>
            \(body)
            </table></body></html>
            """
    }
}

/// RFC 4180 CSV: fields quoted when they hold a comma, a quote or a line break.
enum CSV {
    static func text(_ rows: [[String]]) -> String {
        rows.map { row in
            row.map { field in
                field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                    ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
            }.joined(separator: ",")
        }.joined(separator: "\r\n") + "\r\n"
    }
}

enum HTML {
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// What a repair sent, or in a dry run would send.
struct RepairJSON: Encodable {
    struct Action: Encodable {
        var kind: String
        var saleId: Int64
        var receiptNumber: String
        var reason: String
        /// The JSON object the write carries, as it will be (or was) journaled.
        var body: String
    }
    var dryRun: Bool
    var actions: [Action]
    /// The day as it stood when the repair looked (before what it sent).
    var day: DayJSON

    init(dryRun: Bool, actions: [RepairAction], day: DayJSON) {
        self.dryRun = dryRun
        self.actions = actions.map { Action(kind: $0.kind.rawValue, saleId: $0.saleId, receiptNumber: $0.receiptNumber,
                                            reason: $0.reason, body: $0.body) }
        self.day = day
    }
}
