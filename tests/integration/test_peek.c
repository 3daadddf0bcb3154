/*
 * tests/integration/test_peek.c -- acceptance test for `pgstream peek`.
 *
 * One source cluster (wal_level=logical, logical_decoding_work_mem=64kB so
 * that a big transaction is streamed) gets a fixed workload written behind
 * an existing pgoutput slot, once, in an unchecked fixture.  The tests then
 * run $PGSTREAM_BIN peek --json against that slot and check every line:
 *
 *   T1  INSERT 4 rows into t (one TOASTed out of line, one NULL, one that
 *       needs JSON escaping)
 *   T2  INSERT into a, a, b and f (f has REPLICA IDENTITY FULL)
 *   T3  UPDATE t SET v (big stays an unchanged TOAST value)
 *   T4  UPDATE t SET id (old key sent)
 *   T5  UPDATE f (old tuple sent)
 *   T6  DELETE FROM t (old key: id only)
 *   T7  DELETE FROM f (old tuple)
 *   T8  TRUNCATE a, b RESTART IDENTITY (one truncate line)
 *   T9  transactional logical message
 *   --  non-transactional logical message
 *   --  a rolled-back INSERT (must never show)
 *   T10 20000 INSERTs into bulk: streamed as stream_start/stop blocks and
 *       a stream_commit
 *
 * The lines are checked with a small state machine (begin/commit pairing,
 * stream blocks, xids) and, for the non-streamed changes, by comparing the
 * whole line with the expected JSON.  Peek must never advance the slot, so
 * running it twice prints the same thing.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/failpoint_ctl.h"
#include "tests/support/proc.h"

#define PEEK_TIMEOUT_MS 180000
#define BULK_ROWS 20000
#define MAX_CHANGES 32

static Cluster src;

static const char schema_sql[] =
    "CREATE TABLE t (id int PRIMARY KEY, v text, big text);"
    "ALTER TABLE t ALTER big SET STORAGE EXTERNAL;"
    "CREATE TABLE a (id int PRIMARY KEY);"
    "CREATE TABLE b (id int PRIMARY KEY);"
    "CREATE TABLE f (id int PRIMARY KEY, v text);"
    "ALTER TABLE f REPLICA IDENTITY FULL;"
    "CREATE TABLE bulk (id int PRIMARY KEY, pad text);"
    "CREATE PUBLICATION p FOR ALL TABLES";

/* One transaction per entry (several statements in one entry share one). */
static const char *const workload[] = {
    "INSERT INTO t VALUES (1, 'one', repeat(md5(random()::text), 400)),"
    " (2, 'two', NULL), (3, 'three', 'small'),"
    " (4, E'q\"b\\\\s\\nt\\tz', NULL)",
    "INSERT INTO a VALUES (1), (2); INSERT INTO b VALUES (1);"
    " INSERT INTO f VALUES (1, 'a')",
    "UPDATE t SET v = 'uno' WHERE id = 1",
    "UPDATE t SET id = 30 WHERE id = 3",
    "UPDATE f SET v = 'b' WHERE id = 1",
    "DELETE FROM t WHERE id = 2",
    "DELETE FROM f WHERE id = 1",
    "TRUNCATE a, b RESTART IDENTITY",
    "SELECT pg_logical_emit_message(true, 'pgstream-test', 'hello')",
    "SELECT pg_logical_emit_message(false, 'pgstream-test', 'nontx')",
    "BEGIN; INSERT INTO t VALUES (99, 'rolled-back-marker', NULL); ROLLBACK",
    "INSERT INTO bulk SELECT g, repeat('x', 100)"
    " FROM generate_series(1, 20000) g",
};

#define N_TRANSACTIONS 9 /* begin/commit pairs: T1..T9 */

/*
 * The non-streamed changes in order: kind, whether the line carries an xid,
 * and everything after the xid.  Entry 0 is completed at run time with the
 * TOASTed value.
 */
typedef struct ExpectedChange
{
	const char *kind;
	bool has_xid;
	const char *tail;
} ExpectedChange;

