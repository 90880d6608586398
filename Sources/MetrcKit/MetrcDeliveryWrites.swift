import Foundation

/// One line of a sales delivery. The specification types it `SaleTransaction` (`QuantitySold`,
/// `UnitOfMeasureName`, `TotalPrice`) while Metrc's receipt lines say `Quantity`, `UnitOfMeasure`,
/// `TotalAmount`: both spellings go, and a Metrc reads the one it knows (docs/deliveries.md).
public struct MetrcDeliveryLineDraft: Sendable, Equatable, Encodable {
    public var packageLabel: String
    public var quantity: Decimal
    public var unitOfMeasure: String
    public var totalAmount: Decimal

    public init(packageLabel: String, quantity: Decimal, unitOfMeasure: String, totalAmount: Decimal) {
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unitOfMeasure = unitOfMeasure
        self.totalAmount = totalAmount
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyKey.self)
        try container.encode(packageLabel, forKey: AnyKey("PackageLabel"))
        for key in ["Quantity", "QuantitySold"] { try container.encode(quantity, forKey: AnyKey(key)) }
        for key in ["UnitOfMeasure", "UnitOfMeasureName"] { try container.encode(unitOfMeasure, forKey: AnyKey(key)) }
        for key in ["TotalAmount", "TotalPrice"] { try container.encode(totalAmount, forKey: AnyKey(key)) }
    }
}

/// A sales delivery, as `POST /sales/v2/deliveries` takes it; with `id`, as `PUT` takes it.
public struct MetrcSalesDeliveryDraft: Sendable, Equatable, Encodable, MetrcWritable {
    public var id: Int64?
    /// Facility-local wall clock, unique among Till's deliveries: how a create in doubt is found again.
    public var salesDateTime: String
    public var salesCustomerType: String
    public var patientLicenseNumber: String?
    public var consumerId: String?
    public var driverEmployeeId: String
    public var driverName: String
    public var driversLicenseNumber: String
    public var phoneNumberForQuestions: String?
    public var vehicleMake: String
    public var vehicleModel: String
    public var vehicleLicensePlateNumber: String
    public var recipientName: String?
    public var recipientAddressStreet1: String?
    public var recipientAddressStreet2: String?
    public var recipientAddressCity: String?
    public var recipientAddressCounty: String?
    public var recipientAddressState: String?
    public var recipientAddressPostalCode: String?
    public var plannedRoute: String?
    public var estimatedDepartureDateTime: String
    public var estimatedArrivalDateTime: String
    public var transactions: [MetrcDeliveryLineDraft]

    public init(id: Int64? = nil, salesDateTime: String, salesCustomerType: String, patientLicenseNumber: String?,
                consumerId: String?, driverEmployeeId: String, driverName: String, driversLicenseNumber: String,
                phoneNumberForQuestions: String?, vehicleMake: String, vehicleModel: String, vehicleLicensePlateNumber: String,
                recipientName: String?, recipientAddressStreet1: String?, recipientAddressStreet2: String?,
                recipientAddressCity: String?, recipientAddressCounty: String?, recipientAddressState: String?,
                recipientAddressPostalCode: String?, plannedRoute: String?, estimatedDepartureDateTime: String,
                estimatedArrivalDateTime: String, transactions: [MetrcDeliveryLineDraft]) {
        self.id = id
        self.salesDateTime = salesDateTime
        self.salesCustomerType = salesCustomerType
        self.patientLicenseNumber = patientLicenseNumber
        self.consumerId = consumerId
        self.driverEmployeeId = driverEmployeeId
        self.driverName = driverName
        self.driversLicenseNumber = driversLicenseNumber
        self.phoneNumberForQuestions = phoneNumberForQuestions
        self.vehicleMake = vehicleMake
        self.vehicleModel = vehicleModel
        self.vehicleLicensePlateNumber = vehicleLicensePlateNumber
        self.recipientName = recipientName
        self.recipientAddressStreet1 = recipientAddressStreet1
        self.recipientAddressStreet2 = recipientAddressStreet2
        self.recipientAddressCity = recipientAddressCity
        self.recipientAddressCounty = recipientAddressCounty
        self.recipientAddressState = recipientAddressState
        self.recipientAddressPostalCode = recipientAddressPostalCode
        self.plannedRoute = plannedRoute
        self.estimatedDepartureDateTime = estimatedDepartureDateTime
        self.estimatedArrivalDateTime = estimatedArrivalDateTime
        self.transactions = transactions
    }

