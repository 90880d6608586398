import CurlHTTP
import Foundation
import Logging
import Metrics

/// Metrc's v2 API for one facility over HTTP, inside Metrc's limits, with every failure classified.
///
/// One client per facility: the limiter it owns is Metrc's per-facility budget.
public final class MetrcClient: MetrcAPI {
    public let licenseNumber: String
    public let timeZone: TimeZone
    let configuration: MetrcConfiguration
    let transport: any HTTPTransport
    let logger: Logger
    private let sleep: @Sendable (Duration) async throws -> Void
    private let now: @Sendable () -> ContinuousClock.Instant
    let limiter: MetrcRateLimiter
    private let authorization: String
    private let baseURL: String
    private let metrics: MetrcRequestMetrics

    public init(configuration: MetrcConfiguration, transport: any HTTPTransport,
                logger: Logger = Logger(label: "MetrcKit"),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
                now: @escaping @Sendable () -> ContinuousClock.Instant = { .now },
                metricsFactory: any MetricsFactory = MetricsSystem.factory) {
        self.configuration = configuration
        self.licenseNumber = configuration.licenseNumber
        self.timeZone = configuration.timeZone
        self.transport = transport
        var logger = logger
        logger[metadataKey: "license"] = "\(configuration.licenseNumber)"
        self.logger = logger
        self.sleep = sleep
        self.now = now
        self.limiter = MetrcRateLimiter(maxConcurrent: configuration.maxConcurrentRequests,
                                        getsPerSecond: configuration.getRequestsPerSecond,
                                        writesPerSecond: configuration.writeRequestsPerSecond,
                                        now: now, sleep: sleep)
        self.authorization = "Basic " + Data("\(configuration.vendorKey):\(configuration.userKey)".utf8).base64EncodedString()
        var base = configuration.baseURL.trimmingCharacters(in: .whitespaces)
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        metrics = MetrcRequestMetrics(factory: metricsFactory)
    }

    var pageSize: Int { min(20, max(1, configuration.pageSize)) }
    var chunkSize: Int { max(1, configuration.maxObjectsPerRequest) }

    // MARK: - One request

    /// One Metrc request as plain values.
    struct Call: Sendable {
        var method: String
        /// Already percent-encoded.
        var path: String
        /// `path` with personal numbers masked: what the logs show.
        var logPath: String
        /// `path` as a template (`/sales/v2/receipts/{id}`): what the metrics show.
        var endpoint: String
        var query: [(name: String, value: String)] = []
        var body: Data? = nil
        var facilityScoped = true
        /// Values (patient and caregiver numbers) to mask wherever Metrc's answer is logged.
        var sensitive: [String] = []
        /// Also mask the patient and caregiver numbers the body carries (a journaled write's objects).
        var personalNumbersInBody = false

        var isWrite: Bool { method != "GET" }

        /// - Parameter endpoint: the path's template, where the path names something (an Id, a number).
        init(_ method: String, _ path: String, endpoint: String? = nil, logPath: String? = nil,
             query: [(name: String, value: String)] = [], body: Data? = nil, facilityScoped: Bool = true,
             sensitive: [String] = []) {
            self.method = method
            self.path = path
            self.endpoint = endpoint ?? path
            self.logPath = logPath ?? path
            self.query = query
            self.body = body
            self.facilityScoped = facilityScoped
            self.sensitive = sensitive
        }
    }

    func httpRequest(for call: Call) -> HTTPRequest {
        var query = call.query
        if call.facilityScoped { query.insert((name: "licenseNumber", value: licenseNumber), at: 0) }
        var url = baseURL + call.path
        if !query.isEmpty {
            url += "?" + query.map { Self.percentEncoded($0.name) + "=" + Self.percentEncoded($0.value) }.joined(separator: "&")
        }
        var headers: [(name: String, value: String)] = [
            (name: "Authorization", value: authorization),
            (name: "Accept", value: "application/json"),
        ]
        if call.body != nil { headers.append((name: "Content-Type", value: "application/json")) }
        return HTTPRequest(method: call.method, url: url, headers: headers, body: call.body,
                           timeout: configuration.requestTimeout)
    }

