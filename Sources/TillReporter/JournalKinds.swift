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

    enum CodingKeys: String, CodingKey {
        case id = "Id", externalReceiptNumber = "ExternalReceiptNumber", transactions = "Transactions"
        case patientLicenseNumber = "PatientLicenseNumber", checkInLocationId = "CheckInLocationId"
        case checkInDate = "CheckInDate", label = "Label", reasonNote = "ReasonNote"
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
        guard let lines = transactions, let held = receipt.transactions else { return false }
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
