/*
 * engine/assess/assess.c -- pre-migration checks (see assess.h): the Findings API,
 * the runner, printing, and the server-level checks (versions, settings,
 * replication privilege, slot and publication names, activity, TLS).  The
 * object-by-object checks are in assess_catalog.c.
 *
 * Every check only reads.  A check whose query fails does not stop the
 * others: it adds a warning saying it could not run and why.
 */
#include "engine/assess/assess.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply/pgconn.h"
#include "apply/statesql.h"
#include "engine/assess/internal.h"
#include "engine/json.h"
#include "engine/subproc.h"

#define LONG_XACT_SECONDS 300

const char *
finding_severity_name(FindingSeverity s)
{
	switch (s)
	{
		case FINDING_BLOCKING:
			return "blocking";
		case FINDING_WARNING:
			return "warning";
		case FINDING_INFO:
			return "info";
	}
	return "unknown";
}

const char *
no_key_mode_name(NoKeyMode m)
{
	switch (m)
	{
		case NO_KEY_BLOCK:
			return "block";
		case NO_KEY_FULL:
			return "full";
		case NO_KEY_INSERT_ONLY:
			return "insert-only";
	}
	return "unknown";
}

bool
no_key_mode_parse(const char *text, NoKeyMode *out)
{
	if (strcmp(text, "full") == 0)
		*out = NO_KEY_FULL;
	else if (strcmp(text, "insert-only") == 0)
		*out = NO_KEY_INSERT_ONLY;
	else
		return false;
	return true;
}

void
findings_init(Findings *f)
{
	memset(f, 0, sizeof(*f));
}

void
findings_term(Findings *f)
{
	free(f->items);
	memset(f, 0, sizeof(*f));
}

void
findings_add(Findings *f, FindingSeverity sev, const char *check,
			 const char *object, const char *fix, const char *fmt,...)
{
	Finding    *it;
	va_list		ap;

	if (f->count == f->cap)
	{
		int			cap = f->cap ? f->cap * 2 : 16;
		Finding    *n = realloc(f->items, (size_t) cap * sizeof(*n));

		if (n == NULL)
			return;
		f->items = n;
		f->cap = cap;
	}
	it = &f->items[f->count++];
	it->severity = sev;
	snprintf(it->check, sizeof(it->check), "%s", check);
	snprintf(it->object, sizeof(it->object), "%s", object ? object : "");
	snprintf(it->fix, sizeof(it->fix), "%s", fix ? fix : "");
	va_start(ap, fmt);
	vsnprintf(it->message, sizeof(it->message), fmt, ap);
	va_end(ap);
}

int
findings_count(const Findings *f, FindingSeverity sev)
{
	int			n = 0;

	for (int i = 0; i < f->count; i++)
		n += f->items[i].severity == sev;
	return n;
}

PGresult *
assess_query(AssessContext *cx, PGconn *conn, const char *check,
			 const char *sql, int nparams, const char *const *params)
{
	SyncError	err;
	/* the checks leave the state schema out by name ({state_literal} in USER_NS) */
	PGresult   *res = pgconn_query(conn, state_sql(sql), nparams, params, &err);

	if (res == NULL)
		findings_add(cx->out, FINDING_WARNING, check,
					 conn == cx->src ? "source" : "target",
					 "run pgstream assess as a login that can read the catalogs, "
					 "or check this by hand",
					 "this check could not run: %s", err.message);
	return res;
}

bool
assess_capped(AssessContext *cx, int i, int total, FindingSeverity sev,
			  const char *check, const char *fix)
{
	if (i < ASSESS_MAX_PER_CHECK)
		return false;
	findings_add(cx->out, sev, check, "", fix,
				 "%d more object(s) with the same problem (only the first %d "
				 "are listed)", total - i, ASSESS_MAX_PER_CHECK);
	return true;
}

static long
to_long(const char *s)
{
	return strtol(s, NULL, 10);
}

