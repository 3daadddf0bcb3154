/*
 * tests/support/wire_build.c -- test-only encoder for walsender and pgoutput
 * messages, plus a catalogue of valid sample messages.  See wire_build.h.
 */
#include "tests/support/wire_build.h"

#include <string.h>

static void
put_i64(ByteWriter *w, int64_t v)
{
	byte_writer_u64(w, (uint64_t) v);
}

void
wire_stream_xid(ByteWriter *w, Xid stream_xid)
{
	if (stream_xid != 0)
		byte_writer_u32(w, stream_xid);
}

void
wire_tuple(ByteWriter *w, const WireTuple *t)
{
	byte_writer_u16(w, t->ncols);
	for (uint16_t i = 0; i < t->ncols; i++)
	{
		const WireValue *v = &t->values[i];

		byte_writer_u8(w, (uint8_t) v->kind);
		if (v->kind == 't' || v->kind == 'b')
		{
			byte_writer_u32(w, v->len);
			byte_writer_bytes(w, v->data, v->len);
		}
	}
}

void
wire_tuple_text(ByteWriter *w, uint16_t ncols, const char *const *texts)
{
	byte_writer_u16(w, ncols);
	for (uint16_t i = 0; i < ncols; i++)
	{
		if (texts[i] == NULL)
		{
			byte_writer_u8(w, 'n');
			continue;
		}
		byte_writer_u8(w, 't');
		byte_writer_u32(w, (uint32_t) strlen(texts[i]));
		byte_writer_bytes(w, texts[i], strlen(texts[i]));
	}
}

/*
 * The message encoders take one parameter per wire field, in wire order, as
 * proto.c's logicalrep_write_*() do; that is deliberate, so the parameter
 * limit of readability-function-size is off for them.
 */
/* NOLINTBEGIN(readability-function-size) */

void
wire_begin(ByteWriter *w, Lsn final_lsn, PgTimestamp commit_time, Xid xid)
{
	byte_writer_u8(w, 'B');
	byte_writer_u64(w, final_lsn);
	put_i64(w, commit_time);
	byte_writer_u32(w, xid);
}

void
wire_commit(ByteWriter *w, uint8_t flags, Lsn commit_lsn, Lsn end_lsn,
            PgTimestamp commit_time)
{
	byte_writer_u8(w, 'C');
	byte_writer_u8(w, flags);
	byte_writer_u64(w, commit_lsn);
	byte_writer_u64(w, end_lsn);
	put_i64(w, commit_time);
}

void
wire_origin(ByteWriter *w, Lsn origin_lsn, const char *name)
{
	byte_writer_u8(w, 'O');
	byte_writer_u64(w, origin_lsn);
	byte_writer_cstring(w, name);
}

void
wire_relation(ByteWriter *w, Xid stream_xid, Oid relid, const char *nspname,
              const char *relname, char replident, uint16_t natts,
              const WireColumn *cols)
{
	byte_writer_u8(w, 'R');
	wire_stream_xid(w, stream_xid);
	byte_writer_u32(w, relid);
	byte_writer_cstring(w, nspname);
	byte_writer_cstring(w, relname);
	byte_writer_u8(w, (uint8_t) replident);
	byte_writer_u16(w, natts);
	for (uint16_t i = 0; i < natts; i++)
	{
		byte_writer_u8(w, cols[i].flags);
		byte_writer_cstring(w, cols[i].name);
		byte_writer_u32(w, cols[i].type_oid);
		byte_writer_u32(w, (uint32_t) cols[i].typmod);
	}
}

void
wire_type(ByteWriter *w, Xid stream_xid, Oid typoid, const char *nspname,
          const char *typname)
{
	byte_writer_u8(w, 'Y');
	wire_stream_xid(w, stream_xid);
	byte_writer_u32(w, typoid);
	byte_writer_cstring(w, nspname);
	byte_writer_cstring(w, typname);
}

void
wire_insert(ByteWriter *w, Xid stream_xid, Oid relid,
            const WireTuple *new_tuple)
{
	byte_writer_u8(w, 'I');
	wire_stream_xid(w, stream_xid);
	byte_writer_u32(w, relid);
	byte_writer_u8(w, 'N');
	wire_tuple(w, new_tuple);
}

