/*
 * tests/integration/test_cutover.c -- `pgstream cutover` must finish or undo
 * itself, and never end a migration on a barrier it cannot vouch for.
 *
 * One source cluster (wal_level=logical) and one target cluster whose
 * databases belong to the non-superuser "migrator", as in test_stream.c.
 * Timing windows are hit with failpoints (engine/failpoint.h), never with
 * sleeps: a signal is raised at a named moment, or cutover pauses there
 * while the test acts.
 *
 *   a_wrong_target_is_refused_before_the_source_is_touched
 *       --freeze with --target naming a database that holds no migration:
 *       exit 1 naming the problem; the source was never frozen and its
 *       application session was not ended.
 *   cutover_again_after_success_leaves_the_source_frozen
 *       a second cutover --freeze after a successful one: exit 1 naming the
 *       problem; the source stays read-only (it must not reset a freeze it
 *       did not make) and its sessions are left alone.
 *   a_row_missing_on_the_target_is_refused
 *       a row deleted on the target behind pgstream's back: exit 1 with the
 *       table and both counts; nothing dropped, the source writable again.
 *   a_freeze_made_before_the_cutover_is_left_alone
 *       the operator froze the source; cutover --freeze then fails: the
 *       source stays read-only (not this run's freeze to undo).
 *   sigterm_after_the_barrier_undoes_the_cutover
 *       SIGTERM right after the barrier is written (sync not running): exit
 *       1 with a message, the source writable, the barrier disarmed; a write
 *       made afterwards reaches the target when sync runs again, and a
 *       second cutover completes with identical tables.
 *   sighup_after_the_freeze_unfreezes_and_ends_nobody
 *       SIGHUP (a closed SSH session) right after the freeze: exit 1 with a
 *       message, the source writable, no session ended, no barrier written.
 *   sigint_while_waiting_stops_promptly
 *       SIGINT while cutover waits for a paused sync: it stops within
 *       seconds, not at its 120 s timeout; the resumed sync does not stop at
 *       that barrier.
 *   a_killed_cutover_barrier_never_ends_the_migration
 *       cutover killed (kill -9) after sync applied its barrier; the
 *       application writes again; the next cutover refuses to trust the old
 *       barrier, sync run again resumes streaming and applies the write, and
 *       a new cutover completes with identical tables.
 *   a_cutover_killed_after_its_barrier_can_be_run_again
 *       the same kill with the source still frozen and no writes: cutover
 *       run again proves from the slot that nothing followed the old
 *       barrier and completes with it.
 *   a_barrier_whose_cutover_died_does_not_stop_sync
 *       cutover killed right after writing its barrier, sync paused: the
 *       resumed sync streams on past that barrier (its cutover is gone).
 *   freeze_ends_every_application_session_and_refuses_later_writes
 *       --freeze ends a session named "pgstream-app" and one in an open
 *       write transaction, and they are gone (not just signalled) before the
 *       barrier; a second cutover meanwhile is refused; an UPDATE committed
 *       after the barrier by a session that overrides
 *       default_transaction_read_only makes cutover refuse (an UPDATE
 *       changes no row count) instead of losing it.
 *   freeze_as_a_non_superuser_ends_other_users_sessions
 *       cutover as a non-superuser with pg_signal_backend, which sees no
 *       backend_type for other users' sessions, still ends them.
 *   a_migration_with_its_own_state_schema_cuts_over
 *       sync, status and cutover with --state-schema (a name that needs
 *       quoting, on a source with its own schema "pgstream"): streams, status
 *       reads it, cutover completes and the state schema is dropped; status
 *       and cutover given another name find no migration there.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/failpoint_ctl.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define TEST_TIMEOUT_S 240
#define CMD_TIMEOUT_MS 120000
#define PHASE_TIMEOUT_MS 120000
#define MAX_ARGS 32

static Cluster source;
static Cluster target;

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "cutover-source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "cutover-target", 0));
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

static void
test_setup(void)
{
	ck_assert(cluster_wait_for(&source, "postgres",
	                           "SELECT count(*) = 0 FROM pg_replication_slots"
	                           " WHERE active",
	                           10000));
	ck_assert(cluster_psql(&source, "postgres",
	                       "SELECT pg_drop_replication_slot(slot_name)"
	                       " FROM pg_replication_slots"));
}

/* ---- one migration per test: databases <name>_src, <name>_tgt ---- */

typedef struct Mig
{
	char srcdb[64];
	char tgtdb[64];
	char slot[64];
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
} Mig;

/* Databases with table t (100 rows) on the source; nothing started yet. */
static void
mig_init(Mig *m, const char *name)
{
	snprintf(m->srcdb, sizeof(m->srcdb), "%s_src", name);
	snprintf(m->tgtdb, sizeof(m->tgtdb), "%s_tgt", name);
	snprintf(m->slot, sizeof(m->slot), "%s_slot", name);
	itest_make_db(&source, m->srcdb, NULL);
	itest_make_db(&target, m->tgtdb, "migrator");
	ck_assert(cluster_psql(&source, m->srcdb,
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t SELECT i, 'v' || i"
	                       " FROM generate_series(1, 100) i"));
	itest_conninfo(m->src, &source, m->srcdb);
	itest_migrator_conninfo(m->tgt, &target, m->tgtdb);
}

