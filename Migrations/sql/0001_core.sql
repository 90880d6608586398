-- Till's core: terminals, local stock, the sales journal, the report outbox and the audit log.
-- Times are Unix epoch milliseconds (UTC) unless named *_local. Quantities are exact fixed-point
-- integers in 10^-12 of the package's unit (*_picos), so 1/8 oz taken from a gram package is exact;
-- money is integer cents.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- A random prefix for receipt numbers, so a rebuilt database never reuses an ExternalReceiptNumber
-- that Metrc already holds (the reporter would mistake the old receipt for the new sale).
INSERT INTO meta (key, value) VALUES ('receipt_prefix', upper(hex(randomblob(3))));

CREATE TABLE terminals (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('register', 'pharmacist', 'manager')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

CREATE TABLE packages (
    label                TEXT PRIMARY KEY,
    metrc_id             INTEGER,
    item_name            TEXT NOT NULL,
    category             TEXT,
    unit                 TEXT NOT NULL,
    quantity_picos      INTEGER NOT NULL CHECK (quantity_picos >= 0),
    on_hold              INTEGER NOT NULL DEFAULT 0 CHECK (on_hold IN (0, 1)),
    lab_testing_state    TEXT,
    active               INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    metrc_quantity       TEXT,
    metrc_last_modified  TEXT,
    synced_at            INTEGER NOT NULL
) STRICT;

CREATE TABLE sales (
    id                                INTEGER PRIMARY KEY,
    client_sale_id                    TEXT NOT NULL UNIQUE,
    request_digest                    TEXT NOT NULL,
    receipt_number                    TEXT NOT NULL UNIQUE,
    terminal_id                       INTEGER REFERENCES terminals(id),
    customer_type                     TEXT NOT NULL,
    patient_license_number            TEXT,
    caregiver_license_number          TEXT,
    identification_method             TEXT,
    patient_registration_location_id  INTEGER,
    sold_at                           INTEGER NOT NULL,
    sales_date_time_local             TEXT NOT NULL,
    business_date_local               TEXT NOT NULL,
    total_cents                       INTEGER NOT NULL CHECK (total_cents >= 0),
    status                            TEXT NOT NULL CHECK (status IN ('pending_report', 'reported', 'rejected')),
    metrc_receipt_id                  INTEGER,
    reported_at                       INTEGER,
    rejection_json                    TEXT,
    -- 1 when a refusal undid the sale (the register was told and stock restored); 0 when the sale
    -- stands and the refusal is an exception for a manager.
    sale_undone                       INTEGER NOT NULL DEFAULT 0 CHECK (sale_undone IN (0, 1)),
    CHECK (status <> 'reported' OR metrc_receipt_id IS NOT NULL)
) STRICT;
CREATE INDEX sales_by_business_date ON sales (business_date_local);
CREATE INDEX sales_by_status ON sales (status);

CREATE TABLE sale_lines (
    sale_id                  INTEGER NOT NULL REFERENCES sales(id),
    line_number              INTEGER NOT NULL,
    package_label            TEXT NOT NULL REFERENCES packages(label),
    quantity                 TEXT NOT NULL,
    unit                     TEXT NOT NULL,
    package_quantity_picos  INTEGER NOT NULL CHECK (package_quantity_picos > 0),
    total_cents              INTEGER NOT NULL CHECK (total_cents >= 0),
    discount_cents           INTEGER CHECK (discount_cents >= 0),
    sales_tax_cents          INTEGER CHECK (sales_tax_cents >= 0),
    excise_tax_cents         INTEGER CHECK (excise_tax_cents >= 0),
    city_tax_cents           INTEGER CHECK (city_tax_cents >= 0),
    county_tax_cents         INTEGER CHECK (county_tax_cents >= 0),
    municipal_tax_cents      INTEGER CHECK (municipal_tax_cents >= 0),
    PRIMARY KEY (sale_id, line_number)
) STRICT;

-- Work owed to Metrc. A row lives until Metrc confirms (then it is deleted in the same transaction
-- that marks the sale reported) or definitely refuses it.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    -- The subject of a 'receipt' row; other kinds name their subject in columns added later.
    sale_id          INTEGER UNIQUE REFERENCES sales(id),
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- Not before this instant; also a lease held by the sale's own first attempt.
    next_attempt_at  INTEGER NOT NULL,
    -- An earlier attempt may have reached Metrc: look it up by external number before posting again.
    needs_lookup     INTEGER NOT NULL DEFAULT 0 CHECK (needs_lookup IN (0, 1)),
    last_attempt_at  INTEGER,
    last_error       TEXT,
    CHECK (kind <> 'receipt' OR sale_id IS NOT NULL)
) STRICT;
CREATE INDEX outbox_due ON outbox (next_attempt_at);

CREATE TABLE audit_log (
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
    detail           TEXT
) STRICT;
CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE sync_runs (
    id                INTEGER PRIMARY KEY,
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    full_sync         INTEGER NOT NULL CHECK (full_sync IN (0, 1)),
    window_start      INTEGER,
    window_end        INTEGER NOT NULL,
    packages_seen     INTEGER NOT NULL DEFAULT 0,
    error             TEXT
) STRICT;
