import Foundation
import Logging
import MetrcKit
import TillDomain
import TillPatients
import TillStore

/// What a driver's app hears of a step: Metrc holds it, or it is journaled and the reporter goes on.
public struct StepOutcome<Value: Sendable>: Sendable {
    public var value: Value
    public var reported: Bool
}

/// The unit of work for deliveries and vehicle trips: check a step by Till's rules and the facility's
/// license, record it with its stock and its Metrc write in one transaction, and wait for Metrc up to the
/// report deadline (docs/deliveries.md).
public final class DeliveryDesk: Sendable {
    private let store: TillStore
    private let reporter: MetrcReporter
    private let patients: PatientDirectory
    private let metrc: any MetrcAPI
    private let returns: ReturnSettings
    private let license: String
    private let timeZone: TimeZone
    private let deadline: Duration
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let reasons: DeliveryReturnReasons

    public init(store: TillStore, reporter: MetrcReporter, patients: PatientDirectory, metrc: any MetrcAPI,
                settings returns: ReturnSettings, license: String, timeZone: TimeZone, deadline: Duration, logger: Logger,
                now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.reporter = reporter
        self.patients = patients
        self.metrc = metrc
        self.returns = returns
        self.license = license
        self.timeZone = timeZone
        self.deadline = deadline
        self.logger = logger
        self.now = now
        reasons = DeliveryReturnReasons(metrc: metrc)
    }

    // MARK: - Sales deliveries

    public func create(_ request: DeliveryRequest, digest: String, terminal: Terminal?) async throws(TillError) -> StepOutcome<Delivery> {
        try DeliveryRules.checkShape(request)
        try await patients.deliveryRules().check(request)
        let recorded = try await checkingPatient(request.asSale, terminal: terminal) { validate throws(TillError) in
            try self.stored { try self.store.recordDelivery(request, digest: digest, validate: validate, self.context(terminal)) }
        }
        if recorded.replayed { return StepOutcome(value: recorded.delivery, reported: recorded.delivery.isReported) }
        logger.info("delivery journaled", metadata: ["delivery": "\(recorded.delivery.id)"])
        let subject = JournalSubject.delivery(recorded.delivery.id)
        switch await waitForMetrc(subject) {
        case .some(let reported):
            return StepOutcome(value: try current(recorded.delivery.id), reported: reported)
        case .none:
            // Refused while the register waited: the delivery is undone, as a refused sale is.
            let messages = (try? store.createRefused(subject)) ?? nil
            _ = try? store.voidDelivery(id: recorded.delivery.id, context(nil, actor: "metrc"))
            throw Self.refused("delivery", messages, details: ["deliveryId": "\(recorded.delivery.id)"])
        }
    }

    public func update(id: Int64, _ request: DeliveryRequest, digest: String, terminal: Terminal?) async throws(TillError) -> StepOutcome<Delivery> {
        try DeliveryRules.checkShape(request)
        try await patients.deliveryRules().check(request)
        let updated = try await checkingPatient(request.asSale, terminal: terminal) { validate throws(TillError) in
            try self.stored { try self.store.updateDelivery(id: id, request, digest: digest, validate: validate, self.context(terminal)) }
        }
        return await reported(updated, .delivery(id)) { try self.current(id) }
    }

    public func complete(id: Int64, _ completion: DeliveryCompletion, terminal: Terminal?) async throws(TillError) -> StepOutcome<Delivery> {
        guard let delivery = try stored({ try store.delivery(id: id) }) else {
            throw TillError(.notFound, code: "delivery_not_found", "No delivery \(id).", details: ["deliveryId": "\(id)"])
        }
        var completion = completion
        for index in completion.returned.indices where completion.returned[index].disposition == nil {
            completion.returned[index].disposition = returns.defaultDisposition
        }
        if delivery.status == .completed && delivery.completion.map({ Self.sameCompletion($0, completion) }) == true {
            return StepOutcome(value: delivery, reported: delivery.isReported)
        }
        guard let known = await reasons.current() else {
            throw TillError(.unavailable, code: "metrc_unavailable",
                            "Metrc's delivery return reasons cannot be read now, so the completion cannot be checked; try again.")
        }
        let units = Dictionary(uniqueKeysWithValues: try stored { try store.packages(labels: delivery.lines.map(\.packageLabel)) }
            .map { ($0.key, $0.value.unit) })
        let picos = try DeliveryRules.checkCompletion(completion, of: delivery,
                                                      reasons: Dictionary(known.map { ($0.name, $0.requiresNote) }, uniquingKeysWith: { a, _ in a }),
                                                      packageUnits: units)
        let completed = try stored {
            try store.completeDelivery(id: id, completion, returnedPicos: picos,
                                       actualArrival: MetrcLocalTime.format(completion.actualArrival, in: timeZone),
                                       wasteNote: "Till delivery \(id): returned by the customer, wasted", context(terminal))
        }
        return await reported(completed, .delivery(id)) { try self.current(id) }
    }

