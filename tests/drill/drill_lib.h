/*
 * tests/drill/drill_lib.h -- failover drills for pgstream (issue 6): a live
 * migration under pgbench load, with faults injected while it runs, then a
 * cutover and a full comparison of source and target.
 *
 * Used by two programs:
 *   tests/drill/run_drill.c              the full suite (make drill);
 *   tests/integration/test_drill_short.c a short version run by make test.
 *
 * A drill owns one source database and one target database on clusters the
 * caller made (the target may live in a network namespace, see DrillNetns).
 * Step functions return false after printing what went wrong on stderr, so
 * that the driver can report and go on, and a Check test can assert.
 *
 * Every wait polls (50-200 ms) with a generous deadline: the machine is
 * small and shared.  While waiting, every function also
 *   - samples VmHWM of the running pgstream processes (peak RSS),
 *   - keeps pgbench running until its deadline (a server restart ends its
 *     sessions: it is started again),
 *   - notices a sync that exited when it should not have, and prints why.
 *
 * Environment: PGSTREAM_BIN (the engine binary, absolute path),
 * PGSTREAM_PG_BINDIR (optional, where pgbench and pg_ctl are).
 */
#ifndef PGSTREAM_TESTS_DRILL_DRILL_LIB_H
#define PGSTREAM_TESTS_DRILL_DRILL_LIB_H

#include <stdbool.h>
#include <stdint.h>

#include "tests/support/cluster.h"
#include "tests/support/failpoint_ctl.h"
#include "tests/support/proc.h"

#define DRILL_CONNINFO_MAX (PATH_MAX + 512)

/* What the drills survived, for the figures at the end. */
typedef struct DrillStats
{
	int kills;            /* kill -9 of pgstream, each followed by a resume */
	int kills_by_phase[8]; /* see drill_phase_names */
	/* kills aimed at a moment that did not land there: the process had
	 * exited first, the moment never came, or the phase had moved on (each
	 * is logged with "KILL MISSED"); a drill that counts any is not the
	 * drill it claims to be */
	int kills_missed;
	int restarts;         /* server restarts (fast + immediate) survived */
	int terminates;       /* pg_terminate_backend of our sessions survived */
	int partitions;       /* network partitions survived */
	int rejects;          /* rejected rows stopped sync and resumed */
	int cutovers;         /* cutovers completed and compared */
	long long rows_compared;
	long long rows_lost;       /* on the source, missing on the target */
	long long rows_duplicated; /* on the target, not on the source */
	int tables_compared;
	int tables_differing;
	int sequences_differing;
	long peak_rss_kb;     /* max VmHWM of any pgstream process */
	char peak_rss_what[32];
	int bench_restarts;   /* pgbench started again after a server restart */
	long long bench_txns; /* pgbench transactions reported */
	int failures;         /* steps that failed */
	int kills_at_failpoint; /* kills that landed at a named failpoint */
	int spool_kills;      /* kill -9 at a spool failpoint, target stopped */
	long long writer_acked;   /* writer rows whose COMMIT was acknowledged */
	long long writer_missing; /* of those, not on the target after cutover */
	int writer_sessions_ended; /* writer sessions cutover --freeze ended */
	int cutover_refusals; /* a second cutover refused as it must */
	int known_bug_reruns; /* sync re-run after a lost target connection */
} DrillStats;

/* Phase names in order, indexes of DrillStats.kills_by_phase. */
extern const char *const drill_phase_names[8];
#define DRILL_PHASE_NONE 0
#define DRILL_PHASE_SCHEMA 1
#define DRILL_PHASE_COPY 2
#define DRILL_PHASE_INDEX 3
#define DRILL_PHASE_CATCHUP 4
#define DRILL_PHASE_STREAMING 5
#define DRILL_PHASE_CUTOVER 6 /* kills of the cutover command */
#define DRILL_PHASE_OTHER 7

/* A network namespace holding the target server (drill 4). */
typedef struct DrillNetns
{
	char name[32];     /* netns name */
	char veth_root[16]; /* root side of the veth pair: the one set down */
	char veth_ns[16];
	char root_addr[32]; /* 10.200.N.1 */
	char ns_addr[32];   /* 10.200.N.2: the target listens here */
	bool up;
} DrillNetns;

