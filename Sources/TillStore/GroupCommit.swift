import GRDB
import Synchronization

/// Commits the writes that arrive while the writer is busy together: one transaction and one fsync for
/// all of them instead of one each.
///
/// Writes sharing a transaction each run in a savepoint of their own, so one that throws (a package sold
/// out by the sale before it) is undone alone and the others commit. A caller hears its result only after
/// the commit that holds its write, or the commit's error if that commit fails: "recorded" is never said of
/// anything not on disk. With one register nothing waits and a write commits alone on its caller's thread,
/// as a plain `pool.write` would.
final class GroupCommit: Sendable {
    enum Durability: Sendable {
        /// Synced to the disk before the caller hears of it (`synchronous = FULL`).
        case synced
        /// Written to the WAL, synced by the next synced commit or checkpoint: for what can be rebuilt
        /// after a power cut (a write of Metrc's answer, which the reporter can look up again).
        case unsynced
    }

    private struct Pending: Sendable {
        let durability: Durability
        /// Runs the write, in a savepoint of its own when others share the transaction; hands back whether
        /// it failed and what to tell the caller once the commit is known.
        let run: @Sendable (Database, _ shared: Bool) -> (failed: Bool, answer: @Sendable (Result<Void, any Error>) -> Void)
        /// Tells the caller its write never ran (the transaction could not begin).
        let fail: @Sendable (any Error) -> Void
    }

    private struct State {
        var pending: [Pending] = []
        var committing = false
        /// The commit in progress holds a synced write (a sale's journal, say).
        var committingSynced = false
        /// Writes handed in, and writes whose commit is known (in that order: commits keep arrival order),
        /// so that a reader can wait for everything handed in before it (`caughtUp`).
        var handedIn: UInt64 = 0
        var settled: UInt64 = 0
        var readers: [(upTo: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        /// When a write last arrived while a synced write was committing: writes are concurrent (several
        /// registers selling). Only such a collision counts. A write queued merely because one happened lately
        /// must not renew it, nor one arriving during an unsynced write (a lone register's next sale meeting the
        /// record of its last one's answer), or one collision would keep a lone register's writes off its own
        /// thread for good.
        var lastCollision: ContinuousClock.Instant?
        /// Commits run on their caller's thread (for tests).
        var led = 0
    }

    private let pool: DatabasePool
    private let state = Mutex(State())
    /// How long after the last collision the writes count as concurrent.
    private let quietAfter: Duration

    init(pool: DatabasePool, quietAfter: Duration = .milliseconds(100)) {
        self.pool = pool
        self.quietAfter = quietAfter
    }

    /// How many commits ran on their caller's thread so far.
    var commitsLed: Int { state.withLock { $0.led } }

    /// Nothing committing or queued (for tests: a caller hears its commit a moment before the writer lets go).
    var isIdle: Bool { state.withLock { !$0.committing && $0.pending.isEmpty } }

    func write<T: Sendable>(_ durability: Durability = .synced,
                            _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        // When this caller leads, the commit runs here and resumes the continuation before the await is
        // reached: no suspension, no thread hop.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let pending = Self.pending(durability, body) { continuation.resume(with: $0) }
            if handIn(pending) { commitLeading(pending) }
        }
    }

    /// Hands a write in without waiting for its commit; `completion` hears how the commit went.
    ///
    /// `meanwhile` runs once the write is handed in: a `caughtUp()` begun after it waits for this write.
    /// When this caller leads, the commit runs on its thread after `meanwhile` and after a yield, so that
    /// what `meanwhile` resumed on the same executor (a register's handler, on its connection's event
    /// loop) answers first; else the writer's queue may commit it before or while `meanwhile` runs.
    func submit(_ durability: Durability, _ body: @escaping @Sendable (Database) throws -> Void,
                meanwhile: () -> Void, completion: @escaping @Sendable (Result<Void, any Error>) -> Void) async {
        let pending = Self.pending(durability, body, answer: completion)
        let leads = handIn(pending)
        meanwhile()
        guard leads else { return }
        // Writes arriving meanwhile queue behind this one (it holds `committing`) and are committed with
        // or after it: none waits for more than this yield.
        await Task.yield()
        commitLeading(pending)
    }

    /// Nobody writing lately: true, and the caller commits the write itself, on its thread (handing it to
    /// the writer's queue and back costs two thread wake-ups, more than the commit itself on a small
    /// machine). Else false: the write is queued for the writer's queue.
    private func handIn(_ pending: Pending) -> Bool {
        guard takeTheLead(pending.durability) else {
            enqueue(pending)
            return false
        }
        return true
    }

    /// Returns once every write handed in before this call has committed or failed: a read after it sees them.
    func caughtUp() async {
        let waitFor = state.withLock { state -> UInt64? in state.settled < state.handedIn ? state.handedIn : nil }
        guard let waitFor else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let settled = state.withLock { state in
                if state.settled >= waitFor { return true }
                state.readers.append((waitFor, continuation))
                return false
            }
            if settled { continuation.resume() }
        }
    }

