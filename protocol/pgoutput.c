/*
 * protocol/pgoutput.c -- decode one pgoutput logical replication message
 * (protocol versions 1 to 4).
 *
 * The shape follows proto.c's logicalrep_read_*() functions: one reader per
 * message type, dispatched from a table that also carries each type's first
 * protocol version and where it may appear relative to a Stream Start ..
 * Stream Stop block.  Readers use the sticky ByteReader and read straight
 * through; pgoutput_decode() checks once at the end, which also rejects
 * trailing bytes.  Every count is bounded by the bytes remaining before any
 * arena space is taken.  Layouts: protocol/README.md.
 */
#include "protocol/pgoutput.h"

#include <string.h>

typedef struct Decoder
{
	ByteReader r;
	Arena *arena;
	const PgoutputState *state;
} Decoder;

typedef void (*ReadFn)(Decoder *d, PgoutputMessage *m);

/* Where a message may appear relative to Stream Start .. Stream Stop. */
typedef enum StreamRule
{
	STREAM_ANY,     /* inside or outside a block */
	STREAM_OUTSIDE, /* never inside a block */
	STREAM_INSIDE   /* only inside a block (Stream Stop) */
} StreamRule;

typedef struct MsgSpec
{
	uint8_t tag;
	uint8_t min_proto;
	uint8_t rule;          /* StreamRule */
	bool takes_stream_xid; /* Int32 xid prefix inside a block */
	const char *name;      /* pgoutput_msg_type_name() */
	const char *title;     /* in error messages, as protocol.sgml names it */
	ReadFn read;
} MsgSpec;

/* Field names for the two tuple positions, so errors say which one broke. */
typedef struct TupleFields
{
	const char *count;
	const char *values;
	const char *kind;
	const char *length;
	const char *data;
} TupleFields;

static const TupleFields new_tuple_fields = {
    "new tuple column count", "new tuple columns", "new tuple column kind",
    "new tuple column length", "new tuple column data"};

static const TupleFields old_tuple_fields = {
    "old tuple column count", "old tuple columns", "old tuple column kind",
    "old tuple column length", "old tuple column data"};

/* Smallest wire size of one Relation column: flags, "" name, type, typmod. */
#define RELATION_COLUMN_MIN_BYTES 10

/* ---------- field helpers ---------- */

/* A flags byte; bits outside allowed make the message invalid. */
static uint8_t
read_flags(Decoder *d, const char *field, uint8_t allowed, const char *reason)
{
	size_t at = d->r.pos;
	uint8_t v = byte_reader_u8(&d->r, field);

	if ((v & (uint8_t) ~allowed) != 0)
		byte_reader_invalid_at(&d->r, at, field, reason);
	return v;
}

/* An LSN the protocol guarantees to be set (proto.c errors on 0). */
static Lsn
read_lsn_set(Decoder *d, const char *field)
{
	size_t at = d->r.pos;
	Lsn v = byte_reader_u64(&d->r, field);

	if (v == INVALID_LSN)
		byte_reader_invalid_at(&d->r, at, field, "must not be 0");
	return v;
}

/* A transaction id the protocol guarantees to be valid (not 0). */
static Xid
read_xid_set(Decoder *d, const char *field)
{
	size_t at = d->r.pos;
	Xid v = byte_reader_u32(&d->r, field);

	if (v == 0)
		byte_reader_invalid_at(&d->r, at, field, "must not be 0");
	return v;
}

static int32_t
as_int32(uint32_t u)
{
	if (u <= (uint32_t) INT32_MAX)
		return (int32_t) u;
	return -(int32_t) (~u) - 1;
}

/*
 * Check that count items of at least min_bytes each can fit in what is left
 * of the message; the count was read at offset at.  This runs before any
 * arena space is taken, so a forged count costs nothing.
 */
