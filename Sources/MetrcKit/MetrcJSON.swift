import Foundation

/// The JSON coders that match Metrc: exact PascalCase out, any key casing in.
public enum MetrcJSON {
    /// Lower-cases every key before lookup, because key casing has varied by state (`Id`, `id`, `ID`);
    /// MetrcKit's response types spell their keys in lower case to match.
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .custom { path in AnyKey(path[path.count - 1].stringValue.lowercased()) }
        return decoder
    }

    /// Sorted keys so that the same request always has the same bytes (logs, tests, idempotency).
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// A coding key made from any string.
struct AnyKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int?

    init(_ string: String) {
        stringValue = string
        intValue = nil
    }

    init?(stringValue: String) { self.init(stringValue) }

    init(intValue: Int) {
        stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// A list answer: Metrc's paging envelope, or a bare array taken as the whole list.
struct MetrcList<Element: Decodable>: Decodable {
    var items: [Element]
    var isEnvelope: Bool
    var totalPages: Int?

    init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            items = try object.decodeIfPresent([Element].self, forKey: AnyKey("data")) ?? []
            isEnvelope = true
            totalPages = try? object.decodeIfPresent(Int.self, forKey: AnyKey("totalpages"))
        } else {
            let single = try decoder.singleValueContainer()
            items = single.decodeNil() ? [] : try single.decode([Element].self)
            isEnvelope = false
            totalPages = nil
        }
    }
}

/// An answer that may be one object, an array of them, or the paging envelope: `receipts/external/{n}` has
/// been seen in all three shapes.
struct MetrcOneOrMany<Element: Decodable>: Decodable {
    var items: [Element]

    init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            if object.contains(AnyKey("data")) {
                items = try object.decodeIfPresent([Element].self, forKey: AnyKey("data")) ?? []
            } else {
                items = [try Element(from: decoder)]
            }
        } else {
            let single = try decoder.singleValueContainer()
            items = single.decodeNil() ? [] : try single.decode([Element].self)
        }
    }
}

/// The answer to a POST: `{"Ids":[...],"Warnings":null}`.
struct MetrcIdsBody: Decodable {
    var ids: [Int64]?

    enum CodingKeys: String, CodingKey {
        case ids
    }
}

/// The body of finalize and unfinalize: `[{"Id":n}]`.
/// `{"Id":n}`: how Metrc's finalize and unfinalize name a receipt; nil is sent as null (a journaled write whose
/// receipt's Id is filled in once Metrc gives it).
public struct MetrcIdBody: Encodable, Sendable {
    public var id: Int64?

    public init(id: Int64?) { self.id = id }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
    }

    enum CodingKeys: String, CodingKey {
        case id = "Id"
    }
}
