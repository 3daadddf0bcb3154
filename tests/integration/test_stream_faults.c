/*
 * tests/integration/test_stream_faults.c -- what pgstream confirms to the
 * source must survive a crash at the worst moment (issue 13).
 *
 * Each test drives sync to one dangerous moment with a failpoint
 * (engine/failpoint.h), crashes or stops it there, runs the same sync again
 * and then compares source and target exactly.  Losing a transaction shows
 * up as a row count or digest that differs; a spool that cannot be read
 * back shows up as a second sync that stops instead of streaming.
 *
 *   spool_stop_after_a_mid_transaction_flush_loses_nothing
 *       sync --spool with the target down; two sessions commit big
 *       transactions; sync is stopped right after a spool flush that ended
 *       inside a transaction (the receiver used to confirm the last commit
 *       it had seen, which recovery then cut off).  Restarted: identical.
 *   idle_status_never_confirms_an_unapplied_transaction
 *       no spool; the receiver is held in a turn that began idle while the
 *       source sends a keepalive, one transaction and a keepalive that asks
 *       for a reply; the target table is locked so that the transaction
 *       cannot be applied; kill -9 after the reply.  Restarted: identical.
 *   spool_restart_after_segments_were_released_reads_back
 *       sync --spool with one frame per segment; a big streamed transaction
 *       is applied and the applied segments are released; kill -9; the
 *       restarted sync must read the spool back (it used to find a segment
 *       that began inside a transaction, on every run).
 *   spool_releases_segments_after_a_streamed_transaction_is_cut_off
 *       sync --spool has spooled part of a streamed transaction when it is
 *       killed; the transaction aborts meanwhile, so the source never sends
 *       it again.  The restarted sync must still release applied segments
 *       (it used to keep that transaction open for good: the disk filled).
 *   many_concurrently_streamed_transactions_are_applied
 *       270 transactions are streamed at the same time (there used to be
 *       room for 256, and the error came back on every restart).
 *   a_silent_source_is_detected_and_sync_reconnects
 *       the walsender is stopped (SIGSTOP): its connection stays open and
 *       silent; sync must say so after its receive timeout (4 s in this
 *       test build), reconnect once the walsender is continued, and apply
 *       what was written meanwhile.
 *
 * One source (wal_level=logical, logical_decoding_work_mem=64kB so that big
 * transactions are streamed, wal_sender_timeout=12s so that the walsender
 * asks for a reply 6 s after our last one) and one target with the login
 * "migrator", made once in an unchecked fixture.
 */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/failpoint_ctl.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define TEST_TIMEOUT_S 300
#define CMD_TIMEOUT_MS 120000
#define STATUS_TIMEOUT_MS 30000
#define PHASE_TIMEOUT_MS 150000
#define PAUSE_TIMEOUT_MS 120000
#define MAX_ARGS 32
#define MAX_ENV 8

/* the walsender that streams the slot, in pg_stat_replication */
#define SLOT_WALSENDER                                                      \
	" WHERE pid = (SELECT active_pid FROM pg_replication_slots"             \
	" WHERE slot_name = 'pgstream')"

static Cluster source;
static Cluster target;

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "faults-source", CLUSTER_LOGICAL));
	ck_assert(cluster_set(&source, "logical_decoding_work_mem = 64kB"));
	ck_assert(cluster_set(&source, "wal_sender_timeout = 12s"));
	ck_assert(cluster_set(&source, "max_connections = 320"));
	ck_assert(cluster_init(&target, "faults-target", 0));
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

/* A failed test may leave its slot behind or the target stopped. */
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
	                           30000));
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

