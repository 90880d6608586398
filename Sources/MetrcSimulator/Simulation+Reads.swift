import Foundation

extension MetrcSimulation {
    // MARK: Reference data

    func facilityList() -> SimHTTPResponse {
        .json(200, .array(facilityOrder.compactMap { facilities[$0].map { Self.facilityJSON($0.facility) } }))
    }

    func unitsOfMeasure(active: Bool) -> SimHTTPResponse {
        let units: [JSON] = active ? SimUnits.all.map { unit in
            .object([("QuantityType", .string(unit.quantityType)), ("Name", .string(unit.name)),
                     ("Abbreviation", .string(unit.abbreviation))])
        } : []
        return referenceList(units)
    }

    func customerTypeList() -> SimHTTPResponse {
        referenceList(configuration.customerTypes.map(JSON.string))
    }

    /// A reference list, in the v2 envelope or bare as `referenceListsInEnvelope` says.
    func referenceList(_ items: [JSON]) -> SimHTTPResponse {
        guard configuration.referenceListsInEnvelope else { return .json(200, .array(items)) }
        return .json(200, Self.envelope(items, page: 1, pageSize: items.count, total: items.count))
    }

    // MARK: Packages

    func packageList(_ list: MetrcRoute.PackageList, _ scoped: ScopedRequest) -> SimHTTPResponse {
        let paging: Paging, window: DateInterval?
        do {
            paging = try parsePaging(scoped.query)
            window = try parseWindow(scoped.query, start: "lastModifiedStart", end: "lastModifiedEnd")
        } catch {
            return error.response
        }
        let state = facilities[scoped.license!]!
        let chosen = state.packages
            .filter { package in
                switch list {
                // A package sold down to zero stays active until someone finishes it, as in Metrc.
                case .active: !package.isFinished
                case .onHold: !package.isFinished && package.isOnHold
                case .inactive: package.isFinished
                }
            }
            .filter { package in window.map { $0.contains(package.lastModified!) } ?? true }
            .sorted { $0.id < $1.id }
        return .json(200, paging.page(chosen) { Self.packageJSON($0, facility: state.facility) })
    }

    func packageLookup(_ scoped: ScopedRequest, where matches: (SimPackage) -> Bool) -> SimHTTPResponse {
        for license in facilityOrder {
            guard let state = facilities[license], let package = state.packages.first(where: matches) else { continue }
            if let wanted = scoped.license, wanted != license { return .unauthorized }
            return .json(200, Self.packageJSON(package, facility: state.facility))
        }
        return .message(404, "Package not found.")
    }

    // MARK: Receipts

    func listReceipts(active: Bool, _ scoped: ScopedRequest) -> SimHTTPResponse {
        let state = facilities[scoped.license!]!
        let paging: Paging, window: ListWindow?
        do {
            paging = try parsePaging(scoped.query)
            window = try parseListWindow(scoped.query)
        } catch {
            return error.response
        }
        let chosen = receiptList.filter { receipt in
            guard receipt.license == scoped.license, receipt.archived != active else { return false }
            switch window {
            case nil: return true
            case .lastModified(let interval): return interval.contains(receipt.lastModified)
            case .salesDate(let interval):
                // SalesDateTime is the facility's wall-clock time: place it in the facility's zone to compare.
                guard let instant = salesInstant(of: receipt, in: state.timeZone) else { return false }
                return interval.contains(instant)
            }
        }
        return .json(200, paging.page(chosen, receiptJSON))
    }

    /// A receipt's SalesDateTime as an instant, worked out once per receipt and time (a day's listing asks for
    /// every receipt of the facility on every page).
    func salesInstant(of receipt: SimReceipt, in zone: TimeZone) -> Date? {
        if let known = salesInstants[receipt.id], known.text == receipt.salesDateTime { return known.instant }
        guard let local = SimDateTime(receipt.salesDateTime) else { return nil }
        let instant = local.date(in: zone)
        salesInstants[receipt.id] = (receipt.salesDateTime, instant)
        return instant
    }

