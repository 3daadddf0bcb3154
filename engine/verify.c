/*
 * engine/verify.c -- schema and data verification of a migration (see
 * verify.h for what is compared and why it is done this way).
 *
 * NOTES
 *
 * Sessions.  Every session (the two leaders and --jobs workers per side)
 * gets pgconn's portable settings (DateStyle ISO, IntervalStyle postgres,
 * extra_float_digits 3, bytea_output hex, TimeZone UTC, empty search_path,
 * so that every name in a definition is schema-qualified the same way on
 * both sides) plus lc_monetary C (money's text) and row_security off (a
 * policy must never hide rows from the digest: the query fails instead).
 * The leaders open a REPEATABLE READ READ ONLY transaction and export its
 * snapshot; the workers import it, so all of a side's digests read one
 * state of the database.
 *
 * Failures.  A digest that fails on the target (the table or a column is
 * missing there) is a result, not an error of the run: it runs under a
 * savepoint and the table is reported with the server's message.
 */
#include "engine/verify.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply/pgconn.h"
#include "apply/result.h"
#include "apply/statesql.h"
#include "engine/cli.h"
#include "engine/failpoint.h"
#include "engine/log.h"
#include "engine/progress.h"

#define VERIFY_SESSION_OPTIONS " -c lc_monetary=C -c row_security=off"
/* 2^64: the sums are kept modulo this, so they fit a uint64_t */
#define TWO_64 "18446744073709551616"

/* ---------------------------------------------------------------------
 * Pure pieces
 * --------------------------------------------------------------------- */

const char *
verify_diff_kind_name(VerifyDiffKind kind)
{
	switch (kind)
	{
		case VERIFY_DIFF_MISSING:
			return "missing";
		case VERIFY_DIFF_EXTRA:
			return "extra";
		case VERIFY_DIFF_DEFINITION:
			return "definition";
		case VERIFY_DIFF_PRIVILEGES:
			return "privileges";
	}
	return "?";
}

const char *
verify_verdict_name(VerifyVerdict verdict)
{
	switch (verdict)
	{
		case VERIFY_FAIL:
			return "fail";
		case VERIFY_EXPECTED:
			return "expected";
		case VERIFY_NOTE:
			return "note";
	}
	return "?";
}

const char *
verify_table_status_name(VerifyTableStatus status)
{
	switch (status)
	{
		case VERIFY_TABLE_MATCH:
			return "match";
		case VERIFY_TABLE_DIFFERENT:
			return "different";
		case VERIFY_TABLE_MISSING:
			return "missing";
		case VERIFY_TABLE_ERROR:
			return "error";
	}
	return "?";
}

static int
object_cmp(const void *a, const void *b)
{
	const VerifyObject *x = a;
	const VerifyObject *y = b;
	int			c = strcmp(x->type, y->type);

	return c != 0 ? c : strcmp(x->identity, y->identity);
}

void
verify_sort_objects(VerifyObject *objs, size_t n)
{
	if (n > 1)
		qsort(objs, n, sizeof(*objs), object_cmp);
}

/*
 * What pgstream leaves out on purpose (engine/schema/schema.c: pg_dump
 * --no-publications --no-subscriptions --no-privileges, and the event
 * triggers it skips because creating them needs a superuser).
 */
const char *
verify_expected_reason(const char *type)
{
	static const struct
	{
		const char *type;
		const char *reason;
	}			expected[] = {
		{"publication", "pgstream does not migrate publications"},
		{"publication relation", "pgstream does not migrate publications"},
		{"publication namespace", "pgstream does not migrate publications"},
		{"subscription", "pgstream does not migrate subscriptions"},
		{"event trigger", "pgstream skips event triggers (creating one needs a superuser)"},
		{"default acl", "pgstream does not migrate privileges (ALTER DEFAULT PRIVILEGES)"},
	};

	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
		if (strcmp(type, expected[i].type) == 0)
			return expected[i].reason;
	return NULL;
}

static bool
push_diff(VerifyDiff **out, size_t *n, size_t *cap, VerifyDiff d)
{
	if (*n == *cap)
	{
		size_t		nc = *cap ? *cap * 2 : 16;
		VerifyDiff *nd = realloc(*out, nc * sizeof(*nd));

		if (nd == NULL)
			return false;
		*out = nd;
		*cap = nc;
	}
	(*out)[(*n)++] = d;
	return true;
}

/* The differences of one object present on both sides. */
static bool
compare_pair(const VerifyObject *s, const VerifyObject *t, bool definitions_are_notes,
			 VerifyDiff **out, size_t *n, size_t *cap)
{
	VerifyDiff	d = {VERIFY_DIFF_DEFINITION, VERIFY_FAIL, s, t, NULL};

	if (strcmp(s->definition, t->definition) != 0)
	{
		if (definitions_are_notes)
		{
			d.verdict = VERIFY_NOTE;
			d.reason = "source and target are different majors, which may print a "
				"definition differently";
		}
		if (!push_diff(out, n, cap, d))
			return false;
	}
	if (strcmp(s->privileges, t->privileges) != 0)
	{
		d.kind = VERIFY_DIFF_PRIVILEGES;
		d.verdict = VERIFY_NOTE;
		d.reason = "pgstream does not migrate owners and grants: the target's objects "
			"belong to the role that ran sync";
		if (!push_diff(out, n, cap, d))
			return false;
	}
	return true;
}

