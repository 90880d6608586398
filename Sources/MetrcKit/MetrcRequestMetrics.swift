import Metrics
import Synchronization

/// Each Metrc request's latency by endpoint and outcome (`metrc_request_duration_seconds`), and the 429s
/// (`metrc_rate_limited_total`).
///
/// An endpoint is a path template (`/sales/v2/receipts/{id}`), never a path: patient numbers stay out of the
/// labels, and the series stay few. The timers of the endpoints Till calls are made up front, so that a request
/// (one per sale, on the sale path) finds its timer in an immutable table, without a lock.
final class MetrcRequestMetrics: Sendable {
    /// How a request ended, by the classification every caller acts on.
    enum Outcome: Int, CaseIterable {
        case ok, rejected, unauthorized, notFound, rateLimited, transient, ambiguous

        var label: String {
            switch self {
            case .ok: "ok"
            case .rejected: "rejected"
            case .unauthorized: "unauthorized"
            case .notFound: "not_found"
            case .rateLimited: "rate_limited"
            case .transient: "transient"
            case .ambiguous: "ambiguous"
            }
        }

        init(_ error: MetrcError) {
            switch error {
            case .rejected: self = .rejected
            case .unauthorized: self = .unauthorized
            case .notFound: self = .notFound
            case .rateLimited: self = .rateLimited
            case .transient: self = .transient
            case .ambiguous, .invalidResponse: self = .ambiguous
            }
        }
    }

    struct Endpoint: Hashable {
        var method: String
        var template: String
    }

    /// The requests MetrcClient makes.
    static let known: [Endpoint] = [
        ("GET", "/facilities/v2/"), ("GET", "/unitsofmeasure/v2/active"), ("GET", "/sales/v2/customertypes"),
        ("GET", "/packages/v2/active"), ("GET", "/packages/v2/{label}"), ("GET", "/packages/v2/adjust/reasons"),
        ("GET", "/packages/v2/adjustments"), ("POST", "/packages/v2/adjust"),
        ("POST", "/sales/v2/receipts"), ("PUT", "/sales/v2/receipts"), ("GET", "/sales/v2/receipts/{id}"),
        ("DELETE", "/sales/v2/receipts/{id}"), ("GET", "/sales/v2/receipts/external/{number}"),
        ("GET", "/sales/v2/receipts/active"), ("GET", "/sales/v2/receipts/inactive"),
        ("PUT", "/sales/v2/receipts/finalize"), ("PUT", "/sales/v2/receipts/unfinalize"),
        ("GET", "/patients/v2/statuses/{number}"), ("GET", "/caregivers/v2/status/{number}"),
        ("POST", "/patient-checkins/v2/"), ("GET", "/patient-checkins/v2"),
    ].map { Endpoint(method: $0.0, template: $0.1) }

    private let factory: any MetricsFactory
    /// Indexed by `Outcome.rawValue`.
    private let timers: [Endpoint: [Timer]]
    /// Endpoints missing from `known` (a new call whose author did not list it): counted all the same.
    private let others = Mutex<[Endpoint: [Timer]]>([:])
    private let rateLimited: Counter

    init(factory: any MetricsFactory) {
        self.factory = factory
        timers = Dictionary(uniqueKeysWithValues: Self.known.map { ($0, Self.timers(for: $0, factory: factory)) })
        rateLimited = Counter(label: "metrc_rate_limited_total", factory: factory)
    }

    func record(_ endpoint: Endpoint, _ outcome: Outcome, elapsed: Duration) {
        let timer = timers[endpoint]?[outcome.rawValue] ?? others.withLock { others in
            if let made = others[endpoint] { return made[outcome.rawValue] }
            let made = Self.timers(for: endpoint, factory: factory)
            others[endpoint] = made
            return made[outcome.rawValue]
        }
        timer.record(duration: elapsed)
        if outcome == .rateLimited { rateLimited.increment() }
    }

    private static func timers(for endpoint: Endpoint, factory: any MetricsFactory) -> [Timer] {
        Outcome.allCases.map { outcome in
            Timer(label: "metrc_request_duration_seconds",
                  dimensions: [("method", endpoint.method), ("endpoint", endpoint.template), ("outcome", outcome.label)],
                  factory: factory)
        }
    }
}
