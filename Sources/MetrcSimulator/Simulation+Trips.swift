import Foundation

/// One package of a trip's load or restock, checked and not yet applied.
private enum LoadStep {
    /// Onto the vehicle, from the shop; `quantity` in the package's own unit.
    case load(SimTripPackage)
    /// `RemoveCurrentPackage`: off the vehicle, what is left of it back to the shop.
    case remove(label: String)
}

extension MetrcSimulation {
    // MARK: Reading state

    public func trip(id: Int64) -> SimTrip? { deliveryBook.trips[id] }

    /// A facility's retailer deliveries, ended and voided included, in Id order.
    public func trips(license: String) -> [SimTrip] {
        deliveryBook.trips.values.filter { $0.license == license }.sorted { $0.id < $1.id }
    }

    /// What of a package is in the shop: its `Quantity` less what active trips' vehicles carry of it.
    public func shopQuantity(license: String, label: String) -> Decimal? {
        guard let package = package(license: license, label: label) else { return nil }
        return package.quantity - (carriedQuantities(license: license)[package.label.uppercased()] ?? 0)
    }

    /// What active trips' vehicles carry, in each package's unit, by upper-cased label.
    func carriedQuantities(license: String, excluding excluded: Int64? = nil) -> [String: Decimal] {
        var carried: [String: Decimal] = [:]
        for trip in deliveryBook.trips.values where trip.license == license && trip.isActive && trip.id != excluded {
            for package in trip.packages { carried[package.packageLabel.uppercased(), default: 0] += package.quantity }
        }
        return carried
    }

    /// A ledger that takes from the shop: what vehicles carry is counted in a package's quantity but not sold at the
    /// counter, delivered, adjusted away or loaded again.
    func shopLedger(license: String, excludingTrip excluded: Int64? = nil) -> Ledger {
        var ledger = Ledger()
        if !deliveryBook.trips.isEmpty { ledger.source = .shop(carried: carriedQuantities(license: license, excluding: excluded)) }
        return ledger
    }

    // MARK: Steering state

