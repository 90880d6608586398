import Foundation
import GRDB
import TillDomain

/// Vehicle trips (Metrc's retailer deliveries): each step changes the shop's and the vehicle's stock and
/// journals its write in one transaction, after Till checked Metrc's order itself (docs/deliveries.md).
extension TillStore {
    /// Records a trip, its load moved from the shop's shelf to the vehicle, and journals its create; or answers
    /// the trip this `clientTripId` already made.
    ///
    /// - Parameter validateLoad: what each load line takes of its package (in its unit), checked against the
    ///   packages as this transaction reads them.
    public func recordTrip(_ request: TripRequest, digest: String,
                           validateLoad: @Sendable ([TripLoadLine], [String: PackageSnapshot]) throws(TillError) -> [Int64],
                           _ context: DeliveryContext) throws -> (trip: Trip, replayed: Bool) {
        try pool.write { db in
            if let terminalId = context.terminalId, !(try Self.terminalIsLive(id: terminalId, db)) { throw TillError.invalidToken }
            if let existing = try db.row("SELECT id, request_digest FROM trips WHERE client_trip_id = ?", [request.clientTripId]) {
                guard existing["request_digest"] as String == digest else {
                    throw TillError(.conflict, code: "client_trip_id_reused",
                                    "clientTripId \(request.clientTripId) was already used for a different trip.",
                                    details: ["tripId": "\(existing["id"] as Int64)"])
                }
                return (try Self.trip(id: existing["id"], db)!, true)
            }
            let picos = try validateLoad(request.load, Self.packages(labels: request.load.map(\.packageLabel), db))
            let dateTime = try Self.uniqueLocalTime(context, table: "trips", column: "date_time_local", db)
            try db.run("""
                INSERT INTO trips (client_trip_id, request_digest, terminal_id, created_at, business_date_local, date_time_local,
                                   details_json, status)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'created')
                """, [request.clientTripId, digest, context.terminalId, context.at.epochMilliseconds, context.businessDate,
                      dateTime, try Self.json(TripDetails(driver: request.driver, vehicle: request.vehicle,
                                                          estimatedDeparture: context.localTime(request.estimatedDeparture),
                                                          load: request.load))])
            let id = db.lastInsertedRowID
            try Self.load(zip(request.load.map(\.packageLabel), picos), onto: id, db)
            try Self.journalStep(.tripCreate, subject: .trip(id), step: "create",
                                 body: context.bodies.trip(try Self.trip(id: id, db)!), at: context.at, db)
            try Self.appendAudit(AuditEvent(actor: context.actor, terminalId: context.terminalId, action: "trip.journaled",
                                            license: context.license, requestDigest: digest, subject: "trip:\(id)",
                                            detail: "\(request.load.count) package(s) loaded"), at: context.at, db)
            return (try Self.trip(id: id, db)!, false)
        }
    }

    /// The trip departs. Departing again answers the trip as it stands.
    public func departTrip(id: Int64, _ context: DeliveryContext) throws -> Trip {
        try pool.write { db in
            let trip = try Self.existingTrip(id, db)
            if trip.status == .departed && trip.frozenReason == nil { return trip }
            try Self.require(trip, in: [.created], for: "depart")
            try db.run("UPDATE trips SET status = 'departed', departed_at = ? WHERE id = ?", [context.at.epochMilliseconds, id])
            try Self.journalStep(.tripDepart, subject: .trip(id), step: "depart", body: context.bodies.tripId(trip.metrcTripId),
                                 at: context.at, db)
            try Self.appendAudit(AuditEvent(actor: context.actor, terminalId: context.terminalId, action: "trip.departed",
                                            license: context.license, subject: "trip:\(id)"), at: context.at, db)
            return try Self.trip(id: id, db)!
        }
    }

