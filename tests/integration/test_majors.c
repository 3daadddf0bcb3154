/*
 * tests/integration/test_majors.c -- the harness starts a logical-replication
 * cluster of every PostgreSQL major the cross-version tests use.
 *
 * For each major (PGSTREAM_PG_MAJORS, else the list below, which is
 * install-pg-majors.sh's default): cluster_init_major() with CLUSTER_LOGICAL,
 * start, the server says that major in server_version_num, wal_level is
 * logical, cluster_set_since() wrote a 13+ setting only where it exists, a
 * pgoutput slot is created, decodes a committed insert of a
 * published table and is dropped, and a replication connection answers
 * IDENTIFY_SYSTEM.  A major that is neither installed nor cached fails its
 * test (run `make deps`); it is never skipped.
 *
 * The cache rules themselves (a directory without the completion marker is
 * never used; a missing major fails with what to run) are checked on an
 * empty cache in a temporary directory.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/proc.h"

/* Keep in step with MAJORS in tests/support/install-pg-majors.sh. */
#define DEFAULT_MAJORS "11 12 13 14 15 16 17"
#define MAX_MAJORS 16

static int majors[MAX_MAJORS];
static int n_majors;

/* PGSTREAM_PG_MAJORS (or the default) as numbers; none on garbage, which
 * majors_list_is_valid then fails on. */
static void
parse_majors(void)
{
	const char *env = getenv("PGSTREAM_PG_MAJORS");
	const char *p = env != NULL && *env != '\0' ? env : DEFAULT_MAJORS;

	n_majors = 0;
	while (*p != '\0' && n_majors < MAX_MAJORS)
	{
		char *end;
		long m;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		m = strtol(p, &end, 10);
		if (end == p || m < 11 || m > 99 || (*end != ' ' && *end != '\0'))
		{
			fprintf(stderr, "majors: bad PGSTREAM_PG_MAJORS \"%s\"\n", env);
			n_majors = 0;
			return;
		}
		majors[n_majors++] = (int) m;
		p = end;
	}
}

static void
assert_query(const Cluster *c, const char *sql, const char *expected)
{
	char *value = NULL;

	ck_assert_msg(cluster_query(c, "postgres", sql, &value),
	              "PostgreSQL %d: query failed: %s", c->major, sql);
	ck_assert_msg(value != NULL && strcmp(value, expected) == 0,
	              "PostgreSQL %d: %s gave \"%s\", expected \"%s\"", c->major,
	              sql, value ? value : "NULL", expected);
	free(value);
}

START_TEST(majors_list_is_valid)
{
	ck_assert_msg(n_majors > 0,
	              "no major to test: PGSTREAM_PG_MAJORS=\"%s\" is not a "
	              "space-separated list of majors 11-99",
	              getenv("PGSTREAM_PG_MAJORS"));
}
END_TEST

START_TEST(logical_cluster_of_each_major)
{
	static Cluster c;
	int major = majors[_i];
	char bindir[PATH_MAX];
	char name[32];
	char *version = NULL;
	long long started = proc_now_ms();
	long long up;
	PGconn *repl;
	PGresult *res;

	ck_assert_msg(cluster_major_bindir(major, bindir, sizeof(bindir)),
	              "PostgreSQL %d is neither installed nor cached: run `make "
	              "deps` (tests/support/install-pg-majors.sh)",
	              major);
	snprintf(name, sizeof(name), "major%d", major);
	ck_assert(cluster_init_major(&c, name, CLUSTER_LOGICAL, major));
	ck_assert_int_eq(c.major, major);
	ck_assert_str_eq(c.bindir, bindir);
	/* 13+ only: on 11 and 12 the server would refuse to start with it. */
	ck_assert(cluster_set_since(&c, 13, "logical_decoding_work_mem = 64kB"));
	ck_assert(cluster_start(&c));
	up = proc_now_ms();

	/* The server itself, not just the data directory, is that major. */
	ck_assert(
	    cluster_query(&c, "postgres", "SHOW server_version_num", &version));
	ck_assert_ptr_nonnull(version);
	ck_assert_msg(strtol(version, NULL, 10) / 10000 == major,
	              "asked for PostgreSQL %d, server_version_num is %s", major,
	              version);
	free(version);
	assert_query(&c, "SHOW wal_level", "logical");
	assert_query(&c,
	             "SELECT count(*) FROM pg_settings "
	             "WHERE name = 'logical_decoding_work_mem' AND setting = '64'",
	             major >= 13 ? "1" : "0");

	/* pgoutput loads and decodes a published insert. */
	ck_assert(cluster_psql(&c, "postgres",
	                       "CREATE TABLE \"t\" (\"id\" int PRIMARY KEY);"
	                       "CREATE PUBLICATION \"p\" FOR TABLE \"t\""));
	assert_query(&c,
	             "SELECT slot_name FROM "
	             "pg_create_logical_replication_slot('s', 'pgoutput')",
	             "s");
	/*
	 * Decoding through SQL stops at the flushed WAL, and the harness runs
	 * with synchronous_commit off: commit this one synchronously.
	 */
	ck_assert(cluster_psql(&c, "postgres",
	                       "SET synchronous_commit = on;"
	                       "INSERT INTO \"t\" VALUES (1)"));
	/* BEGIN, RELATION, INSERT, COMMIT: protocol 1 is on every major. */
	assert_query(&c,
	             "SELECT count(*) FROM pg_logical_slot_peek_binary_changes("
	             "'s', NULL, NULL, 'proto_version', '1', "
	             "'publication_names', 'p')",
	             "4");
	assert_query(&c,
	             "SELECT count(*) FROM pg_logical_slot_peek_binary_changes("
	             "'s', NULL, NULL, 'proto_version', '1', "
	             "'publication_names', 'p') WHERE substr(data, 1, 1) = 'I'",
	             "1");

	/* The walsender answers a replication connection. */
	repl = cluster_connect(&c, "postgres", "replication=database");
	ck_assert_ptr_nonnull(repl);
	res = PQexec(repl, "IDENTIFY_SYSTEM");
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1,
	              "PostgreSQL %d: IDENTIFY_SYSTEM: %s", major,
	              PQerrorMessage(repl));
	PQclear(res);
	PQfinish(repl);

	assert_query(&c,
	             "SELECT count(*) FROM (SELECT "
	             "pg_drop_replication_slot('s')) d",
	             "1");
	assert_query(&c, "SELECT count(*) FROM pg_replication_slots", "0");
	fprintf(stderr,
	        "majors: PostgreSQL %d from %s: initdb+start %lld ms, "
	        "all %lld ms\n",
	        major, bindir, up - started, proc_now_ms() - started);
	cluster_destroy(&c);
}
END_TEST

