import Foundation

/// Metrc's sales customer types (from `GET /sales/v2/customertypes`).
public enum CustomerType: String, Sendable, Codable, CaseIterable {
    case consumer = "Consumer"
    case patient = "Patient"
    case caregiver = "Caregiver"
    case externalPatient = "ExternalPatient"
    case nonResidentConsumer = "NonResidentConsumer"

    public var isMedical: Bool { self == .patient || self == .caregiver || self == .externalPatient }
}

/// Where a sale stands with Metrc, the legal record.
public enum SaleStatus: String, Sendable, Codable {
    /// Journaled locally; Metrc has not confirmed it yet. The reporter owes it.
    case pendingReport = "pending_report"
    /// Metrc holds the receipt (`metrcReceiptId`).
    case reported
    /// Metrc refused the receipt; the reason is kept and shown to managers.
    case rejected
    /// Returned in full before its receipt ever left for Metrc: nothing is owed, and Metrc never hears of it.
    case voided
}

/// Optional per-line taxes, passed to Metrc as it names them.
public struct LineTaxes: Sendable, Hashable, Codable {
    public var salesTax: Money?
    public var exciseTax: Money?
    public var cityTax: Money?
    public var countyTax: Money?
    public var municipalTax: Money?

    public init(salesTax: Money? = nil, exciseTax: Money? = nil, cityTax: Money? = nil,
                countyTax: Money? = nil, municipalTax: Money? = nil) {
        self.salesTax = salesTax
        self.exciseTax = exciseTax
        self.cityTax = cityTax
        self.countyTax = countyTax
        self.municipalTax = municipalTax
    }
}

/// One line of a register's sale request, before validation.
public struct SaleLineRequest: Sendable, Hashable, Codable {
    public var packageLabel: String
    public var quantity: Decimal
    public var unit: String
    public var totalAmount: Money
    public var discountAmount: Money?
    public var taxes: LineTaxes?

    public init(packageLabel: String, quantity: Decimal, unit: String, totalAmount: Money,
                discountAmount: Money? = nil, taxes: LineTaxes? = nil) {
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unit = unit
        self.totalAmount = totalAmount
        self.discountAmount = discountAmount
        self.taxes = taxes
    }
}

/// A register's sale request as received.
public struct SaleRequest: Sendable, Hashable, Codable {
    public var clientSaleId: String
    public var customerType: CustomerType
    public var lines: [SaleLineRequest]
    public var patientLicenseNumber: String?
    public var caregiverLicenseNumber: String?
    public var identificationMethod: String?
    public var patientRegistrationLocationId: Int64?

    public init(clientSaleId: String, customerType: CustomerType, lines: [SaleLineRequest],
                patientLicenseNumber: String? = nil, caregiverLicenseNumber: String? = nil,
                identificationMethod: String? = nil, patientRegistrationLocationId: Int64? = nil) {
        self.clientSaleId = clientSaleId
        self.customerType = customerType
        self.lines = lines
        self.patientLicenseNumber = patientLicenseNumber
        self.caregiverLicenseNumber = caregiverLicenseNumber
        self.identificationMethod = identificationMethod
        self.patientRegistrationLocationId = patientRegistrationLocationId
    }
}

/// What Till knows locally about a package it can sell from.
public struct PackageSnapshot: Sendable, Hashable {
    public var label: String
    public var itemName: String
    public var category: String?
    public var unit: String
    public var quantity: Decimal
    public var onHold: Bool
    public var labTestingState: String?
    public var active: Bool
    /// Weight of one unit of a count-based item, if Metrc knows it.
    public var unitWeight: Decimal?
    public var unitWeightUnit: String?

    public init(label: String, itemName: String, category: String?, unit: String, quantity: Decimal,
                onHold: Bool, labTestingState: String?, active: Bool, unitWeight: Decimal? = nil, unitWeightUnit: String? = nil) {
        self.label = label
        self.itemName = itemName
        self.category = category
        self.unit = unit
        self.quantity = quantity
        self.onHold = onHold
        self.labTestingState = labTestingState
        self.active = active
        self.unitWeight = unitWeight
        self.unitWeightUnit = unitWeightUnit
    }
}