static void
make_spool_base(char *base, size_t size, char *spool, size_t spool_size)
{
	const char *tmpdir = getenv("TMPDIR");

	snprintf(base, size, "%s/pgstream-faulttest-XXXXXX",
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

/*
 * pgstream sync --source S --target T --slot pgstream --quiet [--spool DIR], with env
 * (NULL-ended, may be NULL) added to its environment.
 */
static void
spawn_sync(Proc *p, const char *src, const char *tgt, const char *spool,
           const char *const *env)
{
	const char *argv[MAX_ARGS];
	int n = 0;

	argv[n++] = itest_pgstream_bin();
	argv[n++] = "sync";
	argv[n++] = "--source";
	argv[n++] = src;
	argv[n++] = "--target";
	argv[n++] = tgt;
	argv[n++] = "--slot";	/* the tests' queries name it */
	argv[n++] = "pgstream";
	argv[n++] = "--quiet";
	if (spool != NULL)
	{
		argv[n++] = "--spool";
		argv[n++] = spool;
	}
	argv[n] = NULL;
	ck_assert(proc_spawn(p, argv, env));
}

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
	free(out);
	free(err);
}

/* Poll status until the phase is "streaming"; sync must keep running. */
static void
wait_for_streaming(const char *tgt, Proc *sync)
{
	long long deadline = proc_now_ms() + PHASE_TIMEOUT_MS;
	char now[32] = "";

	for (;;)
	{
		int st = proc_wait(sync, 0);

		if (st != PROC_TIMEOUT)
		{
			itest_print_proc("pgstream sync", sync, st);
			ck_abort_msg("sync exited with %d while waiting for streaming "
			             "(last phase %s)",
			             st, now);
		}
		status_phase(tgt, now, sizeof(now));
		if (strcmp(now, "streaming") == 0)
			break;
		ck_assert_msg(proc_now_ms() < deadline,
		              "phase streaming not reached in %d s (last %s)",
		              PHASE_TIMEOUT_MS / 1000, now);
		itest_sleep_ms(200);
	}
}

/*
 * Poll sql (one boolean) on the target until it is true; sync must keep
 * running meanwhile (a sync that stops prints why).
 */
static void
wait_target_while_running(Proc *sync, const char *tgtdb, const char *sql)
{
	long long deadline = proc_now_ms() + PHASE_TIMEOUT_MS;

	for (;;)
	{
		int st = proc_wait(sync, 0);
		char *v;

		if (st != PROC_TIMEOUT)
		{
			itest_print_proc("pgstream sync", sync, st);
			ck_abort_msg("sync exited with %d before the target had: %s", st,
			             sql);
		}
		v = cluster_query_scalar(&target, tgtdb, sql);
		if (v != NULL && strcmp(v, "t") == 0)
		{
			free(v);
			return;
		}
		free(v);
		ck_assert_msg(proc_now_ms() < deadline,
		              "the target did not get there in %d s: %s",
		              PHASE_TIMEOUT_MS / 1000, sql);
		itest_sleep_ms(200);
	}
}

/* pgstream cutover --source S --target T --timeout 60: must exit 0. */
static void
cutover_ok(const char *src, const char *tgt)
{
	const char *const argv[] = {
	    itest_pgstream_bin(), "cutover", "--source", src, "--target", tgt,
	    "--timeout",          "60",      NULL};
	char *out = NULL;
	char *err = NULL;
	int status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);

	if (status != 0)
		itest_print_output("pgstream cutover", status, out, err);
	ck_assert_int_eq(status, 0);
	free(out);
	free(err);
}

/*
 * pgbench -n -c clients -j clients -t txns -f script on the source, in the
 * background; script is written to a temporary file (path in file).
 */
static void
spawn_pgbench_script(Proc *p, const char *dbname, const char *sql,
                     const char *clients, const char *txns, char *file,
                     size_t file_size)
{
	const char *tmpdir = getenv("TMPDIR");
	char port[16];
	const char *pgbench = itest_pgbench_path();
	FILE *f;
	int fd;

	snprintf(file, file_size, "%s/pgstream-faults-XXXXXX.sql",
	         tmpdir && *tmpdir ? tmpdir : "/tmp");
	fd = mkstemps(file, 4);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fputs(sql, f);
	ck_assert_int_eq(fclose(f), 0);
	chmod(file, 0644);
	snprintf(port, sizeof(port), "%d", source.port);
	{
		const char *argv[] = {pgbench, "-n",    "-h", source.basedir,
		                      "-p",    port,    "-U", "postgres",
		                      "-c",    clients, "-j", clients,
		                      "-t",    txns,    "-f", file,
		                      dbname,  NULL};

		ck_assert(proc_spawn(p, argv, NULL));
	}
}

/* Same count and ordered digest of table on both sides. */
static void
assert_table_identical(const char *srcdb, const char *tgtdb,
                       const char *table)
{
	char *a = itest_table_fingerprint(&source, srcdb, table);
	char *b = itest_table_fingerprint(&target, tgtdb, table);

	fprintf(stderr, "%s: source %s, target %s\n", table, a, b);
	ck_assert_msg(strcmp(a, b) == 0 && strstr(a, "?") == NULL,
	              "table %s differs: source %s, target %s", table, a, b);
	free(a);
	free(b);
}

