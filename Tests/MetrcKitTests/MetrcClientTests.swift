import CurlHTTP
import Foundation
import Synchronization
import Testing
@testable import MetrcKit

@Suite struct ChunkingTests {
    @Test func twentyThreeReceiptsArePostedAsThreeChunksAndTheirIdsComeBackInOrder() async throws {
        let transport = ScriptedTransport([
            json(200, #"{"Ids":[1,2,3,4,5,6,7,8,9,10],"Warnings":null}"#),
            json(200, #"{"Ids":[11,12,13,14,15,16,17,18,19,20],"Warnings":null}"#),
            json(200, #"{"ids":[21,22,23]}"#),
        ])
        let client = makeClient(transport)

        let ids = try await client.postReceipts((1...23).map(receiptDraft))

        #expect(ids == Array(1...23))
        let requests = transport.requests
        #expect(requests.map(\.method) == ["POST", "POST", "POST"])
        #expect(requests.map(path) == Array(repeating: "/sales/v2/receipts", count: 3))
        #expect(requests.map { bodyArray($0).count } == [10, 10, 3])
        let sentNumbers = requests.flatMap { bodyArray($0).map { $0["ExternalReceiptNumber"] as? String } }
        #expect(sentNumbers == (1...23).map { "TILL-\($0)" })
    }

    @Test func chunkSizeFollowsTheConfiguration() async throws {
        let transport = ScriptedTransport([json(200, ""), json(200, ""), json(200, "")])
        let client = makeClient(transport) { $0.maxObjectsPerRequest = 2 }
        try await client.updateReceipts((1...5).map { MetrcReceiptUpdate(id: Int64($0), receipt: receiptDraft($0)) })
        #expect(transport.requests.map { bodyArray($0).count } == [2, 2, 1])
        #expect(transport.requests.allSatisfy { $0.method == "PUT" })
    }

    @Test func aChunkAcceptedWithoutIdsContributesNoIds() async throws {
        let transport = ScriptedTransport([
            json(200, #"{"Ids":[1,2,3,4,5,6,7,8,9,10]}"#),
            json(200, ""),
        ])
        let client = makeClient(transport)
        let ids = try await client.postReceipts((1...12).map(receiptDraft))
        #expect(ids == Array(1...10))
    }

    @Test func idsThatCannotBeAlignedAreNotGuessed() async throws {
        let transport = ScriptedTransport([json(200, #"{"Ids":[7]}"#)])
        let client = makeClient(transport)
        let outcomes = await client.postReceiptsByChunk((1...2).map(receiptDraft))
        #expect(outcomes == [MetrcChunkOutcome(range: 0..<2, result: .success([nil, nil]))])
    }

    @Test func rejectedRowsIndexTheWholeArrayNotTheChunk() async throws {
        let transport = ScriptedTransport([
            json(200, #"{"Ids":[1,2,3,4,5,6,7,8,9,10]}"#),
            json(400, #"[{"row":2,"message":"Package 1A40 has insufficient quantity"}]"#),
        ])
        let client = makeClient(transport)
        let error = await metrcError { try await client.postReceipts((1...23).map(receiptDraft)) }
        #expect(error == .rejected([MetrcRowError(row: 12, message: "Package 1A40 has insufficient quantity")]))
        #expect(transport.requests.count == 2, "the third chunk is not sent after a failure")
    }

    @Test func byChunkReportsEachChunkSoAppliedOnesAreKnown() async throws {
        let transport = ScriptedTransport([
            json(200, #"{"Ids":[1,2,3,4,5,6,7,8,9,10]}"#),
            json(400, #"[{"row":0,"message":"bad"}]"#),
            json(200, #"{"Ids":[21,22,23]}"#),
        ])
        let client = makeClient(transport)
        let outcomes = await client.postReceiptsByChunk((1...23).map(receiptDraft))
        #expect(outcomes.map(\.range) == [0..<10, 10..<20, 20..<23])
        #expect(outcomes[0].result == .success((1...10).map { Int64($0) }))
        #expect(outcomes[1].result == .failure(.rejected([MetrcRowError(row: 10, message: "bad")])))
        #expect(outcomes[2].result == .success([21, 22, 23]))
    }

    @Test func byChunkStopsSendingAfterAnAmbiguousChunk() async throws {
        let transport = ScriptedTransport([.failure(.noAnswer("timed out")), json(200, #"{"Ids":[1]}"#)])
        let client = makeClient(transport)
        let outcomes = await client.postReceiptsByChunk((1...11).map(receiptDraft))
        #expect(outcomes[0].result == .failure(.ambiguous("timed out")))
        #expect(outcomes[1].result == .failure(.transient("not sent: an earlier chunk failed", mayHaveBeenApplied: false)))
        #expect(transport.requests.count == 1)
    }

    @Test func finalizeSendsIdObjectsInChunks() async throws {
        let transport = ScriptedTransport([json(200, ""), json(200, "")])
        let client = makeClient(transport)
        try await client.finalizeReceipts(ids: Array(1...11))
        #expect(transport.requests.map(path) == ["/sales/v2/receipts/finalize", "/sales/v2/receipts/finalize"])
        #expect(String(decoding: transport.requests[1].body ?? Data(), as: UTF8.self) == #"[{"Id":11}]"#)
        #expect(header(transport.requests[0], "Content-Type") == "application/json")
    }

    @Test func unfinalizeAndArchiveUseTheirPaths() async throws {
        let transport = ScriptedTransport([json(200, ""), json(200, "")])
        let client = makeClient(transport)
        try await client.unfinalizeReceipts(ids: [5])
        try await client.archiveReceipt(id: 5)
        #expect(transport.requests.map { "\($0.method) \(path($0))" }
            == ["PUT /sales/v2/receipts/unfinalize", "DELETE /sales/v2/receipts/5"])
    }

    @Test func patientCheckInsArePostedAndTheirIdsReturned() async throws {
        let transport = ScriptedTransport([json(200, #"{"Ids":[77]}"#)])
        let client = makeClient(transport)
        let ids = try await client.postPatientCheckIns([
            MetrcPatientCheckInDraft(patientLicenseNumber: "P-1234-5678", checkInLocationId: 3, checkInDate: "2026-11-22"),
        ])
        #expect(ids == [77])
        #expect(path(transport.requests[0]) == "/patient-checkins/v2/")
        #expect(bodyArray(transport.requests[0]).first?["CheckInLocationId"] as? Int == 3)
    }

    @Test func aCheckInListIsThatDaysEvenWhenMetrcIgnoresTheDateFilter() async throws {
        let transport = ScriptedTransport([json(200, #"""
            {"Data":[{"Id":31001,"PatientLicenseNumber":"P-1","CheckInLocationId":3,"CheckInDate":"2026-11-19T00:00:00"},
                     {"Id":31002,"PatientLicenseNumber":"P-1","CheckInLocationId":3,"CheckInDate":"2026-11-22"},
                     {"Id":31003,"PatientLicenseNumber":"P-2","CheckInLocationId":3}],"TotalPages":1}
            """#)])
        let client = makeClient(transport)
        let listed = try await client.patientCheckIns(on: "2026-11-22")
        #expect(listed.map(\.id) == [31002, 31003])
        #expect(query(transport.requests[0])["checkinDateStart"] == "2026-11-22")
        #expect(query(transport.requests[0])["checkinDateEnd"] == "2026-11-22")
    }
}

@Suite struct PagingTests {
    @Test func everyPageIsFetchedUntilTotalPages() async throws {
        func page(_ number: Int, ids: ClosedRange<Int>) -> Reply {
            let data = ids.map { #"{"Id":\#($0),"Label":"1A40\#($0)","Quantity":1,"UnitOfMeasureName":"Each","IsOnHold":false}"# }
            return json(200, #"{"Data":[\#(data.joined(separator: ","))],"Total":45,"TotalRecords":45,"PageSize":20,"RecordsOnPage":\#(ids.count),"Page":\#(number),"CurrentPage":\#(number),"TotalPages":3}"#)
        }
        // Pages after the first go several at a time: each is answered by the page it asks for.
        let pages = [1: page(1, ids: 1...20), 2: page(2, ids: 21...40), 3: page(3, ids: 41...45)]
        let transport = ScriptedTransport(handler: { request in pages[Int(query(request)["pageNumber"] ?? "") ?? 0]! })
        let client = makeClient(transport)

        let packages = try await client.activePackages(lastModifiedSince: nil, until: Date())

        #expect(packages.map(\.id) == (1...45).map { Int64($0) }, "in page order, whatever order the answers came in")
        let queries = transport.requests.map(query)
        #expect(queries.first?["pageNumber"] == "1", "the first page first: it says how many there are")
        #expect(queries.compactMap { $0["pageNumber"] }.sorted() == ["1", "2", "3"])
        #expect(queries.allSatisfy { $0["pageSize"] == "20" && $0["licenseNumber"] == "402R-X0001" })
        #expect(transport.requests.map(path) == Array(repeating: "/packages/v2/active", count: 3))
    }

    @Test func aBareArrayIsTheWholeList() async throws {
        let transport = ScriptedTransport([
            json(200, #"[{"Id":1,"Label":"A","Quantity":2.5,"UnitOfMeasureName":"Grams","IsOnHold":true}]"#),
        ])
        let client = makeClient(transport)
        let packages = try await client.activePackages(lastModifiedSince: nil, until: Date())
        #expect(packages == [MetrcPackage(id: 1, label: "A", quantity: Decimal(string: "2.5")!, unitOfMeasureName: "Grams", isOnHold: true)])
        #expect(transport.requests.count == 1)
    }

    @Test func withoutTotalPagesAShortPageIsTheLast() async throws {
        let full = (1...20).map { #"{"id":\#($0),"label":"L\#($0)","quantity":1,"unitOfMeasureName":"Each"}"# }
        let transport = ScriptedTransport([
            json(200, #"{"data":[\#(full.joined(separator: ","))]}"#),
            json(200, #"{"data":[{"id":21,"label":"L21","quantity":1,"unitOfMeasureName":"Each"}]}"#),
        ])
        let client = makeClient(transport)
        let packages = try await client.activePackages(lastModifiedSince: nil, until: Date())
        #expect(packages.count == 21)
        #expect(transport.requests.count == 2)
    }

    @Test func customerTypesAcceptAnArrayOrAnEnvelopeOfStrings() async throws {
        let transport = ScriptedTransport([
            json(200, #"["Consumer","Patient"]"#),
            json(200, #"{"Data":["Consumer","Patient","Caregiver"],"TotalPages":1}"#),
        ])
        let client = makeClient(transport)
        #expect(try await client.customerTypes() == ["Consumer", "Patient"])
        #expect(try await client.customerTypes() == ["Consumer", "Patient", "Caregiver"])
        #expect(transport.requests.map(path) == ["/sales/v2/customertypes", "/sales/v2/customertypes"])
    }

    @Test func unitsOfMeasureDecode() async throws {
        let transport = ScriptedTransport([
            json(200, #"[{"QuantityType":"WeightBased","Name":"Grams","Abbreviation":"g"},{"name":"Each"}]"#),
        ])
        let client = makeClient(transport)
        let units = try await client.unitsOfMeasure()
        #expect(units == [MetrcUnitOfMeasure(name: "Grams", quantityType: "WeightBased", abbreviation: "g"),
                          MetrcUnitOfMeasure(name: "Each")])
        #expect(path(transport.requests[0]) == "/unitsofmeasure/v2/active")
    }
}

@Suite struct DateWindowTests {
    @Test func lastModifiedRangesAreSplitIntoWindowsOfAtMostADay() async throws {
        let transport = ScriptedTransport([json(200, "[]"), json(200, "[]"), json(200, "[]")])
        let client = makeClient(transport)
        let since = date("2026-11-20T06:00:00Z")
        _ = try await client.activePackages(lastModifiedSince: since, until: since.addingTimeInterval(50 * 3600))
        let windows = transport.requests.map(query).map { [$0["lastModifiedStart"]!, $0["lastModifiedEnd"]!] }
        #expect(windows == [
            ["2026-11-20T06:00:00Z", "2026-11-21T06:00:00Z"],
            ["2026-11-21T06:00:00Z", "2026-11-22T06:00:00Z"],
            ["2026-11-22T06:00:00Z", "2026-11-22T08:00:00Z"],
        ])
    }

    @Test func receiptsBySalesDateUseWindowsPagesAndDropEdgeDuplicates() async throws {
        let transport = ScriptedTransport([
            json(200, #"[{"Id":1,"ExternalReceiptNumber":"A"},{"Id":2}]"#),
            json(200, #"[{"Id":2,"IsFinal":true},{"Id":3}]"#),
        ])
        let client = makeClient(transport)
        let start = date("2026-11-20T00:00:00Z")
        let receipts = try await client.receipts(active: false, salesDateStart: start, salesDateEnd: start.addingTimeInterval(30 * 3600))
        #expect(receipts.map(\.id) == [1, 2, 3])
        #expect(receipts[1].isFinal == true, "the later copy wins")
        #expect(transport.requests.map(path) == ["/sales/v2/receipts/inactive", "/sales/v2/receipts/inactive"])
        let first = query(transport.requests[0])
        #expect(first["salesDateStart"] == "2026-11-20T00:00:00Z")
        #expect(first["salesDateEnd"] == "2026-11-21T00:00:00Z")
        #expect(first["lastModifiedStart"] == nil)
        #expect(first["pageNumber"] == "1")
    }

    @Test func receiptsByLastModifiedUseTheirOwnFilters() async throws {
        let transport = ScriptedTransport([json(200, "[]")])
        let client = makeClient(transport)
        let start = date("2026-11-20T00:00:00Z")
        _ = try await client.receipts(active: true, lastModifiedStart: start, lastModifiedEnd: start.addingTimeInterval(600))
        let items = query(transport.requests[0])
        #expect(path(transport.requests[0]) == "/sales/v2/receipts/active")
        #expect(items["lastModifiedStart"] == "2026-11-20T00:00:00Z")
        #expect(items["lastModifiedEnd"] == "2026-11-20T00:10:00Z")
        #expect(items["salesDateStart"] == nil)
    }

    @Test func windowsCoverTheRangeExactly() {
        let start = date("2026-03-01T10:00:00.400Z")
        let windows = MetrcClient.windows(from: start, to: start.addingTimeInterval(48 * 3600))
        #expect(windows.count == 3, "48 h plus the widening to whole seconds")
        #expect(windows.first?.start == date("2026-03-01T10:00:00Z"))
        #expect(windows.last?.end == date("2026-03-03T10:00:01Z"))
        #expect(zip(windows, windows.dropFirst()).allSatisfy { $0.end == $1.start })
        #expect(windows.allSatisfy { $0.end.timeIntervalSince($0.start) <= 24 * 3600 })
        #expect(MetrcClient.windows(from: start, to: start).isEmpty)
    }
}

@Suite struct RateLimitTests {
    @Test func retryAfterSecondsIsWaitedOutThenTheCallSucceeds() async throws {
        let clock = TestClock()
        let transport = ScriptedTransport([json(429, "", headers: ["retry-after": "2"]), json(200, #"["Consumer"]"#)])
        let client = makeClient(transport, clock: clock)
        #expect(try await client.customerTypes() == ["Consumer"])
        #expect(clock.sleeps == [.seconds(2)])
        #expect(transport.requests.count == 2)
    }

    @Test func aPostIsRetriedAfterA429BecauseNothingWasApplied() async throws {
        let clock = TestClock()
        let transport = ScriptedTransport([json(429, "", headers: ["retry-after": "1"]), json(200, #"{"Ids":[9]}"#)])
        let client = makeClient(transport, clock: clock)
        #expect(try await client.postReceipts([receiptDraft(1)]) == [9])
        #expect(transport.requests.count == 2)
        #expect(transport.requests[0].body == transport.requests[1].body)
    }

    @Test func withoutRetryAfterTheBackoffIsJitteredWithinBounds() async throws {
        let clock = TestClock()
        let transport = ScriptedTransport([json(429, ""), json(429, ""), json(200, "[]")])
        let client = makeClient(transport, clock: clock)
        _ = try await client.customerTypes()
        let sleeps = clock.sleeps
        #expect(sleeps.count == 2)
        #expect(sleeps[0] >= .milliseconds(125) && sleeps[0] <= .milliseconds(375))
        #expect(sleeps[1] >= .milliseconds(250) && sleeps[1] <= .milliseconds(750))
    }

    @Test func backoffIsCapped() {
        let cap = MetrcClient.backoff(attempt: 20, base: .milliseconds(250), cap: .seconds(10), jitter: 1.5)
        #expect(cap == .seconds(10))
        #expect(MetrcClient.backoff(attempt: 0, base: .milliseconds(250), cap: .seconds(10), jitter: 0.5) == .milliseconds(125))
        #expect(MetrcClient.backoff(attempt: 3, base: .milliseconds(250), cap: .seconds(10), jitter: 1) == .seconds(2))
    }

    @Test func tooMany429sThrowRateLimited() async throws {
        let clock = TestClock()
        let transport = ScriptedTransport(Array(repeating: json(429, "", headers: ["Retry-After": "1"]), count: 6))
        let client = makeClient(transport, clock: clock)
        let error = await metrcError { try await client.postReceipts([receiptDraft(1)]) }
        #expect(error == .rateLimited(retryAfter: .seconds(1)))
        #expect(error?.mayHaveBeenApplied == false)
        #expect(error?.isRetryable == true)
        #expect(transport.requests.count == 5, "one try plus maxRateLimitRetries (4)")
        #expect(clock.sleeps == Array(repeating: .seconds(1), count: 4))
    }

    @Test func aRetryAfterTooLongToWaitIsHandedToTheCaller() async throws {
        let clock = TestClock()
        let transport = ScriptedTransport([json(429, "", headers: ["retry-after": "600"])])
        let client = makeClient(transport, clock: clock)
        let error = await metrcError { try await client.customerTypes() }
        #expect(error == .rateLimited(retryAfter: .seconds(600)))
        #expect(clock.sleeps.isEmpty)
    }

    @Test func retryAfterIsReadAsSecondsOrHTTPDate() {
        let now = date("2015-10-21T07:28:00Z")
        #expect(MetrcClient.retryAfter("3", now: now) == .seconds(3))
        #expect(MetrcClient.retryAfter(" 0 ", now: now) == .zero)
        #expect(MetrcClient.retryAfter("Wed, 21 Oct 2015 07:28:05 GMT", now: now) == .seconds(5))
        #expect(MetrcClient.retryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now: now) == .zero)
        #expect(MetrcClient.retryAfter("soon", now: now) == nil)
        #expect(MetrcClient.retryAfter(nil, now: now) == nil)
    }

    @Test func getsAreSpreadToTheConfiguredRate() async throws {
        let clock = TestClock()
        let transport = ScriptedTransport(handler: { _ in json(200, "[]") })
        let client = makeClient(transport, clock: clock) { $0.getRequestsPerSecond = 2 }
        for _ in 1...5 { _ = try await client.customerTypes() }
        // Two per second: the third and the fifth request each wait for the window (a second and a margin) to move on.
        #expect(clock.sleeps == [.milliseconds(1050), .milliseconds(1050)])
        #expect(transport.requests.count == 5)
    }

    @Test func writesHaveTheirOwnOptionalRate() async throws {
        let clock = TestClock()
        let transport = ScriptedTransport(handler: { _ in json(200, "") })
        let unlimited = makeClient(transport, clock: clock) { $0.getRequestsPerSecond = 1 }
        for id in 1...3 { try await unlimited.archiveReceipt(id: Int64(id)) }
        #expect(clock.sleeps.isEmpty, "no write limit by default")

        let limited = makeClient(transport, clock: clock) { $0.writeRequestsPerSecond = 1 }
        for id in 1...3 { try await limited.archiveReceipt(id: Int64(id)) }
        #expect(clock.sleeps == [.milliseconds(1050), .milliseconds(1050)])
    }

    @Test func requestsInFlightNeverExceedTheCap() async throws {
        let counter = InFlightCounter()
        let transport = ScriptedTransport(handler: { _ in json(200, "[]") })
        let slow = SlowTransport(inner: transport, counter: counter)
        var configuration = testConfiguration()
        configuration.maxConcurrentRequests = 3
        let client = MetrcClient(configuration: configuration, transport: slow, sleep: { _ in }, now: { .now })
        try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 1...24 { group.addTask { try await client.customerTypes() } }
            try await group.waitForAll()
        }
        #expect(transport.requests.count == 24)
        #expect((2...3).contains(counter.peak), "calls overlapped, but never more than the cap")
        #expect(counter.current == 0)
    }
}

/// Counts transfers in flight and remembers the most seen at once.
final class InFlightCounter: Sendable {
    private let state = Mutex<(current: Int, peak: Int)>((0, 0))
    func enter() { state.withLock { $0.current += 1; $0.peak = max($0.peak, $0.current) } }
    func leave() { state.withLock { $0.current -= 1 } }
    var peak: Int { state.withLock { $0.peak } }
    var current: Int { state.withLock { $0.current } }
}

/// A transport that stays busy for a few scheduler turns, so that concurrent calls overlap.
struct SlowTransport: HTTPTransport {
    let inner: ScriptedTransport
    let counter: InFlightCounter

    func send(_ request: HTTPRequest) async throws(HTTPTransportError) -> HTTPResponse {
        counter.enter()
        defer { counter.leave() }
        for _ in 0..<20 { await Task.yield() }
        return try await inner.send(request)
    }
}

@Suite struct RequestShapeTests {
    @Test func everyRequestCarriesBasicAuthAndFacilityScopedOnesTheLicense() async throws {
        let transport = ScriptedTransport([
            json(200, #"[{"License":{"Number":"402R-X0001"}}]"#),
            json(200, "[]"),
            json(200, #"{"Ids":[1]}"#),
        ])
        let client = makeClient(transport)
        _ = try await client.facilities()
        _ = try await client.customerTypes()
        _ = try await client.postReceipts([receiptDraft(1)])

        let expected = "Basic " + Data("VENDOR-secret-key:USER-secret-key".utf8).base64EncodedString()
        for request in transport.requests {
            #expect(header(request, "Authorization") == expected)
            #expect(header(request, "Accept") == "application/json")
        }
        #expect(path(transport.requests[0]) == "/facilities/v2/")
        #expect(query(transport.requests[0])["licenseNumber"] == nil, "facilities are not facility-scoped")
        #expect(query(transport.requests[1])["licenseNumber"] == "402R-X0001")
        #expect(query(transport.requests[2])["licenseNumber"] == "402R-X0001")
        #expect(header(transport.requests[1], "Content-Type") == nil)
        #expect(header(transport.requests[2], "Content-Type") == "application/json")
        #expect(transport.requests.allSatisfy { $0.url.hasPrefix("https://sandbox-api-co.metrc.com/") })
        #expect(transport.requests.allSatisfy { $0.timeout == .seconds(20) })
    }

    @Test func queryValuesAndPathSegmentsArePercentEncoded() async throws {
        let transport = ScriptedTransport([json(200, "[]"), json(404, "")])
        let client = makeClient(transport) {
            $0.licenseNumber = "LIC+1 2&x"
            $0.baseURL = "http://127.0.0.1:8123/"
        }
        _ = try await client.customerTypes()
        _ = try await client.receipt(externalNumber: "TILL/7+8 9")
        #expect(transport.requests[0].url == "http://127.0.0.1:8123/sales/v2/customertypes?licenseNumber=LIC%2B1%202%26x")
        #expect(transport.requests[1].url.hasPrefix("http://127.0.0.1:8123/sales/v2/receipts/external/TILL%2F7%2B8%209?"))
    }

    @Test func filtersEncodeTheirColons() {
        #expect(MetrcClient.percentEncoded("2026-11-22T21:05:00Z") == "2026-11-22T21%3A05%3A00Z")
        #expect(MetrcClient.percentEncoded("+02:00") == "%2B02%3A00")
    }

    @Test func keysAndPatientNumbersNeverReachTheLogs() async throws {
        let logs = LogCapture()
        let patient = "P-9988-7766-5544"
        let transport = ScriptedTransport([
            json(400, #"[{"row":0,"message":"Patient P-9988-7766-5544 is not registered"}]"#),
            json(500, "oops"),
            json(200, #"[{"PatientLicenseNumber":"P-9988-7766-5544","Active":true}]"#),
        ])
        let client = makeClient(transport, logs: logs)
        var draft = receiptDraft(1)
        draft.salesCustomerType = "Patient"
        draft.patientLicenseNumber = patient
        _ = await metrcError { try await client.postReceipts([draft]) }
        _ = await metrcError { try await client.patientStatuses(patientLicenseNumber: patient) }
        _ = try await client.patientStatuses(patientLicenseNumber: patient)

        let text = logs.text
        #expect(!text.isEmpty)
        #expect(!text.contains("VENDOR-secret-key"))
        #expect(!text.contains("USER-secret-key"))
        #expect(!text.contains(Data("VENDOR-secret-key:USER-secret-key".utf8).base64EncodedString()))
        #expect(!text.contains("Authorization"))
        #expect(!text.contains(patient))
        #expect(text.contains("5544"), "the last four stay readable")
        #expect(text.contains("method=POST") && text.contains("status=400") && text.contains("duration_ms="))
        #expect(text.contains("license=402R-X0001"))
    }

    @Test func aConfigurationDescriptionHidesTheKeys() {
        let configuration = testConfiguration()
        for rendered in [String(describing: configuration), String(reflecting: configuration), dumpText(configuration)] {
            #expect(!rendered.contains("secret"))
            #expect(rendered.contains("402R-X0001"))
        }
    }

    @Test func baseURLsFollowTheStateAndSandbox() {
        #expect(MetrcConfiguration.baseURL(state: "CO", sandbox: false) == "https://api-co.metrc.com")
        #expect(MetrcConfiguration.baseURL(state: "co", sandbox: true) == "https://sandbox-api-co.metrc.com")
    }

    private func dumpText(_ value: some Any) -> String {
        var text = ""
        dump(value, to: &text)
        return text
    }
}

@Suite struct LookupTests {
    let receiptJSON = #"{"Id":42,"ReceiptNumber":"0000042","ExternalReceiptNumber":"TILL-7","TotalPrice":12.5,"IsFinal":false}"#

    @Test(arguments: ["object", "array", "envelope"])
    func anExternalLookupAcceptsEveryShape(_ shape: String) async throws {
        let body = switch shape {
        case "object": receiptJSON
        case "array": "[\(receiptJSON)]"
        default: #"{"Data":[\#(receiptJSON)],"Total":1,"TotalPages":1}"#
        }
        let transport = ScriptedTransport([json(200, body)])
        let client = makeClient(transport)
        let receipt = try await client.receipt(externalNumber: "TILL-7")
        #expect(receipt?.id == 42)
        #expect(receipt?.totalPrice == Decimal(string: "12.5"))
        #expect(path(transport.requests[0]) == "/sales/v2/receipts/external/TILL-7")
        #expect(query(transport.requests[0])["licenseNumber"] == "402R-X0001")
    }

    @Test func anEmptyListMeansNoSuchReceipt() async throws {
        let transport = ScriptedTransport([json(200, "[]"), json(200, #"{"Data":[]}"#)])
        let client = makeClient(transport)
        #expect(try await client.receipt(externalNumber: "TILL-7") == nil)
        #expect(try await client.receipt(externalNumber: "TILL-7") == nil)
    }

    @Test func aLookupAnsweringAnotherNumberIsNotTrusted() async throws {
        let transport = ScriptedTransport([json(200, #"[{"Id":1,"ExternalReceiptNumber":"TILL-8"}]"#)])
        let client = makeClient(transport)
        let error = await metrcError { try await client.receipt(externalNumber: "TILL-7") }
        guard case .invalidResponse = error else {
            Issue.record("expected invalidResponse, got \(String(describing: error))")
            return
        }
    }

    @Test func numbersMatchWhateverTheirCaseOrSurroundingSpaces() async throws {
        let transport = ScriptedTransport([
            json(200, #"[{"Id":5,"ExternalReceiptNumber":" till-7 "}]"#),
            json(401, ""),
            json(200, #"[{"License":{"Number":" 402r-x0001"}}]"#),
        ])
        let client = makeClient(transport)
        #expect(try await client.receipt(externalNumber: "TILL-7")?.id == 5)
        // The keys reach this license as Metrc spells it, so the 401 means "not this license's receipt".
        #expect(try await client.receipt(externalNumber: "TILL-8") == nil)
    }

    @Test func anEmptyAnswerToALookupIsNotTakenAsAbsence() async throws {
        let transport = ScriptedTransport([json(200, "")])
        let client = makeClient(transport)
        let error = await metrcError { try await client.receipt(externalNumber: "TILL-7") }
        #expect(error?.isRetryable == true)
        #expect(error?.mayHaveBeenApplied == true)
    }

    @Test func notFoundIsNil() async throws {
        let transport = ScriptedTransport([json(404, ""), json(404, ""), json(404, #"{"Message":"No such package"}"#)])
        let client = makeClient(transport)
        #expect(try await client.receipt(externalNumber: "TILL-7") == nil)
        #expect(try await client.receipt(id: 9) == nil)
        #expect(try await client.package(label: "1A40") == nil)
    }

    @Test func a401WhileTheKeysWorkMeansTheReceiptIsNotThisLicensesOwn() async throws {
        let transport = ScriptedTransport([
            json(401, ""),
            json(200, #"[{"Name":"Mile High","License":{"Number":"402R-X0001","LicenseType":"Retail"},"FacilityType":{"CanSellToConsumers":true}}]"#),
        ])
        let client = makeClient(transport)
        #expect(try await client.receipt(externalNumber: "TILL-7") == nil)
        #expect(transport.requests.map(path) == ["/sales/v2/receipts/external/TILL-7", "/facilities/v2/"])
    }

    @Test func a401WithBrokenKeysIsUnauthorized() async throws {
        let transport = ScriptedTransport([json(401, ""), json(401, #"{"Message":"Authorization has been denied"}"#)])
        let client = makeClient(transport)
        let error = await metrcError { try await client.receipt(externalNumber: "TILL-7") }
        #expect(error == .unauthorized(status: 401, message: "Authorization has been denied"))
    }

    @Test func a401ForALicenseTheKeysCannotReachIsUnauthorized() async throws {
        let transport = ScriptedTransport([
            json(401, #"{"Message":"No access"}"#),
            json(200, #"[{"License":{"Number":"OTHER-LICENSE"}}]"#),
        ])
        let client = makeClient(transport)
        let error = await metrcError { try await client.receipt(externalNumber: "TILL-7") }
        #expect(error == .unauthorized(status: 401, message: "No access"))
    }

    @Test func aReceiptIsFoundById() async throws {
        let transport = ScriptedTransport([json(200, receiptJSON)])
        let client = makeClient(transport)
        let receipt = try await client.receipt(id: 42)
        #expect(receipt?.externalReceiptNumber == "TILL-7")
        #expect(path(transport.requests[0]) == "/sales/v2/receipts/42")
    }

    @Test func aPackageIsFoundByLabel() async throws {
        let transport = ScriptedTransport([json(200, #"{"Id":5,"Label":"1A4 0","Quantity":3.543690390625,"UnitOfMeasureName":"Grams","IsOnHold":false,"Item":{"Name":"Blue Dream","QuantityType":"WeightBased"}}"#)])
        let client = makeClient(transport)
        let package = try await client.package(label: "1A4 0")
        #expect(package?.quantity == Decimal(string: "3.543690390625"))
        #expect(package?.item?.name == "Blue Dream")
        #expect(path(transport.requests[0]) == "/packages/v2/1A4%200")
    }

    @Test func patientStatusesAreAListAndUnknownPatientsEmpty() async throws {
        let transport = ScriptedTransport([
            json(200, #"[{"PatientLicenseNumber":"P1","Active":true,"FlowerOuncesAvailable":1.5,"ThcOuncesAvailable":0.25,"PurchaseAmountDays":30}]"#),
            json(404, ""),
        ])
        let client = makeClient(transport)
        let statuses = try await client.patientStatuses(patientLicenseNumber: "P1")
        #expect(statuses.count == 1)
        #expect(statuses[0].flowerOuncesAvailable == Decimal(string: "1.5"))
        #expect(statuses[0].purchaseAmountDays == 30)
        #expect(try await client.patientStatuses(patientLicenseNumber: "P2").isEmpty)
        #expect(path(transport.requests[0]) == "/patients/v2/statuses/P1")
    }

    @Test func caregiverStatusListsPatientsAsStringsOrObjects() async throws {
        let transport = ScriptedTransport([
            json(200, #"{"CaregiverLicenseNumber":"C1","Active":true,"Patients":["P1","P2"]}"#),
            json(200, #"{"caregiverLicenseNumber":"C1","active":false,"patients":[{"PatientLicenseNumber":"P3"},{"patientLicenseNumber":"P4","Name":"x"}]}"#),
            json(404, ""),
        ])
        let client = makeClient(transport)
        #expect(try await client.caregiverStatus(caregiverLicenseNumber: "C1")
            == MetrcCaregiverStatus(caregiverLicenseNumber: "C1", active: true, patients: ["P1", "P2"]))
        #expect(try await client.caregiverStatus(caregiverLicenseNumber: "C1")?.patients == ["P3", "P4"])
        #expect(try await client.caregiverStatus(caregiverLicenseNumber: "C9") == nil)
        #expect(path(transport.requests[0]) == "/caregivers/v2/status/C1")
    }

    @Test func facilitiesCarryTheirLicenseAndWhatTheyMaySell() async throws {
        let transport = ScriptedTransport([json(200, #"""
            [{"HireDate":"2020-01-01","IsOwner":false,"Name":"Mile High","DisplayName":"Mile High Dispensary",
              "License":{"Number":"402R-X0001","StartDate":"2020-01-01","LicenseType":"Retail Marijuana Store"},
              "FacilityType":{"IsMedical":false,"IsRetail":true,"CanSellToConsumers":true,"CanSellToPatients":false,
                              "CanSellToCaregivers":false,"CanSellToExternalPatients":false,"CanReportPatientCheckIns":true}}]
            """#)])
        let client = makeClient(transport)
        let facilities = try await client.facilities()
        #expect(facilities == [MetrcFacility(name: "Mile High", displayName: "Mile High Dispensary", licenseNumber: "402R-X0001",
                                             licenseType: "Retail Marijuana Store", canSellToConsumers: true,
                                             canSellToPatients: false, canSellToCaregivers: false,
                                             canSellToExternalPatients: false, canReportPatientCheckIns: true)])
    }
}
