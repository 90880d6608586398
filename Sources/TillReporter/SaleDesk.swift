import Foundation
import Logging
import MetrcKit
import Metrics
import Synchronization
import TillDomain
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
    private let reporter: ReceiptReporter
    private let license: String
    private let timeZone: TimeZone
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let salesCounter = Counter(label: "till_sales_total")

    public init(store: TillStore, reporter: ReceiptReporter, license: String, timeZone: TimeZone, logger: Logger,
                now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.reporter = reporter
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
        try SaleRules.checkShape(request)
        if let existing = try load({ try store.sale(clientSaleId: request.clientSaleId) }) {
            return try replay(existing, request: request, digest: requestDigest)
        }
        let packages = try load { try store.packages(labels: request.lines.map(\.packageLabel)) }
        let lines = try SaleRules.validate(request, packages: packages)

        let soldAt = now()
        let entry = JournalEntry(
            request: request, requestDigest: requestDigest, lines: lines, terminalId: terminal?.id,
            actor: terminal.map { "terminal:\($0.name)" } ?? "unknown", license: license, soldAt: soldAt,
            salesDateTimeLocal: MetrcLocalTime.format(soldAt, in: timeZone),
            businessDate: Self.businessDate(of: soldAt, in: timeZone),
            firstAttemptLease: soldAt.addingTimeInterval(reporter.leaseDuration.seconds))
        let journaled: Sale
        switch try load({ try store.journal(entry) }) {
        case .replay(let existing):
            return try replay(existing, request: request, digest: requestDigest)
        case .recorded(let sale):
            journaled = sale
        }
        salesCounter.increment()
        logger.debug("sale journaled", metadata: ["sale": "\(journaled.id)", "receipt": "\(journaled.receiptNumber)"])
        return await reportWithinDeadline(journaled)
    }

    /// Waits for the first report attempt up to the deadline; past it the attempt goes on unobserved
    /// and the register hears `pending_report`.
    private func reportWithinDeadline(_ sale: Sale) async -> SaleOutcome {
        let registerAnswered = Mutex(false)
        let reporter = self.reporter
        let attempt = Task {
            await reporter.reportFresh(sale) {
                // Metrc refused: undo the sale only if the register has not already been told it stands.
                registerAnswered.withLock { answered in
                    defer { answered = true }
                    return !answered
                }
            }
        }
        let finished = await Self.valueOrNil(of: attempt, within: reporter.deadline)
        if let finished { return Self.outcome(finished) }
        let tookTheAnswer = registerAnswered.withLock { answered in
            defer { answered = true }
            return !answered
        }
        if tookTheAnswer {
            logger.info("Metrc slower than the deadline; sale pending report", metadata: ["sale": "\(sale.id)"])
            let current = (try? store.sale(id: sale.id)) ?? sale
            // A refusal landing after this point is kept as an exception, not undone: the sale stands.
            return current.status == .reported ? .reported(current) : .pendingReport(sale)
        }
        // The refusal arrived at the deadline and has already undone the sale: say so.
        return Self.outcome(await attempt.value)
    }

    /// The task's value if it finishes within `limit`, else nil at the limit; the task itself runs on.
    /// (A task group would not do: awaiting `attempt.value` ignores cancellation, so the group would
    /// wait for Metrc however slow it is.)
    static func valueOrNil<T: Sendable>(of task: Task<T, Never>, within limit: Duration) async -> T? {
        let race = FirstAnswer<T?>()
        return await withCheckedContinuation { continuation in
            race.arm(continuation)
            let timer = Task {
                try? await Task.sleep(for: limit)
                race.answer(nil)
            }
            Task {
                let value = await task.value
                timer.cancel()
                race.answer(value)
            }
        }
    }

    private func replay(_ existing: Sale, request: SaleRequest, digest: String) throws(TillError) -> SaleOutcome {
        let storedDigest = try load { try store.journalDigest(saleId: existing.id) }
        guard storedDigest == digest else {
            throw TillError(.conflict, code: "client_sale_id_reused",
                            "clientSaleId \(request.clientSaleId) was already used for a different sale.",
                            details: ["saleId": "\(existing.id)", "receiptNumber": existing.receiptNumber])
        }
        return Self.outcome(existing)
    }

    private static func outcome(_ sale: Sale) -> SaleOutcome {
        switch sale.status {
        case .reported: .reported(sale)
        case .pendingReport: .pendingReport(sale)
        // A refusal that came after the register was told `pending_report` leaves the sale standing:
        // a retry hears what it heard first, with the sale as it is now.
        case .rejected: sale.saleUndone ? .rejected(sale) : .pendingReport(sale)
        }
    }

    /// The facility-local calendar date of an instant, YYYY-MM-DD.
    public static func businessDate(of date: Date, in timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }

    private func load<T>(_ body: () throws -> T) throws(TillError) -> T {
        do {
            return try body()
        } catch let error as TillError {
            throw error
        } catch {
            logger.error("store failure", metadata: ["error": "\(error)"])
            throw TillError(.unavailable, code: "store_unavailable", "The sales journal could not be read or written.")
        }
    }
}

/// Resumes a continuation with whichever answer comes first; later answers are dropped.
private final class FirstAnswer<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, Never>?>(nil)

    func arm(_ continuation: CheckedContinuation<T, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func answer(_ value: T) {
        continuation.withLock { slot in
            slot?.resume(returning: value)
            slot = nil
        }
    }
}