    /// A sale from the vehicle's stock, once by its `clientSaleId` on this trip.
    ///
    /// - Parameter validate: the sale's rules, against the vehicle's stock as packages (their quantity what the
    ///   vehicle holds).
    public func recordTripSale(tripId id: Int64, _ request: TripSaleRequest, digest: String,
                               validate: @Sendable ([String: PackageSnapshot]) throws(TillError) -> [ValidatedLine],
                               _ context: DeliveryContext) throws -> (trip: Trip, event: TripEvent, replayed: Bool) {
        try pool.write { db in
            let trip = try Self.existingTrip(id, db)
            if let event = try Self.replayedTripEvent(trip, .sale, clientId: request.clientSaleId, digest: digest, db) {
                return (trip, event, true)
            }
            try Self.require(trip, in: [.departed], for: "sell")
            var vehicle = try Self.packages(labels: request.lines.map(\.packageLabel), db)
            for label in vehicle.keys {
                let held = trip.stock.first { $0.packageLabel == label }?.quantity
                if let held { vehicle[label]?.quantity = held } else { vehicle[label] = nil }
            }
            let lines = try validate(vehicle)
            let total = lines.reduce(Money.zero) { $0 + $1.request.totalAmount }
            let salesDateTime = try Self.uniqueLocalTime(context, table: "trip_events",
                                                         column: "json_extract(detail_json, '$.dateTime')", db)
            try db.run("""
                INSERT INTO trip_events (trip_id, kind, client_id, request_digest, at, detail_json, customer_type,
                                         patient_license_number, total_cents)
                VALUES (?, 'sale', ?, ?, ?, ?, ?, ?, ?)
                """, [id, request.clientSaleId, digest, context.at.epochMilliseconds,
                      try Self.json(TripEventDetail(dateTime: salesDateTime, sale: request, picos: Dictionary(
                          lines.map { ($0.request.packageLabel, $0.packageDecrementPicos) }, uniquingKeysWith: +))),
                      request.customerType.rawValue, request.patientLicenseNumber, total.cents])
            let eventId = db.lastInsertedRowID
            var taken: [String: Int64] = [:]
            for (number, line) in lines.enumerated() {
                try db.run("""
                    UPDATE trip_stock SET quantity_picos = quantity_picos - ?1
                    WHERE trip_id = ?2 AND package_label = ?3 AND quantity_picos >= ?1
                    """, [line.packageDecrementPicos, id, line.request.packageLabel])
                guard db.changesCount == 1 else {
                    throw TillError.unprocessable("insufficient_quantity", "The vehicle does not hold that much of \(line.request.packageLabel).",
                                                  details: ["line": "\(number)", "packageLabel": line.request.packageLabel])
                }
                taken[line.request.packageLabel, default: 0] += line.packageDecrementPicos
            }
            try Self.journalStep(.tripSale, subject: .trip(id), step: "sale",
                                 body: context.bodies.tripSale(trip.metrcTripId, salesDateTime, request, lines),
                                 metrcPicos: taken, at: context.at, db)
            try Self.appendAudit(AuditEvent(actor: context.actor, terminalId: context.terminalId, action: "trip.sale",
                                            license: context.license, requestDigest: digest, subject: "trip:\(id)",
                                            detail: "total \(total)"), at: context.at, db)
            let event = try Self.tripEvents(id, db).first { $0.id == eventId }!
            return (try Self.trip(id: id, db)!, event, false)
        }
    }

