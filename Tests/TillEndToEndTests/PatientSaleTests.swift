import Foundation
import MetrcSimulator
import Testing
import TillDomain

/// Medical sales and patient checks as pharmacists and registers feel them, against the simulated Metrc.
@Suite struct PatientSaleTests {
    func medicalSale(_ till: TillHarness, _ id: String, type: String = "Patient", patient: String,
                     caregiver: String? = nil, label: String = Labels.flower, quantity: String = "3.5",
                     unit: String = "Grams") async throws -> Answer {
        let caregiverField = caregiver.map { #","caregiverLicenseNumber":"\#($0)""# } ?? ""
        return try await till.request("POST", "/v1/sales", body: """
            {"clientSaleId":"\(id)","customerType":"\(type)","patientLicenseNumber":"\(patient)"\(caregiverField),
             "identificationMethod":"Drivers License",
             "lines":[{"packageLabel":"\(label)","quantity":\(quantity),"unit":"\(unit)","totalAmount":30.00}]}
            """, token: till.registerToken)
    }

    @Test func aPharmacistChecksAPatientAndASecondLookWithinAMinuteIsServedFromCache() async throws {
        try await TillHarness.run { till in
            let first = try await till.request("GET", "/v1/patients/PT-ACTIVE-0001/status", token: till.pharmacistToken)
            #expect(first.status == 200)
            #expect(first["source"] as? String == "metrc")
            #expect(first["active"] as? Bool == true)
            #expect(first["expired"] as? Bool == false)
            let flower = (first["allowances"] as? [String: Any])?["flower"] as? [String: Any]
            #expect((flower?["allowedOunces"] as? NSNumber)?.decimalValue == Decimal(string: "2.5"))

            let second = try await till.request("GET", "/v1/patients/PT-ACTIVE-0001/status", token: till.registerToken)
            #expect(second["source"] as? String == "cache")
            #expect(await till.simulation.statusRequestCount(patient: "PT-ACTIVE-0001") == 1)
            let audit = try till.services.store.auditLog(action: "patient.status.lookup")
            #expect(audit.count == 2)
            #expect(Set(audit.map(\.event.actor)) == ["terminal:pharmacist-1", "terminal:register-1"])

            let unknown = try await till.request("GET", "/v1/patients/PT-NOBODY/status", token: till.pharmacistToken)
            #expect(unknown.status == 404)
            #expect(unknown.errorCode == "patient_not_found")
            let caregiver = try await till.request("GET", "/v1/caregivers/CG-ACTIVE-0001/status", token: till.pharmacistToken)
            #expect(caregiver.status == 200)
            #expect((caregiver["patientLicenseNumbers"] as? [String])?.contains("PT-LINKED-0005") == true)
        }
    }

    @Test func patientAndCaregiverSalesReachMetrcWithTheirLicenseNumbers() async throws {
        try await TillHarness.run { till in
            let patientSale = try await medicalSale(till, "med-1", patient: "PT-ACTIVE-0001")
            #expect(patientSale.status == 201)
            let caregiverSale = try await medicalSale(till, "med-2", type: "Caregiver", patient: "PT-LINKED-0005",
                                                      caregiver: "CG-ACTIVE-0001")
            #expect(caregiverSale.status == 201)

            let receipts = await till.simulation.receipts(license: TillHarness.license)
            #expect(receipts.count == 2)
            #expect(receipts.contains { $0.salesCustomerType == "Patient" && $0.patientLicenseNumber == "PT-ACTIVE-0001" })
            #expect(receipts.contains {
                $0.salesCustomerType == "Caregiver" && $0.patientLicenseNumber == "PT-LINKED-0005"
                    && $0.caregiverLicenseNumber == "CG-ACTIVE-0001"
            })
        }
    }

    @Test func aCaregiverIsLinkedToThePatientWhateverTheCaseTheNumberIsTypedIn() async throws {
        try await TillHarness.run { till in
            let sale = try await medicalSale(till, "med-case", type: "Caregiver", patient: "pt-linked-0005", caregiver: "CG-ACTIVE-0001")
            #expect(sale.status == 201, "\(sale.json)")
        }
    }

    @Test func inactiveExpiredAndUnlinkedAreEachRefusedWithTheirOwnMessageAndNothingIsJournaled() async throws {
        try await TillHarness.run { till in
            let inactive = try await medicalSale(till, "bad-1", patient: "PT-INACTIVE-0002")
            let expired = try await medicalSale(till, "bad-2", patient: "PT-EXPIRED-0003")
            let unlinked = try await medicalSale(till, "bad-3", type: "Caregiver", patient: "PT-LOW-0004", caregiver: "CG-ACTIVE-0001")
            let inactiveCaregiver = try await medicalSale(till, "bad-4", type: "Caregiver", patient: "PT-ACTIVE-0001",
                                                          caregiver: "CG-INACTIVE-0002")

            let statuses: [Int] = [inactive.status, expired.status, unlinked.status, inactiveCaregiver.status]
            #expect(statuses.allSatisfy { $0 == 422 })
            #expect(inactive.errorCode == "patient_inactive")
            #expect(expired.errorCode == "patient_expired")
            #expect(unlinked.errorCode == "caregiver_not_linked")
            #expect(inactiveCaregiver.errorCode == "caregiver_inactive")
            let messages = [inactive, expired, unlinked, inactiveCaregiver].compactMap { $0.error?["message"] as? String }
            #expect(Set(messages).count == 4)
            #expect(try till.services.store.reportingSummary().pending == 0)
            let today = try await till.request("GET", "/v1/sales", token: till.managerToken)
            #expect(today["count"] as? Int == 0)
            #expect(await till.simulation.receipts(license: TillHarness.license).isEmpty)
        }
    }

    @Test func twoConcurrentPatientSalesThatTogetherExceedTheAllowanceLetExactlyOneThrough() async throws {
        try await TillHarness.run { till in
            // PT-LOW-0004 may buy 0.25 oz (7.08738078125 g) of flower; each register sells 5 g.
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for register in 0..<2 {
                    group.addTask { try await self.medicalSale(till, "low-\(register)", patient: "PT-LOW-0004", quantity: "5") }
                }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == 201 }.count == 1)
            let refused = try #require(answers.first { $0.status == 422 })
            #expect(refused.errorCode == "allowance_exceeded")
            let details = try #require(refused.error?["details"] as? [String: String])
            #expect(details["bucket"] == "flower")
            #expect(details["allowedOunces"] == "0.25")
            #expect(details["remainingOunces"] == "0.0736")  // (7.08738078125 - 5) g = 0.0736 oz

            // Metrc's figure lags a minute; Till's own ledger still counts the first sale.
            let third = try await medicalSale(till, "low-2", patient: "PT-LOW-0004", quantity: "2.5")
            #expect(third.status == 422)
            #expect(third.errorCode == "allowance_exceeded")
            let fits = try await medicalSale(till, "low-3", patient: "PT-LOW-0004", quantity: "2")
            #expect(fits.status == 201)
        }
    }

    @Test func metrcDownAnswersAStaleStatusAndRefusesThePatientSaleByDefault() async throws {
        try await TillHarness.run(patientCache: .milliseconds(200)) { till in
            let fresh = try await till.request("GET", "/v1/patients/PT-ACTIVE-0001/status", token: till.pharmacistToken)
            #expect(fresh["source"] as? String == "metrc")
            await till.simulation.setFaults([SimFault(.status(503, body: "<html>down</html>", retryAfterSeconds: nil),
                                                      pathPrefix: "/patients")])
            try await Task.sleep(for: .milliseconds(300))  // past the (shortened) cache

            let stale = try await till.request("GET", "/v1/patients/PT-ACTIVE-0001/status", token: till.pharmacistToken)
            #expect(stale.status == 200)
            #expect(stale["source"] as? String == "stale")
            #expect(stale["asOf"] as? String == fresh["asOf"] as? String)
            let sale = try await medicalSale(till, "stale-1", patient: "PT-ACTIVE-0001")
            #expect(sale.status == 503)
            #expect(sale.errorCode == "patient_status_stale")
            #expect(await till.simulation.receipts(license: TillHarness.license).isEmpty)
        }
    }

    @Test func aSaleOnAStaleStatusIsAllowedWhenTheFacilitySaysSoAndFlaggedInTheAuditLog() async throws {
        try await TillHarness.run(patientCache: .milliseconds(200), stalePolicy: .allow) { till in
            _ = try await till.request("GET", "/v1/patients/PT-ACTIVE-0001/status", token: till.pharmacistToken)
            await till.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil), pathPrefix: "/patients")])
            try await Task.sleep(for: .milliseconds(300))
            let sale = try await medicalSale(till, "stale-ok", patient: "PT-ACTIVE-0001")
            #expect(sale.status == 201)
            let journaled = try till.services.store.auditLog(action: "sale.journaled")
            #expect(journaled.first?.event.detail?.contains("stale patient status") == true)
        }
    }

    @Test func aCheckInIsReportedToMetrcThroughTheOutbox() async throws {
        try await TillHarness.run { till in
            let answer = try await till.request("POST", "/v1/patients/PT-ACTIVE-0001/checkins",
                                                body: #"{"checkInLocationId":1,"clientCheckInId":"front-1"}"#,
                                                token: till.pharmacistToken)
            #expect(answer.status == 202)
            let id = try #require(answer["id"] as? Int)
            try await till.waitUntil("the check-in is reported") {
                try await till.request("GET", "/v1/checkins/\(id)", token: till.pharmacistToken)["status"] as? String == "reported"
            }
            #expect(await till.simulation.checkIns(license: TillHarness.license).count == 1)
            let again = try await till.request("POST", "/v1/patients/PT-ACTIVE-0001/checkins",
                                               body: #"{"checkInLocationId":1,"clientCheckInId":"front-1"}"#,
                                               token: till.pharmacistToken)
            #expect(again["id"] as? Int == id)
            #expect(await till.simulation.checkIns(license: TillHarness.license).count == 1)
        }
    }

    @Test func aCheckInWhoseAnswerWasLostIsLookedUpNotPostedTwice() async throws {
        try await TillHarness.run { till in
            await till.simulation.setFaults([SimFault(.commitThenDrop, method: "POST", pathPrefix: "/patient-checkins", times: 1)])
            let answer = try await till.request("POST", "/v1/patients/PT-ACTIVE-0001/checkins",
                                                body: #"{"checkInLocationId":2}"#, token: till.pharmacistToken)
            #expect(answer.status == 202)
            let id = try #require(answer["id"] as? Int)
            try await till.waitUntil("the check-in is reported") {
                try await till.request("GET", "/v1/checkins/\(id)", token: till.pharmacistToken)["status"] as? String == "reported"
            }
            #expect(await till.simulation.checkIns(license: TillHarness.license).count == 1)
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/patient-checkins") == 1)
            #expect(await till.simulation.requestCount(method: "GET", pathPrefix: "/patient-checkins") >= 1)
        }
    }

    @Test func aSecondCheckInTheSameDayWhoseAnswerWasLostIsNotTakenForTheFirst() async throws {
        try await TillHarness.run { till in
            func checkIn(_ client: String) async throws -> Int {
                let answer = try await till.request("POST", "/v1/patients/PT-ACTIVE-0001/checkins",
                                                    body: #"{"checkInLocationId":2,"clientCheckInId":"\#(client)"}"#,
                                                    token: till.pharmacistToken)
                let id = try #require(answer["id"] as? Int)
                try await till.waitUntil("check-in \(client) is reported") {
                    try await till.request("GET", "/v1/checkins/\(id)", token: till.pharmacistToken)["status"] as? String == "reported"
                }
                return try #require(try await till.request("GET", "/v1/checkins/\(id)", token: till.pharmacistToken)["metrcCheckInId"] as? Int)
            }
            let morning = try await checkIn("morning")
            // Same patient, location and day: Metrc's day list now holds the morning one when this is looked up.
            await till.simulation.setFaults([SimFault(.commitThenDrop, method: "POST", pathPrefix: "/patient-checkins", times: 1)])
            let evening = try await checkIn("evening")
            #expect(evening != morning)
            #expect(await till.simulation.checkIns(license: TillHarness.license).map { Int($0.id) }.sorted() == [morning, evening].sorted())
            #expect(await till.simulation.requestCount(method: "POST", pathPrefix: "/patient-checkins") == 2)
        }
    }

    @Test func aCheckInMetrcRefusesIsKeptWithItsWordsAndMetrcCountsAsReachable() async throws {
        try await TillHarness.run { till in
            let answer = try await till.request("POST", "/v1/patients/PT-ACTIVE-0001/checkins",
                                                body: #"{"checkInLocationId":999}"#, token: till.pharmacistToken)
            let id = try #require(answer["id"] as? Int)
            try await till.waitUntil("the check-in is refused") {
                try await till.request("GET", "/v1/checkins/\(id)", token: till.pharmacistToken)["status"] as? String == "rejected"
            }
            let refused = try await till.request("GET", "/v1/checkins/\(id)", token: till.pharmacistToken)
            #expect((refused["rejection"] as? [String])?.first?.contains("location 999 was not found") == true)
            let reporting = try await till.request("GET", "/v1/reporting", token: till.managerToken)
            #expect((reporting["metrc"] as? [String: Any])?["reachable"] as? Bool == true)
            #expect(try till.services.store.auditLog(action: "metrc.checkin.create.refused").count == 1)
        }
    }
}

