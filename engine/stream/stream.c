/*
 * engine/stream/stream.c -- live sync (see stream.h).
 *
 * NOTES
 *
 * Exactly once.  Every target transaction the applier commits ends with an
 * UPDATE of pgstream.migration.applied_lsn to the end LSN of the last source
 * commit it contains.  A restart starts replication there, and the applier
 * also skips any transaction whose commit record starts before that point
 * (a slot's confirmed position may lag after a source crash).
 *
 * Feedback.  The receiver reports flush = the highest end LSN whose target
 * commit is flushed on the target.  Apply commits asynchronously (as a
 * native subscription does) unless --spool is used; the writer reads the
 * target's WAL positions after each COMMIT and reports what is flushed
 * (apply/durable.h); while some commit is not, an idle applier polls for
 * it.  When the applier is idle -- no source transaction open, no target
 * transaction open, queue empty, every commit flushed, checked under the
 * queue lock -- it may report everything received, so the slot advances on
 * an idle source.
 *
 * Streamed transactions.  Between Stream Start and Stream Stop the raw
 * messages go to a per-xid spool file (storage/txspool.c, LZ4); Stream Commit
 * replays the spool through the same handlers as a normal transaction;
 * Stream Abort drops the spool or a subtransaction's tail.
 *
 * Position barrier.  pgoutput before protocol 2 (sources 11-13) carries no
 * logical decoding message, so there cutover arms a position B (its token
 * and cutover_lsn on the target) instead.  Transactions arrive in commit
 * order, so the first commit at or after B seen in the stream means every
 * transaction that committed before B has arrived; cutover's own barrier
 * message transaction, committed after B, is sent (protocol 1 sends every
 * decoded transaction, empty or not) and is that commit on a quiet source.
 * The applier learns B by polling the target (POSITION_POLL_US), and again
 * before it acts: a Begin whose commit is at or after B stops it before
 * that transaction; between transactions, a commit at or after B already
 * seen stops it where it is.  See docs/architecture.md "Cutover barrier".
 *
 * --spool.  The receiver confirms only the commit end recorded by the last
 * boundary frame on disk (recovery cuts back to it), writes a frame "clean"
 * when no streamed transaction is open either (only then may a segment
 * start), and begins each session with an empty record, where the applier
 * drops partly streamed transactions of the session before.  See
 * docs/architecture.md for the invariants.
 */
#include "engine/stream/stream.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply/pgconn.h"
#include "apply/relmap.h"
#include "storage/txspool.h"
#include "apply/statesql.h"
#include "apply/writer.h"
#include "engine/failpoint.h"
#include "storage/walspool.h"
#include "engine/log.h"
#include "engine/state.h"
#include "protocol/arena.h"
#include "protocol/pgoutput.h"

#define QUEUE_MAX_BYTES (16 * 1024 * 1024)	/* about half a second of a busy stream */
#define CHUNK_BYTES (256 * 1024)	/* receiver -> applier hand-off unit */
#define RECEIVE_BATCH 4096		/* messages taken before looking up again */
#define RECEIVE_COALESCE_US 1000	/* pause before reading on when data trickles in */
#define RECEIVE_POUR_US 250		/* the pause while it pours */
#define POUR_TURN_MESSAGES 64	/* a turn this big: the stream pours */
#define POUR_HOLD_US 20000		/* for this long after such a turn */
#define STATS_INTERVAL_US 1000000
#define SPOOL_FLUSH_US 100000	/* --spool: flush at least this often */
#define SPOOL_FLUSH_BYTES (4 * 1024 * 1024) /* ... or after this much */
#define POSITION_POLL_US 200000	/* source < 14: look for an armed barrier */

/* ------------------------------------------------------------------------
 * The queue between receiver and applier
 * ------------------------------------------------------------------------ */

/*
 * Messages travel from the receiver to the applier in chunks: a chunk holds
 * many CopyData payloads back to back (each a ChunkRecord and its bytes,
 * padded to 8), so the two threads meet once per chunk, not once per row.
 */
typedef struct Chunk
{
	struct Chunk *next;
	size_t		used;			/* bytes of records */
	size_t		cap;
	size_t		pos;			/* applier: next record */
	uint8_t		data[];
} Chunk;

typedef struct ChunkRecord
{
	Lsn			lsn;
	size_t		len;
} ChunkRecord;

static size_t
record_size(size_t len)
{
	return (sizeof(ChunkRecord) + len + 7) & ~(size_t) 7;
}

typedef struct Shared
{
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	pthread_cond_t nonfull;
	Chunk	   *head;			/* published, not yet taken by the applier */
	Chunk	   *tail;
	size_t		bytes;			/* in chunks the applier has not finished */
	bool		receiver_done;	/* receiver stopped (error or stop) */
	SyncError	receiver_error;
	bool		applier_idle;	/* see NOTES: may confirm everything received */
	Lsn			durable;		/* highest end LSN committed on the target */
	Lsn			received;		/* receiver's running max */
	bool		stop;			/* applier asks the receiver to stop */

	/* --spool: records go to disk instead of the queue */
	WalSpool   *wal;			/* NULL: memory queue */
	bool		spool_idle;		/* everything received is spooled, at a boundary */
} Shared;

typedef struct Receiver
{
	Shared	   *sh;
	ReplClient *rc;
	volatile sig_atomic_t *stop;
	Chunk	   *local;			/* being filled; published when full or caught up */
	bool		coalesce;		/* pause to let a busy stream gather (TCP only) */
	int64_t		pour_until_us;	/* the stream pours until then: short pauses */

	/* --spool: where the stream is, for frame boundaries and feedback */
	bool		in_txn;			/* between Begin and Commit */
	bool		in_stream;		/* between Stream Start and Stream Stop */
	Lsn			last_commit_end;
	Lsn			boundary_commit_end;	/* last_commit_end of the last boundary
										 * frame: what may be confirmed */
	Xid		   *streams;		/* streamed transactions open in this session */
	int			nstreams;
	int			streams_cap;
	size_t		pending_bytes;	/* appended since the last flush */
	int64_t		last_flush_us;
	int64_t		last_boundary_flush_us;
} Receiver;

/* Hand the chunk being filled to the applier. */
static void
receiver_publish(Receiver *r)
{
	Shared	   *sh = r->sh;
	Chunk	   *c = r->local;

	if (c == NULL || c->used == 0)
		return;
	r->local = NULL;
	pthread_mutex_lock(&sh->lock);
	if (sh->tail)
		sh->tail->next = c;
	else
		sh->head = c;
	sh->tail = c;
	sh->bytes += c->used;
	sh->applier_idle = false;
	pthread_cond_signal(&sh->nonempty);
	pthread_mutex_unlock(&sh->lock);
}

/*
 * A message larger than a chunk (one row with a large value: pgoutput sends
 * a whole tuple in one CopyData) is not copied: libpq's buffer holding it
 * (malloc'd; PQfreemem is free) becomes the chunk, grown by the few bytes
 * of the headers (realloc of a large block moves pages, it does not copy
 * them) and the payload moved up in place.  NULL if data is not in that
 * buffer or realloc fails: the caller copies.
 */
static Chunk *
chunk_adopt(Receiver *r, Lsn lsn, const uint8_t *data, size_t len)
{
	uint8_t    *buf = (uint8_t *) r->rc->copybuf;
	size_t		off = (size_t) (data - buf);
	ChunkRecord rec = {lsn, len};
	Chunk	   *c;

	if (buf == NULL || data < buf || off > 64 ||
		(c = realloc(buf, sizeof(Chunk) + record_size(len))) == NULL)
		return NULL;
	r->rc->copybuf = NULL;
	memmove(c->data + sizeof(rec), (uint8_t *) c + off, len);
	memcpy(c->data, &rec, sizeof(rec));
	c->next = NULL;
	c->pos = 0;
	c->used = c->cap = record_size(len);
	return c;
}

/* Append a copy of one CopyData payload; never blocks (see receiver_wait). */
static bool
receiver_append(Receiver *r, Lsn lsn, const uint8_t *data, size_t len)
{
	size_t		need = record_size(len);
	Chunk	   *c = r->local;
	ChunkRecord rec = {lsn, len};

	if (need > CHUNK_BYTES && (c = chunk_adopt(r, lsn, data, len)) != NULL)
	{
		receiver_publish(r);	/* what came before it goes first */
		r->local = c;
		receiver_publish(r);
		return true;
	}
	c = r->local;

	if (c != NULL && c->cap - c->used < need)
	{
		receiver_publish(r);
		c = NULL;
	}
	if (c == NULL)
	{
		size_t		cap = need > CHUNK_BYTES ? need : CHUNK_BYTES;

		if ((c = malloc(sizeof(*c) + cap)) == NULL)
			return false;
		c->next = NULL;
		c->used = c->pos = 0;
		c->cap = cap;
		r->local = c;
	}
	memcpy(c->data + c->used, &rec, sizeof(rec));
	memcpy(c->data + c->used + sizeof(rec), data, len);
	c->used += need;
	return true;
}

