#!/bin/sh
# A private PostgreSQL cluster for the tests: loopback only, trust auth, C locale, its own port and
# socket directory; never touches a system cluster. Used by `make test` and .ci/run.
#
#   sh scripts/pg-test-cluster.sh start    # init (first time) + start; prints the base URL
#   sh scripts/pg-test-cluster.sh stop     # fast shutdown (data kept)
#   sh scripts/pg-test-cluster.sh url      # the base URL, e.g. postgres://postgres@127.0.0.1:55432/postgres
#   sh scripts/pg-test-cluster.sh destroy  # stop and delete the data directory
#
# Settings (environment): MEDCORE_PG_DIR (default /tmp/medcore-pg-<uid>), MEDCORE_PG_PORT (55432).
# When run as root, the server runs as the `postgres` system user (PostgreSQL refuses root).
# Needs the Debian postgresql package (scripts/deps.sh installs it).
set -e
DIR=${MEDCORE_PG_DIR:-/tmp/medcore-pg-$(id -u)}
# The port: the one this cluster last started on (kept in $DIR/port), else MEDCORE_PG_PORT/55432,
# moved up to the next free one when another program already listens there.
PORT=${MEDCORE_PG_PORT:-$(cat "$DIR/port" 2>/dev/null || echo 55432)}

port_free() {
  # SO_REUSEADDR as PostgreSQL itself binds: a port in TIME_WAIT after our own stop is free to it
  python3 -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1])))" "$1" 2>/dev/null
}

bindir() {
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && { pg_config --bindir; return 0; }
  echo "pg-test-cluster: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

cmd=${1:-start}
case "$cmd" in
url)
  echo "postgres://postgres@127.0.0.1:$PORT/postgres"
  ;;
start)
  BIN=$(bindir)
  if [ ! -f "$DIR/data/PG_VERSION" ]; then
    mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
    as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --locale=C -E UTF8 >"$DIR/initdb.log" 2>&1 || {
      cat "$DIR/initdb.log" >&2
      exit 1
    }
  fi
  if ! as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    tries=0
    while ! port_free "$PORT"; do
      tries=$((tries + 1))
      [ $tries -gt 50 ] && { echo "pg-test-cluster: no free port near $PORT" >&2; exit 1; }
      PORT=$((PORT + 1))
    done
    echo "$PORT" >"$DIR/port"
    # max_connections: every test server opens up to (4 writers + 16 readers); ctest runs two at once.
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=64MB" \
      start >/dev/null || {
      tail -20 "$DIR/server.log" >&2
      exit 1
    }
  fi
  echo "postgres://postgres@127.0.0.1:$PORT/postgres"
  ;;
stop)
  BIN=$(bindir)
  if [ -f "$DIR/data/PG_VERSION" ]; then
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  ;;
destroy)
  sh "$0" stop || true
  rm -rf "$DIR"
  ;;
*)
  echo "usage: $0 start|stop|url|destroy" >&2
  exit 2
  ;;
esac
