/*
 * tests/integration/test_stream.c -- acceptance tests for live sync
 * (`pgstream sync` without --no-follow), `pgstream status` while streaming
 * and `pgstream cutover`.
 *
 * One source cluster (wal_level=logical, logical_decoding_work_mem=64kB so
 * that big transactions are streamed to pgstream before they commit) and one
 * target cluster, made once in an unchecked fixture.  The target has a
 * non-superuser login "migrator"; every target database is owned by it and
 * pgstream connects to the target as migrator, so the engine is proven not
 * to need superuser there.  Every test makes its own databases and passes
 * its own --slot, so a failure cannot leave something behind that breaks the
 * next test.
 *
 *   pgbench_during_sync_then_cutover_is_identical
 *       pgbench runs while the copy and the catch-up happen; status shows the
 *       phases in order and the lag figures; cutover --freeze --json; sync
 *       exits 0; every table and sequence is identical; no traces remain.
 *   trap_workload_applies_exactly
 *       while streaming: unchanged TOAST, primary-key change, REPLICA
 *       IDENTITY FULL with duplicates and json, REPLICA IDENTITY USING INDEX,
 *       identity and generated columns, a row moving between partitions,
 *       TRUNCATE of two tables, rollbacks, a big streamed transaction with a
 *       rolled-back savepoint, logical messages, NULLs, deleting everything.
 *   kill_9_during_streaming_then_restart_is_identical
 *       sync is killed twice under pgbench and restarted: nothing is lost
 *       and nothing is applied twice (pgbench_history has no key).
 *   schema_change_stops_with_a_clear_message
 *       a column added on the source stops sync with a message naming it,
 *       without applying the row; after the column is added on the target
 *       too, sync resumes and applies it.
 *   cutover_times_out_without_sync_and_keeps_streaming_state
 *       cutover with no sync running times out, says so, keeps the state
 *       and does not leave the source read-only; sync run again keeps
 *       streaming (the barrier of the failed cutover is not a cutover) and a
 *       second cutover completes.
 *
 * Further tests pin down the apply path and the cutover: the phase reaches
 * "streaming" under a steady light load; cutover --freeze while pgbench
 * still writes; a sync that is only slow does not stop at the barrier of a
 * cutover that timed out; REPLICA IDENTITY FULL on every kind of value,
 * including boolean, char(n) and inet; runs of inserts applied with COPY; an
 * UPDATE of only an unchanged TOASTed column under an identity key;
 * TRUNCATE of one partition; a change that matches no row on a drifted
 * target must not be committed; a COMMIT that fails on the target (which is
 * not waited for) lets nothing after it commit; a table created while
 * streaming must not be left behind silently.
 *
 * Comparison: for every table of the source (leaf partitions and
 * partitioned parents alike) the row count and the md5 of its rows as text
 * in text order (so duplicates count) must be equal on the target; every
 * sequence's last_value must be equal.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define TEST_TIMEOUT_S 300
#define CMD_TIMEOUT_MS 120000
#define STATUS_TIMEOUT_MS 30000
#define PHASE_TIMEOUT_MS 150000
#define MAX_ARGS 32
#define MAX_PHASES 16

static Cluster source;
static Cluster target;

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "stream-source", CLUSTER_LOGICAL));
	ck_assert(cluster_set(&source, "logical_decoding_work_mem = 64kB"));
	ck_assert(cluster_init(&target, "stream-target", 0));
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

/*
 * Checked fixture (runs in each test's fork).  A failed test leaves its slot
 * behind (its sync is killed with it); the source has 10 slots, so drop
 * the slots nobody uses any more before each test.  Each test prints how
 * long it took.
 */
static long long test_started_ms;

static void
test_setup(void)
{
	test_started_ms = proc_now_ms();
	ck_assert(cluster_wait_for(&source, "postgres",
	                           "SELECT count(*) = 0 FROM pg_replication_slots"
	                           " WHERE active",
	                           10000));
	ck_assert(cluster_psql(&source, "postgres",
	                       "SELECT pg_drop_replication_slot(slot_name)"
	                       " FROM pg_replication_slots"));
}

static void
test_teardown(void)
{
	fprintf(stderr, "test took %.1f s\n",
	        (double) (proc_now_ms() - test_started_ms) / 1000.0);
}

/* ---- running pgstream ---- */

/*
 * argv for "pgstream sync --source S --target T --slot SLOT --jobs 2
 * --quiet [option]"; option may be NULL.
 */
static void
sync_argv(const char *argv[], const char *src, const char *tgt,
          const char *slot, const char *option)
{
	int n = 0;

	argv[n++] = itest_pgstream_bin();
	argv[n++] = "sync";
	argv[n++] = "--source";
	argv[n++] = src;
	argv[n++] = "--target";
	argv[n++] = tgt;
	argv[n++] = "--slot";
	argv[n++] = slot;
	argv[n++] = "--jobs";
	argv[n++] = "2";
	argv[n++] = "--quiet";
	if (option != NULL)
		argv[n++] = option;
	argv[n] = NULL;
}

/*
 * sync must stop by itself after `why` with exactly exit status `expected`
 * (1 for every failure once the migration has started: README's exit
 * codes) and say so on stderr: every string of `needles` (NULL-ended) must
 * be there.  The process is released.
 */
static void
assert_sync_stops_saying(Proc *sync, const char *why, int expected,
                         const char *const *needles)
{
	int status = proc_wait(sync, 60000);
	char *err = proc_stderr(sync);

	ck_assert_ptr_nonnull(err);
	if (status != expected)
		itest_print_proc("pgstream sync", sync, status);
	ck_assert_msg(status == expected, "sync exited %d after %s, expected %d",
	              status, why, expected);
	for (const char *const *n = needles; *n != NULL; n++)
		ck_assert_msg(strstr(err, *n) != NULL,
		              "after %s, stderr does not say \"%s\":\n%s", why, *n, err);
	fprintf(stderr, "sync stopped with %d:\n%s", status, err);
	free(err);
	proc_release(sync);
}

static void
spawn_sync_with(Proc *p, const char *src, const char *tgt, const char *slot,
                const char *option)
{
	const char *argv[MAX_ARGS];

	sync_argv(argv, src, tgt, slot, option);
	ck_assert(proc_spawn(p, argv, NULL));
}

static void
spawn_sync(Proc *p, const char *src, const char *tgt, const char *slot)
{
	spawn_sync_with(p, src, tgt, slot, NULL);
}

typedef struct CmdResult
{
	int status;
	char *out; /* owned */
	char *err; /* owned */
} CmdResult;

