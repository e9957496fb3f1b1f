#!/bin/sh
# bench/run.sh — `make bench`: load demo data into a fresh temporary database, start a server on
# 127.0.0.1 (a free port), run the wrk scenarios (bench/bench.py), print the table, stop the server.
#
# usage: sh bench/run.sh [path/to/medcore]
# environment (all optional):
#   BENCH_PATIENTS  demo patients to load      (default 100000)
#   BENCH_DURATION  seconds per measured run   (default 10)
#   BENCH_RUNS      measured runs per scenario (default 3; the table shows the median)
#   BENCH_ONLY      comma list of scenarios: read,search,create,login,booking (healthz always runs)
#   BENCH_SERVE_ARGS extra `medcore serve` flags, for diagnosis (e.g. "--audit-reads false")
#   BENCH_PG        a PostgreSQL base URL (postgres://user@host:port/postgres): run on a fresh database
#                   created there (and dropped at the end) instead of SQLite; `make bench-pg` sets it
#   BENCH_CACHE     1 (default): keep a pristine copy of the loaded demo database next to the binary
#                   (<bindir>/bench-cache/, keyed by the binary's SHA-256, patients and seed) and
#                   start later runs from a copy of it; 0: always load afresh
# Raw wrk output, the demo and server logs and summary.{txt,json} go to bench/results/<time>/.
# Only 127.0.0.1 is ever contacted. The server is stopped on exit, error or interrupt.
set -eu

BIN=${1:-build/medcore}
HERE=$(cd "$(dirname "$0")" && pwd)
PATIENTS=${BENCH_PATIENTS:-100000}
DURATION=${BENCH_DURATION:-10}
RUNS=${BENCH_RUNS:-3}
ONLY=${BENCH_ONLY:-}
CACHE=${BENCH_CACHE:-1}
SERVE_ARGS=${BENCH_SERVE_ARGS:-}
SEED=7

for tool in wrk python3; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "bench: $tool is not installed (Debian: apt-get install $tool)" >&2
		exit 1
	fi
done
if [ ! -x "$BIN" ]; then
	echo "bench: no medcore binary at $BIN (run make build)" >&2
	exit 1
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

RESULTS=$HERE/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/medcore-bench.XXXXXX")
SERVER_PID=

