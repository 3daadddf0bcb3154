/*
 * tests/integration/test_apply_inherit.c -- the apply writer on inheritance
 * trees and partitioned tables, and an apply restart racing an earlier
 * apply session, on real clusters.
 *
 * A pgoutput change names exactly one relation, and a Truncate message
 * lists exactly the relations the source truncated (children included only
 * when the source recursed).  The target must change exactly that relation:
 * UPDATE/DELETE/TRUNCATE of an inheritance parent must not reach its
 * children (ONLY), while a partitioned table (relkind 'p') must route its
 * changes to its partitions (ONLY would match nothing there, and TRUNCATE
 * ONLY of it is an error).
 *
 *   parent_changes_leave_inheritance_children_alone
 *       UPDATE / DELETE / key change of an inheritance parent's own rows
 *       whose keys and values are also in the child (primary key and
 *       REPLICA IDENTITY FULL), TRUNCATE ONLY of a parent, a recursive
 *       TRUNCATE, TRUNCATE ONLY ... RESTART IDENTITY (the target's sequence,
 *       moved on the target only, is reset), TRUNCATE ... CASCADE, runs of
 *       inserts (COPY) into parent and child, leaf partitions changed
 *       directly; every table equal, table by table.
 *   full_identity_parent_change_on_a_drifted_target_stops
 *       with REPLICA IDENTITY FULL, a parent row missing on the target must
 *       stop sync ("matched 0 rows"), not change the child's identical row.
 *   partitioned_root_published_via_root_routes_changes
 *       the publication is switched to publish_via_partition_root and lists
 *       the root: UPDATE, DELETE, row movement, COPY runs and TRUNCATE
 *       arrive under the partitioned root's relid and must reach the
 *       partitions.
 *   restart_during_an_earlier_apply_commit_applies_nothing_twice
 *   ..._with_application_name_in_the_target_conninfo
 *       a first sync's apply session is stuck mid-batch (the test holds a
 *       lock on the target) when a second sync starts; the second sync
 *       pauses (failpoint sync.before_stream) right after reading the
 *       applied position.  The earlier apply session must already be gone
 *       at that moment -- also when the target conninfo sets its own
 *       application_name -- and nothing may be applied twice.
 *
 * Comparison: for every table of the source, "SELECT ... FROM ONLY t"
 * (partitioned parents without ONLY) has the same count and digest on the
 * target.
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
#define APPLY_TIMEOUT_MS 90000
#define MAX_ARGS 32

static Cluster source;
static Cluster target;

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "inh-source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "inh-target", 0));
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

/* ---- running pgstream ---- */

static void
spawn_sync_env(Proc *p, const char *src, const char *tgt, const char *slot,
               const char *const env[])
{
	const char *argv[MAX_ARGS];
	int n = 0;

	argv[n++] = itest_pgstream_bin();
	argv[n++] = "sync";
	argv[n++] = "--source";
	argv[n++] = src;
	argv[n++] = "--target";
	argv[n++] = tgt;
	argv[n++] = "--slot";
	argv[n++] = slot;
	argv[n++] = "--publication";	/* viaroot_switch_sql alters it */
	argv[n++] = "pgstream";
	argv[n++] = "--jobs";
	argv[n++] = "2";
	argv[n++] = "--quiet";
	argv[n] = NULL;
	ck_assert(proc_spawn(p, argv, env));
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
	bool done = wait_target(tgtdb, sql, sync, APPLY_TIMEOUT_MS, &status);

	if (!done || status != PROC_TIMEOUT)
		itest_print_proc("pgstream sync", sync, status);
	ck_assert_msg(status == PROC_TIMEOUT, "sync exited with %d before %s",
	              status, what);
	ck_assert_msg(done, "%s did not happen in %d s: %s", what,
	              APPLY_TIMEOUT_MS / 1000, sql);
}

static void
wait_streaming(const char *tgtdb, Proc *sync)
{
	assert_applied(tgtdb,
	               "SELECT phase = 'streaming' FROM pgstream.migration", sync,
	               "reaching the streaming phase");
}

/* Stop a sync the test is done with (the next test drops its slot). */
static void
stop_sync(Proc *sync)
{
	proc_kill(sync, SIGKILL);
	proc_wait(sync, 30000);
	proc_release(sync);
}

