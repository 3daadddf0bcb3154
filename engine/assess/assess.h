/*
 * engine/assess/assess.h -- checks of source and target before anything moves.
 *
 * Each problem is a Finding with a severity, the check's name, the object it
 * concerns, a message and the exact fix.  "pgstream assess" prints them;
 * "pgstream sync" runs the same checks first and refuses to start on any
 * blocking finding, having changed nothing on either server.  The checks only
 * read.
 *
 * Checks (see docs/runbook.md for what each finding means):
 *   versions      source >= 10, target major >= source major, local pg_dump
 *                 major >= source major (and not newer than the target)
 *   settings      wal_level, free slots and WAL senders, max_slot_wal_keep_size,
 *                 wal_sender_timeout, timeouts set on the role or database,
 *                 standby / read-only servers
 *   privileges    REPLICATION, SELECT on every table and sequence, row-level
 *                 security, what CREATE PUBLICATION needs (table ownership,
 *                 CREATE on the database); on the target CREATE on the
 *                 database and on the schemas that already exist there
 *   identity      tables without a usable replica identity (live sync only)
 *   names         ';' in the database name, tables differing only by case,
 *                 names that need quoting
 *   objects       unlogged tables, large objects, materialized views,
 *                 sequences, foreign tables
 *   extensions    available on the target, Azure allow-list, creatable by
 *                 the target login
 *   collations    used or defined on the source, present on the target;
 *                 database encoding and default collation
 *   TLS           encryption and certificate verification of each connection
 *   activity      long-running and prepared transactions on the source
 *   target        empty, not the source itself
 *   roles         roles the database uses that sync creates, cannot create
 *                 (no CREATEROLE), or creates without attributes or password
 */
#ifndef PGSTREAM_ENGINE_ASSESS_ASSESS_H
#define PGSTREAM_ENGINE_ASSESS_ASSESS_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "protocol/error.h"

typedef enum FindingSeverity
{
	FINDING_BLOCKING,
	FINDING_WARNING,
	FINDING_INFO
} FindingSeverity;

typedef struct Finding
{
	FindingSeverity severity;
	char		check[48];
	char		object[256];
	char		message[512];
	char		fix[512];
} Finding;

typedef struct Findings
{
	Finding    *items;			/* owned */
	int			count;
	int			cap;
} Findings;

/*
 * What sync does with tables that have no usable replica identity (no
 * primary key, no REPLICA IDENTITY FULL or USING INDEX): with NO_KEY_BLOCK
 * they are blocking findings; with the other two sync handles them and
 * assess reports what that means.
 */
typedef enum NoKeyMode
{
	NO_KEY_BLOCK = 0,			/* default: refuse */
	NO_KEY_FULL,				/* sync sets REPLICA IDENTITY FULL on them */
	NO_KEY_INSERT_ONLY			/* published for INSERT and TRUNCATE only */
} NoKeyMode;

typedef struct AssessOptions
{
	const char *slot_name;
	const char *publication_name;	/* NULL when no publication is needed
									 * (sync --no-follow) */
	bool		resuming;		/* slot/publication/state of our own may exist */
} AssessOptions;

/* Never fails: "blocking", "warning", "info". */
const char *finding_severity_name(FindingSeverity s);

/* Never fails: "block", "full", "insert-only". */
const char *no_key_mode_name(NoKeyMode m);

/* "full" or "insert-only"; false for anything else. */
bool		no_key_mode_parse(const char *text, NoKeyMode *out);

void		findings_init(Findings *f);
void		findings_term(Findings *f);
void		findings_add(Findings *f, FindingSeverity sev, const char *check,
						 const char *object, const char *fix, const char *fmt,...)
			__attribute__((format(printf, 6, 7)));
int			findings_count(const Findings *f, FindingSeverity sev);

/*
 * Run every check; false only when a check could not run at all.  A single
 * check whose query fails adds a warning naming the check and the error.
 */
bool		assess_run(PGconn *source, PGconn *target, const AssessOptions *opts,
					   Findings *out, SyncError *err);

/*
 * assess_run() for a sync that handles tables without a replica identity
 * as no_key says (assess_run() assumes NO_KEY_BLOCK).  A separate entry
 * point rather than a field of AssessOptions so that callers' positional
 * initialisers stay valid.
 */
bool		assess_run_mode(PGconn *source, PGconn *target,
							const AssessOptions *opts, NoKeyMode no_key,
							Findings *out, SyncError *err);

/*
 * Print findings for humans (to stderr, one line each, then a count line) or
 * as {"findings": [{"severity", "check", "object", "message", "fix"}, ...]}
 * on stdout.
 */
void		findings_print(const Findings *f, bool json);

/*
 * Tables sync would publish whose UPDATE and DELETE would fail on the source
 * once they are in a publication: ordinary permanent tables (partitions
 * included) with replica identity NOTHING, DEFAULT without a primary key, or
 * USING INDEX whose index is gone.
 */
typedef struct NoKeyTable
{
	char		nspname[128];
	char		relname[128];
	char		qualified[260];	/* "nsp"."rel", quoted for SQL */
	char		candidate_index[132];	/* quoted name of a unique index usable
										 * for REPLICA IDENTITY USING INDEX, or
										 * "" if there is none */
} NoKeyTable;

typedef struct NoKeyTables
{
	NoKeyTable *items;			/* owned */
	int			count;
} NoKeyTables;

/* List them (sorted by schema and name); out must be freed with
 * no_key_tables_term() also after a failure. */
bool		assess_list_no_key_tables(PGconn *source, NoKeyTables *out,
									  SyncError *err);
void		no_key_tables_term(NoKeyTables *t);

/*
 * True in *same if source and target are one database of one cluster
 * (same system identifier and database name).  When the target login may
 * not read pg_control_system(), *same is false and true is returned.
 */
bool		assess_same_database(PGconn *source, PGconn *target, bool *same,
								 SyncError *err);

#endif
