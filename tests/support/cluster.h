/*
 * tests/support/cluster.h -- throwaway PostgreSQL clusters for integration
 * tests, modelled on PostgreSQL's TAP PostgreSQL::Test::Cluster.
 *
 *   Cluster src;
 *
 *   cluster_init(&src, "source", CLUSTER_LOGICAL);   initdb in a temp dir
 *   cluster_set(&src, "logical_decoding_work_mem = 64kB");
 *   cluster_start(&src);
 *   cluster_psql(&src, "postgres", "CREATE TABLE t (id int primary key)");
 *   ...
 *   cluster_destroy(&src);                           stop, rm -rf
 *
 * Each cluster lives in its own mkdtemp directory ($TMPDIR or /tmp,
 * "pgstream-test-<name>-XXXXXX") holding data/ (the data directory), log
 * (the server log) and the Unix socket.  The server listens on 127.0.0.1 at a
 * free port picked at init time.  Authentication is trust; the superuser is
 * "postgres".  When run as root, initdb, pg_ctl and the server run as the
 * "postgres" OS user through runuser (initdb refuses root).  No shell is
 * involved anywhere.
 *
 * Clean-up.  Every cluster is registered in a process-wide list together
 * with the pid of the process that created it.  Only that process stops it:
 *   - an atexit handler destroys the creator's clusters that are left;
 *   - a SIGINT/SIGTERM/SIGHUP handler sends the postmasters an immediate
 *     shutdown, then chains to the previous handler (Check's, during a run);
 *   - a small guardian process per cluster, holding the read end of a pipe
 *     only the creator writes to, stops the server and removes the directory
 *     when the creator dies in any other way (SIGKILL, a sanitizer abort).
 * Check forks per test (CK_FORK): create clusters in an unchecked fixture
 * (tcase_add_unchecked_fixture), so they are made once per TCase in the
 * parent and outlive each forked test.  A forked test may stop, start and
 * restart a cluster; the parent's copy of the struct goes stale in its
 * running flag only, and clean-up does not depend on it.
 *
 * Set PGSTREAM_TEST_KEEP=1 to keep the directories (and logs) for
 * inspection; their paths are printed when the cluster is destroyed.
 * Set PGSTREAM_PG_BINDIR to choose the PostgreSQL binaries of cluster_init();
 * by default the newest /usr/lib/postgresql/<major>/bin is used, else $PATH.
 *
 * Other majors.  cluster_init_major(&c, "source", CLUSTER_LOGICAL, 11) runs
 * initdb, pg_ctl and postgres of that major: Debian's
 * /usr/lib/postgresql/<major>/bin when installed (15 here), else the cache
 * that tests/support/install-pg-majors.sh fills (make deps / make test):
 * $PGSTREAM_PG_CACHE/<major>/bin, default /var/cache/pgstream/pg as root and
 * $HOME/.cache/pgstream/pg otherwise.  Those binaries find their libraries
 * through their RUNPATH ($ORIGIN/../lib); no LD_LIBRARY_PATH is involved.
 * PGSTREAM_PG_BINDIR does not apply to them.  Client tools (pg_dump, psql)
 * are not in the cache: they stay Debian's.  The base configuration the
 * harness writes is valid on every major 11-18; a caller's setting that
 * exists only on newer majors (logical_decoding_work_mem is 13+,
 * wal_keep_size 13+) goes through cluster_set_since().
 */
#ifndef PGSTREAM_TESTS_SUPPORT_CLUSTER_H
#define PGSTREAM_TESTS_SUPPORT_CLUSTER_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include <libpq-fe.h>

/* cluster_init() flags */
#define CLUSTER_LOGICAL 0x01 /* wal_level=logical, slots and senders */

/*
 * Caller-allocated (usually a static in the test file).  It is registered
 * by address, so it must stay put until cluster_destroy(): never copy it.
 */
typedef struct Cluster
{
	char name[32];
	unsigned flags;
	int major;              /* from PG_VERSION once initdb has run */
	char bindir[PATH_MAX];  /* initdb, pg_ctl, postgres; "" for $PATH */
	char basedir[PATH_MAX]; /* mkdtemp dir; also the socket dir */
	char datadir[PATH_MAX]; /* basedir/data */
	char logfile[PATH_MAX]; /* basedir/log */
	char pidfile[PATH_MAX]; /* datadir/postmaster.pid */
	int port;
	bool running;         /* as far as this process knows */
	pid_t postmaster_pid; /* from postmaster.pid after start */
	pid_t creator_pid;    /* only this process cleans up */
	pid_t guardian_pid;
	int guardian_fd; /* write end; closing it wakes the guardian */
} Cluster;

