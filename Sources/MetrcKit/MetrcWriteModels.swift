import Foundation
import JSONWriting

/// One line of a sales receipt as sent to Metrc: which package, how much, for how much.
public struct MetrcTransactionDraft: Sendable, Equatable, Encodable {
    public var packageLabel: String
    public var quantity: Decimal
    /// A unit name such as "Grams", "Ounces", "Each".
    public var unitOfMeasure: String
    public var totalAmount: Decimal
    public var price: Decimal?
    public var discountAmount: Decimal?
    public var subTotal: Decimal?
    public var salesTax: Decimal?
    public var exciseTax: Decimal?
    public var cityTax: Decimal?
    public var countyTax: Decimal?
    public var municipalTax: Decimal?
    public var invoiceNumber: String?
    /// Retail ID codes scanned for this line.
    public var qrCodes: [String]?
    public var unitThcPercent: Decimal?
    public var unitThcContent: Decimal?
    public var unitThcContentUnitOfMeasure: String?
    public var unitWeight: Decimal?
    public var unitWeightUnitOfMeasure: String?

    public init(packageLabel: String, quantity: Decimal, unitOfMeasure: String, totalAmount: Decimal,
                price: Decimal? = nil, discountAmount: Decimal? = nil, subTotal: Decimal? = nil,
                salesTax: Decimal? = nil, exciseTax: Decimal? = nil, cityTax: Decimal? = nil,
                countyTax: Decimal? = nil, municipalTax: Decimal? = nil, invoiceNumber: String? = nil,
                qrCodes: [String]? = nil, unitThcPercent: Decimal? = nil, unitThcContent: Decimal? = nil,
                unitThcContentUnitOfMeasure: String? = nil, unitWeight: Decimal? = nil,
                unitWeightUnitOfMeasure: String? = nil) {
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unitOfMeasure = unitOfMeasure
        self.totalAmount = totalAmount
        self.price = price
        self.discountAmount = discountAmount
        self.subTotal = subTotal
        self.salesTax = salesTax
        self.exciseTax = exciseTax
        self.cityTax = cityTax
        self.countyTax = countyTax
        self.municipalTax = municipalTax
        self.invoiceNumber = invoiceNumber
        self.qrCodes = qrCodes
        self.unitThcPercent = unitThcPercent
        self.unitThcContent = unitThcContent
        self.unitThcContentUnitOfMeasure = unitThcContentUnitOfMeasure
        self.unitWeight = unitWeight
        self.unitWeightUnitOfMeasure = unitWeightUnitOfMeasure
    }

    // Synthesized encoding uses encodeIfPresent for optionals, so nil fields are omitted.
    enum CodingKeys: String, CodingKey {
        case packageLabel = "PackageLabel"
        case quantity = "Quantity"
        case unitOfMeasure = "UnitOfMeasure"
        case totalAmount = "TotalAmount"
        case price = "Price"
        case discountAmount = "DiscountAmount"
        case subTotal = "SubTotal"
        case salesTax = "SalesTax"
        case exciseTax = "ExciseTax"
        case cityTax = "CityTax"
        case countyTax = "CountyTax"
        case municipalTax = "MunicipalTax"
        case invoiceNumber = "InvoiceNumber"
        case qrCodes = "QrCodes"
        case unitThcPercent = "UnitThcPercent"
        case unitThcContent = "UnitThcContent"
        case unitThcContentUnitOfMeasure = "UnitThcContentUnitOfMeasure"
        case unitWeight = "UnitWeight"
        case unitWeightUnitOfMeasure = "UnitWeightUnitOfMeasure"
    }
}

/// A sales receipt as posted to Metrc (`POST /sales/v2/receipts`).
public struct MetrcReceiptDraft: Sendable, Equatable, Encodable {
    /// Already formatted facility-local time: see `MetrcLocalTime.format`.
    public var salesDateTime: String
    /// One of `customerTypes()`: Consumer, Patient, Caregiver, ExternalPatient, …
    public var salesCustomerType: String
    public var patientLicenseNumber: String?
    public var caregiverLicenseNumber: String?
    public var identificationMethod: String?
    public var patientRegistrationLocationId: Int64?
    /// Till's own receipt number: the key for finding the receipt again after an ambiguous post.
    public var externalReceiptNumber: String?
    public var transactions: [MetrcTransactionDraft]