static bool
is_true(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

/* ------------------------------------------------------------------------
 * Facts read once
 * ------------------------------------------------------------------------ */

typedef struct SourceFacts
{
	char		wal_level[16];
	int			max_slots;
	int			used_slots;
	int			max_senders;
	int			used_senders;
	bool		can_replicate;
	bool		in_recovery;
	bool		read_only;
} SourceFacts;

static bool
read_source_facts(AssessContext *cx, SourceFacts *sf, SyncError *err)
{
	PGresult   *res = pgconn_query(cx->src,
								   "SELECT current_setting('wal_level'),"
								   " current_setting('max_replication_slots')::int,"
								   " (SELECT count(*) FROM pg_catalog.pg_replication_slots),"
								   " current_setting('max_wal_senders')::int,"
								   " (SELECT count(*) FROM pg_catalog.pg_stat_replication),"
								   " r.rolreplication OR r.rolsuper, r.rolsuper,"
								   " quote_ident(current_user), quote_ident(current_database()),"
								   " pg_catalog.pg_is_in_recovery(),"
								   " current_setting('default_transaction_read_only')::bool"
								   " FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
								   0, NULL, err);

	if (res == NULL)
		return sync_error_context(err, "could not read source settings");
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INTERNAL, "could not read source role");
	}
	snprintf(sf->wal_level, sizeof(sf->wal_level), "%s", PQgetvalue(res, 0, 0));
	sf->max_slots = (int) to_long(PQgetvalue(res, 0, 1));
	sf->used_slots = (int) to_long(PQgetvalue(res, 0, 2));
	sf->max_senders = (int) to_long(PQgetvalue(res, 0, 3));
	sf->used_senders = (int) to_long(PQgetvalue(res, 0, 4));
	sf->can_replicate = is_true(res, 0, 5);
	cx->src_super = is_true(res, 0, 6);
	snprintf(cx->src_login, sizeof(cx->src_login), "%s", PQgetvalue(res, 0, 7));
	snprintf(cx->src_db, sizeof(cx->src_db), "%s", PQgetvalue(res, 0, 8));
	sf->in_recovery = is_true(res, 0, 9);
	sf->read_only = is_true(res, 0, 10);
	PQclear(res);
	return true;
}

static bool
read_target_facts(AssessContext *cx, SyncError *err)
{
	PGresult   *res = pgconn_query(cx->tgt,
								   "SELECT r.rolsuper, quote_ident(current_user),"
								   " quote_ident(current_database()),"
								   " pg_catalog.pg_is_in_recovery(),"
								   " current_setting('default_transaction_read_only')::bool"
								   " FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
								   0, NULL, err);

	if (res == NULL)
		return sync_error_context(err, "could not read target settings");
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INTERNAL, "could not read target role");
	}
	cx->tgt_super = is_true(res, 0, 0);
	snprintf(cx->tgt_login, sizeof(cx->tgt_login), "%s", PQgetvalue(res, 0, 1));
	snprintf(cx->tgt_db, sizeof(cx->tgt_db), "%s", PQgetvalue(res, 0, 2));
	if (is_true(res, 0, 3))
		findings_add(cx->out, FINDING_BLOCKING, "target_standby", "target",
					 "connect to the primary server of the target",
					 "the target is a standby server (in recovery): nothing can "
					 "be written to it");
	if (is_true(res, 0, 4))
	{
		char		fix[512];

		snprintf(fix, sizeof(fix), "ALTER DATABASE %s RESET default_transaction_read_only; "
				 "ALTER ROLE %s RESET default_transaction_read_only;",
				 cx->tgt_db, cx->tgt_login);
		findings_add(cx->out, FINDING_BLOCKING, "target_read_only", "target", fix,
					 "default_transaction_read_only is on for the target login "
					 "and database");
	}
	PQclear(res);
	return true;
}

/* ------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------ */

static void
check_versions(AssessContext *cx)
{
	int			sv = cx->src_version;
	int			tv = cx->tgt_version;

	if (sv < 100000)
		findings_add(cx->out, FINDING_BLOCKING, "version", "source",
					 "upgrade the source to PostgreSQL 10 or later",
					 "source runs PostgreSQL %d.%d, which has no pgoutput plugin "
					 "(logical replication to an outside consumer needs 10 or later)",
					 sv / 10000, sv / 100 % 100);
	if (tv / 10000 < sv / 10000)
		findings_add(cx->out, FINDING_BLOCKING, "version", "target",
					 "use a target running the same or a newer major version",
					 "target major version %d is older than source major version %d",
					 tv / 10000, sv / 10000);
}

/* Major version from "pg_dump (PostgreSQL) 16.4 (Debian 16.4-1)"; 0 if none. */
static int
parse_tool_major(const char *text)
{
	const char *p = strchr(text, ')');

	p = p ? p + 1 : text;
	while (*p && !isdigit((unsigned char) *p))
		p++;
	return (int) strtol(p, NULL, 10);
}

