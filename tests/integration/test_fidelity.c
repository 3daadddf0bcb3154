/*
 * tests/integration/test_fidelity.c -- a live migration of a broad set of
 * column types and table shapes arrives exactly (issue 16: "a live suite
 * streams DML over a broad set of tables").
 *
 * One source cluster (wal_level=logical) and one target cluster whose
 * databases belong to the non-superuser "migrator", who also creates the
 * (trusted) extensions there.  The source schema (schema_sql) holds:
 * arrays (with NULLs, multi-dimensional, of numeric and jsonb), jsonb and
 * json, ranges and multiranges (built-in and a user-defined range),
 * domains (over a scalar with CHECK, over an array, over a composite, over
 * citext), composites (nested, as columns and as arrays), an enum,
 * multi-level partitions (range, then list sub-partitions) keyed and
 * REPLICA IDENTITY FULL, generated stored and identity columns, inheritance
 * children whose column order pg_dump cannot keep (so it differs on the
 * target), geometric types, scalars at their edges (bytea, numeric and
 * float NaN/Infinity/-0, timestamps +-infinity, interval, money, bit,
 * network types, text search, xml, uuid, pg_lsn, snapshots, jsonpath,
 * oid, name, "char"), reg* columns naming user objects and aclitem[], and
 * keyless REPLICA IDENTITY FULL tables with extension types (hstore,
 * citext, ltree and cube in their own schema), types without an equality
 * operator, composites, rows with NULLs, duplicate rows, and rows that are
 * equal by their types' "=" but not identical (0 and -0, 1.0 and 1.00,
 * 'abc' and 'ABC' in citext).  Large values (TOASTed) sit in keyed and
 * FULL tables and are left unchanged by updates of other columns (pgoutput
 * then sends the 'u' marker for them).
 *
 *   live_dml_over_every_type_cuts_over_exactly
 *       sync streams; the workload (INSERT, UPDATE incl. cross-partition
 *       moves, DELETE incl. one of two identical rows, TRUNCATE) runs;
 *       cutover; sync exits 0; schemas and data equal.
 *   dml_during_the_copy_cuts_over_exactly
 *       the same with the workload run while the copy is paused after its
 *       first part (failpoint fullload.after_part_commit); TRUNCATE is left
 *       out there (the copy's locks make it wait for the copy).  The
 *       source streams transactions over 64 kB while in progress
 *       (logical_decoding_work_mem), so they go through the spool.
 *   full_identity_rows_from_an_older_server_match_by_value
 *       a PostgreSQL 11 source (17-digit floats) and REPLICA IDENTITY FULL
 *       rows with floats in a point, an array, a composite and a range.
 *   full_identity_picks_the_identical_row_not_an_equal_one
 *       a DELETE and an UPDATE of the one of two rows that "=" cannot tell
 *       apart (0 / -0, 1.0 / 1.00, citext case) must change that row on
 *       the target, not its twin.
 *
 * Comparison: schemas by tests/support/compare.c's facts, except that
 * the column positions of the reordered inheritance children are not
 * compared (their columns are, by name); data table by table (FROM ONLY),
 * as row count and md5 of the rows built with columns in name order, so
 * that a reordered child compares by value.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/compare.h"
#include "tests/support/failpoint_ctl.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define TEST_TIMEOUT_S 400
#define APPLY_TIMEOUT_MS 120000
#define CMD_TIMEOUT_MS 150000
#define MAX_ARGS 32

static Cluster source;
static Cluster target;

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "fid-source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "fid-target", 0));
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
	ck_assert(cluster_psql(&target, "postgres", "CREATE ROLE migrator LOGIN"));
}

static void
clusters_teardown(void)
{
	cluster_destroy(&source);
	cluster_destroy(&target);
}

/* A failed test leaves its slot behind: drop the unused ones. */
static void
test_setup(void)
{
	ck_assert(cluster_wait_for(&source, "postgres",
	                           "SELECT count(*) = 0 FROM pg_replication_slots"
	                           " WHERE active",
	                           20000));
	ck_assert(cluster_psql(&source, "postgres",
	                       "SELECT pg_drop_replication_slot(slot_name)"
	                       " FROM pg_replication_slots"));
}

/* ---- the source ---- */

/* Objects made on the source only, first: OIDs then differ between sides. */
static const char pad_sql[] =
    "CREATE TABLE public.pad_a (x int); CREATE TABLE public.pad_b (x int);"
    "CREATE TYPE public.pad_t AS (x int); DROP TABLE public.pad_a;";