static void
cmd_free(CmdResult *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/* pgstream cutover --source S --target T <extra...>. */
static void
run_cutover(CmdResult *r, const char *src, const char *tgt,
            const char *const extra[])
{
	const char *argv[MAX_ARGS];
	int n = 0;
	long long start = proc_now_ms();

	argv[n++] = itest_pgstream_bin();
	argv[n++] = "cutover";
	argv[n++] = "--source";
	argv[n++] = src;
	argv[n++] = "--target";
	argv[n++] = tgt;
	for (int i = 0; extra[i] != NULL; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	r->status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &r->out, &r->err);
	ck_assert_ptr_nonnull(r->out);
	ck_assert_ptr_nonnull(r->err);
	fprintf(stderr, "pgstream cutover: status %d in %.1f s\n", r->status,
	        (double) (proc_now_ms() - start) / 1000.0);
}

/* pgstream status --target T --json, whitespace stripped (malloc'd). */
static char *
status_json(const char *tgt)
{
	const char *const argv[] = {
	    itest_pgstream_bin(), "status", "--target", tgt, "--json", NULL};
	char *out = NULL;
	char *err = NULL;
	int status = proc_run(argv, NULL, STATUS_TIMEOUT_MS, &out, &err);

	if (status != 0)
		itest_print_output("pgstream status", status, out, err);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_nonnull(out);
	free(err);
	itest_strip_space(out);
	return out;
}

static const char *const phase_order[] = {
    "none", "schema", "copy", "index", "catchup", "streaming", "cutover",
};

static int
phase_rank(const char *phase)
{
	for (size_t i = 0; i < sizeof(phase_order) / sizeof(phase_order[0]); i++)
		if (strcmp(phase, phase_order[i]) == 0)
			return (int) i;
	return -1;
}

/* What polling status saw over a run. */
typedef struct PhaseLog
{
	char seen[MAX_PHASES][32]; /* distinct phases, in the order seen */
	int n;
	int polls;
	bool lag_keys;           /* every lag key present in a streaming status */
	bool applied_lsn;        /* applied_lsn non-null while streaming */
	bool rate_positive;      /* apply_rate > 0 at least once */
	bool lag_positive;       /* lag_bytes > 0 at least once */
	long long started_ms;    /* wait_for_phase() began */
	long long reached_ms;    /* the phase waited for was first seen */
	long long other_done_ms; /* the other process was seen to exit */
} PhaseLog;

static void
phase_log_print(const PhaseLog *log)
{
	fprintf(stderr, "status: %d polls, phases:", log->polls);
	for (int i = 0; i < log->n; i++)
		fprintf(stderr, " %s", log->seen[i]);
	fprintf(stderr, "; lag keys %d, applied_lsn %d, rate>0 %d, lag>0 %d\n",
	        log->lag_keys, log->applied_lsn, log->rate_positive,
	        log->lag_positive);
	if (log->other_done_ms > 0)
		fprintf(stderr,
		        "status: the load ended after %.1f s, the phase was "
		        "first seen after %.1f s\n",
		        (double) (log->other_done_ms - log->started_ms) / 1000.0,
		        (double) (log->reached_ms - log->started_ms) / 1000.0);
}

/* Poll status once; returns the phase in phase[]. */
static void
poll_status(const char *tgt, PhaseLog *log, char *phase, size_t size)
{
	static const char *const lag_keys[] = {
	    "source_lsn",  "received_lsn", "applied_lsn", "lag_bytes",
	    "lag_seconds", "apply_rate",   "eta_seconds"};
	char *json = status_json(tgt);
	char v[128];

	ck_assert_msg(itest_json_field(json, "phase", phase, size),
	              "status has no phase: %s", json);
	log->polls++;
	if (log->n == 0 || strcmp(log->seen[log->n - 1], phase) != 0)
	{
		ck_assert_int_lt(log->n, MAX_PHASES);
		snprintf(log->seen[log->n++], sizeof(log->seen[0]), "%s", phase);
	}
	if (strcmp(phase, "catchup") == 0 || strcmp(phase, "streaming") == 0)
	{
		bool all = true;

		for (size_t i = 0; i < sizeof(lag_keys) / sizeof(lag_keys[0]); i++)
			all = all && itest_json_field(json, lag_keys[i], v, sizeof(v));
		log->lag_keys = log->lag_keys || all;
		if (itest_json_field(json, "applied_lsn", v, sizeof(v)) &&
		    strcmp(v, "null") != 0 && strchr(v, '/') != NULL)
			log->applied_lsn = true;
		if (itest_json_field(json, "apply_rate", v, sizeof(v)) &&
		    strcmp(v, "null") != 0 && atof(v) > 0)
			log->rate_positive = true;
		if (itest_json_field(json, "lag_bytes", v, sizeof(v)) &&
		    strcmp(v, "null") != 0 && atof(v) > 0)
			log->lag_positive = true;
	}
	free(json);
}

/* The phases seen must never go backwards. */
static void
assert_phases_in_order(const PhaseLog *log)
{
	for (int i = 0; i < log->n; i++)
	{
		ck_assert_msg(phase_rank(log->seen[i]) >= 0, "unknown phase \"%s\"",
		              log->seen[i]);
		if (i > 0)
			ck_assert_msg(phase_rank(log->seen[i]) >
			                  phase_rank(log->seen[i - 1]),
			              "phase went from %s back to %s", log->seen[i - 1],
			              log->seen[i]);
	}
}

/*
 * Poll status until it says `phase`; sync must keep running meanwhile.  If
 * other is not NULL, also wait until that process has exited (its status in
 * *other_status).
 */
static void
wait_for_phase(const char *tgt, const char *phase, Proc *sync, PhaseLog *log,
               Proc *other, int *other_status)
{
	long long deadline = proc_now_ms() + PHASE_TIMEOUT_MS;
	PhaseLog local;
	char now[32] = "";

	if (log == NULL)
	{
		memset(&local, 0, sizeof(local));
		log = &local;
	}
	log->started_ms = proc_now_ms();
	for (;;)
	{
		int st = proc_wait(sync, 0);
		bool other_done = other == NULL;

		if (st != PROC_TIMEOUT)
		{
			itest_print_proc("pgstream sync", sync, st);
			phase_log_print(log);
			ck_abort_msg("sync exited with %d while waiting for phase %s "
			             "(last phase %s)",
			             st, phase, now);
		}
		if (other != NULL)
		{
			int ost = proc_wait(other, 0);

			if (ost != PROC_TIMEOUT)
			{
				other_done = true;
				*other_status = ost;
				if (log->other_done_ms == 0)
					log->other_done_ms = proc_now_ms();
			}
		}
		poll_status(tgt, log, now, sizeof(now));
		if (strcmp(now, phase) == 0 && log->reached_ms == 0)
			log->reached_ms = proc_now_ms();
		if (other_done && strcmp(now, phase) == 0)
			break;
		if (proc_now_ms() > deadline)
		{
			phase_log_print(log);
			ck_abort_msg("phase %s not reached in %d s (last %s)", phase,
			             PHASE_TIMEOUT_MS / 1000, now);
		}
		itest_sleep_ms(200);
	}
}

/*
 * Poll sql (one boolean) on the target database until it is true.  False
 * as soon as sync exits or the deadline passes; *status gets sync's status
 * (PROC_TIMEOUT: still running).
 */
static bool
wait_target(const char *tgtdb, const char *sql, Proc *sync, int timeout_ms,
            int *status)
{
	long long deadline = proc_now_ms() + timeout_ms;

	for (;;)
	{
		char *v;
		bool done;

		*status = proc_wait(sync, 0);
		v = cluster_query_scalar(&target, tgtdb, sql);
		done = v != NULL && strcmp(v, "t") == 0;
		free(v);
		if (done)
			return true;
		if (*status != PROC_TIMEOUT || proc_now_ms() > deadline)
			return false;
		itest_sleep_ms(100);
	}
}

/* wait_target() that must succeed with sync still running. */
static void
assert_applied(const char *tgtdb, const char *sql, Proc *sync, const char *what)
{
	int status;
	bool done = wait_target(tgtdb, sql, sync, 60000, &status);

	if (!done || status != PROC_TIMEOUT)
		itest_print_proc("pgstream sync", sync, status);
	ck_assert_msg(status == PROC_TIMEOUT, "sync exited with %d before %s",
	              status, what);
	ck_assert_msg(done, "%s did not happen in 60 s: %s", what, sql);
}

/* Start pgbench against the source database in the background. */
static void
spawn_pgbench(Proc *p, const char *dbname, const char *clients,
              const char *seconds)
{
	char port[16];
	const char *pgbench = itest_pgbench_path();
	const char *argv[] = {pgbench, "-h",       source.basedir, "-p",    port,
	                      "-U",    "postgres", "-c",           clients, "-j",
	                      "2",     "-T",       seconds,        dbname,  NULL};

	snprintf(port, sizeof(port), "%d", source.port);
	ck_assert(proc_spawn(p, argv, NULL));
}

/*
 * Big transactions, streamed before they commit (logical_decoding_work_mem
 * is 64kB), each with a rolled-back savepoint; at most `rate` per second.
 * The script goes to a temporary file whose path is put in script_path.
 */
static const char bigtx_script[] =
    "BEGIN;\n"
    "INSERT INTO bigtx (client, n, pad) SELECT :client_id, g,"
    " md5(random()::text) FROM generate_series(1, 3000) g;\n"
    "SAVEPOINT a;\n"
    "INSERT INTO bigtx (client, n, pad) SELECT -1, g, 'rolled back'"
    " FROM generate_series(1, 500) g;\n"
    "ROLLBACK TO SAVEPOINT a;\n"
    "UPDATE bigtx_counter SET n = n + 1 WHERE client = :client_id;\n"
    "END;\n";

static const char bigtx_schema_sql[] =
    "CREATE TABLE bigtx (client int, n int, pad text);"
    "CREATE TABLE bigtx_counter (client int PRIMARY KEY, n int NOT NULL);"
    "INSERT INTO bigtx_counter VALUES (0, 0), (1, 0);";

static void
spawn_pgbench_bigtx(Proc *p, const char *dbname, char *script_path, size_t size,
                    const char *seconds)
{
	const char *tmpdir = getenv("TMPDIR");
	char port[16];
	const char *pgbench = itest_pgbench_path();
	const char *argv[] = {
	    pgbench,    "-n",    "-h", source.basedir, "-p",   port, "-U",
	    "postgres", "-c",    "2",  "-j",           "2",    "-R", "4",
	    "-T",       seconds, "-f", script_path,    dbname, NULL};
	FILE *f;
	int fd;

	snprintf(script_path, size, "%s/pgstream-bigtx-XXXXXX",
	         tmpdir && *tmpdir ? tmpdir : "/tmp");
	fd = mkstemp(script_path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(bigtx_script, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	snprintf(port, sizeof(port), "%d", source.port);
	ck_assert(proc_spawn(p, argv, NULL));
}

/* pgbench -i -s scale --foreign-keys on the source database. */
static void
pgbench_init(const char *dbname, const char *scale)
{
	char port[16];
	const char *pgbench = itest_pgbench_path();
	const char *argv[] = {
	    pgbench,        "-i", "-q", "-s", scale,      "--foreign-keys", "-h",
	    source.basedir, "-p", port, "-U", "postgres", dbname,           NULL};
	char *out = NULL;
	char *err = NULL;
	int status;

	snprintf(port, sizeof(port), "%d", source.port);
	status = proc_run(argv, NULL, CMD_TIMEOUT_MS, &out, &err);
	if (status != 0)
		itest_print_output("pgbench -i", status, out, err);
	ck_assert_int_eq(status, 0);
	free(out);
	free(err);
}

/* ---- comparing source and target ---- */

static PGresult *
list_rows(const Cluster *c, const char *dbname, const char *sql)
{
	PGconn *conn = cluster_connect(c, dbname, NULL);
	PGresult *res;

	ck_assert_ptr_nonnull(conn);
	res = PQexec(conn, sql);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql,
	              PQerrorMessage(conn));
	PQfinish(conn);
	return res;
}

/*
 * Every user table of the source (plain, partition, partitioned parent) has
 * the same count and digest on the target; every sequence the same
 * last_value.  Lists every difference, then asserts.  Returns the number of
 * tables compared.
 */
static int
assert_identical(const char *srcdb, const char *tgtdb)
{
	PGresult *tables = list_rows(
	    &source, srcdb,
	    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE c.relkind IN ('r', 'p')"
	    " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgstream')"
	    " AND n.nspname !~ '^pg_(toast|temp)' ORDER BY 1");
	static const char seq_sql[] =
	    "SELECT coalesce(string_agg(format('%I.%I=%s', schemaname,"
	    " sequencename, coalesce(last_value::text, 'null')), ', '"
	    " ORDER BY schemaname, sequencename), '') FROM pg_sequences";
	int diffs = 0;
	int n = PQntuples(tables);
	char *sa;
	char *sb;

	for (int i = 0; i < n; i++)
	{
		const char *t = PQgetvalue(tables, i, 0);
		char *a = itest_table_fingerprint(&source, srcdb, t);
		char *b = itest_table_fingerprint(&target, tgtdb, t);

		if (strcmp(a, b) != 0)
		{
			fprintf(stderr, "table %s differs: source %s, target %s\n", t, a,
			        b);
			diffs++;
		}
		free(a);
		free(b);
	}
	sa = cluster_query_scalar(&source, srcdb, seq_sql);
	sb = cluster_query_scalar(&target, tgtdb, seq_sql);
	ck_assert_ptr_nonnull(sa);
	ck_assert_ptr_nonnull(sb);
	if (strcmp(sa, sb) != 0)
	{
		fprintf(stderr, "sequences differ:\n  source: %s\n  target: %s\n", sa,
		        sb);
		diffs++;
	}
	free(sa);
	free(sb);
	PQclear(tables);
	ck_assert_msg(diffs == 0,
	              "%d difference(s) between %s and %s (listed "
	              "above)",
	              diffs, srcdb, tgtdb);
	return n;
}

/* After a cutover: no slot, no publication, no state schema. */
static void
assert_no_traces(const char *srcdb, const char *slot, const char *tgtdb)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'",
	         slot);
	itest_assert_scalar(&source, "postgres", sql, "0");
	itest_assert_scalar(&source, srcdb, "SELECT count(*) FROM pg_publication",
	                    "0");
	itest_assert_scalar(
	    &target, tgtdb,
	    "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'", "0");
}

/* Run a cutover that must succeed; returns its stdout, compacted. */
static char *
cutover_ok(const char *src, const char *tgt, bool freeze)
{
	static const char *const frozen[] = {"--freeze", "--json", "--timeout",
	                                     "120", NULL};
	static const char *const plain[] = {"--json", "--timeout", "120", NULL};
	CmdResult r;
	char v[64];
	char *out;

	run_cutover(&r, src, tgt, freeze ? frozen : plain);
	if (r.status != 0)
		itest_print_output("pgstream cutover", r.status, r.out, r.err);
	ck_assert_int_eq(r.status, 0);
	out = r.out;
	r.out = NULL;
	cmd_free(&r);
	itest_strip_space(out);
	ck_assert_msg(strstr(out, "\"row_counts_equal\":true") != NULL,
	              "cutover report: %s", out);
	ck_assert_msg(itest_json_field(out, "barrier_lsn", v, sizeof(v)) &&
	                  strchr(v, '/') != NULL,
	              "cutover report without a barrier LSN: %s", out);
	ck_assert_msg(itest_json_field(out, "write_gap_seconds", v, sizeof(v)) &&
	                  atof(v) >= 0,
	              "cutover report without write_gap_seconds: %s", out);
	ck_assert_msg(strstr(out, "\"tables\":[{") != NULL,
	              "cutover report without tables: %s", out);
	return out;
}

