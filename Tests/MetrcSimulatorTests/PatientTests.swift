import CurlHTTP
import Foundation
@testable import MetrcSimulator
import Testing

/// A Patient (or Caregiver, or ExternalPatient) receipt dated at `clock`'s present in the demo's zone.
private func patientReceipt(_ lines: [(suffix: Int, quantity: String, unit: String)], patient: String?,
                            caregiver: String? = nil, type: String = "Patient", clock: TestClock) -> String {
    let at = SimDates.localText(clock.now, in: TimeZone(identifier: "America/Denver")!)
    var extra = patient.map { #","PatientLicenseNumber":"\#($0)""# } ?? ""
    if let caregiver { extra += #","CaregiverLicenseNumber":"\#(caregiver)""# }
    return receipt(lines, salesDateTime: at, customerType: type, extra: extra)
}

private func statusOf(_ sim: Harness, _ patient: String) async throws -> JSON {
    let response = try await sim.get("/patients/v2/statuses/\(patient)?\(Harness.lic)")
    try #require(response.status == 200, "\(response.text)")
    return try #require(try response.json.array?.first, "no status in \(response.text)")
}

private func dec(_ text: String) -> Decimal { Decimal(string: text)! }

extension SimulatorOverHTTP {
    @Suite struct PatientStatus {
        @Test func aPatientsStatusIsAOneElementArrayInMetrcsPascalCase() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                let response = try await sim.get("/patients/v2/statuses/PT-ACTIVE-0001?\(Harness.lic)")
                #expect(response.status == 200)
                let statuses = try #require(try response.json.array)
                #expect(statuses.count == 1)
                let status = statuses[0]
                // Keys compared as a set (the parser sorts them); the order Metrc writes shows in the text.
                #expect(response.text.hasPrefix(#"[{"PatientLicenseNumber":"PT-ACTIVE-0001","RegistrationNumber":"REG-0001","Active":true,"#))
                #expect(response.text.hasSuffix(#""InfusedOuncesAllowed":1,"InfusedOuncesPurchased":0,"InfusedOuncesAvailable":1}]"#))
                #expect(status.keys.sorted() == [
                    "PatientLicenseNumber", "RegistrationNumber", "Active", "PatientLicenseExpirationDate",
                    "PatientRegistrationStartDate", "IdentificationMethod", "PurchaseAmountDays",
                    "FlowerOuncesAllowed", "FlowerOuncesPurchased", "FlowerOuncesAvailable",
                    "ThcOuncesAllowed", "ThcOuncesPurchased", "ThcOuncesAvailable",
                    "ConcentrateOuncesAllowed", "ConcentrateOuncesPurchased", "ConcentrateOuncesAvailable",
                    "InfusedOuncesAllowed", "InfusedOuncesPurchased", "InfusedOuncesAvailable",
                ].sorted())
                #expect(status["PatientLicenseNumber"]?.string == "PT-ACTIVE-0001")
                #expect(status["RegistrationNumber"]?.string == "REG-0001")
                #expect(status["Active"]?.bool == true)
                #expect(status["PatientRegistrationStartDate"]?.string == "2026-01-01")
                #expect(status["PatientLicenseExpirationDate"]?.string == "2027-12-31")
                #expect(status["IdentificationMethod"]?.string == "Drivers License")
                #expect(status["PurchaseAmountDays"]?.int == 30)
                #expect(status["FlowerOuncesAllowed"]?.number == dec("2.5"))
                #expect(status["FlowerOuncesPurchased"]?.number == 0)
                #expect(status["FlowerOuncesAvailable"]?.number == dec("2.5"))
                #expect(status["ConcentrateOuncesAvailable"]?.number == dec("0.5"))
                #expect(status["InfusedOuncesAvailable"]?.number == 1)
                #expect(status["ThcOuncesAllowed"]?.number == 1)

                // Metrc keeps answering Active for an expired card: the client must read the date.
                let expired = try await statusOf(sim, "PT-EXPIRED-0003")
                #expect(expired["Active"]?.bool == true)
                #expect(expired["PatientLicenseExpirationDate"]?.string == "2026-01-31")
                #expect(try await statusOf(sim, "PT-INACTIVE-0002")["Active"]?.bool == false)
                #expect(try await statusOf(sim, "PT-LOW-0004")["FlowerOuncesAllowed"]?.number == dec("0.25"))
            }
        }

        @Test func anUnknownPatientIsAnEmptyListOrTheConfiguredStatus() async throws {
            try await Harness.run { sim async throws in
                let response = try await sim.get("/patients/v2/statuses/PT-NOBODY-9999?\(Harness.lic)")
                #expect(response.status == 200)
                #expect(try response.json == .array([]))
                #expect(try await sim.get("/patients/v2/statuses/PT-ACTIVE-0001").status == 400)  // no licenseNumber
            }
            try await Harness.run({ $0.unknownPatientStatus = 404 }) { sim async throws in
                let response = try await sim.get("/patients/v2/statuses/PT-NOBODY-9999?\(Harness.lic)")
                #expect(response.status == 404)
                #expect(try response.json["Message"]?.string?.contains("PT-NOBODY-9999") == true)
            }
        }

        @Test func aCaregiversStatusListsItsPatientsAndAnUnknownOneIs404() async throws {
            try await Harness.run { sim async throws in
                let response = try await sim.get("/caregivers/v2/status/CG-ACTIVE-0001?\(Harness.lic)")
                #expect(response.status == 200)
                let caregiver = try response.json
                #expect(response.text == #"{"CaregiverLicenseNumber":"CG-ACTIVE-0001","Active":true,"Patients":["PT-ACTIVE-0001","PT-LINKED-0005"]}"#)
                #expect(caregiver.keys.sorted() == ["Active", "CaregiverLicenseNumber", "Patients"])
                #expect(caregiver["CaregiverLicenseNumber"]?.string == "CG-ACTIVE-0001")
                #expect(caregiver["Active"]?.bool == true)
                #expect(caregiver["Patients"]?.array?.compactMap(\.string) == ["PT-ACTIVE-0001", "PT-LINKED-0005"])
                #expect(try await sim.get("/caregivers/v2/status/CG-INACTIVE-0002?\(Harness.lic)").json["Active"]?.bool == false)

                let unknown = try await sim.get("/caregivers/v2/status/CG-NOBODY-9999?\(Harness.lic)")
                #expect(unknown.status == 404)
                #expect(try unknown.json["Message"] != nil)
            }
        }

        @Test func aPurchaseShowsOnlyOnceTheOneMinuteCacheHasExpiredAndExactly() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                #expect(try await statusOf(sim, "PT-ACTIVE-0001")["FlowerOuncesPurchased"]?.number == 0)

                // 3.5 g of flower, 2 pre-rolls of 1 g (flower), a 0.5 g cartridge, 3 gummies of 0.1 g.
                let body = array([patientReceipt([(101, "3.5", "Grams"), (106, "2", "Each"), (109, "1", "Each"),
                                                  (110, "3", "Each")], patient: "PT-ACTIVE-0001", clock: clock)])
                let posted = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                #expect(posted.status == 200, "\(posted.text)")

                clock.advance(by: 59)
                let cached = try await statusOf(sim, "PT-ACTIVE-0001")
                #expect(cached["FlowerOuncesPurchased"]?.number == 0)
                #expect(cached["FlowerOuncesAvailable"]?.number == dec("2.5"))

                clock.advance(by: 1)
                let fresh = try await sim.get("/patients/v2/statuses/PT-ACTIVE-0001?\(Harness.lic)")
                // 5.5 g ÷ 28.349523125 = 0.194006790…, rounded to 6 places; written from Decimal digits.
                #expect(fresh.text.contains(#""FlowerOuncesPurchased":0.194007,"FlowerOuncesAvailable":2.305993"#))
                let status = try #require(try fresh.json.array?.first)
                #expect(status["FlowerOuncesPurchased"]?.number == dec("0.194007"))
                #expect(status["FlowerOuncesAvailable"]?.number == dec("2.305993"))
                #expect(status["ConcentrateOuncesPurchased"]?.number == dec("0.017637"))
                #expect(status["ConcentrateOuncesAvailable"]?.number == dec("0.482363"))
                #expect(status["InfusedOuncesPurchased"]?.number == dec("0.010582"))
                #expect(status["InfusedOuncesAvailable"]?.number == dec("0.989418"))
                #expect(status["ThcOuncesPurchased"]?.number == 0)
            }
        }

        @Test func volumesCountAtTheConfiguredGramsPerMillilitreAgainstTheAllowanceTheirCategoryMapsTo() async throws {
            let clock = TestClock()
            try await Harness.run({ configuration in
                configuration.allowanceGramsPerMilliliter = Decimal(string: "0.01")!
                configuration.patientAllowanceCategories["Tincture"] = .thc
                configuration.statusCacheSeconds = 0  // every status computed afresh
            }, now: { clock.now }) { sim async throws in
                #expect(try await statusOf(sim, "PT-ACTIVE-0001")["ThcOuncesPurchased"]?.number == 0)
                // 0.1 L of bulk tincture (100 mL) and one 30 mL bottle: 130 mL at 0.01 g/mL = 1.3 g of THC.
                let body = array([patientReceipt([(113, "0.1", "Liters"), (112, "1", "Each")], patient: "PT-ACTIVE-0001",
                                                 clock: clock)])
                let posted = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                #expect(posted.status == 200, "\(posted.text)")
                let status = try await statusOf(sim, "PT-ACTIVE-0001")  // not the answer cached before the sale
                #expect(status["ThcOuncesPurchased"]?.number == dec("0.045856"))
                #expect(status["ThcOuncesAvailable"]?.number == dec("0.954144"))
                #expect(status["InfusedOuncesPurchased"]?.number == 0)

                // 300 mL is 3 g: more than PT-LOW-0004's 0.1 oz (2.8349523125 g) of THC.
                let tooMuch = array([patientReceipt([(113, "0.3", "Liters")], patient: "PT-LOW-0004", clock: clock)])
                let refused = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: tooMuch)
                #expect(refused.status == 400)
                #expect(refused.text.contains("THC allowance would be exceeded"), "\(refused.text)")
            }
        }

        @Test func volumesCountNothingWhenNoGramsPerMillilitreIsConfigured() async throws {
            let clock = TestClock()
            try await Harness.run({ $0.statusCacheSeconds = 0 }, now: { clock.now }) { sim async throws in
                let body = array([patientReceipt([(113, "0.1", "Liters"), (112, "1", "Each")], patient: "PT-ACTIVE-0001",
                                                 clock: clock)])
                #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body).status == 200)
                let status = try await statusOf(sim, "PT-ACTIVE-0001")
                #expect(status["InfusedOuncesPurchased"]?.number == 0)
                #expect(status["ThcOuncesPurchased"]?.number == 0)
            }
        }

        @Test func threeAndAHalfGramsOfFlowerIsPointOneTwoThreeFourFiveNineOunces() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                let body = array([patientReceipt([(101, "3.5", "Grams")], patient: "PT-ACTIVE-0001", clock: clock)])
                #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body).status == 200)
                let status = try await statusOf(sim, "PT-ACTIVE-0001")
                #expect(status["FlowerOuncesPurchased"]?.number == dec("0.123459"))
                #expect(status["FlowerOuncesAvailable"]?.number == dec("2.376541"))

                // Archived receipts no longer count; purchases older than PurchaseAmountDays neither.
                let id = try #require(await sim.simulation.receipts(license: Harness.license).first?.id)
                #expect(try await sim.send("DELETE", "/sales/v2/receipts/\(id)?\(Harness.lic)").status == 200)
                let old = SimDates.localText(clock.now.addingTimeInterval(-31 * 86_400), in: TimeZone(identifier: "America/Denver")!)
                let stale = array([receipt([(101, "3.5", "Grams")], salesDateTime: old, customerType: "Patient",
                                           extra: #","PatientLicenseNumber":"PT-ACTIVE-0001""#)])
                #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: stale).status == 200)
                clock.advance(by: 60)
                #expect(try await statusOf(sim, "PT-ACTIVE-0001")["FlowerOuncesPurchased"]?.number == 0)
            }
        }

        @Test func aCaregiversStatusIsCachedForAMinuteToo() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                #expect(try await sim.get("/caregivers/v2/status/CG-ACTIVE-0001?\(Harness.lic)").json["Active"]?.bool == true)
                await sim.simulation.addCaregiver(
                    SimCaregiver(licenseNumber: "CG-ACTIVE-0001", active: false, patientLicenseNumbers: []),
                    license: Harness.license)
                clock.advance(by: 30)
                #expect(try await sim.get("/caregivers/v2/status/CG-ACTIVE-0001?\(Harness.lic)").json["Active"]?.bool == true)
                clock.advance(by: 30)
                let fresh = try await sim.get("/caregivers/v2/status/CG-ACTIVE-0001?\(Harness.lic)").json
                #expect(fresh["Active"]?.bool == false)
                #expect(fresh["Patients"]?.array == [])
            }
        }

        @Test func statusRequestsAreCountedPerLicenseFaultsIncluded() async throws {
            try await Harness.run { sim async throws in
                await sim.simulation.addFault(SimFault(.status(503, body: "<html>down</html>", retryAfterSeconds: nil),
                                                       pathPrefix: "/patients/v2/statuses", times: 1))
                #expect(try await sim.get("/patients/v2/statuses/PT-ACTIVE-0001?\(Harness.lic)").status == 503)
                #expect(try await sim.get("/patients/v2/statuses/PT-ACTIVE-0001?\(Harness.lic)").status == 200)
                #expect(try await sim.get("/patients/v2/statuses/PT-ACTIVE-0001?\(Harness.lic)").status == 200)  // cached
                #expect(try await sim.get("/patients/v2/statuses/PT-LOW-0004?\(Harness.lic)").status == 200)
                #expect(try await sim.get("/caregivers/v2/status/CG-ACTIVE-0001?\(Harness.lic)").status == 200)

                #expect(await sim.simulation.statusRequestCount(patient: "PT-ACTIVE-0001") == 3)
                #expect(await sim.simulation.statusRequestCount(patient: "pt-active-0001") == 3)
                #expect(await sim.simulation.statusRequestCount(patient: "PT-LOW-0004") == 1)
                #expect(await sim.simulation.statusRequestCount(patient: "PT-LINKED-0005") == 0)
                #expect(await sim.simulation.statusRequestCount(caregiver: "CG-ACTIVE-0001") == 1)
                #expect(await sim.simulation.statusRequestCount(caregiver: "PT-ACTIVE-0001") == 0)

                await sim.simulation.resetCounters()
                #expect(await sim.simulation.statusRequestCount(patient: "PT-ACTIVE-0001") == 0)
            }
        }

        @Test func theAdminEndpointShowsLivePurchasesWhileClientsSeeTheCache() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                _ = try await statusOf(sim, "PT-LOW-0004")
                let body = array([patientReceipt([(101, "3.5", "Grams")], patient: "PT-LOW-0004", clock: clock)])
                #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body).status == 200)
                #expect(try await statusOf(sim, "PT-LOW-0004")["FlowerOuncesPurchased"]?.number == 0)

                let admin = try await sim.client.send(HTTPRequest(method: "GET", url: sim.running.baseURL + "/_sim/patients")).json
                let low = try #require(admin.array?.first { $0["PatientLicenseNumber"]?.string == "PT-LOW-0004" })
                #expect(low["License"]?.string == Harness.license)
                #expect(low["FlowerOuncesPurchased"]?.number == dec("0.123459"))
                #expect(low["FlowerOuncesAvailable"]?.number == dec("0.126541"))
                #expect(low["StatusRequests"]?.int == 2)
                #expect(admin.array?.count == 5)
            }
        }
    }
}

