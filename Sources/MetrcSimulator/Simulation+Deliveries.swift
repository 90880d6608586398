import Foundation

/// The simulation's sales deliveries and retailer deliveries (trips), voided and completed ones included. Ids only grow.
struct DeliveryBook {
    var deliveries: [Int64: SimSalesDelivery] = [:]
    var trips: [Int64: SimTrip] = [:]
    var nextDeliveryId: Int64 = 4_000_001
    var nextTripId: Int64 = 6_000_001
    var nextTripSaleId: Int64 = 8_000_001
}

/// A request under `/sales/v2/deliveries`, once its path and verb are recognised.
enum DeliveryRoute {
    case list(active: Bool)
    case byID(Int64)
    case post
    case put
    case complete
    case void(Int64)
    case returnReasons
    /// `PUT /sales/v2/deliveries/hub`, `hub/accept`, `hub/depart`, `hub/verifyID`.
    case hub
    case tripList(active: Bool)
    case tripByID(Int64)
    case postTrips
    case putTrips
    case tripStep(TripStep)
    case voidTrip(Int64)

    enum TripStep: String { case depart, sale, restock, end }

    /// The verbs `/sales/v2/deliveries/{rest}` answers; `parts` keep their case, `lower` is lower-cased.
    static func allowed(_ parts: [String], _ lower: [String]) -> [String: MetrcRoute] {
        switch lower.count {
        case 0:
            return ["POST": .delivery(.post), "PUT": .delivery(.put)]
        case 1:
            switch lower[0] {
            case "active", "inactive": return ["GET": .delivery(.list(active: lower[0] == "active"))]
            case "returnreasons": return ["GET": .delivery(.returnReasons)]
            case "complete": return ["PUT": .delivery(.complete)]
            case "hub": return ["PUT": .delivery(.hub)]
            case "retailer": return ["POST": .delivery(.postTrips), "PUT": .delivery(.putTrips)]
            default:
                guard let id = Int64(parts[0]) else { return [:] }
                return ["GET": .delivery(.byID(id)), "DELETE": .delivery(.void(id))]
            }
        case 2 where lower[0] == "hub":
            return ["accept", "depart", "verifyid"].contains(lower[1]) ? ["PUT": .delivery(.hub)] : [:]
        case 2 where lower[0] == "retailer":
            if lower[1] == "active" || lower[1] == "inactive" {
                return ["GET": .delivery(.tripList(active: lower[1] == "active"))]
            }
            if let step = TripStep(rawValue: lower[1]) { return ["POST": .delivery(.tripStep(step))] }
            guard let id = Int64(parts[1]) else { return [:] }
            return ["GET": .delivery(.tripByID(id)), "DELETE": .delivery(.voidTrip(id))]
        default:
            return [:]
        }
    }

    var licenseUse: MetrcRoute.LicenseUse {
        switch self {
        case .byID, .tripByID: .optional
        default: .required
        }
    }
}

extension MetrcSimulation {
    // MARK: Reading state

    public func salesDelivery(id: Int64) -> SimSalesDelivery? { deliveryBook.deliveries[id] }

    /// A facility's sales deliveries, completed and voided included, in Id order.
    public func salesDeliveries(license: String) -> [SimSalesDelivery] {
        deliveryBook.deliveries.values.filter { $0.license == license }.sorted { $0.id < $1.id }
    }

    public func deliveryFlags(license: String) -> SimDeliveryFlags? { facilities[license]?.facility.deliveryFlags }

    // MARK: Steering state

    /// Changes a facility's delivery flags, as Metrc's staff would: `GET /facilities/v2` shows them and every
    /// delivery write from now on is held to them.
    public func setDeliveryFlags(_ flags: SimDeliveryFlags, license: String) {
        guard facilities[license] != nil else {
            preconditionFailure("MetrcSimulation.setDeliveryFlags: no facility \(license) is configured")
        }
        facilities[license]!.facility.deliveryFlags = flags
    }

    /// Completes a sales delivery on Metrc's website, behind a client's back: every package accepted but those
    /// `returned`, arrived `actualArrival` (local wall clock; now when nil). The API's rules apply; no request is counted.
    public func completeDeliveryOnWebsite(id: Int64, returned: [SimDeliveryReturn] = [],
                                          actualArrival: String? = nil) -> SimHTTPResponse {
        var row: [(String, JSON)] = [("Id", JSON(id))]
        if let actualArrival { row.append(("ActualArrivalDateTime", .string(actualArrival))) }
        if !returned.isEmpty {
            row.append(("ReturnedPackages", .array(returned.map { item in
                .object([("Label", .string(item.label)), ("ReturnQuantityVerified", .number(item.quantity)),
                         ("ReturnUnitOfMeasure", .string(item.unitOfMeasure)), ("ReturnReason", .string(item.reason)),
                         ("ReturnReasonNote", JSON(item.note))])
            })))
        }
        return onWebsite("PUT", "/sales/v2/deliveries/complete", license: deliveryLicense(id),
                         body: String(decoding: JSON.array([.object(row)]).serialized(), as: UTF8.self))
    }

