"""Black-box tests of the FHIR operations: $validate, $meta, Patient $everything (paging, _type,
_since, access control), bulk $export end to end (kick-off, poll, manifest, NDJSON download, owner
only, cancel) and OAuth2 client credentials with scope narrowing."""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
S = {}


def integ(srv):
    if "integ" not in S:
        S["integ"] = srv.user_token("ops.integration", "integration")
    return S["integ"]


def create(srv, res, token=None):
    r = srv.post("/fhir/" + res["resourceType"], res, token=token or integ(srv))
    check(r.status == 201, "create %s" % res["resourceType"], r)
    return r.json()


def obs(pid, code="8867-4", value=72):
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/" + pid},
            "valueQuantity": {"value": value, "unit": "/min"}}


def test_setup(srv):
    p = create(srv, {"resourceType": "Patient", "name": [{"family": "Everyman", "given": ["Eve"]}],
                     "meta": {"tag": [{"system": "urn:test:tags", "code": "vip"}],
                              "profile": ["http://example.org/StructureDefinition/p"]}})
    S["pid"] = p["id"]
    S["obs"] = [create(srv, obs(p["id"], value=60 + i))["id"] for i in range(7)]
    S["cond"] = create(srv, {"resourceType": "Condition", "subject": {"reference": "Patient/" + p["id"]},
                             "code": {"text": "asthma"}})["id"]
    other = create(srv, {"resourceType": "Patient", "name": [{"family": "Other"}]})
    S["other"] = other["id"]
    create(srv, obs(other["id"]))


# ---- $validate ----

def test_validate_good_and_bad(srv):
    t = integ(srv)
    before = srv.get("/fhir/Patient?_summary=count", token=t).json()["total"]
    r = srv.post("/fhir/Patient/$validate", {"resourceType": "Patient", "gender": "female"}, token=t)
    check(r.status == 200, "validate ok", r)
    oo = r.json()
    check(oo["resourceType"] == "OperationOutcome", "OperationOutcome", r)
    check(oo["issue"][0]["severity"] == "information" and oo["issue"][0]["diagnostics"] == "ok", "ok issue", r)
    r = srv.post("/fhir/Patient/$validate", {"resourceType": "Patient", "gender": "robot", "bogus": 1}, token=t)
    check(r.status == 200, "validate bad is still 200", r)
    issues = r.json()["issue"]
    check(all(i["severity"] == "error" for i in issues) and len(issues) >= 2, "error issues", r)
    check(any("Patient.gender" in "".join(i.get("expression", [])) for i in issues), "gender path", r)
    # Parameters form and the instance level
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "id": "zzz"}},
        {"name": "mode", "valueCode": "update"}]}
    r = srv.post("/fhir/Patient/%s/$validate" % S["pid"], params, token=t)
    check(r.status == 200 and r.json()["issue"][0]["severity"] == "error", "id mismatch reported", r)
    r = srv.post("/fhir/Observation/$validate", {"resourceType": "Patient"}, token=t)
    check(r.json()["issue"][0]["expression"] == ["resourceType"], "type mismatch", r)
    r = srv.post("/fhir/Patient/$validate", "{not json", token=t)
    check(r.status == 400, "unparseable body is 400", r)
    after = srv.get("/fhir/Patient?_summary=count", token=t).json()["total"]
    check(before == after, "validate stored nothing")


# ---- $meta ----

def test_meta(srv):
    t = integ(srv)
    r = srv.get("/fhir/Patient/%s/$meta" % S["pid"], token=t)
    check(r.status == 200, "instance meta", r)
    p = r.json()
    check(p["resourceType"] == "Parameters" and p["parameter"][0]["name"] == "return", "Parameters", r)
    m = p["parameter"][0]["valueMeta"]
    check(m["versionId"] == "1" and m["tag"][0]["code"] == "vip", "instance meta content", r)
    r = srv.get("/fhir/Patient/$meta", token=t)
    check(r.status == 200, "type meta", r)
    m = r.json()["parameter"][0]["valueMeta"]
    check({"system": "urn:test:tags", "code": "vip"} in m.get("tag", []), "tag in use", r)
    check("http://example.org/StructureDefinition/p" in m.get("profile", []), "profile in use", r)
    r = srv.get("/fhir/$meta", token=t)
    check(r.status == 200 and "tag" in r.json()["parameter"][0]["valueMeta"], "system meta", r)
    r = srv.get("/fhir/Patient/nope-nope/$meta", token=t)
    check(r.status == 404, "meta of a missing resource", r)


