/*
 * tests/integration/test_sync.c -- acceptance tests for
 * `pgstream sync --no-follow` and `pgstream status`.
 *
 * One source cluster (wal_level=logical) and one target cluster per TCase,
 * made in an unchecked fixture; every test makes its own databases on them,
 * and passes its own --slot (except the first, which uses the default), so
 * that a failure in one test cannot leave something behind that breaks the
 * next.
 *
 * After a run the databases are compared with tests/support/compare.h: the
 * schema as catalog facts (columns, indexes, constraints, triggers,
 * sequences, partitions, types, ...), every table's row count and digest,
 * every sequence's last_value and is_called.  Then the run's traces must be
 * gone: no slot on the source, no schema "pgstream" on the target, no
 * publication.
 *
 *   sync          all types and names; a target login that only owns the
 *                 target database (also when an extension is already there,
 *                 made by another role); a non-empty target is refused
 *                 without changing anything; usage errors (exit 3) change
 *                 nothing; a source login that row security applies to
 *                 never loses rows silently; status without state
 *   kill          kill -9 at chosen moments (copy with parts done, index,
 *                 final, fixed delays; as superuser and as a login that only
 *                 owns the target), run again, and the result is exact; a
 *                 kill at the start of a phase lands at its failpoint
 *                 (fullload.after_part_commit, schema.after_index_step,
 *                 sync.before_final), one a delay into it stays timed
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/compare.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define SYNC_TIMEOUT_MS 240000
#define STATUS_TIMEOUT_MS 30000
#define MAX_ARGS 24

static Cluster source;
static Cluster target;

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "target", 0));
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
}

static void
clusters_teardown(void)
{
	cluster_destroy(&source);
	cluster_destroy(&target);
}

/* ---- helpers ---- */

/*
 * argv for "pgstream sync --source S --target T --no-follow <extra...>";
 * argv must hold MAX_ARGS entries.
 */
static void
sync_argv(const char *argv[], const char *src, const char *tgt,
          const char *const extra[])
{
	int n = 0;

	argv[n++] = itest_pgstream_bin();
	argv[n++] = "sync";
	argv[n++] = "--source";
	argv[n++] = src;
	argv[n++] = "--target";
	argv[n++] = tgt;
	argv[n++] = "--no-follow";
	for (int i = 0; extra != NULL && extra[i] != NULL; i++)
	{
		ck_assert_int_lt(n, MAX_ARGS - 1);
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
}

/* Run sync to completion; its status.  *err (may be NULL) gets stderr. */
static int
run_sync(const char *src, const char *tgt, const char *const extra[],
         char **err_out)
{
	const char *argv[MAX_ARGS];
	char *out = NULL;
	char *err = NULL;
	long long start = proc_now_ms();
	int status;

	sync_argv(argv, src, tgt, extra);
	status = proc_run(argv, NULL, SYNC_TIMEOUT_MS, &out, &err);
	fprintf(stderr, "pgstream sync: status %d in %.1f s\n", status,
	        (double) (proc_now_ms() - start) / 1000.0);
	if (status != 0)
		itest_print_output("pgstream sync", status, out, err);
	free(out);
	if (err_out != NULL)
		*err_out = err;
	else
		free(err);
	return status;
}

/* pgstream status --target tgt --json: its stdout (malloc'd). */
static char *
run_status(const char *tgt, int *status)
{
	const char *const argv[] = {
	    itest_pgstream_bin(), "status", "--target", tgt, "--json", NULL};
	char *out = NULL;
	char *err = NULL;

	*status = proc_run(argv, NULL, STATUS_TIMEOUT_MS, &out, &err);
	if (*status != 0)
		itest_print_output("pgstream status", *status, out, err);
	free(err);
	return out;
}

/* No trace of a run: no slot, no state schema, no publication. */
static void
assert_no_traces(const char *srcdb, const char *slot, const char *tgtdb)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_replication_slots"
	         " WHERE slot_name = '%s' OR database = '%s'",
	         slot, srcdb);
	itest_assert_scalar(&source, "postgres", sql, "0");
	itest_assert_scalar(&source, srcdb, "SELECT count(*) FROM pg_publication",
	                    "0");
	itest_assert_scalar(
	    &target, tgtdb,
	    "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'", "0");
}

/*
 * The target equals the source: schema facts, then every table and
 * sequence.  At least min_tables tables must have been compared.
 */
static void
assert_same_database(const char *srcdb, const char *tgtdb, int min_tables)
{
	char *facts = compare_schema_facts(&source, srcdb);
	int ntables = 0;
	int schema_diffs;
	int data_diffs;

	ck_assert_ptr_nonnull(facts);
	ck_assert_msg(strlen(facts) > 0, "no schema facts on the source");
	free(facts);
	/* Both comparisons run before asserting, to list every difference. */
	schema_diffs = compare_schemas(&source, srcdb, &target, tgtdb);
	data_diffs = compare_data(&source, srcdb, &target, tgtdb, &ntables);
	ck_assert_msg(schema_diffs == 0 && data_diffs == 0,
	              "%d schema and %d data difference(s) (listed above)",
	              schema_diffs, data_diffs);
	ck_assert_int_ge(ntables, min_tables);
}

/* ---- watching and killing a run ---- */

typedef enum KillAt
{
	KILL_IN_COPY,  /* phase copy, at least one part done, not all */
	KILL_IN_INDEX, /* phase index, after delay_ms */
	KILL_IN_FINAL, /* phase final, after delay_ms */
	KILL_AFTER_MS, /* delay_ms after the start, whatever the phase */
	KILL_NEVER,    /* just watch it run to the end */
} KillAt;

static const char *const kill_at_names[] = {"copy", "index", "final", "delay",
                                            "never"};

typedef struct Watch
{
	char phase[32];
	long parts;
	long parts_done;
	long table_parts;      /* the most parts of one table */
	long most_table_parts; /* table_parts, the most seen during the run */
	char plan_xid[24];     /* xmin of the copy plan: which run made it */
} Watch;

/* The run state on the target, "none" if there is none (yet). */
static void
watch_read(PGconn *conn, Watch *w)
{
	PGresult *res = PQexec(conn, "SELECT phase,"
	                             " (SELECT count(*) FROM pgstream.copy_parts),"
	                             " (SELECT count(*) FROM pgstream.copy_parts"
	                             "  WHERE done),"
	                             " (SELECT coalesce(max(nparts), 0)"
	                             "  FROM pgstream.tables),"
	                             " (SELECT coalesce(min(xmin::text), '')"
	                             "  FROM pgstream.tables)"
	                             " FROM pgstream.migration");

	snprintf(w->phase, sizeof(w->phase), "none");
	w->parts = w->parts_done = w->table_parts = 0;
	w->plan_xid[0] = '\0';
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
	{
		snprintf(w->phase, sizeof(w->phase), "%s", PQgetvalue(res, 0, 0));
		w->parts = atol(PQgetvalue(res, 0, 1));
		w->parts_done = atol(PQgetvalue(res, 0, 2));
		w->table_parts = atol(PQgetvalue(res, 0, 3));
		snprintf(w->plan_xid, sizeof(w->plan_xid), "%s",
		         PQgetvalue(res, 0, 4));
	}
	PQclear(res);
	if (PQstatus(conn) != CONNECTION_OK)
		PQreset(conn);
}

/*
 * Start sync and kill -9 it at the given moment.  True if it was killed
 * there; false if it finished first (then it must have succeeded).  *seen
 * receives the state observed last, and the most parts of one table seen.
 */
