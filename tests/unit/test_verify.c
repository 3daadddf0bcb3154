/*
 * tests/unit/test_verify.c -- the pure pieces of engine/verify.c: the
 * digest statement (column order must not matter, names quoted), the key
 * ranges of chunks, the merge of two object lists into missing / extra /
 * definition / privileges with their verdicts, and digest arithmetic.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "engine/verify.h"
#include "tests/unit/suites.h"

START_TEST(digest_sql_sorts_columns_by_name)
{
	const char *const a[] = {"b", "a", "C"};
	const char *const b[] = {"a", "C", "b"};
	char	   *x = verify_digest_sql("\"public\".\"t\"", a, NULL, 3, NULL);
	char	   *y = verify_digest_sql("\"public\".\"t\"", b, NULL, 3, NULL);

	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(y);
	/* byte-wise order: "C" < "a" < "b" */
	ck_assert_ptr_nonnull(strstr(x, "ROW(x.\"C\"::text, x.\"a\"::text, x.\"b\"::text)"));
	ck_assert_str_eq(x, y);
	ck_assert_ptr_nonnull(strstr(x, "FROM ONLY \"public\".\"t\" x"));
	ck_assert_ptr_null(strstr(x, "WHERE"));
	free(x);
	free(y);
}
END_TEST

START_TEST(digest_sql_quotes_names_and_keeps_where)
{
	const char *const cols[] = {"we\"ird", "id"};
	char	   *x = verify_digest_sql("\"s\".\"t\"", cols, NULL, 2, "(x.\"id\") > ($1::integer)");

	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(strstr(x, "ROW(x.\"id\"::text, x.\"we\"\"ird\"::text)"));
	ck_assert_ptr_nonnull(strstr(x, " WHERE (x.\"id\") > ($1::integer)"));
	free(x);
}
END_TEST

START_TEST(floats_are_digested_in_binary)
{
	const char *const cols[] = {"r", "d", "n"};
	const char *const types[] = {"real", "double precision", "numeric(10,2)"};
	char	   *x = verify_digest_sql("\"s\".\"t\"", cols, types, 3, NULL);

	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(strstr(x, "ROW(float8send(x.\"d\")::text, x.\"n\"::text, "
								 "float4send(x.\"r\")::text)"));
	free(x);
}
END_TEST

START_TEST(digest_sql_of_a_table_without_columns)
{
	char	   *x = verify_digest_sql("\"s\".\"t\"", NULL, NULL, 0, NULL);

	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(strstr(x, "ROW()::text"));
	free(x);
}
END_TEST

START_TEST(chunk_ranges_cover_the_key_space_once)
{
	const char *const keys[] = {"a", "b"};
	const char *const types[] = {"integer", "text"};
	int			n = -1;
	char	   *w;

	ck_assert_ptr_null(verify_chunk_where(keys, types, 2, 0, 1, &n));
	ck_assert_int_eq(n, 0);
	w = verify_chunk_where(keys, types, 2, 0, 3, &n);
	ck_assert_str_eq(w, "(x.\"a\", x.\"b\") <= ($1::integer, $2::text)");
	ck_assert_int_eq(n, 2);
	free(w);
	w = verify_chunk_where(keys, types, 2, 1, 3, &n);
	ck_assert_str_eq(w, "(x.\"a\", x.\"b\") > ($1::integer, $2::text) AND "
					 "(x.\"a\", x.\"b\") <= ($3::integer, $4::text)");
	ck_assert_int_eq(n, 4);
	free(w);
	w = verify_chunk_where(keys, types, 2, 2, 3, &n);
	ck_assert_str_eq(w, "(x.\"a\", x.\"b\") > ($1::integer, $2::text)");
	ck_assert_int_eq(n, 2);
	free(w);
	w = verify_chunk_where(keys, types, 1, 1, 2, &n);
	ck_assert_str_eq(w, "(x.\"a\") > ($1::integer)");
	ck_assert_int_eq(n, 1);
	free(w);
}
END_TEST

static VerifyObject
obj(const char *type, const char *identity, const char *def, const char *priv)
{
	VerifyObject o = {type, identity, def, priv};

	return o;
}

