import CurlHTTP
import Foundation
@testable import MetrcSimulator
import Testing

extension SimulatorOverHTTP {
    @Suite struct PostingReceipts {
        @Test func postedReceiptsGetIdsInOrderAndTakeExactQuantities() async throws {
            try await Harness.run { sim async throws in
                let body = array([
                    receipt([(101, "3.5", "Grams")], external: "T-1"),
                    receipt([(101, "3500", "Milligrams"), (106, "2", "Each")], external: "T-2"),
                ])
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                #expect(response.status == 200, "\(response.text)")
                let answer = try response.json
                #expect(answer["Ids"]?.array?.compactMap(\.int) == [1_000_001, 1_000_002])
                #expect(answer.keys.contains("Warnings") && answer["Warnings"] == .null)
                #expect(await sim.quantity(101) == Decimal(string: "441"))
                #expect(await sim.quantity(106) == 98)

                // Exact on the wire too: 448 - 3.5 - 3.5 written as digits, never through a Double.
                let package = try await sim.get("/packages/v2/\(SimFacility.demoLabel(101))?\(Harness.lic)")
                #expect(package.text.contains(#""Quantity":441,"#))

                let stored = await sim.simulation.receipts(license: Harness.license)
                #expect(stored.map(\.externalReceiptNumber) == ["T-1", "T-2"])
                #expect(stored[1].transactions.map(\.unitOfMeasure) == ["Milligrams", "Each"])

                let one = try await sim.get("/sales/v2/receipts/1000002?\(Harness.lic)").json
                #expect(one["ExternalReceiptNumber"]?.string == "T-2")
                #expect(one["SalesDateTime"]?.string == "2026-11-22T14:05:00.000")
                #expect(one["TotalPackages"]?.int == 2)
                #expect(one["TotalPrice"]?.number == 25)
                #expect(one["IsFinal"]?.bool == false)
                #expect(one["ArchivedDate"] == .null)
                let line = try #require(one["Transactions"]?.array?.last)
                for key in ["PackageId", "PackageLabel", "ProductName", "ProductCategoryName", "QuantitySold",
                            "UnitOfMeasureName", "TotalPrice"] {
                    #expect(line.keys.contains(key), "missing Transactions[].\(key)")
                }
                #expect(line["PackageId"]?.int == 5_000_106)
                #expect(line["QuantitySold"]?.number == 2)
            }
        }

        @Test func oneInvalidRowRejectsTheWholeRequestAndNamesTheRow() async throws {
            try await Harness.run { sim async throws in
                let body = array([
                    receipt([(101, "3.5", "Grams")]),
                    receipt([(120, "1", "Each")]),  // on hold
                    receipt([(102, "7", "Grams")]),
                ])
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                #expect(response.status == 400)
                let errors = try #require(try response.json.array)
                #expect(errors.count == 1)
                #expect(errors[0]["row"]?.int == 1)
                #expect(errors[0]["message"]?.string?.contains("on hold") == true)
                #expect(await sim.quantity(101) == 448)
                #expect(await sim.quantity(102) == 448)
                #expect(await sim.simulation.receipts(license: Harness.license).isEmpty)
            }
        }

        @Test func everyProblemIsListedWithItsRow() async throws {
            try await Harness.run { sim async throws in
                let body = array([
                    receipt([(121, "1", "Grams")]),                                  // TestFailed
                    receipt([(101, "1", "Grams")], salesDateTime: "2026-11-22T21:05:00Z"),  // has a zone
                    receipt([(101, "1", "Each")]),                                   // count unit on a weight package
                    receipt([(101, "1", "Grams")], customerType: "Patient"),         // no patient number
                    receipt([(113, "1", "Fluid Ounces")]),                           // 29.5735295625 mL: 10 places
                    #"{"SalesDateTime":"2026-11-22T14:05:00","SalesCustomerType":"Consumer","Transactions":[]}"#,
                ])
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                #expect(response.status == 400)
                let rows = try #require(try response.json.array).compactMap { $0["row"]?.int }
                #expect(rows == [0, 1, 2, 3, 4, 5])
                #expect(await sim.simulation.receipts(license: Harness.license).isEmpty)
            }
        }

        @Test func fieldNamesAreReadWhateverTheirCase() async throws {
            try await Harness.run { sim async throws in
                let body = #"[{"salesDateTime":"2026-11-22T14:05:00","salesCustomerType":"Patient","patientLicenseNumber":"pt-active-0001","transactions":[{"packageLabel":"\#(SimFacility.demoLabel(104))","quantity":1.25,"unitOfMeasure":"grams","totalAmount":10}]}]"#
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                #expect(response.status == 200, "\(response.text)")
                #expect(await sim.quantity(104) == Decimal(string: "26.75"))
            }
        }

        @Test func elevenReceiptsInOneRequestAreTooMany() async throws {
            try await Harness.run { sim async throws in
                let body = array(Array(repeating: receipt([(101, "1", "Grams")]), count: 11))
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                #expect(response.status == 413)
                #expect(try response.json["Message"] != nil)
                #expect(await sim.quantity(101) == 448)
                #expect(try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: "[]").status == 400)
            }
        }

