import Foundation

/// The validated content of one posted or edited receipt, not yet applied.
struct ReceiptDraft {
    var salesDateTime: String
    var customerType: String
    var patientLicenseNumber: String?
    var caregiverLicenseNumber: String?
    var identificationMethod: String?
    /// nil when the body did not carry the field (an edit then keeps the old number).
    var externalReceiptNumber: String??
    var transactions: [SimTransaction]
}

/// Package quantities as a request would leave them, in each package's own unit, keyed by upper-cased label.
/// Validation runs against it; applying the request writes it back, so what was checked is what is stored.
/// It also carries what the request does to patients' allowances, so that two receipts in one request
/// cannot each fit an allowance that both together exceed.
struct Ledger {
    var quantities: [String: Decimal] = [:]
    /// Where the request's lines take from; `MetrcSimulation.shopLedger` gives the shop with the vehicles' loads.
    var source: Source = .shop(carried: [:])
    /// Grams per allowance taken by this request's receipts so far, per upper-cased patient license.
    var patientGrams: [String: [SimAllowance: Decimal]] = [:]
    /// Receipts this request rewrites (an edit): their old lines no longer count against a patient.
    var replacedReceipts: Set<Int64> = []

    enum Source {
        /// The shop: a package's quantity less what active trips' vehicles carry of it (by upper-cased label).
        case shop(carried: [String: Decimal])
        /// One trip's vehicle, what it holds by upper-cased label: lines taken come off the vehicle and the package.
        case vehicle([String: Decimal])
    }

    /// The package's quantity as the request leaves it so far.
    func quantity(_ package: SimPackage) -> Decimal {
        quantities[package.label.uppercased()] ?? package.quantity
    }

    /// What the request may still take of the package.
    func available(_ package: SimPackage) -> Decimal {
        switch source {
        case .shop(let carried): quantity(package) - (carried[package.label.uppercased()] ?? 0)
        case .vehicle(let stock): stock[package.label.uppercased()] ?? 0
        }
    }

    mutating func add(_ amount: Decimal, to package: SimPackage) {
        let key = package.label.uppercased()
        quantities[key] = quantity(package) + amount
        if case .vehicle(var stock) = source {
            stock[key, default: 0] += amount
            source = .vehicle(stock)
        }
    }
}

/// Why one field or line of a request is refused, in Metrc's words.
struct RowProblem: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

extension MetrcSimulation {
    // MARK: POST /sales/v2/receipts

    func postReceipts(_ scoped: ScopedRequest) -> SimHTTPResponse {
        let items: [JSON]
        do { items = try bodyArray(scoped.request) } catch { return error.response }
        let state = facilities[scoped.license!]!
        var ledger = shopLedger(license: scoped.license!)
        var errors: [RowError] = []
        var drafts: [ReceiptDraft] = []
        for (row, item) in items.enumerated() {
            if let draft = validateContent(item, row: row, state: state, ledger: &ledger, errors: &errors) {
                drafts.append(draft)
            }
        }
        guard errors.isEmpty else { return .rowErrors(errors) }

        let stamp = now()
        commit(ledger, license: scoped.license!, at: stamp)
        var ids: [JSON] = []
        for draft in drafts {
            let receipt = SimReceipt(
                id: nextReceiptId, license: scoped.license!, receiptNumber: nil,
                externalReceiptNumber: draft.externalReceiptNumber ?? nil,
                salesDateTime: draft.salesDateTime, salesCustomerType: draft.customerType,
                patientLicenseNumber: draft.patientLicenseNumber, caregiverLicenseNumber: draft.caregiverLicenseNumber,
                identificationMethod: draft.identificationMethod, transactions: draft.transactions,
                isFinal: false, archived: false, archivedDate: nil, recordedAt: stamp, lastModified: stamp)
            nextReceiptId += 1
            receiptIndex[receipt.id] = receiptList.count
            receiptList.append(receipt)
            ids.append(JSON(receipt.id))
        }
        return .json(200, .object([("Ids", .array(ids)), ("Warnings", .null)]))
    }

