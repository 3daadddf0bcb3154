/*
 * apply/writer.h -- applies decoded source changes to the target.
 *
 * One target connection in libpq pipeline mode carries every statement:
 * prepared statements per (table, operation, column set), results read back
 * in bulk, one round trip per many changes.  Source transactions are grouped
 * into one target transaction by the caller; writer_commit() records the
 * source position (pgstream.migration.applied_lsn) in that same transaction,
 * which is what makes apply exactly-once across crashes.
 *
 * With async_commit, COMMIT does not wait for the target's WAL flush (as
 * a native subscription's apply worker does): lower latency, and a crash of
 * the target server loses the last moments of apply together with their
 * recorded position, which the source then sends again.  Only what the
 * target has flushed is reported durable (writer_durable_lsn), and that is
 * all the source may be told.  A batch carrying the cutover barrier is
 * always committed synchronously.
 *
 * Rules that keep the target correct (see docs/architecture.md):
 *   - columns that are unchanged TOAST ('u') are never written;
 *   - columns generated on the target are never written;
 *   - INSERT uses OVERRIDING SYSTEM VALUE (identity GENERATED ALWAYS);
 *   - every statement touches exactly the relation the message names:
 *     ONLY for a table, so an inheritance parent's change never reaches its
 *     children; none for a partitioned table, which routes (apply/sqlbuild.h);
 *   - UPDATE/DELETE must touch exactly one row; replica identity FULL picks
 *     one row by (tableoid, ctid), so duplicates lose exactly one copy;
 *   - a Relation whose table or column is missing on the target stops apply
 *     with a message naming it.
 * A second connection reads the target catalog, so lookups never interleave
 * with the pipeline.
 */
#ifndef PGSTREAM_APPLY_WRITER_H
#define PGSTREAM_APPLY_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "apply/relmap.h"
#include "protocol/error.h"
#include "protocol/lsn.h"
#include "protocol/pgoutput.h"

typedef struct Writer Writer;

typedef struct WriterStats
{
	uint64_t	inserts;
	uint64_t	updates;
	uint64_t	deletes;
	uint64_t	truncates;
	uint64_t	commits;		/* target transactions */
	uint64_t	commits_confirmed;	/* of them, COMMIT results read back OK */
	uint64_t	round_trips;
} WriterStats;

/*
 * Open the apply and catalog connections to the target.  durable: the
 * source position already durable there (the applied position read back).
 */
Writer	   *writer_create(const char *target_conninfo, bool async_commit, Lsn durable,
						  SyncError *err);

/*
 * writer_create ends every earlier apply session on the target first and
 * then checks, on its own session, that the applied position is still
 * `durable`; if not (an earlier session committed after the caller read
 * it), it fails with a transient error (pgconn_error_is_transient) and the
 * caller must read the position again.  Callers should read it only after
 * writer_end_earlier_sessions on their own connection: every apply session
 * of the target database is ended and gone when it returns true.  Apply
 * sessions are recognised by an advisory lock, never by application_name.
 */
bool		writer_end_earlier_sessions(PGconn *conn, SyncError *err);
void		writer_destroy(Writer *w);

/* Is a target transaction open? */
bool		writer_in_transaction(const Writer *w);

/* Changes; a target transaction is opened on the first one. */
bool		writer_insert(Writer *w, const RemoteRelation *rel,
						  const TupleData *newtup, SyncError *err);
bool		writer_update(Writer *w, const RemoteRelation *rel,
						  const PgoutputChange *change, SyncError *err);
bool		writer_delete(Writer *w, const RemoteRelation *rel,
						  const PgoutputChange *change, SyncError *err);
bool		writer_truncate(Writer *w, const RemoteRelation *const *rels, int nrels,
							uint8_t flags, SyncError *err);

/*
 * Name the source transaction whose changes follow, so that a statement the
 * target rejects is reported with it (xid, commit LSN).
 */
void		writer_set_source_transaction(Writer *w, Xid xid, Lsn commit_lsn);

/*
 * Remember that the source transaction ending at end_lsn carried the
 * cutover barrier `token`; recorded at the next commit.
 */
void		writer_note_barrier(Writer *w, const char *token, Lsn end_lsn);

/*
 * Record end_lsn/commit_time as applied and commit the target transaction
 * (opening one if needed, so progress moves even for empty source
 * transactions when the caller asks).  Every statement of the batch has
 * succeeded when this returns true.  With async_commit (and no barrier) the
 * COMMIT itself is then in flight: its result is read by the next call that
 * reads results, or by writer_settle, and a failure is reported there.
 * Otherwise the commit is done and flushed when this returns true.
 */
bool		writer_commit(Writer *w, Lsn end_lsn, PgTimestamp commit_time,
						  SyncError *err);

/*
 * Between batches: read the results of the COMMIT in flight, if any.  When
 * this returns true every batch committed so far is visible on the target.
 */
bool		writer_settle(Writer *w, SyncError *err);

/* The end LSN of the last source commit whose target commit is flushed. */
Lsn			writer_durable_lsn(const Writer *w);

/* Is every committed batch flushed on the target? */
bool		writer_all_durable(const Writer *w);

/* If some commit is not known durable yet, ask the target how far it flushed. */
bool		writer_poll_durable(Writer *w, SyncError *err);

/* Roll back an open target transaction (after an error). */
void		writer_rollback(Writer *w);

const WriterStats *writer_stats(const Writer *w);

/* The apply connection (to check its state after an error). */
PGconn	   *writer_connection(const Writer *w);

#endif
