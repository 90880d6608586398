import CurlHTTP
import Foundation
import Logging
@testable import MetrcSimulator
import Testing

/// A simulator served on an ephemeral loopback port, and a libcurl client pointed at it.
struct Harness {
    static let license = "LIC-DEMO-0001"
    let running: RunningSimulator
    let client = CurlHTTPClient()
    var simulation: MetrcSimulation { running.simulation }
    var configuration: SimulatorConfiguration { running.simulation.configuration }

    /// Runs `body` against a fresh simulator (the demo facility unless `configure` changes it), then stops it.
    ///
    /// Spell the closure `{ sim async throws in`: Swift 6.3 infers a closure whose only `try`s sit inside
    /// `#expect(...)` as non-throwing and then refuses those `try`s.
    static func run(_ configure: (inout SimulatorConfiguration) -> Void = { _ in },
                    now: @escaping @Sendable () -> Date = Date.init,
                    _ body: (Harness) async throws -> Void) async throws {
        var configuration = SimulatorConfiguration()
        configure(&configuration)
        var logger = Logger(label: "metrc-sim-test")
        logger.logLevel = .critical  // stopping a server by cancellation makes Hummingbird log an error
        let running = try await MetrcSimulatorServer.start(
            simulation: MetrcSimulation(configuration: configuration, now: now), logger: logger)
        let harness = Harness(running: running)
        do {
            try await body(harness)
        } catch {
            await running.stop()
            throw error
        }
        await running.stop()
    }

    /// Sends a request with the configured keys (or `authorization` when given) and a JSON body.
    func send(_ method: String, _ pathAndQuery: String, json: String? = nil, authorization: String? = nil,
              timeout: Duration = .seconds(10)) async throws -> HTTPResponse {
        try await client.send(request(method, pathAndQuery, json: json, authorization: authorization, timeout: timeout))
    }

    func request(_ method: String, _ pathAndQuery: String, json: String? = nil, authorization: String? = nil,
                 timeout: Duration = .seconds(10)) -> HTTPRequest {
        var headers: [(name: String, value: String)] = []
        let credentials = Data("\(configuration.vendorKey):\(configuration.userKey)".utf8).base64EncodedString()
        headers.append(("Authorization", authorization ?? "Basic \(credentials)"))
        if json != nil { headers.append(("Content-Type", "application/json")) }
        return HTTPRequest(method: method, url: running.baseURL + pathAndQuery, headers: headers,
                           body: json.map { Data($0.utf8) }, timeout: timeout)
    }

    func get(_ pathAndQuery: String) async throws -> HTTPResponse {
        try await send("GET", pathAndQuery)
    }

    /// `?licenseNumber=` for the demo facility, to append to a path.
    static let lic = "licenseNumber=\(license)"

    func quantity(_ suffix: Int) async -> Decimal? {
        await simulation.packageQuantity(license: Self.license, label: SimFacility.demoLabel(suffix))
    }
}

/// A receipt body line for tests, in Metrc's spelling.
func receipt(_ lines: [(suffix: Int, quantity: String, unit: String)], external: String? = nil,
             salesDateTime: String = "2026-11-22T14:05:00.000", customerType: String = "Consumer",
             extra: String = "") -> String {
    let transactions = lines.map { line in
        #"{"PackageLabel":"\#(SimFacility.demoLabel(line.suffix))","Quantity":\#(line.quantity),"UnitOfMeasure":"\#(line.unit)","TotalAmount":12.50}"#
    }
    let externalField = external.map { #","ExternalReceiptNumber":"\#($0)""# } ?? ""
    return #"{"SalesDateTime":"\#(salesDateTime)","SalesCustomerType":"\#(customerType)"\#(externalField)\#(extra),"Transactions":[\#(transactions.joined(separator: ","))]}"#
}

func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }

extension HTTPResponse {
    /// The body parsed exactly (numbers as Decimal); fails the test when it is not JSON.
    var json: JSON {
        get throws { try #require(JSON.parse(body), "not JSON: \(String(decoding: body, as: UTF8.self))") }
    }
    var text: String { String(decoding: body, as: UTF8.self) }
}

extension JSON {
    var array: [JSON]? { if case .array(let items) = self { items } else { nil } }
    var string: String? { if case .string(let s) = self { s } else { nil } }
    var number: Decimal? { if case .number(let n) = self { n } else { nil } }
    var int: Int? { number.flatMap { Int64(exactly: $0) }.map { Int($0) } }
    var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    /// Member names exactly as sent, to check PascalCase.
    var keys: [String] { if case .object(let members) = self { members.map(\.0) } else { [] } }
}

/// Every HTTP test, one at a time. CurlHTTPClient blocks a thread of a concurrent DispatchQueue per transfer,
/// and on Linux those threads come from the same ncpu-wide pool as Swift's cooperative executor: with as many
/// transfers in flight as cores, the in-process server cannot run until curl times out. One at a time, it can.
@Suite(.serialized) struct SimulatorOverHTTP {}
