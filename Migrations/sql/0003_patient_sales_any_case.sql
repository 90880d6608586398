-- A patient's earlier sales are found whatever the case of the license number (Metrc matches numbers
-- case-insensitively); the allowance check looks them up by upper(patient_license_number), which the
-- index on the bare column cannot serve, so every medical sale scanned the whole sales table.
DROP INDEX sales_by_patient;
CREATE INDEX sales_by_patient ON sales (upper(patient_license_number), sold_at) WHERE patient_license_number IS NOT NULL;
