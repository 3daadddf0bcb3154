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
 *   security   sync (--no-follow, and live through cutover), status, assess
 *              and cutover with password=... in the connection strings over
 *              SCRAM: the password is in no output; every pg_dump and
 *              pg_restore pgstream starts is a wrapper that records its
 *              exact argv and environment, so the test knows what each
 *              child got: never the password in argv, pg_dump exactly
 *              PGPASSWORD, pg_restore nothing; while live sync streams, no
 *              process but pgstream itself (whose argv the user wrote)
 *              shows it
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/names.h"
#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/itest.h"
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
	                                      "pgstream abort", NULL};
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
	char pub[NAMES_DEFAULT_SIZE];
	char sql[256];
	char drop[128];
	const char *needles[] = {"publication_name", "already exists", drop,
	                         "pgstream abort", NULL};
	Outcome o;

	/* the default publication name of database bad_src is taken */
	names_default("bad_src", pub, sizeof(pub));
	snprintf(drop, sizeof(drop), "DROP PUBLICATION %s", pub);
	make_pair("bad_src", "bad_tgt");
	snprintf(sql, sizeof(sql), "CREATE PUBLICATION %s FOR TABLE t", pub);
	ck_assert(cluster_psql(&source, "bad_src", sql));
	socket_conninfo(src, &source, "bad_src");
	socket_conninfo(tgt, &target, "bad_tgt");
	/* live sync (the publication matters only there): refused up front */
	o = run_sync(src, tgt, "bad_slot", true);
	assert_one_clear_line("sync", &o, 2, needles);
	outcome_free(&o);
	o = run_assess(src, tgt, "bad_slot");
	assert_one_clear_line("assess", &o, 2, needles);
	outcome_free(&o);
	assert_nothing_left("bad_src", "bad_tgt", NULL, pub);
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
 * line?  Processes running a pgstream binary are all skipped (their argv
 * holds what the user typed).
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
		/* any pgstream binary: other worktrees on this machine may run
		 * this same test, with this same password in their own argv */
		if (strcmp(buf, pgstream_bin()) == 0 ||
		    strncmp(strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf,
		            "pgstream", 8) == 0)
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

/*
 * Every pg_dump and pg_restore pgstream starts is a wrapper (in a directory
 * given as PGSTREAM_PG_BINDIR) that writes down its exact argv and
 * environment, then execs the real program.  The test then reads what every
 * child was given: no sampling of /proc, nothing missed however short a
 * child lives.
 */
typedef struct ChildLog
{
	char dir[PATH_MAX];        /* the wrappers */
	char logdir[PATH_MAX + 8]; /* <pid>.<program>.argv / .env, NUL-separated */
	char env[PATH_MAX + 32];   /* "PGSTREAM_PG_BINDIR=<dir>" */
} ChildLog;

/* Where the real pg_dump is: the engine's own rule (subproc.c). */
static void
real_bindir(char *buf, size_t size)
{
	const char *env = getenv("PGSTREAM_PG_BINDIR");
	const char *const argv[] = {"pg_config", "--bindir", NULL};
	char *out = NULL;
	char *slash;

	if (env != NULL && *env != '\0')
	{
		snprintf(buf, size, "%s", env);
		return;
	}
	if (proc_run(argv, NULL, 30000, &out, NULL) == 0 && out != NULL &&
	    *out != '\0')
	{
		out[strcspn(out, "\n")] = '\0';
		snprintf(buf, size, "%s", out);
		free(out);
		return;
	}
	free(out);
	snprintf(buf, size, "%s", itest_pgbench_path());
	slash = strrchr(buf, '/');
	ck_assert_msg(slash != NULL, "no PostgreSQL bin directory found");
	*slash = '\0';
}