    // MARK: PUT /sales/v2/receipts

    func putReceipts(_ scoped: ScopedRequest) -> SimHTTPResponse {
        let items: [JSON]
        do { items = try bodyArray(scoped.request) } catch { return error.response }
        let license = scoped.license!
        let state = facilities[license]!
        var errors: [RowError] = []
        var targets: [Int: Int] = [:]  // row → index in receiptList
        var seen: Set<Int64> = []
        for (row, item) in items.enumerated() {
            var reader = FieldReader(item)
            let id = reader.int64("Id")
            errors += reader.errors.map { RowError(row: row, message: $0) }
            guard let id else {
                if reader.errors.isEmpty { errors.append(RowError(row: row, message: "Id is required to edit a sales receipt.")) }
                continue
            }
            guard let index = receiptIndex[id], receiptList[index].license == license else {
                errors.append(RowError(row: row, message: "Sales receipt \(id) was not found in facility \(license)."))
                continue
            }
            guard seen.insert(id).inserted else {
                errors.append(RowError(row: row, message: "Sales receipt \(id) appears more than once in this request."))
                continue
            }
            let receipt = receiptList[index]
            if receipt.archived {
                errors.append(RowError(row: row, message: "Sales receipt \(id) is archived and cannot be edited."))
            } else if receipt.isFinal {
                errors.append(RowError(row: row, message: "Sales receipt \(id) is finalized; unfinalize it before editing."))
            } else {
                targets[row] = index
            }
        }

        // The old lines go back on their packages first, so an edit may re-use what it gives back.
        var ledger = shopLedger(license: license)
        ledger.replacedReceipts = Set(targets.values.map { receiptList[$0].id })
        var formerLabels: Set<String> = []
        for index in targets.values {
            formerLabels.formUnion(giveBack(receiptList[index].transactions, state: state, to: &ledger))
        }
        var drafts: [Int: ReceiptDraft] = [:]
        for (row, item) in items.enumerated() {
            drafts[row] = validateContent(item, row: row, state: state, ledger: &ledger, errors: &errors,
                                          allowFinished: formerLabels)
        }
        guard errors.isEmpty else { return .rowErrors(errors.sorted { $0.row < $1.row }) }

        let stamp = now()
        commit(ledger, license: license, at: stamp)
        for (row, index) in targets {
            guard let draft = drafts[row] else { continue }
            receiptList[index].salesDateTime = draft.salesDateTime
            receiptList[index].salesCustomerType = draft.customerType
            receiptList[index].patientLicenseNumber = draft.patientLicenseNumber
            receiptList[index].caregiverLicenseNumber = draft.caregiverLicenseNumber
            receiptList[index].identificationMethod = draft.identificationMethod
            if let external = draft.externalReceiptNumber { receiptList[index].externalReceiptNumber = external }
            receiptList[index].transactions = draft.transactions
            receiptList[index].lastModified = stamp
        }
        return SimHTTPResponse(status: 200)
    }

    // MARK: PUT /sales/v2/receipts/finalize and /unfinalize

    func finalizeReceipts(_ finalize: Bool, _ scoped: ScopedRequest) -> SimHTTPResponse {
        let items: [JSON]
        do { items = try bodyArray(scoped.request) } catch { return error.response }
        let license = scoped.license!
        var errors: [RowError] = []
        var indexes: [Int] = []
        for (row, item) in items.enumerated() {
            var reader = FieldReader(item)
            let id = reader.int64("Id")
            errors += reader.errors.map { RowError(row: row, message: $0) }
            guard let id else {
                if reader.errors.isEmpty { errors.append(RowError(row: row, message: "Id is required.")) }
                continue
            }
            guard let index = receiptIndex[id], receiptList[index].license == license else {
                errors.append(RowError(row: row, message: "Sales receipt \(id) was not found in facility \(license)."))
                continue
            }
            guard !receiptList[index].archived else {
                errors.append(RowError(row: row, message: "Sales receipt \(id) is archived."))
                continue
            }
            indexes.append(index)
        }
        guard errors.isEmpty else { return .rowErrors(errors) }
        let stamp = now()
        for index in indexes where receiptList[index].isFinal != finalize {
            receiptList[index].isFinal = finalize
            receiptList[index].lastModified = stamp
        }
        return SimHTTPResponse(status: 200)
    }

