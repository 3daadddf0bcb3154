/*
 * engine/failpoint.h -- named fault-injection points for test builds.
 *
 * A failpoint names a moment where timing matters ("spool.after_flush",
 * "cutover.after_freeze").  Test builds (make MODE=san or MODE=debug define
 * PGSTREAM_FAILPOINTS) can arm it from the environment to pause there, kill
 * the process as kill -9 would, send the process a signal, or make the
 * caller fail; release builds compile every FAILPOINT() to nothing.
 *
 *   PGSTREAM_FAILPOINTS="name=action[@N][;name=action[@N]...]"
 *   PGSTREAM_FAILPOINT_DIR=dir    (needed by "pause")
 *
 * Actions:
 *   crash      raise(SIGKILL) on the N-th hit (default: the first)
 *   pause      create dir/name.paused (holding the pid), then wait until a
 *              test removes it; the process stays paused meanwhile
 *   error      FAILPOINT_ERROR(name) is true on the N-th hit
 *   sigterm, sigint, sighup
 *              raise that signal on the N-th hit and carry on, as if an
 *              operator had sent it at exactly that moment
 *
 * "@N" fires on the N-th hit only; "@N+" on the N-th and every later one.
 * Every hit of an armed point is counted under a mutex, so points are safe
 * in any thread.  tests/support/failpoint_ctl.[ch] waits for and releases
 * paused points.
 */
#ifndef PGSTREAM_ENGINE_FAILPOINT_H
#define PGSTREAM_ENGINE_FAILPOINT_H

#include <stdbool.h>

#ifdef PGSTREAM_FAILPOINTS

/* Run the action armed for name, if any (crash, pause, signal). */
void		failpoint_hit(const char *name);

/* Like failpoint_hit; true when an "error" action fires here. */
bool		failpoint_error(const char *name);

#define FAILPOINT(name) failpoint_hit(name)
#define FAILPOINT_ERROR(name) failpoint_error(name)

#else

#define FAILPOINT(name) ((void) 0)
#define FAILPOINT_ERROR(name) false

#endif

#endif