    /// Sends a call inside the limits, waits out 429s, and returns only a 2xx answer; anything else is thrown classified.
    func perform(_ call: Call) async throws(MetrcError) -> HTTPResponse {
        let request = httpRequest(for: call)
        var rateLimitedAnswers = 0
        while true {
            do {
                try await limiter.acquire(isWrite: call.isWrite)
            } catch {
                throw MetrcError.transient("cancelled before sending", mayHaveBeenApplied: false)
            }
            let started = now()
            let outcome: Result<HTTPResponse, HTTPTransportError>
            do {
                outcome = .success(try await transport.send(request))
            } catch {
                outcome = .failure(error)
            }
            limiter.release()
            let elapsed = now() - started
            let endpoint = MetrcRequestMetrics.Endpoint(method: call.method, template: call.endpoint)

            let response: HTTPResponse
            switch outcome {
            case .failure(let failure):
                let error = MetrcClassifier.classify(failure, isWrite: call.isWrite)
                metrics.record(endpoint, .init(error), elapsed: elapsed)
                log(.warning, "Metrc request failed without an answer", call, status: nil, elapsed: elapsed, error: error)
                throw error
            case .success(let answer):
                response = answer
            }

            switch response.status {
            case 200..<300:
                metrics.record(endpoint, .ok, elapsed: elapsed)
                log(.debug, "Metrc request done", call, status: response.status, elapsed: elapsed)
                return response
            case 429:
                metrics.record(endpoint, .rateLimited, elapsed: elapsed)
                // HTTPResponse promises lower-cased names, but a transport written elsewhere may not keep it.
                let header = response.headers.first { $0.key.lowercased() == "retry-after" }?.value
                let retryAfter = Self.retryAfter(header, now: Date())
                if rateLimitedAnswers >= configuration.maxRateLimitRetries
                    || (retryAfter.map { $0 > configuration.maxRetryAfterWait } ?? false) {
                    let error = MetrcError.rateLimited(retryAfter: retryAfter)
                    log(.warning, "Metrc rate limit, giving up", call, status: 429, elapsed: elapsed, error: error)
                    throw error
                }
                let delay = retryAfter ?? Self.backoff(attempt: rateLimitedAnswers, base: configuration.rateLimitBackoffBase,
                                                       cap: configuration.rateLimitBackoffCap,
                                                       jitter: Double.random(in: 0.5...1.5))
                rateLimitedAnswers += 1
                log(.notice, "Metrc rate limit, waiting", call, status: 429, elapsed: elapsed,
                    extra: ["retry_in_ms": "\(Self.milliseconds(delay))", "retry": "\(rateLimitedAnswers)"])
                do {
                    try await sleep(delay)
                } catch {
                    // A 429 means nothing was applied, so stopping here leaves nothing behind.
                    throw MetrcError.transient("cancelled while waiting out a rate limit", mayHaveBeenApplied: false)
                }
            default:
                let error = MetrcClassifier.classify(status: response.status, body: response.body, isWrite: call.isWrite)
                metrics.record(endpoint, .init(error), elapsed: elapsed)
                // 404 is an ordinary answer to a lookup; the caller decides whether it is news.
                log(error == .notFound ? .debug : .warning, "Metrc refused the request", call, status: response.status,
                    elapsed: elapsed, error: error)
                throw error
            }
        }
    }

    func decode<T: Decodable>(_ type: T.Type, from response: HTTPResponse, _ call: Call) throws(MetrcError) -> T {
        do {
            return try MetrcJSON.makeDecoder().decode(T.self, from: response.body)
        } catch {
            let failure = MetrcError.invalidResponse("\(call.method) \(call.logPath): \(Self.describe(error))")
            log(.error, "Unreadable answer from Metrc", call, status: response.status, elapsed: nil, error: failure)
            throw failure
        }
    }

    // MARK: - Logging

    func log(_ level: Logger.Level, _ message: String, _ call: Call, status: Int?, elapsed: Duration?,
             error: MetrcError? = nil, extra: Logger.Metadata = [:]) {
        guard logger.logLevel <= level else { return }  // every call logs at debug: build nothing unread
        var metadata: Logger.Metadata = ["method": "\(call.method)", "path": "\(call.logPath)"]
        if let status { metadata["status"] = "\(status)" }
        if let elapsed { metadata["duration_ms"] = "\(Self.milliseconds(elapsed))" }
        if let error {
            let hidden = call.sensitive + (call.personalNumbersInBody ? Self.personalNumbers(inBody: call.body) : [])
            metadata["error"] = "\(MetrcRedaction.redact(error.description, hiding: hidden))"
            metadata["may_have_been_applied"] = "\(error.mayHaveBeenApplied)"
        }
        metadata.merge(extra) { _, new in new }
        logger.log(level: level, "\(message)", metadata: metadata)
    }

    // MARK: - Helpers

    private static let unreserved: CharacterSet = {
        var set = CharacterSet()
        set.insert(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return set
    }()

    /// RFC 3986 unreserved characters only, so that "+" becomes %2B and ":" %3A in filters.
    static func percentEncoded(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }

    /// Retry-After as delay-seconds or an HTTP-date; nil when absent or unreadable.
    static func retryAfter(_ value: String?, now: Date) -> Duration? {
        guard let text = value?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        if let seconds = Double(text) {
            guard seconds.isFinite else { return nil }
            return .milliseconds(Int64((min(max(0, seconds), 86_400) * 1000).rounded()))
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                let seconds = min(max(0, date.timeIntervalSince(now)), 86_400)
                return .milliseconds(Int64((seconds * 1000).rounded()))
            }
        }
        return nil
    }

    /// base × 2^attempt, times a jitter factor (0.5…1.5), capped.
    static func backoff(attempt: Int, base: Duration, cap: Duration, jitter: Double) -> Duration {
        let seconds = min(seconds(of: base) * pow(2, Double(min(attempt, 30))) * jitter, seconds(of: cap))
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    static func seconds(of duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return String(describing: error) }
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing \(key.stringValue) at \(path(context.codingPath))"
        case .typeMismatch(let type, let context): return "expected \(type) at \(path(context.codingPath))"
        case .valueNotFound(let type, let context): return "null where \(type) expected at \(path(context.codingPath))"
        case .dataCorrupted(let context): return "not valid JSON at \(path(context.codingPath))"
        @unknown default: return "undecodable"
        }
    }
}
