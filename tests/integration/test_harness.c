/*
 * tests/integration/test_harness.c -- proves the integration harness itself:
 * clusters start on distinct ports, SQL and replication connections work,
 * table digests compare data, stop/start/restart behave, and subprocesses
 * run without a shell with their output, status and deadline handled.
 *
 * The clusters are made once per TCase in an unchecked fixture (in Check's
 * parent process); each test runs in its own forked child.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/proc.h"

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

/*
 * Expected failures print correct but alarming errors; keep them out of the
 * log.  Only ever wrapped around a single call, never around an assertion.
 */
static int saved_stderr = -1;

static void
stderr_off(void)
{
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	if (devnull >= 0)
	{
		dup2(devnull, STDERR_FILENO);
		close(devnull);
	}
}

static void
stderr_on(void)
{
	fflush(stderr);
	if (saved_stderr >= 0)
	{
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
	}
	saved_stderr = -1;
}

static bool
query_quietly(const Cluster *c, const char *db, const char *sql, char **value)
{
	bool ok;

	stderr_off();
	ok = cluster_query(c, db, sql, value);
	stderr_on();
	return ok;
}

static bool
psql_quietly(const Cluster *c, const char *db, const char *sql)
{
	bool ok;

	stderr_off();
	ok = cluster_psql(c, db, sql);
	stderr_on();
	return ok;
}

static bool
wait_for_quietly(const Cluster *c, const char *sql, int deadline_ms)
{
	bool ok;

	stderr_off();
	ok = cluster_wait_for(c, NULL, sql, deadline_ms);
	stderr_on();
	return ok;
}

/* Assert a scalar query result, freeing it. */
static void
assert_scalar(const Cluster *c, const char *sql, const char *expected)
{
	char *value = cluster_query_scalar(c, NULL, sql);

	ck_assert_msg(value != NULL, "no value for: %s", sql);
	ck_assert_str_eq(value, expected);
	free(value);
}

START_TEST(clusters_start_on_distinct_ports)
{
	char port[16];

	ck_assert_int_gt(source.port, 0);
	ck_assert_int_gt(target.port, 0);
	ck_assert_int_ne(source.port, target.port);
	ck_assert_str_ne(source.basedir, target.basedir);
	snprintf(port, sizeof(port), "%d", source.port);
	assert_scalar(&source, "SHOW port", port);
	snprintf(port, sizeof(port), "%d", target.port);
	assert_scalar(&target, "SHOW port", port);
	assert_scalar(&source, "SHOW wal_level", "logical");
	assert_scalar(&target, "SHOW wal_level", "replica");
	assert_scalar(&source, "SHOW fsync", "off");
	assert_scalar(&source, "SHOW listen_addresses", "127.0.0.1");
	ck_assert(PQping(cluster_conninfo(&source, "postgres")) == PQPING_OK);
}
END_TEST

START_TEST(sql_runs_and_scalars_distinguish_null_from_error)
{
	char *value = (char *) "sentinel";

	ck_assert(cluster_psql(&source, "postgres",
	                       "CREATE TABLE sql_t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO sql_t VALUES (1, 'a'), (2, NULL);"
	                       "INSERT INTO sql_t VALUES (3, 'c')"));
	assert_scalar(&source, "SELECT count(*) FROM sql_t", "3");
	ck_assert(cluster_query(&source, NULL, "SELECT v FROM sql_t WHERE id = 2",
	                        &value));
	ck_assert_ptr_null(value);
	ck_assert(
	    !query_quietly(&source, NULL, "SELECT * FROM no_such_table", &value));
	ck_assert_ptr_null(value);
	ck_assert(!query_quietly(&source, NULL, "SELECT id FROM sql_t", &value));
	ck_assert(
	    !psql_quietly(&source, NULL, "INSERT INTO sql_t VALUES (1, 'x')"));
	assert_scalar(&source, "SELECT count(*) FROM sql_t", "3");
	ck_assert(!psql_quietly(&source, "no_such_db", "SELECT 1"));
}
END_TEST

