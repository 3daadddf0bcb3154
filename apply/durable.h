/*
 * apply/durable.h -- which applied source positions are durable on the
 * target when apply commits with synchronous_commit = off.
 *
 * An asynchronous COMMIT returns before its WAL is flushed: the rows are
 * visible, and survive anything but a crash of the target server, which
 * would lose them together with the applied position recorded in the same
 * transaction.  The source may only be told "flushed" up to a commit whose
 * WAL the target has flushed.  After each COMMIT the writer reads the
 * target's WAL insert position (at or past that commit's record) and notes
 * it here with the commit's source end LSN; whenever it learns the target's
 * flush position, every commit at or below it is durable.
 *
 * Pure bookkeeping, no I/O; positions only ever move forward.
 */
#ifndef PGSTREAM_APPLY_DURABLE_H
#define PGSTREAM_APPLY_DURABLE_H

#include <stdbool.h>

#include "protocol/lsn.h"

#define DURABLE_RING 64

typedef struct DurableTracker
{
	struct
	{
		Lsn			source_end;	/* end LSN of the last source commit applied */
		Lsn			target_lsn;	/* target WAL position at or past its COMMIT */
	}			ring[DURABLE_RING];
	int			head;			/* oldest pending */
	int			count;
	Lsn			durable;		/* highest source end known durable */
	Lsn			flushed;		/* highest target flush position seen */
} DurableTracker;

/* Start with everything up to `durable` known durable. */
void		durable_init(DurableTracker *t, Lsn durable);

/*
 * An asynchronous commit applied source positions up to source_end; its
 * commit record ends at or before target_lsn.  When the ring is full the
 * newest entry absorbs this one (it then becomes durable a little later,
 * never earlier than it should).
 */
void		durable_note_commit(DurableTracker *t, Lsn source_end, Lsn target_lsn);

/* A synchronous commit: it and everything before it are durable. */
void		durable_note_sync_commit(DurableTracker *t, Lsn source_end);

/* The target has flushed its WAL up to flush_lsn.  Returns t->durable. */
Lsn			durable_note_flush(DurableTracker *t, Lsn flush_lsn);

/* Are there commits not yet known durable? */
bool		durable_pending(const DurableTracker *t);

#endif
