/*
 * tests/support/compare.c -- compare two databases after a migration (see
 * compare.h).
 */
#include "tests/support/compare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off: the SQL below reads better laid out by hand. */

/* Namespaces that hold user objects; n is the pg_namespace alias. */
#define USER_NS(n)                                                             \
	" " n ".nspname NOT IN ('pg_catalog', 'information_schema', 'pgstream')"   \
	" AND " n ".nspname !~ '^pg_(toast|temp)'"

/* The object (catalog cls, oid expression obj) is not an extension's. */
#define NOT_EXT(cls, obj)                                                      \
	" NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend x"                        \
	" WHERE x.classid = '" cls "'::regclass AND x.objid = " obj                \
	" AND x.deptype = 'e')"

static const char facts_sql[] =
    "SET search_path = pg_catalog;"
    "SELECT f FROM ("
    /* schemas */
    " SELECT format('schema %I', n.nspname) AS f FROM pg_namespace n"
    " WHERE" USER_NS("n") " AND" NOT_EXT("pg_namespace", "n.oid")
    /* relations */
    " UNION ALL"
    " SELECT format('relation %I.%I kind=%s persistence=%s replident=%s"
    " rls=%s force_rls=%s partkey=%s', n.nspname, c.relname, c.relkind,"
    " c.relpersistence, c.relreplident, c.relrowsecurity,"
    " c.relforcerowsecurity,"
    " coalesce(pg_get_partkeydef(c.oid), '-'))"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND" USER_NS(
        "n") " AND" NOT_EXT("pg_class", "c.oid")
    /* columns, numbered in order without dropped ones */
    " UNION ALL"
    " SELECT format('column %I.%I #%s %I %s notnull=%s identity=%s"
    " generated=%s default=%s collation=%s storage=%s', n.nspname,"
    " c.relname, row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),"
    " a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
    " a.attidentity, a.attgenerated,"
    " coalesce(pg_get_expr(d.adbin, d.adrelid), '-'),"
    " coalesce(co.collname, '-'), a.attstorage)"
    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    " LEFT JOIN pg_collation co ON co.oid = a.attcollation"
    " WHERE a.attnum > 0 AND NOT a.attisdropped"
    " AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND" USER_NS(
        "n") " AND" NOT_EXT("pg_class", "c.oid")
    /* partitions (tables and indexes) and inheritance */
    " UNION ALL"
    " SELECT format('inherits %I.%I (%s) from %I.%I bound=%s', n.nspname,"
    " c.relname, c.relkind, pn.nspname, p.relname,"
    " coalesce(pg_get_expr(c.relpartbound, c.oid), '-'))"
    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_class p ON p.oid = i.inhparent"
    " JOIN pg_namespace pn ON pn.oid = p.relnamespace"
    " WHERE" USER_NS("n")
    /* indexes */
    " UNION ALL"
    " SELECT format('index %s valid=%s ready=%s replident=%s clustered=%s',"
    " pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisready,"
    " i.indisreplident, i.indisclustered)"
    " FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE" USER_NS("n") " AND" NOT_EXT("pg_class", "c.oid")
    /* constraints of tables and domains */
    " UNION ALL"
    " SELECT format('constraint %s %I %s validated=%s local=%s inherited=%s',"
    " CASE WHEN con.conrelid <> 0 THEN format('%I.%I', n.nspname, c.relname)"
    " ELSE 'domain ' || format('%I.%I', n.nspname, ty.typname) END,"
    " con.conname, pg_get_constraintdef(con.oid), con.convalidated,"
    " con.conislocal, con.coninhcount)"
    " FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace"
    " LEFT JOIN pg_class c ON c.oid = con.conrelid"
    " LEFT JOIN pg_type ty ON ty.oid = con.contypid"
    " WHERE" USER_NS("n") " AND" NOT_EXT("pg_constraint", "con.oid")
    /* triggers */
    " UNION ALL"
    " SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid),"
    " t.tgenabled)"
    " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE NOT t.tgisinternal AND" USER_NS("n")
    /* sequences: parameters and ownership (values: compare_data) */
    " UNION ALL"
    " SELECT format('sequence %I.%I %s start=%s min=%s max=%s increment=%s"
    " cycle=%s cache=%s owned_by=%s', n.nspname, c.relname,"
    " format_type(s.seqtypid, NULL), s.seqstart, s.seqmin, s.seqmax,"
    " s.seqincrement, s.seqcycle, s.seqcache,"
    " coalesce((SELECT string_agg(format('%I.%I.%I:%s', rn.nspname,"
    "   r.relname, ra.attname, dd.deptype), ',')"
    "   FROM pg_depend dd JOIN pg_class r ON r.oid = dd.refobjid"
    "   JOIN pg_namespace rn ON rn.oid = r.relnamespace"
    "   JOIN pg_attribute ra ON ra.attrelid = r.oid"
    "   AND ra.attnum = dd.refobjsubid"
    "   WHERE dd.classid = 'pg_class'::regclass AND dd.objid = c.oid"
    "   AND dd.refclassid = 'pg_class'::regclass"
    "   AND dd.deptype IN ('a', 'i')), '-'))"
    " FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE" USER_NS("n") " AND" NOT_EXT("pg_class", "c.oid")
    /* enums, domains, range types */
    " UNION ALL"
    " SELECT format('enum %I.%I %s', n.nspname, t.typname,"
    " (SELECT string_agg(quote_literal(e.enumlabel), ','"
    "  ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))"
    " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
    " WHERE t.typtype = 'e' AND" USER_NS("n") " AND" NOT_EXT(
        "pg_type",
        "t.oid") " UNION ALL"
                 " SELECT format('domain %I.%I base=%s notnull=%s default=%s"
                 " collation=%s', n.nspname, t.typname,"
                 " format_type(t.typbasetype, t.typtypmod), t.typnotnull,"
                 " coalesce(t.typdefault, '-'), coalesce(co.collname, '-'))"
                 " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                 " LEFT JOIN pg_collation co ON co.oid = t.typcollation"
                 " WHERE t.typtype = 'd' AND" USER_NS("n") " AND" NOT_EXT(
                     "pg_type",
                     "t.oid") " UNION ALL"
                              " SELECT format('range %I.%I subtype=%s', "
                              "n.nspname, t.typname,"
                              " format_type(r.rngsubtype, NULL))"
                              " FROM pg_range r JOIN pg_type t ON t.oid = "
                              "r.rngtypid"
                              " JOIN pg_namespace n ON n.oid = t.typnamespace"
                              " WHERE" USER_NS("n") " AND" NOT_EXT("pg_type",
                                                                   "t.oid")
    /* extensions */
    " UNION ALL"
    " SELECT format('extension %I %s schema=%I', e.extname, e.extversion,"
    " n.nspname)"
    " FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
    /* views and materialized views */
    " UNION ALL"
    " SELECT format('view %I.%I populated=%s %s', n.nspname, c.relname,"
    " c.relispopulated,"
    " regexp_replace(pg_get_viewdef(c.oid), '\\s+', ' ', 'g'))"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('v', 'm') AND" USER_NS("n") " AND" NOT_EXT("pg_class",
                                                                     "c.oid")
    /* row security policies */
    " UNION ALL"
    " SELECT format('policy %I.%I %I permissive=%s roles=%s cmd=%s"
    " using=%s check=%s', p.schemaname, p.tablename, p.policyname,"
    " p.permissive, p.roles, p.cmd, coalesce(p.qual, '-'),"
    " coalesce(p.with_check, '-'))"
    " FROM pg_policies p JOIN pg_namespace n ON n.nspname = p.schemaname"
    " WHERE" USER_NS("n")
    /* rules other than views' */
    " UNION ALL"
    " SELECT format('rule %s',"
    " regexp_replace(pg_get_ruledef(r.oid), '\\s+', ' ', 'g'))"
    " FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE r.rulename <> '_RETURN' AND" USER_NS("n")
    /* extended statistics */
    " UNION ALL"
    " SELECT format('statistics %s', pg_get_statisticsobjdef(s.oid))"
    " FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace"
    " WHERE" USER_NS("n")
    /* functions and procedures */
    " UNION ALL"
    " SELECT format('function %s kind=%s def=%s', p.oid::regprocedure,"
    " p.prokind, CASE WHEN p.prokind = 'a' THEN '-'"
    " ELSE md5(pg_get_functiondef(p.oid)) END)"
    " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    " WHERE" USER_NS("n") " AND" NOT_EXT("pg_proc", "p.oid")
    /* comments on user objects (not extension members) */
    " UNION ALL"
    " SELECT format('comment on %s: %s',"
    " pg_describe_object(d.classoid, d.objoid, d.objsubid),"
    " regexp_replace(d.description, '\\s+', ' ', 'g'))"
    " FROM pg_description d WHERE d.objoid >= 16384"
    " AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = d.classoid"
    " AND x.objid = d.objoid AND x.deptype = 'e')"
    ") facts ORDER BY f COLLATE \"C\"";

