import Foundation
import Logging
import MetrcKit
import Synchronization
import Testing
import TillDomain
@testable import TillPatients
import TillStore

/// A Metrc that answers patient statuses from a table, counts calls, and can be made slow or unreachable.
final class FakeMetrc: MetrcAPI {
    let licenseNumber = "LIC-TEST"
    let timeZone = TimeZone(identifier: "America/Denver")!
    private let state = Mutex(State())

    struct State {
        var statusCalls: [String: Int] = [:]
        var down = false
        var delay: Duration = .zero
        /// While true, status fetches wait (the test releases them): ordering without timing.
        var held = false
        var patients: [String: MetrcPatientStatus] = [:]
    }

    func set(_ change: (inout State) -> Void) { state.withLock { change(&$0) } }
    func calls(_ license: String) -> Int { state.withLock { $0.statusCalls[license, default: 0] } }

    func patientStatuses(patientLicenseNumber: String) async throws(MetrcError) -> [MetrcPatientStatus] {
        let (down, delay, patient) = state.withLock { state in
            state.statusCalls[patientLicenseNumber, default: 0] += 1
            return (state.down, state.delay, state.patients[patientLicenseNumber])
        }
        if delay > .zero { try? await Task.sleep(for: delay) }
        while state.withLock({ $0.held }) { try? await Task.sleep(for: .milliseconds(5)) }
        if down { throw .transient("connection refused", mayHaveBeenApplied: false) }
        return patient.map { [$0] } ?? []
    }

