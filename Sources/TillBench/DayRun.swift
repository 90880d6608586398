import CurlHTTP
import Foundation
import MetrcKit
import MetrcSimulator
import TillLoad

/// The manager's day on a day of several thousand receipts: the day view built from cold, and the close.
struct DayRun: Sendable {
    let date: String
    /// Metrc's receipts of the day, as listed (Till's and the baseline's).
    let listed: Int
    let pages: Int
    let viewTime: Duration?
    let finalized: Int
    let closeTime: Duration?
    let closeStatus: String
    /// The same pages read straight from Metrc, one after the other at most 50 a second, without Till: how fast
    /// this Metrc serves them within its limit.
    var bareListing: Duration = .zero

    /// The day's pages of 20 at Metrc's 50 GET/s, or as fast as this Metrc serves them if that is slower.
    var listingFloor: Duration { max(.milliseconds(Int64(pages) * 20), bareListing) }
    /// The listing (a close reads the day to find what blocks it), then its finalizes in chunks of 10, 10 at a
    /// time (Metrc's per-facility concurrency), each as long as a bare Metrc POST.
    func closeFloor(bareWrite: Duration) -> Duration {
        let chunks = (finalized + 9) / 10
        return listingFloor + bareWrite * Double((chunks + 9) / 10)
    }

    static let target = 1.2

    func viewRatio() -> Double? { viewTime.map { $0.seconds / listingFloor.seconds } }
    func closeRatio(bareWrite: Duration) -> Double? { closeTime.map { $0.seconds / closeFloor(bareWrite: bareWrite).seconds } }
}

extension Bench {
    /// Views and closes today, every sale of the run in it, each with a Till that has not looked at it yet.
    func measureDay(till: TillExecutable, simulation: MetrcSimulation, socketPath: String, managerToken: String,
                    server: inout TillServer, failures: inout [String]) async throws -> DayRun {
        let zone = TimeZone(identifier: Self.timeZone)!
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = calendar.dateComponents([.year, .month, .day], from: Date())
        let date = String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
        let receipts = await simulation.receipts(license: Self.license).filter { $0.salesDateTime.hasPrefix(date) }
        let active = receipts.filter { !$0.archived }.count, archived = receipts.count - active
        let pages = max(1, (active + 19) / 20) + max(1, (archived + 19) / 20)
        let manager = CurlHTTPClient(unixSocketPath: socketPath)
        let headers = [(name: "Authorization", value: "Bearer \(managerToken)")]

        progress("the day \(date): its view (\(receipts.count) receipts in Metrc, \(pages) pages)")
        // Measured with Till otherwise quiet: its start-up duplicate sweep lists the day too, from the same
        // budget of 50 GETs a second (and the view then asks only what changed since, here the whole day).
        await Self.waitForQuiet(simulation)
        let getsBefore = await simulation.requestCount(method: "GET")
        let lookupsBefore = await simulation.requestCount(method: "GET", pathPrefix: "/sales/v2/receipts/external")
        let viewStarted = ContinuousClock.now
        let view = try await manager.send(HTTPRequest(method: "GET", url: "http://till/v1/days/\(date)", headers: headers,
                                                      timeout: .seconds(300)))
        let viewTime: Duration? = view.status == 200 ? .now - viewStarted : nil
        progress("the day \(date): its view asked \(await simulation.requestCount(method: "GET") - getsBefore) GETs of Metrc, "
                 + "\(await simulation.requestCount(method: "GET", pathPrefix: "/sales/v2/receipts/external") - lookupsBefore) of them lookups by number")
        if view.status != 200 {
            failures.append("day view: HTTP \(view.status): \(String(decoding: view.body.prefix(300), as: UTF8.self))")
        }

        // A Till that has not listed the day: the close reads it afresh, as a close after a restart would.
        _ = await server.stop()
        server = try await till.serve(register: RegisterClient(socketPath: socketPath, token: managerToken))
        await Self.waitForQuiet(simulation)
        progress("the day \(date): its close")
        let closeStarted = ContinuousClock.now
        var status = "not asked"
        var finalized = 0
        var closeTime: Duration?
        while ContinuousClock.now - closeStarted < .seconds(300) {
            let answer = try await manager.send(HTTPRequest(method: "POST", url: "http://till/v1/days/\(date)/close",
                                                            headers: headers, timeout: .seconds(300)))
            let json = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any] ?? [:]
            guard [200, 202].contains(answer.status) else {
                failures.append("day close: HTTP \(answer.status): \(String(decoding: answer.body.prefix(500), as: UTF8.self))")
                status = "refused"
                break
            }
            status = json["status"] as? String ?? "?"
            finalized = json["receipts"] as? Int ?? 0
            if status == "closed" {
                closeTime = .now - closeStarted
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        if closeTime == nil && status != "refused" { failures.append("day close: still \(status) after 300 s") }
        let final = await simulation.receipts(license: Self.license).filter { $0.salesDateTime.hasPrefix(date) && !$0.archived && $0.isFinal }
        if closeTime != nil && final.count < finalized {
            failures.append("day close: closed, yet Metrc holds \(final.count) of \(finalized) receipts finalized")
        }
        return DayRun(date: date, listed: receipts.count, pages: pages, viewTime: viewTime, finalized: finalized,
                      closeTime: closeTime, closeStatus: status)
    }

    /// Every page of the day's active and inactive receipts, GET after GET with libcurl, as Till asks for them
    /// (the facility-local day as a sales-date window, pages of 20).
    static func readPagesBare(baseURL: String, keys: SimulatorConfiguration, date: String, zone: TimeZone) async throws -> Duration {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = date.split(separator: "-").compactMap { Int($0) }
        let start = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2]))!
        let end = calendar.date(byAdding: .day, value: 1, to: start)!
        let client = CurlHTTPClient()
        let headers = [(name: "Authorization", value: "Basic " + Data("\(keys.vendorKey):\(keys.userKey)".utf8).base64EncodedString()),
                       (name: "Accept", value: "application/json")]
        let started = ContinuousClock.now
        var next = started
        for list in ["active", "inactive"] {
            var page = 1
            while true {
                // Within Metrc's 50 GET/s, as Till must be.
                try await Task.sleep(until: next, clock: .continuous)
                next = max(next + .milliseconds(21), .now)
                let url = baseURL + "/sales/v2/receipts/\(list)?licenseNumber=\(Self.license)&salesDateStart=\(MetrcLocalTime.filter(start))"
                    + "&salesDateEnd=\(MetrcLocalTime.filter(end))&pageNumber=\(page)&pageSize=20"
                let response = try await client.send(HTTPRequest(method: "GET", url: url.replacingOccurrences(of: "+", with: "%2B"),
                                                                 headers: headers, timeout: .seconds(30)))
                let json = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
                guard response.status == 200 else {
                    throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "GET \(url): HTTP \(response.status)"])
                }
                if page >= (json["TotalPages"] as? NSNumber)?.intValue ?? 1 { break }
                page += 1
            }
        }
        return .now - started
    }

    /// Until Metrc has had no request for a second (at most a minute).
    static func waitForQuiet(_ simulation: MetrcSimulation) async {
        let clock = ContinuousClock()
        let limit = clock.now + .seconds(60)
        var last = await simulation.requestCount(), quietSince = clock.now
        while clock.now < limit, clock.now - quietSince < .seconds(1) {
            try? await Task.sleep(for: .milliseconds(100))
            let count = await simulation.requestCount()
            if count != last { last = count; quietSince = clock.now }
        }
    }
}
