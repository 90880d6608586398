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
    /// Objects per Metrc write (Metrc's object limit): how many journaled writes of a kind share a request.
    public var batchSize: Int
    /// How long an attempt holds its journal rows; longer than any Metrc request can take.
    public var lease: Duration
    public var retry: RetryPolicy
    /// The longest the drain loop sleeps when nothing is due.
    public var idlePoll: Duration
    /// POSTs of fresh sales in flight at once; sales journaled meanwhile share the next one.
    public var freshPostsInFlight: Int
    /// Requests the drain has in flight at once (a backlog, a day's finalizes), within Metrc's per-facility
    /// concurrency (10) with room left for reads.
    public var sendsInFlight: Int = 8
    /// How long after an attempt began Metrc may still apply it: a write in doubt that Metrc does not show is
    /// sent again only once its last attempt is this old. Longer than the request timeout plus the deadline
    /// (a fresh sale's attempt counts from its journaling and is sent within the deadline).
    public var inDoubtWindow: Duration

    public init(deadline: Duration = .milliseconds(2000), batchSize: Int = 10, lease: Duration = .seconds(60),
                retry: RetryPolicy = RetryPolicy(), idlePoll: Duration = .seconds(1), freshPostsInFlight: Int = 2,
                inDoubtWindow: Duration = .seconds(120)) {
        self.freshPostsInFlight = freshPostsInFlight
        self.deadline = deadline
        self.batchSize = batchSize
        self.lease = lease
        self.retry = retry
        self.idlePoll = idlePoll
        self.inDoubtWindow = inDoubtWindow
    }
}

/// Owns the Metrc journal: sends every write Till owes Metrc exactly once, in each subject's order, now or later.
///
/// Exactly once rests on four rules: a row is leased before it is sent (two attempts never overlap); an
/// attempt's start is on disk before it is sent; an attempt that may have reached Metrc is settled only by
/// its kind's probe, and sent again only once it can no longer land (`inDoubtWindow` after it began, across
/// restarts); and the outcome is recorded in the same transaction that clears the row.
public final class MetrcReporter: Service, Sendable {
    let store: TillStore
    let metrc: any MetrcAPI
    let health: MetrcHealth
    let settings: ReporterSettings
    let logger: Logger
    let now: @Sendable () -> Date
    private let wakeSignal = WakeSignal()
    /// Set when Metrc answers again after failures: the drain then brings every row waiting out a retry delay
    /// forward, so that a backlog goes in full requests now rather than one by one as each row's backoff ends.
    private let metrcCameBack = Atomic<Bool>(false)
    private let fresh: FreshReceipts
    /// How fresh sales' receipts go, built once: every sale uses it.
    private let receiptHandler: JournalKindHandler

