import Foundation

/// What a request asks for, once its path and verb are recognised.
enum MetrcRoute {
    case facilities
    case unitsOfMeasure(active: Bool)
    case customerTypes
    case packages(PackageList)
    case packageByID(Int64)
    case packageByLabel(String)
    case receipts(active: Bool)
    case receiptByID(Int64)
    case receiptsByExternalNumber(String)
    case postReceipts
    case putReceipts
    case finalizeReceipts(Bool)
    case archiveReceipt(Int64)
    case patientStatus(String)
    case caregiverStatus(String)
    case checkInLocations
    case checkIns
    case postCheckIns
    case putCheckIns
    case archiveCheckIn(Int64)
    case adjustReasons
    case postAdjustments
    case adjustments
    /// Anything under `/sales/v2/deliveries`: sales deliveries and retailer deliveries (trips).
    case delivery(DeliveryRoute)

    enum PackageList { case active, onHold, inactive }

    enum LicenseUse {
        /// Not facility-scoped; rate-limited per key.
        case none
        /// `licenseNumber` must be given (else 400) and reachable (else 401).
        case required
        /// When given it must be reachable and the object must belong to it (else 401); when not, the object
        /// may belong to any facility the user reaches.
        case optional
    }

    var licenseUse: LicenseUse {
        switch self {
        case .facilities, .unitsOfMeasure, .customerTypes: .none
        // Check-in locations are reference data: the specification gives the call no licenseNumber.
        case .packageByID, .packageByLabel, .receiptByID, .receiptsByExternalNumber, .checkInLocations: .optional
        case .delivery(let route): route.licenseUse
        default: .required
        }
    }
}

/// A request that has passed authentication and licence checks.
struct ScopedRequest {
    var request: SimHTTPRequest
    var path: String
    /// Query parameters with lower-cased names (Metrc's binder ignores case).
    var query: [String: String]
    /// The facility named by `licenseNumber`, when one was given.
    var license: String?
}

extension MetrcSimulation {
    /// Routes, authenticates, scopes and rate-limits one Metrc request, then acts on it. Synchronous on
    /// purpose: nothing else runs on the simulation while a request is being applied.
    /// - Parameter limited: false for a change made on Metrc's website (`onWebsite`): no rate limit applies.
    func handle(_ request: SimHTTPRequest, path: String, limited: Bool = true) -> SimHTTPResponse {
        let route: MetrcRoute
        do { route = try Self.route(method: request.method, path: path) } catch { return error.response }

        guard authorized(request) else { return .unauthorized }

        let query = Self.parseQuery(request.query)
        var license: String? = query["licensenumber"].flatMap { $0.isEmpty ? nil : $0 }
        switch route.licenseUse {
        case .none:
            license = nil
        case .required:
            guard let given = license else {
                return .message(400, "No licenseNumber was specified. A licenseNumber is required for this request.")
            }
            guard facilities[given] != nil else { return .unauthorized }
        case .optional:
            if let given = license, facilities[given] == nil { return .unauthorized }
        }

        let isRead = request.method == "GET"
        let bucket = (isRead ? "GET " : "WRITE ") + (license ?? "key:\(configuration.vendorKey)")
        guard !limited || admit(bucket: bucket, limit: isRead ? configuration.getRequestsPerSecond : configuration.writeRequestsPerSecond)
        else {
            return .json(429, .message("Too Many Requests"), headers: [("Retry-After", "1")])
        }

        let scoped = ScopedRequest(request: request, path: path, query: query, license: license)
        switch route {
        case .facilities: return facilityList()
        case .unitsOfMeasure(let active): return unitsOfMeasure(active: active)
        case .customerTypes: return customerTypeList()
        case .packages(let list): return packageList(list, scoped)
        case .packageByID(let id): return packageLookup(scoped) { $0.id == id }
        case .packageByLabel(let label): return packageLookup(scoped) { $0.label.uppercased() == label.uppercased() }
        case .receipts(let active): return listReceipts(active: active, scoped)
        case .receiptByID(let id): return receiptLookup(id: id, scoped)
        case .receiptsByExternalNumber(let number): return externalLookup(number, scoped)
        case .postReceipts: return postReceipts(scoped)
        case .putReceipts: return putReceipts(scoped)
        case .finalizeReceipts(let finalize): return finalizeReceipts(finalize, scoped)
        case .archiveReceipt(let id): return archiveReceipt(id: id, scoped)
        case .adjustReasons: return adjustReasonList()
        case .postAdjustments: return postAdjustments(scoped)
        case .adjustments: return listAdjustments(scoped)
        case .patientStatus(let patient): return patientStatus(patient, scoped)
        case .caregiverStatus(let caregiver): return caregiverStatus(caregiver, scoped)
        case .checkInLocations: return checkInLocationList(scoped)
        case .checkIns: return listCheckIns(scoped)
        case .postCheckIns: return postCheckIns(scoped)
        case .putCheckIns: return putCheckIns(scoped)
        case .archiveCheckIn(let id): return archiveCheckIn(id: id, scoped)
        case .delivery(let route): return handleDelivery(route, scoped)
        }
    }

