import ArgumentParser
import CMalloc
import CurlHTTP
import Foundation
import Hummingbird
import Logging
import MetrcKit
import MetrcSimulator
import Metrics
import ServiceLifecycle
import TillAPI
import TillDomain
import TillMetrics
import TillReporter
import TillStore

@main
struct Till: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "till",
        abstract: "Point-of-sale back-end that reports every sale to Metrc exactly once.",
        subcommands: [Serve.self, Sim.self, Sync.self, Migrate.self, Terminals.self, Status.self, Day.self, Audit.self,
                      Doctor.self, Backup.self],
        defaultSubcommand: Serve.self)
}

// MARK: - Shared start-up

enum Startup {
    static let simulatorURLFile = "simulator.url"

    /// glibc hands the free top of a thread's heap back to the kernel once it passes 128 KiB, and a sale's
    /// allocations crossed that line about once per sale: ~1,300 `madvise` calls a second with 8 registers,
    /// each flushing both cores' TLBs (~4% of Till's CPU). Freed memory is kept for reuse up to 32 MiB a heap.
    static func keepFreedHeapMemory() {
        _ = mallopt(M_TRIM_THRESHOLD, 32 << 20)
    }

    static func bootstrapLogging(_ configuration: TillConfiguration) {
        let level = configuration.logLevel
        switch configuration.logFormat {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        }
    }

