/*
 * tests/unit/test_error.c -- SyncError and DecodeStatus names.
 */
#include <string.h>

#include "protocol/decode.h"
#include "protocol/error.h"
#include "tests/unit/suites.h"

START_TEST(set_formats_the_message_and_returns_false)
{
	SyncError err;

	ck_assert(!sync_error_set(&err, SYNC_ERR_INVALID, "bad \"%s\" at byte %d",
	                          "flags", 3));
	ck_assert_int_eq(err.code, SYNC_ERR_INVALID);
	ck_assert_str_eq(err.message, "bad \"flags\" at byte 3");
	ck_assert_str_eq(err.sqlstate, "");
}
END_TEST

START_TEST(context_is_prefixed_and_code_is_kept)
{
	SyncError err;

	sync_error_set(&err, SYNC_ERR_SERVER, "duplicate key");
	memcpy(err.sqlstate, "23505", 6);
	ck_assert(!sync_error_context(&err, "applying transaction %u", 712u));
	ck_assert_str_eq(err.message, "applying transaction 712: duplicate key");
	ck_assert_int_eq(err.code, SYNC_ERR_SERVER);
	ck_assert_str_eq(err.sqlstate, "23505");
}
END_TEST

START_TEST(context_on_an_empty_message_adds_no_separator)
{
	SyncError err;

	sync_error_clear(&err);
	sync_error_context(&err, "reading slot");
	ck_assert_str_eq(err.message, "reading slot");
}
END_TEST

START_TEST(long_messages_are_cut_and_stay_terminated)
{
	SyncError err;
	char big[2 * SYNC_ERROR_MESSAGE_MAX];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sync_error_set(&err, SYNC_ERR_IO, "%s", big);
	ck_assert_uint_eq(strlen(err.message), SYNC_ERROR_MESSAGE_MAX - 1);
	sync_error_context(&err, "%s", big);
	ck_assert_uint_eq(strlen(err.message), SYNC_ERROR_MESSAGE_MAX - 1);
	sync_error_set(&err, SYNC_ERR_IO, "short");
	sync_error_context(&err, "%s", big);
	ck_assert_uint_eq(strlen(err.message), SYNC_ERROR_MESSAGE_MAX - 1);
}
END_TEST

START_TEST(clear_resets_everything)
{
	SyncError err;

	sync_error_set(&err, SYNC_ERR_IO, "x");
	sync_error_clear(&err);
	ck_assert_int_eq(err.code, SYNC_ERR_NONE);
	ck_assert_str_eq(err.message, "");
}
END_TEST

START_TEST(null_error_is_tolerated)
{
	ck_assert(!sync_error_set(NULL, SYNC_ERR_IO, "x"));
	ck_assert(!sync_error_context(NULL, "y"));
	sync_error_clear(NULL);
}
END_TEST

START_TEST(every_code_and_status_has_a_name)
{
	ck_assert_str_eq(sync_error_code_name(SYNC_ERR_NONE), "none");
	ck_assert_str_eq(sync_error_code_name(SYNC_ERR_TRUNCATED), "truncated");
	ck_assert_str_eq(sync_error_code_name(SYNC_ERR_INTERNAL), "internal");
	for (int c = SYNC_ERR_NONE; c <= SYNC_ERR_INTERNAL; c++)
		ck_assert_str_ne(sync_error_code_name((SyncErrorCode) c), "unknown");
	ck_assert_str_eq(sync_error_code_name((SyncErrorCode) 99), "unknown");
	ck_assert_str_eq(decode_status_name(DECODE_OK), "ok");
	ck_assert_str_eq(decode_status_name(DECODE_TRUNCATED), "truncated");
	ck_assert_str_eq(decode_status_name(DECODE_INVALID), "invalid");
	ck_assert_str_eq(decode_status_name((DecodeStatus) 42), "unknown");
}
END_TEST

Suite *
error_suite(void)
{
	Suite *s = suite_create("error");
	TCase *tc = tcase_create("error");

	tcase_add_test(tc, set_formats_the_message_and_returns_false);
	tcase_add_test(tc, context_is_prefixed_and_code_is_kept);
	tcase_add_test(tc, context_on_an_empty_message_adds_no_separator);
	tcase_add_test(tc, long_messages_are_cut_and_stay_terminated);
	tcase_add_test(tc, clear_resets_everything);
	tcase_add_test(tc, null_error_is_tolerated);
	tcase_add_test(tc, every_code_and_status_has_a_name);
	suite_add_tcase(s, tc);
	return s;
}
