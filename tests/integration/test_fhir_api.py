"""Black-box tests of the FHIR REST API (/fhir): CRUD with versions and If-Match, history, delete,
search (string, token, date ranges, identifier, paging), 400s with OperationOutcome expression
paths that change nothing, access by patient, and the CapabilityStatement."""
import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
S = {}   # tokens and ids shared between the tests (run in source order on one server)

FHIR_CT = "application/fhir+json"


def tok():
    if "admin" not in S:
        # the integration account may write and read every patient's data
        S["admin"] = srv_ref().user_token("fhir.integration", "integration")
    return S["admin"]


def srv_ref():
    return S["srv"]


def patient(family, given, birth, gender="female", mrn=None):
    p = {"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
         "gender": gender, "birthDate": birth}
    if mrn:
        p["identifier"] = [{"system": "urn:test:mrn", "value": mrn}]
    return p


def search(srv, query, token=None):
    r = srv.get("/fhir/Patient?" + query, token=token or tok())
    check(r.status == 200, "search %s" % query, r)
    b = r.json()
    check(b["resourceType"] == "Bundle" and b["type"] == "searchset", "searchset bundle", r)
    return b


def ids_of(bundle):
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


def count_patients(srv):
    return search(srv, "_summary=count")["total"]


def test_metadata(srv):
    S["srv"] = srv
    r = srv.get("/fhir/metadata")
    check(r.status == 200, "metadata is public", r)
    check(r.header("content-type", "").startswith(FHIR_CT), "fhir content type", r.headers)
    cs = r.json()
    check(cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1", "capability", r)
    types = {x["type"]: x for x in cs["rest"][0]["resource"]}
    check("Patient" in types and "Observation" in types, "types listed")
    check("AuditEvent" not in types, "AuditEvent not served by the generic routes")
    pat = types["Patient"]
    codes = {i["code"] for i in pat["interaction"]}
    check(codes == {"read", "vread", "update", "delete", "history-instance", "history-type", "create",
                    "search-type"}, "interactions %s" % codes)
    names = {p["name"] for p in pat["searchParam"]}
    for n in ("family", "given", "birthdate", "identifier", "gender", "_id", "_lastUpdated"):
        check(n in names, "search param %s listed" % n)


def test_create_read_vread_update(srv):
    before = count_patients(srv)
    r = srv.post("/fhir/Patient", patient("Quixote", "Alonso", "1947-03-12", "male", "Q-1"), token=tok())
    check(r.status == 201, "create", r)
    p = r.json()
    pid = p["id"]
    S["pid"] = pid
    check(p["meta"]["versionId"] == "1", "versionId 1", r)
    check(r.header("etag") == 'W/"1"', "ETag", r.headers)
    check(r.header("location", "").endswith("/fhir/Patient/%s/_history/1" % pid), "Location", r.headers)
    check(r.header("last-modified", "").endswith("GMT"), "Last-Modified", r.headers)
    check(count_patients(srv) == before + 1, "one more patient")

    r = srv.get("/fhir/Patient/" + pid, token=tok())
    check(r.status == 200 and r.json()["id"] == pid, "read", r)
    check(r.header("etag") == 'W/"1"', "read ETag", r.headers)
    r304 = srv.get("/fhir/Patient/" + pid, token=tok(), headers={"If-None-Match": 'W/"1"'})
    check(r304.status == 304, "If-None-Match -> 304", r304)

    upd = r.json()
    upd["name"][0]["given"] = ["Alonso", "Quijano"]
    r = srv.put("/fhir/Patient/" + pid, upd, token=tok(), headers={"If-Match": 'W/"1"'})
    check(r.status == 200, "update with If-Match", r)
    check(r.json()["meta"]["versionId"] == "2" and r.header("etag") == 'W/"2"', "version 2", r)
    # stale If-Match
    r = srv.put("/fhir/Patient/" + pid, upd, token=tok(), headers={"If-Match": 'W/"1"'})
    check(r.status == 412, "stale If-Match -> 412", r)
    check(r.json()["resourceType"] == "OperationOutcome", "412 OperationOutcome", r)
    # id mismatch
    bad = dict(upd, id="someone-else")
    r = srv.put("/fhir/Patient/" + pid, bad, token=tok())
    check(r.status == 400, "id mismatch -> 400", r)
    # vread both versions
    r1 = srv.get("/fhir/Patient/%s/_history/1" % pid, token=tok())
    r2 = srv.get("/fhir/Patient/%s/_history/2" % pid, token=tok())
    check(r1.status == 200 and r1.json()["meta"]["versionId"] == "1", "vread 1", r1)
    check(r2.status == 200 and "Quijano" in r2.json()["name"][0]["given"], "vread 2", r2)
    check("Quijano" not in r1.json()["name"][0]["given"], "version 1 unchanged", r1)
    r = srv.get("/fhir/Patient/%s/_history/9" % pid, token=tok())
    check(r.status == 404, "vread of a missing version", r)
    # history
    r = srv.get("/fhir/Patient/%s/_history" % pid, token=tok())
    check(r.status == 200, "history", r)
    h = r.json()
    check(h["type"] == "history" and h["total"] == 2, "history bundle of 2", r)
    vs = [e["resource"]["meta"]["versionId"] for e in h["entry"]]
    check(vs == ["2", "1"], "newest first: %s" % vs)
    check(h["entry"][1]["request"]["method"] == "POST" and h["entry"][0]["request"]["method"] == "PUT",
          "request entries", r)
    check(h["entry"][0]["response"]["etag"] == 'W/"2"', "response etag", r)
    # decimals keep their lexeme
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
           "subject": {"reference": "Patient/" + pid}, "valueQuantity": {"value": 72.50, "unit": "kg"}}
    raw = json.dumps(obs).replace("72.5", "72.50")
    r = srv.post("/fhir/Observation", raw, token=tok())
    check(r.status == 201, "create Observation", r)
    check(b'"value":72.50' in r.body, "decimal lexeme kept", r)
    oid = r.json()["id"]
    r = srv.get("/fhir/Observation/" + oid, token=tok())
    check(b'"value":72.50' in r.body, "decimal lexeme kept on read", r)
    r = srv.get("/fhir/Observation?subject=Patient/" + pid, token=tok())
    check(r.status == 200 and r.json()["total"] == 1, "Observation by subject", r)


