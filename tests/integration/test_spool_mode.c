/*
 * tests/integration/test_spool_mode.c -- acceptance tests for
 * `pgstream sync --spool DIR`: the change stream goes to durable LZ4 segment
 * files (DIR/<16 hex digits>.seg, fsync'd before the position is confirmed
 * to the source), and an applier reads them back.
 *
 * One source cluster (wal_level=logical) and one target cluster with a
 * non-superuser login "migrator" that owns every target database, made once
 * in an unchecked fixture (the same setup as test_stream.c).  Each test
 * makes its own databases and spool directory and uses the default slot
 * name "pgstream".
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
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/proc.h"

#define TEST_TIMEOUT_S 240
#define CMD_TIMEOUT_MS 120000
#define STATUS_TIMEOUT_MS 30000
#define PHASE_TIMEOUT_MS 120000
#define SYNC_EXIT_TIMEOUT_MS 60000
#define SLOT_ADVANCE_TIMEOUT_MS 20000
#define CONNINFO_MAX (PATH_MAX + 256)
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

/* ---- small helpers (after test_stream.c) ---- */

static const char *
pgstream_bin(void)
{
	const char *bin = getenv("PGSTREAM_BIN");

	ck_assert_msg(bin != NULL && *bin != '\0',
	              "PGSTREAM_BIN is not set (run through make "
	              "check-integration, or set it to build/<mode>/pgstream)");
	return bin;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* pgbench: $PGSTREAM_PG_BINDIR, else the newest /usr/lib/postgresql/N/bin,
 * else $PATH. */
static const char *
pgbench_path(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("PGSTREAM_PG_BINDIR");
	struct stat st;
	DIR *dir;
	long best = -1;

	if (path[0] != '\0')
		return path;
	if (env != NULL && *env != '\0')
	{
		snprintf(path, sizeof(path), "%s/pgbench", env);
		return path;
	}
	dir = opendir("/usr/lib/postgresql");
	if (dir != NULL)
	{
		struct dirent *de;

		while ((de = readdir(dir)) != NULL)
		{
			char candidate[PATH_MAX];
			char *end;
			long major = strtol(de->d_name, &end, 10);

			if (end == de->d_name || *end != '\0' || major <= best)
				continue;
			snprintf(candidate, sizeof(candidate),
			         "/usr/lib/postgresql/%s/bin/pgbench", de->d_name);
			if (stat(candidate, &st) == 0)
			{
				best = major;
				memcpy(path, candidate, sizeof(path));
			}
		}
		closedir(dir);
	}
	if (path[0] == '\0')
		snprintf(path, sizeof(path), "pgbench");
	return path;
}

static void
make_db(const Cluster *c, const char *name, const char *owner)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	ck_assert(cluster_psql(c, "postgres", sql));
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s%s%s", name,
	         owner ? " OWNER " : "", owner ? owner : "");
	ck_assert(cluster_psql(c, "postgres", sql));
}

static void
source_conninfo(char *buf, const char *dbname)
{
	snprintf(buf, CONNINFO_MAX, "%s", cluster_conninfo(&source, dbname));
}

/* The target as the non-superuser migrator, which owns the database. */
static void
target_conninfo(char *buf, const char *dbname)
{
	snprintf(buf, CONNINFO_MAX, "host='%s' port=%d user=migrator dbname=%s",
	         target.basedir, target.port, dbname);
}

static void
assert_scalar(const Cluster *c, const char *dbname, const char *sql,
              const char *expected)
{
	char *value = NULL;

	ck_assert_msg(cluster_query(c, dbname, sql, &value), "query failed: %s",
	              sql);
	ck_assert_msg(value != NULL && strcmp(value, expected) == 0,
	              "%s/%s: %s\n  expected: %s\n  actual:   %s", c->name, dbname,
	              sql, expected, value ? value : "NULL");
	free(value);
}

