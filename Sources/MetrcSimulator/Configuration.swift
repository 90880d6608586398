import Foundation

/// Seed data and behaviour switches of a simulated Metrc.
public struct SimulatorConfiguration: Sendable {
    /// HTTP Basic user name every Metrc call must carry (the integrator's key).
    public var vendorKey = "sim-vendor-key"
    /// HTTP Basic password every Metrc call must carry (the user's key).
    public var userKey = "sim-user-key"
    /// Objects allowed in one write body; more → 413 `{"Message":...}`.
    public var maxObjectsPerRequest = 10
    /// Largest `pageSize` accepted; larger → 400.
    public var maxPageSize = 20
    /// GETs allowed per facility (per `licenseNumber`, or per key for calls without one) in any sliding
    /// second; over → 429 with `Retry-After: 1`. Measured on the real clock, not on `now`.
    public var getRequestsPerSecond: Int? = 50
    /// Writes (POST, PUT, DELETE) allowed per facility in any sliding second; off by default.
    public var writeRequestsPerSecond: Int? = nil
    /// What `GET /sales/v2/receipts/external/{n}` answers for an unknown number (real Metrc has been seen answering 401).
    public var externalLookupMissStatus = 404
    /// Decimal places a package quantity keeps: a sale whose quantity, converted to the package's unit, needs
    /// more is refused rather than rounded (1 Ounces from a Grams package is 28.349523125 g: refused at 6).
    public var quantityDecimalPlaces: Int16 = 6
    /// Customer types offered by `GET /sales/v2/customertypes` and accepted in `SalesCustomerType`.
    public var customerTypes = ["Consumer", "Patient", "Caregiver", "ExternalPatient"]
    /// `GET /unitsofmeasure/v2/active` and `GET /sales/v2/customertypes` answer the paged envelope
    /// (`{"Data":[...],"Total":...}`), as the v2 specification documents. Set false to answer a bare array
    /// instead, as v1 did, to check that a client copes with both.
    public var referenceListsInEnvelope = true
    /// What `GET /patients/v2/statuses/{n}` answers for a patient the facility's registry does not know: 200
    /// with `[]` (the specification's empty array), or any other status (e.g. 404) with `{"Message":...}`.
    public var unknownPatientStatus = 200
    /// Refuse a Patient or Caregiver sale that would take the patient past an allowance, counting the
    /// facility's receipts as they are now (not the cached status a client may have read).
    public var enforcePatientLimits = true
    /// Seconds a patient or caregiver status is served unchanged once computed, on the simulation's clock
    /// (Metrc: "cached for up to one minute"); 0 computes every answer afresh.
    public var statusCacheSeconds = 60
    /// Which allowance a package's `ProductCategoryName` counts against; a category not listed counts against none.
    public var patientAllowanceCategories: [String: SimAllowance] = SimAllowance.defaultCategories
    /// How many grams one millilitre counts as against an allowance, for items measured by volume (a bulk
    /// tincture, or a count-based item with only `unitVolume`); nil = such items count nothing.
    public var allowanceGramsPerMilliliter: Decimal? = nil
    /// What `GET /packages/v2/adjust/reasons` lists and `POST /packages/v2/adjust` accepts.
    public var adjustReasons: [SimAdjustReason] = SimAdjustReason.standard
    /// What `GET /sales/v2/deliveries/returnreasons` lists and a delivery's completion accepts.
    public var deliveryReturnReasons: [SimDeliveryReturnReason] = SimDeliveryReturnReason.standard
    /// `GET /sales/v2/deliveries/retailer/active|inactive` refuse (400) a call without `lastModifiedStart/End`, as
    /// the specification marks them required; false (the default) lists everything, as the sales lists do.
    public var retailerDeliveryListsRequireWindow = false
    /// The facilities the user key can reach; any other `licenseNumber` is answered 401.
    public var facilities: [SimFacility] = [.demo]

    public init() {}
}

