/*
 * tests/integration/test_badinput.c -- bad input gets one clear line and
 * leaves nothing behind; passwords never show.
 *
 * Every case runs `pgstream sync --no-follow` and `pgstream assess` and
 * checks:
 *   - the documented exit code (3 usage, 4 connect, 2 blocking; sync's
 *     "same database" is a usage error, 3);
 *   - one line of stderr that says what is wrong and, in the same line, how
 *     to fix it;
 *   - no slot, publication or pgstream schema was left on either server
 *     (a slot or publication that existed before is still there, alone).
 *
 *   badinput   malformed connection strings (with and without a password),
 *              a closed port, an address nothing answers (TEST-NET-1
 *              192.0.2.1 with connect_timeout=2), a wrong password (SCRAM,
 *              written into pg_hba.conf by the test), a missing database, a
 *              login without REPLICATION, source = target, a slot or a
 *              publication name already taken, a non-empty target
 *   security   sync and status with password=... in the connection string
 *              over SCRAM: the password is in no output, and no process but
 *              pgstream itself (whose argv the user wrote) shows it
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/proc.h"

#define RUN_TIMEOUT_MS 120000
#define CONNINFO_MAX (PATH_MAX + 256)
#define PASSWORD "Pw-7d1e;'q x"         /* quotes, blank, ';' */
#define PASSWORD_CONNINFO "'Pw-7d1e;\\'q x'" /* as a quoted libpq value */
#define WRONG_PASSWORD "wrong-4c2f"

static Cluster source;
static Cluster target;

/* pg_hba.conf: the harness superuser keeps trust, everyone else on TCP
 * needs a SCRAM password. */
static const char hba_scram[] =
    "local all all trust\n"
    "host all postgres 127.0.0.1/32 trust\n"
    "host all all 127.0.0.1/32 scram-sha-256\n";

static void
write_hba(const Cluster *c)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/pg_hba.conf", c->datadir);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "cannot write %s", path);
	fputs(hba_scram, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "target", 0));
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
	write_hba(&source);
	write_hba(&target);
	ck_assert(cluster_reload(&source));
	ck_assert(cluster_reload(&target));
	ck_assert(cluster_psql(&source, "postgres",
	                       "SET password_encryption = 'scram-sha-256';"
	                       "DROP ROLE IF EXISTS mover;"
	                       "CREATE ROLE mover LOGIN REPLICATION SUPERUSER"
	                       " PASSWORD 'Pw-7d1e;''q x';"
	                       "DROP ROLE IF EXISTS norepl;"
	                       "CREATE ROLE norepl LOGIN PASSWORD 'norepl-pw';"));
	ck_assert(cluster_psql(&target, "postgres",
	                       "SET password_encryption = 'scram-sha-256';"
	                       "DROP ROLE IF EXISTS mover;"
	                       "CREATE ROLE mover LOGIN SUPERUSER"
	                       " PASSWORD 'Pw-7d1e;''q x';"));
}

static void
clusters_teardown(void)
{
	cluster_destroy(&source);
	cluster_destroy(&target);
}

/* ---- helpers ---- */

static const char *
pgstream_bin(void)
{
	const char *bin = getenv("PGSTREAM_BIN");

	ck_assert_msg(bin != NULL && *bin != '\0', "PGSTREAM_BIN is not set");
	return bin;
}

static void
make_db(const Cluster *c, const char *name)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	ck_assert(cluster_psql(c, "postgres", sql));
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	ck_assert(cluster_psql(c, "postgres", sql));
}

/* Source database with a table, and an empty target database. */
static void
make_pair(const char *srcdb, const char *tgtdb)
{
	make_db(&source, srcdb);
	make_db(&target, tgtdb);
	ck_assert(cluster_psql(&source, srcdb,
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t SELECT i, 'v' || i"
	                       " FROM generate_series(1, 100) i"));
}

/* Unix-socket conninfo (trust) for a database. */
static void
socket_conninfo(char *buf, const Cluster *c, const char *dbname)
{
	snprintf(buf, CONNINFO_MAX, "%s", cluster_conninfo(c, dbname));
}

/* TCP conninfo (SCRAM for everyone but postgres). */
static void
tcp_conninfo(char *buf, const Cluster *c, const char *dbname, const char *user,
             const char *password)
{
	snprintf(buf, CONNINFO_MAX,
	         "host=127.0.0.1 port=%d dbname=%s user=%s%s%s connect_timeout=10",
	         c->port, dbname, user, password ? " password=" : "",
	         password ? password : "");
}