    /// The settings, or one line naming the bad setting and exit status 2.
    static func configuration() throws -> TillConfiguration {
        do {
            return try TillConfiguration.fromEnvironment(ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("till: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    /// Opens (creating and migrating if needed) the database, with the data folder 0700 and its files 0600.
    static func openStore(_ configuration: TillConfiguration, logger: Logger? = nil) throws -> TillStore {
        try secureFiles(configuration, logger: logger)
        let store = try TillStore(path: configuration.databasePath)
        try secureFiles(configuration, logger: logger)  // SQLite may just have created the files
        return store
    }

    /// Closes the data folder and the database files to other users; what cannot be closed is logged, or
    /// said on stderr by a command that has no log.
    static func secureFiles(_ configuration: TillConfiguration, logger: Logger? = nil) throws {
        // Files Till creates from here on (the database, its WAL, the simulator's URL) are its user's only;
        // the socket is opened to the registers' group once it listens.
        umask(0o077)
        for problem in try StoreFiles.secure(folder: configuration.dataDirectory, database: configuration.databasePath) {
            if let logger {
                logger.warning("\(problem)")
            } else {
                FileHandle.standardError.write(Data("till: warning: \(problem)\n".utf8))
            }
        }
    }

    static func metrcClient(_ configuration: TillConfiguration, baseURL: String, logger: Logger) -> MetrcClient {
        var metrc = MetrcConfiguration(baseURL: baseURL, vendorKey: configuration.vendorKey, userKey: configuration.userKey,
                                       licenseNumber: configuration.license, timeZone: configuration.timeZone)
        metrc.maxObjectsPerRequest = configuration.metrcObjectLimit
        metrc.requestTimeout = configuration.metrcTimeout
        return MetrcClient(configuration: metrc, transport: CurlHTTPClient(), logger: logger)
    }

    /// True when a live server accepts connections on the socket (a stale file left by a killed one does not).
    static func somethingAnswers(onSocket path: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(MemoryLayout.size(ofValue: address.sun_path) - 1))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return connected == 0
    }

    /// For commands run beside `till serve`: the real Metrc, or the simulator that `till serve` started.
    static func metrcForTool(_ configuration: TillConfiguration, logger: Logger) throws -> MetrcClient {
        guard let url = metrcURLForTool(configuration) else {
            FileHandle.standardError.write(Data("till: TILL_METRC_BASE_URL: not set, and no simulator is running (start `till serve` first)\n".utf8))
            throw ExitCode(2)
        }
        return metrcClient(configuration, baseURL: url, logger: logger)
    }

    /// The configured Metrc's URL, or the one `till serve` wrote for the simulator it started; nil when neither.
    static func metrcURLForTool(_ configuration: TillConfiguration) -> String? {
        if let url = configuration.metrcBaseURL { return url }
        let file = (configuration.dataDirectory as NSString).appendingPathComponent(simulatorURLFile)
        guard let url = try? String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
              !url.isEmpty else { return nil }
        return url
    }
}

// MARK: - serve

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Till on its Unix socket (with the bundled Metrc simulator unless a Metrc is configured).")

    func run() async throws {
        Startup.keepFreedHeapMemory()
        let configuration = try Startup.configuration()
        Startup.bootstrapLogging(configuration)
        let logger = Logger(label: "till")
        // Two servers on one database would break the per-patient serialization and the outbox leases.
        if Startup.somethingAnswers(onSocket: configuration.socketPath) {
            let refusal = "TILL_SOCKET: another till serve is already answering on \(configuration.socketPath)"
            if configuration.logFormat == .json {
                logger.critical("\(refusal)")  // a log shipper reads only JSON lines
            } else {
                FileHandle.standardError.write(Data("till: \(refusal)\n".utf8))
            }
            throw ExitCode(2)
        }
        let store = try Startup.openStore(configuration, logger: logger)
        // Before anything that counts is made: a metric made earlier would count into nothing.
        let metrics = TillMetrics()
        MetricsSystem.bootstrap(metrics.factory)

        var simulator: RunningSimulator? = nil
        let baseURL: String
        if let url = configuration.metrcBaseURL {
            baseURL = url
        } else {
            let simulation = MetrcSimulation(configuration: SimulatorConfiguration())
            let running = try await MetrcSimulatorServer.start(simulation: simulation, logger: Logger(label: "metrc-sim"))
            simulator = running
            baseURL = running.baseURL
            try baseURL.write(toFile: (configuration.dataDirectory as NSString).appendingPathComponent(Startup.simulatorURLFile),
                              atomically: true, encoding: .utf8)
        }
        let metrc = Startup.metrcClient(configuration, baseURL: baseURL, logger: logger)
        let services = TillServices(configuration: configuration, store: store, metrc: metrc, logger: logger, metrics: metrics)
        do {
            try await services.sync.syncOnce(full: true)  // also catches packages finished or archived in Metrc
        } catch {
            logger.warning("first inventory sync failed; selling from local stock", metadata: ["error": "\(error)"])
        }
        await services.patients.refreshFacility()

        if simulator != nil {
            // The demo gets a fresh register token each start (only token hashes are stored, so an old one
            // cannot be shown again); the tokens of earlier starts are revoked, not left live.
            try store.revokeTerminals(namePrefix: "demo-register")
            let (_, token) = try store.addTerminal(name: "demo-register-\(Int(Date().timeIntervalSince1970))", role: .register)
            let label = try store.sellablePackages().first { $0.unit == "Grams" && $0.quantity >= 10 }?.label ?? "LABEL"
            // Written unbuffered: a piped stdout must see the token while the server runs.
            FileHandle.standardOutput.write(Data("""
                Till is running against the bundled Metrc simulator at \(baseURL) (facility \(configuration.license)).
                Socket: \(configuration.socketPath)
                Register token: \(token)

                Make a sale:
                  curl --unix-socket \(configuration.socketPath) -H 'Authorization: Bearer \(token)' \\
                    -H 'Content-Type: application/json' http://till/v1/sales \\
                    -d '{"clientSaleId":"demo-1","customerType":"Consumer","lines":[{"packageLabel":"\(label)","quantity":3.5,"unit":"Grams","totalAmount":35.00}]}'
                See stock:   curl --unix-socket \(configuration.socketPath) -H 'Authorization: Bearer \(token)' http://till/v1/packages
                Check a patient (demo patients PT-ACTIVE-0001, PT-INACTIVE-0002, PT-EXPIRED-0003, PT-LOW-0004):
                  curl --unix-socket \(configuration.socketPath) -H 'Authorization: Bearer \(token)' http://till/v1/patients/PT-ACTIVE-0001/status

                """.utf8))
        }
        let app = try buildApplication(services: services)
        try await app.runService()
        await simulator?.stop()
    }
}

// MARK: - sim

struct Sim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the bundled Metrc simulator on loopback.")

    @Option(help: "TCP port on 127.0.0.1 (0 picks a free one).")
    var port: Int = 8123

    func run() async throws {
        Startup.bootstrapLogging(try Startup.configuration())
        let simulation = MetrcSimulation(configuration: SimulatorConfiguration())
        let server = MetrcSimulatorServer(simulation: simulation, host: "127.0.0.1", port: port,
                                          logger: Logger(label: "metrc-sim"))
        let defaults = SimulatorConfiguration()
        try await server.run { url in
            print("""
                Metrc simulator at \(url)
                  vendor key \(defaults.vendorKey), user key \(defaults.userKey), license \(TillConfiguration.demoLicense)
                  faults: POST \(url)/_sim/faults  e.g. [{"status":503,"pathPrefix":"/sales","seconds":30}]
                """)
        }
    }
}

// MARK: - sync, migrate

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Pull active packages from Metrc into the local store.")

    @Flag(help: "Pull everything, not only what changed since the last sync.")
    var full = false

