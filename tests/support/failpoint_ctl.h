/*
 * tests/support/failpoint_ctl.h -- drive engine/failpoint.h from a test.
 *
 * A test arms points through the environment of the pgstream it spawns:
 *
 *   char env_fp[256], env_dir[PATH_MAX + 32];
 *   FailpointDir fd;
 *   fpctl_init(&fd);                                 (a fresh temp dir)
 *   fpctl_env(&fd, env_dir, sizeof(env_dir));        PGSTREAM_FAILPOINT_DIR=...
 *   const char *env[] = {"PGSTREAM_FAILPOINTS=spool.after_flush=pause", env_dir, NULL};
 *   proc_spawn(&p, argv, env);
 *   ck_assert(fpctl_wait(&fd, "spool.after_flush", 60000));   reached, paused
 *   ... act at exactly that moment (kill -9, stop a server, send a signal) ...
 *   fpctl_release(&fd, "spool.after_flush");         or leave it paused and kill
 *   fpctl_cleanup(&fd);
 */
#ifndef PGSTREAM_TESTS_SUPPORT_FAILPOINT_CTL_H
#define PGSTREAM_TESTS_SUPPORT_FAILPOINT_CTL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct FailpointDir
{
	char		path[PATH_MAX];
} FailpointDir;

/* A fresh temporary directory for paused-point files; false on error. */
bool		fpctl_init(FailpointDir *d);

/* "PGSTREAM_FAILPOINT_DIR=<path>" into buf. */
void		fpctl_env(const FailpointDir *d, char *buf, size_t size);

/*
 * Wait up to timeout_ms for the process to pause at name.  True once it has
 * (the file dir/name.paused exists); false on timeout.
 */
bool		fpctl_wait(const FailpointDir *d, const char *name, int timeout_ms);

/* Has the point paused (without waiting)? */
bool		fpctl_paused(const FailpointDir *d, const char *name);

/* Let the paused process go on. */
void		fpctl_release(const FailpointDir *d, const char *name);

/* Remove the directory and anything left in it. */
void		fpctl_cleanup(FailpointDir *d);

#endif
