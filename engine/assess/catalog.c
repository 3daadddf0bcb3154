/*
 * engine/assess/catalog.c -- the checks that read the catalogs object by
 * object: privileges on tables, what CREATE PUBLICATION needs, replica
 * identity, names, objects logical replication does not carry, extensions,
 * collations and the target's schemas (see assess.h for the list).
 *
 * Names in fixes are quoted by the server (format('%I'), quote_ident), so a
 * fix can be pasted into psql as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/pgconn.h"
#include "apply/statesql.h"
#include "engine/assess/internal.h"
#include "engine/roles.h"
#include "engine/schema/schema.h"

/*
 * Schemas pgstream migrates: not the system's, not its own state schema.
 * Queries that use it go through state_sql() (assess_query does).
 */
#define USER_NS(n) \
	" " n ".nspname NOT IN ('pg_catalog', 'information_schema', {state_literal})" \
	" AND " n ".nspname !~ '^pg_(toast|temp)'"

/* Relations that belong to an extension are created by CREATE EXTENSION. */
#define NOT_IN_EXTENSION(c) \
	" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d" \
	" WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass" \
	" AND d.objid = " c ".oid AND d.deptype = 'e')"

#define USER_REL USER_NS("n") NOT_IN_EXTENSION("c")

static bool
is_true(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

/* ------------------------------------------------------------------------
 * Privileges on the source
 * ------------------------------------------------------------------------ */

static void
check_select(AssessContext *cx)
{
	char		fix[512];
	PGresult   *res = assess_query(cx, cx->src, "select_privilege",
								   "SELECT format('%I.%I', n.nspname, c.relname),"
								   " CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE '' END,"
								   " pg_catalog.has_schema_privilege(n.oid, 'USAGE'),"
								   " quote_ident(n.nspname)"
								   " FROM pg_catalog.pg_class c"
								   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
								   " WHERE c.relkind IN ('r', 'p', 'S') AND" USER_REL
								   " AND (NOT pg_catalog.has_schema_privilege(n.oid, 'USAGE')"
								   "  OR NOT pg_catalog.has_table_privilege(c.oid, 'SELECT'))"
								   " ORDER BY 1", 0, NULL);

	for (int r = 0; res != NULL && r < PQntuples(res); r++)
	{
		const char *schema = PQgetvalue(res, r, 3);

		snprintf(fix, sizeof(fix), "GRANT USAGE ON SCHEMA %s TO %s; GRANT SELECT ON "
				 "ALL TABLES IN SCHEMA %s TO %s; GRANT SELECT ON ALL SEQUENCES IN "
				 "SCHEMA %s TO %s;", schema, cx->src_login, schema, cx->src_login,
				 schema, cx->src_login);
		if (assess_capped(cx, r, PQntuples(res), FINDING_BLOCKING, "select_privilege", fix))
			break;
		if (is_true(res, r, 2))
			snprintf(fix, sizeof(fix), "GRANT SELECT ON %s%s TO %s;",
					 PQgetvalue(res, r, 1), PQgetvalue(res, r, 0), cx->src_login);
		findings_add(cx->out, FINDING_BLOCKING, "select_privilege", PQgetvalue(res, r, 0),
					 fix, "the source login cannot read %s%s: pg_dump and the copy "
					 "need SELECT on every table and sequence",
					 PQgetvalue(res, r, 1)[0] ? "sequence " : "table ",
					 PQgetvalue(res, r, 0));
	}
	PQclear(res);
}

static void
check_row_security(AssessContext *cx)
{
	char		fix[512];
	PGresult   *res = assess_query(cx, cx->src, "row_security",
								   "SELECT format('%I.%I', n.nspname, c.relname),"
								   " c.relforcerowsecurity"
								   " FROM pg_catalog.pg_class c"
								   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
								   " WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND" USER_REL
								   " AND NOT (SELECT rolbypassrls FROM pg_catalog.pg_roles"
								   "   WHERE rolname = current_user)"
								   " AND (c.relforcerowsecurity"
								   "   OR NOT pg_catalog.pg_has_role(c.relowner, 'USAGE'))"
								   " ORDER BY 1", 0, NULL);

	for (int r = 0; res != NULL && r < PQntuples(res); r++)
	{
		snprintf(fix, sizeof(fix), "ALTER ROLE %s BYPASSRLS; (as a superuser; on Azure "
				 "PostgreSQL 16 and later the server admin can), or migrate as the "
				 "table's owner%s", cx->src_login,
				 is_true(res, r, 1) ? " after ALTER TABLE ... NO FORCE ROW LEVEL SECURITY" : "");
		if (assess_capped(cx, r, PQntuples(res), FINDING_BLOCKING, "row_security", fix))
			break;
		findings_add(cx->out, FINDING_BLOCKING, "row_security", PQgetvalue(res, r, 0), fix,
					 "row-level security applies to the source login on %s: rows its "
					 "policies hide would silently not be copied", PQgetvalue(res, r, 0));
	}
	PQclear(res);
}

void
assess_check_privileges(AssessContext *cx)
{
	if (cx->src_super)
		return;
	check_select(cx);
	check_row_security(cx);
}

/*
 * CREATE PUBLICATION ... FOR TABLE needs CREATE on the database and
 * ownership of every table listed (membership in the owning role counts).
 * pgstream lists the tables, so FOR ALL TABLES' superuser is not needed.
 */
void
assess_check_publication(AssessContext *cx)
{
	char		fix[512];
	PGresult   *res;

	if (!cx->live || cx->src_super)
		return;
	res = assess_query(cx, cx->src, "publication_privilege",
					   "SELECT pg_catalog.has_database_privilege(current_database(), 'CREATE')",
					   0, NULL);
	if (res != NULL && !is_true(res, 0, 0))
	{
		snprintf(fix, sizeof(fix), "GRANT CREATE ON DATABASE %s TO %s;", cx->src_db,
				 cx->src_login);
		findings_add(cx->out, FINDING_BLOCKING, "publication_privilege", "source", fix,
					 "the source login lacks CREATE on the database, which CREATE "
					 "PUBLICATION needs");
	}
	PQclear(res);
	res = assess_query(cx, cx->src, "publication_privilege",
					   "SELECT quote_ident(pg_catalog.pg_get_userbyid(c.relowner)), count(*),"
					   " left(string_agg(format('%I.%I', n.nspname, c.relname), ', '"
					   "   ORDER BY n.nspname, c.relname), 200)"
					   " FROM pg_catalog.pg_class c"
					   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   " WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p'"
					   " AND NOT c.relispartition AND" USER_REL
					   " AND NOT pg_catalog.pg_has_role(c.relowner, 'USAGE')"
					   " GROUP BY c.relowner ORDER BY 1", 0, NULL);
	for (int r = 0; res != NULL && r < PQntuples(res); r++)
	{
		snprintf(fix, sizeof(fix), "GRANT %s TO %s; (membership in the owning role "
				 "is enough; on Azure run it as the server admin)",
				 PQgetvalue(res, r, 0), cx->src_login);
		findings_add(cx->out, FINDING_BLOCKING, "publication_privilege",
					 PQgetvalue(res, r, 0), fix,
					 "the source login does not own %s table(s) owned by role %s "
					 "(%s): CREATE PUBLICATION needs ownership of every table it lists",
					 PQgetvalue(res, r, 1), PQgetvalue(res, r, 0), PQgetvalue(res, r, 2));
	}
	PQclear(res);
}

/* ------------------------------------------------------------------------
 * Replica identity
 * ------------------------------------------------------------------------ */

/*
 * Every table sync publishes, with what its UPDATE/DELETE would carry:
 * 0 nspname, 1 relname, 2 quoted name, 3 relreplident, 4 has a primary key,
 * 5 has a replica identity index, 6 quoted name of a unique index usable
 * for REPLICA IDENTITY USING INDEX (unique, immediate, valid, not partial,
 * no expressions, all columns NOT NULL), or "".
 */
static const char identity_sql[] =
	"SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname),"
	" c.relreplident::text,"
	" EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
	"   WHERE i.indrelid = c.oid AND i.indisprimary),"
	" EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
	"   WHERE i.indrelid = c.oid AND i.indisreplident),"
	" coalesce((SELECT quote_ident(ci.relname) FROM pg_catalog.pg_index i"
	"   JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid"
	"   WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate"
	"   AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL"
	"   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a"
	"     WHERE a.attrelid = c.oid AND a.attnum = ANY (i.indkey) AND NOT a.attnotnull)"
	"   ORDER BY i.indnatts, ci.relname LIMIT 1), '')"
	" FROM pg_catalog.pg_class c"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND" USER_REL
	" ORDER BY n.nspname, c.relname";

typedef enum Identity
{
	IDENTITY_KEY,				/* primary key (replica identity DEFAULT) */
	IDENTITY_INDEX,				/* REPLICA IDENTITY USING INDEX */
	IDENTITY_FULL,
	IDENTITY_NONE				/* UPDATE/DELETE fail once published */
} Identity;

static Identity
row_identity(const PGresult *res, int r)
{
	switch (PQgetvalue(res, r, 3)[0])
	{
		case 'f':
			return IDENTITY_FULL;
		case 'i':
			return is_true(res, r, 5) ? IDENTITY_INDEX : IDENTITY_NONE;
		case 'd':
			return is_true(res, r, 4) ? IDENTITY_KEY : IDENTITY_NONE;
		default:
			return IDENTITY_NONE;
	}
}

bool
assess_list_no_key_tables(PGconn *source, NoKeyTables *out, SyncError *err)
{
	PGresult   *res = pgconn_query(source, state_sql(identity_sql), 0, NULL, err);
	int			n = 0;

	memset(out, 0, sizeof(*out));
	if (res == NULL)
		return sync_error_context(err, "could not list tables without a replica identity");
	out->items = calloc((size_t) PQntuples(res) + 1, sizeof(NoKeyTable));
	if (out->items == NULL)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	for (int r = 0; r < PQntuples(res); r++)
	{
		NoKeyTable *t = &out->items[n];

		if (row_identity(res, r) != IDENTITY_NONE)
			continue;
		snprintf(t->nspname, sizeof(t->nspname), "%s", PQgetvalue(res, r, 0));
		snprintf(t->relname, sizeof(t->relname), "%s", PQgetvalue(res, r, 1));
		snprintf(t->qualified, sizeof(t->qualified), "%s", PQgetvalue(res, r, 2));
		snprintf(t->candidate_index, sizeof(t->candidate_index), "%s",
				 PQgetvalue(res, r, 6));
		n++;
	}
	out->count = n;
	PQclear(res);
	return true;
}

void
no_key_tables_term(NoKeyTables *t)
{
	free(t->items);
	memset(t, 0, sizeof(*t));
}

static void
report_no_identity(AssessContext *cx, const PGresult *res, int r)
{
	const char *table = PQgetvalue(res, r, 2);
	const char *index = PQgetvalue(res, r, 6);
	bool		nothing = PQgetvalue(res, r, 3)[0] == 'n';
	char		fix[512];

	if (index[0])
		snprintf(fix, sizeof(fix), "ALTER TABLE %s REPLICA IDENTITY USING INDEX %s;",
				 table, index);
	else
		snprintf(fix, sizeof(fix), "ALTER TABLE %s REPLICA IDENTITY FULL; (or add a "
				 "primary key)", table);
	switch (cx->no_key_tables)
	{
		case NO_KEY_BLOCK:
			snprintf(fix + strlen(fix), sizeof(fix) - strlen(fix),
					 " -- or let sync handle such tables: --no-key-tables=full "
					 "or --no-key-tables=insert-only");
			findings_add(cx->out, FINDING_BLOCKING, "replica_identity", table, fix,
						 "%s has %s: once it is in the publication, UPDATE and DELETE "
						 "on it fail on the source", table,
						 nothing ? "REPLICA IDENTITY NOTHING" :
						 "no primary key and no replica identity");
			break;
		case NO_KEY_FULL:
			findings_add(cx->out, FINDING_WARNING, "replica_identity", table,
						 index[0] ? fix : "",
						 "%s has no replica identity: sync --no-key-tables=full will "
						 "run ALTER TABLE %s REPLICA IDENTITY FULL on the source (a "
						 "brief exclusive lock; every UPDATE and DELETE then logs the "
						 "whole old row)", table, table);
			break;
		case NO_KEY_INSERT_ONLY:
			findings_add(cx->out, FINDING_WARNING, "replica_identity", table, fix,
						 "%s has no replica identity: with --no-key-tables=insert-only "
						 "it is published for INSERT and TRUNCATE only, UPDATE and "
						 "DELETE on the source are not carried, and cutover compares "
						 "the table in full and fails if it differs", table);
			break;
	}
}

static void
report_identity(AssessContext *cx, const PGresult *res, int r)
{
	const char *table = PQgetvalue(res, r, 2);
	const char *index = PQgetvalue(res, r, 6);
	char		fix[512];

	switch (row_identity(res, r))
	{
		case IDENTITY_KEY:
			break;
		case IDENTITY_NONE:
			report_no_identity(cx, res, r);
			break;
		case IDENTITY_FULL:
			if (is_true(res, r, 4))
				break;
			if (index[0])
				snprintf(fix, sizeof(fix), "ALTER TABLE %s REPLICA IDENTITY USING "
						 "INDEX %s;", table, index);
			else
				snprintf(fix, sizeof(fix), "add a primary key: ALTER TABLE %s ADD "
						 "PRIMARY KEY (<columns>);", table);
			findings_add(cx->out, FINDING_WARNING, "replica_identity", table, fix,
						 "%s has no primary key and REPLICA IDENTITY FULL: every "
						 "UPDATE and DELETE carries the whole old row and is matched "
						 "on the target by comparing all columns (slow on big tables)",
						 table);
			break;
		case IDENTITY_INDEX:
			if (is_true(res, r, 4))
				break;
			findings_add(cx->out, FINDING_WARNING, "replica_identity", table,
						 "none needed; a primary key is cheaper still: ALTER TABLE ... "
						 "ADD PRIMARY KEY USING INDEX <index>;",
						 "%s has no primary key; changes are matched on the target "
						 "through its replica identity index", table);
			break;
	}
}

void
assess_check_identity(AssessContext *cx)
{
	PGresult   *res;

	if (!cx->live)
		return;
	res = assess_query(cx, cx->src, "replica_identity", identity_sql, 0, NULL);
	for (int r = 0; res != NULL && r < PQntuples(res); r++)
		report_identity(cx, res, r);
	PQclear(res);
}

/* ------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------ */

static void
check_db_name(AssessContext *cx, PGconn *conn, const char *what)
{
	PGresult   *res = assess_query(cx, conn, "names",
								   "SELECT current_database() LIKE '%;%'", 0, NULL);

	if (res != NULL && is_true(res, 0, 0))
		findings_add(cx->out, FINDING_WARNING, "names", what,
					 "give the target database a name without ';' (source and target "
					 "names need not match)",
					 "the %s database name contains ';': pgstream quotes it, but "
					 "connection strings in scripts and other tools (Azure's "
					 "migration service among them) mishandle it", what);
	PQclear(res);
}

void
assess_check_names(AssessContext *cx)
{
	PGresult   *res;

	check_db_name(cx, cx->src, "source");
	check_db_name(cx, cx->tgt, "target");
	res = assess_query(cx, cx->src, "names",
					   "SELECT left(string_agg(format('%I.%I', n.nspname, c.relname), ', '"
					   "  ORDER BY c.relname), 240)"
					   " FROM pg_catalog.pg_class c"
					   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND" USER_REL
					   " GROUP BY lower(n.nspname), lower(c.relname)"
					   " HAVING count(*) > 1 ORDER BY 1", 0, NULL);
	for (int r = 0; res != NULL && r < PQntuples(res); r++)
		findings_add(cx->out, FINDING_WARNING, "names", PQgetvalue(res, r, 0),
					 "rename all but one: ALTER TABLE ... RENAME TO ...;",
					 "names differ only by case (%s): pgstream quotes every name and "
					 "migrates them as distinct tables, but tools and queries that do "
					 "not quote names reach only the lower-case one",
					 PQgetvalue(res, r, 0));
	PQclear(res);
	res = assess_query(cx, cx->src, "names",
					   "WITH q(name) AS ("
					   " SELECT format('%I', n.nspname) FROM pg_catalog.pg_namespace n"
					   " WHERE" USER_NS("n") " AND quote_ident(n.nspname) <> n.nspname"
					   " UNION ALL"
					   " SELECT format('%I.%I', n.nspname, c.relname)"
					   " FROM pg_catalog.pg_class c"
					   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND" USER_REL
					   " AND quote_ident(c.relname) <> c.relname"
					   " UNION ALL"
					   " SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname)"
					   " FROM pg_catalog.pg_attribute a"
					   " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
					   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   " WHERE c.relkind IN ('r', 'p') AND a.attnum > 0"
					   " AND NOT a.attisdropped AND" USER_REL
					   " AND quote_ident(a.attname) <> a.attname)"
					   " SELECT count(*), (SELECT string_agg(name, ', ')"
					   "  FROM (SELECT name FROM q ORDER BY name LIMIT 3) s) FROM q",
					   0, NULL);
	if (res != NULL && strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		findings_add(cx->out, FINDING_INFO, "names", "", "",
					 "%s schema, table or column name(s) need quoting (e.g. %s): "
					 "handled, pgstream quotes every identifier",
					 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	PQclear(res);
}

/* ------------------------------------------------------------------------
 * Objects logical replication does not carry
 * ------------------------------------------------------------------------ */

static void
check_unlogged(AssessContext *cx)
{
	char		fix[512];
	PGresult   *res;

	if (!cx->live)
		return;
	res = assess_query(cx, cx->src, "unlogged_tables",
					   "SELECT format('%I.%I', n.nspname, c.relname)"
					   " FROM pg_catalog.pg_class c"
					   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   " WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'u' AND" USER_REL
					   " ORDER BY 1", 0, NULL);
	for (int r = 0; res != NULL && r < PQntuples(res); r++)
	{
		if (assess_capped(cx, r, PQntuples(res), FINDING_WARNING, "unlogged_tables", ""))
			break;
		snprintf(fix, sizeof(fix), "ALTER TABLE %s SET LOGGED; (rewrites the table "
				 "under an exclusive lock), or accept a copy as of the snapshot",
				 PQgetvalue(res, r, 0));
		findings_add(cx->out, FINDING_WARNING, "unlogged_tables", PQgetvalue(res, r, 0),
					 fix, "%s is unlogged: it is copied once, at the snapshot; later "
					 "changes to it are not in the WAL and are not streamed",
					 PQgetvalue(res, r, 0));
	}
	PQclear(res);
}

/*
 * Objects only a superuser can create on the target, and what depends on
 * them (SCHEMA_SUPERUSER_ONLY_SQL): sync leaves them out and names them; say
 * so before the migration, one finding each, with the fix.
 */
static void
check_superuser_only(AssessContext *cx)
{
	char		fix[1024];
	/* tables and views first: the capped list must show what loses data */
	PGresult   *res = assess_query(cx, cx->src, "superuser_only",
								   "SELECT * FROM (" SCHEMA_SUPERUSER_ONLY_SQL ") s"
								   " ORDER BY s.classid <> 'pg_catalog.pg_class'::"
								   "pg_catalog.regclass, s.type, s.identity", 0, NULL);

	for (int r = 0; res != NULL && r < PQntuples(res); r++)
	{
		if (assess_capped(cx, r, PQntuples(res), FINDING_WARNING, "superuser_only",
						  "create them on the target as a superuser after the migration"))
			break;
		snprintf(fix, sizeof(fix), "if the application needs it: create %s %s on "
				 "the target as a superuser after the migration (its definition: "
				 "pg_dump --schema-only of the source)", PQgetvalue(res, r, 2),
				 PQgetvalue(res, r, 3));
		findings_add(cx->out, FINDING_WARNING, "superuser_only", PQgetvalue(res, r, 3),
					 fix, "not migrated: %s %s: only a superuser can create it on the "
					 "target (%s)", PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
					 PQgetvalue(res, r, 4));
	}
	PQclear(res);
}

void
assess_check_objects(AssessContext *cx)
{
	const char *when = cx->live ? "at cutover" : "at the end of sync";
	PGresult   *res;

	check_unlogged(cx);
	check_superuser_only(cx);
	res = assess_query(cx, cx->src, "objects",
					   "SELECT (SELECT count(*) FROM pg_catalog.pg_largeobject_metadata),"
					   " (SELECT count(*) FROM pg_catalog.pg_class c"
					   "   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   "   WHERE c.relkind = 'm' AND" USER_REL "),"
					   " (SELECT count(*) FROM pg_catalog.pg_class c"
					   "   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   "   WHERE c.relkind = 'S' AND" USER_REL "),"
					   " (SELECT count(*) FROM pg_catalog.pg_class c"
					   "   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   "   WHERE c.relkind = 'f' AND" USER_REL ")", 0, NULL);
	if (res == NULL)
		return;
	if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		findings_add(cx->out, FINDING_WARNING, "large_objects", "source",
					 "copy them yourself after sync (live: while the source is frozen "
					 "for cutover): pg_dump -Fc -b --exclude-table-data='*' -f lo.dump "
					 "SOURCE; pg_restore -l lo.dump | grep -E 'BLOB|LARGE OBJECT' > "
					 "lo.list; pg_restore --no-owner -L lo.list -d TARGET lo.dump",
					 "the source holds %s large object(s): pgstream does not copy "
					 "them (logical replication does not carry them and the schema "
					 "dump leaves them out)", PQgetvalue(res, 0, 0));
	if (strcmp(PQgetvalue(res, 0, 1), "0") != 0)
		findings_add(cx->out, FINDING_INFO, "materialized_views", "source", "",
					 "%s materialized view(s): logical replication does not carry "
					 "them; pgstream creates them and refreshes them on the target %s",
					 PQgetvalue(res, 0, 1), when);
	if (strcmp(PQgetvalue(res, 0, 2), "0") != 0)
		findings_add(cx->out, FINDING_INFO, "sequences", "source", "",
					 "%s sequence(s): logical replication does not carry their values; "
					 "pgstream sets them on the target from the source %s",
					 PQgetvalue(res, 0, 2), when);
	if (strcmp(PQgetvalue(res, 0, 3), "0") != 0)
		findings_add(cx->out, FINDING_INFO, "foreign_tables", "source",
					 "check that the target server can reach the foreign servers",
					 "%s foreign table(s): their definitions are migrated, their data "
					 "stays where it is", PQgetvalue(res, 0, 3));
	PQclear(res);
}

/* ------------------------------------------------------------------------
 * Extensions
 * ------------------------------------------------------------------------ */

/* Is name in a comma-separated allow-list (case-insensitive, blanks ignored)? */
static bool
in_list(const char *list, const char *name)
{
	size_t		len = strlen(name);
	const char *p = list;

	while (*p)
	{
		const char *end;
		size_t		n;

		while (*p == ' ' || *p == ',')
			p++;
		end = p;
		while (*end && *end != ',')
			end++;
		n = (size_t) (end - p);
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == len && strncasecmp(p, name, len) == 0)
			return true;
		p = end;
	}
	return false;
}

