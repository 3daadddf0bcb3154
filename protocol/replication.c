/*
 * protocol/replication.c -- decode the walsender's CopyBoth messages (XLogData
 * 'w', primary keepalive 'k'), encode the standby status update 'r', and
 * compute feedback positions that obey the walsender's rules.
 *
 * Layouts: protocol/README.md, or protocol.sgml "Streaming Replication
 * Protocol".  Pure: no I/O and no clock; the caller passes "now".
 */
#include "protocol/replication.h"

#include "protocol/bytes.h"

#include <string.h>

const char *
repl_message_kind_name(int kind)
{
	switch (kind)
	{
		case REPL_MSG_XLOGDATA:
			return "xlogdata";
		case REPL_MSG_KEEPALIVE:
			return "keepalive";
		default:
			return "unknown";
	}
}

static DecodeStatus
finish_status(ByteReader *r, const char *msg_name, SyncError *err)
{
	if (byte_reader_finish(r, msg_name, err))
		return DECODE_OK;
	return r->failure == BYTE_READER_TRUNCATED ? DECODE_TRUNCATED
	                                           : DECODE_INVALID;
}

/* 'w': three Int64 then the payload, which is everything that is left. */
static DecodeStatus
decode_xlogdata(ByteReader *r, ReplMessage *out, SyncError *err)
{
	ByteView data;

	out->data_start = byte_reader_u64(r, "dataStart");
	out->wal_end = byte_reader_u64(r, "walEnd");
	out->send_time = byte_reader_i64(r, "sendTime");
	data = byte_reader_bytes(r, byte_reader_remaining(r), "data");
	out->data = data.ptr;
	out->data_len = data.len;
	return finish_status(r, "XLogData", err);
}

/* 'k': Int64 walEnd, Int64 sendTime, Byte1 replyRequested (0 or 1). */
static DecodeStatus
decode_keepalive(ByteReader *r, ReplMessage *out, SyncError *err)
{
	size_t reply_at;
	uint8_t reply;

	out->wal_end = byte_reader_u64(r, "walEnd");
	out->send_time = byte_reader_i64(r, "sendTime");
	reply_at = r->pos;
	reply = byte_reader_u8(r, "replyRequested");
	if (reply > 1)
		byte_reader_invalid_at(r, reply_at, "replyRequested", "must be 0 or 1");
	out->reply_requested = reply == 1;
	return finish_status(r, "Keepalive", err);
}

DecodeStatus
replication_decode(const uint8_t *buf, size_t len, ReplMessage *out,
                   SyncError *err)
{
	ByteReader r;
	uint8_t kind;

	memset(out, 0, sizeof(*out));
	byte_reader_init(&r, buf, len);
	kind = byte_reader_u8(&r, "message type");
	if (byte_reader_failed(&r))
		return finish_status(&r, "replication", err);
	out->kind = (ReplMessageKind) kind;
	if (kind == REPL_MSG_XLOGDATA)
		return decode_xlogdata(&r, out, err);
	if (kind == REPL_MSG_KEEPALIVE)
		return decode_keepalive(&r, out, err);
	sync_error_set(
	    err, SYNC_ERR_INVALID,
	    "replication: invalid \"message type\" at byte 0: unknown type 0x%02X",
	    (unsigned) kind);
	return DECODE_INVALID;
}

size_t
replication_encode_status(uint8_t *out, Lsn write_lsn, Lsn flush_lsn,
                          Lsn apply_lsn, PgTimestamp now, bool reply_requested)
{
	ByteWriter w;

	byte_writer_init(&w, out, REPL_STATUS_UPDATE_LEN);
	byte_writer_u8(&w, 'r');
	byte_writer_u64(&w, write_lsn);
	byte_writer_u64(&w, flush_lsn);
	byte_writer_u64(&w, apply_lsn);
	byte_writer_u64(&w, (uint64_t) now);
	byte_writer_u8(&w, reply_requested ? 1 : 0);
	return w.len;
}

void
feedback_init(FeedbackState *f, Lsn start)
{
	f->received = start;
	f->durable = start;
	f->reported_write = start;
	f->reported_flush = start;
	f->idle = false;
}

void
feedback_note_received(FeedbackState *f, Lsn lsn)
{
	if (lsn > f->received)
		f->received = lsn;
}

void
feedback_note_data(FeedbackState *f, Lsn lsn)
{
	feedback_note_received(f, lsn);
	f->idle = false;
}

void
feedback_note_durable(FeedbackState *f, Lsn lsn)
{
	if (lsn > f->durable)
		f->durable = lsn;
}

void
feedback_set_idle(FeedbackState *f, bool idle)
{
	f->idle = idle;
}

/*
 * write = running max received; flush = what is durable, capped at what was
 * received, or everything received when idle.  Neither goes below what was
 * already reported (PG17 and older assign confirmed_flush unconditionally).
 */
void
feedback_next(FeedbackState *f, Lsn *write_lsn, Lsn *flush_lsn)
{
	Lsn flush = f->idle ? f->received
	                    : (f->durable < f->received ? f->durable : f->received);

	if (f->received > f->reported_write)
		f->reported_write = f->received;
	if (flush > f->reported_flush)
		f->reported_flush = flush;
	*write_lsn = f->reported_write;
	*flush_lsn = f->reported_flush;
}
