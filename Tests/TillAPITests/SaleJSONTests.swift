import Foundation
import JSONWriting
import Testing
import TillDomain
@testable import TillAPI

/// The sale path's JSON, read and written without Foundation's coders: what registers send is read
/// strictly, and what they get back says exactly what the journal holds.
@Suite struct SaleRequestReadingTests {
    let line = #"{"packageLabel":"PKG-1","quantity":3.5,"unit":"Grams","totalAmount":35.10}"#

    func refusal(_ body: String) -> TillError? {
        do {
            _ = try RequestDecoding.decodeSale(Data(body.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func readsASaleWithExactDecimals() throws {
        let sale = try RequestDecoding.decodeSale(Data(#"{"clientSaleId":"s-1","customerType":"Consumer","lines":[\#(line)]}"#.utf8))
        #expect(sale.lines.first?.quantity == Decimal(string: "3.5"))
        #expect(sale.lines.first?.totalAmount == Money(cents: 3510))
    }

    /// The hand reader (`SaleJSONReader`) must agree with the decoder on every body it reads, abstain on
    /// every body the decoder refuses, and read the bodies registers really send (or it saves nothing).
    @Test func theHandReaderAgreesWithTheDecoderOrLeavesTheBodyToIt() throws {
        let full = #"{"packageLabel":"1A4-é/☘","quantity":0.000001,"unit":"Ounces","totalAmount":0,"discountAmount":1.5,"taxes":{"salesTax":2.90,"exciseTax":null,"cityTax":0.01,"countyTax":100,"municipalTax":12345678.99}}"#
        let read: [String] = [
            #"{"clientSaleId":"s-1","customerType":"Consumer","lines":[\#(line)]}"#,
            " \n{ \"lines\" : [ \(line) , \(full) ] ,\t\"customerType\":\"Caregiver\", \"clientSaleId\":\"s:2.x_y-z\" } \r\n",
            #"{"clientSaleId":"s-3","customerType":"Patient","lines":[\#(full)],"patientLicenseNumber":"PT-1","caregiverLicenseNumber":null,"identificationMethod":"DL","patientRegistrationLocationId":-42}"#,
            #"{"clientSaleId":"","customerType":"ExternalPatient","lines":[]}"#,
            #"{"clientSaleId":"s-5","customerType":"NonResidentConsumer","lines":[{"packageLabel":"P","quantity":-0,"unit":"Each","totalAmount":-1.5,"taxes":{}}]}"#,
            #"{"clientSaleId":"s-6","customerType":"Consumer","lines":[{"packageLabel":"P","quantity":123456789012345.123456789,"unit":"Each","totalAmount":0.10,"taxes":null,"discountAmount":null}]}"#,
        ]
        for body in read {
            let data = Data(body.utf8)
            let fast = try #require(SaleJSONReader.read(data), "the hand reader left to the decoder: \(body)")
            let decoded = try RequestDecoding.decodeSaleByDecoder(data)
            #expect(fast == decoded, "\(body)")
            // Equal is not enough: the digest and the stored quantities use the decimals' spelling too.
            #expect(RequestDecoding.canonical(fast) == RequestDecoding.canonical(decoded), "\(body)")
        }
        let leftToTheDecoder: [String] = [
            "", "{", "[]", "null", #"{"clientSaleId":"s","customerType":"Consumer","lines":[]} x"#,
            #"{"clientSaleId":"s\u0041","customerType":"Consumer","lines":[]}"#,           // an escape
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[],"clientSaleId":"t"}"#,  // a repeated key
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[],"note":1}"#,           // an unknown field
            #"{"clientSaleId":"s","customerType":"consumer","lines":[]}"#,                   // not a customer type
            #"{"clientSaleId":null,"customerType":"Consumer","lines":[]}"#,
            #"{"clientSaleId":7,"customerType":"Consumer","lines":[]}"#,
            #"{"customerType":"Consumer","lines":[]}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[{"packageLabel":"P","quantity":1e2,"unit":"Each","totalAmount":1}]}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[{"packageLabel":"P","quantity":01,"unit":"Each","totalAmount":1}]}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[{"packageLabel":"P","quantity":1.,"unit":"Each","totalAmount":1}]}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[{"packageLabel":"P","quantity":"1","unit":"Each","totalAmount":1}]}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[{"packageLabel":"P","quantity":1,"unit":"Each","totalAmount":1.005}]}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[{"packageLabel":"P","quantity":1,"unit":"Each"}]}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[{"packageLabel":"P","quantity":1,"unit":"Each","totalAmount":1,"taxes":{"stateTax":1}}]}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[],"patientRegistrationLocationId":1.5}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[],"patientRegistrationLocationId":9223372036854775808}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[1]}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":[],}"#,
            #"{"clientSaleId":"s","customerType":"Consumer","lines":{}}"#,
        ]
        for body in leftToTheDecoder {
            #expect(SaleJSONReader.read(Data(body.utf8)) == nil, "\(body)")
        }
    }

    @Test func refusesFieldsItDoesNotKnowWhereverTheyAre() {
        let root = refusal(#"{"clientSaleId":"s-1","customerType":"Consumer","lines":[\#(line)],"note":"x"}"#)
        #expect(root?.code == "unknown_field")
        #expect(root?.details["field"] == "note")
        let inLine = refusal(#"{"clientSaleId":"s-1","customerType":"Consumer","lines":[\#(line),{"packageLabel":"P","quantity":1,"unit":"Each","totalAmount":1,"discountAmmount":1}]}"#)
        #expect(inLine?.details["field"] == "lines[1].discountAmmount")
        let inTaxes = refusal(#"{"clientSaleId":"s-1","customerType":"Consumer","lines":[{"packageLabel":"P","quantity":1,"unit":"Each","totalAmount":1,"taxes":{"stateTax":1}}]}"#)
        #expect(inTaxes?.details["field"] == "lines[0].taxes.stateTax")
        // The unknown field is named even when another field is also mistyped.
        #expect(refusal(#"{"clientSaleId":7,"customerType":"Consumer","lines":[],"note":"x"}"#)?.code == "unknown_field")
    }

    @Test func saysWhatIsWrongWithABodyThatIsNoSale() {
        #expect(refusal("")?.code == "empty_body")
        #expect(refusal(#"{"clientSaleId": "#)?.code == "malformed_json")
        #expect(refusal("[1,2]")?.code == "invalid_request")
        #expect(refusal("3")?.code == "invalid_request")
        #expect(refusal("null")?.code == "invalid_request")
        // Valid JSON with a number no decimal or id holds: not called malformed.
        let tiny = refusal(#"{"clientSaleId":"s-1","customerType":"Consumer","lines":[{"packageLabel":"P","quantity":5e-324,"unit":"Each","totalAmount":1}]}"#)
        #expect(tiny?.code == "invalid_request")
        let hugeId = refusal(#"{"clientSaleId":"s-1","customerType":"Patient","patientRegistrationLocationId":9223372036854775808,"lines":[\#(line)]}"#)
        #expect(hugeId?.code == "invalid_request")
        let notAnObject = refusal(#"{"clientSaleId":"s-1","customerType":"Consumer","lines":[1]}"#)
        #expect(notAnObject?.code == "invalid_field")
        #expect(notAnObject?.details["field"] == "lines[0]")
        #expect(refusal(#"{"clientSaleId":"s-1","customerType":"Consumer","lines":[{"packageLabel":"P","quantity":1,"unit":"Each","totalAmount":1.005}]}"#)?.code
                == "invalid_field")
        #expect(refusal(#"{"clientSaleId":"s-1","customerType":"Shopper","lines":[\#(line)]}"#)?.code == "invalid_customer_type")
    }

    @Test func theDigestIgnoresSpellingButNotContent() throws {
        func digest(_ body: String) throws -> [UInt8] { RequestDecoding.canonical(try RequestDecoding.decodeSale(Data(body.utf8))) }
        let plain = try digest(#"{"clientSaleId":"s-1","customerType":"Consumer","lines":[\#(line)]}"#)
        let respelt = try digest("""
            { "lines": [ {"totalAmount": 35.1, "unit": "Grams", "quantity": 3.50, "packageLabel": "PKG-1", "taxes": null} ],
              "customerType": "Consumer", "patientLicenseNumber": null, "clientSaleId": "s-1" }
            """)
        #expect(plain == respelt)
        #expect(try digest(#"{"clientSaleId":"s-1","customerType":"Consumer","lines":[{"packageLabel":"PKG-1","quantity":3.6,"unit":"Grams","totalAmount":35.10}]}"#)
                != plain)
        #expect(String(decoding: plain, as: UTF8.self)
                == #"{"clientSaleId":"s-1","customerType":"Consumer","lines":[{"packageLabel":"PKG-1","quantity":3.5,"totalAmount":35.1,"unit":"Grams"}]}"#)
    }
}

@Suite struct SaleAnswerWritingTests {
    @Test func aSaleIsWrittenWithSortedKeysExactNumbersAndEscapedText() throws {
        let sale = Sale(id: 42, clientSaleId: "s-\"1\"", receiptNumber: "ABC123-000042", customerType: .patient,
                        patientLicenseNumber: "PT-1\n", caregiverLicenseNumber: nil, identificationMethod: nil,
                        patientRegistrationLocationId: nil, soldAt: Date(timeIntervalSince1970: 1_795_000_000),
                        salesDateTime: "2026-11-20T10:00:00.000", businessDate: "2026-11-20",
                        lines: [SaleLine(packageLabel: "PKG\\1", quantity: Decimal(string: "0.000001")!, unit: "Grams",
                                         totalAmount: Money(cents: 5), discountAmount: Money(cents: 100),
                                         taxes: LineTaxes(salesTax: Money(cents: 1234)), packageDecrementPicos: 1_000_000)],
                        totalAmount: Money(cents: 5), status: .rejected, metrcReceiptId: 9_000_000_001,
                        reportedAt: Date(timeIntervalSince1970: 1_795_000_001), rejection: ["No \u{1}such package."],
                        saleUndone: true)
        var json = JSONWriter()
        SaleView(sale).write(into: &json)
        let text = String(decoding: json.bytes, as: UTF8.self)
        #expect(text == #"{"businessDate":"2026-11-20","clientSaleId":"s-\"1\"","customerType":"Patient","id":42,"#
                + #""lines":[{"discountAmount":1,"packageLabel":"PKG\\1","quantity":0.000001,"taxes":{"salesTax":12.34},"#
                + #""totalAmount":0.05,"unit":"Grams"}],"metrcReceiptId":9000000001,"patientLicenseNumber":"PT-1\n","#
                + #""receiptNumber":"ABC123-000042","rejection":["No \u0001such package."],"reportedAt":"2026-11-18T11:06:41Z","#
                + #""saleUndone":true,"salesDateTime":"2026-11-20T10:00:00.000","status":"rejected","totalAmount":0.05}"#)
        // Dates as the other answers write them (JSONEncoder's .iso8601).
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        #expect(String(decoding: try encoder.encode([sale.reportedAt]), as: UTF8.self) == #"["2026-11-18T11:06:41Z"]"#)
        // And it is JSON any parser reads back to the same values.
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String: Any])
        #expect(parsed["clientSaleId"] as? String == "s-\"1\"")
        #expect(parsed["patientLicenseNumber"] as? String == "PT-1\n")
    }

    @Test func moneyIsWrittenAsTheShortestExactNumeral() {
        #expect(Money(cents: 3510).shortestNumeral == "35.1")
        #expect(Money(cents: 3500).shortestNumeral == "35")
        #expect(Money(cents: 5).shortestNumeral == "0.05")
        #expect(Money(cents: -1205).shortestNumeral == "-12.05")
        #expect(Money(cents: 3510).description == "35.10")
        #expect(Money(cents: -7).description == "-0.07")
    }
}
