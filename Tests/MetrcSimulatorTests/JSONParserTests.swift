import Foundation
@testable import MetrcSimulator
import Testing

@Suite struct JSONParserTests {
    private func parse(_ text: String) -> JSON? { JSON.parse(Data(text.utf8)) }

    @Test func readsNestedValuesKeepingTheDocumentsOrder() throws {
        let json = try #require(parse(#" { "Zeta": [1, -2.50, true, false, null], "alpha": {"b": "x", "a": {}}, "m": [] } "#))
        #expect(json == .object([
            ("Zeta", .array([.number(1), .number(Decimal(string: "-2.5")!), .bool(true), .bool(false), .null])),
            ("alpha", .object([("b", .string("x")), ("a", .object([]))])),
            ("m", .array([])),
        ]))
    }

    @Test func numbersKeepEveryDigit() throws {
        let text = "[0.1, 123456789012345678901234.5, 1E3, 2.5e-2, -0, 0.000001]"
        let json = try #require(parse(text))
        #expect(json == .array([
            .number(Decimal(string: "0.1")!), .number(Decimal(string: "123456789012345678901234.5")!),
            .number(1000), .number(Decimal(string: "0.025")!), .number(0), .number(Decimal(string: "0.000001")!),
        ]))
    }

    @Test func stringsUnescape() throws {
        let json = try #require(parse(#"["a\"b\\c\/d\n\t\r\b\f", "caf\u00e9", "\ud83d\ude00", "plain é"]"#))
        #expect(json == .array([.string("a\"b\\c/d\n\t\r\u{08}\u{0C}"), .string("café"), .string("😀"), .string("plain é")]))
    }

    @Test(arguments: [
        "", " ", "[1,]", "{\"a\":1,}", "[01]", "[1.]", "[.5]", "[-]", "[1e]", "[+1]", "tru", "nul", "[1] x",
        "{\"a\" 1}", "{a:1}", "[\"unterminated]", "[\"tab\there\"]", #"["\x"]"#, #"["\ud800"]"#, #"["\udc00"]"#,
        #"["\u12g4"]"#, "{\"a\":1}}", "[1 2]", "NaN", "[Infinity]",
    ])
    func refusesWhatIsNotJSON(_ text: String) {
        #expect(parse(text) == nil, "\(text)")
    }

    @Test func refusesInvalidUTF8AndBodiesNestedTooDeep() {
        #expect(JSON.parse(Data([0x5B, 0x22, 0xC3, 0x28, 0x22, 0x5D])) == nil)  // ["\xC3("]
        func nested(_ depth: Int) -> String { String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        #expect(parse(nested(65)) == nil)
        #expect(parse(nested(64)) != nil)
    }

    @Test func membersAreFoundInAnyCaseAndARepeatedNameGivesItsLastValue() throws {
        let json = try #require(parse(#"{"SalesDateTime": "x", "licensenumber": "L-1", "Café": 1, "a": 1, "A": 2}"#))
        #expect(json["salesdatetime"] == .string("x"))
        #expect(json["LicenseNumber"] == .string("L-1"))
        #expect(json["CAFÉ"] == .number(1))
        #expect(json["a"] == .number(2))
        #expect(json["SalesDateTim"] == nil && json["SalesDateTimes"] == nil && json["Sales_DateTime"] == nil)
    }
}