static const char schema_sql[] =
    "CREATE EXTENSION hstore; CREATE EXTENSION citext;"
    "CREATE SCHEMA ext; CREATE EXTENSION ltree SCHEMA ext;"
    " CREATE EXTENSION cube SCHEMA ext;"
    "CREATE SCHEMA app;"
    "CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');"
    "CREATE TYPE app.pt3 AS (x float8, y float8, z float8);"
    "CREATE TYPE app.item AS (name text, qty int, tags text[], at app.pt3);"
    "CREATE TYPE app.shape AS (p point, label text);"
    "CREATE TYPE app.floatrange AS RANGE (subtype = float8);"
    "CREATE DOMAIN app.posint AS int CHECK (VALUE > 0);"
    "CREATE DOMAIN app.intlist AS int[] CHECK (cardinality(VALUE) < 10);"
    "CREATE DOMAIN app.item_d AS app.item CHECK ((VALUE).qty >= 0);"
    "CREATE DOMAIN app.email AS citext CHECK (VALUE LIKE '%@%');"
    "CREATE FUNCTION app.f(int) RETURNS int LANGUAGE sql AS 'SELECT $1';"
    "CREATE TABLE public.pubtab (x int);"
    "CREATE TYPE public.pubtype AS ENUM ('a');"
    "CREATE FUNCTION public.pubf() RETURNS int LANGUAGE sql AS 'SELECT 1';"
    "CREATE TABLE app.marker (id int PRIMARY KEY);"

    /* arrays */
    "CREATE TABLE app.arr (id int PRIMARY KEY, ia int[], ta text[], md int[],"
    " na numeric[], ja jsonb[]);"
    "INSERT INTO app.arr SELECT g, ARRAY[g, NULL, g + 1],"
    " ARRAY['a' || g, NULL, 'x\"y,z', '', 'NULL'],"
    " ARRAY[[g, g + 1], [g + 2, NULL]], ARRAY[1.0, 1.00, 'NaN']::numeric[],"
    " ARRAY['{\"a\": 1}'::jsonb, NULL] FROM generate_series(1, 20) g;"
    "INSERT INTO app.arr VALUES (21, '{}', '{}', '[0:1]={7,8}', NULL, '{}');"

    /* json, jsonb, an enum, a TOASTed text */
    "CREATE TABLE app.docs (id int PRIMARY KEY, jb jsonb, j json, payload text,"
    " note text, mood app.mood);"
    "INSERT INTO app.docs SELECT g, jsonb_build_object('k', g, 'arr',"
    " jsonb_build_array(g, 'x', NULL, 1.50)),"
    " '{\"b\": [1, 2], \"a\" : \"dup\", \"a\": \"keep\"}',"
    " (SELECT string_agg(md5((g * 1000 + i)::text), '')"
    "  FROM generate_series(1, 4000) i), 'n' || g, 'ok'"
    " FROM generate_series(1, 10) g;"

    /* ranges and multiranges */
    "CREATE TABLE app.ranges (id int PRIMARY KEY, r4 int4range, tr tstzrange,"
    " mr int4multirange, fr app.floatrange, fmr app.floatmultirange,"
    " nr numrange);"
    "INSERT INTO app.ranges VALUES"
    " (1, '[1,10)', '[2020-01-01 00:00+00,infinity)', '{[1,3),[5,7)}',"
    "  '[1.5,2.5]', '{[1,2),[3,4]}', 'empty'),"
    " (2, 'empty', NULL, '{}', '(,)', '{}', '[1.0,2.00]'),"
    " (3, NULL, '(-infinity,2020-01-01 00:00+00]', NULL, NULL, NULL, NULL);"

    /* domains */
    "CREATE TABLE app.doms (id int PRIMARY KEY, p app.posint, il app.intlist,"
    " it app.item_d, e app.email);"
    "INSERT INTO app.doms VALUES"
    " (1, 5, '{1,2,3}', ROW('w', 2, '{a,b}', ROW(1, 2, 3))::app.item,"
    "  'A@x.org'),"
    " (2, NULL, NULL, NULL, NULL);"

    /* composites */
    "CREATE TABLE app.comp (id int PRIMARY KEY, it app.item, its app.item[],"
    " sh app.shape);"
    "INSERT INTO app.comp VALUES"
    " (1, ROW('a', 1, '{x,NULL}', ROW(0, '-0', 'NaN'))::app.item,"
    "  ARRAY[ROW('b', 2, NULL, NULL)::app.item,"
    "   ROW('c,\"d', 3, '{}', ROW(1, 1, 1))::app.item],"
    "  ROW('(1,2)', 'lbl')::app.shape),"
    " (2, ROW(NULL, NULL, NULL, NULL)::app.item, '{}', NULL);"

    /* multi-level partitions, keyed */
    "CREATE TABLE app.events (id int, ts date, region text, v text,"
    " PRIMARY KEY (id, ts, region)) PARTITION BY RANGE (ts);"
    "CREATE TABLE app.events_2020 PARTITION OF app.events"
    " FOR VALUES FROM ('2020-01-01') TO ('2021-01-01') PARTITION BY LIST (region);"
    "CREATE TABLE app.events_2020_eu PARTITION OF app.events_2020"
    " FOR VALUES IN ('eu');"
    "CREATE TABLE app.events_2020_rest PARTITION OF app.events_2020 DEFAULT;"
    "CREATE TABLE app.events_2021 PARTITION OF app.events"
    " FOR VALUES FROM ('2021-01-01') TO ('2022-01-01') PARTITION BY LIST (region);"
    "CREATE TABLE app.events_2021_eu PARTITION OF app.events_2021"
    " FOR VALUES IN ('eu');"
    "CREATE TABLE app.events_2021_rest PARTITION OF app.events_2021 DEFAULT;"
    "INSERT INTO app.events SELECT g, date '2020-01-01' + (g * 17 % 700),"
    " CASE g % 3 WHEN 0 THEN 'eu' WHEN 1 THEN 'us' ELSE 'asia' END, 'v' || g"
    " FROM generate_series(1, 60) g;"

    /* multi-level partitions, REPLICA IDENTITY FULL, a TOASTed column */
    "CREATE TABLE app.flog (id int, ts date, region text, v text, big text)"
    " PARTITION BY RANGE (ts);"
    "CREATE TABLE app.flog_2020 PARTITION OF app.flog"
    " FOR VALUES FROM ('2020-01-01') TO ('2021-01-01') PARTITION BY LIST (region);"
    "CREATE TABLE app.flog_2020_eu PARTITION OF app.flog_2020"
    " FOR VALUES IN ('eu');"
    "CREATE TABLE app.flog_2020_rest PARTITION OF app.flog_2020 DEFAULT;"
    "CREATE TABLE app.flog_2021 PARTITION OF app.flog"
    " FOR VALUES FROM ('2021-01-01') TO ('2022-01-01') PARTITION BY LIST (region);"
    "CREATE TABLE app.flog_2021_eu PARTITION OF app.flog_2021"
    " FOR VALUES IN ('eu');"
    "CREATE TABLE app.flog_2021_rest PARTITION OF app.flog_2021 DEFAULT;"
    "ALTER TABLE app.flog REPLICA IDENTITY FULL;"
    "ALTER TABLE app.flog_2020 REPLICA IDENTITY FULL;"
    "ALTER TABLE app.flog_2021 REPLICA IDENTITY FULL;"
    "ALTER TABLE app.flog_2020_eu REPLICA IDENTITY FULL;"
    "ALTER TABLE app.flog_2020_rest REPLICA IDENTITY FULL;"
    "ALTER TABLE app.flog_2021_eu REPLICA IDENTITY FULL;"
    "ALTER TABLE app.flog_2021_rest REPLICA IDENTITY FULL;"
    "INSERT INTO app.flog SELECT g % 20, date '2020-01-01' + (g * 17 % 700),"
    " CASE g % 3 WHEN 0 THEN 'eu' WHEN 1 THEN 'us' ELSE 'asia' END, 'v' || g,"
    " CASE WHEN g % 7 = 0 THEN (SELECT string_agg(md5((g * 1000 + i)::text),"
    "  '') FROM generate_series(1, 3000) i) END"
    " FROM generate_series(1, 40) g;"

    /* generated and identity columns */
    "CREATE TABLE app.gen (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " a int, b int GENERATED ALWAYS AS (a * 2) STORED,"
    " c bigint GENERATED BY DEFAULT AS IDENTITY);"
    "INSERT INTO app.gen (a) SELECT g FROM generate_series(1, 10) g;"
    "CREATE TABLE app.genfull (a int, b int GENERATED ALWAYS AS (a + 1) STORED);"
    "ALTER TABLE app.genfull REPLICA IDENTITY FULL;"
    "INSERT INTO app.genfull VALUES (1), (1), (2), (NULL), (NULL);"

    /*
     * inheritance children whose columns pg_dump cannot put in the same
     * order: recreated as CREATE TABLE ... INHERITS, the parent's columns
     * come first
     */
    "CREATE TABLE app.parent (id int PRIMARY KEY, a text);"
    "CREATE TABLE app.child (x int, id int NOT NULL PRIMARY KEY, a text);"
    "ALTER TABLE app.child INHERIT app.parent;"
    "ALTER TABLE app.parent ADD COLUMN b numeric;"
    "CREATE TABLE app.child_full (y text, b numeric, id int NOT NULL, a text);"
    "ALTER TABLE app.child_full INHERIT app.parent;"
    "ALTER TABLE app.child_full REPLICA IDENTITY FULL;"
    "INSERT INTO app.parent VALUES (1, 'p1', 1.5), (2, 'p2', NULL), (3, 'p3', 0);"
    "INSERT INTO app.child (x, id, a, b) VALUES (10, 1, 'c1', 2.5),"
    " (20, 3, 'c3', NULL), (30, 4, 'c4', 4);"
    "INSERT INTO app.child_full (y, b, id, a) VALUES ('y1', 1, 1, 'f1'),"
    " ('y1', 1, 1, 'f1'), (NULL, NULL, 2, NULL), ('y3', 3, 3, 'f3');"

    /* geometric types */
    "CREATE TABLE app.geo (id int PRIMARY KEY, pt point, bx box, pg polygon,"
    " c circle, pa path, ls lseg, li line);"
    "INSERT INTO app.geo VALUES"
    " (1, '(1,2)', '(1,1),(0,0)', '((0,0),(1,1),(1,0))', '<(1,1),2>',"
    "  '[(0,0),(1,1)]', '[(0,0),(1,1)]', '{1,-1,0}'),"
    " (2, '(-0,1e300)', '(2,2),(1,1)', '((0,0),(0,1e-300))', '<(0,0),0.5>',"
    "  '((0,0),(1,1),(2,0))', '[(1,1),(2,2)]', '{0,1,-1}'),"
    " (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"

    /* scalars at their edges */
    "CREATE TABLE app.scal (id int PRIMARY KEY, b bytea, n numeric, f4 real,"
    " f8 float8, ts timestamp, tstz timestamptz, iv interval, m money,"
    " bi bit(8), vb varbit, ip inet, cd cidr, mac macaddr, mac8 macaddr8,"
    " tv tsvector, tq tsquery, x xml, u uuid, l pg_lsn, ts1 txid_snapshot,"
    " ps pg_snapshot, jp jsonpath, o oid, ch char(5), nm name, c1 \"char\","
    " d date, t time, ttz timetz);"
    "INSERT INTO app.scal VALUES"
    " (1, '\\x00ff5c0a', 'NaN', '-0', '-0', 'infinity', '-infinity',"
    "  '1 year 2 mons 3 days 04:05:06.789', '12.34', B'10101010', B'101',"
    "  '10.0.0.1/8', '10.0.0.0/8', '08:00:2b:01:02:03',"
    "  '08:00:2b:01:02:03:04:05', 'a fat cat', 'fat & !cat',"
    "  '<a x=\"1\">1<!-- c --></a>', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',"
    "  '16/B374D848', '10:20:10,14,15', '10:20:10,14,15', '$.a[*] ? (@ > 1)',"
    "  4294967295, 'ab', 'nm', 'x', 'infinity', '24:00', '12:00+05'),"
    " (2, '', 'Infinity', 'NaN', 'Infinity', '-infinity', 'infinity',"
    "  '-178000000 years', '-92233720368547758.08', B'00000000', B'',"
    "  '::1', '::/0', '00:00:00:00:00:00', '00:00:00:00:00:00:00:00', '', '',"
    "  'text only', '00000000-0000-0000-0000-000000000000', '0/0', '1:1:',"
    "  '1:1:', '$', 0, '', '', 'y', '-infinity', '00:00', '00:00-15:59'),"
    " (3, '\\x', '-Infinity', '3.4028235e38', '2.2250738585072014e-308',"
    "  '1999-12-31 23:59:59.999999', '2000-01-01 00:00:00.000001+14',"
    "  '-1 days +02:03', '0', B'11111111', B'1', '192.168.1.1', '192.168.1.0/24',"
    "  'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff', 'x:1A y:2B,3C',"
    "  'x:* <-> y', NULL, NULL, 'FFFFFFFF/FFFFFFFF', NULL, NULL,"
    "  'strict $.a.b', 16384, 'a  ', 'long_name', ' ', '0001-01-01 BC',"
    "  '23:59:59.999999', '23:59:59.999999-15:59'),"
    " (4, NULL, '-0.000', '1e-45', '-0.1', NULL, NULL, NULL, NULL, NULL,"
    "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"

    /* reg* columns naming user objects, aclitem[] */
    "CREATE TABLE app.regs (id int PRIMARY KEY, c regclass, t regtype,"
    " p regproc, pp regprocedure, o regoperator, op regoper, n regnamespace,"
    " r regrole, cfg regconfig, dict regdictionary, coll regcollation,"
    " ca regclass[], acl aclitem[]);"
    "INSERT INTO app.regs VALUES"
    " (1, 'app.docs', 'app.mood', 'app.f', 'app.f(int)', '+(int4,int4)',"
    "  '||/', 'app', 'postgres', 'english', 'simple', '\"C\"',"
    "  '{app.docs,pg_class,public.pubtab}',"
    "  '{postgres=arwdDxt/postgres,=r/postgres}'),"
    " (2, 'public.pubtab', 'public.pubtype', 'public.pubf', 'public.pubf()',"
    "  'public.->(public.hstore,text)', NULL, 'public', NULL, NULL, NULL,"
    "  NULL, NULL, NULL);"

    /*
     * keys of extension types, whose "=" is not in pg_catalog (the apply
     * session's search_path is empty), a composite, an enum and a domain
     * over citext; a replica identity index on an ltree
     */
    "CREATE TABLE app.k_lt (k ext.ltree PRIMARY KEY, v int);"
    "CREATE TABLE app.k_h (k hstore PRIMARY KEY, v int);"
    "CREATE TABLE app.k_cu (k ext.cube PRIMARY KEY, v int);"
    "CREATE TABLE app.k_co (k app.pt3 PRIMARY KEY, v int);"
    "CREATE TABLE app.k_en (k app.mood, n numeric, v int, PRIMARY KEY (k, n));"
    "CREATE TABLE app.k_em (k app.email PRIMARY KEY, v int);"
    "CREATE TABLE app.k_ri (id int, k ext.ltree NOT NULL, v int);"
    "CREATE UNIQUE INDEX k_ri_k ON app.k_ri (k);"
    "ALTER TABLE app.k_ri REPLICA IDENTITY USING INDEX k_ri_k;"
    "INSERT INTO app.k_lt SELECT ('a.b' || g)::ext.ltree, g FROM generate_series(1, 5) g;"
    "INSERT INTO app.k_h SELECT format('k=>%s', g)::hstore, g FROM generate_series(1, 5) g;"
    "INSERT INTO app.k_cu SELECT ext.cube(g, -g), g FROM generate_series(1, 5) g;"
    "INSERT INTO app.k_co SELECT ROW(g, '-0', 0.1)::app.pt3, g FROM generate_series(1, 5) g;"
    "INSERT INTO app.k_en VALUES ('sad', 1.0, 1), ('ok', 1.50, 2), ('happy', 'NaN', 3);"
    "INSERT INTO app.k_em SELECT 'Mail' || g || '@x.org', g FROM generate_series(1, 5) g;"
    "INSERT INTO app.k_ri SELECT g, ('r.' || g)::ext.ltree, g FROM generate_series(1, 5) g;"

    /* keyless, REPLICA IDENTITY FULL, with every kind of type */
    "CREATE TABLE app.kl (h hstore, c citext, lt ext.ltree, cu ext.cube,"
    " pt point, jp jsonpath, ts txid_snapshot, ps pg_snapshot, x xml, j json,"
    " sh app.shape, it app.item, e app.email, mo app.mood, r app.floatrange,"
    " pts point[], f8 float8, nu numeric, n int, big text);"
    "ALTER TABLE app.kl REPLICA IDENTITY FULL;"
    "INSERT INTO app.kl SELECT format('k=>%s', g)::hstore, 'Name' || g,"
    " ('top.n' || g)::ext.ltree, ext.cube(g, g + 1), point(g, -g), '$.a',"
    " '10:20:10,14', '10:20:10,14', ('<x>' || g || '</x>')::xml,"
    " ('{\"g\":  ' || g || '}')::json, ROW(point(g, g), 'l')::app.shape,"
    " ROW('n', g, '{t}', ROW(g, 0, 0))::app.item, 'u' || g || '@x.org', 'ok',"
    " app.floatrange(g, g + 1), ARRAY[point(g, 0)], g / 3.0, g, g,"
    " CASE WHEN g % 5 = 0 THEN (SELECT string_agg(md5((g * 7 + i)::text), '')"
    "  FROM generate_series(1, 3000) i) END"
    " FROM generate_series(1, 30) g;"
    "INSERT INTO app.kl (n) VALUES (100), (100);"
    "INSERT INTO app.kl SELECT * FROM app.kl WHERE n IN (7, 10);";

