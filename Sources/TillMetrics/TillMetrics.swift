import CoreMetrics
import Prometheus
import Synchronization

/// One Till's metrics: the swift-metrics factory its parts count through, and the Prometheus text they make.
///
/// Counters, gauges and meters are swift-prometheus's own (atomics). Timers are `LockFreeHistogram`s instead of
/// swift-prometheus's histograms, which take a lock per value recorded: a sale records two (its own latency
/// and its Metrc request's), and on the sale path Till takes no lock for metrics.
public final class TillMetrics: Sendable {
    /// What swift-metrics counters, gauges and meters report into; scrape-time gauges are made here too.
    public let registry: PrometheusCollectorRegistry
    /// Bootstrap swift-metrics with it (`till serve`), or bind it around what should count into this Till alone
    /// (`withMetricsFactory`, as the tests do).
    public let factory: any MetricsFactory
    private let histograms: HistogramFamilies

    public init() {
        registry = PrometheusCollectorRegistry()
        histograms = HistogramFamilies()
        factory = TillMetricsFactory(prometheus: PrometheusMetricsFactory(registry: registry), histograms: histograms)
    }

    /// The Prometheus text exposition (format 0.0.4) of everything counted so far.
    public func exposition() -> [UInt8] {
        var buffer = registry.emitToBuffer()
        histograms.emit(into: &buffer)
        return buffer
    }

    /// The `Content-Type` of `exposition()`.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// swift-prometheus for everything but timers, which are lock-free histograms.
struct TillMetricsFactory: MetricsFactory {
    let prometheus: PrometheusMetricsFactory
    let histograms: HistogramFamilies

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        prometheus.makeCounter(label: label, dimensions: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        prometheus.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        prometheus.makeMeter(label: label, dimensions: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        prometheus.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        histograms.histogram(name: label, labels: dimensions)
    }

    func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { prometheus.destroyFloatingPointCounter(handler) }
    func destroyMeter(_ handler: any MeterHandler) { prometheus.destroyMeter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }
    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? LockFreeHistogram { histograms.remove(histogram) }
    }
}

/// The timers made so far, by name and then by label values. Made and listed under a lock; recorded into without one.
final class HistogramFamilies: Sendable {
    private struct Family {
        var labelNames: [String]
        var series: [[String]: LockFreeHistogram] = [:]
    }

    private let families = Mutex<[String: Family]>([:])

    func histogram(name: String, labels: [(String, String)]) -> LockFreeHistogram {
        let names = labels.map(\.0), values = labels.map(\.1)
        return families.withLock { families in
            if let existing = families[name]?.series[values] { return existing }
            // Prometheus wants one set of label names per metric; a timer that breaks this is a programming error.
            precondition(families[name].map { $0.labelNames == names } ?? true, "timer \(name) made with other labels")
            let histogram = LockFreeHistogram(name: name, labels: labels)
            families[name, default: Family(labelNames: names)].series[values] = histogram
            return histogram
        }
    }

    func remove(_ histogram: LockFreeHistogram) {
        families.withLock { families in
            let values = histogram.labels.map(\.1)
            if families[histogram.name]?.series[values] === histogram { families[histogram.name]?.series[values] = nil }
        }
    }

    /// A histogram without labels always shows (a dashboard tells "no sales yet" from "no metric"); a labelled
    /// series only once it has a value, so that the endpoints and outcomes never seen stay out of the text.
    func emit(into buffer: inout [UInt8]) {
        let snapshot = families.withLock { $0 }
        for (name, family) in snapshot.sorted(by: { $0.key < $1.key }) {
            let shown = family.series.values.filter { family.labelNames.isEmpty || $0.hasValues }
            guard !shown.isEmpty else { continue }
            buffer.append(contentsOf: "# TYPE \(name) histogram\n".utf8)
            for histogram in shown.sorted(by: { $0.labels.map(\.1).lexicographicallyPrecedes($1.labels.map(\.1)) }) {
                histogram.emit(into: &buffer)
            }
        }
    }
}

/// A Prometheus histogram of durations whose every update is an atomic add: a value lands in one bucket, and
/// the cumulative counts are summed when the text is made. A scrape during an update may see the value in its
/// bucket before the sum, never a bucket count above `_count`.
final class LockFreeHistogram: TimerHandler, Sendable {
    /// Upper bounds in seconds, from a fast local call (a sale Till answers alone) to Metrc's time-out.
    static let bounds: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    private static let boundsNanoseconds: [Int64] = bounds.map { Int64(($0 * 1e9).rounded()) }

    private final class Cell: Sendable {
        let value = Atomic<Int>(0)
    }

    let name: String
    let labels: [(String, String)]
    /// One per bound, then one for values above the last.
    private let cells: [Cell]
    private let sumNanoseconds = Atomic<Int64>(0)

    init(name: String, labels: [(String, String)]) {
        self.name = name
        self.labels = labels
        cells = (0...Self.bounds.count).map { _ in Cell() }
    }

    func recordNanoseconds(_ duration: Int64) {
        let value = max(0, duration)
        let bounds = Self.boundsNanoseconds
        var index = 0
        while index < bounds.count && value > bounds[index] { index += 1 }
        cells[index].value.wrappingAdd(1, ordering: .relaxed)
        sumNanoseconds.wrappingAdd(value, ordering: .relaxed)
    }

    var hasValues: Bool { cells.contains { $0.value.load(ordering: .relaxed) > 0 } }

    func emit(into buffer: inout [UInt8]) {
        let counts = cells.map { $0.value.load(ordering: .relaxed) }
        let sum = Double(sumNanoseconds.load(ordering: .relaxed)) / 1e9
        let labelText = labels.map { "\($0.0)=\"\(Self.escaped($0.1))\"" }.joined(separator: ",")
        let prefix = labelText.isEmpty ? "" : labelText + ","
        var cumulative = 0
        for (bound, count) in zip(Self.bounds, counts) {
            cumulative += count
            buffer.append(contentsOf: "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(cumulative)\n".utf8)
        }
        cumulative += counts[counts.count - 1]
        buffer.append(contentsOf: "\(name)_bucket{\(prefix)le=\"+Inf\"} \(cumulative)\n".utf8)
        let braces = labelText.isEmpty ? "" : "{\(labelText)}"
        buffer.append(contentsOf: "\(name)_sum\(braces) \(sum)\n".utf8)
        buffer.append(contentsOf: "\(name)_count\(braces) \(cumulative)\n".utf8)
    }

    /// A label value as the text format wants it: backslash, double quote and line feed escaped.
    static func escaped(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