START_TEST(compare_names_missing_extra_and_changed)
{
	VerifyObject src[] = {
		obj("function", "public.f()", "sql", "a"),
		obj("index", "public.t_pkey", "CREATE UNIQUE INDEX", ""),
		obj("publication", "pub", "", ""),
		obj("table", "public.t", "r", "alice"),
		obj("table column", "public.t.a", "integer", ""),
		obj("table column", "public.t.b", "text", ""),
	};
	VerifyObject tgt[] = {
		obj("table column", "public.t.b", "integer", ""),
		obj("table", "public.t", "r", "migrator"),
		obj("table", "public.u", "r", ""),
		obj("index", "public.t_pkey", "CREATE UNIQUE INDEX", ""),
	};
	VerifyDiff *d = NULL;
	size_t		n = 0;

	verify_sort_objects(src, 6);
	verify_sort_objects(tgt, 4);
	ck_assert(verify_compare_objects(src, 6, tgt, 4, false, &d, &n));
	ck_assert_int_eq(n, 6);
	/* in (type, identity) order */
	ck_assert_int_eq(d[0].kind, VERIFY_DIFF_MISSING);
	ck_assert_str_eq(d[0].source->identity, "public.f()");
	ck_assert_int_eq(d[0].verdict, VERIFY_FAIL);
	ck_assert_int_eq(d[1].kind, VERIFY_DIFF_MISSING);
	ck_assert_str_eq(d[1].source->type, "publication");
	ck_assert_int_eq(d[1].verdict, VERIFY_EXPECTED);
	ck_assert_ptr_nonnull(strstr(d[1].reason, "does not migrate publications"));
	ck_assert_int_eq(d[2].kind, VERIFY_DIFF_PRIVILEGES);
	ck_assert_int_eq(d[2].verdict, VERIFY_NOTE);
	ck_assert_int_eq(d[3].kind, VERIFY_DIFF_EXTRA);
	ck_assert_str_eq(d[3].target->identity, "public.u");
	ck_assert_ptr_null(d[3].source);
	ck_assert_int_eq(d[3].verdict, VERIFY_FAIL);
	ck_assert_int_eq(d[4].kind, VERIFY_DIFF_MISSING);
	ck_assert_str_eq(d[4].source->identity, "public.t.a");
	ck_assert_int_eq(d[5].kind, VERIFY_DIFF_DEFINITION);
	ck_assert_str_eq(d[5].source->definition, "text");
	ck_assert_str_eq(d[5].target->definition, "integer");
	ck_assert_int_eq(d[5].verdict, VERIFY_FAIL);
	free(d);
}
END_TEST

START_TEST(definitions_across_majors_are_notes)
{
	VerifyObject src[] = {obj("view", "public.v", "SELECT 1", "")};
	VerifyObject tgt[] = {obj("view", "public.v", "SELECT 1 AS x", "")};
	VerifyDiff *d = NULL;
	size_t		n = 0;

	ck_assert(verify_compare_objects(src, 1, tgt, 1, true, &d, &n));
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(d[0].kind, VERIFY_DIFF_DEFINITION);
	ck_assert_int_eq(d[0].verdict, VERIFY_NOTE);
	free(d);
	ck_assert(verify_compare_objects(src, 1, src, 1, false, &d, &n));
	ck_assert_int_eq(n, 0);
	free(d);
}
END_TEST

START_TEST(expected_reasons)
{
	ck_assert_ptr_nonnull(verify_expected_reason("publication"));
	ck_assert_ptr_nonnull(verify_expected_reason("publication relation"));
	ck_assert_ptr_nonnull(verify_expected_reason("publication namespace"));
	ck_assert_ptr_nonnull(verify_expected_reason("subscription"));
	ck_assert_ptr_nonnull(verify_expected_reason("event trigger"));
	ck_assert_ptr_nonnull(verify_expected_reason("default acl"));
	ck_assert_ptr_null(verify_expected_reason("table"));
	ck_assert_ptr_null(verify_expected_reason("function"));
	ck_assert_ptr_null(verify_expected_reason("publicationx"));
}
END_TEST

START_TEST(digests_add_modulo_2_64)
{
	VerifyDigest a = {2, {UINT64_MAX, 5}};
	VerifyDigest b = {3, {2, 7}};
	VerifyDigest c = {5, {1, 12}};

	verify_digest_add(&a, &b);
	ck_assert(verify_digest_equal(&a, &c));
	c.sum[1] = 13;
	ck_assert(!verify_digest_equal(&a, &c));
	c.sum[1] = 12;
	c.rows = 4;
	ck_assert(!verify_digest_equal(&a, &c));
}
END_TEST

Suite *
verify_suite(void)
{
	Suite	   *s = suite_create("verify");
	TCase	   *tc = tcase_create("pure");

	tcase_add_test(tc, digest_sql_sorts_columns_by_name);
	tcase_add_test(tc, digest_sql_quotes_names_and_keeps_where);
	tcase_add_test(tc, floats_are_digested_in_binary);
	tcase_add_test(tc, digest_sql_of_a_table_without_columns);
	tcase_add_test(tc, chunk_ranges_cover_the_key_space_once);
	tcase_add_test(tc, compare_names_missing_extra_and_changed);
	tcase_add_test(tc, definitions_across_majors_are_notes);
	tcase_add_test(tc, expected_reasons);
	tcase_add_test(tc, digests_add_modulo_2_64);
	suite_add_tcase(s, tc);
	return s;
}
