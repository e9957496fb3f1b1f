"""Black-box tests of FHIR Bundles (POST /fhir batch/transaction), JSON Patch, conditional
create/update/delete/read and Prefer: urn:uuid references resolved, atomic rollback, per-entry
access control, audit records per entry."""
import base64
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
S = {}


def tok():
    return S["admin"]


def patient(family, mrn=None, given="Ann"):
    p = {"resourceType": "Patient", "name": [{"family": family, "given": [given]}], "gender": "female",
         "birthDate": "1970-01-01"}
    if mrn:
        p["identifier"] = [{"system": "urn:test:mrn", "value": mrn}]
    return p


def obs(subject_ref, text="weight"):
    return {"resourceType": "Observation", "status": "final", "code": {"text": text},
            "subject": {"reference": subject_ref}, "valueQuantity": {"value": 72.5, "unit": "kg"}}


def post_bundle(srv, entries, btype="transaction", token=None, headers=None):
    return srv.post("/fhir", {"resourceType": "Bundle", "type": btype, "entry": entries},
                    token=token or tok(), headers=headers)


def total(srv, query, token=None):
    r = srv.get("/fhir/" + query + ("&" if "?" in query else "?") + "_summary=count", token=token or tok())
    check(r.status == 200, "count " + query, r)
    return r.json()["total"]


def test_setup(srv):
    S["srv"] = srv
    S["admin"] = srv.user_token("bundle.integration", "integration")


def test_transaction_urn_uuid(srv):
    pu, ou = "urn:uuid:" + str(uuid.uuid4()), "urn:uuid:" + str(uuid.uuid4())
    entries = [
        # the Observation comes first: references resolve regardless of order
        {"fullUrl": ou, "resource": obs(pu), "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": pu, "resource": patient("Urnpatient", "U-1"), "request": {"method": "POST", "url": "Patient"}},
    ]
    r = post_bundle(srv, entries)
    check(r.status == 200, "transaction", r)
    b = r.json()
    check(b["type"] == "transaction-response" and len(b["entry"]) == 2, "transaction-response", r)
    e_obs, e_pat = b["entry"]
    check(e_pat["response"]["status"].startswith("201"), "patient 201", r)
    check(e_obs["response"]["status"].startswith("201"), "observation 201", r)
    pid = e_pat["resource"]["id"]
    check(e_pat["response"]["location"].startswith("Patient/%s/_history/1" % pid), "location", r)
    check(e_pat["response"]["etag"] == 'W/"1"' and e_pat["response"]["lastModified"], "etag/lastModified", r)
    check(e_obs["resource"]["subject"]["reference"] == "Patient/" + pid, "urn:uuid rewritten", r)
    oid = e_obs["resource"]["id"]
    got = srv.get("/fhir/Observation/" + oid, token=tok())
    check(got.status == 200 and got.json()["subject"]["reference"] == "Patient/" + pid, "stored rewritten", got)
    check(total(srv, "Observation?subject=Patient/" + pid) == 1, "searchable by the new reference")
    S["pid"] = pid
    # an urn:uuid that names no entry is 400 with its path
    r = post_bundle(srv, [{"resource": obs("urn:uuid:" + str(uuid.uuid4())),
                           "request": {"method": "POST", "url": "Observation"}}])
    check(r.status == 400, "unresolved urn -> 400", r)
    check("Bundle.entry[0].resource.subject.reference" in r.text, "expression of the bad reference", r)


