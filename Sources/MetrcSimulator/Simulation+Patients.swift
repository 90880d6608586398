import Foundation

/// A cached patient or caregiver status: whose, as seen by which facility.
struct StatusKey: Hashable {
    enum Subject: Hashable {
        /// Upper-cased patient license.
        case patient(String)
        /// Upper-cased caregiver license.
        case caregiver(String)
    }

    var facility: String
    var subject: Subject
}

struct CachedStatus {
    var computedAt: Date
    var response: SimHTTPResponse
}

extension MetrcSimulation {
    // MARK: GET /patients/v2/statuses/{patientLicenseNumber}

    func patientStatus(_ patientLicense: String, _ scoped: ScopedRequest) -> SimHTTPResponse {
        let license = scoped.license!
        return cachedStatus(StatusKey(facility: license, subject: .patient(patientLicense.uppercased()))) {
            let state = facilities[license]!
            guard let patient = state.patient(patientLicense) else {
                let status = configuration.unknownPatientStatus
                return status == 200 ? .json(200, .array([]))
                    : .message(status, "No patient with license number \(patientLicense) was found.")
            }
            return .json(200, .array([patientStatusJSON(patient, state: state)]))
        }
    }

    // MARK: GET /caregivers/v2/status/{caregiverLicenseNumber}

    func caregiverStatus(_ caregiverLicense: String, _ scoped: ScopedRequest) -> SimHTTPResponse {
        let license = scoped.license!
        return cachedStatus(StatusKey(facility: license, subject: .caregiver(caregiverLicense.uppercased()))) {
            guard let caregiver = facilities[license]!.caregiver(caregiverLicense) else {
                return .message(404, "No caregiver with license number \(caregiverLicense) was found.")
            }
            return .json(200, .object([
                ("CaregiverLicenseNumber", .string(caregiver.licenseNumber)),
                ("Active", .bool(caregiver.active)),
                ("Patients", .array(caregiver.patientLicenseNumbers.map(JSON.string))),
            ]))
        }
    }

    /// The answer computed for `key` within the last `statusCacheSeconds` of the simulation's clock, else a
    /// fresh one (kept for that long). Errors are cached too: Metrc caches whatever it looked up.
    private func cachedStatus(_ key: StatusKey, compute: () -> SimHTTPResponse) -> SimHTTPResponse {
        let now = now()
        let lifetime = TimeInterval(configuration.statusCacheSeconds)
        if let hit = statusCache[key], hit.computedAt <= now, now < hit.computedAt.addingTimeInterval(lifetime) {
            return hit.response
        }
        let response = compute()
        statusCache = statusCache.filter { now < $0.value.computedAt.addingTimeInterval(lifetime) }
        if lifetime > 0 { statusCache[key] = CachedStatus(computedAt: now, response: response) }
        return response
    }

    /// One registration as Metrc writes it, with purchases counted now (the caller decides about caching).
    func patientStatusJSON(_ patient: SimPatient, state: FacilityState) -> JSON {
        let purchased = purchasedGrams(patient, state: state)
        var members: [(String, JSON)] = [
            ("PatientLicenseNumber", .string(patient.licenseNumber)),
            ("RegistrationNumber", .string(patient.registrationNumber)),
            ("Active", .bool(patient.active)),
            ("PatientLicenseExpirationDate", .string(patient.expirationDate)),
            ("PatientRegistrationStartDate", .string(patient.registrationStartDate)),
            ("IdentificationMethod", JSON(patient.identificationMethod)),
            ("PurchaseAmountDays", JSON(patient.purchaseAmountDays)),
        ]
        for allowance in SimAllowance.allCases {
            let allowed = patient.ouncesAllowed(allowance)
            let bought = Self.ounces(grams: purchased[allowance] ?? 0)
            // From the rounded figure, so that Allowed = Purchased + Available holds on the wire (until it floors at 0).
            members += [
                ("\(allowance.rawValue)OuncesAllowed", .number(allowed)),
                ("\(allowance.rawValue)OuncesPurchased", .number(bought)),
                ("\(allowance.rawValue)OuncesAvailable", .number(max(0, allowed - bought))),
            ]
        }
        return .object(members)
    }

    // MARK: Allowances

    /// Grams per allowance that a patient bought from this facility within their `purchaseAmountDays`
    /// before now: non-archived receipts carrying their license, whatever the customer type. A receipt dated
    /// after now counts too (a register's clock may run ahead).
    func purchasedGrams(_ patient: SimPatient, state: FacilityState, excluding: Set<Int64> = []) -> [SimAllowance: Decimal] {
        let since = now().addingTimeInterval(-TimeInterval(patient.purchaseAmountDays) * 86_400)
        let wanted = patient.licenseNumber.uppercased()
        var grams: [SimAllowance: Decimal] = [:]
        for receipt in receiptList where receipt.license == state.facility.licenseNumber && !receipt.archived
            && receipt.patientLicenseNumber?.uppercased() == wanted && !excluding.contains(receipt.id) {
            guard let sold = SimDateTime(receipt.salesDateTime)?.date(in: state.timeZone), sold > since else { continue }
            grams.merge(allowanceTotals(receipt.transactions, state: state), uniquingKeysWith: +)
        }
        return grams
    }

