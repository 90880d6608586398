import CurlHTTP
import Foundation
import Logging
import MetrcKit
import MetrcSimulator
import ServiceLifecycle
import Testing
import TillAPI
import TillDomain
import TillMetrics
import TillPatients
import TillReporter
import TillStore

/// Seeded simulator packages the tests sell from (see `SimFacility.demo`).
enum Labels {
    /// Flower in Grams with plenty of stock.
    static let flower = "1A4FF0100000022000000101"
    /// Exactly 10 Each.
    static let tenEach = "1A4FF0100000022000000110"
    static let onHold = "1A4FF0100000022000000120"
    static let failedLabTest = "1A4FF0100000022000000121"
}

/// Runs `body` with `resource`, then `tearDown`, whether `body` throws or not: the `defer` an async
/// clean-up cannot have (`defer { Task { … } }` may outlive the test process).
func using<Resource>(_ resource: Resource, _ body: (Resource) async throws -> Void,
                     then tearDown: (Resource) async -> Void) async throws {
    do {
        try await body(resource)
    } catch {
        await tearDown(resource)
        throw error
    }
    await tearDown(resource)
}

/// A decoded JSON answer from Till.
struct Answer: @unchecked Sendable {
    // @unchecked: the dictionary comes from JSONSerialization and is never mutated after decoding.
    let status: Int
    let json: [String: Any]
    let body: Data
    /// Names lower-cased.
    var headers: [String: String] = [:]

    var error: [String: Any]? { json["error"] as? [String: Any] }
    var errorCode: String? { error?["code"] as? String }
    subscript(key: String) -> Any? { json[key] }
}

/// A real Till server on a temporary Unix socket, reporting to a simulated Metrc on loopback.
final class TillHarness: Sendable {
    let simulation: MetrcSimulation
    let simulator: RunningSimulator
    let services: TillServices
    let socketPath: String
    let directory: String
    let client: CurlHTTPClient
    let registerToken: String
    let managerToken: String
    let pharmacistToken: String
    private let server: Task<Void, any Error>
    private let group: ServiceGroup

    static let license = TillConfiguration.demoLicense
    static let fastRetry = RetryPolicy(base: .milliseconds(50), cap: .milliseconds(500), jitter: 0.1)

    /// Starts Till (its real server on a socket) against a fresh simulator, runs `body`, and stops both
    /// and removes the data folder before returning, whether `body` throws or not.
    static func run(deadline: Duration = .seconds(5), retry: RetryPolicy = fastRetry,
                    simulator simulatorConfiguration: SimulatorConfiguration = SimulatorConfiguration(),
                    runReporter: Bool = true, patientCache: Duration = .seconds(60),
                    stalePolicy: StalePatientPolicy = .refuse,
                    metrcTransport: any HTTPTransport = CurlHTTPClient(),
                    metrcTimeout: Duration = .seconds(20), inDoubt: Duration = .zero,
                    sweep: Bool = false, configure: @Sendable (inout TillConfiguration) -> Void = { _ in },
                    _ body: (TillHarness) async throws -> Void) async throws {
        let till = try await start(deadline: deadline, retry: retry, simulator: simulatorConfiguration,
                                   runReporter: runReporter, patientCache: patientCache, stalePolicy: stalePolicy,
                                   metrcTransport: metrcTransport, metrcTimeout: metrcTimeout, inDoubt: inDoubt,
                                   sweep: sweep, configure: configure)
        try await using(till, body, then: { await $0.stop() })
    }