static const ExpectedChange expected_changes[] = {
    {"insert", true, NULL}, /* t id 1, filled in by expected_line() */
    {"insert", true,
     "\"relation\":\"public.t\",\"new\":{\"id\":\"2\",\"v\":\"two\","
     "\"big\":null}}"},
    {"insert", true,
     "\"relation\":\"public.t\",\"new\":{\"id\":\"3\",\"v\":\"three\","
     "\"big\":\"small\"}}"},
    {"insert", true,
     "\"relation\":\"public.t\",\"new\":{\"id\":\"4\","
     "\"v\":\"q\\\"b\\\\s\\nt\\tz\",\"big\":null}}"},
    {"insert", true, "\"relation\":\"public.a\",\"new\":{\"id\":\"1\"}}"},
    {"insert", true, "\"relation\":\"public.a\",\"new\":{\"id\":\"2\"}}"},
    {"insert", true, "\"relation\":\"public.b\",\"new\":{\"id\":\"1\"}}"},
    {"insert", true,
     "\"relation\":\"public.f\",\"new\":{\"id\":\"1\",\"v\":\"a\"}}"},
    {"update", true,
     "\"relation\":\"public.t\",\"new\":{\"id\":\"1\",\"v\":\"uno\","
     "\"big\":{\"unchanged_toast\":true}}}"},
    {"update", true,
     "\"relation\":\"public.t\",\"old_kind\":\"key\",\"old\":{\"id\":\"3\"},"
     "\"new\":{\"id\":\"30\",\"v\":\"three\",\"big\":\"small\"}}"},
    {"update", true,
     "\"relation\":\"public.f\",\"old_kind\":\"tuple\","
     "\"old\":{\"id\":\"1\",\"v\":\"a\"},\"new\":{\"id\":\"1\",\"v\":\"b\"}}"},
    {"delete", true,
     "\"relation\":\"public.t\",\"old_kind\":\"key\",\"old\":{\"id\":\"2\"}}"},
    {"delete", true,
     "\"relation\":\"public.f\",\"old_kind\":\"tuple\","
     "\"old\":{\"id\":\"1\",\"v\":\"b\"}}"},
    {"truncate", true,
     "\"relations\":[\"public.a\",\"public.b\"],\"cascade\":false,"
     "\"restart_identity\":true}"},
    {"message", true,
     "\"transactional\":true,\"prefix\":\"pgstream-test\","
     "\"content\":\"hello\"}"},
    {"message", false,
     "\"transactional\":false,\"prefix\":\"pgstream-test\","
     "\"content\":\"nontx\"}"},
};

#define N_CHANGES (sizeof(expected_changes) / sizeof(expected_changes[0]))

/* ---- fixture ---- */

static void
assert_toasted_out_of_line(void)
{
	char *toast = cluster_query_scalar(
	    &src, NULL,
	    "SELECT reltoastrelid::regclass::text FROM pg_class "
	    "WHERE oid = 'public.t'::regclass");
	char sql[256];
	char *chunks;

	ck_assert_ptr_nonnull(toast);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", toast);
	chunks = cluster_query_scalar(&src, NULL, sql);
	ck_assert_ptr_nonnull(chunks);
	ck_assert_msg(strtol(chunks, NULL, 10) >= 6,
	              "row 1's big value is not TOASTed out of line (%s chunks)",
	              chunks);
	free(toast);
	free(chunks);
}

static void
peek_setup(void)
{
	ck_assert(cluster_init(&src, "peek", CLUSTER_LOGICAL));
	ck_assert(cluster_set(&src, "logical_decoding_work_mem = 64kB"));
	ck_assert(cluster_start(&src));
	ck_assert(cluster_psql(&src, NULL, schema_sql));
	ck_assert(cluster_psql(
	    &src, NULL,
	    "SELECT pg_create_logical_replication_slot('s', 'pgoutput')"));
	for (size_t i = 0; i < sizeof(workload) / sizeof(workload[0]); i++)
		ck_assert_msg(cluster_psql(&src, NULL, workload[i]),
		              "workload step %zu", i);
	assert_toasted_out_of_line();
}

static void
peek_teardown(void)
{
	cluster_destroy(&src);
}

/* ---- running peek ---- */

typedef struct PeekRun
{
	int status;
	char *out; /* owned */
	char *err; /* owned */
} PeekRun;

static const char *
pgstream_bin(void)
{
	const char *bin = getenv("PGSTREAM_BIN");

	ck_assert_msg(bin != NULL && *bin != '\0',
	              "PGSTREAM_BIN is not set (make check-integration sets it)");
	return bin;
}

/* Peek never holds the slot after it exits; wait until the walsender is
 * gone so the next run can acquire it. */
static void
wait_slot_released(void)
{
	ck_assert(cluster_wait_for(&src, NULL,
	                           "SELECT NOT active FROM pg_replication_slots "
	                           "WHERE slot_name = 's'",
	                           30000));
}

