import Foundation
import GRDB
import TillDomain

/// A patient check-in owed to (or recorded in) Metrc.
public struct PatientCheckInRecord: Sendable, Hashable {
    public var id: Int64
    public var clientCheckInId: String?
    public var patientLicenseNumber: String
    public var checkInLocationId: Int64
    public var checkInDate: String
    public var registrationStartDate: String?
    public var registrationExpiryDate: String?
    public var status: SaleStatus
    public var metrcCheckInId: Int64?
    public var reportedAt: Date?
    public var rejection: [String]?
}

/// A check-in still owed to Metrc.
public struct PendingCheckIn: Sendable {
    public var checkIn: PatientCheckInRecord
    public var attempts: Int
    public var needsLookup: Bool
}

extension TillStore {
    /// Metrc Ids already recorded for check-ins on these days.
    public func metrcCheckInIds(on dates: Set<String>) throws -> Set<Int64> {
        guard !dates.isEmpty else { return [] }
        return try pool.read { db in
            Set(try Int64.fetchAll(db, sql: """
                SELECT metrc_checkin_id FROM patient_checkins
                WHERE metrc_checkin_id IS NOT NULL AND checkin_date_local IN (\(databaseQuestionMarks(count: dates.count)))
                """, arguments: StatementArguments(Array(dates))))
        }
    }

    /// Journals a check-in and its outbox row in one transaction; the same `clientCheckInId` returns the first one.
    ///
    /// - Parameters:
    ///   - checkInDate: as the client sent it; nil means `today`, and a retry that sends none matches the
    ///     first whatever day it now is (a retry after the facility's midnight is still a retry).
    public func recordCheckIn(clientCheckInId: String?, patientLicenseNumber: String, locationId: Int64, checkInDate: String?,
                              today: String, registrationStartDate: String?, registrationExpiryDate: String?,
                              terminalId: Int64?, actor: String, license: String, at: Date) throws -> PatientCheckInRecord {
        try pool.write { db in
            if let clientCheckInId,
               let row = try db.row("SELECT * FROM patient_checkins WHERE client_checkin_id = ?", [clientCheckInId]) {
                let existing = Self.checkIn(from: row)
                guard existing.patientLicenseNumber == patientLicenseNumber, existing.checkInLocationId == locationId,
                      checkInDate == nil || existing.checkInDate == checkInDate else {
                    throw TillError(.conflict, code: "client_checkin_id_reused",
                                    "clientCheckInId \(clientCheckInId) was already used for a different check-in.",
                                    details: ["checkInId": "\(existing.id)"])
                }
                return existing
            }
            let checkInDate = checkInDate ?? today
            try db.run("""
                INSERT INTO patient_checkins (client_checkin_id, patient_license_number, checkin_location_id, checkin_date_local,
                                              registration_start_date, registration_expiry_date, terminal_id, created_at, status)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending_report')
                """, [clientCheckInId, patientLicenseNumber, locationId, checkInDate, registrationStartDate,
                                 registrationExpiryDate, terminalId, at.epochMilliseconds])
            let id = db.lastInsertedRowID
            try db.run("""
                INSERT INTO outbox (kind, checkin_id, created_at, next_attempt_at) VALUES ('checkin', ?, ?, ?)
                """, [id, at.epochMilliseconds, at.epochMilliseconds])
            try Self.appendAudit(AuditEvent(actor: actor, terminalId: terminalId, action: "patient.checkin.journaled",
                                            license: license, subject: patientLicenseNumber,
                                            detail: "location \(locationId) on \(checkInDate)"), at: at, db)
            return try Self.checkIn(id: id, db)!
        }
    }

    public func checkIn(id: Int64) throws -> PatientCheckInRecord? {
        try pool.read { db in try Self.checkIn(id: id, db) }
    }

    public func dueCheckIns(now: Date, limit: Int) throws -> [PendingCheckIn] {
        try pool.read { db in
            try db.rows("""
                SELECT c.*, o.attempts AS outbox_attempts, o.needs_lookup AS outbox_needs_lookup
                FROM outbox o JOIN patient_checkins c ON c.id = o.checkin_id
                WHERE o.kind = 'checkin' AND o.next_attempt_at <= ? ORDER BY c.id LIMIT ?
                """, [now.epochMilliseconds, limit]).map { row in
                PendingCheckIn(checkIn: Self.checkIn(from: row), attempts: row["outbox_attempts"],
                               needsLookup: row["outbox_needs_lookup"])
            }
        }
    }

    public func leaseCheckIns(ids: [Int64], until: Date, now: Date) throws {
        try lease(.checkIn, ids: ids, until: until, now: now)
    }

    public func recordCheckInFailure(ids: [Int64], message: String, needsLookup: Bool, nextAttemptAt: Date, at: Date) throws {
        try recordFailure(.checkIn, ids: ids, message: message, needsLookup: needsLookup, nextAttemptAt: nextAttemptAt, at: at)
    }

    public func recordCheckInsReported(_ reported: [(id: Int64, metrcId: Int64)], at: Date, audit: AuditEvent) throws {
        guard !reported.isEmpty else { return }
        try pool.write { db in
            for item in reported {
                try db.run("""
                    UPDATE patient_checkins SET status = 'reported', metrc_checkin_id = ?, reported_at = ? WHERE id = ?
                    """, [item.metrcId, at.epochMilliseconds, item.id])
                try db.run("DELETE FROM outbox WHERE checkin_id = ?", [item.id])
            }
            try Self.appendAudit(audit, at: at, db)
        }
    }

    public func recordCheckInRejected(id: Int64, messages: [String], at: Date, audit: AuditEvent) throws {
        let json = String(decoding: try JSONEncoder().encode(messages), as: UTF8.self)
        try pool.write { db in
            try db.run("UPDATE patient_checkins SET status = 'rejected', rejection_json = ? WHERE id = ?", [json, id])
            try db.run("DELETE FROM outbox WHERE checkin_id = ?", [id])
            try Self.appendAudit(audit, at: at, db)
        }
    }

    static func checkIn(id: Int64, _ db: Database) throws -> PatientCheckInRecord? {
        try db.row("SELECT * FROM patient_checkins WHERE id = ?", [id]).map(checkIn(from:))
    }

    static func checkIn(from row: Row) -> PatientCheckInRecord {
        PatientCheckInRecord(
            id: row["id"], clientCheckInId: row["client_checkin_id"], patientLicenseNumber: row["patient_license_number"],
            checkInLocationId: row["checkin_location_id"], checkInDate: row["checkin_date_local"],
            registrationStartDate: row["registration_start_date"], registrationExpiryDate: row["registration_expiry_date"],
            status: SaleStatus(rawValue: row["status"]) ?? .pendingReport, metrcCheckInId: row["metrc_checkin_id"],
            reportedAt: (row["reported_at"] as Int64?).map(Date.init(epochMilliseconds:)),
            rejection: (row["rejection_json"] as String?).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) })
    }
}
