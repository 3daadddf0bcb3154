#!/bin/sh
# bench/apply.sh -- the live-apply benchmark alone (see bench/README.md).
# BENCH_APPLY_PARTS=insert or =lag runs one half.
exec "$(dirname "$0")/run.sh" apply
