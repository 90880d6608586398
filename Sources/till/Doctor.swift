import ArgumentParser
import CurlHTTP
import Foundation
import Logging
import MetrcKit
import TillAPI
import TillStore

// MARK: - doctor

/// `till doctor`: what an installer or support checks before a store opens, one line per check.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the configuration, Metrc, the keys and the licence, the clock, the disk, the database and "
            + "its file modes; one line per check, exit status 1 if any fails.")

    /// Below this the disk counts as full for Till's purposes: the database grows, and a backup needs as much again.
    static let minimumFreeBytes: UInt64 = 512 << 20
    /// How far Till's clock may be from Metrc's: SalesDateTime is Till's clock, and Metrc files a sale by it.
    static let clockTolerance: TimeInterval = 60

    func run() async throws {
        var report = DoctorReport()
        defer { report.print() }
        let configuration: TillConfiguration
        do {
            configuration = try TillConfiguration.fromEnvironment(ProcessInfo.processInfo.environment)
        } catch {
            report.fail("configuration", "\(error)")
            throw ExitCode(1)
        }
        let metrcName = configuration.metrcBaseURL ?? "the bundled simulator"
        report.ok("configuration", "data folder \(configuration.dataDirectory), licence \(configuration.license) "
                  + "(\(configuration.timeZone.identifier)), Metrc \(metrcName), keys from "
                  + (configuration.keysFile ?? "the environment"))

        var logger = Logger(label: "till-doctor")
        logger.logLevel = .critical  // the checks say what went wrong, once
        if let (client, url) = Self.metrc(configuration, logger: logger) {
            await MetrcChecks(metrc: client, url: url, license: configuration.license).run(into: &report)
        } else {
            report.skip("metrc", "none configured and no till serve running its simulator; Metrc checks skipped")
        }
        Self.checkDisk(configuration, into: &report)
        Self.checkDatabase(configuration, into: &report)
        Self.checkFileModes(configuration, into: &report)
        if report.failed { throw ExitCode(1) }
    }

    /// The configured Metrc, or the simulator a running `till serve` started; nil when there is neither.
    static func metrc(_ configuration: TillConfiguration, logger: Logger) -> (client: MetrcClient, baseURL: String)? {
        guard let url = Startup.metrcURLForTool(configuration) else { return nil }
        // A simulator's URL left by a `till serve` that has stopped names nothing.
        if configuration.usesEmbeddedSimulator && !Startup.somethingAnswers(onSocket: configuration.socketPath) { return nil }
        var settings = configuration
        settings.metrcTimeout = .seconds(10)  // an installer waits at the prompt
        return (Startup.metrcClient(settings, baseURL: url, logger: logger), url)
    }

    static func checkDisk(_ configuration: TillConfiguration, into report: inout DoctorReport) {
        var stats = statvfs()
        guard statvfs(configuration.dataDirectory, &stats) == 0 else {
            report.fail("disk", "cannot read the free space at \(configuration.dataDirectory): \(String(cString: strerror(errno)))")
            return
        }
        let free = UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
        let total = UInt64(stats.f_blocks) * UInt64(stats.f_frsize)
        let text = "\(bytes(free)) free of \(bytes(total)) at \(configuration.dataDirectory)"
        if free < minimumFreeBytes {
            report.fail("disk", text + "; Till wants at least \(bytes(minimumFreeBytes)) (sales are refused with storage_full when none is left)")
        } else {
            report.ok("disk", text)
        }
    }

    static func checkDatabase(_ configuration: TillConfiguration, into report: inout DoctorReport) {
        let path = configuration.databasePath
        guard FileManager.default.fileExists(atPath: path) else {
            report.fail("database", "none at \(path) (till migrate or till serve creates it)")
            return
        }
        do {
            let problems = try TillStore.integrityProblems(path: path)
            // The WAL holds the latest commits until a checkpoint copies them into the file: both are the database.
            let size = StoreFiles.databaseFiles(path).prefix(2).compactMap { file in
                (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? UInt64) ?? nil
            }.reduce(0, +)
            if problems.isEmpty {
                report.ok("database", "\(path) passes PRAGMA integrity_check (\(bytes(size)) with its WAL)")
            } else {
                report.fail("database", "\(path) fails PRAGMA integrity_check: " + problems.prefix(3).joined(separator: "; ")
                            + (problems.count > 3 ? "; and \(problems.count - 3) more" : ""))
            }
        } catch {
            report.fail("database", "cannot open \(path): \(error)")
        }
    }

    static func checkFileModes(_ configuration: TillConfiguration, into report: inout DoctorReport) {
        let problems = StoreFiles.problems(folder: configuration.dataDirectory, database: configuration.databasePath)
        if problems.isEmpty {
            report.ok("file modes", "the data folder is 0700 and the database files 0600")
        } else {
            report.fail("file modes", problems.joined(separator: "; ") + " (till migrate or the next start sets them)")
        }
    }

    static func bytes(_ count: UInt64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count), unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) bytes" : String(format: "%.1f %@", value, units[unit])
    }
}