    // MARK: DELETE /sales/v2/receipts/{id}

    /// Archives a receipt (a void or full return) and puts every line back on its package.
    func archiveReceipt(id: Int64, _ scoped: ScopedRequest) -> SimHTTPResponse {
        let license = scoped.license!
        guard let index = receiptIndex[id] else { return .message(404, "Sales receipt \(id) was not found.") }
        guard receiptList[index].license == license else { return .unauthorized }
        let receipt = receiptList[index]
        if receipt.archived {
            return .rowErrors([RowError(row: 0, message: "Sales receipt \(id) is already archived.")])
        }
        if receipt.isFinal {
            return .rowErrors([RowError(row: 0, message: "Sales receipt \(id) is finalized; unfinalize it before archiving.")])
        }
        let state = facilities[license]!
        var ledger = Ledger()
        giveBack(receipt.transactions, state: state, to: &ledger)
        let stamp = now()
        commit(ledger, license: license, at: stamp)
        receiptList[index].archived = true
        receiptList[index].archivedDate = stamp
        receiptList[index].lastModified = stamp
        return SimHTTPResponse(status: 200)
    }

    // MARK: Validation

    /// The body of a write: a non-empty JSON array of at most `maxObjectsPerRequest` objects.
    func bodyArray(_ request: SimHTTPRequest) throws(EarlyAnswer) -> [JSON] {
        guard !request.body.isEmpty else { throw EarlyAnswer(.message(400, "The request body is empty; a JSON array is required.")) }
        guard let json = JSON.parse(request.body) else { throw EarlyAnswer(.message(400, "The request body is not valid JSON.")) }
        guard case .array(let items) = json else {
            throw EarlyAnswer(.message(400, "The request body must be a JSON array, not \(json.kindName)."))
        }
        guard !items.isEmpty else { throw EarlyAnswer(.message(400, "The request body must contain at least one object.")) }
        guard items.count <= configuration.maxObjectsPerRequest else {
            throw EarlyAnswer(.message(413, "The request contains \(items.count) objects; the limit is \(configuration.maxObjectsPerRequest) per request."))
        }
        return items
    }

