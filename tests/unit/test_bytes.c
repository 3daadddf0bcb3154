/*
 * tests/unit/test_bytes.c -- ByteReader (sticky errors, exact messages) and
 * ByteWriter.
 */
#include <string.h>

#include "protocol/bytes.h"
#include "tests/unit/suites.h"

START_TEST(reader_decodes_big_endian_integers)
{
	static const uint8_t buf[] = {
	    0xAB, 0x01, 0x02, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x89,
	    0xAB, 0xCD, 0xEF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
	};
	ByteReader r;

	byte_reader_init(&r, buf, sizeof(buf));
	ck_assert_uint_eq(byte_reader_u8(&r, "a"), 0xAB);
	ck_assert_uint_eq(byte_reader_u16(&r, "b"), 0x0102);
	ck_assert_uint_eq(byte_reader_u32(&r, "c"), 0xDEADBEEFu);
	ck_assert_uint_eq(byte_reader_u64(&r, "d"), UINT64_C(0x0123456789ABCDEF));
	ck_assert_int_eq(byte_reader_i64(&r, "e"), -2);
	ck_assert(!byte_reader_failed(&r));
	ck_assert_uint_eq(byte_reader_remaining(&r), 0);
}
END_TEST

START_TEST(i64_covers_the_extremes)
{
	static const uint8_t buf[] = {
	    0x80, 0,    0,    0,    0,    0,    0,    0,
	    0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	};
	ByteReader r;

	byte_reader_init(&r, buf, sizeof(buf));
	ck_assert_int_eq(byte_reader_i64(&r, "min"), INT64_MIN);
	ck_assert_int_eq(byte_reader_i64(&r, "max"), INT64_MAX);
}
END_TEST

START_TEST(short_read_fails_and_stays_failed)
{
	static const uint8_t buf[] = {1, 2, 3, 0};
	ByteReader r;
	ByteView v;

	byte_reader_init(&r, buf, sizeof(buf));
	ck_assert_uint_eq(byte_reader_u8(&r, "tag"), 1);
	ck_assert_uint_eq(byte_reader_u32(&r, "relid"), 0);
	ck_assert(byte_reader_failed(&r));
	ck_assert_int_eq(r.failure, BYTE_READER_TRUNCATED);
	ck_assert_str_eq(r.failed_field, "relid");
	ck_assert_uint_eq(r.failed_offset, 1);
	/* Everything after the failure reads zero and moves nothing. */
	ck_assert_uint_eq(byte_reader_u8(&r, "next"), 0);
	v = byte_reader_cstring(&r, "name");
	ck_assert_ptr_null(v.ptr);
	ck_assert_uint_eq(r.pos, 1);
	ck_assert_uint_eq(byte_reader_remaining(&r), 0);
	ck_assert_str_eq(r.failed_field, "relid");
}
END_TEST

START_TEST(cstring_is_a_view_that_excludes_the_nul)
{
	static const uint8_t buf[] = {'a', 'b', 0, 0, 'z'};
	ByteReader r;
	ByteView v;

	byte_reader_init(&r, buf, sizeof(buf));
	v = byte_reader_cstring(&r, "s1");
	ck_assert_ptr_eq(v.ptr, buf);
	ck_assert_uint_eq(v.len, 2);
	ck_assert_str_eq((const char *) v.ptr, "ab");
	v = byte_reader_cstring(&r, "s2");
	ck_assert_uint_eq(v.len, 0);
	ck_assert_ptr_eq(v.ptr, buf + 3);
	v = byte_reader_cstring(&r, "s3");
	ck_assert_ptr_null(v.ptr);
	ck_assert_int_eq(r.failure, BYTE_READER_TRUNCATED);
	ck_assert_uint_eq(r.failed_offset, 4);
}
END_TEST

START_TEST(bytes_returns_a_view_or_fails_without_moving)
{
	static const uint8_t buf[] = {1, 2, 3};
	ByteReader r;
	ByteView v;

	byte_reader_init(&r, buf, sizeof(buf));
	v = byte_reader_bytes(&r, 0, "empty");
	ck_assert_uint_eq(v.len, 0);
	v = byte_reader_bytes(&r, 2, "two");
	ck_assert_ptr_eq(v.ptr, buf);
	ck_assert_uint_eq(v.len, 2);
	v = byte_reader_bytes(&r, SIZE_MAX, "huge");
	ck_assert_ptr_null(v.ptr);
	ck_assert_uint_eq(v.len, 0);
	ck_assert_uint_eq(r.failed_offset, 2);
}
END_TEST

START_TEST(null_buffer_reads_as_empty)
{
	ByteReader r;

	byte_reader_init(&r, NULL, 100);
	ck_assert_uint_eq(byte_reader_remaining(&r), 0);
	ck_assert_ptr_null(byte_reader_cstring(&r, "s").ptr);
	ck_assert(byte_reader_failed(&r));
}
END_TEST

START_TEST(first_failure_wins)
{
	static const uint8_t buf[] = {1, 2};
	ByteReader r;

	byte_reader_init(&r, buf, sizeof(buf));
	(void) byte_reader_u8(&r, "flags");
	byte_reader_invalid_at(&r, 0, "flags", "must be 0");
	byte_reader_invalid(&r, "other", "later");
	byte_reader_nomem(&r, "columns");
	(void) byte_reader_u64(&r, "lsn");
	ck_assert_int_eq(r.failure, BYTE_READER_INVALID);
	ck_assert_str_eq(r.failed_field, "flags");
	ck_assert_str_eq(r.reason, "must be 0");
	ck_assert_uint_eq(r.failed_offset, 0);
}
END_TEST

