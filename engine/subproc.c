/*
 * engine/subproc.c -- run helper programs without a shell.
 *
 * posix_spawnp() rather than fork(): pgstream is multi-threaded, and after a
 * fork() only async-signal-safe calls are allowed before exec; posix_spawn
 * does the file-descriptor plumbing for us with that rule respected.  The
 * pipes we create are close-on-exec, so a child started from another thread
 * at the same moment does not inherit them (libpq marks its sockets the same
 * way).  The pipe ends the child needs are dup2()'d to 1 and 2, which clears
 * the flag on the copies.
 *
 * stdout and stderr are drained together with poll(): a child that fills
 * one pipe while we block on the other would otherwise deadlock.
 */
#include "engine/subproc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/failpoint.h"

extern char **environ;

#define READ_CHUNK 65536
#define MESSAGE_TAIL 360 /* stderr bytes that fit in a SyncError */

/* The last SUBPROC_STDERR_MAX bytes of a stream. */
typedef struct TailBuf
{
	char data[SUBPROC_STDERR_MAX + 1];
	size_t len;
	bool cut; /* earlier bytes were dropped */
} TailBuf;

/* A growing buffer for captured stdout. */
typedef struct OutBuf
{
	char *data; /* owned */
	size_t len;
	size_t cap;
	size_t max;
	bool too_big;
	bool nomem;
} OutBuf;

static void
tail_append(TailBuf *t, const char *p, size_t n)
{
	if (n >= SUBPROC_STDERR_MAX)
	{
		memcpy(t->data, p + n - SUBPROC_STDERR_MAX, SUBPROC_STDERR_MAX);
		t->len = SUBPROC_STDERR_MAX;
		t->cut = true;
	}
	else
	{
		if (t->len + n > SUBPROC_STDERR_MAX)
		{
			size_t drop = t->len + n - SUBPROC_STDERR_MAX;

			memmove(t->data, t->data + drop, t->len - drop);
			t->len -= drop;
			t->cut = true;
		}
		memcpy(t->data + t->len, p, n);
		t->len += n;
	}
	t->data[t->len] = '\0';
}

static void
out_append(OutBuf *o, const char *p, size_t n)
{
	if (o->too_big || o->nomem)
		return;
	if (n > o->max - o->len)
	{
		o->too_big = true;
		return;
	}
	if (o->len + n + 1 > o->cap)
	{
		size_t cap = o->cap ? o->cap : READ_CHUNK;
		char *grown;

		while (cap < o->len + n + 1)
			cap *= 2;
		grown = realloc(o->data, cap);
		if (grown == NULL)
		{
			o->nomem = true;
			return;
		}
		o->data = grown;
		o->cap = cap;
	}
	memcpy(o->data + o->len, p, n);
	o->len += n;
	o->data[o->len] = '\0';
}

/* Case-insensitive prefix test. */
static bool
has_prefix_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Length of a keyword value at s: a quoted '...' string or a bare word. */
static size_t
keyword_value_len(const char *s)
{
	size_t i = 0;

	if (s[0] != '\'')
	{
		while (s[i] != '\0' && !isspace((unsigned char) s[i]))
			i++;
		return i;
	}
	for (i = 1; s[i] != '\0' && s[i] != '\''; i++)
	{
		if (s[i] == '\\' && s[i + 1] != '\0')
			i++;
	}
	return s[i] == '\'' ? i + 1 : i;
}

/*
 * For a URI starting at s ("postgresql://..."), find the password in its
 * user info: sets *start and *len and returns true if there is one.
 */
static bool
uri_password(const char *s, size_t *start, size_t *len)
{
	const char *auth = strstr(s, "://") + 3;
	size_t end = strcspn(auth, "/?# \t\n");
	const char *at = NULL;
	const char *colon;

	for (size_t i = 0; i < end; i++)
		if (auth[i] == '@')
			at = auth + i;
	if (at == NULL)
		return false;
	colon = memchr(auth, ':', (size_t) (at - auth));
	if (colon == NULL)
		return false;
	*start = (size_t) (colon + 1 - s);
	*len = (size_t) (at - colon - 1);
	return true;
}

/* Append n bytes of p to buf if they fit, keeping room for the NUL. */
static void
buf_put(char *buf, size_t bufsize, size_t *used, const char *p, size_t n)
{
	if (*used + 1 >= bufsize)
		return;
	if (n > bufsize - 1 - *used)
		n = bufsize - 1 - *used;
	memcpy(buf + *used, p, n);
	*used += n;
	buf[*used] = '\0';
}

