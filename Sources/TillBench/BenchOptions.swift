import Foundation
import TillLoad

/// What one bench run does, read from the command line.
struct BenchOptions: Sendable {
    /// The `till` executable to launch as `till serve`.
    var tillPath: String
    /// Sales in each of the two measured runs (1 register, then `registers`).
    var sales = 2000
    var registers = 8
    /// Sales made while Metrc is down, then drained.
    var backlog = 1000
    /// Receipts posted straight to the simulator for the baseline.
    var barePosts = 500
    /// Sales from one register, each next to a bare POST: what Till adds to a Metrc call, read in pairs.
    var pairedSales = 500
    /// Leave the temporary data folder (database, Till's stderr) in place, for a post-mortem.
    var keepData = false

    static let usage = """
        usage: till-bench [--till PATH] [--sales N] [--registers N] [--backlog N] [--bare N] [--paired N] [--keep-data]

        Measures Till against the in-process Metrc simulator: a bare Metrc POST baseline, sales from one
        register and from several, a backlog drained after an outage, and Till's peak RSS.

          --till PATH      the till executable (default: `till` next to till-bench)
          --sales N        sales per measured run (default 2000)
          --registers N    concurrent registers in the second run and the outage (default 8)
          --backlog N      sales made while Metrc is down (default 1000)
          --bare N         POSTs straight to the simulator for the baseline (default 500)
          --paired N       sales from one register taken in turn with as many bare POSTs, for Till's
                           overhead over a Metrc call (default 500)
          --keep-data      keep the temporary data folder instead of removing it
        """

    /// Reads the arguments after the executable's name.
    static func parse(_ arguments: [String]) throws(UsageError) -> BenchOptions {
        let sibling = URL(fileURLWithPath: CommandLine.arguments.first ?? "till-bench")
            .deletingLastPathComponent().appendingPathComponent("till").path
        var options = BenchOptions(tillPath: sibling)
        var rest = arguments[...]
        func value(for flag: String) throws(UsageError) -> String {
            guard let value = rest.popFirst() else { throw UsageError("\(flag) needs a value") }
            return value
        }
        func count(for flag: String, minimum: Int) throws(UsageError) -> Int {
            let text = try value(for: flag)
            guard let number = Int(text), number >= minimum else {
                throw UsageError("\(flag) must be a whole number of at least \(minimum), not '\(text)'")
            }
            return number
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--till": options.tillPath = try value(for: flag)
            case "--sales": options.sales = try count(for: flag, minimum: 1)
            case "--registers": options.registers = try count(for: flag, minimum: 1)
            case "--backlog": options.backlog = try count(for: flag, minimum: 1)
            case "--bare": options.barePosts = try count(for: flag, minimum: 1)
            case "--paired": options.pairedSales = try count(for: flag, minimum: 1)
            case "--keep-data": options.keepData = true
            case "-h", "--help": throw UsageError(nil)
            default: throw UsageError("unknown argument '\(flag)'")
            }
        }
        guard FileManager.default.isExecutableFile(atPath: options.tillPath) else {
            throw UsageError("no till executable at \(options.tillPath) (build it, or pass --till PATH)")
        }
        return options
    }
}

/// A command line the bench cannot run with; nil message: help was asked for.
struct UsageError: Error {
    var message: String?
    init(_ message: String?) { self.message = message }
}