/* A query's single value on the source (malloc'd, never NULL). */
static char *
source_value(const char *dbname, const char *sql)
{
	char *v = cluster_query_scalar(&source, dbname, sql);

	ck_assert_msg(v != NULL, "no value from the source for: %s", sql);
	return v;
}

/* Wait until the walsender of sync has sent everything up to lsn. */
static void
wait_sent(const char *lsn)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(bool_and(sent_lsn >= '%s'), false)"
	         " FROM pg_stat_replication" SLOT_WALSENDER,
	         lsn);
	ck_assert_msg(cluster_wait_for(&source, "postgres", sql, 30000),
	              "the walsender did not send up to %s", lsn);
}

/* ---- (1) --spool: stopped right after a flush inside a transaction ---- */

START_TEST(spool_stop_after_a_mid_transaction_flush_loses_nothing)
{
	static const char script[] =
	    "BEGIN;\n"
	    "INSERT INTO public.t (s, v) SELECT :client_id, md5(g::text)"
	    " FROM generate_series(1, 3000) g;\n"
	    "COMMIT;\n";
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char base[PATH_MAX];
	char spool[PATH_MAX];
	char file[PATH_MAX];
	char *err;
	const char *const env[] = {
	    "PGSTREAM_FAILPOINTS=stream.spool_flushed_mid_txn=sigterm", NULL};
	Proc sync;
	Proc bench;
	int status;

	itest_make_db(&source, "f1_src", NULL);
	itest_make_db(&target, "f1_tgt", "migrator");
	ck_assert(cluster_psql(&source, "f1_src",
	                       "CREATE TABLE public.t (id bigserial PRIMARY KEY,"
	                       " s int NOT NULL, v text NOT NULL);"
	                       "INSERT INTO public.t (s, v) SELECT 0, 'initial'"
	                       " FROM generate_series(1, 1000)"));
	itest_conninfo(src, &source, "f1_src");
	itest_migrator_conninfo(tgt, &target, "f1_tgt");
	make_spool_base(base, sizeof(base), spool, sizeof(spool));

	spawn_sync(&sync, src, tgt, spool, env);
	wait_for_streaming(tgt, &sync);
	ck_assert(cluster_stop(&target, "immediate"));

	/* two sessions, 25 transactions of 3000 rows each */
	spawn_pgbench_script(&bench, "f1_src", script, "2", "25", file,
	                     sizeof(file));
	status = proc_wait(&sync, 120000);
	err = proc_stderr(&sync);
	if (status != 1 ||
	    strstr(err, "failpoint stream.spool_flushed_mid_txn: raising signal") == NULL)
		itest_print_proc("pgstream sync", &sync, status);
	ck_assert_msg(strstr(err, "failpoint stream.spool_flushed_mid_txn: raising signal") != NULL,
	              "sync never flushed the spool inside a transaction");
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "ERROR stopped by a signal") != NULL,
	              "sync did not say it was stopped by the signal");
	free(err);
	proc_release(&sync);
	status = proc_wait(&bench, 120000);
	itest_assert_pgbench_ok(&bench, status);
	proc_release(&bench);
	unlink(file);
	fprintf(stderr, "stopped after a flush inside a transaction; spool: %d .seg\n",
	        count_segments(spool));

	/* the target comes back; the same sync again */
	ck_assert(cluster_start(&target));
	spawn_sync(&sync, src, tgt, spool, NULL);
	wait_target_while_running(&sync, "f1_tgt",
	                          "SELECT count(*) >= 151000 FROM public.t");
	cutover_ok(src, tgt);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	itest_assert_scalar(&source, "f1_src", "SELECT count(*) FROM public.t",
	                    "151000");
	assert_table_identical("f1_src", "f1_tgt", "public.t");
	remove_spool_base(base, spool);
}
END_TEST

/* ---- (2) a stale "idle" must not confirm an unapplied transaction ---- */