static bool
check_count(Decoder *d, size_t at, uint64_t count, size_t min_bytes,
            const char *field)
{
	if (byte_reader_failed(&d->r))
		return false;
	if (count > byte_reader_remaining(&d->r) / min_bytes)
	{
		byte_reader_invalid_at(&d->r, at, field,
		                       "exceeds what the remaining bytes can hold");
		return false;
	}
	return true;
}

/* count zeroed elements from the arena, or NULL (reader fails) when refused. */
static void *
take_array(Decoder *d, size_t count, size_t elem_size, const char *field)
{
	void *p;

	if (byte_reader_failed(&d->r) || count == 0)
		return NULL;
	p = d->arena != NULL ? arena_alloc_array(d->arena, count, elem_size) : NULL;
	if (p == NULL)
		byte_reader_nomem(&d->r, field);
	return p;
}

/* ---------- TupleData ---------- */

static void
read_value(Decoder *d, TupleValue *v, const TupleFields *f)
{
	size_t at = d->r.pos;
	uint8_t kind = byte_reader_u8(&d->r, f->kind);
	uint32_t len;

	switch (kind)
	{
		case TUPLE_VALUE_NULL:
		case TUPLE_VALUE_UNCHANGED_TOAST:
			break;
		case TUPLE_VALUE_TEXT:
		case TUPLE_VALUE_BINARY:
			len = byte_reader_u32(&d->r, f->length);
			v->data = byte_reader_bytes(&d->r, len, f->data);
			break;
		default:
			byte_reader_invalid_at(&d->r, at, f->kind,
			                       "must be 'n', 'u', 't' or 'b'");
			return;
	}
	v->kind = (TupleValueKind) kind;
}

/* Int16 ncols, then ncols values of at least one byte each. */
static void
read_tuple(Decoder *d, TupleData *t, const TupleFields *f)
{
	size_t at = d->r.pos;

	t->ncols = byte_reader_u16(&d->r, f->count);
	if (!check_count(d, at, t->ncols, 1, f->count))
		return;
	t->values = take_array(d, t->ncols, sizeof(TupleValue), f->values);
	for (uint16_t i = 0; i < t->ncols && !byte_reader_failed(&d->r); i++)
		read_value(d, &t->values[i], f);
}

/* The Byte1 that names the next tuple part ('N', 'K' or 'O'). */
static uint8_t
read_tuple_tag(Decoder *d, size_t *at)
{
	*at = d->r.pos;
	return byte_reader_u8(&d->r, "tuple tag");
}

/* ---------- transaction boundaries ---------- */

static void
read_begin(Decoder *d, PgoutputMessage *m)
{
	m->u.begin.final_lsn = read_lsn_set(d, "final_lsn");
	m->u.begin.commit_time = byte_reader_i64(&d->r, "commit_time");
	m->u.begin.xid = byte_reader_u32(&d->r, "xid");
}

static void
read_commit(Decoder *d, PgoutputMessage *m)
{
	m->u.commit.flags = read_flags(d, "flags", 0, "must be 0");
	m->u.commit.commit_lsn = byte_reader_u64(&d->r, "commit_lsn");
	m->u.commit.end_lsn = byte_reader_u64(&d->r, "end_lsn");
	m->u.commit.commit_time = byte_reader_i64(&d->r, "commit_time");
}

static void
read_origin(Decoder *d, PgoutputMessage *m)
{
	m->u.origin.origin_lsn = byte_reader_u64(&d->r, "origin_lsn");
	m->u.origin.name = byte_reader_cstring(&d->r, "origin name");
}

/* ---------- schema ---------- */

static void
read_relation_column(Decoder *d, RelationColumn *c)
{
	c->flags = read_flags(d, "column flags", PGOUTPUT_COLUMN_FLAG_KEY,
	                      "only bit 0x01 may be set");
	c->name = byte_reader_cstring(&d->r, "column name");
	c->type_oid = byte_reader_u32(&d->r, "column type");
	c->typmod = as_int32(byte_reader_u32(&d->r, "column type modifier"));
}