static void
spawn_sync(Proc *p, const Mig *m)
{
	const char *argv[] = {itest_pgstream_bin(), "sync", "--source", m->src,
	                      "--target", m->tgt, "--slot", m->slot, "--quiet",
	                      NULL};

	ck_assert(proc_spawn(p, argv, NULL));
}

/* The phase recorded on the target ("" if there is none). */
static char *
phase_of(const Mig *m)
{
	char *exists = cluster_query_scalar(&target, m->tgtdb,
	                                    "SELECT to_regclass('pgstream.migration')"
	                                    " IS NOT NULL");
	char *v = NULL;

	if (exists != NULL && strcmp(exists, "t") == 0)
		v = cluster_query_scalar(&target, m->tgtdb,
		                         "SELECT phase FROM pgstream.migration");
	free(exists);
	return v != NULL ? v : strdup("");
}

/* Poll until the target says phase; sync must keep running meanwhile. */
static void
wait_for_phase(const Mig *m, const char *phase, Proc *sync)
{
	long long deadline = proc_now_ms() + PHASE_TIMEOUT_MS;

	for (;;)
	{
		int st = proc_wait(sync, 0);
		char *now = phase_of(m);
		bool done = strcmp(now, phase) == 0;

		if (st != PROC_TIMEOUT)
		{
			itest_print_proc("pgstream sync", sync, st);
			ck_abort_msg("sync exited with %d waiting for phase %s (at %s)",
			             st, phase, now);
		}
		if (!done && proc_now_ms() > deadline)
			ck_abort_msg("phase %s not reached (at %s)", phase, now);
		free(now);
		if (done)
			return;
		itest_sleep_ms(100);
	}
}

/* sync started and streaming */
static void
start_streaming(Proc *sync, const Mig *m)
{
	spawn_sync(sync, m);
	wait_for_phase(m, "streaming", sync);
}

/*
 * Poll sql (one boolean) on the target until true while sync keeps running;
 * asserts both.
 */
static void
assert_applied(const Mig *m, const char *sql, Proc *sync, const char *what)
{
	long long deadline = proc_now_ms() + 60000;

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
		ck_assert_msg(proc_now_ms() < deadline, "%s did not happen in 60 s",
		              what);
		itest_sleep_ms(100);
	}
}

typedef struct CmdResult
{
	int status;
	char *out;
	char *err;
	double seconds;
} CmdResult;

static void
cmd_free(CmdResult *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

static int
cutover_argv(const char *argv[], const char *src, const char *tgt,
             const char *const extra[])
{
	int n = 0;

	argv[n++] = itest_pgstream_bin();
	argv[n++] = "cutover";
	argv[n++] = "--source";
	argv[n++] = src;
	argv[n++] = "--target";
	argv[n++] = tgt;
	for (int i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	return n;
}

/* pgstream cutover --source S --target T <extra...> with env (may be NULL). */
static void
run_cutover(CmdResult *r, const char *src, const char *tgt,
            const char *const extra[], const char *const env[])
{
	const char *argv[MAX_ARGS];
	long long start = proc_now_ms();

	cutover_argv(argv, src, tgt, extra);
	r->status = proc_run(argv, env, CMD_TIMEOUT_MS, &r->out, &r->err);
	ck_assert_ptr_nonnull(r->out);
	ck_assert_ptr_nonnull(r->err);
	r->seconds = (double) (proc_now_ms() - start) / 1000.0;
	fprintf(stderr, "pgstream cutover: status %d in %.1f s; stderr:\n%s",
	        r->status, r->seconds, r->err);
}

/* A failed cutover: exactly `status`, and stderr contains `needle`. */
static void
assert_refused(const CmdResult *r, int status, const char *needle)
{
	if (r->status != status || strstr(r->err, needle) == NULL)
		itest_print_output("pgstream cutover", r->status, r->out, r->err);
	ck_assert_int_eq(r->status, status);
	ck_assert_msg(strstr(r->err, needle) != NULL,
	              "cutover stderr does not say \"%s\"", needle);
}

/* Run a cutover that must succeed. */
static void
cutover_ok(const Mig *m, bool freeze)
{
	static const char *const frozen[] = {"--freeze", "--timeout", "120", NULL};
	static const char *const plain[] = {"--timeout", "120", NULL};
	CmdResult r;

	run_cutover(&r, m->src, m->tgt, freeze ? frozen : plain, NULL);
	if (r.status != 0)
		itest_print_output("pgstream cutover", r.status, r.out, r.err);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strstr(r.out, "row counts: equal") != NULL,
	              "cutover report: %s", r.out);
	cmd_free(&r);
}

/* A new session on the source database: is it read-only by default? */
static bool
source_read_only(const Mig *m)
{
	char *v = cluster_query_scalar(&source, m->srcdb,
	                               "SHOW default_transaction_read_only");
	bool ro;

	ck_assert_ptr_nonnull(v);
	ro = strcmp(v, "on") == 0;
	free(v);
	return ro;
}

static void
unfreeze(const Mig *m)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "ALTER DATABASE %s RESET default_transaction_read_only", m->srcdb);
	ck_assert(cluster_psql(&source, "postgres", sql));
}

