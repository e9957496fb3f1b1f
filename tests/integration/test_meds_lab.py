#!/usr/bin/env python3
"""Prescriptions, dispensing, lab orders/results and the doctor dashboard over HTTP: who may do what
(allowed / 403), precise 4xx on bad input with nothing changed, the dispensing budget under
concurrent dispenses, computed interpretations, critical-result events and acknowledgement."""
import os
import sys
import threading
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
S = {}   # shared state between the steps (one server for all)


def count(srv, sql, *params):
    return srv.sql(sql, *params)[0][0]


def n_type(srv, typ):
    return count(srv, "SELECT count(*) FROM resource_versions v JOIN resources r ON r.rkey = v.rkey WHERE r.type = ?", typ)


def events(srv, name):
    return count(srv, "SELECT count(*) FROM outbox WHERE name = ?", name)


def err_field(r):
    return r.json()["error"].get("details", {}).get("field")


def test_setup(srv):
    S["rec"] = srv.user_token("ml.front", "receptionist")
    # a Practitioner for the doctor (dashboard appointments are found by practitioner)
    r = srv.post("/fhir/Practitioner", {"resourceType": "Practitioner", "name": [{"family": "Meds", "given": ["Dana"]}]},
                 token=S["rec"])
    check(r.status == 201, "create Practitioner", r)
    S["prac"] = r.json()["id"]
    S["doc"] = srv.user_token("ml.doc", "doctor", practitioner=S["prac"])
    S["doc2"] = srv.user_token("ml.doc2", "doctor")
    S["nurse"] = srv.user_token("ml.nurse", "nurse")
    S["pharm"] = srv.user_token("ml.pharm", "pharmacist")
    S["lab"] = srv.user_token("ml.lab", "lab_tech")
    S["billing"] = srv.user_token("ml.billing", "billing")
    r = srv.post("/api/v1/patients/register", {"firstName": "Rita", "lastName": "Meds", "birthDate": "1970-03-04"},
                 token=S["rec"])
    check(r.status == 201, "register", r)
    S["pid"] = r.json()["data"]["id"]
    for u in ("ml.doc", "ml.nurse"):
        r = srv.post("/api/v1/patients/%s/care-team" % S["pid"], {"username": u}, token=S["rec"])
        check(r.status == 201, "care team " + u, r)
    S["pat"] = srv.user_token("ml.patient", "patient", patient=S["pid"])


def rx_body(pid, **item):
    it = {"rxnorm": "29046", "name": "lisinopril 10 mg", "dose": 10, "unit": "mg", "route": "PO",
          "frequency": "QD", "durationDays": 30, "quantity": 30, "refills": 1}
    it.update(item)
    return {"patient": pid, "items": [it]}


