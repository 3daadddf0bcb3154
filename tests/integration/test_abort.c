/*
 * tests/integration/test_abort.c -- "pgstream abort", and slot names that
 * are one per source database.
 *
 * Every migration here uses the default names (no --slot): those of the
 * source database, so that two databases of one server never collide.
 * Each abort test stops a sync at one phase, the way a real failure would
 * (a failpoint crash, a kill -9), then runs abort and checks that the
 * source holds no slot, publication, changed replica identity or
 * read-only default of that database, that the target holds no state
 * schema and no table, that a second abort has nothing to do, and that a
 * fresh sync of the same database succeeds:
 *
 *   abort_after_a_crash_in_the_schema_phase   sync.after_slot_created
 *   abort_after_a_crash_in_the_copy           fullload.after_part_commit
 *   abort_after_a_crash_in_the_index_build    schema.after_index_step
 *   abort_after_a_kill_while_streaming        kill -9 of a streaming sync
 *   abort_after_a_cutover_killed_when_frozen  cutover --freeze killed at
 *       cutover.after_freeze; abort is refused while sync still runs
 *   abort_with_the_source_unreachable         the wrong --source is refused
 *       (exit 2); an unreachable one: the target is cleaned, the slot
 *       left on the source is named, exit 4
 *   a_migration_started_with_the_old_default_names_resumes  its state
 *       says "pgstream": a run without --slot resumes with that
 *   two_databases_of_one_server_migrate_side_by_side  two live syncs at
 *       once, writes in both, both cut over, both identical; a run left
 *       crashed in a third database blocks neither
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/names.h"
#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/compare.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define CMD_TIMEOUT_MS 240000
#define PHASE_TIMEOUT_MS 150000
#define TEST_TIMEOUT_S 600
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

/* One migration: database db on both servers. */
typedef struct Mig
{
	char db[64];
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
} Mig;

/*
 * t (2000 rows, an index to build), nokey (no key: sync
 * --no-key-tables=full gives it REPLICA IDENTITY FULL).
 */
static void
mig_init(Mig *m, const char *db)
{
	snprintf(m->db, sizeof(m->db), "%s", db);
	itest_make_db(&source, db, NULL);
	itest_make_db(&target, db, NULL);
	ck_assert(cluster_psql(&source, db,
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "CREATE INDEX t_v ON t (v);"
	                       "INSERT INTO t SELECT g, repeat('x', 300) || g"
	                       " FROM generate_series(1, 2000) g;"
	                       "CREATE TABLE nokey (a int, b text);"
	                       "INSERT INTO nokey SELECT g, 'n' || g FROM generate_series(1, 50) g;"
	                       "ANALYZE"));
	itest_conninfo(m->src, &source, db);
	itest_conninfo(m->tgt, &target, db);
}

/* pgstream sync of m (live unless no_follow), default names. */
static int
sync_argv(const char *argv[], const Mig *m, bool no_follow)
{
	int n = 0;

	argv[n++] = itest_pgstream_bin();
	argv[n++] = "sync";
	argv[n++] = "--source";
	argv[n++] = m->src;
	argv[n++] = "--target";
	argv[n++] = m->tgt;
	argv[n++] = "--no-key-tables=full";
	argv[n++] = "--jobs";
	argv[n++] = "1";
	argv[n++] = "--split-size";
	argv[n++] = "1";
	argv[n++] = "--quiet";
	if (no_follow)
		argv[n++] = "--no-follow";
	argv[n] = NULL;
	return n;
}

static int
run_sync(const Mig *m, bool no_follow, const char *const env[])
{
	const char *argv[MAX_ARGS];
	char *out = NULL;
	char *err = NULL;
	int status;

	sync_argv(argv, m, no_follow);
	status = proc_run(argv, env, CMD_TIMEOUT_MS, &out, &err);
	itest_print_output("pgstream sync", status, out, err);
	free(out);
	free(err);
	return status;
}

static void
spawn_sync(Proc *p, const Mig *m, const char *const env[])
{
	const char *argv[MAX_ARGS];

	sync_argv(argv, m, false);
	ck_assert(proc_spawn(p, argv, env));
}

