import Foundation
import GRDB
import TillDomain

/// A package as Metrc reported it, ready to store.
public struct MetrcPackageState: Sendable {
    public var label: String
    public var metrcId: Int64?
    public var itemName: String
    public var category: String?
    public var unit: String
    public var quantity: Decimal
    public var onHold: Bool
    public var labTestingState: String?
    public var active: Bool
    public var lastModified: String?
    public var unitWeight: Decimal?
    public var unitWeightUnit: String?

    public init(label: String, metrcId: Int64?, itemName: String, category: String?, unit: String, quantity: Decimal,
                onHold: Bool, labTestingState: String?, active: Bool, lastModified: String?,
                unitWeight: Decimal? = nil, unitWeightUnit: String? = nil) {
        self.label = label
        self.metrcId = metrcId
        self.itemName = itemName
        self.category = category
        self.unit = unit
        self.quantity = quantity
        self.onHold = onHold
        self.labTestingState = labTestingState
        self.active = active
        self.lastModified = lastModified
        self.unitWeight = unitWeight
        self.unitWeightUnit = unitWeightUnit
    }
}

extension TillStore {
    /// Stores packages pulled from Metrc. The local quantity is Metrc's less what receipts Metrc surely has
    /// not applied yet take and what returns hold off the shelf (quarantined, or wasted until Metrc's package
    /// is adjusted), so a sync never hands back stock that is sold or held, nor takes a sale twice.
    /// A package with a write in doubt (Metrc may or may not show it), or one Metrc may have been told of
    /// since `readSince` (when the sync began reading), keeps its local quantity as Till journaled it.
    /// A full sync also deactivates local packages Metrc no longer lists as active.
    public func applyMetrcPackages(_ packages: [MetrcPackageState], fullSync: Bool, at: Date = Date(),
                                   readSince: Date? = nil) throws {
        try pool.write { db in
            let pending = try Self.quantitiesOwedToMetrc(db)
                .merging(try Self.deliveryQuantitiesOwedToMetrc(db), uniquingKeysWith: +)
            let offTheShelf = try Self.heldPicos(db).merging(try Self.deliveryPicosOffTheShelf(db), uniquingKeysWith: +)
            var held = try Self.packagesWithUnsettledWrites(db)
                .union(try Self.packagesWithUnsettledDeliveryWrites(since: readSince, db))
            if let readSince {
                held.formUnion(try String.fetchAll(db, sql: """
                    SELECT DISTINCT l.package_label FROM sales s JOIN sale_lines l ON l.sale_id = s.id
                    WHERE s.reported_at >= ?
                    """, arguments: [readSince.epochMilliseconds]))
            }
            for package in packages {
                let metrcPicos = Quantities.picosRoundingDown(package.quantity)
                let fromMetrc = max(0, metrcPicos - pending[package.label, default: 0] - offTheShelf[package.label, default: 0])
                try db.run("""
                    INSERT INTO packages (label, metrc_id, item_name, category, unit, quantity_picos, on_hold,
                                          lab_testing_state, active, metrc_quantity, metrc_last_modified, synced_at,
                                          unit_weight, unit_weight_unit)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (label) DO UPDATE SET
                        metrc_id = excluded.metrc_id, item_name = excluded.item_name, category = excluded.category,
                        unit = excluded.unit,
                        quantity_picos = CASE WHEN ? THEN packages.quantity_picos ELSE excluded.quantity_picos END,
                        on_hold = excluded.on_hold,
                        lab_testing_state = excluded.lab_testing_state, active = excluded.active,
                        metrc_quantity = excluded.metrc_quantity, metrc_last_modified = excluded.metrc_last_modified,
                        synced_at = excluded.synced_at, unit_weight = excluded.unit_weight,
                        unit_weight_unit = excluded.unit_weight_unit
                    """, [package.label, package.metrcId, package.itemName, package.category, package.unit,
                                     fromMetrc, package.onHold, package.labTestingState, package.active,
                                     "\(package.quantity)", package.lastModified, at.epochMilliseconds,
                                     package.unitWeight.map { "\($0)" }, package.unitWeightUnit,
                                     held.contains(package.label)])
            }
            if fullSync {
                let seen = Set(packages.map(\.label))
                let known = try String.fetchAll(db.cachedStatement(sql: "SELECT label FROM packages WHERE active = 1"))
                for label in known where !seen.contains(label) {
                    try db.run("UPDATE packages SET active = 0, synced_at = ? WHERE label = ?", [at.epochMilliseconds, label])
                }
            }
        }
    }

    public func packages(labels: some Collection<String>) throws -> [String: PackageSnapshot] {
        try pool.read { db in try Self.packages(labels: labels, db) }
    }

    static func packages(labels: some Collection<String>, _ db: Database) throws -> [String: PackageSnapshot] {
        var snapshots: [String: PackageSnapshot] = [:]
        for label in labels where snapshots[label] == nil {
            if let snapshot = try db.firstDirect(packageByLabel, label, read: Self.snapshot(from:)) {
                snapshots[label] = snapshot
            }
        }
        return snapshots
    }

    /// Active packages with stock left, as registers see them.
    public func sellablePackages() throws -> [PackageSnapshot] {
        try pool.read { db in
            var snapshots: [PackageSnapshot] = []
            try db.forEachDirect("""
                SELECT \(Self.snapshotColumns) FROM packages WHERE active = 1 AND quantity_picos > 0 ORDER BY label
                """) { snapshots.append(Self.snapshot(from: $0)) }
            return snapshots
        }
    }

    public func packageCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM packages WHERE active = 1")) ?? 0 }
    }

    /// What `snapshot(from:)` reads, in its order.
    private static let snapshotColumns = """
        label, item_name, category, unit, quantity_picos, on_hold, lab_testing_state, active, unit_weight, unit_weight_unit
        """

    /// Built once: every sale reads its packages with it.
    private static let packageByLabel = "SELECT \(snapshotColumns) FROM packages WHERE label = ?"

    private static func snapshot(from row: DirectRow) -> PackageSnapshot {
        PackageSnapshot(label: row.string(0), itemName: row.string(1), category: row.optionalString(2), unit: row.string(3),
                        quantity: Quantities.decimal(picos: row.int64(4)), onHold: row.bool(5),
                        labTestingState: row.optionalString(6), active: row.bool(7),
                        unitWeight: row.optionalString(8).flatMap { Decimal(string: $0) },
                        unitWeightUnit: row.optionalString(9))
    }
}

extension Quantities {
    /// Picos, dropping anything finer (Metrc's own figures are never that fine in practice).
    public static func picosRoundingDown(_ quantity: Decimal) -> Int64 {
        var scaled = quantity * Decimal(string: "1000000000000")!
        var rounded = Decimal()
        NSDecimalRound(&rounded, &scaled, 0, .down)
        return NSDecimalNumber(decimal: rounded).int64Value
    }
}