    func run() async throws {
        let configuration = try Startup.configuration()
        Startup.bootstrapLogging(configuration)
        let logger = Logger(label: "till")
        let store = try Startup.openStore(configuration)
        let metrc = try Startup.metrcForTool(configuration, logger: logger)
        let report = try await InventorySync(store: store, metrc: metrc, logger: logger).syncOnce(full: full)
        print("\(report.full ? "full" : "incremental") sync: \(report.packages) packages from Metrc; \(try store.packageCount()) active locally")
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the database migrations in Migrations/sql.")

    func run() async throws {
        let configuration = try Startup.configuration()
        try Startup.secureFiles(configuration)
        let applied = try TillStore.migrate(path: configuration.databasePath)
        try Startup.secureFiles(configuration)
        print("\(configuration.databasePath): \(applied.joined(separator: ", "))")
    }
}

// MARK: - terminals

struct Terminals: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage register and staff terminals.",
                                                    subcommands: [Add.self, List.self, Revoke.self, Rotate.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a terminal; its token is the last line printed.")
        @Argument var name: String
        @Option(help: "register, pharmacist, manager or driver") var role: String = "register"

        func run() async throws {
            guard let role = TerminalRole(rawValue: role) else {
                throw ValidationError("--role must be register, pharmacist, manager or driver")
            }
            let store = try Startup.openStore(try Startup.configuration())
            do {
                let (terminal, token) = try store.addTerminal(name: name, role: role)
                print("added \(terminal.name) (\(terminal.role.rawValue)); its token is shown once:")
                print(token)
            } catch let error as TillError {
                FileHandle.standardError.write(Data("till: \(error.message)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List terminals.")
        func run() async throws {
            let store = try Startup.openStore(try Startup.configuration())
            for terminal in try store.terminals() {
                print("\(terminal.name)\t\(terminal.role.rawValue)\t\(terminal.revoked ? "revoked" : "active")")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a terminal's token.")
        @Argument var name: String
        func run() async throws {
            let store = try Startup.openStore(try Startup.configuration())
            guard try store.revokeTerminal(name: name) else {
                FileHandle.standardError.write(Data("till: no active terminal named \(name)\n".utf8))
                throw ExitCode(1)
            }
            print("revoked \(name)")
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a terminal a new token and void its old one; the new token is the last line printed.")
        @Argument var name: String
        func run() async throws {
            let store = try Startup.openStore(try Startup.configuration())
            guard let (terminal, token) = try store.rotateTerminal(name: name) else {
                FileHandle.standardError.write(Data("till: no active terminal named \(name)\n".utf8))
                throw ExitCode(1)
            }
            print("rotated \(terminal.name) (\(terminal.role.rawValue)); its old token no longer works, the new one is shown once:")
            print(token)
        }
    }
}

// MARK: - status

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show what Till still owes Metrc and what Metrc refused.")

    func run() async throws {
        let configuration = try Startup.configuration()
        let store = try Startup.openStore(configuration)
        let summary = try store.reportingSummary()
        let journal = try store.journalSummary()
        let returns = try store.returnCounts()
        let durability = try store.durabilitySettings()
        let formatter = ISO8601DateFormatter()
        print("facility:        \(configuration.license) (\(configuration.timeZone.identifier))")
        print("database:        \(configuration.databasePath) journal=\(durability.journalMode) synchronous=\(durability.synchronous)")
        print("pending report:  \(summary.pending)" + (summary.oldestPendingSoldAt.map { " (oldest sold \(formatter.string(from: $0)))" } ?? ""))
        print("last reported:   \(summary.lastReportedAt.map(formatter.string(from:)) ?? "never")")
        if let error = summary.lastError { print("last Metrc error: \(error)") }
        print("rejected by Metrc: \(summary.rejected.count)")
        for sale in summary.rejected {
            print("  sale \(sale.id) receipt \(sale.receiptNumber) (\(sale.salesDateTime), \(sale.totalAmount)): \((sale.rejection ?? []).joined(separator: "; "))")
        }
        let byKind = journal.pendingByKind.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }
        print("Metrc writes owed: \(journal.pending)" + (byKind.isEmpty ? "" : " (\(byKind.joined(separator: ", ")))")
            + (journal.blocked > 0 ? "; \(journal.blocked) held back by a refused write" : ""))
        if !journal.inDoubt.isEmpty {
            print("in doubt (sent again only once Metrc cannot apply them any more, and only if not found): \(journal.inDoubt.count)")
            for row in journal.inDoubt {
                let age = row.attemptStartedAt.map { " for \(Int(Date().timeIntervalSince($0))) s" } ?? ""
                print("  \(row.kind.rawValue) \(row.subject)\(age)" + (row.lastError.map { ": \($0)" } ?? ""))
            }
        }
        print("refused by Metrc: \(journal.refused.count)")
        for row in journal.refused {
            print("  \(row.kind.rawValue) \(row.subject): \((row.refusal ?? []).joined(separator: "; "))")
        }
        if journal.duplicatesArchived > 0 { print("duplicates archived by the sweep: \(journal.duplicatesArchived)") }
        print("returns owed to Metrc: \(returns.pending); refused by Metrc: \(returns.rejected)")
        if summary.pending > 0 || !summary.rejected.isEmpty || journal.pending > 0 || !journal.refused.isEmpty {
            throw ExitCode(1)
        }
    }
}

// MARK: - day

struct Day: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The manager's day.", subcommands: [Close.self])

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Close a business day: finalize its receipts in Metrc once nothing blocks it.",
            discussion: """
                Lists every blocker and exits 1 while anything blocks the close (writes of the day owed or in doubt, \
                differences with Metrc: see GET /v1/days/DATE and its repair). Otherwise journals the finalizes and \
                shows their progress until Metrc holds them all; `till serve`, if it runs, sends them, else this \
                command does. Asking again resumes a close under way.
                """)

        @Argument(help: "The facility-local business day, YYYY-MM-DD.") var date: String

        func run() async throws {
            let configuration = try Startup.configuration()
            Startup.bootstrapLogging(configuration)
            let logger = Logger(label: "till")
            let store = try Startup.openStore(configuration)
            let metrc = try Startup.metrcForTool(configuration, logger: logger)
            let services = TillServices(configuration: configuration, store: store, metrc: metrc, logger: logger)
            let close: DayClose
            do {
                switch try await services.days.close(date, by: "cli") {
                case .blocked(let blockers):
                    print("The day \(date) cannot close yet:")
                    for blocker in blockers { print("  \(blocker.kind) \(blocker.subject): \(blocker.message)") }
                    throw ExitCode(1)
                case .closing(let closing):
                    close = closing
                }
            } catch let error as TillError {
                FileHandle.standardError.write(Data("till: \(error.message)\n".utf8))
                throw ExitCode(2)
            }
            if close.finalizeAfter > Date() {
                print("The day \(date) is closing: \(close.receipts) receipt(s) to finalize from \(close.finalizeAfter.formatted(.iso8601)).")
                return
            }
            // `till serve` sends what was journaled; without it, this process does.
            let serverRuns = Startup.somethingAnswers(onSocket: configuration.socketPath)
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(600)
            var current = close
            while current.closedAt == nil && current.refused == 0 && clock.now < deadline {
                FileHandle.standardOutput.write(Data("\rclosing \(date): \(current.finalized) of \(current.receipts) receipt(s) finalized in Metrc".utf8))
                if serverRuns {
                    try await Task.sleep(for: .milliseconds(500))
                } else if await services.reporter.drainOnce() == 0 {
                    try await Task.sleep(for: .milliseconds(200))
                }
                current = try store.dayClose(businessDate: date) ?? current
            }
            print("\rclosing \(date): \(current.finalized) of \(current.receipts) receipt(s) finalized in Metrc")
            if current.refused > 0 {
                print("Metrc refused \(current.refused) finalize(s): see `till status`.")
                throw ExitCode(1)
            }
            guard current.closedAt != nil else {
                print("Not closed yet: Metrc has not taken every finalize. Run this again to follow it.")
                throw ExitCode(1)
            }
            print("The day \(date) is closed.")
        }
    }
}

// MARK: - audit

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the audit log.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the audit log's hash chain; exits 1 naming the first event edited, deleted or moved.")

