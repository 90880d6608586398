import Foundation
import GRDB
import TillDomain

extension TillStore {
    /// Registers a terminal and returns it with its bearer token; only the token's hash is stored.
    public func addTerminal(name: String, role: TerminalRole, at: Date = Date()) throws -> (Terminal, token: String) {
        let token = Self.newToken()
        let terminal = try pool.write { db -> Terminal in
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM terminals WHERE name = ?"), arguments: [name]) == true {
                throw TillError(.conflict, code: "terminal_exists", "A terminal named \(name) already exists.")
            }
            try db.run("INSERT INTO terminals (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)", [name, role.rawValue, Self.tokenHash(token), at.epochMilliseconds])
            let terminal = Terminal(id: db.lastInsertedRowID, name: name, role: role, revoked: false)
            try Self.appendAudit(AuditEvent(actor: "cli", action: "terminal.added", subject: name, detail: role.rawValue), at: at, db)
            return terminal
        }
        return (terminal, token)
    }

    /// The live terminal holding `token`, if any.
    public func terminal(token: String) throws -> Terminal? {
        try terminal(tokenHash: Self.tokenHash(token))
    }

    public func terminal(tokenHash hash: String) throws -> Terminal? {
        try pool.read { db in
            try db.row("SELECT * FROM terminals WHERE token_hash = ? AND revoked_at IS NULL", [hash])
                .map(Self.terminal(from:))
        }
    }

    /// The live terminal with this id, if it is still live.
    public func terminal(id: Int64) throws -> Terminal? {
        try pool.read { db in
            try db.row("SELECT * FROM terminals WHERE id = ? AND revoked_at IS NULL", [id]).map(Self.terminal(from:))
        }
    }

    static func terminalIsLive(id: Int64, _ db: Database) throws -> Bool {
        try db.firstDirect("SELECT revoked_at IS NULL FROM terminals WHERE id = ?", id) { $0.bool(0) } ?? false
    }

    public func terminals() throws -> [Terminal] {
        try pool.read { db in try db.rows("SELECT * FROM terminals ORDER BY name").map(Self.terminal(from:)) }
    }

    /// Gives the live terminal `name` a new token and voids its old one; nil when no live terminal has that
    /// name. The terminal gets a new row (same name and role): the sale path trusts a cached token only as
    /// far as its journal finds the terminal's row live, so the old row is revoked, and renamed to free the
    /// name while the sales it made keep pointing at it.
    public func rotateTerminal(name: String, at: Date = Date()) throws -> (Terminal, token: String)? {
        let token = Self.newToken()
        let terminal = try pool.write { db -> Terminal? in
            guard let old = try db.row("SELECT * FROM terminals WHERE name = ? AND revoked_at IS NULL", [name])
                .map(Self.terminal(from:)) else { return nil }
            try db.run("UPDATE terminals SET revoked_at = ?, name = ? WHERE id = ?",
                       [at.epochMilliseconds, "\(name) (replaced \(at.formatted(.iso8601)), #\(old.id))", old.id])
            try db.run("INSERT INTO terminals (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
                       [name, old.role.rawValue, Self.tokenHash(token), at.epochMilliseconds])
            let terminal = Terminal(id: db.lastInsertedRowID, name: name, role: old.role, revoked: false)
            try Self.appendAudit(AuditEvent(actor: "cli", action: "terminal.rotated", subject: name,
                                            detail: "replaces terminal #\(old.id)"), at: at, db)
            return terminal
        }
        return terminal.map { ($0, token) }
    }

    /// Revokes the terminal's token; returns false when no live terminal has that name.
    @discardableResult
    public func revokeTerminal(name: String, at: Date = Date()) throws -> Bool {
        try revokeTerminals(where: "name = ?", [name], at: at) > 0
    }

    /// Revokes every live terminal whose name starts with `prefix` (the demo's, one per start); how many.
    @discardableResult
    public func revokeTerminals(namePrefix prefix: String, at: Date = Date()) throws -> Int {
        try revokeTerminals(where: "substr(name, 1, ?) = ?", [prefix.count, prefix], at: at)
    }

    private func revokeTerminals(where condition: String, _ arguments: StatementArguments, at: Date) throws -> Int {
        try pool.write { db in
            let names = try String.fetchAll(db, sql: "SELECT name FROM terminals WHERE revoked_at IS NULL AND \(condition)",
                                            arguments: arguments)
            for name in names {
                try db.run("UPDATE terminals SET revoked_at = ? WHERE name = ?", [at.epochMilliseconds, name])
                try Self.appendAudit(AuditEvent(actor: "cli", action: "terminal.revoked", subject: name), at: at, db)
            }
            return names.count
        }
    }

    private static func terminal(from row: Row) -> Terminal {
        Terminal(id: row["id"], name: row["name"], role: TerminalRole(rawValue: row["role"]) ?? .register,
                 revoked: (row["revoked_at"] as Int64?) != nil)
    }

    /// 192 random bits: guessing one is hopeless, however many attempts a connection gets.
    private static func newToken() -> String {
        var bytes = [UInt8](repeating: 0, count: 24)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = generator.next() }
        return "till_" + hex(bytes)
    }

    /// What is stored of a token, and what it is looked up by.
    public static func tokenHash(_ token: String) -> String { sha256Hex(Data(token.utf8)) }
}