extension SimulatorOverHTTP {
    @Suite struct PatientSales {
        struct Refusal: Sendable, CustomTestStringConvertible {
            var name: String
            var type: String
            var patient: String
            var caregiver: String?
            var lines: [(suffix: Int, quantity: String, unit: String)]
            var message: String
            var testDescription: String { name }
        }

        static let refusals: [Refusal] = [
            Refusal(name: "inactive patient", type: "Patient", patient: "PT-INACTIVE-0002",
                    lines: [(101, "1", "Grams")], message: "Patient PT-INACTIVE-0002 is not active."),
            Refusal(name: "expired registration", type: "Patient", patient: "PT-EXPIRED-0003",
                    lines: [(101, "1", "Grams")], message: "Patient PT-EXPIRED-0003's registration expired on 2026-01-31."),
            Refusal(name: "unregistered patient", type: "Patient", patient: "PT-NOBODY-9999",
                    lines: [(101, "1", "Grams")], message: "Patient PT-NOBODY-9999 is not a registered patient."),
            Refusal(name: "caregiver not linked", type: "Caregiver", patient: "PT-LOW-0004", caregiver: "CG-ACTIVE-0001",
                    lines: [(101, "1", "Grams")], message: "Caregiver CG-ACTIVE-0001 is not linked to patient PT-LOW-0004."),
            Refusal(name: "inactive caregiver", type: "Caregiver", patient: "PT-ACTIVE-0001", caregiver: "CG-INACTIVE-0002",
                    lines: [(101, "1", "Grams")], message: "Caregiver CG-INACTIVE-0002 is not active."),
            Refusal(name: "over the flower allowance", type: "Patient", patient: "PT-LOW-0004",
                    lines: [(101, "5", "Grams"), (106, "3", "Each")],
                    message: "Patient PT-LOW-0004's Flower allowance would be exceeded: 0.25 oz allowed, "
                        + "0 oz purchased in the last 30 days, this sale 0.282192 oz."),
            Refusal(name: "over the infused allowance", type: "Patient", patient: "PT-LOW-0004",
                    lines: [(111, "29", "Each")],
                    message: "Patient PT-LOW-0004's Infused allowance would be exceeded: 0.1 oz allowed, "
                        + "0 oz purchased in the last 30 days, this sale 0.102294 oz."),
        ]

