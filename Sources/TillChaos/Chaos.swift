import CurlHTTP
import Foundation
import MetrcSimulator
import Synchronization
import TillLoad

/// One chaos run: the simulator in this process, `till serve` as a child killed and started again, registers
/// selling, faults thrown at Till from Metrc's side, then the count.
struct Chaos: Sendable {
    static let license = SimFacility.demo.licenseNumber
    static let timeZone = SimFacility.demo.timeZoneIdentifier
    /// Till gives up on a Metrc request after this; a held request lands well within the in-doubt window.
    static let metrcTimeoutSeconds = 3
    static let deadlineMilliseconds = 1000
    static let sweepSeconds = 5
    /// Packages deep enough for every sale: 100,000 Each each.
    static let packages: [SimPackage] = (1...4).map { number in
        SimPackage(id: 9_100_000 + Int64(number), label: "1A4FF0100000022000CHAOS\(number)", itemName: "Chaos Pre-Roll \(number)",
                   category: "Pre-Roll Flower", quantityType: "CountBased", quantity: 100_000, unitOfMeasure: "Each",
                   unitWeight: 1, unitWeightUnitOfMeasure: "Grams")
    }

    let tillPath: String
    let sales: Int
    let kills: Int
    let registers: Int
    let seed: UInt64
    let inDoubtSeconds: Int
    let keepData: Bool
    /// Distinguishes this run's clientSaleIds from any other's.
    let runId = String(UUID().uuidString.prefix(8)).lowercased()
    let started = ContinuousClock.now

    /// Runs everything, prints the report; the exit status.
    func run() async -> Int32 {
        await withRunFolder("till-chaos", keep: keepData) { host, directory in
            let outcome = try await fire(host: host, directory: directory)
            print(outcome.report)
            return outcome.failures.isEmpty ? 0 : 1
        }
    }

    // MARK: - Under fire

    private func fire(host: SimulatorHost, directory: String) async throws -> Outcome {
        let simulation = host.simulation
        for package in Self.packages { await simulation.addPackage(package, license: Self.license) }
        try await host.start()
        let keys = simulation.configuration
        let socketPath = directory + "/till.sock"
        let till = TillExecutable(path: tillPath, environment: [
            "TILL_DATA_DIR": directory, "TILL_SOCKET": socketPath, "TILL_METRC_BASE_URL": await host.baseURL,
            "TILL_LICENSE": Self.license, "TILL_TIMEZONE": Self.timeZone,
            "TILL_METRC_VENDOR_KEY": keys.vendorKey, "TILL_METRC_USER_KEY": keys.userKey, "TILL_LOG_LEVEL": "error", "TILL_CONSOLE_ADDR": "off",
            "TILL_METRC_TIMEOUT_S": "\(Self.metrcTimeoutSeconds)", "TILL_METRC_IN_DOUBT_S": "\(inDoubtSeconds)",
            "TILL_REPORT_DEADLINE_MS": "\(Self.deadlineMilliseconds)", "TILL_SWEEP_INTERVAL_S": "\(Self.sweepSeconds)",
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": ProcessInfo.processInfo.environment["HOME"] ?? directory,
        ], stderrPath: directory + "/till.stderr")
        let output = try await till.run(["terminals", "add", "chaos-manager", "--role", "manager"])
        guard let token = output.split(separator: "\n").last.map({ $0.trimmingCharacters(in: .whitespaces) }), !token.isEmpty else {
            throw LoadFailure("till terminals add printed no token")
        }
        let manager = RegisterClient(socketPath: socketPath, token: token)
        let supervisor = Supervisor(till: till, manager: manager, server: try await till.serve(register: manager))
        progress("till serve answering; \(sales) sales from \(registers) registers, \(kills) kills, seed \(seed)")

        // Selling, with faults and kills alongside until the last sale is answered.
        let ledger = SalesLedger()
        let random = SeededRandom(seed: seed)
        let selling = Task { await sell(ledger: ledger, socketPath: socketPath, token: token, random: random) }
        let faults = Task { await injectFaults(host: host, random: random) }
        let killing = Task { try await kill(supervisor: supervisor, ledger: ledger, host: host, random: random) }
        await selling.value
        faults.cancel()
        let injected = await faults.value
        let killed = try await killing.value
        progress("every sale answered; \(killed) kills, \(injected.values.reduce(0, +)) faults")

        // Metrc behaves again; Till drains what it owes, and its sweep archives what doubled.
        await simulation.clearFaults()
        try await host.start()
        try await supervisor.ensureRunning()
        let lastSale = ContinuousClock.now
        let drained = try await waitUntilSettled(manager, within: .seconds(Int64(inDoubtSeconds) * 4 + 300))
        let drainTime = ContinuousClock.now - lastSale
        let duplicatesMade = await Self.tillNumbers(simulation: simulation, ledger: ledger).duplicated
        // The sweep runs every few seconds: give it two rounds, then what it journaled time to drain.
        try await Task.sleep(for: .seconds(Int64(Self.sweepSeconds) * 2 + 1))
        _ = try await waitUntilSettled(manager, within: .seconds(120))

        // Till's stock as a full sync leaves it, side by side with Metrc's and with what the sales should leave.
        _ = try await till.run(["sync", "--full"])
        let local = try await localQuantities(manager)
        let metrc = await Self.packages.asyncMap { await simulation.packageQuantity(license: Self.license, label: $0.label) ?? -1 }
        let answered = ledger.snapshot()
        let expected = Self.packages.map { package in
            package.quantity - Decimal(answered.values.filter { $0.label == package.label && $0.stands }.count)
        }
        let count = await Self.tillNumbers(simulation: simulation, ledger: ledger)
        let mismatched = Self.packages.indices.filter { local[Self.packages[$0].label] != metrc[$0] || metrc[$0] != expected[$0] }
        let idMismatches = try await receiptIdMismatches(manager, answered: answered, simulation: simulation)
        await supervisor.stop()

        return Outcome(
            seed: seed, sales: sales, registers: registers, answered: answered, retries: ledger.retries,
            kills: killed, faults: injected, receiptsActive: count.active, receiptsArchived: count.archived,
            lost: count.lost, duplicatesMade: duplicatesMade, duplicatesLeft: count.duplicated, unknown: count.unknown,
            idMismatches: idMismatches, packages: Self.packages.indices.map {
                (Self.packages[$0].label, local[Self.packages[$0].label], metrc[$0], expected[$0])
            }, quantityMismatches: mismatched.count, drained: drained, drainTime: drainTime)
    }

