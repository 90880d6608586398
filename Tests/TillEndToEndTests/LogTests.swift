import Foundation
import Logging
import MetrcSimulator
import Testing

/// What an operator's log shipper reads from `till serve`.
@Suite struct LogTests {
    @Test func jsonLogLinesParseOneByOneAndHoldNoKeyOrToken() async throws {
        var simulator = SimulatorConfiguration()
        simulator.vendorKey = "vendor-KEY-5f1c2a9e77"
        simulator.userKey = "user-KEY-8b3d7e41c0"
        try await TillProcessWorld.run(simulator: simulator) { world in
            let logFile = world.directory + "/serve.log"
            _ = FileManager.default.createFile(atPath: logFile, contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
            // One refused POST, so that Metrc's error and the in-doubt lookup are logged as well.
            await world.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil), method: "POST",
                                                       pathPrefix: "/sales/v2/receipts", times: 1)])
            let till = try await world.launch(["TILL_LOG_FORMAT": "json", "TILL_LOG_LEVEL": "trace"], standardError: log)
            let pending = try await world.sell("log-1")
            #expect(pending.status == 202)
            try await world.waitUntilReported(try #require(pending.json["receiptNumber"] as? String))
            #expect([201, 202].contains(try await world.sell("log-2").status))
            #expect(till.terminate(within: .seconds(15)) == 0)
            try log.close()

            let text = try String(contentsOfFile: logFile, encoding: .utf8)
            let lines = text.split(separator: "\n")
            #expect(lines.count >= 5, "\(text)")
            let levels = Set(Logger.Level.allCases.map(\.rawValue))
            var messages: [String] = []
            for line in lines {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                                          "not a JSON object: \(line)")
                #expect(Set(object.keys) == ["timestamp", "level", "label", "message", "metadata"], "\(line)")
                let timestamp = try #require(object["timestamp"] as? String)
                #expect((try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(timestamp)) != nil, "\(line)")
                #expect(levels.contains(object["level"] as? String ?? ""), "\(line)")
                #expect(object["label"] is String && object["metadata"] is [String: Any], "\(line)")
                messages.append(object["message"] as? String ?? "")
            }
            #expect(messages.contains("Till listening"), "\(messages)")
            #expect(messages.contains("Metrc refused the request"), "\(messages)")

            let basic = Data("\(simulator.vendorKey):\(simulator.userKey)".utf8).base64EncodedString()
            for secret in [simulator.vendorKey, simulator.userKey, basic, world.token] {
                #expect(!text.contains(secret), "the log holds a secret")
            }
        }
    }
}