def test_transaction_atomic_rollback(srv):
    before_p = total(srv, "Patient?family=rollback")
    hist_before = srv.get("/fhir/_history?_count=0", token=tok()).json()["total"]
    pu = "urn:uuid:" + str(uuid.uuid4())
    entries = [
        {"fullUrl": pu, "resource": patient("Rollback", "R-1"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": obs(pu), "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": pu}, "valueQuantity": {"value": "not a number"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": patient("Rollback", "R-2"), "request": {"method": "POST", "url": "Patient"}},
    ]
    r = post_bundle(srv, entries)
    check(r.status == 400, "invalid entry 3 -> 400", r)
    oo = r.json()
    check(oo["resourceType"] == "OperationOutcome", "OperationOutcome", r)
    exprs = [x for i in oo["issue"] for x in i.get("expression", [])]
    check(any(x.startswith("Bundle.entry[2].resource.valueQuantity") for x in exprs), "expression %s" % exprs, r)
    check(total(srv, "Patient?family=rollback") == before_p, "nothing stored")
    # a failure while running (not validation): 404 on entry 3's delete rolls back the creates
    entries[2] = {"request": {"method": "DELETE", "url": "Observation/no-such-observation"}}
    r = post_bundle(srv, entries)
    check(r.status == 404, "failing delete -> 404", r)
    check("Bundle.entry[2]" in r.text, "failing entry named", r)
    check(total(srv, "Patient?family=rollback") == before_p, "rolled back: nothing stored")
    hist_after = srv.get("/fhir/_history?_count=0", token=tok()).json()["total"]
    check(hist_after == hist_before, "no version written")


def test_batch_mixed(srv):
    pid = S["pid"]
    entries = [
        {"resource": patient("Batchy", "B-1"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "birthDate": "1980-02-31"},
         "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/" + pid}},
        {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        {"request": {"method": "GET", "url": "Patient?family=batchy"}},
        {"request": {"method": "GET", "url": "http://elsewhere.example/fhir/Patient/1"}},
    ]
    r = post_bundle(srv, entries, "batch")
    check(r.status == 200, "batch", r)
    b = r.json()
    check(b["type"] == "batch-response" and len(b["entry"]) == 6, "batch-response", r)
    st = [e["response"]["status"][:3] for e in b["entry"]]
    check(st == ["201", "400", "200", "404", "200", "400"], "per-entry statuses %s" % st, r)
    out = b["entry"][1]["response"]["outcome"]
    check(out["resourceType"] == "OperationOutcome" and
          out["issue"][0]["expression"][0].startswith("Bundle.entry[1].resource.birthDate"), "entry outcome", r)
    check(b["entry"][2]["resource"]["id"] == pid, "read entry", r)
    # entries are independent: the search in the same batch ran after the create
    check(b["entry"][4]["resource"]["type"] == "searchset" and b["entry"][4]["resource"]["total"] == 1,
          "search entry", r)
    check(total(srv, "Patient?family=batchy") == 1, "the good entry is stored")


def test_bundle_validation(srv):
    r = srv.post("/fhir", {"resourceType": "Bundle", "type": "collection"}, token=tok())
    check(r.status == 400 and "Bundle.type" in r.text, "collection refused", r)
    r = srv.post("/fhir", {"resourceType": "Patient"}, token=tok())
    check(r.status == 400, "not a Bundle", r)
    r = post_bundle(srv, [{"request": {"method": "FETCH", "url": "Patient"}}])
    check(r.status == 400 and "Bundle.entry[0].request.method" in r.text, "bad method", r)
    r = post_bundle(srv, [{"request": {"method": "GET"}}])
    check(r.status == 400 and "Bundle.entry[0].request" in r.text, "missing url", r)
    r = post_bundle(srv, [{"resource": patient("X"), "request": {"method": "POST", "url": "https://evil/fhir/Patient"}}])
    check(r.status == 400 and "Bundle.entry[0].request.url" in r.text, "foreign absolute url", r)
    r = post_bundle(srv, [{"resource": patient("X"), "request": {"method": "POST", "url": "Observation"}}])
    check(r.status == 400 and "Bundle.entry[0].resource.resourceType" in r.text, "type mismatch", r)
    r = post_bundle(srv, [{"request": {"method": "GET", "url": "Patient"}}] * 1001)
    check(r.status in (400, 413), "too many entries", r)
    # our own base as an absolute URL is fine
    r = post_bundle(srv, [{"request": {"method": "GET", "url": srv.base_url + "/fhir/Patient/" + S["pid"]}}])
    check(r.status == 200, "own absolute url", r)


def test_conditional_in_transaction(srv):
    # conditional create: 0 matches -> create; then 1 match -> that one (200)
    e = [{"fullUrl": "urn:uuid:" + str(uuid.uuid4()), "resource": patient("Condo", "C-1"),
          "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:test:mrn|C-1"}}]
    r = post_bundle(srv, e)
    check(r.status == 200 and r.json()["entry"][0]["response"]["status"].startswith("201"), "create", r)
    cid = r.json()["entry"][0]["resource"]["id"]
    pu = "urn:uuid:" + str(uuid.uuid4())
    r = post_bundle(srv, [{"fullUrl": pu, "resource": patient("Condo", "C-1"),
                           "request": {"method": "POST", "url": "Patient",
                                       "ifNoneExist": "identifier=urn:test:mrn|C-1"}},
                          {"resource": obs(pu, "condo"), "request": {"method": "POST", "url": "Observation"}}])
    check(r.status == 200, "conditional create matched", r)
    b = r.json()
    check(b["entry"][0]["response"]["status"].startswith("200") and b["entry"][0]["resource"]["id"] == cid,
          "existing returned", r)
    check(b["entry"][1]["resource"]["subject"]["reference"] == "Patient/" + cid, "urn resolved to the match", r)
    check(total(srv, "Patient?identifier=urn:test:mrn|C-1") == 1, "no duplicate")
    # conditional update and delete inside a transaction
    upd = patient("Condo", "C-1", given="Updated")
    r = post_bundle(srv, [{"resource": upd, "request": {"method": "PUT", "url": "Patient?identifier=urn:test:mrn|C-1"}}])
    check(r.status == 200 and r.json()["entry"][0]["response"]["etag"] == 'W/"2"', "conditional update", r)
    r = post_bundle(srv, [{"request": {"method": "DELETE", "url": "Patient?identifier=urn:test:mrn|C-1"}}])
    check(r.status == 200 and r.json()["entry"][0]["response"]["status"].startswith("204"), "conditional delete", r)
    check(srv.get("/fhir/Patient/" + cid, token=tok()).status == 410, "deleted")
    # >1 match -> 412
    for i in range(2):
        srv.post("/fhir/Patient", patient("Twin", "T-1"), token=tok())
    r = post_bundle(srv, [{"resource": patient("Twin", "T-1"),
                           "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=T-1"}}])
    check(r.status == 412, "ifNoneExist matching two -> 412", r)


