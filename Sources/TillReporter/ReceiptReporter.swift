import Foundation
import Logging
import MetrcKit
import Metrics
import ServiceLifecycle
import Synchronization
import TillDomain
import TillStore

/// Tunables of the reporter.
public struct ReporterSettings: Sendable {
    /// How long a register waits for Metrc before it is told `pending_report`.
    public var deadline: Duration
    /// Receipts per POST when a backlog is drained (Metrc's object limit).
    public var batchSize: Int
    /// How long an attempt holds its outbox rows; longer than any Metrc request can take.
    public var lease: Duration
    public var retry: RetryPolicy
    /// The longest the drain loop sleeps when nothing is due.
    public var idlePoll: Duration
    /// POSTs of fresh sales in flight at once; sales journaled meanwhile share the next one.
    public var freshPostsInFlight: Int

    public init(deadline: Duration = .milliseconds(2000), batchSize: Int = 10, lease: Duration = .seconds(60),
                retry: RetryPolicy = RetryPolicy(), idlePoll: Duration = .seconds(1), freshPostsInFlight: Int = 2) {
        self.freshPostsInFlight = freshPostsInFlight
        self.deadline = deadline
        self.batchSize = batchSize
        self.lease = lease
        self.retry = retry
        self.idlePoll = idlePoll
    }
}

/// Owns the outbox: reports each sale to Metrc exactly once, now or later.
///
/// Exactly once rests on three rules: a row is leased before it is sent (so two attempts never
/// overlap); a row that may have reached Metrc is looked up by its external receipt number before it
/// is posted again; and the outcome is recorded in the same transaction that clears the row.
public final class ReceiptReporter: Service, Sendable {
    let store: TillStore
    let metrc: any MetrcAPI
    let health: MetrcHealth
    let settings: ReporterSettings
    let logger: Logger
    let now: @Sendable () -> Date
    private let wakeSignal = WakeSignal()
    /// Set when Metrc answers again after failures: the drain then brings every row waiting out a retry delay
    /// forward, so that a backlog goes in full POSTs now rather than one by one as each row's backoff ends.
    private let metrcCameBack = Atomic<Bool>(false)
    private let fresh: FreshReceipts

    private let reported = Counter(label: "till_receipts_reported_total")
    private let retries = Counter(label: "till_receipt_report_failures_total")
    private let rejectedCount = Counter(label: "till_receipts_rejected_total")
    private let postTimer = Timer(label: "till_metrc_receipt_post_seconds")

    public init(store: TillStore, metrc: any MetrcAPI, health: MetrcHealth, settings: ReporterSettings,
                logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.metrc = metrc
        self.health = health
        self.settings = settings
        self.logger = logger
        self.now = now
        fresh = FreshReceipts(deadline: settings.deadline, batchSize: settings.batchSize,
                              postsInFlight: settings.freshPostsInFlight)
    }

    public var deadline: Duration { settings.deadline }
    public var leaseDuration: Duration { settings.lease }

    // MARK: - The first attempt, made while the register waits

    /// Reports a freshly journaled sale (its outbox row is already leased to this attempt) and waits for
    /// the outcome up to the deadline. Sales journaled at the same moment may share one POST.
    ///
    /// - Returns: the sale as Metrc's answer left it (reported, or refused and undone), or as it stands
    ///   when the attempt failed; nil when the deadline came first (the attempt goes on unobserved).
    public func reportFresh(_ sale: Sale) async -> Sale? {
        await fresh.report(sale, post: { batch in await self.postFresh(batch) }, handOver: { sales in
            self.handOver(sales)
        })
    }

    private func postFresh(_ batch: [(Sale, RegisterWait)]) async {
        let waits = Dictionary(uniqueKeysWithValues: batch.map { ($0.0.id, $0.1) })
        await drain(batch.map { (item: $0.0, needsLookup: false) }, OutboxKind<Sale>(
            lookUp: { _ in nil },  // never asked: nothing fresh needs a lookup
            send: { (sales: [Sale]) async throws(MetrcError) -> [Int64] in try await self.post(sales) },
            reported: { receipts, _ in
                // The registers hear "reported" as soon as the write is handed in, not after its commit: a
                // read or a retry after their answer sees it, and should it never commit, the outbox row
                // (leased, marked for lookup) has the reporter find the same receipt in Metrc.
                await self.recordReported(receipts) { at in
                    for (sale, id) in receipts {
                        var reported = sale
                        reported.status = .reported
                        reported.metrcReceiptId = id
                        reported.reportedAt = at
                        waits[sale.id]?.answer(reported)
                    }
                }
            },
            rejected: { sale, rows in
                // Undo the sale only if its register has not already been told it stands.
                await self.recordRejection(sale, rows: rows, restoreStock: waits[sale.id]?.claim() ?? false)
                waits[sale.id]?.answer((try? self.store.sale(id: sale.id)) ?? sale)
            },
            failed: { sales, error, uncertain in
                await self.recordFailures(sales, error: error, hadUncertainAttempt: uncertain)
                for sale in sales { waits[sale.id]?.answer(sale) }
            }))
    }

