/*
 * engine/subproc.h -- run a helper program (pg_dump, pg_restore, pg_config)
 * without a shell.
 *
 * The program is started from an argv array with posix_spawnp(), so there is
 * no quoting to get wrong and nothing is ever interpreted by /bin/sh.  Extra
 * environment entries ("PGPASSWORD=...") are passed to the child only; this
 * is how secrets reach libpq-based tools, because a command line is visible
 * to every local user in the process table.
 *
 * The child gets stdin from /dev/null.  Its stdout goes to a file, into a
 * malloc'd buffer, or to /dev/null.  Its stderr is read by us and the last
 * SUBPROC_STDERR_MAX bytes are kept for the error message when the program
 * fails; anything in them that looks like a password is masked first.
 *
 * Nothing here logs: failures come back as a SyncError (SYNC_ERR_IO) naming
 * the program, its exit status and the tail of what it printed on stderr.
 */
#ifndef PGSTREAM_ENGINE_SUBPROC_H
#define PGSTREAM_ENGINE_SUBPROC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "protocol/error.h"

/* How much of the child's stderr is kept (the end of it). */
#define SUBPROC_STDERR_MAX 8192

/* Default limit for captured stdout, to fail cleanly instead of swapping. */
#define SUBPROC_DEFAULT_MAX_STDOUT ((size_t) 1 << 31)

typedef struct SubprocOptions
{
	/* NULL or a NULL-terminated list of "NAME=value" added to (or replacing
	 * entries of) the current environment, for the child only */
	const char *const *env_extra;
	/* if not NULL, the child's stdout is written to this file (created with
	 * mode 0600, truncated) */
	const char *stdout_path;
	/* if true (and stdout_path is NULL), stdout is collected in memory */
	bool capture_stdout;
	/* limit for captured stdout; 0 means SUBPROC_DEFAULT_MAX_STDOUT */
	size_t max_stdout_bytes;
	/* if not NULL, checked every 100 ms: once it is set (by a signal
	 * handler) the child gets SIGTERM, is waited for, and the run fails
	 * with "stopped by a signal" -- never left running on its own */
	volatile sig_atomic_t *stop;
} SubprocOptions;

/*
 * Run argv[0] (looked up in PATH unless it contains a '/') with arguments
 * argv[1..] (NULL-terminated) and wait for it.  opts may be NULL (stdout to
 * /dev/null, no extra environment).  Succeeds only if the program exits with
 * status 0.
 *
 * When opts->capture_stdout is set and out is not NULL, *out receives the
 * malloc'd, NUL-terminated stdout (the caller frees it) and *out_len its
 * length (out_len may be NULL).  On failure *out is NULL.
 */
bool subproc_run(const char *const argv[], const SubprocOptions *opts,
                 char **out, size_t *out_len, SyncError *err);

/*
 * Copy text into buf (of bufsize bytes, always NUL-terminated) with the value
 * of every "password=..." keyword and the password part of every
 * "postgres[ql]://user:password@" URI replaced by "*****".  Returns buf.
 */
char *subproc_scrub_secrets(const char *text, char *buf, size_t bufsize);

/*
 * Find a PostgreSQL client program (e.g. "pg_dump") and write the path to run
 * into path.  Looked up, in order:
 *   1. $PGSTREAM_PG_BINDIR, if set (an error if the program is not there);
 *   2. the directory printed by `pg_config --bindir`;
 *   3. /usr/lib/postgresql/<highest version>/bin (Debian and Ubuntu layout;
 *      $PGSTREAM_PG_ROOT replaces /usr/lib/postgresql, for tests);
 *   4. the bare name, to be found in PATH when it is run.
 */
bool subproc_find_pg_program(const char *name, char *path, size_t path_size,
                             SyncError *err);

/*
 * A /usr/lib/postgresql/<N>/bin (or under $PGSTREAM_PG_ROOT) holding a
 * pg_dump of a major >= min_major: the newest not newer than max_major,
 * else the oldest newer one.  For when the one found above is older than
 * the source.  False if there is none.
 */
bool subproc_find_pg_bindir_for(int min_major, int max_major, char *dir,
                                size_t dir_size);

#endif /* PGSTREAM_ENGINE_SUBPROC_H */
