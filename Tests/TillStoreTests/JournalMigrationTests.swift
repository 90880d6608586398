import Foundation
import GRDB
import Testing
@testable import TillStore

/// A database with work still in the old outbox keeps all of it when the journal replaces the outbox.
@Suite final class JournalMigrationTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("till-migrate-\(UUID().uuidString.prefix(8))").path

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    @Test func whatTheOutboxOwedMovesToTheJournalWithTheBodiesTillWouldSend() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/till.sqlite"
        let pool = try DatabasePool(path: path)
        try TillStore.migrator().migrate(pool, upTo: "0003_patient_sales_any_case")
        try await pool.write { db in
            try db.execute(sql: """
                INSERT INTO packages (label, item_name, unit, quantity_picos, synced_at) VALUES ('PKG-1', 'Flower', 'Grams', 1, 0);
                INSERT INTO sales (id, client_sale_id, request_digest, receipt_number, customer_type, patient_license_number,
                                   sold_at, sales_date_time_local, business_date_local, total_cents, status)
                VALUES (7, 'c-7', 'd', 'ABC123-000007', 'Patient', 'PT-1', 1000, '2026-11-23T10:00:00.000', '2026-11-23',
                        3610, 'pending_report');
                INSERT INTO sale_lines (sale_id, line_number, package_label, quantity, unit, package_quantity_picos,
                                        total_cents, discount_cents, sales_tax_cents)
                VALUES (7, 0, 'PKG-1', '3.5', 'Grams', 1, 3510, 5, NULL), (7, 1, 'PKG-1', '0.125', 'Ounces', 1, 100, NULL, 7);
                INSERT INTO outbox (kind, sale_id, created_at, attempts, next_attempt_at, needs_lookup, last_attempt_at, last_error)
                VALUES ('receipt', 7, 1000, 2, 5000, 1, 4000, 'Metrc unavailable: HTTP 503');
                INSERT INTO patient_checkins (id, patient_license_number, checkin_location_id, checkin_date_local, created_at, status)
                VALUES (3, 'PT-1', 2, '2026-11-23', 2000, 'pending_report');
                INSERT INTO outbox (kind, checkin_id, created_at, next_attempt_at) VALUES ('checkin', 3, 2000, 2000);
                """)
        }
        try pool.close()

        let store = try TillStore(path: path)
        let receipt = try #require(try store.journalRows(subject: .sale(7)).first)
        #expect(receipt.kind == .receiptCreate && receipt.attempts == 2 && receipt.inDoubt)
        #expect(receipt.attemptStartedAt == Date(epochMilliseconds: 4000))
        #expect(receipt.lastError == "Metrc unavailable: HTTP 503")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(receipt.body.utf8)) as? [String: Any])
        #expect(body["ExternalReceiptNumber"] as? String == "ABC123-000007")
        #expect(body["SalesDateTime"] as? String == "2026-11-23T10:00:00.000")
        #expect(body["SalesCustomerType"] as? String == "Patient")
        #expect(body["PatientLicenseNumber"] as? String == "PT-1")
        #expect(body["CaregiverLicenseNumber"] == nil)  // absent fields are left out, not null
        // Numbers exactly as written: money with its cents, quantities as stored.
        #expect(receipt.body.contains(#""Quantity":3.5,"UnitOfMeasure":"Grams","TotalAmount":35.10,"DiscountAmount":0.05}"#))
        #expect(receipt.body.contains(#""Quantity":0.125,"UnitOfMeasure":"Ounces","TotalAmount":1.00,"SalesTax":0.07}"#))

        let checkIn = try #require(try store.journalRows(subject: .checkIn(3)).first)
        #expect(checkIn.kind == .checkInCreate && !checkIn.inDoubt)
        #expect(checkIn.body == #"{"PatientLicenseNumber":"PT-1","CheckInLocationId":2,"CheckInDate":"2026-11-23"}"#)
        let outbox = try await store.pool.read { db in try db.tableExists("outbox") }
        #expect(!outbox)
    }
}