/*
 * The workload: one statement (transaction) each.  Entries starting with
 * "TRUNCATE" are left out when the workload runs during the copy.
 */
static const char *const workload[] = {
    /* arrays */
    "UPDATE app.arr SET ia = ia || NULL::int, ta[2] = 'two' WHERE id <= 3",
    "UPDATE app.arr SET id = id + 100 WHERE id = 4",
    "DELETE FROM app.arr WHERE id IN (5, 6)",
    "INSERT INTO app.arr VALUES (30, '{{1,2},{3,4}}', '{\"\"}', NULL,"
    " '{-0.0,Infinity}', '{null}')",
    /* docs: TOASTed payload unchanged while other columns change */
    "UPDATE app.docs SET note = note || '!' WHERE id <= 4",
    "UPDATE app.docs SET jb = jb || '{\"new\": true}', mood = 'happy' WHERE id = 5",
    "UPDATE app.docs SET id = id + 100 WHERE id = 6",
    "UPDATE app.docs SET payload = payload || 'x' WHERE id = 7",
    "DELETE FROM app.docs WHERE id = 8",
    "INSERT INTO app.docs VALUES (50, 'null', 'null', NULL, NULL, 'sad')",
    /* ranges */
    "UPDATE app.ranges SET r4 = '[2,3]', mr = mr + '{[10,11)}',"
    " fmr = '{[0,1]}' WHERE id = 1",
    "UPDATE app.ranges SET tr = '[2021-01-01,2021-02-01)' WHERE id = 2",
    "INSERT INTO app.ranges VALUES (4, '(,5)', 'empty', '{(,)}', 'empty',"
    " '{(,0)}', '(,)')",
    "DELETE FROM app.ranges WHERE id = 3",
    /* domains */
    "UPDATE app.doms SET p = 7, il = il || 4, e = 'b@y.org' WHERE id = 1",
    "INSERT INTO app.doms VALUES (3, 1, '{}', ROW('z', 0, NULL, NULL)::app.item,"
    " 'C@z.org')",
    "DELETE FROM app.doms WHERE id = 2",
    /* composites */
    "UPDATE app.comp SET it.qty = 9, its[1].name = 'B' WHERE id = 1",
    "INSERT INTO app.comp VALUES (3, ROW('q', NULL, '{NULL}',"
    " ROW('Infinity', 1, 2))::app.item, ARRAY[NULL::app.item],"
    " ROW(NULL, NULL)::app.shape)",
    "DELETE FROM app.comp WHERE id = 2",
    /* keyed partitions: moves between leaves at both levels */
    "UPDATE app.events SET region = 'eu' WHERE id BETWEEN 1 AND 5",
    "UPDATE app.events SET ts = ts + 365 WHERE id BETWEEN 6 AND 10"
    " AND ts < '2021-01-01'",
    "UPDATE app.events SET ts = '2020-06-01', region = 'us'"
    " WHERE id BETWEEN 11 AND 15",
    "UPDATE app.events SET v = 'same leaf' WHERE id = 16",
    "DELETE FROM app.events WHERE id BETWEEN 17 AND 19",
    "INSERT INTO app.events VALUES (100, '2021-05-05', 'eu', 'new'),"
    " (101, '2020-05-05', 'mars', 'new')",
    "TRUNCATE app.events_2021_rest",
    /* FULL partitions: moves, duplicates, a TOASTed value left unchanged */
    "UPDATE app.flog SET region = 'eu' WHERE id = 1",
    "UPDATE app.flog SET ts = ts + 365 WHERE id = 7 AND ts < '2021-01-01'",
    "UPDATE app.flog SET v = v || '+' WHERE big IS NOT NULL",
    "UPDATE app.flog SET ts = '2020-03-03', region = 'asia' WHERE id = 14",
    "DELETE FROM app.flog WHERE ctid = (SELECT ctid FROM app.flog_2020_rest"
    " WHERE id = 2 LIMIT 1) AND tableoid = 'app.flog_2020_rest'::regclass",
    "INSERT INTO app.flog VALUES (5, '2020-02-02', 'eu', 'dup', NULL),"
    " (5, '2020-02-02', 'eu', 'dup', NULL)",
    "DELETE FROM app.flog_2020_eu WHERE ctid = (SELECT ctid FROM"
    " app.flog_2020_eu WHERE v = 'dup' LIMIT 1)",
    /* generated and identity columns */
    "UPDATE app.gen SET a = a + 100 WHERE id <= 3",
    "INSERT INTO app.gen (a) VALUES (50), (51)",
    "INSERT INTO app.gen (a, c) VALUES (52, 1000)",
    "DELETE FROM app.gen WHERE id = 4",
    "UPDATE app.genfull SET a = 3 WHERE ctid = (SELECT ctid FROM app.genfull"
    " WHERE a = 1 LIMIT 1)",
    "DELETE FROM app.genfull WHERE ctid = (SELECT ctid FROM app.genfull"
    " WHERE a IS NULL LIMIT 1)",
    "TRUNCATE app.genfull",
    "INSERT INTO app.genfull VALUES (7), (7)",
    "DELETE FROM app.genfull WHERE ctid = (SELECT ctid FROM app.genfull"
    " LIMIT 1)",
    /* inheritance: the parent's rows, and each child's */
    "UPDATE app.parent SET a = a || '!'",
    "UPDATE app.child SET x = x + 1, b = 9.5 WHERE id = 1",
    "UPDATE app.parent SET id = 10 WHERE id = 2",
    "DELETE FROM ONLY app.parent WHERE id = 3",
    "INSERT INTO app.child (x, id, a, b) VALUES (50, 5, 'c5', 5)",
    "DELETE FROM app.child_full WHERE ctid = (SELECT ctid FROM app.child_full"
    " WHERE y = 'y1' LIMIT 1)",
    "UPDATE app.child_full SET y = 'was null' WHERE y IS NULL",
    "INSERT INTO app.child_full (id, a, b, y) VALUES (6, 'f6', 6, 'y6')",
    /* geometric */
    "UPDATE app.geo SET pt = '(3,4)', bx = '(3,3),(2,2)', c = '<(0,0),9>'"
    " WHERE id = 1",
    "UPDATE app.geo SET pa = '[(9,9),(8,8),(7,7)]', li = '{2,3,4}',"
    " pg = '((1,1),(2,2),(3,1))' WHERE id = 2",
    "INSERT INTO app.geo VALUES (4, '(0,0)', '(0,0),(0,0)', '((0,0))',"
    " '<(0,0),0>', '[(0,0)]', '[(0,0),(0,0)]', '{1,0,0}')",
    "DELETE FROM app.geo WHERE id = 3",
    /* scalars */
    "UPDATE app.scal SET n = n + 1, f8 = '-0', tstz = 'infinity',"
    " iv = iv * 2, m = m + '0.01' WHERE id IN (3, 4)",
    "UPDATE app.scal SET x = '<new/>', tv = tv || 'dog', jp = '$.b',"
    " l = '1/1', ts1 = '5:9:5,7', ps = '5:9:5,7' WHERE id = 1",
    "INSERT INTO app.scal (id, n, f4, f8, ts, iv, b) VALUES (5, 'NaN',"
    " 'Infinity', '-Infinity', '-infinity', '0', '\\xdeadbeef')",
    "DELETE FROM app.scal WHERE id = 2",
    /* reg*: by name */
    "UPDATE app.regs SET c = 'app.kl', ca = ca || 'app.geo'::regclass,"
    " t = 'app.item', acl = acl || 'pg_monitor=r/postgres'::aclitem WHERE id = 1",
    "INSERT INTO app.regs VALUES (3, 'app.events_2020_eu', 'app.item[]',"
    " 'app.f', 'app.f(integer)', 'public.=(public.hstore,public.hstore)', NULL, 'ext',"
    " 'postgres', 'simple', 'english_stem', 'pg_catalog.\"POSIX\"',"
    " '{app.flog}', '{}')",
    /* keys of extension and user types */
    "UPDATE app.k_lt SET v = v + 10 WHERE v <= 2",
    "UPDATE app.k_lt SET k = 'changed.key' WHERE v = 3",
    "DELETE FROM app.k_lt WHERE v = 4",
    "UPDATE app.k_h SET v = v + 10 WHERE v <= 2",
    "UPDATE app.k_h SET k = k || 'x=>y'::hstore WHERE v = 3",
    "DELETE FROM app.k_h WHERE v = 4",
    "UPDATE app.k_cu SET v = v + 10 WHERE v <= 2",
    "DELETE FROM app.k_cu WHERE v = 4",
    "UPDATE app.k_co SET v = v + 10 WHERE v <= 2",
    "UPDATE app.k_co SET k.z = 9 WHERE v = 3",
    "DELETE FROM app.k_co WHERE v = 4",
    "UPDATE app.k_en SET v = v + 10",
    "DELETE FROM app.k_en WHERE k = 'ok'",
    "UPDATE app.k_em SET v = v + 10 WHERE v <= 2",
    "UPDATE app.k_em SET k = 'other@y.org' WHERE v = 3",
    "DELETE FROM app.k_em WHERE v = 4",
    "UPDATE app.k_ri SET v = v + 10 WHERE v <= 2",
    "UPDATE app.k_ri SET k = 'r.changed' WHERE v = 3",
    "DELETE FROM app.k_ri WHERE v = 4",
    /* reg* of objects in public, whose names the source writes qualified */
    "UPDATE app.regs SET id = 20 WHERE id = 2",
    /* keyless FULL rows */
    "UPDATE app.kl SET n = n + 1000 WHERE n <= 3",
    "DELETE FROM app.kl WHERE ctid = (SELECT ctid FROM app.kl WHERE n = 100"
    " LIMIT 1)",
    "DELETE FROM app.kl WHERE ctid = (SELECT ctid FROM app.kl WHERE n = 7"
    " LIMIT 1)",
    "UPDATE app.kl SET n = 11 WHERE ctid = (SELECT ctid FROM app.kl WHERE"
    " n = 10 LIMIT 1)",
    "UPDATE app.kl SET h = h || 'z=>1'::hstore, lt = ('top.changed.' || n)::ext.ltree,"
    " cu = ext.cube(0), pt = point(0, 0), c = upper(c), x = '<y/>',"
    " j = '[]', jp = '$.z', sh.label = 'L', it.qty = 0, pts = '{}',"
    " r = 'empty' WHERE n IN (12, 15)",
    "UPDATE app.kl SET n = NULL WHERE n = 20",
    "DELETE FROM app.kl WHERE n IS NULL AND h IS NOT NULL",
    "UPDATE app.kl SET f8 = f8 * 2 WHERE n = 25",
    "DELETE FROM app.kl WHERE n BETWEEN 26 AND 28",
    "UPDATE app.kl SET x = '<?xml version=\"1.0\" encoding=\"UTF-8\"?><d>\u00e9</d>'"
    " WHERE n = 13",
    "UPDATE app.kl SET n = 1013 WHERE n = 13",
    "INSERT INTO app.kl (c, n) VALUES ('dup', 300), ('dup', 300)",
    "DELETE FROM app.kl WHERE ctid = (SELECT ctid FROM app.kl WHERE n = 300"
    " LIMIT 1)",
    "BEGIN; UPDATE app.kl SET n = 400 WHERE n = 100;"
    " UPDATE app.docs SET note = 'in txn' WHERE id = 9;"
    " UPDATE app.flog SET v = 'in txn' WHERE id = 3; COMMIT",
    "TRUNCATE app.arr, app.ranges",
    "TRUNCATE app.flog_2021",
    "INSERT INTO app.flog VALUES (1, '2021-03-03', 'eu', 'after truncate', NULL)",
    "INSERT INTO app.arr VALUES (1, '{1}', '{a}', '{{1}}', '{1}', '{}')"
    " ON CONFLICT DO NOTHING",
    "INSERT INTO app.ranges VALUES (1, '[1,2)', NULL, '{}', NULL, NULL, NULL)"
    " ON CONFLICT DO NOTHING",
    "INSERT INTO app.marker VALUES (1)",
};

