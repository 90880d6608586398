import Foundation
import MetrcSimulator
import Testing

/// `till doctor` as an installer runs it before a store opens: the real binary against the simulator.
@Suite struct DoctorTests {
    /// The doctor's line for `check`, e.g. "FAIL keys          …".
    static func line(_ output: String, _ check: String) -> String? {
        output.split(separator: "\n").map(String.init).first { $0.dropFirst(5).hasPrefix(check + " ") }
    }

    @Test func aGoodInstallPassesEveryCheckAndShowsWhatTheFacilityMayDo() async throws {
        try await TillProcessWorld.run { world in
            let doctor = try await world.command(["doctor"])
            #expect(doctor.status == 0, "\(doctor.output)")
            for check in ["configuration", "metrc", "keys", "facility", "sales", "patients", "deliveries", "clock", "disk",
                          "database", "file modes"] {
                #expect(Self.line(doctor.output, check)?.hasPrefix("ok ") == true, "\(check): \(doctor.output)")
            }
            let facility = try #require(Self.line(doctor.output, "facility"))
            #expect(facility.contains("CanSellToConsumers=true") && facility.contains("CanSellToPatients=true"), "\(facility)")
            // The simulator's demo facility delivers (docs/deliveries.md): the doctor reads its deliveries too.
            #expect(facility.contains("CanDeliverSalesToConsumers=true") && facility.contains("RetailerDelivery=true"), "\(facility)")
            #expect(Self.line(doctor.output, "keys")?.contains(TillHarness.license) == true)
        }
    }

    @Test func wrongKeysFail() async throws {
        try await TillProcessWorld.run { world in
            let doctor = try await world.command(["doctor"], ["TILL_METRC_USER_KEY": "not-the-user-key"])
            #expect(doctor.status == 1)
            let keys = try #require(Self.line(doctor.output, "keys"), "\(doctor.output)")
            #expect(keys.hasPrefix("FAIL ") && keys.contains("HTTP 401"), "\(keys)")
            #expect(!doctor.output.contains("not-the-user-key"))
            #expect(Self.line(doctor.output, "database")?.hasPrefix("ok ") == true, "the other checks still run")
        }
    }

    @Test func aLicenceTheKeysCannotReachFails() async throws {
        try await TillProcessWorld.run { world in
            let doctor = try await world.command(["doctor"], ["TILL_LICENSE": "LIC-ELSEWHERE-0009"])
            #expect(doctor.status == 1)
            let keys = try #require(Self.line(doctor.output, "keys"), "\(doctor.output)")
            #expect(keys.hasPrefix("FAIL ") && keys.contains("LIC-ELSEWHERE-0009") && keys.contains(TillHarness.license), "\(keys)")
        }
    }

    @Test func aReadMetrcRefusesForLackOfPermissionFails() async throws {
        try await TillProcessWorld.run { world in
            await world.simulation.setFaults([SimFault(.status(401, body: #"{"Message":"Authorization has been denied for this request."}"#,
                                                               retryAfterSeconds: nil),
                                                       method: "GET", pathPrefix: "/sales/v2/receipts/active")])
            let doctor = try await world.command(["doctor"])
            #expect(doctor.status == 1)
            let sales = try #require(Self.line(doctor.output, "sales"), "\(doctor.output)")
            #expect(sales.hasPrefix("FAIL ") && sales.contains("HTTP 401") && sales.contains("Authorization has been denied"), "\(sales)")
            #expect(Self.line(doctor.output, "keys")?.hasPrefix("ok ") == true)
        }
    }

    @Test func anUnreachableMetrcFails() async throws {
        try await TillProcessWorld.run { world in
            let doctor = try await world.command(["doctor"], ["TILL_METRC_BASE_URL": "http://127.0.0.1:9"])
            #expect(doctor.status == 1)
            #expect(Self.line(doctor.output, "metrc")?.hasPrefix("FAIL ") == true, "\(doctor.output)")
        }
    }

    @Test func aDatabaseOthersCanReadFails() async throws {
        try await TillProcessWorld.run { world in
            chmod(world.directory + "/till.sqlite", 0o644)
            let doctor = try await world.command(["doctor"])
            #expect(doctor.status == 1)
            let modes = try #require(Self.line(doctor.output, "file modes"), "\(doctor.output)")
            #expect(modes.hasPrefix("FAIL ") && modes.contains("till.sqlite is mode 0644; want 0600"), "\(modes)")
            #expect(FileModeTests.mode(world.directory + "/till.sqlite") == 0o644, "the doctor only looks")
        }
    }

    @Test func keysFromAFileOnlyTillCanReadPassAndFromOneOthersCanReadFail() async throws {
        try await TillProcessWorld.run { world in
            let keys = world.directory + "/metrc.keys"
            let simulator = SimulatorConfiguration()
            try "vendor=\(simulator.vendorKey)\nuser=\(simulator.userKey)\n".write(toFile: keys, atomically: false, encoding: .utf8)
            let fromFile: [String: String?] = ["TILL_METRC_KEYS_FILE": keys, "TILL_METRC_VENDOR_KEY": nil, "TILL_METRC_USER_KEY": nil]
            chmod(keys, 0o600)
            let good = try await world.command(["doctor"], fromFile)
            #expect(good.status == 0, "\(good.output)")
            #expect(Self.line(good.output, "configuration")?.contains("keys from \(keys)") == true, "\(good.output)")
            #expect(Self.line(good.output, "keys")?.hasPrefix("ok ") == true, "\(good.output)")

            chmod(keys, 0o644)
            let open = try await world.command(["doctor"], fromFile)
            #expect(open.status == 1)
            let configuration = try #require(Self.line(open.output, "configuration"), "\(open.output)")
            #expect(configuration.hasPrefix("FAIL ") && configuration.contains("TILL_METRC_KEYS_FILE") && configuration.contains("mode 644"),
                    "\(configuration)")
            #expect(!open.output.contains(simulator.userKey))
            // till serve refuses to start on it, with the same one line.
            let serve = try await world.command(["serve"], fromFile)
            #expect(serve.status == 2)
            #expect(serve.errors.hasPrefix("till: TILL_METRC_KEYS_FILE: ") && serve.errors.contains("mode 644"), "\(serve.errors)")
        }
    }
}
