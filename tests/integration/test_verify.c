/*
 * tests/integration/test_verify.c -- `pgstream verify` proves a migration,
 * names every difference, and `cutover --verify` refuses a target whose
 * contents differ while its row counts agree.
 *
 * One source cluster (wal_level=logical) and one target cluster whose
 * databases belong to the non-superuser "migrator", as in test_cutover.c.
 *
 *   a_migrated_database_verifies
 *       a varied schema (keyed and keyless tables, an inheritance child
 *       whose column order differs on the target, partitions, a view, a
 *       function, a sequence, an index, a domain, an enum, a composite
 *       type, a materialized view) and a publication of the user's,
 *       migrated by sync and cutover: verify exits 0, --json says every
 *       table matches, the publication is an expected difference, owners
 *       (migrator on the target) are notes.
 *   a_changed_row_and_a_deleted_row_are_named
 *       one value changed on the target: exit 1 naming that table, row
 *       counts equal; then a row deleted: the counts are named.
 *   a_dropped_index_and_function_are_named
 *       verify --schema after DROP INDEX and DROP FUNCTION on the target:
 *       exit 1 naming both; verify --data still exits 0.
 *   a_chunked_table_finds_one_changed_row
 *       20000 rows cut into key ranges of 1000 (--chunk-rows): identical
 *       sides exit 0; one row changed in the middle: exit 1, one key range
 *       of 20 differs.
 *   cutover_verify_refuses_a_corrupted_target_and_passes_a_clean_one
 *       a value changed on the target while sync streams (row counts still
 *       equal): cutover --verify exits 1 naming the table, before its point
 *       of no return (the migration state is kept); the row repaired and
 *       sync started again, cutover --verify completes.
 *   floats_compare_across_majors
 *       float8 and real values on a PostgreSQL 11 server and on the
 *       current one: 11 prints them with extra digits, 12+ in the shortest
 *       exact form, so they are compared in binary; verify --data exits 0,
 *       and a value changed in its last bit is found.
 *   usage_and_connection_errors
 *       missing options exit 3; an unreachable target exits 4 and the
 *       password never appears.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define TEST_TIMEOUT_S 240
#define CMD_TIMEOUT_MS 120000
#define PHASE_TIMEOUT_MS 120000
#define MAX_ARGS 32

static Cluster source;
static Cluster target;

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "verify-source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "verify-target", 0));
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
	ck_assert(cluster_psql(&target, "postgres", "CREATE ROLE migrator LOGIN"));
}

static void
clusters_teardown(void)
{
	cluster_destroy(&source);
	cluster_destroy(&target);
}

typedef struct Mig
{
	char srcdb[64];
	char tgtdb[64];
	char slot[64];
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
} Mig;

/* The varied schema of the source, with a few rows in each table. */
static const char varied_sql[] =
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');"
    "CREATE TYPE pair AS (a int, b text);"
    "CREATE DOMAIN posint AS int CHECK (VALUE > 0);"
    "CREATE SEQUENCE counter START 42;"
    "CREATE TABLE t (id int PRIMARY KEY, v text, m mood, p pair, d posint,"
    " f float8, ts timestamptz, b bytea, n numeric);"
    "CREATE INDEX t_v_idx ON t (v);"
    "CREATE TABLE nokey (a int, b text);"
    "CREATE TABLE parent (id int PRIMARY KEY, x text);"
    "CREATE TABLE child (y int) INHERITS (parent);"
    "CREATE TABLE pt (id int, k int, v text, PRIMARY KEY (id, k))"
    " PARTITION BY RANGE (k);"
    "CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (100);"
    "CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (100) TO (200);"
    "CREATE VIEW v AS SELECT id, v FROM t WHERE id > 1;"
    "CREATE FUNCTION add_one(i int) RETURNS int LANGUAGE sql IMMUTABLE"
    " AS 'SELECT i + 1';"
    "CREATE MATERIALIZED VIEW mv AS SELECT id, v FROM t;"
    "INSERT INTO t SELECT i, 'v' || i, 'ok', ROW(i, 'x,y'::text)::pair, i, i / 3.0,"
    " '2020-01-01'::timestamptz + i * interval '1 hour', '\\x00ff', i * 1.5"
    " FROM generate_series(1, 200) i;"
    "INSERT INTO t VALUES (201, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
    "INSERT INTO nokey VALUES (1, 'a'), (1, 'a'), (2, NULL), (3, '');"
    "INSERT INTO parent VALUES (1, 'p');"
    "INSERT INTO child (id, x, y) VALUES (2, 'c', 3), (3, NULL, 4);"
    "INSERT INTO pt SELECT i, i % 200, 'x' || i FROM generate_series(1, 500) i;"
    "REFRESH MATERIALIZED VIEW mv;"
    "CREATE PUBLICATION app_pub FOR TABLE t;";

