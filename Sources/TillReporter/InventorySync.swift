import Foundation
import Logging
import MetrcKit
import ServiceLifecycle
import Synchronization
import TillStore

/// Pulls the facility's active packages from Metrc into the store: everything on the first run, then
/// what changed since the last run (LastModified windows of at most 24 h, overlapped against clock drift).
public final class InventorySync: Service, Sendable {
    public struct Report: Sendable {
        public var full: Bool
        public var packages: Int
    }

    private let store: TillStore
    private let metrc: any MetrcAPI
    private let logger: Logger
    private let interval: Duration
    /// After a failed sync (the one at start-up included) the next comes after this backoff, up to
    /// `interval`: a Till started while Metrc was down should not wait a whole interval for its stock.
    private let retry: RetryPolicy
    private let overlap: TimeInterval
    private let now: @Sendable () -> Date
    private let failuresInARow = Mutex(0)

    public init(store: TillStore, metrc: any MetrcAPI, logger: Logger, interval: Duration = .seconds(300),
                retry: RetryPolicy = RetryPolicy(base: .seconds(5), cap: .seconds(300)),
                overlap: Duration = .seconds(300), now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.metrc = metrc
        self.logger = logger
        self.interval = interval
        self.retry = retry
        self.overlap = overlap.seconds
        self.now = now
    }

    /// One sync; `full` forces a complete pull even when an earlier run exists.
    @discardableResult
    public func syncOnce(full forceFull: Bool = false) async throws -> Report {
        do {
            let report = try await pull(full: forceFull)
            failuresInARow.withLock { $0 = 0 }
            return report
        } catch {
            failuresInARow.withLock { $0 += 1 }
            throw error
        }
    }

    /// The wait before the next scheduled sync: the interval, or the backoff after failures.
    var nextRunIn: Duration {
        let failures = failuresInARow.withLock { $0 }
        return failures == 0 ? interval : min(interval, retry.delay(afterAttempt: failures))
    }

    private func pull(full forceFull: Bool) async throws -> Report {
        let started = now()
        let lastEnd = forceFull ? nil : try store.lastSuccessfulSyncEnd()
        let since = lastEnd.map { $0.addingTimeInterval(-overlap) }
        do {
            let packages = try await metrc.activePackages(lastModifiedSince: since, until: started)
            let states = packages.map { package in
                MetrcPackageState(label: package.label, metrcId: package.id, itemName: package.item?.name ?? package.label,
                                  category: package.item?.productCategoryName, unit: package.unitOfMeasureName,
                                  quantity: package.quantity, onHold: package.isOnHold,
                                  labTestingState: package.labTestingState,
                                  active: package.archivedDate == nil && package.finishedDate == nil && package.isFinished != true,
                                  lastModified: package.lastModified, unitWeight: package.item?.unitWeight,
                                  unitWeightUnit: package.item?.unitWeightUnitOfMeasureName)
            }
            try store.applyMetrcPackages(states, fullSync: since == nil, at: now(), readSince: started)
            try store.recordSyncRun(startedAt: started, finishedAt: now(), full: since == nil, windowStart: since,
                                    windowEnd: started, packagesSeen: states.count, error: nil)
            logger.info("inventory synced", metadata: ["full": "\(since == nil)", "packages": "\(states.count)"])
            return Report(full: since == nil, packages: states.count)
        } catch let error as MetrcError {
            try? store.recordSyncRun(startedAt: started, finishedAt: now(), full: since == nil, windowStart: since,
                                     windowEnd: started, packagesSeen: 0, error: error.summary)
            throw error
        }
    }

    /// Syncs every `interval`, sooner after a failure (the caller syncs once before starting the server).
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.nextRunIn)
                guard !Task.isCancelled else { break }
                do {
                    try await self.syncOnce()
                } catch {
                    self.logger.warning("inventory sync failed; local stock stands until the next run",
                                        metadata: ["error": "\(error)", "nextRunIn": "\(self.nextRunIn)"])
                }
            }
        }
    }
}