def test_delete(srv):
    r = srv.post("/fhir/Patient", patient("Ephemeral", "Eve", "2001-01-01"), token=tok())
    check(r.status == 201, "create", r)
    pid = r.json()["id"]
    r = srv.delete("/fhir/Patient/" + pid, token=tok())
    check(r.status in (200, 204), "delete", r)
    r = srv.get("/fhir/Patient/" + pid, token=tok())
    check(r.status == 410, "read after delete -> 410", r)
    r = srv.delete("/fhir/Patient/" + pid, token=tok())
    check(r.status in (200, 204), "delete again is idempotent", r)
    r = srv.get("/fhir/Patient/%s/_history/1" % pid, token=tok())
    check(r.status == 200, "old versions stay readable", r)
    r = srv.get("/fhir/Patient/%s/_history" % pid, token=tok())
    h = r.json()
    check(h["total"] == 2 and h["entry"][0]["request"]["method"] == "DELETE", "tombstone in history", r)
    check(pid not in ids_of(search(srv, "family=ephemeral")), "deleted not found by search")
    r = srv.delete("/fhir/Patient/does-not-exist", token=tok())
    check(r.status == 404, "delete of a missing resource", r)


def test_search(srv):
    made = {}
    for fam, giv, birth, gender, mrn in [
            ("Müller", "José", "1980-05-01", "male", "S-100"),
            ("Muller", "Ann", "1980-11-20", "female", "S-101"),
            ("Mullins", "Bob", "1975-06-30", "male", "S-102"),
            ("Okafor", "Chidi", "1990-01-15", "male", "S-103")]:
        r = srv.post("/fhir/Patient", patient(fam, giv, birth, gender, mrn), token=tok())
        check(r.status == 201, "create %s" % fam, r)
        made[mrn] = r.json()["id"]
    m = made
    check(ids_of(search(srv, "family=muller")) == sorted([m["S-100"], m["S-101"]]), "family, accents folded")
    check(ids_of(search(srv, "family=mull")) == sorted([m["S-100"], m["S-101"], m["S-102"]]), "prefix")
    check(ids_of(search(srv, "family:exact=Muller")) == [m["S-101"]], "exact")
    check(ids_of(search(srv, "given=jose")) == [m["S-100"]], "given jose matches José")
    check(ids_of(search(srv, "birthdate=1980&family=mul")) == sorted([m["S-100"], m["S-101"]]), "birthdate=1980")
    check(ids_of(search(srv, "birthdate=lt1980-06&family=mul")) == sorted([m["S-100"], m["S-102"]]),
          "birthdate=lt1980-06")
    check(ids_of(search(srv, "birthdate=ge1980-06-01&birthdate=lt1991&family=mul,oka"))
          == sorted([m["S-101"], m["S-103"]]), "birthdate range")
    check(ids_of(search(srv, "identifier=urn:test:mrn|S-102")) == [m["S-102"]], "identifier system|value")
    check(ids_of(search(srv, "identifier=S-103")) == [m["S-103"]], "identifier value")
    check(ids_of(search(srv, "gender=female&family=mul")) == [m["S-101"]], "gender")
    check(ids_of(search(srv, "_id=" + m["S-102"])) == [m["S-102"]], "_id")
    check(search(srv, "family=" + urllib.parse.quote("' OR 1=1 --")).get("total") == 0, "injection is a value")
    # POST _search with a form body
    r = srv.request("POST", "/fhir/Patient/_search", body="family=okafor", token=tok(),
                    content_type="application/x-www-form-urlencoded")
    check(r.status == 200 and ids_of(r.json()) == [m["S-103"]], "POST _search", r)
    # errors
    r = srv.get("/fhir/Patient?nosuchparam=1", token=tok(), headers={"Prefer": "handling=strict"})
    check(r.status == 400 and "nosuchparam" in r.text, "unknown param (strict) -> 400 naming it", r)
    r = srv.get("/fhir/Patient?nosuchparam=1&family=okafor", token=tok(), headers={"Prefer": "handling=lenient"})
    check(r.status == 200 and r.json()["total"] == 1, "lenient handling ignores it", r)
    r = srv.get("/fhir/Patient?birthdate=19xx", token=tok())
    check(r.status == 400 and r.json()["resourceType"] == "OperationOutcome", "bad date -> 400", r)
    r = srv.get("/fhir/NoSuchType?x=1", token=tok())
    check(r.status == 404 and r.json()["resourceType"] == "OperationOutcome", "unknown type -> 404", r)


