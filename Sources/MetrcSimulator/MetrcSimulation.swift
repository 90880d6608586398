import Foundation

/// The simulated Metrc's state: facilities, packages, receipts, faults and call counters. Tests read and steer it directly.
///
/// Every Metrc request is handled by one synchronous, actor-isolated step (`handle`), so a write is
/// all-or-nothing and concurrent requests never interleave inside it; only an injected latency suspends.
public actor MetrcSimulation {
    public nonisolated let configuration: SimulatorConfiguration
    let now: @Sendable () -> Date

    struct FacilityState {
        var facility: SimFacility
        var timeZone: TimeZone
        /// In seeding order; `GET /packages/v2/active` lists them by Id.
        var packages: [SimPackage]
        /// Upper-cased label → index in `packages`. Labels are matched case-insensitively.
        var indexByLabel: [String: Int]
        /// The registry as it stands (seeded from the facility, changed by `addCaregiver`).
        var patients: [SimPatient]
        var caregivers: [SimCaregiver]

        func package(label: String) -> SimPackage? { indexByLabel[label.uppercased()].map { packages[$0] } }

        /// License numbers are matched case-insensitively, as labels are.
        func patient(_ license: String) -> SimPatient? {
            patients.first { $0.licenseNumber.uppercased() == license.uppercased() }
        }

        func caregiver(_ license: String) -> SimCaregiver? {
            caregivers.first { $0.licenseNumber.uppercased() == license.uppercased() }
        }
    }

    var facilities: [String: FacilityState] = [:]
    /// Licenses in configuration order, for `GET /facilities/v2`.
    let facilityOrder: [String]
    /// Every receipt ever recorded, archived included, in Id order (Ids only grow).
    var receiptList: [SimReceipt] = []
    var receiptIndex: [Int64: Int] = [:]
    var nextReceiptId: Int64 = 1_000_001
    var faults: [SimFault] = []
    var counts: [RouteKey: Int] = [:]
    /// The connections requests came on, since the last reset.
    private var connections: Set<String> = []
    var rateWindows: [String: [ContinuousClock.Instant]] = [:]
    /// Every check-in ever recorded, archived included, in Id order.
    var checkInList: [SimCheckIn] = []
    var nextCheckInId: Int64 = 3_000_001
    /// Receipts' SalesDateTime as instants, by receipt Id, with the text they were worked out from.
    var salesInstants: [Int64: (text: String, instant: Date)] = [:]
    /// Every package adjustment recorded, in order.
    var adjustmentList: [SimAdjustment] = []
    var nextAdjustmentId: Int64 = 7_000_001
    /// Patient and caregiver status answers, each served unchanged for `statusCacheSeconds`.
    var statusCache: [StatusKey: CachedStatus] = [:]
    /// Sales deliveries and retailer deliveries (trips).
    var deliveryBook = DeliveryBook()

    struct RouteKey: Hashable {
        var method: String
        var path: String
    }

    /// - Parameter now: the clock for timestamps (RecordedDateTime, LastModified, ArchivedDate), fault
    ///   `until` windows, the one-minute patient and caregiver status cache and patients' purchase windows.
    ///   Rate limiting and latency use the real clock.
    public init(configuration: SimulatorConfiguration = .init(), now: @escaping @Sendable () -> Date = Date.init) {
        self.configuration = configuration
        self.now = now
        let stamp = now()
        var order: [String] = []
        var states: [String: FacilityState] = [:]
        for facility in configuration.facilities where states[facility.licenseNumber] == nil {
            order.append(facility.licenseNumber)
            var state = FacilityState(
                facility: facility, timeZone: TimeZone(identifier: facility.timeZoneIdentifier) ?? .current,
                packages: [], indexByLabel: [:], patients: [], caregivers: [])
            for patient in facility.patients where state.patient(patient.licenseNumber) == nil {
                state.patients.append(patient)
            }
            for caregiver in facility.caregivers where state.caregiver(caregiver.licenseNumber) == nil {
                state.caregivers.append(caregiver)
            }
            for var package in facility.packages {
                package.lastModified = package.lastModified ?? stamp
                state.indexByLabel[package.label.uppercased()] = state.packages.count
                state.packages.append(package)
            }
            states[facility.licenseNumber] = state
        }
        self.facilities = states
        self.facilityOrder = order
    }

    // MARK: Reading state

    /// All receipts of a facility, archived included, in Id order.
    public func receipts(license: String) -> [SimReceipt] {
        receiptList.filter { $0.license == license }
    }

    /// The receipts of a facility carrying this external number, oldest first (Metrc does not deduplicate).
    public func receipts(license: String, externalNumber: String) -> [SimReceipt] {
        receiptList.filter { $0.license == license && $0.externalReceiptNumber == externalNumber }
    }

    /// Every receipt of every facility, in Id order.
    public func allReceipts() -> [SimReceipt] { receiptList }

    public func receipt(id: Int64) -> SimReceipt? { receiptIndex[id].map { receiptList[$0] } }

    public func packageQuantity(license: String, label: String) -> Decimal? {
        facilities[license]?.package(label: label)?.quantity
    }

    public func package(license: String, label: String) -> SimPackage? {
        facilities[license]?.package(label: label)
    }

    /// The check-ins a facility recorded, archived (deleted) ones included, in Id order.
    public func checkIns(license: String) -> [SimCheckIn] {
        checkInList.filter { $0.license == license }
    }

    /// How many `GET /patients/v2/statuses/{patient}` requests arrived for this patient (license matched
    /// case-insensitively), whatever they were answered: faults, 401s and 429s included.
    public func statusRequestCount(patient: String) -> Int {
        statusRequests(for: .patient(patient.uppercased()))
    }

    /// How many `GET /caregivers/v2/status/{caregiver}` requests arrived for this caregiver, faults included.
    public func statusRequestCount(caregiver: String) -> Int {
        statusRequests(for: .caregiver(caregiver.uppercased()))
    }

    /// Read from the request counts, through the router that answers them.
    private func statusRequests(for subject: StatusKey.Subject) -> Int {
        counts.reduce(0) { total, entry in
            guard entry.key.method == "GET", let route = try? Self.route(method: "GET", path: entry.key.path) else { return total }
            switch route {
            case .patientStatus(let number) where subject == .patient(number.uppercased()): return total + entry.value
            case .caregiverStatus(let number) where subject == .caregiver(number.uppercased()): return total + entry.value
            default: return total
            }
        }
    }

    // MARK: Steering state

    /// Adds a package to a configured facility, or replaces the one with the same label.
    public func addPackage(_ package: SimPackage, license: String) {
        guard var state = facilities[license] else {
            preconditionFailure("MetrcSimulation.addPackage: no facility \(license) is configured")
        }
        var package = package
        package.lastModified = package.lastModified ?? now()
        if let index = state.indexByLabel[package.label.uppercased()] {
            state.packages[index] = package
        } else {
            state.indexByLabel[package.label.uppercased()] = state.packages.count
            state.packages.append(package)
        }
        facilities[license] = state
    }

    /// Adds a caregiver to a facility's registry, or replaces the one with the same license number.
    public func addCaregiver(_ caregiver: SimCaregiver, license: String) {
        guard facilities[license] != nil else {
            preconditionFailure("MetrcSimulation.addCaregiver: no facility \(license) is configured")
        }
        let wanted = caregiver.licenseNumber.uppercased()
        if let index = facilities[license]!.caregivers.firstIndex(where: { $0.licenseNumber.uppercased() == wanted }) {
            facilities[license]!.caregivers[index] = caregiver
        } else {
            facilities[license]!.caregivers.append(caregiver)
        }
    }

    /// Sets a package's quantity as an adjustment on the Metrc website would, behind a point of sale's back.
    public func setPackageQuantity(license: String, label: String, quantity: Decimal) {
        guard let index = facilities[license]?.indexByLabel[label.uppercased()] else {
            preconditionFailure("MetrcSimulation.setPackageQuantity: no package \(label) in facility \(license)")
        }
        facilities[license]!.packages[index].quantity = quantity
        facilities[license]!.packages[index].lastModified = now()
    }

    /// Puts a package on hold or releases it.
    public func setPackageOnHold(license: String, label: String, _ onHold: Bool) {
        guard let index = facilities[license]?.indexByLabel[label.uppercased()] else {
            preconditionFailure("MetrcSimulation.setPackageOnHold: no package \(label) in facility \(license)")
        }
        facilities[license]!.packages[index].isOnHold = onHold
        facilities[license]!.packages[index].lastModified = now()
    }

    /// Replaces every fault.
    public func setFaults(_ faults: [SimFault]) { self.faults = faults }
    public func addFault(_ fault: SimFault) { faults.append(fault) }
    public func clearFaults() { faults.removeAll() }
    /// The faults still armed (used-up ones are dropped as they run out).
    public func activeFaults() -> [SimFault] {
        let now = now()
        return faults.filter { fault in
            (fault.until.map { now < $0 } ?? true) && (fault.remaining.map { $0 > 0 } ?? true)
        }
    }

    /// Every Metrc request seen (faults, 401s and 429s included; `/_sim/` admin calls not), optionally only
    /// those with this method and a path starting with this prefix.
    public func requestCount(method: String? = nil, pathPrefix: String? = nil) -> Int {
        counts.reduce(0) { total, entry in
            if let method, entry.key.method != method.uppercased() { return total }
            if let pathPrefix, !SimFault.path(entry.key.path, hasPrefix: pathPrefix) { return total }
            return total + entry.value
        }
    }

    /// How many connections the counted requests came on: a client that keeps them alive uses one.
    public func connectionCount() -> Int { connections.count }

    public func resetCounters() {
        counts.removeAll()
        connections.removeAll()
        rateWindows.removeAll()
    }

    // MARK: Answering

    /// Answers one HTTP request as Metrc would, faults first. The server calls this; tests may too.
    public func respond(to request: SimHTTPRequest) async -> SimHTTPResponse {
        let path = Self.normalize(request.path)
        if path == "/_sim" || path.hasPrefix("/_sim/") {
            return admin(request, path: path)
        }
        counts[RouteKey(method: request.method, path: path), default: 0] += 1
        if let connection = request.connection { connections.insert(connection) }

        guard let fault = takeFault(method: request.method, path: path) else {
            return handle(request, path: path)
        }
        switch fault.effect {
        case .status(let status, let body, let retryAfter):
            var headers: [(name: String, value: String)] = []
            if let retryAfter { headers.append(("Retry-After", String(retryAfter))) }
            guard let body else { return SimHTTPResponse(status: status, headers: headers) }
            let trimmed = body.drop { $0.isWhitespace }
            let type = trimmed.hasPrefix("{") || trimmed.hasPrefix("[") ? "application/json; charset=utf-8" : "text/html"
            return SimHTTPResponse(status: status, headers: [("Content-Type", type)] + headers, body: Data(body.utf8))
        case .latency(let delay):
            try? await Task.sleep(for: delay)
            return handle(request, path: path)
        case .holdThenApply(let hold):
            // An unstructured task: not cancelled when the client's connection goes, so the hold runs out and the
            // write lands all the same.
            let applied = Task {
                try? await Task.sleep(for: hold)
                return self.handle(request, path: path)
            }
            return await applied.value
        case .commitThenDrop:
            var response = handle(request, path: path)
            response.drop = fault.dropStyle
            return response
        case .dropBeforeCommit:
            return SimHTTPResponse(status: 502, body: Data("Bad Gateway".utf8), drop: fault.dropStyle)
        }
    }

    /// The first armed fault matching the request, counted down; exhausted and expired faults are dropped.
    private func takeFault(method: String, path: String) -> SimFault? {
        let now = now()
        faults.removeAll { fault in
            (fault.until.map { now >= $0 } ?? false) || (fault.remaining.map { $0 <= 0 } ?? false)
        }
        guard let index = faults.firstIndex(where: { $0.matches(method: method, path: path, now: now) }) else { return nil }
        let fault = faults[index]
        if let remaining = fault.remaining {
            if remaining <= 1 { faults.remove(at: index) } else { faults[index].remaining = remaining - 1 }
        }
        return fault
    }

    /// Sliding one-second window per bucket; only admitted requests count against it.
    func admit(bucket: String, limit: Int?) -> Bool {
        guard let limit else { return true }
        let now = ContinuousClock.now
        var window = rateWindows[bucket, default: []]
        window.removeAll { now - $0 >= .seconds(1) }
        guard window.count < limit else {
            rateWindows[bucket] = window
            return false
        }
        window.append(now)
        rateWindows[bucket] = window
        return true
    }

    /// "/sales/v2/receipts/" and "/sales/v2/receipts" are the same route.
    static func normalize(_ path: String) -> String {
        var path = path.isEmpty ? "/" : path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }
}
