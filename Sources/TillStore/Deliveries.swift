import Foundation
import GRDB
import TillDomain

/// The JSON objects deliveries and trips journal for Metrc, written by the layer that knows Metrc's format.
public struct DeliveryBodies: Sendable {
    /// `POST /sales/v2/deliveries` (Id nil) or `PUT /sales/v2/deliveries` (the delivery's Metrc Id, nil until known).
    public var delivery: @Sendable (Delivery, _ metrcId: Int64?, _ update: Bool) -> String
    /// `PUT /sales/v2/deliveries/complete`.
    public var completion: @Sendable (Delivery, _ metrcId: Int64?, _ actualArrival: String) -> String
    /// `{"Id":n}`: what a void's DELETE names.
    public var deliveryId: @Sendable (Int64?) -> String
    /// `POST /packages/v2/adjust`: goods sent back and wasted.
    public var wasteAdjust: @Sendable (_ label: String, _ quantity: Decimal, _ unit: String, _ date: String, _ note: String) -> String
    /// `POST /sales/v2/deliveries/retailer`.
    public var trip: @Sendable (Trip) -> String
    /// `{"RetailerDeliveryId":n}`: a departure, and what a void's DELETE names.
    public var tripId: @Sendable (Int64?) -> String
    /// `POST /sales/v2/deliveries/retailer/sale`: the trip's Metrc Id, the sale's time, the sale.
    public var tripSale: @Sendable (Int64?, _ salesDateTime: String, TripSaleRequest, [ValidatedLine]) -> String
    /// `POST /sales/v2/deliveries/retailer/restock`: the trip's Id, the restock's time, what is added (each with
    /// its unit as Metrc has the package) and what is taken off (with what the vehicle held of it).
    public var tripRestock: @Sendable (Int64?, _ dateTime: String, _ added: [TripLoadLine], _ removed: [TripStock]) -> String
    /// `POST /sales/v2/deliveries/retailer/end`.
    public var tripEnd: @Sendable (Int64?, _ actualArrival: String, [TripStock]) -> String

    public init(delivery: @escaping @Sendable (Delivery, Int64?, Bool) -> String,
                completion: @escaping @Sendable (Delivery, Int64?, String) -> String,
                deliveryId: @escaping @Sendable (Int64?) -> String,
                wasteAdjust: @escaping @Sendable (String, Decimal, String, String, String) -> String,
                trip: @escaping @Sendable (Trip) -> String, tripId: @escaping @Sendable (Int64?) -> String,
                tripSale: @escaping @Sendable (Int64?, String, TripSaleRequest, [ValidatedLine]) -> String,
                tripRestock: @escaping @Sendable (Int64?, String, [TripLoadLine], [TripStock]) -> String,
                tripEnd: @escaping @Sendable (Int64?, String, [TripStock]) -> String) {
        self.delivery = delivery
        self.completion = completion
        self.deliveryId = deliveryId
        self.wasteAdjust = wasteAdjust
        self.trip = trip
        self.tripId = tripId
        self.tripSale = tripSale
        self.tripRestock = tripRestock
        self.tripEnd = tripEnd
    }
}

/// Who records a delivery or trip step, when, and how Metrc is written to.
public struct DeliveryContext: Sendable {
    public var terminalId: Int64?
    public var actor: String
    public var license: String
    public var at: Date
    public var businessDate: String
    /// The facility's local wall clock of an instant, as Metrc takes it.
    public var localTime: @Sendable (Date) -> String
    public var bodies: DeliveryBodies

    public init(terminalId: Int64?, actor: String, license: String, at: Date, businessDate: String,
                localTime: @escaping @Sendable (Date) -> String, bodies: DeliveryBodies) {
        self.terminalId = terminalId
        self.actor = actor
        self.license = license
        self.at = at
        self.businessDate = businessDate
        self.localTime = localTime
        self.bodies = bodies
    }
}

