/*
 * tests/integration/test_spool_mode.c -- acceptance tests for
 * `pgstream sync --spool DIR`: the change stream goes to durable LZ4 segment
 * files (DIR/<16 hex digits>.seg, fsync'd before the position is confirmed
 * to the source), and an applier reads them back.
 *
 * One source cluster (wal_level=logical) and one target cluster with a
 * non-superuser login "migrator" that owns every target database, made once
 * in an unchecked fixture (the same setup as test_stream.c).  Each test
 * makes its own databases and spool directory and names its slot
 * "pgstream" (--slot).
 *
 *   spool_keeps_receiving_while_the_target_is_down
 *       with the target cluster stopped, pgbench runs on the source; the
 *       slot's confirmed_flush_lsn still passes the source's WAL position
 *       taken after pgbench (the source may recycle WAL) and the spool holds
 *       segment files; the target is started again, cutover succeeds, sync
 *       exits 0, every pgbench table is identical and the spool directory
 *       is gone.
 *   spool_survives_kill_9
 *       sync --spool is killed -9 under pgbench and restarted with the same
 *       command: nothing is lost and nothing is applied twice
 *       (pgbench_history has no key and is published insert-only).
 *   spool_writes_after_the_barrier_fail_the_cutover_and_are_kept
 *       cutover without --freeze; sync pauses when it sees the barrier
 *       (failpoint stream.barrier_seen) while its receiver spools, and
 *       confirms to the source, an UPDATE committed after the barrier (row
 *       counts cannot see it): the slot no longer holds it, only the spool.  Cutover must fail
 *       naming the writes, sync must exit 1 keeping the spool, and a second
 *       sync with the same --spool plus a cutover bring the change over.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/failpoint_ctl.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define TEST_TIMEOUT_S 240
#define CMD_TIMEOUT_MS 120000
#define STATUS_TIMEOUT_MS 30000
#define PHASE_TIMEOUT_MS 120000
#define SLOT_ADVANCE_TIMEOUT_MS 20000
#define MAX_ARGS 32

static Cluster source;
static Cluster target;

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "spool-source", CLUSTER_LOGICAL));
	ck_assert(cluster_set(&source, "logical_decoding_work_mem = 64kB"));
	ck_assert(cluster_init(&target, "spool-target", 0));
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

static long long test_started_ms;

/*
 * Checked fixture (runs in each test's fork).  A failed test may leave its
 * slot behind, or the target stopped: drop unused slots, start the target
 * if it does not answer.
 */
static void
test_setup(void)
{
	char *v;

	test_started_ms = proc_now_ms();
	v = cluster_query_scalar(&target, "postgres", "SELECT 1");
	if (v == NULL)
	{
		target.running = false;
		ck_assert(cluster_start(&target));
	}
	free(v);
	ck_assert(cluster_wait_for(&source, "postgres",
	                           "SELECT count(*) = 0 FROM pg_replication_slots"
	                           " WHERE active",
	                           10000));
	ck_assert(cluster_psql(&source, "postgres",
	                       "SELECT pg_drop_replication_slot(slot_name)"
	                       " FROM pg_replication_slots"));
}

static void
test_teardown(void)
{
	fprintf(stderr, "test took %.1f s\n",
	        (double) (proc_now_ms() - test_started_ms) / 1000.0);
}

/* ---- the spool directory ---- */

/* A fresh temporary directory; the spool goes to <base>/spool. */
static void
make_spool_base(char *base, size_t size, char *spool, size_t spool_size)
{
	const char *tmpdir = getenv("TMPDIR");

	snprintf(base, size, "%s/pgstream-spooltest-XXXXXX",
	         tmpdir && *tmpdir ? tmpdir : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(base));
	snprintf(spool, spool_size, "%s/spool", base);
}

/* Number of *.seg files in dir; -1 if dir does not exist. */
static int
count_segments(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
	{
		size_t len = strlen(de->d_name);

		if (len > 4 && strcmp(de->d_name + len - 4, ".seg") == 0)
			n++;
	}
	closedir(d);
	return n;
}

