import Foundation

/// What a chaos run counted, its report, and what failed.
struct Outcome {
    var seed: UInt64
    var sales: Int
    var registers: Int
    var answered: [Int: AnsweredSale]
    var retries: Int
    var kills: Int
    var faults: [FaultKind: Int]
    var receiptsActive: Int
    var receiptsArchived: Int
    var lost: Int
    /// Till's receipt numbers Metrc held more than once once everything was reported, before the last sweeps.
    var duplicatesMade: Int
    /// ...and after them.
    var duplicatesLeft: Int
    var unknown: Int
    var idMismatches: Int
    /// Per package: Till's local quantity after a full sync, Metrc's, and what the standing sales should leave.
    var packages: [(label: String, till: Decimal?, metrc: Decimal, expected: Decimal)]
    var quantityMismatches: Int
    var drained: Bool
    var drainTime: Duration

    var failures: [String] {
        var failures: [String] = []
        let unanswered = answered.values.filter { ![201, 202, 422].contains($0.status) }.count + (sales - answered.count)
        if unanswered > 0 { failures.append("\(unanswered) sales never answered") }
        if lost > 0 { failures.append("\(lost) sales lost (not in Metrc)") }
        if duplicatesLeft > 0 { failures.append("\(duplicatesLeft) receipt numbers still doubled in Metrc after the sweep") }
        if unknown > 0 { failures.append("\(unknown) receipts in Metrc that Till did not issue") }
        if idMismatches > 0 { failures.append("\(idMismatches) sales whose Metrc Id in Till is not their receipt's") }
        if quantityMismatches > 0 { failures.append("\(quantityMismatches) packages whose counts disagree") }
        if !drained { failures.append("Till still owed Metrc writes when the wait ran out") }
        return failures
    }

    var report: String {
        let statuses = Dictionary(grouping: answered.values, by: \.status).mapValues(\.count)
        let faultList = FaultKind.allCases.map { "\($0.rawValue) \(faults[$0, default: 0])" }.joined(separator: ", ")
        var lines = [
            "Till chaos run (seed \(seed)): \(sales) sales from \(registers) registers",
            row("sales answered", "\(answered.count) (201 reported \(statuses[201, default: 0]), 202 pending "
                + "\(statuses[202, default: 0]), 422 refused \(statuses[422, default: 0]))"),
            row("register retries", "\(retries) (no answer while Till was down, or 503)"),
            row("kills", "\(kills) (SIGKILL, then till serve at once)"),
            row("faults injected", "\(faults.values.reduce(0, +)): \(faultList)"),
            row("receipts in Metrc", "\(receiptsActive) active, \(receiptsArchived) archived"),
            row("lost", "\(lost)"),
            row("duplicated", "\(duplicatesMade) before the sweep, \(duplicatesLeft) after"),
            row("unknown", "\(unknown)"),
            row("Metrc Id mismatches", "\(idMismatches)"),
            row("quantity mismatches", "\(quantityMismatches) of \(packages.count) packages (Till / Metrc / expected):"),
        ]
        for package in packages {
            lines.append("    \(package.label)  \(package.till.map { "\($0)" } ?? "?") / \(package.metrc) / \(package.expected)")
        }
        lines.append(row("drained", drained ? "in \(String(format: "%.1f", Double(drainTime.components.seconds) + Double(drainTime.components.attoseconds) / 1e18)) s after the last sale"
                         : "NO: Till still owed Metrc writes"))
        let failed = failures
        lines.append(failed.isEmpty ? "Result: PASS (0 lost, 0 duplicates after the sweep, 0 quantity mismatches)"
                     : "Result: FAIL: " + failed.joined(separator: "; "))
        return lines.joined(separator: "\n")
    }

    private func row(_ name: String, _ value: String) -> String {
        "  " + name.padding(toLength: 22, withPad: " ", startingAt: 0) + value
    }
}