typedef struct Outcome
{
	int status;
	char *out;
	char *err;
} Outcome;

static void
outcome_free(Outcome *o)
{
	free(o->out);
	free(o->err);
	memset(o, 0, sizeof(*o));
}

static Outcome
run(const char *const argv[])
{
	Outcome o = {0, NULL, NULL};

	o.status = proc_run(argv, NULL, RUN_TIMEOUT_MS, &o.out, &o.err);
	if (o.out == NULL)
		o.out = strdup("");
	if (o.err == NULL)
		o.err = strdup("");
	return o;
}

static Outcome
run_sync(const char *src, const char *tgt, const char *slot, bool follow)
{
	const char *argv[] = {pgstream_bin(), "sync", "--source", src, "--target",
	                      tgt, "--slot", slot, "--quiet",
	                      follow ? NULL : "--no-follow", NULL};

	return run(argv);
}

static Outcome
run_assess(const char *src, const char *tgt, const char *slot)
{
	const char *argv[] = {pgstream_bin(), "assess", "--source", src,
	                      "--target", tgt, "--slot", slot, NULL};

	return run(argv);
}

/*
 * Exactly one line of stderr holds every needle (what is wrong, and how to
 * fix it), and stderr ends with a newline.
 */
static void
assert_one_clear_line(const char *what, const Outcome *o, int status,
                      const char *const needles[])
{
	int matching = 0;
	const char *line = o->err;

	ck_assert_msg(o->status == status, "%s: exit %d, expected %d; stderr:\n%s",
	              what, o->status, status, o->err);
	while (*line)
	{
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t) (end - line) : strlen(line);
		char *copy = strndup(line, len);
		bool all = true;

		for (int i = 0; needles[i] != NULL; i++)
			all = all && strstr(copy, needles[i]) != NULL;
		matching += all;
		free(copy);
		line += len + (end ? 1 : 0);
	}
	ck_assert_msg(matching == 1,
	              "%s: %d stderr lines hold all of the expected words "
	              "(first: \"%s\"); stderr:\n%s",
	              what, matching, needles[0], o->err);
}

static void
assert_absent(const char *what, const Outcome *o, const char *secret)
{
	ck_assert_msg(strstr(o->out, secret) == NULL && strstr(o->err, secret) == NULL,
	              "%s: \"%s\" appears in the output:\n%s\n%s", what, secret,
	              o->out, o->err);
}

static void
assert_count(const Cluster *c, const char *dbname, const char *sql,
             const char *expected)
{
	char *v = NULL;

	ck_assert_msg(cluster_query(c, dbname, sql, &v), "query failed: %s", sql);
	ck_assert_msg(v != NULL && strcmp(v, expected) == 0,
	              "%s on %s/%s: %s, expected %s", sql, c->name, dbname,
	              v ? v : "NULL", expected);
	free(v);
}

/*
 * Nothing of ours on either server: no slot, no publication, no pgstream
 * schema, other than the slot/publication named in keep (which must be there
 * alone).
 */
static void
assert_nothing_left(const char *srcdb, const char *tgtdb, const char *keep_slot,
                    const char *keep_pub)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_replication_slots WHERE slot_name <> '%s'",
	         keep_slot ? keep_slot : "");
	assert_count(&source, "postgres", sql, "0");
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_publication WHERE pubname <> '%s'",
	         keep_pub ? keep_pub : "");
	if (srcdb != NULL)
	{
		assert_count(&source, srcdb, sql, "0");
		assert_count(&source, srcdb,
		             "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'",
		             "0");
	}
	if (tgtdb != NULL)
	{
		assert_count(&target, tgtdb,
		             "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'",
		             "0");
		assert_count(&target, tgtdb,
		             "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
		             " ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
		             " AND n.nspname = 'public'",
		             "0");
	}
}

/* Both commands, same expectations. */
static void
expect_both(const char *src, const char *tgt, int sync_status,
            int assess_status, const char *const sync_needles[],
            const char *const assess_needles[], const char *secret)
{
	Outcome o = run_sync(src, tgt, "bad_slot", false);

	assert_one_clear_line("sync", &o, sync_status, sync_needles);
	if (secret != NULL)
		assert_absent("sync", &o, secret);
	outcome_free(&o);
	o = run_assess(src, tgt, "bad_slot");
	assert_one_clear_line("assess", &o, assess_status, assess_needles);
	if (secret != NULL)
		assert_absent("assess", &o, secret);
	outcome_free(&o);
}

