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

/* "type identity" of an object, as pgstream names what it leaves out */
#define OBJ(cls, oid)                                                          \
	" (SELECT i.type || ' ' || i.identity FROM pg_identify_object("            \
	"'" cls "'::regclass, " oid ", 0) i)"

static const char facts_sql[] =
    "SET search_path = pg_catalog;"
    "SELECT f, a FROM ("
    /* schemas */
    " SELECT format('schema %I', n.nspname) AS f," OBJ("pg_namespace", "n.oid") " AS a"
    " FROM pg_namespace n"
    " WHERE" USER_NS("n") " AND" NOT_EXT("pg_namespace", "n.oid")
    /* relations */
    " UNION ALL"
    " SELECT format('relation %I.%I kind=%s persistence=%s replident=%s"
    " rls=%s force_rls=%s partkey=%s', n.nspname, c.relname, c.relkind,"
    " c.relpersistence, c.relreplident, c.relrowsecurity,"
    " c.relforcerowsecurity,"
    " coalesce(pg_get_partkeydef(c.oid), '-'))," OBJ("pg_class", "c.oid")
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND" USER_NS(
        "n") " AND" NOT_EXT("pg_class", "c.oid")
    /* columns, numbered in order without dropped ones */
    " UNION ALL"
    " SELECT format('column %I.%I #%s %I %s notnull=%s identity=%s"
    " generated=%s default=%s collation=%s storage=%s', n.nspname,"
    " c.relname, CASE WHEN c.relispartition OR NOT EXISTS (SELECT 1"
    " FROM pg_inherits ih WHERE ih.inhrelid = c.oid)"
    " THEN (row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum))::text"
    " ELSE 'inherited' END,"
    " a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
    " a.attidentity, a.attgenerated,"
    " coalesce(pg_get_expr(d.adbin, d.adrelid), '-'),"
    " coalesce(co.collname, '-'), a.attstorage)," OBJ("pg_class", "c.oid")
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
    " coalesce(pg_get_expr(c.relpartbound, c.oid), '-'))," OBJ("pg_class", "c.oid")
    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_class p ON p.oid = i.inhparent"
    " JOIN pg_namespace pn ON pn.oid = p.relnamespace"
    " WHERE" USER_NS("n")
    /* indexes */
    " UNION ALL"
    " SELECT format('index %s valid=%s ready=%s replident=%s clustered=%s',"
    " pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisready,"
    " i.indisreplident, i.indisclustered),"
    OBJ("pg_class", "c.oid") " || E'\\n' ||" OBJ("pg_class", "i.indexrelid")
    " FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE" USER_NS("n") " AND" NOT_EXT("pg_class", "c.oid")
    /* constraints of tables and domains */
    " UNION ALL"
    " SELECT format('constraint %s %s %s validated=%s local=%s inherited=%s',"
    " CASE WHEN con.conrelid <> 0 THEN format('%I.%I', n.nspname, c.relname)"
    " ELSE 'domain ' || format('%I.%I', n.nspname, ty.typname) END,"
    " CASE WHEN con.contype = 'f' AND con.conparentid <> 0"
    " THEN '(named by the server)' ELSE quote_ident(con.conname) END,"
    " pg_get_constraintdef(con.oid), con.convalidated,"
    " con.conislocal, con.coninhcount),"
    " CASE WHEN con.conrelid <> 0 THEN" OBJ("pg_class", "con.conrelid")
    " ELSE" OBJ("pg_type", "con.contypid") " END || E'\\n' ||"
    OBJ("pg_constraint", "con.oid")
    " FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace"
    " LEFT JOIN pg_class c ON c.oid = con.conrelid"
    " LEFT JOIN pg_type ty ON ty.oid = con.contypid"
    " WHERE" USER_NS("n") " AND" NOT_EXT("pg_constraint", "con.oid")
    /* triggers */
    " UNION ALL"
    " SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid),"
    " t.tgenabled)," OBJ("pg_class", "c.oid") " || E'\\n' ||"
    OBJ("pg_trigger", "t.oid")
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
    "   AND dd.deptype IN ('a', 'i')), '-'))," OBJ("pg_class", "c.oid")
    " FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE" USER_NS("n") " AND" NOT_EXT("pg_class", "c.oid")
    /* enums, domains, range types */
    " UNION ALL"
    " SELECT format('enum %I.%I %s', n.nspname, t.typname,"
    " (SELECT string_agg(quote_literal(e.enumlabel), ','"
    "  ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)),"
    OBJ("pg_type", "t.oid")
    " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
    " WHERE t.typtype = 'e' AND" USER_NS("n") " AND" NOT_EXT(
        "pg_type",
        "t.oid") " UNION ALL"
                 " SELECT format('domain %I.%I base=%s notnull=%s default=%s"
                 " collation=%s', n.nspname, t.typname,"
                 " format_type(t.typbasetype, t.typtypmod), t.typnotnull,"
                 " coalesce(t.typdefault, '-'), coalesce(co.collname, '-')),"
                 OBJ("pg_type", "t.oid")
                 " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                 " LEFT JOIN pg_collation co ON co.oid = t.typcollation"
                 " WHERE t.typtype = 'd' AND" USER_NS("n") " AND" NOT_EXT(
                     "pg_type",
                     "t.oid") " UNION ALL"
                              " SELECT format('range %I.%I subtype=%s', "
                              "n.nspname, t.typname,"
                              " format_type(r.rngsubtype, NULL)),"
                              OBJ("pg_type", "t.oid")
                              " FROM pg_range r JOIN pg_type t ON t.oid = "
                              "r.rngtypid"
                              " JOIN pg_namespace n ON n.oid = t.typnamespace"
                              " WHERE" USER_NS("n") " AND" NOT_EXT("pg_type",
                                                                   "t.oid")
    /* extensions */
    " UNION ALL"
    " SELECT format('extension %I %s schema=%I', e.extname, e.extversion,"
    " n.nspname), ''"
    " FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
    /* views and materialized views */
    " UNION ALL"
    " SELECT format('view %I.%I populated=%s %s', n.nspname, c.relname,"
    " c.relispopulated,"
    " regexp_replace(pg_get_viewdef(c.oid), '\\s+', ' ', 'g')),"
    OBJ("pg_class", "c.oid")
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('v', 'm') AND" USER_NS("n") " AND" NOT_EXT("pg_class",
                                                                     "c.oid")
    /* row security policies */
    " UNION ALL"
    " SELECT format('policy %I.%I %I permissive=%s roles=%s cmd=%s"
    " using=%s check=%s', p.schemaname, p.tablename, p.policyname,"
    " p.permissive, p.roles, p.cmd, coalesce(p.qual, '-'),"
    " coalesce(p.with_check, '-')),"
    OBJ("pg_class", "format('%I.%I', p.schemaname, p.tablename)::regclass")
    " FROM pg_policies p JOIN pg_namespace n ON n.nspname = p.schemaname"
    " WHERE" USER_NS("n")
    /* rules other than views' */
    " UNION ALL"
    " SELECT format('rule %s',"
    " regexp_replace(pg_get_ruledef(r.oid), '\\s+', ' ', 'g')),"
    OBJ("pg_class", "c.oid") " || E'\\n' ||" OBJ("pg_rewrite", "r.oid")
    " FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE r.rulename <> '_RETURN' AND" USER_NS("n")
    /* extended statistics */
    " UNION ALL"
    " SELECT format('statistics %s', pg_get_statisticsobjdef(s.oid)),"
    OBJ("pg_class", "s.stxrelid") " || E'\\n' ||" OBJ("pg_statistic_ext", "s.oid")
    " FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace"
    " WHERE" USER_NS("n")
    /* functions and procedures */
    " UNION ALL"
    " SELECT format('function %s kind=%s def=%s', p.oid::regprocedure,"
    " p.prokind, CASE WHEN p.prokind = 'a' THEN (SELECT format("
    "  '%s/%s/%s/%s/%s/%s/%s/%s/%s/%s/%s', a.aggkind, a.aggtransfn::regproc,"
    "  a.aggtranstype::regtype, a.aggfinalfn::regproc, a.aggcombinefn::regproc,"
    "  a.aggmtransfn::regproc, a.aggminvtransfn::regproc,"
    "  a.aggmfinalfn::regproc, a.agginitval, a.aggminitval,"
    "  a.aggsortop::regoperator) FROM pg_aggregate a WHERE a.aggfnoid = p.oid)"
    " ELSE md5(pg_get_functiondef(p.oid)) END)," OBJ("pg_proc", "p.oid")
    " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    " WHERE" USER_NS("n") " AND" NOT_EXT("pg_proc", "p.oid")
    /* other objects by identity, with what defines them */
    " UNION ALL"
    " SELECT format('object %s %s %s', i.type, i.identity, o.def),"
    " i.type || ' ' || i.identity"
    " FROM (SELECT 'pg_operator'::regclass AS cls, o.oid, format('code=%s"
    "  restrict=%s join=%s commutator=%s negator=%s hashes=%s merges=%s',"
    "  o.oprcode::regproc, o.oprrest::regproc, o.oprjoin::regproc,"
    "  o.oprcom::regoperator, o.oprnegate::regoperator, o.oprcanhash,"
    "  o.oprcanmerge) AS def FROM pg_operator o WHERE o.oid >= 16384"
    /* a shell operator (named as another's commutator or negator, never
     * defined) has no function; pg_dump does not dump it (see compare.h) */
    "  AND o.oprcode <> 0"
    " UNION ALL SELECT 'pg_cast', c.oid, format('function=%s context=%s"
    "  method=%s', c.castfunc::regprocedure, c.castcontext, c.castmethod)"
    "  FROM pg_cast c WHERE c.oid >= 16384"
    " UNION ALL SELECT 'pg_opclass', c.oid, format('default=%s type=%s"
    "  storage=%s', c.opcdefault, c.opcintype::regtype, c.opckeytype::regtype)"
    "  FROM pg_opclass c WHERE c.oid >= 16384"
    " UNION ALL SELECT 'pg_opfamily', oid, '' FROM pg_opfamily"
    "  WHERE oid >= 16384"
    " UNION ALL SELECT 'pg_amop', a.oid, format('purpose=%s sortfamily=%s',"
    "  a.amoppurpose, a.amopsortfamily) FROM pg_amop a WHERE a.oid >= 16384"
    "  AND" NOT_EXT("pg_opfamily", "a.amopfamily")
    " UNION ALL SELECT 'pg_amproc', a.oid, a.amproc::regprocedure::text"
    "  FROM pg_amproc a WHERE a.oid >= 16384"
    "  AND" NOT_EXT("pg_opfamily", "a.amprocfamily")
    " UNION ALL SELECT 'pg_ts_config', c.oid, format('parser=%s map=%s',"
    "  (SELECT prsname FROM pg_ts_parser WHERE oid = c.cfgparser),"
    "  (SELECT string_agg(m.maptokentype || ':' || m.mapdict::regdictionary,"
    "  ',' ORDER BY m.maptokentype, m.mapseqno) FROM pg_ts_config_map m"
    "  WHERE m.mapcfg = c.oid)) FROM pg_ts_config c WHERE c.oid >= 16384"
    " UNION ALL SELECT 'pg_ts_dict', d.oid, format('template=%s options=%s',"
    "  (SELECT tmplname FROM pg_ts_template WHERE oid = d.dicttemplate),"
    "  d.dictinitoption) FROM pg_ts_dict d WHERE d.oid >= 16384"
    " UNION ALL SELECT 'pg_ts_parser', oid, '' FROM pg_ts_parser"
    "  WHERE oid >= 16384"
    " UNION ALL SELECT 'pg_ts_template', oid, '' FROM pg_ts_template"
    "  WHERE oid >= 16384"
    " UNION ALL SELECT 'pg_collation', c.oid, format('provider=%s"
    "  collate=%s ctype=%s deterministic=%s', c.collprovider, c.collcollate,"
    "  c.collctype, c.collisdeterministic)"
    "  FROM pg_collation c WHERE c.oid >= 16384"
    " UNION ALL SELECT 'pg_conversion', c.oid, format('%s to %s function=%s"
    "  default=%s', pg_encoding_to_char(c.conforencoding),"
    "  pg_encoding_to_char(c.contoencoding), c.conproc::regproc,"
    "  c.condefault) FROM pg_conversion c WHERE c.oid >= 16384"
    " UNION ALL SELECT 'pg_foreign_data_wrapper', w.oid, format('handler=%s"
    "  validator=%s options=%s', w.fdwhandler::regproc,"
    "  w.fdwvalidator::regproc, w.fdwoptions)"
    "  FROM pg_foreign_data_wrapper w"
    " UNION ALL SELECT 'pg_foreign_server', v.oid, format('wrapper=%s"
    "  type=%s version=%s options=%s', (SELECT fdwname FROM"
    "  pg_foreign_data_wrapper WHERE oid = v.srvfdw), v.srvtype,"
    "  v.srvversion, v.srvoptions) FROM pg_foreign_server v"
    " UNION ALL SELECT 'pg_user_mapping', u.oid, format('options=%s',"
    "  u.umoptions) FROM pg_user_mapping u"
    " UNION ALL SELECT 'pg_class', t.ftrelid, format('server=%s options=%s',"
    "  (SELECT srvname FROM pg_foreign_server WHERE oid = t.ftserver),"
    "  t.ftoptions) FROM pg_foreign_table t"
    " UNION ALL SELECT 'pg_am', a.oid, format('type=%s handler=%s',"
    "  a.amtype, a.amhandler::regproc) FROM pg_am a WHERE a.oid >= 16384"
    " UNION ALL SELECT 'pg_transform', t.oid, format('from=%s to=%s',"
    "  t.trffromsql::regprocedure, t.trftosql::regprocedure)"
    "  FROM pg_transform t"
    " UNION ALL SELECT 'pg_language', l.oid, format('trusted=%s',"
    "  l.lanpltrusted) FROM pg_language l WHERE l.oid >= 16384"
    " UNION ALL SELECT 'pg_event_trigger', e.oid, format('event=%s"
    "  enabled=%s tags=%s function=%s', e.evtevent, e.evtenabled,"
    "  e.evttags, e.evtfoid::regproc) FROM pg_event_trigger e"
    " UNION ALL SELECT 'pg_type', t.oid, format('type=%s input=%s output=%s"
    "  receive=%s send=%s length=%s align=%s storage=%s', t.typtype,"
    "  t.typinput, t.typoutput, t.typreceive, t.typsend, t.typlen,"
    "  t.typalign, t.typstorage) FROM pg_type t WHERE t.oid >= 16384"
    "  AND (t.typtype = 'b' AND t.typcategory <> 'A' OR t.typtype = 'p')"
    " ) o, pg_identify_object(o.cls, o.oid, 0) i"
    " WHERE NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = o.cls"
    " AND x.objid = o.oid AND x.deptype = 'e')"
    " AND coalesce(i.schema, '') <> 'pgstream'"
    /* comments on user objects (not extension members) */
    " UNION ALL"
    " SELECT format('comment on %s: %s',"
    " pg_describe_object(d.classoid, d.objoid, d.objsubid),"
    " regexp_replace(d.description, '\\s+', ' ', 'g')),"
    " (SELECT i.type || ' ' || i.identity"
    "  FROM pg_identify_object(d.classoid, d.objoid, 0) i)"
    " FROM pg_description d WHERE d.objoid >= 16384"
    /* large objects and subscriptions are not migrated (see compare.h) */
    " AND d.classoid NOT IN ('pg_largeobject'::regclass,"
    " 'pg_subscription'::regclass)"
    " AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = d.classoid"
    " AND x.objid = d.objoid AND x.deptype = 'e')"
    ") facts ORDER BY f COLLATE \"C\"";