static const char tables_sql[] =
    "SELECT format('%I.%I', n.nspname, c.relname)"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p', 'm') AND" USER_NS("n") " AND" NOT_EXT(
        "pg_class", "c.oid") " ORDER BY 1";

static const char sequences_sql[] =
    "SELECT format('%I.%I', n.nspname, c.relname)"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'S' AND" USER_NS("n") " AND" NOT_EXT(
        "pg_class", "c.oid") " ORDER BY 1";

/* clang-format on */

/* Run a query that returns rows; NULL (error printed) on failure. */
static PGresult *
rows(const Cluster *c, PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "cluster \"%s\": query failed: %.200s...\n%s", c->name,
		        sql, PQerrorMessage(conn));
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * A connection whose output does not depend on the database's settings: the
 * two databases may have different DateStyle, TimeZone, extra_float_digits,
 * ... (ALTER DATABASE SET), and values (and deparsed defaults) must compare
 * equal when they are.
 */
static PGconn *
connect_fixed(const Cluster *c, const char *dbname)
{
	static const char settings[] =
	    "SET DateStyle = ISO; SET IntervalStyle = postgres;"
	    " SET extra_float_digits = 3; SET bytea_output = hex;"
	    " SET TimeZone = 'UTC'; SET lc_monetary = 'C';"
	    " SET search_path = public";
	PGconn *conn = cluster_connect(c, dbname, NULL);
	PGresult *res;

	if (conn == NULL)
		return NULL;
	res = PQexec(conn, settings);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "cluster \"%s\": %s", c->name, PQerrorMessage(conn));
		PQfinish(conn);
		conn = NULL;
	}
	PQclear(res);
	return conn;
}

