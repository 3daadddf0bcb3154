/*
 * apply/sqlbuild.h -- the SQL text of the apply writer's statements, built
 * from what the target says about a relation.  Pure: no connection, no I/O,
 * so every shape is unit-tested (tests/unit/test_writer_sql.c).
 *
 * Each statement touches exactly the relation a pgoutput message names, as
 * a native subscription's apply worker does (worker.c): an inheritance
 * parent is written with ONLY, so that its children, which the source
 * reports on their own, are never reached through it.  A partitioned table
 * (relkind 'p') has no rows of its own and is written without ONLY, so that
 * the statement routes to its partitions: UPDATE/DELETE ONLY of it matches
 * nothing, and TRUNCATE ONLY of it is an error.  INSERT and COPY FROM never
 * recurse, and route through a partitioned table by themselves.
 */
#ifndef PGSTREAM_APPLY_SQLBUILD_H
#define PGSTREAM_APPLY_SQLBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/lsn.h"
#include "protocol/pgoutput.h"
#include "protocol/strbuf.h"

/* "$n" */
void		sqlstr_param(StrBuf *s, int n);

/*
 * A quoted identifier: always in double quotes, embedded quotes doubled
 * (what PQescapeIdentifier returns for a UTF-8 session, which every
 * pgstream session is: no byte of a multibyte UTF-8 character is '"').
 * malloc'd; NULL on out-of-memory.
 */
char	   *sql_quote_ident(const char *name);

/* "nspname"."relname", malloc'd; NULL on out-of-memory. */
char	   *sql_quote_qualified(const char *nspname, const char *relname);

/* The target relation a statement is built for (names already quoted). */
typedef struct SqlRel
{
	Oid			relid;			/* remote relid (statement keys) */
	uint64_t	version;		/* RemoteRelation.version (statement keys) */
	char	   *qualified;		/* quoted schema.table */
	bool		partitioned;	/* relkind 'p' on the target: route, no ONLY */
	int			natts;
	char	  **cols;			/* quoted name per remote column */
	/*
	 * How FULL matching compares each column (see sql_add_full_match):
	 * eq_op and cast_type NULL: plain IS NOT DISTINCT FROM (a built-in type
	 * whose "=" is identity); text_compare: by text form alone (no "=", or
	 * one that cannot be trusted, as a composite's); otherwise eq_op
	 * ("OPERATOR(schema.=)") and the text form.  cast_type: the column's
	 * type, schema-qualified, without a type modifier.
	 */
	bool	   *text_compare;
	char	  **eq_op;
	char	  **cast_type;
} SqlRel;

/*
 * The relation as the target of UPDATE, DELETE, TRUNCATE or a FULL
 * identity's row lookup: "ONLY schema.table", or "schema.table" for a
 * partitioned table.
 */
void		sql_add_target(StrBuf *s, const SqlRel *r);

/*
 * INSERT of the columns in mask (DEFAULT VALUES when none), parameters
 * $1.. in column order, OVERRIDING SYSTEM VALUE for identity ALWAYS
 * columns.  cols receives the quoted column list (for COPY).
 */
void		sql_build_insert(const SqlRel *r, const bool *mask, StrBuf *sql, StrBuf *cols);

/* "COPY schema.table (cols) FROM STDIN" */
void		sql_build_copy(const SqlRel *r, const char *cols, StrBuf *sql);

/*
 * " WHERE ..." for the columns in keymask, parameters numbered from
 * first_param.  Key columns compare with "=" ("col OP $n::type" for a
 * column with cast_type: its operator by schema, or pg_catalog's for a
 * composite).  With full (replica identity
 * FULL) every column compares NULL-safely and exactly (sql_add_full_match
 * for those with text_compare or eq_op) and one row is picked by
 * (tableoid, ctid), looked up in the
 * same relation the statement targets (ONLY for a table).  With full and
 * no column in keymask (a table without published columns: all its rows
 * are alike), that row is any one of the relation's.
 */
void		sql_build_where(const SqlRel *r, const bool *keymask, bool full,
							int first_param, StrBuf *sql);

/*
 * One column's condition in a FULL match, parameter $param: with eq_op,
 * "(col OP $n::type AND <text forms equal> OR col IS NULL AND $n::type IS
 * NULL)"; without, the text forms alone.  The text forms are the column's
 * and the parameter's (parsed as type on the target) cast to text,
 * compared bytewise and NULL-safely: identical values, where "=" may call
 * different values equal (0 and -0, 1.0 and 1.00, citext's 'a' and 'A'),
 * and the only exact match of a type without "=" (point, json, xml, a
 * composite with such a field).
 */
void		sql_add_full_match(StrBuf *sql, const char *col, const char *eq_op,
							   const char *type, int param);

/*
 * UPDATE setting the columns in setmask ($1..) where keymask matches; when
 * nothing can be set, a SELECT that still finds exactly the one row.
 */
void		sql_build_update(const SqlRel *r, const bool *setmask, const bool *keymask,
							 bool full, StrBuf *sql);

void		sql_build_delete(const SqlRel *r, const bool *keymask, bool full, StrBuf *sql);

/*
 * One TRUNCATE of exactly the listed relations (each with ONLY, partitioned
 * ones without, which truncates their partitions as the apply worker
 * does).  RESTART IDENTITY when the source's flags say so.  Never CASCADE,
 * whatever the flags: the source lists every relation its CASCADE reached,
 * and the apply worker likewise replays without cascading.
 */
void		sql_build_truncate(const SqlRel *const *rels, int nrels, uint8_t flags,
							   StrBuf *sql);

/*
 * Key of a prepared statement: op, relid, version, and per column one
 * digit for the two masks (mask_b may be NULL).
 */
void		sql_make_key(StrBuf *key, char op, const SqlRel *r, const bool *mask_a,
						 const bool *mask_b);

/*
 * Bytes of a value in COPY text format, \\ \n \r \t escaped; a value may be
 * escaped in slices cut anywhere (every escape stands for one byte).
 */
void		sql_copy_escape_bytes(StrBuf *s, const uint8_t *p, size_t len);

/* One value in COPY text format: "\N" for NULL, \\ \n \r \t escaped. */
void		sql_copy_escape(StrBuf *s, const TupleValue *v);

#endif