static void
check_one_extension(AssessContext *cx, const char *name, const char *version,
					const char *allow_list)
{
	const char *params[1] = {name};
	char		fix[512];
	PGresult   *res = assess_query(cx, cx->tgt, "extensions",
								   cx->tgt_version >= 130000 ?
								   "SELECT a.name IS NOT NULL, e.extname IS NOT NULL,"
								   " coalesce(a.default_version, ''),"
								   " coalesce((SELECT bool_and(v.superuser AND NOT v.trusted)"
								   "  FROM pg_catalog.pg_available_extension_versions v"
								   "  WHERE v.name = $1), false)"
								   " FROM (SELECT $1::name AS n) x"
								   " LEFT JOIN pg_catalog.pg_available_extensions a ON a.name = x.n"
								   " LEFT JOIN pg_catalog.pg_extension e ON e.extname = x.n" :
								   "SELECT a.name IS NOT NULL, e.extname IS NOT NULL,"
								   " coalesce(a.default_version, ''),"
								   " coalesce((SELECT bool_and(v.superuser)"
								   "  FROM pg_catalog.pg_available_extension_versions v"
								   "  WHERE v.name = $1), false)"
								   " FROM (SELECT $1::name AS n) x"
								   " LEFT JOIN pg_catalog.pg_available_extensions a ON a.name = x.n"
								   " LEFT JOIN pg_catalog.pg_extension e ON e.extname = x.n",
								   1, params);

	if (res == NULL)
		return;
	if (!is_true(res, 0, 0))
		findings_add(cx->out, FINDING_BLOCKING, "extensions", name,
					 "install the extension on the target server (on Azure, only "
					 "extensions Azure supports can be), or DROP EXTENSION it on the "
					 "source if nothing uses it",
					 "extension \"%s\" (version %s) is used on the source but is not "
					 "available on the target", name, version);
	else if (allow_list != NULL && !is_true(res, 0, 1) && !in_list(allow_list, name))
	{
		snprintf(fix, sizeof(fix), "add %s to the server parameter azure.extensions "
				 "(portal: Server parameters; or az postgres flexible-server parameter "
				 "set --name azure.extensions --value <current list>,%s)", name, name);
		findings_add(cx->out, FINDING_BLOCKING, "extensions", name, fix,
					 "extension \"%s\" is not in the target's azure.extensions "
					 "allow-list, so it cannot be created", name);
	}
	else if (allow_list == NULL && !cx->tgt_super && !is_true(res, 0, 1) &&
			 is_true(res, 0, 3))
	{
		snprintf(fix, sizeof(fix), "as a superuser on the target database: CREATE "
				 "EXTENSION %s;", name);
		findings_add(cx->out, FINDING_BLOCKING, "extensions", name, fix,
					 "extension \"%s\" needs a superuser to create it and the target "
					 "login is not one", name);
	}
	else if (!is_true(res, 0, 1) && strcmp(PQgetvalue(res, 0, 2), version) != 0)
		findings_add(cx->out, FINDING_WARNING, "extensions", name,
					 "install the source's version on the target, or check that "
					 "nothing depends on the difference",
					 "extension \"%s\" is version %s on the source but the target "
					 "would create version %s", name, version, PQgetvalue(res, 0, 2));
	PQclear(res);
}