static void
read_relation(Decoder *d, PgoutputMessage *m)
{
	PgoutputRelation *rel = &m->u.relation;
	size_t at;
	uint8_t ri;

	rel->relid = byte_reader_u32(&d->r, "relid");
	rel->nspname = byte_reader_cstring(&d->r, "namespace");
	rel->relname = byte_reader_cstring(&d->r, "relation name");
	at = d->r.pos;
	ri = byte_reader_u8(&d->r, "replica identity");
	if (ri != REPLICA_IDENTITY_DEFAULT && ri != REPLICA_IDENTITY_NOTHING &&
	    ri != REPLICA_IDENTITY_FULL && ri != REPLICA_IDENTITY_INDEX)
		byte_reader_invalid_at(&d->r, at, "replica identity",
		                       "must be 'd', 'n', 'f' or 'i'");
	rel->replident = (ReplicaIdentity) ri;
	at = d->r.pos;
	rel->natts = byte_reader_u16(&d->r, "column count");
	if (!check_count(d, at, rel->natts, RELATION_COLUMN_MIN_BYTES,
	                 "column count"))
		return;
	rel->columns = take_array(d, rel->natts, sizeof(RelationColumn), "columns");
	for (uint16_t i = 0; i < rel->natts && !byte_reader_failed(&d->r); i++)
		read_relation_column(d, &rel->columns[i]);
}

static void
read_type(Decoder *d, PgoutputMessage *m)
{
	m->u.type.typoid = byte_reader_u32(&d->r, "type oid");
	m->u.type.nspname = byte_reader_cstring(&d->r, "namespace");
	m->u.type.typname = byte_reader_cstring(&d->r, "type name");
}

/* ---------- changes ---------- */

static void
read_insert(Decoder *d, PgoutputMessage *m)
{
	PgoutputChange *c = &m->u.change;
	size_t at;

	c->relid = byte_reader_u32(&d->r, "relid");
	if (read_tuple_tag(d, &at) != 'N')
		byte_reader_invalid_at(&d->r, at, "tuple tag", "must be 'N'");
	c->has_new_tuple = true;
	read_tuple(d, &c->new_tuple, &new_tuple_fields);
}

/* relid, then optionally 'K' or 'O' with the old tuple, then 'N' and the new.
 */
static void
read_update(Decoder *d, PgoutputMessage *m)
{
	PgoutputChange *c = &m->u.change;
	size_t at;
	uint8_t tag;

	c->relid = byte_reader_u32(&d->r, "relid");
	tag = read_tuple_tag(d, &at);
	if (tag == PGOUTPUT_OLD_KEY || tag == PGOUTPUT_OLD_TUPLE)
	{
		c->old_kind = (char) tag;
		read_tuple(d, &c->old_tuple, &old_tuple_fields);
		if (read_tuple_tag(d, &at) != 'N')
			byte_reader_invalid_at(&d->r, at, "tuple tag", "must be 'N'");
	}
	else if (tag != 'N')
		byte_reader_invalid_at(&d->r, at, "tuple tag",
		                       "must be 'K', 'O' or 'N'");
	c->has_new_tuple = true;
	read_tuple(d, &c->new_tuple, &new_tuple_fields);
}

static void
read_delete(Decoder *d, PgoutputMessage *m)
{
	PgoutputChange *c = &m->u.change;
	size_t at;
	uint8_t tag;

	c->relid = byte_reader_u32(&d->r, "relid");
	tag = read_tuple_tag(d, &at);
	if (tag != PGOUTPUT_OLD_KEY && tag != PGOUTPUT_OLD_TUPLE)
		byte_reader_invalid_at(&d->r, at, "tuple tag", "must be 'K' or 'O'");
	c->old_kind = (char) tag;
	read_tuple(d, &c->old_tuple, &old_tuple_fields);
}