    /// Voids a sales delivery on Metrc's website, behind a client's back (the API's rules; no request counted).
    public func voidDeliveryOnWebsite(id: Int64) -> SimHTTPResponse {
        onWebsite("DELETE", "/sales/v2/deliveries/\(id)", license: deliveryLicense(id))
    }

    private func deliveryLicense(_ id: Int64) -> String {
        deliveryBook.deliveries[id]?.license ?? facilityOrder.first ?? ""
    }

    // MARK: Answering

    func handleDelivery(_ route: DeliveryRoute, _ scoped: ScopedRequest) -> SimHTTPResponse {
        switch route {
        case .list(let active): listSalesDeliveries(active: active, scoped)
        case .byID(let id): salesDeliveryLookup(id: id, scoped)
        case .post: created(applyRows(scoped, what: "sales delivery") { salesDeliveryRow($0, editing: false, scoped, fail: $1) })
        case .put: written(applyRows(scoped, what: "sales delivery") { salesDeliveryRow($0, editing: true, scoped, fail: $1) })
        case .complete: written(applyRows(scoped, what: "sales delivery completion") { completionRow($0, scoped, fail: $1) })
        case .void(let id): voidSalesDelivery(id: id, scoped)
        case .returnReasons: returnReasonList(scoped)
        case .hub: written(applyRows(scoped, what: "hub delivery") { _, fail in
            fail("Facility \(scoped.license!) is not a sales delivery hub.")
            return nil
        })
        case .tripList(let active): listTrips(active: active, scoped)
        case .tripByID(let id): tripLookup(id: id, scoped)
        case .postTrips: created(applyRows(scoped, what: "retailer delivery") { tripRow($0, editing: false, scoped, fail: $1) })
        case .putTrips: written(applyRows(scoped, what: "retailer delivery") { tripRow($0, editing: true, scoped, fail: $1) })
        case .tripStep(.depart): written(applyRows(scoped, what: "departure") { departRow($0, scoped, fail: $1) })
        case .tripStep(.sale): created(applyRows(scoped, what: "sale") { tripSaleRow($0, scoped, fail: $1) })
        case .tripStep(.restock): written(applyRows(scoped, what: "restock") { restockRow($0, scoped, fail: $1) })
        case .tripStep(.end): written(applyRows(scoped, what: "end") { endRow($0, scoped, fail: $1) })
        case .voidTrip(let id): voidTrip(id: id, scoped)
        }
    }

    /// Applies a write's rows in order, each seeing what the rows before it did. When any row is refused, everything
    /// is put back and every refusal answered (400, by row), so nothing of the request is applied.
    /// - Parameter row: applies one object (only once it has checked all of it) and answers its Id, or tells `fail`
    ///   why not.
    func applyRows(_ scoped: ScopedRequest, what: String,
                   _ row: (_ item: JSON, _ fail: (String) -> Void) -> Int64?) -> Result<[Int64], EarlyAnswer> {
        let items: [JSON]
        do { items = try bodyArray(scoped.request) } catch { return .failure(error) }
        let saved = (facilities, deliveryBook)
        var errors: [RowError] = []
        var ids: [Int64] = []
        for (index, item) in items.enumerated() {
            func fail(_ message: String) { errors.append(RowError(row: index, message: message)) }
            guard case .object = item else {
                fail("Each \(what) must be a JSON object, not \(item.kindName).")
                continue
            }
            if let id = row(item, fail) { ids.append(id) }
        }
        guard errors.isEmpty else {
            (facilities, deliveryBook) = saved
            return .failure(EarlyAnswer(.rowErrors(errors)))
        }
        return .success(ids)
    }

    /// A write that creates: `{"Ids":[…],"Warnings":null}` in posted order.
    func created(_ outcome: Result<[Int64], EarlyAnswer>) -> SimHTTPResponse {
        switch outcome {
        case .success(let ids): .json(200, .object([("Ids", .array(ids.map { JSON($0) })), ("Warnings", .null)]))
        case .failure(let refusal): refusal.response
        }
    }

    /// Any other write: 200 with an empty body.
    func written(_ outcome: Result<[Int64], EarlyAnswer>) -> SimHTTPResponse {
        switch outcome {
        case .success: SimHTTPResponse(status: 200)
        case .failure(let refusal): refusal.response
        }
    }

