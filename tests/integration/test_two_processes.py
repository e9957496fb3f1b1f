"""Two `medcore serve` processes on one database (scale-out, PostgreSQL).

Both servers hammer one resource with concurrent If-Match updates: every version is won exactly once
(one 200 per version, every loser 412, nothing else), and no update is lost (final version = successes
+ 1). Then both register patients at the same time: every MRN is unique. Then both stop and
`medcore audit verify` passes: the hash chain stayed linear although two processes appended to it.

Runs on the selected backend (MEDCORE_TEST_BACKEND); SQLite also supports several processes on one
file (its write lock serializes them), so the same contract is checked there.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
THREADS_PER_SERVER = 4
ATTEMPTS = 25
REGISTRATIONS = 20   # per thread


def version_of(resp):
    return int(resp.json()["meta"]["versionId"])


def hammer(srv, tok, pid, results, errors):
    conn = srv.connect()
    try:
        for _ in range(ATTEMPTS):
            r = mt.send(conn, "GET", "/fhir/Patient/" + pid, token=tok)
            if r.status != 200:
                errors.append(("read", r.status, r.text[:200]))
                return
            v = version_of(r)
            body = r.json()
            body["gender"] = "female" if v % 2 else "male"
            r = mt.send(conn, "PUT", "/fhir/Patient/" + pid, body, token=tok, headers={"If-Match": 'W/"%d"' % v})
            if r.status == 200:
                results.append((200, v, version_of(r)))
            elif r.status == 412:
                results.append((412, v, None))
            else:
                errors.append(("update", r.status, r.text[:200]))
    except Exception as e:   # a thread must not die silently
        errors.append(("exception", repr(e)))
    finally:
        conn.close()


def register(srv, tok, tag, mrns, errors):
    conn = srv.connect()
    try:
        for i in range(REGISTRATIONS):
            r = mt.send(conn, "POST", "/api/v1/patients/register",
                        {"firstName": "Twin", "lastName": "Proc%s%03d" % (tag, i), "birthDate": "1970-01-01"},
                        token=tok)
            if r.status != 201:
                errors.append(("register", r.status, r.text[:200]))
                continue
            pid = r.json()["data"]["id"]
            p = mt.send(conn, "GET", "/fhir/Patient/" + pid, token=tok)
            ids = [x["value"] for x in p.json().get("identifier", []) if x.get("system") == "urn:medcore:mrn"]
            if len(ids) != 1:
                errors.append(("mrn", pid, ids))
                continue
            mrns.append(ids[0])
    except Exception as e:
        errors.append(("exception", repr(e)))
    finally:
        conn.close()


def main():
    failed = 0
    a = mt.Server()
    b = None
    try:
        a.start()
        b = mt.Server(tmpdir=a.tmpdir)   # the same database
        check(b.db_url == a.db_url, "both servers use one database")
        b.start()
        a.add_user("loader", "integration")
        a.add_user("desk", "receptionist")
        tok_a, tok_b = a.login("loader"), b.login("loader")

        # ---- concurrent If-Match updates of one resource from both processes ----
        r = a.post("/fhir/Patient", {"resourceType": "Patient", "name": [{"family": "Hammer", "given": ["Ann"]}],
                                     "birthDate": "1980-02-02", "gender": "male"}, token=tok_a)
        check(r.status == 201, "create the hammered patient", r)
        pid = r.json()["id"]
        results, errors = [], []
        threads = [threading.Thread(target=hammer, args=(srv, tok, pid, results, errors))
                   for srv, tok in ((a, tok_a), (b, tok_b)) for _ in range(THREADS_PER_SERVER)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        check(not errors, "only 200 and 412 answers: %s" % errors[:5])
        wins = [x for x in results if x[0] == 200]
        won_from = [x[1] for x in wins]
        check(len(won_from) == len(set(won_from)), "each version is won once: %s" % sorted(won_from))
        check(all(new == old + 1 for _, old, new in wins), "a win makes exactly the next version")
        final = version_of(a.get("/fhir/Patient/" + pid, token=tok_a))
        check(final == len(wins) + 1, "no lost update: final version %d, %d wins" % (final, len(wins)))
        check(version_of(b.get("/fhir/Patient/" + pid, token=tok_b)) == final, "both servers see the final version")
        hist = a.get("/fhir/Patient/%s/_history?_count=1000" % pid, token=tok_a)
        check(hist.status == 200 and hist.json().get("total", len(hist.json().get("entry", []))) == final,
              "history holds every version", hist)
        print("ok    %d concurrent If-Match updates from 2 processes: %d won, %d got 412, final version %d"
              % (len(results), len(wins), len(results) - len(wins), final))

        # ---- concurrent registrations on both: unique MRNs ----
        ra, rb = a.login("desk"), b.login("desk")
        mrns, errors = [], []
        threads = [threading.Thread(target=register, args=(srv, tok, "%s%d" % (tag, n), mrns, errors))
                   for srv, tok, tag in ((a, ra, "a"), (b, rb, "b")) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        check(not errors, "registrations succeed: %s" % errors[:5])
        check(len(mrns) == 4 * REGISTRATIONS, "every registration has an MRN (%d)" % len(mrns))
        check(len(set(mrns)) == len(mrns), "MRNs are unique across processes")
        print("ok    %d patients registered concurrently on 2 processes, MRNs unique" % len(mrns))

        b.stop()
        a.stop()
        p = a.medcore("audit", "verify", check_rc=False)
        check(p.returncode == 0 and "intact" in p.stdout, "audit verify passes: %s %s" % (p.stdout, p.stderr))
        print("ok    audit chain intact: %s" % p.stdout.strip())
    except Exception:
        failed = 1
        import traceback
        traceback.print_exc(file=sys.stdout)
    finally:
        if b:
            b.cleanup()
        a.cleanup()
    print("test_two_processes: %s" % ("FAILED" if failed else "passed"))
    sys.exit(failed)


if __name__ == "__main__":
    main()
