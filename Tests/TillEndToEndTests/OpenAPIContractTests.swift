import CurlHTTP
import Foundation
import MetrcSimulator
import Testing
import TillDomain

/// The OpenAPI document (Sources/TillAPI/openapi.json) is the contract registers are written against:
/// these tests keep it true to the routes, the error codes and the answers the server really gives.
@Suite struct OpenAPIContractTests {
    @Test func servedDocumentIsTheRepositoryFileAndDocumentsEveryRouteWithItsRoles() async throws {
        try await TillHarness.run { till in
            let file = try Data(contentsOf: SourceTree.root.appendingPathComponent("Sources/TillAPI/openapi.json"))

            let served = try await till.request("GET", "/v1/openapi.json")

            #expect(served.status == 200)
            #expect(served.body == file, "GET /v1/openapi.json must serve Sources/TillAPI/openapi.json byte for byte")
            let document = try OpenAPI(data: file)
            #expect(document.root["openapi"] == .string("3.1.0"))

            let routes = try SourceTree.routes()
            #expect(routes.count >= 7, "Routes.swift could not be read: \(routes)")
            let documented = Set(document.operations.map(\.key))
            let implemented = Set(routes.map(\.key))
            #expect(implemented.subtracting(documented).isEmpty,
                    "routes missing from openapi.json: \(implemented.subtracting(documented).sorted())")
            #expect(documented.subtracting(implemented).isEmpty,
                    "operations in openapi.json the server does not have: \(documented.subtracting(implemented).sorted())")

