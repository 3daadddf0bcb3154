#!/bin/sh
# tests/support/install-regress.sh -- put PostgreSQL's own regression suite
# (src/test/regress of the Debian source package matching the installed
# server, with regress.so and contrib/spi's autoinc.so and refint.so built
# for it) into a cache outside the repo, once.  Run by install-deps.sh (so by
# `make deps` and `make test`); tests/integration/test_regress.c runs
# pg_regress from it to build the "regression" database it migrates.
#
#   PGSTREAM_REGRESS_MAJOR  the Debian server major (default 15): its
#                           postgresql-<major> must be installed
#   PGSTREAM_REGRESS_CACHE  cache directory (default /var/cache/pgstream/regress
#                           as root, $HOME/.cache/pgstream/regress otherwise);
#                           test_regress.c reads the same variable
#
# Layout: $PGSTREAM_REGRESS_CACHE/<major>/ holds parallel_schedule, sql/,
# expected/, data/, regress.so, autoinc.so, refint.so and the marker file
# .pgstream-complete holding "postgresql-<major>@<debian version>".  The
# marker is written last, in a work directory moved into place only then, so
# a half fetch is redone, never reused.  A matching marker means nothing to
# do (silent).  When the server package is upgraded, the marker no longer
# matches and the suite is fetched again for the new version.
#
# How: a private apt configuration (its own sources.list with deb-src lines
# for bookworm, bookworm-updates and bookworm-security, its own lists and
# cache directories; the machine's /etc/apt is not touched), `apt-get source
# --download-only postgresql-<major>=<installed version>` (apt checks the
# files against the signed Sources index), the two directories unpacked from
# the upstream tarball, and postgresql-server-dev-<major> of the same version
# installed (root only) for the headers.
#
# Exits non-zero with a message saying what to do when not root and the
# headers are missing, when Debian's archive is unreachable or the build
# fails.
set -eu
umask 022

ME=install-regress.sh
MAJOR=${PGSTREAM_REGRESS_MAJOR:-15}
PKG=postgresql-$MAJOR

die()
{
	echo "$ME: $*" >&2
	exit 1
}

if [ -n "${PGSTREAM_REGRESS_CACHE:-}" ]; then
	CACHE=$PGSTREAM_REGRESS_CACHE
elif [ "$(id -u)" -eq 0 ]; then
	CACHE=/var/cache/pgstream/regress
else
	CACHE=${HOME:?}/.cache/pgstream/regress
