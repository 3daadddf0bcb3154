/*
 * engine/schema/schema.h -- the schema stage of "pgstream sync": dump the source
 * schema once, split it into steps, keep the steps on the target, and apply
 * them in three phases around the data copy.
 *
 *   pre-data   types, domains, extensions, schemas, sequences, tables (with
 *              NOT NULL, inline CHECK and defaults), functions, views, ...:
 *              applied in one transaction before the data is copied;
 *   index      INDEX, CONSTRAINT (primary key, unique, exclude) and INDEX
 *              ATTACH: built after the data, in parallel, each step in its
 *              own transaction together with its done mark, so that a crash
 *              never builds one twice or skips one;
 *   final      FK CONSTRAINT, TRIGGER, RULE, POLICY, ROW SECURITY, CHECK
 *              CONSTRAINT (NOT VALID ones), STATISTICS, comments on those,
 *              REFRESH MATERIALIZED VIEW (MATERIALIZED VIEW DATA, for views
 *              populated on the source; pre-data creates them WITH NO DATA)
 *              and anything else pg_dump puts in post-data: applied at
 *              cutover in TOC order, one transaction per step.
 *
 * Owners and privileges are never restored: the target login (on Azure
 * Database for PostgreSQL) is not a superuser and cannot give objects away.
 * Publications, subscriptions, security labels and tablespaces are left out
 * too.  EVENT TRIGGER entries (and their comments) need a superuser: they are
 * kept as SCHEMA_PHASE_SKIPPED steps, with their SQL, for the user to apply
 * by hand, and never run.
 *
 * The steps live in pgstream.schema_steps on the target:
 *
 *   id        position in the dump's table of contents (TOC order); row 0
 *             holds the session preamble (phase SCHEMA_PHASE_SESSION)
 *   dump_id   pg_dump's dump id, for matching with pg_restore -l
 *   phase     SchemaPhase
 *   wave      index phase: 1 = plain tables, in parallel; 2 = partitioned
 *             parents and INDEX ATTACH, serially in TOC order after wave 1
 *   kind      the TOC entry type ("INDEX", "FK CONSTRAINT", ...)
 *   name      "schema.tag" as pg_dump names the entry ("tag" if no schema)
 *   sql       what to run (never NULL; "" for entries without SQL)
 *   rel_bytes size of the table an index step is on (largest built first)
 *   done      set in the transaction that applied the step
 *
 * Every step runs inside a transaction that starts with the preamble: the
 * SET statements pg_restore puts at the top of its script, made
 * transaction-local (SET LOCAL), so that the caller's connection keeps its
 * own settings.
 */
#ifndef PGSTREAM_ENGINE_SCHEMA_SCHEMA_H
#define PGSTREAM_ENGINE_SCHEMA_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "protocol/error.h"

typedef enum SchemaPhase
{
	SCHEMA_PHASE_SESSION = 0, /* row 0: the preamble, never "applied" */
	SCHEMA_PHASE_PRE = 1,
	SCHEMA_PHASE_INDEX = 2,
	SCHEMA_PHASE_FINAL = 3,
	SCHEMA_PHASE_SKIPPED = 4 /* kept for the record, never applied */
} SchemaPhase;

/* Never fails: "session", "pre-data", "index", "final", "skipped". */
const char *schema_phase_name(int phase);

/*
 * Called after each index step commits, with the number of index steps done
 * so far (including those done by earlier runs), the total, and the step's
 * kind and name ("INDEX public.orders_pkey").  Calls are serialised by
 * schema_apply_indexes (never two at once) but come from worker threads.
 */
typedef void (*SchemaProgressFn)(int done, int total, const char *name,
                                 void *arg);

/*
 * Create pgstream.schema_steps if it does not exist.  Schema pgstream must
 * exist (the caller creates it).
 */
bool schema_create_state_table(PGconn *target, SyncError *err);

