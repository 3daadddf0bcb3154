/*
 * tests/unit/test_schema_split.c -- splitting pg_restore output into schema
 * steps (engine/schema/schema.c), on text captured from pg_restore 15.
 *
 * FX_SCRIPT is `pg_restore -f - -L list --no-owner --no-privileges` of a
 * schema-only dump, and FX_LIST that list (`pg_restore -l`), for a database
 * with names holding semicolons, quotes, a newline (which pg_dump turns into
 * a space in comments), non-ASCII letters and "; Type: " itself, plus
 * objects in a tablespace (the "; Tablespace:" header suffix and the
 * default_tablespace SETs pg_restore prints only when the value changes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/schema/schema.h"
#include "engine/subproc.h"
#include "tests/unit/suites.h"

/* Also declared in tests/unit/suites.h once the suite is registered. */
Suite *schema_split_suite(void);

static const char FX_LIST[] =
    ";\n"
    "; Archive created at 2026-11-25 13:50:17 UTC\n"
    ";     dbname: fx\n"
    ";\n"
    "; Selected TOC Entries:\n"
    ";\n"
    "6; 2615 17834 SCHEMA - Sch; é postgres\n"
    "219; 1255 17855 FUNCTION public f() postgres\n"
    "216; 1259 17836 TABLE Sch; é T;\"q\" é postgres\n"
    "215; 1259 17835 SEQUENCE Sch; é T;\"q\" é_id_seq postgres\n"
    "218; 1259 17848 TABLE public tst postgres\n"
    "217; 1259 17844 TABLE public we ird postgres\n"
    "3208; 2606 17842 CONSTRAINT Sch; é T;\"q\" é T;\"q\" é_pkey postgres\n"
    "3214; 2606 17852 CONSTRAINT public tst tst_pkey postgres\n"
    "3209; 1259 17843 INDEX Sch; é x; Type: TABLE; Schema: y postgres\n"
    "3211; 1259 17854 INDEX public tst_ab postgres\n"
    "3363; 0 0 COMMENT public INDEX tst_ab postgres\n"
    "3212; 1259 17853 INDEX public tst_b postgres\n"
    "3210; 1259 17847 INDEX public we ird_a postgres\n";

