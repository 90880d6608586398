-- The audit log becomes tamper-evident: every event carries the hash of the event before it (`prev_hash`)
-- and its own (`hash`, SHA-256 of `prev_hash` and the event's fields; TillStore/AuditChain.swift), so an
-- event edited, deleted or moved breaks the chain where it happened and `till audit verify` names it.
--
-- The events already logged are chained here, in id order, inside this migration's transaction: no start
-- ever sees a log half chained, and the append-only triggers need no gap. SQLite has no SHA-256 of its
-- own, so `till_audit_hash` is the function Till registers for its migrations (the same code that chains
-- every later event). What was changed before this migration ran cannot be told; what changes after can.
--
-- A NOT NULL column cannot be added to rows that exist, so the table is rebuilt; the append-only triggers
-- go with the old table and are created again as they were.
CREATE TABLE audit_log_chained (
    id               INTEGER PRIMARY KEY,
    at               INTEGER NOT NULL,
    actor            TEXT NOT NULL,
    terminal_id      INTEGER,
    action           TEXT NOT NULL,
    license          TEXT,
    metrc_endpoint   TEXT,
    request_digest   TEXT,
    response_digest  TEXT,
    subject          TEXT,
    detail           TEXT,
    prev_hash        TEXT NOT NULL CHECK (length(prev_hash) = 64),
    hash             TEXT NOT NULL CHECK (length(hash) = 64)
) STRICT;

-- Each step finds the next event by the primary key, so chaining a long log costs one look-up per event.
WITH RECURSIVE chain (id, at, actor, terminal_id, action, license, metrc_endpoint, request_digest, response_digest,
                      subject, detail, prev_hash, hash) AS (
    SELECT a.id, a.at, a.actor, a.terminal_id, a.action, a.license, a.metrc_endpoint, a.request_digest,
           a.response_digest, a.subject, a.detail, hex(zeroblob(32)),
           till_audit_hash(hex(zeroblob(32)), a.at, a.actor, a.terminal_id, a.action, a.license, a.metrc_endpoint,
                           a.request_digest, a.response_digest, a.subject, a.detail)
    FROM audit_log a
    WHERE a.id = (SELECT min(id) FROM audit_log)
    UNION ALL
    SELECT a.id, a.at, a.actor, a.terminal_id, a.action, a.license, a.metrc_endpoint, a.request_digest,
           a.response_digest, a.subject, a.detail, c.hash,
           till_audit_hash(c.hash, a.at, a.actor, a.terminal_id, a.action, a.license, a.metrc_endpoint,
                           a.request_digest, a.response_digest, a.subject, a.detail)
    FROM chain c JOIN audit_log a ON a.id = (SELECT min(id) FROM audit_log WHERE id > c.id)
)
INSERT INTO audit_log_chained (id, at, actor, terminal_id, action, license, metrc_endpoint, request_digest,
                               response_digest, subject, detail, prev_hash, hash)
SELECT id, at, actor, terminal_id, action, license, metrc_endpoint, request_digest, response_digest, subject,
       detail, prev_hash, hash
FROM chain;

DROP TABLE audit_log;
ALTER TABLE audit_log_chained RENAME TO audit_log;

CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