    private static func start(deadline: Duration, retry: RetryPolicy, simulator simulatorConfiguration: SimulatorConfiguration,
                              runReporter: Bool, patientCache: Duration, stalePolicy: StalePatientPolicy,
                              metrcTransport: any HTTPTransport, metrcTimeout: Duration, inDoubt: Duration,
                              sweep: Bool, configure: (inout TillConfiguration) -> Void) async throws -> TillHarness {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("till-e2e-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var logger = Logger(label: "till-test")
        logger.logLevel = ProcessInfo.processInfo.environment["TILL_TEST_LOG"] == "1" ? .debug : .critical

        let simulation = MetrcSimulation(configuration: simulatorConfiguration)
        let simulator = try await MetrcSimulatorServer.start(simulation: simulation, logger: logger)
        var configuration = TillConfiguration(
            dataDirectory: directory, socketPath: directory + "/till.sock", license: license,
            timeZone: TimeZone(identifier: TillConfiguration.demoTimeZone)!, metrcBaseURL: simulator.baseURL,
            vendorKey: simulatorConfiguration.vendorKey, userKey: simulatorConfiguration.userKey, reportDeadline: deadline)
        configuration.consoleAddress = nil  // tests run side by side; the console has its own test in a browser
        configure(&configuration)
        let store = try TillStore(path: configuration.databasePath)
        var metrcConfiguration = MetrcConfiguration(baseURL: simulator.baseURL, vendorKey: configuration.vendorKey,
                                                    userKey: configuration.userKey, licenseNumber: license,
                                                    timeZone: configuration.timeZone)
        metrcConfiguration.requestTimeout = metrcTimeout
        // Each harness counts into its own metrics: tests run side by side in one process.
        let metrics = TillMetrics()
        let metrc = MetrcClient(configuration: metrcConfiguration, transport: metrcTransport, logger: logger,
                                metricsFactory: metrics.factory)
        let services = TillServices(configuration: configuration, store: store, metrc: metrc, logger: logger,
                                    reporterSettings: ReporterSettings(deadline: deadline, retry: retry,
                                                                       idlePoll: .milliseconds(50), inDoubtWindow: inDoubt),
                                    // Long: a loaded machine must not turn a slow lookup into a stale one (staleness is
                                    // tested with faults, which answer at once).
                                    patientSettings: PatientSettings(cacheFor: patientCache, patience: .seconds(10),
                                                                     stalePolicy: stalePolicy),
                                    syncInterval: .seconds(3600), metrics: metrics)
        await services.patients.refreshFacility()
        try await services.sync.syncOnce()
        let register = try store.addTerminal(name: "register-1", role: .register).token
        let manager = try store.addTerminal(name: "manager-1", role: .manager).token
        let pharmacist = try store.addTerminal(name: "pharmacist-1", role: .pharmacist).token

        let app = try buildApplication(services: services, runReporter: runReporter, runSweep: sweep)
        // Stopped gracefully, never by cancelling: see RunningSimulator.stop.
        let group = ServiceGroup(services: [app], logger: logger)
        let server = Task { try await group.run() }
        let harness = TillHarness(simulation: simulation, simulator: simulator, services: services,
                                  socketPath: configuration.socketPath, directory: directory,
                                  registerToken: register, managerToken: manager, pharmacistToken: pharmacist,
                                  server: server, group: group)
        try await harness.waitUntil("the server listens") {
            (try? await harness.request("GET", "/v1/health"))?.status == 200
        }
        return harness
    }

    private init(simulation: MetrcSimulation, simulator: RunningSimulator, services: TillServices, socketPath: String,
                 directory: String, registerToken: String, managerToken: String, pharmacistToken: String,
                 server: Task<Void, any Error>, group: ServiceGroup) {
        self.simulation = simulation
        self.simulator = simulator
        self.services = services
        self.socketPath = socketPath
        self.directory = directory
        self.client = CurlHTTPClient(unixSocketPath: socketPath, maxIdleHandles: 32)
        self.registerToken = registerToken
        self.managerToken = managerToken
        self.pharmacistToken = pharmacistToken
        self.server = server
        self.group = group
    }

    private func stop() async {
        await group.triggerGracefulShutdown()
        _ = await server.result
        await simulator.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Sends a request to Till over its socket; `token` nil sends no Authorization header.
    func request(_ method: String, _ path: String, body: String? = nil, token: String? = nil,
                 headers: [(name: String, value: String)] = []) async throws -> Answer {
        var allHeaders = headers
        if let token { allHeaders.append((name: "Authorization", value: "Bearer \(token)")) }
        if body != nil { allHeaders.append((name: "Content-Type", value: "application/json")) }
        let response = try await client.send(HTTPRequest(method: method, url: "http://till\(path)", headers: allHeaders,
                                                         body: body.map { Data($0.utf8) }, timeout: .seconds(30)))
        let json = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
        return Answer(status: response.status, json: json, body: response.body, headers: response.headers)
    }

    /// Asks for a return of sale `saleId` (as a manager unless told otherwise).
    func returnSale(_ saleId: Int, _ body: String, token: String? = nil) async throws -> Answer {
        try await request("POST", "/v1/sales/\(saleId)/returns", body: body, token: token ?? managerToken)
    }

    /// Posts a one-line consumer sale from a register.
    func sell(_ clientSaleId: String, label: String = Labels.flower, quantity: String = "3.5", unit: String = "Grams",
              amount: String = "35.00", token: String? = nil) async throws -> Answer {
        try await request("POST", "/v1/sales", body: """
            {"clientSaleId":"\(clientSaleId)","customerType":"Consumer",
             "lines":[{"packageLabel":"\(label)","quantity":\(quantity),"unit":"\(unit)","totalAmount":\(amount)}]}
            """, token: token ?? registerToken)
    }

    func receiptsInMetrc(for receiptNumber: String) async -> [SimReceipt] {
        await simulation.receipts(license: Self.license, externalNumber: receiptNumber)
    }

    func localQuantity(_ label: String) throws -> Decimal? {
        try services.store.packages(labels: [label])[label]?.quantity
    }

    /// Polls `condition` until it holds or `timeout` passes (then the test fails).
    /// Runs the reporter (for a harness started with `runReporter: false`) until nothing is pending.
    func drainBacklog() async throws {
        let reporter = Task { try await services.reporter.run() }
        defer { reporter.cancel() }
        try await waitUntil("the backlog drains", timeout: .seconds(30)) {
            try services.store.reportingSummary().pending == 0
        }
    }

    func waitUntil(_ what: String, timeout: Duration = .seconds(20),
                   _ condition: @Sendable () async throws -> Bool) async throws {
        try await poll(until: what, timeout: timeout, condition)
    }
}

/// Runs blocking work (waiting for a child process, a blocking socket) on a thread of its own: on the
/// cooperative pool, two threads on two cores, it could starve the server or the simulator this test
/// process runs for it.
func onItsOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

/// Polls `condition` until it holds or `timeout` passes (then the test fails).
func poll(until what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out waiting until \(what)")
    throw CancellationError()
}

/// One HTTP/1.1 connection to Till's socket, kept open from request to request (libcurl may open another
/// whenever it likes): for what Till counts per connection. Its blocking reads (10 s at most) run off the
/// cooperative pool.
final class SocketConnection {
    private let descriptor: Int32

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    init(path: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket: \(errno)") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            throw Failure(description: "connect: \(errno)")
        }
    }

    deinit { close(descriptor) }

    /// Sends one request on this connection and reads its whole answer: the status and the error code, if any.
    func request(_ method: String, _ path: String, token: String?) async throws -> (status: Int, code: String?) {
        let descriptor = self.descriptor
        return try await onItsOwnThread { try Self.exchange(on: descriptor, method, path, token: token) }
    }

    private static func exchange(on descriptor: Int32, _ method: String, _ path: String,
                                 token: String?) throws -> (status: Int, code: String?) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: till\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        head += "\r\n"
        let sent = Array(head.utf8).withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == head.utf8.count else { throw Failure(description: "send: \(errno)") }

        var received: [UInt8] = []
        func readMore() throws {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw Failure(description: "the connection closed or timed out (\(errno))") }
            received += buffer[..<count]
        }
        let separator = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            try readMore()
            headEnd = received.indices.dropLast(3).first { received[$0..<$0 + 4].elementsEqual(separator) }
        }
        let headText = String(decoding: received[..<headEnd!], as: UTF8.self)
        let lines = headText.components(separatedBy: "\r\n")
        guard let status = lines.first?.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
            throw Failure(description: "no status line: \(headText)")
        }
        let length = lines.dropFirst().compactMap { line -> Int? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }.first ?? 0
        while received.count < headEnd! + 4 + length { try readMore() }
        let body = Data(received[(headEnd! + 4)..<(headEnd! + 4 + length)])
        let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        return (status, (json?["error"] as? [String: Any])?["code"] as? String)
    }
}
