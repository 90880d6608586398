import Foundation
import GRDB
import TillDomain

/// Where a journaled write stands: owed, or refused by Metrc (kept, with Metrc's words, until a person acts).
public enum JournalState: String, Sendable {
    case pending
    case refused
}

/// One write owed to Metrc, or refused by it, as the journal holds it.
public struct JournalRow: Sendable, Hashable, FetchableRecord {
    public var id: Int64
    public var kind: JournalKind
    public var subject: JournalSubject
    /// Its place among the writes of its subject.
    public var seq: Int
    /// The JSON object sent: one element of the request's array, or for a DELETE the Id its path names.
    public var body: String
    public var state: JournalState
    public var createdAt: Date
    public var attempts: Int
    /// Not before this instant; also the lease of an attempt in flight.
    public var nextAttemptAt: Date
    /// The last attempt may have reached Metrc: only the kind's probe may settle it.
    public var inDoubt: Bool
    public var attemptStartedAt: Date?
    public var lastError: String?
    public var refusal: [String]?
    public var refusedAt: Date?

    public init(id: Int64, kind: JournalKind, subject: JournalSubject, seq: Int, body: String, state: JournalState = .pending,
                createdAt: Date, attempts: Int, nextAttemptAt: Date, inDoubt: Bool, attemptStartedAt: Date?,
                lastError: String? = nil, refusal: [String]? = nil, refusedAt: Date? = nil) {
        self.id = id
        self.kind = kind
        self.subject = subject
        self.seq = seq
        self.body = body
        self.state = state
        self.createdAt = createdAt
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.inDoubt = inDoubt
        self.attemptStartedAt = attemptStartedAt
        self.lastError = lastError
        self.refusal = refusal
        self.refusedAt = refusedAt
    }

    public init(row: Row) throws {
        let kindName: String = row["kind"]
        let subjectType: String = row["subject_type"]
        guard let kind = JournalKind(rawValue: kindName),
              let subject = JournalSubject(type: subjectType, id: row["subject_id"]),
              let state = JournalState(rawValue: row["state"]) else {
            throw DatabaseError(resultCode: .SQLITE_ERROR,
                                message: "journal row \(row["id"] as Int64) has a kind or subject this Till does not know: \(kindName) \(subjectType)")
        }
        self.init(id: row["id"], kind: kind, subject: subject, seq: row["seq"], body: row["body"], state: state,
                  createdAt: Date(epochMilliseconds: row["created_at"]), attempts: row["attempts"],
                  nextAttemptAt: Date(epochMilliseconds: row["next_attempt_at"]), inDoubt: row["in_doubt"],
                  attemptStartedAt: (row["attempt_started_at"] as Int64?).map(Date.init(epochMilliseconds:)),
                  lastError: row["last_error"],
                  refusal: (row["refusal_json"] as String?).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) },
                  refusedAt: (row["refused_at"] as Int64?).map(Date.init(epochMilliseconds:)))
    }
}

/// What managers see of the journal: what is owed by kind, what is in doubt and since when, what Metrc refused.
public struct JournalSummary: Sendable {
    public var pendingByKind: [JournalKind: Int]
    /// Owed writes held back by a refused earlier write of their subject.
    public var blocked: Int
    public var inDoubt: [JournalRow]
    public var refused: [JournalRow]
    /// Duplicate receipts in Metrc that the sweep archived.
    public var duplicatesArchived: Int
    public var lastError: String?

    public var pending: Int { pendingByKind.values.reduce(0, +) }
}

extension TillStore {
    // MARK: - Writing to the journal, inside the local change's transaction

