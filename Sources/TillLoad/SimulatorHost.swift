import Foundation
import Logging
import MetrcSimulator

/// The Metrc simulator in this process, on loopback. It can be stopped (Till then meets "connection
/// refused", as in a real outage) and served again on the same port over the same `MetrcSimulation`,
/// so Till finds its Metrc where it left it, with every receipt still there.
public actor SimulatorHost {
    public nonisolated let simulation: MetrcSimulation
    private let logger: Logger
    /// 0 until first started; then the port every later start binds again.
    private var port = 0
    private var running: RunningSimulator?

    public init(simulation: MetrcSimulation) {
        self.simulation = simulation
        var logger = Logger(label: "metrc-sim")
        logger.logLevel = .critical
        self.logger = logger
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Serves on a free port the first time, on the same one afterwards. A port just released can take a
    /// moment to bind again, so binding is retried for a few seconds.
    ///
    /// The port is below the kernel's ephemeral range: while the simulator is down, Till keeps connecting to
    /// it, and a connection to a closed port of that range can be given that very port as its own and connect
    /// to itself (TCP simultaneous open), holding the port so the simulator cannot bind it again.
    public func start() async throws {
        // Not cancelled with its caller: a start abandoned half way would leave a simulator listening on the
        // port that nobody knows of, and every later start would find the port taken.
        try await Task { try await self.startServing() }.value
    }

    private func startServing() async throws {
        guard running == nil else { return }
        guard port != 0 else {
            // The first start: a free port below the ephemeral range.
            for candidate in Self.portsBelowEphemeralRange().prefix(50) {
                let server = MetrcSimulatorServer(simulation: simulation, host: "127.0.0.1", port: candidate, logger: logger)
                if let simulator = try? await withTimeout(.seconds(10), "the Metrc simulator to listen", {
                    try await MetrcSimulatorServer.start(server)
                }) {
                    running = simulator
                    port = candidate
                    return
                }
            }
            throw LoadFailure("the Metrc simulator found no free port below the ephemeral range")
        }
        let server = MetrcSimulatorServer(simulation: simulation, host: "127.0.0.1", port: port, logger: logger)
        let started = ContinuousClock.now
        while true {
            do {
                running = try await withTimeout(.seconds(10), "the Metrc simulator to listen") {
                    try await MetrcSimulatorServer.start(server)
                }
                return
            } catch {
                guard ContinuousClock.now - started < .seconds(5) else {
                    throw LoadFailure("the Metrc simulator did not start on 127.0.0.1:\(port): \(error)")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Random ports from 10000 up to the start of `/proc/sys/net/ipv4/ip_local_port_range` (32768 at most).
    private static func portsBelowEphemeralRange() -> [Int] {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        let ceiling = max(11_000, min(range?.first ?? 32_768, 32_768))
        return (0..<50).map { _ in Int.random(in: 10_000..<ceiling) }
    }

    /// Closes the listener and every connection (whether or not its caller is cancelled meanwhile).
    public func stop() async throws {
        try await Task { try await self.stopServing() }.value
    }

    private func stopServing() async throws {
        guard let simulator = running else { return }
        running = nil
        try await withTimeout(.seconds(10), "the Metrc simulator to stop") { await simulator.stop() }
    }
}
