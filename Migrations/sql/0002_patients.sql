-- Patients and caregivers: last known statuses (so a stale answer survives a restart), patient
-- check-ins reported through the outbox, and item unit weights (to count "Each" items against a
-- patient's allowance in ounces).

-- The last status Metrc gave for a patient or caregiver license, as Metrc's JSON.
CREATE TABLE license_statuses (
    kind            TEXT NOT NULL CHECK (kind IN ('patient', 'caregiver')),
    license_number  TEXT NOT NULL,
    status_json     TEXT NOT NULL,
    fetched_at      INTEGER NOT NULL,
    PRIMARY KEY (kind, license_number)
) STRICT;

CREATE TABLE patient_checkins (
    id                        INTEGER PRIMARY KEY,
    client_checkin_id         TEXT UNIQUE,
    patient_license_number    TEXT NOT NULL,
    checkin_location_id       INTEGER NOT NULL,
    checkin_date_local        TEXT NOT NULL,
    registration_start_date   TEXT,
    registration_expiry_date  TEXT,
    terminal_id               INTEGER REFERENCES terminals(id),
    created_at                INTEGER NOT NULL,
    status                    TEXT NOT NULL CHECK (status IN ('pending_report', 'reported', 'rejected')),
    metrc_checkin_id          INTEGER,
    reported_at               INTEGER,
    rejection_json            TEXT
) STRICT;
CREATE INDEX patient_checkins_by_patient ON patient_checkins (patient_license_number);

ALTER TABLE outbox ADD COLUMN checkin_id INTEGER REFERENCES patient_checkins(id);
CREATE UNIQUE INDEX outbox_by_checkin ON outbox (checkin_id) WHERE checkin_id IS NOT NULL;

ALTER TABLE packages ADD COLUMN unit_weight TEXT;
ALTER TABLE packages ADD COLUMN unit_weight_unit TEXT;

CREATE INDEX sales_by_patient ON sales (patient_license_number, sold_at) WHERE patient_license_number IS NOT NULL;
