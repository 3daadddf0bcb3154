/*
 * apply/writer.c -- pipelined apply of decoded changes (see writer.h).
 *
 * Every statement sent is remembered in a ring of PendingOp, so that results
 * read back later are matched to what produced them: an UPDATE or DELETE
 * whose command tag does not say exactly one row is an error naming the
 * table, and the first failing statement's message is the one reported.
 */
#include "apply/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "apply/durable.h"
#include "apply/pgconn.h"
#include "apply/sqlbuild.h"
#include "apply/statesql.h"

#define BIG_PARAM_BYTES (64 * 1024)	/* a text value passed in place from here */
#define PIPELINE_DEPTH 256		/* results outstanding before we read some */
#define MAX_PENDING (PIPELINE_DEPTH * 2 + 16)

typedef enum PendingKind
{
	PENDING_ANY,				/* BEGIN, PREPARE, INSERT, TRUNCATE, progress */
	PENDING_ONE_ROW,			/* UPDATE/DELETE: must affect exactly one row */
	PENDING_COMMIT,				/* COMMIT of a batch; commit_lsn = its source end */
	PENDING_WAL_POSITIONS,		/* after an asynchronous COMMIT: insert, flush LSN;
								 * commit_lsn = that batch's source end */
	PENDING_SYNC
} PendingKind;

typedef struct PendingOp
{
	PendingKind kind;
	char		op;				/* 'I', 'U', 'D', 'T', or 0 */
	char		table[128];		/* for messages; "" for no table */
	Xid			xid;			/* source transaction of the change, or 0 */
	Lsn			commit_lsn;		/* where that transaction commits */
} PendingOp;

/* Target-side facts about one remote relation (one Relation message). */
typedef struct TargetRel
{
	SqlRel		s;				/* remote relid and version, quoted names,
								 * relkind; owns qualified, cols and
								 * text_compare */
	char	   *display;		/* owned: schema.table for messages */
	bool	   *generated;		/* owned: generated on the target: never written */
	bool	   *identity_always;	/* owned */

	/* the INSERT shape used last, so a run of rows builds no SQL */
	bool	   *ins_mask;		/* owned; natts entries, NULL until used */
	char	   *ins_key;		/* owned: statement key */
	char	   *ins_sql;		/* owned */
	char	   *ins_cols;		/* owned: quoted column list */
} TargetRel;

/*
 * Parameters of a statement: the values of the given columns of one or two
 * tuples, copied NUL-terminated into scratch -- except a large value of a
 * type whose binary form is its text (raw), which is passed in place.
 */
typedef struct ParamSpec
{
	const TupleData *tup;
	int			col;
	bool		raw;
} ParamSpec;

/*
 * text, varchar and bpchar (built-in OIDs, the same on every server) take
 * their text as binary input (textrecv): a value of these types can be
 * sent from the message as it is, with its length, without the
 * NUL-terminated copy that a text-format parameter needs.
 */
static bool
binary_is_text(const RemoteRelation *rel, int col)
{
	Oid			t = rel->columns[col].type_oid;

	return t == 25 || t == 1043 || t == 1042;
}

typedef struct StmtEntry
{
	char	   *key;			/* owned */
	char		name[16];
	int			nparams;
} StmtEntry;

struct Writer
{
	PGconn	   *conn;			/* apply connection, pipeline mode */
	PGconn	   *meta;			/* catalog lookups */
	bool		in_txn;
	bool		broken;			/* an error left the pipeline unusable */
	PendingOp	pending[MAX_PENDING];
	int			pending_head;	/* oldest unread */
	int			npending;
	TargetRel **rels;			/* owned; linear, small */
	int			nrels;
	int			cap_rels;
	StmtEntry  *stmts;			/* owned; open addressing */
	size_t		nstmt_slots;
	size_t		nstmts;
	char	   *scratch;		/* owned: NUL-terminated parameter copies */
	size_t		scratch_cap;
	const char **params;		/* owned */
	int		   *param_lens;		/* owned; for in-place (binary) values */
	int		   *param_fmts;		/* owned; 1: in place, binary */
	int			params_cap;
	ParamSpec  *spec_buf;		/* owned; reused by every change */
	bool	   *mask_buf;		/* owned; column masks of one change */
	size_t		change_cap;		/* entries in spec_buf and mask_buf */
	char		barrier_token[64];
	Lsn			barrier_lsn;
	bool		async_commit;	/* synchronous_commit = off; see durable.h */
	DurableTracker durable;
	Xid			source_xid;		/* source transaction being applied */
	Lsn			source_commit_lsn;
	WriterStats stats;

	/* the current run of inserts into one table with one column set */
	const TargetRel *run_rel;	/* borrowed; NULL when no run */
	char	   *run_key;		/* owned: statement key of the run */
	int			run_rows;		/* rows in the run so far */
	char	   *copy_sql;		/* owned: COPY ... FROM STDIN for the run */
	StrBuf		copy_buf;		/* COPY text of rows not yet sent */
	int			copy_rows;
	bool		copy_open;		/* out of pipeline mode, COPY in progress */
};

static bool run_end(Writer *w, SyncError *err);

/* ------------------------------------------------------------------------
 * Pipeline bookkeeping
 * ------------------------------------------------------------------------ */

static void
push_pending(Writer *w, PendingKind kind, char op, const char *table)
{
	int			i = (w->pending_head + w->npending) % MAX_PENDING;
	PendingOp  *p = &w->pending[i];

	p->kind = kind;
	p->op = op;
	snprintf(p->table, sizeof(p->table), "%s", table ? table : "");
	p->xid = w->source_xid;
	p->commit_lsn = w->source_commit_lsn;
	w->npending++;
}

/* The op pushed last (npending > 0). */
static PendingOp *
last_pending(Writer *w)
{
	return &w->pending[(w->pending_head + w->npending - 1) % MAX_PENDING];
}

static const char *
op_name(char op)
{
	switch (op)
	{
		case 'I':
			return "INSERT into";
		case 'U':
			return "UPDATE of";
		case 'D':
			return "DELETE from";
		case 'T':
			return "TRUNCATE of";
	}
	return "statement on";
}

/* Check one result against what its statement needed. */
static bool
check_result(Writer *w, const PendingOp *op, PGresult *res, SyncError *err)
{
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_FATAL_ERROR)
	{
		pgconn_error_from_result(w->conn, res, err);
		if (op->kind == PENDING_COMMIT)
			sync_error_context(err, "COMMIT of the changes up to source %X/%X failed on target",
							   LSN_ARGS(op->commit_lsn));
		else if (op->table[0] && op->xid)
			sync_error_context(err, "%s \"%s\" from source transaction %u (committed at %X/%X) "
							   "failed on target", op_name(op->op), op->table, op->xid,
							   LSN_ARGS(op->commit_lsn));
		else if (op->table[0])
			sync_error_context(err, "%s \"%s\" failed on target", op_name(op->op), op->table);
		return false;
	}
	if (st == PGRES_PIPELINE_ABORTED)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_SERVER, "pipeline aborted");
	}
	if (op->kind == PENDING_WAL_POSITIONS)
	{
		Lsn			insert_lsn,
					flush_lsn;

		if (st != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
			!lsn_parse(PQgetvalue(res, 0, 0), &insert_lsn) ||
			!lsn_parse(PQgetvalue(res, 0, 1), &flush_lsn))
		{
			PQclear(res);
			return sync_error_set(err, SYNC_ERR_SERVER,
								  "could not read the target's WAL positions after COMMIT");
		}
		durable_note_commit(&w->durable, op->commit_lsn, insert_lsn);
		durable_note_flush(&w->durable, flush_lsn);
		PQclear(res);
		return true;
	}
	if (op->kind == PENDING_ONE_ROW && strcmp(PQcmdTuples(res), "1") != 0)
	{
		sync_error_set(err, SYNC_ERR_PRECONDITION,
					   "%s \"%s\" matched %s rows on target, expected exactly 1: "
					   "the target no longer matches the source",
					   op_name(op->op), op->table, PQcmdTuples(res));
		if (op->xid)
			sync_error_context(err, "source transaction %u (committed at %X/%X)",
							   op->xid, LSN_ARGS(op->commit_lsn));
		PQclear(res);
		return false;
	}
	/* a COMMIT of a failed transaction answers ROLLBACK */
	if (op->kind == PENDING_COMMIT && strcmp(PQcmdStatus(res), "COMMIT") == 0)
		w->stats.commits_confirmed++;
	PQclear(res);
	return true;
}