START_TEST(replication_connection_runs_identify_system)
{
	PGconn *conn = cluster_connect(&source, "postgres", "replication=database");
	PGresult *res;
	char *sysid;

	ck_assert_ptr_nonnull(conn);
	res = PQexec(conn, "IDENTIFY_SYSTEM");
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s",
	              PQerrorMessage(conn));
	ck_assert_int_eq(PQntuples(res), 1);
	ck_assert_int_eq(PQnfields(res), 4);
	ck_assert_str_eq(PQfname(res, 3), "dbname");
	ck_assert_str_eq(PQgetvalue(res, 0, 3), "postgres");
	sysid = cluster_query_scalar(&source, NULL,
	                             "SELECT system_identifier::text "
	                             "FROM pg_control_system()");
	ck_assert_ptr_nonnull(sysid);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), sysid);
	free(sysid);
	PQclear(res);
	PQfinish(conn);
}
END_TEST

START_TEST(digest_is_equal_for_equal_data_only)
{
	static const char ddl[] = "CREATE TABLE d (id int PRIMARY KEY, v text)";
	char *a;
	char *b;

	ck_assert(cluster_psql(&source, NULL, ddl));
	ck_assert(cluster_psql(&target, NULL, ddl));
	a = cluster_table_digest(&source, NULL, "public.d", "id");
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a, "d41d8cd98f00b204e9800998ecf8427e"); /* md5('') */
	free(a);
	ck_assert(cluster_psql(
	    &source, NULL, "INSERT INTO d VALUES (1, 'x'), (2, NULL), (3, 'z')"));
	ck_assert(cluster_psql(
	    &target, NULL, "INSERT INTO d VALUES (3, 'z'), (1, 'x'), (2, NULL)"));
	a = cluster_table_digest(&source, NULL, "public.d", "id");
	b = cluster_table_digest(&target, NULL, "public.d", "id");
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(a, b);
	free(b);
	ck_assert(cluster_psql(&target, NULL, "UPDATE d SET v = '' WHERE id = 2"));
	b = cluster_table_digest(&target, NULL, "public.d", "id");
	ck_assert_ptr_nonnull(b);
	ck_assert_str_ne(a, b);
	free(a);
	free(b);
}
END_TEST

START_TEST(wait_for_polls_until_true_or_deadline)
{
	char *when = cluster_query_scalar(&source, NULL,
	                                  "SELECT (clock_timestamp() + "
	                                  "interval '300 ms')::text");
	char sql[256];
	long long start = proc_now_ms();

	ck_assert_ptr_nonnull(when);
	snprintf(sql, sizeof(sql), "SELECT clock_timestamp() > '%s'::timestamptz",
	         when);
	free(when);
	ck_assert(cluster_wait_for(&source, NULL, sql, 30000));
	ck_assert_int_ge(proc_now_ms() - start, 250);
	start = proc_now_ms();
	ck_assert(!wait_for_quietly(&source, "SELECT false", 200));
	ck_assert_int_ge(proc_now_ms() - start, 200);
	ck_assert(!wait_for_quietly(&source, "SELECT NULL::bool", 100));
}
END_TEST

START_TEST(settings_apply_after_reload)
{
	ck_assert(cluster_set(&target, "work_mem = '7MB'"));
	ck_assert(cluster_reload(&target));
	ck_assert(cluster_wait_for(
	    &target, NULL, "SELECT current_setting('work_mem') = '7MB'", 30000));
}
END_TEST

START_TEST(stop_start_and_restart_keep_data)
{
	pid_t postmaster;

	ck_assert(cluster_psql(&target, NULL,
	                       "CREATE TABLE keep (id int); "
	                       "INSERT INTO keep VALUES (42)"));
	ck_assert_int_gt(target.postmaster_pid, 0);
	ck_assert(cluster_stop(&target, "fast"));
	ck_assert(!target.running);
	ck_assert(PQping(cluster_conninfo(&target, NULL)) == PQPING_NO_RESPONSE);
	ck_assert(cluster_stop(&target, "fast")); /* already stopped: fine */
	ck_assert(cluster_start(&target));
	assert_scalar(&target, "SELECT id::text FROM keep", "42");
	postmaster = target.postmaster_pid;
	ck_assert(cluster_restart(&target));
	ck_assert(target.running);
	ck_assert_int_gt(target.postmaster_pid, 0);
	ck_assert_int_ne(target.postmaster_pid, postmaster);
	assert_scalar(&target, "SELECT id::text FROM keep", "42");
	/* Crash recovery after an immediate stop; the server comes back. */
	ck_assert(cluster_stop(&target, "immediate"));
	ck_assert(cluster_start(&target));
	assert_scalar(&target, "SELECT pg_is_in_recovery()::text", "false");
}
END_TEST

