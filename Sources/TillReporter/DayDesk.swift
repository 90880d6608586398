import Foundation
import Logging
import MetrcKit
import TillDomain
import TillStore

/// Totals of one side of the day view.
public struct DayTotals: Sendable, Hashable {
    public struct Group: Sendable, Hashable {
        public var receipts: Int
        public var amount: Decimal
    }
    public var receipts: Int
    public var amount: Decimal
    public var byCustomerType: [String: Group]
    public var byCategory: [String: Decimal]
    /// Till only: Metrc's receipt listings carry no taxes.
    public var taxes: [String: Decimal]?
    /// Till: what returns gave back. Metrc: what its archived receipts came to.
    public var returned: Decimal
    /// Till: sales returned in full (archived or voided). Metrc: archived receipts.
    public var voided: Int
}

/// A business day, Till's receipts beside Metrc's.
public struct DayView: Sendable {
    public var date: String
    /// The facility-local day as instants: midnight to midnight (23 or 25 hours when the clocks change).
    public var windowStart: Date
    public var windowEnd: Date
    public var entries: [DayEntry]
    public var till: DayTotals
    public var metrc: DayTotals
    public var close: DayClose?
    /// Returns made after the day was closed: what changed since.
    public var amendedAfterClose: [SaleReturn]
    public var generatedAt: Date

    public func count(_ standing: DayStanding) -> Int { entries.filter { $0.standing == standing }.count }
}

/// One write a repair sends (or, in a dry run, would send).
public struct RepairAction: Sendable, Hashable {
    public var kind: JournalKind
    public var saleId: Int64
    public var receiptNumber: String
    /// What it puts right.
    public var reason: String
    public var body: String
}

/// Why a day cannot close yet.
public struct CloseBlocker: Sendable, Hashable {
    public var kind: String
    public var subject: String
    public var message: String
}

/// What asking to close a day did.
public enum CloseOutcome: Sendable {
    case blocked([CloseBlocker])
    case closing(DayClose)
}

/// The manager's day: Till's receipts and Metrc's side by side, repairs through the journal, and the close.
public final class DayDesk: Sendable {
    private let store: TillStore
    private let metrc: any MetrcAPI
    private let reporter: MetrcReporter
    private let sweep: DuplicateSweep
    private let timeZone: TimeZone
    private let finalizeLag: Int
    private let license: String
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let cache: MetrcDayCache

    public init(store: TillStore, metrc: any MetrcAPI, reporter: MetrcReporter, sweep: DuplicateSweep, timeZone: TimeZone,
                finalizeLagDays: Int, license: String, logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.metrc = metrc
        self.reporter = reporter
        self.sweep = sweep
        self.timeZone = timeZone
        self.finalizeLag = finalizeLagDays
        self.license = license
        self.logger = logger
        self.now = now
        cache = sweep.days
    }

    // MARK: - The view

    public func view(_ date: String) async throws -> DayView {
        let window = try Self.window(date, timeZone)
        return try await view(date, listed: try await Self.askingMetrc { try await cache.receipts(on: date, from: window.start, to: window.end) })
    }

    static func window(_ date: String, _ timeZone: TimeZone) throws(TillError) -> (start: Date, end: Date) {
        guard let window = FacilityDate.window(of: date, in: timeZone) else {
            throw TillError.invalid("invalid_date", "date must be YYYY-MM-DD (the facility's local date).")
        }
        return window
    }