static void
mig_init(Mig *m, const char *name, const char *sql)
{
	snprintf(m->srcdb, sizeof(m->srcdb), "%s_src", name);
	snprintf(m->tgtdb, sizeof(m->tgtdb), "%s_tgt", name);
	snprintf(m->slot, sizeof(m->slot), "%s_slot", name);
	itest_make_db(&source, m->srcdb, NULL);
	itest_make_db(&target, m->tgtdb, "migrator");
	ck_assert(cluster_psql(&source, m->srcdb, sql));
	itest_conninfo(m->src, &source, m->srcdb);
	itest_migrator_conninfo(m->tgt, &target, m->tgtdb);
}

static void
spawn_sync(Proc *p, const Mig *m)
{
	const char *argv[] = {itest_pgstream_bin(), "sync", "--source", m->src,
	                      "--target", m->tgt, "--slot", m->slot,
	                      "--no-key-tables=full", "--quiet", NULL};

	ck_assert(proc_spawn(p, argv, NULL));
}

/* The phase recorded on the target ("" if there is none). */
static char *
phase_of(const Mig *m)
{
	char *exists = cluster_query_scalar(&target, m->tgtdb,
	                                    "SELECT to_regclass('pgstream.migration')"
	                                    " IS NOT NULL");
	char *v = NULL;

	if (exists != NULL && strcmp(exists, "t") == 0)
		v = cluster_query_scalar(&target, m->tgtdb,
		                         "SELECT phase FROM pgstream.migration");
	free(exists);
	return v != NULL ? v : strdup("");
}

static void
start_streaming(Proc *sync, const Mig *m)
{
	long long deadline = proc_now_ms() + PHASE_TIMEOUT_MS;

	spawn_sync(sync, m);
	for (;;)
	{
		int st = proc_wait(sync, 0);
		char *now = phase_of(m);
		bool done = strcmp(now, "streaming") == 0;

		if (st != PROC_TIMEOUT)
		{
			itest_print_proc("pgstream sync", sync, st);
			ck_abort_msg("sync exited with %d before streaming (at %s)", st, now);
		}
		if (!done && proc_now_ms() > deadline)
			ck_abort_msg("phase streaming not reached (at %s)", now);
		free(now);
		if (done)
			return;
		itest_sleep_ms(100);
	}
}

typedef struct CmdResult
{
	int status;
	char *out;
	char *err;
} CmdResult;