    /// Registers selling until every sale is answered; each retries its own clientSaleId until it hears one,
    /// as a terminal does.
    private func sell(ledger: SalesLedger, socketPath: String, token: String, random: SeededRandom) async {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<registers {
                group.addTask {
                    let register = RegisterClient(socketPath: socketPath, token: token)
                    while true {
                        guard let index = ledger.nextSale(below: sales) else { return }
                        let label = Self.packages[random.below(Self.packages.count)].label
                        let clientSaleId = "chaos-\(runId)-\(index)"
                        let askedAt = ContinuousClock.now
                        while true {
                            let sample = await register.sell(clientSaleId: clientSaleId, label: label)
                            if [201, 202, 422].contains(sample.status) || ContinuousClock.now - askedAt > .seconds(300) {
                                ledger.record(index, label: label, sample: sample)
                                break
                            }
                            ledger.retried()
                            try? await Task.sleep(for: .milliseconds(100))
                        }
                        try? await Task.sleep(for: .milliseconds(80 + random.below(220)))  // a register's pace
                    }
                }
            }
        }
    }

    /// Throws a fault at Till every so often until cancelled; how many of each.
    private func injectFaults(host: SimulatorHost, random: SeededRandom) async -> [FaultKind: Int] {
        var injected: [FaultKind: Int] = [:]
        let simulation = host.simulation
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200 + random.below(800)))
            guard !Task.isCancelled else { break }
            let kind = FaultKind.allCases[random.below(FaultKind.allCases.count)]
            injected[kind, default: 0] += 1
            let until = Date().addingTimeInterval(3)
            let times = 1 + random.below(3)
            switch kind {
            case .outage:
                try? await host.stop()
                try? await Task.sleep(for: .milliseconds(500 + random.below(2000)))
                try? await host.start()
            case .holdThenApply:
                await simulation.addFault(Self.holdFault(random))
            default:
                await simulation.addFault(SimFault(kind.effect, method: kind.onWritesOnly ? "POST" : nil,
                                                   pathPrefix: "/sales/v2/receipts", times: times, until: until))
            }
        }
        return injected
    }

    static func holdFault(_ random: SeededRandom) -> SimFault {
        SimFault(.holdThenApply(.milliseconds(Int64(1000 + random.below(2000)))), method: "POST",
                 pathPrefix: "/sales/v2/receipts", times: 1)
    }

    /// Kills `till serve` with SIGKILL `kills` times, spread over the sales, and starts it again at once;
    /// half the time while Metrc holds a POST it will apply after Till is gone.
    private func kill(supervisor: Supervisor, ledger: SalesLedger, host: SimulatorHost, random: SeededRandom) async throws -> Int {
        guard kills > 0 else { return 0 }
        let step = max(1, sales / (kills + 1))
        var done = 0
        while done < kills {
            let threshold = step * (done + 1)
            while ledger.count < min(threshold, sales) {
                try await Task.sleep(for: .milliseconds(20))
            }
            if ledger.count >= sales { break }
            if random.below(2) == 0 {
                await host.simulation.addFault(Self.holdFault(random))
                try await Task.sleep(for: .milliseconds(150))  // let a register's POST meet it
            }
            try await supervisor.killAndRestart()
            done += 1
        }
        return done
    }

    /// Waits until Till owes Metrc nothing (no sale pending, no journal row owed); false if `limit` passed.
    private func waitUntilSettled(_ manager: RegisterClient, within limit: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let reporting = try? await get(manager, "/v1/reporting"), reporting["pending"] as? Int == 0,
               (reporting["journal"] as? [String: Any])?["pending"] as? Int ?? 0 == 0 {
                return true
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    private func localQuantities(_ manager: RegisterClient) async throws -> [String: Decimal] {
        let packages = try await get(manager, "/v1/packages")["packages"] as? [[String: Any]] ?? []
        var quantities: [String: Decimal] = [:]
        for package in packages {
            if let label = package["label"] as? String, let quantity = package["quantity"] as? NSNumber {
                quantities[label] = Decimal(string: quantity.stringValue)
            }
        }
        return quantities
    }

    /// Standing sales whose Metrc Id in Till is not the Id of their one active receipt in Metrc.
    private func receiptIdMismatches(_ manager: RegisterClient, answered: [Int: AnsweredSale],
                                     simulation: MetrcSimulation) async throws -> Int {
        var active: [String: Int64] = [:]
        for receipt in await simulation.receipts(license: Self.license) where !receipt.archived {
            if let number = receipt.externalReceiptNumber { active[number] = receipt.id }
        }
        var mismatches = 0
        for sale in answered.values where sale.stands {
            guard let id = sale.saleId, let number = sale.receiptNumber else { continue }
            let view = try await get(manager, "/v1/sales/\(id)")
            if (view["metrcReceiptId"] as? Int).map(Int64.init) != active[number] { mismatches += 1 }
        }
        return mismatches
    }

    private func get(_ client: RegisterClient, _ path: String) async throws -> [String: Any] {
        let response = try await client.http.send(HTTPRequest(method: "GET", url: "http://till" + path,
                                                              headers: [(name: "Authorization", value: "Bearer \(client.token)")],
                                                              timeout: .seconds(10)))
        guard response.status == 200, let json = try JSONSerialization.jsonObject(with: response.body) as? [String: Any] else {
            throw LoadFailure("GET \(path) answered \(response.status)")
        }
        return json
    }

    /// Metrc's receipts against Till's sales: those of Till's numbers held more than once (active), standing
    /// sales Metrc does not hold, receipts with a number Till never issued.
    static func tillNumbers(simulation: MetrcSimulation, ledger: SalesLedger)
        async -> (active: Int, archived: Int, duplicated: Int, lost: Int, unknown: Int) {
        let receipts = await simulation.receipts(license: license)
        let answered = ledger.snapshot().values
        let numbers = Set(answered.compactMap(\.receiptNumber))
        let standing = Set(answered.filter(\.stands).compactMap(\.receiptNumber))
        let active = Dictionary(grouping: receipts.filter { !$0.archived }, by: { $0.externalReceiptNumber ?? "" })
        return (receipts.filter { !$0.archived }.count, receipts.filter(\.archived).count,
                active.filter { numbers.contains($0.key) && $0.value.count > 1 }.count,
                standing.filter { active[$0] == nil }.count,
                active.filter { !numbers.contains($0.key) }.values.reduce(0) { $0 + $1.count })
    }

    private func progress(_ message: String) {
        let elapsed = ContinuousClock.now - started
        FileHandle.standardError.write(Data("[\(String(format: "%6.1f", Double(elapsed.components.seconds))) s] \(message)\n".utf8))
    }
}

/// `till serve` as it is now: killed and started again by the chaos, stopped at the end.
actor Supervisor {
    private let till: TillExecutable
    private let manager: RegisterClient
    private var server: TillServer?

    init(till: TillExecutable, manager: RegisterClient, server: TillServer) {
        self.till = till
        self.manager = manager
        self.server = server
    }

    /// SIGKILL: no shutdown runs, as when the power goes; then a new `till serve` at once.
    func killAndRestart() async throws {
        if let server {
            Foundation.kill(server.pid, SIGKILL)
            _ = try? await waitForExit(server.process, within: .seconds(10), what: "till serve to die")
            leftovers.untrack(server.pid)
            self.server = nil
        }
        server = try await till.serve(register: manager)
    }

    func ensureRunning() async throws {
        if let server, server.process.isRunning { return }
        server = try await till.serve(register: manager)
    }

    func stop() async {
        await server?.stop()
        server = nil
    }
}

/// The faults a chaos run throws at Till from Metrc's side.
enum FaultKind: String, CaseIterable, Sendable {
    case unavailable = "503"
    case rateLimited = "429"
    case htmlUnavailable = "HTML 503"
    case serverFault = "fault 400"
    case outage = "outage"
    case commitThenDrop = "commit-then-drop"
    case holdThenApply = "hold-then-apply"

    var effect: SimFault.Effect {
        switch self {
        case .unavailable: .status(503, body: nil, retryAfterSeconds: nil)
        case .rateLimited: .status(429, body: #"{"Message":"Too Many Requests"}"#, retryAfterSeconds: 1)
        case .htmlUnavailable: .status(503, body: "<html><body><h1>503 Service Unavailable</h1></body></html>", retryAfterSeconds: nil)
        case .serverFault:
            .status(400, body: #"{"Message":"Could not load file or assembly 'Metrc.Data' or one of its dependencies."}"#,
                    retryAfterSeconds: nil)
        case .commitThenDrop: .commitThenDrop
        case .outage, .holdThenApply: .status(503, body: nil, retryAfterSeconds: nil)  // not armed as a fault
        }
    }

    /// 429s meet the lookups too; the rest only the receipt POSTs.
    var onWritesOnly: Bool { self != .rateLimited }
}

/// What a register heard of one sale.
struct AnsweredSale: Sendable {
    var label: String
    var status: Int
    var saleId: Int?
    var receiptNumber: String?

    /// Recorded and standing (201, 202): Metrc must hold it once.
    var stands: Bool { status == 201 || status == 202 }
}

/// Every sale's answer, as the registers heard them.
final class SalesLedger: Sendable {
    private struct State {
        var answered: [Int: AnsweredSale] = [:]
        var retries = 0
        var taken = 0
    }
    private let state = Mutex(State())

    func record(_ index: Int, label: String, sample: SaleSample) {
        let json = (try? JSONSerialization.jsonObject(with: sample.body)) as? [String: Any]
        let sale = AnsweredSale(label: label, status: sample.status, saleId: json?["id"] as? Int,
                                receiptNumber: json?["receiptNumber"] as? String)
        state.withLock { $0.answered[index] = sale }
    }

    /// The next sale for a register to make, nil once `below` have been taken.
    func nextSale(below limit: Int) -> Int? {
        state.withLock { state in
            guard state.taken < limit else { return nil }
            defer { state.taken += 1 }
            return state.taken
        }
    }

    func retried() { state.withLock { $0.retries += 1 } }
    var count: Int { state.withLock { $0.answered.count } }
    var retries: Int { state.withLock { $0.retries } }
    func snapshot() -> [Int: AnsweredSale] { state.withLock { $0.answered } }
}

/// SplitMix64: the same seed makes the same choices (timing still differs from run to run).
final class SeededRandom: Sendable {
    private let state: Mutex<UInt64>

    init(seed: UInt64) { state = Mutex(seed) }

    func below(_ bound: Int) -> Int {
        let value = state.withLock { state -> UInt64 in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        return Int(value % UInt64(max(1, bound)))
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async -> T) async -> [T] {
        var result: [T] = []
        for element in self { result.append(await transform(element)) }
        return result
    }
}
