import Foundation

// Response types decode with `MetrcJSON.makeDecoder()`, which lower-cases every key: their CodingKeys are
// therefore lower case. Optionals tolerate missing fields; unknown fields are ignored.

/// A sales receipt as Metrc holds it.
public struct MetrcReceipt: Sendable, Equatable, Decodable {
    public var id: Int64
    public var receiptNumber: String?
    /// Facility-local time as Metrc wrote it; read it with `MetrcLocalTime.parse`.
    public var salesDateTime: String?
    public var salesCustomerType: String?
    public var patientLicenseNumber: String?
    public var caregiverLicenseNumber: String?
    public var externalReceiptNumber: String?
    public var totalPackages: Int?
    public var totalPrice: Decimal?
    public var isFinal: Bool?
    public var archivedDate: String?
    public var lastModified: String?
    public var transactions: [MetrcReceiptTransaction]?

    public init(id: Int64, receiptNumber: String? = nil, salesDateTime: String? = nil, salesCustomerType: String? = nil,
                patientLicenseNumber: String? = nil, caregiverLicenseNumber: String? = nil,
                externalReceiptNumber: String? = nil, totalPackages: Int? = nil, totalPrice: Decimal? = nil,
                isFinal: Bool? = nil, archivedDate: String? = nil, lastModified: String? = nil,
                transactions: [MetrcReceiptTransaction]? = nil) {
        self.id = id
        self.receiptNumber = receiptNumber
        self.salesDateTime = salesDateTime
        self.salesCustomerType = salesCustomerType
        self.patientLicenseNumber = patientLicenseNumber
        self.caregiverLicenseNumber = caregiverLicenseNumber
        self.externalReceiptNumber = externalReceiptNumber
        self.totalPackages = totalPackages
        self.totalPrice = totalPrice
        self.isFinal = isFinal
        self.archivedDate = archivedDate
        self.lastModified = lastModified
        self.transactions = transactions
    }

    enum CodingKeys: String, CodingKey {
        case id
        case receiptNumber = "receiptnumber"
        case salesDateTime = "salesdatetime"
        case salesCustomerType = "salescustomertype"
        case patientLicenseNumber = "patientlicensenumber"
        case caregiverLicenseNumber = "caregiverlicensenumber"
        case externalReceiptNumber = "externalreceiptnumber"
        case totalPackages = "totalpackages"
        case totalPrice = "totalprice"
        case isFinal = "isfinal"
        case archivedDate = "archiveddate"
        case lastModified = "lastmodified"
        case transactions
    }
}

/// One line of a receipt as Metrc holds it.
public struct MetrcReceiptTransaction: Sendable, Equatable, Decodable {
    public var packageId: Int64?
    public var packageLabel: String?
    public var productName: String?
    public var productCategoryName: String?
    public var quantitySold: Decimal?
    public var unitOfMeasureName: String?
    public var totalPrice: Decimal?

    public init(packageId: Int64? = nil, packageLabel: String? = nil, productName: String? = nil,
                productCategoryName: String? = nil, quantitySold: Decimal? = nil, unitOfMeasureName: String? = nil,
                totalPrice: Decimal? = nil) {
        self.packageId = packageId
        self.packageLabel = packageLabel
        self.productName = productName
        self.productCategoryName = productCategoryName
        self.quantitySold = quantitySold
        self.unitOfMeasureName = unitOfMeasureName
        self.totalPrice = totalPrice
    }

    enum CodingKeys: String, CodingKey {
        case packageId = "packageid"
        case packageLabel = "packagelabel"
        case productName = "productname"
        case productCategoryName = "productcategoryname"
        case quantitySold = "quantitysold"
        case unitOfMeasureName = "unitofmeasurename"
        case totalPrice = "totalprice"
        // The spec's SaleReceiptTransaction spelling of the same three; Metrc's answers have used the names above.
        case quantity, unitOfMeasure = "unitofmeasure", totalAmount = "totalamount"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        packageId = try container.decodeIfPresent(Int64.self, forKey: .packageId)
        packageLabel = try container.decodeIfPresent(String.self, forKey: .packageLabel)
        productName = try container.decodeIfPresent(String.self, forKey: .productName)
        productCategoryName = try container.decodeIfPresent(String.self, forKey: .productCategoryName)
        quantitySold = try container.decodeIfPresent(Decimal.self, forKey: .quantitySold)
            ?? container.decodeIfPresent(Decimal.self, forKey: .quantity)
        unitOfMeasureName = try container.decodeIfPresent(String.self, forKey: .unitOfMeasureName)
            ?? container.decodeIfPresent(String.self, forKey: .unitOfMeasure)
        totalPrice = try container.decodeIfPresent(Decimal.self, forKey: .totalPrice)
            ?? container.decodeIfPresent(Decimal.self, forKey: .totalAmount)
    }
}