    /// Adds packages to the vehicle from the shop and takes others off it (what is left of them goes back).
    public func restockTrip(id: Int64, _ request: RestockRequest, digest: String,
                            validateLoad: @Sendable ([TripLoadLine], [String: PackageSnapshot]) throws(TillError) -> [Int64],
                            _ context: DeliveryContext) throws -> Trip {
        try pool.write { db in
            let trip = try Self.existingTrip(id, db)
            if try Self.replayedTripEvent(trip, .restock, clientId: request.clientRestockId, digest: digest, db) != nil { return trip }
            try Self.require(trip, in: [.created, .departed], for: "restock")
            var removed: [TripStock] = []
            for label in request.remove {
                guard let held = trip.stock.first(where: { $0.packageLabel == label }) else {
                    throw TillError.unprocessable("package_not_on_vehicle", "Package \(label) is not on the vehicle.",
                                                  details: ["packageLabel": label])
                }
                removed.append(held)
            }
            if let both = request.add.first(where: { request.remove.contains($0.packageLabel) }) {
                throw TillError.invalid("duplicate_package", "Package \(both.packageLabel) is both added and removed.",
                                        details: ["packageLabel": both.packageLabel])
            }
            let picos = try validateLoad(request.add, Self.packages(labels: request.add.map(\.packageLabel), db))
            for held in removed {
                let left = try Int64.fetchOne(db, sql: "SELECT quantity_picos FROM trip_stock WHERE trip_id = ? AND package_label = ?",
                                              arguments: [id, held.packageLabel]) ?? 0
                try db.run("UPDATE packages SET quantity_picos = quantity_picos + ? WHERE label = ?", [left, held.packageLabel])
                try db.run("DELETE FROM trip_stock WHERE trip_id = ? AND package_label = ?", [id, held.packageLabel])
            }
            try Self.load(zip(request.add.map(\.packageLabel), picos), onto: id, db)
            // Later than any restock before it: Metrc's RestockDateTime at least this one's shows it applied.
            let last = try String.fetchOne(db, sql: """
                SELECT MAX(json_extract(detail_json, '$.dateTime')) FROM trip_events WHERE trip_id = ? AND kind = 'restock'
                """, arguments: [id])
            var instant = Date(timeIntervalSince1970: context.at.timeIntervalSince1970.rounded(.down))
            while let last, context.localTime(instant) <= last { instant = instant.addingTimeInterval(1) }
            let dateTime = context.localTime(instant)
            try db.run("""
                INSERT INTO trip_events (trip_id, kind, client_id, request_digest, at, detail_json) VALUES (?, 'restock', ?, ?, ?, ?)
                """, [id, request.clientRestockId, digest, context.at.epochMilliseconds,
                      try Self.json(TripEventDetail(dateTime: dateTime, restock: request,
                                                    picos: Dictionary(zip(request.add.map(\.packageLabel), picos), uniquingKeysWith: +)))])
            try Self.journalStep(.tripRestock, subject: .trip(id), step: "restock",
                                 body: context.bodies.tripRestock(trip.metrcTripId, dateTime, request.add, removed), at: context.at, db)
            try Self.appendAudit(AuditEvent(actor: context.actor, terminalId: context.terminalId, action: "trip.restocked",
                                            license: context.license, requestDigest: digest, subject: "trip:\(id)",
                                            detail: "\(request.add.count) added, \(request.remove.count) removed"), at: context.at, db)
            return try Self.trip(id: id, db)!
        }
    }

    /// Ends a trip whose driver's counts equal what Till holds on the vehicle; the vehicle's goods go back to
    /// the shop. Ending again answers the trip as it stands.
    public func endTrip(id: Int64, _ request: TripEndRequest, _ context: DeliveryContext) throws -> Trip {
        try pool.write { db in
            let trip = try Self.existingTrip(id, db)
            if trip.status == .ended && trip.frozenReason == nil { return trip }
            try Self.require(trip, in: [.departed], for: "end")
            try DeliveryRules.checkEndCounts(request.counts, stock: trip.stock)
            try Self.unload(trip: id, db)
            try db.run("UPDATE trips SET status = 'ended', ended_at = ? WHERE id = ?", [context.at.epochMilliseconds, id])
            try Self.journalStep(.tripEnd, subject: .trip(id), step: "end",
                                 body: context.bodies.tripEnd(trip.metrcTripId, context.localTime(request.actualArrival), trip.stock),
                                 at: context.at, db)
            try Self.appendAudit(AuditEvent(actor: context.actor, terminalId: context.terminalId, action: "trip.ended",
                                            license: context.license, subject: "trip:\(id)"), at: context.at, db)
            return try Self.trip(id: id, db)!
        }
    }

