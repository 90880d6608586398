import Synchronization
import CurlHTTP
import Foundation
@testable import MetrcSimulator
import Testing

extension SimulatorOverHTTP {
    @Suite struct RateLimits {
        @Test func getsOverTheLimitAreAnswered429WithRetryAfter() async throws {
            // The window is a real second: on a machine too loaded to send four GETs within one, try afresh.
            for attempt in 1...5 {
                var fitInASecond = false
                try await Harness.run({ $0.getRequestsPerSecond = 3 }) { sim async throws in
                    let started = ContinuousClock.now
                    var statuses: [Int] = []
                    var limited: HTTPResponse?
                    for _ in 0..<4 {
                        let response = try await sim.get("/packages/v2/active?\(Harness.lic)&pageNumber=1&pageSize=1")
                        statuses.append(response.status)
                        if response.status == 429 { limited = response }
                    }
                    fitInASecond = ContinuousClock.now - started < .seconds(1)
                    guard fitInASecond || attempt == 5 else { return }
                    #expect(statuses == [200, 200, 200, 429])
                    let answer = try #require(limited)
                    #expect(answer.headers["retry-after"] == "1")
                    #expect(try answer.json["Message"]?.string == "Too Many Requests")
                    // Another facility (or the key, for calls without a licence) has its own budget.
                    #expect(try await sim.get("/facilities/v2").status == 200)
                    #expect(await sim.simulation.requestCount(method: "GET", pathPrefix: "/packages") == 4)
                }
                if fitInASecond { return }
            }
        }

        @Test func writesAreUnlimitedUnlessConfigured() async throws {
            try await Harness.run({ $0.writeRequestsPerSecond = 1 }) { sim async throws in
                let body = array([receipt([(101, "1", "Grams")])])
                #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body).status == 200)
                #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body).status == 429)
                #expect(await sim.simulation.receipts(license: Harness.license).count == 1)
            }
        }
    }
}

extension SimulatorOverHTTP {
    @Suite struct Faults {
        @Test func aStatusFaultAnswersItsTimesThenMetrcRecovers() async throws {
            try await Harness.run { sim async throws in
                let html = "<html><body><h1>503 Service Unavailable</h1></body></html>"
                await sim.simulation.addFault(SimFault(.status(503, body: html, retryAfterSeconds: nil),
                                                       method: "GET", pathPrefix: "/packages", times: 2))
                let path = "/packages/v2/active?\(Harness.lic)&pageNumber=1&pageSize=5"
                let first = try await sim.get(path)
                #expect(first.status == 503)
                #expect(first.text == html)
                #expect(first.headers["content-type"]?.hasPrefix("text/html") == true)
                #expect(try await sim.get("/facilities/v2").status == 200)  // not matched: other path
                #expect(try await sim.get(path).status == 503)
                #expect(try await sim.get(path).status == 200)
                #expect(await sim.simulation.requestCount(pathPrefix: "/packages") == 3)
                #expect(await sim.simulation.activeFaults().isEmpty)
            }
        }

        @Test func aSandboxStyleFaultIsA400WithAMessage() async throws {
            try await Harness.run { sim async throws in
                let body = #"{"Message":"Could not load file or assembly 'Metrc.Data, Version=1.0.0.0'"}"#
                await sim.simulation.setFaults([SimFault(.status(400, body: body, retryAfterSeconds: nil), method: "POST")])
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: array([receipt([(101, "1", "Grams")])]))
                #expect(response.status == 400)
                #expect(try response.json["Message"]?.string?.hasPrefix("Could not load file or assembly") == true)
                #expect(await sim.simulation.receipts(license: Harness.license).isEmpty)
                await sim.simulation.clearFaults()
                #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: array([receipt([(101, "1", "Grams")])])).status == 200)
            }
        }

