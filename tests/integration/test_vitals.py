"""Vitals over HTTP: devices (create, bind, unbind, device credentials), NDJSON/JSON ingest with
per-sample errors, device ownership, unbound devices, floods (429), raw/1m/1h queries, the FHIR
Observation view, access control, `medcore simulate`, and kill -9 during ingest: every acknowledged
batch is present after restart."""
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
NDJSON = "application/x-ndjson"


def now_ms():
    return int(time.time() * 1000)


def sample(dev, pat, code, value, unit, ts=None):
    return {"device": dev, "patient": pat, "code": code, "value": value, "unit": unit,
            "ts": ts if ts is not None else now_ms()}


def ndjson(samples):
    return "".join(json.dumps(s) + "\n" for s in samples)


def setup(srv, tag):
    """integration token, a patient, a device bound to it."""
    tok = srv.user_token("gw-" + tag, "integration")
    r = srv.post("/api/v1/patients/register", {"firstName": "Vita", "lastName": "Signs" + tag,
                                               "birthDate": "1960-02-03", "gender": "female",
                                               "force": True}, token=tok)
    check(r.status == 201, "register patient", r)
    pat = r.json()["data"]["id"]
    r = srv.post("/api/v1/devices", {"identifier": "MON-" + tag, "type": "bedside monitor"}, token=tok)
    check(r.status == 201, "create device", r)
    dev = r.json()["data"]["id"]
    r = srv.put("/api/v1/devices/%s/bind" % dev, {"patient": pat}, token=tok)
    check(r.status == 200 and r.json()["data"]["patient"] == pat, "bind", r)
    return tok, pat, dev


