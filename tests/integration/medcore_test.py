"""medcore_test — shared helper for the black-box integration tests (python3 stdlib only).

Starts the real binary ($MEDCORE_BIN) on a free loopback port with a fresh SQLite database in a
temporary directory, waits until /readyz answers 200, speaks HTTP with http.client, creates users
through `medcore user add`, logs in through POST /api/v1/auth/login, and stops the server with
SIGTERM, checking that it exits 0.

    import medcore_test as mt

    def test_something(srv):                 # srv: a started mt.Server
        r = srv.request("GET", "/healthz")
        mt.check(r.status == 200, "healthz", r)

    if __name__ == "__main__":
        mt.main(globals())                   # runs every test_* function, one server for all

Or by hand:
    with mt.Server() as srv:
        srv.add_user("dr.house", "doctor")   # password: mt.PASSWORD
        tok = srv.login("dr.house")
        r = srv.request("GET", "/api/v1/auth/me", token=tok)
        r.json()["data"]["username"]

Environment: MEDCORE_BIN (required), MEDCORE_TEST_KEEP=1 keeps the temporary directory,
MEDCORE_TEST_VERBOSE=1 echoes the server's log lines.

Backends: MEDCORE_TEST_BACKEND=sqlite (default) or postgres. With postgres, MEDCORE_TEST_PG is a base URL
(e.g. postgres://postgres@127.0.0.1:55432/postgres, see scripts/pg-test-cluster.sh) and each Server gets
a fresh database t_<random> (CREATE DATABASE via psql), named in <tmpdir>/pg_database so that a second
Server(tmpdir=...) reuses it; the Server that owns the tmpdir drops it at cleanup. srv.sql(query, *params)
reads or changes the database directly on either backend (params replace ? marks).
"""
import http.client
import json
import os
import secrets
import sqlite3
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

PASSWORD = "Correct-Horse-42!"   # meets the password policy (12+, upper, digit, special)
START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0


class TestFailure(AssertionError):
    pass


def check(cond, what, resp=None):
    """Fail with a readable message (and the response, if given) unless cond holds."""
    if not cond:
        extra = ""
        if resp is not None:
            extra = "\n  -> %s" % resp
        raise TestFailure(what + extra)


def binary():
    b = os.environ.get("MEDCORE_BIN")
    if not b or not os.path.exists(b):
        raise SystemExit("MEDCORE_BIN must name the medcore binary (got %r)" % b)
    return b


class Response:
    """An HTTP answer: status, headers (lower-case names; repeated ones joined by ', '), body bytes."""

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        body = self.text
        if len(body) > 600:
            body = body[:600] + "..."
        return "<%d %s %s>" % (self.status, self.reason, body)


def _read(resp):
    headers = {}
    for k, v in resp.getheaders():
        k = k.lower()
        headers[k] = headers[k] + ", " + v if k in headers else v
    return Response(resp.status, resp.reason, headers, resp.read())


def send(conn, method, path, body=None, headers=None, token=None, content_type=None):
    """One request on an existing http.client connection (for keep-alive tests)."""
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = json.dumps(body).encode("utf-8")
        if content_type is None:
            content_type = "application/fhir+json" if path.startswith("/fhir") else "application/json"
    if content_type is not None and "Content-Type" not in hdrs:
        hdrs["Content-Type"] = content_type
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    conn.request(method, path, body=data, headers=hdrs)
    return _read(conn.getresponse())


def backend():
    """'sqlite' or 'postgres' (MEDCORE_TEST_BACKEND)."""
    b = os.environ.get("MEDCORE_TEST_BACKEND", "sqlite") or "sqlite"
    if b not in ("sqlite", "postgres"):
        raise SystemExit("MEDCORE_TEST_BACKEND must be sqlite or postgres (got %r)" % b)
    return b


def pg_base():
    base = os.environ.get("MEDCORE_TEST_PG")
    if not base:
        raise SystemExit("MEDCORE_TEST_BACKEND=postgres needs MEDCORE_TEST_PG (a base postgres:// URL)")
    return base


def pg_url(dbname, base=None):
    """The base URL with its database replaced by dbname (query string kept)."""
    base = base or pg_base()
    rest, q, query = base.partition("?")
    scheme, _, hostpath = rest.partition("://")
    host = hostpath.split("/", 1)[0]
    return "%s://%s/%s%s%s" % (scheme, host, dbname, q, query)


