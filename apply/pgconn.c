/*
 * apply/pgconn.c -- libpq connection and query helpers.
 *
 * Session settings follow what PostgreSQL's own subscriber does in
 * libpqrcv_connect(): a known client encoding, ISO dates, full float
 * precision and an always-secure empty search_path.  Errors go into a
 * SyncError; nothing here logs.
 */
#include "apply/pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SESSION_OPTIONS \
	"-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3" \
	" -c TimeZone=UTC -c bytea_output=hex"
#define NO_TIMEOUT_OPTIONS \
	" -c statement_timeout=0 -c lock_timeout=0" \
	" -c idle_in_transaction_session_timeout=0"
#define MAX_CONN_PARAMS 64

char *
pgconn_one_line(const char *msg, char *buf, size_t bufsize)
{
	size_t		n = 0;
	const char *p = msg ? msg : "";

	if (bufsize == 0)
		return buf;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	while (*p && n + 1 < bufsize)
	{
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		{
			bool		newline = false;

			while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
				newline |= (*p++ == '\n');
			if (*p == '\0')
				break;
			if (newline && n > 0 && buf[n - 1] != ';' && buf[n - 1] != '.' &&
				n + 2 < bufsize)
				buf[n++] = ';';
			else if (newline && n > 0 && buf[n - 1] == '.')
				buf[n - 1] = ';';
			buf[n++] = ' ';
			continue;
		}
		buf[n++] = *p++;
	}
	buf[n] = '\0';
	return buf;
}

/* Failure text -> what to do about it.  First match wins. */
static const struct
{
	const char *needle;
	const char *hint;
}			connect_hints[] = {
	{"password authentication failed",
	"check the user name and password (given by password=, PGPASSWORD or a "
	".pgpass file)"},
	{"no password supplied",
	"the server wants a password: set PGPASSWORD or add it to a .pgpass file"},
	{"root certificate file",
	"sslrootcert must name an existing file holding the CA certificate(s)"},
	{"FATAL: database \"",
	"check dbname: the database must exist before pgstream connects "
	"(CREATE DATABASE)"},
	{"FATAL: role \"", "check user: there is no such role on that server"},
	{"no pg_hba.conf entry",
	"add a line for this client, user and database to pg_hba.conf on that "
	"server and reload it (a logical replication connection matches an "
	"ordinary database line)"},
	{"to start WAL sender", "grant the attribute on the source: ALTER ROLE <login> WITH "
	"REPLICATION;"},
	{"replication role to start walsender",
	"grant the attribute on the source: ALTER ROLE <login> WITH REPLICATION;"},
	{"permission denied for database",
	"GRANT CONNECT ON DATABASE <database> TO <login>;"},
	{"certificate verify failed",
	"sslrootcert must name the CA certificate that signed the server's "
	"certificate"},
	{"does not match host name",
	"connect with a host name the server certificate was issued for, or use "
	"sslmode=verify-ca if names cannot match"},
	{"server does not support SSL",
	"enable ssl on the server, or lower sslmode"},
	{"timeout expired",
	"check the host name and port, and that no firewall drops the connection"},
	{"could not translate host name", "check the host name"},
	{"Network is unreachable",
	"check the host name and the network path to the server"},
	{"No route to host",
	"check the host name, and that no firewall drops the connection"},
	{"Connection refused",
	"check the host and port, and that the server listens there "
	"(listen_addresses, port)"},
	{"No such file or directory",
	"check host and port: no server socket was found there"},
	{"too many connections",
	"wait for connections to close, or raise max_connections"},
};

const char *
pgconn_connect_hint(const char *message)
{
	for (size_t i = 0; i < sizeof(connect_hints) / sizeof(connect_hints[0]); i++)
		if (strstr(message, connect_hints[i].needle) != NULL)
			return connect_hints[i].hint;
	return NULL;
}

/* hint with "<login>" replaced by the user name (double-quoted if needed). */
static const char *
fill_login(const char *hint, const char *user, char *buf, size_t bufsize)
{
	const char *at = strstr(hint, "<login>");
	bool		plain = user != NULL && *user != '\0';

	if (at == NULL || !plain)
		return hint;
	for (const char *p = user; *p; p++)
		plain = plain && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
						  *p == '_');
	snprintf(buf, bufsize, "%.*s%s%s%s%s", (int) (at - hint), hint,
			 plain ? "" : "\"", user, plain ? "" : "\"", at + strlen("<login>"));
	return buf;
}

