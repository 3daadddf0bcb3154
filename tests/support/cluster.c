/*
 * tests/support/cluster.c -- throwaway PostgreSQL clusters for integration
 * tests (see cluster.h for the contract and the clean-up rules).
 *
 * Server programs (initdb, pg_ctl) run through proc_run_in() with an argv,
 * never a shell, in the cluster's directory, and as the "postgres" OS user
 * via runuser when we are root.  SQL goes through libpq.
 *
 * Clean-up has three layers, because no single one covers every way a test
 * run ends:
 *   atexit        normal exit, including Check's after a failed test;
 *   signals       ^C or a CI timeout's SIGTERM: immediate shutdown of our
 *                 postmasters (async-signal-safe: read the pid file, kill),
 *                 then the previous handler;
 *   guardian      one forked process per cluster, in its own session, that
 *                 blocks reading a pipe whose write end only the creator
 *                 holds.  EOF means the creator is gone (SIGKILL, sanitizer
 *                 abort, ...): stop the server, remove the directory.
 */
#include "tests/support/cluster.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/proc.h"

#define MAX_CLUSTERS 32
#define PG_CTL_TIMEOUT "60"
#define TOOL_TIMEOUT_MS 120000
#define START_ATTEMPTS 3
#define POLL_INTERVAL_MS 50

static Cluster *registry[MAX_CLUSTERS];
static bool atexit_registered = false;

static const int cleanup_signals[] = {SIGINT, SIGTERM, SIGHUP};

#define N_CLEANUP_SIGNALS (sizeof(cleanup_signals) / sizeof(cleanup_signals[0]))
static struct sigaction previous_action[N_CLEANUP_SIGNALS];

static const char *const tool_env[] = {"LC_ALL=C", NULL};

/* ---- small utilities ---- */

static bool
keep_dirs(void)
{
	const char *keep = getenv("PGSTREAM_TEST_KEEP");

	return keep != NULL && *keep != '\0' && strcmp(keep, "0") != 0;
}

static bool
running_as_root(void)
{
	return geteuid() == 0;
}

/* snprintf into a fixed buffer; false (and a message) if it did not fit. */
static bool format_path(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
format_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t) n >= len)
	{
		fprintf(stderr, "cluster: path too long\n");
		return false;
	}
	return true;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * Remove name (relative to dir_fd) and everything below it, without
 * following symlinks.  Missing entries are not an error.
 */
