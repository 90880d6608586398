import Foundation
import Logging
import MetrcKit
import TillDomain
import TillStore

/// How a facility takes returns.
public struct ReturnSettings: Sendable {
    /// The reasons a return may give (`TILL_RETURN_REASONS`).
    public var reasons: [String]
    /// Where returned goods go when the return does not say (`TILL_RETURN_DISPOSITION`): quarantine, since
    /// several states forbid reselling returned cannabis.
    public var defaultDisposition: ReturnDisposition
    /// The package adjustment reason wasted goods are reported with (`TILL_WASTE_ADJUST_REASON`), one of
    /// `GET /packages/v2/adjust/reasons`.
    public var wasteAdjustReason: String

    public init(reasons: [String] = ReturnRules.defaultReasons, defaultDisposition: ReturnDisposition = .quarantine,
                wasteAdjustReason: String = "Waste") {
        self.reasons = reasons
        self.defaultDisposition = defaultDisposition
        self.wasteAdjustReason = wasteAdjustReason
    }
}

/// The unit of work for a return: check it, record it with its stock and its Metrc writes in one transaction,
/// and let the reporter send them.
public final class ReturnDesk: Sendable {
    private let store: TillStore
    private let reporter: MetrcReporter
    private let metrc: any MetrcAPI
    private let settings: ReturnSettings
    private let license: String
    private let timeZone: TimeZone
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let adjustReasons: AdjustReasons

    public init(store: TillStore, reporter: MetrcReporter, metrc: any MetrcAPI, settings: ReturnSettings, license: String,
                timeZone: TimeZone, logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.reporter = reporter
        self.metrc = metrc
        self.settings = settings
        self.license = license
        self.timeZone = timeZone
        self.logger = logger
        self.now = now
        adjustReasons = AdjustReasons(metrc: metrc)
    }

    /// Records a return of sale `saleId`. Idempotent on `clientReturnId`: the same body again is the original
    /// return (`replay`); another body with it is a conflict.
    public func takeBack(saleId: Int64, _ request: ReturnRequest, requestDigest: String, terminal: Terminal?)
        async throws(TillError) -> (saleReturn: SaleReturn, replay: Bool) {
        let reason = try ReturnRules.checkShape(request, reasons: settings.reasons)
        let disposition = request.disposition ?? settings.defaultDisposition
        if disposition == .waste { try await checkWasteReason(note: request.note) }
        let at = now()
        let adjustReason = settings.wasteAdjustReason
        let entry = ReturnEntry(
            saleId: saleId, request: request, reason: reason, disposition: disposition, requestDigest: requestDigest,
            terminalId: terminal?.id, actor: terminal.map { "terminal:\($0.name)" } ?? "unknown", license: license, at: at,
            businessDate: FacilityDate.string(of: at, in: timeZone),
            bodies: ReturnBodies(
                receipt: MetrcBodies.receipt,
                edit: { id, sale in MetrcReceiptUpdate(id: id, receipt: MetrcReceiptDraft(sale: sale)).jsonObject },
                receiptId: MetrcBodies.receiptId,
                wasteAdjust: { label, quantity, unit, date, note in
                    MetrcPackageAdjustDraft(label: label, quantity: quantity, unitOfMeasure: unit, adjustmentReason: adjustReason,
                                            adjustmentDate: date, reasonNote: note).jsonObject
                }))
        let recorded: (saleReturn: SaleReturn, replay: Bool)
        do {
            await store.caughtUp()  // the sale as its register last heard it (its receipt's Id included)
            recorded = try store.recordReturn(entry)
        } catch let error as TillError {
            throw error
        } catch {
            logger.error("store failure", metadata: ["error": "\(error)"])
            throw .fromStore(error)
        }
        if !recorded.replay {
            logger.info("sale returned", metadata: ["sale": "\(saleId)", "return": "\(recorded.saleReturn.id)",
                                                    "disposition": "\(disposition.rawValue)",
                                                    "metrc": "\(recorded.saleReturn.metrcAction.rawValue)"])
            reporter.wake()
        }
        return recorded
    }

    /// Wasted goods go to Metrc as an adjustment with the facility's waste reason: it must be one Metrc knows,
    /// and when Metrc says it needs a note, the return must carry one.
    private func checkWasteReason(note: String?) async throws(TillError) {
        guard let reasons = await adjustReasons.current() else { return }  // Metrc unreachable: it judges when it hears
        guard let reason = reasons.first(where: { $0.name.caseInsensitiveCompare(settings.wasteAdjustReason) == .orderedSame }) else {
            throw TillError(.unavailable, code: "waste_reason_unknown",
                            "TILL_WASTE_ADJUST_REASON '\(settings.wasteAdjustReason)' is not one of Metrc's package adjustment reasons ("
                                + reasons.map(\.name).joined(separator: ", ") + "); a manager must set it before goods can be wasted.")
        }
        if reason.requiresNote && (note?.trimmingCharacters(in: .whitespaces).isEmpty ?? true) {
            throw .invalid("note_required", "Metrc's adjustment reason '\(reason.name)' needs a note: say why the goods are destroyed.",
                           details: ["field": "note"])
        }
    }
}

/// Metrc's package adjustment reasons, fetched once and then at most hourly; nil while Metrc has not answered.
actor AdjustReasons {
    private let metrc: any MetrcAPI
    private var reasons: [MetrcAdjustReason]?
    private var fetchedAt: ContinuousClock.Instant?

    init(metrc: any MetrcAPI) {
        self.metrc = metrc
    }

    func current() async -> [MetrcAdjustReason]? {
        if let fetchedAt, ContinuousClock.now - fetchedAt < .seconds(3600) { return reasons }
        do {
            reasons = try await metrc.packageAdjustReasons()
            fetchedAt = .now
        } catch {
            // Keep what was known; try again at the next return.
        }
        return reasons
    }
}