    /// Checks one receipt's content, taking its lines from `ledger`; appends every problem found to `errors`.
    func validateContent(_ item: JSON, row: Int, state: FacilityState, ledger: inout Ledger, errors: inout [RowError],
                         allowFinished: Set<String> = []) -> ReceiptDraft? {
        let errorCountBefore = errors.count
        func fail(_ message: String) { errors.append(RowError(row: row, message: message)) }
        guard case .object = item else {
            fail("Each sales receipt must be a JSON object, not \(item.kindName).")
            return nil
        }
        var reader = FieldReader(item)
        let facility = state.facility

        let salesDateTime = Self.localDateTime("SalesDateTime", of: item, reader: &reader, fail: fail)

        var customerType: String? = nil
        if let given = reader.string("SalesCustomerType") {
            if let known = configuration.customerTypes.first(where: { $0.lowercased() == given.lowercased() }) {
                customerType = known
                let allowed = switch known {
                case "Patient": facility.canSellToPatients
                case "Caregiver": facility.canSellToCaregivers
                case "ExternalPatient": facility.canSellToExternalPatients
                default: facility.canSellToConsumers
                }
                if !allowed { fail("Facility \(facility.licenseNumber) cannot sell to customer type \(known).") }
            } else {
                fail("SalesCustomerType '\(given)' is not valid; expected one of \(configuration.customerTypes.joined(separator: ", ")).")
            }
        } else if item["SalesCustomerType"] == nil || item["SalesCustomerType"]!.isNull {
            fail("SalesCustomerType is required.")
        }

        let patient = reader.string("PatientLicenseNumber").flatMap { $0.isEmpty ? nil : $0 }
        let caregiver = reader.string("CaregiverLicenseNumber").flatMap { $0.isEmpty ? nil : $0 }
        if let customerType, ["Patient", "Caregiver", "ExternalPatient"].contains(customerType), patient == nil {
            fail("PatientLicenseNumber is required for a \(customerType) sale.")
        }
        if customerType == "Caregiver" && caregiver == nil {
            fail("CaregiverLicenseNumber is required for a Caregiver sale.")
        }
        // An ExternalPatient is registered in another state: its number is carried, not checked.
        let medical = customerType == "Patient" || customerType == "Caregiver"
        if medical, let customerType {
            let saleDay = String((salesDateTime ?? SimDates.localText(now(), in: state.timeZone)).prefix(10))
            validateRegistration(customerType: customerType, patient: patient, caregiver: caregiver,
                                 saleDay: saleDay, state: state, fail: fail)
        }
        let identificationMethod = reader.string("IdentificationMethod")
        let external: String?? = item["ExternalReceiptNumber"] == nil ? nil : .some(reader.string("ExternalReceiptNumber"))

        var transactions: [SimTransaction] = []
        let lines = reader.array("Transactions")
        if lines?.isEmpty ?? true, reader.errors.allSatisfy({ !$0.hasPrefix("Transactions") }) {
            fail("A sales receipt must have at least one transaction.")
        }
        for (number, line) in (lines ?? []).enumerated() {
            if let transaction = validateLine(line, number: number + 1, facility: state, ledger: &ledger,
                                              allowFinished: allowFinished, fail: fail) {
                transactions.append(transaction)
            }
        }
        errors += reader.errors.map { RowError(row: row, message: $0) }

        guard errors.count == errorCountBefore, let salesDateTime, let customerType else { return nil }
        // Registration checks passed (any failure returned above), so a medical sale's patient is registered.
        if medical, configuration.enforcePatientLimits, let registeredPatient = patient.flatMap(state.patient),
           !checkAllowances(registeredPatient, lines: transactions, state: state, ledger: &ledger, fail: fail) {
            return nil
        }
        return ReceiptDraft(
            salesDateTime: salesDateTime, customerType: customerType, patientLicenseNumber: patient,
            caregiverLicenseNumber: caregiver, identificationMethod: identificationMethod,
            externalReceiptNumber: external, transactions: transactions)
    }