static bool
path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Remove what is left of the spool (a failed test) and the base dir. */
static void
remove_spool_base(const char *base, const char *spool)
{
	DIR *d = opendir(spool);

	if (d != NULL)
	{
		struct dirent *de;

		while ((de = readdir(d)) != NULL)
		{
			char p[PATH_MAX + 300];

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", spool, de->d_name);
			unlink(p);
		}
		closedir(d);
		rmdir(spool);
	}
	rmdir(base);
}

/* ---- running pgstream ---- */

/* pgstream sync --source S --target T --slot pgstream --quiet
 * --no-key-tables=insert-only --spool DIR */
static void
spawn_sync_env(Proc *p, const char *src, const char *tgt, const char *spool,
               const char *const env[])
{
	const char *const argv[] = {itest_pgstream_bin(),
	                            "sync",
	                            "--source",
	                            src,
	                            "--target",
	                            tgt,
	                            "--slot",
	                            "pgstream",
	                            "--quiet",
	                            "--no-key-tables=insert-only",
	                            "--spool",
	                            spool,
	                            NULL};

	ck_assert(proc_spawn(p, argv, env));
}

static void
spawn_sync(Proc *p, const char *src, const char *tgt, const char *spool)
{
	spawn_sync_env(p, src, tgt, spool, NULL);
}

/* pgstream status --target T --json: the phase, or "" if status failed. */
static void
status_phase(const char *tgt, char *phase, size_t size)
{
	const char *const argv[] = {
	    itest_pgstream_bin(), "status", "--target", tgt, "--json", NULL};
	char *out = NULL;
	char *err = NULL;
	int status = proc_run(argv, NULL, STATUS_TIMEOUT_MS, &out, &err);

	phase[0] = '\0';
	if (status == 0 && out != NULL)
	{
		itest_strip_space(out);
		if (!itest_json_field(out, "phase", phase, size))
			phase[0] = '\0';
	}
	else
		itest_print_output("pgstream status", status, out, err);
	free(out);
	free(err);
}

/*
 * Poll status until the phase is "streaming" and, if other is not NULL,
 * that process has exited (its status in *other_status).  Sync must keep
 * running meanwhile.
 */
static void
wait_for_streaming(const char *tgt, Proc *sync, Proc *other, int *other_status)
{
	long long deadline = proc_now_ms() + PHASE_TIMEOUT_MS;
	char now[32] = "";

	for (;;)
	{
		int st = proc_wait(sync, 0);
		bool other_done = other == NULL;

		if (st != PROC_TIMEOUT)
		{
			itest_print_proc("pgstream sync", sync, st);
			ck_abort_msg("sync exited with %d while waiting for streaming "
			             "(last phase %s)",
			             st, now);
		}
		if (other != NULL)
		{
			int ost = proc_wait(other, 0);

			if (ost != PROC_TIMEOUT)
			{
				other_done = true;
				*other_status = ost;
			}
		}
		status_phase(tgt, now, sizeof(now));
		if (other_done && strcmp(now, "streaming") == 0)
			break;
		ck_assert_msg(proc_now_ms() < deadline,
		              "phase streaming not reached in %d s (last %s)",
		              PHASE_TIMEOUT_MS / 1000, now);
		itest_sleep_ms(200);
	}
}

/* pgbench -i -s scale on the source database. */
static void
pgbench_init(const char *dbname, const char *scale)
{
	char port[16];
	const char *pgbench = itest_pgbench_path();
	const char *argv[] = {pgbench,    "-i",           "-q", "-s", scale,
	                      "-h",       source.basedir, "-p", port, "-U",
	                      "postgres", dbname,         NULL};
	char *out = NULL;
	char *err = NULL;
	int status;

	snprintf(port, sizeof(port), "%d", source.port);
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
	if (status != 0)
		itest_print_output("pgbench -i", status, out, err);
	ck_assert_int_eq(status, 0);
	free(out);
	free(err);
}

/* pgbench -n -c clients -j 2 -T seconds in the background. */
static void
spawn_pgbench(Proc *p, const char *dbname, const char *clients,
              const char *seconds)
{
	char port[16];
	const char *pgbench = itest_pgbench_path();
	const char *argv[] = {pgbench, "-n",    "-h",   source.basedir,
	                      "-p",    port,    "-U",   "postgres",
	                      "-c",    clients, "-j",   "2",
	                      "-T",    seconds, dbname, NULL};

	snprintf(port, sizeof(port), "%d", source.port);
	ck_assert(proc_spawn(p, argv, NULL));
}