/* Copy a libpq error message as one line. */
static void
copy_trimmed(char *dst, size_t dstsize, const char *src)
{
	pgconn_one_line(src, dst, dstsize);
}

/*
 * True if an unparseable conninfo may carry a secret: the word "password"
 * anywhere, or a URI with "user:secret@".  libpq's parse errors quote pieces
 * of the input (a token, or the whole URI), so for such strings we must not
 * repeat what libpq quoted.
 */
static bool
may_hold_password(const char *conninfo)
{
	const char *scheme = strstr(conninfo, "://");

	for (const char *p = conninfo; *p; p++)
		if (strncasecmp(p, "password", 8) == 0)
			return true;
	if (scheme != NULL)
	{
		const char *at = strchr(scheme + 3, '@');
		const char *colon = strchr(scheme + 3, ':');

		if (at != NULL && colon != NULL && colon < at)
			return true;
	}
	return false;
}

/* Copy src to dst with every "quoted" part replaced by "...". */
static void
mask_quoted(const char *src, char *dst, size_t dstsize)
{
	size_t		n = 0;
	bool		quoted = false;

	for (const char *p = src; *p && n + 6 < dstsize; p++)
	{
		if (*p == '"')
		{
			if (!quoted)
			{
				memcpy(dst + n, "\"...\"", 5);
				n += 5;
			}
			quoted = !quoted;
		}
		else if (!quoted)
			dst[n++] = *p;
	}
	dst[n] = '\0';
}

/* Is word one of the NULL-ended list? */
static bool
one_of(const char *word, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(word, *list) == 0)
			return true;
	return false;
}

/* "5432", "5432,5433", ",5433": every non-empty element a port number. */
static const char *
bad_port(const char *ports, char *buf, size_t size)
{
	for (const char *p = ports; *p;)
	{
		size_t		len = strcspn(p, ",");
		long		v = 0;
		bool		ok = len > 0 && len <= 5;

		for (size_t i = 0; ok && i < len; i++)
		{
			ok = p[i] >= '0' && p[i] <= '9';
			v = v * 10 + (p[i] - '0');
		}
		if (len > 0 && (!ok || v < 1 || v > 65535))
		{
			snprintf(buf, size, "%.*s", (int) (len < 40 ? len : 40), p);
			return buf;
		}
		p += len + (p[len] == ',');
	}
	return NULL;
}

/*
 * Values libpq accepts when it parses a connection string but rejects only
 * when it connects, which would read as "could not connect" (exit 4) for
 * what is a typo (exit 3).  None of these is a secret.
 */
static bool
check_values(PQconninfoOption *opts, const char *what, SyncError *err)
{
	static const char *const sslmodes[] = {"disable", "allow", "prefer", "require",
	"verify-ca", "verify-full", NULL};
	static const char *const session_attrs[] = {"any", "read-write", "read-only",
	"primary", "standby", "prefer-standby", NULL};
	static const char *const three_modes[] = {"disable", "prefer", "require", NULL};
	char		buf[48];

	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
	{
		const char *v = o->val;
		const char *k = o->keyword;
		const char *const *allowed = NULL;

		if (v == NULL || *v == '\0')
			continue;
		if (strcmp(k, "port") == 0 && bad_port(v, buf, sizeof(buf)) != NULL)
			return sync_error_set(err, SYNC_ERR_USAGE, "invalid %s connection string: port "
								  "\"%s\" is not a port number (1 to 65535)", what, buf);
		if (strcmp(k, "connect_timeout") == 0 && strspn(v, "0123456789") != strlen(v))
			return sync_error_set(err, SYNC_ERR_USAGE, "invalid %s connection string: "
								  "connect_timeout \"%.40s\" is not a number of seconds",
								  what, v);
		if (strcmp(k, "sslmode") == 0)
			allowed = sslmodes;
		else if (strcmp(k, "target_session_attrs") == 0)
			allowed = session_attrs;
		else if (strcmp(k, "gssencmode") == 0 || strcmp(k, "channel_binding") == 0)
			allowed = three_modes;
		if (allowed != NULL && !one_of(v, allowed))
		{
			char		list[160] = "";

			for (const char *const *a = allowed; *a != NULL; a++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
						 a == allowed ? "" : ", ", *a);
			return sync_error_set(err, SYNC_ERR_USAGE, "invalid %s connection string: %s "
								  "\"%.40s\" is not one of %s", what, k, v, list);
		}
	}
	return true;
}

