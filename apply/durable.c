/*
 * apply/durable.c -- durable positions under asynchronous commit (see
 * durable.h).
 */
#include "apply/durable.h"

#include <string.h>

void
durable_init(DurableTracker *t, Lsn durable)
{
	memset(t, 0, sizeof(*t));
	t->durable = durable;
}

void
durable_note_commit(DurableTracker *t, Lsn source_end, Lsn target_lsn)
{
	int			last;

	if (source_end <= t->durable)
		return;
	if (target_lsn <= t->flushed)
	{
		/* already flushed when we learned of it (a later sync commit, say) */
		durable_note_flush(t, t->flushed);
		t->durable = source_end > t->durable ? source_end : t->durable;
		return;
	}
	if (t->count == DURABLE_RING)
	{
		last = (t->head + t->count - 1) % DURABLE_RING;
		if (source_end > t->ring[last].source_end)
			t->ring[last].source_end = source_end;
		if (target_lsn > t->ring[last].target_lsn)
			t->ring[last].target_lsn = target_lsn;
		return;
	}
	last = (t->head + t->count) % DURABLE_RING;
	t->ring[last].source_end = source_end;
	t->ring[last].target_lsn = target_lsn;
	t->count++;
}

void
durable_note_sync_commit(DurableTracker *t, Lsn source_end)
{
	/* a flushed commit record means all WAL before it is flushed too */
	t->head = t->count = 0;
	if (source_end > t->durable)
		t->durable = source_end;
}

Lsn
durable_note_flush(DurableTracker *t, Lsn flush_lsn)
{
	if (flush_lsn > t->flushed)
		t->flushed = flush_lsn;
	while (t->count > 0 && t->ring[t->head].target_lsn <= t->flushed)
	{
		if (t->ring[t->head].source_end > t->durable)
			t->durable = t->ring[t->head].source_end;
		t->head = (t->head + 1) % DURABLE_RING;
		t->count--;
	}
	return t->durable;
}

bool
durable_pending(const DurableTracker *t)
{
	return t->count > 0;
}