void
wire_update(ByteWriter *w, Xid stream_xid, Oid relid, char old_kind,
            const WireTuple *old_tuple, const WireTuple *new_tuple)
{
	byte_writer_u8(w, 'U');
	wire_stream_xid(w, stream_xid);
	byte_writer_u32(w, relid);
	if (old_kind != 0)
	{
		byte_writer_u8(w, (uint8_t) old_kind);
		wire_tuple(w, old_tuple);
	}
	byte_writer_u8(w, 'N');
	wire_tuple(w, new_tuple);
}

void
wire_delete(ByteWriter *w, Xid stream_xid, Oid relid, char old_kind,
            const WireTuple *old_tuple)
{
	byte_writer_u8(w, 'D');
	wire_stream_xid(w, stream_xid);
	byte_writer_u32(w, relid);
	byte_writer_u8(w, (uint8_t) old_kind);
	wire_tuple(w, old_tuple);
}

void
wire_truncate(ByteWriter *w, Xid stream_xid, uint32_t nrelids, uint8_t flags,
              const Oid *relids)
{
	byte_writer_u8(w, 'T');
	wire_stream_xid(w, stream_xid);
	byte_writer_u32(w, nrelids);
	byte_writer_u8(w, flags);
	for (uint32_t i = 0; i < nrelids; i++)
		byte_writer_u32(w, relids[i]);
}

void
wire_message(ByteWriter *w, Xid stream_xid, uint8_t flags, Lsn lsn,
             const char *prefix, const void *content, uint32_t len)
{
	byte_writer_u8(w, 'M');
	wire_stream_xid(w, stream_xid);
	byte_writer_u8(w, flags);
	byte_writer_u64(w, lsn);
	byte_writer_cstring(w, prefix);
	byte_writer_u32(w, len);
	byte_writer_bytes(w, content, len);
}

void
wire_stream_start(ByteWriter *w, Xid xid, uint8_t first_segment)
{
	byte_writer_u8(w, 'S');
	byte_writer_u32(w, xid);
	byte_writer_u8(w, first_segment);
}

void
wire_stream_stop(ByteWriter *w)
{
	byte_writer_u8(w, 'E');
}

void
wire_stream_commit(ByteWriter *w, Xid xid, uint8_t flags, Lsn commit_lsn,
                   Lsn end_lsn, PgTimestamp commit_time)
{
	byte_writer_u8(w, 'c');
	byte_writer_u32(w, xid);
	byte_writer_u8(w, flags);
	byte_writer_u64(w, commit_lsn);
	byte_writer_u64(w, end_lsn);
	put_i64(w, commit_time);
}

void
wire_stream_abort(ByteWriter *w, Xid xid, Xid subxid, bool with_abort_info,
                  Lsn abort_lsn, PgTimestamp abort_time)
{
	byte_writer_u8(w, 'A');
	byte_writer_u32(w, xid);
	byte_writer_u32(w, subxid);
	if (!with_abort_info)
		return;
	byte_writer_u64(w, abort_lsn);
	put_i64(w, abort_time);
}

void
wire_begin_prepare(ByteWriter *w, Lsn prepare_lsn, Lsn end_lsn,
                   PgTimestamp prepare_time, Xid xid, const char *gid)
{
	byte_writer_u8(w, 'b');
	byte_writer_u64(w, prepare_lsn);
	byte_writer_u64(w, end_lsn);
	put_i64(w, prepare_time);
	byte_writer_u32(w, xid);
	byte_writer_cstring(w, gid);
}

/* Prepare, Stream Prepare and Commit Prepared share one layout. */
static void
wire_prepare_common(ByteWriter *w, char tag, uint8_t flags, Lsn lsn,
                    Lsn end_lsn, PgTimestamp time, Xid xid, const char *gid)
{
	byte_writer_u8(w, (uint8_t) tag);
	byte_writer_u8(w, flags);
	byte_writer_u64(w, lsn);
	byte_writer_u64(w, end_lsn);
	put_i64(w, time);
	byte_writer_u32(w, xid);
	byte_writer_cstring(w, gid);
}

