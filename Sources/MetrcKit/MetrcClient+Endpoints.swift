import CurlHTTP
import Foundation
import Logging

/// What happened to one chunk of a chunked write.
public struct MetrcChunkOutcome: Sendable, Equatable {
    /// The chunk's positions in the array passed to the call.
    public var range: Range<Int>
    /// On success, Metrc's Ids aligned with `range` (nil where Metrc accepted the chunk without telling its
    /// Ids, so those must be looked up by external number); on failure, why, with rows indexing the whole array.
    public var result: Result<[Int64?], MetrcError>

    public init(range: Range<Int>, result: Result<[Int64?], MetrcError>) {
        self.range = range
        self.result = result
    }
}

extension MetrcClient {
    // MARK: - Reference data

    public func facilities() async throws(MetrcError) -> [MetrcFacility] {
        let call = Call("GET", "/facilities/v2/", facilityScoped: false)
        return try await list(call, paged: false)
    }

    public func unitsOfMeasure() async throws(MetrcError) -> [MetrcUnitOfMeasure] {
        try await list(Call("GET", "/unitsofmeasure/v2/active"), paged: false)
    }

    public func customerTypes() async throws(MetrcError) -> [String] {
        try await list(Call("GET", "/sales/v2/customertypes"), paged: false)
    }

    // MARK: - Packages

    public func activePackages(lastModifiedSince: Date?, until: Date) async throws(MetrcError) -> [MetrcPackage] {
        guard let since = lastModifiedSince else {
            return try await list(Call("GET", "/packages/v2/active"), paged: true)
        }
        var found: [[MetrcPackage]] = []
        for window in Self.windows(from: since, to: until) {
            let call = Call("GET", "/packages/v2/active", query: [
                (name: "lastModifiedStart", value: MetrcLocalTime.filter(window.start)),
                (name: "lastModifiedEnd", value: MetrcLocalTime.filter(window.end)),
            ])
            found.append(try await list(call, paged: true))
        }
        return Self.merged(found, id: \.id)
    }

    public func package(label: String) async throws(MetrcError) -> MetrcPackage? {
        let call = Call("GET", "/packages/v2/" + Self.percentEncoded(label), endpoint: "/packages/v2/{label}")
        guard let response = try await lookup(call) else { return nil }
        let items = try decode(MetrcOneOrMany<MetrcPackage>.self, from: response, call).items
        return items.first { $0.label == label } ?? items.first
    }

    // MARK: - Receipts

    public func postReceipts(_ receipts: [MetrcReceiptDraft]) async throws(MetrcError) -> [Int64] {
        let outcomes = await writeInChunks("POST", "/sales/v2/receipts", receipts, stopAfterAnyFailure: true,
                                           sensitive: Self.personalNumbers)
        return try Self.idsOrFirstFailure(outcomes)
    }

    /// Like `postReceipts`, but tells what happened to each chunk instead of throwing the first failure, so
    /// that a caller posting more than `maxObjectsPerRequest` knows which receipts did reach Metrc. A
    /// rejected chunk does not stop the next; any other failure does, and the chunks after it are reported
    /// as not sent.
    public func postReceiptsByChunk(_ receipts: [MetrcReceiptDraft]) async -> [MetrcChunkOutcome] {
        await writeInChunks("POST", "/sales/v2/receipts", receipts, stopAfterAnyFailure: false,
                            sensitive: Self.personalNumbers)
    }

    public func updateReceipts(_ receipts: [MetrcReceiptUpdate]) async throws(MetrcError) {
        let outcomes = await writeInChunks("PUT", "/sales/v2/receipts", receipts, stopAfterAnyFailure: true) {
            Self.personalNumbers(in: $0.receipt)
        }
        _ = try Self.idsOrFirstFailure(outcomes)
    }

    public func receipt(id: Int64) async throws(MetrcError) -> MetrcReceipt? {
        let call = Call("GET", "/sales/v2/receipts/\(id)", endpoint: "/sales/v2/receipts/{id}")
        guard let response = try await lookup(call) else { return nil }
        let items = try decode(MetrcOneOrMany<MetrcReceipt>.self, from: response, call).items
        return items.first { $0.id == id } ?? items.first
    }