/*
 * sync must stop by itself (exit status neither 0 nor a timeout) and say
 * needle on stderr.  The process is released.
 */
static void
assert_sync_stops_saying(Proc *sync, const char *why, const char *needle)
{
	int status = proc_wait(sync, 60000);
	char *err = proc_stderr(sync);

	ck_assert_ptr_nonnull(err);
	if (status == 0 || status == PROC_TIMEOUT || strstr(err, needle) == NULL)
		itest_print_proc("pgstream sync", sync, status);
	ck_assert_msg(status != PROC_TIMEOUT && status != 0,
	              "sync went on (%d) after %s", status, why);
	ck_assert_msg(strstr(err, needle) != NULL,
	              "after %s, stderr does not say \"%s\"", why, needle);
	free(err);
	proc_release(sync);
}

/* ---- comparing source and target ---- */

/*
 * Every table of the source has the same count and digest on the target,
 * each table on its own ("FROM ONLY"; a partitioned parent as a whole).
 * Lists every difference, then asserts.
 */
static void
assert_identical(const char *srcdb, const char *tgtdb)
{
	PGconn *conn = cluster_connect(&source, srcdb, NULL);
	PGresult *tables;
	int diffs = 0;

	ck_assert_ptr_nonnull(conn);
	tables = PQexec(conn,
	                "SELECT CASE WHEN c.relkind = 'p' THEN '' ELSE 'ONLY ' END"
	                " || format('%I.%I', n.nspname, c.relname) FROM pg_class c"
	                " JOIN pg_namespace n ON n.oid = c.relnamespace"
	                " WHERE c.relkind IN ('r', 'p')"
	                " AND n.nspname NOT IN ('pg_catalog', 'information_schema',"
	                " 'pgstream') AND n.nspname !~ '^pg_(toast|temp)'"
	                " ORDER BY 1");
	ck_assert_msg(PQresultStatus(tables) == PGRES_TUPLES_OK, "%s",
	              PQerrorMessage(conn));
	PQfinish(conn);
	ck_assert_int_gt(PQntuples(tables), 0);
	for (int i = 0; i < PQntuples(tables); i++)
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
	PQclear(tables);
	ck_assert_msg(diffs == 0, "%d table(s) differ between %s and %s (above)",
	              diffs, srcdb, tgtdb);
}

/*
 * Make the databases, start sync, wait for streaming, run the workload one
 * statement (transaction) at a time, wait for marker row 1, compare.
 */
static void
stream_and_compare(const char *name, const char *schema_sql,
                   const char *const workload[], size_t n,
                   const char *after_streaming_sql,
                   const char *target_sql)
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

	spawn_sync_env(&sync, src, tgt, slot, NULL);
	wait_streaming(tgtdb, &sync);
	assert_identical(srcdb, tgtdb);
	if (after_streaming_sql != NULL)
		ck_assert(cluster_psql(&source, srcdb, after_streaming_sql));
	if (target_sql != NULL)
		ck_assert(cluster_psql(&target, tgtdb, target_sql));
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(cluster_psql(&source, srcdb, workload[i]),
		              "workload step %zu failed: %s", i, workload[i]);
	ck_assert(cluster_psql(&source, srcdb, "INSERT INTO marker VALUES (1)"));
	assert_applied(tgtdb, "SELECT count(*) = 1 FROM marker", &sync,
	               "applying the workload");
	assert_identical(srcdb, tgtdb);
	stop_sync(&sync);
}

/* ---- inheritance ---- */

/*
 * Every child has the same keys and values as its parent's rows, so a
 * statement that recurses into the child matches twice (or changes the
 * child's copy).
 */
