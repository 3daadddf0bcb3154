/*
 * engine/state.c -- run state on the target (schema "pgstream", or the one
 * given by --state-schema: apply/statesql.h).
 */
#include "engine/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/pgconn.h"
#include "apply/result.h"
#include "apply/statesql.h"

static const char *const phase_names[] = {
	"none", "schema", "copy", "index", "catchup", "streaming", "cutover",
	"final", "done", "failed"
};

const char *
phase_name(MigrationPhase phase)
{
	if ((int) phase < 0 || (size_t) phase >= sizeof(phase_names) / sizeof(phase_names[0]))
		return "unknown";
	return phase_names[phase];
}

MigrationPhase
phase_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(phase_names) / sizeof(phase_names[0]); i++)
		if (strcmp(name, phase_names[i]) == 0)
			return (MigrationPhase) i;
	return PHASE_FAILED;
}

/*
 * What pgstream changed on the source besides its slot and publications,
 * so that pgstream abort can put it back (engine/abort.c): each table's
 * replica identity before --no-key-tables=full ('d' or 'n'), and the
 * cutover's freeze of the database.  Recorded before the change is made.
 */
#define SOURCE_CHANGES_SQL \
	"CREATE TABLE IF NOT EXISTS {state}.source_changes (" \
	" kind text NOT NULL," \
	" nspname text NOT NULL," \
	" relname text NOT NULL," \
	" original text NOT NULL," \
	" PRIMARY KEY (kind, nspname, relname))"

static const char create_sql[] =
	"CREATE SCHEMA {state};"
	"COMMENT ON SCHEMA {state} IS 'pgstream migration state; dropped when the migration completes';"
	"CREATE TABLE {state}.migration ("
	" id int PRIMARY KEY CHECK (id = 1),"
	" source_system_id text NOT NULL,"
	" source_dbname text NOT NULL,"
	" slot_name text NOT NULL,"
	" publication_name text NOT NULL,"
	" follow boolean NOT NULL,"
	" phase text NOT NULL,"
	" consistent_lsn pg_lsn,"
	" applied_lsn pg_lsn,"
	" applied_commit_time timestamptz,"
	" received_lsn pg_lsn,"
	" source_lsn pg_lsn,"
	" apply_rate double precision,"
	" lag_bytes bigint,"
	" lag_seconds double precision,"
	" eta_seconds double precision,"
	" caught_up_at timestamptz,"
	" barrier_token text,"
	" cutover_token text,"
	" insert_only_publication text,"
	" barrier_lsn pg_lsn,"
	" cutover_lsn pg_lsn,"
	" cutover_pid int,"
	" error text,"
	" started_at timestamptz NOT NULL DEFAULT now(),"
	" updated_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE {state}.tables ("
	" relid oid PRIMARY KEY,"
	" nspname text NOT NULL,"
	" relname text NOT NULL,"
	" columns text NOT NULL,"
	" est_bytes bigint NOT NULL,"
	" est_rows bigint NOT NULL,"
	" pages bigint NOT NULL,"
	" nparts int NOT NULL);"
	"CREATE TABLE {state}.copy_parts ("
	" relid oid NOT NULL REFERENCES {state}.tables,"
	" part int NOT NULL,"
	" first_page bigint NOT NULL,"
	" end_page bigint,"
	" done boolean NOT NULL DEFAULT false,"
	" rows bigint,"
	" bytes bigint,"
	" PRIMARY KEY (relid, part));"
	"CREATE TABLE {state}.insert_only_tables ("
	" nspname text NOT NULL,"
	" relname text NOT NULL,"
	" PRIMARY KEY (nspname, relname));"
	SOURCE_CHANGES_SQL;

bool
state_exists(PGconn *target, bool *exists, SyncError *err)
{
	char		buf[8];

	if (!pgconn_query_value(target,
							state_sql("SELECT to_regclass(quote_ident({state_literal})"
									  " || '.migration') IS NOT NULL"),
							0, NULL, buf, sizeof(buf), false, err))
		return sync_error_context(err, "could not look for pgstream state in schema %s on "
								  "target", state_schema_quoted());
	*exists = buf[0] == 't';
	return true;
}

bool
state_create(PGconn *target, const MigrationState *st, SyncError *err)
{
	const char *params[5] = {st->source_system_id, st->source_dbname,
	st->slot_name, st->publication_name, st->follow ? "true" : "false"};
	PGresult   *res;

	if (!pgconn_exec(target, state_sql(create_sql), err))
		return sync_error_context(err, "could not create schema %s on target",
								  state_schema_quoted());
	res = pgconn_query(target,
					   state_sql("INSERT INTO {state}.migration (id, source_system_id, source_dbname,"
								 " slot_name, publication_name, follow, phase)"
								 " VALUES (1, $1, $2, $3, $4, $5, 'schema')"),
					   5, params, err);
	if (res == NULL)
		return sync_error_context(err, "could not record migration state on target");
	PQclear(res);
	return true;
}