    /// The day view over Metrc's receipts of the day as just listed.
    private func view(_ date: String, listed: [MetrcReceipt]) async throws -> DayView {
        let window = try Self.window(date, timeZone)
        var held = listed
        await store.caughtUp()
        let expected = try store.expectedReceipts(businessDate: date)
        // A receipt of the day Metrc does not list on it may have been moved to another day on the website:
        // looked up by its number, it shows as changed rather than missing.
        let listed = Set(held.compactMap { $0.externalReceiptNumber?.uppercased() })
        for sale in expected where !sale.owed && sale.refusal == nil && !listed.contains(sale.receiptNumber.uppercased()) {
            if let elsewhere = try await Self.askingMetrc({ try await metrc.receipt(externalNumber: sale.receiptNumber) }) {
                held.append(elsewhere)
            }
        }
        let entries = DayReconciliation.classify(expected: expected, held: held.map(Self.held))
        let returns = try store.returns(ofSalesOn: date)
        let sales = try store.sales(businessDate: date)
        let close = try store.dayClose(businessDate: date, at: now())
        return DayView(date: date, windowStart: window.start, windowEnd: window.end, entries: entries,
                       till: Self.tillTotals(expected: expected, sales: sales, returns: returns),
                       metrc: Self.metrcTotals(held.filter { $0.salesDateTime?.prefix(10) == date.prefix(10) }.map(Self.held)),
                       close: close,
                       amendedAfterClose: close?.closedAt.map { closedAt in returns.filter { $0.returnedAt > closedAt } } ?? [],
                       generatedAt: now())
    }

    /// A Metrc read for a manager waiting: Metrc's failure as the manager should hear it (503, retry later).
    static func askingMetrc<T>(_ body: () async throws -> T) async throws(TillError) -> T {
        do {
            return try await body()
        } catch MetrcError.unauthorized(let status, _) {
            throw TillError(.unavailable, code: "metrc_unauthorized", "Metrc refused Till's keys (\(status)); check TILL_METRC_USER_KEY.")
        } catch let error as MetrcError {
            throw TillError(.unavailable, code: "metrc_unavailable", "Metrc could not be asked for the day's receipts: \(error.summary)")
        } catch {
            throw TillError.fromStore(error)
        }
    }

    static func held(_ receipt: MetrcReceipt) -> HeldReceipt {
        HeldReceipt(id: receipt.id, externalReceiptNumber: receipt.externalReceiptNumber, customerType: receipt.salesCustomerType,
                    patientLicenseNumber: receipt.patientLicenseNumber, salesDateTime: receipt.salesDateTime,
                    lines: (receipt.transactions ?? []).map {
                        ReceiptLine(packageLabel: $0.packageLabel ?? "", quantity: $0.quantitySold ?? 0, totalAmount: $0.totalPrice ?? 0,
                                    category: $0.productCategoryName)
                    },
                    archived: receipt.archivedDate != nil, final: receipt.isFinal ?? false,
                    totalPrice: receipt.totalPrice ?? (receipt.transactions ?? []).reduce(0) { $0 + ($1.totalPrice ?? 0) })
    }

    static func tillTotals(expected: [ExpectedReceipt], sales: [Sale], returns: [SaleReturn]) -> DayTotals {
        let standing = expected.filter { $0.refusal == nil && !$0.archived }
        var byType: [String: DayTotals.Group] = [:]
        var byCategory: [String: Decimal] = [:]
        for receipt in standing {
            let amount = receipt.lines.reduce(Decimal(0)) { $0 + $1.totalAmount }
            byType[receipt.customerType, default: .init(receipts: 0, amount: 0)].receipts += 1
            byType[receipt.customerType, default: .init(receipts: 0, amount: 0)].amount += amount
            for line in receipt.lines { byCategory[line.category ?? "Uncategorized", default: 0] += line.totalAmount }
        }
        // Taxes as they stand: each line's less what its returns took back.
        var taxes: [String: Decimal] = [:]
        func add(_ line: LineTaxes?, sign: Decimal) {
            guard let line else { return }
            for (name, money) in [("salesTax", line.salesTax), ("exciseTax", line.exciseTax), ("cityTax", line.cityTax),
                                  ("countyTax", line.countyTax), ("municipalTax", line.municipalTax)] {
                if let money { taxes[name, default: 0] += sign * money.decimal }
            }
        }
        let counted = Set(standing.map(\.saleId))
        for sale in sales where counted.contains(sale.id) { sale.lines.forEach { add($0.taxes, sign: 1) } }
        for saleReturn in returns where counted.contains(saleReturn.saleId) { saleReturn.lines.forEach { add($0.taxes, sign: -1) } }
        return DayTotals(receipts: standing.count, amount: standing.reduce(0) { $0 + $1.lines.reduce(0) { $0 + $1.totalAmount } },
                         byCustomerType: byType, byCategory: byCategory, taxes: taxes,
                         returned: returns.reduce(0) { $0 + $1.totalAmount.decimal },
                         voided: expected.filter(\.archived).count + sales.filter { $0.status == .voided }.count)
    }

