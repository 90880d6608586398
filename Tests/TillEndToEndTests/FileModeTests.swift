import Foundation
import Testing
import TillStore

/// The data folder and the database files belong to Till's user alone, whatever they were before.
@Suite struct FileModeTests {
    static func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? nil
    }

    @Test func migrateAndServeCloseTheDataFolderAndTheDatabaseFilesToOthers() async throws {
        try await TillProcessWorld.run { world in
            let database = world.directory + "/till.sqlite"
            chmod(world.directory, 0o755)
            chmod(database, 0o644)
            #expect(try await world.command(["migrate"]).status == 0)
            #expect(Self.mode(world.directory) == 0o700)
            #expect(Self.mode(database) == 0o600)

            let first = try await world.launch()
            for file in StoreFiles.databaseFiles(database) {
                #expect(Self.mode(file) == 0o600, "\(file) while till serve runs")
            }
            first.kill9()  // leaves the WAL and SHM behind, as a crash does
            for file in StoreFiles.databaseFiles(database) { chmod(file, 0o644) }
            chmod(world.directory, 0o750)
            let second = try await world.launch()
            defer { second.kill9() }
            #expect(Self.mode(world.directory) == 0o700)
            for file in StoreFiles.databaseFiles(database) {
                #expect(Self.mode(file) == 0o600, "\(file) after a start")
            }
        }
    }
}
