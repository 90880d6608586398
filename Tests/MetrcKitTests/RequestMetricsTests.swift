import CurlHTTP
import Foundation
import Logging
import Metrics
import MetricsTestKit
import Testing
@testable import MetrcKit

/// Metrc's requests as the metrics show them: by endpoint template and outcome, 429s counted.
@Suite struct RequestMetricsTests {
    @Test func eachRequestIsTimedByItsEndpointTemplateAndOutcomeNeverByAPatientNumber() async throws {
        let metrics = TestMetrics()
        let transport = ScriptedTransport([
            json(200, #"[{"PatientLicenseNumber":"PT-SECRET-1234","Active":true}]"#),
            json(429, ""),
            json(200, #"{"Ids":[7]}"#),
            json(404, ""),
            .failure(.noAnswer("the connection dropped")),
        ])
        let clock = TestClock()
        let client = MetrcClient(configuration: testConfiguration(), transport: transport,
                                 logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
                                 sleep: clock.sleep, now: clock.now, metricsFactory: metrics)

        _ = try await client.patientStatuses(patientLicenseNumber: "PT-SECRET-1234")
        _ = try await client.postReceipts([receiptDraft(1)])  // a 429, waited out, then 200
        #expect(try await client.receipt(id: 1_000_123) == nil)
        await #expect(throws: MetrcError.self) { try await client.archiveReceipt(id: 1_000_123) }

        let timed = metrics.timers(label: "metrc_request_duration_seconds").filter { !$0.values.isEmpty }
        let seen = Set(timed.map { timer in
            Dictionary(uniqueKeysWithValues: timer.dimensions).map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        })
        #expect(seen == [
            "endpoint=/patients/v2/statuses/{number} method=GET outcome=ok",
            "endpoint=/sales/v2/receipts method=POST outcome=rate_limited",
            "endpoint=/sales/v2/receipts method=POST outcome=ok",
            "endpoint=/sales/v2/receipts/{id} method=GET outcome=not_found",
            "endpoint=/sales/v2/receipts/{id} method=DELETE outcome=ambiguous",
        ])
        #expect(try metrics.expectCounter("metrc_rate_limited_total").totalValue == 1)
        let labels = metrics.timers.flatMap { $0.dimensions.map(\.1) } + metrics.counters.flatMap { $0.dimensions.map(\.1) }
        #expect(!labels.contains { $0.contains("SECRET") || $0.contains("1000123") })
    }

    @Test func aJournaledWriteNamesItsIdAsATemplate() {
        #expect(MetrcWrite(method: "DELETE", path: "/sales/v2/receipts/1000123", objects: []).endpoint == "/sales/v2/receipts/{id}")
        #expect(MetrcWrite(method: "POST", path: "/sales/v2/receipts", objects: []).endpoint == "/sales/v2/receipts")
        #expect(MetrcWrite(method: "POST", path: "/patient-checkins/v2/", objects: []).endpoint == "/patient-checkins/v2/")
    }
}
