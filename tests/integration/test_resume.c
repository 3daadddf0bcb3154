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
 *
 * Every run copies from a snapshot, and TRUNCATE (like VACUUM FULL, CLUSTER
 * and a rewriting ALTER TABLE) is not MVCC-safe: once it commits, an older
 * snapshot sees the table empty.  A rewrite between the slot's snapshot and
 * the copy would copy nothing, silently offline, and live the stream's
 * UPDATEs of the missing rows would stop sync.  Every copy session holds
 * ACCESS SHARE on every table it copies from before the snapshot is taken
 * until the copy ends, and takes a new snapshot if it had to let go and a
 * table was rewritten meanwhile.  Each window is reached at a failpoint
 * (fullload.after_first_lock, fullload.before_relock,
 * sync.after_table_locks).  A lock table too small for every session's
 * locks says which setting to raise.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/failpoint_ctl.h"
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

/* sync --no-follow's argv (16 entries) */
static void
sync_argv(const char *argv[16], char *src, char *tgt, const char *db, const char *slot,
          const char *jobs)
{
	int n = 0;

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
	argv[n++] = jobs;
	argv[n++] = "--split-size";
	argv[n++] = "1";
	argv[n] = NULL;
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
	int status;

	sync_argv(argv, src, tgt, db, slot, "1");
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
		                          "are (extra integer, id integer, v text) on the source but "
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

/* Both tables of make_source() are equal on both sides. */
static void
assert_tables_equal(const char *db)
{
	const char *const tables[] = {"public.big", "public.small"};

	for (size_t i = 0; i < 2; i++)
	{
		char *fs = itest_table_fingerprint(&source, db, tables[i]);
		char *ft = itest_table_fingerprint(&target, db, tables[i]);

		ck_assert_msg(strcmp(fs, ft) == 0, "%s: source %s, target %s", tables[i], fs, ft);
		free(fs);
		free(ft);
	}
}

/*
 * sync with the failpoints of spec armed, paused at fp (with its failpoint
 * directory), the command's process in *p.
 */
static void
spawn_paused(Proc *p, FailpointDir *fd, const char *db, const char *slot, const char *spec,
             const char *fp, const char *jobs)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char env_fp[128];
	char env_dir[PATH_MAX + 32];
	const char *argv[16];

	ck_assert(fpctl_init(fd));
	fpctl_env(fd, env_dir, sizeof(env_dir));
	snprintf(env_fp, sizeof(env_fp), "PGSTREAM_FAILPOINTS=%s", spec);
	sync_argv(argv, src, tgt, db, slot, jobs);
	{
		const char *const env[] = {env_fp, env_dir, NULL};

		ck_assert(proc_spawn(p, argv, env));
	}
	ck_assert_msg(fpctl_wait(fd, fp, 120000), "sync never reached %s", fp);
}

/*
 * A transaction that wrote and then waits for a table the copy sessions
 * hold: the slot being created waits for that transaction, which waits for
 * the copy.  The sessions must let go until the slot exists (the TRUNCATE
 * then commits before the snapshot), lock again under the snapshot, and
 * notice a table rewritten in that lock-free moment (here a TRUNCATE at
 * fullload.before_relock): a new snapshot, and the target holds what the
 * source holds.
 */
