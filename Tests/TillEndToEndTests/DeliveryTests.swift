import Foundation
import MetrcSimulator
import Testing
import TillAPI
import TillDomain
import TillStore

/// Sales deliveries and vehicle trips end to end over the socket, checked against the simulator's records:
/// the deliveries, the trips' vehicles and the packages.
@Suite struct DeliveryTests {
    static let preRoll = "1A4FF0100000022000000106"  // 100 Each
    static let shake = "1A4FF0100000022000000105"  // 453.6 Grams

    static func deliveryBody(_ id: String, lines: String? = nil, extra: String = "") -> String {
        """
        {"clientDeliveryId":"\(id)","customerType":"Consumer","recipient":{"name":"Ada Lovelace","street1":"1 Main St",
         "city":"Denver","state":"CO","postalCode":"80202"},"driver":{"employeeId":"E-7","name":"Sam Driver","licenseNumber":"DL-1"},
         "vehicle":{"make":"Ford","model":"Transit","plate":"ABC123"},"estimatedDeparture":"2026-12-05T14:00:00-07:00",
         "estimatedArrival":"2026-12-05T15:00:00-07:00"\(extra),
         "lines":\(lines ?? #"[{"packageLabel":"\#(Labels.flower)","quantity":3.5,"unit":"Grams","totalAmount":35.00},{"packageLabel":"\#(preRoll)","quantity":2,"unit":"Each","totalAmount":20.00}]"#)}
        """
    }

    static func tripBody(_ id: String, load: String? = nil) -> String {
        """
        {"clientTripId":"\(id)","driver":{"employeeId":"E-7","name":"Sam Driver","licenseNumber":"DL-1"},
         "vehicle":{"make":"Ford","model":"Transit","plate":"ABC123"},"estimatedDeparture":"2026-12-05T09:00:00-07:00",
         "load":\(load ?? #"[{"packageLabel":"\#(Labels.flower)","quantity":10,"unit":"Grams","totalPrice":100},{"packageLabel":"\#(preRoll)","quantity":10,"unit":"Each","totalPrice":100}]"#)}
        """
    }

    static func tripSale(_ id: String, label: String = Labels.flower, quantity: String = "3.5", unit: String = "Grams") -> String {
        """
        {"clientSaleId":"\(id)","customerType":"Consumer","recipient":{"name":"Grace Hopper","street1":"2 Elm St"},
         "lines":[{"packageLabel":"\(label)","quantity":\(quantity),"unit":"\(unit)","totalAmount":35.00}]}
        """
    }

    func driver(_ till: TillHarness) throws -> String {
        try till.services.store.addTerminal(name: "driver-\(UUID().uuidString.prefix(6))", role: .driver).token
    }

    func metrcQuantity(_ till: TillHarness, _ label: String) async -> Decimal? {
        await till.simulation.packageQuantity(license: TillHarness.license, label: label)
    }

    // MARK: Sales deliveries

    @Test func aDeliveryIsReportedOnceAsADeliveryAndCompletedWithOnePackageBack() async throws {
        try await TillHarness.run { till in
            let flowerBefore = try #require(try till.localQuantity(Labels.flower))
            let created = try await till.request("POST", "/v1/deliveries", body: Self.deliveryBody("d-1"), token: till.registerToken)
            #expect(created.status == 201, "\(created.json)")
            let id = try #require(created["id"] as? Int)
            let metrcId = Int64(try #require(created["metrcDeliveryId"] as? Int))
            #expect(try till.localQuantity(Labels.flower) == flowerBefore - Decimal(string: "3.5")!)
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 0, "never also a receipt")
            let held = try #require(await till.simulation.salesDelivery(id: metrcId))
            #expect(held.transactions.map(\.packageLabel).sorted() == [Labels.flower, Self.preRoll].sorted())
            #expect(held.salesDateTime == created["salesDateTime"] as? String)
            // A retry is the same delivery.
            let again = try await till.request("POST", "/v1/deliveries", body: Self.deliveryBody("d-1"), token: till.registerToken)
            #expect(again["id"] as? Int == id)
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/deliveries") == 1)

            let completed = try await till.request("POST", "/v1/deliveries/\(id)/complete", body: """
                {"actualArrival":"2026-12-05T15:05:00-07:00","accepted":["\(Labels.flower)"],
                 "returned":[{"label":"\(Self.preRoll)","quantity":2,"unit":"Each","reason":"Customer Refused","disposition":"restock"}]}
                """, token: till.registerToken)
            #expect(completed.status == 200, "\(completed.json)")
            #expect(completed["status"] as? String == "completed")
            try await till.waitUntil("the completion is in Metrc") { await till.simulation.salesDelivery(id: metrcId)?.state == .delivered }
            let done = try #require(await till.simulation.salesDelivery(id: metrcId))
            #expect(done.acceptedPackages == [Labels.flower])
            #expect(done.returnedPackages.map(\.label) == [Self.preRoll])
            // Stock agrees, locally and in Metrc: the flower gone, the pre-rolls back.
            #expect(try till.localQuantity(Self.preRoll) == 100)
            #expect(await metrcQuantity(till, Self.preRoll) == 100)
            #expect(await metrcQuantity(till, Labels.flower) == flowerBefore - Decimal(string: "3.5")!)
            let view = try await till.request("GET", "/v1/deliveries/\(id)", token: till.managerToken)
            #expect((view["steps"] as? [[String: Any]])?.map { $0["status"] as? String } == ["reported", "reported"])
        }
    }

