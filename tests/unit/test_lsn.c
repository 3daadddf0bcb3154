/*
 * tests/unit/test_lsn.c -- lsn_parse/lsn_format and PostgreSQL timestamps.
 *
 * timestamp_format() is compared with glibc's gmtime_r() over the whole range
 * PostgreSQL accepts; the test may use libc time functions, protocol/ may not.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "protocol/lsn.h"
#include "tests/unit/suites.h"

#define PG_MIN_TIMESTAMP INT64_C(-211813488000000000)
#define PG_END_TIMESTAMP INT64_C(9223371331200000000)

static const struct
{
	const char *text;
	Lsn lsn;
} good_lsns[] = {
    {"0/0", 0},
    {"16/B374D848", UINT64_C(0x16B374D848)},
    {"16/b374d848", UINT64_C(0x16B374D848)},
    {"00000016/0000000A", UINT64_C(0x160000000A)},
    {"FFFFFFFF/FFFFFFFF", UINT64_MAX},
    {"1/0", UINT64_C(0x100000000)},
};

static const char *const bad_lsns[] = {
    "",      "/",           "0",           "16/",
    "/16",   "123456789/0", "0/123456789", "16/B374D848 ",
    " 16/1", "16//1",       "0x16/1",      "g/1",
    "1/g",   "16/1/2",      "-1/0",        "+1/0",
    "1/-0",  "1:0",         "1/0\n",       "１/0",
};

START_TEST(parse_accepts_the_server_forms)
{
	Lsn lsn = 1;

	ck_assert_msg(lsn_parse(good_lsns[_i].text, &lsn), "%s",
	              good_lsns[_i].text);
	ck_assert_uint_eq(lsn, good_lsns[_i].lsn);
}
END_TEST

START_TEST(parse_rejects_anything_else_and_leaves_out_alone)
{
	Lsn lsn = 77;

	ck_assert_msg(!lsn_parse(bad_lsns[_i], &lsn), "accepted \"%s\"",
	              bad_lsns[_i]);
	ck_assert_uint_eq(lsn, 77);
}
END_TEST

START_TEST(parse_rejects_null)
{
	Lsn lsn = 77;

	ck_assert(!lsn_parse(NULL, &lsn));
	ck_assert_uint_eq(lsn, 77);
}
END_TEST

START_TEST(format_writes_upper_case_hex_without_padding)
{
	char buf[LSN_FORMAT_MAX];

	ck_assert_str_eq(lsn_format(0, buf), "0/0");
	ck_assert_str_eq(lsn_format(UINT64_C(0x16B374D848), buf), "16/B374D848");
	ck_assert_str_eq(lsn_format(UINT64_C(0x100000000), buf), "1/0");
	ck_assert_str_eq(lsn_format(UINT64_MAX, buf), "FFFFFFFF/FFFFFFFF");
}
END_TEST

START_TEST(format_matches_printf_and_parses_back)
{
	char buf[LSN_FORMAT_MAX];
	char want[32];
	uint64_t x = UINT64_C(0x9E3779B97F4A7C15);

	for (int i = 0; i < 5000; i++)
	{
		Lsn lsn = x >> (i % 64);
		Lsn back = 0;

		x = x * UINT64_C(6364136223846793005) + 1442695040888963407u;
		snprintf(want, sizeof(want), "%X/%X", LSN_ARGS(lsn));
		ck_assert_str_eq(lsn_format(lsn, buf), want);
		ck_assert(lsn_parse(buf, &back));
		ck_assert_uint_eq(back, lsn);
	}
}
END_TEST

START_TEST(unix_and_postgres_epochs_convert_both_ways)
{
	ck_assert_int_eq(timestamp_from_unix_us(0), -PG_EPOCH_OFFSET_US);
	ck_assert_int_eq(timestamp_to_unix_us(0), PG_EPOCH_OFFSET_US);
	ck_assert_int_eq(timestamp_to_unix_us(timestamp_from_unix_us(123456789)),
	                 123456789);
}
END_TEST

START_TEST(conversions_saturate_instead_of_overflowing)
{
	ck_assert_int_eq(timestamp_from_unix_us(INT64_MIN), INT64_MIN);
	ck_assert_int_eq(timestamp_from_unix_us(INT64_MAX), INT64_MAX);
	ck_assert_int_eq(timestamp_to_unix_us(INT64_MIN), INT64_MIN);
	ck_assert_int_eq(timestamp_to_unix_us(INT64_MAX), INT64_MAX);
	ck_assert_int_eq(timestamp_to_unix_us(INT64_MAX - 5), INT64_MAX);
}
END_TEST

START_TEST(format_timestamps_at_known_points)
{
	char buf[TIMESTAMP_FORMAT_MAX];

	ck_assert_str_eq(timestamp_format(0, buf), "2000-01-01 00:00:00.000000+00");
	ck_assert_str_eq(timestamp_format(-1, buf),
	                 "1999-12-31 23:59:59.999999+00");
	ck_assert_str_eq(timestamp_format(INT64_C(817552167123456), buf),
	                 "2025-11-27 09:49:27.123456+00");
	ck_assert_str_eq(timestamp_format(INT64_MIN, buf), "-infinity");
	ck_assert_str_eq(timestamp_format(INT64_MAX, buf), "infinity");
	ck_assert_str_eq(timestamp_format(PG_MIN_TIMESTAMP, buf),
	                 "4714-11-24 00:00:00.000000+00 BC");
	ck_assert_str_eq(timestamp_format(PG_MIN_TIMESTAMP - 1, buf), "-infinity");
	ck_assert_str_eq(timestamp_format(PG_END_TIMESTAMP - 1, buf),
	                 "294276-12-31 23:59:59.999999+00");
	ck_assert_str_eq(timestamp_format(PG_END_TIMESTAMP, buf), "infinity");
}
END_TEST

START_TEST(format_puts_year_1_bc_before_year_1_ad)
{
	char buf[TIMESTAMP_FORMAT_MAX];
	/* 0001-01-01 00:00:00 is 730119 days before 2000-01-01. */
	PgTimestamp ad1 = -INT64_C(730119) * INT64_C(86400000000);

	ck_assert_str_eq(timestamp_format(ad1, buf),
	                 "0001-01-01 00:00:00.000000+00");
	ck_assert_str_eq(timestamp_format(ad1 - 1, buf),
	                 "0001-12-31 23:59:59.999999+00 BC");
}
END_TEST

