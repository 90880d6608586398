import Foundation
import Logging
import MetrcKit
import Synchronization
import TillDomain
import TillStore

/// Whether a status older than Metrc's one-minute cache may still authorize a medical sale.
public enum StalePatientPolicy: String, Sendable {
    case refuse, allow
}

/// Settings of patient verification.
public struct PatientSettings: Sendable {
    public var cacheFor: Duration
    /// How long a lookup waits for Metrc before falling back to the last known status.
    public var patience: Duration
    public var stalePolicy: StalePatientPolicy
    public var buckets: CategoryBuckets

    public init(cacheFor: Duration = .seconds(60), patience: Duration = .seconds(2), stalePolicy: StalePatientPolicy = .refuse,
                buckets: CategoryBuckets = .standard) {
        self.cacheFor = cacheFor
        self.patience = patience
        self.stalePolicy = stalePolicy
        self.buckets = buckets
    }
}

/// What a medical sale may rely on: the patient's status (and how fresh it is).
public struct MedicalClearance: Sendable {
    public var patient: LookedUp<PatientStatus>
    public var stale: Bool { patient.source == .stale }
}

/// Patient and caregiver statuses from Metrc, cached one minute, with the checks a medical sale needs.
public final class PatientDirectory: Sendable {
    private let patients: LicenseStatusCache<PatientStatus>
    private let caregivers: LicenseStatusCache<CaregiverStatus>
    private let facility: FacilityProfile
    private let store: TillStore
    private let license: String
    private let timeZone: TimeZone
    private let now: @Sendable () -> Date
    private let locks = KeyedLock()
    public let settings: PatientSettings

    public init(metrc: any MetrcAPI, store: TillStore, settings: PatientSettings, timeZone: TimeZone, logger: Logger,
                now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.settings = settings
        self.license = metrc.licenseNumber
        self.timeZone = timeZone
        self.now = now
        patients = LicenseStatusCache(kind: "patient", ttl: settings.cacheFor, patience: settings.patience, store: store,
                                      logger: logger, now: now) {
            (number: String) async throws(MetrcError) -> PatientStatus? in
            Self.patientStatus(number, from: try await metrc.patientStatuses(patientLicenseNumber: number))
        }
        caregivers = LicenseStatusCache(kind: "caregiver", ttl: settings.cacheFor, patience: settings.patience, store: store,
                                        logger: logger, now: now) {
            (number: String) async throws(MetrcError) -> CaregiverStatus? in
            try await metrc.caregiverStatus(caregiverLicenseNumber: number).map {
                CaregiverStatus(licenseNumber: $0.caregiverLicenseNumber ?? number, active: $0.active ?? false,
                                patientLicenseNumbers: $0.patients ?? [])
            }
        }
        facility = FacilityProfile(metrc: metrc, now: now)
    }

    /// Patient status lookups since start, by where their answer came from.
    public func patientLookups() async -> LookupTally { await patients.lookups() }

    /// Fetches what the facility may sell to (call at start; it is also refreshed hourly by itself).
    public func refreshFacility() async { await facility.refresh() }

    /// What the facility's license says about deliveries; asked of Metrc first if Till has not heard yet.
    public func deliveryRules() async -> DeliveryRules {
        await facility.deliveryRules()
    }

    /// The refusal of a customer type the facility is not licensed for (when Metrc has said so), or nil.
    public func facilityRefusal(for customerType: CustomerType) -> TillError? {
        guard let allowed = facility.canSell(to: customerType), !allowed else { return nil }
        return .unprocessable("customer_type_not_allowed",
                              "This facility is not licensed to sell to \(customerType.rawValue) customers.",
                              details: ["customerType": customerType.rawValue])
    }

    // MARK: Lookups

    /// A patient's status for a person asking (pharmacist, register, manager); the lookup is audited.
    public func patient(_ number: String, askedBy actor: String, terminalId: Int64?) async throws(TillError) -> LookedUp<PatientStatus> {
        let found = try await patients.lookup(number)
        audit("patient.status.lookup", number, source: found.source, actor: actor, terminalId: terminalId)
        guard let status = found.value else {
            throw TillError(.notFound, code: "patient_not_found", "Metrc has no patient with license \(number).")
        }
        return LookedUp(value: status, source: found.source, fetchedAt: found.fetchedAt)
    }

    public func caregiver(_ number: String, askedBy actor: String, terminalId: Int64?) async throws(TillError) -> LookedUp<CaregiverStatus> {
        let found = try await caregivers.lookup(number)
        audit("caregiver.status.lookup", number, source: found.source, actor: actor, terminalId: terminalId)
        guard let status = found.value else {
            throw TillError(.notFound, code: "caregiver_not_found", "Metrc has no caregiver with license \(number).")
        }
        return LookedUp(value: status, source: found.source, fetchedAt: found.fetchedAt)
    }

    // MARK: Medical sales