# ---- $everything ----

def everything_ids(srv, url, token):
    ids, pages = [], 0
    while url:
        r = srv.get(url, token=token)
        check(r.status == 200, "everything page", r)
        b = r.json()
        check(b["type"] == "searchset", "searchset", r)
        ids += ["%s/%s" % (e["resource"]["resourceType"], e["resource"]["id"]) for e in b.get("entry", [])]
        nxt = [l["url"] for l in b["link"] if l["relation"] == "next"]
        url = urllib.parse.urlsplit(nxt[0]) if nxt else None
        if url:
            url = url.path + "?" + url.query
        pages += 1
        check(pages < 20, "paging terminates")
    return ids, pages, b["total"]


def test_everything_paging_type_since(srv):
    t = integ(srv)
    ids, pages, total = everything_ids(srv, "/fhir/Patient/%s/$everything?_count=3" % S["pid"], t)
    check(ids[0] == "Patient/" + S["pid"], "the patient comes first: %s" % ids[:2])
    check(len(ids) == 9 and total == 9 and pages == 3, "1 patient + 7 obs + 1 condition in 3 pages: %s" % ids)
    check(len(set(ids)) == len(ids), "no duplicates across pages")
    check(not any(S["other"] in x for x in ids), "no other patient's data")
    ids, _, _ = everything_ids(srv, "/fhir/Patient/%s/$everything?_type=Condition" % S["pid"], t)
    check(ids == ["Condition/" + S["cond"]], "_type narrows: %s" % ids)
    r = srv.get("/fhir/Patient/%s/$everything?_since=2999-01-01T00:00:00Z" % S["pid"], token=t)
    check(r.status == 200 and r.json()["total"] == 0, "_since in the future: nothing", r)
    r = srv.get("/fhir/Observation/%s/$everything" % S["obs"][0], token=t)
    check(r.status == 404, "only for Patient", r)
    r = srv.get("/fhir/Patient/%s/$everything?_type=Nope" % S["pid"], token=t)
    check(r.status == 400, "bad _type", r)


def test_everything_access(srv):
    doc = srv.user_token("dr.notincare", "doctor")
    r = srv.get("/fhir/Patient/%s/$everything" % S["pid"], token=doc)
    check(r.status == 403, "a doctor not in care is refused", r)
    srv.add_user("eve.patient", "patient", patient=S["pid"])
    pt = srv.login("eve.patient")
    ids, _, _ = everything_ids(srv, "/fhir/Patient/%s/$everything" % S["pid"], pt)
    check(len(ids) == 9, "a patient gets their own compartment")
    r = srv.get("/fhir/Patient/%s/$everything" % S["other"], token=pt)
    check(r.status == 403, "but not another patient's", r)


# ---- bulk export ----

def poll(srv, loc, token, timeout=30):
    path = urllib.parse.urlsplit(loc).path
    deadline = time.monotonic() + timeout
    while True:
        r = srv.get(path, token=token)
        if r.status != 202:
            return r
        check(r.header("x-progress") is not None, "X-Progress while running", r)
        check(time.monotonic() < deadline, "export finished in time")
        time.sleep(0.1)


def kickoff(srv, path, token, prefer=True):
    h = {"Prefer": "respond-async", "Accept": "application/fhir+json"} if prefer else {}
    return srv.get(path, token=token, headers=h)


