import Foundation

/// What Till last saw of Metrc, for `/v1/reporting` and `till status`.
public actor MetrcHealth {
    public struct Snapshot: Sendable {
        public var reachable: Bool?
        public var lastError: String?
        public var lastErrorAt: Date?
        public var lastSuccessAt: Date?
    }

    private var snapshot = Snapshot()

    public init() {}

    public func succeeded(at: Date) {
        snapshot.reachable = true
        snapshot.lastSuccessAt = at
    }

    /// `reachable` says whether Metrc answered at all (a refusal is an answer; a time-out is not).
    public func failed(_ message: String, reachable: Bool, at: Date) {
        snapshot.reachable = reachable
        snapshot.lastError = message
        snapshot.lastErrorAt = at
    }

    public func current() -> Snapshot { snapshot }
}
