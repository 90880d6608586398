import Foundation
import TillLoad

/// The plain-text report: the measurements, then each target as met or not met.
struct Report {
    let results: Results

    var text: String {
        var lines: [String] = []
        let r = results
        lines.append("Till benchmark (\(ProcessInfo.processInfo.activeProcessorCount) CPUs)")
        lines.append("  till   \(r.tillPath)")
        lines.append("  Metrc  simulator in the bench process at \(r.baseURL)")
        lines.append("")

        var table: [[String]] = [["", "n", "p50 ms", "p99 ms", "max ms", "per s", "CPU ms/sale", "not as due"]]
        func row(_ name: String, _ latencies: Latencies, perSecond: Double?, cpu: String, unexpected: Int,
                 due: Int) -> [String] {
            [name, "\(latencies.count)", ms(latencies.p50), ms(latencies.p99), ms(latencies.max),
             perSecond.map { grouped(Int($0.rounded())) } ?? "-", cpu, "\(unexpected) (\(due) due)"]
        }
        table.append(row("bare Metrc POST /sales/v2/receipts", r.bare.latencies, perSecond: r.bare.postsPerSecond,
                         cpu: "", unexpected: r.bare.failures.count, due: 200))
        table.append(row("paired: bare Metrc POST", r.paired.bare.latencies, perSecond: nil, cpu: "",
                         unexpected: r.paired.bare.failures.count, due: 200))
        table.append(row("paired: Till POST /v1/sales, 1 register", r.paired.sales.latencies, perSecond: nil, cpu: "",
                         unexpected: r.paired.sales.unexpected.count, due: 201))
        table.append(row("disk: 4 KiB write + fdatasync", r.durableWriteFloor, perSecond: nil, cpu: "",
                         unexpected: 0, due: 0))
        for (name, run) in [("Till POST /v1/sales, 1 register", r.single),
                            ("Till POST /v1/sales, \(r.several.registers) registers", r.several),
                            ("Till POST /v1/sales, Metrc down, \(r.drain.outage.registers) reg.", r.drain.outage)] {
            let count = Double(max(1, run.samples.count))
            let cpu = [run.tillCPU, run.benchCPU].map { $0.map { String(format: "%.2f", $0.milliseconds / count) } ?? "?" }
            table.append(row(name, run.latencies, perSecond: run.salesPerSecond, cpu: "\(cpu[0]) + \(cpu[1])",
                             unexpected: run.unexpected.count, due: run.expectedStatus))
        }
        lines += aligned(table, rightFrom: 1, indent: "  ")
        lines.append("  (CPU ms/sale: Till + this process, i.e. the simulator and the registers; "
            + "\(ProcessInfo.processInfo.activeProcessorCount) CPUs give \(ProcessInfo.processInfo.activeProcessorCount * 1000) CPU ms per second)")
        lines.append("")

        let d = r.drain
        lines.append("Backlog drain")
        lines += aligned([
            ["pending before restart", "\(d.pendingBeforeRestart) (GET /v1/reporting)"],
            ["first till serve", d.shutdown],
            ["restarted Till answering after", format(d.timeToAnswer)],
            ["drained (Till start → pending 0)", d.drainTime.map(format) ?? "NOT within \(format(Bench.drainLimit))"],
            ["POST /sales/v2/receipts meanwhile",
             "\(d.postsDuringDrain)" + (d.receiptsPerPost.map { String(format: " → %.1f receipts per POST", $0) } ?? "")],
        ], rightFrom: 99, indent: "  ")
        lines.append("")

        let day = r.day
        let bareWrite = r.bare.latencies.p50
        lines.append("The manager's day \(day.date): \(grouped(day.listed)) receipts in Metrc's listing, \(day.pages) pages of 20")
        lines += aligned([
            ["day's pages read bare", format(day.bareListing), "straight from Metrc, one after the other, ≤ 50 a second", ""],
            ["day view, whole day asked", day.viewTime.map(format) ?? "failed",
             "floor " + format(day.listingFloor) + " (the pages at 50 GET/s, or read bare if slower)",
             day.viewRatio().map { String(format: "%.2f ×", $0) } ?? "-"],
            ["day close, whole day asked", day.closeTime.map(format) ?? day.closeStatus,
             "floor " + format(day.closeFloor(bareWrite: bareWrite)) + " (the listing, then \(grouped(day.finalized)) finalizes in chunks of 10, 10 at a time)",
             day.closeRatio(bareWrite: bareWrite).map { String(format: "%.2f ×", $0) } ?? "-"],
        ], rightFrom: 99, indent: "  ")
        lines.append("")

        let a = r.audit
        lines.append("Exactly once (whole run)")
        lines += aligned([
            ["sales Till answered 201/202", "\(a.salesMade)"],
            ["Metrc receipts for them", "\(a.receipts) (\(a.distinctNumbers) distinct, \(a.duplicates) duplicates, "
                + "\(a.missing) missing, \(a.unexpected) unknown)"],
        ], rightFrom: 99, indent: "  ")
        lines.append("")

        let peak = r.peakResidentBytes.max()
        lines.append("Memory")
        lines += aligned([
            ["Till peak RSS (VmHWM)", peak.map(megabytes) ?? "unknown",
             "per process: " + r.peakResidentBytes.map(megabytes).joined(separator: ", ")],
        ], rightFrom: 99, indent: "  ")
        lines.append("")

        lines.append("Targets")
        // Read in pairs: each bare POST taken right before or after a sale, so both see the machine alike.
        let overhead = r.paired.overhead
        let bareP50 = r.paired.bare.latencies.p50
        let ratio = bareP50 > .zero ? r.paired.sales.latencies.p50.seconds / bareP50.seconds : 0
        let unpaired = r.single.latencies.p50 - r.bare.latencies.p50
        let batchesOfTen = d.drainTime != nil && d.pendingBeforeRestart > 0
            && d.postsDuringDrain == (d.pendingBeforeRestart + 9) / 10
        lines.append("  (a sale is one synced SQLite commit, the journal, so at least one fdatasync p50; Metrc's answer commits unsynced)")
        lines.append(String(format: "  (overhead from the paired runs; the 1-register run against the back-to-back baseline gives %+.2f ms)",
                            unpaired.milliseconds))
        lines += aligned([
            ["Till adds ≤ 2 ms at p50 over bare Metrc",
             String(format: "%+.2f ms (%.1f × the bare p50)", overhead.milliseconds, ratio),
             verdict(overhead <= .milliseconds(2))],
            ["≥ 1,000 sales/s with \(r.several.registers) registers",
             grouped(Int(r.several.salesPerSecond.rounded())) + " sales/s", verdict(r.several.salesPerSecond >= 1000)],
            ["backlog drained in batches of 10",
             d.receiptsPerPost.map { String(format: "%.1f receipts per POST", $0) } ?? "not drained", verdict(batchesOfTen)],
            ["Till peak RSS ≤ 100 MB", peak.map(megabytes) ?? "unknown",
             verdict(peak.map { $0 <= 100_000_000 } ?? false)],
            ["day view ≤ 1.2 × its floor", day.viewRatio().map { String(format: "%.2f ×", $0) } ?? "failed",
             verdict((day.viewRatio() ?? .infinity) <= DayRun.target)],
            ["day close ≤ 1.2 × its floor", day.closeRatio(bareWrite: bareWrite).map { String(format: "%.2f ×", $0) } ?? "failed",
             verdict((day.closeRatio(bareWrite: bareWrite) ?? .infinity) <= DayRun.target)],
        ], rightFrom: 99, indent: "  ")
        lines.append("")

        if r.failures.isEmpty {
            lines.append("Functional checks: all passed (every answer as due, each sale in Metrc exactly once, backlog drained)")
        } else {
            lines.append("FUNCTIONAL FAILURES:")
            lines += r.failures.map { "  - " + $0 }
        }
        return lines.joined(separator: "\n")
    }

    private func verdict(_ met: Bool) -> String { met ? "met" : "NOT MET" }
    private func ms(_ duration: Duration) -> String { String(format: "%.2f", duration.milliseconds) }
    private func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_000_000) }

    private func grouped(_ number: Int) -> String {
        let digits = Array(String(number))
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return out
    }

    /// Columns padded to their widest cell; columns from `rightFrom` on are right-aligned.
    private func aligned(_ rows: [[String]], rightFrom: Int, indent: String = "") -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { cells in
            let padded = cells.enumerated().map { column, cell in
                let fill = String(repeating: " ", count: widths[column] - cell.count)
                return column >= rightFrom ? fill + cell : cell + fill
            }
            return (indent + padded.joined(separator: "   ")).replacingOccurrences(of: "\\s+$", with: "",
                                                                                   options: .regularExpression)
        }
    }
}