static const char FX_SCRIPT[] =
    "--\n"
    "-- PostgreSQL database dump\n"
    "--\n"
    "\n"
    "\\restrict "
    "Rs7TM7vUaUM7Vw8BuFBcfWBbpBvcVrrNzvxoJVCLFJrYcAbiob4v7s0I4ovNKQT\n"
    "\n"
    "-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)\n"
    "-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)\n"
    "\n"
    "SET statement_timeout = 0;\n"
    "SET lock_timeout = 0;\n"
    "SET idle_in_transaction_session_timeout = 0;\n"
    "SET client_encoding = 'UTF8';\n"
    "SET standard_conforming_strings = on;\n"
    "SELECT pg_catalog.set_config('search_path', '', false);\n"
    "SET check_function_bodies = false;\n"
    "SET xmloption = content;\n"
    "SET client_min_messages = warning;\n"
    "SET row_security = off;\n"
    "\n"
    "--\n"
    "-- Name: Sch; é; Type: SCHEMA; Schema: -; Owner: -\n"
    "--\n"
    "\n"
    "CREATE SCHEMA \"Sch; é\";\n"
    "\n"
    "\n"
    "--\n"
    "-- Name: f(); Type: FUNCTION; Schema: public; Owner: -\n"
    "--\n"
    "\n"
    "CREATE FUNCTION public.f() RETURNS integer\n"
    "    LANGUAGE sql\n"
    "    AS $$\n"
    "SELECT 1\n"
    "$$;\n"
    "\n"
    "\n"
    "SET default_tablespace = '';\n"
    "\n"
    "SET default_table_access_method = heap;\n"
    "\n"
    "--\n"
    "-- Name: T;\"q\" é; Type: TABLE; Schema: Sch; é; Owner: -\n"
    "--\n"
    "\n"
    "CREATE TABLE \"Sch; é\".\"T;\"\"q\"\" é\" (\n"
    "    id integer NOT NULL,\n"
    "    v text\n"
    ");\n"
    "\n"
    "\n"
    "--\n"
    "-- Name: T;\"q\" é_id_seq; Type: SEQUENCE; Schema: Sch; é; Owner: -\n"
    "--\n"
    "\n"
    "ALTER TABLE \"Sch; é\".\"T;\"\"q\"\" é\" ALTER COLUMN id ADD GENERATED "
    "ALWAYS AS IDENTITY (\n"
    "    SEQUENCE NAME \"Sch; é\".\"T;\"\"q\"\" é_id_seq\"\n"
    "    START WITH 1\n"
    "    INCREMENT BY 1\n"
    "    NO MINVALUE\n"
    "    NO MAXVALUE\n"
    "    CACHE 1\n"
    ");\n"
    "\n"
    "\n"
    "SET default_tablespace = ts1;\n"
    "\n"
    "--\n"
    "-- Name: tst; Type: TABLE; Schema: public; Owner: -; Tablespace: ts1\n"
    "--\n"
    "\n"
    "CREATE TABLE public.tst (\n"
    "    a integer NOT NULL,\n"
    "    b integer\n"
    ");\n"
    "\n"
    "\n"
    "SET default_tablespace = '';\n"
    "\n"
    "--\n"
    "-- Name: we ird; Type: TABLE; Schema: public; Owner: -\n"
    "--\n"
    "\n"
    "CREATE TABLE public.\"we\n"
    "ird\" (\n"
    "    a integer\n"
    ");\n"
    "\n"
    "\n"
    "--\n"
    "-- Name: T;\"q\" é T;\"q\" é_pkey; Type: CONSTRAINT; Schema: Sch; é; "
    "Owner: -\n"
    "--\n"
    "\n"
    "ALTER TABLE ONLY \"Sch; é\".\"T;\"\"q\"\" é\"\n"
    "    ADD CONSTRAINT \"T;\"\"q\"\" é_pkey\" PRIMARY KEY (id);\n"
    "\n"
    "\n"
    "SET default_tablespace = ts1;\n"
    "\n"
    "--\n"
    "-- Name: tst tst_pkey; Type: CONSTRAINT; Schema: public; Owner: -; "
    "Tablespace: ts1\n"
    "--\n"
    "\n"
    "ALTER TABLE ONLY public.tst\n"
    "    ADD CONSTRAINT tst_pkey PRIMARY KEY (a);\n"
    "\n"
    "\n"
    "SET default_tablespace = '';\n"
    "\n"
    "--\n"
    "-- Name: x; Type: TABLE; Schema: y; Type: INDEX; Schema: Sch; é; Owner: "
    "-\n"
    "--\n"
    "\n"
    "CREATE INDEX \"x; Type: TABLE; Schema: y\" ON \"Sch; é\".\"T;\"\"q\"\" "
    "é\" USING btree (v);\n"
    "\n"
    "\n"
    "--\n"
    "-- Name: tst_ab; Type: INDEX; Schema: public; Owner: -\n"
    "--\n"
    "\n"
    "CREATE INDEX tst_ab ON public.tst USING btree (a, b);\n"
    "\n"
    "\n"
    "--\n"
    "-- Name: INDEX tst_ab; Type: COMMENT; Schema: public; Owner: -\n"
    "--\n"
    "\n"
    "COMMENT ON INDEX public.tst_ab IS 'it''s; -- Name: not a header';\n"
    "\n"
    "\n"
    "SET default_tablespace = ts1;\n"
    "\n"
    "--\n"
    "-- Name: tst_b; Type: INDEX; Schema: public; Owner: -; Tablespace: ts1\n"
    "--\n"
    "\n"
    "CREATE INDEX tst_b ON public.tst USING btree (b);\n"
    "\n"
    "\n"
    "SET default_tablespace = '';\n"
    "\n"
    "--\n"
    "-- Name: we ird_a; Type: INDEX; Schema: public; Owner: -\n"
    "--\n"
    "\n"
    "CREATE INDEX \"we\n"
    "ird_a\" ON public.\"we\n"
    "ird\" USING btree (a);\n"
    "\n"
    "\n"
    "--\n"
    "-- PostgreSQL database dump complete\n"
    "--\n"
    "\n"
    "\\unrestrict "
    "Rs7TM7vUaUM7Vw8BuFBcfWBbpBvcVrrNzvxoJVCLFJrYcAbiob4v7s0I4ovNKQT\n"
    "\n";