static bool
remove_tree_at(int dir_fd, const char *name)
{
	int fd =
	    openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dir;
	struct dirent *de;
	bool ok = true;

	if (fd < 0)
	{
		if (errno == ENOENT)
			return true;
		if (errno != ENOTDIR && errno != ELOOP)
			return false;
		return unlinkat(dir_fd, name, 0) == 0 || errno == ENOENT;
	}
	dir = fdopendir(fd);
	if (dir == NULL)
	{
		close(fd);
		return false;
	}
	while ((de = readdir(dir)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		ok = remove_tree_at(dirfd(dir), de->d_name) && ok;
	}
	closedir(dir);
	return unlinkat(dir_fd, name, AT_REMOVEDIR) == 0 && ok;
}

/* Postmaster pid from the first line of postmaster.pid; 0 if none.
 * Async-signal-safe. */
static pid_t
read_postmaster_pid(const char *pidfile)
{
	char buf[32];
	ssize_t n;
	pid_t pid = 0;
	int fd = open(pidfile, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		pid = pid * 10 + (buf[i] - '0');
	return pid;
}

/* ---- PostgreSQL programs ---- */

/* Is dir/bin/initdb executable?  Writes dir/bin into out. */
static bool
bindir_candidate(const char *major, char *out, size_t len)
{
	char initdb[PATH_MAX];

	if (!format_path(out, len, "/usr/lib/postgresql/%s/bin", major) ||
	    !format_path(initdb, sizeof(initdb), "%s/initdb", out))
		return false;
	return access(initdb, X_OK) == 0;
}

/*
 * Directory of the server programs: $PGSTREAM_PG_BINDIR, else the newest
 * /usr/lib/postgresql/<major>/bin (Debian layout), else "" for $PATH.
 */
static const char *
pg_bindir(void)
{
	static char bindir[PATH_MAX];
	static bool resolved = false;
	const char *env = getenv("PGSTREAM_PG_BINDIR");
	DIR *dir;
	struct dirent *de;
	long best = -1;

	if (resolved)
		return bindir;
	resolved = true;
	if (env != NULL && *env != '\0')
	{
		snprintf(bindir, sizeof(bindir), "%s", env);
		return bindir;
	}
	dir = opendir("/usr/lib/postgresql");
	if (dir == NULL)
		return bindir;
	while ((de = readdir(dir)) != NULL)
	{
		char *end;
		long major = strtol(de->d_name, &end, 10);
		char candidate[PATH_MAX];

		if (end == de->d_name || *end != '\0' || major <= best)
			continue;
		if (bindir_candidate(de->d_name, candidate, sizeof(candidate)))
		{
			best = major;
			memcpy(bindir, candidate, sizeof(bindir));
		}
	}
	closedir(dir);
	return bindir;
}

void
cluster_major_cache_dir(char *buf, size_t len)
{
	const char *env = getenv("PGSTREAM_PG_CACHE");
	const char *home = getenv("HOME");

	/* Keep in step with tests/support/install-pg-majors.sh. */
	if (env != NULL && *env != '\0')
		snprintf(buf, len, "%s", env);
	else if (running_as_root())
		snprintf(buf, len, "/var/cache/pgstream/pg");
	else
	{
		if (home == NULL || *home == '\0')
		{
			struct passwd *pw = getpwuid(geteuid());

			home = pw != NULL ? pw->pw_dir : "/nonexistent";
		}
		snprintf(buf, len, "%s/.cache/pgstream/pg", home);
	}
}

bool
cluster_major_bindir(int major, char *bindir, size_t len)
{
	char number[16];
	char cache[PATH_MAX];
	char path[PATH_MAX + 64];

	if (major <= 0)
		return false;
	/* Debian's, when that major is installed. */
	snprintf(number, sizeof(number), "%d", major);
	if (bindir_candidate(number, bindir, len))
		return true;

	/*
	 * The cache, only when install-pg-majors.sh finished it: it writes the
	 * marker after checking the unpacked binaries, and moves the directory
	 * into place only then.
	 */
	cluster_major_cache_dir(cache, sizeof(cache));
	snprintf(path, sizeof(path), "%s/%d/.pgstream-complete", cache, major);
	if (access(path, R_OK) != 0)
		return false;
	snprintf(path, sizeof(path), "%s/%d/bin/initdb", cache, major);
	if (access(path, X_OK) != 0)
		return false;
	snprintf(bindir, len, "%s/%d/bin", cache, major);
	return strlen(bindir) + 1 < len;
}

/* Fill c->bindir for c->major (0: the default binaries). */
static bool
resolve_bindir(Cluster *c)
{
	char cache[PATH_MAX];

	if (c->major == 0)
	{
		snprintf(c->bindir, sizeof(c->bindir), "%s", pg_bindir());
		return true;
	}
	if (cluster_major_bindir(c->major, c->bindir, sizeof(c->bindir)))
		return true;
	cluster_major_cache_dir(cache, sizeof(cache));
	fprintf(stderr,
	        "cluster \"%s\": no PostgreSQL %d server binaries: neither "
	        "/usr/lib/postgresql/%d/bin nor a complete %s/%d; fetch them "
	        "with `make deps` (PGSTREAM_PG_MAJORS=\"%d\" "
	        "tests/support/install-pg-majors.sh for this one)\n",
	        c->name, c->major, c->major, cache, c->major, c->major);
	c->bindir[0] = '\0';
	return false;
}

static const char *
runuser_path(void)
{
	static const char *const candidates[] = {
	    "/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser",
	    "/bin/runuser"};

	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
		if (access(candidates[i], X_OK) == 0)
			return candidates[i];
	return "runuser";
}

/*
 * Run a PostgreSQL program (tool, then args up to NULL) in the cluster's
 * directory, as "postgres" when we are root.  Returns proc_run()'s status;
 * *out receives stdout and stderr together for error messages.
 */
static int
run_pg_tool(const Cluster *c, char **out, const char *tool, ...)
{
	const char *argv[32];
	char path[PATH_MAX];
	const char *bindir = c->bindir;
	size_t n = 0;
	va_list ap;
	char *err = NULL;
	int rc;

	if (!format_path(path, sizeof(path), "%s%s%s", bindir, *bindir ? "/" : "",
	                 tool))
		return PROC_ERROR;
	if (running_as_root())
	{
		argv[n++] = runuser_path();
		argv[n++] = "-u";
		argv[n++] = "postgres";
		argv[n++] = "--";
	}
	argv[n++] = path;
	va_start(ap, tool);
	while (n < sizeof(argv) / sizeof(argv[0]) - 1 &&
	       (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	rc = proc_run_in(c->basedir, argv, tool_env, TOOL_TIMEOUT_MS, out, &err);
	if (out != NULL && *out != NULL && err != NULL && *err != '\0')
	{
		size_t olen = strlen(*out);
		char *both = realloc(*out, olen + strlen(err) + 1);

		if (both != NULL)
		{
			memcpy(both + olen, err, strlen(err) + 1);
			*out = both;
		}
	}
	free(err);
	return rc;
}

static void
report_tool_failure(const Cluster *c, const char *what, int rc,
                    const char *output)
{
	if (rc == PROC_TIMEOUT)
		fprintf(stderr, "cluster \"%s\": %s timed out\n", c->name, what);
	else
		fprintf(stderr, "cluster \"%s\": %s failed with status %d\n", c->name,
		        what, rc);
	fprintf(stderr, "%s", output ? output : "");
}

/* ---- registry and clean-up ---- */

static void
cluster_atexit(void)
{
	pid_t self = getpid();

	for (int i = 0; i < MAX_CLUSTERS; i++)
		if (registry[i] != NULL && registry[i]->creator_pid == self)
			cluster_destroy(registry[i]);
}

/* Immediate shutdown of this process's postmasters.  Async-signal-safe. */
static void
kill_own_postmasters(void)
{
	pid_t self = getpid();

	for (int i = 0; i < MAX_CLUSTERS; i++)
	{
		const Cluster *c = registry[i];
		pid_t pid;

		if (c == NULL || c->creator_pid != self)
			continue;
		pid = read_postmaster_pid(c->pidfile);
		if (pid > 0)
			kill(pid, SIGQUIT);
	}
}

static void
on_cleanup_signal(int signo, siginfo_t *info, void *context)
{
	const struct sigaction *prev = NULL;

	kill_own_postmasters();
	for (size_t i = 0; i < N_CLEANUP_SIGNALS; i++)
		if (cleanup_signals[i] == signo)
			prev = &previous_action[i];
	if (prev != NULL && (prev->sa_flags & SA_SIGINFO) &&
	    prev->sa_sigaction != NULL)
	{
		prev->sa_sigaction(signo, info, context);
		return;
	}
	if (prev != NULL && prev->sa_handler == SIG_IGN)
		return;
	if (prev != NULL && prev->sa_handler != SIG_DFL)
	{
		prev->sa_handler(signo);
		return;
	}
	signal(signo, SIG_DFL);
	raise(signo);
}

/*
 * Put our handler in front of whatever is installed now (Check installs its
 * own for the duration of srunner_run_all(), so this runs again at each
 * cluster_start()).
 */
static void
install_signal_handlers(void)
{
	for (size_t i = 0; i < N_CLEANUP_SIGNALS; i++)
	{
		struct sigaction cur;
		struct sigaction ours;

		if (sigaction(cleanup_signals[i], NULL, &cur) != 0)
			continue;
		if ((cur.sa_flags & SA_SIGINFO) &&
		    cur.sa_sigaction == on_cleanup_signal)
			continue;
		previous_action[i] = cur;
		memset(&ours, 0, sizeof(ours));
		ours.sa_sigaction = on_cleanup_signal;
		ours.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&ours.sa_mask);
		sigaction(cleanup_signals[i], &ours, NULL);
	}
}

static bool
register_cluster(Cluster *c)
{
	if (!atexit_registered)
	{
		atexit(cluster_atexit);
		atexit_registered = true;
	}
	install_signal_handlers();
	for (int i = 0; i < MAX_CLUSTERS; i++)
	{
		if (registry[i] == NULL)
		{
			registry[i] = c;
			return true;
		}
	}
	fprintf(stderr, "cluster: more than %d clusters\n", MAX_CLUSTERS);
	return false;
}

static void
unregister_cluster(const Cluster *c)
{
	for (int i = 0; i < MAX_CLUSTERS; i++)
		if (registry[i] == c)
			registry[i] = NULL;
}

static bool
port_in_use_by_us(int port)
{
	for (int i = 0; i < MAX_CLUSTERS; i++)
		if (registry[i] != NULL && registry[i]->port == port)
			return true;
	return false;
}

/* ---- guardian ---- */

/* In the guardian: wait for EOF on fd, then clean up after the creator. */
static void
guardian_main(const Cluster *c, int fd)
{
	char byte;
	int devnull = open("/dev/null", O_RDONLY);

	setsid();
	if (devnull >= 0)
		dup2(devnull, STDIN_FILENO);
	if (dup2(fd, 3) < 0)
		_exit(1);
	closefrom(4);
	for (size_t i = 0; i < N_CLEANUP_SIGNALS; i++)
		signal(cleanup_signals[i], SIG_DFL);
	for (;;)
	{
		ssize_t n = read(3, &byte, 1);

		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	if (access(c->pidfile, F_OK) == 0)
	{
		char *out = NULL;

		run_pg_tool(c, &out, "pg_ctl", "-D", c->datadir, "-m", "immediate",
		            "-w", "-t", PG_CTL_TIMEOUT, "stop", (const char *) NULL);
		free(out);
	}
	if (!keep_dirs())
		remove_tree_at(AT_FDCWD, c->basedir);
	_exit(0);
}

static bool
start_guardian(Cluster *c)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds) != 0)
	{
		fprintf(stderr, "cluster: pipe failed: %s\n", strerror(errno));
		return false;
	}
	fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	fflush(NULL);
	pid = fork();
	if (pid == 0)
	{
		close(fds[1]);
		guardian_main(c, fds[0]);
	}
	close(fds[0]);
	if (pid < 0)
	{
		close(fds[1]);
		fprintf(stderr, "cluster: fork failed: %s\n", strerror(errno));
		return false;
	}
	c->guardian_pid = pid;
	c->guardian_fd = fds[1];
	return true;
}

static void
stop_guardian(Cluster *c)
{
	if (c->guardian_fd >= 0)
		close(c->guardian_fd);
	c->guardian_fd = -1;
	if (c->guardian_pid > 0)
		while (waitpid(c->guardian_pid, NULL, 0) < 0 && errno == EINTR)
			;
	c->guardian_pid = 0;
}

/* ---- init ---- */

static int
pick_free_port(void)
{
	for (int attempt = 0; attempt < 50; attempt++)
	{
		struct sockaddr_in addr = {0};
		socklen_t len = sizeof(addr);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int port = -1;

		if (fd < 0)
			return -1;
		addr.sin_family = AF_INET;
		addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0 &&
		    getsockname(fd, (struct sockaddr *) &addr, &len) == 0)
			port = ntohs(addr.sin_port);
		close(fd);
		if (port > 0 && !port_in_use_by_us(port))
			return port;
	}
	fprintf(stderr, "cluster: could not find a free port\n");
	return -1;
}

