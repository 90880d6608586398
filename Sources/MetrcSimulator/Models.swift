import Foundation

/// A sales receipt as the simulated Metrc holds it.
public struct SimReceipt: Sendable, Equatable {
    public var id: Int64
    /// The facility that recorded it.
    public var license: String
    /// Metrc's own receipt number; the simulator, like most states, leaves it null.
    public var receiptNumber: String?
    public var externalReceiptNumber: String?
    /// Local wall-clock time in the facility's zone, normalised to `yyyy-MM-ddTHH:mm:ss.SSS`.
    public var salesDateTime: String
    public var salesCustomerType: String
    public var patientLicenseNumber: String?
    public var caregiverLicenseNumber: String?
    public var identificationMethod: String?
    public var transactions: [SimTransaction]
    public var isFinal: Bool
    /// Archived by `DELETE /sales/v2/receipts/{id}` (a full return or a void): listed by `/inactive`.
    public var archived: Bool
    public var archivedDate: Date?
    public var recordedAt: Date
    public var lastModified: Date

    /// The sum of the lines' `TotalAmount`, as Metrc's `TotalPrice`.
    public var totalPrice: Decimal { transactions.reduce(0) { $0 + $1.totalAmount } }
}

/// One line of a receipt, as posted: quantity in the unit the client chose.
public struct SimTransaction: Sendable, Equatable {
    public var packageLabel: String
    public var quantity: Decimal
    /// The unit name as Metrc spells it (the posted name is normalised to Metrc's casing).
    public var unitOfMeasure: String
    public var totalAmount: Decimal
    /// As posted; Metrc keeps them although its receipt listings do not show them.
    public var discountAmount: Decimal?
    public var salesTax: Decimal?
    public var exciseTax: Decimal?

    public init(packageLabel: String, quantity: Decimal, unitOfMeasure: String, totalAmount: Decimal,
                discountAmount: Decimal? = nil, salesTax: Decimal? = nil, exciseTax: Decimal? = nil) {
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unitOfMeasure = unitOfMeasure
        self.totalAmount = totalAmount
        self.discountAmount = discountAmount
        self.salesTax = salesTax
        self.exciseTax = exciseTax
    }
}

/// A fault to inject: what to do to matching requests, how many times (nil = until cleared) and until when.
public struct SimFault: Sendable {
    public enum Effect: Sendable {
        /// Answer this instead of acting (e.g. 503 with an HTML body; 400 {"Message":"Could not load file or assembly..."}; 429).
        case status(Int, body: String?, retryAfterSeconds: Int?)
        /// Wait, then act normally.
        case latency(Duration)
        /// Hold the request, then apply it whatever became of the client (gone, timed out, killed), as a busy
        /// Metrc server does; the answer goes to whoever is still listening.
        case holdThenApply(Duration)
        /// Act (commit the write) and then close the connection without a complete response.
        case commitThenDrop
        /// Close the connection without acting.
        case dropBeforeCommit
    }

    /// How a dropped connection looks on the wire.
    public enum DropStyle: Sendable {
        /// A response head (with the status that would have been sent) promising a body longer than what
        /// follows, then the connection closes. Every HTTP client sees an incomplete response, on a fresh or a
        /// reused connection alike: CurlHTTPClient answers `.noAnswer`.
        case truncatedResponse
        /// The connection closes before a single byte of response. Beware: libcurl silently re-sends any
        /// request (POST included) whose *reused* keep-alive connection dies before a byte comes back, so with
        /// CurlHTTPClient a `commitThenDrop` in this style can commit twice while the caller sees one answer.
        case silentClose
    }

    public var effect: Effect
    /// nil = any.
    public var method: String?
    /// nil = any, e.g. "/sales/v2/receipts".
    public var pathPrefix: String?
    /// nil = unlimited.
    public var remaining: Int?
    /// Outage windows: the fault stops matching at this instant of the simulation's clock.
    public var until: Date?
    public var dropStyle: DropStyle

    public init(_ effect: Effect, method: String? = nil, pathPrefix: String? = nil, times: Int? = nil, until: Date? = nil,
                dropStyle: DropStyle = .truncatedResponse) {
        self.effect = effect
        self.method = method
        self.pathPrefix = pathPrefix
        self.remaining = times
        self.until = until
        self.dropStyle = dropStyle
    }

    func matches(method: String, path: String, now: Date) -> Bool {
        if let until, now >= until { return false }
        if let remaining, remaining <= 0 { return false }
        if let wanted = self.method, wanted.uppercased() != method.uppercased() { return false }
        if let pathPrefix, !SimFault.path(path, hasPrefix: pathPrefix) { return false }
        return true
    }

    /// Case-insensitive; "/sales/v2/receipts/" also matches "/sales/v2/receipts" itself.
    static func path(_ path: String, hasPrefix prefix: String) -> Bool {
        let path = path.lowercased(), prefix = prefix.lowercased()
        return path.hasPrefix(prefix) || (path + "/").hasPrefix(prefix)
    }
}

/// One HTTP request as the simulation sees it, independent of the server that carried it.
public struct SimHTTPRequest: Sendable {
    public var method: String
    /// The path as sent, still percent-encoded, without the query.
    public var path: String
    /// The query as sent, still encoded, without the "?".
    public var query: String?
    /// Header names lower-cased.
    public var headers: [String: String]
    public var body: Data
    /// The client's end of the connection it came on ("address:port"); nil when not over a socket.
    public var connection: String?

    public init(method: String, path: String, query: String? = nil, headers: [String: String] = [:], body: Data = Data(),
                connection: String? = nil) {
        self.connection = connection
        self.method = method.uppercased()
        self.path = path
        self.query = query
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { _, last in last })
        self.body = body
    }
}

/// The simulation's answer to one request.
public struct SimHTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Data
    /// When set, the server must not deliver this answer whole but drop the connection in this style.
    public var drop: SimFault.DropStyle?

    public init(status: Int, headers: [(name: String, value: String)] = [], body: Data = Data(),
                drop: SimFault.DropStyle? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.drop = drop
    }

    static func json(_ status: Int, _ value: JSON, headers: [(name: String, value: String)] = []) -> SimHTTPResponse {
        SimHTTPResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")] + headers,
                        body: value.serialized())
    }

    static func message(_ status: Int, _ text: String) -> SimHTTPResponse {
        .json(status, .message(text))
    }

    /// 400 with Metrc's per-row validation errors: `[{"row":0,"message":"..."}]`.
    static func rowErrors(_ errors: [RowError]) -> SimHTTPResponse {
        .json(400, .array(errors.map { .object([("row", .number(Decimal($0.row))), ("message", .string($0.message))]) }))
    }

    /// Metrc answers a bad key, or a licence the user cannot reach, with an empty 401.
    static let unauthorized = SimHTTPResponse(status: 401)
}

struct RowError: Sendable, Equatable {
    var row: Int
    var message: String
}

/// An answer decided before the work is done (a bad parameter, a body too large), thrown to leave early.
struct EarlyAnswer: Error {
    var response: SimHTTPResponse
    init(_ response: SimHTTPResponse) { self.response = response }
}