/* The rows the cutover report gives for one table. */
static long long
report_rows(const char *report, const char *table)
{
	char pat[128];
	const char *p;
	char v[32];

	snprintf(pat, sizeof(pat), "\"name\":\"%s\"", table);
	p = strstr(report, pat);
	ck_assert_msg(p != NULL, "table %s not in the cutover report: %s", table,
	              report);
	ck_assert(itest_json_field(p, "rows", v, sizeof(v)));
	return atoll(v);
}

/* A new session on the source database: is it read-only by default? */
static bool
source_read_only(const char *srcdb)
{
	char *v = cluster_query_scalar(&source, srcdb,
	                               "SHOW default_transaction_read_only");
	bool ro;

	ck_assert_ptr_nonnull(v);
	ro = strcmp(v, "on") == 0;
	free(v);
	return ro;
}

static void
unfreeze(const char *srcdb)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "ALTER DATABASE %s RESET default_transaction_read_only", srcdb);
	ck_assert(cluster_psql(&source, "postgres", sql));
}

/* ---- (a) pgbench while syncing, then cutover ---- */

START_TEST(pgbench_during_sync_then_cutover_is_identical)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;
	Proc bench;
	PhaseLog log;
	int bench_status = PROC_TIMEOUT;
	char *report;
	long long start = proc_now_ms();

	memset(&log, 0, sizeof(log));
	itest_make_db(&source, "pgb_src", NULL);
	itest_make_db(&target, "pgb_tgt", "migrator");
	pgbench_init("pgb_src", "5");
	itest_conninfo(src, &source, "pgb_src");
	itest_migrator_conninfo(tgt, &target, "pgb_tgt");

	/* pgbench_history has no key: publish only its inserts */
	spawn_sync_with(&sync, src, tgt, "pgb_slot", "--no-key-tables=insert-only");
	spawn_pgbench(&bench, "pgb_src", "4", "15");
	/* Until pgbench is done and sync has caught up with it. */
	wait_for_phase(tgt, "streaming", &sync, &log, &bench, &bench_status);
	itest_assert_pgbench_ok(&bench, bench_status);
	proc_release(&bench);
	phase_log_print(&log);
	fprintf(stderr, "pgbench and catch-up done after %.1f s\n",
	        (double) (proc_now_ms() - start) / 1000.0);

	assert_phases_in_order(&log);
	ck_assert_msg(phase_rank(log.seen[0]) <= phase_rank("copy"),
	              "first phase seen was %s", log.seen[0]);
	ck_assert_msg(log.n >= 3, "too few phases seen (%d)", log.n);
	ck_assert_msg(log.lag_keys, "status never showed every lag field");
	ck_assert_msg(log.applied_lsn, "status never showed an applied LSN");
	ck_assert_msg(log.rate_positive,
	              "status never showed a positive apply rate under pgbench");

	report = cutover_ok(src, tgt, true);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);

	ck_assert_int_eq(report_rows(report, "public.pgbench_accounts"), 500000);
	ck_assert_int_eq(report_rows(report, "public.pgbench_branches"), 5);
	/* --freeze leaves the source read-only: that is the point. */
	ck_assert(source_read_only("pgb_src"));
	unfreeze("pgb_src");
	ck_assert(!source_read_only("pgb_src"));

	ck_assert_int_eq(assert_identical("pgb_src", "pgb_tgt"), 4);
	itest_assert_scalar_equal(
	    &source, "pgb_src", &target, "pgb_tgt",
	    "SELECT count(*) || ' ' || coalesce(sum(delta), 0)"
	    " FROM pgbench_history");
	itest_assert_scalar(&source, "pgb_src",
	                    "SELECT count(*) > 0 FROM pgbench_history", "t");
	/* cutover created the deferred foreign keys */
	itest_assert_scalar_equal(&source, "pgb_src", &target, "pgb_tgt",
	                          "SELECT string_agg(conname, ',' ORDER BY conname)"
	                          " FROM pg_constraint WHERE contype = 'f'");
	itest_assert_scalar(
	    &target, "pgb_tgt",
	    "SELECT count(*) FROM pg_constraint WHERE contype = 'f'", "5");
	assert_no_traces("pgb_src", "pgb_slot", "pgb_tgt");
	free(report);
}
END_TEST

/*
 * A source that never stops writing (a light, steady load the apply keeps
 * up with easily) must still be reported as "streaming" once the backlog
 * of the copy is applied: an operator waits for that phase before the
 * cutover.
 */
START_TEST(phase_becomes_streaming_under_a_steady_light_load)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;
	Proc bench;
	PhaseLog log;
	long long deadline;
	char phase[32] = "";
	char port[16];
	const char *pgbench = itest_pgbench_path();
	const char *argv[] = {
	    pgbench, "-h",       source.basedir, "-p",        port,
	    "-U",    "postgres", "-c",           "2",         "-R",
	    "20",    "-T",       "16",           "light_src", NULL};
	int status;

	memset(&log, 0, sizeof(log));
	itest_make_db(&source, "light_src", NULL);
	itest_make_db(&target, "light_tgt", "migrator");
	pgbench_init("light_src", "1");
	itest_conninfo(src, &source, "light_src");
	itest_migrator_conninfo(tgt, &target, "light_tgt");
	snprintf(port, sizeof(port), "%d", source.port);
	ck_assert(proc_spawn(&bench, argv, NULL));

	spawn_sync_with(&sync, src, tgt, "light_slot",
	                "--no-key-tables=insert-only");
	deadline = proc_now_ms() + 12000;
	while (strcmp(phase, "streaming") != 0 && proc_now_ms() < deadline)
	{
		status = proc_wait(&sync, 0);
		if (status != PROC_TIMEOUT)
			itest_print_proc("pgstream sync", &sync, status);
		ck_assert_int_eq(status, PROC_TIMEOUT);
		poll_status(tgt, &log, phase, sizeof(phase));
		itest_sleep_ms(250);
	}
	phase_log_print(&log);
	ck_assert_msg(proc_wait(&bench, 0) == PROC_TIMEOUT,
	              "pgbench ended before the phase was checked");
	ck_assert_msg(strcmp(phase, "streaming") == 0,
	              "under 20 transactions/s the phase is still \"%s\" 12 s "
	              "after sync started (lag_bytes > 0 seen: %d)",
	              phase, log.lag_positive);
	status = proc_wait(&bench, 60000);
	itest_assert_pgbench_ok(&bench, status);
	proc_release(&bench);
	free(cutover_ok(src, tgt, false));
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_identical("light_src", "light_tgt");
}
END_TEST

/* ---- (b) a workload full of traps, applied while streaming ---- */

/* 20480 characters of md5 text, different per row. */
#define BIG(i)                                                                 \
	"(SELECT string_agg(md5(" i "::text || '/' || j), '')"                     \
	" FROM generate_series(1, 640) j)"

static const char trap_schema_sql[] =
    "CREATE TABLE toasty (id int PRIMARY KEY, note text, big text);"
    "ALTER TABLE toasty ALTER COLUMN big SET STORAGE EXTERNAL;"
    "INSERT INTO toasty SELECT i, 'note ' || i, " BIG(
        "i") " FROM generate_series(1, 20) i;"
             /* FULL with a TOASTed column and json */
             "CREATE TABLE fulltoast (id int, big text, j json);"
             "ALTER TABLE fulltoast ALTER COLUMN big SET STORAGE EXTERNAL;"
             "ALTER TABLE fulltoast REPLICA IDENTITY FULL;"
             "INSERT INTO fulltoast SELECT i, " BIG(
                 "i") ", ('{\"i\":  ' || i || '}')::json"
                      " FROM generate_series(1, 5) i;"
                      "CREATE TABLE pkchange (id int PRIMARY KEY, v text);"
                      "INSERT INTO pkchange SELECT i, 'v' || i FROM "
                      "generate_series(1, 100) i;"
                      "CREATE TABLE fulldup (a int, b text, j json, jb jsonb);"
                      "ALTER TABLE fulldup REPLICA IDENTITY FULL;"
                      "INSERT INTO fulldup VALUES"
                      " (1, 'x', '{\"a\":  1, \"a\": 2}', '{\"a\": 1}'),"
                      " (1, 'x', '{\"a\":  1, \"a\": 2}', '{\"a\": 1}'),"
                      " (1, 'x', '{\"a\":  1, \"a\": 2}', '{\"a\": 1}'),"
                      " (2, NULL, NULL, NULL), (2, NULL, NULL, NULL),"
                      " (3, 'y', '[1,  2]', '{\"k\": [true, null, "
                      "\"\\\"q\\\"\"]}');"
                      "CREATE TABLE uidx (a int NOT NULL, b text NOT NULL, v "
                      "text);"
                      "CREATE UNIQUE INDEX uidx_ab ON uidx (a, b);"
                      "ALTER TABLE uidx REPLICA IDENTITY USING INDEX uidx_ab;"
                      "INSERT INTO uidx SELECT i, 'b' || i, 'v' || i FROM "
                      "generate_series(1, 10) i;"
                      "CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY "
                      "PRIMARY KEY,"
                      " v text);"
                      "INSERT INTO ident (v) SELECT 'before ' || i FROM "
                      "generate_series(1, 5) i;"
                      "CREATE TABLE gen (id int PRIMARY KEY, a int,"
                      " doubled int GENERATED ALWAYS AS (a * 2) STORED);"
                      "INSERT INTO gen (id, a) SELECT i, i FROM "
                      "generate_series(1, 5) i;"
                      "CREATE TABLE parted (id int NOT NULL, k int NOT NULL, v "
                      "text,"
                      " PRIMARY KEY (id, k)) PARTITION BY RANGE (k);"
                      "CREATE TABLE parted_1 PARTITION OF parted FOR VALUES "
                      "FROM (0) TO (100);"
                      "CREATE TABLE parted_2 PARTITION OF parted FOR VALUES "
                      "FROM (100) TO (200);"
                      "INSERT INTO parted SELECT i, i, 'p' || i FROM "
                      "generate_series(1, 150) i;"
                      "CREATE TABLE trunc_a (id serial PRIMARY KEY, v text);"
                      "CREATE TABLE trunc_b (id int GENERATED BY DEFAULT AS "
                      "IDENTITY"
                      " PRIMARY KEY, v text);"
                      "CREATE TABLE trunc_c (id serial PRIMARY KEY, v text);"
                      "CREATE TABLE trunc_d (id bigserial PRIMARY KEY, v text);"
                      "INSERT INTO trunc_a (v) SELECT 'a' FROM "
                      "generate_series(1, 30);"
                      "INSERT INTO trunc_b (v) SELECT 'b' FROM "
                      "generate_series(1, 30);"
                      "INSERT INTO trunc_c (v) SELECT 'c' FROM "
                      "generate_series(1, 30);"
                      "INSERT INTO trunc_d (v) SELECT 'd' FROM "
                      "generate_series(1, 30);"
                      "CREATE TABLE bulk (id int PRIMARY KEY, tag text, pad "
                      "text);"
                      "CREATE TABLE sp_other (id int PRIMARY KEY, tag text);"
                      "CREATE TABLE rolled (id int PRIMARY KEY, v text);"
                      "CREATE TABLE doomed (id int PRIMARY KEY, v text);"
                      "INSERT INTO doomed SELECT i, 'd' || i FROM "
                      "generate_series(1, 50) i;"
                      "CREATE TABLE nulls (id int PRIMARY KEY, a int, b text, "
                      "c jsonb);"
                      "INSERT INTO nulls VALUES (1, NULL, NULL, NULL), (2, 2, "
                      "'two', '{}'),"
                      " (3, 3, NULL, 'null');";

