import Foundation
import Hummingbird
import JSONWriting
import Logging
import NIOCore
import Synchronization
import TillDomain
import TillStore

/// Turns every failure into `{"error":{"code","message","details"}}` with a fitting status; never a stack trace.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Tells a path Till serves with other methods (405) from one it does not serve (404).
    let routes: RouteTable

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as TillError {
            return APIError.response(error)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = routes.methods(forPath: request.uri.path)
            guard !allowed.isEmpty else { return APIError.response(APIError.from(error)) }
            let list = allowed.joined(separator: ", ")
            var response = APIError.response(TillError(
                .invalidRequest, code: "method_not_allowed",
                "\(request.method.rawValue) is not allowed on \(request.uri.path); it takes \(list).",
                details: ["allowed": list]))
            response.headers[.allow] = list
            return response
        } catch let error as HTTPError {
            return APIError.response(APIError.from(error))
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(error)"])
            return APIError.response(TillError(.internal, code: "internal_error", "Till could not complete the request."))
        }
    }
}

/// The methods each of Till's paths takes, read from the router once its routes are added (the error
/// middleware that asks is added before them).
final class RouteTable: Sendable {
    private struct Route {
        /// Path components; nil stands for a parameter (`{id}`: the router describes `:id` so), which
        /// matches any one component. Till's routes use no partial captures or wildcards.
        let components: [Substring?]
        let method: String
    }

    private let routes = Mutex<[Route]>([])

    func load(_ described: [(path: String, method: String)]) {
        let loaded = described.map { route in
            Route(components: route.path.split(separator: "/").map { $0.hasPrefix("{") ? nil : $0 }, method: route.method)
        }
        routes.withLock { $0 = loaded }
    }

    /// The methods `path` is served with, sorted; empty when no route has that path.
    func methods(forPath path: String) -> [String] {
        let components = path.split(separator: "/")
        let methods = routes.withLock { routes in
            routes.filter { route in
                route.components.count == components.count
                    && zip(route.components, components).allSatisfy { pattern, component in pattern.map { $0 == component } ?? true }
            }.map(\.method)
        }
        return Set(methods).sorted()
    }
}

/// Resolves `Authorization: Bearer <token>` to a terminal; the token itself is never logged.
struct TerminalAuthMiddleware: RouterMiddleware {
    let store: TillStore
    let connections: ConnectionTracker
    /// Paths anyone on the socket may read (the socket itself is mode 0660).
    let publicPaths: Set<String>
    /// Terminals that made sales, by token hash. Only `POST /v1/sales` trusts it, because the journal
    /// checks the terminal again in the sale's own transaction (a revocation by `till terminals revoke`
    /// is seen there); every other request reads its terminal afresh.
    let sellingTerminals = TerminalCache()
    let failedAttempts = FailedTokenAttempts()

    func handle(_ request: Request, context: TillRequestContext,
                next: (Request, TillRequestContext) async throws -> Response) async throws -> Response {
        var path = request.uri.path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        if publicPaths.contains(path) { return try await next(request, context) }
        // Before the token is looked at: were a right token let through, a guesser would still learn which one is right.
        if failedAttempts.isThrottled(context.connection) { throw FailedTokenAttempts.refusal }
        guard let header = request.headers[.authorization], header.prefix(7).lowercased() == "bearer " else {
            failedAttempts.recordFailure(on: context.connection, logger: context.logger)
            throw TillError(.unauthorized, code: "unauthorized", "A bearer token is required (Authorization: Bearer <token>).")
        }
        // Trimmed by hand: Foundation's trimmingCharacters(in:) goes through NSString, ~1% of a sale's CPU.
        var token = header.dropFirst(7)
        while token.first?.isWhitespace == true { token.removeFirst() }
        while token.last?.isWhitespace == true { token.removeLast() }
        let tokenHash = TillStore.tokenHash(String(token))
        let checkedBySale = request.method == .post && path == "/v1/sales"
        var terminal = checkedBySale ? sellingTerminals[tokenHash] : nil
        if terminal == nil {
            do {
                terminal = try store.terminal(tokenHash: tokenHash)
            } catch {
                throw TillError.fromStore(error)
            }
            if checkedBySale { sellingTerminals[tokenHash] = terminal }
        }
        guard let terminal else {
            failedAttempts.recordFailure(on: context.connection, logger: context.logger)
            throw TillError.invalidToken
        }
        connections.noted(terminal)
        var context = context
        context.terminal = terminal
        context.logger[metadataKey: "terminal"] = "\(terminal.name)"
        guard checkedBySale else { return try await next(request, context) }
        do {
            return try await next(request, context)
        } catch let error as TillError where error == .invalidToken {
            sellingTerminals[tokenHash] = nil  // revoked since it was cached
            throw error
        }
    }
}

