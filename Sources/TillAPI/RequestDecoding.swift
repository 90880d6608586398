import Foundation
import TillDomain

/// Reads register JSON into domain values, with errors that say which field is wrong.
enum RequestDecoding {
    static let saleFields: Set<String> = ["clientSaleId", "customerType", "lines", "patientLicenseNumber",
                                          "caregiverLicenseNumber", "identificationMethod", "patientRegistrationLocationId"]
    static let lineFields: Set<String> = ["packageLabel", "quantity", "unit", "totalAmount", "discountAmount", "taxes"]
    static let taxFields: Set<String> = ["salesTax", "exciseTax", "cityTax", "countyTax", "municipalTax"]

    static func decodeSale(_ body: Data) throws(TillError) -> SaleRequest {
        try decode(SaleRequest.self, from: body, noun: "sale") { sale throws(TillError) in
            try refuseUnknownFields(sale, allowed: saleFields, at: "")
            for (index, line) in (sale["lines"] as? [Any] ?? []).enumerated() {
                guard let line = line as? [String: Any] else { continue }  // the decoder reports the wrong type
                try refuseUnknownFields(line, allowed: lineFields, at: "lines[\(index)]")
                if let taxes = line["taxes"] as? [String: Any] {
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
        try decode(CheckInRequest.self, from: body, noun: "check-in") { object throws(TillError) in
            try refuseUnknownFields(object, allowed: checkInFields, at: "")
        }
    }

    /// Reads a JSON object into `T`. Empty, malformed and non-object bodies are refused first, then any
    /// field `checkFields` does not know: a misspelt field (say `discountAmmount`) would otherwise vanish
    /// silently and the sale be reported without it.
    private static func decode<T: Decodable>(_ type: T.Type, from body: Data, noun: String,
                                             checkFields: ([String: Any]) throws(TillError) -> Void) throws(TillError) -> T {
        guard !body.isEmpty else { throw .invalid("empty_body", "The request body is empty; send the \(noun) as JSON.") }
        guard let root = try? JSONSerialization.jsonObject(with: body) else {
            throw .invalid("malformed_json", "The request body is not valid JSON.")
        }
        guard let object = root as? [String: Any] else {
            throw .invalid("invalid_request", "The request body must be a JSON object (the \(noun)).")
        }
        try checkFields(object)
        do {
            return try JSONDecoder().decode(T.self, from: body)
        } catch let error as DecodingError {
            throw describe(error)
        } catch {
            throw .invalid("malformed_json", "The request body is not valid JSON.")
        }
    }

    private static func refuseUnknownFields(_ object: [String: Any], allowed: Set<String>, at path: String) throws(TillError) {
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            let field = path.isEmpty ? unknown : "\(path).\(unknown)"
            throw .invalid("unknown_field", "\(field) is not a field Till knows; check its spelling.", details: ["field": field])
        }
    }

    /// The sale re-encoded with sorted keys: its digest identifies the sale whatever the register's whitespace.
    static func canonical(_ sale: SaleRequest) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(sale)
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
