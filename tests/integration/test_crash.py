"""Crash safety: kill -9 the server during a create load, restart it, and every create that was answered
201 is there (a response is sent only after its transaction is durable), and the audit chain is intact."""
import http.client
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
WRITERS = 8
LOAD_SECONDS = 1.5


def writer(port, token, stop, acked, errors, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = 0
    while not stop.is_set():
        i += 1
        body = {"resourceType": "Patient", "name": [{"family": "Crash%d" % n, "given": ["T%d" % i]}],
                "birthDate": "1970-01-01", "gender": "unknown"}
        try:
            resp = mt.send(conn, "POST", "/fhir/Patient", body, token=token)
        except (OSError, http.client.HTTPException):
            return  # the server died under us: whatever was not answered does not count
        if resp.status == 201:
            acked.append(resp.json()["id"])
        else:
            errors.append(resp.status)


def main():
    srv = mt.Server()
    failed = 0
    try:
        srv.start()
        tok = srv.user_token("loader", "integration")
        stop = threading.Event()
        acked, errors = [], []
        threads = [threading.Thread(target=writer, args=(srv.port, tok, stop, acked, errors, n))
                   for n in range(WRITERS)]
        for t in threads:
            t.start()
        # kill once the load is under way: LOAD_SECONDS and at least 100 answered creates (slower
        # backends and busy machines get longer; the deadline only bounds a stuck run)
        deadline = time.monotonic() + 60
        time.sleep(LOAD_SECONDS)
        while len(acked) < 100 and not errors and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(srv.proc.pid, signal.SIGKILL)   # no chance to flush anything
        srv.proc.wait(10)
        stop.set()
        for t in threads:
            t.join(15)
        check(not errors, "no create failed before the crash: %s" % errors[:5])
        check(len(acked) > 50, "the load created something (%d)" % len(acked))
        print("ok    %d creates answered 201 before kill -9" % len(acked))

        srv2 = mt.Server(tmpdir=srv.tmpdir)
        srv2.start()
        tok = srv2.login("loader")
        conn = srv2.connect()
        missing = [rid for rid in acked if mt.send(conn, "GET", "/fhir/Patient/" + rid, token=tok).status != 200]
        conn.close()
        check(not missing, "%d acknowledged creates lost after the crash, e.g. %s" % (len(missing), missing[:3]))
        print("ok    every acknowledged create survived the crash")
        srv2.stop()
        p = srv2.medcore("audit", "verify", check_rc=False)
        check(p.returncode == 0, "audit chain intact after the crash: %s %s" % (p.stdout, p.stderr))
        print("ok    audit chain intact after the crash")
    except Exception:
        failed = 1
        import traceback
        traceback.print_exc(file=sys.stdout)
    finally:
        srv.cleanup()
    print("%d passed, %d failed" % (1 - failed, failed))
    sys.exit(failed)


if __name__ == "__main__":
    main()
