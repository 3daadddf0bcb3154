/*
 * tests/unit/test_pgoutput.c -- pgoutput_decode(): every message type round
 * trip through wire_build, truncation at every prefix, guard page, trailing
 * bytes, bad tags and flags, protocol-version gates, the streamed-only xid
 * prefix, stream block rules, and arena failures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pgoutput.h"
#include "tests/support/wire_build.h"
#include "tests/unit/fail_alloc.h"
#include "tests/unit/guard_page.h"
#include "tests/unit/suites.h"

static uint8_t buf[4096];
static Arena arena;
static PgoutputState st;
static PgoutputMessage m;
static SyncError err;

static void
setup(void)
{
	arena_init(&arena, NULL, 1 << 20);
	memset(&err, 0, sizeof(err));
}

static void
teardown(void)
{
	arena_term(&arena);
}

static ByteWriter
writer(void)
{
	ByteWriter w;

	byte_writer_init(&w, buf, sizeof(buf));
	return w;
}

/* Decode what w holds with a fresh state. */
static DecodeStatus
decode_as(const ByteWriter *w, int proto, bool in_stream, bool parallel)
{
	ck_assert(!w->overflow);
	pgoutput_state_init(&st, proto, parallel);
	st.in_stream = in_stream;
	return pgoutput_decode(w->buf, w->len, &st, &m, &arena, &err);
}

static DecodeStatus
decode(const ByteWriter *w)
{
	return decode_as(w, PGOUTPUT_PROTO_MAX, false, false);
}

static DecodeStatus
decode_in_stream(const ByteWriter *w)
{
	return decode_as(w, PGOUTPUT_PROTO_MAX, true, false);
}

#define ck_assert_decodes(expr)                                                \
	ck_assert_msg((expr) == DECODE_OK, "not ok: %s", err.message)

#define ck_assert_view_eq(view, str)                                           \
	do                                                                         \
	{                                                                          \
		ByteView v_ = (view);                                                  \
		const char *s_ = (str);                                                \
		ck_assert_uint_eq(v_.len, strlen(s_));                                 \
		ck_assert_mem_eq(v_.ptr, s_, v_.len);                                  \
	} while (0)

/* Decoding must fail as status with exactly this message. */
static void
expect_failure(DecodeStatus got, DecodeStatus status, const char *message)
{
	ck_assert_msg(got == status, "status %s, want %s (%s)",
	              decode_status_name(got), decode_status_name(status),
	              err.message);
	ck_assert_int_eq(err.code, status == DECODE_TRUNCATED ? SYNC_ERR_TRUNCATED
	                                                      : SYNC_ERR_INVALID);
	ck_assert_str_eq(err.message, message);
}

static const WireValue three_values[] = {
    {'t', "42", 2},
    {'n', NULL, 0},
    {'b', "\x00\xFF", 2},
};
static const WireTuple three = {3, three_values};
static const WireValue key_values[] = {
    {'t', "7", 1}, {'n', NULL, 0}, {'n', NULL, 0}};
static const WireTuple key = {3, key_values};
static const WireValue toast_values[] = {
    {'t', "7", 1}, {'u', NULL, 0}, {'t', "", 0}};
static const WireTuple toasted = {3, toast_values};

static void
check_three(const TupleData *t)
{
	ck_assert_uint_eq(t->ncols, 3);
	ck_assert_int_eq(t->values[0].kind, TUPLE_VALUE_TEXT);
	ck_assert_view_eq(t->values[0].data, "42");
	ck_assert_int_eq(t->values[1].kind, TUPLE_VALUE_NULL);
	ck_assert_uint_eq(t->values[1].data.len, 0);
	ck_assert_int_eq(t->values[2].kind, TUPLE_VALUE_BINARY);
	ck_assert_uint_eq(t->values[2].data.len, 2);
	ck_assert_mem_eq(t->values[2].data.ptr, "\x00\xFF", 2);
}

/* ---------- transaction boundaries ---------- */

START_TEST(decode_begin_reads_every_field)
{
	ByteWriter w = writer();

	wire_begin(&w, 0x16B374D848, 817552167123456, 712);
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_BEGIN);
	ck_assert_uint_eq(m.u.begin.final_lsn, 0x16B374D848);
	ck_assert_int_eq(m.u.begin.commit_time, 817552167123456);
	ck_assert_uint_eq(m.u.begin.xid, 712);
	ck_assert(!m.has_stream_xid);
}
END_TEST

START_TEST(begin_with_final_lsn_0_is_invalid)
{
	ByteWriter w = writer();

	wire_begin(&w, 0, 1, 712);
	expect_failure(decode(&w), DECODE_INVALID,
	               "Begin: invalid \"final_lsn\" at byte 1: must not be 0");
}
END_TEST

START_TEST(decode_commit_reads_every_field)
{
	ByteWriter w = writer();

	wire_commit(&w, 0, 0x10, 0x48, -1);
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_COMMIT);
	ck_assert_uint_eq(m.u.commit.flags, 0);
	ck_assert_uint_eq(m.u.commit.commit_lsn, 0x10);
	ck_assert_uint_eq(m.u.commit.end_lsn, 0x48);
	ck_assert_int_eq(m.u.commit.commit_time, -1);
}
END_TEST

START_TEST(commit_with_any_flag_set_is_invalid)
{
	ByteWriter w = writer();

	wire_commit(&w, 0x01, 0x10, 0x48, 0);
	expect_failure(decode(&w), DECODE_INVALID,
	               "Commit: invalid \"flags\" at byte 1: must be 0");
}
END_TEST

START_TEST(decode_origin_reads_lsn_and_name)
{
	ByteWriter w = writer();

	wire_origin(&w, 0x3000060, "pg_16401");
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_ORIGIN);
	ck_assert_uint_eq(m.u.origin.origin_lsn, 0x3000060);
	ck_assert_view_eq(m.u.origin.name, "pg_16401");
	ck_assert_uint_eq(m.u.origin.name.ptr[m.u.origin.name.len], '\0');
}
END_TEST

START_TEST(origin_without_nul_is_truncated)
{
	ByteWriter w = writer();

	wire_origin(&w, 1, "abc");
	w.len--;
	expect_failure(decode(&w), DECODE_TRUNCATED,
	               "Origin: truncated at byte 9 reading \"origin name\"");
}
END_TEST

/* ---------- schema ---------- */

static const WireColumn columns[] = {
    {0x01, "id", 23, -1},
    {0x00, "note", 25, -1},
    {0x00, "price", 1700, 655366},
};

