/*
 * tests/unit/test_writer_sql.c -- apply/sqlbuild.c: the exact SQL text of
 * every statement the apply writer sends.
 *
 * Each statement must touch exactly the relation the pgoutput message
 * names: ONLY for a table (an inheritance parent's children are reported
 * on their own), no ONLY for a partitioned table (its partitions hold the
 * rows).  Names are always quoted; the WHERE of a key and of replica
 * identity FULL is pinned down to the parameter number.
 */
#include <stdlib.h>
#include <string.h>

#include "apply/sqlbuild.h"
#include "tests/unit/suites.h"

#define MAX_COLS 8

/* A hand-built target relation: names given raw, quoted as the writer does. */
typedef struct TestRel
{
	SqlRel		r;
	char	   *cols[MAX_COLS];
	bool		text_compare[MAX_COLS];
	char	   *eq_op[MAX_COLS];
	char	   *cast_type[MAX_COLS];
} TestRel;

static void
rel_init(TestRel *t, const char *nsp, const char *name, bool partitioned, int natts,
		 const char *const names[])
{
	memset(t, 0, sizeof(*t));
	t->r.relid = 16384;
	t->r.version = 7;
	t->r.qualified = sql_quote_qualified(nsp, name);
	ck_assert_ptr_nonnull(t->r.qualified);
	t->r.partitioned = partitioned;
	t->r.natts = natts;
	for (int i = 0; i < natts; i++)
	{
		t->cols[i] = sql_quote_ident(names[i]);
		ck_assert_ptr_nonnull(t->cols[i]);
	}
	t->r.cols = t->cols;
	t->r.text_compare = t->text_compare;
	t->r.eq_op = t->eq_op;
	t->r.cast_type = t->cast_type;
}

static void
rel_free(TestRel *t)
{
	free(t->r.qualified);
	for (int i = 0; i < t->r.natts; i++)
	{
		free(t->cols[i]);
		free(t->eq_op[i]);
		free(t->cast_type[i]);
	}
}

static const char *const id_v[] = {"id", "v"};

/* ---- quoting ---- */

START_TEST(identifiers_are_always_quoted)
{
	char	   *q = sql_quote_ident("plain");

	ck_assert_str_eq(q, "\"plain\"");
	free(q);
	q = sql_quote_ident("We\"ird; \"\"x");
	ck_assert_str_eq(q, "\"We\"\"ird; \"\"\"\"x\"");
	free(q);
	q = sql_quote_ident("");
	ck_assert_str_eq(q, "\"\"");
	free(q);
	q = sql_quote_qualified("my schema", "T\"1");
	ck_assert_str_eq(q, "\"my schema\".\"T\"\"1\"");
	free(q);
	q = sql_quote_ident("ñ Col");
	ck_assert_str_eq(q, "\"ñ Col\"");
	free(q);
}
END_TEST

/* ---- INSERT and COPY: never ONLY (they do not recurse) ---- */

START_TEST(insert_names_each_written_column_once)
{
	TestRel		t;
	bool		mask[] = {true, true};
	StrBuf		sql = {0},
				cols = {0};

	rel_init(&t, "public", "parent", false, 2, id_v);
	sql_build_insert(&t.r, mask, &sql, &cols);
	ck_assert_str_eq(sql.p, "INSERT INTO \"public\".\"parent\" (\"id\", \"v\")"
					 " OVERRIDING SYSTEM VALUE VALUES ($1, $2)");
	ck_assert_str_eq(cols.p, "\"id\", \"v\"");
	ck_assert(!sql.oom);
	free(sql.p);
	free(cols.p);
	rel_free(&t);
}
END_TEST

