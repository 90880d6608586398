import Metrics
import Testing
@testable import TillMetrics

/// The Prometheus text TillMetrics makes, as Prometheus reads it.
@Suite struct ExpositionTests {
    func text(_ metrics: TillMetrics) -> String { String(decoding: metrics.exposition(), as: UTF8.self) }

    @Test func aTimersBucketsAreCumulativeAndABoundIsInItsOwnBucket() {
        let metrics = TillMetrics()
        let timer = Timer(label: "t_seconds", factory: metrics.factory)
        timer.recordNanoseconds(1_000_000)  // exactly 1 ms: le="0.001"
        timer.recordNanoseconds(1_000_001)
        timer.recordNanoseconds(60_000_000_000)  // past the last bound
        let lines = text(metrics).split(separator: "\n")
        #expect(lines.contains("# TYPE t_seconds histogram"))
        #expect(lines.contains(#"t_seconds_bucket{le="0.0005"} 0"#))
        #expect(lines.contains(#"t_seconds_bucket{le="0.001"} 1"#))
        #expect(lines.contains(#"t_seconds_bucket{le="0.002"} 2"#))
        #expect(lines.contains(#"t_seconds_bucket{le="30.0"} 2"#))
        #expect(lines.contains(#"t_seconds_bucket{le="+Inf"} 3"#))
        #expect(lines.contains("t_seconds_count 3"))
        #expect(lines.contains("t_seconds_sum 60.002000001"))
    }

    @Test func aLabelledSeriesShowsOnceItHasAValueWithItsLabelsEscaped() {
        let metrics = TillMetrics()
        _ = Timer(label: "unused_seconds", dimensions: [("endpoint", "/a")], factory: metrics.factory)
        let used = Timer(label: "used_seconds", dimensions: [("endpoint", #"/b "quoted" \ path"#)], factory: metrics.factory)
        Counter(label: "c_total", factory: metrics.factory).increment()
        #expect(!text(metrics).contains("unused_seconds"))
        used.recordNanoseconds(5)
        let exposition = text(metrics)
        #expect(exposition.contains(#"used_seconds_count{endpoint="/b \"quoted\" \\ path"} 1"#))
        #expect(exposition.contains("c_total 1"))
    }

    @Test func theSameTimerMadeTwiceCountsInOneSeries() {
        let metrics = TillMetrics()
        Timer(label: "twice_seconds", dimensions: [("k", "v")], factory: metrics.factory).recordNanoseconds(1)
        Timer(label: "twice_seconds", dimensions: [("k", "v")], factory: metrics.factory).recordNanoseconds(1)
        #expect(text(metrics).contains(#"twice_seconds_count{k="v"} 2"#))
    }
}