static const char inherit_schema_sql[] =
    "CREATE TABLE parent (id int PRIMARY KEY, v text);"
    "CREATE TABLE child (extra int) INHERITS (parent);"
    "ALTER TABLE child ADD PRIMARY KEY (id);"
    "INSERT INTO parent SELECT i, 'p' || i FROM generate_series(1, 6) i;"
    "INSERT INTO child SELECT i, 'p' || i, i FROM generate_series(1, 6) i;"
    "CREATE TABLE fparent (id int, v text);"
    "ALTER TABLE fparent REPLICA IDENTITY FULL;"
    "CREATE TABLE fchild () INHERITS (fparent);"
    "ALTER TABLE fchild REPLICA IDENTITY FULL;"
    "INSERT INTO fparent SELECT i, 'f' || i FROM generate_series(1, 4) i;"
    "INSERT INTO fchild SELECT * FROM fparent;"
    "CREATE TABLE tparent (id int PRIMARY KEY);"
    "CREATE TABLE tchild () INHERITS (tparent);"
    "ALTER TABLE tchild ADD PRIMARY KEY (id);"
    "INSERT INTO tparent SELECT generate_series(1, 3);"
    "INSERT INTO tchild SELECT generate_series(1, 3);"
    "CREATE TABLE rparent (id int PRIMARY KEY);"
    "CREATE TABLE rchild () INHERITS (rparent);"
    "ALTER TABLE rchild ADD PRIMARY KEY (id);"
    "INSERT INTO rparent SELECT generate_series(1, 3);"
    "INSERT INTO rchild SELECT generate_series(1, 3);"
    "CREATE TABLE parted (id int NOT NULL, k int NOT NULL, v text,"
    " PRIMARY KEY (id, k)) PARTITION BY RANGE (k);"
    "CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);"
    "CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (100) TO (200);"
    "INSERT INTO parted SELECT i, i, 'r' || i FROM generate_series(1, 150) i;"
    "CREATE TABLE sparent (id serial PRIMARY KEY);"
    "CREATE TABLE schild () INHERITS (sparent);"
    "ALTER TABLE schild ADD PRIMARY KEY (id);"
    "INSERT INTO sparent SELECT FROM generate_series(1, 3);"
    "INSERT INTO schild SELECT FROM generate_series(1, 3);"
    "CREATE TABLE fk_a (id int PRIMARY KEY);"
    "CREATE TABLE fk_b (id int PRIMARY KEY, a int REFERENCES fk_a);"
    "INSERT INTO fk_a SELECT generate_series(1, 3);"
    "INSERT INTO fk_b SELECT i, i FROM generate_series(1, 3) i;"
    "CREATE TABLE marker (id int PRIMARY KEY);";

/* moved on the target only: TRUNCATE ... RESTART IDENTITY must reset it */
static const char inherit_target_sql[] =
    "SELECT setval('public.sparent_id_seq', 50)";

static const char *const inherit_workload[] = {
    "UPDATE ONLY parent SET v = 'changed' WHERE id = 1",
    "DELETE FROM ONLY parent WHERE id = 2",
    "UPDATE ONLY parent SET id = 100 WHERE id = 3",
    "UPDATE child SET v = 'child changed' WHERE id = 4",
    "DELETE FROM child WHERE id = 5",
    "UPDATE ONLY fparent SET v = 'fchanged' WHERE id = 1",
    "DELETE FROM ONLY fparent WHERE id = 2",
    "UPDATE fchild SET v = 'fchild changed' WHERE id = 3",
    "TRUNCATE ONLY tparent",
    "TRUNCATE rparent",
    "TRUNCATE ONLY sparent RESTART IDENTITY",
    "TRUNCATE fk_a CASCADE",
    "BEGIN;"
    " INSERT INTO parent SELECT i, 'run' FROM generate_series(1000, 1199) i;"
    " INSERT INTO child SELECT i, 'run', i FROM generate_series(1000, 1199) i;"
    " UPDATE ONLY parent SET v = 'run changed' WHERE id = 1100;"
    " DELETE FROM ONLY parent WHERE id = 1101;"
    " INSERT INTO fparent SELECT i, 'frun' FROM generate_series(10, 99) i;"
    " INSERT INTO fchild SELECT i, 'frun' FROM generate_series(10, 99) i;"
    " DELETE FROM ONLY fparent WHERE id = 50;"
    "COMMIT",
    "UPDATE parted SET v = 'u' WHERE id <= 3",
    "DELETE FROM parted WHERE id = 120",
    "UPDATE parted SET k = 150 WHERE id = 10",
    "TRUNCATE parted_2",
    "INSERT INTO parted SELECT i, i % 200, 'again' FROM generate_series(200, 400) i",
};