extension TillStore {
    // MARK: - Sales deliveries

    /// Records a sales delivery, its stock taken, and journals its create, in one transaction; or answers the
    /// delivery this `clientDeliveryId` already made (`replayed`). The lines pass `validate` against the
    /// packages as this transaction reads them.
    public func recordDelivery(_ request: DeliveryRequest, digest: String,
                               validate: @Sendable ([String: PackageSnapshot]) throws(TillError) -> [ValidatedLine],
                               _ context: DeliveryContext) throws -> (delivery: Delivery, replayed: Bool) {
        try pool.write { db in
            if let terminalId = context.terminalId, !(try Self.terminalIsLive(id: terminalId, db)) { throw TillError.invalidToken }
            if let existing = try db.row("SELECT id, request_digest FROM deliveries WHERE client_delivery_id = ?", [request.clientDeliveryId]) {
                guard existing["request_digest"] as String == digest else {
                    throw TillError(.conflict, code: "client_delivery_id_reused",
                                    "clientDeliveryId \(request.clientDeliveryId) was already used for a different delivery.",
                                    details: ["deliveryId": "\(existing["id"] as Int64)"])
                }
                return (try Self.delivery(id: existing["id"], db)!, true)
            }
            let lines = try validate(Self.packages(labels: request.lines.map(\.packageLabel), db))
            let salesDateTime = try Self.uniqueLocalTime(context, table: "deliveries", column: "sales_date_time_local", db)
            let total = lines.reduce(Money.zero) { $0 + $1.request.totalAmount }
            try db.run("""
                INSERT INTO deliveries (client_delivery_id, request_digest, terminal_id, created_at, business_date_local,
                                        sales_date_time_local, customer_type, patient_license_number, details_json,
                                        total_cents, status)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')
                """, [request.clientDeliveryId, digest, context.terminalId, context.at.epochMilliseconds, context.businessDate,
                      salesDateTime, request.customerType.rawValue, request.patientLicenseNumber, try Self.json(request), total.cents])
            let id = db.lastInsertedRowID
            let taken = try Self.takeDeliveryLines(lines, delivery: id, db)
            let delivery = try Self.delivery(id: id, db)!
            try Self.journalStep(.deliveryCreate, subject: .delivery(id), step: "create",
                                 body: context.bodies.delivery(delivery, nil, false), metrcPicos: taken, at: context.at, db)
            try Self.appendAudit(AuditEvent(actor: context.actor, terminalId: context.terminalId, action: "delivery.journaled",
                                            license: context.license, requestDigest: digest, subject: "delivery:\(id)",
                                            detail: "total \(total); \(lines.count) line(s)"), at: context.at, db)
            return (try Self.delivery(id: id, db)!, false)
        }
    }