/*
 * The first name in a URI's query ("?a=1&b=2") that libpq does not know,
 * into buf; NULL if none (or not a URI).  libpq's own message quotes the
 * whole URI, which may hold a password, so it is masked: this names the
 * parameter instead.
 */
static const char *
unknown_uri_parameter(const char *conninfo, char *buf, size_t size)
{
	const char *q = strchr(conninfo, '?');
	PQconninfoOption *known;
	const char *found = NULL;

	if (strstr(conninfo, "://") == NULL || q == NULL || (known = PQconndefaults()) == NULL)
		return NULL;
	for (const char *p = q + 1; *p && found == NULL;)
	{
		size_t		len = strcspn(p, "&");
		size_t		klen = strcspn(p, "=&");
		bool		ok = klen == 3 && strncmp(p, "ssl", 3) == 0;	/* libpq's alias */

		for (PQconninfoOption *o = known; !ok && o->keyword != NULL; o++)
			ok = strlen(o->keyword) == klen && strncmp(o->keyword, p, klen) == 0;
		if (!ok && klen > 0)
		{
			snprintf(buf, size, "%.*s", (int) (klen < 40 ? klen : 40), p);
			found = buf;
		}
		p += len + (p[len] == '&');
	}
	PQconninfoFree(known);
	return found;
}

bool
pgconn_check_conninfo(const char *conninfo, const char *what, SyncError *err)
{
	char	   *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
	char		line[256],
				msg[256],
				name[48];
	bool		ok;

	if (opts != NULL)
	{
		ok = check_values(opts, what, err);
		PQconninfoFree(opts);
		return ok;
	}
	if (unknown_uri_parameter(conninfo, name, sizeof(name)) != NULL)
	{
		PQfreemem(errmsg);
		return sync_error_set(err, SYNC_ERR_USAGE, "invalid %s connection string: unknown "
							  "parameter \"%s\" in the URI; write keyword=value pairs "
							  "separated by spaces or a postgresql:// URI with known "
							  "parameters", what, name);
	}
	/*
	 * libpq quotes the offending token or the whole URI; with a password in
	 * the string that could be (part of) the password itself.
	 */
	pgconn_one_line(errmsg ? errmsg : "out of memory", line, sizeof(line));
	PQfreemem(errmsg);
	if (may_hold_password(conninfo))
		mask_quoted(line, msg, sizeof(msg));
	else
		snprintf(msg, sizeof(msg), "%s", line);
	return sync_error_set(err, SYNC_ERR_USAGE,
						  "invalid %s connection string: %s; write keyword=value "
						  "pairs separated by spaces (single-quote values that "
						  "contain spaces) or a postgresql:// URI", what, msg);
}

char *
pgconn_redact(const char *conninfo, char *buf, size_t bufsize)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	size_t		used = 0;

	if (bufsize == 0)
		return buf;
	buf[0] = '\0';
	if (opts == NULL)
	{
		snprintf(buf, bufsize, "(invalid connection string)");
		return buf;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
	{
		int			n;

		if (o->val == NULL || strcmp(o->keyword, "password") == 0)
			continue;
		n = snprintf(buf + used, bufsize - used, "%s%s=%s",
					 used ? " " : "", o->keyword, o->val);
		if (n < 0 || (size_t) n >= bufsize - used)
			break;
		used += (size_t) n;
	}
	PQconninfoFree(opts);
	return buf;
}

/*
 * A silent network partition must be noticed in seconds, not after the
 * kernel's 15 minutes: TCP keepalives and a user timeout unless the user
 * set them.  (libpq ignores them on Unix-domain sockets.)
 */
static int
add_tcp_defaults(PQconninfoOption *user, const char **keys, const char **vals, int n)
{
	static const char *const defaults[][2] = {
		{"keepalives", "1"}, {"keepalives_idle", "10"}, {"keepalives_interval", "5"},
		{"keepalives_count", "3"}, {"tcp_user_timeout", "30000"},
	};

	for (size_t d = 0; d < sizeof(defaults) / sizeof(defaults[0]); d++)
	{
		bool		given = false;

		for (PQconninfoOption *o = user; o->keyword != NULL; o++)
			given |= o->val != NULL && strcmp(o->keyword, defaults[d][0]) == 0;
		if (!given && n < MAX_CONN_PARAMS - 6)
		{
			keys[n] = defaults[d][0];
			vals[n++] = defaults[d][1];
		}
	}
	return n;
}

