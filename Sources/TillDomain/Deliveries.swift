import Foundation

// MARK: - Who and how: the parts a delivery and a trip share

/// Where a delivery goes. Which fields a facility may or must send is its license's (`DeliveryRules`).
public struct Recipient: Sendable, Hashable, Codable {
    public var name: String?
    public var street1: String?
    public var street2: String?
    public var city: String?
    public var county: String?
    public var state: String?
    public var postalCode: String?
    public var phone: String?

    public init(name: String? = nil, street1: String? = nil, street2: String? = nil, city: String? = nil,
                county: String? = nil, state: String? = nil, postalCode: String? = nil, phone: String? = nil) {
        self.name = name
        self.street1 = street1
        self.street2 = street2
        self.city = city
        self.county = county
        self.state = state
        self.postalCode = postalCode
        self.phone = phone
    }
}

public struct Driver: Sendable, Hashable, Codable {
    public var employeeId: String
    public var name: String
    public var licenseNumber: String

    public init(employeeId: String, name: String, licenseNumber: String) {
        self.employeeId = employeeId
        self.name = name
        self.licenseNumber = licenseNumber
    }
}

public struct Vehicle: Sendable, Hashable, Codable {
    public var make: String
    public var model: String
    public var plate: String

    public init(make: String, model: String, plate: String) {
        self.make = make
        self.model = model
        self.plate = plate
    }
}

/// What a delivery or trip step stands at with Metrc, read from its journal row (or its absence).
public enum StepStatus: String, Sendable, Codable {
    case reported, pending
    case inDoubt = "in_doubt"
    case refused
}

/// One write a delivery or trip owes or owed Metrc.
public struct DeliveryStep: Sendable, Hashable {
    public var step: String
    public var status: StepStatus
    public var createdAt: Date
    public var reportedAt: Date?
    /// Metrc's words, when it refused the step.
    public var messages: [String]?

    public init(step: String, status: StepStatus, createdAt: Date, reportedAt: Date?, messages: [String]?) {
        self.step = step
        self.status = status
        self.createdAt = createdAt
        self.reportedAt = reportedAt
        self.messages = messages
    }
}

// MARK: - Sales deliveries

/// A sales delivery as a register asks for it.
public struct DeliveryRequest: Sendable, Hashable, Codable {
    public var clientDeliveryId: String
    public var customerType: CustomerType
    public var patientLicenseNumber: String?
    public var caregiverLicenseNumber: String?
    public var consumerId: String?
    public var recipient: Recipient
    public var driver: Driver
    public var vehicle: Vehicle
    public var plannedRoute: String?
    public var estimatedDeparture: Date
    public var estimatedArrival: Date
    public var lines: [SaleLineRequest]

    public init(clientDeliveryId: String, customerType: CustomerType, patientLicenseNumber: String? = nil,
                caregiverLicenseNumber: String? = nil, consumerId: String? = nil, recipient: Recipient, driver: Driver,
                vehicle: Vehicle, plannedRoute: String? = nil, estimatedDeparture: Date, estimatedArrival: Date,
                lines: [SaleLineRequest]) {
        self.clientDeliveryId = clientDeliveryId
        self.customerType = customerType
        self.patientLicenseNumber = patientLicenseNumber
        self.caregiverLicenseNumber = caregiverLicenseNumber
        self.consumerId = consumerId
        self.recipient = recipient
        self.driver = driver
        self.vehicle = vehicle
        self.plannedRoute = plannedRoute
        self.estimatedDeparture = estimatedDeparture
        self.estimatedArrival = estimatedArrival
        self.lines = lines
    }

    /// The delivery as a sale, for the rules a sale passes (packages, units, stock, patients).
    public var asSale: SaleRequest {
        SaleRequest(clientSaleId: clientDeliveryId, customerType: customerType, lines: lines,
                    patientLicenseNumber: patientLicenseNumber, caregiverLicenseNumber: caregiverLicenseNumber)
    }
}

public enum DeliveryStatus: String, Sendable, Codable {
    case open, completed, voided
}

/// A package that came back with the driver, as the completion gives it.
public struct DeliveryReturnedPackage: Sendable, Hashable, Codable {
    public var label: String
    public var quantity: Decimal
    public var unit: String
    public var reason: String
    public var note: String?
    /// nil as asked: the facility's default.
    public var disposition: ReturnDisposition?

