/*
 * tests/support/wire_build.h -- test-only encoder for walsender and pgoutput
 * messages.
 *
 * Each wire_*() function mirrors one decoder in protocol/ field by field, as
 * proto.c pairs logicalrep_write_*() with logicalrep_read_*(), so tests build
 * messages from values instead of from hex.  The encoders do not validate:
 * pass a bad flag and you get a message with a bad flag, which is the point.
 * Writing goes through a ByteWriter; check w->overflow when it matters.
 *
 * A stream_xid argument of 0 means "no streamed-only xid prefix", exactly as
 * proto.c writes the prefix only when TransactionIdIsValid(xid).
 */
#ifndef PGSTREAM_TESTS_WIRE_BUILD_H
#define PGSTREAM_TESTS_WIRE_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/bytes.h"
#include "protocol/lsn.h"

/* One TupleData column: kind 'n', 'u', 't' or 'b' (or anything, for tests). */
typedef struct WireValue
{
	char kind;
	const void *data; /* 't'/'b' only */
	uint32_t len;
} WireValue;

typedef struct WireTuple
{
	uint16_t ncols;
	const WireValue *values;
} WireTuple;

typedef struct WireColumn
{
	uint8_t flags;
	const char *name;
	Oid type_oid;
	int32_t typmod;
} WireColumn;

/* ---- pieces ---- */
void wire_stream_xid(ByteWriter *w, Xid stream_xid);
void wire_tuple(ByteWriter *w, const WireTuple *t);
/* A tuple of ncols text values; a NULL entry is written as 'n'. */
void wire_tuple_text(ByteWriter *w, uint16_t ncols, const char *const *texts);

/* ---- pgoutput messages, in protocol.sgml order ---- */
void wire_begin(ByteWriter *w, Lsn final_lsn, PgTimestamp commit_time, Xid xid);
void wire_commit(ByteWriter *w, uint8_t flags, Lsn commit_lsn, Lsn end_lsn,
                 PgTimestamp commit_time);
void wire_origin(ByteWriter *w, Lsn origin_lsn, const char *name);
void wire_relation(ByteWriter *w, Xid stream_xid, Oid relid,
                   const char *nspname, const char *relname, char replident,
                   uint16_t natts, const WireColumn *cols);
void wire_type(ByteWriter *w, Xid stream_xid, Oid typoid, const char *nspname,
               const char *typname);
void wire_insert(ByteWriter *w, Xid stream_xid, Oid relid,
                 const WireTuple *new_tuple);
/* old_kind 0 writes no old tuple; 'K' or 'O' writes old_tuple first. */
void wire_update(ByteWriter *w, Xid stream_xid, Oid relid, char old_kind,
                 const WireTuple *old_tuple, const WireTuple *new_tuple);
void wire_delete(ByteWriter *w, Xid stream_xid, Oid relid, char old_kind,
                 const WireTuple *old_tuple);
void wire_truncate(ByteWriter *w, Xid stream_xid, uint32_t nrelids,
                   uint8_t flags, const Oid *relids);
void wire_message(ByteWriter *w, Xid stream_xid, uint8_t flags, Lsn lsn,
                  const char *prefix, const void *content, uint32_t len);
void wire_stream_start(ByteWriter *w, Xid xid, uint8_t first_segment);
void wire_stream_stop(ByteWriter *w);
void wire_stream_commit(ByteWriter *w, Xid xid, uint8_t flags, Lsn commit_lsn,
                        Lsn end_lsn, PgTimestamp commit_time);
/* with_abort_info: streaming = parallel (abort_lsn and abort_time follow). */
void wire_stream_abort(ByteWriter *w, Xid xid, Xid subxid, bool with_abort_info,
                       Lsn abort_lsn, PgTimestamp abort_time);
void wire_begin_prepare(ByteWriter *w, Lsn prepare_lsn, Lsn end_lsn,
                        PgTimestamp prepare_time, Xid xid, const char *gid);
void wire_prepare(ByteWriter *w, uint8_t flags, Lsn prepare_lsn, Lsn end_lsn,
                  PgTimestamp prepare_time, Xid xid, const char *gid);
void wire_stream_prepare(ByteWriter *w, uint8_t flags, Lsn prepare_lsn,
                         Lsn end_lsn, PgTimestamp prepare_time, Xid xid,
                         const char *gid);
void wire_commit_prepared(ByteWriter *w, uint8_t flags, Lsn commit_lsn,
                          Lsn end_lsn, PgTimestamp commit_time, Xid xid,
                          const char *gid);
void wire_rollback_prepared(ByteWriter *w, uint8_t flags, Lsn prepare_end_lsn,
                            Lsn rollback_end_lsn, PgTimestamp prepare_time,
                            PgTimestamp rollback_time, Xid xid,
                            const char *gid);

/* ---- walsender envelope ---- */
void wire_xlogdata(ByteWriter *w, Lsn data_start, Lsn wal_end,
                   PgTimestamp send_time, const void *payload, size_t len);
void wire_keepalive(ByteWriter *w, Lsn wal_end, PgTimestamp send_time,
                    uint8_t reply_requested);

/*
 * A catalogue of valid pgoutput messages, at least one of every type, used by
 * the generic tests (every prefix, guard page, trailing bytes, version gate),
 * the seed generator and the benchmark.  Decode each with
 * pgoutput_state_init(&st, proto >= min_proto, streaming_parallel) and
 * st.in_stream = in_stream.
 */
typedef struct WireSample
{
	const char *name; /* unique; also the seed file name */
	char type;        /* PgoutputMsgType tag */
	int min_proto;
	bool in_stream;
	bool streaming_parallel;
	void (*build)(ByteWriter *w);
} WireSample;

size_t wire_sample_count(void);
const WireSample *wire_sample(size_t i);

/* Build sample s into buf; returns its length, or 0 if cap is too small. */
size_t wire_sample_build(const WireSample *s, uint8_t *buf, size_t cap);

#endif
