import GRDB
import Testing
@testable import TillStore

/// The sale path's statements run through SQLite's C API on GRDB's cached statements; GRDB and the direct
/// calls must be able to take turns on the same statement.
@Suite struct DirectStatementTests {
    private func database() throws -> DatabaseQueue {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, note TEXT, n INTEGER)")
        }
        return queue
    }

    @Test func bindsValuesAndNullsAndReadsThemBack() throws {
        try database().write { db in
            try db.executeDirect("INSERT INTO t (id, name, note, n) VALUES (?, ?, ?, ?)", Int64(1), "first", String?.none, 7)
            try db.executeDirect("INSERT INTO t (id, name, note, n) VALUES (?, ?, ?, ?)", Int64(2), "second é", "x", Int?.none)
            var seen: [String] = []
            try db.forEachDirect("SELECT id, name, note, n FROM t ORDER BY id") { row in
                seen.append("\(row.int64(0)) \(row.string(1)) \(row.optionalString(2) ?? "nil") \(row.isNull(3) ? "nil" : "\(row.int64(3))")")
            }
            #expect(seen == ["1 first nil 7", "2 second é x nil"])
            #expect(try db.firstDirect("SELECT name FROM t WHERE id = ?", Int64(3)) { $0.string(0) } == nil)
        }
    }

    /// GRDB leaves a statement it stepped to its end without a reset: binding it directly must still work.
    @Test func takesTurnsWithGRDBOnTheSameCachedStatement() throws {
        try database().write { db in
            let insert = "INSERT INTO t (name) VALUES (?)"
            try db.cachedStatement(sql: insert).execute(arguments: ["grdb-1"])
            try db.executeDirect(insert, "direct-1")
            try db.cachedStatement(sql: insert).execute(arguments: ["grdb-2"])
            try db.executeDirect(insert, "direct-2")
            let read = "SELECT name FROM t WHERE name LIKE ? ORDER BY id"
            #expect(try db.firstDirect(read, "direct%") { $0.string(0) } == "direct-1")  // left mid-way: reset after
            #expect(try String.fetchAll(db.cachedStatement(sql: read), arguments: ["grdb%"]) == ["grdb-1", "grdb-2"])
            #expect(try db.firstDirect(read, "%-2") { $0.string(0) } == "grdb-2")
        }
    }

    @Test func aFailingStatementThrowsSQLitesErrorAndAWrongArgumentCountIsRefused() throws {
        try database().write { db in
            try db.executeDirect("INSERT INTO t (name) VALUES (?)", "once")
            let duplicate = #expect(throws: DatabaseError.self) { try db.executeDirect("INSERT INTO t (name) VALUES (?)", "once") }
            #expect(duplicate?.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE)
            #expect(duplicate?.message?.contains("UNIQUE") == true)
            let miscount = #expect(throws: DatabaseError.self) { try db.executeDirect("INSERT INTO t (name, note) VALUES (?, ?)", "two") }
            #expect(miscount?.resultCode == .SQLITE_MISUSE)
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t") == 1)
        }
    }
}
