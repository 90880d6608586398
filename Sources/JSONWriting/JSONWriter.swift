import Foundation

/// JSON written field by field, for what every sale goes through: its answer, the canonical form its
/// request digest is taken from, and its receipt's body for Metrc. Foundation's JSONEncoder was a tenth
/// of the sale path's CPU on Linux.
///
/// Keys are written in the order given; callers give them sorted, as the JSONEncoders they stand in for
/// (`.sortedKeys`) sort them.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    /// One entry per open object or array: whether the next member is its first.
    private var first: [Bool] = []

    public init(capacity: Int = 512) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func object(_ members: (inout JSONWriter) -> Void) {
        open(UInt8(ascii: "{"))
        members(&self)
        close(UInt8(ascii: "}"))
    }

    public mutating func array<S: Sequence>(_ elements: S, _ element: (inout JSONWriter, S.Element) -> Void) {
        open(UInt8(ascii: "["))
        for item in elements {
            separate()
            element(&self, item)
        }
        close(UInt8(ascii: "]"))
    }

    // MARK: Members of an object; an optional that is nil is left out, as JSONEncoder leaves it out.

    public mutating func field(_ key: String, _ value: String?) {
        guard let value else { return }
        name(key)
        string(value)
    }

    public mutating func field(_ key: String, _ value: Int64?) {
        guard let value else { return }
        name(key)
        bytes.append(contentsOf: String(value).utf8)
    }

    public mutating func field(_ key: String, _ value: Bool?) {
        guard let value else { return }
        name(key)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    /// An exact decimal as a JSON number (3.5, never 3.4999…).
    public mutating func field(_ key: String, _ value: Decimal?) {
        guard let value else { return }
        name(key)
        bytes.append(contentsOf: value.description.utf8)
    }

    /// A number already written as JSON (digits, sign, decimal point), as is.
    public mutating func field(_ key: String, numeral: String?) {
        guard let numeral else { return }
        name(key)
        bytes.append(contentsOf: numeral.utf8)
    }

    /// ISO 8601 in UTC to the second, as JSONEncoder's `.iso8601` writes dates.
    public mutating func field(_ key: String, _ value: Date?) {
        guard let value else { return }
        field(key, value.formatted(.iso8601))
    }

    public mutating func field(_ key: String, _ value: [String]?) {
        guard let value else { return }
        name(key)
        array(value) { writer, item in writer.string(item) }
    }

    public mutating func field(_ key: String, _ value: (inout JSONWriter) -> Void) {
        name(key)
        value(&self)
    }

    // MARK: Parts

    private mutating func open(_ bracket: UInt8) {
        bytes.append(bracket)
        first.append(true)
    }

    private mutating func close(_ bracket: UInt8) {
        first.removeLast()
        bytes.append(bracket)
    }

    private mutating func separate() {
        if first[first.count - 1] {
            first[first.count - 1] = false
        } else {
            bytes.append(UInt8(ascii: ","))
        }
    }

    private mutating func name(_ key: String) {
        separate()
        string(key)
        bytes.append(UInt8(ascii: ":"))
    }

    /// A JSON string: quotes, backslashes and control characters escaped, everything else as UTF-8.
    public mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let digits = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: Array("\\u00".utf8) + [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
