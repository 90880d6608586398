import Foundation
import MetrcSimulator
import Testing
import TillReporter

@Suite struct RetryPolicyTests {
    @Test func backoffGrowsExponentiallyWithinItsJitterAndStopsAtTheCap() {
        let policy = RetryPolicy(base: .seconds(1), cap: .seconds(60), jitter: 0.2)
        for attempt in 1...5 {
            let expected = Double(1 << (attempt - 1))
            for _ in 0..<20 {
                let delay = policy.delay(afterAttempt: attempt)
                #expect(delay >= .seconds(expected * 0.8) && delay <= .seconds(expected * 1.2))
            }
        }
        #expect(policy.delay(afterAttempt: 30) <= .seconds(72))
    }

    @Test func metrcsRetryAfterWinsOverTheBackoffButNotOverTheCap() {
        let policy = RetryPolicy(base: .seconds(1), cap: .seconds(60), jitter: 0.2)
        #expect(policy.delay(afterAttempt: 5, retryAfter: .seconds(3)) == .seconds(3))
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(600)) == .seconds(60))
    }
}

@Suite struct InventorySyncTests {
    @Test func aFailedSyncIsTriedAgainAfterABackoffNotAWholeInterval() async throws {
        try await TillHarness.run { till in
            let sync = InventorySync(store: till.services.store, metrc: till.services.metrc, logger: till.services.logger,
                                     interval: .seconds(3600), retry: RetryPolicy(base: .milliseconds(100), cap: .seconds(1)))
            await till.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil), method: "GET",
                                                      pathPrefix: "/packages/v2/active", times: 1)])
            let before = try #require(try till.services.store.lastSuccessfulSyncEnd())
            await #expect(throws: (any Error).self) { try await sync.syncOnce() }  // as at start-up with Metrc down

            let service = Task { try await sync.run() }
            defer { service.cancel() }
            try await till.waitUntil("a sync succeeds again", timeout: .seconds(5)) {
                (try? till.services.store.lastSuccessfulSyncEnd()).flatMap { $0 }.map { $0 > before } ?? false
            }
        }
    }

    @Test func aLaterSyncIsIncrementalAndPicksUpWhatChangedInMetrc() async throws {
        try await TillHarness.run { till in
            let label = "1A4FF0100000022000000103"
            #expect(try till.services.store.packages(labels: [label])[label]?.onHold == false)
            await till.simulation.setPackageOnHold(license: TillHarness.license, label: label, true)
            await till.simulation.setPackageQuantity(license: TillHarness.license, label: label, quantity: 100)

            let report = try await till.services.sync.syncOnce()

            #expect(!report.full)
            #expect(report.packages >= 1)  // the window overlaps the last run by minutes, so fresh seeds are in it too
            let package = try #require(try till.services.store.packages(labels: [label])[label])
            #expect(package.onHold)
            #expect(package.quantity == 100)
            let sale = try await till.sell("held", label: label, quantity: "1")
            #expect(sale.status == 422)
            #expect(sale.errorCode == "package_on_hold")
        }
    }
}