/*
 * Dump the schema of the source as of snapshot_name (pg_dump -Fc
 * --section=pre-data --section=post-data --snapshot: the schema plus the
 * REFRESH of materialized views) into a temporary file, split it into steps and
 * store them in pgstream.schema_steps in one target transaction, replacing
 * steps of an earlier capture if none of them was applied yet (an error
 * otherwise).  The password in source_conninfo never appears on a command
 * line: pg_dump and pg_restore get it through PGPASSWORD in their
 * environment.  The source is also queried (under the same snapshot) for
 * partitioned tables and table sizes, to order the index phase.
 */
bool schema_capture(const char *source_conninfo, const char *snapshot_name,
                    PGconn *target, SyncError *err);

/* Apply every pre-data step not done yet, in one transaction that also
 * marks them done. */
bool schema_apply_pre_data(PGconn *target, SyncError *err);

/*
 * Apply the index steps not done yet: wave 1 with `jobs` connections to
 * target_conninfo in parallel (largest table first), then wave 2 on one
 * connection in TOC order.  Each step is one transaction with its done mark.
 * On the first failure the other workers' statements are cancelled (their
 * steps stay not done) and the failure is returned.  Every session raises
 * maintenance_work_mem to index_mem_mb (0: the server's setting).  progress
 * may be NULL.
 */
bool schema_apply_indexes(const char *target_conninfo, int jobs, int index_mem_mb,
                          SchemaProgressFn progress, void *progress_arg,
                          SyncError *err);

/*
 * Index builds sort the whole table: with the server's default
 * maintenance_work_mem (64 MB) a table of a few million rows already sorts
 * on disk.  Raise it to mem_mb for this session only, never lower it (an
 * ordinary setting, no privilege needed); mem_mb <= 0 does nothing.
 */
bool schema_raise_index_memory(PGconn *conn, int mem_mb, SyncError *err);

/* Apply the final steps not done yet, in TOC order, one transaction each. */
bool schema_apply_final(PGconn *target, SyncError *err);

/* Number of steps of a phase and how many of them are done. */
bool schema_count_steps(PGconn *target, int phase, int *total, int *done,
                        SyncError *err);

/*
 * ---------------------------------------------------------------------
 * Splitting pg_restore output into steps.  Pure functions (no I/O), public
 * so that unit tests can feed them captured text.
 * ---------------------------------------------------------------------
 */

/* One line of `pg_restore -l`: "<dump_id>; <catalog oid> <oid> <rest>". */
typedef struct SchemaTocEntry
{
	int dump_id;
	Oid catalog_oid; /* pg_class, pg_constraint, ... or 0 */
	Oid oid;
	char *rest; /* owned: "DESC SCHEMA TAG OWNER", verbatim */
} SchemaTocEntry;

typedef struct SchemaToc
{
	SchemaTocEntry *entries; /* owned */
	size_t count;
} SchemaToc;

/*
 * Parse `pg_restore -l` output: comment lines (starting with ';') and blank
 * lines are skipped, every other line must be an entry.  On failure toc is
 * left empty.  Release with schema_toc_term().
 */
bool schema_toc_parse(const char *text, SchemaToc *toc, SyncError *err);
void schema_toc_term(SchemaToc *toc);

/*
 * Objects of the source that only a superuser can create, and everything
 * that depends on them (pg_depend, followed from the referenced object to
 * its dependents, and from an internal part to its owner: a view's rule to
 * the view): rows (catalog oid, oid, type, identity, reason), where the
 * oids are the source's and match pg_dump's TOC entries.  The target login
 * is not a superuser, so pgstream leaves these out and names each one
 * (assess before the migration, sync while it captures the schema).
 *
 * What needs a superuser (not counting extension members, which come with
 * the extension): functions in a language that is not trusted (C,
 * internal, plpython3u ...; aggregates are "internal" but need no
 * superuser, and functions a type made for itself come with it),
 * aggregates whose transition type is internal, base
 * types and shell types (CREATE TYPE name), binary-coercible casts and casts between two built-in types (the
 * login owns neither), transforms for a built-in type, foreign-data
 * wrappers, access methods, operator classes and families, procedural
 * languages, text search parsers and templates.  Dependencies on a
 * transform are not followed: PostgreSQL records one for every function of
 * its language taking that type, whether or not the function uses it.
 * Event triggers are left out by TOC type (schema_toc_entry_is_skipped).
 *
 * No '%' in it: fullload.c pastes it into snprintf formats.
 */