START_TEST(idle_status_never_confirms_an_unapplied_transaction)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char env_dir[PATH_MAX + 32];
	char sql[512];
	char *lsn;
	char *released_at;
	char *flushed;
	FailpointDir fp;
	Proc sync;
	PGconn *lock;
	PGresult *res;

	ck_assert(fpctl_init(&fp));
	fpctl_env(&fp, env_dir, sizeof(env_dir));
	itest_make_db(&source, "f2_src", NULL);
	itest_make_db(&target, "f2_tgt", "migrator");
	ck_assert(cluster_psql(&source, "f2_src",
	                       "CREATE TABLE public.t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO public.t SELECT g, 'initial'"
	                       " FROM generate_series(1, 100) g"));
	ck_assert(cluster_psql(&source, "postgres",
	                       "CREATE TABLE IF NOT EXISTS public.noise (i int)"));
	itest_conninfo(src, &source, "f2_src");
	itest_migrator_conninfo(tgt, &target, "f2_tgt");
	{
		const char *const env[] = {
		    "PGSTREAM_FAILPOINTS=stream.receiver_idle_wait=pause@80", env_dir,
		    NULL};

		spawn_sync(&sync, src, tgt, NULL, env);
	}
	/* the receiver waits for more in a turn that began idle */
	ck_assert_msg(fpctl_wait(&fp, "stream.receiver_idle_wait", PAUSE_TIMEOUT_MS),
	              "the receiver never went idle");

	/* the transaction cannot be applied while this lock is held */
	lock = cluster_connect(&target, "f2_tgt", NULL);
	ck_assert_ptr_nonnull(lock);
	res = PQexec(lock, "BEGIN; LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);

	/*
	 * WAL the slot does not publish (another database): the walsender
	 * sends a keepalive for it first.  Then the transaction.  The insert
	 * position, not pg_current_wal_lsn(): with synchronous_commit = off
	 * (the test clusters) the write position may still be before the
	 * commit, and a flush reported up to the keepalive looked like the
	 * transaction confirmed.
	 */
	ck_assert(cluster_psql(&source, "postgres", "INSERT INTO public.noise VALUES (1)"));
	lsn = source_value("postgres", "SELECT pg_current_wal_insert_lsn()::text");
	wait_sent(lsn);
	free(lsn);
	ck_assert(cluster_psql(&source, "f2_src",
	                       "INSERT INTO public.t VALUES (1000001, 'the one')"));
	lsn = source_value("postgres", "SELECT pg_current_wal_insert_lsn()::text");
	wait_sent(lsn);

	/*
	 * wal_sender_timeout is 12 s: 6 s after our last reply the walsender
	 * asks for one, and at 12 s it gives up.  Release in between.
	 */
	ck_assert_msg(cluster_wait_for(&source, "postgres",
	                               "SELECT coalesce(bool_and(now() > reply_time"
	                               " + interval '7.5 s'), false)"
	                               " FROM pg_stat_replication" SLOT_WALSENDER,
	                               20000),
	              "no reply time from the walsender");
	released_at = source_value("postgres", "SELECT now()::text");
	fpctl_release(&fp, "stream.receiver_idle_wait");
	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(bool_and(reply_time > '%s'), false)"
	         " FROM pg_stat_replication" SLOT_WALSENDER,
	         released_at);
	ck_assert_msg(cluster_wait_for(&source, "postgres", sql, 10000),
	              "sync did not answer the walsender after %s", released_at);
	snprintf(sql, sizeof(sql),
	         "SELECT (flush_lsn >= '%s')::text || ' ' || flush_lsn::text"
	         " FROM pg_stat_replication" SLOT_WALSENDER,
	         lsn);
	flushed = source_value("postgres", sql);
	fprintf(stderr, "transaction ends before %s; sync reported flush: %s\n",
	        lsn, flushed);
	ck_assert(proc_kill(&sync, SIGKILL));
	ck_assert_int_eq(proc_wait(&sync, 30000), 128 + SIGKILL);
	proc_release(&sync);
	res = PQexec(lock, "ROLLBACK");
	PQclear(res);
	PQfinish(lock);

	spawn_sync(&sync, src, tgt, NULL, NULL);
	ck_assert(cluster_psql(&source, "f2_src",
	                       "INSERT INTO public.t VALUES (1000002, 'after')"));
	wait_target_while_running(&sync, "f2_tgt",
	                          "SELECT count(*) > 0 FROM public.t"
	                          " WHERE id = 1000002");
	cutover_ok(src, tgt);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_table_identical("f2_src", "f2_tgt", "public.t");
	ck_assert_msg(strncmp(flushed, "false", 5) == 0,
	              "sync confirmed %s to the source while the transaction"
	              " ending before %s was not applied", flushed, lsn);
	free(flushed);
	free(lsn);
	free(released_at);
	fpctl_cleanup(&fp);
}
END_TEST

/* ---- (4) released segments: the spool still starts at a boundary ---- */

