import Foundation
import Testing
@testable import MetrcKit

@Suite struct EncodingTests {
    private func encoded(_ value: some Encodable) throws -> String {
        String(decoding: try MetrcJSON.makeEncoder().encode(value), as: UTF8.self)
    }

    @Test func aReceiptIsSpelledAsMetrcSpellsItWithExactDecimals() throws {
        let receipt = MetrcReceiptDraft(
            salesDateTime: "2026-11-22T14:05:00.000", salesCustomerType: "Patient",
            patientLicenseNumber: "P-1", identificationMethod: "DriversLicense", patientRegistrationLocationId: 12,
            externalReceiptNumber: "TILL-1",
            transactions: [MetrcTransactionDraft(
                packageLabel: "1A4000000000000000000001", quantity: Decimal(string: "3.5")!, unitOfMeasure: "Grams",
                totalAmount: Decimal(string: "35.10")!, price: Decimal(string: "0.1")!, salesTax: Decimal(string: "2.9")!,
                qrCodes: ["https://1a4.com/x"], unitThcPercent: Decimal(string: "21.7")!)])

        #expect(try encoded([receipt]) == #"[{"ExternalReceiptNumber":"TILL-1","IdentificationMethod":"DriversLicense","PatientLicenseNumber":"P-1","PatientRegistrationLocationId":12,"SalesCustomerType":"Patient","SalesDateTime":"2026-11-22T14:05:00.000","Transactions":[{"PackageLabel":"1A4000000000000000000001","Price":0.1,"QrCodes":["https://1a4.com/x"],"Quantity":3.5,"SalesTax":2.9,"TotalAmount":35.1,"UnitOfMeasure":"Grams","UnitThcPercent":21.7}]}]"#)
    }