        @Test(arguments: refusals)
        func aRefusedPatientSaleNamesItsReasonAndAppliesNothing(_ refusal: Refusal) async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                let body = array([patientReceipt(refusal.lines, patient: refusal.patient, caregiver: refusal.caregiver,
                                                 type: refusal.type, clock: clock)])
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                #expect(response.status == 400)
                let errors = try #require(try response.json.array)
                #expect(errors.count == 1, "\(response.text)")
                #expect(errors.first?["row"]?.int == 0)
                #expect(errors.first?["message"]?.string == refusal.message)
                #expect(await sim.simulation.receipts(license: Harness.license).isEmpty)
                #expect(await sim.quantity(101) == 448)
                #expect(await sim.quantity(106) == 100)
                #expect(await sim.quantity(111) == 50)
            }
        }

        @Test func theAllowanceCountsLivePurchasesNotTheCachedStatus() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                func post(_ grams: String) async throws -> HTTPResponse {
                    try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)",
                                       json: array([patientReceipt([(101, grams, "Grams")], patient: "PT-LOW-0004", clock: clock)]))
                }
                // PT-LOW-0004 may buy 0.25 oz = 7.08738078125 g of flower.
                _ = try await statusOf(sim, "PT-LOW-0004")
                #expect(try await post("5").status == 200)
                let refused = try await post("2.5")
                #expect(refused.status == 400)
                // The refusal counts the 5 g just sold, while the status a client reads still shows none.
                #expect(try refused.json.array?.first?["message"]?.string
                    == "Patient PT-LOW-0004's Flower allowance would be exceeded: 0.25 oz allowed, "
                    + "0.17637 oz purchased in the last 30 days, this sale 0.088185 oz.")
                #expect(try await statusOf(sim, "PT-LOW-0004")["FlowerOuncesAvailable"]?.number == dec("0.25"))
                #expect(try await post("2.08738").status == 200)  // 7.08738 g: within 7.08738078125
                #expect(try await post("0.000001").status == 400)
                #expect(await sim.quantity(101) == dec("440.91262"))

                clock.advance(by: 60)
                let status = try await statusOf(sim, "PT-LOW-0004")
                #expect(status["FlowerOuncesPurchased"]?.number == dec("0.25"))
                #expect(status["FlowerOuncesAvailable"]?.number == 0)
            }
        }

        @Test func receiptsInOneRequestShareTheAllowance() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                let one = patientReceipt([(101, "4", "Grams")], patient: "PT-LOW-0004", clock: clock)
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: array([one, one]))
                #expect(response.status == 400)
                #expect(try response.json.array?.compactMap { $0["row"]?.int } == [1])
                #expect(await sim.quantity(101) == 448)
            }
        }

        @Test func anEditDoesNotCountTheReceiptItReplaces() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                let sale = patientReceipt([(101, "7", "Grams")], patient: "PT-LOW-0004", clock: clock)
                let posted = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: array([sale]))
                let id = try #require(try posted.json["Ids"]?.array?.first?.int)
                let edit = patientReceipt([(101, "7", "Grams")], patient: "PT-LOW-0004", clock: clock)
                    .replacingOccurrences(of: #""Transactions""#, with: #""Id":\#(id),"Transactions""#)
                let response = try await sim.send("PUT", "/sales/v2/receipts?\(Harness.lic)", json: array([edit]))
                #expect(response.status == 200, "\(response.text)")
                let greedy = edit.replacingOccurrences(of: #""Quantity":7"#, with: #""Quantity":7.1"#)
                #expect(try await sim.send("PUT", "/sales/v2/receipts?\(Harness.lic)", json: array([greedy])).status == 400)
            }
        }

        @Test func linkedCaregiverAndExternalPatientSalesGoThroughAndCountForThePatient() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                let body = array([
                    patientReceipt([(101, "3.5", "Grams")], patient: "PT-LINKED-0005", caregiver: "CG-ACTIVE-0001",
                                   type: "Caregiver", clock: clock),
                    patientReceipt([(101, "3.5", "Grams")], patient: "OUT-OF-STATE-77", type: "ExternalPatient", clock: clock),
                ])
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                #expect(response.status == 200, "\(response.text)")
                let status = try await statusOf(sim, "PT-LINKED-0005")
                #expect(status["FlowerOuncesPurchased"]?.number == dec("0.123459"))

                // A Caregiver sale needs both numbers.
                let missing = patientReceipt([(101, "1", "Grams")], patient: nil, caregiver: "CG-ACTIVE-0001",
                                             type: "Caregiver", clock: clock)
                let refused = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: array([missing]))
                #expect(try refused.json.array?.first?["message"]?.string == "PatientLicenseNumber is required for a Caregiver sale.")
            }
        }

        @Test func limitsAreNotEnforcedWhenSwitchedOff() async throws {
            let clock = TestClock()
            try await Harness.run({ $0.enforcePatientLimits = false }, now: { clock.now }) { sim async throws in
                let body = array([patientReceipt([(101, "28", "Grams")], patient: "PT-LOW-0004", clock: clock)])
                #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body).status == 200)
                let status = try await statusOf(sim, "PT-LOW-0004")
                #expect(status["FlowerOuncesPurchased"]?.number == dec("0.987671"))
                #expect(status["FlowerOuncesAvailable"]?.number == 0)
            }
        }

        @Test func aFacilityThatCannotSellToPatientsRefusesThem() async throws {
            let clock = TestClock()
            try await Harness.run({ $0.facilities[0].canSellToPatients = false }, now: { clock.now }) { sim async throws in
                let body = array([patientReceipt([(101, "1", "Grams")], patient: "PT-ACTIVE-0001", clock: clock)])
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                #expect(response.status == 400)
                #expect(try response.json.array?.first?["message"]?.string?.contains("cannot sell to customer type Patient") == true)
            }
        }
    }
}

