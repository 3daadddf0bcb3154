/*
 * tests/unit/test_names.c -- protocol/names.c: slot, publication and state
 * schema names are checked before anything is created; apply/statesql.c
 * puts the state schema's name into SQL text quoted.
 */
#include <string.h>

#include "apply/statesql.h"
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

/*
 * The default slot and publication name: one per source database, valid
 * for any database name, and different for two names that sanitize alike.
 */
START_TEST(default_names_are_per_database_and_always_valid)
{
	char		a[NAMES_DEFAULT_SIZE];
	char		b[NAMES_DEFAULT_SIZE];
	char		huge[300];

	names_default("shop", a, sizeof(a));
	ck_assert_str_eq(a, "pgstream_shop_a847e0a9");
	ck_assert(names_slot_valid(a));
	/* same input, same name: a resume computes the same one */
	names_default("shop", b, sizeof(b));
	ck_assert_str_eq(a, b);
	/* upper case, spaces, quotes, UTF-8: sanitized, and told apart by the hash */
	names_default("Shop", b, sizeof(b));
	ck_assert(names_slot_valid(b));
	ck_assert_str_ne(a, b);
	ck_assert(strncmp(b, "pgstream_shop_", 14) == 0);
	names_default("my db\"x", a, sizeof(a));
	ck_assert(names_slot_valid(a));
	ck_assert(strncmp(a, "pgstream_my_db_x_", 17) == 0);
	names_default("my_db_x", b, sizeof(b));
	ck_assert_str_ne(a, b);
	names_default("caf\xc3\xa9", a, sizeof(a));
	ck_assert(names_slot_valid(a));
	names_default("", a, sizeof(a));
	ck_assert(names_slot_valid(a));
	/* long names: cut so that "<name>_insert_only" still fits in 63 bytes */
	memset(huge, 'x', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	names_default(huge, a, sizeof(a));
	ck_assert(names_slot_valid(a));
	ck_assert_uint_le(strlen(a) + strlen("_insert_only"), NAME_MAX_BYTES);
	huge[200] = 'y';
	names_default(huge, b, sizeof(b));
	ck_assert_str_ne(a, b);
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

START_TEST(state_schema_names_fit_in_a_name_and_are_not_reserved)
{
	char		longest[64];
	char		too_long[65];
	SyncError	err;

	memset(longest, 'S', 63);
	longest[63] = '\0';
	memset(too_long, 'S', 64);
	too_long[64] = '\0';
	ck_assert(names_state_schema_valid("pgstream"));
	ck_assert(names_state_schema_valid("pgs_state"));
	ck_assert(names_state_schema_valid("PG_upper"));	/* only lower case pg_ is reserved */
	ck_assert(names_state_schema_valid("pg"));
	ck_assert(names_state_schema_valid("Mixed \"Case\" o'x.y*"));
	ck_assert(names_state_schema_valid(longest));
	ck_assert(!names_state_schema_valid(too_long));
	ck_assert(!names_state_schema_valid(""));
	ck_assert(!names_state_schema_valid("pg_"));
	ck_assert(!names_state_schema_valid("pg_state"));
	ck_assert(!names_state_schema_valid("pg_toast"));

	sync_error_clear(&err);
	ck_assert(names_state_schema_check("pgs_state", &err));
	ck_assert(!names_state_schema_check("pg_state", &err));
	ck_assert_int_eq(err.code, SYNC_ERR_USAGE);
	ck_assert_str_eq(err.message, "invalid --state-schema \"pg_state\": names starting with "
					 "\"pg_\" are reserved by PostgreSQL");
	sync_error_clear(&err);
	ck_assert(!names_state_schema_check(too_long, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_USAGE);
	ck_assert_ptr_nonnull(strstr(err.message, "use 1 to 63 bytes"));
	sync_error_clear(&err);
	ck_assert(!names_state_schema_check("", &err));
	ck_assert_str_eq(err.message, "invalid --state-schema \"\": use 1 to 63 bytes "
					 "(a longer name would be cut short by the server)");
}
END_TEST

START_TEST(state_sql_quotes_the_configured_name)
{
	static const char tmpl[] =
		"SELECT 1 FROM {state}.migration WHERE {state_literal} <> 'x{y}'";
	const char *a;

	/* the default, before any command sets it */
	ck_assert_str_eq(state_schema_name(), "pgstream");
	ck_assert_str_eq(state_sql(tmpl),
					 "SELECT 1 FROM \"pgstream\".migration WHERE 'pgstream' <> 'x{y}'");

	state_schema_set("My \"st\" o'x");
	ck_assert_str_eq(state_schema_name(), "My \"st\" o'x");
	ck_assert_str_eq(state_schema_quoted(), "\"My \"\"st\"\" o'x\"");
	a = state_sql(tmpl);
	ck_assert_str_eq(a, "SELECT 1 FROM \"My \"\"st\"\" o'x\".migration"
					 " WHERE 'My \"st\" o''x' <> 'x{y}'");
	/* cached: the same text again is the same expansion, not a new one */
	ck_assert_ptr_eq(state_sql(tmpl), a);
	/* a backslash is doubled in an E'' literal, whatever standard_conforming_strings */
	state_schema_set("a\\b");
	ck_assert_str_eq(state_sql("{state_literal}, {state}"), "E'a\\\\b', \"a\\b\"");
	/* no placeholder: the text itself */
	ck_assert_str_eq(state_sql("SELECT 1"), "SELECT 1");
	state_schema_set("pgstream");
}
END_TEST

Suite *
names_suite(void)
{
	Suite	   *s = suite_create("names");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, slot_names_follow_the_server_rule);
	tcase_add_test(tc, default_names_are_per_database_and_always_valid);
	tcase_add_test(tc, publication_names_fit_in_a_name);
	tcase_add_test(tc, the_check_names_the_bad_name_and_the_rule);
	tcase_add_test(tc, state_schema_names_fit_in_a_name_and_are_not_reserved);
	tcase_add_test(tc, state_sql_quotes_the_configured_name);
	suite_add_tcase(s, tc);
	return s;
}
