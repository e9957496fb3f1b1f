"""PostgreSQL faults: an unreachable database at start, and the database going away mid-run.

- `medcore serve` / `migrate` against a port nobody listens on: a clear error, non-zero exit, and the
  password of the URL appears nowhere in the output.
- Mid-run: the test forbids new connections to the server's database (ALLOW_CONNECTIONS false) and
  terminates the server's sessions (pg_terminate_backend) — to the server, the database is down. API
  requests then get 503 with Retry-After, /readyz 503, /healthz still 200. Then connections are allowed
  again: without a restart, reads and writes succeed again and /readyz is 200; the audit chain verifies.

PostgreSQL only (MEDCORE_TEST_BACKEND=postgres); under SQLite it reports itself skipped and passes.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check


def dbname(url):
    return url.partition("?")[0].rsplit("/", 1)[1]


def cut_off(srv, allow):
    name = dbname(srv.db_url)
    mt.psql(mt.pg_base(), "ALTER DATABASE %s WITH ALLOW_CONNECTIONS %s" % (name, "true" if allow else "false"))
    if not allow:
        mt.psql(mt.pg_base(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' "
                              "AND pid <> pg_backend_pid()" % name)


def test_unreachable_at_start():
    url = "postgres://medcore:s3cret-pw@127.0.0.1:1/nowhere"
    for args in (["migrate", "--db", url], ["serve", "--listen", "127.0.0.1:0", "--db", url]):
        t0 = time.monotonic()
        p = subprocess.run([mt.binary()] + args, capture_output=True, text=True, timeout=60)
        out = p.stdout + p.stderr
        check(p.returncode != 0, "%s with the database unreachable exits non-zero" % args[0])
        check("cannot open the postgres database" in out, "%s says why: %s" % (args[0], out[-500:]))
        check("s3cret-pw" not in out, "the password is never printed")
        check(time.monotonic() - t0 < 30, "it fails promptly")
    print("ok    unreachable database at start: clear error, non-zero exit, no password in the output")


def test_database_away_and_back():
    with mt.Server() as srv:
        tok = srv.user_token("loader", "integration")
        r = srv.post("/fhir/Patient", {"resourceType": "Patient", "name": [{"family": "Outage"}]}, token=tok)
        check(r.status == 201, "create before the outage", r)
        pid = r.json()["id"]
        try:
            cut_off(srv, False)
            statuses = set()
            for _ in range(3):
                r = srv.get("/fhir/Patient/" + pid, token=tok)
                statuses.add(r.status)
                check(r.status == 503, "read while the database is away: 503", r)
                check(r.header("Retry-After") is not None, "503 carries Retry-After", r)
                check("postgres" not in r.text.lower() and "sqlstate" not in r.text.lower(),
                      "no database detail to the client", r)
            r = srv.put("/fhir/Patient/" + pid, {"resourceType": "Patient", "id": pid, "name": [{"family": "X"}]},
                        token=tok)
            check(r.status == 503 and r.header("Retry-After"), "write while the database is away: 503", r)
            check(srv.get("/readyz").status == 503, "/readyz 503 while the database is away")
            check(srv.get("/healthz").status == 200, "/healthz (liveness) stays 200")
        finally:
            cut_off(srv, True)
        deadline = time.monotonic() + 20
        while srv.get("/readyz").status != 200:
            check(time.monotonic() < deadline, "/readyz recovers")
            time.sleep(0.1)
        r = srv.get("/fhir/Patient/" + pid, token=tok)
        check(r.status == 200, "reads recover without a restart", r)
        body = r.json()
        body["gender"] = "female"
        r = srv.put("/fhir/Patient/" + pid, body, token=tok)
        check(r.status == 200, "writes recover without a restart", r)
        srv.stop()
        p = srv.medcore("audit", "verify", check_rc=False)
        check(p.returncode == 0, "audit chain intact after the outage: %s %s" % (p.stdout, p.stderr))
    print("ok    database away: 503 + Retry-After, /readyz 503; back: recovered without restart")


def main():
    if mt.backend() != "postgres":
        print("skipped: PostgreSQL only (MEDCORE_TEST_BACKEND=postgres)")
        sys.exit(0)
    failed = 0
    for fn in (test_unreachable_at_start, test_database_away_and_back):
        try:
            fn()
        except Exception:
            failed += 1
            import traceback
            print("FAIL  %s" % fn.__name__)
            traceback.print_exc(file=sys.stdout)
    print("test_pg_faults: %d failed" % failed)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
