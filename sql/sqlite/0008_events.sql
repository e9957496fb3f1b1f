-- 0008_events: the transactional outbox, consumer checkpoints, and the patient_directory read model
-- (src/events). An event row is written in the same transaction as the change it describes
-- (events_emit); the dispatcher delivers rows in seq order to each consumer and keeps that
-- consumer's checkpoint (the last seq it handled) in consumer_offsets.
-- seq: the rowid, assigned at insert by the single writer, so commit order is seq order and a reader
-- never sees a gap that fills later. Rows are never updated; payload holds ids only, never PHI.
CREATE TABLE IF NOT EXISTS outbox (
  seq        INTEGER PRIMARY KEY,
  name       TEXT    NOT NULL,
  patient_id TEXT,
  key        TEXT    NOT NULL,
  payload    TEXT    NOT NULL,
  created_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS consumer_offsets (
  name       TEXT    PRIMARY KEY,
  seq        INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);

-- Read model maintained by the patient_directory consumer from Patient events; rebuildable from
-- the outbox (medcore projections rebuild --name patient_directory). updated_seq: the last event
-- applied to the row.
CREATE TABLE IF NOT EXISTS patient_directory (
  patient_id  TEXT    PRIMARY KEY,
  mrn         TEXT,
  family_norm TEXT,
  birth_date  TEXT,
  active      INTEGER NOT NULL DEFAULT 1,
  updated_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS patient_directory_family ON patient_directory (family_norm, birth_date);
CREATE INDEX IF NOT EXISTS patient_directory_mrn ON patient_directory (mrn);