char *
subproc_scrub_secrets(const char *text, char *buf, size_t bufsize)
{
	size_t used = 0;
	const char *p = text;

	if (bufsize == 0)
		return buf;
	buf[0] = '\0';
	while (*p != '\0')
	{
		size_t start, len;

		if (has_prefix_ci(p, "password="))
		{
			buf_put(buf, bufsize, &used, p, 9);
			p += 9;
			buf_put(buf, bufsize, &used, "*****", 5);
			p += keyword_value_len(p);
		}
		else if ((has_prefix_ci(p, "postgresql://") ||
		          has_prefix_ci(p, "postgres://")) &&
		         uri_password(p, &start, &len))
		{
			buf_put(buf, bufsize, &used, p, start);
			buf_put(buf, bufsize, &used, "*****", 5);
			p += start + len;
		}
		else
			buf_put(buf, bufsize, &used, p++, 1);
	}
	return buf;
}

/* Does environment entry e ("NAME=value") set the same name as x? */
static bool
same_env_name(const char *e, const char *x)
{
	const char *eq = strchr(x, '=');
	size_t n = eq ? (size_t) (eq - x) : strlen(x);

	return strncmp(e, x, n) == 0 && e[n] == '=';
}

/* environ with env_extra added or replacing; a malloc'd array of borrowed
 * strings, or NULL on out-of-memory. */
static char **
build_env(const char *const *extra)
{
	size_t n = 0, nextra = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	while (extra != NULL && extra[nextra] != NULL)
		nextra++;
	env = malloc((n + nextra + 1) * sizeof(char *));
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
	{
		bool replaced = false;

		for (size_t j = 0; j < nextra && !replaced; j++)
			replaced = same_env_name(environ[i], extra[j]);
		if (!replaced)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < nextra; j++)
		env[k++] = (char *) extra[j];
	env[k] = NULL;
	return env;
}