/* mkdtemp the base directory and derive the other paths. */
static bool
make_base_dir(Cluster *c)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	/* The socket path must fit in sun_path (108 bytes). */
	if (strlen(tmp) > 60)
		tmp = "/tmp";
	if (!format_path(c->basedir, sizeof(c->basedir),
	                 "%s/pgstream-test-%s-XXXXXX", tmp, c->name))
		return false;
	if (mkdtemp(c->basedir) == NULL)
	{
		fprintf(stderr, "cluster: could not create \"%s\": %s\n", c->basedir,
		        strerror(errno));
		c->basedir[0] = '\0';
		return false;
	}
	return format_path(c->datadir, sizeof(c->datadir), "%s/data", c->basedir) &&
	       format_path(c->logfile, sizeof(c->logfile), "%s/log", c->basedir) &&
	       format_path(c->pidfile, sizeof(c->pidfile), "%s/postmaster.pid",
	                   c->datadir);
}

/* Give the base directory to the postgres OS user when we are root. */
static bool
hand_over_base_dir(const Cluster *c)
{
	struct passwd *pw;

	if (!running_as_root())
		return true;
	pw = getpwnam("postgres");
	if (pw == NULL)
	{
		fprintf(stderr, "cluster: running as root needs a \"postgres\" OS "
		                "user to run the server\n");
		return false;
	}
	if (chown(c->basedir, pw->pw_uid, pw->pw_gid) != 0)
	{
		fprintf(stderr, "cluster: could not chown \"%s\": %s\n", c->basedir,
		        strerror(errno));
		return false;
	}
	return true;
}

