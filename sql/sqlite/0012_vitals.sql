-- 0012_vitals: monitoring devices, their current patient binding and their device-role user
-- (src/modules/vitals/devices.c). The Device itself is a FHIR resource (versioned: the binding
-- history is its version history); this table is the fast lookup ingest uses. The samples live in
-- the separate vitals database (src/modules/vitals/vstore.c), not here.
CREATE TABLE IF NOT EXISTS vitals_device (
    device_id  TEXT PRIMARY KEY,           -- FHIR Device id
    identifier TEXT NOT NULL UNIQUE,       -- the manufacturer/serial identifier
    patient_id TEXT,                       -- bound patient; NULL when unbound
    bound_ms   INTEGER,
    bound_by   TEXT,
    user_id    INTEGER UNIQUE REFERENCES users(id),   -- the device credential, if any
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS vitals_device_patient ON vitals_device(patient_id);