START_TEST(decode_relation_reads_columns)
{
	ByteWriter w = writer();
	const PgoutputRelation *rel = &m.u.relation;

	wire_relation(&w, 0, 16385, "public", "items", 'i', 3, columns);
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_RELATION);
	ck_assert_uint_eq(rel->relid, 16385);
	ck_assert_view_eq(rel->nspname, "public");
	ck_assert_view_eq(rel->relname, "items");
	ck_assert_int_eq(rel->replident, REPLICA_IDENTITY_INDEX);
	ck_assert_uint_eq(rel->natts, 3);
	ck_assert_uint_eq(rel->columns[0].flags, PGOUTPUT_COLUMN_FLAG_KEY);
	ck_assert_view_eq(rel->columns[0].name, "id");
	ck_assert_uint_eq(rel->columns[0].type_oid, 23);
	ck_assert_int_eq(rel->columns[0].typmod, -1);
	ck_assert_uint_eq(rel->columns[1].flags, 0);
	ck_assert_view_eq(rel->columns[2].name, "price");
	ck_assert_uint_eq(rel->columns[2].type_oid, 1700);
	ck_assert_int_eq(rel->columns[2].typmod, 655366);
}
END_TEST

START_TEST(decode_relation_with_no_columns_and_pg_catalog)
{
	ByteWriter w = writer();

	wire_relation(&w, 0, 1, "", "t", 'n', 0, NULL);
	ck_assert_decodes(decode(&w));
	ck_assert_uint_eq(m.u.relation.nspname.len, 0);
	ck_assert_uint_eq(m.u.relation.natts, 0);
	ck_assert_ptr_null(m.u.relation.columns);
	ck_assert_uint_eq(arena.used_bytes, 0);
}
END_TEST

START_TEST(relation_with_unknown_replica_identity_is_invalid)
{
	ByteWriter w = writer();

	wire_relation(&w, 0, 1, "s", "t", 'x', 0, NULL);
	expect_failure(decode(&w), DECODE_INVALID,
	               "Relation: invalid \"replica identity\" at byte 9: must be "
	               "'d', 'n', 'f' or 'i'");
}
END_TEST

START_TEST(relation_column_with_unknown_flag_bit_is_invalid)
{
	static const WireColumn bad[] = {{0x01, "a", 23, -1}, {0x02, "b", 23, -1}};
	ByteWriter w = writer();

	wire_relation(&w, 0, 1, "s", "t", 'd', 2, bad);
	expect_failure(decode(&w), DECODE_INVALID,
	               "Relation: invalid \"column flags\" at byte 23: only bit "
	               "0x01 may be set");
}
END_TEST

START_TEST(
    relation_column_count_beyond_the_message_is_invalid_before_allocating)
{
	ByteWriter w = writer();

	/* 2 columns announced; 12 bytes left cannot hold two 10-byte columns. */
	wire_relation(&w, 0, 1, "s", "t", 'd', 1, columns);
	buf[11] = 2;
	expect_failure(decode(&w), DECODE_INVALID,
	               "Relation: invalid \"column count\" at byte 10: exceeds "
	               "what the remaining bytes can hold");
	ck_assert_uint_eq(arena.used_bytes, 0);
}
END_TEST

START_TEST(decode_type_reads_oid_and_names)
{
	ByteWriter w = writer();

	wire_type(&w, 0, 16400, "public", "mood");
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_TYPE);
	ck_assert_uint_eq(m.u.type.typoid, 16400);
	ck_assert_view_eq(m.u.type.nspname, "public");
	ck_assert_view_eq(m.u.type.typname, "mood");
}
END_TEST

/* ---------- changes ---------- */

START_TEST(decode_insert_reads_text_null_and_binary_values)
{
	ByteWriter w = writer();

	wire_insert(&w, 0, 16385, &three);
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_INSERT);
	ck_assert_uint_eq(m.u.change.relid, 16385);
	ck_assert_int_eq(m.u.change.old_kind, PGOUTPUT_OLD_NONE);
	ck_assert(m.u.change.has_new_tuple);
	check_three(&m.u.change.new_tuple);
	/* Values are views into the caller's buffer. */
	ck_assert_ptr_eq(m.u.change.new_tuple.values[0].data.ptr, buf + 13);
}
END_TEST

START_TEST(binary_values_are_accepted_at_protocol_1)
{
	ByteWriter w = writer();

	wire_insert(&w, 0, 16385, &three);
	ck_assert_decodes(decode_as(&w, 1, false, false));
	check_three(&m.u.change.new_tuple);
}
END_TEST

START_TEST(insert_without_new_tuple_tag_is_invalid)
{
	ByteWriter w = writer();

	wire_insert(&w, 0, 1, &three);
	buf[5] = 'K';
	expect_failure(decode(&w), DECODE_INVALID,
	               "Insert: invalid \"tuple tag\" at byte 5: must be 'N'");
}
END_TEST

START_TEST(tuple_value_of_unknown_kind_is_invalid)
{
	static const WireValue bad[] = {{'x', NULL, 0}};
	static const WireTuple t = {1, bad};
	ByteWriter w = writer();

	wire_insert(&w, 0, 1, &t);
	expect_failure(decode(&w), DECODE_INVALID,
	               "Insert: invalid \"new tuple column kind\" at byte 8: must "
	               "be 'n', 'u', 't' or 'b'");
}
END_TEST

START_TEST(tuple_column_count_beyond_the_message_is_invalid_before_allocating)
{
	ByteWriter w = writer();

	wire_insert(&w, 0, 1, &three);
	buf[6] = 0xFF;
	buf[7] = 0xFF;
	expect_failure(decode(&w), DECODE_INVALID,
	               "Insert: invalid \"new tuple column count\" at byte 6: "
	               "exceeds what the remaining bytes can hold");
	ck_assert_uint_eq(arena.used_bytes, 0);
}
END_TEST

START_TEST(tuple_value_length_beyond_the_message_is_truncated)
{
	static const WireValue v[] = {{'t', "abc", 3}};
	static const WireTuple t = {1, v};
	ByteWriter w = writer();

	wire_insert(&w, 0, 1, &t);
	buf[9] = 0x80; /* length 0x80000003 */
	expect_failure(
	    decode(&w), DECODE_TRUNCATED,
	    "Insert: truncated at byte 13 reading \"new tuple column data\"");
}
END_TEST

START_TEST(decode_update_without_old_tuple)
{
	ByteWriter w = writer();

	wire_update(&w, 0, 16385, 0, NULL, &toasted);
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_UPDATE);
	ck_assert_int_eq(m.u.change.old_kind, PGOUTPUT_OLD_NONE);
	ck_assert(m.u.change.has_new_tuple);
	ck_assert_int_eq(m.u.change.new_tuple.values[1].kind,
	                 TUPLE_VALUE_UNCHANGED_TOAST);
	ck_assert_int_eq(m.u.change.new_tuple.values[2].kind, TUPLE_VALUE_TEXT);
	ck_assert_uint_eq(m.u.change.new_tuple.values[2].data.len, 0);
}
END_TEST