    public init(salesDateTime: String, salesCustomerType: String, patientLicenseNumber: String? = nil,
                caregiverLicenseNumber: String? = nil, identificationMethod: String? = nil,
                patientRegistrationLocationId: Int64? = nil, externalReceiptNumber: String? = nil,
                transactions: [MetrcTransactionDraft]) {
        self.salesDateTime = salesDateTime
        self.salesCustomerType = salesCustomerType
        self.patientLicenseNumber = patientLicenseNumber
        self.caregiverLicenseNumber = caregiverLicenseNumber
        self.identificationMethod = identificationMethod
        self.patientRegistrationLocationId = patientRegistrationLocationId
        self.externalReceiptNumber = externalReceiptNumber
        self.transactions = transactions
    }

    enum CodingKeys: String, CodingKey {
        case id = "Id"
        case salesDateTime = "SalesDateTime"
        case salesCustomerType = "SalesCustomerType"
        case patientLicenseNumber = "PatientLicenseNumber"
        case caregiverLicenseNumber = "CaregiverLicenseNumber"
        case identificationMethod = "IdentificationMethod"
        case patientRegistrationLocationId = "PatientRegistrationLocationId"
        case externalReceiptNumber = "ExternalReceiptNumber"
        case transactions = "Transactions"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try encodeFields(into: &container)
    }

    // Shared with MetrcReceiptUpdate, whose body is this one plus "Id" at the same level.
    func encodeFields(into container: inout KeyedEncodingContainer<CodingKeys>) throws {
        try container.encode(salesDateTime, forKey: .salesDateTime)
        try container.encode(salesCustomerType, forKey: .salesCustomerType)
        try container.encodeIfPresent(patientLicenseNumber, forKey: .patientLicenseNumber)
        try container.encodeIfPresent(caregiverLicenseNumber, forKey: .caregiverLicenseNumber)
        try container.encodeIfPresent(identificationMethod, forKey: .identificationMethod)
        try container.encodeIfPresent(patientRegistrationLocationId, forKey: .patientRegistrationLocationId)
        try container.encodeIfPresent(externalReceiptNumber, forKey: .externalReceiptNumber)
        try container.encode(transactions, forKey: .transactions)
    }
}

/// The new full content of a receipt already in Metrc (`PUT /sales/v2/receipts`): edits and partial returns.
public struct MetrcReceiptUpdate: Sendable, Equatable, Encodable {
    /// Metrc's receipt Id; nil is sent as null (a journaled edit whose receipt's Id is filled in once known).
    public var id: Int64?
    /// Encoded flat, beside "Id", as Metrc expects.
    public var receipt: MetrcReceiptDraft

    public init(id: Int64?, receipt: MetrcReceiptDraft) {
        self.id = id
        self.receipt = receipt
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: MetrcReceiptDraft.CodingKeys.self)
        try container.encode(id, forKey: .id)
        try receipt.encodeFields(into: &container)
    }
}

/// A patient check-in as posted to Metrc (`POST /patient-checkins/v2/`).
public struct MetrcPatientCheckInDraft: Sendable, Equatable, Encodable {
    public var patientLicenseNumber: String
    public var checkInLocationId: Int64
    /// "yyyy-MM-dd".
    public var registrationStartDate: String?
    /// "yyyy-MM-dd".
    public var registrationExpiryDate: String?
    /// "yyyy-MM-dd" (some states take a date-time).
    public var checkInDate: String

    public init(patientLicenseNumber: String, checkInLocationId: Int64, registrationStartDate: String? = nil,
                registrationExpiryDate: String? = nil, checkInDate: String) {
        self.patientLicenseNumber = patientLicenseNumber
        self.checkInLocationId = checkInLocationId
        self.registrationStartDate = registrationStartDate
        self.registrationExpiryDate = registrationExpiryDate
        self.checkInDate = checkInDate
    }

    enum CodingKeys: String, CodingKey {
        case patientLicenseNumber = "PatientLicenseNumber"
        case checkInLocationId = "CheckInLocationId"
        case registrationStartDate = "RegistrationStartDate"
        case registrationExpiryDate = "RegistrationExpiryDate"
        case checkInDate = "CheckInDate"
    }
}

