import Foundation
import TillDomain

/// Reads the common sale body without JSONDecoder, whose generic machinery was ~6% of a sale's CPU.
///
/// It only ever agrees with `RequestDecoding`'s decoder or abstains: anything it does not expect (an
/// escape in a string, a number with an exponent, a null where a value is required, an unknown or
/// repeated field, a wrong type, malformed JSON) makes it answer nil, and the decoder then reads the body
/// and says exactly what is wrong with it.
struct SaleJSONReader {
    private let bytes: [UInt8]
    private var position = 0

    private init(_ body: Data) {
        bytes = Array(body)
    }

    static func read(_ body: Data) -> SaleRequest? {
        var reader = SaleJSONReader(body)
        guard let sale = reader.sale() else { return nil }
        reader.skipWhitespace()
        return reader.position == reader.bytes.count ? sale : nil
    }

    // MARK: The sale's shape

    private mutating func sale() -> SaleRequest? {
        var clientSaleId: String?, customerType: CustomerType?, lines: [SaleLineRequest]?
        var patient: String?, caregiver: String?, identification: String?, location: Int64?
        let complete = object { reader, key in
            switch key {
            case "clientSaleId": return reader.required(&clientSaleId) { $0.string() }
            case "customerType": return reader.required(&customerType) { $0.string().flatMap(CustomerType.init(rawValue:)) }
            case "lines": return reader.required(&lines) { $0.array { reader in reader.line() } }
            case "patientLicenseNumber": return reader.optional(&patient) { $0.string() }
            case "caregiverLicenseNumber": return reader.optional(&caregiver) { $0.string() }
            case "identificationMethod": return reader.optional(&identification) { $0.string() }
            case "patientRegistrationLocationId": return reader.optional(&location) { $0.integer() }
            default: return false
            }
        }
        guard complete, let clientSaleId, let customerType, let lines else { return nil }
        return SaleRequest(clientSaleId: clientSaleId, customerType: customerType, lines: lines,
                           patientLicenseNumber: patient, caregiverLicenseNumber: caregiver,
                           identificationMethod: identification, patientRegistrationLocationId: location)
    }

    private mutating func line() -> SaleLineRequest? {
        var label: String?, quantity: Decimal?, unit: String?, total: Money?, discount: Money?, taxes: LineTaxes?
        let complete = object { reader, key in
            switch key {
            case "packageLabel": return reader.required(&label) { $0.string() }
            case "quantity": return reader.required(&quantity) { $0.decimal() }
            case "unit": return reader.required(&unit) { $0.string() }
            case "totalAmount": return reader.required(&total) { $0.money() }
            case "discountAmount": return reader.optional(&discount) { $0.money() }
            case "taxes": return reader.optional(&taxes) { $0.taxes() }
            default: return false
            }
        }
        guard complete, let label, let quantity, let unit, let total else { return nil }
        return SaleLineRequest(packageLabel: label, quantity: quantity, unit: unit, totalAmount: total,
                               discountAmount: discount, taxes: taxes)
    }

    private mutating func taxes() -> LineTaxes? {
        var taxes = LineTaxes()
        let complete = object { reader, key in
            switch key {
            case "salesTax": return reader.optional(&taxes.salesTax) { $0.money() }
            case "exciseTax": return reader.optional(&taxes.exciseTax) { $0.money() }
            case "cityTax": return reader.optional(&taxes.cityTax) { $0.money() }
            case "countyTax": return reader.optional(&taxes.countyTax) { $0.money() }
            case "municipalTax": return reader.optional(&taxes.municipalTax) { $0.money() }
            default: return false
            }
        }
        return complete ? taxes : nil
    }

    // MARK: JSON

    /// An object whose members `member` reads (false: abstain), each key at most once; a required member
    /// that never came is caught by the caller.
    private mutating func object(_ member: (inout SaleJSONReader, String) -> Bool) -> Bool {
        guard take(UInt8(ascii: "{")) else { return false }
        var seen: Set<String> = []
        if take(UInt8(ascii: "}")) { return true }
        repeat {
            guard let key = string(), seen.insert(key).inserted, take(UInt8(ascii: ":")), member(&self, key) else {
                return false
            }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}"))
    }

    private mutating func array<Element>(_ element: (inout SaleJSONReader) -> Element?) -> [Element]? {
        guard take(UInt8(ascii: "[")) else { return nil }
        var elements: [Element] = []
        if take(UInt8(ascii: "]")) { return elements }
        repeat {
            guard let next = element(&self) else { return nil }
            elements.append(next)
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "]")) ? elements : nil
    }

    /// A required member: read, or abstain.
    private mutating func required<Value>(_ value: inout Value?, _ read: (inout SaleJSONReader) -> Value?) -> Bool {
        value = read(&self)
        return value != nil
    }

    /// An optional member: `null` leaves it nil, as the decoder's `decodeIfPresent` does.
    private mutating func optional<Value>(_ value: inout Value?, _ read: (inout SaleJSONReader) -> Value?) -> Bool {
        skipWhitespace()
        if literal("null") { return true }
        value = read(&self)
        return value != nil
    }

    /// A string without escapes or control characters (anything else: abstain).
    private mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                defer { position += 1 }
                return String(bytes: bytes[start..<position], encoding: .utf8)
            }
            guard byte != UInt8(ascii: "\\"), byte >= 0x20 else { return nil }
            position += 1
        }
        return nil
    }

    /// `-?(0|[1-9][0-9]*)(.[0-9]+)?`, as text: no exponent, and short enough for Decimal to hold exactly.
    private mutating func numeral() -> String? {
        skipWhitespace()
        let start = position
        _ = take(UInt8(ascii: "-"), skippingWhitespace: false)
        guard let first = peek(), isDigit(first) else { return nil }
        position += 1
        if first != UInt8(ascii: "0") { while let byte = peek(), isDigit(byte) { position += 1 } }
        if take(UInt8(ascii: "."), skippingWhitespace: false) {
            guard let byte = peek(), isDigit(byte) else { return nil }
            while let byte = peek(), isDigit(byte) { position += 1 }
        }
        if let byte = peek(), byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") || isDigit(byte) { return nil }
        guard position - start <= 30 else { return nil }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    private mutating func decimal() -> Decimal? {
        numeral().flatMap { Decimal(string: $0) }
    }

    private mutating func money() -> Money? {
        decimal().flatMap(Money.init(exactly:))
    }

    private mutating func integer() -> Int64? {
        guard let text = numeral(), !text.contains(".") else { return nil }
        return Int64(text)
    }

    // MARK: Bytes

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
    }

    private mutating func take(_ byte: UInt8, skippingWhitespace: Bool = true) -> Bool {
        if skippingWhitespace { skipWhitespace() }
        guard peek() == byte else { return false }
        position += 1
        return true
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count else { return false }
        let matches = word.withUTF8Buffer { word in bytes[position..<position + count].elementsEqual(word) }
        if matches { position += count }
        return matches
    }
}
