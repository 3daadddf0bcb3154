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
 * The copy's source sessions, opened before the copy by
 * fullload_open_sources() and closed after it by fullload_close_sources().
 */
typedef struct FullLoadSources
{
	PGconn	  **conns;
	int			count;
} FullLoadSources;

/*
 * Open opts->jobs source sessions, each with the snapshot imported and
 * ACCESS SHARE held on every table to copy (as pg_dump does), so that no
 * TRUNCATE or other table rewrite can empty a table under the snapshot
 * while the copy runs: those wait until the sessions are closed.  If a
 * table was rewritten, dropped or renamed after the snapshot was taken (or
 * a TRUNCATE queued up while the sessions took their locks), that snapshot
 * cannot copy it: rewritten receives a sentence saying so, no
 * session stays open, and the caller must take a new snapshot.  False on
 * any other failure.
 */
bool		fullload_open_sources(const FullLoadOptions *opts, FullLoadSources *sources,
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