/* A session on the source, as an application would hold one. */
static PGconn *
app_session(const Mig *m, const char *application_name)
{
	char extra[128];
	PGconn *c;

	snprintf(extra, sizeof(extra), "application_name=%s", application_name);
	c = cluster_connect(&source, m->srcdb, extra);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* Is the session still usable (not ended by anyone)? */
static bool
session_alive(PGconn *c)
{
	PGresult *res = PQexec(c, "SELECT 1");
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;

	PQclear(res);
	return ok;
}

/* Run sql on a session that must succeed. */
static void
session_exec(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);

	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK ||
	                  PQresultStatus(res) == PGRES_TUPLES_OK,
	              "%s: %s", sql, PQerrorMessage(c));
	PQclear(res);
}

static void
assert_t_identical(const Mig *m)
{
	char *a = itest_table_fingerprint(&source, m->srcdb, "public.t");
	char *b = itest_table_fingerprint(&target, m->tgtdb, "public.t");

	ck_assert_msg(strcmp(a, b) == 0, "table t differs: source %s, target %s",
	              a, b);
	free(a);
	free(b);
}

static void
assert_no_traces(const Mig *m)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'",
	         m->slot);
	itest_assert_scalar(&source, "postgres", sql, "0");
	itest_assert_scalar(&target, m->tgtdb,
	                    "SELECT count(*) FROM pg_namespace"
	                    " WHERE nspname = 'pgstream'",
	                    "0");
}

/* The migration state and slot are still there. */
static void
assert_state_kept(const Mig *m)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'",
	         m->slot);
	itest_assert_scalar(&source, "postgres", sql, "1");
	itest_assert_scalar(&target, m->tgtdb,
	                    "SELECT count(*) FROM pg_namespace"
	                    " WHERE nspname = 'pgstream'",
	                    "1");
}

/* Does the source database carry a default_transaction_read_only setting? */
static void
assert_never_frozen_setting(const Mig *m)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d"
	         " ON d.oid = s.setdatabase WHERE d.datname = '%s'",
	         m->srcdb);
	itest_assert_scalar(&source, "postgres", sql, "0");
}

/* ---- issue 14 item 5: a wrong --target ---- */

START_TEST(a_wrong_target_is_refused_before_the_source_is_touched)
{
	static const char *const args[] = {"--freeze", "--timeout", "30", NULL};
	Mig m;
	PGconn *app;
	CmdResult r;

	mig_init(&m, "wt");
	/* never a target: an empty database */
	app = app_session(&m, "app");
	run_cutover(&r, m.src, m.tgt, args, NULL);
	assert_refused(&r, 1, "target database \"wt_tgt\" holds no pgstream "
	                      "migration");
	cmd_free(&r);
	ck_assert_msg(session_alive(app),
	              "cutover ended an application session on the source before "
	              "it found out there is no migration");
	ck_assert(!source_read_only(&m));
	assert_never_frozen_setting(&m);
	PQfinish(app);
}
END_TEST

/* ---- issue 13 item 6: cutover again after a successful one ---- */

START_TEST(cutover_again_after_success_leaves_the_source_frozen)
{
	static const char *const args[] = {"--freeze", "--timeout", "30", NULL};
	Mig m;
	Proc sync;
	PGconn *app;
	CmdResult r;

	mig_init(&m, "again");
	start_streaming(&sync, &m);
	cutover_ok(&m, true);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	ck_assert(source_read_only(&m));

	app = app_session(&m, "app");
	run_cutover(&r, m.src, m.tgt, args, NULL);
	assert_refused(&r, 1, "target database \"again_tgt\" holds no pgstream "
	                      "migration");
	cmd_free(&r);
	ck_assert_msg(source_read_only(&m),
	              "a second cutover made the old source writable again");
	ck_assert_msg(session_alive(app), "a second cutover ended a session");
	PQfinish(app);
	unfreeze(&m);
	assert_t_identical(&m);
}
END_TEST

/* ---- issue 13: a row-count difference is refused ---- */

START_TEST(a_row_missing_on_the_target_is_refused)
{
	static const char *const args[] = {"--freeze", "--timeout", "60", NULL};
	Mig m;
	Proc sync;
	CmdResult r;

	mig_init(&m, "rc");
	start_streaming(&sync, &m);
	ck_assert(cluster_psql(&target, m.tgtdb, "DELETE FROM t WHERE id = 7"));
	run_cutover(&r, m.src, m.tgt, args, NULL);
	assert_refused(&r, 1, "row counts differ for public.t: 100 on source, "
	                      "99 on target");
	ck_assert_msg(strstr(r.err, "row counts differ between source and target; "
	                            "the migration state is kept for inspection") !=
	                  NULL,
	              "no summary line");
	cmd_free(&r);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_state_kept(&m);
	ck_assert_msg(!source_read_only(&m), "the refused cutover left the "
	                                     "source read-only");
}
END_TEST

/*
 * An unlogged table: assess warns that it is copied once, at the snapshot,
 * and its later changes are not streamed (they are not in the WAL).  The
 * cutover then agrees with what the operator was told: it says the counts
 * of that table differ and why, and completes (issue 16 item 4: it refused,
 * "row counts differ").
 */