START_TEST(spool_restart_after_segments_were_released_reads_back)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char base[PATH_MAX];
	char spool[PATH_MAX];
	const char *const env[] = {"PGSTREAM_SPOOL_SEGMENT_BYTES=1", NULL};
	Proc sync;
	int segments = -1;
	long long deadline;

	itest_make_db(&source, "f4_src", NULL);
	itest_make_db(&target, "f4_tgt", "migrator");
	ck_assert(cluster_psql(&source, "f4_src",
	                       "CREATE TABLE public.t (id bigserial PRIMARY KEY,"
	                       " v text NOT NULL)"));
	itest_conninfo(src, &source, "f4_src");
	itest_migrator_conninfo(tgt, &target, "f4_tgt");
	make_spool_base(base, sizeof(base), spool, sizeof(spool));

	spawn_sync(&sync, src, tgt, spool, env);
	wait_for_streaming(tgt, &sync);
	/* about 10 MB of changes: more than one 8 MB frame, streamed */
	ck_assert(cluster_psql(&source, "f4_src",
	                       "INSERT INTO public.t (v) SELECT repeat(md5(g::text), 30)"
	                       " FROM generate_series(1, 10000) g"));
	ck_assert(cluster_psql(&source, "f4_src",
	                       "INSERT INTO public.t (v) VALUES ('after')"));
	/* applied, and every segment but the one being read released */
	ck_assert(cluster_wait_for(&target, "f4_tgt",
	                           "SELECT count(*) = 10001 FROM public.t", 120000));
	deadline = proc_now_ms() + 30000;
	while (proc_now_ms() < deadline && (segments = count_segments(spool)) != 1)
		itest_sleep_ms(50);
	fprintf(stderr, "applied; the spool holds %d segment(s)\n", segments);
	ck_assert_int_eq(segments, 1);
	ck_assert(proc_kill(&sync, SIGKILL));
	ck_assert_int_eq(proc_wait(&sync, 30000), 128 + SIGKILL);
	proc_release(&sync);

	ck_assert(cluster_psql(&source, "f4_src",
	                       "INSERT INTO public.t (v) VALUES ('after restart')"));
	spawn_sync(&sync, src, tgt, spool, env);
	wait_target_while_running(&sync, "f4_tgt",
	                          "SELECT count(*) = 10002 FROM public.t");
	cutover_ok(src, tgt);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_table_identical("f4_src", "f4_tgt", "public.t");
	remove_spool_base(base, spool);
}
END_TEST

/* ---- a streamed transaction cut by a restart and never resent ---- */

START_TEST(spool_releases_segments_after_a_streamed_transaction_is_cut_off)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char base[PATH_MAX];
	char spool[PATH_MAX];
	char sql[256];
	const char *const env[] = {"PGSTREAM_SPOOL_SEGMENT_BYTES=1", NULL};
	Proc sync;
	PGconn *big;
	PGresult *res;
	char *lsn;
	int segments = -1;
	long long deadline;

	itest_make_db(&source, "f6_src", NULL);
	itest_make_db(&target, "f6_tgt", "migrator");
	ck_assert(cluster_psql(&source, "f6_src",
	                       "CREATE TABLE public.t (id bigserial PRIMARY KEY,"
	                       " v text NOT NULL)"));
	itest_conninfo(src, &source, "f6_src");
	itest_migrator_conninfo(tgt, &target, "f6_tgt");
	make_spool_base(base, sizeof(base), spool, sizeof(spool));
	spawn_sync(&sync, src, tgt, spool, env);
	wait_for_streaming(tgt, &sync);

	/* a big transaction, streamed (64kB work_mem) and left open */
	big = cluster_connect(&source, "f6_src", NULL);
	ck_assert_ptr_nonnull(big);
	res = PQexec(big, "BEGIN; INSERT INTO public.t (v) SELECT md5(g::text)"
	                  " FROM generate_series(1, 5000) g");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	/* a small one after it, confirmed: the streamed part is spooled too */
	ck_assert(cluster_psql(&source, "f6_src",
	                       "INSERT INTO public.t (v) VALUES ('small')"));
	lsn = source_value("postgres", "SELECT pg_current_wal_lsn()::text");
	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(bool_and(confirmed_flush_lsn >= '%s'), false)"
	         " FROM pg_replication_slots",
	         lsn);
	ck_assert_msg(cluster_wait_for(&source, "postgres", sql, 30000),
	              "the slot was not confirmed up to %s", lsn);
	free(lsn);
	ck_assert(proc_kill(&sync, SIGKILL));
	ck_assert_int_eq(proc_wait(&sync, 30000), 128 + SIGKILL);
	proc_release(&sync);

	/* it aborts while sync is down: the source never sends it again */
	res = PQexec(big, "ROLLBACK");
	PQclear(res);
	PQfinish(big);
	spawn_sync(&sync, src, tgt, spool, env);
	ck_assert(cluster_psql(&source, "f6_src",
	                       "INSERT INTO public.t (v) VALUES ('after restart')"));
	wait_target_while_running(&sync, "f6_tgt",
	                          "SELECT count(*) = 2 FROM public.t");
	/* applied and idle: everything before the segment being read goes */
	deadline = proc_now_ms() + 30000;
	while (proc_now_ms() < deadline && (segments = count_segments(spool)) != 1)
		itest_sleep_ms(100);
	fprintf(stderr, "after the restart the spool holds %d segment(s)\n",
	        segments);
	ck_assert_msg(segments == 1,
	              "the spool still holds %d segments: applied ones are never"
	              " released",
	              segments);
	cutover_ok(src, tgt);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_table_identical("f6_src", "f6_tgt", "public.t");
	remove_spool_base(base, spool);
}
END_TEST