/* ---- cases ---- */

START_TEST(malformed_connection_strings_are_usage_errors)
{
	char tgt[CONNINFO_MAX];
	static const char *const needles[] = {"invalid source connection string",
	                                      "keyword=value", NULL};
	static const char *const bad[] = {
	    "host=localhost port",
	    "host=h password=Sup3r Secr3t",
	    "postgresql://mover:Secr3t@[::1",
	    "dbname='unterminated",
	};

	make_pair("bad_src", "bad_tgt");
	socket_conninfo(tgt, &target, "bad_tgt");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_both(bad[i], tgt, 3, 3, needles, needles, "Secr3t");
	assert_nothing_left("bad_src", "bad_tgt", NULL, NULL);
}
END_TEST

START_TEST(closed_port_is_a_connect_error)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const needles[] = {"could not connect to source",
	                                      "Connection refused", "listens",
	                                      NULL};

	make_pair("bad_src", "bad_tgt");
	/* port 1 is privileged and nothing listens there in a test box */
	snprintf(src, sizeof(src), "host=127.0.0.1 port=1 dbname=bad_src user=x");
	socket_conninfo(tgt, &target, "bad_tgt");
	expect_both(src, tgt, 4, 4, needles, needles, NULL);
	assert_nothing_left("bad_src", "bad_tgt", NULL, NULL);
}
END_TEST

START_TEST(unreachable_host_times_out_with_a_connect_error)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const needles[] = {"could not connect to source",
	                                      "192.0.2.1", "check the", NULL};
	long long start = proc_now_ms();

	make_pair("bad_src", "bad_tgt");
	socket_conninfo(src, &source, "bad_src");
	snprintf(tgt, sizeof(tgt), "%s", src);
	snprintf(src, sizeof(src),
	         "host=192.0.2.1 port=5432 dbname=bad_src user=x connect_timeout=2");
	socket_conninfo(tgt, &target, "bad_tgt");
	expect_both(src, tgt, 4, 4, needles, needles, NULL);
	/* two runs of ~2 s each, not minutes */
	ck_assert_int_lt(proc_now_ms() - start, 30000);
	assert_nothing_left("bad_src", "bad_tgt", NULL, NULL);
}
END_TEST

START_TEST(wrong_password_is_a_connect_error_without_the_password)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const needles[] = {"could not connect to source",
	                                      "password authentication failed",
	                                      "PGPASSWORD", NULL};

	make_pair("bad_src", "bad_tgt");
	tcp_conninfo(src, &source, "bad_src", "mover", WRONG_PASSWORD);
	socket_conninfo(tgt, &target, "bad_tgt");
	expect_both(src, tgt, 4, 4, needles, needles, WRONG_PASSWORD);
	assert_nothing_left("bad_src", "bad_tgt", NULL, NULL);
}
END_TEST

START_TEST(missing_database_is_a_connect_error)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const needles[] = {"could not connect to target",
	                                      "\"no_such_db\" does not exist",
	                                      "CREATE DATABASE", NULL};

	make_pair("bad_src", "bad_tgt");
	socket_conninfo(src, &source, "bad_src");
	socket_conninfo(tgt, &target, "no_such_db");
	expect_both(src, tgt, 4, 4, needles, needles, NULL);
	assert_nothing_left("bad_src", "bad_tgt", NULL, NULL);
}
END_TEST

START_TEST(login_without_replication_is_refused)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	/*
	 * sync runs its preflight (assess) before it opens the replication
	 * connection, so that the problem is listed: a blocking finding, exit 2
	 * (a refused replication connection would be 4)
	 */
	static const char *const sync_needles[] = {"replication_privilege",
	                                           "ALTER ROLE norepl WITH REPLICATION",
	                                           NULL};
	static const char *const assess_needles[] = {
	    "replication_privilege", "ALTER ROLE norepl WITH REPLICATION", NULL};
	Outcome o;

	make_pair("bad_src", "bad_tgt");
	ck_assert(cluster_psql(&source, "bad_src",
	                       "GRANT SELECT ON t TO norepl"));
	tcp_conninfo(src, &source, "bad_src", "norepl", "norepl-pw");
	socket_conninfo(tgt, &target, "bad_tgt");
	o = run_sync(src, tgt, "bad_slot", false);
	assert_one_clear_line("sync", &o, 2, sync_needles);
	assert_absent("sync", &o, "norepl-pw");
	outcome_free(&o);
	o = run_assess(src, tgt, "bad_slot");
	assert_one_clear_line("assess", &o, 2, assess_needles);
	outcome_free(&o);
	assert_nothing_left("bad_src", "bad_tgt", NULL, NULL);
}
END_TEST