/* One entry per source transaction, run while sync streams. */
static const char *const trap_workload[] = {
    /* unchanged TOAST: only another column changes */
    "UPDATE toasty SET note = 'changed ' || id WHERE id <= 10",
    /* a new TOASTed value, and a key change that carries the old one */
    "UPDATE toasty SET big = " BIG("'new'") " WHERE id = 11",
    "UPDATE toasty SET id = id + 1000 WHERE id IN (12, 13)",
    "INSERT INTO toasty SELECT i, 'late', " BIG(
        "i") " FROM generate_series(100, 103) i",
    /* FULL: the old tuple has the detoasted value, the new one 'u' */
    "UPDATE fulltoast SET id = id * 10 WHERE id IN (1, 2)",
    "DELETE FROM fulltoast WHERE id = 3",
    /* primary key change of every row */
    "UPDATE pkchange SET id = id + 1000",
    "UPDATE pkchange SET v = 'after' WHERE id = 1050",
    /* FULL with duplicates: exactly one copy changes or goes */
    "UPDATE fulldup SET b = 'x2' WHERE ctid = (SELECT ctid FROM fulldup"
    " WHERE a = 1 LIMIT 1)",
    "DELETE FROM fulldup WHERE ctid = (SELECT ctid FROM fulldup"
    " WHERE a = 2 LIMIT 1)",
    "UPDATE fulldup SET jb = '{\"k\": 2}' WHERE a = 3",
    "INSERT INTO fulldup VALUES (4, 'z', '{ }', '[]'), (4, 'z', '{ }', '[]')",
    "DELETE FROM fulldup WHERE ctid = (SELECT ctid FROM fulldup"
    " WHERE a = 4 LIMIT 1)",
    /* REPLICA IDENTITY USING INDEX: non-key change, key change, delete */
    "UPDATE uidx SET v = 'changed' WHERE a = 1",
    "UPDATE uidx SET b = 'new b' WHERE a = 2",
    "UPDATE uidx SET a = 200, v = NULL WHERE a = 3",
    "DELETE FROM uidx WHERE a = 4",
    /* identity GENERATED ALWAYS, and a stored generated column */
    "INSERT INTO ident (v) SELECT 'during ' || i FROM generate_series(1, 7) i",
    "UPDATE ident SET v = 'updated' WHERE id = 2",
    "DELETE FROM ident WHERE id = 3",
    "INSERT INTO gen (id, a) VALUES (6, 6), (7, NULL)",
    "UPDATE gen SET a = a + 100 WHERE id <= 3",
    /* a row moves between partitions; others change in place */
    "UPDATE parted SET k = 150 WHERE id = 1",
    "UPDATE parted SET k = 5, v = 'back' WHERE id = 120",
    "UPDATE parted SET v = 'in place' WHERE id IN (2, 130)",
    "DELETE FROM parted WHERE id = 140",
    "INSERT INTO parted VALUES (500, 199, 'new'), (501, 0, 'new')",
    /* TRUNCATE two tables in one statement, with and without restart */
    "TRUNCATE trunc_a, trunc_b RESTART IDENTITY",
    "INSERT INTO trunc_a (v) VALUES ('after restart');"
    " INSERT INTO trunc_b (v) VALUES ('after restart')",
    "TRUNCATE trunc_c, trunc_d",
    "INSERT INTO trunc_c (v) VALUES ('continued');"
    " INSERT INTO trunc_d (v) VALUES ('continued')",
    /* rolled back: no trace, small and big (streamed, then aborted) */
    "BEGIN; INSERT INTO rolled VALUES (1, 'never'); DELETE FROM doomed;"
    " UPDATE toasty SET note = 'never'; ROLLBACK",
    "BEGIN; INSERT INTO rolled SELECT g, repeat('r', 50)"
    " FROM generate_series(1, 20000) g; ROLLBACK",
    /* a big streamed transaction with a rolled-back savepoint */
    "BEGIN;"
    " INSERT INTO bulk SELECT g, 'kept', md5(g::text)"
    "  FROM generate_series(1, 20000) g;"
    " SAVEPOINT s1;"
    " INSERT INTO bulk SELECT g, 'rolled back', md5(g::text)"
    "  FROM generate_series(20001, 25000) g;"
    " INSERT INTO sp_other VALUES (1, 'rolled back');"
    " SAVEPOINT s2;"
    " INSERT INTO sp_other VALUES (2, 'rolled back too');"
    " ROLLBACK TO SAVEPOINT s1;"
    " INSERT INTO bulk SELECT g, 'after', md5(g::text)"
    "  FROM generate_series(25001, 25100) g;"
    " INSERT INTO sp_other VALUES (3, 'kept');"
    " SAVEPOINT s3;"
    " INSERT INTO sp_other VALUES (4, 'released');"
    " RELEASE SAVEPOINT s3;"
    " UPDATE bulk SET tag = 'kept+' WHERE id <= 10;"
    "COMMIT",
    /* logical decoding messages are not data */
    "SELECT pg_logical_emit_message(true, 'app', 'transactional')",
    "SELECT pg_logical_emit_message(false, 'app', 'not transactional')",
    "BEGIN; INSERT INTO nulls VALUES (4, NULL, NULL, NULL);"
    " SELECT pg_logical_emit_message(true, 'app', 'inside'); COMMIT",
    /* NULLs in and out */
    "UPDATE nulls SET a = 1, b = 'one', c = '{\"x\": null}' WHERE id = 1",
    "UPDATE nulls SET a = NULL, b = NULL, c = NULL WHERE id = 2",
    "UPDATE nulls SET c = NULL WHERE id = 3",
    /* every row of a table */
    "DELETE FROM doomed",
};

START_TEST(trap_workload_applies_exactly)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;
	char *report;

	itest_make_db(&source, "trap_src", NULL);
	itest_make_db(&target, "trap_tgt", "migrator");
	ck_assert(cluster_psql(&source, "trap_src", trap_schema_sql));
	/* The big values really are out of line. */
	itest_assert_scalar(&source, "trap_src",
	                    "SELECT pg_relation_size(reltoastrelid) > 20 * 20480"
	                    " FROM pg_class WHERE relname = 'toasty'",
	                    "t");
	itest_conninfo(src, &source, "trap_src");
	itest_migrator_conninfo(tgt, &target, "trap_tgt");

	spawn_sync(&sync, src, tgt, "trap_slot");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	for (size_t i = 0; i < sizeof(trap_workload) / sizeof(trap_workload[0]);
	     i++)
		ck_assert_msg(cluster_psql(&source, "trap_src", trap_workload[i]),
		              "workload step %zu failed: %s", i, trap_workload[i]);
	/* The workload is applied; sync is still streaming. */
	assert_applied("trap_tgt", "SELECT count(*) = 0 FROM doomed", &sync,
	               "applying the workload");
	/* The big transactions really reached pgstream as streamed ones. */
	ck_assert(cluster_wait_for(&source, "postgres",
	                           "SELECT stream_txns >= 2"
	                           " FROM pg_stat_replication_slots"
	                           " WHERE slot_name = 'trap_slot'",
	                           30000));

	report = cutover_ok(src, tgt, false);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);

	/* The traps, one by one, for clear messages... */
	itest_assert_scalar(
	    &target, "trap_tgt",
	    "SELECT count(*) FILTER (WHERE big IS NULL OR length(big)"
	    " <> 20480) || '/' || count(*) FROM toasty",
	    "0/24");
	itest_assert_scalar_equal(
	    &source, "trap_src", &target, "trap_tgt",
	    "SELECT string_agg(id || ':' || note || ':' || md5(big),"
	    " ',' ORDER BY id) FROM toasty");
	itest_assert_scalar_equal(
	    &source, "trap_src", &target, "trap_tgt",
	    "SELECT string_agg(id || ':' || md5(big) || ':' || j,"
	    " ',' ORDER BY id) FROM fulltoast");
	itest_assert_scalar(&target, "trap_tgt",
	                    "SELECT min(id) || '-' || max(id) || '/' || count(*)"
	                    " FROM pkchange",
	                    "1001-1100/100");
	itest_assert_scalar(
	    &target, "trap_tgt",
	    "SELECT string_agg(a || ':' || coalesce(b, '-') || ':' || n,"
	    " ',' ORDER BY a, b) FROM (SELECT a, b, count(*) AS n"
	    " FROM fulldup GROUP BY a, b) s",
	    "1:x:2,1:x2:1,2:-:1,3:y:1,4:z:1");
	itest_assert_scalar(
	    &target, "trap_tgt",
	    "SELECT string_agg(a || ':' || b || ':' || coalesce(v, '-'),"
	    " ',' ORDER BY a) FROM uidx WHERE a <= 4 OR a = 200",
	    "1:b1:changed,2:new b:v2,200:b3:-");
	itest_assert_scalar(&target, "trap_tgt",
	                    "SELECT count(*) || '/' || max(id) FROM ident",
	                    "11/12");
	itest_assert_scalar(
	    &target, "trap_tgt",
	    "SELECT string_agg(id || ':' || coalesce(doubled::text, '-'),"
	    " ',' ORDER BY id) FROM gen",
	    "1:202,2:204,3:206,4:8,5:10,6:12,7:-");
	itest_assert_scalar(
	    &target, "trap_tgt",
	    "SELECT (SELECT k FROM parted_2 WHERE id = 1) || ','"
	    " || (SELECT k FROM parted_1 WHERE id = 120) || ','"
	    " || (SELECT count(*) FROM ONLY parted_1 WHERE id = 1) || ','"
	    " || (SELECT count(*) FROM parted)",
	    "150,5,0,151");
	itest_assert_scalar(
	    &target, "trap_tgt",
	    "SELECT (SELECT string_agg(id || v, ',') FROM trunc_a) || ';'"
	    " || (SELECT string_agg(id || v, ',') FROM trunc_b) || ';'"
	    " || (SELECT string_agg(id || v, ',') FROM trunc_c) || ';'"
	    " || (SELECT string_agg(id || v, ',') FROM trunc_d)",
	    "1after restart;1after restart;31continued;31continued");
	itest_assert_scalar(&target, "trap_tgt", "SELECT count(*) FROM rolled",
	                    "0");
	itest_assert_scalar(
	    &target, "trap_tgt",
	    "SELECT string_agg(tag || ':' || n, ',' ORDER BY tag) FROM"
	    " (SELECT tag, count(*) AS n FROM bulk GROUP BY tag) s",
	    "after:100,kept:19990,kept+:10");
	itest_assert_scalar(
	    &target, "trap_tgt",
	    "SELECT string_agg(id || tag, ',' ORDER BY id) FROM sp_other",
	    "3kept,4released");
	itest_assert_scalar(
	    &target, "trap_tgt",
	    "SELECT string_agg(id || ':' || coalesce(a::text, '-') || ':'"
	    " || coalesce(b, '-') || ':' || coalesce(c::text, '-'), ','"
	    " ORDER BY id) FROM nulls",
	    "1:1:one:{\"x\": null},2:-:-:-,3:3:-:-,4:-:-:-");
	itest_assert_scalar(&target, "trap_tgt", "SELECT count(*) FROM doomed",
	                    "0");
	/* ...then everything, sequences included. */
	ck_assert_int_ge(assert_identical("trap_src", "trap_tgt"), 18);
	assert_no_traces("trap_src", "trap_slot", "trap_tgt");
	ck_assert_int_eq(report_rows(report, "public.bulk"), 20100);
	free(report);
}
END_TEST