    /// Checks one line (`PackageLabel`, `Quantity`, `UnitOfMeasure`, `TotalAmount`) against the package and takes it
    /// from `ledger`; every problem goes to `fail`, prefixed with the line's number.
    func validateLine(_ line: JSON, number: Int, facility state: FacilityState, ledger: inout Ledger,
                      allowFinished: Set<String>, fail: (String) -> Void) -> SimTransaction? {
        let prefix = "Transaction \(number): "
        guard case .object = line else {
            fail(prefix + "must be a JSON object, not \(line.kindName).")
            return nil
        }
        var reader = FieldReader(line)
        let label = reader.string("PackageLabel")
        let quantity = reader.decimal("Quantity")
        let unitName = reader.string("UnitOfMeasure")
        let totalAmount = reader.decimal("TotalAmount")
        let typeErrors = reader.errors
        for message in typeErrors { fail(prefix + message) }
        let failuresBefore = typeErrors.count
        var failed = failuresBefore > 0
        func problem(_ message: String) {
            failed = true
            fail(prefix + message)
        }

        var package: SimPackage? = nil
        if let label, !label.isEmpty {
            package = state.package(label: label)
            if let found = package {
                Self.unsellable(found, allowFinished: allowFinished).forEach(problem)
            } else {
                problem("Package \(label) was not found in the inventory of facility \(state.facility.licenseNumber).")
            }
        } else if line["PackageLabel"] == nil || line["PackageLabel"]!.isNull || label?.isEmpty == true {
            problem("PackageLabel is required.")
        }

        if let quantity {
            if quantity <= 0 { problem("Quantity must be greater than zero.") }
        } else if line["Quantity"] == nil || line["Quantity"]!.isNull {
            problem("Quantity is required.")
        }

        var unit: SimUnits.Unit? = nil
        if let unitName {
            unit = SimUnits.unit(named: unitName)
            if unit == nil { problem("UnitOfMeasure '\(unitName)' is not a valid unit of measure.") }
        } else if line["UnitOfMeasure"] == nil || line["UnitOfMeasure"]!.isNull {
            problem("UnitOfMeasure is required.")
        }

        if let totalAmount {
            if totalAmount < 0 { problem("TotalAmount must not be negative.") }
        } else if line["TotalAmount"] == nil || line["TotalAmount"]!.isNull {
            problem("TotalAmount is required.")
        }

        guard let package, let unit, let quantity, quantity > 0 else { return nil }
        let amount: Decimal
        do { amount = try packageAmount(quantity, unit, of: package) } catch {
            problem(error.message)
            return nil
        }
        let available = ledger.available(package)
        guard amount <= available else {
            problem("Package \(package.label) has \(available) \(package.unitOfMeasure) available; "
                + "this request would take \(amount) \(package.unitOfMeasure).")
            return nil
        }
        guard !failed, let totalAmount else { return nil }
        ledger.add(-amount, to: package)
        return SimTransaction(packageLabel: package.label, quantity: quantity, unitOfMeasure: unit.name,
                              totalAmount: totalAmount, discountAmount: reader.decimal("DiscountAmount"),
                              salesTax: reader.decimal("SalesTax"), exciseTax: reader.decimal("ExciseTax"))
    }

    /// A facility-local date and time (no zone), normalised to Metrc's `yyyy-MM-ddTHH:mm:ss.SSS`; nil, the problem
    /// told to `fail`, when it is missing (and `required`), carries a zone or is no date and time.
    static func localDateTime(_ key: String, of item: JSON, reader: inout FieldReader, required: Bool = true,
                              fail: (String) -> Void) -> String? {
        guard let text = reader.string(key) else {
            if required && (item[key] == nil || item[key]!.isNull) { fail("\(key) is required.") }
            return nil
        }
        guard let parsed = SimDateTime(text) else {
            fail("\(key) '\(text)' is not a valid date and time.")
            return nil
        }
        guard parsed.offsetSeconds == nil else {
            fail("\(key) '\(text)' must be the facility's local time without a time zone "
                + "(e.g. 2026-11-22T14:05:00.000), not UTC or an offset.")
            return nil
        }
        return parsed.localText
    }

    /// Why a package cannot be sold (or loaded on a vehicle) from, if it cannot.
    /// - Parameter allowFinished: upper-cased labels whose finished packages an edit may take from again.
    static func unsellable(_ package: SimPackage, allowFinished: Set<String> = []) -> [String] {
        var reasons: [String] = []
        if package.isFinished && !allowFinished.contains(package.label.uppercased()) {
            reasons.append("Package \(package.label) is finished and cannot be sold from.")
        }
        if package.isOnHold { reasons.append("Package \(package.label) is on hold and cannot be sold.") }
        if !["TestPassed", "NotRequired", "TestingInProgress"].contains(package.labTestingState) {
            reasons.append("Package \(package.label) has lab testing state \(package.labTestingState) and cannot be sold.")
        }
        return reasons
    }

