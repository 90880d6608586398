import Foundation

/// A package adjustment the simulation recorded.
public struct SimAdjustment: Sendable, Equatable {
    public var id: Int64
    public var license: String
    public var packageLabel: String
    /// In `unitOfMeasure`; negative took quantity off the package.
    public var quantity: Decimal
    public var unitOfMeasure: String
    public var reason: String
    public var note: String?
    /// "yyyy-MM-dd" as posted.
    public var adjustmentDate: String
    public var recordedAt: Date
}

/// One of Metrc's package adjustment reasons.
public struct SimAdjustReason: Sendable, Equatable {
    public var name: String
    public var requiresNote: Bool

    public init(name: String, requiresNote: Bool) {
        self.name = name
        self.requiresNote = requiresNote
    }

    /// Reasons Metrc facilities commonly have; "Waste" needs no note, "Damage" and "Theft" do.
    public static let standard = [
        SimAdjustReason(name: "Waste", requiresNote: false),
        SimAdjustReason(name: "Damage", requiresNote: true),
        SimAdjustReason(name: "Drying", requiresNote: false),
        SimAdjustReason(name: "Entry Error", requiresNote: true),
        SimAdjustReason(name: "Theft", requiresNote: true),
    ]
}

extension MetrcSimulation {
    /// The adjustments a facility recorded, in order.
    public func adjustments(license: String) -> [SimAdjustment] {
        adjustmentList.filter { $0.license == license }
    }

    // MARK: GET /packages/v2/adjust/reasons

    func adjustReasonList() -> SimHTTPResponse {
        let reasons = configuration.adjustReasons.map { reason in
            JSON.object([("Name", .string(reason.name)), ("RequiresNote", .bool(reason.requiresNote)),
                         ("RequiresWasteWeight", .bool(false)), ("RequiresImmatureWasteWeight", .bool(false)),
                         ("RequiresMatureWasteWeight", .bool(false))])
        }
        return .json(200, configuration.referenceListsInEnvelope
            ? Self.envelope(reasons, page: 1, pageSize: reasons.count, total: reasons.count) : .array(reasons))
    }

    // MARK: POST /packages/v2/adjust

    /// Adds the quantity (in any unit of the package's quantity type, exactly) to each package; refuses the
    /// whole request when any row is wrong: an unknown package or reason, a missing note the reason needs, or
    /// more taken than the package holds.
    func postAdjustments(_ scoped: ScopedRequest) -> SimHTTPResponse {
        let items: [JSON]
        do { items = try bodyArray(scoped.request) } catch { return error.response }
        let license = scoped.license!
        let state = facilities[license]!
        var ledger = shopLedger(license: license)
        var errors: [RowError] = []
        var drafts: [SimAdjustment] = []
        for (row, item) in items.enumerated() {
            func fail(_ message: String) { errors.append(RowError(row: row, message: message)) }
            guard case .object = item else {
                fail("Each adjustment must be a JSON object, not \(item.kindName).")
                continue
            }
            var reader = FieldReader(item)
            let label = reader.string("Label"), quantity = reader.decimal("Quantity"), unitName = reader.string("UnitOfMeasure")
            let reasonName = reader.string("AdjustmentReason"), date = reader.string("AdjustmentDate")
            let note = reader.string("ReasonNote").flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
            errors += reader.errors.map { RowError(row: row, message: $0) }
            guard let label else { fail("Label is required."); continue }
            guard let package = state.package(label: label) else {
                fail("Package \(label) was not found in facility \(license).")
                continue
            }
            guard let quantity, quantity != 0 else { fail("Quantity is required and must not be zero."); continue }
            guard let unitName, let unit = SimUnits.unit(named: unitName), let packageUnit = SimUnits.unit(named: package.unitOfMeasure)
            else { fail("UnitOfMeasure '\(unitName ?? "")' is not a unit of measure."); continue }
            guard case .success(let amount) = SimUnits.convert(quantity, from: unit, to: packageUnit,
                                                               places: configuration.quantityDecimalPlaces) else {
                fail("\(quantity) \(unit.name) cannot be applied exactly to package \(label), kept in \(packageUnit.name).")
                continue
            }
            guard let reason = configuration.adjustReasons.first(where: { $0.name.lowercased() == (reasonName ?? "").lowercased() }) else {
                fail("AdjustmentReason '\(reasonName ?? "")' is not an adjustment reason of this facility.")
                continue
            }
            if reason.requiresNote && note == nil { fail("A ReasonNote is required for adjustment reason \(reason.name).") }
            guard let date, let day = SimDates.day(date, in: state.timeZone) else {
                fail("AdjustmentDate must be a date (yyyy-MM-dd).")
                continue
            }
            guard ledger.available(package) + amount >= 0 else {
                fail("Package \(label) has \(ledger.available(package)) \(packageUnit.name); it cannot be adjusted by \(amount).")
                continue
            }
            ledger.add(amount, to: package)
            drafts.append(SimAdjustment(id: 0, license: license, packageLabel: package.label, quantity: quantity,
                                        unitOfMeasure: unit.name, reason: reason.name, note: note, adjustmentDate: day,
                                        recordedAt: now()))
        }
        guard errors.isEmpty else { return .rowErrors(errors) }
        let stamp = now()
        commit(ledger, license: license, at: stamp)
        for var draft in drafts {
            draft.id = nextAdjustmentId
            draft.recordedAt = stamp
            nextAdjustmentId += 1
            adjustmentList.append(draft)
        }
        return SimHTTPResponse(status: 200)
    }

    // MARK: GET /packages/v2/adjustments

    func listAdjustments(_ scoped: ScopedRequest) -> SimHTTPResponse {
        let paging: Paging
        do { paging = try parsePaging(scoped.query) } catch { return error.response }
        return .json(200, paging.page(adjustments(license: scoped.license!)) { adjustment in
            .object([("Id", JSON(adjustment.id)), ("PackageLabel", .string(adjustment.packageLabel)),
                     ("AdjustmentQuantity", .number(adjustment.quantity)),
                     ("AdjustmentUnitOfMeasureName", .string(adjustment.unitOfMeasure)),
                     ("AdjustmentReasonName", .string(adjustment.reason)), ("AdjustmentNote", JSON(adjustment.note)),
                     ("AdjustmentDate", .string(adjustment.adjustmentDate))])
        })
    }
}