START_TEST(an_unlogged_table_changed_after_the_snapshot_does_not_refuse_the_cutover)
{
	static const char *const args[] = {"--freeze", "--timeout", "60", NULL};
	Mig m;
	Proc sync;
	CmdResult r;

	mig_init(&m, "ul");
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);"
	                       "INSERT INTO scratch SELECT generate_series(1, 10)"));
	start_streaming(&sync, &m);
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "INSERT INTO scratch SELECT generate_series(11, 15);"
	                       "INSERT INTO t VALUES (1000, 'streamed')"));
	assert_applied(&m, "SELECT count(*) = 1 FROM t WHERE id = 1000", &sync,
	               "applying the insert");
	run_cutover(&r, m.src, m.tgt, args, NULL);
	if (r.status != 0)
		itest_print_output("pgstream cutover", r.status, r.out, r.err);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strstr(r.err, "public.scratch is unlogged: copied once, at the snapshot "
	                            "(its later changes are not in the WAL): 15 rows on the "
	                            "source, 10 on the target; not compared") != NULL,
	              "%s", r.err);
	cmd_free(&r);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	itest_assert_scalar(&target, m.tgtdb, "SELECT count(*) FROM t", "101");
}
END_TEST

/*
 * A migration whose state was made by an older pgstream (no cutover_lsn,
 * cutover_pid columns: dropped here to make one) is resumed by sync and cut
 * over by this one: both bring the state up to date first.
 */
START_TEST(a_state_made_by_an_older_pgstream_is_brought_up_to_date)
{
	static const char *const args[] = {"--freeze", "--timeout", "60", NULL};
	Mig m;
	Proc sync;
	CmdResult r;
	int status;

	mig_init(&m, "up");
	start_streaming(&sync, &m);
	ck_assert(proc_kill(&sync, SIGTERM));
	status = proc_wait(&sync, 60000);
	ck_assert_int_eq(status, 1);
	proc_release(&sync);
	ck_assert(cluster_psql(&target, m.tgtdb, "ALTER TABLE pgstream.migration"
	                                         " DROP COLUMN cutover_lsn, DROP COLUMN cutover_pid"));
	start_streaming(&sync, &m);
	ck_assert(cluster_psql(&source, m.srcdb, "INSERT INTO t VALUES (1000, 'after')"));
	assert_applied(&m, "SELECT count(*) = 1 FROM t WHERE id = 1000", &sync, "the insert");
	run_cutover(&r, m.src, m.tgt, args, NULL);
	if (r.status != 0)
		itest_print_output("pgstream cutover", r.status, r.out, r.err);
	ck_assert_int_eq(r.status, 0);
	cmd_free(&r);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	itest_assert_scalar(&target, m.tgtdb, "SELECT count(*) FROM t", "101");
}
END_TEST

/*
 * The operator froze the source before cutover --freeze, which then fails
 * (here on a row count): the freeze it found is not its to undo.
 */
START_TEST(a_freeze_made_before_the_cutover_is_left_alone)
{
	static const char *const args[] = {"--freeze", "--timeout", "60", NULL};
	Mig m;
	Proc sync;
	CmdResult r;
	char sql[256];

	mig_init(&m, "prefrz");
	start_streaming(&sync, &m);
	snprintf(sql, sizeof(sql),
	         "ALTER DATABASE %s SET default_transaction_read_only = on",
	         m.srcdb);
	ck_assert(cluster_psql(&source, "postgres", sql));
	ck_assert(cluster_psql(&target, m.tgtdb, "DELETE FROM t WHERE id = 9"));
	run_cutover(&r, m.src, m.tgt, args, NULL);
	assert_refused(&r, 1, "row counts differ for public.t: 100 on source, "
	                      "99 on target");
	ck_assert_msg(strstr(r.err, "stays read-only, as it was before this "
	                            "cutover") != NULL,
	              "cutover does not say it left the freeze alone");
	cmd_free(&r);
	ck_assert_msg(source_read_only(&m),
	              "cutover reset a freeze it did not make");
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	unfreeze(&m);
}
END_TEST

/* ---- issue 14 item 3: signals ---- */

START_TEST(sigterm_after_the_barrier_undoes_the_cutover)
{
	static const char *const args[] = {"--freeze", "--timeout", "60", NULL};
	static const char *const env[] = {
	    "PGSTREAM_FAILPOINTS=cutover.after_barrier=sigterm", NULL};
	Mig m;
	Proc sync;
	CmdResult r;

	mig_init(&m, "term");
	start_streaming(&sync, &m);
	/* as in the report: the SSH session that ran sync is gone too */
	ck_assert(proc_kill(&sync, SIGKILL));
	ck_assert_int_eq(proc_wait(&sync, 30000), 128 + SIGKILL);
	proc_release(&sync);

	run_cutover(&r, m.src, m.tgt, args, env);
	assert_refused(&r, 1, "cutover stopped by SIGTERM");
	ck_assert_msg(strstr(r.err, "the source database \"term_src\" is writable "
	                            "again") != NULL,
	              "the message does not say the source is writable again");
	ck_assert_msg(r.seconds < 30, "cutover took %.1f s to stop", r.seconds);
	cmd_free(&r);
	ck_assert_msg(!source_read_only(&m), "SIGTERM left the source read-only");
	itest_assert_scalar(&target, m.tgtdb,
	                    "SELECT cutover_token IS NULL FROM pgstream.migration",
	                    "t");

	/* the application writes again; a later sync must carry it */
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "UPDATE t SET v = 'after the signal' WHERE id = 1"));
	spawn_sync(&sync, &m);
	assert_applied(&m, "SELECT v = 'after the signal' FROM t WHERE id = 1",
	               &sync, "the UPDATE after the interrupted cutover");
	wait_for_phase(&m, "streaming", &sync);
	cutover_ok(&m, true);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	unfreeze(&m);
	assert_t_identical(&m);
	assert_no_traces(&m);
}
END_TEST

