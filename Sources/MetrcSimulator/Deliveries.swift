import Foundation

/// What a facility may do by delivery: the sales-delivery and retailer-delivery flags of Metrc's `FacilityType`.
public struct SimDeliveryFlags: Sendable, Equatable {
    public var canDeliverSalesToConsumers: Bool
    /// Patients, caregivers and external patients alike.
    public var canDeliverSalesToPatients: Bool
    public var salesDeliveryRequireConsumerId: Bool
    /// `PatientLicenseNumber` on a delivery to a Patient, Caregiver or ExternalPatient.
    public var salesDeliveryRequirePatientNumber: Bool
    public var salesDeliveryRequireRecipientName: Bool
    public var salesDeliveryAllowPlannedRoute: Bool
    /// `RecipientAddressStreet1` and `RecipientAddressStreet2`.
    public var salesDeliveryAllowAddress: Bool
    public var salesDeliveryAllowCity: Bool
    public var salesDeliveryAllowState: Bool
    public var salesDeliveryAllowCounty: Bool
    /// `RecipientAddressPostalCode`.
    public var salesDeliveryAllowZip: Bool
    /// Retailer deliveries (a vehicle selling on the road) at all.
    public var retailerDelivery: Bool
    /// `TotalPrice` on every package a trip loads.
    public var retailerDeliveryRequirePrice: Bool
    /// When false a trip loads a package's whole shop quantity or none of it.
    public var retailerDeliveryAllowPartialPackages: Bool

    public init(canDeliverSalesToConsumers: Bool = true, canDeliverSalesToPatients: Bool = true,
                salesDeliveryRequireConsumerId: Bool = false, salesDeliveryRequirePatientNumber: Bool = true,
                salesDeliveryRequireRecipientName: Bool = true, salesDeliveryAllowPlannedRoute: Bool = true,
                salesDeliveryAllowAddress: Bool = true, salesDeliveryAllowCity: Bool = true,
                salesDeliveryAllowState: Bool = true, salesDeliveryAllowCounty: Bool = true,
                salesDeliveryAllowZip: Bool = true, retailerDelivery: Bool = true,
                retailerDeliveryRequirePrice: Bool = true, retailerDeliveryAllowPartialPackages: Bool = true) {
        self.canDeliverSalesToConsumers = canDeliverSalesToConsumers
        self.canDeliverSalesToPatients = canDeliverSalesToPatients
        self.salesDeliveryRequireConsumerId = salesDeliveryRequireConsumerId
        self.salesDeliveryRequirePatientNumber = salesDeliveryRequirePatientNumber
        self.salesDeliveryRequireRecipientName = salesDeliveryRequireRecipientName
        self.salesDeliveryAllowPlannedRoute = salesDeliveryAllowPlannedRoute
        self.salesDeliveryAllowAddress = salesDeliveryAllowAddress
        self.salesDeliveryAllowCity = salesDeliveryAllowCity
        self.salesDeliveryAllowState = salesDeliveryAllowState
        self.salesDeliveryAllowCounty = salesDeliveryAllowCounty
        self.salesDeliveryAllowZip = salesDeliveryAllowZip
        self.retailerDelivery = retailerDelivery
        self.retailerDeliveryRequirePrice = retailerDeliveryRequirePrice
        self.retailerDeliveryAllowPartialPackages = retailerDeliveryAllowPartialPackages
    }

    /// The demo facility's (docs/deliveries.md): everything allowed, a price and a recipient name required (and a
    /// patient number for patients), partial packages allowed, no consumer Id required.
    public static let demo = SimDeliveryFlags()

    /// A facility that delivers nothing.
    public static let none = SimDeliveryFlags(
        canDeliverSalesToConsumers: false, canDeliverSalesToPatients: false, salesDeliveryRequirePatientNumber: false,
        salesDeliveryRequireRecipientName: false, salesDeliveryAllowPlannedRoute: false, salesDeliveryAllowAddress: false,
        salesDeliveryAllowCity: false, salesDeliveryAllowState: false, salesDeliveryAllowCounty: false,
        salesDeliveryAllowZip: false, retailerDelivery: false, retailerDeliveryRequirePrice: false,
        retailerDeliveryAllowPartialPackages: false)