bool
state_upgrade(PGconn *target, SyncError *err)
{
	char		have[8];

	/*
	 * Columns added after the first release of the state schema.  Looked
	 * for first: ALTER TABLE would take an exclusive lock on the table a
	 * running sync writes to, even when there is nothing to add.
	 */
	if (!pgconn_query_value(target, state_sql("SELECT count(*) FROM pg_catalog.pg_attribute"
											  " WHERE attrelid = (SELECT c.oid FROM pg_catalog.pg_class c"
											  "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
											  "  WHERE n.nspname = {state_literal} AND c.relname = 'migration')"
											  " AND attname IN ('cutover_lsn', 'cutover_pid')"
											  " AND NOT attisdropped"),
							0, NULL, have, sizeof(have), false, err))
		return sync_error_context(err, "could not read the pgstream state on the target");
	if (strcmp(have, "2") != 0 &&
		!pgconn_exec(target, state_sql("ALTER TABLE {state}.migration"
									   " ADD COLUMN IF NOT EXISTS cutover_lsn pg_lsn,"
									   " ADD COLUMN IF NOT EXISTS cutover_pid int"), err))
		return sync_error_context(err, "could not bring the pgstream state on the target "
								  "up to this version");
	if (!pgconn_exec(target, state_sql(SOURCE_CHANGES_SQL), err))
		return sync_error_context(err, "could not bring the pgstream state on the target "
								  "up to this version");
	return true;
}

bool
state_note_source_change(PGconn *target, const char *kind, const char *nspname,
						 const char *relname, const char *original, SyncError *err)
{
	const char *params[4] = {kind, nspname, relname, original};
	PGresult   *res = pgconn_query(target,
								   state_sql("INSERT INTO {state}.source_changes VALUES ($1, $2, $3, $4)"
											 " ON CONFLICT DO NOTHING"), 4, params, err);

	if (res == NULL)
		return sync_error_context(err, "could not record a change to the source on the target");
	PQclear(res);
	return true;
}

bool
state_forget_source_change(PGconn *target, const char *kind, const char *nspname,
						   const char *relname, SyncError *err)
{
	const char *params[3] = {kind, nspname, relname};
	PGresult   *res = pgconn_query(target,
								   state_sql("DELETE FROM {state}.source_changes"
											 " WHERE kind = $1 AND nspname = $2 AND relname = $3"),
								   3, params, err);

	if (res == NULL)
		return sync_error_context(err, "could not record a change to the source on the target");
	PQclear(res);
	return true;
}

bool
state_load(PGconn *target, MigrationState *st, SyncError *err)
{
	PGresult   *res = pgconn_query(target,
								   state_sql("SELECT source_system_id, source_dbname, slot_name,"
											 " publication_name, follow, phase,"
											 " coalesce(consistent_lsn::text, '0/0'), coalesce(error, ''),"
											 " coalesce(applied_lsn::text, '0/0'), coalesce(barrier_token, ''),"
											 " coalesce(insert_only_publication, ''), coalesce(cutover_token, ''),"
											 " coalesce(barrier_lsn::text, '0/0')"
											 " FROM {state}.migration WHERE id = 1"), 0, NULL, err);

	if (res == NULL)
		return sync_error_context(err, "could not read pgstream state on target");
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "schema %s on target has no migration row; "
							  "remove it with pgstream abort (or DROP SCHEMA %s CASCADE) "
							  "to start over", state_schema_quoted(), state_schema_quoted());
	}
	memset(st, 0, sizeof(*st));
	snprintf(st->source_system_id, sizeof(st->source_system_id), "%s", PQgetvalue(res, 0, 0));
	snprintf(st->source_dbname, sizeof(st->source_dbname), "%s", PQgetvalue(res, 0, 1));
	snprintf(st->slot_name, sizeof(st->slot_name), "%s", PQgetvalue(res, 0, 2));
	snprintf(st->publication_name, sizeof(st->publication_name), "%s", PQgetvalue(res, 0, 3));
	st->follow = PQgetvalue(res, 0, 4)[0] == 't';
	st->phase = phase_from_name(PQgetvalue(res, 0, 5));
	lsn_parse(PQgetvalue(res, 0, 6), &st->consistent_lsn);
	snprintf(st->error, sizeof(st->error), "%s", PQgetvalue(res, 0, 7));
	lsn_parse(PQgetvalue(res, 0, 8), &st->applied_lsn);
	snprintf(st->barrier_token, sizeof(st->barrier_token), "%s", PQgetvalue(res, 0, 9));
	snprintf(st->insert_only_publication, sizeof(st->insert_only_publication), "%s",
			 PQgetvalue(res, 0, 10));
	snprintf(st->cutover_token, sizeof(st->cutover_token), "%s", PQgetvalue(res, 0, 11));
	lsn_parse(PQgetvalue(res, 0, 12), &st->barrier_lsn);
	PQclear(res);
	return true;
}