static bool
run_initdb(const Cluster *c)
{
	char *out = NULL;
	int rc;

	rc = run_pg_tool(c, &out, "initdb", "-D", c->datadir, "-A", "trust", "-U",
	                 "postgres", "--no-sync", "-E", "UTF8", "--locale=C",
	                 (const char *) NULL);
	if (rc != 0)
		report_tool_failure(c, "initdb", rc, out);
	free(out);
	return rc == 0;
}

/* Single-quote a GUC string value, doubling embedded quotes. */
static void
quote_guc_value(char *buf, size_t len, const char *value)
{
	size_t k = 0;

	if (len < 3)
		return;
	buf[k++] = '\'';
	for (const char *p = value; *p && k + 3 < len; p++)
	{
		if (*p == '\'')
			buf[k++] = '\'';
		buf[k++] = *p;
	}
	buf[k++] = '\'';
	buf[k] = '\0';
}

/*
 * Every setting written here exists on every major 11-18 (test_majors starts
 * each with CLUSTER_LOGICAL): an unknown one would stop an old server from
 * starting.  A setting a newer major introduced must be gated on c->major.
 */
static bool
write_base_config(Cluster *c)
{
	char socketdir[PATH_MAX + 8];
	char line[PATH_MAX + 64];
	static const char *const common[] = {
	    "listen_addresses = '127.0.0.1'", "fsync = off",
	    "synchronous_commit = off",       "full_page_writes = off",
	    "shared_buffers = 128MB",         "max_connections = 100",
	};
	static const char *const logical[] = {
	    "wal_level = logical",
	    "max_replication_slots = 10",
	    "max_wal_senders = 10",
	};
	bool ok = true;

	quote_guc_value(socketdir, sizeof(socketdir), c->basedir);
	snprintf(line, sizeof(line), "\n# pgstream test harness\nport = %d",
	         c->port);
	ok = cluster_set(c, line);
	snprintf(line, sizeof(line), "unix_socket_directories = %s", socketdir);
	ok = ok && cluster_set(c, line);
	for (size_t i = 0; ok && i < sizeof(common) / sizeof(common[0]); i++)
		ok = cluster_set(c, common[i]);
	for (size_t i = 0; ok && (c->flags & CLUSTER_LOGICAL) &&
	                   i < sizeof(logical) / sizeof(logical[0]);
	     i++)
		ok = cluster_set(c, logical[i]);
	return ok;
}