            let publicPaths = try SourceTree.publicPaths()
            let allRoles = TerminalRole.allCases.map(\.rawValue).sorted()
            for route in routes {
                guard let operation = document.operations[route.key] else { continue }
                let responses = operation["responses"]?.objectValue ?? [:]
                // A handler that never asks for a terminal must be on the auth middleware's public list, and vice versa.
                #expect((route.roles == nil) == publicPaths.contains(route.path), "\(route.key): public or not?")
                if let roles = route.roles {
                    #expect(operation["security"] == nil, "\(route.key) needs a token: it must not override security")
                    #expect(operation["x-till-roles"]?.stringArray?.sorted() == roles,
                            "\(route.key): x-till-roles must be \(roles)")
                    #expect(responses["401"] != nil, "\(route.key) must document 401")
                    #expect(responses["429"] != nil, "\(route.key) must document 429: a connection past 5 failed tokens gets it")
                    #expect((responses["403"] != nil) == (roles != allRoles), "\(route.key): 403 iff some role may not call it")
                } else {
                    #expect(operation["security"] == .array([]), "\(route.key) is public: security must be []")
                    #expect(operation["x-till-roles"] == nil)
                    #expect(responses["401"] == nil, "\(route.key) is public: it never answers 401")
                }
            }
        }
    }

    @Test func everyErrorCodeInTheSourcesIsDocumentedAndEveryDocumentedCodeIsUsed() throws {
        let document = try OpenAPI(data: Data(contentsOf: SourceTree.root.appendingPathComponent("Sources/TillAPI/openapi.json")))
        let documented = try #require(document.errorCodes)
        let emitted = try SourceTree.errorCodes()
        let emittedCodes = Set(emitted.map(\.code))

        #expect(emittedCodes.count >= 30, "the source scan found too few codes: \(emittedCodes.sorted())")
        #expect(emittedCodes.subtracting(documented).isEmpty,
                "codes the server emits but ErrorCode does not list: \(emittedCodes.subtracting(documented).sorted())")
        #expect(documented.subtracting(emittedCodes).isEmpty,
                "codes ErrorCode lists but no source emits: \(documented.subtracting(emittedCodes).sorted())")
        let enumDescriptions = document.schema("ErrorCode")?["x-enum-descriptions"]?.objectValue ?? [:]
        #expect(Set(enumDescriptions.keys) == documented, "every ErrorCode needs exactly one x-enum-descriptions entry")

        // Each error response lists the codes it can carry: they must be ErrorCodes, and come with that status.
        let statusByCode = Dictionary(emitted.compactMap { e in e.status.map { (e.code, $0) } }, uniquingKeysWith: { a, _ in a })
        for (key, operation) in document.operations {
            for (status, response) in operation["responses"]?.objectValue ?? [:] where status.hasPrefix("4") || status.hasPrefix("5") {
                let schema = response["content"]?["application/json"]?["schema"]
                let codes = try #require(OpenAPI.narrowedCodes(schema), "\(key) \(status) must list its error codes")
                #expect(!codes.isEmpty)
                for code in codes {
                    #expect(documented.contains(code), "\(key) \(status): \(code) is not an ErrorCode")
                    if let expected = statusByCode[code] {
                        #expect("\(expected)" == status, "\(key): \(code) comes with \(expected), documented under \(status)")
                    }
                }
            }
        }
    }

    @Test func aKnownPathAskedWithAnotherMethodIs405AndNamesItsMethods() async throws {
        try await TillHarness.run { till in
            let manager = till.managerToken
            let cases: [(method: String, path: String, allowed: String)] = [
                ("DELETE", "/v1/sales/1", "GET"), ("PUT", "/v1/sales", "GET, POST"), ("POST", "/v1/packages", "GET"),
                ("GET", "/v1/patients/PT-1/checkins", "POST"), ("PATCH", "/v1/reporting/", "GET"),
            ]
            for (method, path, allowed) in cases {
                let answer = try await till.request(method, path, token: manager)
                #expect(answer.status == 405, "\(method) \(path)")
                #expect(answer.errorCode == "method_not_allowed", "\(method) \(path)")
                #expect(answer.headers["allow"] == allowed, "\(method) \(path)")
                #expect((answer.error?["details"] as? [String: Any])?["allowed"] as? String == allowed)
            }
            for path in ["/v1/nowhere", "/v1/sales/1/lines", "/v2/sales"] {
                let answer = try await till.request("GET", path, token: manager)
                #expect(answer.status == 404, "\(path)")
                #expect(answer.errorCode == "not_found", "\(path)")
            }
            #expect(try await till.request("DELETE", "/v1/sales/1").status == 401)  // no token: 401 first, as for 404
        }
    }

    @Test func theBearerSchemeIsReadInAnyCaseAndTheTokenWithoutSurroundingSpace() async throws {
        try await TillHarness.run { till in
            for header in ["bearer \(till.managerToken)", "BEARER   \(till.managerToken)  ", "Bearer \(till.managerToken)\t"] {
                let answer = try await till.request("GET", "/v1/packages", headers: [(name: "Authorization", value: header)])
                #expect(answer.status == 200, "\(header)")
            }
            let empty = try await till.request("GET", "/v1/packages", headers: [(name: "Authorization", value: "Bearer   ")])
            #expect(empty.errorCode == "unauthorized")  // the header's trailing spaces go in transit: no token at all
            let basic = try await till.request("GET", "/v1/packages", headers: [(name: "Authorization", value: "Basic abc")])
            #expect(basic.errorCode == "unauthorized")
        }
    }

    @Test func liveAnswersConformToTheirDocumentedSchemas() async throws {
        try await TillHarness.run { till in
            let check = try LiveChecker(till: till, document: OpenAPI(
                data: Data(contentsOf: SourceTree.root.appendingPathComponent("Sources/TillAPI/openapi.json"))))
            let register = till.registerToken

            _ = try await check("GET", "/v1/health", status: 200)
            _ = try await check("GET", "/v1/openapi.json", status: 200)
            let packages = try await check("GET", "/v1/packages", token: till.pharmacistToken, status: 200)
            #expect(packages["packages"]?.arrayValue?.isEmpty == false)

            let reported = try await check("POST", "/v1/sales", body: saleBody("contract-1"), token: register, status: 201)
            let id = try #require(reported["id"]?.intValue)
            let businessDate = try #require(reported["businessDate"]?.stringValue)
            _ = try await check("GET", "/v1/sales/\(id)", template: "/v1/sales/{id}", token: register, status: 200)
            _ = try await check("POST", "/v1/sales", body: saleBody("contract-1"), token: register, status: 201)  // a replay

            // Returns: a new one (owed to Metrc), its replay, and what is refused.
            let returns = "/v1/sales/{id}/returns", manager = till.managerToken
            let returnBody = #"{"clientReturnId":"contract-r1","lines":[{"packageLabel":"\#(Labels.flower)","quantity":1,"unit":"Grams"}],"reason":"Defective"}"#
            _ = try await check("POST", "/v1/sales/\(id)/returns", template: returns, body: returnBody, token: manager, status: 202)
            try await till.waitUntil("the return is reported") {
                try till.services.store.returns(saleId: Int64(id)).first?.status == .reported
            }
            _ = try await check("POST", "/v1/sales/\(id)/returns", template: returns, body: returnBody, token: manager, status: 201)
            _ = try await check("POST", "/v1/sales/\(id)/returns", template: returns,
                                body: returnBody.replacingOccurrences(of: "Defective", with: "Wrong item"), token: manager,
                                status: 409, code: "client_return_id_reused")
            _ = try await check("POST", "/v1/sales/\(id)/returns", template: returns,
                                body: #"{"clientReturnId":"contract-r2","lines":[{"packageLabel":"\#(Labels.flower)","quantity":9,"unit":"Grams"}],"reason":"Defective"}"#,
                                token: manager, status: 422, code: "return_exceeds_sale")
            _ = try await check("POST", "/v1/sales/\(id)/returns", template: returns,
                                body: #"{"clientReturnId":"contract-r3","all":true,"reason":"whim"}"#, token: manager, status: 400,
                                code: "unknown_return_reason")
            _ = try await check("POST", "/v1/sales/\(id)/returns", template: returns, body: returnBody, token: register, status: 403,
                                code: "forbidden")
            _ = try await check("POST", "/v1/sales/999999/returns", template: returns,
                                body: #"{"clientReturnId":"contract-r4","all":true,"reason":"Defective"}"#, token: manager,
                                status: 404, code: "sale_not_found")
            let withReturns = try await check("GET", "/v1/sales/\(id)", template: "/v1/sales/{id}", token: register, status: 200)
            #expect(withReturns["returns"]?.arrayValue?.count == 1)
            let held = try await check("GET", "/v1/quarantine", token: manager, status: 200)
            #expect(held["packages"]?.arrayValue?.count == 1)
            _ = try await check("GET", "/v1/quarantine", token: register, status: 403, code: "forbidden")

            // Metrc knows less of this package than Till does: it refuses the receipt while the register waits.
            await till.simulation.setPackageQuantity(license: TillHarness.license, label: Labels.tenEach, quantity: 0)
            let refused = try await check("POST", "/v1/sales", body: saleBody("contract-refused", label: Labels.tenEach, quantity: "1",
                                                                               unit: "Each"),
                                          token: register, status: 422, code: "metrc_rejected")
            let refusedId = try #require(refused["error"]?["details"]?["saleId"]?.stringValue)
            let rejectedSale = try await check("GET", "/v1/sales/\(refusedId)", template: "/v1/sales/{id}", token: register, status: 200)
            #expect(rejectedSale["status"] == .string("rejected"))

            _ = try await check("GET", "/v1/sales", status: 401, code: "unauthorized")
            _ = try await check("GET", "/v1/packages", token: "till_not-a-token", status: 401, code: "invalid_token")
            _ = try await check("POST", "/v1/sales", body: saleBody("contract-pharmacist"), token: till.pharmacistToken,
                                status: 403, code: "forbidden")
            _ = try await check("GET", "/v1/reporting", token: till.pharmacistToken, status: 403, code: "forbidden")
            _ = try await check("POST", "/v1/sales", body: #"{"clientSaleId": "#, token: register, status: 400, code: "malformed_json")
            let missing = try await check("POST", "/v1/sales", body: #"{"clientSaleId":"contract-x","customerType":"Consumer"}"#,
                                          token: register, status: 400, code: "missing_field")
            #expect(missing["error"]?["details"]?["field"] == .string("lines"))
            _ = try await check("GET", "/v1/sales/abc", template: "/v1/sales/{id}", token: register, status: 400, code: "invalid_sale_id")
            _ = try await check("GET", "/v1/sales/999999", template: "/v1/sales/{id}", token: register, status: 404,
                                code: "sale_not_found")
            _ = try await check("GET", "/v1/sales?date=yesterday", template: "/v1/sales", token: register, status: 400,
                                code: "invalid_date")
            _ = try await check("POST", "/v1/sales", body: saleBody("contract-1", quantity: "1"), token: register, status: 409,
                                code: "client_sale_id_reused")
            let oversized = #"{"clientSaleId":"contract-big","pad":""# + String(repeating: "a", count: 300_000) + #""}"#
            _ = try await check("POST", "/v1/sales", body: oversized, token: register, status: 413, code: "payload_too_large")
            _ = try await check("POST", "/v1/sales", body: saleBody("contract-11", label: Labels.tenEach, quantity: "11", unit: "Each"),
                                token: register, status: 422, code: "insufficient_quantity")
            try await check.unknownPath("/v1/nowhere", token: register)

            // Metrc is down: the sale is journaled, answered 202, and reported later by Till itself.
            await till.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil),
                                                      method: "POST", pathPrefix: "/sales/v2/receipts")])
            let pending = try await check("POST", "/v1/sales", body: saleBody("contract-2"), token: register, status: 202)
            #expect(pending["status"] == .string("pending_report"))

            let day = try await check("GET", "/v1/sales?date=\(businessDate)", template: "/v1/sales", token: till.pharmacistToken,
                                      status: 200)
            #expect(day["count"]?.intValue == 3)
            _ = try await check("GET", "/v1/sales", token: register, status: 200)
            let reporting = try await check("GET", "/v1/reporting", token: till.managerToken, status: 200)
            #expect(reporting["pending"]?.intValue == 1)
            #expect(reporting["rejected"]?.arrayValue?.count == 1)
            _ = try await check("GET", "/v1/reporting", token: register, status: 200)

            // The manager's day, while a sale of it is still owed to Metrc.
            let days = "/v1/days/{date}"
            let dayView = try await check("GET", "/v1/days/\(businessDate)", template: days, token: manager, status: 200)
            #expect(dayView["summary"]?["pending"]?.intValue == 1)
            _ = try await check("GET", "/v1/days/2026-02-30", template: days, token: manager, status: 400, code: "invalid_date")
            _ = try await check("GET", "/v1/days/\(businessDate)?format=xml", template: days, token: manager, status: 400,
                                code: "invalid_format")
            _ = try await check("GET", "/v1/days/\(businessDate)", template: days, token: register, status: 403, code: "forbidden")
            _ = try await check("POST", "/v1/days/\(businessDate)/repair", template: "/v1/days/{date}/repair", body: #"{"dryRun":true}"#,
                                token: manager, status: 200)
            _ = try await check("POST", "/v1/days/\(businessDate)/close", template: "/v1/days/{date}/close", token: manager,
                                status: 409, code: "day_close_blocked")
            _ = try await check("GET", "/v1/days/\(businessDate)/report", template: "/v1/days/{date}/report", token: manager, status: 200)
        }
    }

    /// Patients, caregivers, check-ins and medical sales, against the simulator's seeded registry (see `SimFacility.demo`).
    @Test func liveMedicalAnswersConformToTheirDocumentedSchemas() async throws {
        try await TillHarness.run { till in
            let check = try LiveChecker(till: till, document: OpenAPI(
                data: Data(contentsOf: SourceTree.root.appendingPathComponent("Sources/TillAPI/openapi.json"))))
            let pharmacist = till.pharmacistToken, register = till.registerToken
            let patientStatus = "/v1/patients/{license}/status", caregiverStatus = "/v1/caregivers/{license}/status"
            let checkIns = "/v1/patients/{license}/checkins", checkIn = "/v1/checkins/{id}"

            let patient = try await check("GET", "/v1/patients/PT-ACTIVE-0001/status", template: patientStatus, token: pharmacist,
                                          status: 200)
            #expect(patient["patientLicenseNumber"] == .string("PT-ACTIVE-0001"))
            #expect(patient["active"] == .bool(true) && patient["expired"] == .bool(false))
            #expect(patient["source"] == .string("metrc"))
            #expect(patient["allowances"]?["flower"]?["allowedOunces"]?.numberValue == Decimal(string: "2.5"))
            // Within Metrc's minute the same answer comes from Till's cache, with the same asOf.
            let cached = try await check("GET", "/v1/patients/PT-ACTIVE-0001/status", template: patientStatus, token: register,
                                         status: 200)
            #expect(cached["source"] == .string("cache"))
            #expect(cached["asOf"] == patient["asOf"])
            let expired = try await check("GET", "/v1/patients/PT-EXPIRED-0003/status", template: patientStatus, token: pharmacist,
                                          status: 200)
            #expect(expired["active"] == .bool(true) && expired["expired"] == .bool(true))
            _ = try await check("GET", "/v1/patients/PT-NOBODY-9999/status", template: patientStatus, token: pharmacist,
                                status: 404, code: "patient_not_found")
            _ = try await check("GET", "/v1/patients/PT%20ACTIVE/status", template: patientStatus, token: pharmacist,
                                status: 400, code: "invalid_license_number")
            _ = try await check("GET", "/v1/patients/PT-ACTIVE-0001/status", template: patientStatus, status: 401, code: "unauthorized")

            let caregiver = try await check("GET", "/v1/caregivers/CG-ACTIVE-0001/status", template: caregiverStatus, token: pharmacist,
                                            status: 200)
            #expect(caregiver["active"] == .bool(true))
            #expect(caregiver["patientLicenseNumbers"]?.stringArray?.sorted() == ["PT-ACTIVE-0001", "PT-LINKED-0005"])
            _ = try await check("GET", "/v1/caregivers/CG-NOBODY-9999/status", template: caregiverStatus, token: pharmacist,
                                status: 404, code: "caregiver_not_found")

            // A check-in is journaled and answered at once, then reported by Till itself.
            let checkInBody = #"{"clientCheckInId":"contract-checkin-1","checkInLocationId":1}"#
            let pending = try await check("POST", "/v1/patients/PT-ACTIVE-0001/checkins", template: checkIns, body: checkInBody,
                                          token: pharmacist, status: 202)
            #expect(pending["status"] == .string("pending_report"))
            let id = try #require(pending["id"]?.intValue)
            _ = try await check("GET", "/v1/checkins/\(id)", template: checkIn, token: register, status: 200)
            try await till.waitUntil("the check-in is reported") {
                (try await till.request("GET", "/v1/checkins/\(id)", token: register))["status"] as? String == "reported"
            }
            let reported = try await check("GET", "/v1/checkins/\(id)", template: checkIn, token: till.managerToken, status: 200)
            #expect(reported["metrcCheckInId"]?.intValue != nil)
            // A retry of the same clientCheckInId finds it reported: 200, the same check-in, nothing new.
            let retried = try await check("POST", "/v1/patients/PT-ACTIVE-0001/checkins", template: checkIns, body: checkInBody,
                                          token: register, status: 200)
            #expect(retried["id"] == pending["id"])
            _ = try await check("POST", "/v1/patients/PT-ACTIVE-0001/checkins", template: checkIns,
                                body: #"{"checkInLocationId":1,"checkinDate":"2026-11-22"}"#, token: pharmacist,
                                status: 400, code: "unknown_field")
            _ = try await check("POST", "/v1/patients/PT-ACTIVE-0001/checkins", template: checkIns,
                                body: #"{"checkInLocationId":1,"checkInDate":"2026-02-30"}"#, token: pharmacist,
                                status: 400, code: "invalid_date")
            _ = try await check("GET", "/v1/checkins/abc", template: checkIn, token: register, status: 400, code: "invalid_checkin_id")
            _ = try await check("GET", "/v1/checkins/999999", template: checkIn, token: register, status: 404, code: "checkin_not_found")

            // Medical sales: verified against Metrc's registry and counted against the allowance before anything is journaled.
            let sold = try await check("POST", "/v1/sales", body: medicalSaleBody("contract-patient", patient: "PT-ACTIVE-0001"),
                                       token: register, status: 201)
            #expect(sold["patientLicenseNumber"] == .string("PT-ACTIVE-0001"))
            _ = try await check("POST", "/v1/sales", body: medicalSaleBody("contract-inactive", patient: "PT-INACTIVE-0002"),
                                token: register, status: 422, code: "patient_inactive")
            _ = try await check("POST", "/v1/sales", body: medicalSaleBody("contract-expired", patient: "PT-EXPIRED-0003"),
                                token: register, status: 422, code: "patient_expired")
            _ = try await check("POST", "/v1/sales", body: medicalSaleBody("contract-nobody", patient: "PT-NOBODY-9999"),
                                token: register, status: 404, code: "patient_not_found")
            _ = try await check("POST", "/v1/sales",
                                body: medicalSaleBody("contract-unlinked", patient: "PT-LOW-0004", caregiver: "CG-ACTIVE-0001"),
                                token: register, status: 422, code: "caregiver_not_linked")
            // PT-LOW-0004 may buy 0.25 oz (7.08738078125 g) of flower: 7.1 g is refused, exactly.
            let exceeded = try await check("POST", "/v1/sales",
                                           body: medicalSaleBody("contract-over", patient: "PT-LOW-0004", quantity: "7.1"),
                                           token: register, status: 422, code: "allowance_exceeded")
            #expect(exceeded["error"]?["details"]?["bucket"] == .string("flower"))
        }
    }

    private func medicalSaleBody(_ clientSaleId: String, patient: String, caregiver: String? = nil,
                                 quantity: String = "3.5") -> String {
        let buyer = caregiver.map { #""customerType":"Caregiver","caregiverLicenseNumber":"\#($0)""# } ?? #""customerType":"Patient""#
        return """
            {"clientSaleId":"\(clientSaleId)",\(buyer),"patientLicenseNumber":"\(patient)",
             "lines":[{"packageLabel":"\(Labels.flower)","quantity":\(quantity),"unit":"Grams","totalAmount":35.10}]}
            """
    }

    private func saleBody(_ clientSaleId: String, label: String = Labels.flower, quantity: String = "3.5",
                          unit: String = "Grams") -> String {
        """
        {"clientSaleId":"\(clientSaleId)","customerType":"Consumer",
         "lines":[{"packageLabel":"\(label)","quantity":\(quantity),"unit":"\(unit)","totalAmount":35.10,
                   "discountAmount":1.5,"taxes":{"salesTax":2.05,"exciseTax":null}}]}
        """
    }
}

