import CurlHTTP
import Foundation
import MetrcSimulator
import Testing
import TillDomain

/// What Prometheus scrapes: `GET /metrics` on the console's listener (no token), and `GET /v1/metrics` for managers.
@Suite struct MetricsTests {
    /// A real `till serve` (its own process, so its own counts), scraped as Prometheus would.
    @Test func metricsShowASaleCountedAndAWriteInDoubtWhileMetrcHoldsIt() async throws {
        try await TillProcessWorld.run { world in
            let till = try await world.launch(["TILL_CONSOLE_ADDR": "127.0.0.1:0"])
            defer { till.kill9() }
            let scrape = try await Scraper(world: world)

            let before = try await scrape()
            #expect(before["till_sales_total{outcome=\"reported\"}"] == 0)
            #expect(before["till_sale_duration_seconds_count"] == 0)
            #expect(before["till_journal_in_doubt"] == 0)
            #expect(before["till_inventory_sync_age_seconds"].map { $0 >= 0 && $0 < 60 } == true)

            // 201, or 202 on a loaded machine (the world's deadline is 300 ms): counted once either way.
            let sold = try await world.sell("metrics-1")
            #expect(sold.status == 201 || sold.status == 202)
            try await world.waitUntil("Metrc holds the first sale") { try await scrape()["till_journal_depth{kind=\"receipt.create\"}"] == 0 }
            let after = try await scrape()
            let answered = { (metrics: Exposition, outcome: String) in metrics["till_sales_total{outcome=\"\(outcome)\"}"] ?? -1 }
            #expect(answered(after, "reported") + answered(after, "pending_report") == 1)
            #expect(after["till_sale_duration_seconds_count"] == 1)
            #expect(after["metrc_request_duration_seconds_count{method=\"POST\",endpoint=\"/sales/v2/receipts\",outcome=\"ok\"}"]
                .map { $0 >= 1 } == true)
            #expect(after["till_journal_in_doubt"] == 0)
            #expect(after["till_terminals_connected{role=\"register\"}"] == 1)
            #expect(after["till_socket_connections"].map { $0 >= 1 } == true)

            // Metrc holds the next POST past the register's deadline (300 ms here), then applies it, within Till's
            // 3 s request time-out.
            await world.simulation.setFaults([SimFault(.holdThenApply(.milliseconds(2500)), method: "POST",
                                                       pathPrefix: "/sales/v2/receipts", times: 1)])
            let pending = try await world.sell("metrics-2")
            #expect(pending.status == 202)
            let held = try await scrape()
            #expect(answered(held, "pending_report") == answered(after, "pending_report") + 1)
            #expect(held["till_journal_in_doubt"] == 1)
            #expect(held["till_journal_depth{kind=\"receipt.create\"}"] == 1)
            #expect(held["till_journal_in_doubt_oldest_seconds"].map { $0 > 0 && $0 < 10 } == true)

            try await world.waitUntil("Metrc applies the held POST and Till records it") {
                try await scrape()["till_journal_in_doubt"] == 0
            }
            let settled = try await scrape()
            #expect(settled["till_journal_depth{kind=\"receipt.create\"}"] == 0)
            #expect(answered(settled, "pending_report") == answered(held, "pending_report"))  // as the register heard it
        }
    }

    @Test func theSocketServesTheSameMetricsToManagersOnly() async throws {
        try await TillHarness.run { till in
            #expect(try await till.sell("metrics-socket-1").status == 201)
            _ = try await till.sell("metrics-socket-2", quantity: "100000")  // more than there is
            _ = try await till.request("POST", "/v1/sales", body: #"{"clientSaleId":"#, token: till.registerToken)
            _ = try await till.request("GET", "/v1/patients/PT-ACTIVE-0001/status", token: till.pharmacistToken)
            _ = try await till.request("GET", "/v1/patients/PT-ACTIVE-0001/status", token: till.pharmacistToken)

            let page = try await till.request("GET", "/v1/metrics", token: till.managerToken)
            #expect(page.status == 200)
            #expect(page.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            let metrics = Exposition(String(decoding: page.body, as: UTF8.self))
            // Each harness counts into its own registry: exact, with other tests running beside this one.
            #expect(metrics["till_sales_total{outcome=\"reported\"}"] == 1)
            #expect(metrics["till_sale_refusals_total{code=\"insufficient_quantity\"}"] == 1)
            #expect(metrics["till_sale_refusals_total{code=\"malformed_json\"}"] == 1)
            #expect(metrics["till_license_status_lookups_total{kind=\"patient\",source=\"cache\"}"] == 1)
            #expect(metrics["till_patient_status_cache_hit_ratio"] == 0.5)
            #expect(metrics["till_journal_depth{kind=\"checkin.create\"}"] == 0)

            #expect(try await till.request("GET", "/v1/metrics", token: till.registerToken).errorCode == "forbidden")
            #expect(try await till.request("GET", "/v1/metrics").errorCode == "unauthorized")
        }
    }
}

/// A Prometheus text exposition, by series (`name{labels}` as written).
struct Exposition {
    let values: [String: Double]

    init(_ text: String) {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            values[String(line[..<space])] = Double(line[line.index(after: space)...])
        }
        self.values = values
    }

    subscript(series: String) -> Double? { values[series] }
}

/// Scrapes a `till serve`'s console listener as Prometheus does: `GET /metrics`, no token.
struct Scraper {
    let url: String
    let client = CurlHTTPClient()

    init(world: TillProcessWorld) async throws {
        let file = (world.directory as NSString).appendingPathComponent("console.url")
        var found: String?
        try await world.waitUntil("the console listens") {
            found = try? String(contentsOfFile: file, encoding: .utf8)
            return found != nil
        }
        url = try #require(found)
    }

    func callAsFunction() async throws -> Exposition {
        let response = try await client.send(HTTPRequest(method: "GET", url: url + "/metrics"))
        #expect(response.status == 200)
        #expect(response.headers["content-type"]?.hasPrefix("text/plain") == true)
        return Exposition(String(decoding: response.body, as: UTF8.self))
    }
}
