import Testing
import TillDomain

/// `Task.value(within:)`: the task's value when it comes in time, nil only when the limit passes first.
@Suite struct DeadlineTests {
    @Test func aValueThatComesInTimeIsNeverTakenForATimeOut() async {
        // The timer it cancels must not answer nil before the value does: on two busy cores that race was lost
        // now and then (a patient status fetched in time answered as stale, "0 s old").
        var timedOut = 0
        for _ in 0..<20_000 {
            let task = Task<Int, Never> { 7 }
            if await task.value(within: .seconds(30)) == nil { timedOut += 1 }
        }
        #expect(timedOut == 0)
    }

    @Test func aValueThatComesTooLateIsNil() async {
        let task = Task<Int, Never> {
            try? await Task.sleep(for: .seconds(2))
            return 7
        }
        #expect(await task.value(within: .milliseconds(50)) == nil)
        #expect(await task.value == 7)  // it ran on
    }
}