/* ---- more streamed transactions open at once than there used to be room for ---- */

#define MANY_STREAMS 270

START_TEST(many_concurrently_streamed_transactions_are_applied)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char want[64];
	PGconn **conns = calloc(MANY_STREAMS, sizeof(PGconn *));
	Proc sync;
	char sql[256];

	ck_assert_ptr_nonnull(conns);
	itest_make_db(&source, "f7_src", NULL);
	itest_make_db(&target, "f7_tgt", "migrator");
	ck_assert(cluster_psql(&source, "f7_src",
	                       "CREATE TABLE public.t (id bigserial PRIMARY KEY,"
	                       " s int NOT NULL, v text NOT NULL)"));
	itest_conninfo(src, &source, "f7_src");
	itest_migrator_conninfo(tgt, &target, "f7_tgt");
	spawn_sync(&sync, src, tgt, NULL, NULL);
	wait_for_streaming(tgt, &sync);

	/* each transaction alone passes logical_decoding_work_mem: all streamed */
	for (int i = 0; i < MANY_STREAMS; i++)
	{
		PGresult *res;

		conns[i] = cluster_connect(&source, "f7_src", NULL);
		ck_assert_ptr_nonnull(conns[i]);
		snprintf(sql, sizeof(sql),
		         "BEGIN; INSERT INTO public.t (s, v) SELECT %d, md5(g::text)"
		         " FROM generate_series(1, 500) g",
		         i);
		res = PQexec(conns[i], sql);
		ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
		PQclear(res);
	}
	/* all of them are streamed to sync before any commits */
	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(bool_and(stream_txns >= %d), false)"
	         " FROM pg_stat_replication_slots WHERE slot_name = 'pgstream'",
	         MANY_STREAMS);
	if (!cluster_wait_for(&source, "postgres", sql, 120000))
	{
		itest_print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
		ck_abort_msg("the source did not stream %d transactions",
		             MANY_STREAMS);
	}
	for (int i = 0; i < MANY_STREAMS; i++)
	{
		PGresult *res = PQexec(conns[i], "COMMIT");

		ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
		PQclear(res);
		PQfinish(conns[i]);
	}
	free(conns);
	snprintf(want, sizeof(want), "SELECT count(*) = %d FROM public.t",
	         MANY_STREAMS * 500);
	wait_target_while_running(&sync, "f7_tgt", want);
	cutover_ok(src, tgt);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_table_identical("f7_src", "f7_tgt", "public.t");
}
END_TEST

/* ---- a silent source: the receive timeout ---- */

