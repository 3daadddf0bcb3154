/*
 * tests/integration/test_oldsource.c -- a live migration from a source
 * older than PostgreSQL 14 ends with `pgstream cutover`.
 *
 * pgoutput before protocol 2 carries no logical decoding messages, so on
 * sources 11-13 the cutover barrier is a WAL position (engine/cutover.c,
 * engine/stream/stream.c; docs/architecture.md "Cutover barrier").  One source
 * cluster of an old major (CLUSTER_LOGICAL, from the majors cache: `make
 * deps`) and the default (Debian 15) target.
 *
 *   live_sync_from_13_cuts_over_with_a_position_barrier
 *       sync streams; inserts, updates and deletes (one with a TOASTed value
 *       of 320 kB, one in a partitioned table: on 11/12 published through its
 *       leaves) are applied live; `cutover --freeze` exits 0 within seconds
 *       (not at its --timeout); sync exits 0; every table has the same
 *       fingerprint on both sides; before the state is dropped the barrier
 *       recorded by sync is the token and the position cutover armed.
 *   live_sync_from_13_with_spool_cuts_over_with_a_position_barrier
 *   live_sync_from_11_cuts_over_with_a_position_barrier
 *       the same, from 13 with sync --spool (which must remove its spool),
 *       and from 11.
 *   a_write_after_the_barrier_position_fails_the_cutover
 *       sync stopped at the position barrier of a paused cutover; an UPDATE
 *       committed then by a session that overrides the freeze makes cutover
 *       exit 1 naming one change after the barrier (row counts would miss
 *       it); the source is writable again; sync run again carries it, and a
 *       second cutover completes with identical tables.
 *   a_position_barrier_whose_cutover_died_does_not_stop_sync
 *       cutover killed right after arming its position (sync stopped
 *       meanwhile); a second cutover holds the lock but has not armed yet:
 *       the resumed sync does not honour the dead barrier (it was armed by
 *       another session), streams on and applies a later UPDATE; the second
 *       cutover then completes.
 */
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

#define TEST_TIMEOUT_S 240
#define CUTOVER_TIMEOUT "60"
#define WAIT_MS 60000

static Cluster source;
static Cluster target;