void
assess_check_extensions(AssessContext *cx)
{
	PGresult   *src,
			   *allow;
	const char *list = NULL;

	src = assess_query(cx, cx->src, "extensions",
					   "SELECT extname, extversion FROM pg_catalog.pg_extension"
					   " WHERE extname <> 'plpgsql' ORDER BY 1", 0, NULL);
	if (src == NULL)
		return;
	allow = assess_query(cx, cx->tgt, "extensions",
						 "SELECT current_setting('azure.extensions', true)", 0, NULL);
	if (allow != NULL && !PQgetisnull(allow, 0, 0))
		list = PQgetvalue(allow, 0, 0);
	for (int r = 0; r < PQntuples(src); r++)
		check_one_extension(cx, PQgetvalue(src, r, 0), PQgetvalue(src, r, 1), list);
	PQclear(allow);
	PQclear(src);
}

/* ------------------------------------------------------------------------
 * Collations and encoding
 * ------------------------------------------------------------------------ */

/*
 * Collations the schema needs: used by columns or indexes of migrated
 * relations, or defined in a migrated schema (pg_dump recreates those).
 * 0 schema, 1 name, 2 provider, 3 locale, 4 quoted qualified name.  An ICU
 * collation's locale is in colliculocale (15, 16) or colllocale (17 on);
 * its collcollate is empty there.
 */