#define FX_ENTRIES 13

/* A minimal script around the given entries' text. */
#define PREAMBLE_TEXT                                                          \
	"--\n-- PostgreSQL database dump\n--\n\n"                                  \
	"\\restrict abc\n\n"                                                       \
	"SET statement_timeout = 0;\n"                                             \
	"SELECT pg_catalog.set_config('search_path', '', false);\n\n"
#define TRAILER_TEXT                                                           \
	"--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n"

static SchemaToc toc;

static void
toc_setup(void)
{
	SyncError err;

	ck_assert_msg(schema_toc_parse(FX_LIST, &toc, &err), "%s", err.message);
}

static void
toc_teardown(void)
{
	schema_toc_term(&toc);
}

/* Parse a one-off list; asserts success. */
static void
parse_list(const char *text, SchemaToc *out)
{
	SyncError err;

	ck_assert_msg(schema_toc_parse(text, out, &err), "%s", err.message);
}

START_TEST(toc_lines_are_parsed_and_comments_skipped)
{
	ck_assert_uint_eq(toc.count, FX_ENTRIES);
	ck_assert_int_eq(toc.entries[0].dump_id, 6);
	ck_assert_uint_eq(toc.entries[0].catalog_oid, 2615);
	ck_assert_uint_eq(toc.entries[0].oid, 17834);
	ck_assert_str_eq(toc.entries[0].rest, "SCHEMA - Sch; é postgres");
	ck_assert_int_eq(toc.entries[10].dump_id, 3363);
	ck_assert_uint_eq(toc.entries[10].catalog_oid, 0);
	ck_assert_str_eq(toc.entries[10].rest,
	                 "COMMENT public INDEX tst_ab postgres");
}
END_TEST

START_TEST(toc_rest_keeps_trailing_space_of_an_empty_owner)
{
	SchemaToc t;

	parse_list("2; 3079 16385 EXTENSION - citext \n", &t);
	ck_assert_uint_eq(t.count, 1);
	ck_assert_str_eq(t.entries[0].rest, "EXTENSION - citext ");
	schema_toc_term(&t);
}
END_TEST

START_TEST(toc_garbage_is_rejected)
{
	static const char *const bad[] = {
	    "x; 1 2 TABLE public t o\n",  "12 1 2 TABLE public t o\n",
	    "12; 1 TABLE public t o\n",   "12;1 2 TABLE public t o\n",
	    "-3; 1 2 TABLE public t o\n", "99999999999; 1 2 TABLE public t o\n",
	};
	SchemaToc t;
	SyncError err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		ck_assert_msg(!schema_toc_parse(bad[i], &t, &err), "accepted %s",
		              bad[i]);
		ck_assert_int_eq(err.code, SYNC_ERR_INVALID);
		ck_assert_uint_eq(t.count, 0);
		ck_assert_ptr_null(t.entries);
	}
}
END_TEST

START_TEST(event_triggers_and_their_comments_are_skipped)
{
	SchemaTocEntry e = {0};

	e.rest = (char *) "EVENT TRIGGER - et postgres";
	ck_assert(schema_toc_entry_is_skipped(&e));
	e.rest = (char *) "COMMENT - EVENT TRIGGER et postgres";
	ck_assert(schema_toc_entry_is_skipped(&e));
	e.rest = (char *) "TRIGGER public parent parent_upper postgres";
	ck_assert(!schema_toc_entry_is_skipped(&e));
	e.rest = (char *) "COMMENT public TRIGGER t ON x postgres";
	ck_assert(!schema_toc_entry_is_skipped(&e));
}
END_TEST

