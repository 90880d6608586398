import Foundation
import Hummingbird
import TillDomain
import TillReporter
import TillStore

/// Sales deliveries (registers, managers) and vehicle trips (drivers, managers): docs/deliveries.md.
struct DeliveryRoutes: Sendable {
    let services: TillServices
    var desk: DeliveryDesk { services.deliveries }

    func add(to router: Router<TillRequestContext>) {
        let v1 = router.group("v1")
        v1.post("deliveries", use: postDelivery)
        v1.get("deliveries", use: listDeliveries)
        v1.get("deliveries/:id", use: getDelivery)
        v1.put("deliveries/:id", use: putDelivery)
        v1.delete("deliveries/:id", use: voidDelivery)
        v1.post("deliveries/:id/complete", use: completeDelivery)
        v1.post("trips", use: postTrip)
        v1.get("trips/:id", use: getTrip)
        v1.delete("trips/:id", use: voidTrip)
        v1.post("trips/:id/depart", use: departTrip)
        v1.post("trips/:id/sales", use: sellFromTrip)
        v1.post("trips/:id/restock", use: restockTrip)
        v1.post("trips/:id/end", use: endTrip)
    }

    static let deliveryRoles: Set<TerminalRole> = [.register, .manager]
    static let tripRoles: Set<TerminalRole> = [.driver, .manager]

    // MARK: Sales deliveries

