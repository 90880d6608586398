import Foundation

/// `/_sim/` endpoints for demos and scripts: no Metrc authentication, no faults, not counted.
///
/// - `POST /_sim/faults` replaces every fault with a JSON list such as
///   `[{"status":503,"body":"<html>…","retryAfter":5,"method":"POST","pathPrefix":"/sales","times":3,"seconds":30}]`;
///   each entry has exactly one effect: `status` (with optional `body`, `retryAfter`), `latencyMs`,
///   `holdThenApplyMs` (applied after the hold even if the client has gone), `commitThenDrop: true` or
///   `dropBeforeCommit: true` (add `"silent": true` to close without a byte).
///   `times` limits how often it fires, `seconds` how long it stays armed.
/// - `DELETE /_sim/faults` clears them; `GET /_sim/faults` lists those still armed.
/// - `GET /_sim/receipts[?licenseNumber=]` lists every receipt (archived included) as Metrc writes them, plus `License`.
/// - `GET /_sim/stats` gives request counts by method and path.
/// - `GET /_sim/patients[?licenseNumber=]` lists every registered patient with `License`, the status fields
///   counted live (never the cached answer a client gets) and `StatusRequests`.
/// - `POST|PUT|DELETE /_sim/website/{Metrc path}[?licenseNumber=]` changes Metrc's records as a person on Metrc's
///   website would, behind a client's back: `/_sim/website/sales/v2/receipts` creates or edits receipts (the
///   API's bodies), `DELETE /_sim/website/sales/v2/receipts/{id}` archives one. The API's rules apply; faults,
///   rate limits and request counts do not. Deliveries the same way: `PUT /_sim/website/sales/v2/deliveries/complete`
///   (`[{"Id":n}]`; as on the website, `ActualArrivalDateTime` defaults to now and every package not in
///   `ReturnedPackages` is accepted), `DELETE /_sim/website/sales/v2/deliveries/{id}` voids one;
///   `POST /_sim/website/sales/v2/deliveries/retailer/depart` (`[{"RetailerDeliveryId":n}]`), `…/retailer/end`
///   (`Packages` default to what the vehicle holds) and `DELETE /_sim/website/sales/v2/deliveries/retailer/{id}`.
/// - `GET /_sim/deliveries[?licenseNumber=]` and `GET /_sim/trips[?licenseNumber=]` list every sales delivery and every
///   retailer delivery as Metrc writes them, plus `License`.
/// - `GET|PUT /_sim/facilities/deliveryflags[?licenseNumber=]` reads or changes a facility's delivery flags: the body
///   is an object of `FacilityType` names and booleans (`{"RetailerDelivery":false}`), the answer all of them.
struct FaultListError: Error {
    var message: String
}

extension MetrcSimulation {
    func admin(_ request: SimHTTPRequest, path: String) -> SimHTTPResponse {
        switch (request.method, path.lowercased()) {
        case ("POST", "/_sim/faults"):
            do {
                let parsed = try Self.parseFaults(request.body, now: now())
                faults = parsed
                return .json(200, .object([("Faults", JSON(parsed.count))]))
            } catch {
                return .message(400, error.message)
            }
        case ("DELETE", "/_sim/faults"):
            faults.removeAll()
            return .json(200, .object([("Faults", JSON(0))]))
        case ("GET", "/_sim/faults"):
            return .json(200, .array(activeFaults().map(Self.faultJSON)))
        case ("GET", "/_sim/receipts"):
            let license = Self.parseQuery(request.query)["licensenumber"]
            let chosen = receiptList.filter { license == nil || $0.license == license }
            return .json(200, .array(chosen.map { receipt in
                guard case .object(let members) = receiptJSON(receipt) else { return .null }
                return .object([("License", .string(receipt.license))] + members)
            }))
        case ("GET", "/_sim/stats"):
            let routes = counts.sorted { ($0.key.path, $0.key.method) < ($1.key.path, $1.key.method) }
            return .json(200, .object([
                ("Requests", JSON(requestCount())),
                ("ByRoute", .array(routes.map { entry in
                    .object([("Method", .string(entry.key.method)), ("Path", .string(entry.key.path)),
                             ("Count", JSON(entry.value))])
                })),
                ("Receipts", JSON(receiptList.count)),
                ("ArmedFaults", JSON(activeFaults().count)),
            ]))
        case ("GET", "/_sim/patients"):
            let license = Self.parseQuery(request.query)["licensenumber"]
            var items: [JSON] = []
            for facility in facilityOrder where license == nil || license == facility {
                guard let state = facilities[facility] else { continue }
                for patient in state.patients {
                    guard case .object(let members) = patientStatusJSON(patient, state: state) else { continue }
                    items.append(.object([("License", .string(facility))] + members
                        + [("StatusRequests", JSON(statusRequestCount(patient: patient.licenseNumber)))]))
                }
            }
            return .json(200, .array(items))
        case ("GET", "/_sim/deliveries"), ("GET", "/_sim/trips"), (_, "/_sim/facilities/deliveryflags"):
            return deliveryAdmin(request, path: path.lowercased())
        case (_, let lowered) where lowered.hasPrefix("/_sim/website/"):
            let license = Self.parseQuery(request.query)["licensenumber"] ?? facilityOrder.first ?? ""
            return onWebsite(request.method, String(path.dropFirst("/_sim/website".count)), license: license,
                             body: String(decoding: request.body, as: UTF8.self))
        default:
            return .message(404, "Unknown simulator endpoint \(request.method) \(path).")
        }
    }

