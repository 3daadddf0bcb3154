/*
 * tests/integration/test_assess.c -- `pgstream assess` on real clusters.
 *
 * One source (wal_level=logical, max_prepared_transactions=5) and one target
 * per TCase; every test makes its own databases.  Findings are matched on
 * assess's human output, one line each ("severity: check (object): message;
 * fix: ..."), so a test can ask that one line hold the problem and its exact
 * fix.  One test checks the JSON shape.
 *
 *   clean        a healthy pair: exit 0, no blocking or warning finding; JSON
 *   identity     no key: blocking, fix names a usable unique index (not a
 *                partial or nullable one) or REPLICA IDENTITY FULL, and the
 *                --no-key-tables options; FULL without a key: warning;
 *                --no-key-tables=full/insert-only: warnings, exit 0;
 *                --no-follow: not checked
 *   objects      names (case, quoting, ';' in a database name), unlogged
 *                tables, large objects, materialized views, sequences
 *   extensions   an extension missing from azure.extensions; a collation the
 *                target lacks; a target encoding that cannot hold the data
 *   privileges   a non-superuser source login (SELECT, row-level security,
 *                ownership for the publication) and target login (CREATE);
 *                wal_level; timeouts set on the role; prepared transactions;
 *                max_slot_wal_keep_size; a pg_dump that cannot be found
 */
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
#define MAX_ARGS 16

static Cluster source;
static Cluster target;

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "target", 0));
	ck_assert(cluster_set(&source, "max_prepared_transactions = 5"));
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
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
make_db(const Cluster *c, const char *name, const char *options)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
	ck_assert(cluster_psql(c, "postgres", sql));
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\" %s", name,
	         options ? options : "");
	ck_assert(cluster_psql(c, "postgres", sql));
}

static void
conninfo(char *buf, const Cluster *c, const char *dbname, const char *user)
{
	snprintf(buf, CONNINFO_MAX, "host='%s' port=%d user=%s dbname='%s'",
	         c->basedir, c->port, user ? user : "postgres", dbname);
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
}

/* pgstream assess --source src --target tgt <extra...> */
static Outcome
assess(const char *src, const char *tgt, const char *const extra[],
       const char *const env[])
{
	const char *argv[MAX_ARGS];
	Outcome o;
	int n = 0;

	argv[n++] = pgstream_bin();
	argv[n++] = "assess";
	argv[n++] = "--source";
	argv[n++] = src;
	argv[n++] = "--target";
	argv[n++] = tgt;
	for (int i = 0; extra != NULL && extra[i] != NULL && n < MAX_ARGS - 1; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	o.out = o.err = NULL;
	o.status = proc_run(argv, env, RUN_TIMEOUT_MS, &o.out, &o.err);
	if (o.out == NULL)
		o.out = strdup("");
	if (o.err == NULL)
		o.err = strdup("");
	return o;
}

/* Number of stderr lines holding every needle. */
static int
lines_with(const char *text, const char *const needles[])
{
	int matching = 0;
	const char *line = text;

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
	return matching;
}

#define EXPECT_LINE(o, ...)                                                    \
	do                                                                         \
	{                                                                          \
		const char *const needles_[] = {__VA_ARGS__, NULL};                    \
		ck_assert_msg(lines_with((o)->err, needles_) == 1,                     \
		              "expected one line with \"%s\" ...; assess said:\n%s",   \
		              needles_[0], (o)->err);                                  \
	} while (0)

#define EXPECT_NO_LINE(o, ...)                                                 \
	do                                                                         \
	{                                                                          \
		const char *const needles_[] = {__VA_ARGS__, NULL};                    \
		ck_assert_msg(lines_with((o)->err, needles_) == 0,                     \
		              "expected no line with \"%s\" ...; assess said:\n%s",    \
		              needles_[0], (o)->err);                                  \
	} while (0)

/* ---- clean ---- */

START_TEST(a_healthy_pair_has_no_problem)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const json[] = {"--json", NULL};
	Outcome o;

	make_db(&source, "clean_src", NULL);
	make_db(&target, "clean_tgt", NULL);
	ck_assert(cluster_psql(&source, "clean_src",
	                       "CREATE TABLE a (id int PRIMARY KEY, v text);"
	                       "CREATE TABLE b (x int NOT NULL, y int NOT NULL,"
	                       " PRIMARY KEY (x, y));"));
	conninfo(src, &source, "clean_src", NULL);
	conninfo(tgt, &target, "clean_tgt", NULL);
	o = assess(src, tgt, NULL, NULL);
	ck_assert_msg(o.status == 0, "exit %d:\n%s", o.status, o.err);
	EXPECT_LINE(&o, "0 blocking, 0 warning(s)");
	EXPECT_LINE(&o, "info: tls (source)", "not encrypted (a local connection)");
	outcome_free(&o);

	o = assess(src, tgt, json, NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_msg(strncmp(o.out, "{\"findings\":[", 13) == 0 ||
	                  strncmp(o.out, "{\"findings\": [", 14) == 0,
	              "JSON: %s", o.out);
	for (const char *k = "severity\0check\0object\0message\0fix\0"; *k;
	     k += strlen(k) + 1)
	{
		char key[32];

		snprintf(key, sizeof(key), "\"%s\":", k);
		ck_assert_msg(strstr(o.out, key) != NULL, "no %s in %s", key, o.out);
	}
	ck_assert_ptr_null(strstr(o.out, "\"blocking\""));
	outcome_free(&o);
}
END_TEST

/*
 * --pg-bin DIR is the pg_dump assess (and sync) use: one of an older major
 * than the source (here a stand-in that only answers --version) is a
 * blocking finding naming both versions.
 */
START_TEST(pg_bin_chooses_the_pg_dump_and_an_older_one_blocks)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	char dir[] = "/tmp/pgstream-pgbin-XXXXXX";
	char path[64];
	const char *extra[3] = {"--pg-bin", dir, NULL};
	FILE *f;
	Outcome o;

	make_db(&source, "pgbin_src", NULL);
	make_db(&target, "pgbin_tgt", NULL);
	ck_assert(cluster_psql(&source, "pgbin_src", "CREATE TABLE a (id int PRIMARY KEY)"));
	conninfo(src, &source, "pgbin_src", NULL);
	conninfo(tgt, &target, "pgbin_tgt", NULL);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pg_dump", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("#!/bin/sh\necho 'pg_dump (PostgreSQL) 11.22'\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0755), 0);
	o = assess(src, tgt, extra, NULL);
	ck_assert_msg(o.status == 2, "exit %d:\n%s", o.status, o.err);
	EXPECT_LINE(&o, "blocking: pg_dump", "pg_dump 11 cannot dump a PostgreSQL 15 source");
	outcome_free(&o);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	/* the real one */
	extra[1] = "/usr/lib/postgresql/15/bin";
	o = assess(src, tgt, extra, NULL);
	ck_assert_msg(o.status == 0, "exit %d:\n%s", o.status, o.err);
	outcome_free(&o);
}
END_TEST