/// One licensed facility the simulated user can access, with its inventory.
public struct SimFacility: Sendable {
    public var licenseNumber: String
    public var name: String
    /// The facility's zone: `SalesDateTime` is wall-clock time here, and `salesDateStart/End` filters use it.
    public var timeZoneIdentifier: String
    /// Metrc's `License.LicenseType`.
    public var licenseType: String
    public var canSellToConsumers: Bool
    public var canSellToPatients: Bool
    public var canSellToCaregivers: Bool
    public var canSellToExternalPatients: Bool
    public var canReportPatientCheckIns: Bool
    public var packages: [SimPackage]
    /// The patient registry this facility sees (`GET /patients/v2/statuses/{n}`, Patient and Caregiver sales).
    public var patients: [SimPatient]
    public var caregivers: [SimCaregiver]
    /// What `GET /patient-checkins/v2/locations` lists and `CheckInLocationId` may name.
    public var checkInLocations: [SimCheckInLocation]
    /// The facility's sales- and retailer-delivery flags (`FacilityType`); `MetrcSimulation.setDeliveryFlags` changes them.
    public var deliveryFlags: SimDeliveryFlags

    public init(licenseNumber: String, name: String, timeZoneIdentifier: String = "America/Denver",
                licenseType: String = "Retail Marijuana Store",
                canSellToConsumers: Bool = true, canSellToPatients: Bool = true, canSellToCaregivers: Bool = true,
                canSellToExternalPatients: Bool = true, canReportPatientCheckIns: Bool = true,
                packages: [SimPackage] = [], patients: [SimPatient] = [], caregivers: [SimCaregiver] = [],
                checkInLocations: [SimCheckInLocation] = [], deliveryFlags: SimDeliveryFlags = .demo) {
        self.licenseNumber = licenseNumber
        self.name = name
        self.timeZoneIdentifier = timeZoneIdentifier
        self.licenseType = licenseType
        self.canSellToConsumers = canSellToConsumers
        self.canSellToPatients = canSellToPatients
        self.canSellToCaregivers = canSellToCaregivers
        self.canSellToExternalPatients = canSellToExternalPatients
        self.canReportPatientCheckIns = canReportPatientCheckIns
        self.packages = packages
        self.patients = patients
        self.caregivers = caregivers
        self.checkInLocations = checkInLocations
        self.deliveryFlags = deliveryFlags
    }
}

/// One package (a tagged lot of one item) in a facility's inventory.
public struct SimPackage: Sendable, Equatable {
    public var id: Int64
    /// The 24-character Metrc tag, e.g. "1A4FF0100000022000000101".
    public var label: String
    public var itemName: String
    /// Metrc's `Item.ProductCategoryName`, e.g. "Buds", "Edible".
    public var category: String
    /// Metrc's `Item.ProductCategoryType` (what patient allowances count against): Buds, ShakeTrim,
    /// Concentrate, InfusedEdible, InfusedNonEdible…; derived from `category` when not given.
    public var categoryType: String
    /// WeightBased, CountBased or VolumeBased.
    public var quantityType: String
    public var quantity: Decimal
    /// A unit name as `GET /unitsofmeasure/v2/active` spells it: Grams, Each, Milliliters…
    public var unitOfMeasure: String
    public var isOnHold: Bool
    /// TestPassed, NotRequired, TestingInProgress (all sellable) or TestFailed (not sellable).
    public var labTestingState: String
    /// A finished package is no longer active and cannot be sold from; returns unfinish it.
    public var isFinished: Bool
    public var strainName: String?
    /// For count-based items: the weight of one unit (a 1 g pre-roll), as Metrc's `Item.UnitWeight`.
    public var unitWeight: Decimal?
    public var unitWeightUnitOfMeasure: String?
    /// For count-based items: the THC in one unit (a 100 mg bar), as Metrc's `Item.UnitThcContent`.
    public var unitThcContent: Decimal?
    public var unitThcContentUnitOfMeasure: String?
    /// For count-based items: the volume of one unit (a 30 mL tincture), as Metrc's `Item.UnitVolume`.
    public var unitVolume: Decimal?
    public var unitVolumeUnitOfMeasure: String?
    /// nil until the package is added to a simulation, which stamps it with its clock.
    public var lastModified: Date?

