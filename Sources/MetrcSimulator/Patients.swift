import Foundation

/// A registered medical patient as the simulated Metrc's registry holds it, with what they may buy.
public struct SimPatient: Sendable, Equatable {
    /// The patient's card number, e.g. "PT-ACTIVE-0001"; matched case-insensitively.
    public var licenseNumber: String
    public var active: Bool
    public var registrationNumber: String
    /// "yyyy-MM-dd": a Patient or Caregiver sale dated before it is refused.
    public var registrationStartDate: String
    /// "yyyy-MM-dd", the last day the registration is valid: a sale dated after it is refused. Metrc keeps
    /// answering `Active: true` for an expired card, so a client must read this date itself.
    public var expirationDate: String
    public var identificationMethod: String?
    /// The rolling window, in days, over which purchases count against the allowances.
    public var purchaseAmountDays: Int
    public var flowerOuncesAllowed: Decimal
    public var concentrateOuncesAllowed: Decimal
    public var infusedOuncesAllowed: Decimal
    public var thcOuncesAllowed: Decimal

    /// Allowances default to the demo's usual ones: flower 2.5 oz, concentrate 0.5, infused 1.0, THC 1.0.
    public init(licenseNumber: String, active: Bool = true, registrationNumber: String,
                registrationStartDate: String = "2026-01-01", expirationDate: String = "2027-12-31",
                identificationMethod: String? = nil, purchaseAmountDays: Int = 30,
                flowerOuncesAllowed: Decimal = Decimal(string: "2.5")!,
                concentrateOuncesAllowed: Decimal = Decimal(string: "0.5")!,
                infusedOuncesAllowed: Decimal = 1, thcOuncesAllowed: Decimal = 1) {
        self.licenseNumber = licenseNumber
        self.active = active
        self.registrationNumber = registrationNumber
        self.registrationStartDate = registrationStartDate
        self.expirationDate = expirationDate
        self.identificationMethod = identificationMethod
        self.purchaseAmountDays = purchaseAmountDays
        self.flowerOuncesAllowed = flowerOuncesAllowed
        self.concentrateOuncesAllowed = concentrateOuncesAllowed
        self.infusedOuncesAllowed = infusedOuncesAllowed
        self.thcOuncesAllowed = thcOuncesAllowed
    }

    public func ouncesAllowed(_ allowance: SimAllowance) -> Decimal {
        switch allowance {
        case .flower: flowerOuncesAllowed
        case .thc: thcOuncesAllowed
        case .concentrate: concentrateOuncesAllowed
        case .infused: infusedOuncesAllowed
        }
    }
}

/// A registered caregiver and the patients they may buy for.
public struct SimCaregiver: Sendable, Equatable {
    /// Matched case-insensitively.
    public var licenseNumber: String
    public var active: Bool
    public var patientLicenseNumbers: [String]

    public init(licenseNumber: String, active: Bool = true, patientLicenseNumbers: [String]) {
        self.licenseNumber = licenseNumber
        self.active = active
        self.patientLicenseNumbers = patientLicenseNumbers
    }

    func isLinked(to patient: String) -> Bool {
        patientLicenseNumbers.contains { $0.uppercased() == patient.uppercased() }
    }
}

/// A place in a facility where patients check in, as `GET /patient-checkins/v2/locations` lists it.
public struct SimCheckInLocation: Sendable, Equatable {
    public var id: Int64
    public var name: String

    public init(id: Int64, name: String) {
        self.id = id
        self.name = name
    }
}

/// A patient check-in as the simulated Metrc holds it.
public struct SimCheckIn: Sendable, Equatable {
    public var id: Int64
    /// The facility that recorded it.
    public var license: String
    public var patientLicenseNumber: String
    public var checkInLocationId: Int64
    /// "yyyy-MM-dd" (a posted date-time is kept as its date in the facility's zone).
    public var checkInDate: String
    /// "yyyy-MM-dd"; the patient's own registration dates when the client sent none.
    public var registrationStartDate: String?
    public var registrationExpiryDate: String?
    /// Archived by `DELETE /patient-checkins/v2/{id}`: no longer listed.
    public var archived: Bool
    public var recordedAt: Date
    public var lastModified: Date
}

/// The four allowances a patient status reports, in the order Metrc writes them.
public enum SimAllowance: String, Sendable, CaseIterable {
    case flower = "Flower"
    case thc = "Thc"
    case concentrate = "Concentrate"
    case infused = "Infused"

    /// The allowance's name in a message: "Flower", "THC", "Concentrate", "Infused".
    public var label: String { self == .thc ? "THC" : rawValue }

    /// The demo's mapping of `ProductCategoryName` to allowance. THC counts nothing by default: which
    /// products a state counts against it (and how) varies, so a test that needs it maps a category itself.
    public static let defaultCategories: [String: SimAllowance] = [
        "Buds": .flower, "Flower": .flower, "Shake/Trim": .flower, "Pre-Roll Flower": .flower,
        "Concentrate": .concentrate, "Vape Cartridge": .concentrate,
        "Edible": .infused, "Tincture": .infused, "Topical": .infused, "Capsule": .infused,
    ]
}

extension SimFacility {
    /// The demo's patient registry; see the table on `demo`.
    static let demoPatients: [SimPatient] = [
        SimPatient(licenseNumber: "PT-ACTIVE-0001", registrationNumber: "REG-0001",
                   identificationMethod: "Drivers License"),
        SimPatient(licenseNumber: "PT-INACTIVE-0002", active: false, registrationNumber: "REG-0002"),
        SimPatient(licenseNumber: "PT-EXPIRED-0003", registrationNumber: "REG-0003",
                   registrationStartDate: "2025-02-01", expirationDate: "2026-01-31"),
        SimPatient(licenseNumber: "PT-LOW-0004", registrationNumber: "REG-0004",
                   flowerOuncesAllowed: Decimal(string: "0.25")!, concentrateOuncesAllowed: Decimal(string: "0.1")!,
                   infusedOuncesAllowed: Decimal(string: "0.1")!, thcOuncesAllowed: Decimal(string: "0.1")!),
        SimPatient(licenseNumber: "PT-LINKED-0005", registrationNumber: "REG-0005"),
    ]

    static let demoCaregivers: [SimCaregiver] = [
        SimCaregiver(licenseNumber: "CG-ACTIVE-0001", patientLicenseNumbers: ["PT-ACTIVE-0001", "PT-LINKED-0005"]),
        SimCaregiver(licenseNumber: "CG-INACTIVE-0002", active: false, patientLicenseNumbers: ["PT-ACTIVE-0001"]),
    ]

    static let demoCheckInLocations: [SimCheckInLocation] = [
        SimCheckInLocation(id: 1, name: "Front desk"),
        SimCheckInLocation(id: 2, name: "Pharmacy window"),
    ]
}