/* pgstream abort [--drop-target-objects]: status; *err_out owned by the caller. */
static int
run_abort_on(const char *src, const char *tgt, bool drop, char **err_out)
{
	const char *argv[] = {itest_pgstream_bin(), "abort", "--source", src, "--target", tgt,
	                      drop ? "--drop-target-objects" : NULL, NULL};
	char *out = NULL;
	char *err = NULL;
	int status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);

	itest_print_output("pgstream abort", status, out, err);
	free(out);
	*err_out = err;
	return status;
}

static int
run_abort(const Mig *m, char **err_out)
{
	return run_abort_on(m->src, m->tgt, true, err_out);
}

/* The phase recorded on the target ("" if none). */
static char *
phase_of(const Mig *m)
{
	char *v = cluster_query_scalar(&target, m->db,
	                               "SELECT CASE WHEN to_regclass('pgstream.migration') IS NULL"
	                               " THEN '' ELSE (SELECT phase FROM pgstream.migration) END");

	return v != NULL ? v : strdup("");
}

static void
wait_for_phase(const Mig *m, const char *phase, Proc *sync)
{
	long long deadline = proc_now_ms() + PHASE_TIMEOUT_MS;

	for (;;)
	{
		int st = proc_wait(sync, 0);
		char *now = phase_of(m);
		bool done = strcmp(now, phase) == 0;

		if (st != PROC_TIMEOUT)
		{
			itest_print_proc("pgstream sync", sync, st);
			ck_abort_msg("sync exited with %d waiting for phase %s (at %s)", st, phase, now);
		}
		ck_assert_msg(done || proc_now_ms() < deadline, "phase %s not reached (at %s)",
		              phase, now);
		free(now);
		if (done)
			return;
		itest_sleep_ms(100);
	}
}

/* sql is a query on the source's postgres database with one %s: the database */
static void
assert_per_db(const char *sql_fmt_db, const Mig *m, const char *expected)
{
	char sql[512];
	const char *p = strstr(sql_fmt_db, "%s");

	ck_assert_ptr_nonnull(p);
	snprintf(sql, sizeof(sql), "%.*s%s%s", (int) (p - sql_fmt_db), sql_fmt_db, m->db, p + 2);
	itest_assert_scalar(&source, "postgres", sql, expected);
}

/* What a migration leaves, all there (before abort). */
static void
assert_leftovers(const Mig *m, bool frozen)
{
	assert_per_db("SELECT count(*) FROM pg_replication_slots WHERE database = '%s'", m, "1");
	itest_assert_scalar(&source, m->db, "SELECT count(*) FROM pg_publication", "1");
	itest_assert_scalar(&source, m->db,
	                    "SELECT relreplident FROM pg_class WHERE relname = 'nokey'", "f");
	assert_per_db("SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d"
	           " ON d.oid = s.setdatabase WHERE d.datname = '%s'", m, frozen ? "1" : "0");
	itest_assert_scalar(&target, m->db,
	                    "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'", "1");
}

/* Nothing of the migration left on either server. */
static void
assert_nothing_left(const Mig *m)
{
	assert_per_db("SELECT count(*) FROM pg_replication_slots WHERE database = '%s'", m, "0");
	itest_assert_scalar(&source, m->db, "SELECT count(*) FROM pg_publication", "0");
	itest_assert_scalar(&source, m->db,
	                    "SELECT relreplident FROM pg_class WHERE relname = 'nokey'", "d");
	assert_per_db("SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d"
	           " ON d.oid = s.setdatabase WHERE d.datname = '%s'", m, "0");
	itest_assert_scalar(&target, m->db,
	                    "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'", "0");
	itest_assert_scalar(&target, m->db,
	                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
	                    " ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
	                    " AND n.nspname NOT IN ('pg_catalog', 'information_schema')", "0");
}

/*
 * abort cleans everything (exit 0), a second abort has nothing to do (exit
 * 0), and the database can be migrated again from scratch.
 */
