#!/usr/bin/env python3
"""bench/bench.py — the measuring half of `make bench` (bench/run.sh starts and stops the server).

Talks only to 127.0.0.1:PORT. Logs in, collects Patient ids and family-name prefixes, then runs
each scenario with wrk (a warm-up, then RUNS measured runs), reading the server's CPU time
(utime+stime from /proc/PID/stat) around every run. Prints a table of medians and writes the raw
wrk output plus summary.txt / summary.json into the results directory.

Python 3 standard library only.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HOST = "127.0.0.1"   # the only address this benchmark ever talks to
HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")

# DESIGN §8 targets, checked and reported (a miss does not fail the run: numbers vary by machine).
TARGETS = {
    "read": {"rps": 30000, "p99_ms": 5.0, "per_cpu": 40000},
    "search": {"p99_ms": 10.0},
    "create": {"rps": 5000},
}

# Demo accounts (docs/demo.md).
INTEGRATION = ("integration", "Demo-Integration-2026!")
LOGIN_USER = ("analyst", "Demo-Analyst-2026!")


def log(msg):
    print(f"bench: {msg}", flush=True)


def http(port, method, path, body=None, token=None, timeout=30):
    """One request to 127.0.0.1:port. Returns (status, parsed JSON or None)."""
    if not path.startswith("/"):
        raise ValueError("path must be absolute")
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", method=method)
    req.add_header("Accept", "application/json, application/fhir+json")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, data=data, timeout=timeout) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def find_key(obj, key):
    """First value of key anywhere in a JSON tree (the /api/v1 envelope may wrap it)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            r = find_key(v, key)
            if r is not None:
                return r
    elif isinstance(obj, list):
        for v in obj:
            r = find_key(v, key)
            if r is not None:
                return r
    return None


