import Crypto
import Foundation
import GRDB

/// One append-only audit record: who did what, against which license and Metrc endpoint.
public struct AuditEvent: Sendable {
    public var actor: String
    public var terminalId: Int64?
    public var action: String
    public var license: String?
    public var metrcEndpoint: String?
    public var requestDigest: String?
    public var responseDigest: String?
    public var subject: String?
    public var detail: String?

    public init(actor: String, terminalId: Int64? = nil, action: String, license: String? = nil,
                metrcEndpoint: String? = nil, requestDigest: String? = nil, responseDigest: String? = nil,
                subject: String? = nil, detail: String? = nil) {
        self.actor = actor
        self.terminalId = terminalId
        self.action = action
        self.license = license
        self.metrcEndpoint = metrcEndpoint
        self.requestDigest = requestDigest
        self.responseDigest = responseDigest
        self.subject = subject
        self.detail = detail
    }
}

/// A stored audit record.
public struct AuditRecord: Sendable {
    public var id: Int64
    public var at: Date
    public var event: AuditEvent
}

/// SHA-256 in hex: how request and response bodies are kept in the audit log (never the bodies themselves).
public func sha256Hex(_ data: Data) -> String {
    hex(SHA256.hash(data: data))
}

public func sha256Hex(_ bytes: [UInt8]) -> String {
    hex(SHA256.hash(data: bytes))
}

/// Lower-case hex of bytes. (String(format: "%02x") per byte was a visible share of the sale path's CPU.)
func hex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text = [UInt8]()
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: text, as: UTF8.self)
}

extension TillStore {
    public func appendAudit(_ event: AuditEvent, at: Date = Date()) throws {
        try pool.write { db in try Self.appendAudit(event, at: at, db) }
    }

    /// Appends `event`, chained to the last one (see `AuditChain`). Inside the caller's write transaction, so
    /// nothing can come between the read of the last hash and the insert; one indexed read and one insert,
    /// as this runs in every sale's transaction.
    static func appendAudit(_ event: AuditEvent, at: Date, _ db: Database) throws {
        let previous = try db.firstDirect("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1") { $0.string(0) }
            ?? AuditChain.genesis
        let millis = at.epochMilliseconds
        let hash = AuditChain.hash(previous: previous, AuditChain.fields(at: millis, event))
        try db.executeDirect("""
            INSERT INTO audit_log (at, actor, terminal_id, action, license, metrc_endpoint, request_digest,
                                   response_digest, subject, detail, prev_hash, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, millis, event.actor, event.terminalId, event.action, event.license, event.metrcEndpoint,
                             event.requestDigest, event.responseDigest, event.subject, event.detail, previous, hash)
    }

    /// The newest audit records first.
    public func auditLog(limit: Int = 100, action: String? = nil) throws -> [AuditRecord] {
        try pool.read { db in
            let rows = try db.rows("""
                SELECT * FROM audit_log WHERE (?1 IS NULL OR action = ?1) ORDER BY id DESC LIMIT ?2
                """, [action, limit])
            return rows.map { row in
                AuditRecord(id: row["id"], at: Date(epochMilliseconds: row["at"]),
                            event: AuditEvent(actor: row["actor"], terminalId: row["terminal_id"], action: row["action"],
                                              license: row["license"], metrcEndpoint: row["metrc_endpoint"],
                                              requestDigest: row["request_digest"], responseDigest: row["response_digest"],
                                              subject: row["subject"], detail: row["detail"]))
            }
        }
    }
}
