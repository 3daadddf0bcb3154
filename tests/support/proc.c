/*
 * tests/support/proc.c -- run a subprocess without a shell, for tests.
 *
 * fork() + execve() with an argv built by the caller.  The executable is
 * resolved against $PATH and the environment is built before fork(), so the
 * child only does async-signal-safe work between fork() and execve().
 *
 * proc_run() reads both pipes with poll() until they reach EOF or the child
 * has exited (a grandchild that keeps a pipe open does not hold us up), and
 * SIGKILLs the child at the deadline.  proc_spawn() sends output to
 * temporary files instead of pipes, so a child nobody reads from never
 * blocks on a full pipe.
 */
#include "tests/support/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Background processes to SIGKILL at exit if their spawner forgot them. */
#define MAX_SPAWNED 64

typedef struct SpawnedEntry
{
	pid_t pid;
	pid_t spawner;
} SpawnedEntry;

static SpawnedEntry spawned[MAX_SPAWNED];
static bool atexit_registered = false;

typedef struct Buf
{
	char *data;
	size_t len;
	size_t cap;
} Buf;

long long
proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
buf_append(Buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap)
	{
		size_t cap = b->cap ? b->cap : 4096;
		char *data;

		while (b->len + n + 1 > cap)
			cap *= 2;
		data = realloc(b->data, cap);
		if (data == NULL)
			return false;
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return true;
}

/* Hand the buffer to *dst (as "" if nothing was read), or free it. */
static void
buf_finish(Buf *b, char **dst)
{
	if (dst == NULL)
	{
		free(b->data);
		return;
	}
	if (b->data == NULL)
		b->data = calloc(1, 1);
	*dst = b->data;
}

/* Find name in $PATH unless it contains a '/'.  False if not found. */
static bool
resolve_executable(const char *name, char *buf, size_t buflen)
{
	const char *path = getenv("PATH");
	const char *p;

	if (strchr(name, '/') != NULL)
		return snprintf(buf, buflen, "%s", name) < (int) buflen;
	if (path == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
	for (p = path;; p++)
	{
		const char *end = strchr(p, ':');
		size_t dirlen = end ? (size_t) (end - p) : strlen(p);
		int n;

		n = snprintf(buf, buflen, "%.*s%s%s", (int) dirlen, p,
		             dirlen ? "/" : "", name);
		if (n > 0 && (size_t) n < buflen && access(buf, X_OK) == 0)
			return true;
		if (end == NULL)
			return false;
		p = end;
	}
}

static bool
env_name_matches(const char *entry, const char *assignment)
{
	const char *eq = strchr(assignment, '=');
	size_t namelen = eq ? (size_t) (eq - assignment) : strlen(assignment);

	return strncmp(entry, assignment, namelen) == 0 && entry[namelen] == '=';
}

static bool
env_overridden(const char *entry, const char *const env_extra[])
{
	for (size_t i = 0; env_extra != NULL && env_extra[i] != NULL; i++)
		if (env_name_matches(entry, env_extra[i]))
			return true;
	return false;
}

/*
 * environ minus the names in env_extra, plus env_extra.  The array is
 * malloc'd; the strings are borrowed.
 */
static char **
build_env(const char *const env_extra[])
{
	size_t n_env = 0;
	size_t n_extra = 0;
	size_t k = 0;
	char **envp;

	while (environ[n_env] != NULL)
		n_env++;
	while (env_extra != NULL && env_extra[n_extra] != NULL)
		n_extra++;
	envp = calloc(n_env + n_extra + 1, sizeof(char *));
	if (envp == NULL)
		return NULL;
	for (size_t i = 0; i < n_env; i++)
		if (!env_overridden(environ[i], env_extra))
			envp[k++] = environ[i];
	for (size_t i = 0; i < n_extra; i++)
		envp[k++] = (char *) env_extra[i];
	envp[k] = NULL;
	return envp;
}

static void
write_str(int fd, const char *s)
{
	ssize_t r = write(fd, s, strlen(s));

	(void) r;
}

/* In the child: set up descriptors and signals, exec.  Never returns. */
static void
child_exec(const char *path, const char *const argv[], char **envp,
           const char *cwd, int out_fd, int err_fd)
{
	static const int reset[] = {SIGPIPE, SIGINT,  SIGTERM, SIGQUIT,
	                            SIGHUP,  SIGCHLD, SIGALRM};
	sigset_t none;
	int devnull = open("/dev/null", O_RDWR);

	if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
	    dup2(out_fd >= 0 ? out_fd : devnull, STDOUT_FILENO) < 0 ||
	    dup2(err_fd >= 0 ? err_fd : devnull, STDERR_FILENO) < 0)
		_exit(127);
	closefrom(3);
	for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
		signal(reset[i], SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (cwd != NULL && chdir(cwd) != 0)
	{
		write_str(STDERR_FILENO, "proc: could not change directory to ");
		write_str(STDERR_FILENO, cwd);
		write_str(STDERR_FILENO, "\n");
		_exit(127);
	}
	/* execve() takes char *const[] for historical reasons; it never writes. */
	execve(path, (char *const *) argv, envp);
	write_str(STDERR_FILENO, "proc: could not execute ");
	write_str(STDERR_FILENO, path);
	write_str(STDERR_FILENO, "\n");
	_exit(127);
}

/* fork + exec; the parent's copies of out_fd/err_fd stay open. */
static pid_t
start_child(const char *const argv[], const char *const env_extra[],
            const char *cwd, int out_fd, int err_fd)
{
	char path[PATH_MAX];
	char **envp;
	pid_t pid;

	if (argv == NULL || argv[0] == NULL)
	{
		fprintf(stderr, "proc: empty argv\n");
		return -1;
	}
	if (!resolve_executable(argv[0], path, sizeof(path)))
	{
		fprintf(stderr, "proc: command \"%s\" not found in PATH\n", argv[0]);
		return -1;
	}
	envp = build_env(env_extra);
	if (envp == NULL)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		child_exec(path, argv, envp, cwd, out_fd, err_fd);
	if (pid < 0)
		fprintf(stderr, "proc: fork failed: %s\n", strerror(errno));
	free(envp);
	return pid;
}

static int
decode_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return PROC_ERROR;
}

