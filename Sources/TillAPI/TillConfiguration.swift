import Foundation
import Logging
import TillDomain
import TillPatients
import TillReporter

/// A setting that is missing or wrong; its description is the one line printed before Till refuses to start.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var setting: String
    public var problem: String
    public var description: String { "\(setting): \(problem)" }
}

/// Till's settings, from environment variables (a `TILL_CONFIG` file of KEY=VALUE lines may add to them).
public struct TillConfiguration: Sendable {
    public static let metrcStates: Set<String> = [
        "al", "ca", "co", "dc", "gu", "ky", "la", "ma", "md", "me", "mi", "mn", "mo", "ms", "mt", "nj", "nv", "oh",
        "ok", "or", "ri", "sd", "wv", "il", "ny", "va", "vi",
    ]
    /// What the bundled simulator's demo facility uses; the defaults when no Metrc is configured.
    public static let demoLicense = "LIC-DEMO-0001"
    public static let demoTimeZone = "America/Denver"

    public var dataDirectory: String
    public var socketPath: String
    public var license: String
    public var timeZone: TimeZone
    /// nil: run against the bundled simulator, started in-process.
    public var metrcBaseURL: String?
    public var vendorKey: String
    public var userKey: String
    public var reportDeadline: Duration
    /// Whether a patient status Metrc could not refresh may still authorize a sale.
    public var stalePatientPolicy: StalePatientPolicy = .refuse
    /// Item category → allowance bucket.
    public var allowanceBuckets: CategoryBuckets = .standard
    public var logLevel: Logger.Level = .info
    /// Objects per Metrc write (413 above it): receipts per POST, for fresh sales and the backlog alike.
    public var metrcObjectLimit: Int = 10
    /// One whole Metrc request, connecting included.
    public var metrcTimeout: Duration = .seconds(20)
    /// How long after an attempt began Metrc may still apply it: a write in doubt is sent again only after.
    public var inDoubtWindow: Duration = .seconds(120)
    /// How often the duplicate sweep lists recent receipts in Metrc (also at start).
    public var sweepInterval: Duration = .seconds(300)
    /// How often the delivery sweep looks for deliveries and trips moved on in Metrc behind Till's back.
    public var deliverySweepInterval: Duration = .seconds(60)
    /// Whether a register may take returns (managers always may).
    public var registerReturns = false
    /// Reasons, default disposition and waste adjustment reason for returns.
    public var returns = ReturnSettings()
    /// Days after a day's close that its receipts are finalized in Metrc (stores that expect returns wait).
    public var finalizeLagDays = 0
    /// When the state wants a day's sales reported by: an alert in `/v1/reporting` as that nears.
    public var reportingDeadline: ReportingDeadline = .realTime
    /// The manager's console: a loopback TCP listener (a browser cannot speak to a Unix socket); nil: none.
    public var consoleAddress: (host: String, port: Int)? = ("127.0.0.1", 8088)
    /// How log lines are written to standard error.
    public var logFormat: LogFormat = .text
    /// Where the Metrc keys were read from (`TILL_METRC_KEYS_FILE`), when not from the environment.
    public var keysFile: String?

    /// `text`: swift-log's readable lines; `json`: one JSON object a line, for log shippers.
    public enum LogFormat: String, Sendable, CaseIterable {
        case text, json
    }

    public var databasePath: String { (dataDirectory as NSString).appendingPathComponent("till.sqlite") }
    public var usesEmbeddedSimulator: Bool { metrcBaseURL == nil }

    public init(dataDirectory: String, socketPath: String, license: String, timeZone: TimeZone, metrcBaseURL: String?,
                vendorKey: String, userKey: String, reportDeadline: Duration) {
        self.dataDirectory = dataDirectory
        self.socketPath = socketPath
        self.license = license
        self.timeZone = timeZone
        self.metrcBaseURL = metrcBaseURL
        self.vendorKey = vendorKey
        self.userKey = userKey
        self.reportDeadline = reportDeadline
    }