/* ---- identity ---- */

static const char identity_sql[] =
    "CREATE TABLE keyed (id int PRIMARY KEY);"
    /* a usable unique index, and a worse (wider) one */
    "CREATE TABLE has_unique (a int NOT NULL, b int NOT NULL, c text);"
    "CREATE UNIQUE INDEX has_unique_ab ON has_unique (a, b);"
    "CREATE UNIQUE INDEX \"Has Unique A\" ON has_unique (a);"
    /* unusable: partial, nullable column, deferrable */
    "CREATE TABLE no_usable (a int NOT NULL, b int, c int NOT NULL);"
    "CREATE UNIQUE INDEX no_usable_partial ON no_usable (a) WHERE a > 0;"
    "CREATE UNIQUE INDEX no_usable_nullable ON no_usable (b);"
    "ALTER TABLE no_usable ADD CONSTRAINT no_usable_deferred UNIQUE (c)"
    " DEFERRABLE INITIALLY DEFERRED;"
    "CREATE TABLE full_ident (a int, b text);"
    "ALTER TABLE full_ident REPLICA IDENTITY FULL;"
    "CREATE TABLE index_ident (a int NOT NULL);"
    "CREATE UNIQUE INDEX index_ident_a ON index_ident (a);"
    "ALTER TABLE index_ident REPLICA IDENTITY USING INDEX index_ident_a;"
    "CREATE TABLE nothing_ident (id int PRIMARY KEY);"
    "ALTER TABLE nothing_ident REPLICA IDENTITY NOTHING;";