    // MARK: POST and PUT /sales/v2/deliveries

    /// One delivery, posted or (with `Id`) its full new content: the old lines go back on their packages, the new
    /// ones are taken from the shop.
    private func salesDeliveryRow(_ item: JSON, editing: Bool, _ scoped: ScopedRequest, fail: (String) -> Void) -> Int64? {
        let license = scoped.license!
        var reader = FieldReader(item)
        var failed = false
        func problem(_ message: String) {
            failed = true
            fail(message)
        }
        defer { reader.errors.forEach(fail) }

        var old: SimSalesDelivery? = nil
        if editing {
            guard let id = reader.int64("Id") else {
                if reader.errors.isEmpty { fail("Id is required to edit a sales delivery.") }
                return nil
            }
            guard let found = deliveryBook.deliveries[id], found.license == license else {
                fail("Sales delivery \(id) was not found in facility \(license).")
                return nil
            }
            guard found.isActive else {
                fail("Sales delivery \(id) is \(Self.words(found.state)) and cannot be edited.")
                return nil
            }
            old = found
        }
        let state = facilities[license]!
        let salesDateTime = Self.localDateTime("SalesDateTime", of: item, reader: &reader, fail: problem)
        let customer = readCustomer(item, reader: &reader, facility: state.facility, fail: problem)
        let plannedRoute = Self.text("PlannedRoute", reader: &reader)
        let crew = Self.readCrew(&reader, fail: problem)
        let departure = Self.localDateTime("EstimatedDepartureDateTime", of: item, reader: &reader, fail: problem)
        let arrival = Self.localDateTime("EstimatedArrivalDateTime", of: item, reader: &reader, fail: problem)

        var ledger = shopLedger(license: license)
        let formerLabels = giveBack(old?.transactions ?? [], state: state, to: &ledger)
        let lines = readLines(&reader, preferring: .saleTransaction, state: state, ledger: &ledger,
                              allowFinished: formerLabels, fail: problem)
        guard !failed, reader.errors.isEmpty, let salesDateTime, let customer, let crew, let departure, let arrival
        else { return nil }

        let stamp = now()
        commit(ledger, license: license, at: stamp)
        var delivery = old ?? SimSalesDelivery(
            id: deliveryBook.nextDeliveryId, license: license, salesDateTime: salesDateTime, customer: customer,
            driver: crew.driver, vehicle: crew.vehicle, plannedRoute: nil, estimatedDepartureDateTime: departure,
            estimatedArrivalDateTime: arrival, actualArrivalDateTime: nil, transactions: [], acceptedPackages: [],
            returnedPackages: [], state: .inTransit, completedAt: nil, voidedAt: nil, recordedAt: stamp, lastModified: stamp)
        if old == nil { deliveryBook.nextDeliveryId += 1 }
        delivery.salesDateTime = salesDateTime
        delivery.customer = customer
        delivery.driver = crew.driver
        delivery.vehicle = crew.vehicle
        delivery.plannedRoute = plannedRoute
        delivery.estimatedDepartureDateTime = departure
        delivery.estimatedArrivalDateTime = arrival
        delivery.transactions = lines
        delivery.lastModified = stamp
        deliveryBook.deliveries[delivery.id] = delivery
        return delivery.id
    }

    // MARK: PUT /sales/v2/deliveries/complete

