/*
 * apply/sqlbuild.c -- SQL text of the apply writer's statements (see
 * sqlbuild.h).
 */
#include "apply/sqlbuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sqlstr_add(SqlStr *s, const char *t)
{
	size_t		n = strlen(t);

	if (s->oom)
		return;
	if (s->len + n + 1 > s->cap)
	{
		size_t		cap = s->cap ? s->cap * 2 : 256;
		char	   *np;

		while (cap < s->len + n + 1)
			cap *= 2;
		np = realloc(s->p, cap);
		if (np == NULL)
		{
			s->oom = true;
			return;
		}
		s->p = np;
		s->cap = cap;
	}
	memcpy(s->p + s->len, t, n + 1);
	s->len += n;
}

void
sqlstr_param(SqlStr *s, int n)
{
	char		buf[16];

	snprintf(buf, sizeof(buf), "$%d", n);
	sqlstr_add(s, buf);
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
sql_add_target(SqlStr *s, const SqlRel *r)
{
	if (!r->partitioned)
		sqlstr_add(s, "ONLY ");
	sqlstr_add(s, r->qualified);
}

void
sql_build_insert(const SqlRel *r, const bool *mask, SqlStr *sql, SqlStr *cols)
{
	SqlStr		vals = {0};
	int			n = 0;

	for (int i = 0; i < r->natts; i++)
	{
		if (!mask[i])
			continue;
		sqlstr_add(cols, n ? ", " : "");
		sqlstr_add(cols, r->cols[i]);
		sqlstr_add(&vals, n ? ", " : "");
		sqlstr_param(&vals, ++n);
	}
	sqlstr_add(sql, "INSERT INTO ");
	sqlstr_add(sql, r->qualified);
	if (n == 0)
		sqlstr_add(sql, " DEFAULT VALUES");
	else
	{
		sqlstr_add(sql, " (");
		sqlstr_add(sql, cols->p);
		sqlstr_add(sql, ") OVERRIDING SYSTEM VALUE VALUES (");
		sqlstr_add(sql, vals.p);
		sqlstr_add(sql, ")");
	}
	sql->oom |= vals.oom || cols->oom;
	free(vals.p);
}

void
sql_build_copy(const SqlRel *r, const char *cols, SqlStr *sql)
{
	sqlstr_add(sql, "COPY ");
	sqlstr_add(sql, r->qualified);
	sqlstr_add(sql, " (");
	sqlstr_add(sql, cols);
	sqlstr_add(sql, ") FROM STDIN");
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
add_text_form_match(SqlStr *sql, const char *col, const char *type, int param)
{
	sqlstr_add(sql, "CAST(");
	sqlstr_add(sql, col);
	sqlstr_add(sql, " AS pg_catalog.text) COLLATE pg_catalog.\"C\" IS NOT DISTINCT FROM CAST(");
	sqlstr_param(sql, param);
	sqlstr_add(sql, "::");
	sqlstr_add(sql, type);
	sqlstr_add(sql, " AS pg_catalog.text)");
}

void
sql_add_full_match(SqlStr *sql, const char *col, const char *eq_op, const char *type,
				   int param)
{
	if (eq_op == NULL)
	{
		add_text_form_match(sql, col, type, param);
		return;
	}
	/* the operator first, which an index on the column can serve */
	sqlstr_add(sql, "(");
	sqlstr_add(sql, col);
	sqlstr_add(sql, " ");
	sqlstr_add(sql, eq_op);
	sqlstr_add(sql, " ");
	sqlstr_param(sql, param);
	sqlstr_add(sql, "::");
	sqlstr_add(sql, type);
	sqlstr_add(sql, " AND ");
	add_text_form_match(sql, col, type, param);
	sqlstr_add(sql, " OR ");
	sqlstr_add(sql, col);
	sqlstr_add(sql, " IS NULL AND ");
	sqlstr_param(sql, param);
	sqlstr_add(sql, "::");
	sqlstr_add(sql, type);
	sqlstr_add(sql, " IS NULL)");
}

void
sql_build_where(const SqlRel *r, const bool *keymask, bool full, int first_param,
				SqlStr *sql)
{
	int			n = first_param,
				nkeys = 0;

	sqlstr_add(sql, full ? " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM " : " WHERE ");
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
		sqlstr_add(sql, nkeys++ ? " AND " : full ? " WHERE " : "");
		if (full && (r->text_compare[i] || (r->eq_op != NULL && r->eq_op[i] != NULL)))
		{
			sql_add_full_match(sql, r->cols[i],
							   r->text_compare[i] ? NULL : r->eq_op[i], r->cast_type[i], n++);
			continue;
		}
		sqlstr_add(sql, r->cols[i]);
		if (!full && r->cast_type != NULL && r->cast_type[i] != NULL)
		{
			/*
			 * A key of a type not built in, or whose "=" lives outside
			 * pg_catalog (an extension's ltree, hstore): its operator by
			 * schema, the parameter typed by name.  The key's unique index
			 * uses that "=", so it finds the one row.
			 */
			sqlstr_add(sql, " ");
			sqlstr_add(sql, r->eq_op != NULL && r->eq_op[i] != NULL ? r->eq_op[i] :
					   "OPERATOR(pg_catalog.=)");
			sqlstr_add(sql, " ");
			sqlstr_param(sql, n++);
			sqlstr_add(sql, "::");
			sqlstr_add(sql, r->cast_type[i]);
			continue;
		}
		sqlstr_add(sql, full ? " IS NOT DISTINCT FROM " : " = ");
		sqlstr_param(sql, n++);
	}
	sqlstr_add(sql, full ? " LIMIT 1)" : "");
}

void
sql_build_update(const SqlRel *r, const bool *setmask, const bool *keymask, bool full,
				 SqlStr *sql)
{
	int			n = 0;

	sqlstr_add(sql, "UPDATE ");
	sql_add_target(sql, r);
	sqlstr_add(sql, " SET ");
	for (int i = 0; i < r->natts; i++)
	{
		if (!setmask[i])
			continue;
		sqlstr_add(sql, n ? ", " : "");
		sqlstr_add(sql, r->cols[i]);
		sqlstr_add(sql, " = ");
		sqlstr_param(sql, ++n);
	}
	if (n == 0)
	{
		/* nothing can be set (all unchanged TOAST or identity ALWAYS): only
		 * check that exactly one row matches */
		sql->len = 0;
		if (sql->p != NULL)
			sql->p[0] = '\0';
		sqlstr_add(sql, "SELECT 1 FROM ");
		sql_add_target(sql, r);
	}
	sql_build_where(r, keymask, full, n + 1, sql);
}

void
sql_build_delete(const SqlRel *r, const bool *keymask, bool full, SqlStr *sql)
{
	sqlstr_add(sql, "DELETE FROM ");
	sql_add_target(sql, r);
	sql_build_where(r, keymask, full, 1, sql);
}

void
sql_build_truncate(const SqlRel *const *rels, int nrels, uint8_t flags, SqlStr *sql)
{
	sqlstr_add(sql, "TRUNCATE ");
	for (int i = 0; i < nrels; i++)
	{
		sqlstr_add(sql, i ? ", " : "");
		sql_add_target(sql, rels[i]);
	}
	if (flags & PGOUTPUT_TRUNCATE_RESTART_IDENTITY)
		sqlstr_add(sql, " RESTART IDENTITY");
}

void
sql_make_key(SqlStr *key, char op, const SqlRel *r, const bool *mask_a, const bool *mask_b)
{
	char		buf[64];

	snprintf(buf, sizeof(buf), "%c:%u:%llu:", op, r->relid, (unsigned long long) r->version);
	sqlstr_add(key, buf);
	for (int i = 0; i < r->natts; i++)
		sqlstr_add(key, mask_a[i] ? (mask_b && mask_b[i] ? "3" : "1") : (mask_b && mask_b[i] ? "2" : "0"));
}

void
sql_copy_escape_bytes(SqlStr *s, const uint8_t *p, size_t len)
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
			sqlstr_add(s, chunk);
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
	sqlstr_add(s, chunk);
}

void
sql_copy_escape(SqlStr *s, const TupleValue *v)
{
	if (v->kind == TUPLE_VALUE_NULL)
		sqlstr_add(s, "\\N");
	else
		sql_copy_escape_bytes(s, v->data.ptr, v->data.len);
}
