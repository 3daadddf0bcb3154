/*
 * tests/integration/test_operator.c -- operator mistakes must never lose
 * data or leave the source holding WAL (issue 14).
 *
 *   a_slot_name_the_server_would_fold_is_refused_before_anything_exists
 *       --slot UPPER (and a too-long --publication): exit 3 at once, and
 *       neither a slot on the source nor schema "pgstream" on the target.
 *   a_second_offline_sync_is_refused_while_the_first_copies
 *       the first run is paused by a failpoint right after its first copy
 *       part committed; a second run of the same command is refused (exit
 *       2, naming the other run) without touching anything; the first then
 *       finishes and the target equals the source.
 *   a_second_live_sync_is_refused_at_once
 *       while a live sync streams, a second one exits 2 at once instead of
 *       retrying on "slot is active" for --retry-timeout.
 *   bytes_the_sample_missed_stop_the_copy_saying_what_to_do
 *       a SQL_ASCII source with a Latin-1 byte past assess's sample: the
 *       copy stops with what is wrong and what to do, not "run again".
 *   an_object_of_the_same_name_on_the_target_is_refused_before_anything_exists
 *       a type (or function) on the target with the name of a source object:
 *       exit 2 naming it, nothing created.
 *   an_unwritable_spool_directory_is_refused_before_anything_exists
 *       --spool / --spool-dir that cannot be written: exit 2 at once.
 *   jobs_beyond_the_free_connections_are_lowered_before_the_copy
 *       a target login limited to 4 connections and --jobs 16: the workers
 *       are fitted to what is free, said so, and the copy is exact.
 *   a_source_schema_named_like_the_state_schema_is_refused
 *       a source schema "pgstream" (pgstream's own state schema on the
 *       target, dropped at the end): exit 2, nothing created, and the fix
 *       names --state-schema.
 *   a_source_schema_named_like_the_state_schema_migrates_with_state_schema
 *       the same source with --state-schema pgs_state: assess checks that
 *       name (on the source, and on the target where a schema of that name
 *       holding no migration is refused), the run keeps its state there and
 *       drops it at the end, and the user's schema "pgstream" arrives
 *       exactly.
 *   role_timeouts_on_the_source_do_not_fail_the_run
 *       a source role with 1 ms statement and lock timeouts and 1 s idle
 *       timeouts: sync and assess still work.
 *   sigterm_during_the_copy_stops_the_run,
 *   sigterm_during_the_index_builds_stops_the_run,
 *   sighup_before_the_final_phase_stops_the_run,
 *   sighup_while_pg_dump_runs_ends_pg_dump_too
 *       a signal raised at a named failpoint: the run stops (exit 1) saying
 *       so and naming the phase, its pg_dump is ended, no temporary files
 *       are left, and the same command then completes exactly.
 *   sighup_while_streaming_stops_the_run_and_it_resumes
 *       live sync stops on SIGHUP saying so; run again, it carries what
 *       was written meanwhile.
 *   every_option_with_a_bad_value_is_a_usage_error_that_changes_nothing
 *       each command's options with bad values: exit 3 naming the option,
 *       nothing created, the source not frozen.
 */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/failpoint_ctl.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define CMD_TIMEOUT_MS 240000

static Cluster source;
static Cluster target;

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "operator-source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "operator-target", 0));
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
}

static void
clusters_teardown(void)
{
	cluster_destroy(&source);
	cluster_destroy(&target);
}

