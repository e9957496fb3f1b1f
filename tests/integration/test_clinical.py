"""The clinical module over HTTP (issue: Clinical workflows): a visit — encounter -> SOAP note -> sign ->
amend -> diagnosis -> allergy -> care plan -> medical-history timeline — plus bad input (precise 4xx, nothing
changed) and a table of every role against every clinical endpoint (allowed / 403).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
S = {}


def api(r):
    return r.json()["data"]


def count(srv, type_=None):
    if type_:
        return srv.sql("SELECT count(*) FROM resource_versions v JOIN resources r ON r.rkey = v.rkey "
                       "WHERE r.type = ?", type_)[0][0]
    return srv.sql("SELECT count(*) FROM resource_versions")[0][0]


def test_setup(srv):
    roles = ["receptionist", "doctor", "nurse", "lab_tech", "pharmacist", "billing", "admin", "analyst",
             "auditor", "integration"]
    integ = srv.user_token("feed", "integration")
    S["tok"] = {"integration": integ}
    # two practitioners
    for name in ("house", "wilson"):
        r = srv.post("/fhir/Practitioner", {"resourceType": "Practitioner", "name": [{"family": name}]},
                     token=integ)
        check(r.status == 201, "create Practitioner", r)
        S["pr_" + name] = r.json()["id"]
    S["tok"]["doctor"] = srv.user_token("dr.house", "doctor", practitioner=S["pr_house"])
    S["tok"]["doctor2"] = srv.user_token("dr.wilson", "doctor", practitioner=S["pr_wilson"])
    for role in roles:
        if role not in S["tok"]:
            S["tok"][role] = srv.user_token("u." + role, role)
    rec = S["tok"]["receptionist"]
    r = srv.post("/api/v1/patients/register", {"firstName": "Ann", "lastName": "Visit", "birthDate": "1970-03-04",
                                               "gender": "female"}, token=rec)
    check(r.status == 201, "register", r)
    S["pid"] = api(r)["id"]
    r = srv.post("/api/v1/patients/register", {"firstName": "Bob", "lastName": "Other", "birthDate": "1960-01-01"},
                 token=rec)
    S["pid2"] = api(r)["id"]
    srv.add_user("ann.visit", "patient", patient=S["pid"])
    S["tok"]["patient"] = srv.login("ann.visit")
    srv.add_user("bob.other", "patient", patient=S["pid2"])
    S["tok"]["patient2"] = srv.login("bob.other")


def test_icd10_search(srv):
    doc = S["tok"]["doctor"]
    r = srv.get("/api/v1/icd10?q=E11", token=doc)
    check(r.status == 200, "icd10 search", r)
    codes = [x["code"] for x in api(r)]
    check(codes and all(c.startswith("E11") for c in codes), "code prefix", r)
    r = srv.get("/api/v1/icd10?q=e11.9", token=doc)
    check(api(r)[0]["code"] == "E11.9", "exact code first", r)
    r = srv.get("/api/v1/icd10?q=diab%20typ%202&limit=5", token=doc)
    titles = [x["title"] for x in api(r)]
    check(titles and all("diabetes" in t.lower() and "type 2" in t.lower() for t in titles), "title words", r)
    r = srv.get("/api/v1/icd10?q=hypertension", token=doc)
    check(api(r)[0]["code"] in ("I10", "I16.9", "I27.20"), "hypertension found", r)
    check(any(x["code"] == "I10" for x in api(r)), "I10 listed", r)
    check(srv.get("/api/v1/icd10", token=doc).status == 400, "q required")
    check(srv.get("/api/v1/icd10?q=x&limit=0", token=doc).status == 400, "bad limit")
    check(srv.get("/api/v1/icd10?q=E11").status == 401, "needs a login")


def test_encounter_needs_care(srv):
    doc, rec, pid = S["tok"]["doctor"], S["tok"]["receptionist"], S["pid"]
    before = count(srv)
    r = srv.post("/api/v1/encounters", {"patient": pid, "class": "AMB", "reason": "cough"}, token=doc)
    check(r.status == 403, "doctor not in care cannot open an encounter", r)
    r = srv.post("/api/v1/encounters", {"patient": "nope-123", "reason": "x"}, token=doc)
    check(r.status == 404, "unknown patient", r)
    r = srv.post("/api/v1/encounters", {"patient": pid, "class": "party"}, token=doc)
    check(r.status == 400 and r.json()["error"]["details"]["field"] == "class", "bad class", r)
    r = srv.post("/api/v1/encounters", {"patient": pid, "extra": 1}, token=doc)
    check(r.status == 400, "unknown field", r)
    r = srv.post("/api/v1/encounters", {"patient": pid}, token=rec)
    check(r.status == 403, "receptionist may not open encounters", r)
    check(count(srv) == before, "nothing written")


def test_encounter_via_appointment(srv):
    """dr.wilson has no care relation, but the appointment names him: he may open it and joins the team."""
    rec, doc2, pid = S["tok"]["receptionist"], S["tok"]["doctor2"], S["pid"]
    appt = {"resourceType": "Appointment", "status": "booked", "start": "2024-01-01T09:00:00Z",
            "end": "2024-01-01T09:15:00Z",
            "participant": [{"actor": {"reference": "Patient/" + pid}, "status": "accepted"},
                            {"actor": {"reference": "Practitioner/" + S["pr_wilson"]}, "status": "accepted"}]}
    r = srv.post("/fhir/Appointment", appt, token=rec)
    check(r.status == 201, "appointment", r)
    aid = r.json()["id"]
    r = srv.post("/api/v1/encounters", {"patient": S["pid2"], "appointment": aid}, token=doc2)
    check(r.status in (400, 403), "appointment of another patient", r)
    r = srv.post("/api/v1/encounters", {"patient": pid, "appointment": aid, "reason": "follow-up"}, token=doc2)
    check(r.status == 201, "open via appointment", r)
    enc = api(r)
    check(enc["status"] == "in-progress" and enc["appointment"][0]["reference"] == "Appointment/" + aid, "enc", r)
    check(enc["participant"][0]["individual"]["reference"] == "Practitioner/" + S["pr_wilson"], "participant", r)
    r = srv.post("/api/v1/encounters", {"patient": pid, "appointment": aid}, token=doc2)
    check(r.status == 200 and api(r)["id"] == enc["id"], "second check-in returns the open encounter", r)
    r = srv.get("/api/v1/patients/%s/care-team" % pid, token=rec)
    check(any(m["username"] == "dr.wilson" for m in api(r)), "dr.wilson joined the care team", r)
    r = srv.put("/api/v1/encounters/%s/finish" % enc["id"], {}, token=doc2)
    check(r.status == 200 and api(r)["status"] == "finished", "finish", r)


def test_visit(srv):
    doc, rec, nurse, pid = S["tok"]["doctor"], S["tok"]["receptionist"], S["tok"]["nurse"], S["pid"]
    for u in ("dr.house", "u.nurse", "u.lab_tech", "u.pharmacist"):
        r = srv.post("/api/v1/patients/%s/care-team" % pid, {"username": u}, token=rec)
        check(r.status == 201, "care team " + u, r)
    r = srv.post("/api/v1/encounters", {"patient": pid, "class": "ambulatory", "reason": "Persistent cough"},
                 token=doc)
    check(r.status == 201, "open encounter", r)
    enc = api(r)
    S["enc"] = enc["id"]
    check(enc["class"]["code"] == "AMB" and enc["reasonCode"][0]["text"] == "Persistent cough", "encounter", r)

    # -- note --
    note = {"patient": pid, "encounter": S["enc"], "subjective": "Cough for 2 weeks <no fever> & tired",
            "objective": "T 37.1, lungs: crackles R base", "assessment": "Community-acquired pneumonia",
            "plan": "Amoxicillin 1 g tid x 7 d\nreview in 1 week"}
    before = count(srv, "Composition")
    r = srv.post("/api/v1/consultations", dict(note, encounter="no-such"), token=doc)
    check(r.status == 400, "unknown encounter", r)
    r = srv.post("/api/v1/consultations", {"patient": pid, "encounter": S["enc"]}, token=doc)
    check(r.status == 400, "empty note", r)
    r = srv.post("/api/v1/consultations", dict(note, subjective=5), token=doc)
    check(r.status == 400 and r.json()["error"]["details"]["field"] == "subjective", "bad section type", r)
    check(count(srv, "Composition") == before, "nothing written")
    r = srv.post("/api/v1/consultations", note, token=doc)
    check(r.status == 201, "write note", r)
    n = api(r)
    S["note"] = n["id"]
    check(n["status"] == "preliminary" and n["subjective"] == note["subjective"] and n["plan"] == note["plan"],
          "SOAP round trip", r)
    check(n["author"]["practitioner"] == S["pr_house"], "author is the caller's Practitioner", r)
    r = srv.get("/fhir/Composition/" + S["note"], token=S["tok"]["integration"])
    comp = r.json()
    check([s["title"] for s in comp["section"]] == ["Subjective", "Objective", "Assessment", "Plan"], "4 sections", r)
    check(comp["author"][0]["reference"] == "Practitioner/" + S["pr_house"], "author ref", r)

    # -- sign --
    r = srv.post("/api/v1/consultations/%s/sign" % S["note"], token=nurse)
    check(r.status == 403, "only the author signs", r)
    r = srv.post("/api/v1/consultations/%s/sign" % S["note"], token=doc)
    check(r.status == 200 and api(r)["status"] == "final" and api(r).get("signedAt"), "signed", r)
    r = srv.get("/fhir/Composition/" + S["note"], token=S["tok"]["integration"])
    check(r.json()["attester"][0]["mode"] == "legal", "attester", r)
    r = srv.post("/api/v1/consultations/%s/sign" % S["note"], token=doc)
    check(r.status == 409, "already signed", r)

    # -- amend --
    v_before = count(srv, "Composition")
    r = srv.put("/api/v1/consultations/" + S["note"], {"plan": "Doxycycline instead"}, token=doc)
    check(r.status == 400 and r.json()["error"]["details"]["field"] == "reason", "amend needs a reason", r)
    r = srv.put("/api/v1/consultations/" + S["note"], {"plan": "Doxycycline", "reason": "penicillin allergy"},
                token=nurse)
    check(r.status == 403, "only the author amends", r)
    r = srv.put("/api/v1/consultations/" + S["note"], {"plan": note["plan"], "reason": "no change at all"},
                token=doc)
    check(r.status == 400, "amend with identical text", r)
    r = srv.put("/api/v1/consultations/" + S["note"], {"plan": "Doxycycline", "reason": "x", "version": 2},
                token=doc)
    check(r.status == 400, "too short reason", r)
    r = srv.put("/api/v1/consultations/" + S["note"], {"plan": "Doxycycline", "reason": "penicillin allergy",
                                                       "version": 1}, token=doc)
    check(r.status == 412, "stale version", r)
    check(count(srv, "Composition") == v_before, "nothing written by refused amendments")
    r = srv.put("/api/v1/consultations/" + S["note"], {"plan": "Doxycycline 100 mg bid x 7 d",
                                                       "reason": "penicillin allergy found"}, token=doc)
    check(r.status == 200, "amend", r)
    a = api(r)
    check(a["status"] == "amended" and a["version"] == 3 and a["amendmentReason"] == "penicillin allergy found",
          "amended", r)
    check(a["subjective"] == note["subjective"], "other sections kept", r)
    r = srv.get("/api/v1/consultations/%s/_history" % S["note"], token=doc)
    check(r.status == 200, "history", r)
    h = api(r)
    check([x["status"] for x in h] == ["amended", "final", "preliminary"], "all versions kept", r)
    check(h[2]["plan"] == note["plan"], "the original text is still readable", r)
    r = srv.get("/fhir/Composition/%s/_history/1" % S["note"], token=S["tok"]["integration"])
    check(r.status == 200 and r.json()["status"] == "preliminary", "vread v1", r)
    r = srv.get("/api/v1/consultations/patient/" + pid, token=nurse)
    check(r.status == 200 and [x["id"] for x in api(r)] == [S["note"]], "notes of the patient", r)

    # -- diagnosis --
    before = count(srv)
    for bad, why in (("E11-9", "shape"), ("U07.1", "chapter U"), ("I1", "too short"), ("E11.12345", "too long")):
        r = srv.post("/api/v1/patients/%s/conditions" % pid, {"icd10": bad}, token=doc)
        check(r.status == 400 and r.json()["error"]["details"]["field"] == "icd10", "bad icd10 " + why, r)
    r = srv.post("/api/v1/patients/%s/conditions" % pid, {"icd10": "E11.99"}, token=doc)
    check(r.status == 400 and r.json()["error"]["details"]["suggestions"], "unknown code: suggestions", r)
    r = srv.post("/api/v1/patients/%s/conditions" % pid, {"icd10": "J18.9", "onset": "2999-01-01"}, token=doc)
    check(r.status == 400 and r.json()["error"]["details"]["field"] == "onset", "onset in the future", r)
    r = srv.post("/api/v1/patients/%s/conditions" % pid, {"icd10": "J18.9", "clinicalStatus": "bad"}, token=doc)
    check(r.status == 400, "bad clinicalStatus", r)
    r = srv.post("/api/v1/patients/%s/conditions" % pid, {"icd10": "J18.9", "onset": "2020-02-01",
                                                          "abatement": "2019-01-01", "clinicalStatus": "resolved"},
                 token=doc)
    check(r.status == 400, "abatement before onset", r)
    r = srv.post("/api/v1/patients/nope-1/conditions", {"icd10": "J18.9"}, token=doc)
    check(r.status == 404, "unknown patient", r)
    r = srv.post("/api/v1/patients/%s/conditions" % S["pid2"], {"icd10": "J18.9"}, token=doc)
    check(r.status == 403, "patient not in care", r)
    check(count(srv) == before, "nothing written by refused diagnoses")
    r = srv.post("/api/v1/patients/%s/conditions" % pid, {"icd10": "j189", "encounter": S["enc"]}, token=doc)
    check(r.status == 201, "encounter diagnosis", r)
    c = api(r)
    check(c["code"]["coding"][0] == {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J18.9",
                                     "display": "Pneumonia, unspecified organism"}, "ICD-10-CM coding", r)
    check(c["category"][0]["coding"][0]["code"] == "encounter-diagnosis", "category", r)
    r = srv.post("/api/v1/patients/%s/conditions" % pid, {"icd10": "I10", "onset": "2015-06-01"}, token=doc)
    check(r.status == 201, "chronic problem", r)
    S["htn"] = api(r)["id"]
    r = srv.post("/api/v1/patients/%s/conditions" % pid, {"icd10": "E11.9", "onset": "2016-01-01",
                                                          "clinicalStatus": "resolved", "abatement": "2018-01-01"},
                 token=doc)
    check(r.status == 201, "resolved problem", r)
    r = srv.get("/api/v1/patients/%s/problems" % pid, token=nurse)
    check(r.status == 200 and [x["id"] for x in api(r)] == [S["htn"]], "problem list: active problem-list items", r)
    r = srv.get("/api/v1/patients/%s/conditions" % pid, token=nurse)
    check(len(api(r)) == 3 and r.json()["meta"]["pagination"]["total"] == 3, "all conditions", r)

    # -- allergy --
    r = srv.post("/api/v1/patients/%s/allergies" % pid, {"substance": "", "criticality": "high"}, token=doc)
    check(r.status == 400, "empty substance", r)
    r = srv.post("/api/v1/patients/%s/allergies" % pid, {"substance": "Penicillin", "criticality": "extreme"},
                 token=doc)
    check(r.status == 400 and r.json()["error"]["details"]["field"] == "criticality", "bad criticality", r)
    r = srv.post("/api/v1/patients/%s/allergies" % pid,
                 {"substance": {"code": "764146007", "display": "Penicillin"}, "criticality": "high",
                  "category": "medication", "reactions": [{"manifestation": "Hives", "severity": "moderate"}]},
                 token=doc)
    check(r.status == 201, "allergy", r)
    al = api(r)
    check(al["code"]["coding"][0]["system"] == "http://snomed.info/sct" and al["criticality"] == "high", "allergy", r)
    r = srv.get("/api/v1/patients/%s/allergies" % pid, token=nurse)
    check(r.status == 200 and len(api(r)) == 1, "allergy list", r)

    # -- care plan, family, coverage --
    r = srv.post("/api/v1/patients/%s/care-plans" % pid, {"title": "HTN", "start": "2024-02-01",
                                                          "end": "2024-01-01"}, token=doc)
    check(r.status == 400 and r.json()["error"]["details"]["field"] == "end", "care plan end before start", r)
    r = srv.post("/api/v1/patients/%s/care-plans" % pid,
                 {"title": "Hypertension control", "addresses": [S["htn"]], "start": "2024-01-01",
                  "activities": [{"description": "Home BP twice daily"}, {"description": "Low-salt diet",
                                                                          "status": "in-progress"}]}, token=doc)
    check(r.status == 201 and len(api(r)["activity"]) == 2, "care plan", r)
    r = srv.post("/api/v1/patients/%s/family-members" % pid,
                 {"name": "Mary Visit", "relationship": "mother", "conditions": [{"icd10": "I21.9", "onsetAge": 61}],
                  "emergencyContact": {"phone": "+1 555 0100"}}, token=nurse)
    check(r.status == 201 and api(r)["relatedPerson"]["telecom"][0]["value"] == "+1 555 0100", "family + contact", r)
    r = srv.post("/api/v1/patients/%s/family-members" % pid, {"relationship": "neighbour"}, token=nurse)
    check(r.status == 400, "bad relationship", r)
    r = srv.post("/api/v1/patients/%s/coverage" % pid, {"payor": "Acme Health", "memberId": "X123",
                                                        "plan": "Gold", "start": "2024-01-01"}, token=rec)
    check(r.status == 201 and api(r)["subscriberId"] == "X123", "coverage by front desk", r)
    r = srv.post("/api/v1/patients/%s/coverage" % pid, {"payor": "Acme"}, token=rec)
    check(r.status == 400, "coverage needs memberId", r)

    # -- finish --
    r = srv.put("/api/v1/encounters/%s/finish" % S["enc"], {"end": "2001-01-01T00:00:00Z"}, token=doc)
    check(r.status == 400 and r.json()["error"]["details"]["field"] == "end", "end before start", r)
    r = srv.put("/api/v1/encounters/%s/finish" % S["enc"], None, token=doc)
    check(r.status == 200 and api(r)["period"].get("end"), "finish", r)
    r = srv.put("/api/v1/encounters/%s/finish" % S["enc"], None, token=doc)
    check(r.status == 409, "already finished", r)
    r = srv.put("/api/v1/encounters/nope/finish", None, token=doc)
    check(r.status == 404, "unknown encounter", r)


def test_timeline(srv):
    doc, pid = S["tok"]["doctor"], S["pid"]
    # a lab result and a vital sign written through FHIR: the lab result is listed, the vital sign is not
    integ = S["tok"]["integration"]
    obs = {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/" + pid},
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                     "code": "laboratory"}]}],
           "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
           "effectiveDateTime": "2017-05-01T08:00:00Z",
           "valueQuantity": {"value": 7.20, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}
    text = json.dumps(obs).replace('"value": 7.2,', '"value": 7.20,')   # the lexeme must survive
    check(srv.post("/fhir/Observation", text, token=integ, content_type="application/fhir+json").status == 201,
          "lab result")
    vs = dict(obs, category=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                          "code": "vital-signs"}]}])
    check(srv.post("/fhir/Observation", vs, token=integ).status == 201, "vital sign")
    r = srv.get("/api/v1/patients/%s/medical-history?limit=100" % pid, token=doc)
    check(r.status == 200, "timeline", r)
    items = api(r)
    dates = [x["date"] for x in items]
    check(dates == sorted(dates, reverse=True), "ordered by date desc", r)
    types = [x["type"] for x in items]
    for t in ("Encounter", "Condition", "AllergyIntolerance", "Composition", "CarePlan", "Observation"):
        check(t in types, "timeline has " + t, r)
    check(types.count("Observation") == 1, "vital signs are not in the timeline", r)
    check(items[-1]["type"] == "Condition" and items[-1]["summary"].startswith("I10"), "oldest: the 2015 onset", r)
    lab = [x for x in items if x["type"] == "Observation"][0]
    check("7.20" in lab["summary"], "decimal kept in the summary", lab)
    total = r.json()["meta"]["pagination"]["total"]
    r2 = srv.get("/api/v1/patients/%s/medical-history?limit=2&page=2" % pid, token=doc)
    check([x["id"] for x in api(r2)] == [x["id"] for x in items[2:4]], "paging", r2)
    check(r2.json()["meta"]["pagination"]["total"] == total, "total", r2)
    r = srv.get("/api/v1/patients/%s/medical-history?type=Condition" % pid, token=doc)
    check({x["type"] for x in api(r)} == {"Condition"}, "type filter", r)
    check(srv.get("/api/v1/patients/%s/medical-history?type=Patient" % pid, token=doc).status == 400, "bad type")
    r = srv.get("/api/v1/patients/%s/medical-history?limit=100" % pid, token=S["tok"]["lab_tech"])
    check(r.status == 200 and "Composition" not in [x["type"] for x in api(r)], "no notes for lab techs", r)
    r = srv.get("/api/v1/patients/%s/medical-history" % pid, token=S["tok"]["patient"])
    check(r.status == 200, "the patient reads their own timeline", r)
    # the generic FHIR API applies the same rule: lab and pharmacy (in care) never read notes
    for role in ("lab_tech", "pharmacist"):
        tok = S["tok"][role]
        r = srv.get("/fhir/Composition/" + S["note"], token=tok)
        check(r.status == 403, role + " cannot read a note through /fhir", r)
        r = srv.get("/fhir/Composition?patient=" + pid, token=tok)
        check(r.status == 403, role + " cannot search notes", r)
        r = srv.get("/fhir/Patient/%s/$everything" % pid, token=tok)
        check(r.status == 200 and not any(e["resource"]["resourceType"] == "Composition"
                                          for e in r.json().get("entry", [])), role + ": no notes in $everything", r)
    r = srv.get("/fhir/Composition/" + S["note"], token=doc)
    check(r.status == 200, "the doctor reads the note through /fhir", r)


def test_role_table(srv):
    """Each role against each endpoint: 403 when refused, a 2xx (or a 4xx other than 403) when allowed."""
    pid, enc, note = S["pid"], S["enc"], S["note"]
    nobody = {"receptionist", "lab_tech", "pharmacist", "billing", "admin", "analyst", "auditor", "patient2"}
    ok_read = {"doctor", "nurse", "lab_tech", "pharmacist", "integration", "patient"}
    ok_notes = {"doctor", "nurse"}
    cases = [
        ("GET", "/api/v1/patients/%s/conditions" % pid, None, ok_read),
        ("GET", "/api/v1/patients/%s/problems" % pid, None, ok_read),
        ("GET", "/api/v1/patients/%s/allergies" % pid, None, ok_read),
        ("GET", "/api/v1/patients/%s/care-plans" % pid, None, ok_read),
        ("GET", "/api/v1/patients/%s/family-members" % pid, None, ok_read),
        ("GET", "/api/v1/patients/%s/encounters" % pid, None, ok_read),
        ("GET", "/api/v1/encounters/%s" % enc, None, ok_read),
        ("GET", "/api/v1/patients/%s/medical-history" % pid, None, ok_read),
        ("GET", "/api/v1/patients/%s/coverage" % pid, None,
         {"doctor", "nurse", "receptionist", "billing", "integration", "patient", "lab_tech", "pharmacist"}),
        ("GET", "/api/v1/consultations/%s" % note, None, ok_notes),
        ("GET", "/api/v1/consultations/%s/_history" % note, None, ok_notes),
        ("GET", "/api/v1/consultations/patient/%s" % pid, None, ok_notes),
        ("POST", "/api/v1/patients/%s/allergies" % pid, {"substance": "Latex"}, {"doctor", "nurse", "integration",
                                                                                 "lab_tech"}),
        ("POST", "/api/v1/patients/%s/conditions" % pid, {"icd10": "R05.9"}, {"doctor", "nurse", "integration",
                                                                              "lab_tech"}),
        ("POST", "/api/v1/consultations", {"patient": pid, "encounter": enc, "subjective": "s"}, ok_notes),
        ("POST", "/api/v1/encounters", {"patient": pid}, {"doctor", "nurse", "integration"}),
        ("POST", "/api/v1/patients/%s/coverage" % pid, {"payor": "P", "memberId": "M"},
         {"doctor", "nurse", "receptionist", "integration", "patient"}),
    ]
    failures = []
    for method, path, body, allowed in cases:
        for role, tok in S["tok"].items():
            if role == "doctor2":
                continue
            r = srv.request(method, path, body=body, token=tok)
            want_ok = role in allowed
            got_ok = r.status < 400
            if want_ok != got_ok or (not want_ok and r.status != 403):
                failures.append("%s %s as %s: %d %s" % (method, path, role, r.status, r.text[:120]))
    check(not failures, "role table:\n  " + "\n  ".join(failures))
    _ = nobody


if __name__ == "__main__":
    mt.main(globals())