static void
add_ms(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += (long) ms * 1000000L;
	while (ts->tv_nsec >= 1000000000L)
		ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

/*
 * Take every published chunk, waiting up to wait_ms for one.  Marks the
 * applier busy in the same critical section, so the receiver never sees an
 * empty queue and an idle applier while a chunk is in flight.
 */
static Chunk *
queue_take(Shared *sh, int wait_ms)
{
	Chunk	   *list;
	struct timespec ts;

	pthread_mutex_lock(&sh->lock);
	if (sh->head == NULL && wait_ms > 0 && !sh->receiver_done)
	{
		add_ms(&ts, wait_ms);
		pthread_cond_timedwait(&sh->nonempty, &sh->lock, &ts);
	}
	list = sh->head;
	if (list != NULL)
	{
		sh->head = sh->tail = NULL;
		sh->applier_idle = false;
	}
	pthread_mutex_unlock(&sh->lock);
	return list;
}

/* The applier is done with a chunk: its bytes no longer count as queued. */
static void
queue_release(Shared *sh, Chunk *c)
{
	pthread_mutex_lock(&sh->lock);
	sh->bytes -= c->used;
	pthread_cond_signal(&sh->nonfull);
	pthread_mutex_unlock(&sh->lock);
	free(c);
}

/* Copy the applier's durable/idle facts into the feedback state. */
static void
receiver_sync_feedback(Receiver *r)
{
	Shared	   *sh = r->sh;

	pthread_mutex_lock(&sh->lock);
	feedback_note_durable(&r->rc->feedback, sh->durable);
	feedback_set_idle(&r->rc->feedback, sh->wal ? sh->spool_idle
					  : sh->applier_idle && sh->head == NULL &&
					  (r->local == NULL || r->local->used == 0));
	sh->received = r->rc->feedback.received;
	pthread_mutex_unlock(&sh->lock);
}

/* While the queue is full: wait, but keep the walsender's timeout happy. */
static bool
receiver_wait(Receiver *r, SyncError *err)
{
	Shared	   *sh = r->sh;
	bool		full;
	struct timespec ts;

	pthread_mutex_lock(&sh->lock);
	full = sh->bytes > QUEUE_MAX_BYTES && !sh->stop;
	if (full)
	{
		add_ms(&ts, 100);
		pthread_cond_timedwait(&sh->nonfull, &sh->lock, &ts);
	}
	pthread_mutex_unlock(&sh->lock);
	if (full && replclient_now_us() - r->rc->last_status_us >
		(int64_t) r->rc->status_interval_ms * 1000)
	{
		receiver_sync_feedback(r);
		if (!replclient_send_status(r->rc, false, err))
			return false;
	}
	return !full;
}

/* --spool: a streamed transaction began (Stream Start): it is open. */
static bool
receiver_stream_open(Receiver *r, Xid xid, SyncError *err)
{
	for (int i = 0; i < r->nstreams; i++)
		if (r->streams[i] == xid)
			return true;
	if (r->nstreams == r->streams_cap)
	{
		int			cap = r->streams_cap ? r->streams_cap * 2 : 16;
		Xid		   *p = realloc(r->streams, (size_t) cap * sizeof(*p));

		if (p == NULL)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		r->streams = p;
		r->streams_cap = cap;
	}
	r->streams[r->nstreams++] = xid;
	return true;
}

/* --spool: a streamed transaction ended (Stream Commit or Stream Abort). */
static void
receiver_stream_close(Receiver *r, Xid xid)
{
	for (int i = 0; i < r->nstreams; i++)
		if (r->streams[i] == xid)
		{
			r->streams[i] = r->streams[--r->nstreams];
			return;
		}
}

/*
 * --spool: where the stream is, from the message type and fixed offsets
 * alone (Commit: end_lsn at byte 10; Stream Commit: xid at byte 1, end_lsn
 * at byte 14; Stream Start: xid at byte 1; Stream Abort: xid at byte 1,
 * subxid at byte 5).  *closed: the message ended a transaction or a stream
 * block, a moment to make the spool durable at a boundary.
 */
static bool
spool_track(Receiver *r, const uint8_t *d, size_t len, bool *closed, SyncError *err)
{
	ByteReader	br;
	Xid			xid;

	*closed = false;
	if (len == 0)
		return true;
	byte_reader_init(&br, d, len);
	br.pos = 1;
	switch (d[0])
	{
		case PGOUTPUT_MSG_BEGIN:
			r->in_txn = true;
			break;
		case PGOUTPUT_MSG_STREAM_START:
			r->in_stream = true;
			xid = byte_reader_u32(&br, "xid");
			if (!byte_reader_failed(&br))
				return receiver_stream_open(r, xid, err);
			break;
		case PGOUTPUT_MSG_STREAM_STOP:
			r->in_stream = false;
			*closed = true;
			break;
		case PGOUTPUT_MSG_STREAM_ABORT:
			xid = byte_reader_u32(&br, "xid");
			if (!r->in_stream && !byte_reader_failed(&br) &&
				byte_reader_u32(&br, "subxid") == xid && !byte_reader_failed(&br))
				receiver_stream_close(r, xid);
			*closed = !r->in_stream;
			break;
		case PGOUTPUT_MSG_COMMIT:
		case PGOUTPUT_MSG_STREAM_COMMIT:
			if (r->in_stream)
				break;			/* a change's own tag byte cannot be 'C'/'c'; be safe */
			xid = byte_reader_u32(&br, "xid");
			if (d[0] == PGOUTPUT_MSG_STREAM_COMMIT && !byte_reader_failed(&br))
				receiver_stream_close(r, xid);
			br.pos = d[0] == PGOUTPUT_MSG_COMMIT ? 10 : 14;
			{
				Lsn			end = byte_reader_u64(&br, "end_lsn");

				if (!byte_reader_failed(&br) && end > r->last_commit_end)
					r->last_commit_end = end;
			}
			r->in_txn = false;
			*closed = true;
			break;
		default:
			break;
	}
	return true;
}

/*
 * Write what was appended durably.  Only a frame that ends at a transaction
 * boundary survives recovery (walspool_open cuts back to the last one), so
 * only the commit end such a frame records may be confirmed to the source:
 * confirming the last commit seen after a flush inside a transaction told
 * the source to forget transactions a restart then cut off (issue 13).  A
 * frame after which no transaction and no streamed transaction is open is
 * "clean": only there may a new segment start.
 *
 * Failpoint stream.spool_flushed_mid_txn: a flush that ended inside a
 * transaction with a commit after the last boundary frame, before anything
 * is confirmed.
 */
static bool
spool_flush(Receiver *r, int64_t now, SyncError *err)
{
	bool		boundary = !r->in_txn && !r->in_stream;
	bool		clean = boundary && r->nstreams == 0;
	bool		mid_txn = !boundary && r->last_commit_end > r->boundary_commit_end;

	if (!walspool_flush(r->sh->wal, boundary, clean, r->last_commit_end, err))
		return false;
	if (mid_txn)
		FAILPOINT("stream.spool_flushed_mid_txn");
	r->last_flush_us = now;
	if (boundary)
	{
		r->boundary_commit_end = r->last_commit_end;
		r->last_boundary_flush_us = now;
	}
	pthread_mutex_lock(&r->sh->lock);
	if (r->boundary_commit_end > r->sh->durable)
		r->sh->durable = r->boundary_commit_end;
	r->sh->spool_idle = boundary;
	if (r->pending_bytes > 0)
		pthread_cond_signal(&r->sh->nonempty);
	pthread_mutex_unlock(&r->sh->lock);
	r->pending_bytes = 0;
	/* tell the source soon: it may recycle WAL up to what is on our disk */
	if (now - r->rc->last_status_us > 1000 * 1000)
	{
		receiver_sync_feedback(r);
		return replclient_send_status(r->rc, false, err);
	}
	return true;
}

/*
 * Spool one message.  When it closes a transaction or a stream block and a
 * flush at a boundary is due (100 ms or 4 MB), flush here: under a steady
 * stream of transactions a turn rarely ends between two of them, and only
 * flushes at a boundary let the source recycle WAL.
 */
static bool
spool_record(Receiver *r, const ReplMessage *m, SyncError *err)
{
	bool		closed = false;

	if (!walspool_append(r->sh->wal, m->data_start, m->data, m->data_len, err))
		return false;
	if ((!r->in_stream || m->data_len == 0 || m->data[0] == PGOUTPUT_MSG_STREAM_STOP) &&
		!spool_track(r, m->data, m->data_len, &closed, err))
		return false;
	r->pending_bytes += m->data_len;
	pthread_mutex_lock(&r->sh->lock);
	r->sh->spool_idle = false;
	pthread_mutex_unlock(&r->sh->lock);
	if (closed && !r->in_txn && !r->in_stream)
	{
		int64_t		now = replclient_now_us();

		if (r->pending_bytes >= SPOOL_FLUSH_BYTES ||
			now - r->last_boundary_flush_us >= SPOOL_FLUSH_US)
			return spool_flush(r, now, err);
	}
	return true;
}

/*
 * At the end of a turn: flush every 100 ms or 4 MB, wherever the stream is,
 * so that the applier (which reads only flushed frames) sees it.
 */
static bool
spool_flush_if_due(Receiver *r, SyncError *err)
{
	int64_t		now = replclient_now_us();

	if (r->pending_bytes < SPOOL_FLUSH_BYTES && now - r->last_flush_us < SPOOL_FLUSH_US)
		return true;
	return spool_flush(r, now, err);
}

static bool
socket_is_tcp(int fd)
{
	struct sockaddr_storage ss;
	socklen_t	len = sizeof(ss);

	return fd >= 0 && getsockname(fd, (struct sockaddr *) &ss, &len) == 0 &&
		(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

/* One message read: queue it (or spool it); other kinds were handled. */
static bool
receiver_take(Receiver *r, const ReplMessage *m, SyncError *err)
{
	if (m->kind != REPL_MSG_XLOGDATA)
		return true;
	if (r->sh->wal != NULL)
		return spool_record(r, m, err);
	if (!receiver_append(r, m->data_start, m->data, m->data_len))
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	return true;
}

/*
 * Each turn: take everything libpq already holds (up to RECEIVE_BATCH
 * messages) without waiting; when that runs dry, publish the chunk and wait
 * for the socket.  The walsender writes one message per send(), so a reader
 * that keeps up wakes once per row, and so does the applier it hands to:
 * while messages are flowing, a short pause before reading on lets them
 * gather, and each wake-up then carries dozens.  It costs at most
 * RECEIVE_COALESCE_US of latency, and none on an idle stream.  Only over
 * TCP: over a Unix-domain socket the pause stalls the walsender, whose
 * small-socket buffer fills first (measured: 1 M rows took 5.2 s with it,
 * 4.3 s without; over TCP 5.3 s -> 3.4 s).
 *
 * Why 1 ms: under pgbench -c 4 on two cores, with 250 us the receiver, the
 * applier and its target session woke for almost every source transaction
 * and together used 2.7x the CPU of a native apply worker; the walsender,
 * short of CPU, fell up to 2 MB behind the WAL, which was most of the lag.
 * With 1 ms that CPU halved (see docs/figures.md).  But a backlog must not
 * wait: the walsender fills the socket's receive window (which stays small
 * for a reader that pauses) and stops, and a 1 M-row catch-up ran at a
 * third of its speed; and with no pause at all each turn brought one or two
 * messages, each handed over alone, and it took 5.5 s instead of 3.8 s.  So
 * after a turn of POUR_TURN_MESSAGES or more (pgbench's stream brings about
 * a dozen per millisecond, a backlog a hundred or more) the pause is
 * RECEIVE_POUR_US for POUR_HOLD_US, renewed by every such turn.
 */
static void *
receiver_main(void *arg)
{
	Receiver   *r = arg;
	SyncError	err;
	bool		ok = true;

	sync_error_clear(&err);
	while (ok)
	{
		ReplMessage m;
		int			got = 0;
		int			n = 0;
		bool		stop;

		pthread_mutex_lock(&r->sh->lock);
		stop = r->sh->stop;
		pthread_mutex_unlock(&r->sh->lock);
		if (stop || *r->stop)
			break;
		if (!receiver_wait(r, &err))
		{
			ok = err.code == SYNC_ERR_NONE;
			continue;
		}
		receiver_sync_feedback(r);
		/* confirm new durable positions within a second, not every 10 s */
		if (r->rc->feedback.durable > r->rc->feedback.reported_flush &&
			replclient_now_us() - r->rc->last_status_us > 1000 * 1000 &&
			!replclient_send_status(r->rc, false, &err))
		{
			ok = false;
			continue;
		}
		while (ok && n < RECEIVE_BATCH && (got = replclient_next(r->rc, 0, &m, &err)) > 0)
		{
			ok = receiver_take(r, &m, &err);
			n++;
			/* after a large message, wait for room before reading on */
			if (m.kind == REPL_MSG_XLOGDATA && m.data_len > CHUNK_BYTES)
				break;
		}
		if (ok && got == 0)
		{
			receiver_publish(r);
			if (n > 0 && r->coalesce)
			{
				int64_t		now = replclient_now_us();

				if (n >= POUR_TURN_MESSAGES)
					r->pour_until_us = now + POUR_HOLD_US;
				usleep(now < r->pour_until_us ? RECEIVE_POUR_US : RECEIVE_COALESCE_US);
			}
			/*
			 * Failpoint stream.receiver_idle_wait: a turn that began idle
			 * is about to wait for more (what it reads now must not be
			 * confirmed before it is applied).
			 */
			if (r->rc->feedback.idle)
				FAILPOINT("stream.receiver_idle_wait");
			got = replclient_next(r->rc, 100, &m, &err);
			if (got > 0)
				ok = receiver_take(r, &m, &err);
		}
		if (got < 0)
			ok = false;
		if (ok && r->sh->wal != NULL)
			ok = spool_flush_if_due(r, &err);
	}
	if (ok)
	{
		receiver_publish(r);
		receiver_sync_feedback(r);
		replclient_send_status(r->rc, false, &err);
	}
	free(r->local);
	r->local = NULL;
	free(r->streams);
	r->streams = NULL;
	pthread_mutex_lock(&r->sh->lock);
	r->sh->receiver_done = true;
	if (!ok)
		r->sh->receiver_error = err;
	pthread_cond_signal(&r->sh->nonempty);
	pthread_mutex_unlock(&r->sh->lock);
	return NULL;
}

/* ------------------------------------------------------------------------
 * The applier
 * ------------------------------------------------------------------------ */

typedef struct SpoolEntry
{
	Xid			xid;
	Spool	   *spool;
} SpoolEntry;

typedef struct Applier
{
	const StreamOptions *opts;
	Shared	   *sh;
	PGconn	   *src;
	PGconn	   *tgt;
	Writer	   *writer;
	RelMap		rels;
	PgoutputState ps;			/* live stream */
	PgoutputState replay_ps;	/* spooled messages (always in_stream) */
	Arena		arena;
	Lsn			start_lsn;		/* commits starting before it are applied */
	bool		in_txn;			/* between Begin and Commit */
	bool		skip_txn;		/* this transaction was applied before */
	Xid			stream_xid;		/* inside a Stream Start block */
	SpoolEntry *spools;			/* streamed transactions not committed yet */
	int			nspools;
	int			spools_cap;
	int			batch_changes;
	int64_t		batch_started_us;
	Lsn			batch_end_lsn;	/* last source commit in the open batch */
	PgTimestamp batch_commit_time;
	bool		batch_open;
	Lsn			applied_lsn;	/* last committed on the target */
	PgTimestamp applied_time;
	bool		barrier_pending;	/* barrier seen in the current transaction */
	bool		barrier_done;
	char		barrier_token[64];
	bool		position_barriers;	/* source < 14: see NOTES */
	Lsn			barrier_position;	/* armed by a running cutover, or 0 */
	char		position_token[64];
	int64_t		position_polled_us;
	Lsn			last_commit_lsn;	/* highest commit LSN seen in the stream */
	uint64_t	changes_applied;
	int64_t		last_stats_us;
	uint64_t	changes_at_last_stats;
	Lsn			applied_at_last_stats;
	bool		caught_up;
	Lsn			catchup_lsn;	/* source WAL position when streaming began */
	uint64_t	commits_seen;	/* writer's confirmed commits at the last
								 * stream.after_apply_commit */
	Chunk	   *cur;			/* taken from the queue, being applied */
	WalSpoolCursor *cursor;		/* --spool: reads what the receiver spooled */
	PGconn	   *own_tgt;		/* --spool: our own target session after a reconnect */
	bool		drained;		/* --spool: the cursor had nothing more */
} Applier;

static bool apply_message(Applier *a, const uint8_t *data, size_t len, Lsn lsn,
						  PgoutputState *ps, SyncError *err);

static Spool **
spool_slot(Applier *a, Xid xid, bool create)
{
	for (int i = 0; i < a->nspools; i++)
		if (a->spools[i].xid == xid)
			return &a->spools[i].spool;
	if (!create)
		return NULL;
	if (a->nspools == a->spools_cap)
	{
		/*
		 * No fixed limit: a busy source can stream many large transactions
		 * at once, and a limit would stop every restart at the same place.
		 */
		int			cap = a->spools_cap ? a->spools_cap * 2 : 16;
		SpoolEntry *p = realloc(a->spools, (size_t) cap * sizeof(*p));

		if (p == NULL)
			return NULL;
		a->spools = p;
		a->spools_cap = cap;
	}
	a->spools[a->nspools].xid = xid;
	a->spools[a->nspools].spool = NULL;
	return &a->spools[a->nspools++].spool;
}

static void
spool_forget(Applier *a, Xid xid)
{
	for (int i = 0; i < a->nspools; i++)
		if (a->spools[i].xid == xid)
		{
			spool_destroy(a->spools[i].spool, true);
			a->spools[i] = a->spools[--a->nspools];
			return;
		}
}

/* Chunks taken but not applied yet? */
static bool
applier_has_local(const Applier *a)
{
	return a->cur != NULL && (a->cur->pos < a->cur->used || a->cur->next != NULL);
}

/* Nothing queued anywhere between the socket and the applier (memory mode). */
static bool
applier_queue_empty(const Applier *a)
{
	bool		empty;

	if (applier_has_local(a))
		return false;
	pthread_mutex_lock(&a->sh->lock);
	empty = a->sh->head == NULL;
	pthread_mutex_unlock(&a->sh->lock);
	return empty;
}

/*
 * The next queued message, waiting up to wait_ms when there is none here.
 * *data stays valid until the next call.
 */
static bool
applier_next(Applier *a, int wait_ms, Lsn *lsn, const uint8_t **data, size_t *len)
{
	for (;;)
	{
		Chunk	   *c = a->cur;

		if (c != NULL && c->pos < c->used)
		{
			ChunkRecord rec;

			memcpy(&rec, c->data + c->pos, sizeof(rec));
			*lsn = rec.lsn;
			*len = rec.len;
			*data = c->data + c->pos + sizeof(rec);
			c->pos += record_size(rec.len);
			return true;
		}
		if (c != NULL)
		{
			a->cur = c->next;
			queue_release(a->sh, c);
			continue;
		}
		if ((a->cur = queue_take(a->sh, wait_ms)) == NULL)
			return false;
	}
}

/*
 * Failpoint stream.after_apply_commit, once per target COMMIT whose result
 * was read back since the last call: the target has committed that batch
 * (and its applied_lsn), the source has not been told yet.  Called before
 * every publish_durable(), the only way a commit reaches the receiver's
 * feedback without --spool, so a kill here is the exactly-once window: a
 * restart gets the batch from the source again and must not apply it
 * twice.  (With --spool the source is told what the spool holds; a kill
 * here then tests the replay of the spool past the applied position.)
 */
static void
after_apply_commit(Applier *a)
{
	uint64_t	confirmed = writer_stats(a->writer)->commits_confirmed;

	for (; a->commits_seen < confirmed; a->commits_seen++)
		FAILPOINT("stream.after_apply_commit");
}

/* Tell the receiver how far the target has durably applied. */
static void
publish_durable(Applier *a)
{
	Lsn			d = writer_durable_lsn(a->writer);

	pthread_mutex_lock(&a->sh->lock);
	if (d > a->sh->durable)
		a->sh->durable = d;
	pthread_mutex_unlock(&a->sh->lock);
}

/* Commit the open batch on the target and publish the durable position. */
static bool
commit_batch(Applier *a, SyncError *err)
{
	if (!a->batch_open)
		return true;
	if (!writer_commit(a->writer, a->batch_end_lsn, a->batch_commit_time, err))
		return sync_error_context(err, "could not commit applied changes up to %X/%X",
								  LSN_ARGS(a->batch_end_lsn));
	a->applied_lsn = a->batch_end_lsn;
	a->applied_time = a->batch_commit_time;
	a->batch_open = false;
	a->changes_applied += (uint64_t) a->batch_changes;
	a->batch_changes = 0;
	after_apply_commit(a);
	publish_durable(a);
	if (a->barrier_pending)
	{
		a->barrier_pending = false;
		a->barrier_done = true;
		log_info("cutover barrier %s applied at %X/%X", a->barrier_token,
				 LSN_ARGS(a->applied_lsn));
	}
	return true;
}

/* Policy: close the batch at a source commit when big, old, or caught up. */
static bool
batch_due(const Applier *a)
{
	return a->barrier_pending || a->batch_changes >= a->opts->batch_max_changes ||
		replclient_now_us() - a->batch_started_us >= (int64_t) a->opts->batch_max_ms * 1000 ||
		(a->sh->wal ? a->drained : applier_queue_empty(a));
}

static bool
source_commit(Applier *a, Lsn commit_lsn, Lsn end_lsn, PgTimestamp t, SyncError *err)
{
	(void) commit_lsn;
	if (!a->batch_open)
	{
		a->batch_open = true;
		a->batch_started_us = replclient_now_us();
	}
	a->batch_end_lsn = end_lsn;
	a->batch_commit_time = t;
	if (a->barrier_pending)
		writer_note_barrier(a->writer, a->barrier_token, end_lsn);
	return batch_due(a) ? commit_batch(a, err) : true;
}

static bool
apply_change(Applier *a, const PgoutputMessage *m, SyncError *err)
{
	const RemoteRelation *rel = relmap_get(&a->rels, m->u.change.relid);

	if (rel == NULL)
		return sync_error_set(err, SYNC_ERR_INVALID,
							  "%s for relation id %u that no Relation message announced",
							  pgoutput_msg_type_name(m->type), m->u.change.relid);
	if (!a->batch_open)
	{
		a->batch_open = true;
		a->batch_started_us = replclient_now_us();
	}
	a->batch_changes++;
	switch (m->type)
	{
		case PGOUTPUT_MSG_INSERT:
			return writer_insert(a->writer, rel, &m->u.change.new_tuple, err);
		case PGOUTPUT_MSG_UPDATE:
			return writer_update(a->writer, rel, &m->u.change, err);
		default:
			return writer_delete(a->writer, rel, &m->u.change, err);
	}
}

static bool
apply_truncate(Applier *a, const PgoutputTruncate *t, SyncError *err)
{
	const RemoteRelation **rels = calloc(t->nrelids + 1, sizeof(*rels));
	bool		ok;

	if (rels == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	for (uint32_t i = 0; i < t->nrelids; i++)
		if ((rels[i] = relmap_get(&a->rels, t->relids[i])) == NULL)
		{
			free(rels);
			return sync_error_set(err, SYNC_ERR_INVALID,
								  "truncate of relation id %u that no Relation message announced",
								  t->relids[i]);
		}
	if (!a->batch_open)
	{
		a->batch_open = true;
		a->batch_started_us = replclient_now_us();
	}
	a->batch_changes++;
	ok = writer_truncate(a->writer, (const RemoteRelation *const *) rels, (int) t->nrelids,
						 t->flags, err);
	free(rels);
	return ok;
}

PositionBarrier
stream_position_barrier(Lsn barrier, Lsn last_commit, bool in_txn, Lsn begin_commit)
{
	if (barrier == 0)
		return POSITION_BARRIER_NOT_YET;
	if (begin_commit != 0)
		return begin_commit >= barrier ? POSITION_BARRIER_BEFORE_THIS : POSITION_BARRIER_NOT_YET;
	if (in_txn || last_commit < barrier)
		return POSITION_BARRIER_NOT_YET;
	return POSITION_BARRIER_REACHED;
}

/*
 * Source < 14: read the position barrier armed by a running cutover (0 if
 * none), at most every POSITION_POLL_US unless now.  A failed read keeps
 * what was known (the barrier is only ever honoured after a read that
 * succeeded just before: see position_barrier_check).
 */
static bool
position_barrier_poll(Applier *a, bool now)
{
	int64_t		t = replclient_now_us();
	SyncError	err;
	PGresult   *res;
	Lsn			pos = 0;

	if (!now && t - a->position_polled_us < POSITION_POLL_US)
		return true;
	a->position_polled_us = t;
	res = pgconn_query(a->tgt, state_sql(STATE_ARMED_POSITION_BARRIER_SQL), 0, NULL, &err);
	if (res == NULL || PQntuples(res) != 1)
	{
		PQclear(res);
		return false;
	}
	if (PQgetvalue(res, 0, 0)[0] != '\0' && !lsn_parse(PQgetvalue(res, 0, 1), &pos))
		pos = 0;
	if (pos != 0 && (a->barrier_position != pos ||
					 strcmp(a->position_token, PQgetvalue(res, 0, 0)) != 0))
		log_info("cutover barrier %s armed at position %X/%X", PQgetvalue(res, 0, 0),
				 LSN_ARGS(pos));
	a->barrier_position = pos;
	snprintf(a->position_token, sizeof(a->position_token), "%s",
			 pos ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return true;
}

/*
 * Source < 14: has the stream reached the armed position barrier?  Called
 * between messages (begin_commit 0) and at each Begin (its commit LSN);
 * *stop: stop before that transaction.  What the last poll knew decides
 * whether to look; a fresh read of the target decides whether to act, so a
 * barrier is honoured only while its cutover holds the lock.  Reaching it
 * commits what is applied with the barrier recorded (barrier_lsn = the
 * position), like an applied message barrier.
 */
static bool
position_barrier_check(Applier *a, Lsn begin_commit, bool *stop, SyncError *err)
{
	PositionBarrier v;

	*stop = false;
	if (!a->position_barriers || a->barrier_done)
		return true;
	(void) position_barrier_poll(a, false);
	if (stream_position_barrier(a->barrier_position, a->last_commit_lsn, a->in_txn,
								begin_commit) == POSITION_BARRIER_NOT_YET ||
		!position_barrier_poll(a, true))
		return true;
	v = stream_position_barrier(a->barrier_position, a->last_commit_lsn, a->in_txn,
								begin_commit);
	if (v == POSITION_BARRIER_NOT_YET)
		return true;
	*stop = true;
	snprintf(a->barrier_token, sizeof(a->barrier_token), "%s", a->position_token);
	writer_note_barrier(a->writer, a->barrier_token, a->barrier_position);
	a->barrier_pending = true;
	if (!a->batch_open)
	{
		/* everything is committed already: record the barrier alone */
		a->batch_open = true;
		a->batch_started_us = replclient_now_us();
		a->batch_end_lsn = a->applied_lsn;
		a->batch_commit_time = a->applied_time;
	}
	log_info("every transaction that committed before cutover barrier position %X/%X has "
			 "arrived (%s commit at %X/%X)", LSN_ARGS(a->barrier_position),
			 v == POSITION_BARRIER_BEFORE_THIS ? "next" : "seen a",
			 LSN_ARGS(v == POSITION_BARRIER_BEFORE_THIS ? begin_commit : a->last_commit_lsn));
	return commit_batch(a, err);
}

/*
 * A transactional "pgstream.cutover" message is a barrier, but only the one
 * a cutover is waiting for right now (its token armed in
 * pgstream.migration.cutover_token): a barrier left in the WAL by a cutover
 * that timed out must not stop sync later.
 */
static void
note_message(Applier *a, const PgoutputLogicalMessage *m)
{
	size_t		n = m->content.len < sizeof(a->barrier_token) - 1 ?
		m->content.len : sizeof(a->barrier_token) - 1;
	char		armed[64] = "";
	SyncError	err;

	if (!(m->flags & PGOUTPUT_MESSAGE_TRANSACTIONAL) ||
		strcmp((const char *) m->prefix.ptr, CUTOVER_MESSAGE_PREFIX) != 0)
		return;
	memcpy(a->barrier_token, m->content.ptr, n);
	a->barrier_token[n] = '\0';
	/* armed, and its cutover still running (a killed one cannot undo it) */
	if (!pgconn_query_value(a->tgt, state_sql(STATE_ARMED_BARRIER_SQL),
							0, NULL, armed, sizeof(armed), true, &err) ||
		strcmp(armed, a->barrier_token) != 0)
	{
		log_info("ignoring cutover barrier %s: no cutover is waiting for it", a->barrier_token);
		return;
	}
	a->barrier_pending = true;
	/* stream.barrier_seen: the barrier is seen, not applied; --spool receives on */
	FAILPOINT("stream.barrier_seen");
}

/* Messages that can appear inside a transaction, live or replayed. */
static bool
apply_in_txn(Applier *a, const PgoutputMessage *m, SyncError *err)
{
	switch (m->type)
	{
		case PGOUTPUT_MSG_RELATION:
			return relmap_update(&a->rels, &m->u.relation, err) != NULL;
		case PGOUTPUT_MSG_TYPE:
		case PGOUTPUT_MSG_ORIGIN:
			return true;
		case PGOUTPUT_MSG_INSERT:
		case PGOUTPUT_MSG_UPDATE:
		case PGOUTPUT_MSG_DELETE:
			return a->skip_txn || apply_change(a, m, err);
		case PGOUTPUT_MSG_TRUNCATE:
			return a->skip_txn || apply_truncate(a, &m->u.truncate, err);
		case PGOUTPUT_MSG_MESSAGE:
			if (!a->skip_txn)
				note_message(a, &m->u.message);
			return true;
		default:
			return sync_error_set(err, SYNC_ERR_INVALID, "unexpected %s message inside a transaction",
								  pgoutput_msg_type_name(m->type));
	}
}

/* Stream Start..Stop: spool the raw message under its transaction. */
static bool
spool_message(Applier *a, const PgoutputMessage *m, const uint8_t *data, size_t len,
			  SyncError *err)
{
	Spool	  **sp = spool_slot(a, a->stream_xid, false);

	if (sp == NULL || *sp == NULL)
		return sync_error_set(err, SYNC_ERR_INVALID,
							  "streamed change for transaction %u without Stream Start",
							  a->stream_xid);
	return spool_append(*sp, m->has_stream_xid ? m->stream_xid : a->stream_xid, data, len, err);
}

static bool
stream_start(Applier *a, const PgoutputStreamStart *s, SyncError *err)
{
	Spool	  **sp;

	a->stream_xid = s->xid;
	if (s->first_segment)
		spool_forget(a, s->xid);
	sp = spool_slot(a, s->xid, true);
	if (sp == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM,
							  "out of memory for streamed transaction %u", s->xid);
	if (*sp == NULL)
	{
		if (!s->first_segment)
			return sync_error_set(err, SYNC_ERR_INVALID,
								  "stream of transaction %u continues a spool that does not exist",
								  s->xid);
		*sp = spool_create(a->opts->spool_dir, s->xid, err);
		if (*sp == NULL)
			return false;
	}
	return true;
}

static bool
replay_record(const uint8_t *data, size_t len, void *arg, SyncError *err)
{
	Applier    *a = arg;

	return apply_message(a, data, len, INVALID_LSN, &a->replay_ps, err);
}

static bool
stream_commit(Applier *a, const PgoutputStreamCommit *c, SyncError *err)
{
	Spool	  **sp = spool_slot(a, c->xid, false);
	bool		ok;

	if (sp == NULL || *sp == NULL)
		return sync_error_set(err, SYNC_ERR_INVALID,
							  "Stream Commit of transaction %u that was never streamed", c->xid);
	a->skip_txn = stream_already_applied(c->commit_lsn, a->start_lsn);
	a->in_txn = true;
	writer_set_source_transaction(a->writer, c->xid, c->commit_lsn);
	ok = spool_replay(*sp, replay_record, a, err);
	a->in_txn = false;
	spool_forget(a, c->xid);
	if (!ok)
		return sync_error_context(err, "applying streamed transaction %u committed at %X/%X",
								  c->xid, LSN_ARGS(c->end_lsn));
	if (a->skip_txn)
		return true;
	return source_commit(a, c->commit_lsn, c->end_lsn, c->commit_time, err);
}

static bool
stream_abort(Applier *a, const PgoutputStreamAbort *ab, SyncError *err)
{
	Spool	  **sp = spool_slot(a, ab->xid, false);

	if (ab->xid == ab->subxid || sp == NULL)
	{
		spool_forget(a, ab->xid);
		return true;
	}
	return *sp == NULL || spool_abort_subxact(*sp, ab->subxid, err);
}

/*
 * applied_lsn is the end of the last commit applied.  The next transaction's
 * commit record may start exactly there, so only a commit that starts before
 * it was applied before.
 */
bool
stream_already_applied(Lsn commit_lsn, Lsn applied_lsn)
{
	return commit_lsn < applied_lsn;
}

/* Messages outside any transaction. */
static bool
apply_top(Applier *a, const PgoutputMessage *m, SyncError *err)
{
	switch (m->type)
	{
		case PGOUTPUT_MSG_BEGIN:
			{
				bool		stop;

				if (!position_barrier_check(a, m->u.begin.final_lsn, &stop, err))
					return false;
				if (stop)
					return true;	/* not applied: it committed after the barrier */
			}
			a->in_txn = true;
			a->skip_txn = stream_already_applied(m->u.begin.final_lsn, a->start_lsn);
			writer_set_source_transaction(a->writer, m->u.begin.xid, m->u.begin.final_lsn);
			return true;
		case PGOUTPUT_MSG_COMMIT:
			a->in_txn = false;
			if (m->u.commit.commit_lsn > a->last_commit_lsn)
				a->last_commit_lsn = m->u.commit.commit_lsn;
			if (a->skip_txn)
				return true;
			return source_commit(a, m->u.commit.commit_lsn, m->u.commit.end_lsn,
								 m->u.commit.commit_time, err);
		case PGOUTPUT_MSG_STREAM_START:
			return stream_start(a, &m->u.stream_start, err);
		case PGOUTPUT_MSG_STREAM_COMMIT:
			return stream_commit(a, &m->u.stream_commit, err);
		case PGOUTPUT_MSG_STREAM_ABORT:
			return stream_abort(a, &m->u.stream_abort, err);
		case PGOUTPUT_MSG_RELATION:
			return relmap_update(&a->rels, &m->u.relation, err) != NULL;
		case PGOUTPUT_MSG_MESSAGE:
		case PGOUTPUT_MSG_TYPE:
		case PGOUTPUT_MSG_ORIGIN:
			return true;
		default:
			return sync_error_set(err, SYNC_ERR_INVALID, "unexpected %s message",
								  pgoutput_msg_type_name(m->type));
	}
}

static bool
apply_message(Applier *a, const uint8_t *data, size_t len, Lsn lsn, PgoutputState *ps,
			  SyncError *err)
{
	PgoutputMessage m;
	bool		was_in_stream = ps->in_stream;

	arena_reset(&a->arena);
	if (pgoutput_decode(data, len, ps, &m, &a->arena, err) != DECODE_OK)
		return sync_error_context(err, "could not decode message at %X/%X", LSN_ARGS(lsn));
	if (m.type == PGOUTPUT_MSG_STREAM_STOP)
		return true;
	if (was_in_stream && ps == &a->ps)
		return spool_message(a, &m, data, len, err);
	if (a->in_txn && m.type != PGOUTPUT_MSG_COMMIT)
		return apply_in_txn(a, &m, err);
	return apply_top(a, &m, err);
}

/* ------------------------------------------------------------------------
 * Lag figures, written to the target for "pgstream status"
 * ------------------------------------------------------------------------ */

/* Lag in bytes and seconds, and an ETA, from what the applier knows now. */
typedef struct LagFigures
{
	double		lag_bytes;
	double		lag_seconds;
	double		eta_seconds;	/* < 0: unknown */
	double		rate;			/* changes per second */
} LagFigures;

static LagFigures
compute_lag(const Applier *a, Lsn source_lsn, bool idle, double secs)
{
	LagFigures	f = {0, 0, -1, 0};
	double		bytes_rate = secs > 0 && a->applied_lsn > a->applied_at_last_stats ?
		(double) (a->applied_lsn - a->applied_at_last_stats) / secs : 0;
	int64_t		now_unix = timestamp_to_unix_us(replclient_wallclock());

	f.rate = secs > 0 ? (double) (a->changes_applied - a->changes_at_last_stats) / secs : 0;
	if (idle || source_lsn <= a->applied_lsn)
	{
		f.eta_seconds = 0;
		return f;
	}
	f.lag_bytes = (double) (source_lsn - a->applied_lsn);
	if (a->applied_time != 0)
		f.lag_seconds = (double) (now_unix - timestamp_to_unix_us(a->applied_time)) / 1e6;
	if (f.lag_seconds < 0)
		f.lag_seconds = 0;
	if (bytes_rate > 0)
		f.eta_seconds = f.lag_bytes / bytes_rate;
	return f;
}

static void
write_stats(Applier *a)
{
	int64_t		now = replclient_now_us();
	char		src_lsn[32] = "",
				recv[LSN_FORMAT_MAX],
				nums[4][32];
	const char *params[7];
	Lsn			received,
				source_lsn = 0;
	bool		idle;
	LagFigures	f;
	SyncError	ignored;
	PGresult   *res;

	if (now - a->last_stats_us < STATS_INTERVAL_US)
		return;
	pthread_mutex_lock(&a->sh->lock);
	received = a->sh->received;
	idle = a->sh->applier_idle && a->sh->head == NULL && !applier_has_local(a);
	pthread_mutex_unlock(&a->sh->lock);
	if (pgconn_query_value(a->src, "SELECT pg_catalog.pg_current_wal_lsn()", 0, NULL,
						   src_lsn, sizeof(src_lsn), false, &ignored))
		lsn_parse(src_lsn, &source_lsn);
	f = compute_lag(a, source_lsn, idle, (double) (now - a->last_stats_us) / 1e6);
	snprintf(nums[0], sizeof(nums[0]), "%.1f", f.rate);
	snprintf(nums[1], sizeof(nums[1]), "%.0f", f.lag_bytes);
	snprintf(nums[2], sizeof(nums[2]), "%.3f", f.lag_seconds);
	snprintf(nums[3], sizeof(nums[3]), "%.1f", f.eta_seconds);
	params[0] = lsn_format(received, recv);
	params[1] = src_lsn[0] ? src_lsn : NULL;
	params[2] = nums[0];
	params[3] = a->caught_up ? "true" : "false";
	params[4] = nums[1];
	params[5] = nums[2];
	params[6] = f.eta_seconds >= 0 ? nums[3] : NULL;
	res = pgconn_query(a->tgt,
					   state_sql("UPDATE {state}.migration SET received_lsn = $1::pg_lsn,"
					   " source_lsn = coalesce($2::pg_lsn, source_lsn), apply_rate = $3::float8,"
					   " caught_up_at = CASE WHEN $4::boolean THEN coalesce(caught_up_at, now()) END,"
					   " lag_bytes = $5::bigint, lag_seconds = $6::float8, eta_seconds = $7::float8,"
					   " updated_at = now() WHERE id = 1"), 7, params, &ignored);
	PQclear(res);
	if (!a->opts->quiet && isatty(2))
		fprintf(stderr, "\r\033[Kstreaming: applied %X/%X  lag %.0f bytes, %.1f s  %.0f changes/s",
				LSN_ARGS(a->applied_lsn), f.lag_bytes, f.lag_seconds, f.rate);
	a->last_stats_us = now;
	a->changes_at_last_stats = a->changes_applied;
	a->applied_at_last_stats = a->applied_lsn;
}

/*
 * Idle: nothing open, nothing queued.  Mark it; and the first time we are
 * idle having received everything the source had written when streaming
 * started, we have caught up once: phase "streaming".
 */
static bool
note_idle(Applier *a, SyncError *err)
{
	bool		idle;
	Lsn			received;

	/* the last COMMIT's results; then, if not flushed yet, ask again */
	if (!a->in_txn && !a->batch_open && !writer_settle(a->writer, err))
		return false;
	after_apply_commit(a);
	if (!a->in_txn && !a->batch_open && !writer_all_durable(a->writer))
	{
		if (!writer_poll_durable(a->writer, err))
			return false;
		publish_durable(a);
	}
	pthread_mutex_lock(&a->sh->lock);
	idle = (a->sh->wal ? a->drained : a->sh->head == NULL && !applier_has_local(a)) &&
		!a->in_txn && !a->batch_open && writer_all_durable(a->writer);
	a->sh->applier_idle = idle;
	received = a->sh->received;
	pthread_mutex_unlock(&a->sh->lock);
	if (!idle || a->caught_up || received < a->catchup_lsn)
		return true;
	a->caught_up = true;
	log_info("caught up with the source at %X/%X; streaming", LSN_ARGS(a->applied_lsn));
	return state_set_phase(a->tgt, PHASE_STREAMING, 0, err);
}

/*
 * --spool: a record of zero bytes (no pgoutput message is empty) marks where
 * a replication session began, always at a transaction boundary.  The source
 * sends every transaction it had only partly streamed before again, from its
 * first Stream Start, as a whole transaction, or not at all (it aborted);
 * what was spooled of them is void.  Without this a streamed transaction
 * that never came back kept its spool open, and the applier never released
 * a segment again.
 */
static bool
session_start(Applier *a, Lsn lsn, SyncError *err)
{
	if (a->in_txn || a->ps.in_stream)
		return sync_error_set(err, SYNC_ERR_INTERNAL,
							  "the spool starts a replication session at %X/%X inside a transaction",
							  LSN_ARGS(lsn));
	for (int i = 0; i < a->nspools; i++)
		spool_destroy(a->spools[i].spool, true);
	a->nspools = 0;
	return true;
}

/* Wait up to wait_ms for the receiver to flush more to the spool. */
static void
wait_for_spool(Shared *sh, int wait_ms)
{
	struct timespec ts;

	pthread_mutex_lock(&sh->lock);
	if (!sh->receiver_done)
	{
		add_ms(&ts, wait_ms);
		pthread_cond_timedwait(&sh->nonempty, &sh->lock, &ts);
	}
	pthread_mutex_unlock(&sh->lock);
}

/*
 * --spool: apply the next spooled record; when there is none, commit the
 * open batch, release spool segments that are fully applied, and wait.
 */
static bool
spool_step(Applier *a, SyncError *err)
{
	Lsn			lsn;
	const uint8_t *data;
	size_t		len;
	int			got = walspool_cursor_next(a->cursor, &lsn, &data, &len, err);

	if (got < 0)
		return sync_error_context(err, "could not read the spool");
	a->drained = got == 0;
	if (got > 0 && len == 0)
		return session_start(a, lsn, err);
	if (got > 0)
		return apply_message(a, data, len, lsn, &a->ps, err);
	if (a->batch_open && !a->in_txn && !commit_batch(a, err))
		return false;
	/*
	 * Nothing open: every record before the cursor's segment is applied and
	 * committed, and that segment starts where nothing was open (see
	 * walspool_flush), so a restart may begin there.
	 */
	if (!a->in_txn && !a->batch_open && a->nspools == 0 &&
		!walspool_release_before(a->sh->wal, walspool_cursor_segment(a->cursor), err))
		return false;
	if (!a->in_txn && !a->batch_open && !note_idle(a, err))
		return false;
	wait_for_spool(a->sh, 100);
	return true;
}

/* Apply one message, or when none is queued commit and note idleness. */
static bool
applier_step(Applier *a, SyncError *err)
{
	Lsn			lsn;
	const uint8_t *data;
	size_t		len;

	if (a->sh->wal != NULL)
		return spool_step(a, err);
	if (applier_next(a, 100, &lsn, &data, &len))
		return apply_message(a, data, len, lsn, &a->ps, err);
	if (a->batch_open && !a->in_txn && !commit_batch(a, err))
		return false;
	if (!a->in_txn && !a->batch_open && !note_idle(a, err))
		return false;
	return true;
}

static bool
applier_loop(Applier *a, SyncError *err)
{
	while (!a->barrier_done)
	{
		bool		done;

		if (*a->opts->stop)
			return sync_error_set(err, SYNC_ERR_INTERNAL, "stopped by a signal");
		if (!applier_step(a, err))
			return false;
		if (!a->barrier_done && !position_barrier_check(a, 0, &done, err))
			return false;
		if (a->barrier_done)
			break;
		write_stats(a);
		/* the receiver has stopped: once everything it queued is applied */
		if (a->sh->wal ? !a->drained : applier_has_local(a))
			continue;
		pthread_mutex_lock(&a->sh->lock);
		done = a->sh->receiver_done && (a->sh->wal ? a->drained : a->sh->head == NULL);
		if (done)
			*err = a->sh->receiver_error;
		pthread_mutex_unlock(&a->sh->lock);
		if (done && !a->barrier_done)
		{
			/* the receiver may notice a stop request first */
			if (err->code == SYNC_ERR_NONE && *a->opts->stop)
				sync_error_set(err, SYNC_ERR_INTERNAL, "stopped by a signal");
			else if (err->code == SYNC_ERR_NONE)
				sync_error_set(err, SYNC_ERR_CONNECT, "replication stream ended");
			return false;
		}
	}
	return true;
}

/*
 * --spool: the target went away but the receiver keeps spooling.  Start
 * applying again from the spool's oldest record, skipping what the target
 * says it has (the last commit may or may not have reached it).
 */
static bool
applier_reconnect(Applier *a, SyncError *err)
{
	PgconnOptions co = {PGCONN_SQL, "pgstream sync", true, NULL};
	char		applied[32];

	for (int i = 0; i < a->nspools; i++)
		spool_destroy(a->spools[i].spool, true);
	a->nspools = 0;
	writer_destroy(a->writer);
	a->writer = NULL;
	pgconn_close(a->own_tgt);
	a->own_tgt = a->tgt = NULL;
	a->in_txn = a->batch_open = a->skip_txn = a->barrier_pending = false;
	a->batch_changes = 0;
	pgoutput_state_init(&a->ps, a->ps.proto_version, false);
	walspool_cursor_close(a->cursor);
	a->cursor = NULL;
	if ((a->own_tgt = pgconn_connect(a->opts->target_conninfo, &co, "target", err)) == NULL)
		return false;
	a->tgt = a->own_tgt;
	if (!pgconn_query_value(a->tgt, state_sql("SELECT coalesce(applied_lsn, consistent_lsn)::text"
							" FROM {state}.migration"), 0, NULL, applied, sizeof(applied),
							false, err))
		return false;
	lsn_parse(applied, &a->applied_lsn);
	a->start_lsn = a->applied_lsn;
	a->writer = writer_create(a->opts->target_conninfo, false, a->applied_lsn, err);
	a->commits_seen = 0;		/* a new writer counts from 0 */
	if (a->writer == NULL)
		return false;
	a->cursor = walspool_cursor_open(a->sh->wal, err);
	return a->cursor != NULL;
}

/*
 * Run the applier.  With --spool, a lost target does not stop receiving:
 * the applier reconnects with growing pauses while the receiver spools.
 */
static bool
applier_run(Applier *a, SyncError *err)
{
	while (!applier_loop(a, err))
	{
		int			backoff = 1;
		time_t		since = time(NULL);

		do
		{
			bool		receiver_done;

			pthread_mutex_lock(&a->sh->lock);
			receiver_done = a->sh->receiver_done;
			pthread_mutex_unlock(&a->sh->lock);
			if (a->sh->wal == NULL || !pgconn_error_is_transient(err))
				return false;
			/* waiting for the target, a stop request is the reason to end */
			if (*a->opts->stop)
				return sync_error_set(err, SYNC_ERR_INTERNAL, "stopped by a signal");
			if (receiver_done)
				return false;
			if (time(NULL) - since > 300)
				return sync_error_context(err, "target unreachable for 300 s");
			log_warn("%s; the source is still spooled to disk; applying again in %d s",
					 err->message, backoff);
			for (int i = 0; i < backoff * 10 && !*a->opts->stop; i++)
				usleep(100 * 1000);
			backoff = backoff < 30 ? backoff * 2 : 30;
			sync_error_clear(err);
		} while (!applier_reconnect(a, err));
		log_info("target reachable again; applying from %X/%X", LSN_ARGS(a->applied_lsn));
	}
	return true;
}

static void
applier_term(Applier *a)
{
	while (a->cur != NULL)
	{
		Chunk	   *next = a->cur->next;

		free(a->cur);
		a->cur = next;
	}
	for (int i = 0; i < a->nspools; i++)
		spool_destroy(a->spools[i].spool, true);
	free(a->spools);
	writer_destroy(a->writer);
	pgconn_close(a->own_tgt);
	relmap_term(&a->rels);
	arena_term(&a->arena);
}

static void
shared_term(Shared *sh)
{
	Chunk	   *c = sh->head;

	while (c != NULL)
	{
		Chunk	   *next = c->next;

		free(c);
		c = next;
	}
	pthread_mutex_destroy(&sh->lock);
	pthread_cond_destroy(&sh->nonempty);
	pthread_cond_destroy(&sh->nonfull);
}

/* After the barrier everything spooled is applied: remove the spool's files. */
static void
remove_wal_spool(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	char		path[4096];

	while (d != NULL && (e = readdir(d)) != NULL)
	{
		size_t		n = strlen(e->d_name);

		if ((n > 4 && strcmp(e->d_name + n - 4, ".seg") == 0) || strcmp(e->d_name, "lock") == 0)
		{
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

bool
stream_is_write_after_barrier(bool *in_stream, const uint8_t *data, size_t len)
{
	if (len == 0)
		return false;
	switch (data[0])
	{
		case 'S':
			*in_stream = true;
			return false;
		case 'E':
			*in_stream = false;
			return false;
		case 'I':
		case 'U':
		case 'D':
		case 'T':
			return !*in_stream;
		case 'c':
			return true;
		default:
			return false;
	}
}

/*
 * --spool: the barrier is applied and the receiver has stopped.  The
 * receiver confirmed to the source everything it made durable in the spool,
 * and that may include transactions committed after the barrier (the
 * application was not quiet): the slot no longer holds them, so cutover's
 * look at the slot cannot see them and removing the spool would lose them.
 * If the spool holds such a write: keep the spool, take the barrier back on
 * the target (cutover reads it again once sync has released the slot) and
 * stop; the next sync with the same --spool applies them.
 */
static bool
check_spool_after_barrier(Applier *a, SyncError *err)
{
	bool		in_stream = false;
	uint64_t	writes = 0;
	Lsn			first = 0,
				lsn;
	const uint8_t *data;
	size_t		len;
	int			got;
	char		msg[1024];
	const char *params[1] = {msg};
	SyncError	ignored;
	PGresult   *res;

	while ((got = walspool_cursor_next(a->cursor, &lsn, &data, &len, err)) > 0)
		if (stream_is_write_after_barrier(&in_stream, data, len) && writes++ == 0)
			first = lsn;
	if (got < 0)
		return sync_error_context(err, "could not read the spool after the barrier");
	if (writes == 0)
		return true;
	snprintf(msg, sizeof(msg),
			 "the source was written after the barrier %s (%llu change(s) from %X/%X on, "
			 "already confirmed to the source, so only the spool holds them): the spool is "
			 "kept in %s; stop the application, run pgstream sync again with the same --spool "
			 "(it applies them), then cutover",
			 a->barrier_token, (unsigned long long) writes, LSN_ARGS(first),
			 a->opts->wal_spool_dir);
	/* after the barrier's own commit (which recorded it), never before */
	if (!writer_settle(a->writer, err))
		return sync_error_context(err, "%s; and the barrier's commit on the target failed", msg);
	res = pgconn_query(a->tgt, state_sql(
		"UPDATE {state}.migration SET barrier_token = NULL, barrier_lsn = NULL,"
		" error = $1, updated_at = now() WHERE id = 1"), 1, params, &ignored);
	if (res == NULL)
		log_warn("could not take the barrier back on the target (%s); cutover will "
				 "still find it, as the spool is kept", ignored.message);
	PQclear(res);
	return sync_error_set(err, SYNC_ERR_PRECONDITION, "%s", msg);
}

/* --spool: open (and recover) the spool and a cursor at its oldest record. */
static bool
open_wal_spool(const StreamOptions *opts, Shared *sh, Applier *a, Lsn *spooled,
			   SyncError *err)
{
	WalSpoolOptions wo = {opts->wal_spool_dir, 0, 0};

#ifdef PGSTREAM_FAILPOINTS
	/* test builds: small segments make rotation happen in small tests */
	if (getenv("PGSTREAM_SPOOL_SEGMENT_BYTES") != NULL)
		wo.segment_bytes = strtoull(getenv("PGSTREAM_SPOOL_SEGMENT_BYTES"), NULL, 10);
#endif

	sh->wal = walspool_open(&wo, spooled, err);
	if (sh->wal == NULL)
		return sync_error_context(err, "could not open the spool in \"%s\"",
								  opts->wal_spool_dir);
	a->cursor = walspool_cursor_open(sh->wal, err);
	if (a->cursor == NULL)
		return false;
	log_info("spooling the stream to %s (%llu bytes there now, complete up to %X/%X)",
			 opts->wal_spool_dir, (unsigned long long) walspool_disk_bytes(sh->wal),
			 LSN_ARGS(*spooled));
	return true;
}

bool
stream_run(const StreamOptions *opts, ReplClient *rc, PGconn *src, PGconn *tgt,
		   SyncError *err)
{
	Shared		sh;
	Applier		a;
	Receiver	r = {.sh = &sh, .rc = rc, .stop = opts->stop};
	ReplStartOptions so = {opts->slot, opts->publication, opts->start_lsn, true, true,
		opts->extra_publication};
	pthread_t	thread;
	bool		ok;
	Lsn			spooled = 0;

	memset(&sh, 0, sizeof(sh));
	memset(&a, 0, sizeof(a));
	pthread_mutex_init(&sh.lock, NULL);
	pthread_cond_init(&sh.nonempty, NULL);
	pthread_cond_init(&sh.nonfull, NULL);
	sh.durable = opts->start_lsn;
	a.opts = opts;
	a.sh = &sh;
	a.src = src;
	a.tgt = tgt;
	a.start_lsn = a.applied_lsn = opts->start_lsn;
	a.catchup_lsn = rc->server_flush_lsn;
	a.position_barriers = rc->server_version < STATE_POSITION_BARRIER_SOURCE_MAX;
	/*
	 * The last commit applied (before a reconnect, say cutover's own barrier
	 * transaction) is not sent again: it started before start_lsn, where it
	 * ended.  No WAL record spans B (WAL is reserved a record at a time), so
	 * if it ended after B it started at or after B, and start_lsn - 1 says
	 * so; if it ended at or before B, start_lsn - 1 is before B.
	 */
	a.last_commit_lsn = opts->start_lsn > 0 ? opts->start_lsn - 1 : 0;
	relmap_init(&a.rels);
	arena_init(&a.arena, NULL, 0);
	mkdir(opts->spool_dir, 0700);
	/* with --spool, segments are released as applied: commits must be flushed */
	a.writer = writer_create(opts->target_conninfo, opts->wal_spool_dir == NULL,
							 opts->start_lsn, err);
	rc->confirm = true;
	ok = a.writer != NULL && (opts->wal_spool_dir == NULL || open_wal_spool(opts, &sh, &a, &spooled, err));
	if (spooled > so.start_lsn)
	{
		/* what the spool holds past the applied position is not asked for again */
		so.start_lsn = spooled;
		sh.durable = spooled;
		r.last_commit_end = r.boundary_commit_end = spooled;
	}
	ok = ok && replclient_start(rc, &so, err);
	/* --spool: mark where this session begins (see session_start) */
	ok = ok && (sh.wal == NULL || walspool_append(sh.wal, so.start_lsn, NULL, 0, err));
	if (ok)
	{
		pgoutput_state_init(&a.ps, rc->proto_version, false);
		pgoutput_state_init(&a.replay_ps, rc->proto_version, false);
		a.replay_ps.in_stream = true;
		log_info("streaming from slot \"%s\" at %X/%X (pgoutput protocol %d%s)", opts->slot,
				 LSN_ARGS(so.start_lsn), rc->proto_version,
				 rc->streaming ? ", large transactions streamed" : "");
		r.coalesce = socket_is_tcp(PQsocket(rc->conn));
		ok = pthread_create(&thread, NULL, receiver_main, &r) == 0 ||
			sync_error_set(err, SYNC_ERR_INTERNAL, "could not start the receiver thread");
		if (ok)
		{
			ok = applier_run(&a, err);
			pthread_mutex_lock(&sh.lock);
			sh.stop = true;
			pthread_mutex_unlock(&sh.lock);
			pthread_join(thread, NULL);
			ok = ok && (sh.wal == NULL || check_spool_after_barrier(&a, err));
		}
	}
	if (!ok && a.writer != NULL && PQstatus(writer_connection(a.writer)) == CONNECTION_OK)
		writer_rollback(a.writer);
	applier_term(&a);
	walspool_cursor_close(a.cursor);
	walspool_close(sh.wal);
	if (ok && sh.wal != NULL)
		remove_wal_spool(opts->wal_spool_dir);	/* everything is applied */
	shared_term(&sh);
	return ok;
}
