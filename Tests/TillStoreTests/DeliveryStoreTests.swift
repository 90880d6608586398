import Foundation
import GRDB
import Testing
import TillDomain
@testable import TillStore

/// Deliveries and trips in the store: each step's stock and journal row in one transaction, Metrc's order kept
/// locally, and inventory syncs that neither hand back what a vehicle carries nor take a delivery twice.
@Suite final class DeliveryStoreTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("till-deliveries-\(UUID().uuidString.prefix(8))").path

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    static func metrcSays(_ label: String, _ quantity: Decimal) -> MetrcPackageState {
        MetrcPackageState(label: label, metrcId: nil, itemName: label, category: "Buds", unit: "Grams", quantity: quantity,
                          onHold: false, labTestingState: "TestPassed", active: true, lastModified: nil)
    }

    func openStore() throws -> TillStore {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try TillStore(path: directory + "/till.sqlite")
        try store.applyMetrcPackages([Self.metrcSays("A", 10), Self.metrcSays("B", 20)], fullSync: true)
        return store
    }

    static let bodies = DeliveryBodies(
        delivery: { delivery, id, update in #"{"Kind":"\#(update ? "update" : "create")","Id":\#(id.map(String.init) ?? "null")}"# },
        completion: { _, id, _ in #"{"Id":\#(id.map(String.init) ?? "null")}"# },
        deliveryId: { #"{"Id":\#($0.map(String.init) ?? "null")}"# },
        wasteAdjust: { label, _, _, _, _ in #"{"Label":"\#(label)"}"# },
        trip: { _ in #"{"Kind":"trip"}"# },
        tripId: { #"{"RetailerDeliveryId":\#($0.map(String.init) ?? "null")}"# },
        tripSale: { id, time, _, _ in #"{"RetailerDeliveryId":\#(id.map(String.init) ?? "null"),"SalesDateTime":"\#(time)"}"# },
        tripRestock: { id, time, _, _ in #"{"RetailerDeliveryId":\#(id.map(String.init) ?? "null"),"DateTime":"\#(time)"}"# },
        tripEnd: { id, _, _ in #"{"RetailerDeliveryId":\#(id.map(String.init) ?? "null")}"# })

    func context(at: Date = Date()) -> DeliveryContext {
        DeliveryContext(terminalId: nil, actor: "test", license: "LIC", at: at, businessDate: "2026-12-05",
                        localTime: { date in
                            let formatter = DateFormatter()
                            formatter.timeZone = TimeZone(identifier: "UTC")
                            formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS"
                            return formatter.string(from: date)
                        }, bodies: Self.bodies)
    }

    func delivery(_ id: String, _ lines: [(String, Decimal)]) -> DeliveryRequest {
        DeliveryRequest(clientDeliveryId: id, customerType: .consumer, recipient: Recipient(name: "R"),
                        driver: Driver(employeeId: "E1", name: "D", licenseNumber: "L"),
                        vehicle: Vehicle(make: "M", model: "X", plate: "P"), estimatedDeparture: Date(),
                        estimatedArrival: Date().addingTimeInterval(3600),
                        lines: lines.map { SaleLineRequest(packageLabel: $0.0, quantity: $0.1, unit: "Grams", totalAmount: Money(cents: 1000)) })
    }

    static func validate(_ request: DeliveryRequest) -> @Sendable ([String: PackageSnapshot]) throws(TillError) -> [ValidatedLine] {
        { packages throws(TillError) in try SaleRules.validate(request.asSale, packages: packages) }
    }

    static let load: @Sendable ([TripLoadLine], [String: PackageSnapshot]) throws(TillError) -> [Int64] = { load, packages throws(TillError) in
        try DeliveryRules(allowPartialPackages: true).validateLoad(load, packages: packages)
    }

    func shelf(_ store: TillStore, _ label: String) throws -> Decimal {
        try #require(try store.packages(labels: [label])[label]).quantity
    }

    func journal(_ store: TillStore, _ subject: JournalSubject) throws -> [JournalRow] {
        try store.journalRows(subject: subject)
    }

    @Test func aDeliveryTakesItsStockAtOnceAndAVoidBringsItBackAndOwesMetrcTheVoid() throws {
        let store = try openStore()
        let request = delivery("d-1", [("A", 3)])
        let (recorded, replayed) = try store.recordDelivery(request, digest: "x", validate: Self.validate(request), context())
        #expect(!replayed)
        #expect(try shelf(store, "A") == 7)
        #expect(try journal(store, .delivery(recorded.id)).map(\.kind) == [.deliveryCreate])
        // The same id and content: the same delivery; another content: a conflict.
        #expect(try store.recordDelivery(request, digest: "x", validate: Self.validate(request), context()).replayed)
        #expect(throws: TillError.self) { try store.recordDelivery(request, digest: "y", validate: Self.validate(request), self.context()) }

        let voided = try store.voidDelivery(id: recorded.id, context())
        #expect(voided.status == .voided)
        #expect(try shelf(store, "A") == 10)
        #expect(try journal(store, .delivery(recorded.id)).map(\.kind) == [.deliveryCreate, .deliveryVoid])
        #expect(try store.voidDelivery(id: recorded.id, context()).status == .voided)  // again: as it stands
    }

    @Test func twoDeliveriesAtTheSameSecondGetDistinctSalesTimes() throws {
        let store = try openStore()
        let at = Date()
        let first = delivery("d-1", [("A", 1)]), second = delivery("d-2", [("A", 1)])
        let a = try store.recordDelivery(first, digest: "1", validate: Self.validate(first), context(at: at)).delivery
        let b = try store.recordDelivery(second, digest: "2", validate: Self.validate(second), context(at: at)).delivery
        #expect(a.salesDateTime != b.salesDateTime)
    }

    @Test func aCompletionRestocksOrHoldsWhatCameBackAndAVoidAfterItIsRefused() throws {
        let store = try openStore()
        let request = delivery("d-1", [("A", 3), ("B", 2)])
        let recorded = try store.recordDelivery(request, digest: "x", validate: Self.validate(request), context()).delivery
        let completion = DeliveryCompletion(actualArrival: Date(), accepted: ["A"],
                                            returned: [DeliveryReturnedPackage(label: "B", quantity: 2, unit: "Grams", reason: "Spoilage",
                                                                               disposition: .quarantine)])
        let picos = try DeliveryRules.checkCompletion(completion, of: recorded, reasons: ["Spoilage": false],
                                                      packageUnits: ["A": "Grams", "B": "Grams"])
        let completed = try store.completeDelivery(id: recorded.id, completion, returnedPicos: picos, actualArrival: "t",
                                                   wasteNote: "n", context())
        #expect(completed.status == .completed)
        #expect(try shelf(store, "B") == 18)  // quarantined: off the shelf
        // Metrc puts the 2 g back on B; the sync must keep them off the shelf.
        try store.applyMetrcPackages([Self.metrcSays("A", 7), Self.metrcSays("B", 20)], fullSync: true)
        #expect(try shelf(store, "B") == 18)
        #expect(throws: TillError.self) { try store.voidDelivery(id: recorded.id, self.context()) }
        // The same completion again answers as it stands.
        #expect(try store.completeDelivery(id: recorded.id, completion, returnedPicos: picos, actualArrival: "t",
                                           wasteNote: "n", context()).status == .completed)
    }

    @Test func aCompletionMustAccountForEveryLabelOnceAndAReasonItsNote() throws {
        let store = try openStore()
        let request = delivery("d-1", [("A", 3), ("B", 2)])
        let recorded = try store.recordDelivery(request, digest: "x", validate: Self.validate(request), context()).delivery
        let units = ["A": "Grams", "B": "Grams"]
        let missing = DeliveryCompletion(actualArrival: Date(), accepted: ["A"], returned: [])
        #expect { try DeliveryRules.checkCompletion(missing, of: recorded, reasons: [:], packageUnits: units) } throws: {
            ($0 as? TillError)?.code == "labels_not_accounted"
        }
        let noNote = DeliveryCompletion(actualArrival: Date(), accepted: ["A"],
                                        returned: [DeliveryReturnedPackage(label: "B", quantity: 1, unit: "Grams", reason: "damaged")])
        #expect { try DeliveryRules.checkCompletion(noNote, of: recorded, reasons: ["Damaged": true], packageUnits: units) } throws: {
            ($0 as? TillError)?.code == "note_required"
        }
        let tooMuch = DeliveryCompletion(actualArrival: Date(), accepted: ["A"],
                                         returned: [DeliveryReturnedPackage(label: "B", quantity: 3, unit: "Grams", reason: "Spoilage")])
        #expect { try DeliveryRules.checkCompletion(tooMuch, of: recorded, reasons: ["Spoilage": false], packageUnits: units) } throws: {
            ($0 as? TillError)?.code == "too_much_returned"
        }
    }

    @Test func aTripMovesStockToTheVehicleKeepsMetrcsOrderAndEndsWithTheRightCounts() throws {
        let store = try openStore()
        let request = TripRequest(clientTripId: "t-1", driver: Driver(employeeId: "E", name: "D", licenseNumber: "L"),
                                  vehicle: Vehicle(make: "M", model: "X", plate: "P"), estimatedDeparture: Date(),
                                  load: [TripLoadLine(packageLabel: "A", quantity: 4, unit: "Grams", totalPrice: Money(cents: 4000))])
        let trip = try store.recordTrip(request, digest: "t", validateLoad: Self.load, context()).trip
        #expect(try shelf(store, "A") == 6)
        #expect(trip.stock == [TripStock(packageLabel: "A", quantity: 4, unit: "Grams")])
        // An inventory sync sees Metrc's 10 (the vehicle's goods are still the facility's): the shelf stays 6.
        try store.applyMetrcPackages([Self.metrcSays("A", 10), Self.metrcSays("B", 20)], fullSync: true)
        #expect(try shelf(store, "A") == 6)

        let sale = TripSaleRequest(clientSaleId: "s-1", customerType: .consumer, recipient: Recipient(name: "C"),
                                   lines: [SaleLineRequest(packageLabel: "A", quantity: 1, unit: "Grams", totalAmount: Money(cents: 1000))])
        let validateSale: @Sendable ([String: PackageSnapshot]) throws(TillError) -> [ValidatedLine] = { packages throws(TillError) in
            try SaleRules.validate(sale.asSale, packages: packages)
        }
        #expect { try store.recordTripSale(tripId: trip.id, sale, digest: "s", validate: validateSale, self.context()) } throws: {
            ($0 as? TillError)?.code == "trip_not_departed"
        }
        _ = try store.departTrip(id: trip.id, context())
        #expect { try store.voidTrip(id: trip.id, self.context()) } throws: { ($0 as? TillError)?.code == "trip_departed" }
        let sold = try store.recordTripSale(tripId: trip.id, sale, digest: "s", validate: validateSale, context())
        #expect(sold.trip.stock.first?.quantity == 3)
        #expect(try store.recordTripSale(tripId: trip.id, sale, digest: "s", validate: validateSale, context()).replayed)

        // Swap: B on, A off (what is left of A goes back to the shop).
        let restocked = try store.restockTrip(id: trip.id, RestockRequest(clientRestockId: "r-1",
                                                                          add: [TripLoadLine(packageLabel: "B", quantity: 5, unit: "Grams")],
                                                                          remove: ["A"]),
                                              digest: "r", validateLoad: Self.load, context())
        #expect(restocked.stock == [TripStock(packageLabel: "B", quantity: 5, unit: "Grams")])
        #expect(try shelf(store, "A") == 9)
        #expect(try shelf(store, "B") == 15)

        #expect { try store.endTrip(id: trip.id, TripEndRequest(actualArrival: Date(), counts: [TripCount(packageLabel: "B", quantity: 4, unit: "Grams")]), self.context()) } throws: {
            ($0 as? TillError)?.code == "end_count_mismatch" && ($0 as? TillError)?.details["packageLabel"] == "B"
        }
        let ended = try store.endTrip(id: trip.id, TripEndRequest(actualArrival: Date(), counts: [TripCount(packageLabel: "B", quantity: 5, unit: "Grams")]), context())
        #expect(ended.status == .ended && ended.stock.isEmpty)
        #expect(try shelf(store, "B") == 20)
        #expect(try journal(store, .trip(trip.id)).map(\.kind) == [.tripCreate, .tripDepart, .tripSale, .tripRestock, .tripEnd])
        #expect { try store.departTrip(id: trip.id, self.context()) } throws: { ($0 as? TillError)?.code == "trip_ended" }
    }

    @Test func metrcsIdFillsTheLaterStepsOfTheSubject() async throws {
        let store = try openStore()
        let request = TripRequest(clientTripId: "t-1", driver: Driver(employeeId: "E", name: "D", licenseNumber: "L"),
                                  vehicle: Vehicle(make: "M", model: "X", plate: "P"), estimatedDeparture: Date(),
                                  load: [TripLoadLine(packageLabel: "A", quantity: 4, unit: "Grams")])
        let trip = try store.recordTrip(request, digest: "t", validateLoad: Self.load, context()).trip
        _ = try store.departTrip(id: trip.id, context())
        let rows = try journal(store, .trip(trip.id))
        await withCheckedContinuation { done in
            Task {
                await store.recordApplied([(rows[0], 4242)], at: Date(), audit: AuditEvent(actor: "t", action: "t"),
                                          meanwhile: { _ in }, completion: { _ in done.resume() })
            }
        }
        await store.caughtUp()
        #expect(try journal(store, .trip(trip.id)).map(\.body) == [#"{"RetailerDeliveryId":4242}"#])
        #expect(try store.trip(id: trip.id)?.metrcTripId == 4242)
        #expect(try store.trip(id: trip.id)?.steps.map(\.status) == [.reported, .pending])
    }
}