    enum CodingKeys: String, CodingKey {
        case id = "Id", salesDateTime = "SalesDateTime", salesCustomerType = "SalesCustomerType"
        case patientLicenseNumber = "PatientLicenseNumber", consumerId = "ConsumerId"
        case driverEmployeeId = "DriverEmployeeId", driverName = "DriverName", driversLicenseNumber = "DriversLicenseNumber"
        case phoneNumberForQuestions = "PhoneNumberForQuestions", vehicleMake = "VehicleMake", vehicleModel = "VehicleModel"
        case vehicleLicensePlateNumber = "VehicleLicensePlateNumber", recipientName = "RecipientName"
        case recipientAddressStreet1 = "RecipientAddressStreet1", recipientAddressStreet2 = "RecipientAddressStreet2"
        case recipientAddressCity = "RecipientAddressCity", recipientAddressCounty = "RecipientAddressCounty"
        case recipientAddressState = "RecipientAddressState", recipientAddressPostalCode = "RecipientAddressPostalCode"
        case plannedRoute = "PlannedRoute", estimatedDepartureDateTime = "EstimatedDepartureDateTime"
        case estimatedArrivalDateTime = "EstimatedArrivalDateTime", transactions = "Transactions"
    }

    public var jsonObject: String { encodedObject }

    /// The edit's body: this content with the delivery's Id (`null` until Metrc has given it).
    public var updateObject: String {
        var body = self
        body.id = nil
        return Self.withId(body.encodedObject, key: "Id", id: id)
    }

    /// `object` with `"key": id` first (JSON `null` when the Id is not known yet; the journal fills it in).
    static func withId(_ object: String, key: String, id: Int64?) -> String {
        let rest = object.dropFirst()
        return "{\"\(key)\":\(id.map(String.init) ?? "null")" + (rest == "}" ? "}" : "," + rest)
    }
}

/// `PUT /sales/v2/deliveries/complete`: what the customer accepted and what came back.
public struct MetrcDeliveryCompletionDraft: Sendable, Equatable, Encodable, MetrcWritable {
    public struct Returned: Sendable, Equatable, Encodable {
        public var label: String
        public var returnQuantityVerified: Decimal
        public var returnUnitOfMeasure: String
        public var returnReason: String
        public var returnReasonNote: String?

        public init(label: String, returnQuantityVerified: Decimal, returnUnitOfMeasure: String, returnReason: String,
                    returnReasonNote: String?) {
            self.label = label
            self.returnQuantityVerified = returnQuantityVerified
            self.returnUnitOfMeasure = returnUnitOfMeasure
            self.returnReason = returnReason
            self.returnReasonNote = returnReasonNote
        }

        enum CodingKeys: String, CodingKey {
            case label = "Label", returnQuantityVerified = "ReturnQuantityVerified"
            case returnUnitOfMeasure = "ReturnUnitOfMeasure", returnReason = "ReturnReason", returnReasonNote = "ReturnReasonNote"
        }
    }

    public var id: Int64?
    public var actualArrivalDateTime: String
    public var acceptedPackages: [String]
    public var returnedPackages: [Returned]

    public init(id: Int64?, actualArrivalDateTime: String, acceptedPackages: [String], returnedPackages: [Returned]) {
        self.id = id
        self.actualArrivalDateTime = actualArrivalDateTime
        self.acceptedPackages = acceptedPackages
        self.returnedPackages = returnedPackages
    }

    enum CodingKeys: String, CodingKey {
        case actualArrivalDateTime = "ActualArrivalDateTime", acceptedPackages = "AcceptedPackages"
        case returnedPackages = "ReturnedPackages"
    }

    public var jsonObject: String { MetrcSalesDeliveryDraft.withId(encodedObject, key: "Id", id: id) }
}

/// A package loaded on (or, with `removeCurrentPackage`, taken off) a vehicle.
public struct MetrcTripPackageDraft: Sendable, Equatable, Encodable {
    public var dateTime: String
    public var packageLabel: String
    public var quantity: Decimal
    public var unitOfMeasure: String
    public var totalPrice: Decimal?
    /// Restocks only: nil at creation.
    public var removeCurrentPackage: Bool?

    public init(dateTime: String, packageLabel: String, quantity: Decimal, unitOfMeasure: String, totalPrice: Decimal?,
                removeCurrentPackage: Bool? = nil) {
        self.dateTime = dateTime
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unitOfMeasure = unitOfMeasure
        self.totalPrice = totalPrice
        self.removeCurrentPackage = removeCurrentPackage
    }

