-- The manager's day close: once nothing blocks it, every receipt of the business day is finalized in Metrc
-- through the journal (rows with origin day:YYYYMMDD), and the day is closed locally when the last of them
-- is applied. Returns after the close show the day as amended.
CREATE TABLE day_closes (
    business_date_local  TEXT PRIMARY KEY,
    requested_at         INTEGER NOT NULL,
    requested_by         TEXT NOT NULL,
    -- When the finalizes fall due: TILL_FINALIZE_LAG_DAYS after the close, for stores that expect returns.
    finalize_after       INTEGER NOT NULL,
    -- How many receipts the close finalizes.
    receipts             INTEGER NOT NULL CHECK (receipts >= 0),
    closed_at            INTEGER
) STRICT;
