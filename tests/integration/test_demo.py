"""test_demo — `medcore demo` end to end (python3 stdlib only).

Loads 300 demo patients into a fresh database, starts the real server on it and checks, over HTTP,
what docs/demo.md promises: the documented accounts log in, 300 Patients with MRNs and national
ids exist, accented names are found accent-insensitively, the doctor reaches exactly the care-team
patients, the patient user reaches their own record, --if-empty adds nothing, bad options fail.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

N = 300
MRN = re.compile(r"^MRN\d{8}$")


def documented_accounts():
    """{username: (role, password)} from the DEMO ONLY table of docs/demo.md."""
    src = os.environ.get("MEDCORE_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    out = {}
    with open(os.path.join(src, "docs", "demo.md"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^\| `([^`]+)` \| (\w+) \| `([^`]+)` \|", line)
            if m:
                out[m.group(1)] = (m.group(2), m.group(3))
    mt.check(len(out) == 12, "docs/demo.md lists 12 demo accounts (found %d)" % len(out))
    return out


def demo(db_url, *args):
    return subprocess.run([mt.binary(), "demo", "--db", db_url] + list(args), capture_output=True,
                          text=True, timeout=300)


def fold(s):
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).lower()


def total(srv, path, token):
    r = srv.get(path, token=token)
    mt.check(r.status == 200, "GET " + path, r)
    return r.json().get("total")


def main():
    accounts = documented_accounts()
    tmp = tempfile.mkdtemp(prefix="medcore-demo-test-")
    db_url = mt.new_db_url(tmp)   # SQLite file or a fresh PostgreSQL database (MEDCORE_TEST_BACKEND)
    try:
        # ---- bad options are refused before touching anything ----
        for bad in (["--patients", "0"], ["--patients", "abc"], ["--patients", "2000000"],
                    ["--seed", "-1"], ["--bogus"], ["--patients"]):
            p = demo(db_url, *bad)
            mt.check(p.returncode == 2, "demo %s exits 2 (got %d)" % (" ".join(bad), p.returncode))
        if mt.backend() == "sqlite":
            mt.check(not os.path.exists(os.path.join(tmp, "t.db")), "bad options create no database")

        # ---- the load ----
        p = demo(db_url, "--patients", str(N))
        mt.check(p.returncode == 0, "demo load exits 0: " + p.stderr[-2000:])
        mt.check("DEMO ONLY" in p.stdout, "the account table is marked DEMO ONLY")
        for user, (role, pw) in accounts.items():
            mt.check(re.search(r"^\s*%s\s+%s\s+%s\s*$" % (re.escape(user), re.escape(role), re.escape(pw)),
                               p.stdout, re.M), "printed table has %s / %s as documented" % (user, pw))
        mt.check(re.search(r"patients loaded in [0-9.]+ s", p.stdout), "load time is reported")

        srv = mt.Server(tmpdir=tmp)
        mt.check(srv.db_url == db_url, "helper uses the demo database")
        with srv:
            integ = srv.login("integration", accounts["integration"][1])

            # 300 patients, each with an MRN and a national id
            mt.check(total(srv, "/fhir/Patient?_summary=count", integ) == N, "%d Patients exist" % N)
            r = srv.get("/fhir/Patient?_count=%d" % N, token=integ)
            mt.check(r.status == 200, "list patients", r)
            pats = [e["resource"] for e in r.json().get("entry", [])]
            mt.check(len(pats) == N, "listing returns %d patients (got %d)" % (N, len(pats)))
            mrns = set()
            for pat in pats:
                ids = pat.get("identifier", [])
                mrn = [i["value"] for i in ids if i.get("system") == "urn:medcore:mrn"]
                mt.check(len(mrn) == 1 and MRN.match(mrn[0]), "patient has one MRN", pat.get("id"))
                mrns.add(mrn[0])
                mt.check(any(i.get("system") == "urn:medcore:demo:national-id" for i in ids),
                         "patient has a national identifier")
                mt.check(pat.get("gender") in ("male", "female", "other", "unknown"), "gender")
                bd = pat.get("birthDate", "")
                mt.check("1930" <= bd[:4] <= "2024", "birth date within 1930-2024: " + bd)
                addr = pat["address"][0]
                for k in ("line", "city", "postalCode", "country"):
                    mt.check(addr.get(k), "address has " + k)
                mt.check(any(t.get("system") == "phone" for t in pat.get("telecom", [])), "has a phone")
            mt.check(len(mrns) == N, "MRNs are unique")

            # diversity: accented names exist and are found accent-insensitively
            families = [pat["name"][0]["family"] for pat in pats]
            accented = [f for f in families if fold(f) != f.lower()]
            mt.check(len(accented) >= 10, "at least 10 accented family names among %d (got %d)" % (N, len(accented)))
            target = accented[0]
            q = urllib.parse.quote(fold(target))
            r = srv.get("/fhir/Patient?family=%s&_count=%d" % (q, N), token=integ)
            mt.check(r.status == 200, "accent-insensitive search", r)
            found = [e["resource"]["name"][0]["family"] for e in r.json().get("entry", [])]
            mt.check(target in found, "family=%s finds %s" % (fold(target), target))
            mt.check(len(set(families)) >= 100, "many distinct family names")

            # practitioners with NPIs
            r = srv.get("/fhir/Practitioner?identifier=http://hl7.org/fhir/sid/us-npi%7C&_count=50", token=integ)
            mt.check(r.status == 200, "search practitioners", r)
            mt.check(r.json().get("total") == 7, "7 practitioners with an NPI", r)

            # the doctor: linked to a practitioner, reaches the 50 care-team patients only
            doc = srv.login("doctor", accounts["doctor"][1])
            me = srv.get("/api/v1/auth/me", token=doc)
            mt.check(me.status == 200 and me.json()["data"].get("practitioner_id"), "doctor linked to a practitioner", me)
            mt.check(total(srv, "/fhir/Patient?_summary=count", doc) == 50, "doctor's search sees 50 care-team patients")
            r = srv.get("/fhir/Patient?_count=50", token=doc)
            care = [e["resource"]["id"] for e in r.json().get("entry", [])]
            mt.check(len(care) == 50, "doctor lists 50 patients", r)
            r = srv.get("/fhir/Patient/" + care[0], token=doc)
            mt.check(r.status == 200, "doctor reads a care-team patient", r)
            other = next(pat["id"] for pat in pats if pat["id"] not in set(care))
            r = srv.get("/fhir/Patient/" + other, token=doc)
            mt.check(r.status in (403, 404), "doctor cannot read a patient outside the care team", r)

            nurse = srv.login("nurse", accounts["nurse"][1])
            r = srv.get("/fhir/Patient/" + care[-1], token=nurse)
            mt.check(r.status == 200, "nurse reads a care-team patient", r)

            # the patient user: linked, reads their own record
            pt = srv.login("patient", accounts["patient"][1])
            me = srv.get("/api/v1/auth/me", token=pt).json()["data"]
            mt.check(me.get("patient_id") in care, "patient user is linked to a care-team patient", me)
            r = srv.get("/fhir/Patient/" + me["patient_id"], token=pt)
            mt.check(r.status == 200, "patient reads own record", r)

            # every other documented account logs in
            for user in ("pharmacist", "lab_tech", "receptionist", "billing", "device", "analyst", "admin", "auditor"):
                r = srv.login_response(user, accounts[user][1])
                mt.check(r.status == 200, "login as " + user, r)

            # a second load: --if-empty does nothing, without it the load is refused
            p = demo(db_url, "--patients", "50", "--if-empty")
            mt.check(p.returncode == 0 and "demo data already present" in p.stdout, "--if-empty skips: " + p.stderr)
            p = demo(db_url, "--patients", "50")
            mt.check(p.returncode == 1, "a second load without --if-empty is refused")
            mt.check(total(srv, "/fhir/Patient?_summary=count", integ) == N, "still %d Patients" % N)
        print("test_demo: 1 passed, 0 failed")
        return 0
    except mt.TestFailure as e:
        print("FAIL: %s" % e)
        print("test_demo: 0 passed, 1 failed")
        return 1
    finally:
        if not os.environ.get("MEDCORE_TEST_KEEP"):
            if not db_url.startswith("sqlite:"):
                mt.pg_drop_db(db_url)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
