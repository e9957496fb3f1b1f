-- 0007_fhir_ops (PostgreSQL): OAuth2 clients and bulk-export jobs; the same tables as
-- sql/sqlite/0007_fhir_ops.sql (read that file for what each column holds).
CREATE TABLE IF NOT EXISTS oauth_clients (
  client_id   TEXT COLLATE "C" PRIMARY KEY,
  user_id     BIGINT NOT NULL UNIQUE REFERENCES users(id),
  name        TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  scopes      TEXT NOT NULL,
  active      BIGINT NOT NULL DEFAULT 1,
  created_ms  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS export_jobs (
  id              TEXT COLLATE "C" PRIMARY KEY,
  owner_user_id   BIGINT NOT NULL,
  owner_username  TEXT NOT NULL,
  owner_role      TEXT NOT NULL,
  owner_patient   TEXT NOT NULL DEFAULT '',
  owner_scope     TEXT NOT NULL DEFAULT '',
  kind            TEXT NOT NULL,
  group_id        TEXT,
  types           TEXT NOT NULL,
  since_ms        BIGINT NOT NULL DEFAULT 0,
  request         TEXT NOT NULL,
  status          TEXT NOT NULL,
  progress        TEXT NOT NULL DEFAULT '',
  created_ms      BIGINT NOT NULL,
  tx_time_ms      BIGINT NOT NULL DEFAULT 0,
  finished_ms     BIGINT NOT NULL DEFAULT 0,
  output          TEXT
);
CREATE INDEX IF NOT EXISTS export_jobs_status ON export_jobs(status, created_ms);
