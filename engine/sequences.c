/*
 * engine/sequences.c -- move sequence state from source to target.
 */
#include "engine/sequences.h"

#include <stdio.h>
#include <string.h>

#include "apply/pgconn.h"

/*
 * Sequences that belong to an extension are left to CREATE EXTENSION.  The
 * state is read from each sequence itself: pg_sequences.last_value is NULL
 * when is_called is false, which would lose a setval(seq, n, false).
 */
static const char list_sql[] =
	"SELECT format('%I.%I', n.nspname, c.relname),"
	" pg_catalog.has_sequence_privilege(c.oid, 'SELECT')"
	" FROM pg_catalog.pg_class c"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
	" AND n.nspname !~ '^pg_(toast|temp)'"
	" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
	"   WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid"
	"   AND d.deptype = 'e')"
	" ORDER BY 1";

static bool
copy_one(PGconn *source, PGconn *target, const char *name, SyncError *err)
{
	char		sql[600];
	PGresult   *state;
	PGresult   *res;
	const char *params[3];

	snprintf(sql, sizeof(sql), "SELECT last_value::text, is_called::text FROM %s", name);
	state = pgconn_query(source, sql, 0, NULL, err);
	if (state == NULL || PQntuples(state) != 1)
	{
		PQclear(state);
		return err->code != SYNC_ERR_NONE ? sync_error_context(err, "could not read sequence %s", name)
			: sync_error_set(err, SYNC_ERR_INTERNAL, "sequence %s returned no row", name);
	}
	params[0] = name;
	params[1] = PQgetvalue(state, 0, 0);
	params[2] = PQgetvalue(state, 0, 1);
	res = pgconn_query(target, "SELECT pg_catalog.setval($1::regclass, $2::bigint, $3::boolean)",
					   3, params, err);
	PQclear(state);
	if (res == NULL)
		return sync_error_context(err, "could not set sequence %s on target", name);
	PQclear(res);
	return true;
}

bool
sequences_copy(PGconn *source, PGconn *target, long *count, SyncError *err)
{
	PGresult   *seqs = pgconn_query(source, list_sql, 0, NULL, err);
	bool		ok = true;

	*count = 0;
	if (seqs == NULL)
		return sync_error_context(err, "could not list sequences on source");
	for (int r = 0; ok && r < PQntuples(seqs); r++)
	{
		if (PQgetvalue(seqs, r, 1)[0] != 't')
			ok = sync_error_set(err, SYNC_ERR_PRECONDITION,
								"source login cannot read sequence %s; grant SELECT on it",
								PQgetvalue(seqs, r, 0));
		else if ((ok = copy_one(source, target, PQgetvalue(seqs, r, 0), err)))
			(*count)++;
	}
	PQclear(seqs);
	return ok;
}