static void
cmd_free(CmdResult *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/* pgstream <cmd> --source S --target T <extra...> */
static void
run_cmd(CmdResult *r, const char *cmd, const char *src, const char *tgt,
        const char *const extra[])
{
	const char *argv[MAX_ARGS];
	int n = 0;

	argv[n++] = itest_pgstream_bin();
	argv[n++] = cmd;
	if (src != NULL)
	{
		argv[n++] = "--source";
		argv[n++] = src;
	}
	if (tgt != NULL)
	{
		argv[n++] = "--target";
		argv[n++] = tgt;
	}
	for (int i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	r->status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &r->out, &r->err);
	ck_assert_ptr_nonnull(r->out);
	ck_assert_ptr_nonnull(r->err);
	fprintf(stderr, "pgstream %s: status %d\nstdout:\n%s\nstderr:\n%s", cmd,
	        r->status, r->out, r->err);
}

static void
run_verify(CmdResult *r, const Mig *m, const char *const extra[])
{
	run_cmd(r, "verify", m->src, m->tgt, extra);
}

/* r exited with status and its stdout holds needle. */
static void
assert_out(const CmdResult *r, int status, const char *needle)
{
	ck_assert_int_eq(r->status, status);
	ck_assert_msg(strstr(r->out, needle) != NULL, "stdout does not say \"%s\"",
	              needle);
}

/*
 * The target's child recreated with its columns in another order, as a
 * target may hold it (pg_dump recreates an inheritance child with the
 * parent's columns first; sync itself refuses such a source today, see
 * fullload.c, so the test makes the target that way instead).
 */
static const char reorder_child_sql[] =
    "BEGIN;"
    "ALTER TABLE child RENAME TO child_old;"
    "CREATE TABLE child (y int, x text, id int NOT NULL);"
    "ALTER TABLE child OWNER TO migrator;"
    "ALTER TABLE child INHERIT parent;"
    "INSERT INTO child (id, x, y) SELECT id, x, y FROM ONLY child_old;"
    "DROP TABLE child_old;"
    "COMMIT";

/* Migrate m with sync and a cutover that must succeed. */
static void
migrate(const Mig *m)
{
	static const char *const args[] = {"--freeze", "--timeout", "120", NULL};
	Proc sync;
	CmdResult r;

	start_streaming(&sync, m);
	run_cmd(&r, "cutover", m->src, m->tgt, args);
	ck_assert_int_eq(r.status, 0);
	cmd_free(&r);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	ck_assert(cluster_psql(&target, m->tgtdb, reorder_child_sql));
}

START_TEST(a_migrated_database_verifies)
{
	static const char *const json[] = {"--json", "--quiet", NULL};
	Mig m;
	CmdResult r;

	mig_init(&m, "vok", varied_sql);
	migrate(&m);
	/* the scenario holds: the child's columns are in another order there */
	itest_assert_scalar(&source, m.srcdb,
	                    "SELECT string_agg(attname, ',' ORDER BY attnum)"
	                    " FROM pg_attribute WHERE attrelid = 'child'::regclass"
	                    " AND attnum > 0",
	                    "id,x,y");
	itest_assert_scalar(&target, m.tgtdb,
	                    "SELECT string_agg(attname, ',' ORDER BY attnum)"
	                    " FROM pg_attribute WHERE attrelid = 'child'::regclass"
	                    " AND attnum > 0",
	                    "y,x,id");
	run_verify(&r, &m, NULL);
	assert_out(&r, 0, "data: 7 tables, 0 differ");
	ck_assert_msg(strstr(r.out, "schema: ") != NULL &&
	                  strstr(r.out, " 0 difference(s)\n") != NULL,
	              "no schema summary");
	ck_assert_msg(strstr(r.out, "  expected: missing on the target: publication "
	                            "app_pub (pgstream does not migrate "
	                            "publications)\n") != NULL,
	              "the publication is not named as expected");
	ck_assert_msg(strstr(r.out, "  note: other owner or grants: ") != NULL,
	              "the owner difference is not a note");
	ck_assert_msg(strstr(r.err, "verify: source and target match") != NULL,
	              "no final line");
	cmd_free(&r);

	run_verify(&r, &m, json);
	ck_assert_int_eq(r.status, 0);
	itest_strip_space(r.out);
	ck_assert_msg(strncmp(r.out, "{\"match\":true,", 14) == 0, "json: %s", r.out);
	ck_assert_msg(strstr(r.out, "\"data\":{\"match\":true,") != NULL, "data");
	ck_assert_msg(strstr(r.out, "\"schema\":{\"match\":true,") != NULL, "schema");
	ck_assert_msg(strstr(r.out, "{\"name\":\"public.child\",\"status\":\"match\","
	                            "\"source_rows\":2,\"target_rows\":2,") != NULL,
	              "child");
	ck_assert_msg(strstr(r.out, "{\"name\":\"public.t\",\"status\":\"match\","
	                            "\"source_rows\":201,\"target_rows\":201,") != NULL,
	              "t");
	ck_assert_msg(strstr(r.out, "{\"name\":\"public.nokey\",\"status\":\"match\","
	                            "\"source_rows\":4,\"target_rows\":4,") != NULL,
	              "nokey");
	ck_assert_msg(strstr(r.out, "{\"name\":\"public.parent\",\"status\":\"match\","
	                            "\"source_rows\":1,") != NULL,
	              "parent: its own rows only");
	ck_assert_msg(strstr(r.out, "{\"kind\":\"missing\",\"verdict\":\"expected\","
	                            "\"type\":\"publication\",\"identity\":\"app_pub\"") !=
	                  NULL,
	              "publication in json");
	ck_assert_msg(strstr(r.out, "{\"kind\":\"privileges\",\"verdict\":\"note\","
	                            "\"type\":\"table\",\"identity\":\"public.t\"") != NULL,
	              "the owner of t is not a note");
	ck_assert_msg(strstr(r.out, "\"verdict\":\"fail\"") == NULL, "a failure");
	cmd_free(&r);
}
END_TEST

START_TEST(a_changed_row_and_a_deleted_row_are_named)
{
	static const char *const data[] = {"--data", "--quiet", NULL};
	static const char *const json[] = {"--data", "--json", "--quiet", NULL};
	Mig m;
	CmdResult r;

	mig_init(&m, "vrow", varied_sql);
	migrate(&m);
	/* the last column by name, first on the target: none may be left out */
	ck_assert(cluster_psql(&target, m.tgtdb,
	                       "UPDATE child SET y = 40 WHERE id = 3"));
	run_verify(&r, &m, data);
	assert_out(&r, 1, "data: 7 tables, 1 differ");
	ck_assert_msg(strstr(r.out, "  public.child: contents differ: 2 rows on "
	                            "both sides, other values (1 of 1 key range(s) "
	                            "differ)\n") != NULL,
	              "the changed table is not named");
	ck_assert_msg(strstr(r.err, "verify: source and target differ: 0 schema "
	                            "difference(s), 1 table(s)") != NULL,
	              "no final line");
	cmd_free(&r);

	run_verify(&r, &m, json);
	ck_assert_int_eq(r.status, 1);
	itest_strip_space(r.out);
	ck_assert_msg(strstr(r.out, "{\"name\":\"public.child\",\"status\":\"different\","
	                            "\"source_rows\":2,\"target_rows\":2,") != NULL,
	              "json: %s", r.out);
	ck_assert_msg(strncmp(r.out, "{\"match\":false,", 15) == 0, "json: %s", r.out);
	cmd_free(&r);

	ck_assert(cluster_psql(&target, m.tgtdb,
	                       "UPDATE child SET y = 4 WHERE id = 3;"
	                       "DELETE FROM nokey WHERE a = 1 AND b = 'a'"
	                       " AND ctid = (SELECT min(ctid) FROM nokey WHERE a = 1)"));
	run_verify(&r, &m, data);
	assert_out(&r, 1, "  public.nokey: row counts differ: 4 on the source, 3 on "
	                  "the target\n");
	ck_assert_msg(strstr(r.out, "public.child") == NULL, "child was repaired");
	cmd_free(&r);
}
END_TEST

START_TEST(a_dropped_index_and_function_are_named)
{
	static const char *const schema[] = {"--schema", NULL};
	static const char *const data[] = {"--data", "--quiet", NULL};
	Mig m;
	CmdResult r;

	mig_init(&m, "vschema", varied_sql);
	migrate(&m);
	ck_assert(cluster_psql(&target, m.tgtdb,
	                       "DROP INDEX t_v_idx; DROP FUNCTION add_one(int)"));
	run_verify(&r, &m, schema);
	assert_out(&r, 1, "  missing on the target: index public.t_v_idx\n");
	ck_assert_msg(strstr(r.out, "  missing on the target: function "
	                            "public.add_one(integer)\n") != NULL,
	              "the function is not named");
	ck_assert_msg(strstr(r.out, " 2 difference(s)\n") != NULL, "count");
	ck_assert_msg(strstr(r.out, "data:") == NULL, "--schema only");
	cmd_free(&r);
	run_verify(&r, &m, data);
	assert_out(&r, 0, "data: 7 tables, 0 differ");
	ck_assert_msg(strstr(r.out, "schema:") == NULL, "--data only");
	cmd_free(&r);
}
END_TEST

START_TEST(a_chunked_table_finds_one_changed_row)
{
	static const char *const chunked[] = {"--data", "--json", "--quiet",
	                                      "--chunk-rows", "1000", "--jobs", "3",
	                                      NULL};
	static const char *const sql =
	    "CREATE TABLE big (id int, part text, v text, PRIMARY KEY (part, id));"
	    "INSERT INTO big SELECT i, 'p' || (i % 3), md5(i::text)"
	    " FROM generate_series(1, 20000) i;"
	    "ANALYZE big";
	Mig m;
	CmdResult r;

	/* verify reads whatever is there: no migration needed */
	snprintf(m.srcdb, sizeof(m.srcdb), "vbig_src");
	snprintf(m.tgtdb, sizeof(m.tgtdb), "vbig_tgt");
	itest_make_db(&source, m.srcdb, NULL);
	itest_make_db(&target, m.tgtdb, NULL);
	ck_assert(cluster_psql(&source, m.srcdb, sql));
	ck_assert(cluster_psql(&target, m.tgtdb, sql));
	itest_conninfo(m.src, &source, m.srcdb);
	itest_conninfo(m.tgt, &target, m.tgtdb);

	run_verify(&r, &m, chunked);
	ck_assert_int_eq(r.status, 0);
	itest_strip_space(r.out);
	ck_assert_msg(strstr(r.out, "{\"name\":\"public.big\",\"status\":\"match\","
	                            "\"source_rows\":20000,\"target_rows\":20000,") !=
	                  NULL,
	              "json: %s", r.out);
	ck_assert_msg(strstr(r.out, "\"chunks\":20,\"chunks_differing\":0,") != NULL,
	              "not cut into 20 key ranges: %s", r.out);
	cmd_free(&r);

	ck_assert(cluster_psql(&target, m.tgtdb,
	                       "UPDATE big SET v = 'changed' WHERE id = 10000"));
	run_verify(&r, &m, chunked);
	ck_assert_int_eq(r.status, 1);
	itest_strip_space(r.out);
	ck_assert_msg(strstr(r.out, "{\"name\":\"public.big\",\"status\":\"different\","
	                            "\"source_rows\":20000,\"target_rows\":20000,") !=
	                  NULL,
	              "json: %s", r.out);
	ck_assert_msg(strstr(r.out, "\"chunks\":20,\"chunks_differing\":1,") != NULL,
	              "json: %s", r.out);
	cmd_free(&r);
}
END_TEST

START_TEST(cutover_verify_refuses_a_corrupted_target_and_passes_a_clean_one)
{
	static const char *const args[] = {"--freeze", "--timeout", "120", "--verify",
	                                   NULL};
	Mig m;
	Proc sync;
	CmdResult r;

	mig_init(&m, "vcut",
	         "CREATE TABLE t (id int PRIMARY KEY, v text);"
	         "CREATE TABLE u (id int PRIMARY KEY, w int);"
	         "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 100) i;"
	         "INSERT INTO u SELECT i, i FROM generate_series(1, 100) i");
	start_streaming(&sync, &m);
	/* behind sync's back; the source never touches this row again */
	ck_assert(cluster_psql(&target, m.tgtdb,
	                       "UPDATE t SET v = 'corrupt' WHERE id = 50"));
	run_cmd(&r, "cutover", m.src, m.tgt, args);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "table contents differ for public.t: contents "
	                            "differ: 100 rows on both sides") != NULL,
	              "the table is not named");
	ck_assert_msg(strstr(r.err, "table contents differ between source and "
	                            "target (--verify): public.t; the migration "
	                            "state is kept for inspection") != NULL,
	              "no summary line");
	ck_assert_msg(strstr(r.err, "row counts match for 2 tables") != NULL,
	              "the counts alone would have passed");
	ck_assert_msg(strstr(r.err, "public.u") == NULL, "u is identical");
	cmd_free(&r);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	/* refused before the point of no return: state kept, source writable */
	itest_assert_scalar(&target, m.tgtdb,
	                    "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'",
	                    "1");
	itest_assert_scalar(&source, m.srcdb, "SHOW default_transaction_read_only",
	                    "off");

	ck_assert(cluster_psql(&target, m.tgtdb, "UPDATE t SET v = 'v50' WHERE id = 50"));
	start_streaming(&sync, &m);
	run_cmd(&r, "cutover", m.src, m.tgt, args);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strstr(r.out, "  table contents (--verify): identical for 2 "
	                            "tables\n") != NULL,
	              "the report does not say so");
	ck_assert_msg(strstr(r.err, "table contents identical for 2 tables (--verify)") !=
	                  NULL,
	              "no log line");
	cmd_free(&r);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
}
END_TEST

