import CurlHTTP
import Foundation

/// One reason Metrc gave for refusing a write; `row` indexes the array the caller passed in.
public struct MetrcRowError: Sendable, Equatable, Codable {
    public var row: Int?
    public var message: String

    public init(row: Int?, message: String) {
        self.row = row
        self.message = message
    }
}

/// Every outcome of a Metrc call that is not success. Classified by shape, never by matching strings.
public enum MetrcError: Error, Sendable, Equatable {
    /// 400 with `[{"row":n,"message":"..."}]` or a JSON array of messages: the whole request was refused and
    /// nothing applied. Also 413 (too many objects) as a single row-less error, and other 4xx that say the
    /// request itself was wrong. Rows index the array passed to the call, even when it was sent in chunks.
    case rejected([MetrcRowError])
    /// 401/403: bad keys or no permission for the license; never retried.
    case unauthorized(status: Int, message: String?)
    /// 429 still after `maxRateLimitRetries`, or with a Retry-After too long to wait out inside the call.
    case rateLimited(retryAfter: Duration?)
    /// 5xx, 400 fault bodies (`{"Message":"Could not load file or assembly ..."}`, HTML), connection refused.
    /// `mayHaveBeenApplied` is true for a write that reached Metrc, since Metrc might have committed it.
    case transient(String, mayHaveBeenApplied: Bool)
    /// The request was sent and no complete answer came (timeout after sending, dropped connection).
    case ambiguous(String)
    /// 404.
    case notFound
    /// A 2xx we cannot decode.
    case invalidResponse(String)

    /// True when Metrc may have acted on a write: the caller must look it up before sending again.
    public var mayHaveBeenApplied: Bool {
        switch self {
        case .rejected, .unauthorized, .rateLimited, .notFound: false
        case .ambiguous, .invalidResponse: true
        case .transient(_, let mayHaveBeenApplied): mayHaveBeenApplied
        }
    }

    /// True for outcomes worth retrying later (transient, ambiguous, rateLimited, invalidResponse).
    public var isRetryable: Bool {
        switch self {
        case .transient, .ambiguous, .rateLimited, .invalidResponse: true
        case .rejected, .unauthorized, .notFound: false
        }
    }
}

extension MetrcError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .rejected(let rows):
            let text = rows.map { row in row.row.map { "row \($0): \(row.message)" } ?? row.message }
            return "Metrc rejected the request: " + text.joined(separator: "; ")
        case .unauthorized(let status, let message):
            return "Metrc refused the keys or the license (\(status))" + (message.map { ": \($0)" } ?? "")
        case .rateLimited(let retryAfter):
            return "Metrc rate limit (429)" + (retryAfter.map { ", retry after \($0)" } ?? "")
        case .transient(let message, let applied):
            return "Metrc transient failure: \(message)" + (applied ? " (may have been applied)" : "")
        case .ambiguous(let message):
            return "No complete answer from Metrc, may have been applied: \(message)"
        case .notFound:
            return "Not found in Metrc (404)"
        case .invalidResponse(let message):
            return "Unreadable answer from Metrc: \(message)"
        }
    }
}

/// Turns HTTP outcomes into `MetrcError` by their shape: status, JSON structure, body type.
enum MetrcClassifier {
    static func classify(_ error: HTTPTransportError, isWrite: Bool) -> MetrcError {
        switch error {
        case .notSent(let message):
            return .transient("not sent: \(message)", mayHaveBeenApplied: false)
        case .noAnswer(let message):
            // A GET changes nothing, so for it a lost answer is simply a failure to retry.
            return isWrite ? .ambiguous(message) : .transient("no answer: \(message)", mayHaveBeenApplied: false)
        }
    }

