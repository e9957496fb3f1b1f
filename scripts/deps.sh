#!/bin/sh
# Installs the Debian 12 packages medcore needs to build, test and run, when any is missing.
# Runs apt-get only when something is missing; needs root (or sudo) then.
set -e
PKGS="build-essential cmake pkg-config python3 sqlite3 libmicrohttpd-dev libjansson-dev libsodium-dev
liboath-dev libsqlite3-dev libcmocka-dev librdkafka-dev libwslay-dev wrk curl ca-certificates nodejs npm"
# PostgreSQL (a separate line so edits above don't collide): libpq-dev, the client library medcore
# links; postgresql, the server that scripts/pg-test-cluster.sh starts for the tests; postgresql-client: psql.
PKGS="$PKGS libpq-dev postgresql postgresql-client"
missing=""
for p in $PKGS; do
  # node and npm may come from elsewhere than Debian (nvm, NodeSource): a working one is enough,
  # and asking apt for Debian's would conflict with it.
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