void
wire_prepare(ByteWriter *w, uint8_t flags, Lsn prepare_lsn, Lsn end_lsn,
             PgTimestamp prepare_time, Xid xid, const char *gid)
{
	wire_prepare_common(w, 'P', flags, prepare_lsn, end_lsn, prepare_time, xid,
	                    gid);
}

void
wire_stream_prepare(ByteWriter *w, uint8_t flags, Lsn prepare_lsn, Lsn end_lsn,
                    PgTimestamp prepare_time, Xid xid, const char *gid)
{
	wire_prepare_common(w, 'p', flags, prepare_lsn, end_lsn, prepare_time, xid,
	                    gid);
}

void
wire_commit_prepared(ByteWriter *w, uint8_t flags, Lsn commit_lsn, Lsn end_lsn,
                     PgTimestamp commit_time, Xid xid, const char *gid)
{
	wire_prepare_common(w, 'K', flags, commit_lsn, end_lsn, commit_time, xid,
	                    gid);
}

void
wire_rollback_prepared(ByteWriter *w, uint8_t flags, Lsn prepare_end_lsn,
                       Lsn rollback_end_lsn, PgTimestamp prepare_time,
                       PgTimestamp rollback_time, Xid xid, const char *gid)
{
	byte_writer_u8(w, 'r');
	byte_writer_u8(w, flags);
	byte_writer_u64(w, prepare_end_lsn);
	byte_writer_u64(w, rollback_end_lsn);
	put_i64(w, prepare_time);
	put_i64(w, rollback_time);
	byte_writer_u32(w, xid);
	byte_writer_cstring(w, gid);
}

/* NOLINTEND(readability-function-size) */

void
wire_xlogdata(ByteWriter *w, Lsn data_start, Lsn wal_end, PgTimestamp send_time,
              const void *payload, size_t len)
{
	byte_writer_u8(w, 'w');
	byte_writer_u64(w, data_start);
	byte_writer_u64(w, wal_end);
	put_i64(w, send_time);
	byte_writer_bytes(w, payload, len);
}

void
wire_keepalive(ByteWriter *w, Lsn wal_end, PgTimestamp send_time,
               uint8_t reply_requested)
{
	byte_writer_u8(w, 'k');
	byte_writer_u64(w, wal_end);
	put_i64(w, send_time);
	byte_writer_u8(w, reply_requested);
}

/* ---------- sample catalogue ---------- */

#define SAMPLE_XID 712
#define SAMPLE_SUBXID 713
#define SAMPLE_RELID 16385
#define SAMPLE_TIME                                                            \
	INT64_C(817552167123456) /* 2025-11-27 09:49:27.123456+00                  \
	                          */

static const WireColumn sample_columns[] = {
    {0x01, "id", 23, -1},
    {0x00, "name", 25, -1},
    {0x00, "price", 1700, 655366},
};

static const WireValue sample_values[] = {
    {'t', "42", 2},
    {'n', NULL, 0},
    {'b', "\x00\x01\x00\x02", 4},
};

static const WireValue sample_key_values[] = {
    {'t', "42", 2},
    {'n', NULL, 0},
    {'n', NULL, 0},
};

static const WireValue sample_toast_values[] = {
    {'t', "42", 2},
    {'u', NULL, 0},
    {'t', "", 0},
};

static const WireTuple sample_tuple = {3, sample_values};
static const WireTuple sample_key = {3, sample_key_values};
static const WireTuple sample_toast = {3, sample_toast_values};
static const Oid sample_relids[] = {16385, 16390};

static void
sample_begin(ByteWriter *w)
{
	wire_begin(w, 0x16B374D848, SAMPLE_TIME, SAMPLE_XID);
}

static void
sample_commit(ByteWriter *w)
{
	wire_commit(w, 0, 0x16B374D848, 0x16B374D880, SAMPLE_TIME);
}

static void
sample_origin(ByteWriter *w)
{
	wire_origin(w, 0x3000060, "pg_16401");
}