static void
check_pg_dump(AssessContext *cx)
{
	char		path[4096];
	char		fix[512];
	SyncError	err;
	char	   *out = NULL;
	const char *argv[3];
	SubprocOptions so = {.capture_stdout = true, .max_stdout_bytes = 4096};
	int			major,
				smajor = cx->src_version / 10000,
				tmajor = cx->tgt_version / 10000,
				need = tmajor >= smajor ? tmajor : smajor;	/* >= source, <= target */

	snprintf(fix, sizeof(fix), "install the PostgreSQL %d client (e.g. the "
			 "postgresql-client-%d package) and set PGSTREAM_PG_BINDIR to its "
			 "bin directory (e.g. /usr/lib/postgresql/%d/bin)",
			 need, need, need);
	argv[0] = path;
	argv[1] = "--version";
	argv[2] = NULL;
	if (!subproc_find_pg_program("pg_dump", path, sizeof(path), &err) ||
		!subproc_run(argv, &so, &out, NULL, &err))
	{
		findings_add(cx->out, FINDING_BLOCKING, "pg_dump", "local", fix,
					 "pg_dump could not be run: %s", err.message);
		return;
	}
	major = parse_tool_major(out);
	if (major < smajor && getenv("PGSTREAM_PG_BINDIR") == NULL)
	{
		char		dir[4096];

		/*
		 * Another installed client may be new enough (pg_config named an
		 * older one): use it for this whole run (sync's pg_dump and
		 * pg_restore look there first), and say so.
		 */
		if (subproc_find_pg_bindir_for(smajor, tmajor, dir, sizeof(dir)) &&
			setenv("PGSTREAM_PG_BINDIR", dir, 1) == 0)
		{
			findings_add(cx->out, FINDING_INFO, "pg_dump", dir, "",
						 "pg_dump %d (%s) is older than the source (PostgreSQL %d): "
						 "using the client in %s instead", major, path, smajor, dir);
			free(out);
			out = NULL;
			if (!subproc_find_pg_program("pg_dump", path, sizeof(path), &err) ||
				!subproc_run(argv, &so, &out, NULL, &err))
			{
				findings_add(cx->out, FINDING_BLOCKING, "pg_dump", dir, fix,
							 "pg_dump could not be run: %s", err.message);
				return;
			}
			major = parse_tool_major(out);
		}
	}
	if (major < smajor)
		findings_add(cx->out, FINDING_BLOCKING, "pg_dump", path, fix,
					 "pg_dump %d cannot dump a PostgreSQL %d source (pg_dump "
					 "must be of the source's major version or newer)",
					 major, smajor);
	else if (major > tmajor)
		findings_add(cx->out, FINDING_WARNING, "pg_dump", path, fix,
					 "pg_dump %d is newer than the target (PostgreSQL %d): "
					 "the schema it writes may use syntax the target does not "
					 "accept", major, tmajor);
	free(out);
}

/* ------------------------------------------------------------------------
 * Source settings and the replication privilege
 * ------------------------------------------------------------------------ */