/*
 * Build the keyword/value arrays for PQconnectdbParams from the user's
 * options plus ours.  options_buf receives the merged "options" value.
 */
static int
build_params(PQconninfoOption *user, const PgconnOptions *opts,
			 const char **keys, const char **vals, char *options_buf,
			 size_t options_size)
{
	int			n = 0;
	const char *user_options = "";

	for (PQconninfoOption *o = user; o->keyword != NULL; o++)
	{
		if (o->val == NULL || n >= MAX_CONN_PARAMS - 6)
			continue;
		if (strcmp(o->keyword, "options") == 0)
		{
			user_options = o->val;
			continue;
		}
		if (strcmp(o->keyword, "client_encoding") == 0 ||
			strcmp(o->keyword, "replication") == 0)
			continue;
		keys[n] = o->keyword;
		vals[n++] = o->val;
	}
	snprintf(options_buf, options_size, "%s%s%s%s%s", user_options,
			 *user_options ? " " : "", SESSION_OPTIONS,
			 opts->no_timeouts ? NO_TIMEOUT_OPTIONS : "",
			 opts->extra_options ? opts->extra_options : "");
	n = add_tcp_defaults(user, keys, vals, n);
	keys[n] = "options";
	vals[n++] = options_buf;
	keys[n] = "client_encoding";
	vals[n++] = "UTF8";
	keys[n] = "fallback_application_name";
	vals[n++] = opts->application_name ? opts->application_name : "pgstream";
	if (opts->kind == PGCONN_REPLICATION)
	{
		keys[n] = "replication";
		vals[n++] = "database";
	}
	keys[n] = NULL;
	vals[n] = NULL;
	return n;
}

/* Server NOTICEs ("drop cascades to ...") are not for the user's terminal. */
static void
ignore_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

/* Settings that cannot go in the startup packet on every version. */
static bool
set_session(PGconn *conn, const PgconnOptions *opts, SyncError *err)
{
	PGresult   *res;

	res = PQexec(conn, "SELECT pg_catalog.set_config('search_path', '', false)");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return pgconn_error_from_result(conn, res, err);
	PQclear(res);
	/* idle_session_timeout (14+) would end a session of ours that waits
	 * while others work, e.g. the source session during a long copy */
	if (opts->no_timeouts && PQserverVersion(conn) >= 140000 &&
		!pgconn_exec(conn, "SET idle_session_timeout = 0", err))
		return false;
	if (opts->no_timeouts && PQserverVersion(conn) >= 170000)
		return pgconn_exec(conn, "SET transaction_timeout = 0", err);
	return true;
}

PGconn *
pgconn_connect(const char *conninfo, const PgconnOptions *opts,
			   const char *what, SyncError *err)
{
	PQconninfoOption *user;
	const char *keys[MAX_CONN_PARAMS];
	const char *vals[MAX_CONN_PARAMS];
	char		options_buf[1024];
	PGconn	   *conn;
	char		msg[SYNC_ERROR_MESSAGE_MAX];

	if (!pgconn_check_conninfo(conninfo, what, err))
		return NULL;
	user = PQconninfoParse(conninfo, NULL);
	if (user == NULL)
	{
		sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		return NULL;
	}
	build_params(user, opts, keys, vals, options_buf, sizeof(options_buf));
	conn = PQconnectdbParams(keys, vals, 0);
	PQconninfoFree(user);
	if (conn == NULL)
	{
		sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		const char *hint;

		char		filled[256];

		copy_trimmed(msg, sizeof(msg), PQerrorMessage(conn));
		hint = pgconn_connect_hint(msg);
		if (hint != NULL)
			hint = fill_login(hint, PQuser(conn), filled, sizeof(filled));
		PQfinish(conn);
		sync_error_set(err, SYNC_ERR_CONNECT, "could not connect to %s: %s%s%s",
					   what, msg, hint ? "; " : "", hint ? hint : "");
		return NULL;
	}
	PQsetNoticeProcessor(conn, ignore_notice, NULL);
	if (!set_session(conn, opts, err))
	{
		PQfinish(conn);
		sync_error_context(err, "could not set up %s session", what);
		return NULL;
	}
	return conn;
}

