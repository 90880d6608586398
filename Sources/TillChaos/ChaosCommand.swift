import ArgumentParser
import Foundation
import TillLoad

/// till-chaos: `till serve` under fire. Registers sell while Metrc misbehaves and Till is killed and started
/// again; afterwards every sale must be in Metrc exactly once, and every package's count must agree.
/// `scripts/chaos` builds and runs it.
@main
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "till-chaos",
        abstract: "Sell through `till serve` while Metrc faults and Till is killed; check that nothing is lost or doubled.",
        discussion: """
            Exit status: 0 nothing lost, no duplicate left after the sweep, no quantity mismatch; 1 any of those, or a
            sale never answered, or a backlog not drained; 2 the run could not be made; 3 the watchdog stopped a hang.
            """)

    @Option(help: "The till executable (default: `till` next to till-chaos).")
    var till: String?
    @Option(help: "Sales to make.")
    var sales = 1000
    @Option(help: "Times `till serve` is killed with SIGKILL and started again.")
    var kills = 50
    @Option(help: "Registers selling at once.")
    var registers = 4
    @Option(help: "Seed for the choice of faults and packages (default: random; printed).")
    var seed: UInt64?
    @Option(help: "TILL_METRC_IN_DOUBT_S for the run: how long a write in doubt waits before it is sent again.")
    var inDoubtSeconds = 8
    @Flag(help: "Keep the temporary data folder (database, Till's stderr).")
    var keepData = false

    mutating func validate() throws {
        guard sales >= 1, kills >= 0, registers >= 1 else { throw ValidationError("--sales and --registers must be at least 1, --kills at least 0") }
        guard inDoubtSeconds > Chaos.metrcTimeoutSeconds + 1 else {
            throw ValidationError("--in-doubt-seconds must exceed Metrc's request timeout here (\(Chaos.metrcTimeoutSeconds) s) plus the deadline")
        }
    }

    func run() async throws {
        let tillPath = till ?? URL(fileURLWithPath: CommandLine.arguments.first ?? "till-chaos")
            .deletingLastPathComponent().appendingPathComponent("till").path
        guard FileManager.default.isExecutableFile(atPath: tillPath) else {
            throw ValidationError("no till executable at \(tillPath) (build it, or pass --till PATH)")
        }
        leftovers.name("till-chaos")
        let signalSources = leftovers.installSignalHandlers()
        // Every wait has a deadline of its own; this is for the hang nobody foresaw.
        leftovers.startWatchdog(after: .seconds(Int64(900 + sales * 2 + kills * 20)))
        let chaos = Chaos(tillPath: tillPath, sales: sales, kills: kills, registers: registers,
                          seed: seed ?? UInt64.random(in: 1...UInt64(UInt32.max)), inDoubtSeconds: inDoubtSeconds,
                          keepData: keepData)
        let status = await chaos.run()
        withExtendedLifetime(signalSources) {}
        if status != 0 { throw ExitCode(status) }
    }
}