/// A package of product in the facility's Metrc inventory.
public struct MetrcPackage: Sendable, Equatable, Decodable {
    public var id: Int64
    public var label: String
    public var quantity: Decimal
    public var unitOfMeasureName: String
    public var isOnHold: Bool
    public var labTestingState: String?
    public var isFinished: Bool?
    public var archivedDate: String?
    public var finishedDate: String?
    public var lastModified: String?
    public var item: MetrcItem?

    public init(id: Int64, label: String, quantity: Decimal, unitOfMeasureName: String, isOnHold: Bool = false,
                labTestingState: String? = nil, isFinished: Bool? = nil, archivedDate: String? = nil,
                finishedDate: String? = nil, lastModified: String? = nil, item: MetrcItem? = nil) {
        self.id = id
        self.label = label
        self.quantity = quantity
        self.unitOfMeasureName = unitOfMeasureName
        self.isOnHold = isOnHold
        self.labTestingState = labTestingState
        self.isFinished = isFinished
        self.archivedDate = archivedDate
        self.finishedDate = finishedDate
        self.lastModified = lastModified
        self.item = item
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(Int64.self, forKey: .id)
        label = try container.decode(String.self, forKey: .label)
        quantity = try container.decode(Decimal.self, forKey: .quantity)
        unitOfMeasureName = try container.decode(String.self, forKey: .unitOfMeasureName)
        // Not nullable in the specification; a state that leaves it out has no hold concept to report.
        isOnHold = try container.decodeIfPresent(Bool.self, forKey: .isOnHold) ?? false
        labTestingState = try container.decodeIfPresent(String.self, forKey: .labTestingState)
        isFinished = try container.decodeIfPresent(Bool.self, forKey: .isFinished)
        archivedDate = try container.decodeIfPresent(String.self, forKey: .archivedDate)
        finishedDate = try container.decodeIfPresent(String.self, forKey: .finishedDate)
        lastModified = try container.decodeIfPresent(String.self, forKey: .lastModified)
        item = try container.decodeIfPresent(MetrcItem.self, forKey: .item)
    }

    enum CodingKeys: String, CodingKey {
        case id
        case label
        case quantity
        case unitOfMeasureName = "unitofmeasurename"
        case isOnHold = "isonhold"
        case labTestingState = "labtestingstate"
        case isFinished = "isfinished"
        case archivedDate = "archiveddate"
        case finishedDate = "finisheddate"
        case lastModified = "lastmodified"
        case item
    }
}

/// The product a package holds.
public struct MetrcItem: Sendable, Equatable, Decodable {
    public var id: Int64?
    public var name: String?
    public var productCategoryName: String?
    public var productCategoryType: String?
    /// "CountBased", "WeightBased", "VolumeBased".
    public var quantityType: String?
    public var unitOfMeasureName: String?
    /// Weight of one unit of a count-based item (e.g. 1 Grams per pre-roll): how "Each" counts against a patient's allowance.
    public var unitWeight: Decimal?
    public var unitWeightUnitOfMeasureName: String?

    public init(id: Int64? = nil, name: String? = nil, productCategoryName: String? = nil,
                productCategoryType: String? = nil, quantityType: String? = nil, unitOfMeasureName: String? = nil,
                unitWeight: Decimal? = nil, unitWeightUnitOfMeasureName: String? = nil) {
        self.id = id
        self.name = name
        self.productCategoryName = productCategoryName
        self.productCategoryType = productCategoryType
        self.quantityType = quantityType
        self.unitOfMeasureName = unitOfMeasureName
        self.unitWeight = unitWeight
        self.unitWeightUnitOfMeasureName = unitWeightUnitOfMeasureName
    }