START_TEST(sighup_after_the_freeze_unfreezes_and_ends_nobody)
{
	static const char *const args[] = {"--freeze", "--timeout", "60", NULL};
	static const char *const env[] = {
	    "PGSTREAM_FAILPOINTS=cutover.after_freeze=sighup", NULL};
	Mig m;
	Proc sync;
	PGconn *app;
	CmdResult r;

	mig_init(&m, "hup");
	start_streaming(&sync, &m);
	app = app_session(&m, "app");
	run_cutover(&r, m.src, m.tgt, args, env);
	assert_refused(&r, 1, "cutover stopped by SIGHUP");
	ck_assert_msg(strstr(r.err, "the source database \"hup_src\" is writable "
	                            "again") != NULL,
	              "the message does not say the source is writable again");
	cmd_free(&r);
	ck_assert_msg(!source_read_only(&m), "SIGHUP left the source read-only");
	assert_never_frozen_setting(&m);
	ck_assert_msg(session_alive(app), "sessions were ended after the signal");
	PQfinish(app);
	/* no barrier: sync streams on */
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "UPDATE t SET v = 'after hup' WHERE id = 2"));
	assert_applied(&m, "SELECT v = 'after hup' FROM t WHERE id = 2", &sync,
	               "the UPDATE after SIGHUP");
	cutover_ok(&m, false);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_t_identical(&m);
}
END_TEST

START_TEST(sigint_while_waiting_stops_promptly)
{
	static const char *const args[] = {"--freeze", "--timeout", "120", NULL};
	/* the third poll for the barrier: cutover is inside its wait */
	static const char *const env[] = {
	    "PGSTREAM_FAILPOINTS=cutover.waiting=sigint@3", NULL};
	Mig m;
	Proc sync;
	CmdResult r;

	mig_init(&m, "int");
	start_streaming(&sync, &m);
	ck_assert(proc_kill(&sync, SIGSTOP));
	run_cutover(&r, m.src, m.tgt, args, env);
	ck_assert(proc_kill(&sync, SIGCONT));
	assert_refused(&r, 1, "cutover stopped by SIGINT");
	ck_assert_msg(r.seconds < 10, "SIGINT took %.1f s to stop cutover",
	              r.seconds);
	cmd_free(&r);
	ck_assert(!source_read_only(&m));
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "UPDATE t SET v = 'after int' WHERE id = 3"));
	assert_applied(&m, "SELECT v = 'after int' FROM t WHERE id = 3", &sync,
	               "the UPDATE after SIGINT");
	cutover_ok(&m, false);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_t_identical(&m);
}
END_TEST

START_TEST(a_killed_cutover_barrier_never_ends_the_migration)
{
	static const char *const args[] = {"--freeze", "--timeout", "60", NULL};
	static const char *const env[] = {
	    "PGSTREAM_FAILPOINTS=cutover.after_barrier_applied=crash", NULL};
	Mig m;
	Proc sync;
	CmdResult r;

	mig_init(&m, "kill");
	start_streaming(&sync, &m);
	run_cutover(&r, m.src, m.tgt, args, env);
	ck_assert_int_eq(r.status, 128 + SIGKILL);
	cmd_free(&r);
	/* sync applied the barrier and stopped */
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);

	/* the operator makes the source writable; the application writes */
	ck_assert(source_read_only(&m));
	unfreeze(&m);
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "UPDATE t SET v = 'after the kill' WHERE id = 4"));

	/* the old barrier must not end the migration */
	run_cutover(&r, m.src, m.tgt, args, NULL);
	assert_refused(&r, 1, "of a cutover that did not finish");
	cmd_free(&r);
	ck_assert(!source_read_only(&m));
	assert_state_kept(&m);

	spawn_sync(&sync, &m);
	assert_applied(&m, "SELECT v = 'after the kill' FROM t WHERE id = 4",
	               &sync, "the UPDATE after the killed cutover");
	wait_for_phase(&m, "streaming", &sync);
	cutover_ok(&m, true);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	unfreeze(&m);
	assert_t_identical(&m);
	assert_no_traces(&m);
}
END_TEST

/*
 * The same kill, but the source stays frozen and nobody writes: cutover run
 * again proves from the slot that nothing came after the old barrier and
 * completes with it (what an operator does after a lost terminal).
 */
START_TEST(a_cutover_killed_after_its_barrier_can_be_run_again)
{
	static const char *const env[] = {
	    "PGSTREAM_FAILPOINTS=cutover.after_barrier_applied=crash", NULL};
	static const char *const args[] = {"--freeze", "--timeout", "60", NULL};
	Mig m;
	Proc sync;
	CmdResult r;

	mig_init(&m, "rerun");
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "CREATE SEQUENCE s; SELECT setval('s', 42)"));
	start_streaming(&sync, &m);
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "UPDATE t SET v = 'before the kill' WHERE id = 12"));
	run_cutover(&r, m.src, m.tgt, args, env);
	ck_assert_int_eq(r.status, 128 + SIGKILL);
	cmd_free(&r);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	ck_assert(source_read_only(&m));

	cutover_ok(&m, true);
	ck_assert_msg(source_read_only(&m), "the source must stay frozen");
	unfreeze(&m);
	assert_t_identical(&m);
	itest_assert_scalar(&target, m.tgtdb, "SELECT last_value FROM s", "42");
	assert_no_traces(&m);
}
END_TEST

