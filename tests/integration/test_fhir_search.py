"""Black-box tests of FHIR search over HTTP: every parameter kind, chains, _has, composites,
_include/_revinclude (with access control: nothing a caller may not read leaks through them),
lenient (default) and strict handling, _summary/_elements, and paging that stays consistent
while other clients create resources."""
import os
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
S = {}


def tok():
    if "admin" not in S:
        S["admin"] = S["srv"].user_token("search.integration", "integration")
    return S["admin"]


def create(srv, res, token=None):
    r = srv.post("/fhir/" + res["resourceType"], res, token=token or tok())
    check(r.status == 201, "create %s" % res["resourceType"], r)
    return r.json()["id"]


def bundle(srv, path, token=None, headers=None, status=200):
    r = srv.get(path, token=token or tok(), headers=headers)
    check(r.status == status, "GET %s -> %d" % (path, status), r)
    return r.json() if status == 200 else r


def matches(b):
    return sorted(e["resource"]["id"] for e in b.get("entry", []) if e["search"]["mode"] == "match")


def included(b):
    return sorted(e["resource"]["id"] for e in b.get("entry", []) if e["search"]["mode"] == "include")


def q(s):
    return urllib.parse.quote(s, safe="=&:|$,._-")


def test_seed(srv):
    S["srv"] = srv
    mr = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
    p = {}
    p["smith"] = create(srv, {"resourceType": "Patient", "name": [{"family": "Srchsmith", "given": ["Robert"]}],
                              "gender": "male", "birthDate": "1970-01-01", "active": True,
                              "identifier": [{"type": mr, "system": "urn:srch", "value": "SR-1"}],
                              "address": [{"city": "Gen\u00e8ve", "postalCode": "1201"}]})
    p["smyth"] = create(srv, {"resourceType": "Patient", "name": [{"family": "Srchsmyth", "given": ["Rupert"]}],
                              "gender": "male", "birthDate": "1985-06-01",
                              "identifier": [{"system": "urn:srch", "value": "SR-2"}]})
    p["jones"] = create(srv, {"resourceType": "Patient", "name": [{"family": "Srchjones", "given": ["Ann"]}],
                              "gender": "female", "birthDate": "1990-01-01"})
    S["p"] = p
    S["pr"] = create(srv, {"resourceType": "Practitioner", "name": [{"family": "Srchwelby"}]})
    S["enc"] = create(srv, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                            "subject": {"reference": "Patient/" + p["smith"]}})
    loinc = "http://loinc.org"
    ucum = "http://unitsofmeasure.org"
    o = {}
    o["sys1"] = create(srv, {"resourceType": "Observation", "status": "final",
                             "code": {"coding": [{"system": loinc, "code": "8480-6", "display": "Systolic BP"}]},
                             "subject": {"reference": "Patient/" + p["smith"]},
                             "encounter": {"reference": "Encounter/" + S["enc"]},
                             "performer": [{"reference": "Practitioner/" + S["pr"]},
                                           {"reference": "Patient/" + p["smyth"]}],
                             "effectiveDateTime": "2024-01-10T08:00:00Z",
                             "valueQuantity": {"value": 120, "system": ucum, "code": "mm[Hg]"}})
    o["sys2"] = create(srv, {"resourceType": "Observation", "status": "final",
                             "code": {"coding": [{"system": loinc, "code": "8480-6"}]},
                             "subject": {"reference": "Patient/" + p["smyth"]},
                             "performer": [{"reference": "Practitioner/" + S["pr"]}],
                             "effectiveDateTime": "2024-02-10T08:00:00Z",
                             "valueQuantity": {"value": 150, "system": ucum, "code": "mm[Hg]"}})
    o["panel"] = create(srv, {"resourceType": "Observation", "status": "final",
                              "code": {"coding": [{"system": loinc, "code": "85354-9"}]},
                              "subject": {"reference": "Patient/" + p["smith"]},
                              "effectiveDateTime": "2024-03-10",
                              "component": [
                                  {"code": {"coding": [{"system": loinc, "code": "8480-6"}]},
                                   "valueQuantity": {"value": 130, "system": ucum, "code": "mm[Hg]"}},
                                  {"code": {"coding": [{"system": loinc, "code": "8462-4"}]},
                                   "valueQuantity": {"value": 85, "system": ucum, "code": "mm[Hg]"}}]})
    o["concept"] = create(srv, {"resourceType": "Observation", "status": "preliminary",
                                "code": {"coding": [{"system": loinc, "code": "1234-5"}]},
                                "subject": {"reference": "Patient/" + p["jones"]},
                                "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                                     "code": "260385009"}]}})
    S["o"] = o
    S["doc"] = create(srv, {"resourceType": "DocumentReference", "status": "current",
                            "content": [{"attachment": {"url": "http://docs.example/a/b.pdf"}}],
                            "subject": {"reference": "Patient/" + p["smith"]}})
    S["risk"] = create(srv, {"resourceType": "RiskAssessment", "status": "final",
                             "subject": {"reference": "Patient/" + p["jones"]},
                             "prediction": [{"probabilityDecimal": 0.25}]})


def test_every_kind(srv):
    p, o = S["p"], S["o"]
    P = "/fhir/Patient?"
    O = "/fhir/Observation?"
    # string: starts-with, accents, :exact, :contains
    check(matches(bundle(srv, P + "family=srchsm")) == sorted([p["smith"], p["smyth"]]), "string starts-with")
    check(matches(bundle(srv, P + q("address-city=geneve"))) == [p["smith"]], "string accent-insensitive")
    check(matches(bundle(srv, P + "family:exact=Srchjones")) == [p["jones"]], "string :exact")
    check(matches(bundle(srv, P + "family:contains=chjon")) == [p["jones"]], "string :contains")
    # token
    check(matches(bundle(srv, P + "gender=female&family=srch")) == [p["jones"]], "token")
    check(matches(bundle(srv, P + q("identifier=urn:srch|SR-2"))) == [p["smyth"]], "token system|code")
    check(matches(bundle(srv, P + q("identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|SR-1")))
          == [p["smith"]], "token :of-type")
    check(matches(bundle(srv, O + "code:text=systolic")) == [o["sys1"]], "token :text")
    check(matches(bundle(srv, P + "gender:not=male&family=srch")) == [p["jones"]], "token :not")
    check(matches(bundle(srv, P + "active=true&family=srch")) == [p["smith"]], "token boolean")
    # date
    check(matches(bundle(srv, P + "birthdate=ge1980&family=srch")) == sorted([p["smyth"], p["jones"]]), "date ge")
    check(matches(bundle(srv, O + "date=2024-01")) == [o["sys1"]], "date partial")
    # reference
    check(matches(bundle(srv, O + "subject=Patient/" + p["jones"])) == [o["concept"]], "reference")
    # number
    check(matches(bundle(srv, "/fhir/RiskAssessment?probability=0.25")) == [S["risk"]], "number")
    check(matches(bundle(srv, "/fhir/RiskAssessment?probability=gt0.3")) == [], "number prefix")
    # quantity
    check(matches(bundle(srv, O + q("value-quantity=gt140|http://unitsofmeasure.org|mm[Hg]"))) == [o["sys2"]],
          "quantity")
    # uri
    check(matches(bundle(srv, "/fhir/DocumentReference?" + q("location:below=http://docs.example/a")))
          == [S["doc"]], "uri :below")
    # composite
    check(matches(bundle(srv, O + q("code-value-quantity=http://loinc.org|8480-6$gt130"))) == [o["sys2"]],
          "composite code-value-quantity")
    check(matches(bundle(srv, O + q("component-code-value-quantity=8480-6$130"))) == [o["panel"]],
          "composite component-code-value-quantity")
    check(matches(bundle(srv, O + q("component-code-value-quantity=8462-4$130"))) == [],
          "composite pairs values within one component")
    check(matches(bundle(srv, O + q("combo-code-value-quantity=8480-6$ge130"))) == sorted([o["sys2"], o["panel"]]),
          "composite combo")
    check(matches(bundle(srv, O + q("code-value-concept=1234-5$http://snomed.info/sct|260385009")))
          == [o["concept"]], "composite code-value-concept")
    # phonetic (Soundex)
    b = bundle(srv, P + "phonetic=robbert&family=srch")   # Robert and Rupert sound alike (R163)
    check(matches(b) == sorted([p["smith"], p["smyth"]]), "phonetic", b)
    # :missing
    check(matches(bundle(srv, P + "family=srch&birthdate:missing=true")) == [], ":missing")
    # chains and _has
    check(matches(bundle(srv, O + "subject:Patient.name=srchsmyth")) == [o["sys2"]], "chain with type")
    check(matches(bundle(srv, O + "patient.birthdate=lt1980")) == sorted([o["sys1"], o["panel"]]), "chain")
    check(matches(bundle(srv, P + "_has:Observation:patient:code=1234-5")) == [p["jones"]], "_has")
    # _sort with several keys
    b = bundle(srv, P + "family=srch&_sort=gender,-birthdate")
    check([e["resource"]["id"] for e in b["entry"]] == [p["jones"], p["smyth"], p["smith"]], "_sort two keys", b)


def test_include_revinclude(srv):
    p, o = S["p"], S["o"]
    b = bundle(srv, "/fhir/Observation?code=8480-6&_include=Observation:subject")
    check(matches(b) == sorted([o["sys1"], o["sys2"]]), "include: matches", b)
    check(included(b) == sorted([p["smith"], p["smyth"]]), "include: subjects", b)
    b = bundle(srv, "/fhir/Patient?_id=%s&_revinclude=Observation:subject&_include:iterate=Observation:encounter"
               % p["smith"])
    check(matches(b) == [p["smith"]], "revinclude: match", b)
    check(included(b) == sorted([o["sys1"], o["panel"], S["enc"]]), "revinclude + iterate", b)


def test_access_through_search(srv):
    """A patient user and a receptionist never see data they may not read via _include,
    _revinclude, chains or _has."""
    p, o = S["p"], S["o"]
    ptok = srv.user_token("srch.pat.smith", "patient", patient=p["smith"])
    b = bundle(srv, "/fhir/Observation?_include=Observation:performer", token=ptok)
    check(matches(b) == sorted([o["sys1"], o["panel"]]), "patient sees own observations", b)
    check(p["smyth"] not in included(b), "performer Patient of another compartment not included", b)
    check(S["pr"] in included(b), "practitioner (not patient data) included", b)
    b = bundle(srv, "/fhir/Observation?performer:Patient.name=srchsmyth", token=ptok)
    check(matches(b) == [], "chain does not look into another patient's record", b)
    b = bundle(srv, "/fhir/Observation?performer:Patient.name=srchsmyth")
    check(matches(b) == [o["sys1"]], "the same chain for an all-access user", b)
    rtok = srv.user_token("srch.reception", "receptionist")
    b = bundle(srv, "/fhir/Patient?_id=%s&_revinclude=Observation:subject" % p["smith"], token=rtok)
    check(matches(b) == [p["smith"]] and included(b) == [], "receptionist: no clinical data via _revinclude", b)
    b = bundle(srv, "/fhir/Patient?_has:Observation:patient:code=1234-5", token=rtok)
    check(matches(b) == [], "receptionist: _has on clinical data matches nothing", b)
    b = bundle(srv, "/fhir/Observation?_id=%s&_include=Observation:subject" % o["sys1"], token=rtok, status=403)
    dtok = srv.user_token("srch.doctor", "doctor")
    b = bundle(srv, "/fhir/Practitioner?_id=%s&_revinclude=Observation:performer" % S["pr"], token=dtok)
    check(matches(b) == [S["pr"]] and included(b) == [], "doctor without care relation: nothing included", b)


def test_lenient_strict_and_shape(srv):
    p = S["p"]
    b = bundle(srv, "/fhir/Patient?family=srchjones&nosuch=1")
    check(matches(b) == [p["jones"]], "lenient is the default", b)
    out = [e for e in b["entry"] if e["search"]["mode"] == "outcome"]
    check(len(out) == 1 and out[0]["resource"]["resourceType"] == "OperationOutcome", "outcome entry", b)
    issue = out[0]["resource"]["issue"][0]
    check(issue["severity"] == "warning" and "nosuch" in issue["diagnostics"], "warning names it", b)
    self_url = [l["url"] for l in b["link"] if l["relation"] == "self"][0]
    check("nosuch" not in self_url, "self link lists only what was used: %s" % self_url)
    r = bundle(srv, "/fhir/Patient?family=srchjones&nosuch=1", headers={"Prefer": "handling=strict"}, status=400)
    check(r.json()["resourceType"] == "OperationOutcome" and "nosuch" in r.text, "strict -> 400", r)
    r = bundle(srv, "/fhir/Patient?birthdate=notadate", status=400)
    b = bundle(srv, "/fhir/Patient?_id=%s&_elements=birthDate" % p["jones"])
    res = b["entry"][0]["resource"]
    check("birthDate" in res and "name" not in res and "gender" not in res, "_elements", b)
    check(any(t.get("code") == "SUBSETTED" for t in res["meta"].get("tag", [])), "SUBSETTED tag", b)
    b = bundle(srv, "/fhir/Observation?_id=%s&_summary=true" % S["o"]["sys1"])
    res = b["entry"][0]["resource"]
    check("code" in res and "status" in res and "valueQuantity" not in res, "_summary=true", b)
    b = bundle(srv, "/fhir/Patient?family=srch&_summary=count")
    check(b["total"] == 3 and "entry" not in b, "_summary=count", b)
    cs = srv.get("/fhir/metadata").json()
    ext = cs["rest"][0].get("extension", [])
    cov = [x["valueString"] for x in ext if x["url"].endswith("search-coverage")]
    check(cov and float(cov[0].split("%")[0]) > 95.0, "coverage in the CapabilityStatement: %s" % cov)
    obs = [x for x in cs["rest"][0]["resource"] if x["type"] == "Observation"][0]
    names = {x["name"]: x["type"] for x in obs["searchParam"]}
    check(names.get("code-value-quantity") == "composite", "composites listed")
    loc = [x for x in cs["rest"][0]["resource"] if x["type"] == "Location"][0]
    check("near" not in {x["name"] for x in loc["searchParam"]}, "unsupported params not listed")


def test_paging_with_concurrent_inserts(srv):
    fam = "Srchpage"
    for i in range(9):
        create(srv, {"resourceType": "Patient", "name": [{"family": fam, "given": ["G%d" % i]}],
                     "birthDate": "2001-01-%02d" % (i + 1)})
    stop = threading.Event()
    errors = []

    def writer():
        n = 0
        while not stop.is_set() and n < 40:
            r = srv.post("/fhir/Patient", {"resourceType": "Patient", "name": [{"family": fam, "given": ["W%d" % n]}]},
                         token=tok())
            if r.status != 201:
                errors.append(r)
            n += 1

    for sort in ("", "&_sort=-birthdate"):
        b = bundle(srv, "/fhir/Patient?family=%s&_count=2%s" % (fam.lower(), sort))
        total = b["total"]
        seen = matches(b)
        t = threading.Thread(target=writer)
        t.start()
        pages = 1
        try:
            while True:
                nxt = [l["url"] for l in b["link"] if l["relation"] == "next"]
                if not nxt:
                    break
                # and one more create right before each page, deterministically
                create(srv, {"resourceType": "Patient", "name": [{"family": fam, "given": ["X"]}]})
                u = urllib.parse.urlsplit(nxt[0])
                check("_snapshot=" in u.query, "next link carries the snapshot: %s" % nxt[0])
                b = bundle(srv, u.path + "?" + u.query)
                check(b["total"] == total, "total stable while writes happen (%d vs %d)" % (b["total"], total), b)
                seen += matches(b)
                pages += 1
                check(pages < 20, "paging terminates")
        finally:
            stop.set()
            t.join()
            stop.clear()
        check(not errors, "writer ok: %s" % errors[:1])
        check(len(seen) == total and len(set(seen)) == total, "every resource once: %d seen, total %d"
              % (len(seen), total))
        prev = [l for l in b["link"] if l["relation"] == "previous"]
        check(prev, "previous link on the last page", b)


if __name__ == "__main__":
    mt.main(globals())