/* Run `pgstream peek --source <src> <args...>` (args NULL-terminated). */
static void
run_peek(PeekRun *r, const char *const args[])
{
	const char *argv[24];
	size_t n = 0;

	argv[n++] = pgstream_bin();
	argv[n++] = "peek";
	argv[n++] = "--source";
	argv[n++] = cluster_conninfo(&src, "postgres");
	for (size_t i = 0; args[i] != NULL && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	r->status = proc_run(argv, NULL, PEEK_TIMEOUT_MS, &r->out, &r->err);
	ck_assert_ptr_nonnull(r->out);
	ck_assert_ptr_nonnull(r->err);
}

static void
peek_run_free(PeekRun *r)
{
	free(r->out);
	free(r->err);
}

static void
run_peek_json(PeekRun *r)
{
	static const char *const args[] = {"--slot", "s",      "--publication",
	                                   "p",      "--json", "--idle-exit",
	                                   "3",      NULL};

	wait_slot_released();
	run_peek(r, args);
	ck_assert_msg(r->status == 0, "peek exited with %d; stderr:\n%s", r->status,
	              r->err);
}

/* ---- splitting and reading lines ---- */

typedef struct Lines
{
	char **v; /* owned array; strings point into the output */
	size_t n;
} Lines;

/* Split out (modified in place) into lines; every line must end in '\n'. */
static void
lines_split(Lines *l, char *out)
{
	size_t cap = 1024;

	l->n = 0;
	l->v = malloc(cap * sizeof(char *));
	ck_assert_ptr_nonnull(l->v);
	for (char *p = out; *p != '\0';)
	{
		char *nl = strchr(p, '\n');

		ck_assert_msg(nl != NULL, "last line has no newline: %.200s", p);
		*nl = '\0';
		if (l->n == cap)
		{
			cap *= 2;
			l->v = realloc(l->v, cap * sizeof(char *));
			ck_assert_ptr_nonnull(l->v);
		}
		l->v[l->n++] = p;
		p = nl + 1;
	}
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The value of "kind", copied into buf. */
static const char *
line_kind(const char *line, char *buf, size_t len)
{
	const char *p = line + strlen("{\"kind\":\"");
	const char *q;

	ck_assert_msg(starts_with(line, "{\"kind\":\"") &&
	                  line[strlen(line) - 1] == '}',
	              "not a JSON object starting with kind: %.200s", line);
	q = strchr(p, '"');
	ck_assert_msg(q != NULL && (size_t) (q - p) < len, "bad kind: %.200s",
	              line);
	memcpy(buf, p, (size_t) (q - p));
	buf[q - p] = '\0';
	return buf;
}

/* Position of "key": in line, or NULL. */
static const char *
find_key(const char *line, const char *key)
{
	char pat[64];

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	return strstr(line, pat);
}

/* A simple (escape-free) string field, copied into buf. */
static void
str_field(const char *line, const char *key, char *buf, size_t len)
{
	const char *p = find_key(line, key);
	const char *q;

	ck_assert_msg(p != NULL, "no \"%s\" in: %.200s", key, line);
	p += strlen(key) + 3;
	ck_assert_msg(*p++ == '"', "\"%s\" is not a string: %.200s", key, line);
	q = strchr(p, '"');
	ck_assert_msg(q != NULL && (size_t) (q - p) < len, "bad \"%s\": %.200s",
	              key, line);
	memcpy(buf, p, (size_t) (q - p));
	buf[q - p] = '\0';
}

static long long
int_field(const char *line, const char *key)
{
	const char *p = find_key(line, key);
	char *end;
	long long v;

	ck_assert_msg(p != NULL, "no \"%s\" in: %.200s", key, line);
	p += strlen(key) + 3;
	v = strtoll(p, &end, 10);
	ck_assert_msg(end != p && (*end == ',' || *end == '}'),
	              "\"%s\" is not an integer: %.200s", key, line);
	return v;
}

/* Keys appear, in this order (NULL-terminated). */
static void
assert_keys_in_order(const char *line, const char *const keys[])
{
	const char *pos = line;

	for (size_t i = 0; keys[i] != NULL; i++)
	{
		const char *p = find_key(pos, keys[i]);

		ck_assert_msg(p != NULL, "\"%s\" missing or out of order in: %.300s",
		              keys[i], line);
		pos = p + 1;
	}
}

/* "X/Y" with upper-case hex, as PostgreSQL prints an LSN. */
static void
assert_lsn(const char *lsn, const char *line)
{
	const char *slash = strchr(lsn, '/');
	bool ok = slash != NULL && slash != lsn && slash[1] != '\0';

	for (const char *p = lsn; ok && *p; p++)
		ok = p == slash || (*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F');
	ck_assert_msg(ok, "bad LSN \"%s\" in: %.200s", lsn, line);
}

static void
assert_timestamp_field(const char *line, const char *key)
{
	char ts[64];
	size_t len;

	str_field(line, key, ts, sizeof(ts));
	len = strlen(ts);
	ck_assert_msg(len >= 20 && ts[4] == '-' && ts[0] == '2' &&
	                  (strcmp(ts + len - 3, "+00") == 0 || ts[len - 1] == 'Z'),
	              "bad \"%s\" in: %.200s", key, line);
}

/* ---- walking the stream ---- */

typedef enum WalkState
{
	WALK_OUTSIDE,
	WALK_IN_TX,
	WALK_IN_STREAM,
} WalkState;

typedef struct Walk
{
	WalkState state;
	long long xid;        /* current transaction */
	char final_lsn[32];   /* from its begin */
	long long stream_xid; /* -1 until the first stream_start */
	int n_begin;
	int n_commit;
	int n_stream_start;
	int n_stream_stop;
	int n_stream_commit;
	int n_stream_inserts;
	unsigned char seen[BULK_ROWS + 1];
	const char *changes[MAX_CHANGES]; /* non-streamed, in order */
	long long change_xid[MAX_CHANGES];
	size_t n_changes;
	const char *relation_t; /* first relation line for each */
	const char *relation_f;
} Walk;

static void
walk_begin(Walk *w, const char *line)
{
	static const char *const keys[] = {"kind",      "lsn",         "xid",
	                                   "final_lsn", "commit_time", NULL};
	char lsn[32];

	ck_assert_msg(w->state == WALK_OUTSIDE, "begin inside a block: %.200s",
	              line);
	assert_keys_in_order(line, keys);
	str_field(line, "lsn", lsn, sizeof(lsn));
	assert_lsn(lsn, line);
	str_field(line, "final_lsn", w->final_lsn, sizeof(w->final_lsn));
	assert_lsn(w->final_lsn, line);
	assert_timestamp_field(line, "commit_time");
	w->xid = int_field(line, "xid");
	w->state = WALK_IN_TX;
	w->n_begin++;
}

static void
walk_commit(Walk *w, const char *line)
{
	static const char *const keys[] = {
	    "kind", "lsn", "xid", "commit_lsn", "end_lsn", "commit_time", NULL};
	char commit_lsn[32];
	char end_lsn[32];

	ck_assert_msg(w->state == WALK_IN_TX, "commit without begin: %.200s", line);
	assert_keys_in_order(line, keys);
	ck_assert_int_eq(int_field(line, "xid"), w->xid);
	str_field(line, "commit_lsn", commit_lsn, sizeof(commit_lsn));
	ck_assert_msg(strcmp(commit_lsn, w->final_lsn) == 0,
	              "commit_lsn differs from begin's final_lsn %s: %.200s",
	              w->final_lsn, line);
	str_field(line, "end_lsn", end_lsn, sizeof(end_lsn));
	assert_lsn(end_lsn, line);
	assert_timestamp_field(line, "commit_time");
	w->state = WALK_OUTSIDE;
	w->n_commit++;
}

static void
walk_relation(Walk *w, const char *line)
{
	static const char *const keys[] = {
	    "kind",    "lsn", "relid", "relation", "replica_identity",
	    "columns", NULL};

	assert_keys_in_order(line, keys);
	if (w->relation_t == NULL && strstr(line, "\"relation\":\"public.t\""))
		w->relation_t = line;
	if (w->relation_f == NULL && strstr(line, "\"relation\":\"public.f\""))
		w->relation_f = line;
}

/* An insert inside a stream block: one of the bulk rows. */
static void
walk_stream_insert(Walk *w, const char *line)
{
	static const char *const keys[] = {"kind",     "lsn", "xid",
	                                   "relation", "new", NULL};
	const char *id;
	long v;

	ck_assert_msg(starts_with(line, "{\"kind\":\"insert\""),
	              "unexpected change in stream: %.200s", line);
	assert_keys_in_order(line, keys);
	ck_assert_int_eq(int_field(line, "xid"), w->stream_xid);
	id = strstr(line, "\"relation\":\"public.bulk\",\"new\":{\"id\":\"");
	ck_assert_msg(id != NULL, "not a bulk insert: %.200s", line);
	v = strtol(id + strlen("\"relation\":\"public.bulk\",\"new\":{\"id\":\""),
	           NULL, 10);
	ck_assert_msg(v >= 1 && v <= BULK_ROWS && !w->seen[v],
	              "bad or repeated bulk id: %.200s", line);
	ck_assert_ptr_nonnull(strstr(line, "\"pad\":\"xxxxxxxxxx"));
	w->seen[v] = 1;
	w->n_stream_inserts++;
}

static void
walk_change(Walk *w, const char *line, const char *kind)
{
	bool transactional = strcmp(kind, "message") != 0 ||
	                     strstr(line, "\"transactional\":true") != NULL;

	if (w->state == WALK_IN_STREAM)
	{
		walk_stream_insert(w, line);
		return;
	}
	ck_assert_msg(w->n_changes < MAX_CHANGES, "too many changes");
	if (transactional)
	{
		ck_assert_msg(w->state == WALK_IN_TX,
		              "change outside a transaction: %.200s", line);
		ck_assert_int_eq(int_field(line, "xid"), w->xid);
	}
	else
		ck_assert_msg(find_key(line, "xid") == NULL,
		              "non-transactional message with an xid: %.200s", line);
	w->change_xid[w->n_changes] = transactional ? w->xid : -1;
	w->changes[w->n_changes++] = line;
}

static void
walk_stream_start(Walk *w, const char *line)
{
	static const char *const keys[] = {"kind", "xid", "first_segment", NULL};
	long long xid = int_field(line, "xid");
	bool first = w->stream_xid < 0;

	ck_assert_msg(w->state == WALK_OUTSIDE,
	              "stream_start inside a block: %.200s", line);
	assert_keys_in_order(line, keys);
	ck_assert_msg(strstr(line, first ? "\"first_segment\":true"
	                                 : "\"first_segment\":false") != NULL,
	              "wrong first_segment: %.200s", line);
	if (first)
		w->stream_xid = xid;
	ck_assert_int_eq(xid, w->stream_xid);
	w->state = WALK_IN_STREAM;
	w->n_stream_start++;
}

static void
walk_stream_stop(Walk *w, const char *line)
{
	char want[64];
	char lsn[32];

	ck_assert_msg(w->state == WALK_IN_STREAM, "stray stream_stop");
	/* The spec shows no fields; an "lsn" like every other line is fine. */
	if (strcmp(line, "{\"kind\":\"stream_stop\"}") != 0)
	{
		str_field(line, "lsn", lsn, sizeof(lsn));
		assert_lsn(lsn, line);
		snprintf(want, sizeof(want),
		         "{\"kind\":\"stream_stop\",\"lsn\":\"%s\"}", lsn);
		ck_assert_str_eq(line, want);
	}
	w->state = WALK_OUTSIDE;
	w->n_stream_stop++;
}

static void
walk_stream_commit(Walk *w, const char *line)
{
	static const char *const keys[] = {"kind",    "xid",         "commit_lsn",
	                                   "end_lsn", "commit_time", NULL};
	char lsn[32];

	ck_assert_msg(w->state == WALK_OUTSIDE && w->stream_xid >= 0,
	              "stream_commit without stream blocks: %.200s", line);
	assert_keys_in_order(line, keys);
	ck_assert_int_eq(int_field(line, "xid"), w->stream_xid);
	str_field(line, "commit_lsn", lsn, sizeof(lsn));
	assert_lsn(lsn, line);
	str_field(line, "end_lsn", lsn, sizeof(lsn));
	assert_lsn(lsn, line);
	assert_timestamp_field(line, "commit_time");
	w->n_stream_commit++;
}

static void
walk_line(Walk *w, const char *line)
{
	char kind[32];

	line_kind(line, kind, sizeof(kind));
	ck_assert_msg(strstr(line, "rolled-back-marker") == NULL,
	              "rolled-back change printed: %.200s", line);
	if (strcmp(kind, "begin") == 0)
		walk_begin(w, line);
	else if (strcmp(kind, "commit") == 0)
		walk_commit(w, line);
	else if (strcmp(kind, "relation") == 0)
		walk_relation(w, line);
	else if (strcmp(kind, "insert") == 0 || strcmp(kind, "update") == 0 ||
	         strcmp(kind, "delete") == 0 || strcmp(kind, "truncate") == 0 ||
	         strcmp(kind, "message") == 0)
		walk_change(w, line, kind);
	else if (strcmp(kind, "stream_start") == 0)
		walk_stream_start(w, line);
	else if (strcmp(kind, "stream_stop") == 0)
		walk_stream_stop(w, line);
	else if (strcmp(kind, "stream_commit") == 0)
		walk_stream_commit(w, line);
	else
		ck_abort_msg("unexpected kind \"%s\": %.200s", kind, line);
}

/* ---- expectations ---- */

static char *
scalar(const char *sql)
{
	char *v = cluster_query_scalar(&src, NULL, sql);

	ck_assert_msg(v != NULL, "no value for %s", sql);
	return v;
}

/* The whole line expected for non-streamed change i (malloc'd). */
static char *
expected_line(size_t i, const char *line, long long xid)
{
	const ExpectedChange *e = &expected_changes[i];
	char lsn[32];
	char xid_part[32] = "";
	char *big = NULL;
	char *tail = NULL;
	char *s;
	size_t len;

	str_field(line, "lsn", lsn, sizeof(lsn));
	assert_lsn(lsn, line);
	if (e->has_xid)
		snprintf(xid_part, sizeof(xid_part), "\"xid\":%lld,", xid);
	if (e->tail == NULL)
	{
		big = scalar("SELECT big FROM t WHERE id = 1");
		len = strlen(big) + 128;
		tail = malloc(len);
		ck_assert_ptr_nonnull(tail);
		snprintf(tail, len,
		         "\"relation\":\"public.t\",\"new\":{\"id\":\"1\","
		         "\"v\":\"one\",\"big\":\"%s\"}}",
		         big);
	}
	len = strlen(tail ? tail : e->tail) + 128;
	s = malloc(len);
	ck_assert_ptr_nonnull(s);
	snprintf(s, len, "{\"kind\":\"%s\",\"lsn\":\"%s\",%s%s", e->kind, lsn,
	         xid_part, tail ? tail : e->tail);
	free(big);
	free(tail);
	return s;
}

static void
assert_changes(const Walk *w)
{
	ck_assert_uint_eq(w->n_changes, N_CHANGES);
	for (size_t i = 0; i < N_CHANGES; i++)
	{
		char *want = expected_line(i, w->changes[i], w->change_xid[i]);

		ck_assert_msg(strcmp(w->changes[i], want) == 0,
		              "change %zu:\n got: %.400s\nwant: %.400s", i,
		              w->changes[i], want);
		free(want);
	}
	/* T1 and T2 are one transaction each, and not the same one. */
	for (size_t i = 1; i < 4; i++)
		ck_assert_int_eq(w->change_xid[i], w->change_xid[0]);
	for (size_t i = 5; i < 8; i++)
		ck_assert_int_eq(w->change_xid[i], w->change_xid[4]);
	ck_assert_int_ne(w->change_xid[0], w->change_xid[4]);
}

static void
assert_relation(const char *line, const char *table, const char *identity,
                const char *columns)
{
	char sql[128];
	char lsn[32];
	char *relid;
	char want[1024];

	ck_assert_msg(line != NULL, "no relation line for %s", table);
	snprintf(sql, sizeof(sql), "SELECT '%s'::regclass::oid::text", table);
	relid = scalar(sql);
	str_field(line, "lsn", lsn, sizeof(lsn));
	snprintf(want, sizeof(want),
	         "{\"kind\":\"relation\",\"lsn\":\"%s\",\"relid\":%s,"
	         "\"relation\":\"%s\",\"replica_identity\":\"%s\","
	         "\"columns\":[%s]}",
	         lsn, relid, table, identity, columns);
	ck_assert_str_eq(line, want);
	free(relid);
}

static void
assert_walk_totals(Walk *w)
{
	ck_assert_msg(w->state == WALK_OUTSIDE, "output ends inside a block");
	ck_assert_int_eq(w->n_begin, N_TRANSACTIONS);
	ck_assert_int_eq(w->n_commit, N_TRANSACTIONS);
	ck_assert_int_ge(w->n_stream_start, 2);
	ck_assert_int_eq(w->n_stream_stop, w->n_stream_start);
	ck_assert_int_eq(w->n_stream_commit, 1);
	ck_assert_int_eq(w->n_stream_inserts, BULK_ROWS);
	assert_relation(w->relation_t, "public.t", "default",
	                "{\"name\":\"id\",\"type_oid\":23,\"typmod\":-1,"
	                "\"key\":true},"
	                "{\"name\":\"v\",\"type_oid\":25,\"typmod\":-1,"
	                "\"key\":false},"
	                "{\"name\":\"big\",\"type_oid\":25,\"typmod\":-1,"
	                "\"key\":false}");
	assert_relation(w->relation_f, "public.f", "full",
	                "{\"name\":\"id\",\"type_oid\":23,\"typmod\":-1,"
	                "\"key\":true},"
	                "{\"name\":\"v\",\"type_oid\":25,\"typmod\":-1,"
	                "\"key\":true}");
	assert_changes(w);
}

/* ---- tests ---- */

START_TEST(peek_help_mentions_slot)
{
	PeekRun r;
	const char *argv[] = {pgstream_bin(), "peek", "--help", NULL};

	r.status = proc_run(argv, NULL, 30000, &r.out, &r.err);
	ck_assert_msg(r.status == 0, "peek --help exited with %d:\n%s", r.status,
	              r.err);
	ck_assert_msg(strstr(r.out, "--slot") != NULL,
	              "peek --help does not mention --slot:\n%s", r.out);
	peek_run_free(&r);
}
END_TEST

START_TEST(peek_prints_the_workload_as_json)
{
	static const char sql_slot[] = "SELECT confirmed_flush_lsn::text || ' ' "
	                               "|| restart_lsn::text FROM "
	                               "pg_replication_slots WHERE slot_name = 's'";
	char *before = scalar(sql_slot);
	char *after;
	PeekRun r;
	Lines l;
	Walk *w = calloc(1, sizeof(Walk));

	ck_assert_ptr_nonnull(w);
	w->stream_xid = -1;
	run_peek_json(&r);
	lines_split(&l, r.out);
	for (size_t i = 0; i < l.n; i++)
		walk_line(w, l.v[i]);
	assert_walk_totals(w);
	wait_slot_released();
	after = scalar(sql_slot);
	ck_assert_msg(strcmp(before, after) == 0,
	              "peek moved the slot: \"%s\" -> \"%s\"", before, after);
	free(before);
	free(after);
	free(w);
	free(l.v);
	peek_run_free(&r);
}
END_TEST

/*
 * INT, TERM and HUP while peek prints (raised at the failpoint
 * peek.after_message, on the 5th message): it stops at once, exit 0 (it is
 * how a reader ends peek), says so, has printed what it read, and leaves
 * the slot where it was and free.
 */
START_TEST(peek_stops_cleanly_on_every_signal)
{
	static const char *const sigs[3][2] = {
	    {"sigint", "SIGINT"}, {"sigterm", "SIGTERM"}, {"sighup", "SIGHUP"}};
	static const char sql_slot[] = "SELECT confirmed_flush_lsn::text || ' ' "
	                               "|| restart_lsn::text FROM "
	                               "pg_replication_slots WHERE slot_name = 's'";

	for (int i = 0; i < 3; i++)
	{
		const char *const argv[] = {pgstream_bin(), "peek", "--source",
		                            cluster_conninfo(&src, "postgres"), "--slot", "s",
		                            "--publication", "p", "--json", NULL};
		char env_fp[128];
		const char *const env[] = {env_fp, NULL};
		char *before;
		char *after;
		PeekRun r;
		Lines l;

		wait_slot_released();
		before = scalar(sql_slot);
		snprintf(env_fp, sizeof(env_fp), "PGSTREAM_FAILPOINTS=peek.after_message=%s@5",
		         sigs[i][0]);
		r.status = proc_run(argv, env, PEEK_TIMEOUT_MS, &r.out, &r.err);
		ck_assert_msg(r.status == 0, "peek under %s exited with %d:\n%s", sigs[i][1],
		              r.status, r.err);
		ck_assert_msg(strstr(r.err, "signal received, stopping cleanly") != NULL, "%s",
		              r.err);
		lines_split(&l, r.out);
		ck_assert_uint_ge(l.n, 5);
		free(l.v);
		wait_slot_released();
		after = scalar(sql_slot);
		ck_assert_msg(strcmp(before, after) == 0,
		              "peek moved the slot: \"%s\" -> \"%s\"", before, after);
		free(before);
		free(after);
		peek_run_free(&r);
	}
}
END_TEST

/*
 * A second peek while the first holds the slot (paused at
 * peek.after_message): refused with the server's reason and exit 1, and
 * the first goes on unharmed.
 */
START_TEST(a_second_peek_while_one_runs_is_refused)
{
	const char *const argv[] = {pgstream_bin(), "peek", "--source",
	                            cluster_conninfo(&src, "postgres"), "--slot", "s",
	                            "--publication", "p", "--json", "--limit", "10", NULL};
	FailpointDir fd;
	char env_dir[PATH_MAX + 32];
	const char *const env[] = {"PGSTREAM_FAILPOINTS=peek.after_message=pause@1", env_dir,
	                           NULL};
	Proc first;
	PeekRun r;
	Lines l;
	int status;

	wait_slot_released();
	ck_assert(fpctl_init(&fd));
	fpctl_env(&fd, env_dir, sizeof(env_dir));
	ck_assert(proc_spawn(&first, argv, env));
	ck_assert(fpctl_wait(&fd, "peek.after_message", PEEK_TIMEOUT_MS));
	r.status = proc_run(argv, NULL, PEEK_TIMEOUT_MS, &r.out, &r.err);
	ck_assert_msg(r.status == 1, "second peek exited with %d:\n%s", r.status, r.err);
	ck_assert_msg(strstr(r.err, "replication slot \"s\" is active for PID") != NULL,
	              "%s", r.err);
	peek_run_free(&r);
	fpctl_release(&fd, "peek.after_message");
	status = proc_wait(&first, PEEK_TIMEOUT_MS);
	ck_assert_int_eq(status, 0);
	{
		char *out = proc_stdout(&first);

		lines_split(&l, out);
		ck_assert_uint_eq(l.n, 10);
		free(l.v);
		free(out);
	}
	proc_release(&first);
	fpctl_cleanup(&fd);
}
END_TEST

START_TEST(peek_twice_prints_the_same)
{
	PeekRun first;
	PeekRun second;

	run_peek_json(&first);
	run_peek_json(&second);
	ck_assert_uint_gt(strlen(first.out), 1000000);
	ck_assert_msg(strcmp(first.out, second.out) == 0,
	              "second peek printed something else (%zu vs %zu bytes)",
	              strlen(first.out), strlen(second.out));
	peek_run_free(&first);
	peek_run_free(&second);
}
END_TEST

START_TEST(peek_limit_prints_exactly_n_lines)
{
	static const char *const args[] = {
	    "--slot", "s", "--publication", "p", "--json", "--limit", "3", NULL};
	PeekRun r;
	Lines l;
	char kind[32];

	wait_slot_released();
	run_peek(&r, args);
	ck_assert_msg(r.status == 0, "peek --limit 3 exited with %d:\n%s", r.status,
	              r.err);
	lines_split(&l, r.out);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_str_eq(line_kind(l.v[0], kind, sizeof(kind)), "begin");
	ck_assert_str_eq(line_kind(l.v[1], kind, sizeof(kind)), "relation");
	ck_assert_str_eq(line_kind(l.v[2], kind, sizeof(kind)), "insert");
	free(l.v);
	peek_run_free(&r);
}
END_TEST

START_TEST(peek_unknown_slot_fails_naming_it)
{
	static const char *const args[] = {"--slot",
	                                   "no_such_slot",
	                                   "--publication",
	                                   "p",
	                                   "--json",
	                                   "--idle-exit",
	                                   "3",
	                                   NULL};
	PeekRun r;

	run_peek(&r, args);
	ck_assert_msg(r.status > 0 && r.status < 128,
	              "peek on a missing slot exited with %d", r.status);
	ck_assert_msg(strstr(r.err, "no_such_slot") != NULL,
	              "stderr does not name the slot:\n%s", r.err);
	peek_run_free(&r);
}
END_TEST

Suite *
peek_suite(void)
{
	Suite *s = suite_create("peek");
	TCase *tc = tcase_create("peek");

	tcase_add_unchecked_fixture(tc, peek_setup, peek_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, peek_help_mentions_slot);
	tcase_add_test(tc, peek_prints_the_workload_as_json);
	tcase_add_test(tc, peek_twice_prints_the_same);
	tcase_add_test(tc, peek_stops_cleanly_on_every_signal);
	tcase_add_test(tc, a_second_peek_while_one_runs_is_refused);
	tcase_add_test(tc, peek_limit_prints_exactly_n_lines);
	tcase_add_test(tc, peek_unknown_slot_fails_naming_it);
	suite_add_tcase(s, tc);
	return s;
}
