/*
 * protocol/replication.h -- the CopyBoth envelope of a walsender stream.
 *
 * Server to client: XLogData ('w') carrying exactly one pgoutput message, and
 * primary keepalive ('k').  Client to server: standby status update ('r').
 * Layouts are in protocol/README.md.
 */
#ifndef PGSTREAM_PROTOCOL_REPLICATION_H
#define PGSTREAM_PROTOCOL_REPLICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/decode.h"
#include "protocol/error.h"
#include "protocol/lsn.h"

typedef enum ReplMessageKind
{
	REPL_MSG_XLOGDATA = 'w',
	REPL_MSG_KEEPALIVE = 'k'
} ReplMessageKind;

typedef struct ReplMessage
{
	ReplMessageKind kind;
	Lsn			data_start;		/* 'w' only; 0 for Relation/Type */
	Lsn			wal_end;		/* 'w': as data_start; 'k': server's sent position */
	PgTimestamp send_time;
	bool		reply_requested;	/* 'k' only */
	const uint8_t *data;		/* 'w' only: the pgoutput payload (a view) */
	size_t		data_len;
} ReplMessage;

#define REPL_XLOGDATA_HEADER_LEN 25
#define REPL_KEEPALIVE_LEN 18
#define REPL_STATUS_UPDATE_LEN 34

/* Never fails; "xlogdata", "keepalive" or "unknown". */
const char *repl_message_kind_name(int kind);

/*
 * Decode one CopyData payload from the server.  An XLogData's payload is
 * returned as a view (it may be empty; pgoutput_decode() then reports it
 * truncated).  A keepalive must be exactly 18 bytes with replyRequested 0 or
 * 1.  Unknown sub-types and trailing bytes are DECODE_INVALID.
 */
DecodeStatus replication_decode(const uint8_t *buf, size_t len,
								ReplMessage *out, SyncError *err);

/*
 * Encode a standby status update into out (REPL_STATUS_UPDATE_LEN bytes).
 * Returns the number of bytes written.
 */
size_t		replication_encode_status(uint8_t *out, Lsn write_lsn, Lsn flush_lsn,
									  Lsn apply_lsn, PgTimestamp now,
									  bool reply_requested);

/*
 * Feedback positions that obey the walsender's rules: reported positions
 * never move backwards, and flush never runs ahead of what the caller has
 * declared durable.  Pure state; the engine owns the timing and the socket.
 */
typedef struct FeedbackState
{
	Lsn			received;		/* running max of 'w' and 'k' positions */
	Lsn			durable;		/* highest commit end_lsn declared durable */
	Lsn			reported_write;
	Lsn			reported_flush;
	bool		idle;			/* nothing received is still pending apply */
} FeedbackState;

/*
 * Start at start (normally the slot's confirmed_flush, or the position
 * START_REPLICATION was given): received, durable and both reported positions
 * are set to it.  The state starts not idle, so flush follows durable until
 * the caller says otherwise.
 */
void		feedback_init(FeedbackState *f, Lsn start);

/* Record a position seen on the wire ('w' data_start/wal_end, 'k' wal_end). */
void		feedback_note_received(FeedbackState *f, Lsn lsn);

/*
 * An XLogData message arrived: record its position, and the state is no
 * longer idle (the message waits to be applied) until the caller says so
 * again after it has looked at what is pending.  An idle flag decided before
 * the message arrived must never let a status confirm it.
 */
void		feedback_note_data(FeedbackState *f, Lsn lsn);

/* The caller says every source commit ending at or before lsn is durable. */
void		feedback_note_durable(FeedbackState *f, Lsn lsn);

/*
 * The caller says whether everything received has been applied and made
 * durable (no transaction partly received or waiting).  When idle, the flush
 * position may advance to the received position, so the slot moves on an idle
 * source.
 */
void		feedback_set_idle(FeedbackState *f, bool idle);

/*
 * Compute the write/flush positions to send now, never lower than the last
 * ones sent, and remember them as reported.
 */
void		feedback_next(FeedbackState *f, Lsn *write_lsn, Lsn *flush_lsn);

#endif