    public init(label: String, quantity: Decimal, unit: String, reason: String, note: String? = nil,
                disposition: ReturnDisposition? = nil) {
        self.label = label
        self.quantity = quantity
        self.unit = unit
        self.reason = reason
        self.note = note
        self.disposition = disposition
    }
}

/// `POST /v1/deliveries/{id}/complete`.
public struct DeliveryCompletion: Sendable, Hashable, Codable {
    public var actualArrival: Date
    public var accepted: [String]
    public var returned: [DeliveryReturnedPackage]

    public init(actualArrival: Date, accepted: [String], returned: [DeliveryReturnedPackage]) {
        self.actualArrival = actualArrival
        self.accepted = accepted
        self.returned = returned
    }
}

public struct DeliveryLine: Sendable, Hashable {
    public var packageLabel: String
    public var quantity: Decimal
    public var unit: String
    public var totalAmount: Money
    /// Taken off the package, in 10⁻¹² of its unit.
    public var packagePicos: Int64

    public init(packageLabel: String, quantity: Decimal, unit: String, totalAmount: Money, packagePicos: Int64) {
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unit = unit
        self.totalAmount = totalAmount
        self.packagePicos = packagePicos
    }
}

/// A sales delivery as recorded.
public struct Delivery: Sendable, Hashable {
    public var id: Int64
    public var request: DeliveryRequest
    public var status: DeliveryStatus
    /// Metrc shows a step Till did not take: nothing more is sent.
    public var frozenReason: String?
    public var metrcDeliveryId: Int64?
    public var createdAt: Date
    public var businessDate: String
    /// Facility-local wall clock, as Metrc has it.
    public var salesDateTime: String
    public var lines: [DeliveryLine]
    public var totalAmount: Money
    public var completion: DeliveryCompletion?
    public var steps: [DeliveryStep]

    public init(id: Int64, request: DeliveryRequest, status: DeliveryStatus, frozenReason: String?, metrcDeliveryId: Int64?,
                createdAt: Date, businessDate: String, salesDateTime: String, lines: [DeliveryLine], totalAmount: Money,
                completion: DeliveryCompletion?, steps: [DeliveryStep]) {
        self.id = id
        self.request = request
        self.status = status
        self.frozenReason = frozenReason
        self.metrcDeliveryId = metrcDeliveryId
        self.createdAt = createdAt
        self.businessDate = businessDate
        self.salesDateTime = salesDateTime
        self.lines = lines
        self.totalAmount = totalAmount
        self.completion = completion
        self.steps = steps
    }

    /// Every step Metrc holds.
    public var isReported: Bool { steps.allSatisfy { $0.status == .reported } }
}

// MARK: - Vehicle trips

/// A package put on the vehicle (at creation or a restock).
public struct TripLoadLine: Sendable, Hashable, Codable {
    public var packageLabel: String
    public var quantity: Decimal
    public var unit: String
    public var totalPrice: Money?

    public init(packageLabel: String, quantity: Decimal, unit: String, totalPrice: Money? = nil) {
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unit = unit
        self.totalPrice = totalPrice
    }
}

public struct TripRequest: Sendable, Hashable, Codable {
    public var clientTripId: String
    public var driver: Driver
    public var vehicle: Vehicle
    public var estimatedDeparture: Date
    public var load: [TripLoadLine]

    public init(clientTripId: String, driver: Driver, vehicle: Vehicle, estimatedDeparture: Date, load: [TripLoadLine]) {
        self.clientTripId = clientTripId
        self.driver = driver
        self.vehicle = vehicle
        self.estimatedDeparture = estimatedDeparture
        self.load = load
    }
}

/// A sale from the vehicle.
public struct TripSaleRequest: Sendable, Hashable, Codable {
    public var clientSaleId: String
    public var customerType: CustomerType
    public var patientLicenseNumber: String?
    public var caregiverLicenseNumber: String?
    public var consumerId: String?
    public var recipient: Recipient
    public var lines: [SaleLineRequest]

    public init(clientSaleId: String, customerType: CustomerType, patientLicenseNumber: String? = nil,
                caregiverLicenseNumber: String? = nil, consumerId: String? = nil, recipient: Recipient, lines: [SaleLineRequest]) {
        self.clientSaleId = clientSaleId
        self.customerType = customerType
        self.patientLicenseNumber = patientLicenseNumber
        self.caregiverLicenseNumber = caregiverLicenseNumber
        self.consumerId = consumerId
        self.recipient = recipient
        self.lines = lines
    }

