import Foundation
import MetrcKit
import TillStore

extension ReceiptReporter {
    /// Check-ins due, by the same rules as receipts. One that may already be in Metrc is looked for in
    /// that day's list (same patient and location) before it is posted again.
    func drainCheckIns() async -> Int {
        let due: [PendingCheckIn]
        do {
            due = try store.dueCheckIns(now: now(), limit: settings.batchSize * 5)
            guard !due.isEmpty else { return 0 }
            try store.leaseCheckIns(ids: due.map(\.checkIn.id), until: now().addingTimeInterval(settings.lease.seconds), now: now())
        } catch {
            logger.error("outbox unreadable", metadata: ["error": "\(error)"])
            return 0
        }
        await drain(due.map { ($0, $0.needsLookup) }, OutboxKind<PendingCheckIn>(
            lookUp: { [metrc] (item: PendingCheckIn) async throws(MetrcError) -> Int64? in
                try await metrc.patientCheckIns(on: item.checkIn.checkInDate).first {
                    $0.patientLicenseNumber == item.checkIn.patientLicenseNumber
                        && $0.checkInLocationId == item.checkIn.checkInLocationId
                }?.id
            },
            send: { [metrc] (items: [PendingCheckIn]) async throws(MetrcError) -> [Int64] in
                try await metrc.postPatientCheckIns(items.map { item in
                    MetrcPatientCheckInDraft(patientLicenseNumber: item.checkIn.patientLicenseNumber,
                                             checkInLocationId: item.checkIn.checkInLocationId,
                                             registrationStartDate: item.checkIn.registrationStartDate,
                                             registrationExpiryDate: item.checkIn.registrationExpiryDate,
                                             checkInDate: item.checkIn.checkInDate)
                })
            },
            reported: { items, found in
                await self.recordCheckIns(items.map { ($0.0.checkIn.id, $0.1) },
                                          action: found ? "metrc.checkin.found" : "metrc.checkins.posted")
            },
            rejected: { item, rows in
                let messages = rows.map(\.message)
                try? self.store.recordCheckInRejected(
                    id: item.checkIn.id, messages: messages, at: self.now(),
                    audit: AuditEvent(actor: "reporter", action: "metrc.checkin.rejected", license: self.metrc.licenseNumber,
                                      metrcEndpoint: "POST /patient-checkins/v2/", subject: item.checkIn.patientLicenseNumber,
                                      detail: messages.joined(separator: "; ")))
            },
            failed: { items, error, uncertain in
                await self.recordCheckInFailure(items, error: error, hadUncertainAttempt: uncertain)
            }))
        return due.count
    }

    private func recordCheckIns(_ reported: [(Int64, Int64)], action: String) async {
        let at = now()
        await health.succeeded(at: at)
        do {
            try store.recordCheckInsReported(reported.map { (id: $0.0, metrcId: $0.1) }, at: at,
                                             audit: AuditEvent(actor: "reporter", action: action, license: metrc.licenseNumber,
                                                               metrcEndpoint: "POST /patient-checkins/v2/",
                                                               subject: reported.map { "\($0.0)" }.joined(separator: ",")))
        } catch {
            logger.error("could not record reported check-ins; they will be looked up again", metadata: ["error": "\(error)"])
        }
    }

    private func recordCheckInFailure(_ items: [PendingCheckIn], error: MetrcError, hadUncertainAttempt: Bool) async {
        let at = now()
        let next = await retryPlan(after: error, attempts: items.map(\.attempts).max() ?? 1, at: at)
        logger.warning("check-in report failed; will retry", metadata: ["error": "\(error.summary)", "retryAt": "\(next)"])
        try? store.recordCheckInFailure(ids: items.map(\.checkIn.id), message: error.summary,
                                        needsLookup: hadUncertainAttempt || error.mayHaveBeenApplied, nextAttemptAt: next, at: at)
    }
}