    enum CodingKeys: String, CodingKey {
        case id
        case name
        case unitWeight = "unitweight"
        case unitWeightUnitOfMeasureName = "unitweightunitofmeasurename"
        case productCategoryName = "productcategoryname"
        case productCategoryType = "productcategorytype"
        case quantityType = "quantitytype"
        case unitOfMeasureName = "unitofmeasurename"
    }
}

/// A unit Metrc accepts in `UnitOfMeasure` fields.
public struct MetrcUnitOfMeasure: Sendable, Equatable, Decodable {
    public var name: String
    public var quantityType: String?
    public var abbreviation: String?

    public init(name: String, quantityType: String? = nil, abbreviation: String? = nil) {
        self.name = name
        self.quantityType = quantityType
        self.abbreviation = abbreviation
    }

    enum CodingKeys: String, CodingKey {
        case name
        case quantityType = "quantitytype"
        case abbreviation
    }
}

/// A facility the keys can act for, with what its license allows it to sell.
public struct MetrcFacility: Sendable, Equatable, Decodable {
    public var name: String?
    public var displayName: String?
    /// From `License.Number`.
    public var licenseNumber: String
    /// From `License.LicenseType`.
    public var licenseType: String?
    // The can* flags come from the nested FacilityType object.
    public var canSellToConsumers: Bool?
    public var canSellToPatients: Bool?
    public var canSellToCaregivers: Bool?
    public var canSellToExternalPatients: Bool?
    public var canReportPatientCheckIns: Bool?
    /// The delivery rules of its license (nil: Metrc did not say).
    public var delivery: MetrcDeliveryFlags = MetrcDeliveryFlags()

    public init(name: String? = nil, displayName: String? = nil, licenseNumber: String, licenseType: String? = nil,
                canSellToConsumers: Bool? = nil, canSellToPatients: Bool? = nil, canSellToCaregivers: Bool? = nil,
                canSellToExternalPatients: Bool? = nil, canReportPatientCheckIns: Bool? = nil) {
        self.name = name
        self.displayName = displayName
        self.licenseNumber = licenseNumber
        self.licenseType = licenseType
        self.canSellToConsumers = canSellToConsumers
        self.canSellToPatients = canSellToPatients
        self.canSellToCaregivers = canSellToCaregivers
        self.canSellToExternalPatients = canSellToExternalPatients
        self.canReportPatientCheckIns = canReportPatientCheckIns
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        displayName = try container.decodeIfPresent(String.self, forKey: .displayName)
        let license = try container.decode(License.self, forKey: .license)
        licenseNumber = license.number
        licenseType = license.licenseType
        let type = try container.decodeIfPresent(FacilityType.self, forKey: .facilityType)
        canSellToConsumers = type?.canSellToConsumers
        canSellToPatients = type?.canSellToPatients
        canSellToCaregivers = type?.canSellToCaregivers
        canSellToExternalPatients = type?.canSellToExternalPatients
        canReportPatientCheckIns = type?.canReportPatientCheckIns
        delivery = type?.delivery ?? MetrcDeliveryFlags()
    }

    enum CodingKeys: String, CodingKey {
        case name
        case displayName = "displayname"
        case license
        case facilityType = "facilitytype"
    }

    private struct License: Decodable {
        var number: String
        var licenseType: String?

        enum CodingKeys: String, CodingKey {
            case number
            case licenseType = "licensetype"
        }
    }

    private struct FacilityType: Decodable {
        var canSellToConsumers: Bool?
        var canSellToPatients: Bool?
        var canSellToCaregivers: Bool?
        var canSellToExternalPatients: Bool?
        var canReportPatientCheckIns: Bool?
        var delivery: MetrcDeliveryFlags

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            canSellToConsumers = try container.decodeIfPresent(Bool.self, forKey: .canSellToConsumers)
            canSellToPatients = try container.decodeIfPresent(Bool.self, forKey: .canSellToPatients)
            canSellToCaregivers = try container.decodeIfPresent(Bool.self, forKey: .canSellToCaregivers)
            canSellToExternalPatients = try container.decodeIfPresent(Bool.self, forKey: .canSellToExternalPatients)
            canReportPatientCheckIns = try container.decodeIfPresent(Bool.self, forKey: .canReportPatientCheckIns)
            delivery = try MetrcDeliveryFlags(from: decoder)
        }

