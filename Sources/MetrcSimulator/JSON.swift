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

extension JSON {
    /// Parses a request body (RFC 8259, UTF-8); nil when it is not JSON at all. Objects keep the order of
    /// the document; numbers become `Decimal` from their literal digits, never via `Double`.
    static func parse(_ data: Data) -> JSON? {
        data.withUnsafeBytes { raw in
            var parser = JSONParser(bytes: raw.bindMemory(to: UInt8.self))
            guard let value = parser.value(depth: 0) else { return nil }
            parser.skipWhitespace()
            return parser.atEnd ? value : nil
        }
    }

    /// The member named `key`, compared case-insensitively because clients (and Metrc's states) vary in
    /// casing; the last of repeated names, as ASP.NET's model binder takes it.
    subscript(key: String) -> JSON? {
        guard case .object(let members) = self else { return nil }
        return members.last { JSON.namesMatch($0.0, key) }?.1
    }

    private static func namesMatch(_ a: String, _ b: String) -> Bool {
        var left = a.utf8.makeIterator(), right = b.utf8.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return true
            case (let x?, let y?):
                if x == y { continue }
                // Only ASCII letters fold here; a name with other letters is compared the slow way.
                if x >= 0x80 || y >= 0x80 { return a.lowercased() == b.lowercased() }
                if x | 0x20 != y | 0x20 || !(0x61...0x7A).contains(x | 0x20) { return false }
            default: return false
            }
        }
    }

    var isNull: Bool { if case .null = self { true } else { false } }
}

/// A byte-level JSON reader: JSONDecoder's generic machinery (and a thrown error for every type tried)
/// was the simulator's largest cost per receipt.
private struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    /// Deeper than any Metrc body; keeps a hostile one from exhausting the stack.
    static let maximumDepth = 64

    var atEnd: Bool { position == bytes.count }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) -> JSON? {
        guard depth < Self.maximumDepth else { return nil }
        skipWhitespace()
        guard position < bytes.count else { return nil }
        switch bytes[position] {
        case UInt8(ascii: "{"): return object(depth: depth)
        case UInt8(ascii: "["): return array(depth: depth)
        case UInt8(ascii: "\""): return string().map(JSON.string)
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        case UInt8(ascii: "n"): return literal("null", .null)
        default: return number()
        }
    }

    private mutating func literal(_ word: StaticString, _ value: JSON) -> JSON? {
        let count = word.utf8CodeUnitCount
        guard bytes.count - position >= count else { return nil }
        for offset in 0..<count where bytes[position + offset] != word.utf8Start[offset] { return nil }
        position += count
        return value
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    private mutating func object(depth: Int) -> JSON? {
        position += 1
        var members: [(String, JSON)] = []
        if consume(UInt8(ascii: "}")) { return .object(members) }
        repeat {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\""), let key = string(),
                  consume(UInt8(ascii: ":")), let value = value(depth: depth + 1) else { return nil }
            members.append((key, value))
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "}")) ? .object(members) : nil
    }

    private mutating func array(depth: Int) -> JSON? {
        position += 1
        var items: [JSON] = []
        if consume(UInt8(ascii: "]")) { return .array(items) }
        repeat {
            guard let item = value(depth: depth + 1) else { return nil }
            items.append(item)
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "]")) ? .array(items) : nil
    }

    /// At the opening quote. Invalid UTF-8, a raw control character or a bad escape makes the body not JSON.
    private mutating func string() -> String? {
        position += 1
        let start = position
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "\""):
                defer { position += 1 }
                return String(validating: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            case UInt8(ascii: "\\"):
                return escapedString(from: start)
            case 0..<0x20:
                return nil
            default:
                position += 1
            }
        }
        return nil
    }

    private mutating func escapedString(from start: Int) -> String? {
        var utf8 = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(validating: utf8, as: UTF8.self)
            case 0..<0x20:
                return nil
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { return nil }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = unicodeEscape() else { return nil }
                    utf8.append(contentsOf: String(Character(scalar)).utf8)
                default: return nil
                }
            default:
                utf8.append(byte)
            }
        }
        return nil
    }

    /// After `\u`: four hex digits, or a surrogate pair written as two escapes.
    private mutating func unicodeEscape() -> Unicode.Scalar? {
        guard let high = hex4() else { return nil }
        guard (0xD800...0xDBFF).contains(high) else { return Unicode.Scalar(high) }  // nil for a lone low surrogate
        guard bytes.count - position >= 2, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
        else { return nil }
        position += 2
        guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
        return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    }

    private mutating func hex4() -> UInt32? {
        guard bytes.count - position >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Character(Unicode.Scalar(bytes[position])).hexDigitValue else { return nil }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`, exactly.
    private mutating func number() -> JSON? {
        let start = position
        func digits() -> Int {
            let first = position
            while position < bytes.count, (0x30...0x39).contains(bytes[position]) { position += 1 }
            return position - first
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        let integerStart = position
        let integerDigits = digits()
        guard integerDigits > 0, integerDigits == 1 || bytes[integerStart] != UInt8(ascii: "0") else { return nil }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { return nil }
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { return nil }
        }
        let literal = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        return Decimal(string: literal, locale: nil).map(JSON.number)
    }
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