stop_server() {
	if [ -n "$SERVER_PID" ]; then
		if kill -0 "$SERVER_PID" 2>/dev/null; then
			kill -TERM "$SERVER_PID" 2>/dev/null || true
			# give it 10 s to drain, then insist
			i=0
			while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 100 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			kill -KILL "$SERVER_PID" 2>/dev/null || true
		fi
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=
	fi
}
PGDB=
cleanup() {
	stop_server
	if [ -n "$PGDB" ]; then
		psql -q -d "$BENCH_PG" -c "DROP DATABASE IF EXISTS $PGDB" >/dev/null 2>&1 || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

DB="sqlite:$TMP/bench.db"
if [ -n "${BENCH_PG:-}" ]; then
	PGDB=medcore_bench_$$
	psql -q -d "$BENCH_PG" -c "CREATE DATABASE $PGDB TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'" >/dev/null
	DB=$(echo "$BENCH_PG" | sed "s#/[^/?]*\(?.*\)\{0,1\}\$#/$PGDB\1#")
	CACHE=0   # the cache is a SQLite file copy
	echo "bench: PostgreSQL database $PGDB"
fi
T0=$(date +%s)
# Loading 100k patients takes minutes (see docs/demo.md); the measured scenarios don't depend on
# how the database came to be, so a pristine copy made by the same binary is reused when present.
CACHE_DIR=$(dirname "$BIN")/bench-cache
KEY=$(sha256sum "$BIN" | cut -c1-16)
CACHED=$CACHE_DIR/demo-$PATIENTS-seed$SEED-$KEY.db
if [ "$CACHE" = 1 ] && [ -f "$CACHED" ] && [ -f "$CACHED.txt" ]; then
	echo "bench: using the cached demo database $CACHED"
	cp "$CACHED" "$TMP/bench.db"
	cp "$CACHED.txt" "$RESULTS/demo.txt"
	echo "bench: (cached) $(grep 'patients loaded' "$RESULTS/demo.txt" || true)"
else
	echo "bench: loading $PATIENTS demo patients into a fresh database ..."
	if ! "$BIN" demo --db "$DB" --patients "$PATIENTS" --seed "$SEED" >"$RESULTS/demo.txt" 2>"$RESULTS/demo.log"; then
		echo "bench: medcore demo failed:" >&2
		tail -n 20 "$RESULTS/demo.log" "$RESULTS/demo.txt" >&2
		exit 1
	fi
	grep 'patients loaded' "$RESULTS/demo.txt" || true
	# demo closed the store cleanly (WAL checkpointed), so the .db file alone is the database
	if [ "$CACHE" = 1 ] && [ ! -s "$TMP/bench.db-wal" ]; then
		mkdir -p "$CACHE_DIR"
		rm -f "$CACHE_DIR"/demo-"$PATIENTS"-seed"$SEED"-*.db "$CACHE_DIR"/demo-"$PATIENTS"-seed"$SEED"-*.db.txt
		cp "$TMP/bench.db" "$CACHED.tmp" && mv "$CACHED.tmp" "$CACHED" && cp "$RESULTS/demo.txt" "$CACHED.txt"
	fi
fi

# --listen 127.0.0.1:0 lets the kernel pick a free port; the server logs it in its "listening" line.
# Log level warn: per-request logging would measure the logger, not the server.
# shellcheck disable=SC2086 # SERVE_ARGS is a list of flags
"$BIN" serve --db "$DB" --listen 127.0.0.1:0 --log-level warn $SERVE_ARGS >"$RESULTS/server.out" 2>"$RESULTS/server.log" &
SERVER_PID=$!
PORT=
i=0
while [ -z "$PORT" ] && [ $i -lt 200 ]; do
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		echo "bench: the server exited during start-up:" >&2
		tail -n 20 "$RESULTS/server.log" >&2
		exit 1
	fi
	PORT=$(sed -n 's/.*"msg":"listening".*"port":\([0-9][0-9]*\).*/\1/p' "$RESULTS/server.log" | head -n 1)
	[ -n "$PORT" ] || sleep 0.05
	i=$((i + 1))
done
if [ -z "$PORT" ]; then
	# the "listening" line is info-level; without it, ask the kernel which port the pid holds
	PORT=$(python3 - "$SERVER_PID" <<'EOF'
import os, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        t = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if t.startswith("socket:["):
        inodes.add(t[8:-1])
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    f = line.split()
    if f[3] == "0A" and f[9] in inodes and f[1].startswith("0100007F:"):
        print(int(f[1].split(":")[1], 16))
        break
EOF
)
fi
if [ -z "$PORT" ]; then
	echo "bench: cannot tell which port the server listens on" >&2
	exit 1
fi
echo "bench: server pid $SERVER_PID on 127.0.0.1:$PORT; results in $RESULTS"

python3 "$HERE/bench.py" --port "$PORT" --pid "$SERVER_PID" --results "$RESULTS" \
	--duration "$DURATION" --runs "$RUNS" --patients "$PATIENTS" --only "$ONLY"
stop_server
# booking/availability (bench/booking.py): its own server on a fresh database
case ",${ONLY:-booking}," in *,booking,*) python3 "$HERE/booking.py" "$BIN" --json "$RESULTS/booking.json" | tee "$RESULTS/booking.txt" ;; esac
# vitals ingest over HTTP (bench/vitals_http.py): its own server on a fresh database
case ",${ONLY:-vitals}," in *,vitals,*) python3 "$HERE/vitals_http.py" "$BIN" --seconds "$DURATION" | tee "$RESULTS/vitals.txt" ;; esac
echo "bench: done in $(( $(date +%s) - T0 )) s"