START_TEST(tables_without_replica_identity_block_live_sync)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const full[] = {"--no-key-tables", "full", NULL};
	static const char *const ins[] = {"--no-key-tables", "insert-only", NULL};
	static const char *const offline[] = {"--no-follow", NULL};
	static const char *const bad[] = {"--no-key-tables", "some", NULL};
	Outcome o;

	make_db(&source, "ident_src", NULL);
	make_db(&target, "ident_tgt", NULL);
	ck_assert(cluster_psql(&source, "ident_src", identity_sql));
	conninfo(src, &source, "ident_src", NULL);
	conninfo(tgt, &target, "ident_tgt", NULL);

	o = assess(src, tgt, NULL, NULL);
	ck_assert_int_eq(o.status, 2);
	EXPECT_LINE(&o, "blocking: replica_identity (public.has_unique)",
	            "UPDATE and DELETE on it fail on the source",
	            "fix: ALTER TABLE public.has_unique REPLICA IDENTITY USING INDEX "
	            "\"Has Unique A\";",
	            "--no-key-tables=full", "--no-key-tables=insert-only");
	EXPECT_LINE(&o, "blocking: replica_identity (public.no_usable)",
	            "fix: ALTER TABLE public.no_usable REPLICA IDENTITY FULL;");
	EXPECT_LINE(&o, "blocking: replica_identity (public.nothing_ident)",
	            "REPLICA IDENTITY NOTHING");
	EXPECT_LINE(&o, "warning: replica_identity (public.full_ident)",
	            "REPLICA IDENTITY FULL", "ADD PRIMARY KEY");
	EXPECT_LINE(&o, "warning: replica_identity (public.index_ident)");
	EXPECT_NO_LINE(&o, "(public.keyed)");
	EXPECT_LINE(&o, "3 blocking");
	outcome_free(&o);

	o = assess(src, tgt, full, NULL);
	ck_assert_msg(o.status == 0, "exit %d\n%s", o.status, o.err);
	EXPECT_LINE(&o, "warning: replica_identity (public.no_usable)",
	            "will run ALTER TABLE public.no_usable REPLICA IDENTITY FULL");
	outcome_free(&o);

	o = assess(src, tgt, ins, NULL);
	ck_assert_msg(o.status == 0, "exit %d\n%s", o.status, o.err);
	EXPECT_LINE(&o, "warning: replica_identity (public.has_unique)",
	            "INSERT and TRUNCATE only", "cutover compares the table");
	outcome_free(&o);

	o = assess(src, tgt, offline, NULL);
	ck_assert_msg(o.status == 0, "exit %d\n%s", o.status, o.err);
	EXPECT_NO_LINE(&o, "replica_identity");
	outcome_free(&o);

	o = assess(src, tgt, bad, NULL);
	ck_assert_int_eq(o.status, 3);
	outcome_free(&o);
}
END_TEST

/* ---- objects and names ---- */

static const char objects_sql[] =
    "CREATE TABLE t (id int PRIMARY KEY);"
    "CREATE TABLE \"T\" (id int PRIMARY KEY);"
    "CREATE TABLE \"Needs Quoting\" (\"Mixed Col\" int PRIMARY KEY);"
    "CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);"
    "CREATE MATERIALIZED VIEW mv AS SELECT count(*) FROM t;"
    "CREATE SEQUENCE seq1;"
    "SELECT lo_from_bytea(0, 'large');";

START_TEST(names_and_objects_logical_replication_does_not_carry)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	Outcome o;

	make_db(&source, "obj;src", NULL);
	make_db(&target, "obj_tgt", NULL);
	ck_assert(cluster_psql(&source, "obj;src", objects_sql));
	conninfo(src, &source, "obj;src", NULL);
	conninfo(tgt, &target, "obj_tgt", NULL);
	o = assess(src, tgt, NULL, NULL);
	ck_assert_msg(o.status == 0, "exit %d\n%s", o.status, o.err);
	EXPECT_LINE(&o, "warning: names (source)", "contains ';'");
	EXPECT_LINE(&o, "warning: names", "public.\"T\", public.t", "differ only by case");
	EXPECT_LINE(&o, "info: names", "need quoting", "pgstream quotes");
	EXPECT_LINE(&o, "warning: unlogged_tables (public.scratch)",
	            "ALTER TABLE public.scratch SET LOGGED;");
	EXPECT_LINE(&o, "warning: large_objects", "1 large object", "pg_dump");
	EXPECT_LINE(&o, "info: materialized_views", "refreshes them on the target at cutover");
	EXPECT_LINE(&o, "info: sequences", "1 sequence", "at cutover");
	outcome_free(&o);
}
END_TEST

/* ---- extensions, collations, encoding ---- */

