/*
 * tests/fuzz/fuzz_pgoutput.c -- fuzz pgoutput_decode().
 *
 * Input: one configuration byte, then the message.  The configuration byte
 * picks the protocol version (bits 0-1: 1..4), in_stream (bit 2),
 * streaming_parallel (bit 3) and a small arena limit (bit 4) so that the
 * out-of-memory paths run too.
 *
 * Oracles besides the sanitizers: the status and error code agree; state
 * changes only on a successful Stream Start/Stop; and on DECODE_OK the wire
 * length recomputed from the decoded message equals the input length
 * exactly, and every view lies inside the input.
 */
#include <string.h>

#include "protocol/pgoutput.h"
#include "tests/fuzz/fuzz_target.h"

static bool
inside(ByteView v, const uint8_t *base, size_t len)
{
	return v.len == 0 || (v.ptr >= base && v.len <= len &&
	                      v.ptr - base <= (ptrdiff_t) (len - v.len));
}

/* A view that must be a NUL-terminated string inside the input. */
static size_t
string_len(ByteView v, const uint8_t *base, size_t len)
{
	FUZZ_CHECK(v.ptr != NULL && inside(v, base, len) &&
	           v.ptr + v.len < base + len);
	FUZZ_CHECK(v.ptr[v.len] == '\0' && memchr(v.ptr, '\0', v.len) == NULL);
	return v.len + 1;
}

static size_t
tuple_len(const TupleData *t, const uint8_t *base, size_t len)
{
	size_t n = 2;

	FUZZ_CHECK(t->ncols == 0 || t->values != NULL);
	for (uint16_t i = 0; i < t->ncols; i++)
	{
		const TupleValue *v = &t->values[i];

		n += 1;
		if (v->kind == TUPLE_VALUE_TEXT || v->kind == TUPLE_VALUE_BINARY)
		{
			FUZZ_CHECK(inside(v->data, base, len));
			n += 4 + v->data.len;
		}
		else
			FUZZ_CHECK(v->kind == TUPLE_VALUE_NULL ||
			           v->kind == TUPLE_VALUE_UNCHANGED_TOAST);
	}
	return n;
}

static size_t
relation_len(const PgoutputRelation *r, const uint8_t *base, size_t len)
{
	size_t n = 4 + string_len(r->nspname, base, len) +
	           string_len(r->relname, base, len) + 1 + 2;

	FUZZ_CHECK(r->natts == 0 || r->columns != NULL);
	for (uint16_t i = 0; i < r->natts; i++)
	{
		FUZZ_CHECK((r->columns[i].flags & ~PGOUTPUT_COLUMN_FLAG_KEY) == 0);
		n += 1 + string_len(r->columns[i].name, base, len) + 8;
	}
	return n;
}

static size_t
change_len(const PgoutputMessage *m, const uint8_t *base, size_t len)
{
	const PgoutputChange *c = &m->u.change;
	size_t n = 4;

	if (c->old_kind != PGOUTPUT_OLD_NONE)
	{
		FUZZ_CHECK(m->type != PGOUTPUT_MSG_INSERT);
		FUZZ_CHECK(c->old_kind == PGOUTPUT_OLD_KEY ||
		           c->old_kind == PGOUTPUT_OLD_TUPLE);
		n += 1 + tuple_len(&c->old_tuple, base, len);
	}
	FUZZ_CHECK(c->has_new_tuple == (m->type != PGOUTPUT_MSG_DELETE));
	FUZZ_CHECK(m->type != PGOUTPUT_MSG_DELETE || c->old_kind != 0);
	if (c->has_new_tuple)
		n += 1 + tuple_len(&c->new_tuple, base, len);
	return n;
}

/* Wire bytes after the tag for the two-phase types. */
static size_t
two_phase_len(const PgoutputMessage *m, const uint8_t *base, size_t len)
{
	switch (m->type)
	{
		case PGOUTPUT_MSG_BEGIN_PREPARE:
			return 28 + string_len(m->u.prepare.gid, base, len);
		case PGOUTPUT_MSG_PREPARE:
		case PGOUTPUT_MSG_STREAM_PREPARE:
		case PGOUTPUT_MSG_COMMIT_PREPARED:
			return 29 + string_len(m->u.prepare.gid, base, len);
		case PGOUTPUT_MSG_ROLLBACK_PREPARED:
			return 37 + string_len(m->u.rollback_prepared.gid, base, len);
		default:
			FUZZ_CHECK(0);
			return 0;
	}
}