START_TEST(same_database_is_refused)
{
	char src[CONNINFO_MAX];
	static const char *const sync_needles[] = {"same database", NULL};
	static const char *const assess_needles[] = {"same_database",
	                                             "another database", NULL};

	make_pair("bad_src", "bad_tgt");
	socket_conninfo(src, &source, "bad_src");
	expect_both(src, src, 3, 2, sync_needles, assess_needles, NULL);
	assert_nothing_left("bad_src", NULL, NULL, NULL);
	assert_count(&source, "bad_src", "SELECT count(*) FROM t", "100");
}
END_TEST

START_TEST(taken_slot_name_is_blocking)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const needles[] = {"slot_name", "already exists",
	                                      "pg_drop_replication_slot('taken')",
	                                      NULL};
	Outcome o;

	make_pair("bad_src", "bad_tgt");
	ck_assert(cluster_psql(&source, "bad_src",
	                       "SELECT pg_create_logical_replication_slot("
	                       "'taken', 'pgoutput')"));
	socket_conninfo(src, &source, "bad_src");
	socket_conninfo(tgt, &target, "bad_tgt");
	o = run_sync(src, tgt, "taken", false);
	assert_one_clear_line("sync", &o, 2, needles);
	outcome_free(&o);
	o = run_assess(src, tgt, "taken");
	assert_one_clear_line("assess", &o, 2, needles);
	outcome_free(&o);
	assert_nothing_left("bad_src", "bad_tgt", "taken", NULL);
	ck_assert(cluster_psql(&source, "bad_src",
	                       "SELECT pg_drop_replication_slot('taken')"));
}
END_TEST

START_TEST(taken_publication_name_is_blocking)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const needles[] = {"publication_name", "already exists",
	                                      "DROP PUBLICATION pgstream", NULL};
	Outcome o;

	make_pair("bad_src", "bad_tgt");
	ck_assert(cluster_psql(&source, "bad_src",
	                       "CREATE PUBLICATION pgstream FOR TABLE t"));
	socket_conninfo(src, &source, "bad_src");
	socket_conninfo(tgt, &target, "bad_tgt");
	/* live sync (the publication matters only there): refused up front */
	o = run_sync(src, tgt, "bad_slot", true);
	assert_one_clear_line("sync", &o, 2, needles);
	outcome_free(&o);
	o = run_assess(src, tgt, "bad_slot");
	assert_one_clear_line("assess", &o, 2, needles);
	outcome_free(&o);
	assert_nothing_left("bad_src", "bad_tgt", NULL, "pgstream");
}
END_TEST

START_TEST(non_empty_target_is_blocking)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const sync_needles[] = {"not empty", "empty database",
	                                           NULL};
	static const char *const assess_needles[] = {"target_empty", "not empty",
	                                             "CREATE DATABASE", NULL};

	make_pair("bad_src", "bad_tgt");
	ck_assert(cluster_psql(&target, "bad_tgt",
	                       "CREATE SCHEMA keep; CREATE TABLE keep.mine (v text);"
	                       "INSERT INTO keep.mine VALUES ('mine')"));
	socket_conninfo(src, &source, "bad_src");
	socket_conninfo(tgt, &target, "bad_tgt");
	expect_both(src, tgt, 2, 2, sync_needles, assess_needles, NULL);
	assert_nothing_left("bad_src", "bad_tgt", NULL, NULL);
	assert_count(&target, "bad_tgt", "SELECT v FROM keep.mine", "mine");
}
END_TEST

/* ---- security ---- */

/*
 * Does any process other than pgstream itself show needle in its command
 * line?  A child pgstream spawns shows pgstream's argv until its exec, so
 * processes running the pgstream binary are all skipped.
 */