typedef struct Drill
{
	const char *name; /* for messages and database names */
	Cluster *src;
	Cluster *tgt;
	DrillNetns *netns; /* NULL: target on the host */
	char srcdb[64];
	char tgtdb[64];
	char slot[64];
	char src_conninfo[DRILL_CONNINFO_MAX]; /* as pgstream gets them */
	char tgt_conninfo[DRILL_CONNINFO_MAX];
	int jobs;
	int split_mb;
	int clients; /* pgbench -c */
	int rate;    /* pgbench -R (0: as fast as it goes) */

	Proc sync;
	bool sync_running;
	int sync_runs;
	Proc cutover;
	bool cutover_running;
	bool cutover_done;  /* a cutover completed (exit 0) */
	bool sync_may_exit; /* a cutover runs: sync exits 0 after its barrier */
	bool frozen_bug_seen; /* cutover --freeze failed on a frozen source */
	bool tolerate_lost_target; /* see sync_alive(): known engine bug */
	Proc bench;
	bool bench_running;
	bool bench_truncated; /* first pgbench run lets pgbench truncate history */
	long long bench_until_ms; /* keep pgbench running until then (0: stop) */
	long long bench_next_try_ms;
	char bench_script[PATH_MAX]; /* optional custom script, "" for builtin */
	char bench_script2[PATH_MAX]; /* a second one (weights in the names) */

	/* failpoints armed in the next sync / cutover spawned (see
	 * engine/failpoint.h), "" for none */
	char sync_fp[256];
	char cutover_fp[256];
	FailpointDir fpd; /* PGSTREAM_FAILPOINT_DIR of pause actions */
	bool fpd_made;
	char wal_spool[PATH_MAX]; /* sync --spool DIR, "" for none */
	/* the drill stopped the target on purpose: drill_phase() answers the
	 * phase it read before, without asking the stopped server */
	bool tgt_stopped;
	int tgt_stopped_phase;

	long long marker; /* last marker id inserted on the source */
	char log_path[PATH_MAX]; /* pgstream output is appended here ("" = none) */
	DrillStats *stats;
	uint64_t rng;
} Drill;

