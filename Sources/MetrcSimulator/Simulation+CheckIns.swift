import Foundation

/// The validated content of one posted or edited check-in, not yet applied.
struct CheckInDraft {
    /// As the registry spells it.
    var patientLicenseNumber: String
    var checkInLocationId: Int64
    var checkInDate: String
    var registrationStartDate: String?
    var registrationExpiryDate: String?
}

extension MetrcSimulation {
    // MARK: GET /patient-checkins/v2/locations

    /// The facility's locations, or without `licenseNumber` those of every facility (first of each Id).
    func checkInLocationList(_ scoped: ScopedRequest) -> SimHTTPResponse {
        var seen: Set<Int64> = []
        var items: [JSON] = []
        for license in scoped.license.map({ [$0] }) ?? facilityOrder {
            for location in facilities[license]!.facility.checkInLocations where seen.insert(location.id).inserted {
                items.append(.object([("Id", JSON(location.id)), ("Name", .string(location.name))]))
            }
        }
        return referenceList(items)
    }

    // MARK: GET /patient-checkins/v2

    /// The facility's check-ins that are not archived, in Id order, optionally those whose CheckInDate lies
    /// in `checkinDateStart…checkinDateEnd` (dates, or date-times taken as their date in the facility's zone).
    func listCheckIns(_ scoped: ScopedRequest) -> SimHTTPResponse {
        let license = scoped.license!
        let state = facilities[license]!
        let paging: Paging, days: ClosedRange<String>?
        do {
            paging = try parsePaging(scoped.query)
            days = try parseDays(scoped.query, in: state.timeZone)
        } catch {
            return error.response
        }
        let chosen = checkInList.filter { checkIn in
            checkIn.license == license && !checkIn.archived && (days?.contains(checkIn.checkInDate) ?? true)
        }
        return .json(200, paging.page(chosen, checkInJSON))
    }

    private func parseDays(_ query: [String: String], in zone: TimeZone) throws(EarlyAnswer) -> ClosedRange<String>? {
        let startText = query["checkindatestart"], endText = query["checkindateend"]
        if startText == nil && endText == nil { return nil }
        guard let startText, let endText else {
            throw EarlyAnswer(.message(400, "checkinDateStart and checkinDateEnd must be given together."))
        }
        func day(_ name: String, _ text: String) throws(EarlyAnswer) -> String {
            guard let day = SimDates.day(text, in: zone) else {
                throw EarlyAnswer(.message(400, "\(name) '\(text)' is not a date (yyyy-MM-dd) or an ISO 8601 date and time."))
            }
            return day
        }
        let start = try day("checkinDateStart", startText), end = try day("checkinDateEnd", endText)
        guard start <= end else { throw EarlyAnswer(.message(400, "checkinDateEnd must not be before checkinDateStart.")) }
        return start...end
    }

    // MARK: POST /patient-checkins/v2

    func postCheckIns(_ scoped: ScopedRequest) -> SimHTTPResponse {
        let items: [JSON]
        do { items = try bodyArray(scoped.request) } catch { return error.response }
        let license = scoped.license!
        let state = facilities[license]!
        var errors: [RowError] = []
        var drafts: [CheckInDraft] = []
        for (row, item) in items.enumerated() {
            if let draft = validateCheckIn(item, row: row, state: state, errors: &errors) { drafts.append(draft) }
        }
        guard errors.isEmpty else { return .rowErrors(errors) }

        let stamp = now()
        var ids: [JSON] = []
        for draft in drafts {
            let checkIn = SimCheckIn(
                id: nextCheckInId, license: license, patientLicenseNumber: draft.patientLicenseNumber,
                checkInLocationId: draft.checkInLocationId, checkInDate: draft.checkInDate,
                registrationStartDate: draft.registrationStartDate, registrationExpiryDate: draft.registrationExpiryDate,
                archived: false, recordedAt: stamp, lastModified: stamp)
            nextCheckInId += 1
            checkInList.append(checkIn)
            ids.append(JSON(checkIn.id))
        }
        return .json(200, .object([("Ids", .array(ids)), ("Warnings", .null)]))
    }

    // MARK: PUT /patient-checkins/v2