static void
childlog_init(ChildLog *cl)
{
	static const char *const programs[] = {"pg_dump", "pg_restore"};
	char real[PATH_MAX];

	real_bindir(real, sizeof(real));
	snprintf(cl->dir, sizeof(cl->dir), "/tmp/pgstream-children-XXXXXX");
	ck_assert(mkdtemp(cl->dir) != NULL);
	snprintf(cl->logdir, sizeof(cl->logdir), "%s/log", cl->dir);
	ck_assert_int_eq(mkdir(cl->logdir, 0700), 0);
	snprintf(cl->env, sizeof(cl->env), "PGSTREAM_PG_BINDIR=%s", cl->dir);
	for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++)
	{
		char path[PATH_MAX + 32];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", cl->dir, programs[i]);
		f = fopen(path, "w");
		ck_assert_msg(f != NULL, "cannot write %s", path);
		fprintf(f,
		        "#!/bin/sh\n"
		        "log=%s/$$.%s\n"
		        "printf '%%s\\0' \"$@\" > \"$log.argv\"\n"
		        "cat /proc/$$/environ > \"$log.env\"\n"
		        "exec %s/%s \"$@\"\n",
		        cl->logdir, programs[i], real, programs[i]);
		ck_assert_int_eq(fclose(f), 0);
		ck_assert_int_eq(chmod(path, 0755), 0);
	}
}