        @Test func sellingMoreThanIsLeftAcrossTheRequestIsRefused() async throws {
            try await Harness.run { sim async throws in
                let body = array([receipt([(110, "6", "Each")]), receipt([(110, "5", "Each")])])
                let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: body)
                #expect(response.status == 400)
                let errors = try #require(try response.json.array)
                #expect(errors.compactMap { $0["row"]?.int } == [1])
                #expect(await sim.quantity(110) == 10)
            }
        }

        @Test func concurrentSalesNeverOversell() async throws {
            // Straight into the simulation, twelve at once: over HTTP, CurlHTTPClient could not keep twelve
            // transfers in flight here without starving the in-process server (see SimulatorOverHTTP).
            let simulation = MetrcSimulation()
            let credentials = Data("sim-vendor-key:sim-user-key".utf8).base64EncodedString()
            let request = SimHTTPRequest(
                method: "POST", path: "/sales/v2/receipts", query: Harness.lic,
                headers: ["Authorization": "Basic \(credentials)"], body: Data(array([receipt([(110, "1", "Each")])]).utf8))
            let statuses = await withTaskGroup(of: Int.self) { group in
                for _ in 0..<12 {
                    group.addTask { await simulation.respond(to: request).status }
                }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 10)
            #expect(statuses.filter { $0 == 400 }.count == 2)
            #expect(await simulation.packageQuantity(license: Harness.license, label: SimFacility.demoLabel(110)) == 0)
            #expect(Set(await simulation.receipts(license: Harness.license).map(\.id)).count == 10)
        }
    }
}

extension SimulatorOverHTTP {
    @Suite struct ExternalNumbers {
        @Test func theSameExternalNumberPostedTwiceMakesTwoReceiptsAndTheLookupFindsBoth() async throws {
            try await Harness.run { sim async throws in
                for _ in 0..<2 {
                    let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)",
                                                      json: array([receipt([(101, "1", "Grams")], external: "TILL-42")]))
                    #expect(response.status == 200)
                }
                #expect(await sim.simulation.receipts(license: Harness.license, externalNumber: "TILL-42").count == 2)
                #expect(await sim.quantity(101) == 446)

                let found = try await sim.get("/sales/v2/receipts/external/TILL-42?\(Harness.lic)")
                #expect(found.status == 200)
                let envelope = try found.json
                #expect(envelope["Data"]?.array?.compactMap { $0["Id"]?.int } == [1_000_001, 1_000_002])
                #expect(envelope["Total"]?.int == 2)
            }
        }

        /// Path segments are percent-decoded after the path is split: an encoded slash stays in its segment.
        @Test func anExternalNumberIsLookedUpPercentDecoded() async throws {
            try await Harness.run { sim async throws in
                let posted = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)",
                                                json: array([receipt([(101, "1", "Grams")], external: "TILL 7/8+9")]))
                #expect(posted.status == 200)
                let found = try await sim.get("/sales/v2/receipts/external/TILL%207%2F8%2B9?\(Harness.lic)")
                #expect(found.status == 200)
                #expect(try found.json["Data"]?.array?.count == 1)
                // A "+" in a path is a plus, not a space (only a query takes it for one).
                #expect(try await sim.get("/sales/v2/receipts/external/TILL%207%2F8+9?\(Harness.lic)").status == 200)
            }
        }

        @Test func anUnknownExternalNumberAnswersTheConfiguredStatus() async throws {
            try await Harness.run { sim async throws in
                #expect(try await sim.get("/sales/v2/receipts/external/NOPE?\(Harness.lic)").status == 404)
            }
            try await Harness.run({ $0.externalLookupMissStatus = 401 }) { sim async throws in
                #expect(try await sim.get("/sales/v2/receipts/external/NOPE?\(Harness.lic)").status == 401)
            }
        }
    }
}