static bool
run_and_kill(const char *src, const char *tgt, const char *const extra[],
             PGconn *watch, KillAt at, long delay_ms, Watch *seen)
{
	const char *argv[MAX_ARGS];
	Proc p;
	long long start = proc_now_ms();
	long long matched = -1;
	long most = 0;
	bool killed = false;
	char stale_plan[24];
	int status;
	const char *fp_env = NULL;
	const char *env[2] = {NULL, NULL};

	/*
	 * The plan a killed copy left: a resumed copy starts again from a new
	 * snapshot with a new plan, so parts done under the old plan are not
	 * this run's copy (a kill aimed at the copy must wait for the new plan).
	 */
	watch_read(watch, seen);
	snprintf(stale_plan, sizeof(stale_plan), "%s", seen->plan_xid);
	memset(seen, 0, sizeof(*seen));
	snprintf(seen->phase, sizeof(seen->phase), "none");
	/*
	 * A kill at the start of a phase lands at its failpoint: the process
	 * kills itself there (crash = kill -9 at exactly that moment).  Kills a
	 * delay into a phase stay timed.
	 */
	if (delay_ms == 0)
		switch (at)
		{
			case KILL_IN_COPY:
				/* a part and its done mark committed: this run's plan */
				fp_env = "PGSTREAM_FAILPOINTS=fullload.after_part_commit=crash";
				break;
			case KILL_IN_INDEX:
				fp_env = "PGSTREAM_FAILPOINTS=schema.after_index_step=crash";
				break;
			case KILL_IN_FINAL:
				fp_env = "PGSTREAM_FAILPOINTS=sync.before_final=crash";
				break;
			default:
				break;
		}
	env[0] = fp_env;
	sync_argv(argv, src, tgt, extra);
	ck_assert(proc_spawn(&p, argv, fp_env != NULL ? env : NULL));
	for (;;)
	{
		bool hit;

		if (proc_wait(&p, 0) != PROC_TIMEOUT)
		{
			/* it reached its failpoint */
			killed = fp_env != NULL && p.status == 128 + SIGKILL;
			break;
		}
		ck_assert_msg(proc_now_ms() - start < SYNC_TIMEOUT_MS,
		              "sync did not finish in time");
		/*
		 * sync is stopped while the state is read, so the kill hits the
		 * moment the poll saw (only a COMMIT already sent can still land),
		 * however long the poll took.
		 */
		if (at != KILL_NEVER && fp_env == NULL)
			proc_kill(&p, SIGSTOP);
		watch_read(watch, seen);
		if (seen->table_parts > most)
			most = seen->table_parts;
		switch (at)
		{
			case KILL_IN_COPY:
				hit = strcmp(seen->phase, "copy") == 0 &&
				      strcmp(seen->plan_xid, stale_plan) != 0 &&
				      seen->parts_done > 0 && seen->parts_done < seen->parts;
				break;
			case KILL_IN_INDEX:
				hit = strcmp(seen->phase, "index") == 0;
				break;
			case KILL_IN_FINAL:
				hit = strcmp(seen->phase, "final") == 0;
				break;
			case KILL_AFTER_MS:
				hit = true;
				break;
			default:
				hit = false;
				break;
		}
		if (fp_env != NULL)
			hit = false; /* the failpoint kills it */
		if (hit && matched < 0)
			matched = proc_now_ms();
		if (matched >= 0 && proc_now_ms() - matched >= delay_ms)
		{
			killed = proc_kill(&p, SIGKILL);
			break;
		}
		if (at != KILL_NEVER && fp_env == NULL)
			proc_kill(&p, SIGCONT);
		itest_sleep_ms(5);
	}
	status = proc_wait(&p, 60000);
	seen->most_table_parts = most;
	if (killed && status == 0)
		killed = false; /* it exited just before the signal */
	fprintf(stderr,
	        "kill at %s+%ld ms%s: %s after %.1f s (phase %s, %ld/%ld parts,"
	        " up to %ld parts per table)\n",
	        kill_at_names[at], delay_ms, fp_env ? " (failpoint)" : "",
	        killed ? "killed" : "finished",
	        (double) (proc_now_ms() - start) / 1000.0, seen->phase,
	        seen->parts_done, seen->parts, most);
	if (!killed)
	{
		if (status != 0)
			itest_print_proc("pgstream sync", &p, status);
		ck_assert_int_eq(status, 0);
	}
	else
		ck_assert_int_eq(status, 128 + SIGKILL);
	proc_release(&p);
	return killed;
}

/* ---- test 1: every type and every kind of name ---- */

#define WS "\"Odd \"\"Schema\"\"; 'é' ñ\""
#define WT "\"Täble \"\"Q\"\" 'S'; x\""