static const char source_collations_sql[] =
	"WITH used AS ("
	" SELECT a.attcollation AS oid FROM pg_catalog.pg_attribute a"
	" JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attcollation <> 0 AND" USER_NS("n")
	" UNION"
	" SELECT unnest(i.indcollation::oid[]) FROM pg_catalog.pg_index i"
	" JOIN pg_catalog.pg_class c ON c.oid = i.indrelid"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" WHERE" USER_NS("n")
	" UNION"
	" SELECT co.oid FROM pg_catalog.pg_collation co"
	" JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace"
	" WHERE" USER_NS("n") ")"
	" SELECT n.nspname, co.collname, co.collprovider::text,"
	" coalesce(%s, ''), format('%%I.%%I', n.nspname, co.collname)"
	" FROM pg_catalog.pg_collation co"
	" JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace"
	" WHERE co.oid IN (SELECT oid FROM used) AND co.collname <> 'default'"
	" ORDER BY 1, 2";

/*
 * On the target: 0 the same collation exists, 1 ICU is available, 2 a libc
 * locale of that name exists (spelling of "UTF-8" normalised).
 */
static const char target_collation_sql[] =
	"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_collation co"
	"   JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace"
	"   WHERE n.nspname = $1 AND co.collname = $2 AND co.collencoding IN (-1,"
	"   (SELECT encoding FROM pg_catalog.pg_database WHERE datname = current_database()))),"
	" EXISTS (SELECT 1 FROM pg_catalog.pg_collation WHERE collprovider = 'i'),"
	" $3 IN ('C', 'POSIX') OR EXISTS (SELECT 1 FROM pg_catalog.pg_collation"
	"   WHERE lower(replace(collcollate, '-', '')) = lower(replace($3, '-', '')))";