static void
sample_relation(ByteWriter *w)
{
	wire_relation(w, 0, SAMPLE_RELID, "public", "items", 'd', 3,
	              sample_columns);
}

static void
sample_relation_in_stream(ByteWriter *w)
{
	wire_relation(w, SAMPLE_SUBXID, SAMPLE_RELID, "", "items", 'f', 3,
	              sample_columns);
}

static void
sample_relation_no_columns(ByteWriter *w)
{
	wire_relation(w, 0, SAMPLE_RELID, "public", "empty", 'n', 0, NULL);
}

static void
sample_type(ByteWriter *w)
{
	wire_type(w, 0, 16400, "public", "mood");
}

static void
sample_type_in_stream(ByteWriter *w)
{
	wire_type(w, SAMPLE_XID, 16400, "", "int4");
}

static void
sample_insert(ByteWriter *w)
{
	wire_insert(w, 0, SAMPLE_RELID, &sample_tuple);
}

static void
sample_insert_in_stream(ByteWriter *w)
{
	wire_insert(w, SAMPLE_SUBXID, SAMPLE_RELID, &sample_tuple);
}

static void
sample_update(ByteWriter *w)
{
	wire_update(w, 0, SAMPLE_RELID, 0, NULL, &sample_toast);
}

static void
sample_update_old_key(ByteWriter *w)
{
	wire_update(w, 0, SAMPLE_RELID, 'K', &sample_key, &sample_tuple);
}

static void
sample_update_old_tuple(ByteWriter *w)
{
	wire_update(w, 0, SAMPLE_RELID, 'O', &sample_tuple, &sample_toast);
}

static void
sample_update_in_stream(ByteWriter *w)
{
	wire_update(w, SAMPLE_XID, SAMPLE_RELID, 'K', &sample_key, &sample_tuple);
}

static void
sample_delete_key(ByteWriter *w)
{
	wire_delete(w, 0, SAMPLE_RELID, 'K', &sample_key);
}

static void
sample_delete_old_tuple(ByteWriter *w)
{
	wire_delete(w, 0, SAMPLE_RELID, 'O', &sample_tuple);
}

static void
sample_delete_in_stream(ByteWriter *w)
{
	wire_delete(w, SAMPLE_XID, SAMPLE_RELID, 'O', &sample_tuple);
}

static void
sample_truncate(ByteWriter *w)
{
	wire_truncate(w, 0, 2, 0x03, sample_relids);
}

static void
sample_truncate_in_stream(ByteWriter *w)
{
	wire_truncate(w, SAMPLE_XID, 1, 0, sample_relids);
}

static void
sample_message(ByteWriter *w)
{
	wire_message(w, 0, 0x01, 0x16B374D900, "pgstream", "barrier\0x", 9);
}

static void
sample_message_non_transactional(ByteWriter *w)
{
	wire_message(w, 0, 0, 0x16B374DA00, "", NULL, 0);
}

static void
sample_message_in_stream(ByteWriter *w)
{
	wire_message(w, SAMPLE_XID, 0x01, 0x16B374DB00, "pgstream", "x", 1);
}

static void
sample_stream_start(ByteWriter *w)
{
	wire_stream_start(w, SAMPLE_XID, 1);
}

static void
sample_stream_stop(ByteWriter *w)
{
	wire_stream_stop(w);
}

static void
sample_stream_commit(ByteWriter *w)
{
	wire_stream_commit(w, SAMPLE_XID, 0, 0x16B374D848, 0x16B374D880,
	                   SAMPLE_TIME);
}

static void
sample_stream_abort(ByteWriter *w)
{
	wire_stream_abort(w, SAMPLE_XID, SAMPLE_SUBXID, false, 0, 0);
}

static void
sample_stream_abort_parallel(ByteWriter *w)
{
	wire_stream_abort(w, SAMPLE_XID, SAMPLE_XID, true, 0x16B374DC00,
	                  SAMPLE_TIME);
}