static pid_t
process_showing(const char *needle, pid_t skip_pid)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	if (d == NULL)
		return 0;
	while (found == 0 && (de = readdir(d)) != NULL)
	{
		char path[300];
		FILE *f;
		char buf[8192];
		size_t n;
		pid_t pid = (pid_t) strtol(de->d_name, NULL, 10);

		if (pid <= 0 || pid == skip_pid || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		if (strcmp(buf, pgstream_bin()) == 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		buf[n] = '\0';
		if (strstr(buf, needle) != NULL)
			found = pid;
	}
	closedir(d);
	return found;
}

/* Enough objects that pg_dump and pg_restore run for a moment. */
static const char many_tables_sql[] =
    "DO $$BEGIN FOR i IN 1..150 LOOP"
    " EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text,"
    " w int DEFAULT 1 CHECK (w > 0))', i);"
    " EXECUTE format('CREATE INDEX ON t%s (v)', i);"
    " EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text)"
    " FROM generate_series(1, 200) g', i);"
    " END LOOP; END$$;";

START_TEST(password_appears_nowhere_but_our_own_argv)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	Proc p;
	pid_t leak = 0;
	char *leak_cmd = NULL;
	bool own_argv_has_it = false;
	bool saw_pg_dump = false;
	char *out;
	char *err;
	int status;

	make_db(&source, "sec_src");
	make_db(&target, "sec_tgt");
	ck_assert(cluster_psql(&source, "sec_src", many_tables_sql));
	tcp_conninfo(src, &source, "sec_src", "mover", PASSWORD_CONNINFO);
	tcp_conninfo(tgt, &target, "sec_tgt", "mover", PASSWORD_CONNINFO);
	{
		const char *const argv[] = {pgstream_bin(), "sync", "--source", src,
		                            "--target", tgt, "--no-follow",
		                            "--slot", "sec_slot", "--jobs", "2", NULL};

		ck_assert(proc_spawn(&p, argv, NULL));
	}
	/* Watch every process while sync runs (pg_dump, pg_restore, ...). */
	while (proc_wait(&p, 20) == PROC_TIMEOUT)
	{
		char path[64];
		char *cmd;

		if (leak == 0)
			leak = process_showing(PASSWORD, p.pid);
		if (leak == 0)
			leak = process_showing(PASSWORD_CONNINFO, p.pid);
		if (!saw_pg_dump)
			saw_pg_dump = process_showing("--format=custom", p.pid) != 0;
		if (leak != 0 && leak_cmd == NULL)
		{
			char lp[64];

			snprintf(lp, sizeof(lp), "/proc/%d/cmdline", (int) leak);
			leak_cmd = proc_read_file(lp);
			for (char *c = leak_cmd; c && c < leak_cmd + 4000 && (*c || c[1]); c++)
				if (*c == '\0')
					*c = ' ';
		}
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) p.pid);
		cmd = proc_read_file(path);
		/* argv is NUL-separated: the conninfo is one element */
		if (cmd != NULL)
			for (const char *s = cmd; !own_argv_has_it && *s; s += strlen(s) + 1)
				own_argv_has_it = strstr(s, PASSWORD_CONNINFO) != NULL;
		free(cmd);
	}
	out = proc_stdout(&p);
	err = proc_stderr(&p);
	ck_assert_msg(p.status == 0, "sync failed (%d):\n%s", p.status, err);
	ck_assert_msg(leak == 0, "process %d shows the password: %s", (int) leak,
	              leak_cmd ? leak_cmd : "?");
	ck_assert_msg(strstr(out, PASSWORD) == NULL && strstr(err, PASSWORD) == NULL &&
	                  strstr(out, "Pw-7d1e") == NULL && strstr(err, "Pw-7d1e") == NULL,
	              "the password is in sync's output");
	/* documented: the user's own argv is visible; PGPASSWORD avoids that */
	ck_assert_msg(saw_pg_dump, "pg_dump was never seen running: the scan "
	              "proves nothing");
	ck_assert_msg(own_argv_has_it,
	              "pgstream's argv did not hold the password it was given");
	free(out);
	free(err);
	proc_release(&p);

	/* status and assess with the password */
	{
		const char *const st[] = {pgstream_bin(), "status", "--target", tgt,
		                          "--json", NULL};
		const char *const as[] = {pgstream_bin(), "assess", "--source", src,
		                          "--target", tgt, "--json", NULL};

		out = err = NULL;
		status = proc_run(st, NULL, RUN_TIMEOUT_MS, &out, &err);
		ck_assert_msg(status == 0, "status: %d %s", status, err ? err : "");
		ck_assert(strstr(out, PASSWORD) == NULL && strstr(err, PASSWORD) == NULL);
		free(out);
		free(err);
		out = err = NULL;
		status = proc_run(as, NULL, RUN_TIMEOUT_MS, &out, &err);
		ck_assert_msg(status == 2, "assess: %d %s", status, err ? err : "");
		ck_assert(strstr(out, PASSWORD) == NULL && strstr(err, PASSWORD) == NULL);
		free(out);
		free(err);
	}
	assert_nothing_left("sec_src", NULL, NULL, NULL);
}
END_TEST

