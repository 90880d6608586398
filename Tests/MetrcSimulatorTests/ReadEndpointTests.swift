import CurlHTTP
import Foundation
@testable import MetrcSimulator
import Testing

extension SimulatorOverHTTP {
    @Suite struct AuthenticationAndScope {
        @Test func callsWithoutOrWithWrongKeysAreUnauthorized() async throws {
            try await Harness.run { sim async throws in
                let wrong = Data("sim-vendor-key:not-the-user-key".utf8).base64EncodedString()
                #expect(try await sim.send("GET", "/facilities/v2/", authorization: "Basic \(wrong)").status == 401)
                #expect(try await sim.send("GET", "/facilities/v2/", authorization: "Bearer sim-user-key").status == 401)
                #expect(try await sim.send("GET", "/packages/v2/active?\(Harness.lic)", authorization: "").status == 401)
                #expect(try await sim.get("/facilities/v2/").status == 200)
            }
        }

        @Test func aLicenseTheUserCannotReachIsUnauthorizedAndAMissingOneIsABadRequest() async throws {
            try await Harness.run { sim async throws in
                #expect(try await sim.get("/packages/v2/active?licenseNumber=LIC-OTHER-9999").status == 401)
                let missing = try await sim.get("/packages/v2/active")
                #expect(missing.status == 400)
                #expect(try missing.json["Message"]?.string?.contains("licenseNumber") == true)
            }
        }

        @Test func unknownPathsAre404AndWrongVerbs405() async throws {
            try await Harness.run { sim async throws in
                #expect(try await sim.get("/sales/v1/nothing?\(Harness.lic)").status == 404)
                #expect(try await sim.send("DELETE", "/sales/v2/receipts?\(Harness.lic)").status == 405)
            }
        }
    }
}

extension SimulatorOverHTTP {
    @Suite struct ReferenceData {
        @Test func facilityListSpeaksMetrcsPascalCase() async throws {
            try await Harness.run { sim async throws in
                let response = try await sim.get("/facilities/v2/")
                #expect(response.status == 200)
                let facilities = try #require(try response.json.array)
                #expect(facilities.count == 1)
                let facility = facilities[0]
                #expect(facility["Name"]?.string == "Till Demo Dispensary")
                #expect(facility.keys.contains("DisplayName"))
                let license = try #require(facility["License"])
                #expect(license.keys.contains("Number") && license.keys.contains("LicenseType"))
                #expect(license["Number"]?.string == "LIC-DEMO-0001")
                let type = try #require(facility["FacilityType"])
                for key in ["CanSellToConsumers", "CanSellToPatients", "CanSellToCaregivers", "CanSellToExternalPatients",
                            "CanReportPatientCheckIns", "IsMedical", "IsRetail"] {
                    #expect(type.keys.contains(key), "missing \(key)")
                    #expect(type[key]?.bool == true)
                }
            }
        }

        @Test func unitsAndCustomerTypesComeInTheV2Envelope() async throws {
            try await Harness.run { sim async throws in
                let units = try await sim.get("/unitsofmeasure/v2/active").json
                let names = units["Data"]?.array?.compactMap { $0["Name"]?.string } ?? []
                for name in ["Each", "Grams", "Kilograms", "Milligrams", "Ounces", "Pounds", "Milliliters", "Liters", "Fluid Ounces"] {
                    #expect(names.contains(name), "missing \(name)")
                }
                let grams = units["Data"]?.array?.first { $0["Name"]?.string == "Grams" }
                #expect(grams?["QuantityType"]?.string == "WeightBased")
                #expect(grams?.keys.sorted() == ["Abbreviation", "Name", "QuantityType"])

                let types = try await sim.get("/sales/v2/customertypes").json
                #expect(types["Data"]?.array?.compactMap(\.string) == ["Consumer", "Patient", "Caregiver", "ExternalPatient"])
            }
            try await Harness.run({ $0.referenceListsInEnvelope = false }) { sim async throws in
                #expect(try await sim.get("/sales/v2/customertypes").json.array?.count == 4)
            }
        }
    }
}