static void
print_output(const char *what, int status, const char *out, const char *err)
{
	fprintf(stderr,
	        "---- %s: status %d\n---- stdout:\n%s---- stderr:\n%s----\n", what,
	        status, out ? out : "", err ? err : "");
}

static void
print_proc(const char *what, const Proc *p, int status)
{
	char *out = proc_stdout(p);
	char *err = proc_stderr(p);

	print_output(what, status, out, err);
	free(out);
	free(err);
}

/* s without whitespace outside JSON strings. */
static void
strip_space(char *s)
{
	char *w = s;
	bool in_string = false;

	for (const char *r = s; *r; r++)
	{
		if (in_string)
		{
			*w++ = *r;
			if (*r == '\\' && r[1] != '\0')
				*w++ = *++r;
			else if (*r == '"')
				in_string = false;
			continue;
		}
		if (*r == '"')
			in_string = true;
		if (*r != ' ' && *r != '\n' && *r != '\t' && *r != '\r')
			*w++ = *r;
	}
	*w = '\0';
}

/* The value of the first "key" in compact JSON; false if absent. */
static bool
json_field(const char *json, const char *key, char *buf, size_t size)
{
	char pat[80];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (p == NULL)
		return false;
	p += strlen(pat);
	if (*p == '"')
	{
		for (p++; *p && *p != '"'; p++)
		{
			if (*p == '\\' && p[1] != '\0' && n + 2 < size)
				buf[n++] = *p++;
			if (n + 1 < size)
				buf[n++] = *p;
		}
	}
	else
		for (; *p && *p != ',' && *p != '}' && *p != ']'; p++)
			if (n + 1 < size)
				buf[n++] = *p;
	buf[n] = '\0';
	return true;
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

/* pgstream sync --source S --target T --quiet --no-key-tables=insert-only
 * --spool DIR */
static void
spawn_sync(Proc *p, const char *src, const char *tgt, const char *spool)
{
	const char *const argv[] = {pgstream_bin(),
	                            "sync",
	                            "--source",
	                            src,
	                            "--target",
	                            tgt,
	                            "--quiet",
	                            "--no-key-tables=insert-only",
	                            "--spool",
	                            spool,
	                            NULL};

	ck_assert(proc_spawn(p, argv, NULL));
}

static void
assert_sync_exits_0(Proc *p)
{
	int status = proc_wait(p, SYNC_EXIT_TIMEOUT_MS);

	if (status != 0)
		print_proc("pgstream sync", p, status);
	ck_assert_msg(status == 0, "sync exited with %d after the cutover", status);
}

/* pgstream status --target T --json: the phase, or "" if status failed. */
static void
status_phase(const char *tgt, char *phase, size_t size)
{
	const char *const argv[] = {pgstream_bin(), "status", "--target", tgt,
	                            "--json",       NULL};
	char *out = NULL;
	char *err = NULL;
	int status = proc_run(argv, NULL, STATUS_TIMEOUT_MS, &out, &err);

	phase[0] = '\0';
	if (status == 0 && out != NULL)
	{
		strip_space(out);
		if (!json_field(out, "phase", phase, size))
			phase[0] = '\0';
	}
	else
		print_output("pgstream status", status, out, err);
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
			print_proc("pgstream sync", sync, st);
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
		sleep_ms(200);
	}
}

/* pgbench -i -s scale on the source database. */
static void
pgbench_init(const char *dbname, const char *scale)
{
	char port[16];
	const char *argv[] = {pgbench_path(), "-i",       "-q",   "-s",
	                      scale,          "-h",       source.basedir,
	                      "-p",           port,       "-U",
	                      "postgres",     dbname,     NULL};
	char *out = NULL;
	char *err = NULL;
	int status;

	snprintf(port, sizeof(port), "%d", source.port);
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
	if (status != 0)
		print_output("pgbench -i", status, out, err);
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
	const char *argv[] = {pgbench_path(), "-n", "-h",     source.basedir,
	                      "-p",           port, "-U",     "postgres",
	                      "-c",           clients, "-j",  "2",
	                      "-T",           seconds, dbname, NULL};

	snprintf(port, sizeof(port), "%d", source.port);
	ck_assert(proc_spawn(p, argv, NULL));
}