START_TEST(decode_update_with_old_key)
{
	ByteWriter w = writer();

	wire_update(&w, 0, 16385, 'K', &key, &three);
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.u.change.old_kind, PGOUTPUT_OLD_KEY);
	ck_assert_uint_eq(m.u.change.old_tuple.ncols, 3);
	ck_assert_view_eq(m.u.change.old_tuple.values[0].data, "7");
	ck_assert_int_eq(m.u.change.old_tuple.values[2].kind, TUPLE_VALUE_NULL);
	check_three(&m.u.change.new_tuple);
}
END_TEST

START_TEST(decode_update_with_old_tuple)
{
	ByteWriter w = writer();

	wire_update(&w, 0, 16385, 'O', &three, &toasted);
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.u.change.old_kind, PGOUTPUT_OLD_TUPLE);
	check_three(&m.u.change.old_tuple);
	ck_assert_int_eq(m.u.change.new_tuple.values[1].kind,
	                 TUPLE_VALUE_UNCHANGED_TOAST);
}
END_TEST

START_TEST(update_needs_a_new_tuple_after_the_old_one)
{
	ByteWriter w = writer();
	size_t tag_at;

	wire_update(&w, 0, 1, 'K', &key, &three);
	tag_at = 1 + 4 + 1 + 2 + (1 + 4 + 1) + 1 + 1;
	ck_assert_uint_eq(buf[tag_at], 'N');
	buf[tag_at] = 'O';
	expect_failure(decode(&w), DECODE_INVALID,
	               "Update: invalid \"tuple tag\" at byte 16: must be 'N'");
}
END_TEST

START_TEST(update_with_unknown_tuple_tag_is_invalid)
{
	ByteWriter w = writer();

	wire_update(&w, 0, 1, 0, NULL, &three);
	buf[5] = 'X';
	expect_failure(
	    decode(&w), DECODE_INVALID,
	    "Update: invalid \"tuple tag\" at byte 5: must be 'K', 'O' or 'N'");
}
END_TEST

START_TEST(update_cut_inside_the_old_tuple_names_the_field)
{
	static const WireValue v[] = {{'t', "x", 1}, {'n', NULL, 0}};
	static const WireTuple two = {2, v};
	ByteWriter w = writer();

	wire_update(&w, 0, 1, 'O', &two, &two);
	w.len = 14;
	expect_failure(
	    decode(&w), DECODE_TRUNCATED,
	    "Update: truncated at byte 14 reading \"old tuple column kind\"");
}
END_TEST

START_TEST(decode_delete_with_old_key_or_old_tuple)
{
	ByteWriter w = writer();

	wire_delete(&w, 0, 16385, 'K', &key);
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_DELETE);
	ck_assert_int_eq(m.u.change.old_kind, PGOUTPUT_OLD_KEY);
	ck_assert(!m.u.change.has_new_tuple);
	ck_assert_view_eq(m.u.change.old_tuple.values[0].data, "7");

	w = writer();
	wire_delete(&w, 0, 16385, 'O', &three);
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.u.change.old_kind, PGOUTPUT_OLD_TUPLE);
	check_three(&m.u.change.old_tuple);
}
END_TEST

START_TEST(delete_needs_an_old_key_or_old_tuple)
{
	ByteWriter w = writer();

	wire_delete(&w, 0, 1, 'N', &three);
	expect_failure(
	    decode(&w), DECODE_INVALID,
	    "Delete: invalid \"tuple tag\" at byte 5: must be 'K' or 'O'");
}
END_TEST

START_TEST(decode_truncate_reads_relids_and_flags)
{
	static const Oid relids[] = {16385, 16390, 4294967295u};
	ByteWriter w = writer();

	wire_truncate(
	    &w, 0, 3,
	    PGOUTPUT_TRUNCATE_CASCADE | PGOUTPUT_TRUNCATE_RESTART_IDENTITY, relids);
	ck_assert_decodes(decode(&w));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_TRUNCATE);
	ck_assert_uint_eq(m.u.truncate.flags, 0x03);
	ck_assert_uint_eq(m.u.truncate.nrelids, 3);
	ck_assert_uint_eq(m.u.truncate.relids[0], 16385);
	ck_assert_uint_eq(m.u.truncate.relids[2], 4294967295u);
}
END_TEST

START_TEST(truncate_with_unknown_flag_bit_is_invalid)
{
	static const Oid relids[] = {1};
	ByteWriter w = writer();

	wire_truncate(&w, 0, 1, 0x04, relids);
	expect_failure(decode(&w), DECODE_INVALID,
	               "Truncate: invalid \"flags\" at byte 5: only bits 0x01 and "
	               "0x02 may be set");
}
END_TEST

START_TEST(
    truncate_relation_count_beyond_the_message_is_invalid_before_allocating)
{
	static const Oid relids[] = {1, 2};
	ByteWriter w = writer();

	wire_truncate(&w, 0, 2, 0, relids);
	buf[1] = 0x40; /* 0x40000002 relids in 8 bytes */
	expect_failure(decode(&w), DECODE_INVALID,
	               "Truncate: invalid \"relation count\" at byte 1: exceeds "
	               "what the remaining bytes can hold");
	ck_assert_uint_eq(arena.used_bytes, 0);
}
END_TEST

START_TEST(decode_message_reads_prefix_and_raw_content)
{
	ByteWriter w = writer();

	wire_message(&w, 0, PGOUTPUT_MESSAGE_TRANSACTIONAL, 0x16B374D900,
	             "pgstream", "a\0b", 3);
	ck_assert_decodes(decode_as(&w, 1, false, false));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_MESSAGE);
	ck_assert_uint_eq(m.u.message.flags, PGOUTPUT_MESSAGE_TRANSACTIONAL);
	ck_assert_uint_eq(m.u.message.lsn, 0x16B374D900);
	ck_assert_view_eq(m.u.message.prefix, "pgstream");
	ck_assert_uint_eq(m.u.message.content.len, 3);
	ck_assert_mem_eq(m.u.message.content.ptr, "a\0b", 3);
}
END_TEST

START_TEST(message_with_unknown_flag_bit_is_invalid)
{
	ByteWriter w = writer();

	wire_message(&w, 0, 0x81, 1, "p", "", 0);
	expect_failure(
	    decode(&w), DECODE_INVALID,
	    "Message: invalid \"flags\" at byte 1: only bit 0x01 may be set");
}
END_TEST

/* ---------- streaming ---------- */

START_TEST(stream_start_enters_and_stream_stop_leaves_a_block)
{
	ByteWriter w = writer();

	wire_stream_start(&w, 712, 1);
	pgoutput_state_init(&st, 2, false);
	ck_assert_decodes(pgoutput_decode(buf, w.len, &st, &m, &arena, &err));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_STREAM_START);
	ck_assert_uint_eq(m.u.stream_start.xid, 712);
	ck_assert(m.u.stream_start.first_segment);
	ck_assert(st.in_stream);

	w = writer();
	wire_stream_stop(&w);
	ck_assert_decodes(pgoutput_decode(buf, w.len, &st, &m, &arena, &err));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_STREAM_STOP);
	ck_assert(!st.in_stream);

	w = writer();
	wire_stream_start(&w, 712, 0);
	ck_assert_decodes(pgoutput_decode(buf, w.len, &st, &m, &arena, &err));
	ck_assert(!m.u.stream_start.first_segment);
}
END_TEST