bool
pgconn_error_from_result(PGconn *conn, const PGresult *res, SyncError *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	char		msg[SYNC_ERROR_MESSAGE_MAX];

	if (primary != NULL)
	{
		char		joined[SYNC_ERROR_MESSAGE_MAX];

		snprintf(joined, sizeof(joined), "%s%s%s", primary, detail ? ": " : "",
				 detail ? detail : "");
		pgconn_one_line(joined, msg, sizeof(msg));
	}
	else
		copy_trimmed(msg, sizeof(msg),
					 res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
					 : PQerrorMessage(conn));
	/* no SQLSTATE and a dead connection: the link or the server went away */
	sync_error_set(err, state == NULL && (PQstatus(conn) == CONNECTION_BAD ||
										  PQconsumeInput(conn) == 0) ?
				   SYNC_ERR_CONNECT : SYNC_ERR_SERVER,
				   "%s", msg[0] ? msg : "the server answered without an error message");
	if (msg[0] == '\0')
		sync_error_context(err, "unexpected result %s",
						   PQresStatus(res ? PQresultStatus(res) : PGRES_FATAL_ERROR));
	if (state != NULL)
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
	PQclear((PGresult *) res);
	return false;
}

bool
pgconn_exec(PGconn *conn, const char *sql, SyncError *err)
{
	PGresult   *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);

	/* PGRES_EMPTY_QUERY: the text held only comments, nothing to do (such
	 * as pg_dump's "SCHEMA public" entry once owners are left out) */
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
		return pgconn_error_from_result(conn, res, err);
	PQclear(res);
	return true;
}

PGresult *
pgconn_query(PGconn *conn, const char *sql, int nparams,
			 const char *const *params, SyncError *err)
{
	PGresult   *res;
	ExecStatusType st;

	if (nparams > 0)
		res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	else
		res = PQexec(conn, sql);
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
	{
		pgconn_error_from_result(conn, res, err);
		return NULL;
	}
	return res;
}

bool
pgconn_query_value(PGconn *conn, const char *sql, int nparams,
				   const char *const *params, char *buf, size_t bufsize,
				   bool null_ok, SyncError *err)
{
	PGresult   *res = pgconn_query(conn, sql, nparams, params, err);

	if (res == NULL)
		return false;
	if (PQntuples(res) != 1 || PQnfields(res) < 1)
	{
		int			ntuples = PQntuples(res);

		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INTERNAL,
							  "query returned %d rows, expected one", ntuples);
	}
	if (PQgetisnull(res, 0, 0) && !null_ok)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INTERNAL,
							  "query returned NULL, expected a value");
	}
	snprintf(buf, bufsize, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

char *
pgconn_quote_ident(PGconn *conn, const char *ident)
{
	char	   *q = PQescapeIdentifier(conn, ident, strlen(ident));
	char	   *copy;

	if (q == NULL)
		return NULL;
	copy = strdup(q);
	PQfreemem(q);
	return copy;
}

char *
pgconn_quote_qualified(PGconn *conn, const char *nspname, const char *relname)
{
	char	   *n = pgconn_quote_ident(conn, nspname);
	char	   *r = pgconn_quote_ident(conn, relname);
	char	   *out = NULL;
	size_t		len;

	if (n != NULL && r != NULL)
	{
		len = strlen(n) + strlen(r) + 2;
		out = malloc(len);
		if (out != NULL)
			snprintf(out, len, "%s.%s", n, r);
	}
	free(n);
	free(r);
	return out;
}

char *
pgconn_quote_literal(PGconn *conn, const char *value)
{
	char	   *q = PQescapeLiteral(conn, value, strlen(value));
	char	   *copy;

	if (q == NULL)
		return NULL;
	copy = strdup(q);
	PQfreemem(q);
	return copy;
}

bool
pgconn_error_is_transient(const SyncError *err)
{
	static const char *const states[] = {"08", "57P", "55006", "53300", "40001", "40P01"};

	if (err->code == SYNC_ERR_CONNECT)
		return true;
	if (err->code != SYNC_ERR_SERVER)
		return false;
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strncmp(err->sqlstate, states[i], strlen(states[i])) == 0)
			return true;
	return false;
}

void
pgconn_close(PGconn *conn)
{
	if (conn != NULL)
		PQfinish(conn);
}
