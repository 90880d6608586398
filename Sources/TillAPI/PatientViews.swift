import Foundation
import TillDomain
import TillStore

/// A patient's status as pharmacists and registers see it: where it came from and how old it is.
struct PatientStatusView: Encodable {
    struct AllowanceView: Encodable {
        var allowedOunces: Decimal?
        var purchasedOunces: Decimal?
        var availableOunces: Decimal?
    }
    var patientLicenseNumber: String
    var active: Bool
    /// The registration's expiration date is before today (facility-local).
    var expired: Bool
    var registrationNumber: String?
    var registrationStartDate: String?
    var expirationDate: String?
    var identificationMethod: String?
    var purchaseAmountDays: Decimal?
    var allowances: [String: AllowanceView]
    /// metrc (fetched now), cache (fetched less than a minute ago), stale (Metrc unreachable; last known).
    var source: String
    var asOf: Date
    var ageSeconds: Int

    init(_ found: LookedUp<PatientStatus>, now: Date, timeZone: TimeZone) {
        let status = found.value
        patientLicenseNumber = status.licenseNumber
        active = status.active
        expired = status.isExpired(on: FacilityDate.string(of: now, in: timeZone))
        registrationNumber = status.registrationNumber
        registrationStartDate = status.registrationStartDate
        expirationDate = status.expirationDate
        identificationMethod = status.identificationMethod
        purchaseAmountDays = status.purchaseAmountDays
        allowances = status.allowances.mapValues {
            AllowanceView(allowedOunces: $0.allowedOunces, purchasedOunces: $0.purchasedOunces, availableOunces: $0.availableOunces)
        }
        source = found.source.rawValue
        asOf = found.fetchedAt
        ageSeconds = max(0, Int(now.timeIntervalSince(found.fetchedAt)))
    }
}

struct CaregiverStatusView: Encodable {
    var caregiverLicenseNumber: String
    var active: Bool
    var patientLicenseNumbers: [String]
    var source: String
    var asOf: Date
    var ageSeconds: Int

    init(_ found: LookedUp<CaregiverStatus>, now: Date) {
        caregiverLicenseNumber = found.value.licenseNumber
        active = found.value.active
        patientLicenseNumbers = found.value.patientLicenseNumbers
        source = found.source.rawValue
        asOf = found.fetchedAt
        ageSeconds = max(0, Int(now.timeIntervalSince(found.fetchedAt)))
    }
}

/// A patient check-in and where it stands with Metrc.
struct CheckInView: Encodable {
    var id: Int64
    var clientCheckInId: String?
    var patientLicenseNumber: String
    var checkInLocationId: Int64
    var checkInDate: String
    var registrationStartDate: String?
    var registrationExpiryDate: String?
    var status: String
    var metrcCheckInId: Int64?
    var reportedAt: Date?
    var rejection: [String]?

    init(_ record: PatientCheckInRecord) {
        id = record.id
        clientCheckInId = record.clientCheckInId
        patientLicenseNumber = record.patientLicenseNumber
        checkInLocationId = record.checkInLocationId
        checkInDate = record.checkInDate
        registrationStartDate = record.registrationStartDate
        registrationExpiryDate = record.registrationExpiryDate
        status = record.status.rawValue
        metrcCheckInId = record.metrcCheckInId
        reportedAt = record.reportedAt
        rejection = record.rejection
    }
}