static void
childlog_cleanup(ChildLog *cl)
{
	DIR *d = opendir(cl->logdir);
	struct dirent *de;
	char path[PATH_MAX + 300];

	while (d != NULL && (de = readdir(d)) != NULL)
	{
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", cl->logdir, de->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(cl->logdir);
	snprintf(path, sizeof(path), "%s/pg_dump", cl->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/pg_restore", cl->dir);
	unlink(path);
	rmdir(cl->dir);
}

/* Read a NUL-separated file; *len gets its size.  NULL if unreadable. */
static char *
read_nul_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n = 0;
	size_t cap = 4096;

	if (f == NULL)
		return NULL;
	buf = malloc(cap + 1);
	ck_assert_ptr_nonnull(buf);
	for (;;)
	{
		size_t r = fread(buf + n, 1, cap - n, f);

		n += r;
		if (n < cap)
			break;
		cap *= 2;
		buf = realloc(buf, cap + 1);
		ck_assert_ptr_nonnull(buf);
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Does any NUL-separated element of buf contain needle? */
static bool
element_contains(const char *buf, size_t len, const char *needle)
{
	for (size_t off = 0; off < len; off += strlen(buf + off) + 1)
		if (strstr(buf + off, needle) != NULL)
			return true;
	return false;
}

/* Is element exactly one of the NUL-separated elements of buf? */
static bool
has_element(const char *buf, size_t len, const char *element)
{
	for (size_t off = 0; off < len; off += strlen(buf + off) + 1)
		if (strcmp(buf + off, element) == 0)
			return true;
	return false;
}

/*
 * What every child got: the password is in no child's argv (anyone on the
 * machine can read it in ps); pg_dump, which connects, gets it as exactly
 * PGPASSWORD in its environment (readable only by the same user) and a
 * --dbname without it; pg_restore, which never connects, does not get it at
 * all.  Returns how many pg_dump runs connected to the source.
 */
static int
assert_children_safe(const ChildLog *cl, int *restores)
{
	DIR *d = opendir(cl->logdir);
	struct dirent *de;
	int dumps = 0;

	*restores = 0;
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
	{
		char path[PATH_MAX + 300];
		char envpath[PATH_MAX + 300];
		const char *ext = strrchr(de->d_name, '.');
		bool dump = strstr(de->d_name, ".pg_dump.") != NULL;
		char *argv_buf;
		char *env_buf;
		size_t alen = 0;
		size_t elen = 0;

		if (ext == NULL || strcmp(ext, ".argv") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", cl->logdir, de->d_name);
		snprintf(envpath, sizeof(envpath), "%.*s.env",
		         (int) (strlen(path) - strlen(".argv")), path);
		argv_buf = read_nul_file(path, &alen);
		env_buf = read_nul_file(envpath, &elen);
		ck_assert_msg(argv_buf != NULL && env_buf != NULL,
		              "%s: argv or environment not written", de->d_name);
		ck_assert_msg(!element_contains(argv_buf, alen, "Pw-7d1e"),
		              "%s: the password is in the child's argv", de->d_name);
		if (dump && !has_element(argv_buf, alen, "--version"))
		{
			dumps++;
			ck_assert_msg(has_element(env_buf, elen, "PGPASSWORD=" PASSWORD),
			              "%s: pg_dump did not get the password as "
			              "PGPASSWORD",
			              de->d_name);
			ck_assert_msg(!element_contains(argv_buf, alen, "password"),
			              "%s: pg_dump's argv names a password", de->d_name);
		}
		else if (!dump)
		{
			(*restores)++;
			ck_assert_msg(!element_contains(env_buf, elen, "Pw-7d1e"),
			              "%s: pg_restore, which never connects, got the "
			              "password in its environment",
			              de->d_name);
		}
		free(argv_buf);
		free(env_buf);
	}
	closedir(d);
	return dumps;
}

static void
assert_output_clean(const char *what, const char *out, const char *err)
{
	ck_assert_msg(strstr(out, "Pw-7d1e") == NULL &&
	                  strstr(err, "Pw-7d1e") == NULL,
	              "the password is in %s's output:\n%s\n%s", what, out, err);
}

/* pgstream's own argv holds the password the user gave it (documented:
 * PGPASSWORD or a .pgpass file avoid that); one element, unchanged. */
static void
assert_own_argv_has_it(pid_t pid)
{
	char path[64];
	char *cmd;
	size_t len = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
	cmd = read_nul_file(path, &len);
	ck_assert_ptr_nonnull(cmd);
	ck_assert_msg(element_contains(cmd, len, "password=" PASSWORD_CONNINFO),
	              "pgstream's argv does not hold the conninfo it was given");
	free(cmd);
}

START_TEST(password_reaches_children_only_as_pgpassword_no_follow)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	ChildLog cl;
	char *out = NULL;
	char *err = NULL;
	int status;
	int dumps;
	int restores;

	make_db(&source, "sec_src");
	make_db(&target, "sec_tgt");
	ck_assert(cluster_psql(&source, "sec_src",
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "CREATE INDEX ON t (v);"
	                       "INSERT INTO t SELECT g, md5(g::text)"
	                       " FROM generate_series(1, 200) g"));
	tcp_conninfo(src, &source, "sec_src", "mover", PASSWORD_CONNINFO);
	tcp_conninfo(tgt, &target, "sec_tgt", "mover", PASSWORD_CONNINFO);
	childlog_init(&cl);
	{
		const char *const argv[] = {pgstream_bin(), "sync", "--source", src,
		                            "--target", tgt, "--no-follow",
		                            "--slot", "sec_slot", "--jobs", "2", NULL};
		const char *const env[] = {cl.env, NULL};

		status = proc_run(argv, env, RUN_TIMEOUT_MS, &out, &err);
	}
	ck_assert_msg(status == 0, "sync failed (%d):\n%s", status, err ? err : "");
	assert_output_clean("sync", out, err);
	free(out);
	free(err);
	dumps = assert_children_safe(&cl, &restores);
	ck_assert_msg(dumps >= 1 && restores >= 1,
	              "%d pg_dump and %d pg_restore runs seen: the wrappers were "
	              "not used, so nothing was checked",
	              dumps, restores);
	fprintf(stderr, "checked %d pg_dump and %d pg_restore runs\n", dumps,
	        restores);
	childlog_cleanup(&cl);
	assert_count(&target, "sec_tgt", "SELECT count(*) FROM t", "200");

	/* status and assess with the password */
	{
		const char *const st[] = {pgstream_bin(), "status", "--target", tgt,
		                          "--json", NULL};
		const char *const as[] = {pgstream_bin(), "assess", "--source", src,
		                          "--target", tgt, "--json", NULL};

		out = err = NULL;
		status = proc_run(st, NULL, RUN_TIMEOUT_MS, &out, &err);
		ck_assert_msg(status == 0, "status: %d %s", status, err ? err : "");
		assert_output_clean("status", out, err);
		free(out);
		free(err);
		out = err = NULL;
		status = proc_run(as, NULL, RUN_TIMEOUT_MS, &out, &err);
		/* the target is no longer empty */
		ck_assert_msg(status == 2, "assess: %d %s", status, err ? err : "");
		assert_output_clean("assess", out, err);
		free(out);
		free(err);
	}
	assert_nothing_left("sec_src", NULL, NULL, NULL);
}
END_TEST

/*
 * Live sync with password=... in both connection strings, through cutover:
 * the children, every pgstream output (sync, status while streaming,
 * cutover) and, while it streams, every process on the machine but
 * pgstream itself.
 */
START_TEST(password_reaches_children_only_as_pgpassword_live)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	ChildLog cl;
	Proc p;
	pid_t leak;
	char *out = NULL;
	char *err = NULL;
	int status;
	int dumps;
	int restores;

	make_db(&source, "secl_src");
	make_db(&target, "secl_tgt");
	ck_assert(cluster_psql(&source, "secl_src",
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t SELECT g, md5(g::text)"
	                       " FROM generate_series(1, 200) g"));
	tcp_conninfo(src, &source, "secl_src", "mover", PASSWORD_CONNINFO);
	tcp_conninfo(tgt, &target, "secl_tgt", "mover", PASSWORD_CONNINFO);
	childlog_init(&cl);
	{
		const char *const argv[] = {pgstream_bin(), "sync", "--source", src,
		                            "--target", tgt, "--slot", "secl_slot",
		                            NULL};
		const char *const env[] = {cl.env, NULL};

		ck_assert(proc_spawn(&p, argv, env));
	}
	if (!cluster_wait_for(&target, "secl_tgt",
	                      "SELECT phase = 'streaming' FROM pgstream.migration",
	                      120000))
	{
		itest_print_proc("pgstream sync", &p, proc_wait(&p, 0));
		ck_abort_msg("live sync never reached phase streaming");
	}
	ck_assert(cluster_psql(&source, "secl_src",
	                       "INSERT INTO t VALUES (201, 'streamed')"));
	ck_assert(cluster_wait_for(&target, "secl_tgt",
	                           "SELECT count(*) = 201 FROM t", 60000));
	/* streaming: pgstream runs with its connections open; nothing else on
	 * this machine shows the password */
	leak = process_showing(PASSWORD, p.pid);
	if (leak == 0)
		leak = process_showing("Pw-7d1e", p.pid);
	ck_assert_msg(leak == 0, "process %d shows the password while sync "
	              "streams", (int) leak);
	assert_own_argv_has_it(p.pid);
	{
		const char *const st[] = {pgstream_bin(), "status", "--target", tgt,
		                          NULL};

		status = proc_run(st, NULL, RUN_TIMEOUT_MS, &out, &err);
		ck_assert_msg(status == 0, "status: %d %s", status, err ? err : "");
		assert_output_clean("status", out, err);
		free(out);
		free(err);
	}
	{
		const char *const co[] = {pgstream_bin(), "cutover", "--source", src,
		                          "--target", tgt, "--timeout", "120", NULL};

		out = err = NULL;
		status = proc_run(co, NULL, RUN_TIMEOUT_MS, &out, &err);
		ck_assert_msg(status == 0, "cutover: %d %s", status, err ? err : "");
		assert_output_clean("cutover", out, err);
		free(out);
		free(err);
	}
	status = proc_wait(&p, 60000);
	out = proc_stdout(&p);
	err = proc_stderr(&p);
	ck_assert_msg(status == 0, "sync exited %d after the cutover:\n%s", status,
	              err ? err : "");
	assert_output_clean("sync", out, err);
	free(out);
	free(err);
	proc_release(&p);
	dumps = assert_children_safe(&cl, &restores);
	ck_assert_msg(dumps >= 1 && restores >= 1,
	              "%d pg_dump and %d pg_restore runs seen: the wrappers were "
	              "not used, so nothing was checked",
	              dumps, restores);
	fprintf(stderr, "checked %d pg_dump and %d pg_restore runs\n", dumps,
	        restores);
	childlog_cleanup(&cl);
	assert_count(&target, "secl_tgt", "SELECT count(*) FROM t", "201");
	assert_nothing_left("secl_src", NULL, NULL, NULL);
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
	tcase_add_test(tc, password_reaches_children_only_as_pgpassword_no_follow);
	tcase_add_test(tc, password_reaches_children_only_as_pgpassword_live);
	tcase_add_test(tc, pgpassword_and_pgpassfile_work);
	suite_add_tcase(s, tc);
	return s;
}