def test_devices_and_ingest(srv):
    tok, pat, dev = setup(srv, "a")
    # the Device is a FHIR resource carrying the binding
    r = srv.get("/fhir/Device/" + dev, token=tok)
    check(r.status == 200 and r.json()["patient"]["reference"] == "Patient/" + pat, "Device.patient", r)
    # duplicate identifier
    r = srv.post("/api/v1/devices", {"identifier": "MON-a", "type": "x"}, token=tok)
    check(r.status == 409, "duplicate identifier", r)
    r = srv.post("/api/v1/devices", {"identifier": "", "type": "x"}, token=tok)
    check(r.status == 400, "empty identifier", r)
    r = srv.post("/api/v1/devices", {"identifier": "Z", "type": "x", "colour": 1}, token=tok)
    check(r.status == 400, "unknown field", r)

    t = now_ms()
    good = [sample(dev, pat, "8867-4", 70 + i, "/min", t - 10000 + i * 1000) for i in range(10)]
    bad = [
        sample(dev, pat, "1234-5", 1, "/min"),                 # unknown code
        sample(dev, pat, "8867-4", 70, "%"),                   # wrong unit
        sample(dev, pat, "8867-4", 900, "/min"),               # impossible
        sample(dev, pat, "8867-4", 70, "/min", t + 60000),     # future
        sample(dev, "someone-else", "8867-4", 70, "/min"),     # not bound to that patient
    ]
    body = ndjson(good) + ndjson(bad) + "{not json}\n" + json.dumps(sample(dev, pat, "8310-5", 100.4, "[degF]")) + "\n"
    r = srv.post("/api/v1/vitals", body, token=tok, content_type=NDJSON)
    check(r.status == 200, "mixed batch", r)
    d = r.json()["data"]
    check(d["accepted"] == 11 and d["rejected"] == 6, "counts", r)
    codes = [(e["index"], e["code"]) for e in d["errors"]]
    check(codes == [(10, "UNKNOWN_CODE"), (11, "BAD_UNIT"), (12, "OUT_OF_RANGE"), (13, "BAD_TIMESTAMP"),
                    (14, "DEVICE_NOT_BOUND"), (15, "INVALID_JSON")], "error list %s" % codes)
    # JSON array form
    r = srv.post("/api/v1/vitals", [sample(dev, pat, "9279-1", 16, "/min")], token=tok)
    check(r.status == 200 and r.json()["data"]["accepted"] == 1, "json array", r)
    # all rejected: 422 with the report; malformed array: 400; wrong media type: 415
    r = srv.post("/api/v1/vitals", ndjson(bad), token=tok, content_type=NDJSON)
    check(r.status == 422 and len(r.json()["error"]["details"]["errors"]) == 5, "all rejected", r)
    r = srv.post("/api/v1/vitals", "[{\"device\":1,", token=tok, content_type="application/json")
    check(r.status == 400, "malformed array", r)
    r = srv.post("/api/v1/vitals", "x", token=tok, content_type="text/plain")
    check(r.status == 415, "media type", r)

    # raw query
    r = srv.get("/api/v1/patients/%s/vitals?code=8867-4&from=%d&to=%d" % (pat, t - 20000, t + 1000), token=tok)
    check(r.status == 200, "raw query", r)
    s = r.json()["data"]["series"]
    check(len(s) == 1 and s[0]["code"] == "8867-4", "one series", r)
    check([p[1] for p in s[0]["points"]] == [70 + i for i in range(10)], "raw values", r)
    r = srv.get("/api/v1/patients/%s/vitals?code=8310-5" % pat, token=tok)
    check(r.json()["data"]["series"][0]["points"][0][1] == 38, "degF converted", r)
    # rollups
    r = srv.get("/api/v1/patients/%s/vitals?code=8867-4&resolution=1m&from=%d&to=%d"
                % (pat, t - 3600000, t + 60000), token=tok)
    check(r.status == 200, "1m", r)
    b = r.json()["data"]["series"][0]["buckets"]
    check(sum(x["count"] for x in b) == 10 and min(x["min"] for x in b) == 70 and max(x["max"] for x in b) == 79,
          "1m rollup", r)
    r = srv.get("/api/v1/patients/%s/vitals?resolution=1h" % pat, token=tok)
    check(r.status == 200 and len(r.json()["data"]["series"]) == 8, "1h all params", r)
    for q in ("resolution=5m", "code=1234-5", "from=abc", "from=%d&to=%d" % (t, t - 1)):
        r = srv.get("/api/v1/patients/%s/vitals?%s" % (pat, q), token=tok)
        check(r.status == 400, "bad query " + q, r)
    r = srv.get("/api/v1/patients/nobody/vitals", token=tok)
    check(r.status == 404, "unknown patient", r)

    # FHIR view
    r = srv.get("/api/v1/patients/%s/vitals/fhir?code=8867-4&date=ge%s" % (pat, "2000-01-01"), token=tok)
    check(r.status == 200, "fhir view", r)
    bnd = r.json()
    check(bnd["resourceType"] == "Bundle" and bnd["total"] == 10, "bundle total", r)
    o = bnd["entry"][0]["resource"]
    check(o["resourceType"] == "Observation" and o["category"][0]["coding"][0]["code"] == "vital-signs"
          and o["code"]["coding"][0]["code"] == "8867-4" and o["subject"]["reference"] == "Patient/" + pat
          and o["valueQuantity"]["value"] == 79 and o["valueQuantity"]["code"] == "/min", "observation", r)
    r = srv.get("/api/v1/patients/%s/vitals/fhir?date=xx2024" % pat, token=tok)
    check(r.status == 400, "bad date", r)
    r = srv.get("/api/v1/patients/%s/vitals/fhir?_count=2" % pat, token=tok)
    check(r.status == 200 and len(r.json()["entry"]) == 2, "_count", r)