START_TEST(post_data_types_map_to_phases)
{
	ck_assert_int_eq(schema_post_data_phase("INDEX"), SCHEMA_PHASE_INDEX);
	ck_assert_int_eq(schema_post_data_phase("CONSTRAINT"), SCHEMA_PHASE_INDEX);
	ck_assert_int_eq(schema_post_data_phase("INDEX ATTACH"),
	                 SCHEMA_PHASE_INDEX);
	ck_assert_int_eq(schema_post_data_phase("FK CONSTRAINT"),
	                 SCHEMA_PHASE_FINAL);
	ck_assert_int_eq(schema_post_data_phase("CHECK CONSTRAINT"),
	                 SCHEMA_PHASE_FINAL);
	ck_assert_int_eq(schema_post_data_phase("TRIGGER"), SCHEMA_PHASE_FINAL);
	ck_assert_int_eq(schema_post_data_phase("RULE"), SCHEMA_PHASE_FINAL);
	ck_assert_int_eq(schema_post_data_phase("POLICY"), SCHEMA_PHASE_FINAL);
	ck_assert_int_eq(schema_post_data_phase("ROW SECURITY"),
	                 SCHEMA_PHASE_FINAL);
	ck_assert_int_eq(schema_post_data_phase("COMMENT"), SCHEMA_PHASE_FINAL);
	ck_assert_str_eq(schema_phase_name(SCHEMA_PHASE_PRE), "pre-data");
	ck_assert_str_eq(schema_phase_name(42), "unknown");
}
END_TEST

/* Split FX_SCRIPT against the fixture list; asserts success. */
static void
split_fixture(SchemaScript *s)
{
	SyncError err;

	ck_assert_msg(
	    schema_script_split(FX_SCRIPT, toc.entries, toc.count, s, &err), "%s",
	    err.message);
	ck_assert_uint_eq(s->count, FX_ENTRIES);
}

START_TEST(every_header_matches_its_entry)
{
	static const char *const descs[FX_ENTRIES] = {
	    "SCHEMA",  "FUNCTION",   "TABLE",      "SEQUENCE", "TABLE",
	    "TABLE",   "CONSTRAINT", "CONSTRAINT", "INDEX",    "INDEX",
	    "COMMENT", "INDEX",      "INDEX"};
	SchemaScript s;

	split_fixture(&s);
	for (size_t i = 0; i < FX_ENTRIES; i++)
		ck_assert_str_eq(s.chunks[i].desc, descs[i]);
	ck_assert_str_eq(s.chunks[0].schema, "-");
	ck_assert_str_eq(s.chunks[0].tag, "Sch; é");
	ck_assert_str_eq(s.chunks[2].schema, "Sch; é");
	ck_assert_str_eq(s.chunks[2].tag, "T;\"q\" é");
	ck_assert_str_eq(s.chunks[6].tag, "T;\"q\" é T;\"q\" é_pkey");
	schema_script_term(&s);
}
END_TEST

START_TEST(a_name_containing_type_is_read_the_way_the_list_says)
{
	SchemaScript s;

	split_fixture(&s);
	/* "-- Name: x; Type: TABLE; Schema: y; Type: INDEX; Schema: Sch; é; ..." */
	ck_assert_str_eq(s.chunks[8].desc, "INDEX");
	ck_assert_str_eq(s.chunks[8].schema, "Sch; é");
	ck_assert_str_eq(s.chunks[8].tag, "x; Type: TABLE; Schema: y");
	ck_assert_str_eq(s.chunks[8].sql,
	                 "SET LOCAL default_tablespace = '';\n"
	                 "SET LOCAL default_table_access_method = heap;\n"
	                 "CREATE INDEX \"x; Type: TABLE; Schema: y\" ON "
	                 "\"Sch; é\".\"T;\"\"q\"\" é\" USING btree (v);\n");
	schema_script_term(&s);
}
END_TEST