    @Test func aVoidBringsStockBackInTillAndMetrcAndAfterCompletionItIsRefused() async throws {
        try await TillHarness.run { till in
            let created = try await till.request("POST", "/v1/deliveries", body: Self.deliveryBody("d-void"), token: till.registerToken)
            let id = try #require(created["id"] as? Int)
            let metrcId = Int64(try #require(created["metrcDeliveryId"] as? Int))
            let voided = try await till.request("DELETE", "/v1/deliveries/\(id)", token: till.registerToken)
            #expect(voided.status == 200 && voided["status"] as? String == "voided", "\(voided.json)")
            try await till.waitUntil("the void is in Metrc") { await till.simulation.salesDelivery(id: metrcId)?.state == .voided }
            #expect(try till.localQuantity(Self.preRoll) == 100)
            #expect(await metrcQuantity(till, Self.preRoll) == 100)

            let second = try await till.request("POST", "/v1/deliveries", body: Self.deliveryBody("d-done"), token: till.registerToken)
            let secondId = try #require(second["id"] as? Int)
            _ = try await till.request("POST", "/v1/deliveries/\(secondId)/complete", body: """
                {"actualArrival":"2026-12-05T15:05:00-07:00","accepted":["\(Labels.flower)","\(Self.preRoll)"]}
                """, token: till.registerToken)
            let refused = try await till.request("DELETE", "/v1/deliveries/\(secondId)", token: till.registerToken)
            #expect(refused.status == 409 && refused.errorCode == "delivery_completed", "\(refused.json)")
        }
    }

    @Test func aCompletionMissingALabelOrANoteIsRefusedBeforeMetrcIsAsked() async throws {
        try await TillHarness.run { till in
            let created = try await till.request("POST", "/v1/deliveries", body: Self.deliveryBody("d-bad"), token: till.registerToken)
            let id = try #require(created["id"] as? Int)
            await till.simulation.resetCounters()
            let missing = try await till.request("POST", "/v1/deliveries/\(id)/complete", body: """
                {"actualArrival":"2026-12-05T15:05:00-07:00","accepted":["\(Labels.flower)"]}
                """, token: till.registerToken)
            #expect(missing.status == 422 && missing.errorCode == "labels_not_accounted", "\(missing.json)")
            #expect((missing.error?["details"] as? [String: Any])?["missing"] as? String == Self.preRoll)
            let noNote = try await till.request("POST", "/v1/deliveries/\(id)/complete", body: """
                {"actualArrival":"2026-12-05T15:05:00-07:00","accepted":["\(Labels.flower)"],
                 "returned":[{"label":"\(Self.preRoll)","quantity":1,"unit":"Each","reason":"Damaged"}]}
                """, token: till.registerToken)
            #expect(noNote.status == 400 && noNote.errorCode == "note_required", "\(noNote.json)")
            #expect(await till.simulation.requestCount(method: "PUT", pathPrefix: "/sales/v2/deliveries") == 0)
            let view = try await till.request("GET", "/v1/deliveries/\(id)", token: till.registerToken)
            #expect(view["status"] as? String == "open")
        }
    }

    @Test func aDeliveryCreateMetrcCommittedButNeverAnsweredIsFoundNotSentTwice() async throws {
        try await TillHarness.run(deadline: .milliseconds(300), metrcTimeout: .seconds(2)) { till in
            await till.simulation.setFaults([SimFault(.commitThenDrop, method: "POST", pathPrefix: "/sales/v2/deliveries", times: 1)])
            let created = try await till.request("POST", "/v1/deliveries", body: Self.deliveryBody("d-doubt"), token: till.registerToken)
            #expect([201, 202].contains(created.status), "\(created.json)")  // 201 once the probe found it in time
            let id = try #require(created["id"] as? Int)
            try await till.waitUntil("Till records Metrc's delivery") {
                let view = try await till.request("GET", "/v1/deliveries/\(id)", token: till.registerToken)
                return view["metrcDeliveryId"] as? Int != nil
            }
            #expect(await till.simulation.salesDeliveries(license: TillHarness.license).count == 1)
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/deliveries") == 1)
        }
    }

    @Test func aFacilityWithoutDeliveriesGetsAClearRefusal() async throws {
        var simulator = SimulatorConfiguration()
        for index in simulator.facilities.indices {
            simulator.facilities[index].deliveryFlags.retailerDelivery = false
            simulator.facilities[index].deliveryFlags.canDeliverSalesToConsumers = false
        }
        try await TillHarness.run(simulator: simulator) { till in
            let driver = try driver(till)
            let trip = try await till.request("POST", "/v1/trips", body: Self.tripBody("t-none"), token: driver)
            #expect(trip.status == 422 && trip.errorCode == "trip_not_allowed", "\(trip.json)")
            let delivery = try await till.request("POST", "/v1/deliveries", body: Self.deliveryBody("d-none"), token: till.registerToken)
            #expect(delivery.status == 422 && delivery.errorCode == "delivery_not_allowed", "\(delivery.json)")
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/deliveries") == 0)
        }
    }

    // MARK: Vehicle trips

    @Test func aFullTripLeavesMetrcsVehicleAndShopEqualToTills() async throws {
        try await TillHarness.run { till in
            let driver = try driver(till)
            let flowerShop = try #require(try till.localQuantity(Labels.flower))
            let created = try await till.request("POST", "/v1/trips", body: Self.tripBody("t-1"), token: driver)
            #expect(created.status == 201, "\(created.json)")
            let id = try #require(created["id"] as? Int)
            let metrcId = Int64(try #require(created["metrcTripId"] as? Int))
            #expect(try till.localQuantity(Labels.flower) == flowerShop - 10)

            let early = try await till.request("POST", "/v1/trips/\(id)/sales", body: Self.tripSale("early"), token: driver)
            #expect(early.status == 409 && early.errorCode == "trip_not_departed", "\(early.json)")
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/sales/v2/deliveries/retailer/sale") == 0)

            #expect(try await till.request("POST", "/v1/trips/\(id)/depart", token: driver).status == 200)
            for sale in ["s-1", "s-2"] {
                let sold = try await till.request("POST", "/v1/trips/\(id)/sales", body: Self.tripSale(sale), token: driver)
                #expect(sold.status == 201, "\(sold.json)")
            }
            // Swap the pre-rolls for shake mid-route.
            let restocked = try await till.request("POST", "/v1/trips/\(id)/restock", body: """
                {"clientRestockId":"r-1","add":[{"packageLabel":"\(Self.shake)","quantity":28,"unit":"Grams","totalPrice":80}],
                 "remove":["\(Self.preRoll)"]}
                """, token: driver)
            #expect(restocked.status == 200, "\(restocked.json)")

            let wrong = try await till.request("POST", "/v1/trips/\(id)/end", body: """
                {"counts":[{"packageLabel":"\(Labels.flower)","quantity":4,"unit":"Grams"},{"packageLabel":"\(Self.shake)","quantity":28,"unit":"Grams"}]}
                """, token: driver)
            #expect(wrong.status == 422 && wrong.errorCode == "end_count_mismatch", "\(wrong.json)")
            #expect((wrong.error?["details"] as? [String: Any])?["packageLabel"] as? String == Labels.flower)

            // What Metrc's vehicle holds before the end equals Till's own stock for it.
            try await till.waitUntil("every step is in Metrc") {
                (try await till.request("GET", "/v1/trips/\(id)", token: driver))["reported"] as? Bool == true
            }
            let trip = try await till.request("GET", "/v1/trips/\(id)", token: driver)
            let tillVehicle = Dictionary(uniqueKeysWithValues: (trip["stock"] as? [[String: Any]] ?? []).map {
                ($0["packageLabel"] as! String, ($0["quantity"] as! NSNumber).decimalValue)
            })
            let metrcTrip = try #require(await till.simulation.trip(id: metrcId))
            let metrcVehicle = Dictionary(uniqueKeysWithValues: metrcTrip.packages.map { ($0.packageLabel, $0.quantity) })
            #expect(tillVehicle == metrcVehicle)
            #expect(tillVehicle == [Labels.flower: 3, Self.shake: 28])
            for label in [Labels.flower, Self.preRoll, Self.shake] {
                #expect(try till.localQuantity(label) == (await till.simulation.shopQuantity(license: TillHarness.license, label: label)),
                        "shop quantity of \(label)")
            }

            let ended = try await till.request("POST", "/v1/trips/\(id)/end", body: """
                {"actualArrival":"2026-12-05T17:00:00-07:00",
                 "counts":[{"packageLabel":"\(Labels.flower)","quantity":3,"unit":"Grams"},{"packageLabel":"\(Self.shake)","quantity":28,"unit":"Grams"}]}
                """, token: driver)
            #expect(ended.status == 200 && ended["status"] as? String == "ended", "\(ended.json)")
            try await till.waitUntil("the end is in Metrc") { await till.simulation.trip(id: metrcId)?.state == .completed }
            for label in [Labels.flower, Self.preRoll, Self.shake] {
                #expect(try till.localQuantity(label) == (await till.simulation.shopQuantity(license: TillHarness.license, label: label)),
                        "shop quantity of \(label) after the end")
            }
            #expect(try till.localQuantity(Labels.flower) == flowerShop - 7)
            // Each step once, in Metrc's order.
            for (path, count) in [("/sales/v2/deliveries/retailer/depart", 1), ("/sales/v2/deliveries/retailer/sale", 2),
                                  ("/sales/v2/deliveries/retailer/restock", 1), ("/sales/v2/deliveries/retailer/end", 1)] {
                #expect(await till.simulation.requestCount(method: "POST", pathPrefix: path) == count, "\(path)")
            }
        }
    }