static const char types_schema_sql[] =
    "CREATE EXTENSION citext;"
    "CREATE EXTENSION hstore;"
    "CREATE SCHEMA " WS ";"
    "COMMENT ON SCHEMA " WS " IS 'weird; ''quoted'' schema';"
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'it''s \"fine\"', 'ünïcödé');"
    "CREATE DOMAIN posint AS integer CHECK (VALUE > 0);"
    "CREATE TYPE pair AS (a int, \"B c\" text);"
    "CREATE TYPE floatrange AS RANGE (subtype = float8);"
    /* triggers that must not fire on copied rows */
    "CREATE TABLE insert_counter (tbl text PRIMARY KEY, n bigint NOT NULL);"
    "INSERT INTO insert_counter VALUES ('child', 0), ('events_1', 0),"
    " ('Events 2', 0), ('events_3', 0), ('events_default', 0);"
    "CREATE FUNCTION count_insert() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN UPDATE insert_counter SET n = n + 1 WHERE tbl = TG_TABLE_NAME;"
    " RETURN NULL; END$$;"
    "CREATE FUNCTION mark_note() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN NEW.note := NEW.note || '+'; RETURN NEW; END$$;"
    "CREATE TABLE parent (id int PRIMARY KEY, name text UNIQUE);"
    "CREATE TABLE child (id int PRIMARY KEY,"
    " parent_id int NOT NULL REFERENCES parent (id) ON DELETE CASCADE,"
    " note text COLLATE \"C\");"
    "CREATE TRIGGER child_counted AFTER INSERT ON child"
    " FOR EACH ROW EXECUTE FUNCTION count_insert();"
    "CREATE TRIGGER child_marked BEFORE INSERT ON child"
    " FOR EACH ROW EXECUTE FUNCTION mark_note();"
    "CREATE TRIGGER parent_disabled AFTER UPDATE ON parent"
    " FOR EACH STATEMENT EXECUTE FUNCTION count_insert();"
    "ALTER TABLE parent DISABLE TRIGGER parent_disabled;"
    "INSERT INTO parent SELECT i, 'p' || i FROM generate_series(1, 100) i;"
    "INSERT INTO child SELECT i, (i % 100) + 1, 'n' || i"
    " FROM generate_series(1, 1000) i;"
    "ALTER TABLE parent ADD CONSTRAINT name_nonempty CHECK (name <> '')"
    " NOT VALID;"
    "CREATE UNIQUE INDEX child_note_uq ON child (note);"
    "CREATE INDEX child_partial ON child (parent_id) WHERE note LIKE '%5+';"
    /* names */
    "CREATE TABLE " WS "." WT " ("
    " \"Id\" int PRIMARY KEY,"
    " \"Col \"\"A\"\"\" text CHECK (\"Col \"\"A\"\"\" <> 'forbidden'),"
    " \"col; b'\" int REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED,"
    " \"ñandú Ω\" text DEFAULT 'ü',"
    " \"UPPER\" mood);"
    "CREATE INDEX \"Idx \"\"weird\"\"\" ON " WS "." WT
    " (\"ñandú Ω\", \"Col \"\"A\"\"\");"
    "COMMENT ON COLUMN " WS "." WT ".\"ñandú Ω\" IS 'a bird';"
    "INSERT INTO " WS "." WT " SELECT i, 'a\"' || i, (i % 100) + 1,"
    " 'ñ' || i, 'it''s \"fine\"' FROM generate_series(1, 200) i;"
    "CREATE TABLE \"MixedCase\" (\"Select\" int UNIQUE, \"from\" text,"
    " \"ÄÖÜ\" text);"
    "INSERT INTO \"MixedCase\" VALUES (1, 'x', 'y'), (2, NULL, '€');"
    /* every type */
    "CREATE TABLE all_types ("
    " id int PRIMARY KEY, n numeric, f4 real, f8 double precision,"
    " i2 smallint, i8 bigint, t text, vc varchar(20), ch char(5),"
    " qc \"char\", nm name, ia int[], ta text[], j json, jb jsonb, b bytea,"
    " m mood, ma mood[], d posint, p pair, pa pair[], r4 int4range,"
    " rt tstzrange, fr floatrange, mr int4multirange, tv tsvector,"
    " tq tsquery, ci citext, hs hstore, x xml, mo money, iv interval,"
    " ts timestamptz, tsn timestamp, dt date, tm time, ttz timetz, u uuid,"
    " ip inet, nw cidr, mac macaddr, bv bit varying(64), bt bit(3),"
    " bo boolean, pt point, bx box, cir circle, pth path, pg polygon,"
    " ls lseg, ln line, o oid, pl pg_lsn);"
    "INSERT INTO all_types (id, n, f4, f8, t, ta, j, jb, b, m, ma, d, p, pa,"
    " tv, tq, ci, hs, x) VALUES"
    " (1, 'NaN', 'NaN', 'NaN',"
    "  E'tab\\there\\nnewline\\\\backslash\\rcr \\x01 end',"
    "  ARRAY[NULL, 'quote\"d', 'back\\slash', '', 'NULL', ' sp ', '{}', ',',"
    "  'é', E'new\\nline'],"
    "  '{\"k\": \"\\u0000 \\u00e9 \\ud83d\\ude00 \\\"q\\\"\", \"dup\": 1,"
    "  \"dup\": 2,  \"sp\" : [1,  2]}',"
    "  '{\"é\": \"\\u00e9\\ud83d\\ude00\", \"n\": 1.000, \"big\": 1e400,"
    "  \"arr\": [null, true, \"\\\"q\\\"\\\\\"], \"o\": {\"a\": {}}}',"
    "  '\\x00ff005c270a00'::bytea,"
    "  'it''s \"fine\"', '{sad,\"it''s \\\"fine\\\"\",NULL}', 1,"
    "  ROW(1, 'x,\"y\"\\z (p)'),"
    "  ARRAY[ROW(2, 'a')::pair, ROW(NULL, NULL)::pair, NULL],"
    "  'a:1A fat:2B cat:3 ''a b'':4 ''it''''s'':5', 'fat & (rat | !cat)',"
    "  'MiXeD Case', '\"k 1\"=>\"v\\\"1\", \"n\"=>NULL, \"\"=>\"\"',"
    "  '<a b=\"1\">é &amp; <![CDATA[<x>]]></a>');"
    "INSERT INTO all_types (id, n, f4, f8, i2, i8, t, ia, mo, iv, ts, tsn,"
    " dt, tm, ttz, r4, rt, fr, mr, bv, bt, bo, b, j, jb, x) VALUES"
    " (2, 'Infinity', 'Infinity', 'Infinity', 32767, 9223372036854775807,"
    "  '\\.', '{{1,NULL},{3,4}}', '92233720368547758.07', '178000000 years',"
    "  'infinity', 'infinity', 'infinity', '24:00:00', '24:00:00-15:59',"
    "  '[1,10)', '[2020-01-01 00:00:00+00,infinity)', '[1.5,2.5]',"
    "  '{[1,3),[5,7)}', B'101', B'111', true, '\\x', '\"\"', '[]', ''),"
    " (3, '-Infinity', '-Infinity', '-Infinity', -32768,"
    "  -9223372036854775808, E'\\\\.\\n\\\\.', '{}', '-92233720368547758.08',"
    "  '-178000000 years', '-infinity', '4714-11-24 00:00:00 BC',"
    "  '4713-01-01 BC', '00:00:00', '00:00:00+15:59', 'empty', '(,)',"
    "  '(,0]', '{}', B'', B'000', false, '\\x5c2c22', 'null', 'null',"
    "  '<?xml version=\"1.0\"?><d/>'),"
    " (4, '0', '-0', '-0', 0, 0, '', '{NULL}', '0', '0',"
    "  '2000-01-01 00:00:00.123456+05:30', '2000-02-29 23:59:59.999999',"
    "  '2000-02-29', '12:34:56.789', '12:34:56.789+05:30', '(,5]',"
    "  '[2000-01-01 00:00+00,2000-01-02 00:00+00)', 'empty', '{}',"
    "  B'0000000000000000000000000000000000000000000000000000000000000001',"
    "  B'010', NULL, NULL, '[1, \"2\", [3]]', '{\"a\": [1, {\"b\": null}]}',"
    "  NULL),"
    " (5, '12345678901234567890.12345678901234567890', '3.4028235e38',"
    "  '1.7976931348623157e308', 1, 1, 'plain', NULL, '0.01',"
    "  'P1Y2M-3DT4H5M6.789S', '1999-12-31 23:59:59.999999-12',"
    "  '1970-01-01 00:00:00', '1970-01-01', '23:59:59.999999',"
    "  '23:59:59.999999+14', '[-2147483648,2147483647)', NULL, NULL, NULL,"
    "  NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
    " (6, '-0.000000000000000000000000000001', '1.4e-45', '4.9e-324', -1,"
    "  -1, repeat('long ', 2000), '{-1}', '-0.01', '-1 microsecond',"
    "  '2038-01-19 03:14:08+00', '2038-01-19 03:14:08', '0001-01-01',"
    "  '00:00:00.000001', '00:00:00.000001-00:00:01', NULL, NULL, NULL,"
    "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
    " (7, '1e1000', '1e-37', '1e-307', NULL, NULL, NULL, NULL, NULL, NULL,"
    "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    "  NULL, NULL, NULL, NULL, NULL);"
    "INSERT INTO all_types (id, u, ip, nw, mac, pt, bx, cir, pth, pg, ls, ln,"
    " o, pl, vc, ch, qc, nm, tq) VALUES"
    " (8, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.1.5/24',"
    "  '10.0.0.0/8', '08:00:2b:01:02:03', '(1.5,-2)', '((0,0),(1,1))',"
    "  '<(0,0),1>', '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(1,0))',"
    "  '[(0,0),(1,1)]', '{1,-1,0}', 4294967295, 'FFFFFFFF/FFFFFFFF',"
    "  'x\"y''z\\', 'ab', 'q', 'nm', 'a <-> b'),"
    " (9, '00000000-0000-0000-0000-000000000000', '::1', '2001:db8::/32',"
    "  '00:00:00:00:00:00', '(NaN,Infinity)', '((-1,-1),(1e300,1e300))',"
    "  '<(0,0),0>', '((0,0))', '((0,0))', '[(0,0),(0,0)]', '{0,1,-1e-10}',"
    "  0, '0/0', '', '', '', '', 'x:*');"
    "INSERT INTO all_types (id) VALUES (10);"
    /* only built-in types: this one is copied in binary format */
    "CREATE TABLE builtin_types AS SELECT id, n, f4, f8, i2, i8, t, vc, ch,"
    " qc, nm, ia, ta, j, jb, b, r4, rt, mr, tv, tq, x, mo, iv, ts, tsn, dt,"
    " tm, ttz, u, ip, nw, mac, bv, bt, bo, pt, bx, cir, pth, pg, ls, ln, o,"
    " pl FROM all_types;"
    "ALTER TABLE builtin_types ADD PRIMARY KEY (id);"
    "CREATE INDEX all_types_jb ON all_types USING gin (jb);"
    "CREATE INDEX all_types_lower ON all_types ((lower(t)));"
    /* a range-partitioned table: 3 partitions and a default */
    "CREATE TABLE events (id int NOT NULL,"
    " at timestamptz NOT NULL DEFAULT '2020-01-01 00:00+00',"
    " payload jsonb, PRIMARY KEY (id)) PARTITION BY RANGE (id);"
    "CREATE TABLE events_1 PARTITION OF events"
    " FOR VALUES FROM (MINVALUE) TO (1000);"
    "CREATE TABLE " WS ".\"Events 2\" PARTITION OF events"
    " FOR VALUES FROM (1000) TO (2000);"
    "CREATE TABLE events_3 PARTITION OF events"
    " FOR VALUES FROM (2000) TO (3000);"
    "CREATE TABLE events_default PARTITION OF events DEFAULT;"
    "CREATE INDEX events_at ON events (at);"
    "CREATE INDEX events_3_payload ON events_3 USING gin (payload);"
    "CREATE TRIGGER events_counted AFTER INSERT ON events"
    " FOR EACH ROW EXECUTE FUNCTION count_insert();"
    "INSERT INTO events (id, payload) SELECT i, jsonb_build_object('i', i)"
    " FROM generate_series(-5, 3500) i;"
    /* identity, generated, dropped and added-later columns */
    "CREATE TABLE ident ("
    " a int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " b int GENERATED BY DEFAULT AS IDENTITY (START 100 INCREMENT 5),"
    " v text, g text GENERATED ALWAYS AS (upper(v) || '!') STORED,"
    " gone text);"
    "INSERT INTO ident (v, gone) SELECT 'v' || i, 'gone' || i"
    " FROM generate_series(1, 50) i;"
    "INSERT INTO ident (b, v) VALUES (7, 'explicit b');"
    "INSERT INTO ident (a, b, v) OVERRIDING SYSTEM VALUE"
    " VALUES (1000, 1, 'override');"
    "ALTER TABLE ident DROP COLUMN gone;"
    "ALTER TABLE ident ADD COLUMN added int DEFAULT 42;"
    "INSERT INTO ident (v, added) VALUES ('after drop', 43);"
    /* no key, duplicates; empty; unlogged; toasted */
    "CREATE TABLE nopk (a int, b text);"
    "ALTER TABLE nopk REPLICA IDENTITY FULL;"
    "INSERT INTO nopk SELECT i % 3, 'dup' FROM generate_series(1, 30) i;"
    "INSERT INTO nopk VALUES (NULL, NULL), (NULL, NULL);"
    "CREATE TABLE empty1 (id int PRIMARY KEY, v text);"
    "CREATE TABLE " WS ".\"Empty Two\" (x int);"
    "CREATE UNLOGGED TABLE unlogged_t (id int PRIMARY KEY, v text);"
    "INSERT INTO unlogged_t SELECT i, 'u' FROM generate_series(1, 10) i;"
    "CREATE TABLE toasty (id int PRIMARY KEY, doc text);"
    "INSERT INTO toasty SELECT i, repeat(md5(i::text), 10000)"
    " FROM generate_series(1, 20) i;"
    "CREATE TABLE inh_parent (id int, v text);"
    "CREATE TABLE inh_child (extra int) INHERITS (inh_parent);"
    "INSERT INTO inh_parent VALUES (1, 'parent only');"
    "INSERT INTO inh_child VALUES (2, 'child', 3);"
    "CREATE TABLE booking (id int PRIMARY KEY, during tstzrange,"
    " EXCLUDE USING gist (during WITH &&));"
    "INSERT INTO booking VALUES (1, '[2024-01-01,2024-01-02)'),"
    " (2, '[2024-01-02,2024-01-03)');"
    /* sequences: shared, unused, not called, descending, serial */
    "CREATE SEQUENCE shared_seq START 1000 INCREMENT 7;"
    "CREATE TABLE seq_a (id bigint PRIMARY KEY DEFAULT nextval('shared_seq'),"
    " v text);"
    "CREATE TABLE seq_b (id bigint PRIMARY KEY DEFAULT nextval('shared_seq'),"
    " v text);"
    "INSERT INTO seq_a (v) SELECT 'a' FROM generate_series(1, 10);"
    "INSERT INTO seq_b (v) SELECT 'b' FROM generate_series(1, 5);"
    "INSERT INTO seq_a (v) VALUES ('a again');"
    "CREATE SEQUENCE unused_seq;"
    "CREATE SEQUENCE not_called_seq;"
    "SELECT setval('not_called_seq', 77, false);"
    "CREATE SEQUENCE desc_seq INCREMENT -1 MINVALUE -1000 MAXVALUE -1"
    " START -1 CYCLE;"
    "SELECT nextval('desc_seq') FROM generate_series(1, 3);"
    "CREATE SEQUENCE " WS ".\"Weird Seq\" AS smallint START 10;"
    "SELECT nextval(format('%I.%I', 'Odd \"Schema\"; ''é'' ñ',"
    " 'Weird Seq')::regclass);"
    "CREATE TABLE serial_t (id serial PRIMARY KEY, v text);"
    "INSERT INTO serial_t (v) VALUES ('one'), ('two');"
    /* views, statistics */
    "CREATE VIEW child_view AS SELECT c.id, p.name FROM child c"
    " JOIN parent p ON p.id = c.parent_id;"
    "CREATE MATERIALIZED VIEW child_counts AS SELECT parent_id, count(*) AS n"
    " FROM child GROUP BY parent_id;"
    "COMMENT ON TABLE child IS 'children; ''quoted''';";

