/*
 * tests/unit/test_engine.c -- pure pieces of engine/ and apply/: the JSON
 * writer, progress formatting, copy splitting, the START_REPLICATION command
 * and its version gates, the remote relation cache, phase names and finding
 * bookkeeping.  No server involved.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "apply/relmap.h"
#include "engine/assess/assess.h"
#include "engine/fullload.h"
#include "engine/json.h"
#include "engine/progress.h"
#include "apply/replclient.h"
#include "engine/snapshot.h"
#include "engine/state.h"
#include "protocol/checksum.h"
#include "tests/unit/suites.h"

START_TEST(json_escapes_and_separates_values)
{
	JsonWriter	w;

	json_init(&w);
	json_begin_object(&w);
	json_key(&w, "s");
	json_string(&w, "a\"b\\c\nd\te\x01");
	json_key(&w, "n");
	json_int(&w, -42);
	json_key(&w, "a");
	json_begin_array(&w);
	json_bool(&w, true);
	json_null(&w);
	json_uint(&w, UINT64_MAX);
	json_end_array(&w);
	json_key(&w, "h");
	json_hex(&w, (const uint8_t *) "\x00\xff", 2);
	json_key(&w, "d");
	json_double(&w, 1.0 / 0.0);
	json_end_object(&w);
	ck_assert(!w.oom);
	ck_assert_str_eq(w.data, "{\"s\":\"a\\\"b\\\\c\\nd\\te\\u0001\",\"n\":-42,"
					 "\"a\":[true,null,18446744073709551615],\"h\":\"00ff\",\"d\":null}");
	json_reset(&w);
	json_begin_array(&w);
	json_end_array(&w);
	ck_assert_str_eq(w.data, "[]");
	json_term(&w);
}
END_TEST

/* The shortest text that reads back the same double; callers round noise away. */
START_TEST(json_doubles_print_the_shortest_exact_form)
{
	static const struct
	{
		double		v;
		const char *text;
	}			cases[] = {
		{1.374, "1.374"},
		{4281.8, "4281.8"},
		{0.1, "0.1"},
		{0.0, "0"},
		{-2.5, "-2.5"},
		{1e21, "1e+21"},
		{0.30000000000000004, "0.30000000000000004"},	/* needs all 17 */
		{1.0 / 3.0, "0.3333333333333333"},	/* needs 16 */
	};
	JsonWriter	w;

	json_init(&w);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		json_reset(&w);
		json_double(&w, cases[i].v);
		ck_assert_str_eq(w.data, cases[i].text);
		ck_assert(strtod(w.data, NULL) == cases[i].v);
	}
	json_term(&w);
	/* seconds to the millisecond, rates to whole changes per second */
	ck_assert(json_round(1.3740000000000001, 3) == 1.374);
	ck_assert(json_round(1.37449, 3) == 1.374);
	ck_assert(json_round(1.3746, 3) == 1.375);
	ck_assert(json_round(4281.8000000000002, 0) == 4282.0);
	ck_assert(json_round(-0.0004, 3) == 0.0);
	json_init(&w);
	json_double(&w, json_round(0.1 + 0.2, 3));
	ck_assert_str_eq(w.data, "0.3");
	json_term(&w);
}
END_TEST

