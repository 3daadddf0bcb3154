/*
 * engine/fullload.c -- parallel snapshot COPY (see fullload.h).
 */
#include "engine/fullload.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply/pgconn.h"
#include "apply/result.h"
#include "apply/statesql.h"
#include "engine/failpoint.h"
#include "engine/log.h"
#include "engine/schema/schema.h"
#include "engine/progress.h"

#define MAX_PARTS_PER_TABLE 1024

int
fullload_part_count(int64_t bytes, int64_t pages, int64_t split_bytes)
{
	int64_t		n;

	if (split_bytes <= 0 || bytes <= split_bytes || pages < 2)
		return 1;
	n = (bytes + split_bytes - 1) / split_bytes;
	if (n > pages)
		n = pages;
	if (n > MAX_PARTS_PER_TABLE)
		n = MAX_PARTS_PER_TABLE;
	return (int) n;
}

bool
fullload_import_snapshot(PGconn *conn, const char *snapshot_name, SyncError *err)
{
	char	   *lit = pgconn_quote_literal(conn, snapshot_name);
	char		sql[256];
	bool		ok;

	if (lit == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	snprintf(sql, sizeof(sql),
			 "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
			 "SET TRANSACTION SNAPSHOT %s", lit);
	free(lit);
	ok = pgconn_exec(conn, sql, err);
	if (!ok)
	{
		PQclear(PQexec(conn, "ROLLBACK"));
		/* 22023 invalid_parameter_value: "invalid snapshot identifier" */
		if (strcmp(err->sqlstate, "22023") == 0)
			err->code = SYNC_ERR_PRECONDITION;
		return sync_error_context(err, "could not import snapshot \"%s\" on source",
								  snapshot_name);
	}
	return true;
}

/* FROM and WHERE of the tables the copy reads: plain and partition leaf
 * tables, not those of extensions (c is pg_class, n pg_namespace). */
#define COPIED_TABLES \
	" FROM pg_catalog.pg_class c" \
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" \
	" WHERE c.relkind = 'r' AND c.relpersistence IN ('p', 'u')" \
	" AND n.nspname NOT IN ('pg_catalog', 'information_schema')" \
	" AND n.nspname !~ '^pg_(toast|temp)'" \
	" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d" \
	"   WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid" \
	"   AND d.deptype = 'e')" \
	SCHEMA_NOT_SUPERUSER_ONLY_REL("c.oid")

/* Catalog query for the tables to copy. */
static const char plan_query_fmt[] =
	"SELECT c.oid, n.nspname, c.relname,"
	" coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)"
	"   FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0"
	"   AND NOT a.attisdropped %s), ''),"
	" pg_catalog.pg_relation_size(c.oid),"
	" greatest(c.reltuples, 0)::bigint,"
	" pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::int"
	COPIED_TABLES
	" ORDER BY 5 DESC, 1";

/*
 * Every user table's columns as "name type, ..." (generated columns left
 * out, as the copy leaves them out), keyed by its quoted qualified name.
 * The same query on both sides: the search_path is empty on every pgstream
 * session, so types outside pg_catalog come schema-qualified on both.
 * Ordered by name, not position: the copy names its columns on both sides,
 * and an inheritance child to which the parent's later columns were added
 * comes out of pg_dump with its columns in another order (the regression
 * database's b_star).
 */
static const char columns_query_fmt[] =
	"SELECT format('%%I.%%I', n.nspname, c.relname),"
	" coalesce((SELECT string_agg(quote_ident(a.attname) || ' ' ||"
	"   pg_catalog.format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attname)"
	"   FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0"
	"   AND NOT a.attisdropped %s), '')"
	" FROM pg_catalog.pg_class c"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" WHERE c.relkind = 'r'"
	" AND n.nspname NOT IN ('pg_catalog', 'information_schema', {state_literal})"
	" AND n.nspname !~ '^pg_(toast|temp)'"
	SCHEMA_NOT_SUPERUSER_ONLY_REL("c.oid")
	" ORDER BY format('%%I.%%I', n.nspname, c.relname) COLLATE \"C\"";	/* strcmp order, for find_sorted() */

static PGresult *
query_columns(PGconn *conn, SyncError *err)
{
	char		query[sizeof(columns_query_fmt) + 64];

	snprintf(query, sizeof(query), columns_query_fmt,
			 PQserverVersion(conn) >= 120000 ? "AND a.attgenerated = ''" : "");
	return pgconn_query(conn, state_sql(query), 0, NULL, err);
}