/* Each table with its columns in name order (rows are compared by column
 * name: an inheritance child may have another column order on the target),
 * its identity as pgstream names it, and for a populated materialized view
 * the query it stores (see compare_data). */
static const char tables_sql[] =
    "SELECT format('%I.%I', n.nspname, c.relname),"
    " coalesce((SELECT string_agg(quote_ident(a.attname), ', '"
    "  ORDER BY a.attname) FROM pg_catalog.pg_attribute a"
    "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), ''),"
    " (SELECT i.type || ' ' || i.identity FROM pg_catalog.pg_identify_object("
    "  'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0) i),"
    " CASE WHEN c.relkind = 'm' AND c.relispopulated"
    "  THEN rtrim(pg_catalog.pg_get_viewdef(c.oid), ';') END,"
    " c.relkind = 'm' AND NOT c.relispopulated,"
    " coalesce((SELECT string_agg(quote_ident(a.attname), ', '"
    "  ORDER BY a.attnum) FROM pg_catalog.pg_attribute a"
    "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), ''),"
    " c.relhassubclass"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p', 'm') AND" USER_NS("n") " AND" NOT_EXT(
        "pg_class", "c.oid") " ORDER BY 1";

static const char sequences_sql[] =
    "SELECT format('%I.%I', n.nspname, c.relname),"
    " (SELECT i.type || ' ' || i.identity FROM pg_catalog.pg_identify_object("
    "  'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0) i)"
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