    func putCheckIns(_ scoped: ScopedRequest) -> SimHTTPResponse {
        let items: [JSON]
        do { items = try bodyArray(scoped.request) } catch { return error.response }
        let license = scoped.license!
        let state = facilities[license]!
        var errors: [RowError] = []
        var edits: [(index: Int, draft: CheckInDraft)] = []
        var seen: Set<Int64> = []
        for (row, item) in items.enumerated() {
            var reader = FieldReader(item)
            let id = reader.int64("Id")
            let draft = validateCheckIn(item, row: row, state: state, errors: &errors)
            errors += reader.errors.map { RowError(row: row, message: $0) }
            guard case .object = item, let id else {
                if case .object = item, reader.errors.isEmpty {
                    errors.append(RowError(row: row, message: "Id is required to edit a patient check-in."))
                }
                continue
            }
            guard let index = checkInList.firstIndex(where: { $0.id == id }), checkInList[index].license == license else {
                errors.append(RowError(row: row, message: "Patient check-in \(id) was not found in facility \(license)."))
                continue
            }
            guard seen.insert(id).inserted else {
                errors.append(RowError(row: row, message: "Patient check-in \(id) appears more than once in this request."))
                continue
            }
            if checkInList[index].archived {
                errors.append(RowError(row: row, message: "Patient check-in \(id) is archived and cannot be edited."))
            } else if let draft {
                edits.append((index, draft))
            }
        }
        guard errors.isEmpty else { return .rowErrors(errors.sorted { $0.row < $1.row }) }

        let stamp = now()
        for (index, draft) in edits {
            checkInList[index].patientLicenseNumber = draft.patientLicenseNumber
            checkInList[index].checkInLocationId = draft.checkInLocationId
            checkInList[index].checkInDate = draft.checkInDate
            checkInList[index].registrationStartDate = draft.registrationStartDate
            checkInList[index].registrationExpiryDate = draft.registrationExpiryDate
            checkInList[index].lastModified = stamp
        }
        return SimHTTPResponse(status: 200)
    }

    // MARK: DELETE /patient-checkins/v2/{id}

    func archiveCheckIn(id: Int64, _ scoped: ScopedRequest) -> SimHTTPResponse {
        guard let index = checkInList.firstIndex(where: { $0.id == id }) else {
            return .message(404, "Patient check-in \(id) was not found.")
        }
        guard checkInList[index].license == scoped.license else { return .unauthorized }
        guard !checkInList[index].archived else {
            return .rowErrors([RowError(row: 0, message: "Patient check-in \(id) is already archived.")])
        }
        checkInList[index].archived = true
        checkInList[index].lastModified = now()
        return SimHTTPResponse(status: 200)
    }

    // MARK: Validation and shape

    /// Checks one check-in's content; appends every problem found to `errors`.
    private func validateCheckIn(_ item: JSON, row: Int, state: FacilityState, errors: inout [RowError]) -> CheckInDraft? {
        let errorCountBefore = errors.count
        func fail(_ message: String) { errors.append(RowError(row: row, message: message)) }
        guard case .object = item else {
            fail("Each patient check-in must be a JSON object, not \(item.kindName).")
            return nil
        }
        let facility = state.facility
        if !facility.canReportPatientCheckIns {
            fail("Facility \(facility.licenseNumber) cannot report patient check-ins.")
        }
        var reader = FieldReader(item)

        var patient: SimPatient? = nil
        if let number = reader.string("PatientLicenseNumber"), !number.isEmpty {
            patient = state.patient(number)
            if patient == nil { fail("Patient \(number) is not a registered patient.") }
        } else if reader.errors.isEmpty {
            fail("PatientLicenseNumber is required.")
        }

        let locationErrors = reader.errors.count
        let locationId = reader.int64("CheckInLocationId")
        if let locationId {
            if !facility.checkInLocations.contains(where: { $0.id == locationId }) {
                fail("Check-in location \(locationId) was not found in facility \(facility.licenseNumber).")
            }
        } else if reader.errors.count == locationErrors {
            fail("CheckInLocationId is required.")
        }

        func day(_ key: String, required: Bool) -> String? {
            let before = reader.errors.count
            guard let text = reader.string(key) else {
                if required && reader.errors.count == before { fail("\(key) is required.") }
                return nil
            }
            guard let parsed = SimDates.day(text, in: state.timeZone) else {
                fail("\(key) '\(text)' is not a valid date (yyyy-MM-dd).")
                return nil
            }
            return parsed
        }
        let checkInDate = day("CheckInDate", required: true)
        let start = day("RegistrationStartDate", required: false) ?? patient?.registrationStartDate
        let expiry = day("RegistrationExpiryDate", required: false) ?? patient?.expirationDate
        if let start, let expiry, start > expiry {
            fail("RegistrationExpiryDate \(expiry) is before RegistrationStartDate \(start).")
        }
        errors += reader.errors.map { RowError(row: row, message: $0) }

        guard errors.count == errorCountBefore, let patient, let locationId, let checkInDate else { return nil }
        return CheckInDraft(patientLicenseNumber: patient.licenseNumber, checkInLocationId: locationId,
                            checkInDate: checkInDate, registrationStartDate: start, registrationExpiryDate: expiry)
    }

    func checkInJSON(_ checkIn: SimCheckIn) -> JSON {
        let location = facilities[checkIn.license]?.facility.checkInLocations.first { $0.id == checkIn.checkInLocationId }
        return .object([
            ("Id", JSON(checkIn.id)),
            ("PatientLicenseNumber", .string(checkIn.patientLicenseNumber)),
            ("CheckInDate", .string(checkIn.checkInDate)),
            ("CheckInLocationId", JSON(checkIn.checkInLocationId)),
            ("CheckInLocationName", JSON(location?.name)),
            ("RegistrationStartDate", JSON(checkIn.registrationStartDate)),
            ("RegistrationExpiryDate", JSON(checkIn.registrationExpiryDate)),
        ])
    }
}