    private func authorized(_ request: SimHTTPRequest) -> Bool {
        guard let header = request.headers["authorization"] else { return false }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let credentials = String(data: decoded, encoding: .utf8),
              let colon = credentials.firstIndex(of: ":")
        else { return false }
        return credentials[..<colon] == configuration.vendorKey
            && credentials[credentials.index(after: colon)...] == configuration.userKey
    }

    /// Metrc's routes; an unknown path is 404 and a known path with the wrong verb 405, as ASP.NET answers.
    static func route(method: String, path: String) throws(EarlyAnswer) -> MetrcRoute {
        let parts = path.split(separator: "/").map { decoded($0, plusIsSpace: false) }
        // ASP.NET matches routes case-insensitively; parameters keep their case.
        let lower = parts.map { $0.lowercased() }
        var allowed: [String: MetrcRoute] = [:]
        switch parts.count {
        case 2 where lower == ["facilities", "v2"]:
            allowed = ["GET": .facilities]
        case 3 where lower[0] == "unitsofmeasure" && lower[1] == "v2" && (lower[2] == "active" || lower[2] == "inactive"):
            allowed = ["GET": .unitsOfMeasure(active: lower[2] == "active")]
        case 3 where lower == ["sales", "v2", "customertypes"]:
            allowed = ["GET": .customerTypes]
        case 3 where lower[0] == "packages" && lower[1] == "v2":
            switch lower[2] {
            case "active": allowed = ["GET": .packages(.active)]
            case "onhold": allowed = ["GET": .packages(.onHold)]
            case "inactive": allowed = ["GET": .packages(.inactive)]
            case "adjust": allowed = ["POST": .postAdjustments]
            case "adjustments": allowed = ["GET": .adjustments]
            default:
                if let id = Int64(parts[2]) {
                    allowed = ["GET": .packageByID(id)]
                } else {
                    allowed = ["GET": .packageByLabel(parts[2])]
                }
            }
        case 4 where lower == ["packages", "v2", "adjust", "reasons"]:
            allowed = ["GET": .adjustReasons]
        case 3 where lower == ["sales", "v2", "receipts"]:
            allowed = ["POST": .postReceipts, "PUT": .putReceipts]
        case 4 where lower[0] == "sales" && lower[1] == "v2" && lower[2] == "receipts":
            switch lower[3] {
            case "active": allowed = ["GET": .receipts(active: true)]
            case "inactive": allowed = ["GET": .receipts(active: false)]
            case "finalize": allowed = ["PUT": .finalizeReceipts(true)]
            case "unfinalize": allowed = ["PUT": .finalizeReceipts(false)]
            default:
                guard let id = Int64(parts[3]) else { break }
                allowed = ["GET": .receiptByID(id), "DELETE": .archiveReceipt(id)]
            }
        case 3...5 where lower[0] == "sales" && lower[1] == "v2" && lower[2] == "deliveries":
            allowed = DeliveryRoute.allowed(Array(parts.dropFirst(3)), Array(lower.dropFirst(3)))
        case 5 where lower[0] == "sales" && lower[1] == "v2" && lower[2] == "receipts" && lower[3] == "external":
            allowed = ["GET": .receiptsByExternalNumber(parts[4])]
        case 4 where lower[0] == "patients" && lower[1] == "v2" && lower[2] == "statuses":
            allowed = ["GET": .patientStatus(parts[3])]
        case 4 where lower[0] == "caregivers" && lower[1] == "v2" && lower[2] == "status":
            allowed = ["GET": .caregiverStatus(parts[3])]
        case 2 where lower == ["patient-checkins", "v2"]:
            allowed = ["GET": .checkIns, "POST": .postCheckIns, "PUT": .putCheckIns]
        case 3 where lower[0] == "patient-checkins" && lower[1] == "v2":
            if lower[2] == "locations" {
                allowed = ["GET": .checkInLocations]
            } else if let id = Int64(parts[2]) {
                allowed = ["DELETE": .archiveCheckIn(id)]
            }
        default:
            break
        }
        if let route = allowed[method] { return route }
        if allowed.isEmpty {
            throw EarlyAnswer(.message(404, "No HTTP resource was found that matches the request URI '\(path)'."))
        }
        throw EarlyAnswer(.message(405, "The requested resource does not support http method '\(method)'."))
    }

    /// Form-style query decoding, as Metrc's server does: "+" is a space, so an offset must be sent as "%2B".
    static func parseQuery(_ query: String?) -> [String: String] {
        guard let query, !query.isEmpty else { return [:] }
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let pieces = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decoded(pieces[0], plusIsSpace: true).lowercased()
            if result[name] == nil { result[name] = pieces.count > 1 ? decoded(pieces[1], plusIsSpace: true) : "" }
        }
        return result
    }

    /// Percent-decoded (a query also takes `+` for a space); left as it is when there is nothing to decode,
    /// which is nearly always and skips Foundation's slow decoder.
    private static func decoded(_ text: Substring, plusIsSpace: Bool) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) })
        else { return String(text) }
        let spaced = plusIsSpace ? text.replacingOccurrences(of: "+", with: " ") : String(text)
        return spaced.removingPercentEncoding ?? spaced
    }
}
