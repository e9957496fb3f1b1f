-- 0005_patients: medical record numbers.
CREATE TABLE IF NOT EXISTS mrn_seq (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  next INTEGER NOT NULL
);
INSERT OR IGNORE INTO mrn_seq (id, next) VALUES (1, 1);