extension SimulatorOverHTTP {
    @Suite struct EditingAndArchiving {
        private func post(_ sim: Harness, _ body: String) async throws -> Int64 {
            let response = try await sim.send("POST", "/sales/v2/receipts?\(Harness.lic)", json: array([body]))
            try #require(response.status == 200, "\(response.text)")
            return Int64(try #require(try response.json["Ids"]?.array?.first?.int))
        }

        @Test func aFinalizedReceiptCannotBeArchivedUntilUnfinalized() async throws {
            try await Harness.run { sim async throws in
                let id = try await post(sim, receipt([(104, "3.5", "Grams")]))
                #expect(try await sim.send("PUT", "/sales/v2/receipts/finalize?\(Harness.lic)", json: #"[{"Id":\#(id)}]"#).status == 200)
                #expect(await sim.simulation.receipt(id: id)?.isFinal == true)

                let refused = try await sim.send("DELETE", "/sales/v2/receipts/\(id)?\(Harness.lic)")
                #expect(refused.status == 400)
                #expect(try refused.json.array?.first?["message"]?.string?.contains("finalized") == true)
                #expect(await sim.quantity(104) == Decimal(string: "24.5"))

                let edit = try await sim.send("PUT", "/sales/v2/receipts?\(Harness.lic)",
                                              json: "[" + receipt([(104, "1", "Grams")], extra: #","Id":\#(id)"#) + "]")
                #expect(edit.status == 400)

                #expect(try await sim.send("PUT", "/sales/v2/receipts/unfinalize?\(Harness.lic)", json: #"[{"Id":\#(id)}]"#).status == 200)
                #expect(try await sim.send("DELETE", "/sales/v2/receipts/\(id)?\(Harness.lic)").status == 200)
            }
        }

        @Test func archivingPutsTheQuantityBackAndMovesTheReceiptToInactive() async throws {
            try await Harness.run { sim async throws in
                let id = try await post(sim, receipt([(104, "3.5", "Grams"), (110, "2", "Each")]))
                #expect(await sim.quantity(104) == Decimal(string: "24.5"))
                #expect(try await sim.send("DELETE", "/sales/v2/receipts/\(id)?\(Harness.lic)").status == 200)
                #expect(await sim.quantity(104) == 28)
                #expect(await sim.quantity(110) == 10)
                let stored = await sim.simulation.receipt(id: id)
                #expect(stored?.archived == true)

                let active = try await sim.get("/sales/v2/receipts/active?\(Harness.lic)").json
                #expect(active["Total"]?.int == 0)
                let inactive = try await sim.get("/sales/v2/receipts/inactive?\(Harness.lic)").json
                #expect(inactive["Data"]?.array?.first?["Id"]?.int == Int(id))
                #expect(inactive["Data"]?.array?.first?["ArchivedDate"]?.string != nil)
                #expect(try await sim.send("DELETE", "/sales/v2/receipts/\(id)?\(Harness.lic)").status == 400)
            }
        }

        @Test func anEditPutsBackWhatALineNoLongerTakes() async throws {
            try await Harness.run { sim async throws in
                let id = try await post(sim, receipt([(104, "7", "Grams"), (110, "3", "Each")], external: "E-1"))
                #expect(await sim.quantity(104) == 21)
                #expect(await sim.quantity(110) == 7)

                // A partial return: the flower line drops to 2 g, the gummies line goes entirely.
                let edit = "[" + receipt([(104, "2", "Grams")], extra: #","Id":\#(id)"#) + "]"
                let response = try await sim.send("PUT", "/sales/v2/receipts?\(Harness.lic)", json: edit)
                #expect(response.status == 200, "\(response.text)")
                #expect(await sim.quantity(104) == 26)
                #expect(await sim.quantity(110) == 10)
                let stored = try #require(await sim.simulation.receipt(id: id))
                #expect(stored.transactions.map(\.quantity) == [2])
                #expect(stored.externalReceiptNumber == "E-1")

                // An edit may take more than is on the shelf only by what it gave back: 26 + 2 available.
                let greedy = "[" + receipt([(104, "29", "Grams")], extra: #","Id":\#(id)"#) + "]"
                #expect(try await sim.send("PUT", "/sales/v2/receipts?\(Harness.lic)", json: greedy).status == 400)
                let all = "[" + receipt([(104, "28", "Grams")], extra: #","Id":\#(id)"#) + "]"
                #expect(try await sim.send("PUT", "/sales/v2/receipts?\(Harness.lic)", json: all).status == 200)
                #expect(await sim.quantity(104) == 0)
            }
        }

        @Test func receiptListsFilterBySalesDateInTheFacilitysZone() async throws {
            try await Harness.run { sim async throws in
                // 14:05 in Denver on 22 November (MST, UTC-7) is 21:05 UTC.
                _ = try await post(sim, receipt([(101, "1", "Grams")], salesDateTime: "2026-11-22T14:05:00.000"))
                let hit = "salesDateStart=2026-11-22T21:00:00Z&salesDateEnd=2026-11-22T21:10:00Z"
                #expect(try await sim.get("/sales/v2/receipts/active?\(Harness.lic)&\(hit)").json["Total"]?.int == 1)
                let miss = "salesDateStart=2026-11-22T14:00:00Z&salesDateEnd=2026-11-22T14:10:00Z"
                #expect(try await sim.get("/sales/v2/receipts/active?\(Harness.lic)&\(miss)").json["Total"]?.int == 0)
                let offset = "salesDateStart=2026-11-22T14:00:00-07:00&salesDateEnd=2026-11-22T14:10:00-07:00"
                #expect(try await sim.get("/sales/v2/receipts/active?\(Harness.lic)&\(offset)").json["Total"]?.int == 1)

                let both = "\(hit)&lastModifiedStart=2026-11-22T21:00:00Z&lastModifiedEnd=2026-11-22T21:10:00Z"
                #expect(try await sim.get("/sales/v2/receipts/active?\(Harness.lic)&\(both)").status == 400)
                let wide = "salesDateStart=2026-11-21T00:00:00Z&salesDateEnd=2026-11-22T21:10:00Z"
                #expect(try await sim.get("/sales/v2/receipts/active?\(Harness.lic)&\(wide)").status == 400)
            }
        }
    }
}