/*
 * A table big enough to be split with --split-size 1 (so copied as CTID
 * ranges), with a name and columns that need quoting, a dropped and a
 * generated column, holes (deleted rows) and moved tuples (updated rows).
 */
#define BIG WS ".\"Big \"\"Täble\"\"\""

static const char big_sql[] =
    "CREATE TABLE " BIG " (\"Id\" bigint PRIMARY KEY, \"pad; x\" text,"
    " dropped int, n int, \"Gen\" bigint GENERATED ALWAYS AS (\"Id\" * 2)"
    " STORED);"
    "INSERT INTO " BIG " (\"Id\", \"pad; x\", dropped, n)"
    " SELECT i, md5(i::text) || md5((i + 1)::text) || repeat('x', 30), i,"
    " i % 1000 FROM generate_series(1, 300000) i;"
    "ALTER TABLE " BIG " DROP COLUMN dropped;"
    "DELETE FROM " BIG " WHERE \"Id\" % 10 = 0;"
    "UPDATE " BIG " SET n = -n WHERE \"Id\" % 1000 = 1;"
    "CREATE INDEX big_n ON " BIG " (n);"
    "CREATE STATISTICS big_stats (dependencies) ON \"Id\", n FROM " BIG ";";

static const char source_db_settings[] =
    "ALTER DATABASE types_src SET DateStyle = 'SQL, DMY';"
    "ALTER DATABASE types_src SET IntervalStyle = 'sql_standard';"
    "ALTER DATABASE types_src SET extra_float_digits = -15;"
    "ALTER DATABASE types_src SET bytea_output = 'escape';"
    "ALTER DATABASE types_src SET TimeZone = 'Pacific/Chatham';"
    "ALTER DATABASE types_src SET default_transaction_read_only = on;";

static const char target_db_settings[] =
    "ALTER DATABASE types_tgt SET DateStyle = 'German, MDY';"
    "ALTER DATABASE types_tgt SET IntervalStyle = 'iso_8601';"
    "ALTER DATABASE types_tgt SET extra_float_digits = 0;"
    "ALTER DATABASE types_tgt SET TimeZone = 'America/St_Johns';";

/* Catalog counts that must be equal on both sides (and non-zero). */
static const char *const count_queries[] = {
    "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgstream')"
    " AND n.nspname !~ '^pg_toast'",
    "SELECT count(*) FROM pg_constraint WHERE contype = 'f'",
    "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal",
    "SELECT count(*) FROM pg_sequences",
};