/// Failed bearer-token attempts (no token, or one that names no live terminal), counted per connection.
///
/// After `limit` failures a connection is answered 429 `too_many_failed_attempts` for every request that
/// needs a token, whatever token it then sends, until it closes: a program guessing tokens gets `limit`
/// guesses per connection, and a register whose token is wrong fails loudly instead of retrying forever.
/// Tokens carry 192 random bits, so this is not what keeps them from being guessed; it keeps a guesser
/// (or a misconfigured register) from costing a token look-up per request, and puts it in the log once.
final class FailedTokenAttempts: Sendable {
    static let refusal = TillError(.unauthorized, code: "too_many_failed_attempts",
                                   "Too many failed bearer tokens on this connection; open a new one with a valid token.")

    let limit: Int
    private let failures = Mutex<[ObjectIdentifier: Int]>([:])
    /// Connections with a failure: what a request with a good token reads, one atomic load, before any lock.
    private let connectionsWithFailures = Atomic<Int>(0)

    init(limit: Int = 5) {
        self.limit = limit
    }

    func isThrottled(_ connection: any Channel) -> Bool {
        guard connectionsWithFailures.load(ordering: .acquiring) > 0 else { return false }
        return failures.withLock { $0[ObjectIdentifier(connection)] ?? 0 } >= limit
    }

    func recordFailure(on connection: any Channel, logger: Logger) {
        let id = ObjectIdentifier(connection)
        let count = failures.withLock { failures in
            failures[id, default: 0] += 1
            return failures[id]!
        }
        if count == 1 {
            connectionsWithFailures.add(1, ordering: .releasing)
            // Forgotten when the connection closes, before its identifier can be reused by another.
            connection.closeFuture.whenComplete { _ in
                self.failures.withLock { _ = $0.removeValue(forKey: id) }
                self.connectionsWithFailures.subtract(1, ordering: .releasing)
            }
        }
        if count == limit {
            logger.warning("refusing a connection's requests after failed bearer tokens",
                           metadata: ["failures": "\(count)"])
        }
    }
}

/// Terminals by token hash, bounded: a busy store has a handful of registers, not thousands.
final class TerminalCache: Sendable {
    private let terminals = Mutex<[String: Terminal]>([:])
    private let limit = 256

    subscript(tokenHash: String) -> Terminal? {
        get { terminals.withLock { $0[tokenHash] } }
        set {
            terminals.withLock { terminals in
                if newValue != nil, terminals[tokenHash] == nil, terminals.count >= limit { terminals.removeAll() }
                terminals[tokenHash] = newValue
            }
        }
    }
}

enum APIError {
    static func status(_ kind: TillError.Kind) -> HTTPResponse.Status {
        switch kind {
        case .invalidRequest: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        case .unprocessable: .unprocessableContent
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .unavailable: .serviceUnavailable
        case .internal: .internalServerError
        }
    }

    static func from(_ error: HTTPError) -> TillError {
        switch error.status {
        case .notFound: TillError(.notFound, code: "not_found", "No such resource.")
        case .methodNotAllowed: TillError(.invalidRequest, code: "method_not_allowed", "That method is not allowed here.")
        case .contentTooLarge: TillError(.invalidRequest, code: "payload_too_large", "The request body is too large.")
        case .unauthorized: TillError(.unauthorized, code: "unauthorized", "A bearer token is required.")
        default: TillError(.invalidRequest, code: "bad_request", error.body ?? "The request could not be read.")
        }
    }

    static func response(_ error: TillError) -> Response {
        var status = status(error.kind)
        if error.code == "payload_too_large" { status = .contentTooLarge }
        if error.code == "method_not_allowed" { status = .methodNotAllowed }
        if error.code == "too_many_failed_attempts" { status = .tooManyRequests }
        let body = ErrorBody(error: .init(code: error.code, message: error.message,
                                          details: error.details.isEmpty ? nil : error.details))
        return JSONResponse.make(body, status: status)
    }

    struct ErrorBody: Encodable {
        struct Detail: Encodable {
            var code: String
            var message: String
            var details: [String: String]?
        }
        var error: Detail
    }
}

enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":{"code":"internal_error","message":"encoding failed"}}"#.utf8)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func make(_ sale: SaleView, status: HTTPResponse.Status = .ok) -> Response {
        var json = JSONWriter()
        sale.write(into: &json)
        return make(json, status: status)
    }

    static func make(_ sales: SalesListView) -> Response {
        var json = JSONWriter(capacity: 512 * (sales.sales.count + 1))
        sales.write(into: &json)
        return make(json, status: .ok)
    }

    private static func make(_ json: JSONWriter, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(bytes: json.bytes)))
    }
}