    public var asSale: SaleRequest {
        SaleRequest(clientSaleId: clientSaleId, customerType: customerType, lines: lines,
                    patientLicenseNumber: patientLicenseNumber, caregiverLicenseNumber: caregiverLicenseNumber)
    }
}

public struct RestockRequest: Sendable, Hashable, Codable {
    public var clientRestockId: String
    public var add: [TripLoadLine]
    /// Labels taken off the vehicle (`RemoveCurrentPackage`): what is left of each goes back to the shop.
    public var remove: [String]

    public init(clientRestockId: String, add: [TripLoadLine], remove: [String]) {
        self.clientRestockId = clientRestockId
        self.add = add
        self.remove = remove
    }
}

public struct TripCount: Sendable, Hashable, Codable {
    public var packageLabel: String
    public var quantity: Decimal
    public var unit: String

    public init(packageLabel: String, quantity: Decimal, unit: String) {
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unit = unit
    }
}

public struct TripEndRequest: Sendable, Hashable, Codable {
    public var actualArrival: Date
    public var counts: [TripCount]

    public init(actualArrival: Date, counts: [TripCount]) {
        self.actualArrival = actualArrival
        self.counts = counts
    }
}

public enum TripStatus: String, Sendable, Codable {
    case created, departed, ended, voided
}

/// What the vehicle holds of one package, in the package's unit.
public struct TripStock: Sendable, Hashable {
    public var packageLabel: String
    public var quantity: Decimal
    public var unit: String

    public init(packageLabel: String, quantity: Decimal, unit: String) {
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unit = unit
    }
}

/// A sale or a restock of a trip, as recorded.
public struct TripEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Codable { case sale, restock }
    public var id: Int64
    public var kind: Kind
    public var clientId: String
    public var at: Date
    /// The request as recorded (Till's JSON of `TripSaleRequest` or `RestockRequest`).
    public var detailJSON: String
    public var totalAmount: Money

    public init(id: Int64, kind: Kind, clientId: String, at: Date, detailJSON: String, totalAmount: Money) {
        self.id = id
        self.kind = kind
        self.clientId = clientId
        self.at = at
        self.detailJSON = detailJSON
        self.totalAmount = totalAmount
    }
}

public struct Trip: Sendable, Hashable {
    public var id: Int64
    public var clientTripId: String
    public var driver: Driver
    public var vehicle: Vehicle
    public var estimatedDeparture: String
    /// What was loaded at creation, as asked (prices included).
    public var load: [TripLoadLine]
    public var status: TripStatus
    public var frozenReason: String?
    public var metrcTripId: Int64?
    public var createdAt: Date
    public var businessDate: String
    public var dateTime: String
    public var stock: [TripStock]
    public var events: [TripEvent]
    public var steps: [DeliveryStep]

    public init(id: Int64, clientTripId: String, driver: Driver, vehicle: Vehicle, estimatedDeparture: String,
                load: [TripLoadLine], status: TripStatus, frozenReason: String?, metrcTripId: Int64?, createdAt: Date, businessDate: String,
                dateTime: String, stock: [TripStock], events: [TripEvent], steps: [DeliveryStep]) {
        self.id = id
        self.clientTripId = clientTripId
        self.driver = driver
        self.vehicle = vehicle
        self.estimatedDeparture = estimatedDeparture
        self.load = load
        self.status = status
        self.frozenReason = frozenReason
        self.metrcTripId = metrcTripId
        self.createdAt = createdAt
        self.businessDate = businessDate
        self.dateTime = dateTime
        self.stock = stock
        self.events = events
        self.steps = steps
    }
}

// MARK: - The rules

/// What a facility's license says about deliveries (from Metrc's `FacilityType`); nil: Metrc did not say,
/// and Till does not guess a refusal.
public struct DeliveryRules: Sendable, Hashable {
    public var canDeliverToConsumers: Bool?
    public var canDeliverToPatients: Bool?
    public var requireConsumerId: Bool?
    public var requirePatientNumber: Bool?
    public var requireRecipientName: Bool?
    public var allowPlannedRoute: Bool?
    public var allowAddress: Bool?
    public var allowCity: Bool?
    public var allowState: Bool?
    public var allowCounty: Bool?
    public var allowZip: Bool?
    public var retailerDelivery: Bool?
    public var requirePrice: Bool?
    public var allowPartialPackages: Bool?