static void
abort_and_start_over(const Mig *m)
{
	char *err = NULL;
	int ntables = 0;
	const char *assess[] = {itest_pgstream_bin(), "assess", "--source", m->src, "--target",
	                        m->tgt, "--no-key-tables=full", NULL};
	char *out = NULL;
	char *aerr = NULL;
	int st;

	ck_assert_int_eq(run_abort(m, &err), 0);
	ck_assert_msg(strstr(err, "dropped replication slot") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "the migration is abandoned") != NULL, "%s", err);
	free(err);
	assert_nothing_left(m);
	ck_assert_int_eq(run_abort(m, &err), 0);
	ck_assert_msg(strstr(err, "nothing was left to remove") != NULL, "%s", err);
	free(err);
	/* a live run would find its names free again */
	st = proc_run(assess, NULL, CMD_TIMEOUT_MS, &out, &aerr);
	itest_print_output("pgstream assess", st, out, aerr);
	ck_assert_int_eq(st, 0);
	free(out);
	free(aerr);
	ck_assert_int_eq(run_sync(m, true, NULL), 0);
	ck_assert_int_eq(compare_data(&source, m->db, &target, m->db, &ntables), 0);
	ck_assert_int_eq(ntables, 2);
}

START_TEST(abort_after_a_crash_in_the_schema_phase)
{
	Mig m;
	const char *const env[] = {"PGSTREAM_FAILPOINTS=sync.after_slot_created=crash", NULL};

	mig_init(&m, "ab_schema");
	ck_assert_int_eq(run_sync(&m, false, env), 128 + SIGKILL);
	itest_assert_scalar(&target, m.db, "SELECT phase FROM pgstream.migration", "schema");
	assert_leftovers(&m, false);
	abort_and_start_over(&m);
}
END_TEST

START_TEST(abort_after_a_crash_in_the_copy)
{
	Mig m;
	const char *const env[] = {"PGSTREAM_FAILPOINTS=fullload.after_part_commit=crash", NULL};

	mig_init(&m, "ab_copy");
	ck_assert_int_eq(run_sync(&m, false, env), 128 + SIGKILL);
	itest_assert_scalar(&target, m.db, "SELECT phase FROM pgstream.migration", "copy");
	assert_leftovers(&m, false);
	abort_and_start_over(&m);
}
END_TEST

START_TEST(abort_after_a_crash_in_the_index_build)
{
	Mig m;
	const char *const env[] = {"PGSTREAM_FAILPOINTS=schema.after_index_step=crash", NULL};

	mig_init(&m, "ab_index");
	ck_assert_int_eq(run_sync(&m, false, env), 128 + SIGKILL);
	itest_assert_scalar(&target, m.db, "SELECT phase FROM pgstream.migration", "index");
	assert_leftovers(&m, false);
	abort_and_start_over(&m);
}
END_TEST

START_TEST(abort_after_a_kill_while_streaming)
{
	Mig m;
	Proc sync;

	mig_init(&m, "ab_stream");
	spawn_sync(&sync, &m, NULL);
	wait_for_phase(&m, "streaming", &sync);
	ck_assert(cluster_psql(&source, m.db, "INSERT INTO t VALUES (5000, 'live')"));
	ck_assert(proc_kill(&sync, SIGKILL));
	ck_assert_int_eq(proc_wait(&sync, 30000), 128 + SIGKILL);
	proc_release(&sync);
	assert_leftovers(&m, false);
	abort_and_start_over(&m);
}
END_TEST