/* Read one pending result (and the NULL that ends it). */
static bool
read_one(Writer *w, SyncError *err)
{
	PendingOp	op = w->pending[w->pending_head];
	PGresult   *res;
	bool		ok = true;

	w->pending_head = (w->pending_head + 1) % MAX_PENDING;
	w->npending--;
	while ((res = PQgetResult(w->conn)) == NULL && op.kind == PENDING_SYNC)
		;
	if (res == NULL)
		return sync_error_set(err, SYNC_ERR_CONNECT, "lost target connection: %s",
							  PQerrorMessage(w->conn));
	if (op.kind == PENDING_SYNC)
	{
		ok = PQresultStatus(res) == PGRES_PIPELINE_SYNC ||
			sync_error_set(err, SYNC_ERR_INTERNAL, "pipeline out of step with results");
		PQclear(res);
		return ok;
	}
	ok = check_result(w, &op, res, err);
	res = PQgetResult(w->conn);	/* the NULL that ends this statement */
	if (res != NULL)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INTERNAL, "unexpected extra result");
	}
	return ok;
}

/*
 * Read results until at most `keep` remain pending.  After an error keep
 * reading through the next sync so the connection stays in step; the first
 * error is what is reported.
 */
static bool
drain(Writer *w, int keep, SyncError *err)
{
	bool		ok = true;
	SyncError	later;

	if (w->npending > keep)
	{
		w->stats.round_trips++;
		if (PQsendFlushRequest(w->conn) != 1 || PQflush(w->conn) != 0)
			return sync_error_set(err, SYNC_ERR_CONNECT, "could not send to target: %s",
								  PQerrorMessage(w->conn));
	}
	while (w->npending > keep)
	{
		if (!read_one(w, ok ? err : &later))
		{
			if (ok && err->code == SYNC_ERR_CONNECT)
				return false;
			ok = false;
			keep = 0;
		}
	}
	if (!ok)
		w->broken = true;
	return ok;
}

static bool
send_sync(Writer *w, SyncError *err)
{
	if (PQpipelineSync(w->conn) != 1)
		return sync_error_set(err, SYNC_ERR_CONNECT, "could not send to target: %s",
							  PQerrorMessage(w->conn));
	push_pending(w, PENDING_SYNC, 0, NULL);
	return true;
}

/* Make room in the pending ring, reading results when it is deep enough. */
static bool
reserve(Writer *w, int n, SyncError *err)
{
	if (w->broken)
		return sync_error_set(err, SYNC_ERR_INTERNAL, "apply connection is in a failed state");
	if (w->npending + n >= PIPELINE_DEPTH * 2)
		return drain(w, PIPELINE_DEPTH / 2, err);
	return true;
}

static bool
send_simple(Writer *w, const char *sql, SyncError *err)
{
	if (!reserve(w, 1, err))
		return false;
	if (PQsendQueryParams(w->conn, sql, 0, NULL, NULL, NULL, NULL, 0) != 1)
		return sync_error_set(err, SYNC_ERR_CONNECT, "could not send to target: %s",
							  PQerrorMessage(w->conn));
	push_pending(w, PENDING_ANY, 0, NULL);
	return true;
}

/*
 * Statements every batch runs, prepared once per session (session_setup):
 * a busy stream commits a batch or two per source transaction, and parsing
 * and planning these each time cost the target more than the changes did.
 * {state} is the state schema, put in by state_sql() when they are prepared.
 */
typedef enum FixedStmt
{
	FX_BEGIN,
	FX_COMMIT,
	FX_SYNC_COMMIT,
	FX_PROGRESS,
	FX_WAL_POSITIONS,
	FX_COUNT
} FixedStmt;

static const struct
{
	const char *name;
	const char *sql;
	int			nparams;
}			fixed_stmts[FX_COUNT] = {
	[FX_BEGIN] = {"pgs_begin", "BEGIN", 0},
	[FX_COMMIT] = {"pgs_commit", "COMMIT", 0},
	[FX_SYNC_COMMIT] = {"pgs_sync_commit", "SET LOCAL synchronous_commit = on", 0},
	[FX_PROGRESS] = {"pgs_progress",
		"UPDATE {state}.migration SET applied_lsn = $1::pg_lsn,"
		" applied_commit_time = to_timestamp($2::float8),"
		" barrier_token = coalesce($3, barrier_token),"
		" barrier_lsn = coalesce($4::pg_lsn, barrier_lsn),"
		" updated_at = now() WHERE id = 1", 4},
	[FX_WAL_POSITIONS] = {"pgs_wal_positions",
		"SELECT pg_catalog.pg_current_wal_insert_lsn(), pg_catalog.pg_current_wal_flush_lsn()", 0},
};

static bool
send_fixed(Writer *w, FixedStmt id, const char *const *params, PendingKind kind,
		   const char *table, SyncError *err)
{
	if (!reserve(w, 1, err))
		return false;
	if (PQsendQueryPrepared(w->conn, fixed_stmts[id].name, fixed_stmts[id].nparams,
							params, NULL, NULL, 0) != 1)
		return sync_error_set(err, SYNC_ERR_CONNECT, "could not send to target: %s",
							  PQerrorMessage(w->conn));
	push_pending(w, kind, 0, table);
	return true;
}

static bool
ensure_txn(Writer *w, SyncError *err)
{
	if (w->in_txn)
		return true;
	if (!send_fixed(w, FX_BEGIN, NULL, PENDING_ANY, NULL, err))
		return false;
	w->in_txn = true;
	return true;
}

/* ------------------------------------------------------------------------
 * Target relation lookup
 * ------------------------------------------------------------------------ */

static void
target_rel_free(TargetRel *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < t->s.natts; i++)
	{
		free(t->s.cols[i]);
		if (t->s.eq_op != NULL)
			free(t->s.eq_op[i]);
		if (t->s.cast_type != NULL)
			free(t->s.cast_type[i]);
	}
	free(t->s.cols);
	free(t->s.eq_op);
	free(t->s.cast_type);
	free(t->generated);
	free(t->identity_always);
	free(t->s.text_compare);
	free(t->ins_mask);
	free(t->ins_key);
	free(t->ins_sql);
	free(t->ins_cols);
	free(t->display);
	free(t->s.qualified);
	free(t);
}