// MARK: - Request bodies

/// Objects MetrcKit writes to Metrc; `requestBody` is what it sends for one chunk of them.
protocol MetrcWritable: Encodable {
    static func requestBody(_ items: [Self]) throws -> Data
}

extension MetrcWritable {
    static func requestBody(_ items: [Self]) throws -> Data {
        try MetrcJSON.makeEncoder().encode(items)
    }
}

extension MetrcReceiptUpdate: MetrcWritable {}
extension MetrcPatientCheckInDraft: MetrcWritable {}
extension MetrcIdBody: MetrcWritable {}

extension MetrcReceiptDraft: MetrcWritable {
    /// The bytes MetrcKit posts for these receipts (one chunk): what `MetrcJSON.makeEncoder()` writes,
    /// written by hand because every sale goes through it. A digest of them is a digest of what Metrc got.
    public static func requestBody(_ receipts: [MetrcReceiptDraft]) -> Data {
        var json = JSONWriter(capacity: 384 * receipts.count)
        json.array(receipts) { json, receipt in receipt.write(into: &json) }
        return Data(json.bytes)
    }

    /// Keys in sorted order, as the encoder's `.sortedKeys` puts them; nil fields left out.
    private func write(into json: inout JSONWriter) {
        json.object { json in
            json.field("CaregiverLicenseNumber", caregiverLicenseNumber)
            json.field("ExternalReceiptNumber", externalReceiptNumber)
            json.field("IdentificationMethod", identificationMethod)
            json.field("PatientLicenseNumber", patientLicenseNumber)
            json.field("PatientRegistrationLocationId", patientRegistrationLocationId)
            json.field("SalesCustomerType", salesCustomerType)
            json.field("SalesDateTime", salesDateTime)
            json.field("Transactions") { json in
                json.array(transactions) { json, transaction in transaction.write(into: &json) }
            }
        }
    }
}

extension MetrcTransactionDraft {
    fileprivate func write(into json: inout JSONWriter) {
        json.object { json in
            json.field("CityTax", cityTax)
            json.field("CountyTax", countyTax)
            json.field("DiscountAmount", discountAmount)
            json.field("ExciseTax", exciseTax)
            json.field("InvoiceNumber", invoiceNumber)
            json.field("MunicipalTax", municipalTax)
            json.field("PackageLabel", packageLabel)
            json.field("Price", price)
            json.field("QrCodes", qrCodes)
            json.field("Quantity", quantity)
            json.field("SalesTax", salesTax)
            json.field("SubTotal", subTotal)
            json.field("TotalAmount", totalAmount)
            json.field("UnitOfMeasure", unitOfMeasure)
            json.field("UnitThcContent", unitThcContent)
            json.field("UnitThcContentUnitOfMeasure", unitThcContentUnitOfMeasure)
            json.field("UnitThcPercent", unitThcPercent)
            json.field("UnitWeight", unitWeight)
            json.field("UnitWeightUnitOfMeasure", unitWeightUnitOfMeasure)
        }
    }
}

// MARK: - One object, as Till's journal keeps it

extension MetrcReceiptDraft {
    /// This receipt as one element of a `POST /sales/v2/receipts` body, byte for byte as `requestBody` writes it.
    public var jsonObject: String {
        var json = JSONWriter(capacity: 384)
        write(into: &json)
        return String(decoding: json.bytes, as: UTF8.self)
    }
}

extension MetrcWritable {
    /// This object as one element of its write's body, as `MetrcJSON.makeEncoder()` writes it.
    var encodedObject: String {
        // Encoding a plain struct of strings, numbers and arrays of them cannot fail.
        String(decoding: (try? MetrcJSON.makeEncoder().encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

extension MetrcPatientCheckInDraft {
    /// This check-in as one element of a `POST /patient-checkins/v2/` body.
    public var jsonObject: String { encodedObject }
}

extension MetrcReceiptUpdate {
    /// This edit as one element of a `PUT /sales/v2/receipts` body.
    public var jsonObject: String { encodedObject }
}

extension MetrcIdBody {
    /// `{"Id":n}`: one element of a finalize or unfinalize body, and what an archive's journal row names.
    public var jsonObject: String { encodedObject }
}
