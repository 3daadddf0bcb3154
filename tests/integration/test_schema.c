/*
 * tests/integration/test_schema.c -- the schema stage (engine/schema/schema.c)
 * against real clusters: capture from a source under an exported snapshot,
 * then pre-data, index and final phases on a target whose login is not a
 * superuser (it only owns the target database, as on Azure).
 *
 * One source and one target cluster per TCase, made in an unchecked
 * fixture.  The source database is made once; every test makes its own
 * target database, so tests do not depend on each other's order.  The
 * library is called directly (no pgstream binary).
 *
 *   phases     what lands in each phase; pre-data leaves no index, FK or
 *              trigger; indexes with 2 jobs are all there and valid; final
 *              adds FKs, triggers, rules, policies; the result matches the
 *              source's catalog; event triggers are kept aside
 *   locks      pre-data too big for one transaction on the target's lock
 *              table is applied in batches
 *   safety     a lost index is rebuilt exactly once; re-runs are no-ops;
 *              two runs at once build each index once; a failing step stops
 *              the phase, is named, and is retried next time; a capture
 *              does not replace applied steps; capture sees the snapshot,
 *              not later changes; no password in error messages
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/pgconn.h"
#include "engine/schema/schema.h"
#include "tests/integration/suites.h"
#include "tests/support/cluster.h"

#define CONNINFO_MAX (PATH_MAX + 256)

/* Also declared in tests/integration/suites.h once registered there. */
Suite *schema_suite(void);
#define SRC_DB "schema_src"

static Cluster source;
static Cluster target;

/*
 * Enums, domains, composite and range types, two trusted extensions, a
 * schema other than public, names with mixed case, spaces, quotes,
 * semicolons and non-ASCII letters, a partitioned table with a primary key
 * and an index, identity and generated columns, unique indexes, an FK, a
 * trigger, an exclusion constraint, a NOT VALID check, a view with a rule,
 * row security with a policy, a materialized view with an index, extended
 * statistics, comments, and an event trigger (which needs a superuser).
 */
#define WS "\"Weird Schema; é\""
#define WT WS ".\"Mixed \"\"Case\"\"; tablé\""
static const char source_schema_sql[] =
    "CREATE EXTENSION citext;"
    "CREATE EXTENSION hstore;"
    "CREATE SCHEMA " WS ";"
    "CREATE TYPE " WS ".mood AS ENUM ('sad', 'ok', 'happy');"
    "CREATE DOMAIN public.posint AS integer CHECK (VALUE > 0);"
    "CREATE TYPE public.pair AS (a integer, b text);"
    "CREATE TYPE public.floatrange AS RANGE (subtype = float8);"
    "CREATE TABLE " WT " ("
    "  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  name citext NOT NULL,"
    "  attrs hstore,"
    "  m " WS ".mood DEFAULT 'ok',"
    "  n public.posint CHECK (n < 1000),"
    "  doubled integer GENERATED ALWAYS AS (n * 2) STORED,"
    "  p public.pair,"
    "  r public.floatrange);"
    "CREATE UNIQUE INDEX \"uq; name\" ON " WT " (name);"
    "COMMENT ON INDEX " WS ".\"uq; name\" IS 'unique; ''names''';"
    "CREATE TABLE public.parent (id integer PRIMARY KEY, note text);"
    "CREATE TABLE public.child (id serial PRIMARY KEY,"
    "  parent_id integer REFERENCES public.parent (id), email text);"
    "CREATE UNIQUE INDEX child_email_lower ON public.child (lower(email));"
    "ALTER TABLE public.child ADD CONSTRAINT child_email_key UNIQUE (email);"
    "ALTER TABLE public.parent ADD CONSTRAINT parent_note_chk"
    "  CHECK (note <> '') NOT VALID;"
    "CREATE TABLE public.events (id bigint NOT NULL, at date NOT NULL,"
    "  payload text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);"
    "CREATE TABLE public.events_2024 PARTITION OF public.events"
    "  FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
    "CREATE TABLE public.events_2025 PARTITION OF public.events"
    "  FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"
    "CREATE INDEX events_payload ON public.events (payload);"
    "CREATE TABLE public.booking (during tsrange,"
    "  EXCLUDE USING gist (during WITH &&));"
    "CREATE FUNCTION public.upper_note() RETURNS trigger LANGUAGE plpgsql"
    "  AS $$BEGIN NEW.note := upper(NEW.note); RETURN NEW; END$$;"
    "CREATE TRIGGER parent_upper BEFORE INSERT ON public.parent"
    "  FOR EACH ROW EXECUTE FUNCTION public.upper_note();"
    "CREATE VIEW public.parent_v AS SELECT id, note FROM public.parent;"
    "CREATE RULE parent_v_upd AS ON UPDATE TO public.parent_v"
    "  DO INSTEAD NOTHING;"
    "ALTER TABLE public.parent ENABLE ROW LEVEL SECURITY;"
    "CREATE POLICY parent_all ON public.parent USING (true);"
    "CREATE MATERIALIZED VIEW public.mv AS SELECT 1 AS x;"
    "CREATE INDEX mv_x ON public.mv (x);"
    "CREATE STATISTICS public.parent_st ON id, note FROM public.parent;"
    "COMMENT ON TABLE public.parent IS 'the parent';"
    "CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql"
    "  AS $$BEGIN END$$;"
    "CREATE EVENT TRIGGER on_ddl ON ddl_command_start"
    "  EXECUTE FUNCTION public.on_ddl();"
    "COMMENT ON EVENT TRIGGER on_ddl IS 'needs a superuser';"
    "INSERT INTO public.parent VALUES (1, 'one'), (2, 'two');"
    "INSERT INTO public.child (parent_id, email) VALUES (1, 'a@x'), (2, "
    "'b@x');";