    public func void(id: Int64, terminal: Terminal?) async throws(TillError) -> StepOutcome<Delivery> {
        let voided = try stored { try store.voidDelivery(id: id, context(terminal)) }
        return await reported(voided, .delivery(id)) { try self.current(id) }
    }

    public func delivery(id: Int64) throws(TillError) -> Delivery? {
        try stored { try store.delivery(id: id) }
    }

    public func deliveries(on date: String) throws(TillError) -> [Delivery] {
        try stored { try store.deliveries(businessDate: date) }
    }

    // MARK: - Vehicle trips

    public func createTrip(_ request: TripRequest, digest: String, terminal: Terminal?) async throws(TillError) -> StepOutcome<Trip> {
        try DeliveryRules.checkShape(request)
        let rules = await patients.deliveryRules()
        try rules.checkTrip(load: request.load)
        let recorded = try stored {
            try store.recordTrip(request, digest: digest, validateLoad: { load, packages throws(TillError) in
                try rules.validateLoad(load, packages: packages)
            }, context(terminal))
        }
        if recorded.replayed { return StepOutcome(value: recorded.trip, reported: Self.allReported(recorded.trip.steps)) }
        logger.info("trip journaled", metadata: ["trip": "\(recorded.trip.id)"])
        let subject = JournalSubject.trip(recorded.trip.id)
        switch await waitForMetrc(subject) {
        case .some(let reported):
            return StepOutcome(value: try currentTrip(recorded.trip.id), reported: reported)
        case .none:
            let messages = (try? store.createRefused(subject)) ?? nil
            _ = try? store.voidTrip(id: recorded.trip.id, context(nil, actor: "metrc"))
            throw Self.refused("trip", messages, details: ["tripId": "\(recorded.trip.id)"])
        }
    }

    public func depart(tripId id: Int64, terminal: Terminal?) async throws(TillError) -> StepOutcome<Trip> {
        let trip = try stored { try store.departTrip(id: id, context(terminal)) }
        return await reported(trip, .trip(id)) { try self.currentTrip(id) }
    }

    public func sell(tripId id: Int64, _ request: TripSaleRequest, digest: String, terminal: Terminal?) async throws(TillError) -> StepOutcome<(Trip, TripEvent)> {
        try DeliveryRules.checkShape(request)
        let recorded = try await checkingPatient(request.asSale, terminal: terminal) { validate throws(TillError) in
            try self.stored { try self.store.recordTripSale(tripId: id, request, digest: digest, validate: validate, self.context(terminal)) }
        }
        if recorded.replayed { return StepOutcome(value: (recorded.trip, recorded.event), reported: Self.allReported(recorded.trip.steps)) }
        switch await waitForMetrc(.trip(id)) {
        case .some(let reported):
            return StepOutcome(value: (try currentTrip(id), recorded.event), reported: reported)
        case .none:
            let messages = try stored { try store.trip(id: id) }?.steps.last { $0.step == "sale" }?.messages
            if (try? store.undoRefusedTripSale(tripId: id, eventId: recorded.event.id, at: now())) == true {
                throw Self.refused("sale", messages, details: ["tripId": "\(id)"])
            }
            return StepOutcome(value: (try currentTrip(id), recorded.event), reported: false)
        }
    }

