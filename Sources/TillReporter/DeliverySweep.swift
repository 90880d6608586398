import Foundation
import Logging
import MetrcKit
import ServiceLifecycle
import TillDomain
import TillStore

/// Finds deliveries and trips moved on in Metrc behind Till's back (departed, completed, ended or voided on
/// Metrc's website): Till's record of them no longer matches the legal one, so it is frozen (nothing more is
/// sent) and a manager is alerted in `/v1/reporting`.
public final class DeliverySweep: Service, Sendable {
    private let store: TillStore
    private let metrc: any MetrcAPI
    private let interval: Duration
    private let logger: Logger
    private let now: @Sendable () -> Date

    public init(store: TillStore, metrc: any MetrcAPI, interval: Duration, logger: Logger,
                now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.metrc = metrc
        self.interval = interval
        self.logger = logger
        self.now = now
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.sweepOnce()
                } catch {
                    self.logger.warning("delivery sweep failed; trying again at the next", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    /// Lists Metrc's active deliveries and trips modified in the last day (paged, through the rate limiter),
    /// reads by Id those Till watches that left the lists, and freezes what moved on without Till. How many.
    @discardableResult
    public func sweepOnce() async throws -> Int {
        let watched = try store.unfinishedInMetrc()
        guard !watched.deliveries.isEmpty || !watched.trips.isEmpty else { return 0 }
        let end = now().addingTimeInterval(300), start = now().addingTimeInterval(-86_400)
        var frozen = 0
        if !watched.deliveries.isEmpty {
            let active = Set(try await metrc.salesDeliveries(active: true, lastModifiedStart: start, lastModifiedEnd: end).map(\.id))
            for delivery in watched.deliveries where !active.contains(delivery.metrcId) {
                let held = try await metrc.salesDelivery(id: delivery.metrcId)
                let reason = switch held {
                case .none: "Metrc no longer has delivery \(delivery.metrcId)"
                case .some(let held) where held.isVoided: "Metrc's delivery \(delivery.metrcId) was voided there, not through Till"
                case .some(let held) where held.isCompleted: "Metrc's delivery \(delivery.metrcId) was completed there, not through Till"
                default: nil as String?
                }
                if let reason, try freeze(.delivery(delivery.id), reason, whileStatus: ["open"]) { frozen += 1 }
            }
        }
        if !watched.trips.isEmpty {
            let active = Dictionary(try await metrc.retailerDeliveries(active: true, lastModifiedStart: start, lastModifiedEnd: end)
                .map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for trip in watched.trips {
                let held = if let listed = active[trip.metrcId] { listed as MetrcRetailerDelivery? } else {
                    try await metrc.retailerDelivery(id: trip.metrcId)
                }
                let reason: String? = switch held {
                case .none: "Metrc no longer has trip \(trip.metrcId)"
                case .some(let held) where held.isVoided: "Metrc's trip \(trip.metrcId) was voided there, not through Till"
                case .some(let held) where held.hasEnded: "Metrc's trip \(trip.metrcId) was ended there, not through Till"
                case .some(let held) where held.hasDeparted && trip.status == .created:
                    "Metrc's trip \(trip.metrcId) departed there, not through Till"
                default: nil
                }
                if let reason, try freeze(.trip(trip.id), reason, whileStatus: [trip.status.rawValue]) { frozen += 1 }
            }
        }
        return frozen
    }

    private func freeze(_ subject: JournalSubject, _ reason: String, whileStatus statuses: [String]) throws -> Bool {
        let done = try store.freeze(subject, reason: reason, whileStatus: statuses, at: now())
        if done { logger.warning("frozen: a step taken in Metrc behind Till's back", metadata: ["subject": "\(subject)", "reason": "\(reason)"]) }
        return done
    }
}