START_TEST(insert_skips_masked_columns_and_numbers_parameters_densely)
{
	static const char *const names[] = {"a", "gen", "c"};
	TestRel		t;
	bool		mask[] = {true, false, true};
	StrBuf		sql = {0},
				cols = {0};

	rel_init(&t, "s", "parted", true, 3, names);
	sql_build_insert(&t.r, mask, &sql, &cols);
	/* a partitioned table routes an INSERT by itself */
	ck_assert_str_eq(sql.p, "INSERT INTO \"s\".\"parted\" (\"a\", \"c\")"
					 " OVERRIDING SYSTEM VALUE VALUES ($1, $2)");
	free(sql.p);
	free(cols.p);
	rel_free(&t);
}
END_TEST

START_TEST(insert_with_no_column_uses_default_values)
{
	TestRel		t;
	bool		mask[] = {false, false};
	StrBuf		sql = {0},
				cols = {0};

	rel_init(&t, "public", "t", false, 2, id_v);
	sql_build_insert(&t.r, mask, &sql, &cols);
	ck_assert_str_eq(sql.p, "INSERT INTO \"public\".\"t\" DEFAULT VALUES");
	free(sql.p);
	free(cols.p);
	rel_free(&t);
}
END_TEST

START_TEST(copy_names_the_table_and_columns)
{
	TestRel		t;
	StrBuf		sql = {0};

	rel_init(&t, "public", "parent", false, 2, id_v);
	sql_build_copy(&t.r, "\"id\", \"v\"", &sql);
	ck_assert_str_eq(sql.p, "COPY \"public\".\"parent\" (\"id\", \"v\") FROM STDIN");
	free(sql.p);
	rel_free(&t);
}
END_TEST

/* ---- UPDATE ---- */

START_TEST(update_by_key_touches_only_the_named_table)
{
	TestRel		t;
	bool		setmask[] = {true, true};
	bool		keymask[] = {true, false};
	StrBuf		sql = {0};

	rel_init(&t, "public", "parent", false, 2, id_v);
	sql_build_update(&t.r, setmask, keymask, false, &sql);
	ck_assert_str_eq(sql.p, "UPDATE ONLY \"public\".\"parent\" SET \"id\" = $1, \"v\" = $2"
					 " WHERE \"id\" = $3");
	free(sql.p);
	rel_free(&t);
}
END_TEST

START_TEST(update_of_a_partitioned_table_routes_to_its_partitions)
{
	TestRel		t;
	bool		setmask[] = {false, true};
	bool		keymask[] = {true, false};
	StrBuf		sql = {0};

	rel_init(&t, "public", "parted", true, 2, id_v);
	sql_build_update(&t.r, setmask, keymask, false, &sql);
	ck_assert_str_eq(sql.p, "UPDATE \"public\".\"parted\" SET \"v\" = $1 WHERE \"id\" = $2");
	free(sql.p);
	rel_free(&t);
}
END_TEST

START_TEST(update_with_a_composite_key_ands_every_key_column)
{
	static const char *const names[] = {"k1", "v", "k2"};
	TestRel		t;
	bool		setmask[] = {false, true, false};
	bool		keymask[] = {true, false, true};
	StrBuf		sql = {0};

	rel_init(&t, "public", "t", false, 3, names);
	sql_build_update(&t.r, setmask, keymask, false, &sql);
	ck_assert_str_eq(sql.p, "UPDATE ONLY \"public\".\"t\" SET \"v\" = $1"
					 " WHERE \"k1\" = $2 AND \"k2\" = $3");
	free(sql.p);
	rel_free(&t);
}
END_TEST

START_TEST(update_with_full_identity_picks_one_row_of_the_same_table)
{
	TestRel		t;
	bool		setmask[] = {false, true};
	bool		keymask[] = {true, true};
	StrBuf		sql = {0};

	rel_init(&t, "public", "fparent", false, 2, id_v);
	sql_build_update(&t.r, setmask, keymask, true, &sql);
	ck_assert_str_eq(sql.p, "UPDATE ONLY \"public\".\"fparent\" SET \"v\" = $1"
					 " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM ONLY"
					 " \"public\".\"fparent\" WHERE \"id\" IS NOT DISTINCT FROM $2"
					 " AND \"v\" IS NOT DISTINCT FROM $3 LIMIT 1)");
	free(sql.p);
	rel_free(&t);
}
END_TEST

