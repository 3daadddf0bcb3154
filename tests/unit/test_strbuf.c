/*
 * tests/unit/test_strbuf.c -- the growing buffer (protocol/strbuf.c).
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/strbuf.h"
#include "tests/unit/suites.h"

START_TEST(adds_keep_the_contents_nul_terminated)
{
	StrBuf b = {0};

	strbuf_add(&b, "SELECT ");
	strbuf_addc(&b, '$');
	strbuf_add_int(&b, 12);
	strbuf_addn(&b, " FROM", 5);
	ck_assert_str_eq(b.p, "SELECT $12 FROM");
	ck_assert_uint_eq(b.len, strlen("SELECT $12 FROM"));
	ck_assert(!b.oom);
	strbuf_free(&b);
	ck_assert_ptr_null(b.p);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(grows_past_many_doublings_without_losing_a_byte)
{
	StrBuf b = {0};
	size_t sum = 0;

	for (int i = 0; i < 5000; i++)
		strbuf_add_int(&b, i);
	for (size_t i = 0; i < b.len; i++)
		sum += (size_t) (b.p[i] - '0');
	/* 0..4999: units, tens and hundreds each run through 0-9 500 times
	 * (45 * 500 each); thousands are 0-4, 1000 times each */
	ck_assert_uint_eq(b.len, 10 + 90 * 2 + 900 * 3 + 4000 * 4);
	ck_assert_uint_eq(sum, 3 * 45 * 500 + (0 + 1 + 2 + 3 + 4) * 1000);
	ck_assert_int_eq(b.p[b.len], '\0');
	strbuf_free(&b);
}
END_TEST

START_TEST(integers_at_the_limits)
{
	StrBuf b = {0};

	strbuf_add_int(&b, LLONG_MIN);
	strbuf_addc(&b, ' ');
	strbuf_add_int(&b, LLONG_MAX);
	strbuf_addc(&b, ' ');
	strbuf_add_int(&b, 0);
	strbuf_addc(&b, ' ');
	strbuf_add_int(&b, -7);
	ck_assert_str_eq(b.p, "-9223372036854775808 9223372036854775807 0 -7");
	strbuf_free(&b);
}
END_TEST

START_TEST(binary_bytes_and_empty_adds)
{
	StrBuf b = {0};

	strbuf_addn(&b, "", 0);
	ck_assert_ptr_nonnull(b.p);
	ck_assert_str_eq(b.p, "");
	strbuf_addn(&b, "a\0b", 3);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_int_eq(memcmp(b.p, "a\0b", 4), 0);
	strbuf_free(&b);
}
END_TEST

START_TEST(out_of_memory_is_sticky_and_steal_says_so)
{
	StrBuf b = {0};

	strbuf_add(&b, "kept");
	/* a length no allocation can satisfy (it would wrap size_t) */
	strbuf_addn(&b, "x", SIZE_MAX - 2);
	ck_assert(b.oom);
	strbuf_add(&b, " more");
	ck_assert_str_eq(b.p, "kept");
	ck_assert_ptr_null(strbuf_steal(&b));
	ck_assert_ptr_null(b.p);
	ck_assert(!b.oom);
}
END_TEST

START_TEST(reset_keeps_memory_and_clears_oom)
{
	StrBuf b = {0};
	char *mem;

	strbuf_add(&b, "first");
	mem = b.p;
	strbuf_addn(&b, "x", SIZE_MAX - 2);
	strbuf_reset(&b);
	ck_assert(!b.oom);
	ck_assert_ptr_eq(b.p, mem);
	ck_assert_str_eq(b.p, "");
	strbuf_add(&b, "second");
	ck_assert_str_eq(b.p, "second");
	strbuf_free(&b);
}
END_TEST

START_TEST(steal_hands_over_the_string)
{
	StrBuf b = {0};
	char *s;

	s = strbuf_steal(&b);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "");
	free(s);
	strbuf_add(&b, "abc");
	s = strbuf_steal(&b);
	ck_assert_str_eq(s, "abc");
	ck_assert_ptr_null(b.p);
	ck_assert_uint_eq(b.len, 0);
	free(s);
}
END_TEST

Suite *
strbuf_suite(void)
{
	Suite *s = suite_create("strbuf");
	TCase *tc = tcase_create("strbuf");

	tcase_add_test(tc, adds_keep_the_contents_nul_terminated);
	tcase_add_test(tc, grows_past_many_doublings_without_losing_a_byte);
	tcase_add_test(tc, integers_at_the_limits);
	tcase_add_test(tc, binary_bytes_and_empty_adds);
	tcase_add_test(tc, out_of_memory_is_sticky_and_steal_says_so);
	tcase_add_test(tc, reset_keeps_memory_and_clears_oom);
	tcase_add_test(tc, steal_hands_over_the_string);
	suite_add_tcase(s, tc);
	return s;
}
