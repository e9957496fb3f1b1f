#!/bin/sh
# bench/vitals.sh — the vitals store without HTTP (bench/vitals_store.c): sustained append rate with
# background checkpoints and a sink, then 24 h range/rollup query latency. Set BENCH_QUIET_RANGE=1
# to measure the queries after the append phase's checkpoint has finished.
# usage: sh bench/vitals.sh store [BUILD_DIR (default build)] [SECONDS (default 10)]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${2:-build}
SECS=${3:-10}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/medcore-vstore.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
LIBS="$(pkg-config --libs jansson libsodium libmicrohttpd sqlite3 liboath libpq rdkafka) $(pkg-config --libs libwslay 2>/dev/null || echo -lwslay)"
cc -O2 -std=c17 -D_GNU_SOURCE -I"$HERE/../src" "$HERE/vitals_store.c" "$BUILD/libmedcore_lib.a" $LIBS -lpthread -lm \
	-o "$TMP/vitals_store"
"$TMP/vitals_store" "$TMP" "$SECS"
