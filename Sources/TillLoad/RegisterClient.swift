import CurlHTTP
import Foundation

/// One register: its own libcurl client (so its own kept-alive connection) on Till's Unix socket.
public struct RegisterClient: Sendable {
    public let http: CurlHTTPClient
    public let token: String

    public init(socketPath: String, token: String) {
        http = CurlHTTPClient(unixSocketPath: socketPath)
        self.token = token
    }

    /// Sells one unit of `label` and times the answer as the register sees it.
    public func sell(clientSaleId: String, label: String) async -> SaleSample {
        let request = saleRequest(clientSaleId: clientSaleId, label: label)
        let started = ContinuousClock.now
        do {
            let response = try await http.send(request)
            return SaleSample(latency: .now - started, status: response.status, body: response.body)
        } catch {
            return SaleSample(latency: .now - started, status: 0, body: Data("\(error)".utf8))
        }
    }

    /// `sell` for a register with a thread of its own: blocks it, and costs this process fewer thread
    /// wake-ups (which the measured runs would otherwise take from Till on the same cores).
    public func sellBlocking(clientSaleId: String, label: String) -> SaleSample {
        let request = saleRequest(clientSaleId: clientSaleId, label: label)
        let started = ContinuousClock.now
        do {
            let response = try http.sendBlocking(request)
            return SaleSample(latency: .now - started, status: response.status, body: response.body)
        } catch {
            return SaleSample(latency: .now - started, status: 0, body: Data("\(error)".utf8))
        }
    }

    private func saleRequest(clientSaleId: String, label: String) -> HTTPRequest {
        let body = Data("""
            {"clientSaleId":"\(clientSaleId)","customerType":"Consumer",\
            "lines":[{"packageLabel":"\(label)","quantity":1,"unit":"Each","totalAmount":1.00}]}
            """.utf8)
        return HTTPRequest(
            method: "POST", url: "http://till/v1/sales",
            headers: [(name: "Authorization", value: "Bearer \(token)"), (name: "Content-Type", value: "application/json")],
            body: body, timeout: .seconds(15), idempotent: true)  // Till deduplicates by clientSaleId
    }

    /// Sales Till has not yet had confirmed by Metrc (GET /v1/reporting).
    public func pendingReports() async throws -> Int {
        let response = try await http.send(HTTPRequest(
            method: "GET", url: "http://till/v1/reporting",
            headers: [(name: "Authorization", value: "Bearer \(token)")], timeout: .seconds(10)))
        guard response.status == 200,
              let json = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
              let pending = json["pending"] as? Int
        else {
            throw LoadFailure("GET /v1/reporting answered \(response.status): \(String(decoding: response.body.prefix(300), as: UTF8.self))")
        }
        return pending
    }

    public func isHealthy() async -> Bool {
        let response = try? await http.send(HTTPRequest(method: "GET", url: "http://till/v1/health", timeout: .seconds(2)))
        return response?.status == 200
    }
}

/// One register request: how long it took and what came back (status 0: no answer; the body says why).
public struct SaleSample: Sendable {
    public var latency: Duration
    public var status: Int
    public var body: Data

    /// The receipt number Till gave the sale, read from its answer.
    public var receiptNumber: String? {
        guard (200..<300).contains(status),
              let json = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return nil }
        return json["receiptNumber"] as? String
    }

    /// Status and the start of the body, for a report of what went wrong.
    public var summary: String {
        "\(status == 0 ? "no answer" : "HTTP \(status)"): \(String(decoding: body.prefix(300), as: UTF8.self))"
    }
}
