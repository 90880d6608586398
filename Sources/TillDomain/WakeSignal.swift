import Synchronization

/// Lets one waiter sleep until woken or until a time limit, whichever comes first; a wake with nobody
/// waiting is kept for the next wait. (An `AsyncStream` will not do: cancelling a task that waits on it
/// finishes the stream for good, and every later wait returns at once.)
public final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Counts waits, so that a wait's timer can end that wait and no later one.
        var wait: UInt64 = 0
        /// A wait whose time ran out before it began to wait.
        var expired: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public func wake() {
        resumeWaiter { $0.pending = true }
    }

    /// Returns when woken, after `limit`, or when the task is cancelled.
    public func wait(upTo limit: Duration) async {
        let wait = state.withLock { state in
            state.wait += 1
            return state.wait
        }
        // The timer ends this wait only: it is not a wake, so it leaves nothing pending for the next one.
        let timer = Task { [weak self] in
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            self?.expire(wait)
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.pending || Task.isCancelled || state.expired == wait {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            wake()
        }
        state.withLock { $0.pending = false }  // a wake racing the end of this wait counts for this one
    }

    private func expire(_ wait: UInt64) {
        resumeWaiter(if: { $0.wait == wait }) { $0.expired = wait }
    }

    /// Resumes the waiter, if `applies`; with nobody waiting yet, `remember` notes it for the wait to come.
    private func resumeWaiter(if applies: (State) -> Bool = { _ in true }, orElse remember: (inout State) -> Void) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard applies(state) else { return nil }
            guard let waiter = state.waiter else {
                remember(&state)
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }
}