START_TEST(floats_compare_across_majors)
{
	static const char *const data[] = {"--data", "--quiet", NULL};
	static const char *const sql =
	    "CREATE TABLE fl (id int PRIMARY KEY, d float8, r real, a float8[]);"
	    "INSERT INTO fl SELECT i, i / 3.0, i / 7.0, NULL"
	    " FROM generate_series(1, 100) i;"
	    "INSERT INTO fl VALUES (101, 'NaN', '-Infinity', NULL),"
	    " (102, -0.0, 1e-38, NULL), (103, NULL, NULL, NULL)";
	Cluster old;
	Mig m;
	CmdResult r;

	ck_assert(cluster_init_major(&old, "verify-11", 0, 11));
	ck_assert(cluster_start(&old));
	snprintf(m.srcdb, sizeof(m.srcdb), "vfl_src");
	snprintf(m.tgtdb, sizeof(m.tgtdb), "vfl_tgt");
	itest_make_db(&source, m.srcdb, NULL);
	ck_assert(cluster_psql(&old, "postgres", "CREATE DATABASE vfl_tgt"));
	ck_assert(cluster_psql(&source, m.srcdb, sql));
	ck_assert(cluster_psql(&old, m.tgtdb, sql));
	itest_conninfo(m.src, &source, m.srcdb);
	itest_conninfo(m.tgt, &old, m.tgtdb);
	run_verify(&r, &m, data);
	assert_out(&r, 0, "data: 1 tables, 0 differ");
	cmd_free(&r);
	/* the next double after 50/3 */
	ck_assert(cluster_psql(&old, m.tgtdb,
	                       "UPDATE fl SET d = 16.666666666666671 WHERE id = 50"));
	run_verify(&r, &m, data);
	assert_out(&r, 1, "  public.fl: contents differ: 103 rows on both sides");
	cmd_free(&r);
	cluster_destroy(&old);
}
END_TEST