    /// Appends a write after every earlier write of its subject, in the caller's transaction.
    ///
    /// - Parameters:
    ///   - firstAttempt: the write is about to be sent by its caller (a fresh sale): it is in doubt from now,
    ///     and the reporter leaves it alone until `leaseUntil`.
    ///   - origin: the local record the write comes from, beyond its subject (a return), whose status it makes.
    @discardableResult
    static func appendJournal(_ kind: JournalKind, subject: JournalSubject, body: String, at: Date,
                              firstAttempt leaseUntil: Date? = nil, origin: (type: String, id: Int64)? = nil,
                              _ db: Database) throws -> Int64 {
        let seq = try db.firstDirect("""
            SELECT COALESCE(MAX(seq), 0) + 1 FROM metrc_journal WHERE subject_type = ? AND subject_id = ?
            """, subject.type, subject.id) { $0.int64(0) } ?? 1
        try db.executeDirect("""
            INSERT INTO metrc_journal (kind, subject_type, subject_id, seq, body, created_at, attempts, next_attempt_at,
                                       in_doubt, attempt_started_at, origin_type, origin_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, kind.rawValue, subject.type, subject.id, seq, body, at.epochMilliseconds, leaseUntil == nil ? 0 : 1,
                             (leaseUntil ?? at).epochMilliseconds, leaseUntil == nil ? 0 : 1,
                             leaseUntil == nil ? nil : at.epochMilliseconds, origin?.type, origin?.id)
        return db.lastInsertedRowID
    }

    /// Appends writes in their own transaction (the sweep's archives, say), with an audit event.
    public func appendJournal(_ writes: [(kind: JournalKind, subject: JournalSubject, body: String)], at: Date,
                              audit: AuditEvent) throws {
        guard !writes.isEmpty else { return }
        try pool.write { db in
            for write in writes {
                try Self.appendJournal(write.kind, subject: write.subject, body: write.body, at: at, db)
            }
            try Self.appendAudit(audit, at: at, db)
        }
    }

    // MARK: - What the reporter takes

    /// A row may go when no earlier write of its subject is left (done writes are deleted), and is due when
    /// its time has come too.
    private static let firstOfItsSubject = """
        j.state = 'pending'
        AND NOT EXISTS (SELECT 1 FROM metrc_journal e
                        WHERE e.subject_type = j.subject_type AND e.subject_id = j.subject_id AND e.seq < j.seq)
        """

    /// Writes due now, oldest first; rows leased to an attempt in flight are not due.
    public func dueJournal(now: Date, limit: Int) throws -> [JournalRow] {
        try pool.read { db in
            try JournalRow.fetchAll(db.cachedStatement(sql: """
                SELECT j.* FROM metrc_journal j WHERE j.next_attempt_at <= ? AND \(Self.firstOfItsSubject) ORDER BY j.id LIMIT ?
                """),
                                    arguments: [now.epochMilliseconds, limit])
        }
    }

    /// When the next write falls due, if any (writes held back by a refused one never do).
    public func nextJournalDue() throws -> Date? {
        try pool.read { db in
            try Int64.fetchOne(db.cachedStatement(sql: """
                SELECT MIN(j.next_attempt_at) FROM metrc_journal j WHERE \(Self.firstOfItsSubject)
                """)).map(Date.init(epochMilliseconds:))
        }
    }

    /// Rows a drain pass took: to send now, or to probe first (their last attempt may have reached Metrc).
    public struct LeasedRows: Sendable {
        /// Their attempt began with the lease: in doubt from now, on disk before they go.
        public var toSend: [JournalRow]
        public var toProbe: [JournalRow]
    }

    /// Takes rows for a pass: nobody else picks them up until `until`. Rows are read again in this transaction,
    /// so what is sent is what is on disk now (a return may have rewritten or dropped a receipt that had not
    /// left since the pass first read it).
    public func leaseJournal(_ ids: [Int64], until: Date, at: Date) throws -> LeasedRows {
        guard !ids.isEmpty else { return LeasedRows(toSend: [], toProbe: []) }
        return try pool.write { db in
            let marks = databaseQuestionMarks(count: ids.count)
            let current = try JournalRow.fetchAll(db, sql: "SELECT * FROM metrc_journal WHERE state = 'pending' AND id IN (\(marks)) ORDER BY id",
                                                  arguments: StatementArguments(ids))
            let sending = current.filter { !$0.inDoubt }.map(\.id)
            try db.execute(sql: "UPDATE metrc_journal SET next_attempt_at = ? WHERE id IN (\(marks))",
                           arguments: StatementArguments([until.epochMilliseconds] + ids))
            try Self.beginAttempts(sending, at: at, db)
            let toSend = try JournalRow.fetchAll(db, sql: """
                SELECT * FROM metrc_journal WHERE id IN (\(databaseQuestionMarks(count: sending.count))) ORDER BY id
                """, arguments: StatementArguments(sending))
            return LeasedRows(toSend: toSend, toProbe: current.filter(\.inDoubt))
        }
    }

    /// Rows a probe cleared for a re-send: their new attempt begins now, durably, before anything leaves.
    public func beginAttempts(_ ids: [Int64], at: Date) throws {
        guard !ids.isEmpty else { return }
        try pool.write { db in try Self.beginAttempts(ids, at: at, db) }
    }

    private static func beginAttempts(_ ids: [Int64], at: Date, _ db: Database) throws {
        guard !ids.isEmpty else { return }
        try db.execute(sql: """
            UPDATE metrc_journal SET attempts = attempts + 1, in_doubt = 1, attempt_started_at = ?
            WHERE id IN (\(databaseQuestionMarks(count: ids.count)))
            """, arguments: StatementArguments([at.epochMilliseconds] + ids))
    }

    /// After a restart no attempt of this process is in flight: every lease is void. (Metrc may still be
    /// working on one: those rows stay in doubt.)
    public func releaseLeases(now: Date) throws {
        try pool.write { db in
            try db.run("UPDATE metrc_journal SET next_attempt_at = ? WHERE state = 'pending' AND next_attempt_at > ?",
                       [now.epochMilliseconds, now.epochMilliseconds])
        }
    }

    /// Makes every row waiting out a retry delay due now; returns how many. Only rows with a failed attempt
    /// or probe on record wait so (`last_error`), and none of them is in flight while the reporter's drain,
    /// which alone retries them, is between passes: a fresh sale's first attempt leases a row with no error yet.
    public func bringRetriesForward(now: Date) throws -> Int {
        try pool.write { db in
            try db.run("""
                UPDATE metrc_journal SET next_attempt_at = ?
                WHERE state = 'pending' AND last_error IS NOT NULL AND next_attempt_at > ?
                """, [now.epochMilliseconds, now.epochMilliseconds])
            return db.changesCount
        }
    }

    // MARK: - Outcomes

    /// Metrc holds these writes (it answered, or a probe found them): each row goes, and its kind's effect is
    /// recorded (a sale reported with its receipt Id, a check-in with its Id).
    ///
    /// Handed to the committer without waiting for the commit: `meanwhile` hears the time recorded (as
    /// stored) once the write is handed in, so that a read after `caughtUp()` sees it; `completion` hears
    /// the outcome. Not synced either (the next synced commit carries it to disk): should the process die or
    /// the power fail first, the rows are still there, in doubt, and their probe finds them in Metrc again.
    public func recordApplied(_ applied: [(row: JournalRow, metrcId: Int64?)], at: Date, audit: AuditEvent,
                              meanwhile: (_ recordedAt: Date) -> Void,
                              completion: @escaping @Sendable (Result<Void, any Error>) -> Void) async {
        let at = Date(epochMilliseconds: at.epochMilliseconds)
        guard !applied.isEmpty else {
            meanwhile(at)
            completion(.success(()))
            return
        }
        let applied = applied.map { AppliedWrite(kind: $0.row.kind, subject: $0.row.subject, rowId: $0.row.id, metrcId: $0.metrcId) }
        await committer.submit(.unsynced, { db in
            for write in applied {
                try Self.recordEffect(of: write, at: at, db)
                try db.executeDirect("DELETE FROM metrc_journal WHERE id = ?", write.rowId)
            }
            try Self.appendAudit(audit, at: at, db)
        }, meanwhile: { meanwhile(at) }, completion: completion)
    }

    private struct AppliedWrite: Sendable {
        var kind: JournalKind
        var subject: JournalSubject
        var rowId: Int64
        var metrcId: Int64?
    }

    private static func recordEffect(of write: AppliedWrite, at: Date, _ db: Database) throws {
        switch (write.kind, write.subject) {
        case (.receiptCreate, .sale(let saleId)):
            guard let receiptId = write.metrcId else {
                throw DatabaseError(resultCode: .SQLITE_CONSTRAINT, message: "a receipt is recorded only with Metrc's Id")
            }
            try db.executeDirect("""
                UPDATE sales SET status = 'reported', metrc_receipt_id = ?, reported_at = ?, rejection_json = NULL
                WHERE id = ?
                """, receiptId, at.epochMilliseconds, saleId)
            // Later writes of this sale (an edit, a finalize) name the receipt by the Id Metrc just gave it.
            try db.executeDirect("""
                UPDATE metrc_journal SET body = json_set(body, '$.Id', ?)
                WHERE subject_type = 'sale' AND subject_id = ? AND seq > 1 AND json_type(body, '$.Id') IS NOT 'integer'
                """, receiptId, saleId)
        case (.checkInCreate, .checkIn(let checkInId)):
            guard let metrcId = write.metrcId else {
                throw DatabaseError(resultCode: .SQLITE_CONSTRAINT, message: "a check-in is recorded only with Metrc's Id")
            }
            try db.executeDirect("""
                UPDATE patient_checkins SET status = 'reported', metrc_checkin_id = ?, reported_at = ? WHERE id = ?
                """, metrcId, at.epochMilliseconds, checkInId)
        case (.receiptArchive, _):
            // A duplicate the sweep found is gone from Metrc's count.
            try db.executeDirect("""
                UPDATE metrc_duplicates SET archived_at = ?
                WHERE metrc_receipt_id = (SELECT json_extract(body, '$.Id') FROM metrc_journal WHERE id = ?)
                """, at.epochMilliseconds, write.rowId)
        case (.receiptFinalize, .sale(let saleId)), (.receiptUnfinalize, .sale(let saleId)):
            try db.executeDirect("UPDATE sales SET metrc_final = ? WHERE id = ?", write.kind == .receiptFinalize ? 1 : 0, saleId)
        case (_, .delivery), (_, .trip):
            try recordDeliveryEffect(kind: write.kind, subject: write.subject, rowId: write.rowId, metrcId: write.metrcId, at: at, db)
        case (.packageAdjust, _):
            // Wasted goods Metrc no longer counts: nothing to take off its count at the next sync.
            try db.executeDirect("""
                DELETE FROM held_stock WHERE disposition = 'waste' AND (return_id, package_label) =
                    (SELECT origin_id, json_extract(body, '$.Label') FROM metrc_journal WHERE id = ? AND origin_type = 'return')
                """, write.rowId)
        default:
            break  // the local change was recorded when the write was journaled
        }
    }

    /// Metrc refused the write: the row stays, refused, with Metrc's words, and holds back the later writes
    /// of its subject. A refused receipt marks its sale rejected; when its register was told so
    /// (`restoreStock`), the sale never happened and its quantities go back.
    public func recordRefused(_ row: JournalRow, messages: [String], restoreStock: Bool, at: Date, audit: AuditEvent) throws {
        let json = String(decoding: try JSONEncoder().encode(messages), as: UTF8.self)
        try pool.write { db in
            try db.run("""
                UPDATE metrc_journal SET state = 'refused', refusal_json = ?, refused_at = ?, in_doubt = 0, last_error = ?
                WHERE id = ?
                """, [json, at.epochMilliseconds, "Metrc refused: " + messages.joined(separator: "; "), row.id])
            switch (row.kind, row.subject) {
            case (.receiptCreate, .sale(let saleId)):
                try db.run("UPDATE sales SET status = 'rejected', rejection_json = ?, sale_undone = ? WHERE id = ?",
                           [json, restoreStock, saleId])
                if restoreStock {
                    try db.run("""
                        UPDATE packages SET quantity_picos = quantity_picos +
                            (SELECT SUM(package_quantity_picos) FROM sale_lines l WHERE l.sale_id = ?1 AND l.package_label = packages.label)
                        WHERE label IN (SELECT package_label FROM sale_lines WHERE sale_id = ?1)
                        """, [saleId])
                }
            case (.checkInCreate, .checkIn(let checkInId)):
                try db.run("UPDATE patient_checkins SET status = 'rejected', rejection_json = ? WHERE id = ?", [json, checkInId])
            default:
                break
            }
            try Self.appendAudit(audit, at: at, db)
        }
    }

    /// An attempt or a probe failed in a way worth retrying; try again at `nextAttemptAt`.
    ///
    /// - Parameter inDoubt: whether the rows' last attempt may have reached Metrc from now on; nil leaves it
    ///   as it was (a probe that failed settles nothing).
    public func recordJournalFailure(_ ids: [Int64], message: String, inDoubt: Bool?, nextAttemptAt: Date, at: Date) throws {
        guard !ids.isEmpty else { return }
        try pool.write { db in
            try db.execute(sql: """
                UPDATE metrc_journal SET last_error = ?, in_doubt = COALESCE(?, in_doubt), next_attempt_at = ?
                WHERE id IN (\(databaseQuestionMarks(count: ids.count)))
                """, arguments: StatementArguments([message, inDoubt, nextAttemptAt.epochMilliseconds] as [(any DatabaseValueConvertible)?]
                                                   + ids.map { $0 as (any DatabaseValueConvertible)? }))
        }
    }

    // MARK: - Reading it

    public func journalRows(subject: JournalSubject) throws -> [JournalRow] {
        try pool.read { db in
            try JournalRow.fetchAll(db, sql: "SELECT * FROM metrc_journal WHERE subject_type = ? AND subject_id = ? ORDER BY seq",
                                    arguments: [subject.type, subject.id])
        }
    }

    public func journalSummary() throws -> JournalSummary {
        try pool.read { db in
            var byKind: [JournalKind: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT kind, COUNT(*) AS n FROM metrc_journal WHERE state = 'pending' GROUP BY kind") {
                if let kind = JournalKind(rawValue: row["kind"]) { byKind[kind] = row["n"] }
            }
            let blocked = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM metrc_journal j WHERE j.state = 'pending' AND EXISTS (
                    SELECT 1 FROM metrc_journal e WHERE e.subject_type = j.subject_type AND e.subject_id = j.subject_id
                    AND e.seq < j.seq AND e.state = 'refused')
                """) ?? 0
            let inDoubt = try JournalRow.fetchAll(db, sql: """
                SELECT * FROM metrc_journal WHERE state = 'pending' AND in_doubt = 1 ORDER BY attempt_started_at, id
                """)
            let refused = try JournalRow.fetchAll(db, sql: "SELECT * FROM metrc_journal WHERE state = 'refused' ORDER BY id")
            let archived = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metrc_duplicates WHERE archived_at IS NOT NULL") ?? 0
            let lastError = try String.fetchOne(db, sql: """
                SELECT last_error FROM metrc_journal WHERE state = 'pending' AND last_error IS NOT NULL
                ORDER BY next_attempt_at DESC LIMIT 1
                """)
            return JournalSummary(pendingByKind: byKind, blocked: blocked, inDoubt: inDoubt, refused: refused,
                                  duplicatesArchived: archived, lastError: lastError)
        }
    }

    /// Packages whose quantity in Metrc may not yet, or may already, show a write Till owes: a write of a sale
    /// on them is in doubt, or owed other than its receipt's first POST (an archive, an edit). An inventory
    /// sync leaves their local quantity as Till journaled it.
    static func packagesWithUnsettledWrites(_ db: Database) throws -> Set<String> {
        Set(try String.fetchAll(db, sql: """
            SELECT DISTINCT l.package_label FROM metrc_journal j JOIN sale_lines l ON l.sale_id = j.subject_id
            WHERE j.subject_type = 'sale' AND j.state = 'pending' AND (j.in_doubt = 1 OR j.kind <> 'receipt.create')
            """))
    }

    /// What receipts Metrc has surely not applied yet take from each package: their first POST is owed and
    /// not in doubt; it carries the sale's lines less what returns folded into it took back.
    static func quantitiesOwedToMetrc(_ db: Database) throws -> [String: Int64] {
        Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: """
            SELECT l.package_label,
                   SUM(l.package_quantity_picos - COALESCE((SELECT SUM(rl.package_quantity_picos) FROM return_lines rl
                                                            WHERE rl.sale_id = l.sale_id AND rl.line_number = l.line_number), 0))
                       AS taken
            FROM metrc_journal j JOIN sale_lines l ON l.sale_id = j.subject_id
            WHERE j.subject_type = 'sale' AND j.kind = 'receipt.create' AND j.state = 'pending' AND j.in_doubt = 0
            GROUP BY l.package_label
            """).map { ($0["package_label"] as String, $0["taken"] as Int64) })
    }

    // MARK: - The duplicate sweep

    /// Business days with a sale whose write is in doubt: the sweep looks at them too.
    public func businessDatesWithWritesInDoubt() throws -> Set<String> {
        try pool.read { db in
            Set(try String.fetchAll(db, sql: """
                SELECT DISTINCT s.business_date_local FROM metrc_journal j JOIN sales s ON s.id = j.subject_id
                WHERE j.subject_type = 'sale' AND j.state = 'pending' AND j.in_doubt = 1
                """))
        }
    }

    /// Till's sales with these receipt numbers (Till issued them), with the receipt Id Till recorded, if any.
    public func salesIssued(receiptNumbers: Set<String>) throws -> [String: (saleId: Int64, metrcReceiptId: Int64?)] {
        guard !receiptNumbers.isEmpty else { return [:] }
        return try pool.read { db in
            var found: [String: (saleId: Int64, metrcReceiptId: Int64?)] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT id, receipt_number, metrc_receipt_id FROM sales
                WHERE receipt_number IN (\(databaseQuestionMarks(count: receiptNumbers.count)))
                """, arguments: StatementArguments(Array(receiptNumbers))) {
                found[row["receipt_number"]] = (row["id"], row["metrc_receipt_id"])
            }
            return found
        }
    }

    /// Records duplicates the sweep found and journals the archive of each one not seen before, in one
    /// transaction with an audit event each. Returns how many were new.
    public func journalDuplicateArchives(_ duplicates: [(saleId: Int64, duplicateId: Int64, keptId: Int64, body: String)],
                                         at: Date, actor: String, license: String) throws -> Int {
        try pool.write { db in
            var new = 0
            for duplicate in duplicates {
                try db.run("""
                    INSERT INTO metrc_duplicates (metrc_receipt_id, sale_id, kept_receipt_id, found_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (metrc_receipt_id) DO NOTHING
                    """, [duplicate.duplicateId, duplicate.saleId, duplicate.keptId, at.epochMilliseconds])
                guard db.changesCount == 1 else { continue }
                new += 1
                try Self.appendJournal(.receiptArchive, subject: .sale(duplicate.saleId), body: duplicate.body, at: at, db)
                try Self.appendAudit(AuditEvent(actor: actor, action: "metrc.duplicate.found", license: license,
                                                metrcEndpoint: "GET /sales/v2/receipts/active",
                                                subject: "\(JournalSubject.sale(duplicate.saleId))",
                                                detail: "Metrc receipt \(duplicate.duplicateId) duplicates \(duplicate.keptId); archiving it"),
                                     at: at, db)
            }
            return new
        }
    }
}