// MARK: - Checking live answers

/// Sends a request to the live server and checks its answer against the document's schema for that status.
private struct LiveChecker {
    let till: TillHarness
    let document: OpenAPI

    /// - Parameter template: the documented path when `path` fills in parameters or adds a query.
    func callAsFunction(_ method: String, _ path: String, template: String? = nil, body: String? = nil, token: String? = nil,
                        status: Int, code: String? = nil,
                        sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSON {
        let key = "\(method) \(template ?? path)"
        let answer = try await send(method, path, body: body, token: token)
        #expect(answer.status == status, "\(key): \(String(decoding: answer.body, as: UTF8.self).prefix(300))",
                sourceLocation: sourceLocation)
        let operation = try #require(document.operations[key], "\(key) is not documented", sourceLocation: sourceLocation)
        let response = try #require(operation["responses"]?["\(answer.status)"],
                                    "\(key) answered \(answer.status), which is not documented", sourceLocation: sourceLocation)
        let json = try checkBody(answer, against: response, key: key, sourceLocation: sourceLocation)
        if let code {
            #expect(json["error"]?["code"] == .string(code), "\(key)", sourceLocation: sourceLocation)
        }
        return json
    }

    /// A path the server does not have answers the error envelope with a documented code.
    func unknownPath(_ path: String, token: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let answer = try await send("GET", path, token: token)
        #expect(answer.status == 404, sourceLocation: sourceLocation)
        let json = try JSON(data: answer.body)
        let problems = document.validator.validate(json, against: .object(["$ref": .string("#/components/schemas/Error")]))
        #expect(problems.isEmpty, "GET \(path): \(problems)", sourceLocation: sourceLocation)
        #expect(json["error"]?["code"] == .string("not_found"), sourceLocation: sourceLocation)
    }

    private func checkBody(_ answer: HTTPResponse, against response: JSON, key: String,
                           sourceLocation: SourceLocation) throws -> JSON {
        let schema = try #require(response["content"]?["application/json"]?["schema"],
                                  "\(key) \(answer.status) documents no application/json schema", sourceLocation: sourceLocation)
        #expect(answer.headers["content-type"]?.hasPrefix("application/json") == true,
                "\(key): Content-Type \(answer.headers["content-type"] ?? "none")", sourceLocation: sourceLocation)
        let json = try JSON(data: answer.body)
        let problems = document.validator.validate(json, against: schema)
        #expect(problems.isEmpty, "\(key) \(answer.status) does not match its schema: \(problems)", sourceLocation: sourceLocation)
        if answer.status >= 400, let errorCodes = document.errorCodes {
            let code = json["error"]?["code"]?.stringValue ?? "none"
            #expect(errorCodes.contains(code), "\(key): \(code) is not an ErrorCode", sourceLocation: sourceLocation)
        }
        return json
    }

    private func send(_ method: String, _ path: String, body: String? = nil, token: String? = nil) async throws -> HTTPResponse {
        var headers: [(name: String, value: String)] = []
        if let token { headers.append((name: "Authorization", value: "Bearer \(token)")) }
        if body != nil { headers.append((name: "Content-Type", value: "application/json")) }
        return try await till.client.send(HTTPRequest(method: method, url: "http://till\(path)", headers: headers,
                                                      body: body.map { Data($0.utf8) }, timeout: .seconds(30)))
    }
}

