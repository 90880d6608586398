import Foundation

/// The operations Till needs from Metrc; MetrcClient implements it over HTTP; tests may fake it.
public protocol MetrcAPI: Sendable {
    /// The facility this client acts for.
    var licenseNumber: String { get }
    /// The facility's zone, in which `SalesDateTime` is written.
    var timeZone: TimeZone { get }

    /// The facilities the keys can act for (`GET /facilities/v2/`, not facility-scoped).
    func facilities() async throws(MetrcError) -> [MetrcFacility]
    /// `GET /unitsofmeasure/v2/active`.
    func unitsOfMeasure() async throws(MetrcError) -> [MetrcUnitOfMeasure]
    /// `GET /sales/v2/customertypes`: "Consumer", "Patient", …
    func customerTypes() async throws(MetrcError) -> [String]
    /// `GET /packages/v2/active`, all pages. With `lastModifiedSince`, only packages modified in
    /// [since, until], fetched in windows of at most 24 hours; without it, every active package.
    func activePackages(lastModifiedSince: Date?, until: Date) async throws(MetrcError) -> [MetrcPackage]
    /// `GET /packages/v2/{label}`; nil when Metrc does not know it for this license.
    func package(label: String) async throws(MetrcError) -> MetrcPackage?
    /// `POST /sales/v2/receipts`, chunked; Metrc's Ids in posted order. A chunk that Metrc accepted without
    /// telling its Ids contributes nothing: look those receipts up by external number.
    func postReceipts(_ receipts: [MetrcReceiptDraft]) async throws(MetrcError) -> [Int64]
    /// One journaled write, as it stands (no chunking: the journal batches within the object limit). Metrc's
    /// Ids aligned with `write.objects`, each nil where Metrc did not tell it (all of them for a PUT or DELETE).
    func send(_ write: MetrcWrite) async throws(MetrcError) -> [Int64?]
    /// `PUT /sales/v2/receipts`, chunked.
    func updateReceipts(_ receipts: [MetrcReceiptUpdate]) async throws(MetrcError)
    /// `GET /sales/v2/receipts/{id}`; nil when Metrc does not know it for this license.
    func receipt(id: Int64) async throws(MetrcError) -> MetrcReceipt?
    /// `GET /sales/v2/receipts/external/{externalNumber}`: the lookup that makes an ambiguous post safe to resolve.
    func receipt(externalNumber: String) async throws(MetrcError) -> MetrcReceipt?
    /// `GET /sales/v2/receipts/active|inactive` by sales date, all pages, windows of at most 24 hours.
    func receipts(active: Bool, salesDateStart: Date, salesDateEnd: Date) async throws(MetrcError) -> [MetrcReceipt]
    /// `GET /sales/v2/receipts/active|inactive` by last modification, all pages, windows of at most 24 hours.
    func receipts(active: Bool, lastModifiedStart: Date, lastModifiedEnd: Date) async throws(MetrcError) -> [MetrcReceipt]
    /// `PUT /sales/v2/receipts/finalize`, chunked.
    func finalizeReceipts(ids: [Int64]) async throws(MetrcError)
    /// `PUT /sales/v2/receipts/unfinalize`, chunked.
    func unfinalizeReceipts(ids: [Int64]) async throws(MetrcError)
    /// `DELETE /sales/v2/receipts/{id}`: a full return.
    func archiveReceipt(id: Int64) async throws(MetrcError)
    /// `GET /patients/v2/statuses/{n}`: one entry per registration; empty when Metrc does not know the patient.
    func patientStatuses(patientLicenseNumber: String) async throws(MetrcError) -> [MetrcPatientStatus]
    /// `GET /caregivers/v2/status/{n}`; nil when Metrc does not know the caregiver.
    func caregiverStatus(caregiverLicenseNumber: String) async throws(MetrcError) -> MetrcCaregiverStatus?
    /// `GET /packages/v2/adjust/reasons`: the reasons a package adjustment may give, and which need a note.
    func packageAdjustReasons() async throws(MetrcError) -> [MetrcAdjustReason]
    /// `GET /packages/v2/adjustments`, all pages: how an adjustment in doubt is found again.
    func packageAdjustments() async throws(MetrcError) -> [MetrcPackageAdjustment]
    /// `POST /patient-checkins/v2/`, chunked.
    func postPatientCheckIns(_ checkIns: [MetrcPatientCheckInDraft]) async throws(MetrcError) -> [Int64]
    /// GET /patient-checkins/v2?checkinDateStart=&checkinDateEnd= (one facility-local day, paged; only that
    /// day's check-ins are returned, whether or not Metrc applied the filter): how an uncertain check-in post
    /// is found again.
    func patientCheckIns(on date: String) async throws(MetrcError) -> [MetrcPatientCheckIn]
    /// `GET /sales/v2/deliveries/{id}`; nil when Metrc does not know it for this license.
    func salesDelivery(id: Int64) async throws(MetrcError) -> MetrcSalesDelivery?
    /// `GET /sales/v2/deliveries/active|inactive` by sales date, all pages, windows of at most 24 hours.
    func salesDeliveries(active: Bool, salesDateStart: Date, salesDateEnd: Date) async throws(MetrcError) -> [MetrcSalesDelivery]
    /// `GET /sales/v2/deliveries/active|inactive` by last modification, all pages, windows of at most 24 hours.
    func salesDeliveries(active: Bool, lastModifiedStart: Date, lastModifiedEnd: Date) async throws(MetrcError) -> [MetrcSalesDelivery]
    /// `GET /sales/v2/deliveries/returnreasons`.
    func deliveryReturnReasons() async throws(MetrcError) -> [MetrcDeliveryReturnReason]
    /// `GET /sales/v2/deliveries/retailer/{id}`; nil when Metrc does not know it for this license.
    func retailerDelivery(id: Int64) async throws(MetrcError) -> MetrcRetailerDelivery?
    /// `GET /sales/v2/deliveries/retailer/active|inactive` by last modification, all pages, windows of 24 hours.
    func retailerDeliveries(active: Bool, lastModifiedStart: Date, lastModifiedEnd: Date) async throws(MetrcError) -> [MetrcRetailerDelivery]
}
