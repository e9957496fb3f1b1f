#!/usr/bin/env python3
"""One whole outpatient visit over HTTP, each step as the role that does it in real life:
availability -> booking -> check-in (receptionist) -> encounter -> consultation note -> diagnosis ->
prescription (doctor) -> dispense (pharmacist) -> lab order (doctor) -> result with a computed
critical flag (lab technician) -> the medical-history timeline and the doctor's dashboard (doctor)."""
import os
import sys
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check


def data(r, what, status=(200, 201)):
    check(r.status in status, what, r)
    return r.json()["data"]


def main():
    with mt.Server() as srv:
        admin = srv.user_token("e2e.admin", "admin")
        rec = srv.user_token("e2e.front", "receptionist")
        pharm = srv.user_token("e2e.pharm", "pharmacist")
        lab = srv.user_token("e2e.lab", "lab_tech")
        integ = srv.user_token("e2e.integ", "integration")

        # -- set-up: a clinic location, a doctor on staff with availability every day --
        r = srv.post("/fhir/Location", {"resourceType": "Location", "name": "Clinic E2E", "status": "active"},
                     token=integ)
        check(r.status == 201, "location", r)
        loc = r.json()["id"]
        srv.add_user("e2e.doc", "doctor")
        staff = data(srv.post("/api/v1/staff", {"firstName": "Eve", "lastName": "Endtoend", "username": "e2e.doc",
                                                "specialties": ["394802001"], "locations": [loc], "role": "doctor"},
                              token=admin), "staff doctor")
        prac = staff["id"]
        doc = srv.login("e2e.doc")     # after linking: the token carries the Practitioner
        tmpl = [{"weekday": d, "start": "00:00", "end": "24:00", "slotMinutes": 30} for d in range(1, 8)]
        data(srv.put("/api/v1/doctors/%s/availability/templates" % prac, {"templates": tmpl, "horizonWeeks": 1},
                     token=rec), "availability templates")
        pid = data(srv.post("/api/v1/patients/register", {"firstName": "Vic", "lastName": "Visit",
                                                          "birthDate": "1965-07-08"}, token=rec), "register")["id"]

        # -- availability -> booking -> check-in (front desk) --
        now = datetime.now(timezone.utc)
        frm = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        to = (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        slots = data(srv.get("/api/v1/doctors/%s/availability?from=%s&to=%s" % (prac, frm, to), token=rec),
                     "availability")["slots"]
        check(slots, "free slots offered")
        appt = data(srv.post("/api/v1/appointments/book", {"patient": pid, "slot": slots[0]["slot"],
                                                            "reason": "hypertension follow-up"}, token=rec), "book")
        aid = appt["id"]
        ci = data(srv.post("/api/v1/appointments/%s/check-in" % aid, token=rec), "check-in")
        check(ci["status"] == "arrived", "arrived", ci)

        # -- the consultation (doctor) --
        encs = data(srv.get("/api/v1/patients/%s/encounters" % pid, token=doc), "encounters after check-in")
        check(len(encs) == 1, "check-in opened the visit's encounter", encs)
        enc = data(srv.post("/api/v1/encounters", {"patient": pid, "appointment": aid}, token=doc), "encounter")
        eid = enc["id"]
        check(eid == encs[0]["id"], "opening it again returns the same encounter", enc)
        note = data(srv.post("/api/v1/consultations", {"patient": pid, "encounter": eid,
                                                       "subjective": "Headaches for two weeks.",
                                                       "objective": "BP 162/98.", "assessment": "Hypertension.",
                                                       "plan": "Start lisinopril; check potassium."}, token=doc),
                    "consultation note")
        check(note.get("id"), "note id", note)
        data(srv.post("/api/v1/patients/%s/conditions" % pid, {"icd10": "I10", "encounter": eid}, token=doc),
             "diagnosis I10")
        rx = data(srv.post("/api/v1/prescriptions", {"patient": pid, "encounter": eid, "items": [
            {"rxnorm": "314076", "dose": 10, "unit": "mg", "route": "PO", "frequency": "QD", "durationDays": 30,
             "quantity": 30, "refills": 2}]}, token=doc), "prescription")
        mr = rx["medications"][0]["medicationRequest"]
        check(rx["medications"][0]["maxDispensable"] == 90, "30 x (1 + 2)", rx)

        # -- pharmacy --
        work = data(srv.get("/api/v1/prescriptions/pending-dispensing", token=pharm), "work list")
        check(any(x["medicationRequest"] == mr for x in work), "on the pharmacy work list", work)
        disp = data(srv.put("/api/v1/prescriptions/%s/dispense" % rx["id"],
                            {"items": [{"medicationRequest": mr, "quantity": 30, "lot": "A1"}]}, token=pharm),
                    "dispense")
        check(disp["dispensed"][0]["remaining"] == 60, "two refills left", disp)

        # -- laboratory --
        order = data(srv.post("/api/v1/lab-orders", {"patient": pid, "encounter": eid, "tests": ["2823-3", "2160-0"],
                                                     "priority": "routine"}, token=doc), "lab order")
        data(srv.post("/api/v1/lab-orders/%s/specimen" % order["id"], {"status": "collected"}, token=lab), "collected")
        data(srv.post("/api/v1/lab-orders/%s/specimen" % order["id"], {"status": "received"}, token=lab), "received")
        res = data(srv.post("/api/v1/lab-results", {"order": order["id"], "status": "final", "results": [
            {"loinc": "2823-3", "value": 6.4, "unit": "mmol/L"}, {"loinc": "2160-0", "value": 1.0, "unit": "mg/dL"}]},
            token=lab), "final results")
        flags = {x["loinc"]: x["interpretation"] for x in res["results"]}
        check(flags == {"2823-3": "HH", "2160-0": "N"}, "computed flags %r" % flags, res)
        check("turnaroundMinutes" in res, "turnaround recorded", res)

        # -- the record afterwards (doctor) --
        hist = data(srv.get("/api/v1/patients/%s/medical-history?limit=100" % pid, token=doc), "medical history")
        types = {x["type"] for x in hist}
        for t in ("Encounter", "Composition", "Condition", "MedicationRequest", "Observation"):
            check(t in types, "timeline has %s (got %s)" % (t, sorted(types)), hist)
        dash = data(srv.get("/api/v1/dashboard/doctor", token=doc), "dashboard")
        check(any(x["patient"] == pid and x["interpretation"] == "HH" for x in dash["criticalResults"]),
              "critical potassium on the dashboard", dash)
        check(any(x["patient"] == pid for x in dash["newResults"]), "new results on the dashboard", dash)
        crit = [x for x in dash["criticalResults"] if x["patient"] == pid][0]
        data(srv.post("/api/v1/lab-results/%s/acknowledge" % crit["observation"], token=doc), "acknowledge")
        data(srv.put("/api/v1/encounters/%s/finish" % eid, {}, token=doc), "finish the encounter")
    print("ok    visit end to end")


if __name__ == "__main__":
    main()
