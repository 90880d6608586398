import Foundation
import MetrcKit
import TillDomain
import TillStore

/// What a probe found of an attempt in doubt.
enum ProbeFinding: Sendable, Equatable {
    /// Metrc holds the write; its Id when the write made something (a receipt, a check-in).
    case applied(metrcId: Int64?)
    /// Metrc does not show it (yet: the attempt may still land until it is too old to).
    case notApplied
}

/// How one kind of journaled write goes to Metrc, and how an attempt in doubt is settled.
struct JournalKindHandler: Sendable {
    /// Metrc's endpoint, as the audit log and logs name it.
    let endpoint: String
    /// Whether rows of this kind share a request (Metrc takes an array), up to the object limit.
    let batches: Bool
    /// Whether Metrc answers this kind with the Ids of what it made: rows are recorded with them.
    let answersIds: Bool
    /// The request for a batch of this kind's rows.
    let request: @Sendable ([JournalRow]) -> MetrcWrite
    /// Whether Metrc applied the row's last attempt. Only a probe settles a row in doubt.
    let probe: @Sendable (JournalRow) async throws(MetrcError) -> ProbeFinding
}

extension JournalKindHandler {
    /// Every kind's handler, for one drain pass (a pass lists a day's check-ins at most once).
    static func all(metrc: any MetrcAPI, heldCheckIns: Set<Int64>) -> [JournalKind: JournalKindHandler] {
        let checkIns = CheckInDays(metrc: metrc, held: heldCheckIns)
        return Dictionary(uniqueKeysWithValues: JournalKind.allCases.map { kind in
            (kind, handler(for: kind, metrc: metrc, checkIns: checkIns))
        })
    }

    /// - Parameter checkIns: what a pass knows of Metrc's check-ins; a fresh one when not given.
    static func handler(for kind: JournalKind, metrc: any MetrcAPI, checkIns: CheckInDays? = nil) -> JournalKindHandler {
        let checkIns = checkIns ?? CheckInDays(metrc: metrc, held: [])
        return switch kind {
        case .receiptCreate:
            JournalKindHandler(
                endpoint: "POST /sales/v2/receipts", batches: true, answersIds: true,
                request: { MetrcWrite(method: "POST", path: "/sales/v2/receipts", objects: $0.map(\.body)) },
                probe: { row throws(MetrcError) in
                    let number = try JournalBody.required(JournalBody(row).externalReceiptNumber, "ExternalReceiptNumber", row)
                    guard let receipt = try await metrc.receipt(externalNumber: number) else { return .notApplied }
                    // A receipt posted again by a repair replaces one archived in Metrc: only an active one is its own.
                    if row.seq > 1 && receipt.archivedDate != nil { return .notApplied }
                    return .applied(metrcId: receipt.id)
                })
        case .receiptUpdate:
            JournalKindHandler(
                endpoint: "PUT /sales/v2/receipts", batches: true, answersIds: false,
                request: { MetrcWrite(method: "PUT", path: "/sales/v2/receipts", objects: $0.map(\.body)) },
                probe: { row throws(MetrcError) in
                    let body = try JournalBody(row)
                    guard let receipt = try await metrc.receipt(id: try JournalBody.required(body.id, "Id", row)) else {
                        return .notApplied
                    }
                    return body.sameLines(as: receipt) ? .applied(metrcId: nil) : .notApplied
                })
        case .receiptArchive:
            JournalKindHandler(
                endpoint: "DELETE /sales/v2/receipts/{id}", batches: false, answersIds: false,
                request: { rows in
                    // One row a request; its body names the receipt (`{"Id":n}`), checked when it was journaled.
                    let id = (try? JournalBody(rows[0]))?.id ?? 0
                    return MetrcWrite(method: "DELETE", path: "/sales/v2/receipts/\(id)", objects: [])
                },
                probe: { row throws(MetrcError) in
                    let receipt = try await metrc.receipt(id: try JournalBody.required(JournalBody(row).id, "Id", row))
                    return receipt?.archivedDate != nil ? .applied(metrcId: nil) : .notApplied
                })
        case .receiptFinalize, .receiptUnfinalize:
            JournalKindHandler(
                endpoint: kind == .receiptFinalize ? "PUT /sales/v2/receipts/finalize" : "PUT /sales/v2/receipts/unfinalize",
                batches: true, answersIds: false,
                request: { rows in
                    MetrcWrite(method: "PUT", path: kind == .receiptFinalize ? "/sales/v2/receipts/finalize"
                                   : "/sales/v2/receipts/unfinalize", objects: rows.map(\.body))
                },
                probe: { row throws(MetrcError) in
                    let receipt = try await metrc.receipt(id: try JournalBody.required(JournalBody(row).id, "Id", row))
                    let wanted = kind == .receiptFinalize
                    return receipt.map { ($0.isFinal ?? false) == wanted } == true ? .applied(metrcId: nil) : .notApplied
                })
        case .packageAdjust:
            JournalKindHandler(
                endpoint: "POST /packages/v2/adjust", batches: true, answersIds: false,
                request: { MetrcWrite(method: "POST", path: "/packages/v2/adjust", objects: $0.map(\.body)) },
                probe: { row throws(MetrcError) in
                    // Till's note names the return: an adjustment of that package with that note is this one.
                    let body = try JournalBody(row)
                    let label = try JournalBody.required(body.label, "Label", row)
                    let note = try JournalBody.required(body.reasonNote, "ReasonNote", row)
                    let found = try await metrc.packageAdjustments().contains {
                        $0.label?.uppercased() == label.uppercased() && $0.note == note
                    }
                    return found ? .applied(metrcId: nil) : .notApplied
                })
        case .deliveryCreate, .deliveryUpdate, .deliveryComplete, .deliveryVoid,
             .tripCreate, .tripDepart, .tripSale, .tripRestock, .tripEnd, .tripVoid:
            deliveryHandler(for: kind, metrc: metrc)
        case .checkInCreate:
            JournalKindHandler(
                endpoint: "POST /patient-checkins/v2/", batches: true, answersIds: true,
                request: { MetrcWrite(method: "POST", path: "/patient-checkins/v2/", objects: $0.map(\.body)) },
                probe: { row throws(MetrcError) in
                    let body = try JournalBody(row)
                    let found = try await checkIns.find(
                        patient: try JournalBody.required(body.patientLicenseNumber, "PatientLicenseNumber", row),
                        location: try JournalBody.required(body.checkInLocationId, "CheckInLocationId", row),
                        on: try JournalBody.required(body.checkInDate, "CheckInDate", row))
                    return found.map { .applied(metrcId: $0) } ?? .notApplied
                })
        }
    }
}

