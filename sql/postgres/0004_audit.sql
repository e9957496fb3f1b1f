-- 0004_audit (PostgreSQL): the append-only, hash-chained audit log; see sql/sqlite/0004_audit.sql and
-- src/audit/audit.c. seq is assigned by audit_append (last + 1) inside a write transaction, and every
-- medcore write transaction holds the store's advisory write lock to COMMIT, so two processes never
-- append the same seq (store/postgres/postgres.c).
CREATE TABLE IF NOT EXISTS audit (
  seq           BIGINT PRIMARY KEY,
  ts_ms         BIGINT NOT NULL,
  user_id       BIGINT NOT NULL DEFAULT 0,
  username      TEXT COLLATE "C",
  role          TEXT,
  action        TEXT NOT NULL,
  resource_type TEXT COLLATE "C",
  resource_id   TEXT COLLATE "C",
  patient_id    TEXT COLLATE "C",
  outcome       BIGINT NOT NULL,
  request_id    TEXT,
  client_ip     TEXT,
  reason        TEXT,
  prev_hash     BYTEA NOT NULL,
  hash          BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_patient ON audit(patient_id, seq);
CREATE INDEX IF NOT EXISTS audit_user ON audit(user_id, seq);
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts_ms);
