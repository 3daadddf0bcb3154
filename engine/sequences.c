/*
 * engine/sequences.c -- move sequence state from source to target.
 */
#include "engine/sequences.h"

#include <stdio.h>
#include <string.h>

#include "apply/pgconn.h"

/* Sequences that belong to an extension are left to CREATE EXTENSION. */
static const char list_sql[] =
	"SELECT format('%I.%I', s.schemaname, s.sequencename),"
	" pg_catalog.has_sequence_privilege(format('%I.%I', s.schemaname, s.sequencename), 'SELECT'),"
	" s.last_value IS NOT NULL, coalesce(s.last_value, s.start_value)"
	" FROM pg_catalog.pg_sequences s"
	" JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname"
	" JOIN pg_catalog.pg_class c ON c.relname = s.sequencename AND c.relnamespace = n.oid"
	" WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')"
	" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
	"   WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid"
	"   AND d.deptype = 'e')"
	" ORDER BY 1";

bool
sequences_copy(PGconn *source, PGconn *target, long *count, SyncError *err)
{
	PGresult   *seqs = pgconn_query(source, list_sql, 0, NULL, err);

	*count = 0;
	if (seqs == NULL)
		return sync_error_context(err, "could not read sequences on source");
	for (int r = 0; r < PQntuples(seqs); r++)
	{
		const char *params[3] = {PQgetvalue(seqs, r, 0), PQgetvalue(seqs, r, 3),
		PQgetvalue(seqs, r, 2)};
		PGresult   *res;

		if (PQgetvalue(seqs, r, 1)[0] != 't')
		{
			sync_error_set(err, SYNC_ERR_PRECONDITION,
						   "source login cannot read sequence %s; grant SELECT on it",
						   params[0]);
			PQclear(seqs);
			return false;
		}
		res = pgconn_query(target, "SELECT pg_catalog.setval($1::regclass, $2, $3::boolean)",
						   3, params, err);
		if (res == NULL)
		{
			sync_error_context(err, "could not set sequence %s on target", params[0]);
			PQclear(seqs);
			return false;
		}
		PQclear(res);
		(*count)++;
	}
	PQclear(seqs);
	return true;
}
