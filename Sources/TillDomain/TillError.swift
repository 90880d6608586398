/// A refusal the user can act on: a stable machine-readable code, a sentence for a person, and details.
///
/// The domain says what kind of refusal it is; the API maps the kind to an HTTP status.
public struct TillError: Error, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case invalidRequest   // the request itself is malformed or out of range
        case notFound
        case conflict         // clashes with something already recorded
        case unprocessable    // well-formed, but the rules (stock, lab tests, Metrc) refuse it
        case unauthorized
        case forbidden
        case unavailable      // a dependency (Metrc, the database) cannot answer now
        case `internal`       // a bug: nothing the caller did
    }

    public var kind: Kind
    public var code: String
    public var message: String
    public var details: [String: String]

    public init(_ kind: Kind, code: String, _ message: String, details: [String: String] = [:]) {
        self.kind = kind
        self.code = code
        self.message = message
        self.details = details
    }

    public static func invalid(_ code: String, _ message: String, details: [String: String] = [:]) -> TillError {
        TillError(.invalidRequest, code: code, message, details: details)
    }

    /// What a failed database read or write tells the caller: a refusal raised inside it (a sold-out
    /// package, a revoked terminal) stays itself; anything else is the database being unavailable.
    public static func fromStore(_ error: any Error) -> TillError {
        if let error = error as? TillError { return error }
        if let explained = (error as? any ExplainedStoreFailure)?.refusal { return explained }
        return TillError(.unavailable, code: "store_unavailable", "The database could not be read or written.")
    }

    /// The bearer token names no live terminal (unknown, or revoked).
    public static let invalidToken = TillError(.unauthorized, code: "invalid_token", "The bearer token is unknown or revoked.")

    public static func unprocessable(_ code: String, _ message: String, details: [String: String] = [:]) -> TillError {
        TillError(.unprocessable, code: code, message, details: details)
    }
}

/// A store failure that knows what a caller should hear (a full disk, a read-only database), so that the
/// domain can tell it without knowing the database; nil for a failure it cannot explain.
public protocol ExplainedStoreFailure: Error {
    var refusal: TillError? { get }
}