    /// Reads the settings; the first missing or invalid one is reported by name.
    public static func fromEnvironment(_ environment: [String: String]) throws(ConfigurationError) -> TillConfiguration {
        var env = environment
        if let file = env["TILL_CONFIG"], !file.isEmpty {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError(setting: "TILL_CONFIG", problem: "cannot read \(file)")
            }
            for line in text.split(whereSeparator: \.isNewline) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard !trimmed.isEmpty, !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { continue }
                let key = String(trimmed[..<equals]).trimmingCharacters(in: .whitespaces)
                let value = String(trimmed[trimmed.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
                if env[key] == nil { env[key] = value }  // the environment wins over the file
            }
        }
        func value(_ name: String) -> String? {
            guard let raw = env[name]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
            return raw
        }

        let dataDirectory = value("TILL_DATA_DIR") ?? ".till"
        let socketPath = value("TILL_SOCKET") ?? (dataDirectory as NSString).appendingPathComponent("till.sock")
        guard socketPath.utf8.count < 104 else {
            throw ConfigurationError(setting: "TILL_SOCKET", problem: "the socket path is longer than 103 bytes (a Unix socket limit)")
        }

        var baseURL: String? = nil
        if let url = value("TILL_METRC_BASE_URL") {
            guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme),
                  parsed.host != nil else {
                throw ConfigurationError(setting: "TILL_METRC_BASE_URL", problem: "'\(url)' is not an http(s) URL")
            }
            baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        } else if let state = value("TILL_METRC_STATE")?.lowercased() {
            guard metrcStates.contains(state) else {
                throw ConfigurationError(setting: "TILL_METRC_STATE",
                                         problem: "'\(state)' is not a Metrc state (one of \(metrcStates.sorted().joined(separator: ", ")))")
            }
            let sandbox: Bool
            switch value("TILL_METRC_SANDBOX")?.lowercased() {
            case nil, "0", "false", "no": sandbox = false
            case "1", "true", "yes": sandbox = true
            case let other?: throw ConfigurationError(setting: "TILL_METRC_SANDBOX", problem: "'\(other)' is not true or false")
            }
            baseURL = "https://\(sandbox ? "sandbox-api" : "api")-\(state).metrc.com"
        }

        let usesSimulator = baseURL == nil
        func required(_ name: String, demo: String) throws(ConfigurationError) -> String {
            if let found = value(name) { return found }
            if usesSimulator { return demo }
            throw ConfigurationError(setting: name, problem: "required when Till reports to a real Metrc")
        }
        let license = try required("TILL_LICENSE", demo: demoLicense)
        let zoneName = try required("TILL_TIMEZONE", demo: demoTimeZone)
        guard let timeZone = TimeZone(identifier: zoneName) else {
            throw ConfigurationError(setting: "TILL_TIMEZONE", problem: "'\(zoneName)' is not an IANA time zone name")
        }
        let keysFile = value("TILL_METRC_KEYS_FILE")
        let vendorKey: String, userKey: String
        if let keysFile {
            for name in ["TILL_METRC_VENDOR_KEY", "TILL_METRC_USER_KEY"] where value(name) != nil {
                throw ConfigurationError(setting: "TILL_METRC_KEYS_FILE",
                                         problem: "\(name) is also set; give the keys in one place only")
            }
            (vendorKey, userKey) = try MetrcKeysFile.read(keysFile)
        } else {
            vendorKey = try required("TILL_METRC_VENDOR_KEY", demo: "sim-vendor-key")
            userKey = try required("TILL_METRC_USER_KEY", demo: "sim-user-key")
        }