#define SCHEMA_SUPERUSER_ONLY_SQL                                              \
	"WITH RECURSIVE roots(classid, objid, reason) AS ("                        \
	" SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid, p.oid," \
	"  'a function in language ' || l.lanname || ', which is not trusted'"     \
	"  FROM pg_catalog.pg_proc p"                                              \
	"  JOIN pg_catalog.pg_language l ON l.oid = p.prolang"                     \
	"  WHERE p.oid >= 16384 AND NOT l.lanpltrusted AND p.prokind <> 'a'"       \
	"  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"                   \
	"   WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass"           \
	"   AND d.objid = p.oid AND d.deptype = 'i')"                              \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, a.aggfnoid,"           \
	"  'an aggregate whose transition type is internal'"                       \
	"  FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid >= 16384"               \
	"  AND 'pg_catalog.internal'::pg_catalog.regtype IN (a.aggtranstype,"      \
	"  a.aggmtranstype)"                                                       \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 'a base type'"  \
	"  FROM pg_catalog.pg_type t WHERE t.oid >= 16384 AND t.typtype = 'b'"     \
	"  AND t.typcategory <> 'A'"                                               \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 'a shell type'" \
	"  FROM pg_catalog.pg_type t WHERE t.oid >= 16384 AND t.typtype = 'p'"     \
	"  AND NOT t.typisdefined"                                                 \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_cast'::pg_catalog.regclass, c.oid,"                \
	"  CASE WHEN c.castmethod = 'b' THEN 'a binary-coercible cast'"            \
	"  ELSE 'a cast between two built-in types' END"                           \
	"  FROM pg_catalog.pg_cast c WHERE c.oid >= 16384 AND (c.castmethod = 'b'" \
	"  OR (c.castsource < 16384 AND c.casttarget < 16384))"                    \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_transform'::pg_catalog.regclass, oid,"             \
	"  'a transform for a built-in type'"                                      \
	"  FROM pg_catalog.pg_transform WHERE trftype < 16384"                     \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass, oid,"  \
	"  'a foreign-data wrapper' FROM pg_catalog.pg_foreign_data_wrapper"       \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_am'::pg_catalog.regclass, oid, 'an access method'" \
	"  FROM pg_catalog.pg_am WHERE oid >= 16384"                               \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_opclass'::pg_catalog.regclass, oid,"               \
	"  'an operator class' FROM pg_catalog.pg_opclass WHERE oid >= 16384"      \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_opfamily'::pg_catalog.regclass, oid,"              \
	"  'an operator family' FROM pg_catalog.pg_opfamily WHERE oid >= 16384"    \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_language'::pg_catalog.regclass, oid,"              \
	"  'a procedural language' FROM pg_catalog.pg_language WHERE oid >= 16384" \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_ts_parser'::pg_catalog.regclass, oid,"             \
	"  'a text search parser' FROM pg_catalog.pg_ts_parser WHERE oid >= 16384" \
	" UNION ALL"                                                               \
	" SELECT 'pg_catalog.pg_ts_template'::pg_catalog.regclass, oid,"           \
	"  'a text search template' FROM pg_catalog.pg_ts_template"                \
	"  WHERE oid >= 16384"                                                     \
	"), closure(classid, objid, rootclass, rootobj) AS ("                      \
	" SELECT r.classid, r.objid, r.classid, r.objid FROM roots r"              \
	"  WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e"                 \
	"   WHERE e.classid = r.classid AND e.objid = r.objid"                     \
	"   AND e.deptype = 'e')"                                                  \
	" UNION"                                                                   \
	" SELECT x.classid, x.objid, c.rootclass, c.rootobj FROM closure c,"       \
	"  LATERAL (SELECT d.classid, d.objid FROM pg_catalog.pg_depend d"         \
	"   WHERE d.refclassid = c.classid AND d.refobjid = c.objid"               \
	"   AND d.deptype IN ('n', 'a', 'i')"                                      \
	"   AND c.classid <> 'pg_catalog.pg_transform'::pg_catalog.regclass"       \
	"   UNION ALL"                                                             \
	"   SELECT d.refclassid, d.refobjid FROM pg_catalog.pg_depend d"           \
	"   WHERE d.classid = c.classid AND d.objid = c.objid"                     \
	"   AND d.deptype = 'i') x"                                                \
	")"                                                                        \
	" SELECT DISTINCT ON (c.classid, c.objid) c.classid, c.objid,"             \
	"  (pg_catalog.pg_identify_object(c.classid, c.objid, 0)).type,"           \
	"  (pg_catalog.pg_identify_object(c.classid, c.objid, 0)).identity,"       \
	"  CASE WHEN c.classid = c.rootclass AND c.objid = c.rootobj"              \
	"  THEN r.reason ELSE 'it depends on '"                                    \
	"  || (pg_catalog.pg_identify_object(c.rootclass, c.rootobj, 0)).type"     \
	"  || ' ' || (pg_catalog.pg_identify_object(c.rootclass, c.rootobj, 0))"   \
	"  .identity || ', ' || r.reason END"                                      \
	"  FROM closure c JOIN roots r"                                            \
	"  ON r.classid = c.rootclass AND r.objid = c.rootobj"                     \
	" ORDER BY c.classid, c.objid,"                                            \
	"  c.classid = c.rootclass AND c.objid = c.rootobj DESC, c.rootobj"