/* pgstream cutover --source S --target T --timeout 120: must exit 0. */
static void
cutover_ok(const char *src, const char *tgt)
{
	const char *const argv[] = {
	    itest_pgstream_bin(), "cutover", "--source", src, "--target", tgt,
	    "--timeout",          "120",     NULL};
	char *out = NULL;
	char *err = NULL;
	long long start = proc_now_ms();
	int status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);

	fprintf(stderr, "pgstream cutover: status %d in %.1f s\n", status,
	        (double) (proc_now_ms() - start) / 1000.0);
	if (status != 0)
		itest_print_output("pgstream cutover", status, out, err);
	ck_assert_int_eq(status, 0);
	free(out);
	free(err);
}

/* ---- comparing source and target ---- */

/* Every pgbench table has the same count and ordered digest on both sides. */
static void
assert_pgbench_identical(const char *srcdb, const char *tgtdb)
{
	static const char *const tables[] = {
	    "public.pgbench_accounts", "public.pgbench_branches",
	    "public.pgbench_tellers", "public.pgbench_history"};
	int diffs = 0;

	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
	{
		char *a = itest_table_fingerprint(&source, srcdb, tables[i]);
		char *b = itest_table_fingerprint(&target, tgtdb, tables[i]);

		if (strcmp(a, b) != 0 || strstr(a, "?") != NULL)
		{
			fprintf(stderr, "table %s differs: source %s, target %s\n",
			        tables[i], a, b);
			diffs++;
		}
		free(a);
		free(b);
	}
	ck_assert_msg(diffs == 0, "%d pgbench table(s) differ (listed above)",
	              diffs);
}

/* ---- tests ---- */

START_TEST(spool_keeps_receiving_while_the_target_is_down)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char base[PATH_MAX];
	char spool[PATH_MAX];
	char sql[256];
	char *wal_after;
	Proc sync;
	Proc bench;
	int bench_status;
	int segments;
	int target_port;
	long long t0;
	bool advanced;

	itest_make_db(&source, "spd_src", NULL);
	itest_make_db(&target, "spd_tgt", "migrator");
	pgbench_init("spd_src", "2");
	itest_conninfo(src, &source, "spd_src");
	itest_migrator_conninfo(tgt, &target, "spd_tgt");
	make_spool_base(base, sizeof(base), spool, sizeof(spool));

	spawn_sync(&sync, src, tgt, spool);
	wait_for_streaming(tgt, &sync, NULL, NULL);
	ck_assert_msg(count_segments(spool) >= 0,
	              "the spool directory %s was not created", spool);

	/* The target goes away; the source keeps writing. */
	target_port = target.port;
	ck_assert(cluster_stop(&target, "immediate"));
	t0 = proc_now_ms();
	spawn_pgbench(&bench, "spd_src", "2", "6");
	bench_status = proc_wait(&bench, 60000);
	itest_assert_pgbench_ok(&bench, bench_status);
	proc_release(&bench);
	itest_assert_scalar(&source, "spd_src",
	                    "SELECT count(*) > 0 FROM pgbench_history", "t");

	/* The slot passes the source's position while the target is down. */
	wal_after = cluster_query_scalar(&source, "spd_src",
	                                 "SELECT pg_current_wal_lsn()");
	ck_assert_ptr_nonnull(wal_after);
	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(confirmed_flush_lsn >= '%s', false)"
	         " FROM pg_replication_slots WHERE slot_name = 'pgstream'",
	         wal_after);
	advanced = cluster_wait_for(&source, "postgres", sql,
	                            SLOT_ADVANCE_TIMEOUT_MS);
	if (!advanced)
	{
		char *confirmed = cluster_query_scalar(
		    &source, "postgres",
		    "SELECT confirmed_flush_lsn::text || ' active=' || active::text"
		    " FROM pg_replication_slots WHERE slot_name = 'pgstream'");

		itest_print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
		ck_abort_msg("with the target down, the slot's confirmed_flush_lsn "
		             "(%s) did not reach %s in %d s",
		             confirmed ? confirmed : "NULL", wal_after,
		             SLOT_ADVANCE_TIMEOUT_MS / 1000);
	}
	fprintf(stderr,
	        "target down: slot confirmed past %s %.1f s after the target "
	        "stopped\n",
	        wal_after, (double) (proc_now_ms() - t0) / 1000.0);
	free(wal_after);
	segments = count_segments(spool);
	ck_assert_msg(segments >= 1,
	              "with the target down the spool %s holds %d .seg files",
	              spool, segments);
	{
		int st = proc_wait(&sync, 0);

		if (st != PROC_TIMEOUT)
			itest_print_proc("pgstream sync", &sync, st);
		ck_assert_msg(st == PROC_TIMEOUT,
		              "sync exited with %d while the target was down", st);
	}

	/* The target comes back: sync re-applies from the spool. */
	ck_assert(cluster_start(&target));
	ck_assert_msg(target.port == target_port,
	              "the target came back on another port (%d, was %d)",
	              target.port, target_port);
	t0 = proc_now_ms();
	cutover_ok(src, tgt);
	fprintf(stderr, "cutover done %.1f s after the target was started\n",
	        (double) (proc_now_ms() - t0) / 1000.0);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);

	assert_pgbench_identical("spd_src", "spd_tgt");
	ck_assert_msg(!path_exists(spool),
	              "the spool directory %s still exists after the cutover "
	              "(%d .seg files)",
	              spool, count_segments(spool));
	remove_spool_base(base, spool);
}
END_TEST