def test_export_end_to_end(srv):
    t = integ(srv)
    r = kickoff(srv, "/fhir/$export?_type=Patient,Observation,Condition&_outputFormat="
                + urllib.parse.quote("application/fhir+ndjson"), t)
    check(r.status == 202, "kick-off accepted", r)
    loc = r.header("content-location")
    check(loc and "/fhir/$export-status/" in loc, "Content-Location", r.headers)
    r = poll(srv, loc, t)
    check(r.status == 200, "manifest", r)
    m = r.json()
    check(m["requiresAccessToken"] is True and m["error"] == [] and "transactionTime" in m, "manifest fields", r)
    check("/fhir/$export" in m["request"], "request echoed", r)
    counts = {}
    for o in m["output"]:
        path = urllib.parse.urlsplit(o["url"]).path
        f = srv.get(path, token=t)
        check(f.status == 200, "download " + path, f)
        check(f.header("content-type", "").startswith("application/fhir+ndjson"), "ndjson type", f.headers)
        lines = [l for l in f.text.split("\n") if l]
        for l in lines:
            res = json.loads(l)
            check(res["resourceType"] == o["type"], "line type matches %s" % o["type"])
        check(len(lines) == o["count"], "count matches for %s" % o["type"])
        counts[o["type"]] = counts.get(o["type"], 0) + len(lines)
    want_pat = srv.get("/fhir/Patient?_summary=count", token=t).json()["total"]
    want_obs = srv.get("/fhir/Observation?_summary=count", token=t).json()["total"]
    check(counts.get("Patient") == want_pat and counts.get("Observation") == want_obs and
          counts.get("Condition") == 1, "every resource exported once: %s" % counts)
    S["export_loc"] = loc
    S["export_file"] = urllib.parse.urlsplit(m["output"][0]["url"]).path
    # another user with the same role is not the owner
    other = srv.user_token("ops.integration2", "integration")
    r = srv.get(urllib.parse.urlsplit(loc).path, token=other)
    check(r.status == 403, "status: not the owner", r)
    r = srv.get(S["export_file"], token=other)
    check(r.status == 403, "file: not the owner", r)
    r = srv.get(S["export_file"].rsplit("/", 1)[0] + "/..ndjson", token=t)
    check(r.status in (400, 404), "a forged file name", r)


def test_export_rules(srv):
    t = integ(srv)
    r = kickoff(srv, "/fhir/$export", t, prefer=False)
    check(r.status == 400, "Prefer: respond-async required", r)
    r = kickoff(srv, "/fhir/$export?_outputFormat=text/csv", t)
    check(r.status == 400, "bad _outputFormat", r)
    r = kickoff(srv, "/fhir/$export?_type=Nope", t)
    check(r.status == 400, "bad _type", r)
    doc = srv.login("dr.notincare")
    r = kickoff(srv, "/fhir/$export", doc)
    check(r.status == 403, "a doctor may not export", r)
    r = kickoff(srv, "/fhir/Group/nope/$export", t)
    check(r.status == 404, "unknown group", r)


def test_export_patient_group_since(srv):
    t = integ(srv)
    r = kickoff(srv, "/fhir/Patient/$export?_type=Observation", t)
    check(r.status == 202, "patient export", r)
    m = poll(srv, r.header("content-location"), t).json()
    want_obs = srv.get("/fhir/Observation?_summary=count", token=t).json()["total"]
    check(sum(o["count"] for o in m["output"]) == want_obs, "patient-level observations", m)
    g = create(srv, {"resourceType": "Group", "type": "person", "actual": True,
                     "member": [{"entity": {"reference": "Patient/" + S["pid"]}}]})
    r = kickoff(srv, "/fhir/Group/%s/$export" % g["id"], t)
    check(r.status == 202, "group export", r)
    m = poll(srv, r.header("content-location"), t).json()
    by = {o["type"]: o["count"] for o in m["output"]}
    check(by.get("Patient") == 1 and by.get("Observation") == 7 and by.get("Condition") == 1,
          "group export holds only the member's compartment: %s" % by)
    r = kickoff(srv, "/fhir/$export?_since=2999-01-01T00:00:00Z", t)
    m = poll(srv, r.header("content-location"), t).json()
    check(m["output"] == [], "_since in the future exports nothing", m)


def test_export_cancel(srv):
    t = integ(srv)
    path = urllib.parse.urlsplit(S["export_loc"]).path
    r = srv.delete(path, token=t)
    check(r.status == 202, "cancel/delete accepted", r)
    r = srv.get(path, token=t)
    check(r.status == 404, "status gone after delete", r)
    r = srv.get(S["export_file"], token=t)
    check(r.status == 404, "files gone after delete", r)
    # cancel right after kick-off (queued or running)
    r = kickoff(srv, "/fhir/$export", t)
    p2 = urllib.parse.urlsplit(r.header("content-location")).path
    r = srv.delete(p2, token=t)
    check(r.status == 202, "cancel a fresh job", r)
    check(srv.get(p2, token=t).status == 404, "cancelled job gone")


def test_export_audited(srv):
    rows = srv.medcore("audit", "verify", check_rc=False)
    check(rows.returncode == 0, "audit chain intact", rows.stderr)


# ---- OAuth2 client credentials ----

