import Synchronization

extension Task where Failure == Never {
    /// The task's value if it finishes within `limit`, else nil at the limit; the task itself runs on.
    ///
    /// (A task group racing `task.value` against a sleep would not do: awaiting `.value` ignores
    /// cancellation, so the group would wait for the task however slow it is.)
    public func value(within limit: Duration) async -> Success? {
        let race = FirstAnswer<Success?>()
        return await withCheckedContinuation { continuation in
            race.arm(continuation)
            let timer = Task<Void, Never> {
                // Cancelled, the sleep ends at once: only a limit that really passed answers nil.
                guard (try? await Task<Never, Never>.sleep(for: limit)) != nil else { return }
                race.answer(nil)
            }
            Task<Void, Never> {
                let value = await self.value
                race.answer(value)  // before the cancel, which wakes the timer
                timer.cancel()
            }
        }
    }
}

/// Resumes a continuation with whichever answer comes first; later answers are dropped.
private final class FirstAnswer<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, Never>?>(nil)

    func arm(_ continuation: CheckedContinuation<T, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func answer(_ value: T) {
        continuation.withLock { slot in
            slot?.resume(returning: value)
            slot = nil
        }
    }
}