static void
assert_pgbench_ok(Proc *p, int status)
{
	char *out = proc_stdout(p);

	if (status != 0)
		print_proc("pgbench", p, status);
	ck_assert_int_eq(status, 0);
	ck_assert_msg(out != NULL && strstr(out, "number of transactions actually "
	                                         "processed") != NULL,
	              "pgbench output: %s", out ? out : "");
	free(out);
}

/* pgstream cutover --source S --target T --timeout 120: must exit 0. */
static void
cutover_ok(const char *src, const char *tgt)
{
	const char *const argv[] = {pgstream_bin(), "cutover", "--source", src,
	                            "--target",     tgt,       "--timeout", "120",
	                            NULL};
	char *out = NULL;
	char *err = NULL;
	long long start = proc_now_ms();
	int status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);

	fprintf(stderr, "pgstream cutover: status %d in %.1f s\n", status,
	        (double) (proc_now_ms() - start) / 1000.0);
	if (status != 0)
		print_output("pgstream cutover", status, out, err);
	ck_assert_int_eq(status, 0);
	free(out);
	free(err);
}

/* ---- comparing source and target ---- */

/* "<count> rows, md5 <digest>" of a table. */
static char *
table_fingerprint(const Cluster *c, const char *dbname, const char *table)
{
	char sql[600];
	char *count;
	char *digest;
	char *out;
	size_t len;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	count = cluster_query_scalar(c, dbname, sql);
	digest = cluster_table_digest(c, dbname, table, "t::text COLLATE \"C\"");
	len = (count ? strlen(count) : 4) + (digest ? strlen(digest) : 4) + 16;
	out = malloc(len);
	ck_assert_ptr_nonnull(out);
	snprintf(out, len, "%s rows, md5 %s", count ? count : "?",
	         digest ? digest : "?");
	free(count);
	free(digest);
	return out;
}

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
		char *a = table_fingerprint(&source, srcdb, tables[i]);
		char *b = table_fingerprint(&target, tgtdb, tables[i]);

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
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
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

	make_db(&source, "spd_src", NULL);
	make_db(&target, "spd_tgt", "migrator");
	pgbench_init("spd_src", "2");
	source_conninfo(src, "spd_src");
	target_conninfo(tgt, "spd_tgt");
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
	assert_pgbench_ok(&bench, bench_status);
	proc_release(&bench);
	assert_scalar(&source, "spd_src",
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

		print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
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
			print_proc("pgstream sync", &sync, st);
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
	assert_sync_exits_0(&sync);
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
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	char base[PATH_MAX];
	char spool[PATH_MAX];
	Proc sync;
	Proc bench;
	int bench_status = PROC_TIMEOUT;
	int status;
	long long bench_start;

	make_db(&source, "spk_src", NULL);
	make_db(&target, "spk_tgt", "migrator");
	pgbench_init("spk_src", "2");
	source_conninfo(src, "spk_src");
	target_conninfo(tgt, "spk_tgt");
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
			print_proc("pgstream sync", &sync, status);
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
	assert_pgbench_ok(&bench, bench_status);
	proc_release(&bench);

	cutover_ok(src, tgt);
	assert_sync_exits_0(&sync);
	proc_release(&sync);

	assert_scalar(&source, "spk_src",
	              "SELECT count(*) > 0 FROM pgbench_history", "t");
	assert_pgbench_identical("spk_src", "spk_tgt");
	ck_assert_msg(!path_exists(spool),
	              "the spool directory %s still exists after the cutover",
	              spool);
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
	suite_add_tcase(s, tc);
	return s;
}
