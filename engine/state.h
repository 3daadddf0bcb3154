/*
 * engine/state.h -- the run state pgstream keeps on the target, in schema
 * "pgstream" (or the one named by --state-schema: apply/statesql.h, whose
 * state_sql() expands {state} in the statements below), so that an
 * interrupted run can resume from any machine and "pgstream status" can
 * report it.  Removed when the migration completes.
 *
 *   pgstream.migration    one row: which source, slot, publication, phase
 *   pgstream.tables       the tables being copied, with size estimates
 *   pgstream.copy_parts   one row per copy range; done is set in the same
 *                         target transaction as the rows it copied
 *   pgstream.schema_steps deferred schema (engine/schema/schema.c)
 */
#ifndef PGSTREAM_ENGINE_STATE_H
#define PGSTREAM_ENGINE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "protocol/error.h"
#include "protocol/lsn.h"

typedef enum MigrationPhase
{
	PHASE_NONE = 0,				/* no state on the target */
	PHASE_SCHEMA,
	PHASE_COPY,
	PHASE_INDEX,
	PHASE_CATCHUP,				/* streaming, not yet caught up once */
	PHASE_STREAMING,
	PHASE_CUTOVER,
	PHASE_FINAL,				/* --no-follow: FKs, triggers, sequences */
	PHASE_DONE,
	PHASE_FAILED
} MigrationPhase;

/* Never fails: "schema", "copy", ... */
const char *phase_name(MigrationPhase phase);
MigrationPhase phase_from_name(const char *name);

typedef struct MigrationState
{
	char		source_system_id[32];
	char		source_dbname[128];
	char		slot_name[64];
	char		publication_name[128];
	MigrationPhase phase;
	bool		follow;
	Lsn			consistent_lsn;
	Lsn			applied_lsn;	/* end of the last applied source commit, or 0 */
	char		barrier_token[64];	/* the last barrier sync applied */
	Lsn			barrier_lsn;	/* where: its commit end (message barrier) or
								 * its position (position barrier), or 0 */
	char		cutover_token[64];	/* the barrier cutover asked for, or "" */
	char		insert_only_publication[128];	/* "" if none */
	char		error[512];
} MigrationState;

/* Does the target hold pgstream state?  Sets *exists. */
bool		state_exists(PGconn *target, bool *exists, SyncError *err);

/* Create the state schema and its tables, and insert the migration row. */
bool		state_create(PGconn *target, const MigrationState *st, SyncError *err);

/* Read the migration row. */
bool		state_load(PGconn *target, MigrationState *st, SyncError *err);

/*
 * Add what a state schema made by an older pgstream lacks (columns added
 * since), so that a migration started by an older binary can be resumed
 * and cut over by this one.  Idempotent; for sync and cutover, not status.
 */
bool		state_upgrade(PGconn *target, SyncError *err);

/* Set the phase (and the consistent LSN when lsn != 0). */
bool		state_set_phase(PGconn *target, MigrationPhase phase, Lsn lsn,
							SyncError *err);

/* Record a failure message (best effort; the run is stopping anyway). */
void		state_set_failed(PGconn *target, const char *message);

/*
 * Remember the tables published for INSERT and TRUNCATE only (sync
 * --no-key-tables=insert-only) and their publication; cutover compares
 * them in full.
 */
bool		state_set_insert_only(PGconn *target, const char *publication,
								  const char *const *nspnames,
								  const char *const *relnames, int n,
								  SyncError *err);

/*
 * A running "pgstream cutover" holds a session advisory lock on the target
 * database (two int4 keys, 'pgst' 'cutv') from its first check to its exit.
 * The server releases it when the process dies, even by kill -9, so a
 * barrier is honoured only while the cutover that wrote it is alive: one
 * that was killed can never end a migration (sync streams on past it).
 */
#define STATE_CUTOVER_LOCK_KEYS "1885827956, 1668641910"

/*
 * sync's one-run lock ("pgst", 1; engine/sync.c), held for the whole run,
 * and whether a session holds it now (one boolean, for cutover's wait).
 */
