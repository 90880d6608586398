import Foundation
import TillLoad

/// Latency percentiles of one run, by nearest rank.
struct Latencies: Sendable {
    let count: Int
    let p50: Duration
    let p99: Duration
    let max: Duration

    init(_ samples: [Duration]) {
        let sorted = samples.sorted()
        count = sorted.count
        func rank(_ fraction: Double) -> Duration {
            guard !sorted.isEmpty else { return .zero }
            let index = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, index))]
        }
        p50 = rank(0.50)
        p99 = rank(0.99)
        max = sorted.last ?? .zero
    }
}

/// A batch of register sales: who sold, how long each took, what came back.
struct SalesRun: Sendable {
    let name: String
    let registers: Int
    let samples: [SaleSample]
    let wallTime: Duration
    /// The status every answer should have had.
    let expectedStatus: Int
    /// CPU (user + system) that Till, and this process (simulator and registers), spent during the run.
    let tillCPU: Duration?
    let benchCPU: Duration?

    var latencies: Latencies { Latencies(samples.map(\.latency)) }
    var salesPerSecond: Double { Double(samples.count) / wallTime.seconds }
    var unexpected: [SaleSample] { samples.filter { $0.status != expectedStatus } }
    /// Answers that mean no sale was made (anything but 201 and 202).
    var failed: [SaleSample] { samples.filter { $0.status != 201 && $0.status != 202 } }
    var receiptNumbers: [String] { samples.compactMap(\.receiptNumber) }
}

/// The straight-to-Metrc baseline: the same libcurl client Till uses, one receipt per POST.
struct BareRun: Sendable {
    private(set) var samples: [Duration] = []
    private(set) var failures: [String] = []
    /// Only for POSTs made back to back; paired ones share their time with the sales.
    var wallTime: Duration?

    var latencies: Latencies { Latencies(samples) }
    var postsPerSecond: Double? { wallTime.map { Double(samples.count) / $0.seconds } }

    mutating func add(_ post: (latency: Duration, failure: String?)) {
        samples.append(post.latency)
        if let failure = post.failure { failures.append(failure) }
    }
}

/// One register's sales and bare POSTs, taken in turn.
struct PairedRun: Sendable {
    let sales: SalesRun
    let bare: BareRun

    /// What Till adds to a Metrc POST: the difference of the two p50s.
    var overhead: Duration { sales.latencies.p50 - bare.latencies.p50 }
}

/// What the backlog phase saw: the outage, the restart and the drain.
struct DrainRun: Sendable {
    let outage: SalesRun
    let pendingBeforeRestart: Int
    /// From launching the second `till serve` to its first health answer, and to `pending == 0`.
    let timeToAnswer: Duration
    let drainTime: Duration?
    let postsDuringDrain: Int
    let shutdown: String

    var receiptsPerPost: Double? {
        postsDuringDrain > 0 && drainTime != nil ? Double(pendingBeforeRestart) / Double(postsDuringDrain) : nil
    }
}

/// Metrc's receipts for Till's sales, against the sales Till answered.
struct ReceiptAudit: Sendable {
    let salesMade: Int
    let receipts: Int
    let distinctNumbers: Int
    let missing: Int
    let unexpected: Int
    var duplicates: Int { receipts - distinctNumbers }
    var exactlyOnce: Bool { receipts == salesMade && duplicates == 0 && missing == 0 && unexpected == 0 }
}

/// CPU time (user + system) of a process, from /proc.
enum CPUTime {
    static func of(pid: pid_t) -> Duration? { read("/proc/\(pid)/stat") }
    static func ofThisProcess() -> Duration? { read("/proc/self/stat") }

    private static func read(_ path: String) -> Duration? {
        // "pid (comm) state ppid …": comm may hold spaces and parentheses, so count fields after the last ')'.
        // utime and stime are fields 14 and 15 of the line, in clock ticks.
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Int64(fields[11]), let system = Int64(fields[12]) else { return nil }
        let ticksPerSecond = Int64(sysconf(Int32(_SC_CLK_TCK)))
        guard ticksPerSecond > 0 else { return nil }
        return .milliseconds((user + system) * 1000 / ticksPerSecond)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Double { seconds * 1000 }
}
