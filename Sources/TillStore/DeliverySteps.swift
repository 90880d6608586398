import Foundation
import GRDB
import TillDomain

/// The steps of deliveries and trips: each is one journaled write, kept after Metrc has it, with what it
/// changes of Metrc's package quantities (see Migrations/sql/0008_deliveries.sql).
extension TillStore {
    /// Journals one write of a delivery or trip after the earlier ones of its subject, and records it as a step.
    ///
    /// - Parameter metrcPicos: what the write takes off each package's Quantity in Metrc once applied (negative:
    ///   puts back), in 10⁻¹² of the package's unit.
    @discardableResult
    static func journalStep(_ kind: JournalKind, subject: JournalSubject, step: String, body: String,
                            metrcPicos: [String: Int64] = [:], at: Date, _ db: Database) throws -> Int64 {
        let journalId = try appendJournal(kind, subject: subject, body: body, at: at, db)
        try db.run("""
            INSERT INTO delivery_steps (subject_type, subject_id, step, journal_id, created_at) VALUES (?, ?, ?, ?, ?)
            """, [subject.type, subject.id, step, journalId, at.epochMilliseconds])
        let stepId = db.lastInsertedRowID
        for (label, picos) in metrcPicos where picos != 0 {
            try db.run("INSERT INTO delivery_step_stock (step_id, package_label, metrc_picos) VALUES (?, ?, ?)",
                       [stepId, label, picos])
        }
        return journalId
    }

    static func steps(of subject: JournalSubject, _ db: Database) throws -> [DeliveryStep] {
        try db.rows("""
            SELECT s.step, s.created_at, s.reported_at, j.id AS journal_row, j.state, j.in_doubt, j.refusal_json
            FROM delivery_steps s LEFT JOIN metrc_journal j ON j.id = s.journal_id
            WHERE s.subject_type = ? AND s.subject_id = ? ORDER BY s.id
            """, [subject.type, subject.id]).map { row in
            let status: StepStatus
            if row["reported_at"] as Int64? != nil {
                status = .reported
            } else if row["journal_row"] as Int64? == nil || row["state"] as String? == "refused" {
                status = .refused  // still refused, or refused and dropped (the delivery was undone)
            } else {
                status = row["in_doubt"] as Bool? == true ? .inDoubt : .pending
            }
            let messages = (row["refusal_json"] as String?).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
            return DeliveryStep(step: row["step"], status: status, createdAt: Date(epochMilliseconds: row["created_at"]),
                                reportedAt: (row["reported_at"] as Int64?).map(Date.init(epochMilliseconds:)), messages: messages)
        }
    }

    /// The subject's first write, when Metrc refused it and nothing came after: undoing the subject then
    /// owes Metrc nothing (it never held it). Drops that row.
    static func dropRefusedCreate(of subject: JournalSubject, _ db: Database) throws -> Bool {
        let rows = try db.rows("SELECT id, seq, state FROM metrc_journal WHERE subject_type = ? AND subject_id = ? ORDER BY seq",
                               [subject.type, subject.id])
        guard rows.count == 1, rows[0]["seq"] as Int == 1, rows[0]["state"] as String == "refused" else { return false }
        try db.run("DELETE FROM metrc_journal WHERE id = ?", [rows[0]["id"] as Int64])
        return true
    }

    /// Whether the subject's create was refused by Metrc (and is still on record so).
    public func createRefused(_ subject: JournalSubject) throws -> [String]? {
        try pool.read { db in
            try (db.row("""
                SELECT refusal_json FROM metrc_journal WHERE subject_type = ? AND subject_id = ? AND seq = 1 AND state = 'refused'
                """, [subject.type, subject.id])?["refusal_json"] as String?)
                .flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
        }
    }

    /// Whether every step of the subject journaled so far is in Metrc; nil if one was refused.
    public func stepsReported(_ subject: JournalSubject) throws -> Bool? {
        try pool.read { db in
            let steps = try Self.steps(of: subject, db)
            if steps.contains(where: { $0.status == .refused }) { return nil }
            return steps.allSatisfy { $0.status == .reported }
        }
    }