/* Is one of the lines of anchors a line of left_out? */
static bool
anchored_in(const char *anchors, const char *left_out)
{
	const char *p = anchors;

	if (left_out == NULL || anchors == NULL)
		return false;
	while (*p != '\0')
	{
		size_t n = strcspn(p, "\n");
		const char *q = left_out;

		while (*q != '\0')
		{
			size_t m = strcspn(q, "\n");

			if (m == n && n > 0 && strncmp(p, q, n) == 0)
				return true;
			q += m + (q[m] == '\n');
		}
		p += n + (p[n] == '\n');
	}
	return false;
}

int
compare_schemas(const Cluster *a, const char *dba, const Cluster *b,
                const char *dbb)
{
	return compare_schemas_except(a, dba, b, dbb, NULL, NULL);
}

int
compare_schemas_except(const Cluster *a, const char *dba, const Cluster *b,
                       const char *dbb, const char *left_out, int *nexpected)
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
	if (nexpected != NULL)
		*nexpected = 0;
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
		if (cmp < 0 && anchored_in(PQgetvalue(ra, ia, 1), left_out))
		{
			if (nexpected != NULL)
				(*nexpected)++;
			ia++;
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

/* "head" || a || b || c, malloc'd (NULL: out of memory). */
static char *
concat4(const char *head, const char *a, const char *b, const char *c)
{
	size_t len = strlen(head) + strlen(a) + strlen(b) + strlen(c) + 1;
	char *sql = malloc(len);

	if (sql != NULL)
		snprintf(sql, len, "%s%s%s%s", head, a, b, c);
	return sql;
}

/* Compare the scalar query sql_a on a with sql_b on b (both freed). */
static int
compare_sql(const Cluster *a, PGconn *ca, const Cluster *b, PGconn *cb,
            const char *what, const char *name, char *sql_a, char *sql_b)
{
	char *va = sql_a ? scalar(a, ca, sql_a) : NULL;
	char *vb = sql_b ? scalar(b, cb, sql_b) : NULL;
	int diff;

	free(sql_a);
	free(sql_b);
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
	return compare_data_except(a, dba, b, dbb, NULL, ntables, NULL);
}

/* Are the rows of table row r of tables (tables_sql) the same on both?
 * left_out_lit: NULL, or left_out as a literal of ca (see below). */
static int
compare_table(const Cluster *a, PGconn *ca, const Cluster *b, PGconn *cb,
              const PGresult *tables, int r, const char *left_out_lit)
{
	/* Rows as text in text order: a digest for any column types (json,
	 * xml, point have no equality), and duplicates count.  The row is
	 * made of the columns in name order. */
	static const char head[] =
	    "SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(t.r::text,"
	    " ',' ORDER BY t.r::text COLLATE \"C\"), '')) FROM (SELECT ROW(";
	const char *name = PQgetvalue(tables, r, 0);
	const char *cols = PQgetvalue(tables, r, 1);
	char *from_a;
	char *from_b;
	char *sql_a;
	char *sql_b;

	if (PQgetvalue(tables, r, 4)[0] == 't')
		return 0; /* unpopulated materialized view: nothing to read */
	/* A materialized view is refreshed on the target (pg_dump's REFRESH):
	 * it must hold what its query returns on the source now, which is
	 * what it held there unless it was stale. */
	from_b = concat4(") AS r FROM ", name, "", ") t");
	if (PQgetisnull(tables, r, 3) && left_out_lit != NULL &&
	    PQgetvalue(tables, r, 6)[0] == 't')
	{
		/* a parent (partitioned or not) holds the rows of its children;
		 * those of a child left out are not on the target */
		char *filter = concat4(
		    " WHERE NOT (SELECT i.type || ' ' || i.identity FROM"
		    " pg_catalog.pg_identify_object('pg_catalog.pg_class'::"
		    "pg_catalog.regclass, tableoid, 0) i) = ANY (pg_catalog."
		    "string_to_array(",
		    left_out_lit, ", E'\\n'))", ") t");

		from_a = filter ? concat4(") AS r FROM ", name, filter, "") : NULL;
		free(filter);
	}
	else if (PQgetisnull(tables, r, 3))
		from_a = concat4(") AS r FROM ", name, "", ") t");
	else
	{
		/* (query) m(the view's column names, in their order) */
		char *alias = concat4(") m(", PQgetvalue(tables, r, 5), ")", ") t");

		from_a = alias ? concat4(") AS r FROM (", PQgetvalue(tables, r, 3),
		                         alias, "")
		               : NULL;
		free(alias);
	}
	if (from_a == NULL || from_b == NULL)
	{
		free(from_a);
		free(from_b);
		return 1;
	}
	sql_a = concat4(head, cols, from_a, "");
	sql_b = concat4(head, cols, from_b, "");
	free(from_a);
	free(from_b);
	return compare_sql(a, ca, b, cb, "table", name, sql_a, sql_b);
}

int
compare_data_except(const Cluster *a, const char *dba, const Cluster *b,
                    const char *dbb, const char *left_out, int *ntables,
                    int *nexpected)
{
	static const char sequence_head[] =
	    "SELECT 'last_value ' || last_value || ', is_called ' || is_called"
	    " FROM ";
	PGconn *ca = connect_fixed(a, dba);
	PGconn *cb = connect_fixed(b, dbb);
	PGresult *tables = NULL;
	PGresult *seqs = NULL;
	char *left_out_lit = NULL;
	int diffs = -1;

	if (ntables != NULL)
		*ntables = 0;
	if (nexpected != NULL)
		*nexpected = 0;
	if (ca != NULL && cb != NULL && (tables = rows(a, ca, tables_sql)) &&
	    (seqs = rows(a, ca, sequences_sql)))
	{
		diffs = 0;
		if (left_out != NULL &&
		    (left_out_lit = PQescapeLiteral(ca, left_out, strlen(left_out))) == NULL)
			diffs = -1;
		for (int r = 0; diffs >= 0 && r < PQntuples(tables); r++)
		{
			if (anchored_in(PQgetvalue(tables, r, 2), left_out))
			{
				if (nexpected != NULL)
					(*nexpected)++;
				continue;
			}
			diffs += compare_table(a, ca, b, cb, tables, r, left_out_lit);
		}
		for (int r = 0; diffs >= 0 && r < PQntuples(seqs); r++)
		{
			const char *name = PQgetvalue(seqs, r, 0);

			if (anchored_in(PQgetvalue(seqs, r, 1), left_out))
			{
				if (nexpected != NULL)
					(*nexpected)++;
				continue;
			}
			diffs += compare_sql(a, ca, b, cb, "sequence", name,
			                     concat4(sequence_head, name, "", ""),
			                     concat4(sequence_head, name, "", ""));
		}
		if (ntables != NULL)
			*ntables = PQntuples(tables);
	}
	PQfreemem(left_out_lit);
	PQclear(tables);
	PQclear(seqs);
	PQfinish(ca);
	PQfinish(cb);
	return diffs;
}
