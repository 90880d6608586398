import Foundation
import Logging
import MetrcKit
import ServiceLifecycle
import TillDomain
import TillStore

/// Looks afterwards for what exactly-once cannot rule out (Metrc has no idempotency): a receipt number of
/// Till's that Metrc holds more than once. Till keeps the Id it recorded and archives the others through the
/// journal. A receipt whose number Till did not issue is never touched.
public final class DuplicateSweep: Service, Sendable {
    /// What one sweep saw and did.
    public struct Report: Sendable, Equatable {
        public var days: [String]
        public var receiptsSeen: Int
        /// Duplicates newly found, each an archive journaled.
        public var archivesJournaled: Int
    }

    private let store: TillStore
    private let metrc: any MetrcAPI
    private let reporter: MetrcReporter
    private let timeZone: TimeZone
    private let interval: Duration
    private let logger: Logger
    private let now: @Sendable () -> Date
    /// Shared with the manager's day: a day listed once serves both, and later sweeps ask only for what changed.
    let days: MetrcDayCache

    public init(store: TillStore, metrc: any MetrcAPI, reporter: MetrcReporter, timeZone: TimeZone,
                interval: Duration = .seconds(300), logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.metrc = metrc
        days = MetrcDayCache(metrc: metrc, now: now)
        self.reporter = reporter
        self.timeZone = timeZone
        self.interval = interval
        self.logger = logger
        self.now = now
    }

    /// Sweeps at start (once the writes owed then have gone, or after a minute), then every `interval`.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            // Writes draining after a restart are settled by their own probes; a listing taken meanwhile would
            // miss the receipts still arriving, and spend the facility's GETs twice.
            let clock = ContinuousClock()
            let patience = clock.now + .seconds(60)
            while !Task.isCancelled, clock.now < patience, (try? self.store.nextJournalDue()) != nil {
                try? await Task.sleep(for: .milliseconds(200))
            }
            while !Task.isCancelled {
                do {
                    try await self.sweepOnce()
                } catch {
                    self.logger.warning("duplicate sweep failed; trying again at the next", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    /// Today and yesterday (facility-local business days), every day with a write in doubt, and `extraDays`.
    @discardableResult
    public func sweepOnce(extraDays: Set<String> = []) async throws -> Report {
        let today = now()
        var days = Set([FacilityDate.string(of: today, in: timeZone),
                        FacilityDate.string(of: today.addingTimeInterval(-86_400), in: timeZone)])
        days.formUnion(try store.businessDatesWithWritesInDoubt())
        days.formUnion(extraDays)
        var seen = 0
        var journaled = 0
        for day in days.sorted() {
            guard let window = FacilityDate.window(of: day, in: timeZone) else { continue }
            let receipts = try await self.days.receipts(on: day, from: window.start, to: window.end)
            seen += receipts.count
            journaled += try archiveDuplicates(among: receipts)
        }
        if journaled > 0 {
            logger.warning("duplicate receipts in Metrc: archiving them", metadata: ["count": "\(journaled)"])
            reporter.wake()
        }
        return Report(days: days.sorted(), receiptsSeen: seen, archivesJournaled: journaled)
    }

    /// Journals the archive of every extra copy among these receipts (a day's listing): how many.
    func archiveDuplicates(among receipts: [MetrcReceipt]) throws -> Int {
        let byNumber = Dictionary(grouping: receipts.filter { $0.externalReceiptNumber != nil && $0.archivedDate == nil },
                                  by: { $0.externalReceiptNumber! })
            .filter { $0.value.count > 1 }
        guard !byNumber.isEmpty else { return 0 }
        let issued = try store.salesIssued(receiptNumbers: Set(byNumber.keys))
        var duplicates: [(saleId: Int64, duplicateId: Int64, keptId: Int64, body: String)] = []
        for (number, copies) in byNumber {
            // Not Till's number: someone else's receipts, never touched.
            guard let sale = issued[number] else { continue }
            // Till keeps the Id it recorded. Until it has recorded one (the sale's POST still settling) the
            // sweep waits; if that receipt is no longer active, a person decides (the day view shows it).
            guard let kept = sale.metrcReceiptId, copies.contains(where: { $0.id == kept }) else {
                logger.info("duplicate receipts for a sale not settled yet; left for a later sweep",
                            metadata: ["receipt": "\(number)", "copies": "\(copies.map(\.id))"])
                continue
            }
            for copy in copies where copy.id != kept {
                duplicates.append((sale.saleId, copy.id, kept, MetrcBodies.receiptId(copy.id)))
            }
        }
        return try store.journalDuplicateArchives(duplicates, at: now(), actor: "sweep", license: metrc.licenseNumber)
    }
}