/// The checks that ask Metrc: reachable, the keys reach the licence, what the facility may do, the permissions
/// Metrc shows by answering or refusing a read, and the clock.
struct MetrcChecks {
    let metrc: MetrcClient
    let url: String
    let license: String

    func run(into report: inout DoctorReport) async {
        let clock = ContinuousClock()
        let sent = Date()
        let started = clock.now
        let answer = await metrc.probe("/facilities/v2/", facilityScoped: false)
        let elapsed = clock.now - started
        let response: HTTPResponse
        switch answer {
        case .noAnswer(let why):
            report.fail("metrc", "no answer from \(url): \(why)")
            for check in ["keys", "facility", "sales", "patients", "deliveries", "clock"] {
                report.skip(check, "Metrc did not answer")
            }
            return
        case .answered(let answered):
            response = answered
        }
        report.ok("metrc", "\(url) answered GET /facilities/v2/ in \(Int(elapsed / .milliseconds(1))) ms")
        await checkFacility(response, into: &report)
        checkClock(response, sent: sent, elapsed: elapsed, into: &report)
    }

    /// The keys reach the licence, what the facility may do, and what the keys may read for it.
    private func checkFacility(_ response: HTTPResponse, into report: inout DoctorReport) async {

        guard (200..<300).contains(response.status) else {
            report.fail("keys", "Metrc refused GET /facilities/v2/ with HTTP \(response.status)\(Self.message(response)): "
                        + (response.status == 401 || response.status == 403 ? "the vendor or user key is wrong" : "see Metrc's status page"))
            for check in ["facility", "sales", "patients", "deliveries"] { report.skip(check, "the keys did not work") }
            return
        }
        let facilities = Self.list(response.body)
        let numbers = facilities.compactMap { Self.value($0, "License").flatMap { Self.value($0, "Number") } as? String }
        guard let facility = facilities.first(where: { facility in
            (Self.value(facility, "License").flatMap { Self.value($0, "Number") } as? String)
                .map { $0.trimmingCharacters(in: .whitespaces).lowercased() == license.lowercased() } ?? false
        }) else {
            report.fail("keys", "the keys work but do not reach licence \(license); they reach "
                        + (numbers.isEmpty ? "no facility" : numbers.joined(separator: ", ")))
            for check in ["facility", "sales", "patients", "deliveries"] { report.skip(check, "the licence is not reachable") }
            return
        }
        let name = Self.value(facility, "DisplayName") as? String ?? Self.value(facility, "Name") as? String ?? "?"
        let licenseType = Self.value(facility, "License").flatMap { Self.value($0, "LicenseType") } as? String
        report.ok("keys", "they reach licence \(license), \(name)" + (licenseType.map { " (\($0))" } ?? ""))

        // As Metrc gives them: the FacilityType flags that say whom the facility may sell to and deliver to.
        let type = Self.value(facility, "FacilityType") as? [String: Any] ?? [:]
        let customerFlags = Self.flags(type) { $0.hasPrefix("cansellto") }
        let deliveryFlags = Self.flags(type) { $0.contains("deliver") }
        report.ok("facility", "customer types: " + (customerFlags.isEmpty ? "none shown" : Self.text(customerFlags))
                  + "; deliveries: " + (deliveryFlags.isEmpty ? "none shown" : Self.text(deliveryFlags)))

        // Metrc shows a user's permissions only by answering or refusing: one read Till needs per area.
        let now = Date()
        await checkRead("sales", "/sales/v2/receipts/active", query: [
            (name: "lastModifiedStart", value: MetrcLocalTime.filter(now.addingTimeInterval(-3600))),
            (name: "lastModifiedEnd", value: MetrcLocalTime.filter(now)),
            (name: "pageNumber", value: "1"), (name: "pageSize", value: "1"),
        ], into: &report)
        if customerFlags.contains(where: { ($0.key == "CanSellToPatients" || $0.key == "CanSellToCaregivers") && $0.value == "true" }) {
            await checkRead("patients", "/patient-checkins/v2/locations", query: [], into: &report)
        } else {
            report.skip("patients", "the facility sells to no patients or caregivers (" + Self.text(customerFlags) + ")")
        }
        if deliveryFlags.contains(where: { $0.key.lowercased().hasPrefix("candeliver") && $0.value == "true" }) {
            await checkRead("deliveries", "/sales/v2/deliveries/active",
                            query: [(name: "pageNumber", value: "1"), (name: "pageSize", value: "1")], into: &report)
        } else {
            report.skip("deliveries", "the facility may not deliver (" + (deliveryFlags.isEmpty ? "no delivery flags shown" : Self.text(deliveryFlags)) + ")")
        }
    }