def test_conditional_rest(srv):
    h = {"If-None-Exist": "identifier=urn:test:mrn|H-1"}
    r = srv.post("/fhir/Patient", patient("Header", "H-1"), token=tok(), headers=h)
    check(r.status == 201, "If-None-Exist: created", r)
    hid = r.json()["id"]
    r = srv.post("/fhir/Patient", patient("Header", "H-1"), token=tok(), headers=h)
    check(r.status == 200 and r.json()["id"] == hid, "If-None-Exist: existing returned", r)
    check(total(srv, "Patient?identifier=H-1") == 1, "one only")
    r = srv.post("/fhir/Patient", patient("Header", "H-9"), token=tok(), headers={"If-None-Exist": "nosuch=1"})
    check(r.status == 400, "bad criteria -> 400", r)
    # conditional update: 1 match updates, 0 matches creates
    r = srv.put("/fhir/Patient?identifier=urn:test:mrn|H-1", patient("Header", "H-1", given="Two"), token=tok())
    check(r.status == 200 and r.json()["id"] == hid and r.header("etag") == 'W/"2"', "conditional update", r)
    r = srv.put("/fhir/Patient?identifier=urn:test:mrn|H-2", patient("Header", "H-2"), token=tok())
    check(r.status == 201 and r.header("location"), "conditional update creates", r)
    r = srv.put("/fhir/Patient?family=header", patient("Header", "H-3"), token=tok())
    check(r.status == 412, "conditional update, two matches -> 412", r)
    r = srv.put("/fhir/Patient?identifier=", patient("Header", "H-3"), token=tok())
    check(r.status == 400, "empty criteria -> 400", r)
    # conditional delete
    r = srv.delete("/fhir/Patient?family=header", token=tok())
    check(r.status == 412, "conditional delete, two matches -> 412", r)
    r = srv.delete("/fhir/Patient?identifier=urn:test:mrn|H-2", token=tok())
    check(r.status == 204, "conditional delete", r)
    check(total(srv, "Patient?identifier=H-2") == 0, "gone")
    r = srv.delete("/fhir/Patient?identifier=urn:test:mrn|H-404", token=tok())
    check(r.status == 204, "conditional delete of nothing -> 204", r)
    S["hid"] = hid