    /// True when nobody is committing and no write collided with a commit lately: the caller commits its write
    /// itself, and later ones queue meanwhile. Under concurrent writes every write goes to the writer's
    /// queue instead: a leader's thread is held for the whole commit, fsync included, and on a small machine
    /// the few threads every request shares (the connections' event loops) are worth more than the writer's wake-ups.
    private func takeTheLead(_ durability: Durability) -> Bool {
        state.withLock { state in
            guard !state.committing else {
                if state.committingSynced { state.lastCollision = .now }
                return false
            }
            if let collision = state.lastCollision, .now - collision < quietAfter { return false }
            state.led += 1
            state.committing = true
            state.committingSynced = durability == .synced
            state.handedIn += 1
            return true
        }
    }

    /// Queues a write for the commit in progress, or starts one on the writer's queue if that just ended.
    private func enqueue(_ pending: Pending) {
        let startCommitting = state.withLock { state in
            state.pending.append(pending)
            state.handedIn += 1
            guard !state.committing else { return false }
            state.committing = true
            state.committingSynced = pending.durability == .synced
            return true
        }
        if startCommitting {
            pool.asyncWriteWithoutTransaction { db in self.commitWhilePending(db) }
        }
    }

    /// Synchronous on purpose: the caller's thread does the commit.
    private func commitLeading(_ mine: Pending) {
        pool.writeWithoutTransaction { db in
            commit([mine], db)
            releaseOrHandOn()
        }
    }

    /// Stops committing if nothing is pending; else what queued meanwhile is committed on the writer's
    /// queue, and this caller goes on.
    private func releaseOrHandOn() {
        let more = state.withLock { state in
            if state.pending.isEmpty { state.committing = false }
            return state.committing
        }
        if more { pool.asyncWriteWithoutTransaction { db in self.commitWhilePending(db) } }
    }

    /// A write to run (in its own savepoint when shared); `answer` hears its result once the commit holding it is known.
    private static func pending<T: Sendable>(_ durability: Durability, _ body: @escaping @Sendable (Database) throws -> T,
                                             answer: @escaping @Sendable (Result<T, any Error>) -> Void) -> Pending {
        Pending(durability: durability, run: { db, shared in
            let outcome: Result<T, any Error>
            do {
                if shared {
                    var value: T?
                    try db.inSavepoint {
                        value = try body(db)
                        return .commit
                    }
                    outcome = .success(value!)
                } else {
                    outcome = .success(try body(db))  // alone: a failure rolls the whole transaction back
                }
            } catch {
                outcome = .failure(error)
            }
            let failed = if case .failure = outcome { true } else { false }
            return (failed, { commit in
                switch commit {
                case .success: answer(outcome)
                case .failure(let error): answer(.failure(error))
                }
            })
        }, fail: { answer(.failure($0)) })
    }

    /// On the writer: commits everything pending, again and again, until nothing is.
    private func commitWhilePending(_ db: Database) {
        while true {
            let batch = state.withLock { state in
                let batch = state.pending
                state.pending.removeAll(keepingCapacity: true)
                if batch.isEmpty { state.committing = false }
                state.committingSynced = batch.contains { $0.durability == .synced }
                return batch
            }
            guard !batch.isEmpty else { return }
            commit(batch, db)
        }
    }

    private func commit(_ batch: [Pending], _ db: Database) {
        var answers: [@Sendable (Result<Void, any Error>) -> Void] = []
        answers.reserveCapacity(batch.count)
        let outcome: Result<Void, any Error>
        // The writer stays at FULL between commits, so any other write (and `durabilitySettings`) syncs.
        let synced = batch.contains { $0.durability == .synced }
        do {
            if !synced { try db.cachedStatement(sql: "PRAGMA synchronous = NORMAL").execute() }
            defer { if !synced { try? db.cachedStatement(sql: "PRAGMA synchronous = FULL").execute() } }
            // A write alone in its transaction needs no savepoint (two more statements): if it fails, the
            // transaction is rolled back instead, and the caller hears the write's own error.
            let shared = batch.count > 1
            var failedAlone = false
            try db.inTransaction(.immediate) {
                for pending in batch {
                    let (failed, answer) = pending.run(db, shared)
                    answers.append(answer)
                    failedAlone = failed && !shared
                }
                return failedAlone ? .rollback : .commit
            }
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        for answer in answers { answer(outcome) }
        if answers.count < batch.count, case .failure(let error) = outcome {
            for pending in batch[answers.count...] { pending.fail(error) }
        }
        let caughtUp = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.settled += UInt64(batch.count)
            guard !state.readers.isEmpty else { return [] }
            let settled = state.settled
            let ready = state.readers.filter { $0.upTo <= settled }.map(\.continuation)
            state.readers.removeAll { $0.upTo <= settled }
            return ready
        }
        for reader in caughtUp { reader.resume() }
    }
}