    /// For a status outside 2xx, other than 429 (which the client retries itself).
    static func classify(status: Int, body: Data, isWrite: Bool) -> MetrcError {
        switch status {
        case 400:
            return classifyBadRequest(body: body, isWrite: isWrite)
        case 401, 403:
            return .unauthorized(status: status, message: message(in: body))
        case 404:
            return .notFound
        case 408:
            // The server gave up waiting for our request: it never had the whole of it.
            return .transient("request timeout (408)", mayHaveBeenApplied: false)
        case 413:
            return .rejected([MetrcRowError(row: nil, message: "too many objects in one request (413)"
                + (message(in: body).map { ": \($0)" } ?? ""))])
        case 429:
            return .rateLimited(retryAfter: nil)
        case 402...499:
            // Metrc refused the request as such (wrong method, media type, conflict): nothing applied.
            return .rejected([MetrcRowError(row: nil, message: "HTTP \(status)" + (message(in: body).map { ": \($0)" } ?? ""))])
        case 500...599:
            return .transient("HTTP \(status)" + (snippet(body).map { ": \($0)" } ?? ""), mayHaveBeenApplied: isWrite)
        default:
            // 1xx/3xx: not something Metrc answers; the write may have gone through behind a redirect.
            return .invalidResponse("unexpected HTTP status \(status)")
        }
    }

    /// Metrc answers validation failures as a JSON array, and server faults as an object or HTML.
    private static func classifyBadRequest(body: Data, isWrite: Bool) -> MetrcError {
        guard let json = parseJSON(body) else {
            return .transient("HTTP 400 without JSON" + (snippet(body).map { ": \($0)" } ?? ""), mayHaveBeenApplied: isWrite)
        }
        if let array = json as? [Any] {
            let rows = array.map(rowError)
            return .rejected(rows.isEmpty ? [MetrcRowError(row: nil, message: "HTTP 400 without a reason")] : rows)
        }
        if let text = json as? String {
            return .rejected([MetrcRowError(row: nil, message: text)])
        }
        let message = (json as? [String: Any]).flatMap { value(forKey: "message", in: $0) as? String }
        return .transient("HTTP 400 fault" + (message.map { ": \($0)" } ?? (snippet(body).map { ": \($0)" } ?? "")),
                          mayHaveBeenApplied: isWrite)
    }

    private static func rowError(_ element: Any) -> MetrcRowError {
        if let text = element as? String { return MetrcRowError(row: nil, message: text) }
        if let object = element as? [String: Any] {
            let row: Int? = switch value(forKey: "row", in: object) {
            case let number as NSNumber: number.intValue
            case let text as String: Int(text)
            default: nil
            }
            let message = value(forKey: "message", in: object) as? String
            return MetrcRowError(row: row, message: message ?? describe(object))
        }
        return MetrcRowError(row: nil, message: describe(element))
    }

    /// The human part of an error body: `Message` of an object, a JSON string, or readable text.
    static func message(in body: Data) -> String? {
        if let json = parseJSON(body) {
            if let text = json as? String { return text }
            if let object = json as? [String: Any], let text = value(forKey: "message", in: object) as? String { return text }
            if let array = json as? [Any] { return array.map { rowError($0).message }.joined(separator: "; ") }
        }
        return snippet(body)
    }

    static func parseJSON(_ body: Data) -> Any? {
        guard !body.isEmpty else { return nil }
        return try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])
    }

    private static func value(forKey key: String, in object: [String: Any]) -> Any? {
        object.first { $0.key.lowercased() == key }?.value
    }

    private static func describe(_ value: Any) -> String {
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]) {
            return String(decoding: data, as: UTF8.self)
        }
        return String(describing: value)
    }

    /// The start of a body as one line of text, tags dropped, so that an HTML error page stays readable.
    static func snippet(_ body: Data, limit: Int = 200) -> String? {
        var text = ""
        var inTag = false
        for character in String(decoding: body.prefix(8_192), as: UTF8.self) {
            switch character {
            case "<": inTag = true
            case ">" where inTag: inTag = false; text.append(" ")
            default: if !inTag { text.append(character) }
            }
        }
        let words = text.split(whereSeparator: \.isWhitespace)
        guard !words.isEmpty else { return nil }
        let line = words.joined(separator: " ")
        return line.count > limit ? String(line.prefix(limit)) + "…" : line
    }
}