/*
 * The same when cutover dies before sync reaches its barrier (sync paused
 * here): the barrier is armed but its cutover is gone, so sync streams on
 * past it instead of stopping there.
 */
START_TEST(a_barrier_whose_cutover_died_does_not_stop_sync)
{
	static const char *const args[] = {"--freeze", "--timeout", "60", NULL};
	static const char *const env[] = {
	    "PGSTREAM_FAILPOINTS=cutover.after_barrier=crash", NULL};
	Mig m;
	Proc sync;
	CmdResult r;

	mig_init(&m, "dead");
	start_streaming(&sync, &m);
	ck_assert(proc_kill(&sync, SIGSTOP));
	run_cutover(&r, m.src, m.tgt, args, env);
	ck_assert_int_eq(r.status, 128 + SIGKILL);
	cmd_free(&r);
	/* kill -9 cannot be undone: the operator unfreezes, the application writes */
	ck_assert(source_read_only(&m));
	unfreeze(&m);
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "UPDATE t SET v = 'after the dead cutover' WHERE id = 8"));
	ck_assert(proc_kill(&sync, SIGCONT));
	assert_applied(&m, "SELECT v = 'after the dead cutover' FROM t WHERE id = 8",
	               &sync, "the UPDATE after the dead cutover's barrier");
	wait_for_phase(&m, "streaming", &sync);
	cutover_ok(&m, true);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	unfreeze(&m);
	assert_t_identical(&m);
	assert_no_traces(&m);
}
END_TEST

/* ---- issue 13: the --freeze race ---- */

START_TEST(freeze_ends_every_application_session_and_refuses_later_writes)
{
	static const char *const args[] = {"--freeze", "--timeout", "60", NULL};
	FailpointDir fd;
	char env_dir[PATH_MAX + 64];
	const char *env[] = {"PGSTREAM_FAILPOINTS=cutover.before_barrier=pause;"
	                     "cutover.after_barrier=pause",
	                     env_dir, NULL};
	const char *argv[MAX_ARGS];
	Mig m;
	Proc sync;
	Proc cut;
	PGconn *named;
	PGconn *writer;
	PGconn *late;
	char sql[256];
	int status;
	char *err;

	mig_init(&m, "race");
	start_streaming(&sync, &m);
	named = app_session(&m, "pgstream-app");
	writer = app_session(&m, "app");
	session_exec(writer, "BEGIN");
	session_exec(writer, "UPDATE t SET v = 'uncommitted' WHERE id = 5");

	ck_assert(fpctl_init(&fd));
	fpctl_env(&fd, env_dir, sizeof(env_dir));
	cutover_argv(argv, m.src, m.tgt, args);
	ck_assert(proc_spawn(&cut, argv, env));
	ck_assert_msg(fpctl_wait(&fd, "cutover.before_barrier", 60000),
	              "cutover did not reach the barrier");
	/* every application session is gone, not just signalled */
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_stat_activity WHERE pid IN (%d, %d)",
	         PQbackendPID(named), PQbackendPID(writer));
	itest_assert_scalar(&source, "postgres", sql, "0");
	ck_assert(!session_alive(named));
	PQfinish(named);
	PQfinish(writer);
	/* a second cutover meanwhile is refused before it does anything */
	{
		CmdResult r2;

		run_cutover(&r2, m.src, m.tgt, args, NULL);
		assert_refused(&r2, 1, "another pgstream cutover is running for this "
		                       "migration");
		cmd_free(&r2);
	}
	/* a new session is read-only by default */
	late = app_session(&m, "late");
	{
		PGresult *res = PQexec(late, "UPDATE t SET v = 'refused' WHERE id = 6");

		ck_assert_msg(PQresultStatus(res) == PGRES_FATAL_ERROR &&
		                  strstr(PQerrorMessage(late), "read-only") != NULL,
		              "a new session could write to the frozen source: %s",
		              PQerrorMessage(late));
		PQclear(res);
	}
	fpctl_release(&fd, "cutover.before_barrier");
	ck_assert_msg(fpctl_wait(&fd, "cutover.after_barrier", 60000),
	              "cutover did not write the barrier");
	/* a session that overrides the freeze commits after the barrier */
	session_exec(late, "SET default_transaction_read_only = off");
	session_exec(late, "UPDATE t SET v = 'after the barrier' WHERE id = 6");
	fpctl_release(&fd, "cutover.after_barrier");
	status = proc_wait(&cut, CMD_TIMEOUT_MS);
	err = proc_stderr(&cut);
	fprintf(stderr, "cutover: %d\n%s", status, err);
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "the source was written after the barrier") !=
	                  NULL,
	              "cutover does not say the source was written after the "
	              "barrier");
	free(err);
	proc_release(&cut);
	fpctl_cleanup(&fd);
	PQfinish(late);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_state_kept(&m);
	ck_assert(!source_read_only(&m));

	/* sync resumes and carries the late UPDATE; a new cutover completes */
	spawn_sync(&sync, &m);
	assert_applied(&m, "SELECT v = 'after the barrier' FROM t WHERE id = 6",
	               &sync, "the UPDATE committed after the barrier");
	wait_for_phase(&m, "streaming", &sync);
	cutover_ok(&m, true);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	unfreeze(&m);
	assert_t_identical(&m);
	assert_no_traces(&m);
}
END_TEST