/* ---- (c) kill -9 while streaming under pgbench ---- */

START_TEST(kill_9_during_streaming_then_restart_is_identical)
{
	static const long kill_at_ms[] = {3000, 8000};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char script[PATH_MAX];
	Proc sync;
	Proc bench;
	Proc bigtx;
	long long bench_start;
	int bench_status = PROC_TIMEOUT;
	int bigtx_status = PROC_TIMEOUT;

	itest_make_db(&source, "kill_src", NULL);
	itest_make_db(&target, "kill_tgt", "migrator");
	pgbench_init("kill_src", "2");
	ck_assert(cluster_psql(&source, "kill_src", bigtx_schema_sql));
	itest_conninfo(src, &source, "kill_src");
	itest_migrator_conninfo(tgt, &target, "kill_tgt");

	/* pgbench_history and bigtx have no key: REPLICA IDENTITY FULL */
	spawn_sync_with(&sync, src, tgt, "kill_slot", "--no-key-tables=full");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	/* pgbench, and big streamed transactions with savepoints beside it */
	spawn_pgbench(&bench, "kill_src", "4", "20");
	spawn_pgbench_bigtx(&bigtx, "kill_src", script, sizeof(script), "20");
	bench_start = proc_now_ms();
	for (size_t i = 0; i < sizeof(kill_at_ms) / sizeof(kill_at_ms[0]); i++)
	{
		int status;

		while (proc_now_ms() - bench_start < kill_at_ms[i])
		{
			status = proc_wait(&sync, 100);
			if (status != PROC_TIMEOUT)
			{
				itest_print_proc("pgstream sync", &sync, status);
				ck_abort_msg("sync exited with %d under pgbench", status);
			}
		}
		ck_assert(proc_kill(&sync, SIGKILL));
		status = proc_wait(&sync, 30000);
		ck_assert_int_eq(status, 128 + SIGKILL);
		proc_release(&sync);
		fprintf(stderr, "sync killed at %.1f s into pgbench; restarting\n",
		        (double) (proc_now_ms() - bench_start) / 1000.0);
		/* the same command again, at once */
		spawn_sync_with(&sync, src, tgt, "kill_slot", "--no-key-tables=full");
	}
	bigtx_status = proc_wait(&bigtx, 60000);
	unlink(script);
	itest_assert_pgbench_ok(&bigtx, bigtx_status);
	proc_release(&bigtx);
	wait_for_phase(tgt, "streaming", &sync, NULL, &bench, &bench_status);
	itest_assert_pgbench_ok(&bench, bench_status);
	proc_release(&bench);

	free(cutover_ok(src, tgt, false));
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);

	itest_assert_scalar(&source, "kill_src",
	                    "SELECT count(*) > 1000 FROM pgbench_history", "t");
	itest_assert_scalar_equal(&source, "kill_src", &target, "kill_tgt",
	                          "SELECT count(*) || ' ' || sum(delta) || ' '"
	                          " || max(mtime) FROM pgbench_history");
	itest_assert_scalar_equal(&source, "kill_src", &target, "kill_tgt",
	                          "SELECT sum(abalance) FROM pgbench_accounts");
	itest_assert_scalar(&source, "kill_src",
	                    "SELECT (SELECT sum(n) FROM bigtx_counter) >= 20"
	                    " AND (SELECT count(*) FROM bigtx)"
	                    " = 3000 * (SELECT sum(n) FROM bigtx_counter)",
	                    "t");
	itest_assert_scalar_equal(&source, "kill_src", &target, "kill_tgt",
	                          "SELECT count(*) || ' ' || count(*) FILTER"
	                          " (WHERE client < 0) || ' ' || (SELECT sum(n)"
	                          " FROM bigtx_counter) FROM bigtx");
	ck_assert_int_eq(assert_identical("kill_src", "kill_tgt"), 6);
	assert_no_traces("kill_src", "kill_slot", "kill_tgt");
}
END_TEST

/* ---- (d) an added column stops sync until the target has it too ---- */

START_TEST(schema_change_stops_with_a_clear_message)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;
	char *json;
	char v[1024];

	itest_make_db(&source, "ddl_src", NULL);
	itest_make_db(&target, "ddl_tgt", "migrator");
	ck_assert(cluster_psql(&source, "ddl_src",
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t SELECT i, 'v' || i"
	                       " FROM generate_series(1, 100) i"));
	itest_conninfo(src, &source, "ddl_src");
	itest_migrator_conninfo(tgt, &target, "ddl_tgt");

	spawn_sync(&sync, src, tgt, "ddl_slot");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	ck_assert(cluster_psql(&source, "ddl_src",
	                       "INSERT INTO t VALUES (101, 'before the change')"));
	assert_applied("ddl_tgt", "SELECT count(*) = 101 FROM t", &sync,
	               "applying a row");
	ck_assert(
	    cluster_psql(&source, "ddl_src", "ALTER TABLE t ADD COLUMN extra int"));
	ck_assert(cluster_psql(&source, "ddl_src",
	                       "INSERT INTO t VALUES (102, 'with extra', 42)"));

	assert_sync_stops_saying(&sync, "an added column", 1,
	                         (const char *const[]){"\"extra\"", "public.t", NULL});
	/* The row was not applied, and nothing else was lost. */
	itest_assert_scalar(&target, "ddl_tgt",
	                    "SELECT count(*) || '/' || max(id) FROM t", "101/101");
	json = status_json(tgt);
	fprintf(stderr, "status after the stop: %s\n", json);
	ck_assert_msg(itest_json_field(json, "error", v, sizeof(v)) &&
	                  strstr(v, "extra") != NULL,
	              "status does not show the error: %s", json);
	ck_assert_msg(itest_json_field(json, "phase", v, sizeof(v)) &&
	                  (strcmp(v, "streaming") == 0 ||
	                   strcmp(v, "catchup") == 0 || strcmp(v, "failed") == 0),
	              "status phase after the stop: %s", json);
	free(json);

	/* Make the target match; the same command resumes and applies it. */
	ck_assert(
	    cluster_psql(&target, "ddl_tgt", "ALTER TABLE t ADD COLUMN extra int"));
	spawn_sync(&sync, src, tgt, "ddl_slot");
	assert_applied("ddl_tgt",
	               "SELECT count(*) = 1 FROM t WHERE id = 102 AND extra = 42",
	               &sync, "applying the row after the target got the column");
	/* A column added on the target first, then on the source: no stop. */
	ck_assert(cluster_psql(&target, "ddl_tgt",
	                       "ALTER TABLE t ADD COLUMN extra2 text"));
	ck_assert(cluster_psql(&source, "ddl_src",
	                       "ALTER TABLE t ADD COLUMN extra2 text;"
	                       "INSERT INTO t VALUES (104, 'both', 44, 'x2')"));
	assert_applied(
	    "ddl_tgt",
	    "SELECT count(*) = 1 FROM t WHERE id = 104 AND extra2 = 'x2'", &sync,
	    "applying a row with a column added on both sides");
	ck_assert(cluster_psql(&source, "ddl_src",
	                       "INSERT INTO t VALUES (103, 'later', 43);"
	                       "UPDATE t SET extra = 1 WHERE id <= 10"));
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	free(cutover_ok(src, tgt, false));
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_identical("ddl_src", "ddl_tgt");
	assert_no_traces("ddl_src", "ddl_slot", "ddl_tgt");
}
END_TEST

/* ---- (e) cutover without a running sync ---- */

/*
 * With sync killed, cutover no longer waits its whole --timeout (600 here):
 * it notices within its 15 s grace that no sync holds the migration and
 * says so (issue 16 item 5).
 */
START_TEST(cutover_times_out_without_sync_and_keeps_streaming_state)
{
	static const char *const timeout_args[] = {"--freeze", "--timeout", "600",
	                                           NULL};
	long long t0;
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;
	CmdResult r;
	char *json;
	char v[64];
	bool applied;
	int status;

	itest_make_db(&source, "to_src", NULL);
	itest_make_db(&target, "to_tgt", "migrator");
	ck_assert(cluster_psql(&source, "to_src",
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t SELECT i, 'v' || i"
	                       " FROM generate_series(1, 100) i"));
	itest_conninfo(src, &source, "to_src");
	itest_migrator_conninfo(tgt, &target, "to_tgt");

	spawn_sync(&sync, src, tgt, "to_slot");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	ck_assert(proc_kill(&sync, SIGKILL));
	ck_assert_int_eq(proc_wait(&sync, 30000), 128 + SIGKILL);
	proc_release(&sync);

	t0 = proc_now_ms();
	run_cutover(&r, src, tgt, timeout_args);
	if (r.status == 0)
		itest_print_output("pgstream cutover", r.status, r.out, r.err);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "no pgstream sync has been running for this "
	                            "migration for 15 s; start it again (the same "
	                            "command) and run cutover again") != NULL,
	              "cutover does not say that no sync runs:\n%s", r.err);
	ck_assert_msg(proc_now_ms() - t0 < 120000,
	              "cutover took %lld ms to notice that no sync runs",
	              proc_now_ms() - t0);
	fprintf(stderr, "cutover said:\n%s", r.err);
	cmd_free(&r);
	/* Nothing was dropped, and the source is writable again. */
	itest_assert_scalar(
	    &target, "to_tgt",
	    "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'", "1");
	itest_assert_scalar(&source, "postgres",
	                    "SELECT count(*) FROM pg_replication_slots"
	                    " WHERE slot_name = 'to_slot'",
	                    "1");
	ck_assert_msg(!source_read_only("to_src"),
	              "the failed cutover left the source read-only");
	ck_assert(cluster_psql(&source, "to_src",
	                       "INSERT INTO t VALUES (101, 'after the failed "
	                       "cutover')"));
	json = status_json(tgt);
	ck_assert_msg(itest_json_field(json, "phase", v, sizeof(v)) &&
	                  strcmp(v, "streaming") == 0,
	              "status after the failed cutover: %s", json);
	free(json);

	/*
	 * sync again: the failed cutover's barrier is in the WAL, but nobody is
	 * cutting over now.  sync must keep streaming and apply what came after.
	 */
	spawn_sync(&sync, src, tgt, "to_slot");
	ck_assert(
	    cluster_psql(&source, "to_src", "INSERT INTO t VALUES (102, 'later')"));
	applied = wait_target("to_tgt", "SELECT count(*) = 2 FROM t WHERE id > 100",
	                      &sync, 30000, &status);
	if (!applied || status != PROC_TIMEOUT)
		itest_print_proc("pgstream sync", &sync, status);
	ck_assert_msg(status == PROC_TIMEOUT,
	              "sync exited (%d) when it reached the failed cutover's "
	              "barrier; nobody asked for a cutover now",
	              status);
	ck_assert_msg(applied, "writes after the failed cutover were not applied");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	free(cutover_ok(src, tgt, true));
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	unfreeze("to_src");
	assert_identical("to_src", "to_tgt");
	assert_no_traces("to_src", "to_slot", "to_tgt");
}
END_TEST