    public init(id: Int64, label: String, itemName: String, category: String, categoryType: String? = nil,
                quantityType: String, quantity: Decimal, unitOfMeasure: String,
                isOnHold: Bool = false, labTestingState: String = "TestPassed", isFinished: Bool = false,
                strainName: String? = nil,
                unitWeight: Decimal? = nil, unitWeightUnitOfMeasure: String? = nil,
                unitThcContent: Decimal? = nil, unitThcContentUnitOfMeasure: String? = nil,
                unitVolume: Decimal? = nil, unitVolumeUnitOfMeasure: String? = nil,
                lastModified: Date? = nil) {
        self.id = id
        self.label = label
        self.itemName = itemName
        self.category = category
        self.categoryType = categoryType ?? SimPackage.categoryType(of: category)
        self.quantityType = quantityType
        self.quantity = quantity
        self.unitOfMeasure = unitOfMeasure
        self.isOnHold = isOnHold
        self.labTestingState = labTestingState
        self.isFinished = isFinished
        self.strainName = strainName
        self.unitWeight = unitWeight
        self.unitWeightUnitOfMeasure = unitWeightUnitOfMeasure
        self.unitThcContent = unitThcContent
        self.unitThcContentUnitOfMeasure = unitThcContentUnitOfMeasure
        self.unitVolume = unitVolume
        self.unitVolumeUnitOfMeasure = unitVolumeUnitOfMeasure
        self.lastModified = lastModified
    }

    /// The usual Metrc category type for the category names the demo uses.
    public static func categoryType(of category: String) -> String {
        switch category {
        case "Buds", "Flower", "Pre-Roll Flower": "Buds"
        case "Shake/Trim": "ShakeTrim"
        case "Concentrate", "Vape Cartridge": "Concentrate"
        case "Edible", "Tincture", "Capsule": "InfusedEdible"
        case "Topical": "InfusedNonEdible"
        default: "InfusedEdible"
        }
    }
}

