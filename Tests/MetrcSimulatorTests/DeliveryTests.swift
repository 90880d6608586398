import CurlHTTP
import Foundation
@testable import MetrcSimulator
import Testing

// MARK: Bodies and calls

private let deliveries = "/sales/v2/deliveries"
private let trips = "/sales/v2/deliveries/retailer"

private typealias Line = (suffix: Int, quantity: String, unit: String)

/// How a test writes a delivery's lines: the specification's SaleTransaction names, the receipt's, or both (as Till).
private enum Spelling { case saleTransaction, receipt, both }

private func lineJSON(_ line: Line, _ spelling: Spelling, total: String = "10.00") -> String {
    let label = #""PackageLabel":"\#(SimFacility.demoLabel(line.suffix))""#
    let spec = #""QuantitySold":\#(line.quantity),"UnitOfMeasureName":"\#(line.unit)","TotalPrice":\#(total)"#
    let receipt = #""Quantity":\#(line.quantity),"UnitOfMeasure":"\#(line.unit)","TotalAmount":\#(total)"#
    switch spelling {
    case .saleTransaction: return "{\(label),\(spec)}"
    case .receipt: return "{\(label),\(receipt)}"
    case .both: return "{\(label),\(spec),\(receipt)}"
    }
}

/// A sales delivery with the demo facility's required fields (driver, vehicle, recipient name, estimated times).
private func delivery(_ lines: [Line], spelling: Spelling = .saleTransaction,
                      salesDateTime: String = "2026-11-22T14:05:00.000", customerType: String = "Consumer",
                      recipient: String? = "Ada Lovelace", extra: String = "") -> String {
    let name = recipient.map { #","RecipientName":"\#($0)""# } ?? ""
    return #"{"SalesDateTime":"\#(salesDateTime)","SalesCustomerType":"\#(customerType)"\#(name),"DriverEmployeeId":"E-7","DriverName":"Dee Driver","DriversLicenseNumber":"DL-7","VehicleMake":"Ford","VehicleModel":"Transit","VehicleLicensePlateNumber":"TILL-7","EstimatedDepartureDateTime":"2026-11-22T14:10:00","EstimatedArrivalDateTime":"2026-11-22T14:40:00"\#(extra),"Transactions":[\#(lines.map { lineJSON($0, spelling) }.joined(separator: ","))]}"#
}

/// A trip loading these packages, each priced unless `price` is nil.
private func trip(_ loads: [Line], price: String? = "100.00", extra: String = "") -> String {
    let packages = loads.map { load in
        let priced = price.map { #","TotalPrice":\#($0)"# } ?? ""
        return #"{"PackageLabel":"\#(SimFacility.demoLabel(load.suffix))","Quantity":\#(load.quantity),"UnitOfMeasure":"\#(load.unit)"\#(priced)}"#
    }
    return #"{"DateTime":"2026-11-22T09:00:00","DriverEmployeeId":"E-8","DriverName":"Rae Road","DriversLicenseNumber":"DL-8","VehicleMake":"Kia","VehicleModel":"Soul","VehicleLicensePlateNumber":"TILL-8","EstimatedDepartureDateTime":"2026-11-22T09:30:00"\#(extra),"Destinations":[],"Packages":[\#(packages.joined(separator: ","))]}"#
}

private func tripSale(_ tripId: Int64, _ lines: [Line], spelling: Spelling = .receipt,
                      salesDateTime: String = "2026-11-22T11:15:00") -> String {
    #"{"RetailerDeliveryId":\#(tripId),"SalesDateTime":"\#(salesDateTime)","SalesCustomerType":"Consumer","RecipientName":"Bo Buyer","RecipientAddressStreet1":"1 Main St","Transactions":[\#(lines.map { lineJSON($0, spelling) }.joined(separator: ","))]}"#
}

private func step(_ tripId: Int64, _ extra: String = "") -> String { #"{"RetailerDeliveryId":\#(tripId)\#(extra)}"# }

private func endCount(_ suffix: Int, _ quantity: String, _ unit: String) -> String {
    #"{"Label":"\#(SimFacility.demoLabel(suffix))","EndQuantity":\#(quantity),"EndUnitOfMeasure":"\#(unit)"}"#
}

private func returned(_ suffix: Int, _ quantity: String, _ unit: String, _ reason: String, note: String? = nil) -> String {
    let noted = note.map { #","ReturnReasonNote":"\#($0)""# } ?? ""
    return #"{"Label":"\#(SimFacility.demoLabel(suffix))","ReturnQuantityVerified":\#(quantity),"ReturnUnitOfMeasure":"\#(unit)","ReturnReason":"\#(reason)"\#(noted)}"#
}

private func completion(_ id: Int64, accepted: [Int], returned: [String] = [],
                        arrival: String = "2026-11-22T14:45:00") -> String {
    let labels = accepted.map { #""\#(SimFacility.demoLabel($0))""# }.joined(separator: ",")
    return #"{"Id":\#(id),"ActualArrivalDateTime":"\#(arrival)","AcceptedPackages":[\#(labels)],"ReturnedPackages":[\#(returned.joined(separator: ","))]}"#
}

extension Harness {
    /// POST, PUT or DELETE for the demo facility; the answer whatever its status.
    fileprivate func write(_ method: String, _ path: String, _ items: [String] = []) async throws -> HTTPResponse {
        try await send(method, "\(path)?\(Self.lic)", json: items.isEmpty ? nil : array(items))
    }

    /// A write that must succeed, answering its Ids (empty for writes that answer none).
    fileprivate func ok(_ method: String, _ path: String, _ items: [String],
                        sourceLocation: SourceLocation = #_sourceLocation) async throws -> [Int64] {
        let response = try await write(method, path, items)
        try #require(response.status == 200, "\(response.status) \(response.text)", sourceLocation: sourceLocation)
        guard !response.body.isEmpty else { return [] }
        return try response.json["Ids"]?.array?.compactMap { $0.int.map(Int64.init) } ?? []
    }

    /// A write that must be refused with 400: its row errors' messages, by row.
    fileprivate func refused(_ method: String, _ path: String, _ items: [String],
                             sourceLocation: SourceLocation = #_sourceLocation) async throws -> [(row: Int, message: String)] {
        let response = try await write(method, path, items)
        try #require(response.status == 400, "\(response.status) \(response.text)", sourceLocation: sourceLocation)
        return try (response.json.array ?? []).map { ($0["row"]?.int ?? -1, $0["message"]?.string ?? "") }
    }

    fileprivate func read(_ path: String, _ query: String = "") async throws -> JSON {
        let response = try await get("\(path)?\(Self.lic)\(query)")
        try #require(response.status == 200, "\(response.status) \(response.text)")
        return try response.json
    }

    fileprivate func shop(_ suffix: Int) async -> Decimal? {
        await simulation.shopQuantity(license: Self.license, label: SimFacility.demoLabel(suffix))
    }

    fileprivate func setFlags(_ change: (inout SimDeliveryFlags) -> Void) async {
        var flags = await simulation.deliveryFlags(license: Self.license)!
        change(&flags)
        await simulation.setDeliveryFlags(flags, license: Self.license)
    }
}

/// `2026-11-22T21:05:00Z`, for a query.
private func iso(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: date)
}

private func ids(_ list: JSON) -> [Int64] {
    list["Data"]?.array?.compactMap { $0["Id"]?.int.map(Int64.init) } ?? []
}

private func mentions(_ errors: [(row: Int, message: String)], _ text: String) -> Bool {
    errors.contains { $0.message.contains(text) }
}

// MARK: Sales deliveries

extension SimulatorOverHTTP {
    @Suite struct SalesDeliveries {
        @Test func aPostedDeliveryTakesItsStockAndReadsBackAsSaleTransactions() async throws {
            try await Harness.run { sim async throws in
                let created = try await sim.ok("POST", deliveries, [
                    delivery([(101, "3.5", "Grams"), (106, "2", "Each")], spelling: .saleTransaction),
                    delivery([(101, "3500", "Milligrams")], spelling: .receipt),
                ])
                #expect(created == [4_000_001, 4_000_002])
                #expect(await sim.quantity(101) == 441)
                #expect(await sim.quantity(106) == 98)

                let one = try await sim.read("\(deliveries)/4000001")
                #expect(one["SalesDeliveryState"]?.string == "InTransit")
                #expect(one["SalesDateTime"]?.string == "2026-11-22T14:05:00.000")
                #expect(one["RecipientName"]?.string == "Ada Lovelace")
                #expect(one["DriverName"]?.string == "Dee Driver")
                #expect(one["EstimatedArrivalDateTime"]?.string == "2026-11-22T14:40:00.000")
                #expect(one["TotalPackages"]?.int == 2 && one["TotalPrice"]?.number == 20)
                #expect(one["CompletedDateTime"] == .null && one["VoidedDate"] == .null)
                #expect(one["LastModified"]?.string != nil)
                let line = try #require(one["Transactions"]?.array?.first)
                #expect(line["PackageLabel"]?.string == SimFacility.demoLabel(101))
                #expect(line["QuantitySold"]?.number == Decimal(string: "3.5"))
                #expect(line["UnitOfMeasureName"]?.string == "Grams")
                #expect(line["TotalPrice"]?.number == 10)
                #expect(line["ProductName"]?.string == "Blue Dream Flower")
                #expect(line["ProductCategoryName"]?.string == "Buds")
                #expect(line["SalesDeliveryState"]?.string == "InTransit")
                let milligrams = try await sim.read("\(deliveries)/4000002")["Transactions"]?.array?.first
                #expect(milligrams?["UnitOfMeasureName"]?.string == "Milligrams")

                #expect(ids(try await sim.read("\(deliveries)/active")) == [4_000_001, 4_000_002])
                #expect(ids(try await sim.read("\(deliveries)/inactive")).isEmpty)
                let stored = try #require(await sim.simulation.salesDelivery(id: 4_000_001))
                #expect(stored.state == .inTransit && stored.transactions.count == 2)
                #expect(await sim.simulation.salesDeliveries(license: Harness.license).count == 2)
                #expect(try await sim.get("\(deliveries)/4009999?\(Harness.lic)").status == 404)
            }
        }

        @Test func aLineInBothSpellingsIsTakenOnceAndOneWithNeitherQuantityIsRefused() async throws {
            try await Harness.run { sim async throws in
                #expect(try await sim.ok("POST", deliveries, [delivery([(101, "3.5", "Grams")], spelling: .both)]).count == 1)
                #expect(await sim.quantity(101) == Decimal(string: "444.5"))

                let noQuantity = #"{"PackageLabel":"\#(SimFacility.demoLabel(102))","UnitOfMeasureName":"Grams","TotalPrice":5}"#
                let bad = delivery([]).replacingOccurrences(of: #""Transactions":[]"#, with: #""Transactions":[\#(noQuantity)]"#)
                let errors = try await sim.refused("POST", deliveries, [delivery([(102, "1", "Grams")]), bad])
                #expect(errors.map(\.row) == [1])
                #expect(mentions(errors, "Quantity is required"))
                #expect(await sim.quantity(102) == 448)
                #expect(await sim.simulation.salesDeliveries(license: Harness.license).count == 1)
            }
        }

        @Test func everyRefusalNamesItsRowAndNothingIsApplied() async throws {
            try await Harness.run { sim async throws in
                let errors = try await sim.refused("POST", deliveries, [
                    delivery([(101, "1", "Grams")], salesDateTime: "2026-11-22T21:05:00Z"),
                    delivery([(101, "1", "Grams")]).replacingOccurrences(of: #""DriverName":"Dee Driver","#, with: ""),
                    delivery([(101, "1", "Grams"), (101, "2", "Grams")]),
                    delivery([(120, "1", "Each")]),
                    delivery([(104, "29", "Grams")]),
                    delivery([(101, "1", "Grams")], recipient: nil),
                    delivery([(101, "1", "Grams")], customerType: "Patient"),
                ])
                #expect(errors.map(\.row) == [0, 1, 2, 3, 4, 5, 6])
                #expect(errors[0].message.contains("without a time zone"))
                #expect(errors[1].message.contains("DriverName is required"))
                #expect(errors[2].message.contains("listed more than once"))
                #expect(errors[3].message.contains("on hold"))
                #expect(errors[4].message.contains("28"))
                #expect(errors[5].message.contains("RecipientName is required"))
                #expect(errors[6].message.contains("PatientLicenseNumber is required"))
                #expect(await sim.quantity(101) == 448)
                #expect(await sim.simulation.salesDeliveries(license: Harness.license).isEmpty)
                #expect(try await sim.ok("POST", deliveries, [delivery([(101, "1", "Grams")], customerType: "Patient",
                                                                     extra: #","PatientLicenseNumber":"PT-ACTIVE-0001""#)]).count == 1)
            }
        }

        @Test func theFacilitysFlagsDecideWhoIsDeliveredToAndWhatTheyMustGive() async throws {
            try await Harness.run { sim async throws in
                await sim.setFlags {
                    $0.canDeliverSalesToConsumers = false
                    $0.salesDeliveryRequireConsumerId = true
                    $0.salesDeliveryAllowCity = false
                    $0.salesDeliveryAllowPlannedRoute = false
                }
                let patient = #","PatientLicenseNumber":"PT-ACTIVE-0001""#
                let errors = try await sim.refused("POST", deliveries, [
                    delivery([(101, "1", "Grams")], extra: #","ConsumerId":"C-1""#),
                    delivery([(101, "1", "Grams")], customerType: "Patient", extra: patient),
                    delivery([(101, "1", "Grams")], customerType: "Patient",
                             extra: patient + #","ConsumerId":"C-1","RecipientAddressCity":"Denver""#),
                    delivery([(101, "1", "Grams")], customerType: "Patient",
                             extra: patient + #","ConsumerId":"C-1","PlannedRoute":"I-25 north""#),
                ])
                #expect(errors.map(\.row) == [0, 1, 2, 3])
                #expect(errors[0].message.contains("cannot deliver sales to customer type Consumer"))
                #expect(errors[1].message.contains("ConsumerId is required"))
                #expect(errors[2].message.contains("RecipientAddressCity is not allowed"))
                #expect(errors[3].message.contains("PlannedRoute is not allowed"))
                let allowed = delivery([(101, "1", "Grams")], customerType: "Patient",
                                       extra: patient + #","ConsumerId":"C-1","RecipientAddressStreet1":"1 Main St""#)
                #expect(try await sim.ok("POST", deliveries, [allowed]).count == 1)

                let type = try #require(try await sim.get("/facilities/v2/").json.array?.first?["FacilityType"])
                #expect(type["CanDeliverSalesToConsumers"]?.bool == false)
                #expect(type["SalesDeliveryRequireConsumerId"]?.bool == true)
                #expect(type["SalesDeliveryAllowCity"]?.bool == false)
            }
        }

        @Test func anEditReplacesTheLinesAndTheirStock() async throws {
            try await Harness.run { sim async throws in
                let id = try #require(try await sim.ok("POST", deliveries, [delivery([(101, "3.5", "Grams"), (104, "28", "Grams")])]).first)
                #expect(await sim.quantity(104) == 0)
                let edit = delivery([(101, "1", "Grams"), (102, "2", "Grams"), (104, "27", "Grams")],
                                    extra: #","Id":\#(id),"PlannedRoute":"Colfax, then Broadway""#)
                #expect(try await sim.ok("PUT", deliveries, [edit]).isEmpty)
                #expect(await sim.quantity(101) == 447)
                #expect(await sim.quantity(102) == 446)
                #expect(await sim.quantity(104) == 1)  // re-takes what it gave back
                let read = try await sim.read("\(deliveries)/\(id)")
                #expect(read["Transactions"]?.array?.count == 3)
                #expect(read["PlannedRoute"]?.string == "Colfax, then Broadway")

                #expect(mentions(try await sim.refused("PUT", deliveries, [delivery([(101, "1", "Grams")], extra: #","Id":4009999"#)]),
                                 "was not found"))
                #expect(mentions(try await sim.refused("PUT", deliveries, [delivery([(101, "1", "Grams")])]), "Id is required"))
                #expect(mentions(try await sim.refused("PUT", deliveries, [delivery([(104, "29", "Grams")], extra: #","Id":\#(id)"#)]),
                                 "has 28 Grams available"))
                #expect(await sim.quantity(104) == 1)
            }
        }

        @Test func aCompletionAccountsForEveryLabelOnceAndReturnsGoBackOnTheShelf() async throws {
            try await Harness.run { sim async throws in
                let id = try #require(try await sim.ok("POST", deliveries, [
                    delivery([(101, "3.5", "Grams"), (106, "2", "Each"), (110, "3", "Each")]),
                ]).first)
                #expect(await sim.quantity(110) == 7)
                let complete = "\(deliveries)/complete"
                let unknown = #"{"Id":\#(id),"ActualArrivalDateTime":"2026-11-22T14:45:00","AcceptedPackages":["\#(SimFacility.demoLabel(101))","\#(SimFacility.demoLabel(106))","\#(SimFacility.demoLabel(110))","1A4FF0100000022000000999"]}"#
                let attempts: [(body: String, says: String)] = [
                    (completion(id, accepted: [101]), "neither accepted nor returned"),
                    (completion(id, accepted: [101, 106, 110], returned: [returned(110, "1", "Each", "Spoilage")]), "more than once"),
                    (completion(id, accepted: [101, 106], returned: [returned(110, "4", "Each", "Spoilage")]), "more than the 3"),
                    (completion(id, accepted: [101, 106], returned: [returned(110, "0", "Each", "Spoilage")]), "greater than zero"),
                    (completion(id, accepted: [101, 106], returned: [returned(110, "1", "Grams", "Spoilage")]), "the unit it was delivered in"),
                    (completion(id, accepted: [101, 106], returned: [returned(110, "1", "Each", "Lost")]), "not a delivery return reason"),
                    (completion(id, accepted: [101, 106], returned: [returned(110, "1", "Each", "Damaged")]), "ReturnReasonNote is required"),
                    (completion(id, accepted: [101, 106], returned: [returned(110, "1", "Each", "Other", note: " ")]), "ReturnReasonNote is required"),
                    (unknown, "is not part of sales delivery"),
                ]
                for attempt in attempts {
                    let errors = try await sim.refused("PUT", complete, [attempt.body])
                    #expect(mentions(errors, attempt.says), "\(errors)")
                }
                #expect(await sim.simulation.salesDelivery(id: id)?.state == .inTransit)
                #expect(await sim.quantity(110) == 7)

                let good = completion(id, accepted: [101, 106], returned: [returned(110, "2", "Each", "damaged", note: "crushed")])
                #expect(try await sim.ok("PUT", complete, [good]).isEmpty)
                #expect(await sim.quantity(110) == 9)
                #expect(await sim.quantity(101) == Decimal(string: "444.5"))
                let read = try await sim.read("\(deliveries)/\(id)")
                #expect(read["SalesDeliveryState"]?.string == "Delivered")
                #expect(read["CompletedDateTime"]?.string != nil)
                #expect(read["ActualArrivalDateTime"]?.string == "2026-11-22T14:45:00.000")
                #expect(ids(try await sim.read("\(deliveries)/active")).isEmpty)
                #expect(ids(try await sim.read("\(deliveries)/inactive")) == [id])
                let stored = try #require(await sim.simulation.salesDelivery(id: id))
                #expect(stored.acceptedPackages == [SimFacility.demoLabel(101), SimFacility.demoLabel(106)])
                #expect(stored.returnedPackages == [SimDeliveryReturn(label: SimFacility.demoLabel(110), quantity: 2,
                                                                      unitOfMeasure: "Each", reason: "Damaged", note: "crushed")])

                #expect(mentions(try await sim.refused("PUT", complete, [good]), "is completed"))
                #expect(try await sim.write("DELETE", "\(deliveries)/\(id)").status == 400)
                #expect(mentions(try await sim.refused("PUT", deliveries, [delivery([(101, "1", "Grams")], extra: #","Id":\#(id)"#)]),
                                 "cannot be edited"))
                #expect(await sim.quantity(110) == 9)
            }
        }

        @Test func aVoidPutsEveryQuantityBackOnce() async throws {
            try await Harness.run { sim async throws in
                #expect(try await sim.write("DELETE", "\(deliveries)/4009999").status == 404)
                let id = try #require(try await sim.ok("POST", deliveries, [delivery([(101, "3.5", "Grams"), (106, "2", "Each")])]).first)
                #expect(try await sim.write("DELETE", "\(deliveries)/\(id)").status == 200)
                #expect(await sim.quantity(101) == 448)
                #expect(await sim.quantity(106) == 100)
                let read = try await sim.read("\(deliveries)/\(id)")
                #expect(read["SalesDeliveryState"]?.string == "Voided")
                #expect(read["VoidedDate"]?.string != nil)
                #expect(ids(try await sim.read("\(deliveries)/inactive")) == [id])

                let again = try await sim.write("DELETE", "\(deliveries)/\(id)")
                #expect(again.status == 400)
                #expect(try again.json.array?.first?["message"]?.string?.contains("voided") == true)
                #expect(mentions(try await sim.refused("PUT", "\(deliveries)/complete", [completion(id, accepted: [101, 106])]), "voided"))
                #expect(await sim.quantity(101) == 448)
            }
        }

        @Test func listsArePagedAndWindowedBySalesDateOrLastModified() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                let first = (0..<10).map { delivery([(106, "1", "Each")], salesDateTime: "2026-11-22T10:00:0\($0)") }
                let second = (0..<2).map { delivery([(106, "1", "Each")], salesDateTime: "2026-11-23T10:00:0\($0)") }
                #expect(try await sim.ok("POST", deliveries, first).count == 10)
                clock.advance(by: 7200)
                #expect(try await sim.ok("POST", deliveries, second).count == 2)

                let page = try await sim.read("\(deliveries)/active", "&pageNumber=3&pageSize=5")
                #expect(page["Total"]?.int == 12 && page["TotalPages"]?.int == 3 && page["RecordsOnPage"]?.int == 2)
                #expect(ids(page) == [4_000_011, 4_000_012])
                // Denver is UTC-7 in November: the 22nd, local, is 07:00Z on the 22nd to 07:00Z on the 23rd.
                let day = try await sim.read("\(deliveries)/active", "&salesDateStart=2026-11-22T07:00:00Z&salesDateEnd=2026-11-23T06:59:59Z")
                #expect(day["Total"]?.int == 10)
                let recent = "&lastModifiedStart=\(iso(clock.now.addingTimeInterval(-60)))&lastModifiedEnd=\(iso(clock.now))"
                #expect(try await sim.read("\(deliveries)/active", recent)["Total"]?.int == 2)

                let both = "&salesDateStart=2026-11-22T07:00:00Z&salesDateEnd=2026-11-23T07:00:00Z" + recent
                #expect(try await sim.get("\(deliveries)/active?\(Harness.lic)\(both)").status == 400)
                #expect(try await sim.get("\(deliveries)/inactive?\(Harness.lic)&salesDateStart=2026-11-22T00:00:00Z&salesDateEnd=2026-11-23T00:00:01Z").status == 400)
                #expect(try await sim.get("\(deliveries)/active?\(Harness.lic)&pageSize=21").status == 400)
                #expect(try await sim.get("\(deliveries)/active").status == 400)
            }
        }

        @Test func returnReasonsComeInTheEnvelope() async throws {
            try await Harness.run { sim async throws in
                let reasons = try await sim.read("\(deliveries)/returnreasons")["Data"]?.array ?? []
                #expect(reasons.compactMap { $0["Name"]?.string } == ["Spoilage", "Customer Refused", "Damaged", "Other"])
                #expect(reasons.compactMap { $0["RequiresNote"]?.bool } == [false, false, true, true])
                #expect(reasons.first?.keys.contains("RequiresWasteWeight") == true)
                #expect(try await sim.get("\(deliveries)/returnreasons").status == 400)
            }
        }

        @Test func aDeliveryCommittedBeforeTheConnectionDropsIsFoundInTheDaysList() async throws {
            try await Harness.run { sim async throws in
                #expect(try await sim.get("/facilities/v2").status == 200)
                await sim.simulation.addFault(SimFault(.commitThenDrop, method: "POST", pathPrefix: deliveries, times: 1))
                await #expect(throws: HTTPTransportError.self) {
                    _ = try await sim.write("POST", deliveries, [delivery([(101, "3.5", "Grams")], salesDateTime: "2026-11-22T15:00:07")])
                }
                #expect(await sim.quantity(101) == Decimal(string: "444.5"))
                let day = try await sim.read("\(deliveries)/active", "&salesDateStart=2026-11-22T07:00:00Z&salesDateEnd=2026-11-23T07:00:00Z")
                #expect(day["Data"]?.array?.compactMap { $0["SalesDateTime"]?.string } == ["2026-11-22T15:00:07.000"])
                #expect(await sim.simulation.requestCount(method: "POST", pathPrefix: deliveries) == 1)
            }
        }
    }
}