/* Redirect stderr to a file for one call, to check the message it prints. */
static char *
stderr_of_init_major(Cluster *c, int major, bool *ok)
{
	char path[] = "/tmp/pgstream-majors-stderr-XXXXXX";
	int fd = mkstemp(path);
	int saved;
	char *text;

	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	*ok = cluster_init_major(c, "missing", CLUSTER_LOGICAL, major);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	text = proc_read_file(path);
	unlink(path);
	return text;
}

/* A made-up major, so Debian's /usr/lib/postgresql never has it. */
#define FAKE_MAJOR 97

START_TEST(cache_without_marker_is_not_used)
{
	static Cluster c;
	char cache[] = "/tmp/pgstream-majors-cache-XXXXXX";
	char path[PATH_MAX];
	char bindir[PATH_MAX];
	char *message;
	bool ok = true;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(cache));
	ck_assert_int_eq(setenv("PGSTREAM_PG_CACHE", cache, 1), 0);

	/* Empty cache: no such major, and init says what to run. */
	ck_assert(!cluster_major_bindir(FAKE_MAJOR, bindir, sizeof(bindir)));
	message = stderr_of_init_major(&c, FAKE_MAJOR, &ok);
	ck_assert(!ok);
	ck_assert_ptr_nonnull(message);
	ck_assert_msg(strstr(message, "no PostgreSQL 97 server binaries") &&
	                  strstr(message, "make deps") &&
	                  strstr(message, "PGSTREAM_PG_MAJORS=\"97\""),
	              "unexpected message: %s", message);
	free(message);
	cluster_destroy(&c);

	/* An unpacked bin/initdb without the marker: a half download. */
	snprintf(path, sizeof(path), "%s/%d", cache, FAKE_MAJOR);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/%d/bin", cache, FAKE_MAJOR);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/%d/bin/initdb", cache, FAKE_MAJOR);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0755);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert(!cluster_major_bindir(FAKE_MAJOR, bindir, sizeof(bindir)));

	/* With the marker it is the major's bin directory. */
	snprintf(path, sizeof(path), "%s/%d/.pgstream-complete", cache, FAKE_MAJOR);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert(cluster_major_bindir(FAKE_MAJOR, bindir, sizeof(bindir)));
	snprintf(path, sizeof(path), "%s/%d/bin", cache, FAKE_MAJOR);
	ck_assert_str_eq(bindir, path);

	{
		const char *const argv[] = {"rm", "-rf", cache, NULL};

		ck_assert_int_eq(proc_run(argv, NULL, 10000, NULL, NULL), 0);
	}
}
END_TEST

Suite *
majors_suite(void)
{
	Suite *s = suite_create("majors");
	TCase *tc = tcase_create("majors");
	TCase *cache = tcase_create("cache");

	parse_majors();
	/* Each major: initdb, start, a few queries, stop; seconds, not more. */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, majors_list_is_valid);
	tcase_add_loop_test(tc, logical_cluster_of_each_major, 0, n_majors);
	suite_add_tcase(s, tc);
	tcase_set_timeout(cache, 30);
	tcase_add_test(cache, cache_without_marker_is_not_used);
	suite_add_tcase(s, cache);
	return s;
}