    /// Departs a trip on Metrc's website, behind a client's back (the API's rules; no request counted).
    public func departTripOnWebsite(id: Int64) -> SimHTTPResponse {
        onWebsite("POST", "/sales/v2/deliveries/retailer/depart", license: tripLicense(id), body: #"[{"RetailerDeliveryId":\#(id)}]"#)
    }

    /// Ends a trip on Metrc's website, behind a client's back: counted as its vehicle holds, arrived `actualArrival`
    /// (local wall clock; now when nil). The API's rules apply; no request is counted.
    public func endTripOnWebsite(id: Int64, actualArrival: String? = nil) -> SimHTTPResponse {
        var row: [(String, JSON)] = [("RetailerDeliveryId", JSON(id))]
        if let actualArrival { row.append(("ActualArrivalDateTime", .string(actualArrival))) }
        return onWebsite("POST", "/sales/v2/deliveries/retailer/end", license: tripLicense(id),
                         body: String(decoding: JSON.array([.object(row)]).serialized(), as: UTF8.self))
    }

    /// Voids a trip on Metrc's website, behind a client's back (the API's rules; no request counted).
    public func voidTripOnWebsite(id: Int64) -> SimHTTPResponse {
        onWebsite("DELETE", "/sales/v2/deliveries/retailer/\(id)", license: tripLicense(id))
    }

    private func tripLicense(_ id: Int64) -> String {
        deliveryBook.trips[id]?.license ?? facilityOrder.first ?? ""
    }

    // MARK: POST and PUT /sales/v2/deliveries/retailer

    /// A new trip, or (with `Id`, before it departs) its full new content: its old load is the shop's again while
    /// the new one is checked.
    func tripRow(_ item: JSON, editing: Bool, _ scoped: ScopedRequest, fail: (String) -> Void) -> Int64? {
        let license = scoped.license!
        let state = facilities[license]!
        guard state.facility.deliveryFlags.retailerDelivery else {
            fail("Facility \(license) is not permitted to make retailer deliveries (RetailerDelivery is false).")
            return nil
        }
        var reader = FieldReader(item)
        var failed = false
        func problem(_ message: String) {
            failed = true
            fail(message)
        }
        defer { reader.errors.forEach(fail) }

        var old: SimTrip? = nil
        if editing {
            guard let id = reader.int64("Id") else {
                if reader.errors.isEmpty { fail("Id is required to edit a retailer delivery.") }
                return nil
            }
            guard let found = deliveryBook.trips[id], found.license == license else {
                fail("Retailer delivery \(id) was not found in facility \(license).")
                return nil
            }
            guard found.state == .created else {
                fail("Retailer delivery \(id) \(Self.words(found.state)) and cannot be edited.")
                return nil
            }
            old = found
        }
        let dateTime = Self.localDateTime("DateTime", of: item, reader: &reader, fail: problem)
        let crew = Self.readCrew(&reader, fail: problem)
        let phone = Self.text("PhoneNumberForQuestions", reader: &reader)
        let departure = Self.localDateTime("EstimatedDepartureDateTime", of: item, reader: &reader, fail: problem)
        _ = reader.array("Destinations")  // planned stops: read (a wrong type is refused), not kept
        var ledger = shopLedger(license: license, excludingTrip: old?.id)
        let steps = readLoad(&reader, state: state, ledger: &ledger, trip: nil, fail: problem)
        guard !failed, reader.errors.isEmpty, let dateTime, let crew, let departure else { return nil }

        let stamp = now()
        var trip = old ?? SimTrip(
            id: deliveryBook.nextTripId, license: license, dateTime: dateTime, driver: crew.driver, vehicle: crew.vehicle,
            phoneNumberForQuestions: nil, estimatedDepartureDateTime: departure, actualDepartureDateTime: nil,
            restockDateTime: nil, leg: 1, state: .created, actualArrivalDateTime: nil, completedAt: nil, voidedAt: nil,
            packages: [], sales: [], endCounts: [], recordedAt: stamp, lastModified: stamp)
        if old == nil { deliveryBook.nextTripId += 1 }
        trip.dateTime = dateTime
        trip.driver = crew.driver
        trip.vehicle = crew.vehicle
        trip.phoneNumberForQuestions = phone
        trip.estimatedDepartureDateTime = departure
        trip.packages = []
        Self.apply(steps, to: &trip)
        trip.lastModified = stamp
        deliveryBook.trips[trip.id] = trip
        return trip.id
    }

    // MARK: POST /sales/v2/deliveries/retailer/depart

    func departRow(_ item: JSON, _ scoped: ScopedRequest, fail: (String) -> Void) -> Int64? {
        guard var trip = tripNamed(in: item, scoped, fail: fail) else { return nil }
        guard trip.state == .created else {
            fail("Retailer delivery \(trip.id) \(Self.words(trip.state)); it cannot depart.")
            return nil
        }
        let stamp = now()
        trip.state = .inTransit
        trip.actualDepartureDateTime = SimDates.localText(stamp, in: facilities[trip.license]!.timeZone)
        trip.lastModified = stamp
        deliveryBook.trips[trip.id] = trip
        return trip.id
    }

    // MARK: POST /sales/v2/deliveries/retailer/sale

    /// A sale from the vehicle: its lines come off the vehicle and off their packages; the sale joins `Destinations`.
    func tripSaleRow(_ item: JSON, _ scoped: ScopedRequest, fail: (String) -> Void) -> Int64? {
        guard var trip = tripNamed(in: item, scoped, fail: fail) else { return nil }
        guard trip.state == .inTransit else {
            fail("Retailer delivery \(trip.id) \(Self.words(trip.state)); it cannot sell.")
            return nil
        }
        var reader = FieldReader(item)
        var failed = false
        func problem(_ message: String) {
            failed = true
            fail(message)
        }
        defer { reader.errors.forEach(fail) }
        let state = facilities[trip.license]!
        let salesDateTime = Self.localDateTime("SalesDateTime", of: item, reader: &reader, fail: problem)
        let customer = readCustomer(item, reader: &reader, facility: state.facility, fail: problem)
        _ = Self.localDateTime("EstimatedDepartureDateTime", of: item, reader: &reader, required: false, fail: problem)
        _ = Self.localDateTime("EstimatedArrivalDateTime", of: item, reader: &reader, required: false, fail: problem)
        var ledger = Ledger()
        ledger.source = .vehicle(Dictionary(trip.packages.map { ($0.packageLabel.uppercased(), $0.quantity) },
                                            uniquingKeysWith: +))
        let lines = readLines(&reader, preferring: .receipt, state: state, ledger: &ledger, vehicle: trip, fail: problem)
        guard !failed, reader.errors.isEmpty, let salesDateTime, let customer, case .vehicle(let left) = ledger.source
        else { return nil }

        let stamp = now()
        commit(ledger, license: trip.license, at: stamp)
        for index in trip.packages.indices {
            trip.packages[index].quantity = left[trip.packages[index].packageLabel.uppercased()] ?? 0
        }
        let sale = SimTripSale(id: deliveryBook.nextTripSaleId, salesDateTime: salesDateTime, customer: customer,
                               transactions: lines, recordedAt: stamp)
        deliveryBook.nextTripSaleId += 1
        trip.sales.append(sale)
        trip.lastModified = stamp
        deliveryBook.trips[trip.id] = trip
        return sale.id
    }

    // MARK: POST /sales/v2/deliveries/retailer/restock

    /// Packages off the vehicle (`RemoveCurrentPackage`) and onto it, from the shop; the next leg begins.
    func restockRow(_ item: JSON, _ scoped: ScopedRequest, fail: (String) -> Void) -> Int64? {
        guard var trip = tripNamed(in: item, scoped, fail: fail) else { return nil }
        guard trip.isActive else {
            fail("Retailer delivery \(trip.id) \(Self.words(trip.state)); it cannot be restocked.")
            return nil
        }
        var reader = FieldReader(item)
        var failed = false
        func problem(_ message: String) {
            failed = true
            fail(message)
        }
        defer { reader.errors.forEach(fail) }
        let dateTime = Self.localDateTime("DateTime", of: item, reader: &reader, fail: problem)
        let departure = Self.localDateTime("EstimatedDepartureDateTime", of: item, reader: &reader, required: false, fail: problem)
        _ = reader.array("Destinations")
        var ledger = shopLedger(license: trip.license)
        let steps = readLoad(&reader, state: facilities[trip.license]!, ledger: &ledger, trip: trip, fail: problem)
        guard !failed, reader.errors.isEmpty, let dateTime else { return nil }

        Self.apply(steps, to: &trip)
        trip.restockDateTime = dateTime
        trip.leg += 1
        if let departure { trip.estimatedDepartureDateTime = departure }
        trip.lastModified = now()
        deliveryBook.trips[trip.id] = trip
        return trip.id
    }

    // MARK: POST /sales/v2/deliveries/retailer/end

    /// Every package on the vehicle counted once, as it holds (one sold out may be left out); the vehicle is emptied.
    func endRow(_ item: JSON, _ scoped: ScopedRequest, fail: (String) -> Void) -> Int64? {
        guard var trip = tripNamed(in: item, scoped, fail: fail) else { return nil }
        guard trip.state == .inTransit else {
            fail("Retailer delivery \(trip.id) \(Self.words(trip.state)); it cannot end.")
            return nil
        }
        var reader = FieldReader(item)
        var failed = false
        func problem(_ message: String) {
            failed = true
            fail(message)
        }
        defer { reader.errors.forEach(fail) }
        let arrival = Self.localDateTime("ActualArrivalDateTime", of: item, reader: &reader, fail: problem)
        let state = facilities[trip.license]!
        var counted: Set<String> = []
        for (index, entry) in (reader.array("Packages") ?? []).enumerated() {
            let prefix = "Package \(index + 1): "
            guard case .object = entry else {
                problem(prefix + "must be a JSON object, not \(entry.kindName).")
                continue
            }
            var fields = FieldReader(entry)
            defer { fields.errors.forEach { problem(prefix + $0) } }
            guard let label = Self.requiredText("Label", reader: &fields, fail: { problem(prefix + $0) }) else { continue }
            guard counted.insert(label.uppercased()).inserted else {
                problem("Package \(label) is listed more than once.")
                continue
            }
            guard let held = trip.quantity(of: label), let package = state.package(label: label) else {
                problem("Package \(label) is not on retailer delivery \(trip.id).")
                continue
            }
            let quantity = fields.decimal("EndQuantity")
            let unit = Self.text("EndUnitOfMeasure", reader: &fields).flatMap(SimUnits.unit(named:))
            guard let quantity, quantity >= 0, let unit else {
                problem("Package \(label): EndQuantity (0 or more) and EndUnitOfMeasure (a unit of measure) are required.")
                continue
            }
            let amount: Decimal
            do { amount = try packageAmount(quantity, unit, of: package) } catch {
                problem("Package \(label): " + error.message)
                continue
            }
            if amount != held {
                problem("Package \(label): EndQuantity \(quantity) \(unit.name) is not what the vehicle holds "
                    + "(\(held) \(package.unitOfMeasure)).")
            }
        }
        for package in trip.packages where package.quantity > 0 && !counted.contains(package.packageLabel.uppercased()) {
            problem("Package \(package.packageLabel) on retailer delivery \(trip.id) is not counted "
                + "(\(package.quantity) \(package.unitOfMeasure) on the vehicle).")
        }
        guard !failed, reader.errors.isEmpty, let arrival else { return nil }

        let stamp = now()
        trip.endCounts = trip.packages
        trip.packages = []
        trip.state = .completed
        trip.actualArrivalDateTime = arrival
        trip.completedAt = stamp
        trip.lastModified = stamp
        deliveryBook.trips[trip.id] = trip
        return trip.id
    }

    // MARK: DELETE /sales/v2/deliveries/retailer/{id}

    /// Voids a trip that has not departed; its vehicle's goods are the shop's again.
    func voidTrip(id: Int64, _ scoped: ScopedRequest) -> SimHTTPResponse {
        guard var trip = deliveryBook.trips[id] else { return .message(404, "Retailer delivery \(id) was not found.") }
        guard trip.license == scoped.license else { return .unauthorized }
        guard trip.state == .created else {
            return .rowErrors([RowError(row: 0, message: "Retailer delivery \(id) \(Self.words(trip.state)) and cannot be voided.")])
        }
        let stamp = now()
        trip.packages = []
        trip.state = .voided
        trip.voidedAt = stamp
        trip.lastModified = stamp
        deliveryBook.trips[id] = trip
        return SimHTTPResponse(status: 200)
    }

    // MARK: Reads

    func listTrips(active: Bool, _ scoped: ScopedRequest) -> SimHTTPResponse {
        let paging: Paging, window: ListWindow?
        do {
            paging = try parsePaging(scoped.query)
            window = try parseListWindow(scoped.query, salesDates: false)
        } catch {
            return error.response
        }
        if window == nil && configuration.retailerDeliveryListsRequireWindow {
            return .message(400, "lastModifiedStart and lastModifiedEnd are required.")
        }
        let chosen = trips(license: scoped.license!).filter { trip in
            guard trip.isActive == active else { return false }
            guard case .lastModified(let interval) = window else { return true }
            return interval.contains(trip.lastModified)
        }
        return .json(200, paging.page(chosen, tripJSON))
    }

    func tripLookup(id: Int64, _ scoped: ScopedRequest) -> SimHTTPResponse {
        guard let trip = deliveryBook.trips[id] else { return .message(404, "Retailer delivery \(id) was not found.") }
        if let wanted = scoped.license, wanted != trip.license { return .unauthorized }
        return .json(200, tripJSON(trip))
    }

    // MARK: Reading loads

    /// The trip a step's `RetailerDeliveryId` names, in the request's facility.
    private func tripNamed(in item: JSON, _ scoped: ScopedRequest, fail: (String) -> Void) -> SimTrip? {
        var reader = FieldReader(item)
        let id = reader.int64("RetailerDeliveryId")
        reader.errors.forEach(fail)
        guard let id else {
            if reader.errors.isEmpty { fail("RetailerDeliveryId is required.") }
            return nil
        }
        guard let trip = deliveryBook.trips[id], trip.license == scoped.license else {
            fail("Retailer delivery \(id) was not found in facility \(scoped.license!).")
            return nil
        }
        return trip
    }

    /// `Packages[]` of a trip's creation, edit or (with `trip`) restock, each package once, checked against the shop
    /// by the facility's price and partial-package flags.
    private func readLoad(_ reader: inout FieldReader, state: FacilityState, ledger: inout Ledger, trip: SimTrip?,
                          fail: (String) -> Void) -> [LoadStep] {
        let flags = state.facility.deliveryFlags
        let typeErrors = reader.errors.count
        let entries = reader.array("Packages") ?? []
        if entries.isEmpty && reader.errors.count == typeErrors { fail("At least one package is required.") }
        var seen: Set<String> = []
        var steps: [LoadStep] = []
        for (index, entry) in entries.enumerated() {
            let prefix = "Package \(index + 1): "
            var refused = false
            func problem(_ message: String) {
                refused = true
                fail(prefix + message)
            }
            guard case .object = entry else {
                problem("must be a JSON object, not \(entry.kindName).")
                continue
            }
            var fields = FieldReader(entry)
            defer { fields.errors.forEach(problem) }
            guard let label = Self.requiredText("PackageLabel", reader: &fields, fail: problem) else { continue }
            guard seen.insert(label.uppercased()).inserted else {
                problem("Package \(label) is listed more than once.")
                continue
            }
            if fields.bool("RemoveCurrentPackage") == true {
                if let trip {
                    if let held = trip.packages.first(where: { $0.packageLabel.uppercased() == label.uppercased() }) {
                        steps.append(.remove(label: held.packageLabel))
                    } else {
                        problem("Package \(label) is not on retailer delivery \(trip.id); it cannot be removed.")
                    }
                } else {
                    problem("RemoveCurrentPackage is only for a restock.")
                }
                continue
            }
            guard let package = state.package(label: label) else {
                problem("Package \(label) was not found in the inventory of facility \(state.facility.licenseNumber).")
                continue
            }
            Self.unsellable(package).forEach(problem)
            let quantity = fields.decimal("Quantity")
            let unitName = Self.text("UnitOfMeasure", reader: &fields)
            let price = fields.decimal("TotalPrice")
            let dateTime = Self.localDateTime("DateTime", of: entry, reader: &fields, required: false, fail: problem)
            guard let quantity, quantity > 0 else {
                problem("Quantity is required and must be greater than zero.")
                continue
            }
            guard let unit = unitName.flatMap(SimUnits.unit(named:)) else {
                problem("UnitOfMeasure '\(unitName ?? "")' is not a valid unit of measure.")
                continue
            }
            if price == nil && flags.retailerDeliveryRequirePrice {
                problem("TotalPrice is required for package \(package.label): facility \(state.facility.licenseNumber) "
                    + "requires a price on retailer deliveries.")
            }
            if let price, price < 0 { problem("TotalPrice must not be negative.") }
            let amount: Decimal
            do { amount = try packageAmount(quantity, unit, of: package) } catch {
                problem(error.message)
                continue
            }
            let shop = ledger.available(package)
            if amount > shop {
                problem("Package \(package.label) has \(shop) \(package.unitOfMeasure) in the shop; this load would take "
                    + "\(amount) \(package.unitOfMeasure).")
            } else if !flags.retailerDeliveryAllowPartialPackages && amount != shop {
                problem("Package \(package.label) must be loaded whole, \(shop) \(package.unitOfMeasure): facility "
                    + "\(state.facility.licenseNumber) does not allow partial packages on retailer deliveries.")
            } else if !refused && fields.errors.isEmpty {
                steps.append(.load(SimTripPackage(packageLabel: package.label, quantity: amount,
                                                  unitOfMeasure: package.unitOfMeasure, totalPrice: price, dateTime: dateTime)))
            }
        }
        return steps
    }

    /// Removals first (what is left of them goes back to the shop), then loads: added, or topped up with their price.
    private static func apply(_ steps: [LoadStep], to trip: inout SimTrip) {
        for case .remove(let label) in steps {
            trip.packages.removeAll { $0.packageLabel == label }
        }
        for case .load(let load) in steps {
            guard let index = trip.packages.firstIndex(where: { $0.packageLabel == load.packageLabel }) else {
                trip.packages.append(load)
                continue
            }
            trip.packages[index].quantity += load.quantity
            if let price = load.totalPrice { trip.packages[index].totalPrice = (trip.packages[index].totalPrice ?? 0) + price }
            trip.packages[index].dateTime = load.dateTime ?? trip.packages[index].dateTime
        }
    }

    static func words(_ state: SimTrip.State) -> String {
        switch state {
        case .created: "has not departed"
        case .inTransit: "has departed"
        case .completed: "has ended"
        case .voided: "is voided"
        }
    }

    // MARK: Wire shape

    func tripJSON(_ t: SimTrip) -> JSON {
        let prices = t.packages.compactMap(\.totalPrice)
        let sold = t.sales.reduce(Decimal(0)) { total, sale in total + sale.transactions.reduce(0) { $0 + $1.totalAmount } }
        return .object([
            ("Id", JSON(t.id)),
            ("RetailerDeliveryNumber", .string(String(t.id))),
            ("FacilityLicenseNumber", .string(t.license)),
            ("FacilityName", JSON(facilities[t.license]?.facility.name)),
            ("DateTime", .string(t.dateTime)),
            ("DriverEmployeeId", .string(t.driver.employeeId)),
            ("DriverName", .string(t.driver.name)),
            ("DriversLicenseNumber", .string(t.driver.licenseNumber)),
            ("PhoneNumberForQuestions", JSON(t.phoneNumberForQuestions)),
            ("VehicleMake", .string(t.vehicle.make)),
            ("VehicleModel", .string(t.vehicle.model)),
            ("VehicleLicensePlateNumber", .string(t.vehicle.licensePlateNumber)),
            ("VehicleInfo", .string("\(t.vehicle.make) \(t.vehicle.model) (\(t.vehicle.licensePlateNumber))")),
            ("Direction", .null),
            ("EstimatedDepartureDateTime", .string(t.estimatedDepartureDateTime)),
            ("ActualDepartureDateTime", JSON(t.actualDepartureDateTime)),
            ("RestockDateTime", JSON(t.restockDateTime)),
            ("ActualArrivalDateTime", JSON(t.actualArrivalDateTime)),
            ("TotalPackages", JSON(t.packages.count)),
            ("TotalPrice", prices.isEmpty ? .null : .number(prices.reduce(0, +))),
            ("TotalPriceSold", .number(sold)),
            ("AcceptedDateTime", .null),
            ("Destinations", .array(t.sales.map { sale in
                let c = sale.customer
                return .object([
                    ("Id", JSON(sale.id)),
                    ("SalesDateTime", .string(sale.salesDateTime)),
                    ("SalesCustomerType", .string(c.customerType)),
                    ("PatientLicenseNumber", JSON(c.patientLicenseNumber)),
                    ("ConsumerId", JSON(c.consumerId)),
                    ("RecipientName", JSON(c.recipientName)),
                    ("PhoneNumberForQuestions", JSON(c.phoneNumberForQuestions)),
                    ("RecipientAddressStreet1", JSON(c.street1)),
                    ("RecipientAddressStreet2", JSON(c.street2)),
                    ("RecipientAddressCity", JSON(c.city)),
                    ("RecipientAddressCounty", JSON(c.county)),
                    ("RecipientAddressState", JSON(c.state)),
                    ("RecipientAddressPostalCode", JSON(c.postalCode)),
                    ("Transactions", .array(sale.transactions.map { line in
                        .object([("PackageLabel", .string(line.packageLabel)), ("Quantity", .number(line.quantity)),
                                 ("UnitOfMeasure", .string(line.unitOfMeasure)), ("TotalAmount", .number(line.totalAmount))])
                    })),
                ])
            })),
            ("CompletedDateTime", JSON(t.completedAt.map(SimDates.utcText))),
            ("RetailerDeliveryState", .string(t.state.rawValue)),
            ("AllowFullEdit", .bool(t.state == .created)),
            ("Leg", JSON(t.leg)),
            ("VoidedDate", JSON(t.voidedAt.map(SimDates.utcText))),
            ("RecordedDateTime", .string(SimDates.utcText(t.recordedAt))),
            ("RecordedByUserName", .string("Till Simulator")),
            ("LastModified", .string(SimDates.utcText(t.lastModified))),
            ("Packages", .array(t.packages.map { package in
                .object([("DateTime", JSON(package.dateTime)), ("PackageLabel", .string(package.packageLabel)),
                         ("Quantity", .number(package.quantity)), ("UnitOfMeasure", .string(package.unitOfMeasure)),
                         ("TotalPrice", JSON(package.totalPrice))])
            })),
        ])
    }
}