        enum CodingKeys: String, CodingKey {
            case canSellToConsumers = "canselltoconsumers"
            case canSellToPatients = "canselltopatients"
            case canSellToCaregivers = "canselltocaregivers"
            case canSellToExternalPatients = "canselltoexternalpatients"
            case canReportPatientCheckIns = "canreportpatientcheckins"
        }
    }
}

/// One registration of a medical patient, with what they may still buy. Metrc caches it for up to a minute.
public struct MetrcPatientStatus: Sendable, Equatable, Decodable {
    public var patientLicenseNumber: String?
    public var active: Bool?
    public var registrationNumber: String?
    public var patientLicenseExpirationDate: String?
    public var patientRegistrationStartDate: String?
    public var identificationMethod: String?
    public var purchaseAmountDays: Decimal?
    public var flowerOuncesAllowed: Decimal?
    public var flowerOuncesPurchased: Decimal?
    public var flowerOuncesAvailable: Decimal?
    public var thcOuncesAllowed: Decimal?
    public var thcOuncesPurchased: Decimal?
    public var thcOuncesAvailable: Decimal?
    public var concentrateOuncesAllowed: Decimal?
    public var concentrateOuncesPurchased: Decimal?
    public var concentrateOuncesAvailable: Decimal?
    public var infusedOuncesAllowed: Decimal?
    public var infusedOuncesPurchased: Decimal?
    public var infusedOuncesAvailable: Decimal?

    public init(patientLicenseNumber: String? = nil, active: Bool? = nil, registrationNumber: String? = nil,
                patientLicenseExpirationDate: String? = nil, patientRegistrationStartDate: String? = nil,
                identificationMethod: String? = nil, purchaseAmountDays: Decimal? = nil,
                flowerOuncesAllowed: Decimal? = nil, flowerOuncesPurchased: Decimal? = nil,
                flowerOuncesAvailable: Decimal? = nil, thcOuncesAllowed: Decimal? = nil,
                thcOuncesPurchased: Decimal? = nil, thcOuncesAvailable: Decimal? = nil,
                concentrateOuncesAllowed: Decimal? = nil, concentrateOuncesPurchased: Decimal? = nil,
                concentrateOuncesAvailable: Decimal? = nil, infusedOuncesAllowed: Decimal? = nil,
                infusedOuncesPurchased: Decimal? = nil, infusedOuncesAvailable: Decimal? = nil) {
        self.patientLicenseNumber = patientLicenseNumber
        self.active = active
        self.registrationNumber = registrationNumber
        self.patientLicenseExpirationDate = patientLicenseExpirationDate
        self.patientRegistrationStartDate = patientRegistrationStartDate
        self.identificationMethod = identificationMethod
        self.purchaseAmountDays = purchaseAmountDays
        self.flowerOuncesAllowed = flowerOuncesAllowed
        self.flowerOuncesPurchased = flowerOuncesPurchased
        self.flowerOuncesAvailable = flowerOuncesAvailable
        self.thcOuncesAllowed = thcOuncesAllowed
        self.thcOuncesPurchased = thcOuncesPurchased
        self.thcOuncesAvailable = thcOuncesAvailable
        self.concentrateOuncesAllowed = concentrateOuncesAllowed
        self.concentrateOuncesPurchased = concentrateOuncesPurchased
        self.concentrateOuncesAvailable = concentrateOuncesAvailable
        self.infusedOuncesAllowed = infusedOuncesAllowed
        self.infusedOuncesPurchased = infusedOuncesPurchased
        self.infusedOuncesAvailable = infusedOuncesAvailable
    }