    @Test func everyTransactionFieldHasItsMetrcName() throws {
        let line = MetrcTransactionDraft(
            packageLabel: "L", quantity: 1, unitOfMeasure: "Each", totalAmount: 1, price: 1, discountAmount: 1, subTotal: 1,
            salesTax: 1, exciseTax: 1, cityTax: 1, countyTax: 1, municipalTax: 1, invoiceNumber: "I", qrCodes: [],
            unitThcPercent: 1, unitThcContent: 1, unitThcContentUnitOfMeasure: "Milligrams", unitWeight: 1,
            unitWeightUnitOfMeasure: "Grams")
        let object = try JSONSerialization.jsonObject(with: MetrcJSON.makeEncoder().encode(line)) as? [String: Any]
        #expect(Set(object?.keys ?? [:].keys) == [
            "PackageLabel", "Quantity", "UnitOfMeasure", "TotalAmount", "Price", "DiscountAmount", "SubTotal", "SalesTax",
            "ExciseTax", "CityTax", "CountyTax", "MunicipalTax", "InvoiceNumber", "QrCodes", "UnitThcPercent",
            "UnitThcContent", "UnitThcContentUnitOfMeasure", "UnitWeight", "UnitWeightUnitOfMeasure",
        ])
    }

    @Test func nilFieldsAreLeftOut() throws {
        #expect(try encoded(receiptDraft(1)) == #"{"ExternalReceiptNumber":"TILL-1","SalesCustomerType":"Consumer","SalesDateTime":"2026-11-22T14:05:00.000","Transactions":[{"PackageLabel":"1A4000000000000000000001","Quantity":1,"TotalAmount":10,"UnitOfMeasure":"Each"}]}"#)
    }

    @Test func anUpdateCarriesItsIdBesideTheReceiptFields() throws {
        let update = MetrcReceiptUpdate(id: 987, receipt: receiptDraft(1))
        #expect(try encoded(update) == #"{"ExternalReceiptNumber":"TILL-1","Id":987,"SalesCustomerType":"Consumer","SalesDateTime":"2026-11-22T14:05:00.000","Transactions":[{"PackageLabel":"1A4000000000000000000001","Quantity":1,"TotalAmount":10,"UnitOfMeasure":"Each"}]}"#)
    }

    @Test func aCheckInIsSpelledAsMetrcSpellsIt() throws {
        let checkIn = MetrcPatientCheckInDraft(patientLicenseNumber: "P-1", checkInLocationId: 4,
                                               registrationStartDate: "2026-01-01", checkInDate: "2026-11-22")
        #expect(try encoded(checkIn) == #"{"CheckInDate":"2026-11-22","CheckInLocationId":4,"PatientLicenseNumber":"P-1","RegistrationStartDate":"2026-01-01"}"#)
    }

    @Test func theReceiptBodyWrittenByHandIsTheEncodersByteForByte() throws {
        let everything = MetrcTransactionDraft(
            packageLabel: "1A4/\"quoted\"\\back", quantity: Decimal(string: "3.543690390625")!, unitOfMeasure: "Ounces",
            totalAmount: Decimal(string: "1234567.89")!, price: Decimal(string: "0.000001")!, discountAmount: 0,
            subTotal: Decimal(string: "-2.5")!, salesTax: 1, exciseTax: Decimal(string: "0.1")!, cityTax: 100,
            countyTax: Decimal(string: "99999999999.99")!, municipalTax: Decimal(string: "0.05")!,
            invoiceNumber: "INV\n1\té", qrCodes: ["https://1a4.com/x", "line\u{1}break\r", ""], unitThcPercent: Decimal(string: "21.7")!,
            unitThcContent: 5, unitThcContentUnitOfMeasure: "Milligrams", unitWeight: Decimal(string: "0.125")!,
            unitWeightUnitOfMeasure: "Grams")
        let receipts = [
            MetrcReceiptDraft(salesDateTime: "2026-03-08T02:30:00.000", salesCustomerType: "Caregiver",
                              patientLicenseNumber: "P-1 ☘", caregiverLicenseNumber: "C-2", identificationMethod: "ID",
                              patientRegistrationLocationId: Int64.max, externalReceiptNumber: "TILL-00001",
                              transactions: [everything, receiptDraft(2).transactions[0]]),
            receiptDraft(3),
            MetrcReceiptDraft(salesDateTime: "", salesCustomerType: "Consumer", transactions: []),
        ]
        for count in 0...receipts.count {
            let chunk = Array(receipts.prefix(count))
            #expect(String(decoding: MetrcReceiptDraft.requestBody(chunk), as: UTF8.self) == (try encoded(chunk)))
        }
    }

    @Test func manyDigitDecimalsSurviveTheRoundTrip() throws {
        let quantity = Decimal(string: "3.543690390625")!
        let line = MetrcTransactionDraft(packageLabel: "L", quantity: quantity, unitOfMeasure: "Ounces", totalAmount: Decimal(string: "0.3")!)
        let text = try encoded(line)
        #expect(text.contains(#""Quantity":3.543690390625"#))
        #expect(text.contains(#""TotalAmount":0.3"#))
    }
}