extension JournalKindHandler {
    /// Deliveries and trips have no external number: what Till sends is made recognisable instead (a unique
    /// local time per create and trip sale, a later time per restock), and the later steps are read back on
    /// the delivery or trip by its Id (docs/deliveries.md).
    static func deliveryHandler(for kind: JournalKind, metrc: any MetrcAPI) -> JournalKindHandler {
        func write(_ method: String, _ path: String) -> @Sendable ([JournalRow]) -> MetrcWrite {
            { MetrcWrite(method: method, path: path, objects: $0.map(\.body)) }
        }
        func delete(_ path: String, key: @escaping @Sendable (JournalBody) -> Int64?) -> @Sendable ([JournalRow]) -> MetrcWrite {
            { rows in
                // One row a request; its body names what goes (`{"Id":n}`), filled in once Metrc gave the Id.
                let id = (try? JournalBody(rows[0])).flatMap(key) ?? 0
                return MetrcWrite(method: "DELETE", path: "\(path)/\(id)", objects: [])
            }
        }
        @Sendable func delivery(_ row: JournalRow) async throws(MetrcError) -> MetrcSalesDelivery? {
            try await metrc.salesDelivery(id: try JournalBody.required(JournalBody(row).id, "Id", row))
        }
        @Sendable func trip(_ row: JournalRow) async throws(MetrcError) -> MetrcRetailerDelivery? {
            try await metrc.retailerDelivery(id: try JournalBody.required(JournalBody(row).retailerDeliveryId, "RetailerDeliveryId", row))
        }
        @Sendable func found(_ applied: Bool) -> ProbeFinding { applied ? .applied(metrcId: nil) : .notApplied }
        let retailer = "/sales/v2/deliveries/retailer"
        return switch kind {
        case .deliveryCreate:
            JournalKindHandler(
                endpoint: "POST /sales/v2/deliveries", batches: true, answersIds: true,
                request: write("POST", "/sales/v2/deliveries"),
                probe: { row throws(MetrcError) in
                    let body = try JournalBody(row)
                    let sent = try JournalBody.required(body.salesDateTime, "SalesDateTime", row)
                    guard let instant = MetrcLocalTime.parse(sent, in: metrc.timeZone) else {
                        throw MetrcError.invalidResponse("journal row \(row.id) has an unreadable SalesDateTime \(sent)")
                    }
                    let window = (instant.addingTimeInterval(-3600), instant.addingTimeInterval(3600))
                    for active in [true, false] {
                        let listed = try await metrc.salesDeliveries(active: active, salesDateStart: window.0, salesDateEnd: window.1)
                        if let match = listed.first(where: {
                            LocalTimes.sameSecond($0.salesDateTime, sent) && body.sameLabels(as: $0.transactions)
                        }) {
                            return .applied(metrcId: match.id)
                        }
                    }
                    return .notApplied
                })
        case .deliveryUpdate:
            JournalKindHandler(
                endpoint: "PUT /sales/v2/deliveries", batches: true, answersIds: false,
                request: write("PUT", "/sales/v2/deliveries"),
                probe: { row throws(MetrcError) in
                    let body = try JournalBody(row)
                    guard let held = try await delivery(row), let lines = held.transactions else { return .notApplied }
                    return found(body.sameLines(as: lines))
                })
        case .deliveryComplete:
            JournalKindHandler(
                endpoint: "PUT /sales/v2/deliveries/complete", batches: true, answersIds: false,
                request: write("PUT", "/sales/v2/deliveries/complete"),
                probe: { row throws(MetrcError) in found(try await delivery(row)?.isCompleted == true) })
        case .deliveryVoid:
            JournalKindHandler(
                endpoint: "DELETE /sales/v2/deliveries/{id}", batches: false, answersIds: false,
                request: delete("/sales/v2/deliveries", key: { $0.id }),
                probe: { row throws(MetrcError) in found(try await delivery(row).map(\.isVoided) ?? true) })
        case .tripCreate:
            JournalKindHandler(
                endpoint: "POST \(retailer)", batches: true, answersIds: true,
                request: write("POST", retailer),
                probe: { row throws(MetrcError) in
                    let body = try JournalBody(row)
                    let sent = try JournalBody.required(body.dateTime, "DateTime", row)
                    // Made no earlier than its first attempt, so modified since: a window from a little before it.
                    let since = (row.attemptStartedAt ?? row.createdAt).addingTimeInterval(-300)
                    for active in [true, false] {
                        let listed = try await metrc.retailerDeliveries(active: active, lastModifiedStart: since,
                                                                        lastModifiedEnd: Date().addingTimeInterval(300))
                        if let match = listed.first(where: {
                            LocalTimes.sameSecond($0.dateTime, sent) && $0.driverEmployeeId == body.driverEmployeeId
                        }) {
                            return .applied(metrcId: match.id)
                        }
                    }
                    return .notApplied
                })
        case .tripDepart:
            JournalKindHandler(
                endpoint: "POST \(retailer)/depart", batches: true, answersIds: false, request: write("POST", "\(retailer)/depart"),
                probe: { row throws(MetrcError) in found(try await trip(row)?.hasDeparted == true) })
        case .tripSale:
            JournalKindHandler(
                endpoint: "POST \(retailer)/sale", batches: true, answersIds: false, request: write("POST", "\(retailer)/sale"),
                probe: { row throws(MetrcError) in
                    let sent = try JournalBody.required(JournalBody(row).salesDateTime, "SalesDateTime", row)
                    let destinations = try await trip(row)?.destinations ?? []
                    return found(destinations.contains { LocalTimes.sameSecond($0.salesDateTime, sent) })
                })
        case .tripRestock:
            JournalKindHandler(
                endpoint: "POST \(retailer)/restock", batches: true, answersIds: false, request: write("POST", "\(retailer)/restock"),
                probe: { row throws(MetrcError) in
                    let sent = try JournalBody.required(JournalBody(row).dateTime, "DateTime", row)
                    guard let restocked = try await trip(row)?.restockDateTime else { return .notApplied }
                    return found(LocalTimes.second(of: restocked) >= LocalTimes.second(of: sent))
                })
        case .tripEnd:
            JournalKindHandler(
                endpoint: "POST \(retailer)/end", batches: true, answersIds: false, request: write("POST", "\(retailer)/end"),
                probe: { row throws(MetrcError) in found(try await trip(row)?.hasEnded == true) })
        case .tripVoid:
            JournalKindHandler(
                endpoint: "DELETE \(retailer)/{id}", batches: false, answersIds: false,
                request: delete(retailer, key: { $0.retailerDeliveryId }),
                probe: { row throws(MetrcError) in found(try await trip(row).map(\.isVoided) ?? true) })
        default:
            preconditionFailure("\(kind) is not a delivery write")
        }
    }
}

