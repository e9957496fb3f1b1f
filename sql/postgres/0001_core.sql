-- 0001_core (PostgreSQL): settings shared by every engine. Kept in step with sql/sqlite/0001_core.sql.
-- Text columns that take part in ordering or range scans are COLLATE "C" throughout this schema, so
-- ordering matches SQLite's byte order whatever the database's default collation.
CREATE TABLE IF NOT EXISTS settings (
  key   TEXT COLLATE "C" PRIMARY KEY,
  value TEXT NOT NULL
);