    /// `quantity` of `unit` in the package's own unit, exactly: refused for another quantity type, for more decimal
    /// places than a package keeps, and for part of a count.
    func packageAmount(_ quantity: Decimal, _ unit: SimUnits.Unit, of package: SimPackage) throws(RowProblem) -> Decimal {
        guard let packageUnit = SimUnits.unit(named: package.unitOfMeasure) else {
            throw RowProblem("Package \(package.label) is kept in an unknown unit, \(package.unitOfMeasure).")
        }
        guard unit.quantityType == packageUnit.quantityType else {
            throw RowProblem("UnitOfMeasure \(unit.name) (\(unit.quantityType)) cannot be used for package \(package.label), "
                + "which is measured in \(packageUnit.name) (\(packageUnit.quantityType)).")
        }
        guard case .success(let amount) = SimUnits.convert(quantity, from: unit, to: packageUnit,
                                                           places: configuration.quantityDecimalPlaces) else {
            throw RowProblem("Quantity \(quantity) \(unit.name) does not convert exactly to \(packageUnit.name) within "
                + "\(configuration.quantityDecimalPlaces) decimal places for package \(package.label).")
        }
        if packageUnit.quantityType == "CountBased" && Int64(exactly: amount) == nil {
            throw RowProblem("Quantity \(quantity) is not a whole number of \(packageUnit.name) for package \(package.label).")
        }
        return amount
    }

    /// Puts what `lines` took back on their packages in `ledger` (`times: -1` takes it again); answers the packages'
    /// upper-cased labels.
    @discardableResult
    func giveBack(_ lines: [SimTransaction], state: FacilityState, to ledger: inout Ledger, times sign: Decimal = 1) -> Set<String> {
        var labels: Set<String> = []
        for line in lines {
            guard let package = state.package(label: line.packageLabel), let amount = deduction(of: line, from: package)
            else { continue }
            ledger.add(sign * amount, to: package)
            labels.insert(package.label.uppercased())
        }
        return labels
    }

    /// How much of `package`, in its own unit, a line took. Exact because it was checked when the line was taken.
    func deduction(of line: SimTransaction, from package: SimPackage) -> Decimal? {
        guard let from = SimUnits.unit(named: line.unitOfMeasure), let to = SimUnits.unit(named: package.unitOfMeasure),
              case .success(let amount) = SimUnits.convert(line.quantity, from: from, to: to,
                                                           places: configuration.quantityDecimalPlaces)
        else { return nil }
        return amount
    }

    /// Forgets receipt `id` as if Metrc had never recorded it (a lost write, a restored database): for tests of a
    /// receipt Till believes reported and Metrc lacks. Its quantities go back on the packages.
    public func loseReceipt(id: Int64) {
        guard let index = receiptIndex[id], let state = facilities[receiptList[index].license] else { return }
        let receipt = receiptList[index]
        if !receipt.archived {
            var ledger = Ledger()
            giveBack(receipt.transactions, state: state, to: &ledger)
            commit(ledger, license: receipt.license, at: now())
        }
        receiptList.remove(at: index)
        receiptIndex = Dictionary(uniqueKeysWithValues: receiptList.enumerated().map { ($0.element.id, $0.offset) })
    }

    /// Records a copy of receipt `id` (external number included) and takes its quantities again, as a second POST
    /// of the same receipt would: a duplicate planted behind a client's back. Nil when there is no such receipt.
    public func duplicateReceipt(id: Int64) -> SimReceipt? {
        guard let original = receipt(id: id), let state = facilities[original.license] else { return nil }
        var ledger = Ledger()
        giveBack(original.transactions, state: state, to: &ledger, times: -1)
        let stamp = now()
        commit(ledger, license: original.license, at: stamp)
        var copy = original
        copy.id = nextReceiptId
        copy.isFinal = false
        copy.recordedAt = stamp
        copy.lastModified = stamp
        nextReceiptId += 1
        receiptIndex[copy.id] = receiptList.count
        receiptList.append(copy)
        return copy
    }

    /// Writes a validated ledger back to the packages. A package given quantity back is unfinished, as Metrc does.
    func commit(_ ledger: Ledger, license: String, at stamp: Date) {
        guard var state = facilities[license] else { return }
        for (label, quantity) in ledger.quantities {
            guard let index = state.indexByLabel[label] else { continue }
            if quantity > state.packages[index].quantity { state.packages[index].isFinished = false }
            state.packages[index].quantity = quantity
            state.packages[index].lastModified = stamp
        }
        facilities[license] = state
    }
}