    enum CodingKeys: String, CodingKey {
        case dateTime = "DateTime", packageLabel = "PackageLabel", quantity = "Quantity", unitOfMeasure = "UnitOfMeasure"
        case totalPrice = "TotalPrice", removeCurrentPackage = "RemoveCurrentPackage"
    }
}

/// `POST /sales/v2/deliveries/retailer`: a vehicle trip with its load.
public struct MetrcTripDraft: Sendable, Equatable, Encodable, MetrcWritable {
    /// Facility-local wall clock, unique among Till's trips: how a create in doubt is found again.
    public var dateTime: String
    public var driverEmployeeId: String
    public var driverName: String
    public var driversLicenseNumber: String
    public var phoneNumberForQuestions: String?
    public var vehicleMake: String
    public var vehicleModel: String
    public var vehicleLicensePlateNumber: String
    public var estimatedDepartureDateTime: String
    public var packages: [MetrcTripPackageDraft]

    public init(dateTime: String, driverEmployeeId: String, driverName: String, driversLicenseNumber: String,
                phoneNumberForQuestions: String?, vehicleMake: String, vehicleModel: String, vehicleLicensePlateNumber: String,
                estimatedDepartureDateTime: String, packages: [MetrcTripPackageDraft]) {
        self.dateTime = dateTime
        self.driverEmployeeId = driverEmployeeId
        self.driverName = driverName
        self.driversLicenseNumber = driversLicenseNumber
        self.phoneNumberForQuestions = phoneNumberForQuestions
        self.vehicleMake = vehicleMake
        self.vehicleModel = vehicleModel
        self.vehicleLicensePlateNumber = vehicleLicensePlateNumber
        self.estimatedDepartureDateTime = estimatedDepartureDateTime
        self.packages = packages
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyKey.self)
        try container.encode(dateTime, forKey: AnyKey("DateTime"))
        try container.encode(driverEmployeeId, forKey: AnyKey("DriverEmployeeId"))
        try container.encode(driverName, forKey: AnyKey("DriverName"))
        try container.encode(driversLicenseNumber, forKey: AnyKey("DriversLicenseNumber"))
        try container.encodeIfPresent(phoneNumberForQuestions, forKey: AnyKey("PhoneNumberForQuestions"))
        try container.encode(vehicleMake, forKey: AnyKey("VehicleMake"))
        try container.encode(vehicleModel, forKey: AnyKey("VehicleModel"))
        try container.encode(vehicleLicensePlateNumber, forKey: AnyKey("VehicleLicensePlateNumber"))
        try container.encode(estimatedDepartureDateTime, forKey: AnyKey("EstimatedDepartureDateTime"))
        try container.encode([String](), forKey: AnyKey("Destinations"))
        try container.encode(packages, forKey: AnyKey("Packages"))
    }

    public var jsonObject: String { encodedObject }
}

/// `POST /sales/v2/deliveries/retailer/sale`: a sale made from the vehicle.
public struct MetrcTripSaleDraft: Sendable, Equatable, Encodable, MetrcWritable {
    public var retailerDeliveryId: Int64?
    /// Facility-local wall clock, unique among the trip's sales: how a sale in doubt is found on the trip.
    public var salesDateTime: String
    public var salesCustomerType: String
    public var patientLicenseNumber: String?
    public var consumerId: String?
    public var phoneNumberForQuestions: String?
    public var recipientName: String?
    public var recipientAddressStreet1: String?
    public var recipientAddressStreet2: String?
    public var recipientAddressCity: String?
    public var recipientAddressCounty: String?
    public var recipientAddressState: String?
    public var recipientAddressPostalCode: String?
    public var transactions: [MetrcTransactionDraft]

    public init(retailerDeliveryId: Int64?, salesDateTime: String, salesCustomerType: String, patientLicenseNumber: String?,
                consumerId: String?, phoneNumberForQuestions: String?, recipientName: String?,
                recipientAddressStreet1: String?, recipientAddressStreet2: String?, recipientAddressCity: String?,
                recipientAddressCounty: String?, recipientAddressState: String?, recipientAddressPostalCode: String?,
                transactions: [MetrcTransactionDraft]) {
        self.retailerDeliveryId = retailerDeliveryId
        self.salesDateTime = salesDateTime
        self.salesCustomerType = salesCustomerType
        self.patientLicenseNumber = patientLicenseNumber
        self.consumerId = consumerId
        self.phoneNumberForQuestions = phoneNumberForQuestions
        self.recipientName = recipientName
        self.recipientAddressStreet1 = recipientAddressStreet1
        self.recipientAddressStreet2 = recipientAddressStreet2
        self.recipientAddressCity = recipientAddressCity
        self.recipientAddressCounty = recipientAddressCounty
        self.recipientAddressState = recipientAddressState
        self.recipientAddressPostalCode = recipientAddressPostalCode
        self.transactions = transactions
    }

