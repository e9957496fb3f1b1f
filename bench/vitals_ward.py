#!/usr/bin/env python3
"""bench/vitals_ward.py — live vitals at ward scale, against a fresh server started here (127.0.0.1
only, Python 3 standard library only). Not part of ctest. Build medcore as a RELEASE build first
(cmake -DCMAKE_BUILD_TYPE=Release): -O0 numbers say nothing about latency.

Scenario "ward": a 1,000-bed ward, `medcore simulate --patients 1000 --params 8 --rate 1` (the real
simulator over HTTP: 8,000 samples/s) for BENCH_WARD_SECONDS (default 600). Checks that no sample is
lost (samples the server accepted = samples in the vitals store after a clean stop, counted with
SQLite directly) and reports the server's RSS, sampled every 10 s: start, end, max.

Scenario "latency": background ingest at BENCH_BG_RATE samples/s (default 100,000; 200 patients,
pre-generated NDJSON batches of 2,000 on 4 connections) while a probe patient with a threshold rule
(heart rate above 140, clear below 130) alternates one sample of 150 and one of 100: each sample
posted -> the alert change (raised/retriggered, condition-cleared) arriving on a WebSocket
subscribed to that patient. Reports p50/p90/p99/max over BENCH_LAT_SECONDS (default 30) and the
background rate actually reached.

usage: python3 bench/vitals_ward.py path/to/medcore [ward|latency|all]
"""
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from test_alerts_live import WS  # noqa: E402  (stdlib RFC 6455 client)

PASSWORD = "Bench-Ward-2026!x"