/*
 * The same with a sync that is only slow (paused here): cutover times out
 * and the application goes on writing.  When sync catches up it meets the
 * abandoned barrier; it must not stop there, or the later writes (here an
 * UPDATE, which no row count would reveal) never reach the target.
 */
START_TEST(a_slow_sync_does_not_stop_at_a_timed_out_cutover_barrier)
{
	static const char *const timeout_args[] = {"--timeout", "2", NULL};
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;
	CmdResult r;
	bool applied;
	int status;

	itest_make_db(&source, "slow_src", NULL);
	itest_make_db(&target, "slow_tgt", "migrator");
	ck_assert(cluster_psql(&source, "slow_src",
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t SELECT i, 'v' || i"
	                       " FROM generate_series(1, 10) i"));
	itest_conninfo(src, &source, "slow_src");
	itest_migrator_conninfo(tgt, &target, "slow_tgt");

	spawn_sync(&sync, src, tgt, "slow_slot");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	ck_assert(proc_kill(&sync, SIGSTOP));
	run_cutover(&r, src, tgt, timeout_args);
	ck_assert(proc_kill(&sync, SIGCONT));
	if (r.status != 1)
		itest_print_output("pgstream cutover", r.status, r.out, r.err);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "the barrier was not applied within 2 s (is "
	                            "pgstream sync running?); the migration is "
	                            "still streaming: timed out") != NULL,
	              "cutover did not time out waiting for the barrier:\n%s",
	              r.err);
	cmd_free(&r);

	ck_assert(cluster_psql(&source, "slow_src",
	                       "UPDATE t SET v = 'after the timed-out cutover'"
	                       " WHERE id = 1"));
	applied = wait_target("slow_tgt",
	                      "SELECT v = 'after the timed-out cutover' FROM t"
	                      " WHERE id = 1",
	                      &sync, 30000, &status);
	if (!applied || status != PROC_TIMEOUT)
		itest_print_proc("pgstream sync", &sync, status);
	ck_assert_msg(status == PROC_TIMEOUT,
	              "sync exited (%d) at the barrier of a cutover that had "
	              "already given up",
	              status);
	ck_assert_msg(applied, "an UPDATE after the timed-out cutover was not "
	                       "applied");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	free(cutover_ok(src, tgt, false));
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_identical("slow_src", "slow_tgt");
	assert_no_traces("slow_src", "slow_slot", "slow_tgt");
}
END_TEST

/* ---- cutover --freeze while the application still writes ---- */

/*
 * --freeze must end the writing sessions and let nothing commit after the
 * barrier: pgbench is cut short, and the target equals the source.  Every
 * pgbench transaction UPDATEs rows, so a commit that slipped past the
 * barrier would not show in row counts, only in the digests.
 */
START_TEST(cutover_freeze_under_load_ends_sessions_and_is_identical)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;
	Proc bench;
	long long cut_at;
	int status;

	itest_make_db(&source, "frz_src", NULL);
	itest_make_db(&target, "frz_tgt", "migrator");
	pgbench_init("frz_src", "1");
	itest_conninfo(src, &source, "frz_src");
	itest_migrator_conninfo(tgt, &target, "frz_tgt");

	spawn_sync_with(&sync, src, tgt, "frz_slot", "--no-key-tables=insert-only");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	spawn_pgbench(&bench, "frz_src", "4", "120");
	itest_sleep_ms(4000);
	ck_assert_msg(proc_wait(&bench, 0) == PROC_TIMEOUT,
	              "pgbench ended before the cutover");
	cut_at = proc_now_ms();
	free(cutover_ok(src, tgt, true));
	/* pgbench's sessions were ended: it stops long before its 120 s */
	status = proc_wait(&bench, 30000);
	ck_assert_msg(status != PROC_TIMEOUT,
	              "pgbench still runs 30 s after cutover --freeze");
	fprintf(stderr, "pgbench ended with %d, %.1f s after the cutover began\n",
	        status, (double) (proc_now_ms() - cut_at) / 1000.0);
	proc_release(&bench);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);

	ck_assert(source_read_only("frz_src"));
	unfreeze("frz_src");
	itest_assert_scalar(&source, "frz_src",
	                    "SELECT count(*) > 100 FROM pgbench_history", "t");
	itest_assert_scalar_equal(&source, "frz_src", &target, "frz_tgt",
	                          "SELECT count(*) || ' ' || sum(delta) FROM"
	                          " pgbench_history");
	itest_assert_scalar_equal(
	    &source, "frz_src", &target, "frz_tgt",
	    "SELECT (SELECT sum(abalance) FROM pgbench_accounts)"
	    " || ' ' || (SELECT sum(bbalance)"
	    " FROM pgbench_branches)");
	ck_assert_int_eq(assert_identical("frz_src", "frz_tgt"), 4);
	assert_no_traces("frz_src", "frz_slot", "frz_tgt");
}
END_TEST

/* ---- edge cases of the apply path ---- */

/*
 * Start sync on a fresh pair of databases made from schema_sql, wait until
 * it streams, run each statement of workload (one transaction each), wait
 * until done_sql (one boolean) holds on the target, check that sync still
 * runs and that check_sql (if not NULL) gives expected on the target, cut
 * over and compare everything.
 */
static void
stream_workload_and_compare(const char *name, const char *schema_sql,
                            const char *const workload[], size_t n,
                            const char *done_sql, const char *check_sql,
                            const char *expected)
{
	char srcdb[64];
	char tgtdb[64];
	char slot[64];
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;

	snprintf(srcdb, sizeof(srcdb), "%s_src", name);
	snprintf(tgtdb, sizeof(tgtdb), "%s_tgt", name);
	snprintf(slot, sizeof(slot), "%s_slot", name);
	itest_make_db(&source, srcdb, NULL);
	itest_make_db(&target, tgtdb, "migrator");
	ck_assert(cluster_psql(&source, srcdb, schema_sql));
	itest_conninfo(src, &source, srcdb);
	itest_migrator_conninfo(tgt, &target, tgtdb);

	spawn_sync(&sync, src, tgt, slot);
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(cluster_psql(&source, srcdb, workload[i]),
		              "workload step %zu failed: %s", i, workload[i]);
	assert_applied(tgtdb, done_sql, &sync, "applying the workload");
	if (check_sql != NULL)
	{
		char *v = cluster_query_scalar(&target, tgtdb, check_sql);

		if (v == NULL || strcmp(v, expected) != 0)
			itest_print_proc("pgstream sync (still running)", &sync,
			                 PROC_TIMEOUT);
		free(v);
		itest_assert_scalar(&target, tgtdb, check_sql, expected);
	}

	free(cutover_ok(src, tgt, false));
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_identical(srcdb, tgtdb);
	assert_no_traces(srcdb, slot, tgtdb);
}

/*
 * REPLICA IDENTITY FULL finds the row by comparing every column as text:
 * values whose text form depends on session settings (timestamps, floats,
 * intervals, bytea) or that have no equality operator (point, json, xml)
 * must still match exactly one row.  Names need quoting everywhere.
 */
static const char full_types_schema_sql[] =
    "CREATE TYPE mood AS ENUM ('sad', 'ok');"
    "CREATE TABLE fullv (id int, ts timestamptz, tsn timestamp, f8 float8,"
    " f4 real, nm numeric, iv interval, by bytea, pt point, x xml,"
    " arr int[], tr tstzrange, m mood, d date, tm timetz);"
    "ALTER TABLE fullv REPLICA IDENTITY FULL;"
    "INSERT INTO fullv SELECT i, '2024-03-10 "
    "01:30:00.123456+05:30'::timestamptz"
    " + i * interval '1 hour', '2024-03-10 02:30:00.5', 0.1 * i, 1.1 * i,"
    " 1.50 * i, interval '1 day 2 hours' * i, '\\x00ff5c'::bytea,"
    " point(i, 0.1), '<a>x</a>', ARRAY[i, NULL], tstzrange(now(), NULL),"
    " 'ok', '2024-02-29', '12:00:00.5+02'"
    " FROM generate_series(1, 6) i;"
    "INSERT INTO fullv SELECT * FROM fullv WHERE id = 1;"
    "CREATE TABLE \"Weird \"\"T\"\"; x\" (\"Id\" int PRIMARY KEY,"
    " \"select\" text, \"ñ Col\" text, \"UPPER\" int);"
    "INSERT INTO \"Weird \"\"T\"\"; x\" SELECT i, 's' || i, 'n' || i, i"
    " FROM generate_series(1, 10) i;"
    "CREATE TABLE \"Full \"\"Q\"\"\" (\"a b\" int, \"C\" text);"
    "ALTER TABLE \"Full \"\"Q\"\"\" REPLICA IDENTITY FULL;"
    "INSERT INTO \"Full \"\"Q\"\"\" VALUES (1, 'x'), (1, 'x'), (2, NULL);";

