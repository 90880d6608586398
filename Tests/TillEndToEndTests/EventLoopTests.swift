import CurlHTTP
import NIOPosix
import Synchronization
import Testing

/// A register's connection runs on its event loop, and so does its sale's POST to Metrc, before and after
/// libcurl's transfer thread answers: Metrc's answer reaches the waiting handler without another thread.
@Suite struct EventLoopTests {
    /// Where each Metrc request was sent from, and where its caller went on once the answer came.
    final class WhereMetrcWasCalled: HTTPTransport {
        private let curl = CurlHTTPClient()
        let receiptPosts = Mutex<[(sentOnAnEventLoop: Bool, answeredOnAnEventLoop: Bool)]>([])

        func send(_ request: HTTPRequest) async throws(HTTPTransportError) -> HTTPResponse {
            let sent = MultiThreadedEventLoopGroup.currentEventLoop != nil
            let response = try await curl.send(request)
            let answered = MultiThreadedEventLoopGroup.currentEventLoop != nil
            if request.method == "POST", request.url.contains("/sales/v2/receipts") {
                receiptPosts.withLock { $0.append((sent, answered)) }
            }
            return response
        }
    }

    @Test func aSalesPostToMetrcIsSentAndAnsweredOnItsConnectionsEventLoop() async throws {
        let metrc = WhereMetrcWasCalled()
        try await TillHarness.run(metrcTransport: metrc) { till in
            for number in 1...3 {
                let answer = try await till.sell("loop-\(number)", quantity: "1", amount: "10.00")
                #expect(answer.status == 201)
            }
        }
        let posts = metrc.receiptPosts.withLock { $0 }
        #expect(posts.count == 3)
        #expect(posts.allSatisfy { $0.sentOnAnEventLoop && $0.answeredOnAnEventLoop })
    }
}