START_TEST(usage_and_connection_errors)
{
	static const char *const none[] = {NULL};
	static const char *const jobs[] = {"--jobs", "0", NULL};
	char bad[ITEST_CONNINFO_MAX];
	char good[ITEST_CONNINFO_MAX];
	CmdResult r;

	itest_conninfo(good, &source, "postgres");
	run_cmd(&r, "verify", good, NULL, none);
	ck_assert_int_eq(r.status, 3);
	ck_assert_msg(strstr(r.err, "pgstream verify: --source and --target are "
	                            "required") != NULL,
	              "usage message");
	cmd_free(&r);
	run_cmd(&r, "verify", good, good, jobs);
	ck_assert_int_eq(r.status, 3);
	ck_assert_msg(strstr(r.err, "--jobs must be 1 to 64") != NULL, "jobs");
	cmd_free(&r);
	/* nothing listens on port 1 */
	snprintf(bad, sizeof(bad), "host=127.0.0.1 port=1 user=x password=SeCrEt99 "
	                           "dbname=x connect_timeout=5");
	run_cmd(&r, "verify", good, bad, none);
	ck_assert_int_eq(r.status, 4);
	ck_assert_msg(strstr(r.err, "target") != NULL, "which side");
	ck_assert_msg(strstr(r.err, "SeCrEt99") == NULL &&
	                  strstr(r.out, "SeCrEt99") == NULL,
	              "the password was printed");
	cmd_free(&r);
}
END_TEST

Suite *
verify_integration_suite(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("verify");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, a_migrated_database_verifies);
	tcase_add_test(tc, a_changed_row_and_a_deleted_row_are_named);
	tcase_add_test(tc, a_dropped_index_and_function_are_named);
	tcase_add_test(tc, a_chunked_table_finds_one_changed_row);
	tcase_add_test(tc, cutover_verify_refuses_a_corrupted_target_and_passes_a_clean_one);
	tcase_add_test(tc, floats_compare_across_majors);
	tcase_add_test(tc, usage_and_connection_errors);
	suite_add_tcase(s, tc);
	return s;
}
