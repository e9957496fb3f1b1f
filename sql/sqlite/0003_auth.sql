-- 0003_auth: users, refresh tokens, care teams and break-the-glass grants (src/auth).
-- users.totp_secret holds base64(nonce || crypto_secretbox(secret)) under a key derived from the
-- token key; totp_enabled = 0 with a secret set means an enrolment is pending.
CREATE TABLE IF NOT EXISTS users (
  id              INTEGER PRIMARY KEY,
  username        TEXT NOT NULL UNIQUE,
  role            TEXT NOT NULL,
  password_hash   TEXT NOT NULL,
  active          INTEGER NOT NULL DEFAULT 1,
  patient_id      TEXT,
  practitioner_id TEXT,
  totp_secret     TEXT,
  totp_enabled    INTEGER NOT NULL DEFAULT 0,
  totp_last_step  INTEGER NOT NULL DEFAULT 0,
  failed_count    INTEGER NOT NULL DEFAULT 0,
  locked_until_ms INTEGER NOT NULL DEFAULT 0,
  must_change     INTEGER NOT NULL DEFAULT 0,
  created_ms      INTEGER NOT NULL
);

-- Only SHA-256(token) is stored, never the token.
CREATE TABLE IF NOT EXISTS refresh_tokens (
  hash       BLOB PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users(id),
  family_id  TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  used_ms    INTEGER,
  revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens(user_id);

CREATE TABLE IF NOT EXISTS care_team (
  patient_id TEXT NOT NULL,
  user_id    INTEGER NOT NULL,
  active     INTEGER NOT NULL DEFAULT 1,
  added_by   TEXT,
  added_ms   INTEGER NOT NULL,
  PRIMARY KEY (patient_id, user_id)
);
CREATE INDEX IF NOT EXISTS care_team_user ON care_team(user_id, patient_id);

CREATE TABLE IF NOT EXISTS break_glass (
  id         INTEGER PRIMARY KEY,
  user_id    INTEGER NOT NULL,
  patient_id TEXT NOT NULL,
  reason     TEXT NOT NULL,
  granted_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  reviewed   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS break_glass_user ON break_glass(user_id, patient_id, expires_ms);