    enum CodingKeys: String, CodingKey {
        case patientLicenseNumber = "patientlicensenumber"
        case active
        case registrationNumber = "registrationnumber"
        case patientLicenseExpirationDate = "patientlicenseexpirationdate"
        case patientRegistrationStartDate = "patientregistrationstartdate"
        case identificationMethod = "identificationmethod"
        case purchaseAmountDays = "purchaseamountdays"
        case flowerOuncesAllowed = "flowerouncesallowed"
        case flowerOuncesPurchased = "flowerouncespurchased"
        case flowerOuncesAvailable = "flowerouncesavailable"
        case thcOuncesAllowed = "thcouncesallowed"
        case thcOuncesPurchased = "thcouncespurchased"
        case thcOuncesAvailable = "thcouncesavailable"
        case concentrateOuncesAllowed = "concentrateouncesallowed"
        case concentrateOuncesPurchased = "concentrateouncespurchased"
        case concentrateOuncesAvailable = "concentrateouncesavailable"
        case infusedOuncesAllowed = "infusedouncesallowed"
        case infusedOuncesPurchased = "infusedouncespurchased"
        case infusedOuncesAvailable = "infusedouncesavailable"
    }
}

/// A caregiver's registration and the patients they may buy for.
public struct MetrcCaregiverStatus: Sendable, Equatable, Decodable {
    public var caregiverLicenseNumber: String?
    public var active: Bool?
    /// Patient license numbers.
    public var patients: [String]?

    public init(caregiverLicenseNumber: String? = nil, active: Bool? = nil, patients: [String]? = nil) {
        self.caregiverLicenseNumber = caregiverLicenseNumber
        self.active = active
        self.patients = patients
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        caregiverLicenseNumber = try container.decodeIfPresent(String.self, forKey: .caregiverLicenseNumber)
        active = try container.decodeIfPresent(Bool.self, forKey: .active)
        patients = try container.decodeIfPresent([PatientReference].self, forKey: .patients)?.compactMap(\.licenseNumber)
    }

    enum CodingKeys: String, CodingKey {
        case caregiverLicenseNumber = "caregiverlicensenumber"
        case active
        case patients
    }

    // States list patients either as bare license numbers or as objects carrying PatientLicenseNumber.
    private struct PatientReference: Decodable {
        var licenseNumber: String?

        init(from decoder: any Decoder) throws {
            if let object = try? decoder.container(keyedBy: AnyKey.self) {
                licenseNumber = try object.decodeIfPresent(String.self, forKey: AnyKey("patientlicensenumber"))
            } else {
                let single = try decoder.singleValueContainer()
                licenseNumber = single.decodeNil() ? nil : try single.decode(String.self)
            }
        }
    }
}

/// A patient check-in as Metrc lists it.
public struct MetrcPatientCheckIn: Sendable, Equatable, Decodable {
    public var id: Int64
    public var patientLicenseNumber: String?
    public var checkInLocationId: Int64?
    public var checkInDate: String?

    public init(id: Int64, patientLicenseNumber: String? = nil, checkInLocationId: Int64? = nil, checkInDate: String? = nil) {
        self.id = id
        self.patientLicenseNumber = patientLicenseNumber
        self.checkInLocationId = checkInLocationId
        self.checkInDate = checkInDate
    }

    enum CodingKeys: String, CodingKey {
        case id
        case patientLicenseNumber = "patientlicensenumber"
        case checkInLocationId = "checkinlocationid"
        case checkInDate = "checkindate"
    }
}

/// What a facility's license says about deliveries (`FacilityType`); nil where Metrc said nothing.
public struct MetrcDeliveryFlags: Sendable, Equatable, Decodable {
    public var canDeliverSalesToConsumers: Bool?
    public var canDeliverSalesToPatients: Bool?
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
    public var retailerDeliveryRequirePrice: Bool?
    public var retailerDeliveryAllowPartialPackages: Bool?

    public init(canDeliverSalesToConsumers: Bool? = nil, canDeliverSalesToPatients: Bool? = nil, requireConsumerId: Bool? = nil,
                requirePatientNumber: Bool? = nil, requireRecipientName: Bool? = nil, allowPlannedRoute: Bool? = nil,
                allowAddress: Bool? = nil, allowCity: Bool? = nil, allowState: Bool? = nil, allowCounty: Bool? = nil,
                allowZip: Bool? = nil, retailerDelivery: Bool? = nil, retailerDeliveryRequirePrice: Bool? = nil,
                retailerDeliveryAllowPartialPackages: Bool? = nil) {
        self.canDeliverSalesToConsumers = canDeliverSalesToConsumers
        self.canDeliverSalesToPatients = canDeliverSalesToPatients
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
        self.retailerDeliveryRequirePrice = retailerDeliveryRequirePrice
        self.retailerDeliveryAllowPartialPackages = retailerDeliveryAllowPartialPackages
    }