def test_access_and_device_credentials(srv):
    tok, pat, dev = setup(srv, "b")
    _, pat2, dev2 = setup(srv, "c")
    srv.add_user("mon-b", "device")
    r = srv.post("/api/v1/devices", {"identifier": "MON-b2", "type": "wearable", "user": "mon-b"}, token=tok)
    check(r.status == 201 and r.json()["data"]["user_id"], "device with credential", r)
    devb = r.json()["data"]["id"]
    r = srv.post("/api/v1/devices", {"identifier": "MON-b3", "type": "w", "user": "gw-b"}, token=tok)
    check(r.status == 400, "user must have role device", r)
    r = srv.post("/api/v1/devices", {"identifier": "MON-b4", "type": "w", "user": "mon-b"}, token=tok)
    check(r.status == 409, "user already linked", r)
    dtok = srv.login("mon-b")
    # not bound yet
    r = srv.post("/api/v1/vitals", ndjson([sample(devb, pat, "8867-4", 80, "/min")]), token=dtok, content_type=NDJSON)
    check(r.status == 422 and r.json()["error"]["details"]["errors"][0]["code"] == "DEVICE_NOT_BOUND", "unbound", r)
    r = srv.put("/api/v1/devices/%s/bind" % devb, {"patient": pat}, token=tok)
    check(r.status == 200, "bind", r)
    r = srv.post("/api/v1/vitals", ndjson([sample(devb, pat, "8867-4", 80, "/min"),
                                            sample(dev2, pat2, "8867-4", 80, "/min"),    # someone else's device
                                            sample(devb, pat2, "8867-4", 80, "/min")]),  # another patient
                 token=dtok, content_type=NDJSON)
    check(r.status == 200, "device posts", r)
    codes = [e["code"] for e in r.json()["data"]["errors"]]
    check(r.json()["data"]["accepted"] == 1 and codes == ["NOT_YOUR_DEVICE", "DEVICE_NOT_BOUND"], "device limits", r)
    # a device may do nothing else
    for m, p, b in (("GET", "/api/v1/patients/%s/vitals" % pat, None), ("POST", "/api/v1/devices", {"identifier": "q", "type": "q"}),
                    ("PUT", "/api/v1/devices/%s/unbind" % devb, None)):
        r = srv.request(m, p, b, token=dtok)
        check(r.status == 403, "device %s %s" % (m, p), r)
    # rebinding: bound elsewhere -> 409 until unbound
    r = srv.put("/api/v1/devices/%s/bind" % devb, {"patient": pat2}, token=tok)
    check(r.status == 409, "bound elsewhere", r)
    r = srv.put("/api/v1/devices/%s/unbind" % devb, None, token=tok)
    check(r.status == 200 and r.json()["data"]["patient"] is None, "unbind", r)
    r = srv.post("/api/v1/vitals", ndjson([sample(devb, pat, "8867-4", 80, "/min")]), token=dtok, content_type=NDJSON)
    check(r.status == 422, "after discharge the device posts nothing", r)
    r = srv.put("/api/v1/devices/nope/bind", {"patient": pat}, token=tok)
    check(r.status == 404, "unknown device", r)
    r = srv.put("/api/v1/devices/%s/bind" % devb, {"patient": "nope"}, token=tok)
    check(r.status == 404, "unknown patient", r)
    # a nurse outside the care team can neither bind nor read
    ntok = srv.user_token("nurse-v", "nurse")
    r = srv.put("/api/v1/devices/%s/bind" % devb, {"patient": pat}, token=ntok)
    check(r.status == 403, "nurse not in care", r)
    r = srv.get("/api/v1/patients/%s/vitals" % pat, token=ntok)
    check(r.status == 403, "nurse read not in care", r)
    r = srv.get("/api/v1/patients/%s/vitals/fhir" % pat, token=ntok)
    check(r.status == 403, "nurse fhir read not in care", r)
    r = srv.get("/api/v1/patients/%s/vitals" % pat)
    check(r.status == 401, "anonymous", r)


