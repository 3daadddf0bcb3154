/*
 * engine/stream/stream.h -- live sync: stream changes from the slot and apply them
 * to the target until the cutover barrier has been applied.
 *
 * Two threads.  The receiver owns the replication connection: it reads
 * CopyData into a bounded queue, answers keepalives and sends status updates
 * whose flush position is what the applier has durably committed (or, when
 * the applier is idle with nothing pending, the position received so far).
 * The applier (the calling thread) decodes in stream order, applies through
 * apply/writer in batched target transactions that also record the source
 * position, and spools streamed in-progress transactions to disk until their
 * Stream Commit.
 */
#ifndef PGSTREAM_ENGINE_STREAM_STREAM_H
#define PGSTREAM_ENGINE_STREAM_STREAM_H

#include <signal.h>
#include <stdbool.h>

#include <libpq-fe.h>

#include "apply/replclient.h"
#include "protocol/error.h"
#include "protocol/lsn.h"

#define CUTOVER_MESSAGE_PREFIX "pgstream.cutover"

typedef struct StreamOptions
{
	const char *target_conninfo;
	const char *slot;
	const char *publication;
	const char *extra_publication;	/* insert-only tables, or NULL */
	const char *spool_dir;		/* streamed in-progress transactions */
	const char *wal_spool_dir;	/* --spool: every received message, or NULL */
	Lsn			start_lsn;		/* end of the last applied commit */
	int			batch_max_changes;
	int			batch_max_ms;
	bool		quiet;
	volatile sig_atomic_t *stop;
} StreamOptions;

/*
 * Stream and apply until the cutover barrier is committed on the target
 * (returns true) or an error or a stop request (returns false).  rc must be
 * connected (replication) and idle; src and tgt are ordinary sessions used
 * for lag figures and run state.
 */
bool		stream_run(const StreamOptions *opts, ReplClient *rc, PGconn *src,
					   PGconn *tgt, SyncError *err);

/*
 * Restart skip: was a source transaction whose commit record starts at
 * commit_lsn applied before, when applied_lsn (the end LSN of the last
 * commit applied, where streaming restarts) is given?  Pure.
 */
bool		stream_already_applied(Lsn commit_lsn, Lsn applied_lsn);

/*
 * Position barrier (sources before PostgreSQL 14): where does the stream
 * stand against barrier (0: none armed)?  last_commit is the highest commit
 * LSN (start of the commit record) seen in the stream, in_txn whether a
 * transaction is open, begin_commit the commit LSN of a transaction whose
 * Begin arrived now (0 when asked between messages).  Pure.
 *
 *   NOT_YET      a transaction that committed before barrier may still come
 *   BEFORE_THIS  this transaction committed at or after barrier: everything
 *                before it (commit order) is the barrier; do not apply it
 *   REACHED      between transactions, and a commit at or after barrier has
 *                been seen: everything applied so far is the barrier
 */
typedef enum PositionBarrier
{
	POSITION_BARRIER_NOT_YET,
	POSITION_BARRIER_BEFORE_THIS,
	POSITION_BARRIER_REACHED
} PositionBarrier;

PositionBarrier stream_position_barrier(Lsn barrier, Lsn last_commit, bool in_txn,
										Lsn begin_commit);

/*
 * --spool, after the barrier: is this spooled pgoutput message (first byte
 * decides; len 0 marks a session start) part of a write committed after the
 * barrier?  A change outside a streamed block is; a Stream Commit is (its
 * changes were spooled earlier, it committed now); changes inside a streamed
 * block are not yet (the transaction may abort).  *in_stream tracks Stream
 * Start/Stop and starts false (the barrier is applied between
 * transactions).  Pure.
 */
bool		stream_is_write_after_barrier(bool *in_stream, const uint8_t *data, size_t len);

#endif
