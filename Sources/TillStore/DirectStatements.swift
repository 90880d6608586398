import GRDB
import GRDBSQLite

/// A value bound straight to a statement parameter with SQLite's C API.
protocol DirectBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) -> Int32
}

extension Int64: DirectBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) -> Int32 { sqlite3_bind_int64(statement, index, self) }
}

extension Int: DirectBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) -> Int32 { sqlite3_bind_int64(statement, index, Int64(self)) }
}

extension String: DirectBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) -> Int32 {
        sqlite3_bind_text(statement, index, self, -1, transientText)
    }
}

extension Optional: DirectBindable where Wrapped: DirectBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) -> Int32 {
        switch self {
        case .some(let value): value.bind(to: statement, at: index)
        case .none: sqlite3_bind_null(statement, index)
        }
    }
}

/// SQLite copies the text before the bind returns (SQLITE_TRANSIENT).
private let transientText = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

/// One result row, read by column position (the order of the SELECT list).
struct DirectRow {
    let statement: SQLiteStatement

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
    func bool(_ column: Int32) -> Bool { int64(column) != 0 }
    func string(_ column: Int32) -> String {
        guard let text = sqlite3_column_text(statement, column) else { return "" }
        return String(cString: text)
    }
    func optionalString(_ column: Int32) -> String? { isNull(column) ? nil : string(column) }
}

extension Database {
    /// Runs a statement of the sale path through SQLite's C API, on GRDB's cached statement: for these
    /// short statements GRDB's boxed arguments and its bookkeeping around every step cost more than
    /// SQLite's own work (~11% of a sale's CPU, on the single writer every sale waits for).
    func executeDirect<each Value: DirectBindable>(_ sql: String, _ values: repeat each Value) throws {
        try withDirect(sql, repeat each values) { (statement: SQLiteStatement) in
            var code = sqlite3_step(statement)
            while code == SQLITE_ROW { code = sqlite3_step(statement) }
            guard code == SQLITE_DONE else { throw directError(code, sql) }
        }
    }

    /// Runs a query the same way; `row` sees each result row in turn.
    func forEachDirect<each Value: DirectBindable>(_ sql: String, _ values: repeat each Value,
                                                   row: (DirectRow) throws -> Void) throws {
        try withDirect(sql, repeat each values) { (statement: SQLiteStatement) in
            while true {
                let code = sqlite3_step(statement)
                if code == SQLITE_DONE { return }
                guard code == SQLITE_ROW else { throw directError(code, sql) }
                try row(DirectRow(statement: statement))
            }
        }
    }

    /// The first row's reading, or nil when the query finds nothing.
    func firstDirect<T, each Value: DirectBindable>(_ sql: String, _ values: repeat each Value,
                                                    read: (DirectRow) throws -> T) throws -> T? {
        try withDirect(sql, repeat each values) { (statement: SQLiteStatement) in
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { return nil }
            guard code == SQLITE_ROW else { throw directError(code, sql) }
            return try read(DirectRow(statement: statement))
        }
    }

    private func withDirect<T, each Value: DirectBindable>(_ sql: String, _ values: repeat each Value,
                                                           body: (SQLiteStatement) throws -> T) throws -> T {
        let statement = try cachedStatement(sql: sql).sqliteStatement
        // GRDB leaves a statement as its last step left it; binding needs a reset first. Reset again after,
        // so that an unfinished query holds no read transaction, and leave no bindings behind.
        sqlite3_reset(statement)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        var index: Int32 = 0
        for value in repeat each values {
            index += 1
            let code = value.bind(to: statement, at: index)
            guard code == SQLITE_OK else { throw directError(code, sql) }
        }
        guard index == sqlite3_bind_parameter_count(statement) else {
            throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "\(index) arguments for \(sqlite3_bind_parameter_count(statement)) parameters", sql: sql)
        }
        return try body(statement)
    }

    private func directError(_ code: Int32, _ sql: String) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: sqlite3_extended_errcode(sqliteConnection)),
                      message: String(cString: sqlite3_errmsg(sqliteConnection)), sql: sql)
    }
}
