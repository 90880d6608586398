import Foundation

/// When to try Metrc again: capped exponential backoff with jitter, or Metrc's own Retry-After.
public struct RetryPolicy: Sendable {
    public var base: Duration
    public var cap: Duration
    /// Fraction of the delay randomly added or removed, so registers that failed together do not retry together.
    public var jitter: Double

    public init(base: Duration = .seconds(1), cap: Duration = .seconds(300), jitter: Double = 0.2) {
        self.base = base
        self.cap = cap
        self.jitter = jitter
    }

    /// The wait after the `attempt`-th failed attempt (1-based).
    public func delay(afterAttempt attempt: Int, retryAfter: Duration? = nil) -> Duration {
        if let retryAfter { return min(retryAfter, cap) }
        let exponent = min(max(attempt - 1, 0), 20)
        let raw = min(base * Double(1 << exponent), cap)
        let factor = 1 + Double.random(in: -jitter...jitter)
        return raw * factor
    }
}
