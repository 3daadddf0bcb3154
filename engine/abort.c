/*
 * engine/abort.c -- "pgstream abort": remove what a migration left (see
 * abort.h).  Command line and help: engine/cmd/abort.c.
 *
 * Safe at any phase because it first takes sync's run lock and the
 * cutover lock on the target (state.h) and keeps them to the end: while it
 * works no sync or cutover can start, and while one runs it refuses.  So a
 * walsender still streaming the slot belongs to a run that is gone (killed,
 * its server session not yet noticed) and may be ended.
 *
 * Order: source first, then the target's state, so that a failure on the
 * source keeps the state (and with it the names, the replica identities
 * and the freeze to undo) for the next attempt.  When the source cannot be
 * reached at all, the target is cleaned anyway and what is left on the
 * source is printed with the SQL that removes it.
 */
#include "engine/abort.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/pgconn.h"
#include "apply/statesql.h"
#include "engine/cli.h"
#include "engine/log.h"
#include "engine/snapshot.h"
#include "engine/state.h"
#include "protocol/names.h"

typedef struct Abort
{
	const AbortOptions *o;
	AbortReport *r;
	PGconn	   *src;
	PGconn	   *tgt;
	bool		has_state;		/* {state}.migration exists */
	bool		has_row;		/* ... and its row was read into st */
	MigrationState st;
	char		slot[64];
	char		publication[128];
	char		insert_only[160];
	PGresult   *changes;		/* kind, nspname, relname, original */
} Abort;

/* Take sync's and cutover's locks: none of them may run while abort does. */
static bool
lock_out_runs(Abort *a, SyncError *err)
{
	char		got[8];

	if (!pgconn_query_value(a->tgt, "SELECT pg_catalog.pg_try_advisory_lock("
							STATE_SYNC_LOCK_KEYS ")", 0, NULL, got, sizeof(got), false, err))
		return sync_error_context(err, "could not take the migration's lock on the target");
	a->r->refused = got[0] != 't';
	if (got[0] != 't')
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "a pgstream sync is running for this target database; stop it "
							  "first (it holds the migration's lock), then run pgstream abort "
							  "again; nothing was changed");
	if (!pgconn_query_value(a->tgt, "SELECT pg_catalog.pg_try_advisory_lock("
							STATE_CUTOVER_LOCK_KEYS ")", 0, NULL, got, sizeof(got), false, err))
		return sync_error_context(err, "could not take the cutover lock on the target");
	a->r->refused = got[0] != 't';
	if (got[0] != 't')
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "a pgstream cutover is running for this target database; let it "
							  "finish or stop it, then run pgstream abort again; nothing was "
							  "changed");
	return true;
}

/* The state, if any: names, insert-only publication, source changes. */
static bool
read_state(Abort *a, SyncError *err)
{
	SyncError	e;
	char		have[8];

	if (!state_exists(a->tgt, &a->has_state, err))
		return false;
	if (!a->has_state)
		return true;
	sync_error_clear(&e);
	a->has_row = state_load(a->tgt, &a->st, &e);
	if (!a->has_row)
		log_warn("%s; the names come from the options or the defaults", e.message);
	if (!pgconn_query_value(a->tgt, state_sql("SELECT to_regclass(quote_ident({state_literal})"
											  " || '.source_changes') IS NOT NULL"),
							0, NULL, have, sizeof(have), false, err))
		return false;
	if (have[0] == 't')
		a->changes = pgconn_query(a->tgt, state_sql("SELECT kind, nspname, relname, original"
													" FROM {state}.source_changes ORDER BY 1, 2, 3"),
								  0, NULL, err);
	return have[0] != 't' || a->changes != NULL;
}

/* The target must hold this source database's migration, if any. */
static bool
check_same_source(Abort *a, SyncError *err)
{
	char		db[256];

	if (!a->has_row || a->src == NULL)
		return true;
	if (!pgconn_query_value(a->src, "SELECT pg_catalog.current_database()", 0, NULL, db,
							sizeof(db), false, err))
		return false;
	a->r->refused = strcmp(db, a->st.source_dbname) != 0;
	if (a->r->refused)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "the target holds the migration of source database \"%s\", but "
							  "--source is database \"%s\"; give the --source of that "
							  "migration; nothing was changed", a->st.source_dbname, db);
	return true;
}