def psql(url, query, check_rc=True):
    """Run one query with psql (unaligned, tuples only); returns stdout."""
    p = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", query],
                       capture_output=True, text=True, timeout=120)
    if check_rc and p.returncode != 0:
        raise TestFailure("psql failed (%d): %s" % (p.returncode, p.stderr.strip()))
    return p.stdout


def pg_create_db():
    """A fresh, empty database with C collation; returns its URL."""
    name = "t_" + secrets.token_hex(6)
    psql(pg_base(), "CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'" % name)
    return pg_url(name)


def pg_drop_db(url):
    name = url.partition("?")[0].rsplit("/", 1)[1]
    psql(pg_base(), "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name, check_rc=False)


def new_db_url(tmpdir):
    """The database of a test directory on the selected backend (created on first use)."""
    if backend() == "sqlite":
        return "sqlite:" + os.path.join(tmpdir, "t.db")
    marker = os.path.join(tmpdir, "pg_database")
    if os.path.exists(marker):
        with open(marker) as f:
            return f.read().strip()
    url = pg_create_db()
    with open(marker, "w") as f:
        f.write(url)
    return url


def _literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def db_sql(db_url, query, *params):
    """Run one SQL statement on db_url (either backend); rows as lists of strings/values.
    ? marks are replaced by params (quoted literals: for tests only)."""
    if db_url.startswith("sqlite:"):
        con = sqlite3.connect(db_url[len("sqlite:"):])
        try:
            rows = [list(r) for r in con.execute(query, params).fetchall()]
            con.commit()
            return rows
        finally:
            con.close()
    parts = query.split("?")
    if len(parts) != len(params) + 1:
        raise TestFailure("db_sql: %d ? marks, %d params" % (len(parts) - 1, len(params)))
    q = parts[0] + "".join(_literal(p) + rest for p, rest in zip(params, parts[1:]))
    out = psql(db_url, q)
    rows = []
    for line in out.splitlines():
        vals = []
        for v in line.split("|"):
            try:
                vals.append(int(v))
            except ValueError:
                vals.append(v)
        rows.append(vals)
    return rows


class Server:
    """The real server on 127.0.0.1:<free port> with its own database; a context manager."""

    def __init__(self, args=None, env=None, tmpdir=None, db_url=None):
        self.args = list(args or [])
        self.env = dict(os.environ)
        self.env.update(env or {})
        self._own_tmp = tmpdir is None
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="medcore-test-")
        self.db_url = db_url or new_db_url(self.tmpdir)   # db_url given: the caller owns that database
        self.proc = None
        self.port = None
        self.logs = []            # parsed JSON log lines (dicts); raw text for non-JSON lines
        self._lines_cv = threading.Condition()
        self._reader = None
        self.exit_code = None

    # -- life cycle --
    def start(self):
        cmd = [binary(), "serve", "--listen", "127.0.0.1:0", "--db", self.db_url] + self.args
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=self.env)
        self._reader = threading.Thread(target=self._read_logs, daemon=True)
        self._reader.start()
        deadline = t0 + START_TIMEOUT
        with self._lines_cv:
            while self.port is None:
                if self.proc.poll() is not None:
                    raise TestFailure("server exited with %s before listening; log:\n%s"
                                      % (self.proc.returncode, self.log_text()))
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise TestFailure("server did not log 'listening' in time; log:\n" + self.log_text())
                self._lines_cv.wait(min(left, 0.1))
        while True:
            try:
                r = self.request("GET", "/readyz")
                if r.status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise TestFailure("server never became ready; log:\n" + self.log_text())
            time.sleep(0.02)
        self.ready_seconds = time.monotonic() - t0
        return self

    def _read_logs(self):
        verbose = os.environ.get("MEDCORE_TEST_VERBOSE")
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if verbose:
                sys.stderr.write("  server: " + line + "\n")
            try:
                item = json.loads(line)
            except ValueError:
                item = line
            with self._lines_cv:
                self.logs.append(item)
                if isinstance(item, dict) and item.get("msg") == "listening" and "port" in item:
                    self.port = int(item["port"])
                self._lines_cv.notify_all()

    def log_text(self):
        return "\n".join(json.dumps(x) if isinstance(x, dict) else str(x) for x in list(self.logs))

    def log_lines(self, msg=None):
        """Parsed log lines, optionally only those whose msg equals msg."""
        return [x for x in list(self.logs) if isinstance(x, dict) and (msg is None or x.get("msg") == msg)]

    def wait_log_lines(self, msg, pred, timeout=5.0):
        """Log lines with msg for which pred(line) holds, waiting up to timeout for at least one:
        the server writes its request line as it answers, and our reader thread sees it a little
        later."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [x for x in self.log_lines(msg) if pred(x)]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)

    def stop(self, expect_code=0):
        """SIGTERM, wait, and check the exit code (default: 0). Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            code = self.proc.returncode if self.proc else None
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                raise TestFailure("server did not exit within %ss of SIGTERM" % STOP_TIMEOUT)
        if self._reader:
            self._reader.join(5)
        self.exit_code = code
        if expect_code is not None:
            check(code == expect_code, "server exit code %r, expected %r; log tail:\n%s"
                  % (code, expect_code, "\n".join(self.log_text().splitlines()[-20:])))
        return code

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def cleanup(self):
        self.kill()
        if self._own_tmp and not os.environ.get("MEDCORE_TEST_KEEP"):
            marker = os.path.join(self.tmpdir, "pg_database")
            if os.path.exists(marker):
                with open(marker) as f:
                    pg_drop_db(f.read().strip())
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def sql(self, query, *params):
        """Run one SQL statement on this server's database (see db_sql)."""
        return db_sql(self.db_url, query, *params)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.stop()
        finally:
            self.cleanup()
        return False

    # -- HTTP --
    def connect(self, timeout=30):
        """A new keep-alive connection (http.client.HTTPConnection)."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.port

    def request(self, method, path, body=None, headers=None, token=None, content_type=None):
        """One request on a fresh connection. body: dict/list (sent as JSON), str or bytes."""
        conn = self.connect()
        try:
            return send(conn, method, path, body, headers, token, content_type)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- users and tokens --
    def medcore(self, *args, stdin=None, check_rc=True):
        """Run `medcore <args...> --db <this db>`; returns CompletedProcess (text)."""
        cmd = [binary()] + list(args) + ["--db", self.db_url]
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=self.env, timeout=60)
        if check_rc:
            check(p.returncode == 0, "%s failed (%d): %s" % (" ".join(cmd[1:3]), p.returncode, p.stderr.strip()))
        return p

    def add_user(self, username, role, password=PASSWORD, patient=None, practitioner=None):
        args = ["user", "add", "--username", username, "--role", role, "--password-stdin"]
        if patient:
            args += ["--patient", patient]
        if practitioner:
            args += ["--practitioner", practitioner]
        self.medcore(*args, stdin=password + "\n")
        return username

    def login_response(self, username, password=PASSWORD, totp=None):
        body = {"username": username, "password": password}
        if totp is not None:
            body["totp"] = totp
        return self.post("/api/v1/auth/login", body)

    def login_session(self, username, password=PASSWORD, totp=None):
        """The login response's data object (access_token, refresh_token, ...)."""
        r = self.login_response(username, password, totp)
        check(r.status == 200, "login of %s" % username, r)
        return r.json()["data"]

    def login(self, username, password=PASSWORD, totp=None):
        """An access token for username."""
        return self.login_session(username, password, totp)["access_token"]

    def user_token(self, username, role, **kw):
        """Create a user and log in: returns an access token."""
        self.add_user(username, role, **kw)
        return self.login(username)


def main(namespace, server_args=None, env=None):
    """Run every test_<name>(srv) function in namespace (in source order) against one server,
    then stop it with SIGTERM and check exit 0. Exit status 1 when anything failed."""
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    tests.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
    failed = 0
    srv = Server(server_args, env)
    try:
        srv.start()
        for name, fn in tests:
            t0 = time.monotonic()
            try:
                fn(srv)
                print("ok    %s (%.0f ms)" % (name, (time.monotonic() - t0) * 1e3))
            except Exception:   # report and go on with the next test
                failed += 1
                print("FAIL  %s" % name)
                traceback.print_exc(file=sys.stdout)
        try:
            srv.stop()
            print("ok    server stopped with exit 0")
        except Exception:
            failed += 1
            print("FAIL  server stop")
            traceback.print_exc(file=sys.stdout)
    finally:
        srv.cleanup()
    print("%d test(s), %d failed" % (len(tests), failed))
    sys.stdout.flush()
    sys.exit(1 if failed else 0)
