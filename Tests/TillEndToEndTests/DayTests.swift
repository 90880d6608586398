import Foundation
import MetrcKit
import MetrcSimulator
import Testing
import TillAPI
import TillDomain
import TillStore

/// The manager's day end to end: Till's receipts beside the simulator's, repairs, the close.
@Suite struct DayTests {
    static let other = "1A4FF0100000022000000102"

    func today(_ till: TillHarness) -> String {
        FacilityDate.string(of: Date(), in: till.services.configuration.timeZone)
    }

    /// A receipt body as Metrc's website would make it, for the simulator.
    func websiteReceipt(_ till: TillHarness, external: String?, label: String = other, quantity: String = "1") -> String {
        let time = MetrcLocalTime.format(Date(), in: till.services.metrc.timeZone)
        return """
            [{"SalesDateTime":"\(time)","SalesCustomerType":"Consumer",\(external.map { #""ExternalReceiptNumber":"\#($0)","# } ?? "")
              "Transactions":[{"PackageLabel":"\(label)","Quantity":\(quantity),"UnitOfMeasure":"Grams","TotalAmount":10.00}]}]
            """
    }

    func day(_ till: TillHarness, _ date: String, format: String? = nil) async throws -> Answer {
        try await till.request("GET", "/v1/days/\(date)" + (format.map { "?format=\($0)" } ?? ""), token: till.managerToken)
    }

    func standings(_ answer: Answer) -> [String: String] {
        Dictionary(uniqueKeysWithValues: (answer["receipts"] as? [[String: Any]] ?? []).compactMap { receipt in
            (receipt["receiptNumber"] as? String).map { ($0, receipt["standing"] as? String ?? "") }
        })
    }

    @Test func theDayViewNamesWhatMetrcHoldsOtherwiseAndARepairPutsOnlyThatRight() async throws {
        try await TillHarness.run { till in
            let date = today(till)
            var numbers: [String] = []
            var ids: [Int64] = []
            for number in 0..<6 {
                let answer = try await till.sell("day-\(number)", quantity: "1", amount: "10.00")
                #expect(answer.status == 201)
                numbers.append(try #require(answer["receiptNumber"] as? String))
                ids.append(Int64(try #require(answer["metrcReceiptId"] as? Int)))
            }
            let sim = till.simulation, license = TillHarness.license
            // Behind Till's back, on Metrc's website: an edit, an archive, a receipt moved to another day, a
            // duplicate, and a receipt of the website's own; and one receipt Metrc lost.
            let edited = try #require(await sim.receipt(id: ids[1]))
            let editBody = """
                [{"Id":\(ids[1]),"SalesDateTime":"\(edited.salesDateTime)","SalesCustomerType":"Consumer","ExternalReceiptNumber":"\(numbers[1])",
                  "Transactions":[{"PackageLabel":"\(Labels.flower)","Quantity":2,"UnitOfMeasure":"Grams","TotalAmount":20.00}]}]
                """
            #expect(await sim.onWebsite("PUT", "/sales/v2/receipts", license: license, body: editBody).status == 200)
            #expect(await sim.onWebsite("DELETE", "/sales/v2/receipts/\(ids[2])", license: license).status == 200)
            let moved = try #require(await sim.receipt(id: ids[3]))
            #expect(await sim.onWebsite("PUT", "/sales/v2/receipts", license: license, body: editBody
                .replacingOccurrences(of: "\(ids[1])", with: "\(ids[3])").replacingOccurrences(of: numbers[1], with: numbers[3])
                .replacingOccurrences(of: edited.salesDateTime, with: "2020-01-02T10:00:00.000")
                .replacingOccurrences(of: #""Quantity":2"#, with: #""Quantity":1"#)
                .replacingOccurrences(of: "20.00", with: "10.00")).status == 200)
            #expect(moved.salesDateTime.hasPrefix(date))
            let copy = try #require(await sim.duplicateReceipt(id: ids[4]))
            await sim.loseReceipt(id: ids[5])
            #expect(await sim.onWebsite("POST", "/sales/v2/receipts", license: license, body: websiteReceipt(till, external: "WEB-1")).status == 200)
            // And a sale still owed: Metrc down for it.
            await sim.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil), method: "POST", pathPrefix: "/sales/v2/receipts")])
            let owed = try await till.sell("day-owed", quantity: "1", amount: "10.00")
            #expect(owed.status == 202)