START_TEST(stream_start_inside_a_block_is_invalid_and_keeps_state)
{
	ByteWriter w = writer();

	wire_stream_start(&w, 712, 1);
	expect_failure(decode_in_stream(&w), DECODE_INVALID,
	               "Stream Start: invalid \"message type\" at byte 0: not "
	               "allowed inside a Stream Start .. Stream Stop block");
	ck_assert(st.in_stream);
}
END_TEST

START_TEST(stream_stop_outside_a_block_is_invalid_and_keeps_state)
{
	ByteWriter w = writer();

	wire_stream_stop(&w);
	expect_failure(decode(&w), DECODE_INVALID,
	               "Stream Stop: invalid \"message type\" at byte 0: only "
	               "allowed inside a Stream Start .. Stream Stop block");
	ck_assert(!st.in_stream);
}
END_TEST

START_TEST(failed_stream_start_does_not_enter_a_block)
{
	ByteWriter w = writer();

	wire_stream_start(&w, 712, 2);
	expect_failure(
	    decode(&w), DECODE_INVALID,
	    "Stream Start: invalid \"first_segment\" at byte 5: must be 0 or 1");
	ck_assert(!st.in_stream);
	w = writer();
	wire_stream_start(&w, 0, 1);
	expect_failure(decode(&w), DECODE_INVALID,
	               "Stream Start: invalid \"xid\" at byte 1: must not be 0");
	ck_assert(!st.in_stream);
}
END_TEST

START_TEST(transaction_messages_are_invalid_inside_a_block)
{
	ByteWriter w = writer();

	wire_begin(&w, 1, 1, 1);
	expect_failure(decode_in_stream(&w), DECODE_INVALID,
	               "Begin: invalid \"message type\" at byte 0: not allowed "
	               "inside a Stream Start .. Stream Stop block");
	w = writer();
	wire_commit(&w, 0, 1, 2, 3);
	ck_assert_int_eq(decode_in_stream(&w), DECODE_INVALID);
	w = writer();
	wire_stream_commit(&w, 1, 0, 1, 2, 3);
	ck_assert_int_eq(decode_in_stream(&w), DECODE_INVALID);
	ck_assert(st.in_stream);
}
END_TEST

START_TEST(stream_xid_prefix_is_read_inside_a_block)
{
	ByteWriter w = writer();

	wire_insert(&w, 713, 16385, &three);
	ck_assert_decodes(decode_in_stream(&w));
	ck_assert(m.has_stream_xid);
	ck_assert_uint_eq(m.stream_xid, 713);
	ck_assert_uint_eq(m.u.change.relid, 16385);
	check_three(&m.u.change.new_tuple);
	ck_assert(st.in_stream);
}
END_TEST

START_TEST(origin_inside_a_block_has_no_xid_prefix)
{
	ByteWriter w = writer();

	wire_origin(&w, 0, "node_a");
	ck_assert_decodes(decode_in_stream(&w));
	ck_assert(!m.has_stream_xid);
	ck_assert_view_eq(m.u.origin.name, "node_a");
}
END_TEST

START_TEST(stream_xid_prefix_is_not_read_outside_a_block)
{
	ByteWriter w = writer();

	/* With the prefix but decoded outside: the xid is taken as the relid. */
	wire_insert(&w, 713, 16385, &three);
	ck_assert_int_eq(decode(&w), DECODE_INVALID);
	/* Without the prefix but decoded inside: the relid is taken as the xid. */
	w = writer();
	wire_insert(&w, 0, 16385, &three);
	ck_assert_int_ne(decode_in_stream(&w), DECODE_OK);
}
END_TEST

START_TEST(stream_xid_0_is_invalid)
{
	ByteWriter w = writer();

	byte_writer_u8(&w, 'Y');
	byte_writer_u32(&w, 0);
	byte_writer_u32(&w, 16400);
	byte_writer_cstring(&w, "");
	byte_writer_cstring(&w, "int4");
	expect_failure(decode_in_stream(&w), DECODE_INVALID,
	               "Type: invalid \"stream xid\" at byte 1: must not be 0");
}
END_TEST

START_TEST(decode_stream_commit_reads_every_field)
{
	ByteWriter w = writer();

	wire_stream_commit(&w, 712, 0, 0x10, 0x48, 99);
	ck_assert_decodes(decode_as(&w, 2, false, false));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_STREAM_COMMIT);
	ck_assert_uint_eq(m.u.stream_commit.xid, 712);
	ck_assert_uint_eq(m.u.stream_commit.commit_lsn, 0x10);
	ck_assert_uint_eq(m.u.stream_commit.end_lsn, 0x48);
	ck_assert_int_eq(m.u.stream_commit.commit_time, 99);
	w = writer();
	wire_stream_commit(&w, 712, 2, 0x10, 0x48, 99);
	expect_failure(decode(&w), DECODE_INVALID,
	               "Stream Commit: invalid \"flags\" at byte 5: must be 0");
}
END_TEST

START_TEST(stream_abort_carries_abort_info_only_with_parallel_streaming)
{
	ByteWriter w = writer();

	wire_stream_abort(&w, 712, 713, false, 0, 0);
	ck_assert_decodes(decode_as(&w, 4, false, false));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_STREAM_ABORT);
	ck_assert_uint_eq(m.u.stream_abort.xid, 712);
	ck_assert_uint_eq(m.u.stream_abort.subxid, 713);
	ck_assert(!m.u.stream_abort.has_abort_info);
	ck_assert_int_eq(decode_as(&w, 4, false, true), DECODE_TRUNCATED);

	w = writer();
	wire_stream_abort(&w, 712, 712, true, 0x16B374DC00, -7);
	ck_assert_decodes(decode_as(&w, 4, false, true));
	ck_assert(m.u.stream_abort.has_abort_info);
	ck_assert_uint_eq(m.u.stream_abort.abort_lsn, 0x16B374DC00);
	ck_assert_int_eq(m.u.stream_abort.abort_time, -7);
	/* parallel needs protocol 4, so below that the extra bytes are trailing. */
	expect_failure(decode_as(&w, 3, false, true), DECODE_INVALID,
	               "Stream Abort: 16 trailing bytes at byte 9");
}
END_TEST

/* ---------- two-phase commit ---------- */

