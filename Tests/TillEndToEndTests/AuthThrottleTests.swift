import Foundation
import Testing

/// Failed bearer tokens are counted per connection; other connections and good tokens are not held up.
@Suite struct AuthThrottleTests {
    @Test func aConnectionThatFailsFiveTokensIsRefusedWith429WhileOtherConnectionsSell() async throws {
        try await TillHarness.run { till in
            let guesser = try SocketConnection(path: till.socketPath)
            for attempt in 1...5 {
                let answer = try await guesser.request("GET", "/v1/packages", token: attempt == 3 ? nil : "till_guess\(attempt)")
                #expect(answer.status == 401, "attempt \(attempt)")
            }
            // Refused whatever it sends now, the right token included: a guesser must not learn which one was right.
            for token in ["till_guess6", till.registerToken] {
                let answer = try await guesser.request("GET", "/v1/packages", token: token)
                #expect(answer.status == 429)
                #expect(answer.code == "too_many_failed_attempts")
            }
            #expect(try await guesser.request("GET", "/v1/health", token: nil).status == 200)  // public paths stay open

            let register = try SocketConnection(path: till.socketPath)
            #expect(try await register.request("GET", "/v1/packages", token: till.registerToken).status == 200)
            #expect(try await till.sell("throttle-1").status == 201)

            // A fresh connection starts from nothing.
            let again = try SocketConnection(path: till.socketPath)
            #expect(try await again.request("GET", "/v1/packages", token: "till_guess7").status == 401)
            #expect(try await again.request("GET", "/v1/packages", token: till.registerToken).status == 200)
        }
    }
}