    /// Metrc holds these steps' writes: the steps say so, and the subject records what Metrc gave it.
    static func recordDeliveryEffect(kind: JournalKind, subject: JournalSubject, rowId: Int64, metrcId: Int64?,
                                     at: Date, _ db: Database) throws {
        try db.executeDirect("UPDATE delivery_steps SET reported_at = ? WHERE journal_id = ?", at.epochMilliseconds, rowId)
        switch (kind, subject) {
        case (.deliveryCreate, .delivery(let id)):
            guard let metrcId else {
                throw DatabaseError(resultCode: .SQLITE_CONSTRAINT, message: "a delivery is recorded only with Metrc's Id")
            }
            try db.executeDirect("UPDATE deliveries SET metrc_delivery_id = ? WHERE id = ?", metrcId, id)
            try fillMetrcId(metrcId, key: "Id", subject: subject, db)
        case (.tripCreate, .trip(let id)):
            guard let metrcId else {
                throw DatabaseError(resultCode: .SQLITE_CONSTRAINT, message: "a trip is recorded only with Metrc's Id")
            }
            try db.executeDirect("UPDATE trips SET metrc_trip_id = ? WHERE id = ?", metrcId, id)
            try fillMetrcId(metrcId, key: "RetailerDeliveryId", subject: subject, db)
        case (.packageAdjust, .delivery(let id)):
            // Wasted goods Metrc no longer counts: nothing to take off its count at the next sync.
            try db.executeDirect("""
                DELETE FROM delivery_held_stock WHERE delivery_id = ? AND disposition = 'waste'
                AND package_label = (SELECT json_extract(body, '$.Label') FROM metrc_journal WHERE id = ?)
                """, id, rowId)
        default:
            break
        }
    }

    /// Later writes of the subject name what Metrc just made by the Id it gave.
    private static func fillMetrcId(_ metrcId: Int64, key: String, subject: JournalSubject, _ db: Database) throws {
        try db.executeDirect("""
            UPDATE metrc_journal SET body = json_set(body, '$.\(key)', ?)
            WHERE subject_type = ? AND subject_id = ? AND seq > 1 AND json_type(body, '$.\(key)') IS NOT 'integer'
            """, metrcId, subject.type, subject.id)
    }

    // MARK: - What deliveries and trips mean for stock