    private let reported = Counter(label: "till_receipts_reported_total")
    private let retries = Counter(label: "till_receipt_report_failures_total")
    /// Writes Metrc refused, by kind: each one waits for a person (`/v1/reporting`).
    private let refusedCount = Dictionary(uniqueKeysWithValues: JournalKind.allCases.map {
        ($0, Counter(label: "till_metrc_writes_refused_total", dimensions: [("kind", $0.rawValue)]))
    })
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
        receiptHandler = JournalKindHandler.handler(for: .receiptCreate, metrc: metrc)
    }

    public var deadline: Duration { settings.deadline }
    public var leaseDuration: Duration { settings.lease }

    // MARK: - The first attempt, made while the register waits

    /// Reports a freshly journaled sale (its journal row is already leased to this attempt) and waits for
    /// the outcome up to the deadline. Sales journaled at the same moment may share one POST.
    ///
    /// - Returns: the sale as Metrc's answer left it (reported, or refused and undone), or as it stands
    ///   when the attempt failed; nil when the deadline came first (the attempt goes on unobserved).
    public func reportFresh(_ sale: Sale, row: JournalRow) async -> Sale? {
        await fresh.report(FreshReceipts.Receipt(sale: sale, row: row), post: { batch in await self.postFresh(batch) },
                           handOver: { rows in self.handOver(rows) })
    }

    private func postFresh(_ batch: [(FreshReceipts.Receipt, RegisterWait)]) async {
        let bySale = Dictionary(uniqueKeysWithValues: batch.map { ($0.0.sale.id, $0) })
        func wait(for row: JournalRow) -> (sale: Sale, wait: RegisterWait)? {
            bySale[row.subject.id].map { ($0.0.sale, $0.1) }
        }
        await send(batch.map(\.0.row), receiptHandler, SendHooks(
            applied: { applied, at in
                // The registers hear "reported" as soon as the write is handed in, not after its commit: a
                // read or a retry after their answer sees it, and should it never commit, the journal row
                // (in doubt) has the reporter find the same receipt in Metrc.
                for (row, id) in applied {
                    guard var sale = wait(for: row)?.sale, let id else { continue }
                    sale.status = .reported
                    sale.metrcReceiptId = id
                    sale.reportedAt = at
                    wait(for: row)?.wait.answer(sale)
                }
            },
            // Undo the sale only if its register has not already been told it stands.
            restoreStock: { row in wait(for: row)?.wait.claim() ?? false },
            refused: { row in
                guard let (sale, wait) = wait(for: row) else { return }
                wait.answer((try? self.store.sale(id: sale.id)) ?? sale)
            },
            failed: { rows in
                for row in rows { if let (sale, wait) = wait(for: row) { wait.answer(sale) } }
            }))
    }

    /// Fresh sales that waited past their deadline without being sent: the drain takes them now. Nothing of
    /// them left, so they are no longer in doubt.
    private func handOver(_ rows: [JournalRow]) {
        do {
            try store.recordJournalFailure(rows.map(\.id), message: "not sent within the register's deadline",
                                           inDoubt: false, nextAttemptAt: now(), at: now())
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

    /// Nudges the drain loop (e.g. after a first attempt failed, or a new write was journaled).
    public func wake() { wakeSignal.wake() }

    private func waitForWork() async {
        let pause: Duration = if let due = try? store.nextJournalDue() {
            min(settings.idlePoll, max(.milliseconds(Int64(max(0, due.timeIntervalSince(now())) * 1000)), .milliseconds(5)))
        } else {
            settings.idlePoll
        }
        await wakeSignal.wait(upTo: pause)
    }

    /// One pass over what is due: each row in doubt is probed, the rest (and those a probe cleared) sent in
    /// requests of their kind. Returns rows handled.
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
        let due: [JournalRow]
        let leased: TillStore.LeasedRows
        let handlers: [JournalKind: JournalKindHandler]
        do {
            due = try store.dueJournal(now: now(), limit: settings.batchSize * max(5, 2 * settings.sendsInFlight))
            guard !due.isEmpty else { return 0 }
            leased = try store.leaseJournal(due.map(\.id), until: now().addingTimeInterval(settings.lease.seconds), at: now())
            let checkInDates = Set(leased.toProbe.filter { $0.kind == .checkInCreate }.compactMap { try? JournalBody($0).checkInDate })
            handlers = JournalKindHandler.all(metrc: metrc, heldCheckIns: try store.metrcCheckInIds(on: checkInDates))
        } catch {
            logger.error("journal unreadable", metadata: ["error": "\(error)"])
            return 0
        }
        for kind in JournalKind.allCases {
            guard let handler = handlers[kind] else { continue }
            // Rows not in doubt began their attempt with the lease; the others only once a probe clears them.
            var toSend = leased.toSend.filter { $0.kind == kind }
            toSend += await settleDoubts(leased.toProbe.filter { $0.kind == kind }, handler)
            let size = handler.batches ? max(1, settings.batchSize) : 1
            let batches = stride(from: 0, to: toSend.count, by: size).map { Array(toSend[$0..<min($0 + size, toSend.count)]) }
            // Rows of a pass are each the first owed of their subject, so their requests may overlap: a backlog or
            // a day's finalizes go several at a time, within Metrc's concurrency.
            await withTaskGroup(of: Void.self) { group in
                var inFlight = 0
                for batch in batches {
                    if inFlight >= max(1, settings.sendsInFlight) {
                        await group.next()
                        inFlight -= 1
                    }
                    group.addTask { await self.send(batch, handler) }
                    inFlight += 1
                }
            }
        }
        return due.count
    }

    /// Probes rows whose last attempt may have reached Metrc. Applied ones are recorded at once; the rows
    /// returned were not applied and can no longer be (their attempt is older than `inDoubtWindow`), so a new
    /// attempt has begun for them, on disk. The rest wait, probed again now and then until the window ends.
    private func settleDoubts(_ rows: [JournalRow], _ handler: JournalKindHandler) async -> [JournalRow] {
        var cleared: [JournalRow] = []
        for row in rows {
            let finding: ProbeFinding
            do {
                finding = try await handler.probe(row)
                metrcAnswered(at: now())
            } catch {
                await recordFailure([row], error: error, inDoubt: nil, kind: row.kind)
                continue
            }
            switch finding {
            case .applied(let metrcId):
                await recordApplied([(row, metrcId)], found: true, handler: handler)
            case .notApplied:
                let began = row.attemptStartedAt ?? row.createdAt
                let landsUntil = began.addingTimeInterval(settings.inDoubtWindow.seconds)
                let at = now()
                if at >= landsUntil {
                    cleared.append(row)
                    continue
                }
                // Probed again sooner while the attempt is young (a held request lands within seconds), then
                // less often, and once more when it can no longer land.
                let pause = min(max(at.timeIntervalSince(began) / 2, 1), 30)
                let next = min(landsUntil, at.addingTimeInterval(pause))
                logger.info("write in doubt: Metrc does not show it yet; waiting before sending it again",
                            metadata: ["kind": "\(row.kind.rawValue)", "subject": "\(row.subject)",
                                       "resendAfter": "\(landsUntil)"])
                do {
                    try store.recordJournalFailure(
                        [row.id], message: "in doubt: Metrc does not show the attempt of \(Self.isoTime(began)) yet;"
                            + " sent again after \(Self.isoTime(landsUntil)) if it still does not",
                        inDoubt: nil, nextAttemptAt: next, at: at)
                } catch {
                    logger.error("could not record a probe; the lease will bring it back", metadata: ["error": "\(error)"])
                }
            }
        }
        guard !cleared.isEmpty else { return [] }
        do {
            try store.beginAttempts(cleared.map(\.id), at: now())
        } catch {
            logger.error("could not begin new attempts; they wait for the lease", metadata: ["error": "\(error)"])
            return []
        }
        return cleared.map { row in
            var row = row
            row.attempts += 1
            return row
        }
    }

    /// Notes that Metrc answered (a refusal is an answer too): if that ends a run of failures, the next drain
    /// pass retries everything waiting. Every answer goes through here, so `health` is told in one place.
    func metrcAnswered(at: Date) {
        if health.succeeded(at: at) {
            metrcCameBack.store(true, ordering: .relaxed)
            wake()
        }
    }

    // MARK: - Sending

    /// What the fresh path hears of a send, beside what is recorded.
    struct SendHooks {
        /// Metrc holds these; told once the recording is handed in.
        var applied: (_ applied: [(JournalRow, Int64?)], _ recordedAt: Date) -> Void = { _, _ in }
        /// Whether a refused row's local change is undone (its register not yet told otherwise).
        var restoreStock: (JournalRow) -> Bool = { _ in false }
        var refused: (JournalRow) -> Void = { _ in }
        var failed: ([JournalRow]) -> Void = { _ in }
    }

    /// Sends one request of rows (their attempt begun, on disk) and records each outcome. A refused request
    /// is split so that one bad write never holds up the others: Metrc applied none of it, so the rest go
    /// again at once, as a new attempt.
    func send(_ batch: [JournalRow], _ handler: JournalKindHandler, _ hooks: SendHooks = SendHooks()) async {
        guard !batch.isEmpty else { return }
        let kind = batch[0].kind
        let started = DispatchTime.now()
        let outcome: Result<[Int64?], MetrcError>
        do {
            outcome = .success(try await metrc.send(handler.request(batch)))
        } catch {
            outcome = .failure(error)
        }
        if kind == .receiptCreate { postTimer.recordInterval(since: started) }

        switch outcome {
        case .success(let ids):
            guard !handler.answersIds || (ids.count == batch.count && !ids.contains(nil)) else {
                // Applied (2xx), but without the Ids it made: the probe finds them.
                await recordFailure(batch, error: .invalidResponse("Metrc took the write without telling its Ids"),
                                    inDoubt: true, kind: kind)
                hooks.failed(batch)
                return
            }
            await recordApplied(Array(zip(batch, handler.answersIds ? ids : batch.map { _ in nil })), found: false,
                                handler: handler, meanwhile: { hooks.applied($0, $1) })
        case .failure(.rejected(let rows)):
            let badRows = Set(rows.compactMap(\.row).filter { batch.indices.contains($0) })
            if batch.count == 1 {
                await refuse(batch[0], messages: rows.map(\.message), handler: handler, hooks)
            } else if !badRows.isEmpty {
                for row in badRows.sorted() {
                    await refuse(batch[row], messages: rows.filter { $0.row == row }.map(\.message), handler: handler, hooks)
                }
                await resend(batch.enumerated().filter { !badRows.contains($0.offset) }.map(\.element), handler, hooks)
            } else {
                // Metrc did not say which write it refused (or refused the request's size): halve until it does.
                let middle = batch.count / 2
                await resend(Array(batch[..<middle]), handler, hooks)
                await resend(Array(batch[middle...]), handler, hooks)
            }
        case .failure(.notFound) where kind == .receiptArchive:
            await refuse(batch[0], messages: ["Metrc does not know this receipt (404)"], handler: handler, hooks)
        case .failure(let error):
            await recordFailure(batch, error: error, inDoubt: error.mayHaveBeenApplied, kind: kind)
            hooks.failed(batch)
        }
    }

    /// Part of a refused request, sent again as a new attempt (its start on disk first, as for any attempt).
    private func resend(_ rows: [JournalRow], _ handler: JournalKindHandler, _ hooks: SendHooks) async {
        guard !rows.isEmpty else { return }
        do {
            try store.beginAttempts(rows.map(\.id), at: now())
        } catch {
            logger.error("could not begin a new attempt; the rows wait for their lease", metadata: ["error": "\(error)"])
            hooks.failed(rows)
            return
        }
        await send(rows, handler, hooks)
    }

    // MARK: - Recording outcomes

    /// Records that Metrc holds these writes, without waiting for the commit: `meanwhile` hears the time
    /// recorded once the write is handed in. Should the write fail, the rows stay, in doubt, and fall due
    /// after a retry delay: their probe finds them in Metrc.
    private func recordApplied(_ applied: [(JournalRow, Int64?)], found: Bool, handler: JournalKindHandler,
                               meanwhile: @escaping ([(JournalRow, Int64?)], Date) -> Void = { _, _ in }) async {
        let at = now()
        metrcAnswered(at: at)
        let kind = applied[0].0.kind
        if kind == .receiptCreate { reported.increment(by: applied.count) }
        let subjects = applied.map { "\($0.0.subject)" }
        let audit = AuditEvent(actor: "reporter", action: "metrc.\(kind.rawValue).\(found ? "found" : "sent")",
                               license: metrc.licenseNumber, metrcEndpoint: found ? "probe of \(handler.endpoint)" : handler.endpoint,
                               requestDigest: sha256Hex(handler.request(applied.map(\.0)).body ?? Data()),
                               responseDigest: sha256Hex(Data(applied.map { $0.1.map(String.init) ?? "-" }.joined(separator: ",").utf8)),
                               subject: subjects.joined(separator: ","))
        let attempts = applied.map(\.0.attempts).max() ?? 1
        await store.recordApplied(applied.map { (row: $0.0, metrcId: $0.1) }, at: at, audit: audit,
                                  meanwhile: { meanwhile(applied, $0) }) { [logger] outcome in
            switch outcome {
            case .success:
                logger.debug("Metrc holds it", metadata: ["kind": "\(kind.rawValue)", "subjects": "\(subjects)"])
            case .failure(let error):
                logger.error("could not record what Metrc holds; it will be probed again",
                             metadata: ["subjects": "\(subjects)", "error": "\(error)"])
                // Off the committer's thread: the store cannot be written from inside its own commit.
                Task { self.probeSoon(applied.map(\.0.id), attempts: attempts, after: error) }
            }
        }
    }

    /// Metrc holds these writes but the write recording so failed: their rows (in doubt) are made due after a
    /// retry delay instead of at the end of the lease, so that what their registers heard shows again within
    /// seconds once the store writes.
    private func probeSoon(_ ids: [Int64], attempts: Int, after error: any Error) {
        do {
            try store.recordJournalFailure(ids, message: "Metrc's answer could not be recorded: \(error)", inDoubt: true,
                                           nextAttemptAt: now().addingTimeInterval(settings.retry.delay(afterAttempt: attempts).seconds),
                                           at: now())
            wake()
        } catch {
            logger.error("could not schedule the probe either; the lease will", metadata: ["error": "\(error)"])
        }
    }

    private func refuse(_ row: JournalRow, messages: [String], handler: JournalKindHandler, _ hooks: SendHooks) async {
        let at = now()
        metrcAnswered(at: at)  // it just said no
        refusedCount[row.kind]?.increment()
        let restoreStock = hooks.restoreStock(row)
        logger.warning("Metrc refused a write", metadata: ["kind": "\(row.kind.rawValue)", "subject": "\(row.subject)",
                                                          "reason": "\(messages.joined(separator: "; "))",
                                                          "undone": "\(restoreStock)"])
        let audit = AuditEvent(actor: "reporter", action: "metrc.\(row.kind.rawValue).refused", license: metrc.licenseNumber,
                               metrcEndpoint: handler.endpoint,
                               requestDigest: sha256Hex(handler.request([row]).body ?? Data()),
                               responseDigest: sha256Hex(Data(messages.joined(separator: "\n").utf8)),
                               subject: "\(row.subject)", detail: messages.joined(separator: "; "))
        do {
            try store.recordRefused(row, messages: messages, restoreStock: restoreStock, at: at, audit: audit)
        } catch {
            logger.error("could not record a refusal", metadata: ["subject": "\(row.subject)", "error": "\(error)"])
        }
        hooks.refused(row)
    }

    /// When to try again after a failure, and whether Metrc answered at all (for `/v1/reporting`).
    func retryPlan(after error: MetrcError, attempts: Int, at: Date) -> Date {
        let answered: Bool = switch error {
        case .unauthorized, .rateLimited, .notFound, .invalidResponse, .rejected: true
        case .transient(_, let mayHaveBeenApplied): mayHaveBeenApplied  // a 5xx is an answer; a refused connection is not
        case .ambiguous: false
        }
        health.failed(error.summary, reachable: answered, at: at)
        var retryAfter: Duration? = nil
        if case .rateLimited(let after) = error { retryAfter = after }
        return at.addingTimeInterval(settings.retry.delay(afterAttempt: attempts, retryAfter: retryAfter).seconds)
    }

    /// - Parameter inDoubt: whether the rows' attempt may have reached Metrc; nil when what failed was a probe,
    ///   which settles nothing.
    private func recordFailure(_ rows: [JournalRow], error: MetrcError, inDoubt: Bool?, kind: JournalKind) async {
        let at = now()
        if kind == .receiptCreate { retries.increment(by: rows.count) }
        let next = retryPlan(after: error, attempts: rows.map(\.attempts).max() ?? 1, at: at)
        logger.warning("Metrc write failed; will retry", metadata: [
            "kind": "\(kind.rawValue)", "subjects": "\(rows.map { "\($0.subject)" })", "error": "\(error.summary)",
            "retryAt": "\(next)", "inDoubt": "\(inDoubt.map { "\($0)" } ?? "unchanged")"])
        do {
            try store.recordJournalFailure(rows.map(\.id), message: error.summary, inDoubt: inDoubt, nextAttemptAt: next, at: at)
        } catch {
            logger.error("could not record a failed attempt", metadata: ["error": "\(error)"])
        }
        wake()
    }

    private static func isoTime(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

extension Duration {
    /// Seconds as a TimeInterval, for Date arithmetic.
    var seconds: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18
    }
}