static bool
fill_columns(TargetRel *t, const RemoteRelation *rel, PGresult *res,
			 SyncError *err)
{
	for (int i = 0; i < rel->natts; i++)
	{
		int			r;

		for (r = 0; r < PQntuples(res); r++)
			if (strcmp(PQgetvalue(res, r, 0), rel->columns[i].name) == 0)
				break;
		if (r == PQntuples(res))
			return sync_error_set(err, SYNC_ERR_PRECONDITION,
								  "column \"%s\" of table \"%s\" exists on the source but "
								  "not on the target; make the target table match, then "
								  "run sync again", rel->columns[i].name, rel->display_name);
		t->s.cols[i] = sql_quote_ident(rel->columns[i].name);
		t->generated[i] = PQgetvalue(res, r, 1)[0] == 't';
		t->identity_always[i] = PQgetvalue(res, r, 2)[0] == 't';
		{
			const char *how = PQgetvalue(res, r, 4);	/* FULL_MATCH_SQL */

			t->s.text_compare[i] = strcmp(how, "text") == 0;
			if (how[0] != '\0' &&
				((!t->s.text_compare[i] && (t->s.eq_op[i] = strdup(how)) == NULL) ||
				 (t->s.cast_type[i] = strdup(PQgetvalue(res, r, 6))) == NULL))
				return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		}
		t->s.natts = i + 1;
		if (t->s.cols[i] == NULL)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	return true;
}

/*
 * How a replica identity FULL match compares a column, from the target's
 * catalog (issue 16 item 3; see sql_add_full_match).  The type (a domain's
 * base type) and, for an array, its element must have a default btree or
 * hash operator class, whose equality then compares; the class may be on
 * the type itself or, for enums, ranges, multiranges and arrays, on the
 * polymorphic pseudo-type.  Returns:
 *   ''                      plain IS NOT DISTINCT FROM: a built-in type whose
 *                           "=" is pg_catalog's (found whatever the empty
 *                           search_path) and holds only for identical
 *                           values (integers, timestamps, uuid, bytea ...;
 *                           text and varchar under a deterministic
 *                           collation);
 *   'OPERATOR(schema.=)'    that operator and the text forms: "=" may hold
 *                           for different values (float 0 and -0, numeric
 *                           1.0 and 1.00, citext, interval, jsonb), and
 *                           lives where the type's extension put it;
 *   'text'                  the text forms alone: no equality at all (json,
 *                           xml, point; box's "=" compares areas), an
 *                           element type without one, or a composite (its
 *                           record "=" fails on a field without one).
 * Column 7 is the type by schema-qualified name, without a type modifier
 * (format_type(oid, NULL) says "character" and "bit", which are char(1)
 * and bit(1) in a cast).
 */
#define EQ_OPCLASS_OF(typ) \
	"(SELECT format('OPERATOR(%I.%s)', n.nspname, o.oprname)" \
	"  FROM pg_catalog.pg_opclass oc" \
	"  JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod AND am.amname IN ('btree', 'hash')" \
	"  JOIN pg_catalog.pg_amop ao ON ao.amopfamily = oc.opcfamily" \
	"   AND ao.amoplefttype = oc.opcintype AND ao.amoprighttype = oc.opcintype" \
	"   AND ao.amopstrategy = CASE am.amname WHEN 'btree' THEN 3 ELSE 1 END" \
	"  JOIN pg_catalog.pg_operator o ON o.oid = ao.amopopr" \
	"  JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace" \
	"  WHERE oc.opcdefault AND oc.opcintype IN (" typ ".oid," \
	"   CASE " typ ".typtype WHEN 'e' THEN 'pg_catalog.anyenum'::pg_catalog.regtype" \
	"    WHEN 'r' THEN 'pg_catalog.anyrange'::pg_catalog.regtype" \
	"    WHEN 'm' THEN 'pg_catalog.anymultirange'::pg_catalog.regtype END," \
	"   CASE WHEN " typ ".typcategory = 'A' THEN 'pg_catalog.anyarray'::pg_catalog.regtype END)" \
	"   AND " typ ".typname NOT IN ('box')" \
	"  ORDER BY am.amname LIMIT 1)"

/*
 * Built-in types whose "=" holds only for identical values: bool, bytea,
 * "char", int8, int2, int4, oid, money, date, time, timestamp, timestamptz,
 * uuid, pg_lsn; text (25) and varchar (1043) when the column's collation is
 * deterministic (read through to_jsonb: collisdeterministic is 12+).
 */
#define EXACT_EQ_TYPES "16, 17, 18, 20, 21, 23, 26, 790, 1082, 1083, 1114, 1184, 2950, 3220"

#define FULL_MATCH_SQL \
	"(SELECT CASE" \
	"   WHEN bt.typtype = 'c' THEN 'text'" \
	"   WHEN " EQ_OPCLASS_OF("bt") " IS NULL THEN 'text'" \
	"   WHEN et.oid IS NOT NULL AND " EQ_OPCLASS_OF("et") " IS NULL THEN 'text'" \
	"   WHEN t0.oid IN (" EXACT_EQ_TYPES ") THEN ''" \
	"   WHEN t0.oid IN (25, 1043) AND coalesce((SELECT pg_catalog.to_jsonb(co)" \
	"    OPERATOR(pg_catalog.->>) 'collisdeterministic' FROM pg_catalog.pg_collation co" \
	"    WHERE co.oid = a.attcollation), 'true') = 'true' THEN ''" \
	"   ELSE " EQ_OPCLASS_OF("bt") " END" \
	"  FROM pg_catalog.pg_type t0" \
	"  JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t0.typtype = 'd'" \
	"    THEN t0.typbasetype ELSE t0.oid END" \
	"  LEFT JOIN pg_catalog.pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'" \
	"  WHERE t0.oid = a.atttypid)"

static TargetRel *
target_rel_build(Writer *w, const RemoteRelation *rel, SyncError *err)
{
	TargetRel  *t = calloc(1, sizeof(*t));
	const char *params[1];
	PGresult   *res = NULL;
	int			n = rel->natts ? rel->natts : 1;

	if (t == NULL || (t->s.qualified = sql_quote_qualified(rel->nspname, rel->relname)) == NULL ||
		(t->display = strdup(rel->display_name)) == NULL ||
		(t->s.cols = calloc((size_t) n, sizeof(char *))) == NULL ||
		(t->generated = calloc((size_t) n, 1)) == NULL ||
		(t->identity_always = calloc((size_t) n, 1)) == NULL ||
		(t->s.text_compare = calloc((size_t) n, 1)) == NULL ||
		(t->s.eq_op = calloc((size_t) n, sizeof(char *))) == NULL ||
		(t->s.cast_type = calloc((size_t) n, sizeof(char *))) == NULL)
	{
		target_rel_free(t);
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory"), NULL;
	}
	t->s.relid = rel->relid;
	t->s.version = rel->version;
	params[0] = t->s.qualified;
	res = pgconn_query(w->meta,
					   "SELECT a.attname, a.attgenerated <> '', a.attidentity = 'a',"
					   " to_regclass($1) IS NOT NULL,"
					   " " FULL_MATCH_SQL ","
					   /* 'p': statements route through it (no ONLY), see sqlbuild.h */
					   " (SELECT r.relkind = 'p' FROM pg_catalog.pg_class r WHERE r.oid = c.oid),"
					   " (SELECT format('%I.%I', tn.nspname, ty.typname) FROM pg_catalog.pg_type ty"
					   "  JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace"
					   "  WHERE ty.oid = a.atttypid)"
					   " FROM (SELECT to_regclass($1) AS oid) c"
					   " LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid"
					   " AND a.attnum > 0 AND NOT a.attisdropped", 1, params, err);
	if (res == NULL || PQntuples(res) == 0 || PQgetvalue(res, 0, 3)[0] != 't')
	{
		if (res != NULL)
			sync_error_set(err, SYNC_ERR_PRECONDITION,
						   "table \"%s\" is published by the source but does not exist on "
						   "the target", rel->display_name);
		PQclear(res);
		target_rel_free(t);
		return NULL;
	}
	t->s.partitioned = PQgetvalue(res, 0, 5)[0] == 't';
	if (!fill_columns(t, rel, res, err))
	{
		PQclear(res);
		target_rel_free(t);
		return NULL;
	}
	PQclear(res);
	return t;
}

/* The TargetRel for rel, rebuilt when a newer Relation message arrived. */
static TargetRel *
target_rel_get(Writer *w, const RemoteRelation *rel, SyncError *err)
{
	int			i;
	TargetRel  *t;

	for (i = 0; i < w->nrels; i++)
		if (w->rels[i]->s.relid == rel->relid)
			break;
	if (i < w->nrels && w->rels[i]->s.version == rel->version)
		return w->rels[i];
	/* a run of inserts must not outlive the TargetRel it points to */
	if (i < w->nrels && w->run_rel == w->rels[i] && !run_end(w, err))
		return NULL;
	t = target_rel_build(w, rel, err);
	if (t == NULL)
		return NULL;
	if (i == w->nrels)
	{
		if (w->nrels == w->cap_rels)
		{
			int			cap = w->cap_rels ? w->cap_rels * 2 : 32;
			TargetRel **nr = realloc(w->rels, (size_t) cap * sizeof(*nr));

			if (nr == NULL)
			{
				target_rel_free(t);
				return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory"), NULL;
			}
			w->rels = nr;
			w->cap_rels = cap;
		}
		w->nrels++;
	}
	else
		target_rel_free(w->rels[i]);
	w->rels[i] = t;
	return t;
}

/* ------------------------------------------------------------------------
 * Prepared statements
 * ------------------------------------------------------------------------ */

static uint64_t
hash_key(const char *s)
{
	uint64_t	h = 1469598103934665603u;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 1099511628211u;
	return h;
}

static bool
stmt_grow(Writer *w)
{
	size_t		n = w->nstmt_slots ? w->nstmt_slots * 2 : 256;
	StmtEntry  *slots = calloc(n, sizeof(*slots));

	if (slots == NULL)
		return false;
	for (size_t i = 0; i < w->nstmt_slots; i++)
	{
		size_t		j;

		if (w->stmts[i].key == NULL)
			continue;
		for (j = hash_key(w->stmts[i].key) & (n - 1); slots[j].key; j = (j + 1) & (n - 1))
			;
		slots[j] = w->stmts[i];
	}
	free(w->stmts);
	w->stmts = slots;
	w->nstmt_slots = n;
	return true;
}

/*
 * Find the prepared statement for key: *name is its name, or NULL with
 * *slot_out the free slot to prepare it in.  False only on out-of-memory.
 */
static bool
stmt_find(Writer *w, const char *key, const char **name, size_t *slot_out,
		  SyncError *err)
{
	size_t		j;

	*name = NULL;
	if ((w->nstmts + 1) * 2 > w->nstmt_slots && !stmt_grow(w))
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	for (j = hash_key(key) & (w->nstmt_slots - 1); w->stmts[j].key;
		 j = (j + 1) & (w->nstmt_slots - 1))
		if (strcmp(w->stmts[j].key, key) == 0)
		{
			*name = w->stmts[j].name;
			return true;
		}
	*slot_out = j;
	return true;
}

static const char *
stmt_prepare(Writer *w, size_t slot, const char *key, const char *sql, int nparams,
			 char op, const TargetRel *t, SyncError *err)
{
	StmtEntry  *e = &w->stmts[slot];

	if (!reserve(w, 1, err))
		return NULL;
	e->key = strdup(key);
	if (e->key == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory"), NULL;
	snprintf(e->name, sizeof(e->name), "pgs_%zu", w->nstmts++);
	e->nparams = nparams;
	if (PQsendPrepare(w->conn, e->name, sql, nparams, NULL) != 1)
		return sync_error_set(err, SYNC_ERR_CONNECT, "could not send to target: %s",
							  PQerrorMessage(w->conn)), NULL;
	/* a statement that does not parse names its table */
	push_pending(w, PENDING_ANY, op, t->display);
	return e->name;
}

/* Copy a value into scratch as a C string; returns its offset. */
static bool
scratch_reserve(Writer *w, size_t need)
{
	if (need <= w->scratch_cap)
		return true;
	size_t		cap = w->scratch_cap ? w->scratch_cap : 4096;
	char	   *np;

	while (cap < need)
		cap *= 2;
	np = realloc(w->scratch, cap);
	if (np == NULL)
		return false;
	w->scratch = np;
	w->scratch_cap = cap;
	return true;
}


/* Large values of text types are passed in place (ParamSpec.raw). */
static bool
param_in_place(const ParamSpec *p)
{
	const TupleValue *v = &p->tup->values[p->col];

	return p->raw && v->kind == TUPLE_VALUE_TEXT && v->data.len >= BIG_PARAM_BYTES;
}

static bool
bind_params(Writer *w, const ParamSpec *spec, int n, SyncError *err)
{
	size_t		total = 0,
				off = 0;

	for (int i = 0; i < n; i++)
		if (!param_in_place(&spec[i]))
			total += spec[i].tup->values[spec[i].col].data.len + 1;
	if (n > w->params_cap)
	{
		const char **np = realloc(w->params, (size_t) n * sizeof(*np));
		int		   *nl = np ? realloc(w->param_lens, (size_t) n * sizeof(int)) : NULL;
		int		   *nf = nl ? realloc(w->param_fmts, (size_t) n * sizeof(int)) : NULL;

		if (np)
			w->params = np;
		if (nl)
			w->param_lens = nl;
		if (nf)
			w->param_fmts = nf;
		if (!np || !nl || !nf)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		w->params_cap = n;
	}
	if (!scratch_reserve(w, total + 1))
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	for (int i = 0; i < n; i++)
	{
		const TupleValue *v = &spec[i].tup->values[spec[i].col];

		w->param_lens[i] = 0;
		w->param_fmts[i] = 0;
		if (v->kind == TUPLE_VALUE_NULL)
		{
			w->params[i] = NULL;
			continue;
		}
		if (v->kind != TUPLE_VALUE_TEXT)
			return sync_error_set(err, SYNC_ERR_INVALID,
								  "unexpected %s value in a column to write",
								  v->kind == TUPLE_VALUE_BINARY ? "binary" : "unchanged TOAST");
		if (param_in_place(&spec[i]))
		{
			w->params[i] = (const char *) v->data.ptr;
			w->param_lens[i] = (int) v->data.len;
			w->param_fmts[i] = 1;
			continue;
		}
		memcpy(w->scratch + off, v->data.ptr, v->data.len);
		w->scratch[off + v->data.len] = '\0';
		off += v->data.len + 1;
	}
	/* scratch may have moved while growing: set pointers after copying */
	off = 0;
	for (int i = 0; i < n; i++)
	{
		const TupleValue *v = &spec[i].tup->values[spec[i].col];

		if (v->kind == TUPLE_VALUE_NULL || param_in_place(&spec[i]))
			continue;
		w->params[i] = w->scratch + off;
		off += v->data.len + 1;
	}
	return true;
}

static bool
send_prepared(Writer *w, const char *name, int nparams, PendingKind kind, char op,
			  const TargetRel *t, SyncError *err)
{
	if (!reserve(w, 1, err))
		return false;
	if (PQsendQueryPrepared(w->conn, name, nparams, w->params, w->param_lens,
							w->param_fmts, 0) != 1)
		return sync_error_set(err, SYNC_ERR_CONNECT, "could not send to target: %s",
							  PQerrorMessage(w->conn));
	push_pending(w, kind, op, t->display);
	return true;
}

/* Execute the statement for key (preparing sql first if it is new). */
static bool
run_statement(Writer *w, const TargetRel *t, char op, const char *key, const char *sql,
			  const ParamSpec *spec, int n, PendingKind kind, SyncError *err)
{
	size_t		slot = 0;
	const char *name;

	if (!stmt_find(w, key, &name, &slot, err))
		return false;
	if (name == NULL && (name = stmt_prepare(w, slot, key, sql, n, op, t, err)) == NULL)
		return false;
	return bind_params(w, spec, n, err) && send_prepared(w, name, n, kind, op, t, err);
}

/* ------------------------------------------------------------------------
 * Changes
 * ------------------------------------------------------------------------ */

/*
 * Open the target transaction, find the TargetRel, and hand out the
 * writer's reusable parameter and column-mask buffers (sized for t).
 */
static bool
prepare_change(Writer *w, const RemoteRelation *rel, TargetRel **t, ParamSpec **spec,
			   bool **mask, SyncError *err)
{
	size_t		need;

	if (!ensure_txn(w, err) || (*t = target_rel_get(w, rel, err)) == NULL)
		return false;
	need = (size_t) (*t)->s.natts * 2 + 2;
	if (need > w->change_cap)
	{
		ParamSpec  *ns = realloc(w->spec_buf, need * sizeof(ParamSpec));
		bool	   *nm = ns ? realloc(w->mask_buf, need * sizeof(bool)) : NULL;

		if (ns)
			w->spec_buf = ns;
		if (nm)
			w->mask_buf = nm;
		if (!ns || !nm)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		w->change_cap = need;
	}
	memset(w->mask_buf, 0, need * sizeof(bool));
	*spec = w->spec_buf;
	*mask = w->mask_buf;
	return true;
}

static bool
check_width(const TargetRel *t, const TupleData *tup, SyncError *err)
{
	if (tup->ncols != t->s.natts)
		return sync_error_set(err, SYNC_ERR_INVALID,
							  "tuple for \"%s\" has %u columns, its Relation message "
							  "announced %d", t->display, tup->ncols, t->s.natts);
	return true;
}

/*
 * Runs of inserts.  The first COPY_RUN_THRESHOLD rows of a run into one
 * table (same column set) go as prepared INSERTs through the pipeline; the
 * rest are collected as COPY text and sent with one COPY when the run ends
 * (another kind of change, another table, a commit, or COPY_MAX_BYTES).
 * COPY cannot run in pipeline mode, so a flush syncs the pipeline first;
 * statement order is kept.
 *
 * A row whose values add up to BIG_ROW_BYTES or more always goes by COPY,
 * whatever its place in the run, and its text is escaped and sent in
 * pieces of COPY_PIECE_BYTES while it is being escaped: a prepared INSERT
 * would copy every value twice more (NUL-terminated parameters, then
 * libpq's output buffer, which never shrinks), and PQputCopyData of a whole
 * row grows that buffer to the row's size.  A COPY data message need not
 * end at a row boundary, so the pieces cut rows anywhere.  Memory for a
 * large value is then the decoded message alone (measured in
 * tests/integration/test_values.c).
 */
#define COPY_RUN_THRESHOLD 64
#define COPY_MAX_BYTES (8 * 1024 * 1024)
#define BIG_ROW_BYTES (1024 * 1024)
#define COPY_PIECE_BYTES (256 * 1024)
#define ESCAPE_SLICE_BYTES (64 * 1024)

/* Leave pipeline mode (after every result is read) and start the run's COPY. */
static bool
copy_open(Writer *w, SyncError *err)
{
	PGresult   *res;

	if (!send_sync(w, err) || !drain(w, 0, err))
		return false;
	if (PQexitPipelineMode(w->conn) != 1)
		return sync_error_set(err, SYNC_ERR_INTERNAL, "could not leave pipeline mode: %s",
							  PQerrorMessage(w->conn));
	w->stats.round_trips += 2;
	w->copy_open = true;
	res = PQexec(w->conn, w->copy_sql);
	if (PQresultStatus(res) != PGRES_COPY_IN)
		return pgconn_error_from_result(w->conn, res, err);
	PQclear(res);
	return true;
}

/* Send the COPY text collected so far, in pieces, and forget it. */
static bool
copy_send_buf(Writer *w, SyncError *err)
{
	for (size_t off = 0; off < w->copy_buf.len; off += COPY_PIECE_BYTES)
	{
		size_t		n = w->copy_buf.len - off;

		if (n > COPY_PIECE_BYTES)
			n = COPY_PIECE_BYTES;
		if (PQputCopyData(w->conn, w->copy_buf.p + off, (int) n) != 1)
			return sync_error_set(err, SYNC_ERR_CONNECT, "could not send rows to target: %s",
								  PQerrorMessage(w->conn));
	}
	w->copy_buf.len = 0;
	if (w->copy_buf.p != NULL)
		w->copy_buf.p[0] = '\0';
	return true;
}

/*
 * End the COPY if one is open (ok: everything so far succeeded; otherwise
 * it is ended as failed), read its result, return to pipeline mode, and
 * forget the collected rows.  err keeps the first error.
 */
static bool
copy_finish(Writer *w, bool ok, SyncError *err)
{
	PGresult   *res;

	if (w->copy_open)
	{
		if (ok)
		{
			ok = PQputCopyEnd(w->conn, NULL) == 1 ||
				sync_error_set(err, SYNC_ERR_CONNECT, "could not send rows to target: %s",
							   PQerrorMessage(w->conn));
			res = PQgetResult(w->conn);
			if (ok && PQresultStatus(res) != PGRES_COMMAND_OK)
				ok = pgconn_error_from_result(w->conn, res, err);
			else
				PQclear(res);
		}
		else if (PQresultStatus(res = PQgetResult(w->conn)) == PGRES_COPY_IN)
		{
			PQclear(res);
			PQputCopyEnd(w->conn, "pgstream: sending the rows failed");
		}
		else
			PQclear(res);
		while ((res = PQgetResult(w->conn)) != NULL)
			PQclear(res);
		w->copy_open = false;
		if (PQenterPipelineMode(w->conn) != 1)
		{
			w->broken = true;
			if (ok)
				ok = sync_error_set(err, SYNC_ERR_INTERNAL, "could not enter pipeline mode");
		}
	}
	if (!ok)
	{
		sync_error_context(err, "COPY into \"%s\" from source transaction %u (committed at "
						   "%X/%X) failed on target", w->run_rel->display, w->source_xid,
						   LSN_ARGS(w->source_commit_lsn));
		w->broken = true;
	}
	w->stats.inserts += ok ? (uint64_t) w->copy_rows : 0;
	w->copy_buf.len = 0;
	w->copy_rows = 0;
	return ok;
}

/* Send the collected COPY rows, if any, then return to pipeline mode. */
static bool
copy_flush(Writer *w, SyncError *err)
{
	bool		ok;

	if (w->copy_rows == 0 && !w->copy_open)
		return true;
	ok = !w->copy_buf.oom || sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	ok = ok && (w->copy_open || copy_open(w, err)) && copy_send_buf(w, err);
	return copy_finish(w, ok, err);
}

/* End the current run of inserts (flushing its COPY rows). */
static bool
run_end(Writer *w, SyncError *err)
{
	bool		ok = copy_flush(w, err);

	w->run_rel = NULL;
	w->run_rows = 0;
	free(w->run_key);
	w->run_key = NULL;
	free(w->copy_sql);
	w->copy_sql = NULL;
	return ok;
}

/* Start a run for key, or continue it; returns false on error. */
static bool
run_track(Writer *w, const TargetRel *t, const char *key, const char *cols, SyncError *err)
{
	StrBuf		sql = {0};

	if (w->run_rel == t && w->run_key && strcmp(w->run_key, key) == 0)
	{
		w->run_rows++;
		return true;
	}
	if (!run_end(w, err))
		return false;
	sql_build_copy(&t->s, cols, &sql);
	w->run_key = strdup(key);
	w->copy_sql = sql.p;
	if (w->run_key == NULL || sql.oom)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	w->run_rel = t;
	w->run_rows = 1;
	return true;
}

/*
 * The collected COPY text has grown past a piece: for a big row, open the
 * COPY now and send what there is, so the row never sits whole in memory.
 */
static bool
copy_stream_some(Writer *w, bool big, SyncError *err)
{
	if (!big || w->copy_buf.len < COPY_PIECE_BYTES)
		return true;
	if (w->copy_buf.oom)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	if (!w->copy_open && !copy_open(w, err))
		return false;
	return copy_send_buf(w, err);
}

/*
 * Add one row to the run's COPY text; big: stream it out as it is escaped
 * (and end the COPY after it, so that no COPY stays open between changes).
 */
static bool
copy_add_row(Writer *w, const TargetRel *t, const TupleData *tup, const bool *mask,
			 bool big, SyncError *err)
{
	bool		first = true;
	bool		ok = true;

	for (int i = 0; ok && i < t->s.natts; i++)
	{
		const TupleValue *v = &tup->values[i];

		if (!mask[i])
			continue;
		strbuf_add(&w->copy_buf, first ? "" : "\t");
		first = false;
		if (v->kind == TUPLE_VALUE_NULL)
		{
			strbuf_add(&w->copy_buf, "\\N");
			continue;
		}
		for (size_t off = 0; ok && off < v->data.len; off += ESCAPE_SLICE_BYTES)
		{
			size_t		n = v->data.len - off;

			sql_copy_escape_bytes(&w->copy_buf, v->data.ptr + off,
								  n > ESCAPE_SLICE_BYTES ? ESCAPE_SLICE_BYTES : n);
			ok = copy_stream_some(w, big, err);
		}
	}
	strbuf_add(&w->copy_buf, "\n");
	w->copy_rows++;
	if (!ok)
		return copy_finish(w, false, err);	/* err keeps the first error */
	if (big || w->copy_buf.len >= COPY_MAX_BYTES)
		return copy_flush(w, err);
	return !w->copy_buf.oom || sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
}

/* Bytes of the values of the columns in mask. */
static size_t
row_bytes(const TupleData *tup, const bool *mask, int natts)
{
	size_t		total = 0;

	for (int i = 0; i < natts; i++)
		if (mask[i])
			total += tup->values[i].data.len;
	return total;
}

/* Make t's cached INSERT shape the one for mask (building it only if new). */
static bool
insert_shape(TargetRel *t, const bool *mask, SyncError *err)
{
	StrBuf		key = {0},
				sql = {0},
				cols = {0};

	if (t->ins_mask != NULL && memcmp(t->ins_mask, mask, (size_t) t->s.natts) == 0)
		return true;
	sql_build_insert(&t->s, mask, &sql, &cols);
	sql_make_key(&key, 'I', &t->s, mask, NULL);
	free(t->ins_key);
	free(t->ins_sql);
	free(t->ins_cols);
	t->ins_key = key.p;
	t->ins_sql = sql.p;
	t->ins_cols = cols.p ? cols.p : strdup("");
	if (t->ins_mask == NULL)
		t->ins_mask = malloc((size_t) t->s.natts + 1);
	if (key.oom || sql.oom || cols.oom || !t->ins_key || !t->ins_sql || !t->ins_cols ||
		!t->ins_mask)
	{
		free(t->ins_mask);
		t->ins_mask = NULL;
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	memcpy(t->ins_mask, mask, (size_t) t->s.natts);
	return true;
}

bool
writer_insert(Writer *w, const RemoteRelation *rel, const TupleData *newtup,
			  SyncError *err)
{
	TargetRel  *t;
	ParamSpec  *spec;
	bool	   *mask;
	int			n = 0;
	bool		ok;

	if (!prepare_change(w, rel, &t, &spec, &mask, err))
		return false;
	if (!check_width(t, newtup, err))
		return false;
	for (int i = 0; i < t->s.natts; i++)
	{
		mask[i] = !t->generated[i] && newtup->values[i].kind != TUPLE_VALUE_UNCHANGED_TOAST;
		if (mask[i])
			spec[n++] = (ParamSpec) {newtup, i, binary_is_text(rel, i)};
	}
	if (!insert_shape(t, mask, err))
		return false;
	if (n == 0 ? !run_end(w, err) : !run_track(w, t, t->ins_key, t->ins_cols, err))
		return false;
	if (n > 0 && row_bytes(newtup, mask, t->s.natts) >= BIG_ROW_BYTES)
		return copy_add_row(w, t, newtup, mask, true, err);
	if (n > 0 && w->run_rows > COPY_RUN_THRESHOLD)
		return copy_add_row(w, t, newtup, mask, false, err);
	ok = run_statement(w, t, 'I', t->ins_key, t->ins_sql, spec, n, PENDING_ANY, err);
	w->stats.inserts += ok;
	return ok;
}

/*
 * Which columns identify the row a change is about, and their parameters.
 * With an old tuple of replica identity FULL every column does (NULL-safe;
 * types without an equality operator, like json, by their output text) and
 * one row is picked by (tableoid, ctid); otherwise the replica identity key
 * columns, from the old key when sent, else from the new tuple.
 */
static bool
where_columns(const TargetRel *t, const RemoteRelation *rel, const PgoutputChange *c,
			  bool *keymask, ParamSpec *spec, int *n, SyncError *err)
{
	const TupleData *src = c->old_kind != PGOUTPUT_OLD_NONE ? &c->old_tuple : &c->new_tuple;
	bool		full = c->old_kind == PGOUTPUT_OLD_TUPLE;
	int			nkeys = 0;

	if (!check_width(t, src, err))
		return false;
	for (int i = 0; i < t->s.natts; i++)
	{
		if (!(full || rel->columns[i].is_key))
			continue;
		if (src->values[i].kind == TUPLE_VALUE_UNCHANGED_TOAST)
			return sync_error_set(err, SYNC_ERR_INVALID,
								  "key column \"%s\" of \"%s\" arrived without its value",
								  rel->columns[i].name, t->display);
		if (!full && src->values[i].kind == TUPLE_VALUE_NULL)
			return sync_error_set(err, SYNC_ERR_INVALID, "key column \"%s\" of \"%s\" is NULL",
								  rel->columns[i].name, t->display);
		keymask[i] = true;
		spec[(*n)++] = (ParamSpec) {src, i, binary_is_text(rel, i)};
		nkeys++;
	}
	/*
	 * With FULL, no column is fine: the table has no published column (none
	 * at all, or only generated ones), every row equals every other, and
	 * one of them is deleted or checked, as REPLICA IDENTITY FULL means.
	 */
	if (nkeys == 0 && !full)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "table \"%s\" has no replica identity: UPDATE and DELETE "
							  "cannot be applied; give it a primary key or REPLICA IDENTITY FULL",
							  t->display);
	return true;
}

/* Does the old tuple (when sent) show column i unchanged? */
static bool
identity_unchanged(const PgoutputChange *c, int i)
{
	const TupleValue *o,
			   *nv;

	if (c->old_kind == PGOUTPUT_OLD_NONE || i >= c->old_tuple.ncols)
		return true;
	o = &c->old_tuple.values[i];
	nv = &c->new_tuple.values[i];
	if (o->kind == TUPLE_VALUE_NULL && c->old_kind == PGOUTPUT_OLD_KEY)
		return true;			/* not a key column: not sent */
	return o->kind == nv->kind && o->data.len == nv->data.len &&
		(o->data.len == 0 || memcmp(o->data.ptr, nv->data.ptr, o->data.len) == 0);
}

/*
 * Columns an UPDATE sets: not unchanged TOAST (the target keeps its value),
 * not generated, not identity ALWAYS (which cannot be set; an UPDATE that
 * changes one is refused).
 */
static bool
set_columns(const TargetRel *t, const RemoteRelation *rel, const PgoutputChange *c,
			bool *setmask, ParamSpec *spec, int *n, SyncError *err)
{
	if (!check_width(t, &c->new_tuple, err))
		return false;
	for (int i = 0; i < t->s.natts; i++)
	{
		if (t->identity_always[i] && !identity_unchanged(c, i))
			return sync_error_set(err, SYNC_ERR_PRECONDITION,
								  "UPDATE changes identity column \"%s\" of \"%s\", which is "
								  "GENERATED ALWAYS on the target", rel->columns[i].name,
								  t->display);
		if (t->generated[i] || t->identity_always[i] ||
			c->new_tuple.values[i].kind == TUPLE_VALUE_UNCHANGED_TOAST)
			continue;
		setmask[i] = true;
		spec[(*n)++] = (ParamSpec) {&c->new_tuple, i, binary_is_text(rel, i)};
	}
	return true;
}

/*
 * Run the UPDATE or DELETE for this shape: the statement key is made from
 * the masks, and SQL is only built the first time a shape is seen.
 */
static bool
run_keyed(Writer *w, const TargetRel *t, char op, const bool *setmask, const bool *keymask,
		  bool full, const ParamSpec *spec, int n, SyncError *err)
{
	StrBuf		key = {0},
				sql = {0};
	size_t		slot = 0;
	const char *name;
	bool		ok;

	sql_make_key(&key, full ? (char) (op + 1) : op, &t->s, op == 'U' ? setmask : keymask,
			 op == 'U' ? keymask : NULL);
	ok = !key.oom || sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	if (ok && (ok = stmt_find(w, key.p, &name, &slot, err)) && name == NULL)
	{
		if (op == 'U')
			sql_build_update(&t->s, setmask, keymask, full, &sql);
		else
			sql_build_delete(&t->s, keymask, full, &sql);
		ok = !sql.oom ?
			(name = stmt_prepare(w, slot, key.p, sql.p, n, op, t, err)) != NULL
			: sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	ok = ok && bind_params(w, spec, n, err) &&
		send_prepared(w, name, n, PENDING_ONE_ROW, op, t, err);
	free(key.p);
	free(sql.p);
	return ok;
}

bool
writer_update(Writer *w, const RemoteRelation *rel, const PgoutputChange *c,
			  SyncError *err)
{
	TargetRel  *t;
	ParamSpec  *spec;
	bool	   *setmask;
	int			n = 0;
	bool		ok;

	if (!run_end(w, err) || !prepare_change(w, rel, &t, &spec, &setmask, err))
		return false;
	ok = set_columns(t, rel, c, setmask, spec, &n, err) &&
		where_columns(t, rel, c, setmask + t->s.natts + 1, spec, &n, err) &&
		run_keyed(w, t, 'U', setmask, setmask + t->s.natts + 1,
				  c->old_kind == PGOUTPUT_OLD_TUPLE, spec, n, err);
	w->stats.updates += ok;
	return ok;
}

bool
writer_delete(Writer *w, const RemoteRelation *rel, const PgoutputChange *c,
			  SyncError *err)
{
	TargetRel  *t;
	ParamSpec  *spec;
	bool	   *keymask;
	int			n = 0;
	bool		ok;

	if (!run_end(w, err) || !prepare_change(w, rel, &t, &spec, &keymask, err))
		return false;
	ok = where_columns(t, rel, c, keymask, spec, &n, err) &&
		run_keyed(w, t, 'D', NULL, keymask, c->old_kind == PGOUTPUT_OLD_TUPLE, spec, n, err);
	w->stats.deletes += ok;
	return ok;
}

bool
writer_truncate(Writer *w, const RemoteRelation *const *rels, int nrels, uint8_t flags,
				SyncError *err)
{
	StrBuf		sql = {0};
	const SqlRel **targets;
	bool		ok = true;

	if (!run_end(w, err) || !ensure_txn(w, err))
		return false;
	targets = calloc((size_t) (nrels > 0 ? nrels : 1), sizeof(*targets));
	if (targets == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	for (int i = 0; ok && i < nrels; i++)
	{
		TargetRel  *t = target_rel_get(w, rels[i], err);

		ok = t != NULL;
		if (ok)
			targets[i] = &t->s;
	}
	if (ok)
	{
		sql_build_truncate(targets, nrels, flags, &sql);
		ok = !sql.oom ? send_simple(w, sql.p, err) :
			sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	if (ok)
		last_pending(w)->op = 'T';
	w->stats.truncates += ok;
	free(targets);
	free(sql.p);
	return ok;
}

void
writer_set_source_transaction(Writer *w, Xid xid, Lsn commit_lsn)
{
	w->source_xid = xid;
	w->source_commit_lsn = commit_lsn;
}

void
writer_note_barrier(Writer *w, const char *token, Lsn end_lsn)
{
	snprintf(w->barrier_token, sizeof(w->barrier_token), "%s", token);
	w->barrier_lsn = end_lsn;
}

static bool
send_progress(Writer *w, Lsn end_lsn, PgTimestamp commit_time, SyncError *err)
{
	char		lsn[LSN_FORMAT_MAX],
				blsn[LSN_FORMAT_MAX],
				ts[32];
	const char *params[4];

	snprintf(ts, sizeof(ts), "%.6f",
			 (double) timestamp_to_unix_us(commit_time) / 1e6);
	params[0] = lsn_format(end_lsn, lsn);
	params[1] = ts;
	params[2] = w->barrier_token[0] ? w->barrier_token : NULL;
	params[3] = w->barrier_token[0] ? lsn_format(w->barrier_lsn, blsn) : NULL;
	return send_fixed(w, FX_PROGRESS, params, PENDING_ANY, state_sql("{state}.migration"), err);
}

/*
 * Commit the batch.  The batch's results are read first (one round trip):
 * an UPDATE or DELETE that did not change exactly one row, or any failed
 * statement, stops here and nothing is committed.  An asynchronous COMMIT
 * is then sent with the read of the target's WAL positions and not waited
 * for: its results are read with the next batch's (or by writer_settle),
 * so the target commits while the next batch is being built.  A COMMIT
 * that fails is reported then, and the next batch, which started after the
 * pipeline's sync, is never committed: its own COMMIT is only sent after
 * every earlier result was read.  Synchronous commits are waited for.
 */
bool
writer_commit(Writer *w, Lsn end_lsn, PgTimestamp commit_time, SyncError *err)
{
	/* the barrier's batch is flushed before cutover may drop the slot */
	bool		sync_commit = !w->async_commit || w->barrier_token[0] != '\0';

	if (!run_end(w, err) || !ensure_txn(w, err) ||
		!send_progress(w, end_lsn, commit_time, err) || !drain(w, 0, err))
		return false;
	if ((sync_commit && w->async_commit &&
		 !send_fixed(w, FX_SYNC_COMMIT, NULL, PENDING_ANY, NULL, err)) ||
		!send_fixed(w, FX_COMMIT, NULL, PENDING_COMMIT, NULL, err))
		return false;
	last_pending(w)->commit_lsn = end_lsn;
	if (!sync_commit)
	{
		/*
		 * Where this commit's record ends (at or before the insert position
		 * read just after it) and how far the target has flushed: sent
		 * with the COMMIT, read with its result, see durable.h.
		 */
		if (!send_fixed(w, FX_WAL_POSITIONS, NULL, PENDING_WAL_POSITIONS, NULL, err))
			return false;
		last_pending(w)->commit_lsn = end_lsn;
	}
	if (!send_sync(w, err))
		return false;
	w->in_txn = false;
	w->barrier_token[0] = '\0';
	w->stats.commits++;
	if (!sync_commit)
		return true;
	if (!drain(w, 0, err))
		return false;
	durable_note_sync_commit(&w->durable, end_lsn);
	return true;
}

bool
writer_settle(Writer *w, SyncError *err)
{
	if (w->in_txn || w->npending == 0)
		return true;
	return drain(w, 0, err);
}

Lsn
writer_durable_lsn(const Writer *w)
{
	return w->durable.durable;
}

bool
writer_all_durable(const Writer *w)
{
	return !durable_pending(&w->durable);
}

bool
writer_poll_durable(Writer *w, SyncError *err)
{
	char		v[LSN_FORMAT_MAX + 8];
	Lsn			flush;

	if (!durable_pending(&w->durable))
		return true;
	if (!pgconn_query_value(w->meta, "SELECT pg_catalog.pg_current_wal_flush_lsn()", 0, NULL,
							v, sizeof(v), false, err) || !lsn_parse(v, &flush))
		return err->code != SYNC_ERR_NONE ? false :
			sync_error_set(err, SYNC_ERR_SERVER, "could not read the target's WAL flush position");
	durable_note_flush(&w->durable, flush);
	return true;
}

void
writer_rollback(Writer *w)
{
	PGresult   *res;

	if (w == NULL || w->conn == NULL)
		return;
	w->copy_rows = 0;			/* rolled back with the transaction */
	w->copy_buf.len = 0;
	w->run_rel = NULL;
	if (PQpipelineStatus(w->conn) != PQ_PIPELINE_OFF)
	{
		SyncError	ignored;

		if (w->npending == 0 || last_pending(w)->kind != PENDING_SYNC)
			send_sync(w, &ignored);
		drain(w, 0, &ignored);
		PQexitPipelineMode(w->conn);
	}
	res = PQexec(w->conn, "ROLLBACK");
	PQclear(res);
	w->in_txn = false;
	w->npending = 0;
	w->broken = PQenterPipelineMode(w->conn) != 1;
}

PGconn *
writer_connection(const Writer *w)
{
	return w->conn;
}

const WriterStats *
writer_stats(const Writer *w)
{
	return &w->stats;
}

/*
 * The apply session's commit mode.  With async_commit, `durable` was read
 * back from the target and the source is told it is flushed as soon as
 * streaming starts, but an earlier run's last commits may still be
 * unflushed: a synchronous commit of a write flushes the target's WAL up to
 * itself, so everything before it too.
 */
static bool
session_setup(Writer *w, SyncError *err)
{
	for (int i = 0; i < FX_COUNT; i++)
	{
		PGresult   *res = PQprepare(w->conn, fixed_stmts[i].name, state_sql(fixed_stmts[i].sql),
									fixed_stmts[i].nparams, NULL);
		bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK;

		if (!ok)
			sync_error_set(err, SYNC_ERR_SERVER, "could not prepare \"%s\" on the target: %s",
						   state_sql(fixed_stmts[i].sql), PQerrorMessage(w->conn));
		PQclear(res);
		if (!ok)
			return false;
	}
	if (!w->async_commit)
		return pgconn_exec(w->conn, "SET synchronous_commit = on", err);
	if (!pgconn_exec(w->conn, state_sql("SET synchronous_commit = on;"
					 " UPDATE {state}.migration SET updated_at = now() WHERE id = 1"), err))
		return sync_error_context(err, "could not flush the target's WAL before streaming");
	return pgconn_exec(w->conn, "SET synchronous_commit = off", err);
}

/*
 * Apply sessions are recognised by a session-level advisory lock that each
 * holds for its whole life, not by application_name, which the user's
 * conninfo may set to anything.  Keys 'pgst' / 'aply' (two int4 keys: in
 * pg_locks classid, objid, objsubid = 2).
 */
#define APPLY_LOCK_KEYS "1885827956, 1634757753"
#define APPLY_LOCK_WAIT "60s"

/*
 * End every other apply session on this target database and wait until
 * each is gone (its lock released): whatever it had committed is then
 * visible, and nothing of it can commit any more.  Sessions named
 * "pgstream apply" by the user (as versions before the lock recognised
 * them) are ended too, but not waited for.  keep: go on holding the lock.
 */
static bool
end_earlier_sessions(PGconn *conn, bool keep, SyncError *err)
{
	SyncError	ignored;

	if (!pgconn_exec(conn,
					 "SELECT pg_catalog.pg_terminate_backend(pid) FROM ("
					 " SELECT l.pid FROM pg_catalog.pg_locks l"
					 "  WHERE l.locktype = 'advisory' AND l.granted"
					 "  AND l.database = (SELECT oid FROM pg_catalog.pg_database"
					 "   WHERE datname = pg_catalog.current_database())"
					 "  AND (l.classid, l.objid, l.objsubid) = (" APPLY_LOCK_KEYS ", 2)"
					 " UNION"
					 " SELECT a.pid FROM pg_catalog.pg_stat_activity a"
					 "  WHERE a.application_name = 'pgstream apply'"
					 "  AND a.datname = pg_catalog.current_database()"
					 "  AND a.usename = current_user) s"
					 " WHERE pid <> pg_catalog.pg_backend_pid()", err))
		return sync_error_context(err, "could not end an earlier apply session on the target");
	if (pgconn_exec(conn, keep ?
					"BEGIN; SET LOCAL lock_timeout = '" APPLY_LOCK_WAIT "';"
					" SELECT pg_catalog.pg_advisory_lock(" APPLY_LOCK_KEYS "); COMMIT" :
					"BEGIN; SET LOCAL lock_timeout = '" APPLY_LOCK_WAIT "';"
					" SELECT pg_catalog.pg_advisory_lock(" APPLY_LOCK_KEYS ");"
					" SELECT pg_catalog.pg_advisory_unlock(" APPLY_LOCK_KEYS "); COMMIT", err))
		return true;
	pgconn_exec(conn, "ROLLBACK", &ignored);
	return sync_error_context(err, "an earlier apply session on the target did not end within "
							  APPLY_LOCK_WAIT);
}

bool
writer_end_earlier_sessions(PGconn *conn, SyncError *err)
{
	return end_earlier_sessions(conn, false, err);
}

/*
 * The applied position, read on the apply session itself once every
 * earlier one is gone, must be the one the caller resumes from.  If an
 * earlier session committed after the caller read it, streaming from the
 * caller's position would apply that session's batches twice: refuse, as a
 * transient conflict, so that the caller reads the position again.
 */
static bool
check_position(Writer *w, Lsn expected, SyncError *err)
{
	char		v[LSN_FORMAT_MAX + 8];
	char		a[LSN_FORMAT_MAX],
				b[LSN_FORMAT_MAX];
	Lsn			applied;

	if (!pgconn_query_value(w->conn, state_sql("SELECT coalesce(applied_lsn, consistent_lsn)::text"
							" FROM {state}.migration"), 0, NULL, v, sizeof(v), false, err))
		return sync_error_context(err, "could not read the applied position on the target");
	if (!lsn_parse(v, &applied))
		return sync_error_set(err, SYNC_ERR_SERVER, "bad applied position \"%s\" on the target", v);
	if (applied == expected)
		return true;
	sync_error_set(err, SYNC_ERR_SERVER,
				   "the applied position on the target moved from %s to %s while apply "
				   "was starting (an earlier apply session committed); reading it again",
				   lsn_format(expected, a), lsn_format(applied, b));
	memcpy(err->sqlstate, "40001", 6);	/* a conflict: retried, see pgconn.h */
	return false;
}

Writer *
writer_create(const char *target_conninfo, bool async_commit, Lsn durable, SyncError *err)
{
	PgconnOptions co = {PGCONN_SQL, "pgstream apply", true, NULL};
	Writer	   *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory"), NULL;
	w->conn = pgconn_connect(target_conninfo, &co, "target", err);

	/*
	 * An apply session of an earlier run that lost its client (a partition,
	 * a crash) may still hold row locks, or be about to commit, until the
	 * server notices: end it and wait until it is gone, then check the
	 * position to resume from.  Ending sessions of one's own role needs no
	 * privilege.
	 */
	if (w->conn != NULL && end_earlier_sessions(w->conn, true, err) &&
		check_position(w, durable, err))
		w->meta = pgconn_connect(target_conninfo, &co, "target", err);
	w->async_commit = async_commit;
	durable_init(&w->durable, durable);
	if (w->meta == NULL || !session_setup(w, err))
	{
		writer_destroy(w);
		return NULL;
	}
	if (PQenterPipelineMode(w->conn) != 1)
	{
		sync_error_set(err, SYNC_ERR_INTERNAL, "could not enter pipeline mode on target");
		writer_destroy(w);
		return NULL;
	}
	return w;
}

void
writer_destroy(Writer *w)
{
	if (w == NULL)
		return;
	pgconn_close(w->conn);
	pgconn_close(w->meta);
	for (int i = 0; i < w->nrels; i++)
		target_rel_free(w->rels[i]);
	free(w->rels);
	for (size_t i = 0; i < w->nstmt_slots; i++)
		free(w->stmts[i].key);
	free(w->stmts);
	free(w->scratch);
	free(w->params);
	free(w->param_lens);
	free(w->param_fmts);
	free(w->spec_buf);
	free(w->mask_buf);
	free(w->copy_buf.p);
	free(w->run_key);
	free(w->copy_sql);
	free(w);
}