    private func checkRead(_ check: String, _ path: String, query: [(name: String, value: String)],
                           into report: inout DoctorReport) async {
        switch await metrc.probe(path, query: query) {
        case .noAnswer(let why):
            report.fail(check, "GET \(path): no answer: \(why)")
        case .answered(let response) where (200..<300).contains(response.status):
            report.ok(check, "Metrc lets these keys read GET \(path)")
        case .answered(let response) where response.status == 401 || response.status == 403:
            report.fail(check, "Metrc refused GET \(path) with HTTP \(response.status)\(Self.message(response)): "
                        + "the user key lacks this permission for licence \(license)")
        case .answered(let response) where response.status == 404:
            report.skip(check, "this Metrc does not offer GET \(path) (HTTP 404)")
        case .answered(let response):
            report.fail(check, "GET \(path) answered HTTP \(response.status)\(Self.message(response))")
        }
    }

    private func checkClock(_ response: HTTPResponse, sent: Date, elapsed: Duration, into report: inout DoctorReport) {
        guard let header = response.headers["date"], let metrcTime = Self.httpDate(header) else {
            report.skip("clock", "Metrc's answer carried no Date header to compare with")
            return
        }
        // Metrc stamped its answer somewhere between sending and receiving; the middle is the best guess.
        let here = sent.addingTimeInterval(Double(elapsed.components.seconds) / 2
                                           + Double(elapsed.components.attoseconds) / 2e18)
        let skew = here.timeIntervalSince(metrcTime)
        let text = "Till's clock is \(Int(abs(skew).rounded())) s \(skew >= 0 ? "ahead of" : "behind") Metrc's (Date: \(header))"
        if abs(skew) > Doctor.clockTolerance + 1 {  // the header has whole seconds
            report.fail("clock", text + "; more than \(Int(Doctor.clockTolerance)) s puts sales at the wrong time in Metrc: set up NTP")
        } else {
            report.ok("clock", text)
        }
    }

    /// An HTTP date (RFC 9110's IMF-fixdate).
    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    /// Metrc's list, bare or in the v2 envelope (`{"Data":[…]}`).
    static func list(_ body: Data) -> [[String: Any]] {
        let json = try? JSONSerialization.jsonObject(with: body)
        if let array = json as? [[String: Any]] { return array }
        if let envelope = json as? [String: Any], let data = value(envelope, "Data") as? [[String: Any]] { return data }
        return []
    }

    /// A member whatever its case: Metrc documents PascalCase and has been seen answering camelCase.
    static func value(_ object: Any, _ key: String) -> Any? {
        guard let object = object as? [String: Any] else { return nil }
        return object[key] ?? object.first { $0.key.lowercased() == key.lowercased() }?.value
    }

    /// The flags whose lower-cased name passes `include`, with their values as Metrc wrote them, by name.
    static func flags(_ type: [String: Any], _ include: (String) -> Bool) -> [(key: String, value: String)] {
        type.filter { include($0.key.lowercased()) }
            .map { (key: $0.key, value: ($0.value as? Bool).map { "\($0)" } ?? "\($0.value)") }
            .sorted { $0.key < $1.key }
    }

    static func text(_ flags: [(key: String, value: String)]) -> String {
        flags.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
    }

    /// Metrc's own words, when it gave a `Message`.
    static func message(_ response: HTTPResponse) -> String {
        guard let json = try? JSONSerialization.jsonObject(with: response.body),
              let message = value(json, "Message") as? String, !message.isEmpty else { return "" }
        return " (\"\(message.prefix(200))\")"
    }
}

/// The doctor's lines, printed together once every check has run.
struct DoctorReport {
    private var lines: [String] = []
    private(set) var failed = false

    mutating func ok(_ check: String, _ detail: String) { add("ok", check, detail) }
    mutating func skip(_ check: String, _ detail: String) { add("skip", check, detail) }
    mutating func fail(_ check: String, _ detail: String) {
        failed = true
        add("FAIL", check, detail)
    }

    private mutating func add(_ status: String, _ check: String, _ detail: String) {
        lines.append(status.padding(toLength: 5, withPad: " ", startingAt: 0)
                     + check.padding(toLength: 14, withPad: " ", startingAt: 0) + detail)
    }

    func print() {
        for line in lines { Swift.print(line) }
    }
}