def test_paging(srv):
    for i in range(7):
        r = srv.post("/fhir/Patient", patient("Pagetest", "P%d" % i, "2000-01-0%d" % (i + 1)), token=tok())
        check(r.status == 201, "create", r)
    b = search(srv, "family=pagetest&_count=3")
    check(b["total"] == 7 and len(b["entry"]) == 3, "first page", b)
    seen = ids_of(b)
    pages = 1
    while True:
        nxt = [l["url"] for l in b["link"] if l["relation"] == "next"]
        if not nxt:
            break
        url = urllib.parse.urlsplit(nxt[0])
        check(url.path == "/fhir/Patient", "next link path %s" % nxt[0])
        r = srv.get(url.path + "?" + url.query, token=tok())
        check(r.status == 200, "next page", r)
        b = r.json()
        seen += ids_of(b)
        pages += 1
        check(pages < 10, "paging terminates")
    check(pages == 3 and len(seen) == 7 and len(set(seen)) == 7, "followed next to the end: %d pages" % pages)
    check(any(l["relation"] == "previous" for l in b["link"]), "previous link on the last page")
    b = search(srv, "family=pagetest&_sort=-birthdate&_count=2")
    births = [e["resource"]["birthDate"] for e in b["entry"]]
    check(births == ["2000-01-07", "2000-01-06"], "_sort=-birthdate: %s" % births)


