import Foundation
import Logging
import MetrcKit
import Metrics
import TillDomain
import TillPatients
import TillStore

/// What a register is told about its sale.
public enum SaleOutcome: Sendable {
    /// Metrc holds the receipt.
    case reported(Sale)
    /// Journaled; Metrc has not confirmed it yet and the reporter will, by itself.
    case pendingReport(Sale)
    /// Metrc refused the receipt at the register; the sale was undone (quantities restored).
    case rejected(Sale)

    public var sale: Sale {
        switch self {
        case .reported(let sale), .pendingReport(let sale), .rejected(let sale): sale
        }
    }
}

/// The unit of work for a sale: validate, journal in one transaction, report to Metrc within the deadline.
public final class SaleDesk: Sendable {
    private let store: TillStore
    private let reporter: MetrcReporter
    private let patients: PatientDirectory
    private let license: String
    private let timeZone: TimeZone
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let metrics = SaleMetrics()

    public init(store: TillStore, reporter: MetrcReporter, patients: PatientDirectory, license: String,
                timeZone: TimeZone, logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.reporter = reporter
        self.patients = patients
        self.license = license
        self.timeZone = timeZone
        self.logger = logger
        self.now = now
    }

    /// Records and reports one sale. Idempotent on `clientSaleId`: a retry returns the original outcome.
    ///
    /// - Parameter requestDigest: digest of the register's request body; a reused clientSaleId with a
    ///   different body is a conflict, not a replay.
    public func sell(_ request: SaleRequest, requestDigest: String, terminal: Terminal?) async throws(TillError) -> SaleOutcome {
        let started = ContinuousClock.now
        try SaleRules.checkShape(request)
        // Asked now, held against the sale only after the journal's replay check: a register's retry of a
        // recorded sale hears that sale, whatever changed since.
        let refusal = patients.facilityRefusal(for: request.customerType)
        let rules: @Sendable ([String: PackageSnapshot]) throws(TillError) -> [ValidatedLine] = { packages throws(TillError) in
            if let refusal { throw refusal }
            return try SaleRules.validate(request, packages: packages)
        }
        let actor = terminal.map { "terminal:\($0.name)" } ?? "unknown"

        let result: JournalResult
        switch request.customerType {
        case .patient, .caregiver:
            // A retry is answered before Metrc is asked about the patient again.
            await store.caughtUp()  // a retry hears what its register heard, Metrc's answer included
            if let existing = try load({ try store.replayed(clientSaleId: request.clientSaleId, digest: requestDigest) }) {
                metrics.replayed.increment()
                return Self.outcome(existing)
            }
            if let refusal { throw refusal }
            // Verified against Metrc, counted against the allowance and journaled while no other sale for
            // this patient can do the same; reporting to Metrc happens after, outside the lock.
            result = try await patients.serializingPatient(request.patientLicenseNumber ?? "") { () async throws(TillError) -> JournalResult in
                let clearance = try await patients.clear(request, actor: actor, terminalId: terminal?.id)
                let packages = try load { try store.packages(labels: request.lines.map(\.packageLabel)) }
                try patients.checkAllowance(try SaleRules.validate(request, packages: packages), packages: packages,
                                            clearance: clearance)
                let note = clearance.stale
                    ? "sold on a stale patient status (\(Int(now().timeIntervalSince(clearance.patient.fetchedAt))) s old)" : nil
                return try await journal(request, rules: rules, digest: requestDigest, terminal: terminal, actor: actor, note: note)
            }
        case .consumer, .nonResidentConsumer, .externalPatient:
            result = try await journal(request, rules: rules, digest: requestDigest, terminal: terminal, actor: actor, note: nil)
        }
        switch result {
        case .replay(let existing):
            metrics.replayed.increment()
            return Self.outcome(existing)
        case .recorded(let sale, let row):
            logger.debug("sale journaled", metadata: ["sale": "\(sale.id)", "receipt": "\(sale.receiptNumber)"])
            let outcome = await reportWithinDeadline(sale, row: row)
            metrics.count(outcome, since: started)
            return outcome
        }
    }

    private func journal(_ request: SaleRequest, rules: @escaping @Sendable ([String: PackageSnapshot]) throws(TillError) -> [ValidatedLine],
                         digest: String, terminal: Terminal?, actor: String, note: String?) async throws(TillError) -> JournalResult {
        let soldAt = now()
        let entry = JournalEntry(
            request: request, requestDigest: digest, validate: rules, terminalId: terminal?.id, actor: actor,
            license: license, soldAt: soldAt, salesDateTimeLocal: MetrcLocalTime.format(soldAt, in: timeZone),
            businessDate: FacilityDate.string(of: soldAt, in: timeZone),
            firstAttemptLease: soldAt.addingTimeInterval(reporter.leaseDuration.seconds),
            receiptBody: MetrcBodies.receipt, note: note)
        do {
            return try await store.journal(entry)
        } catch {
            throw storeFailure(error)
        }
    }

    /// Waits for the first report attempt up to the deadline; past it the attempt goes on unobserved
    /// and the register hears `pending_report`.
    private func reportWithinDeadline(_ sale: Sale, row: JournalRow) async -> SaleOutcome {
        if let finished = await reporter.reportFresh(sale, row: row) { return Self.outcome(finished) }
        logger.info("Metrc slower than the deadline; sale pending report", metadata: ["sale": "\(sale.id)"])
        // A refusal landing after this point is kept as an exception, not undone: the sale stands.
        await store.caughtUp()
        let current = (try? store.sale(id: sale.id)) ?? sale
        return current.status == .reported ? .reported(current) : .pendingReport(sale)
    }

    private static func outcome(_ sale: Sale) -> SaleOutcome {
        switch sale.status {
        case .reported: .reported(sale)
        case .pendingReport: .pendingReport(sale)
        // Returned in full before it left for Metrc: the register first heard it pending; its retry hears that,
        // with the sale as it is now.
        case .voided: .pendingReport(sale)
        // A refusal that came after the register was told `pending_report` leaves the sale standing:
        // a retry hears what it heard first, with the sale as it is now.
        case .rejected: sale.saleUndone ? .rejected(sale) : .pendingReport(sale)
        }
    }

    private func load<T>(_ body: () throws -> T) throws(TillError) -> T {
        do {
            return try body()
        } catch {
            throw storeFailure(error)
        }
    }

    /// `till_sales_total` by outcome, and `till_sale_duration_seconds`: from the desk's first look at a new sale to
    /// its answer. Made once; a sale only adds to atomics.
    private struct SaleMetrics {
        let reported = Counter(label: "till_sales_total", dimensions: [("outcome", "reported")])
        let pendingReport = Counter(label: "till_sales_total", dimensions: [("outcome", "pending_report")])
        let rejected = Counter(label: "till_sales_total", dimensions: [("outcome", "rejected")])
        /// A register's retry of a recorded sale, answered as it was first: no new sale.
        let replayed = Counter(label: "till_sales_total", dimensions: [("outcome", "replayed")])
        let duration = Timer(label: "till_sale_duration_seconds")

        func count(_ outcome: SaleOutcome, since started: ContinuousClock.Instant) {
            duration.record(duration: started.duration(to: .now))
            switch outcome {
            case .reported: reported.increment()
            case .pendingReport: pendingReport.increment()
            case .rejected: rejected.increment()
            }
        }
    }

    private func storeFailure(_ error: any Error) -> TillError {
        if !(error is TillError) { logger.error("store failure", metadata: ["error": "\(error)"]) }
        return .fromStore(error)
    }
}