static const char *const full_types_workload[] = {
    "UPDATE fullv SET id = id + 100 WHERE id IN (2, 3)",
    "UPDATE fullv SET f8 = f8 + 1 WHERE ctid = (SELECT ctid FROM fullv"
    " WHERE id = 1 LIMIT 1)",
    "DELETE FROM fullv WHERE id = 4",
    "UPDATE fullv SET m = 'sad', x = '<b/>' WHERE id = 5",
    "UPDATE \"Weird \"\"T\"\"; x\" SET \"select\" = 'changed',"
    " \"UPPER\" = NULL WHERE \"Id\" <= 3",
    "UPDATE \"Weird \"\"T\"\"; x\" SET \"Id\" = 100 WHERE \"Id\" = 4",
    "DELETE FROM \"Weird \"\"T\"\"; x\" WHERE \"Id\" = 5",
    "UPDATE \"Full \"\"Q\"\"\" SET \"C\" = 'y' WHERE ctid ="
    " (SELECT ctid FROM \"Full \"\"Q\"\"\" WHERE \"a b\" = 1 LIMIT 1)",
    "DELETE FROM \"Full \"\"Q\"\"\" WHERE \"a b\" = 2",
    "INSERT INTO fullv (id) VALUES (999)",
};

START_TEST(full_identity_matches_every_kind_of_value_and_quoted_names)
{
	stream_workload_and_compare(
	    "fullt", full_types_schema_sql, full_types_workload,
	    sizeof(full_types_workload) / sizeof(full_types_workload[0]),
	    "SELECT count(*) = 1 FROM fullv WHERE id = 999",
	    "SELECT string_agg(id::text, ',' ORDER BY id) FROM fullv",
	    "1,1,5,6,102,103,999");
}
END_TEST

/*
 * REPLICA IDENTITY FULL with the types whose cast to text is not their
 * output function: boolean ('t' is sent, true::text is 'true'), char(n)
 * (sent padded, the cast trims) and inet (a host address is sent without
 * /32, the cast adds it).
 */
static const char full_casts_schema_sql[] =
    "CREATE TABLE flags (id int, ok boolean, code char(5), ip inet);"
    "ALTER TABLE flags REPLICA IDENTITY FULL;"
    "INSERT INTO flags SELECT i, i % 2 = 0, 'c' || i, ('10.0.0.' || i)::inet"
    " FROM generate_series(1, 6) i;";

static const char *const full_casts_workload[] = {
    "UPDATE flags SET id = 100 WHERE id = 1",
    "DELETE FROM flags WHERE id = 2",
    "UPDATE flags SET ok = NOT ok, code = 'x', ip = '::1' WHERE id = 3",
    "INSERT INTO flags (id) VALUES (999)",
};

START_TEST(full_identity_with_boolean_char_and_inet_columns)
{
	stream_workload_and_compare(
	    "fullcast", full_casts_schema_sql, full_casts_workload,
	    sizeof(full_casts_workload) / sizeof(full_casts_workload[0]),
	    "SELECT count(*) = 1 FROM flags WHERE id = 999",
	    "SELECT string_agg(id::text, ',' ORDER BY id) FROM flags",
	    "3,4,5,6,100,999");
}
END_TEST

/*
 * Long runs of inserts into one table are applied with COPY: every value
 * must survive COPY's text escaping (tabs, newlines, carriage returns,
 * backslashes, "\N" and "\." as strings, empty strings next to NULLs,
 * bytea's hex form, arrays and json with quotes), in tables with identity
 * and generated columns, into a partitioned table, and mixed with updates
 * and deletes of the rows just inserted.
 */
static const char copy_runs_schema_sql[] =
    "CREATE TABLE odd (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " t text, b bytea, a text[], j jsonb,"
    " g text GENERATED ALWAYS AS (upper(t)) STORED);"
    "CREATE TABLE pr (id int NOT NULL, k int NOT NULL, t text,"
    " PRIMARY KEY (id, k)) PARTITION BY RANGE (k);"
    "CREATE TABLE pr_1 PARTITION OF pr FOR VALUES FROM (0) TO (500);"
    "CREATE TABLE pr_2 PARTITION OF pr FOR VALUES FROM (500) TO (1000);"
    "CREATE TABLE done (id int PRIMARY KEY);";

static const char *const copy_runs_workload[] = {
    "INSERT INTO odd (t, b, a, j) SELECT CASE i % 10"
    " WHEN 0 THEN E'tab\\there' WHEN 1 THEN E'new\\nline'"
    " WHEN 2 THEN E'cr\\rhere' WHEN 3 THEN E'back\\\\slash'"
    " WHEN 4 THEN '\\N' WHEN 5 THEN '\\.' WHEN 6 THEN ''"
    " WHEN 7 THEN NULL WHEN 8 THEN E'\\\\.\\n\\\\N\\t' ELSE 'ünï €' || i END,"
    " CASE WHEN i % 3 = 0 THEN NULL ELSE"
    " decode(md5(i::text) || '5c0a09', 'hex') END,"
    " ARRAY['q\"' || i, NULL, E'b\\\\s', '', 'NULL'],"
    " jsonb_build_object('s', E'x\\ty\\\\z\"' || i, 'n', i)"
    " FROM generate_series(1, 300) i",
    "BEGIN;"
    " INSERT INTO pr SELECT i, i % 1000, E'p\\t' || i"
    "  FROM generate_series(1, 400) i;"
    " UPDATE pr SET t = 'updated' WHERE id <= 5;"
    " INSERT INTO pr SELECT i, i % 1000, 'second run'"
    "  FROM generate_series(401, 600) i;"
    " DELETE FROM pr WHERE id > 590;"
    " UPDATE odd SET t = E'changed\\n' WHERE id % 50 = 0;"
    "COMMIT",
    "INSERT INTO done VALUES (1)",
};

START_TEST(insert_runs_keep_every_value_through_copy)
{
	stream_workload_and_compare(
	    "copyrun", copy_runs_schema_sql, copy_runs_workload,
	    sizeof(copy_runs_workload) / sizeof(copy_runs_workload[0]),
	    "SELECT count(*) = 1 FROM done",
	    "SELECT (SELECT count(*) FROM odd) || '/' || (SELECT count(*) FROM pr)"
	    " || '/' || (SELECT count(*) FROM odd WHERE t IS NULL)",
	    "300/590/30");
}
END_TEST

/*
 * An UPDATE whose only non-key column is an unchanged TOASTed value, on a
 * table whose key is an identity column GENERATED ALWAYS: nothing can be
 * SET on the target (the identity column cannot, the TOASTed one is not
 * sent), yet the update is a valid no-op that must not stop sync.
 */
static const char identity_toast_schema_sql[] =
    "CREATE TABLE doc (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " body text);"
    "ALTER TABLE doc ALTER COLUMN body SET STORAGE EXTERNAL;"
    "INSERT INTO doc (body) SELECT " BIG("i") " FROM generate_series(1, 3) i;";

static const char *const identity_toast_workload[] = {
    "UPDATE doc SET body = body WHERE id = 1",
    "INSERT INTO doc (body) VALUES ('marker')",
};

START_TEST(update_of_only_a_toasted_column_with_identity_always_key)
{
	stream_workload_and_compare(
	    "idtoast", identity_toast_schema_sql, identity_toast_workload,
	    sizeof(identity_toast_workload) / sizeof(identity_toast_workload[0]),
	    "SELECT count(*) = 1 FROM doc WHERE body = 'marker'",
	    "SELECT count(*) FROM doc", "4");
}
END_TEST

/*
 * TRUNCATE of one partition only.  The publication publishes partitions
 * through their root; the source must still not keep rows the target
 * lost, nor the target rows the source truncated.
 */
static const char leaf_truncate_schema_sql[] =
    "CREATE TABLE parted (id int NOT NULL, k int NOT NULL, v text,"
    " PRIMARY KEY (id, k)) PARTITION BY RANGE (k);"
    "CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);"
    "CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (100) TO (200);"
    "INSERT INTO parted SELECT i, i, 'p' || i FROM generate_series(1, 150) i;"
    "CREATE TABLE marker (id int PRIMARY KEY);";

static const char *const leaf_truncate_workload[] = {
    "TRUNCATE parted_1",
    "INSERT INTO parted VALUES (1000, 150, 'after')",
    "INSERT INTO marker VALUES (1)",
};

START_TEST(truncate_of_one_partition_is_applied)
{
	stream_workload_and_compare(
	    "leaftrunc", leaf_truncate_schema_sql, leaf_truncate_workload,
	    sizeof(leaf_truncate_workload) / sizeof(leaf_truncate_workload[0]),
	    "SELECT count(*) = 1 FROM marker",
	    "SELECT (SELECT count(*) FROM parted_1) || '/'"
	    " || (SELECT count(*) FROM parted_2)",
	    "0/52");
}
END_TEST

/*
 * A table created on the source while sync streams is in no publication:
 * its rows never reach the target, even when the operator creates it on
 * the target too (as for an added column).  cutover verifies row counts;
 * it must not report success while a source table's rows are missing on
 * the target without at least naming that table.
 */
/*
 * Apply commits asynchronously and tells the source only what the target
 * has flushed; on a source that has gone idle the slot still confirms
 * everything within seconds (the applier polls the target's flush position).
 */
START_TEST(after_async_commits_the_slot_catches_up_on_an_idle_source)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	char sql[256];
	Proc sync;
	char *lsn;

	itest_make_db(&source, "ack_src", NULL);
	itest_make_db(&target, "ack_tgt", "migrator");
	ck_assert(cluster_psql(&source, "ack_src",
	                       "CREATE TABLE t (id int PRIMARY KEY, v text)"));
	itest_conninfo(src, &source, "ack_src");
	itest_migrator_conninfo(tgt, &target, "ack_tgt");
	spawn_sync(&sync, src, tgt, "ack_slot");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	for (int i = 0; i < 50; i++)
	{
		snprintf(sql, sizeof(sql),
		         "INSERT INTO t SELECT g, md5(g::text)"
		         " FROM generate_series(%d, %d) g",
		         i * 100 + 1, i * 100 + 100);
		ck_assert(cluster_psql(&source, "ack_src", sql));
	}
	lsn = cluster_query_scalar(&source, "ack_src",
	                           "SELECT pg_current_wal_lsn()::text");
	ck_assert_ptr_nonnull(lsn);
	ck_assert(cluster_wait_for(&target, "ack_tgt",
	                           "SELECT count(*) = 5000 FROM t", 30000));
	snprintf(sql, sizeof(sql),
	         "SELECT confirmed_flush_lsn >= '%s' FROM pg_replication_slots"
	         " WHERE slot_name = 'ack_slot'",
	         lsn);
	ck_assert_msg(cluster_wait_for(&source, "ack_src", sql, 10000),
	              "the slot did not confirm %s within 10 s of the rows being"
	              " applied",
	              lsn);
	free(lsn);
	free(cutover_ok(src, tgt, false));
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_identical("ack_src", "ack_tgt");
}
END_TEST