    /// Voids a trip before it departs: its load goes back to the shop.
    public func voidTrip(id: Int64, _ context: DeliveryContext) throws -> Trip {
        try pool.write { db in
            let trip = try Self.existingTrip(id, db)
            if trip.status == .voided { return trip }
            try Self.require(trip, in: [.created], for: "void")
            try Self.unload(trip: id, db)
            try db.run("UPDATE trips SET status = 'voided', voided_at = ? WHERE id = ?", [context.at.epochMilliseconds, id])
            if try !Self.dropRefusedCreate(of: .trip(id), db) {
                try Self.journalStep(.tripVoid, subject: .trip(id), step: "void", body: context.bodies.tripId(trip.metrcTripId),
                                     at: context.at, db)
            }
            try Self.appendAudit(AuditEvent(actor: context.actor, terminalId: context.terminalId, action: "trip.voided",
                                            license: context.license, subject: "trip:\(id)"), at: context.at, db)
            return try Self.trip(id: id, db)!
        }
    }

    /// Undoes a sale from the vehicle that Metrc refused while its driver waited, when nothing of the trip came
    /// after it: the vehicle gets its goods back, and the sale is not recorded.
    public func undoRefusedTripSale(tripId id: Int64, eventId: Int64, at: Date) throws -> Bool {
        try pool.write { db in
            guard let step = try db.row("""
                SELECT s.id, s.journal_id FROM delivery_steps s JOIN metrc_journal j ON j.id = s.journal_id
                WHERE s.subject_type = 'trip' AND s.subject_id = ? AND s.step = 'sale' AND j.state = 'refused'
                ORDER BY s.id DESC LIMIT 1
                """, [id]),
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metrc_journal WHERE subject_type = 'trip' AND subject_id = ?",
                                 arguments: [id]) == 1,
                let detail = try String.fetchOne(db, sql: "SELECT detail_json FROM trip_events WHERE id = ?", arguments: [eventId])
            else { return false }
            for (label, picos) in try Self.decoded(TripEventDetail.self, detail).picos {
                try db.run("UPDATE trip_stock SET quantity_picos = quantity_picos + ? WHERE trip_id = ? AND package_label = ?",
                           [picos, id, label])
            }
            try db.run("DELETE FROM metrc_journal WHERE id = ?", [step["journal_id"] as Int64])
            try db.run("DELETE FROM delivery_step_stock WHERE step_id = ?", [step["id"] as Int64])
            try db.run("DELETE FROM delivery_steps WHERE id = ?", [step["id"] as Int64])
            try db.run("DELETE FROM trip_events WHERE id = ?", [eventId])
            try Self.appendAudit(AuditEvent(actor: "metrc", action: "trip.sale.undone", subject: "trip:\(id)",
                                            detail: "Metrc refused the sale while the driver waited"), at: at, db)
            return true
        }
    }

    public func trip(id: Int64) throws -> Trip? {
        try pool.read { db in try Self.trip(id: id, db) }
    }

    static func trip(id: Int64, _ db: Database) throws -> Trip? {
        guard let row = try db.row("SELECT * FROM trips WHERE id = ?", [id]) else { return nil }
        let details = try Self.decoded(TripDetails.self, row["details_json"])
        let stock = try db.rows("""
            SELECT t.package_label, t.quantity_picos, p.unit FROM trip_stock t LEFT JOIN packages p ON p.label = t.package_label
            WHERE t.trip_id = ? ORDER BY t.package_label
            """, [id]).map {
            TripStock(packageLabel: $0["package_label"], quantity: Quantities.decimal(picos: $0["quantity_picos"]), unit: $0["unit"] ?? "")
        }
        return Trip(id: id, clientTripId: row["client_trip_id"], driver: details.driver, vehicle: details.vehicle,
                    estimatedDeparture: details.estimatedDeparture, load: details.load, status: TripStatus(rawValue: row["status"]) ?? .created,
                    frozenReason: row["frozen_reason"], metrcTripId: row["metrc_trip_id"],
                    createdAt: Date(epochMilliseconds: row["created_at"]), businessDate: row["business_date_local"],
                    dateTime: row["date_time_local"], stock: stock, events: try tripEvents(id, db), steps: try steps(of: .trip(id), db))
    }

    private static func tripEvents(_ id: Int64, _ db: Database) throws -> [TripEvent] {
        try db.rows("SELECT * FROM trip_events WHERE trip_id = ? ORDER BY id", [id]).map {
            TripEvent(id: $0["id"], kind: TripEvent.Kind(rawValue: $0["kind"]) ?? .sale, clientId: $0["client_id"],
                      at: Date(epochMilliseconds: $0["at"]), detailJSON: $0["detail_json"], totalAmount: Money(cents: $0["total_cents"]))
        }
    }

    private static func existingTrip(_ id: Int64, _ db: Database) throws -> Trip {
        guard let trip = try trip(id: id, db) else {
            throw TillError(.notFound, code: "trip_not_found", "No trip \(id).", details: ["tripId": "\(id)"])
        }
        return trip
    }

    /// Metrc's order, kept before anything is sent.
    private static func require(_ trip: Trip, in allowed: Set<TripStatus>, for step: String) throws(TillError) {
        let at = ["tripId": "\(trip.id)", "status": trip.status.rawValue]
        if let reason = trip.frozenReason {
            throw TillError(.conflict, code: "trip_frozen", "Trip \(trip.id) is frozen: \(reason)", details: at)
        }
        guard !allowed.contains(trip.status) else { return }
        switch trip.status {
        case .created:
            throw TillError(.conflict, code: "trip_not_departed", "Trip \(trip.id) has not departed: it cannot \(step) yet.", details: at)
        case .departed:
            throw TillError(.conflict, code: "trip_departed", "Trip \(trip.id) has departed: it cannot \(step) now.", details: at)
        case .ended:
            throw TillError(.conflict, code: "trip_ended", "Trip \(trip.id) has ended.", details: at)
        case .voided:
            throw TillError(.conflict, code: "trip_voided", "Trip \(trip.id) was voided.", details: at)
        }
    }

    private static func replayedTripEvent(_ trip: Trip, _ kind: TripEvent.Kind, clientId: String, digest: String,
                                          _ db: Database) throws -> TripEvent? {
        guard let row = try db.row("SELECT id, request_digest FROM trip_events WHERE trip_id = ? AND kind = ? AND client_id = ?",
                                   [trip.id, kind.rawValue, clientId]) else { return nil }
        guard row["request_digest"] as String == digest else {
            throw TillError(.conflict, code: "client_id_reused",
                            "\(kind == .sale ? "clientSaleId" : "clientRestockId") \(clientId) was already used on this trip for another \(kind.rawValue).",
                            details: ["tripId": "\(trip.id)"])
        }
        return trip.events.first { $0.id == row["id"] as Int64 }
    }

    private static func load(_ lines: some Sequence<(String, Int64)>, onto trip: Int64, _ db: Database) throws {
        for (number, (label, picos)) in lines.enumerated() {
            try takeFromShelf(picos, of: label, line: number, db)
            try db.run("""
                INSERT INTO trip_stock (trip_id, package_label, quantity_picos) VALUES (?, ?, ?)
                ON CONFLICT (trip_id, package_label) DO UPDATE SET quantity_picos = quantity_picos + excluded.quantity_picos
                """, [trip, label, picos])
        }
    }

    /// Everything the vehicle holds goes back to the shop's shelf.
    private static func unload(trip id: Int64, _ db: Database) throws {
        try db.run("""
            UPDATE packages SET quantity_picos = quantity_picos +
                (SELECT t.quantity_picos FROM trip_stock t WHERE t.trip_id = ?1 AND t.package_label = packages.label)
            WHERE label IN (SELECT package_label FROM trip_stock WHERE trip_id = ?1)
            """, [id])
        try db.run("DELETE FROM trip_stock WHERE trip_id = ?", [id])
    }
}

/// A trip's driver, vehicle and load as recorded.
struct TripDetails: Codable {
    var driver: Driver
    var vehicle: Vehicle
    var estimatedDeparture: String
    var load: [TripLoadLine]
}

/// A trip event as recorded: Metrc's time for it, the request, and what it took of each package.
struct TripEventDetail: Codable {
    var dateTime: String
    var sale: TripSaleRequest?
    var restock: RestockRequest?
    var picos: [String: Int64]

    init(dateTime: String, sale: TripSaleRequest? = nil, restock: RestockRequest? = nil, picos: [String: Int64]) {
        self.dateTime = dateTime
        self.sale = sale
        self.restock = restock
        self.picos = picos
    }
}
