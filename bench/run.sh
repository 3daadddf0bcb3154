#!/bin/bash
# bench/run.sh -- "make bench": every pgstream benchmark, one results directory.
#
#   bench/run.sh [fullload|apply ...]     (default: fullload apply)
#
# Results go to results/<timestamp>/ (or $BENCH_RESULTS): report.md,
# results.json, fullload.json, apply.json, lag.csv, PNG charts, bench.log.
# Environment: BENCH_SCALE (size multiplier, default 1), BENCH_REPS,
# BENCH_LAG_REPS, BENCH_SOURCE/BENCH_TARGET (external servers), see
# bench/README.md.  As root, installs gnuplot-nox, time and pgcopydb if
# missing (BENCH_INSTALL=0 to skip).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
[ -x "${PGSTREAM_BIN:-$ROOT/bin/pgstream}" ] || { echo "bin/pgstream missing: run make" >&2; exit 1; }

install_missing() {
	[ "${BENCH_INSTALL:-1}" = 1 ] && [ "$(id -u)" -eq 0 ] || return 0
	need=""
	command -v gnuplot >/dev/null 2>&1 || need="$need gnuplot-nox"
	[ -x /usr/bin/time ] || need="$need time"
	command -v pgcopydb >/dev/null 2>&1 || need="$need pgcopydb"
	[ -n "$need" ] || return 0
	echo "installing:$need"
	# shellcheck disable=SC2086
	apt-get install -y -q $need >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $need >/dev/null 2>&1; } ||
		echo "could not install$need (continuing without)" >&2
}

install_missing
BENCH_RESULTS=${BENCH_RESULTS:-$ROOT/results/$(date +%Y%m%d-%H%M%S)}
export BENCH_RESULTS
mkdir -p "$BENCH_RESULTS"
parts=${*:-fullload apply}
start=$(date +%s)
{
	echo "pgstream benchmarks: $parts, BENCH_SCALE=${BENCH_SCALE:-1}, results in $BENCH_RESULTS"
	status=0
	for part in $parts; do
		case $part in
		fullload|apply) python3 "$HERE/$part.py" || status=1 ;;
		*) echo "unknown benchmark: $part" >&2; status=3 ;;
		esac
	done
	python3 "$HERE/report.py" "$BENCH_RESULTS" >/dev/null || status=1
	echo "done in $(( $(date +%s) - start )) s: $BENCH_RESULTS/report.md"
	exit $status
} 2>&1 | tee "$BENCH_RESULTS/bench.log"