static void
read_truncate(Decoder *d, PgoutputMessage *m)
{
	PgoutputTruncate *t = &m->u.truncate;
	size_t at = d->r.pos;

	t->nrelids = byte_reader_u32(&d->r, "relation count");
	t->flags = read_flags(d, "flags",
	                      PGOUTPUT_TRUNCATE_CASCADE |
	                          PGOUTPUT_TRUNCATE_RESTART_IDENTITY,
	                      "only bits 0x01 and 0x02 may be set");
	if (!check_count(d, at, t->nrelids, 4, "relation count"))
		return;
	t->relids = take_array(d, t->nrelids, sizeof(Oid), "relids");
	for (uint32_t i = 0; i < t->nrelids && !byte_reader_failed(&d->r); i++)
		t->relids[i] = byte_reader_u32(&d->r, "relid");
}

static void
read_message(Decoder *d, PgoutputMessage *m)
{
	PgoutputLogicalMessage *lm = &m->u.message;
	uint32_t len;

	lm->flags = read_flags(d, "flags", PGOUTPUT_MESSAGE_TRANSACTIONAL,
	                       "only bit 0x01 may be set");
	lm->lsn = byte_reader_u64(&d->r, "lsn");
	lm->prefix = byte_reader_cstring(&d->r, "prefix");
	len = byte_reader_u32(&d->r, "content length");
	lm->content = byte_reader_bytes(&d->r, len, "content");
}

/* ---------- streaming (proto >= 2) ---------- */

static void
read_stream_start(Decoder *d, PgoutputMessage *m)
{
	size_t at;
	uint8_t first;

	m->u.stream_start.xid = read_xid_set(d, "xid");
	at = d->r.pos;
	first = byte_reader_u8(&d->r, "first_segment");
	if (first > 1)
		byte_reader_invalid_at(&d->r, at, "first_segment", "must be 0 or 1");
	m->u.stream_start.first_segment = first == 1;
}

static void
read_stream_stop(Decoder *d, PgoutputMessage *m)
{
	(void) d;
	(void) m;
}

static void
read_stream_commit(Decoder *d, PgoutputMessage *m)
{
	PgoutputStreamCommit *sc = &m->u.stream_commit;

	sc->xid = read_xid_set(d, "xid");
	sc->flags = read_flags(d, "flags", 0, "must be 0");
	sc->commit_lsn = byte_reader_u64(&d->r, "commit_lsn");
	sc->end_lsn = byte_reader_u64(&d->r, "end_lsn");
	sc->commit_time = byte_reader_i64(&d->r, "commit_time");
}

/* abort_lsn and abort_time are sent only with streaming = parallel. */
static void
read_stream_abort(Decoder *d, PgoutputMessage *m)
{
	PgoutputStreamAbort *sa = &m->u.stream_abort;

	sa->xid = read_xid_set(d, "xid");
	sa->subxid = read_xid_set(d, "subxid");
	sa->has_abort_info =
	    d->state->streaming_parallel && d->state->proto_version >= 4;
	if (!sa->has_abort_info)
		return;
	sa->abort_lsn = byte_reader_u64(&d->r, "abort_lsn");
	sa->abort_time = byte_reader_i64(&d->r, "abort_time");
}

/* ---------- two-phase commit (proto >= 3) ---------- */

/*
 * The fields Begin Prepare, Prepare, Stream Prepare and Commit Prepared
 * share after their optional flags byte: two LSNs, a time, xid and gid.
 */
static void
read_prepare_fields(Decoder *d, PgoutputPrepare *p, const char *lsn_field,
					const char *time_field)
{
	p->lsn = read_lsn_set(d, lsn_field);
	p->end_lsn = read_lsn_set(d, "end_lsn");
	p->time = byte_reader_i64(&d->r, time_field);
	p->xid = byte_reader_u32(&d->r, "xid");
	p->gid = byte_reader_cstring(&d->r, "gid");
}

static void
read_begin_prepare(Decoder *d, PgoutputMessage *m)
{
	read_prepare_fields(d, &m->u.prepare, "prepare_lsn", "prepare_time");
}