    /// Each flag with its `FacilityType` name, in the specification's order; also how `/_sim/` sets them by name.
    static let wireNames: [(name: String, flag: WritableKeyPath<SimDeliveryFlags, Bool> & Sendable)] = [
        ("CanDeliverSalesToConsumers", \.canDeliverSalesToConsumers),
        ("SalesDeliveryRequireConsumerId", \.salesDeliveryRequireConsumerId),
        ("CanDeliverSalesToPatients", \.canDeliverSalesToPatients),
        ("SalesDeliveryRequirePatientNumber", \.salesDeliveryRequirePatientNumber),
        ("SalesDeliveryRequireRecipientName", \.salesDeliveryRequireRecipientName),
        ("SalesDeliveryAllowPlannedRoute", \.salesDeliveryAllowPlannedRoute),
        ("SalesDeliveryAllowAddress", \.salesDeliveryAllowAddress),
        ("SalesDeliveryAllowCity", \.salesDeliveryAllowCity),
        ("SalesDeliveryAllowState", \.salesDeliveryAllowState),
        ("SalesDeliveryAllowCounty", \.salesDeliveryAllowCounty),
        ("SalesDeliveryAllowZip", \.salesDeliveryAllowZip),
        ("RetailerDelivery", \.retailerDelivery),
        ("RetailerDeliveryRequirePrice", \.retailerDeliveryRequirePrice),
        ("RetailerDeliveryAllowPartialPackages", \.retailerDeliveryAllowPartialPackages),
    ]

    /// The flags as `FacilityType` members.
    var facilityTypeMembers: [(String, JSON)] {
        Self.wireNames.map { ($0.name, .bool(self[keyPath: $0.flag])) }
    }
}

/// One of Metrc's reasons for a package returned from a sales delivery.
public struct SimDeliveryReturnReason: Sendable, Equatable {
    public var name: String
    public var requiresNote: Bool

    public init(name: String, requiresNote: Bool) {
        self.name = name
        self.requiresNote = requiresNote
    }

    /// docs/deliveries.md: Spoilage and Customer Refused need no note, Damaged and Other do.
    public static let standard = [
        SimDeliveryReturnReason(name: "Spoilage", requiresNote: false),
        SimDeliveryReturnReason(name: "Customer Refused", requiresNote: false),
        SimDeliveryReturnReason(name: "Damaged", requiresNote: true),
        SimDeliveryReturnReason(name: "Other", requiresNote: true),
    ]
}

/// The driver of a delivery or trip.
public struct SimDriver: Sendable, Equatable {
    public var employeeId: String
    public var name: String
    public var licenseNumber: String
}

/// The vehicle of a delivery or trip.
public struct SimVehicle: Sendable, Equatable {
    public var make: String
    public var model: String
    public var licensePlateNumber: String
}

/// Who a delivery (or a sale from a trip) goes to, and where.
public struct SimDeliveryCustomer: Sendable, Equatable {
    /// As `GET /sales/v2/customertypes` spells it.
    public var customerType: String
    public var patientLicenseNumber: String?
    public var consumerId: String?
    public var recipientName: String?
    public var phoneNumberForQuestions: String?
    public var street1: String?
    public var street2: String?
    public var city: String?
    public var county: String?
    public var state: String?
    public var postalCode: String?
}

/// A sales delivery (one order driven to one customer) as the simulated Metrc holds it.
public struct SimSalesDelivery: Sendable, Equatable {
    /// Metrc's `SalesDeliveryState`.
    public enum State: String, Sendable {
        case inTransit = "InTransit"
        case delivered = "Delivered"
        case voided = "Voided"
    }