START_TEST(proc_run_captures_output_and_status)
{
	const char *const echo[] = {"echo", "hello", NULL};
	const char *const env[] = {"env", NULL};
	const char *const extra[] = {"PGSTREAM_PROC_TEST=42", NULL};
	const char *const ls[] = {"ls", "/nonexistent-pgstream", NULL};
	const char *const cat[] = {"cat", NULL};
	const char *const missing[] = {"no-such-command-pgstream", NULL};
	char *out = NULL;
	char *err = NULL;
	int rc;

	ck_assert_int_eq(proc_run(echo, NULL, 10000, &out, &err), 0);
	ck_assert_str_eq(out, "hello\n");
	ck_assert_str_eq(err, "");
	free(out);
	free(err);
	ck_assert_int_eq(proc_run(env, extra, 10000, &out, NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "\nPGSTREAM_PROC_TEST=42\n"));
	free(out);
	ck_assert_int_eq(proc_run(ls, NULL, 10000, NULL, &err), 2);
	ck_assert_ptr_nonnull(strstr(err, "nonexistent-pgstream"));
	free(err);
	ck_assert_int_eq(proc_run(cat, NULL, 10000, &out, NULL), 0);
	ck_assert_str_eq(out, "");
	free(out);
	stderr_off();
	rc = proc_run(missing, NULL, 10000, &out, &err);
	stderr_on();
	ck_assert_int_eq(rc, PROC_ERROR);
	free(out);
	free(err);
}
END_TEST

START_TEST(proc_run_handles_large_output_and_deadline)
{
	const char *const seq[] = {"seq", "1", "200000", NULL};
	const char *const sleep30[] = {"sleep", "30", NULL};
	char *out = NULL;
	long long start;
	size_t len;

	ck_assert_int_eq(proc_run(seq, NULL, 60000, &out, NULL), 0);
	len = strlen(out);
	ck_assert_uint_eq(len, 1288895); /* bytes of `seq 1 200000` */
	ck_assert_str_eq(out + len - 8, "\n200000\n");
	free(out);
	start = proc_now_ms();
	ck_assert_int_eq(proc_run(sleep30, NULL, 300, &out, NULL), PROC_TIMEOUT);
	ck_assert_int_lt(proc_now_ms() - start, 10000);
	free(out);
}
END_TEST

START_TEST(proc_spawn_can_be_signalled_and_waited_for)
{
	const char *const sleep30[] = {"sleep", "30", NULL};
	const char *const echo[] = {"echo", "spawned", NULL};
	Proc p;
	char *out;

	ck_assert(proc_spawn(&p, sleep30, NULL));
	ck_assert_int_eq(proc_wait(&p, 50), PROC_TIMEOUT);
	ck_assert(proc_kill(&p, SIGKILL));
	ck_assert_int_eq(proc_wait(&p, 10000), 128 + SIGKILL);
	ck_assert(!proc_kill(&p, SIGKILL));
	proc_release(&p);
	ck_assert(proc_spawn(&p, echo, NULL));
	ck_assert_int_eq(proc_wait(&p, 10000), 0);
	out = proc_stdout(&p);
	ck_assert_str_eq(out, "spawned\n");
	free(out);
	proc_release(&p);
}
END_TEST

Suite *
harness_suite(void)
{
	Suite *s = suite_create("harness");
	TCase *tc = tcase_create("clusters");
	TCase *proc = tcase_create("proc");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, clusters_start_on_distinct_ports);
	tcase_add_test(tc, sql_runs_and_scalars_distinguish_null_from_error);
	tcase_add_test(tc, replication_connection_runs_identify_system);
	tcase_add_test(tc, digest_is_equal_for_equal_data_only);
	tcase_add_test(tc, wait_for_polls_until_true_or_deadline);
	tcase_add_test(tc, settings_apply_after_reload);
	tcase_add_test(tc, stop_start_and_restart_keep_data);
	suite_add_tcase(s, tc);

	tcase_set_timeout(proc, 120);
	tcase_add_test(proc, proc_run_captures_output_and_status);
	tcase_add_test(proc, proc_run_handles_large_output_and_deadline);
	tcase_add_test(proc, proc_spawn_can_be_signalled_and_waited_for);
	suite_add_tcase(s, proc);
	return s;
}