START_TEST(sanitized_newline_names_match_and_sql_keeps_the_newline)
{
	SchemaScript s;

	split_fixture(&s);
	ck_assert_str_eq(s.chunks[5].tag, "we ird");
	ck_assert_ptr_nonnull(
	    strstr(s.chunks[5].sql, "CREATE TABLE public.\"we\nird\" (\n"));
	ck_assert_str_eq(s.chunks[12].tag, "we ird_a");
	ck_assert_str_eq(
	    s.chunks[12].sql,
	    "SET LOCAL default_tablespace = '';\n"
	    "SET LOCAL default_table_access_method = heap;\n"
	    "CREATE INDEX \"we\nird_a\" ON public.\"we\nird\" USING btree (a);\n");
	schema_script_term(&s);
}
END_TEST

START_TEST(preamble_is_localized_without_meta_commands)
{
	SchemaScript s;

	split_fixture(&s);
	ck_assert_str_eq(s.preamble,
	                 "SET LOCAL statement_timeout = 0;\n"
	                 "SET LOCAL lock_timeout = 0;\n"
	                 "SET LOCAL idle_in_transaction_session_timeout = 0;\n"
	                 "SET LOCAL client_encoding = 'UTF8';\n"
	                 "SET LOCAL standard_conforming_strings = on;\n"
	                 "SELECT pg_catalog.set_config('search_path', '', true);\n"
	                 "SET LOCAL check_function_bodies = false;\n"
	                 "SET LOCAL xmloption = content;\n"
	                 "SET LOCAL client_min_messages = warning;\n"
	                 "SET LOCAL row_security = off;\n");
	for (size_t i = 0; i < s.count; i++)
		ck_assert_ptr_null(strstr(s.chunks[i].sql, "\\restrict"));
	ck_assert_ptr_null(strstr(s.chunks[FX_ENTRIES - 1].sql, "dump complete"));
	schema_script_term(&s);
}
END_TEST

START_TEST(first_chunks_have_no_state_and_sql_is_trimmed)
{
	SchemaScript s;

	split_fixture(&s);
	ck_assert_str_eq(s.chunks[0].sql, "CREATE SCHEMA \"Sch; é\";\n");
	/* a blank-line-free function body, kept verbatim */
	ck_assert_str_eq(s.chunks[1].sql,
	                 "CREATE FUNCTION public.f() RETURNS integer\n"
	                 "    LANGUAGE sql\n"
	                 "    AS $$\n"
	                 "SELECT 1\n"
	                 "$$;\n");
	schema_script_term(&s);
}
END_TEST

START_TEST(tablespace_sets_follow_each_change)
{
	SchemaScript s;

	split_fixture(&s);
	/* TABLE tst: "; Tablespace: ts1" header, after SET default_tablespace = ts1
	 */
	ck_assert_str_eq(s.chunks[4].tag, "tst");
	ck_assert_str_eq(s.chunks[4].sql,
	                 "SET LOCAL default_tablespace = ts1;\n"
	                 "SET LOCAL default_table_access_method = heap;\n"
	                 "CREATE TABLE public.tst (\n"
	                 "    a integer NOT NULL,\n"
	                 "    b integer\n"
	                 ");\n");
	/* the SET that follows belongs to the next entry, not to this one */
	ck_assert_ptr_null(strstr(s.chunks[4].sql, "= '';"));
	ck_assert_ptr_nonnull(
	    strstr(s.chunks[5].sql, "SET LOCAL default_tablespace = '';\n"));
	ck_assert_ptr_nonnull(
	    strstr(s.chunks[7].sql, "SET LOCAL default_tablespace = ts1;\n"));
	ck_assert_ptr_nonnull(
	    strstr(s.chunks[11].sql, "SET LOCAL default_tablespace = ts1;\n"));
	/* the comment was not changed by pg_restore: state carries over */
	ck_assert_str_eq(
	    s.chunks[10].sql,
	    "SET LOCAL default_tablespace = '';\n"
	    "SET LOCAL default_table_access_method = heap;\n"
	    "COMMENT ON INDEX public.tst_ab IS 'it''s; -- Name: not a header';\n");
	schema_script_term(&s);
}
END_TEST

