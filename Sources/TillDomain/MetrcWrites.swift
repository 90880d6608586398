import Foundation

/// Every kind of write Till owes Metrc, as its journal names them.
public enum JournalKind: String, Sendable, CaseIterable, Codable {
    /// `POST /sales/v2/receipts`: a sale's receipt.
    case receiptCreate = "receipt.create"
    /// `PUT /sales/v2/receipts`: a receipt's new full content (a partial return, a repair).
    case receiptUpdate = "receipt.update"
    /// `DELETE /sales/v2/receipts/{id}`: a full return, or a duplicate found by the sweep.
    case receiptArchive = "receipt.archive"
    /// `PUT /sales/v2/receipts/finalize`.
    case receiptFinalize = "receipt.finalize"
    /// `PUT /sales/v2/receipts/unfinalize`.
    case receiptUnfinalize = "receipt.unfinalize"
    /// `POST /patient-checkins/v2/`.
    case checkInCreate = "checkin.create"
    /// `POST /packages/v2/adjust`: returned goods wasted, taken off the package's count.
    case packageAdjust = "package.adjust"
    /// `POST /sales/v2/deliveries`.
    case deliveryCreate = "delivery.create"
    /// `PUT /sales/v2/deliveries`: its new full content.
    case deliveryUpdate = "delivery.update"
    /// `PUT /sales/v2/deliveries/complete`.
    case deliveryComplete = "delivery.complete"
    /// `DELETE /sales/v2/deliveries/{id}`.
    case deliveryVoid = "delivery.void"
    /// `POST /sales/v2/deliveries/retailer`: a vehicle trip and its load.
    case tripCreate = "trip.create"
    /// `POST /sales/v2/deliveries/retailer/depart`.
    case tripDepart = "trip.depart"
    /// `POST /sales/v2/deliveries/retailer/sale`.
    case tripSale = "trip.sale"
    /// `POST /sales/v2/deliveries/retailer/restock`.
    case tripRestock = "trip.restock"
    /// `POST /sales/v2/deliveries/retailer/end`.
    case tripEnd = "trip.end"
    /// `DELETE /sales/v2/deliveries/retailer/{id}`.
    case tripVoid = "trip.void"
}

/// What a journaled write is about. Writes of one subject reach Metrc in the order they were journaled;
/// a refused one holds back the later ones of its subject only.
public enum JournalSubject: Hashable, Sendable, CustomStringConvertible {
    case sale(Int64)
    case checkIn(Int64)
    case delivery(Int64)
    case trip(Int64)

    public var type: String {
        switch self {
        case .sale: "sale"
        case .checkIn: "checkin"
        case .delivery: "delivery"
        case .trip: "trip"
        }
    }

    public var id: Int64 {
        switch self {
        case .sale(let id), .checkIn(let id), .delivery(let id), .trip(let id): id
        }
    }

    public init?(type: String, id: Int64) {
        switch type {
        case "sale": self = .sale(id)
        case "checkin": self = .checkIn(id)
        case "delivery": self = .delivery(id)
        case "trip": self = .trip(id)
        default: return nil
        }
    }

    /// `sale:12`: how logs, the audit log and `/v1/reporting` name it.
    public var description: String { "\(type):\(id)" }
}