START_TEST(decode_begin_prepare_reads_every_field)
{
	ByteWriter w = writer();

	wire_begin_prepare(&w, 0x10, 0x48, 5, 712, "gid-1");
	ck_assert_decodes(decode_as(&w, 3, false, false));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_BEGIN_PREPARE);
	ck_assert_uint_eq(m.u.prepare.flags, 0);
	ck_assert_uint_eq(m.u.prepare.lsn, 0x10);
	ck_assert_uint_eq(m.u.prepare.end_lsn, 0x48);
	ck_assert_int_eq(m.u.prepare.time, 5);
	ck_assert_uint_eq(m.u.prepare.xid, 712);
	ck_assert_view_eq(m.u.prepare.gid, "gid-1");
}
END_TEST

START_TEST(decode_prepare_and_stream_prepare_read_every_field)
{
	ByteWriter w = writer();

	wire_prepare(&w, 0, 0x10, 0x48, 5, 712, "g");
	ck_assert_decodes(decode_as(&w, 3, false, false));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_PREPARE);
	ck_assert_uint_eq(m.u.prepare.lsn, 0x10);
	ck_assert_uint_eq(m.u.prepare.end_lsn, 0x48);
	ck_assert_int_eq(m.u.prepare.time, 5);
	ck_assert_uint_eq(m.u.prepare.xid, 712);
	ck_assert_view_eq(m.u.prepare.gid, "g");

	w = writer();
	wire_stream_prepare(&w, 0, 0x20, 0x58, 6, 713, "");
	ck_assert_decodes(decode_as(&w, 3, false, false));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_STREAM_PREPARE);
	ck_assert_uint_eq(m.u.prepare.lsn, 0x20);
	ck_assert_uint_eq(m.u.prepare.xid, 713);
	ck_assert_uint_eq(m.u.prepare.gid.len, 0);
}
END_TEST

START_TEST(decode_commit_prepared_reads_every_field)
{
	ByteWriter w = writer();

	wire_commit_prepared(&w, 0, 0x30, 0x68, 8, 714, "gid-2");
	ck_assert_decodes(decode_as(&w, 3, false, false));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_COMMIT_PREPARED);
	ck_assert_uint_eq(m.u.prepare.lsn, 0x30);
	ck_assert_uint_eq(m.u.prepare.end_lsn, 0x68);
	ck_assert_int_eq(m.u.prepare.time, 8);
	ck_assert_uint_eq(m.u.prepare.xid, 714);
	ck_assert_view_eq(m.u.prepare.gid, "gid-2");
}
END_TEST

START_TEST(decode_rollback_prepared_reads_every_field)
{
	ByteWriter w = writer();
	const PgoutputRollbackPrepared *rp = &m.u.rollback_prepared;

	wire_rollback_prepared(&w, 0, 0x48, 0x90, 5, 9, 715, "gid-3");
	ck_assert_decodes(decode_as(&w, 3, false, false));
	ck_assert_int_eq(m.type, PGOUTPUT_MSG_ROLLBACK_PREPARED);
	ck_assert_uint_eq(rp->prepare_end_lsn, 0x48);
	ck_assert_uint_eq(rp->rollback_end_lsn, 0x90);
	ck_assert_int_eq(rp->prepare_time, 5);
	ck_assert_int_eq(rp->rollback_time, 9);
	ck_assert_uint_eq(rp->xid, 715);
	ck_assert_view_eq(rp->gid, "gid-3");
}
END_TEST

START_TEST(two_phase_messages_reject_flags_and_unset_lsns)
{
	ByteWriter w = writer();

	wire_prepare(&w, 1, 0x10, 0x48, 5, 712, "g");
	expect_failure(decode(&w), DECODE_INVALID,
	               "Prepare: invalid \"flags\" at byte 1: must be 0");
	w = writer();
	wire_begin_prepare(&w, 0x10, 0, 5, 712, "g");
	expect_failure(
	    decode(&w), DECODE_INVALID,
	    "Begin Prepare: invalid \"end_lsn\" at byte 9: must not be 0");
	w = writer();
	wire_commit_prepared(&w, 0, 0, 0x48, 5, 712, "g");
	expect_failure(
	    decode(&w), DECODE_INVALID,
	    "Commit Prepared: invalid \"commit_lsn\" at byte 2: must not be 0");
	w = writer();
	wire_rollback_prepared(&w, 4, 0x48, 0x90, 5, 9, 715, "g");
	expect_failure(decode(&w), DECODE_INVALID,
	               "Rollback Prepared: invalid \"flags\" at byte 1: must be 0");
	w = writer();
	wire_stream_prepare(&w, 0, 0x10, 0, 5, 712, "g");
	expect_failure(
	    decode(&w), DECODE_INVALID,
	    "Stream Prepare: invalid \"end_lsn\" at byte 10: must not be 0");
}
END_TEST

/* ---------- tags, versions, names ---------- */

START_TEST(unknown_message_types_are_invalid)
{
	uint8_t msg[64] = {0};
	int unknown = 0;

	pgoutput_state_init(&st, 4, true);
	for (int tag = 0; tag < 256; tag++)
	{
		msg[0] = (uint8_t) tag;
		if (pgoutput_msg_min_proto(tag) != 0)
			continue;
		unknown++;
		ck_assert_int_eq(
		    pgoutput_decode(msg, sizeof(msg), &st, &m, &arena, &err),
		    DECODE_INVALID);
		ck_assert_ptr_nonnull(strstr(
		    err.message,
		    "pgoutput: invalid \"message type\" at byte 0: unknown type"));
	}
	ck_assert_int_eq(unknown, 256 - 19);
	msg[0] = 'Z';
	pgoutput_decode(msg, 1, &st, &m, &arena, &err);
	ck_assert_str_eq(err.message, "pgoutput: invalid \"message type\" at byte "
	                              "0: unknown type 'Z' (0x5A)");
	msg[0] = 0xC3;
	pgoutput_decode(msg, 1, &st, &m, &arena, &err);
	ck_assert_str_eq(
	    err.message,
	    "pgoutput: invalid \"message type\" at byte 0: unknown type 0xC3");
}
END_TEST

START_TEST(empty_input_is_truncated)
{
	pgoutput_state_init(&st, 1, false);
	expect_failure(pgoutput_decode(buf, 0, &st, &m, &arena, &err),
	               DECODE_TRUNCATED,
	               "pgoutput: truncated at byte 0 reading \"message type\"");
	expect_failure(pgoutput_decode(NULL, 0, &st, &m, &arena, &err),
	               DECODE_TRUNCATED,
	               "pgoutput: truncated at byte 0 reading \"message type\"");
}
END_TEST

START_TEST(unsupported_protocol_version_is_a_usage_error)
{
	ByteWriter w = writer();

	wire_stream_stop(&w);
	ck_assert_int_eq(decode_as(&w, 0, false, false), DECODE_INVALID);
	ck_assert_int_eq(err.code, SYNC_ERR_USAGE);
	ck_assert_str_eq(err.message, "pgoutput: unsupported protocol version 0");
	ck_assert_int_eq(decode_as(&w, 5, true, false), DECODE_INVALID);
	ck_assert_int_eq(err.code, SYNC_ERR_USAGE);
	ck_assert(st.in_stream);
}
END_TEST