START_TEST(json_utf8_validation_rejects_malformed_sequences)
{
	ck_assert(json_utf8_valid((const uint8_t *) "plain", 5));
	ck_assert(json_utf8_valid((const uint8_t *) "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
	ck_assert(!json_utf8_valid((const uint8_t *) "\xc3", 1));	/* truncated */
	ck_assert(!json_utf8_valid((const uint8_t *) "\xc0\xaf", 2));	/* overlong */
	ck_assert(!json_utf8_valid((const uint8_t *) "\xed\xa0\x80", 3));	/* surrogate */
	ck_assert(!json_utf8_valid((const uint8_t *) "\xf4\x90\x80\x80", 4));	/* > U+10FFFF */
	ck_assert(!json_utf8_valid((const uint8_t *) "\xff", 1));
}
END_TEST

START_TEST(progress_formats_bytes_and_durations)
{
	char		buf[32];

	ck_assert_str_eq(progress_format_bytes(0, buf, sizeof(buf)), "0 B");
	ck_assert_str_eq(progress_format_bytes(1536, buf, sizeof(buf)), "1.5 kB");
	ck_assert_str_eq(progress_format_bytes(INT64_C(3) << 30, buf, sizeof(buf)), "3.0 GB");
	ck_assert_str_eq(progress_format_duration(-1, buf, sizeof(buf)), "?");
	ck_assert_str_eq(progress_format_duration(42, buf, sizeof(buf)), "42s");
	ck_assert_str_eq(progress_format_duration(185, buf, sizeof(buf)), "3m05s");
	ck_assert_str_eq(progress_format_duration(3720, buf, sizeof(buf)), "1h02m");
}
END_TEST

START_TEST(copy_split_follows_size_and_bounds)
{
	int64_t		mb = 1024 * 1024;

	ck_assert_int_eq(fullload_part_count(10 * mb, 1280, 64 * mb), 1);	/* small */
	ck_assert_int_eq(fullload_part_count(64 * mb, 8192, 64 * mb), 1);	/* at threshold */
	ck_assert_int_eq(fullload_part_count(65 * mb, 8320, 64 * mb), 2);
	ck_assert_int_eq(fullload_part_count(256 * mb, 32768, 64 * mb), 4);
	ck_assert_int_eq(fullload_part_count(256 * mb, 3, 1 * mb), 3);	/* never more parts than pages */
	ck_assert_int_eq(fullload_part_count(256 * mb, 1, 1 * mb), 1);
	ck_assert_int_eq(fullload_part_count(INT64_C(1) << 50, INT64_C(1) << 40, mb), 1024);	/* capped */
	ck_assert_int_eq(fullload_part_count(100 * mb, 100, 0), 1);	/* splitting off */
}
END_TEST

static ReplClient
client_of_version(int version)
{
	ReplClient	rc;

	memset(&rc, 0, sizeof(rc));
	rc.server_version = version;
	return rc;
}

START_TEST(slot_creation_syntax_is_gated_on_version)
{
	static const struct
	{
		int			version;
		const char *want;
	}			cases[] = {
		{110022, "CREATE_REPLICATION_SLOT s LOGICAL pgoutput EXPORT_SNAPSHOT"},
		{130023, "CREATE_REPLICATION_SLOT s LOGICAL pgoutput EXPORT_SNAPSHOT"},
		{140023, "CREATE_REPLICATION_SLOT s LOGICAL pgoutput EXPORT_SNAPSHOT"},
		{150000, "CREATE_REPLICATION_SLOT s LOGICAL pgoutput (SNAPSHOT 'export')"},
		{170010, "CREATE_REPLICATION_SLOT s LOGICAL pgoutput (SNAPSHOT 'export')"},
	};
	char		buf[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		snapshot_slot_command(cases[i].version, "s", buf, sizeof(buf));
		ck_assert_str_eq(buf, cases[i].want);
	}
}
END_TEST

/* Every source major 11-17: protocol, messages and streaming of large
 * transactions (14+), as sent in START_REPLICATION. */
START_TEST(start_replication_for_every_supported_major)
{
	static const struct
	{
		int			version;
		const char *want;
	}			cases[] = {
		{110022, "(proto_version '1', publication_names '\"p\"')"},
		{120022, "(proto_version '1', publication_names '\"p\"')"},
		{130023, "(proto_version '1', publication_names '\"p\"')"},
		{140023, "(proto_version '2', publication_names '\"p\"', messages 'true', streaming 'on')"},
		{150018, "(proto_version '3', publication_names '\"p\"', messages 'true', streaming 'on')"},
		{160014, "(proto_version '4', publication_names '\"p\"', messages 'true', streaming 'on')"},
		{170010, "(proto_version '4', publication_names '\"p\"', messages 'true', streaming 'on')"},
	};
	char		buf[512];
	SyncError	err;
	ReplStartOptions o = {"s", "p", 0, true, true, NULL};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		ReplClient	rc = client_of_version(cases[i].version);
		const char *opts;

		ck_assert(replclient_build_start(&rc, &o, buf, sizeof(buf), &err));
		opts = strchr(buf, '(');
		ck_assert_ptr_nonnull(opts);
		ck_assert_str_eq(opts, cases[i].want);
	}
}
END_TEST

START_TEST(start_replication_options_are_gated_on_version)
{
	char		buf[512];
	SyncError	err;
	ReplStartOptions o = {"pgstream", "pub", UINT64_C(0x16B374D848), true, true, NULL};
	ReplClient	rc = client_of_version(150004);

	ck_assert(replclient_build_start(&rc, &o, buf, sizeof(buf), &err));
	ck_assert_str_eq(buf, "START_REPLICATION SLOT pgstream LOGICAL 16/B374D848 (proto_version '3', "
					 "publication_names '\"pub\"', messages 'true', streaming 'on')");
	rc = client_of_version(130010);
	ck_assert(replclient_build_start(&rc, &o, buf, sizeof(buf), &err));
	ck_assert_str_eq(buf, "START_REPLICATION SLOT pgstream LOGICAL 16/B374D848 (proto_version '1', "
					 "publication_names '\"pub\"')");
	ck_assert_int_eq(replclient_max_proto(90600), 0);
	ck_assert_int_eq(replclient_max_proto(100000), 1);
	ck_assert_int_eq(replclient_max_proto(140000), 2);
	ck_assert_int_eq(replclient_max_proto(160002), 4);
	ck_assert_int_eq(replclient_max_proto(180000), 4);
}
END_TEST

START_TEST(start_replication_quotes_publication_and_checks_slot)
{
	char		buf[512];
	SyncError	err;
	ReplStartOptions o = {"s", "My \"pub\" it's", 0, false, false, "p2"};
	ReplClient	rc = client_of_version(160000);

	ck_assert(replclient_build_start(&rc, &o, buf, sizeof(buf), &err));
	ck_assert_str_eq(buf, "START_REPLICATION SLOT s LOGICAL 0/0 (proto_version '4', "
					 "publication_names '\"My \"\"pub\"\" it''s\",\"p2\"')");
	o.slot = "Bad-Slot";
	ck_assert(!replclient_build_start(&rc, &o, buf, sizeof(buf), &err));
	ck_assert_int_eq(err.code, SYNC_ERR_USAGE);
	ck_assert_ptr_nonnull(strstr(err.message, "Bad-Slot"));
	o.slot = "";
	ck_assert(!replclient_build_start(&rc, &o, buf, sizeof(buf), &err));
}
END_TEST

static PgoutputRelation
make_relation(Oid relid, const char *nsp, const char *rel, RelationColumn *cols, int n)
{
	PgoutputRelation r;

	memset(&r, 0, sizeof(r));
	r.relid = relid;
	r.nspname = (ByteView) {(const uint8_t *) nsp, strlen(nsp)};
	r.relname = (ByteView) {(const uint8_t *) rel, strlen(rel)};
	r.replident = REPLICA_IDENTITY_DEFAULT;
	r.natts = (uint16_t) n;
	r.columns = cols;
	return r;
}

START_TEST(relmap_replaces_entries_and_copies_names)
{
	RelMap		map;
	SyncError	err;
	char		name[8] = "id";
	RelationColumn cols[2] = {
		{PGOUTPUT_COLUMN_FLAG_KEY, {(const uint8_t *) name, 2}, 23, -1},
		{0, {(const uint8_t *) "v", 1}, 25, -1},
	};
	PgoutputRelation r = make_relation(16384, "", "t", cols, 2);
	const RemoteRelation *e;
	uint64_t	v1;

	relmap_init(&map);
	ck_assert_ptr_null(relmap_get(&map, 16384));
	e = relmap_update(&map, &r, &err);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->display_name, "pg_catalog.t");	/* "" means pg_catalog */
	ck_assert(e->columns[0].is_key && !e->columns[1].is_key);
	v1 = e->version;
	memcpy(name, "xx", 2);		/* the cache owns its copy */
	ck_assert_str_eq(relmap_get(&map, 16384)->columns[0].name, "id");
	r = make_relation(16384, "s", "t2", cols, 1);
	e = relmap_update(&map, &r, &err);
	ck_assert_str_eq(e->display_name, "s.t2");
	ck_assert_int_eq(e->natts, 1);
	ck_assert(e->version > v1);
	for (Oid i = 1; i <= 500; i++)	/* growth keeps every entry */
	{
		r = make_relation(i, "s", "t", cols, 2);
		ck_assert_ptr_nonnull(relmap_update(&map, &r, &err));
	}
	for (Oid i = 1; i <= 500; i++)
		ck_assert_uint_eq(relmap_get(&map, i)->relid, i);
	ck_assert_uint_eq(map.count, 501);
	relmap_term(&map);
}
END_TEST