START_TEST(extensions_collations_and_encoding_the_target_cannot_hold)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	Outcome o;

	make_db(&source, "ext_src", NULL);
	make_db(&target, "ext_tgt", "ENCODING 'LATIN1' TEMPLATE template0"
	                            " LC_COLLATE 'C' LC_CTYPE 'C'");
	ck_assert(cluster_psql(&source, "ext_src",
	                       "DROP COLLATION IF EXISTS pg_catalog.only_on_source;"
	                       "CREATE COLLATION pg_catalog.only_on_source"
	                       " (provider = icu, locale = 'fr-FR');"
	                       "CREATE COLLATION public.mine (provider = icu,"
	                       " locale = 'de-DE');"
	                       "CREATE EXTENSION citext; CREATE EXTENSION pg_trgm;"
	                       "CREATE TABLE t (id int PRIMARY KEY,"
	                       " a text COLLATE pg_catalog.only_on_source,"
	                       " b text COLLATE public.mine, c citext)"));
	/* Azure's allow-list, as a placeholder setting of the target database */
	ck_assert(cluster_psql(&target, "postgres",
	                       "ALTER DATABASE ext_tgt"
	                       " SET azure.extensions = 'PG_TRGM, hstore'"));
	conninfo(src, &source, "ext_src", NULL);
	conninfo(tgt, &target, "ext_tgt", NULL);
	o = assess(src, tgt, NULL, NULL);
	ck_assert_int_eq(o.status, 2);
	EXPECT_LINE(&o, "blocking: extensions (citext)", "azure.extensions",
	            "add citext to the server parameter azure.extensions");
	EXPECT_NO_LINE(&o, "(pg_trgm)");
	EXPECT_LINE(&o, "blocking: collations (pg_catalog.only_on_source)",
	            "does not have it");
	/* an ICU collation's locale is its ICU locale, and no OS locale helps it */
	EXPECT_LINE(&o, "blocking: collations (pg_catalog.only_on_source)",
	            "(ICU, locale \"fr-FR\")", "ICU");
	EXPECT_NO_LINE(&o, "pg_catalog.only_on_source", "operating-system locale");
	EXPECT_NO_LINE(&o, "(public.mine)");
	EXPECT_LINE(&o, "blocking: encoding", "LATIN1", "UTF8");
	outcome_free(&o);
}
END_TEST

/*
 * A SQL_ASCII source stores whatever bytes it was given.  pgstream reads and
 * writes UTF8, so Latin-1 bytes there would fail the copy: assess samples
 * the text of every table and names the one that holds them, with a fix;
 * ASCII and valid UTF-8 pass.
 */
START_TEST(a_sql_ascii_source_with_bytes_that_are_not_utf8_is_found)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	Outcome o;

	make_db(&source, "ascii_src", "ENCODING 'SQL_ASCII' TEMPLATE template0"
	                              " LC_COLLATE 'C' LC_CTYPE 'C'");
	make_db(&target, "ascii_tgt", NULL);
	ck_assert(cluster_psql(&source, "ascii_src",
	                       "CREATE TABLE latin (id int PRIMARY KEY, a text, b varchar(20));"
	                       "INSERT INTO latin SELECT g, 'plain', 'ascii'"
	                       " FROM generate_series(1, 50) g;"
	                       "INSERT INTO latin VALUES (51, 'ok', E'caf\\xe9');"
	                       "CREATE TABLE utf (id int PRIMARY KEY, a text);"
	                       "INSERT INTO utf VALUES (1, E'caf\\xc3\\xa9');"));
	conninfo(src, &source, "ascii_src", NULL);
	conninfo(tgt, &target, "ascii_tgt", NULL);
	o = assess(src, tgt, NULL, NULL);
	ck_assert_int_eq(o.status, 2);
	EXPECT_LINE(&o, "blocking: encoding (public.latin)", "SQL_ASCII",
	            "not valid UTF-8", "convert(");
	EXPECT_NO_LINE(&o, "(public.utf)");
	outcome_free(&o);
}
END_TEST

/* ---- privileges and settings ---- */

static const char privileges_sql[] =
    "DROP ROLE IF EXISTS app_owner; CREATE ROLE app_owner;"
    "DROP ROLE IF EXISTS migrator;"
    "CREATE ROLE migrator LOGIN REPLICATION;"
    "ALTER ROLE migrator SET idle_in_transaction_session_timeout = '1min';";

