"""Black-box tests of the HTTP layer: health, metrics, OpenAPI, error shapes, limits, auth
failures, request ids, CORS, keep-alive and graceful shutdown — against the real binary."""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

ORIGIN = "https://app.example"
SERVER_ARGS = ["--cors-origins", ORIGIN, "--max-header", "16384"]
FORGED = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
          "eyJzdWIiOiIxIiwicm9sZSI6ImFkbWluIiwiZXhwIjo0MTAyNDQ0ODAwfQ."
          "c2lnbmF0dXJlLXRoYXQtaXMtbm90LXZhbGlk")


def raw_exchange(srv, data, read_limit=65536):
    """Send raw bytes, read until the server closes or a full response head+body arrives."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while len(out) < read_limit:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
        return out
    finally:
        s.close()


def status_of(raw):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else None


def check_security_headers(r, json_body=True):
    mt.check(r.header("x-content-type-options") == "nosniff", "nosniff header", r)
    mt.check(r.header("x-request-id"), "X-Request-Id header", r)
    if json_body:
        mt.check("default-src 'none'" in (r.header("content-security-policy") or ""), "CSP on JSON", r)
        mt.check(r.header("cache-control") == "no-store", "Cache-Control: no-store", r)


def test_healthz(srv):
    r = srv.get("/healthz")
    mt.check(r.status == 200 and r.text.strip() == "ok", "GET /healthz", r)
    check_security_headers(r, json_body=False)
    r = srv.request("HEAD", "/healthz")
    mt.check(r.status == 200 and r.body == b"", "HEAD /healthz", r)


def test_readyz(srv):
    r = srv.get("/readyz")
    mt.check(r.status == 200, "GET /readyz", r)


def test_metrics_format(srv):
    srv.get("/healthz")
    r = srv.get("/metrics")
    mt.check(r.status == 200, "GET /metrics", r)
    mt.check(r.header("content-type", "").startswith("text/plain"), "metrics content type", r)
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? '
                        r'(-?[0-9.]+(e[+-]?[0-9]+)?|NaN|\+Inf|-Inf)$')
    types = {}
    for line in r.text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            name = line.split()[2]
            mt.check(name not in types, "TYPE line for %s appears once" % name)
            types[name] = line.split()[3]
            continue
        if line.startswith("#"):
            continue
        mt.check(sample.match(line), "metrics line is valid exposition text: %r" % line)
    mt.check(types.get("medcore_http_requests_total") == "counter", "request counter family", r)
    mt.check(types.get("medcore_http_request_duration_seconds") == "histogram", "duration histogram", r)
    mt.check(re.search(r'medcore_http_requests_total\{method="GET",route="/healthz",status="200"\} [1-9]', r.text),
             "healthz requests counted", r)
    mt.check("medcore_process_resident_memory_bytes" in r.text, "RSS gauge", r)


def test_openapi(srv):
    r = srv.get("/api/v1/openapi.json")
    mt.check(r.status == 200, "GET openapi.json", r)
    doc = r.json()
    mt.check(str(doc.get("openapi", "")).startswith("3.0"), "OpenAPI 3.0 document", r)
    paths = doc["paths"]
    api_paths = [p for p in paths if p.startswith("/api/v1/")]
    mt.check("/api/v1/openapi.json" in paths, "openapi lists itself")
    mt.check(len(api_paths) >= 2, "openapi lists /api/v1 paths: %s" % api_paths)
    mt.check("bearerAuth" in doc["components"]["securitySchemes"], "bearer scheme")
    for p, item in paths.items():
        params = re.findall(r"\{([^}]+)\}", p)
        for method, op in item.items():
            mt.check("responses" in op and "summary" in op, "%s %s has summary and responses" % (method, p))
            names = [x["name"] for x in op.get("parameters", []) if x.get("in") == "path"]
            mt.check(names == params, "%s %s path params %s == %s" % (method, p, names, params))
    mt.check(paths["/healthz"]["get"]["security"] == [], "healthz is public")
    if "/api/v1/auth/me" in paths:
        mt.check(paths["/api/v1/auth/me"]["get"]["security"] == [{"bearerAuth": []}], "me needs a token")


def test_not_found_shapes(srv):
    r = srv.get("/api/v1/no-such-thing")
    mt.check(r.status == 404, "unknown /api/v1 path", r)
    j = r.json()
    mt.check(j["success"] is False and j["error"]["code"] == "NOT_FOUND", "404 envelope", r)
    mt.check("timestamp" in j["meta"] and "version" in j["meta"], "404 envelope meta", r)
    check_security_headers(r)
    r = srv.get("/fhir/Patient/1/_history/2/extra/more")
    mt.check(r.status == 404, "unknown /fhir path", r)
    mt.check(r.json()["resourceType"] == "OperationOutcome", "FHIR 404 is an OperationOutcome", r)
    mt.check(r.header("content-type", "").startswith("application/fhir+json"), "fhir content type", r)


def test_method_not_allowed(srv):
    r = srv.delete("/healthz")
    mt.check(r.status == 405, "DELETE /healthz", r)
    mt.check("GET" in (r.header("allow") or ""), "Allow lists GET", r)
    r = srv.request("PATCH", "/api/v1/openapi.json")
    mt.check(r.status == 405 and r.json()["error"]["code"] == "METHOD_NOT_ALLOWED", "405 envelope", r)


def test_path_traversal(srv):
    for path in ("/api/v1/../healthz", "/api/v1/%2e%2e/healthz", "/fhir/Patient/a%2Fb", "/fhir/Patient/a%00b",
                 "/api/v1/%zz"):
        r = srv.get(path)
        mt.check(r.status in (400, 404), "traversal %s refused" % path, r)
        mt.check(r.status != 200, "traversal %s not served" % path, r)
    r = srv.get("/healthz/../metrics")
    mt.check(r.status == 400, "dot-dot segment is a 400", r)


def test_body_too_large(srv):
    # over the route's own limit (login takes 4096 bytes)
    r = srv.post("/api/v1/auth/login", {"username": "x", "password": "y" * 6000})
    mt.check(r.status == 413, "body over the route limit", r)
    mt.check(r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE", "413 envelope", r)
    # over --max-body, announced by Content-Length: refused without reading the body
    head = (b"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\n"
            b"Content-Length: 50000000\r\n\r\n")
    raw = raw_exchange(srv, head)
    mt.check(status_of(raw) == 413, "50 MB Content-Length refused at once: %r" % raw[:200])


def test_headers_too_large(srv):
    big = "a" * 40000
    raw = raw_exchange(srv, ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % big).encode())
    mt.check(status_of(raw) == 431, "huge header block gives 431: %r" % raw[:200])


def test_wrong_content_type(srv):
    r = srv.post("/api/v1/auth/login", "username=a&password=b", content_type="application/x-www-form-urlencoded")
    mt.check(r.status == 415, "form body on a JSON write route", r)
    mt.check(r.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE", "415 envelope", r)
    r = srv.post("/api/v1/auth/login", '{"username":"a"}', content_type="text/plain")
    mt.check(r.status == 415, "text/plain body", r)


def test_unauthenticated(srv):
    r = srv.get("/api/v1/auth/me")
    mt.check(r.status == 401, "no token", r)
    mt.check((r.header("www-authenticate") or "").startswith("Bearer"), "WWW-Authenticate: Bearer", r)
    mt.check(r.json()["error"]["code"] == "UNAUTHORIZED", "401 envelope", r)
    r = srv.get("/api/v1/auth/me", token=FORGED)
    mt.check(r.status == 401, "forged token", r)
    mt.check("invalid_token" in (r.header("www-authenticate") or ""), "invalid_token", r)
    r = srv.get("/api/v1/auth/me", headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    mt.check(r.status == 401, "basic auth is not accepted", r)
    r = srv.get("/fhir/Patient/123", token="x" * 5000)
    mt.check(r.status == 401, "absurd token", r)
    mt.check(r.json()["resourceType"] == "OperationOutcome", "FHIR 401 is an OperationOutcome", r)


def test_login_and_token(srv):
    srv.add_user("http.doctor", "doctor")
    tok = srv.login("http.doctor")
    r = srv.get("/api/v1/auth/me", token=tok)
    mt.check(r.status == 200, "me with a real token", r)
    mt.check(r.json()["data"]["username"] == "http.doctor", "me is the doctor", r)
    # a doctor lacks admin:users
    r = srv.get("/api/v1/admin/users", token=tok)
    mt.check(r.status == 403 and r.json()["error"]["code"] == "FORBIDDEN", "403 without the permission", r)
    # a tampered token is refused
    r = srv.get("/api/v1/auth/me", token=tok[:-2] + ("AA" if not tok.endswith("AA") else "BB"))
    mt.check(r.status == 401, "tampered signature", r)


def test_request_id(srv):
    r = srv.get("/healthz", headers={"X-Request-Id": "trace-42.a_b"})
    mt.check(r.header("x-request-id") == "trace-42.a_b", "client request id echoed", r)
    r = srv.get("/healthz", headers={"X-Request-Id": "bad id<script>"})
    rid = r.header("x-request-id") or ""
    mt.check(rid and rid != "bad id<script>" and re.match(r"^[A-Za-z0-9._-]{8,64}$", rid), "bad id replaced", r)
    r = srv.get("/healthz", headers={"X-Request-Id": "x" * 65})
    mt.check(r.header("x-request-id") != "x" * 65, "over-long id replaced", r)
    lines = srv.wait_log_lines("request", lambda x: x.get("request_id") == "trace-42.a_b")
    mt.check(lines and lines[0]["route"] == "/healthz" and lines[0]["status"] == 200, "request log line: %s" % lines)


def test_log_uses_route_pattern(srv):
    srv.get("/fhir/Patient/secret-id-123", headers={"X-Request-Id": "pattern-check"})
    lines = srv.wait_log_lines("request", lambda x: x.get("request_id") == "pattern-check")
    mt.check(lines, "request logged")
    mt.check("secret-id-123" not in json.dumps(lines), "raw path (ids) not logged: %s" % lines)
    mt.check(lines[0]["route"] == "/fhir/{type}/{id}", "route pattern logged: %s" % lines)


def test_cors(srv):
    r = srv.request("OPTIONS", "/api/v1/auth/me",
                    headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                             "Access-Control-Request-Headers": "authorization"})
    mt.check(r.status == 204, "preflight", r)
    mt.check(r.header("access-control-allow-origin") == ORIGIN, "allowed origin echoed", r)
    mt.check("GET" in (r.header("access-control-allow-methods") or ""), "allowed methods", r)
    mt.check("authorization" in (r.header("access-control-allow-headers") or "").lower(), "allowed headers", r)
    mt.check("Origin" in (r.header("vary") or ""), "Vary: Origin", r)
    r = srv.request("OPTIONS", "/api/v1/auth/me",
                    headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    mt.check(r.header("access-control-allow-origin") is None, "foreign origin gets no ACAO", r)
    r = srv.get("/healthz", headers={"Origin": ORIGIN})
    mt.check(r.header("access-control-allow-origin") == ORIGIN, "simple request ACAO", r)
    r = srv.get("/healthz", headers={"Origin": "https://evil.example"})
    mt.check(r.header("access-control-allow-origin") is None, "simple request, foreign origin", r)
    r = srv.request("OPTIONS", "/api/v1/nothing-here", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    mt.check(r.status == 404, "preflight on an unknown path", r)


def test_keep_alive(srv):
    conn = srv.connect()
    try:
        r1 = mt.send(conn, "GET", "/healthz")
        sock1 = conn.sock
        mt.check(r1.status == 200 and sock1 is not None, "first request", r1)
        mt.check((r1.header("connection") or "").lower() != "close", "no Connection: close", r1)
        local1 = sock1.getsockname()
        r2 = mt.send(conn, "GET", "/readyz")
        mt.check(r2.status == 200, "second request", r2)
        mt.check(conn.sock is sock1 and conn.sock.getsockname() == local1, "same TCP connection reused")
        r3 = mt.send(conn, "GET", "/api/v1/nope")
        mt.check(r3.status == 404 and conn.sock is sock1, "keep-alive survives an error reply", r3)
        r4 = mt.send(conn, "POST", "/api/v1/auth/login", {"username": "nobody", "password": "Wrong-password-1!"})
        mt.check(r4.status in (401, 423, 503), "login failure", r4)
        mt.check(conn.sock is sock1, "keep-alive survives a POST with a body")
    finally:
        conn.close()


def test_serve_help_and_bad_flag(srv):
    p = subprocess.run([mt.binary(), "serve", "--help"], capture_output=True, text=True, timeout=30)
    mt.check(p.returncode == 0 and "--listen" in p.stdout and "--max-body" in p.stdout, "serve --help: %r" % p)
    p = subprocess.run([mt.binary(), "serve", "--no-such-flag", "1"], capture_output=True, text=True, timeout=30)
    mt.check(p.returncode != 0 and "no-such-flag" in p.stderr, "unknown flag refused: %r" % p)


def test_cold_start_and_sigterm(srv):
    with mt.Server() as other:
        mt.check(other.port != srv.port, "a second server on its own port")
        mt.check(other.ready_seconds < 3.0, "ready in %.3fs" % other.ready_seconds)
        listening = other.log_lines("listening")
        mt.check(listening and listening[0]["host"] == "127.0.0.1", "listening line has the host")
        print("      cold start to ready: %.0f ms (server says %s ms to listening)"
              % (other.ready_seconds * 1e3, listening[0].get("startup_ms")))
        # a request in flight when SIGTERM arrives still gets its answer (a login: argon2id takes
        # ~100 ms on the login pool), and an idle keep-alive connection does not hold the exit
        other.add_user("inflight.nurse", "nurse")
        idle = other.connect()
        mt.send(idle, "GET", "/healthz")
        result = {}

        def slow_login():
            try:
                result["r"] = other.login_response("inflight.nurse")
            except Exception as e:  # reported below
                result["e"] = e

        conn_up = threading.Thread(target=slow_login)
        conn_up.start()
        time.sleep(0.05)
        other.stop()
        conn_up.join(10)
        idle.close()
        mt.check("r" in result, "in-flight login answered during shutdown: %r" % result)
        mt.check(result["r"].status == 200, "in-flight login succeeded", result["r"])
    mt.check(other.exit_code == 0, "exit 0 after SIGTERM")


if __name__ == "__main__":
    mt.main(globals(), server_args=SERVER_ARGS)
