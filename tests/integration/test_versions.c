/*
 * tests/integration/test_versions.c -- migrations across PostgreSQL majors
 * (issue 15): an old source onto a newer target, as real migrations to Azure
 * are made.
 *
 * For each pair (PGSTREAM_VERSION_PAIRS, e.g. "11:16 13:17", else the list
 * below) both clusters are started from the majors harness
 * (cluster_init_major; `make deps` caches the binaries), the source gets a
 * schema with the traps the other suites use -- a keyless table with
 * REPLICA IDENTITY FULL, a partitioned table, identity and generated
 * columns, an enum, TOASTed values, odd names -- and then:
 *
 *   offline  sync --no-follow into one database: every row and sequence
 *            equal (compare_data);
 *   live     sync into another, changes of every kind while it streams
 *            (a row moving between partitions, UPDATE and DELETE of the
 *            keyless table, a TOASTed value replaced), cutover --freeze:
 *            cutover and sync exit 0 and every row and sequence is equal.
 *
 * A pair whose major is not cached fails (run `make deps`); none is skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/compare.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define SYNC_TIMEOUT_MS 300000
#define MAX_PAIRS 16

/* Keep within the majors install-pg-majors.sh caches by default. */
#define DEFAULT_PAIRS "11:16 13:17 14:17"

static int pairs[MAX_PAIRS][2];
static int n_pairs;

static void
parse_pairs(void)
{
	const char *env = getenv("PGSTREAM_VERSION_PAIRS");
	const char *p = env != NULL && *env != '\0' ? env : DEFAULT_PAIRS;

	n_pairs = 0;
	while (*p != '\0' && n_pairs < MAX_PAIRS)
	{
		int s, t, used;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (sscanf(p, "%d:%d%n", &s, &t, &used) != 2 || s < 11 || t < s)
		{
			fprintf(stderr, "versions: bad PGSTREAM_VERSION_PAIRS \"%s\"\n", p);
			n_pairs = 0;
			return;
		}
		pairs[n_pairs][0] = s;
		pairs[n_pairs][1] = t;
		n_pairs++;
		p += used;
	}
}

/* %s: the generated column, 12+ (a plain one on 11) */
static const char schema_fmt[] =
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');"
    "CREATE TABLE items (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " m mood NOT NULL DEFAULT 'ok', body text, twice int%s);"
    "INSERT INTO items (m, body) SELECT 'happy', repeat(md5(g::text), 200)"
    " FROM generate_series(1, 300) g;"
    "INSERT INTO items (body) SELECT 'short ' || g FROM generate_series(1, 2000) g;"
    "CREATE TABLE parted (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);"
    "CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100);"
    "CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (100) TO (200);"
    "INSERT INTO parted SELECT g, g %% 200, 'p' || g FROM generate_series(1, 3000) g;"
    "CREATE TABLE keyless (x int, y text);"
    "ALTER TABLE keyless REPLICA IDENTITY FULL;"
    "INSERT INTO keyless SELECT g %% 50, 'y' || g FROM generate_series(1, 500) g;"
    "CREATE SCHEMA \"Odd Schema\";"
    "CREATE TABLE \"Odd Schema\".\"Mixed \"\"Case\"\"\" (\"Id\" bigserial PRIMARY KEY,"
    " \"v a l\" numeric);"
    "INSERT INTO \"Odd Schema\".\"Mixed \"\"Case\"\"\" (\"v a l\")"
    " SELECT g / 7.0 FROM generate_series(1, 500) g;"
    "ANALYZE";