static void
check_one_collation(AssessContext *cx, const PGresult *src, int r)
{
	const char *params[3] = {PQgetvalue(src, r, 0), PQgetvalue(src, r, 1),
	PQgetvalue(src, r, 3)};
	bool		builtin = strcmp(params[0], "pg_catalog") == 0;
	char		provider = PQgetvalue(src, r, 2)[0];
	bool		ok;
	PGresult   *res = assess_query(cx, cx->tgt, "collations", target_collation_sql,
								   3, params);

	if (res == NULL)
		return;
	if (builtin)
		ok = is_true(res, 0, 0);
	else
		ok = is_true(res, 0, 0) || provider == 'd' ||
			(provider == 'i' && is_true(res, 0, 1)) ||
			(provider == 'c' && is_true(res, 0, 2));
	if (!ok)
		findings_add(cx->out, FINDING_BLOCKING, "collations", PQgetvalue(src, r, 4),
					 builtin && provider == 'i' ? "choose a target whose PostgreSQL is built "
					 "with ICU and knows that locale, or change the columns to a collation "
					 "the target has (on Azure, an ICU collation such as \"en-US-x-icu\")" :
					 builtin ? "install the operating-system locale on the target and, "
					 "as a superuser, SELECT pg_import_system_collations('pg_catalog'); "
					 "or change the columns to a collation the target has (on Azure, "
					 "an ICU collation such as \"en-US-x-icu\")" :
					 "choose a target with that locale (or with ICU for an ICU "
					 "collation), or redefine the collation on the source",
					 "collation %s (%s, locale \"%s\") is used on the source but the "
					 "target %s", PQgetvalue(src, r, 4),
					 provider == 'i' ? "ICU" : provider == 'c' ? "libc" : "default",
					 params[2], builtin ? "does not have it" :
					 "cannot create it");
	PQclear(res);
}

