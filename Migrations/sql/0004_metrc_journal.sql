-- One ordered journal for every write Till owes Metrc, replacing the per-kind outbox.
--
-- A row is written in the same transaction as the local change that causes it (a sale, a check-in, a
-- return, a day close, a delivery step) and holds the exact JSON object it sends. Rows of one subject
-- (a sale, a check-in, ...) go in `seq` order: a row is due only when no earlier row of its subject is
-- left, and a row is deleted once Metrc holds it. A row Metrc refuses stays, `refused`, with Metrc's
-- words, and holds back the later rows of its subject only.
--
-- `in_doubt`: the last attempt may have reached Metrc (sent without a complete answer, a 5xx, or Till
-- died after it began). Only the kind's probe settles it, and a re-send waits until that attempt can no
-- longer land: a while after `attempt_started_at`, which is stored before anything is sent.
CREATE TABLE metrc_journal (
    id                  INTEGER PRIMARY KEY,
    -- receipt.create, receipt.update, ...: the kinds Till knows (TillDomain.JournalKind). Not a CHECK, so
    -- that a later kind (deliveries) needs no rebuild of this table.
    kind                TEXT NOT NULL,
    subject_type        TEXT NOT NULL,
    subject_id          INTEGER NOT NULL,
    seq                 INTEGER NOT NULL CHECK (seq >= 1),
    body                TEXT NOT NULL CHECK (json_valid(body)),
    state               TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'refused')),
    created_at          INTEGER NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Not before this instant; also the lease of an attempt in flight.
    next_attempt_at     INTEGER NOT NULL,
    in_doubt            INTEGER NOT NULL DEFAULT 0 CHECK (in_doubt IN (0, 1)),
    attempt_started_at  INTEGER,
    last_error          TEXT,
    -- Metrc's words, a JSON array of strings, for a refused row.
    refusal_json        TEXT,
    refused_at          INTEGER,
    CHECK (in_doubt = 0 OR attempt_started_at IS NOT NULL),
    CHECK (state <> 'refused' OR refusal_json IS NOT NULL),
    UNIQUE (subject_type, subject_id, seq)
) STRICT;
CREATE INDEX metrc_journal_due ON metrc_journal (next_attempt_at) WHERE state = 'pending';

-- Receipts Metrc holds more than once under one of Till's receipt numbers, as the duplicate sweep found
-- them: Till keeps the Id it recorded and archives these through the journal.
CREATE TABLE metrc_duplicates (
    metrc_receipt_id  INTEGER PRIMARY KEY,
    sale_id           INTEGER NOT NULL REFERENCES sales(id),
    kept_receipt_id   INTEGER NOT NULL CHECK (kept_receipt_id <> metrc_receipt_id),
    found_at          INTEGER NOT NULL,
    archived_at       INTEGER
) STRICT;

-- What the outbox still owed moves over as it stood; bodies are written as Till writes them (JSON
-- objects, absent fields left out: json_patch drops the nulls).
INSERT INTO metrc_journal (kind, subject_type, subject_id, seq, body, created_at, attempts, next_attempt_at,
                           in_doubt, attempt_started_at, last_error)
SELECT 'receipt.create', 'sale', o.sale_id, 1,
       json_patch('{}', json_object(
           'SalesDateTime', s.sales_date_time_local,
           'SalesCustomerType', s.customer_type,
           'PatientLicenseNumber', s.patient_license_number,
           'CaregiverLicenseNumber', s.caregiver_license_number,
           'IdentificationMethod', s.identification_method,
           'PatientRegistrationLocationId', s.patient_registration_location_id,
           'ExternalReceiptNumber', s.receipt_number,
           'Transactions', json((
               SELECT json_group_array(json(line)) FROM (
                   SELECT json_patch('{}', json_object(
                       'PackageLabel', l.package_label,
                       'Quantity', json(l.quantity),
                       'UnitOfMeasure', l.unit,
                       'TotalAmount', json(printf('%d.%02d', l.total_cents / 100, l.total_cents % 100)),
                       'DiscountAmount', CASE WHEN l.discount_cents IS NULL THEN NULL ELSE json(printf('%d.%02d', l.discount_cents / 100, l.discount_cents % 100)) END,
                       'SalesTax', CASE WHEN l.sales_tax_cents IS NULL THEN NULL ELSE json(printf('%d.%02d', l.sales_tax_cents / 100, l.sales_tax_cents % 100)) END,
                       'ExciseTax', CASE WHEN l.excise_tax_cents IS NULL THEN NULL ELSE json(printf('%d.%02d', l.excise_tax_cents / 100, l.excise_tax_cents % 100)) END,
                       'CityTax', CASE WHEN l.city_tax_cents IS NULL THEN NULL ELSE json(printf('%d.%02d', l.city_tax_cents / 100, l.city_tax_cents % 100)) END,
                       'CountyTax', CASE WHEN l.county_tax_cents IS NULL THEN NULL ELSE json(printf('%d.%02d', l.county_tax_cents / 100, l.county_tax_cents % 100)) END,
                       'MunicipalTax', CASE WHEN l.municipal_tax_cents IS NULL THEN NULL ELSE json(printf('%d.%02d', l.municipal_tax_cents / 100, l.municipal_tax_cents % 100)) END
                   )) AS line
                   FROM sale_lines l WHERE l.sale_id = s.id ORDER BY l.line_number))))),
       o.created_at, o.attempts, o.next_attempt_at, o.needs_lookup,
       COALESCE(o.last_attempt_at, o.created_at), o.last_error
FROM outbox o JOIN sales s ON s.id = o.sale_id
WHERE o.kind = 'receipt';

INSERT INTO metrc_journal (kind, subject_type, subject_id, seq, body, created_at, attempts, next_attempt_at,
                           in_doubt, attempt_started_at, last_error)
SELECT 'checkin.create', 'checkin', o.checkin_id, 1,
       json_patch('{}', json_object(
           'PatientLicenseNumber', c.patient_license_number,
           'CheckInLocationId', c.checkin_location_id,
           'RegistrationStartDate', c.registration_start_date,
           'RegistrationExpiryDate', c.registration_expiry_date,
           'CheckInDate', c.checkin_date_local)),
       o.created_at, o.attempts, o.next_attempt_at, o.needs_lookup,
       COALESCE(o.last_attempt_at, o.created_at), o.last_error
FROM outbox o JOIN patient_checkins c ON c.id = o.checkin_id
WHERE o.kind = 'checkin';

DROP TABLE outbox;