START_TEST(pgpassword_and_pgpassfile_work)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	const char *const env[] = {"PGPASSWORD=" PASSWORD, NULL};
	char *out = NULL;
	char *err = NULL;
	int status;

	make_db(&source, "env_src");
	make_db(&target, "env_tgt");
	ck_assert(cluster_psql(&source, "env_src",
	                       "CREATE TABLE t (id int PRIMARY KEY);"
	                       "INSERT INTO t SELECT generate_series(1, 10)"));
	tcp_conninfo(src, &source, "env_src", "mover", NULL);
	tcp_conninfo(tgt, &target, "env_tgt", "mover", NULL);
	{
		const char *const argv[] = {pgstream_bin(), "sync", "--source", src,
		                            "--target", tgt, "--no-follow", "--quiet",
		                            "--slot", "env_slot", NULL};

		status = proc_run(argv, env, RUN_TIMEOUT_MS, &out, &err);
	}
	ck_assert_msg(status == 0, "sync with PGPASSWORD: %d\n%s", status,
	              err ? err : "");
	ck_assert(strstr(err, PASSWORD) == NULL && strstr(out, PASSWORD) == NULL);
	assert_count(&target, "env_tgt", "SELECT count(*) FROM t", "10");
	free(out);
	free(err);

	/* the same with a password file (PGPASSFILE, mode 0600) */
	{
		char passfile[PATH_MAX + 16];
		char envvar[PATH_MAX + 32];
		const char *const penv[] = {envvar, NULL};
		const char *const argv[] = {pgstream_bin(), "sync", "--source", src,
		                            "--target", tgt, "--no-follow", "--quiet",
		                            "--slot", "env_slot", NULL};
		FILE *f;

		snprintf(passfile, sizeof(passfile), "%s/pgpass", source.basedir);
		f = fopen(passfile, "w");
		ck_assert(f != NULL);
		/* ':' and '\' are escaped in .pgpass; this password has neither */
		fprintf(f, "127.0.0.1:*:*:mover:%s\n", PASSWORD);
		ck_assert_int_eq(fclose(f), 0);
		ck_assert_int_eq(chmod(passfile, 0600), 0);
		snprintf(envvar, sizeof(envvar), "PGPASSFILE=%s", passfile);
		make_db(&target, "env_tgt");
		out = err = NULL;
		status = proc_run(argv, penv, RUN_TIMEOUT_MS, &out, &err);
		ck_assert_msg(status == 0, "sync with PGPASSFILE: %d\n%s", status,
		              err ? err : "");
		assert_count(&target, "env_tgt", "SELECT count(*) FROM t", "10");
		free(out);
		free(err);
		unlink(passfile);
	}
}
END_TEST

Suite *
badinput_suite(void)
{
	Suite *s = suite_create("badinput");
	TCase *tc = tcase_create("badinput");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, malformed_connection_strings_are_usage_errors);
	tcase_add_test(tc, closed_port_is_a_connect_error);
	tcase_add_test(tc, unreachable_host_times_out_with_a_connect_error);
	tcase_add_test(tc, wrong_password_is_a_connect_error_without_the_password);
	tcase_add_test(tc, missing_database_is_a_connect_error);
	tcase_add_test(tc, login_without_replication_is_refused);
	tcase_add_test(tc, same_database_is_refused);
	tcase_add_test(tc, taken_slot_name_is_blocking);
	tcase_add_test(tc, taken_publication_name_is_blocking);
	tcase_add_test(tc, non_empty_target_is_blocking);
	suite_add_tcase(s, tc);

	tc = tcase_create("security");
	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, password_appears_nowhere_but_our_own_argv);
	tcase_add_test(tc, pgpassword_and_pgpassfile_work);
	suite_add_tcase(s, tc);
	return s;
}