    /// Every label of the delivery once, accepted or returned; returned quantities go back on their packages.
    private func completionRow(_ item: JSON, _ scoped: ScopedRequest, fail: (String) -> Void) -> Int64? {
        let license = scoped.license!
        var reader = FieldReader(item)
        var failed = false
        func problem(_ message: String) {
            failed = true
            fail(message)
        }
        defer { reader.errors.forEach(fail) }

        guard let id = reader.int64("Id") else {
            if reader.errors.isEmpty { fail("Id is required to complete a sales delivery.") }
            return nil
        }
        guard var delivery = deliveryBook.deliveries[id], delivery.license == license else {
            fail("Sales delivery \(id) was not found in facility \(license).")
            return nil
        }
        guard delivery.isActive else {
            fail("Sales delivery \(id) is \(Self.words(delivery.state)) and cannot be completed.")
            return nil
        }
        let state = facilities[license]!
        let arrival = Self.localDateTime("ActualArrivalDateTime", of: item, reader: &reader, fail: problem)
        let lines = Dictionary(delivery.transactions.map { ($0.packageLabel.uppercased(), $0) }, uniquingKeysWith: { a, _ in a })
        var listed: [String] = []  // upper-cased, in the order given
        var accepted: [String] = []
        func account(_ label: String) -> SimTransaction? {
            listed.append(label.uppercased())
            guard let line = lines[label.uppercased()] else {
                problem("Package \(label) is not part of sales delivery \(id).")
                return nil
            }
            return line
        }

        for entry in reader.array("AcceptedPackages") ?? [] {
            guard case .string(let label) = entry else {
                problem("AcceptedPackages must list package labels, not \(entry.kindName).")
                continue
            }
            if let line = account(label) { accepted.append(line.packageLabel) }
        }
        var ledger = Ledger()
        var returns: [SimDeliveryReturn] = []
        for (number, entry) in (reader.array("ReturnedPackages") ?? []).enumerated() {
            let prefix = "Returned package \(number + 1): "
            guard case .object = entry else {
                problem(prefix + "must be a JSON object, not \(entry.kindName).")
                continue
            }
            var fields = FieldReader(entry)
            defer { fields.errors.forEach { problem(prefix + $0) } }
            guard let label = Self.requiredText("Label", reader: &fields, fail: { problem(prefix + $0) }),
                  let line = account(label) else { continue }
            if let returned = readReturn(&fields, line: line, state: state, ledger: &ledger, fail: { problem(prefix + $0) }) {
                returns.append(returned)
            }
        }
        var repeated: Set<String> = []
        for label in listed where lines[label] != nil && listed.filter({ $0 == label }).count > 1
            && repeated.insert(label).inserted {
            problem("Package \(lines[label]!.packageLabel) is listed more than once; each package is accepted or returned once.")
        }
        for line in delivery.transactions where !listed.contains(line.packageLabel.uppercased()) {
            problem("Package \(line.packageLabel) of sales delivery \(id) is neither accepted nor returned.")
        }
        guard !failed, reader.errors.isEmpty, let arrival else { return nil }

        let stamp = now()
        commit(ledger, license: license, at: stamp)
        delivery.state = .delivered
        delivery.actualArrivalDateTime = arrival
        delivery.completedAt = stamp
        delivery.acceptedPackages = accepted
        delivery.returnedPackages = returns
        delivery.lastModified = stamp
        deliveryBook.deliveries[id] = delivery
        return id
    }

    /// One returned package: more than 0 and at most what was delivered, in the line's unit, for a known reason
    /// (with a note when the reason needs one); what comes back is added to `ledger`.
    private func readReturn(_ fields: inout FieldReader, line: SimTransaction, state: FacilityState, ledger: inout Ledger,
                            fail: (String) -> Void) -> SimDeliveryReturn? {
        var failed = false
        func problem(_ message: String) {
            failed = true
            fail(message)
        }
        let label = line.packageLabel
        let quantity = fields.decimal("ReturnQuantityVerified")
        if let quantity {
            if quantity <= 0 { problem("ReturnQuantityVerified for package \(label) must be greater than zero.") }
            if quantity > line.quantity {
                problem("ReturnQuantityVerified \(quantity) for package \(label) is more than the \(line.quantity) "
                    + "\(line.unitOfMeasure) delivered.")
            }
        } else {
            problem("ReturnQuantityVerified is required for package \(label).")
        }
        let unitName = Self.text("ReturnUnitOfMeasure", reader: &fields)
        let unit = unitName.flatMap(SimUnits.unit(named:))
        if unit?.name != line.unitOfMeasure {
            problem("ReturnUnitOfMeasure '\(unitName ?? "")' for package \(label) must be \(line.unitOfMeasure), "
                + "the unit it was delivered in.")
        }
        let reasonName = Self.text("ReturnReason", reader: &fields)
        let reasons = configuration.deliveryReturnReasons
        let reason = reasons.first { $0.name.lowercased() == reasonName?.trimmingCharacters(in: .whitespaces).lowercased() }
        let note = Self.text("ReturnReasonNote", reader: &fields)
        if let reason {
            if reason.requiresNote && note == nil {
                problem("A ReturnReasonNote is required for return reason \(reason.name) (package \(label)).")
            }
        } else {
            problem("ReturnReason '\(reasonName ?? "")' is not a delivery return reason; expected one of "
                + "\(reasons.map(\.name).joined(separator: ", ")).")
        }
        guard !failed, let quantity, let unit, let reason, let package = state.package(label: label) else { return nil }
        do {
            ledger.add(try packageAmount(quantity, unit, of: package), to: package)
        } catch {
            problem(error.message)
            return nil
        }
        return SimDeliveryReturn(label: label, quantity: quantity, unitOfMeasure: unit.name, reason: reason.name, note: note)
    }

    // MARK: DELETE /sales/v2/deliveries/{id}