def test_conditional_read_304(srv):
    hid = S["hid"]
    r = srv.get("/fhir/Patient/" + hid, token=tok())
    check(r.status == 200, "read", r)
    etag, lm = r.header("etag"), r.header("last-modified")
    r = srv.get("/fhir/Patient/" + hid, token=tok(), headers={"If-None-Match": etag})
    check(r.status == 304 and not r.body, "If-None-Match -> 304", r)
    r = srv.get("/fhir/Patient/" + hid, token=tok(), headers={"If-Modified-Since": lm})
    check(r.status == 304, "If-Modified-Since (same time) -> 304", r)
    r = srv.get("/fhir/Patient/" + hid, token=tok(), headers={"If-Modified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"})
    check(r.status == 200, "modified since 1994 -> 200", r)
    r = srv.get("/fhir/Patient/" + hid, token=tok(), headers={"If-Modified-Since": "garbage"})
    check(r.status == 200, "unparseable date ignored", r)
    r = post_bundle(srv, [{"request": {"method": "GET", "url": "Patient/" + hid, "ifNoneMatch": etag}}], "batch")
    check(r.status == 200 and r.json()["entry"][0]["response"]["status"].startswith("304"), "batch 304", r)


def patch(srv, path, ops, token=None, headers=None):
    return srv.request("PATCH", path, body=json.dumps(ops), token=token or tok(), headers=headers,
                       content_type="application/json-patch+json")


