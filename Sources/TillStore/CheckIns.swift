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

    /// Journals a check-in and its Metrc write in one transaction; the same `clientCheckInId` returns the first one.
    ///
    /// - Parameters:
    ///   - checkInDate: as the client sent it; nil means `today`, and a retry that sends none matches the
    ///     first whatever day it now is (a retry after the facility's midnight is still a retry).
    ///   - metrcBody: the JSON object Metrc gets for the check-in (`POST /patient-checkins/v2/`).
    public func recordCheckIn(clientCheckInId: String?, patientLicenseNumber: String, locationId: Int64, checkInDate: String?,
                              today: String, registrationStartDate: String?, registrationExpiryDate: String?,
                              terminalId: Int64?, actor: String, license: String, at: Date,
                              metrcBody: (PatientCheckInRecord) -> String) throws -> PatientCheckInRecord {
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
            let checkIn = try Self.checkIn(id: id, db)!
            try Self.appendJournal(.checkInCreate, subject: .checkIn(id), body: metrcBody(checkIn), at: at, db)
            try Self.appendAudit(AuditEvent(actor: actor, terminalId: terminalId, action: "patient.checkin.journaled",
                                            license: license, subject: patientLicenseNumber,
                                            detail: "location \(locationId) on \(checkInDate)"), at: at, db)
            return checkIn
        }
    }

    public func checkIn(id: Int64) throws -> PatientCheckInRecord? {
        try pool.read { db in try Self.checkIn(id: id, db) }
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
