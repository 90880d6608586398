import CCurl
import Dispatch
import Foundation
import Synchronization

/// One HTTP request, as plain values, so callers never touch libcurl.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: Data?
    /// The whole exchange, connecting included.
    public var timeout: Duration
    /// Sending this request twice does no harm (GET, or a POST the server deduplicates, like a register's
    /// sale with its clientSaleId), so libcurl may silently re-send it when a kept-alive connection turns
    /// out dead. Every other write is sent so that libcurl cannot re-send it (see `EasyHandle.perform`).
    public var idempotent: Bool

    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: Data? = nil,
                timeout: Duration = .seconds(30), idempotent: Bool? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.idempotent = idempotent ?? (method == "GET" || method == "HEAD")
    }
}

/// A complete HTTP answer.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names lower-cased; the last value wins.
    public var headers: [String: String]
    public var body: Data

    public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why no answer came back, split by what matters for exactly-once: whether the server may have seen it.
public enum HTTPTransportError: Error, Sendable, Equatable {
    /// The request never left this machine (no connection, bad URL): safe to send again.
    case notSent(String)
    /// The request was sent, or may have been, and no complete answer came: the server may have acted on it.
    case noAnswer(String)
}

/// Something that sends HTTP requests; the Metrc client and the tests depend on this, not on libcurl.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws(HTTPTransportError) -> HTTPResponse
}

/// An HTTP client over libcurl's easy interface.
///
/// Easy handles are pooled so that kept-alive connections are reused. `curl_easy_perform` blocks, so
/// each transfer runs on a serial queue of its own: serial queues sit on GCD's overcommitting pool,
/// which adds a thread whenever the others are blocked and reuses idle ones (a shared concurrent
/// queue would be capped at the core count, and a few slow Metrc calls would stall every request).
public final class CurlHTTPClient: HTTPTransport {
    private let unixSocketPath: String?
    private let idleHandles = Mutex<[EasyHandle]>([])
    private let maxIdleHandles: Int

    /// - Parameter unixSocketPath: when set, every request goes to this socket; the URL still names host and path.
    public init(unixSocketPath: String? = nil, maxIdleHandles: Int = 16) {
        Self.initializeOnce
        self.unixSocketPath = unixSocketPath
        self.maxIdleHandles = maxIdleHandles
    }

    deinit {
        idleHandles.withLock { handles in handles.removeAll() }
    }

    private static let initializeOnce: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public func send(_ request: HTTPRequest) async throws(HTTPTransportError) -> HTTPResponse {
        let handle = takeHandle()
        let socket = unixSocketPath
        let result: Result<HTTPResponse, HTTPTransportError> = await withCheckedContinuation { continuation in
            DispatchQueue(label: "till.curl.transfer").async {
                continuation.resume(returning: handle.perform(request, unixSocketPath: socket))
            }
        }
        putBack(handle)
        return try result.get()
    }

    /// `send` on the calling thread, which it blocks until the answer: for a caller with a thread of its own
    /// (a load generator's register), which saves the hops to a transfer queue and back.
    public func sendBlocking(_ request: HTTPRequest) throws(HTTPTransportError) -> HTTPResponse {
        let handle = takeHandle()
        defer { putBack(handle) }
        return try handle.perform(request, unixSocketPath: unixSocketPath).get()
    }

    private func takeHandle() -> EasyHandle {
        idleHandles.withLock { $0.popLast() } ?? EasyHandle()
    }

    private func putBack(_ handle: EasyHandle) {
        idleHandles.withLock { handles in
            if handles.count < maxIdleHandles { handles.append(handle) }
        }
    }
}

/// A libcurl easy handle; used by one transfer at a time (the pool hands it out exclusively).
final class EasyHandle: @unchecked Sendable {
    // @unchecked: the handle is only ever touched by the one transfer that took it from the pool.
    private let curl: UnsafeMutableRawPointer

    init() {
        curl = curl_easy_init()
    }

    deinit {
        curl_easy_cleanup(curl)
    }

    func perform(_ request: HTTPRequest, unixSocketPath: String?) -> Result<HTTPResponse, HTTPTransportError> {
        curl_easy_reset(curl)  // keeps the live connection, clears the previous request's options
        let sink = ResponseSink()
        let source = RequestSource()
        let sinkPointer = Unmanaged.passUnretained(sink).toOpaque()
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(headerList) }