    /// Voids a delivery in transit: every line goes back on its package.
    private func voidSalesDelivery(id: Int64, _ scoped: ScopedRequest) -> SimHTTPResponse {
        guard var delivery = deliveryBook.deliveries[id] else { return .message(404, "Sales delivery \(id) was not found.") }
        guard delivery.license == scoped.license else { return .unauthorized }
        guard delivery.isActive else {
            return .rowErrors([RowError(row: 0, message: "Sales delivery \(id) is \(Self.words(delivery.state)) and cannot be voided.")])
        }
        var ledger = Ledger()
        giveBack(delivery.transactions, state: facilities[delivery.license]!, to: &ledger)
        let stamp = now()
        commit(ledger, license: delivery.license, at: stamp)
        delivery.state = .voided
        delivery.voidedAt = stamp
        delivery.lastModified = stamp
        deliveryBook.deliveries[id] = delivery
        return SimHTTPResponse(status: 200)
    }

    // MARK: Reads

    private func listSalesDeliveries(active: Bool, _ scoped: ScopedRequest) -> SimHTTPResponse {
        let paging: Paging, window: ListWindow?
        do {
            paging = try parsePaging(scoped.query)
            window = try parseListWindow(scoped.query)
        } catch {
            return error.response
        }
        let zone = facilities[scoped.license!]!.timeZone
        let chosen = salesDeliveries(license: scoped.license!).filter { delivery in
            guard delivery.isActive == active else { return false }
            switch window {
            case nil: return true
            case .lastModified(let interval): return interval.contains(delivery.lastModified)
            case .salesDate(let interval):
                return SimDateTime(delivery.salesDateTime).map { interval.contains($0.date(in: zone)) } ?? false
            }
        }
        return .json(200, paging.page(chosen, salesDeliveryJSON))
    }

    private func salesDeliveryLookup(id: Int64, _ scoped: ScopedRequest) -> SimHTTPResponse {
        guard let delivery = deliveryBook.deliveries[id] else { return .message(404, "Sales delivery \(id) was not found.") }
        if let wanted = scoped.license, wanted != delivery.license { return .unauthorized }
        return .json(200, salesDeliveryJSON(delivery))
    }

    private func returnReasonList(_ scoped: ScopedRequest) -> SimHTTPResponse {
        let paging: Paging
        do { paging = try parsePaging(scoped.query) } catch { return error.response }
        return .json(200, paging.page(configuration.deliveryReturnReasons) { reason in
            .object([("Name", .string(reason.name)), ("RequiresNote", .bool(reason.requiresNote)),
                     ("RequiresWasteWeight", .bool(false)), ("RequiresImmatureWasteWeight", .bool(false)),
                     ("RequiresMatureWasteWeight", .bool(false))])
        })
    }

    // MARK: Reading what deliveries and trips share

    /// A text field; nil when absent, null or blank.
    static func text(_ key: String, reader: inout FieldReader) -> String? {
        reader.string(key).flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
    }

    static func requiredText(_ key: String, reader: inout FieldReader, fail: (String) -> Void) -> String? {
        let typeErrors = reader.errors.count
        let value = text(key, reader: &reader)
        if value == nil && reader.errors.count == typeErrors { fail("\(key) is required.") }
        return value
    }

    /// The driver and vehicle fields, every one required.
    static func readCrew(_ reader: inout FieldReader, fail: (String) -> Void) -> (driver: SimDriver, vehicle: SimVehicle)? {
        let employee = requiredText("DriverEmployeeId", reader: &reader, fail: fail)
        let name = requiredText("DriverName", reader: &reader, fail: fail)
        let license = requiredText("DriversLicenseNumber", reader: &reader, fail: fail)
        let make = requiredText("VehicleMake", reader: &reader, fail: fail)
        let model = requiredText("VehicleModel", reader: &reader, fail: fail)
        let plate = requiredText("VehicleLicensePlateNumber", reader: &reader, fail: fail)
        guard let employee, let name, let license, let make, let model, let plate else { return nil }
        return (SimDriver(employeeId: employee, name: name, licenseNumber: license),
                SimVehicle(make: make, model: model, licensePlateNumber: plate))
    }

    /// The address parts (and the planned route) a delivery may carry only when the facility's flag allows.
    private static let allowedByFlag: [(field: String, flag: KeyPath<SimDeliveryFlags, Bool> & Sendable, flagName: String)] = [
        ("RecipientAddressStreet1", \.salesDeliveryAllowAddress, "SalesDeliveryAllowAddress"),
        ("RecipientAddressStreet2", \.salesDeliveryAllowAddress, "SalesDeliveryAllowAddress"),
        ("RecipientAddressCity", \.salesDeliveryAllowCity, "SalesDeliveryAllowCity"),
        ("RecipientAddressCounty", \.salesDeliveryAllowCounty, "SalesDeliveryAllowCounty"),
        ("RecipientAddressState", \.salesDeliveryAllowState, "SalesDeliveryAllowState"),
        ("RecipientAddressPostalCode", \.salesDeliveryAllowZip, "SalesDeliveryAllowZip"),
        ("PlannedRoute", \.salesDeliveryAllowPlannedRoute, "SalesDeliveryAllowPlannedRoute"),
    ]