// MARK: - Reading the sources

/// The package's own source text, read through `#filePath` so that code and document are compared as they are now.
private enum SourceTree {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Route {
        var method: String
        /// OpenAPI form: `/v1/sales/{id}`.
        var path: String
        /// Roles the handler accepts, sorted; nil when it never asks for a terminal (a public route).
        var roles: [String]?
        var key: String { "\(method) \(path)" }
    }

    static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(relativePath), encoding: .utf8)
    }

    /// Every `<group>.<method>("path", use: handler)` of Routes.swift, with the roles its handler requires.
    static func routes() throws -> [Route] {
        let source = try text("Sources/TillAPI/Routes.swift") + "\n" + text("Sources/TillAPI/DeliveryRoutes.swift")
        var prefixes = ["router": ""]
        for match in source.matches(of: /let\s+(\w+)\s*=\s*router\.group\("([^"]*)"\)/) {
            prefixes[String(match.1)] = "/" + match.2
        }
        let allRoles = TerminalRole.allCases.map(\.rawValue).sorted()
        return source.matches(of: /(\w+)\.(get|post|put|patch|delete|head)\("([^"]*)",\s*use:\s*(\w+)\)/).map { match in
            let segments = match.3.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
            let path = (prefixes[String(match.1)] ?? "/?") + "/" + segments.joined(separator: "/")
            var roles: [String]? = nil
            if let body = functionBody(String(match.4), in: source),
               let requirement = body.firstMatch(of: /requireTerminal\(([^\n]*)\)/)?.1 {
                roles = requirement.contains("allCases")
                    ? allRoles
                    : requirement.matches(of: /\.(\w+)/).map { String($0.1) }.filter(allRoles.contains).sorted()
            }
            return Route(method: match.2.uppercased(), path: path, roles: roles)
        }
    }

    /// The body of `func name(` up to the closing brace at its own indentation.
    private static func functionBody(_ name: String, in source: String) -> Substring? {
        guard let start = source.range(of: "func \(name)(") else { return nil }
        let rest = source[start.upperBound...]
        let end = rest.range(of: "\n    }")?.lowerBound ?? rest.endIndex
        return rest[..<end]
    }

    /// The paths the auth middleware lets through without a token (Application.swift).
    static func publicPaths() throws -> Set<String> {
        let source = try text("Sources/TillAPI/Application.swift")
        guard let list = source.firstMatch(of: /publicPaths:\s*\[([^\]]*)\]/)?.1 else { return [] }
        return Set(list.matches(of: /"([^"]*)"/).map { String($0.1) })
    }

    struct EmittedCode: Hashable {
        var code: String
        /// The HTTP status the error's kind maps to (APIError.status), when the source says the kind.
        var status: Int?
    }

    /// Every machine-readable error code written in Sources/, with the status its kind maps to.
    static func errorCodes() throws -> Set<EmittedCode> {
        let sources = root.appendingPathComponent("Sources")
        guard let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil) else { return [] }
        var found = Set<EmittedCode>()
        for case let file as URL in files where file.pathExtension == "swift" {
            let source = try String(contentsOf: file, encoding: .utf8)
            var withKind = Set<String>()
            for match in source.matches(of: /TillError\s*\(\s*\.(\w+)\s*,\s*code:\s*"([a-z0-9_]+)"/) {
                found.insert(EmittedCode(code: String(match.2), status: status(kind: String(match.1), code: String(match.2))))
                withKind.insert(String(match.2))
            }
            for match in source.matches(of: /\.(invalid|unprocessable)\(\s*"([a-z0-9_]+)"/) {
                let kind = match.1 == "invalid" ? "invalidRequest" : "unprocessable"
                found.insert(EmittedCode(code: String(match.2), status: status(kind: kind, code: String(match.2))))
                withKind.insert(String(match.2))
            }
            // Anything else that names a code: `code: "…"` outside TillError(…), or a literal JSON error body.
            for match in source.matches(of: /(?:code:\s*|"code"\s*:\s*)"([a-z0-9_]+)"/) where !withKind.contains(String(match.1)) {
                found.insert(EmittedCode(code: String(match.1), status: nil))
            }
        }
        return found
    }

    /// APIError.status and its three overrides (Middleware.swift); the contract these statuses are tested against.
    private static func status(kind: String, code: String) -> Int? {
        if code == "payload_too_large" { return 413 }
        if code == "method_not_allowed" { return 405 }
        if code == "too_many_failed_attempts" { return 429 }
        return ["invalidRequest": 400, "notFound": 404, "conflict": 409, "unprocessable": 422, "unauthorized": 401,
                "forbidden": 403, "unavailable": 503][kind]
    }
}

