"""The live-vitals issue's "Done when", end to end with real processes only: the server, the real
`medcore simulate` binary streaming a deteriorating patient over HTTP (--deteriorate-after makes
the sepsis-like course reach its worst within seconds), a nurse subscribed to that patient over
WebSocket sees the NEWS2 alert arrive and acknowledges it, an auditor finds the raise and the
acknowledgement through GET /fhir/AuditEvent, and `medcore audit verify` passes after the server
stopped. Bounded: well under 30 s."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402
from test_alerts_live import WS  # noqa: E402

check = mt.check


def audit_entries(srv, tok, alert_id):
    """(action code, agent names) of the AuditEvents about alert_id."""
    r = srv.get("/fhir/AuditEvent?_count=200", token=tok)
    check(r.status == 200 and r.json()["resourceType"] == "Bundle", "AuditEvent search", r)
    out = []
    for e in r.json().get("entry", []):
        res = e["resource"]
        if alert_id not in json.dumps(res.get("entity", [])):
            continue
        sub = res.get("subtype") or []
        code = sub[0].get("code") if sub else res.get("action")
        who = [a.get("who", {}).get("display") or a.get("name") or "" for a in res.get("agent", [])]
        out.append((code, who, res))
    return out


def test_done_when(srv):
    t_start = time.monotonic()
    gw = srv.user_token("gw-e2e", "integration")
    nurse = srv.user_token("nurse.e2e", "nurse")
    auditor = srv.user_token("aud.e2e", "auditor")
    rec = srv.user_token("desk.e2e", "receptionist")
    r = srv.post("/api/v1/patients/register", {"firstName": "Eve", "lastName": "Sepsis", "birthDate": "1948-03-04",
                                               "gender": "female", "force": True}, token=gw)
    check(r.status == 201, "register patient", r)
    pat = r.json()["data"]["id"]
    r = srv.post("/api/v1/patients/%s/care-team" % pat, {"username": "nurse.e2e"}, token=rec)
    check(r.status in (200, 201), "nurse joins the care team", r)

    ws = WS(srv.port, "/api/v1/live/patient/%s?access_token=%s" % (pat, nurse), timeout=20)
    check(ws.status == 101, "nurse subscribes over WebSocket: %s" % ws.status)
    sim = subprocess.Popen([mt.binary(), "simulate", "--url", srv.base_url, "--user", "gw-e2e", "--password",
                            mt.PASSWORD, "--patients", "1", "--patient-ids", pat, "--deteriorate", "1",
                            "--deteriorate-after", "4", "--seconds", "8", "--rate", "4", "--batch-ms", "250",
                            "--params", "8", "--seed", "3"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        m = ws.wait_for(lambda m: m["type"] == "sample", "a sample from the simulator", timeout=10)
        check(m["patientId"] == pat, "the sample is this patient's %s" % m)
        t0 = time.monotonic()
        d = ws.wait_for(lambda m: m["type"] == "alert" and m["alert"]["ruleKey"] == "news2", "the NEWS2 alert",
                        timeout=15)
        print("   NEWS2 alert on the WebSocket %.1f s after the first sample" % (time.monotonic() - t0))
        # first the engine's decision (provisional, no id yet), then the durable record with its id
        check(d.get("provisional") is True and d["action"] == "detected", "provisional first %s" % d)
        a = ws.wait_for(lambda m: m["type"] == "alert" and not m.get("provisional") and
                        m["alert"]["ruleKey"] == "news2", "the persisted NEWS2 alert", timeout=10)
        check(a["action"] == "raised" and a["alert"]["status"] == "open" and a["alert"]["patientId"] == pat,
              "raised %s" % a)
        alert_id = a["alert"]["id"]
        r = srv.post("/api/v1/alerts/%s/acknowledge" % alert_id, {"note": "at the bedside, sepsis screen"},
                     token=nurse)
        check(r.status == 200 and r.json()["data"]["status"] == "acknowledged", "nurse acknowledges", r)
        ws.wait_for(lambda m: m["type"] == "alert" and m["alert"].get("id") == alert_id and
                    m["action"] == "acknowledged", "the acknowledgement pushed")
    finally:
        out, err = sim.communicate(timeout=30)
    check(sim.returncode == 0, "simulate exit %s: %s" % (sim.returncode, err))
    res = json.loads(out.strip().splitlines()[-1])
    check(res["failed_batches"] == 0 and res["accepted"] > 0 and res["rejected"] == 0, "simulate %s" % res)
    ws.close()

    entries = audit_entries(srv, auditor, alert_id)
    codes = [c for c, _, _ in entries]
    check("alert-raised" in codes, "raise in the audit trail: %s" % codes)
    check("alert-acknowledge" in codes, "acknowledgement in the audit trail: %s" % codes)
    ack = [e for e in entries if e[0] == "alert-acknowledge"][0]
    check("nurse.e2e" in json.dumps(ack[2]), "the acknowledgement names the nurse %s" % ack[2].get("agent"))
    r = srv.get("/fhir/AuditEvent", token=nurse)
    check(r.status == 403, "a nurse may not read the audit trail", r)

    srv.stop()
    p = srv.medcore("audit", "verify", check_rc=False)
    check(p.returncode == 0, "audit chain verifies after stop: %s %s" % (p.stdout, p.stderr))
    took = time.monotonic() - t_start
    print("   done-when scenario: %.1f s" % took)
    check(took < 30, "bounded test time (%.1f s)" % took)


if __name__ == "__main__":
    mt.main(globals(), server_args=["--alert-escalate-seconds", "0"])
