import Foundation
import MetrcKit

/// Metrc's receipts of the days Till looks at (the duplicate sweep, a manager's day view and close). The first
/// look lists the day (active and inactive, by salesDate); later looks ask Metrc only for receipts modified
/// since the last, with an overlap against clock drift, and keep those whose SalesDateTime is (still) on the
/// day. Looks at the same day at the same time share one listing: Metrc's GET budget is the facility's.
public actor MetrcDayCache {
    private struct Day {
        var receipts: [Int64: MetrcReceipt]
        /// When the last listing began (Till's clock): the next asks from here, less the overlap.
        var listedFrom: Date
    }

    private let metrc: any MetrcAPI
    private let now: @Sendable () -> Date
    private let overlap: TimeInterval
    private var days: [String: Day] = [:]
    private var listing: [String: (task: Task<[MetrcReceipt], any Error>, began: Date)] = [:]

    public init(metrc: any MetrcAPI, overlap: TimeInterval = 300, now: @escaping @Sendable () -> Date = Date.init) {
        self.metrc = metrc
        self.overlap = overlap
        self.now = now
    }

    /// The day's receipts as Metrc holds them now. A listing of the day already under way is joined rather than
    /// repeated; when it began before this call, what changed since it began is asked for after it.
    func receipts(on date: String, from start: Date, to end: Date) async throws(MetrcError) -> [MetrcReceipt] {
        let asked = now()
        while true {
            let current: (task: Task<[MetrcReceipt], any Error>, began: Date)
            if let running = listing[date] {
                current = running
            } else {
                current = (Task { try await self.list(date, from: start, to: end) }, now())
                listing[date] = current
            }
            let receipts: [MetrcReceipt]
            do {
                receipts = try await current.task.value
            } catch {
                if listing[date]?.task == current.task { listing[date] = nil }
                throw error as? MetrcError ?? .transient("\(error)", mayHaveBeenApplied: false)
            }
            if listing[date]?.task == current.task { listing[date] = nil }
            if current.began >= asked { return receipts }
        }
    }

    private func list(_ date: String, from start: Date, to end: Date) async throws(MetrcError) -> [MetrcReceipt] {
        let began = now()
        var day: Day
        if let known = days[date] {
            day = known
            let since = known.listedFrom.addingTimeInterval(-overlap)
            for active in [true, false] {
                for receipt in try await metrc.receipts(active: active, lastModifiedStart: since, lastModifiedEnd: began) {
                    day.receipts[receipt.id] = receipt
                }
            }
        } else {
            day = Day(receipts: [:], listedFrom: began)
            for active in [true, false] {
                for receipt in try await metrc.receipts(active: active, salesDateStart: start, salesDateEnd: end) {
                    day.receipts[receipt.id] = receipt
                }
            }
        }
        // A receipt edited onto another day leaves this one; SalesDateTime is the facility's wall-clock time.
        day.receipts = day.receipts.filter { $0.value.salesDateTime.map { $0.prefix(10) == date.prefix(10) } ?? true }
        day.listedFrom = began
        days[date] = day
        return day.receipts.values.sorted { $0.id < $1.id }
    }

    /// Forget a day, so that the next look lists it afresh.
    func forget(_ date: String) {
        days[date] = nil
    }
}