/*
 * A SQL_ASCII database stores any bytes.  pgstream's sessions use
 * client_encoding UTF8, and a SQL_ASCII server sends its bytes unchanged, so
 * every text value must already be valid UTF-8 or the target refuses the
 * copy.  Sampled: the first ENCODING_SAMPLE_ROWS rows of each table, every
 * collatable column (text, varchar, char, citext, domains over them),
 * checked by the source itself (convert_from verifies its input).
 */
#define ENCODING_SAMPLE_ROWS 10000

static const char text_columns_sql[] =
	"SELECT format('%I.%I', n.nspname, c.relname),"
	" string_agg(format('%I', a.attname), ',' ORDER BY a.attnum)"
	" FROM pg_catalog.pg_class c"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
	"  AND NOT a.attisdropped AND a.attcollation <> 0"
	" WHERE c.relkind = 'r' AND" USER_REL
	" GROUP BY 1 ORDER BY 1";

/* "length(convert_from(convert_to(c::text, 'SQL_ASCII'), 'UTF8')) < 0 OR ..." */
static char *
utf8_check_expr(const char *columns)
{
	static const char fmt[] =
		"length(pg_catalog.convert_from(pg_catalog.convert_to(%.*s::text,"
		" 'SQL_ASCII'), 'UTF8')) < 0";
	size_t		ncols = 1;
	size_t		cap;
	char	   *out;
	size_t		used = 0;

	for (const char *p = columns; *p; p++)
		ncols += *p == ',';
	cap = strlen(columns) + ncols * (sizeof(fmt) + 8) + 1;
	out = malloc(cap);
	for (const char *p = columns; out != NULL && *p;)
	{
		size_t		len = strcspn(p, ",");

		used += (size_t) snprintf(out + used, cap - used, "%s", used ? " OR " : "");
		used += (size_t) snprintf(out + used, cap - used, fmt, (int) len, p);
		p += len + (p[len] == ',');
	}
	return out;
}

static void
check_table_utf8(AssessContext *cx, const char *table, const char *columns)
{
	char	   *expr = utf8_check_expr(columns);
	char	   *sql;
	size_t		cap;
	PGresult   *res;

	if (expr == NULL)
		return;
	cap = strlen(expr) + strlen(columns) + strlen(table) + 128;
	sql = malloc(cap);
	if (sql == NULL)
	{
		free(expr);
		return;
	}
	snprintf(sql, cap, "SELECT count(*) FROM (SELECT %s FROM %s LIMIT %d) s WHERE %s",
			 columns, table, ENCODING_SAMPLE_ROWS, expr);
	res = PQexec(cx->src, sql);
	if (PQresultStatus(res) == PGRES_FATAL_ERROR)
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		if (state != NULL && strcmp(state, "22021") == 0)
			findings_add(cx->out, FINDING_BLOCKING, "encoding", table,
						 "convert the text to UTF-8 on the source once you know its real "
						 "encoding, e.g. for Latin-1: UPDATE <table> SET <col> = convert_from("
						 "convert(convert_to(<col>, 'SQL_ASCII'), 'LATIN1', 'UTF8'), "
						 "'SQL_ASCII'); or migrate into a SQL_ASCII target database",
						 "the source database is SQL_ASCII and %s holds bytes that are not "
						 "valid UTF-8 (in its first %d rows: %s): the copy would fail on them",
						 table, ENCODING_SAMPLE_ROWS, msg ? msg : "invalid byte sequence");
		else
			findings_add(cx->out, FINDING_WARNING, "encoding", table,
						 "check by hand that its text is valid UTF-8",
						 "this check could not run: %s", msg ? msg : "unknown error");
	}
	PQclear(res);
	free(sql);
	free(expr);
}