START_TEST(spool_survives_kill_9)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char base[PATH_MAX];
	char spool[PATH_MAX];
	Proc sync;
	Proc bench;
	int bench_status = PROC_TIMEOUT;
	int status;
	long long bench_start;

	itest_make_db(&source, "spk_src", NULL);
	itest_make_db(&target, "spk_tgt", "migrator");
	pgbench_init("spk_src", "2");
	itest_conninfo(src, &source, "spk_src");
	itest_migrator_conninfo(tgt, &target, "spk_tgt");
	make_spool_base(base, sizeof(base), spool, sizeof(spool));

	spawn_sync(&sync, src, tgt, spool);
	wait_for_streaming(tgt, &sync, NULL, NULL);
	spawn_pgbench(&bench, "spk_src", "2", "6");
	bench_start = proc_now_ms();
	while (proc_now_ms() - bench_start < 2000)
	{
		status = proc_wait(&sync, 100);
		if (status != PROC_TIMEOUT)
		{
			itest_print_proc("pgstream sync", &sync, status);
			ck_abort_msg("sync exited with %d under pgbench", status);
		}
	}
	ck_assert(proc_kill(&sync, SIGKILL));
	status = proc_wait(&sync, 30000);
	ck_assert_int_eq(status, 128 + SIGKILL);
	proc_release(&sync);
	fprintf(stderr, "sync killed at %.1f s into pgbench (spool: %d .seg); "
	                "restarting\n",
	        (double) (proc_now_ms() - bench_start) / 1000.0,
	        count_segments(spool));
	spawn_sync(&sync, src, tgt, spool);

	wait_for_streaming(tgt, &sync, &bench, &bench_status);
	itest_assert_pgbench_ok(&bench, bench_status);
	proc_release(&bench);

	cutover_ok(src, tgt);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);

	itest_assert_scalar(&source, "spk_src",
	                    "SELECT count(*) > 0 FROM pgbench_history", "t");
	assert_pgbench_identical("spk_src", "spk_tgt");
	ck_assert_msg(!path_exists(spool),
	              "the spool directory %s still exists after the cutover",
	              spool);
	remove_spool_base(base, spool);
}
END_TEST

/* pgstream cutover --source S --target T --timeout 120 in the background. */
static void
spawn_cutover(Proc *p, const char *src, const char *tgt)
{
	const char *const argv[] = {
	    itest_pgstream_bin(), "cutover", "--source", src, "--target", tgt,
	    "--timeout",          "120",     NULL};

	ck_assert(proc_spawn(p, argv, NULL));
}