/* " AND <oid expr> NOT IN (...)": the relations of SCHEMA_SUPERUSER_ONLY_SQL,
 * which the copy leaves out (they are not created on the target). */
#define SCHEMA_NOT_SUPERUSER_ONLY_REL(oid_expr)                                \
	" AND " oid_expr " NOT IN (SELECT s.objid FROM (" SCHEMA_SUPERUSER_ONLY_SQL \
	") s(classid, objid, type, identity, reason)"                              \
	" WHERE s.classid = 'pg_catalog.pg_class'::pg_catalog.regclass)"

/* Is this entry one we never apply (EVENT TRIGGER and comments on one)? */
bool schema_toc_entry_is_skipped(const SchemaTocEntry *entry);

/* One TOC entry's part of a pg_restore script. */
typedef struct SchemaChunk
{
	char *desc;   /* owned: entry type from the header */
	char *schema; /* owned: "-" when the entry has none */
	char *tag;    /* owned: the entry's name */
	char *sql;    /* owned: "" or statements ending in '\n' */
} SchemaChunk;

typedef struct SchemaScript
{
	char *preamble;      /* owned: SET LOCAL statements, one a line */
	SchemaChunk *chunks; /* owned, one per expected entry */
	size_t count;
} SchemaScript;

/*
 * Split the output of `pg_restore -f - -L list` (text, NUL-terminated) made
 * for exactly the n entries of `expected`, in that order.
 *
 * pg_restore prints a preamble of SET statements, then for each entry
 *
 *     [SET default_tablespace = ...;]        only when the value changes
 *     [SET default_table_access_method = ...;]
 *     --
 *     -- Name: TAG; Type: DESC; Schema: SCHEMA; Owner: -[; Tablespace: T]
 *     --
 *
 *     <SQL>
 *
 * and a trailer.  Each header must match its expected entry (same type,
 * schema and name as in the -l line); any difference in count or content is
 * an error, never a guess.  The stateful SETs that pg_restore prints only on
 * change are tracked, and the ones in effect are put (as SET LOCAL) at the
 * top of every chunk that follows, so each chunk can run on its own.
 * psql meta-commands (\restrict, \unrestrict) are dropped.
 */
bool schema_script_split(const char *text, const SchemaTocEntry *expected,
                         size_t n, SchemaScript *out, SyncError *err);
void schema_script_term(SchemaScript *script);

/*
 * The preamble without settings the target server does not know (pg_dump 17
 * prints "SET transaction_timeout = 0", which servers before 17 reject).
 * server_version as PQserverVersion() gives it.  malloc'd; NULL on OOM.
 */
char *schema_preamble_for_server(const char *preamble, int server_version);

/* Phase of a post-data entry from its type: index or final. */
SchemaPhase schema_post_data_phase(const char *desc);

#endif /* PGSTREAM_ENGINE_SCHEMA_SCHEMA_H */