    static func metrcTotals(_ held: [HeldReceipt]) -> DayTotals {
        let active = held.filter { !$0.archived }
        var byType: [String: DayTotals.Group] = [:]
        var byCategory: [String: Decimal] = [:]
        for receipt in active {
            byType[receipt.customerType ?? "Unknown", default: .init(receipts: 0, amount: 0)].receipts += 1
            byType[receipt.customerType ?? "Unknown", default: .init(receipts: 0, amount: 0)].amount += receipt.totalPrice
            for line in receipt.lines { byCategory[line.category ?? "Uncategorized", default: 0] += line.totalAmount }
        }
        return DayTotals(receipts: active.count, amount: active.reduce(0) { $0 + $1.totalPrice }, byCustomerType: byType,
                         byCategory: byCategory, taxes: nil, returned: held.filter(\.archived).reduce(0) { $0 + $1.totalPrice },
                         voided: held.filter(\.archived).count)
    }
}

extension DayDesk {
    // MARK: - Repairs

    /// What it takes to make Metrc hold Till's record of the day again: a missing receipt posted again, a
    /// changed one edited back (or posted again, if archived), one Till returned in full archived, extra copies
    /// archived. Receipts Till did not issue are listed in the view and never touched; pending ones are Till's
    /// reporter's already. A dry run returns the plan and sends nothing.
    public func repair(_ date: String, dryRun: Bool, by actor: String) async throws -> (view: DayView, actions: [RepairAction]) {
        let view = try await view(date)
        var actions: [RepairAction] = []
        for entry in view.entries {
            guard let sale = entry.expected, let saleId = entry.saleId, let number = entry.receiptNumber else { continue }
            let active = entry.held.filter { !$0.archived }
            let reason = entry.differences.joined(separator: "; ")
            switch entry.standing {
            case .missingInMetrc where sale.refusal == nil:
                actions.append(RepairAction(kind: .receiptCreate, saleId: saleId, receiptNumber: number, reason: reason,
                                            body: try receiptBody(saleId: saleId, lines: sale)))
            case .changedInMetrc where sale.archived:
                for receipt in active {
                    actions.append(RepairAction(kind: .receiptArchive, saleId: saleId, receiptNumber: number, reason: reason,
                                                body: MetrcBodies.receiptId(receipt.id)))
                }
            case .changedInMetrc where active.isEmpty && sale.refusal == nil:
                actions.append(RepairAction(kind: .receiptCreate, saleId: saleId, receiptNumber: number, reason: reason,
                                            body: try receiptBody(saleId: saleId, lines: sale)))
            case .changedInMetrc where active.count == 1:
                let edit = MetrcReceiptUpdate(id: active[0].id, receipt: MetrcReceiptDraft(sale: try remainingSale(saleId, sale)))
                if active[0].final {
                    actions.append(RepairAction(kind: .receiptUnfinalize, saleId: saleId, receiptNumber: number, reason: "finalized in Metrc",
                                                body: MetrcBodies.receiptId(active[0].id)))
                }
                actions.append(RepairAction(kind: .receiptUpdate, saleId: saleId, receiptNumber: number, reason: reason,
                                            body: edit.jsonObject))
                if active[0].final {
                    actions.append(RepairAction(kind: .receiptFinalize, saleId: saleId, receiptNumber: number, reason: "finalized again",
                                                body: MetrcBodies.receiptId(active[0].id)))
                }
            case .duplicate:
                let kept = sale.recordedId.flatMap { id in active.first { $0.id == id } } ?? active.first
                for receipt in active where receipt.id != kept?.id {
                    actions.append(RepairAction(kind: .receiptArchive, saleId: saleId, receiptNumber: number,
                                                reason: "a second copy of \(kept.map { "\($0.id)" } ?? "it")", body: MetrcBodies.receiptId(receipt.id)))
                }
            default:
                continue
            }
        }
        if !dryRun && !actions.isEmpty {
            try store.appendJournal(actions.map { (kind: $0.kind, subject: .sale($0.saleId), body: $0.body) }, at: now(),
                                    audit: AuditEvent(actor: actor, action: "day.repair", license: license, subject: date,
                                                      detail: actions.map { "\($0.kind.rawValue) \($0.receiptNumber): \($0.reason)" }
                                                          .joined(separator: "\n")))
            await cache.forget(date)
            reporter.wake()
            logger.info("day repaired", metadata: ["date": "\(date)", "writes": "\(actions.count)"])
        }
        return (view, actions)
    }