/* Wire bytes after the tag (and stream xid) for the non-change types. */
static size_t
other_len(const PgoutputMessage *m, bool parallel, const uint8_t *base,
          size_t len)
{
	switch (m->type)
	{
		case PGOUTPUT_MSG_BEGIN:
			FUZZ_CHECK(m->u.begin.final_lsn != 0);
			return 20;
		case PGOUTPUT_MSG_COMMIT:
			FUZZ_CHECK(m->u.commit.flags == 0);
			return 25;
		case PGOUTPUT_MSG_ORIGIN:
			return 8 + string_len(m->u.origin.name, base, len);
		case PGOUTPUT_MSG_TYPE:
			return 4 + string_len(m->u.type.nspname, base, len) +
			       string_len(m->u.type.typname, base, len);
		case PGOUTPUT_MSG_TRUNCATE:
			FUZZ_CHECK(m->u.truncate.nrelids == 0 || m->u.truncate.relids);
			FUZZ_CHECK((m->u.truncate.flags & ~0x03) == 0);
			return 5 + 4 * (size_t) m->u.truncate.nrelids;
		case PGOUTPUT_MSG_MESSAGE:
			FUZZ_CHECK(inside(m->u.message.content, base, len));
			return 9 + string_len(m->u.message.prefix, base, len) + 4 +
			       m->u.message.content.len;
		case PGOUTPUT_MSG_STREAM_START:
			return 5;
		case PGOUTPUT_MSG_STREAM_STOP:
			return 0;
		case PGOUTPUT_MSG_STREAM_COMMIT:
			return 29;
		case PGOUTPUT_MSG_STREAM_ABORT:
			FUZZ_CHECK(m->u.stream_abort.has_abort_info == parallel);
			return parallel ? 24 : 8;
		default:
			return two_phase_len(m, base, len);
	}
}

static size_t
message_len(const PgoutputMessage *m, bool parallel, const uint8_t *base,
            size_t len)
{
	size_t n = 1 + (m->has_stream_xid ? 4 : 0);

	switch (m->type)
	{
		case PGOUTPUT_MSG_RELATION:
			return n + relation_len(&m->u.relation, base, len);
		case PGOUTPUT_MSG_INSERT:
		case PGOUTPUT_MSG_UPDATE:
		case PGOUTPUT_MSG_DELETE:
			return n + change_len(m, base, len);
		default:
			return n + other_len(m, parallel, base, len);
	}
}

/* The types that carry the Int32 xid prefix inside a stream block. */
static bool
takes_stream_xid(PgoutputMsgType type)
{
	switch (type)
	{
		case PGOUTPUT_MSG_RELATION:
		case PGOUTPUT_MSG_TYPE:
		case PGOUTPUT_MSG_INSERT:
		case PGOUTPUT_MSG_UPDATE:
		case PGOUTPUT_MSG_DELETE:
		case PGOUTPUT_MSG_TRUNCATE:
		case PGOUTPUT_MSG_MESSAGE:
			return true;
		default:
			return false;
	}
}

static void
check_failure(DecodeStatus status, const SyncError *err)
{
	FUZZ_CHECK(status == DECODE_TRUNCATED || status == DECODE_INVALID);
	if (status == DECODE_TRUNCATED)
		FUZZ_CHECK(err->code == SYNC_ERR_TRUNCATED);
	else
		FUZZ_CHECK(err->code == SYNC_ERR_INVALID ||
		           err->code == SYNC_ERR_NOMEM);
	FUZZ_CHECK(err->message[0] != '\0');
	FUZZ_CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL);
}

/* Oracles for a message that decoded: see the file header. */
static void
check_success(const PgoutputMessage *m, const PgoutputState *before,
              const PgoutputState *after, const uint8_t *data, size_t len)
{
	bool parallel = before->streaming_parallel && before->proto_version >= 4;

	FUZZ_CHECK(pgoutput_msg_min_proto(m->type) != 0 &&
	           pgoutput_msg_min_proto(m->type) <= before->proto_version);
	if (m->type == PGOUTPUT_MSG_STREAM_START)
		FUZZ_CHECK(!before->in_stream && after->in_stream);
	else if (m->type == PGOUTPUT_MSG_STREAM_STOP)
		FUZZ_CHECK(before->in_stream && !after->in_stream);
	else
		FUZZ_CHECK(after->in_stream == before->in_stream);
	FUZZ_CHECK(m->has_stream_xid ==
	           (before->in_stream && takes_stream_xid(m->type)));
	FUZZ_CHECK(!m->has_stream_xid || m->stream_xid != 0);
	FUZZ_CHECK(message_len(m, parallel, data, len) == len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static Arena big;
	static Arena small;
	static bool ready;
	PgoutputState st;
	PgoutputState before;
	PgoutputMessage m;
	SyncError err;
	DecodeStatus status;
	Arena *arena;

	if (!ready)
	{
		arena_init(&big, NULL, 0);
		arena_init(&small, NULL, 256);
		ready = true;
	}
	if (size < 1)
		return 0;
	pgoutput_state_init(&st, 1 + (data[0] & 0x03), (data[0] & 0x08) != 0);
	st.in_stream = (data[0] & 0x04) != 0;
	before = st;
	arena = (data[0] & 0x10) != 0 ? &small : &big;
	arena_reset(arena); /* the previous input's arrays are dead by now */
	status = pgoutput_decode(data + 1, size - 1, &st, &m, arena, &err);
	if (status != DECODE_OK)
	{
		check_failure(status, &err);
		FUZZ_CHECK(st.in_stream == before.in_stream);
		return 0;
	}
	check_success(&m, &before, &st, data + 1, size - 1);
	return 0;
}
