import Foundation
import MetrcSimulator
import Testing

/// `till sync` and `till status` as a manager runs them: real processes over the data folder `till serve` uses.
@Suite struct CommandLineTests {
    @Test func syncPullsEveryActivePackageFirstAndThenOnlyWhatChanged() async throws {
        try await TillProcessWorld.run { world in
            let first = try await world.command(["sync"])
            #expect(first.status == 0)
            let counts = try #require(first.output.wholeMatch(of: /full sync: (\d+) packages from Metrc; (\d+) active locally/),
                                      "\(first.output)")
            #expect(Int(counts.1) ?? 0 > 0)
            #expect(counts.1 == counts.2)

            // Only packages modified since the last sync (less a few minutes' overlap) are asked for.
            let again = try await world.command(["sync"])
            #expect(again.status == 0)
            #expect(again.output.wholeMatch(of: /incremental sync: \d+ packages from Metrc; (\d+) active locally/)?.1 == counts.2,
                    "\(again.output)")
            #expect(try await world.command(["sync", "--full"]).output.hasPrefix("full sync: \(counts.1) packages"))
        }
    }

    @Test func statusNamesWhatIsOwedToMetrcAndExitsNonZeroUntilItIsReported() async throws {
        try await TillProcessWorld.run { world in
            await world.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil),
                                                       method: "POST", pathPrefix: "/sales/v2/receipts")])
            var till = try await world.launch()
            let answer = try await world.sell("status-1")
            #expect(answer.status == 202)
            let receiptNumber = try #require(answer.json["receiptNumber"] as? String)
            #expect(till.terminate(within: .seconds(15)) == 0)

            let owed = try await world.command(["status"])
            #expect(owed.status == 1)
            #expect(owed.output.contains("journal=wal synchronous=2"), "\(owed.output)")
            #expect(owed.output.contains("pending report:  1 (oldest sold "), "\(owed.output)")
            #expect(owed.output.contains("last reported:   never"), "\(owed.output)")
            #expect(owed.output.contains("rejected by Metrc: 0"), "\(owed.output)")

            await world.simulation.clearFaults()
            till = try await world.launch()
            defer { till.kill9() }
            try await world.waitUntilReported(receiptNumber)
            let settled = try await world.command(["status"])
            #expect(settled.status == 0)
            #expect(settled.output.contains("pending report:  0\n"), "\(settled.output)")
            #expect(!settled.output.contains("last reported:   never"), "\(settled.output)")
        }
    }
}