    @Sendable func postDelivery(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.register, .manager])
        let body: DeliveryRequest = try RequestDecoding.decode(DeliveryRequest.self, from: try await Routes.readBody(request, context: context),
                                                               noun: "delivery", shape: Self.deliveryShape)
        let outcome = try await desk.create(body, digest: try Self.digest(body), terminal: terminal)
        return JSONResponse.make(DeliveryJSON(outcome.value), status: outcome.reported ? .created : .accepted)
    }

    @Sendable func putDelivery(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.register, .manager])
        let id = try Routes.idParameter(context, code: "invalid_delivery_id", noun: "delivery")
        let body: DeliveryRequest = try RequestDecoding.decode(DeliveryRequest.self, from: try await Routes.readBody(request, context: context),
                                                               noun: "delivery", shape: Self.deliveryShape)
        let outcome = try await desk.update(id: id, body, digest: try Self.digest(body), terminal: terminal)
        return JSONResponse.make(DeliveryJSON(outcome.value))
    }

    @Sendable func completeDelivery(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.register, .manager])
        let id = try Routes.idParameter(context, code: "invalid_delivery_id", noun: "delivery")
        let body = try RequestDecoding.decode(CompletionBody.self, from: try await Routes.readBody(request, context: context),
                                              noun: "completion", shape: Self.completionShape)
        let returned = try body.returned?.enumerated().map { index, item throws(TillError) in
            DeliveryReturnedPackage(label: item.label, quantity: item.quantity, unit: item.unit, reason: item.reason,
                                    note: item.note.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 },
                                    disposition: try Self.disposition(item.disposition, at: "returned[\(index)].disposition"))
        } ?? []
        let completion = DeliveryCompletion(actualArrival: body.actualArrival, accepted: body.accepted ?? [], returned: returned)
        let outcome = try await desk.complete(id: id, completion, terminal: terminal)
        return JSONResponse.make(DeliveryJSON(outcome.value))
    }

    @Sendable func voidDelivery(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.register, .manager])
        let id = try Routes.idParameter(context, code: "invalid_delivery_id", noun: "delivery")
        return JSONResponse.make(DeliveryJSON(try await desk.void(id: id, terminal: terminal).value))
    }

    @Sendable func getDelivery(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal([.register, .manager])
        let id = try Routes.idParameter(context, code: "invalid_delivery_id", noun: "delivery")
        await services.store.caughtUp()
        guard let delivery = try desk.delivery(id: id) else {
            throw TillError(.notFound, code: "delivery_not_found", "No delivery \(id).", details: ["deliveryId": "\(id)"])
        }
        return JSONResponse.make(DeliveryJSON(delivery))
    }

    @Sendable func listDeliveries(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal([.register, .manager])
        let date = request.uri.queryParameters.get("date")
            ?? FacilityDate.string(of: Date(), in: services.configuration.timeZone)
        guard Routes.isCalendarDate(date) else {
            throw TillError.invalid("invalid_date", "date must be YYYY-MM-DD (the facility's local date).")
        }
        await services.store.caughtUp()
        let deliveries = try desk.deliveries(on: date)
        return JSONResponse.make(DeliveryListJSON(date: date, count: deliveries.count, deliveries: deliveries.map { DeliveryJSON($0) }))
    }

    // MARK: Vehicle trips

    @Sendable func postTrip(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.driver, .manager])
        let body = try RequestDecoding.decode(TripRequest.self, from: try await Routes.readBody(request, context: context),
                                              noun: "trip", shape: Self.tripShape)
        let outcome = try await desk.createTrip(body, digest: try Self.digest(body), terminal: terminal)
        return JSONResponse.make(TripJSON(outcome.value), status: outcome.reported ? .created : .accepted)
    }

    @Sendable func departTrip(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.driver, .manager])
        let id = try Routes.idParameter(context, code: "invalid_trip_id", noun: "trip")
        try Self.emptyObject(try await Routes.readBody(request, context: context), noun: "departure")
        return Self.answer(try await desk.depart(tripId: id, terminal: terminal))
    }

    @Sendable func sellFromTrip(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.driver, .manager])
        let id = try Routes.idParameter(context, code: "invalid_trip_id", noun: "trip")
        let body = try RequestDecoding.decode(TripSaleRequest.self, from: try await Routes.readBody(request, context: context),
                                              noun: "sale", shape: Self.tripSaleShape)
        let outcome = try await desk.sell(tripId: id, body, digest: try Self.digest(body), terminal: terminal)
        let (trip, event) = outcome.value
        return JSONResponse.make(TripSaleJSON(saleId: event.id, clientSaleId: event.clientId, totalAmount: event.totalAmount,
                                              status: outcome.reported ? "reported" : "pending_report", trip: TripJSON(trip)),
                                 status: outcome.reported ? .created : .accepted)
    }

    @Sendable func restockTrip(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.driver, .manager])
        let id = try Routes.idParameter(context, code: "invalid_trip_id", noun: "trip")
        let body = try RequestDecoding.decode(RestockBody.self, from: try await Routes.readBody(request, context: context),
                                              noun: "restock", shape: Self.restockShape)
        let restock = RestockRequest(clientRestockId: body.clientRestockId, add: body.add ?? [], remove: body.remove ?? [])
        return Self.answer(try await desk.restock(tripId: id, restock, digest: try Self.digest(restock), terminal: terminal))
    }

    @Sendable func endTrip(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.driver, .manager])
        let id = try Routes.idParameter(context, code: "invalid_trip_id", noun: "trip")
        let body = try RequestDecoding.decode(EndBody.self, from: try await Routes.readBody(request, context: context),
                                              noun: "trip end", shape: Self.endShape)
        let end = TripEndRequest(actualArrival: body.actualArrival ?? Date(), counts: body.counts)
        return Self.answer(try await desk.end(tripId: id, end, terminal: terminal))
    }

    @Sendable func voidTrip(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.driver, .manager])
        let id = try Routes.idParameter(context, code: "invalid_trip_id", noun: "trip")
        return Self.answer(try await desk.voidTrip(id: id, terminal: terminal))
    }

    @Sendable func getTrip(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal([.driver, .manager])
        let id = try Routes.idParameter(context, code: "invalid_trip_id", noun: "trip")
        await services.store.caughtUp()
        guard let trip = try desk.trip(id: id) else {
            throw TillError(.notFound, code: "trip_not_found", "No trip \(id).", details: ["tripId": "\(id)"])
        }
        return JSONResponse.make(TripJSON(trip))
    }

    private static func answer(_ outcome: StepOutcome<Trip>) -> Response {
        JSONResponse.make(TripJSON(outcome.value))
    }

    // MARK: Reading requests

    struct CompletionBody: Decodable {
        struct Returned: Decodable {
            var label: String
            var quantity: Decimal
            var unit: String
            var reason: String
            var note: String?
            var disposition: String?
        }
        var actualArrival: Date
        var accepted: [String]?
        var returned: [Returned]?
    }

    struct RestockBody: Decodable {
        var clientRestockId: String
        var add: [TripLoadLine]?
        var remove: [String]?
    }

    struct EndBody: Decodable {
        var actualArrival: Date?
        var counts: [TripCount]
    }

    static let recipientShape = RequestDecoding.Shape.object(
        ["name": .value, "street1": .value, "street2": .value, "city": .value, "county": .value, "state": .value,
         "postalCode": .value, "phone": .value])
    static let driverShape = RequestDecoding.Shape.object(["employeeId": .value, "name": .value, "licenseNumber": .value])
    static let vehicleShape = RequestDecoding.Shape.object(["make": .value, "model": .value, "plate": .value])
    static let lineShape = RequestDecoding.Shape.object(
        ["packageLabel": .value, "quantity": .value, "unit": .value, "totalAmount": .value])
    static let loadShape = RequestDecoding.Shape.object(["packageLabel": .value, "quantity": .value, "unit": .value, "totalPrice": .value])
    static let deliveryShape = RequestDecoding.Shape.object(
        ["clientDeliveryId": .value, "customerType": .value, "patientLicenseNumber": .value, "caregiverLicenseNumber": .value,
         "consumerId": .value, "recipient": recipientShape, "driver": driverShape, "vehicle": vehicleShape,
         "plannedRoute": .value, "estimatedDeparture": .value, "estimatedArrival": .value, "lines": .array(lineShape)])
    static let completionShape = RequestDecoding.Shape.object(
        ["actualArrival": .value, "accepted": .array(.value),
         "returned": .array(.object(["label": .value, "quantity": .value, "unit": .value, "reason": .value, "note": .value,
                                     "disposition": .value]))])
    static let tripShape = RequestDecoding.Shape.object(
        ["clientTripId": .value, "driver": driverShape, "vehicle": vehicleShape, "estimatedDeparture": .value,
         "load": .array(loadShape)])
    static let tripSaleShape = RequestDecoding.Shape.object(
        ["clientSaleId": .value, "customerType": .value, "patientLicenseNumber": .value, "caregiverLicenseNumber": .value,
         "consumerId": .value, "recipient": recipientShape, "lines": .array(lineShape)])
    static let restockShape = RequestDecoding.Shape.object(["clientRestockId": .value, "add": .array(loadShape), "remove": .array(.value)])
    static let endShape = RequestDecoding.Shape.object(
        ["actualArrival": .value, "counts": .array(.object(["packageLabel": .value, "quantity": .value, "unit": .value]))])

    /// A departure carries nothing: an empty body, or `{}`.
    private static func emptyObject(_ body: Data, noun: String) throws(TillError) {
        guard !body.isEmpty else { return }
        struct Nothing: Decodable {}
        _ = try RequestDecoding.decode(Nothing.self, from: body, noun: noun, shape: .object([:]))
    }

    private static func disposition(_ given: String?, at field: String) throws(TillError) -> ReturnDisposition? {
        guard let given else { return nil }
        guard let known = ReturnDisposition(rawValue: given.lowercased()) else {
            throw .invalid("invalid_disposition", "disposition must be restock, quarantine or waste.", details: ["field": field])
        }
        return known
    }

    /// The request's content in one spelling: a retry with the same id and content is a replay.
    private static func digest(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return sha256Hex(Array(try encoder.encode(value)))
    }
}