def add_client(srv, name, scopes):
    p = srv.medcore("client", "add", "--name", name, "--scopes", scopes)
    vals = dict(l.split(": ", 1) for l in p.stdout.strip().splitlines())
    return vals["client_id"], vals["client_secret"]


def token_req(srv, form, basic=None):
    body = urllib.parse.urlencode(form)
    h = {}
    if basic:
        h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % basic).encode()).decode()
    return srv.post("/api/v1/auth/token", body, headers=h, content_type="application/x-www-form-urlencoded")


def test_client_credentials(srv):
    cid, secret = add_client(srv, "lab system", "system/Patient.read system/Observation.*")
    r = token_req(srv, {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret})
    check(r.status == 200, "token issued", r)
    j = r.json()
    check(j["token_type"] == "bearer" and j["expires_in"] > 0 and j["scope"] ==
          "system/Patient.read system/Observation.*", "token response", r)
    check(r.header("cache-control") == "no-store", "no-store", r.headers)
    full = j["access_token"]
    check(srv.get("/fhir/Observation/" + S["obs"][0], token=full).status == 200, "scoped read ok")
    # narrowed request via HTTP Basic
    r = token_req(srv, {"grant_type": "client_credentials", "scope": "system/Patient.read"}, basic=(cid, secret))
    check(r.status == 200 and r.json()["scope"] == "system/Patient.read", "narrowed token", r)
    pt = r.json()["access_token"]
    check(srv.get("/fhir/Patient/" + S["pid"], token=pt).status == 200, "Patient.read reads Patient")
    r = srv.get("/fhir/Observation/" + S["obs"][0], token=pt)
    check(r.status == 403, "Patient.read can't read Observation", r)
    r = srv.post("/fhir/Patient", {"resourceType": "Patient"}, token=pt)
    check(r.status == 403, "Patient.read can't write", r)
    r = srv.get("/fhir/_history", token=pt)
    check(r.status == 403, "cross-type listing needs a * scope", r)
    r = kickoff(srv, "/fhir/$export", pt)
    check(r.status == 403, "export needs a * scope", r)
    ids, _, _ = everything_ids(srv, "/fhir/Patient/%s/$everything" % S["pid"], pt)
    check(ids == ["Patient/" + S["pid"]], "$everything narrowed to the scope's types: %s" % ids)
    # failures
    r = token_req(srv, {"grant_type": "client_credentials", "client_id": cid, "client_secret": "wrong"})
    check(r.status == 401 and r.json()["error"] == "invalid_client", "bad secret", r)
    r = token_req(srv, {"grant_type": "client_credentials", "client_id": "mc-nope", "client_secret": "x"})
    check(r.status == 401 and r.json()["error"] == "invalid_client", "unknown client", r)
    r = token_req(srv, {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret,
                        "scope": "system/*.write"})
    check(r.status == 400 and r.json()["error"] == "invalid_scope", "wider scope refused", r)
    r = token_req(srv, {"grant_type": "password", "client_id": cid, "client_secret": secret})
    check(r.status == 400 and r.json()["error"] == "unsupported_grant_type", "other grants", r)
    r = srv.post("/api/v1/auth/token", {"grant_type": "client_credentials"})
    check(r.status == 400 and r.json()["error"] == "invalid_request", "JSON body refused", r)
    # a client can't log in with a password
    r = srv.login_response(cid, secret)
    check(r.status == 401, "no password login for a client", r)
    # disabling the backing user revokes the client
    srv.medcore("user", "disable", "--username", cid)
    r = token_req(srv, {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret})
    check(r.status == 401, "disabled client", r)


def test_client_cli_rejects_bad_scopes(srv):
    p = srv.medcore("client", "add", "--name", "x", "--scopes", "everything", check_rc=False)
    check(p.returncode != 0, "bad scopes rejected by the CLI")


def test_export_with_wildcard_client(srv):
    cid, secret = add_client(srv, "warehouse", "system/*.read")
    r = token_req(srv, {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret})
    t = r.json()["access_token"]
    r = kickoff(srv, "/fhir/$export?_type=Condition", t)
    check(r.status == 202, "a system/*.read client may export", r)
    m = poll(srv, r.header("content-location"), t).json()
    check([o["type"] for o in m["output"]] == ["Condition"], "exported", m)
    r = srv.post("/fhir/Patient", {"resourceType": "Patient"}, token=t)
    check(r.status == 403, "read-only client can't write", r)


if __name__ == "__main__":
    mt.main(globals())
