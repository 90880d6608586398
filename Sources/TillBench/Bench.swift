import CurlHTTP
import Foundation
import MetrcKit
import MetrcSimulator
import Synchronization
import TillLoad

/// One bench run: a simulator in this process, `till serve` as a child, the measurements, the teardown.
struct Bench: Sendable {
    static let license = SimFacility.demo.licenseNumber
    static let timeZone = SimFacility.demo.timeZoneIdentifier
    static let packageLabel = "1A4FF01000000220000BENCH"
    /// External receipt numbers of the baseline's receipts, so they are not taken for Till's.
    static let bareReceiptPrefix = "BENCH-BARE-"
    static let drainLimit: Duration = .seconds(120)

    /// A package deep enough for every sale of the run: 1,000,000 Each, lab tested.
    static let package = SimPackage(
        id: 9_000_001, label: packageLabel, itemName: "Bench Pre-Roll 1g", category: "Pre-Roll Flower",
        quantityType: "CountBased", quantity: 1_000_000, unitOfMeasure: "Each", labTestingState: "TestPassed",
        unitWeight: 1, unitWeightUnitOfMeasure: "Grams")

    let options: BenchOptions
    /// Distinguishes this run's clientSaleIds from any other's.
    let runId = String(UUID().uuidString.prefix(8)).lowercased()
    let started = ContinuousClock.now

    /// Runs everything and prints the report; the process's exit status.
    func run() async -> Int32 {
        await withRunFolder("till-bench", keep: options.keepData) { host, directory in
            let results = try await measure(host: host, directory: directory)
            print(Report(results: results).text)
            return results.failures.isEmpty ? 0 : 1
        }
    }

    // MARK: - The phases

    private func measure(host: SimulatorHost, directory: String) async throws -> Results {
        let simulation = host.simulation
        await simulation.addPackage(Self.package, license: Self.license)
        try await host.start()
        let baseURL = await host.baseURL
        progress("Metrc simulator at \(baseURL)")

        let keys = simulation.configuration
        let socketPath = directory + "/till.sock"
        let till = TillExecutable(path: options.tillPath, environment: [
            "TILL_DATA_DIR": directory, "TILL_SOCKET": socketPath, "TILL_METRC_BASE_URL": baseURL,
            "TILL_LICENSE": Self.license, "TILL_TIMEZONE": Self.timeZone,
            "TILL_METRC_VENDOR_KEY": keys.vendorKey, "TILL_METRC_USER_KEY": keys.userKey, "TILL_LOG_LEVEL": "error", "TILL_CONSOLE_ADDR": "off",
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": ProcessInfo.processInfo.environment["HOME"] ?? directory,
        ], stderrPath: directory + "/till.stderr")

        let output = try await till.run(["terminals", "add", "bench-register", "--role", "register"])
        guard let token = output.split(separator: "\n").last.map({ $0.trimmingCharacters(in: .whitespaces) }),
              !token.isEmpty else {
            throw LoadFailure("till terminals add printed no token")
        }
        let managerOutput = try await till.run(["terminals", "add", "bench-manager", "--role", "manager"])
        guard let managerToken = managerOutput.split(separator: "\n").last.map({ $0.trimmingCharacters(in: .whitespaces) }),
              !managerToken.isEmpty else {
            throw LoadFailure("till terminals add printed no manager token")
        }
        let manager = RegisterClient(socketPath: socketPath, token: token)
        var server = try await till.serve(register: manager)
        progress("till serve answering after \(format(server.answeredAt - server.launchedAt))")
        var failures: [String] = []
        var peaks: [Int] = []

        let direct = BareMetrc(baseURL: baseURL, keys: keys, license: Self.license, timeZone: Self.timeZone,
                                  packageLabel: Self.packageLabel, receiptPrefix: Self.bareReceiptPrefix)
        progress("bare Metrc: \(options.barePosts) sequential POST /sales/v2/receipts")
        let bare = await sequentialBare(direct)
        if !bare.failures.isEmpty {
            failures.append("bare Metrc: \(bare.failures.count) POSTs not answered 200; first: \(bare.failures[0])")
        }
        progress("paired: \(options.pairedSales) sales from 1 register, each next to a bare POST")
        let paired = await paired(direct, socketPath: socketPath, token: token)
        if !paired.bare.failures.isEmpty {
            failures.append("paired bare Metrc: \(paired.bare.failures.count) POSTs not answered 200; first: \(paired.bare.failures[0])")
        }

        progress("\(options.sales) sales from 1 register")
        let single = await sell(name: "1 register", tag: "r1", count: options.sales, registers: 1, expecting: 201,
                                socketPath: socketPath, token: token, server: server)
        progress("\(options.sales) sales from \(options.registers) registers")
        let several = await sell(name: "\(options.registers) registers", tag: "r\(options.registers)",
                                 count: options.sales, registers: options.registers, expecting: 201,
                                 socketPath: socketPath, token: token, server: server)
        for run in [paired.sales, single, several] where !run.unexpected.isEmpty {
            failures.append("\(run.name): \(run.unexpected.count) answers were not 201; first: \(run.unexpected[0].summary)")
        }

        // The backlog: Metrc unreachable, so every sale is journaled and answered 202.
        progress("Metrc down: \(options.backlog) sales from \(options.registers) registers")
        try await host.stop()
        let outage = await sell(name: "Metrc down", tag: "out", count: options.backlog, registers: options.registers,
                                expecting: 202, socketPath: socketPath, token: token, server: server)
        if !outage.unexpected.isEmpty {
            failures.append("Metrc down: \(outage.unexpected.count) answers were not 202; first: \(outage.unexpected[0].summary)")
        }
        let pending = try await manager.pendingReports()
        if pending < options.backlog {
            failures.append("Metrc down: GET /v1/reporting says \(pending) pending, expected at least \(options.backlog)")
        }
        if let peak = server.peakResidentBytes() { peaks.append(peak) }
        let shutdown = await server.stop()

        // Metrc back on the same port; a new Till releases the leases and drains at once.
        try await host.start()
        let postsBefore = await simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts")
        progress("Metrc back; restarting Till to drain \(pending) pending sales")
        server = try await till.serve(register: manager)
        let drainTime = try await waitUntilNothingPending(manager, since: server.launchedAt)
        let postsDuring = await simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") - postsBefore
        if drainTime == nil {
            let left = (try? await manager.pendingReports()).map(String.init) ?? "unknown"
            failures.append("backlog: still \(left) pending \(format(Self.drainLimit)) after Till restarted\n\(till.stderrTail())")
        }
        let drain = DrainRun(outage: outage, pendingBeforeRestart: pending,
                             timeToAnswer: server.answeredAt - server.launchedAt, drainTime: drainTime,
                             postsDuringDrain: postsDuring, shutdown: shutdown)

        var day = try await measureDay(till: till, simulation: simulation, socketPath: socketPath, managerToken: managerToken,
                                       server: &server, failures: &failures)

        if let peak = server.peakResidentBytes() { peaks.append(peak) }
        let lastShutdown = await server.stop()
        if !lastShutdown.hasPrefix("exited with status 0") {
            progress("note: the last till serve \(lastShutdown)")
        }
        // With Till stopped, so that nothing else spends the facility's GET budget meanwhile.
        progress("the day \(day.date): its pages read straight from Metrc")
        try await Task.sleep(for: .seconds(1))  // the rate window empties
        day.bareListing = try await Self.readPagesBare(baseURL: baseURL, keys: simulation.configuration, date: day.date,
                                                         zone: TimeZone(identifier: Self.timeZone)!)

        let audit = await auditReceipts(simulation, runs: [paired.sales, single, several, outage])
        if !audit.exactlyOnce {
            failures.append("""
                Metrc holds \(audit.receipts) receipts for \(audit.salesMade) sales: \(audit.duplicates) duplicates, \
                \(audit.missing) missing, \(audit.unexpected) unknown
                """)
        }
        try await host.stop()
        return Results(tillPath: options.tillPath, baseURL: baseURL, bare: bare, paired: paired, single: single, several: several,
                       drain: drain, day: day, audit: audit, peakResidentBytes: peaks,
                       durableWriteFloor: durableWriteFloor(in: directory), failures: failures)
    }