extension SimFacility {
    /// The demo dispensary: license "LIC-DEMO-0001", "Till Demo Dispensary", America/Denver, sells to every
    /// customer type, with 25 packages so that paging at 20 gives pages of 20 and 5, five patients, two
    /// caregivers and two check-in locations.
    ///
    /// Labels are "1A4FF0100000022000000" + the three digits below; package Id is 5000000 + those digits
    /// (label …101 has Id 5000101). Everything is TestPassed and not on hold unless said otherwise.
    ///
    /// | Label suffix | Item | Category | Quantity | Meaning for tests |
    /// |---|---|---|---|---|
    /// | 101 | Blue Dream Flower | Buds | 448.0 Grams | the everyday flower package (sell 3.5 g) |
    /// | 102 | OG Kush Flower | Buds | 448.0 Grams | |
    /// | 103 | Sour Diesel Flower | Buds | 224.0 Grams | |
    /// | 104 | Gelato Flower | Buds | 28.0 Grams | small: oversell it |
    /// | 105 | House Shake | Shake/Trim | 453.6 Grams | |
    /// | 106 | Blue Dream Pre-Roll 1g | Pre-Roll Flower | 100 Each | UnitWeight 1 Grams |
    /// | 107 | OG Kush Pre-Roll 0.5g | Pre-Roll Flower | 50 Each | UnitWeight 0.5 Grams |
    /// | 108 | Gelato Live Resin | Concentrate | 56.0 Grams | |
    /// | 109 | Sour Diesel Cartridge 0.5g | Vape Cartridge | 100 Each | UnitWeight 0.5 Grams |
    /// | 110 | Watermelon Gummies 100mg | Edible | exactly 10 Each | concurrency tests: 10 and no more; UnitWeight 0.1 Grams |
    /// | 111 | Dark Chocolate Bar 100mg | Edible | 50 Each | UnitThcContent 100 Milligrams, UnitWeight 0.1 Grams |
    /// | 112 | THC Tincture 30ml 300mg | Tincture | 24 Each | UnitVolume 30 Milliliters |
    /// | 113 | Bulk Tincture Base | Tincture | 500.0 Milliliters | volume units: 0.1 Liters sells exactly; 1 Fluid Ounces (29.5735295625 mL) is refused at 6 places |
    /// | 114 | CBD:THC Balm 2oz | Topical | 30 Each | |
    /// | 115 | THC Capsules 10mg x30 | Capsule | 40 Each | UnitWeight 0.3 Grams |
    /// | 116 | Granddaddy Purple Flower | Buds | 113.4 Grams | |
    /// | 117 | Wedding Cake Flower | Buds | 56.0 Grams | |
    /// | 118 | Gelato Shatter 1g | Concentrate | 60 Each | UnitWeight 1 Grams |
    /// | 119 | Blue Dream Cartridge 1g | Vape Cartridge | 75 Each | UnitWeight 1 Grams |
    /// | 120 | Sour Gummies 100mg | Edible | 40 Each | **on hold**: every sale refused; UnitWeight 0.1 Grams |
    /// | 121 | Mystery Kush Flower | Buds | 28.0 Grams | **LabTestingState TestFailed**: every sale refused |
    /// | 122 | Gelato Pre-Roll 1g | Pre-Roll Flower | 200 Each | UnitWeight 1 Grams |
    /// | 123 | Peppermint Mints 100mg | Edible | 30 Each | LabTestingState NotRequired (sellable); UnitWeight 0.1 Grams |
    /// | 124 | Jack Herer Shake | Shake/Trim | 900.0 Grams | |
    /// | 125 | Relief Lotion 4 fl oz | Topical | 20 Each | LabTestingState TestingInProgress (sellable) |
    ///
    /// Patient allowances count a line's weight in grams (÷ 28.349523125 per ounce): a weight unit as sold,
    /// or for Each the item's UnitWeight (the 0.1 g of a 100 mg edible is what its allowance counts). Items
    /// with no UnitWeight (the tinctures, balm and lotion) count nothing unless `allowanceGramsPerMilliliter`
    /// is set. Categories map to allowances by `SimAllowance.defaultCategories` (flower: Buds, Shake/Trim,
    /// Pre-Roll Flower; concentrate: Concentrate, Vape Cartridge; infused: Edible, Tincture, Topical, Capsule).
    ///
    /// Patients (all registered 2026-01-01 to 2027-12-31, PurchaseAmountDays 30, allowances in ounces
    /// flower 2.5, concentrate 0.5, infused 1.0, THC 1.0, unless said otherwise):
    ///
    /// | Patient | Registration | Meaning for tests |
    /// |---|---|---|
    /// | PT-ACTIVE-0001 | REG-0001 | the everyday patient; IdentificationMethod "Drivers License" |
    /// | PT-INACTIVE-0002 | REG-0002 | **Active false**: every Patient or Caregiver sale refused |
    /// | PT-EXPIRED-0003 | REG-0003 | Active true but registered 2025-02-01 to **2026-01-31**: sales dated later refused |
    /// | PT-LOW-0004 | REG-0004 | flower **0.25 oz** (7.08738078125 g), concentrate, infused and THC 0.1 oz: allowance tests |
    /// | PT-LINKED-0005 | REG-0005 | linked to caregiver CG-ACTIVE-0001 (and not to CG-INACTIVE-0002) |
    ///
    /// | Caregiver | Active | Patients |
    /// |---|---|---|
    /// | CG-ACTIVE-0001 | yes | PT-ACTIVE-0001, PT-LINKED-0005 |
    /// | CG-INACTIVE-0002 | **no** | PT-ACTIVE-0001 |
    ///
    /// Check-in locations: 1 "Front desk", 2 "Pharmacy window".
    ///
    /// Deliveries: `SimDeliveryFlags.demo` (to consumers and patients; recipient name, price and a patient's number
    /// required; every address part and the planned route allowed; retailer delivery with partial packages).
    public static let demo = SimFacility(
        licenseNumber: "LIC-DEMO-0001",
        name: "Till Demo Dispensary",
        timeZoneIdentifier: "America/Denver",
        packages: SimFacility.demoPackages,
        patients: SimFacility.demoPatients,
        caregivers: SimFacility.demoCaregivers,
        checkInLocations: SimFacility.demoCheckInLocations)

    /// The label of the demo package with this three-digit suffix: `demoLabel(110)` is "1A4FF0100000022000000110".
    public static func demoLabel(_ suffix: Int) -> String {
        "1A4FF0100000022000000" + String(suffix)
    }