    public var id: Int64
    public var license: String
    /// Local wall-clock time in the facility's zone, normalised to `yyyy-MM-ddTHH:mm:ss.SSS` (as are the others).
    public var salesDateTime: String
    public var customer: SimDeliveryCustomer
    public var driver: SimDriver
    public var vehicle: SimVehicle
    public var plannedRoute: String?
    public var estimatedDepartureDateTime: String
    public var estimatedArrivalDateTime: String
    /// Set by the completion.
    public var actualArrivalDateTime: String?
    /// As posted (either spelling), each package once.
    public var transactions: [SimTransaction]
    /// Labels the customer accepted, as the completion listed them.
    public var acceptedPackages: [String]
    public var returnedPackages: [SimDeliveryReturn]
    public var state: State
    public var completedAt: Date?
    public var voidedAt: Date?
    public var recordedAt: Date
    public var lastModified: Date

    /// On `GET /sales/v2/deliveries/active`; completed and voided ones are on `/inactive`.
    public var isActive: Bool { state == .inTransit }
}

/// A package (part of one) that came back from a sales delivery.
public struct SimDeliveryReturn: Sendable, Equatable {
    public var label: String
    /// In `unitOfMeasure`, the unit of the delivery's line.
    public var quantity: Decimal
    public var unitOfMeasure: String
    public var reason: String
    public var note: String?

    public init(label: String, quantity: Decimal, unitOfMeasure: String, reason: String, note: String? = nil) {
        self.label = label
        self.quantity = quantity
        self.unitOfMeasure = unitOfMeasure
        self.reason = reason
        self.note = note
    }
}

/// A retailer delivery (a vehicle carrying the shop's packages and selling on the road) as the simulated Metrc holds it.
public struct SimTrip: Sendable, Equatable {
    /// Metrc's `RetailerDeliveryState`.
    public enum State: String, Sendable {
        case created = "Created"
        case inTransit = "InTransit"
        case completed = "Completed"
        case voided = "Voided"
    }

    public var id: Int64
    public var license: String
    /// Local wall-clock times, normalised like `SimSalesDelivery.salesDateTime`.
    public var dateTime: String
    public var driver: SimDriver
    public var vehicle: SimVehicle
    public var phoneNumberForQuestions: String?
    public var estimatedDepartureDateTime: String
    /// The facility's wall clock when the trip departed.
    public var actualDepartureDateTime: String?
    /// The `DateTime` of the last restock.
    public var restockDateTime: String?
    /// 1 at creation, one more per restock.
    public var leg: Int
    public var state: State
    public var actualArrivalDateTime: String?
    public var completedAt: Date?
    public var voidedAt: Date?
    /// What the vehicle carries now, in load order; a package sold out stays with quantity 0.
    public var packages: [SimTripPackage]
    /// The sales made from the vehicle (Metrc's `Destinations`), in order.
    public var sales: [SimTripSale]
    /// The counts the trip ended with.
    public var endCounts: [SimTripPackage]
    public var recordedAt: Date
    public var lastModified: Date

    /// On `GET /sales/v2/deliveries/retailer/active`: its vehicle's goods are not the shop's to sell.
    public var isActive: Bool { state == .created || state == .inTransit }

    /// What the vehicle holds of a package (label matched case-insensitively), in the package's unit.
    public func quantity(of label: String) -> Decimal? {
        packages.first { $0.packageLabel.uppercased() == label.uppercased() }?.quantity
    }
}

/// A package on a trip's vehicle.
public struct SimTripPackage: Sendable, Equatable {
    public var packageLabel: String
    /// In `unitOfMeasure`, the package's own unit whatever unit the load was posted in.
    public var quantity: Decimal
    public var unitOfMeasure: String
    /// What was loaded of it is worth; topping up adds the top-up's price.
    public var totalPrice: Decimal?
    /// As posted with the load (local wall clock), if it was.
    public var dateTime: String?
}

/// A sale made from a trip's vehicle (one of the trip's `Destinations`).
public struct SimTripSale: Sendable, Equatable {
    public var id: Int64
    public var salesDateTime: String
    public var customer: SimDeliveryCustomer
    public var transactions: [SimTransaction]
    public var recordedAt: Date
}
