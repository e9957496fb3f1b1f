-- 0007_fhir_ops: OAuth2 clients (client-credentials grant, src/auth/clients.c) and bulk-export
-- jobs (src/fhir/export.c).
--
-- oauth_clients: each client acts through a backing users row (role integration, an unusable
--   password hash, so it can never log in with a password); disabling that user disables the
--   client. secret_hash = hex(SHA-256(secret)): secrets are 256 random bits, so a fast hash is
--   enough and keeps the token endpoint cheap. scopes = the most the client may ever be granted.
CREATE TABLE IF NOT EXISTS oauth_clients (
  client_id   TEXT PRIMARY KEY,
  user_id     INTEGER NOT NULL UNIQUE REFERENCES users(id),
  name        TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  scopes      TEXT NOT NULL,
  active      INTEGER NOT NULL DEFAULT 1,
  created_ms  INTEGER NOT NULL
);

-- export_jobs: one row per $export kick-off. status: queued, running, done, error, cancelled.
--   owner_*: the principal the job runs as (its access scope is re-derived from these).
--   types: comma list of resource types to write; kind: system, patient or group.
--   output: the manifest's output array (JSON) once done.
CREATE TABLE IF NOT EXISTS export_jobs (
  id              TEXT PRIMARY KEY,
  owner_user_id   INTEGER NOT NULL,
  owner_username  TEXT NOT NULL,
  owner_role      TEXT NOT NULL,
  owner_patient   TEXT NOT NULL DEFAULT '',
  owner_scope     TEXT NOT NULL DEFAULT '',
  kind            TEXT NOT NULL,
  group_id        TEXT,
  types           TEXT NOT NULL,
  since_ms        INTEGER NOT NULL DEFAULT 0,
  request         TEXT NOT NULL,
  status          TEXT NOT NULL,
  progress        TEXT NOT NULL DEFAULT '',
  created_ms      INTEGER NOT NULL,
  tx_time_ms      INTEGER NOT NULL DEFAULT 0,
  finished_ms     INTEGER NOT NULL DEFAULT 0,
  output          TEXT
);
CREATE INDEX IF NOT EXISTS export_jobs_status ON export_jobs(status, created_ms);
