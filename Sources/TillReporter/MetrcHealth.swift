import Foundation
import Synchronization

/// What Till last saw of Metrc, for `/v1/reporting` and `till status`.
///
/// A lock, not an actor: every report touches it, and an actor hop there is a thread wake-up per sale.
public final class MetrcHealth: Sendable {
    public struct Snapshot: Sendable {
        public var reachable: Bool?
        public var lastError: String?
        public var lastErrorAt: Date?
        public var lastSuccessAt: Date?
    }

    private let snapshot = Mutex(Snapshot())

    public init() {}

    /// - Returns: whether this ends a run of failures (Metrc is back), so that what waits for a retry can go now.
    public func succeeded(at: Date) -> Bool {
        snapshot.withLock { snapshot in
            let wasFailing = snapshot.lastErrorAt.map { $0 >= (snapshot.lastSuccessAt ?? .distantPast) } ?? false
            snapshot.reachable = true
            snapshot.lastSuccessAt = at
            return wasFailing
        }
    }

    /// `reachable` says whether Metrc answered at all (a refusal is an answer; a time-out is not).
    public func failed(_ message: String, reachable: Bool, at: Date) {
        snapshot.withLock { snapshot in
            snapshot.reachable = reachable
            snapshot.lastError = message
            snapshot.lastErrorAt = at
        }
    }

    public func current() -> Snapshot { snapshot.withLock { $0 } }
}