/*
 * Set c->major from the data directory's PG_VERSION, the major initdb really
 * made; a cluster asked for one major must never quietly be another.
 */
static bool
read_data_major(Cluster *c, int wanted)
{
	char path[PATH_MAX];
	char *text;
	char *end;
	long major;

	if (!format_path(path, sizeof(path), "%s/PG_VERSION", c->datadir))
		return false;
	text = proc_read_file(path);
	if (text == NULL)
	{
		fprintf(stderr, "cluster \"%s\": could not read \"%s\"\n", c->name,
		        path);
		return false;
	}
	major = strtol(text, &end, 10);
	if (end == text || (*end != '\n' && *end != '\0'))
		major = 0;
	free(text);
	if (major <= 0)
	{
		fprintf(stderr, "cluster \"%s\": unexpected \"%s\"\n", c->name, path);
		return false;
	}
	if (wanted != 0 && major != wanted)
	{
		fprintf(stderr,
		        "cluster \"%s\": asked for PostgreSQL %d, but initdb in "
		        "\"%s\" made a %ld data directory\n",
		        c->name, wanted, c->bindir, major);
		return false;
	}
	c->major = (int) major;
	return true;
}

bool
cluster_init(Cluster *c, const char *name, unsigned flags)
{
	return cluster_init_major(c, name, flags, 0);
}