/* The first column of every row joined with '\n'; malloc'd or NULL. */
static char *
join_rows(const PGresult *res)
{
	size_t len = 1;
	char *out;
	char *p;

	for (int r = 0; r < PQntuples(res); r++)
		len += (size_t) PQgetlength(res, r, 0) + 1;
	out = malloc(len);
	if (out == NULL)
		return NULL;
	p = out;
	for (int r = 0; r < PQntuples(res); r++)
	{
		size_t n = (size_t) PQgetlength(res, r, 0);

		memcpy(p, PQgetvalue(res, r, 0), n);
		p += n;
		*p++ = '\n';
	}
	*p = '\0';
	return out;
}

static PGresult *
facts(const Cluster *c, const char *dbname)
{
	PGconn *conn = connect_fixed(c, dbname);
	PGresult *res;

	if (conn == NULL)
		return NULL;
	res = rows(c, conn, facts_sql);
	PQfinish(conn);
	return res;
}

char *
compare_schema_facts(const Cluster *c, const char *dbname)
{
	PGresult *res = facts(c, dbname);
	char *out;

	if (res == NULL)
		return NULL;
	out = join_rows(res);
	PQclear(res);
	return out;
}

int
compare_schemas(const Cluster *a, const char *dba, const Cluster *b,
                const char *dbb)
{
	PGresult *ra = facts(a, dba);
	PGresult *rb = facts(b, dbb);
	int ia = 0;
	int ib = 0;
	int na;
	int nb;
	int diffs = 0;

	if (ra == NULL || rb == NULL)
	{
		PQclear(ra);
		PQclear(rb);
		return -1;
	}
	na = PQntuples(ra);
	nb = PQntuples(rb);
	/* Both lists are sorted bytewise (COLLATE "C"): merge them. */
	while (ia < na || ib < nb)
	{
		int cmp;

		if (ia == na)
			cmp = 1;
		else if (ib == nb)
			cmp = -1;
		else
			cmp = strcmp(PQgetvalue(ra, ia, 0), PQgetvalue(rb, ib, 0));
		if (cmp == 0)
		{
			ia++;
			ib++;
			continue;
		}
		diffs++;
		if (cmp < 0)
			fprintf(stderr, "schema: only in %s/%s: %s\n", a->name, dba,
			        PQgetvalue(ra, ia++, 0));
		else
			fprintf(stderr, "schema: only in %s/%s: %s\n", b->name, dbb,
			        PQgetvalue(rb, ib++, 0));
	}
	PQclear(ra);
	PQclear(rb);
	return diffs;
}