START_TEST(spool_writes_after_the_barrier_fail_the_cutover_and_are_kept)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char base[PATH_MAX];
	char spool[PATH_MAX];
	char env_dir[PATH_MAX + 32];
	char sql[256];
	char *lsn;
	char *err;
	FailpointDir fd;
	Proc sync;
	Proc cut;
	int status;
	const char *const env[] = {"PGSTREAM_FAILPOINTS=stream.barrier_seen=pause",
	                           env_dir, NULL};

	itest_make_db(&source, "spb_src", NULL);
	itest_make_db(&target, "spb_tgt", "migrator");
	ck_assert(cluster_psql(&source, "spb_src",
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t VALUES (1, 'before')"));
	itest_conninfo(src, &source, "spb_src");
	itest_migrator_conninfo(tgt, &target, "spb_tgt");
	make_spool_base(base, sizeof(base), spool, sizeof(spool));
	ck_assert(fpctl_init(&fd));
	fpctl_env(&fd, env_dir, sizeof(env_dir));

	spawn_sync_env(&sync, src, tgt, spool, env);
	wait_for_streaming(tgt, &sync, NULL, NULL);
	spawn_cutover(&cut, src, tgt);
	ck_assert_msg(fpctl_wait(&fd, "stream.barrier_seen", 60000),
	              "sync did not reach the cutover barrier");

	/* The application was not stopped: a write after the barrier. */
	ck_assert(cluster_psql(&source, "spb_src",
	                       "UPDATE t SET v = 'after the barrier' WHERE id = 1"));
	lsn = cluster_query_scalar(&source, "spb_src",
	                           "SELECT pg_current_wal_lsn()");
	ck_assert_ptr_nonnull(lsn);
	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(confirmed_flush_lsn >= '%s', false)"
	         " FROM pg_replication_slots WHERE slot_name = 'pgstream'",
	         lsn);
	/* the receiver spools it and confirms it: the slot lets it go */
	ck_assert_msg(cluster_wait_for(&source, "postgres", sql,
	                               SLOT_ADVANCE_TIMEOUT_MS),
	              "the slot was not confirmed past %s with --spool", lsn);
	free(lsn);
	fpctl_release(&fd, "stream.barrier_seen");

	status = proc_wait(&cut, CMD_TIMEOUT_MS);
	err = proc_stderr(&cut);
	if (status != 1 || strstr(err, "written after the barrier") == NULL)
		itest_print_proc("pgstream cutover", &cut, status);
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "written after the barrier") != NULL,
	              "cutover did not say the source was written after the "
	              "barrier");
	free(err);
	proc_release(&cut);

	status = proc_wait(&sync, CMD_TIMEOUT_MS);
	err = proc_stderr(&sync);
	if (status != 1 || strstr(err, "kept") == NULL)
		itest_print_proc("pgstream sync", &sync, status);
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "the spool is kept") != NULL,
	              "sync did not say it kept the spool");
	free(err);
	proc_release(&sync);
	ck_assert_msg(count_segments(spool) >= 1,
	              "the spool holding the write after the barrier is gone");
	itest_assert_scalar(&target, "spb_tgt", "SELECT v FROM t", "before");

	/* Again with the same spool: the row comes from it, then cutover. */
	spawn_sync(&sync, src, tgt, spool);
	wait_for_streaming(tgt, &sync, NULL, NULL);
	ck_assert(cluster_wait_for(&target, "spb_tgt",
	                           "SELECT v = 'after the barrier' FROM t",
	                           60000));
	cutover_ok(src, tgt);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	itest_assert_scalar(&target, "spb_tgt",
	                    "SELECT string_agg(id || ':' || v, ',' ORDER BY id)"
	                    " FROM t",
	                    "1:after the barrier");
	ck_assert_msg(!path_exists(spool),
	              "the spool directory %s still exists after the cutover",
	              spool);
	fpctl_cleanup(&fd);
	remove_spool_base(base, spool);
}
END_TEST

Suite *
spool_mode_suite(void)
{
	Suite *s = suite_create("spool_mode");
	TCase *tc = tcase_create("spool_mode");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_add_checked_fixture(tc, test_setup, test_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, spool_keeps_receiving_while_the_target_is_down);
	tcase_add_test(tc, spool_survives_kill_9);
	tcase_add_test(tc, spool_writes_after_the_barrier_fail_the_cutover_and_are_kept);
	suite_add_tcase(s, tc);
	return s;
}
