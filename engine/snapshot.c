/*
 * engine/snapshot.c -- slot, exported snapshot and publication on the source.
 */
#include "engine/snapshot.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply/pgconn.h"

/* Wait for the result of the command sent on conn, calling watch every
 * SLOT_WATCH_MS meanwhile; NULL (err set) on failure. */
#define SLOT_WATCH_MS 500

static PGresult *
wait_watched(PGconn *conn, SlotWatchFn watch, void *arg, SyncError *err)
{
	PGresult   *res = NULL;
	PGresult   *next;

	while (PQisBusy(conn))
	{
		struct pollfd pfd = {PQsocket(conn), POLLIN, 0};
		int			r = poll(&pfd, 1, SLOT_WATCH_MS);

		if (r < 0 && errno != EINTR)
		{
			sync_error_set(err, SYNC_ERR_IO, "poll failed: %s", strerror(errno));
			return NULL;
		}
		if (r > 0 && !PQconsumeInput(conn))
		{
			sync_error_set(err, SYNC_ERR_CONNECT, "source connection lost: %s",
								  PQerrorMessage(conn));
			return NULL;
		}
		if (r == 0 && watch != NULL && !watch(arg, err))
			return NULL;
	}
	while ((next = PQgetResult(conn)) != NULL)
	{
		if (res == NULL)
			res = next;
		else
			PQclear(next);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		pgconn_error_from_result(conn, res, err);
		return NULL;
	}
	return res;
}

void
snapshot_slot_command(int server_version, const char *slot, char *buf, size_t size)
{
	/* slot names are [a-z0-9_]: checked by the caller (protocol/names.h) */
	if (server_version >= 150000)
		snprintf(buf, size, "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput (SNAPSHOT 'export')",
				 slot);
	else
		snprintf(buf, size, "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput EXPORT_SNAPSHOT", slot);
}

bool
snapshot_create_slot(ReplClient *rc, const char *slot, Lsn *consistent_lsn,
					 char *snapshot_name, SyncError *err)
{
	return snapshot_create_slot_watched(rc, slot, consistent_lsn, snapshot_name,
										NULL, NULL, err);
}

bool
snapshot_create_slot_watched(ReplClient *rc, const char *slot, Lsn *consistent_lsn,
							 char *snapshot_name, SlotWatchFn watch, void *arg,
							 SyncError *err)
{
	char		cmd[256];
	PGresult   *res;

	snapshot_slot_command(rc->server_version, slot, cmd, sizeof(cmd));
	if (!PQsendQuery(rc->conn, cmd))
		res = NULL, sync_error_set(err, SYNC_ERR_CONNECT, "%s", PQerrorMessage(rc->conn));
	else
		res = wait_watched(rc->conn, watch, arg, err);
	if (res == NULL)
		return sync_error_context(err, "could not create replication slot \"%s\" on source",
								  slot);
	if (PQntuples(res) != 1 || PQnfields(res) < 3 || PQgetisnull(res, 0, 2) ||
		!lsn_parse(PQgetvalue(res, 0, 1), consistent_lsn))
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INVALID,
							  "CREATE_REPLICATION_SLOT returned an unexpected result");
	}
	snprintf(snapshot_name, SNAPSHOT_NAME_MAX, "%s", PQgetvalue(res, 0, 2));
	PQclear(res);
	return true;
}

bool
snapshot_slot_exists(PGconn *source, const char *slot, bool *exists,
					 bool *active, SyncError *err)
{
	const char *params[1] = {slot};
	PGresult   *res = pgconn_query(source,
								   "SELECT active FROM pg_catalog.pg_replication_slots"
								   " WHERE slot_name = $1", 1, params, err);

	if (res == NULL)
		return sync_error_context(err, "could not look up replication slot \"%s\"", slot);
	*exists = PQntuples(res) == 1;
	if (active != NULL)
		*active = *exists && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return true;
}

bool
snapshot_drop_slot(PGconn *source, const char *slot, SyncError *err)
{
	const char *params[1] = {slot};

	/* An old walsender of ours may still hold it for a moment after a crash. */
	for (int attempt = 0; attempt < 50; attempt++)
	{
		bool		exists,
					active;
		PGresult   *res;

		if (!snapshot_slot_exists(source, slot, &exists, &active, err))
			return false;
		if (!exists)
			return true;
		if (active)
		{
			usleep(200 * 1000);
			continue;
		}
		res = pgconn_query(source, "SELECT pg_catalog.pg_drop_replication_slot($1)",
						   1, params, err);
		if (res != NULL)
		{
			PQclear(res);
			return true;
		}
		if (strcmp(err->sqlstate, "55006") != 0)	/* object_in_use: retry */
			return sync_error_context(err, "could not drop replication slot \"%s\"", slot);
	}
	return sync_error_set(err, SYNC_ERR_PRECONDITION,
						  "replication slot \"%s\" stays in use by another process; "
						  "stop that consumer or terminate its walsender, then retry", slot);
}