    func receiptLookup(id: Int64, _ scoped: ScopedRequest) -> SimHTTPResponse {
        guard let receipt = receipt(id: id) else { return .message(404, "Sales receipt \(id) was not found.") }
        if let wanted = scoped.license, wanted != receipt.license { return .unauthorized }
        return .json(200, receiptJSON(receipt))
    }

    func externalLookup(_ number: String, _ scoped: ScopedRequest) -> SimHTTPResponse {
        let paging: Paging
        do { paging = try parsePaging(scoped.query) } catch { return error.response }
        let everywhere = receiptList.filter { $0.externalReceiptNumber == number }
        let matches = everywhere.filter { scoped.license == nil || $0.license == scoped.license }
        guard !matches.isEmpty else {
            // Metrc has been seen answering 401 here, for a number it does not know or that belongs elsewhere.
            if !everywhere.isEmpty { return .unauthorized }
            let status = configuration.externalLookupMissStatus
            return status == 401 ? .unauthorized
                : .message(status, "No sales receipt with external number \(number) was found.")
        }
        return .json(200, paging.page(matches, receiptJSON))
    }

    // MARK: Paging and filters

    struct Paging {
        /// nil when the client gave neither pageNumber nor pageSize: everything on one page.
        var number: Int?
        var size: Int?

        /// The page asked for, each item written as JSON: only the page's items are written, so paging through
        /// a long list costs each request its page, not the whole list.
        func page<Item>(_ items: [Item], _ json: (Item) -> JSON) -> JSON {
            guard let number, let size else {
                return MetrcSimulation.envelope(items.map(json), page: 1, pageSize: items.count, total: items.count)
            }
            let start = min(items.count, (number - 1) * size)
            let slice = items[start..<min(items.count, start + size)].map(json)
            return MetrcSimulation.envelope(slice, page: number, pageSize: size, total: items.count)
        }
    }

    func parsePaging(_ query: [String: String]) throws(EarlyAnswer) -> Paging {
        let numberText = query["pagenumber"], sizeText = query["pagesize"]
        if numberText == nil && sizeText == nil { return Paging() }
        let number = numberText.map { Int($0) } ?? 1
        let size = sizeText.map { Int($0) } ?? configuration.maxPageSize
        guard let number, number >= 1 else { throw EarlyAnswer(.message(400, "pageNumber must be a whole number of at least 1.")) }
        guard let size, size >= 1 else { throw EarlyAnswer(.message(400, "pageSize must be a whole number of at least 1.")) }
        guard size <= configuration.maxPageSize else {
            throw EarlyAnswer(.message(400, "The page size of \(size) exceeds the maximum of \(configuration.maxPageSize)."))
        }
        return Paging(number: number, size: size)
    }

    /// A list's date filter.
    enum ListWindow {
        /// `salesDateStart/End`: SalesDateTime, the facility's wall clock, placed in its zone.
        case salesDate(DateInterval)
        /// `lastModifiedStart/End`.
        case lastModified(DateInterval)
    }

    /// `salesDateStart/End` (when the list offers it) or `lastModifiedStart/End`, not both; nil when neither is given.
    func parseListWindow(_ q: [String: String], salesDates: Bool = true) throws(EarlyAnswer) -> ListWindow? {
        let bySalesDate = salesDates && (q["salesdatestart"] != nil || q["salesdateend"] != nil)
        let byLastModified = q["lastmodifiedstart"] != nil || q["lastmodifiedend"] != nil
        if bySalesDate && byLastModified {
            throw EarlyAnswer(.message(400, "Sales date and last modified filters cannot be combined; use one or the other."))
        }
        if bySalesDate {
            return try parseWindow(q, start: "salesDateStart", end: "salesDateEnd").map(ListWindow.salesDate)
        }
        return try parseWindow(q, start: "lastModifiedStart", end: "lastModifiedEnd").map(ListWindow.lastModified)
    }