START_TEST(a_writer_waiting_on_the_copy_locks_does_not_hold_up_the_slot)
{
	const char *db = "snap_writer";
	FailpointDir fd;
	Proc p;
	PGconn *w;
	PGresult *res;
	char *err;
	int status;

	make_source(db);
	spawn_paused(&p, &fd, db, "snap_writer",
	             "fullload.after_first_lock=pause@1;fullload.before_relock=pause@1",
	             "fullload.after_first_lock", "1");
	w = cluster_connect(&source, db, NULL);
	ck_assert_ptr_nonnull(w);
	res = PQexec(w, "BEGIN; INSERT INTO small VALUES (5000, 'the writer')");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	ck_assert_int_eq(PQsendQuery(w, "TRUNCATE ONLY big"), 1);
	ck_assert_msg(cluster_wait_for(&source, db,
	                               "SELECT count(*) = 1 FROM pg_stat_activity"
	                               " WHERE query = 'TRUNCATE ONLY big'"
	                               " AND wait_event_type = 'Lock'", 30000),
	              "the writer's TRUNCATE did not wait for the copy's locks");
	fpctl_release(&fd, "fullload.after_first_lock");
	/* the slot waits for the writer, the writer for the locks: let go */
	res = PQgetResult(w);
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	while ((res = PQgetResult(w)) != NULL)
		PQclear(res);
	res = PQexec(w, "COMMIT");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	PQfinish(w);
	/* the slot exists, no lock is held: a rewrite there must be noticed */
	ck_assert_msg(fpctl_wait(&fd, "fullload.before_relock", 120000),
	              "sync never reached fullload.before_relock");
	ck_assert(cluster_psql(&source, db,
	                       "TRUNCATE ONLY small;"
	                       "INSERT INTO small VALUES (6000, 'after the truncate')"));
	fpctl_release(&fd, "fullload.before_relock");
	status = proc_wait(&p, SYNC_TIMEOUT_MS);
	err = proc_stderr(&p);
	itest_print_proc("pgstream sync", &p, status);
	ck_assert_int_eq(status, 0);
	proc_release(&p);
	fpctl_cleanup(&fd);
	itest_assert_scalar(&target, db, "SELECT count(*) FROM big", "0");
	itest_assert_scalar(&target, db, "SELECT string_agg(id::text, ',') FROM small", "6000");
	assert_tables_equal(db);
	ck_assert_msg(strstr(err, "letting go of the locks until the slot exists") != NULL,
	              "%s", err);
	ck_assert_msg(strstr(err, "table public.small was rewritten, or created, on the source "
	                          "in the moment the copy held no lock on it") != NULL, "%s", err);
	free(err);
	itest_assert_scalar(&source, "postgres",
	                    "SELECT count(*) FROM pg_replication_slots", "0");
}
END_TEST

/*
 * A TRUNCATE issued while the copy runs waits until the copy is done (as
 * it would for pg_dump): the target gets the snapshot's rows, never an
 * empty table.
 */
START_TEST(a_truncate_during_the_copy_waits_until_the_copy_is_done)
{
	const char *db = "snap_waits";
	FailpointDir fd;
	Proc p;
	PGconn *conn;
	PGresult *res;
	char *fs_small;
	char *fs_big;
	int status;

	make_source(db);
	fs_small = itest_table_fingerprint(&source, db, "public.small");
	fs_big = itest_table_fingerprint(&source, db, "public.big");
	spawn_paused(&p, &fd, db, "snap_waits", "sync.after_table_locks=pause",
	             "sync.after_table_locks", "2");
	conn = cluster_connect(&source, db, NULL);
	ck_assert_ptr_nonnull(conn);
	ck_assert_int_eq(PQsendQuery(conn, "TRUNCATE ONLY small, big"), 1);
	ck_assert_msg(cluster_wait_for(&source, db,
	                               "SELECT count(*) = 1 FROM pg_stat_activity"
	                               " WHERE query = 'TRUNCATE ONLY small, big'"
	                               " AND wait_event_type = 'Lock'", 30000),
	              "the TRUNCATE did not wait for the copy's locks");
	fpctl_release(&fd, "sync.after_table_locks");
	status = proc_wait(&p, SYNC_TIMEOUT_MS);
	itest_print_proc("pgstream sync", &p, status);
	ck_assert_int_eq(status, 0);
	proc_release(&p);
	fpctl_cleanup(&fd);
	/* the TRUNCATE went through once the copy was done */
	res = PQgetResult(conn);
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	PQfinish(conn);
	itest_assert_scalar(&source, db, "SELECT count(*) FROM small", "0");
	{
		char *ft_small = itest_table_fingerprint(&target, db, "public.small");
		char *ft_big = itest_table_fingerprint(&target, db, "public.big");

		ck_assert_str_eq(ft_small, fs_small);
		ck_assert_str_eq(ft_big, fs_big);
		free(ft_small);
		free(ft_big);
	}
	free(fs_small);
	free(fs_big);
}
END_TEST

/*
 * A TRUNCATE that queues up after the first copy session locked the tables
 * and before the second did: the second cannot get its lock, and waiting
 * for it would wait for ever (the TRUNCATE waits for the first).  The
 * sessions let go, the TRUNCATE commits, and they lock again before the
 * snapshot is taken: the target holds what the source holds.
 */