    /// POSTs one receipt at a time straight to the simulator, with the libcurl client Till uses for Metrc.
    private func sequentialBare(_ bare: BareMetrc) async -> BareRun {
        var run = BareRun()
        let started = ContinuousClock.now
        for number in 1...options.barePosts { run.add(await bare.post(number: number)) }
        run.wallTime = .now - started
        return run
    }

    /// One register's sales and bare POSTs taken in turn, so that both meet the machine in the same state:
    /// on a small shared VM the simulator itself answers a quarter of a millisecond slower or faster from
    /// one minute to the next, which a baseline measured apart would count as Till's.
    private func paired(_ bare: BareMetrc, socketPath: String, token: String) async -> PairedRun {
        let client = RegisterClient(socketPath: socketPath, token: token)
        var sales: [SaleSample] = []
        var bareRun = BareRun()
        for number in 0..<options.pairedSales {
            let sell = { await client.sell(clientSaleId: "bench-\(runId)-pair-\(number)", label: Self.packageLabel) }
            // Which goes first alternates, so neither always follows the other.
            if number % 2 == 0 {
                sales.append(await sell())
                bareRun.add(await bare.post(number: options.barePosts + 1 + number))
            } else {
                bareRun.add(await bare.post(number: options.barePosts + 1 + number))
                sales.append(await sell())
            }
        }
        // The time spent selling, not the run's: half of that went to the bare POSTs.
        let selling = sales.reduce(Duration.zero) { $0 + $1.latency }
        return PairedRun(sales: SalesRun(name: "paired", registers: 1, samples: sales, wallTime: selling, expectedStatus: 201,
                                         tillCPU: nil, benchCPU: nil),
                         bare: bareRun)
    }

