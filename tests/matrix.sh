#!/bin/sh
# tests/matrix.sh -- `make matrix`: every source major 11-15 onto every newer
# target 15-17, offline and live through cutover (suite "versions"), and a
# table of the results.  Needs the majors `make deps` caches (12 included).
#
#   tests/matrix.sh                    every pair
#   PGSTREAM_VERSION_PAIRS="13:17" tests/matrix.sh
set -u
cd "$(dirname "$0")/.." || exit 1
MODE=${MODE:-release}
BUILD=build/$MODE
if [ -z "${PGSTREAM_VERSION_PAIRS:-}" ]; then
	PGSTREAM_VERSION_PAIRS=""
	for s in 11 12 13 14 15; do
		for t in 15 16 17; do
			[ "$t" -ge "$s" ] && PGSTREAM_VERSION_PAIRS="$PGSTREAM_VERSION_PAIRS $s:$t"
		done
	done
fi
export PGSTREAM_VERSION_PAIRS
PGSTREAM_PG_MAJORS="11 12 13 14 15 16 17" tests/support/install-deps.sh || exit 1
make --no-print-directory MODE="$MODE" "$BUILD/pgstream" "$BUILD/run_integration" || exit 1
out=$(mktemp /tmp/pgstream-matrix-XXXXXX)
PGSTREAM_MATRIX_OUT=$out PGSTREAM_BIN=$(pwd)/$BUILD/pgstream CK_RUN_SUITE=versions \
	"$BUILD/run_integration"
status=$?
echo
echo "| pair | offline load | live + cutover | compare | seconds |"
echo "|---|---|---|---|---|"
for p in $PGSTREAM_VERSION_PAIRS; do
	field() { grep "^$p $1 " "$out" | tail -n 1 | cut -d' ' -f3; }
	printf '| %s | %s | %s | %s | %s |\n' "$(echo "$p" | sed 's/:/ → /')" \
		"$(field offline)" "$(field live)" "$(field compare)" "$(field seconds)"
done
rm -f "$out"
exit $status