/* A SQL_ASCII source into a target that is not SQL_ASCII: sample the text. */
static void
check_sql_ascii_text(AssessContext *cx, const char *source_encoding,
					 const char *target_encoding)
{
	PGresult   *res;
	int			found = 0;

	if (strcmp(source_encoding, "SQL_ASCII") != 0 ||
		strcmp(target_encoding, "SQL_ASCII") == 0)
		return;
	res = assess_query(cx, cx->src, "encoding", text_columns_sql, 0, NULL);
	for (int r = 0; res != NULL && r < PQntuples(res); r++)
	{
		int			before = cx->out->count;

		check_table_utf8(cx, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
		found += cx->out->count > before;
		if (found >= ASSESS_MAX_PER_CHECK)
			break;
	}
	PQclear(res);
}

static void
check_database_locale(AssessContext *cx)
{
	static const char sql[] =
		"SELECT pg_catalog.pg_encoding_to_char(encoding), datcollate, datctype"
		" FROM pg_catalog.pg_database WHERE datname = current_database()";
	PGresult   *s = assess_query(cx, cx->src, "encoding", sql, 0, NULL);
	PGresult   *t = s ? assess_query(cx, cx->tgt, "encoding", sql, 0, NULL) : NULL;

	if (s != NULL && t != NULL)
	{
		const char *se = PQgetvalue(s, 0, 0),
				   *te = PQgetvalue(t, 0, 0);

		if (strcmp(se, te) != 0 && strcmp(te, "UTF8") != 0)
			findings_add(cx->out, FINDING_BLOCKING, "encoding", "target",
						 "create the target database with ENCODING 'UTF8' "
						 "TEMPLATE template0",
						 "the target database encoding is %s but the source's is %s: "
						 "characters %s cannot hold would make the copy fail", te, se, te);
		check_sql_ascii_text(cx, se, te);
		if (strcasecmp(PQgetvalue(s, 0, 1), PQgetvalue(t, 0, 1)) != 0)
			findings_add(cx->out, FINDING_WARNING, "collations", "target",
						 "create the target database with the source's LC_COLLATE, "
						 "or accept the different order",
						 "the default collation differs (source \"%s\", target \"%s\"): "
						 "text sorts and compares differently on the target",
						 PQgetvalue(s, 0, 1), PQgetvalue(t, 0, 1));
	}
	PQclear(s);
	PQclear(t);
}

void
assess_check_collations(AssessContext *cx)
{
	int			v = PQserverVersion(cx->src);
	char		sql[sizeof(source_collations_sql) + 64];
	PGresult   *res;

	snprintf(sql, sizeof(sql), source_collations_sql,
			 v >= 170000 ? "co.colllocale, co.collcollate" :
			 v >= 150000 ? "co.colliculocale, co.collcollate" : "co.collcollate");
	res = assess_query(cx, cx->src, "collations", sql, 0, NULL);

	for (int r = 0; res != NULL && r < PQntuples(res); r++)
		check_one_collation(cx, res, r);
	PQclear(res);
	check_database_locale(cx);
}

/* ------------------------------------------------------------------------
 * Target
 * ------------------------------------------------------------------------ */

/*
 * Objects the schema would create, by the name that must be free: relations
 * (tables, views, sequences, indexes, composite types) and types share one
 * name space per schema; a function's name includes its argument types.
 * Extension members are left out (CREATE EXTENSION makes them).  Columns:
 * 0 the name that must be free, 1 what the object is.
 */
static const char named_objects_sql[] =
	"SELECT format('%I.%I', n.nspname, c.relname) AS name,"
	" CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'"
	"  WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'"
	"  WHEN 'c' THEN 'type' WHEN 'f' THEN 'foreign table' ELSE 'table' END AS what"
	" FROM pg_catalog.pg_class c"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i', 'I', 'c', 'f') AND" USER_REL
	" UNION ALL"
	" SELECT format('%I.%I', n.nspname, t.typname), 'type'"
	" FROM pg_catalog.pg_type t"
	" JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
	" WHERE t.typrelid = 0 AND t.typtype IN ('b', 'd', 'e', 'r', 'm')"
	" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)"
	" AND" USER_NS("n") " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
	"   WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass"
	"   AND d.objid = t.oid AND d.deptype = 'e')"
	" UNION ALL"
	" SELECT format('%I.%I(%s)', n.nspname, p.proname,"
	"  pg_catalog.pg_get_function_identity_arguments(p.oid)),"
	" CASE WHEN p.prokind = 'a' THEN 'aggregate' WHEN p.prokind = 'p' THEN 'procedure'"
	"  ELSE 'function' END"
	" FROM pg_catalog.pg_proc p"
	" JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
	" WHERE" USER_NS("n") " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
	"   WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass"
	"   AND d.objid = p.oid AND d.deptype = 'e')";

/*
 * names as a text[] literal ({"a","b"}, with " and \\ escaped), malloc'd;
 * NULL if out of memory.
 */
static char *
text_array_literal(const PGresult *res, int column)
{
	size_t		size = 3;
	size_t		o = 0;
	char	   *buf;

	for (int r = 0; r < PQntuples(res); r++)
		size += 2 * strlen(PQgetvalue(res, r, column)) + 3;
	buf = malloc(size);
	if (buf == NULL)
		return NULL;
	buf[o++] = '{';
	for (int r = 0; r < PQntuples(res); r++)
	{
		if (r > 0)
			buf[o++] = ',';
		buf[o++] = '"';
		for (const char *c = PQgetvalue(res, r, column); *c; c++)
		{
			if (*c == '"' || *c == '\\')
				buf[o++] = '\\';
			buf[o++] = *c;
		}
		buf[o++] = '"';
	}
	buf[o++] = '}';
	buf[o] = '\0';
	return buf;
}

/* What the target's object called name is ("type", "function", ...). */
static const char *
object_kind(const PGresult *tgt, const char *name)
{
	for (int t = 0; t < PQntuples(tgt); t++)
		if (strcmp(PQgetvalue(tgt, t, 0), name) == 0)
			return PQgetvalue(tgt, t, 1);
	return "object";
}

/*
 * The target holds no table, but may hold other objects: any whose name the
 * source's schema would take (a type called like a source table, the same
 * function) makes the schema fail at its first step, after the slot and the
 * state exist.  The target's list is short (an empty database, or one with
 * a few helpers), so it is sent to the source as one text[] parameter.
 */
static void
check_target_clashes(AssessContext *cx)
{
	PGresult   *tgt = assess_query(cx, cx->tgt, "target_empty", named_objects_sql, 0, NULL);
	PGresult   *src = NULL;
	char	   *names = NULL;
	char	   *sql = malloc(sizeof(named_objects_sql) + 128);

	if (tgt != NULL && PQntuples(tgt) > 0 && sql != NULL &&
		(names = text_array_literal(tgt, 0)) != NULL)
	{
		const char *params[1] = {names};

		snprintf(sql, sizeof(named_objects_sql) + 128,
				 "SELECT * FROM (%s) o WHERE o.name = ANY ($1::text[]) ORDER BY 1",
				 named_objects_sql);
		src = assess_query(cx, cx->src, "target_empty", sql, 1, params);
	}
	for (int r = 0; src != NULL && r < PQntuples(src); r++)
	{
		const char *name = PQgetvalue(src, r, 0);
		char		fix[400];

		if (assess_capped(cx, r, PQntuples(src), FINDING_BLOCKING, "target_empty",
						  "drop those objects on the target, or migrate into an empty "
						  "database"))
			break;
		snprintf(fix, sizeof(fix), "drop %s %s on the target, or migrate into an empty "
				 "database", object_kind(tgt, name), name);
		findings_add(cx->out, FINDING_BLOCKING, "target_empty", name, fix,
					 "the target already has %s %s, which the source's %s of the same name "
					 "would create: the schema would fail at that step",
					 object_kind(tgt, name), name, PQgetvalue(src, r, 1));
	}
	PQclear(src);
	PQclear(tgt);
	free(names);
	free(sql);
}

static void
check_target_empty(AssessContext *cx)
{
	PGresult   *res;

	if (cx->opts->resuming)
		return;
	res = assess_query(cx, cx->tgt, "target_empty",
					   "SELECT count(*), min(format('%I.%I', n.nspname, c.relname))"
					   " FROM pg_catalog.pg_class c"
					   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   " WHERE c.relkind IN ('r', 'p') AND" USER_REL, 0, NULL);
	if (res != NULL && strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		findings_add(cx->out, FINDING_BLOCKING, "target_empty", "target",
					 "migrate into an empty database (CREATE DATABASE ... on the "
					 "target), or drop those tables",
					 "target database is not empty: it holds %s table(s), for "
					 "example %s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	PQclear(res);
	check_target_clashes(cx);
}

/* Schemas of the source that already exist on the target need CREATE there. */
static void
check_target_schemas(AssessContext *cx)
{
	char		fix[512];
	PGresult   *src = assess_query(cx, cx->src, "target_privileges",
								   "SELECT n.nspname FROM pg_catalog.pg_namespace n"
								   " WHERE" USER_NS("n") " ORDER BY 1", 0, NULL);

	for (int r = 0; src != NULL && r < PQntuples(src); r++)
	{
		const char *params[1] = {PQgetvalue(src, r, 0)};
		PGresult   *res = assess_query(cx, cx->tgt, "target_privileges",
									   "SELECT pg_catalog.has_schema_privilege(oid, 'CREATE'),"
									   " pg_catalog.pg_has_role(nspowner, 'USAGE'),"
									   " quote_ident(nspname),"
									   " quote_ident(pg_catalog.pg_get_userbyid(nspowner))"
									   " FROM pg_catalog.pg_namespace WHERE nspname = $1",
									   1, params);

		if (res != NULL && PQntuples(res) == 1 && !is_true(res, 0, 0))
		{
			snprintf(fix, sizeof(fix), "GRANT CREATE ON SCHEMA %s TO %s; (as its "
					 "owner %s), or ALTER SCHEMA %s OWNER TO %s;",
					 PQgetvalue(res, 0, 2), cx->tgt_login, PQgetvalue(res, 0, 3),
					 PQgetvalue(res, 0, 2), cx->tgt_login);
			findings_add(cx->out, FINDING_BLOCKING, "target_privileges",
						 PQgetvalue(res, 0, 2), fix,
						 "schema %s already exists on the target and the target login "
						 "cannot create objects in it", PQgetvalue(res, 0, 2));
		}
		else if (res != NULL && PQntuples(res) == 1 && !is_true(res, 0, 1) &&
				 !cx->tgt_super)
			findings_add(cx->out, FINDING_INFO, "target_privileges",
						 PQgetvalue(res, 0, 2), "",
						 "schema %s exists on the target, owned by %s; the target "
						 "login creates its objects in it and owns them",
						 PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
		PQclear(res);
	}
	PQclear(src);
}

void
assess_check_target(AssessContext *cx)
{
	char		fix[512];
	PGresult   *res;

	check_target_empty(cx);
	if (cx->tgt_super)
		return;
	res = assess_query(cx, cx->tgt, "target_privileges",
					   "SELECT pg_catalog.has_database_privilege(current_database(), 'CREATE')",
					   0, NULL);
	if (res != NULL && !is_true(res, 0, 0))
	{
		snprintf(fix, sizeof(fix), "GRANT CREATE ON DATABASE %s TO %s; (or create the "
				 "database with OWNER %s)", cx->tgt_db, cx->tgt_login, cx->tgt_login);
		findings_add(cx->out, FINDING_BLOCKING, "target_privileges", "target", fix,
					 "the target login cannot create schemas in the target database");
	}
	PQclear(res);
	check_target_schemas(cx);
}

/*
 * The roles the source database uses (engine/roles.h): which sync creates on
 * the target, which it cannot, and what does not move with them.
 */
void
assess_check_roles(AssessContext *cx)
{
	RoleSet		set;
	RolePlan	plan;
	SyncError	err;
	char		fix[512];

	sync_error_clear(&err);
	if (!roles_read_source(cx->src, &set, &err) || !roles_read_target(cx->tgt, &set, &err))
	{
		findings_add(cx->out, FINDING_WARNING, "roles", "source", "",
					 "could not read the roles the source database uses: %s", err.message);
		roles_set_term(&set);
		return;
	}
	roles_plan(&set, &plan);
	if (plan.ncreated > 0)
		findings_add(cx->out, FINDING_INFO, "roles", "target", "",
					 "sync creates %d role(s) the source database uses that are missing on "
					 "the target, with their memberships", plan.ncreated);
	for (int i = 0; i < plan.ncannot_create; i++)
	{
		if (assess_capped(cx, i, plan.ncannot_create, FINDING_WARNING, "roles",
						  "give the target login CREATEROLE, or create the roles first"))
			break;
		snprintf(fix, sizeof(fix), "ALTER ROLE %s CREATEROLE; (on Azure the admin login has "
				 "it) or create the role on the target first", cx->tgt_login);
		findings_add(cx->out, FINDING_WARNING, "roles", plan.cannot_create[i], fix,
					 "the source database uses this role, it is missing on the target, and "
					 "the target login may not create roles");
	}
	for (int i = 0; i < plan.ndropped; i++)
	{
		if (assess_capped(cx, i, plan.ndropped, FINDING_WARNING, "roles",
						  "have a superuser of the target give the attributes"))
			break;
		findings_add(cx->out, FINDING_WARNING, "roles", "target",
					 "have a superuser of the target give the attributes, if the role needs "
					 "them there", "%s (the target login may not give them)", plan.dropped[i]);
	}
	for (int i = 0; i < plan.nneed_password; i++)
	{
		if (assess_capped(cx, i, plan.nneed_password, FINDING_WARNING, "roles",
						  "set the passwords on the target after sync"))
			break;
		findings_add(cx->out, FINDING_WARNING, "roles", "target", plan.need_password[i],
					 "a login role will be created without its password: the source login "
					 "cannot read pg_authid (only a superuser can)");
	}
	roles_plan_term(&plan);
	roles_set_term(&set);
}