/* spool: run sync with --spool (every message through the disk spool) */
static void
run_migration(int major, bool spool)
{
	char name[32];
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	FailpointDir fd;
	char fpenv[PATH_MAX + 64];
	char spooldir[PATH_MAX + 16];
	char *out;
	Proc sync;
	Proc cut;
	int st;
	long long started;
	double seconds;
	static const char *const tables[] = {"public.t", "public.big", "public.m",
	                                     "public.m_1", "public.m_2"};

	snprintf(name, sizeof(name), "old%d-source", major);
	ck_assert(cluster_init_major(&source, name, CLUSTER_LOGICAL, major));
	ck_assert(cluster_init(&target, "old-target", 0));
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
	ck_assert(cluster_psql(&target, "postgres", "CREATE ROLE migrator LOGIN"));
	/* a fresh cluster: no DROP DATABASE ... WITH (FORCE), which 11 lacks */
	ck_assert(cluster_psql(&source, "postgres", "CREATE DATABASE app"));
	itest_make_db(&target, "app", "migrator");
	ck_assert(cluster_psql(&source, "app",
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t SELECT i, 'v' || i"
	                       " FROM generate_series(1, 200) i;"
	                       "CREATE TABLE big (id int PRIMARY KEY, doc text);"
	                       "ALTER TABLE big ALTER doc SET STORAGE EXTERNAL;"
	                       "INSERT INTO big VALUES (1, 'small');"
	                       "CREATE TABLE m (id int NOT NULL, k int NOT NULL,"
	                       " v text, PRIMARY KEY (id, k))"
	                       " PARTITION BY RANGE (k);"
	                       "CREATE TABLE m_1 PARTITION OF m"
	                       " FOR VALUES FROM (0) TO (100);"
	                       "CREATE TABLE m_2 PARTITION OF m"
	                       " FOR VALUES FROM (100) TO (200);"
	                       "INSERT INTO m SELECT i, i % 200, 'm' || i"
	                       " FROM generate_series(1, 100) i"));
	itest_conninfo(src, &source, "app");
	itest_migrator_conninfo(tgt, &target, "app");

	ck_assert(fpctl_init(&fd));
	fpctl_env(&fd, fpenv, sizeof(fpenv));
	{
		const char *argv[] = {itest_pgstream_bin(), "sync", "--source", src,
		                      "--target", tgt, "--slot", "old_slot",
		                      "--quiet", spool ? "--spool" : NULL, spooldir,
		                      NULL};

		snprintf(spooldir, sizeof(spooldir), "%s/spool", fd.path);

		ck_assert(proc_spawn(&sync, argv, NULL));
	}
	if (!cluster_wait_for(&target, "app",
	                      "SELECT to_regclass('pgstream.migration')"
	                      " IS NOT NULL AND (SELECT phase = 'streaming'"
	                      " FROM pgstream.migration)",
	                      WAIT_MS))
	{
		itest_print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
		ck_abort_msg("sync from PostgreSQL %d did not reach phase streaming",
		             major);
	}

	/* live changes, each kind, while sync streams */
	ck_assert(cluster_psql(&source, "app",
	                       "INSERT INTO t SELECT i, 'new' || i"
	                       " FROM generate_series(201, 300) i;"
	                       "UPDATE t SET v = v || '-u' WHERE id % 7 = 0;"
	                       "DELETE FROM t WHERE id % 11 = 0;"
	                       "INSERT INTO big SELECT 2, string_agg(md5(i::text), '')"
	                       " FROM generate_series(1, 10000) i;"
	                       "UPDATE big SET doc = doc || 'x' WHERE id = 2;"
	                       "UPDATE big SET doc = 'small2' WHERE id = 1;"
	                       "INSERT INTO m SELECT i, i % 200, 'm' || i"
	                       " FROM generate_series(101, 300) i;"
	                       "UPDATE m SET v = v || '-u' WHERE id % 5 = 0;"
	                       "DELETE FROM m WHERE id % 13 = 0"));
	ck_assert_msg(cluster_wait_for(&target, "app",
	                               "SELECT (SELECT count(*) FROM t) = 273"
	                               " AND (SELECT count(*) FROM m) = 277"
	                               " AND (SELECT length(doc) FROM big"
	                               " WHERE id = 2) = 320001",
	                               WAIT_MS),
	              "live changes from PostgreSQL %d were not applied", major);

	/*
	 * cutover pauses after sync applied the barrier, so the state (dropped
	 * at the end) can be read.
	 */
	{
		char fpspec[] = "PGSTREAM_FAILPOINTS=cutover.after_barrier_applied=pause";
		const char *cenv[] = {fpspec, fpenv, NULL};
		const char *argv[] = {itest_pgstream_bin(), "cutover", "--source",
		                      src, "--target", tgt, "--freeze", "--timeout",
		                      CUTOVER_TIMEOUT, NULL};

		started = proc_now_ms();
		ck_assert(proc_spawn(&cut, argv, cenv));
		if (!fpctl_wait(&fd, "cutover.after_barrier_applied", WAIT_MS))
		{
			st = proc_wait(&cut, 0);
			itest_print_proc("pgstream cutover", &cut, st);
			itest_print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
			ck_abort_msg("cutover from PostgreSQL %d never saw its barrier "
			             "applied", major);
		}
	}
	/* sync stopped at the barrier, and recorded the armed token and position */
	st = proc_wait(&sync, WAIT_MS);
	if (st != 0)
		itest_print_proc("pgstream sync", &sync, st);
	ck_assert_int_eq(st, 0);
	itest_assert_scalar(&target, "app",
	                    "SELECT barrier_token = cutover_token"
	                    " AND barrier_lsn = cutover_lsn AND phase = 'cutover'"
	                    " FROM pgstream.migration",
	                    "t");
	fpctl_release(&fd, "cutover.after_barrier_applied");
	st = proc_wait(&cut, WAIT_MS);
	seconds = (double) (proc_now_ms() - started) / 1000.0;
	if (st != 0)
		itest_print_proc("pgstream cutover", &cut, st);
	ck_assert_int_eq(st, 0);
	out = proc_stdout(&cut);
	ck_assert_msg(out != NULL && strstr(out, "row counts: equal") != NULL,
	              "cutover report: %s", out ? out : "(none)");
	free(out);
	ck_assert_msg(seconds < 30, "cutover took %.1f s", seconds);

	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
	{
		char *a = itest_table_fingerprint(&source, "app", tables[i]);
		char *b = itest_table_fingerprint(&target, "app", tables[i]);

		ck_assert_msg(strcmp(a, b) == 0, "%s differs: source %s, target %s",
		              tables[i], a, b);
		free(a);
		free(b);
	}
	itest_assert_scalar(&source, "postgres",
	                    "SELECT count(*) FROM pg_replication_slots", "0");
	/* with --spool, sync removed its spool after the barrier */
	ck_assert_int_eq(access(spooldir, F_OK), -1);
	itest_assert_scalar(&target, "app",
	                    "SELECT count(*) FROM pg_namespace"
	                    " WHERE nspname = 'pgstream'",
	                    "0");
	proc_release(&cut);
	proc_release(&sync);
	fpctl_cleanup(&fd);
}