START_TEST(finish_names_message_field_and_offset)
{
	static const uint8_t buf[] = {'I', 0, 0, 0, 1, 'N', 0};
	ByteReader r;
	SyncError err;

	byte_reader_init(&r, buf, sizeof(buf));
	(void) byte_reader_bytes(&r, 5, "head");
	(void) byte_reader_u8(&r, "tag");
	(void) byte_reader_u16(&r, "new tuple column count");
	ck_assert(!byte_reader_finish(&r, "Insert", &err));
	ck_assert_int_eq(err.code, SYNC_ERR_TRUNCATED);
	ck_assert_str_eq(
	    err.message,
	    "Insert: truncated at byte 6 reading \"new tuple column count\"");

	byte_reader_init(&r, buf, sizeof(buf));
	(void) byte_reader_u8(&r, "tag");
	byte_reader_invalid_at(&r, 1, "flags", "must be 0");
	ck_assert(!byte_reader_finish(&r, "Commit", &err));
	ck_assert_int_eq(err.code, SYNC_ERR_INVALID);
	ck_assert_str_eq(err.message,
	                 "Commit: invalid \"flags\" at byte 1: must be 0");

	byte_reader_init(&r, buf, sizeof(buf));
	(void) byte_reader_u32(&r, "x");
	byte_reader_nomem(&r, "columns");
	ck_assert(!byte_reader_finish(&r, "Relation", &err));
	ck_assert_int_eq(err.code, SYNC_ERR_NOMEM);
	ck_assert_str_eq(
	    err.message,
	    "Relation: out of memory at byte 4 allocating \"columns\"");
}
END_TEST

START_TEST(finish_rejects_trailing_bytes)
{
	static const uint8_t buf[] = {'E', 1, 2, 3};
	ByteReader r;
	SyncError err;

	byte_reader_init(&r, buf, sizeof(buf));
	(void) byte_reader_u8(&r, "tag");
	ck_assert(!byte_reader_finish(&r, "Stream Stop", &err));
	ck_assert_int_eq(err.code, SYNC_ERR_INVALID);
	ck_assert_str_eq(err.message, "Stream Stop: 3 trailing bytes at byte 1");

	byte_reader_init(&r, buf, 1);
	(void) byte_reader_u8(&r, "tag");
	ck_assert(byte_reader_finish(&r, "Stream Stop", &err));
}
END_TEST

START_TEST(writer_round_trips_through_the_reader)
{
	uint8_t buf[64];
	ByteWriter w;
	ByteReader r;

	byte_writer_init(&w, buf, sizeof(buf));
	byte_writer_u8(&w, 0x7F);
	byte_writer_u16(&w, 0xBEEF);
	byte_writer_u32(&w, 0xCAFEBABEu);
	byte_writer_u64(&w, UINT64_C(0x1122334455667788));
	byte_writer_cstring(&w, "pgstream");
	byte_writer_bytes(&w, "\x01\x02", 2);
	byte_writer_bytes(&w, NULL, 0);
	ck_assert(!w.overflow);
	ck_assert_uint_eq(w.len, 1 + 2 + 4 + 8 + 9 + 2);
	ck_assert_mem_eq(buf, "\x7F\xBE\xEF\xCA\xFE\xBA\xBE", 7);

	byte_reader_init(&r, buf, w.len);
	ck_assert_uint_eq(byte_reader_u8(&r, "a"), 0x7F);
	ck_assert_uint_eq(byte_reader_u16(&r, "b"), 0xBEEF);
	ck_assert_uint_eq(byte_reader_u32(&r, "c"), 0xCAFEBABEu);
	ck_assert_uint_eq(byte_reader_u64(&r, "d"), UINT64_C(0x1122334455667788));
	ck_assert_str_eq((const char *) byte_reader_cstring(&r, "e").ptr,
	                 "pgstream");
	ck_assert_mem_eq(byte_reader_bytes(&r, 2, "f").ptr, "\x01\x02", 2);
	ck_assert(byte_reader_finish(&r, "test", NULL));
}
END_TEST

START_TEST(writer_overflow_is_sticky_and_writes_nothing_more)
{
	uint8_t buf[8] = {0};
	ByteWriter w;

	byte_writer_init(&w, buf, 5);
	byte_writer_u32(&w, 0x01020304);
	byte_writer_u16(&w, 0xFFFF);
	ck_assert(w.overflow);
	byte_writer_u8(&w, 0xEE);
	ck_assert_uint_eq(w.len, 4);
	ck_assert_uint_eq(buf[4], 0);
	ck_assert(w.overflow);
}
END_TEST

Suite *
bytes_suite(void)
{
	Suite *s = suite_create("bytes");
	TCase *reader = tcase_create("reader");
	TCase *writer = tcase_create("writer");

	tcase_add_test(reader, reader_decodes_big_endian_integers);
	tcase_add_test(reader, i64_covers_the_extremes);
	tcase_add_test(reader, short_read_fails_and_stays_failed);
	tcase_add_test(reader, cstring_is_a_view_that_excludes_the_nul);
	tcase_add_test(reader, bytes_returns_a_view_or_fails_without_moving);
	tcase_add_test(reader, null_buffer_reads_as_empty);
	tcase_add_test(reader, first_failure_wins);
	tcase_add_test(reader, finish_names_message_field_and_offset);
	tcase_add_test(reader, finish_rejects_trailing_bytes);
	tcase_add_test(writer, writer_round_trips_through_the_reader);
	tcase_add_test(writer, writer_overflow_is_sticky_and_writes_nothing_more);
	suite_add_tcase(s, reader);
	suite_add_tcase(s, writer);
	return s;
}