START_TEST(a_subset_of_entries_splits_the_same_way)
{
	SchemaScript s;
	SchemaToc t;
	SyncError err;
	static const char script[] = PREAMBLE_TEXT
	    "SET default_tablespace = '';\n\n"
	    "--\n-- Name: tst_ab; Type: INDEX; Schema: public; Owner: -\n--\n\n"
	    "CREATE INDEX tst_ab ON public.tst USING btree (a, "
	    "b);\n\n\n" TRAILER_TEXT;

	parse_list("3211; 1259 17854 INDEX public tst_ab postgres\n", &t);
	ck_assert_msg(schema_script_split(script, t.entries, t.count, &s, &err),
	              "%s", err.message);
	ck_assert_str_eq(
	    s.preamble, "SET LOCAL statement_timeout = 0;\n"
	                "SELECT pg_catalog.set_config('search_path', '', true);\n");
	ck_assert_str_eq(s.chunks[0].sql,
	                 "SET LOCAL default_tablespace = '';\n"
	                 "CREATE INDEX tst_ab ON public.tst USING btree (a, b);\n");
	schema_script_term(&s);
	schema_toc_term(&t);
}
END_TEST

START_TEST(an_entry_without_sql_gives_an_empty_chunk)
{
	SchemaScript s;
	SchemaToc t;
	SyncError err;
	static const char script[] = PREAMBLE_TEXT
	    "--\n-- Name: a; Type: TABLE; Schema: public; Owner: -\n--\n\n"
	    "SET default_table_access_method = heap;\n\n"
	    "--\n-- Name: b; Type: TABLE; Schema: public; Owner: -\n--\n\n"
	    "CREATE TABLE public.b ();\n\n\n" TRAILER_TEXT;

	parse_list("1; 1259 1 TABLE public a o\n2; 1259 2 TABLE public b o\n", &t);
	ck_assert_msg(schema_script_split(script, t.entries, t.count, &s, &err),
	              "%s", err.message);
	ck_assert_str_eq(s.chunks[0].sql, "");
	ck_assert_str_eq(s.chunks[1].sql,
	                 "SET LOCAL default_table_access_method = heap;\n"
	                 "CREATE TABLE public.b ();\n");
	schema_script_term(&s);
	schema_toc_term(&t);
}
END_TEST

START_TEST(no_entries_gives_just_the_preamble)
{
	SchemaScript s;
	SyncError err;

	ck_assert(
	    schema_script_split(PREAMBLE_TEXT TRAILER_TEXT, NULL, 0, &s, &err));
	ck_assert_uint_eq(s.count, 0);
	ck_assert_str_eq(
	    s.preamble, "SET LOCAL statement_timeout = 0;\n"
	                "SELECT pg_catalog.set_config('search_path', '', true);\n");
	schema_script_term(&s);
}
END_TEST