/* Start sync from src to tgt and wait until it streams. */
static void
start_sync(Proc *sync, const char *src, const char *tgt)
{
	const char *argv[] = {itest_pgstream_bin(), "sync", "--source", src,
	                      "--target", tgt, "--slot", "old_slot", "--quiet",
	                      NULL};

	ck_assert(proc_spawn(sync, argv, NULL));
	if (!cluster_wait_for(&target, "app",
	                      "SELECT to_regclass('pgstream.migration') IS NOT NULL"
	                      " AND (SELECT phase = 'streaming'"
	                      " FROM pgstream.migration)",
	                      WAIT_MS))
	{
		itest_print_proc("pgstream sync", sync, proc_wait(sync, 0));
		ck_abort_msg("sync did not reach phase streaming");
	}
}

/*
 * A 13 source with table t (100 rows) in database app, the target with
 * database app owned by migrator; src and tgt (ITEST_CONNINFO_MAX) filled.
 */
static void
small_setup(char *src, char *tgt)
{
	ck_assert(cluster_init_major(&source, "old13-source", CLUSTER_LOGICAL, 13));
	ck_assert(cluster_init(&target, "old-target", 0));
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
	ck_assert(cluster_psql(&target, "postgres", "CREATE ROLE migrator LOGIN"));
	ck_assert(cluster_psql(&source, "postgres", "CREATE DATABASE app"));
	itest_make_db(&target, "app", "migrator");
	ck_assert(cluster_psql(&source, "app",
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t SELECT i, 'v' || i"
	                       " FROM generate_series(1, 100) i"));
	itest_conninfo(src, &source, "app");
	itest_migrator_conninfo(tgt, &target, "app");
}

/*
 * sync has stopped at the position barrier of a paused cutover; then a
 * session that turns default_transaction_read_only off commits an UPDATE
 * (no row count changes).  cutover's look at the slot must find it after
 * the position: exit 1 naming it, the source writable again; sync run
 * again carries the UPDATE, and a second cutover completes.
 */
