-- 0002_fhir: the versioned FHIR resource store and its search indexes (src/fhir/store.c, search.c).
--
-- resources: one row per type+id, the current version. rkey is the rowid (assigned in insertion
--   order, so new rows append to the B-tree: ids are UUIDv7 and time ordered as well).
-- resource_versions: every version ever written; json is the exact serialized bytes served on reads
--   (NULL for a delete tombstone). Rows are never deleted or updated.
-- idx_*: search-index rows of CURRENT, non-deleted versions only; replaced as a whole on every write.
--   Each is WITHOUT ROWID with the search key first in its primary key, so a search is one range
--   scan of the primary key that yields rkeys directly (a covering index), and a second index on
--   rkey serves the delete-and-reinsert on writes.
CREATE TABLE IF NOT EXISTS resources (
  rkey            INTEGER PRIMARY KEY,
  type            TEXT    NOT NULL,
  id              TEXT    NOT NULL,
  version         INTEGER NOT NULL,
  last_updated_ms INTEGER NOT NULL,
  deleted         INTEGER NOT NULL DEFAULT 0,
  patient_id      TEXT,
  UNIQUE (type, id)
);
-- type listings and counts of live rows (deleted = 0 is part of every search), _lastUpdated ranges
CREATE INDEX IF NOT EXISTS resources_type_lu ON resources (type, deleted, last_updated_ms);
-- compartment searches (a patient's own data, care-team scopes)
CREATE INDEX IF NOT EXISTS resources_patient ON resources (patient_id, type) WHERE patient_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS resource_versions (
  rkey            INTEGER NOT NULL,
  version         INTEGER NOT NULL,
  last_updated_ms INTEGER NOT NULL,
  deleted         INTEGER NOT NULL DEFAULT 0,
  json            TEXT,
  PRIMARY KEY (rkey, version)
);
-- system and type history, newest first; _since
CREATE INDEX IF NOT EXISTS resource_versions_lu ON resource_versions (last_updated_ms);

-- string: norm = fhir_normalize(raw) (lowercase, accents removed); prefix search is
-- norm >= $x AND norm < $x_next on the primary key.
CREATE TABLE IF NOT EXISTS idx_string (
  param TEXT    NOT NULL,
  norm  TEXT    NOT NULL,
  rkey  INTEGER NOT NULL,
  raw   TEXT    NOT NULL,
  PRIMARY KEY (param, norm, rkey, raw)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_string_rkey ON idx_string (rkey);

-- token: system NULL when absent; text = display text (for :text), may be NULL
CREATE TABLE IF NOT EXISTS idx_token (
  param  TEXT    NOT NULL,
  code   TEXT    NOT NULL,
  system TEXT    NOT NULL DEFAULT '',
  rkey   INTEGER NOT NULL,
  text   TEXT,
  PRIMARY KEY (param, code, system, rkey)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_token_rkey ON idx_token (rkey);

-- date: the half-open range [lo, hi) in ms since the epoch that the value covers
CREATE TABLE IF NOT EXISTS idx_date (
  param TEXT    NOT NULL,
  lo    INTEGER NOT NULL,
  hi    INTEGER NOT NULL,
  rkey  INTEGER NOT NULL,
  PRIMARY KEY (param, lo, hi, rkey)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_date_rkey ON idx_date (rkey);

-- reference: ref_type '' when unknown (absolute URLs kept whole in ref_id)
CREATE TABLE IF NOT EXISTS idx_ref (
  param    TEXT    NOT NULL,
  ref_id   TEXT    NOT NULL,
  ref_type TEXT    NOT NULL DEFAULT '',
  rkey     INTEGER NOT NULL,
  PRIMARY KEY (param, ref_id, ref_type, rkey)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_ref_rkey ON idx_ref (rkey);

CREATE TABLE IF NOT EXISTS idx_number (
  param TEXT    NOT NULL,
  value REAL    NOT NULL,
  rkey  INTEGER NOT NULL,
  PRIMARY KEY (param, value, rkey)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_number_rkey ON idx_number (rkey);

CREATE TABLE IF NOT EXISTS idx_quantity (
  param  TEXT    NOT NULL,
  value  REAL    NOT NULL,
  system TEXT    NOT NULL DEFAULT '',
  code   TEXT    NOT NULL DEFAULT '',
  rkey   INTEGER NOT NULL,
  PRIMARY KEY (param, value, system, code, rkey)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_quantity_rkey ON idx_quantity (rkey);

CREATE TABLE IF NOT EXISTS idx_uri (
  param TEXT    NOT NULL,
  uri   TEXT    NOT NULL,
  rkey  INTEGER NOT NULL,
  PRIMARY KEY (param, uri, rkey)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_uri_rkey ON idx_uri (rkey);