START_TEST(a_silent_source_is_detected_and_sync_reconnects)
{
	static const char timeout_msg[] =
	    "nothing received from the source for 4 s (receive timeout)";
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *const env[] = {"PGSTREAM_RECEIVE_TIMEOUT_MS=4000", NULL};
	Proc sync;
	char *pid_text;
	pid_t walsender;
	long long stopped_ms;
	long long deadline;
	bool said = false;

	itest_make_db(&source, "f5_src", NULL);
	itest_make_db(&target, "f5_tgt", "migrator");
	ck_assert(cluster_psql(&source, "f5_src",
	                       "CREATE TABLE public.t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO public.t VALUES (1, 'initial')"));
	itest_conninfo(src, &source, "f5_src");
	itest_migrator_conninfo(tgt, &target, "f5_tgt");
	spawn_sync(&sync, src, tgt, NULL, env);
	wait_for_streaming(tgt, &sync);

	/*
	 * An idle but healthy source sends nothing either: twice the timeout
	 * without a word from it must pass quietly (sync pings it half way).
	 */
	itest_sleep_ms(9000);
	{
		char *err = proc_stderr(&sync);

		ck_assert_ptr_nonnull(err);
		if (strstr(err, timeout_msg) != NULL)
			itest_print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
		ck_assert_msg(strstr(err, timeout_msg) == NULL,
		              "an idle source was taken for a silent one");
		free(err);
	}

	/* the walsender freezes: its socket stays open and says nothing */
	pid_text = source_value("postgres",
	                        "SELECT active_pid FROM pg_replication_slots"
	                        " WHERE slot_name = 'pgstream'");
	walsender = (pid_t) atol(pid_text);
	free(pid_text);
	ck_assert_int_gt(walsender, 0);
	ck_assert_int_eq(kill(walsender, SIGSTOP), 0);
	stopped_ms = proc_now_ms();
	ck_assert(cluster_psql(&source, "f5_src",
	                       "INSERT INTO public.t VALUES (2, 'while frozen')"));
	deadline = stopped_ms + 30000;
	while (!said && proc_now_ms() < deadline)
	{
		char *err = proc_stderr(&sync);

		said = err != NULL && strstr(err, timeout_msg) != NULL;
		free(err);
		if (!said)
			itest_sleep_ms(100);
	}
	fprintf(stderr, "walsender %d stopped; timeout %s after %.1f s\n",
	        (int) walsender, said ? "reported" : "NOT reported",
	        (double) (proc_now_ms() - stopped_ms) / 1000.0);
	ck_assert_int_eq(kill(walsender, SIGCONT), 0);
	if (!said)
		itest_print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
	ck_assert_msg(said, "sync did not notice in 30 s that the source was silent");

	/* the old walsender ends; sync reconnects and goes on */
	wait_target_while_running(&sync, "f5_tgt",
	                          "SELECT count(*) = 2 FROM public.t");
	cutover_ok(src, tgt);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_table_identical("f5_src", "f5_tgt", "public.t");
}
END_TEST

/* ---- kill -9 after a target COMMIT, before the source was told ---- */

/*
 * 2 x 200 source transactions of 40 rows each (two INSERT statements) into
 * a table without a key (REPLICA IDENTITY FULL), about 80 a second.  Sync
 * pauses at the KILL_AT_COMMIT-th stream.after_apply_commit: the target has
 * committed that batch and its applied position, and the slot's confirmed
 * position must still be behind it (the window is open).  Kill -9 there
 * while the load goes on; the same sync again gets the committed batch from
 * the source once more and must not apply it twice: without a key a
 * duplicate is an extra row, which the count and digest show.
 */
#define KILL_AT_COMMIT 10

