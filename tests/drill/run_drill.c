/*
 * tests/drill/run_drill.c -- the failover drill suite of issue 6 (make drill).
 *
 * Makes a source cluster (wal_level=logical), a target cluster and a second
 * target cluster inside a network namespace, then runs the drills of
 * drill_lib.h one after the other, each a full live migration under pgbench
 * load ending in a cutover and a row-by-row comparison:
 *   1 kill -9 of pgstream at failpoints (schema: subproc.after_spawn;
 *     copy: fullload.after_part_commit; index: schema.after_index_step;
 *     streaming: sync.before_stream, then stream.after_apply_commit at the
 *     n-th applied batch; cutover: cutover.waiting, cutover.after_barrier_
 *     applied, schema.after_final_step at the n-th final step,
 *     cutover.before_drop) and a restart with the same command;
 *   2 fast and immediate restarts of the source and of the target;
 *   3 pg_terminate_backend of the walsender and of the apply backend;
 *   4 network partitions between pgstream and the target (netns + veth);
 *   5 a row the target rejects, fixed by the operator, then resumed;
 *   6 the windows of issue 13: sync --spool, kill -9 at each spool
 *     failpoint with the target stopped, big streamed transactions,
 *     UPDATE/DELETE/TRUNCATE ONLY on an inheritance parent, cutover killed
 *     around its freeze and barrier while a writer commits, cutover run
 *     again.
 * Prints the figures and writes them to results/drill-<timestamp>.txt
 * (pgstream's own output goes to results/drill-<timestamp>.log).
 *
 * Environment:
 *   PGSTREAM_BIN        pgstream binary (absolute path; required)
 *   DRILL_SEED          seed of the kill points (printed; default: random)
 *   DRILL_ONLY          e.g. "1,4": run only these drills
 *   DRILL_SCALE         pgbench scale of drill 1 (default 10; others 5)
 *   DRILL_RATE          pgbench -R for every drill (default 400 tps)
 *   DRILL_PARTITION_S   partition length (default 30)
 *   DRILL_SCALE_WINDOWS pgbench scale of drill 6 (default 2)
 *   DRILL_WINDOWS_RATE  pgbench -R of drill 6's load (default 25)
 *   DRILL_WINDOWS_TRUNCATE_EARLY  0: drill 6's TRUNCATE ONLY joins the load
 *                       only once sync streams (default 1: from the start)
 *   DRILL_RESULTS       directory for the results (default "results")
 *   PGSTREAM_TEST_KEEP  keep the cluster directories
 * Exit status 0 only if every drill passed with no row lost or duplicated.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/drill/drill_lib.h"

static Cluster source;
static Cluster target;
static Cluster netns_target;
static DrillNetns netns;

static long
env_long(const char *name, long def)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0')
	{
		fprintf(stderr, "run_drill: %s must be a number\n", name);
		exit(2);
	}
	return n;
}

static uint64_t
env_seed(void)
{
	const char *v = getenv("DRILL_SEED");
	struct timespec ts;

	if (v != NULL && *v != '\0')
		return strtoull(v, NULL, 10);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t) ts.tv_sec * 1000003u) ^ (uint64_t) ts.tv_nsec ^
	       ((uint64_t) getpid() << 20);
}

static bool
wanted(int n)
{
	const char *only = getenv("DRILL_ONLY");
	char digit[2] = {(char) ('0' + n), '\0'};

	return only == NULL || *only == '\0' || strstr(only, digit) != NULL;
}

static bool
make_clusters(bool need_netns)
{
	if (!cluster_init(&source, "drill-source", CLUSTER_LOGICAL) ||
	    !cluster_set(&source, "logical_decoding_work_mem = 64kB") ||
	    !cluster_set(&source, "max_connections = 200") ||
	    !cluster_init(&target, "drill-target", 0) ||
	    !cluster_set(&target, "max_connections = 200") ||
	    !cluster_start(&source) || !cluster_start(&target))
		return false;
	if (!need_netns)
		return true;
	if (!drill_netns_setup(&netns))
	{
		fprintf(stderr, "run_drill: cannot make a network namespace (drill 4 "
		                "needs root and ip); DRILL_ONLY=12356 skips it\n");
		return false;
	}
	return cluster_init(&netns_target, "drill-netns-target", 0) &&
	       cluster_set(&netns_target, "max_connections = 200") &&
	       drill_netns_cluster_start(&netns, &netns_target);
}

int
main(void)
{
	DrillStats st;
	DrillConfig cfg;
	uint64_t seed = env_seed();
	long long t0 = proc_now_ms();
	const char *resdir = getenv("DRILL_RESULTS");
	char stamp[32];
	char path[PATH_MAX];
	char logpath[PATH_MAX];
	time_t now = time(NULL);
	struct tm tm;
	struct
	{
		int n;
		const char *name;
		bool ran;
		bool ok;
	} drills[6] = {{1, "kill -9 at failpoints", false, false},
	               {2, "restarts of source and target", false, false},
	               {3, "pg_terminate_backend", false, false},
	               {4, "network partition", false, false},
	               {5, "target rejects a row", false, false},
	               {6, "issue 13 windows", false, false}};
	bool all_ok = true;
	FILE *f;

	setvbuf(stdout, NULL, _IOLBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	memset(&st, 0, sizeof(st));
	if (getenv("PGSTREAM_BIN") == NULL || getenv("PGSTREAM_BIN")[0] != '/')
	{
		fprintf(stderr, "run_drill: set PGSTREAM_BIN to the absolute path of "
		                "pgstream\n");
		return 2;
	}
	if (resdir == NULL || *resdir == '\0')
		resdir = "results";
	mkdir(resdir, 0755);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	snprintf(path, sizeof(path), "%s/drill-%s.txt", resdir, stamp);
	snprintf(logpath, sizeof(logpath), "%s/drill-%s.log", resdir, stamp);

	memset(&cfg, 0, sizeof(cfg));
	cfg.seed = seed;
	cfg.scale = (int) env_long("DRILL_SCALE", 10);
	cfg.split_mb = 1;
	cfg.jobs = 2;
	cfg.clients = 4;
	cfg.rate = (int) env_long("DRILL_RATE", 400);
	cfg.kills_schema = 3;
	cfg.kills_copy = 6;
	cfg.kills_index = 3;
	cfg.kills_stream = 6;
	/* cutover.waiting (with sync), cutover.after_barrier_applied,
	 * schema.after_final_step (n-th) and cutover.before_drop; drill 6 takes
	 * its own three */
	cfg.kills_cutover = 4;
	cfg.partition_s = (int) env_long("DRILL_PARTITION_S", 30);

	printf("pgstream drill: seed %llu (replay with DRILL_SEED=%llu), "
	       "pgstream %s\n",
	       (unsigned long long) seed, (unsigned long long) seed,
	       getenv("PGSTREAM_BIN"));
	printf("pgstream output: %s\n", logpath);
	setenv("DRILL_LOG", logpath, 1);

	if (!make_clusters(wanted(4)))
	{
		fprintf(stderr, "run_drill: could not set up the clusters\n");
		return 1;
	}
	for (int i = 0; i < 6; i++)
	{
		DrillConfig c = cfg;

		if (!wanted(drills[i].n))
			continue;
		/* drill 1 needs phases long enough to be hit; the others a
		 * smaller load */
		if (drills[i].n != 1)
			c.scale = (int) env_long("DRILL_SCALE_OTHER", 5);
		drills[i].ran = true;
		switch (drills[i].n)
		{
			case 1:
				drills[i].ok = drill_run_kills(&source, &target, &c, &st);
				break;
			case 2:
				drills[i].ok = drill_run_restarts(&source, &target, &c, &st);
				break;
			case 3:
				drills[i].ok = drill_run_terminate(&source, &target, &c, &st);
				break;
			case 4:
				drills[i].ok = drill_run_partition(&source, &netns_target,
				                                   &netns, &c, &st);
				break;
			case 5:
				drills[i].ok = drill_run_reject(&source, &target, &c, &st);
				break;
			default:
				c.scale = (int) env_long("DRILL_SCALE_WINDOWS", 2);
				c.windows_rate = (int) env_long("DRILL_WINDOWS_RATE", 25);
				c.windows_seconds = 5;
				c.windows_truncate_early =
				    env_long("DRILL_WINDOWS_TRUNCATE_EARLY", 1) != 0;
				drills[i].ok = drill_run_windows(&source, &target, &c, &st);
				break;
		}
		all_ok = all_ok && drills[i].ok;
	}
	if (st.rows_lost != 0 || st.rows_duplicated != 0 || st.failures != 0 ||
	    st.kills_missed != 0)
		all_ok = false;

	for (int pass = 0; pass < 2; pass++)
	{
		f = pass == 0 ? stdout : fopen(path, "w");
		if (f == NULL)
		{
			fprintf(stderr, "run_drill: could not write %s\n", path);
			break;
		}
		fprintf(f, "\n");
		for (int i = 0; i < 6; i++)
			fprintf(f, "drill %d  %-32s %s\n", drills[i].n, drills[i].name,
			        !drills[i].ran ? "skipped"
			        : drills[i].ok ? "PASSED"
			                       : "FAILED");
		drill_print_figures(f, &st, seed,
		                    (double) (proc_now_ms() - t0) / 1000.0);
		if (pass == 1)
		{
			fclose(f);
			printf("figures written to %s\n", path);
		}
	}
	drill_netns_teardown(&netns);
	cluster_destroy(&netns_target);
	cluster_destroy(&target);
	cluster_destroy(&source);
	return all_ok ? 0 : 1;
}