def test_prescribe(srv):
    body = rx_body(S["pid"])
    body["items"].append({"name": "compounded cream", "dose": 1.5, "unit": "g", "route": "TOP", "frequency": "BID",
                          "durationDays": 7, "quantity": 30.5})
    before = events(srv, "prescription.issued")
    r = srv.post("/api/v1/prescriptions", body, token=S["doc"])
    check(r.status == 201, "doctor in care prescribes", r)
    d = r.json()["data"]
    S["rx"] = d["id"]
    meds = d["medications"]
    check(len(meds) == 2 and meds[0]["maxDispensable"] == 60, "two requests; budget 30 x (1+1)", r)
    S["mr"] = meds[0]["medicationRequest"]
    check(len(d["warnings"]) == 1 and d["warnings"][0]["field"] == "items[1].rxnorm", "name-only warning", r)
    check(events(srv, "prescription.issued") == before + 1, "prescription.issued emitted")
    payload = srv.sql("SELECT payload FROM outbox WHERE name = 'prescription.issued' ORDER BY seq DESC LIMIT 1")[0][0]
    check("Rita" not in payload and "lisinopril" not in payload and "29046" in payload, "event: codes, no PHI text")
    r = srv.get("/fhir/MedicationRequest/" + S["mr"], token=S["doc"])
    check(r.status == 200, "FHIR MedicationRequest", r)
    mr = r.json()
    check(mr["groupIdentifier"]["value"] == S["rx"] and mr["intent"] == "order" and mr["status"] == "active", "shape", r)
    check(mr["dispenseRequest"]["numberOfRepeatsAllowed"] == 1, "refills", r)
    check(mr["medicationCodeableConcept"]["coding"][0]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm", "rxnorm", r)
    r = srv.get("/api/v1/prescriptions/%s/medications" % S["rx"], token=S["doc"])
    check(r.status == 200 and len(r.json()["data"]["medications"]) == 2, "list medications", r)
    r = srv.get("/api/v1/prescriptions/%s/medications" % S["rx"], token=S["doc2"])
    check(r.status == 403, "doctor not in care cannot list", r)


def test_prescribe_bad_input(srv):
    before = n_type(srv, "MedicationRequest")
    cases = [
        (rx_body(S["pid"], dose=-5), 400, "items[0].dose"),
        (rx_body(S["pid"], dose=0), 400, "items[0].dose"),
        (rx_body(S["pid"], rxnorm="99999999"), 400, "items[0].rxnorm"),
        (rx_body(S["pid"], route="ORAL"), 400, "items[0].route"),
        (rx_body(S["pid"], frequency="Q5H"), 400, "items[0].frequency"),
        (rx_body(S["pid"], durationDays=0), 400, "items[0].durationDays"),
        (rx_body(S["pid"], quantity=0), 400, "items[0].quantity"),
        (rx_body(S["pid"], refills=-1), 400, "items[0].refills"),
        (rx_body(S["pid"], interpretation="x"), 400, "items[0].interpretation"),
        ({"patient": S["pid"], "items": []}, 400, "items"),
        (rx_body("no-such-patient"), 422, "patient"),
        (dict(rx_body(S["pid"]), encounter="no-such-encounter"), 422, "encounter"),
    ]
    for body, status, field in cases:
        r = srv.post("/api/v1/prescriptions", body, token=S["doc"])
        check(r.status == status and err_field(r) == field, "bad prescription -> %d %s" % (status, field), r)
    check(n_type(srv, "MedicationRequest") == before, "nothing written")


def test_prescription_roles(srv):
    body = rx_body(S["pid"], quantity=1, refills=0)
    for who, status in (("doc", 201), ("doc2", 403), ("nurse", 403), ("pharm", 403), ("lab", 403), ("rec", 403),
                        ("pat", 403), ("billing", 403)):
        r = srv.post("/api/v1/prescriptions", body, token=S[who])
        check(r.status == status, "POST /prescriptions as %s -> %d" % (who, status), r)
    for who, status in (("pharm", 200), ("doc", 403), ("nurse", 403), ("lab", 403), ("pat", 403)):
        r = srv.get("/api/v1/prescriptions/pending-dispensing", token=S[who])
        check(r.status == status, "pending-dispensing as %s -> %d" % (who, status), r)
    for who in ("doc", "nurse", "lab", "pat", "rec"):
        r = srv.put("/api/v1/prescriptions/%s/dispense" % S["rx"],
                    {"items": [{"medicationRequest": S["mr"], "quantity": 1}]}, token=S[who])
        check(r.status == 403, "dispense as %s -> 403" % who, r)
    r = srv.get("/api/v1/prescriptions/%s/medications" % S["rx"], token=S["pharm"])
    check(r.status == 200, "pharmacist reads the prescription", r)


def dispense(srv, rx, mr, qty, **kw):
    item = {"medicationRequest": mr, "quantity": qty}
    item.update(kw)
    return srv.put("/api/v1/prescriptions/%s/dispense" % rx, {"items": [item]}, token=S["pharm"])


def test_dispense_budget(srv):
    r = srv.get("/api/v1/prescriptions/pending-dispensing", token=S["pharm"])
    check(any(x["medicationRequest"] == S["mr"] for x in r.json()["data"]), "on the work list", r)
    before = events(srv, "prescription.dispensed")
    r = dispense(srv, S["rx"], S["mr"], 20, lot="LOT-1")
    check(r.status == 200 and r.json()["data"]["dispensed"][0]["remaining"] == 40, "partial dispense", r)
    n_disp = n_type(srv, "MedicationDispense")
    r = dispense(srv, S["rx"], S["mr"], 41)
    check(r.status == 409 and r.json()["error"]["details"]["remaining"] == 40, "above the budget -> 409", r)
    r = dispense(srv, S["rx"], S["mr"], -1)
    check(r.status == 400 and err_field(r) == "items[0].quantity", "negative quantity -> 400", r)
    r = dispense(srv, S["rx"], "not-in-this-prescription", 1)
    check(r.status == 422, "unknown request -> 422", r)
    r = srv.put("/api/v1/prescriptions/no-such/dispense", {"items": [{"medicationRequest": S["mr"], "quantity": 1}]},
                token=S["pharm"])
    check(r.status == 404, "unknown prescription -> 404", r)
    check(n_type(srv, "MedicationDispense") == n_disp, "nothing dispensed by the failures")
    r = dispense(srv, S["rx"], S["mr"], 40)
    check(r.status == 200 and r.json()["data"]["dispensed"][0]["remaining"] == 0, "the rest (a refill)", r)
    r = dispense(srv, S["rx"], S["mr"], 1)
    check(r.status == 409, "nothing left -> 409", r)
    r = srv.get("/fhir/MedicationRequest/" + S["mr"], token=S["doc"])
    check(r.json()["status"] == "completed", "fully dispensed request is completed", r)
    check(events(srv, "prescription.dispensed") == before + 2, "prescription.dispensed per dispense")
    r = srv.get("/api/v1/prescriptions/pending-dispensing", token=S["pharm"])
    check(not any(x["medicationRequest"] == S["mr"] for x in r.json()["data"]), "off the work list", r)


def test_concurrent_dispenses_never_overshoot(srv):
    r = srv.post("/api/v1/prescriptions", rx_body(S["pid"], quantity=10, refills=0), token=S["doc"])
    check(r.status == 201, "prescribe 10", r)
    rx, mr = r.json()["data"]["id"], r.json()["data"]["medications"][0]["medicationRequest"]
    codes = []
    lock = threading.Lock()

    def worker():
        for _ in range(3):
            resp = dispense(srv, rx, mr, 1)
            with lock:
                codes.append(resp.status)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(codes.count(200) == 10 and codes.count(409) == 14, "exactly 10 of 24 concurrent dispenses: %r" % codes)
    check(count(srv, "SELECT dispensed_milli FROM med_supply WHERE request_id = ?", mr) == 10000, "ledger = 10")
    n = count(srv, "SELECT count(*) FROM resources r JOIN idx_ref x ON x.rkey = r.rkey WHERE r.type = "
              "'MedicationDispense' AND x.ref_id = ?", mr)
    check(n == 10, "10 MedicationDispense resources (got %d)" % n)


def test_cancel_and_stop(srv):
    r = srv.post("/api/v1/prescriptions", rx_body(S["pid"]), token=S["doc"])
    rx, mr = r.json()["data"]["id"], r.json()["data"]["medications"][0]["medicationRequest"]
    r = srv.post("/api/v1/prescriptions/%s/cancel" % rx, {}, token=S["doc"])
    check(r.status == 400 and err_field(r) == "reason", "cancel needs a reason", r)
    r = srv.post("/api/v1/prescriptions/%s/cancel" % rx, {"reason": "wrong drug"}, token=S["doc2"])
    check(r.status == 403, "not in care -> 403", r)
    r = srv.post("/api/v1/prescriptions/%s/cancel" % rx, {"reason": "wrong drug"}, token=S["doc"])
    check(r.status == 200 and r.json()["data"]["status"] == "cancelled", "cancel", r)
    r = dispense(srv, rx, mr, 1)
    check(r.status == 409, "dispense a cancelled request -> 409", r)
    r = srv.post("/api/v1/prescriptions/%s/stop" % rx, {"reason": "again"}, token=S["doc"])
    check(r.status == 409, "nothing active to stop -> 409", r)
    r = srv.post("/api/v1/prescriptions", rx_body(S["pid"]), token=S["doc"])
    rx, mr = r.json()["data"]["id"], r.json()["data"]["medications"][0]["medicationRequest"]
    check(dispense(srv, rx, mr, 5).status == 200, "dispense some")
    r = srv.post("/api/v1/prescriptions/%s/cancel" % rx, {"reason": "changed mind"}, token=S["doc"])
    check(r.status == 409, "cancel after a dispense -> 409", r)
    r = srv.post("/api/v1/prescriptions/%s/stop" % rx, {"reason": "side effects"}, token=S["doc"])
    check(r.status == 200, "stop", r)
    check(dispense(srv, rx, mr, 1).status == 409, "no dispensing after stop")
    r = srv.get("/fhir/MedicationRequest/" + mr, token=S["doc"])
    check(r.json()["status"] == "stopped" and r.json()["meta"]["versionId"] != "1", "stopped as a new version", r)


def test_lab_order_and_roles(srv):
    body = {"patient": S["pid"], "tests": ["2823-3", "2951-2"], "priority": "stat"}
    for who, status in (("lab", 403), ("pharm", 403), ("doc2", 403), ("rec", 403), ("pat", 403), ("billing", 403)):
        r = srv.post("/api/v1/lab-orders", body, token=S[who])
        check(r.status == status, "order as %s -> %d" % (who, status), r)
    before = n_type(srv, "ServiceRequest")
    for bad, status, field in (({"patient": S["pid"], "tests": ["0000-0"]}, 400, "tests[0]"),
                               ({"patient": S["pid"], "tests": []}, 400, "tests"),
                               ({"patient": S["pid"], "tests": ["2823-3"], "priority": "asap"}, 400, "priority"),
                               ({"patient": "nobody", "tests": ["2823-3"]}, 422, "patient")):
        r = srv.post("/api/v1/lab-orders", bad, token=S["doc"])
        check(r.status == status and err_field(r) == field, "bad order -> %d %s" % (status, field), r)
    check(n_type(srv, "ServiceRequest") == before, "nothing ordered")
    r = srv.post("/api/v1/lab-orders", body, token=S["doc"])
    check(r.status == 201 and len(r.json()["data"]["tests"]) == 2, "doctor orders", r)
    S["order"] = r.json()["data"]["id"]
    sr = srv.get("/fhir/ServiceRequest/" + r.json()["data"]["tests"][0]["serviceRequest"], token=S["doc"]).json()
    check(sr["requisition"]["value"] == S["order"] and sr["priority"] == "stat", "ServiceRequest shape", sr)
    r = srv.post("/api/v1/lab-orders", {"patient": S["pid"], "tests": ["718-7"]}, token=S["nurse"])
    check(r.status == 201, "nurse in care orders", r)


def test_specimen(srv):
    o = S["order"]
    r = srv.post("/api/v1/lab-orders/%s/specimen" % o, {"status": "received"}, token=S["lab"])
    check(r.status == 409, "received before collected -> 409", r)
    r = srv.post("/api/v1/lab-orders/%s/specimen" % o, {"status": "collected"}, token=S["lab"])
    check(r.status == 200, "collected", r)
    S["specimen"] = r.json()["data"]["specimen"]
    r = srv.post("/api/v1/lab-orders/%s/specimen" % o, {"status": "received"}, token=S["lab"])
    check(r.status == 200, "received", r)
    r = srv.post("/api/v1/lab-orders/%s/specimen" % o, {"status": "lost"}, token=S["lab"])
    check(r.status == 400, "bad specimen status", r)
    r = srv.post("/api/v1/lab-orders/%s/specimen" % o, {"status": "collected"}, token=S["pharm"])
    check(r.status == 403, "pharmacist -> 403", r)
    sp = srv.get("/fhir/Specimen/" + S["specimen"], token=S["doc"]).json()
    check("receivedTime" in sp and "collection" in sp and sp["meta"]["versionId"] == "2", "Specimen versions", sp)


def results(order, status, *res):
    return {"order": order, "status": status, "results": [{"loinc": c, "value": v, "unit": u} for c, v, u in res]}


def test_results(srv):
    o = S["order"]
    for who in ("doc", "nurse", "pharm", "pat"):
        r = srv.post("/api/v1/lab-results", results(o, "preliminary", ("2823-3", 4.0, "mmol/L")), token=S[who])
        check(r.status == 403, "results as %s -> 403" % who, r)
    nobs = n_type(srv, "Observation")
    bad = [
        (results(o, "preliminary", ("9999-9", 1, "mmol/L")), 400, "results[0].loinc"),
        (results(o, "preliminary", ("2823-3", 4.0, "mg/dL")), 400, "results[0].unit"),
        (results(o, "preliminary", ("2823-3", "high", "mmol/L")), 400, "results[0].value"),
        (results(o, "done", ("2823-3", 4.0, "mmol/L")), 400, "status"),
        (results(o, "amended", ("2823-3", 4.0, "mmol/L")), 409, None),
        (results(o, "preliminary", ("718-7", 13, "g/dL")), 422, "results[0].loinc"),
        (results("no-such-order", "final", ("2823-3", 4.0, "mmol/L")), 422, "order"),
    ]
    bad_interp = results(o, "preliminary", ("2823-3", 4.0, "mmol/L"))
    bad_interp["results"][0]["interpretation"] = "N"
    bad.append((bad_interp, 400, "results[0].interpretation"))
    for body, status, field in bad:
        r = srv.post("/api/v1/lab-results", body, token=S["lab"])
        check(r.status == status and (field is None or err_field(r) == field),
              "bad results -> %d %s" % (status, field), r)
    check(n_type(srv, "Observation") == nobs, "no Observation written by bad input")

    r = srv.post("/api/v1/lab-results", results(o, "preliminary", ("2823-3", 3.2, "mmol/L")), token=S["lab"])
    check(r.status == 201, "preliminary", r)
    d = r.json()["data"]
    check(d["results"][0]["interpretation"] == "L" and not d["results"][0]["critical"], "3.2 -> L", r)
    check("turnaroundMinutes" not in d, "no turnaround before final", r)
    S["report"] = d["report"]
    S["k_obs"] = d["results"][0]["observation"]
    crit_before, final_before = events(srv, "lab.result.critical"), events(srv, "lab.result.final")
    r = srv.post("/api/v1/lab-results", results(o, "final", ("2823-3", 6.5, "mmol/L"), ("2951-2", 140, "mmol/L")),
                 token=S["lab"])
    check(r.status == 200, "final", r)
    d = r.json()["data"]
    flags = {x["loinc"]: x["interpretation"] for x in d["results"]}
    check(flags == {"2823-3": "HH", "2951-2": "N"}, "computed flags %r" % flags, r)
    check(d["results"][0]["observation"] == S["k_obs"] and d["report"] == S["report"], "same resources, new versions", r)
    check(isinstance(d["turnaroundMinutes"], (int, float)) and d["turnaroundMinutes"] >= 0, "turnaround", r)
    check(events(srv, "lab.result.critical") == crit_before + 1, "lab.result.critical emitted")
    check(events(srv, "lab.result.final") == final_before + 1, "lab.result.final emitted")
    obs = srv.get("/fhir/Observation/" + S["k_obs"], token=S["doc"]).json()
    check(obs["status"] == "final" and obs["meta"]["versionId"] == "2", "Observation v2 final", obs)
    check(obs["interpretation"][0]["coding"][0]["code"] == "HH", "FHIR interpretation HH", obs)
    check(obs["referenceRange"][0]["low"]["value"] == 3.5 and obs["referenceRange"][0]["high"]["value"] == 5.1,
          "reference range from the LOINC subset", obs)
    dr = srv.get("/fhir/DiagnosticReport/" + S["report"], token=S["doc"]).json()
    check(dr["status"] == "final" and len(dr["result"]) == 2, "report groups both", dr)
    check(any(e["url"] == "urn:medcore:lab-turnaround" for e in dr.get("extension", [])), "turnaround extension", dr)
    r = srv.post("/api/v1/lab-results", results(o, "preliminary", ("2823-3", 4.0, "mmol/L")), token=S["lab"])
    check(r.status == 409, "preliminary after final -> 409", r)
    r = srv.post("/api/v1/lab-results", results(o, "final", ("2823-3", 4.0, "mmol/L")), token=S["lab"])
    check(r.status == 409, "final twice -> 409 (amend instead)", r)
    r = srv.post("/api/v1/lab-results", results(o, "amended", ("2951-2", 141, "mmol/L")), token=S["lab"])
    check(r.status == 200 and r.json()["data"]["status"] == "amended", "amended", r)
    check(srv.get("/fhir/DiagnosticReport/" + S["report"], token=S["doc"]).json()["meta"]["versionId"] == "3",
          "report v3")


def test_cancelled_order(srv):
    r = srv.post("/api/v1/lab-orders", {"patient": S["pid"], "tests": ["2345-7"]}, token=S["doc"])
    o = r.json()["data"]["id"]
    r = srv.put("/api/v1/lab-orders/%s/status" % o, {"status": "revoked"}, token=S["doc"])
    check(r.status == 400 and err_field(r) == "reason", "cancel needs a reason", r)
    r = srv.put("/api/v1/lab-orders/%s/status" % o, {"status": "revoked", "reason": "duplicate order"}, token=S["doc"])
    check(r.status == 200, "cancel the order", r)
    nobs = n_type(srv, "Observation")
    r = srv.post("/api/v1/lab-results", results(o, "final", ("2345-7", 90, "mg/dL")), token=S["lab"])
    check(r.status == 409, "result for a cancelled order -> 409", r)
    check(n_type(srv, "Observation") == nobs, "nothing written")
    r = srv.put("/api/v1/lab-orders/%s/status" % o, {"status": "active"}, token=S["doc"])
    check(r.status == 409, "a cancelled order stays cancelled", r)


def test_patient_results(srv):
    for who, status in (("doc", 200), ("nurse", 200), ("lab", 200), ("doc2", 403), ("pharm", 403), ("pat", 403)):
        r = srv.get("/api/v1/lab-results/patient/" + S["pid"], token=S[who])
        check(r.status == status, "patient results as %s -> %d" % (who, status), r)
    r = srv.get("/api/v1/lab-results/patient/" + S["pid"], token=S["doc"])
    rows = [x for x in r.json()["data"] if x["order"] == S["order"]]
    check(rows and rows[0]["reportStatus"] == "amended" and len(rows[0]["observations"]) == 2, "history", r)


def test_dashboard(srv):
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    appt = {"resourceType": "Appointment", "status": "booked", "start": today + "T23:00:00Z",
            "end": today + "T23:20:00Z",
            "participant": [{"actor": {"reference": "Practitioner/" + S["prac"]}, "status": "accepted"},
                            {"actor": {"reference": "Patient/" + S["pid"]}, "status": "accepted"}]}
    r = srv.post("/fhir/Appointment", appt, token=S["rec"])
    check(r.status == 201, "an appointment today", r)
    appt_id = r.json()["id"]
    note = {"resourceType": "Composition", "status": "preliminary", "date": today,
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]}, "title": "Progress note",
            "subject": {"reference": "Patient/" + S["pid"]}, "author": [{"display": "Nurse N"}]}
    r = srv.post("/fhir/Composition", note, token=S["nurse"])
    check(r.status == 201, "a preliminary note by the nurse", r)
    note_id = r.json()["id"]
    for who in ("nurse", "pharm", "lab", "pat"):
        check(srv.get("/api/v1/dashboard/doctor", token=S[who]).status == 403, "dashboard as %s -> 403" % who)
    r = srv.get("/api/v1/dashboard/doctor", token=S["doc"])
    check(r.status == 200, "doctor dashboard", r)
    d = r.json()["data"]
    check([a["id"] for a in d["appointments"]] == [appt_id], "today's appointment", r)
    check(any(x["patient"] == S["pid"] for x in d["newResults"]), "new results", r)
    crit = [x for x in d["criticalResults"] if x["observation"] == S["k_obs"]]
    check(crit and crit[0]["interpretation"] == "HH", "unacknowledged critical", r)
    check(any(c["id"] == note_id for c in d["pendingCosign"]), "note to co-sign", r)
    d2 = srv.get("/api/v1/dashboard/doctor", token=S["doc2"]).json()["data"]
    check(not d2["criticalResults"] and not d2["newResults"] and not d2["appointments"], "nothing for doctor 2", d2)
    r = srv.post("/api/v1/lab-results/%s/acknowledge" % S["k_obs"], token=S["doc2"])
    check(r.status == 403, "ack not in care -> 403", r)
    r = srv.post("/api/v1/lab-results/%s/acknowledge" % S["k_obs"], token=S["lab"])
    check(r.status == 403, "lab_tech cannot acknowledge", r)
    r = srv.post("/api/v1/lab-results/not-critical/acknowledge", token=S["doc"])
    check(r.status == 404, "unknown -> 404", r)
    r = srv.post("/api/v1/lab-results/%s/acknowledge" % S["k_obs"], token=S["doc"])
    check(r.status == 200 and not r.json()["data"]["alreadyAcknowledged"], "acknowledge", r)
    d = srv.get("/api/v1/dashboard/doctor", token=S["doc"]).json()["data"]
    check(not any(x["observation"] == S["k_obs"] for x in d["criticalResults"]), "acknowledged is gone", d)
    check(not d["newResults"] and d["previousView"], "nothing new since the last view", d)
    r = srv.get("/api/v1/dashboard/doctor?date=2020-13-01", token=S["doc"])
    check(r.status == 400, "bad date -> 400", r)


if __name__ == "__main__":
    mt.main(globals())
