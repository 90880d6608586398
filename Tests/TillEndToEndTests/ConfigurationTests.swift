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

    /// A keys file for `TILL_METRC_KEYS_FILE`, removed when the test ends.
    final class KeysFile {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("till-keys-\(UUID().uuidString)").path

        init(_ text: String, mode: mode_t) throws {
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, mode)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    let realMetrc = ["TILL_METRC_STATE": "co", "TILL_LICENSE": "403R-X0001", "TILL_TIMEZONE": "America/Denver"]

    @Test func theMetrcKeysComeFromAFileOnlyItsOwnerCanRead() throws {
        let file = try KeysFile("# Metrc keys for 403R-X0001\nvendor = V-123\n\nuser=U-456\n", mode: 0o600)
        let configuration = try TillConfiguration.fromEnvironment(realMetrc.merging(["TILL_METRC_KEYS_FILE": file.path]) { a, _ in a })
        #expect(configuration.vendorKey == "V-123")
        #expect(configuration.userKey == "U-456")
        #expect(configuration.keysFile == file.path)
    }

    @Test func aKeysFileOthersCanReadIsRefusedWithOneLineThatShowsNoKey() throws {
        for mode: mode_t in [0o640, 0o604, 0o660] {
            let file = try KeysFile("vendor=V-SECRET\nuser=U-SECRET\n", mode: mode)
            do {
                _ = try TillConfiguration.fromEnvironment(realMetrc.merging(["TILL_METRC_KEYS_FILE": file.path]) { a, _ in a })
                Issue.record("mode \(String(mode, radix: 8)) was accepted")
            } catch {
                #expect(error.setting == "TILL_METRC_KEYS_FILE")
                #expect(error.description.contains("mode \(String(mode, radix: 8))"), "\(error)")
                #expect(!error.description.contains("SECRET") && !error.description.contains("\n"), "\(error)")
            }
        }
    }

    @Test func keysGivenBothInAFileAndInTheEnvironmentAreRefused() throws {
        let file = try KeysFile("vendor=V\nuser=U\n", mode: 0o600)
        for name in ["TILL_METRC_VENDOR_KEY", "TILL_METRC_USER_KEY"] {
            let environment = realMetrc.merging(["TILL_METRC_KEYS_FILE": file.path, name: "also"]) { a, _ in a }
            #expect(setting(environment) == "TILL_METRC_KEYS_FILE", "\(name)")
        }
    }

    @Test func aKeysFileThatIsMissingOrIncompleteIsNamed() throws {
        let incomplete = try KeysFile("vendor=V\n", mode: 0o600)
        let misspelt = try KeysFile("vendor=V\nusr=U\n", mode: 0o600)
        for path in [incomplete.path, misspelt.path, "/nonexistent/till-keys"] {
            #expect(setting(realMetrc.merging(["TILL_METRC_KEYS_FILE": path]) { a, _ in a }) == "TILL_METRC_KEYS_FILE", "\(path)")
        }
    }
}