bool
cluster_init_major(Cluster *c, const char *name, unsigned flags, int major)
{
	memset(c, 0, sizeof(*c));
	c->guardian_fd = -1;
	c->creator_pid = getpid();
	c->flags = flags;
	c->major = major;
	snprintf(c->name, sizeof(c->name), "%s", name);
	if (!register_cluster(c))
		return false;
	/* Before the guardian forks: it stops the server with this pg_ctl. */
	if (major < 0 || !resolve_bindir(c))
		return false;
	if (!make_base_dir(c) || !start_guardian(c) || !hand_over_base_dir(c))
		return false;
	c->port = pick_free_port();
	if (c->port < 0 || !run_initdb(c) || !read_data_major(c, major))
		return false;
	return write_base_config(c);
}

bool
cluster_set(Cluster *c, const char *guc_line)
{
	char path[PATH_MAX];
	FILE *f;
	bool ok;

	if (!format_path(path, sizeof(path), "%s/postgresql.conf", c->datadir))
		return false;
	f = fopen(path, "a");
	if (f == NULL)
	{
		fprintf(stderr, "cluster \"%s\": could not open \"%s\": %s\n", c->name,
		        path, strerror(errno));
		return false;
	}
	ok = fprintf(f, "%s\n", guc_line) >= 0;
	ok = (fclose(f) == 0) && ok;
	if (!ok)
		fprintf(stderr, "cluster \"%s\": could not write \"%s\"\n", c->name,
		        path);
	return ok;
}

bool
cluster_set_since(Cluster *c, int min_major, const char *guc_line)
{
	if (c->major < min_major)
		return true;
	return cluster_set(c, guc_line);
}

/* ---- start, stop ---- */

static long
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long) st.st_size : 0;
}

/* Did the attempt whose log starts at log_offset fail on a taken port? */
static bool
log_says_port_taken(const Cluster *c, long log_offset)
{
	char *log = proc_read_file(c->logfile);
	bool taken = false;

	if (log != NULL && (long) strlen(log) >= log_offset)
		taken = strstr(log + log_offset, "Address already in use") != NULL;
	free(log);
	return taken;
}

static int
try_start(const Cluster *c, char **out)
{
	return run_pg_tool(c, out, "pg_ctl", "-D", c->datadir, "-l", c->logfile,
	                   "-w", "-t", PG_CTL_TIMEOUT, "start",
	                   (const char *) NULL);
}

bool
cluster_start(Cluster *c)
{
	install_signal_handlers();
	for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++)
	{
		long log_offset = file_size(c->logfile);
		char *out = NULL;
		char line[64];
		int rc = try_start(c, &out);

		if (rc == 0)
		{
			free(out);
			c->running = true;
			c->postmaster_pid = read_postmaster_pid(c->pidfile);
			return true;
		}
		if (attempt == START_ATTEMPTS || !log_says_port_taken(c, log_offset))
		{
			report_tool_failure(c, "pg_ctl start", rc, out);
			free(out);
			cluster_print_log_tail(c, 4096);
			return false;
		}
		free(out);
		c->port = pick_free_port();
		snprintf(line, sizeof(line), "port = %d", c->port);
		if (c->port < 0 || !cluster_set(c, line))
			return false;
	}
	return false;
}

bool
cluster_stop(Cluster *c, const char *mode)
{
	char *out = NULL;
	int rc;

	if (c->datadir[0] == '\0' || access(c->pidfile, F_OK) != 0)
	{
		c->running = false;
		return true;
	}
	rc = run_pg_tool(c, &out, "pg_ctl", "-D", c->datadir, "-m", mode, "-w",
	                 "-t", PG_CTL_TIMEOUT, "stop", (const char *) NULL);
	if (rc != 0 && access(c->pidfile, F_OK) == 0)
	{
		report_tool_failure(c, "pg_ctl stop", rc, out);
		free(out);
		return false;
	}
	free(out);
	c->running = false;
	c->postmaster_pid = 0;
	return true;
}

bool
cluster_restart(Cluster *c)
{
	return cluster_stop(c, "fast") && cluster_start(c);
}

