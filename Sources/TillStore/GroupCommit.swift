import GRDB
import Synchronization

/// Commits the writes that arrive while the writer is busy together: one transaction and one fsync for
/// all of them instead of one each.
///
/// Each write runs in a savepoint of its own, so one that throws (a package sold out by the sale before
/// it) is undone alone and the others commit. A caller hears its result only after the commit that holds
/// its write, or the commit's error if that commit fails: "recorded" is never said of anything not on disk.
/// With one register nothing waits and a write commits alone, as a plain `pool.write` would.
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
        /// Runs the write in its savepoint; hands back what to tell the caller once the commit is known.
        let run: @Sendable (Database) -> @Sendable (Result<Void, any Error>) -> Void
        /// Tells the caller its write never ran (the transaction could not begin).
        let fail: @Sendable (any Error) -> Void
    }

    private struct State {
        var pending: [Pending] = []
        var committing = false
    }

    private let pool: DatabasePool
    private let state = Mutex(State())

    init(pool: DatabasePool) {
        self.pool = pool
    }

    func write<T: Sendable>(_ durability: Durability = .synced,
                            _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let pending = Pending(durability: durability, run: { db in
                let outcome: Result<T, any Error>
                do {
                    var value: T?
                    try db.inSavepoint {
                        value = try body(db)
                        return .commit
                    }
                    outcome = .success(value!)
                } catch {
                    outcome = .failure(error)
                }
                return { commit in
                    switch commit {
                    case .success: continuation.resume(with: outcome)
                    case .failure(let error): continuation.resume(throwing: error)
                    }
                }
            }, fail: { continuation.resume(throwing: $0) })
            let startCommitting = state.withLock { state in
                state.pending.append(pending)
                defer { state.committing = true }
                return !state.committing
            }
            if startCommitting {
                pool.asyncWriteWithoutTransaction { db in self.commitWhilePending(db) }
            }
        }
    }

    /// On the writer: commits everything pending, again and again, until nothing is.
    private func commitWhilePending(_ db: Database) {
        while true {
            let batch = state.withLock { state in
                let batch = state.pending
                state.pending.removeAll(keepingCapacity: true)
                if batch.isEmpty { state.committing = false }
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
            if !synced { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            defer { if !synced { try? db.execute(sql: "PRAGMA synchronous = FULL") } }
            try db.inTransaction(.immediate) {
                for pending in batch { answers.append(pending.run(db)) }
                return .commit
            }
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        for answer in answers { answer(outcome) }
        if answers.count < batch.count, case .failure(let error) = outcome {
            for pending in batch[answers.count...] { pending.fail(error) }
        }
    }
}