        ccurl_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
        ccurl_setopt_string(curl, CURLOPT_URL, request.url)
        if let unixSocketPath { ccurl_setopt_string(curl, CURLOPT_UNIX_SOCKET_PATH, unixSocketPath) }
        let timeoutMs = max(1, Int(request.timeout.components.seconds * 1000
            + request.timeout.components.attoseconds / 1_000_000_000_000_000))
        ccurl_setopt_long(curl, CURLOPT_TIMEOUT_MS, timeoutMs)
        ccurl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, min(timeoutMs, 10_000))
        ccurl_setopt_write_function(curl, { data, size, count, context in
            let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
            sink.body.append(UnsafeRawPointer(data!).assumingMemoryBound(to: UInt8.self), count: size * count)
            return size * count
        })
        ccurl_setopt_pointer(curl, CURLOPT_WRITEDATA, sinkPointer)
        ccurl_setopt_header_function(curl, { data, size, count, context in
            let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
            sink.takeHeaderLine(line)
            return size * count
        })
        ccurl_setopt_pointer(curl, CURLOPT_HEADERDATA, sinkPointer)

        // "Expect: 100-continue" would add a round trip to every write.
        for header in request.headers + [(name: "Expect", value: "")] {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        ccurl_setopt_slist(curl, CURLOPT_HTTPHEADER, headerList)

        let body = request.body ?? Data()
        return body.withUnsafeBytes { bytes -> Result<HTTPResponse, HTTPTransportError> in
            switch request.method {
            case "GET": ccurl_setopt_long(curl, CURLOPT_HTTPGET, 1)
            case "HEAD": ccurl_setopt_long(curl, CURLOPT_NOBODY, 1)
            default:
                ccurl_setopt_string(curl, CURLOPT_CUSTOMREQUEST, request.method)
                guard request.body != nil || request.method == "POST" || request.method == "PUT" else { break }
                if request.idempotent {
                    ccurl_setopt_long(curl, CURLOPT_POSTFIELDSIZE, bytes.count)
                    // A pointer into `body`, valid for the duration of this closure and so of the transfer.
                    ccurl_setopt_pointer(curl, CURLOPT_POSTFIELDS,
                                         UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(("" as StaticString).utf8Start)))
                } else {
                    // libcurl silently re-sends a request whose kept-alive connection dies before any answer
                    // byte (Curl_retry_request), POST included: if the server had committed, that is a
                    // duplicate receipt in Metrc. A body read through a callback with no seek callback cannot
                    // be rewound, so that re-send fails (CURLE_SEND_FAIL_REWIND) and the caller hears "no
                    // answer" instead. Connections stay kept alive: no new connection (a TLS handshake, for
                    // real Metrc) per write.
                    source.bytes = bytes
                    ccurl_setopt_long(curl, CURLOPT_POST, 1)
                    ccurl_setopt_off_t(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count))
                    ccurl_setopt_read_function(curl, { buffer, size, count, context in
                        let source = Unmanaged<RequestSource>.fromOpaque(context!).takeUnretainedValue()
                        return source.read(into: buffer!, capacity: size * count)
                    })
                    ccurl_setopt_pointer(curl, CURLOPT_READDATA, Unmanaged.passUnretained(source).toOpaque())
                }
            }
            // The callbacks hold these two unretained.
            let code = withExtendedLifetime((sink, source)) { curl_easy_perform(curl) }
            guard code == CURLE_OK else { return .failure(classify(code)) }
            var status = 0
            ccurl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
            return .success(HTTPResponse(status: status, headers: sink.headers, body: sink.body))
        }
    }

    private func classify(_ code: CURLcode) -> HTTPTransportError {
        let message = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT, CURLE_COULDNT_RESOLVE_PROXY,
             CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_SSL_CONNECT_ERROR:
            return .notSent(message)
        case CURLE_OPERATION_TIMEDOUT:
            // A time-out while connecting means nothing was sent; afterwards the server may have it.
            var sentBytes = 0
            ccurl_getinfo_long(curl, CURLINFO_REQUEST_SIZE, &sentBytes)
            return sentBytes == 0 ? .notSent(message) : .noAnswer(message)
        default:
            return .noAnswer(message)
        }
    }
}

/// Hands a request body to libcurl's read callback, once: it has no way back to the start.
private final class RequestSource {
    var bytes = UnsafeRawBufferPointer(start: nil, count: 0)
    private var offset = 0

    func read(into buffer: UnsafeMutablePointer<CChar>, capacity: Int) -> Int {
        let count = min(capacity, bytes.count - offset)
        guard count > 0, let base = bytes.baseAddress else { return 0 }
        UnsafeMutableRawPointer(buffer).copyMemory(from: base + offset, byteCount: count)
        offset += count
        return count
    }
}

/// Collects one transfer's headers and body from libcurl's callbacks.
private final class ResponseSink {
    var body = Data()
    var headers: [String: String] = [:]

    func takeHeaderLine(_ line: String) {
        if line.hasPrefix("HTTP/") {
            headers.removeAll()  // a new status line (after 100 Continue or a redirect) starts afresh
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].lowercased()
        // Trimmed by hand: Foundation's trimmingCharacters(in:) goes through NSString, per header line.
        var value = line[line.index(after: colon)...]
        while value.first?.isWhitespace == true { value.removeFirst() }
        while value.last?.isWhitespace == true { value.removeLast() }
        headers[name] = String(value)
    }
}