    /// Changes Metrc's records as a person on Metrc's website would, behind a client's back (for tests and demos):
    /// the API's rules, without faults, rate limits or request counts.
    public func onWebsite(_ method: String, _ path: String, license: String, body: String = "") -> SimHTTPResponse {
        let credentials = Data("\(configuration.vendorKey):\(configuration.userKey)".utf8).base64EncodedString()
        let form = websiteForm(method, path, license: license, body: body)
        let request = SimHTTPRequest(method: method, path: path, query: "licenseNumber=\(license)",
                                     headers: ["Authorization": "Basic \(credentials)"], body: Data(form.utf8))
        return handle(request, path: Self.normalize(path), limited: false)
    }

    static func parseFaults(_ body: Data, now: Date) throws(FaultListError) -> [SimFault] {
        guard let json = JSON.parse(body), case .array(let items) = json else {
            throw FaultListError(message: "The body must be a JSON array of faults.")
        }
        var faults: [SimFault] = []
        for (index, item) in items.enumerated() {
            var r = FieldReader(item)
            let status = r.int64("status"), body = r.string("body"), retryAfter = r.int64("retryAfter")
            let latency = r.int64("latencyMs"), hold = r.int64("holdThenApplyMs")
            let commitThenDrop = r.bool("commitThenDrop") ?? false
            let dropBeforeCommit = r.bool("dropBeforeCommit") ?? false, silent = r.bool("silent") ?? false
            let method = r.string("method"), prefix = r.string("pathPrefix"), times = r.int64("times")
            let seconds = r.decimal("seconds")
            if let first = r.errors.first { throw FaultListError(message: "Fault \(index): \(first)") }
            let effects = [status != nil, latency != nil, hold != nil, commitThenDrop, dropBeforeCommit].filter { $0 }.count
            guard effects == 1 else {
                throw FaultListError(message: "Fault \(index): give exactly one of status, latencyMs, holdThenApplyMs, commitThenDrop, dropBeforeCommit.")
            }
            let effect: SimFault.Effect
            if let status {
                guard (100...599).contains(status) else { throw FaultListError(message: "Fault \(index): status must be 100…599.") }
                effect = .status(Int(status), body: body, retryAfterSeconds: retryAfter.map { Int($0) })
            } else if let latency {
                effect = .latency(.milliseconds(latency))
            } else if let hold {
                effect = .holdThenApply(.milliseconds(hold))
            } else {
                effect = commitThenDrop ? .commitThenDrop : .dropBeforeCommit
            }
            let until = seconds.map { now.addingTimeInterval(TimeInterval(truncating: NSDecimalNumber(decimal: $0))) }
            faults.append(SimFault(effect, method: method, pathPrefix: prefix, times: times.map { Int($0) }, until: until,
                                   dropStyle: silent ? .silentClose : .truncatedResponse))
        }
        return faults
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    static func faultJSON(_ fault: SimFault) -> JSON {
        var members: [(String, JSON)] = []
        switch fault.effect {
        case .status(let status, let body, let retryAfter):
            members = [("status", JSON(status)), ("body", JSON(body)), ("retryAfter", JSON(retryAfter))]
        case .latency(let delay):
            members = [("latencyMs", JSON(Self.milliseconds(delay)))]
        case .holdThenApply(let hold):
            members = [("holdThenApplyMs", JSON(Self.milliseconds(hold)))]
        case .commitThenDrop: members = [("commitThenDrop", .bool(true))]
        case .dropBeforeCommit: members = [("dropBeforeCommit", .bool(true))]
        }
        if case .silentClose = fault.dropStyle { members.append(("silent", .bool(true))) }
        members += [("method", JSON(fault.method)), ("pathPrefix", JSON(fault.pathPrefix)),
                    ("times", JSON(fault.remaining)), ("until", JSON(fault.until.map(SimDates.utcText)))]
        return .object(members)
    }
}
