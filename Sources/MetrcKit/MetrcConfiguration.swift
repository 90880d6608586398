import Foundation

/// How to reach Metrc for one facility (one license), and how hard to push it.
public struct MetrcConfiguration: Sendable {
    /// e.g. "https://api-co.metrc.com" or "http://127.0.0.1:8123"; a trailing slash is tolerated.
    public var baseURL: String
    /// The integrator's key: the Basic auth username.
    public var vendorKey: String
    /// The person's key, carrying that person's permissions per facility: the Basic auth password.
    public var userKey: String
    /// Sent as `?licenseNumber=` on every facility-scoped call.
    public var licenseNumber: String
    /// The facility's zone: Metrc wants sale times as local wall-clock time in it.
    public var timeZone: TimeZone
    /// One whole HTTP exchange, connecting included.
    public var requestTimeout: Duration = .seconds(20)
    /// Metrc's object limit per write (413 above it); write bodies are chunked to this.
    public var maxObjectsPerRequest: Int = 10
    /// v2 list paging; Metrc refuses more than 20.
    public var pageSize: Int = 20
    /// Metrc's documented per-facility GET limit.
    public var getRequestsPerSecond: Int = 50
    /// Optional limiter for POST/PUT/DELETE; nil leaves writes bounded only by the concurrency cap.
    public var writeRequestsPerSecond: Int? = nil
    /// Metrc's documented per-facility cap on requests in flight.
    public var maxConcurrentRequests: Int = 10
    /// 429s absorbed inside one call before it throws `.rateLimited`.
    public var maxRateLimitRetries: Int = 4
    /// A Retry-After longer than this is not waited out inside a call: the call throws `.rateLimited`
    /// at once so that the caller can schedule the retry instead of holding a task for minutes.
    public var maxRetryAfterWait: Duration = .seconds(30)
    /// First backoff after a 429 without Retry-After; doubled per retry, with ±50% jitter.
    public var rateLimitBackoffBase: Duration = .milliseconds(250)
    /// Ceiling for that backoff.
    public var rateLimitBackoffCap: Duration = .seconds(10)

    public init(baseURL: String, vendorKey: String, userKey: String, licenseNumber: String, timeZone: TimeZone) {
        self.baseURL = baseURL
        self.vendorKey = vendorKey
        self.userKey = userKey
        self.licenseNumber = licenseNumber
        self.timeZone = timeZone
    }

    /// Metrc's production or sandbox host for a state, e.g. ("CO", false) → "https://api-co.metrc.com".
    public static func baseURL(state: String, sandbox: Bool) -> String {
        let code = state.trimmingCharacters(in: .whitespaces).lowercased()
        return sandbox ? "https://sandbox-api-\(code).metrc.com" : "https://api-\(code).metrc.com"
    }
}

// A configuration printed into a log or a crash report must not carry the keys.
extension MetrcConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "MetrcConfiguration(baseURL: \(baseURL), licenseNumber: \(licenseNumber), timeZone: \(timeZone.identifier), keys: <redacted>)"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: [
            "baseURL": baseURL,
            "licenseNumber": licenseNumber,
            "timeZone": timeZone.identifier,
            "vendorKey": "<redacted>",
            "userKey": "<redacted>",
        ])
    }
}