START_TEST(abort_after_a_cutover_killed_when_frozen)
{
	Mig m;
	Proc sync;
	char *err = NULL;
	char *out = NULL;
	int st;
	const char *const env[] = {"PGSTREAM_FAILPOINTS=cutover.after_freeze=crash", NULL};
	const char *cut[] = {itest_pgstream_bin(), "cutover", "--source", NULL, "--target", NULL,
	                     "--freeze", "--timeout", "60", NULL};

	mig_init(&m, "ab_cutover");
	cut[3] = m.src;
	cut[5] = m.tgt;
	spawn_sync(&sync, &m, NULL);
	wait_for_phase(&m, "streaming", &sync);
	st = proc_run(cut, env, CMD_TIMEOUT_MS, &out, &err);
	itest_print_output("pgstream cutover", st, out, err);
	ck_assert_int_eq(st, 128 + SIGKILL);
	free(out);
	free(err);
	/* sync still streams: abort refuses and changes nothing */
	ck_assert_int_eq(proc_wait(&sync, 0), PROC_TIMEOUT);
	ck_assert_int_eq(run_abort(&m, &err), 2);
	ck_assert_msg(strstr(err, "a pgstream sync is running for this target database") != NULL,
	              "%s", err);
	free(err);
	assert_leftovers(&m, true);
	ck_assert(proc_kill(&sync, SIGKILL));
	ck_assert_int_eq(proc_wait(&sync, 30000), 128 + SIGKILL);
	proc_release(&sync);
	/* its target session ends when the server notices (a Unix socket: at once) */
	ck_assert(cluster_wait_for(&target, m.db,
	                           "SELECT NOT EXISTS (SELECT 1 FROM pg_locks"
	                           " WHERE locktype = 'advisory' AND objid = 1)", 30000));
	abort_and_start_over(&m);
}
END_TEST

START_TEST(abort_with_the_source_unreachable)
{
	Mig m;
	char *err = NULL;
	char bad[ITEST_CONNINFO_MAX + 32];
	char slot[NAMES_DEFAULT_SIZE];
	const char *const env[] = {"PGSTREAM_FAILPOINTS=fullload.after_part_commit=crash", NULL};

	mig_init(&m, "ab_nosrc");
	ck_assert_int_eq(run_sync(&m, false, env), 128 + SIGKILL);
	assert_leftovers(&m, false);
	/* another database of the source than the migration's: refused */
	itest_conninfo(bad, &source, "postgres");
	ck_assert_int_eq(run_abort_on(bad, m.tgt, true, &err), 2);
	ck_assert_msg(strstr(err, "the target holds the migration of source database "
	                          "\"ab_nosrc\", but --source is database \"postgres\"") != NULL,
	              "%s", err);
	free(err);
	assert_leftovers(&m, false);
	/* the same server, a database that is not there: cannot connect */
	itest_conninfo(bad, &source, "ab_nosrc_gone");
	ck_assert_int_eq(run_abort_on(bad, m.tgt, true, &err), 4);
	names_default("ab_nosrc", slot, sizeof(slot));
	ck_assert_msg(strstr(err, slot) != NULL, "the slot left must be named: %s", err);
	ck_assert_msg(strstr(err, "REPLICA IDENTITY DEFAULT") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "the target is clean, the source is not") != NULL, "%s", err);
	free(err);
	itest_assert_scalar(&target, m.db,
	                    "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'", "0");
	/* the source side is found again by its default names once reachable */
	itest_assert_scalar(&source, m.db, "SELECT count(*) FROM pg_publication", "1");
	ck_assert_int_eq(run_abort(&m, &err), 0);
	ck_assert_msg(strstr(err, "dropped replication slot") != NULL, "%s", err);
	free(err);
	/* without the state, the replica identity is not known: put back by hand */
	ck_assert(cluster_psql(&source, m.db, "ALTER TABLE nokey REPLICA IDENTITY DEFAULT"));
	assert_nothing_left(&m);
}
END_TEST

/*
 * A migration started by an older pgstream, whose default names were
 * "pgstream": the state records them, and a run without --slot resumes
 * with them rather than refusing the target as another migration's.
 */
START_TEST(a_migration_started_with_the_old_default_names_resumes)
{
	Mig m;
	const char *argv[MAX_ARGS];
	int n;
	char *out = NULL;
	char *err = NULL;
	int ntables = 0;
	const char *const env[] = {"PGSTREAM_FAILPOINTS=fullload.after_part_commit=crash", NULL};

	mig_init(&m, "old_names");
	n = sync_argv(argv, &m, true);
	argv[n++] = "--slot";
	argv[n++] = "pgstream";
	argv[n++] = "--publication";
	argv[n++] = "pgstream";
	argv[n] = NULL;
	ck_assert_int_eq(proc_run(argv, env, CMD_TIMEOUT_MS, &out, &err), 128 + SIGKILL);
	free(out);
	free(err);
	itest_assert_scalar(&target, m.db, "SELECT slot_name || ' ' || publication_name"
	                    " FROM pgstream.migration", "pgstream pgstream");
	/* the same command as an older pgstream's, without --slot */
	ck_assert_int_eq(run_sync(&m, true, NULL), 0);
	ck_assert_int_eq(compare_data(&source, m.db, &target, m.db, &ntables), 0);
	ck_assert_int_eq(ntables, 2);
	itest_assert_scalar(&source, "postgres",
	                    "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgstream'",
	                    "0");
	/* finished: its state is gone */
	itest_assert_scalar(&target, m.db,
	                    "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'", "0");
}
END_TEST