    public init(canDeliverToConsumers: Bool? = nil, canDeliverToPatients: Bool? = nil, requireConsumerId: Bool? = nil,
                requirePatientNumber: Bool? = nil, requireRecipientName: Bool? = nil, allowPlannedRoute: Bool? = nil,
                allowAddress: Bool? = nil, allowCity: Bool? = nil, allowState: Bool? = nil, allowCounty: Bool? = nil,
                allowZip: Bool? = nil, retailerDelivery: Bool? = nil, requirePrice: Bool? = nil, allowPartialPackages: Bool? = nil) {
        self.canDeliverToConsumers = canDeliverToConsumers
        self.canDeliverToPatients = canDeliverToPatients
        self.requireConsumerId = requireConsumerId
        self.requirePatientNumber = requirePatientNumber
        self.requireRecipientName = requireRecipientName
        self.allowPlannedRoute = allowPlannedRoute
        self.allowAddress = allowAddress
        self.allowCity = allowCity
        self.allowState = allowState
        self.allowCounty = allowCounty
        self.allowZip = allowZip
        self.retailerDelivery = retailerDelivery
        self.requirePrice = requirePrice
        self.allowPartialPackages = allowPartialPackages
    }

    static let maxClientIdLength = 64

    /// Identifiers, driver, vehicle, times and lines: what needs no stored data.
    public static func checkShape(_ request: DeliveryRequest) throws(TillError) {
        try checkClientId(request.clientDeliveryId, field: "clientDeliveryId")
        try checkParties(driver: request.driver, vehicle: request.vehicle)
        guard request.estimatedArrival >= request.estimatedDeparture else {
            throw .invalid("invalid_times", "estimatedArrival must not be before estimatedDeparture.",
                           details: ["field": "estimatedArrival"])
        }
        try SaleRules.checkShape(request.asSale)
    }

    /// What the facility's license allows and requires of a sales delivery.
    public func check(_ request: DeliveryRequest) throws(TillError) {
        let medical = request.customerType.isMedical
        let allowed = medical ? canDeliverToPatients : canDeliverToConsumers
        guard allowed != false else {
            throw .unprocessable("delivery_not_allowed",
                                 "This facility's license does not allow deliveries to \(request.customerType.rawValue) customers.",
                                 details: ["customerType": request.customerType.rawValue])
        }
        func required(_ value: String?, _ field: String, when flag: Bool?) throws(TillError) {
            guard flag == true, value?.trimmingCharacters(in: .whitespaces).isEmpty ?? true else { return }
            throw .unprocessable("field_required", "This facility's license requires \(field) on a delivery.", details: ["field": field])
        }
        func notAllowed(_ value: String?, _ field: String, when flag: Bool?) throws(TillError) {
            guard flag == false, value != nil else { return }
            throw .unprocessable("field_not_allowed", "This facility's license does not allow \(field) on a delivery.",
                                 details: ["field": field])
        }
        try required(request.consumerId, "consumerId", when: request.customerType == .consumer ? requireConsumerId : nil)
        try required(request.patientLicenseNumber, "patientLicenseNumber", when: medical ? requirePatientNumber : nil)
        try required(request.recipient.name, "recipient.name", when: requireRecipientName)
        try notAllowed(request.plannedRoute, "plannedRoute", when: allowPlannedRoute)
        try notAllowed(request.recipient.street1 ?? request.recipient.street2, "recipient.street1", when: allowAddress)
        try notAllowed(request.recipient.city, "recipient.city", when: allowCity)
        try notAllowed(request.recipient.state, "recipient.state", when: allowState)
        try notAllowed(request.recipient.county, "recipient.county", when: allowCounty)
        try notAllowed(request.recipient.postalCode, "recipient.postalCode", when: allowZip)
    }

    /// A trip needs retailer delivery on the license; each load line a price where required.
    public func checkTrip(load: [TripLoadLine]) throws(TillError) {
        guard retailerDelivery == true else {
            throw .unprocessable("trip_not_allowed", "This facility's license does not allow retailer (vehicle) deliveries.")
        }
        for (index, line) in load.enumerated() where requirePrice == true && line.totalPrice == nil {
            throw .unprocessable("price_required", "This facility's license requires a totalPrice for every package loaded.",
                                 details: ["line": "\(index)", "packageLabel": line.packageLabel])
        }
    }

