"""`medcore migrate-data`: SQLite -> the selected backend (PostgreSQL in integration_pg).

Loads demo data into SQLite (medcore demo --patients 200), adds an update (version 2) and exercises the
newer modules (staff, availability and a booking, check-in, a prescription, a lab order, a device with
its own credential bound to a patient) so their tables are not empty; a source table the target lacks is
refused as a schema mismatch before anything is written; then migrates into a fresh database of the
selected backend and checks: EVERY table of the source (listed from its sqlite_master) has the same row
count in the target, the copy copied back into a fresh SQLite database (from PostgreSQL in
integration_pg) has them too, the
updated resource's versions are all there, a server started on the target serves the data (login with
a copied user, read, search, vread), `medcore audit verify` passes on the target (hashes copied
verbatim), new writes on the target get fresh keys and MRNs (sequences moved past the copied ones),
and a second migrate-data into the now non-empty target is refused (exit 1). Bad usage exits 2.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
PATIENTS = 200
TABLES = ["resources", "resource_versions", "idx_string", "idx_token", "idx_date", "idx_ref", "users",
          "care_team", "audit", "settings"]


def run(*args, timeout=300):
    return subprocess.run([mt.binary()] + list(args), capture_output=True, text=True, timeout=timeout)


# Tables the module workflow below must have filled (so their copy is really exercised).
NEWER = ["staff", "sched_template", "sched_slot", "slot_booking", "sched_appt", "med_supply", "lab_order",
         "lab_order_test", "vitals_device", "patient_directory", "outbox", "mrn_seq"]


def counts(db_url, tables=TABLES):
    return {t: mt.db_sql(db_url, 'SELECT count(*) FROM "%s"' % t)[0][0] for t in tables}


def source_tables(path):
    """Every application table of a SQLite database (what migrate-data must copy)."""
    con = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "AND name <> 'schema_migrations'"))
    finally:
        con.close()


def data(r, what, status=(200, 201)):
    check(r.status in status, what, r)
    return r.json()["data"]


def exercise_modules(srv):
    """Staff + scheduling + booking + check-in, a prescription, a lab order, a device with a credential."""
    admin = srv.user_token("mig.admin", "admin")
    rec = srv.user_token("mig.front", "receptionist")
    integ = srv.user_token("mig.integ", "integration")
    srv.add_user("mig.doc", "doctor")
    staff = data(srv.post("/api/v1/staff", {"firstName": "Mia", "lastName": "Grate", "username": "mig.doc",
                                            "specialties": ["394802001"], "role": "doctor"}, token=admin), "staff")
    prac = staff["id"]
    doc = srv.login("mig.doc")
    tmpl = [{"weekday": d, "start": "00:00", "end": "24:00", "slotMinutes": 30} for d in range(1, 8)]
    data(srv.put("/api/v1/doctors/%s/availability/templates" % prac, {"templates": tmpl, "horizonWeeks": 1},
                 token=rec), "availability templates")
    pid = data(srv.post("/api/v1/patients/register", {"firstName": "Mig", "lastName": "Ration",
                                                      "birthDate": "1971-03-04"}, token=rec), "register")["id"]
    now = datetime.now(timezone.utc)
    frm = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    to = (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    slots = data(srv.get("/api/v1/doctors/%s/availability?from=%s&to=%s" % (prac, frm, to), token=rec),
                 "availability")["slots"]
    check(slots, "free slots offered")
    appt = data(srv.post("/api/v1/appointments/book", {"patient": pid, "slot": slots[0]["slot"],
                                                        "reason": "migration check"}, token=rec), "book")
    data(srv.post("/api/v1/appointments/%s/check-in" % appt["id"], token=rec), "check-in")
    eid = data(srv.post("/api/v1/encounters", {"patient": pid, "appointment": appt["id"]}, token=doc),
               "encounter")["id"]
    data(srv.post("/api/v1/prescriptions", {"patient": pid, "encounter": eid, "items": [
        {"rxnorm": "314076", "dose": 10, "unit": "mg", "route": "PO", "frequency": "QD", "durationDays": 30,
         "quantity": 30, "refills": 1}]}, token=doc), "prescription")
    data(srv.post("/api/v1/lab-orders", {"patient": pid, "encounter": eid, "tests": ["2823-3", "2160-0"],
                                         "priority": "routine"}, token=doc), "lab order")
    srv.add_user("mig.monitor", "device")
    dev = data(srv.post("/api/v1/devices", {"identifier": "MON-MIG-1", "type": "bedside monitor",
                                            "user": "mig.monitor"}, token=integ), "device with a credential")
    data(srv.put("/api/v1/devices/%s/bind" % dev["id"], {"patient": pid}, token=integ), "bind the device")
    return pid


def main():
    tmp = tempfile.mkdtemp(prefix="medcore-migrate-data-")
    src = "sqlite:" + os.path.join(tmp, "src.db")
    dst = None
    failed = 0
    try:
        p = run("migrate-data", "--from", src)
        check(p.returncode == 2, "missing --to: exit 2 (%d)" % p.returncode)
        p = run("migrate-data", "--from", src, "--to", src)
        check(p.returncode == 2, "same database: exit 2 (%d)" % p.returncode)

        p = run("demo", "--db", src, "--patients", str(PATIENTS), "--seed", "7")
        check(p.returncode == 0, "demo load: " + p.stderr[-1500:])

        # one update on the source: version 2 of a patient
        with mt.Server(tmpdir=tmp, db_url=src) as srv:
            tok = srv.user_token("migrator", "integration")
            b = srv.get("/fhir/Patient?_count=1&_sort=_id", token=tok).json()
            pat = b["entry"][0]["resource"]
            pid = pat["id"]
            pat["gender"] = "other"
            r = srv.put("/fhir/Patient/" + pid, pat, token=tok, headers={"If-Match": 'W/"1"'})
            check(r.status == 200, "update on the source", r)
            exercise_modules(srv)
        before = counts(src)
        check(before["resources"] > PATIENTS and before["audit"] > PATIENTS, "demo data present: %s" % before)
        src_path = src[len("sqlite:"):]
        every = source_tables(src_path)
        for t in TABLES + NEWER:
            check(t in every, "the source has table %s" % t)
        every_before = counts(src, every)
        empty = [t for t in NEWER if not every_before[t]]
        check(not empty, "the module workflow filled %s" % empty)

        # a source table the target lacks: refused before anything is written
        os.makedirs(os.path.join(tmp, "mismatch"))
        mism = mt.new_db_url(os.path.join(tmp, "mismatch"))
        try:
            mt.db_sql(src, "CREATE TABLE zz_extra (id INTEGER PRIMARY KEY, v TEXT)")
            mt.db_sql(src, "INSERT INTO zz_extra (id, v) VALUES (1, 'x')")
            p = run("migrate-data", "--from", src, "--to", mism)
            check(p.returncode == 1 and "schema mismatch" in p.stderr and "zz_extra" in p.stderr,
                  "a source table missing from the target is refused: %s %s" % (p.stdout, p.stderr))
            left = counts(mism, ["resources", "users", "audit", "settings"])
            check(not any(left.values()), "nothing was copied on a schema mismatch: %s" % left)
        finally:
            mt.db_sql(src, "DROP TABLE IF EXISTS zz_extra")
            if not mism.startswith("sqlite:") and not os.environ.get("MEDCORE_TEST_KEEP"):
                mt.pg_drop_db(mism)
        print("ok    a source table the target lacks is refused (schema mismatch), nothing copied")

        os.makedirs(os.path.join(tmp, "dst"))
        dst = mt.new_db_url(os.path.join(tmp, "dst"))
        p = run("migrate-data", "--from", src, "--to", dst)
        check(p.returncode == 0, "migrate-data exits 0: %s %s" % (p.stdout[-1500:], p.stderr[-1500:]))
        check("password" not in p.stdout + p.stderr and dst not in p.stdout + p.stderr, "no URL printed")
        after = counts(dst)
        check(after == before, "row counts match:\n  source %s\n  target %s" % (before, after))
        every_after = counts(dst, every)
        diff = {t: (every_before[t], every_after[t]) for t in every if every_before[t] != every_after[t]}
        check(not diff, "every table has the source's row count in the target; differing (source, target): %s"
              % diff)
        print("ok    all %d tables copied with equal counts (%d resources, %d versions, %d audit records, "
              "%d bookings, %d devices)" % (len(every), after["resources"], after["resource_versions"],
                                            after["audit"], every_after["slot_booking"],
                                            every_after["vitals_device"]))

        # and back again: from the target (PostgreSQL in integration_pg) into a fresh SQLite database
        back = "sqlite:" + os.path.join(tmp, "back.db")
        p = run("migrate-data", "--from", dst, "--to", back)
        check(p.returncode == 0, "migrate-data back exits 0: %s %s" % (p.stdout[-1500:], p.stderr[-1500:]))
        every_back = counts(back, every)
        diff = {t: (every_before[t], every_back[t]) for t in every if every_before[t] != every_back[t]}
        check(not diff, "the round trip keeps every table's row count; differing: %s" % diff)
        rows = "SELECT rkey, version, last_updated_ms, deleted, json FROM resource_versions ORDER BY rkey, version"
        check(mt.db_sql(back, rows) == mt.db_sql(src, rows), "resource versions identical after the round trip")
        p = run("audit", "verify", "--db", back)
        check(p.returncode == 0 and "intact" in p.stdout, "audit verify after the round trip: %s %s"
              % (p.stdout, p.stderr))
        print("ok    copied back from the target: every table and the audit chain intact")

        p = run("audit", "verify", "--db", dst)
        check(p.returncode == 0 and "intact" in p.stdout, "audit verify on the target: %s %s" % (p.stdout, p.stderr))
        print("ok    audit chain verifies on the target: " + p.stdout.strip())

        t = mt.Server(tmpdir=os.path.join(tmp, "dst"))
        with t:
            tok = t.login("migrator")
            r = t.get("/fhir/Patient/" + pid, token=tok)
            check(r.status == 200 and r.json()["meta"]["versionId"] == "2" and r.json()["gender"] == "other",
                  "the updated patient is at version 2", r)
            r = t.get("/fhir/Patient/%s/_history/1" % pid, token=tok)
            check(r.status == 200 and r.json()["meta"]["versionId"] == "1", "version 1 is kept", r)
            r = t.get("/fhir/Patient?_summary=count", token=tok)
            check(r.status == 200 and r.json()["total"] == PATIENTS + 1, "search counts every patient", r)
            fam = pat["name"][0]["family"]
            r = t.get("/fhir/Patient?family=" + fam, token=tok)
            check(r.status == 200 and any(e["resource"]["id"] == pid for e in r.json().get("entry", [])),
                  "search indexes were copied", r)
            # new writes after the copy: fresh rkeys and MRNs
            desk = t.user_token("desk.after", "receptionist")
            r = t.post("/api/v1/patients/register", {"firstName": "After", "lastName": "Migration",
                                                     "birthDate": "1990-09-09"}, token=desk)
            check(r.status == 201, "register on the target", r)
            mrns = [row[0] for row in t.sql("SELECT next FROM mrn_seq")]
            check(mrns and mrns[0] > PATIENTS, "the MRN counter moved on: %s" % mrns)
        p = run("audit", "verify", "--db", dst)
        check(p.returncode == 0, "audit verify after new writes: %s %s" % (p.stdout, p.stderr))
        print("ok    a server on the target serves the copied data and writes new records")

        p = run("migrate-data", "--from", src, "--to", dst)
        check(p.returncode == 1 and "not empty" in p.stderr, "a non-empty target is refused: %s" % p.stderr)
        print("ok    a non-empty target is refused")
    except Exception:
        failed = 1
        import traceback
        traceback.print_exc(file=sys.stdout)
    finally:
        if dst and not dst.startswith("sqlite:") and not os.environ.get("MEDCORE_TEST_KEEP"):
            mt.pg_drop_db(dst)
        if not os.environ.get("MEDCORE_TEST_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    print("test_migrate_data: %s" % ("FAILED" if failed else "passed"))
    sys.exit(failed)


if __name__ == "__main__":
    main()