/* argv of "pgstream sync --source S --target T --slot SLOT <extra...>" */
static void
sync_argv(const char *argv[], int max, const char *src, const char *tgt,
          const char *slot, const char *const extra[])
{
	int n = 0;

	argv[n++] = itest_pgstream_bin();
	argv[n++] = "sync";
	argv[n++] = "--source";
	argv[n++] = src;
	argv[n++] = "--target";
	argv[n++] = tgt;
	argv[n++] = "--slot";
	argv[n++] = slot;
	argv[n++] = "--quiet";
	for (int i = 0; extra != NULL && extra[i] != NULL; i++)
	{
		ck_assert_int_lt(n, max - 1);
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
}

static void
make_dbs(const char *db)
{
	itest_make_db(&source, db, NULL);
	itest_make_db(&target, db, NULL);
	ck_assert(cluster_psql(&source, db,
	                       "CREATE TABLE big (id int PRIMARY KEY, pad text);"
	                       "INSERT INTO big SELECT g, repeat('x', 200)"
	                       " FROM generate_series(1, 20000) g;"
	                       "CREATE TABLE small (id int PRIMARY KEY, v text);"
	                       "INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 100) g;"
	                       "ANALYZE"));
}

static void
assert_tables_equal(const char *db)
{
	static const char *const tables[] = {"public.big", "public.small"};

	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
	{
		char *fs = itest_table_fingerprint(&source, db, tables[i]);
		char *ft = itest_table_fingerprint(&target, db, tables[i]);

		ck_assert_str_eq(fs, ft);
		free(fs);
		free(ft);
	}
}

static void
assert_nothing_created(const char *db)
{
	char sql[256];

	/* slots are per cluster: an earlier test's may still be there */
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_replication_slots WHERE database = '%s'", db);
	itest_assert_scalar(&source, "postgres", sql, "0");
	itest_assert_scalar(&target, db,
	                    "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'", "0");
	itest_assert_scalar(&source, db, "SELECT count(*) FROM pg_publication", "0");
}

START_TEST(a_slot_name_the_server_would_fold_is_refused_before_anything_exists)
{
	const char *db = "op_names";
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char long_pub[80];
	const char *argv[24];
	char *out = NULL;
	char *err = NULL;
	int status;

	make_dbs(db);
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	memset(long_pub, 'p', 64);
	long_pub[64] = '\0';
	for (int follow = 0; follow < 2; follow++)
	{
		const char *const no_follow[] = {"--no-follow", NULL};

		sync_argv(argv, 24, src, tgt, "UPPER", follow ? NULL : no_follow);
		status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
		itest_print_output("pgstream sync --slot UPPER", status, out, err);
		ck_assert_int_eq(status, 3);
		ck_assert_str_eq(err, "pgstream sync: invalid replication slot name \"UPPER\": use 1 "
		                      "to 63 lower case letters, digits and underscores\n");
		free(out);
		free(err);
		assert_nothing_created(db);
	}
	{
		const char *const extra[] = {"--publication", long_pub, NULL};

		sync_argv(argv, 24, src, tgt, "op_names", extra);
		status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
		itest_print_output("pgstream sync --publication <64 bytes>", status, out, err);
		ck_assert_int_eq(status, 3);
		ck_assert_ptr_nonnull(strstr(err, "invalid publication name"));
		free(out);
		free(err);
		assert_nothing_created(db);
	}
}
END_TEST

START_TEST(a_second_offline_sync_is_refused_while_the_first_copies)
{
	const char *db = "op_twice";
	const char *point = "fullload.after_part_commit";
	const char *const extra[] = {"--no-follow", "--jobs", "1", "--split-size", "1", NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char fp_dir[PATH_MAX + 64];
	const char *argv[24];
	FailpointDir fd;
	Proc first;
	char *out = NULL;
	char *err = NULL;
	int status;

	make_dbs(db);
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	ck_assert(fpctl_init(&fd));
	fpctl_env(&fd, fp_dir, sizeof(fp_dir));
	{
		const char *const env[] = {"PGSTREAM_FAILPOINTS=fullload.after_part_commit=pause",
		                           fp_dir, NULL};

		sync_argv(argv, 24, src, tgt, "op_twice", extra);
		ck_assert(proc_spawn(&first, argv, env));
	}
	ck_assert(fpctl_wait(&fd, point, CMD_TIMEOUT_MS));
	/* the first run sits in its copy with one part committed */
	itest_assert_scalar(&target, db,
	                    "SELECT count(*) FILTER (WHERE done) FROM pgstream.copy_parts", "1");

	sync_argv(argv, 24, src, tgt, "op_twice", extra);
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
	itest_print_output("second pgstream sync", status, out, err);
	ck_assert_int_eq(status, 2);
	ck_assert_ptr_nonnull(strstr(err, "another pgstream sync is already running for this "
	                                  "target database (its target session: PID "));
	free(out);
	free(err);
	/* nothing of the first run was touched: still one part, still its slot */
	itest_assert_scalar(&target, db,
	                    "SELECT count(*) FILTER (WHERE done) FROM pgstream.copy_parts", "1");
	itest_assert_scalar(&source, "postgres",
	                    "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'op_twice'",
	                    "1");

	fpctl_release(&fd, point);
	status = proc_wait(&first, CMD_TIMEOUT_MS);
	itest_print_proc("first pgstream sync", &first, status);
	ck_assert_int_eq(status, 0);
	proc_release(&first);
	fpctl_cleanup(&fd);
	assert_tables_equal(db);
}
END_TEST

START_TEST(a_second_live_sync_is_refused_at_once)
{
	const char *db = "op_live";
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *argv[24];
	Proc first;
	char *out = NULL;
	char *err = NULL;
	int status;
	long long started;

	make_dbs(db);
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	sync_argv(argv, 24, src, tgt, "op_live", NULL);
	ck_assert(proc_spawn(&first, argv, NULL));
	ck_assert(cluster_wait_for(&target, db,
	                           "SELECT phase = 'streaming' FROM pgstream.migration",
	                           CMD_TIMEOUT_MS));

	started = proc_now_ms();
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
	itest_print_output("second pgstream sync", status, out, err);
	ck_assert_int_eq(status, 2);
	ck_assert_ptr_nonnull(strstr(err, "another pgstream sync is already running"));
	/* refused, not retried for --retry-timeout (300 s) */
	ck_assert_int_lt(proc_now_ms() - started, 60000);
	free(out);
	free(err);

	/* the first still streams: a row written now arrives */
	ck_assert(cluster_psql(&source, db, "INSERT INTO small VALUES (1000, 'after')"));
	ck_assert(cluster_wait_for(&target, db, "SELECT count(*) = 1 FROM small WHERE id = 1000",
	                           CMD_TIMEOUT_MS));
	ck_assert(proc_kill(&first, SIGTERM));
	status = proc_wait(&first, CMD_TIMEOUT_MS);
	itest_print_proc("first pgstream sync", &first, status);
	proc_release(&first);
}
END_TEST

/*
 * assess samples a SQL_ASCII source's text; bytes past the sample that are
 * not UTF-8 stop the copy.  The message must say what is wrong and what to
 * do, not "run the same command again", which cannot help.
 */
START_TEST(bytes_the_sample_missed_stop_the_copy_saying_what_to_do)
{
	const char *db = "op_ascii";
	const char *const extra[] = {"--no-follow", NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *argv[24];
	char *out = NULL;
	char *err = NULL;
	int status;

	ck_assert(cluster_psql(&source, "postgres", "DROP DATABASE IF EXISTS op_ascii"));
	ck_assert(cluster_psql(&source, "postgres",
	                       "CREATE DATABASE op_ascii ENCODING 'SQL_ASCII'"
	                       " TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"));
	itest_make_db(&target, db, NULL);
	ck_assert(cluster_psql(&source, db,
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t SELECT g, 'ascii' FROM generate_series(1, 20000) g;"
	                       "INSERT INTO t VALUES (20001, E'caf\\xe9')"));
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	sync_argv(argv, 24, src, tgt, "op_ascii", extra);
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
	itest_print_output("pgstream sync", status, out, err);
	ck_assert_int_eq(status, 1);
	ck_assert_ptr_nonnull(strstr(err, "invalid byte sequence for encoding \"UTF8\""));
	ck_assert_ptr_nonnull(strstr(err, "the source holds text that is not valid UTF-8"));
	ck_assert_ptr_nonnull(strstr(err, "fix what the message above says first"));
	ck_assert_ptr_null(strstr(err, "run the same command again"));
	free(out);
	free(err);
}
END_TEST

/*
 * The target holds no table but a type with the name of a source table: the
 * empty-target check must see the clash before anything is created, not
 * fail at the first schema step leaving a slot and a state behind.
 */
START_TEST(an_object_of_the_same_name_on_the_target_is_refused_before_anything_exists)
{
	const char *db = "op_clash";
	const char *const extra[] = {"--no-follow", NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *argv[24];
	char *out = NULL;
	char *err = NULL;
	int status;

	make_dbs(db);
	ck_assert(cluster_psql(&source, db, "CREATE FUNCTION public.f(a int) RETURNS int"
	                                    " LANGUAGE sql AS 'SELECT a'"));
	ck_assert(cluster_psql(&target, db, "CREATE TYPE public.small AS (a int);"
	                                    "CREATE FUNCTION public.f(a int) RETURNS int"
	                                    " LANGUAGE sql AS 'SELECT a + 1';"
	                                    "CREATE FUNCTION public.f(a text) RETURNS int"
	                                    " LANGUAGE sql AS 'SELECT 1'"));
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	sync_argv(argv, 24, src, tgt, "op_clash", extra);
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
	itest_print_output("pgstream sync", status, out, err);
	ck_assert_int_eq(status, 2);
	ck_assert_ptr_nonnull(strstr(err, "blocking: target_empty (public.small)"));
	ck_assert_ptr_nonnull(strstr(err, "the target already has type public.small"));
	ck_assert_ptr_nonnull(strstr(err, "blocking: target_empty (public.f(a integer))"));
	/* an overload the source does not have is no clash */
	ck_assert_ptr_null(strstr(err, "public.f(a text)"));
	free(out);
	free(err);
	assert_nothing_created(db);
}
END_TEST

/*
 * --spool and --spool-dir are checked before anything is created: a
 * directory that cannot be made or written is refused (exit 2) at once, not
 * found after the full load or at the first large transaction.
 */
START_TEST(an_unwritable_spool_directory_is_refused_before_anything_exists)
{
	const char *db = "op_spool";
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *argv[24];
	char *out = NULL;
	char *err = NULL;
	int status;

	make_dbs(db);
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	for (int i = 0; i < 2; i++)
	{
		const char *const extra[] = {i == 0 ? "--spool" : "--spool-dir",
		                             "/dev/null/spool", NULL};

		sync_argv(argv, 24, src, tgt, "op_spool", extra);
		status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
		itest_print_output("pgstream sync", status, out, err);
		ck_assert_int_eq(status, 2);
		ck_assert_msg(strstr(err, "cannot use /dev/null/spool as the spool directory") != NULL,
		              "%s", err);
		free(out);
		free(err);
		assert_nothing_created(db);
	}
}
END_TEST

/*
 * --jobs above what the target login may open: the run fits its workers to
 * the free connections (and says so) instead of failing in the middle of
 * the copy with "too many connections".
 */
START_TEST(jobs_beyond_the_free_connections_are_lowered_before_the_copy)
{
	const char *db = "op_jobs";
	const char *const extra[] = {"--no-follow", "--jobs", "16", NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *argv[24];
	char *out = NULL;
	char *err = NULL;
	int status;

	ck_assert(cluster_psql(&target, "postgres", "DROP DATABASE IF EXISTS op_jobs"));
	ck_assert(cluster_psql(&target, "postgres", "DROP ROLE IF EXISTS op_lim"));
	ck_assert(cluster_psql(&target, "postgres", "CREATE ROLE op_lim LOGIN CONNECTION LIMIT 4"));
	itest_make_db(&source, db, NULL);
	itest_make_db(&target, db, "op_lim");
	for (int t = 0; t < 12; t++)
	{
		char sql[256];

		snprintf(sql, sizeof(sql),
		         "CREATE TABLE t%d (id int PRIMARY KEY, v text);"
		         "INSERT INTO t%d SELECT g, 'x' FROM generate_series(1, 500) g", t, t);
		ck_assert(cluster_psql(&source, db, sql));
	}
	itest_conninfo(src, &source, db);
	snprintf(tgt, sizeof(tgt), "%s user=op_lim", cluster_conninfo(&target, db));
	sync_argv(argv, 24, src, tgt, "op_jobs", extra);
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
	itest_print_output("pgstream sync", status, out, err);
	ck_assert_int_eq(status, 0);
	ck_assert_msg(strstr(err, "--jobs 16 lowered to 2: the target allows only 3 more "
	                          "connection(s)") != NULL, "%s", err);
	free(out);
	free(err);
	for (int t = 0; t < 12; t++)
	{
		char table[32];
		char *fs;
		char *ft;

		snprintf(table, sizeof(table), "public.t%d", t);
		fs = itest_table_fingerprint(&source, db, table);
		ft = itest_table_fingerprint(&target, db, table);
		ck_assert_str_eq(fs, ft);
		free(fs);
		free(ft);
	}
}
END_TEST

/*
 * pgstream keeps its state in schema "pgstream" on the target and drops it
 * at the end: a source schema of that name would be copied into it and
 * lost with exit 0.  The run must refuse it before anything exists.
 */
START_TEST(a_source_schema_named_like_the_state_schema_is_refused)
{
	const char *db = "op_state";
	const char *const extra[] = {"--no-follow", NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *argv[24];
	char *out = NULL;
	char *err = NULL;
	int status;

	make_dbs(db);
	ck_assert(cluster_psql(&source, db, "CREATE SCHEMA pgstream;"
	                                    "CREATE TABLE pgstream.orders (id int PRIMARY KEY);"
	                                    "INSERT INTO pgstream.orders VALUES (1), (2)"));
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	sync_argv(argv, 24, src, tgt, "op_state", extra);
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
	itest_print_output("pgstream sync", status, out, err);
	ck_assert_int_eq(status, 2);
	ck_assert_msg(strstr(err, "blocking: state_schema (pgstream): the source has a schema "
	                          "named \"pgstream\"") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "; fix: rename it, or run with --state-schema OTHER_NAME")
	              != NULL, "%s", err);
	free(out);
	free(err);
	assert_nothing_created(db);
}
END_TEST

/* How many schemas called name does the target database hold ("0", "1")? */
static void
assert_target_schemas(const char *db, const char *name, const char *count)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_namespace WHERE nspname = '%s'",
	         name);
	itest_assert_scalar(&target, db, sql, count);
}

/*
 * The way forward for a source schema "pgstream": --state-schema puts the
 * state elsewhere.  assess and sync check the configured name, not
 * "pgstream"; the state lives in the named schema while the run goes on
 * (seen at a paused copy) and is dropped at the end as "pgstream" would be;
 * the user's schema "pgstream" arrives exactly and is left alone.
 */
START_TEST(a_source_schema_named_like_the_state_schema_migrates_with_state_schema)
{
	const char *db = "op_state_other";
	const char *point = "fullload.after_part_commit";
	/* one worker: it alone pauses after its first part, so exactly one is done */
	const char *const extra[] = {"--no-follow", "--jobs", "1", "--state-schema", "pgs_state",
	                             NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char fp_dir[PATH_MAX + 64];
	const char *argv[24];
	FailpointDir fd;
	Proc run;
	char *out = NULL;
	char *err = NULL;
	int status;

	make_dbs(db);
	ck_assert(cluster_psql(&source, db, "CREATE SCHEMA pgstream;"
	                                    "CREATE TABLE pgstream.orders (id int PRIMARY KEY, v text);"
	                                    "INSERT INTO pgstream.orders"
	                                    " SELECT g, 'o' || g FROM generate_series(1, 500) g;"
	                                    "CREATE TABLE pgstream.migration (id int PRIMARY KEY);"
	                                    "INSERT INTO pgstream.migration VALUES (7)"));
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	{
		const char *const asargv[] = {itest_pgstream_bin(), "assess", "--source", src,
		                              "--target", tgt, "--no-follow", "--state-schema",
		                              "pgs_state", NULL};

		status = proc_run(asargv, NULL, CMD_TIMEOUT_MS, &out, &err);
		itest_print_output("pgstream assess --state-schema pgs_state", status, out, err);
		ck_assert_int_eq(status, 0);
		ck_assert_ptr_null(strstr(err, "state_schema"));
		free(out);
		free(err);
	}
	{
		/* and the configured name is the one checked */
		const char *const asargv[] = {itest_pgstream_bin(), "assess", "--source", src,
		                              "--target", tgt, "--no-follow", "--state-schema",
		                              "public", NULL};

		status = proc_run(asargv, NULL, CMD_TIMEOUT_MS, &out, &err);
		itest_print_output("pgstream assess --state-schema public", status, out, err);
		ck_assert_int_eq(status, 2);
		ck_assert_msg(strstr(err, "blocking: state_schema (public): the source has a schema "
		                          "named \"public\"") != NULL, "%s", err);
		free(out);
		free(err);
	}
	{
		/* a schema of that name on the target that holds no migration */
		const char *const asargv[] = {itest_pgstream_bin(), "assess", "--source", src,
		                              "--target", tgt, "--no-follow", "--state-schema",
		                              "pgs_state", NULL};

		ck_assert(cluster_psql(&target, db, "CREATE SCHEMA pgs_state;"
		                                    "CREATE TABLE pgs_state.keep (id int)"));
		status = proc_run(asargv, NULL, CMD_TIMEOUT_MS, &out, &err);
		itest_print_output("pgstream assess (target has pgs_state)", status, out, err);
		ck_assert_int_eq(status, 2);
		ck_assert_msg(strstr(err, "blocking: state_schema (pgs_state): the target already has "
		                          "a schema named \"pgs_state\" (1 relation(s)) that holds no "
		                          "pgstream migration") != NULL, "%s", err);
		ck_assert_msg(strstr(err, "or run with --state-schema OTHER_NAME") != NULL, "%s", err);
		free(out);
		free(err);
		ck_assert(cluster_psql(&target, db, "DROP SCHEMA pgs_state CASCADE"));
	}

	ck_assert(fpctl_init(&fd));
	fpctl_env(&fd, fp_dir, sizeof(fp_dir));
	{
		const char *const env[] = {"PGSTREAM_FAILPOINTS=fullload.after_part_commit=pause",
		                           fp_dir, NULL};

		sync_argv(argv, 24, src, tgt, "op_state_other", extra);
		ck_assert(proc_spawn(&run, argv, env));
	}
	ck_assert(fpctl_wait(&fd, point, CMD_TIMEOUT_MS));
	/* the state is in pgs_state, and nothing of it in the user's schema */
	itest_assert_scalar(&target, db, "SELECT phase FROM pgs_state.migration", "copy");
	itest_assert_scalar(&target, db,
	                    "SELECT count(*) FILTER (WHERE done) FROM pgs_state.copy_parts", "1");
	itest_assert_scalar(&target, db,
	                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
	                    " ON n.oid = c.relnamespace WHERE n.nspname = 'pgstream'"
	                    " AND c.relname IN ('tables', 'copy_parts', 'schema_steps')", "0");
	fpctl_release(&fd, point);
	status = proc_wait(&run, CMD_TIMEOUT_MS);
	itest_print_proc("pgstream sync --state-schema pgs_state", &run, status);
	ck_assert_int_eq(status, 0);
	proc_release(&run);
	fpctl_cleanup(&fd);

	assert_tables_equal(db);
	{
		static const char *const tables[] = {"pgstream.orders", "pgstream.migration"};

		for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		{
			char *fs = itest_table_fingerprint(&source, db, tables[i]);
			char *ft = itest_table_fingerprint(&target, db, tables[i]);

			ck_assert_str_eq(fs, ft);
			free(fs);
			free(ft);
		}
	}
	itest_assert_scalar(&target, db, "SELECT count(*) FROM pgstream.orders", "500");
	assert_target_schemas(db, "pgstream", "1");
	assert_target_schemas(db, "pgs_state", "0");
}
END_TEST

/*
 * Every session pgstream opens sets its own timeouts to 0 (docs/privileges):
 * a source role with statement_timeout = 1ms (and idle and lock timeouts)
 * must not fail the run, offline or live.
 */
START_TEST(role_timeouts_on_the_source_do_not_fail_the_run)
{
	const char *db = "op_timeouts";
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *argv[24];
	char *out = NULL;
	char *err = NULL;
	int status;

	make_dbs(db);
	ck_assert(cluster_psql(&source, "postgres", "DROP ROLE IF EXISTS op_hasty"));
	ck_assert(cluster_psql(&source, "postgres",
	                       "CREATE ROLE op_hasty LOGIN SUPERUSER REPLICATION;"
	                       "ALTER ROLE op_hasty SET statement_timeout = '1ms';"
	                       "ALTER ROLE op_hasty SET lock_timeout = '1ms';"
	                       "ALTER ROLE op_hasty SET idle_in_transaction_session_timeout = '1s';"
	                       "ALTER ROLE op_hasty SET idle_session_timeout = '1s'"));
	snprintf(src, sizeof(src), "%s user=op_hasty", cluster_conninfo(&source, db));
	itest_conninfo(tgt, &target, db);
	{
		const char *const extra[] = {"--no-follow", NULL};

		sync_argv(argv, 24, src, tgt, "op_timeouts", extra);
		status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
		itest_print_output("pgstream sync", status, out, err);
		ck_assert_int_eq(status, 0);
		free(out);
		free(err);
	}
	assert_tables_equal(db);
	/* live, on a fresh target database: streams and applies */
	{
		Proc live;

		itest_make_db(&target, "op_timeouts_live", NULL);
		itest_conninfo(tgt, &target, "op_timeouts_live");
		sync_argv(argv, 24, src, tgt, "op_timeouts_live", NULL);
		ck_assert(proc_spawn(&live, argv, NULL));
		ck_assert(cluster_wait_for(&target, "op_timeouts_live",
		                           "SELECT phase = 'streaming' FROM pgstream.migration",
		                           CMD_TIMEOUT_MS));
		ck_assert(cluster_psql(&source, db, "INSERT INTO small VALUES (1001, 'live')"));
		ck_assert(cluster_wait_for(&target, "op_timeouts_live",
		                           "SELECT count(*) = 1 FROM small WHERE id = 1001",
		                           CMD_TIMEOUT_MS));
		ck_assert(proc_kill(&live, SIGTERM));
		status = proc_wait(&live, CMD_TIMEOUT_MS);
		itest_print_proc("live pgstream sync", &live, status);
		proc_release(&live);
		itest_conninfo(tgt, &target, db);
	}
	{
		const char *const asargv[] = {itest_pgstream_bin(), "assess", "--source", src,
		                              "--target", tgt, "--no-follow", NULL};

		status = proc_run(asargv, NULL, CMD_TIMEOUT_MS, &out, &err);
		itest_print_output("pgstream assess", status, out, err);
		ck_assert_ptr_null(strstr(err, "statement timeout"));
		ck_assert_ptr_null(strstr(err, "could not run"));
		free(out);
		free(err);
	}
}
END_TEST

/* Is any process running whose command line mentions needle? */
static bool
process_mentions(const char *needle)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	bool found = false;

	ck_assert_ptr_nonnull(proc);
	while (!found && (e = readdir(proc)) != NULL)
	{
		char path[300];
		char buf[4096];
		FILE *f;
		size_t n;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		for (size_t i = 0; i < n; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		buf[n] = '\0';
		found = strstr(buf, needle) != NULL;
	}
	closedir(proc);
	return found;
}

/*
 * A signal at a named moment of an offline sync: the run stops by itself
 * with exit 1 saying so and naming the phase, ends its children, leaves no
 * temporary files, and the same command then completes exactly.
 */
static void
stop_at(const char *db, const char *failpoint_spec, const char *phase)
{
	const char *const extra[] = {"--no-follow", "--jobs", "2", NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char tmpdir[PATH_MAX] = "/tmp/pgstream-op-tmp-XXXXXX";
	char env_tmp[PATH_MAX + 16];
	char env_fp[256];
	char says[128];
	const char *argv[24];
	char *out = NULL;
	char *err = NULL;
	int status;

	make_dbs(db);
	ck_assert(cluster_psql(&source, db, "CREATE INDEX ON big (pad);"
	                                    "CREATE INDEX ON small (v);"
	                                    "CREATE TABLE child (id int PRIMARY KEY,"
	                                    " small_id int REFERENCES small (id));"
	                                    "INSERT INTO child SELECT g, g FROM generate_series(1, 50) g"));
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(env_tmp, sizeof(env_tmp), "TMPDIR=%s", tmpdir);
	snprintf(env_fp, sizeof(env_fp), "PGSTREAM_FAILPOINTS=%s", failpoint_spec);
	{
		const char *const env[] = {env_fp, env_tmp, NULL};

		sync_argv(argv, 24, src, tgt, db, extra);
		status = proc_run(argv, env, CMD_TIMEOUT_MS, &out, &err);
	}
	itest_print_output("pgstream sync (signalled)", status, out, err);
	ck_assert_int_eq(status, 1);
	ck_assert_ptr_nonnull(strstr(err, "signal received, stopping cleanly"));
	ck_assert_ptr_nonnull(strstr(err, "stopped by a signal"));
	snprintf(says, sizeof(says), "the migration stopped in phase \"%s\"; run the same "
	         "command again to resume", phase);
	ck_assert_msg(strstr(err, says) != NULL, "expected \"%s\" in:\n%s", says, err);
	free(out);
	free(err);
	/* nothing of it goes on: no child, no temporary files */
	ck_assert_msg(!process_mentions(tmpdir), "a child of the stopped run still runs");
	ck_assert_int_eq(rmdir(tmpdir), 0);

	sync_argv(argv, 24, src, tgt, db, extra);
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
	itest_print_output("pgstream sync (again)", status, out, err);
	ck_assert_int_eq(status, 0);
	free(out);
	free(err);
	assert_tables_equal(db);
	{
		char *fs = itest_table_fingerprint(&source, db, "public.child");
		char *ft = itest_table_fingerprint(&target, db, "public.child");

		ck_assert_str_eq(fs, ft);
		free(fs);
		free(ft);
	}
	itest_assert_scalar(&target, db, "SELECT count(*) FROM pg_indexes"
	                                 " WHERE tablename IN ('big', 'small', 'child')", "5");
	itest_assert_scalar(&target, db, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'",
	                    "1");
}

START_TEST(sigterm_during_the_index_builds_stops_the_run)
{
	stop_at("op_sig_index", "schema.after_index_step=sigterm", "index");
}
END_TEST

START_TEST(sigterm_during_the_copy_stops_the_run)
{
	stop_at("op_sig_copy", "fullload.after_part_commit=sigterm", "copy");
}
END_TEST

/* A live sync streaming when a SIGHUP arrives stops saying so and resumes. */
START_TEST(sighup_while_streaming_stops_the_run_and_it_resumes)
{
	const char *db = "op_sig_stream";
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *argv[24];
	Proc sync;
	char *err;
	int status;

	make_dbs(db);
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	sync_argv(argv, 24, src, tgt, db, NULL);
	ck_assert(proc_spawn(&sync, argv, NULL));
	ck_assert(cluster_wait_for(&target, db, "SELECT phase = 'streaming' FROM pgstream.migration",
	                           CMD_TIMEOUT_MS));
	ck_assert(proc_kill(&sync, SIGHUP));
	status = proc_wait(&sync, 60000);
	itest_print_proc("pgstream sync (SIGHUP)", &sync, status);
	ck_assert_int_eq(status, 1);
	err = proc_stderr(&sync);
	ck_assert_ptr_nonnull(strstr(err, "signal received, stopping cleanly"));
	ck_assert_ptr_nonnull(strstr(err, "the migration stopped in phase \"streaming\"; run the "
	                                  "same command again to resume"));
	free(err);
	proc_release(&sync);

	/* written while no sync ran: the resumed run carries it */
	ck_assert(cluster_psql(&source, db, "INSERT INTO small VALUES (2000, 'while stopped')"));
	ck_assert(proc_spawn(&sync, argv, NULL));
	ck_assert(cluster_wait_for(&target, db, "SELECT count(*) = 1 FROM small WHERE id = 2000",
	                           CMD_TIMEOUT_MS));
	ck_assert(proc_kill(&sync, SIGTERM));
	status = proc_wait(&sync, 60000);
	itest_print_proc("pgstream sync (SIGTERM)", &sync, status);
	ck_assert_int_eq(status, 1);
	proc_release(&sync);
	assert_tables_equal(db);
}
END_TEST

START_TEST(sighup_before_the_final_phase_stops_the_run)
{
	stop_at("op_sig_final", "sync.before_final=sighup", "final");
}
END_TEST

START_TEST(sighup_while_pg_dump_runs_ends_pg_dump_too)
{
	/* the second program run is pg_dump itself (after pg_dump --version) */
	stop_at("op_sig_dump", "subproc.after_spawn=sighup@2", "schema");
}
END_TEST

/*
 * The commands that only read (assess, status) under INT, TERM and HUP,
 * each signal raised at a failpoint once the command is connected: exit 1
 * at once with a line naming the command and the signal, and nothing left
 * on either server (no session of theirs stays).
 */
START_TEST(reading_commands_stop_at_once_on_every_signal_saying_so)
{
	const char *db = "op_sig_read";
	static const char *const sigs[3][2] = {
	    {"sigint", "SIGINT"}, {"sigterm", "SIGTERM"}, {"sighup", "SIGHUP"}};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];

	make_dbs(db);
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	for (int cmd = 0; cmd < 2; cmd++)
		for (int i = 0; i < 3; i++)
		{
			const char *const assess[] = {itest_pgstream_bin(), "assess", "--source", src,
			                              "--target", tgt, NULL};
			const char *const status_argv[] = {itest_pgstream_bin(), "status", "--target",
			                                   tgt, NULL};
			const char *name = cmd == 0 ? "assess" : "status";
			char env_fp[128];
			char says[128];
			char *out = NULL;
			char *err = NULL;
			int status;

			snprintf(env_fp, sizeof(env_fp), "PGSTREAM_FAILPOINTS=%s.after_connect=%s",
			         name, sigs[i][0]);
			{
				const char *const env[] = {env_fp, NULL};

				status = proc_run(cmd == 0 ? assess : status_argv, env, CMD_TIMEOUT_MS,
				                  &out, &err);
			}
			itest_print_output(name, status, out, err);
			ck_assert_int_eq(status, 1);
			snprintf(says, sizeof(says), "pgstream %s: received %s; stopped (it only reads, "
			         "nothing to undo)", name, sigs[i][1]);
			ck_assert_msg(strstr(err, says) != NULL, "expected \"%s\" in:\n%s", says, err);
			free(out);
			free(err);
		}
	ck_assert(cluster_wait_for(&source, "postgres",
	                           "SELECT count(*) = 0 FROM pg_stat_activity"
	                           " WHERE application_name LIKE 'pgstream%'", 10000));
	ck_assert(cluster_wait_for(&target, "postgres",
	                           "SELECT count(*) = 0 FROM pg_stat_activity"
	                           " WHERE application_name LIKE 'pgstream%'", 10000));
	itest_assert_scalar(&target, db, "SELECT count(*) FROM pg_namespace"
	                                 " WHERE nspname = 'pgstream'", "0");
}
END_TEST

/*
 * Every option of every command with a bad value: exit 3, a message that
 * names the option (or the keyword), and nothing created on either server.
 * "@S" and "@T" stand for the real source and target conninfo.
 */
static const struct
{
	const char *argv[12];
	const char *says;
} bad_options[] = {
    {{"sync", "--source", "@S", "--target", "@T", "--jobs", "0"}, "--jobs"},
    {{"sync", "--source", "@S", "--target", "@T", "--jobs", "many"}, "--jobs"},
    {{"sync", "--source", "@S", "--target", "@T", "--split-size", "0"}, "--split-size"},
    {{"sync", "--source", "@S", "--target", "@T", "--index-memory", "-1"}, "--index-memory"},
    {{"sync", "--source", "@S", "--target", "@T", "--no-key-tables=bogus"}, "--no-key-tables"},
    {{"sync", "--source", "@S", "--target", "@T", "--retry-timeout", "soon"}, "--retry-timeout"},
    {{"sync", "--source", "@S", "--target", "@T", "--slot", "Bad-Name"}, "slot name"},
    {{"sync", "--source", "@S", "--target", "@T", "--bogus"}, "pgstream sync --help"},
    {{"sync", "--source", "@S", "--target", "@T", "extra"}, "unexpected argument"},
    {{"sync", "--source", "@S"}, "--target"},
    {{"sync", "--source", "@S port=abc", "--target", "@T"}, "port \"abc\""},
    {{"sync", "--source", "@S", "--target", "@T sslmode=bogus"}, "sslmode \"bogus\""},
    {{"assess", "--source", "@S", "--target", "@T", "--no-key-tables", "bogus"}, "--no-key-tables"},
    {{"assess", "--source", "@S", "--target", "@T", "--slot", "UPPER"}, "slot name"},
    {{"assess", "--source", "@S"}, "--target"},
    {{"assess", "--source", "@S port=abc", "--target", "@T"}, "port \"abc\""},
    {{"cutover", "--source", "@S", "--target", "@T", "--timeout", "0"}, "--timeout"},
    {{"cutover", "--source", "@S", "--target", "@T", "--timeout", "soon"}, "--timeout"},
    {{"cutover", "--source", "@S", "--target", "@T", "--bogus"}, "pgstream cutover --help"},
    {{"cutover", "--source", "@S"}, "--target"},
    {{"cutover", "--source", "@S port=abc", "--target", "@T", "--freeze"}, "port \"abc\""},
    {{"cutover", "--source", "@S", "--target", "@T port=abc", "--freeze"}, "port \"abc\""},
    {{"status", "--target", "@T port=abc"}, "port \"abc\""},
    {{"status", "--target", "@T", "--bogus"}, "pgstream status --help"},
    {{"peek", "--source", "@S", "--slot", "s", "--publication", "p", "--limit", "0"}, "--limit"},
    {{"peek", "--source", "@S", "--slot", "s", "--publication", "p", "--idle-exit", "x"}, "--idle-exit"},
    {{"peek", "--source", "@S", "--slot", "UPPER", "--publication", "p"}, "slot name"},
    {{"peek", "--source", "@S", "--slot", "s"}, "--publication"},
    {{"sync", "--source", "@S", "--target", "@T", "--state-schema", ""},
     "invalid --state-schema \"\": use 1 to 63 bytes"},
    {{"sync", "--source", "@S", "--target", "@T", "--state-schema", "pg_state"},
     "invalid --state-schema \"pg_state\": names starting with \"pg_\" are reserved"},
    {{"sync", "--source", "@S", "--target", "@T", "--no-follow", "--state-schema",
      "s234567890123456789012345678901234567890123456789012345678901234"},
     "invalid --state-schema \"s234567890123456789012345678901234567890123456789012345678901234\""
     ": use 1 to 63 bytes"},
    {{"assess", "--source", "@S", "--target", "@T", "--state-schema", "pg_x"},
     "pgstream assess: invalid --state-schema \"pg_x\": names starting with \"pg_\""},
    {{"cutover", "--source", "@S", "--target", "@T", "--state-schema", ""},
     "pgstream cutover: invalid --state-schema \"\""},
    {{"cutover", "--source", "@S", "--target", "@T", "--freeze", "--state-schema", "pg_"},
     "pgstream cutover: invalid --state-schema \"pg_\": names starting with \"pg_\""},
    {{"sync", "--source", "@S", "--target", "@T", "--pg-bin", "/nonexistent"},
     "pgstream sync: invalid --pg-bin \"/nonexistent\": it holds no pg_dump"},
    {{"assess", "--source", "@S", "--target", "@T", "--pg-bin", "/tmp"},
     "pgstream assess: invalid --pg-bin \"/tmp\": it holds no pg_dump"},
    {{"status", "--target", "@T", "--state-schema", "pg_toast"},
     "pgstream status: invalid --state-schema \"pg_toast\": names starting with \"pg_\""},
    {{"status", "--target", "@T", "--state-schema", ""},
     "pgstream status: invalid --state-schema \"\": use 1 to 63 bytes"},
};

START_TEST(every_option_with_a_bad_value_is_a_usage_error_that_changes_nothing)
{
	const char *db = "op_usage";
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char with[2][ITEST_CONNINFO_MAX + 32];
	const char *argv[16];
	char *out = NULL;
	char *err = NULL;
	int n = 0;
	int status;

	make_dbs(db);
	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	argv[n++] = itest_pgstream_bin();
	for (int i = 0; bad_options[_i].argv[i] != NULL; i++)
	{
		const char *a = bad_options[_i].argv[i];

		if (a[0] == '@')
		{
			snprintf(with[a[1] == 'S' ? 0 : 1], sizeof(with[0]), "%s%s",
			         a[1] == 'S' ? src : tgt, a + 2);
			a = with[a[1] == 'S' ? 0 : 1];
		}
		argv[n++] = a;
	}
	argv[n] = NULL;
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
	itest_print_output(bad_options[_i].argv[0], status, out, err);
	ck_assert_int_eq(status, 3);
	ck_assert_msg(strstr(err, bad_options[_i].says) != NULL, "case %d: \"%s\" not in: %s",
	              _i, bad_options[_i].says, err);
	free(out);
	free(err);
	assert_nothing_created(db);
	itest_assert_scalar(&source, db,
	                    "SELECT current_setting('default_transaction_read_only')", "off");
}
END_TEST

Suite *
operator_suite(void)
{
	Suite *s = suite_create("operator");
	TCase *tc = tcase_create("operator");

	tcase_set_timeout(tc, 600);
	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_add_test(tc, a_slot_name_the_server_would_fold_is_refused_before_anything_exists);
	tcase_add_test(tc, a_second_offline_sync_is_refused_while_the_first_copies);
	tcase_add_test(tc, a_second_live_sync_is_refused_at_once);
	tcase_add_test(tc, bytes_the_sample_missed_stop_the_copy_saying_what_to_do);
	tcase_add_test(tc, an_object_of_the_same_name_on_the_target_is_refused_before_anything_exists);
	tcase_add_test(tc, an_unwritable_spool_directory_is_refused_before_anything_exists);
	tcase_add_test(tc, jobs_beyond_the_free_connections_are_lowered_before_the_copy);
	tcase_add_test(tc, a_source_schema_named_like_the_state_schema_is_refused);
	tcase_add_test(tc, a_source_schema_named_like_the_state_schema_migrates_with_state_schema);
	tcase_add_test(tc, role_timeouts_on_the_source_do_not_fail_the_run);
	tcase_add_test(tc, sigterm_during_the_index_builds_stops_the_run);
	tcase_add_test(tc, sighup_before_the_final_phase_stops_the_run);
	tcase_add_test(tc, sigterm_during_the_copy_stops_the_run);
	tcase_add_test(tc, sighup_while_streaming_stops_the_run_and_it_resumes);
	tcase_add_test(tc, sighup_while_pg_dump_runs_ends_pg_dump_too);
	tcase_add_test(tc, reading_commands_stop_at_once_on_every_signal_saying_so);
	tcase_add_loop_test(tc, every_option_with_a_bad_value_is_a_usage_error_that_changes_nothing,
	                    0, (int) (sizeof(bad_options) / sizeof(bad_options[0])));
	suite_add_tcase(s, tc);
	return s;
}