bool
verify_compare_objects(const VerifyObject *src, size_t nsrc,
					   const VerifyObject *tgt, size_t ntgt,
					   bool definitions_are_notes,
					   VerifyDiff **out, size_t *nout)
{
	size_t		i = 0,
				j = 0,
				cap = 0;

	*out = NULL;
	*nout = 0;
	while (i < nsrc || j < ntgt)
	{
		int			c = i == nsrc ? 1 : j == ntgt ? -1 : object_cmp(&src[i], &tgt[j]);
		VerifyDiff	d = {VERIFY_DIFF_MISSING, VERIFY_FAIL, NULL, NULL, NULL};

		if (c == 0)
		{
			if (!compare_pair(&src[i++], &tgt[j++], definitions_are_notes, out, nout, &cap))
				goto oom;
			continue;
		}
		if (c < 0)
			d.source = &src[i++];
		else
		{
			d.kind = VERIFY_DIFF_EXTRA;
			d.target = &tgt[j++];
		}
		d.reason = verify_expected_reason(d.source ? d.source->type : d.target->type);
		if (d.reason != NULL)
			d.verdict = VERIFY_EXPECTED;
		if (!push_diff(out, nout, &cap, d))
			goto oom;
	}
	return true;
oom:
	free(*out);
	*out = NULL;
	*nout = 0;
	return false;
}

/* name as a quoted identifier: always quoted, '"' doubled */
static void
put_ident(FILE *f, const char *name)
{
	fputc('"', f);
	for (const char *p = name; *p; p++)
	{
		if (*p == '"')
			fputc('"', f);
		fputc(*p, f);
	}
	fputc('"', f);
}

/* close the memstream; the text, or NULL if anything failed */
static char *
memstream_done(FILE *f, char **buf)
{
	bool		failed = ferror(f) != 0;

	/* *buf is only set by fclose */
	if (fclose(f) != 0 || failed)
	{
		free(*buf);
		return *buf = NULL;
	}
	return *buf;
}

/*
 * Floating point text differs between majors (12 prints the shortest exact
 * form, 11 prints extra_float_digits more); the binary form does not.
 */
static const char *
column_text_function(const char *type)
{
	if (type == NULL)
		return NULL;
	if (strcmp(type, "double precision") == 0)
		return "float8send";
	if (strcmp(type, "real") == 0)
		return "float4send";
	return NULL;
}

char *
verify_digest_sql(const char *relation, const char *const *columns,
				  const char *const *types, int ncolumns, const char *where)
{
	int		   *sorted = calloc((size_t) ncolumns + 1, sizeof(*sorted));
	char	   *buf = NULL;
	size_t		len = 0;
	FILE	   *f;

	if (sorted == NULL)
		return NULL;
	f = open_memstream(&buf, &len);
	if (f == NULL)
		return free(sorted), NULL;
	for (int i = 0; i < ncolumns; i++)
		sorted[i] = i;
	/* insertion sort of indexes by name: tables have at most 1600 columns */
	for (int i = 1; i < ncolumns; i++)
		for (int j = i; j > 0 && strcmp(columns[sorted[j - 1]], columns[sorted[j]]) > 0; j--)
		{
			int			tmp = sorted[j];

			sorted[j] = sorted[j - 1];
			sorted[j - 1] = tmp;
		}
	fputs("SELECT count(*)::text", f);
	for (int half = 0; half < 2; half++)
		fprintf(f, ", coalesce(mod(mod(sum(('x' || substr(m, %d, 16))::bit(64)::bigint::numeric), "
				TWO_64 ") + " TWO_64 ", " TWO_64 "), 0)::text", 1 + 16 * half);
	fputs(" FROM (SELECT md5(ROW(", f);
	for (int i = 0; i < ncolumns; i++)
	{
		const char *fn = column_text_function(types ? types[sorted[i]] : NULL);

		fputs(i ? ", " : "", f);
		if (fn)
			fprintf(f, "%s(", fn);
		fputs("x.", f);
		put_ident(f, columns[sorted[i]]);
		fputs(fn ? ")::text" : "::text", f);
	}
	fprintf(f, ")::text) AS m FROM ONLY %s x", relation);
	if (where != NULL)
		fprintf(f, " WHERE %s", where);
	fputs(") s", f);
	free(sorted);
	return memstream_done(f, &buf);
}

/* "(x."a", x."b")" */
static void
put_key_row(FILE *f, const char *const *keys, int nkeys)
{
	fputc('(', f);
	for (int k = 0; k < nkeys; k++)
	{
		fputs(k ? ", x." : "x.", f);
		put_ident(f, keys[k]);
	}
	fputc(')', f);
}

/* "($1::integer, $2::text)" from parameter first */
static void
put_param_row(FILE *f, const char *const *types, int nkeys, int first)
{
	fputc('(', f);
	for (int k = 0; k < nkeys; k++)
		fprintf(f, "%s$%d::%s", k ? ", " : "", first + k, types[k]);
	fputc(')', f);
}

char *
verify_chunk_where(const char *const *keys, const char *const *types, int nkeys,
				   int chunk, int nchunks, int *nparams)
{
	char	   *buf = NULL;
	size_t		len = 0;
	FILE	   *f;
	int			next = 1;

	*nparams = 0;
	if (nchunks <= 1)
		return NULL;
	f = open_memstream(&buf, &len);
	if (f == NULL)
		return NULL;
	if (chunk > 0)
	{
		put_key_row(f, keys, nkeys);
		fputs(" > ", f);
		put_param_row(f, types, nkeys, next);
		next += nkeys;
	}
	if (chunk < nchunks - 1)
	{
		if (chunk > 0)
			fputs(" AND ", f);
		put_key_row(f, keys, nkeys);
		fputs(" <= ", f);
		put_param_row(f, types, nkeys, next);
		next += nkeys;
	}
	*nparams = next - 1;
	return memstream_done(f, &buf);
}

void
verify_digest_add(VerifyDigest *a, const VerifyDigest *b)
{
	a->rows += b->rows;
	a->sum[0] += b->sum[0];		/* unsigned: wraps modulo 2^64 */
	a->sum[1] += b->sum[1];
}

bool
verify_digest_equal(const VerifyDigest *a, const VerifyDigest *b)
{
	return a->rows == b->rows && a->sum[0] == b->sum[0] && a->sum[1] == b->sum[1];
}

/* ---------------------------------------------------------------------
 * Schema
 * --------------------------------------------------------------------- */

/*
 * Objects of the catalogs that hold user objects: (classid, objid,
 * objsubid, namespace or NULL, definition, privileges).  Objects without a
 * namespace count when made after initdb (oid >= FirstNormalObjectId).
 * %s: the generated-column expression (12+), the publication namespaces
 * (15+).
 */
