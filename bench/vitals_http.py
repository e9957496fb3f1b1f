#!/usr/bin/env python3
"""bench/vitals_http.py — vitals ingest over HTTP: sustained samples/s through POST /api/v1/vitals
with large NDJSON batches (pre-generated, so the client's cost is sending bytes), against a fresh
server on 127.0.0.1 started here (rate limit raised, --max-body 64 MiB). Reports samples/s and the
server's CPU seconds. Python 3 standard library only; talks to 127.0.0.1 only.

usage: python3 bench/vitals_http.py path/to/medcore [--seconds 10] [--clients 2] [--batch 20000]
"""
import argparse
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

PASSWORD = "Bench-Vitals-2026!"


def req(port, method, path, body=None, token=None, ctype="application/json"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    h = {"Content-Type": ctype}
    if token:
        h["Authorization"] = "Bearer " + token
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


def client(port, token, bodies, seconds, q):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    h = {"Content-Type": "application/x-ndjson", "Authorization": "Bearer " + token}
    sent = failed = 0
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        body, n = bodies[i % len(bodies)]
        i += 1
        c.request("POST", "/api/v1/vitals", body=body, headers=h)
        r = c.getresponse()
        r.read()
        if r.status == 200:
            sent += n
        else:
            failed += 1
    q.put((sent, failed))


def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--batch", type=int, default=20000)
    ap.add_argument("--patients", type=int, default=200)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="medcore-vbench-")
    db = "sqlite:%s/m.db" % tmp
    subprocess.run([a.bin, "migrate", "--db", db], check=True, capture_output=True)
    subprocess.run([a.bin, "user", "add", "--username", "vbench", "--role", "integration", "--password-stdin",
                    "--db", db], input=PASSWORD + "\n", text=True, check=True, capture_output=True)
    srv = subprocess.Popen([a.bin, "serve", "--listen", "127.0.0.1:0", "--db", db, "--log-level", "warn",
                            "--max-body", "67108864", "--vitals-device-rate", "10000000",
                            "--vitals-device-burst", "100000000", "--audit-reads", "false"],
                           stderr=subprocess.PIPE, text=True)
    port = None
    for line in srv.stderr:
        if '"listening"' in line:
            port = json.loads(line)["port"]
            break
    try:
        st, b = req(port, "POST", "/api/v1/auth/login", {"username": "vbench", "password": PASSWORD})
        tok = json.loads(b)["data"]["access_token"]
        pairs = []
        for i in range(a.patients):
            st, b = req(port, "POST", "/api/v1/patients/register", {"firstName": "B", "lastName": "Bench%d" % i,
                        "birthDate": "1970-01-01", "gender": "male", "force": True}, tok)
            pid = json.loads(b)["data"]["id"]
            st, b = req(port, "POST", "/api/v1/devices", {"identifier": "B-%d" % i, "type": "monitor"}, tok)
            did = json.loads(b)["data"]["id"]
            req(port, "PUT", "/api/v1/devices/%s/bind" % did, {"patient": pid}, tok)
            pairs.append((did, pid))
        codes = [("8867-4", "/min", 72), ("9279-1", "/min", 16), ("59408-5", "%", 97),
                 ("8480-6", "mm[Hg]", 120), ("8462-4", "mm[Hg]", 80), ("8310-5", "Cel", 36.9)]
        t0 = int(time.time() * 1000) - 120000
        bodies = []
        k = 0
        for _ in range(8):
            lines = []
            for j in range(a.batch):
                d, p = pairs[k % len(pairs)]
                c, u, v = codes[k % 6]
                lines.append('{"device":"%s","patient":"%s","code":"%s","value":%s,"unit":"%s","ts":%d}'
                             % (d, p, c, v, u, t0 + k // 50))
                k += 1
            bodies.append((("\n".join(lines) + "\n").encode(), a.batch))
        print("bench: %d bodies of %d samples, %.1f MB each" % (len(bodies), a.batch, len(bodies[0][0]) / 1e6),
              flush=True)
        q = multiprocessing.Queue()
        c0 = cpu(srv.pid)
        w0 = time.monotonic()
        ps = [multiprocessing.Process(target=client, args=(port, tok, bodies[i::a.clients] or bodies, a.seconds, q))
              for i in range(a.clients)]
        for p in ps:
            p.start()
        res = [q.get() for _ in ps]
        for p in ps:
            p.join()
        wall = time.monotonic() - w0
        used = cpu(srv.pid) - c0
        sent = sum(r[0] for r in res)
        print(json.dumps({"scenario": "vitals_http_ingest", "samples": sent, "seconds": round(wall, 2),
                          "samples_per_s": round(sent / wall), "failed_batches": sum(r[1] for r in res),
                          "batch": a.batch, "clients": a.clients, "server_cpu_s": round(used, 2),
                          "samples_per_server_cpu_s": round(sent / used) if used else None}))
    finally:
        srv.terminate()
        srv.wait(30)


if __name__ == "__main__":
    main()