/* Changes of every kind, made while sync streams. */
static const char changes_sql[] =
    "INSERT INTO items (m, body) VALUES ('sad', repeat('z', 100000));"
    "UPDATE items SET body = repeat('w', 50000) WHERE id = 5;"
    "UPDATE items SET m = 'sad' WHERE id BETWEEN 100 AND 120;"
    "DELETE FROM items WHERE id BETWEEN 2000 AND 2050;"
    "UPDATE parted SET k = k + 100 WHERE k < 10;" /* moves partition */
    "DELETE FROM parted WHERE id % 97 = 0;"
    "INSERT INTO parted VALUES (5000, 150, 'new');"
    "UPDATE keyless SET y = 'changed' WHERE x = 3;"
    "DELETE FROM keyless WHERE x = 4;"
    "INSERT INTO keyless VALUES (7, 'dup'), (7, 'dup');"
    "INSERT INTO \"Odd Schema\".\"Mixed \"\"Case\"\"\" (\"v a l\") VALUES (42);";

/*
 * For `make matrix`: one line "<source>:<target> <field> <value>" per stage
 * reached, appended to $PGSTREAM_MATRIX_OUT when it is set
 * (tests/matrix.sh turns them into the table).
 */
static void
matrix_note(int smajor, int tmajor, const char *field, const char *value)
{
	const char *path = getenv("PGSTREAM_MATRIX_OUT");
	FILE *f;

	if (path == NULL || *path == '\0' || (f = fopen(path, "a")) == NULL)
		return;
	fprintf(f, "%d:%d %s %s\n", smajor, tmajor, field, value);
	fclose(f);
}

static int
run_cmd(const char *what, const char *const argv[], char **err_out)
{
	char *out = NULL;
	char *err = NULL;
	int status = proc_run(argv, NULL, SYNC_TIMEOUT_MS, &out, &err);

	itest_print_output(what, status, out, err);
	free(out);
	if (err_out != NULL)
		*err_out = err;
	else
		free(err);
	return status;
}

static void
assert_same_data(Cluster *src, Cluster *tgt, const char *tgtdb, const char *what)
{
	int ntables = 0;
	int diff = compare_data(src, "app", tgt, tgtdb, &ntables);

	ck_assert_msg(diff == 0, "%s: %d table(s) or sequence(s) differ (see above)", what,
	              diff);
	ck_assert_msg(ntables >= 6, "%s: only %d tables compared", what, ntables);
}