    /// Replaces an open delivery's content (`PUT /sales/v2/deliveries`): the old lines' stock back, the new taken.
    public func updateDelivery(id: Int64, _ request: DeliveryRequest, digest: String,
                               validate: @Sendable ([String: PackageSnapshot]) throws(TillError) -> [ValidatedLine],
                               _ context: DeliveryContext) throws -> Delivery {
        try pool.write { db in
            guard let current = try Self.delivery(id: id, db) else { throw Self.deliveryNotFound(id) }
            guard current.request.clientDeliveryId == request.clientDeliveryId else {
                throw TillError.invalid("client_delivery_id_mismatch", "clientDeliveryId must stay \(current.request.clientDeliveryId).",
                                        details: ["field": "clientDeliveryId"])
            }
            if try String.fetchOne(db, sql: "SELECT request_digest FROM deliveries WHERE id = ?", arguments: [id]) == digest {
                return current  // the same content again: a retry
            }
            try Self.requireOpen(current)
            let before = try Self.returnDeliveryLines(of: id, db)
            try db.run("DELETE FROM delivery_lines WHERE delivery_id = ?", [id])
            let lines = try validate(Self.packages(labels: request.lines.map(\.packageLabel), db))
            let total = lines.reduce(Money.zero) { $0 + $1.request.totalAmount }
            try db.run("""
                UPDATE deliveries SET request_digest = ?, customer_type = ?, patient_license_number = ?, details_json = ?,
                    total_cents = ? WHERE id = ?
                """, [digest, request.customerType.rawValue, request.patientLicenseNumber, try Self.json(request), total.cents, id])
            var delta = try Self.takeDeliveryLines(lines, delivery: id, db)
            for (label, picos) in before { delta[label, default: 0] -= picos }
            let delivery = try Self.delivery(id: id, db)!
            try Self.journalStep(.deliveryUpdate, subject: .delivery(id), step: "update",
                                 body: context.bodies.delivery(delivery, delivery.metrcDeliveryId, true), metrcPicos: delta,
                                 at: context.at, db)
            try Self.appendAudit(AuditEvent(actor: context.actor, terminalId: context.terminalId, action: "delivery.updated",
                                            license: context.license, requestDigest: digest, subject: "delivery:\(id)",
                                            detail: "total \(total)"), at: context.at, db)
            return try Self.delivery(id: id, db)!
        }
    }

    /// Completes an open delivery: what came back goes to the shelf or is held by its disposition, and the
    /// completion (with a waste adjustment per wasted package after it) is journaled. Asked again with the same
    /// completion, answers the delivery as it stands.
    ///
    /// - Parameter returnedPicos: each returned package's quantity in its package's unit (checked by the caller).
    public func completeDelivery(id: Int64, _ completion: DeliveryCompletion, returnedPicos: [String: Int64],
                                 actualArrival: String, wasteNote: String, _ context: DeliveryContext) throws -> Delivery {
        try pool.write { db in
            guard let current = try Self.delivery(id: id, db) else { throw Self.deliveryNotFound(id) }
            // The same completion again (as stored, to the millisecond): a retry.
            if current.status == .completed,
               try String.fetchOne(db, sql: "SELECT completion_json FROM deliveries WHERE id = ?", arguments: [id]) == Self.json(completion) {
                return current
            }
            try Self.requireOpen(current)
            try db.run("UPDATE deliveries SET status = 'completed', completion_json = ?, completed_at = ? WHERE id = ?",
                       [try Self.json(completion), context.at.epochMilliseconds, id])
            var metrcPicos: [String: Int64] = [:]
            var wasted: [(label: String, picos: Int64)] = []
            for returned in completion.returned {
                let picos = returnedPicos[returned.label] ?? 0
                metrcPicos[returned.label, default: 0] -= picos  // Metrc puts what came back on the package
                switch returned.disposition ?? .quarantine {
                case .restock:
                    try db.run("UPDATE packages SET quantity_picos = quantity_picos + ? WHERE label = ?", [picos, returned.label])
                case .quarantine, .waste:
                    let disposition = returned.disposition ?? .quarantine
                    try db.run("""
                        INSERT INTO delivery_held_stock (delivery_id, package_label, disposition, quantity_picos, held_at)
                        VALUES (?, ?, ?, ?, ?)
                        """, [id, returned.label, disposition.rawValue, picos, context.at.epochMilliseconds])
                    if disposition == .waste { wasted.append((returned.label, picos)) }
                }
            }
            let delivery = try Self.delivery(id: id, db)!
            try Self.journalStep(.deliveryComplete, subject: .delivery(id), step: "complete",
                                 body: context.bodies.completion(delivery, delivery.metrcDeliveryId, actualArrival),
                                 metrcPicos: metrcPicos, at: context.at, db)
            for waste in wasted {
                let unit = try String.fetchOne(db, sql: "SELECT unit FROM packages WHERE label = ?", arguments: [waste.label]) ?? ""
                try Self.journalStep(.packageAdjust, subject: .delivery(id), step: "waste",
                                     body: context.bodies.wasteAdjust(waste.label, Quantities.decimal(picos: waste.picos), unit,
                                                                      context.businessDate, wasteNote),
                                     metrcPicos: [waste.label: waste.picos], at: context.at, db)
            }
            try Self.appendAudit(AuditEvent(actor: context.actor, terminalId: context.terminalId, action: "delivery.completed",
                                            license: context.license, subject: "delivery:\(id)",
                                            detail: "\(completion.accepted.count) accepted, \(completion.returned.count) returned"),
                                 at: context.at, db)
            return try Self.delivery(id: id, db)!
        }
    }