// MARK: - The document

/// The OpenAPI document, parsed, with the look-ups the tests need.
private struct OpenAPI {
    let root: JSON

    init(data: Data) throws { root = try JSON(data: data) }

    var validator: SchemaValidator { SchemaValidator(document: root) }

    /// `"GET /v1/sales/{id}"` → the operation object.
    var operations: [String: JSON] {
        var result: [String: JSON] = [:]
        for (path, item) in root["paths"]?.objectValue ?? [:] {
            for (method, operation) in item.objectValue ?? [:]
            where ["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(method) {
                result["\(method.uppercased()) \(path)"] = operation
            }
        }
        return result
    }

    func schema(_ name: String) -> JSON? { root["components"]?["schemas"]?[name] }

    var errorCodes: Set<String>? { schema("ErrorCode")?["enum"]?.stringArray.map(Set.init) }

    /// The codes an error response narrows `error.code` to: `allOf: [Error, {properties: {error: {properties: {code: {enum}}}}}]`.
    static func narrowedCodes(_ schema: JSON?) -> [String]? {
        for part in schema?["allOf"]?.arrayValue ?? [] {
            if let codes = part["properties"]?["error"]?["properties"]?["code"]?["enum"]?.stringArray { return codes }
        }
        return nil
    }
}

// MARK: - JSON and a validator for the JSON Schema subset the document uses

