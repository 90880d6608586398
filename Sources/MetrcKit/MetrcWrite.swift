import Foundation

/// One write to Metrc as Till's journal keeps it: a verb, a path, and the JSON objects sent as the body's
/// array exactly as they were journaled (none for a DELETE, whose path names what it removes).
public struct MetrcWrite: Sendable, Equatable {
    public var method: String
    /// Already percent-encoded, e.g. `/sales/v2/receipts` or `/sales/v2/receipts/1000001`.
    public var path: String
    /// Each one JSON object; the body is `[` + these joined by `,` + `]`.
    public var objects: [String]

    public init(method: String, path: String, objects: [String]) {
        self.method = method
        self.path = path
        self.objects = objects
    }

    /// `path` with an Id at its end as `{id}` (`/sales/v2/receipts/{id}`): the metrics' endpoint.
    public var endpoint: String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        let last = path[path.index(after: slash)...]
        guard !last.isEmpty, last.allSatisfy({ $0.isASCII && $0.isNumber }) else { return path }
        return String(path[...slash]) + "{id}"
    }

    /// The request body: nil for a write without objects (a DELETE).
    public var body: Data? {
        guard !objects.isEmpty else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(objects.reduce(2) { $0 + $1.utf8.count + 1 })
        bytes.append(UInt8(ascii: "["))
        for (index, object) in objects.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(contentsOf: object.utf8)
        }
        bytes.append(UInt8(ascii: "]"))
        return Data(bytes)
    }
}

extension MetrcClient {
    public func send(_ write: MetrcWrite) async throws(MetrcError) -> [Int64?] {
        let body = write.body
        var call = Call(write.method, write.path, endpoint: write.endpoint, body: body)
        call.personalNumbersInBody = true
        let response = try await perform(call)
        return ids(in: response, expected: write.objects.count, call)
    }

    /// Patient and caregiver numbers in a write's body, to mask wherever Metrc's answer to it is logged; read
    /// only when something is logged.
    static func personalNumbers(inBody body: Data?) -> [String] {
        guard let body, let json = try? JSONSerialization.jsonObject(with: body) as? [[String: Any]] else { return [] }
        return json.flatMap { object in
            ["PatientLicenseNumber", "CaregiverLicenseNumber"].compactMap { object[$0] as? String }
        }
    }
}