static void
sample_begin_prepare(ByteWriter *w)
{
	wire_begin_prepare(w, 0x16B374D848, 0x16B374D880, SAMPLE_TIME, SAMPLE_XID,
	                   "gid-1");
}

static void
sample_prepare(ByteWriter *w)
{
	wire_prepare(w, 0, 0x16B374D848, 0x16B374D880, SAMPLE_TIME, SAMPLE_XID,
	             "gid-1");
}

static void
sample_commit_prepared(ByteWriter *w)
{
	wire_commit_prepared(w, 0, 0x16B374E000, 0x16B374E038, SAMPLE_TIME,
	                     SAMPLE_XID, "gid-1");
}

static void
sample_rollback_prepared(ByteWriter *w)
{
	wire_rollback_prepared(w, 0, 0x16B374D880, 0x16B374E038, SAMPLE_TIME,
	                       SAMPLE_TIME + 1000, SAMPLE_XID, "gid-1");
}

static void
sample_stream_prepare(ByteWriter *w)
{
	wire_stream_prepare(w, 0, 0x16B374D848, 0x16B374D880, SAMPLE_TIME,
	                    SAMPLE_XID, "");
}

static const WireSample samples[] = {
    {"begin", 'B', 1, false, false, sample_begin},
    {"commit", 'C', 1, false, false, sample_commit},
    {"origin", 'O', 1, false, false, sample_origin},
    {"origin_in_stream", 'O', 2, true, false, sample_origin},
    {"relation", 'R', 1, false, false, sample_relation},
    {"relation_in_stream", 'R', 2, true, false, sample_relation_in_stream},
    {"relation_no_columns", 'R', 1, false, false, sample_relation_no_columns},
    {"type", 'Y', 1, false, false, sample_type},
    {"type_in_stream", 'Y', 2, true, false, sample_type_in_stream},
    {"insert", 'I', 1, false, false, sample_insert},
    {"insert_in_stream", 'I', 2, true, false, sample_insert_in_stream},
    {"update", 'U', 1, false, false, sample_update},
    {"update_old_key", 'U', 1, false, false, sample_update_old_key},
    {"update_old_tuple", 'U', 1, false, false, sample_update_old_tuple},
    {"update_in_stream", 'U', 2, true, false, sample_update_in_stream},
    {"delete_key", 'D', 1, false, false, sample_delete_key},
    {"delete_old_tuple", 'D', 1, false, false, sample_delete_old_tuple},
    {"delete_in_stream", 'D', 2, true, false, sample_delete_in_stream},
    {"truncate", 'T', 1, false, false, sample_truncate},
    {"truncate_in_stream", 'T', 2, true, false, sample_truncate_in_stream},
    {"message", 'M', 1, false, false, sample_message},
    {"message_non_transactional", 'M', 1, false, false,
     sample_message_non_transactional},
    {"message_in_stream", 'M', 2, true, false, sample_message_in_stream},
    {"stream_start", 'S', 2, false, false, sample_stream_start},
    {"stream_stop", 'E', 2, true, false, sample_stream_stop},
    {"stream_commit", 'c', 2, false, false, sample_stream_commit},
    {"stream_abort", 'A', 2, false, false, sample_stream_abort},
    {"stream_abort_parallel", 'A', 4, false, true,
     sample_stream_abort_parallel},
    {"begin_prepare", 'b', 3, false, false, sample_begin_prepare},
    {"prepare", 'P', 3, false, false, sample_prepare},
    {"commit_prepared", 'K', 3, false, false, sample_commit_prepared},
    {"rollback_prepared", 'r', 3, false, false, sample_rollback_prepared},
    {"stream_prepare", 'p', 3, false, false, sample_stream_prepare},
};

size_t
wire_sample_count(void)
{
	return sizeof(samples) / sizeof(samples[0]);
}

const WireSample *
wire_sample(size_t i)
{
	return i < wire_sample_count() ? &samples[i] : NULL;
}

size_t
wire_sample_build(const WireSample *s, uint8_t *buf, size_t cap)
{
	ByteWriter w;

	byte_writer_init(&w, buf, cap);
	s->build(&w);
	return w.overflow ? 0 : w.len;
}