    public func receipt(externalNumber: String) async throws(MetrcError) -> MetrcReceipt? {
        let call = Call("GET", "/sales/v2/receipts/external/" + Self.percentEncoded(externalNumber),
                        endpoint: "/sales/v2/receipts/external/{number}")
        guard let response = try await lookup(call) else { return nil }
        let items = try decode(MetrcOneOrMany<MetrcReceipt>.self, from: response, call).items
        let matching = items.filter { $0.externalReceiptNumber.map { Self.sameIdentifier($0, externalNumber) } ?? true }
        if !items.isEmpty && matching.isEmpty {
            // Guessing either way is dangerous: nil invites a duplicate post, another receipt hides a lost sale.
            throw MetrcError.invalidResponse("lookup of external number \(externalNumber) answered other receipts")
        }
        return matching.first { $0.archivedDate == nil } ?? matching.first
    }

    public func receipts(active: Bool, salesDateStart: Date, salesDateEnd: Date) async throws(MetrcError) -> [MetrcReceipt] {
        try await receipts(active: active, filter: "salesDate", from: salesDateStart, to: salesDateEnd)
    }

    public func receipts(active: Bool, lastModifiedStart: Date, lastModifiedEnd: Date) async throws(MetrcError) -> [MetrcReceipt] {
        try await receipts(active: active, filter: "lastModified", from: lastModifiedStart, to: lastModifiedEnd)
    }

    private func receipts(active: Bool, filter: String, from start: Date, to end: Date) async throws(MetrcError) -> [MetrcReceipt] {
        try await windowed(active ? "/sales/v2/receipts/active" : "/sales/v2/receipts/inactive", filter: filter,
                           from: start, to: end, id: \.id)
    }

    /// A paged list read in windows of at most 24 hours of `filter` (`salesDate`, `lastModified`), merged by Id.
    private func windowed<T: Decodable & Sendable>(_ path: String, filter: String, from start: Date, to end: Date,
                                        id: (T) -> Int64) async throws(MetrcError) -> [T] {
        var found: [[T]] = []
        for window in Self.windows(from: start, to: end) {
            let call = Call("GET", path, query: [
                (name: filter + "Start", value: MetrcLocalTime.filter(window.start)),
                (name: filter + "End", value: MetrcLocalTime.filter(window.end)),
            ])
            found.append(try await list(call, paged: true))
        }
        return Self.merged(found, id: id)
    }

    // MARK: - Deliveries

    public func salesDelivery(id: Int64) async throws(MetrcError) -> MetrcSalesDelivery? {
        let call = Call("GET", "/sales/v2/deliveries/\(id)")
        guard let response = try await lookup(call) else { return nil }
        let items = try decode(MetrcOneOrMany<MetrcSalesDelivery>.self, from: response, call).items
        return items.first { $0.id == id } ?? items.first
    }

    public func salesDeliveries(active: Bool, salesDateStart: Date, salesDateEnd: Date) async throws(MetrcError) -> [MetrcSalesDelivery] {
        try await windowed(active ? "/sales/v2/deliveries/active" : "/sales/v2/deliveries/inactive", filter: "salesDate",
                           from: salesDateStart, to: salesDateEnd, id: \.id)
    }

    public func salesDeliveries(active: Bool, lastModifiedStart: Date, lastModifiedEnd: Date) async throws(MetrcError) -> [MetrcSalesDelivery] {
        try await windowed(active ? "/sales/v2/deliveries/active" : "/sales/v2/deliveries/inactive", filter: "lastModified",
                           from: lastModifiedStart, to: lastModifiedEnd, id: \.id)
    }

    public func deliveryReturnReasons() async throws(MetrcError) -> [MetrcDeliveryReturnReason] {
        try await list(Call("GET", "/sales/v2/deliveries/returnreasons"), paged: true)
    }

    public func retailerDelivery(id: Int64) async throws(MetrcError) -> MetrcRetailerDelivery? {
        let call = Call("GET", "/sales/v2/deliveries/retailer/\(id)")
        guard let response = try await lookup(call) else { return nil }
        let items = try decode(MetrcOneOrMany<MetrcRetailerDelivery>.self, from: response, call).items
        return items.first { $0.id == id } ?? items.first
    }

