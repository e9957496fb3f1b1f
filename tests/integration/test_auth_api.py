"""Auth over HTTP against the real server: login, refresh rotation and replay detection, logout,
lockout, TOTP enrolment and enforcement (codes computed here per RFC 6238), break-the-glass, and the
error envelope for bad credentials and bad input."""
import base64
import hashlib
import hmac
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check


def totp(secret_b32, step_offset=0):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8), casefold=True)
    counter = int(time.time()) // 30 + step_offset
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000
    return "%06d" % code


def test_login_shape(srv):
    srv.add_user("nurse.joy", "nurse")
    r = srv.login_response("nurse.joy")
    check(r.status == 200, "login", r)
    d = r.json()["data"]
    check(d["token_type"] == "Bearer" and d["expires_in"] == 900, "token type and 15-minute lifetime", r)
    check(d["access_token"].count(".") == 2 and len(d["refresh_token"]) >= 40, "token shapes", r)
    check(r.header("cache-control") == "no-store", "tokens are not cached", r)
    me = srv.get("/api/v1/auth/me", token=d["access_token"])
    check(me.status == 200 and me.json()["data"]["role"] == "nurse", "me", me)


def test_bad_credentials(srv):
    r1 = srv.login_response("nurse.joy", "Wrong-Password-1!")
    r2 = srv.login_response("no.such.user", "Wrong-Password-1!")
    check(r1.status == 401 and r2.status == 401, "401 for both", r1)
    check(r1.json()["error"]["message"] == r2.json()["error"]["message"], "same message: no user enumeration", r2)
    r = srv.post("/api/v1/auth/login", "{\"username\": ", content_type="application/json")
    check(r.status == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR", "malformed JSON", r)
    r = srv.post("/api/v1/auth/login", {"username": 5, "password": "x"})
    check(r.status == 400, "wrong type", r)


def test_refresh_rotation_and_replay(srv):
    s = srv.login_session("nurse.joy")
    r = srv.post("/api/v1/auth/refresh", {"refresh_token": s["refresh_token"]})
    check(r.status == 200, "refresh", r)
    s2 = r.json()["data"]
    check(s2["refresh_token"] != s["refresh_token"], "rotated", r)
    r = srv.post("/api/v1/auth/refresh", {"refresh_token": s["refresh_token"]})
    check(r.status == 401, "replayed refresh token is refused", r)
    r = srv.post("/api/v1/auth/refresh", {"refresh_token": s2["refresh_token"]})
    check(r.status == 401, "replay revoked the whole family", r)


def test_logout(srv):
    s = srv.login_session("nurse.joy")
    r = srv.post("/api/v1/auth/logout", {"refresh_token": s["refresh_token"]}, token=s["access_token"])
    check(r.status in (200, 204), "logout", r)
    r = srv.post("/api/v1/auth/refresh", {"refresh_token": s["refresh_token"]})
    check(r.status == 401, "refresh after logout", r)


def test_lockout(srv):
    srv.add_user("clumsy", "nurse")
    for _ in range(5):
        srv.login_response("clumsy", "Not-The-Password-9!")
    r = srv.login_response("clumsy")
    check(r.status == 423 and r.json()["error"]["code"] == "ACCOUNT_LOCKED", "locked even with the right password", r)


def test_mfa(srv):
    srv.add_user("mfa.doc", "doctor")
    tok = srv.login("mfa.doc")
    r = srv.post("/api/v1/auth/mfa/enroll", {}, token=tok)
    check(r.status == 200, "enroll", r)
    secret = r.json()["data"]["secret"]
    check(r.json()["data"]["otpauth_uri"].startswith("otpauth://totp/"), "otpauth uri", r)
    r = srv.post("/api/v1/auth/mfa/verify", {"code": "000000" if totp(secret) != "000000" else "111111"}, token=tok)
    check(r.status in (400, 401), "wrong code refused", r)
    code = totp(secret)
    r = srv.post("/api/v1/auth/mfa/verify", {"code": code}, token=tok)
    check(r.status == 200, "verify enables MFA", r)
    r = srv.login_response("mfa.doc")
    check(r.status == 401 and r.json()["error"]["details"]["code"] == "MFA_REQUIRED", "TOTP now required", r)
    # the code used to enable cannot be replayed; the next step's code (within the window) works
    r = srv.login_response("mfa.doc", totp=code)
    check(r.status == 401, "replayed code refused", r)
    r = srv.login_response("mfa.doc", totp=totp(secret, 1))
    check(r.status == 200, "login with a fresh TOTP code", r)


def test_mfa_roles_flagged(srv):
    srv.add_user("root", "admin")
    r = srv.login_response("root")
    check(r.status == 200 and r.json()["data"]["mfa_enrollment_required"] is True,
          "admin without TOTP must enrol", r)


def test_break_glass(srv):
    rec = srv.user_token("desk2", "receptionist")
    r = srv.post("/api/v1/patients/register", {"firstName": "Eve", "lastName": "Emergency",
                                                 "birthDate": "1955-03-03"}, token=rec)
    check(r.status == 201, "register", r)
    pid = r.json()["data"]["id"]
    er = srv.user_token("er.doc", "doctor")
    r = srv.get("/fhir/Patient/" + pid, token=er)
    check(r.status == 403, "not in care", r)
    r = srv.post("/api/v1/auth/break-glass", {"patient": pid, "reason": "short"}, token=er)
    check(r.status == 400, "a real reason is required", r)
    r = srv.post("/api/v1/auth/break-glass", {"patient": pid, "reason": "unconscious patient in ED, no care team"},
                 token=er)
    check(r.status in (200, 201), "break the glass", r)
    r = srv.get("/fhir/Patient/" + pid, token=er)
    check(r.status == 200, "reads under break-the-glass", r)
    r = srv.post("/api/v1/auth/break-glass", {"patient": pid, "reason": "I am curious about this patient"},
                 token=rec)
    check(r.status == 403, "receptionists cannot break the glass", r)


def test_admin_and_forbidden(srv):
    nurse = srv.login("nurse.joy")
    r = srv.get("/api/v1/admin/users", token=nurse)
    check(r.status == 403 and r.json()["error"]["code"] == "FORBIDDEN", "nurse is not an admin", r)
    r = srv.post("/api/v1/admin/users", {"username": "x", "password": "short", "role": "doctor"}, token=nurse)
    check(r.status == 403, "nurse cannot create users", r)


def test_auditor_reads_auditevents(srv):
    aud = srv.user_token("the.auditor", "auditor")
    r = srv.get("/fhir/AuditEvent?agent=er.doc", token=aud)
    check(r.status == 200 and r.json()["resourceType"] == "Bundle", "AuditEvent search", r)
    check(len(r.json().get("entry", [])) >= 2, "the break-the-glass doctor's actions are there", r)
    nurse = srv.login("nurse.joy")
    r = srv.get("/fhir/AuditEvent", token=nurse)
    check(r.status == 403, "a nurse cannot read the audit log", r)


if __name__ == "__main__":
    mt.main(globals())