bool
cluster_reload(Cluster *c)
{
	char *out = NULL;
	int rc;

	rc = run_pg_tool(c, &out, "pg_ctl", "-D", c->datadir, "reload",
	                 (const char *) NULL);
	if (rc != 0)
		report_tool_failure(c, "pg_ctl reload", rc, out);
	free(out);
	return rc == 0;
}

void
cluster_destroy(Cluster *c)
{
	if (c->creator_pid == 0)
		return;
	if (c->creator_pid != getpid())
	{
		fprintf(stderr,
		        "cluster \"%s\": not destroyed by pid %d, which did "
		        "not create it\n",
		        c->name, (int) getpid());
		return;
	}
	if (c->basedir[0] != '\0')
	{
		if (!cluster_stop(c, "immediate"))
		{
			pid_t pid = read_postmaster_pid(c->pidfile);

			if (pid > 0)
				kill(pid, SIGQUIT);
		}
		if (keep_dirs())
			fprintf(stderr, "cluster \"%s\": kept %s\n", c->name, c->basedir);
		else if (!remove_tree_at(AT_FDCWD, c->basedir))
			fprintf(stderr, "cluster \"%s\": could not remove %s: %s\n",
			        c->name, c->basedir, strerror(errno));
	}
	stop_guardian(c);
	unregister_cluster(c);
	c->creator_pid = 0;
	c->running = false;
}

void
cluster_print_log_tail(const Cluster *c, size_t max_bytes)
{
	char *log = proc_read_file(c->logfile);
	size_t len;

	if (log == NULL)
		return;
	len = strlen(log);
	fprintf(stderr, "---- %s (last %zu bytes) ----\n%s\n----\n", c->logfile,
	        len < max_bytes ? len : max_bytes,
	        len > max_bytes ? log + len - max_bytes : log);
	free(log);
}

/* ---- libpq ---- */

/* Append key=value to buf, single-quoting the value when it needs it. */
static void
append_conninfo(char *buf, size_t len, const char *key, const char *value)
{
	size_t k = strlen(buf);
	bool quote = value[0] == '\0' || strpbrk(value, " '\\") != NULL;

	k += (size_t) snprintf(buf + k, len - k, "%s%s=%s", k ? " " : "", key,
	                       quote ? "'" : "");
	for (const char *p = value; *p && k + 3 < len; p++)
	{
		if (*p == '\'' || *p == '\\')
			buf[k++] = '\\';
		buf[k++] = *p;
	}
	snprintf(buf + k, len - k, "%s", quote ? "'" : "");
}

const char *
cluster_conninfo(const Cluster *c, const char *dbname)
{
	static char ring[8][PATH_MAX + 256];
	static unsigned next = 0;
	char *buf = ring[next++ % 8];
	char port[16];

	buf[0] = '\0';
	snprintf(port, sizeof(port), "%d", c->port);
	append_conninfo(buf, sizeof(ring[0]), "host", c->basedir);
	append_conninfo(buf, sizeof(ring[0]), "port", port);
	append_conninfo(buf, sizeof(ring[0]), "user", "postgres");
	append_conninfo(buf, sizeof(ring[0]), "dbname",
	                dbname ? dbname : "postgres");
	return buf;
}

/* Print warnings and errors the server sends, drop NOTICE and below. */
static void
notice_receiver(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	(void) arg;
	if (sev != NULL &&
	    (strcmp(sev, "NOTICE") == 0 || strcmp(sev, "INFO") == 0 ||
	     strcmp(sev, "LOG") == 0 || strncmp(sev, "DEBUG", 5) == 0))
		return;
	fprintf(stderr, "%s", PQresultErrorMessage(res));
}

/* Connect; on failure NULL and the reason in errbuf. */
static PGconn *
connect_quietly(const Cluster *c, const char *dbname, const char *extra,
                char *errbuf, size_t errlen)
{
	char conninfo[PATH_MAX + 512];
	PGconn *conn;

	snprintf(conninfo, sizeof(conninfo), "%s%s%s", cluster_conninfo(c, dbname),
	         extra ? " " : "", extra ? extra : "");
	conn = PQconnectdb(conninfo);
	if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
	{
		PQsetNoticeReceiver(conn, notice_receiver, NULL);
		return conn;
	}
	snprintf(errbuf, errlen, "could not connect to cluster \"%s\": %s", c->name,
	         conn ? PQerrorMessage(conn) : "out of memory\n");
	PQfinish(conn);
	return NULL;
}