    public func restock(tripId id: Int64, _ request: RestockRequest, digest: String, terminal: Terminal?) async throws(TillError) -> StepOutcome<Trip> {
        try DeliveryRules.checkShape(request)
        let rules = await patients.deliveryRules()
        try rules.checkTrip(load: request.add)
        let trip = try stored {
            try store.restockTrip(id: id, request, digest: digest, validateLoad: { load, packages throws(TillError) in
                try rules.validateLoad(load, packages: packages)
            }, context(terminal))
        }
        return await reported(trip, .trip(id)) { try self.currentTrip(id) }
    }

    public func end(tripId id: Int64, _ request: TripEndRequest, terminal: Terminal?) async throws(TillError) -> StepOutcome<Trip> {
        let trip = try stored { try store.endTrip(id: id, request, context(terminal)) }
        return await reported(trip, .trip(id)) { try self.currentTrip(id) }
    }

    public func voidTrip(id: Int64, terminal: Terminal?) async throws(TillError) -> StepOutcome<Trip> {
        let trip = try stored { try store.voidTrip(id: id, context(terminal)) }
        return await reported(trip, .trip(id)) { try self.currentTrip(id) }
    }

    public func trip(id: Int64) throws(TillError) -> Trip? {
        try stored { try store.trip(id: id) }
    }

    // MARK: - Shared

    /// Runs `record` with the sale rules a counter sale passes: a medical customer is cleared with Metrc and
    /// held to the allowance while no other sale for the patient can be recorded.
    private func checkingPatient<T: Sendable>(
        _ sale: SaleRequest, terminal: Terminal?,
        _ record: @escaping @Sendable (@escaping @Sendable ([String: PackageSnapshot]) throws(TillError) -> [ValidatedLine]) throws(TillError) -> T
    ) async throws(TillError) -> T {
        try SaleRules.checkShape(sale)
        if let refusal = patients.facilityRefusal(for: sale.customerType) { throw refusal }
        guard sale.customerType == .patient || sale.customerType == .caregiver else {
            return try record { packages throws(TillError) in try SaleRules.validate(sale, packages: packages) }
        }
        let actor = terminal.map { "terminal:\($0.name)" } ?? "unknown"
        return try await patients.serializingPatient(sale.patientLicenseNumber ?? "") { () async throws(TillError) -> T in
            let clearance = try await patients.clear(sale, actor: actor, terminalId: terminal?.id)
            let patients = self.patients
            return try record { packages throws(TillError) in
                let lines = try SaleRules.validate(sale, packages: packages)
                try patients.checkAllowance(lines, packages: packages, clearance: clearance)
                return lines
            }
        }
    }