static const char objects_sql[] =
	"WITH RECURSIVE ext(classid, objid) AS ("
	" SELECT classid, objid FROM pg_catalog.pg_depend WHERE deptype = 'e'"
	" UNION"
	" SELECT d.classid, d.objid FROM pg_catalog.pg_depend d"
	" JOIN ext e ON d.refclassid = e.classid AND d.refobjid = e.objid"
	" WHERE d.deptype IN ('i', 'a')),"
	" nsp AS (SELECT oid FROM pg_catalog.pg_namespace"
	" WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname <> $1"
	" AND nspname !~ '^pg_(toast|temp)'),"
	" objs(classid, objid, objsubid, nspoid, def, priv) AS ("
	" SELECT 'pg_namespace'::regclass, n.oid, 0, n.oid, '',"
	"  pg_get_userbyid(n.nspowner) || ' ' || coalesce(n.nspacl::text, '')"
	"  FROM pg_catalog.pg_namespace n"
	" UNION ALL SELECT 'pg_class'::regclass, c.oid, 0, c.relnamespace,"
	"  CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid)"
	"  WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid)"
	"  ELSE c.relkind::text || ' ' || c.relpersistence::text"
	"  || coalesce(' partition by ' || pg_get_partkeydef(c.oid), '')"
	"  || coalesce(' ' || pg_get_expr(c.relpartbound, c.oid), '') END,"
	"  CASE WHEN c.relkind IN ('i', 'I') THEN '' ELSE"
	"  pg_get_userbyid(c.relowner) || ' ' || coalesce(c.relacl::text, '') END"
	"  FROM pg_catalog.pg_class c"
	" UNION ALL SELECT 'pg_class'::regclass, a.attrelid, a.attnum, c.relnamespace,"
	"  format_type(a.atttypid, a.atttypmod)"
	"  || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END"
	"  || CASE a.attidentity WHEN 'a' THEN ' generated always as identity'"
	"  WHEN 'd' THEN ' generated by default as identity' ELSE '' END"
	"  || CASE WHEN %s THEN ' generated always as (' || pg_get_expr(d.adbin, d.adrelid) || ') stored'"
	"  WHEN d.adbin IS NOT NULL THEN ' default ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END,"
	"  coalesce(a.attacl::text, '')"
	"  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
	"  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
	"  WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')"
	" UNION ALL SELECT 'pg_type'::regclass, t.oid, 0, t.typnamespace,"
	"  CASE t.typtype WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod)"
	"  || CASE WHEN t.typnotnull THEN ' not null' ELSE '' END"
	"  || coalesce(' default ' || t.typdefault, '')"
	"  WHEN 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)"
	"  FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)"
	"  ELSE t.typtype::text END,"
	"  pg_get_userbyid(t.typowner) || ' ' || coalesce(t.typacl::text, '')"
	"  FROM pg_catalog.pg_type t"
	/* a relation's row type and any array type come with what they belong to */
	"  WHERE (t.typrelid = 0 OR (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c')"
	"  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type el WHERE el.oid = t.typelem AND el.typarray = t.oid)"
	" UNION ALL SELECT 'pg_proc'::regclass, p.oid, 0, p.pronamespace,"
	"  p.prokind::text || ' returns ' || coalesce(pg_get_function_result(p.oid), '') || ' '"
	"  || p.provolatile::text || ' ' || md5(coalesce(p.prosrc, '')),"
	"  pg_get_userbyid(p.proowner) || ' ' || coalesce(p.proacl::text, '')"
	"  FROM pg_catalog.pg_proc p"
	" UNION ALL SELECT 'pg_constraint'::regclass, co.oid, 0, co.connamespace,"
	"  pg_get_constraintdef(co.oid), ''"
	"  FROM pg_catalog.pg_constraint co WHERE co.contype <> 'n'"
	" UNION ALL SELECT 'pg_trigger'::regclass, tg.oid, 0, c.relnamespace,"
	"  pg_get_triggerdef(tg.oid), ''"
	"  FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid"
	"  WHERE NOT tg.tgisinternal"
	" UNION ALL SELECT 'pg_rewrite'::regclass, r.oid, 0, c.relnamespace,"
	"  pg_get_ruledef(r.oid), ''"
	"  FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class"
	" UNION ALL SELECT 'pg_policy'::regclass, po.oid, 0, c.relnamespace,"
	"  po.polcmd::text || ' ' || po.polpermissive::text || ' to ' || (SELECT string_agg(rn, ', '"
	"  ORDER BY rn COLLATE \"C\") FROM (SELECT CASE WHEN r = 0 THEN 'public'"
	"  ELSE pg_get_userbyid(r)::text END AS rn FROM unnest(po.polroles) r) rr)"
	"  || coalesce(' using ' || pg_get_expr(po.polqual, po.polrelid), '')"
	"  || coalesce(' check ' || pg_get_expr(po.polwithcheck, po.polrelid), ''), ''"
	"  FROM pg_catalog.pg_policy po JOIN pg_catalog.pg_class c ON c.oid = po.polrelid"
	" UNION ALL SELECT 'pg_attrdef'::regclass, d.oid, 0, c.relnamespace, '', ''"
	"  FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_class c ON c.oid = d.adrelid"
	" UNION ALL SELECT 'pg_operator'::regclass, oid, 0, oprnamespace, '', ''"
	"  FROM pg_catalog.pg_operator"
	" UNION ALL SELECT 'pg_opclass'::regclass, oid, 0, opcnamespace, '', ''"
	"  FROM pg_catalog.pg_opclass"
	" UNION ALL SELECT 'pg_opfamily'::regclass, oid, 0, opfnamespace, '', ''"
	"  FROM pg_catalog.pg_opfamily"
	" UNION ALL SELECT 'pg_amop'::regclass, ao.oid, 0, f.opfnamespace, '', ''"
	"  FROM pg_catalog.pg_amop ao JOIN pg_catalog.pg_opfamily f ON f.oid = ao.amopfamily"
	" UNION ALL SELECT 'pg_amproc'::regclass, ap.oid, 0, f.opfnamespace, '', ''"
	"  FROM pg_catalog.pg_amproc ap JOIN pg_catalog.pg_opfamily f ON f.oid = ap.amprocfamily"
	" UNION ALL SELECT 'pg_cast'::regclass, oid, 0, NULL, castmethod::text, ''"
	"  FROM pg_catalog.pg_cast"
	" UNION ALL SELECT 'pg_conversion'::regclass, oid, 0, connamespace, '', ''"
	"  FROM pg_catalog.pg_conversion"
	" UNION ALL SELECT 'pg_collation'::regclass, oid, 0, collnamespace, '', ''"
	"  FROM pg_catalog.pg_collation"
	" UNION ALL SELECT 'pg_ts_config'::regclass, oid, 0, cfgnamespace, '', ''"
	"  FROM pg_catalog.pg_ts_config"
	" UNION ALL SELECT 'pg_ts_dict'::regclass, oid, 0, dictnamespace, '', ''"
	"  FROM pg_catalog.pg_ts_dict"
	" UNION ALL SELECT 'pg_ts_parser'::regclass, oid, 0, prsnamespace, '', ''"
	"  FROM pg_catalog.pg_ts_parser"
	" UNION ALL SELECT 'pg_ts_template'::regclass, oid, 0, tmplnamespace, '', ''"
	"  FROM pg_catalog.pg_ts_template"
	" UNION ALL SELECT 'pg_extension'::regclass, oid, 0, extnamespace, extversion, ''"
	"  FROM pg_catalog.pg_extension"
	" UNION ALL SELECT 'pg_foreign_data_wrapper'::regclass, oid, 0, NULL, '', ''"
	"  FROM pg_catalog.pg_foreign_data_wrapper"
	" UNION ALL SELECT 'pg_foreign_server'::regclass, oid, 0, NULL, '', ''"
	"  FROM pg_catalog.pg_foreign_server"
	/* pg_user_mapping itself is for superusers only */
	" UNION ALL SELECT 'pg_user_mapping'::regclass, umid, 0, NULL, '', ''"
	"  FROM pg_catalog.pg_user_mappings"
	" UNION ALL SELECT 'pg_statistic_ext'::regclass, oid, 0, stxnamespace, '', ''"
	"  FROM pg_catalog.pg_statistic_ext"
	" UNION ALL SELECT 'pg_event_trigger'::regclass, oid, 0, NULL, '', ''"
	"  FROM pg_catalog.pg_event_trigger"
	" UNION ALL SELECT 'pg_default_acl'::regclass, oid, 0, NULLIF(defaclnamespace, 0), '', ''"
	"  FROM pg_catalog.pg_default_acl"
	" UNION ALL SELECT 'pg_publication'::regclass, oid, 0, NULL, '', ''"
	"  FROM pg_catalog.pg_publication"
	" UNION ALL SELECT 'pg_publication_rel'::regclass, oid, 0, NULL, '', ''"
	"  FROM pg_catalog.pg_publication_rel"
	"%s"
	" UNION ALL SELECT 'pg_subscription'::regclass, s.oid, 0, NULL, '', ''"
	"  FROM pg_catalog.pg_subscription s, pg_catalog.pg_database db"
	"  WHERE db.datname = current_database() AND s.subdbid = db.oid"
	" UNION ALL SELECT 'pg_language'::regclass, oid, 0, NULL, '', ''"
	"  FROM pg_catalog.pg_language"
	" UNION ALL SELECT 'pg_transform'::regclass, oid, 0, NULL, '', ''"
	"  FROM pg_catalog.pg_transform)"
	" SELECT i.type, i.identity, coalesce(o.def, ''), coalesce(o.priv, '')"
	" FROM objs o, pg_catalog.pg_identify_object(o.classid, o.objid, o.objsubid) i"
	" WHERE CASE WHEN o.nspoid IS NULL THEN o.objid >= 16384"
	"  ELSE o.nspoid IN (SELECT oid FROM nsp) END"
	" AND NOT EXISTS (SELECT 1 FROM ext e WHERE e.classid = o.classid AND e.objid = o.objid)"
	" ORDER BY i.type COLLATE \"C\", i.identity COLLATE \"C\"";