PGconn *
cluster_connect(const Cluster *c, const char *dbname, const char *extra)
{
	char errbuf[1024];
	PGconn *conn = connect_quietly(c, dbname, extra, errbuf, sizeof(errbuf));

	if (conn == NULL)
		fprintf(stderr, "%s", errbuf);
	return conn;
}

static void
describe_sql_error(const Cluster *c, const char *sql, const char *message,
                   char *errbuf, size_t errlen)
{
	snprintf(errbuf, errlen, "cluster \"%s\": query failed: %.200s%s\n%s",
	         c->name, sql, strlen(sql) > 200 ? "..." : "", message);
}

/* Run sql; result in *value as for cluster_query(); error text in errbuf. */
static bool
query_quietly(const Cluster *c, const char *dbname, const char *sql,
              char **value, char *errbuf, size_t errlen)
{
	PGconn *conn = connect_quietly(c, dbname, NULL, errbuf, errlen);
	PGresult *res;
	ExecStatusType status;
	bool ok = false;

	if (value != NULL)
		*value = NULL;
	if (conn == NULL)
		return false;
	res = PQexec(conn, sql);
	status = PQresultStatus(res);
	if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
		describe_sql_error(c, sql, PQerrorMessage(conn), errbuf, errlen);
	else if (value == NULL)
		ok = true;
	else if (status != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	         PQnfields(res) != 1)
		describe_sql_error(c, sql, "expected one row of one column\n", errbuf,
		                   errlen);
	else if (PQgetisnull(res, 0, 0))
		ok = true;
	else
		ok = (*value = strdup(PQgetvalue(res, 0, 0))) != NULL;
	PQclear(res);
	PQfinish(conn);
	return ok;
}

bool
cluster_psql(const Cluster *c, const char *dbname, const char *sql)
{
	char errbuf[2048];
	bool ok = query_quietly(c, dbname, sql, NULL, errbuf, sizeof(errbuf));

	if (!ok)
		fprintf(stderr, "%s", errbuf);
	return ok;
}

bool
cluster_query(const Cluster *c, const char *dbname, const char *sql,
              char **value)
{
	char errbuf[2048];
	bool ok = query_quietly(c, dbname, sql, value, errbuf, sizeof(errbuf));

	if (!ok)
		fprintf(stderr, "%s", errbuf);
	return ok;
}

char *
cluster_query_scalar(const Cluster *c, const char *dbname, const char *sql)
{
	char *value = NULL;

	cluster_query(c, dbname, sql, &value);
	return value;
}

bool
cluster_wait_for(const Cluster *c, const char *dbname, const char *sql,
                 int deadline_ms)
{
	long long deadline = proc_now_ms() + deadline_ms;
	char errbuf[2048] = "";

	for (;;)
	{
		char *value = NULL;
		bool done;

		if (query_quietly(c, dbname, sql, &value, errbuf, sizeof(errbuf)))
			snprintf(errbuf, sizeof(errbuf), "last result: %s\n",
			         value ? value : "NULL");
		done = value != NULL && strcmp(value, "t") == 0;
		free(value);
		if (done)
			return true;
		if (proc_now_ms() >= deadline)
			break;
		sleep_ms(POLL_INTERVAL_MS);
	}
	fprintf(stderr,
	        "cluster \"%s\": timed out after %d ms waiting for: "
	        "%s\n%s",
	        c->name, deadline_ms, sql, errbuf);
	return false;
}

char *
cluster_table_digest(const Cluster *c, const char *dbname,
                     const char *qualified_table, const char *order_by)
{
	static const char fmt[] =
	    "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY %s), '')) "
	    "FROM %s t";
	size_t len = sizeof(fmt) + strlen(order_by) + strlen(qualified_table);
	char *sql = malloc(len);
	char *digest;

	if (sql == NULL)
		return NULL;
	snprintf(sql, len, fmt, order_by, qualified_table);
	digest = cluster_query_scalar(c, dbname, sql);
	free(sql);
	return digest;
}
