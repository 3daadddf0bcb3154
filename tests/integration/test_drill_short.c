/*
 * tests/integration/test_drill_short.c -- the short failover drill of issue 6,
 * run by make test (the full suite is make drill, tests/drill/).
 *
 *   short_drill_loses_nothing
 *       a live migration of pgbench (scale 1) under pgbench load, with
 *       kill -9 of sync during the schema, during the copy and twice while
 *       streaming, a fast restart of the source, an immediate restart of the
 *       target and a pg_terminate_backend of the walsender; then a cutover
 *       killed at each of its four moments (the first together with sync)
 *       and a row-by-row comparison of every table and sequence: no row
 *       lost, none duplicated, and every kill landed where it was aimed.
 *       The kills land at failpoints: the schema kill paused at the spawn
 *       of a pg_dump/pg_restore, the copy kill at the n-th committed part,
 *       the first streaming kill before the stream starts, the second at
 *       the n-th stream.after_apply_commit (a batch committed on the
 *       target, not yet confirmed to the source), the cutover kills at
 *       cutover.waiting (with sync), cutover.after_barrier_applied,
 *       schema.after_final_step (the n-th foreign key built) and
 *       cutover.before_drop.  The seed of the kill points is printed
 *       (DRILL_SEED replays it).
 *   short_drill_windows
 *       the windows of issue 13 (drill 6 of make drill, smaller): see the
 *       comment above the test.  DRILL_SHORT_ONLY=kills|windows runs one.
 *
 * The drill code is tests/drill/drill_lib.c, compiled into this file so that
 * run_integration needs no other source list (the Makefile links
 * every C file of tests/integration and tests/support).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/suites.h"

#include "tests/drill/drill_lib.c"

#define SHORT_TIMEOUT_S 240

static Cluster drill_source;
static Cluster drill_target;

static void
drill_clusters_setup(void)
{
	ck_assert(cluster_init(&drill_source, "drill-short-source", CLUSTER_LOGICAL));
	ck_assert(cluster_set(&drill_source, "logical_decoding_work_mem = 64kB"));
	ck_assert(cluster_init(&drill_target, "drill-short-target", 0));
	ck_assert(cluster_start(&drill_source));
	ck_assert(cluster_start(&drill_target));
}

static void
drill_clusters_teardown(void)
{
	cluster_destroy(&drill_source);
	cluster_destroy(&drill_target);
}

/* DRILL_SHORT_ONLY=kills or =windows runs only that test (while working
 * on one). */
static bool
short_only(const char *other)
{
	const char *only = getenv("DRILL_SHORT_ONLY");

	if (only == NULL || strcmp(only, other) != 0)
		return false;
	fprintf(stderr, "DRILL_SHORT_ONLY=%s: skipped\n", other);
	return true;
}

START_TEST(short_drill_loses_nothing)
{
	DrillStats st;
	DrillConfig cfg;
	const char *seed_env = getenv("DRILL_SEED");
	long long t0 = proc_now_ms();
	bool ok;

	ck_assert_msg(getenv("PGSTREAM_BIN") != NULL,
	              "PGSTREAM_BIN is not set (make check-integration sets it)");
	if (short_only("windows"))
		return;
	memset(&st, 0, sizeof(st));
	memset(&cfg, 0, sizeof(cfg));
	cfg.seed = seed_env != NULL && *seed_env != '\0'
	               ? strtoull(seed_env, NULL, 10)
	               : (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 16);
	cfg.scale = 1;
	cfg.split_mb = 1;
	cfg.jobs = 2;
	cfg.clients = 4;
	cfg.rate = 200;
	cfg.kills_schema = 1;
	cfg.kills_copy = 1;
	cfg.kills_stream = 2;
	/*
	 * Every moment of the cutover: while it waits for the barrier (with
	 * sync, as in a crash of the machine), right after sync applied the
	 * barrier, while it creates the deferred foreign keys (after the n-th)
	 * and once they are built, before the slot is dropped.  A cutover
	 * --freeze run again after a killed one must work on the source the
	 * killed one froze (freeze_source() turns default_transaction_read_only
	 * off for its own session); if that regresses, the drill fails with
	 * "ENGINE BUG".
	 */
	cfg.kills_cutover = 4;
	/* a lost target connection must be retried by sync itself */
	cfg.tolerate_lost_target = false;
	fprintf(stderr, "short drill: seed %llu (DRILL_SEED=%llu replays it)\n",
	        (unsigned long long) cfg.seed, (unsigned long long) cfg.seed);

	ok = drill_run_short(&drill_source, &drill_target, &cfg, &st);
	drill_print_figures(stderr, &st, cfg.seed,
	                    (double) (proc_now_ms() - t0) / 1000.0);
	ck_assert_msg(ok, "the short drill failed (seed %llu; see above)",
	              (unsigned long long) cfg.seed);
	ck_assert_int_eq(st.failures, 0);
	ck_assert_int_eq(st.rows_lost, 0);
	ck_assert_int_eq(st.rows_duplicated, 0);
	/* every kill landed where it was aimed: schema 1, copy 1, streaming 2,
	 * cutover 4 of which the first also kills sync */
	ck_assert_msg(st.kills_missed == 0, "%d kill(s) missed their moment "
	              "(\"KILL MISSED\" above)", st.kills_missed);
	ck_assert_int_eq(st.kills, cfg.kills_schema + cfg.kills_copy +
	                               cfg.kills_stream + cfg.kills_cutover + 1);
	ck_assert_int_eq(st.kills_by_phase[DRILL_PHASE_SCHEMA], 1);
	ck_assert_int_eq(st.kills_by_phase[DRILL_PHASE_COPY], 1);
	ck_assert_int_eq(st.kills_by_phase[DRILL_PHASE_CUTOVER], cfg.kills_cutover);
	/* at a failpoint: the schema, copy and both streaming kills, and the
	 * four cutover kills once the binary has the cutover's failpoints */
	ck_assert_int_eq(st.kills_at_failpoint,
	                 4 + (drill_binary_has("cutover.after_barrier_applied")
	                          ? cfg.kills_cutover
	                          : 0));
	ck_assert_int_eq(st.restarts, 2);
	ck_assert_int_eq(st.terminates, 1);
	ck_assert_int_eq(st.cutovers, 1);
	ck_assert_int_ge(st.tables_compared, 5);
	ck_assert_int_gt(st.rows_compared, 100000);
}
END_TEST