    func facilities() async throws(MetrcError) -> [MetrcFacility] { [] }
    func unitsOfMeasure() async throws(MetrcError) -> [MetrcUnitOfMeasure] { [] }
    func customerTypes() async throws(MetrcError) -> [String] { [] }
    func activePackages(lastModifiedSince: Date?, until: Date) async throws(MetrcError) -> [MetrcPackage] { [] }
    func package(label: String) async throws(MetrcError) -> MetrcPackage? { nil }
    func postReceipts(_ receipts: [MetrcReceiptDraft]) async throws(MetrcError) -> [Int64] { [] }
    func send(_ write: MetrcWrite) async throws(MetrcError) -> [Int64?] { [] }
    func packageAdjustReasons() async throws(MetrcError) -> [MetrcAdjustReason] { [] }
    func packageAdjustments() async throws(MetrcError) -> [MetrcPackageAdjustment] { [] }
    func updateReceipts(_ receipts: [MetrcReceiptUpdate]) async throws(MetrcError) {}
    func receipt(id: Int64) async throws(MetrcError) -> MetrcReceipt? { nil }
    func receipt(externalNumber: String) async throws(MetrcError) -> MetrcReceipt? { nil }
    func receipts(active: Bool, salesDateStart: Date, salesDateEnd: Date) async throws(MetrcError) -> [MetrcReceipt] { [] }
    func receipts(active: Bool, lastModifiedStart: Date, lastModifiedEnd: Date) async throws(MetrcError) -> [MetrcReceipt] { [] }
    func finalizeReceipts(ids: [Int64]) async throws(MetrcError) {}
    func unfinalizeReceipts(ids: [Int64]) async throws(MetrcError) {}
    func archiveReceipt(id: Int64) async throws(MetrcError) {}
    func caregiverStatus(caregiverLicenseNumber: String) async throws(MetrcError) -> MetrcCaregiverStatus? { nil }
    func postPatientCheckIns(_ checkIns: [MetrcPatientCheckInDraft]) async throws(MetrcError) -> [Int64] { [] }
    func patientCheckIns(on date: String) async throws(MetrcError) -> [MetrcPatientCheckIn] { [] }
    func salesDelivery(id: Int64) async throws(MetrcError) -> MetrcSalesDelivery? { nil }
    func salesDeliveries(active: Bool, salesDateStart: Date, salesDateEnd: Date) async throws(MetrcError) -> [MetrcSalesDelivery] { [] }
    func salesDeliveries(active: Bool, lastModifiedStart: Date, lastModifiedEnd: Date) async throws(MetrcError) -> [MetrcSalesDelivery] { [] }
    func deliveryReturnReasons() async throws(MetrcError) -> [MetrcDeliveryReturnReason] { [] }
    func retailerDelivery(id: Int64) async throws(MetrcError) -> MetrcRetailerDelivery? { nil }
    func retailerDeliveries(active: Bool, lastModifiedStart: Date, lastModifiedEnd: Date) async throws(MetrcError) -> [MetrcRetailerDelivery] { [] }
}

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let current = Mutex(Date(timeIntervalSince1970: 1_795_000_000))
    var now: Date { current.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// A class so that each test's folder is removed when the test is done.
@Suite final class PatientDirectoryTests {
    let metrc = FakeMetrc()
    let clock = TestClock()
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("till-patients-\(UUID().uuidString.prefix(8))").path

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func directory(policy: StalePatientPolicy = .refuse, patience: Duration = .seconds(5)) throws -> PatientDirectory {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let store = try TillStore(path: folder + "/till-\(UUID().uuidString.prefix(8)).sqlite")  // one per directory
        metrc.set {
            $0.patients["PT-1"] = MetrcPatientStatus(patientLicenseNumber: "PT-1", active: true,
                                                     patientLicenseExpirationDate: "2030-01-01",
                                                     flowerOuncesAllowed: 2.5, flowerOuncesPurchased: 0, flowerOuncesAvailable: 2.5)
        }
        let clock = self.clock
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return PatientDirectory(metrc: metrc, store: store, settings: PatientSettings(patience: patience, stalePolicy: policy),
                                timeZone: metrc.timeZone, logger: logger, now: { clock.now })
    }

    @Test func aSecondLookupWithinSixtySecondsAsksMetrcNothingAndOneAfterDoes() async throws {
        let patients = try directory()
        let first = try await patients.patient("PT-1", askedBy: "test", terminalId: nil)
        #expect(first.source == .metrc)
        clock.advance(59)
        let second = try await patients.patient("PT-1", askedBy: "test", terminalId: nil)
        #expect(second.source == .cache)
        #expect(second.fetchedAt == first.fetchedAt)
        #expect(metrc.calls("PT-1") == 1)
        clock.advance(2)
        let third = try await patients.patient("PT-1", askedBy: "test", terminalId: nil)
        #expect(third.source == .metrc)
        #expect(metrc.calls("PT-1") == 2)
    }

    @Test func fiftyConcurrentLookupsOfOneLicenseMakeOneMetrcCall() async throws {
        let patients = try directory()
        metrc.set { $0.delay = .milliseconds(200) }
        let sources = try await withThrowingTaskGroup(of: StatusSource.self) { group in
            for _ in 0..<50 {
                group.addTask { try await patients.patient("PT-1", askedBy: "test", terminalId: nil).source }
            }
            return try await group.reduce(into: [StatusSource]()) { $0.append($1) }
        }
        #expect(sources.count == 50)
        #expect(metrc.calls("PT-1") == 1)
    }

    @Test func metrcDownAnswersTheLastKnownStatusMarkedStaleWithItsAge() async throws {
        let patients = try directory()
        let fresh = try await patients.patient("PT-1", askedBy: "test", terminalId: nil)
        metrc.set { $0.down = true }
        clock.advance(300)
        let stale = try await patients.patient("PT-1", askedBy: "test", terminalId: nil)
        #expect(stale.source == .stale)
        #expect(stale.fetchedAt == fresh.fetchedAt)
        #expect(clock.now.timeIntervalSince(stale.fetchedAt) == 300)
    }

    @Test func aPatientSaleIsRefusedOnAStaleStatusUnderTheDefaultPolicyAndAllowedWhenConfigured() async throws {
        let sale = SaleRequest(clientSaleId: "s", customerType: .patient, lines: [], patientLicenseNumber: "PT-1")
        let strict = try directory()
        _ = try await strict.patient("PT-1", askedBy: "test", terminalId: nil)
        metrc.set { $0.down = true }
        clock.advance(120)
        await #expect(throws: TillError.self) { _ = try await strict.clear(sale, actor: "test", terminalId: nil) }
        do {
            _ = try await strict.clear(sale, actor: "test", terminalId: nil)
        } catch {
            #expect(error.code == "patient_status_stale")
            #expect(error.details["ageSeconds"] == "120")
        }

        metrc.set { $0.down = false }
        let lenient = try directory(policy: .allow)
        _ = try await lenient.patient("PT-1", askedBy: "test", terminalId: nil)
        metrc.set { $0.down = true }
        clock.advance(120)
        let clearance = try await lenient.clear(sale, actor: "test", terminalId: nil)
        #expect(clearance.stale)
    }

    @Test func metrcDownWithNothingKnownIsUnavailableNotAGuess() async throws {
        let patients = try directory()
        metrc.set { $0.down = true }
        do {
            _ = try await patients.patient("PT-1", askedBy: "test", terminalId: nil)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == "metrc_unavailable")
        }
    }

    @Test func anAnswerThatArrivesAfterEveryoneGaveUpIsCachedNotLaterPassedOffAsFresh() async throws {
        let patients = try directory(patience: .milliseconds(50))
        metrc.set { $0.held = true }
        do {
            _ = try await patients.patient("PT-1", askedBy: "test", terminalId: nil)
            Issue.record("expected no answer within the patience")
        } catch {
            #expect(error.code == "metrc_unavailable")
        }
        metrc.set { $0.held = false }  // Metrc answers now, after the only waiter gave up
        var later: StatusSource? = nil
        for _ in 0..<500 where later != .cache {
            later = try? await patients.patient("PT-1", askedBy: "test", terminalId: nil).source
            if later != .cache { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(later == .cache)
        #expect(metrc.calls("PT-1") == 1)  // the late answer was kept, not fetched again
        clock.advance(61)
        let refreshed = try await patients.patient("PT-1", askedBy: "test", terminalId: nil)
        #expect(refreshed.source == .metrc)
        #expect(metrc.calls("PT-1") == 2)
    }

    @Test func licenseNumbersMatchWhateverTheirCase() async throws {
        let patients = try directory()
        _ = try await patients.patient("PT-1", askedBy: "test", terminalId: nil)
        let lower = try await patients.patient("pt-1", askedBy: "test", terminalId: nil)
        #expect(lower.source == .cache)
    }

    @Test func anUnknownPatientIsNotFound() async throws {
        let patients = try directory()
        do {
            _ = try await patients.patient("PT-NOBODY", askedBy: "test", terminalId: nil)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == "patient_not_found")
        }
    }
}
