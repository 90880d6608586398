import Foundation

/// A JSON value as the simulator reads and writes it: numbers are `Decimal` so quantities and money
/// survive exactly, and objects keep their key order so answers read like Metrc's.
enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Decimal)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }
}

// MARK: Building answers

extension JSON {
    init(_ value: String?) { self = value.map(JSON.string) ?? .null }
    init(_ value: Decimal?) { self = value.map(JSON.number) ?? .null }
    init(_ value: Int64?) { self = value.map { .number(Decimal($0)) } ?? .null }
    init(_ value: Int?) { self = value.map { .number(Decimal($0)) } ?? .null }
    init(_ value: Bool?) { self = value.map(JSON.bool) ?? .null }

    /// `{"Message": "..."}`, the shape Metrc gives request-level errors.
    static func message(_ text: String) -> JSON { .object([("Message", .string(text))]) }

    /// The compact UTF-8 serialisation; numbers are written from `Decimal` digits, never via `Double`.
    func serialized() -> Data {
        var out = ""
        write(into: &out)
        return Data(out.utf8)
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.isNaN ? "null" : n.description
        case .string(let s): JSON.writeString(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += "," }
                JSON.writeString(key, into: &out)
                out += ":"
                value.write(into: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

// MARK: Reading requests

extension JSON: Decodable {
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let number = try? container.decode(Decimal.self) {
            // Foundation's JSONDecoder parses the literal digits into Decimal, without a Double in between.
            self = .number(number)
        } else if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if let array = try? container.decode([JSON].self) {
            self = .array(array)
        } else {
            let object = try container.decode([String: JSON].self)
            self = .object(object.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
    }

    /// Parses a request body; nil when it is not JSON at all.
    static func parse(_ data: Data) -> JSON? {
        try? JSONDecoder().decode(JSON.self, from: data)
    }

    /// The member named `key`, compared case-insensitively because clients (and Metrc's states) vary in casing.
    subscript(key: String) -> JSON? {
        guard case .object(let members) = self else { return nil }
        let wanted = key.lowercased()
        return members.first { $0.0.lowercased() == wanted }?.1
    }

    var isNull: Bool { if case .null = self { true } else { false } }
}

/// Reads the fields of one object of a request body, collecting type errors as readable messages.
///
/// Metrc's model binder answers a wrongly typed field with a validation error, so the simulator does too,
/// rather than failing the whole request.
struct FieldReader {
    let object: JSON
    private(set) var errors: [String] = []

    init(_ object: JSON) { self.object = object }

    /// nil for absent or null; a type error for anything that is not a string.
    mutating func string(_ key: String) -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case let other?:
            errors.append("\(key) must be a string, not \(other.kindName).")
            return nil
        }
    }

    /// nil for absent or null. A number written as a string is refused: Metrc's schema says number.
    mutating func decimal(_ key: String) -> Decimal? {
        switch object[key] {
        case nil, .null?: return nil
        case .number(let n)?: return n
        case let other?:
            errors.append("\(key) must be a number, not \(other.kindName).")
            return nil
        }
    }

    mutating func int64(_ key: String) -> Int64? {
        guard let n = decimal(key) else { return nil }
        guard let value = Int64(exactly: n) else {
            errors.append("\(key) must be a whole number.")
            return nil
        }
        return value
    }

    mutating func array(_ key: String) -> [JSON]? {
        switch object[key] {
        case nil, .null?: return nil
        case .array(let items)?: return items
        case let other?:
            errors.append("\(key) must be an array, not \(other.kindName).")
            return nil
        }
    }

    mutating func bool(_ key: String) -> Bool? {
        switch object[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        case let other?:
            errors.append("\(key) must be true or false, not \(other.kindName).")
            return nil
        }
    }
}

extension JSON {
    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

extension Int64 {
    init?(exactly decimal: Decimal) {
        var value = decimal
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, 0, .plain)
        guard rounded == decimal, decimal.magnitude <= Decimal(Int64.max) else { return nil }
        // The description of a whole Decimal is its plain digits; NSDecimalNumber's accessors may pass through Double.
        guard let value = Int64(decimal.description) else { return nil }
        self = value
    }
}
