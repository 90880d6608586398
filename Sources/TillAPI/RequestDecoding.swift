import Foundation
import TillDomain

/// Reads register JSON into domain values, with errors that say which field is wrong.
enum RequestDecoding {
    static func decodeSale(_ body: Data) throws(TillError) -> SaleRequest {
        guard !body.isEmpty else { throw .invalid("empty_body", "The request body is empty; send the sale as JSON.") }
        do {
            return try JSONDecoder().decode(SaleRequest.self, from: body)
        } catch let error as DecodingError {
            throw describe(error)
        } catch {
            throw .invalid("malformed_json", "The request body is not valid JSON.")
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
