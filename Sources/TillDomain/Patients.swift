import Foundation

/// Patient and caregiver license numbers as Metrc matches them: whatever their case.
public enum LicenseNumber {
    /// The one spelling Till keys caches, locks and lookups by (the SQL side uses `upper()` alike).
    public static func key(_ number: String) -> String { number.uppercased() }

    public static func same(_ a: String, _ b: String) -> Bool { key(a) == key(b) }
}

/// The purchase-limit buckets Metrc tracks per patient.
public enum AllowanceBucket: String, Sendable, Codable, CaseIterable {
    case flower, concentrate, infused, thc
}

/// One bucket of a patient's allowance, in ounces, as Metrc reported it.
public struct Allowance: Sendable, Hashable, Codable {
    public var allowedOunces: Decimal?
    public var purchasedOunces: Decimal?
    public var availableOunces: Decimal?

    public init(allowedOunces: Decimal?, purchasedOunces: Decimal?, availableOunces: Decimal?) {
        self.allowedOunces = allowedOunces
        self.purchasedOunces = purchasedOunces
        self.availableOunces = availableOunces
    }
}

/// A medical patient's registration and allowance as Metrc last reported it.
public struct PatientStatus: Sendable, Hashable, Codable {
    public var licenseNumber: String
    public var active: Bool
    public var registrationNumber: String?
    public var registrationStartDate: String?
    public var expirationDate: String?
    public var identificationMethod: String?
    public var purchaseAmountDays: Decimal?
    /// Keyed by `AllowanceBucket.rawValue`.
    public var allowances: [String: Allowance]

    public init(licenseNumber: String, active: Bool, registrationNumber: String?, registrationStartDate: String?,
                expirationDate: String?, identificationMethod: String?, purchaseAmountDays: Decimal?,
                allowances: [String: Allowance]) {
        self.licenseNumber = licenseNumber
        self.active = active
        self.registrationNumber = registrationNumber
        self.registrationStartDate = registrationStartDate
        self.expirationDate = expirationDate
        self.identificationMethod = identificationMethod
        self.purchaseAmountDays = purchaseAmountDays
        self.allowances = allowances
    }

    /// Expired when the expiration date (facility-local, YYYY-MM-DD…) is before `localDate`.
    public func isExpired(on localDate: String) -> Bool {
        guard let expirationDate, expirationDate.count >= 10 else { return false }
        return String(expirationDate.prefix(10)) < localDate
    }

    public func allowance(_ bucket: AllowanceBucket) -> Allowance? { allowances[bucket.rawValue] }
}

/// A caregiver's registration and the patients they may buy for.
public struct CaregiverStatus: Sendable, Hashable, Codable {
    public var licenseNumber: String
    public var active: Bool
    public var patientLicenseNumbers: [String]

    public init(licenseNumber: String, active: Bool, patientLicenseNumbers: [String]) {
        self.licenseNumber = licenseNumber
        self.active = active
        self.patientLicenseNumbers = patientLicenseNumbers
    }
}

/// Where a status answer came from.
public enum StatusSource: String, Sendable, Codable {
    /// Fetched from Metrc for this request.
    case metrc
    /// Fetched from Metrc less than a minute ago (Metrc itself caches that long).
    case cache
    /// Metrc could not be reached: the last known status, older than a minute.
    case stale
}

/// A status with its provenance and age, so a stale answer is never passed off as fresh.
public struct LookedUp<Value: Sendable>: Sendable {
    public var value: Value
    public var source: StatusSource
    public var fetchedAt: Date

    public init(value: Value, source: StatusSource, fetchedAt: Date) {
        self.value = value
        self.source = source
        self.fetchedAt = fetchedAt
    }
}

/// Which allowance bucket an item category counts against; configurable per state.
public struct CategoryBuckets: Sendable, Hashable {
    public var mapping: [String: AllowanceBucket]

