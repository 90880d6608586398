import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import TillReporter

/// Runs Swift tasks' jobs on a NIO event loop.
final class EventLoopTaskExecutor: TaskExecutor {
    private let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// HTTP/1 whose connection tasks run on their channel's event loop: a request reaches its handler, and
/// the response its socket, without a hop between NIO's thread and a cooperative one (on a small VM each
/// such wake-up costs a tenth of a millisecond or more). The posting task of a fresh sale runs there too
/// (`CallerExecutor`), so Metrc's answer reaches the register's handler on the same thread.
///
/// A handler now holds its loop, not a cooperative thread, while it commits (fsync included); the count
/// is the same (one of each per core), and under concurrent sales the commits go to SQLite's writer queue.
/// Nothing on a handler's path may wait for its own loop (`EventLoopFuture.wait`): none does.
struct EventLoopPinnedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let http1: HTTP1Channel
    /// Counts the connection while it is open, and has its requests note their terminal.
    var connections: ConnectionTracker?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        http1.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        let executor = EventLoopTaskExecutor(value.channel.eventLoop)
        await CallerExecutor.$current.withValue(executor) {
            await withTaskExecutorPreference(executor) {
                guard let connections else { return await http1.handle(value: value, logger: logger) }
                await connections.serving { await http1.handle(value: value, logger: logger) }
            }
        }
    }
}

extension HTTPServerBuilder {
    static func pinnedToEventLoops(configuration: HTTP1Channel.Configuration = .init(),
                                   connections: ConnectionTracker? = nil) -> HTTPServerBuilder {
        .init { responder in
            EventLoopPinnedHTTP1Channel(http1: HTTP1Channel(responder: responder, configuration: configuration),
                                        connections: connections)
        }
    }
}
