import Foundation
import Testing
import TillAPI
import TillPatients

/// Start-up settings: every missing or invalid one is named in the single line `till` prints.
@Suite struct ConfigurationTests {
    func setting(_ environment: [String: String]) -> String? {
        do {
            _ = try TillConfiguration.fromEnvironment(environment)
            return nil
        } catch {
            return error.setting
        }
    }

    @Test func withNoMetrcConfiguredTheBundledSimulatorsDefaultsApply() throws {
        let configuration = try TillConfiguration.fromEnvironment([:])
        #expect(configuration.usesEmbeddedSimulator)
        #expect(configuration.license == TillConfiguration.demoLicense)
        #expect(configuration.socketPath == ".till/till.sock")
        #expect(configuration.reportDeadline == .milliseconds(2000))
        #expect(configuration.stalePatientPolicy == .refuse)
        #expect(configuration.metrcObjectLimit == 10)
        #expect(try TillConfiguration.fromEnvironment(["TILL_METRC_OBJECT_LIMIT": "5"]).metrcObjectLimit == 5)
    }

    @Test func aStateGivesMetrcsBaseURLAndTheSandboxItsOwn() throws {
        let real = ["TILL_LICENSE": "403R-X0001", "TILL_TIMEZONE": "America/Denver",
                    "TILL_METRC_VENDOR_KEY": "v", "TILL_METRC_USER_KEY": "u"]
        #expect(try TillConfiguration.fromEnvironment(real.merging(["TILL_METRC_STATE": "co"]) { a, _ in a }).metrcBaseURL
                == "https://api-co.metrc.com")
        #expect(try TillConfiguration.fromEnvironment(real.merging(["TILL_METRC_STATE": "CO", "TILL_METRC_SANDBOX": "true"]) { a, _ in a })
            .metrcBaseURL == "https://sandbox-api-co.metrc.com")
        #expect(try TillConfiguration.fromEnvironment(real.merging(["TILL_METRC_STATE": "co", "TILL_METRC_BASE_URL": "http://127.0.0.1:9/"]) { a, _ in a })
            .metrcBaseURL == "http://127.0.0.1:9")
    }

    @Test func eachMissingOrInvalidSettingIsNamed() {
        let real = ["TILL_METRC_STATE": "co", "TILL_LICENSE": "403R-X0001", "TILL_TIMEZONE": "America/Denver",
                    "TILL_METRC_VENDOR_KEY": "v", "TILL_METRC_USER_KEY": "u"]
        for required in ["TILL_LICENSE", "TILL_TIMEZONE", "TILL_METRC_VENDOR_KEY", "TILL_METRC_USER_KEY"] {
            #expect(setting(real.filter { $0.key != required }) == required)
        }
        let broken: [(String, String)] = [
            ("TILL_TIMEZONE", "Mars/Olympus"), ("TILL_METRC_STATE", "zz"), ("TILL_METRC_SANDBOX", "maybe"),
            ("TILL_METRC_BASE_URL", "ftp://metrc"), ("TILL_REPORT_DEADLINE_MS", "soon"),
            ("TILL_REPORT_DEADLINE_MS", "0"), ("TILL_PATIENT_STALE_POLICY", "sometimes"),
            ("TILL_ALLOWANCE_CATEGORIES", "Buds=leaves"),
            ("TILL_SOCKET", "/tmp/" + String(repeating: "s", count: 120)), ("TILL_LOG_LEVEL", "loud"),
            ("TILL_METRC_OBJECT_LIMIT", "0"), ("TILL_METRC_OBJECT_LIMIT", "ten"), ("TILL_LOG_FORMAT", "xml"),
        ]
        for (name, value) in broken {
            #expect(setting(real.merging([name: value]) { _, new in new }) == name, "\(name)=\(value)")
        }
    }

    @Test func aConfigFileAddsToTheEnvironmentWhichWins() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("till-\(UUID().uuidString).env").path
        try "# facility\nTILL_LICENSE=FROM-FILE\nTILL_REPORT_DEADLINE_MS=750\nTILL_LOG_LEVEL=debug\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let configuration = try TillConfiguration.fromEnvironment(["TILL_CONFIG": file, "TILL_REPORT_DEADLINE_MS": "900"])
        #expect(configuration.license == "FROM-FILE")
        #expect(configuration.reportDeadline == .milliseconds(900))
        #expect(configuration.logLevel == .debug)
    }

    @Test func logsAreTextUnlessJSONIsAskedFor() throws {
        #expect(try TillConfiguration.fromEnvironment([:]).logFormat == .text)
        #expect(try TillConfiguration.fromEnvironment(["TILL_LOG_FORMAT": "JSON"]).logFormat == .json)
    }
}
