import Foundation

/// The `till` executable run as child processes: `till serve`, and one-shot commands beside it.
public struct TillExecutable: Sendable {
    public let path: String
    public let environment: [String: String]
    /// Where each child's standard error goes, appended, to show when something fails.
    public let stderrPath: String

    public init(path: String, environment: [String: String], stderrPath: String) {
        self.path = path
        self.environment = environment
        self.stderrPath = stderrPath
    }

    /// Runs a one-shot command (`terminals add …`) and returns its standard output.
    public func run(_ arguments: [String], within limit: Duration = .seconds(30)) async throws -> String {
        let outputPath = stderrPath + ".stdout"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let child = try launch(arguments, stdoutPath: outputPath)
        defer { leftovers.untrack(child.processIdentifier) }
        let status = try await waitForExit(child, within: limit, what: "till \(arguments.joined(separator: " "))")
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw LoadFailure("till \(arguments.joined(separator: " ")) exited with status \(status)\n\(stderrTail())")
        }
        return output
    }

    /// Starts `till serve` and returns once it answers GET /v1/health on its socket.
    public func serve(register: RegisterClient, within limit: Duration = .seconds(30)) async throws -> TillServer {
        let launched = ContinuousClock.now
        let process = try launch(["serve"], stdoutPath: nil)
        while ContinuousClock.now - launched < limit {
            if await register.isHealthy() {
                return TillServer(process: process, launchedAt: launched, answeredAt: .now)
            }
            guard process.isRunning else {
                leftovers.untrack(process.processIdentifier)
                throw LoadFailure("till serve exited with status \(process.terminationStatus) before answering\n\(stderrTail())")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(process.processIdentifier, SIGKILL)
        _ = try? await waitForExit(process, within: .seconds(5), what: "till serve to exit after SIGKILL")
        leftovers.untrack(process.processIdentifier)
        throw LoadFailure("till serve did not answer GET /v1/health within \(limit)\n\(stderrTail())")
    }

    /// The last lines Till wrote to standard error, indented, for an error message.
    public func stderrTail(lines: Int = 15) -> String {
        guard let text = try? String(contentsOfFile: stderrPath, encoding: .utf8), !text.isEmpty else {
            return "  (till wrote nothing to stderr)"
        }
        return text.split(separator: "\n").suffix(lines).map { "  | " + $0 }.joined(separator: "\n")
    }

    private func launch(_ arguments: [String], stdoutPath: String?) throws -> Process {
        if !FileManager.default.fileExists(atPath: stderrPath) {
            _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        }
        guard let stderr = FileHandle(forWritingAtPath: stderrPath) else {
            throw LoadFailure("cannot write \(stderrPath)")
        }
        stderr.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdoutPath.flatMap(FileHandle.init(forWritingAtPath:)) ?? FileHandle.nullDevice
        process.standardError = stderr
        // A child inherits the signal mask of the thread that spawns it, and `Process` does not reset it;
        // the concurrency pool's threads block nearly every signal. Spawn with none blocked, so that
        // `till serve` starts as it would from a shell. Twice: unblocking delivers any pending signal
        // (a SIGCHLD from an earlier child) here at once, and libdispatch's handler for it blocks the
        // signals it watches (SIGCHLD, SIGINT, SIGTERM) on this thread again.
        var none = sigset_t()
        var previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
        leftovers.track(process.processIdentifier)
        return process
    }
}

/// A running `till serve`.
public final class TillServer: Sendable {
    public let process: Process
    public let pid: pid_t
    /// When the process was started, and when it first answered on its socket.
    public let launchedAt: ContinuousClock.Instant
    public let answeredAt: ContinuousClock.Instant

    init(process: Process, launchedAt: ContinuousClock.Instant, answeredAt: ContinuousClock.Instant) {
        self.process = process
        self.pid = process.processIdentifier
        self.launchedAt = launchedAt
        self.answeredAt = answeredAt
    }

    /// The process's peak resident set (VmHWM in /proc/PID/status), in bytes; nil once it has exited.
    public func peakResidentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return kilobytes * 1024
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it has not exited within `grace`. Returns how it ended.
    @discardableResult
    public func stop(grace: Duration = .seconds(15)) async -> String {
        defer { leftovers.untrack(pid) }
        guard process.isRunning else { return "had already exited with status \(process.terminationStatus)" }
        kill(pid, SIGTERM)
        if let status = try? await waitForExit(process, within: grace, what: "till serve to exit after SIGTERM") {
            return "exited with status \(status) after SIGTERM"
        }
        kill(pid, SIGKILL)
        _ = try? await waitForExit(process, within: .seconds(5), what: "till serve to exit after SIGKILL")
        return "did not exit within \(grace) of SIGTERM; killed"
    }
}

/// Polls until the child exits; its exit status, or `TimedOut` (the child is left running).
public func waitForExit(_ process: Process, within limit: Duration, what: String) async throws -> Int32 {
    let started = ContinuousClock.now
    while process.isRunning {
        guard ContinuousClock.now - started < limit else { throw TimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(10))
    }
    return process.terminationStatus
}

/// Something went wrong that stops a run (the bench, the chaos run) from going further.
public struct LoadFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
