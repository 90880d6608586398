import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization
import TillDomain
import TillStore

/// Logged-in console sessions: an unguessable id (the cookie) to the manager's terminal, for a working day.
final class ConsoleSessions: Sendable {
    private struct Session {
        var terminalId: Int64
        var expires: Date
    }

    private let sessions = Mutex<[String: Session]>([:])
    private let lifetime: TimeInterval = 12 * 3600

    func open(for terminal: Terminal) -> String {
        let id = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        sessions.withLock { sessions in
            let now = Date()
            sessions = sessions.filter { $0.value.expires > now }
            sessions[id] = Session(terminalId: terminal.id, expires: now.addingTimeInterval(lifetime))
        }
        return id
    }

    func terminalId(_ id: String) -> Int64? {
        sessions.withLock { sessions in
            guard let session = sessions[id], session.expires > Date() else { return nil }
            return session.terminalId
        }
    }

    func close(_ id: String) {
        sessions.withLock { _ = $0.removeValue(forKey: id) }
    }
}

/// The manager's console: a web page and the manager's read, repair and close API, on a loopback TCP listener
/// (a browser cannot speak to a Unix socket). A manager's token logs in once; the browser then holds a session
/// cookie (HttpOnly, SameSite=Strict). Nothing here sells: the register socket stays the only way to.
enum Console {
    static let cookie = "till_console"

    static func application(services: TillServices, host: String, port: Int, logger: Logger,
                            onRunning: @escaping @Sendable (_ url: String) -> Void) -> some ApplicationProtocol {
        let sessions = ConsoleSessions()
        let router = Router(context: TillRequestContext.self)
        let routes = RouteTable()
        router.add(middleware: JSONErrorMiddleware(routes: routes))
        router.add(middleware: ConsoleAuthMiddleware(store: services.store, sessions: sessions))

        router.get("/") { _, _ in try page("index.html", type: "text/html; charset=utf-8") }
        router.get("/console.js") { _, _ in try page("console.js", type: "text/javascript; charset=utf-8") }
        router.get("/console.css") { _, _ in try page("console.css", type: "text/css; charset=utf-8") }
        // For Prometheus: no session, as nothing but this machine reaches the listener.
        router.get("/metrics") { _, _ in try await MetricsPage.response(services) }
        router.post("/login") { request, context in try await login(request, context: context, services: services, sessions: sessions) }
        router.post("/logout") { request, _ in
            if let id = sessionId(request) { sessions.close(id) }
            var response = Response(status: .noContent)
            response.headers[.setCookie] = "\(cookie)=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
            return response
        }
        let api = Routes(services: services)
        let v1 = router.group("api/v1")
        v1.get("session") { _, context in
            let terminal = try context.requireTerminal([.manager])
            return JSONResponse.make(["terminal": terminal.name, "license": services.configuration.license,
                                      "today": FacilityDate.string(of: Date(), in: services.configuration.timeZone)])
        }
        v1.get("reporting", use: api.reporting)
        v1.get("sales", use: api.listSales)
        v1.get("sales/:id", use: api.getSale)
        v1.get("quarantine", use: api.quarantine)
        v1.get("days/:date", use: api.dayView)
        v1.post("days/:date/repair", use: api.dayRepair)
        v1.post("days/:date/close", use: api.dayClose)
        v1.get("days/:date/report", use: api.dayReport)
        routes.load(router.routes.map { (path: $0.path.description, method: $0.method.rawValue) })

        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "Till console"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                onRunning("http://\(host.contains(":") ? "[\(host)]" : host):\(bound)")
            },
            logger: logger)
    }

    /// A manager's token for a session cookie. A token of another role, unknown or revoked, logs nobody in.
    static func login(_ request: Request, context: TillRequestContext, services: TillServices,
                      sessions: ConsoleSessions) async throws -> Response {
        struct Login: Decodable { var token: String }
        let body = try await Routes.readBody(request, context: context)
        guard let login = try? JSONDecoder().decode(Login.self, from: body) else {
            throw TillError.invalid("invalid_request", "Send {\"token\": \"…\"}: a manager terminal's token.")
        }
        let terminal = try Routes.stored { try services.store.terminal(token: login.token.trimmingCharacters(in: .whitespaces)) }
        guard let terminal else { throw TillError.invalidToken }
        guard terminal.role == .manager else {
            throw TillError(.forbidden, code: "forbidden", "Only a manager's token opens the console; this one is a \(terminal.role.rawValue)'s.")
        }
        try? services.store.appendAudit(AuditEvent(actor: "terminal:\(terminal.name)", terminalId: terminal.id, action: "console.login"))
        var response = JSONResponse.make(["terminal": terminal.name])
        response.headers[.setCookie] = "\(cookie)=\(sessions.open(for: terminal)); HttpOnly; SameSite=Strict; Path=/"
        return response
    }

    static func sessionId(_ request: Request) -> String? {
        guard let header = request.headers[.cookie] else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0] == cookie { return String(pair[1]) }
        }
        return nil
    }

    static func page(_ name: String, type: String) throws -> Response {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Console"),
              let data = try? Data(contentsOf: url) else {
            throw TillError(.internal, code: "internal_error", "The console's \(name) is missing from Till's resources.")
        }
        return Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The console's API answers only a logged-in manager's browser: the session cookie names the terminal, read
/// afresh each time (a revoked token ends its sessions), and a write must come from the console's own page.
struct ConsoleAuthMiddleware: RouterMiddleware {
    let store: TillStore
    let sessions: ConsoleSessions

    func handle(_ request: Request, context: TillRequestContext,
                next: (Request, TillRequestContext) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/api/") else { return try await next(request, context) }
        if request.method != .get, let origin = request.headers[.origin], let authority = request.head.authority,
           URL(string: origin).map({ "\($0.host ?? ""):\($0.port ?? 80)" }) != authority {
            throw TillError(.forbidden, code: "forbidden", "The console's writes come from its own page only.")
        }
        guard let id = Console.sessionId(request), let terminalId = sessions.terminalId(id) else {
            throw TillError(.unauthorized, code: "unauthorized", "Log in to the console with a manager's token.")
        }
        guard let terminal = try Routes.stored({ try store.terminal(id: terminalId) }) else {
            sessions.close(id)
            throw TillError.invalidToken
        }
        var context = context
        context.terminal = terminal
        return try await next(request, context)
    }
}