static void
check_source_settings(AssessContext *cx, const SourceFacts *sf)
{
	int			need = cx->opts->resuming ? 0 : 1;
	char		fix[512];

	if (strcmp(sf->wal_level, "logical") != 0)
		findings_add(cx->out, FINDING_BLOCKING, "wal_level", "source",
					 "ALTER SYSTEM SET wal_level = logical; then restart the source "
					 "(on Azure: set the server parameter wal_level to LOGICAL and restart)",
					 "wal_level is \"%s\"; logical decoding needs \"logical\"",
					 sf->wal_level);
	if (sf->max_slots - sf->used_slots < need)
		findings_add(cx->out, FINDING_BLOCKING, "max_replication_slots", "source",
					 "ALTER SYSTEM SET max_replication_slots = <more>; then restart "
					 "(Azure: server parameter), or drop an unused slot with "
					 "SELECT pg_drop_replication_slot('<name>');",
					 "all %d replication slots are in use", sf->max_slots);
	if (sf->max_senders - sf->used_senders < 1 + need)
		findings_add(cx->out, FINDING_BLOCKING, "max_wal_senders", "source",
					 "ALTER SYSTEM SET max_wal_senders = <more>; then restart "
					 "(Azure: server parameter)",
					 "%d of %d WAL senders are in use; pgstream needs %d free",
					 sf->used_senders, sf->max_senders, 1 + need);
	snprintf(fix, sizeof(fix), "ALTER ROLE %s WITH REPLICATION; (on Azure, as "
			 "the server admin, a member of azure_pg_admin)", cx->src_login);
	if (!sf->can_replicate)
		findings_add(cx->out, FINDING_BLOCKING, "replication_privilege", "source", fix,
					 "the source login %s has neither REPLICATION nor superuser: "
					 "it cannot create a replication slot", cx->src_login);
	if (sf->in_recovery)
		findings_add(cx->out, FINDING_BLOCKING, "source_standby", "source",
					 "connect to the primary server of the source",
					 "the source is a standby server: pgstream creates its slot "
					 "and publication on the primary");
	snprintf(fix, sizeof(fix), "ALTER DATABASE %s RESET default_transaction_read_only;",
			 cx->src_db);
	if (sf->read_only && cx->live)
		findings_add(cx->out, FINDING_BLOCKING, "source_read_only", "source", fix,
					 "default_transaction_read_only is on: the publication cannot be "
					 "created");
}

static void
check_wal_settings(AssessContext *cx)
{
	PGresult   *res;
	long		keep_mb,
				sender_ms;

	if (!cx->live)
		return;
	res = assess_query(cx, cx->src, "wal_settings",
					   "SELECT coalesce((SELECT setting FROM pg_catalog.pg_settings"
					   " WHERE name = 'max_slot_wal_keep_size'), '-1'),"
					   " (SELECT setting FROM pg_catalog.pg_settings"
					   " WHERE name = 'wal_sender_timeout')", 0, NULL);
	if (res == NULL)
		return;
	keep_mb = to_long(PQgetvalue(res, 0, 0));
	sender_ms = to_long(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (keep_mb >= 0)
		findings_add(cx->out, FINDING_WARNING, "max_slot_wal_keep_size", "source",
					 "ALTER SYSTEM SET max_slot_wal_keep_size = -1; SELECT "
					 "pg_reload_conf(); (Azure: server parameter), or make sure the "
					 "limit covers all WAL written during the full load",
					 "max_slot_wal_keep_size is %ld MB: if the slot holds back more "
					 "WAL than that (during the full load, or while sync is stopped) "
					 "the source invalidates it and the migration must start over",
					 keep_mb);
	else
		findings_add(cx->out, FINDING_INFO, "max_slot_wal_keep_size", "source",
					 "watch free disk space on the source while sync runs",
					 "the slot keeps WAL without limit until sync confirms it: the "
					 "source's disk use grows while sync is stopped or behind (on "
					 "Azure a server whose storage is over 95%% full turns read-only "
					 "and drops unused slots)");
	if (sender_ms == 0)
		findings_add(cx->out, FINDING_INFO, "wal_sender_timeout", "source", "",
					 "wal_sender_timeout is 0: a dead replication connection is "
					 "noticed only by TCP keepalives");
	else if (sender_ms < 10000)
		findings_add(cx->out, FINDING_WARNING, "wal_sender_timeout", "source",
					 "ALTER SYSTEM SET wal_sender_timeout = '60s'; SELECT pg_reload_conf();",
					 "wal_sender_timeout is %ld ms: pgstream reports its position "
					 "every 10 s, so the source may end the replication connection "
					 "during a pause", sender_ms);
}

/*
 * Timeouts set on the server, database or role would end the sessions that
 * hold the snapshot or copy for hours.  Every session pgstream opens sets
 * them to 0 for itself, so this is information, not a problem.
 */
static void
check_timeouts(AssessContext *cx)
{
	/*
	 * pgstream's own sessions turn these off in their startup packet, so
	 * pg_settings here shows 0: read what ALTER ROLE / ALTER DATABASE give an
	 * ordinary session of this login instead (the usual way they are set).
	 */
	PGresult   *res = assess_query(cx, cx->src, "timeouts",
								   "SELECT split_part(c, '=', 1),"
								   " substr(c, strpos(c, '=') + 1),"
								   " CASE WHEN s.setdatabase = 0 THEN 'role'"
								   "  WHEN s.setrole = 0 THEN 'database'"
								   "  ELSE 'role in this database' END"
								   " FROM pg_catalog.pg_db_role_setting s,"
								   "  pg_catalog.unnest(s.setconfig) c"
								   " WHERE s.setrole IN (0, (SELECT oid FROM pg_catalog.pg_roles"
								   "   WHERE rolname = current_user))"
								   " AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database"
								   "   WHERE datname = pg_catalog.current_database()))"
								   " AND (s.setrole, s.setdatabase) <> (0, 0)"
								   " AND split_part(c, '=', 1) IN ('statement_timeout',"
								   " 'idle_in_transaction_session_timeout',"
								   " 'idle_session_timeout', 'transaction_timeout',"
								   " 'lock_timeout')"
								   " AND substr(c, strpos(c, '=') + 1) NOT IN ('0', '0ms', '0s')"
								   " ORDER BY 1", 0, NULL);

	if (res == NULL)
		return;
	for (int r = 0; r < PQntuples(res); r++)
		findings_add(cx->out, FINDING_INFO, "timeouts", PQgetvalue(res, r, 0), "",
					 "%s is %s (set for the %s): it would end a session that holds "
					 "the snapshot or copies for long, but every pgstream session "
					 "sets it to 0 for itself", PQgetvalue(res, r, 0),
					 PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));
	PQclear(res);
}