    /// Voids an open delivery: its stock back on the shelf, and Metrc's copy voided (when Metrc ever held it:
    /// a create Metrc refused is simply dropped). A voided delivery answers as it stands.
    public func voidDelivery(id: Int64, _ context: DeliveryContext) throws -> Delivery {
        try pool.write { db in
            guard let current = try Self.delivery(id: id, db) else { throw Self.deliveryNotFound(id) }
            if current.status == .voided { return current }
            try Self.requireOpen(current)
            let restored = try Self.returnDeliveryLines(of: id, db)
            try db.run("UPDATE deliveries SET status = 'voided', voided_at = ? WHERE id = ?", [context.at.epochMilliseconds, id])
            if try !Self.dropRefusedCreate(of: .delivery(id), db) {
                try Self.journalStep(.deliveryVoid, subject: .delivery(id), step: "void",
                                     body: context.bodies.deliveryId(current.metrcDeliveryId),
                                     metrcPicos: restored.mapValues { -$0 }, at: context.at, db)
            }
            try Self.appendAudit(AuditEvent(actor: context.actor, terminalId: context.terminalId, action: "delivery.voided",
                                            license: context.license, subject: "delivery:\(id)"), at: context.at, db)
            return try Self.delivery(id: id, db)!
        }
    }

    public func delivery(id: Int64) throws -> Delivery? {
        try pool.read { db in try Self.delivery(id: id, db) }
    }

    public func deliveries(businessDate: String) throws -> [Delivery] {
        try pool.read { db in
            try Int64.fetchAll(db, sql: "SELECT id FROM deliveries WHERE business_date_local = ? ORDER BY id",
                               arguments: [businessDate]).compactMap { try Self.delivery(id: $0, db) }
        }
    }

    static func delivery(id: Int64, _ db: Database) throws -> Delivery? {
        guard let row = try db.row("SELECT * FROM deliveries WHERE id = ?", [id]) else { return nil }
        let request = try Self.decoded(DeliveryRequest.self, row["details_json"])
        let lines = try db.rows("SELECT * FROM delivery_lines WHERE delivery_id = ? ORDER BY line_number", [id]).map { line in
            DeliveryLine(packageLabel: line["package_label"], quantity: Decimal(string: line["quantity"]) ?? 0, unit: line["unit"],
                         totalAmount: Money(cents: line["total_cents"]), packagePicos: line["package_quantity_picos"])
        }
        let completion = try (row["completion_json"] as String?).map { try Self.decoded(DeliveryCompletion.self, $0) }
        return Delivery(id: id, request: request, status: DeliveryStatus(rawValue: row["status"]) ?? .open,
                        frozenReason: row["frozen_reason"], metrcDeliveryId: row["metrc_delivery_id"],
                        createdAt: Date(epochMilliseconds: row["created_at"]), businessDate: row["business_date_local"],
                        salesDateTime: row["sales_date_time_local"], lines: lines, totalAmount: Money(cents: row["total_cents"]),
                        completion: completion, steps: try Self.steps(of: .delivery(id), db))
    }

    // MARK: - Shared

