/*
 * apply/pgconn.h -- libpq helpers shared by every part of pgstream that talks
 * to a server: connecting with portable session settings, running SQL with
 * errors captured into a SyncError (SQLSTATE included), quoting, and
 * redacting connection strings so that passwords never reach a log line.
 *
 * This is the lowest layer that links libpq; engine/ builds on it.
 */
#ifndef PGSTREAM_APPLY_PGCONN_H
#define PGSTREAM_APPLY_PGCONN_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "protocol/error.h"

typedef enum PgconnKind
{
	PGCONN_SQL,					/* an ordinary session */
	PGCONN_REPLICATION			/* replication=database (logical walsender) */
} PgconnKind;

typedef struct PgconnOptions
{
	PgconnKind	kind;
	const char *application_name;	/* fallback_application_name */
	bool		no_timeouts;	/* statement/idle-in-transaction timeouts off */
	const char *extra_options;	/* appended to "options" ("-c x=y ..."), or NULL */
} PgconnOptions;

/*
 * Connect with conninfo (a libpq keyword string or URI).  Every connection
 * gets client_encoding=UTF8, DateStyle=ISO, IntervalStyle=postgres,
 * extra_float_digits=3, TimeZone=UTC, bytea_output=hex and an empty
 * search_path, so text values are portable
 * and names always resolve schema-qualified.  Any "options" the user gave are
 * kept and ours are appended.  On failure returns NULL and fills err with a
 * message that never contains the password; `what` names the server
 * ("source", "target") for the message.  The message is one line: libpq's
 * text with its lines joined, then how to fix the problem when we can tell
 * ("; check the user name and password ...").  With no_timeouts, the
 * session also gets statement_timeout, lock_timeout,
 * idle_in_transaction_session_timeout, idle_session_timeout (14+) and
 * transaction_timeout (17+) set to 0.
 */
PGconn	   *pgconn_connect(const char *conninfo, const PgconnOptions *opts,
						   const char *what, SyncError *err);

/*
 * Copy a (possibly multi-line) libpq message into buf as one line: lines are
 * joined with "; ", runs of blanks become one space, no trailing newline.
 * Returns buf.
 */
char	   *pgconn_one_line(const char *msg, char *buf, size_t bufsize);

/*
 * For a connection failure message, a short sentence saying how to fix it
 * ("check the user name and password ..."), or NULL if none applies.
 * pgconn_connect() appends it to its error message.
 */
const char *pgconn_connect_hint(const char *message);

/* Check that conninfo parses; fills err (no password in it) if not. */
bool		pgconn_check_conninfo(const char *conninfo, const char *what,
								  SyncError *err);

/*
 * Write conninfo with any password removed into buf ("host=x user=y
 * password=*****" becomes "host=x user=y").  Unparseable input becomes
 * "(invalid connection string)".  Returns buf.
 */
char	   *pgconn_redact(const char *conninfo, char *buf, size_t bufsize);

/* Run a command (any number of statements) expecting no rows. */
bool		pgconn_exec(PGconn *conn, const char *sql, SyncError *err);

/*
 * Run a query; returns a PGresult with PGRES_TUPLES_OK or PGRES_COMMAND_OK
 * that the caller must PQclear(), or NULL with err filled (SQLSTATE kept).
 * params may be NULL when nparams is 0.  Uses the extended protocol when
 * nparams > 0, so it must not be used on a replication connection then.
 */
PGresult   *pgconn_query(PGconn *conn, const char *sql, int nparams,
						 const char *const *params, SyncError *err);

/*
 * Run a query expecting one row and one column; copies the value into buf.
 * A SQL NULL is an error unless null_ok, in which case buf becomes "".
 */
bool		pgconn_query_value(PGconn *conn, const char *sql, int nparams,
							   const char *const *params, char *buf,
							   size_t bufsize, bool null_ok, SyncError *err);

/*
 * Fill err from a failed result or connection (message + SQLSTATE) and
 * PQclear() res.  Returns false.
 */
bool		pgconn_error_from_result(PGconn *conn, const PGresult *res,
									 SyncError *err);

/*
 * Quote an identifier ("My ""Table""") into a malloc'd string, or NULL on
 * out-of-memory.  Uses libpq's encoding-aware quoting.
 */
char	   *pgconn_quote_ident(PGconn *conn, const char *ident);

/* Quote schema.name as two identifiers; malloc'd, NULL on OOM. */
char	   *pgconn_quote_qualified(PGconn *conn, const char *nspname,
								   const char *relname);

/* Quote a string literal ('it''s'); malloc'd, NULL on OOM. */
char	   *pgconn_quote_literal(PGconn *conn, const char *value);

/*
 * Failures worth a retry: lost connections, servers restarting or shutting
 * down, too many connections, a slot still held by a previous walsender,
 * serialization failures.  Anything else (a rejected row, a missing slot)
 * should stop at once.
 */
bool		pgconn_error_is_transient(const SyncError *err);

/* Close conn if not NULL. */
void		pgconn_close(PGconn *conn);

#endif