static void
check_publication_taken(AssessContext *cx, const char *name)
{
	const char *params[1] = {name};
	char		fix[512];
	PGresult   *res;

	if (cx->opts->resuming)
		return;
	res = assess_query(cx, cx->src, "publication_name",
					   "SELECT quote_ident(pubname) FROM pg_catalog.pg_publication"
					   " WHERE pubname = $1", 1, params);
	if (res != NULL && PQntuples(res) > 0)
	{
		snprintf(fix, sizeof(fix), "if an earlier migration left it, remove what that "
				 "migration left with pgstream abort (same --source, --target and names); "
				 "otherwise choose another name with --publication, or "
				 "DROP PUBLICATION %s;", PQgetvalue(res, 0, 0));
		findings_add(cx->out, FINDING_BLOCKING, "publication_name", name, fix,
					 "a publication named \"%s\" already exists on the source", name);
	}
	PQclear(res);
}

/*
 * pgstream keeps its run state in the state schema on the target ("pgstream",
 * or --state-schema) and drops it when the migration ends; every catalog
 * check leaves that schema out.  A source schema of that name would be
 * copied into the state schema and dropped with it.  On the target, a
 * schema of that name that holds no migration would make sync fail after
 * the slot exists (and be dropped with its contents at the end).
 */
#define STATE_SCHEMA_SQL \
	"SELECT count(c.oid) FROM pg_catalog.pg_namespace n" \
	" LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid" \
	" WHERE n.nspname = {state_literal} GROUP BY n.oid"

static void
check_state_schema(AssessContext *cx)
{
	PGresult   *res = assess_query(cx, cx->src, "state_schema", STATE_SCHEMA_SQL, 0, NULL);

	if (res != NULL && PQntuples(res) == 1)
		findings_add(cx->out, FINDING_BLOCKING, "state_schema", state_schema_name(),
					 "rename it, or run with --state-schema OTHER_NAME (and give cutover "
					 "and status the same --state-schema)",
					 "the source has a schema named %s (%s relation(s)): pgstream "
					 "keeps its own state in a schema of that name on the target and drops "
					 "it at the end, so that schema would be lost", state_schema_quoted(),
					 PQgetvalue(res, 0, 0));
	PQclear(res);
	if (cx->opts->resuming)
		return;					/* it is this migration's state */
	res = assess_query(cx, cx->tgt, "state_schema", STATE_SCHEMA_SQL, 0, NULL);
	if (res != NULL && PQntuples(res) == 1)
		findings_add(cx->out, FINDING_BLOCKING, "state_schema", state_schema_name(),
					 "drop it on the target if nothing in it is needed, or run with "
					 "--state-schema OTHER_NAME (and give cutover and status the same "
					 "--state-schema)",
					 "the target already has a schema named %s (%s relation(s)) that holds "
					 "no pgstream migration: pgstream creates its state in a new schema of "
					 "that name and drops it at the end", state_schema_quoted(),
					 PQgetvalue(res, 0, 0));
	PQclear(res);
}