/* Indexes of user schemas (not pgstream), and how many are invalid. */
#define USER_INDEXES_SQL                                                       \
	"SELECT count(*) FROM pg_index i"                                          \
	" JOIN pg_class c ON c.oid = i.indexrelid"                                 \
	" JOIN pg_namespace n ON n.oid = c.relnamespace"                           \
	" WHERE n.nspname NOT IN ('pg_catalog', 'information_schema',"             \
	" 'pg_toast', 'pgstream')"
#define INVALID_INDEXES_SQL USER_INDEXES_SQL " AND NOT i.indisvalid"

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "target", 0));
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
	ck_assert(cluster_psql(&source, "postgres", "CREATE DATABASE " SRC_DB));
	ck_assert(cluster_psql(&source, SRC_DB, source_schema_sql));
	ck_assert(cluster_psql(&target, "postgres",
	                       "CREATE ROLE migrator LOGIN NOSUPERUSER"));
}

/*
 * A target whose lock table is as small as PostgreSQL allows, and a source
 * with more tables than one transaction on it can create.
 */
#define MANY_TABLES 1500
static void
small_lock_table_setup(void)
{
	char sql[512];

	ck_assert(cluster_init(&source, "source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "target", 0));
	ck_assert(cluster_set(&target, "max_locks_per_transaction = 10"));
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
	ck_assert(cluster_psql(&source, "postgres", "CREATE DATABASE " SRC_DB));
	snprintf(sql, sizeof(sql),
	         "DO $$BEGIN FOR i IN 1..%d LOOP EXECUTE format("
	         "'CREATE TABLE public.t%%s (id int, v text)', i); END LOOP; END$$",
	         MANY_TABLES);
	ck_assert(cluster_psql(&source, SRC_DB, sql));
	ck_assert(cluster_psql(&target, "postgres",
	                       "CREATE ROLE migrator LOGIN NOSUPERUSER"));
}

static void
clusters_teardown(void)
{
	cluster_destroy(&source);
	cluster_destroy(&target);
}

/* ---- helpers ---- */

/* Connection string for the target database as the non-superuser. */
static const char *
target_conninfo(const char *db)
{
	static char buf[CONNINFO_MAX];

	snprintf(buf, sizeof(buf), "%s user=migrator",
	         cluster_conninfo(&target, db));
	return buf;
}

/* A fresh target database owned by migrator, with schema pgstream and the
 * state table; returns a connection as migrator. */
static PGconn *
new_target(const char *db)
{
	PgconnOptions opts = {.kind = PGCONN_SQL};
	char sql[256];
	SyncError err;
	PGconn *conn;

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
	ck_assert(cluster_psql(&target, "postgres", sql));
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s OWNER migrator", db);
	ck_assert(cluster_psql(&target, "postgres", sql));
	conn = pgconn_connect(target_conninfo(db), &opts, "target", &err);
	ck_assert_msg(conn != NULL, "%s", err.message);
	ck_assert_msg(pgconn_exec(conn, "CREATE SCHEMA pgstream", &err), "%s",
	              err.message);
	ck_assert_msg(schema_create_state_table(conn, &err), "%s", err.message);
	return conn;
}

/* Export a snapshot of the source database; the connection keeps it. */
static PGconn *
export_snapshot(char *name, size_t size)
{
	PGconn *conn = cluster_connect(&source, SRC_DB, NULL);
	PGresult *res;

	ck_assert_ptr_nonnull(conn);
	res = PQexec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	res = PQexec(conn, "SELECT pg_export_snapshot()");
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	snprintf(name, size, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return conn;
}

static void
capture(PGconn *tgt)
{
	char snapshot[64];
	PGconn *snap = export_snapshot(snapshot, sizeof(snapshot));
	SyncError err;

	ck_assert_msg(
	    schema_capture(cluster_conninfo(&source, SRC_DB), snapshot, tgt, &err),
	    "%s", err.message);
	PQfinish(snap);
}

/* A target database with the schema captured and pre-data applied. */
static PGconn *
target_with_tables(const char *db)
{
	PGconn *tgt = new_target(db);
	SyncError err;

	capture(tgt);
	ck_assert_msg(schema_apply_pre_data(tgt, &err), "%s", err.message);
	return tgt;
}

/* Progress callback: counts calls and remembers the last step. */
typedef struct Progress
{
	int calls;
	int last_done;
	int last_total;
	char last_name[256];
} Progress;

static void
count_progress(int done, int total, const char *name, void *arg)
{
	Progress *p = arg;

	p->calls++;
	p->last_done = done;
	p->last_total = total;
	snprintf(p->last_name, sizeof(p->last_name), "%s", name);
}

static void
apply_indexes(const char *db, int jobs, Progress *p)
{
	SyncError err;

	ck_assert_msg(schema_apply_indexes(target_conninfo(db), jobs, 0,
	                                   count_progress, p, &err),
	              "%s", err.message);
}

/* Assert a scalar query on the target; frees the value. */
static void
assert_target(const char *db, const char *sql, const char *expected)
{
	char *value = cluster_query_scalar(&target, db, sql);

	ck_assert_msg(value != NULL, "no value for: %s", sql);
	ck_assert_msg(strcmp(value, expected) == 0, "%s: got %s, expected %s", sql,
	              value, expected);
	free(value);
}

static int
target_int(const char *db, const char *sql)
{
	char *value = cluster_query_scalar(&target, db, sql);
	int n;

	ck_assert_msg(value != NULL, "no value for: %s", sql);
	n = (int) strtol(value, NULL, 10);
	free(value);
	return n;
}

static int
source_int(const char *sql)
{
	char *value = cluster_query_scalar(&source, SRC_DB, sql);
	int n;

	ck_assert_msg(value != NULL, "no value for: %s", sql);
	n = (int) strtol(value, NULL, 10);
	free(value);
	return n;
}

static void
assert_counts(PGconn *tgt, int phase, int total, int done)
{
	int t = -1, d = -1;
	SyncError err;

	ck_assert_msg(schema_count_steps(tgt, phase, &t, &d, &err), "%s",
	              err.message);
	ck_assert_int_eq(t, total);
	ck_assert_int_eq(d, done);
}

/*
 * Catalog facts of the user schemas, one a line, sorted: columns (type,
 * NOT NULL, identity, generated, default), constraints, indexes with their
 * validity, partitions, triggers, rules, policies, row security, extended
 * statistics and comments (but not the one on the event trigger).
 */
static const char facts_sql[] =
    "WITH ns AS (SELECT oid FROM pg_namespace"
    "  WHERE nspname IN ('public', 'Weird Schema; é'))"
    "SELECT string_agg(f, E'\n' ORDER BY f COLLATE \"C\") FROM ("
    " SELECT format('column %s.%s %s notnull=%s identity=%s generated=%s"
    "  default=%s', a.attrelid::regclass, a.attname,"
    "  format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,"
    "  a.attgenerated, pg_get_expr(d.adbin, d.adrelid)) AS f"
    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    " WHERE c.relnamespace IN (SELECT oid FROM ns) AND a.attnum > 0"
    "  AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')"
    " UNION ALL SELECT format('constraint %s on %s: %s validated=%s', conname,"
    "  conrelid::regclass, pg_get_constraintdef(oid), convalidated)"
    " FROM pg_constraint WHERE connamespace IN (SELECT oid FROM ns)"
    " UNION ALL SELECT format('index %s: %s valid=%s', i.indexrelid::regclass,"
    "  pg_get_indexdef(i.indexrelid), i.indisvalid)"
    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE c.relnamespace IN (SELECT oid FROM ns)"
    " UNION ALL SELECT format('inherits %s %s', inhrelid::regclass,"
    "  inhparent::regclass) FROM pg_inherits"
    " UNION ALL SELECT format('trigger %s', pg_get_triggerdef(oid))"
    " FROM pg_trigger WHERE NOT tgisinternal"
    " UNION ALL SELECT format('rule %s on %s', rulename, ev_class::regclass)"
    " FROM pg_rewrite WHERE rulename <> '_RETURN'"
    "  AND ev_class IN (SELECT oid FROM pg_class"
    "  WHERE relnamespace IN (SELECT oid FROM ns))"
    " UNION ALL SELECT format('policy %s on %s', polname, polrelid::regclass)"
    " FROM pg_policy"
    " UNION ALL SELECT format('row security on %s', oid::regclass)"
    " FROM pg_class WHERE relrowsecurity"
    " UNION ALL SELECT format('statistics %s', stxname) FROM pg_statistic_ext"
    " UNION ALL SELECT format('comment on %s: %s',"
    "  pg_describe_object(classoid, objoid, objsubid), description)"
    " FROM pg_description WHERE objoid >= 16384"
    "  AND classoid <> 'pg_event_trigger'::regclass"
    "  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = classoid"
    "  AND x.objid = objoid AND x.deptype = 'e')"
    ") facts";

static void
assert_same_facts(const char *db)
{
	char *want = cluster_query_scalar(&source, SRC_DB, facts_sql);
	char *got = cluster_query_scalar(&target, db, facts_sql);

	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(got);
	ck_assert_msg(strstr(want, "trigger CREATE TRIGGER parent_upper") != NULL,
	              "facts miss what they should hold:\n%s", want);
	ck_assert_msg(strcmp(want, got) == 0, "source:\n%s\n\ntarget:\n%s", want,
	              got);
	free(want);
	free(got);
}

/* ---- phases ---- */

START_TEST(capture_puts_each_entry_in_its_phase)
{
	PGconn *tgt = new_target("cap_tgt");

	capture(tgt);
	/* nothing was created yet */
	assert_target("cap_tgt",
	              "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
	              " ON n.oid = c.relnamespace WHERE n.nspname IN"
	              " ('public', 'Weird Schema; é')",
	              "0");
	assert_target("cap_tgt",
	              "SELECT count(*) FROM pgstream.schema_steps WHERE id = 0"
	              " AND phase = 0 AND sql LIKE 'SET LOCAL statement_timeout%'"
	              " AND sql LIKE '%set_config(''search_path'', '''', true)%'",
	              "1");
	/* the index phase holds only what belongs there, waves by kind */
	assert_target("cap_tgt",
	              "SELECT string_agg(DISTINCT kind, ',' ORDER BY kind)"
	              " FROM pgstream.schema_steps WHERE phase = 2",
	              "CONSTRAINT,INDEX,INDEX ATTACH");
	assert_target("cap_tgt",
	              "SELECT string_agg(name, ',' ORDER BY id)"
	              " FROM pgstream.schema_steps WHERE phase = 2 AND wave = 2"
	              " AND kind <> 'INDEX ATTACH'",
	              "public.events events_pkey,public.events_payload");
	assert_target("cap_tgt",
	              "SELECT count(*) FROM pgstream.schema_steps"
	              " WHERE kind = 'INDEX ATTACH' AND wave = 2",
	              "4");
	assert_target(
	    "cap_tgt",
	    "SELECT string_agg(DISTINCT kind, ',' ORDER BY kind)"
	    " FROM pgstream.schema_steps WHERE phase = 3",
	    "CHECK CONSTRAINT,COMMENT,FK CONSTRAINT,MATERIALIZED VIEW DATA,"
	    "POLICY,ROW SECURITY,RULE,STATISTICS,TRIGGER");
	/* the refresh comes last, after the index on the view */
	assert_target(
	    "cap_tgt",
	    "SELECT kind || ': ' || sql FROM pgstream.schema_steps"
	    " WHERE id = (SELECT max(id) FROM pgstream.schema_steps)",
	    "MATERIALIZED VIEW DATA: REFRESH MATERIALIZED VIEW public.mv;\n");
	assert_target("cap_tgt",
	              "SELECT string_agg(kind || ' ' || name, ',' ORDER BY id)"
	              " FROM pgstream.schema_steps WHERE phase = 4",
	              "COMMENT EXTENSION citext,COMMENT EXTENSION hstore,"
	              "EVENT TRIGGER on_ddl,COMMENT EVENT TRIGGER on_ddl");
	assert_target("cap_tgt",
	              "SELECT name FROM pgstream.schema_steps WHERE kind = 'INDEX'"
	              " AND sql LIKE '%uq; name%'",
	              "Weird Schema; é.uq; name");
	/* no owners, no grants, no tablespaces */
	assert_target(
	    "cap_tgt",
	    "SELECT count(*) FROM pgstream.schema_steps WHERE sql ~"
	    " '(OWNER TO|GRANT |REVOKE |default_tablespace|AUTHORIZATION)'",
	    "0");
	PQfinish(tgt);
}
END_TEST

START_TEST(pre_data_creates_tables_without_indexes_fks_or_triggers)
{
	PGconn *tgt = target_with_tables("pre_tgt");
	int pre_total = -1, pre_done = -1;
	SyncError err;

	ck_assert(
	    schema_count_steps(tgt, SCHEMA_PHASE_PRE, &pre_total, &pre_done, &err));
	ck_assert_int_gt(pre_total, 20);
	ck_assert_int_eq(pre_done, pre_total);
	assert_target("pre_tgt",
	              "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
	              " ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')"
	              " AND n.nspname IN ('public', 'Weird Schema; é')",
	              "7");
	assert_target(
	    "pre_tgt",
	    "SELECT string_agg(format('%s:%s%s', attname, attidentity, "
	    "attgenerated),"
	    " ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid ="
	    " '\"Weird Schema; é\".\"Mixed \"\"Case\"\"; tablé\"'::regclass"
	    " AND attname IN ('id', 'doubled')",
	    "id:a,doubled:s");
	assert_target("pre_tgt",
	              "SELECT count(*) FROM pg_extension"
	              " WHERE extname IN ('citext', 'hstore')",
	              "2");
	assert_target("pre_tgt",
	              "SELECT pg_get_userbyid(relowner) FROM pg_class"
	              " WHERE oid = 'public.parent'::regclass",
	              "migrator");
	assert_target("pre_tgt", USER_INDEXES_SQL, "0");
	assert_target("pre_tgt",
	              "SELECT count(*) FROM pg_constraint WHERE contype IN"
	              " ('f', 'p', 'u', 'x') AND connamespace IN (SELECT oid FROM "
	              "pg_namespace"
	              " WHERE nspname IN ('public', 'Weird Schema; é'))",
	              "0");
	assert_target("pre_tgt",
	              "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal",
	              "0");
	assert_target("pre_tgt", "SELECT count(*) FROM pg_event_trigger", "0");
	assert_target("pre_tgt",
	              "SELECT relispopulated FROM pg_class"
	              " WHERE oid = 'public.mv'::regclass",
	              "f");
	/* applying again does nothing */
	ck_assert_msg(schema_apply_pre_data(tgt, &err), "%s", err.message);
	PQfinish(tgt);
}
END_TEST

START_TEST(indexes_are_built_in_parallel_and_valid)
{
	PGconn *tgt = target_with_tables("idx_tgt");
	Progress p = {0};
	int total = -1, done = -1;
	SyncError err;

	ck_assert(
	    cluster_psql(&target, "idx_tgt",
	                 "INSERT INTO public.parent VALUES (1, 'ONE');"
	                 "INSERT INTO public.events VALUES (1, '2024-05-01', 'x'),"
	                 " (2, '2025-05-01', 'y')"));
	ck_assert(schema_count_steps(tgt, SCHEMA_PHASE_INDEX, &total, &done, &err));
	ck_assert_int_eq(done, 0);
	apply_indexes("idx_tgt", 2, &p);
	ck_assert_int_eq(p.calls, total);
	ck_assert_int_eq(p.last_done, total);
	ck_assert_int_eq(p.last_total, total);
	/* wave 2 ends the phase, in TOC order: the last INDEX ATTACH */
	ck_assert_msg(strncmp(p.last_name, "INDEX ATTACH ", 13) == 0, "%s",
	              p.last_name);
	assert_counts(tgt, SCHEMA_PHASE_INDEX, total, total);
	ck_assert_int_eq(target_int("idx_tgt", USER_INDEXES_SQL),
	                 source_int(USER_INDEXES_SQL));
	assert_target("idx_tgt", INVALID_INDEXES_SQL, "0");
	assert_target(
	    "idx_tgt",
	    "SELECT string_agg(format('%s:%s:%s:%s', c.relname, c.relkind,"
	    " i.indisvalid, i.indisprimary), ',' ORDER BY c.relname)"
	    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
	    " WHERE i.indrelid = 'public.events'::regclass",
	    "events_payload:I:t:f,events_pkey:I:t:t");
	assert_target(
	    "idx_tgt",
	    "SELECT count(*) FROM pg_inherits WHERE inhparent IN"
	    " ('public.events_pkey'::regclass, 'public.events_payload'::regclass)",
	    "4");
	assert_target("idx_tgt",
	              "SELECT indisunique FROM pg_index WHERE indexrelid ="
	              " '\"Weird Schema; é\".\"uq; name\"'::regclass",
	              "t");
	assert_target("idx_tgt",
	              "SELECT count(*) FROM pg_constraint WHERE contype = 'f'",
	              "0");
	PQfinish(tgt);
}
END_TEST

START_TEST(final_adds_fks_triggers_rules_and_policies)
{
	PGconn *tgt = target_with_tables("fin_tgt");
	Progress p = {0};
	int total = -1, done = -1;
	SyncError err;

	apply_indexes("fin_tgt", 2, &p);
	ck_assert_msg(schema_apply_final(tgt, &err), "%s", err.message);
	ck_assert(schema_count_steps(tgt, SCHEMA_PHASE_FINAL, &total, &done, &err));
	ck_assert_int_gt(total, 0);
	ck_assert_int_eq(done, total);
	assert_target("fin_tgt",
	              "SELECT convalidated FROM pg_constraint"
	              " WHERE conname = 'child_parent_id_fkey' AND contype = 'f'",
	              "t");
	assert_target("fin_tgt",
	              "SELECT convalidated FROM pg_constraint"
	              " WHERE conname = 'parent_note_chk'",
	              "f");
	ck_assert(cluster_psql(&target, "fin_tgt",
	                       "INSERT INTO public.parent VALUES (7, 'seven')"));
	assert_target("fin_tgt", "SELECT note FROM public.parent WHERE id = 7",
	              "SEVEN");
	assert_target("fin_tgt",
	              "SELECT count(*) FROM pg_policy WHERE polname = 'parent_all'",
	              "1");
	assert_target(
	    "fin_tgt",
	    "SELECT count(*) FROM pg_rules WHERE rulename = 'parent_v_upd'", "1");
	assert_target("fin_tgt", "SELECT count(*) FROM pg_event_trigger", "0");
	assert_target("fin_tgt",
	              "SELECT relispopulated FROM pg_class"
	              " WHERE oid = 'public.mv'::regclass",
	              "t");
	assert_target("fin_tgt",
	              "SELECT count(*) FROM pgstream.schema_steps"
	              " WHERE phase = 4 AND done",
	              "0");
	/* the same catalog facts as the source */
	assert_same_facts("fin_tgt");
	/* applying again does nothing */
	ck_assert_msg(schema_apply_final(tgt, &err), "%s", err.message);
	PQfinish(tgt);
}
END_TEST

/* ---- safety ---- */

START_TEST(a_lost_index_is_rebuilt_exactly_once)
{
	PGconn *tgt = target_with_tables("once_tgt");
	Progress p = {0};
	int total = -1, done = -1;
	SyncError err;

	apply_indexes("once_tgt", 2, &p);
	/* as if a crash had lost the build: index gone, step not done */
	ck_assert(cluster_psql(&target, "once_tgt",
	                       "DROP INDEX public.child_email_lower;"
	                       "UPDATE pgstream.schema_steps SET done = false"
	                       " WHERE name = 'public.child_email_lower'"));
	ck_assert(schema_count_steps(tgt, SCHEMA_PHASE_INDEX, &total, &done, &err));
	ck_assert_int_eq(done, total - 1);
	memset(&p, 0, sizeof(p));
	apply_indexes("once_tgt", 2, &p);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_str_eq(p.last_name, "INDEX public.child_email_lower");
	ck_assert_int_eq(p.last_done, total);
	assert_target(
	    "once_tgt",
	    "SELECT count(*) FROM pg_class WHERE relname = 'child_email_lower'",
	    "1");
	assert_counts(tgt, SCHEMA_PHASE_INDEX, total, total);
	/* all done: nothing runs (a second CREATE INDEX would fail) */
	memset(&p, 0, sizeof(p));
	apply_indexes("once_tgt", 2, &p);
	ck_assert_int_eq(p.calls, 0);
	PQfinish(tgt);
}
END_TEST

/* The index sessions' memory is raised for the session, never lowered. */
START_TEST(index_memory_is_raised_never_lowered)
{
	PgconnOptions opts = {.kind = PGCONN_SQL};
	SyncError err;
	char v[64];
	PGconn *conn;

	ck_assert(cluster_psql(&target, "postgres",
	                       "CREATE DATABASE memtgt OWNER migrator"));
	conn = pgconn_connect(target_conninfo("memtgt"), &opts, "target", &err);
	ck_assert_msg(conn != NULL, "%s", err.message);
	ck_assert_msg(schema_raise_index_memory(conn, 0, &err), "%s", err.message);
	ck_assert(pgconn_query_value(conn, "SHOW maintenance_work_mem", 0, NULL, v,
	                             sizeof(v), false, &err));
	ck_assert_str_eq(v, "64MB"); /* the server's default, untouched */
	ck_assert_msg(schema_raise_index_memory(conn, 300, &err), "%s", err.message);
	ck_assert(pgconn_query_value(conn, "SHOW maintenance_work_mem", 0, NULL, v,
	                             sizeof(v), false, &err));
	ck_assert_str_eq(v, "300MB");
	ck_assert_msg(schema_raise_index_memory(conn, 100, &err), "%s", err.message);
	ck_assert(pgconn_query_value(conn, "SHOW maintenance_work_mem", 0, NULL, v,
	                             sizeof(v), false, &err));
	ck_assert_str_eq(v, "300MB");
	pgconn_close(conn);
	ck_assert(cluster_psql(&target, "postgres", "DROP DATABASE memtgt"));
}
END_TEST

typedef struct ConcurrentRun
{
	pthread_t thread;
	bool ok;
	SyncError err;
} ConcurrentRun;

static void *
run_indexes_thread(void *arg)
{
	ConcurrentRun *r = arg;

	r->ok = schema_apply_indexes(target_conninfo("twice_tgt"), 2, 128, NULL, NULL,
	                             &r->err);
	return NULL;
}

START_TEST(two_runs_at_once_build_each_index_once)
{
	PGconn *tgt = target_with_tables("twice_tgt");
	ConcurrentRun runs[2] = {0};

	(void) target_conninfo("twice_tgt"); /* same static string for both */
	for (int i = 0; i < 2; i++)
		ck_assert(pthread_create(&runs[i].thread, NULL, run_indexes_thread,
		                         &runs[i]) == 0);
	for (int i = 0; i < 2; i++)
	{
		pthread_join(runs[i].thread, NULL);
		ck_assert_msg(runs[i].ok, "run %d: %s", i, runs[i].err.message);
	}
	ck_assert_int_eq(target_int("twice_tgt", USER_INDEXES_SQL),
	                 source_int(USER_INDEXES_SQL));
	assert_target("twice_tgt", INVALID_INDEXES_SQL, "0");
	assert_target("twice_tgt",
	              "SELECT count(*) FROM pgstream.schema_steps"
	              " WHERE phase = 2 AND NOT done",
	              "0");
	PQfinish(tgt);
}
END_TEST

START_TEST(a_failing_step_stops_the_phase_and_is_retried)
{
	PGconn *tgt = target_with_tables("fail_tgt");
	Progress p = {0};
	SyncError err;
	int total = -1, done = -1;

	ck_assert(cluster_psql(&target, "fail_tgt",
	                       "INSERT INTO public.child (id, email)"
	                       " VALUES (1, 'dup'), (2, 'dup')"));
	ck_assert(!schema_apply_indexes(target_conninfo("fail_tgt"), 2, 0,
	                                count_progress, &p, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_SERVER);
	ck_assert_str_eq(err.sqlstate, "23505");
	ck_assert_msg(
	    strstr(err.message, "CONSTRAINT public.child child_email_key") ||
	        strstr(err.message, "INDEX public.child_email_lower"),
	    "%s", err.message);
	ck_assert(schema_count_steps(tgt, SCHEMA_PHASE_INDEX, &total, &done, &err));
	ck_assert_int_lt(done, total);
	assert_target("fail_tgt",
	              "SELECT count(*) FROM pgstream.schema_steps WHERE NOT done"
	              " AND name IN ('public.child child_email_key',"
	              " 'public.child_email_lower')",
	              "2");
	/* fix the data: the next run finishes the phase */
	ck_assert(
	    cluster_psql(&target, "fail_tgt",
	                 "UPDATE public.child SET email = 'ok' WHERE id = 2"));
	memset(&p, 0, sizeof(p));
	apply_indexes("fail_tgt", 2, &p);
	ck_assert_int_eq(p.calls, total - done);
	assert_counts(tgt, SCHEMA_PHASE_INDEX, total, total);
	assert_target("fail_tgt", INVALID_INDEXES_SQL, "0");
	PQfinish(tgt);
}
END_TEST

START_TEST(capture_replaces_unapplied_steps_but_not_applied_ones)
{
	PGconn *tgt = new_target("recap_tgt");
	int total = -1, done = -1;
	int total2 = -1;
	SyncError err;

	capture(tgt);
	ck_assert(schema_count_steps(tgt, SCHEMA_PHASE_PRE, &total, &done, &err));
	capture(tgt); /* nothing applied yet: replaced, not added to */
	ck_assert(schema_count_steps(tgt, SCHEMA_PHASE_PRE, &total2, &done, &err));
	ck_assert_int_eq(total2, total);
	ck_assert_msg(schema_apply_pre_data(tgt, &err), "%s", err.message);
	{
		char snapshot[64];
		PGconn *snap = export_snapshot(snapshot, sizeof(snapshot));

		ck_assert(!schema_capture(cluster_conninfo(&source, SRC_DB), snapshot,
		                          tgt, &err));
		ck_assert_int_eq(err.code, SYNC_ERR_PRECONDITION);
		PQfinish(snap);
	}
	assert_counts(tgt, SCHEMA_PHASE_PRE, total, total);
	PQfinish(tgt);
}
END_TEST

START_TEST(capture_sees_the_snapshot_not_later_changes)
{
	PGconn *tgt = new_target("snap_tgt");
	char snapshot[64];
	PGconn *snap = export_snapshot(snapshot, sizeof(snapshot));
	SyncError err;

	ck_assert(cluster_psql(
	    &source, SRC_DB,
	    "CREATE TABLE public.after_snapshot (id int PRIMARY KEY)"));
	ck_assert_msg(
	    schema_capture(cluster_conninfo(&source, SRC_DB), snapshot, tgt, &err),
	    "%s", err.message);
	PQfinish(snap);
	ck_assert(
	    cluster_psql(&source, SRC_DB, "DROP TABLE public.after_snapshot"));
	assert_target("snap_tgt",
	              "SELECT count(*) FROM pgstream.schema_steps"
	              " WHERE sql LIKE '%after_snapshot%'",
	              "0");
	PQfinish(tgt);
}
END_TEST

START_TEST(errors_name_the_program_and_never_the_password)
{
	PGconn *tgt = new_target("pw_tgt");
	char conninfo[CONNINFO_MAX];
	SyncError err;

	/* a closed port: pg_dump fails to connect */
	snprintf(conninfo, sizeof(conninfo),
	         "host=%s port=1 user=postgres dbname=" SRC_DB " password=s3cr3t",
	         source.basedir);
	ck_assert(!schema_capture(conninfo, NULL, tgt, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_IO);
	ck_assert_msg(strstr(err.message, "pg_dump") != NULL, "%s", err.message);
	ck_assert_msg(strstr(err.message, "s3cr3t") == NULL, "%s", err.message);
	/* with the right port the password goes through PGPASSWORD (trust
	 * ignores it) and the capture works */
	snprintf(conninfo, sizeof(conninfo), "%s password=s3cr3t",
	         cluster_conninfo(&source, SRC_DB));
	ck_assert_msg(schema_capture(conninfo, NULL, tgt, &err), "%s", err.message);
	/* event trigger and its comment, and the two extensions' comments */
	assert_counts(tgt, SCHEMA_PHASE_SKIPPED, 4, 0);
	PQfinish(tgt);
}
END_TEST

START_TEST(pre_data_too_big_for_one_transaction_is_batched)
{
	PGconn *tgt = new_target("many_tgt");
	char sql[512];
	char expected[16];
	SyncError err;

	/* the premise: one transaction cannot create them all on this target */
	snprintf(sql, sizeof(sql),
	         "DO $$BEGIN FOR i IN 1..%d LOOP EXECUTE format("
	         "'CREATE TABLE public.premise%%s (id int, v text)', i); END LOOP;"
	         " END$$",
	         MANY_TABLES);
	ck_assert(!cluster_psql(&target, "many_tgt", sql));
	capture(tgt);
	ck_assert_msg(schema_apply_pre_data(tgt, &err), "%s", err.message);
	snprintf(expected, sizeof(expected), "%d", MANY_TABLES);
	assert_target("many_tgt",
	              "SELECT count(*) FROM pg_class WHERE relkind = 'r'"
	              " AND relnamespace = 'public'::regnamespace",
	              expected);
	assert_counts(tgt, SCHEMA_PHASE_PRE, MANY_TABLES, MANY_TABLES);
	PQfinish(tgt);
}
END_TEST

Suite *
schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("phases");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, capture_puts_each_entry_in_its_phase);
	tcase_add_test(tc, pre_data_creates_tables_without_indexes_fks_or_triggers);
	tcase_add_test(tc, indexes_are_built_in_parallel_and_valid);
	tcase_add_test(tc, final_adds_fks_triggers_rules_and_policies);
	suite_add_tcase(s, tc);

	tc = tcase_create("safety");
	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, a_lost_index_is_rebuilt_exactly_once);
	tcase_add_test(tc, two_runs_at_once_build_each_index_once);
	tcase_add_test(tc, index_memory_is_raised_never_lowered);
	tcase_add_test(tc, a_failing_step_stops_the_phase_and_is_retried);
	tcase_add_test(tc, capture_replaces_unapplied_steps_but_not_applied_ones);
	tcase_add_test(tc, capture_sees_the_snapshot_not_later_changes);
	tcase_add_test(tc, errors_name_the_program_and_never_the_password);
	suite_add_tcase(s, tc);

	tc = tcase_create("locks");
	tcase_add_unchecked_fixture(tc, small_lock_table_setup, clusters_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, pre_data_too_big_for_one_transaction_is_batched);
	suite_add_tcase(s, tc);
	return s;
}