/* A few writes to db's t while its sync streams. */
static void
write_some(const Mig *m, int base)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "INSERT INTO t SELECT g, 'w' || g FROM generate_series(%d, %d) g;"
	         "UPDATE t SET v = 'u' WHERE id %% 7 = 0;"
	         "DELETE FROM t WHERE id %% 11 = 0;"
	         "INSERT INTO nokey VALUES (%d, 'live')", base, base + 200, base);
	ck_assert(cluster_psql(&source, m->db, sql));
}

START_TEST(two_databases_of_one_server_migrate_side_by_side)
{
	Mig a;
	Mig b;
	Mig dead;
	Proc sa;
	Proc sb;
	char *err = NULL;
	int ntables = 0;
	const char *const crash[] = {"PGSTREAM_FAILPOINTS=sync.after_slot_created=crash", NULL};

	/* a run left crashed in a third database, its slot still there */
	mig_init(&dead, "side_dead");
	ck_assert_int_eq(run_sync(&dead, false, crash), 128 + SIGKILL);
	assert_leftovers(&dead, false);
	mig_init(&a, "side_a");
	mig_init(&b, "side_b");
	spawn_sync(&sa, &a, NULL);
	spawn_sync(&sb, &b, NULL);
	wait_for_phase(&a, "streaming", &sa);
	wait_for_phase(&b, "streaming", &sb);
	itest_assert_scalar(&source, "postgres",
	                    "SELECT count(DISTINCT slot_name) FROM pg_replication_slots", "3");
	write_some(&a, 10000);
	write_some(&b, 20000);
	write_some(&a, 30000);
	for (int i = 0; i < 2; i++)
	{
		Mig *m = i == 0 ? &a : &b;
		Proc *p = i == 0 ? &sa : &sb;
		const char *cut[] = {itest_pgstream_bin(), "cutover", "--source", m->src, "--target",
		                     m->tgt, "--timeout", "120", NULL};
		char *out = NULL;
		char *cerr = NULL;
		int st = proc_run(cut, NULL, CMD_TIMEOUT_MS, &out, &cerr);

		itest_print_output("pgstream cutover", st, out, cerr);
		ck_assert_int_eq(st, 0);
		free(out);
		free(cerr);
		itest_assert_sync_exits_0(p);
		proc_release(p);
		ck_assert_int_eq(compare_schemas(&source, m->db, &target, m->db), 0);
		ck_assert_int_eq(compare_data(&source, m->db, &target, m->db, &ntables), 0);
		ck_assert_int_eq(ntables, 2);
		assert_per_db("SELECT count(*) FROM pg_replication_slots WHERE database = '%s'", m, "0");
	}
	/* the crashed run's leftovers were never in the way; now they go */
	ck_assert_int_eq(run_abort(&dead, &err), 0);
	free(err);
	assert_nothing_left(&dead);
}
END_TEST

Suite *
abort_suite(void)
{
	Suite *s = suite_create("abort");
	TCase *tc = tcase_create("abort");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, two_databases_of_one_server_migrate_side_by_side);
	tcase_add_test(tc, a_migration_started_with_the_old_default_names_resumes);
	tcase_add_test(tc, abort_after_a_crash_in_the_schema_phase);
	tcase_add_test(tc, abort_after_a_crash_in_the_copy);
	tcase_add_test(tc, abort_after_a_crash_in_the_index_build);
	tcase_add_test(tc, abort_after_a_kill_while_streaming);
	tcase_add_test(tc, abort_after_a_cutover_killed_when_frozen);
	tcase_add_test(tc, abort_with_the_source_unreachable);
	suite_add_tcase(s, tc);
	return s;
}
