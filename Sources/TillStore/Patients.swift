import Foundation
import GRDB
import TillDomain

extension TillStore {
    /// Keeps the last status Metrc gave for a license, so a stale answer survives a restart.
    public func saveLicenseStatus<Status: Encodable>(_ status: Status, kind: String, licenseNumber: String, fetchedAt: Date) throws {
        let json = String(decoding: try JSONEncoder().encode(status), as: UTF8.self)
        try pool.write { db in
            try db.run("""
                INSERT INTO license_statuses (kind, license_number, status_json, fetched_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (kind, license_number) DO UPDATE SET status_json = excluded.status_json, fetched_at = excluded.fetched_at
                """, [kind, licenseNumber, json, fetchedAt.epochMilliseconds])
        }
    }

    public func licenseStatus<Status: Decodable>(_ type: Status.Type, kind: String, licenseNumber: String) throws -> (Status, Date)? {
        try pool.read { db in
            guard let row = try db.row("""
                SELECT status_json, fetched_at FROM license_statuses WHERE kind = ? AND license_number = ?
                """, [kind, licenseNumber]) else { return nil }
            let status = try JSONDecoder().decode(Status.self, from: Data((row["status_json"] as String).utf8))
            return (status, Date(epochMilliseconds: row["fetched_at"]))
        }
    }

    /// Served by the `sales_by_patient` index (on the upper-cased number).
    static let patientSalesSQL = """
        SELECT s.* FROM sales s
        WHERE upper(s.patient_license_number) = upper(?1) AND s.patient_license_number IS NOT NULL AND s.sold_at >= ?2
          AND NOT (s.status = 'rejected' AND s.sale_undone = 1)
        """

    /// Lines of this patient's sales since `since` that stand (pending, reported, or refused later but
    /// kept), each with its package: what Metrc's cached figures may not show yet. A line counts less what
    /// returns took back once Metrc holds them (the patient is credited then, as Metrc credits it).
    public func patientPurchases(patientLicenseNumber: String, since: Date) throws -> [(line: SaleLine, package: PackageSnapshot)] {
        try pool.read { db in
            let sales = try Self.sales(from: db.rows(Self.patientSalesSQL, [patientLicenseNumber, since.epochMilliseconds]), db)
            let byLabel = try Self.packages(labels: sales.flatMap { $0.lines.map(\.packageLabel) }, db)
            var credited: [Int64: [Int: Decimal]] = [:]
            if !sales.isEmpty {
                let returns = try Self.saleReturns(where: "r.sale_id IN (\(databaseQuestionMarks(count: sales.count)))",
                                                   StatementArguments(sales.map(\.id)), db)
                for saleReturn in returns where saleReturn.status == .reported {
                    for line in saleReturn.lines { credited[saleReturn.saleId, default: [:]][line.lineNumber, default: 0] += line.quantity }
                }
            }
            let fromSales: [(line: SaleLine, package: PackageSnapshot)] = sales.flatMap { sale in
                sale.lines.enumerated().compactMap { number, line in
                    guard let kept = ReturnRules.remaining(of: line, returned: credited[sale.id]?[number] ?? 0) else { return nil }
                    return byLabel[line.packageLabel].map { (kept, $0) }
                }
            }
            return fromSales + (try Self.patientDeliveryPurchases(patientLicenseNumber, since: since, db))
        }
    }

    /// Lines of this patient's deliveries (not voided) and sales from vehicles since `since`: they count against
    /// the allowance as counter sales do.
    private static func patientDeliveryPurchases(_ number: String, since: Date, _ db: Database) throws -> [(line: SaleLine, package: PackageSnapshot)] {
        var lines: [SaleLine] = try db.rows("""
            SELECT l.* FROM delivery_lines l JOIN deliveries d ON d.id = l.delivery_id
            WHERE upper(d.patient_license_number) = upper(?) AND d.created_at >= ? AND d.status <> 'voided'
            """, [number, since.epochMilliseconds]).map { row in
            SaleLine(packageLabel: row["package_label"], quantity: Decimal(string: row["quantity"]) ?? 0, unit: row["unit"],
                     totalAmount: Money(cents: row["total_cents"]), discountAmount: nil, taxes: nil,
                     packageDecrementPicos: row["package_quantity_picos"])
        }
        for detail in try String.fetchAll(db, sql: """
            SELECT detail_json FROM trip_events WHERE kind = 'sale' AND upper(patient_license_number) = upper(?) AND at >= ?
            """, arguments: [number, since.epochMilliseconds]) {
            guard let sale = try Self.decoded(TripEventDetail.self, detail).sale else { continue }
            lines += sale.lines.map {
                SaleLine(packageLabel: $0.packageLabel, quantity: $0.quantity, unit: $0.unit, totalAmount: $0.totalAmount,
                         discountAmount: nil, taxes: nil, packageDecrementPicos: 0)
            }
        }
        let packages = try Self.packages(labels: lines.map(\.packageLabel), db)
        return lines.compactMap { line in packages[line.packageLabel].map { (line, $0) } }
    }
}