    /// A start/end pair of query timestamps (ISO 8601 with `Z` or an offset), at most 24 hours apart, both
    /// ends included; nil when neither is given.
    func parseWindow(_ query: [String: String], start: String, end: String) throws(EarlyAnswer) -> DateInterval? {
        let startText = query[start.lowercased()], endText = query[end.lowercased()]
        if startText == nil && endText == nil { return nil }
        guard let startText, let endText else {
            throw EarlyAnswer(.message(400, "\(start) and \(end) must be given together."))
        }
        func instant(_ name: String, _ text: String) throws(EarlyAnswer) -> Date {
            guard let parsed = SimDateTime(text), parsed.offsetSeconds != nil else {
                throw EarlyAnswer(.message(400, "\(name) '\(text)' is not an ISO 8601 date and time with a time zone, "
                    + "e.g. 2026-11-22T07:00:00Z (send '+' as %2B)."))
            }
            return parsed.date(in: TimeZone(identifier: "UTC")!)
        }
        let from = try instant(start, startText), to = try instant(end, endText)
        guard from <= to else { throw EarlyAnswer(.message(400, "\(end) must not be before \(start).")) }
        guard to.timeIntervalSince(from) <= 24 * 3600 else {
            throw EarlyAnswer(.message(400, "The date range between \(start) and \(end) cannot exceed 24 hours."))
        }
        return DateInterval(start: from, end: to)
    }

    static func envelope(_ items: [JSON], page: Int, pageSize: Int, total: Int) -> JSON {
        let pages = pageSize == 0 ? (total == 0 ? 0 : 1) : (total + pageSize - 1) / pageSize
        return .object([
            ("Data", .array(items)),
            ("Total", JSON(total)),
            ("TotalRecords", JSON(total)),
            ("PageSize", JSON(pageSize)),
            ("RecordsOnPage", JSON(items.count)),
            ("Page", JSON(page)),
            ("CurrentPage", JSON(page)),
            ("TotalPages", JSON(pages)),
        ])
    }

    // MARK: Wire shapes (PascalCase, as Metrc writes them)

    static func facilityJSON(_ f: SimFacility) -> JSON {
        .object([
            ("HireDate", .string("2024-01-01")),
            ("IsOwner", .bool(false)),
            ("IsManager", .bool(true)),
            ("Occupations", .array([])),
            ("Name", .string(f.name)),
            ("Alias", .string(f.name)),
            ("DisplayName", .string(f.name)),
            ("CredentialedDate", .string("2024-01-01")),
            ("SupportActivationDate", .null),
            ("SupportExpirationDate", .null),
            ("SupportLastPaidDate", .null),
            ("FacilityType", .object([
                ("IsMedical", .bool(f.canSellToPatients)),
                ("IsRetail", .bool(f.canSellToConsumers)),
                ("IsHemp", .bool(false)),
                ("IsSalesDeliveryHub", .bool(false)),
                ("CanGrowPlants", .bool(false)),
                ("CanCreateOpeningBalancePackages", .bool(false)),
                ("CanCreateDerivedPackages", .bool(false)),
                ("CanTestPackages", .bool(false)),
                ("CanSellToConsumers", .bool(f.canSellToConsumers)),
                ("CanSellToPatients", .bool(f.canSellToPatients)),
                ("CanSellToExternalPatients", .bool(f.canSellToExternalPatients)),
                ("CanSellToCaregivers", .bool(f.canSellToCaregivers)),
                ("AdvancedSales", .bool(false)),
                ("SalesRequirePatientNumber", .bool(f.canSellToPatients)),
                ("SalesRequireExternalPatientNumber", .bool(f.canSellToExternalPatients)),
                ("SalesRequireExternalPatientIdentificationMethod", .bool(false)),
                ("SalesRequireCaregiverNumber", .bool(f.canSellToCaregivers)),
                ("SalesRequireCaregiverPatientNumber", .bool(false)),
                ("CanHaveMemberPatients", .bool(false)),
                ("CanReportPatientCheckIns", .bool(f.canReportPatientCheckIns)),
            ] + f.deliveryFlags.facilityTypeMembers)),
            ("License", .object([
                ("Number", .string(f.licenseNumber)),
                ("StartDate", .string("2024-01-01")),
                ("EndDate", .string("2099-12-31")),
                ("LicenseType", .string(f.licenseType)),
            ])),
        ])
    }

