#!/bin/sh
# Installs the Debian 12 packages medcore needs to build, test and run, when any is missing.
# Runs apt-get only when something is missing; needs root (or sudo) then.
set -e
PKGS="build-essential cmake pkg-config python3 sqlite3 libmicrohttpd-dev libjansson-dev libsodium-dev
liboath-dev libsqlite3-dev libcmocka-dev librdkafka-dev wrk curl ca-certificates nodejs npm"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