START_TEST(parent_changes_leave_inheritance_children_alone)
{
	stream_and_compare("inh", inherit_schema_sql, inherit_workload,
	                   sizeof(inherit_workload) / sizeof(inherit_workload[0]),
	                   NULL, inherit_target_sql);
	/* the children kept the rows their parents lost or changed */
	itest_assert_scalar(&target, "inh_tgt",
	                    "SELECT string_agg(id || ':' || v, ',' ORDER BY id)"
	                    " FROM child WHERE id <= 6",
	                    "1:p1,2:p2,3:p3,4:child changed,6:p6");
	itest_assert_scalar(&target, "inh_tgt", "SELECT count(*) FROM tchild", "3");
	itest_assert_scalar(&target, "inh_tgt", "SELECT count(*) FROM rchild", "0");
	itest_assert_scalar(&target, "inh_tgt", "SELECT count(*) FROM schild", "3");
	itest_assert_scalar(&target, "inh_tgt",
	                    "SELECT last_value || '/' || is_called"
	                    " FROM public.sparent_id_seq",
	                    "1/false");
}
END_TEST

START_TEST(full_identity_parent_change_on_a_drifted_target_stops)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	Proc sync;

	itest_make_db(&source, "fdrift_src", NULL);
	itest_make_db(&target, "fdrift_tgt", "migrator");
	ck_assert(cluster_psql(&source, "fdrift_src",
	                       "CREATE TABLE fparent (id int, v text);"
	                       "ALTER TABLE fparent REPLICA IDENTITY FULL;"
	                       "CREATE TABLE fchild () INHERITS (fparent);"
	                       "ALTER TABLE fchild REPLICA IDENTITY FULL;"
	                       "INSERT INTO fparent VALUES (1, 'same'), (2, 'x');"
	                       "INSERT INTO fchild VALUES (1, 'same'), (2, 'x');"
	                       "CREATE TABLE marker (id int PRIMARY KEY);"));
	itest_conninfo(src, &source, "fdrift_src");
	itest_migrator_conninfo(tgt, &target, "fdrift_tgt");
	spawn_sync_env(&sync, src, tgt, "fdrift_slot", NULL);
	wait_streaming("fdrift_tgt", &sync);

	/* the target lost the parent's row; the child still has its twin */
	ck_assert(cluster_psql(&target, "fdrift_tgt",
	                       "DELETE FROM ONLY fparent WHERE id = 1"));
	ck_assert(cluster_psql(&source, "fdrift_src",
	                       "UPDATE ONLY fparent SET v = 'changed' WHERE id = 1"));
	assert_sync_stops_saying(&sync, "an UPDATE of a parent row the target lost",
	                         "matched 0 rows on target");
	itest_assert_scalar(&target, "fdrift_tgt",
	                    "SELECT string_agg(id || ':' || v, ',' ORDER BY id)"
	                    " FROM fchild",
	                    "1:same,2:x");
}
END_TEST

/* ---- partitioned root published via the root ---- */

static const char viaroot_schema_sql[] =
    "CREATE TABLE parted (id int NOT NULL, k int NOT NULL, v text,"
    " PRIMARY KEY (id, k)) PARTITION BY RANGE (k);"
    "CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);"
    "CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (100) TO (200);"
    "INSERT INTO parted SELECT i, i, 'r' || i FROM generate_series(1, 150) i;"
    "CREATE TABLE fparted (id int, k int, v text) PARTITION BY LIST (k);"
    "CREATE TABLE fparted_a PARTITION OF fparted FOR VALUES IN (1);"
    "CREATE TABLE fparted_b PARTITION OF fparted FOR VALUES IN (2);"
    "ALTER TABLE fparted REPLICA IDENTITY FULL;"
    "ALTER TABLE fparted_a REPLICA IDENTITY FULL;"
    "ALTER TABLE fparted_b REPLICA IDENTITY FULL;"
    "INSERT INTO fparted SELECT i, 1 + i % 2, 'f' FROM generate_series(1, 20) i;"
    "CREATE TABLE marker (id int PRIMARY KEY);";

/* pgstream's publication lists the leaves; from now on, the root */
static const char viaroot_switch_sql[] =
    "ALTER PUBLICATION pgstream SET (publish_via_partition_root = true);"
    "ALTER PUBLICATION pgstream ADD TABLE parted, fparted;";