START_TEST(an_old_source_migrates_onto_a_newer_target)
{
	Cluster src;
	Cluster tgt;
	int smajor, tmajor;
	char s[ITEST_CONNINFO_MAX];
	char t_off[ITEST_CONNINFO_MAX];
	char t_live[ITEST_CONNINFO_MAX];
	char what[64];
	Proc sync;
	int status;

	long long t0 = proc_now_ms();
	char secs[32];

	parse_pairs();
	ck_assert_msg(_i < n_pairs, "no version pairs to run");
	smajor = pairs[_i][0];
	tmajor = pairs[_i][1];
	matrix_note(smajor, tmajor, "offline", "FAIL");
	matrix_note(smajor, tmajor, "live", "FAIL");
	matrix_note(smajor, tmajor, "compare", "FAIL");
	snprintf(what, sizeof(what), "%d -> %d", smajor, tmajor);
	fprintf(stderr, "versions: %s\n", what);
	memset(&src, 0, sizeof(src));
	memset(&tgt, 0, sizeof(tgt));
	ck_assert_msg(cluster_init_major(&src, "vsource", CLUSTER_LOGICAL, smajor),
	              "PostgreSQL %d: no cluster (run make deps)", smajor);
	ck_assert_msg(cluster_init_major(&tgt, "vtarget", 0, tmajor),
	              "PostgreSQL %d: no cluster (run make deps)", tmajor);
	ck_assert(cluster_start(&src));
	ck_assert(cluster_start(&tgt));
	/* fresh clusters: nothing to drop (DROP DATABASE ... WITH (FORCE) is 13+) */
	ck_assert(cluster_psql(&src, "postgres", "CREATE DATABASE app"));
	ck_assert(cluster_psql(&tgt, "postgres", "CREATE DATABASE app_offline"));
	ck_assert(cluster_psql(&tgt, "postgres", "CREATE DATABASE app_live"));
	{
		char sql[sizeof(schema_fmt) + 64];

		snprintf(sql, sizeof(sql), schema_fmt,
		         smajor >= 12 ? " GENERATED ALWAYS AS (id * 2) STORED" : "");
		ck_assert(cluster_psql(&src, "app", sql));
	}
	itest_conninfo(s, &src, "app");
	itest_conninfo(t_off, &tgt, "app_offline");
	itest_conninfo(t_live, &tgt, "app_live");

	/* offline */
	{
		const char *const argv[] = {itest_pgstream_bin(), "sync", "--source", s, "--target",
		                            t_off, "--no-follow", "--quiet", "--slot", "v_off",
		                            "--no-key-tables=full", NULL};

		ck_assert_int_eq(run_cmd("sync --no-follow", argv, NULL), 0);
		matrix_note(smajor, tmajor, "offline", "ok");
		assert_same_data(&src, &tgt, "app_offline", what);
	}

	/* live, with changes while streaming, through cutover */
	{
		const char *const argv[] = {itest_pgstream_bin(), "sync", "--source", s, "--target",
		                            t_live, "--quiet", "--slot", "v_live",
		                            "--publication", "v_live", "--no-key-tables=full", NULL};
		const char *const cut[] = {itest_pgstream_bin(), "cutover", "--source", s,
		                           "--target", t_live, "--freeze", "--timeout", "120",
		                           NULL};

		ck_assert(proc_spawn(&sync, argv, NULL));
		ck_assert_msg(cluster_wait_for(&tgt, "app_live",
		                               "SELECT phase = 'streaming' FROM pgstream.migration",
		                               SYNC_TIMEOUT_MS),
		              "%s: sync never reached streaming", what);
		ck_assert(cluster_psql(&src, "app", changes_sql));
		status = run_cmd("cutover --freeze", cut, NULL);
		ck_assert_msg(status == 0, "%s: cutover exited %d", what, status);
		status = proc_wait(&sync, SYNC_TIMEOUT_MS);
		itest_print_proc("sync", &sync, status);
		proc_release(&sync);
		ck_assert_msg(status == 0, "%s: sync exited %d after the cutover", what, status);
		matrix_note(smajor, tmajor, "live", "ok");
		assert_same_data(&src, &tgt, "app_live", what);
		matrix_note(smajor, tmajor, "compare", "equal");
		itest_assert_scalar(&src, "app", "SELECT count(*) FROM pg_replication_slots", "0");
	}
	cluster_destroy(&src);
	cluster_destroy(&tgt);
	snprintf(secs, sizeof(secs), "%.0f", (double) (proc_now_ms() - t0) / 1000.0);
	matrix_note(smajor, tmajor, "seconds", secs);
}
END_TEST

/* A target older than the source: assess (and so sync) refuses, exit 2. */
START_TEST(a_target_older_than_the_source_is_refused)
{
	Cluster src;
	Cluster tgt;
	char s[ITEST_CONNINFO_MAX];
	char t[ITEST_CONNINFO_MAX];
	char *err = NULL;

	memset(&src, 0, sizeof(src));
	memset(&tgt, 0, sizeof(tgt));
	ck_assert_msg(cluster_init_major(&src, "vnew", CLUSTER_LOGICAL, 16),
	              "PostgreSQL 16: no cluster (run make deps)");
	ck_assert(cluster_init(&tgt, "vold", 0));
	ck_assert(cluster_start(&src));
	ck_assert(cluster_start(&tgt));
	ck_assert(cluster_psql(&src, "postgres", "CREATE DATABASE app"));
	ck_assert(cluster_psql(&tgt, "postgres", "CREATE DATABASE app"));
	itest_conninfo(s, &src, "app");
	itest_conninfo(t, &tgt, "app");
	{
		const char *const argv[] = {itest_pgstream_bin(), "sync", "--source", s, "--target",
		                            t, "--no-follow", "--quiet", NULL};

		ck_assert_int_eq(run_cmd("sync", argv, &err), 2);
	}
	ck_assert_msg(strstr(err, "target major version 15 is older than source major "
	                          "version 16") != NULL, "%s", err);
	free(err);
	itest_assert_scalar(&src, "postgres", "SELECT count(*) FROM pg_replication_slots", "0");
	cluster_destroy(&src);
	cluster_destroy(&tgt);
}
END_TEST