static char *
objects_query(int major)
{
	const char *generated = major >= 120000 ? "a.attgenerated = 's'" : "false";
	const char *pubns = major >= 150000 ?
		" UNION ALL SELECT 'pg_publication_namespace'::regclass, oid, 0, NULL, '', ''"
		"  FROM pg_catalog.pg_publication_namespace" : "";
	size_t		size = sizeof(objects_sql) + strlen(generated) + strlen(pubns);
	char	   *sql = malloc(size);

	if (sql != NULL)
		snprintf(sql, size, objects_sql, generated, pubns);
	return sql;
}

static bool
list_objects(PGconn *conn, const char *what, PGresult **res, VerifyObject **objs,
			 size_t *n, SyncError *err)
{
	char	   *sql = objects_query(PQserverVersion(conn));
	const char *params[1] = {state_schema_name()};

	if (sql == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	*res = pgconn_query(conn, sql, 1, params, err);
	free(sql);
	if (*res == NULL)
		return sync_error_context(err, "could not list the schema objects of the %s", what);
	*n = (size_t) PQntuples(*res);
	*objs = calloc(*n + 1, sizeof(**objs));
	if (*objs == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < *n; i++)
	{
		(*objs)[i].type = PQgetvalue(*res, (int) i, 0);
		(*objs)[i].identity = PQgetvalue(*res, (int) i, 1);
		(*objs)[i].definition = PQgetvalue(*res, (int) i, 2);
		(*objs)[i].privileges = PQgetvalue(*res, (int) i, 3);
	}
	/* the server sorted with COLLATE "C"; sort again so the merge never depends on it */
	verify_sort_objects(*objs, *n);
	return true;
}

static bool
verify_schema(PGconn *src, PGconn *tgt, VerifyReport *r, SyncError *err)
{
	PGresult  **res = calloc(2, sizeof(PGresult *));
	const char *params[1] = {state_schema_name()};
	char		v[8];

	if (res == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	r->schema_results = res;
	if (!list_objects(src, "source", &res[0], &r->source_objects, &r->nsource_objects, err) ||
		!list_objects(tgt, "target", &res[1], &r->target_objects, &r->ntarget_objects, err))
		return false;
	if (!verify_compare_objects(r->source_objects, r->nsource_objects,
								r->target_objects, r->ntarget_objects,
								r->source_major / 10000 != r->target_major / 10000,
								&r->diffs, &r->ndiffs))
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	if (!pgconn_query_value(tgt, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace"
							" WHERE nspname = $1)", 1, params, v, sizeof(v), false, err))
		return false;
	r->state_schema_on_target = v[0] == 't';
	r->schema_checked = true;
	return true;
}

/* ---------------------------------------------------------------------
 * Data
 * --------------------------------------------------------------------- */

/* One table to digest, as the source lists it. */
typedef struct DataTable
{
	char	   *name;			/* owned: format('%I.%I') */
	int64_t		est_rows;
	int64_t		est_bytes;		/* its size on the source, for progress */
	char	  **columns;		/* owned, raw names */
	char	  **column_types;	/* owned, format_type text */
	int			ncolumns;
	char	  **keys;			/* owned, primary key columns in key order */
	char	  **key_types;		/* owned, format_type text */
	int			nkeys;
	int			cap;			/* slots in columns, keys and key_types */
	PGresult   *bounds;			/* chunk upper bounds (nkeys text columns), or NULL */
	int			nchunks;
	int			progress;		/* index in the Progress */
} DataTable;

/* One digest to compute: a table or one key range of it. */
typedef struct DataTask
{
	int			table;
	int			chunk;
	VerifyDigest source;
	VerifyDigest target;
	bool		missing;		/* the table is not on the target */
	char	   *error;			/* owned: a digest failed */
} DataTask;

typedef struct DataRun
{
	const VerifyOptions *o;
	DataTable  *tables;
	int			ntables;
	DataTask   *tasks;
	int			ntasks;
	char		src_snapshot[128];
	char		tgt_snapshot[128];
	pthread_mutex_t lock;
	int			next_task;		/* under lock */
	SyncError	fatal;			/* under lock: a worker could not run */
	bool		failed;			/* under lock */
	atomic_int	workers_left;
	Progress	progress;
} DataRun;

static void
data_tables_free(DataTable *t, int n)
{
	for (int i = 0; t != NULL && i < n; i++)
	{
		free(t[i].name);
		for (int c = 0; c < t[i].ncolumns; c++)
		{
			free(t[i].columns[c]);
			free(t[i].column_types[c]);
		}
		for (int k = 0; k < t[i].nkeys; k++)
		{
			free(t[i].keys[k]);
			free(t[i].key_types[k]);
		}
		free(t[i].columns);
		free(t[i].column_types);
		free(t[i].keys);
		free(t[i].key_types);
		PQclear(t[i].bounds);
	}
	free(t);
}

/*
 * Tables with rows of their own: ordinary tables and partitions (relkind
 * r), populated materialized views; not foreign tables (their rows live
 * elsewhere), not extension members, not pgstream's state.  One row per
 * column: name, estimate, column, position in the primary key (0: none),
 * its type.  Largest first, so the long digests start early.
 */
static const char tables_sql[] =
	"WITH t AS (SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS name,"
	" greatest(c.reltuples, 0)::bigint AS est, pg_catalog.pg_relation_size(c.oid) AS bytes"
	" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated))"
	" AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname <> $1"
	" AND n.nspname !~ '^pg_(toast|temp)'"
	" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
	"  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid"
	"  AND d.deptype = 'e'))"
	" SELECT t.name, t.est, a.attname, coalesce(k.ord, 0),"
	" format_type(a.atttypid, a.atttypmod), t.bytes"
	" FROM t LEFT JOIN pg_catalog.pg_attribute a"
	"  ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped"
	" LEFT JOIN LATERAL (SELECT u.ord FROM pg_catalog.pg_index i,"
	"  unnest(i.indkey::int2[]) WITH ORDINALITY u(attnum, ord)"
	"  WHERE i.indrelid = t.oid AND i.indisprimary AND u.attnum = a.attnum) k ON true"
	" ORDER BY t.est DESC, t.name COLLATE \"C\", a.attnum";

static bool
add_column(DataTable *t, PGresult *res, int row)
{
	int			ord = (int) result_int(res, row, 3);

	if (PQgetisnull(res, row, 2))
		return true;			/* a table without columns */
	t->columns[t->ncolumns] = strdup(PQgetvalue(res, row, 2));
	t->column_types[t->ncolumns] = strdup(PQgetvalue(res, row, 4));
	if (t->columns[t->ncolumns] == NULL || t->column_types[t->ncolumns++] == NULL)
		return false;
	if (ord > 0 && ord <= t->cap)
	{
		t->keys[ord - 1] = strdup(PQgetvalue(res, row, 2));
		t->key_types[ord - 1] = strdup(PQgetvalue(res, row, 4));
		if (t->keys[ord - 1] == NULL || t->key_types[ord - 1] == NULL)
			return false;
		if (ord > t->nkeys)
			t->nkeys = ord;
	}
	return true;
}

static bool
load_tables(PGconn *src, DataRun *run, SyncError *err)
{
	const char *params[1] = {state_schema_name()};
	PGresult   *res = pgconn_query(src, tables_sql, 1, params, err);
	int			n;

	if (res == NULL)
		return sync_error_context(err, "could not list the tables of the source");
	n = PQntuples(res);
	run->tables = calloc((size_t) n + 1, sizeof(DataTable));
	if (run->tables == NULL)
		goto oom;
	for (int row = 0; row < n; row++)
	{
		DataTable  *t = run->ntables > 0 ? &run->tables[run->ntables - 1] : NULL;

		if (t == NULL || strcmp(t->name, PQgetvalue(res, row, 0)) != 0)
		{
			int			ncols = 1;

			/* the table's rows are together: one per column */
			while (row + ncols < n &&
				   strcmp(PQgetvalue(res, row + ncols, 0), PQgetvalue(res, row, 0)) == 0)
				ncols++;
			t = &run->tables[run->ntables++];
			t->name = strdup(PQgetvalue(res, row, 0));
			t->est_rows = result_int(res, row, 1);
			t->est_bytes = result_int(res, row, 5);
			t->cap = ncols;
			t->columns = calloc((size_t) ncols, sizeof(char *));
			t->column_types = calloc((size_t) ncols, sizeof(char *));
			t->keys = calloc((size_t) ncols, sizeof(char *));
			t->key_types = calloc((size_t) ncols, sizeof(char *));
			if (t->name == NULL || !t->columns || !t->column_types || !t->keys ||
				!t->key_types)
				goto oom;
		}
		if (!add_column(t, res, row))
			goto oom;
	}
	PQclear(res);
	return true;
oom:
	PQclear(res);
	return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
}

/*
 * Cut a large table with a primary key into ranges of about chunk_rows
 * rows: every chunk_rows-th key in key order on the source (one ordered
 * scan).  The same ranges are read on both sides.
 */
static bool
plan_chunks(PGconn *src, DataRun *run, DataTable *t, SyncError *err)
{
	char	   *buf = NULL;
	size_t		len = 0;
	FILE	   *f;
	char		step[32];
	const char *params[1] = {step};

	t->nchunks = 1;
	for (int k = 0; k < t->nkeys; k++)
		if (t->keys[k] == NULL)
			return true;		/* a key column we did not see: read it whole */
	if (t->nkeys == 0 || run->o->chunk_rows <= 0 || t->est_rows <= run->o->chunk_rows)
		return true;
	f = open_memstream(&buf, &len);
	if (f == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	fputs("SELECT ", f);
	for (int k = 0; k < t->nkeys; k++)
	{
		fputs(k ? ", s." : "s.", f);
		put_ident(f, t->keys[k]);
		fputs("::text", f);
	}
	fputs(" FROM (SELECT ", f);
	for (int k = 0; k < t->nkeys; k++)
	{
		fputs(k ? ", x." : "x.", f);
		put_ident(f, t->keys[k]);
	}
	fputs(", row_number() OVER (ORDER BY ", f);
	for (int k = 0; k < t->nkeys; k++)
	{
		fputs(k ? ", x." : "x.", f);
		put_ident(f, t->keys[k]);
	}
	/* no bound at the last row: the last range would be empty */
	fprintf(f, ") AS rn, count(*) OVER () AS total FROM ONLY %s x) s"
			" WHERE s.rn %% $1::bigint = 0 AND s.rn < s.total ORDER BY s.rn", t->name);
	buf = memstream_done(f, &buf);
	if (buf == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	snprintf(step, sizeof(step), "%lld", (long long) run->o->chunk_rows);
	t->bounds = pgconn_query(src, buf, 1, params, err);
	free(buf);
	if (t->bounds == NULL)
		return sync_error_context(err, "could not cut %s into key ranges", t->name);
	t->nchunks = PQntuples(t->bounds) + 1;
	return true;
}

static bool
plan_tasks(PGconn *src, DataRun *run, SyncError *err)
{
	int			ntasks = 0,
				k = 0;

	for (int i = 0; i < run->ntables; i++)
	{
		if (!plan_chunks(src, run, &run->tables[i], err))
			return false;
		ntasks += run->tables[i].nchunks;
		run->tables[i].progress =
			progress_add_table(&run->progress, run->tables[i].name,
							   run->tables[i].est_rows, run->tables[i].est_bytes,
							   run->tables[i].nchunks);
	}
	run->tasks = calloc((size_t) ntasks + 1, sizeof(DataTask));
	if (run->tasks == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	for (int i = 0; i < run->ntables; i++)
		for (int c = 0; c < run->tables[i].nchunks; c++)
		{
			run->tasks[k].table = i;
			run->tasks[k++].chunk = c;
		}
	run->ntasks = ntasks;
	return true;
}

/* Start the snapshot every session of one side reads; its id into buf. */
static bool
open_snapshot(PGconn *conn, char *buf, size_t size, SyncError *err)
{
	return pgconn_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err) &&
		pgconn_query_value(conn, "SELECT pg_catalog.pg_export_snapshot()", 0, NULL,
						   buf, size, false, err);
}

static bool
join_snapshot(PGconn *conn, const char *snapshot, SyncError *err)
{
	char		sql[256];

	/* the id is the server's own ("00000003-0000001B-1"): no quoting needed */
	snprintf(sql, sizeof(sql), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
			 " SET TRANSACTION SNAPSHOT '%s'", snapshot);
	return pgconn_exec(conn, sql, err);
}

/* The parameters of a chunk: its lower bound's keys, then its upper bound's. */
static int
chunk_params(const DataTable *t, int chunk, const char **params)
{
	int			n = 0;

	if (chunk > 0)
		for (int k = 0; k < t->nkeys; k++)
			params[n++] = PQgetvalue(t->bounds, chunk - 1, k);
	if (chunk < t->nchunks - 1)
		for (int k = 0; k < t->nkeys; k++)
			params[n++] = PQgetvalue(t->bounds, chunk, k);
	return n;
}

/*
 * Run a digest under a savepoint, so that a failure (a missing column on
 * the target) leaves the session's snapshot usable.  False with err filled
 * if the digest failed.
 */
static bool
run_digest(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   VerifyDigest *d, SyncError *err)
{
	PGresult   *res;
	SyncError	ignored;

	if (!pgconn_exec(conn, "SAVEPOINT verify_digest", err))
		return false;
	res = pgconn_query(conn, sql, nparams, params, err);
	if (res == NULL)
	{
		pgconn_exec(conn, "ROLLBACK TO SAVEPOINT verify_digest", &ignored);
		return false;
	}
	d->rows = result_int(res, 0, 0);
	d->sum[0] = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	d->sum[1] = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	return pgconn_exec(conn, "RELEASE SAVEPOINT verify_digest", err);
}

/* One task on both sides; false only when a session is unusable. */
static bool
run_task(PGconn *src, PGconn *tgt, DataRun *run, DataTask *task, SyncError *err)
{
	const DataTable *t = &run->tables[task->table];
	const char *params[2 * 32];	/* INDEX_MAX_KEYS key columns, two bounds */
	const char *name[1] = {t->name};
	int			nparams = 0;
	char	   *where = verify_chunk_where((const char *const *) t->keys,
										   (const char *const *) t->key_types, t->nkeys,
										   task->chunk, t->nchunks, &nparams);
	char	   *sql = verify_digest_sql(t->name, (const char *const *) t->columns,
										(const char *const *) t->column_types,
										t->ncolumns, where);
	char		exists[8];
	bool		ok = true;
	SyncError	e;

	free(where);
	if (sql == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	chunk_params(t, task->chunk, params);
	if (!run_digest(src, sql, nparams, params, &task->source, err))
	{
		/* the source is where the table list came from: a failure is fatal */
		free(sql);
		return sync_error_context(err, "could not digest %s on the source", t->name);
	}
	if (!pgconn_query_value(tgt, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", 1, name,
							exists, sizeof(exists), false, err))
		ok = false;
	else if (exists[0] != 't')
		task->missing = true;
	else if (!run_digest(tgt, sql, nparams, params, &task->target, &e))
	{
		if (PQtransactionStatus(tgt) != PQTRANS_INTRANS)
		{
			*err = e;
			ok = false;
		}
		else
			task->error = strdup(e.message);
	}
	free(sql);
	return ok;
}

static void *
worker_main(void *arg)
{
	DataRun    *run = arg;
	PgconnOptions co = {PGCONN_SQL, run->o->command, true, VERIFY_SESSION_OPTIONS};
	SyncError	err;
	PGconn	   *src = NULL,
			   *tgt = NULL;

	sync_error_clear(&err);
	src = pgconn_connect(run->o->source, &co, "source", &err);
	tgt = src ? pgconn_connect(run->o->target, &co, "target", &err) : NULL;
	if (tgt == NULL || !join_snapshot(src, run->src_snapshot, &err) ||
		!join_snapshot(tgt, run->tgt_snapshot, &err))
		goto fail;
	for (;;)
	{
		int			i;

		pthread_mutex_lock(&run->lock);
		i = run->failed || cli_stop_requested ? run->ntasks : run->next_task++;
		pthread_mutex_unlock(&run->lock);
		if (i >= run->ntasks)
			break;
		/* verify.digest: a worker is about to digest one table or chunk */
		FAILPOINT("verify.digest");
		if (!run_task(src, tgt, run, &run->tasks[i], &err))
			goto fail;
		/* bytes: the chunk's share of the table's size on the source */
		progress_add(&run->progress, run->tables[run->tasks[i].table].progress,
					 run->tasks[i].source.rows,
					 run->tables[run->tasks[i].table].est_bytes /
					 run->tables[run->tasks[i].table].nchunks);
		progress_part_done(&run->progress, run->tables[run->tasks[i].table].progress, 0, 0);
	}
	goto done;
fail:
	pthread_mutex_lock(&run->lock);
	if (!run->failed)
		run->fatal = err;
	run->failed = true;
	pthread_mutex_unlock(&run->lock);
done:
	pgconn_close(src);
	pgconn_close(tgt);
	atomic_fetch_sub(&run->workers_left, 1);
	return NULL;
}

/* Add up each table's chunks and decide its status. */
static bool
collect_results(DataRun *run, VerifyReport *r)
{
	r->tables = calloc((size_t) run->ntables + 1, sizeof(VerifyTable));
	if (r->tables == NULL)
		return false;
	r->ntables = run->ntables;
	for (int i = 0; i < run->ntasks; i++)
	{
		const DataTask *task = &run->tasks[i];
		VerifyTable *t = &r->tables[task->table];

		if (t->name == NULL && (t->name = strdup(run->tables[task->table].name)) == NULL)
			return false;
		t->nchunks = run->tables[task->table].nchunks;
		verify_digest_add(&t->source, &task->source);
		verify_digest_add(&t->target, &task->target);
		if (task->missing)
			t->status = VERIFY_TABLE_MISSING;
		else if (task->error != NULL && t->error == NULL)
		{
			t->status = VERIFY_TABLE_ERROR;
			if ((t->error = strdup(task->error)) == NULL)
				return false;
		}
		if (!verify_digest_equal(&task->source, &task->target))
			t->chunks_differing++;
	}
	for (int i = 0; i < r->ntables; i++)
		if (r->tables[i].status == VERIFY_TABLE_MATCH &&
			!verify_digest_equal(&r->tables[i].source, &r->tables[i].target))
			r->tables[i].status = VERIFY_TABLE_DIFFERENT;
	return true;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static bool
run_workers(DataRun *run, SyncError *err)
{
	int			n = run->o->jobs < 1 ? 1 : run->o->jobs;
	pthread_t  *threads = calloc((size_t) n, sizeof(pthread_t));
	int			started = 0;

	if (threads == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	if (n > run->ntasks)
		n = run->ntasks > 0 ? run->ntasks : 1;
	atomic_store(&run->workers_left, n);
	for (; started < n; started++)
		if (pthread_create(&threads[started], NULL, worker_main, run) != 0)
		{
			atomic_fetch_sub(&run->workers_left, n - started);
			pthread_mutex_lock(&run->lock);
			run->failed = true;
			sync_error_set(&run->fatal, SYNC_ERR_INTERNAL, "could not start a worker thread");
			pthread_mutex_unlock(&run->lock);
			break;
		}
	while (atomic_load(&run->workers_left) > 0)
		progress_tick(&run->progress, 200);
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	progress_finish(&run->progress);
	if (run->failed)
		return *err = run->fatal, false;
	if (cli_stop_requested)
		return sync_error_set(err, SYNC_ERR_PRECONDITION, "interrupted");
	return true;
}

static bool
verify_data(PGconn *src, PGconn *tgt, const VerifyOptions *o, VerifyReport *r,
			SyncError *err)
{
	DataRun		run;
	double		t0 = now_s();
	bool		ok;

	memset(&run, 0, sizeof(run));
	run.o = o;
	pthread_mutex_init(&run.lock, NULL);
	progress_init(&run.progress, "verify", o->quiet);
	run.progress.done_verb = "read";
	ok = open_snapshot(src, run.src_snapshot, sizeof(run.src_snapshot), err) &&
		open_snapshot(tgt, run.tgt_snapshot, sizeof(run.tgt_snapshot), err) &&
		load_tables(src, &run, err) && plan_tasks(src, &run, err) &&
		run_workers(&run, err);
	if (ok && !collect_results(&run, r))
		ok = sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	r->data_checked = ok;
	r->data_seconds = now_s() - t0;
	for (int i = 0; run.tasks != NULL && i < run.ntasks; i++)
		free(run.tasks[i].error);
	free(run.tasks);
	data_tables_free(run.tables, run.ntables);
	progress_term(&run.progress);
	pthread_mutex_destroy(&run.lock);
	return ok;
}

/* ---------------------------------------------------------------------
 * A run
 * --------------------------------------------------------------------- */

bool
verify_run(const VerifyOptions *o, VerifyReport *r, SyncError *err)
{
	PgconnOptions co = {PGCONN_SQL, o->command, true, VERIFY_SESSION_OPTIONS};
	PGconn	   *src,
			   *tgt = NULL;
	bool		ok = false;

	memset(r, 0, sizeof(*r));
	src = pgconn_connect(o->source, &co, "source", err);
	if (src != NULL)
		tgt = pgconn_connect(o->target, &co, "target", err);
	if (tgt != NULL)
	{
		r->source_major = PQserverVersion(src);
		r->target_major = PQserverVersion(tgt);
		ok = (!o->schema || verify_schema(src, tgt, r, err)) &&
			(!o->data || verify_data(src, tgt, o, r, err));
	}
	pgconn_close(src);
	pgconn_close(tgt);
	return ok;
}

size_t
verify_schema_failures(const VerifyReport *r)
{
	size_t		n = 0;

	for (size_t i = 0; i < r->ndiffs; i++)
		if (r->diffs[i].verdict == VERIFY_FAIL)
			n++;
	return n;
}

int
verify_table_failures(const VerifyReport *r)
{
	int			n = 0;

	for (int i = 0; i < r->ntables; i++)
		if (r->tables[i].status != VERIFY_TABLE_MATCH)
			n++;
	return n;
}

bool
verify_report_ok(const VerifyReport *r)
{
	return verify_schema_failures(r) == 0 && verify_table_failures(r) == 0;
}

void
verify_report_term(VerifyReport *r)
{
	PGresult  **res = r->schema_results;

	if (res != NULL)
	{
		PQclear(res[0]);
		PQclear(res[1]);
		free(res);
	}
	free(r->source_objects);
	free(r->target_objects);
	free(r->diffs);
	for (int i = 0; r->tables != NULL && i < r->ntables; i++)
	{
		free(r->tables[i].name);
		free(r->tables[i].error);
	}
	free(r->tables);
	memset(r, 0, sizeof(*r));
}

char *
verify_table_describe(const VerifyTable *t, char *buf, size_t size)
{
	switch (t->status)
	{
		case VERIFY_TABLE_MATCH:
			snprintf(buf, size, "identical: %lld rows", (long long) t->source.rows);
			break;
		case VERIFY_TABLE_MISSING:
			snprintf(buf, size, "missing on the target (%lld rows on the source)",
					 (long long) t->source.rows);
			break;
		case VERIFY_TABLE_ERROR:
			snprintf(buf, size, "could not be read on the target: %s", t->error);
			break;
		case VERIFY_TABLE_DIFFERENT:
			if (t->source.rows != t->target.rows)
				snprintf(buf, size, "row counts differ: %lld on the source, %lld on the target",
						 (long long) t->source.rows, (long long) t->target.rows);
			else
				snprintf(buf, size, "contents differ: %lld rows on both sides, other values "
						 "(%d of %d key range(s) differ)", (long long) t->source.rows,
						 t->chunks_differing, t->nchunks);
			break;
	}
	return buf;
}

bool
verify_cutover_data(const char *source, const char *target, int *ntables, SyncError *err)
{
	VerifyOptions o = {source, target, false, true, 2, 1000000, false, "pgstream cutover"};
	VerifyReport r;
	char		names[400] = "";
	char		line[600];

	*ntables = 0;
	if (!verify_run(&o, &r, err))
	{
		verify_report_term(&r);
		return sync_error_context(err, "could not compare table contents (--verify)");
	}
	for (int i = 0; i < r.ntables; i++)
	{
		const VerifyTable *t = &r.tables[i];
		size_t		len = strlen(names);

		if (t->status == VERIFY_TABLE_MATCH)
		{
			(*ntables)++;
			continue;
		}
		log_error("table contents differ for %s: %s", t->name,
				  verify_table_describe(t, line, sizeof(line)));
		if (len + strlen(t->name) + 8 < sizeof(names))
			snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "", t->name);
		else if (len + 5 < sizeof(names) && strcmp(names + len - 3, "...") != 0)
			snprintf(names + len, sizeof(names) - len, ", ...");
	}
	verify_report_term(&r);
	if (names[0])
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "table contents differ between source and target (--verify): "
							  "%s; the migration state is kept for inspection", names);
	log_info("table contents identical for %d tables (--verify)", *ntables);
	return true;
}
