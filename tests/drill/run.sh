#!/bin/sh
# tests/drill/run.sh -- build and run the failover drill suite (make drill).
#
#   tests/drill/run.sh            MODE=release (default) or MODE=san
#
# Builds pgstream and run_drill through the project Makefile (MODE=drill:
# release flags plus failpoints), then runs it from the repository root.
# Environment: see tests/drill/run_drill.c (DRILL_SEED, DRILL_ONLY,
# DRILL_SCALE, DRILL_RATE, DRILL_PARTITION_S, DRILL_RESULTS).
# Needs root for drill 4 (network namespace); DRILL_ONLY=1235 skips it.
set -eu
cd "$(dirname "$0")/../.."
MODE=${MODE:-drill}
BUILD=build/$MODE
make --no-print-directory MODE="$MODE" "$BUILD/pgstream" "$BUILD/run_drill"
# a private copy: a build running beside the drill must not swap the binary
# under a kill/restart loop
cp "$BUILD/pgstream" "$BUILD/pgstream-drill"
PGSTREAM_BIN="$(pwd)/$BUILD/pgstream-drill" exec "$BUILD/run_drill"
