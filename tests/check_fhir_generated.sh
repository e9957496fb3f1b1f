#!/usr/bin/env bash
# The committed generated FHIR tables (src/fhir/gen_*) must equal a fresh run of tools/gen_fhir.py.
# Env: PYTHON3 (default python3), MEDCORE_SOURCE_DIR (default: the repository containing this script).
set -eu
src="${MEDCORE_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
py="${PYTHON3:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/gen" "$tmp/committed"
"$py" "$src/tools/gen_fhir.py" "$src/spec/fhir-r4" "$tmp/gen"
cp "$src"/src/fhir/gen_* "$tmp/committed/"
if ! diff -r "$tmp/committed" "$tmp/gen" >"$tmp/diff"; then
	echo "FAIL: src/fhir/gen_* differ from tools/gen_fhir.py output; regenerate with:" >&2
	echo "  python3 tools/gen_fhir.py spec/fhir-r4 src/fhir" >&2
	head -40 "$tmp/diff" >&2
	exit 1
fi
echo "ok: generated FHIR tables are up to date"