START_TEST(sync_copies_every_type_and_name_exactly)
{
	static const char *const extra[] = {"--jobs", "2",       "--split-size",
	                                    "1",      "--quiet", NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char sql[256];
	PGconn *watch;
	Watch seen;

	itest_make_db(&source, "types_src", NULL);
	itest_make_db(&target, "types_tgt", NULL);
	ck_assert(cluster_psql(&source, "types_src", types_schema_sql));
	ck_assert(cluster_psql(&source, "types_src", big_sql));
	/* The big table is well over 1 MB: it is split into many parts. */
	itest_assert_scalar(
	    &source, "types_src",
	    "SELECT pg_relation_size(format('%I.%I', 'Odd \"Schema\"; ''é'' ñ',"
	    " 'Big \"Täble\"')::regclass) > 20 * 1024 * 1024",
	    "t");
	itest_conninfo(src, &source, "types_src");
	itest_conninfo(tgt, &target, "types_tgt");
	/* Sessions on either side default to output styles that differ from
	 * each other and from the defaults; the source is frozen read-only as
	 * for an offline migration.  None of it may change a value. */
	ck_assert(cluster_psql(&source, "postgres", source_db_settings));
	ck_assert(cluster_psql(&target, "postgres", target_db_settings));

	watch = cluster_connect(&target, "types_tgt", NULL);
	ck_assert_ptr_nonnull(watch);
	ck_assert(!run_and_kill(src, tgt, extra, watch, KILL_NEVER, 0, &seen));
	PQfinish(watch);
	/* The big table was copied in CTID ranges. */
	ck_assert_int_gt(seen.most_table_parts, 10);

	assert_same_database("types_src", "types_tgt", 20);
	for (size_t i = 0; i < sizeof(count_queries) / sizeof(count_queries[0]);
	     i++)
	{
		itest_assert_scalar_equal(&source, "types_src", &target, "types_tgt",
		                          count_queries[i]);
		snprintf(sql, sizeof(sql), "SELECT (%s) > 0", count_queries[i]);
		itest_assert_scalar(&target, "types_tgt", sql, "t");
	}
	/* Triggers did not fire on copied rows. */
	itest_assert_scalar(&target, "types_tgt",
	                    "SELECT n FROM insert_counter WHERE tbl = 'child'",
	                    "1000");
	itest_assert_scalar(&target, "types_tgt",
	                    "SELECT sum(n) FROM insert_counter", "4506");
	itest_assert_scalar(&target, "types_tgt",
	                    "SELECT count(*) FROM child"
	                    " WHERE note NOT LIKE '%+' OR note LIKE '%++'",
	                    "0");
	/* The generated column was computed, the dropped one is gone. */
	itest_assert_scalar(&target, "types_tgt", "SELECT g FROM ident WHERE a = 1",
	                    "V1!");
	itest_assert_scalar(&target, "types_tgt",
	                    "SELECT count(*) FROM pg_attribute WHERE attrelid = "
	                    "'ident'::regclass AND attname LIKE '%gone%'",
	                    "0");
	/* Sequences continue where the source's are. */
	itest_assert_scalar(&target, "types_tgt", "SELECT nextval('shared_seq')",
	                    "1112");
	itest_assert_scalar(&target, "types_tgt",
	                    "SELECT nextval('not_called_seq')", "77");
	itest_assert_scalar(&target, "types_tgt",
	                    "INSERT INTO ident (v) VALUES ('new') RETURNING a",
	                    "53");
	itest_assert_scalar(&target, "types_tgt",
	                    "SELECT count(*) FROM ONLY inh_parent", "1");
	/* Constraints are enforced on the target (two errors expected). */
	ck_assert(!cluster_psql(&target, "types_tgt",
	                        "INSERT INTO child VALUES (5000, 12345, 'x')"));
	ck_assert(!cluster_psql(&target, "types_tgt",
	                        "INSERT INTO all_types (id) VALUES (1)"));
	assert_no_traces("types_src", "pgstream", "types_tgt");
}
END_TEST

/* ---- test 2: a target login that is not a superuser ---- */

static const char owner_schema_sql[] =
    "CREATE EXTENSION citext;"
    "CREATE TYPE status AS ENUM ('new', 'done');"
    "CREATE SCHEMA app;"
    "CREATE TABLE app.customers ("
    " id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " email citext UNIQUE NOT NULL, st status NOT NULL DEFAULT 'new');"
    "CREATE SEQUENCE order_no START 5000;"
    "CREATE TABLE orders (id bigint GENERATED BY DEFAULT AS IDENTITY,"
    " no int NOT NULL DEFAULT nextval('order_no'),"
    " customer_id int NOT NULL REFERENCES app.customers,"
    " placed date NOT NULL, PRIMARY KEY (id, placed))"
    " PARTITION BY RANGE (placed);"
    "CREATE TABLE orders_2023 PARTITION OF orders"
    " FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');"
    "CREATE TABLE orders_2024 PARTITION OF orders"
    " FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
    "CREATE TABLE audit (n bigint NOT NULL);"
    "INSERT INTO audit VALUES (0);"
    "CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN UPDATE audit SET n = n + 1; RETURN NULL; END$$;"
    "CREATE TRIGGER orders_audit AFTER INSERT ON orders"
    " FOR EACH ROW EXECUTE FUNCTION bump();"
    "CREATE TABLE notes (id serial PRIMARY KEY, body text);"
    "CREATE INDEX orders_customer ON orders (customer_id);"
    "INSERT INTO app.customers (email)"
    " SELECT 'User' || i || '@Example.com' FROM generate_series(1, 500) i;"
    "UPDATE app.customers SET st = 'done' WHERE id % 7 = 0;"
    "INSERT INTO orders (customer_id, placed)"
    " SELECT (i % 500) + 1, date '2023-01-01' + (i % 700)"
    " FROM generate_series(1, 5000) i;"
    "INSERT INTO notes (body) VALUES ('a'), ('b');"
    /* Row security the target login is subject to (it owns the table and
     * security is forced): all rows are still copied and counted. */
    "CREATE TABLE secrets (id int PRIMARY KEY, owner_name text NOT NULL);"
    "INSERT INTO secrets SELECT i, CASE WHEN i % 2 = 0 THEN 'alice'"
    " ELSE 'bob' END FROM generate_series(1, 100) i;"
    "ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;"
    "ALTER TABLE secrets FORCE ROW LEVEL SECURITY;"
    "CREATE POLICY own_rows ON secrets USING (owner_name = current_user);"
    "COMMENT ON TABLE orders IS 'orders';";