/* A pipe whose both ends are close-on-exec.  fds are -1 on failure. */
static bool
make_pipe(int fds[2])
{
	if (pipe(fds) != 0)
	{
		fds[0] = fds[1] = -1;
		return false;
	}
	(void) fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	(void) fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	return true;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Plumbing for the child: stdin, stdout and stderr.  Returns an errno. */
static int
setup_actions(posix_spawn_file_actions_t *fa, const SubprocOptions *opts,
              int out_w, int err_w)
{
	int rc;

	rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
	if (rc == 0 && opts->stdout_path != NULL)
		rc = posix_spawn_file_actions_addopen(
		    fa, 1, opts->stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	else if (rc == 0 && out_w >= 0)
		rc = posix_spawn_file_actions_adddup2(fa, out_w, 1);
	else if (rc == 0)
		rc = posix_spawn_file_actions_addopen(fa, 1, "/dev/null", O_WRONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(fa, err_w, 2);
	return rc;
}

/* Read one chunk from *fd into the sink; closes *fd at end of file. */
static void
drain_fd(int *fd, OutBuf *out, TailBuf *tail)
{
	char chunk[READ_CHUNK];
	ssize_t n = read(*fd, chunk, sizeof(chunk));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0)
	{
		close_fd(fd);
		return;
	}
	if (out != NULL)
		out_append(out, chunk, (size_t) n);
	else
		tail_append(tail, chunk, (size_t) n);
}

/*
 * Read both pipes until the child closes them.  With a stop flag, look at it
 * every 100 ms; once set, send the child SIGTERM (once) and keep reading
 * until it has gone.  Returns whether the child was told to stop.
 */
static bool
collect_output(int *out_r, int *err_r, OutBuf *out, TailBuf *tail, pid_t pid,
               volatile sig_atomic_t *stop)
{
	bool stopped = false;

	while (*out_r >= 0 || *err_r >= 0)
	{
		struct pollfd pfd[2];
		nfds_t n = 0;
		int ready;

		if (stop != NULL && *stop && !stopped)
		{
			(void) kill(pid, SIGTERM);
			stopped = true;
		}
		if (*out_r >= 0)
			pfd[n++] = (struct pollfd){.fd = *out_r, .events = POLLIN};
		if (*err_r >= 0)
			pfd[n++] = (struct pollfd){.fd = *err_r, .events = POLLIN};
		ready = poll(pfd, n, stop != NULL ? 100 : -1);
		if (ready < 0)
		{
			if (errno == EINTR)
				continue;
			break;
		}
		for (nfds_t i = 0; i < n; i++)
		{
			if (pfd[i].revents == 0)
				continue;
			if (pfd[i].fd == *out_r)
				drain_fd(out_r, out, NULL);
			else
				drain_fd(err_r, NULL, tail);
		}
	}
	close_fd(out_r);
	close_fd(err_r);
	return stopped;
}

static const char *
program_name(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');

	return slash ? slash + 1 : argv0;
}

/* Fill err for a program that ran but failed. */
static bool
report_failure(const char *prog, int status, const TailBuf *tail,
               SyncError *err)
{
	char scrubbed[SUBPROC_STDERR_MAX + 1];
	char *msg;
	size_t len;
	char how[64];

	subproc_scrub_secrets(tail->data, scrubbed, sizeof(scrubbed));
	for (char *c = scrubbed; *c; c++)
		if (*c == '\n' || *c == '\r' || *c == '\t')
			*c = ' ';
	len = strlen(scrubbed);
	while (len > 0 && scrubbed[len - 1] == ' ')
		scrubbed[--len] = '\0';
	msg = len > MESSAGE_TAIL ? scrubbed + len - MESSAGE_TAIL : scrubbed;
	if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exited with status %d",
		         WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "was terminated by signal %d",
		         WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "ended with wait status %d", status);
	return sync_error_set(
	    err, SYNC_ERR_IO, "%s %s%s%s%s", prog, how, *msg ? ": " : "",
	    (msg != scrubbed || tail->cut) && *msg ? "..." : "", msg);
}

static int
wait_child(pid_t pid)
{
	int status = 0;

	while (waitpid(pid, &status, 0) < 0)
	{
		if (errno != EINTR)
			return -1;
	}
	return status;
}

/* Spawn argv with pipes prepared; fills *pid or returns an errno. */
static int
spawn_child(const char *const argv[], const SubprocOptions *opts, int out_w,
            int err_w, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	char **env = build_env(opts->env_extra);
	int rc;

	if (env == NULL)
		return ENOMEM;
	rc = posix_spawn_file_actions_init(&fa);
	if (rc == 0)
	{
		rc = setup_actions(&fa, opts, out_w, err_w);
		if (rc == 0)
			rc = posix_spawnp(pid, argv[0], &fa, NULL, (char *const *) argv,
			                  env);
		posix_spawn_file_actions_destroy(&fa);
	}
	free(env);
	return rc;
}

/* Turn the collected stdout into the caller's result. */
static bool
finish_stdout(const char *prog, OutBuf *ob, char **out, size_t *out_len,
              SyncError *err)
{
	if (ob->nomem)
		return sync_error_set(err, SYNC_ERR_NOMEM,
		                      "out of memory reading the output of %s", prog);
	if (ob->too_big)
		return sync_error_set(err, SYNC_ERR_IO,
		                      "output of %s is larger than %zu bytes", prog,
		                      ob->max);
	if (out == NULL)
		return true;
	if (ob->data == NULL && (ob->data = calloc(1, 1)) == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	*out = ob->data;
	ob->data = NULL;
	if (out_len != NULL)
		*out_len = ob->len;
	return true;
}

bool
subproc_run(const char *const argv[], const SubprocOptions *opts, char **out,
            size_t *out_len, SyncError *err)
{
	static const SubprocOptions defaults = {0};
	const char *prog = program_name(argv[0]);
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	OutBuf ob = {0};
	TailBuf *tail = NULL;
	pid_t pid;
	int rc, status;
	bool capture;
	bool stopped;
	bool ok = false;

	if (out != NULL)
		*out = NULL;
	opts = opts ? opts : &defaults;
	capture = opts->capture_stdout && opts->stdout_path == NULL;
	ob.max = opts->max_stdout_bytes ? opts->max_stdout_bytes
	                                : SUBPROC_DEFAULT_MAX_STDOUT;
	tail = calloc(1, sizeof(TailBuf));
	if (tail == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	if ((capture && !make_pipe(outp)) || !make_pipe(errp))
	{
		sync_error_set(err, SYNC_ERR_IO, "could not create pipe for %s: %s",
		               prog, strerror(errno));
		goto done;
	}
	rc = spawn_child(argv, opts, outp[1], errp[1], &pid);
	close_fd(&outp[1]);
	close_fd(&errp[1]);
	if (rc != 0)
	{
		sync_error_set(err, SYNC_ERR_IO, "could not run \"%s\": %s", argv[0],
		               strerror(rc));
		goto done;
	}
	/* subproc.after_spawn: the child runs, its output not yet read */
	FAILPOINT("subproc.after_spawn");
	stopped = collect_output(&outp[0], &errp[0], &ob, tail, pid, opts->stop);
	status = wait_child(pid);
	if (status < 0)
		sync_error_set(err, SYNC_ERR_IO, "could not wait for %s: %s", prog,
		               strerror(errno));
	else if (stopped)
		sync_error_set(err, SYNC_ERR_INTERNAL, "stopped by a signal (%s was ended)", prog);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		report_failure(prog, status, tail, err);
	else
		ok = finish_stdout(prog, &ob, out, out_len, err);
done:
	close_fd(&outp[0]);
	close_fd(&outp[1]);
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	free(ob.data);
	free(tail);
	return ok;
}

/* Is dir/name an executable file?  Writes the path into path. */
static bool
program_in(const char *dir, const char *name, char *path, size_t path_size)
{
	struct stat st;
	int n = snprintf(path, path_size, "%s/%s", dir, name);

	if (n < 0 || (size_t) n >= path_size)
		return false;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       access(path, X_OK) == 0;
}

/* `pg_config --bindir` into dir; false if pg_config is missing or fails. */
static bool
pg_config_bindir(char *dir, size_t dir_size)
{
	const char *const argv[] = {"pg_config", "--bindir", NULL};
	SubprocOptions opts = {.capture_stdout = true, .max_stdout_bytes = 65536};
	SyncError ignored;
	char *out = NULL;
	size_t len;

	if (!subproc_run(argv, &opts, &out, &len, &ignored))
		return false;
	while (len > 0 && isspace((unsigned char) out[len - 1]))
		out[--len] = '\0';
	snprintf(dir, dir_size, "%s", out);
	free(out);
	return len > 0 && len < dir_size;
}

/* The Debian-layout root: /usr/lib/postgresql, or $PGSTREAM_PG_ROOT (tests). */
static const char *
pg_root(void)
{
	const char *env = getenv("PGSTREAM_PG_ROOT");

	return env != NULL && *env != '\0' ? env : "/usr/lib/postgresql";
}

/* The highest numbered /usr/lib/postgresql/<N>; false if there is none. */
static bool
debian_bindir(const char *name, char *path, size_t path_size)
{
	DIR *d = opendir(pg_root());
	struct dirent *e;
	long best = -1;
	char dir[PATH_MAX];

	if (d == NULL)
		return false;
	while ((e = readdir(d)) != NULL)
	{
		char *end;
		long v = strtol(e->d_name, &end, 10);

		if (end == e->d_name || *end != '\0' || v <= best)
			continue;
		snprintf(dir, sizeof(dir), "%s/%ld/bin", pg_root(), v);
		if (program_in(dir, name, path, path_size))
			best = v;
	}
	closedir(d);
	if (best < 0)
		return false;
	snprintf(dir, sizeof(dir), "%s/%ld/bin", pg_root(), best);
	return program_in(dir, name, path, path_size);
}

bool
subproc_find_pg_bindir_for(int min_major, int max_major, char *dir, size_t dir_size)
{
	DIR		   *d = opendir(pg_root());
	struct dirent *e;
	long		best = -1;
	char		path[PATH_MAX];
	char		bindir[PATH_MAX];

	if (d == NULL)
		return false;
	while ((e = readdir(d)) != NULL)
	{
		char	   *end;
		long		v = strtol(e->d_name, &end, 10);

		if (end == e->d_name || *end != '\0' || v < min_major)
			continue;
		snprintf(bindir, sizeof(bindir), "%s/%ld/bin", pg_root(), v);
		if (!program_in(bindir, "pg_dump", path, sizeof(path)))
			continue;
		/* the newest not newer than max_major, else the oldest above it */
		if (best < 0 || (v <= max_major && (best > max_major || v > best)) ||
			(v > max_major && best > max_major && v < best))
			best = v;
	}
	closedir(d);
	if (best < 0)
		return false;
	snprintf(dir, dir_size, "%s/%ld/bin", pg_root(), best);
	return true;
}

bool
subproc_find_pg_program(const char *name, char *path, size_t path_size,
                        SyncError *err)
{
	const char *env = getenv("PGSTREAM_PG_BINDIR");
	char dir[PATH_MAX];

	if (env != NULL && *env != '\0')
	{
		if (program_in(env, name, path, path_size))
			return true;
		return sync_error_set(
		    err, SYNC_ERR_USAGE,
		    "\"%s\" was not found in PGSTREAM_PG_BINDIR (\"%s\")", name, env);
	}
	if (pg_config_bindir(dir, sizeof(dir)) &&
	    program_in(dir, name, path, path_size))
		return true;
	if (debian_bindir(name, path, path_size))
		return true;
	if (strlen(name) >= path_size)
		return sync_error_set(err, SYNC_ERR_INTERNAL, "program name too long");
	snprintf(path, path_size, "%s", name);
	return true;
}