extension SimulatorOverHTTP {
    @Suite struct CheckIns {
        private static let denver = TimeZone(identifier: "America/Denver")!

        private func checkIn(_ patient: String, location: Int = 1, date: String = "2026-11-18",
                             extra: String = "") -> String {
            #"{"PatientLicenseNumber":"\#(patient)","CheckInLocationId":\#(location),"CheckInDate":"\#(date)"\#(extra)}"#
        }

        @Test func locationsComeInTheEnvelopeOrBare() async throws {
            try await Harness.run { sim async throws in
                let envelope = try await sim.get("/patient-checkins/v2/locations").json
                #expect(envelope["Total"]?.int == 2)
                let locations = try #require(envelope["Data"]?.array)
                #expect(locations.first?.keys == ["Id", "Name"])
                #expect(locations.compactMap { $0["Name"]?.string } == ["Front desk", "Pharmacy window"])
                #expect(locations.compactMap { $0["Id"]?.int } == [1, 2])
                #expect(try await sim.get("/patient-checkins/v2/locations?\(Harness.lic)").json["Total"]?.int == 2)
            }
            try await Harness.run({ $0.referenceListsInEnvelope = false }) { sim async throws in
                let bare = try await sim.get("/patient-checkins/v2/locations").json
                #expect(bare.array?.compactMap { $0["Name"]?.string } == ["Front desk", "Pharmacy window"])
            }
        }