        func run() async throws {
            let store = try Startup.openStore(try Startup.configuration())
            switch try store.verifyAuditLog() {
            case .intact(let events, let head):
                print("audit log intact: \(events) events checked"
                      + (head.map { "; the last is event \($0.id), hash \($0.hash)" } ?? ""))
            case .broken(let found):
                print("audit log broken: \(found.explanation); the \(found.intactBefore) events before it are intact")
                throw ExitCode(1)
            }
        }
    }
}

// MARK: - backup

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the database to PATH while Till runs: one consistent snapshot, checked, mode 0600.",
        discussion: "Restore a copy with Till stopped: see README, \"Backups and restore\".")

    @Argument(help: "Where the copy goes; refused if the file exists, unless --force.") var path: String
    @Flag(help: "Replace PATH if it exists.") var force = false

    func run() async throws {
        let configuration = try Startup.configuration()
        umask(0o077)
        do {
            let copy = try TillStore.backup(databaseAt: configuration.databasePath, to: path, overwrite: force)
            print("backed up \(configuration.databasePath) to \(path): \(copy.sales) sales, \(copy.owedToMetrc) writes "
                  + "owed to Metrc, \(copy.auditEvents) audit events, \(Doctor.bytes(copy.bytes)); integrity_check ok")
        } catch let error as BackupError {
            FileHandle.standardError.write(Data("till: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