START_TEST(sync_works_with_a_target_login_that_only_owns_the_database)
{
	static const char *const extra[] = {"--jobs", "2", "--slot", "owner_slot",
	                                    NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];

	itest_make_db(&source, "owner_src", NULL);
	ck_assert(cluster_psql(&source, "owner_src", owner_schema_sql));
	ck_assert(cluster_psql(&target, "postgres",
	                       "DROP DATABASE IF EXISTS owner_tgt WITH (FORCE);"));
	ck_assert(cluster_psql(&target, "postgres",
	                       "DROP ROLE IF EXISTS migrator;"
	                       "CREATE ROLE migrator LOGIN NOSUPERUSER"
	                       " NOCREATEDB NOCREATEROLE"));
	itest_make_db(&target, "owner_tgt", "migrator");
	itest_assert_scalar(&target, "postgres",
	                    "SELECT rolsuper OR rolcreatedb OR rolcreaterole"
	                    " OR rolreplication OR rolbypassrls FROM pg_roles"
	                    " WHERE rolname = 'migrator'",
	                    "f");
	itest_conninfo(src, &source, "owner_src");
	snprintf(tgt, sizeof(tgt),
	         "host='%s' port=%d user=migrator dbname=owner_tgt", target.basedir,
	         target.port);

	ck_assert_int_eq(run_sync(src, tgt, extra, NULL), 0);

	assert_same_database("owner_src", "owner_tgt", 7);
	for (size_t i = 0; i < sizeof(count_queries) / sizeof(count_queries[0]);
	     i++)
		itest_assert_scalar_equal(&source, "owner_src", &target, "owner_tgt",
		                          count_queries[i]);
	itest_assert_scalar(&target, "owner_tgt", "SELECT n FROM audit", "5000");
	/* Everything was created by (and so belongs to) the migrator login. */
	itest_assert_scalar(
	    &target, "owner_tgt",
	    "SELECT coalesce(string_agg(c.relname || ':' || r.rolname,"
	    " ', '), '') FROM pg_class c"
	    " JOIN pg_roles r ON r.oid = c.relowner"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE n.nspname IN ('public', 'app')"
	    " AND r.rolname <> 'migrator'",
	    "");
	assert_no_traces("owner_src", "owner_slot", "owner_tgt");
}
END_TEST

/*
 * The target database already has an extension the source uses, created by
 * another role (an administrator, as on managed services): the target has
 * no tables, so it is accepted as empty, and the extension is there.  This
 * is the documented way to use an extension the target login may not
 * create (docs/privileges.md: "any other must exist beforehand, created by
 * a superuser"; the restore runs CREATE EXTENSION IF NOT EXISTS), so the
 * migration must go through: exit 0, identical.
 */