    static func packageJSON(_ p: SimPackage, facility: SimFacility) -> JSON {
        let unit = SimUnits.unit(named: p.unitOfMeasure)
        return .object([
            ("Id", JSON(p.id)),
            ("Label", .string(p.label)),
            ("PackageType", .string("Product")),
            ("SourceHarvestNames", JSON(p.strainName.map { "\($0) Harvest" })),
            ("SourceHarvestCount", JSON(p.strainName == nil ? 0 : 1)),
            ("LocationId", .null),
            ("LocationName", .null),
            ("LocationTypeName", .null),
            ("Quantity", .number(p.quantity)),
            ("UnitOfMeasureName", .string(unit?.name ?? p.unitOfMeasure)),
            ("UnitOfMeasureAbbreviation", JSON(unit?.abbreviation)),
            ("PatientLicenseNumber", .null),
            ("ItemFromFacilityLicenseNumber", .string(facility.licenseNumber)),
            ("ItemFromFacilityName", .string(facility.name)),
            ("Note", .null),
            ("PackagedDate", .string("2026-01-05")),
            ("InitialLabTestingState", .string(p.labTestingState)),
            ("LabTestingState", .string(p.labTestingState)),
            ("LabTestingStateDate", .string("2026-01-07")),
            ("IsProductionBatch", .bool(false)),
            ("ProductionBatchNumber", .null),
            ("SourceProductionBatchNumbers", .null),
            ("IsTradeSample", .bool(false)),
            ("IsDonation", .bool(false)),
            ("IsTestingSample", .bool(false)),
            ("ProductRequiresRemediation", .bool(false)),
            ("ContainsRemediatedProduct", .bool(false)),
            ("RemediationDate", .null),
            ("ReceivedDateTime", .string("2026-01-10")),
            ("ReceivedFromManifestNumber", .string("0000012345")),
            ("ReceivedFromFacilityLicenseNumber", .string("LIC-MFG-0042")),
            ("ReceivedFromFacilityName", .string("Front Range Manufacturing")),
            ("IsOnHold", .bool(p.isOnHold)),
            ("ArchivedDate", .null),
            ("FinishedDate", p.isFinished ? .string(String(SimDates.utcText(p.lastModified!).prefix(10))) : .null),
            ("IsFinished", .bool(p.isFinished)),
            ("LastModified", .string(SimDates.utcText(p.lastModified!))),
            ("Item", .object([
                ("Id", JSON(p.id + 2_000_000)),
                ("Name", .string(p.itemName)),
                ("ProductCategoryName", .string(p.category)),
                ("ProductCategoryType", .string(p.categoryType)),
                ("QuantityType", .string(p.quantityType)),
                ("DefaultLabTestingState", .string("NotSubmitted")),
                ("UnitOfMeasureName", .string(unit?.name ?? p.unitOfMeasure)),
                ("ApprovalStatus", .string("Approved")),
                ("StrainId", .null),
                ("StrainName", JSON(p.strainName)),
                ("UnitThcContent", JSON(p.unitThcContent)),
                ("UnitThcContentUnitOfMeasureName", JSON(p.unitThcContentUnitOfMeasure)),
                ("UnitVolume", JSON(p.unitVolume)),
                ("UnitVolumeUnitOfMeasureName", JSON(p.unitVolumeUnitOfMeasure)),
                ("UnitWeight", JSON(p.unitWeight)),
                ("UnitWeightUnitOfMeasureName", JSON(p.unitWeightUnitOfMeasure)),
            ])),
            ("ExpirationDate", .null),
            ("SellByDate", .null),
            ("UseByDate", .null),
        ])
    }