static void
check_name_taken(AssessContext *cx)
{
	const AssessOptions *o = cx->opts;
	const char *params[1] = {o->slot_name};
	char		fix[512];
	PGresult   *res = assess_query(cx, cx->src, "slot_name",
								   cx->src_version >= 130000 ?
								   "SELECT coalesce(wal_status, '') FROM pg_catalog.pg_replication_slots"
								   " WHERE slot_name = $1" :
								   "SELECT '' FROM pg_catalog.pg_replication_slots"
								   " WHERE slot_name = $1", 1, params);

	snprintf(fix, sizeof(fix), "if an earlier migration left it, remove what that "
			 "migration left with pgstream abort (same --source, --target and names); "
			 "otherwise choose another name with --slot, or drop the old "
			 "slot: SELECT pg_drop_replication_slot('%s');", o->slot_name);
	if (res != NULL && PQntuples(res) > 0 && !o->resuming)
		findings_add(cx->out, FINDING_BLOCKING, "slot_name", o->slot_name, fix,
					 "a replication slot named \"%s\" already exists on the source",
					 o->slot_name);
	else if (res != NULL && PQntuples(res) > 0 &&
			 strcmp(PQgetvalue(res, 0, 0), "lost") == 0)
	{
		snprintf(fix, sizeof(fix), "start the migration again: pgstream abort "
				 "--drop-target-objects (it drops the slot and state schema %s), then "
				 "run sync", state_schema_quoted());
		findings_add(cx->out, FINDING_BLOCKING, "slot_lost", o->slot_name, fix,
					 "replication slot \"%s\" was invalidated (max_slot_wal_keep_size): "
					 "changes since it stopped are lost", o->slot_name);
	}
	PQclear(res);
	if (o->publication_name == NULL)
		return;
	check_publication_taken(cx, o->publication_name);
	/* --no-key-tables=insert-only adds "<publication>_insert_only" */
	if (cx->no_key_tables == NO_KEY_INSERT_ONLY)
	{
		char		name[160];

		snprintf(name, sizeof(name), "%s_insert_only", o->publication_name);
		check_publication_taken(cx, name);
	}
}

/* ------------------------------------------------------------------------
 * Activity: transactions that make slot creation wait
 * ------------------------------------------------------------------------ */

static void
check_activity(AssessContext *cx)
{
	char		sql[1024];
	char		fix[512];
	PGresult   *res;

	/* backend_type exists from PG10, which check_versions requires */
	snprintf(sql, sizeof(sql),
			 "SELECT pid, coalesce(usename::text, '?'), coalesce(datname::text, '?'),"
			 " extract(epoch FROM now() - xact_start)::bigint, coalesce(state, '')"
			 " FROM pg_catalog.pg_stat_activity"
			 " WHERE xact_start < now() - interval '%d seconds'"
			 " AND pid <> pg_catalog.pg_backend_pid()"
			 " AND coalesce(backend_type, 'client backend') = 'client backend'"
			 " ORDER BY xact_start", LONG_XACT_SECONDS);
	res = assess_query(cx, cx->src, "long_transactions", sql, 0, NULL);
	for (int r = 0; res != NULL && r < PQntuples(res); r++)
	{
		if (assess_capped(cx, r, PQntuples(res), FINDING_WARNING, "long_transactions", ""))
			break;
		snprintf(fix, sizeof(fix), "let it finish, or end it: SELECT "
				 "pg_terminate_backend(%s);", PQgetvalue(res, r, 0));
		findings_add(cx->out, FINDING_WARNING, "long_transactions", PQgetvalue(res, r, 0),
					 fix, "a transaction of user \"%s\" in database \"%s\" (%s) has "
					 "been open for %s s: creating the slot waits until every "
					 "transaction that has written and is open at that moment ends",
					 PQgetvalue(res, r, 1), PQgetvalue(res, r, 2), PQgetvalue(res, r, 4),
					 PQgetvalue(res, r, 3));
	}
	PQclear(res);
	res = assess_query(cx, cx->src, "prepared_transactions",
					   "SELECT gid, owner, database, extract(epoch FROM now() - prepared)::bigint"
					   " FROM pg_catalog.pg_prepared_xacts ORDER BY prepared", 0, NULL);
	for (int r = 0; res != NULL && r < PQntuples(res); r++)
	{
		char	   *lit = pgconn_quote_literal(cx->src, PQgetvalue(res, r, 0));

		snprintf(fix, sizeof(fix), "COMMIT PREPARED %s; or ROLLBACK PREPARED %s;",
				 lit ? lit : "'<gid>'", lit ? lit : "'<gid>'");
		free(lit);
		findings_add(cx->out, FINDING_WARNING, "prepared_transactions",
					 PQgetvalue(res, r, 0), fix,
					 "prepared transaction \"%s\" (owner \"%s\", database \"%s\") has "
					 "been open for %s s: creating the slot waits until it is "
					 "committed or rolled back", PQgetvalue(res, r, 0),
					 PQgetvalue(res, r, 1), PQgetvalue(res, r, 2), PQgetvalue(res, r, 3));
	}
	PQclear(res);
	res = assess_query(cx, cx->src, "long_transactions",
					   "SELECT pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')", 0, NULL);
	if (res != NULL && !cx->src_super && !is_true(res, 0, 0))
	{
		snprintf(fix, sizeof(fix), "GRANT pg_read_all_stats TO %s;", cx->src_login);
		findings_add(cx->out, FINDING_INFO, "long_transactions", "source", fix,
					 "the source login sees only its own sessions in pg_stat_activity, "
					 "so long transactions of other users were not checked");
	}
	PQclear(res);
}