        @Test func postedCheckInsAreListedDeletedAndEdited() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                let body = array([
                    checkIn("PT-ACTIVE-0001", extra: #","RegistrationStartDate":"2026-01-01","RegistrationExpiryDate":"2027-12-31""#),
                    checkIn("pt-low-0004", location: 2, date: "2026-11-17"),
                ])
                let response = try await sim.send("POST", "/patient-checkins/v2/?\(Harness.lic)", json: body)
                #expect(response.status == 200, "\(response.text)")
                let answer = try response.json
                #expect(answer["Ids"]?.array?.compactMap(\.int) == [3_000_001, 3_000_002])
                #expect(answer.keys.contains("Warnings") && answer["Warnings"] == .null)
                let third = try await sim.send("POST", "/patient-checkins/v2?\(Harness.lic)", json: array([checkIn("PT-LINKED-0005")]))
                #expect(try third.json["Ids"]?.array?.compactMap(\.int) == [3_000_003])

                let list = try await sim.get("/patient-checkins/v2?\(Harness.lic)").json
                #expect(list["Total"]?.int == 3)
                let first = try #require(list["Data"]?.array?.first)
                #expect(first.keys.sorted() == ["CheckInDate", "CheckInLocationId", "CheckInLocationName", "Id",
                                                "PatientLicenseNumber", "RegistrationExpiryDate", "RegistrationStartDate"])
                #expect(try await sim.get("/patient-checkins/v2?\(Harness.lic)&pageNumber=1&pageSize=1").text.hasPrefix(
                    #"{"Data":[{"Id":3000001,"PatientLicenseNumber":"PT-ACTIVE-0001","CheckInDate":"2026-11-18","CheckInLocationId":1,"CheckInLocationName":"Front desk","RegistrationStartDate":"2026-01-01","RegistrationExpiryDate":"2027-12-31"}],"Total":3"#))
                #expect(first["CheckInLocationName"]?.string == "Front desk")
                #expect(first["RegistrationExpiryDate"]?.string == "2027-12-31")
                let second = try #require(list["Data"]?.array?[1])
                #expect(second["PatientLicenseNumber"]?.string == "PT-LOW-0004")  // as the registry spells it
                #expect(second["CheckInLocationName"]?.string == "Pharmacy window")
                #expect(second["RegistrationStartDate"]?.string == "2026-01-01")     // taken from the registry