class Server:
    def __init__(self, binary, extra=()):
        self.bin = binary
        self.tmp = tempfile.mkdtemp(prefix="medcore-ward-")
        self.db = "sqlite:%s/m.db" % self.tmp
        subprocess.run([binary, "migrate", "--db", self.db], check=True, capture_output=True)
        subprocess.run([binary, "user", "add", "--username", "wardgw", "--role", "integration", "--password-stdin",
                        "--db", self.db], input=PASSWORD + "\n", text=True, check=True, capture_output=True)
        self.proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--db", self.db, "--log-level",
                                      "warn", "--max-body", "67108864", "--vitals-device-rate", "10000000",
                                      "--vitals-device-burst", "100000000", "--audit-reads", "false",
                                      "--alert-escalate-seconds", "0"] + list(extra),
                                     stderr=subprocess.PIPE, text=True)
        self.port = None
        for line in self.proc.stderr:
            if '"listening"' in line:
                self.port = json.loads(line)["port"]
                break
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        self.token = self.req("POST", "/api/v1/auth/login", {"username": "wardgw", "password": PASSWORD})[1][
            "data"]["access_token"]

    def req(self, method, path, body=None, ctype="application/json", conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        h = {"Content-Type": ctype}
        if getattr(self, "token", None):
            h["Authorization"] = "Bearer " + self.token
        data = body if isinstance(body, (bytes, str, type(None))) else json.dumps(body)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        if not conn:
            c.close()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw

    def rss_mb(self):
        for line in open("/proc/%d/status" % self.proc.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
        return 0.0

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(120)

    def stored_samples(self):
        """Samples in the vitals store after a clean stop (the final checkpoint wrote every part)."""
        con = sqlite3.connect("%s/m.db-vitals.db" % self.tmp)
        n = con.execute("SELECT COALESCE(SUM(n), 0) FROM vitals_chunk").fetchone()[0]
        pend = con.execute("SELECT COUNT(*) FROM vitals_pending").fetchone()[0]
        con.close()
        return n, pend

    def patient_device(self, tag, conn=None):
        st, b = self.req("POST", "/api/v1/patients/register", {"firstName": "W", "lastName": "Bed" + tag,
                         "birthDate": "1950-01-01", "gender": "female", "force": True}, conn=conn)
        pid = b["data"]["id"]
        st, b = self.req("POST", "/api/v1/devices", {"identifier": "WARD-" + tag, "type": "monitor"}, conn=conn)
        did = b["data"]["id"]
        self.req("PUT", "/api/v1/devices/%s/bind" % did, {"patient": pid}, conn=conn)
        return pid, did


def ward(binary):
    secs = int(os.environ.get("BENCH_WARD_SECONDS", "600"))
    srv = Server(binary)
    try:
        rss = [srv.rss_mb()]
        sim = subprocess.Popen([binary, "simulate", "--url", "http://127.0.0.1:%d" % srv.port, "--token", srv.token,
                                "--patients", "1000", "--params", "8", "--rate", "1", "--seconds", str(secs),
                                "--batch-ms", "1000", "--deteriorate", "20", "--seed", "11"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t0 = None
        while sim.poll() is None:
            time.sleep(10)
            rss.append(srv.rss_mb())
            if t0 is None:
                t0 = time.monotonic()
        out, err = sim.communicate()
        res = json.loads(out.strip().splitlines()[-1])
        rss_end = srv.rss_mb()
        code = srv.stop()
        stored, pending = srv.stored_samples()
        report = {"scenario": "ward_1000_beds", "seconds": secs, "patients": 1000, "params": 8,
                  "samples_sent": res["samples"], "accepted": res["accepted"], "rejected": res["rejected"],
                  "failed_batches": res["failed_batches"], "stored": stored, "log_rows_left": pending,
                  "lost": res["accepted"] - stored, "server_exit": code,
                  "rss_mb": {"start": round(rss[0], 1), "end": round(rss_end, 1), "max": round(max(rss + [rss_end]), 1),
                             "samples": [round(x, 1) for x in rss]}}
        print(json.dumps(report), flush=True)
        return report["lost"] == 0 and res["failed_batches"] == 0
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()


def latency(binary):
    rate = int(os.environ.get("BENCH_BG_RATE", "100000"))
    secs = float(os.environ.get("BENCH_LAT_SECONDS", "30"))
    npat, batch, nconn = 200, 2000, 4
    srv = Server(binary)
    try:
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        pats = [srv.patient_device("bg%d" % i, conn=c) for i in range(npat)]
        probe, pdev = srv.patient_device("probe", conn=c)
        st, b = srv.req("POST", "/api/v1/alert-rules", {"code": "8867-4", "direction": "above", "raiseAt": 140,
                        "clearAt": 130, "severity": "high", "patientId": probe}, conn=c)
        assert st == 201, b
        # pre-generated background bodies: timestamps spread over the last minutes (all valid)
        t_base = int(time.time() * 1000) - 300000
        codes = [("8867-4", "/min", 72), ("9279-1", "/min", 16), ("59408-5", "%", 97), ("8480-6", "mm[Hg]", 120),
                 ("8462-4", "mm[Hg]", 80), ("8310-5", "Cel", 36.9), ("67775-7", "{score}", 0), ("3151-8", "L/min", 0)]
        bodies, k = [], 0
        for _ in range(16):
            lines = []
            for j in range(batch):
                pid, did = pats[k % npat]
                code, unit, v = codes[(k // npat) % 8]
                lines.append('{"device":"%s","patient":"%s","code":"%s","value":%s,"unit":"%s","ts":%d}'
                             % (did, pid, code, v, unit, t_base + k // (npat * 8)))
                k += 1
            bodies.append(("\n".join(lines) + "\n").encode())
        ws = WS(srv.port, "/api/v1/live/patient/%s?access_token=%s" % (probe, srv.token), timeout=30)
        assert ws.status == 101
        stop = threading.Event()
        sent = [0] * nconn

        def load(i):
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
            h = {"Content-Type": "application/x-ndjson", "Authorization": "Bearer " + srv.token}
            per_s = rate / nconn / batch
            nxt, j = time.monotonic(), i
            while not stop.is_set():
                conn.request("POST", "/api/v1/vitals", body=bodies[j % len(bodies)], headers=h)
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    sent[i] += batch
                j += nconn
                nxt += 1 / per_s
                d = nxt - time.monotonic()
                if d > 0:
                    time.sleep(d)

        ths = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(nconn)]
        for t in ths:
            t.start()
        time.sleep(3)
        pc = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        h = {"Content-Type": "application/x-ndjson", "Authorization": "Bearer " + srv.token}
        lat, v = {"detect": [], "durable": [], "clear": [], "ack": []}, 150
        n0, w0 = sum(sent), time.monotonic()
        end = w0 + secs
        while time.monotonic() < end:
            body = json.dumps({"device": pdev, "patient": probe, "code": "8867-4", "value": v, "unit": "/min",
                               "ts": int(time.time() * 1000)}) + "\n"
            t0 = time.monotonic()
            pc.request("POST", "/api/v1/vitals", body=body, headers=h)
            r = pc.getresponse()
            r.read()
            lat["ack"].append((time.monotonic() - t0) * 1e3)
            if v == 150:   # a raise: the provisional push, then the durable record
                ws.wait_for(lambda m: m["type"] == "alert" and m.get("provisional"), "detected", timeout=30)
                lat["detect"].append((time.monotonic() - t0) * 1e3)
                ws.wait_for(lambda m: m["type"] == "alert" and not m.get("provisional"), "raised", timeout=30)
                lat["durable"].append((time.monotonic() - t0) * 1e3)
            else:
                ws.wait_for(lambda m: m["type"] == "alert" and m["action"] == "condition-cleared", "cleared",
                            timeout=30)
                lat["clear"].append((time.monotonic() - t0) * 1e3)
            v = 100 if v == 150 else 150
            time.sleep(0.05)
        bg = (sum(sent) - n0) / (time.monotonic() - w0)
        stop.set()
        for t in ths:
            t.join(60)
        ws.close()

        def pct(name):
            x = sorted(lat[name])
            return {"n": len(x), "p50": round(x[len(x) // 2], 1), "p90": round(x[min(len(x) - 1, int(.9 * len(x)))], 1),
                    "p99": round(x[min(len(x) - 1, int(.99 * len(x)))], 1), "max": round(x[-1], 1)}

        print(json.dumps({"scenario": "sample_to_alert_on_websocket", "background_samples_per_s": round(bg),
                          "target_background": rate,
                          "raise_provisional_ms": pct("detect"), "raise_durable_ms": pct("durable"),
                          "clear_durable_ms": pct("clear"), "ingest_ack_ms": pct("ack")}), flush=True)
        st, met = srv.req("GET", "/metrics")
        for line in (met if isinstance(met, bytes) else b"").decode().splitlines():
            if line.startswith(("medcore_vitals_checkpoint_seconds_sum", "medcore_vitals_checkpoint_seconds_count",
                                'medcore_vitals_checkpoint_seconds_bucket{le="0.05"}',
                                'medcore_vitals_checkpoint_seconds_bucket{le="0.1"}',
                                'medcore_vitals_checkpoint_seconds_bucket{le="0.25"}',
                                'medcore_vitals_checkpoint_seconds_bucket{le="0.5"}')):
                print("   " + line)
        srv.stop()
        return True
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    which = sys.argv[2] if len(sys.argv) > 2 else "all"
    ok = True
    if which in ("ward", "all"):
        ok = ward(sys.argv[1]) and ok
    if which in ("latency", "all"):
        ok = latency(sys.argv[1]) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