        var deadline = Duration.milliseconds(2000)
        if let raw = value("TILL_REPORT_DEADLINE_MS") {
            guard let ms = Int(raw), (1...60_000).contains(ms) else {
                throw ConfigurationError(setting: "TILL_REPORT_DEADLINE_MS", problem: "'\(raw)' is not a whole number of milliseconds from 1 to 60000")
            }
            deadline = .milliseconds(ms)
        }
        var configuration = TillConfiguration(dataDirectory: dataDirectory, socketPath: socketPath, license: license,
                                              timeZone: timeZone, metrcBaseURL: baseURL, vendorKey: vendorKey,
                                              userKey: userKey, reportDeadline: deadline)
        configuration.keysFile = keysFile
        if let raw = value("TILL_PATIENT_STALE_POLICY") {
            guard let policy = StalePatientPolicy(rawValue: raw.lowercased()) else {
                throw ConfigurationError(setting: "TILL_PATIENT_STALE_POLICY", problem: "'\(raw)' is not refuse or allow")
            }
            configuration.stalePatientPolicy = policy
        }
        if let raw = value("TILL_ALLOWANCE_CATEGORIES") {
            guard let buckets = CategoryBuckets.parse(raw) else {
                throw ConfigurationError(setting: "TILL_ALLOWANCE_CATEGORIES",
                                         problem: "'\(raw)' is not Category=bucket;… with buckets flower, concentrate, infused, thc")
            }
            configuration.allowanceBuckets = buckets
        }
        if let raw = value("TILL_METRC_OBJECT_LIMIT") {
            guard let limit = Int(raw), (1...100).contains(limit) else {
                throw ConfigurationError(setting: "TILL_METRC_OBJECT_LIMIT", problem: "'\(raw)' is not a whole number from 1 to 100")
            }
            configuration.metrcObjectLimit = limit
        }
        func seconds(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Duration? {
            guard let raw = value(name) else { return nil }
            guard let seconds = Int(raw), range.contains(seconds) else {
                throw ConfigurationError(setting: name, problem: "'\(raw)' is not a whole number of seconds from \(range.lowerBound) to \(range.upperBound)")
            }
            return .seconds(seconds)
        }
        configuration.metrcTimeout = try seconds("TILL_METRC_TIMEOUT_S", in: 1...600) ?? configuration.metrcTimeout
        configuration.inDoubtWindow = try seconds("TILL_METRC_IN_DOUBT_S", in: 1...86_400) ?? configuration.inDoubtWindow
        configuration.sweepInterval = try seconds("TILL_SWEEP_INTERVAL_S", in: 1...86_400) ?? configuration.sweepInterval
        configuration.deliverySweepInterval = try seconds("TILL_DELIVERY_SWEEP_INTERVAL_S", in: 1...86_400)
            ?? configuration.deliverySweepInterval
        // A fresh sale's attempt counts from its journaling and is sent within the deadline; it can land until
        // the request times out. Re-sending before then could make a duplicate.
        guard configuration.inDoubtWindow > configuration.metrcTimeout + configuration.reportDeadline else {
            throw ConfigurationError(setting: "TILL_METRC_IN_DOUBT_S",
                                     problem: "must be longer than TILL_METRC_TIMEOUT_S plus TILL_REPORT_DEADLINE_MS "
                                         + "(\(configuration.metrcTimeout + configuration.reportDeadline)), or a request still "
                                         + "in flight could land after its re-send")
        }
        if let raw = value("TILL_REGISTER_RETURNS") {
            switch raw.lowercased() {
            case "1", "true", "yes": configuration.registerReturns = true
            case "0", "false", "no": configuration.registerReturns = false
            default: throw ConfigurationError(setting: "TILL_REGISTER_RETURNS", problem: "'\(raw)' is not true or false")
            }
        }
        if let raw = value("TILL_RETURN_DISPOSITION") {
            guard let disposition = ReturnDisposition(rawValue: raw.lowercased()) else {
                throw ConfigurationError(setting: "TILL_RETURN_DISPOSITION", problem: "'\(raw)' is not restock, quarantine or waste")
            }
            configuration.returns.defaultDisposition = disposition
        }
        if let raw = value("TILL_RETURN_REASONS") {
            let reasons = raw.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !reasons.isEmpty, reasons.allSatisfy({ $0.count <= 100 }) else {
                throw ConfigurationError(setting: "TILL_RETURN_REASONS", problem: "'\(raw)' is not a list of reasons separated by ';'")
            }
            configuration.returns.reasons = reasons
        }
        if let raw = value("TILL_WASTE_ADJUST_REASON") {
            configuration.returns.wasteAdjustReason = raw
        }
        if let raw = value("TILL_FINALIZE_LAG_DAYS") {
            guard let days = Int(raw), (0...30).contains(days) else {
                throw ConfigurationError(setting: "TILL_FINALIZE_LAG_DAYS", problem: "'\(raw)' is not a whole number of days from 0 to 30")
            }
            configuration.finalizeLagDays = days
        }
        configuration.reportingDeadline = ReportingDeadline.forState(value("TILL_METRC_STATE"))
        if let raw = value("TILL_REPORTING_DEADLINE") {
            guard let deadline = ReportingDeadline(raw) else {
                throw ConfigurationError(setting: "TILL_REPORTING_DEADLINE",
                                         problem: "'\(raw)' is not now, a number of hours (24h) or next-day-HH:MM (next-day-08:00)")
            }
            configuration.reportingDeadline = deadline
        }
        if let raw = value("TILL_CONSOLE_ADDR") {
            if raw.lowercased() == "off" {
                configuration.consoleAddress = nil
            } else {
                let parts = raw.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count == 2, let port = Int(parts[1]), (0...65_535).contains(port),
                      ["127.0.0.1", "localhost", "::1"].contains(String(parts[0])) else {
                    throw ConfigurationError(setting: "TILL_CONSOLE_ADDR",
                                             problem: "'\(raw)' is not a loopback HOST:PORT (127.0.0.1:8088), or off")
                }
                configuration.consoleAddress = (String(parts[0]) == "localhost" ? "127.0.0.1" : String(parts[0]), port)
            }
        }
        if let raw = value("TILL_LOG_LEVEL") {
            guard let level = Logger.Level(rawValue: raw.lowercased()) else {
                throw ConfigurationError(setting: "TILL_LOG_LEVEL", problem: "'\(raw)' is not one of "
                                         + Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))
            }
            configuration.logLevel = level
        }
        if let raw = value("TILL_LOG_FORMAT") {
            guard let format = LogFormat(rawValue: raw.lowercased()) else {
                throw ConfigurationError(setting: "TILL_LOG_FORMAT", problem: "'\(raw)' is not text or json")
            }
            configuration.logFormat = format
        }
        return configuration
    }
}

