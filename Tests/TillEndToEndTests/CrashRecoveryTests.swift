import CurlHTTP
import Foundation
import Logging
import MetrcSimulator
import Testing
import TillAPI
import TillStore

/// `till serve` as a real process, killed with SIGKILL and started again over the same data folder.
@Suite struct CrashRecoveryTests {
    @Test func saleJournaledDuringAnOutageIsReportedExactlyOnceAfterSIGKILLAndRestart() async throws {
        try await TillProcessWorld.run { world in
            await world.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil),
                                                       method: "POST", pathPrefix: "/sales/v2/receipts")])
            var till = try await world.launch()
            let answer = try await world.sell("crash-outage-1")
            #expect(answer.status == 202)
            let receiptNumber = try #require(answer.json["receiptNumber"] as? String)
            till.kill9()

            await world.simulation.clearFaults()
            #expect(await world.simulation.receipts(license: TillHarness.license).isEmpty)
            till = try await world.launch()
            defer { till.kill9() }
            try await world.waitUntilReported(receiptNumber)
            #expect(await world.simulation.receipts(license: TillHarness.license, externalNumber: receiptNumber).count == 1)

            // SIGTERM is a graceful stop: the process exits 0 by itself.
            #expect(till.terminate(within: .seconds(15)) == 0)
        }
    }

    /// Metrc holds the POST, as a busy server does, and applies it after Till is gone and back: the restarted
    /// Till's lookup comes before the POST lands, and it must not post again while that POST can still land.
    @Test func aPostMetrcHoldsThroughASIGKILLAndAnImmediateRestartLeavesOneReceipt() async throws {
        try await TillProcessWorld.run { world in
            await world.simulation.setFaults([SimFault(.holdThenApply(.milliseconds(1500)), method: "POST",
                                                       pathPrefix: "/sales/v2/receipts", times: 1)])
            var till = try await world.launch()
            let answer = try await world.sell("crash-held-1")
            #expect(answer.status == 202)
            let receiptNumber = try #require(answer.json["receiptNumber"] as? String)
            let saleId = try #require(answer.json["id"] as? Int)
            till.kill9()
            till = try await world.launch()  // at once: Metrc still holds the first POST
            defer { till.kill9() }
            try await world.waitUntilReported(receiptNumber)

            let receipts = await world.simulation.receipts(license: TillHarness.license, externalNumber: receiptNumber)
            #expect(receipts.count == 1)
            let sale = try await world.get("/v1/sales/\(saleId)")
            #expect((sale["metrcReceiptId"] as? Int).map(Int64.init) == receipts.first?.id)
            #expect(await world.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 1)
        }
    }

    /// A sale's writes reach Metrc in their order across a restart: its finalize, journaled after its POST while
    /// Metrc was down, goes only once the POST has landed, and names the receipt by the Id the POST got.
    @Test func aSubjectsOrderIsKeptAcrossARestart() async throws {
        try await TillProcessWorld.run { world in
            await world.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil), method: "POST",
                                                       pathPrefix: "/sales/v2/receipts")])
            var till = try await world.launch()
            let answer = try await world.sell("ordered-1")
            #expect(answer.status == 202)
            let saleId = Int64(try #require(answer.json["id"] as? Int))
            let receiptNumber = try #require(answer.json["receiptNumber"] as? String)
            till.kill9()
            // Journaled from another process while Till is down, as a day close would journal it.
            try TillStore(path: world.directory + "/till.sqlite").appendJournal(
                [(kind: .receiptFinalize, subject: .sale(saleId), body: #"{"Id":null}"#)], at: Date(),
                audit: AuditEvent(actor: "test", action: "test.finalize"))
            await world.simulation.clearFaults()
            await world.simulation.resetCounters()

            till = try await world.launch()
            defer { till.kill9() }
            try await world.waitUntilReported(receiptNumber)
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(20)
            while await world.simulation.receipts(license: TillHarness.license).first?.isFinal != true, clock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            let receipts = await world.simulation.receipts(license: TillHarness.license, externalNumber: receiptNumber)
            #expect(receipts.count == 1)
            #expect(receipts.first?.isFinal == true)
            // Once each, in order: a finalize sent first would have named no receipt and been refused.
            #expect(await world.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 1)
            #expect(await world.simulation.requestCount(method: "PUT", pathPrefix: "/sales/v2/receipts/finalize") == 1)
        }
    }
}