extension SimulatorOverHTTP {
    @Suite struct Packages {
        @Test func twentyFivePackagesComeAsPagesOfTwentyAndFive() async throws {
            try await Harness.run { sim async throws in
                let first = try await sim.get("/packages/v2/active?\(Harness.lic)&pageNumber=1&pageSize=20").json
                #expect(first["Data"]?.array?.count == 20)
                #expect(first["Total"]?.int == 25)
                #expect(first["TotalRecords"]?.int == 25)
                #expect(first["PageSize"]?.int == 20)
                #expect(first["RecordsOnPage"]?.int == 20)
                #expect(first["Page"]?.int == 1)
                #expect(first["CurrentPage"]?.int == 1)
                #expect(first["TotalPages"]?.int == 2)
                #expect(first["Data"]?.array?.first?["Label"]?.string == SimFacility.demoLabel(101))

                let second = try await sim.get("/packages/v2/active?\(Harness.lic)&pageNumber=2&pageSize=20").json
                #expect(second["Data"]?.array?.count == 5)
                #expect(second["RecordsOnPage"]?.int == 5)
                #expect(second["CurrentPage"]?.int == 2)
                #expect(second["Data"]?.array?.last?["Label"]?.string == SimFacility.demoLabel(125))

                let unpaged = try await sim.get("/packages/v2/active?\(Harness.lic)").json
                #expect(unpaged["Data"]?.array?.count == 25)
                #expect(unpaged["TotalPages"]?.int == 1)
            }
        }

        @Test func aPageSizeOverTwentyIsRefused() async throws {
            try await Harness.run { sim async throws in
                let response = try await sim.get("/packages/v2/active?\(Harness.lic)&pageNumber=1&pageSize=21")
                #expect(response.status == 400)
                #expect(try response.json["Message"] != nil)
            }
        }

        @Test func aPackageIsFoundByLabelOrIdWithItsItem() async throws {
            try await Harness.run { sim async throws in
                let byLabel = try await sim.get("/packages/v2/\(SimFacility.demoLabel(120))?\(Harness.lic)")
                #expect(byLabel.status == 200)
                let package = try byLabel.json
                #expect(package["Id"]?.int == 5_000_120)
                #expect(package["IsOnHold"]?.bool == true)
                #expect(package["UnitOfMeasureName"]?.string == "Each")
                #expect(package["LastModified"]?.string?.hasSuffix("+00:00") == true)
                let item = try #require(package["Item"])
                for key in ["Name", "ProductCategoryName", "ProductCategoryType", "QuantityType", "UnitOfMeasureName"] {
                    #expect(item.keys.contains(key), "missing Item.\(key)")
                }
                #expect(item["ProductCategoryName"]?.string == "Edible")

                let byID = try await sim.get("/packages/v2/5000121?\(Harness.lic)").json
                #expect(byID["LabTestingState"]?.string == "TestFailed")
                #expect(try await sim.get("/packages/v2/1A4FF0100000022000009999?\(Harness.lic)").status == 404)
            }
        }

        @Test func lastModifiedFiltersMustStayWithinADay() async throws {
            try await Harness.run { sim async throws in
                let wide = "lastModifiedStart=2026-01-01T00:00:00Z&lastModifiedEnd=2026-01-02T00:00:01Z"
                #expect(try await sim.get("/packages/v2/active?\(Harness.lic)&\(wide)").status == 400)
                let now = Date()
                let start = SimDates.utcText(now.addingTimeInterval(-3600)).replacingOccurrences(of: "+", with: "%2B")
                let end = SimDates.utcText(now.addingTimeInterval(60)).replacingOccurrences(of: "+", with: "%2B")
                let recent = try await sim.get("/packages/v2/active?\(Harness.lic)&lastModifiedStart=\(start)&lastModifiedEnd=\(end)")
                #expect(recent.status == 200)
                #expect(try recent.json["Total"]?.int == 25)
                // An unencoded "+" arrives as a space, as on Metrc: the offset is unreadable.
                let raw = SimDates.utcText(now)
                #expect(try await sim.get("/packages/v2/active?\(Harness.lic)&lastModifiedStart=\(raw)&lastModifiedEnd=\(raw)").status == 400)
            }
        }
    }
}