// MARK: - Answers

struct StepJSON: Encodable {
    var step: String
    var status: String
    var at: Date
    var reportedAt: Date?
    var messages: [String]?

    init(_ step: DeliveryStep) {
        self.step = step.step
        status = step.status.rawValue
        at = step.createdAt
        reportedAt = step.reportedAt
        messages = step.messages
    }
}

struct DeliveryJSON: Encodable {
    struct Line: Encodable {
        var packageLabel: String
        var quantity: Decimal
        var unit: String
        var totalAmount: Money
    }

    var id: Int64
    var clientDeliveryId: String
    var status: String
    var frozenReason: String?
    var metrcDeliveryId: Int64?
    var businessDate: String
    var salesDateTime: String
    var customerType: String
    var patientLicenseNumber: String?
    var consumerId: String?
    var recipient: Recipient
    var driver: Driver
    var vehicle: Vehicle
    var plannedRoute: String?
    var estimatedDeparture: Date
    var estimatedArrival: Date
    var lines: [Line]
    var totalAmount: Money
    var actualArrival: Date?
    var accepted: [String]?
    var returned: [DeliveryReturnedPackage]?
    var reported: Bool
    var steps: [StepJSON]

    init(_ delivery: Delivery) {
        let request = delivery.request
        id = delivery.id
        clientDeliveryId = request.clientDeliveryId
        status = delivery.frozenReason == nil ? delivery.status.rawValue : "frozen"
        frozenReason = delivery.frozenReason
        metrcDeliveryId = delivery.metrcDeliveryId
        businessDate = delivery.businessDate
        salesDateTime = delivery.salesDateTime
        customerType = request.customerType.rawValue
        patientLicenseNumber = request.patientLicenseNumber
        consumerId = request.consumerId
        recipient = request.recipient
        driver = request.driver
        vehicle = request.vehicle
        plannedRoute = request.plannedRoute
        estimatedDeparture = request.estimatedDeparture
        estimatedArrival = request.estimatedArrival
        lines = delivery.lines.map { Line(packageLabel: $0.packageLabel, quantity: $0.quantity, unit: $0.unit, totalAmount: $0.totalAmount) }
        totalAmount = delivery.totalAmount
        actualArrival = delivery.completion?.actualArrival
        accepted = delivery.completion?.accepted
        returned = delivery.completion?.returned
        reported = delivery.isReported
        steps = delivery.steps.map(StepJSON.init)
    }
}