/* ---- running pgstream ---- */

typedef struct Mig
{
	char srcdb[64];
	char tgtdb[64];
	char slot[64];
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
} Mig;

static void
mig_init(Mig *m, const char *name)
{
	snprintf(m->srcdb, sizeof(m->srcdb), "%s_src", name);
	snprintf(m->tgtdb, sizeof(m->tgtdb), "%s_tgt", name);
	snprintf(m->slot, sizeof(m->slot), "%s_slot", name);
	itest_make_db(&source, m->srcdb, NULL);
	itest_make_db(&target, m->tgtdb, "migrator");
	itest_conninfo(m->src, &source, m->srcdb);
	itest_migrator_conninfo(m->tgt, &target, m->tgtdb);
}

static void
spawn_sync(Proc *p, const Mig *m, const char *const env[])
{
	const char *argv[MAX_ARGS];
	int n = 0;

	argv[n++] = itest_pgstream_bin();
	argv[n++] = "sync";
	argv[n++] = "--source";
	argv[n++] = m->src;
	argv[n++] = "--target";
	argv[n++] = m->tgt;
	argv[n++] = "--slot";
	argv[n++] = m->slot;
	argv[n++] = "--jobs";
	argv[n++] = "2";
	argv[n++] = "--no-key-tables=full";
	argv[n++] = "--quiet";
	argv[n] = NULL;
	ck_assert(proc_spawn(p, argv, env));
}