bool
state_set_phase(PGconn *target, MigrationPhase phase, Lsn lsn, SyncError *err)
{
	char		lsnbuf[LSN_FORMAT_MAX];
	const char *params[2] = {phase_name(phase), lsn ? lsn_format(lsn, lsnbuf) : NULL};
	PGresult   *res = pgconn_query(target,
								   state_sql("UPDATE {state}.migration SET phase = $1,"
											 " consistent_lsn = coalesce($2::pg_lsn, consistent_lsn),"
											 " error = NULL, updated_at = now() WHERE id = 1"),
								   2, params, err);

	if (res == NULL)
		return sync_error_context(err, "could not record phase \"%s\" on target",
								  phase_name(phase));
	PQclear(res);
	return true;
}

void
state_set_failed(PGconn *target, const char *message)
{
	const char *params[1] = {message};
	SyncError	ignored;
	PGresult   *res;

	if (target == NULL || PQstatus(target) != CONNECTION_OK)
		return;
	if (PQtransactionStatus(target) != PQTRANS_IDLE)
		PQclear(PQexec(target, "ROLLBACK"));
	res = pgconn_query(target,
					   state_sql("UPDATE {state}.migration SET error = $1, updated_at = now()"
								 " WHERE id = 1 AND to_regclass(quote_ident({state_literal})"
								 " || '.migration') IS NOT NULL"),
					   1, params, &ignored);
	PQclear(res);
}

bool
state_set_insert_only(PGconn *target, const char *publication,
					  const char *const *nspnames, const char *const *relnames, int n,
					  SyncError *err)
{
	const char *p[2] = {publication, NULL};
	PGresult   *res;

	if (!pgconn_exec(target, state_sql("BEGIN; DELETE FROM {state}.insert_only_tables"), err))
		return false;
	res = pgconn_query(target, state_sql("UPDATE {state}.migration SET insert_only_publication = $1"),
					   1, p, err);
	for (int i = 0; res != NULL && i < n; i++)
	{
		const char *q[2] = {nspnames[i], relnames[i]};

		PQclear(res);
		res = pgconn_query(target, state_sql("INSERT INTO {state}.insert_only_tables VALUES ($1, $2)"),
						   2, q, err);
	}
	if (res == NULL)
	{
		PQclear(PQexec(target, "ROLLBACK"));
		return sync_error_context(err, "could not record insert-only tables on target");
	}
	PQclear(res);
	return pgconn_exec(target, "COMMIT", err);
}

bool
state_cutover_lock(PGconn *target, bool *got, SyncError *err)
{
	char		buf[8];

	if (!pgconn_query_value(target, "SELECT pg_catalog.pg_try_advisory_lock("
							STATE_CUTOVER_LOCK_KEYS ")", 0, NULL, buf, sizeof(buf),
							false, err))
		return sync_error_context(err, "could not take the cutover lock on the target");
	*got = buf[0] == 't';
	return true;
}

bool
state_cutover_running(PGconn *target)
{
	char		buf[8];
	SyncError	ignored;

	return pgconn_query_value(target, "SELECT " STATE_CUTOVER_RUNNING_SQL, 0, NULL, buf,
							  sizeof(buf), false, &ignored) && buf[0] == 't';
}

bool
state_drop(PGconn *target, SyncError *err)
{
	if (!pgconn_exec(target, state_sql("DROP SCHEMA IF EXISTS {state} CASCADE"), err))
		return sync_error_context(err, "could not drop schema %s on target",
								  state_schema_quoted());
	return true;
}

bool
state_count_user_tables(PGconn *target, long *count, char *first,
						size_t firstsize, SyncError *err)
{
	PGresult   *res = pgconn_query(target,
								   state_sql("SELECT count(*) OVER (), format('%I.%I', n.nspname, c.relname)"
											 " FROM pg_catalog.pg_class c"
											 " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
											 " WHERE c.relkind IN ('r', 'p', 'f', 'm')"
											 " AND n.nspname NOT IN ('pg_catalog', 'information_schema', {state_literal})"
											 " AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
											 " ORDER BY 2 LIMIT 1"), 0, NULL, err);

	if (res == NULL)
		return sync_error_context(err, "could not list tables on target");
	*count = PQntuples(res) ? (long) result_int(res, 0, 0) : 0;
	snprintf(first, firstsize, "%s", PQntuples(res) ? PQgetvalue(res, 0, 1) : "");
	PQclear(res);
	return true;
}
