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
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
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
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.wait == wait else { return nil }
            guard let waiter = state.waiter else {
                state.expired = wait
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }
}