/* ------------------------------------------------------------------------
 * TLS
 * ------------------------------------------------------------------------ */

static const char *
conn_option(PGconn *conn, const char *keyword, char *buf, size_t bufsize)
{
	PQconninfoOption *opts = PQconninfo(conn);

	buf[0] = '\0';
	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, keyword) == 0 && o->val != NULL)
			snprintf(buf, bufsize, "%s", o->val);
	PQconninfoFree(opts);
	return buf;
}

static bool
host_is_loopback(const char *host)
{
	return host == NULL || host[0] == '\0' || host[0] == '/' || host[0] == '@' ||
		strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
		strcmp(host, "::1") == 0;
}

static void
check_tls(AssessContext *cx, PGconn *conn, const char *what)
{
	char		mode[32],
				root[4096];
	const char *host = PQhost(conn);
	const char *proto = PQsslAttribute(conn, "protocol");
	bool		encrypted = PQsslInUse(conn) != 0;
	bool		verified;
	bool		local = host_is_loopback(host);
	const char *fix = "add sslmode=verify-full and sslrootcert=<CA certificate file> to "
		"the connection string (for Azure, a file holding the DigiCert Global Root "
		"G2, Microsoft RSA Root Certificate Authority 2017 and DigiCert Global Root "
		"CA certificates)";

	conn_option(conn, "sslmode", mode, sizeof(mode));
	conn_option(conn, "sslrootcert", root, sizeof(root));
	/* libpq: require with a readable root certificate file acts as verify-ca */
	if (strcmp(mode, "require") == 0 && root[0] != '\0' && strcmp(root, "system") != 0 &&
		access(root, R_OK) == 0)
		snprintf(mode, sizeof(mode), "verify-ca");
	verified = encrypted && (strcmp(mode, "verify-full") == 0 ||
							 strcmp(mode, "verify-ca") == 0 ||
							 strcmp(root, "system") == 0);
	if (verified)
		findings_add(cx->out, FINDING_INFO, "tls", what, "",
					 "the %s connection is encrypted (%s) and the server certificate "
					 "is verified (sslmode=%s)", what, proto ? proto : "TLS",
					 strcmp(root, "system") == 0 ? "verify-full" : mode);
	else if (encrypted)
		findings_add(cx->out, local ? FINDING_INFO : FINDING_WARNING, "tls", what, fix,
					 "the %s connection to \"%s\" is encrypted (%s) but the server "
					 "certificate is not verified (sslmode=%s): a machine in between "
					 "could pose as the server and read the data and the password",
					 what, host ? host : "", proto ? proto : "TLS", mode);
	else
		findings_add(cx->out, local ? FINDING_INFO : FINDING_WARNING, "tls", what,
					 local ? "" : fix, "the %s connection to \"%s\" is not encrypted%s", what,
					 host ? host : "", local ? " (a local connection)" :
					 ": data and password cross the network in clear text");
}

/* ------------------------------------------------------------------------
 * Runner
 * ------------------------------------------------------------------------ */