START_TEST(update_with_full_identity_of_a_partitioned_table_searches_its_partitions)
{
	TestRel		t;
	bool		setmask[] = {false, true};
	bool		keymask[] = {true, true};
	StrBuf		sql = {0};

	rel_init(&t, "public", "fparted", true, 2, id_v);
	sql_build_update(&t.r, setmask, keymask, true, &sql);
	ck_assert_str_eq(sql.p, "UPDATE \"public\".\"fparted\" SET \"v\" = $1"
					 " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM"
					 " \"public\".\"fparted\" WHERE \"id\" IS NOT DISTINCT FROM $2"
					 " AND \"v\" IS NOT DISTINCT FROM $3 LIMIT 1)");
	free(sql.p);
	rel_free(&t);
}
END_TEST

/*
 * A table without published columns (none at all, or only generated ones)
 * under REPLICA IDENTITY FULL: every row is alike, so the statement takes
 * any one row of the relation (never a child's), and has no parameter.
 */
START_TEST(full_identity_without_columns_picks_any_one_row)
{
	TestRel		t;
	bool		none[1] = {false};
	StrBuf		sql = {0};

	rel_init(&t, "public", "z", false, 0, id_v);
	sql_build_delete(&t.r, none, true, &sql);
	ck_assert_str_eq(sql.p, "DELETE FROM ONLY \"public\".\"z\""
					 " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM ONLY"
					 " \"public\".\"z\" LIMIT 1)");
	free(sql.p);
	sql = (StrBuf) {0};
	sql_build_update(&t.r, none, none, true, &sql);
	ck_assert_str_eq(sql.p, "SELECT 1 FROM ONLY \"public\".\"z\""
					 " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM ONLY"
					 " \"public\".\"z\" LIMIT 1)");
	free(sql.p);
	rel_free(&t);
	rel_init(&t, "public", "zp", true, 0, id_v);
	sql = (StrBuf) {0};
	sql_build_delete(&t.r, none, true, &sql);
	ck_assert_str_eq(sql.p, "DELETE FROM \"public\".\"zp\""
					 " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM"
					 " \"public\".\"zp\" LIMIT 1)");
	free(sql.p);
	rel_free(&t);
}
END_TEST

/*
 * FULL matching of a type without "=" (json, point, a composite): the text
 * forms of the column and of the parameter read as the column's type on
 * the target, bytewise and NULL-safe.
 */
START_TEST(full_identity_compares_types_without_equality_as_text)
{
	static const char *const names[] = {"id", "doc"};
	TestRel		t;
	bool		keymask[] = {true, true};
	StrBuf		sql = {0};

	rel_init(&t, "public", "j", false, 2, names);
	t.text_compare[1] = true;
	t.cast_type[1] = strdup("pg_catalog.json");
	sql_build_delete(&t.r, keymask, true, &sql);
	ck_assert_str_eq(sql.p, "DELETE FROM ONLY \"public\".\"j\""
					 " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM ONLY"
					 " \"public\".\"j\" WHERE \"id\" IS NOT DISTINCT FROM $1"
					 " AND CAST(\"doc\" AS pg_catalog.text) COLLATE pg_catalog.\"C\""
					 " IS NOT DISTINCT FROM CAST($2::pg_catalog.json AS pg_catalog.text)"
					 " LIMIT 1)");
	free(sql.p);
	rel_free(&t);
}
END_TEST

/*
 * FULL matching of a type whose equality lives outside pg_catalog (hstore,
 * citext: the sessions' search_path is empty) or may hold for values that
 * are not identical (float 0 and -0, numeric 1.0 and 1.00): the operator
 * qualified by its schema, the parameter cast to the column's type by name,
 * and the text forms compared as well.
 */
