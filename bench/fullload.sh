#!/bin/sh
# bench/fullload.sh -- the full-load benchmark alone (see bench/README.md).
exec "$(dirname "$0")/run.sh" fullload