            let view = try await day(till, date)
            let standing = standings(view)
            #expect(standing[numbers[0]] == "matched")
            #expect(standing[numbers[1]] == "changed_in_metrc")
            #expect(standing[numbers[2]] == "changed_in_metrc")
            #expect(standing[numbers[3]] == "changed_in_metrc")
            #expect(standing[numbers[5]] == "missing_in_metrc")
            #expect(standing[numbers[4]] == "duplicate")
            #expect(standing["WEB-1"] == "unknown_to_till")
            #expect(standing[owed["receiptNumber"] as? String ?? ""] == "pending")
            let receipts = view["receipts"] as? [[String: Any]] ?? []
            let differences = receipts.first { $0["receiptNumber"] as? String == numbers[1] }?["differences"] as? [String] ?? []
            #expect(differences.contains { $0.contains("quantity 2 in Metrc, 1 in Till") })
            #expect((receipts.first { $0["receiptNumber"] as? String == numbers[2] }?["differences"] as? [String]) == ["archived in Metrc"])
            let movedAway = receipts.first { $0["receiptNumber"] as? String == numbers[3] }?["differences"] as? [String] ?? []
            #expect(movedAway.contains { $0.contains("sold at 2020-01-02T10:00:00 in Metrc") }, "\(movedAway)")

            // The duplicate sweep archives the extra copy by itself (a close sweeps too).
            #expect(try await till.services.sweep.sweepOnce().archivesJournaled == 1)
            try await till.waitUntil("the copy is archived") { await sim.receipt(id: copy.id)?.archived == true }
            #expect(standings(try await day(till, date))[numbers[4]] == "matched")

            // A close is refused, every blocker named.
            let refused = try await till.request("POST", "/v1/days/\(date)/close", token: till.managerToken)
            #expect(refused.status == 409 && refused.errorCode == "day_close_blocked")
            let blockers = ((refused.error?["details"] as? [String: Any])?["blockers"] as? String ?? "").split(separator: "\n")
            #expect(blockers.count == 5, "\(blockers.joined(separator: "\n"))")
            #expect(blockers.contains { $0.hasPrefix("write_") && $0.contains(owed["receiptNumber"] as? String ?? "?") })
            for number in [numbers[1], numbers[2], numbers[3], numbers[5]] { #expect(blockers.contains { $0.contains(number) }, "\(number)") }

            // A dry run lists the repair and sends nothing.
            await sim.clearFaults()
            try await till.waitUntil("the owed sale is reported") { try till.services.store.reportingSummary().pending == 0 }
            await sim.resetCounters()
            let dry = try await till.request("POST", "/v1/days/\(date)/repair", body: #"{"dryRun":true}"#, token: till.managerToken)
            #expect(dry.status == 200 && dry["dryRun"] as? Bool == true)
            let planned = (dry["actions"] as? [[String: Any]] ?? []).map { "\($0["kind"] as? String ?? "") \($0["receiptNumber"] as? String ?? "")" }
            #expect(Set(planned) == ["receipt.update \(numbers[1])", "receipt.create \(numbers[2])", "receipt.update \(numbers[3])",
                                     "receipt.create \(numbers[5])"])
            await till.services.reporter.drainOnce()
            #expect(await sim.requestCount(method: "POST") + sim.requestCount(method: "PUT") + sim.requestCount(method: "DELETE") == 0)