/* initdb and configure; the server is not started.  False on failure (the
 * struct is then safe to pass to cluster_destroy()). */
bool cluster_init(Cluster *c, const char *name, unsigned flags);

/*
 * cluster_init() with the server programs of PostgreSQL major (11, 12, ...;
 * 0 means cluster_init()'s default).  Fails with a message saying how to
 * fetch the major when it is neither installed nor cached, or when initdb
 * made a data directory of another major.
 */
bool cluster_init_major(Cluster *c, const char *name, unsigned flags,
                        int major);

/*
 * Where the server programs of major are (see "Other majors" above): true
 * and the directory in bindir, or false when the major is neither installed
 * nor completely cached.  Prints nothing.
 */
bool cluster_major_bindir(int major, char *bindir, size_t len);

/* The cache directory install-pg-majors.sh fills (see above), in buf. */
void cluster_major_cache_dir(char *buf, size_t len);

/*
 * Append one line ("name = value") to postgresql.conf.  Before start, or
 * after it followed by cluster_reload() or cluster_restart().
 */
bool cluster_set(Cluster *c, const char *guc_line);

/*
 * cluster_set() only when the cluster's major is min_major or newer (the
 * setting does not exist before, and an unknown setting stops the server
 * from starting); true without writing anything otherwise.
 */
bool cluster_set_since(Cluster *c, int min_major, const char *guc_line);

/* pg_ctl -w start; retries on another port if the port was taken. */
bool cluster_start(Cluster *c);

/* pg_ctl -w stop -m mode ("smart", "fast" or "immediate").  True if the
 * server is not running afterwards (including when it was not running). */
bool cluster_stop(Cluster *c, const char *mode);

/* Fast stop, then start. */
bool cluster_restart(Cluster *c);

/* pg_ctl reload: re-read postgresql.conf. */
bool cluster_reload(Cluster *c);

/* Stop (immediate) if running, remove the directory, unregister.  Safe on
 * a zeroed or half-initialised struct, and twice. */
void cluster_destroy(Cluster *c);

/*
 * "host=<basedir> port=<port> user=postgres dbname=<dbname>" (dbname NULL
 * means "postgres").  The string lives in a static ring of 8 buffers shared
 * by all clusters: it stays valid for the next 7 calls, so two of them in
 * one expression are fine; copy it to keep it longer.
 */
const char *cluster_conninfo(const Cluster *c, const char *dbname);

/* PQconnectdb(cluster_conninfo(c, dbname) + extra), extra may be NULL or e.g.
 * "replication=database".  NULL (error printed) on failure. */
PGconn *cluster_connect(const Cluster *c, const char *dbname,
                        const char *extra);

/* Run SQL (several statements allowed; one implicit transaction unless the
 * SQL says otherwise).  False on any error, with the server error printed. */
bool cluster_psql(const Cluster *c, const char *dbname, const char *sql);

/*
 * Run a query returning one row of one column.  False on error (printed).
 * On success *value is the malloc'd text value, or NULL for SQL NULL.
 */
bool cluster_query(const Cluster *c, const char *dbname, const char *sql,
                   char **value);

/* cluster_query() for callers that do not care to tell an error from SQL
 * NULL: malloc'd text value, or NULL. */
char *cluster_query_scalar(const Cluster *c, const char *dbname,
                           const char *sql);

/*
 * Poll sql (one boolean) every 50 ms until it returns true or deadline_ms
 * elapses.  Errors while polling (e.g. the server still starting) count as
 * "not yet"; the last one is printed if the deadline passes.
 */
bool cluster_wait_for(const Cluster *c, const char *dbname, const char *sql,
                      int deadline_ms);

/*
 * md5 of all rows of qualified_table as text, in order_by order, for
 * comparing source and target.  malloc'd; NULL on error.
 */
char *cluster_table_digest(const Cluster *c, const char *dbname,
                           const char *qualified_table, const char *order_by);

/* Print the last max_bytes of the server log on stderr (for failures). */
void cluster_print_log_tail(const Cluster *c, size_t max_bytes);

#endif /* PGSTREAM_TESTS_SUPPORT_CLUSTER_H */
