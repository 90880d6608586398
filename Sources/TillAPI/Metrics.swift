import CoreMetrics
import Foundation
import Hummingbird
import NIOCore
import Prometheus
import Synchronization
import TillDomain
import TillMetrics
import TillStore

/// `GET /metrics` (the console's listener) and `GET /v1/metrics` (the socket, managers): what swift-metrics
/// counted, and the gauges read afresh at each scrape.
enum MetricsPage {
    static func response(_ services: TillServices) async throws -> Response {
        let text: [UInt8]
        do {
            text = try await services.scrapeGauges.exposition(services)
        } catch {
            throw TillError.fromStore(error)
        }
        return Response(status: .ok, headers: [.contentType: TillMetrics.contentType, .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: text)))
    }
}

/// The gauges that describe the database, the patient cache and the socket, set just before the text is made.
final class ScrapeGauges: Sendable {
    private let depth: [JournalKind: Prometheus.Gauge]
    private let refused: [JournalKind: Prometheus.Gauge]
    private let inDoubt: Prometheus.Gauge
    private let inDoubtAge: Prometheus.Gauge
    private let oldestPendingAge: Prometheus.Gauge
    private let syncAge: Prometheus.Gauge
    private let patientHitRatio: Prometheus.Gauge
    private let connections: Prometheus.Gauge
    private let terminals: [TerminalRole: Prometheus.Gauge]
    /// Held from the first gauge set to the text made: two scrapes at once would otherwise mix their readings.
    /// Scrapes are seconds apart, and no sale takes it.
    private let scraping = Mutex(())

    init(registry: PrometheusCollectorRegistry) {
        func byKind(_ name: String, _ help: String) -> [JournalKind: Prometheus.Gauge] {
            Dictionary(uniqueKeysWithValues: JournalKind.allCases.map {
                ($0, registry.makeGauge(name: name, labels: [("kind", $0.rawValue)], help: help))
            })
        }
        depth = byKind("till_journal_depth", "Writes Till owes Metrc, by kind")
        refused = byKind("till_journal_refused", "Writes Metrc refused, waiting for a person, by kind")
        inDoubt = registry.makeGauge(name: "till_journal_in_doubt",
                                     help: "Owed writes whose last attempt may have reached Metrc")
        inDoubtAge = registry.makeGauge(name: "till_journal_in_doubt_oldest_seconds",
                                        help: "Age of the oldest attempt in doubt, 0 when none")
        oldestPendingAge = registry.makeGauge(name: "till_journal_oldest_pending_seconds",
                                              help: "Age of the oldest write owed to Metrc, 0 when none")
        syncAge = registry.makeGauge(name: "till_inventory_sync_age_seconds",
                                     help: "Since the last successful inventory sync finished, +Inf before the first")
        patientHitRatio = registry.makeGauge(name: "till_patient_status_cache_hit_ratio",
                                             help: "Patient status lookups answered from the cache since start, NaN before the first")
        connections = registry.makeGauge(name: "till_socket_connections", help: "Open connections on the register socket")
        terminals = Dictionary(uniqueKeysWithValues: TerminalRole.allCases.map {
            ($0, registry.makeGauge(name: "till_terminals_connected", labels: [("role", $0.rawValue)],
                                    help: "Terminals with an open connection that has shown their token, by role"))
        })
    }

    /// The Prometheus text, with these gauges read afresh.
    func exposition(_ services: TillServices) async throws -> [UInt8] {
        let gauges = try services.store.gauges()
        let lookups = await services.patients.patientLookups()
        let (open, connected) = services.connections.current()
        let now = Date()
        func age(_ date: Date?) -> Double { date.map { max(0, now.timeIntervalSince($0)) } ?? 0 }
        return scraping.withLock { _ in
            for kind in JournalKind.allCases {
                depth[kind]?.set(to: Double(gauges.pendingByKind[kind] ?? 0))
                refused[kind]?.set(to: Double(gauges.refusedByKind[kind] ?? 0))
            }
            inDoubt.set(to: Double(gauges.inDoubt))
            inDoubtAge.set(to: age(gauges.oldestInDoubtAttempt))
            oldestPendingAge.set(to: age(gauges.oldestPending))
            syncAge.set(to: gauges.lastSuccessfulSync.map { age($0) } ?? .infinity)
            patientHitRatio.set(to: lookups.hitRatio ?? .nan)
            connections.set(to: Double(open))
            for role in TerminalRole.allCases { terminals[role]?.set(to: Double(connected[role] ?? 0)) }
            return services.metrics.exposition()
        }
    }
}

/// The register socket's open connections, and which terminals have shown their token on them ("registers
/// connected"). A request only reads its connection's terminal (a task-local and an atomic load); the shared
/// table changes under a lock when a connection first shows a token, or closes.
final class ConnectionTracker: Sendable {
    /// One connection: the terminal whose token it last showed (0 before any).
    final class Connection: Sendable {
        fileprivate let terminalId = Atomic<Int64>(0)
    }

    @TaskLocal static var current: Connection?

    private let open = Atomic<Int>(0)
    private let terminals = Mutex<[Int64: (role: TerminalRole, connections: Int)]>([:])

    /// Runs a connection's requests (its whole life) with it counted.
    func serving(_ body: () async -> Void) async {
        let connection = Connection()
        open.add(1, ordering: .relaxed)
        await Self.$current.withValue(connection) { await body() }
        open.subtract(1, ordering: .relaxed)
        let id = connection.terminalId.load(ordering: .relaxed)
        if id != 0 { terminals.withLock { Self.detach(id, from: &$0) } }
    }

    /// The request's connection showed `terminal`'s token.
    func noted(_ terminal: Terminal) {
        guard let connection = Self.current, connection.terminalId.load(ordering: .relaxed) != terminal.id else { return }
        // A connection's requests are handled one after another: no other request of it races this store.
        let previous = connection.terminalId.exchange(terminal.id, ordering: .relaxed)
        terminals.withLock { terminals in
            if previous != 0 { Self.detach(previous, from: &terminals) }
            terminals[terminal.id, default: (role: terminal.role, connections: 0)].connections += 1
        }
    }

    /// Open connections, and terminals with at least one, by role.
    func current() -> (open: Int, terminals: [TerminalRole: Int]) {
        let byRole = terminals.withLock { terminals in
            Dictionary(grouping: terminals.values, by: \.role).mapValues(\.count)
        }
        return (open.load(ordering: .relaxed), byRole)
    }

    private static func detach(_ id: Int64, from terminals: inout [Int64: (role: TerminalRole, connections: Int)]) {
        guard var entry = terminals[id] else { return }
        entry.connections -= 1
        terminals[id] = entry.connections > 0 ? entry : nil
    }
}

/// Sales refused before anything was recorded, by code (`till_sale_refusals_total`): a refusal takes a lock to
/// find its counter; a sale that goes through takes none.
final class SaleRefusals: Sendable {
    private let factory: any MetricsFactory
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])

    init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    func count(_ code: String) {
        counters.withLock { counters in
            if let counter = counters[code] { return counter }
            let counter = CoreMetrics.Counter(label: "till_sale_refusals_total", dimensions: [("code", code)], factory: factory)
            counters[code] = counter
            return counter
        }.increment()
    }
}