    /// The customer of a sales delivery or of a trip's sale, held to the facility's delivery flags.
    func readCustomer(_ item: JSON, reader: inout FieldReader, facility: SimFacility,
                      fail: (String) -> Void) -> SimDeliveryCustomer? {
        let flags = facility.deliveryFlags
        var customerType: String? = nil
        if let given = Self.requiredText("SalesCustomerType", reader: &reader, fail: fail) {
            if let known = configuration.customerTypes.first(where: { $0.lowercased() == given.lowercased() }) {
                customerType = known
                let (sells, delivers) = switch known {
                case "Patient": (facility.canSellToPatients, flags.canDeliverSalesToPatients)
                case "Caregiver": (facility.canSellToCaregivers, flags.canDeliverSalesToPatients)
                case "ExternalPatient": (facility.canSellToExternalPatients, flags.canDeliverSalesToPatients)
                default: (facility.canSellToConsumers, flags.canDeliverSalesToConsumers)
                }
                if !sells || !delivers {
                    fail("Facility \(facility.licenseNumber) cannot deliver sales to customer type \(known).")
                }
            } else {
                fail("SalesCustomerType '\(given)' is not valid; expected one of \(configuration.customerTypes.joined(separator: ", ")).")
            }
        }
        let patient = Self.text("PatientLicenseNumber", reader: &reader)
        if let customerType, ["Patient", "Caregiver", "ExternalPatient"].contains(customerType),
           flags.salesDeliveryRequirePatientNumber, patient == nil {
            fail("PatientLicenseNumber is required for a \(customerType) delivery.")
        }
        let consumerId = Self.text("ConsumerId", reader: &reader)
        if flags.salesDeliveryRequireConsumerId && consumerId == nil {
            fail("ConsumerId is required: facility \(facility.licenseNumber) requires it on sales deliveries.")
        }
        let recipientName = Self.text("RecipientName", reader: &reader)
        if flags.salesDeliveryRequireRecipientName && recipientName == nil {
            fail("RecipientName is required: facility \(facility.licenseNumber) requires it on sales deliveries.")
        }
        for rule in Self.allowedByFlag where !flags[keyPath: rule.flag] && Self.text(rule.field, reader: &reader) != nil {
            fail("\(rule.field) is not allowed: facility \(facility.licenseNumber) has \(rule.flagName) false.")
        }
        guard let customerType else { return nil }
        return SimDeliveryCustomer(
            customerType: customerType, patientLicenseNumber: patient, consumerId: consumerId, recipientName: recipientName,
            phoneNumberForQuestions: Self.text("PhoneNumberForQuestions", reader: &reader),
            street1: Self.text("RecipientAddressStreet1", reader: &reader),
            street2: Self.text("RecipientAddressStreet2", reader: &reader),
            city: Self.text("RecipientAddressCity", reader: &reader),
            county: Self.text("RecipientAddressCounty", reader: &reader),
            state: Self.text("RecipientAddressState", reader: &reader),
            postalCode: Self.text("RecipientAddressPostalCode", reader: &reader))
    }

    /// The two names a delivery line's fields go by: the specification's `SaleTransaction` and Metrc's receipt line.
    enum LineSpelling {
        /// `QuantitySold`, `UnitOfMeasureName`, `TotalPrice`.
        case saleTransaction
        /// `Quantity`, `UnitOfMeasure`, `TotalAmount`.
        case receipt

        static let pairs = [("Quantity", "QuantitySold"), ("UnitOfMeasure", "UnitOfMeasureName"), ("TotalAmount", "TotalPrice")]
    }