struct DeliveryListJSON: Encodable {
    var date: String
    var count: Int
    var deliveries: [DeliveryJSON]
}

struct TripJSON: Encodable {
    struct Stock: Encodable {
        var packageLabel: String
        var quantity: Decimal
        var unit: String
    }

    struct Event: Encodable {
        var id: Int64
        var kind: String
        var clientId: String
        var at: Date
        var totalAmount: Money
    }

    var id: Int64
    var clientTripId: String
    var status: String
    var frozenReason: String?
    var metrcTripId: Int64?
    var businessDate: String
    var dateTime: String
    var driver: Driver
    var vehicle: Vehicle
    var estimatedDeparture: String
    var load: [TripLoadLine]
    var stock: [Stock]
    var events: [Event]
    var reported: Bool
    var steps: [StepJSON]

    init(_ trip: Trip) {
        id = trip.id
        clientTripId = trip.clientTripId
        status = trip.frozenReason == nil ? trip.status.rawValue : "frozen"
        frozenReason = trip.frozenReason
        metrcTripId = trip.metrcTripId
        businessDate = trip.businessDate
        dateTime = trip.dateTime
        driver = trip.driver
        vehicle = trip.vehicle
        estimatedDeparture = trip.estimatedDeparture
        load = trip.load
        stock = trip.stock.map { Stock(packageLabel: $0.packageLabel, quantity: $0.quantity, unit: $0.unit) }
        events = trip.events.map { Event(id: $0.id, kind: $0.kind.rawValue, clientId: $0.clientId, at: $0.at, totalAmount: $0.totalAmount) }
        reported = trip.steps.allSatisfy { $0.status == .reported }
        steps = trip.steps.map(StepJSON.init)
    }
}

struct TripSaleJSON: Encodable {
    var saleId: Int64
    var clientSaleId: String
    var totalAmount: Money
    var status: String
    var trip: TripJSON
}
