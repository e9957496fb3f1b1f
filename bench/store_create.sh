#!/bin/sh
# bench/store_create.sh — durable FHIR creates through the store without HTTP (bench/store_create.c):
# creates/s with 64 submitting threads and the writer thread's CPU per create. RUNS runs with index
# rows and RUNS without (index extraction off), each on a fresh database; prints every run's line and
# the medians (writer µs per create and the index overhead: (on - off) / off).
# usage: sh bench/store_create.sh [BUILD_DIR (default build)] [CREATES (default 20000)] [RUNS (default 3)]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
N=${2:-20000}
RUNS=${3:-3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/medcore-screate.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
LIBS="$(pkg-config --libs jansson libsodium libmicrohttpd sqlite3 liboath libpq) $(pkg-config --libs rdkafka 2>/dev/null) $(pkg-config --libs libwslay 2>/dev/null || echo -lwslay)"
cc -O2 -g -std=c17 -D_GNU_SOURCE -I"$HERE/../src" "$HERE/store_create.c" "$BUILD/libmedcore_lib.a" $LIBS -lpthread -lm \
	-o "$TMP/store_create"
for mode in on off; do
	i=0
	while [ $i -lt "$RUNS" ]; do
		if [ $mode = on ]; then "$TMP/store_create" "$N"; else "$TMP/store_create" "$N" --no-index; fi
		i=$((i + 1))
	done
done | tee "$TMP/out"
python3 - "$TMP/out" <<'PY'
import re, statistics, sys
runs = {"on": [], "off": []}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    if "index" in kv:
        runs[kv["index"]].append((float(kv["creates_per_s"]), float(kv["writer_us_per_create"])))
med = {k: (statistics.median(r for r, _ in v), statistics.median(w for _, w in v)) for k, v in runs.items() if v}
for k, (r, w) in med.items():
    print(f"median index={k}: creates/s {r:.0f}, writer us/create {w:.1f}")
if "on" in med and "off" in med:
    print(f"index overhead (writer CPU): {100 * (med['on'][1] - med['off'][1]) / med['off'][1]:.0f}%")
PY