                let day = try await sim.get("/patient-checkins/v2?\(Harness.lic)&checkinDateStart=2026-11-17&checkinDateEnd=2026-11-17").json
                #expect(day["Data"]?.array?.compactMap { $0["Id"]?.int } == [3_000_002])
                let paged = try await sim.get("/patient-checkins/v2?\(Harness.lic)&pageNumber=2&pageSize=2").json
                #expect(paged["Data"]?.array?.compactMap { $0["Id"]?.int } == [3_000_003])
                #expect(try await sim.get("/patient-checkins/v2?\(Harness.lic)&checkinDateStart=2026-11-17").status == 400)

                #expect(try await sim.send("DELETE", "/patient-checkins/v2/3000001?\(Harness.lic)").status == 200)
                #expect(try await sim.send("DELETE", "/patient-checkins/v2/3000001?\(Harness.lic)").status == 400)
                #expect(try await sim.send("DELETE", "/patient-checkins/v2/3999999?\(Harness.lic)").status == 404)
                #expect(try await sim.get("/patient-checkins/v2?\(Harness.lic)").json["Total"]?.int == 2)
                let stored = await sim.simulation.checkIns(license: Harness.license)
                #expect(stored.map(\.archived) == [true, false, false])

                let edit = #"[{"Id":3000002,"PatientLicenseNumber":"PT-LOW-0004","CheckInLocationId":1,"CheckInDate":"2026-11-18"}]"#
                #expect(try await sim.send("PUT", "/patient-checkins/v2?\(Harness.lic)", json: edit).status == 200)
                let edited = await sim.simulation.checkIns(license: Harness.license)[1]
                #expect(edited.checkInLocationId == 1 && edited.checkInDate == "2026-11-18")
                let archived = #"[{"Id":3000001,"PatientLicenseNumber":"PT-ACTIVE-0001","CheckInLocationId":1,"CheckInDate":"2026-11-18"}]"#
                #expect(try await sim.send("PUT", "/patient-checkins/v2?\(Harness.lic)", json: archived).status == 400)
            }
        }

        @Test func aCheckInForAnUnknownPatientIsRefusedWithItsRowAndNothingIsRecorded() async throws {
            try await Harness.run { sim async throws in
                let body = array([
                    checkIn("PT-ACTIVE-0001"),
                    checkIn("PT-NOBODY-9999"),
                    checkIn("PT-ACTIVE-0001", location: 9),
                    checkIn("PT-ACTIVE-0001", date: "2026-02-30"),
                    #"{"CheckInLocationId":1,"CheckInDate":"2026-11-18"}"#,
                ])
                let response = try await sim.send("POST", "/patient-checkins/v2/?\(Harness.lic)", json: body)
                #expect(response.status == 400)
                let errors = try #require(try response.json.array)
                #expect(errors.compactMap { $0["row"]?.int } == [1, 2, 3, 4])
                #expect(errors[0]["message"]?.string == "Patient PT-NOBODY-9999 is not a registered patient.")
                #expect(errors[1]["message"]?.string?.contains("Check-in location 9") == true)
                #expect(errors[2]["message"]?.string?.contains("CheckInDate") == true)
                #expect(errors[3]["message"]?.string == "PatientLicenseNumber is required.")
                #expect(await sim.simulation.checkIns(license: Harness.license).isEmpty)

                let tooMany = array(Array(repeating: checkIn("PT-ACTIVE-0001"), count: 11))
                #expect(try await sim.send("POST", "/patient-checkins/v2/?\(Harness.lic)", json: tooMany).status == 413)
            }
        }

        @Test func aFacilityThatCannotReportCheckInsRefusesThem() async throws {
            try await Harness.run({ $0.facilities[0].canReportPatientCheckIns = false }) { sim async throws in
                let response = try await sim.send("POST", "/patient-checkins/v2/?\(Harness.lic)", json: array([checkIn("PT-ACTIVE-0001")]))
                #expect(response.status == 400)
                #expect(try response.json.array?.first?["message"]?.string?.contains("cannot report patient check-ins") == true)
                #expect(await sim.simulation.checkIns(license: Harness.license).isEmpty)
            }
        }

        @Test func faultsApplyToCheckInsLikeAnyOtherPath() async throws {
            try await Harness.run { sim async throws in
                await sim.simulation.addFault(SimFault(.status(503, body: nil, retryAfterSeconds: nil),
                                                       method: "POST", pathPrefix: "/patient-checkins", times: 1))
                let body = array([checkIn("PT-ACTIVE-0001")])
                #expect(try await sim.send("POST", "/patient-checkins/v2/?\(Harness.lic)", json: body).status == 503)
                #expect(await sim.simulation.checkIns(license: Harness.license).isEmpty)
                #expect(try await sim.send("POST", "/patient-checkins/v2/?\(Harness.lic)", json: body).status == 200)
                #expect(await sim.simulation.requestCount(method: "POST", pathPrefix: "/patient-checkins") == 2)
            }
        }
    }
}
