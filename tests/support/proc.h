/*
 * tests/support/proc.h -- run a subprocess without a shell, for tests.
 *
 * Two shapes:
 *
 *   proc_run()    runs a command to completion (or to a deadline) and captures
 *                 its stdout and stderr in memory;
 *   proc_spawn()  starts a command in the background with stdout and stderr
 *                 going to temporary files, so that a test can signal it
 *                 (kill -9 the engine mid-run), wait for it, then read what
 *                 it printed.
 *
 * Commands are exec'd directly from argv: there is never a shell, so there is
 * no quoting to get wrong.  argv[0] without a '/' is looked up in $PATH.
 * argv is const char *const[] rather than execvp()'s char *const[] so that
 * callers can list string literals under -Wwrite-strings without casts.
 * Children get stdin from /dev/null, default signal dispositions and no file
 * descriptors beyond 0-2; they stay in the caller's process group, so Check's
 * timeout (which kills the test's process group) takes them down too.
 *
 * A process started by proc_spawn() that is still running when the process
 * that spawned it exits is SIGKILLed and reaped from an atexit handler.
 *
 * Status values: 0-255 is the exit code, 128+N means killed by signal N (as
 * in the shell), PROC_ERROR means the command could not be started (a reason
 * was printed on stderr) and PROC_TIMEOUT means the deadline passed (the
 * child was SIGKILLed).
 */
#ifndef PGSTREAM_TESTS_SUPPORT_PROC_H
#define PGSTREAM_TESTS_SUPPORT_PROC_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#define PROC_ERROR (-1)
#define PROC_TIMEOUT (-2)

/*
 * A background process.  Caller-allocated; fill it with proc_spawn() and
 * always finish with proc_release().  Do not copy it.
 */
typedef struct Proc
{
	pid_t pid;               /* 0 once reaped */
	int status;              /* valid once reaped: see above */
	char out_path[PATH_MAX]; /* owned temporary file */
	char err_path[PATH_MAX]; /* owned temporary file */
} Proc;

/*
 * Run argv to completion.  env_extra is NULL or a NULL-terminated list of
 * "NAME=value" strings that are added to (or replace entries of) the current
 * environment.  timeout_ms <= 0 means no deadline.  out and err may be NULL;
 * otherwise they receive malloc'd, NUL-terminated output (also on timeout,
 * holding what was read so far), which the caller frees.
 */
int proc_run(const char *const argv[], const char *const env_extra[],
             int timeout_ms, char **out, char **err);

/* proc_run() with the child's working directory set to cwd (NULL: inherit). */
int proc_run_in(const char *cwd, const char *const argv[],
                const char *const env_extra[], int timeout_ms, char **out,
                char **err);

/*
 * Start argv in the background.  Returns false (with a message on stderr) if
 * it could not be started; proc_release() is then still safe to call.
 */
bool proc_spawn(Proc *p, const char *const argv[],
                const char *const env_extra[]);

/* Send sig to the process.  False if it has already been reaped. */
bool proc_kill(const Proc *p, int sig);

/*
 * Wait up to timeout_ms (< 0: forever) for the process to exit.  Returns its
 * status, or PROC_TIMEOUT if it is still running.  Calling it again after the
 * process was reaped returns the same status.
 */
int proc_wait(Proc *p, int timeout_ms);

/*
 * proc_wait() that also stores the child's peak resident set size in KiB
 * (wait4's ru_maxrss) in *maxrss_kb when it reaps the child.
 */
int proc_wait_maxrss(Proc *p, int timeout_ms, long *maxrss_kb);

/* What the process has written so far (malloc'd, NUL-terminated; never NULL
 * unless out of memory). */
char *proc_stdout(const Proc *p);
char *proc_stderr(const Proc *p);

/* SIGKILL the process if it still runs, reap it, remove its output files. */
void proc_release(Proc *p);

/* Read a whole file into a malloc'd NUL-terminated string; NULL on error. */
char *proc_read_file(const char *path);

/* Milliseconds on the monotonic clock, for deadlines. */
long long proc_now_ms(void);

#endif /* PGSTREAM_TESTS_SUPPORT_PROC_H */