START_TEST(sync_handles_an_extension_already_created_by_another_role)
{
	static const char *const extra[] = {"--slot", "ext_slot", "--quiet", NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char *err = NULL;
	int status;

	itest_make_db(&source, "ext_src", NULL);
	ck_assert(cluster_psql(&source, "ext_src",
	                       "CREATE EXTENSION citext;"
	                       "CREATE TABLE e (id int PRIMARY KEY, c citext);"
	                       "INSERT INTO e VALUES (1, 'A'), (2, 'b')"));
	ck_assert(cluster_psql(&target, "postgres",
	                       "DROP DATABASE IF EXISTS ext_tgt WITH (FORCE);"));
	ck_assert(cluster_psql(&target, "postgres",
	                       "DROP ROLE IF EXISTS ext_migrator;"
	                       "CREATE ROLE ext_migrator LOGIN NOSUPERUSER"));
	itest_make_db(&target, "ext_tgt", "ext_migrator");
	ck_assert(cluster_psql(&target, "ext_tgt", "CREATE EXTENSION citext"));
	itest_conninfo(src, &source, "ext_src");
	snprintf(tgt, sizeof(tgt),
	         "host='%s' port=%d user=ext_migrator dbname=ext_tgt",
	         target.basedir, target.port);

	status = run_sync(src, tgt, extra, &err);
	ck_assert_msg(status == 0, "sync exited %d with the extension already on "
	              "the target:\n%s", status, err ? err : "");
	free(err);
	assert_no_traces("ext_src", "ext_slot", "ext_tgt");
	assert_same_database("ext_src", "ext_tgt", 1);
}
END_TEST

/*
 * A source whose schema public has an owner other than the bootstrap
 * superuser (every database restored from an old dump, and every database
 * on PostgreSQL 14 and older where pg_dump then emits a "SCHEMA public"
 * entry whose SQL, owners left out, is only a comment): that step does
 * nothing and the migration goes through (issue 15: it stopped at step 1
 * with "unknown server error").
 */
START_TEST(sync_handles_a_public_schema_with_another_owner)
{
	static const char *const extra[] = {"--slot", "pubown_slot", "--quiet", NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char *err = NULL;
	int status;

	ck_assert(cluster_psql(&source, "postgres",
	                       "DROP ROLE IF EXISTS pubown_owner;"
	                       "CREATE ROLE pubown_owner NOLOGIN"));
	itest_make_db(&source, "pubown_src", NULL);
	ck_assert(cluster_psql(&source, "pubown_src",
	                       "ALTER SCHEMA public OWNER TO pubown_owner;"
	                       "COMMENT ON SCHEMA public IS 'the application schema';"
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g"));
	itest_make_db(&target, "pubown_tgt", NULL);
	itest_conninfo(src, &source, "pubown_src");
	itest_conninfo(tgt, &target, "pubown_tgt");
	status = run_sync(src, tgt, extra, &err);
	ck_assert_msg(status == 0, "sync exited %d with public owned by another role:\n%s",
	              status, err ? err : "");
	free(err);
	assert_no_traces("pubown_src", "pubown_slot", "pubown_tgt");
	itest_assert_scalar(&target, "pubown_tgt", "SELECT count(*) FROM t", "100");
}
END_TEST

/* ---- test 3: refusals change nothing ---- */

START_TEST(sync_refuses_a_non_empty_target)
{
	static const char *const extra[] = {"--slot", "refuse_slot", "--quiet",
	                                    NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char *err = NULL;
	int status;

	itest_make_db(&source, "refuse_src", NULL);
	itest_make_db(&target, "refuse_tgt", NULL);
	ck_assert(cluster_psql(&source, "refuse_src",
	                       "CREATE TABLE t (id int PRIMARY KEY);"
	                       "INSERT INTO t VALUES (1)"));
	ck_assert(cluster_psql(&target, "refuse_tgt",
	                       "CREATE TABLE existing (v text);"
	                       "INSERT INTO existing VALUES ('keep me')"));
	itest_conninfo(src, &source, "refuse_src");
	itest_conninfo(tgt, &target, "refuse_tgt");

	status = run_sync(src, tgt, extra, &err);
	ck_assert_int_eq(status, 2);
	ck_assert_msg(err != NULL &&
	                  strstr(err, "target database is not empty: it holds 1 "
	                              "table(s), for example public.existing; "
	                              "migrate into an empty database") != NULL,
	              "stderr does not say the target is not empty: %s",
	              err ? err : "");
	free(err);

	assert_no_traces("refuse_src", "refuse_slot", "refuse_tgt");
	itest_assert_scalar(
	    &target, "refuse_tgt",
	    "SELECT string_agg(relname, ',') FROM pg_class c"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
	    " AND n.nspname !~ '^pg_toast' AND c.relkind <> 'i'",
	    "existing");
	itest_assert_scalar(&target, "refuse_tgt",
	                    "SELECT string_agg(v, ',') FROM existing", "keep me");
}
END_TEST

START_TEST(sync_usage_errors_change_nothing)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *bad_jobs[] = {itest_pgstream_bin(),
	                          "sync",
	                          "--source",
	                          src,
	                          "--target",
	                          tgt,
	                          "--no-follow",
	                          "--jobs",
	                          "0",
	                          "--slot",
	                          "usage_slot",
	                          NULL};
	const char *bad_split[] = {itest_pgstream_bin(),
	                           "sync",
	                           "--source",
	                           src,
	                           "--target",
	                           tgt,
	                           "--no-follow",
	                           "--split-size",
	                           "0",
	                           "--slot",
	                           "usage_slot",
	                           NULL};
	const char *no_target[] = {
	    itest_pgstream_bin(), "sync",   "--source",   src,
	    "--no-follow",        "--slot", "usage_slot", NULL};
	const char *const *cases[] = {bad_jobs, bad_split, no_target};
	static const char *const messages[] = {
	    "pgstream sync: --jobs must be between 1 and 256\n",
	    "pgstream sync: --split-size must be a positive number of MB\n",
	    "pgstream sync: --source and --target are required\n"};

	itest_make_db(&source, "usage_src", NULL);
	itest_make_db(&target, "usage_tgt", NULL);
	ck_assert(cluster_psql(&source, "usage_src",
	                       "CREATE TABLE t (id int PRIMARY KEY)"));
	itest_conninfo(src, &source, "usage_src");
	itest_conninfo(tgt, &target, "usage_tgt");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char *out = NULL;
		char *err = NULL;
		int status = proc_run(cases[i], NULL, STATUS_TIMEOUT_MS, &out, &err);

		ck_assert_msg(status == 3, "case %zu: status %d, stderr: %s", i, status,
		              err ? err : "");
		ck_assert_msg(err != NULL && strncmp(err, messages[i],
		                                     strlen(messages[i])) == 0,
		              "case %zu: stderr does not begin with \"%s\": %s", i,
		              messages[i], err ? err : "");
		free(out);
		free(err);
	}
	assert_no_traces("usage_src", "usage_slot", "usage_tgt");
	itest_assert_scalar(
	    &target, "usage_tgt",
	    "SELECT count(*) FROM pg_class c"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
	    " AND n.nspname !~ '^pg_toast'",
	    "0");
}
END_TEST

/* ---- a source login that row security applies to ---- */

/*
 * The source login has REPLICATION and reads every table (pg_read_all_data)
 * but is neither superuser nor owner, and has no BYPASSRLS: a table with
 * row security shows it only some rows.  A copy must never exit 0 with rows
 * missing; pg_dump, for one, sets row_security = off so that such a read
 * fails instead of returning fewer rows.  With BYPASSRLS the same migration
 * goes through.
 */
static const char rls_source_sql[] =
    "CREATE TABLE open_t (id int PRIMARY KEY);"
    "INSERT INTO open_t SELECT generate_series(1, 100);"
    "CREATE TABLE guarded (id int PRIMARY KEY, v text);"
    "INSERT INTO guarded SELECT i, 'v' || i FROM generate_series(1, 100) i;"
    "ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;"
    "CREATE POLICY even_only ON guarded USING (id % 2 = 0);";

START_TEST(sync_never_loses_rows_hidden_by_row_security_on_the_source)
{
	static const char *const extra[] = {"--slot", "rls_slot", "--quiet", NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char *err = NULL;
	int status;

	ck_assert(cluster_psql(&source, "postgres",
	                       "DROP ROLE IF EXISTS reader;"
	                       "CREATE ROLE reader LOGIN REPLICATION NOBYPASSRLS;"
	                       "GRANT pg_read_all_data TO reader"));
	itest_make_db(&source, "rls_src", NULL);
	itest_make_db(&target, "rls_tgt", NULL);
	ck_assert(cluster_psql(&source, "rls_src", rls_source_sql));
	snprintf(src, sizeof(src), "host='%s' port=%d user=reader dbname=rls_src",
	         source.basedir, source.port);
	itest_conninfo(tgt, &target, "rls_tgt");

	status = run_sync(src, tgt, extra, &err);
	if (status == 0)
	{
		/* Lists what is missing, then fails. */
		assert_same_database("rls_src", "rls_tgt", 2);
		ck_abort_msg("sync exited 0 although row security hid rows");
	}
	/* preflight finds it before anything changes: exit 2, nothing left */
	ck_assert_msg(status == 2, "sync exited %d, expected 2:\n%s", status,
	              err ? err : "");
	ck_assert_msg(err != NULL && strstr(err, "row_security (public.guarded)") !=
	                                 NULL &&
	                  strstr(err, "ALTER ROLE reader BYPASSRLS") != NULL,
	              "stderr does not name row security on public.guarded and "
	              "its fix: %s",
	              err ? err : "");
	free(err);
	assert_no_traces("rls_src", "rls_slot", "rls_tgt");

	/* Allowed to bypass row security, the same login copies everything. */
	ck_assert(cluster_psql(&source, "postgres", "ALTER ROLE reader BYPASSRLS"));
	ck_assert(cluster_psql(
	    &source, "postgres",
	    "SELECT count(pg_drop_replication_slot(slot_name))"
	    " FROM pg_replication_slots WHERE slot_name = 'rls_slot'"));
	itest_make_db(&target, "rls_tgt", NULL);
	ck_assert_int_eq(run_sync(src, tgt, extra, NULL), 0);
	assert_same_database("rls_src", "rls_tgt", 2);
	itest_assert_scalar(&target, "rls_tgt", "SELECT count(*) FROM guarded",
	                    "100");
	assert_no_traces("rls_src", "rls_slot", "rls_tgt");
}
END_TEST

/* ---- test 5: status without state ---- */

START_TEST(status_reports_phase_none_without_state)
{
	const char *text_argv[] = {itest_pgstream_bin(), "status", "--target", NULL,
	                           NULL};
	char tgt[ITEST_CONNINFO_MAX];
	char *out;
	int status;

	itest_make_db(&target, "status_tgt", NULL);
	itest_conninfo(tgt, &target, "status_tgt");
	out = run_status(tgt, &status);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_nonnull(out);
	itest_strip_space(out);
	ck_assert_str_eq(out, "{\"phase\":\"none\"}");
	free(out);

	text_argv[3] = tgt;
	ck_assert_int_eq(proc_run(text_argv, NULL, STATUS_TIMEOUT_MS, &out, NULL),
	                 0);
	ck_assert_ptr_nonnull(strstr(out, "phase: none"));
	free(out);
	/* Looking did not create anything. */
	itest_assert_scalar(
	    &target, "status_tgt",
	    "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'", "0");
}
END_TEST

/* ---- test 4: kill -9 at any moment, run again ---- */

/* About 1M rows in a few tables, with indexes worth building. */
static const char kill_schema_sql[] =
    "CREATE TABLE k_ref (id int PRIMARY KEY, name text NOT NULL);"
    "CREATE TABLE k_counter (n bigint NOT NULL);"
    "INSERT INTO k_counter VALUES (0);"
    "CREATE FUNCTION k_bump() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN UPDATE k_counter SET n = n + 1; RETURN NULL; END$$;"
    "CREATE TRIGGER k_ref_bump AFTER INSERT ON k_ref"
    " FOR EACH ROW EXECUTE FUNCTION k_bump();"
    "INSERT INTO k_ref SELECT i, 'ref' || i FROM generate_series(1, 1000) i;"
    "CREATE TABLE k_big (id bigint PRIMARY KEY, ref int REFERENCES k_ref,"
    " pad text);"
    "INSERT INTO k_big SELECT i, (i % 1000) + 1,"
    " md5(i::text) || md5((i * 7)::text) || repeat('k', 20)"
    " FROM generate_series(1, 500000) i;"
    "CREATE INDEX k_big_pad ON k_big (pad);"
    "CREATE INDEX k_big_ref ON k_big (ref);"
    "CREATE TABLE k_mid (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " v text UNIQUE, w int);"
    "INSERT INTO k_mid (v, w) SELECT 'v' || i || repeat('m', 40), i % 97"
    " FROM generate_series(1, 250000) i;"
    "CREATE INDEX k_mid_w ON k_mid (w, v);"
    "CREATE TABLE k_nopk (a int, b text);"
    "INSERT INTO k_nopk SELECT i % 5000, 'dup' || (i % 5000)"
    " FROM generate_series(1, 150000) i;"
    "CREATE TABLE k_part (id int NOT NULL, v text, PRIMARY KEY (id))"
    " PARTITION BY RANGE (id);"
    "CREATE TABLE k_part_1 PARTITION OF k_part"
    " FOR VALUES FROM (MINVALUE) TO (50000);"
    "CREATE TABLE k_part_2 PARTITION OF k_part DEFAULT;"
    "INSERT INTO k_part SELECT i, md5(i::text)"
    " FROM generate_series(1, 100000) i;"
    "CREATE SEQUENCE k_seq;"
    "SELECT setval('k_seq', 123456);";

/* After a kill: status still works and shows the phase the run was in. */
static void
assert_status_shows(const char *tgt, const char *phase)
{
	char expected[64];
	char *out;
	int status;

	out = run_status(tgt, &status);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_nonnull(out);
	itest_strip_space(out);
	snprintf(expected, sizeof(expected), "{\"phase\":\"%s\"", phase);
	ck_assert_msg(strncmp(out, expected, strlen(expected)) == 0,
	              "status: expected %s..., got %s", expected, out);
	free(out);
}

typedef struct KillStep
{
	KillAt at;
	long delay_ms;
} KillStep;

/*
 * Kill a migration into a fresh target at each step in turn, then run it to
 * completion and compare.  Every step must land: a kill point the run never
 * reached (it finished first, or it had already dropped its state when the
 * signal came) fails the test, since the moment it names was not tested.
 * Returns how many kills landed during the copy.
 */
static int
kill_scenario(const char *tgtdb, const char *owner, const char *slot,
              const KillStep *steps, size_t nsteps)
{
	const char *extra[] = {"--split-size", "1",      "--jobs", "2",
	                       "--quiet",      "--slot", slot,     NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	PGconn *watch;
	int copy_kills = 0;
	long max_parts = 0;

	itest_make_db(&target, tgtdb, owner);
	itest_conninfo(src, &source, "kill_src");
	if (owner == NULL)
		itest_conninfo(tgt, &target, tgtdb);
	else
		snprintf(tgt, sizeof(tgt), "host='%s' port=%d user=%s dbname=%s",
		         target.basedir, target.port, owner, tgtdb);
	watch = cluster_connect(&target, tgtdb, NULL);
	ck_assert_ptr_nonnull(watch);
	for (size_t i = 0; i < nsteps; i++)
	{
		Watch seen;

		ck_assert_msg(run_and_kill(src, tgt, extra, watch, steps[i].at,
		                           steps[i].delay_ms, &seen),
		              "%s: kill point %zu of %zu (%s+%ld ms) was never "
		              "reached: sync finished first",
		              tgtdb, i + 1, nsteps, kill_at_names[steps[i].at],
		              steps[i].delay_ms);
		if (seen.most_table_parts > max_parts)
			max_parts = seen.most_table_parts;
		/* The process is gone: the state no longer moves. */
		watch_read(watch, &seen);
		/* no state left although a plan was seen: the run had completed
		 * (and dropped its state) just before the signal came */
		ck_assert_msg(strcmp(seen.phase, "none") != 0 ||
		                  seen.most_table_parts == 0,
		              "%s: kill point %zu of %zu (%s+%ld ms) came after the "
		              "run had finished (no state left)",
		              tgtdb, i + 1, nsteps, kill_at_names[steps[i].at],
		              steps[i].delay_ms);
		/* a kill aimed at a phase must land in it, not in the next one */
		if (steps[i].at != KILL_AFTER_MS)
			ck_assert_msg(strcmp(seen.phase, kill_at_names[steps[i].at]) == 0,
			              "%s: kill point %zu of %zu (%s+%ld ms) landed in "
			              "phase %s",
			              tgtdb, i + 1, nsteps, kill_at_names[steps[i].at],
			              steps[i].delay_ms, seen.phase);
		/* in the copy: with parts of this run's plan done, not all */
		if (steps[i].at == KILL_IN_COPY)
			ck_assert_msg(seen.parts_done > 0 && seen.parts_done < seen.parts,
			              "%s: kill point %zu of %zu (copy+%ld ms) landed with "
			              "%ld of %ld parts done",
			              tgtdb, i + 1, nsteps, steps[i].delay_ms,
			              seen.parts_done, seen.parts);
		if (strcmp(seen.phase, "copy") == 0 && seen.parts_done > 0)
			copy_kills++;
		/* (a kill before the state was created leaves phase "none") */
		assert_status_shows(tgt, seen.phase);
	}
	PQfinish(watch);
	ck_assert_int_eq(run_sync(src, tgt, extra, NULL), 0);
	if (max_parts > 0)
		ck_assert_msg(max_parts > 10, "k_big was split in %ld parts only",
		              max_parts);
	assert_same_database("kill_src", tgtdb, 6);
	itest_assert_scalar(&target, tgtdb, "SELECT n FROM k_counter", "1000");
	assert_no_traces("kill_src", slot, tgtdb);
	return copy_kills;
}

START_TEST(sync_resumes_after_kill_9)
{
	/* Twice in each phase (the second time after resuming in it). */
	static const KillStep phases[] = {
	    {KILL_IN_COPY, 0},    {KILL_IN_COPY, 300}, {KILL_IN_INDEX, 150},
	    {KILL_IN_INDEX, 400}, {KILL_IN_FINAL, 0},  {KILL_IN_FINAL, 200},
	};
	/* Blind moments: before or during the schema, early and late in the
	 * copy, the very start of index. */
	static const KillStep delays[] = {
	    {KILL_AFTER_MS, 30},   {KILL_AFTER_MS, 250}, {KILL_AFTER_MS, 900},
	    {KILL_AFTER_MS, 2500}, {KILL_IN_INDEX, 0},
	};
	static const KillStep owner_steps[] = {
	    {KILL_IN_COPY, 100},
	    {KILL_IN_INDEX, 200},
	    {KILL_IN_FINAL, 0},
	};
	int copy_kills;

	itest_make_db(&source, "kill_src", NULL);
	ck_assert(cluster_psql(&source, "kill_src", kill_schema_sql));
	ck_assert(cluster_psql(&source, "kill_src", "ANALYZE"));
	itest_assert_scalar(
	    &source, "kill_src",
	    "SELECT (SELECT count(*) FROM k_big) + (SELECT count(*) FROM"
	    " k_mid) + (SELECT count(*) FROM k_nopk) + (SELECT count(*)"
	    " FROM k_part) + (SELECT count(*) FROM k_ref)",
	    "1001000");

	copy_kills = kill_scenario("kill_tgt_a", NULL, "kill_slot_a", phases,
	                           sizeof(phases) / sizeof(phases[0]));
	copy_kills += kill_scenario("kill_tgt_b", NULL, "kill_slot_b", delays,
	                            sizeof(delays) / sizeof(delays[0]));
	/* Resuming as a login that only owns the target database (TRUNCATE,
	 * steps already done, ...). */
	ck_assert(cluster_psql(&target, "postgres",
	                       "DROP ROLE IF EXISTS migrator;"
	                       "CREATE ROLE migrator LOGIN NOSUPERUSER"));
	copy_kills +=
	    kill_scenario("kill_tgt_c", "migrator", "kill_slot_c", owner_steps,
	                  sizeof(owner_steps) / sizeof(owner_steps[0]));
	/* With 1M rows in ~1 MB parts, the copy cannot have been missed every
	 * time. */
	ck_assert_int_ge(copy_kills, 1);
}
END_TEST

Suite *
sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("sync");
	TCase *kill = tcase_create("kill");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, sync_copies_every_type_and_name_exactly);
	tcase_add_test(tc,
	               sync_works_with_a_target_login_that_only_owns_the_database);
	tcase_add_test(tc,
	               sync_handles_an_extension_already_created_by_another_role);
	tcase_add_test(tc, sync_handles_a_public_schema_with_another_owner);
	tcase_add_test(tc, sync_refuses_a_non_empty_target);
	tcase_add_test(tc,
	               sync_never_loses_rows_hidden_by_row_security_on_the_source);
	tcase_add_test(tc, sync_usage_errors_change_nothing);
	tcase_add_test(tc, status_reports_phase_none_without_state);
	suite_add_tcase(s, tc);

	tcase_add_unchecked_fixture(kill, clusters_setup, clusters_teardown);
	tcase_set_timeout(kill, 900);
	tcase_add_test(kill, sync_resumes_after_kill_9);
	suite_add_tcase(s, kill);
	return s;
}