def test_flood(srv):
    tok, pat, dev = setup(srv, "f")
    t = now_ms()
    batch = [sample(dev, pat, "8867-4", 70, "/min", t - i) for i in range(400)]
    r = srv.post("/api/v1/vitals", ndjson(batch), token=tok, content_type=NDJSON)
    check(r.status == 200, "within burst", r)
    r = srv.post("/api/v1/vitals", ndjson(batch), token=tok, content_type=NDJSON)
    check(r.status == 429 and r.header("retry-after") == "1", "flood -> 429", r)
    r = srv.get("/api/v1/patients/%s/vitals?code=8867-4&from=%d&to=%d" % (pat, t - 1000, t), token=tok)
    check(len(r.json()["data"]["series"][0]["points"]) == 400, "the refused batch stored nothing", r)


def test_simulate(srv):
    tok = srv.user_token("sim", "integration")
    p = subprocess.run([mt.binary(), "simulate", "--url", srv.base_url, "--token", tok, "--patients", "3",
                        "--rate", "2", "--deteriorate", "1", "--seconds", "2", "--batch-ms", "250"],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "simulate exit: %s" % p.stderr)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    check(out["samples"] > 0 and out["failed_batches"] == 0, "simulate streamed %s" % out)


def kill_during_ingest():
    srv = mt.Server()
    try:
        srv.start()
        tok, pat, dev = setup(srv, "k")
        srv.stop()
        srv = mt.Server(tmpdir=srv.tmpdir, args=["--vitals-device-rate", "10000000", "--vitals-device-burst", "10000000"])
        srv.start()
        tok = srv.login("gw-k")
        acked, stop = [], threading.Event()
        base = now_ms() - 600000

        def writer(n):
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
            i = 0
            while not stop.is_set():
                ts0 = base + (n * 1000000 + i) * 3
                # one HR sample marks the batch; 50 RR samples are its bulk
                body = ndjson([sample(dev, pat, "8867-4", 60 + n, "/min", ts0)] +
                              [sample(dev, pat, "9279-1", 12, "/min", ts0 + j) for j in range(50)])
                try:
                    r = mt.send(conn, "POST", "/api/v1/vitals", body, token=tok, content_type=NDJSON)
                except (OSError, http.client.HTTPException):
                    return
                if r.status == 200:
                    acked.append(ts0)
                i += 1

        th = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in th:
            t.start()
        # kill once the load is well under way: at least 0.5 s and 40 acknowledged batches (the
        # rate depends on the backend and the machine; the deadline only bounds a stuck run)
        t_end = time.monotonic() + 30
        time.sleep(0.5)
        while len(acked) < 40 and time.monotonic() < t_end:
            time.sleep(0.05)
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(10)
        stop.set()
        for t in th:
            t.join(15)
        check(len(acked) > 20, "batches acknowledged before kill -9: %d" % len(acked))
        srv2 = mt.Server(tmpdir=srv.tmpdir)
        srv2.start()
        tok = srv2.login("gw-k")
        r = srv2.get("/api/v1/patients/%s/vitals?code=8867-4&from=%d&to=%d" % (pat, base, now_ms()), token=tok)
        have = set(p[0] for p in r.json()["data"]["series"][0]["points"])
        missing = [a for a in acked if a not in have]
        check(not missing, "%d of %d acknowledged batches lost" % (len(missing), len(acked)))
        r = srv2.get("/api/v1/patients/%s/vitals?code=9279-1&from=%d&to=%d" % (pat, base, now_ms()), token=tok)
        n = len(r.json()["data"]["series"][0]["points"])
        check(n >= 50 * len(acked), "every sample of every acknowledged batch (%d >= %d)" % (n, 50 * len(acked)))
        print("ok    kill -9 during ingest: %d acknowledged batches all present" % len(acked))
        srv2.stop()
    finally:
        srv.cleanup()


if __name__ == "__main__":
    try:
        kill_during_ingest()
    except Exception:
        import traceback
        traceback.print_exc(file=sys.stdout)
        print("FAIL  kill_during_ingest")
        sys.exit(1)
    mt.main(globals())