    func receiptJSON(_ r: SimReceipt) -> JSON {
        let state = facilities[r.license]
        let archived: JSON = r.archivedDate.map { .string(SimDates.utcText($0)) } ?? .null
        let lines: [JSON] = r.transactions.map { t in
            saleTransactionJSON(t, package: state?.package(label: t.packageLabel), salesDeliveryState: nil,
                                archivedDate: r.archivedDate, recordedAt: r.recordedAt, lastModified: r.lastModified)
        }
        return .object([
            ("Id", JSON(r.id)),
            ("ReceiptNumber", JSON(r.receiptNumber)),
            ("SalesDateTime", .string(r.salesDateTime)),
            ("SalesCustomerType", .string(r.salesCustomerType)),
            ("PatientLicenseNumber", JSON(r.patientLicenseNumber)),
            ("CaregiverLicenseNumber", JSON(r.caregiverLicenseNumber)),
            ("IdentificationMethod", JSON(r.identificationMethod)),
            ("ExternalReceiptNumber", JSON(r.externalReceiptNumber)),
            ("TotalPackages", JSON(r.transactions.count)),
            ("TotalPrice", .number(r.totalPrice)),
            ("Transactions", .array(lines)),
            ("IsFinal", .bool(r.isFinal)),
            ("ArchivedDate", archived),
            ("RecordedDateTime", .string(SimDates.utcText(r.recordedAt))),
            ("RecordedByUserName", .string("Till Simulator")),
            ("LastModified", .string(SimDates.utcText(r.lastModified))),
        ])
    }

    /// A receipt's or a sales delivery's line as Metrc writes it (`SaleTransaction`), with its package's item.
    func saleTransactionJSON(_ t: SimTransaction, package: SimPackage?, salesDeliveryState: String?, archivedDate: Date?,
                             recordedAt: Date, lastModified: Date) -> JSON {
        let unit = SimUnits.unit(named: t.unitOfMeasure)
        return .object([
            ("PackageId", JSON(package?.id ?? 0)),
            ("PackageLabel", .string(t.packageLabel)),
            ("ProductName", JSON(package?.itemName)),
            ("ProductCategoryName", JSON(package?.category)),
            ("ItemStrainName", JSON(package?.strainName)),
            ("ItemUnitThcContent", JSON(package?.unitThcContent)),
            ("ItemUnitThcContentUnitOfMeasureName", JSON(package?.unitThcContentUnitOfMeasure)),
            ("ItemUnitVolume", JSON(package?.unitVolume)),
            ("ItemUnitVolumeUnitOfMeasureName", JSON(package?.unitVolumeUnitOfMeasure)),
            ("ItemUnitWeight", JSON(package?.unitWeight)),
            ("ItemUnitWeightUnitOfMeasureName", JSON(package?.unitWeightUnitOfMeasure)),
            ("QuantitySold", .number(t.quantity)),
            ("UnitOfMeasureName", .string(t.unitOfMeasure)),
            ("UnitOfMeasureAbbreviation", JSON(unit?.abbreviation)),
            ("TotalPrice", .number(t.totalAmount)),
            ("SalesDeliveryState", JSON(salesDeliveryState)),
            ("ArchivedDate", JSON(archivedDate.map(SimDates.utcText))),
            ("RecordedDateTime", .string(SimDates.utcText(recordedAt))),
            ("RecordedByUserName", .string("Till Simulator")),
            ("LastModified", .string(SimDates.utcText(lastModified))),
        ])
    }
}