/*
 * The pg_dump first found (pg_config's, Debian's 15 here) is older than a
 * 16 source, but a newer client is installed: assess (and so sync) takes
 * that one instead of refusing.  The installed 16 is a stand-in under
 * $PGSTREAM_PG_ROOT that only answers --version, so only assess runs.
 */
START_TEST(a_newer_installed_pg_dump_is_found_for_a_newer_source)
{
	Cluster src;
	Cluster tgt;
	char s[ITEST_CONNINFO_MAX];
	char t[ITEST_CONNINFO_MAX];
	char root[] = "/tmp/pgstream-pgroot-XXXXXX";
	char dir[128];
	char path[160];
	char env_root[192];
	char *out = NULL;
	char *err = NULL;
	FILE *f;
	int status;

	memset(&src, 0, sizeof(src));
	memset(&tgt, 0, sizeof(tgt));
	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/16", root);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/16/bin", root);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/pg_dump", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("#!/bin/sh\necho 'pg_dump (PostgreSQL) 16.4'\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0755), 0);
	ck_assert_msg(cluster_init_major(&src, "vsrc16", CLUSTER_LOGICAL, 16),
	              "PostgreSQL 16: no cluster (run make deps)");
	ck_assert_msg(cluster_init_major(&tgt, "vtgt17", 0, 17),
	              "PostgreSQL 17: no cluster (run make deps)");
	ck_assert(cluster_start(&src));
	ck_assert(cluster_start(&tgt));
	ck_assert(cluster_psql(&src, "postgres", "CREATE DATABASE app"));
	ck_assert(cluster_psql(&tgt, "postgres", "CREATE DATABASE app"));
	ck_assert(cluster_psql(&src, "app", "CREATE TABLE a (id int PRIMARY KEY)"));
	itest_conninfo(s, &src, "app");
	itest_conninfo(t, &tgt, "app");
	snprintf(env_root, sizeof(env_root), "PGSTREAM_PG_ROOT=%s", root);
	{
		const char *const argv[] = {itest_pgstream_bin(), "assess", "--source", s,
		                            "--target", t, NULL};
		const char *const env[] = {env_root, NULL};

		status = proc_run(argv, env, SYNC_TIMEOUT_MS, &out, &err);
	}
	itest_print_output("assess", status, out, err);
	ck_assert_int_eq(status, 0);
	ck_assert_msg(strstr(err, "is older than the source (PostgreSQL 16): using the "
	                          "client in ") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "/16/bin instead") != NULL, "%s", err);
	free(out);
	free(err);
	unlink(path);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/16", root);
	rmdir(dir);
	rmdir(root);
	cluster_destroy(&src);
	cluster_destroy(&tgt);
}
END_TEST

Suite *
versions_suite(void)
{
	Suite *s = suite_create("versions");
	TCase *tc = tcase_create("versions");

	parse_pairs();
	tcase_set_timeout(tc, 900);
	tcase_add_loop_test(tc, an_old_source_migrates_onto_a_newer_target, 0,
	                    n_pairs > 0 ? n_pairs : 1);
	tcase_add_test(tc, a_target_older_than_the_source_is_refused);
	tcase_add_test(tc, a_newer_installed_pg_dump_is_found_for_a_newer_source);
	suite_add_tcase(s, tc);
	return s;
}