def wait_ready(port, pid, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            raise SystemExit("bench: the server exited during start-up (see server.log)")
        try:
            status, _ = http(port, "GET", "/healthz", timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("bench: the server did not become ready")


def login(port, user, password):
    status, body = http(port, "POST", "/api/v1/auth/login", {"username": user, "password": password})
    token = find_key(body, "access_token") if status == 200 else None
    if not token:
        raise SystemExit(f"bench: login as {user} failed (HTTP {status})")
    return token


def utf8_prefix(s, n):
    return s[:n]


def collect(port, token, want, results):
    """Write ids.txt (Patient ids) and families.txt (percent-encoded family prefixes)."""
    ids, prefixes = [], []
    seen = set()
    offset = 0
    while len(ids) < want:
        status, bundle = http(port, "GET", f"/fhir/Patient?_count=500&_offset={offset}", token=token, timeout=60)
        if status != 200 or not isinstance(bundle, dict):
            raise SystemExit(f"bench: listing patients failed (HTTP {status})")
        entries = bundle.get("entry") or []
        if not entries:
            break
        for e in entries:
            res = e.get("resource") or {}
            if res.get("id"):
                ids.append(res["id"])
            for name in res.get("name") or []:
                fam = name.get("family")
                if fam:
                    p = utf8_prefix(fam, 3)
                    if p.lower() not in seen:
                        seen.add(p.lower())
                        prefixes.append(urllib.parse.quote(p, safe=""))
        offset += len(entries)
    if not ids:
        raise SystemExit("bench: the server listed no patients")
    ids = ids[:want]
    with open(os.path.join(results, "ids.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")
    with open(os.path.join(results, "families.txt"), "w") as f:
        f.write("\n".join(prefixes) + "\n")
    return len(ids), len(prefixes)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


MCBENCH = re.compile(r"^MCBENCH (.*)$", re.M)


def run_wrk(port, script, args, conns, seconds, timeout, out_path, secret=None):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", f"--timeout={timeout}s", "--latency",
           "-s", os.path.join(HERE, script), f"http://{HOST}:{port}/"]
    if args:
        cmd += ["--"] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=seconds + timeout + 30)
    # Never write the bearer token to the results directory.
    safe = " ".join("<secret>" if secret and c == secret else c for c in cmd)
    with open(out_path, "w") as f:
        f.write("$ " + safe + "\n" + p.stdout)
    m = MCBENCH.search(p.stdout)
    if p.returncode != 0 or not m:
        raise SystemExit(f"bench: wrk failed for {script} (see {out_path})")
    vals = dict(kv.split("=", 1) for kv in m.group(1).split())
    return {k: float(v) for k, v in vals.items()}


def scenario(port, pid, name, script, args, conns, seconds, runs, timeout, results, warmup, secret):
    if warmup > 0:
        run_wrk(port, script, args, conns, warmup, timeout, os.path.join(results, f"{name}-warmup.txt"), secret)
    out = []
    for k in range(1, runs + 1):
        c0 = cpu_seconds(pid)
        r = run_wrk(port, script, args, conns, seconds, timeout, os.path.join(results, f"{name}-{k}.txt"), secret)
        c1 = cpu_seconds(pid)
        dur = r["duration_us"] / 1e6
        errors = int(r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"])
        ok = r["requests"] - errors
        cpu = max(c1 - c0, 1.0 / CLK_TCK)
        run = {
            "rps": r["requests"] / dur if dur > 0 else 0.0,
            "p50_ms": r["p50_us"] / 1000.0,
            "p99_ms": r["p99_us"] / 1000.0,
            "per_cpu": ok / cpu,
            "cpu_s": c1 - c0,
            "requests": int(r["requests"]),
            "errors": errors,
            "non2xx": int(r["status"]),
        }
        out.append(run)
        log(f"{name} run {k}: {run['rps']:.0f} req/s  p50 {run['p50_ms']:.2f} ms  p99 {run['p99_ms']:.2f} ms  "
            f"{run['per_cpu']:.0f} req/CPU-s  errors {errors}")
    med = {key: statistics.median(r[key] for r in out) for key in ("rps", "p50_ms", "p99_ms", "per_cpu")}
    med["errors"] = sum(r["errors"] for r in out)
    med["requests"] = sum(r["requests"] for r in out)
    return {"name": name, "connections": conns, "runs": out, "median": med}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the server process (for CPU time)")
    ap.add_argument("--results", required=True)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--ids", type=int, default=1000)
    ap.add_argument("--patients", type=int, default=0, help="patients loaded (for the report)")
    ap.add_argument("--only", default="", help="comma list of scenarios to run (default all)")
    a = ap.parse_args()

    wait_ready(a.port, a.pid)
    token = login(a.port, *INTEGRATION)
    nids, nfam = collect(a.port, token, a.ids, a.results)
    log(f"collected {nids} patient ids and {nfam} family prefixes")
    ids = os.path.join(a.results, "ids.txt")
    fams = os.path.join(a.results, "families.txt")

    # name, script, args, connections, wrk timeout (s). Search runs before create (same data as
    # loaded); login last. The baseline runs first and is the peer every ratio refers to.
    plan = [
        ("healthz", "healthz.lua", [], 32, 5),
        ("read", "read.lua", ["TOKEN", ids], 32, 5),
        ("search", "search.lua", ["TOKEN", fams], 32, 5),
        ("create", "create.lua", ["TOKEN"], 64, 10),
        ("login", "login.lua", list(LOGIN_USER), 16, 10),
    ]
    only = set(filter(None, a.only.split(",")))
    results = []
    for name, script, args, conns, tmo in plan:
        if only and name not in only and name != "healthz":
            continue
        # A fresh token per scenario keeps it well inside the access-token lifetime.
        secret = None
        if "TOKEN" in args:
            secret = login(a.port, *INTEGRATION)
            args = [secret if x == "TOKEN" else x for x in args]
        log(f"scenario {name}: {a.runs} x {a.duration} s, 2 threads, {conns} connections")
        results.append(scenario(a.port, a.pid, name, script, args, conns, a.duration, a.runs, tmo,
                                a.results, a.warmup, secret))

    base = next((r["median"]["rps"] for r in results if r["name"] == "healthz"), 0.0)
    lines = []
    lines.append(f"medcore bench — {a.patients} demo patients, 127.0.0.1, 2 wrk threads, median of {a.runs} x {a.duration} s")
    hdr = f"{'scenario':<9} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'req/CPU-s':>10} {'vs healthz':>10} {'errors':>7}"
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for r in results:
        m = r["median"]
        ratio = m["rps"] / base if base else 0.0
        lines.append(f"{r['name']:<9} {r['connections']:>5} {m['rps']:>9.0f} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f} "
                     f"{m['per_cpu']:>10.0f} {ratio:>10.3f} {m['errors']:>7d}")
    lines.append("")
    lines.append("targets (DESIGN §8):")
    for r in results:
        t = TARGETS.get(r["name"])
        if not t:
            continue
        m = r["median"]
        checks = []
        if "rps" in t:
            checks.append(f"req/s {m['rps']:.0f} {'>=' if m['rps'] >= t['rps'] else '<'} {t['rps']}")
        if "p99_ms" in t:
            checks.append(f"p99 {m['p99_ms']:.2f} ms {'<' if m['p99_ms'] < t['p99_ms'] else '>='} {t['p99_ms']} ms")
        if "per_cpu" in t:
            checks.append(f"req/CPU-s {m['per_cpu']:.0f} {'>=' if m['per_cpu'] >= t['per_cpu'] else '<'} {t['per_cpu']}")
        ok = True
        if "rps" in t and m["rps"] < t["rps"]:
            ok = False
        if "p99_ms" in t and m["p99_ms"] >= t["p99_ms"]:
            ok = False
        if "per_cpu" in t and m["per_cpu"] < t["per_cpu"]:
            ok = False
        lines.append(f"  {r['name']:<8} {'MET ' if ok else 'MISS'}  " + "; ".join(checks))
    text = "\n".join(lines)
    print("\n" + text + "\n", flush=True)
    with open(os.path.join(a.results, "summary.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(a.results, "summary.json"), "w") as f:
        json.dump({"patients": a.patients, "baseline_rps": base, "scenarios": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