START_TEST(full_identity_names_the_operator_and_the_type_when_needed)
{
	static const char *const names[] = {"id", "h", "f"};
	TestRel		t;
	bool		keymask[] = {true, true, true};
	StrBuf		sql = {0};

	rel_init(&t, "public", "k", false, 3, names);
	t.eq_op[1] = strdup("OPERATOR(public.=)");
	t.cast_type[1] = strdup("public.hstore");
	t.eq_op[2] = strdup("OPERATOR(pg_catalog.=)");
	t.cast_type[2] = strdup("pg_catalog.float8");
	sql_build_delete(&t.r, keymask, true, &sql);
	ck_assert_str_eq(sql.p, "DELETE FROM ONLY \"public\".\"k\""
					 " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM ONLY"
					 " \"public\".\"k\" WHERE \"id\" IS NOT DISTINCT FROM $1"
					 " AND (\"h\" OPERATOR(public.=) $2::public.hstore"
					 " AND CAST(\"h\" AS pg_catalog.text) COLLATE pg_catalog.\"C\""
					 " IS NOT DISTINCT FROM CAST($2::public.hstore AS pg_catalog.text)"
					 " OR \"h\" IS NULL AND $2::public.hstore IS NULL)"
					 " AND (\"f\" OPERATOR(pg_catalog.=) $3::pg_catalog.float8"
					 " AND CAST(\"f\" AS pg_catalog.text) COLLATE pg_catalog.\"C\""
					 " IS NOT DISTINCT FROM CAST($3::pg_catalog.float8 AS pg_catalog.text)"
					 " OR \"f\" IS NULL AND $3::pg_catalog.float8 IS NULL) LIMIT 1)");
	free(sql.p);
	rel_free(&t);
}
END_TEST

/* The same conditions in an UPDATE, numbered after the SET parameters. */
START_TEST(full_identity_update_numbers_match_parameters_after_the_set)
{
	static const char *const names[] = {"c", "n"};
	TestRel		t;
	bool		setmask[] = {false, true};
	bool		keymask[] = {true, true};
	StrBuf		sql = {0};

	rel_init(&t, "app", "kl", false, 2, names);
	t.text_compare[0] = true;
	t.cast_type[0] = strdup("\"App\".\"shape\"");
	sql_build_update(&t.r, setmask, keymask, true, &sql);
	ck_assert_str_eq(sql.p, "UPDATE ONLY \"app\".\"kl\" SET \"n\" = $1"
					 " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM ONLY"
					 " \"app\".\"kl\" WHERE CAST(\"c\" AS pg_catalog.text)"
					 " COLLATE pg_catalog.\"C\" IS NOT DISTINCT FROM"
					 " CAST($2::\"App\".\"shape\" AS pg_catalog.text)"
					 " AND \"n\" IS NOT DISTINCT FROM $3 LIMIT 1)");
	free(sql.p);
	rel_free(&t);
}
END_TEST

/*
 * A key of an extension's type (ltree: "ltree = unknown" does not resolve
 * under the empty search_path) or a composite: the operator by schema, the
 * parameter typed by name; a built-in key stays a plain "=".
 */
START_TEST(keys_of_extension_and_composite_types_name_operator_and_type)
{
	static const char *const names[] = {"id", "path", "pt", "v"};
	TestRel		t;
	bool		keymask[] = {true, true, true, false};
	StrBuf		sql = {0};

	rel_init(&t, "app", "k", false, 4, names);
	t.eq_op[1] = strdup("OPERATOR(ext.=)");
	t.cast_type[1] = strdup("ext.ltree");
	t.text_compare[2] = true;
	t.cast_type[2] = strdup("app.pt3");
	sql_build_delete(&t.r, keymask, false, &sql);
	ck_assert_str_eq(sql.p, "DELETE FROM ONLY \"app\".\"k\" WHERE \"id\" = $1"
					 " AND \"path\" OPERATOR(ext.=) $2::ext.ltree"
					 " AND \"pt\" OPERATOR(pg_catalog.=) $3::app.pt3");
	free(sql.p);
	rel_free(&t);
}
END_TEST