/// Metrc's local times compared to the second: Metrc may answer without the milliseconds Till sent, or
/// with more digits.
enum LocalTimes {
    static func second(of text: String) -> Substring { text.prefix(19) }

    static func sameSecond(_ held: String?, _ sent: String) -> Bool {
        held.map { second(of: $0) == second(of: sent) } ?? false
    }
}

/// A journaled body's fields, for a probe: the journal holds exactly what was sent.
struct JournalBody: Decodable {
    struct Line: Decodable {
        var packageLabel: String?
        var quantity: Decimal?
        var totalAmount: Decimal?

        enum CodingKeys: String, CodingKey {
            case packageLabel = "PackageLabel", quantity = "Quantity", totalAmount = "TotalAmount"
        }
    }

    var id: Int64?
    var externalReceiptNumber: String?
    var transactions: [Line]?
    var patientLicenseNumber: String?
    var checkInLocationId: Int64?
    var checkInDate: String?
    var label: String?
    var reasonNote: String?
    var salesDateTime: String?
    var dateTime: String?
    var driverEmployeeId: String?
    var retailerDeliveryId: Int64?

    enum CodingKeys: String, CodingKey {
        case id = "Id", externalReceiptNumber = "ExternalReceiptNumber", transactions = "Transactions"
        case patientLicenseNumber = "PatientLicenseNumber", checkInLocationId = "CheckInLocationId"
        case checkInDate = "CheckInDate", label = "Label", reasonNote = "ReasonNote"
        case salesDateTime = "SalesDateTime", dateTime = "DateTime", driverEmployeeId = "DriverEmployeeId"
        case retailerDeliveryId = "RetailerDeliveryId"
    }