    /// Runs `body` with this patient's sales serialized, so two registers cannot both spend the same allowance.
    public func serializingPatient<T: Sendable>(_ number: String, _ body: () async throws(TillError) -> T) async throws(TillError) -> T {
        let key = LicenseNumber.key(number)
        await locks.acquire(key)
        do {
            let value = try await body()
            await locks.release(key)
            return value
        } catch {
            await locks.release(key)
            throw error
        }
    }

    /// Checks who may buy: the facility sells to this customer type, the patient is active and not
    /// expired, a caregiver is active and linked to the patient, and the status is fresh enough.
    public func clear(_ request: SaleRequest, actor: String, terminalId: Int64?) async throws(TillError) -> MedicalClearance {
        guard let number = request.patientLicenseNumber else {
            throw .invalid("patient_license_required", "A \(request.customerType.rawValue) sale needs patientLicenseNumber.")
        }
        let patient = try await self.patient(number, askedBy: actor, terminalId: terminalId)
        try refuseIfStale(patient.source, fetchedAt: patient.fetchedAt, what: "patient \(number)")
        let today = FacilityDate.string(of: now(), in: timeZone)
        guard patient.value.active else {
            throw .unprocessable("patient_inactive", "Patient \(number) is not active in Metrc.", details: ["patientLicenseNumber": number])
        }
        guard !patient.value.isExpired(on: today) else {
            throw .unprocessable("patient_expired",
                                 "Patient \(number)'s registration expired on \(patient.value.expirationDate.map { String($0.prefix(10)) } ?? "?").",
                                 details: ["patientLicenseNumber": number, "expirationDate": patient.value.expirationDate ?? ""])
        }
        if request.customerType == .caregiver, let caregiverNumber = request.caregiverLicenseNumber {
            let caregiver = try await self.caregiver(caregiverNumber, askedBy: actor, terminalId: terminalId)
            try refuseIfStale(caregiver.source, fetchedAt: caregiver.fetchedAt, what: "caregiver \(caregiverNumber)")
            guard caregiver.value.active else {
                throw .unprocessable("caregiver_inactive", "Caregiver \(caregiverNumber) is not active in Metrc.",
                                     details: ["caregiverLicenseNumber": caregiverNumber])
            }
            guard caregiver.value.patientLicenseNumbers.contains(where: { LicenseNumber.same($0, number) }) else {
                throw .unprocessable("caregiver_not_linked",
                                     "Caregiver \(caregiverNumber) is not registered to buy for patient \(number).",
                                     details: ["caregiverLicenseNumber": caregiverNumber, "patientLicenseNumber": number])
            }
        }
        return MedicalClearance(patient: patient)
    }

    /// Refuses a sale past the patient's allowance: Metrc's `Available` less what this patient bought
    /// through Till since shortly before that figure was fetched (Metrc's own cache may lag a minute).
    public func checkAllowance(_ lines: [ValidatedLine], packages: [String: PackageSnapshot],
                               clearance: MedicalClearance) throws(TillError) {
        let status = clearance.patient.value
        let sale = try AllowanceLedger.consumption(
            lines.compactMap { line in packages[line.request.packageLabel].map { (line.request.quantity, line.unitName, $0) } },
            buckets: settings.buckets)
        guard !sale.isEmpty else { return }
        let since = clearance.patient.fetchedAt.addingTimeInterval(-Self.metrcCacheWindow)
        let recentLines: [(line: SaleLine, package: PackageSnapshot)]
        do {
            recentLines = try store.patientPurchases(patientLicenseNumber: status.licenseNumber, since: since)
        } catch {
            throw TillError.fromStore(error)
        }
        let recent = try AllowanceLedger.consumption(recentLines.map { ($0.line.quantity, $0.line.unit, $0.package) },
                                                     buckets: settings.buckets)
        try AllowanceLedger.check(sale: sale, recent: recent, status: status)
    }

    /// How far back Metrc's figures may lag (its documented cache).
    static let metrcCacheWindow: TimeInterval = 60

    private func refuseIfStale(_ source: StatusSource, fetchedAt: Date, what: String) throws(TillError) {
        guard source == .stale, settings.stalePolicy == .refuse else { return }
        let age = Int(now().timeIntervalSince(fetchedAt))
        throw TillError(.unavailable, code: "patient_status_stale",
                        "Metrc cannot be reached to confirm \(what); the last known status is \(age) s old and this facility does not sell on a stale status.",
                        details: ["ageSeconds": "\(age)", "asOf": ISO8601DateFormatter().string(from: fetchedAt)])
    }

    private func audit(_ action: String, _ number: String, source: StatusSource, actor: String, terminalId: Int64?) {
        try? store.appendAudit(AuditEvent(actor: actor, terminalId: terminalId, action: action, license: license,
                                          metrcEndpoint: action.hasPrefix("patient") ? "GET /patients/v2/statuses/{n}"
                                                                                     : "GET /caregivers/v2/status/{n}",
                                          subject: number, detail: "source=\(source.rawValue)"),
                               at: now())
    }

