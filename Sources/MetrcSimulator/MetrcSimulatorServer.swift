import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// Serves a MetrcSimulation over HTTP on loopback.
public struct MetrcSimulatorServer: Sendable {
    public let simulation: MetrcSimulation
    public let host: String
    public let port: Int
    public let logger: Logger

    public init(simulation: MetrcSimulation, host: String = "127.0.0.1", port: Int = 0, logger: Logger) {
        self.simulation = simulation
        self.host = host
        self.port = port
        self.logger = logger
    }

    /// Runs until cancelled; `onListening` receives the base URL ("http://127.0.0.1:PORT") once bound (port 0 → ephemeral).
    public func run(onListening: @escaping @Sendable (String) async -> Void) async throws {
        try await application(onListening: onListening).run()
    }

    /// The Hummingbird application behind `run`: a swift-service-lifecycle `Service`, for a `ServiceGroup`
    /// (`till sim` runs it so, and it then stops gracefully on SIGTERM).
    public func application(onListening: @escaping @Sendable (String) async -> Void = { _ in }) -> some ApplicationProtocol {
        let host = self.host
        let fallbackPort = self.port
        let urlHost = host.contains(":") ? "[\(host)]" : host
        return Application(
            responder: SimulatorResponder(simulation: simulation, logger: logger),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                await onListening("http://\(urlHost):\(channel.localAddress?.port ?? fallbackPort)")
            },
            logger: logger)
    }
}

extension MetrcSimulatorServer {
    /// Convenience for tests: starts serving in a child Task and returns once listening.
    public static func start(simulation: MetrcSimulation, logger: Logger) async throws -> RunningSimulator {
        try await start(MetrcSimulatorServer(simulation: simulation, logger: logger))
    }

    /// Starts `server` in a Task and returns once it is listening; throws if it fails to bind.
    public static func start(_ server: MetrcSimulatorServer) async throws -> RunningSimulator {
        let (urls, continuation) = AsyncStream.makeStream(of: String.self)
        let group = ServiceGroup(services: [server.application { url in continuation.yield(url) }], logger: server.logger)
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        for await url in urls {
            return RunningSimulator(baseURL: url, task: task, group: group, simulation: server.simulation)
        }
        // The stream ended without a URL: the server stopped before listening; surface its error.
        try await task.value
        throw SimulatorStartError.stoppedBeforeListening
    }
}

/// Why `MetrcSimulatorServer.start` returned no running simulator.
public enum SimulatorStartError: Error, Sendable {
    /// The server finished without ever listening (and without an error of its own).
    case stoppedBeforeListening
}

/// A simulator serving in the background; `stop()` it at the end of a test.
public final class RunningSimulator: Sendable {
    /// "http://127.0.0.1:PORT", without a trailing slash.
    public let baseURL: String
    public let simulation: MetrcSimulation
    private let task: Task<Void, any Error>
    private let group: ServiceGroup

    init(baseURL: String, task: Task<Void, any Error>, group: ServiceGroup, simulation: MetrcSimulation) {
        self.baseURL = baseURL
        self.task = task
        self.group = group
        self.simulation = simulation
    }

    /// Stops serving: closes the listener and every connection, and waits until the server has finished.
    /// Gracefully, not by cancelling the serving task: a connection accepted just before a cancellation
    /// is never served and traps in NIO (swift-nio#2637, "Deinited NIOAsyncWriter without calling finish()").
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }

    deinit { task.cancel() }
}

// MARK: Hummingbird glue

/// Carries what the responder needs beyond the request: a way to close the connection under it.
struct SimulatorRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// Closes the TCP connection this request arrived on, at once.
    let closeConnection: @Sendable () async -> Void
    /// The client's end of that connection.
    let connection: String?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        let channel = source.channel
        self.closeConnection = { try? await channel.close() }
        self.connection = channel.remoteAddress.map { "\($0)" }
    }

    var maxUploadSize: Int { 4 * 1024 * 1024 }
}

/// Thrown after the simulator has closed a connection on purpose, so Hummingbird writes nothing more.
struct SimulatedConnectionDrop: Error {}

/// Hands every request to the simulation and writes its answer, or drops the connection when told to.
struct SimulatorResponder: HTTPResponder {
    typealias Context = SimulatorRequestContext
    let simulation: MetrcSimulation
    let logger: Logger

    func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        let rawPath = request.head.path ?? "/"
        let (path, query) = Self.split(rawPath)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }

        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: context.maxUploadSize)
        } catch {
            log(request.method.rawValue, path, status: 413, started: started)
            return Response(status: .contentTooLarge)
        }
        let answer = await simulation.respond(to: SimHTTPRequest(
            method: request.method.rawValue, path: path, query: query, headers: headers,
            body: Data(body.readableBytesView), connection: context.connection))
        log(request.method.rawValue, path, status: answer.status, started: started, drop: answer.drop)

        var fields = HTTPFields()
        for header in answer.headers {
            if let name = HTTPFields.Element.Name(header.name) { fields[name] = header.value }
        }
        let status = HTTPResponse.Status(code: answer.status, reasonPhrase: Self.reasonPhrase(answer.status))

        switch answer.drop {
        case nil:
            return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        case .silentClose?:
            await context.closeConnection()
            throw SimulatedConnectionDrop()
        case .truncatedResponse?:
            // The head promises the whole answer; only part of it follows before the connection closes, so
            // the client holds an incomplete response whatever its connection's history.
            let promised = max(answer.body.count, 2)
            let sent = answer.body.prefix(answer.body.count / 2)
            fields[.contentLength] = String(promised)
            let close = context.closeConnection
            return Response(status: status, headers: fields, body: ResponseBody(contentLength: promised) { writer in
                if !sent.isEmpty { try await writer.write(ByteBuffer(bytes: sent)) }
                await close()
                throw SimulatedConnectionDrop()
            })
        }
    }

    private func log(_ method: String, _ path: String, status: Int, started: ContinuousClock.Instant,
                     drop: SimFault.DropStyle? = nil) {
        // Never the Authorization header: only the verb, path, answer and time.
        let elapsed = ContinuousClock.now - started
        let ms = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        var metadata: Logger.Metadata = ["status": "\(status)", "ms": "\(ms)"]
        if let drop { metadata["dropped"] = "\(drop)" }
        logger.info("\(method) \(path)", metadata: metadata)
    }

    static func split(_ target: String) -> (path: String, query: String?) {
        guard let mark = target.firstIndex(of: "?") else { return (target, nil) }
        let query = target[target.index(after: mark)...].split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
        return (String(target[..<mark]), query.map(String.init))
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 413: "Request Entity Too Large"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: ""
        }
    }
}
