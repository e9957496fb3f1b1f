#!/usr/bin/env python3
"""bench/booking.py — appointment booking throughput and availability-query latency.

Starts its own `medcore serve` on 127.0.0.1 with a fresh SQLite database (through
tests/integration/medcore_test.py), creates PRACTITIONERS doctors with around-the-clock 15-minute
templates (1 week horizon) and PATIENTS patients, then measures:

  book   POST /api/v1/appointments/book of distinct slots from THREADS threads (keep-alive
         connections); every booking is durable (group commit) and checked for double booking
         inside its write unit. Reported: bookings/s, p50/p99 latency, non-201 count.
  avail  GET /api/v1/doctors/{id}/availability (a 7-day window, ~600 free slots per answer)
         from THREADS threads. Reported: req/s, p50/p99 latency.

usage: python3 bench/booking.py [path/to/medcore] [--json OUT]
environment: BOOK_THREADS (8), BOOK_PRACTITIONERS (4), BOOK_PATIENTS (400), AVAIL_REQUESTS (2000)
Python 3 standard library only; only 127.0.0.1 is contacted.
"""
import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import medcore_test as mt  # noqa: E402

THREADS = int(os.environ.get("BOOK_THREADS", "8"))
NPRAC = int(os.environ.get("BOOK_PRACTITIONERS", "4"))
NPAT = int(os.environ.get("BOOK_PATIENTS", "400"))
NAVAIL = int(os.environ.get("AVAIL_REQUESTS", "2000"))


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))] if v else 0.0


def run_parallel(jobs, fn):
    """jobs: list of work items split over THREADS threads, each with its own keep-alive
    connection. fn(conn, item) -> status. Returns (seconds, latencies_ms, statuses)."""
    lat, sts, lock = [], [], threading.Lock()
    chunks = [jobs[i::THREADS] for i in range(THREADS)]
    barrier = threading.Barrier(THREADS + 1)

    def worker(chunk):
        conn = srv.connect()
        my_l, my_s = [], []
        barrier.wait()
        for item in chunk:
            t0 = time.perf_counter()
            st = fn(conn, item)
            my_l.append((time.perf_counter() - t0) * 1e3)
            my_s.append(st)
        conn.close()
        with lock:
            lat.extend(my_l)
            sts.extend(my_s)

    ts = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return time.perf_counter() - t0, lat, sts


def main():
    global srv
    args = sys.argv[1:]
    out_json = None
    if "--json" in args:
        i = args.index("--json")
        out_json = args[i + 1]
        del args[i:i + 2]
    if args:
        os.environ["MEDCORE_BIN"] = os.path.abspath(args[0])
    srv = mt.Server(["--log-level", "warn"])
    try:
        srv.start()
        srv.add_user("bench.admin", "admin")
        srv.add_user("bench.rec", "receptionist")
        srv.add_user("bench.integ", "integration")
        admin, rec = srv.login("bench.admin"), srv.login("bench.rec")
        pracs = []
        tmpl = [{"weekday": d, "start": "00:00", "end": "24:00", "slotMinutes": 15} for d in range(1, 8)]
        for i in range(NPRAC):
            srv.add_user("bench.dr%d" % i, "doctor")
            r = srv.post("/api/v1/staff", {"firstName": "Doc", "lastName": "Bench%d" % i, "username": "bench.dr%d" % i},
                         token=admin)
            mt.check(r.status == 201, "staff", r)
            pid = r.json()["data"]["id"]
            t0 = time.perf_counter()
            r = srv.put("/api/v1/doctors/%s/availability/templates" % pid, {"templates": tmpl, "horizonWeeks": 1},
                        token=rec)
            mt.check(r.status == 200, "templates", r)
            gen_ms = (time.perf_counter() - t0) * 1e3
            pracs.append(pid)
        pats = []
        for i in range(NPAT):
            r = srv.post("/api/v1/patients/register", {"firstName": "B%d" % i, "lastName": "Bench", "birthDate":
                         "1980-01-01", "phone": "+1 555 %07d" % i}, token=rec)
            mt.check(r.status == 201, "patient", r)
            pats.append(r.json()["data"]["id"])
        slots = {}
        for p in pracs:
            r = srv.get("/api/v1/doctors/%s/availability" % p, token=rec)
            slots[p] = [s["slot"] for s in r.json()["data"]["slots"]]
        # distinct slots; slot j of every practitioner starts at the same time (same templates), so
        # (slot j, practitioner k) gets patient j * NPRAC + k: no patient is booked twice at once
        per = NPAT // NPRAC
        jobs = [(pats[j * NPRAC + k], s, k) for k, p in enumerate(pracs) for j, s in enumerate(slots[p][:per])]

        def do_book(conn, item):
            pat, slot, _ = item
            return mt.send(conn, "POST", "/api/v1/appointments/book", {"patient": pat, "slot": slot}, token=rec).status

        secs, lat, sts = run_parallel(jobs, do_book)
        ok = sts.count(201)
        book = {"bookings": len(jobs), "ok": ok, "errors": len(sts) - ok, "seconds": round(secs, 3),
                "per_s": round(ok / secs, 1), "p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2)}
        dbl = srv.sql("SELECT count(*) FROM (SELECT slot_id FROM sched_appt WHERE status = 'booked' GROUP BY slot_id "
                      "HAVING count(*) > 1) x")[0][0]
        book["double_bookings"] = dbl

        def do_avail(conn, item):
            return mt.send(conn, "GET", "/api/v1/doctors/%s/availability" % pracs[item % NPRAC], token=rec).status

        secs, lat, sts = run_parallel(list(range(NAVAIL)), do_avail)
        avail = {"requests": NAVAIL, "ok": sts.count(200), "seconds": round(secs, 3),
                 "per_s": round(NAVAIL / secs, 1), "p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2),
                 "slots_per_answer": round(statistics.mean(len(v) for v in slots.values()))}
        res = {"threads": THREADS, "practitioners": NPRAC, "slot_generation_ms": round(gen_ms, 1),
               "slots_per_practitioner": len(slots[pracs[0]]), "book": book, "availability": avail}
        print("booking:      %(ok)d/%(bookings)d booked in %(seconds)ss = %(per_s)s bookings/s, p50 %(p50_ms)s ms, "
              "p99 %(p99_ms)s ms, errors %(errors)d, double bookings %(double_bookings)d" % book)
        print("availability: %(ok)d/%(requests)d in %(seconds)ss = %(per_s)s req/s, p50 %(p50_ms)s ms, "
              "p99 %(p99_ms)s ms (%(slots_per_answer)s slots per answer)" % avail)
        print("generation:   %.0f ms for one week of 15-min slots around the clock (%d Slots)"
              % (gen_ms, len(slots[pracs[0]])))
        if out_json:
            with open(out_json, "w") as f:
                json.dump(res, f, indent=1)
        srv.stop()
    finally:
        srv.cleanup()


if __name__ == "__main__":
    main()