    enum CodingKeys: String, CodingKey {
        case salesDateTime = "SalesDateTime", salesCustomerType = "SalesCustomerType"
        case patientLicenseNumber = "PatientLicenseNumber", consumerId = "ConsumerId"
        case phoneNumberForQuestions = "PhoneNumberForQuestions", recipientName = "RecipientName"
        case recipientAddressStreet1 = "RecipientAddressStreet1", recipientAddressStreet2 = "RecipientAddressStreet2"
        case recipientAddressCity = "RecipientAddressCity", recipientAddressCounty = "RecipientAddressCounty"
        case recipientAddressState = "RecipientAddressState", recipientAddressPostalCode = "RecipientAddressPostalCode"
        case transactions = "Transactions"
    }

    public var jsonObject: String {
        MetrcSalesDeliveryDraft.withId(encodedObject, key: "RetailerDeliveryId", id: retailerDeliveryId)
    }
}

/// `POST /sales/v2/deliveries/retailer/restock`: packages added to the vehicle or swapped off it.
public struct MetrcTripRestockDraft: Sendable, Equatable, Encodable, MetrcWritable {
    public var retailerDeliveryId: Int64?
    /// Facility-local wall clock, later than any earlier restock of the trip: Metrc's `RestockDateTime`
    /// at least this shows the restock applied.
    public var dateTime: String
    public var estimatedDepartureDateTime: String?
    public var packages: [MetrcTripPackageDraft]

    public init(retailerDeliveryId: Int64?, dateTime: String, estimatedDepartureDateTime: String?, packages: [MetrcTripPackageDraft]) {
        self.retailerDeliveryId = retailerDeliveryId
        self.dateTime = dateTime
        self.estimatedDepartureDateTime = estimatedDepartureDateTime
        self.packages = packages
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyKey.self)
        try container.encode(dateTime, forKey: AnyKey("DateTime"))
        try container.encodeIfPresent(estimatedDepartureDateTime, forKey: AnyKey("EstimatedDepartureDateTime"))
        try container.encode([String](), forKey: AnyKey("Destinations"))
        try container.encode(packages, forKey: AnyKey("Packages"))
    }

    public var jsonObject: String {
        MetrcSalesDeliveryDraft.withId(encodedObject, key: "RetailerDeliveryId", id: retailerDeliveryId)
    }
}

/// `POST /sales/v2/deliveries/retailer/end`: the trip's end, with what the vehicle brings back.
public struct MetrcTripEndDraft: Sendable, Equatable, Encodable, MetrcWritable {
    public struct Package: Sendable, Equatable, Encodable {
        public var label: String
        public var endQuantity: Decimal
        public var endUnitOfMeasure: String

        public init(label: String, endQuantity: Decimal, endUnitOfMeasure: String) {
            self.label = label
            self.endQuantity = endQuantity
            self.endUnitOfMeasure = endUnitOfMeasure
        }

        enum CodingKeys: String, CodingKey {
            case label = "Label", endQuantity = "EndQuantity", endUnitOfMeasure = "EndUnitOfMeasure"
        }
    }

    public var retailerDeliveryId: Int64?
    public var actualArrivalDateTime: String
    public var packages: [Package]

    public init(retailerDeliveryId: Int64?, actualArrivalDateTime: String, packages: [Package]) {
        self.retailerDeliveryId = retailerDeliveryId
        self.actualArrivalDateTime = actualArrivalDateTime
        self.packages = packages
    }

    enum CodingKeys: String, CodingKey {
        case actualArrivalDateTime = "ActualArrivalDateTime", packages = "Packages"
    }

    public var jsonObject: String {
        MetrcSalesDeliveryDraft.withId(encodedObject, key: "RetailerDeliveryId", id: retailerDeliveryId)
    }
}

/// `{"RetailerDeliveryId":n}`: a departure (`null` until Metrc has given the trip's Id); for a DELETE, what
/// its journal row names.
public enum MetrcTripIdBody {
    public static func jsonObject(_ id: Int64?) -> String {
        "{\"RetailerDeliveryId\":\(id.map(String.init) ?? "null")}"
    }
}
