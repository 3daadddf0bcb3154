/*
 * tests/integration/test_resume.c -- resuming an interrupted full load.
 *
 * A run killed during the copy is resumed with a new slot and snapshot (the
 * old snapshot died with the process).  The schema on the target, though,
 * was made from the old snapshot: if the source's tables changed in between,
 * the copy cannot go on into the old definitions.  It must stop (exit 1)
 * with a message naming the table and the difference -- not fail on every run
 * with "run the same command again" -- and leave no slot on the source.
 * If nothing changed, or once the change is undone, the resumed run
 * completes exactly.
 *
 * The kill is a failpoint (fullload.after_part_commit=crash): the process
 * dies right after the first copy part committed, never at a guessed time.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define SYNC_TIMEOUT_MS 240000

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

/* sync --no-follow with optional extra environment; status, stderr. */
static int
run_sync(const char *db, const char *slot, const char *const env[], char **err_out)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *argv[16];
	char *out = NULL;
	char *err = NULL;
	int n = 0;
	int status;

	itest_conninfo(src, &source, db);
	itest_conninfo(tgt, &target, db);
	argv[n++] = itest_pgstream_bin();
	argv[n++] = "sync";
	argv[n++] = "--source";
	argv[n++] = src;
	argv[n++] = "--target";
	argv[n++] = tgt;
	argv[n++] = "--no-follow";
	argv[n++] = "--slot";
	argv[n++] = slot;
	argv[n++] = "--jobs";
	argv[n++] = "1";
	argv[n++] = "--split-size";
	argv[n++] = "1";
	argv[n] = NULL;
	status = proc_run(argv, env, SYNC_TIMEOUT_MS, &out, &err);
	itest_print_output("pgstream sync", status, out, err);
	free(out);
	if (err_out != NULL)
		*err_out = err;
	else
		free(err);
	return status;
}

static void
make_source(const char *db)
{
	itest_make_db(&source, db, NULL);
	itest_make_db(&target, db, NULL);
	ck_assert(cluster_psql(&source, db,
	                       "CREATE TABLE big (id int PRIMARY KEY, pad text);"
	                       "INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 30000) g;"
	                       "CREATE TABLE small (id int PRIMARY KEY, v text);"
	                       "INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 100) g;"
	                       "ANALYZE"));
}

static void
kill_after_first_part(const char *db, const char *slot)
{
	const char *const env[] = {"PGSTREAM_FAILPOINTS=fullload.after_part_commit=crash", NULL};

	ck_assert_int_eq(run_sync(db, slot, env, NULL), 128 + SIGKILL);
	/* the kill came after a committed part: some rows are there, not all */
	itest_assert_scalar(&target, db,
	                    "SELECT count(*) FILTER (WHERE done) = 1 AND count(*) > 2"
	                    " FROM pgstream.copy_parts", "t");
}

START_TEST(resume_after_a_kill_in_the_copy_is_exact)
{
	const char *db = "resume_same";
	char *fs;
	char *ft;

	make_source(db);
	kill_after_first_part(db, "resume_same");
	ck_assert_int_eq(run_sync(db, "resume_same", NULL, NULL), 0);
	fs = itest_table_fingerprint(&source, db, "public.big");
	ft = itest_table_fingerprint(&target, db, "public.big");
	ck_assert_str_eq(fs, ft);
	free(fs);
	free(ft);
	itest_assert_scalar(&source, "postgres",
	                    "SELECT count(*) FROM pg_replication_slots", "0");
}
END_TEST

START_TEST(a_table_changed_between_runs_stops_with_a_clear_message_and_no_slot)
{
	const char *db = "resume_changed";
	char *err = NULL;

	make_source(db);
	kill_after_first_part(db, "resume_changed");
	ck_assert(cluster_psql(&source, db, "ALTER TABLE small ADD COLUMN extra int DEFAULT 7"));
	for (int attempt = 0; attempt < 2; attempt++)
	{
		ck_assert_int_eq(run_sync(db, "resume_changed", NULL, &err), 1);
		ck_assert_msg(strstr(err, "table public.small changed on the source since this "
		                          "migration created the tables on the target: its columns "
		                          "are (id integer, v text, extra integer) on the source but "
		                          "(id integer, v text) on the target") != NULL,
		              "the message must name the table and the difference: %s", err);
		ck_assert_msg(strstr(err, "fix what the message above says first") != NULL, "%s", err);
		ck_assert_msg(strstr(err, "run the same command again") == NULL,
		              "running again cannot help, the message must not say so: %s", err);
		free(err);
		err = NULL;
		/* the slot this run made was dropped again: nothing holds WAL */
		itest_assert_scalar(&source, "postgres",
		                    "SELECT count(*) FROM pg_replication_slots", "0");
	}
	/* the way forward the message gives: undo the change, run again */
	ck_assert(cluster_psql(&source, db, "ALTER TABLE small DROP COLUMN extra"));
	ck_assert_int_eq(run_sync(db, "resume_changed", NULL, NULL), 0);
	{
		char *fs = itest_table_fingerprint(&source, db, "public.big");
		char *ft = itest_table_fingerprint(&target, db, "public.big");

		ck_assert_str_eq(fs, ft);
		free(fs);
		free(ft);
		fs = itest_table_fingerprint(&source, db, "public.small");
		ft = itest_table_fingerprint(&target, db, "public.small");
		ck_assert_str_eq(fs, ft);
		free(fs);
		free(ft);
	}
}
END_TEST

Suite *
resume_suite(void)
{
	Suite *s = suite_create("resume");
	TCase *tc = tcase_create("resume");

	tcase_set_timeout(tc, 600);
	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_add_test(tc, resume_after_a_kill_in_the_copy_is_exact);
	tcase_add_test(tc, a_table_changed_between_runs_stops_with_a_clear_message_and_no_slot);
	suite_add_tcase(s, tc);
	return s;
}