/* One row of one column from conn; malloc'd, or NULL (error printed). */
static char *
scalar(const Cluster *c, PGconn *conn, const char *sql)
{
	PGresult *res = rows(c, conn, sql);
	char *v = NULL;

	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		v = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

/* Compare the scalar query head || name || tail on both sides. */
static int
compare_one(const Cluster *a, PGconn *ca, const Cluster *b, PGconn *cb,
            const char *what, const char *head, const char *name,
            const char *tail)
{
	size_t len = strlen(head) + strlen(name) + strlen(tail) + 1;
	char *sql = malloc(len);
	char *va;
	char *vb;
	int diff;

	if (sql == NULL)
		return 1;
	snprintf(sql, len, "%s%s%s", head, name, tail);
	va = scalar(a, ca, sql);
	vb = scalar(b, cb, sql);
	free(sql);
	diff = va == NULL || vb == NULL || strcmp(va, vb) != 0;
	if (diff)
		fprintf(stderr, "data: %s %s differs: %s has %s, %s has %s\n", what,
		        name, a->name, va ? va : "(error)", b->name,
		        vb ? vb : "(error)");
	free(va);
	free(vb);
	return diff;
}

int
compare_data(const Cluster *a, const char *dba, const Cluster *b,
             const char *dbb, int *ntables)
{
	/* Rows as text in text order: a digest for any column types (json,
	 * xml, point have no equality), and duplicates count. */
	static const char table_head[] =
	    "SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(t::text,"
	    " ',' ORDER BY t::text COLLATE \"C\"), '')) FROM ";
	static const char sequence_head[] =
	    "SELECT 'last_value ' || last_value || ', is_called ' || is_called"
	    " FROM ";
	PGconn *ca = connect_fixed(a, dba);
	PGconn *cb = connect_fixed(b, dbb);
	PGresult *tables = NULL;
	PGresult *seqs = NULL;
	int diffs = -1;

	if (ntables != NULL)
		*ntables = 0;
	if (ca != NULL && cb != NULL && (tables = rows(a, ca, tables_sql)) &&
	    (seqs = rows(a, ca, sequences_sql)))
	{
		diffs = 0;
		for (int r = 0; r < PQntuples(tables); r++)
			diffs += compare_one(a, ca, b, cb, "table", table_head,
			                     PQgetvalue(tables, r, 0), " t");
		for (int r = 0; r < PQntuples(seqs); r++)
			diffs += compare_one(a, ca, b, cb, "sequence", sequence_head,
			                     PQgetvalue(seqs, r, 0), "");
		if (ntables != NULL)
			*ntables = PQntuples(tables);
	}
	PQclear(tables);
	PQclear(seqs);
	PQfinish(ca);
	PQfinish(cb);
	return diffs;
}