START_TEST(a_table_created_during_streaming_is_not_silently_left_behind)
{
	static const char *const args[] = {"--json", "--timeout", "60", NULL};
	static const char untracked_msg[] =
	    "1 table(s) on the source are not part of this migration (created "
	    "after it started): public.late; their rows are not on the target; "
	    "migrate them separately or drop them, then run cutover again";
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;
	CmdResult r;
	int status;

	itest_make_db(&source, "newt_src", NULL);
	itest_make_db(&target, "newt_tgt", "migrator");
	ck_assert(cluster_psql(&source, "newt_src",
	                       "CREATE TABLE t (id int PRIMARY KEY);"
	                       "INSERT INTO t VALUES (1)"));
	itest_conninfo(src, &source, "newt_src");
	itest_migrator_conninfo(tgt, &target, "newt_tgt");

	spawn_sync(&sync, src, tgt, "newt_slot");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	/* the operator creates the new table on both sides */
	ck_assert(cluster_psql(&target, "newt_tgt",
	                       "CREATE TABLE late (id int PRIMARY KEY, v text)"));
	ck_assert(cluster_psql(&source, "newt_src",
	                       "CREATE TABLE late (id int PRIMARY KEY, v text);"
	                       "INSERT INTO late SELECT i, 'late' FROM"
	                       " generate_series(1, 25) i;"));
	ck_assert(cluster_psql(&source, "newt_src", "INSERT INTO t VALUES (2)"));
	assert_applied("newt_tgt", "SELECT count(*) = 2 FROM t", &sync,
	               "applying a row of the old table");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);

	run_cutover(&r, src, tgt, args);
	/* refused before its first action on the source: no barrier, sync streams on */
	status = proc_wait(&sync, 0);
	/*
	 * Exactly exit 1 (the operation failed; nothing was dropped) and exactly
	 * the engine's message naming the table: cutover's other errors say
	 * "later" too, so a word such as "late" proves nothing.
	 */
	if (r.status != 1 || strstr(r.err, untracked_msg) == NULL)
	{
		char *rows = cluster_query_scalar(&target, "newt_tgt",
		                                  "SELECT count(*) FROM late");

		itest_print_output("pgstream cutover", r.status, r.out, r.err);
		fprintf(stderr,
		        "sync: %d; table late: 25 rows on the source, %s "
		        "on the target\n",
		        status, rows ? rows : "(query failed)");
		free(rows);
	}
	ck_assert_msg(r.status == 1, "cutover exited %d, expected 1, with "
	              "public.late never migrated", r.status);
	ck_assert_msg(strstr(r.err, untracked_msg) != NULL,
	              "cutover's stderr does not say \"%s\"", untracked_msg);
	/* the check comes before any barrier: sync was never asked to stop */
	ck_assert_msg(status == PROC_TIMEOUT, "sync exited %d although no barrier was written",
	              status);
	itest_assert_scalar(&target, "newt_tgt", "SELECT phase FROM pgstream.migration",
	                    "streaming");
	cmd_free(&r);

	/* as the message says: drop it (it is migrated separately), run again */
	ck_assert(cluster_psql(&source, "newt_src", "DROP TABLE late"));
	run_cutover(&r, src, tgt, args);
	if (r.status != 0)
		itest_print_output("pgstream cutover (again)", r.status, r.out, r.err);
	ck_assert_int_eq(r.status, 0);
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	itest_strip_space(r.out);
	ck_assert_msg(strstr(r.out, "\"row_counts_equal\":true") != NULL,
	              "cutover report: %s", r.out);
	cmd_free(&r);
	assert_identical("newt_src", "newt_tgt");
	assert_no_traces("newt_src", "newt_slot", "newt_tgt");
}
END_TEST

/*
 * The target drifted: a row the source updates is gone there.  sync must
 * stop with a message naming the table, and must not commit any part of
 * that source transaction (nor move its recorded position past it), so that
 * once the target is repaired the same command applies it whole.
 */
START_TEST(a_change_that_matches_no_row_stops_sync_without_committing_it)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;
	char *before;
	char *after;
	char *markers;

	itest_make_db(&source, "drift_src", NULL);
	itest_make_db(&target, "drift_tgt", "migrator");
	ck_assert(cluster_psql(&source, "drift_src",
	                       "CREATE TABLE t (id int PRIMARY KEY, v text);"
	                       "INSERT INTO t SELECT i, 'v' || i"
	                       " FROM generate_series(1, 10) i;"
	                       "CREATE TABLE marker (id int PRIMARY KEY);"));
	itest_conninfo(src, &source, "drift_src");
	itest_migrator_conninfo(tgt, &target, "drift_tgt");

	spawn_sync(&sync, src, tgt, "drift_slot");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	ck_assert(cluster_psql(&target, "drift_tgt", "DELETE FROM t WHERE id = 5"));
	before = cluster_query_scalar(&target, "drift_tgt",
	                              "SELECT coalesce(applied_lsn::text, 'none')"
	                              " FROM pgstream.migration");
	ck_assert_ptr_nonnull(before);
	ck_assert(cluster_psql(&source, "drift_src",
	                       "BEGIN; INSERT INTO marker VALUES (1);"
	                       " UPDATE t SET v = 'changed' WHERE id = 5;"
	                       " INSERT INTO marker VALUES (2); COMMIT"));

	assert_sync_stops_saying(&sync, "an UPDATE matched no row", 1,
	                         (const char *const[]){"public.t", "matched 0 rows on target", NULL});
	/* Nothing of that source transaction is on the target. */
	markers = cluster_query_scalar(&target, "drift_tgt",
	                               "SELECT count(*) FROM marker");
	after = cluster_query_scalar(&target, "drift_tgt",
	                             "SELECT coalesce(applied_lsn::text, 'none')"
	                             " FROM pgstream.migration");
	ck_assert_ptr_nonnull(markers);
	ck_assert_ptr_nonnull(after);
	ck_assert_msg(strcmp(markers, "0") == 0 && strcmp(before, after) == 0,
	              "the failed source transaction was committed on the target "
	              "anyway: %s of its 2 inserts are there, and applied_lsn "
	              "went from %s to %s",
	              markers, before, after);
	free(markers);
	free(before);
	free(after);

	/* Repair the target; the same command applies the transaction whole. */
	ck_assert(
	    cluster_psql(&target, "drift_tgt", "INSERT INTO t VALUES (5, 'v5')"));
	spawn_sync(&sync, src, tgt, "drift_slot");
	assert_applied("drift_tgt", "SELECT count(*) = 2 FROM marker", &sync,
	               "applying the transaction after the repair");
	itest_assert_scalar(&target, "drift_tgt", "SELECT v FROM t WHERE id = 5",
	                    "changed");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	free(cutover_ok(src, tgt, false));
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_identical("drift_src", "drift_tgt");
	assert_no_traces("drift_src", "drift_slot", "drift_tgt");
}
END_TEST

/*
 * A COMMIT that fails on the target (here a deferred unique constraint only
 * the target has).  An asynchronous COMMIT is not waited for: the next
 * batch may already be under way when its failure is read.  sync must stop
 * naming the constraint, nothing from the failing transaction or after it
 * may be committed, and once the target is fixed the same command goes on.
 */
START_TEST(a_commit_that_fails_on_the_target_commits_nothing_after_it)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;
	char *got;

	itest_make_db(&source, "cfail_src", NULL);
	itest_make_db(&target, "cfail_tgt", "migrator");
	ck_assert(cluster_psql(&source, "cfail_src",
	                       "CREATE TABLE t (id int PRIMARY KEY, v int);"
	                       "CREATE TABLE marker (id int PRIMARY KEY);"));
	itest_conninfo(src, &source, "cfail_src");
	itest_migrator_conninfo(tgt, &target, "cfail_tgt");

	spawn_sync(&sync, src, tgt, "cfail_slot");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	ck_assert(cluster_psql(&target, "cfail_tgt",
	                       "ALTER TABLE t ADD CONSTRAINT v_once UNIQUE (v)"
	                       " DEFERRABLE INITIALLY DEFERRED"));
	ck_assert(cluster_psql(&source, "cfail_src",
	                       "INSERT INTO t VALUES (1, 7)"));
	assert_applied("cfail_tgt", "SELECT count(*) = 1 FROM t", &sync,
	               "applying the first row");
	/* separate transactions, sent back to back */
	ck_assert(cluster_psql(&source, "cfail_src",
	                       "BEGIN; INSERT INTO t VALUES (2, 7); COMMIT;"
	                       " BEGIN; INSERT INTO marker VALUES (1); COMMIT;"
	                       " BEGIN; INSERT INTO marker VALUES (2); COMMIT"));

	assert_sync_stops_saying(&sync, "a COMMIT failed", 1, (const char *const[]){"v_once", NULL});
	got = cluster_query_scalar(&target, "cfail_tgt",
	                           "SELECT (SELECT count(*) FROM t) || '/' ||"
	                           " (SELECT count(*) FROM marker)");
	ck_assert_ptr_nonnull(got);
	ck_assert_msg(strcmp(got, "1/0") == 0,
	              "rows (t/marker) committed on the target after the failed "
	              "COMMIT: %s, expected 1/0", got);
	free(got);

	ck_assert(cluster_psql(&target, "cfail_tgt",
	                       "ALTER TABLE t DROP CONSTRAINT v_once"));
	spawn_sync(&sync, src, tgt, "cfail_slot");
	assert_applied("cfail_tgt", "SELECT count(*) = 2 FROM marker", &sync,
	               "applying after the constraint was dropped");
	wait_for_phase(tgt, "streaming", &sync, NULL, NULL, NULL);
	free(cutover_ok(src, tgt, false));
	itest_assert_sync_exits_0(&sync);
	proc_release(&sync);
	assert_identical("cfail_src", "cfail_tgt");
	assert_no_traces("cfail_src", "cfail_slot", "cfail_tgt");
}
END_TEST

Suite *
stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *tc = tcase_create("stream");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_add_checked_fixture(tc, test_setup, test_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, pgbench_during_sync_then_cutover_is_identical);
	tcase_add_test(tc, phase_becomes_streaming_under_a_steady_light_load);
	tcase_add_test(tc, trap_workload_applies_exactly);
	tcase_add_test(tc, kill_9_during_streaming_then_restart_is_identical);
	tcase_add_test(tc, schema_change_stops_with_a_clear_message);
	tcase_add_test(tc,
	               cutover_freeze_under_load_ends_sessions_and_is_identical);
	tcase_add_test(tc,
	               cutover_times_out_without_sync_and_keeps_streaming_state);
	tcase_add_test(tc,
	               a_slow_sync_does_not_stop_at_a_timed_out_cutover_barrier);
	tcase_add_test(tc,
	               full_identity_matches_every_kind_of_value_and_quoted_names);
	tcase_add_test(tc, full_identity_with_boolean_char_and_inet_columns);
	tcase_add_test(tc, insert_runs_keep_every_value_through_copy);
	tcase_add_test(tc,
	               update_of_only_a_toasted_column_with_identity_always_key);
	tcase_add_test(tc, truncate_of_one_partition_is_applied);
	tcase_add_test(
	    tc, a_change_that_matches_no_row_stops_sync_without_committing_it);
	tcase_add_test(
	    tc, a_table_created_during_streaming_is_not_silently_left_behind);
	tcase_add_test(tc, after_async_commits_the_slot_catches_up_on_an_idle_source);
	tcase_add_test(tc, a_commit_that_fails_on_the_target_commits_nothing_after_it);
	suite_add_tcase(s, tc);
	return s;
}
