-- 0009_scheduling: staff directory and shifts (src/modules/staff), availability templates,
-- exceptions, the slot/appointment lookup tables, the double-booking guard and the waitlist
-- (src/modules/scheduling). The FHIR resources (Practitioner, PractitionerRole, Schedule, Slot,
-- Appointment) are the record; these tables index them for the checks that must be atomic.
CREATE TABLE IF NOT EXISTS staff (
  practitioner_id TEXT    PRIMARY KEY,
  role_id         TEXT    NOT NULL,
  user_id         INTEGER UNIQUE,
  display         TEXT    NOT NULL,
  specialties     TEXT    NOT NULL,
  locations       TEXT    NOT NULL,
  created_ms      INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS staff_shift (
  id              TEXT    PRIMARY KEY,
  practitioner_id TEXT    NOT NULL,
  start_ms        INTEGER NOT NULL,
  end_ms          INTEGER NOT NULL,
  location        TEXT,
  role            TEXT,
  created_ms      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS staff_shift_pr ON staff_shift (practitioner_id, start_ms);

-- A row per key touched by a unit that must not interleave with another unit on the same key
-- (PostgreSQL: the upsert takes the row lock until commit; SQLite: the single writer already
-- serializes units). Keys: "patient:<id>", "practitioner:<id>".
CREATE TABLE IF NOT EXISTS sched_lock (
  key TEXT    PRIMARY KEY,
  n   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS sched_template (
  id              TEXT    PRIMARY KEY,
  practitioner_id TEXT    NOT NULL,
  weekday         INTEGER NOT NULL,
  start_min       INTEGER NOT NULL,
  end_min         INTEGER NOT NULL,
  slot_min        INTEGER NOT NULL,
  location        TEXT
);
CREATE INDEX IF NOT EXISTS sched_template_pr ON sched_template (practitioner_id);

CREATE TABLE IF NOT EXISTS sched_exception (
  id              TEXT    PRIMARY KEY,
  practitioner_id TEXT    NOT NULL,
  start_ms        INTEGER NOT NULL,
  end_ms          INTEGER NOT NULL,
  kind            TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS sched_exception_pr ON sched_exception (practitioner_id, start_ms);

CREATE TABLE IF NOT EXISTS sched_schedule (
  practitioner_id TEXT    PRIMARY KEY,
  schedule_id     TEXT    NOT NULL,
  horizon_end_ms  INTEGER NOT NULL
);

-- Mirror of the generated FHIR Slots. status: free | busy | deleted. A free slot may be held for a
-- waitlist offer until hold_until_ms.
CREATE TABLE IF NOT EXISTS sched_slot (
  slot_id         TEXT    PRIMARY KEY,
  practitioner_id TEXT    NOT NULL,
  start_ms        INTEGER NOT NULL,
  end_ms          INTEGER NOT NULL,
  status          TEXT    NOT NULL,
  location        TEXT,
  hold_waitlist   TEXT,
  hold_until_ms   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sched_slot_pr ON sched_slot (practitioner_id, start_ms);

-- THE double-booking guard: one row per booked slot; the primary key decides.
CREATE TABLE IF NOT EXISTS slot_booking (
  slot_id        TEXT PRIMARY KEY,
  appointment_id TEXT NOT NULL
);

-- Mirror of the FHIR Appointments (queue, patient overlap, reminders).
CREATE TABLE IF NOT EXISTS sched_appt (
  appointment_id  TEXT    PRIMARY KEY,
  patient_id      TEXT    NOT NULL,
  practitioner_id TEXT    NOT NULL,
  slot_id         TEXT    NOT NULL,
  start_ms        INTEGER NOT NULL,
  end_ms          INTEGER NOT NULL,
  status          TEXT    NOT NULL,
  checked_in_ms   INTEGER NOT NULL DEFAULT 0,
  reminder_sent   INTEGER NOT NULL DEFAULT 0,
  created_ms      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sched_appt_patient ON sched_appt (patient_id, start_ms);
CREATE INDEX IF NOT EXISTS sched_appt_pr ON sched_appt (practitioner_id, start_ms);
CREATE INDEX IF NOT EXISTS sched_appt_reminder ON sched_appt (status, reminder_sent, start_ms);

-- status: waiting | offered | booked | cancelled
CREATE TABLE IF NOT EXISTS waitlist (
  id               TEXT    PRIMARY KEY,
  patient_id       TEXT    NOT NULL,
  practitioner_id  TEXT    NOT NULL,
  earliest_ms      INTEGER NOT NULL,
  latest_ms        INTEGER NOT NULL,
  status           TEXT    NOT NULL,
  offered_slot     TEXT,
  offer_expires_ms INTEGER NOT NULL DEFAULT 0,
  appointment_id   TEXT,
  created_ms       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS waitlist_pr ON waitlist (practitioner_id, status, created_ms);