    /// Grams per allowance that these lines count against.
    func allowanceTotals(_ lines: [SimTransaction], state: FacilityState) -> [SimAllowance: Decimal] {
        var grams: [SimAllowance: Decimal] = [:]
        for line in lines {
            guard let package = state.package(label: line.packageLabel),
                  let (allowance, amount) = allowanceGrams(of: line, package: package) else { continue }
            grams[allowance, default: 0] += amount
        }
        return grams
    }

    /// Which allowance a line counts against and how many grams it counts, exactly; nil when it counts
    /// against none (a category not mapped, or an item whose weight is unknown).
    func allowanceGrams(of line: SimTransaction, package: SimPackage) -> (SimAllowance, Decimal)? {
        guard let allowance = configuration.patientAllowanceCategories[package.category],
              let unit = SimUnits.unit(named: line.unitOfMeasure) else { return nil }
        let perMilliliter = configuration.allowanceGramsPerMilliliter
        switch unit.quantityType {
        case "WeightBased":
            return (allowance, line.quantity * unit.factor)
        case "VolumeBased":
            guard let perMilliliter else { return nil }
            return (allowance, line.quantity * unit.factor * perMilliliter)
        default:
            if let weight = package.unitWeight,
               let weightUnit = package.unitWeightUnitOfMeasure.flatMap(SimUnits.unit(named:)),
               weightUnit.quantityType == "WeightBased" {
                return (allowance, line.quantity * weight * weightUnit.factor)
            }
            if let volume = package.unitVolume, let perMilliliter,
               let volumeUnit = package.unitVolumeUnitOfMeasure.flatMap(SimUnits.unit(named:)),
               volumeUnit.quantityType == "VolumeBased" {
                return (allowance, line.quantity * volume * volumeUnit.factor * perMilliliter)
            }
            return nil
        }
    }

    /// Grams as ounces, rounded (half up) to the 6 places Metrc answers with. The division is computed with
    /// Decimal's 38 digits; 1 oz = 28.349523125 g has no finite inverse, so only the answer is rounded.
    static func ounces(grams: Decimal) -> Decimal {
        var exact = grams / SimUnits.unit(named: "Ounces")!.factor
        var rounded = Decimal()
        NSDecimalRound(&rounded, &exact, 6, .plain)
        return rounded
    }

    // MARK: Patient and caregiver sales

    /// Checks the registrations behind a Patient or Caregiver sale dated `saleDay` ("yyyy-MM-dd"), reporting
    /// each problem through `fail`; returns the patient when the sale may count against their allowances.
    func validateRegistration(customerType: String, patient patientLicense: String?, caregiver caregiverLicense: String?,
                              saleDay: String, state: FacilityState, fail: (String) -> Void) {
        if let patientLicense {
            if let found = state.patient(patientLicense) {
                if !found.active { fail("Patient \(patientLicense) is not active.") }
                if saleDay > found.expirationDate {
                    fail("Patient \(patientLicense)'s registration expired on \(found.expirationDate).")
                } else if saleDay < found.registrationStartDate {
                    fail("Patient \(patientLicense)'s registration does not start until \(found.registrationStartDate).")
                }
            } else {
                fail("Patient \(patientLicense) is not a registered patient.")
            }
        }
        guard customerType == "Caregiver", let caregiverLicense else { return }
        guard let caregiver = state.caregiver(caregiverLicense) else {
            fail("Caregiver \(caregiverLicense) is not a registered caregiver.")
            return
        }
        if !caregiver.active { fail("Caregiver \(caregiverLicense) is not active.") }
        if let patientLicense, !caregiver.isLinked(to: patientLicense) {
            fail("Caregiver \(caregiverLicense) is not linked to patient \(patientLicense).")
        }
    }

    /// Refuses a sale that would take `patient` past an allowance, counting their receipts as they are now
    /// plus what earlier receipts of this request take; on success the sale is added to `ledger`.
    func checkAllowances(_ patient: SimPatient, lines: [SimTransaction], state: FacilityState, ledger: inout Ledger,
                         fail: (String) -> Void) -> Bool {
        let sale = allowanceTotals(lines, state: state)
        let key = patient.licenseNumber.uppercased()
        let recorded = purchasedGrams(patient, state: state, excluding: ledger.replacedReceipts)
        var withinLimits = true
        for allowance in SimAllowance.allCases {
            guard let amount = sale[allowance], amount > 0 else { continue }
            let before = (recorded[allowance] ?? 0) + (ledger.patientGrams[key]?[allowance] ?? 0)
            let allowed = patient.ouncesAllowed(allowance)
            // Compared in grams: allowed × 28.349523125 is exact, where grams ÷ 28.349523125 is not.
            guard before + amount > allowed * SimUnits.unit(named: "Ounces")!.factor else { continue }
            fail("Patient \(patient.licenseNumber)'s \(allowance.label) allowance would be exceeded: \(allowed) oz allowed, "
                + "\(Self.ounces(grams: before)) oz purchased in the last \(patient.purchaseAmountDays) days, "
                + "this sale \(Self.ounces(grams: amount)) oz.")
            withinLimits = false
        }
        guard withinLimits else { return false }
        for (allowance, amount) in sale { ledger.patientGrams[key, default: [:]][allowance, default: 0] += amount }
        return true
    }
}