// MARK: Retailer deliveries (trips)

extension SimulatorOverHTTP {
    @Suite struct Trips {
        @Test func aLoadLeavesTheShopButStaysInThePackagesQuantity() async throws {
            try await Harness.run { sim async throws in
                let id = try #require(try await sim.ok("POST", trips, [trip([(101, "100", "Grams"), (106, "10", "Each")])]).first)
                #expect(id == 6_000_001)
                #expect(await sim.quantity(101) == 448)
                #expect(await sim.shop(101) == 348)
                #expect(await sim.simulation.trip(id: id)?.quantity(of: SimFacility.demoLabel(101)) == 100)

                let read = try await sim.read("\(trips)/\(id)")
                #expect(read["RetailerDeliveryState"]?.string == "Created")
                #expect(read["Leg"]?.int == 1)
                #expect(read["DateTime"]?.string == "2026-11-22T09:00:00.000")
                #expect(read["DriverName"]?.string == "Rae Road")
                #expect(read["ActualDepartureDateTime"] == .null)
                #expect(read["TotalPackages"]?.int == 2 && read["TotalPrice"]?.number == 200 && read["TotalPriceSold"]?.number == 0)
                #expect(read["Destinations"]?.array?.isEmpty == true)
                let package = try #require(read["Packages"]?.array?.first)
                #expect(package.keys.contains("PackageLabel") && package["Quantity"]?.number == 100)
                #expect(package["UnitOfMeasure"]?.string == "Grams" && package["TotalPrice"]?.number == 100)
                #expect(ids(try await sim.read("\(trips)/active")) == [id])

                // The counter, deliveries, adjustments and other loads have only the shop's 348 g.
                let receipts = "/sales/v2/receipts"
                #expect(try await sim.write("POST", receipts, [receipt([(101, "349", "Grams")])]).status == 400)
                #expect(try await sim.ok("POST", receipts, [receipt([(101, "340", "Grams")])]).count == 1)
                #expect(await sim.quantity(101) == 108)
                #expect(mentions(try await sim.refused("POST", deliveries, [delivery([(101, "9", "Grams")])]), "8 Grams available"))
                #expect(mentions(try await sim.refused("POST", trips, [trip([(101, "9", "Grams")])]), "8 Grams in the shop"))
                let adjust = #"{"Label":"\#(SimFacility.demoLabel(101))","Quantity":-9,"UnitOfMeasure":"Grams","AdjustmentReason":"Waste","AdjustmentDate":"2026-11-22"}"#
                #expect(try await sim.write("POST", "/packages/v2/adjust", [adjust]).status == 400)
                #expect(await sim.shop(101) == 8)
            }
        }