START_TEST(a_write_after_the_barrier_position_fails_the_cutover)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	FailpointDir fd;
	char fpenv[PATH_MAX + 64];
	char fpspec[] = "PGSTREAM_FAILPOINTS=cutover.after_barrier_applied=pause";
	const char *cenv[] = {fpspec, fpenv, NULL};
	const char *argv[] = {itest_pgstream_bin(), "cutover", "--source", src,
	                      "--target", tgt, "--freeze", "--timeout",
	                      CUTOVER_TIMEOUT, NULL};
	Proc sync;
	Proc cut;
	char *err;
	char *out = NULL;
	int st;

	small_setup(src, tgt);
	ck_assert(fpctl_init(&fd));
	fpctl_env(&fd, fpenv, sizeof(fpenv));
	start_sync(&sync, src, tgt);

	ck_assert(proc_spawn(&cut, argv, cenv));
	ck_assert_msg(fpctl_wait(&fd, "cutover.after_barrier_applied", WAIT_MS),
	              "cutover never saw its barrier applied");
	ck_assert_int_eq(proc_wait(&sync, WAIT_MS), 0);
	proc_release(&sync);
	ck_assert(cluster_psql(&source, "app",
	                       "BEGIN READ WRITE;"
	                       "UPDATE t SET v = 'late' WHERE id = 1; COMMIT"));
	fpctl_release(&fd, "cutover.after_barrier_applied");
	st = proc_wait(&cut, WAIT_MS);
	err = proc_stderr(&cut);
	if (st != 1)
		itest_print_proc("pgstream cutover", &cut, st);
	ck_assert_int_eq(st, 1);
	ck_assert_msg(err != NULL &&
	                  strstr(err, "the source was written after the barrier (1 "
	                              "change(s) committed after it") != NULL,
	              "cutover stderr: %s", err ? err : "(none)");
	free(err);
	proc_release(&cut);
	/* this run's freeze was undone */
	itest_assert_scalar(&source, "app", "SHOW default_transaction_read_only",
	                    "off");

	/* sync streams again and carries the UPDATE; cutover completes */
	start_sync(&sync, src, tgt);
	ck_assert(cluster_wait_for(&target, "app",
	                           "SELECT v = 'late' FROM t WHERE id = 1",
	                           WAIT_MS));
	{
		const char *plain[] = {itest_pgstream_bin(), "cutover", "--source",
		                       src, "--target", tgt, "--freeze", "--timeout",
		                       CUTOVER_TIMEOUT, NULL};

		st = proc_run(plain, NULL, WAIT_MS * 2, &out, &err);
		if (st != 0)
		{
			itest_print_output("pgstream cutover", st, out, err);
			itest_print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
		}
		ck_assert_int_eq(st, 0);
		free(out);
		free(err);
	}
	ck_assert_int_eq(proc_wait(&sync, WAIT_MS), 0);
	proc_release(&sync);
	{
		char *a = itest_table_fingerprint(&source, "app", "public.t");
		char *b = itest_table_fingerprint(&target, "app", "public.t");

		ck_assert_msg(strcmp(a, b) == 0, "t differs: source %s, target %s",
		              a, b);
		free(a);
		free(b);
	}
	fpctl_cleanup(&fd);
}
END_TEST

/*
 * cutover killed (kill -9) right after it armed its position barrier and
 * wrote its message, sync stopped meanwhile (SIGSTOP); the application
 * writes.  A second cutover takes the lock and pauses before it arms its
 * own barrier: the dead one's token and position are still armed, and a
 * commit past that position is in the stream, but its cutover is gone, so
 * the resumed sync must stream on (apply the UPDATE, keep running for at
 * least two of its one-second stats writes).  Released, the second cutover
 * completes with identical tables.
 */
