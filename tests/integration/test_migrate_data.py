"""`medcore migrate-data`: SQLite -> the selected backend (PostgreSQL in integration_pg).

Loads demo data into SQLite (medcore demo --patients 200), adds an update (version 2), migrates into a
fresh database of the selected backend, then checks: row counts of every copied table match, the
updated resource's versions are all there, a server started on the target serves the data (login with
a copied user, read, search, vread), `medcore audit verify` passes on the target (hashes copied
verbatim), new writes on the target get fresh keys and MRNs (sequences moved past the copied ones),
and a second migrate-data into the now non-empty target is refused (exit 1). Bad usage exits 2.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
PATIENTS = 200
TABLES = ["resources", "resource_versions", "idx_string", "idx_token", "idx_date", "idx_ref", "users",
          "care_team", "audit", "settings"]


def run(*args, timeout=300):
    return subprocess.run([mt.binary()] + list(args), capture_output=True, text=True, timeout=timeout)


def counts(db_url):
    return {t: mt.db_sql(db_url, "SELECT count(*) FROM %s" % t)[0][0] for t in TABLES}


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
        before = counts(src)
        check(before["resources"] > PATIENTS and before["audit"] > PATIENTS, "demo data present: %s" % before)

        os.makedirs(os.path.join(tmp, "dst"))
        dst = mt.new_db_url(os.path.join(tmp, "dst"))
        p = run("migrate-data", "--from", src, "--to", dst)
        check(p.returncode == 0, "migrate-data exits 0: %s %s" % (p.stdout[-1500:], p.stderr[-1500:]))
        check("password" not in p.stdout + p.stderr and dst not in p.stdout + p.stderr, "no URL printed")
        after = counts(dst)
        check(after == before, "row counts match:\n  source %s\n  target %s" % (before, after))
        print("ok    %d tables copied with equal counts (%d resources, %d versions, %d audit records)"
              % (len(TABLES), after["resources"], after["resource_versions"], after["audit"]))

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
            check(r.status == 200 and r.json()["total"] == PATIENTS, "search counts every patient", r)
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
