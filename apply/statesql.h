/*
 * apply/statesql.h -- the schema that holds pgstream's run state on the
 * target, and the one place its name gets into SQL text.
 *
 * The state schema is "pgstream" unless the command was given
 * --state-schema NAME (sync, cutover, status and assess take it; they must
 * all be given the same name for one migration).  A source may have its
 * own schema "pgstream": the option is how such a database is migrated.
 *
 * Every statement that names the state schema is written with placeholders
 * and goes through state_sql() where it is sent:
 *
 *   {state}          the schema as a quoted identifier: "pgstream"
 *   {state_literal}  its name as a string literal: 'pgstream' (E'..' when
 *                    the name holds a backslash)
 *
 *   pgconn_query(tgt, state_sql("SELECT phase FROM {state}.migration"), ...)
 *
 * Only pgstream's own statement text may go through state_sql(), never text
 * that holds user data or user DDL (a function body may well contain
 * "{state}").  A statement that is also a printf format is formatted first
 * and expanded after, so that a '%' in the name is never read as a
 * conversion.
 *
 * The expansion of each distinct text is made once and kept for the life of
 * the process (a few dozen statements, some sent thousands of times a
 * second), so the pointer returned stays valid and callers never free it.
 * Threads may call state_sql() at any time; state_schema_set() is called
 * once by the command after its options are checked and before any thread
 * starts.  This lives in apply/ because apply/writer.c prepares statements
 * that name the state schema and apply/ cannot include engine/.
 */
#ifndef PGSTREAM_APPLY_STATESQL_H
#define PGSTREAM_APPLY_STATESQL_H

#define STATE_SCHEMA_DEFAULT "pgstream"

/*
 * Use name as the state schema from now on.  The caller has checked it
 * (names_state_schema_check); earlier expansions are discarded, so no
 * thread may hold one.
 */
void		state_schema_set(const char *name);

/* The state schema's name as given ("pgstream"), for messages. */
const char *state_schema_name(void);

/* The state schema as a quoted identifier ("\"pgstream\""). */
const char *state_schema_quoted(void);

/*
 * sql with {state} and {state_literal} replaced as described above.  Never
 * fails: if memory runs out, the text is returned unexpanded and the server
 * reports the syntax error "{".
 */
const char *state_sql(const char *sql);

#endif
