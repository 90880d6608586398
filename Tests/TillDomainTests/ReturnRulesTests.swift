import Foundation
import Testing
@testable import TillDomain

@Suite struct ReturnRulesTests {
    static let line = SaleLine(packageLabel: "PKG-1", quantity: 3, unit: "Each", totalAmount: Money(cents: 1000),
                               discountAmount: Money(cents: 100),
                               taxes: LineTaxes(salesTax: Money(cents: 81), exciseTax: Money(cents: 1)),
                               packageDecrementPicos: 3_000_000_000_000)

    @Test func partsOfALineReturnedOneByOneAddUpToTheLineToTheCent() {
        var returned: Decimal = 0
        var money: [Int64] = [], discounts: [Int64] = [], taxes: [Int64] = [], picos: [Int64] = []
        for _ in 0..<3 {
            let part = ReturnRules.returned(1, of: ReturnableLine(lineNumber: 0, line: Self.line, returned: returned))
            money.append(part.totalAmount.cents)
            discounts.append(part.discountAmount!.cents)
            taxes.append(part.taxes!.salesTax!.cents)
            picos.append(part.packagePicos)
            returned += 1
        }
        #expect(money == [333, 334, 333] && money.reduce(0, +) == 1000)
        #expect(discounts == [33, 34, 33])
        #expect(taxes == [27, 27, 27])
        #expect(picos.reduce(0, +) == Self.line.packageDecrementPicos)
        #expect(ReturnRules.remaining(of: Self.line, returned: 3) == nil)
    }

    @Test func returnedPlusRemainingIsTheLineWhateverThePart() {
        for tenths in 1..<30 {
            let part = Decimal(tenths) / 10
            let returned = ReturnRules.returned(part, of: ReturnableLine(lineNumber: 0, line: Self.line, returned: 0))
            let rest = ReturnRules.remaining(of: Self.line, returned: part)!
            #expect(returned.totalAmount.cents + rest.totalAmount.cents == 1000, "\(part)")
            #expect(returned.discountAmount!.cents + rest.discountAmount!.cents == 100, "\(part)")
            #expect(returned.taxes!.exciseTax!.cents + rest.taxes!.exciseTax!.cents == 1, "\(part)")
            #expect(returned.packagePicos + rest.packageDecrementPicos == Self.line.packageDecrementPicos, "\(part)")
            #expect(rest.quantity == 3 - part)
        }
    }

    @Test func aReturnNamesTheLineItCannotTake() {
        let lines = [ReturnableLine(lineNumber: 0, line: Self.line, returned: 2)]
        let over = ReturnRequest(clientReturnId: "r", lines: [ReturnLineRequest(packageLabel: "pkg-1", quantity: 2, unit: "Each")],
                                 reason: "Defective")
        #expect(throws: TillError.self) { try ReturnRules.plan(over, lines: lines) }
        do {
            _ = try ReturnRules.plan(over, lines: lines)
        } catch {
            #expect(error.code == "return_exceeds_sale" && error.details["remaining"] == "1")
        }
        let all = try? ReturnRules.plan(ReturnRequest(clientReturnId: "r", all: true, reason: "Defective"), lines: lines)
        #expect(all?.map(\.quantity) == [1])
        #expect(all?.first?.totalAmount.cents == 333)  // the last third: 1000 − 667
    }