START_TEST(phase_names_round_trip)
{
	for (int p = PHASE_NONE; p <= PHASE_FAILED; p++)
		ck_assert_int_eq(phase_from_name(phase_name((MigrationPhase) p)), p);
	ck_assert_str_eq(phase_name((MigrationPhase) 99), "unknown");
	ck_assert_int_eq(phase_from_name("nonsense"), PHASE_FAILED);
}
END_TEST

START_TEST(findings_count_by_severity)
{
	Findings	f;

	findings_init(&f);
	for (int i = 0; i < 40; i++)
		findings_add(&f, i % 3 == 0 ? FINDING_BLOCKING : FINDING_INFO, "check", "obj",
					 "fix", "message %d", i);
	ck_assert_int_eq(f.count, 40);
	ck_assert_int_eq(findings_count(&f, FINDING_BLOCKING), 14);
	ck_assert_int_eq(findings_count(&f, FINDING_WARNING), 0);
	ck_assert_str_eq(f.items[39].message, "message 39");
	ck_assert_str_eq(finding_severity_name(FINDING_WARNING), "warning");
	findings_term(&f);
}
END_TEST

START_TEST(xxh32_matches_reference_vectors)
{
	static const uint8_t text[] = "Nobody inspects the spammish repetition";

	ck_assert_uint_eq(checksum_xxh32((const uint8_t *) "", 0, 0), 0x02CC5D05u);
	ck_assert_uint_eq(checksum_xxh32((const uint8_t *) "a", 1, 0), 0x550D7456u);
	ck_assert_uint_eq(checksum_xxh32((const uint8_t *) "abc", 3, 0), 0x32D153FFu);
	ck_assert_uint_eq(checksum_xxh32(text, sizeof(text) - 1, 0), 0xE2293B2Fu);
}
END_TEST

Suite *
engine_suite(void)
{
	Suite	   *s = suite_create("engine");
	TCase	   *tc = tcase_create("pure");

	tcase_add_test(tc, json_escapes_and_separates_values);
	tcase_add_test(tc, json_doubles_print_the_shortest_exact_form);
	tcase_add_test(tc, json_utf8_validation_rejects_malformed_sequences);
	tcase_add_test(tc, progress_formats_bytes_and_durations);
	tcase_add_test(tc, copy_split_follows_size_and_bounds);
	tcase_add_test(tc, start_replication_options_are_gated_on_version);
	tcase_add_test(tc, start_replication_for_every_supported_major);
	tcase_add_test(tc, slot_creation_syntax_is_gated_on_version);
	tcase_add_test(tc, start_replication_quotes_publication_and_checks_slot);
	tcase_add_test(tc, relmap_replaces_entries_and_copies_names);
	tcase_add_test(tc, phase_names_round_trip);
	tcase_add_test(tc, findings_count_by_severity);
	tcase_add_test(tc, xxh32_matches_reference_vectors);
	suite_add_tcase(s, tc);
	return s;
}