/*
 * cutover as a non-superuser with pg_signal_backend (as on a managed
 * service): it cannot see other users' sessions' backend_type or
 * backend_start in pg_stat_activity, and must still end them.  It is
 * stopped by SIGTERM at the barrier, which undoes the freeze.
 */
START_TEST(freeze_as_a_non_superuser_ends_other_users_sessions)
{
	static const char *const args[] = {"--freeze", "--timeout", "60", NULL};
	FailpointDir fd;
	char env_dir[PATH_MAX + 64];
	const char *env[] = {"PGSTREAM_FAILPOINTS=cutover.before_barrier=pause",
	                     env_dir, NULL};
	const char *argv[MAX_ARGS];
	char src_nsu[ITEST_CONNINFO_MAX + 32];
	char sql[256];
	Mig m;
	Proc sync;
	Proc cut;
	PGconn *app;
	int status;
	char *err;

	mig_init(&m, "nsu");
	ck_assert(cluster_psql(&source, "postgres",
	                       "CREATE ROLE nsu_cut LOGIN REPLICATION;"
	                       "GRANT pg_signal_backend TO nsu_cut;"
	                       "ALTER DATABASE nsu_src OWNER TO nsu_cut;"
	                       "CREATE ROLE nsu_app LOGIN"));
	ck_assert(cluster_psql(&source, m.srcdb, "GRANT ALL ON t TO nsu_app"));
	start_streaming(&sync, &m);
	app = cluster_connect(&source, m.srcdb, "user=nsu_app application_name=app");
	ck_assert_ptr_nonnull(app);
	session_exec(app, "BEGIN");
	session_exec(app, "UPDATE t SET v = 'open' WHERE id = 10");

	snprintf(src_nsu, sizeof(src_nsu), "%s user=nsu_cut", m.src);
	ck_assert(fpctl_init(&fd));
	fpctl_env(&fd, env_dir, sizeof(env_dir));
	cutover_argv(argv, src_nsu, m.tgt, args);
	ck_assert(proc_spawn(&cut, argv, env));
	ck_assert_msg(fpctl_wait(&fd, "cutover.before_barrier", 60000),
	              "cutover did not reach the barrier");
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_stat_activity WHERE pid = %d",
	         PQbackendPID(app));
	itest_assert_scalar(&source, "postgres", sql, "0");
	ck_assert(!session_alive(app));
	PQfinish(app);
	ck_assert(proc_kill(&cut, SIGTERM));
	fpctl_release(&fd, "cutover.before_barrier");
	status = proc_wait(&cut, CMD_TIMEOUT_MS);
	err = proc_stderr(&cut);
	fprintf(stderr, "cutover: %d\n%s", status, err);
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "cutover stopped by SIGTERM") != NULL,
	              "no message about SIGTERM");
	free(err);
	proc_release(&cut);
	fpctl_cleanup(&fd);
	ck_assert(!source_read_only(&m));
	/* no barrier was written: sync streams on */
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "UPDATE t SET v = 'after nsu' WHERE id = 11"));
	assert_applied(&m, "SELECT v = 'after nsu' FROM t WHERE id = 11", &sync,
	               "the UPDATE after the stopped cutover");
	ck_assert(proc_kill(&sync, SIGKILL));
	proc_wait(&sync, 30000);
	proc_release(&sync);
}
END_TEST

/* ---- issue 14 item 1: the state schema's name is configurable ---- */

/*
 * A name that needs every kind of quoting: upper case, a space, double and
 * single quotes, a dot and a star (a pg_dump pattern character).
 */
#define OWN_STATE "Mig \"state\" o'x.y*"
#define OWN_STATE_SQL "\"Mig \"\"state\"\" o'x.y*\""

/* pgstream status --target T <extra...>: exit status, stdout in *out. */
static int
run_status(const Mig *m, const char *const extra[], char **out)
{
	const char *argv[MAX_ARGS];
	char *err = NULL;
	int n = 0;
	int status;

	argv[n++] = itest_pgstream_bin();
	argv[n++] = "status";
	argv[n++] = "--target";
	argv[n++] = m->tgt;
	for (int i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, out, &err);
	itest_print_output("pgstream status", status, *out, err);
	free(err);
	return status;
}

/*
 * A live migration whose state lives in a schema of another name (the
 * source has its own schema "pgstream", which is migrated like any other):
 * sync, status and cutover all given the same --state-schema work
 * together; status and cutover given another name say that schema holds no
 * migration (as for a target that never was one) and change nothing.
 */