#define STATE_SYNC_LOCK_KEYS "1885827956, 1"
#define STATE_SYNC_RUNNING_SQL \
	"EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory'" \
	" AND database = (SELECT oid FROM pg_catalog.pg_database" \
	" WHERE datname = pg_catalog.current_database())" \
	" AND classid = 1885827956 AND objid = 1 AND objsubid = 2 AND granted)"
#define STATE_CUTOVER_RUNNING_SQL \
	"EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory'" \
	" AND database = (SELECT oid FROM pg_catalog.pg_database" \
	" WHERE datname = pg_catalog.current_database())" \
	" AND classid = 1885827956 AND objid = 1668641910 AND objsubid = 2 AND granted)"

/*
 * The cutover that armed the barrier (its target session, cutover_pid)
 * still holds the lock.  Not just any cutover: a new one holds the lock
 * before it replaces a token left armed by one that was killed, and must
 * not have that dead barrier honoured meanwhile.  Inside a query on
 * {state}.migration.
 */
#define STATE_ARMING_CUTOVER_RUNNING_SQL \
	"EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.locktype = 'advisory'" \
	" AND l.database = (SELECT oid FROM pg_catalog.pg_database" \
	" WHERE datname = pg_catalog.current_database())" \
	" AND l.classid = 1885827956 AND l.objid = 1668641910 AND l.objsubid = 2" \
	" AND l.pid = cutover_pid AND l.granted)"

/*
 * The barrier token sync may honour: the one armed by a cutover that is
 * still running, else "".  One text column.  Send it through state_sql().
 */
#define STATE_ARMED_BARRIER_SQL \
	"SELECT CASE WHEN " STATE_ARMING_CUTOVER_RUNNING_SQL \
	" THEN coalesce(cutover_token, '') ELSE '' END FROM {state}.migration"

/*
 * Sources before PostgreSQL 14 (pgoutput protocol 1 carries no logical
 * decoding message): the barrier is a position in the source WAL,
 * cutover_lsn, armed with its token (docs/architecture.md, "Cutover
 * barrier").  Two text columns: the armed token as above, and the position
 * ("" if none).  Send it through state_sql().
 */
#define STATE_POSITION_BARRIER_SOURCE_MAX 140000
#define STATE_ARMED_POSITION_BARRIER_SQL \
	"SELECT CASE WHEN " STATE_ARMING_CUTOVER_RUNNING_SQL \
	" THEN coalesce(cutover_token, '') ELSE '' END," \
	" coalesce(cutover_lsn::text, '') FROM {state}.migration"

/* Take the cutover lock for this session; *got is false if another has it. */
bool		state_cutover_lock(PGconn *target, bool *got, SyncError *err);

/* Does some session hold the cutover lock?  False on error too. */
bool		state_cutover_running(PGconn *target);

/*
 * {state}.source_changes: what pgstream changed on the source besides its
 * slot and publications, recorded before the change so that pgstream abort
 * can undo it (engine/abort.c).  Kinds: STATE_CHANGE_IDENTITY (nspname,
 * relname, original relreplident, set by sync --no-key-tables=full) and
 * STATE_CHANGE_FREEZE ("", database name, "", by cutover --freeze).  A
 * second note of the same object keeps the first original.
 */
#define STATE_CHANGE_IDENTITY "replica_identity"
#define STATE_CHANGE_FREEZE "freeze"
bool		state_note_source_change(PGconn *target, const char *kind, const char *nspname,
									 const char *relname, const char *original,
									 SyncError *err);
bool		state_forget_source_change(PGconn *target, const char *kind,
									   const char *nspname, const char *relname,
									   SyncError *err);

/* Drop the state schema and everything in it. */
bool		state_drop(PGconn *target, SyncError *err);

/*
 * Count user tables on the target outside pg_catalog, information_schema and
 * the state schema; *first receives the first one's name for the error
 * message.
 */
bool		state_count_user_tables(PGconn *target, long *count, char *first,
									size_t firstsize, SyncError *err);

#endif