/*
 * The windows of issue 13, short: sync --spool under big multi-statement
 * transactions (streamed in progress) with UPDATE, DELETE and TRUNCATE ONLY
 * on an inheritance parent with children; kill -9 at each spool failpoint
 * with the target stopped; a cutover killed right after its freeze while a
 * writer commits; the next cutover ends the writer's session; every
 * acknowledged commit on the target; cutover run again refused twice.
 */
START_TEST(short_drill_windows)
{
	DrillStats st;
	DrillConfig cfg;
	const char *seed_env = getenv("DRILL_SEED");
	long long t0 = proc_now_ms();
	bool ok;
	bool spool_fps = drill_binary_has("stream.spool_flushed_mid_txn");
	bool cutover_fps = drill_binary_has("cutover.after_freeze");

	ck_assert_msg(getenv("PGSTREAM_BIN") != NULL,
	              "PGSTREAM_BIN is not set (make check-integration sets it)");
	if (short_only("kills"))
		return;
	memset(&st, 0, sizeof(st));
	memset(&cfg, 0, sizeof(cfg));
	cfg.seed = seed_env != NULL && *seed_env != '\0'
	               ? strtoull(seed_env, NULL, 10)
	               : (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 16);
	cfg.scale = 1;
	cfg.split_mb = 1;
	cfg.jobs = 2;
	cfg.clients = 4;
	cfg.rate = 10;
	cfg.windows_rate = 10;
	cfg.windows_seconds = 2;
	/* through the full load too: a TRUNCATE must never empty a table
	 * under the copy's snapshot (see drill_lib.h) */
	cfg.windows_truncate_early = true;
	cfg.kills_cutover = 1; /* cutover.after_freeze */
	fprintf(stderr, "short windows drill: seed %llu\n",
	        (unsigned long long) cfg.seed);
	ok = drill_run_windows(&drill_source, &drill_target, &cfg, &st);
	drill_print_figures(stderr, &st, cfg.seed,
	                    (double) (proc_now_ms() - t0) / 1000.0);
	ck_assert_msg(ok, "the short windows drill failed (seed %llu; see above)",
	              (unsigned long long) cfg.seed);
	ck_assert_int_eq(st.failures, 0);
	ck_assert_int_eq(st.rows_lost, 0);
	ck_assert_int_eq(st.rows_duplicated, 0);
	ck_assert_msg(st.kills_missed == 0, "%d kill(s) missed their moment "
	              "(\"KILL MISSED\" above)", st.kills_missed);
	/* one kill per spool failpoint (one timed kill without them) */
	ck_assert_int_eq(st.spool_kills, spool_fps ? 2 : 1);
	ck_assert_int_eq(st.kills_at_failpoint,
	                 (spool_fps ? 2 : 0) + (cutover_fps ? 1 : 0));
	ck_assert_int_eq(st.kills_by_phase[DRILL_PHASE_CUTOVER], cutover_fps ? 1 : 0);
	ck_assert_int_eq(st.cutovers, 1);
	ck_assert_int_gt(st.writer_acked, 0);
	ck_assert_int_eq(st.writer_missing, 0);
	if (cutover_fps)
	{
		/* the final cutover ended the writer's session */
		ck_assert_int_ge(st.writer_sessions_ended, 1);
		ck_assert_int_eq(st.cutover_refusals, 2);
	}
	/* pgbench 4 + parent, 2 children, big, writer, marker */
	ck_assert_int_ge(st.tables_compared, 10);
}
END_TEST

Suite *
drill_short_suite(void)
{
	Suite *s = suite_create("drill_short");
	TCase *tc = tcase_create("drill_short");

	tcase_add_unchecked_fixture(tc, drill_clusters_setup,
	                            drill_clusters_teardown);
	tcase_set_timeout(tc, SHORT_TIMEOUT_S);
	tcase_add_test(tc, short_drill_loses_nothing);
	tcase_add_test(tc, short_drill_windows);
	suite_add_tcase(s, tc);
	return s;
}
