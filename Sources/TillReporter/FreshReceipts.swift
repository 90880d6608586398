import Foundation
import MetrcKit
import Synchronization
import TillDomain
import TillStore

/// The executor the caller's connection runs on (its event loop), when it has one: the task posting a
/// fresh sale resumes there after Metrc answers, so that its register's handler goes on without a thread hop.
public enum CallerExecutor {
    @TaskLocal public static var current: (any TaskExecutor)?
}

/// A register waiting for its sale's first report, answered once: by the report's outcome, or with
/// nothing at the deadline (the register then hears `pending_report` and the reporter goes on alone).
final class RegisterWait: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Sale?, Never>?
        /// Metrc refused the sale before the deadline: the register will hear the refusal, not "pending".
        var claimed = false
    }

    let deadline: ContinuousClock.Instant
    private let state = Mutex(State())

    init(deadline: ContinuousClock.Instant) {
        self.deadline = deadline
    }

    func arm(_ continuation: CheckedContinuation<Sale?, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    var isAnswered: Bool { state.withLock { $0.continuation == nil } }

    func answer(_ sale: Sale) {
        state.withLock { state in
            state.continuation?.resume(returning: sale)
            state.continuation = nil
        }
    }

    /// The deadline passed: the register hears nothing more of Metrc, unless a refusal already claimed it.
    func expire() {
        state.withLock { state in
            guard !state.claimed else { return }
            state.continuation?.resume(returning: nil)
            state.continuation = nil
        }
    }

    /// Metrc refused the sale. True when the register has not been answered, so the sale can still be
    /// undone; from then on the deadline cannot answer it.
    func claim() -> Bool {
        state.withLock { state in
            guard state.continuation != nil else { return false }
            state.claimed = true
            return true
        }
    }
}

/// Fresh sales on their way to Metrc while their registers wait.
///
/// At most `settings.freshPostsInFlight` POSTs are in flight; sales journaled meanwhile queue and go
/// together in the next POST (up to Metrc's 10 objects). One register never waits for another's batch to
/// form; eight registers share POSTs instead of each paying for a connection and a request. A refused
/// batch is split as the backlog's is, so one bad receipt refuses only its own sale.
final class FreshReceipts: Sendable {
    /// A journaled sale and its receipt's journal row.
    struct Receipt: Sendable {
        let sale: Sale
        let row: JournalRow
    }

    private struct Queued: Sendable {
        let receipt: Receipt
        let wait: RegisterWait
    }

    private struct State {
        var queued: [Queued] = []
        var posting = 0
        /// Every unanswered wait, oldest first (deadlines are in that order too).
        var waits: [RegisterWait] = []
        var watching = false
    }

    private let state = Mutex(State())
    private let deadline: Duration
    private let batchSize: Int
    private let postsInFlight: Int

    init(deadline: Duration, batchSize: Int, postsInFlight: Int) {
        self.deadline = deadline
        self.batchSize = max(1, batchSize)
        self.postsInFlight = max(1, postsInFlight)
    }

    /// Queues the sale and waits for its outcome, or nil at the deadline.
    ///
    /// - Parameter post: posts one batch and answers each of its waits; called on a task of its own, so
    ///   that a POST outlives a register that stopped waiting.
    func report(_ receipt: Receipt, post: @escaping @Sendable ([(Receipt, RegisterWait)]) async -> Void,
                handOver: @escaping @Sendable ([JournalRow]) -> Void) async -> Sale? {
        let wait = RegisterWait(deadline: .now + deadline)
        return await withCheckedContinuation { continuation in
            wait.arm(continuation)
            let (startPoster, startWatcher) = state.withLock { state in
                state.queued.append(Queued(receipt: receipt, wait: wait))
                state.waits.append(wait)
                let poster = state.posting < postsInFlight
                if poster { state.posting += 1 }
                let watcher = !state.watching
                state.watching = true
                return (poster, watcher)
            }
            if startWatcher { Task { await self.expireAtDeadlines() } }
            // Runs on this thread until the POST suspends it, and resumes on the caller's event loop: Metrc's
            // answer reaches the waiting handler without waking another thread.
            if startPoster {
                Task.immediate(executorPreference: CallerExecutor.current) {
                    await self.postWhileQueued(post, handOver: handOver)
                }
            }
        }
    }

    private func postWhileQueued(_ post: @Sendable ([(Receipt, RegisterWait)]) async -> Void,
                                 handOver: @Sendable ([JournalRow]) -> Void) async {
        while true {
            let (batch, late) = state.withLock { state -> ([Queued], [Queued]) in
                // A sale whose register already heard "pending" goes to the background drain instead: its
                // journal lease must not run out while it still sits here.
                let now = ContinuousClock.now
                let late = state.queued.prefix { $0.wait.deadline <= now }
                state.queued.removeFirst(late.count)
                let batch = Array(state.queued.prefix(batchSize))
                state.queued.removeFirst(batch.count)
                if batch.isEmpty { state.posting -= 1 }
                return (batch, Array(late))
            }
            if !late.isEmpty {
                late.forEach { $0.wait.expire() }
                handOver(late.map(\.receipt.row))
            }
            guard !batch.isEmpty else { return }
            await post(batch.map { ($0.receipt, $0.wait) })
        }
    }

    /// One task for all deadlines: sleeps until the oldest unanswered wait's, expires what is due, and
    /// stops when nothing is waiting.
    private func expireAtDeadlines() async {
        while true {
            let next = state.withLock { state -> ContinuousClock.Instant? in
                let answered = state.waits.prefix { $0.isAnswered }.count
                state.waits.removeFirst(answered)
                guard let first = state.waits.first else {
                    state.watching = false
                    return nil
                }
                return first.deadline
            }
            guard let next else { return }
            try? await Task.sleep(until: next, clock: .continuous)
            let due = state.withLock { state -> [RegisterWait] in
                let now = ContinuousClock.now
                let due = state.waits.prefix { $0.deadline <= now }
                state.waits.removeFirst(due.count)
                return Array(due)
            }
            due.forEach { $0.expire() }
        }
    }
}