/*
 * Poll sql (one boolean) on the target until true while sync keeps running;
 * asserts both.
 */
static void
assert_applied(const Mig *m, const char *sql, Proc *sync, const char *what)
{
	long long deadline = proc_now_ms() + APPLY_TIMEOUT_MS;

	for (;;)
	{
		int st = proc_wait(sync, 0);
		char *v = cluster_query_scalar(&target, m->tgtdb, sql);
		bool done = v != NULL && strcmp(v, "t") == 0;

		free(v);
		if (st != PROC_TIMEOUT)
		{
			itest_print_proc("pgstream sync", sync, st);
			ck_abort_msg("sync exited (%d) before %s", st, what);
		}
		if (done)
			return;
		ck_assert_msg(proc_now_ms() < deadline, "%s did not happen in %d s",
		              what, APPLY_TIMEOUT_MS / 1000);
		itest_sleep_ms(100);
	}
}

static void
wait_streaming(const Mig *m, Proc *sync)
{
	assert_applied(m,
	               "SELECT to_regclass('pgstream.migration') IS NOT NULL AND"
	               " (SELECT phase = 'streaming' FROM pgstream.migration)",
	               sync, "reaching the streaming phase");
}

static void
stop_sync(Proc *sync)
{
	proc_kill(sync, SIGKILL);
	proc_wait(sync, 30000);
	proc_release(sync);
}

