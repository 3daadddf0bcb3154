#!/bin/sh
# tests/drill/run.sh -- build and run the failover drill suite (make drill).
#
#   tests/drill/run.sh            MODE=release (default) or MODE=san
#
# Builds pgstream and the drill objects through the project Makefile (its
# pattern rule compiles any .c with the mode's flags), links run_drill the
# way the Makefile links run_integration, then runs it from the repository
# root.  Environment: see tests/drill/run_drill.c (DRILL_SEED, DRILL_ONLY,
# DRILL_SCALE, DRILL_RATE, DRILL_PARTITION_S, DRILL_RESULTS).
# Needs root for drill 4 (network namespace); DRILL_ONLY=1235 skips it.
set -eu
cd "$(dirname "$0")/../.."
MODE=${MODE:-drill}
BUILD=build/$MODE
OBJS="$BUILD/tests/drill/run_drill.o $BUILD/tests/drill/drill_lib.o \
$BUILD/tests/support/cluster.o $BUILD/tests/support/proc.o \
$BUILD/tests/support/failpoint_ctl.o"
make --no-print-directory MODE="$MODE" "$BUILD/pgstream" $OBJS
case $MODE in
san) LDFLAGS="-fsanitize=address,undefined" ;;
*) LDFLAGS="" ;;
esac
${CC:-cc} $LDFLAGS -o "$BUILD/run_drill" $OBJS -lpq -lpthread -lm
# a private copy: a build running beside the drill must not swap the binary
# under a kill/restart loop
cp "$BUILD/pgstream" "$BUILD/pgstream-drill"
PGSTREAM_BIN="$(pwd)/$BUILD/pgstream-drill" exec "$BUILD/run_drill"