    /// Metrc answers one entry per registration: prefer an active one, then the latest expiry.
    static func patientStatus(_ number: String, from statuses: [MetrcPatientStatus]) -> PatientStatus? {
        let best = statuses.max { a, b in
            ((a.active ?? false) ? 1 : 0, a.patientLicenseExpirationDate ?? "") < ((b.active ?? false) ? 1 : 0, b.patientLicenseExpirationDate ?? "")
        }
        guard let status = best else { return nil }
        func allowance(_ allowed: Decimal?, _ purchased: Decimal?, _ available: Decimal?) -> Allowance? {
            allowed == nil && purchased == nil && available == nil ? nil
                : Allowance(allowedOunces: allowed, purchasedOunces: purchased, availableOunces: available)
        }
        var allowances: [String: Allowance] = [:]
        allowances[AllowanceBucket.flower.rawValue] = allowance(status.flowerOuncesAllowed, status.flowerOuncesPurchased, status.flowerOuncesAvailable)
        allowances[AllowanceBucket.thc.rawValue] = allowance(status.thcOuncesAllowed, status.thcOuncesPurchased, status.thcOuncesAvailable)
        allowances[AllowanceBucket.concentrate.rawValue] = allowance(status.concentrateOuncesAllowed, status.concentrateOuncesPurchased,
                                                                     status.concentrateOuncesAvailable)
        allowances[AllowanceBucket.infused.rawValue] = allowance(status.infusedOuncesAllowed, status.infusedOuncesPurchased,
                                                                 status.infusedOuncesAvailable)
        return PatientStatus(licenseNumber: status.patientLicenseNumber ?? number, active: status.active ?? false,
                             registrationNumber: status.registrationNumber,
                             registrationStartDate: status.patientRegistrationStartDate,
                             expirationDate: status.patientLicenseExpirationDate,
                             identificationMethod: status.identificationMethod,
                             purchaseAmountDays: status.purchaseAmountDays, allowances: allowances)
    }
}

/// What the facility may sell to, from `GET /facilities/v2/`, refreshed hourly in the background so
/// that a slow Metrc never holds up a sale here. A lock, not an actor: every sale asks it, and an actor
/// hop is a thread wake-up.
final class FacilityProfile: Sendable {
    private struct State {
        var facility: MetrcFacility?
        var fetchedAt: Date?
        var refreshing = false
    }

    private let metrc: any MetrcAPI
    private let now: @Sendable () -> Date
    private let state = Mutex(State())

    init(metrc: any MetrcAPI, now: @escaping @Sendable () -> Date) {
        self.metrc = metrc
        self.now = now
    }

    func refresh() async {
        guard let facilities = try? await metrc.facilities() else { return }
        let facility = facilities.first { $0.licenseNumber == metrc.licenseNumber }
        let at = now()
        state.withLock { state in
            state.facility = facility
            state.fetchedAt = at
        }
    }

    func deliveryRules() async -> DeliveryRules {
        if state.withLock({ $0.facility == nil }) { await refresh() }
        _ = canSell(to: .consumer)  // refreshes hourly
        guard let flags = state.withLock({ $0.facility?.delivery }) else { return DeliveryRules() }
        return DeliveryRules(canDeliverToConsumers: flags.canDeliverSalesToConsumers, canDeliverToPatients: flags.canDeliverSalesToPatients,
                             requireConsumerId: flags.requireConsumerId, requirePatientNumber: flags.requirePatientNumber,
                             requireRecipientName: flags.requireRecipientName, allowPlannedRoute: flags.allowPlannedRoute,
                             allowAddress: flags.allowAddress, allowCity: flags.allowCity, allowState: flags.allowState,
                             allowCounty: flags.allowCounty, allowZip: flags.allowZip, retailerDelivery: flags.retailerDelivery,
                             requirePrice: flags.retailerDeliveryRequirePrice,
                             allowPartialPackages: flags.retailerDeliveryAllowPartialPackages)
    }

    /// nil when Metrc has not said yet (unreachable, or the flag is absent): Metrc itself will refuse if need be.
    func canSell(to customerType: CustomerType) -> Bool? {
        let instant = now()
        let (facility, refresh) = state.withLock { state in
            let due = !state.refreshing && (state.fetchedAt.map { instant.timeIntervalSince($0) > 3600 } ?? true)
            if due { state.refreshing = true }
            return (state.facility, due)
        }
        if refresh {
            Task {
                await self.refresh()
                self.state.withLock { $0.refreshing = false }
            }
        }
        guard let facility else { return nil }
        return switch customerType {
        case .consumer, .nonResidentConsumer: facility.canSellToConsumers
        case .patient: facility.canSellToPatients
        case .caregiver: facility.canSellToCaregivers
        case .externalPatient: facility.canSellToExternalPatients
        }
    }
}

/// An async mutex per key: waiters queue in order and the lock passes straight to the next one.
actor KeyedLock {
    private var held: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func acquire(_ key: String) async {
        guard held.contains(key) else {
            held.insert(key)
            return
        }
        await withCheckedContinuation { waiters[key, default: []].append($0) }
    }

    func release(_ key: String) {
        if var queue = waiters[key], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[key] = queue.isEmpty ? nil : queue
            next.resume()
        } else {
            held.remove(key)
        }
    }
}