/* cutover must succeed, and then sync exits 0. */
static void
cutover_ok(const Mig *m, Proc *sync)
{
	const char *argv[] = {itest_pgstream_bin(), "cutover", "--source", m->src,
	                      "--target", m->tgt, "--timeout", "120", NULL};
	char *out = NULL, *err = NULL;
	int status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);

	if (status != 0)
	{
		itest_print_output("pgstream cutover", status, out, err);
		itest_print_proc("pgstream sync", sync, proc_wait(sync, 5000));
	}
	ck_assert_int_eq(status, 0);
	ck_assert_msg(out != NULL && strstr(out, "row counts: equal") != NULL,
	              "cutover report: %s", out ? out : "");
	free(out);
	free(err);
	itest_assert_sync_exits_0(sync);
	proc_release(sync);
}

static void
run_workload(const Mig *m, bool skip_truncate)
{
	for (size_t i = 0; i < sizeof(workload) / sizeof(workload[0]); i++)
	{
		if (skip_truncate && strncmp(workload[i], "TRUNCATE", 8) == 0)
			continue;
		ck_assert_msg(cluster_psql(&source, m->srcdb, workload[i]),
		              "workload step %zu failed: %s", i, workload[i]);
	}
}

/* ---- comparing ---- */

/* Tables whose column order the target cannot keep (see schema_sql). */
static const char *const reordered[] = {"app.child ", "app.child_full ", NULL};

static int
cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The schema facts of db, one per array entry, sorted bytewise, with the
 * position ("#n ") taken out of the column facts of the reordered tables.
 * *buf owns the text.
 */
static char **
schema_lines(const Cluster *c, const char *db, char **buf, size_t *nlines)
{
	char **lines = NULL;
	size_t cap = 0;

	*buf = compare_schema_facts(c, db);
	*nlines = 0;
	ck_assert_ptr_nonnull(*buf);
	for (char *save = NULL, *l = strtok_r(*buf, "\n", &save); l != NULL;
	     l = strtok_r(NULL, "\n", &save))
	{
		for (int i = 0; reordered[i] != NULL && strncmp(l, "column ", 7) == 0; i++)
		{
			size_t rl = strlen(reordered[i]);
			char *hash = l + 7 + rl;
			char *sp = strchr(hash, ' ');

			if (strncmp(l + 7, reordered[i], rl) == 0 && hash[0] == '#' && sp != NULL)
				memmove(hash, sp + 1, strlen(sp + 1) + 1);
		}
		if (*nlines == cap)
		{
			cap = cap ? cap * 2 : 512;
			lines = realloc(lines, cap * sizeof(*lines));
			ck_assert_ptr_nonnull(lines);
		}
		lines[(*nlines)++] = l;
	}
	qsort(lines, *nlines, sizeof(*lines), cmp_lines);
	return lines;
}

