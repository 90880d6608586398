import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import MetrcKit
import Metrics
import TillDomain
import TillPatients
import TillReporter
import TillStore
import TillMetrics

/// Every long-lived part of a running Till, built once and shared by the routes and the background services.
public struct TillServices: Sendable {
    public let configuration: TillConfiguration
    public let store: TillStore
    public let metrc: any MetrcAPI
    public let health: MetrcHealth
    public let reporter: MetrcReporter
    public let desk: SaleDesk
    public let patients: PatientDirectory
    public let sync: InventorySync
    public let sweep: DuplicateSweep
    public let returns: ReturnDesk
    public let days: DayDesk
    public let deliveries: DeliveryDesk
    public let deliverySweep: DeliverySweep
    public let logger: Logger
    /// What this Till's parts count into, served at `/metrics` and `/v1/metrics`.
    public let metrics: TillMetrics
    let scrapeGauges: ScrapeGauges
    let connections: ConnectionTracker
    let refusals: SaleRefusals

    /// The parts count into `metrics` (made with its factory bound), whatever swift-metrics was bootstrapped with.
    /// A `MetrcClient` is made by the caller: give it the same factory.
    public init(configuration: TillConfiguration, store: TillStore, metrc: any MetrcAPI, logger: Logger,
                reporterSettings: ReporterSettings? = nil, patientSettings: PatientSettings? = nil,
                syncInterval: Duration = .seconds(300), metrics: TillMetrics = TillMetrics(),
                now: @escaping @Sendable () -> Date = Date.init) {
        self = withMetricsFactory(metrics.factory) {
            TillServices(building: configuration, store: store, metrc: metrc, logger: logger,
                         reporterSettings: reporterSettings, patientSettings: patientSettings,
                         syncInterval: syncInterval, metrics: metrics, now: now)
        }
    }

    private init(building configuration: TillConfiguration, store: TillStore, metrc: any MetrcAPI, logger: Logger,
                 reporterSettings: ReporterSettings?, patientSettings: PatientSettings?, syncInterval: Duration,
                 metrics: TillMetrics, now: @escaping @Sendable () -> Date) {
        self.metrics = metrics
        scrapeGauges = ScrapeGauges(registry: metrics.registry)
        refusals = SaleRefusals()
        connections = ConnectionTracker()
        self.configuration = configuration
        self.store = store
        self.metrc = metrc
        self.logger = logger
        health = MetrcHealth()
        var settings = reporterSettings ?? ReporterSettings()
        settings.deadline = reporterSettings?.deadline ?? configuration.reportDeadline
        settings.batchSize = reporterSettings?.batchSize ?? configuration.metrcObjectLimit
        settings.inDoubtWindow = reporterSettings?.inDoubtWindow ?? configuration.inDoubtWindow
        reporter = MetrcReporter(store: store, metrc: metrc, health: health, settings: settings, logger: logger, now: now)
        patients = PatientDirectory(
            metrc: metrc, store: store,
            settings: patientSettings ?? PatientSettings(patience: configuration.reportDeadline,
                                                         stalePolicy: configuration.stalePatientPolicy,
                                                         buckets: configuration.allowanceBuckets),
            timeZone: configuration.timeZone, logger: logger, now: now)
        desk = SaleDesk(store: store, reporter: reporter, patients: patients, license: configuration.license,
                        timeZone: configuration.timeZone, logger: logger, now: now)
        sync = InventorySync(store: store, metrc: metrc, logger: logger, interval: syncInterval)
        sweep = DuplicateSweep(store: store, metrc: metrc, reporter: reporter, timeZone: configuration.timeZone,
                               interval: configuration.sweepInterval, logger: logger, now: now)
        returns = ReturnDesk(store: store, reporter: reporter, metrc: metrc, settings: configuration.returns,
                             license: configuration.license, timeZone: configuration.timeZone, logger: logger, now: now)
        days = DayDesk(store: store, metrc: metrc, reporter: reporter, sweep: sweep, timeZone: configuration.timeZone,
                       finalizeLagDays: configuration.finalizeLagDays, license: configuration.license, logger: logger, now: now)
        deliveries = DeliveryDesk(store: store, reporter: reporter, patients: patients, metrc: metrc, settings: configuration.returns,
                                  license: configuration.license, timeZone: configuration.timeZone,
                                  deadline: settings.deadline, logger: logger, now: now)
        deliverySweep = DeliverySweep(store: store, metrc: metrc, interval: configuration.deliverySweepInterval, logger: logger, now: now)
    }
}

/// The Till server on its Unix socket, with the reporter and inventory sync running beside it.
/// `till serve` and the end-to-end tests both run exactly this.
///
/// - Parameters:
///   - runReporter: false leaves the journal alone, and sweeps nothing (tests that build a backlog first).
///   - runSweep: false runs no duplicate sweep (tests that count Metrc's requests).
public func buildApplication(services: TillServices, runReporter: Bool = true,
                             runSweep: Bool = true) throws -> some ApplicationProtocol {
    let router = Router(context: TillRequestContext.self)
    let routes = RouteTable()
    router.add(middleware: JSONErrorMiddleware(routes: routes))
    router.add(middleware: TerminalAuthMiddleware(store: services.store, connections: services.connections,
                                                  publicPaths: ["/v1/health", "/v1/openapi.json"]))
    Routes(services: services).add(to: router)
    DeliveryRoutes(services: services).add(to: router)
    routes.load(router.routes.map { (path: $0.path.description, method: $0.method.rawValue) })

    var console: [any Service] = []
    if let address = services.configuration.consoleAddress {
        let urlFile = (services.configuration.dataDirectory as NSString).appendingPathComponent("console.url")
        let logger = services.logger
        console.append(Console.application(services: services, host: address.host, port: address.port, logger: services.logger) { url in
            // Kept beside the database, as the simulator's address is, for tools and tests run beside `till serve`.
            try? url.write(toFile: urlFile, atomically: true, encoding: .utf8)
            logger.info("manager's console listening", metadata: ["url": "\(url)"])
            FileHandle.standardOutput.write(Data("Manager's console: \(url)\n".utf8))
        })
    }
    let socketPath = services.configuration.socketPath
    try FileManager.default.createDirectory(atPath: (socketPath as NSString).deletingLastPathComponent,
                                            withIntermediateDirectories: true)
    // A socket file left by a killed server would make bind fail.
    if FileManager.default.fileExists(atPath: socketPath) { try FileManager.default.removeItem(atPath: socketPath) }
    let logger = services.logger
    return Application(
        router: router,
        server: .pinnedToEventLoops(connections: services.connections),
        configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "Till"),
        services: (runReporter ? [services.reporter] : []) + [services.sync] + (runReporter && runSweep ? [services.sweep, services.deliverySweep] : [])
            + console,
        onServerRunning: { _ in
            // Registers and staff tools share a group with Till; nobody else may talk to it.
            chmod(socketPath, 0o660)
            logger.info("Till listening", metadata: ["socket": "\(socketPath)"])
        },
        logger: logger)
}