    init(_ row: JournalRow) throws(MetrcError) {
        do {
            self = try JSONDecoder().decode(JournalBody.self, from: Data(row.body.utf8))
        } catch {
            throw MetrcError.invalidResponse("journal row \(row.id) holds no readable JSON object: \(error)")
        }
    }

    /// A field the probe needs, or an error naming it (the row then waits, visibly, for a person).
    static func required<T>(_ value: T?, _ name: String, _ row: JournalRow) throws(MetrcError) -> T {
        guard let value else { throw MetrcError.invalidResponse("journal row \(row.id) has no \(name) to look for in Metrc") }
        return value
    }

    /// Whether Metrc's receipt has exactly these lines (package, quantity, amount): an edit took.
    func sameLines(as receipt: MetrcReceipt) -> Bool {
        receipt.transactions.map(sameLines(as:)) ?? false
    }

    /// Whether Metrc holds the same packages (a create found again by its time).
    func sameLabels(as held: [MetrcReceiptTransaction]?) -> Bool {
        guard let lines = transactions, let held else { return false }
        return lines.compactMap { $0.packageLabel?.uppercased() }.sorted() == held.compactMap { $0.packageLabel?.uppercased() }.sorted()
    }

    func sameLines(as held: [MetrcReceiptTransaction]) -> Bool {
        guard let lines = transactions else { return false }
        func key(_ label: String?, _ quantity: Decimal?, _ amount: Decimal?) -> String {
            "\(label?.uppercased() ?? "")|\(quantity.map { "\($0)" } ?? "")|\(amount.map { "\($0)" } ?? "")"
        }
        let sent = lines.map { key($0.packageLabel, $0.quantity, $0.totalAmount) }
        let there = held.map { key($0.packageLabel, $0.quantitySold, $0.totalPrice) }
        return sent.sorted() == there.sorted()
    }
}

/// Metrc's check-ins of the days a drain pass looks in: each day listed once, and each Metrc check-in
/// matched to one local check-in at most (a patient may check in twice a day at the same place).
actor CheckInDays {
    private let metrc: any MetrcAPI
    private var lists: [String: [MetrcPatientCheckIn]] = [:]
    /// Metrc Ids already recorded for a local check-in, or matched during this pass.
    private var held: Set<Int64>

    init(metrc: any MetrcAPI, held: Set<Int64>) {
        self.metrc = metrc
        self.held = held
    }

    func find(patient: String, location: Int64, on date: String) async throws(MetrcError) -> Int64? {
        let list: [MetrcPatientCheckIn]
        if let known = lists[date] {
            list = known
        } else {
            list = try await metrc.patientCheckIns(on: date)
            lists[date] = list
        }
        let found = list.first {
            !held.contains($0.id) && $0.patientLicenseNumber.map { LicenseNumber.same($0, patient) } == true
                && $0.checkInLocationId == location
        }?.id
        if let found { held.insert(found) }
        return found
    }
}