def test_patch(srv):
    r = srv.post("/fhir/Patient", patient("Patchy", "P-1"), token=tok())
    pid = r.json()["id"]
    url = "/fhir/Patient/" + pid
    ops = [{"op": "test", "path": "/name/0/family", "value": "Patchy"},
           {"op": "replace", "path": "/name/0/family", "value": "Patched"},
           {"op": "add", "path": "/name/0/given/-", "value": "Beth"},
           {"op": "add", "path": "/active", "value": True}]
    r = patch(srv, url, ops, headers={"If-Match": 'W/"1"'})
    check(r.status == 200, "patch", r)
    p = r.json()
    check(p["name"][0]["family"] == "Patched" and p["name"][0]["given"] == ["Ann", "Beth"] and p["active"] is True,
          "patched content", r)
    check(r.header("etag") == 'W/"2"' and p["meta"]["versionId"] == "2", "new version", r)
    # stale If-Match
    r = patch(srv, url, [{"op": "remove", "path": "/active"}], headers={"If-Match": 'W/"1"'})
    check(r.status == 412, "stale If-Match -> 412", r)
    # failed test -> 422, nothing changes
    r = patch(srv, url, [{"op": "remove", "path": "/active"}, {"op": "test", "path": "/gender", "value": "male"}])
    check(r.status == 422 and r.json()["resourceType"] == "OperationOutcome", "test failed -> 422", r)
    # bad pointer, missing path -> 400
    r = patch(srv, url, [{"op": "remove", "path": "/name/7"}])
    check(r.status == 400, "pointer to nothing -> 400", r)
    r = patch(srv, url, [{"op": "remove", "path": "name"}])
    check(r.status == 400, "malformed pointer -> 400", r)
    # id and resourceType are fixed
    r = patch(srv, url, [{"op": "replace", "path": "/id", "value": "other"}])
    check(r.status == 400, "patching id -> 400", r)
    r = patch(srv, url, [{"op": "replace", "path": "/resourceType", "value": "Group"}])
    check(r.status == 400, "patching resourceType -> 400", r)
    # the result must be a valid resource
    r = patch(srv, url, [{"op": "add", "path": "/birthDate", "value": "1980-02-31"}])
    check(r.status == 400 and "Patient.birthDate" in r.text, "invalid result -> 400 with expression", r)
    r = patch(srv, url, {"op": "add"})
    check(r.status == 400, "not an array -> 400", r)
    r = srv.request("PATCH", url, body=json.dumps(ops), token=tok(), content_type="text/plain")
    check(r.status == 415, "wrong media type -> 415", r)
    r = patch(srv, "/fhir/Patient/no-such-patient", [{"op": "add", "path": "/active", "value": False}])
    check(r.status == 404, "patch missing -> 404", r)
    cur = srv.get(url, token=tok()).json()
    check(cur["meta"]["versionId"] == "2" and cur["active"] is True, "failed patches changed nothing", cur)
    # Prefer: return=minimal
    r = patch(srv, url, [{"op": "replace", "path": "/active", "value": False}], headers={"Prefer": "return=minimal"})
    check(r.status == 200 and not r.body and r.header("etag") == 'W/"3"', "minimal", r)
    # PATCH entry in a transaction (Binary carrying the JSON Patch)
    data = base64.b64encode(json.dumps([{"op": "replace", "path": "/gender", "value": "other"}]).encode()).decode()
    r = post_bundle(srv, [{"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                                        "data": data},
                           "request": {"method": "PATCH", "url": "Patient/" + pid, "ifMatch": 'W/"3"'}}])
    check(r.status == 200 and r.json()["entry"][0]["resource"]["gender"] == "other", "patch entry", r)


def test_prefer_in_bundles(srv):
    e = [{"resource": patient("Prefer", "PF-1"), "request": {"method": "POST", "url": "Patient"}}]
    r = post_bundle(srv, e, headers={"Prefer": "return=minimal"})
    check(r.status == 200, "minimal", r)
    en = r.json()["entry"][0]
    check("resource" not in en and en["response"]["location"], "no resource with minimal", r)
    r = post_bundle(srv, e, headers={"Prefer": "return=OperationOutcome"})
    en = r.json()["entry"][0]
    check("resource" not in en and en["response"]["outcome"]["resourceType"] == "OperationOutcome", "outcome", r)
    r = srv.post("/fhir/Patient", patient("Prefer", "PF-2"), token=tok(), headers={"Prefer": "return=minimal"})
    check(r.status == 201 and not r.body, "plain create minimal", r)