/* Prepare and Stream Prepare (logicalrep_read_prepare_common). */
static void
read_prepare(Decoder *d, PgoutputMessage *m)
{
	m->u.prepare.flags = read_flags(d, "flags", 0, "must be 0");
	read_prepare_fields(d, &m->u.prepare, "prepare_lsn", "prepare_time");
}

static void
read_commit_prepared(Decoder *d, PgoutputMessage *m)
{
	m->u.prepare.flags = read_flags(d, "flags", 0, "must be 0");
	read_prepare_fields(d, &m->u.prepare, "commit_lsn", "commit_time");
}

static void
read_rollback_prepared(Decoder *d, PgoutputMessage *m)
{
	PgoutputRollbackPrepared *rp = &m->u.rollback_prepared;

	rp->flags = read_flags(d, "flags", 0, "must be 0");
	rp->prepare_end_lsn = read_lsn_set(d, "prepare_end_lsn");
	rp->rollback_end_lsn = read_lsn_set(d, "rollback_end_lsn");
	rp->prepare_time = byte_reader_i64(&d->r, "prepare_time");
	rp->rollback_time = byte_reader_i64(&d->r, "rollback_time");
	rp->xid = byte_reader_u32(&d->r, "xid");
	rp->gid = byte_reader_cstring(&d->r, "gid");
}

/* ---------- dispatch ---------- */

static const MsgSpec msg_specs[] = {
    {'B', 1, STREAM_OUTSIDE, false, "begin", "Begin", read_begin},
    {'C', 1, STREAM_OUTSIDE, false, "commit", "Commit", read_commit},
    {'O', 1, STREAM_ANY, false, "origin", "Origin", read_origin},
    {'R', 1, STREAM_ANY, true, "relation", "Relation", read_relation},
    {'Y', 1, STREAM_ANY, true, "type", "Type", read_type},
    {'I', 1, STREAM_ANY, true, "insert", "Insert", read_insert},
    {'U', 1, STREAM_ANY, true, "update", "Update", read_update},
    {'D', 1, STREAM_ANY, true, "delete", "Delete", read_delete},
    {'T', 1, STREAM_ANY, true, "truncate", "Truncate", read_truncate},
    {'M', 1, STREAM_ANY, true, "message", "Message", read_message},
    {'S', 2, STREAM_OUTSIDE, false, "stream_start", "Stream Start",
     read_stream_start},
    {'E', 2, STREAM_INSIDE, false, "stream_stop", "Stream Stop",
     read_stream_stop},
    {'c', 2, STREAM_OUTSIDE, false, "stream_commit", "Stream Commit",
     read_stream_commit},
    {'A', 2, STREAM_OUTSIDE, false, "stream_abort", "Stream Abort",
     read_stream_abort},
    {'b', 3, STREAM_OUTSIDE, false, "begin_prepare", "Begin Prepare",
     read_begin_prepare},
    {'P', 3, STREAM_OUTSIDE, false, "prepare", "Prepare", read_prepare},
    {'K', 3, STREAM_OUTSIDE, false, "commit_prepared", "Commit Prepared",
     read_commit_prepared},
    {'r', 3, STREAM_OUTSIDE, false, "rollback_prepared", "Rollback Prepared",
     read_rollback_prepared},
    {'p', 3, STREAM_OUTSIDE, false, "stream_prepare", "Stream Prepare",
     read_prepare},
};

static const MsgSpec *
spec_find(int tag)
{
	for (size_t i = 0; i < sizeof(msg_specs) / sizeof(msg_specs[0]); i++)
	{
		if (msg_specs[i].tag == tag)
			return &msg_specs[i];
	}
	return NULL;
}

const char *
pgoutput_msg_type_name(int type)
{
	const MsgSpec *spec = spec_find(type);

	return spec != NULL ? spec->name : "unknown";
}

int
pgoutput_msg_min_proto(int type)
{
	const MsgSpec *spec = spec_find(type);

	return spec != NULL ? spec->min_proto : 0;
}

