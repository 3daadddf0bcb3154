/*
 * apply/sqlbuild.c -- SQL text of the apply writer's statements (see
 * sqlbuild.h).
 */
#include "apply/sqlbuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sqlstr_param(StrBuf *s, int n)
{
	char		buf[16];

	snprintf(buf, sizeof(buf), "$%d", n);
	strbuf_add(s, buf);
}

char *
sql_quote_ident(const char *name)
{
	size_t		n = 2;
	char	   *out,
			   *o;

	for (const char *c = name; *c; c++)
		n += *c == '"' ? 2 : 1;
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	o = out;
	*o++ = '"';
	for (const char *c = name; *c; c++)
	{
		if (*c == '"')
			*o++ = '"';
		*o++ = *c;
	}
	*o++ = '"';
	*o = '\0';
	return out;
}

char *
sql_quote_qualified(const char *nspname, const char *relname)
{
	char	   *n = sql_quote_ident(nspname);
	char	   *r = sql_quote_ident(relname);
	char	   *out = NULL;
	size_t		len;

	if (n != NULL && r != NULL)
	{
		len = strlen(n) + strlen(r) + 2;
		out = malloc(len);
		if (out != NULL)
			snprintf(out, len, "%s.%s", n, r);
	}
	free(n);
	free(r);
	return out;
}

void
sql_add_target(StrBuf *s, const SqlRel *r)
{
	if (!r->partitioned)
		strbuf_add(s, "ONLY ");
	strbuf_add(s, r->qualified);
}

void
sql_build_insert(const SqlRel *r, const bool *mask, StrBuf *sql, StrBuf *cols)
{
	StrBuf		vals = {0};
	int			n = 0;

	for (int i = 0; i < r->natts; i++)
	{
		if (!mask[i])
			continue;
		strbuf_add(cols, n ? ", " : "");
		strbuf_add(cols, r->cols[i]);
		strbuf_add(&vals, n ? ", " : "");
		sqlstr_param(&vals, ++n);
	}
	strbuf_add(sql, "INSERT INTO ");
	strbuf_add(sql, r->qualified);
	if (n == 0)
		strbuf_add(sql, " DEFAULT VALUES");
	else
	{
		strbuf_add(sql, " (");
		strbuf_add(sql, cols->p);
		strbuf_add(sql, ") OVERRIDING SYSTEM VALUE VALUES (");
		strbuf_add(sql, vals.p);
		strbuf_add(sql, ")");
	}
	sql->oom |= vals.oom || cols->oom;
	free(vals.p);
}

void
sql_build_copy(const SqlRel *r, const char *cols, StrBuf *sql)
{
	strbuf_add(sql, "COPY ");
	strbuf_add(sql, r->qualified);
	strbuf_add(sql, " (");
	strbuf_add(sql, cols);
	strbuf_add(sql, ") FROM STDIN");
}

/*
 * The text form of a column and of a parameter read as the column's type,
 * both written by the target's output function (the parameter is parsed
 * on the target first, so a value written by another server version, such
 * as a float's digits, compares by what it is): equal exactly when the
 * values are identical, as "=" is not for every type (0 and -0, 1.0 and
 * 1.00, 'a' and 'A' in citext, '1 day' and '24 hours').  Compared
 * bytewise ("C"), NULL-safe: a cast of NULL is NULL.
 */
static void
add_text_form_match(StrBuf *sql, const char *col, const char *type, int param)
{
	strbuf_add(sql, "CAST(");
	strbuf_add(sql, col);
	strbuf_add(sql, " AS pg_catalog.text) COLLATE pg_catalog.\"C\" IS NOT DISTINCT FROM CAST(");
	sqlstr_param(sql, param);
	strbuf_add(sql, "::");
	strbuf_add(sql, type);
	strbuf_add(sql, " AS pg_catalog.text)");
}

void
sql_add_full_match(StrBuf *sql, const char *col, const char *eq_op, const char *type,
				   int param)
{
	if (eq_op == NULL)
	{
		add_text_form_match(sql, col, type, param);
		return;
	}
	/* the operator first, which an index on the column can serve */
	strbuf_add(sql, "(");
	strbuf_add(sql, col);
	strbuf_add(sql, " ");
	strbuf_add(sql, eq_op);
	strbuf_add(sql, " ");
	sqlstr_param(sql, param);
	strbuf_add(sql, "::");
	strbuf_add(sql, type);
	strbuf_add(sql, " AND ");
	add_text_form_match(sql, col, type, param);
	strbuf_add(sql, " OR ");
	strbuf_add(sql, col);
	strbuf_add(sql, " IS NULL AND ");
	sqlstr_param(sql, param);
	strbuf_add(sql, "::");
	strbuf_add(sql, type);
	strbuf_add(sql, " IS NULL)");
}