    @Test func aTripEndedOnMetrcsWebsiteIsFrozenAndAManagerIsAlerted() async throws {
        try await TillHarness.run { till in
            let driver = try driver(till)
            let created = try await till.request("POST", "/v1/trips", body: Self.tripBody("t-web"), token: driver)
            let id = try #require(created["id"] as? Int)
            let metrcId = Int64(try #require(created["metrcTripId"] as? Int))
            _ = try await till.request("POST", "/v1/trips/\(id)/depart", token: driver)
            try await till.waitUntil("the departure is in Metrc") { await till.simulation.trip(id: metrcId)?.state == .inTransit }
            _ = await till.simulation.endTripOnWebsite(id: metrcId)

            #expect(try await till.services.deliverySweep.sweepOnce() == 1)
            let trip = try await till.request("GET", "/v1/trips/\(id)", token: driver)
            #expect(trip["status"] as? String == "frozen", "\(trip.json)")
            let sale = try await till.request("POST", "/v1/trips/\(id)/sales", body: Self.tripSale("late"), token: driver)
            #expect(sale.status == 409 && sale.errorCode == "trip_frozen")
            let reporting = try await till.request("GET", "/v1/reporting", token: till.managerToken)
            let alerts = reporting["alerts"] as? [[String: Any]] ?? []
            #expect(alerts.contains { $0["kind"] as? String == "trip_frozen" && $0["subject"] as? String == "trip:\(id)" }, "\(alerts)")
            #expect(try await till.services.deliverySweep.sweepOnce() == 0)  // once
        }
    }
}
