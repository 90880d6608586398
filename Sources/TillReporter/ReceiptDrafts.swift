import MetrcKit
import TillDomain

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

extension MetrcError {
    /// One line for the outbox, logs and `/v1/reporting`; never carries a key.
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