    private func remainingSale(_ saleId: Int64, _ expected: ExpectedReceipt) throws -> Sale {
        guard var sale = try store.sale(id: saleId) else {
            throw TillError(.notFound, code: "sale_not_found", "No sale with id \(saleId).")
        }
        let kept = try store.returnedQuantities(saleId: saleId)
        sale.lines = sale.lines.enumerated().compactMap { number, line in ReturnRules.remaining(of: line, returned: kept[number] ?? 0) }
        return sale
    }

    private func receiptBody(saleId: Int64, lines expected: ExpectedReceipt) throws -> String {
        MetrcBodies.receipt(try remainingSale(saleId, expected))
    }

    // MARK: - The close

    /// Closes a day: refused with every blocker while anything does block it (writes of the day owed or in
    /// doubt, differences unresolved); otherwise every receipt of the day not yet final is finalized through
    /// the journal (Metrc's object limit a request, at most 10), `TILL_FINALIZE_LAG_DAYS` after the close.
    /// Asking again resumes, or reports the progress of, the close under way.
    public func close(_ date: String, by actor: String) async throws -> CloseOutcome {
        if let close = try store.dayClose(businessDate: date, at: now()) {
            return .closing(close)
        }
        // The duplicate sweep first, over the day's own listing (read once; the view below asks only for what
        // changed since): a duplicate it finds becomes a write the close waits for, named below.
        let window = try Self.window(date, timeZone)
        let listed = try await Self.askingMetrc { try await cache.receipts(on: date, from: window.start, to: window.end) }
        if try await Self.askingMetrc({ try sweep.archiveDuplicates(among: listed) }) > 0 { reporter.wake() }
        var blockers: [CloseBlocker] = try store.openDeliveriesAndTrips(businessDate: date).map { open in
            CloseBlocker(kind: open.subject.type == "trip" ? "trip_open" : "delivery_open", subject: "\(open.subject)",
                         message: open.subject.type == "trip" ? "the trip has not ended (\(open.status))" : "the delivery is not completed or voided")
        }
        blockers += try store.owedWrites(businessDate: date).map { row in
            let receipt = row.subject.type != "sale" ? "" : (try? store.sale(id: row.subject.id))?.map { " (receipt \($0.receiptNumber))" } ?? ""
            return CloseBlocker(kind: row.inDoubt ? "write_in_doubt" : "write_pending", subject: "\(row.subject)\(receipt)",
                                message: "\(row.kind.rawValue) is still owed to Metrc" + (row.lastError.map { " (\($0))" } ?? ""))
        }
        let view = try await view(date, listed: listed)
        for entry in view.entries where entry.standing.isDifference {
            blockers.append(CloseBlocker(kind: entry.standing.rawValue, subject: entry.receiptNumber ?? "",
                                         message: entry.differences.joined(separator: "; ")))
        }
        guard blockers.isEmpty else { return .blocked(blockers) }
        let receipts = view.entries.compactMap { entry -> (saleId: Int64, body: String)? in
            guard entry.standing == .matched, let saleId = entry.saleId,
                  let receipt = entry.held.first(where: { !$0.archived }), !receipt.final else { return nil }
            return (saleId, MetrcBodies.receiptId(receipt.id))
        }
        let at = now()
        let close = try store.journalDayClose(businessDate: date, receipts: receipts, by: actor, license: license, at: at,
                                              finalizeAfter: at.addingTimeInterval(TimeInterval(finalizeLag) * 86_400))
        reporter.wake()
        logger.info("day closing", metadata: ["date": "\(date)", "receipts": "\(receipts.count)"])
        return .closing(try store.dayClose(businessDate: date, at: now()) ?? close)
    }
}