    /// Checks a load (or a restock's additions) against the shop's packages as a sale would be, and, where
    /// the license allows no partial packages, that each takes its whole package. What each line takes, in
    /// 10⁻¹² of its package's unit.
    public func validateLoad(_ load: [TripLoadLine], packages: [String: PackageSnapshot]) throws(TillError) -> [Int64] {
        guard !load.isEmpty else { return [] }
        let asSale = SaleRequest(clientSaleId: "load", customerType: .consumer, lines: load.map {
            SaleLineRequest(packageLabel: $0.packageLabel, quantity: $0.quantity, unit: $0.unit, totalAmount: $0.totalPrice ?? .zero)
        })
        let validated = try SaleRules.validate(asSale, packages: packages)
        if allowPartialPackages == false {
            for (index, line) in validated.enumerated() {
                let package = packages[line.request.packageLabel]!
                guard Quantities.picos(exactly: package.quantity) == line.packageDecrementPicos else {
                    throw .unprocessable("whole_package_required",
                                         "This facility's license allows only whole packages on a vehicle: load all \(package.quantity) \(package.unit) of \(package.label).",
                                         details: ["line": "\(index)", "packageLabel": package.label, "available": "\(package.quantity)"])
                }
            }
        }
        return validated.map(\.packageDecrementPicos)
    }

    public static func checkShape(_ request: TripRequest) throws(TillError) {
        try checkClientId(request.clientTripId, field: "clientTripId")
        try checkParties(driver: request.driver, vehicle: request.vehicle)
        guard !request.load.isEmpty else { throw .invalid("no_lines", "A trip needs at least one package in its load.") }
        try checkLoad(request.load, field: "load")
    }

    public static func checkShape(_ request: RestockRequest) throws(TillError) {
        try checkClientId(request.clientRestockId, field: "clientRestockId")
        guard !request.add.isEmpty || !request.remove.isEmpty else {
            throw .invalid("no_lines", "A restock adds or removes at least one package.")
        }
        try checkLoad(request.add, field: "add")
        guard Set(request.remove).count == request.remove.count else {
            throw .invalid("duplicate_package", "remove names a package twice.", details: ["field": "remove"])
        }
    }

    public static func checkShape(_ request: TripSaleRequest) throws(TillError) {
        try SaleRules.checkShape(request.asSale)
    }

    private static func checkLoad(_ load: [TripLoadLine], field: String) throws(TillError) {
        var seen: Set<String> = []
        for (index, line) in load.enumerated() {
            let at = ["line": "\(index)", "field": field]
            guard !line.packageLabel.isEmpty, seen.insert(line.packageLabel).inserted else {
                throw .invalid("duplicate_package", "\(field)[\(index)]: each package appears once.", details: at)
            }
            guard line.quantity > 0, Quantities.hasAtMost(Quantities.inputDecimalPlaces, decimalPlacesIn: line.quantity) else {
                throw .invalid("invalid_quantity", "\(field)[\(index)]: quantity must be greater than zero, with at most six decimals.",
                               details: at)
            }
            guard UnitOfMeasure.named(line.unit) != nil else {
                throw .invalid("unknown_unit", "\(field)[\(index)]: unit '\(line.unit)' is not a Metrc unit of measure.", details: at)
            }
            guard (line.totalPrice?.cents ?? 0) >= 0 else {
                throw .invalid("invalid_amount", "\(field)[\(index)]: totalPrice cannot be negative.", details: at)
            }
        }
    }

    static func checkClientId(_ id: String, field: String) throws(TillError) {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_.:"))
        guard !id.isEmpty, id.utf8.count <= maxClientIdLength, id.unicodeScalars.allSatisfy({ $0.isASCII && allowed.contains($0) }) else {
            throw .invalid("invalid_client_id", "\(field) must be 1 to \(maxClientIdLength) letters, digits, '-', '_', '.' or ':'.",
                           details: ["field": field])
        }
    }

    private static func checkParties(driver: Driver, vehicle: Vehicle) throws(TillError) {
        let fields = [("driver.employeeId", driver.employeeId), ("driver.name", driver.name),
                      ("driver.licenseNumber", driver.licenseNumber), ("vehicle.make", vehicle.make),
                      ("vehicle.model", vehicle.model), ("vehicle.plate", vehicle.plate)]
        for (field, value) in fields where value.trimmingCharacters(in: .whitespaces).isEmpty {
            throw .invalid("missing_field", "\(field) must not be empty.", details: ["field": field])
        }
    }