START_TEST(update_with_nothing_to_set_still_checks_the_one_row)
{
	TestRel		t;
	bool		setmask[] = {false, false};
	bool		keymask[] = {true, false};
	StrBuf		sql = {0};

	rel_init(&t, "public", "doc", false, 2, id_v);
	sql_build_update(&t.r, setmask, keymask, false, &sql);
	ck_assert_str_eq(sql.p, "SELECT 1 FROM ONLY \"public\".\"doc\" WHERE \"id\" = $1");
	free(sql.p);
	rel_free(&t);
}
END_TEST

/* ---- DELETE ---- */

START_TEST(delete_by_key_touches_only_the_named_table)
{
	TestRel		t;
	bool		keymask[] = {true, false};
	StrBuf		sql = {0};

	rel_init(&t, "public", "parent", false, 2, id_v);
	sql_build_delete(&t.r, keymask, false, &sql);
	ck_assert_str_eq(sql.p, "DELETE FROM ONLY \"public\".\"parent\" WHERE \"id\" = $1");
	free(sql.p);
	rel_free(&t);
}
END_TEST

START_TEST(delete_from_a_partitioned_table_routes_to_its_partitions)
{
	TestRel		t;
	bool		keymask[] = {true, true};
	StrBuf		sql = {0};

	rel_init(&t, "public", "parted", true, 2, id_v);
	sql_build_delete(&t.r, keymask, false, &sql);
	ck_assert_str_eq(sql.p, "DELETE FROM \"public\".\"parted\" WHERE \"id\" = $1 AND \"v\" = $2");
	free(sql.p);
	rel_free(&t);
}
END_TEST

/* ---- TRUNCATE ---- */

START_TEST(truncate_lists_exactly_the_named_tables)
{
	TestRel		a,
				b;
	const SqlRel *rels[2];
	StrBuf		sql = {0};

	rel_init(&a, "public", "parent", false, 2, id_v);
	rel_init(&b, "public", "child", false, 2, id_v);
	rels[0] = &a.r;
	rels[1] = &b.r;
	sql_build_truncate(rels, 1, 0, &sql);
	ck_assert_str_eq(sql.p, "TRUNCATE ONLY \"public\".\"parent\"");
	free(sql.p);
	sql = (StrBuf) {0};
	sql_build_truncate(rels, 2, 0, &sql);
	ck_assert_str_eq(sql.p, "TRUNCATE ONLY \"public\".\"parent\", ONLY \"public\".\"child\"");
	free(sql.p);
	rel_free(&a);
	rel_free(&b);
}
END_TEST

START_TEST(truncate_of_a_partitioned_table_empties_its_partitions)
{
	TestRel		a,
				b;
	const SqlRel *rels[2];
	StrBuf		sql = {0};

	rel_init(&a, "public", "parted", true, 2, id_v);
	rel_init(&b, "public", "plain", false, 2, id_v);
	rels[0] = &a.r;
	rels[1] = &b.r;
	sql_build_truncate(rels, 2, 0, &sql);
	ck_assert_str_eq(sql.p, "TRUNCATE \"public\".\"parted\", ONLY \"public\".\"plain\"");
	free(sql.p);
	rel_free(&a);
	rel_free(&b);
}
END_TEST

