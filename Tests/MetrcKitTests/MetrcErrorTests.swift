import CurlHTTP
import Foundation
import Testing
@testable import MetrcKit

@Suite struct ClassificationTests {
    private func postError(_ reply: Reply) async -> MetrcError? {
        let client = makeClient(ScriptedTransport([reply]))
        return await metrcError { try await client.postReceipts([receiptDraft(1)]) }
    }

    private func getError(_ reply: Reply) async -> MetrcError? {
        let client = makeClient(ScriptedTransport([reply]))
        return await metrcError { try await client.customerTypes() }
    }

    @Test func aValidationFailureIsRejectedWithItsRows() async {
        let error = await postError(json(400, #"[{"row":0,"message":"Sales Date Time is required."},{"Row":0,"Message":"Package not found."}]"#))
        #expect(error == .rejected([MetrcRowError(row: 0, message: "Sales Date Time is required."),
                                    MetrcRowError(row: 0, message: "Package not found.")]))
        #expect(error?.mayHaveBeenApplied == false)
        #expect(error?.isRetryable == false)
    }

    @Test func anArrayOfMessagesIsRejectedWithoutRows() async {
        let error = await postError(json(400, #"["Receipt is finalized.","Second reason"]"#))
        #expect(error == .rejected([MetrcRowError(row: nil, message: "Receipt is finalized."),
                                    MetrcRowError(row: nil, message: "Second reason")]))
    }

    @Test func aServerFaultDressedAsA400IsTransientAndMayHaveBeenAppliedForAWrite() async {
        let fault = #"{"Message":"Could not load file or assembly 'Franwell.Metrc, Version=1.0.0.0' or one of its dependencies."}"#
        let write = await postError(json(400, fault))
        guard case .transient(let message, mayHaveBeenApplied: true) = write else {
            Issue.record("expected transient applied, got \(String(describing: write))")
            return
        }
        #expect(message.contains("Could not load file or assembly"))
        #expect(write?.isRetryable == true)

        let read = await getError(json(400, fault))
        guard case .transient(_, mayHaveBeenApplied: false) = read else {
            Issue.record("expected transient not applied, got \(String(describing: read))")
            return
        }
    }

    @Test func a400WithoutJSONIsTransient() async {
        let error = await postError(text(400, "<html><body><h1>Bad Request</h1></body></html>"))
        guard case .transient(let message, mayHaveBeenApplied: true) = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
        #expect(message.contains("Bad Request"))
        #expect(!message.contains("<h1>"))
    }

    @Test func a503WithAnHTMLPageIsTransientAppliedOnlyForWrites() async {
        let page = "<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>The service is unavailable.</body></html>"
        let write = await postError(text(503, page))
        guard case .transient(let message, mayHaveBeenApplied: true) = write else {
            Issue.record("got \(String(describing: write))")
            return
        }
        #expect(message.hasPrefix("HTTP 503"))
        #expect(message.contains("Service Unavailable"))

        let read = await getError(text(503, page))
        guard case .transient(_, mayHaveBeenApplied: false) = read else {
            Issue.record("got \(String(describing: read))")
            return
        }
    }

    @Test func a500IsTransient() async {
        let error = await postError(json(500, #"{"Message":"An error has occurred."}"#))
        #expect(error == .transient("HTTP 500: {\"Message\":\"An error has occurred.\"}", mayHaveBeenApplied: true))
    }

    @Test func unauthorizedAndForbiddenAreNeverRetried() async {
        let unauthorized = await postError(json(401, #"{"Message":"Authorization has been denied for this request."}"#))
        #expect(unauthorized == .unauthorized(status: 401, message: "Authorization has been denied for this request."))
        #expect(unauthorized?.isRetryable == false)
        #expect(unauthorized?.mayHaveBeenApplied == false)

        let forbidden = await getError(text(403, ""))
        #expect(forbidden == .unauthorized(status: 403, message: nil))
    }

    @Test func tooManyObjectsIsOneRowlessRejection() async {
        let error = await postError(text(413, "Request Entity Too Large", contentType: "text/plain"))
        guard case .rejected(let rows) = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
        #expect(rows.count == 1)
        #expect(rows[0].row == nil)
        #expect(rows[0].message.contains("too many objects"))
    }

    @Test func notFoundOnAWriteIsThrown() async {
        let client = makeClient(ScriptedTransport([json(404, "")]))
        let error = await metrcError { try await client.archiveReceipt(id: 1) }
        #expect(error == .notFound)
    }

    @Test func aRequestThatNeverLeftIsTransientAndNotApplied() async {
        let write = await postError(.failure(.notSent("Couldn't connect to server")))
        #expect(write == .transient("not sent: Couldn't connect to server", mayHaveBeenApplied: false))
        let read = await getError(.failure(.notSent("Couldn't resolve host name")))
        #expect(read?.mayHaveBeenApplied == false)
    }

    @Test func noAnswerToAWriteIsAmbiguousButToAReadMerelyTransient() async {
        let write = await postError(.failure(.noAnswer("Operation timed out after 20000 milliseconds")))
        #expect(write == .ambiguous("Operation timed out after 20000 milliseconds"))
        #expect(write?.mayHaveBeenApplied == true)
        #expect(write?.isRetryable == true)

        let read = await getError(.failure(.noAnswer("Operation timed out")))
        #expect(read == .transient("no answer: Operation timed out", mayHaveBeenApplied: false))
    }

    @Test func anUndecodableSuccessIsInvalidResponse() async {
        let client = makeClient(ScriptedTransport([json(200, #"[{"Id":"not a number","Label":"x"}]"#)]))
        let error = await metrcError { try await client.activePackages(lastModifiedSince: nil, until: Date()) }
        guard case .invalidResponse = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
        #expect(error?.isRetryable == true)
        #expect(error?.mayHaveBeenApplied == true)
    }

    @Test func mayHaveBeenAppliedAndRetryability() {
        let table: [(MetrcError, applied: Bool, retryable: Bool)] = [
            (.rejected([]), false, false),
            (.unauthorized(status: 401, message: nil), false, false),
            (.rateLimited(retryAfter: nil), false, true),
            (.transient("x", mayHaveBeenApplied: true), true, true),
            (.transient("x", mayHaveBeenApplied: false), false, true),
            (.ambiguous("x"), true, true),
            (.notFound, false, false),
            (.invalidResponse("x"), true, true),
        ]
        for (error, applied, retryable) in table {
            #expect(error.mayHaveBeenApplied == applied, "\(error)")
            #expect(error.isRetryable == retryable, "\(error)")
        }
    }
}

@Suite struct CurlSmokeTests {
    @Test func aPostToNothingListeningIsTransientAndNotApplied() async {
        var configuration = testConfiguration(baseURL: "http://127.0.0.1:1")
        configuration.requestTimeout = .seconds(5)
        let client = MetrcClient(configuration: configuration, transport: CurlHTTPClient())
        let error = await metrcError { try await client.postReceipts([receiptDraft(1)]) }
        guard case .transient(_, mayHaveBeenApplied: false) = error else {
            Issue.record("expected transient, not applied; got \(String(describing: error))")
            return
        }
    }
}