fi
case "$CACHE" in
/*) ;;
*) die "PGSTREAM_REGRESS_CACHE must be an absolute path, not \"$CACHE\"" ;;
esac

command -v dpkg-query >/dev/null 2>&1 ||
	die "not a Debian system: put src/test/regress of PostgreSQL $MAJOR with regress.so, autoinc.so and refint.so built into $CACHE/$MAJOR yourself"
VERSION=$(dpkg-query -W -f='${Version}' "$PKG" 2>/dev/null) ||
	die "$PKG is not installed (install-deps.sh installs it)"
[ -n "$VERSION" ] || die "$PKG is not installed"
UPSTREAM=${VERSION%%-*}
MARK="$PKG@$VERSION"
DIR=$CACHE/$MAJOR

if [ "$(cat "$DIR/.pgstream-complete" 2>/dev/null)" = "$MARK" ]; then
	exit 0
fi

mkdir -p "$CACHE" || die "could not create the cache directory $CACHE"
chmod 755 "$CACHE"
if command -v flock >/dev/null 2>&1; then
	exec 9>"$CACHE/.lock"
	flock 9
	# another make test may have filled it while we waited
	[ "$(cat "$DIR/.pgstream-complete" 2>/dev/null)" = "$MARK" ] && exit 0
fi
rm -rf "$CACHE"/.fetch-*

WORK=""
cleanup()
{
	[ -n "$WORK" ] && rm -rf "$WORK"
	WORK=""
}
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM HUP PIPE

started=$(date +%s)
echo "$ME: fetching PostgreSQL's regression suite ($PKG $VERSION source) into $DIR"

# The server headers, of exactly the installed server's version.
status=$(dpkg-query -W -f='${Status} ${Version}' "postgresql-server-dev-$MAJOR" 2>/dev/null || true)
if [ "$status" != "install ok installed $VERSION" ]; then
	[ "$(id -u)" -eq 0 ] ||
		die "postgresql-server-dev-$MAJOR $VERSION is needed to build regress.so: run as root, or: sudo apt-get install postgresql-server-dev-$MAJOR=$VERSION"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"postgresql-server-dev-$MAJOR=$VERSION" >/dev/null ||
		die "could not install postgresql-server-dev-$MAJOR=$VERSION (apt-get update first?)"
fi
INCLUDEDIR=$(/usr/lib/postgresql/$MAJOR/bin/pg_config --includedir-server 2>/dev/null ||
	pg_config --includedir-server)
[ -f "$INCLUDEDIR/postgres.h" ] || die "no postgres.h in $INCLUDEDIR"

WORK=$(mktemp -d "$CACHE/.fetch-XXXXXX")
chmod 755 "$WORK"
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/src"
# _apt (apt's download user) must be able to write the private directories
chmod -R 777 "$WORK/apt" "$WORK/src"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$WORK/apt/sources.list" <<EOF
deb-src [signed-by=$KEYRING] http://deb.debian.org/debian bookworm main
deb-src [signed-by=$KEYRING] http://deb.debian.org/debian bookworm-updates main
deb-src [signed-by=$KEYRING] http://deb.debian.org/debian-security bookworm-security main
EOF
APT="-q -o Dir::Etc::SourceList=$WORK/apt/sources.list -o Dir::Etc::SourceParts=$WORK/apt/none
 -o Dir::State::Lists=$WORK/apt/lists -o Dir::Cache=$WORK/apt/cache
 -o Acquire::Retries=1 -o Acquire::http::Timeout=20"
# shellcheck disable=SC2086 # word splitting of $APT is wanted
apt-get $APT update >"$WORK/apt.log" 2>&1 || {
	sed 's/^/  /' "$WORK/apt.log" >&2
	die "could not read Debian's source index (deb.debian.org unreachable?);" \
		"the regress integration suite cannot run without the corpus"
}
# shellcheck disable=SC2086
(cd "$WORK/src" && apt-get $APT source --download-only "$PKG=$VERSION") \
	>"$WORK/apt.log" 2>&1 || {
	sed 's/^/  /' "$WORK/apt.log" >&2
	die "could not download the source of $PKG=$VERSION from Debian's archive"
}
tarball=$(ls "$WORK/src/${PKG}_$UPSTREAM.orig.tar."* 2>/dev/null | head -n 1)
[ -n "$tarball" ] || die "no ${PKG}_$UPSTREAM.orig.tar.* in the source package"
top=postgresql-$UPSTREAM
tar -xf "$tarball" -C "$WORK/src" --no-same-owner --wildcards \
	"$top/src/test/regress/*" "$top/contrib/spi/*" ||
	die "could not unpack src/test/regress from $tarball"

OUT=$WORK/regress
mkdir -p "$OUT"
R=$WORK/src/$top/src/test/regress
cp -r "$R/parallel_schedule" "$R/sql" "$R/expected" "$R/data" "$R/resultmap" "$OUT/"
build()
{
	${CC:-cc} -O2 -shared -fPIC -I"$INCLUDEDIR" -o "$OUT/$1.so" "$2" >"$WORK/cc.log" 2>&1 || {
		sed 's/^/  /' "$WORK/cc.log" >&2
		die "could not build $1.so from $2"
	}
}
build regress "$R/regress.c"
build autoinc "$WORK/src/$top/contrib/spi/autoinc.c"
build refint "$WORK/src/$top/contrib/spi/refint.c"
chmod -R a+rX "$OUT"
rm -rf "$DIR"
mv "$OUT" "$DIR"
cleanup
# The server (OS user "postgres") loads regress.so from the cache.
[ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -r "$DIR/regress.so" ||
	die "the \"postgres\" OS user cannot read $DIR/regress.so; is a parent" \
		"directory of $CACHE closed to it?  Set PGSTREAM_REGRESS_CACHE."
echo "$MARK" >"$DIR/.pgstream-complete"
echo "$ME: regression suite of $PKG $VERSION ready in $DIR ($(($(date +%s) - started)) s)"
