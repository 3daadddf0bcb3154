/*
 * engine/cli.c -- shared command-line helpers.
 */
#include "engine/cli.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <stdlib.h>

#include "apply/pgconn.h"
#include "apply/statesql.h"
#include "protocol/names.h"

int
cli_exit_code(const SyncError *err)
{
	switch (err->code)
	{
		case SYNC_ERR_USAGE:
			return EXIT_USAGE;
		case SYNC_ERR_CONNECT:
			return EXIT_CONNECT;
		default:
			return EXIT_FAILED;
	}
}

int
cli_usage_error(const char *command, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "pgstream %s: ", command);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

bool
cli_parse_int(const char *text, long min, long max, long *out)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool
cli_use_state_schema(const char *command, const char *name)
{
	SyncError	err;

	if (!names_state_schema_check(name, &err))
	{
		fprintf(stderr, "pgstream %s: %s\n", command, err.message);
		return false;
	}
	state_schema_set(name);
	return true;
}

bool
cli_use_pg_bin(const char *command, const char *dir)
{
	char		path[PATH_MAX];

	if (dir == NULL)
		return true;
	if (snprintf(path, sizeof(path), "%s/pg_dump", dir) >= (int) sizeof(path) ||
		access(path, X_OK) != 0)
	{
		fprintf(stderr, "pgstream %s: invalid --pg-bin \"%s\": it holds no pg_dump "
				"that can be run\n", command, dir);
		return false;
	}
	/* the one place subproc_find_pg_program() looks first */
	return setenv("PGSTREAM_PG_BINDIR", dir, 1) == 0;
}

volatile sig_atomic_t cli_stop_requested = 0;

static void
on_stop_signal(int sig)
{
	static const char msg[] = "pgstream: second signal, stopping now\n";
	static const char first[] = "pgstream: signal received, stopping cleanly "
		"(send it again to stop at once)\n";
	int			saved = errno;

	(void) sig;
	if (cli_stop_requested)
	{
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
			_exit(EXIT_FAILED);
		_exit(EXIT_FAILED);
	}
	cli_stop_requested = 1;
	if (write(STDERR_FILENO, first, sizeof(first) - 1) < 0)
		errno = saved;
	errno = saved;
}

void
cli_install_stop_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);	/* a closed SSH session: stop cleanly too */
}

static char quit_lines[3][128];

static void
on_quit_signal(int sig)
{
	int			i = sig == SIGINT ? 0 : sig == SIGTERM ? 1 : 2;

	/* async-signal-safe: the lines were formatted at installation */
	if (write(STDERR_FILENO, quit_lines[i], strlen(quit_lines[i])) < 0)
		_exit(EXIT_FAILED);
	_exit(EXIT_FAILED);
}

void
cli_install_quit_handler(const char *command)
{
	static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_quit_signal;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 3; i++)
	{
		snprintf(quit_lines[i], sizeof(quit_lines[i]),
				 "pgstream %s: received %s; stopped (it only reads, nothing to "
				 "undo)\n", command, cli_signal_name(sigs[i]));
		sigaddset(&sa.sa_mask, sigs[i]);
	}
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, NULL);
}

volatile sig_atomic_t cli_stop_signal = 0;
static char undo_lines[3][128];

const char *
cli_signal_name(int sig)
{
	switch (sig)
	{
		case SIGINT:
			return "SIGINT";
		case SIGTERM:
			return "SIGTERM";
		case SIGHUP:
			return "SIGHUP";
		default:
			return "a signal";
	}
}

static void
on_undo_signal(int sig)
{
	int			i = sig == SIGINT ? 0 : sig == SIGTERM ? 1 : 2;
	int			saved = errno;

	if (!cli_stop_requested)
		cli_stop_signal = sig;
	cli_stop_requested = 1;
	/* async-signal-safe: the lines were formatted at installation */
	if (write(STDERR_FILENO, undo_lines[i], strlen(undo_lines[i])) < 0)
		errno = saved;
	errno = saved;
}

void
cli_install_undo_handler(const char *command)
{
	static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_undo_signal;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 3; i++)
	{
		snprintf(undo_lines[i], sizeof(undo_lines[i]),
				 "pgstream %s: received %s; undoing what this run did (or finishing, "
				 "if it is past the point of no return)\n", command, cli_signal_name(sigs[i]));
		sigaddset(&sa.sa_mask, sigs[i]);
	}
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, NULL);
}

bool
cli_default_name(PGconn *source, char *out, size_t outsize, SyncError *err)
{
	char		db[256];

	if (!pgconn_query_value(source, "SELECT pg_catalog.current_database()", 0, NULL, db,
							sizeof(db), false, err))
		return sync_error_context(err, "could not read the source database's name");
	names_default(db, out, outsize);
	return true;
}
