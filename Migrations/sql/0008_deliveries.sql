-- Deliveries: sales deliveries (one order driven to one customer) and vehicle trips (retailer deliveries: a
-- vehicle loaded with stock that sells on the road). Each is a journal subject of its own ('delivery',
-- 'trip'), so its writes reach Metrc in the order they were taken. See docs/deliveries.md.

-- A new role for the drivers who run trips. SQLite cannot change a CHECK, so the table is rebuilt (the
-- migrator runs with foreign keys off and checks them before it commits).
CREATE TABLE terminals_rebuilt (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('register', 'pharmacist', 'manager', 'driver')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;
INSERT INTO terminals_rebuilt (id, name, role, token_hash, created_at, revoked_at)
SELECT id, name, role, token_hash, created_at, revoked_at FROM terminals;
DROP TABLE terminals;
ALTER TABLE terminals_rebuilt RENAME TO terminals;

CREATE TABLE deliveries (
    id                     INTEGER PRIMARY KEY,
    client_delivery_id     TEXT NOT NULL UNIQUE,
    request_digest         TEXT NOT NULL,
    terminal_id            INTEGER REFERENCES terminals(id),
    created_at             INTEGER NOT NULL,
    business_date_local    TEXT NOT NULL,
    -- Unique among Till's deliveries (to the second): how a create in doubt is recognised in Metrc's lists.
    sales_date_time_local  TEXT NOT NULL UNIQUE,
    customer_type          TEXT NOT NULL,
    patient_license_number TEXT,
    -- Recipient, driver, vehicle, route and times, as the register sent them (Till's JSON).
    details_json           TEXT NOT NULL,
    total_cents            INTEGER NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('open', 'completed', 'voided')),
    -- Set when Metrc shows a step Till did not take (done on Metrc's website): Till sends nothing more.
    frozen_reason          TEXT,
    metrc_delivery_id      INTEGER,
    -- The completion as asked: accepted labels, returned packages with reason, note and disposition.
    completion_json        TEXT,
    completed_at           INTEGER,
    voided_at              INTEGER
) STRICT;
CREATE INDEX deliveries_by_business_date ON deliveries (business_date_local);
CREATE INDEX deliveries_open ON deliveries (status) WHERE status = 'open';

CREATE TABLE delivery_lines (
    delivery_id             INTEGER NOT NULL REFERENCES deliveries(id),
    line_number             INTEGER NOT NULL,
    package_label           TEXT NOT NULL,
    quantity                TEXT NOT NULL,
    unit                    TEXT NOT NULL,
    package_quantity_picos  INTEGER NOT NULL CHECK (package_quantity_picos > 0),
    total_cents             INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, line_number)
) STRICT;

CREATE TABLE trips (
    id                   INTEGER PRIMARY KEY,
    client_trip_id       TEXT NOT NULL UNIQUE,
    request_digest       TEXT NOT NULL,
    terminal_id          INTEGER REFERENCES terminals(id),
    created_at           INTEGER NOT NULL,
    business_date_local  TEXT NOT NULL,
    -- Unique among Till's trips (to the second): how a create in doubt is recognised in Metrc's lists.
    date_time_local      TEXT NOT NULL UNIQUE,
    -- Driver, vehicle and estimated departure, as sent (Till's JSON).
    details_json         TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('created', 'departed', 'ended', 'voided')),
    frozen_reason        TEXT,
    metrc_trip_id        INTEGER,
    departed_at          INTEGER,
    ended_at             INTEGER,
    voided_at            INTEGER
) STRICT;
CREATE INDEX trips_by_business_date ON trips (business_date_local);

-- What a vehicle holds now, in each package's own unit. Off the shop's shelf while its trip is under way.
CREATE TABLE trip_stock (
    trip_id         INTEGER NOT NULL REFERENCES trips(id),
    package_label   TEXT NOT NULL,
    quantity_picos  INTEGER NOT NULL CHECK (quantity_picos >= 0),
    PRIMARY KEY (trip_id, package_label)
) STRICT;

-- A trip's sales and restocks, each once by its client id.
CREATE TABLE trip_events (
    id                      INTEGER PRIMARY KEY,
    trip_id                 INTEGER NOT NULL REFERENCES trips(id),
    kind                    TEXT NOT NULL CHECK (kind IN ('sale', 'restock')),
    client_id               TEXT NOT NULL,
    request_digest          TEXT NOT NULL,
    at                      INTEGER NOT NULL,
    -- A sale: customer, recipient and lines; a restock: what was added and removed (Till's JSON).
    detail_json             TEXT NOT NULL,
    customer_type           TEXT,
    patient_license_number  TEXT,
    total_cents             INTEGER NOT NULL DEFAULT 0,
    UNIQUE (trip_id, kind, client_id)
) STRICT;

-- Every write a delivery or trip journaled, kept after Metrc has it: the steps a driver's app shows, each
-- with its journal row while it is owed. `reported_at` is set when Metrc holds it.
CREATE TABLE delivery_steps (
    id            INTEGER PRIMARY KEY,
    subject_type  TEXT NOT NULL CHECK (subject_type IN ('delivery', 'trip')),
    subject_id    INTEGER NOT NULL,
    step          TEXT NOT NULL,
    journal_id    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    reported_at   INTEGER
) STRICT;
CREATE INDEX delivery_steps_by_subject ON delivery_steps (subject_type, subject_id);
CREATE INDEX delivery_steps_by_journal ON delivery_steps (journal_id);

-- What a step changes of a package's Quantity in Metrc once applied (positive: taken off), so an inventory
-- sync neither hands back what a delivery took nor takes it twice.
CREATE TABLE delivery_step_stock (
    step_id        INTEGER NOT NULL REFERENCES delivery_steps(id),
    package_label  TEXT NOT NULL,
    metrc_picos    INTEGER NOT NULL,
    PRIMARY KEY (step_id, package_label)
) STRICT;

-- Goods a customer sent back with the driver, held off the shelf (quarantined, or wasted until Metrc's
-- package is adjusted), as returns hold theirs.
CREATE TABLE delivery_held_stock (
    delivery_id     INTEGER NOT NULL REFERENCES deliveries(id),
    package_label   TEXT NOT NULL,
    disposition     TEXT NOT NULL CHECK (disposition IN ('quarantine', 'waste')),
    quantity_picos  INTEGER NOT NULL CHECK (quantity_picos > 0),
    held_at         INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, package_label)
) STRICT;

-- Steps Metrc shows that Till did not take: raised once per subject, shown in /v1/reporting.
CREATE TABLE delivery_alerts (
    subject_type  TEXT NOT NULL,
    subject_id    INTEGER NOT NULL,
    message       TEXT NOT NULL,
    raised_at     INTEGER NOT NULL,
    PRIMARY KEY (subject_type, subject_id)
) STRICT;