/// A JSON value; numbers are kept as Decimal so money and quantities are compared exactly.
private indirect enum JSON: Decodable, Equatable, Sendable {
    case null, bool(Bool), number(Decimal), string(String), array([JSON]), object([String: JSON])

    init(data: Data) throws { self = try JSONDecoder().decode(JSON.self, from: data) }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Decimal.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSON].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSON].self)) }
    }

    subscript(key: String) -> JSON? { objectValue?[key] }
    var objectValue: [String: JSON]? { if case .object(let value) = self { value } else { nil } }
    var arrayValue: [JSON]? { if case .array(let value) = self { value } else { nil } }
    var stringValue: String? { if case .string(let value) = self { value } else { nil } }
    var numberValue: Decimal? { if case .number(let value) = self { value } else { nil } }
    var stringArray: [String]? { arrayValue?.compactMap(\.stringValue) }
    var intValue: Int? { numberValue.flatMap { $0.isWhole ? NSDecimalNumber(decimal: $0).intValue : nil } }

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number(let value): value.isWhole ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

private extension Decimal {
    var isWhole: Bool {
        var value = self
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, 0, .plain)
        return rounded == self
    }
}

/// Validates JSON against the JSON Schema keywords the document uses. A keyword it does not know fails
/// validation, so the document cannot use one this validator silently ignores.
private struct SchemaValidator {
    let document: JSON