@Suite struct DecodingTests {
    private func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try MetrcJSON.makeDecoder().decode(T.self, from: Data(text.utf8))
    }

    @Test func keysAreMatchedWhateverTheirCase() throws {
        let pascal = try decode(MetrcReceipt.self, #"{"Id":1,"Transactions":[{"PackageLabel":"A","QuantitySold":3.543690390625,"TotalPrice":0.1}]}"#)
        let camel = try decode(MetrcReceipt.self, #"{"id":1,"transactions":[{"packageLabel":"A","quantitySold":3.543690390625,"totalPrice":0.1}]}"#)
        let upper = try decode(MetrcReceipt.self, #"{"ID":1,"TRANSACTIONS":[{"PACKAGELABEL":"A","QUANTITYSOLD":3.543690390625,"TOTALPRICE":0.1}]}"#)
        #expect(pascal == camel)
        #expect(camel == upper)
        #expect(pascal.transactions?.first?.packageLabel == "A")
        #expect(pascal.transactions?.first?.quantitySold == Decimal(string: "3.543690390625"))
        #expect(pascal.transactions?.first?.totalPrice == Decimal(string: "0.1"))
    }

    @Test func missingOptionalsAndUnknownFieldsAreTolerated() throws {
        let receipt = try decode(MetrcReceipt.self, #"{"Id":5,"RecordedByUserName":"x","SomethingNew":{"a":[1,2]},"TotalPrice":null}"#)
        #expect(receipt == MetrcReceipt(id: 5))

        let package = try decode(MetrcPackage.self, #"{"Id":1,"Label":"L","Quantity":0,"UnitOfMeasureName":"Each","PackageType":"Product","Item":null,"LocationId":null}"#)
        #expect(package == MetrcPackage(id: 1, label: "L", quantity: 0, unitOfMeasureName: "Each"))
    }

    @Test func aFullReceiptDecodes() throws {
        let receipt = try decode(MetrcReceipt.self, #"""
            {"Id":42,"ReceiptNumber":"0000042","SalesDateTime":"2026-11-22T14:05:00.000","SalesCustomerType":"Patient",
             "PatientLicenseNumber":"P1","CaregiverLicenseNumber":null,"ExternalReceiptNumber":"TILL-7","TotalPackages":1,
             "TotalPrice":35.1,"IsFinal":true,"ArchivedDate":null,"LastModified":"2026-11-22T21:05:09+00:00",
             "Transactions":[{"PackageId":9,"PackageLabel":"1A40","ProductName":"Blue Dream","ProductCategoryName":"Flower",
                              "QuantitySold":3.5,"UnitOfMeasureName":"Grams","TotalPrice":35.1,"ItemStrainName":"x"}]}
            """#)
        #expect(receipt == MetrcReceipt(
            id: 42, receiptNumber: "0000042", salesDateTime: "2026-11-22T14:05:00.000", salesCustomerType: "Patient",
            patientLicenseNumber: "P1", externalReceiptNumber: "TILL-7", totalPackages: 1, totalPrice: Decimal(string: "35.1"),
            isFinal: true, lastModified: "2026-11-22T21:05:09+00:00",
            transactions: [MetrcReceiptTransaction(packageId: 9, packageLabel: "1A40", productName: "Blue Dream",
                                                   productCategoryName: "Flower", quantitySold: Decimal(string: "3.5"),
                                                   unitOfMeasureName: "Grams", totalPrice: Decimal(string: "35.1"))]))
    }

    @Test func receiptLinesDecodeInTheSpecsSpellingToo() throws {
        let line = try decode(MetrcReceiptTransaction.self,
                              #"{"PackageLabel":"1A40","Quantity":2.5,"UnitOfMeasure":"Grams","TotalAmount":25.05}"#)
        #expect(line == MetrcReceiptTransaction(packageLabel: "1A40", quantitySold: Decimal(string: "2.5"),
                                                unitOfMeasureName: "Grams", totalPrice: Decimal(string: "25.05")))
    }

    @Test func aPatientStatusDecodesEveryAllowance() throws {
        let status = try decode(MetrcPatientStatus.self, #"""
            {"PatientLicenseNumber":"P1","Active":true,"RegistrationNumber":"R1","PatientLicenseExpirationDate":"2027-01-01",
             "PatientRegistrationStartDate":"2026-01-01","IdentificationMethod":"PatientCard","PurchaseAmountDays":30,
             "FlowerOuncesAllowed":2.5,"FlowerOuncesPurchased":0.125,"FlowerOuncesAvailable":2.375,
             "ThcOuncesAllowed":1,"ThcOuncesPurchased":0,"ThcOuncesAvailable":1,
             "ConcentrateOuncesAllowed":0.5,"ConcentrateOuncesPurchased":0,"ConcentrateOuncesAvailable":0.5,
             "InfusedOuncesAllowed":3,"InfusedOuncesPurchased":1,"InfusedOuncesAvailable":2}
            """#)
        #expect(status.flowerOuncesAvailable == Decimal(string: "2.375"))
        #expect(status.concentrateOuncesAllowed == Decimal(string: "0.5"))
        #expect(status.infusedOuncesAvailable == 2)
        #expect(status.identificationMethod == "PatientCard")
    }
}

@Suite struct LocalTimeTests {
    @Test(arguments: [
        ("2026-03-08T08:30:00Z", "2026-03-08T01:30:00.000"),  // MST, before spring forward
        ("2026-03-08T09:30:00Z", "2026-03-08T03:30:00.000"),  // MDT, 02:xx does not exist that day
        ("2026-11-01T07:30:00Z", "2026-11-01T01:30:00.000"),  // MDT, first 01:30
        ("2026-11-01T08:30:00Z", "2026-11-01T01:30:00.000"),  // MST, second 01:30
        ("2026-11-22T21:05:00.250Z", "2026-11-22T14:05:00.250"),
        ("2026-12-31T23:59:59.999Z", "2026-12-31T16:59:59.999"),
    ])
    func saleTimesAreTheFacilitysWallClockAcrossDaylightSaving(_ utc: String, _ local: String) {
        #expect(MetrcLocalTime.format(date(utc), in: denver) == local)
    }

    @Test func localTimesAreReadBackInTheFacilitysZone() {
        #expect(MetrcLocalTime.parse("2026-11-22T14:05:00.000", in: denver) == date("2026-11-22T21:05:00Z"))
        #expect(MetrcLocalTime.parse("2026-11-22T14:05:00", in: denver) == date("2026-11-22T21:05:00Z"))
        #expect(MetrcLocalTime.parse("2026-07-04T12:00:00.5", in: denver) == date("2026-07-04T18:00:00.500Z"))
        #expect(MetrcLocalTime.parse("2026-03-08T03:30:00.000", in: denver) == date("2026-03-08T09:30:00Z"))
        #expect(MetrcLocalTime.parse("2026-11-01T01:30:00.000", in: denver) == date("2026-11-01T07:30:00Z"), "the earlier of the repeated hour")
        #expect(MetrcLocalTime.parse("2026-11-22T21:05:00Z", in: denver) == date("2026-11-22T21:05:00Z"))
        #expect(MetrcLocalTime.parse("2026-11-22T14:05:00-07:00", in: denver) == date("2026-11-22T21:05:00Z"))
        #expect(MetrcLocalTime.parse("yesterday", in: denver) == nil)
        #expect(MetrcLocalTime.parse("2026-13-01T00:00:00", in: denver) == nil)
    }

    @Test func formatAndParseRoundTripEveryQuarterHourOfADaylightSavingYear() {
        var instant = date("2026-01-01T00:00:00Z")
        let end = date("2027-01-01T00:00:00Z")
        var wrong: [String] = []
        while instant < end {
            let local = MetrcLocalTime.format(instant, in: denver)
            let back = MetrcLocalTime.parse(local, in: denver)
            // Only the repeated fall-back hour is ambiguous; there the earlier instant is chosen.
            if back != instant && back != instant.addingTimeInterval(-3600) { wrong.append(local) }
            instant = instant.addingTimeInterval(900)
        }
        #expect(wrong.isEmpty)
    }

    @Test func filtersAreUTCWithoutFractions() {
        #expect(MetrcLocalTime.filter(date("2026-11-22T21:05:00.900Z")) == "2026-11-22T21:05:00Z")
        #expect(MetrcLocalTime.filter(date("2026-03-08T09:30:00Z")) == "2026-03-08T09:30:00Z")
    }
}

@Suite struct RedactionTests {
    @Test func allButTheLastFourAreMasked() {
        #expect(MetrcRedaction.mask("P-9988-7766-5544") == "************5544")
        #expect(MetrcRedaction.mask("1234") == "****")
        #expect(MetrcRedaction.redact("Patient P123456 unknown", hiding: ["P123456"]) == "Patient ***3456 unknown")
    }
}
