import Dispatch
import Foundation
import MetrcSimulator
import Synchronization

/// What must not outlive the bench, however it ends: child processes and the temporary data folder.
///
/// The normal path stops children and removes the folder itself; this registry is for the other paths
/// (Ctrl-C, SIGTERM, the watchdog), which run on threads of their own and then exit the process.
public final class Leftovers: Sendable {
    private struct State: Sendable {
        var pids: Set<pid_t> = []
        var directory: String?
        var keepDirectory = false
        /// Names the program in what it prints when it gives up.
        var program = "till-load"
    }

    /// The executable's name, for what it prints when it gives up.
    public func name(_ program: String) { state.withLock { $0.program = program } }

    private let state = Mutex(State())

    public func track(_ pid: pid_t) { state.withLock { _ = $0.pids.insert(pid) } }
    public func untrack(_ pid: pid_t) { state.withLock { _ = $0.pids.remove(pid) } }

    public func track(directory: String, keep: Bool) {
        state.withLock {
            $0.directory = directory
            $0.keepDirectory = keep
        }
    }

    /// SIGKILLs every tracked child and removes the folder (unless asked to keep it).
    public func removeAll() {
        let (pids, directory) = state.withLock { state in
            defer { state.pids.removeAll() }
            return (state.pids, state.keepDirectory ? nil : state.directory)
        }
        for pid in pids { kill(pid, SIGKILL) }
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Cleans up and exits at once; for signals and the watchdog, when the async code may be stuck.
    public func abandon(_ message: String, status: Int32) -> Never {
        FileHandle.standardError.write(Data("\(state.withLock { $0.program }): \(message)\n".utf8))
        removeAll()
        exit(status)
    }

    /// Ctrl-C or SIGTERM: kill the children before going, so no `till serve` is left holding its socket.
    /// The caller keeps the sources for the life of the process: a released source stops delivering.
    public func installSignalHandlers() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [self] in
                abandon("interrupted (signal \(signalNumber)); children killed", status: 128 + signalNumber)
            }
            source.resume()
            return source
        }
    }

    /// The last resort against a hang anywhere: past `limit`, kill the children and exit non-zero.
    public func startWatchdog(after limit: Duration) {
        let seconds = Double(limit.components.seconds)
        Thread.detachNewThread { [self] in
            Thread.sleep(forTimeInterval: seconds)
            abandon("watchdog: the run did not finish within \(Int(seconds)) s; children killed", status: 3)
        }
    }
}

/// The children and folder of this process's run.
public let leftovers = Leftovers()

/// Raised when something the bench waits for does not happen in time.
public struct TimedOut: Error, CustomStringConvertible {
    public var what: String
    public var description: String { "timed out: \(what)" }
}

/// The operation's value, or `TimedOut` once `limit` has passed. The operation is cancelled then, but not
/// awaited: a task group would wait for an operation that ignores cancellation, which is what this guards against.
public func withTimeout<T: Sendable>(_ limit: Duration, _ what: String,
                              _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let (answers, answer) = AsyncStream.makeStream(of: Result<T, any Error>.self)
    let work = Task {
        do { answer.yield(.success(try await operation())) } catch { answer.yield(.failure(error)) }
    }
    let timer = Task {
        try? await Task.sleep(for: limit)
        answer.yield(.failure(TimedOut(what: what)))
    }
    defer {
        work.cancel()
        timer.cancel()
        answer.finish()
    }
    for await first in answers { return try first.get() }
    throw CancellationError()
}

/// One run (the bench's, the chaos run's) in a temporary folder of its own beside a simulator in this process:
/// `body` gets both and returns the exit status (2 when it throws); then the simulator stops, and whatever
/// `till serve` is left is killed and the folder removed (unless `keep`).
public func withRunFolder(_ program: String, keep: Bool,
                          _ body: (SimulatorHost, _ directory: String) async throws -> Int32) async -> Int32 {
    let runId = String(UUID().uuidString.prefix(8)).lowercased()
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(program)-\(runId)").path
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        FileHandle.standardError.write(Data("\(program): cannot create \(directory): \(error)\n".utf8))
        return 2
    }
    leftovers.track(directory: directory, keep: keep)
    let host = SimulatorHost(simulation: MetrcSimulation(configuration: SimulatorConfiguration()))
    let status: Int32
    do {
        status = try await body(host, directory)
    } catch {
        FileHandle.standardError.write(Data("\(program): \(error)\n".utf8))
        status = 2
    }
    try? await host.stop()
    leftovers.removeAll()  // any `till serve` still running (only after an error), and the folder
    if keep { FileHandle.standardError.write(Data("\(program): data kept in \(directory)\n".utf8)) }
    return status
}