/* Blocking waitpid that survives EINTR. */
static int
reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
	{
		if (errno != EINTR)
			return PROC_ERROR;
	}
	return decode_status(status);
}

/* State of one proc_run(). */
typedef struct RunState
{
	pid_t pid;
	int fds[2]; /* read ends; -1 once at EOF */
	Buf bufs[2];
	bool exited;
	int status;
	long long deadline_ms; /* 0: none */
} RunState;

/* Read what is available from fds[i]; close it at EOF or on error. */
static void
run_read(RunState *rs, int i)
{
	char chunk[65536];
	ssize_t n = read(rs->fds[i], chunk, sizeof(chunk));

	if (n > 0)
	{
		buf_append(&rs->bufs[i], chunk, (size_t) n);
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	close(rs->fds[i]);
	rs->fds[i] = -1;
}

/*
 * One poll() round with the given timeout.  Returns the number of
 * descriptors that had data or hung up.
 */
static int
run_poll(RunState *rs, int timeout_ms)
{
	struct pollfd pfds[2];
	int idx[2];
	int n = 0;
	int ready;

	for (int i = 0; i < 2; i++)
	{
		if (rs->fds[i] < 0)
			continue;
		pfds[n].fd = rs->fds[i];
		pfds[n].events = POLLIN;
		pfds[n].revents = 0;
		idx[n++] = i;
	}
	ready = poll(pfds, (nfds_t) n, timeout_ms);
	if (ready <= 0)
		return 0;
	for (int k = 0; k < n; k++)
		if (pfds[k].revents != 0)
			run_read(rs, idx[k]);
	return ready;
}

static void
run_check_exit(RunState *rs)
{
	int status;

	if (!rs->exited && waitpid(rs->pid, &status, WNOHANG) == rs->pid)
	{
		rs->exited = true;
		rs->status = decode_status(status);
	}
}

/* Collect output until both pipes close, the child exits, or the deadline. */
static bool
run_collect(RunState *rs)
{
	while (rs->fds[0] >= 0 || rs->fds[1] >= 0)
	{
		long long slice = 100;

		if (rs->deadline_ms)
		{
			long long left = rs->deadline_ms - proc_now_ms();

			if (left <= 0)
				return false;
			if (left < slice)
				slice = left;
		}
		run_poll(rs, (int) slice);
		run_check_exit(rs);
		if (rs->exited)
		{
			/* Drain what the child left; ignore grandchildren. */
			while ((rs->fds[0] >= 0 || rs->fds[1] >= 0) && run_poll(rs, 0) > 0)
				;
			break;
		}
	}
	return true;
}

static bool
make_pipe(int fds[2])
{
	if (pipe(fds) != 0)
	{
		fprintf(stderr, "proc: pipe failed: %s\n", strerror(errno));
		return false;
	}
	fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	return true;
}

int
proc_run_in(const char *cwd, const char *const argv[],
            const char *const env_extra[], int timeout_ms, char **out,
            char **err)
{
	RunState rs = {.fds = {-1, -1}};
	int out_pipe[2];
	int err_pipe[2];
	bool in_time;

	if (out != NULL)
		*out = NULL;
	if (err != NULL)
		*err = NULL;
	if (!make_pipe(out_pipe))
		return PROC_ERROR;
	if (!make_pipe(err_pipe))
	{
		close(out_pipe[0]);
		close(out_pipe[1]);
		return PROC_ERROR;
	}
	rs.pid = start_child(argv, env_extra, cwd, out_pipe[1], err_pipe[1]);
	close(out_pipe[1]);
	close(err_pipe[1]);
	rs.fds[0] = out_pipe[0];
	rs.fds[1] = err_pipe[0];
	if (rs.pid > 0)
	{
		rs.deadline_ms = timeout_ms > 0 ? proc_now_ms() + timeout_ms : 0;
		in_time = run_collect(&rs);
		if (!in_time)
			kill(rs.pid, SIGKILL);
		if (!rs.exited)
			rs.status = reap(rs.pid);
		if (!in_time)
			rs.status = PROC_TIMEOUT;
	}
	else
		rs.status = PROC_ERROR;
	for (int i = 0; i < 2; i++)
		if (rs.fds[i] >= 0)
			close(rs.fds[i]);
	buf_finish(&rs.bufs[0], out);
	buf_finish(&rs.bufs[1], err);
	return rs.status;
}

int
proc_run(const char *const argv[], const char *const env_extra[],
         int timeout_ms, char **out, char **err)
{
	return proc_run_in(NULL, argv, env_extra, timeout_ms, out, err);
}

/* ---- background processes ---- */

static void
spawned_cleanup(void)
{
	pid_t self = getpid();

	for (int i = 0; i < MAX_SPAWNED; i++)
	{
		if (spawned[i].pid <= 0 || spawned[i].spawner != self)
			continue;
		kill(spawned[i].pid, SIGKILL);
		reap(spawned[i].pid);
		spawned[i].pid = 0;
	}
}

static void
spawned_remember(pid_t pid)
{
	if (!atexit_registered)
	{
		atexit(spawned_cleanup);
		atexit_registered = true;
	}
	for (int i = 0; i < MAX_SPAWNED; i++)
	{
		if (spawned[i].pid <= 0)
		{
			spawned[i].pid = pid;
			spawned[i].spawner = getpid();
			return;
		}
	}
	fprintf(stderr,
	        "proc: more than %d background processes; "
	        "pid %d will not be killed at exit\n",
	        MAX_SPAWNED, (int) pid);
}

static void
spawned_forget(pid_t pid)
{
	for (int i = 0; i < MAX_SPAWNED; i++)
		if (spawned[i].pid == pid)
			spawned[i].pid = 0;
}

/* Create an empty temporary file for output; returns its fd or -1. */
static int
make_output_file(char *path, size_t pathlen, const char *what)
{
	const char *tmp = getenv("TMPDIR");
	int fd;

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(path, pathlen, "%s/pgstream-proc-%s-XXXXXX", tmp, what);
	fd = mkstemp(path);
	if (fd < 0)
	{
		fprintf(stderr, "proc: could not create \"%s\": %s\n", path,
		        strerror(errno));
		path[0] = '\0';
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

bool
proc_spawn(Proc *p, const char *const argv[], const char *const env_extra[])
{
	int out_fd;
	int err_fd;

	memset(p, 0, sizeof(*p));
	p->status = PROC_ERROR;
	out_fd = make_output_file(p->out_path, sizeof(p->out_path), "out");
	err_fd = make_output_file(p->err_path, sizeof(p->err_path), "err");
	if (out_fd >= 0 && err_fd >= 0)
		p->pid = start_child(argv, env_extra, NULL, out_fd, err_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	if (p->pid <= 0)
	{
		p->pid = 0;
		return false;
	}
	spawned_remember(p->pid);
	return true;
}

bool
proc_kill(const Proc *p, int sig)
{
	if (p->pid <= 0)
		return false;
	return kill(p->pid, sig) == 0;
}

int
proc_wait(Proc *p, int timeout_ms)
{
	long long deadline = proc_now_ms() + timeout_ms;
	const struct timespec tick = {0, 10 * 1000 * 1000};

	if (p->pid <= 0)
		return p->status;
	for (;;)
	{
		int status;
		pid_t r = waitpid(p->pid, &status, WNOHANG);

		if (r == p->pid || (r < 0 && errno != EINTR))
		{
			p->status = r == p->pid ? decode_status(status) : PROC_ERROR;
			spawned_forget(p->pid);
			p->pid = 0;
			return p->status;
		}
		if (timeout_ms >= 0 && proc_now_ms() >= deadline)
			return PROC_TIMEOUT;
		nanosleep(&tick, NULL);
	}
}

/*
 * proc_wait() that also gives the child's peak resident set size (wait4's
 * ru_maxrss, in KiB) once it is reaped; *maxrss_kb is left alone while the
 * child still runs or was reaped before.
 */
int
proc_wait_maxrss(Proc *p, int timeout_ms, long *maxrss_kb)
{
	long long deadline = proc_now_ms() + timeout_ms;
	const struct timespec tick = {0, 10 * 1000 * 1000};

	if (p->pid <= 0)
		return p->status;
	for (;;)
	{
		int status;
		struct rusage ru;
		pid_t r = wait4(p->pid, &status, WNOHANG, &ru);

		if (r == p->pid || (r < 0 && errno != EINTR))
		{
			p->status = r == p->pid ? decode_status(status) : PROC_ERROR;
			if (r == p->pid)
				*maxrss_kb = ru.ru_maxrss;
			spawned_forget(p->pid);
			p->pid = 0;
			return p->status;
		}
		if (timeout_ms >= 0 && proc_now_ms() >= deadline)
			return PROC_TIMEOUT;
		nanosleep(&tick, NULL);
	}
}

char *
proc_read_file(const char *path)
{
	Buf b = {0};
	char chunk[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return NULL;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0)
	{
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || !buf_append(&b, chunk, (size_t) n))
		{
			close(fd);
			free(b.data);
			return NULL;
		}
	}
	close(fd);
	if (b.data == NULL)
		b.data = calloc(1, 1);
	return b.data;
}

char *
proc_stdout(const Proc *p)
{
	return p->out_path[0] ? proc_read_file(p->out_path) : calloc(1, 1);
}

char *
proc_stderr(const Proc *p)
{
	return p->err_path[0] ? proc_read_file(p->err_path) : calloc(1, 1);
}

void
proc_release(Proc *p)
{
	if (p->pid > 0)
	{
		kill(p->pid, SIGKILL);
		proc_wait(p, -1);
	}
	if (p->out_path[0])
		unlink(p->out_path);
	if (p->err_path[0])
		unlink(p->err_path);
	p->out_path[0] = '\0';
	p->err_path[0] = '\0';
}
