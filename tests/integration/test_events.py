"""test_events — domain events over HTTP (python3 stdlib only).

Patients registered through /api/v1/patients/register land in the outbox (ids only, no PHI) and
reach the patient_directory projection through the in-process dispatcher; /metrics shows the
consumer lag; `medcore projections rebuild` reproduces the projection identically (full and --from);
a serve that leaves a consumer to workers (--inprocess-consumers) does not run it, and the next
serve catches up; `medcore worker` refuses bad arguments.
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
N = 12
FAMILIES = ["Álvarez", "Okafor", "Nguyen", "Schmidt"]


def register(srv, tok, i):
    body = {"firstName": "Ann%d" % i, "lastName": FAMILIES[i % len(FAMILIES)],
            "birthDate": "1970-01-%02d" % (i % 28 + 1), "phone": "+1 555 010 %04d" % i}
    r = srv.post("/api/v1/patients/register", body, token=tok)
    check(r.status == 201, "register patient %d" % i, r)
    return r.json()["data"]


def directory(srv):
    return srv.sql("SELECT patient_id, mrn, family_norm, birth_date, active, updated_seq FROM patient_directory "
                   "ORDER BY patient_id")


def wait_for(cond, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise mt.TestFailure("timed out waiting for " + what)


def main():
    srv = mt.Server()
    try:
        srv.start()
        rec = srv.user_token("frontdesk", "receptionist")
        made = [register(srv, rec, i) for i in range(N)]

        # -- the projection has every patient, with MRN, normalized family and birth date --
        wait_for(lambda: len(directory(srv)) == N, "patient_directory to have %d rows" % N)
        rows = {r[0]: r for r in directory(srv)}
        for i, p in enumerate(made):
            row = rows.get(p["id"])
            check(row is not None, "patient %d in the directory" % i)
            check(row[1] == p["mrn"], "directory MRN of patient %d" % i)
            check(row[3] == "1970-01-%02d" % (i % 28 + 1), "directory birth date of patient %d" % i)
            check(row[4] == 1, "active")
        check(rows[made[0]["id"]][2] == "alvarez", "family_norm is normalized (accents, case)")

        # -- the outbox: both events per registration, keyed by patient, no PHI --
        ob = srv.sql("SELECT name, patient_id, key, payload FROM outbox ORDER BY seq")
        names = [r[0] for r in ob]
        check(names.count("patient.registered") == N, "a patient.registered per registration")
        check(names.count("fhir.Patient.created") == N, "a fhir.Patient.created per registration")
        for name, pid, key, payload in ob:
            if name.startswith("patient.") or name.startswith("fhir.Patient."):
                check(pid == key and pid, "event keyed by its patient")
            for fam in FAMILIES + ["Okafor", "MRN", "555"]:
                check(fam not in payload, "no PHI in event payloads (%s)" % name)
        # payloads match their documented schemas (docs/events/*.json): required keys, nothing else
        src = os.environ.get("MEDCORE_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
        schemas = {}
        for fn, prefix in (("patient.registered.json", "patient.registered"),
                           ("fhir.type.created.json", "fhir.Patient.created")):
            with open(os.path.join(src, "docs", "events", fn), encoding="utf-8") as f:
                schemas[prefix] = json.load(f)
        for name, pid, key, payload in ob:
            sc = schemas.get(name)
            if sc:
                keys = set(json.loads(payload))
                check(set(sc["required"]) <= keys <= set(sc["properties"]), "%s payload matches its schema" % name)
        head = srv.sql("SELECT MAX(seq) FROM outbox")[0][0]

        # -- metrics: lag 0 once caught up --
        def lag_zero():
            r = srv.get("/metrics")
            return r.status == 200 and re.search(r'medcore_consumer_lag\{name="patient_directory"\} 0\b', r.text)
        wait_for(lag_zero, "medcore_consumer_lag{name=patient_directory} 0 on /metrics")
        check('medcore_events_total{name="patient.registered"}' in srv.get("/metrics").text,
              "the metrics consumer counts events by name")
        ck = srv.sql("SELECT seq FROM consumer_offsets WHERE name = 'patient_directory'")
        check(ck and ck[0][0] == head, "checkpoint at the outbox head")

        before = directory(srv)
        srv.stop()

        # -- rebuild: identical read model --
        srv.sql("UPDATE patient_directory SET mrn = 'tampered'")
        srv.sql("INSERT INTO patient_directory (patient_id, updated_seq) VALUES ('ghost', 1)")
        p = srv.medcore("projections", "rebuild", "--name", "patient_directory")
        check(("rebuilt patient_directory: %d events replayed" % head) in p.stdout, "rebuild output: " + p.stdout)
        check(directory(srv) == before, "projections rebuild reproduces the directory identically")
        p = srv.medcore("projections", "rebuild", "--name", "patient_directory", "--from", str(head - 3))
        check("4 events replayed" in p.stdout, "rebuild --from replays from that seq: " + p.stdout)
        check(directory(srv) == before, "a partial replay changes nothing (idempotent)")
        p = srv.medcore("projections", "list")
        check(re.search(r"patient_directory\s+checkpoint %d lag 0" % head, p.stdout), "projections list: " + p.stdout)
        for bad in (["projections", "rebuild", "--name", "nope"], ["projections", "rebuild"],
                    ["projections", "rebuild", "--name", "patient_directory", "--from", "x"],
                    ["projections", "frobnicate"]):
            p = srv.medcore(*bad, check_rc=False)
            check(p.returncode == 2, "%s exits 2 (got %d)" % (" ".join(bad), p.returncode))

        # -- a serve that leaves patient_directory to workers does not run it --
        srv2 = mt.Server(["--inprocess-consumers", "metrics"], tmpdir=srv.tmpdir, db_url=srv.db_url)
        try:
            srv2.start()
            rec2 = srv2.login("frontdesk")
            extra = register(srv2, rec2, 99)
            wait_for(lambda: srv2.sql("SELECT seq FROM consumer_offsets WHERE name = 'metrics'")[0][0] > head,
                     "the metrics consumer to run")
            check(not srv2.sql("SELECT 1 FROM patient_directory WHERE patient_id = ?", extra["id"]),
                  "patient_directory not run in-process")
            srv2.stop()
        finally:
            srv2.cleanup()
        # the next default serve catches up
        srv3 = mt.Server(tmpdir=srv.tmpdir, db_url=srv.db_url)
        try:
            srv3.start()
            wait_for(lambda: srv3.sql("SELECT 1 FROM patient_directory WHERE patient_id = ?", extra["id"]),
                     "the projection to catch up after restart")
            srv3.stop()
        finally:
            srv3.cleanup()

        # -- worker: argument errors --
        for args in (["worker"], ["worker", "--consumers", "nope", "--kafka-brokers", "127.0.0.1:1"],
                     ["worker", "--consumers", "patient_directory"]):
            p = subprocess.run([mt.binary()] + args + ["--db", srv.db_url], capture_output=True, text=True,
                               timeout=30, env=dict(os.environ, MEDCORE_KAFKA_BROKERS=""))
            check(p.returncode == 2, "%s exits 2 (got %d: %s)" % (" ".join(args), p.returncode, p.stderr.strip()))
        print("ok    test_events")
    finally:
        srv.cleanup()


if __name__ == "__main__":
    try:
        main()
    except mt.TestFailure as e:
        print("FAIL  %s" % e)
        sys.exit(1)
