import Foundation
import JSONWriting
import TillDomain

/// Reads register JSON into domain values, with errors that say which field is wrong.
enum RequestDecoding {
    static let saleFields: Set<String> = ["clientSaleId", "customerType", "lines", "patientLicenseNumber",
                                          "caregiverLicenseNumber", "identificationMethod", "patientRegistrationLocationId"]
    static let lineFields: Set<String> = ["packageLabel", "quantity", "unit", "totalAmount", "discountAmount", "taxes"]
    static let taxFields: Set<String> = ["salesTax", "exciseTax", "cityTax", "countyTax", "municipalTax"]

    static func decodeSale(_ body: Data) throws(TillError) -> SaleRequest {
        if let sale = SaleJSONReader.read(body) { return sale }  // the common body, read by hand
        return try decodeSaleByDecoder(body)
    }

    /// The decoder's reading, which also names whatever is wrong with a body; the hand reader agrees with
    /// it or leaves the body to it.
    static func decodeSaleByDecoder(_ body: Data) throws(TillError) -> SaleRequest {
        try decode(SaleRequest.self, from: body, noun: "sale") { sale in
            try refuseUnknownFields(sale, allowed: saleFields, at: "")
            guard sale.contains(AnyKey("lines")), var lines = try? sale.nestedUnkeyedContainer(forKey: AnyKey("lines")) else {
                return  // the decoder reports a missing or mistyped field
            }
            while !lines.isAtEnd {
                let index = lines.currentIndex
                guard let line = try? lines.nestedContainer(keyedBy: AnyKey.self) else {
                    _ = try lines.decode(Skipped.self)  // not an object: the decoder reports it
                    continue
                }
                try refuseUnknownFields(line, allowed: lineFields, at: "lines[\(index)]")
                if let taxes = try? line.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("taxes")) {
                    try refuseUnknownFields(taxes, allowed: taxFields, at: "lines[\(index)].taxes")
                }
            }
        }
    }

    /// A patient check-in as a pharmacist or register sends it.
    struct CheckInRequest: Decodable {
        var checkInLocationId: Int64
        var checkInDate: String?
        var registrationStartDate: String?
        var registrationExpiryDate: String?
        var clientCheckInId: String?
    }
    static let checkInFields: Set<String> = ["checkInLocationId", "checkInDate", "registrationStartDate",
                                             "registrationExpiryDate", "clientCheckInId"]

    static func decodeCheckIn(_ body: Data) throws(TillError) -> CheckInRequest {
        try decode(CheckInRequest.self, from: body, noun: "check-in") { object in
            try refuseUnknownFields(object, allowed: checkInFields, at: "")
        }
    }

    /// A return as a manager (or a register, where allowed) sends it.
    struct ReturnBody: Decodable {
        var clientReturnId: String
        var lines: [ReturnLineRequest]?
        var all: Bool?
        var reason: String
        var disposition: String?
        var note: String?
    }

    static let returnFields: Set<String> = ["clientReturnId", "lines", "all", "reason", "disposition", "note"]
    static let returnLineFields: Set<String> = ["packageLabel", "quantity", "unit"]

    static func decodeReturn(_ body: Data) throws(TillError) -> ReturnRequest {
        let decoded = try decode(ReturnBody.self, from: body, noun: "return") { object in
            try refuseUnknownFields(object, allowed: returnFields, at: "")
            try refuseNulls(object, ["lines", "all", "disposition", "note"])
            guard var lines = try? object.nestedUnkeyedContainer(forKey: AnyKey("lines")) else { return }
            while !lines.isAtEnd {
                let index = lines.currentIndex
                guard let line = try? lines.nestedContainer(keyedBy: AnyKey.self) else {
                    _ = try lines.decode(Skipped.self)
                    continue
                }
                try refuseUnknownFields(line, allowed: returnLineFields, at: "lines[\(index)]")
            }
        }
        var disposition: ReturnDisposition?
        if let given = decoded.disposition {
            guard let known = ReturnDisposition(rawValue: given.lowercased()) else {
                throw .invalid("invalid_disposition", "disposition must be restock, quarantine or waste.", details: ["field": "disposition"])
            }
            disposition = known
        }
        return ReturnRequest(clientReturnId: decoded.clientReturnId, lines: decoded.lines ?? [], all: decoded.all ?? false,
                             reason: decoded.reason, disposition: disposition,
                             note: decoded.note.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 })
    }

    /// A repair: `{"dryRun": true}` lists what would be sent and sends nothing; an empty body is a real repair.
    struct RepairBody: Decodable {
        var dryRun: Bool?
    }

    static func decodeRepair(_ body: Data) throws(TillError) -> RepairBody {
        guard !body.isEmpty else { return RepairBody(dryRun: nil) }
        return try decode(RepairBody.self, from: body, noun: "repair") { object in
            try refuseUnknownFields(object, allowed: ["dryRun"], at: "")
            // Read as absent, a null dryRun would be a real repair: writes to Metrc nobody asked for.
            try refuseNulls(object, ["dryRun"])
        }
    }

    /// The return's content in one spelling: its digest tells a retry from a different return with the same id.
    static func canonical(_ request: ReturnRequest) -> Data {
        (try? JSONResponse.encoder.encode(request)) ?? Data()
    }

    /// Reads a JSON object into `T`, parsing the body once. Empty, malformed and non-object bodies are
    /// refused first, then any field `checkFields` does not know: a misspelt field (say `discountAmmount`)
    /// would otherwise vanish silently and the sale be reported without it.
    private static func decode<T: Decodable>(_ type: T.Type, from body: Data, noun: String,
                                             checkFields: @escaping @Sendable (KeyedDecodingContainer<AnyKey>) throws -> Void)
        throws(TillError) -> T {
        guard !body.isEmpty else { throw .invalid("empty_body", "The request body is empty; send the \(noun) as JSON.") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom(Self.instant)
        decoder.userInfo[FieldCheck.key] = FieldCheck(check: checkFields)
        do {
            return try decoder.decode(FieldChecked<T>.self, from: body).value
        } catch let error as TillError {
            throw error
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw .invalid("invalid_request", "The request body must be a JSON object (the \(noun)).")
        } catch DecodingError.valueNotFound(_, let context) where context.codingPath.isEmpty {
            // `null` itself: no field is missing, the body is not an object.
            throw .invalid("invalid_request", "The request body must be a JSON object (the \(noun)), not null.")
        } catch let error as DecodingError {
            let refusal = describe(error)
            // The decoder calls a number it cannot hold (5e-324, an id past Int64) invalid JSON, and names no field.
            if refusal.code == "malformed_json", (try? JSONSerialization.jsonObject(with: body, options: .fragmentsAllowed)) != nil {
                throw .invalid("invalid_request", "A number in the \(noun) is out of the range Till reads: amounts and quantities "
                               + "have at most 38 digits (exponents -128 to 127), ids are 64-bit integers.")
            }
            throw refusal
        } catch {
            throw .invalid("malformed_json", "The request body is not valid JSON.")
        }
    }

    /// An instant as ISO 8601 with its offset (`2026-12-05T14:00:00-08:00`, `…Z`, fractions allowed): never a
    /// wall-clock time without zone, which would be read in some zone by guess.
    private static func instant(_ decoder: any Decoder) throws -> Date {
        let text = try decoder.singleValueContainer().decode(String.self)
        let plain = ISO8601DateFormatter(), fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = plain.date(from: text) ?? fractional.date(from: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "'\(text)' is not an ISO 8601 time with an offset (e.g. 2026-12-05T14:00:00-08:00)"))
        }
        return date
    }

    /// A request's shape: which fields each object may carry, for the unknown-field check.
    indirect enum Shape: Sendable {
        case value
        case object([String: Shape])
        case array(Shape)
    }

    /// Reads `T` after refusing any field `shape` does not know, at any depth.
    static func decode<T: Decodable>(_ type: T.Type, from body: Data, noun: String, shape: Shape) throws(TillError) -> T {
        try decode(type, from: body, noun: noun) { object in try check(object, against: shape, at: "") }
    }

    private static func check(_ object: KeyedDecodingContainer<AnyKey>, against shape: Shape, at path: String) throws {
        guard case .object(let fields) = shape else { return }
        try refuseUnknownFields(object, allowed: Set(fields.keys), at: path)
        for (name, inner) in fields {
            let field = path.isEmpty ? name : "\(path).\(name)"
            switch inner {
            case .value:
                continue
            case .object:
                if let nested = try? object.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey(name)) {
                    try check(nested, against: inner, at: field)
                }
            case .array(let element):
                guard case .object = element, var items = try? object.nestedUnkeyedContainer(forKey: AnyKey(name)) else { continue }
                while !items.isAtEnd {
                    let index = items.currentIndex
                    guard let item = try? items.nestedContainer(keyedBy: AnyKey.self) else {
                        _ = try items.decode(Skipped.self)
                        continue
                    }
                    try check(item, against: element, at: "\(field)[\(index)]")
                }
            }
        }
    }

    /// Optional fields the document gives a type without null: a null there is refused, as the document says,
    /// rather than read as absent (the decoder's way).
    private static func refuseNulls(_ object: KeyedDecodingContainer<AnyKey>, _ fields: [String]) throws(TillError) {
        for field in fields where object.contains(AnyKey(field)) && ((try? object.decodeNil(forKey: AnyKey(field))) ?? false) {
            throw .invalid("invalid_field", "\(field) must not be null; leave it out instead.", details: ["field": field])
        }
    }

    private static func refuseUnknownFields(_ object: KeyedDecodingContainer<AnyKey>, allowed: Set<String>,
                                            at path: String) throws(TillError) {
        if let unknown = object.allKeys.map(\.stringValue).sorted().first(where: { !allowed.contains($0) }) {
            let field = path.isEmpty ? unknown : "\(path).\(unknown)"
            throw .invalid("unknown_field", "\(field) is not a field Till knows; check its spelling.", details: ["field": field])
        }
    }

    /// The sale's content in one spelling (keys sorted, numbers as exact decimals, nulls left out): its
    /// digest identifies the sale whatever the register's whitespace, key order or number spelling.
    static func canonical(_ sale: SaleRequest) -> [UInt8] {
        var json = JSONWriter()
        json.object { json in
            json.field("caregiverLicenseNumber", sale.caregiverLicenseNumber)
            json.field("clientSaleId", sale.clientSaleId)
            json.field("customerType", sale.customerType.rawValue)
            json.field("identificationMethod", sale.identificationMethod)
            json.field("lines") { json in
                // A line as the answer shows it: the same fields, spelt the same way.
                json.array(sale.lines) { json, line in
                    SaleView.LineView(packageLabel: line.packageLabel, quantity: line.quantity, unit: line.unit,
                                      totalAmount: line.totalAmount, discountAmount: line.discountAmount, taxes: line.taxes)
                        .write(into: &json)
                }
            }
            json.field("patientLicenseNumber", sale.patientLicenseNumber)
            json.field("patientRegistrationLocationId", sale.patientRegistrationLocationId)
        }
        return json.bytes
    }

    private static func describe(_ error: DecodingError) -> TillError {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
                .trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return .invalid("missing_field", "\(field) is required.", details: ["field": field])
        case .valueNotFound(_, let context):
            let field = path(context.codingPath)
            return .invalid("missing_field", "\(field) must not be null.", details: ["field": field])
        case .typeMismatch(let type, let context):
            let field = path(context.codingPath)
            return .invalid("invalid_field", "\(field) has the wrong type (expected \(type)).", details: ["field": field])
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return .invalid("malformed_json", "The request body is not valid JSON.")
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            if field == "customerType" {
                return .invalid("invalid_customer_type",
                                "customerType must be one of \(CustomerType.allCases.map(\.rawValue).joined(separator: ", ")).",
                                details: ["field": field])
            }
            return .invalid("invalid_field", "\(field): \(context.debugDescription)", details: ["field": field])
        @unknown default:
            return .invalid("invalid_request", "The sale could not be read.")
        }
    }
}

/// Any key of a JSON object, so that the fields a request carries can be listed (a type's own CodingKeys
/// silently drop the ones it does not know).
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// The field check `RequestDecoding.decode` hands the decoder, run on the same parse as the decoding.
private struct FieldCheck: Sendable {
    static let key = CodingUserInfoKey(rawValue: "till.fieldCheck")!
    let check: @Sendable (KeyedDecodingContainer<AnyKey>) throws -> Void
}

/// `T`, after its fields passed the check (which throws before any field of `T` is read).
private struct FieldChecked<T: Decodable>: Decodable {
    let value: T

    init(from decoder: any Decoder) throws {
        if let fieldCheck = decoder.userInfo[FieldCheck.key] as? FieldCheck {
            try fieldCheck.check(decoder.container(keyedBy: AnyKey.self))
        }
        value = try T(from: decoder)
    }
}

/// Any JSON value, read and dropped.
private struct Skipped: Decodable {
    init(from decoder: any Decoder) throws {}
}
