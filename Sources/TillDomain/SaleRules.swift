import Foundation

/// The rules a sale must pass before anything is journaled.
public enum SaleRules {
    /// Lab-testing states Metrc lets a dispensary sell from.
    public static let sellableLabTestingStates: Set<String> = ["TestPassed", "RetestPassed", "NotRequired"]
    public static let maxLines = 100
    public static let maxClientSaleIdLength = 64

    /// Checks what needs no stored data: identifiers, line count, quantities and money.
    public static func checkShape(_ request: SaleRequest) throws(TillError) {
        let id = request.clientSaleId
        guard !id.isEmpty, id.utf8.count <= maxClientSaleIdLength, id.utf8.allSatisfy(isClientSaleIdByte) else {
            throw .invalid("invalid_client_sale_id",
                           "clientSaleId must be 1 to \(maxClientSaleIdLength) letters, digits, '-', '_', '.' or ':'.")
        }
        guard !request.lines.isEmpty else {
            throw .invalid("no_lines", "A sale needs at least one line.")
        }
        guard request.lines.count <= maxLines else {
            throw .invalid("too_many_lines", "A sale has at most \(maxLines) lines.",
                           details: ["lines": "\(request.lines.count)"])
        }
        for (index, line) in request.lines.enumerated() {
            let at = ["line": "\(index)"]
            guard !line.packageLabel.isEmpty else {
                throw .invalid("invalid_package_label", "Line \(index) has no packageLabel.", details: at)
            }
            guard line.quantity > 0 else {
                throw .invalid("invalid_quantity", "Line \(index): quantity must be greater than zero.", details: at)
            }
            guard Quantities.hasAtMost(Quantities.inputDecimalPlaces, decimalPlacesIn: line.quantity),
                  Quantities.picos(exactly: line.quantity) != nil else {
                throw .invalid("invalid_quantity", "Line \(index): quantity has more than six decimal places.", details: at)
            }
            guard UnitOfMeasure.named(line.unit) != nil else {
                throw .invalid("unknown_unit", "Line \(index): unit '\(line.unit)' is not a Metrc unit of measure.",
                               details: at.merging(["units": UnitOfMeasure.all.map(\.name).joined(separator: ", ")]) { a, _ in a })
            }
            let amounts = [line.totalAmount, line.discountAmount, line.taxes?.salesTax, line.taxes?.exciseTax,
                           line.taxes?.cityTax, line.taxes?.countyTax, line.taxes?.municipalTax].compactMap { $0 }
            guard amounts.allSatisfy({ $0.cents >= 0 }) else {
                throw .invalid("invalid_amount", "Line \(index): amounts cannot be negative.", details: at)
            }
        }
        switch request.customerType {
        case .patient, .externalPatient:
            guard request.patientLicenseNumber?.isEmpty == false else {
                throw .invalid("patient_license_required", "A \(request.customerType.rawValue) sale needs patientLicenseNumber.")
            }
        case .caregiver:
            guard request.patientLicenseNumber?.isEmpty == false, request.caregiverLicenseNumber?.isEmpty == false else {
                throw .invalid("caregiver_license_required",
                               "A Caregiver sale needs caregiverLicenseNumber and the patient's patientLicenseNumber.")
            }
        case .consumer, .nonResidentConsumer:
            break
        }
    }

    /// ASCII letters, digits and `-_.:` (tested on bytes: CharacterSet lookups were a visible cost per sale).
    private static func isClientSaleIdByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"): true
        default: false
        }
    }

    /// Checks every line against local stock and returns what each line takes off its package.
    public static func validate(_ request: SaleRequest, packages: [String: PackageSnapshot]) throws(TillError) -> [ValidatedLine] {
        try checkShape(request)
        var takenPicos: [String: Int64] = [:]
        var validated: [ValidatedLine] = []
        for (index, line) in request.lines.enumerated() {
            let at = ["line": "\(index)", "packageLabel": line.packageLabel]
            guard let package = packages[line.packageLabel] else {
                throw .unprocessable("unknown_package", "Package \(line.packageLabel) is not in this facility's stock.", details: at)
            }
            guard package.active else {
                throw .unprocessable("package_inactive", "Package \(line.packageLabel) is no longer active in Metrc.", details: at)
            }
            guard !package.onHold else {
                throw .unprocessable("package_on_hold", "Package \(line.packageLabel) is on hold and cannot be sold.", details: at)
            }
            guard let labState = package.labTestingState, sellableLabTestingStates.contains(labState) else {
                throw .unprocessable("lab_test_not_passed",
                                     "Package \(line.packageLabel) has not passed lab testing (\(package.labTestingState ?? "unknown")).",
                                     details: at)
            }
            guard let saleUnit = UnitOfMeasure.named(line.unit) else {
                throw .invalid("unknown_unit", "Line \(index): unit '\(line.unit)' is not a Metrc unit of measure.",
                               details: at.merging(["units": UnitOfMeasure.all.map(\.name).joined(separator: ", ")]) { a, _ in a })
            }
            guard let packageUnit = UnitOfMeasure.named(package.unit) else {
                throw .unprocessable("unknown_package_unit", "Package \(line.packageLabel) is kept in '\(package.unit)', which Till cannot convert.", details: at)
            }
            guard saleUnit.kind == packageUnit.kind else {
                throw .unprocessable("incompatible_unit",
                                     "Line \(index): \(saleUnit.name) cannot be taken from a package kept in \(packageUnit.name).",
                                     details: at)
            }
            guard let decrement = Quantities.convert(line.quantity, from: saleUnit, to: packageUnit),
                  let decrementPicos = Quantities.picos(exactly: decrement) else {
                throw .unprocessable("inexact_unit_conversion",
                                     "Line \(index): \(line.quantity) \(saleUnit.name) is not an exact amount of \(packageUnit.name); sell it in \(packageUnit.name).",
                                     details: at)
            }
            let taken = takenPicos[line.packageLabel, default: 0] + decrementPicos
            guard let availablePicos = Quantities.picos(exactly: package.quantity), taken <= availablePicos else {
                throw .unprocessable("insufficient_quantity",
                                     "Package \(line.packageLabel) has \(package.quantity) \(packageUnit.name) left; this sale needs \(Quantities.decimal(picos: taken)).",
                                     details: at.merging(["available": "\(package.quantity)", "unit": packageUnit.name]) { a, _ in a })
            }
            takenPicos[line.packageLabel] = taken
            validated.append(ValidatedLine(request: line, unitName: saleUnit.name, packageDecrementPicos: decrementPicos))
        }
        return validated
    }
}