    /// One timed `POST /sales/v2/receipts`; Metrc's Ids in posted order.
    private func post(_ sales: [Sale]) async throws(MetrcError) -> [Int64] {
        let started = DispatchTime.now()
        defer { postTimer.recordInterval(since: started) }
        return try await metrc.postReceipts(sales.map(MetrcReceiptDraft.init(sale:)))
    }

    /// Fresh sales that waited past their deadline without being sent: the drain takes them now.
    private func handOver(_ sales: [Sale]) {
        do {
            try store.recordFailure(saleIds: sales.map(\.id), message: "not sent within the register's deadline",
                                    needsLookup: false, nextAttemptAt: now(), at: now())
        } catch {
            logger.error("could not hand fresh sales to the drain; their leases will", metadata: ["error": "\(error)"])
        }
        wake()
    }

    // MARK: - The background drain

    public func run() async throws {
        try store.releaseLeases(now: now())
        logger.info("reporter started")
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let handled = await self.drainOnce()
                if handled > 0 { continue }
                await self.waitForWork()
            }
        }
        logger.info("reporter stopped")
    }

    /// Nudges the drain loop (e.g. after a first attempt failed).
    public func wake() { wakeSignal.wake() }

    private func waitForWork() async {
        let pause: Duration = if let due = try? store.nextReportDue() {
            min(settings.idlePoll, max(.milliseconds(Int64(max(0, due.timeIntervalSince(now())) * 1000)), .milliseconds(5)))
        } else {
            settings.idlePoll
        }
        await wakeSignal.wait(upTo: pause)
    }

    /// One pass over what is due, receipts then check-ins. Returns rows handled.
    @discardableResult
    public func drainOnce() async -> Int {
        if metrcCameBack.exchange(false, ordering: .relaxed) {
            do {
                let brought = try store.bringRetriesForward(now: now())
                if brought > 0 { logger.info("Metrc answers again: retrying what waited now", metadata: ["rows": "\(brought)"]) }
            } catch {
                logger.error("could not bring retries forward; they keep their delays", metadata: ["error": "\(error)"])
            }
        }
        return await drainReceipts() + drainCheckIns()
    }

    /// Notes that Metrc answered (a refusal is an answer too): if that ends a run of failures, the next drain
    /// pass retries everything waiting. Every answer goes through here, so `health` is told in one place.
    func metrcAnswered(at: Date) {
        if health.succeeded(at: at) {
            metrcCameBack.store(true, ordering: .relaxed)
            wake()
        }
    }

    /// Receipts due: look up the uncertain, then post the rest in batches.
    private func drainReceipts() async -> Int {
        let due: [PendingReport]
        do {
            due = try store.dueReports(now: now(), limit: settings.batchSize * 5)
            guard !due.isEmpty else { return 0 }
            try store.leaseReports(saleIds: due.map(\.sale.id), until: now().addingTimeInterval(settings.lease.seconds),
                                   now: now())
        } catch {
            logger.error("outbox unreadable", metadata: ["error": "\(error)"])
            return 0
        }

        let attempts = Dictionary(uniqueKeysWithValues: due.map { ($0.sale.id, $0.attempts) })
        await drain(due.map { ($0.sale, $0.needsLookup) }, OutboxKind<Sale>(
            lookUp: { [metrc] (sale: Sale) async throws(MetrcError) -> Int64? in
                try await metrc.receipt(externalNumber: sale.receiptNumber)?.id
            },
            send: { (sales: [Sale]) async throws(MetrcError) -> [Int64] in try await self.post(sales) },
            reported: { receipts, found in
                await self.recordReported(receipts, action: found ? "metrc.receipt.found" : "metrc.receipts.posted",
                                    attempts: receipts.map { attempts[$0.0.id] ?? 1 }.max() ?? 1)
            },
            rejected: { sale, rows in await self.recordRejection(sale, rows: rows, restoreStock: false) },
            failed: { sales, error, uncertain in
                await self.recordFailures(sales, error: error, hadUncertainAttempt: uncertain,
                                          attempts: sales.map { attempts[$0.id] ?? 1 }.max() ?? 1)
            }))
        return due.count
    }

    // MARK: - Recording outcomes

    /// Records that Metrc holds these receipts, without waiting for the commit: `meanwhile` hears the time
    /// recorded once the write is handed in. Should the write fail, the outbox rows stay, marked for lookup,
    /// and fall due after a retry delay: the next attempt finds the receipts in Metrc.
    ///
    /// - Parameter attempts: the outbox rows' attempts so far, for the delay before a lookup should the write fail.
    private func recordReported(_ receipts: [(Sale, Int64)], action: String = "metrc.receipts.posted", attempts: Int = 1,
                                meanwhile: (_ recordedAt: Date) -> Void = { _ in }) async {
        let at = now()
        metrcAnswered(at: at)
        reported.increment(by: receipts.count)
        let receiptNumbers = receipts.map { $0.0.receiptNumber }
        let audit = AuditEvent(actor: "reporter", action: action, license: metrc.licenseNumber,
                               metrcEndpoint: action == "metrc.receipt.found"
                                   ? "GET /sales/v2/receipts/external/{externalNumber}" : "POST /sales/v2/receipts",
                               requestDigest: digest(receipts.map { $0.0 }),
                               responseDigest: sha256Hex(Data(receipts.map { "\($0.1)" }.joined(separator: ",").utf8)),
                               subject: receiptNumbers.joined(separator: ","))
        await store.recordReported(receipts.map { (saleId: $0.0.id, metrcReceiptId: $0.1) }, at: at, audit: audit,
                             meanwhile: meanwhile) { [logger] outcome in
            switch outcome {
            case .success:
                logger.debug("reported", metadata: ["receipts": "\(receiptNumbers)"])
            case .failure(let error):
                logger.error("could not record a reported receipt; it will be looked up again",
                             metadata: ["receipts": "\(receiptNumbers)", "error": "\(error)"])
                // Off the committer's thread: the store cannot be written from inside its own commit.
                Task { self.lookUpSoon(receipts.map { $0.0.id }, attempts: attempts, after: error) }
            }
        }
    }

    /// Metrc holds these receipts but the write recording so failed: their outbox rows (leased, marked for lookup)
    /// are made due after a retry delay instead of at the end of the lease, so that the sales,
    /// whose registers heard `reported`, show so again within seconds once the store writes.
    private func lookUpSoon(_ saleIds: [Int64], attempts: Int, after error: any Error) {
        do {
            try store.recordFailure(saleIds: saleIds, message: "Metrc's answer could not be recorded: \(error)",
                                    needsLookup: true,
                                    nextAttemptAt: now().addingTimeInterval(settings.retry.delay(afterAttempt: attempts).seconds),
                                    at: now())
            wake()
        } catch {
            logger.error("could not schedule the lookup either; the lease will", metadata: ["error": "\(error)"])
        }
    }

    private func recordRejection(_ sale: Sale, rows: [MetrcRowError], restoreStock: Bool) async {
        let at = now()
        metrcAnswered(at: at)  // it just said no
        rejectedCount.increment()
        let messages = rows.map(\.message)
        logger.warning("Metrc refused a receipt", metadata: ["sale": "\(sale.id)", "receipt": "\(sale.receiptNumber)",
                                                             "reason": "\(messages.joined(separator: "; "))",
                                                             "stockRestored": "\(restoreStock)"])
        let audit = AuditEvent(actor: "reporter", action: "metrc.receipt.rejected", license: metrc.licenseNumber,
                               metrcEndpoint: "POST /sales/v2/receipts",
                               requestDigest: digest([sale]),
                               responseDigest: sha256Hex(Data(messages.joined(separator: "\n").utf8)),
                               subject: sale.receiptNumber, detail: messages.joined(separator: "; "))
        do {
            try store.recordRejected(saleId: sale.id, messages: messages, restoreStock: restoreStock, at: at, audit: audit)
        } catch {
            logger.error("could not record a rejection", metadata: ["sale": "\(sale.id)", "error": "\(error)"])
        }
    }

    /// When to try again after a failure, and whether Metrc answered at all (for `/v1/reporting`).
    func retryPlan(after error: MetrcError, attempts: Int, at: Date) async -> Date {
        let answered: Bool = switch error {
        case .unauthorized, .rateLimited, .notFound, .invalidResponse: true
        case .transient(_, let mayHaveBeenApplied): mayHaveBeenApplied  // a 5xx is an answer; a refused connection is not
        case .ambiguous, .rejected: false
        }
        health.failed(error.summary, reachable: answered, at: at)
        var retryAfter: Duration? = nil
        if case .rateLimited(let after) = error { retryAfter = after }
        return at.addingTimeInterval(settings.retry.delay(afterAttempt: attempts, retryAfter: retryAfter).seconds)
    }

    /// - Parameter hadUncertainAttempt: an earlier attempt of these rows may already be in Metrc.
    private func recordFailures(_ sales: [Sale], error: MetrcError, hadUncertainAttempt: Bool, attempts: Int = 1) async {
        let at = now()
        retries.increment(by: sales.count)
        let next = await retryPlan(after: error, attempts: attempts, at: at)
        logger.warning("receipt report failed; will retry", metadata: [
            "receipts": "\(sales.map(\.receiptNumber))", "error": "\(error.summary)",
            "retryAt": "\(next)", "lookupFirst": "\(hadUncertainAttempt || error.mayHaveBeenApplied)"])
        do {
            try store.recordFailure(saleIds: sales.map(\.id), message: error.summary,
                                    needsLookup: hadUncertainAttempt || error.mayHaveBeenApplied,
                                    nextAttemptAt: next, at: at)
        } catch {
            logger.error("could not record a failed attempt", metadata: ["error": "\(error)"])
        }
        wake()
    }

    /// The digest of the body MetrcKit sends for these receipts (they go in one POST: at most 10).
    private func digest(_ sales: [Sale]) -> String {
        sha256Hex(MetrcReceiptDraft.requestBody(sales.map(MetrcReceiptDraft.init(sale:))))
    }
}

extension Duration {
    /// Seconds as a TimeInterval, for Date arithmetic.
    var seconds: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18
    }
}