    public func retailerDeliveries(active: Bool, lastModifiedStart: Date, lastModifiedEnd: Date) async throws(MetrcError) -> [MetrcRetailerDelivery] {
        try await windowed(active ? "/sales/v2/deliveries/retailer/active" : "/sales/v2/deliveries/retailer/inactive",
                           filter: "lastModified", from: lastModifiedStart, to: lastModifiedEnd, id: \.id)
    }

    public func finalizeReceipts(ids: [Int64]) async throws(MetrcError) {
        let outcomes = await writeInChunks("PUT", "/sales/v2/receipts/finalize", ids.map(MetrcIdBody.init),
                                           stopAfterAnyFailure: true) { _ in [] }
        _ = try Self.idsOrFirstFailure(outcomes)
    }

    public func unfinalizeReceipts(ids: [Int64]) async throws(MetrcError) {
        let outcomes = await writeInChunks("PUT", "/sales/v2/receipts/unfinalize", ids.map(MetrcIdBody.init),
                                           stopAfterAnyFailure: true) { _ in [] }
        _ = try Self.idsOrFirstFailure(outcomes)
    }

    public func archiveReceipt(id: Int64) async throws(MetrcError) {
        _ = try await perform(Call("DELETE", "/sales/v2/receipts/\(id)", endpoint: "/sales/v2/receipts/{id}"))
    }

    // MARK: - Patients and caregivers

    public func patientStatuses(patientLicenseNumber: String) async throws(MetrcError) -> [MetrcPatientStatus] {
        let call = Call("GET", "/patients/v2/statuses/" + Self.percentEncoded(patientLicenseNumber),
                        endpoint: "/patients/v2/statuses/{number}",
                        logPath: "/patients/v2/statuses/" + MetrcRedaction.mask(patientLicenseNumber),
                        sensitive: [patientLicenseNumber])
        let response: HTTPResponse
        do {
            response = try await perform(call)
        } catch .notFound {
            return []
        }
        if Self.isBlank(response.body) { return [] }
        return try decode(MetrcOneOrMany<MetrcPatientStatus>.self, from: response, call).items
    }

    public func caregiverStatus(caregiverLicenseNumber: String) async throws(MetrcError) -> MetrcCaregiverStatus? {
        let call = Call("GET", "/caregivers/v2/status/" + Self.percentEncoded(caregiverLicenseNumber),
                        endpoint: "/caregivers/v2/status/{number}",
                        logPath: "/caregivers/v2/status/" + MetrcRedaction.mask(caregiverLicenseNumber),
                        sensitive: [caregiverLicenseNumber])
        let response: HTTPResponse
        do {
            response = try await perform(call)
        } catch .notFound {
            return nil
        }
        if Self.isBlank(response.body) { return nil }
        return try decode(MetrcOneOrMany<MetrcCaregiverStatus>.self, from: response, call).items.first
    }

    public func postPatientCheckIns(_ checkIns: [MetrcPatientCheckInDraft]) async throws(MetrcError) -> [Int64] {
        let outcomes = await writeInChunks("POST", "/patient-checkins/v2/", checkIns, stopAfterAnyFailure: true) {
            [$0.patientLicenseNumber]
        }
        return try Self.idsOrFirstFailure(outcomes)
    }

    public func patientCheckIns(on date: String) async throws(MetrcError) -> [MetrcPatientCheckIn] {
        let listed: [MetrcPatientCheckIn] = try await list(
            Call("GET", "/patient-checkins/v2", query: [(name: "checkinDateStart", value: date),
                                                        (name: "checkinDateEnd", value: date)]),
            paged: true)
        // The date filter is not in the published specification, so a Metrc that ignores it answers every
        // day's check-ins: taking another day's for this one would record a wrong Id and lose the check-in.
        // One without a date is kept: only the filter, if applied, can vouch for it.
        return listed.filter { $0.checkInDate.map { $0.prefix(10) == date.prefix(10) } ?? true }
    }

    // MARK: - Shared machinery

    /// A GET of one thing: nil on 404, and nil on a 401 once the keys are shown to work for this license,
    /// because Metrc answers 401 for a receipt or package that belongs to no facility of the keys.
    private func lookup(_ call: Call) async throws(MetrcError) -> HTTPResponse? {
        let response: HTTPResponse
        do {
            response = try await perform(call)
        } catch .notFound {
            return nil
        } catch .unauthorized(401, let message) {
            try await confirmKeysWork(else: .unauthorized(status: 401, message: message))
            log(.debug, "Metrc answered 401 for a lookup while the keys work: taken as not found", call, status: 401, elapsed: nil)
            return nil
        }
        // An empty 200 is no proof of absence: taking it as "not found" could lead to posting a sale twice.
        if Self.isBlank(response.body) {
            throw MetrcError.invalidResponse("\(call.method) \(call.logPath): empty answer")
        }
        return response
    }

