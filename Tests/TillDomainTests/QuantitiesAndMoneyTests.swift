import Foundation
import Testing
import TillDomain

@Suite struct MoneyTests {
    @Test func amountsWithAtMostTwoDecimalsAreExactCents() throws {
        #expect(Money(exactly: Decimal(string: "35.10")!)?.cents == 3510)
        #expect(Money(exactly: Decimal(string: "0.1")!)?.cents == 10)
        #expect(Money(exactly: 0)?.cents == 0)
        #expect(Money(exactly: Decimal(string: "19.999")!) == nil)
    }

    @Test func moneyDecodesFromJSONNumbersWithoutBinaryRounding() throws {
        struct Box: Decodable { var amount: Money }
        let box = try JSONDecoder().decode(Box.self, from: Data(#"{"amount": 0.29}"#.utf8))
        #expect(box.amount.cents == 29)  // 0.29 as a Double is 0.28999999999999998
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Box.self, from: Data(#"{"amount": 1.005}"#.utf8)) }
    }

    @Test func scaledIntegersAreTheDecimalsLongDivisionGives() {
        for units: Int64 in [0, 1, -1, 5, 10, 29, 3510, -250, 100_000, 3_543_690_390_625, Int64.max, Int64.min + 1] {
            for exponent in [-12, -2, 0, 3] {
                let divided = exponent < 0 ? Decimal(units) / pow(Decimal(10), -exponent) : Decimal(units) * pow(Decimal(10), exponent)
                let built = Decimal(units: units, exponent: exponent)
                #expect(built == divided, "\(units)e\(exponent)")
                #expect(built.description == divided.description, "\(units)e\(exponent)")
            }
        }
        #expect(Money(cents: 3510).decimal.description == "35.1")
        #expect(Quantities.decimal(picos: 3_543_690_390_625).description == "3.543690390625")
    }

    @Test func sumsAreExact() {
        let total = (0..<10).reduce(Money.zero) { sum, _ in sum + Money(exactly: Decimal(string: "0.10")!)! }
        #expect(total == Money(cents: 100))
        #expect(total.description == "1.00")
    }
}

@Suite struct UnitConversionTests {
    @Test func gramsOuncesAndMilligramsConvertExactly() {
        #expect(Quantities.convert(1, from: .ounces, to: .grams) == Decimal(string: "28.349523125"))
        #expect(Quantities.convert(Decimal(string: "0.125")!, from: .ounces, to: .grams) == Decimal(string: "3.543690390625"))
        #expect(Quantities.convert(1000, from: .milligrams, to: .grams) == 1)
        #expect(Quantities.convert(Decimal(string: "3.5")!, from: .grams, to: .milligrams) == 3500)
        #expect(Quantities.convert(1, from: .pounds, to: .ounces) == 16)
        #expect(Quantities.convert(1, from: .kilograms, to: .grams) == 1000)
    }

    @Test func conversionsThatAreNotExactAreRefused() {
        // 3.5 g is 0.1234588... oz: no finite decimal, so Till will not pretend.
        #expect(Quantities.convert(Decimal(string: "3.5")!, from: .grams, to: .ounces) == nil)
        #expect(Quantities.convert(1, from: .each, to: .grams) == nil)
    }

    @Test func unitNamesMatchMetrcsSpellingLoosely() {
        #expect(UnitOfMeasure.named("Grams") == .grams)
        #expect(UnitOfMeasure.named("gram") == .grams)
        #expect(UnitOfMeasure.named("Each") == .each)
        #expect(UnitOfMeasure.named("Fluid Ounces") == .fluidOunces)
        #expect(UnitOfMeasure.named("Bushels") == nil)
    }
}

@Suite struct SaleRulesTests {
    let flower = PackageSnapshot(label: "1A4FF0100000022000000101", itemName: "Flower", category: "Buds", unit: "Grams",
                                 quantity: 10, onHold: false, labTestingState: "TestPassed", active: true)

    func sale(_ lines: [SaleLineRequest], id: String = "s-1") -> SaleRequest {
        SaleRequest(clientSaleId: id, customerType: .consumer, lines: lines)
    }

    func line(_ quantity: String, _ unit: String = "Grams", label: String? = nil) -> SaleLineRequest {
        SaleLineRequest(packageLabel: label ?? flower.label, quantity: Decimal(string: quantity)!, unit: unit,
                        totalAmount: Money(cents: 1000))
    }

    func refusal(_ request: SaleRequest, packages: [PackageSnapshot]) -> String? {
        do {
            _ = try SaleRules.validate(request, packages: Dictionary(uniqueKeysWithValues: packages.map { ($0.label, $0) }))
            return nil
        } catch {
            return error.code
        }
    }

    @Test func aValidSaleTakesTheExactQuantityOffItsPackage() throws {
        let lines = try SaleRules.validate(sale([line("3.5"), line("0.125", "Ounces")]), packages: [flower.label: flower])
        #expect(lines.map(\.packageDecrementPicos) == [3_500_000_000_000, 3_543_690_390_625])
    }

    @Test func everyRuleRefusesWithItsOwnCode() {
        var onHold = flower
        onHold.onHold = true
        var failed = flower
        failed.labTestingState = "TestFailed"
        var inactive = flower
        inactive.active = false
        #expect(refusal(sale([line("3.5")]), packages: []) == "unknown_package")
        #expect(refusal(sale([line("3.5")]), packages: [onHold]) == "package_on_hold")
        #expect(refusal(sale([line("3.5")]), packages: [failed]) == "lab_test_not_passed")
        #expect(refusal(sale([line("3.5")]), packages: [inactive]) == "package_inactive")
        #expect(refusal(sale([line("1", "Each")]), packages: [flower]) == "incompatible_unit")
        #expect(refusal(sale([line("1", "Bushels")]), packages: [flower]) == "unknown_unit")
        #expect(refusal(sale([line("0")]), packages: [flower]) == "invalid_quantity")
        #expect(refusal(sale([line("-1")]), packages: [flower]) == "invalid_quantity")
        #expect(refusal(sale([line("0.0000001")]), packages: [flower]) == "invalid_quantity")
        #expect(refusal(sale([line("6"), line("5")]), packages: [flower]) == "insufficient_quantity")
        #expect(refusal(sale([]), packages: [flower]) == "no_lines")
        #expect(refusal(sale([line("1")], id: ""), packages: [flower]) == "invalid_client_sale_id")
        #expect(refusal(sale([line("1")], id: "has space"), packages: [flower]) == "invalid_client_sale_id")
        #expect(refusal(sale([line("1")], id: "café-1"), packages: [flower]) == "invalid_client_sale_id")
        #expect(refusal(sale([line("1")], id: String(repeating: "a", count: 65)), packages: [flower]) == "invalid_client_sale_id")
        #expect(refusal(sale([line("1")], id: "Reg-7_2026.11.23:0042" + String(repeating: "z", count: 43)), packages: [flower]) == nil)
        #expect(refusal(SaleRequest(clientSaleId: "p", customerType: .patient, lines: [line("1")]), packages: [flower])
                == "patient_license_required")
    }

    @Test func negativeMoneyIsRefused() {
        var bad = line("1")
        bad.totalAmount = Money(cents: -1)
        #expect(refusal(sale([bad]), packages: [flower]) == "invalid_amount")
    }
}

@Suite struct AllowanceLedgerTests {
    func package(_ category: String, unit: String = "Grams", weight: Decimal? = nil, weightUnit: String? = nil) -> PackageSnapshot {
        PackageSnapshot(label: "P-\(category)", itemName: category, category: category, unit: unit, quantity: 1000,
                        onHold: false, labTestingState: "TestPassed", active: true, unitWeight: weight, unitWeightUnit: weightUnit)
    }

    @Test func gramsOuncesAndMilligramsCountExactly() throws {
        let flower = package("Buds")
        let g = try AllowanceLedger.consumption([(Decimal(string: "3.5")!, "Grams", flower)], buckets: .standard)
        #expect(g[.flower] == Decimal(string: "3.5"))
        let eighth = try AllowanceLedger.consumption([(Decimal(string: "0.125")!, "Ounces", flower)], buckets: .standard)
        #expect(eighth[.flower] == Decimal(string: "3.543690390625"))
        let mg = try AllowanceLedger.consumption([(1000, "Milligrams", package("Concentrate"))], buckets: .standard)
        #expect(mg[.concentrate] == 1)
        let gummies = try AllowanceLedger.consumption([(10, "Each", package("Edible", unit: "Each", weight: 100, weightUnit: "Milligrams"))],
                                                      buckets: .standard)
        #expect(gummies[.infused] == 1)
    }

    @Test func anEighthIsExactlyAnEighthOfAnOunceAgainstTheAllowance() throws {
        let status = PatientStatus(licenseNumber: "PT", active: true, registrationNumber: nil, registrationStartDate: nil,
                                   expirationDate: nil, identificationMethod: nil, purchaseAmountDays: nil,
                                   allowances: ["flower": Allowance(allowedOunces: 1, purchasedOunces: Decimal(string: "0.875")!,
                                                                    availableOunces: Decimal(string: "0.125")!)])
        let eighth = try AllowanceLedger.consumption([(Decimal(string: "0.125")!, "Ounces", package("Buds"))], buckets: .standard)
        try AllowanceLedger.check(sale: eighth, recent: [:], status: status)  // exactly at the limit: allowed
        let more = try AllowanceLedger.consumption([(Decimal(string: "3.544")!, "Grams", package("Buds"))], buckets: .standard)
        #expect(throws: TillError.self) { try AllowanceLedger.check(sale: more, recent: [:], status: status) }
        #expect(throws: TillError.self) {
            try AllowanceLedger.check(sale: eighth, recent: [.flower: Decimal(string: "0.000001")!], status: status)
        }
    }

    @Test func theRefusalSaysWhichBucketTheAllowanceAndWhatRemains() throws {
        let status = PatientStatus(licenseNumber: "PT", active: true, registrationNumber: nil, registrationStartDate: nil,
                                   expirationDate: nil, identificationMethod: nil, purchaseAmountDays: nil,
                                   allowances: ["flower": Allowance(allowedOunces: Decimal(string: "2.5")!, purchasedOunces: 2,
                                                                    availableOunces: Decimal(string: "0.5")!)])
        do {
            try AllowanceLedger.check(sale: [.flower: 14], recent: [.flower: 7], status: status)
            Issue.record("expected a refusal")
        } catch {
            #expect(error.code == "allowance_exceeded")
            #expect(error.details["bucket"] == "flower")
            #expect(error.details["allowedOunces"] == "2.5")
            #expect(error.details["remainingOunces"] == "0.2531")  // (0.5 oz = 14.1747615625 g) - 7 g = 0.25308 oz
            #expect(error.message.contains("flower"))
        }
    }

    @Test func itemsWithoutAUnitWeightCannotBeCountedSoTheyAreRefused() {
        #expect(throws: TillError.self) {
            _ = try AllowanceLedger.consumption([(1, "Each", package("Edible", unit: "Each"))], buckets: .standard)
        }
    }