        @Test func stepsOutOfOrderAreRefused() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                let id = try #require(try await sim.ok("POST", trips, [trip([(101, "100", "Grams")])]).first)
                #expect(mentions(try await sim.refused("POST", "\(trips)/sale", [tripSale(id, [(101, "1", "Grams")])]), "has not departed"))
                #expect(mentions(try await sim.refused("POST", "\(trips)/end", [step(id, #","ActualArrivalDateTime":"2026-11-22T17:00:00""#)]),
                                 "has not departed"))
                #expect(mentions(try await sim.refused("POST", "\(trips)/depart", [step(6_009_999)]), "was not found"))

                #expect(try await sim.ok("POST", "\(trips)/depart", [step(id)]).isEmpty)
                let departed = try await sim.read("\(trips)/\(id)")
                #expect(departed["RetailerDeliveryState"]?.string == "InTransit")
                #expect(departed["ActualDepartureDateTime"]?.string == SimDates.localText(clock.now, in: TimeZone(identifier: "America/Denver")!))
                #expect(mentions(try await sim.refused("POST", "\(trips)/depart", [step(id)]), "has departed"))
                #expect(try await sim.write("DELETE", "\(trips)/\(id)").status == 400)
                #expect(mentions(try await sim.refused("PUT", trips, [trip([(101, "1", "Grams")], extra: #","Id":\#(id)"#)]),
                                 "cannot be edited"))

                #expect(try await sim.ok("POST", "\(trips)/end", [step(id, #","ActualArrivalDateTime":"2026-11-22T17:00:00","Packages":[\#(endCount(101, "100", "Grams"))]"#)]).isEmpty)
                for (path, body) in [("sale", tripSale(id, [(101, "1", "Grams")])), ("depart", step(id)),
                                     ("restock", step(id, #","DateTime":"2026-11-22T18:00:00","Packages":[]"#)),
                                     ("end", step(id, #","ActualArrivalDateTime":"2026-11-22T18:00:00""#))] {
                    #expect(mentions(try await sim.refused("POST", "\(trips)/\(path)", [body]), "has ended"), "\(path)")
                }
                #expect(try await sim.write("DELETE", "\(trips)/\(id)").status == 400)
                #expect(try await sim.write("DELETE", "\(trips)/6009999").status == 404)
            }
        }

        @Test func aSaleFromTheVehicleLowersTheVehicleAndThePackage() async throws {
            try await Harness.run { sim async throws in
                let id = try #require(try await sim.ok("POST", trips, [trip([(101, "100", "Grams"), (106, "10", "Each")])]).first)
                _ = try await sim.ok("POST", "\(trips)/depart", [step(id)])
                let sold = try await sim.ok("POST", "\(trips)/sale", [tripSale(id, [(101, "3.5", "Grams"), (106, "2", "Each")])])
                #expect(sold == [8_000_001])
                #expect(await sim.quantity(101) == Decimal(string: "444.5"))
                #expect(await sim.shop(101) == 348)
                #expect(await sim.quantity(106) == 98)
                let stored = try #require(await sim.simulation.trip(id: id))
                #expect(stored.quantity(of: SimFacility.demoLabel(101)) == Decimal(string: "96.5"))
                #expect(stored.quantity(of: SimFacility.demoLabel(106)) == 8)

                // Either spelling, as for sales deliveries.
                _ = try await sim.ok("POST", "\(trips)/sale", [tripSale(id, [(106, "1", "Each")], spelling: .saleTransaction,
                                                                         salesDateTime: "2026-11-22T11:45:00")])
                let read = try await sim.read("\(trips)/\(id)")
                let sales = read["Destinations"]?.array ?? []
                #expect(sales.compactMap { $0["Id"]?.int } == [8_000_001, 8_000_002])
                #expect(sales.first?["SalesDateTime"]?.string == "2026-11-22T11:15:00.000")
                #expect(sales.first?["RecipientName"]?.string == "Bo Buyer")
                #expect(sales.first?["Transactions"]?.array?.first?["Quantity"]?.number == Decimal(string: "3.5"))
                #expect(read["TotalPriceSold"]?.number == 30)
                let packages = read["Packages"]?.array ?? []
                #expect(packages.compactMap { $0["Quantity"]?.number } == [Decimal(string: "96.5")!, 7])

                // Rows apply in order (the second sees the first's 90 g gone) and a refusal undoes the whole request.
                let errors = try await sim.refused("POST", "\(trips)/sale", [
                    tripSale(id, [(101, "90", "Grams")]),
                    tripSale(id, [(101, "7", "Grams")]),
                    tripSale(id, [(102, "1", "Grams")]),
                    tripSale(id, [(106, "1", "Each"), (106, "1", "Each")]),
                ])
                #expect(errors.map(\.row) == [1, 2, 3])
                #expect(errors[0].message.contains("6.5 Grams available"))
                #expect(errors[1].message.contains("is not on retailer delivery"))
                #expect(errors[2].message.contains("more than once"))
                #expect(await sim.simulation.trip(id: id)?.quantity(of: SimFacility.demoLabel(101)) == Decimal(string: "96.5"))
                #expect(await sim.simulation.trip(id: id)?.sales.count == 2)
                #expect(await sim.quantity(101) == Decimal(string: "444.5"))
            }
        }

        @Test func aRestockSwapsPackagesAndStartsTheNextLeg() async throws {
            try await Harness.run { sim async throws in
                let id = try #require(try await sim.ok("POST", trips, [trip([(101, "100", "Grams"), (104, "10", "Grams")])]).first)
                _ = try await sim.ok("POST", "\(trips)/depart", [step(id)])
                let swap = step(id, #","DateTime":"2026-11-22T16:00:00","EstimatedDepartureDateTime":"2026-11-22T16:15:00","Destinations":[],"Packages":[{"PackageLabel":"\#(SimFacility.demoLabel(104))","RemoveCurrentPackage":true},{"PackageLabel":"\#(SimFacility.demoLabel(102))","Quantity":50,"UnitOfMeasure":"Grams","TotalPrice":200},{"PackageLabel":"\#(SimFacility.demoLabel(101))","Quantity":20,"UnitOfMeasure":"Grams","TotalPrice":80}]"#)
                #expect(try await sim.ok("POST", "\(trips)/restock", [swap]).isEmpty)
                let read = try await sim.read("\(trips)/\(id)")
                #expect(read["Leg"]?.int == 2)
                #expect(read["RestockDateTime"]?.string == "2026-11-22T16:00:00.000")
                #expect(read["EstimatedDepartureDateTime"]?.string == "2026-11-22T16:15:00.000")
                let held = (read["Packages"]?.array ?? []).map { ($0["PackageLabel"]?.string ?? "", $0["Quantity"]?.number ?? -1) }
                #expect(held.map(\.0) == [SimFacility.demoLabel(101), SimFacility.demoLabel(102)])
                #expect(held.map(\.1) == [120, 50])
                #expect(read["Packages"]?.array?.first?["TotalPrice"]?.number == 180)
                #expect(await sim.shop(104) == 28)
                #expect(await sim.shop(101) == 328)
                #expect(await sim.shop(102) == 398)

                let remove = #"{"PackageLabel":"\#(SimFacility.demoLabel(103))","RemoveCurrentPackage":true}"#
                #expect(mentions(try await sim.refused("POST", "\(trips)/restock", [step(id, #","DateTime":"2026-11-22T17:00:00","Packages":[\#(remove)]"#)]),
                                 "cannot be removed"))
                let creating = trip([(102, "1", "Grams")]).replacingOccurrences(of: #""Packages":["#, with: #""Packages":[\#(remove),"#)
                #expect(mentions(try await sim.refused("POST", trips, [creating]), "only for a restock"))
                #expect(await sim.simulation.trip(id: id)?.leg == 2)
            }
        }

        @Test func anEndCountsEveryVehiclePackageOnceAsItHolds() async throws {
            try await Harness.run { sim async throws in
                let id = try #require(try await sim.ok("POST", trips, [trip([(101, "100", "Grams"), (106, "10", "Each"), (107, "5", "Each")])]).first)
                _ = try await sim.ok("POST", "\(trips)/depart", [step(id)])
                _ = try await sim.ok("POST", "\(trips)/sale", [tripSale(id, [(101, "3.5", "Grams"), (106, "10", "Each")])])
                func end(_ counts: [String]) -> String {
                    step(id, #","ActualArrivalDateTime":"2026-11-22T17:30:00","Packages":[\#(counts.joined(separator: ","))]"#)
                }
                let attempts: [(counts: [String], says: String)] = [
                    ([endCount(101, "96", "Grams"), endCount(107, "5", "Each")], "is not what the vehicle holds"),
                    ([endCount(107, "5", "Each")], "\(SimFacility.demoLabel(101)) on retailer delivery \(id) is not counted"),
                    ([endCount(101, "96.5", "Grams"), endCount(101, "96.5", "Grams"), endCount(107, "5", "Each")], "more than once"),
                    ([endCount(101, "96.5", "Grams"), endCount(107, "5", "Each"), endCount(102, "1", "Grams")], "is not on retailer delivery"),
                ]
                for attempt in attempts {
                    #expect(mentions(try await sim.refused("POST", "\(trips)/end", [end(attempt.counts)]), attempt.says))
                }
                #expect(await sim.simulation.trip(id: id)?.state == .inTransit)

                // A count in another unit of the package's kind is exact; the sold-out package may be left out.
                #expect(try await sim.ok("POST", "\(trips)/end", [end([endCount(101, "96500", "Milligrams"), endCount(107, "5", "Each")])]).isEmpty)
                let read = try await sim.read("\(trips)/\(id)")
                #expect(read["RetailerDeliveryState"]?.string == "Completed")
                #expect(read["CompletedDateTime"]?.string != nil)
                #expect(read["Packages"]?.array?.isEmpty == true)
                #expect(ids(try await sim.read("\(trips)/inactive")) == [id])
                #expect(await sim.shop(101) == Decimal(string: "444.5"))
                #expect(await sim.shop(107) == 50)
                #expect(await sim.simulation.trip(id: id)?.endCounts.count == 3)
            }
        }

        @Test func theFacilitysRetailerFlagsAreEnforced() async throws {
            try await Harness.run { sim async throws in
                #expect(mentions(try await sim.refused("POST", trips, [trip([(101, "10", "Grams")], price: nil)]), "TotalPrice is required"))
                await sim.setFlags { $0.retailerDeliveryAllowPartialPackages = false }
                #expect(mentions(try await sim.refused("POST", trips, [trip([(101, "100", "Grams")])]), "must be loaded whole, 448"))
                let id = try #require(try await sim.ok("POST", trips, [trip([(104, "28", "Grams")])]).first)
                let topUp = step(id, #","DateTime":"2026-11-22T12:00:00","Packages":[{"PackageLabel":"\#(SimFacility.demoLabel(117))","Quantity":10,"UnitOfMeasure":"Grams","TotalPrice":1}]"#)
                #expect(mentions(try await sim.refused("POST", "\(trips)/restock", [topUp]), "must be loaded whole"))

                // Off at runtime, by the admin call as by the method.
                let off = try await sim.send("PUT", "/_sim/facilities/deliveryflags?\(Harness.lic)", json: #"{"RetailerDelivery":false}"#)
                #expect(off.status == 200)
                #expect(try off.json["RetailerDelivery"]?.bool == false)
                #expect(mentions(try await sim.refused("POST", trips, [trip([(104, "28", "Grams")])]), "not permitted to make retailer deliveries"))
                let type = try #require(try await sim.get("/facilities/v2/").json.array?.first?["FacilityType"])
                #expect(type["RetailerDelivery"]?.bool == false)
                #expect(type["RetailerDeliveryAllowPartialPackages"]?.bool == false)
                #expect(await sim.simulation.deliveryFlags(license: Harness.license)?.retailerDelivery == false)
                #expect(try await sim.send("PUT", "/_sim/facilities/deliveryflags?\(Harness.lic)", json: #"{"Nonsense":true}"#).status == 400)
            }
        }

        @Test func aVoidBeforeDepartureGivesTheLoadBackToTheShop() async throws {
            try await Harness.run { sim async throws in
                let id = try #require(try await sim.ok("POST", trips, [trip([(101, "100", "Grams")])]).first)
                #expect(await sim.shop(101) == 348)
                #expect(try await sim.write("DELETE", "\(trips)/\(id)").status == 200)
                #expect(await sim.shop(101) == 448)
                let read = try await sim.read("\(trips)/\(id)")
                #expect(read["RetailerDeliveryState"]?.string == "Voided")
                #expect(read["VoidedDate"]?.string != nil)
                #expect(ids(try await sim.read("\(trips)/inactive")) == [id])
                #expect(try await sim.write("DELETE", "\(trips)/\(id)").status == 400)
                #expect(mentions(try await sim.refused("POST", "\(trips)/depart", [step(id)]), "is voided"))
            }
        }

        @Test func aTripIsEditedInFullBeforeItDeparts() async throws {
            try await Harness.run { sim async throws in
                let id = try #require(try await sim.ok("POST", trips, [trip([(101, "448", "Grams")])]).first)
                // Its own load is the shop's again while the new one is checked: all 448 g may be loaded anew.
                let edit = trip([(101, "448", "Grams"), (102, "50", "Grams")], extra: #","Id":\#(id)"#)
                #expect(try await sim.ok("PUT", trips, [edit]).isEmpty)
                #expect(await sim.shop(101) == 0)
                #expect(await sim.shop(102) == 398)
                #expect(try await sim.ok("PUT", trips, [trip([(102, "50", "Grams")], extra: #","Id":\#(id)"#)]).isEmpty)
                #expect(await sim.shop(101) == 448)
                #expect(await sim.simulation.trip(id: id)?.packages.map(\.packageLabel) == [SimFacility.demoLabel(102)])
            }
        }

        @Test func listsArePagedAndWindowedByLastModified() async throws {
            let clock = TestClock()
            try await Harness.run(now: { clock.now }) { sim async throws in
                let made = try await sim.ok("POST", trips, [trip([(101, "1", "Grams")]), trip([(102, "1", "Grams")]), trip([(103, "1", "Grams")])])
                clock.advance(by: 3600)
                #expect(try await sim.write("DELETE", "\(trips)/\(made[1])").status == 200)
                #expect(ids(try await sim.read("\(trips)/active")) == [made[0], made[2]])
                #expect(ids(try await sim.read("\(trips)/inactive")) == [made[1]])
                let page = try await sim.read("\(trips)/active", "&pageNumber=2&pageSize=1")
                #expect(ids(page) == [made[2]] && page["Total"]?.int == 2)
                let lastMinute = "&lastModifiedStart=\(iso(clock.now.addingTimeInterval(-60)))&lastModifiedEnd=\(iso(clock.now))"
                #expect(ids(try await sim.read("\(trips)/active", lastMinute)).isEmpty)
                #expect(ids(try await sim.read("\(trips)/inactive", lastMinute)) == [made[1]])
                #expect(await sim.simulation.trips(license: Harness.license).map(\.id) == made)
            }
            try await Harness.run({ $0.retailerDeliveryListsRequireWindow = true }) { sim async throws in
                #expect(try await sim.get("\(trips)/active?\(Harness.lic)").status == 400)
            }
        }
    }
}

// MARK: Facility, website, routes

extension SimulatorOverHTTP {
    @Suite struct DeliveryFacilityAndWebsite {
        @Test func theDemoFacilityAnnouncesItsDeliveryFlags() async throws {
            try await Harness.run { sim async throws in
                let type = try #require(try await sim.get("/facilities/v2/").json.array?.first?["FacilityType"])
                let expected: [String: Bool] = [
                    "CanDeliverSalesToConsumers": true, "CanDeliverSalesToPatients": true,
                    "SalesDeliveryRequireConsumerId": false, "SalesDeliveryRequirePatientNumber": true,
                    "SalesDeliveryRequireRecipientName": true, "SalesDeliveryAllowPlannedRoute": true,
                    "SalesDeliveryAllowAddress": true, "SalesDeliveryAllowCity": true, "SalesDeliveryAllowState": true,
                    "SalesDeliveryAllowCounty": true, "SalesDeliveryAllowZip": true, "RetailerDelivery": true,
                    "RetailerDeliveryRequirePrice": true, "RetailerDeliveryAllowPartialPackages": true,
                ]
                for (flag, value) in expected { #expect(type[flag]?.bool == value, "\(flag)") }
                let flags = try await sim.get("/_sim/facilities/deliveryflags").json
                #expect(flags["SalesDeliveryRequireRecipientName"]?.bool == true)
            }
        }

        @Test func websiteActionsChangeDeliveriesAndTripsWithoutARequest() async throws {
            try await Harness.run { sim async throws in
                let made = try await sim.ok("POST", deliveries, [
                    delivery([(101, "3.5", "Grams"), (110, "3", "Each")]), delivery([(106, "2", "Each")]), delivery([(107, "1", "Each")]),
                ])
                let tripIds = try await sim.ok("POST", trips, [trip([(102, "50", "Grams")]), trip([(103, "20", "Grams")])])
                let requests = await sim.simulation.requestCount()
                let site = sim.simulation

                let completed = await site.completeDeliveryOnWebsite(
                    id: made[0], returned: [SimDeliveryReturn(label: SimFacility.demoLabel(110), quantity: 1, unitOfMeasure: "Each",
                                                              reason: "Spoilage")])
                #expect(completed.status == 200)
                let stored = try #require(await site.salesDelivery(id: made[0]))
                #expect(stored.state == .delivered && stored.acceptedPackages == [SimFacility.demoLabel(101)])
                #expect(stored.actualArrivalDateTime != nil)
                #expect(await sim.quantity(110) == 8)
                #expect(await site.voidDeliveryOnWebsite(id: made[1]).status == 200)
                #expect(await sim.quantity(106) == 100)
                #expect(await site.voidDeliveryOnWebsite(id: made[1]).status == 400)  // the API's rules

                #expect(await site.voidTripOnWebsite(id: tripIds[1]).status == 200)
                #expect(await site.departTripOnWebsite(id: tripIds[0]).status == 200)
                #expect(await site.voidTripOnWebsite(id: tripIds[0]).status == 400)
                #expect(await site.trip(id: tripIds[0])?.state == .inTransit)
                #expect(await sim.simulation.requestCount() == requests)

                _ = try await sim.ok("POST", "\(trips)/sale", [tripSale(tripIds[0], [(102, "5", "Grams")])])
                #expect(await site.endTripOnWebsite(id: tripIds[0]).status == 200)
                let ended = try #require(await site.trip(id: tripIds[0]))
                #expect(ended.state == .completed && ended.endCounts.first?.quantity == 45)
                #expect(await sim.shop(102) == 443)

                // The same over HTTP, for demos and scripts.
                let now = await sim.simulation.requestCount()
                let done = try await sim.send("PUT", "/_sim/website\(deliveries)/complete?\(Harness.lic)", json: #"[{"Id":\#(made[2])}]"#)
                #expect(done.status == 200, "\(done.text)")
                #expect(await site.salesDelivery(id: made[2])?.state == .delivered)
                let next = try #require(try await sim.ok("POST", trips, [trip([(104, "5", "Grams")])]).first)
                #expect(try await sim.send("POST", "/_sim/website\(trips)/depart?\(Harness.lic)", json: "[\(step(next))]").status == 200)
                #expect(try await sim.send("POST", "/_sim/website\(trips)/end?\(Harness.lic)", json: "[\(step(next))]").status == 200)
                #expect(await site.trip(id: next)?.state == .completed)
                #expect(await sim.simulation.requestCount() == now + 1)  // the POST that created the trip
                let listed = try await sim.get("/_sim/trips?\(Harness.lic)").json.array ?? []
                #expect(listed.count == 3 && listed.first?["License"]?.string == Harness.license)
                #expect(try await sim.get("/_sim/deliveries").json.array?.count == 3)
            }
        }

        @Test func deliveryRoutesAnswerUnknownPathsAndVerbsAsMetrcDoes() async throws {
            try await Harness.run { sim async throws in
                #expect(try await sim.write("GET", deliveries).status == 405)
                #expect(try await sim.write("POST", "\(trips)/active").status == 405)
                #expect(try await sim.write("GET", "\(trips)/park").status == 404)
                #expect(try await sim.write("GET", "\(deliveries)/hub/accept").status == 405)
                let hub = try await sim.refused("PUT", "\(deliveries)/hub/accept", [#"{"Id":4000001}"#])
                #expect(mentions(hub, "not a sales delivery hub"))
                #expect(try await sim.send("POST", "\(deliveries)?licenseNumber=LIC-OTHER-9999", json: "[]").status == 401)
                #expect(try await sim.write("POST", deliveries, Array(repeating: delivery([(101, "1", "Grams")]), count: 11)).status == 413)
            }
        }
    }
}