    private func confirmKeysWork(else failure: MetrcError) async throws(MetrcError) {
        let facilities = try await facilities()
        guard facilities.contains(where: { Self.sameIdentifier($0.licenseNumber, licenseNumber) }) else { throw failure }
    }

    /// License and receipt numbers as Metrc compares them: whatever their case or surrounding spaces.
    static func sameIdentifier(_ a: String, _ b: String) -> Bool {
        a.trimmingCharacters(in: .whitespaces).lowercased() == b.trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// A list endpoint's whole content. Paged: pageNumber 1, 2, … until the envelope's TotalPages (or, without
    /// it, a short page); a bare array is the whole list.
    func list<T: Decodable & Sendable>(_ call: Call, paged: Bool) async throws(MetrcError) -> [T] {
        guard paged else {
            let response = try await perform(call)
            return Self.isBlank(response.body) ? [] : try decode(MetrcList<T>.self, from: response, call).items
        }
        var all: [T] = []
        var page = 1
        while true {
            let body = try await listPage(call, page) as MetrcList<T>?
            guard let body else { return all }
            all += body.items
            guard body.isEnvelope, !body.items.isEmpty else { return all }
            if let totalPages = body.totalPages {
                if page >= totalPages { return all }
                // The rest of the pages are known: several at a time (each still within the rate limiter), so
                // a day of thousands of receipts reads at Metrc's GET rate rather than at one round trip a page.
                return all + (try await pages(call, page + 1...min(totalPages, 100_000)))
            } else if body.items.count < pageSize {
                return all
            }
            page += 1
            if page > 100_000 {
                throw MetrcError.invalidResponse("\(call.logPath): paging did not end")
            }
        }
    }

    /// Pages read concurrently, `pagesInFlight` at a time, their items in page order.
    private func pages<T: Decodable & Sendable>(_ call: Call, _ numbers: ClosedRange<Int>) async throws(MetrcError) -> [T] {
        do {
            return try await withThrowingTaskGroup(of: (Int, [T]).self) { group in
                var next = numbers.lowerBound
                var found: [Int: [T]] = [:]
                func start() {
                    guard next <= numbers.upperBound else { return }
                    let number = next
                    next += 1
                    group.addTask { (number, (try await self.listPage(call, number) as MetrcList<T>?)?.items ?? []) }
                }
                for _ in 0..<Self.pagesInFlight { start() }
                while let (number, items) = try await group.next() {
                    found[number] = items
                    start()
                }
                return numbers.flatMap { found[$0] ?? [] }
            }
        } catch let error as MetrcError {
            throw error
        } catch {
            throw MetrcError.transient("\(call.logPath): \(error)", mayHaveBeenApplied: false)
        }
    }

    /// Pages of a list read at once: within Metrc's 10 requests in flight per facility, with room for writes.
    static let pagesInFlight = 4

    /// One page of a list; nil for a blank answer (no more pages).
    private func listPage<T: Decodable>(_ call: Call, _ page: Int) async throws(MetrcError) -> MetrcList<T>? {
        var pageCall = call
        pageCall.query += [(name: "pageNumber", value: "\(page)"), (name: "pageSize", value: "\(pageSize)")]
        let response = try await perform(pageCall)
        if Self.isBlank(response.body) { return nil }
        return try decode(MetrcList<T>.self, from: response, pageCall)
    }

    /// Sends `items` in chunks of `maxObjectsPerRequest`, one after the other.
    private func writeInChunks<Item: MetrcWritable>(_ method: String, _ path: String, _ items: [Item],
                                                stopAfterAnyFailure: Bool,
                                                sensitive: (Item) -> [String]) async -> [MetrcChunkOutcome] {
        var outcomes: [MetrcChunkOutcome] = []
        var stopped = false
        for start in stride(from: 0, to: items.count, by: chunkSize) {
            let range = start..<min(start + chunkSize, items.count)
            if stopped {
                outcomes.append(MetrcChunkOutcome(range: range, result: .failure(
                    .transient("not sent: an earlier chunk failed", mayHaveBeenApplied: false))))
                continue
            }
            let chunk = Array(items[range])
            let result = await writeChunk(method, path, chunk, sensitive: chunk.flatMap(sensitive))
            switch result {
            case .success:
                break
            case .failure(.rejected):
                stopped = stopAfterAnyFailure
            case .failure:
                stopped = true
            }
            outcomes.append(MetrcChunkOutcome(range: range, result: result.mapError { error in
                guard case .rejected(let rows) = error else { return error }
                // Metrc counts rows within the chunk; the caller counts within its whole array.
                return .rejected(rows.map { MetrcRowError(row: $0.row.map { $0 + range.lowerBound }, message: $0.message) })
            }))
        }
        return outcomes
    }

    private func writeChunk<Item: MetrcWritable>(_ method: String, _ path: String, _ chunk: [Item],
                                             sensitive: [String]) async -> Result<[Int64?], MetrcError> {
        let body: Data
        do {
            body = try Item.requestBody(chunk)
        } catch {
            return .failure(.rejected([MetrcRowError(row: nil, message: "could not encode the request: \(error)")]))
        }
        let call = Call(method, path, body: body, sensitive: sensitive)
        do {
            let response = try await perform(call)
            return .success(ids(in: response, expected: chunk.count, call))
        } catch {
            return .failure(error)
        }
    }

    /// Metrc's Ids from `{"Ids":[...]}` (or a bare array), aligned with the chunk; all nil when Metrc did not
    /// say, or said something that cannot be aligned: the write was applied either way (2xx).
    func ids(in response: HTTPResponse, expected: Int, _ call: Call) -> [Int64?] {
        let unknown = [Int64?](repeating: nil, count: expected)
        guard !Self.isBlank(response.body) else { return unknown }
        let decoder = MetrcJSON.makeDecoder()
        let ids = (try? decoder.decode(MetrcIdsBody.self, from: response.body))?.ids
            ?? (try? decoder.decode([Int64].self, from: response.body))
        guard let ids else { return unknown }
        guard ids.count == expected else {
            if call.method == "POST" {
                log(.warning, "Metrc answered \(ids.count) Ids for \(expected) objects: look them up by external number",
                    call, status: response.status, elapsed: nil)
            }
            return unknown
        }
        return ids
    }

    private static func idsOrFirstFailure(_ outcomes: [MetrcChunkOutcome]) throws(MetrcError) -> [Int64] {
        var ids: [Int64] = []
        for outcome in outcomes {
            switch outcome.result {
            case .success(let chunkIds): ids += chunkIds.compactMap { $0 }
            case .failure(let error): throw error
            }
        }
        return ids
    }

    private static func personalNumbers(in receipt: MetrcReceiptDraft) -> [String] {
        [receipt.patientLicenseNumber, receipt.caregiverLicenseNumber].compactMap { $0 }
    }

    static func isBlank(_ body: Data) -> Bool {
        body.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
    }

    /// [start, end] cut into consecutive windows of at most `maxLength` (Metrc refuses longer date filters),
    /// widened to whole seconds since the filters carry no fractions.
    static func windows(from start: Date, to end: Date, maxLength: TimeInterval = 24 * 3600) -> [(start: Date, end: Date)] {
        guard start < end else { return [] }
        let first = Date(timeIntervalSince1970: start.timeIntervalSince1970.rounded(.down))
        let last = Date(timeIntervalSince1970: end.timeIntervalSince1970.rounded(.up))
        var windows: [(start: Date, end: Date)] = []
        var cursor = first
        while cursor < last {
            let next = min(cursor.addingTimeInterval(maxLength), last)
            windows.append((start: cursor, end: next))
            cursor = next
        }
        return windows
    }

    /// Concatenated, without the duplicates that shared window edges produce; a later copy replaces an earlier one.
    static func merged<T>(_ lists: [[T]], id: (T) -> Int64) -> [T] {
        var result: [T] = []
        var position: [Int64: Int] = [:]
        for item in lists.joined() {
            if let index = position[id(item)] {
                result[index] = item
            } else {
                position[id(item)] = result.count
                result.append(item)
            }
        }
        return result
    }
}