/* Split expecting failure; returns the message (static). */
static const char *
split_fails(const char *script, const SchemaTocEntry *entries, size_t n)
{
	static SyncError err;
	SchemaScript s;

	ck_assert(!schema_script_split(script, entries, n, &s, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_INVALID);
	ck_assert_uint_eq(s.count, 0);
	ck_assert_ptr_null(s.chunks);
	ck_assert_ptr_null(s.preamble);
	return err.message;
}

START_TEST(a_missing_or_extra_entry_is_an_error)
{
	const char *msg = split_fails(FX_SCRIPT, toc.entries, toc.count - 1);

	ck_assert_str_eq(msg, "pg_restore printed 13 entries, expected 12");
	msg = split_fails(FX_SCRIPT, toc.entries + 1, toc.count - 1);
	ck_assert_str_eq(msg, "pg_restore printed 13 entries, expected 12");
}
END_TEST

START_TEST(entries_out_of_order_are_an_error)
{
	SchemaTocEntry swapped[FX_ENTRIES];
	const char *msg;

	memcpy(swapped, toc.entries, sizeof(swapped));
	swapped[8] = toc.entries[9];
	swapped[9] = toc.entries[8];
	msg = split_fails(FX_SCRIPT, swapped, FX_ENTRIES);
	ck_assert_msg(
	    strstr(
	        msg,
	        "entry 9 of the pg_restore output does not match TOC entry 3211") !=
	        NULL,
	    "%s", msg);
}
END_TEST

START_TEST(a_header_of_another_type_is_an_error)
{
	SchemaToc t;
	static const char script[] = PREAMBLE_TEXT
	    "--\n-- Name: a; Type: INDEX ATTACH; Schema: public; Owner: -\n--\n\n"
	    "ALTER INDEX public.p ATTACH PARTITION public.a;\n\n\n" TRAILER_TEXT;

	/* a schema named "ATTACH" makes "INDEX ATTACH public a" ambiguous to a
	 * reader of -l alone; the header settles it, and here it disagrees */
	parse_list("1; 1259 1 INDEX ATTACH a o\n", &t);
	ck_assert_ptr_nonnull(
	    strstr(split_fails(script, t.entries, 1), "does not match"));
	schema_toc_term(&t);
	parse_list("1; 0 0 INDEX ATTACH public a o\n", &t);
	{
		SchemaScript s;
		SyncError err;

		ck_assert(schema_script_split(script, t.entries, 1, &s, &err));
		ck_assert_str_eq(s.chunks[0].desc, "INDEX ATTACH");
		schema_script_term(&s);
	}
	schema_toc_term(&t);
}
END_TEST

START_TEST(output_cut_short_is_an_error)
{
	char *cut = strdup(FX_SCRIPT);
	const char *msg;

	*strstr(cut, "-- PostgreSQL database dump complete") = '\0';
	msg = split_fails(cut, toc.entries, toc.count);
	ck_assert_ptr_nonnull(strstr(msg, "trailer"));
	free(cut);
	cut = malloc(sizeof(FX_SCRIPT) + 32);
	snprintf(cut, sizeof(FX_SCRIPT) + 32, "%sCREATE TABLE late ();\n",
	         FX_SCRIPT);
	msg = split_fails(cut, toc.entries, toc.count);
	ck_assert_ptr_nonnull(strstr(msg, "trailer"));
	free(cut);
}
END_TEST

START_TEST(an_unknown_preamble_statement_is_an_error)
{
	const char *msg = split_fails("--\n-- PostgreSQL database dump\n--\n\n"
	                              "CREATE TABLE sneaky ();\n\n" TRAILER_TEXT,
	                              NULL, 0);

	ck_assert_ptr_nonnull(strstr(msg, "unexpected statement"));
	msg =
	    split_fails(PREAMBLE_TEXT "\\connect other\n\n" TRAILER_TEXT, NULL, 0);
	ck_assert_ptr_nonnull(strstr(msg, "\\connect other"));
}
END_TEST

START_TEST(a_header_inside_a_function_body_is_never_guessed_away)
{
	SchemaToc t;
	static const char script[] = PREAMBLE_TEXT
	    "--\n-- Name: f(); Type: FUNCTION; Schema: public; Owner: -\n--\n\n"
	    "CREATE FUNCTION public.f() RETURNS void\n"
	    "    LANGUAGE sql\n"
	    "    AS $$\n"
	    "--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n"
	    "SELECT\n$$;\n\n\n" TRAILER_TEXT;

	parse_list("1; 1255 1 FUNCTION public f() o\n", &t);
	ck_assert_str_eq(split_fails(script, t.entries, 1),
	                 "pg_restore printed 2 entries, expected 1");
	schema_toc_term(&t);
}
END_TEST

START_TEST(settings_older_servers_lack_are_left_out)
{
	static const char preamble[] = "SET LOCAL statement_timeout = 0;\n"
	                               "SET LOCAL transaction_timeout = 0;\n"
	                               "SET LOCAL row_security = off;\n";
	char *p = schema_preamble_for_server(preamble, 160004);

	ck_assert_str_eq(p, "SET LOCAL statement_timeout = 0;\n"
	                    "SET LOCAL row_security = off;\n");
	free(p);
	p = schema_preamble_for_server(preamble, 170000);
	ck_assert_str_eq(p, preamble);
	free(p);
	p = schema_preamble_for_server("", 150000);
	ck_assert_str_eq(p, "");
	free(p);
}
END_TEST

START_TEST(secrets_are_scrubbed_from_messages)
{
	char buf[256];

	ck_assert_str_eq(subproc_scrub_secrets("host=h password=s3cr3t user=u", buf,
	                                       sizeof(buf)),
	                 "host=h password=***** user=u");
	ck_assert_str_eq(
	    subproc_scrub_secrets("PASSWORD='a b\\' c' x", buf, sizeof(buf)),
	    "PASSWORD=***** x");
	ck_assert_str_eq(
	    subproc_scrub_secrets("postgresql://me:pw@db:5432/x?sslmode=require",
	                          buf, sizeof(buf)),
	    "postgresql://me:*****@db:5432/x?sslmode=require");
	ck_assert_str_eq(
	    subproc_scrub_secrets("postgres://me@db/x", buf, sizeof(buf)),
	    "postgres://me@db/x");
	ck_assert_str_eq(subproc_scrub_secrets("password=abcdef", buf, 12),
	                 "password=**");
}
END_TEST

Suite *
schema_split_suite(void)
{
	Suite *s = suite_create("schema_split");
	TCase *tc = tcase_create("toc");

	tcase_add_checked_fixture(tc, toc_setup, toc_teardown);
	tcase_add_test(tc, toc_lines_are_parsed_and_comments_skipped);
	tcase_add_test(tc, toc_rest_keeps_trailing_space_of_an_empty_owner);
	tcase_add_test(tc, toc_garbage_is_rejected);
	tcase_add_test(tc, event_triggers_and_their_comments_are_skipped);
	tcase_add_test(tc, post_data_types_map_to_phases);
	suite_add_tcase(s, tc);

	tc = tcase_create("split");
	tcase_add_checked_fixture(tc, toc_setup, toc_teardown);
	tcase_add_test(tc, every_header_matches_its_entry);
	tcase_add_test(tc, a_name_containing_type_is_read_the_way_the_list_says);
	tcase_add_test(tc, sanitized_newline_names_match_and_sql_keeps_the_newline);
	tcase_add_test(tc, preamble_is_localized_without_meta_commands);
	tcase_add_test(tc, first_chunks_have_no_state_and_sql_is_trimmed);
	tcase_add_test(tc, tablespace_sets_follow_each_change);
	tcase_add_test(tc, a_subset_of_entries_splits_the_same_way);
	tcase_add_test(tc, an_entry_without_sql_gives_an_empty_chunk);
	tcase_add_test(tc, no_entries_gives_just_the_preamble);
	tcase_add_test(tc, settings_older_servers_lack_are_left_out);
	suite_add_tcase(s, tc);

	tc = tcase_create("split_errors");
	tcase_add_checked_fixture(tc, toc_setup, toc_teardown);
	tcase_add_test(tc, a_missing_or_extra_entry_is_an_error);
	tcase_add_test(tc, entries_out_of_order_are_an_error);
	tcase_add_test(tc, a_header_of_another_type_is_an_error);
	tcase_add_test(tc, output_cut_short_is_an_error);
	tcase_add_test(tc, an_unknown_preamble_statement_is_an_error);
	tcase_add_test(tc, a_header_inside_a_function_body_is_never_guessed_away);
	suite_add_tcase(s, tc);

	tc = tcase_create("scrub");
	tcase_add_test(tc, secrets_are_scrubbed_from_messages);
	suite_add_tcase(s, tc);
	return s;
}