START_TEST(kill_after_an_apply_commit_applies_each_transaction_once)
{
	static const char script[] =
	    "BEGIN;\n"
	    "INSERT INTO public.t (s, n, v) SELECT :client_id, g, md5(random()::text)"
	    " FROM generate_series(1, 20) g;\n"
	    "INSERT INTO public.t (s, n, v) SELECT :client_id, -g, 'second'"
	    " FROM generate_series(1, 20) g;\n"
	    "COMMIT;\n"
	    "\\sleep 25 ms\n";
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char env_dir[PATH_MAX + 32];
	char env_fp[128];
	char file[PATH_MAX];
	char sql[256];
	char *confirmed;
	char *window;
	FailpointDir fp;
	Proc sync;
	Proc bench;
	int status;

	ck_assert(fpctl_init(&fp));
	fpctl_env(&fp, env_dir, sizeof(env_dir));
	snprintf(env_fp, sizeof(env_fp),
	         "PGSTREAM_FAILPOINTS=stream.after_apply_commit=pause@%d",
	         KILL_AT_COMMIT);
	itest_make_db(&source, "f8_src", NULL);
	itest_make_db(&target, "f8_tgt", "migrator");
	ck_assert(cluster_psql(&source, "f8_src",
	                       "CREATE TABLE public.t (s int NOT NULL, n int NOT NULL,"
	                       " v text NOT NULL);"
	                       "ALTER TABLE public.t REPLICA IDENTITY FULL;"
	                       "INSERT INTO public.t SELECT 0, g, 'initial'"
	                       " FROM generate_series(1, 1000) g"));
	itest_conninfo(src, &source, "f8_src");
	itest_migrator_conninfo(tgt, &target, "f8_tgt");
	{
		const char *const env[] = {env_fp, env_dir, NULL};

		spawn_sync(&sync, src, tgt, NULL, env);
	}
	wait_for_streaming(tgt, &sync);
	spawn_pgbench_script(&bench, "f8_src", script, "2", "200", file,
	                     sizeof(file));
	if (!fpctl_wait(&fp, "stream.after_apply_commit", PAUSE_TIMEOUT_MS))
	{
		itest_print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
		ck_abort_msg("sync never reached stream.after_apply_commit@%d",
		             KILL_AT_COMMIT);
	}

	/* the window: committed on the target, not confirmed to the source */
	confirmed = source_value("postgres",
	                         "SELECT confirmed_flush_lsn::text FROM"
	                         " pg_replication_slots WHERE slot_name = 'pgstream'");
	snprintf(sql, sizeof(sql),
	         "SELECT (applied_lsn > '%s')::text || ' ' || applied_lsn::text"
	         " FROM pgstream.migration",
	         confirmed);
	window = cluster_query_scalar(&target, "f8_tgt", sql);
	ck_assert_ptr_nonnull(window);
	fprintf(stderr, "paused after commit %d: source confirmed %s; target "
	        "applied past it, applied_lsn: %s; load %s\n",
	        KILL_AT_COMMIT, confirmed, window,
	        proc_wait(&bench, 0) == PROC_TIMEOUT ? "running" : "done");
	ck_assert(proc_kill(&sync, SIGKILL));
	ck_assert_int_eq(proc_wait(&sync, 30000), 128 + SIGKILL);
	proc_release(&sync);
	fpctl_release(&fp, "stream.after_apply_commit");
	ck_assert_msg(strncmp(window, "true ", 5) == 0,
	              "at stream.after_apply_commit the source had confirmed %s,"
	              " not behind the target's applied position (%s)",
	              confirmed, window);

	/* the same sync again, while the load goes on */
	spawn_sync(&sync, src, tgt, NULL, NULL);
	status = proc_wait(&bench, 120000);
	itest_assert_pgbench_ok(&bench, status);
	proc_release(&bench);
	unlink(file);
	itest_assert_scalar(&source, "f8_src", "SELECT count(*) FROM public.t",
	                    "17000");
	wait_target_while_running(&sync, "f8_tgt",
	                          "SELECT count(*) >= 17000 FROM public.t");
	/* the source is done: more would be a batch applied twice */
	itest_assert_scalar(&target, "f8_tgt", "SELECT count(*) FROM public.t",
	                    "17000");
	assert_table_identical("f8_src", "f8_tgt", "public.t");
	cutover_ok(src, tgt);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	itest_assert_scalar(&target, "f8_tgt", "SELECT count(*) FROM public.t",
	                    "17000");
	assert_table_identical("f8_src", "f8_tgt", "public.t");
	free(confirmed);
	free(window);
	fpctl_cleanup(&fp);
}
END_TEST

Suite *
stream_faults_suite(void)
{
	Suite *s = suite_create("stream_faults");
	TCase *tc = tcase_create("stream_faults");
	const char *only = getenv("STREAM_FAULTS_ONLY");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_add_checked_fixture(tc, test_setup, test_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	/* STREAM_FAULTS_ONLY=<part of a test name> runs only those (mutation checks) */
#define ADD(t) \
	if (only == NULL || strstr(#t, only) != NULL) \
		tcase_add_test(tc, t)
	ADD(spool_stop_after_a_mid_transaction_flush_loses_nothing);
	ADD(idle_status_never_confirms_an_unapplied_transaction);
	ADD(spool_restart_after_segments_were_released_reads_back);
	ADD(spool_releases_segments_after_a_streamed_transaction_is_cut_off);
	ADD(many_concurrently_streamed_transactions_are_applied);
	ADD(a_silent_source_is_detected_and_sync_reconnects);
	ADD(kill_after_an_apply_commit_applies_each_transaction_once);
#undef ADD
	suite_add_tcase(s, tc);
	return s;
}
