import Dispatch
import NIOCore
import NIOPosix
import Testing
import TillReporter
@testable import TillAPI

/// A connection's task runs on its channel's event loop, and stays there when an answer (libcurl's, say)
/// resumes it from another thread; so does a task started with the caller's executor (the fresh-sale poster).
@Suite struct EventLoopPinningTests {
    /// Suspends until another thread resumes it, as an answer from libcurl's transfer thread does.
    private func answerFromAnotherThread() async {
        await withCheckedContinuation { continuation in DispatchQueue.global().async { continuation.resume() } }
    }

    @Test func aTaskPreferringTheLoopResumesOnItWhateverThreadAnswers() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let executor = EventLoopTaskExecutor(loop)
        let seen = await withTaskExecutorPreference(executor) { () async -> [Bool] in
            var seen = [loop.inEventLoop]
            await answerFromAnotherThread()
            seen.append(loop.inEventLoop)
            return seen
        }
        #expect(seen == [true, true])
        try await group.shutdownGracefully()
    }

    @Test func aTaskStartedWithTheCallersExecutorRunsOnTheCallersLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let executor = EventLoopTaskExecutor(loop)
        let poster = CallerExecutor.$current.withValue(executor) {
            Task(executorPreference: CallerExecutor.current) { () async -> [Bool] in
                var seen = [loop.inEventLoop]
                await answerFromAnotherThread()
                seen.append(loop.inEventLoop)
                return seen
            }
        }
        #expect(await poster.value == [true, true])
        let unpinned = Task(executorPreference: CallerExecutor.current) { loop.inEventLoop }  // no caller's loop here
        #expect(await unpinned.value == false)
        try await group.shutdownGracefully()
    }
}