START_TEST(privileges_settings_and_activity)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	const char *const no_pg_dump[] = {"PGSTREAM_PG_BINDIR=/nonexistent", NULL};
	Outcome o;

	make_db(&source, "priv_src", NULL);
	make_db(&target, "priv_tgt", NULL);
	ck_assert(cluster_psql(&source, "postgres", privileges_sql));
	ck_assert(cluster_psql(&target, "postgres",
	                       "DROP ROLE IF EXISTS migrator;"
	                       "CREATE ROLE migrator LOGIN;"));
	ck_assert(cluster_psql(&source, "priv_src",
	                       "CREATE TABLE readable (id int PRIMARY KEY);"
	                       "GRANT SELECT ON readable TO migrator;"
	                       "CREATE TABLE secret (id int PRIMARY KEY);"
	                       "CREATE TABLE policed (id int PRIMARY KEY);"
	                       "ALTER TABLE policed OWNER TO app_owner;"
	                       "ALTER TABLE readable OWNER TO app_owner;"
	                       "GRANT SELECT ON readable, policed TO migrator;"
	                       "ALTER TABLE policed ENABLE ROW LEVEL SECURITY;"));
	ck_assert(cluster_psql(&source, "priv_src",
	                       "BEGIN; INSERT INTO readable VALUES (1);"
	                       "PREPARE TRANSACTION 'pgstream_test_px';"));
	ck_assert(cluster_psql(&source, "postgres",
	                       "ALTER SYSTEM SET max_slot_wal_keep_size = '1GB'"));
	ck_assert(cluster_psql(&source, "postgres", "SELECT pg_reload_conf()"));
	ck_assert(cluster_wait_for(&source, "postgres",
	                           "SELECT current_setting('max_slot_wal_keep_size')"
	                           " = '1GB'", 10000));
	conninfo(src, &source, "priv_src", "migrator");
	conninfo(tgt, &target, "priv_tgt", "migrator");
	o = assess(src, tgt, NULL, no_pg_dump);
	ck_assert_int_eq(o.status, 2);
	EXPECT_LINE(&o, "blocking: select_privilege (public.secret)",
	            "GRANT SELECT ON public.secret TO migrator;");
	EXPECT_NO_LINE(&o, "select_privilege (public.readable)");
	EXPECT_LINE(&o, "blocking: row_security (public.policed)",
	            "silently not be copied", "BYPASSRLS");
	EXPECT_LINE(&o, "blocking: publication_privilege (app_owner)",
	            "GRANT app_owner TO migrator;");
	EXPECT_LINE(&o, "blocking: publication_privilege (source)",
	            "GRANT CREATE ON DATABASE priv_src TO migrator;");
	EXPECT_LINE(&o, "blocking: target_privileges (target)",
	            "GRANT CREATE ON DATABASE priv_tgt TO migrator;");
	EXPECT_LINE(&o, "blocking: target_privileges (public)",
	            "GRANT CREATE ON SCHEMA public TO migrator;");
	EXPECT_LINE(&o, "blocking: pg_dump", "PGSTREAM_PG_BINDIR");
	EXPECT_LINE(&o, "warning: prepared_transactions (pgstream_test_px)",
	            "ROLLBACK PREPARED 'pgstream_test_px';");
	EXPECT_LINE(&o, "warning: max_slot_wal_keep_size", "1024 MB",
	            "max_slot_wal_keep_size = -1");
	EXPECT_LINE(&o, "info: timeouts (idle_in_transaction_session_timeout)",
	            "is 1min (set for the role)", "sets it to 0");
	EXPECT_LINE(&o, "info: long_transactions", "pg_read_all_stats");
	EXPECT_NO_LINE(&o, "replication_privilege");
	outcome_free(&o);

	/* the target cluster has wal_level=replica: as a source it is refused */
	conninfo(src, &target, "priv_tgt", NULL);
	conninfo(tgt, &source, "priv_src", NULL);
	o = assess(src, tgt, NULL, NULL);
	ck_assert_int_eq(o.status, 2);
	EXPECT_LINE(&o, "blocking: wal_level (source)", "wal_level = logical");
	outcome_free(&o);

	ck_assert(cluster_psql(&source, "priv_src",
	                       "ROLLBACK PREPARED 'pgstream_test_px'"));
	ck_assert(cluster_psql(&source, "postgres",
	                       "ALTER SYSTEM RESET max_slot_wal_keep_size"));
	ck_assert(cluster_psql(&source, "postgres", "SELECT pg_reload_conf()"));
}
END_TEST

Suite *
assess_suite(void)
{
	Suite *s = suite_create("assess");
	TCase *tc = tcase_create("assess");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, a_healthy_pair_has_no_problem);
	tcase_add_test(tc, pg_bin_chooses_the_pg_dump_and_an_older_one_blocks);
	tcase_add_test(tc, tables_without_replica_identity_block_live_sync);
	tcase_add_test(tc, names_and_objects_logical_replication_does_not_carry);
	tcase_add_test(tc, extensions_collations_and_encoding_the_target_cannot_hold);
	tcase_add_test(tc, a_sql_ascii_source_with_bytes_that_are_not_utf8_is_found);
	tcase_add_test(tc, privileges_settings_and_activity);
	suite_add_tcase(s, tc);
	return s;
}
