import Foundation
import MetrcKit
import TillStore

extension ReceiptReporter {
    /// Check-ins due: the same rules as receipts. A check-in that may already be in Metrc is looked
    /// for in that day's list (same patient and location) before it is posted again.
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
        var toPost: [PendingCheckIn] = []
        for item in due {
            guard item.needsLookup else {
                toPost.append(item)
                continue
            }
            do {
                let listed = try await metrc.patientCheckIns(on: item.checkIn.checkInDate)
                if let found = listed.first(where: {
                    $0.patientLicenseNumber == item.checkIn.patientLicenseNumber && $0.checkInLocationId == item.checkIn.checkInLocationId
                }) {
                    await recordCheckIns([(item.checkIn.id, found.id)], action: "metrc.checkin.found")
                } else {
                    toPost.append(item)
                }
            } catch {
                await recordCheckInFailure([item], error: error, hadUncertainAttempt: true)
            }
        }
        var index = 0
        while index < toPost.count {
            let batch = Array(toPost[index..<min(index + settings.batchSize, toPost.count)])
            index += batch.count
            await post(batch)
        }
        return due.count
    }

    private func post(_ batch: [PendingCheckIn]) async {
        guard !batch.isEmpty else { return }
        let drafts = batch.map { item in
            MetrcPatientCheckInDraft(patientLicenseNumber: item.checkIn.patientLicenseNumber,
                                     checkInLocationId: item.checkIn.checkInLocationId,
                                     registrationStartDate: item.checkIn.registrationStartDate,
                                     registrationExpiryDate: item.checkIn.registrationExpiryDate,
                                     checkInDate: item.checkIn.checkInDate)
        }
        do {
            let ids = try await metrc.postPatientCheckIns(drafts)
            if ids.count == batch.count {
                await recordCheckIns(zip(batch, ids).map { ($0.0.checkIn.id, $0.1) }, action: "metrc.checkins.posted")
            } else {
                await recordCheckInFailure(batch, error: .invalidResponse("\(ids.count) Ids for \(batch.count) check-ins"),
                                           hadUncertainAttempt: true)
            }
        } catch {
            guard case .rejected(let rows) = error else {
                await recordCheckInFailure(batch, error: error, hadUncertainAttempt: false)
                return
            }
            let badRows = Set(rows.compactMap(\.row).filter { batch.indices.contains($0) })
            if batch.count == 1 || !badRows.isEmpty {
                let refused = batch.count == 1 ? [0] : badRows.sorted()
                for row in refused {
                    let messages = rows.filter { $0.row == row || batch.count == 1 }.map(\.message)
                    try? store.recordCheckInRejected(
                        id: batch[row].checkIn.id, messages: messages, at: now(),
                        audit: AuditEvent(actor: "reporter", action: "metrc.checkin.rejected", license: metrc.licenseNumber,
                                          metrcEndpoint: "POST /patient-checkins/v2/", subject: batch[row].checkIn.patientLicenseNumber,
                                          detail: messages.joined(separator: "; ")))
                }
                await post(batch.enumerated().filter { !refused.contains($0.offset) }.map(\.element))
            } else {
                let middle = batch.count / 2
                await post(Array(batch[..<middle]))
                await post(Array(batch[middle...]))
            }
        }
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
