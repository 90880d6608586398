-- Returns and voids: what came back from which sale, where it went, and how Metrc hears of it.

-- A sale may now be voided: returned in full before its receipt ever left for Metrc, so nothing is owed
-- and Metrc never hears of it. SQLite cannot widen a CHECK in place, so the table is rebuilt (the
-- migrator runs with foreign keys off and checks them before it commits). `metrc_final`: Metrc holds the
-- receipt finalized, as far as Till has told it (a finalize applied, no unfinalize since).
CREATE TABLE sales_rebuilt (
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
    status                            TEXT NOT NULL CHECK (status IN ('pending_report', 'reported', 'rejected', 'voided')),
    metrc_receipt_id                  INTEGER,
    reported_at                       INTEGER,
    rejection_json                    TEXT,
    -- 1 when a refusal undid the sale (the register was told and stock restored); 0 when the sale
    -- stands and the refusal is an exception for a manager.
    sale_undone                       INTEGER NOT NULL DEFAULT 0 CHECK (sale_undone IN (0, 1)),
    metrc_final                       INTEGER NOT NULL DEFAULT 0 CHECK (metrc_final IN (0, 1)),
    CHECK (status <> 'reported' OR metrc_receipt_id IS NOT NULL)
) STRICT;
INSERT INTO sales_rebuilt (id, client_sale_id, request_digest, receipt_number, terminal_id, customer_type,
                           patient_license_number, caregiver_license_number, identification_method,
                           patient_registration_location_id, sold_at, sales_date_time_local, business_date_local,
                           total_cents, status, metrc_receipt_id, reported_at, rejection_json, sale_undone)
SELECT id, client_sale_id, request_digest, receipt_number, terminal_id, customer_type, patient_license_number,
       caregiver_license_number, identification_method, patient_registration_location_id, sold_at,
       sales_date_time_local, business_date_local, total_cents, status, metrc_receipt_id, reported_at,
       rejection_json, sale_undone
FROM sales;
DROP TABLE sales;
ALTER TABLE sales_rebuilt RENAME TO sales;
CREATE INDEX sales_by_business_date ON sales (business_date_local);
CREATE INDEX sales_by_status ON sales (status);
CREATE INDEX sales_by_patient ON sales (upper(patient_license_number), sold_at) WHERE patient_license_number IS NOT NULL;

CREATE TABLE returns (
    id                    INTEGER PRIMARY KEY,
    client_return_id      TEXT NOT NULL UNIQUE,
    -- The same clientReturnId with another body is a conflict, not a replay.
    request_digest        TEXT NOT NULL,
    sale_id               INTEGER NOT NULL REFERENCES sales(id),
    terminal_id           INTEGER REFERENCES terminals(id),
    actor                 TEXT NOT NULL,
    reason                TEXT NOT NULL,
    disposition           TEXT NOT NULL CHECK (disposition IN ('restock', 'quarantine', 'waste')),
    note                  TEXT,
    returned_at           INTEGER NOT NULL,
    business_date_local   TEXT NOT NULL,
    total_cents           INTEGER NOT NULL CHECK (total_cents >= 0),
    -- How Metrc hears of it: folded into the sale's receipt before it left, an edit of the receipt, or its
    -- archive (nothing of the sale remains).
    metrc_action          TEXT NOT NULL CHECK (metrc_action IN ('folded', 'update', 'archive'))
) STRICT;
CREATE INDEX returns_by_sale ON returns (sale_id);
CREATE INDEX returns_by_business_date ON returns (business_date_local);

-- What a return took from each sale line: quantity in the unit sold, the package's stock exactly, and
-- money as the difference of the line's cumulative returned share, so parts add up to the line.
CREATE TABLE return_lines (
    return_id               INTEGER NOT NULL REFERENCES returns(id),
    sale_id                 INTEGER NOT NULL,
    line_number             INTEGER NOT NULL,
    package_label           TEXT NOT NULL,
    quantity                TEXT NOT NULL,
    unit                    TEXT NOT NULL,
    package_quantity_picos  INTEGER NOT NULL CHECK (package_quantity_picos >= 0),
    total_cents             INTEGER NOT NULL CHECK (total_cents >= 0),
    discount_cents          INTEGER CHECK (discount_cents >= 0),
    sales_tax_cents         INTEGER CHECK (sales_tax_cents >= 0),
    excise_tax_cents        INTEGER CHECK (excise_tax_cents >= 0),
    city_tax_cents          INTEGER CHECK (city_tax_cents >= 0),
    county_tax_cents        INTEGER CHECK (county_tax_cents >= 0),
    municipal_tax_cents     INTEGER CHECK (municipal_tax_cents >= 0),
    PRIMARY KEY (return_id, line_number),
    FOREIGN KEY (sale_id, line_number) REFERENCES sale_lines (sale_id, line_number)
) STRICT;
CREATE INDEX return_lines_by_sale ON return_lines (sale_id, line_number);

-- Returned goods kept off the shelf: quarantined for good, or wasted until Metrc's package is adjusted
-- down (then the row goes: Metrc no longer counts them either). An inventory sync never makes them
-- sellable: it takes them off Metrc's count.
CREATE TABLE held_stock (
    return_id       INTEGER NOT NULL REFERENCES returns(id),
    package_label   TEXT NOT NULL,
    disposition     TEXT NOT NULL CHECK (disposition IN ('quarantine', 'waste')),
    quantity_picos  INTEGER NOT NULL CHECK (quantity_picos > 0),
    held_at         INTEGER NOT NULL,
    PRIMARY KEY (return_id, package_label)
) STRICT;
CREATE INDEX held_stock_by_package ON held_stock (package_label);

-- The local record a journaled write comes from, beyond its subject (a return's edit of its sale's
-- receipt): its status is read from the writes it caused.
ALTER TABLE metrc_journal ADD COLUMN origin_type TEXT;
ALTER TABLE metrc_journal ADD COLUMN origin_id INTEGER;
CREATE INDEX metrc_journal_by_origin ON metrc_journal (origin_type, origin_id) WHERE origin_type IS NOT NULL;
