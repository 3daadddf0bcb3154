/*
 * engine/cli.h -- what every subcommand shares: exit codes, option parsing
 * helpers and the subcommand entry points.
 *
 * Exit codes (documented in README.md and docs/runbook.md):
 *   0  success
 *   1  the operation failed (details on stderr)
 *   2  blocking problems found (assess, or sync's preflight); nothing changed
 *   3  usage error: bad option, value or connection string
 *   4  could not connect or authenticate
 */
#ifndef PGSTREAM_ENGINE_CLI_H
#define PGSTREAM_ENGINE_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "protocol/error.h"

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_BLOCKED 2
#define EXIT_USAGE 3
#define EXIT_CONNECT 4

/* Map an error to the exit code above. */
int			cli_exit_code(const SyncError *err);

/*
 * A bad option: "pgstream COMMAND: <message>" on stderr; returns EXIT_USAGE
 * so that an option parser can say `return cli_usage_error(...)`.
 */
int			cli_usage_error(const char *command, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* Parse a non-negative integer option value; false on junk or overflow. */
bool		cli_parse_int(const char *text, long min, long max, long *out);

/*
 * Set by SIGINT/SIGTERM/SIGHUP: long-running commands poll it and stop
 * gracefully (children ended, state that resumes).
 * A second signal ends the process at once (safe wherever progress is
 * transactional, which is everywhere pgstream writes progress).
 */
extern volatile sig_atomic_t cli_stop_requested;

/* Install the SIGINT/SIGTERM/SIGHUP handler that sets cli_stop_requested
 * (a second signal exits at once). */
void		cli_install_stop_handler(void);

/* The signal that set cli_stop_requested (0 if none). */
extern volatile sig_atomic_t cli_stop_signal;

/*
 * For commands that must finish or undo what they did (cutover): SIGINT,
 * SIGTERM and SIGHUP (a closed terminal) set cli_stop_requested and
 * cli_stop_signal and write one line on stderr; a second signal does not end
 * the process, so the undo always runs (kill -9 remains).
 */
void		cli_install_undo_handler(const char *command);

/*
 * For commands that only read (assess, status): INT, TERM and HUP end the
 * process at once, exit 1, after one line on stderr saying so.
 */
void		cli_install_quit_handler(const char *command);

/*
 * --pg-bin DIR: pg_dump and pg_restore are taken from DIR (which must hold
 * a pg_dump that can be run; false with a message on stderr otherwise).
 * NULL: the usual search (engine/subproc.h).
 */
bool		cli_use_pg_bin(const char *command, const char *dir);

/* "SIGINT", "SIGTERM", "SIGHUP", else "a signal". */
const char *cli_signal_name(int sig);

/*
 * Check the --state-schema value of a command (protocol/names.h) and make it
 * the state schema of this process (apply/statesql.h).  Call once, after
 * the options are parsed and before anything connects.  A bad name prints
 * "pgstream COMMAND: invalid --state-schema ..." and returns false (exit
 * EXIT_USAGE).
 */
bool		cli_use_state_schema(const char *command, const char *name);

/*
 * The default slot and publication name for the source database that
 * source is connected to (protocol/names.h, names_default): out holds
 * NAMES_DEFAULT_SIZE bytes.
 */
bool		cli_default_name(PGconn *source, char *out, size_t outsize, SyncError *err);

/* Subcommands: argv[0] is the subcommand name. */
int			cmd_peek(int argc, char **argv);
int			cmd_sync(int argc, char **argv);
int			cmd_status(int argc, char **argv);
int			cmd_assess(int argc, char **argv);
int			cmd_cutover(int argc, char **argv);
int			cmd_verify(int argc, char **argv);
int			cmd_abort(int argc, char **argv);

#endif
