#!/usr/bin/env bash
# tests/check_banned.sh — fail when src/ calls a banned unsafe string function (STYLE: git/curl).
# Banned: strcpy strcat strncpy strtok sprintf vsprintf gets, as function calls. snprintf, vsnprintf,
# strtok_r and names that merely contain a banned one (fgets, my_gets, buf_sprintf_x) are fine:
# a call is the bare name, not preceded by an identifier character, followed by optional space and "(".
# Comment lines ("/* ... */", " * ...", "// ...") are not checked.
set -u
root="${MEDCORE_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
if [ ! -d "$root/src" ]; then
	echo "check_banned: no src/ under $root" >&2
	exit 2
fi
pattern='(^|[^A-Za-z0-9_])(strcpy|strcat|strncpy|strtok|sprintf|vsprintf|gets)[[:space:]]*\('
hits=$(grep -rnE --include='*.c' --include='*.h' "$pattern" "$root/src" |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*|//)' || true)
if [ -n "$hits" ]; then
	echo "check_banned: banned functions used (use snprintf / buf_* instead):"
	echo "$hits"
	exit 1
fi
echo "check_banned: ok"
exit 0