extension CrashRecoveryTests {
    /// A line returned from a finalized receipt is one chain: unfinalize, edit, finalize. `till serve` is killed
    /// while Metrc holds each step (and applies it after Till is gone), and started again at once: each step
    /// reaches Metrc exactly once, in order, and the chain goes on where it stopped.
    @Test func aReturnOnAFinalizedReceiptUnfinalizesEditsAndFinalizesOnceEachThroughSIGKILLs() async throws {
        try await TillProcessWorld.run { world in
            var till = try await world.launch()
            defer { till.kill9() }
            // 201, or 202 when a loaded machine misses the world's 300 ms deadline: the receipt's Id either way.
            let answer = try await world.sell("finalized-1", quantity: "3")
            #expect(answer.status == 201 || answer.status == 202)
            let saleId = try #require(answer.json["id"] as? Int)
            try await world.waitUntil("the sale is reported") {
                try await world.get("/v1/sales/\(saleId)")["metrcReceiptId"] is Int
            }
            let receiptId = Int64(try #require(try await world.get("/v1/sales/\(saleId)")["metrcReceiptId"] as? Int))
            // The day was closed: the receipt is finalized in Metrc (a write journaled beside the running Till).
            try TillStore(path: world.directory + "/till.sqlite").appendJournal(
                [(kind: .receiptFinalize, subject: .sale(Int64(saleId)), body: #"{"Id":\#(receiptId)}"#)], at: Date(),
                audit: AuditEvent(actor: "test", action: "test.finalize"))
            try await world.waitUntil("the receipt is finalized") { await world.simulation.receipt(id: receiptId)?.isFinal == true }

            let steps = ["/sales/v2/receipts/unfinalize", "/sales/v2/receipts", "/sales/v2/receipts/finalize"]
            await world.simulation.resetCounters()
            // Most specific first: a fault matches by path prefix.
            await world.simulation.setFaults([steps[0], steps[2], steps[1]].map { path in
                SimFault(.holdThenApply(.milliseconds(1500)), method: "PUT", pathPrefix: path, times: 1)
            })
            let returned = try await world.post("/v1/sales/\(saleId)/returns", body: """
                {"clientReturnId":"r-finalized-1","lines":[{"packageLabel":"\(Labels.flower)","quantity":1,"unit":"Grams"}],
                 "reason":"Defective","disposition":"restock"}
                """)
            #expect(returned["metrcAction"] as? String == "update")
            for step in steps.indices {
                try await world.waitUntil("step \(step) is sent") { await world.puts(steps)[step] >= 1 }
                till.kill9()  // while Metrc holds it
                till = try await world.launch()
            }
            try await world.waitUntil("the return is reported", timeout: .seconds(30)) {
                let sale = try await world.get("/v1/sales/\(saleId)")
                return (sale["returns"] as? [[String: Any]])?.first?["status"] as? String == "reported"
            }
            #expect(await world.puts(steps) == [1, 1, 1])
            let receipt = try #require(await world.simulation.receipt(id: receiptId))
            #expect(receipt.isFinal && !receipt.archived)
            #expect(receipt.transactions.map(\.quantity) == [2])
        }
    }
}

extension CrashRecoveryTests {
    /// A vehicle trip's every step is held by Metrc, which applies it after `till serve` was killed: each step
    /// reaches Metrc exactly once, in Metrc's order (the simulator refuses any other), and Metrc's vehicle and
    /// shop end where Till's do.
    @Test func everyTripStepReachesMetrcOnceInOrderThroughSIGKILLs() async throws {
        try await TillProcessWorld.run { world in
            let added = try await world.command(["terminals", "add", "driver-1", "--role", "driver"])
            let driver = try #require(added.output.split(separator: "\n").last.map(String.init))
            var till = try await world.launch()
            defer { till.kill9() }
            let retailer = "/sales/v2/deliveries/retailer"
            let steps = [retailer, "\(retailer)/depart", "\(retailer)/sale", "\(retailer)/restock", "\(retailer)/end"]
            // Most specific first: a fault matches by path prefix.
            await world.simulation.setFaults(steps.reversed().map { path in
                SimFault(.holdThenApply(.milliseconds(1500)), method: "POST", pathPrefix: path, times: 1)
            })
            let created = try await world.post("/v1/trips", body: """
                {"clientTripId":"trip-kill","driver":{"employeeId":"E-1","name":"Sam","licenseNumber":"DL-1"},
                 "vehicle":{"make":"Ford","model":"Transit","plate":"K-9"},"estimatedDeparture":"2026-12-05T09:00:00-07:00",
                 "load":[{"packageLabel":"\(Labels.flower)","quantity":10,"unit":"Grams","totalPrice":100}]}
                """, token: driver)
            let tripId = try #require(created["id"] as? Int, "\(created)")
            let path = "/v1/trips/\(tripId)"
            let takes: [(String, String)] = [
                ("", ""), ("/depart", "{}"),
                ("/sales", #"{"clientSaleId":"k-1","customerType":"Consumer","recipient":{"name":"Ada"},"lines":[{"packageLabel":"\#(Labels.flower)","quantity":2,"unit":"Grams","totalAmount":20}]}"#),
                ("/restock", #"{"clientRestockId":"k-r","add":[{"packageLabel":"\#(Labels.flower)","quantity":1,"unit":"Grams","totalPrice":10}]}"#),
                ("/end", #"{"counts":[{"packageLabel":"\#(Labels.flower)","quantity":9,"unit":"Grams"}]}"#),
            ]
            for (index, take) in takes.enumerated() {
                if index > 0 {
                    let answer = try await world.post(path + take.0, body: take.1, token: driver)
                    #expect(answer["error"] == nil, "\(take.0): \(answer)")
                }
                try await world.waitUntil("step \(index) is sent") { await world.requests("POST", steps)[index] >= 1 }
                till.kill9()  // while Metrc holds it
                till = try await world.launch()
            }
            try await world.waitUntil("every step is in Metrc", timeout: .seconds(60)) {
                try await world.get(path, token: driver)["reported"] as? Bool == true
            }
            #expect(await world.requests("POST", steps) == [1, 1, 1, 1, 1])
            let trip = try await world.get(path, token: driver)
            let metrcTripId = Int64(try #require(trip["metrcTripId"] as? Int))
            let metrcTrip = try #require(await world.simulation.trip(id: metrcTripId))
            #expect(metrcTrip.state == .completed)
            #expect(metrcTrip.sales.count == 1)
            let shop = await world.simulation.shopQuantity(license: TillHarness.license, label: Labels.flower)
            let packages = try await world.get("/v1/packages")["packages"] as? [[String: Any]] ?? []
            let local = packages.first { $0["label"] as? String == Labels.flower }?["quantity"] as? NSNumber
            #expect(local?.decimalValue == shop, "Till's shelf \(String(describing: local)), Metrc's shop \(String(describing: shop))")
        }
    }
}

/// A simulator in this process and a data folder that successive `till serve` processes share.
struct TillProcessWorld: Sendable {
    let simulation: MetrcSimulation
    let simulator: RunningSimulator
    let directory: String
    let environment: [String: String]
    let token: String
    let client: CurlHTTPClient

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["TILL_BINARY"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/till").path
    }

    /// A fresh world for `body`, torn down (simulator stopped, data folder removed) before returning.
    static func run(simulator configuration: SimulatorConfiguration = SimulatorConfiguration(),
                    _ body: (TillProcessWorld) async throws -> Void) async throws {
        try await using(try await make(configuration), body, then: { await $0.tearDown() })
    }

    private static func make(_ configuration: SimulatorConfiguration) async throws -> TillProcessWorld {
        try #require(FileManager.default.isExecutableFile(atPath: binary),
                     "build the till executable first (swift build); looked for \(binary)")
        var logger = Logger(label: "sim")
        logger.logLevel = .critical
        let simulation = MetrcSimulation(configuration: configuration)
        let simulator = try await MetrcSimulatorServer.start(simulation: simulation, logger: logger)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("till-kill-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let environment = [
            "TILL_DATA_DIR": directory, "TILL_SOCKET": directory + "/till.sock",
            "TILL_METRC_BASE_URL": simulator.baseURL, "TILL_LICENSE": TillHarness.license,
            "TILL_TIMEZONE": TillConfiguration.demoTimeZone, "TILL_METRC_VENDOR_KEY": configuration.vendorKey,
            "TILL_METRC_USER_KEY": configuration.userKey, "TILL_REPORT_DEADLINE_MS": "300", "TILL_LOG_LEVEL": "error",
            // Short, so that a write in doubt is re-sent within a test's patience; longer than a request can take.
            "TILL_METRC_TIMEOUT_S": "3", "TILL_METRC_IN_DOUBT_S": "5", "TILL_REGISTER_RETURNS": "true", "TILL_CONSOLE_ADDR": "off",
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        ]
        let output = try await command(["terminals", "add", "register-1", "--role", "register"], environment: environment).output
        let token = try #require(output.split(separator: "\n").last.map(String.init))
        return TillProcessWorld(simulation: simulation, simulator: simulator, directory: directory,
                                environment: environment, token: token,
                                client: CurlHTTPClient(unixSocketPath: directory + "/till.sock"))
    }

    /// Starts `till serve` and waits until it answers on its socket.
    ///
    /// - Parameters:
    ///   - changes: settings to add to (or, nil, remove from) this world's environment.
    ///   - standardError: where its log goes (nowhere by default).
    func launch(_ changes: [String: String?] = [:], standardError: FileHandle = .nullDevice) async throws -> RunningTill {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve"]
        process.environment = Self.environment(environment, changing: changes)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = standardError
        try process.run()
        let till = RunningTill(process: process)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while clock.now < deadline {
            // Answering, and with stock to sell: under load the first sync can miss the one-second Metrc time-out
            // this world sets, and a sale before the sync after it would be refused as an unknown package.
            if let health = try? await client.send(HTTPRequest(method: "GET", url: "http://till/v1/health")),
               health.status == 200, !((try? await get("/v1/packages"))?["packages"] as? [Any] ?? []).isEmpty {
                return till
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        till.kill9()
        Issue.record("till serve did not start")
        throw CancellationError()
    }

    func sell(_ clientSaleId: String, quantity: String = "1", token: String? = nil) async throws -> (status: Int, json: [String: Any]) {
        let body = """
            {"clientSaleId":"\(clientSaleId)","customerType":"Consumer",
             "lines":[{"packageLabel":"\(Labels.flower)","quantity":\(quantity),"unit":"Grams","totalAmount":10.00}]}
            """
        let response = try await client.send(HTTPRequest(
            method: "POST", url: "http://till/v1/sales",
            headers: [(name: "Authorization", value: "Bearer \(token ?? self.token)"), (name: "Content-Type", value: "application/json")],
            body: Data(body.utf8)))
        return (response.status, (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:])
    }

    /// A POST from the register (or the terminal `token` names), as JSON.
    func post(_ path: String, body: String, token: String? = nil) async throws -> [String: Any] {
        let response = try await client.send(HTTPRequest(
            method: "POST", url: "http://till" + path,
            headers: [(name: "Authorization", value: "Bearer \(token ?? self.token)"), (name: "Content-Type", value: "application/json")],
            body: Data(body.utf8)))
        return (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
    }

    /// How many PUTs Metrc saw on each of these paths exactly (a path's count less its longer siblings').
    func puts(_ paths: [String]) async -> [Int] {
        await requests("PUT", paths)
    }

    /// How many `method` requests Metrc saw on each of these paths exactly (a path's count less its longer siblings').
    func requests(_ method: String, _ paths: [String]) async -> [Int] {
        var counts: [Int] = []
        for path in paths {
            let under = await simulation.requestCount(method: method, pathPrefix: path)
            var longer = 0
            for other in paths where other != path && other.hasPrefix(path) {
                longer += await simulation.requestCount(method: method, pathPrefix: other)
            }
            counts.append(under - longer)
        }
        return counts
    }

    func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting until \(what)")
        throw CancellationError()
    }

    /// A GET from the register (or the terminal `token` names), as JSON.
    func get(_ path: String, token: String? = nil) async throws -> [String: Any] {
        let response = try await client.send(HTTPRequest(method: "GET", url: "http://till" + path,
                                                         headers: [(name: "Authorization", value: "Bearer \(token ?? self.token)")]))
        return (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
    }

    func waitUntilReported(_ receiptNumber: String) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while clock.now < deadline {
            let status = try? await client.send(HTTPRequest(method: "GET", url: "http://till/v1/reporting",
                                                            headers: [(name: "Authorization", value: "Bearer \(token)")]))
            if let status, let json = try? JSONSerialization.jsonObject(with: status.body) as? [String: Any],
               json["pending"] as? Int == 0,
               await !simulation.receipts(license: TillHarness.license, externalNumber: receiptNumber).isEmpty {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("receipt \(receiptNumber) was not reported in time")
    }

    /// Runs a `till` command over this world's data folder and simulator, with `changes` to its environment
    /// (nil removes a setting); what it printed on standard output and on standard error, and its exit status.
    func command(_ arguments: [String], _ changes: [String: String?] = [:]) async throws -> CommandResult {
        try await Self.command(arguments, environment: Self.environment(environment, changing: changes))
    }

    private func tearDown() async {
        await simulator.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func environment(_ base: [String: String], changing changes: [String: String?]) -> [String: String] {
        var environment = base
        for (name, value) in changes { environment[name] = value }
        return environment
    }

    /// Waited for on a thread of its own: the simulator the child talks to is served from this process.
    private static func command(_ arguments: [String], environment: [String: String]) async throws -> CommandResult {
        try await onItsOwnThread { try waitForCommand(arguments, environment: environment) }
    }

    private static func waitForCommand(_ arguments: [String], environment: [String: String]) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        // A file, not a second pipe: reading one pipe to its end while the other fills up would deadlock.
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("till-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errors) }
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        // A command that should have stopped by itself and did not (`till serve` meant to refuse) fails the test, not the run.
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { if process.isRunning { process.terminate() } }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        return CommandResult(output: text(data), errors: text(try Data(contentsOf: errors)), status: process.terminationStatus)
    }
}

/// What a `till` command printed, and how it exited.
struct CommandResult {
    let output: String
    let errors: String
    let status: Int32
}

/// A `till serve` child process.
struct RunningTill: @unchecked Sendable {
    // @unchecked: Process is only signalled and awaited, from one test at a time.
    let process: Process

    /// Sends SIGTERM and returns the exit status, or nil if the process is still running after `limit`.
    func terminate(within limit: Duration) -> Int32? {
        kill(process.processIdentifier, SIGTERM)
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while process.isRunning && clock.now < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// SIGKILL: no shutdown handler runs, exactly like a power cut for the process.
    func kill9() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