/// The two Metrc keys kept in a file of their own (`TILL_METRC_KEYS_FILE`), so that they stay out of the
/// environment, which other processes of the same user, crash reports and `systemctl show` can read.
enum MetrcKeysFile {
    /// `vendor=…` and `user=…` lines; blank lines and `#` comments are skipped. Refused unless only its owner
    /// may read it. No problem names a key's value: the line printed for a refusal may end up in a log.
    static func read(_ path: String) throws(ConfigurationError) -> (vendor: String, user: String) {
        func refuse(_ problem: String) -> ConfigurationError {
            ConfigurationError(setting: "TILL_METRC_KEYS_FILE", problem: problem)
        }
        var status = stat()
        guard stat(path, &status) == 0 else { throw refuse("cannot read \(path) (\(String(cString: strerror(errno))))") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw refuse("\(path) is not a regular file") }
        let mode = status.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw refuse("\(path) is mode \(String(mode, radix: 8)), open to group or others; chmod 600 it")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw refuse("cannot read \(path)") }
        var keys: [String: String] = [:]
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
            guard let equals = trimmed.firstIndex(of: "="),
                  case let name = trimmed[..<equals].trimmingCharacters(in: .whitespaces).lowercased(),
                  name == "vendor" || name == "user" else {
                throw refuse("line \(number + 1) of \(path) is not vendor=<key> or user=<key>")
            }
            guard keys[name] == nil else { throw refuse("\(path) gives \(name)= twice") }
            let key = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw refuse("\(name)= is empty in \(path)") }
            keys[name] = key
        }
        guard let vendor = keys["vendor"] else { throw refuse("\(path) has no vendor= line") }
        guard let user = keys["user"] else { throw refuse("\(path) has no user= line") }
        return (vendor, user)
    }
}