    public init(mapping: [String: AllowanceBucket]) {
        self.mapping = Dictionary(mapping.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    /// Metrc's usual categories.
    public static let standard = CategoryBuckets(mapping: [
        "Buds": .flower, "Shake/Trim": .flower, "Pre-Roll Flower": .flower,
        "Concentrate": .concentrate, "Vape Cartridge": .concentrate,
        "Edible": .infused, "Tincture": .infused, "Topical": .infused, "Capsule": .infused,
    ])

    /// Parses `Category=bucket;Category=bucket` (e.g. from `TILL_ALLOWANCE_CATEGORIES`), layered over `standard`.
    public static func parse(_ text: String) -> CategoryBuckets? {
        var mapping = standard.mapping
        for pair in text.split(separator: ";") where !pair.trimmingCharacters(in: .whitespaces).isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let bucket = AllowanceBucket(rawValue: parts[1].lowercased()) else { return nil }
            mapping[parts[0].lowercased()] = bucket
        }
        return CategoryBuckets(mapping: mapping)
    }

    public func bucket(for category: String?) -> AllowanceBucket? {
        category.flatMap { mapping[$0.lowercased()] }
    }
}

/// Counts sales against a patient's allowance exactly.
///
/// Everything is compared in grams: ounces × 28.349523125 is exact, while grams ÷ 28.349523125 never
/// is. Ounces appear only in messages, rounded for people.
public enum AllowanceLedger {
    public static let gramsPerOunce = Decimal(string: "28.349523125")!

    /// Grams that `quantity` of `unit` taken from `package` counts for; nil when the item's category is in no bucket.
    public static func grams(of quantity: Decimal, unit: String, from package: PackageSnapshot,
                             buckets: CategoryBuckets) throws(TillError) -> (AllowanceBucket, Decimal)? {
        guard let bucket = buckets.bucket(for: package.category) else { return nil }
        guard let saleUnit = UnitOfMeasure.named(unit) else {
            throw .invalid("unknown_unit", "Unit '\(unit)' is not a Metrc unit of measure.")
        }
        if saleUnit.kind == .weight {
            return (bucket, quantity * saleUnit.factorToBase)
        }
        guard let weight = package.unitWeight, let weightUnit = package.unitWeightUnit.flatMap(UnitOfMeasure.named),
              weightUnit.kind == .weight else {
            throw .unprocessable("unknown_unit_weight",
                                 "Package \(package.label) (\(package.itemName)) has no unit weight in Metrc, so it cannot be counted against a patient's \(bucket.rawValue) allowance.",
                                 details: ["packageLabel": package.label, "bucket": bucket.rawValue])
        }
        return (bucket, quantity * weight * weightUnit.factorToBase)
    }

    /// Grams per bucket for a set of lines.
    public static func consumption(_ lines: [(quantity: Decimal, unit: String, package: PackageSnapshot)],
                                   buckets: CategoryBuckets) throws(TillError) -> [AllowanceBucket: Decimal] {
        var total: [AllowanceBucket: Decimal] = [:]
        for line in lines {
            if let (bucket, grams) = try grams(of: line.quantity, unit: line.unit, from: line.package, buckets: buckets) {
                total[bucket, default: 0] += grams
            }
        }
        return total
    }

    /// Refuses a sale that would take the patient past `Available − recent purchases` in any bucket.
    /// A bucket for which Metrc gives no figure is not limited by Till.
    public static func check(sale: [AllowanceBucket: Decimal], recent: [AllowanceBucket: Decimal],
                             status: PatientStatus) throws(TillError) {
        for bucket in AllowanceBucket.allCases {
            guard let wanted = sale[bucket], wanted > 0, let allowance = status.allowance(bucket),
                  let available = allowance.availableOunces else { continue }
            let remaining = available * gramsPerOunce - recent[bucket, default: 0]
            guard wanted > remaining else { continue }
            let left = max(0, remaining)
            throw .unprocessable(
                "allowance_exceeded",
                "Patient \(status.licenseNumber) has \(ounces(left)) oz of \(bucket.rawValue) allowance left"
                    + (allowance.allowedOunces.map { " (of \($0) oz)" } ?? "") + "; this sale needs \(ounces(wanted)) oz.",
                details: ["bucket": bucket.rawValue,
                          "availableOuncesInMetrc": "\(available)",
                          "recentPurchasesOunces": "\(ounces(recent[bucket, default: 0]))",
                          "remainingOunces": "\(ounces(left))",
                          "requestedOunces": "\(ounces(wanted))"]
                    .merging(allowance.allowedOunces.map { ["allowedOunces": "\($0)"] } ?? [:]) { a, _ in a })
        }
    }

    /// Grams as ounces rounded to 4 places, for people (never used in a comparison).
    public static func ounces(_ grams: Decimal) -> Decimal {
        var value = grams / gramsPerOunce
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, 4, .plain)
        return rounded
    }
}