/// A line that passed validation, with the exact amount to take off its package (in the package's unit).
public struct ValidatedLine: Sendable, Hashable {
    public var request: SaleLineRequest
    /// The unit name as Metrc spells it.
    public var unitName: String
    public var packageDecrementPicos: Int64

    public init(request: SaleLineRequest, unitName: String, packageDecrementPicos: Int64) {
        self.request = request
        self.unitName = unitName
        self.packageDecrementPicos = packageDecrementPicos
    }
}

/// One line of a recorded sale.
public struct SaleLine: Sendable, Hashable, Codable {
    public var packageLabel: String
    public var quantity: Decimal
    public var unit: String
    public var totalAmount: Money
    public var discountAmount: Money?
    public var taxes: LineTaxes?
    /// The quantity taken off the package, in 10^-12 of the package's unit.
    public var packageDecrementPicos: Int64

    public init(packageLabel: String, quantity: Decimal, unit: String, totalAmount: Money, discountAmount: Money?,
                taxes: LineTaxes?, packageDecrementPicos: Int64) {
        self.packageLabel = packageLabel
        self.quantity = quantity
        self.unit = unit
        self.totalAmount = totalAmount
        self.discountAmount = discountAmount
        self.taxes = taxes
        self.packageDecrementPicos = packageDecrementPicos
    }
}

/// A sale as journaled: the local record of truth until Metrc confirms it.
public struct Sale: Sendable, Hashable {
    public var id: Int64
    public var clientSaleId: String
    public var receiptNumber: String
    public var customerType: CustomerType
    public var patientLicenseNumber: String?
    public var caregiverLicenseNumber: String?
    public var identificationMethod: String?
    public var patientRegistrationLocationId: Int64?
    public var soldAt: Date
    /// Facility-local wall-clock time, as Metrc wants it ("2026-11-22T14:05:00.000").
    public var salesDateTime: String
    /// Facility-local date (YYYY-MM-DD) the sale belongs to.
    public var businessDate: String
    public var lines: [SaleLine]
    public var totalAmount: Money
    public var status: SaleStatus
    public var metrcReceiptId: Int64?
    public var reportedAt: Date?
    /// Metrc's words when it refused the receipt.
    public var rejection: [String]?
    /// The refusal undid the sale (the register was told; stock restored). False for a sale that
    /// stands although Metrc refused its report: an exception for a manager to resolve.
    public var saleUndone: Bool

    public init(id: Int64, clientSaleId: String, receiptNumber: String, customerType: CustomerType,
                patientLicenseNumber: String?, caregiverLicenseNumber: String?, identificationMethod: String?,
                patientRegistrationLocationId: Int64?, soldAt: Date, salesDateTime: String, businessDate: String,
                lines: [SaleLine], totalAmount: Money, status: SaleStatus, metrcReceiptId: Int64?,
                reportedAt: Date?, rejection: [String]?, saleUndone: Bool = false) {
        self.id = id
        self.clientSaleId = clientSaleId
        self.receiptNumber = receiptNumber
        self.customerType = customerType
        self.patientLicenseNumber = patientLicenseNumber
        self.caregiverLicenseNumber = caregiverLicenseNumber
        self.identificationMethod = identificationMethod
        self.patientRegistrationLocationId = patientRegistrationLocationId
        self.soldAt = soldAt
        self.salesDateTime = salesDateTime
        self.businessDate = businessDate
        self.lines = lines
        self.totalAmount = totalAmount
        self.status = status
        self.metrcReceiptId = metrcReceiptId
        self.reportedAt = reportedAt
        self.rejection = rejection
        self.saleUndone = saleUndone
    }
}

/// Roles a register terminal's token can carry.
public enum TerminalRole: String, Sendable, Codable, CaseIterable {
    case register, pharmacist, manager
    /// Runs vehicle trips: loads, departs, sells from the vehicle, restocks, ends.
    case driver
}

/// An authenticated caller.
public struct Terminal: Sendable, Hashable {
    public var id: Int64
    public var name: String
    public var role: TerminalRole
    public var revoked: Bool

    public init(id: Int64, name: String, role: TerminalRole, revoked: Bool) {
        self.id = id
        self.name = name
        self.role = role
        self.revoked = revoked
    }
}