void
pgoutput_state_init(PgoutputState *state, int proto_version,
                    bool streaming_parallel)
{
	state->proto_version = proto_version;
	state->in_stream = false;
	state->streaming_parallel = streaming_parallel;
}

/*
 * Is spec allowed at this protocol version and stream position?  Fills err
 * and returns false if not.  The tag is byte 0, so that is the offset.
 */
static bool
check_allowed(const MsgSpec *spec, const PgoutputState *state, SyncError *err)
{
	if (state->proto_version < spec->min_proto)
		return sync_error_set(
		    err, SYNC_ERR_INVALID,
		    "%s: invalid \"message type\" at byte 0: requires protocol version "
		    "%d or later, but version %d was negotiated",
		    spec->title, spec->min_proto, state->proto_version);
	if (spec->rule == STREAM_OUTSIDE && state->in_stream)
		return sync_error_set(
		    err, SYNC_ERR_INVALID,
		    "%s: invalid \"message type\" at byte 0: not allowed inside a "
		    "Stream Start .. Stream Stop block",
		    spec->title);
	if (spec->rule == STREAM_INSIDE && !state->in_stream)
		return sync_error_set(
		    err, SYNC_ERR_INVALID,
		    "%s: invalid \"message type\" at byte 0: only allowed inside a "
		    "Stream Start .. Stream Stop block",
		    spec->title);
	return true;
}

static DecodeStatus
reject_unknown_type(uint8_t tag, SyncError *err)
{
	if (tag >= 0x20 && tag < 0x7F)
		sync_error_set(err, SYNC_ERR_INVALID,
		               "pgoutput: invalid \"message type\" at byte 0: unknown "
		               "type '%c' (0x%02X)",
		               (char) tag, (unsigned) tag);
	else
		sync_error_set(
		    err, SYNC_ERR_INVALID,
		    "pgoutput: invalid \"message type\" at byte 0: unknown type 0x%02X",
		    (unsigned) tag);
	return DECODE_INVALID;
}

static DecodeStatus
finish_status(ByteReader *r, const char *msg_name, SyncError *err)
{
	if (byte_reader_finish(r, msg_name, err))
		return DECODE_OK;
	return r->failure == BYTE_READER_TRUNCATED ? DECODE_TRUNCATED
	                                           : DECODE_INVALID;
}

DecodeStatus
pgoutput_decode(const uint8_t *buf, size_t len, PgoutputState *state,
                PgoutputMessage *out, Arena *arena, SyncError *err)
{
	Decoder d = {.arena = arena, .state = state};
	const MsgSpec *spec;
	uint8_t tag;
	DecodeStatus status;

	memset(out, 0, sizeof(*out));
	if (state->proto_version < PGOUTPUT_PROTO_MIN ||
	    state->proto_version > PGOUTPUT_PROTO_MAX)
	{
		sync_error_set(err, SYNC_ERR_USAGE,
		               "pgoutput: unsupported protocol version %d",
		               state->proto_version);
		return DECODE_INVALID;
	}
	byte_reader_init(&d.r, buf, len);
	tag = byte_reader_u8(&d.r, "message type");
	if (byte_reader_failed(&d.r))
		return finish_status(&d.r, "pgoutput", err);
	if ((spec = spec_find(tag)) == NULL)
		return reject_unknown_type(tag, err);
	if (!check_allowed(spec, state, err))
		return DECODE_INVALID;
	out->type = (PgoutputMsgType) tag;
	if (spec->takes_stream_xid && state->in_stream)
	{
		out->has_stream_xid = true;
		out->stream_xid = read_xid_set(&d, "stream xid");
	}
	spec->read(&d, out);
	status = finish_status(&d.r, spec->title, err);
	if (status == DECODE_OK && tag == PGOUTPUT_MSG_STREAM_START)
		state->in_stream = true;
	else if (status == DECODE_OK && tag == PGOUTPUT_MSG_STREAM_STOP)
		state->in_stream = false;
	return status;
}