/* flags: 0, CASCADE, RESTART IDENTITY, both; CASCADE is never replayed */
START_TEST(truncate_honours_restart_identity_and_never_cascades)
{
	static const char *const expected[] = {
		"TRUNCATE ONLY \"public\".\"t\"",
		"TRUNCATE ONLY \"public\".\"t\"",
		"TRUNCATE ONLY \"public\".\"t\" RESTART IDENTITY",
		"TRUNCATE ONLY \"public\".\"t\" RESTART IDENTITY",
	};
	static const uint8_t flags[] = {
		0, PGOUTPUT_TRUNCATE_CASCADE, PGOUTPUT_TRUNCATE_RESTART_IDENTITY,
		PGOUTPUT_TRUNCATE_CASCADE | PGOUTPUT_TRUNCATE_RESTART_IDENTITY,
	};
	TestRel		t;
	const SqlRel *rels[1];
	StrBuf		sql = {0};

	rel_init(&t, "public", "t", false, 2, id_v);
	rels[0] = &t.r;
	sql_build_truncate(rels, 1, flags[_i], &sql);
	ck_assert_str_eq(sql.p, expected[_i]);
	free(sql.p);
	rel_free(&t);
}
END_TEST

/* ---- statement keys ---- */

START_TEST(statement_keys_tell_every_shape_apart)
{
	static const char *const names[] = {"a", "b", "c"};
	TestRel		t;
	bool		m1[] = {true, false, true};
	bool		m2[] = {true, true, false};
	bool		m3[] = {false, false, true};
	StrBuf		k[6] = {{0}};

	rel_init(&t, "public", "t", false, 3, names);
	sql_make_key(&k[0], 'U', &t.r, m1, m3);
	ck_assert_str_eq(k[0].p, "U:16384:7:103");
	sql_make_key(&k[1], 'U', &t.r, m2, m3);
	sql_make_key(&k[2], 'D', &t.r, m1, NULL);
	ck_assert_str_eq(k[2].p, "D:16384:7:101");
	sql_make_key(&k[3], 'E', &t.r, m1, NULL);	/* DELETE, FULL identity */
	t.r.version = 8;
	sql_make_key(&k[4], 'U', &t.r, m1, m3);
	t.r.relid = 16385;
	t.r.version = 7;
	sql_make_key(&k[5], 'U', &t.r, m1, m3);
	for (int i = 0; i < 6; i++)
		for (int j = i + 1; j < 6; j++)
			ck_assert_msg(strcmp(k[i].p, k[j].p) != 0, "keys %d and %d are both %s", i, j,
						  k[i].p);
	for (int i = 0; i < 6; i++)
		free(k[i].p);
	rel_free(&t);
}
END_TEST

/* ---- COPY text ---- */

static void
check_escape(const char *in, size_t len, TupleValueKind kind, const char *expected)
{
	TupleValue	v;
	StrBuf		s = {0};

	memset(&v, 0, sizeof(v));
	v.kind = kind;
	v.data.ptr = (const uint8_t *) in;
	v.data.len = len;
	sql_copy_escape(&s, &v);
	ck_assert_str_eq(s.p, expected);
	free(s.p);
}

START_TEST(copy_text_escapes_what_copy_would_read_differently)
{
	static const char in[] = "a\tb\nc\rd\\e\\N.";

	check_escape(NULL, 0, TUPLE_VALUE_NULL, "\\N");
	check_escape("", 0, TUPLE_VALUE_TEXT, "");
	check_escape("\\N", 2, TUPLE_VALUE_TEXT, "\\\\N");
	check_escape("\\.", 2, TUPLE_VALUE_TEXT, "\\\\.");
	check_escape(in, sizeof(in) - 1, TUPLE_VALUE_TEXT, "a\\tb\\nc\\rd\\\\e\\\\N.");
	check_escape("ünï €", strlen("ünï €"), TUPLE_VALUE_TEXT, "ünï €");
}
END_TEST

/*
 * A large value is escaped in slices (the writer streams it to the target
 * piece by piece): slices cut anywhere, even between the bytes of a UTF-8
 * character, give the same text as the whole value.
 */