    static let annotations: Set<String> = ["description", "title", "examples", "x-enum-descriptions", "deprecated"]
    static let keywords: Set<String> = [
        "$ref", "type", "enum", "required", "properties", "additionalProperties", "minProperties", "items", "minItems",
        "maxItems", "minimum", "exclusiveMinimum", "minLength", "maxLength", "pattern", "format", "allOf", "anyOf", "oneOf",
    ]

    func validate(_ value: JSON, against schema: JSON, at path: String = "$") -> [String] {
        guard case .object(let keywords) = schema else { return ["\(path): schema is not an object"] }
        var problems: [String] = []
        for keyword in keywords.keys where !Self.keywords.contains(keyword) && !Self.annotations.contains(keyword) {
            problems.append("\(path): unsupported schema keyword \(keyword)")
        }
        if let reference = keywords["$ref"]?.stringValue {
            let prefix = "#/components/schemas/"
            if reference.hasPrefix(prefix), let target = document["components"]?["schemas"]?[String(reference.dropFirst(prefix.count))] {
                problems += validate(value, against: target, at: path)
            } else {
                problems.append("\(path): unresolvable $ref \(reference)")
            }
        }
        if let type = keywords["type"] {
            let allowed = type.stringValue.map { [$0] } ?? type.stringArray ?? []
            let actual = value.typeName
            if !(allowed.contains(actual) || (actual == "integer" && allowed.contains("number"))) {
                problems.append("\(path): \(actual) where \(allowed.joined(separator: " or ")) is documented")
            }
        }
        if let options = keywords["enum"]?.arrayValue, !options.contains(value) {
            problems.append("\(path): \(value) is not one of the documented values")
        }
        for part in keywords["allOf"]?.arrayValue ?? [] {
            problems += validate(value, against: part, at: path)
        }
        if let options = keywords["anyOf"]?.arrayValue,
           !options.contains(where: { validate(value, against: $0, at: path).isEmpty }) {
            problems.append("\(path): matches none of anyOf")
        }
        if let options = keywords["oneOf"]?.arrayValue,
           options.filter({ validate(value, against: $0, at: path).isEmpty }).count != 1 {
            problems.append("\(path): does not match exactly one of oneOf")
        }
        switch value {
        case .object(let members):
            for name in keywords["required"]?.stringArray ?? [] where members[name] == nil {
                problems.append("\(path): required property \(name) is missing")
            }
            let properties = keywords["properties"]?.objectValue ?? [:]
            if let minimum = keywords["minProperties"]?.intValue, members.count < minimum {
                problems.append("\(path): fewer than \(minimum) properties")
            }
            for (name, member) in members {
                if let propertySchema = properties[name] {
                    problems += validate(member, against: propertySchema, at: "\(path).\(name)")
                } else if let additional = keywords["additionalProperties"] {
                    if additional == .bool(false) {
                        problems.append("\(path): undocumented property \(name)")
                    } else if case .object = additional {
                        problems += validate(member, against: additional, at: "\(path).\(name)")
                    }
                }
            }
        case .array(let elements):
            if let minimum = keywords["minItems"]?.intValue, elements.count < minimum { problems.append("\(path): too few items") }
            if let maximum = keywords["maxItems"]?.intValue, elements.count > maximum { problems.append("\(path): too many items") }
            if let items = keywords["items"] {
                for (index, element) in elements.enumerated() {
                    problems += validate(element, against: items, at: "\(path)[\(index)]")
                }
            }
        case .number(let number):
            if let minimum = keywords["minimum"]?.numberValue, number < minimum { problems.append("\(path): below \(minimum)") }
            if let bound = keywords["exclusiveMinimum"]?.numberValue, number <= bound {
                problems.append("\(path): not above \(bound)")
            }
        case .string(let string):
            if let minimum = keywords["minLength"]?.intValue, string.count < minimum { problems.append("\(path): too short") }
            if let maximum = keywords["maxLength"]?.intValue, string.count > maximum { problems.append("\(path): too long") }
            if let pattern = keywords["pattern"]?.stringValue {
                if let regex = try? Regex(pattern) {
                    if !string.contains(regex) { problems.append("\(path): \(string) does not match \(pattern)") }
                } else {
                    problems.append("\(path): pattern \(pattern) does not compile")
                }
            }
            if let format = keywords["format"]?.stringValue, !Self.matches(string, format: format) {
                problems.append("\(path): \(string) is not a \(format)")
            }
        case .null, .bool:
            break
        }
        return problems
    }

    static func matches(_ string: String, format: String) -> Bool {
        switch format {
        case "date-time":
            let formatter = ISO8601DateFormatter()
            if formatter.date(from: string) != nil { return true }
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.date(from: string) != nil
        case "date":
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate]
            return string.wholeMatch(of: /\d{4}-\d{2}-\d{2}/) != nil && formatter.date(from: string) != nil
        case "int64":
            return true
        default:
            return false
        }
    }
}
