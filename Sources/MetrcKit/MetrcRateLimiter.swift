import Synchronization

/// Keeps one facility's traffic inside Metrc's limits: requests in flight, and requests started per second.
///
/// A request first takes a concurrency slot, then waits for room in the one-second sliding window of its
/// kind (GET or write), so that the recorded start times are the real ones.
///
/// A lock, not an actor: when there is room (nearly always) `acquire` returns without suspending, where
/// an actor costs a hop onto it and a thread wake-up back off it for every Metrc request.
final class MetrcRateLimiter: Sendable {
    private struct State {
        var inFlight = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
        var recentGets: [ContinuousClock.Instant] = []
        var recentWrites: [ContinuousClock.Instant] = []
    }

    private let maxConcurrent: Int
    private let getsPerSecond: Int?
    private let writesPerSecond: Int?
    private let now: @Sendable () -> ContinuousClock.Instant
    private let sleep: @Sendable (Duration) async throws -> Void
    private let state = Mutex(State())

    init(maxConcurrent: Int, getsPerSecond: Int?, writesPerSecond: Int?,
         now: @escaping @Sendable () -> ContinuousClock.Instant,
         sleep: @escaping @Sendable (Duration) async throws -> Void) {
        self.maxConcurrent = max(1, maxConcurrent)
        self.getsPerSecond = getsPerSecond.flatMap { $0 > 0 ? $0 : nil }
        self.writesPerSecond = writesPerSecond.flatMap { $0 > 0 ? $0 : nil }
        self.now = now
        self.sleep = sleep
    }

    /// Returns when the request may start; every successful acquire must be paired with one `release()`.
    /// Throws only when the task is cancelled while waiting for the rate window (the slot is given back).
    /// Waiting for a concurrency slot is not cancellable: a slot frees within one request timeout.
    func acquire(isWrite: Bool) async throws {
        if !takeSlot(orQueue: nil) {
            // A release may come between the first look and the second; `release` hands its slot straight
            // to the first waiter, so a queued one does not touch inFlight.
            await withCheckedContinuation { continuation in
                if takeSlot(orQueue: continuation) { continuation.resume() }
            }
        }
        do {
            try await waitForRoom(isWrite: isWrite)
        } catch {
            release()
            throw error
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.inFlight -= 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }

    /// Takes a free slot; else queues `continuation` (when given) for the next release.
    private func takeSlot(orQueue continuation: CheckedContinuation<Void, Never>?) -> Bool {
        state.withLock { state in
            guard state.inFlight < maxConcurrent else {
                if let continuation { state.waiting.append(continuation) }
                return false
            }
            state.inFlight += 1
            return true
        }
    }

    private func waitForRoom(isWrite: Bool) async throws {
        guard let limit = isWrite ? writesPerSecond : getsPerSecond else { return }
        while true {
            let wait = state.withLock { state -> Duration? in
                isWrite ? admit(limit, into: &state.recentWrites) : admit(limit, into: &state.recentGets)
            }
            guard let wait else { return }
            // Others go on while this one sleeps; the window is read again afterwards.
            try await sleep(wait)
            try Task.checkCancellation()
        }
    }

    /// Records a start now if the last window saw fewer than `limit`; else how long until one did.
    private func admit(_ limit: Int, into recent: inout [ContinuousClock.Instant]) -> Duration? {
        let instant = now()
        recent.removeAll { $0 <= instant - Self.window }
        guard recent.count >= limit else {
            recent.append(instant)
            return nil
        }
        return recent[0] + Self.window - instant
    }

    /// Metrc counts requests by when they arrive, Till by when they start: a little more than a second, so that
    /// requests started at the limit's pace and delayed unevenly on the way never make 51 in Metrc's second.
    static let window: Duration = .milliseconds(1050)
}