    /// Wakes the reporter and waits up to the deadline for the subject's writes: true when Metrc holds them
    /// all, false when some are still owed, nil when Metrc refused one.
    private func waitForMetrc(_ subject: JournalSubject) async -> Bool? {
        reporter.wake()
        let clock = ContinuousClock()
        let until = clock.now + deadline
        while true {
            await store.caughtUp()
            guard let reported = try? store.stepsReported(subject) else { return nil }
            if reported || clock.now >= until { return reported }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    private func reported<T: Sendable>(_ value: T, _ subject: JournalSubject,
                                       reread: @Sendable () throws -> T) async -> StepOutcome<T> {
        let reported = await waitForMetrc(subject) ?? false
        return StepOutcome(value: (try? reread()) ?? value, reported: reported)
    }

    /// The same completion, its time to the millisecond (as stored).
    private static func sameCompletion(_ a: DeliveryCompletion, _ b: DeliveryCompletion) -> Bool {
        var a = a, b = b
        for completion in [\DeliveryCompletion.actualArrival] {
            a[keyPath: completion] = Date(timeIntervalSince1970: (a[keyPath: completion].timeIntervalSince1970 * 1000).rounded() / 1000)
            b[keyPath: completion] = Date(timeIntervalSince1970: (b[keyPath: completion].timeIntervalSince1970 * 1000).rounded() / 1000)
        }
        return a == b
    }

    private static func allReported(_ steps: [DeliveryStep]) -> Bool { steps.allSatisfy { $0.status == .reported } }

    private func current(_ id: Int64) throws(TillError) -> Delivery {
        guard let delivery = try stored({ try store.delivery(id: id) }) else {
            throw TillError(.notFound, code: "delivery_not_found", "No delivery \(id).", details: ["deliveryId": "\(id)"])
        }
        return delivery
    }

    private func currentTrip(_ id: Int64) throws(TillError) -> Trip {
        guard let trip = try stored({ try store.trip(id: id) }) else {
            throw TillError(.notFound, code: "trip_not_found", "No trip \(id).", details: ["tripId": "\(id)"])
        }
        return trip
    }

    private static func refused(_ what: String, _ messages: [String]?, details: [String: String]) -> TillError {
        let words = (messages ?? []).joined(separator: "; ")
        return TillError.unprocessable("metrc_rejected", "Metrc refused the \(what): \(words)",
                                       details: details.merging(["metrcMessages": (messages ?? []).joined(separator: "\n")]) { a, _ in a })
    }

    private func context(_ terminal: Terminal?, actor: String? = nil) -> DeliveryContext {
        let at = now()
        let zone = timeZone
        return DeliveryContext(terminalId: terminal?.id, actor: actor ?? terminal.map { "terminal:\($0.name)" } ?? "unknown",
                               license: license, at: at, businessDate: FacilityDate.string(of: at, in: zone),
                               localTime: { MetrcLocalTime.format($0, in: zone) }, bodies: bodies)
    }

    private var bodies: DeliveryBodies { DeliveryBodies.metrc(wasteAdjustReason: returns.wasteAdjustReason, timeZone: timeZone) }

    private func stored<T>(_ body: () throws -> T) throws(TillError) -> T {
        do {
            return try body()
        } catch let error as TillError {
            throw error
        } catch {
            logger.error("store failure", metadata: ["error": "\(error)"])
            throw .fromStore(error)
        }
    }
}

/// Metrc's delivery return reasons, fetched once and then at most hourly; nil while Metrc has not answered.
actor DeliveryReturnReasons {
    private let metrc: any MetrcAPI
    private var reasons: [MetrcDeliveryReturnReason]?
    private var fetchedAt: ContinuousClock.Instant?

    init(metrc: any MetrcAPI) {
        self.metrc = metrc
    }

    func current() async -> [MetrcDeliveryReturnReason]? {
        if let fetchedAt, ContinuousClock.now - fetchedAt < .seconds(3600) { return reasons }
        do {
            reasons = try await metrc.deliveryReturnReasons()
            fetchedAt = .now
        } catch {
            // Keep what was known; try again at the next completion.
        }
        return reasons
    }
}

extension DeliveryBodies {
    /// What Till sends Metrc for each delivery and trip step, written by MetrcKit.
    static func metrc(wasteAdjustReason: String, timeZone: TimeZone) -> DeliveryBodies {
        DeliveryBodies(
            delivery: { delivery, id, update in
                let draft = MetrcSalesDeliveryDraft(delivery: delivery, id: id, timeZone: timeZone)
                return update ? draft.updateObject : draft.jsonObject
            },
            completion: { delivery, id, arrival in
                let completion = delivery.completion
                return MetrcDeliveryCompletionDraft(
                    id: id, actualArrivalDateTime: arrival, acceptedPackages: completion?.accepted ?? [],
                    returnedPackages: (completion?.returned ?? []).map {
                        .init(label: $0.label, returnQuantityVerified: $0.quantity, returnUnitOfMeasure: $0.unit,
                              returnReason: $0.reason, returnReasonNote: $0.note)
                    }).jsonObject
            },
            deliveryId: { MetrcBodies.receiptId($0) },
            wasteAdjust: { label, quantity, unit, date, note in
                MetrcPackageAdjustDraft(label: label, quantity: quantity, unitOfMeasure: unit, adjustmentReason: wasteAdjustReason,
                                        adjustmentDate: date, reasonNote: note).jsonObject
            },
            trip: { trip in
                MetrcTripDraft(dateTime: trip.dateTime, driverEmployeeId: trip.driver.employeeId, driverName: trip.driver.name,
                               driversLicenseNumber: trip.driver.licenseNumber, phoneNumberForQuestions: nil,
                               vehicleMake: trip.vehicle.make, vehicleModel: trip.vehicle.model,
                               vehicleLicensePlateNumber: trip.vehicle.plate, estimatedDepartureDateTime: trip.estimatedDeparture,
                               packages: trip.stock.map { stock in
                                   MetrcTripPackageDraft(dateTime: trip.dateTime, packageLabel: stock.packageLabel,
                                                         quantity: stock.quantity, unitOfMeasure: stock.unit,
                                                         totalPrice: trip.load.first { $0.packageLabel == stock.packageLabel }?.totalPrice?.decimal)
                               }).jsonObject
            },
            tripId: { MetrcTripIdBody.jsonObject($0) },
            tripSale: { tripId, salesDateTime, sale, lines in
                MetrcTripSaleDraft(
                    retailerDeliveryId: tripId, salesDateTime: salesDateTime, salesCustomerType: sale.customerType.rawValue,
                    patientLicenseNumber: sale.patientLicenseNumber, consumerId: sale.consumerId,
                    phoneNumberForQuestions: sale.recipient.phone, recipientName: sale.recipient.name,
                    recipientAddressStreet1: sale.recipient.street1, recipientAddressStreet2: sale.recipient.street2,
                    recipientAddressCity: sale.recipient.city, recipientAddressCounty: sale.recipient.county,
                    recipientAddressState: sale.recipient.state, recipientAddressPostalCode: sale.recipient.postalCode,
                    transactions: lines.map {
                        MetrcTransactionDraft(packageLabel: $0.request.packageLabel, quantity: $0.request.quantity,
                                              unitOfMeasure: $0.unitName, totalAmount: $0.request.totalAmount.decimal)
                    }).jsonObject
            },
            tripRestock: { tripId, dateTime, added, removed in
                MetrcTripRestockDraft(
                    retailerDeliveryId: tripId, dateTime: dateTime, estimatedDepartureDateTime: nil,
                    packages: added.map {
                        MetrcTripPackageDraft(dateTime: dateTime, packageLabel: $0.packageLabel, quantity: $0.quantity,
                                              unitOfMeasure: UnitOfMeasure.named($0.unit)?.name ?? $0.unit,
                                              totalPrice: $0.totalPrice?.decimal, removeCurrentPackage: false)
                    } + removed.map {
                        MetrcTripPackageDraft(dateTime: dateTime, packageLabel: $0.packageLabel, quantity: $0.quantity,
                                              unitOfMeasure: $0.unit, totalPrice: nil, removeCurrentPackage: true)
                    }).jsonObject
            },
            tripEnd: { tripId, arrival, stock in
                MetrcTripEndDraft(retailerDeliveryId: tripId, actualArrivalDateTime: arrival, packages: stock.map {
                    .init(label: $0.packageLabel, endQuantity: $0.quantity, endUnitOfMeasure: $0.unit)
                }).jsonObject
            })
    }
}

extension MetrcSalesDeliveryDraft {
    init(delivery: Delivery, id: Int64?, timeZone: TimeZone) {
        let request = delivery.request
        self.init(
            id: id, salesDateTime: delivery.salesDateTime, salesCustomerType: request.customerType.rawValue,
            patientLicenseNumber: request.patientLicenseNumber, consumerId: request.consumerId,
            driverEmployeeId: request.driver.employeeId, driverName: request.driver.name,
            driversLicenseNumber: request.driver.licenseNumber, phoneNumberForQuestions: request.recipient.phone,
            vehicleMake: request.vehicle.make, vehicleModel: request.vehicle.model, vehicleLicensePlateNumber: request.vehicle.plate,
            recipientName: request.recipient.name, recipientAddressStreet1: request.recipient.street1,
            recipientAddressStreet2: request.recipient.street2, recipientAddressCity: request.recipient.city,
            recipientAddressCounty: request.recipient.county, recipientAddressState: request.recipient.state,
            recipientAddressPostalCode: request.recipient.postalCode, plannedRoute: request.plannedRoute,
            estimatedDepartureDateTime: MetrcLocalTime.format(request.estimatedDeparture, in: timeZone),
            estimatedArrivalDateTime: MetrcLocalTime.format(request.estimatedArrival, in: timeZone),
            transactions: delivery.lines.map {
                MetrcDeliveryLineDraft(packageLabel: $0.packageLabel, quantity: $0.quantity, unitOfMeasure: $0.unit,
                                       totalAmount: $0.totalAmount.decimal)
            })
    }
}