START_TEST(copy_text_escaped_in_slices_equals_whole)
{
	static const char in[] = "x\\y\tz\n\r\\\\ünï €\t\\end";
	size_t		len = sizeof(in) - 1;

	for (size_t cut = 1; cut <= len; cut++)
	{
		StrBuf		whole = {0},
					sliced = {0};

		sql_copy_escape_bytes(&whole, (const uint8_t *) in, len);
		for (size_t off = 0; off < len; off += cut)
			sql_copy_escape_bytes(&sliced, (const uint8_t *) in + off,
								  len - off < cut ? len - off : cut);
		ck_assert_str_eq(sliced.p, whole.p);
		free(whole.p);
		free(sliced.p);
	}
}
END_TEST

/* values longer than the escape buffer, with escapes at every boundary */
START_TEST(copy_text_of_a_long_value_is_whole)
{
	size_t		n = 5000;
	char	   *in = malloc(n);
	char	   *expected = malloc(2 * n + 1);
	size_t		e = 0;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(expected);
	for (size_t i = 0; i < n; i++)
	{
		in[i] = i % 7 == 0 ? '\\' : (char) ('a' + i % 26);
		if (in[i] == '\\')
			expected[e++] = '\\';
		expected[e++] = in[i];
	}
	expected[e] = '\0';
	check_escape(in, n, TUPLE_VALUE_TEXT, expected);
	free(in);
	free(expected);
}
END_TEST

Suite *
writer_sql_suite(void)
{
	Suite	   *s = suite_create("writer_sql");
	TCase	   *tc = tcase_create("quoting");

	tcase_add_test(tc, identifiers_are_always_quoted);
	suite_add_tcase(s, tc);

	tc = tcase_create("insert");
	tcase_add_test(tc, insert_names_each_written_column_once);
	tcase_add_test(tc, insert_skips_masked_columns_and_numbers_parameters_densely);
	tcase_add_test(tc, insert_with_no_column_uses_default_values);
	tcase_add_test(tc, copy_names_the_table_and_columns);
	suite_add_tcase(s, tc);

	tc = tcase_create("update");
	tcase_add_test(tc, update_by_key_touches_only_the_named_table);
	tcase_add_test(tc, update_of_a_partitioned_table_routes_to_its_partitions);
	tcase_add_test(tc, update_with_a_composite_key_ands_every_key_column);
	tcase_add_test(tc, update_with_full_identity_picks_one_row_of_the_same_table);
	tcase_add_test(tc, update_with_full_identity_of_a_partitioned_table_searches_its_partitions);
	tcase_add_test(tc, full_identity_compares_types_without_equality_as_text);
	tcase_add_test(tc, full_identity_names_the_operator_and_the_type_when_needed);
	tcase_add_test(tc, full_identity_update_numbers_match_parameters_after_the_set);
	tcase_add_test(tc, keys_of_extension_and_composite_types_name_operator_and_type);
	tcase_add_test(tc, full_identity_without_columns_picks_any_one_row);
	tcase_add_test(tc, update_with_nothing_to_set_still_checks_the_one_row);
	suite_add_tcase(s, tc);

	tc = tcase_create("delete");
	tcase_add_test(tc, delete_by_key_touches_only_the_named_table);
	tcase_add_test(tc, delete_from_a_partitioned_table_routes_to_its_partitions);
	suite_add_tcase(s, tc);

	tc = tcase_create("truncate");
	tcase_add_test(tc, truncate_lists_exactly_the_named_tables);
	tcase_add_test(tc, truncate_of_a_partitioned_table_empties_its_partitions);
	tcase_add_loop_test(tc, truncate_honours_restart_identity_and_never_cascades, 0, 4);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys_and_copy");
	tcase_add_test(tc, statement_keys_tell_every_shape_apart);
	tcase_add_test(tc, copy_text_escapes_what_copy_would_read_differently);
	tcase_add_test(tc, copy_text_escaped_in_slices_equals_whole);
	tcase_add_test(tc, copy_text_of_a_long_value_is_whole);
	suite_add_tcase(s, tc);
	return s;
}