    /// Inserts the lines and takes their stock (guarded, so two deliveries never take the same units); what
    /// each package gave.
    private static func takeDeliveryLines(_ lines: [ValidatedLine], delivery id: Int64, _ db: Database) throws -> [String: Int64] {
        var taken: [String: Int64] = [:]
        for (number, line) in lines.enumerated() {
            try db.run("""
                INSERT INTO delivery_lines (delivery_id, line_number, package_label, quantity, unit, package_quantity_picos, total_cents)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, [id, number, line.request.packageLabel, "\(line.request.quantity)", line.unitName,
                      line.packageDecrementPicos, line.request.totalAmount.cents])
            try takeFromShelf(line.packageDecrementPicos, of: line.request.packageLabel, line: number, db)
            taken[line.request.packageLabel, default: 0] += line.packageDecrementPicos
        }
        return taken
    }

    /// The delivery's lines' stock back on the shelf; what each package got back.
    private static func returnDeliveryLines(of id: Int64, _ db: Database) throws -> [String: Int64] {
        var restored: [String: Int64] = [:]
        for row in try db.rows("SELECT package_label, package_quantity_picos FROM delivery_lines WHERE delivery_id = ?", [id]) {
            let label: String = row["package_label"], picos: Int64 = row["package_quantity_picos"]
            try db.run("UPDATE packages SET quantity_picos = quantity_picos + ? WHERE label = ?", [picos, label])
            restored[label, default: 0] += picos
        }
        return restored
    }

    /// Takes stock off a package's shelf quantity, refusing what is not there (another sale took it).
    static func takeFromShelf(_ picos: Int64, of label: String, line: Int, _ db: Database) throws {
        try db.run("UPDATE packages SET quantity_picos = quantity_picos - ?1 WHERE label = ?2 AND active = 1 AND quantity_picos >= ?1",
                   [picos, label])
        guard db.changesCount == 1 else {
            let left = try Int64.fetchOne(db, sql: "SELECT quantity_picos FROM packages WHERE label = ?", arguments: [label]) ?? 0
            throw TillError.unprocessable("insufficient_quantity",
                                          "Package \(label) has \(Quantities.decimal(picos: left)) left in the shop.",
                                          details: ["line": "\(line)", "packageLabel": label,
                                                    "available": "\(Quantities.decimal(picos: left))"])
        }
    }

    /// The facility-local time of `context.at` to the second, moved on a second at a time until no other row
    /// of `table` has it: how Metrc's copy of a create in doubt is told apart from every other.
    static func uniqueLocalTime(_ context: DeliveryContext, table: String, column: String, _ db: Database) throws -> String {
        var instant = Date(timeIntervalSince1970: context.at.timeIntervalSince1970.rounded(.down))
        while true {
            let candidate = context.localTime(instant)
            if try Int.fetchOne(db, sql: "SELECT 1 FROM \(table) WHERE \(column) = ?", arguments: [candidate]) == nil {
                return candidate
            }
            instant = instant.addingTimeInterval(1)
        }
    }

    private static func requireOpen(_ delivery: Delivery) throws(TillError) {
        if let reason = delivery.frozenReason {
            throw TillError(.conflict, code: "delivery_frozen", "Delivery \(delivery.id) is frozen: \(reason)",
                            details: ["deliveryId": "\(delivery.id)"])
        }
        switch delivery.status {
        case .open: return
        case .completed:
            throw TillError(.conflict, code: "delivery_completed", "Delivery \(delivery.id) is already completed.",
                            details: ["deliveryId": "\(delivery.id)"])
        case .voided:
            throw TillError(.conflict, code: "delivery_voided", "Delivery \(delivery.id) was voided.",
                            details: ["deliveryId": "\(delivery.id)"])
        }
    }

    static func deliveryNotFound(_ id: Int64) -> TillError {
        TillError(.notFound, code: "delivery_not_found", "No delivery \(id).", details: ["deliveryId": "\(id)"])
    }

    static func decoded<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return try decoder.decode(type, from: Data(json.utf8))
    }

    /// Till's own JSON of a request, as stored (dates as epoch milliseconds, keys sorted).
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
