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
    public func start() async throws {
        guard running == nil else { return }
        let server = MetrcSimulatorServer(simulation: simulation, host: "127.0.0.1", port: port, logger: logger)
        let started = ContinuousClock.now
        while true {
            do {
                let simulator = try await withTimeout(.seconds(10), "the Metrc simulator to listen") {
                    try await MetrcSimulatorServer.start(server)
                }
                running = simulator
                if port == 0 {
                    guard let bound = simulator.baseURL.split(separator: ":").last.flatMap({ Int($0) }) else {
                        throw LoadFailure("cannot read the simulator's port from \(simulator.baseURL)")
                    }
                    port = bound
                }
                return
            } catch {
                guard port != 0, ContinuousClock.now - started < .seconds(5) else {
                    throw LoadFailure("the Metrc simulator did not start on 127.0.0.1:\(port): \(error)")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Closes the listener and every connection.
    public func stop() async throws {
        guard let simulator = running else { return }
        running = nil
        try await withTimeout(.seconds(10), "the Metrc simulator to stop") { await simulator.stop() }
    }
}