void
sql_build_where(const SqlRel *r, const bool *keymask, bool full, int first_param,
				StrBuf *sql)
{
	int			n = first_param,
				nkeys = 0;

	strbuf_add(sql, full ? " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM " : " WHERE ");
	if (full)
	{
		/* the row of this relation, never an inheritance child's twin */
		sql_add_target(sql, r);
	}
	for (int i = 0; i < r->natts; i++)
	{
		if (!keymask[i])
			continue;
		/*
		 * With FULL and no column at all (a table without columns, or whose
		 * only columns are generated, which are not published), every row is
		 * identical to every other: any one of them is the row.
		 */
		strbuf_add(sql, nkeys++ ? " AND " : full ? " WHERE " : "");
		if (full && (r->text_compare[i] || (r->eq_op != NULL && r->eq_op[i] != NULL)))
		{
			sql_add_full_match(sql, r->cols[i],
							   r->text_compare[i] ? NULL : r->eq_op[i], r->cast_type[i], n++);
			continue;
		}
		strbuf_add(sql, r->cols[i]);
		if (!full && r->cast_type != NULL && r->cast_type[i] != NULL)
		{
			/*
			 * A key of a type not built in, or whose "=" lives outside
			 * pg_catalog (an extension's ltree, hstore): its operator by
			 * schema, the parameter typed by name.  The key's unique index
			 * uses that "=", so it finds the one row.
			 */
			strbuf_add(sql, " ");
			strbuf_add(sql, r->eq_op != NULL && r->eq_op[i] != NULL ? r->eq_op[i] :
					   "OPERATOR(pg_catalog.=)");
			strbuf_add(sql, " ");
			sqlstr_param(sql, n++);
			strbuf_add(sql, "::");
			strbuf_add(sql, r->cast_type[i]);
			continue;
		}
		strbuf_add(sql, full ? " IS NOT DISTINCT FROM " : " = ");
		sqlstr_param(sql, n++);
	}
	strbuf_add(sql, full ? " LIMIT 1)" : "");
}

void
sql_build_update(const SqlRel *r, const bool *setmask, const bool *keymask, bool full,
				 StrBuf *sql)
{
	int			n = 0;

	strbuf_add(sql, "UPDATE ");
	sql_add_target(sql, r);
	strbuf_add(sql, " SET ");
	for (int i = 0; i < r->natts; i++)
	{
		if (!setmask[i])
			continue;
		strbuf_add(sql, n ? ", " : "");
		strbuf_add(sql, r->cols[i]);
		strbuf_add(sql, " = ");
		sqlstr_param(sql, ++n);
	}
	if (n == 0)
	{
		/* nothing can be set (all unchanged TOAST or identity ALWAYS): only
		 * check that exactly one row matches */
		sql->len = 0;
		if (sql->p != NULL)
			sql->p[0] = '\0';
		strbuf_add(sql, "SELECT 1 FROM ");
		sql_add_target(sql, r);
	}
	sql_build_where(r, keymask, full, n + 1, sql);
}

void
sql_build_delete(const SqlRel *r, const bool *keymask, bool full, StrBuf *sql)
{
	strbuf_add(sql, "DELETE FROM ");
	sql_add_target(sql, r);
	sql_build_where(r, keymask, full, 1, sql);
}

void
sql_build_truncate(const SqlRel *const *rels, int nrels, uint8_t flags, StrBuf *sql)
{
	strbuf_add(sql, "TRUNCATE ");
	for (int i = 0; i < nrels; i++)
	{
		strbuf_add(sql, i ? ", " : "");
		sql_add_target(sql, rels[i]);
	}
	if (flags & PGOUTPUT_TRUNCATE_RESTART_IDENTITY)
		strbuf_add(sql, " RESTART IDENTITY");
}

void
sql_make_key(StrBuf *key, char op, const SqlRel *r, const bool *mask_a, const bool *mask_b)
{
	char		buf[64];

	snprintf(buf, sizeof(buf), "%c:%u:%llu:", op, r->relid, (unsigned long long) r->version);
	strbuf_add(key, buf);
	for (int i = 0; i < r->natts; i++)
		strbuf_add(key, mask_a[i] ? (mask_b && mask_b[i] ? "3" : "1") : (mask_b && mask_b[i] ? "2" : "0"));
}

void
sql_copy_escape_bytes(StrBuf *s, const uint8_t *p, size_t len)
{
	char		chunk[512];
	size_t		n = 0;

	for (size_t i = 0; i < len; i++)
	{
		char		c = (char) p[i];
		const char *esc = c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r" :
			c == '\t' ? "\\t" : NULL;

		if (n + 3 >= sizeof(chunk))
		{
			chunk[n] = '\0';
			strbuf_add(s, chunk);
			n = 0;
		}
		if (esc)
		{
			memcpy(chunk + n, esc, 2);
			n += 2;
		}
		else
			chunk[n++] = c;
	}
	chunk[n] = '\0';
	strbuf_add(s, chunk);
}

void
sql_copy_escape(StrBuf *s, const TupleValue *v)
{
	if (v->kind == TUPLE_VALUE_NULL)
		strbuf_add(s, "\\N");
	else
		sql_copy_escape_bytes(s, v->data.ptr, v->data.len);
}
