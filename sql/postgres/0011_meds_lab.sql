-- 0011_meds_lab (PostgreSQL): see sql/sqlite/0011_meds_lab.sql (same tables; BIGINT for INTEGER):
-- the dispensing budget of each MedicationRequest, lab order bookkeeping, critical
-- results awaiting acknowledgement, and when a clinician last opened the dashboard
-- (src/modules/medications, src/modules/lab, src/modules/dashboard). The FHIR resources
-- (MedicationRequest, MedicationDispense, ServiceRequest, Specimen, Observation, DiagnosticReport)
-- are the record; these rows are what must be checked or changed atomically, and work lists.

-- One row per MedicationRequest. allowed_milli = quantity x (1 + refills) in thousandths of a
-- unit; the dispense unit does UPDATE ... SET dispensed_milli = dispensed_milli + $n WHERE
-- dispensed_milli + $n <= allowed_milli, so no interleaving of dispenses can exceed the budget
-- (PostgreSQL: the row lock; SQLite: the single writer).
CREATE TABLE IF NOT EXISTS med_supply (
  request_id      TEXT    PRIMARY KEY,
  group_id        TEXT    NOT NULL,
  patient_id      TEXT    NOT NULL,
  rxnorm          TEXT,
  prescriber      BIGINT NOT NULL,
  allowed_milli   BIGINT NOT NULL CHECK (allowed_milli > 0),
  dispensed_milli BIGINT NOT NULL DEFAULT 0 CHECK (dispensed_milli >= 0 AND dispensed_milli <= allowed_milli),
  status          TEXT    NOT NULL,
  created_ms      BIGINT NOT NULL,
  updated_ms      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS med_supply_group ON med_supply (group_id);
CREATE INDEX IF NOT EXISTS med_supply_status ON med_supply (status, created_ms);

-- One row per lab order (a requisition: one ServiceRequest per test share its id as
-- ServiceRequest.requisition). status mirrors the ServiceRequests: active, on-hold, revoked,
-- completed. report_*: the DiagnosticReport grouping the results, once any arrived.
CREATE TABLE IF NOT EXISTS lab_order (
  order_id      TEXT    PRIMARY KEY,
  patient_id    TEXT    NOT NULL,
  ordered_by    BIGINT NOT NULL,
  priority      TEXT    NOT NULL,
  status        TEXT    NOT NULL,
  specimen_id   TEXT,
  report_id     TEXT,
  report_status TEXT,
  ordered_ms    BIGINT NOT NULL,
  final_ms      BIGINT,
  result_ms     BIGINT,
  updated_ms    BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS lab_order_patient ON lab_order (patient_id, ordered_ms);
CREATE INDEX IF NOT EXISTS lab_order_result ON lab_order (result_ms);

CREATE TABLE IF NOT EXISTS lab_order_test (
  order_id       TEXT NOT NULL,
  loinc          TEXT NOT NULL,
  request_id     TEXT NOT NULL,
  observation_id TEXT,
  PRIMARY KEY (order_id, loinc)
);

-- Critical results (LL/HH) until a clinician acknowledges them.
CREATE TABLE IF NOT EXISTS lab_critical (
  observation_id TEXT    PRIMARY KEY,
  order_id       TEXT    NOT NULL,
  patient_id     TEXT    NOT NULL,
  loinc          TEXT    NOT NULL,
  flag           TEXT    NOT NULL,
  created_ms     BIGINT NOT NULL,
  ack_by         BIGINT,
  ack_ms         BIGINT
);
CREATE INDEX IF NOT EXISTS lab_critical_open ON lab_critical (ack_ms, patient_id);

CREATE TABLE IF NOT EXISTS dashboard_seen (
  user_id BIGINT PRIMARY KEY,
  seen_ms BIGINT NOT NULL
);
