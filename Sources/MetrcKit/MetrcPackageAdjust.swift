import Foundation

/// A package adjustment as posted to Metrc (`POST /packages/v2/adjust`): so much taken off (negative) or
/// added to a package, with one of the facility's adjustment reasons.
public struct MetrcPackageAdjustDraft: Sendable, Equatable, Encodable {
    public var label: String
    /// In `unitOfMeasure`; negative takes quantity off the package.
    public var quantity: Decimal
    public var unitOfMeasure: String
    /// One of `GET /packages/v2/adjust/reasons`' names.
    public var adjustmentReason: String
    /// "yyyy-MM-dd", the facility's local date.
    public var adjustmentDate: String
    public var reasonNote: String?

    public init(label: String, quantity: Decimal, unitOfMeasure: String, adjustmentReason: String,
                adjustmentDate: String, reasonNote: String?) {
        self.label = label
        self.quantity = quantity
        self.unitOfMeasure = unitOfMeasure
        self.adjustmentReason = adjustmentReason
        self.adjustmentDate = adjustmentDate
        self.reasonNote = reasonNote
    }

    enum CodingKeys: String, CodingKey {
        case label = "Label", quantity = "Quantity", unitOfMeasure = "UnitOfMeasure"
        case adjustmentReason = "AdjustmentReason", adjustmentDate = "AdjustmentDate", reasonNote = "ReasonNote"
    }

    /// This adjustment as one element of a `POST /packages/v2/adjust` body.
    public var jsonObject: String { encodedObject }
}

extension MetrcPackageAdjustDraft: MetrcWritable {}

/// One of a facility's package adjustment reasons (`GET /packages/v2/adjust/reasons`).
public struct MetrcAdjustReason: Sendable, Equatable, Decodable {
    public var name: String
    /// An adjustment with this reason must carry a `ReasonNote`.
    public var requiresNote: Bool

    public init(name: String, requiresNote: Bool) {
        self.name = name
        self.requiresNote = requiresNote
    }

    enum CodingKeys: String, CodingKey {
        case name
        case requiresNote = "requiresnote"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        requiresNote = try container.decodeIfPresent(Bool.self, forKey: .requiresNote) ?? false
    }
}

/// A package adjustment Metrc recorded (`GET /packages/v2/adjustments`). Only the field guide names this
/// endpoint; its fields are read under the names the adjust request and the package records use.
public struct MetrcPackageAdjustment: Sendable, Equatable, Decodable {
    public var id: Int64?
    public var label: String?
    public var quantity: Decimal?
    public var reason: String?
    public var note: String?
    public var adjustmentDate: String?

    public init(id: Int64? = nil, label: String?, quantity: Decimal?, reason: String?, note: String?, adjustmentDate: String? = nil) {
        self.id = id
        self.label = label
        self.quantity = quantity
        self.reason = reason
        self.note = note
        self.adjustmentDate = adjustmentDate
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        func first<T: Decodable>(_ type: T.Type, _ names: String...) -> T? {
            for name in names {
                if let value = try? container.decodeIfPresent(T.self, forKey: AnyKey(name)) { return value }
            }
            return nil
        }
        id = first(Int64.self, "id")
        label = first(String.self, "packagelabel", "label")
        quantity = first(Decimal.self, "adjustmentquantity", "quantity")
        reason = first(String.self, "adjustmentreasonname", "adjustmentreason", "reason")
        note = first(String.self, "adjustmentnote", "reasonnote", "note")
        adjustmentDate = first(String.self, "adjustmentdate")
    }
}

extension MetrcClient {
    public func packageAdjustReasons() async throws(MetrcError) -> [MetrcAdjustReason] {
        try await list(Call("GET", "/packages/v2/adjust/reasons"), paged: false)
    }

    public func packageAdjustments() async throws(MetrcError) -> [MetrcPackageAdjustment] {
        try await list(Call("GET", "/packages/v2/adjustments"), paged: true)
    }
}