    /// `count` sales of one unit each, split across `registers` concurrent registers, each selling in turn.
    private func sell(name: String, tag: String, count: Int, registers: Int, expecting: Int,
                      socketPath: String, token: String, server: TillServer) async -> SalesRun {
        let clients = (0..<registers).map { _ in RegisterClient(socketPath: socketPath, token: token) }
        let runId = self.runId
        let tillCPUBefore = CPUTime.of(pid: server.pid)
        let benchCPUBefore = CPUTime.ofThisProcess()
        let started = ContinuousClock.now
        // Each register is a thread of its own that blocks on its answer, as a register terminal would.
        let samples = await withCheckedContinuation { (continuation: CheckedContinuation<[SaleSample], Never>) in
            let collected = Mutex<(parts: [[SaleSample]], running: Int)>(([], registers))
            for (register, client) in clients.enumerated() {
                // Register r sells r, r + registers, r + 2·registers…: the ids stay unique and the shares even.
                let numbers = Array(stride(from: register, to: count, by: registers))
                Thread {
                    var samples: [SaleSample] = []
                    samples.reserveCapacity(numbers.count)
                    for number in numbers {
                        let id = "bench-\(runId)-\(tag)-\(number)"
                        samples.append(client.sellBlocking(clientSaleId: id, label: Self.packageLabel))
                    }
                    let all = collected.withLock { state -> [SaleSample]? in
                        state.parts.append(samples)
                        state.running -= 1
                        return state.running == 0 ? state.parts.flatMap { $0 } : nil
                    }
                    if let all { continuation.resume(returning: all) }
                }.start()
            }
        }
        let wallTime = ContinuousClock.now - started
        let tillCPU = CPUTime.of(pid: server.pid).flatMap { after in tillCPUBefore.map { after - $0 } }
        let benchCPU = CPUTime.ofThisProcess().flatMap { after in benchCPUBefore.map { after - $0 } }
        return SalesRun(name: name, registers: registers, samples: samples, wallTime: wallTime,
                        expectedStatus: expecting, tillCPU: tillCPU, benchCPU: benchCPU)
    }

    /// Polls GET /v1/reporting until nothing is pending; the time from `since`, or nil past the drain limit.
    private func waitUntilNothingPending(_ client: RegisterClient,
                                         since start: ContinuousClock.Instant) async throws -> Duration? {
        while ContinuousClock.now - start < Self.drainLimit {
            if (try? await client.pendingReports()) == 0 { return .now - start }
            try await Task.sleep(for: .milliseconds(25))
        }
        return nil
    }

    /// Compares what Metrc holds with the receipt numbers Till handed the registers.
    private func auditReceipts(_ simulation: MetrcSimulation, runs: [SalesRun]) async -> ReceiptAudit {
        let expected = Set(runs.flatMap(\.receiptNumbers))
        let salesMade = runs.reduce(0) { $0 + $1.samples.count - $1.failed.count }
        let numbers = await simulation.receipts(license: Self.license)
            .map { $0.externalReceiptNumber ?? "" }
            .filter { !$0.hasPrefix(Self.bareReceiptPrefix) }
        let distinct = Set(numbers)
        return ReceiptAudit(salesMade: salesMade, receipts: numbers.count, distinctNumbers: distinct.count,
                            missing: expected.subtracting(distinct).count,
                            unexpected: distinct.subtracting(expected).count)
    }

    func progress(_ message: String) {
        let elapsed = ContinuousClock.now - started
        FileHandle.standardError.write(Data("[\(String(format: "%6.1f", elapsed.seconds)) s] \(message)\n".utf8))
    }
}

/// Everything one run measured, and what went functionally wrong.
struct Results: Sendable {
    let tillPath: String
    let baseURL: String
    let bare: BareRun
    let paired: PairedRun
    let single: SalesRun
    let several: SalesRun
    let drain: DrainRun
    let day: DayRun
    let audit: ReceiptAudit
    /// VmHWM of each `till serve` process, read just before it was stopped.
    let peakResidentBytes: [Int]
    /// write + fdatasync of 4 KiB on the data folder's disk: the floor under any durable commit there.
    let durableWriteFloor: Latencies
    let failures: [String]
}

/// Times `count` 4 KiB appends each followed by fdatasync, in `directory`: what one SQLite commit with
/// synchronous=FULL costs at least on this disk, whatever Till does around it.
func durableWriteFloor(in directory: String, count: Int = 200) -> Latencies {
    let path = directory + "/fsync-probe"
    let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    guard descriptor >= 0 else { return Latencies([]) }
    defer {
        close(descriptor)
        unlink(path)
    }
    let block = [UInt8](repeating: 0x5a, count: 4096)
    let clock = ContinuousClock()
    var samples: [Duration] = []
    for _ in 0..<count {
        let started = clock.now
        _ = block.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        fdatasync(descriptor)
        samples.append(clock.now - started)
    }
    return Latencies(samples)
}

func format(_ duration: Duration) -> String {
    duration < .seconds(1) ? String(format: "%.1f ms", duration.milliseconds) : String(format: "%.2f s", duration.seconds)
}