START_TEST(a_position_barrier_whose_cutover_died_does_not_stop_sync)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	FailpointDir fd;
	char fpenv[PATH_MAX + 64];
	char fpspec[] = "PGSTREAM_FAILPOINTS=cutover.before_barrier=pause";
	const char *crash[] = {"PGSTREAM_FAILPOINTS=cutover.after_barrier=crash", NULL};
	const char *pause[] = {fpspec, fpenv, NULL};
	const char *argv[] = {itest_pgstream_bin(), "cutover", "--source", src,
	                      "--target", tgt, "--freeze", "--timeout",
	                      CUTOVER_TIMEOUT, NULL};
	Proc sync;
	Proc cut;
	char *out = NULL;
	char *err = NULL;
	char *t0;
	char sql[256];
	int st;

	small_setup(src, tgt);
	ck_assert(fpctl_init(&fd));
	fpctl_env(&fd, fpenv, sizeof(fpenv));
	start_sync(&sync, src, tgt);
	ck_assert(proc_kill(&sync, SIGSTOP));
	st = proc_run(argv, crash, WAIT_MS, &out, &err);
	if (st != 128 + SIGKILL)
		itest_print_output("pgstream cutover", st, out, err);
	ck_assert_int_eq(st, 128 + SIGKILL);
	free(out);
	free(err);
	/* the position was armed: this is the case under test */
	itest_assert_scalar(&target, "app",
	                    "SELECT cutover_lsn IS NOT NULL FROM pgstream.migration",
	                    "t");
	/* kill -9 cannot be undone: the operator unfreezes, the application writes */
	ck_assert(cluster_psql(&source, "postgres",
	                       "ALTER DATABASE app RESET default_transaction_read_only"));
	ck_assert(cluster_psql(&source, "app",
	                       "UPDATE t SET v = 'after the dead cutover' WHERE id = 8"));

	/* a second cutover holds the lock, the dead barrier is still armed */
	ck_assert(proc_spawn(&cut, argv, pause));
	ck_assert_msg(fpctl_wait(&fd, "cutover.before_barrier", WAIT_MS),
	              "the second cutover did not reach its barrier");
	ck_assert(proc_kill(&sync, SIGCONT));
	if (!cluster_wait_for(&target, "app",
	                      "SELECT v = 'after the dead cutover' FROM t WHERE id = 8",
	                      WAIT_MS))
	{
		itest_print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
		ck_abort_msg("the UPDATE after the dead cutover's barrier was not applied");
	}
	t0 = cluster_query_scalar(&target, "app", "SELECT now()");
	ck_assert_ptr_nonnull(t0);
	snprintf(sql, sizeof(sql),
	         "SELECT updated_at > '%s'::timestamptz + interval '1 s'"
	         " FROM pgstream.migration", t0);
	free(t0);
	ck_assert_msg(cluster_wait_for(&target, "app", sql, WAIT_MS),
	              "sync wrote no stats for a second");
	st = proc_wait(&sync, 0);
	if (st != PROC_TIMEOUT)
		itest_print_proc("pgstream sync", &sync, st);
	ck_assert_msg(st == PROC_TIMEOUT, "sync stopped at the dead cutover's barrier");
	itest_assert_scalar(&target, "app",
	                    "SELECT barrier_token IS NULL FROM pgstream.migration", "t");

	fpctl_release(&fd, "cutover.before_barrier");
	st = proc_wait(&cut, WAIT_MS);
	if (st != 0)
	{
		itest_print_proc("pgstream cutover", &cut, st);
		itest_print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
	}
	ck_assert_int_eq(st, 0);
	proc_release(&cut);
	ck_assert_int_eq(proc_wait(&sync, WAIT_MS), 0);
	proc_release(&sync);
	{
		char *a = itest_table_fingerprint(&source, "app", "public.t");
		char *b = itest_table_fingerprint(&target, "app", "public.t");

		ck_assert_msg(strcmp(a, b) == 0, "t differs: source %s, target %s",
		              a, b);
		free(a);
		free(b);
	}
	fpctl_cleanup(&fd);
}
END_TEST

/* also after a failed assertion, which ends the test early */
static void
clusters_teardown(void)
{
	cluster_destroy(&source);
	cluster_destroy(&target);
}

START_TEST(live_sync_from_13_cuts_over_with_a_position_barrier)
{
	run_migration(13, false);
}
END_TEST

START_TEST(live_sync_from_13_with_spool_cuts_over_with_a_position_barrier)
{
	run_migration(13, true);
}
END_TEST

START_TEST(live_sync_from_11_cuts_over_with_a_position_barrier)
{
	run_migration(11, false);
}
END_TEST

Suite *
oldsource_suite(void)
{
	Suite *s = suite_create("oldsource");
	TCase *from13 = tcase_create("from13");
	TCase *from11 = tcase_create("from11");

	tcase_set_timeout(from13, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(from13, NULL, clusters_teardown);
	tcase_add_test(from13, live_sync_from_13_cuts_over_with_a_position_barrier);
	tcase_add_test(from13, live_sync_from_13_with_spool_cuts_over_with_a_position_barrier);
	tcase_add_test(from13, a_write_after_the_barrier_position_fails_the_cutover);
	tcase_add_test(from13, a_position_barrier_whose_cutover_died_does_not_stop_sync);
	suite_add_tcase(s, from13);
	tcase_set_timeout(from11, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(from11, NULL, clusters_teardown);
	tcase_add_test(from11, live_sync_from_11_cuts_over_with_a_position_barrier);
	suite_add_tcase(s, from11);
	return s;
}