static const char *const viaroot_workload[] = {
    "UPDATE parted SET v = 'u' WHERE id <= 3",
    "DELETE FROM parted WHERE id = 120",
    "UPDATE parted SET k = 150 WHERE id = 10",
    "INSERT INTO parted SELECT i, i % 200, 'run' FROM generate_series(200, 400) i",
    "UPDATE fparted SET v = 'g' WHERE id = 3",
    "DELETE FROM fparted WHERE id = 4",
    "UPDATE fparted SET k = 1 WHERE id = 5",
    "TRUNCATE parted",
    "INSERT INTO parted VALUES (1, 1, 'after truncate')",
};

START_TEST(partitioned_root_published_via_root_routes_changes)
{
	stream_and_compare("viaroot", viaroot_schema_sql, viaroot_workload,
	                   sizeof(viaroot_workload) / sizeof(viaroot_workload[0]),
	                   viaroot_switch_sql, NULL);
	itest_assert_scalar(&target, "viaroot_tgt", "SELECT count(*) FROM parted",
	                    "1");
}
END_TEST

/* ---- a restart racing an earlier apply session ---- */

/*
 * A first sync applies a batch that waits on a lock the test holds, and
 * is killed; a second sync starts and pauses just after reading the
 * applied position (sync.before_stream).  Then the lock goes: if the first sync's apply
 * session were still alive, its COMMIT would land after the second sync
 * read the position, and the second sync would apply the batch again.
 */