def outcome_paths(r):
    oo = r.json()
    check(oo["resourceType"] == "OperationOutcome", "OperationOutcome", r)
    return [e for i in oo["issue"] for e in i.get("expression", [])]


def test_bad_requests_change_nothing(srv):
    before = count_patients(srv)
    hist_before = srv.get("/fhir/Patient/_history?_count=0", token=tok()).json()["total"]
    cases = [
        ("malformed JSON", '{"resourceType":"Patient",', None),
        ("unknown element", {"resourceType": "Patient", "favouriteColour": "blue"}, "Patient.favouriteColour"),
        ("wrong type", {"resourceType": "Patient", "active": "yes"}, "Patient.active"),
        ("invalid date", {"resourceType": "Patient", "birthDate": "1980-02-31"}, "Patient.birthDate"),
        ("wrong resourceType", {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
         "resourceType"),
    ]
    for what, body, path in cases:
        r = srv.post("/fhir/Patient", body, token=tok())
        check(r.status == 400, what + " -> 400", r)
        paths = outcome_paths(r)
        if path:
            check(any(p == path or p.startswith(path) for p in paths), "%s: expression %s in %s" % (what, path, paths), r)
        check(count_patients(srv) == before, what + ": nothing created")
    # the same on update: the resource stays at its version
    pid = S["pid"]
    cur = srv.get("/fhir/Patient/" + pid, token=tok())
    r = srv.put("/fhir/Patient/" + pid, {"resourceType": "Patient", "id": pid, "birthDate": "tomorrow"}, token=tok())
    check(r.status == 400 and "Patient.birthDate" in outcome_paths(r), "invalid update -> 400", r)
    after = srv.get("/fhir/Patient/" + pid, token=tok())
    check(after.body == cur.body, "update rejected: resource unchanged")
    hist_after = srv.get("/fhir/Patient/_history?_count=0", token=tok()).json()["total"]
    check(hist_after == hist_before, "no version written by bad requests")


def test_access(srv):
    pid = S["pid"]
    # a patient user reaches only their own compartment
    ptok = srv.user_token("pat.quixote", "patient", patient=pid)
    r = srv.get("/fhir/Patient/" + pid, token=ptok)
    check(r.status == 200, "patient reads own record", r)
    other = search(srv, "family=okafor")["entry"][0]["resource"]["id"]
    r = srv.get("/fhir/Patient/" + other, token=ptok)
    check(r.status == 403 and r.json()["resourceType"] == "OperationOutcome", "patient cannot read others", r)
    b = search(srv, "", token=ptok)
    check(ids_of(b) == [pid], "patient search sees only self: %s" % ids_of(b))
    # a doctor sees patients in care: the ones they created
    dtok = srv.user_token("dr.fhir", "doctor")
    r = srv.post("/fhir/Patient", patient("Careful", "Carl", "1966-06-06"), token=dtok)
    check(r.status == 201, "doctor creates a patient", r)
    mine = r.json()["id"]
    r = srv.get("/fhir/Patient/" + mine, token=dtok)
    check(r.status == 200, "doctor reads own new patient (care team)", r)
    r = srv.get("/fhir/Patient/" + other, token=dtok)
    check(r.status == 403, "doctor cannot read a patient not in care", r)
    check(ids_of(search(srv, "", token=dtok)) == [mine], "doctor search narrowed to care team")
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "subject": {"reference": "Patient/" + other}}
    r = srv.post("/fhir/Observation", obs, token=dtok)
    check(r.status == 403, "doctor cannot write to a patient not in care", r)
    r = srv.request("GET", "/fhir/Patient/" + pid)
    check(r.status == 401, "no token -> 401", r)
    r = srv.post("/fhir/AuditEvent", {"resourceType": "AuditEvent"}, token=tok())
    check(r.status in (403, 405), "AuditEvent writes refused", r)


if __name__ == "__main__":
    mt.main(globals())
