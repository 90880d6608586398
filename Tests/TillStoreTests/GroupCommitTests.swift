import Dispatch
import Foundation
import GRDB
import Synchronization
import Testing
@testable import TillStore

/// Group commit: a lone writer commits on its own thread; writes that collide share a transaction, each in
/// a savepoint of its own; one collision does not keep a lone writer queued for good.
@Suite struct GroupCommitTests {
    private struct Refused: Error {}

    private func committer(quietAfter: Duration = .milliseconds(100)) throws -> (GroupCommit, DatabasePool, String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("till-groupcommit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let pool = try DatabasePool(path: folder + "/t.sqlite")
        try pool.write { db in try db.execute(sql: "CREATE TABLE t (name TEXT NOT NULL UNIQUE)") }
        return (GroupCommit(pool: pool, quietAfter: quietAfter), pool, folder)
    }

    private func names(_ pool: DatabasePool) throws -> [String] {
        try pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM t ORDER BY name") }
    }

    /// Hands in a write that holds the commit until `release` is signalled, from a thread of its own, and
    /// returns once its body runs: whatever is handed in meanwhile collides with it.
    private func holdTheCommit(_ committer: GroupCommit, name: String, _ durability: GroupCommit.Durability = .synced,
                               release: DispatchSemaphore) {
        let started = DispatchSemaphore(value: 0)
        Task(executorPreference: GCDExecutor.shared) {
            try? await committer.write(durability) { db in
                try db.execute(sql: "INSERT INTO t (name) VALUES (?)", arguments: [name])
                started.signal()
                release.wait()
            }
        }
        started.wait()
    }

    private func untilIdle(_ committer: GroupCommit) async throws {
        while !committer.isIdle { try await Task.sleep(for: .milliseconds(1)) }
    }

    @Test func writesThatCollideShareACommitAndOneFailingIsUndoneAlone() async throws {
        let (committer, pool, folder) = try committer()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let release = DispatchSemaphore(value: 0)
        holdTheCommit(committer, name: "held", release: release)

        let outcomes = Mutex<[String: Bool]>([:])
        let settled = DispatchSemaphore(value: 0)
        for name in ["a", "held", "b"] {  // "held" again breaks the UNIQUE constraint
            await committer.submit(.synced, { db in
                try db.execute(sql: "INSERT INTO t (name) VALUES (?)", arguments: [name])
            }, meanwhile: {}, completion: { result in
                outcomes.withLock { $0[name] = (try? result.get()) != nil }
                settled.signal()
            })
        }
        #expect(committer.commitsLed == 1)  // only the held write ran on its caller's thread
        release.signal()
        for _ in 0..<3 { settled.wait() }
        await committer.caughtUp()

        #expect(outcomes.withLock { $0 } == ["a": true, "held": false, "b": true])
        #expect(try names(pool) == ["a", "b", "held"])
    }

    @Test func aLoneWriterCommitsOnItsOwnThreadAgainOnceCollisionsStop() async throws {
        let quiet = Duration.milliseconds(200)
        let (committer, pool, folder) = try committer(quietAfter: quiet)
        defer { try? FileManager.default.removeItem(atPath: folder) }

        try await committer.write { db in try db.execute(sql: "INSERT INTO t (name) VALUES ('first')") }
        #expect(committer.commitsLed == 1)

        let release = DispatchSemaphore(value: 0)
        holdTheCommit(committer, name: "held", release: release)
        // The collision happens inside `submit`, between these two instants.
        let collisionNotBefore = ContinuousClock.now
        let collisionNotAfter = Mutex(ContinuousClock.now)
        try await submitAndWait(committer, name: "colliding") {
            collisionNotAfter.withLock { $0 = .now }
            release.signal()
        }
        #expect(committer.commitsLed == 2)
        let collidedBy = collisionNotAfter.withLock { $0 }

        // One register writing every few milliseconds: queued while the collision is fresh (writes count as
        // concurrent), on its own thread again once it is `quiet` old, although each gap between its writes
        // is shorter than that.
        var index = 0
        var ledOnceQuiet: [Bool] = []
        while ledOnceQuiet.count < 3, ContinuousClock.now - collidedBy < .seconds(10) {
            try await untilIdle(committer)  // else this write could meet the last one's commit as it ends
            let before = committer.commitsLed
            let name = "w\(index)"
            let start = ContinuousClock.now
            try await committer.write { db in try db.execute(sql: "INSERT INTO t (name) VALUES (?)", arguments: [name]) }
            let led = committer.commitsLed > before
            if ContinuousClock.now - collisionNotBefore < quiet { #expect(!led, "write \(index) led within the quiet time") }
            if start - collidedBy > quiet { ledOnceQuiet.append(led) }
            index += 1
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(ledOnceQuiet.count == 3)
        #expect(ledOnceQuiet.allSatisfy { $0 })
        #expect(try names(pool).count == 3 + index)
    }

    /// A lone register's next sale may meet the record of its last one's Metrc answer (unsynced) still
    /// committing: that is no sign of several registers, and its next write leads at once.
    @Test func meetingAnUnsyncedCommitIsNoCollision() async throws {
        let (committer, pool, folder) = try committer(quietAfter: .seconds(30))
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let release = DispatchSemaphore(value: 0)
        holdTheCommit(committer, name: "answer", .unsynced, release: release)
        try await submitAndWait(committer, name: "next sale") { release.signal() }
        #expect(committer.commitsLed == 1)  // it queued behind the answer
        try await untilIdle(committer)

        try await committer.write { db in try db.execute(sql: "INSERT INTO t (name) VALUES ('sale after')") }
        #expect(committer.commitsLed == 2)
        #expect(try names(pool) == ["answer", "next sale", "sale after"])
    }

    /// The recording of Metrc's answer: its writer tells the register (resuming the register's handler on the
    /// same executor, a connection's event loop) and then commits. The handler goes on first, so the
    /// register's answer does not wait for the commit.
    @Test func aLeaderLetsWhatItResumedOnItsExecutorRunBeforeItCommits() async throws {
        let (committer, pool, folder) = try committer()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let loop = SerialQueueExecutor()
        let waiting = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let handler = Task(executorPreference: loop) { @Sendable () async throws -> [String] in
            await withCheckedContinuation { continuation in waiting.withLock { $0 = continuation } }
            return try names(pool)  // what the store holds when the handler goes on
        }
        while waiting.withLock({ $0 == nil }) { try await Task.sleep(for: .milliseconds(1)) }

        let poster = Task(executorPreference: loop) { @Sendable in
            try await submitAndWait(committer, name: "answer") { waiting.withLock { $0 }?.resume() }
        }
        try await poster.value
        #expect(try await handler.value == [])  // not committed yet when the handler ran
        #expect(committer.commitsLed == 1)  // and the poster did commit it, on its own thread
        #expect(try names(pool) == ["answer"])
    }

    /// Submits a synced insert of `name` and waits until its commit is known.
    private func submitAndWait(_ committer: GroupCommit, name: String, meanwhile: () -> Void) async throws {
        let (committed, heard) = AsyncStream.makeStream(of: Result<Void, any Error>.self)
        await committer.submit(.synced, { db in try db.execute(sql: "INSERT INTO t (name) VALUES (?)", arguments: [name]) },
                               meanwhile: meanwhile, completion: { heard.yield($0); heard.finish() })
        for await outcome in committed { try outcome.get() }
    }
}

/// Runs jobs one at a time in the order they arrive, on one queue: as an event loop does.
private final class SerialQueueExecutor: TaskExecutor {
    private let queue = DispatchQueue(label: "test.serial-executor")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