    @Test func howAReturnReachesMetrcFollowsWhereItsReceiptStands() {
        #expect(ReturnRules.metrcWrites(receiptUnsent: true, finalInMetrc: false, nothingRemains: true).action == .folded)
        #expect(ReturnRules.metrcWrites(receiptUnsent: false, finalInMetrc: false, nothingRemains: false).writes == [.receiptUpdate])
        #expect(ReturnRules.metrcWrites(receiptUnsent: false, finalInMetrc: true, nothingRemains: false).writes
                == [.receiptUnfinalize, .receiptUpdate, .receiptFinalize])
        #expect(ReturnRules.metrcWrites(receiptUnsent: false, finalInMetrc: true, nothingRemains: true).writes
                == [.receiptUnfinalize, .receiptArchive])
    }

    @Test func aReturnsShapeIsCheckedBeforeAnythingIsRead() throws {
        let reasons = ReturnRules.defaultReasons
        #expect(try ReturnRules.checkShape(ReturnRequest(clientReturnId: "r-1", all: true, reason: " wrong ITEM "), reasons: reasons)
                == "Wrong item")
        for bad in [ReturnRequest(clientReturnId: "", all: true, reason: "Defective"),
                    ReturnRequest(clientReturnId: "r 1", all: true, reason: "Defective"),
                    ReturnRequest(clientReturnId: "r-1", all: true, reason: "nope"),
                    ReturnRequest(clientReturnId: "r-1", reason: "Defective"),
                    ReturnRequest(clientReturnId: "r-1", lines: [ReturnLineRequest(packageLabel: "P", quantity: 1, unit: "Each")], all: true,
                                  reason: "Defective"),
                    ReturnRequest(clientReturnId: "r-1", lines: [ReturnLineRequest(packageLabel: "P", quantity: 0, unit: "Each")],
                                  reason: "Defective")] {
            #expect(throws: TillError.self) { try ReturnRules.checkShape(bad, reasons: reasons) }
        }
    }
}

@Suite struct BusinessDayTests {
    @Test func aDaysWindowIsMidnightToMidnightInTheFacilitysZoneAcrossClockChanges() throws {
        let denver = try #require(TimeZone(identifier: "America/Denver"))
        let spring = try #require(FacilityDate.window(of: "2026-03-08", in: denver))
        #expect(spring.end.timeIntervalSince(spring.start) == 23 * 3600)
        let fall = try #require(FacilityDate.window(of: "2026-11-01", in: denver))
        #expect(fall.end.timeIntervalSince(fall.start) == 25 * 3600)
        let plain = try #require(FacilityDate.window(of: "2026-12-05", in: denver))
        #expect(plain.end.timeIntervalSince(plain.start) == 24 * 3600)
        #expect(FacilityDate.string(of: plain.start, in: denver) == "2026-12-05")
        #expect(FacilityDate.string(of: plain.end.addingTimeInterval(-1), in: denver) == "2026-12-05")
        #expect(plain.start == ISO8601DateFormatter().date(from: "2026-12-05T07:00:00Z"))
        #expect(FacilityDate.window(of: "2026-02-30", in: denver) == nil)
    }

    @Test func eachStatesReportingDeadlineAndWhenItsAlertIsRaised() throws {
        let denver = try #require(TimeZone(identifier: "America/Denver"))
        let sold = try #require(ISO8601DateFormatter().date(from: "2026-12-05T16:00:00Z"))  // 09:00 in Denver
        #expect(ReportingDeadline.forState("ca") == .hoursAfterSale(24))
        #expect(ReportingDeadline.forState("OR") == .nextDayAt(hour: 8, minute: 0))
        #expect(ReportingDeadline.forState("co") == .realTime)
        let california = ReportingDeadline.hoursAfterSale(24).deadline(soldAt: sold, businessDate: "2026-12-05", in: denver)
        #expect(california == sold.addingTimeInterval(86_400))
        let oregon = ReportingDeadline.nextDayAt(hour: 8, minute: 0).deadline(soldAt: sold, businessDate: "2026-12-05", in: denver)
        #expect(oregon == sold.addingTimeInterval(23 * 3600))  // 08:00 on the 6th
        #expect(ReportingDeadline.realTime.alertAt(deadline: sold) == sold.addingTimeInterval(300))
        #expect(ReportingDeadline("next-day-08:00") == .nextDayAt(hour: 8, minute: 0))
        #expect(ReportingDeadline("24h") == .hoursAfterSale(24) && ReportingDeadline("now") == .realTime)
        #expect(ReportingDeadline("tomorrow") == nil)
    }
}
