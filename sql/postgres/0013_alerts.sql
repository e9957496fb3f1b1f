-- 0013_alerts: vitals alerting (src/modules/vitals/alerts.c).
--
-- alerts: one row per alert. At most one open alert per (patient_id, rule_key) — the partial unique
--   index below is the de-duplication guarantee (status open, escalated or acknowledged count as
--   open; resolved rows are history). Rows are never deleted.
-- alert_events: every state change of an alert (raised, retriggered, severity, condition-cleared,
--   escalated, acknowledged, resolved), with the acting user (0 = the engine) and a staff note.
-- alert_rules: threshold rules with hysteresis and minimum duration, scoped to one patient or to a
--   ward (a Location id); a rule with neither applies to every patient.
-- alert_patient_settings: per-patient alerting settings: SpO2 scale 2 (hypercapnic respiratory
--   failure, a clinician's decision) and the ward (Location) the patient is in for alerting and live
--   ward views.
CREATE TABLE IF NOT EXISTS alerts (
  id            TEXT    PRIMARY KEY,
  patient_id    TEXT    NOT NULL,
  rule_key      TEXT    NOT NULL,
  kind          TEXT    NOT NULL,
  severity      TEXT    NOT NULL,
  status        TEXT    NOT NULL,
  location_id   TEXT,
  detail        TEXT    NOT NULL DEFAULT '{}',
  raised_ms     BIGINT NOT NULL,
  updated_ms    BIGINT NOT NULL,
  escalation    BIGINT NOT NULL DEFAULT 0,
  active        BIGINT NOT NULL DEFAULT 1,
  ack_by        BIGINT,
  ack_ms        BIGINT,
  resolved_by   BIGINT,
  resolved_ms   BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts (patient_id, rule_key)
  WHERE status IN ('open', 'escalated', 'acknowledged');
CREATE INDEX IF NOT EXISTS alerts_status ON alerts (status, raised_ms);
CREATE INDEX IF NOT EXISTS alerts_location ON alerts (location_id, status);

CREATE TABLE IF NOT EXISTS alert_events (
  alert_id  TEXT    NOT NULL,
  seq       BIGINT NOT NULL,
  ts_ms     BIGINT NOT NULL,
  action    TEXT    NOT NULL,
  user_id   BIGINT NOT NULL DEFAULT 0,
  note      TEXT,
  PRIMARY KEY (alert_id, seq)
);

CREATE TABLE IF NOT EXISTS alert_rules (
  id           TEXT    PRIMARY KEY,
  patient_id   TEXT,
  location_id  TEXT,
  param        TEXT    NOT NULL,
  direction    TEXT    NOT NULL,
  raise_at     DOUBLE PRECISION    NOT NULL,
  clear_at     DOUBLE PRECISION    NOT NULL,
  min_seconds  BIGINT NOT NULL DEFAULT 0,
  severity     TEXT    NOT NULL,
  active       BIGINT NOT NULL DEFAULT 1,
  created_by   BIGINT NOT NULL DEFAULT 0,
  created_ms   BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS alert_patient_settings (
  patient_id   TEXT    PRIMARY KEY,
  spo2_scale2  BIGINT NOT NULL DEFAULT 0,
  location_id  TEXT,
  updated_ms   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_patient_settings_loc ON alert_patient_settings (location_id);
