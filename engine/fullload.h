/*
 * engine/fullload.h -- the parallel, snapshot-consistent COPY of every table.
 *
 * Planning reads the source catalog under the exported snapshot and writes
 * the plan (pgstream.tables, pgstream.copy_parts) to the target.  A table
 * larger than split_bytes is cut into CTID page ranges so that one big table
 * keeps every worker busy; parts run largest first.
 *
 * Each worker holds one source connection that imported the snapshot and one
 * target connection.  A part is piped row by row (COPY TO STDOUT ->
 * COPY FROM STDIN, never buffered whole) inside one target transaction that
 * also marks the part done, so a crash leaves each part either fully copied
 * and marked, or absent.
 */
#ifndef PGSTREAM_ENGINE_FULLLOAD_H
#define PGSTREAM_ENGINE_FULLLOAD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "protocol/error.h"

typedef struct FullLoadOptions
{
	const char *source_conninfo;
	const char *target_conninfo;
	const char *snapshot_name;
	int			jobs;
	int64_t		split_bytes;	/* split tables larger than this */
	bool		quiet;			/* no progress output */
	volatile sig_atomic_t *stop;	/* set by a signal handler: stop early */
	const struct FullLoadSources *sources;	/* fullload_run's source sessions */
} FullLoadOptions;

/* Part boundaries for a table of `pages` pages; pure, for unit tests. */
int			fullload_part_count(int64_t bytes, int64_t pages, int64_t split_bytes);

/*
 * Read the table list under the snapshot on the first session of
 * opts->sources and store the plan on the target (replacing any earlier
 * plan) in one transaction.
 */
bool		fullload_plan(const FullLoadOptions *opts, PGconn *target,
						  SyncError *err);

/*
 * Check that every table the snapshot shows on the source exists on the
 * target with the same columns (names and types, in order).  A run resumed
 * after a kill copies from a new snapshot into tables made from the old
 * one's schema: if the source changed in between, this says which table and
 * how, as SYNC_ERR_PRECONDITION, instead of a COPY failing on every run.
 */
bool		fullload_check_target_tables(const FullLoadOptions *opts, PGconn *target,
										 SyncError *err);

/*
 * The copy's source sessions (see "Guarding the snapshot" in fullload.c):
 * fullload_lock_sources() before the slot and its snapshot exist,
 * fullload_watch_sources() while the slot is created,
 * fullload_import_sources() once the snapshot exists, then the plan and the
 * copy on them, and fullload_close_sources() once the copy is done.
 */
typedef struct FullLoadSources
{
	PGconn	  **conns;
	int			count;
	bool		locked;			/* every session holds every table's lock */
	char	   *lock_sql;		/* LOCK TABLE ONLY ... of the tables to copy */
} FullLoadSources;

/*
 * Open opts->jobs source sessions (once) and have each hold ACCESS SHARE on
 * every table to copy, as pg_dump does: no TRUNCATE or other rewrite can
 * then commit until the copy is done.  Tries again while a TRUNCATE or
 * ALTER TABLE holds or waits for a table, for up to two minutes.
 */
bool		fullload_lock_sources(const FullLoadOptions *opts, FullLoadSources *sources,
								  SyncError *err);

/*
 * Called while the slot is created (snapshot_create_slot_watched): if a
 * transaction that wrote waits for one of the sessions' locks (the slot
 * waits for it to end), let go of the locks.  probe: another source session.
 */
bool		fullload_watch_sources(FullLoadSources *sources, PGconn *probe,
								   SyncError *err);

/*
 * Import the snapshot on every session (locking again first if the watch
 * let go) and check that no table to copy was rewritten or created since
 * the sessions last held their locks.  If one was, that snapshot cannot
 * copy it: rewritten receives a sentence saying so, the sessions hold no
 * lock, and the caller must take a new snapshot.  False on other failures.
 */
bool		fullload_import_sources(const FullLoadOptions *opts, FullLoadSources *sources,
									char *rewritten, size_t rewritten_size,
									SyncError *err);
void		fullload_close_sources(FullLoadSources *sources);

/* Copy every part not yet done with the sessions of opts->sources.  Returns
 * false on the first failure. */
bool		fullload_run(const FullLoadOptions *opts, PGconn *target,
						 SyncError *err);

/*
 * Import snapshot_name on conn: BEGIN ISOLATION LEVEL REPEATABLE READ READ
 * ONLY; SET TRANSACTION SNAPSHOT.  Tells apart "the snapshot is gone"
 * (SYNC_ERR_PRECONDITION) from other failures.
 */
bool		fullload_import_snapshot(PGconn *conn, const char *snapshot_name,
									 SyncError *err);

/*
 * Check that every part of every table was copied.  Row counts are checked
 * as each part is copied: the rows the source's COPY sent must equal the
 * rows the target's COPY stored, before that part's transaction commits.
 */
bool		fullload_verify(PGconn *target, long *tables_checked, SyncError *err);

#endif