            // The real repair sends exactly that.
            let repaired = try await till.request("POST", "/v1/days/\(date)/repair", token: till.managerToken)
            #expect((repaired["actions"] as? [[String: Any]])?.count == 4)
            try await till.waitUntil("the repair is sent") { try till.services.store.journalSummary().pending == 0 }
            let after = standings(try await day(till, date))
            #expect(after.filter { $0.value != "matched" } == ["WEB-1": "unknown_to_till"], "\(after)")
            #expect(await sim.receipt(id: copy.id)?.archived == true)
            #expect(await sim.receipts(license: license, externalNumber: "WEB-1").allSatisfy { !$0.archived })
            // Two edits in one PUT, two receipts in one POST, nothing archived, nothing else.
            #expect(await sim.requestCount(method: "PUT", pathPrefix: "/sales/v2/receipts") == 1)
            #expect(await sim.requestCount(method: "POST", pathPrefix: "/sales/v2/receipts") == 1)
            #expect(await sim.requestCount(method: "DELETE", pathPrefix: "/sales/v2/receipts") == 0)
            #expect(await sim.receipt(id: ids[3])?.salesDateTime.hasPrefix(date) == true)  // put back on its day
        }
    }

    @Test func aDayClosesByFinalizingEachReceiptInChunksOfAtMostTenAndAReturnAfterIsAnAmendment() async throws {
        try await TillHarness.run { till in
            let date = today(till)
            var saleIds: [Int] = []
            for number in 0..<12 {
                let answer = try await till.sell("close-\(number)", quantity: "1", amount: "10.00")
                saleIds.append(try #require(answer["id"] as? Int))
            }
            await till.simulation.resetCounters()
            let closing = try await till.request("POST", "/v1/days/\(date)/close", token: till.managerToken)
            #expect([200, 202].contains(closing.status), "\(closing.json)")
            try await till.waitUntil("the day is closed") {
                (try await till.request("POST", "/v1/days/\(date)/close", token: till.managerToken))["status"] as? String == "closed"
            }
            let receipts = await till.simulation.receipts(license: TillHarness.license)
            #expect(receipts.count == 12 && receipts.allSatisfy(\.isFinal))
            #expect(await till.simulation.requestCount(method: "PUT", pathPrefix: "/sales/v2/receipts/finalize") == 2)
            let view = try await day(till, date)
            #expect((view["close"] as? [String: Any])?["status"] as? String == "closed")
            #expect((view["close"] as? [String: Any])?["finalized"] as? Int == 12)

            // A late return on the closed day: unfinalize, edit, finalize; the day shows as amended.
            let late = Int64(saleIds[0])
            let returned = try await till.returnSale(saleIds[0], #"{"clientReturnId":"late-1","all":true,"reason":"Defective"}"#)
            #expect(returned["metrcAction"] as? String == "archive")
            try await till.waitUntil("the return is reported") {
                try till.services.store.returns(saleId: late).first?.status == .reported
            }
            let amended = try await day(till, date)
            #expect((amended["amendedAfterClose"] as? [[String: Any]])?.count == 1)
            #expect(await till.simulation.requestCount(method: "PUT", pathPrefix: "/sales/v2/receipts/unfinalize") == 1)
            #expect(standings(amended).values.allSatisfy { $0 == "matched" })
        }
    }

    @Test func theDayCSVHasTheJSONsTotalsAndTheReportComesAsJSONCSVAndHTML() async throws {
        try await TillHarness.run { till in
            let date = today(till)
            _ = try await till.request("POST", "/v1/sales", body: """
                {"clientSaleId":"csv-1","customerType":"Consumer","lines":[
                 {"packageLabel":"\(Labels.flower)","quantity":3.5,"unit":"Grams","totalAmount":35.10,"taxes":{"salesTax":2.81}},
                 {"packageLabel":"1A4FF0100000022000000106","quantity":2,"unit":"Each","totalAmount":20.00}]}
                """, token: till.registerToken)
            _ = try await till.sell("csv-2", quantity: "1", amount: "10.00")
            let json = try await day(till, date)
            let csv = String(decoding: try await day(till, date, format: "csv").body, as: UTF8.self)
            let rows = csv.split(separator: "\r\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            func total(_ side: String, _ group: String) -> String? { rows.first { $0.count >= 5 && $0[1] == side && $0[2] == group }?[4] }
            let till_ = json["till"] as? [String: Any], metrc = json["metrc"] as? [String: Any]
            #expect(total("till", "all").flatMap { Decimal(string: $0) } == (till_?["amount"] as? NSNumber)?.decimalValue)
            #expect(total("metrc", "all").flatMap { Decimal(string: $0) } == (metrc?["amount"] as? NSNumber)?.decimalValue)
            #expect(total("till", "all") == "65.1")
            #expect(total("till", "tax:salesTax") == "2.81")
            #expect(total("till", "category:Buds") == "45.1")
            #expect(total("till", "customerType:Consumer") == "65.1")

            let report = try await till.request("GET", "/v1/days/\(date)/report", token: till.managerToken)
            #expect((report["net"] as? NSNumber)?.decimalValue == Decimal(string: "65.1"))
            #expect((report["reconciliation"] as? [String: Any])?["matched"] as? Int == 2)
            let reportCSV = try await till.request("GET", "/v1/days/\(date)/report?format=csv", token: till.managerToken)
            #expect(String(decoding: reportCSV.body, as: UTF8.self).contains("net,65.1"))
            let page = try await till.request("GET", "/v1/days/\(date)/report?format=html", token: till.managerToken)
            #expect(page.headers["content-type"]?.hasPrefix("text/html") == true)
            #expect(String(decoding: page.body, as: UTF8.self).contains("<td>65.1</td>"))
        }
    }
}