bool
snapshot_publication_exists(PGconn *source, const char *name, bool *exists,
							SyncError *err)
{
	const char *params[1] = {name};
	PGresult   *res = pgconn_query(source,
								   "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1",
								   1, params, err);

	if (res == NULL)
		return sync_error_context(err, "could not look up publication \"%s\"", name);
	*exists = PQntuples(res) == 1;
	PQclear(res);
	return true;
}

bool
snapshot_drop_publication(PGconn *source, const char *name, SyncError *err)
{
	char	   *q = pgconn_quote_ident(source, name);
	char		sql[512];
	bool		ok;

	if (q == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	snprintf(sql, sizeof(sql), "DROP PUBLICATION IF EXISTS %s", q);
	free(q);
	ok = pgconn_exec(source, sql, err);
	return ok || sync_error_context(err, "could not drop publication \"%s\"", name);
}

/* A text[] literal {"a","b"} of strings, each quoted for the array syntax. */
static char *
array_literal(const char *const *items, int n)
{
	size_t		len = 3;
	char	   *out,
			   *o;

	for (int i = 0; i < n; i++)
		len += strlen(items[i]) * 2 + 3;
	out = o = malloc(len);
	if (out == NULL)
		return NULL;
	*o++ = '{';
	for (int i = 0; i < n; i++)
	{
		if (i)
			*o++ = ',';
		*o++ = '"';
		for (const char *c = items[i]; *c; c++)
		{
			if (*c == '"' || *c == '\\')
				*o++ = '\\';
			*o++ = *c;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

/* Run "CREATE PUBLICATION name<rest>". */
static bool
create_publication(PGconn *source, const char *name, const char *rest, SyncError *err)
{
	char	   *q = pgconn_quote_ident(source, name);
	size_t		len = strlen(rest) + (q ? strlen(q) : 0) + 32;
	char	   *sql = malloc(len);
	bool		ok;

	if (q == NULL || sql == NULL)
	{
		free(q);
		free(sql);
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	snprintf(sql, len, "CREATE PUBLICATION %s%s", q, rest);
	ok = pgconn_exec(source, sql, err);
	free(sql);
	free(q);
	return ok || sync_error_context(err, "could not create publication \"%s\" on source", name);
}

bool
snapshot_create_insert_only_publication(PGconn *source, const char *name,
										const NoKeyTables *tables, SyncError *err)
{
	size_t		len = 64;
	char	   *rest;
	bool		ok;
	int			n = tables->count;

	for (int i = 0; i < n; i++)
		len += strlen(tables->items[i].qualified) + 2;
	rest = malloc(len);
	if (rest == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	snprintf(rest, len, " FOR TABLE ");
	for (int i = 0; i < n; i++)
	{
		strncat(rest, tables->items[i].qualified, len - strlen(rest) - 1);
		strncat(rest, i + 1 < n ? ", " : "", len - strlen(rest) - 1);
	}
	strncat(rest, " WITH (publish = 'insert, truncate')", len - strlen(rest) - 1);
	ok = create_publication(source, name, rest, err);
	free(rest);
	return ok;
}

bool
snapshot_create_publication(PGconn *source, const char *name,
							const NoKeyTables *exclude, SyncError *err)
{
	char	   *q = pgconn_quote_ident(source, name);
	int			nex = exclude ? exclude->count : 0;
	const char **names = calloc((size_t) nex * 2 + 1, sizeof(char *));
	char	   *nsps,
			   *rels;
	const char *params[2];

	for (int i = 0; names && i < nex; i++)
	{
		names[i] = exclude->items[i].nspname;
		names[nex + i] = exclude->items[i].relname;
	}
	nsps = names ? array_literal(names, nex) : NULL;
	rels = names ? array_literal(names + nex, nex) : NULL;
	params[0] = nsps;
	params[1] = rels;
	free(names);
	PGresult   *res;
	char	   *sql;
	size_t		len;
	bool		ok;

	if (q == NULL || nsps == NULL || rels == NULL)
	{
		free(q);
		free(nsps);
		free(rels);
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	res = pgconn_query(source,
					   "SELECT coalesce(' FOR TABLE ' || string_agg(format('%I.%I', n.nspname,"
					   " c.relname), ', ' ORDER BY n.nspname, c.relname), '')"
					   " FROM pg_catalog.pg_class c"
					   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   " WHERE c.relpersistence = 'p' AND c.relkind = 'r'"
					   " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
					   " AND n.nspname !~ '^pg_(toast|temp)'"
					   " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
					   "   WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid"
					   "   AND d.deptype = 'e')"
					   " AND (n.nspname, c.relname) NOT IN"
					   "   (SELECT * FROM unnest($1::text[], $2::text[]))",
					   2, params, err);
	free(nsps);
	free(rels);
	if (res == NULL)
	{
		free(q);
		return sync_error_context(err, "could not list tables to publish");
	}
	len = strlen(PQgetvalue(res, 0, 0)) + strlen(q) + 128;
	sql = malloc(len);
	if (sql != NULL)
		snprintf(sql, len, "CREATE PUBLICATION %s%s", q, PQgetvalue(res, 0, 0));
	PQclear(res);
	free(q);
	if (sql == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	ok = pgconn_exec(source, sql, err);
	free(sql);
	return ok || sync_error_context(err, "could not create publication \"%s\" on source", name);
}
