/*
 * tests/unit/test_names.c -- protocol/names.c: slot and publication names
 * are checked before anything is created.
 */
#include <string.h>

#include "protocol/names.h"
#include "tests/unit/suites.h"

START_TEST(slot_names_follow_the_server_rule)
{
	char		longest[64];
	char		too_long[65];

	memset(longest, 'a', 63);
	longest[63] = '\0';
	memset(too_long, 'a', 64);
	too_long[64] = '\0';
	ck_assert(names_slot_valid("pgstream"));
	ck_assert(names_slot_valid("slot_1"));
	ck_assert(names_slot_valid(longest));
	ck_assert(!names_slot_valid(too_long));
	ck_assert(!names_slot_valid(""));
	ck_assert(!names_slot_valid("UPPER"));
	ck_assert(!names_slot_valid("Mixed_case"));
	ck_assert(!names_slot_valid("with-dash"));
	ck_assert(!names_slot_valid("with space"));
	ck_assert(!names_slot_valid("quote\""));
	ck_assert(!names_slot_valid("caf\xc3\xa9"));
}
END_TEST

START_TEST(publication_names_fit_in_a_name)
{
	char		longest[64];
	char		too_long[65];

	memset(longest, 'P', 63);
	longest[63] = '\0';
	memset(too_long, 'P', 64);
	too_long[64] = '\0';
	ck_assert(names_publication_valid("pgstream"));
	ck_assert(names_publication_valid("Mixed \"Case\" pub"));
	ck_assert(names_publication_valid(longest));
	ck_assert(!names_publication_valid(too_long));
	ck_assert(!names_publication_valid(""));
}
END_TEST

START_TEST(the_check_names_the_bad_name_and_the_rule)
{
	SyncError	err;

	sync_error_clear(&err);
	ck_assert(names_check("pgstream", "Pub", &err));
	ck_assert(names_check(NULL, NULL, &err));
	ck_assert(!names_check("UPPER", "pub", &err));
	ck_assert_int_eq(err.code, SYNC_ERR_USAGE);
	ck_assert_str_eq(err.message, "invalid replication slot name \"UPPER\": use 1 to 63 "
					 "lower case letters, digits and underscores");
	sync_error_clear(&err);
	ck_assert(!names_check("ok", "0123456789012345678901234567890123456789012345678901234567890123", &err));
	ck_assert_int_eq(err.code, SYNC_ERR_USAGE);
	ck_assert_ptr_nonnull(strstr(err.message, "invalid publication name"));
}
END_TEST

Suite *
names_suite(void)
{
	Suite	   *s = suite_create("names");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, slot_names_follow_the_server_rule);
	tcase_add_test(tc, publication_names_fit_in_a_name);
	tcase_add_test(tc, the_check_names_the_bad_name_and_the_rule);
	suite_add_tcase(s, tc);
	return s;
}