/* The row of res whose first column is name (res sorted by it), or -1. */
static int
find_sorted(PGresult *res, const char *name)
{
	int			lo = 0,
				hi = PQntuples(res) - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = strcmp(PQgetvalue(res, mid, 0), name);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/*
 * Compare the source's tables under the snapshot with the target's: the copy
 * pipes named columns, so a table whose columns differ cannot be copied
 * into (and one with a column dropped on the source would be copied
 * silently short).
 */
#define COLUMNS_FIX "; a copy cannot resume into the old definition: undo that change on the " \
	"source and run again, or start the migration over (on the target, drop schema " \
	"%s and the objects this migration created, or re-create the database empty)"

static bool
compare_columns(PGresult *src, PGresult *tgt, SyncError *err)
{
	for (int r = 0; r < PQntuples(src); r++)
	{
		const char *name = PQgetvalue(src, r, 0);
		int			t = find_sorted(tgt, name);

		if (t < 0)
			return sync_error_set(err, SYNC_ERR_PRECONDITION,
								  "table %s changed on the source since this migration "
								  "created the tables on the target: it is not on the target"
								  COLUMNS_FIX, name, state_schema_quoted());
		if (strcmp(PQgetvalue(src, r, 1), PQgetvalue(tgt, t, 1)) != 0)
			return sync_error_set(err, SYNC_ERR_PRECONDITION,
								  "table %s changed on the source since this migration "
								  "created the tables on the target: its columns are (%s) on the "
								  "source but (%s) on the target" COLUMNS_FIX, name, PQgetvalue(src, r, 1),
								  PQgetvalue(tgt, t, 1), state_schema_quoted());
	}
	return true;
}

bool
fullload_check_target_tables(const FullLoadOptions *opts, PGconn *target, SyncError *err)
{
	PgconnOptions co = {PGCONN_SQL, "pgstream copy", true, NULL};
	PGconn	   *src = pgconn_connect(opts->source_conninfo, &co, "source", err);
	PGresult   *s = NULL,
			   *t = NULL;
	bool		ok = false;

	if (src == NULL)
		return false;
	if (fullload_import_snapshot(src, opts->snapshot_name, err) &&
		(s = query_columns(src, err)) != NULL &&
		(t = query_columns(target, err)) != NULL)
		ok = compare_columns(s, t, err);
	PQclear(s);
	PQclear(t);
	pgconn_close(src);
	return ok;
}

static bool
insert_plan_row(PGconn *target, PGresult *tables, int row, int64_t split_bytes,
				SyncError *err)
{
	int64_t		bytes = result_int(tables, row, 4);
	int64_t		pages = result_int(tables, row, 6);
	int			nparts = fullload_part_count(bytes, pages, split_bytes);
	int64_t		per = (pages + nparts - 1) / nparts;
	char		nbuf[16];
	const char *p[8];
	PGresult   *res;

	snprintf(nbuf, sizeof(nbuf), "%d", nparts);
	for (int c = 0; c < 7; c++)
		p[c] = PQgetvalue(tables, row, c);
	p[7] = nbuf;
	res = pgconn_query(target,
					   state_sql("INSERT INTO {state}.tables (relid, nspname, relname, columns,"
					   " est_bytes, est_rows, pages, nparts)"
					   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"), 8, p, err);
	if (res == NULL)
		return false;
	PQclear(res);
	for (int i = 0; i < nparts; i++)
	{
		char		part[16],
					first[24],
					end[24];
		const char *q[4] = {PQgetvalue(tables, row, 0), part, first,
		i == nparts - 1 ? NULL : end};

		snprintf(part, sizeof(part), "%d", i);
		snprintf(first, sizeof(first), "%lld", (long long) (nparts == 1 ? 0 : per * i));
		snprintf(end, sizeof(end), "%lld", (long long) (per * (i + 1)));
		res = pgconn_query(target,
						   state_sql("INSERT INTO {state}.copy_parts (relid, part, first_page, end_page)"
						   " VALUES ($1, $2, $3, $4)"), 4, q, err);
		if (res == NULL)
			return false;
		PQclear(res);
	}
	return true;
}

static bool
store_plan(PGconn *target, PGresult *tables, int64_t split_bytes, SyncError *err)
{
	if (!pgconn_exec(target, state_sql("BEGIN; DELETE FROM {state}.copy_parts;"
					 " DELETE FROM {state}.tables"), err))
		return false;
	for (int r = 0; r < PQntuples(tables); r++)
		if (!insert_plan_row(target, tables, r, split_bytes, err))
		{
			PQclear(PQexec(target, "ROLLBACK"));
			return false;
		}
	return pgconn_exec(target, "COMMIT", err);
}

bool
fullload_plan(const FullLoadOptions *opts, PGconn *target, SyncError *err)
{
	/*
	 * On a copy session: pg_relation_size() takes ACCESS SHARE, and a new
	 * session asking for it would queue behind a TRUNCATE that waits for
	 * the copy's locks (see fullload_open_sources).
	 */
	PGconn	   *src = opts->sources->conns[0];
	PGresult   *tables = NULL;
	char		query[sizeof(plan_query_fmt) + 64];
	bool		ok = false;

	snprintf(query, sizeof(query), plan_query_fmt,
			 PQserverVersion(src) >= 120000 ? "AND a.attgenerated = ''" : "");
	if ((tables = pgconn_query(src, query, 0, NULL, err)) != NULL)
		ok = store_plan(target, tables, opts->split_bytes, err);
	if (!ok)
		sync_error_context(err, "could not plan the copy");
	PQclear(tables);
	return ok;
}

/* ------------------------------------------------------------------------
 * Guarding the snapshot against table rewrites
 * ------------------------------------------------------------------------ */

/*
 * TRUNCATE, VACUUM FULL, CLUSTER and a rewriting ALTER TABLE give a table a
 * new file.  They are not MVCC-safe: a snapshot taken before the rewrite
 * committed reads the new file and sees the table empty.  So no rewrite may
 * commit between the slot's snapshot and the end of the copy.  Every copy
 * session takes ACCESS SHARE on every table to copy *before* the slot and
 * its snapshot exist (LOCK TABLE is allowed before SET TRANSACTION
 * SNAPSHOT: it takes no snapshot), imports the snapshot once it exists, and
 * keeps the locks to the end of the copy.  That conflicts only with ACCESS
 * EXCLUSIVE: reads, writes, VACUUM and CREATE INDEX on the source go on,
 * while a TRUNCATE or ALTER TABLE there waits for the copy, as for pg_dump.
 *
 * Why every session and not one holding the locks for all: once a TRUNCATE
 * waits for a lock we hold, any later ACCESS SHARE request on that table
 * queues behind it, and a COPY asking for one would wait for ever on a
 * session of ours that waits for that COPY.  A session that already holds
 * the lock is never queued.  For the same reason no session may ask for a
 * new lock on a source table while the copy's are held (pg_dump runs
 * before, the plan on a copy session).  The sessions lock one after the
 * other with a short lock timeout; if one cannot (a TRUNCATE queued up
 * meanwhile, or holds its lock), all let go and try again: no slot exists
 * yet, so nothing is lost but a moment.
 *
 * While the slot is created the server waits for the transactions running
 * on the source to end.  One that wrote and then waits for a lock of ours
 * would wait for ever, and the slot with it: the watch (fullload_watch_
 * sources) lets go of the locks then.  After the snapshot the sessions lock
 * again, and a rewrite that committed in between shows as a table whose
 * file in the snapshot's pg_class row (a SQL scan of pg_class reads under
 * the transaction's snapshot) differs from the one the server uses now
 * (pg_relation_filenode reads the current catalog), or as a table this
 * session holds no lock on: the caller takes a new snapshot.
 */
static const char lock_statement_sql[] =
	"SELECT 'LOCK TABLE ONLY ' || string_agg(format('%I.%I', n.nspname, c.relname), ', ')"
	" || ' IN ACCESS SHARE MODE'"
	COPIED_TABLES;

static const char unguarded_sql[] =
	"SELECT format('%I.%I', n.nspname, c.relname)"
	COPIED_TABLES
	" AND (c.relfilenode IS DISTINCT FROM pg_catalog.pg_relation_filenode(c.oid)"
	"  OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l"
	"   WHERE l.locktype = 'relation' AND l.relation = c.oid"
	"   AND l.pid = pg_catalog.pg_backend_pid() AND l.granted"
	"   AND l.database = (SELECT oid FROM pg_catalog.pg_database"
	"    WHERE datname = pg_catalog.current_database())))"
	" ORDER BY 1 LIMIT 1";

/*
 * Is a transaction that holds a transaction ID (it wrote) waiting for a
 * lock held by one of the sessions $1?  The slot being created waits for it.
 */
static const char blocked_writer_sql[] =
	"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks w"
	" WHERE NOT w.granted AND pg_catalog.pg_blocking_pids(w.pid) && $1::int[]"
	" AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks x WHERE x.pid = w.pid"
	"  AND x.locktype = 'transactionid' AND x.granted))";

/* How long a session waits for one lock before all let go and try again. */
#define LOCK_TRY_TIMEOUT "2s"
/* How long the copy goes on trying to lock before it gives up. */
#define LOCK_DEADLINE_S 120

static void
rollback_all(FullLoadSources *s)
{
	for (int i = 0; i < s->count; i++)
		PQclear(PQexec(s->conns[i], "ROLLBACK"));
	s->locked = false;
}

/*
 * Every session: a transaction that holds ACCESS SHARE on every table.
 * False with *retry when a lock could not be had in time or a table went
 * away (why says which); false without on other failures.
 */
static bool
lock_all(FullLoadSources *s, bool *retry, char *why, size_t why_size, SyncError *err)
{
	*retry = false;
	for (int i = 0; i < s->count; i++)
	{
		if (!pgconn_exec(s->conns[i], "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
						 "SET LOCAL lock_timeout = '" LOCK_TRY_TIMEOUT "'", err))
			break;
		if (s->lock_sql != NULL && !pgconn_exec(s->conns[i], s->lock_sql, err))
		{
			/* 55P03 lock_not_available, 42P01 undefined_table */
			*retry = strcmp(err->sqlstate, "55P03") == 0 ||
				strcmp(err->sqlstate, "42P01") == 0;
			/* 53200 out_of_memory: the shared lock table is full */
			if (strcmp(err->sqlstate, "53200") == 0 &&
				(err->code = SYNC_ERR_PRECONDITION) != SYNC_ERR_NONE)
				sync_error_context(err, "each of the %d copy sessions locks every table "
								   "to copy, which needs about (tables x %d) lock slots on "
								   "the source: raise max_locks_per_transaction there (it "
								   "needs a restart) or run with fewer --jobs", s->count,
								   s->count);
			if (*retry)
				snprintf(why, why_size, "%s",
						 strcmp(err->sqlstate, "42P01") == 0
						 ? "a table to copy was dropped or renamed on the source"
						 : "a TRUNCATE or ALTER TABLE on the source holds or waits "
						 "for a table to copy");
			break;
		}
		if (!pgconn_exec(s->conns[i], "SET LOCAL lock_timeout = 0", err))
			break;
		/* fullload.after_first_lock: one session holds every table's lock */
		if (i == 0)
			FAILPOINT("fullload.after_first_lock");
		if (i == s->count - 1)
		{
			s->locked = true;
			return true;
		}
	}
	rollback_all(s);
	return false;
}

bool
fullload_lock_sources(const FullLoadOptions *opts, FullLoadSources *s, SyncError *err)
{
	PgconnOptions co = {PGCONN_SQL, "pgstream copy", true, NULL};
	int			n = opts->jobs > 0 ? opts->jobs : 1;
	time_t		deadline = time(NULL) + LOCK_DEADLINE_S;
	bool		said = false;
	PGresult   *res;

	if (s->conns == NULL)
	{
		s->conns = calloc((size_t) n, sizeof(PGconn *));
		if (s->conns == NULL)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		for (; s->count < n; s->count++)
			if ((s->conns[s->count] = pgconn_connect(opts->source_conninfo, &co,
													 "source", err)) == NULL)
				return false;
	}
	rollback_all(s);
	for (;;)
	{
		bool		retry;
		char		why[160];

		/* the tables as they are now, read outside any transaction */
		free(s->lock_sql);
		s->lock_sql = NULL;
		if ((res = pgconn_query(s->conns[0], lock_statement_sql, 0, NULL, err)) == NULL)
			return sync_error_context(err, "could not list the tables to copy");
		if (!PQgetisnull(res, 0, 0) && (s->lock_sql = strdup(PQgetvalue(res, 0, 0))) == NULL)
		{
			PQclear(res);
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		}
		PQclear(res);
		if (lock_all(s, &retry, why, sizeof(why), err))
			return true;
		if (!retry)
			return sync_error_context(err, "could not lock the tables to copy on the source");
		if (*opts->stop)
			return sync_error_set(err, SYNC_ERR_INTERNAL, "stopped by a signal");
		if (time(NULL) >= deadline)
			return sync_error_set(err, SYNC_ERR_PRECONDITION,
								  "%s for %d s, so the copy could not lock the tables "
								  "it reads (see pg_locks on the source); run the same "
								  "command again once it is done", why, LOCK_DEADLINE_S);
		if (!said)
			log_info("%s: waiting for it before taking the snapshot", why);
		said = true;
		{
			struct timespec pause = {0, 100 * 1000 * 1000};

			nanosleep(&pause, NULL);
		}
	}
}

bool
fullload_watch_sources(FullLoadSources *s, PGconn *probe, SyncError *err)
{
	char		pids[16 * 64 + 3];
	size_t		len = 0;
	const char *params[1] = {pids};
	char		blocked[8];

	if (!s->locked)
		return true;
	pids[len++] = '{';
	for (int i = 0; i < s->count && i < 64; i++)
		len += (size_t) snprintf(pids + len, sizeof(pids) - len, "%s%d", i ? "," : "",
								 PQbackendPID(s->conns[i]));
	snprintf(pids + len, sizeof(pids) - len, "}");
	if (!pgconn_query_value(probe, blocked_writer_sql, 1, params, blocked,
							sizeof(blocked), false, err))
		return sync_error_context(err, "could not look for sessions waiting on the copy's locks");
	if (blocked[0] == 't')
	{
		log_info("a transaction that wrote on the source waits for a lock the copy "
				 "holds, and the new slot waits for that transaction: letting go of "
				 "the locks until the slot exists");
		rollback_all(s);
	}
	return true;
}

bool
fullload_import_sources(const FullLoadOptions *opts, FullLoadSources *s,
						char *rewritten, size_t rewritten_size, SyncError *err)
{
	char	   *lit;
	char		sql[256];
	PGresult   *res;
	bool		retry;

	rewritten[0] = '\0';
	if (!s->locked)
	{
		/* fullload.before_relock: the slot exists, the sessions hold no lock */
		FAILPOINT("fullload.before_relock");
		if (!lock_all(s, &retry, rewritten, rewritten_size, err))
			return retry || sync_error_context(err, "could not lock the tables to copy");
	}
	lit = pgconn_quote_literal(s->conns[0], opts->snapshot_name);
	if (lit == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	snprintf(sql, sizeof(sql), "SET TRANSACTION SNAPSHOT %s", lit);
	free(lit);
	for (int i = 0; i < s->count; i++)
		if (!pgconn_exec(s->conns[i], sql, err))
		{
			rollback_all(s);
			return sync_error_context(err, "could not import snapshot \"%s\" on source",
									  opts->snapshot_name);
		}
	if ((res = pgconn_query(s->conns[0], unguarded_sql, 0, NULL, err)) == NULL)
	{
		rollback_all(s);
		return sync_error_context(err, "could not check the tables to copy");
	}
	if (PQntuples(res) == 1)
	{
		snprintf(rewritten, rewritten_size, "table %s was rewritten, or created, on the "
				 "source in the moment the copy held no lock on it (TRUNCATE, VACUUM "
				 "FULL, CLUSTER or ALTER TABLE)", PQgetvalue(res, 0, 0));
		rollback_all(s);
	}
	PQclear(res);
	return true;
}

void
fullload_close_sources(FullLoadSources *s)
{
	for (int i = 0; i < s->count; i++)
		pgconn_close(s->conns[i]);
	free(s->conns);
	free(s->lock_sql);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------------
 * Running the copy
 * ------------------------------------------------------------------------ */

typedef struct CopyPart
{
	char	   *relid;			/* owned; source OID as text */
	int			part;
	char	   *first_page;		/* owned */
	char	   *end_page;		/* owned, NULL = open end */
	char	   *src_rel;		/* owned; quoted schema.table */
	char	   *dst_rel;		/* owned */
	char	   *columns;		/* owned; quoted column list, "" = none */
	int			nparts;
	int			table;			/* index into progress tables */
} CopyPart;

typedef struct CopyRun
{
	const FullLoadOptions *opts;
	CopyPart   *parts;
	int			nparts;
	atomic_int	next;
	atomic_int	worker_slots;	/* next of opts->sources to hand a worker */
	atomic_int	running;		/* workers not yet finished */
	atomic_bool failed;
	pthread_mutex_t lock;
	SyncError	first_error;
	Progress	progress;
} CopyRun;

static void
free_parts(CopyPart *parts, int n)
{
	for (int i = 0; i < n; i++)
	{
		free(parts[i].relid);
		free(parts[i].first_page);
		free(parts[i].end_page);
		free(parts[i].src_rel);
		free(parts[i].dst_rel);
		free(parts[i].columns);
	}
	free(parts);
}

static char *
strdup_or_null(PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? NULL : strdup(PQgetvalue(res, r, c));
}

/* Load pending parts, biggest tables first, and register tables for progress. */
static bool
load_parts(CopyRun *run, PGconn *target, SyncError *err)
{
	PGresult   *res = pgconn_query(target,
								   state_sql("SELECT p.relid, p.part, p.first_page, p.end_page,"
								   " format('%I.%I', t.nspname, t.relname), t.columns, t.nparts,"
								   " t.est_bytes, t.est_rows, p.done, coalesce(p.rows, 0),"
								   " coalesce(p.bytes, 0)"
								   " FROM {state}.copy_parts p JOIN {state}.tables t USING (relid)"
								   " ORDER BY t.est_bytes DESC, p.relid, p.part"), 0, NULL, err);
	int			table = -1;
	const char *last_relid = "";

	if (res == NULL)
		return false;
	run->parts = calloc((size_t) PQntuples(res) + 1, sizeof(CopyPart));
	for (int r = 0; run->parts && r < PQntuples(res); r++)
	{
		CopyPart   *p = &run->parts[run->nparts];

		if (strcmp(last_relid, PQgetvalue(res, r, 0)) != 0)
		{
			last_relid = PQgetvalue(res, r, 0);
			table = progress_add_table(&run->progress, PQgetvalue(res, r, 4),
									   result_int(res, r, 8),
									   result_int(res, r, 7),
									   (int) result_int(res, r, 6));
		}
		if (PQgetvalue(res, r, 9)[0] == 't')
		{
			progress_part_done(&run->progress, table, result_int(res, r, 10),
							   result_int(res, r, 11));
			continue;
		}
		p->relid = strdup(PQgetvalue(res, r, 0));
		p->part = (int) result_int(res, r, 1);
		p->first_page = strdup(PQgetvalue(res, r, 2));
		p->end_page = strdup_or_null(res, r, 3);
		p->src_rel = strdup(PQgetvalue(res, r, 4));
		p->dst_rel = strdup(PQgetvalue(res, r, 4));
		p->columns = strdup(PQgetvalue(res, r, 5));
		p->nparts = (int) result_int(res, r, 6);
		p->table = table;
		run->nparts++;
	}
	PQclear(res);
	if (run->parts == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	return true;
}

static void
build_copy_out(const CopyPart *p, bool binary, char *sql, size_t size)
{
	const char *cols = p->columns[0] ? p->columns : "";
	const char *fmt = binary ? " (FORMAT binary)" : "";

	if (p->nparts == 1)
		snprintf(sql, size, "COPY %s %s%s%s TO STDOUT%s", p->src_rel,
				 cols[0] ? "(" : "", cols, cols[0] ? ")" : "", fmt);
	else if (p->end_page == NULL)
		snprintf(sql, size, "COPY (SELECT %s FROM ONLY %s WHERE ctid >= '(%s,0)'::tid)"
				 " TO STDOUT%s", cols[0] ? cols : "", p->src_rel, p->first_page, fmt);
	else
		snprintf(sql, size, "COPY (SELECT %s FROM ONLY %s WHERE ctid >= '(%s,0)'::tid"
				 " AND ctid < '(%s,0)'::tid) TO STDOUT%s", cols[0] ? cols : "",
				 p->src_rel, p->first_page, p->end_page, fmt);
}

/*
 * Binary COPY skips every column's text output on the source and its
 * parsing on the target (a 2 M-row pgbench_accounts pipe: 2.6 s instead of
 * 3.1 s).  Its format is the type's send/recv format, which for built-in
 * types is the same on every server version we accept; types created in the
 * database (enums, domains, composites, extension types, arrays of them)
 * may carry OIDs that differ between servers, so a table with any such
 * column is copied as text.  FirstNormalObjectId is 16384.
 *
 * So: every copied column's type (and, for an array, its element type) is built
 * in, has binary send and receive functions, and is not one whose binary
 * form is an OID of the source: regclass and its kin travel as text, where
 * they are names.  (A type without binary I/O, such as aclitem, would stop
 * the copy.)  tsquery travels as text too: its receive function rejects the
 * empty query ('') that its send function writes ("malformed tsquery").
 * %s: the generated-column filter where the column exists (12+).
 */
static const char binary_safe_sql[] =
	"SELECT coalesce(bool_and(t.oid < 16384 AND t.typsend::oid <> 0"
	"  AND t.typreceive::oid <> 0 AND t.typname NOT IN ('regclass', 'regproc',"
	"  'regprocedure', 'regoper', 'regoperator', 'regtype', 'regrole',"
	"  'regnamespace', 'regconfig', 'regdictionary', 'regcollation', 'tsquery')),"
	" true)"
	" FROM pg_catalog.pg_attribute a"
	" JOIN pg_catalog.pg_type at ON at.oid = a.atttypid"
	" JOIN pg_catalog.pg_type t ON t.oid IN (at.oid, at.typelem)"
	" WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped %s";

static bool
copy_is_binary_safe(PGconn *src, const CopyPart *p, bool *binary, SyncError *err)
{
	const char *params[1] = {p->relid};
	char		v[8];
	char		sql[sizeof(binary_safe_sql) + 64];

	snprintf(sql, sizeof(sql), binary_safe_sql,
			 PQserverVersion(src) >= 120000 ? "AND a.attgenerated = ''" : "");
	if (!pgconn_query_value(src, sql, 1, params, v, sizeof(v), false, err))
		return sync_error_context(err, "could not read the column types of %s", p->src_rel);
	*binary = v[0] == 't';
	return true;
}

/* Start COPY on conn expecting status want; fills err otherwise. */
static bool
start_copy(PGconn *conn, const char *sql, ExecStatusType want, SyncError *err)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != want)
		return pgconn_error_from_result(conn, res, err);
	PQclear(res);
	return true;
}

/* Read the final result of a COPY; on target, "COPY n" gives the row count. */
static bool
finish_copy(PGconn *conn, long long *rows, SyncError *err)
{
	PGresult   *res = PQgetResult(conn);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pgconn_error_from_result(conn, res, err);
	if (rows != NULL)
		*rows = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	return true;
}

/*
 * A row goes to the target in pieces of at most this: PQputCopyData copies
 * what it is given into libpq's output buffer, which grows to the largest
 * piece and never shrinks, so a 200 MB value sent whole would cost 200 MB
 * more for the rest of the run.  A COPY data message need not end at a row
 * boundary.
 */
#define COPY_PIECE_BYTES (256 * 1024)

/*
 * Pipe rows from src (COPY OUT) to dst (COPY IN).  Never buffers more than a
 * row (libpq's input buffer holds the row's message too, and PQgetCopyData
 * returns a copy of it: a large value costs twice its size here).
 * *src_rows: the rows the source's COPY says it sent.
 */
static bool
pipe_rows(CopyRun *run, const CopyPart *p, PGconn *src, PGconn *dst,
		  long long *bytes, long long *src_rows, SyncError *err)
{
	char	   *buf = NULL;
	int			n;
	long long	rows = 0,
				flushed_rows = 0,
				flushed_bytes = 0;

	*bytes = 0;
	while ((n = PQgetCopyData(src, &buf, 0)) > 0)
	{
		int			put = 1;

		for (int off = 0; put == 1 && off < n; off += COPY_PIECE_BYTES)
			put = PQputCopyData(dst, buf + off,
								n - off < COPY_PIECE_BYTES ? n - off : COPY_PIECE_BYTES);
		PQfreemem(buf);
		if (put != 1)
			return sync_error_set(err, SYNC_ERR_CONNECT, "could not send rows to target: %s",
								  PQerrorMessage(dst));
		rows++;
		*bytes += n;
		if ((rows & 1023) == 0)
		{
			progress_add(&run->progress, p->table, rows - flushed_rows, *bytes - flushed_bytes);
			flushed_rows = rows;
			flushed_bytes = *bytes;
			if (*run->opts->stop)
				return sync_error_set(err, SYNC_ERR_INTERNAL, "stopped by a signal");
			if (atomic_load(&run->failed))
				return sync_error_set(err, SYNC_ERR_INTERNAL, "copy interrupted");
		}
	}
	progress_add(&run->progress, p->table, rows - flushed_rows, *bytes - flushed_bytes);
	if (n == -2)
		return sync_error_set(err, SYNC_ERR_CONNECT, "lost source connection during COPY: %s",
							  PQerrorMessage(src));
	return finish_copy(src, src_rows, err);
}

static bool
mark_part_done(PGconn *dst, const CopyPart *p, long long rows, long long bytes,
			   SyncError *err)
{
	char		partbuf[16],
				rowbuf[24],
				bytebuf[24];
	const char *params[4] = {p->relid, partbuf, rowbuf, bytebuf};
	PGresult   *res;

	snprintf(partbuf, sizeof(partbuf), "%d", p->part);
	snprintf(rowbuf, sizeof(rowbuf), "%lld", rows);
	snprintf(bytebuf, sizeof(bytebuf), "%lld", bytes);
	res = pgconn_query(dst, state_sql("UPDATE {state}.copy_parts SET done = true, rows = $3,"
					   " bytes = $4 WHERE relid = $1 AND part = $2 AND NOT done"),
					   4, params, err);
	if (res == NULL)
		return false;
	if (strcmp(PQcmdTuples(res), "1") != 0)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INTERNAL,
							  "copy part %s/%d was already marked done", p->relid, p->part);
	}
	PQclear(res);
	return true;
}

static bool
copy_part(CopyRun *run, const CopyPart *p, PGconn *src, PGconn *dst, SyncError *err)
{
	char	   *sql = malloc(strlen(p->columns) * 2 + strlen(p->src_rel) * 2 + 256);
	long long	bytes = 0,
				rows = 0,
				src_rows = -1;
	bool		ok,
				binary = false;

	if (sql == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	ok = copy_is_binary_safe(src, p, &binary, err) && pgconn_exec(dst, "BEGIN", err);
	if (ok)
	{
		build_copy_out(p, binary, sql, strlen(p->columns) * 2 + strlen(p->src_rel) * 2 + 256);
		ok = start_copy(src, sql, PGRES_COPY_OUT, err);
	}
	if (ok)
	{
		snprintf(sql, strlen(p->columns) * 2 + strlen(p->src_rel) * 2 + 256,
				 "COPY %s %s%s%s FROM STDIN%s", p->dst_rel, p->columns[0] ? "(" : "",
				 p->columns, p->columns[0] ? ")" : "", binary ? " (FORMAT binary)" : "");
		ok = start_copy(dst, sql, PGRES_COPY_IN, err);
		if (ok)
		{
			ok = pipe_rows(run, p, src, dst, &bytes, &src_rows, err);
			PQputCopyEnd(dst, ok ? NULL : "pgstream: source side failed");
			ok = finish_copy(dst, &rows, ok ? err : &(SyncError) {0}) && ok;
		}
	}
	/* checked before the part's transaction commits: rows read == rows stored */
	if (ok && rows != src_rows)
		ok = sync_error_set(err, SYNC_ERR_INTERNAL, "the source sent %lld rows but the target"
							" stored %lld", src_rows, rows);
	free(sql);
	ok = ok && mark_part_done(dst, p, rows, bytes, err) && pgconn_exec(dst, "COMMIT", err);
	if (!ok)
	{
		PQclear(PQexec(dst, "ROLLBACK"));
		return sync_error_context(err, "could not copy %s (part %d of %d)", p->src_rel,
								  p->part + 1, p->nparts);
	}
	FAILPOINT("fullload.after_part_commit");	/* a part and its done mark are committed */
	progress_part_done(&run->progress, p->table, 0, 0);
	return true;
}

static void
record_failure(CopyRun *run, const SyncError *err)
{
	pthread_mutex_lock(&run->lock);
	if (!atomic_load(&run->failed))
		run->first_error = *err;
	atomic_store(&run->failed, true);
	pthread_mutex_unlock(&run->lock);
}

static void *
worker_main(void *arg)
{
	CopyRun    *run = arg;
	PgconnOptions co = {PGCONN_SQL, "pgstream copy", true, NULL};
	SyncError	err;
	/* a session of fullload_open_sources(): snapshot imported, tables locked */
	PGconn	   *src = run->opts->sources->conns[atomic_fetch_add(&run->worker_slots, 1)];
	PGconn	   *dst = pgconn_connect(run->opts->target_conninfo, &co, "target", &err);
	bool		ok = dst != NULL &&
		pgconn_exec(dst, "SET synchronous_commit = off", &err);

	while (ok && !atomic_load(&run->failed) && !*run->opts->stop)
	{
		int			i = atomic_fetch_add(&run->next, 1);

		if (i >= run->nparts)
			break;
		ok = copy_part(run, &run->parts[i], src, dst, &err);
	}
	if (!ok)
		record_failure(run, &err);
	pgconn_close(dst);
	atomic_fetch_sub(&run->running, 1);
	return NULL;
}

/*
 * Copy failures that running again cannot fix get what to do instead
 * (SYNC_ERR_PRECONDITION: "fix what the message above says first").
 */
static void
explain_copy_error(SyncError *err)
{
	/* 22021 character_not_in_repertoire: "invalid byte sequence for encoding" */
	if (strcmp(err->sqlstate, "22021") == 0)
	{
		char		state[sizeof(err->sqlstate)];
		char		copy_msg[sizeof(err->message)];

		memcpy(state, err->sqlstate, sizeof(state));
		memcpy(copy_msg, err->message, sizeof(copy_msg));
		sync_error_set(err, SYNC_ERR_PRECONDITION, "%s; the source holds text that is not "
					   "valid UTF-8 (a SQL_ASCII database stores any bytes; pgstream reads "
					   "and writes UTF-8): convert it on the source once you know its real "
					   "encoding (pgstream assess shows how), or migrate into a SQL_ASCII "
					   "target database", copy_msg);
		memcpy(err->sqlstate, state, sizeof(state));
	}
}

bool
fullload_run(const FullLoadOptions *opts, PGconn *target, SyncError *err)
{
	CopyRun		run;
	pthread_t  *threads;
	int			started = 0;
	int			jobs = opts->jobs > 0 ? opts->jobs : 1;

	sync_error_clear(err);
	memset(&run, 0, sizeof(run));
	run.opts = opts;
	pthread_mutex_init(&run.lock, NULL);
	progress_init(&run.progress, "copy", opts->quiet);
	if (!load_parts(&run, target, err))
		goto done;
	if (jobs > opts->sources->count)
		jobs = opts->sources->count;
	if (jobs > run.nparts)
		jobs = run.nparts > 0 ? run.nparts : 1;
	threads = calloc((size_t) jobs, sizeof(pthread_t));
	atomic_store(&run.running, jobs);
	for (int i = 0; threads && i < jobs; i++)
		if (pthread_create(&threads[i], NULL, worker_main, &run) == 0)
			started++;
	atomic_fetch_sub(&run.running, jobs - started);
	while (atomic_load(&run.running) > 0)
		progress_tick(&run.progress, 200);
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	progress_finish(&run.progress);
	if (started == 0 && run.nparts > 0)
		sync_error_set(err, SYNC_ERR_INTERNAL, "could not start copy workers");
	else if (atomic_load(&run.failed))
	{
		*err = run.first_error;
		explain_copy_error(err);
	}
	else if (*opts->stop)
		sync_error_set(err, SYNC_ERR_INTERNAL, "copy stopped by a signal");
done:
	free_parts(run.parts, run.nparts);
	progress_term(&run.progress);
	pthread_mutex_destroy(&run.lock);
	return err->code == SYNC_ERR_NONE;
}

bool
fullload_verify(PGconn *target, long *tables_checked, SyncError *err)
{
	PGresult   *res = pgconn_query(target,
								   state_sql("SELECT format('%I.%I', t.nspname, t.relname),"
								   " sum(p.rows), bool_and(p.done)"
								   " FROM {state}.tables t JOIN {state}.copy_parts p USING (relid)"
								   " GROUP BY 1 ORDER BY 1"), 0, NULL, err);

	if (res == NULL)
		return false;
	*tables_checked = 0;
	for (int r = 0; r < PQntuples(res); r++)
	{
		const char *name = PQgetvalue(res, r, 0);

		if (PQgetvalue(res, r, 2)[0] != 't')
		{
			sync_error_set(err, SYNC_ERR_INTERNAL, "table %s was not fully copied", name);
			PQclear(res);
			return false;
		}
		(*tables_checked)++;
	}
	PQclear(res);
	return true;
}
