import Foundation
import MetrcKit
import TillDomain
import TillStore

extension ReceiptReporter {
    /// Check-ins due, by the same rules as receipts. One that may already be in Metrc is looked for in
    /// that day's list (same patient and location, and not one Till already holds for another check-in)
    /// before it is posted again.
    func drainCheckIns() async -> Int {
        let due: [PendingCheckIn]
        let days: CheckInDays
        do {
            due = try store.dueCheckIns(now: now(), limit: settings.batchSize * 5)
            guard !due.isEmpty else { return 0 }
            try store.leaseCheckIns(ids: due.map(\.checkIn.id), until: now().addingTimeInterval(settings.lease.seconds), now: now())
            let dates = Set(due.filter(\.needsLookup).map(\.checkIn.checkInDate))
            days = CheckInDays(metrc: metrc, held: try store.metrcCheckInIds(on: dates))
        } catch {
            logger.error("outbox unreadable", metadata: ["error": "\(error)"])
            return 0
        }
        await drain(due.map { ($0, $0.needsLookup) }, OutboxKind<PendingCheckIn>(
            lookUp: { (item: PendingCheckIn) async throws(MetrcError) -> Int64? in try await days.find(item.checkIn) },
            send: { [metrc] (items: [PendingCheckIn]) async throws(MetrcError) -> [Int64] in
                try await metrc.postPatientCheckIns(items.map { item in
                    MetrcPatientCheckInDraft(patientLicenseNumber: item.checkIn.patientLicenseNumber,
                                             checkInLocationId: item.checkIn.checkInLocationId,
                                             registrationStartDate: item.checkIn.registrationStartDate,
                                             registrationExpiryDate: item.checkIn.registrationExpiryDate,
                                             checkInDate: item.checkIn.checkInDate)
                })
            },
            reported: { items, found in await self.recordCheckIns(items.map { ($0.0.checkIn.id, $0.1) }, found: found) },
            rejected: { item, rows in await self.recordCheckInRejection(item.checkIn, rows: rows) },
            failed: { items, error, uncertain in
                await self.recordCheckInFailure(items, error: error, hadUncertainAttempt: uncertain)
            }))
        return due.count
    }

    private func recordCheckIns(_ reported: [(Int64, Int64)], found: Bool) async {
        let at = now()
        metrcAnswered(at: at)
        do {
            try store.recordCheckInsReported(reported.map { (id: $0.0, metrcId: $0.1) }, at: at,
                                             audit: AuditEvent(actor: "reporter",
                                                               action: found ? "metrc.checkin.found" : "metrc.checkins.posted",
                                                               license: metrc.licenseNumber,
                                                               metrcEndpoint: found ? "GET /patient-checkins/v2" : "POST /patient-checkins/v2/",
                                                               subject: reported.map { "\($0.0)" }.joined(separator: ",")))
        } catch {
            logger.error("could not record reported check-ins; they will be looked up again", metadata: ["error": "\(error)"])
        }
    }

    private func recordCheckInRejection(_ checkIn: PatientCheckInRecord, rows: [MetrcRowError]) async {
        let at = now()
        metrcAnswered(at: at)  // it just said no
        let messages = rows.map(\.message)
        logger.warning("Metrc refused a check-in", metadata: ["checkIn": "\(checkIn.id)", "reason": "\(messages.joined(separator: "; "))"])
        do {
            try store.recordCheckInRejected(
                id: checkIn.id, messages: messages, at: at,
                audit: AuditEvent(actor: "reporter", action: "metrc.checkin.rejected", license: metrc.licenseNumber,
                                  metrcEndpoint: "POST /patient-checkins/v2/", subject: checkIn.patientLicenseNumber,
                                  detail: messages.joined(separator: "; ")))
        } catch {
            logger.error("could not record a refused check-in", metadata: ["checkIn": "\(checkIn.id)", "error": "\(error)"])
        }
    }

    private func recordCheckInFailure(_ items: [PendingCheckIn], error: MetrcError, hadUncertainAttempt: Bool) async {
        let at = now()
        let next = await retryPlan(after: error, attempts: items.map(\.attempts).max() ?? 1, at: at)
        logger.warning("check-in report failed; will retry", metadata: ["error": "\(error.summary)", "retryAt": "\(next)"])
        do {
            try store.recordCheckInFailure(ids: items.map(\.checkIn.id), message: error.summary,
                                           needsLookup: hadUncertainAttempt || error.mayHaveBeenApplied, nextAttemptAt: next, at: at)
        } catch {
            logger.error("could not record a failed check-in attempt; its lease will", metadata: ["error": "\(error)"])
        }
    }
}

/// Metrc's check-ins of the days a drain pass looks in: each day listed once, and each Metrc check-in
/// matched to one local check-in at most (a patient may check in twice a day at the same place).
private final class CheckInDays {
    private let metrc: any MetrcAPI
    private var lists: [String: [MetrcPatientCheckIn]] = [:]
    /// Metrc Ids already recorded for a local check-in, or matched during this pass.
    private var held: Set<Int64>

    init(metrc: any MetrcAPI, held: Set<Int64>) {
        self.metrc = metrc
        self.held = held
    }

    func find(_ checkIn: PatientCheckInRecord) async throws(MetrcError) -> Int64? {
        let list: [MetrcPatientCheckIn]
        if let known = lists[checkIn.checkInDate] {
            list = known
        } else {
            list = try await metrc.patientCheckIns(on: checkIn.checkInDate)
            lists[checkIn.checkInDate] = list
        }
        let found = list.first {
            !held.contains($0.id) && $0.patientLicenseNumber.map { LicenseNumber.same($0, checkIn.patientLicenseNumber) } == true
                && $0.checkInLocationId == checkIn.checkInLocationId
        }?.id
        if let found { held.insert(found) }
        return found
    }
}