/* ---- logging ---- */
void drill_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void drill_fail(Drill *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- random numbers (splitmix64), seeded per drill ---- */
uint64_t drill_rand(Drill *d);
/* uniform in [lo, hi] */
long drill_rand_range(Drill *d, long lo, long hi);

/* ---- set-up ---- */

/*
 * Databases <name>_src and <name>_tgt (dropped first if left over), pgbench
 * -i at scale with foreign keys, the marker table; conninfos for pgstream.
 * tgt_host_extra: appended to the target conninfo (e.g. keepalives), or NULL.
 */
bool drill_init(Drill *d, const char *name, Cluster *src, Cluster *tgt,
                DrillNetns *netns, int scale, DrillStats *stats,
                uint64_t seed);
/* Release processes; keep databases (cheap, and useful after a failure). */
void drill_term(Drill *d);

/* Replace the target conninfo pgstream is given (same database). */
void drill_set_target_extra(Drill *d, const char *extra);

/* ---- load ---- */
bool drill_bench_start(Drill *d, int seconds);
void drill_bench_stop(Drill *d);

/* ---- waiting ---- */

/* One round of the background duties (RSS, pgbench, sync liveness). */
void drill_tick(Drill *d);
/* Sleep ms while ticking.  False if sync exited meanwhile (and it was
 * expected to run). */
bool drill_sleep(Drill *d, long ms);

/* The migration's phase on the target: DRILL_PHASE_*; NONE without state
 * or when the target cannot be read. */
int drill_phase(Drill *d);
/* Wait until the phase is at least `phase` (or the sync exits). */
bool drill_wait_phase(Drill *d, int phase, int timeout_ms);

/*
 * Insert a marker row on the source (retrying while the source restarts)
 * and wait until it is on the target.  This proves the stream moves again
 * after a fault and everything committed before the marker is applied.
 */
bool drill_mark_and_wait(Drill *d, int timeout_ms);

/* ---- pgstream ---- */
bool drill_sync_start(Drill *d);
/* SIGKILL sync; the phase it was in is counted.  False if it was not
 * running. */
bool drill_sync_kill(Drill *d, int *phase_killed);
/* Wait for sync to exit; its status, or PROC_TIMEOUT. */
int drill_sync_wait(Drill *d, int timeout_ms);
/* stderr of the current/last sync run (malloc'd). */
char *drill_sync_stderr(Drill *d);

bool drill_cutover_start(Drill *d);
int drill_cutover_wait(Drill *d, int timeout_ms);
/* Run cutover to completion, and check sync exits 0. */
bool drill_cutover_finish(Drill *d);

/* ---- comparison ---- */

/*
 * Every table of the source database: row count and ordered digest against
 * the target; where they differ, a row-by-row merge counts rows lost and
 * rows duplicated (multiset difference).  Sequences by last_value and
 * is_called.  Adds to the stats; true if identical.
 */
bool drill_compare(Drill *d);

/* ---- faults ---- */
bool drill_restart_source(Drill *d, const char *mode); /* fast|immediate */
bool drill_restart_target(Drill *d, const char *mode);
bool drill_terminate_walsender(Drill *d);
bool drill_terminate_apply(Drill *d);
/* kill -9 of pgstream's backends on the target (the OOM killer) */
bool drill_kill9_apply(Drill *d);

/* ---- network namespace ---- */

/*
 * Create the namespace and veth pair (a subnet 10.200.N.0/24 private to this
 * process).  False, with the reason, if this machine cannot (not root, no ip).
 */
bool drill_netns_setup(DrillNetns *ns);
void drill_netns_teardown(DrillNetns *ns);
/* Configure an initialised cluster to listen on ns->ns_addr, start it in the
 * namespace. */
bool drill_netns_cluster_start(DrillNetns *ns, Cluster *c);
/* ip link set veth_root down / up */
bool drill_netns_link(DrillNetns *ns, bool up);

/* ---- scenarios (each a full migration ending in cutover + compare) ---- */

typedef struct DrillConfig
{
	int scale;
	int split_mb;
	int jobs;
	int clients;
	int rate;
	int kills_schema;
	int kills_copy;
	int kills_index;
	int kills_stream;
	int kills_cutover;
	int partition_s;
	uint64_t seed;
	/* re-run sync when it exits on a lost target connection (a known
	 * engine bug) instead of failing: for make test until it is fixed */
	bool tolerate_lost_target;
	/* drill 6 / the short windows drill: pgbench -R of the big
	 * multi-statement transactions' script mix */
	int windows_rate;
	int windows_seconds; /* how long the target stays stopped per kill */
	/*
	 * TRUNCATE ONLY of the parent from the start, through the full load
	 * and catch-up; false: it joins the load once sync streams.  From the
	 * start it found that a TRUNCATE committed after the slot's snapshot
	 * emptied the table under it (fixed: the copy locks the tables before
	 * the snapshot exists, engine/fullload.c).
	 */
	bool windows_truncate_early;
} DrillConfig;

/* Drill 1: kill -9 at failpoints of every phase, and of cutover. */
bool drill_run_kills(Cluster *src, Cluster *tgt, const DrillConfig *cfg,
                     DrillStats *st);
/* Drill 2: fast and immediate restart of the source, then of the target. */
bool drill_run_restarts(Cluster *src, Cluster *tgt, const DrillConfig *cfg,
                        DrillStats *st);
/* Drill 3: pg_terminate_backend of the walsender and the apply backend
 * (twice each), then kill -9 of the apply backend. */
bool drill_run_terminate(Cluster *src, Cluster *tgt, const DrillConfig *cfg,
                         DrillStats *st);
/* Drill 4: partitions of cfg->partition_s seconds between pgstream and a
 * target in a network namespace (tgt must be initialised, not started). */
bool drill_run_partition(Cluster *src, Cluster *tgt, DrillNetns *ns,
                         const DrillConfig *cfg, DrillStats *st);
/* Drill 5: a row the target rejects; resume once the operator fixes it. */
bool drill_run_reject(Cluster *src, Cluster *tgt, const DrillConfig *cfg,
                      DrillStats *st);
/*
 * Drill 6: the windows of issue 13.  sync --spool under a load of big
 * multi-statement transactions (streamed in progress at
 * logical_decoding_work_mem=64kB) with UPDATE, DELETE and TRUNCATE ONLY on
 * an inheritance parent with children; kill -9 at every spool failpoint in
 * turn while the target is stopped; cutover killed after its freeze and
 * around its barrier while a writer keeps committing; every acknowledged
 * commit of the writer on the target; cutover run a second time.
 */
bool drill_run_windows(Cluster *src, Cluster *tgt, const DrillConfig *cfg,
                       DrillStats *st);

/* Does the pgstream binary contain text (a failpoint name, a message)? */
bool drill_binary_has(const char *text);

/* The short drill of make test: kills, one restart of each server, one
 * terminate of the walsender, a cutover kill. */
bool drill_run_short(Cluster *src, Cluster *tgt, const DrillConfig *cfg,
                     DrillStats *st);

/* The figures block (also used for the results file). */
void drill_print_figures(FILE *f, const DrillStats *st, uint64_t seed,
                         double seconds);

#endif /* PGSTREAM_TESTS_DRILL_DRILL_LIB_H */