START_TEST(a_migration_with_its_own_state_schema_cuts_over)
{
	static const char *const own[] = {"--state-schema", OWN_STATE, NULL};
	static const char *const own_cutover[] = {"--state-schema", OWN_STATE, "--freeze",
	                                          "--timeout", "120", NULL};
	static const char *const other[] = {"--state-schema", "elsewhere", "--freeze",
	                                    "--timeout", "30", NULL};
	static const char *const plain[] = {"--freeze", "--timeout", "30", NULL};
	Mig m;
	Proc sync;
	CmdResult r;
	char *out = NULL;

	mig_init(&m, "own");
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "CREATE SCHEMA pgstream;"
	                       "CREATE TABLE pgstream.orders (id int PRIMARY KEY, v text);"
	                       "INSERT INTO pgstream.orders SELECT i, 'o' || i"
	                       " FROM generate_series(1, 100) i"));
	{
		const char *argv[] = {itest_pgstream_bin(), "sync", "--source", m.src,
		                      "--target", m.tgt, "--slot", m.slot, "--quiet",
		                      "--state-schema", OWN_STATE, NULL};

		ck_assert(proc_spawn(&sync, argv, NULL));
	}
	assert_applied(&m, "SELECT phase = 'streaming' FROM " OWN_STATE_SQL ".migration",
	               &sync, "streaming");
	ck_assert(cluster_psql(&source, m.srcdb,
	                       "INSERT INTO t VALUES (101, 'live');"
	                       "UPDATE pgstream.orders SET v = 'changed' WHERE id = 7;"
	                       "INSERT INTO pgstream.orders VALUES (101, 'live')"));
	assert_applied(&m, "SELECT count(*) = 101 FROM pgstream.orders", &sync,
	               "the change to the user's schema pgstream");
	assert_applied(&m, "SELECT applied_lsn IS NOT NULL FROM " OWN_STATE_SQL ".migration",
	               &sync, "a recorded applied position");

	/* status reads the state where it is */
	ck_assert_int_eq(run_status(&m, own, &out), 0);
	ck_assert_msg(strstr(out, "phase: streaming\nsource database: own_src (slot \"own_slot\", "
	                          "live sync)\n") != NULL, "%s", out);
	free(out);
	/* and, asked about another schema, says there is nothing there */
	ck_assert_int_eq(run_status(&m, NULL, &out), 0);
	ck_assert_str_eq(out, "phase: none\nno pgstream migration state in schema \"pgstream\" "
	                      "on this target\n");
	free(out);

	/* cutover with the wrong name: refused before the source is touched */
	run_cutover(&r, m.src, m.tgt, plain, NULL);
	assert_refused(&r, 1, "target database \"own_tgt\" holds no pgstream migration in "
	                      "schema \"pgstream\"");
	cmd_free(&r);
	run_cutover(&r, m.src, m.tgt, other, NULL);
	assert_refused(&r, 1, "target database \"own_tgt\" holds no pgstream migration in "
	                      "schema \"elsewhere\"");
	cmd_free(&r);
	ck_assert(!source_read_only(&m));
	assert_never_frozen_setting(&m);

	run_cutover(&r, m.src, m.tgt, own_cutover, NULL);
	if (r.status != 0)
		itest_print_output("pgstream cutover", r.status, r.out, r.err);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strstr(r.out, "row counts: equal") != NULL, "cutover report: %s", r.out);
	cmd_free(&r);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	unfreeze(&m);

	assert_t_identical(&m);
	{
		char *a = itest_table_fingerprint(&source, m.srcdb, "pgstream.orders");
		char *b = itest_table_fingerprint(&target, m.tgtdb, "pgstream.orders");

		ck_assert_str_eq(a, b);
		free(a);
		free(b);
	}
	/* the state schema is gone; the user's schema pgstream stays, as on the source */
	itest_assert_scalar(&target, m.tgtdb,
	                    "SELECT count(*) FROM pg_namespace"
	                    " WHERE nspname = 'Mig \"state\" o''x.y*'",
	                    "0");
	itest_assert_scalar(&target, m.tgtdb,
	                    "SELECT string_agg(c.relname, ',' ORDER BY c.relname)"
	                    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	                    " WHERE n.nspname = 'pgstream'", "orders,orders_pkey");
	{
		char sql[256];

		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'", m.slot);
		itest_assert_scalar(&source, "postgres", sql, "0");
	}
}
END_TEST

Suite *
cutover_suite(void)
{
	Suite *s = suite_create("cutover");
	TCase *tc = tcase_create("cutover");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_add_checked_fixture(tc, test_setup, NULL);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, a_wrong_target_is_refused_before_the_source_is_touched);
	tcase_add_test(tc, cutover_again_after_success_leaves_the_source_frozen);
	tcase_add_test(tc, a_row_missing_on_the_target_is_refused);
	tcase_add_test(tc, a_state_made_by_an_older_pgstream_is_brought_up_to_date);
	tcase_add_test(tc, an_unlogged_table_changed_after_the_snapshot_does_not_refuse_the_cutover);
	tcase_add_test(tc, a_freeze_made_before_the_cutover_is_left_alone);
	tcase_add_test(tc, sigterm_after_the_barrier_undoes_the_cutover);
	tcase_add_test(tc, sighup_after_the_freeze_unfreezes_and_ends_nobody);
	tcase_add_test(tc, sigint_while_waiting_stops_promptly);
	tcase_add_test(tc, a_killed_cutover_barrier_never_ends_the_migration);
	tcase_add_test(tc, a_cutover_killed_after_its_barrier_can_be_run_again);
	tcase_add_test(tc, a_barrier_whose_cutover_died_does_not_stop_sync);
	tcase_add_test(tc,
	               freeze_ends_every_application_session_and_refuses_later_writes);
	tcase_add_test(tc, freeze_as_a_non_superuser_ends_other_users_sessions);
	tcase_add_test(tc, a_migration_with_its_own_state_schema_cuts_over);
	suite_add_tcase(s, tc);
	return s;
}