static void
restart_race(const char *name, const char *conninfo_extra)
{
	char srcdb[64];
	char tgtdb[64];
	char slot[64];
	char src[ITEST_CONNINFO_MAX];
	char src_tgt_base[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX + 64];
	char env_dir1[PATH_MAX + 32];
	char env_dir2[PATH_MAX + 32];
	char sql[256];
	FailpointDir fp1;
	FailpointDir fp2;
	Proc sync1;
	Proc sync2;
	PGconn *locker;
	PGresult *res;
	char *pid;
	char *applied;
	char *alive_at_pause;
	int status;

	snprintf(srcdb, sizeof(srcdb), "%s_src", name);
	snprintf(tgtdb, sizeof(tgtdb), "%s_tgt", name);
	snprintf(slot, sizeof(slot), "%s_slot", name);
	itest_make_db(&source, srcdb, NULL);
	itest_make_db(&target, tgtdb, "migrator");
	ck_assert(cluster_psql(&source, srcdb,
	                       "CREATE TABLE t (id int, v text);"
	                       "ALTER TABLE t REPLICA IDENTITY FULL;"
	                       "INSERT INTO t VALUES (0, 'before');"
	                       "CREATE TABLE marker (id int PRIMARY KEY);"));
	itest_conninfo(src, &source, srcdb);
	itest_migrator_conninfo(src_tgt_base, &target, tgtdb);
	snprintf(tgt, sizeof(tgt), "%s%s%s", src_tgt_base,
	         conninfo_extra ? " " : "", conninfo_extra ? conninfo_extra : "");
	ck_assert(fpctl_init(&fp1));
	ck_assert(fpctl_init(&fp2));
	fpctl_env(&fp1, env_dir1, sizeof(env_dir1));
	fpctl_env(&fp2, env_dir2, sizeof(env_dir2));

	/* sync 1 pauses if it ever reconnects (its second pass), never applying */
	spawn_sync_env(&sync1, src, tgt, slot,
	               (const char *const[]){
	                   "PGSTREAM_FAILPOINTS=sync.before_stream=pause@2",
	                   env_dir1, NULL});
	wait_streaming(tgtdb, &sync1);

	/* sync 1's next batch waits for this lock, inside its transaction */
	locker = cluster_connect(&target, tgtdb, NULL);
	ck_assert_ptr_nonnull(locker);
	res = PQexec(locker, "BEGIN; LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	applied = cluster_query_scalar(&target, tgtdb,
	                               "SELECT coalesce(applied_lsn, consistent_lsn)"
	                               " FROM pgstream.migration");
	ck_assert_ptr_nonnull(applied);
	ck_assert(cluster_psql(&source, srcdb,
	                       "INSERT INTO t SELECT i, 'once' FROM"
	                       " generate_series(1, 5) i"));
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = '%s'"
	         " AND wait_event_type = 'Lock'",
	         tgtdb);
	assert_applied(tgtdb, sql, &sync1, "the apply session waiting for the lock");
	snprintf(sql, sizeof(sql),
	         "SELECT pid FROM pg_stat_activity WHERE datname = '%s'"
	         " AND wait_event_type = 'Lock'",
	         tgtdb);
	pid = cluster_query_scalar(&target, tgtdb, sql);
	ck_assert_ptr_nonnull(pid);

	/*
	 * sync 1's process dies (a crash): its apply session lives on, blocked;
	 * its other sessions end with the process, releasing the one-run lock
	 * (a second sync while the first still runs is refused outright)
	 */
	proc_kill(&sync1, SIGKILL);
	proc_wait(&sync1, 30000);
	ck_assert(cluster_wait_for(&target, tgtdb,
	                           "SELECT NOT EXISTS (SELECT 1 FROM pg_locks"
	                           " WHERE locktype = 'advisory' AND objid = 1 AND objsubid = 2)",
	                           APPLY_TIMEOUT_MS));

	/* sync 2 stops right after reading the applied position */
	spawn_sync_env(&sync2, src, tgt, slot,
	               (const char *const[]){
	                   "PGSTREAM_FAILPOINTS=sync.before_stream=pause",
	                   env_dir2, NULL});
	if (!fpctl_wait(&fp2, "sync.before_stream", APPLY_TIMEOUT_MS))
	{
		itest_print_proc("pgstream sync (second)", &sync2, proc_wait(&sync2, 0));
		ck_abort_msg("the second sync did not reach sync.before_stream");
	}
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", pid);
	alive_at_pause = cluster_query_scalar(&target, tgtdb, sql);
	ck_assert_ptr_nonnull(alive_at_pause);

	/* let the first session go on: commit, or find itself terminated */
	res = PQexec(locker, "ROLLBACK");
	PQclear(res);
	PQfinish(locker);
	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(applied_lsn, '0/0') > '%s' OR NOT EXISTS (SELECT 1 FROM"
	         " pg_stat_activity WHERE pid = %s) FROM pgstream.migration",
	         applied, pid);
	ck_assert(cluster_wait_for(&target, tgtdb, sql, APPLY_TIMEOUT_MS));
	proc_kill(&sync1, SIGKILL);
	proc_wait(&sync1, 30000);
	proc_release(&sync1);

	fpctl_release(&fp2, "sync.before_stream");
	ck_assert(cluster_psql(&source, srcdb, "INSERT INTO marker VALUES (1)"));
	if (!wait_target(tgtdb, "SELECT count(*) = 1 FROM marker", &sync2,
	                 APPLY_TIMEOUT_MS, &status) ||
	    status != PROC_TIMEOUT)
		itest_print_proc("pgstream sync (second)", &sync2, status);
	ck_assert_msg(status == PROC_TIMEOUT, "the second sync exited with %d",
	              status);
	itest_assert_scalar(&target, tgtdb,
	                    "SELECT count(*) FROM t WHERE v = 'once'", "5");
	assert_identical(srcdb, tgtdb);
	ck_assert_msg(strcmp(alive_at_pause, "0") == 0,
	              "the earlier apply session (pid %s) was still there when "
	              "the second sync had read the applied position",
	              pid);
	stop_sync(&sync2);
	free(pid);
	free(applied);
	free(alive_at_pause);
	fpctl_cleanup(&fp1);
	fpctl_cleanup(&fp2);
}

START_TEST(restart_during_an_earlier_apply_commit_applies_nothing_twice)
{
	restart_race("race", NULL);
}
END_TEST

START_TEST(restart_race_with_application_name_in_the_target_conninfo)
{
	restart_race("raceapp", "application_name=myapp");
}
END_TEST

Suite *
apply_inherit_suite(void)
{
	Suite *s = suite_create("apply_inherit");
	TCase *tc = tcase_create("apply_inherit");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_add_checked_fixture(tc, test_setup, NULL);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, parent_changes_leave_inheritance_children_alone);
	tcase_add_test(tc, full_identity_parent_change_on_a_drifted_target_stops);
	tcase_add_test(tc, partitioned_root_published_via_root_routes_changes);
	tcase_add_test(tc,
	               restart_during_an_earlier_apply_commit_applies_nothing_twice);
	tcase_add_test(tc, restart_race_with_application_name_in_the_target_conninfo);
	suite_add_tcase(s, tc);
	return s;
}