        @Test func anOutageWindowEndsOnTheSimulationsClock() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                await sim.simulation.addFault(SimFault(.status(503, body: nil, retryAfterSeconds: 30),
                                                       until: clock.now.addingTimeInterval(60)))
                let during = try await sim.get("/facilities/v2")
                #expect(during.status == 503)
                #expect(during.headers["retry-after"] == "30")
                clock.advance(by: 61)
                #expect(try await sim.get("/facilities/v2").status == 200)
            }
        }

        @Test func aLatencyFaultDelaysTheAnswerThenActs() async throws {
            try await Harness.run { sim async throws in
                await sim.simulation.addFault(SimFault(.latency(.milliseconds(300)), method: "POST", times: 1))
                let started = ContinuousClock.now
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: array([receipt([(101, "1", "Grams")])]))
                #expect(response.status == 200)
                #expect(ContinuousClock.now - started >= .milliseconds(300))
                #expect(await sim.quantity(101) == 447)
                // A client that gives up first has an ambiguous outcome: the sale still lands.
                await sim.simulation.addFault(SimFault(.latency(.milliseconds(400)), method: "POST", times: 1))
                await #expect(throws: HTTPTransportError.self) {
                    _ = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)",
                                           json: array([receipt([(101, "1", "Grams")])]), timeout: .milliseconds(100))
                }
                try await eventually { await sim.quantity(101) == 446 }
            }
        }

        @Test func aHeldRequestLandsAfterItsClientHasGoneNotBefore() async throws {
            try await Harness.run { sim async throws in
                await sim.simulation.addFault(SimFault(.holdThenApply(.milliseconds(800)), method: "POST", times: 1))
                let sent = ContinuousClock.now
                await #expect(throws: HTTPTransportError.self) {
                    _ = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)",
                                           json: array([receipt([(101, "1", "Grams")], external: "HELD-1")]),
                                           timeout: .milliseconds(100))
                }
                // The client is gone and Metrc still holds the request: a lookup now finds nothing.
                #expect(await sim.simulation.receipts(license: Harness.license, externalNumber: "HELD-1").isEmpty)
                #expect(try await sim.get("/sales/v2/receipts/external/HELD-1?\(Harness.lic)").status == 404)
                try await eventually { await sim.quantity(101) == 447 }
                #expect(ContinuousClock.now - sent >= .milliseconds(800))
                #expect(await sim.simulation.receipts(license: Harness.license, externalNumber: "HELD-1").count == 1)
                #expect(await sim.simulation.activeFaults().isEmpty)  // once
            }
        }

        @Test func commitThenDropLeavesTheClientWithoutAnAnswerButTheSaleRecorded() async throws {
            try await Harness.run { sim async throws in
                // Warm the connection so the dropped request travels on a reused one, the dangerous case.
                #expect(try await sim.get("/facilities/v2").status == 200)
                await sim.simulation.addFault(SimFault(.commitThenDrop, method: "POST", pathPrefix: "/sales/v2/receipts", times: 1))
                let body = array([receipt([(101, "3.5", "Grams")], external: "DROP-1")])
                await #expect {
                    _ = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                } throws: { error in
                    guard case .noAnswer = error as? HTTPTransportError else { return false }
                    return true
                }
                #expect(await sim.simulation.receipts(license: Harness.license, externalNumber: "DROP-1").count == 1)
                #expect(await sim.quantity(101) == Decimal(string: "444.5"))
                #expect(await sim.simulation.requestCount(method: "POST") == 1)

                // What a client must do next: look it up before posting again.
                let lookup = try await sim.get("/sales/v2/receipts/external/DROP-1?\(Harness.lic)")
                #expect(try lookup.json["Data"]?.array?.count == 1)
            }
        }

        @Test func dropBeforeCommitLeavesTheClientWithoutAnAnswerAndNothingRecorded() async throws {
            try await Harness.run { sim async throws in
                #expect(try await sim.get("/facilities/v2").status == 200)
                await sim.simulation.addFault(SimFault(.dropBeforeCommit, method: "POST", times: 1))
                let body = array([receipt([(101, "3.5", "Grams")], external: "DROP-2")])
                await #expect {
                    _ = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                } throws: { error in
                    guard case .noAnswer = error as? HTTPTransportError else { return false }
                    return true
                }
                #expect(await sim.simulation.receipts(license: Harness.license).isEmpty)
                #expect(await sim.quantity(101) == 448)
                #expect(try await sim.get("/sales/v2/receipts/external/DROP-2?\(Harness.lic)").status == 404)
                // The fault was used up: the retry goes through.
                #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body).status == 200)
            }
        }

        @Test func aSilentDropAfterCommitOnAKeptAliveConnectionIsNeverResent() async throws {
            try await Harness.run { sim async throws in
                #expect(try await sim.get("/facilities/v2").status == 200)  // leaves a kept-alive connection
                await sim.simulation.addFault(SimFault(.commitThenDrop, method: "POST", times: 1, dropStyle: .silentClose))
                let outcome: Result<HTTPResponse, any Error>
                do {
                    outcome = .success(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)",
                                                          json: array([receipt([(101, "1", "Grams")], external: "SILENT-1")])))
                } catch {
                    outcome = .failure(error)
                }
                // libcurl re-sends a request whose reused connection died before any answer (Curl_retry_request),
                // POST included. CurlHTTPClient gives writes a body libcurl cannot rewind, so the re-send fails,
                // the caller hears "no answer" and Metrc holds the sale once.
                #expect(throws: HTTPTransportError.self) { try outcome.get() }
                #expect(await sim.simulation.receipts(license: Harness.license, externalNumber: "SILENT-1").count == 1)
                #expect(await sim.simulation.requestCount(method: "POST") == 1)
            }
        }

        @Test func writesGoOnTheConnectionAReadOpened() async throws {
            try await Harness.run { sim async throws in
                #expect(try await sim.get("/facilities/v2").status == 200)
                for number in 1...3 {
                    let body = array([receipt([(101, "1", "Grams")], external: "KEPT-\(number)")])
                    #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body).status == 200)
                }
                // No new connection (against real Metrc, no TLS handshake) per receipt.
                #expect(await sim.simulation.connectionCount() == 1)
            }
        }

        @Test func aBlockingSendTakesTheConnectionFromTheSamePool() async throws {
            try await Harness.run { sim async throws in
                #expect(try await sim.get("/facilities/v2").status == 200)
                let request = sim.request("GET", "/facilities/v2")
                let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int, Never>) in
                    Thread.detachNewThread {  // a thread of its own, as a load generator's register has
                        continuation.resume(returning: (try? sim.client.sendBlocking(request))?.status ?? 0)
                    }
                }
                #expect(status == 200)
                #expect(await sim.simulation.connectionCount() == 1)
            }
        }

        @Test func aSilentCloseOnAFreshConnectionIsNoAnswer() async throws {
            try await Harness.run { sim async throws in
                await sim.simulation.addFault(SimFault(.commitThenDrop, method: "POST", times: 1, dropStyle: .silentClose))
                let body = array([receipt([(101, "1", "Grams")])])
                await #expect(throws: HTTPTransportError.self) {
                    _ = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                }
                #expect(await sim.simulation.receipts(license: Harness.license).count == 1)
            }
        }

        @Test func theAdminEndpointsSteerFaultsAndReport() async throws {
            try await Harness.run { sim async throws in
                let faults = #"[{"status":503,"body":"<html>down</html>","method":"GET","pathPrefix":"/facilities","times":1},{"latencyMs":5,"method":"POST"},{"holdThenApplyMs":5,"method":"PUT"}]"#
                let set = try await sim.client.send(HTTPRequest(method: "POST", url: sim.running.baseURL + "/_sim/faults",
                                                                body: Data(faults.utf8)))
                #expect(set.status == 200)
                #expect(await sim.simulation.activeFaults().count == 3)
                guard case .holdThenApply(let hold) = await sim.simulation.activeFaults()[2].effect else {
                    Issue.record("holdThenApplyMs is a hold-then-apply fault")
                    return
                }
                #expect(hold == .milliseconds(5))
                #expect(try await sim.get("/facilities/v2").status == 503)
                #expect(try await sim.get("/facilities/v2").status == 200)

                let bad = try await sim.client.send(HTTPRequest(method: "POST", url: sim.running.baseURL + "/_sim/faults",
                                                                body: Data(#"[{"status":503,"latencyMs":5}]"#.utf8)))
                #expect(bad.status == 400)

                #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: array([receipt([(101, "1", "Grams")])])).status == 200)
                let cleared = try await sim.client.send(HTTPRequest(method: "DELETE", url: sim.running.baseURL + "/_sim/faults"))
                #expect(cleared.status == 200)
                #expect(await sim.simulation.activeFaults().isEmpty)

                let receipts = try await sim.client.send(HTTPRequest(method: "GET", url: sim.running.baseURL + "/_sim/receipts"))
                #expect(try receipts.json.array?.first?["License"]?.string == Harness.license)
                let stats = try await sim.client.send(HTTPRequest(method: "GET", url: sim.running.baseURL + "/_sim/stats")).json
                #expect(stats["Requests"]?.int == 3)  // admin calls are not counted
                #expect(stats["Receipts"]?.int == 1)
            }
        }
    }
}

/// A settable clock for `MetrcSimulation(now:)`.
final class TestClock: Sendable {
    private let current = Mutex(Date(timeIntervalSince1970: 1_795_000_000))
    var now: Date { current.withLock { $0 } }
    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// Polls `condition` until it holds or two seconds pass.
func eventually(_ condition: () async -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let deadline = ContinuousClock.now + .seconds(2)
    while ContinuousClock.now < deadline {
        if await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("condition not met within 2 s", sourceLocation: sourceLocation)
}