/* What PostgreSQL would print, computed with gmtime_r(). */
static void
reference_format(PgTimestamp ts, char *buf, size_t cap)
{
	int64_t unix_us = ts + PG_EPOCH_OFFSET_US;
	int64_t secs = unix_us / 1000000;
	int64_t usec = unix_us % 1000000;
	time_t t;
	struct tm tm;
	long long year;

	if (usec < 0)
	{
		usec += 1000000;
		secs--;
	}
	t = (time_t) secs;
	ck_assert_ptr_nonnull(gmtime_r(&t, &tm));
	year = (long long) tm.tm_year + 1900;
	snprintf(buf, cap, "%04lld-%02d-%02d %02d:%02d:%02d.%06lld+00%s",
	         year > 0 ? year : 1 - year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, (long long) usec, year > 0 ? "" : " BC");
}

START_TEST(format_agrees_with_gmtime_over_the_whole_range)
{
	char got[TIMESTAMP_FORMAT_MAX];
	char want[64];
	uint64_t x = 88172645463325252u;
	uint64_t span = (uint64_t) PG_END_TIMESTAMP - (uint64_t) PG_MIN_TIMESTAMP;

	for (int i = 0; i < 20000; i++)
	{
		PgTimestamp ts;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* Half over the whole range, half within a few centuries of 2000. */
		if (i % 2 == 0)
			ts = (PgTimestamp) ((uint64_t) PG_MIN_TIMESTAMP + x % span);
		else
			ts = (PgTimestamp) (x % (UINT64_C(20000000000000000))) -
			     INT64_C(10000000000000000);
		reference_format(ts, want, sizeof(want));
		ck_assert_str_eq(timestamp_format(ts, got), want);
	}
}
END_TEST

Suite *
lsn_suite(void)
{
	Suite *s = suite_create("lsn");
	TCase *parse = tcase_create("parse");
	TCase *format = tcase_create("format");
	TCase *ts = tcase_create("timestamp");

	tcase_add_loop_test(parse, parse_accepts_the_server_forms, 0,
	                    sizeof(good_lsns) / sizeof(good_lsns[0]));
	tcase_add_loop_test(parse, parse_rejects_anything_else_and_leaves_out_alone,
	                    0, sizeof(bad_lsns) / sizeof(bad_lsns[0]));
	tcase_add_test(parse, parse_rejects_null);
	tcase_add_test(format, format_writes_upper_case_hex_without_padding);
	tcase_add_test(format, format_matches_printf_and_parses_back);
	tcase_add_test(ts, unix_and_postgres_epochs_convert_both_ways);
	tcase_add_test(ts, conversions_saturate_instead_of_overflowing);
	tcase_add_test(ts, format_timestamps_at_known_points);
	tcase_add_test(ts, format_puts_year_1_bc_before_year_1_ad);
	tcase_add_test(ts, format_agrees_with_gmtime_over_the_whole_range);
	suite_add_tcase(s, parse);
	suite_add_tcase(s, format);
	suite_add_tcase(s, ts);
	return s;
}
