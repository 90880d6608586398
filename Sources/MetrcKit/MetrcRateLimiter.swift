/// Keeps one facility's traffic inside Metrc's limits: requests in flight, and requests started per second.
///
/// A request first takes a concurrency slot, then waits for room in the one-second sliding window of its
/// kind (GET or write), so that the recorded start times are the real ones.
actor MetrcRateLimiter {
    private let maxConcurrent: Int
    private let getsPerSecond: Int?
    private let writesPerSecond: Int?
    private let now: @Sendable () -> ContinuousClock.Instant
    private let sleep: @Sendable (Duration) async throws -> Void

    private var inFlight = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var recentGets: [ContinuousClock.Instant] = []
    private var recentWrites: [ContinuousClock.Instant] = []

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
        if inFlight < maxConcurrent {
            inFlight += 1
        } else {
            // `release` hands its slot straight to the first waiter, so inFlight is not touched here.
            await withCheckedContinuation { waiting.append($0) }
        }
        do {
            try await waitForRoom(isWrite: isWrite)
        } catch {
            release()
            throw error
        }
    }

    func release() {
        if waiting.isEmpty {
            inFlight -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }

    private func waitForRoom(isWrite: Bool) async throws {
        guard let limit = isWrite ? writesPerSecond : getsPerSecond else { return }
        while true {
            let instant = now()
            var recent = isWrite ? recentWrites : recentGets
            recent.removeAll { $0 <= instant - .seconds(1) }
            let wait: Duration? = recent.count < limit ? nil : recent[0] + .seconds(1) - instant
            if wait == nil { recent.append(instant) }
            if isWrite { recentWrites = recent } else { recentGets = recent }
            guard let wait else { return }
            // The actor is free while this one sleeps; the window is re-read afterwards.
            try await sleep(wait)
            try Task.checkCancellation()
        }
    }
}