/* Names: the state's, else the options', else the source database's default. */
static bool
choose_names(Abort *a, SyncError *err)
{
	char		def[NAMES_DEFAULT_SIZE] = "";

	if (a->src != NULL && !cli_default_name(a->src, def, sizeof(def), err))
		return false;
	snprintf(a->slot, sizeof(a->slot), "%s", a->o->slot ? a->o->slot :
			 a->has_row ? a->st.slot_name : def);
	snprintf(a->publication, sizeof(a->publication), "%s", a->o->publication ?
			 a->o->publication : a->has_row ? a->st.publication_name : def);
	if (a->has_row && a->st.insert_only_publication[0])
		snprintf(a->insert_only, sizeof(a->insert_only), "%s", a->st.insert_only_publication);
	else if (a->publication[0])
		snprintf(a->insert_only, sizeof(a->insert_only), "%s_insert_only", a->publication);
	return true;
}

static void
removed(Abort *a, const char *what)
{
	a->r->removed++;
	log_info("%s", what);
}

/* Put back the replica identities sync set (only those still FULL). */
static bool
restore_identities(Abort *a, SyncError *err)
{
	for (int i = 0; a->changes && i < PQntuples(a->changes); i++)
	{
		const char *params[2] = {PQgetvalue(a->changes, i, 1), PQgetvalue(a->changes, i, 2)};
		const char *original = PQgetvalue(a->changes, i, 3);
		char		now[8],
					sql[600],
					msg[700];
		char	   *q;
		PGresult   *res;

		if (strcmp(PQgetvalue(a->changes, i, 0), STATE_CHANGE_IDENTITY) != 0 ||
			strcmp(original, "f") == 0)
			continue;
		res = pgconn_query(a->src, "SELECT c.relreplident FROM pg_catalog.pg_class c"
						   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
						   " WHERE n.nspname = $1 AND c.relname = $2", 2, params, err);
		if (res == NULL)
			return false;
		snprintf(now, sizeof(now), "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
		PQclear(res);
		if (strcmp(now, "f") != 0)
			continue;			/* dropped, or changed since by someone else */
		q = pgconn_quote_qualified(a->src, params[0], params[1]);
		if (q == NULL)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		snprintf(sql, sizeof(sql), "ALTER TABLE %s REPLICA IDENTITY %s", q,
				 strcmp(original, "d") == 0 ? "DEFAULT" : "NOTHING");
		snprintf(msg, sizeof(msg), "source: %s (as before sync set FULL)", sql + 12);
		free(q);
		if (!pgconn_exec(a->src, sql, err))
			return sync_error_context(err, "could not restore the replica identity of "
									  "\"%s\".\"%s\"", params[0], params[1]);
		removed(a, msg);
	}
	return true;
}

/* Undo a freeze a cutover noted and did not undo (it was killed). */
static bool
undo_freeze(Abort *a, SyncError *err)
{
	for (int i = 0; a->changes && i < PQntuples(a->changes); i++)
	{
		const char *params[1] = {PQgetvalue(a->changes, i, 2)};
		char		set[8],
					sql[400],
					msg[500];
		char	   *q;

		if (strcmp(PQgetvalue(a->changes, i, 0), STATE_CHANGE_FREEZE) != 0)
			continue;
		if (!pgconn_query_value(a->src, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s"
								" JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase"
								" WHERE d.datname = $1 AND s.setrole = 0"
								" AND EXISTS (SELECT 1 FROM pg_catalog.unnest(s.setconfig) g"
								" WHERE g ~* '^default_transaction_read_only='))",
								1, params, set, sizeof(set), false, err))
			return sync_error_context(err, "could not read the source database's settings");
		if (set[0] != 't')
			continue;
		q = pgconn_quote_ident(a->src, params[0]);
		if (q == NULL)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		snprintf(sql, sizeof(sql), "ALTER DATABASE %s RESET default_transaction_read_only", q);
		free(q);
		if (!pgconn_exec(a->src, sql, err))
			return sync_error_context(err, "could not make the source database writable again");
		snprintf(msg, sizeof(msg), "source: database \"%s\" is writable again (the freeze of "
				 "a cutover that did not finish)", params[0]);
		removed(a, msg);
	}
	return true;
}

/* The slot, if it is of this database; its walsender is a dead run's. */
static bool
drop_slot(Abort *a, SyncError *err)
{
	const char *params[1] = {a->slot};
	char		msg[300];
	PGresult   *res;
	bool		ours;

	if (a->slot[0] == '\0')
		return true;
	res = pgconn_query(a->src, "SELECT coalesce(active_pid::text, ''),"
					   " database IS NOT DISTINCT FROM pg_catalog.current_database(),"
					   " coalesce(database, '')"
					   " FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
					   1, params, err);
	if (res == NULL)
		return false;
	if (PQntuples(res) == 0)
		return PQclear(res), true;
	ours = PQgetvalue(res, 0, 1)[0] == 't';
	if (!ours)
	{
		log_warn("source: replication slot \"%s\" belongs to database \"%s\", not to this "
				 "migration's: left alone", a->slot, PQgetvalue(res, 0, 2));
		return PQclear(res), true;
	}
	if (PQgetvalue(res, 0, 0)[0] != '\0')
	{
		const char *pid[1] = {PQgetvalue(res, 0, 0)};
		PGresult   *t = pgconn_query(a->src, "SELECT pg_catalog.pg_terminate_backend($1::int)",
									 1, pid, err);

		if (t == NULL)
			return PQclear(res), sync_error_context(err, "could not end the walsender "
													"(PID %s) holding slot \"%s\"", pid[0], a->slot);
		PQclear(t);
		log_info("source: ended walsender PID %s, which still held slot \"%s\" for a sync "
				 "that is no longer running", pid[0], a->slot);
	}
	PQclear(res);
	if (!snapshot_drop_slot(a->src, a->slot, err))
		return false;
	snprintf(msg, sizeof(msg), "source: dropped replication slot \"%s\"", a->slot);
	removed(a, msg);
	return true;
}

static bool
drop_publication(Abort *a, const char *name, SyncError *err)
{
	bool		exists;
	char		msg[300];

	if (name[0] == '\0' || !snapshot_publication_exists(a->src, name, &exists, err))
		return name[0] == '\0';
	if (!exists)
		return true;
	if (!snapshot_drop_publication(a->src, name, err))
		return false;
	snprintf(msg, sizeof(msg), "source: dropped publication \"%s\"", name);
	removed(a, msg);
	return true;
}

static bool
clean_source(Abort *a, SyncError *err)
{
	/* a frozen database refuses even DDL in this session's transactions */
	return pgconn_exec(a->src, "SET default_transaction_read_only = off", err) &&
		restore_identities(a, err) && undo_freeze(a, err) && drop_slot(a, err) &&
		drop_publication(a, a->publication, err) && drop_publication(a, a->insert_only, err);
}

/* The source could not be reached: say what may be left there, and how. */
static void
report_source_left(Abort *a)
{
	log_error("the source was not changed: it may still hold replication slot \"%s\" (it "
			  "keeps WAL: SELECT pg_drop_replication_slot('%s');) and publications \"%s\" "
			  "and \"%s\" (DROP PUBLICATION IF EXISTS ...;)", a->slot, a->slot,
			  a->publication, a->insert_only);
	a->r->source_left += 3;
	for (int i = 0; a->changes && i < PQntuples(a->changes); i++)
	{
		a->r->source_left++;
		if (strcmp(PQgetvalue(a->changes, i, 0), STATE_CHANGE_FREEZE) == 0)
			log_error("the source database \"%s\" may still be read-only: ALTER DATABASE "
					  "\"%s\" RESET default_transaction_read_only;",
					  PQgetvalue(a->changes, i, 2), PQgetvalue(a->changes, i, 2));
		else
			log_error("table \"%s\".\"%s\" on the source may still have REPLICA IDENTITY "
					  "FULL: ALTER TABLE \"%s\".\"%s\" REPLICA IDENTITY %s;",
					  PQgetvalue(a->changes, i, 1), PQgetvalue(a->changes, i, 2),
					  PQgetvalue(a->changes, i, 1), PQgetvalue(a->changes, i, 2),
					  strcmp(PQgetvalue(a->changes, i, 3), "d") == 0 ? "DEFAULT" : "NOTHING");
	}
}

/*
 * The tables this migration made on the target: those it copies into
 * ({state}.tables, once the copy is planned) and those the schema restore
 * made (its TABLE steps done, named "schema.tag" by pg_dump), which are
 * there before the copy is planned.  One list, for one DROP TABLE.
 */
#define MIGRATED_TABLES_SQL \
	"SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', '), count(*)" \
	" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" \
	" WHERE c.relkind IN ('r', 'p', 'f', 'm') AND n.nspname <> {state_literal}" \
	" AND (EXISTS (SELECT 1 FROM {state}.tables t" \
	"  WHERE t.nspname = n.nspname AND t.relname = c.relname)" \
	" OR EXISTS (SELECT 1 FROM {state}.schema_steps s" \
	"  WHERE s.kind IN ('TABLE', 'MATERIALIZED VIEW', 'FOREIGN TABLE') AND s.done" \
	"  AND s.name = n.nspname || '.' || c.relname))"

/*
 * --drop-target-objects: the tables this migration made, with what depends
 * on them (views, foreign keys).  Other objects of the schema dump (types,
 * functions, schemas) stay: say how many user tables remain.
 */
static bool
drop_target_tables(Abort *a, SyncError *err)
{
	PGresult   *res;
	long		left;
	char		first[256],
				msg[128];

	if (!a->o->drop_target_objects)
		return true;
	if (a->has_state)
	{
		res = pgconn_query(a->tgt, state_sql(MIGRATED_TABLES_SQL), 0, NULL, err);
		if (res == NULL)
			return false;
		if (!PQgetisnull(res, 0, 0))
		{
			size_t		len = strlen(PQgetvalue(res, 0, 0)) + 32;
			char	   *sql = malloc(len);

			if (sql == NULL)
				return PQclear(res), sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
			snprintf(sql, len, "DROP TABLE %s CASCADE", PQgetvalue(res, 0, 0));
			snprintf(msg, sizeof(msg), "target: dropped the %s table(s) the migration made",
					 PQgetvalue(res, 0, 1));
			if (!pgconn_exec(a->tgt, sql, err))
				return free(sql), PQclear(res),
					sync_error_context(err, "could not drop the migrated tables on the target");
			free(sql);
			removed(a, msg);
		}
		PQclear(res);
	}
	if (!state_count_user_tables(a->tgt, &left, first, sizeof(first), err))
		return false;
	if (left > 0)
		log_warn("target: %ld table(s) remain that the migration's state does not list, for "
				 "example %s (restored from the dump before the copy was planned, or not "
				 "pgstream's): drop them yourself, or re-create the target database", left, first);
	return true;
}

static bool
clean_target(Abort *a, SyncError *err)
{
	char		msg[300];

	if (!drop_target_tables(a, err))
		return false;
	if (!a->has_state)
		return true;
	if (!state_drop(a->tgt, err))
		return false;
	snprintf(msg, sizeof(msg), "target: dropped state schema %s", state_schema_quoted());
	removed(a, msg);
	return true;
}

bool
abort_run(const AbortOptions *o, AbortReport *report, SyncError *err)
{
	PgconnOptions co = {PGCONN_SQL, "pgstream abort", true, NULL};
	Abort		a;
	SyncError	src_err;
	bool		ok;

	memset(&a, 0, sizeof(a));
	memset(report, 0, sizeof(*report));
	a.o = o;
	a.r = report;
	if (!pgconn_check_conninfo(o->source, "source", err) ||
		!pgconn_check_conninfo(o->target, "target", err))
		return false;
	a.tgt = pgconn_connect(o->target, &co, "target", err);
	ok = a.tgt != NULL && lock_out_runs(&a, err) && read_state(&a, err);
	if (ok)
	{
		sync_error_clear(&src_err);
		a.src = pgconn_connect(o->source, &co, "source", &src_err);
		if (a.src == NULL)
		{
			log_error("%s", src_err.message);
			report->source_unreachable = true;
		}
		ok = check_same_source(&a, err) && choose_names(&a, err) &&
			(a.src == NULL || clean_source(&a, err)) && clean_target(&a, err);
	}
	if (ok && report->source_unreachable)
	{
		if (!a.has_row && o->slot == NULL)
			log_error("the source was not changed, and neither the state nor --slot names "
					  "what may be left there: run pgstream abort again once the source is "
					  "reachable (with --slot and --publication if they were given to sync)");
		else
			report_source_left(&a);
		ok = sync_error_set(err, SYNC_ERR_CONNECT, "the source could not be reached; the "
							"target is clean, the source is not");
	}
	PQclear(a.changes);
	pgconn_close(a.src);
	pgconn_close(a.tgt);			/* releases the locks */
	return ok;
}