bool
assess_same_database(PGconn *source, PGconn *target, bool *same, SyncError *err)
{
	static const char sql[] =
		"SELECT system_identifier::text || '/' || current_database()"
		" FROM pg_catalog.pg_control_system()";
	char		a[256],
				b[256];
	SyncError	ignored;

	(void) err;
	*same = false;
	if (!pgconn_query_value(source, sql, 0, NULL, a, sizeof(a), false, &ignored) ||
		!pgconn_query_value(target, sql, 0, NULL, b, sizeof(b), false, &ignored))
		return true;
	*same = strcmp(a, b) == 0;
	return true;
}

static void
check_same_database(AssessContext *cx)
{
	bool		same = false;
	SyncError	err;

	if (assess_same_database(cx->src, cx->tgt, &same, &err) && same)
		findings_add(cx->out, FINDING_BLOCKING, "same_database", "target",
					 "point --target at another database (an empty one, on the "
					 "new server)",
					 "source and target are the same database");
}

bool
assess_run(PGconn *source, PGconn *target, const AssessOptions *opts,
		   Findings *out, SyncError *err)
{
	return assess_run_mode(source, target, opts, NO_KEY_BLOCK, out, err);
}

bool
assess_run_mode(PGconn *source, PGconn *target, const AssessOptions *opts,
				NoKeyMode no_key, Findings *out, SyncError *err)
{
	AssessContext cx;
	SourceFacts sf;

	memset(&cx, 0, sizeof(cx));
	cx.src = source;
	cx.tgt = target;
	cx.opts = opts;
	cx.no_key_tables = no_key;
	cx.out = out;
	cx.live = opts->publication_name != NULL;
	cx.src_version = PQserverVersion(source);
	cx.tgt_version = PQserverVersion(target);
	if (!read_source_facts(&cx, &sf, err) || !read_target_facts(&cx, err))
		return false;
	check_same_database(&cx);
	check_versions(&cx);
	check_pg_dump(&cx);
	check_source_settings(&cx, &sf);
	check_wal_settings(&cx);
	check_timeouts(&cx);
	check_name_taken(&cx);
	check_state_schema(&cx);
	check_activity(&cx);
	assess_check_privileges(&cx);
	assess_check_publication(&cx);
	assess_check_identity(&cx);
	assess_check_names(&cx);
	assess_check_objects(&cx);
	assess_check_extensions(&cx);
	assess_check_collations(&cx);
	assess_check_target(&cx);
	assess_check_roles(&cx);
	check_tls(&cx, source, "source");
	check_tls(&cx, target, "target");
	return true;
}

/* ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------ */

static void
print_json(const Findings *f)
{
	JsonWriter	w;

	json_init(&w);
	json_begin_object(&w);
	json_key(&w, "findings");
	json_begin_array(&w);
	for (int i = 0; i < f->count; i++)
	{
		json_begin_object(&w);
		json_key(&w, "severity");
		json_string(&w, finding_severity_name(f->items[i].severity));
		json_key(&w, "check");
		json_string(&w, f->items[i].check);
		json_key(&w, "object");
		json_string(&w, f->items[i].object);
		json_key(&w, "message");
		json_string(&w, f->items[i].message);
		json_key(&w, "fix");
		json_string(&w, f->items[i].fix);
		json_end_object(&w);
	}
	json_end_array(&w);
	json_end_object(&w);
	if (!w.oom)
		puts(w.data);
	json_term(&w);
}

/* Blocking first, then warnings, then information; each group in check order. */
static void
print_group(const Findings *f, FindingSeverity sev)
{
	for (int i = 0; i < f->count; i++)
	{
		const Finding *it = &f->items[i];

		if (it->severity != sev)
			continue;
		fprintf(stderr, "%s: %s%s%s%s: %s%s%s\n", finding_severity_name(it->severity),
				it->check, it->object[0] ? " (" : "", it->object,
				it->object[0] ? ")" : "", it->message,
				it->fix[0] ? "; fix: " : "", it->fix);
	}
}

void
findings_print(const Findings *f, bool json)
{
	if (json)
	{
		print_json(f);
		return;
	}
	print_group(f, FINDING_BLOCKING);
	print_group(f, FINDING_WARNING);
	print_group(f, FINDING_INFO);
	fprintf(stderr, "%d blocking, %d warning(s), %d info\n",
			findings_count(f, FINDING_BLOCKING), findings_count(f, FINDING_WARNING),
			findings_count(f, FINDING_INFO));
}
