import CurlHTTP
import Foundation
import Logging
import Synchronization
import Testing
@testable import MetrcKit

typealias Reply = Result<HTTPResponse, HTTPTransportError>

/// An HTTPTransport that records every request and answers from a script (or a handler).
final class ScriptedTransport: HTTPTransport {
    private struct State {
        var requests: [HTTPRequest] = []
        var replies: [Reply]
    }

    private let state: Mutex<State>
    private let handler: (@Sendable (HTTPRequest) -> Reply)?

    init(_ replies: [Reply]) {
        state = Mutex(State(replies: replies))
        handler = nil
    }

    init(handler: @escaping @Sendable (HTTPRequest) -> Reply) {
        state = Mutex(State(replies: []))
        self.handler = handler
    }

    func send(_ request: HTTPRequest) async throws(HTTPTransportError) -> HTTPResponse {
        let reply = state.withLock { state -> Reply in
            state.requests.append(request)
            if let handler { return handler(request) }
            if state.replies.isEmpty { return .success(HTTPResponse(status: 599, body: Data("script ended".utf8))) }
            return state.replies.removeFirst()
        }
        return try reply.get()
    }

    var requests: [HTTPRequest] { state.withLock { $0.requests } }
}

/// A clock that moves only when the code under test sleeps; the sleeps are recorded instead of waited.
final class TestClock: Sendable {
    private struct State {
        var now: ContinuousClock.Instant = .now
        var sleeps: [Duration] = []
    }

    private let state = Mutex(State())

    var now: @Sendable () -> ContinuousClock.Instant {
        { [self] in state.withLock { $0.now } }
    }

    var sleep: @Sendable (Duration) async throws -> Void {
        { [self] duration in
            state.withLock { state in
                state.sleeps.append(duration)
                state.now += duration
            }
        }
    }

    var sleeps: [Duration] { state.withLock { $0.sleeps } }
}

/// Collects every log line, metadata included, as text.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    var logger: Logger {
        Logger(label: "test") { _ in CapturingLogHandler(capture: self) }
    }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append("\(event.level) \(event.message) \(fields)")
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}

func json(_ status: Int, _ body: String, headers: [String: String] = [:]) -> Reply {
    .success(HTTPResponse(status: status, headers: headers.merging(["content-type": "application/json"]) { old, _ in old },
                          body: Data(body.utf8)))
}

func text(_ status: Int, _ body: String, contentType: String = "text/html") -> Reply {
    .success(HTTPResponse(status: status, headers: ["content-type": contentType], body: Data(body.utf8)))
}

let denver = TimeZone(identifier: "America/Denver")!

func testConfiguration(baseURL: String = "https://sandbox-api-co.metrc.com") -> MetrcConfiguration {
    MetrcConfiguration(baseURL: baseURL, vendorKey: "VENDOR-secret-key", userKey: "USER-secret-key",
                       licenseNumber: "402R-X0001", timeZone: denver)
}

func makeClient(_ transport: ScriptedTransport, clock: TestClock = TestClock(), logs: LogCapture? = nil,
                configure: (inout MetrcConfiguration) -> Void = { _ in }) -> MetrcClient {
    var configuration = testConfiguration()
    configure(&configuration)
    return MetrcClient(configuration: configuration, transport: transport,
                       logger: logs?.logger ?? Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
                       sleep: clock.sleep, now: clock.now)
}

/// The query items of a recorded request, decoded.
func query(_ request: HTTPRequest) -> [String: String] {
    guard let components = URLComponents(string: request.url) else { return [:] }
    var items: [String: String] = [:]
    for item in components.queryItems ?? [] { items[item.name] = item.value ?? "" }
    return items
}

func path(_ request: HTTPRequest) -> String {
    URLComponents(string: request.url)?.percentEncodedPath ?? ""
}

func header(_ request: HTTPRequest, _ name: String) -> String? {
    request.headers.last { $0.name.lowercased() == name.lowercased() }?.value
}

/// The JSON body of a recorded request as Foundation objects.
func bodyArray(_ request: HTTPRequest) -> [[String: Any]] {
    guard let body = request.body,
          let array = try? JSONSerialization.jsonObject(with: body) as? [[String: Any]] else { return [] }
    return array
}

func receiptDraft(_ number: Int) -> MetrcReceiptDraft {
    MetrcReceiptDraft(salesDateTime: "2026-11-22T14:05:00.000", salesCustomerType: "Consumer",
                      externalReceiptNumber: "TILL-\(number)",
                      transactions: [MetrcTransactionDraft(packageLabel: "1A4000000000000000000001", quantity: 1,
                                                           unitOfMeasure: "Each", totalAmount: 10)])
}

func date(_ iso: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: iso) { return date }
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: iso)!
}

/// Runs a MetrcKit call and returns the MetrcError it threw, if any.
func metrcError<T>(_ body: () async throws -> T) async -> MetrcError? {
    do {
        _ = try await body()
        return nil
    } catch let error as MetrcError {
        return error
    } catch {
        Issue.record("not a MetrcError: \(error)")
        return nil
    }
}
