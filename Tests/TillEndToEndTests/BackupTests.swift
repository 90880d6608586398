import Foundation
import GRDB
import MetrcSimulator
import Testing
import TillAPI

/// `till backup` beside a `till serve` that sells, and the restore README gives: stop, copy back, start.
@Suite struct BackupTests {
    @Test func aBackupTakenWhileARegisterSellsRestoresAndItsPendingSalesAreReportedOnce() async throws {
        try await TillProcessWorld.run { world in
            let backup = world.directory + "/backups/till-backup.sqlite"
            try FileManager.default.createDirectory(atPath: world.directory + "/backups", withIntermediateDirectories: true)
            let original = try await world.launch()
            // Pending for two reasons: a 503 leaves a receipt in doubt, a 429 (with a Retry-After too long to wait
            // out) leaves it owed and known unsent.
            await world.simulation.setFaults([SimFault(.status(503, body: nil, retryAfterSeconds: nil), method: "POST",
                                                       pathPrefix: "/sales/v2/receipts")])
            var receipts: [String] = []
            for n in 1...5 { receipts.append(try await Self.pendingSale(world, "backup-\(n)")) }
            // Lookups fail too meanwhile: a lookup Metrc answers would bring the 429s' retries forward, and a retry
            // in flight is in doubt again, so the backup might hold no write known unsent.
            await world.simulation.setFaults([
                SimFault(.status(429, body: nil, retryAfterSeconds: 60), method: "POST", pathPrefix: "/sales/v2/receipts"),
                SimFault(.status(503, body: nil, retryAfterSeconds: nil), method: "GET", pathPrefix: "/sales/v2/receipts/external"),
            ])
            for n in 6...10 { receipts.append(try await Self.pendingSale(world, "backup-\(n)")) }
            try await poll(until: "the 429s are recorded: five writes owed and known unsent") {
                let journal = try await world.get("/v1/reporting")["journal"] as? [String: Any] ?? [:]
                return (journal["pending"] as? Int ?? 0) - ((journal["inDoubt"] as? [Any])?.count ?? 0) >= 5
            }
            // The register goes on selling while the backup is taken.
            let register = Task {
                var more: [String] = []
                for n in 11...30 { more.append(try await Self.pendingSale(world, "backup-\(n)")) }
                return more
            }
            let copy = try await world.command(["backup", backup])
            receipts += try await register.value
            #expect(copy.status == 0, "\(copy.errors)")
            #expect(copy.output.contains("integrity_check ok"), "\(copy.output)")
            #expect(FileModeTests.mode(backup) == 0o600)
            let held = try await DatabaseQueue(path: backup).read { db in
                (try Int.fetchOne(db, sql: "SELECT count(*) FROM sales WHERE status = 'pending_report'")!,
                 try Int.fetchOne(db, sql: "SELECT count(*) FROM metrc_journal WHERE in_doubt = 0")!)
            }
            #expect(held.0 >= 10, "the backup holds the sales made before it, pending")
            #expect(held.1 >= 1, "the backup holds writes known unsent, which a restore must not send blindly")

            // Metrc answers again and the running Till reports everything, the sales the backup holds included.
            await world.simulation.clearFaults()
            try await Self.waitUntilNothingIsPending(world)
            #expect(original.terminate(within: .seconds(15)) == 0)
            #expect(await world.simulation.receipts(license: TillHarness.license).count == 30)

            // Restore as README says: Till stopped, the old database and its WAL and SHM away, the copy in place.
            let database = world.directory + "/till.sqlite"
            for file in [database, database + "-wal", database + "-shm"] { try? FileManager.default.removeItem(atPath: file) }
            try FileManager.default.copyItem(atPath: backup, toPath: database)
            let restored = try await world.launch()
            defer { restored.kill9() }

            // Its journal resumes: what the copy still owes is looked up, found, and recorded; nothing is sent twice.
            try await Self.waitUntilNothingIsPending(world)
            let inMetrc = await world.simulation.receipts(license: TillHarness.license)
            #expect(inMetrc.count == 30)
            for number in receipts {
                #expect(inMetrc.filter { $0.externalReceiptNumber == number }.count == 1, "\(number)")
            }
            let restoredSale = try await world.get("/v1/sales/1")
            #expect(restoredSale["status"] as? String == "reported", "\(restoredSale)")

            // A sale made after the restore takes a receipt number neither database has used.
            let after = try await world.sell("after-restore")
            #expect([201, 202].contains(after.status), "\(after.json)")
            let afterNumber = try #require(after.json["receiptNumber"] as? String)
            #expect(!receipts.contains(afterNumber))
            try await Self.waitUntilNothingIsPending(world)
            #expect(await world.simulation.receipts(license: TillHarness.license, externalNumber: afterNumber).count == 1)
            #expect(await world.simulation.receipts(license: TillHarness.license).count == 31)
        }
    }

    @Test func aBackupIsNotWrittenOverAnExistingFileUnlessForced() async throws {
        try await TillProcessWorld.run { world in
            let backup = world.directory + "/kept.sqlite"
            try "yesterday's backup".write(toFile: backup, atomically: false, encoding: .utf8)
            let refused = try await world.command(["backup", backup])
            #expect(refused.status == 1)
            #expect(refused.errors.contains("exists; give --force"), "\(refused.errors)")
            #expect(try String(contentsOfFile: backup, encoding: .utf8) == "yesterday's backup")
            #expect(try FileManager.default.contentsOfDirectory(atPath: world.directory).allSatisfy { !$0.contains(".partial-") })

            let forced = try await world.command(["backup", backup, "--force"])
            #expect(forced.status == 0, "\(forced.errors)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: backup)).prefix(15) == Data("SQLite format 3".utf8))
        }
    }

    /// A sale Metrc does not take now: its receipt number.
    static func pendingSale(_ world: TillProcessWorld, _ clientSaleId: String) async throws -> String {
        let answer = try await world.sell(clientSaleId)
        #expect(answer.status == 202, "\(clientSaleId): \(answer.json)")
        return try #require(answer.json["receiptNumber"] as? String)
    }

    static func waitUntilNothingIsPending(_ world: TillProcessWorld) async throws {
        try await poll(until: "nothing is pending", timeout: .seconds(60)) {
            try await world.get("/v1/reporting")["pending"] as? Int == 0
        }
    }
}
