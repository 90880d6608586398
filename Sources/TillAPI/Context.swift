import Hummingbird
import NIOCore
import TillDomain

/// Per-request context: who is calling, once the bearer token has been checked.
public struct TillRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var terminal: Terminal?
    /// The register's connection, for what is counted per connection (failed bearer tokens).
    let connection: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        terminal = nil
        connection = source.channel
    }

    /// Sale requests are small; anything larger is refused before it is read.
    public var maxUploadSize: Int { 256 * 1024 }

    /// The caller, or 401 when the auth middleware did not run.
    func requireTerminal(_ roles: Set<TerminalRole>) throws -> Terminal {
        guard let terminal else {
            throw TillError(.unauthorized, code: "unauthorized", "A bearer token is required.")
        }
        guard roles.contains(terminal.role) else {
            throw TillError(.forbidden, code: "forbidden",
                            "A \(terminal.role.rawValue) terminal cannot do this; it needs one of: \(roles.map(\.rawValue).sorted().joined(separator: ", ")).")
        }
        return terminal
    }
}