    /// `Transactions[]` of a sales delivery or of a trip's sale, each package once, taken from `ledger`. A line may
    /// use either spelling; when it carries both, `preferring` decides and the other fills what is missing.
    /// - Parameter vehicle: for a trip's sale, the trip: a line's package must be on its vehicle.
    func readLines(_ reader: inout FieldReader, preferring spelling: LineSpelling, state: FacilityState,
                   ledger: inout Ledger, allowFinished: Set<String> = [], vehicle: SimTrip? = nil,
                   fail: (String) -> Void) -> [SimTransaction] {
        let typeErrors = reader.errors.count
        let lines = reader.array("Transactions") ?? []
        if lines.isEmpty && reader.errors.count == typeErrors { fail("At least one transaction is required.") }
        var seen: Set<String> = []
        var transactions: [SimTransaction] = []
        for (index, line) in lines.enumerated() {
            guard case .object(var members) = line else {
                fail("Transaction \(index + 1): must be a JSON object, not \(line.kindName).")
                continue
            }
            if let label = line["PackageLabel"]?.stringValue {
                guard seen.insert(label.uppercased()).inserted else {
                    fail("Transaction \(index + 1): Package \(label) is listed more than once; list each package once.")
                    continue
                }
                if let vehicle, vehicle.quantity(of: label) == nil {
                    fail("Transaction \(index + 1): Package \(label) is not on retailer delivery \(vehicle.id).")
                    continue
                }
            }
            // The receipt line's reader takes the last of repeated names, so the chosen spelling goes last.
            for (receiptName, specName) in LineSpelling.pairs {
                let (first, second) = spelling == .saleTransaction ? (specName, receiptName) : (receiptName, specName)
                if let value = [line[first], line[second]].compactMap({ $0 }).first(where: { !$0.isNull }) {
                    members.append((receiptName, value))
                }
            }
            if let transaction = validateLine(.object(members), number: index + 1, facility: state, ledger: &ledger,
                                              allowFinished: allowFinished, fail: fail) {
                transactions.append(transaction)
            }
        }
        return transactions
    }

    static func words(_ state: SimSalesDelivery.State) -> String {
        switch state {
        case .inTransit: "in transit"
        case .delivered: "completed"
        case .voided: "voided"
        }
    }

    /// Fills in what a person completing a delivery or ending a trip on Metrc's website does not type: the arrival is
    /// now, every package not returned is accepted, and a trip's count is what its vehicle holds.
    func websiteForm(_ method: String, _ path: String, license: String, body: String) -> String {
        let route = (method.uppercased(), Self.normalize(path).lowercased())
        guard route == ("PUT", "/sales/v2/deliveries/complete") || route == ("POST", "/sales/v2/deliveries/retailer/end"),
              let zone = facilities[license]?.timeZone, case .array(let rows)? = JSON.parse(Data(body.utf8))
        else { return body }
        let arrival = JSON.string(SimDates.localText(now(), in: zone))
        let filled: [JSON] = rows.map { row in
            guard case .object(var members) = row else { return row }
            if row["ActualArrivalDateTime"] == nil { members.append(("ActualArrivalDateTime", arrival)) }
            if route.1.hasSuffix("/complete"), row["AcceptedPackages"] == nil,
               let id = row["Id"]?.numberValue.flatMap({ Int64(exactly: $0) }), let delivery = deliveryBook.deliveries[id] {
                let returned = Set((row["ReturnedPackages"]?.arrayValue ?? []).compactMap { $0["Label"]?.stringValue?.uppercased() })
                let accepted = delivery.transactions.map(\.packageLabel).filter { !returned.contains($0.uppercased()) }
                members.append(("AcceptedPackages", .array(accepted.map(JSON.string))))
            }
            if route.1.hasSuffix("/end"), row["Packages"] == nil,
               let id = row["RetailerDeliveryId"]?.numberValue.flatMap({ Int64(exactly: $0) }), let trip = deliveryBook.trips[id] {
                members.append(("Packages", .array(trip.packages.map { package in
                    .object([("Label", .string(package.packageLabel)), ("EndQuantity", .number(package.quantity)),
                             ("EndUnitOfMeasure", .string(package.unitOfMeasure))])
                })))
            }
            return .object(members)
        }
        return String(decoding: JSON.array(filled).serialized(), as: UTF8.self)
    }

    // MARK: Wire shapes

