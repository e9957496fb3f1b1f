-- 0004_audit: the append-only, hash-chained audit log (src/audit/audit.c documents the hash).
-- seq is assigned by audit_append (last + 1), never by the database, and is part of the hash.
CREATE TABLE IF NOT EXISTS audit (
  seq           INTEGER PRIMARY KEY,
  ts_ms         INTEGER NOT NULL,
  user_id       INTEGER NOT NULL DEFAULT 0,
  username      TEXT,
  role          TEXT,
  action        TEXT NOT NULL,
  resource_type TEXT,
  resource_id   TEXT,
  patient_id    TEXT,
  outcome       INTEGER NOT NULL,
  request_id    TEXT,
  client_ip     TEXT,
  reason        TEXT,
  prev_hash     BLOB NOT NULL,
  hash          BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_patient ON audit(patient_id, seq);
CREATE INDEX IF NOT EXISTS audit_user ON audit(user_id, seq);
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts_ms);
