import Foundation

/// The versioned SQL files of `Migrations/sql`, in the order they apply.
///
/// A migration that has landed is never edited: the next change is a new file.
public enum SQLMigrations {
    public struct Migration: Sendable {
        /// The file name without extension, e.g. `0001_core`; GRDB records it as applied.
        public let name: String
        public let sql: String
    }

    public static func all() throws -> [Migration] {
        guard let folder = Bundle.module.url(forResource: "sql", withExtension: nil) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "Migrations/sql is missing from the bundle"])
        }
        let files = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        return try files.map { url in
            Migration(name: url.deletingPathExtension().lastPathComponent, sql: try String(contentsOf: url, encoding: .utf8))
        }
    }
}