    @Test func categoryMappingCanBeConfigured() {
        let buckets = CategoryBuckets.parse("Vape Cartridge=thc;Beverage=infused")
        #expect(buckets?.bucket(for: "vape cartridge") == .thc)
        #expect(buckets?.bucket(for: "Beverage") == .infused)
        #expect(buckets?.bucket(for: "Buds") == .flower)
        #expect(CategoryBuckets.parse("Buds=leaves") == nil)
    }
}

@Suite struct WakeSignalTests {
    @Test func everyIdleWaitReallyWaitsNotOnlyTheFirst() async {
        let signal = WakeSignal()
        let clock = ContinuousClock()
        for _ in 0..<3 {
            let started = clock.now
            await signal.wait(upTo: .milliseconds(60))
            #expect(clock.now - started >= .milliseconds(55))
        }
    }

    @Test func aWakeWithNobodyWaitingIsKeptForTheNextWait() async {
        let signal = WakeSignal()
        signal.wake()
        let clock = ContinuousClock()
        let started = clock.now
        await signal.wait(upTo: .seconds(30))
        #expect(clock.now - started < .seconds(5))
    }

    @Test func aWakeEndsAWaitInProgress() async {
        let signal = WakeSignal()
        let clock = ContinuousClock()
        let started = clock.now
        async let waited: Void = signal.wait(upTo: .seconds(30))
        try? await Task.sleep(for: .milliseconds(50))
        signal.wake()
        await waited
        #expect(clock.now - started < .seconds(5))
    }

    @Test func aWaitEndedByAWakeLeavesTheNextWaitsToWaitTheirFullTime() async {
        let signal = WakeSignal()
        let clock = ContinuousClock()
        signal.wake()
        await signal.wait(upTo: .seconds(30))  // ends at once: the wake was kept
        async let woken: Void = signal.wait(upTo: .seconds(30))
        try? await Task.sleep(for: .milliseconds(20))
        signal.wake()
        await woken
        // The cancelled timers of the two waits above must not wake the ones below.
        for _ in 0..<3 {
            let started = clock.now
            await signal.wait(upTo: .milliseconds(60))
            #expect(clock.now - started >= .milliseconds(55))
        }
    }
}
