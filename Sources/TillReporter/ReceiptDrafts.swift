import MetrcKit
import TillDomain
import TillStore

extension MetrcReceiptDraft {
    /// The receipt Metrc gets for a journaled sale; `ExternalReceiptNumber` is Till's receipt number,
    /// which is how an uncertain earlier attempt is found again.
    init(sale: Sale) {
        self.init(
            salesDateTime: sale.salesDateTime,
            salesCustomerType: sale.customerType.rawValue,
            patientLicenseNumber: sale.patientLicenseNumber,
            caregiverLicenseNumber: sale.caregiverLicenseNumber,
            identificationMethod: sale.identificationMethod,
            patientRegistrationLocationId: sale.patientRegistrationLocationId,
            externalReceiptNumber: sale.receiptNumber,
            transactions: sale.lines.map { line in
                MetrcTransactionDraft(
                    packageLabel: line.packageLabel,
                    quantity: line.quantity,
                    unitOfMeasure: line.unit,
                    totalAmount: line.totalAmount.decimal,
                    discountAmount: line.discountAmount?.decimal,
                    salesTax: line.taxes?.salesTax?.decimal,
                    exciseTax: line.taxes?.exciseTax?.decimal,
                    cityTax: line.taxes?.cityTax?.decimal,
                    countyTax: line.taxes?.countyTax?.decimal,
                    municipalTax: line.taxes?.municipalTax?.decimal)
            })
    }
}

/// The JSON objects Till journals for Metrc: what each local change sends, written by MetrcKit.
public enum MetrcBodies {
    /// A sale's receipt, as `POST /sales/v2/receipts` takes it.
    @Sendable public static func receipt(_ sale: Sale) -> String {
        MetrcReceiptDraft(sale: sale).jsonObject
    }

    /// A check-in, as `POST /patient-checkins/v2/` takes it.
    @Sendable public static func checkIn(_ checkIn: PatientCheckInRecord) -> String {
        MetrcPatientCheckInDraft(patientLicenseNumber: checkIn.patientLicenseNumber,
                                 checkInLocationId: checkIn.checkInLocationId,
                                 registrationStartDate: checkIn.registrationStartDate,
                                 registrationExpiryDate: checkIn.registrationExpiryDate,
                                 checkInDate: checkIn.checkInDate).jsonObject
    }

    /// `{"Id":n}`: a receipt to archive, finalize or unfinalize (`null` until Metrc has given its Id).
    @Sendable public static func receiptId(_ id: Int64?) -> String {
        MetrcIdBody(id: id).jsonObject
    }
}

extension MetrcError {
    /// One line for the journal, logs and `/v1/reporting`; never carries a key.
    var summary: String {
        switch self {
        case .rejected(let rows): "Metrc refused: " + rows.map(\.message).joined(separator: "; ")
        case .unauthorized(let status, let message): "Metrc refused the API keys (\(status))" + (message.map { ": \($0)" } ?? "")
        case .rateLimited: "Metrc rate limit (429)"
        case .transient(let reason, _): "Metrc unavailable: \(reason)"
        case .ambiguous(let reason): "No answer from Metrc after sending: \(reason)"
        case .notFound: "Metrc answered 404"
        case .invalidResponse(let reason): "Unreadable answer from Metrc: \(reason)"
        }
    }
}