    static let demoPackages: [SimPackage] = {
        func package(_ suffix: Int, _ item: String, _ category: String, _ quantity: String, _ unit: String,
                     onHold: Bool = false, lab: String = "TestPassed", strain: String? = nil,
                     weight: String? = nil, thcMg: String? = nil, volumeMl: String? = nil) -> SimPackage {
            let type = SimUnits.unit(named: unit)!.quantityType
            return SimPackage(
                id: 5_000_000 + Int64(suffix), label: demoLabel(suffix), itemName: item, category: category,
                quantityType: type, quantity: Decimal(string: quantity)!, unitOfMeasure: unit,
                isOnHold: onHold, labTestingState: lab, strainName: strain,
                unitWeight: weight.flatMap { Decimal(string: $0) }, unitWeightUnitOfMeasure: weight == nil ? nil : "Grams",
                unitThcContent: thcMg.flatMap { Decimal(string: $0) },
                unitThcContentUnitOfMeasure: thcMg == nil ? nil : "Milligrams",
                unitVolume: volumeMl.flatMap { Decimal(string: $0) },
                unitVolumeUnitOfMeasure: volumeMl == nil ? nil : "Milliliters")
        }
        return [
            package(101, "Blue Dream Flower", "Buds", "448.0", "Grams", strain: "Blue Dream"),
            package(102, "OG Kush Flower", "Buds", "448.0", "Grams", strain: "OG Kush"),
            package(103, "Sour Diesel Flower", "Buds", "224.0", "Grams", strain: "Sour Diesel"),
            package(104, "Gelato Flower", "Buds", "28.0", "Grams", strain: "Gelato"),
            package(105, "House Shake", "Shake/Trim", "453.6", "Grams"),
            package(106, "Blue Dream Pre-Roll 1g", "Pre-Roll Flower", "100", "Each", strain: "Blue Dream", weight: "1"),
            package(107, "OG Kush Pre-Roll 0.5g", "Pre-Roll Flower", "50", "Each", strain: "OG Kush", weight: "0.5"),
            package(108, "Gelato Live Resin", "Concentrate", "56.0", "Grams", strain: "Gelato"),
            package(109, "Sour Diesel Cartridge 0.5g", "Vape Cartridge", "100", "Each", strain: "Sour Diesel", weight: "0.5"),
            package(110, "Watermelon Gummies 100mg", "Edible", "10", "Each", weight: "0.1", thcMg: "100"),
            package(111, "Dark Chocolate Bar 100mg", "Edible", "50", "Each", weight: "0.1", thcMg: "100"),
            package(112, "THC Tincture 30ml 300mg", "Tincture", "24", "Each", thcMg: "300", volumeMl: "30"),
            package(113, "Bulk Tincture Base", "Tincture", "500.0", "Milliliters"),
            package(114, "CBD:THC Balm 2oz", "Topical", "30", "Each", thcMg: "100"),
            package(115, "THC Capsules 10mg x30", "Capsule", "40", "Each", weight: "0.3", thcMg: "300"),
            package(116, "Granddaddy Purple Flower", "Buds", "113.4", "Grams", strain: "Granddaddy Purple"),
            package(117, "Wedding Cake Flower", "Buds", "56.0", "Grams", strain: "Wedding Cake"),
            package(118, "Gelato Shatter 1g", "Concentrate", "60", "Each", strain: "Gelato", weight: "1"),
            package(119, "Blue Dream Cartridge 1g", "Vape Cartridge", "75", "Each", strain: "Blue Dream", weight: "1"),
            package(120, "Sour Gummies 100mg", "Edible", "40", "Each", onHold: true, weight: "0.1", thcMg: "100"),
            package(121, "Mystery Kush Flower", "Buds", "28.0", "Grams", lab: "TestFailed", strain: "Mystery Kush"),
            package(122, "Gelato Pre-Roll 1g", "Pre-Roll Flower", "200", "Each", strain: "Gelato", weight: "1"),
            package(123, "Peppermint Mints 100mg", "Edible", "30", "Each", lab: "NotRequired", weight: "0.1", thcMg: "100"),
            package(124, "Jack Herer Shake", "Shake/Trim", "900.0", "Grams", strain: "Jack Herer"),
            package(125, "Relief Lotion 4 fl oz", "Topical", "20", "Each", lab: "TestingInProgress", thcMg: "200"),
        ]
    }()
}