    enum CodingKeys: String, CodingKey {
        case canDeliverSalesToConsumers = "candeliversalestoconsumers"
        case canDeliverSalesToPatients = "candeliversalestopatients"
        case requireConsumerId = "salesdeliveryrequireconsumerid"
        case requirePatientNumber = "salesdeliveryrequirepatientnumber"
        case requireRecipientName = "salesdeliveryrequirerecipientname"
        case allowPlannedRoute = "salesdeliveryallowplannedroute"
        case allowAddress = "salesdeliveryallowaddress"
        case allowCity = "salesdeliveryallowcity"
        case allowState = "salesdeliveryallowstate"
        case allowCounty = "salesdeliveryallowcounty"
        case allowZip = "salesdeliveryallowzip"
        case retailerDelivery = "retailerdelivery"
        case retailerDeliveryRequirePrice = "retailerdeliveryrequireprice"
        case retailerDeliveryAllowPartialPackages = "retailerdeliveryallowpartialpackages"
    }
}

/// A sales delivery as Metrc holds it (`SaleDelivery`).
public struct MetrcSalesDelivery: Sendable, Equatable, Decodable {
    public var id: Int64
    public var deliveryNumber: String?
    public var salesDateTime: String?
    public var salesCustomerType: String?
    public var recipientName: String?
    public var salesDeliveryState: String?
    public var actualDepartureDateTime: String?
    public var actualArrivalDateTime: String?
    public var completedDateTime: String?
    public var voidedDate: String?
    public var lastModified: String?
    public var transactions: [MetrcReceiptTransaction]?

    public init(id: Int64, deliveryNumber: String? = nil, salesDateTime: String? = nil, salesCustomerType: String? = nil,
                recipientName: String? = nil, salesDeliveryState: String? = nil, actualDepartureDateTime: String? = nil,
                actualArrivalDateTime: String? = nil, completedDateTime: String? = nil, voidedDate: String? = nil,
                lastModified: String? = nil, transactions: [MetrcReceiptTransaction]? = nil) {
        self.id = id
        self.deliveryNumber = deliveryNumber
        self.salesDateTime = salesDateTime
        self.salesCustomerType = salesCustomerType
        self.recipientName = recipientName
        self.salesDeliveryState = salesDeliveryState
        self.actualDepartureDateTime = actualDepartureDateTime
        self.actualArrivalDateTime = actualArrivalDateTime
        self.completedDateTime = completedDateTime
        self.voidedDate = voidedDate
        self.lastModified = lastModified
        self.transactions = transactions
    }

    /// Completed (delivered) in Metrc: its state says so, or it carries a completion time.
    public var isCompleted: Bool {
        completedDateTime != nil || ["delivered", "completed"].contains(salesDeliveryState?.lowercased() ?? "")
    }

    public var isVoided: Bool { voidedDate != nil || salesDeliveryState?.lowercased() == "voided" }

    enum CodingKeys: String, CodingKey {
        case id
        case deliveryNumber = "deliverynumber"
        case salesDateTime = "salesdatetime"
        case salesCustomerType = "salescustomertype"
        case recipientName = "recipientname"
        case salesDeliveryState = "salesdeliverystate"
        case actualDepartureDateTime = "actualdeparturedatetime"
        case actualArrivalDateTime = "actualarrivaldatetime"
        case completedDateTime = "completeddatetime"
        case voidedDate = "voideddate"
        case lastModified = "lastmodified"
        case transactions
    }
}

/// A retailer delivery (a vehicle trip) as Metrc holds it (`Retailer`).
public struct MetrcRetailerDelivery: Sendable, Equatable, Decodable {
    /// A package on the vehicle now.
    public struct Package: Sendable, Equatable, Decodable {
        public var packageLabel: String?
        public var quantity: Decimal?
        public var unitOfMeasure: String?
        public var totalPrice: Decimal?

        public init(packageLabel: String?, quantity: Decimal?, unitOfMeasure: String?, totalPrice: Decimal? = nil) {
            self.packageLabel = packageLabel
            self.quantity = quantity
            self.unitOfMeasure = unitOfMeasure
            self.totalPrice = totalPrice
        }

