-- 0005_patients (PostgreSQL): medical record numbers; see sql/sqlite/0005_patients.sql.
CREATE TABLE IF NOT EXISTS mrn_seq (
  id   BIGINT PRIMARY KEY CHECK (id = 1),
  next BIGINT NOT NULL
);
INSERT INTO mrn_seq (id, next) VALUES (1, 1) ON CONFLICT DO NOTHING;