    /// Every label of the delivery exactly once, accepted or returned; returned quantities within the line,
    /// in a unit convertible exactly to the package's; reasons known, notes where the reason needs one.
    /// Returns each returned package's quantity in its package's unit, in 10⁻¹² of it.
    public static func checkCompletion(_ completion: DeliveryCompletion, of delivery: Delivery,
                                       reasons: [String: Bool], packageUnits: [String: String]) throws(TillError) -> [String: Int64] {
        let labels = delivery.lines.map(\.packageLabel)
        var seen: [String: Int] = [:]
        for label in completion.accepted + completion.returned.map(\.label) { seen[label, default: 0] += 1 }
        let missing = labels.filter { seen[$0] == nil }
        let twice = seen.filter { $0.value > 1 }.keys.sorted()
        let unknown = seen.keys.filter { !labels.contains($0) }.sorted()
        guard missing.isEmpty, twice.isEmpty, unknown.isEmpty else {
            var problems: [String] = []
            if !missing.isEmpty { problems.append("not accounted for: \(missing.joined(separator: ", "))") }
            if !twice.isEmpty { problems.append("named twice: \(twice.joined(separator: ", "))") }
            if !unknown.isEmpty { problems.append("not on this delivery: \(unknown.joined(separator: ", "))") }
            throw .unprocessable("labels_not_accounted",
                                 "Every package of the delivery must be named once, accepted or returned; " + problems.joined(separator: "; ") + ".",
                                 details: ["missing": missing.joined(separator: ","), "twice": twice.joined(separator: ","),
                                           "unknown": unknown.joined(separator: ",")])
        }
        var picos: [String: Int64] = [:]
        for (index, returned) in completion.returned.enumerated() {
            let at = ["returned": "\(index)", "label": returned.label]
            guard let requiresNote = reasons.first(where: { $0.key.caseInsensitiveCompare(returned.reason) == .orderedSame })?.value else {
                throw .invalid("unknown_return_reason",
                                     "returned[\(index)]: '\(returned.reason)' is not one of Metrc's return reasons (\(reasons.keys.sorted().joined(separator: ", "))).",
                                     details: at)
            }
            guard !requiresNote || !(returned.note?.trimmingCharacters(in: .whitespaces).isEmpty ?? true) else {
                throw .invalid("note_required", "returned[\(index)]: Metrc requires a note with the reason '\(returned.reason)'.",
                                     details: at)
            }
            let line = delivery.lines.first { $0.packageLabel == returned.label }!
            guard returned.quantity > 0, let unit = UnitOfMeasure.named(returned.unit),
                  let packageUnit = packageUnits[returned.label].flatMap(UnitOfMeasure.named),
                  unit.kind == packageUnit.kind,
                  let converted = Quantities.convert(returned.quantity, from: unit, to: packageUnit),
                  let exact = Quantities.picos(exactly: converted) else {
                throw .unprocessable("invalid_return_quantity",
                                     "returned[\(index)]: \(returned.quantity) \(returned.unit) is not an exact, positive amount of the package's unit.",
                                     details: at)
            }
            guard exact <= line.packagePicos else {
                throw .unprocessable("too_much_returned",
                                     "returned[\(index)]: more of \(returned.label) came back than was delivered (\(line.quantity) \(line.unit)).",
                                     details: at)
            }
            picos[returned.label] = exact
        }
        return picos
    }

    /// The driver's counts against what Till holds on the vehicle: every package once, each equal.
    public static func checkEndCounts(_ counts: [TripCount], stock: [TripStock]) throws(TillError) {
        for count in counts where !stock.contains(where: { $0.packageLabel == count.packageLabel }) {
            throw .unprocessable("end_count_mismatch", "Package \(count.packageLabel) is not on the vehicle.",
                                 details: ["packageLabel": count.packageLabel])
        }
        for held in stock {
            let matching = counts.filter { $0.packageLabel == held.packageLabel }
            guard matching.count == 1, let count = matching.first else {
                throw .unprocessable("end_count_mismatch",
                                     "Package \(held.packageLabel): count it once; Till has \(held.quantity) \(held.unit) on the vehicle.",
                                     details: ["packageLabel": held.packageLabel, "expected": "\(held.quantity)", "unit": held.unit])
            }
            let counted = UnitOfMeasure.named(count.unit).flatMap { unit in
                UnitOfMeasure.named(held.unit).flatMap { Quantities.convert(count.quantity, from: unit, to: $0) }
            }
            guard counted == held.quantity else {
                throw .unprocessable("end_count_mismatch",
                                     "Package \(held.packageLabel): the driver counted \(count.quantity) \(count.unit); Till has \(held.quantity) \(held.unit) on the vehicle.",
                                     details: ["packageLabel": held.packageLabel, "expected": "\(held.quantity)", "unit": held.unit,
                                               "counted": "\(count.quantity)"])
            }
        }
    }
}