    func salesDeliveryJSON(_ d: SimSalesDelivery) -> JSON {
        let state = facilities[d.license]
        let customer = d.customer
        return .object([
            ("Id", JSON(d.id)),
            ("DeliveryNumber", .string(String(d.id))),
            ("FacilityLicenseNumber", .string(d.license)),
            ("FacilityName", JSON(state?.facility.name)),
            ("TransporterFacilityId", .null),
            ("TransporterFacilityLicenseNumber", .null),
            ("TransporterFacilityName", .null),
            ("SalesDateTime", .string(d.salesDateTime)),
            ("SalesCustomerType", .string(customer.customerType)),
            ("PatientLicenseNumber", JSON(customer.patientLicenseNumber)),
            ("ConsumerId", JSON(customer.consumerId)),
            ("DriverEmployeeId", .string(d.driver.employeeId)),
            ("DriverName", .string(d.driver.name)),
            ("DriversLicenseNumber", .string(d.driver.licenseNumber)),
            ("PhoneNumberForQuestions", JSON(customer.phoneNumberForQuestions)),
            ("VehicleMake", .string(d.vehicle.make)),
            ("VehicleModel", .string(d.vehicle.model)),
            ("VehicleLicensePlateNumber", .string(d.vehicle.licensePlateNumber)),
            ("RecipientName", JSON(customer.recipientName)),
            ("RecipientAddressStreet1", JSON(customer.street1)),
            ("RecipientAddressStreet2", JSON(customer.street2)),
            ("RecipientAddressCity", JSON(customer.city)),
            ("RecipientAddressCounty", JSON(customer.county)),
            ("RecipientAddressState", JSON(customer.state)),
            ("RecipientAddressPostalCode", JSON(customer.postalCode)),
            ("PlannedRoute", JSON(d.plannedRoute)),
            ("Direction", .null),
            ("EstimatedDepartureDateTime", .string(d.estimatedDepartureDateTime)),
            ("ActualDepartureDateTime", .null),
            ("EstimatedArrivalDateTime", .string(d.estimatedArrivalDateTime)),
            ("ActualArrivalDateTime", JSON(d.actualArrivalDateTime)),
            ("EstimatedReturnDepartureDateTime", .null),
            ("ActualReturnDepartureDateTime", .null),
            ("EstimatedReturnArrivalDateTime", .null),
            ("ActualReturnArrivalDateTime", .null),
            ("TotalPackages", JSON(d.transactions.count)),
            ("TotalPrice", .number(d.transactions.reduce(0) { $0 + $1.totalAmount })),
            ("AcceptedDateTime", .null),
            ("Transactions", .array(d.transactions.map { line in
                saleTransactionJSON(line, package: state?.package(label: line.packageLabel),
                                    salesDeliveryState: d.state.rawValue, archivedDate: nil,
                                    recordedAt: d.recordedAt, lastModified: d.lastModified)
            })),
            ("CompletedDateTime", JSON(d.completedAt.map(SimDates.utcText))),
            ("SalesDeliveryState", .string(d.state.rawValue)),
            ("VoidedDate", JSON(d.voidedAt.map(SimDates.utcText))),
            ("RecordedDateTime", .string(SimDates.utcText(d.recordedAt))),
            ("RecordedByUserName", .string("Till Simulator")),
            ("LastModified", .string(SimDates.utcText(d.lastModified))),
        ])
    }
}

extension JSON {
    var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    var numberValue: Decimal? { if case .number(let n) = self { n } else { nil } }
    var arrayValue: [JSON]? { if case .array(let items) = self { items } else { nil } }
}

extension MetrcSimulation {
    // MARK: /_sim/ admin

    /// `GET /_sim/deliveries`, `GET /_sim/trips` and `GET|PUT /_sim/facilities/deliveryflags` (see `admin`).
    func deliveryAdmin(_ request: SimHTTPRequest, path: String) -> SimHTTPResponse {
        let given = Self.parseQuery(request.query)["licensenumber"]
        func tagged(_ license: String, _ json: JSON) -> JSON {
            guard case .object(let members) = json else { return json }
            return .object([("License", .string(license))] + members)
        }
        switch (request.method, path) {
        case ("GET", "/_sim/deliveries"):
            let chosen = deliveryBook.deliveries.values.filter { given == nil || $0.license == given }.sorted { $0.id < $1.id }
            return .json(200, .array(chosen.map { tagged($0.license, salesDeliveryJSON($0)) }))
        case ("GET", "/_sim/trips"):
            let chosen = deliveryBook.trips.values.filter { given == nil || $0.license == given }.sorted { $0.id < $1.id }
            return .json(200, .array(chosen.map { tagged($0.license, tripJSON($0)) }))
        case ("GET", _), ("PUT", _):
            let license = given ?? facilityOrder.first ?? ""
            guard var flags = deliveryFlags(license: license) else {
                return .message(404, "No facility \(license) is configured.")
            }
            if request.method == "PUT" {
                guard let body = JSON.parse(request.body), case .object(let members) = body else {
                    return .message(400, "The body must be a JSON object of FacilityType delivery flags and booleans.")
                }
                for (name, value) in members {
                    guard let entry = SimDeliveryFlags.wireNames.first(where: { $0.name.lowercased() == name.lowercased() }),
                          case .bool(let on) = value else {
                        return .message(400, "\(name) is not a delivery flag set to true or false; the flags are "
                            + SimDeliveryFlags.wireNames.map(\.name).joined(separator: ", ") + ".")
                    }
                    flags[keyPath: entry.flag] = on
                }
                setDeliveryFlags(flags, license: license)
            }
            return .json(200, .object(flags.facilityTypeMembers))
        default:
            return .message(405, "Use GET or PUT on \(path).")
        }
    }
}