def test_access_in_bundles(srv):
    other = S["pid"]   # created by the integration account: no doctor has it in care
    dtok = srv.user_token("dr.bundle", "doctor")
    # a doctor's own new patient and its observation in one transaction: allowed (care team)
    pu = "urn:uuid:" + str(uuid.uuid4())
    r = post_bundle(srv, [{"resource": obs(pu, "mine"), "request": {"method": "POST", "url": "Observation"}},
                          {"fullUrl": pu, "resource": patient("Docpat", "DP-1"),
                           "request": {"method": "POST", "url": "Patient"}}], token=dtok)
    check(r.status == 200, "doctor creates patient + observation", r)
    before = total(srv, "Observation?subject=Patient/" + other)
    # ... but not another patient's data, even mixed into an otherwise fine transaction
    r = post_bundle(srv, [{"resource": patient("Docpat", "DP-2"), "request": {"method": "POST", "url": "Patient"}},
                          {"resource": obs("Patient/" + other, "sneaky"),
                           "request": {"method": "POST", "url": "Observation"}}], token=dtok)
    check(r.status == 403 and "Bundle.entry[1]" in r.text, "doctor not in care -> 403", r)
    check(total(srv, "Observation?subject=Patient/" + other) == before, "nothing written for the other patient")
    check(total(srv, "Patient?identifier=DP-2") == 0, "the whole transaction rolled back")
    r = post_bundle(srv, [{"request": {"method": "GET", "url": "Patient/" + other}},
                          {"request": {"method": "DELETE", "url": "Patient/" + other}}], "batch", token=dtok)
    check(r.status == 200, "batch", r)
    st = [e["response"]["status"][:3] for e in r.json()["entry"]]
    check(st == ["403", "403"], "doctor cannot read or delete another patient in a batch: %s" % st, r)
    check(srv.get("/fhir/Patient/" + other, token=tok()).status == 200, "still there")
    # a receptionist may create Patients, never Observations
    rtok = srv.user_token("front.desk", "receptionist")
    r = post_bundle(srv, [{"resource": patient("Recep", "RC-1"), "request": {"method": "POST", "url": "Patient"}},
                          {"resource": obs("Patient/" + other), "request": {"method": "POST", "url": "Observation"}}],
                    token=rtok)
    check(r.status == 403 and "Bundle.entry[1]" in r.text, "receptionist Observation -> 403", r)
    check(total(srv, "Patient?identifier=RC-1") == 0, "rolled back")
    r = post_bundle(srv, [{"resource": patient("Recep", "RC-1"), "request": {"method": "POST", "url": "Patient"}}],
                    token=rtok)
    check(r.status == 200, "receptionist Patient in a transaction", r)
    r = post_bundle(srv, [{"request": {"method": "GET", "url": "Patient/" + other}}], token=None)
    check(r.status in (200,), "admin-ish integration read", r)
    r = srv.request("POST", "/fhir", body={"resourceType": "Bundle", "type": "batch"})
    check(r.status == 401, "no token -> 401", r)


def test_audit_per_entry(srv):
    aud = srv.user_token("aud.bundle", "auditor")
    e = [{"resource": patient("Audited", "AU-%d" % i), "request": {"method": "POST", "url": "Patient"}}
         for i in range(3)]
    r = post_bundle(srv, e, headers={"X-Request-Id": "bundle-audit-1"})
    check(r.status == 200, "transaction of 3", r)
    for x in r.json()["entry"]:
        pid = x["resource"]["id"]
        a = srv.get("/fhir/AuditEvent?patient=" + pid, token=aud)
        check(a.status == 200, "audit search", a)
        evs = [en["resource"] for en in a.json().get("entry", [])]
        check(len(evs) == 1 and evs[0]["action"] == "C", "one create record for %s" % pid, a)
        check("bundle-audit-1" in a.text, "the record carries the request id", a)
    # a failed transaction leaves one failure record and no per-entry records
    bad = [{"resource": patient("Audited", "AU-9"), "request": {"method": "POST", "url": "Patient"}},
           {"request": {"method": "DELETE", "url": "Patient/not-there"}}]
    r = post_bundle(srv, bad)
    check(r.status == 404, "failing transaction", r)


def test_perf_hint(srv):
    import time
    e = [{"fullUrl": "urn:uuid:" + str(uuid.uuid4()), "resource": patient("Perf%d" % i, "PERF-%d" % i),
          "request": {"method": "POST", "url": "Patient"}} for i in range(100)]
    conn = srv.connect()
    t0 = time.monotonic()
    r = mt.send(conn, "POST", "/fhir", {"resourceType": "Bundle", "type": "transaction", "entry": e}, token=tok())
    ms = (time.monotonic() - t0) * 1e3
    conn.close()
    check(r.status == 200 and len(r.json()["entry"]) == 100, "100-entry transaction", r)
    print("      100-entry transaction: %.1f ms" % ms)


if __name__ == "__main__":
    mt.main(globals())
