#!/bin/sh
# tests/support/demo.sh -- "make demo": a live migration on two local
# PostgreSQL clusters while pgbench writes to the source, then a cutover and
# a full verification.  Needs the packages `make test` installs.
#
# Everything lives in a temporary directory that is removed at the end; the
# clusters run as the "postgres" OS user when started as root.
set -eu

BIN=$(cd "$(dirname "$0")/../.." && pwd)/bin/pgstream
PGBIN=${PGSTREAM_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
SCALE=${DEMO_SCALE:-10}
SECONDS_OF_LOAD=${DEMO_SECONDS:-20}
WORK=$(mktemp -d /tmp/pgstream-demo-XXXXXX)
SRC_PORT=$((20000 + $$ % 20000))
TGT_PORT=$((SRC_PORT + 1))

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
	for c in src tgt; do
		[ -f "$WORK/$c/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$WORK/$c" -m immediate stop >/dev/null 2>&1 || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" -eq 0 ] && chown postgres "$WORK"
step() { printf '\n== %s\n' "$*"; }
show_status() {
	"$BIN" status --target "$TGT" --json 2>/dev/null | sed -n \
		-e 's/.*"phase":"\([a-z]*\)".*"lag_bytes":\([0-9.][0-9.]*\).*"lag_seconds":\([0-9.][0-9.]*\).*"apply_rate":\([0-9.][0-9.]*\).*/  phase \1: lag \2 bytes, \3 s; applying \4 changes\/s/p' \
		-e 's/.*"phase":"\(schema\|copy\|index\)".*/  phase \1 (full load)/p'
}

step "starting a source (port $SRC_PORT) and a target (port $TGT_PORT) cluster in $WORK"
for c in src tgt; do
	as_pg "$PGBIN/initdb" -A trust -U postgres --no-sync -E UTF8 --locale=C -D "$WORK/$c" >/dev/null
	port=$SRC_PORT; [ $c = tgt ] && port=$TGT_PORT
	cat >>"$WORK/$c/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$WORK'
listen_addresses = ''
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
fsync = off
CONF
	as_pg "$PGBIN/pg_ctl" -D "$WORK/$c" -l "$WORK/$c.log" -w start >/dev/null
done
SRC="host=$WORK port=$SRC_PORT user=postgres dbname=demo"
TGT="host=$WORK port=$TGT_PORT user=postgres dbname=demo"
"$PGBIN/createdb" -h "$WORK" -p $SRC_PORT -U postgres demo
"$PGBIN/createdb" -h "$WORK" -p $TGT_PORT -U postgres demo

step "loading a sample database on the source (pgbench scale $SCALE, plus a sequence-backed table)"
"$PGBIN/pgbench" -h "$WORK" -p $SRC_PORT -U postgres -i -q -s "$SCALE" demo 2>&1 | tail -n 1
"$PGBIN/psql" -h "$WORK" -p $SRC_PORT -U postgres -d demo -q -c \
	"CREATE TABLE orders (id bigserial PRIMARY KEY, aid int REFERENCES pgbench_accounts, note text, at timestamptz DEFAULT now());
	 INSERT INTO orders (aid, note) SELECT g, 'order ' || g FROM generate_series(1, 10000) g;"

step "assess"
"$BIN" assess --source "$SRC" --target "$TGT" --no-key-tables=insert-only || true

step "pgstream sync (full load, then live streaming) while pgbench writes for ${SECONDS_OF_LOAD}s"
"$BIN" sync --source "$SRC" --target "$TGT" --quiet --no-key-tables=insert-only >"$WORK/sync.log" 2>&1 &
SYNC_PID=$!
cat >"$WORK/orders.sql" <<'SQL'
\set aid random(1, 100000)
INSERT INTO orders (aid, note) VALUES (:aid, 'live order');
SQL
"$PGBIN/pgbench" -h "$WORK" -p $SRC_PORT -U postgres -c 4 -T "$SECONDS_OF_LOAD" -n \
	-b tpcb-like@9 -f "$WORK/orders.sql@1" demo \
	>"$WORK/pgbench.log" 2>&1 &
PGBENCH_PID=$!
while kill -0 $PGBENCH_PID 2>/dev/null; do
	sleep 3
	show_status
done
wait $PGBENCH_PID || true
grep -E "^tps|number of transactions actually" "$WORK/pgbench.log" || cat "$WORK/pgbench.log"

step "waiting for sync to catch up (phase streaming)"
for i in $(seq 1 120); do
	"$BIN" status --target "$TGT" --json 2>/dev/null | grep -q '"phase":"streaming"' && break
	kill -0 $SYNC_PID 2>/dev/null || { cat "$WORK/sync.log"; exit 1; }
	sleep 1
done
show_status

step "cutover (freezes the source, waits for the barrier, moves sequences, adds FKs)"
"$BIN" cutover --source "$SRC" --target "$TGT" --freeze
wait $SYNC_PID
echo "sync exited with status $?"

step "verification: ordered digests of every table and sequence values"
fail=0
for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history orders; do
	q="SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) || ' ' || count(*) FROM $t t"
	s=$("$PGBIN/psql" -h "$WORK" -p $SRC_PORT -U postgres -d demo -Atc "$q")
	d=$("$PGBIN/psql" -h "$WORK" -p $TGT_PORT -U postgres -d demo -Atc "$q")
	if [ "$s" = "$d" ]; then echo "  $t: identical ($s)"; else echo "  $t: DIFFERENT: $s vs $d"; fail=1; fi
done
q="SELECT last_value FROM orders_id_seq"
s=$("$PGBIN/psql" -h "$WORK" -p $SRC_PORT -U postgres -d demo -Atc "$q")
d=$("$PGBIN/psql" -h "$WORK" -p $TGT_PORT -U postgres -d demo -Atc "$q")
[ "$s" = "$d" ] && echo "  orders_id_seq: $s on both" || { echo "  orders_id_seq: $s vs $d"; fail=1; }
[ $fail -eq 0 ] && echo "demo: every table identical, sequences moved" || { echo "demo: MISMATCH"; exit 1; }