/* Schemas equal but for the reordered children's column positions. */
static void
assert_same_schema(const Mig *m)
{
	char *abuf, *bbuf;
	size_t na, nb, i = 0, j = 0;
	char **a = schema_lines(&source, m->srcdb, &abuf, &na);
	char **b = schema_lines(&target, m->tgtdb, &bbuf, &nb);
	int diffs = 0;

	while (i < na || j < nb)
	{
		int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i], b[j]);

		if (c == 0)
		{
			i++, j++;
			continue;
		}
		fprintf(stderr, "%s: %s\n", c < 0 ? "source only" : "target only",
		        c < 0 ? a[i] : b[j]);
		diffs++;
		if (c < 0)
			i++;
		else
			j++;
	}
	ck_assert_int_gt(na, 100);
	free(a);
	free(b);
	free(abuf);
	free(bbuf);
	ck_assert_msg(diffs == 0, "%d schema fact(s) differ (above)", diffs);
}

/*
 * "<count> rows, md5 <digest>" of the rows of table (FROM ONLY) with its
 * columns in name order, whatever their order in the table.
 */
static char *
table_digest(const Cluster *c, const char *db, const char *table)
{
	char sql[1024];
	char *cols, *v;
	char *q;
	size_t qlen;

	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(string_agg(quote_ident(attname), ', '"
	         " ORDER BY attname), '') FROM pg_attribute WHERE attrelid ="
	         " '%s'::regclass AND attnum > 0 AND NOT attisdropped",
	         table);
	ck_assert(cluster_query(c, db, sql, &cols));
	ck_assert_ptr_nonnull(cols);
	qlen = strlen(cols) + strlen(table) + 512;
	q = malloc(qlen);
	ck_assert_ptr_nonnull(q);
	snprintf(q, qlen,
	         "SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(x,"
	         " E'\\n' ORDER BY x COLLATE \"C\"), '')) FROM (SELECT ROW(%s)::text"
	         " AS x FROM ONLY %s) s",
	         cols, table);
	ck_assert_msg(cluster_query(c, db, q, &v), "%s", q);
	ck_assert_ptr_nonnull(v);
	free(q);
	free(cols);
	return v;
}

/* Every table of the source (cluster src) has the same rows on the target. */
static void
assert_same_data_from(const Cluster *src, const Mig *m, int min_tables)
{
	PGconn *conn = cluster_connect(src, m->srcdb, NULL);
	PGresult *tables;
	int diffs = 0;

	ck_assert_ptr_nonnull(conn);
	tables = PQexec(conn,
	                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
	                " JOIN pg_namespace n ON n.oid = c.relnamespace"
	                " WHERE c.relkind = 'r'"
	                " AND n.nspname NOT IN ('pg_catalog', 'information_schema',"
	                " 'pgstream') AND n.nspname !~ '^pg_(toast|temp)'"
	                " ORDER BY 1");
	ck_assert_msg(PQresultStatus(tables) == PGRES_TUPLES_OK, "%s",
	              PQerrorMessage(conn));
	PQfinish(conn);
	ck_assert_int_ge(PQntuples(tables), min_tables);
	for (int i = 0; i < PQntuples(tables); i++)
	{
		const char *t = PQgetvalue(tables, i, 0);
		char *a = table_digest(src, m->srcdb, t);
		char *b = table_digest(&target, m->tgtdb, t);

		if (strcmp(a, b) != 0)
		{
			fprintf(stderr, "table %s differs: source %s, target %s\n", t, a, b);
			diffs++;
		}
		free(a);
		free(b);
	}
	PQclear(tables);
	ck_assert_msg(diffs == 0, "%d table(s) differ (above)", diffs);
}

static void
assert_same_data(const Mig *m, int min_tables)
{
	assert_same_data_from(&source, m, min_tables);
}

/* The children's columns really are in another order on the target. */
static void
assert_children_reordered(const Mig *m)
{
	static const char sql[] =
	    "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute"
	    " WHERE attrelid = 'app.child_full'::regclass AND attnum > 0"
	    " AND NOT attisdropped";

	itest_assert_scalar(&source, m->srcdb, sql, "y,b,id,a");
	itest_assert_scalar(&target, m->tgtdb, sql, "id,a,b,y");
}

/* ---- tests ---- */

static void
make_source(const Mig *m)
{
	ck_assert(cluster_psql(&source, m->srcdb, pad_sql));
	ck_assert(cluster_psql(&source, m->srcdb, schema_sql));
}

START_TEST(live_dml_over_every_type_cuts_over_exactly)
{
	Mig m;
	Proc sync;

	mig_init(&m, "fidlive");
	make_source(&m);
	spawn_sync(&sync, &m, NULL);
	wait_streaming(&m, &sync);
	run_workload(&m, false);
	assert_applied(&m, "SELECT count(*) = 1 FROM app.marker", &sync,
	               "applying the workload");
	cutover_ok(&m, &sync);
	assert_children_reordered(&m);
	assert_same_schema(&m);
	assert_same_data(&m, 25);
}
END_TEST

START_TEST(dml_during_the_copy_cuts_over_exactly)
{
	static const char fp[] = "fullload.after_part_commit";
	Mig m;
	Proc sync;
	FailpointDir fd;
	char env_dir[PATH_MAX + 32];
	const char *env[] = {"PGSTREAM_FAILPOINTS=fullload.after_part_commit=pause@1",
	                     env_dir, NULL};

	mig_init(&m, "fidcopy");
	make_source(&m);
	/* transactions over 64 kB are streamed while in progress (spooled) */
	ck_assert(cluster_psql(&source, "postgres",
	                       "ALTER DATABASE fidcopy_src SET"
	                       " logical_decoding_work_mem = '64kB'"));
	ck_assert(fpctl_init(&fd));
	fpctl_env(&fd, env_dir, sizeof(env_dir));
	spawn_sync(&sync, &m, env);
	ck_assert_msg(fpctl_wait(&fd, fp, APPLY_TIMEOUT_MS), "sync never reached %s", fp);
	run_workload(&m, true);
	fpctl_release(&fd, fp);
	assert_applied(&m, "SELECT to_regclass('app.marker') IS NOT NULL AND"
	               " (SELECT count(*) = 1 FROM app.marker)", &sync,
	               "applying the workload");
	ck_assert_msg(cluster_wait_for(&source, "postgres",
	                               "SELECT stream_txns > 0 FROM"
	                               " pg_stat_replication_slots WHERE"
	                               " slot_name = 'fidcopy_slot'",
	                               30000),
	              "the source did not stream a transaction in progress");
	cutover_ok(&m, &sync);
	fpctl_cleanup(&fd);
	assert_same_schema(&m);
	assert_same_data(&m, 25);
}
END_TEST

/*
 * Two rows that the columns' "=" cannot tell apart: float8 0 and -0,
 * numeric 1.0 and 1.00, citext 'abc' and 'ABC' (and the same inside a
 * composite and an array).  The source deletes, then updates, the second
 * one; the target must change that one too, not the first it finds.
 */
START_TEST(full_identity_picks_the_identical_row_not_an_equal_one)
{
	static const char schema[] =
	    "CREATE EXTENSION citext;"
	    "CREATE TYPE num2 AS (a numeric, b float8);"
	    "CREATE TABLE marker (id int PRIMARY KEY);"
	    "CREATE TABLE twins (c citext, f float8, nu numeric, co num2,"
	    " fa float8[], n int);"
	    "ALTER TABLE twins REPLICA IDENTITY FULL;"
	    "INSERT INTO twins VALUES ('abc', 0, 1.0, ROW(1.0, 0), '{0}', 1),"
	    " ('ABC', '-0', 1.00, ROW(1.00, '-0'), '{-0}', 1),"
	    " ('abc', 0, 1.0, ROW(1.0, 0), '{0}', 2),"
	    " ('ABC', '-0', 1.00, ROW(1.00, '-0'), '{-0}', 2),"
	    " ('abc', 0, 1.0, ROW(1.0, 0), '{0}', 3),"
	    " ('abc', 0, 1.0, ROW(1.0, '-0'), '{0}', 3),"
	    " ('abc', 0, 1.0, ROW(1.0, 0), '{-0}', 4),"
	    " ('abc', 0, 1.0, ROW(1.0, 0), '{0}', 4);";
	static const char *const dml[] = {
	    "DELETE FROM twins WHERE n = 1 AND c::text = 'ABC'",
	    "UPDATE twins SET n = 20 WHERE n = 2 AND c::text = 'ABC'",
	    "DELETE FROM twins WHERE n = 3 AND (co).b::text = '-0'",
	    "DELETE FROM twins WHERE n = 4 AND fa::text = '{-0}'",
	    "INSERT INTO marker VALUES (1)",
	};
	Mig m;
	Proc sync;

	mig_init(&m, "fidtwins");
	ck_assert(cluster_psql(&source, m.srcdb, schema));
	spawn_sync(&sync, &m, NULL);
	wait_streaming(&m, &sync);
	for (size_t i = 0; i < sizeof(dml) / sizeof(dml[0]); i++)
		ck_assert_msg(cluster_psql(&source, m.srcdb, dml[i]), "%s", dml[i]);
	assert_applied(&m, "SELECT count(*) = 1 FROM marker", &sync,
	               "applying the workload");
	stop_sync(&sync);
	assert_same_data(&m, 2);
}
END_TEST

/*
 * A PostgreSQL 11 source writes float8 with 17 significant digits
 * (extra_float_digits = 3 before 12), PostgreSQL 15 the shortest exact
 * form: the FULL match must compare values, not the source's digits with
 * the target's, also for types without "=" (point) and inside arrays and
 * composites.
 */
START_TEST(full_identity_rows_from_an_older_server_match_by_value)
{
	static Cluster old;
	static const char schema[] =
	    "CREATE TYPE pair AS (a float8, b text);"
	    "CREATE TABLE marker (id int PRIMARY KEY);"
	    "CREATE TABLE fl (p point, f float8, fa float8[], c pair, j json,"
	    " r numrange, n int);"
	    "ALTER TABLE fl REPLICA IDENTITY FULL;"
	    "INSERT INTO fl SELECT point(g / 3.0, 0.1), g / 3.0, ARRAY[g / 7.0, 0.1],"
	    " ROW(g / 3.0, 'x')::pair, '{\"a\": 0.1}', numrange(0.1, g), g"
	    " FROM generate_series(1, 10) g";
	static const char dml[] =
	    "UPDATE fl SET n = n + 100 WHERE n <= 3;"
	    "DELETE FROM fl WHERE n IN (5, 6);"
	    "UPDATE fl SET f = 0.2 WHERE n = 7;"
	    "INSERT INTO marker VALUES (1)";
	Mig m;
	Proc sync;

	memset(&old, 0, sizeof(old));
	ck_assert_msg(cluster_init_major(&old, "fid-pg11", CLUSTER_LOGICAL, 11),
	              "PostgreSQL 11: no cluster (run make deps)");
	ck_assert(cluster_start(&old));
	ck_assert(cluster_psql(&old, "postgres", "CREATE DATABASE fidold_src"));
	snprintf(m.srcdb, sizeof(m.srcdb), "fidold_src");
	snprintf(m.tgtdb, sizeof(m.tgtdb), "fidold_tgt");
	snprintf(m.slot, sizeof(m.slot), "fidold_slot");
	itest_make_db(&target, m.tgtdb, "migrator");
	itest_conninfo(m.src, &old, m.srcdb);
	itest_migrator_conninfo(m.tgt, &target, m.tgtdb);
	ck_assert(cluster_psql(&old, m.srcdb, schema));
	spawn_sync(&sync, &m, NULL);
	wait_streaming(&m, &sync);
	ck_assert(cluster_psql(&old, m.srcdb, dml));
	assert_applied(&m, "SELECT count(*) = 1 FROM marker", &sync,
	               "applying the changes");
	stop_sync(&sync);
	/* the servers print floats differently: compare them to 12 digits */
	{
		static const char rows_sql[] =
		    "SELECT string_agg(concat_ws('|', round(p[0]::numeric, 12),"
		    " round(p[1]::numeric, 12), round(f::numeric, 12),"
		    " (SELECT string_agg(round(x::numeric, 12)::text, ',') FROM unnest(fa) x),"
		    " round((c).a::numeric, 12), (c).b, j::text, r::text, n), ';'"
		    " ORDER BY n) FROM fl";
		char *a = cluster_query_scalar(&old, m.srcdb, rows_sql);
		char *b = cluster_query_scalar(&target, m.tgtdb, rows_sql);

		ck_assert_ptr_nonnull(a);
		ck_assert_ptr_nonnull(b);
		ck_assert_msg(strcmp(a, b) == 0, "source: %s\ntarget: %s", a, b);
		free(a);
		free(b);
	}
	itest_assert_scalar(&target, m.tgtdb, "SELECT count(*) || '/' || sum(n) FROM fl",
	                    "8/344");
	cluster_destroy(&old);
}
END_TEST

Suite *
fidelity_suite(void)
{
	Suite *s = suite_create("fidelity");
	TCase *tc = tcase_create("fidelity");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_add_checked_fixture(tc, test_setup, NULL);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, full_identity_picks_the_identical_row_not_an_equal_one);
	tcase_add_test(tc, live_dml_over_every_type_cuts_over_exactly);
	tcase_add_test(tc, dml_during_the_copy_cuts_over_exactly);
	tcase_add_test(tc, full_identity_rows_from_an_older_server_match_by_value);
	suite_add_tcase(s, tc);
	return s;
}