    /// What owed delivery and trip writes (not in doubt) will take off each package's Quantity in Metrc.
    static func deliveryQuantitiesOwedToMetrc(_ db: Database) throws -> [String: Int64] {
        Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: """
            SELECT st.package_label, SUM(st.metrc_picos) AS taken
            FROM delivery_step_stock st JOIN delivery_steps s ON s.id = st.step_id
            JOIN metrc_journal j ON j.id = s.journal_id
            WHERE j.state = 'pending' AND j.in_doubt = 0
            GROUP BY st.package_label
            """).map { ($0["package_label"] as String, $0["taken"] as Int64) })
    }

    /// Packages a delivery or trip write in doubt touches, or one Metrc took since `since`.
    static func packagesWithUnsettledDeliveryWrites(since: Date?, _ db: Database) throws -> Set<String> {
        Set(try String.fetchAll(db, sql: """
            SELECT DISTINCT st.package_label FROM delivery_step_stock st JOIN delivery_steps s ON s.id = st.step_id
            LEFT JOIN metrc_journal j ON j.id = s.journal_id
            WHERE (j.state = 'pending' AND j.in_doubt = 1) OR s.reported_at >= ?
            """, arguments: [since?.epochMilliseconds ?? Int64.max]))
    }

    /// Stock off the shop's shelf for deliveries and trips: on vehicles under way, and goods a customer sent
    /// back that are held (Metrc's package counts both).
    static func deliveryPicosOffTheShelf(_ db: Database) throws -> [String: Int64] {
        var off: [String: Int64] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT package_label, SUM(quantity_picos) AS held FROM (
                SELECT t.package_label, t.quantity_picos FROM trip_stock t JOIN trips p ON p.id = t.trip_id
                WHERE p.status IN ('created', 'departed')
                UNION ALL
                SELECT package_label, quantity_picos FROM delivery_held_stock)
            GROUP BY package_label
            """) {
            off[row["package_label"], default: 0] += row["held"] as Int64
        }
        return off
    }

    // MARK: - Steps taken behind Till's back

    /// Freezes a delivery or trip that Metrc shows changed by someone else: its owed writes are refused here
    /// (nothing more is sent), a manager alert is raised, and new steps are refused.
    ///
    /// - Parameter whileStatus: freezes only while the subject still stands so (a step Till journals meanwhile
    ///   is its own, not one taken behind its back). Returns whether it froze it.
    @discardableResult
    public func freeze(_ subject: JournalSubject, reason: String, whileStatus statuses: [String], at: Date) throws -> Bool {
        try pool.write { db in
            let table = subject.type == "delivery" ? "deliveries" : "trips"
            try db.run("""
                UPDATE \(table) SET frozen_reason = ? WHERE id = ? AND frozen_reason IS NULL
                AND status IN (\(databaseQuestionMarks(count: statuses.count)))
                """, StatementArguments([reason, subject.id] as [any DatabaseValueConvertible] + statuses))
            guard db.changesCount == 1 else { return false }
            let refusal = String(decoding: try JSONEncoder().encode(["not sent: \(reason)"]), as: UTF8.self)
            try db.run("""
                UPDATE metrc_journal SET state = 'refused', refusal_json = ?, refused_at = ?, in_doubt = 0,
                    last_error = 'frozen: ' || ?
                WHERE subject_type = ? AND subject_id = ? AND state = 'pending'
                """, [refusal, at.epochMilliseconds, reason, subject.type, subject.id])
            try db.run("""
                INSERT INTO delivery_alerts (subject_type, subject_id, message, raised_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (subject_type, subject_id) DO NOTHING
                """, [subject.type, subject.id, reason, at.epochMilliseconds])
            try Self.appendAudit(AuditEvent(actor: "delivery-sweep", action: "\(subject.type).frozen", subject: "\(subject)",
                                            detail: reason), at: at, db)
            return true
        }
    }

    /// Deliveries and trips frozen because Metrc showed a step Till did not take.
    public func deliveryAlerts() throws -> [(subject: JournalSubject, message: String, raisedAt: Date)] {
        try pool.read { db in
            try db.rows("SELECT * FROM delivery_alerts ORDER BY raised_at").compactMap { row in
                JournalSubject(type: row["subject_type"], id: row["subject_id"]).map {
                    ($0, row["message"] as String, Date(epochMilliseconds: row["raised_at"]))
                }
            }
        }
    }

    /// Deliveries and trips a sweep watches: those Metrc has (an Id) and Till has not finished nor frozen.
    public func unfinishedInMetrc() throws -> (deliveries: [(id: Int64, metrcId: Int64)], trips: [(id: Int64, metrcId: Int64, status: TripStatus)]) {
        try pool.read { db in
            let deliveries = try db.rows("""
                SELECT id, metrc_delivery_id FROM deliveries
                WHERE status = 'open' AND frozen_reason IS NULL AND metrc_delivery_id IS NOT NULL
                """).map { (id: $0["id"] as Int64, metrcId: $0["metrc_delivery_id"] as Int64) }
            let trips = try db.rows("""
                SELECT id, metrc_trip_id, status FROM trips
                WHERE status IN ('created', 'departed') AND frozen_reason IS NULL AND metrc_trip_id IS NOT NULL
                """).map { (id: $0["id"] as Int64, metrcId: $0["metrc_trip_id"] as Int64,
                            status: TripStatus(rawValue: $0["status"]) ?? .created) }
            return (deliveries, trips)
        }
    }

    /// Kinds of the subject's writes journaled so far (done or owed).
    public func journaledSteps(_ subject: JournalSubject) throws -> [String] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT step FROM delivery_steps WHERE subject_type = ? AND subject_id = ? ORDER BY id",
                                arguments: [subject.type, subject.id])
        }
    }

    /// Deliveries and trips of a business day not finished: they block its close.
    public func openDeliveriesAndTrips(businessDate: String) throws -> [(subject: JournalSubject, status: String)] {
        try pool.read { db in
            try db.rows("""
                SELECT 'delivery' AS type, id, status FROM deliveries WHERE business_date_local = ?1 AND status = 'open'
                UNION ALL
                SELECT 'trip', id, status FROM trips WHERE business_date_local = ?1 AND status IN ('created', 'departed')
                """, [businessDate]).compactMap { row in
                JournalSubject(type: row["type"], id: row["id"]).map { ($0, row["status"] as String) }
            }
        }
    }
}