START_TEST(streaming_is_gated_at_protocol_2_and_two_phase_at_3)
{
	ByteWriter w = writer();

	wire_stream_start(&w, 712, 1);
	expect_failure(decode_as(&w, 1, false, false), DECODE_INVALID,
	               "Stream Start: invalid \"message type\" at byte 0: requires "
	               "protocol version 2 or later, but version 1 was negotiated");
	ck_assert(!st.in_stream);
	w = writer();
	wire_commit_prepared(&w, 0, 1, 2, 3, 4, "g");
	expect_failure(
	    decode_as(&w, 2, false, false), DECODE_INVALID,
	    "Commit Prepared: invalid \"message type\" at byte 0: requires "
	    "protocol version 3 or later, but version 2 was negotiated");
}
END_TEST

START_TEST(type_names_and_minimum_versions_cover_every_type)
{
	static const struct
	{
		int type;
		const char *name;
		int min_proto;
	} want[] = {
	    {'B', "begin", 1},
	    {'C', "commit", 1},
	    {'O', "origin", 1},
	    {'R', "relation", 1},
	    {'Y', "type", 1},
	    {'I', "insert", 1},
	    {'U', "update", 1},
	    {'D', "delete", 1},
	    {'T', "truncate", 1},
	    {'M', "message", 1},
	    {'S', "stream_start", 2},
	    {'E', "stream_stop", 2},
	    {'c', "stream_commit", 2},
	    {'A', "stream_abort", 2},
	    {'b', "begin_prepare", 3},
	    {'P', "prepare", 3},
	    {'K', "commit_prepared", 3},
	    {'r', "rollback_prepared", 3},
	    {'p', "stream_prepare", 3},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
	{
		ck_assert_str_eq(pgoutput_msg_type_name(want[i].type), want[i].name);
		ck_assert_int_eq(pgoutput_msg_min_proto(want[i].type),
		                 want[i].min_proto);
	}
	ck_assert_str_eq(pgoutput_msg_type_name('Z'), "unknown");
	ck_assert_str_eq(pgoutput_msg_type_name(-1), "unknown");
	ck_assert_str_eq(pgoutput_msg_type_name(0x142), "unknown");
	ck_assert_int_eq(pgoutput_msg_min_proto('Z'), 0);
}
END_TEST

/*
 * ---------- properties over every sample of every message type ----------
 *
 * Each property is one test that walks the whole wire_sample() catalogue and
 * names the sample when it fails.  (One forked test per sample would read
 * better in the report, but costs ~8 ms of fork per test under ASan, which
 * alone would blow the 5 s budget for the unit run.)
 */

static uint8_t sample_buf[1024];

/* Build sample i into sample_buf and a matching fresh state in *state. */
static size_t
load_sample(size_t i, PgoutputState *state)
{
	const WireSample *s = wire_sample(i);
	size_t n = wire_sample_build(s, sample_buf, sizeof(sample_buf));

	ck_assert_uint_gt(n, 0);
	pgoutput_state_init(state, PGOUTPUT_PROTO_MAX, s->streaming_parallel);
	state->in_stream = s->in_stream;
	return n;
}

static void
check_every_sample_decodes_at_its_minimum_and_latest_version(size_t sample)
{
	const WireSample *s = wire_sample(sample);
	size_t n = load_sample(sample, &st);

	const int protos[2] = {s->min_proto, PGOUTPUT_PROTO_MAX};

	for (int k = 0; k < 2; k++)
	{
		int proto = protos[k];

		st.proto_version = proto;
		st.in_stream = s->in_stream;
		ck_assert_msg(pgoutput_decode(sample_buf, n, &st, &m, &arena, &err) ==
		                  DECODE_OK,
		              "%s at proto %d: %s", s->name, proto, err.message);
		ck_assert_int_eq(m.type, s->type);
		ck_assert(m.has_stream_xid ==
		          (s->in_stream && s->type != 'O' && s->type != 'E'));
		if (s->type == 'S')
			ck_assert(st.in_stream);
		else if (s->type == 'E')
			ck_assert(!st.in_stream);
		else
			ck_assert(st.in_stream == s->in_stream);
	}
}

START_TEST(every_sample_decodes_at_its_minimum_and_latest_version)
{
	for (size_t i = 0; i < wire_sample_count(); i++)
		check_every_sample_decodes_at_its_minimum_and_latest_version(i);
}
END_TEST

static void
check_every_sample_is_rejected_below_its_type_minimum_version(size_t sample)
{
	const WireSample *s = wire_sample(sample);
	size_t n = load_sample(sample, &st);
	int min = pgoutput_msg_min_proto(s->type);

	for (int proto = PGOUTPUT_PROTO_MIN; proto < min; proto++)
	{
		st.proto_version = proto;
		ck_assert_int_eq(pgoutput_decode(sample_buf, n, &st, &m, &arena, &err),
		                 DECODE_INVALID);
		ck_assert_ptr_nonnull(strstr(err.message, "requires protocol version"));
		ck_assert(st.in_stream == s->in_stream);
	}
}

START_TEST(every_sample_is_rejected_below_its_type_minimum_version)
{
	for (size_t i = 0; i < wire_sample_count(); i++)
		check_every_sample_is_rejected_below_its_type_minimum_version(i);
}
END_TEST

/* Every proper prefix fails cleanly, names the message, and keeps state. */
static void
check_every_prefix_is_truncated_or_invalid(size_t sample)
{
	const WireSample *s = wire_sample(sample);
	size_t n = load_sample(sample, &st);
	uint8_t *copy;

	for (size_t len = 0; len < n; len++)
	{
		DecodeStatus status;

		/* A heap copy of exactly len bytes, so ASan sees any over-read. */
		copy = malloc(len > 0 ? len : 1);
		memcpy(copy, sample_buf, len);
		status = pgoutput_decode(copy, len, &st, &m, &arena, &err);
		free(copy);
		ck_assert_msg(status == DECODE_TRUNCATED || status == DECODE_INVALID,
		              "%s: prefix %zu gave %s", s->name, len,
		              decode_status_name(status));
		ck_assert_int_eq(err.code, status == DECODE_TRUNCATED
		                               ? SYNC_ERR_TRUNCATED
		                               : SYNC_ERR_INVALID);
		ck_assert_msg(strstr(err.message, " at byte ") != NULL, "%s",
		              err.message);
		ck_assert(st.in_stream == s->in_stream);
	}
}

START_TEST(every_prefix_is_truncated_or_invalid)
{
	for (size_t i = 0; i < wire_sample_count(); i++)
		check_every_prefix_is_truncated_or_invalid(i);
}
END_TEST

static void
check_every_prefix_at_the_end_of_a_guard_page_does_not_over_read(size_t sample)
{
	const WireSample *s = wire_sample(sample);
	size_t n = load_sample(sample, &st);
	GuardPage g;

	guard_page_init(&g);
	for (size_t len = 0; len <= n; len++)
	{
		const uint8_t *p = guard_page_place(&g, sample_buf, len);
		DecodeStatus status;

		st.in_stream = s->in_stream;
		status = pgoutput_decode(p, len, &st, &m, &arena, &err);
		if (len == n)
			ck_assert_msg(status == DECODE_OK, "%s: %s", s->name, err.message);
		else
			ck_assert_msg(status != DECODE_OK, "%s: prefix %zu decoded",
			              s->name, len);
		arena_reset(&arena);
	}
	guard_page_term(&g);
}

START_TEST(every_prefix_at_the_end_of_a_guard_page_does_not_over_read)
{
	for (size_t i = 0; i < wire_sample_count(); i++)
		check_every_prefix_at_the_end_of_a_guard_page_does_not_over_read(i);
}
END_TEST

static void
check_trailing_bytes_are_invalid(size_t sample)
{
	const WireSample *s = wire_sample(sample);
	size_t n = load_sample(sample, &st);
	char want[64];

	snprintf(want, sizeof(want), "1 trailing bytes at byte %zu", n);
	sample_buf[n] = 0;
	ck_assert_int_eq(pgoutput_decode(sample_buf, n + 1, &st, &m, &arena, &err),
	                 DECODE_INVALID);
	ck_assert_msg(strstr(err.message, want) != NULL, "%s: %s", s->name,
	              err.message);
	ck_assert(st.in_stream == s->in_stream);
}

START_TEST(trailing_bytes_are_invalid)
{
	for (size_t i = 0; i < wire_sample_count(); i++)
		check_trailing_bytes_are_invalid(i);
}
END_TEST

/* True if v lies inside [base, base + len). */
static bool
view_inside(ByteView v, const uint8_t *base, size_t len)
{
	return v.len == 0 || (v.ptr >= base && v.ptr + v.len <= base + len);
}

static void
check_views_inside(const PgoutputMessage *msg, const uint8_t *base, size_t len)
{
	const PgoutputChange *c = &msg->u.change;

	if (msg->type == PGOUTPUT_MSG_INSERT || msg->type == PGOUTPUT_MSG_UPDATE ||
	    msg->type == PGOUTPUT_MSG_DELETE)
	{
		for (uint16_t i = 0; c->has_new_tuple && i < c->new_tuple.ncols; i++)
			ck_assert(view_inside(c->new_tuple.values[i].data, base, len));
		for (uint16_t i = 0; c->old_kind != 0 && i < c->old_tuple.ncols; i++)
			ck_assert(view_inside(c->old_tuple.values[i].data, base, len));
	}
	else if (msg->type == PGOUTPUT_MSG_RELATION)
	{
		for (uint16_t i = 0; i < msg->u.relation.natts; i++)
			ck_assert(view_inside(msg->u.relation.columns[i].name, base, len));
	}
}

/*
 * Replace each byte with interesting values: the decoder must return a
 * valid status, and anything it accepts must point inside the input.
 */
static void
check_single_byte_mutations_never_crash(size_t sample)
{
	static const uint8_t values[] = {
	    0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xFF,
	    'n',  'u',  't',  'b',  'K',  'O',  'N',
	};
	size_t n = load_sample(sample, &st);
	bool in_stream = st.in_stream;

	for (size_t pos = 0; pos < n; pos++)
	{
		uint8_t orig = sample_buf[pos];

		for (size_t k = 0; k < sizeof(values); k++)
		{
			DecodeStatus status;

			sample_buf[pos] = values[k];
			st.in_stream = in_stream;
			status = pgoutput_decode(sample_buf, n, &st, &m, &arena, &err);
			ck_assert(status == DECODE_OK || status == DECODE_TRUNCATED ||
			          status == DECODE_INVALID);
			if (status == DECODE_OK)
				check_views_inside(&m, sample_buf, n);
			arena_reset(&arena);
		}
		sample_buf[pos] = orig;
	}
}

START_TEST(single_byte_mutations_never_crash)
{
	for (size_t i = 0; i < wire_sample_count(); i++)
		check_single_byte_mutations_never_crash(i);
}
END_TEST

/* ---------- arena failures ---------- */

/* A Relation whose columns need a block of their own, then an Insert. */
static size_t
build_wide_relation(uint8_t *out, size_t cap, uint16_t natts)
{
	static WireColumn cols[2000];
	ByteWriter w;

	for (uint16_t i = 0; i < natts; i++)
		cols[i] = (WireColumn){(uint8_t) (i == 0), "c", 25, -1};
	byte_writer_init(&w, out, cap);
	wire_relation(&w, 0, 16385, "public", "wide", 'd', natts, cols);
	ck_assert(!w.overflow);
	return w.len;
}

START_TEST(missing_arena_is_reported_as_out_of_memory)
{
	ByteWriter w = writer();

	wire_insert(&w, 0, 1, &three);
	pgoutput_state_init(&st, 1, false);
	ck_assert_int_eq(pgoutput_decode(buf, w.len, &st, &m, NULL, &err),
	                 DECODE_INVALID);
	ck_assert_int_eq(err.code, SYNC_ERR_NOMEM);
	ck_assert_str_eq(
	    err.message,
	    "Insert: out of memory at byte 8 allocating \"new tuple columns\"");
	/* Messages without arrays need no arena at all. */
	w = writer();
	wire_begin(&w, 1, 2, 3);
	ck_assert_int_eq(pgoutput_decode(buf, w.len, &st, &m, NULL, &err),
	                 DECODE_OK);
}
END_TEST

START_TEST(arena_limit_is_reported_as_out_of_memory)
{
	static uint8_t big[32768];
	size_t n = build_wide_relation(big, sizeof(big), 2000);
	Arena small;

	arena_init(&small, NULL, 1024);
	pgoutput_state_init(&st, 1, false);
	ck_assert_int_eq(pgoutput_decode(big, n, &st, &m, &small, &err),
	                 DECODE_INVALID);
	ck_assert_int_eq(err.code, SYNC_ERR_NOMEM);
	ck_assert_str_eq(
	    err.message,
	    "Relation: out of memory at byte 20 allocating \"columns\"");
	arena_term(&small);
}
END_TEST

/*
 * Decode a wide Relation and an Insert, reset, and another Insert, all into
 * one arena whose allocation numbered fail_at fails.  Returns how many
 * messages failed (each must fail as NOMEM); *calls gets the allocator calls.
 */
static int
decode_workload(int fail_at, int *calls)
{
	static uint8_t big[32768];
	size_t n = build_wide_relation(big, sizeof(big), 2000);
	ByteWriter w = writer();
	Arena a;
	FailAlloc fa;
	int nomem = 0;

	wire_insert(&w, 0, 16385, &three);
	fail_alloc_arena_init(&a, &fa, fail_at, 0);
	pgoutput_state_init(&st, 1, false);
	for (int k = 0; k < 3; k++)
	{
		DecodeStatus status =
		    k == 0 ? pgoutput_decode(big, n, &st, &m, &a, &err)
		           : pgoutput_decode(buf, w.len, &st, &m, &a, &err);

		if (status != DECODE_OK)
		{
			ck_assert_int_eq(status, DECODE_INVALID);
			ck_assert_int_eq(err.code, SYNC_ERR_NOMEM);
			nomem++;
		}
		if (k == 1)
			arena_reset(&a);
	}
	arena_term(&a);
	ck_assert_int_eq(fa.live, 0);
	*calls = fa.calls;
	return nomem;
}

START_TEST(every_arena_allocation_failing_in_turn_is_reported)
{
	int total;
	int calls;

	ck_assert_int_eq(decode_workload(-1, &total), 0);
	ck_assert_int_ge(total, 2);
	for (int i = 0; i < total; i++)
		ck_assert_int_eq(decode_workload(i, &calls), 1);
}
END_TEST

Suite *
pgoutput_suite(void)
{
	Suite *s = suite_create("pgoutput");
	TCase *txn = tcase_create("transaction");
	TCase *schema = tcase_create("schema");
	TCase *change = tcase_create("change");
	TCase *stream = tcase_create("stream");
	TCase *twophase = tcase_create("two_phase");
	TCase *gate = tcase_create("types_and_versions");
	TCase *every = tcase_create("every_sample");
	TCase *oom = tcase_create("arena");
	TCase *all[] = {txn, schema, change, stream, twophase, gate, every, oom};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
	{
		tcase_add_checked_fixture(all[i], setup, teardown);
		suite_add_tcase(s, all[i]);
	}
	tcase_add_test(txn, decode_begin_reads_every_field);
	tcase_add_test(txn, begin_with_final_lsn_0_is_invalid);
	tcase_add_test(txn, decode_commit_reads_every_field);
	tcase_add_test(txn, commit_with_any_flag_set_is_invalid);
	tcase_add_test(txn, decode_origin_reads_lsn_and_name);
	tcase_add_test(txn, origin_without_nul_is_truncated);
	tcase_add_test(schema, decode_relation_reads_columns);
	tcase_add_test(schema, decode_relation_with_no_columns_and_pg_catalog);
	tcase_add_test(schema, relation_with_unknown_replica_identity_is_invalid);
	tcase_add_test(schema, relation_column_with_unknown_flag_bit_is_invalid);
	tcase_add_test(
	    schema,
	    relation_column_count_beyond_the_message_is_invalid_before_allocating);
	tcase_add_test(schema, decode_type_reads_oid_and_names);
	tcase_add_test(change, decode_insert_reads_text_null_and_binary_values);
	tcase_add_test(change, binary_values_are_accepted_at_protocol_1);
	tcase_add_test(change, insert_without_new_tuple_tag_is_invalid);
	tcase_add_test(change, tuple_value_of_unknown_kind_is_invalid);
	tcase_add_test(
	    change,
	    tuple_column_count_beyond_the_message_is_invalid_before_allocating);
	tcase_add_test(change, tuple_value_length_beyond_the_message_is_truncated);
	tcase_add_test(change, decode_update_without_old_tuple);
	tcase_add_test(change, decode_update_with_old_key);
	tcase_add_test(change, decode_update_with_old_tuple);
	tcase_add_test(change, update_needs_a_new_tuple_after_the_old_one);
	tcase_add_test(change, update_with_unknown_tuple_tag_is_invalid);
	tcase_add_test(change, update_cut_inside_the_old_tuple_names_the_field);
	tcase_add_test(change, decode_delete_with_old_key_or_old_tuple);
	tcase_add_test(change, delete_needs_an_old_key_or_old_tuple);
	tcase_add_test(change, decode_truncate_reads_relids_and_flags);
	tcase_add_test(change, truncate_with_unknown_flag_bit_is_invalid);
	tcase_add_test(
	    change,
	    truncate_relation_count_beyond_the_message_is_invalid_before_allocating);
	tcase_add_test(change, decode_message_reads_prefix_and_raw_content);
	tcase_add_test(change, message_with_unknown_flag_bit_is_invalid);
	tcase_add_test(stream, stream_start_enters_and_stream_stop_leaves_a_block);
	tcase_add_test(stream,
	               stream_start_inside_a_block_is_invalid_and_keeps_state);
	tcase_add_test(stream,
	               stream_stop_outside_a_block_is_invalid_and_keeps_state);
	tcase_add_test(stream, failed_stream_start_does_not_enter_a_block);
	tcase_add_test(stream, transaction_messages_are_invalid_inside_a_block);
	tcase_add_test(stream, stream_xid_prefix_is_read_inside_a_block);
	tcase_add_test(stream, origin_inside_a_block_has_no_xid_prefix);
	tcase_add_test(stream, stream_xid_prefix_is_not_read_outside_a_block);
	tcase_add_test(stream, stream_xid_0_is_invalid);
	tcase_add_test(stream, decode_stream_commit_reads_every_field);
	tcase_add_test(
	    stream, stream_abort_carries_abort_info_only_with_parallel_streaming);
	tcase_add_test(twophase, decode_begin_prepare_reads_every_field);
	tcase_add_test(twophase,
	               decode_prepare_and_stream_prepare_read_every_field);
	tcase_add_test(twophase, decode_commit_prepared_reads_every_field);
	tcase_add_test(twophase, decode_rollback_prepared_reads_every_field);
	tcase_add_test(twophase, two_phase_messages_reject_flags_and_unset_lsns);
	tcase_add_test(gate, unknown_message_types_are_invalid);
	tcase_add_test(gate, empty_input_is_truncated);
	tcase_add_test(gate, unsupported_protocol_version_is_a_usage_error);
	tcase_add_test(gate, streaming_is_gated_at_protocol_2_and_two_phase_at_3);
	tcase_add_test(gate, type_names_and_minimum_versions_cover_every_type);
	tcase_add_test(every,
	               every_sample_decodes_at_its_minimum_and_latest_version);
	tcase_add_test(every,
	               every_sample_is_rejected_below_its_type_minimum_version);
	tcase_add_test(every, every_prefix_is_truncated_or_invalid);
	tcase_add_test(every,
	               every_prefix_at_the_end_of_a_guard_page_does_not_over_read);
	tcase_add_test(every, trailing_bytes_are_invalid);
	tcase_add_test(every, single_byte_mutations_never_crash);
	tcase_add_test(oom, missing_arena_is_reported_as_out_of_memory);
	tcase_add_test(oom, arena_limit_is_reported_as_out_of_memory);
	tcase_add_test(oom, every_arena_allocation_failing_in_turn_is_reported);
	return s;
}