        enum CodingKeys: String, CodingKey {
            case packageLabel = "packagelabel", quantity, unitOfMeasure = "unitofmeasure", totalPrice = "totalprice"
        }
    }

    /// A sale made from the vehicle.
    public struct Destination: Sendable, Equatable, Decodable {
        public var id: Int64?
        public var salesDateTime: String?
        public var recipientName: String?
        public var transactions: [MetrcReceiptTransaction]?

        public init(id: Int64?, salesDateTime: String?, recipientName: String? = nil, transactions: [MetrcReceiptTransaction]? = nil) {
            self.id = id
            self.salesDateTime = salesDateTime
            self.recipientName = recipientName
            self.transactions = transactions
        }

        enum CodingKeys: String, CodingKey {
            case id, salesDateTime = "salesdatetime", recipientName = "recipientname", transactions
        }
    }

    public var id: Int64
    public var retailerDeliveryNumber: String?
    public var dateTime: String?
    public var driverEmployeeId: String?
    public var vehicleLicensePlateNumber: String?
    public var actualDepartureDateTime: String?
    public var restockDateTime: String?
    public var leg: Int?
    public var retailerDeliveryState: String?
    public var completedDateTime: String?
    public var voidedDate: String?
    public var lastModified: String?
    public var packages: [Package]?
    public var destinations: [Destination]?

    public init(id: Int64, retailerDeliveryNumber: String? = nil, dateTime: String? = nil, driverEmployeeId: String? = nil,
                vehicleLicensePlateNumber: String? = nil, actualDepartureDateTime: String? = nil, restockDateTime: String? = nil,
                leg: Int? = nil, retailerDeliveryState: String? = nil, completedDateTime: String? = nil, voidedDate: String? = nil,
                lastModified: String? = nil, packages: [Package]? = nil, destinations: [Destination]? = nil) {
        self.id = id
        self.retailerDeliveryNumber = retailerDeliveryNumber
        self.dateTime = dateTime
        self.driverEmployeeId = driverEmployeeId
        self.vehicleLicensePlateNumber = vehicleLicensePlateNumber
        self.actualDepartureDateTime = actualDepartureDateTime
        self.restockDateTime = restockDateTime
        self.leg = leg
        self.retailerDeliveryState = retailerDeliveryState
        self.completedDateTime = completedDateTime
        self.voidedDate = voidedDate
        self.lastModified = lastModified
        self.packages = packages
        self.destinations = destinations
    }

    public var hasDeparted: Bool {
        actualDepartureDateTime != nil || ["intransit", "departed"].contains(retailerDeliveryState?.lowercased() ?? "")
    }

    public var hasEnded: Bool {
        completedDateTime != nil || ["completed", "ended"].contains(retailerDeliveryState?.lowercased() ?? "")
    }

    public var isVoided: Bool { voidedDate != nil || retailerDeliveryState?.lowercased() == "voided" }

    enum CodingKeys: String, CodingKey {
        case id
        case retailerDeliveryNumber = "retailerdeliverynumber"
        case dateTime = "datetime"
        case driverEmployeeId = "driveremployeeid"
        case vehicleLicensePlateNumber = "vehiclelicenseplatenumber"
        case actualDepartureDateTime = "actualdeparturedatetime"
        case restockDateTime = "restockdatetime"
        case leg
        case retailerDeliveryState = "retailerdeliverystate"
        case completedDateTime = "completeddatetime"
        case voidedDate = "voideddate"
        case lastModified = "lastmodified"
        case packages
        case destinations
    }
}

/// A reason a delivered package may come back (`GET /sales/v2/deliveries/returnreasons`).
public struct MetrcDeliveryReturnReason: Sendable, Equatable, Decodable {
    public var name: String
    public var requiresNote: Bool

    public init(name: String, requiresNote: Bool) {
        self.name = name
        self.requiresNote = requiresNote
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        requiresNote = try container.decodeIfPresent(Bool.self, forKey: .requiresNote) ?? false
    }

    enum CodingKeys: String, CodingKey {
        case name, requiresNote = "requiresnote"
    }
}