START_TEST(a_truncate_queued_while_the_copy_sessions_lock_starts_it_over)
{
	const char *db = "snap_queued";
	FailpointDir fd;
	Proc p;
	PGconn *conn;
	PGresult *res;
	char *err;
	int status;

	make_source(db);
	spawn_paused(&p, &fd, db, "snap_queued", "fullload.after_first_lock=pause@1",
	             "fullload.after_first_lock", "2");
	conn = cluster_connect(&source, db, NULL);
	ck_assert_ptr_nonnull(conn);
	ck_assert_int_eq(PQsendQuery(conn, "TRUNCATE ONLY small"), 1);
	ck_assert_msg(cluster_wait_for(&source, db,
	                               "SELECT count(*) = 1 FROM pg_stat_activity"
	                               " WHERE query = 'TRUNCATE ONLY small'"
	                               " AND wait_event_type = 'Lock'", 30000),
	              "the TRUNCATE did not wait for the first session's locks");
	fpctl_release(&fd, "fullload.after_first_lock");
	status = proc_wait(&p, SYNC_TIMEOUT_MS);
	err = proc_stderr(&p);
	itest_print_proc("pgstream sync", &p, status);
	ck_assert_int_eq(status, 0);
	proc_release(&p);
	fpctl_cleanup(&fd);
	res = PQgetResult(conn);
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	PQfinish(conn);
	itest_assert_scalar(&target, db, "SELECT count(*) FROM small", "0");
	assert_tables_equal(db);
	ck_assert_msg(strstr(err, "a TRUNCATE or ALTER TABLE on the source holds or waits for "
	                          "a table to copy: waiting for it before taking the snapshot")
	              != NULL, "%s", err);
	free(err);
	itest_assert_scalar(&source, "postgres",
	                    "SELECT count(*) FROM pg_replication_slots", "0");
}
END_TEST

/*
 * Every copy session locks every table, so a source whose shared lock table
 * is small for (tables x --jobs) fails there with "out of shared memory".
 * That must say what to change (max_locks_per_transaction, or fewer --jobs),
 * exit 1 and leave no slot behind.  The source runs with the smallest
 * max_locks_per_transaction (10, so 1000 lock slots at 100 connections):
 * about 2,800 locks fit; pg_dump's one session locks the 1,200 tables, four
 * copy sessions cannot.
 */
START_TEST(a_lock_table_too_small_for_the_copy_says_to_raise_max_locks)
{
	const char *db = "few_locks";
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *argv[16];
	char *out = NULL;
	char *err = NULL;
	int status;

	itest_make_db(&source, db, NULL);
	itest_make_db(&target, db, NULL);
	ck_assert(cluster_psql(&source, db,
	                       "DO $$BEGIN FOR i IN 1..1200 LOOP"
	                       " EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY)', i);"
	                       " END LOOP; END$$"));
	ck_assert(cluster_set(&source, "max_locks_per_transaction = 10"));
	ck_assert(cluster_restart(&source));
	sync_argv(argv, src, tgt, db, "few_locks", "4");
	status = proc_run(argv, NULL, SYNC_TIMEOUT_MS, &out, &err);
	/* the source goes back to the default before any assertion can fail */
	ck_assert(cluster_set(&source, "max_locks_per_transaction = 64"));
	ck_assert(cluster_restart(&source));
	if (status != 1 || strstr(err, "raise max_locks_per_transaction") == NULL)
		itest_print_output("pgstream sync", status, out, err);
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "raise max_locks_per_transaction there") != NULL &&
	                  strstr(err, "fewer --jobs") != NULL,
	              "sync did not say to raise max_locks_per_transaction");
	itest_assert_scalar(&source, "postgres",
	                    "SELECT count(*) FROM pg_replication_slots", "0");
	free(out);
	free(err);
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
	tcase_add_test(tc, a_writer_waiting_on_the_copy_locks_does_not_hold_up_the_slot);
	tcase_add_test(tc, a_truncate_during_the_copy_waits_until_the_copy_is_done);
	tcase_add_test(tc, a_truncate_queued_while_the_copy_sessions_lock_starts_it_over);
	tcase_add_test(tc, a_lock_table_too_small_for_the_copy_says_to_raise_max_locks);
	suite_add_tcase(s, tc);
	return s;
}
