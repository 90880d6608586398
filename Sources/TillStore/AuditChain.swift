import Crypto
import Foundation
import GRDB

/// The hash chain that makes the audit log tamper-evident: each event stores the hash of the event before
/// it and its own, SHA-256 of that previous hash and its fields. The id is left out on purpose: an event
/// keeps its hash wherever it is moved, so a move shows as a broken link (reordered) rather than an edit.
enum AuditChain {
    /// What the first event is chained to.
    static let genesis = String(repeating: "0", count: 64)

    /// The fields an event's hash covers, in the order of the table's columns, as text (nil for NULL).
    static func fields(at: Int64, _ event: AuditEvent) -> [String?] {
        ["\(at)", event.actor, event.terminalId.map { "\($0)" }, event.action, event.license, event.metrcEndpoint,
         event.requestDigest, event.responseDigest, event.subject, event.detail]
    }

    /// Each field is written as `-` (NULL) or its length in bytes, a colon and its bytes: no two different
    /// events give the same text, whatever their fields hold.
    static func hash(previous: String, _ fields: [String?]) -> String {
        var bytes = Array(previous.utf8)
        for field in fields {
            bytes.append(UInt8(ascii: "\n"))
            guard let field else {
                bytes.append(UInt8(ascii: "-"))
                continue
            }
            bytes.append(contentsOf: "\(field.utf8.count):".utf8)
            bytes.append(contentsOf: field.utf8)
        }
        return hex(SHA256.hash(data: bytes))
    }

    /// `till_audit_hash(prev_hash, at, actor, terminal_id, action, license, metrc_endpoint, request_digest,
    /// response_digest, subject, detail)`: the same hash for the migration that chains the events already logged.
    static let sqlFunction = DatabaseFunction("till_audit_hash", argumentCount: 11, pure: true) { values in
        let texts = values.map(text)
        return hash(previous: texts[0] ?? genesis, Array(texts.dropFirst()))
    }

    /// A column's value as the chain reads it: integers in decimal, text as is.
    static func text(_ value: DatabaseValue) -> String? {
        switch value.storage {
        case .null: nil
        case .int64(let number): "\(number)"
        case .double(let number): "\(number)"
        case .string(let text): text
        case .blob(let data): hex(data)
        }
    }
}

/// What `till audit verify` found.
public enum AuditVerification: Sendable, Equatable {
    /// Every event is chained to the one before it and holds the fields it was written with.
    /// `head` is the last event's id and hash: noted elsewhere, it shows whether events were cut off the end
    /// later, which no chain can show by itself.
    case intact(events: Int, head: (id: Int64, hash: String)?)
    /// The first place where the chain breaks.
    case broken(AuditBreak)

    public static func == (a: AuditVerification, b: AuditVerification) -> Bool {
        switch (a, b) {
        case (.intact(let x, let p), .intact(let y, let q)): x == y && p?.id == q?.id && p?.hash == q?.hash
        case (.broken(let x), .broken(let y)): x == y
        default: false
        }
    }
}

/// The first event the audit log's chain shows was tampered with.
public struct AuditBreak: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case edited, deleted, reordered
    }

    public var kind: Kind
    /// The event edited, deleted or out of place.
    public var eventId: Int64
    /// Events before it that are intact.
    public var intactBefore: Int
    public var explanation: String

    public var description: String { explanation }
}

extension TillStore {
    /// Reads the whole audit log in id order and checks every event's hash and its link to the event before.
    public func verifyAuditLog() throws -> AuditVerification {
        try pool.read { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT id, at, actor, terminal_id, action, license, metrc_endpoint, request_digest, response_digest,
                       subject, detail, prev_hash, hash
                FROM audit_log ORDER BY id
                """)
            var previous: (id: Int64, hash: String)? = nil
            var checked = 0
            while let row = try rows.next() {
                let id: Int64 = row["id"]
                let prevHash: String = row["prev_hash"]
                let storedHash: String = row["hash"]
                let fields = (1...10).map { AuditChain.text(row[$0] as DatabaseValue) }
                if AuditChain.hash(previous: prevHash, fields) != storedHash {
                    return .broken(AuditBreak(kind: .edited, eventId: id, intactBefore: checked, explanation:
                        "event \(id) was edited: its fields no longer give the hash it was written with"))
                }
                if prevHash != (previous?.hash ?? AuditChain.genesis) {
                    return .broken(try Self.brokenLink(at: id, prevHash: prevHash, after: previous?.id,
                                                       intactBefore: checked, db))
                }
                previous = (id, storedHash)
                checked += 1
            }
            return .intact(events: checked, head: previous)
        }
    }

    /// Event `id` is intact but chained to something other than the event before it: the event it was
    /// chained to is elsewhere in the log (reordered), or gone (deleted; or the event before was rewritten
    /// with a new hash, which looks the same when no id is missing).
    private static func brokenLink(at id: Int64, prevHash: String, after previousId: Int64?, intactBefore: Int,
                                   _ db: Database) throws -> AuditBreak {
        if let elsewhere = try Int64.fetchOne(db, sql: "SELECT id FROM audit_log WHERE hash = ? LIMIT 1", arguments: [prevHash]) {
            return AuditBreak(kind: .reordered, eventId: id, intactBefore: intactBefore, explanation:
                "event \(id) is out of order: it was written after event \(elsewhere), not after "
                    + (previousId.map { "event \($0)" } ?? "the start of the log"))
        }
        let expected = (previousId ?? 0) + 1
        if expected < id {
            return AuditBreak(kind: .deleted, eventId: expected, intactBefore: intactBefore, explanation:
                "event \(expected) was deleted" + (expected + 1 < id ? " (and the events up to \(id - 1))" : "")
                    + ": event \(id) was chained to an event no longer in the log")
        }
        guard let previousId else {
            return AuditBreak(kind: .deleted, eventId: id, intactBefore: intactBefore, explanation:
                "the events before event \(id) were deleted: it was chained to an event no longer in the log")
        }
        return AuditBreak(kind: .edited, eventId: previousId, intactBefore: max(0, intactBefore - 1), explanation:
            "event \(previousId) was rewritten with a new hash (or an event after it deleted and the ids closed up): "
                + "event \(id) was chained to an event no longer in the log")
    }
}
