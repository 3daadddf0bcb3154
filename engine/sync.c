/*
 * engine/sync.c -- "pgstream sync": the migration driver.
 *
 * Phases, each recorded in pgstream.migration on the target so that running
 * the same command again resumes where the last run stopped:
 *
 *   schema  slot + exported snapshot, pg_dump of that snapshot, pre-data
 *           restored on the target (one transaction)
 *   copy    parallel COPY of every table under the snapshot
 *   index   indexes and PK/UNIQUE constraints, in parallel, each once
 *   final   (--no-follow) FKs, triggers, sequences, ANALYZE, verification,
 *           then the slot and the state schema are dropped
 *
 * The exported snapshot only lives as long as this process's replication
 * connection.  A run interrupted in "schema" or "copy" therefore cannot reuse
 * it: it says so, truncates what was copied and starts the copy again from a
 * new slot and snapshot, never mixing two points in time.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apply/pgconn.h"
#include "apply/statesql.h"
#include "apply/writer.h"
#include "engine/assess/assess.h"
#include "engine/cli.h"
#include "engine/failpoint.h"
#include "engine/fullload.h"
#include "engine/log.h"
#include "apply/replclient.h"
#include "engine/roles.h"
#include "engine/schema/schema.h"
#include "engine/sequences.h"
#include "engine/snapshot.h"
#include "engine/state.h"
#include "engine/sync.h"
#include "engine/stream/stream.h"
#include "protocol/names.h"

/*
 * One target transaction groups source transactions until this many
 * changes or milliseconds, or until apply has caught up.  Each target
 * commit costs round trips (a COPY run flushed, then COMMIT): with 10 ms to
 * the target, 20 000-change groups spent 40 % of a 1 M-row backlog's time
 * waiting on the network.  The time bound is short: while apply only just
 * keeps up, the queue is rarely empty, and applied_lsn then moves in steps
 * of this size (with 500 ms, pgbench's lag swung by half a second).
 */
#define BATCH_MAX_CHANGES 100000
#define BATCH_MAX_MS 50

typedef struct SyncRun
{
	SyncOptions opt;
	PGconn	   *src;			/* ordinary source session */
	PGconn	   *tgt;			/* target session for state and DDL */
	ReplClient	rc;				/* replication session; exports the snapshot */
	FullLoadSources sources;	/* the copy's locked source sessions (fullload.h) */
	MigrationState st;
	bool		resuming;
	char		snapshot[SNAPSHOT_NAME_MAX];
	Lsn			consistent_lsn;
	struct timespec started;
	char		default_name[NAMES_DEFAULT_SIZE];	/* names_default() */
	char		recorded_slot[sizeof(((MigrationState *) 0)->slot_name)];
	char		recorded_publication[sizeof(((MigrationState *) 0)->publication_name)];
} SyncRun;

static bool
sync_connect(SyncRun *run, SyncError *err)
{
	PgconnOptions co = {PGCONN_SQL, "pgstream sync", true, NULL};

	if (!pgconn_check_conninfo(run->opt.source, "source", err) ||
		!pgconn_check_conninfo(run->opt.target, "target", err))
		return false;
	run->src = pgconn_connect(run->opt.source, &co, "source", err);
	if (run->src == NULL)
		return false;
	run->tgt = pgconn_connect(run->opt.target, &co, "target", err);
	return run->tgt != NULL;
}

/* The replication connection (after preflight, so its problems are listed). */
static bool
sync_connect_replication(SyncRun *run, SyncError *err)
{
	return run->rc.conn != NULL ||
		replclient_connect(&run->rc, run->opt.source, "pgstream sync", err);
}

/* Refuse to migrate a database onto itself (before anything else is checked). */
static bool
check_not_same_database(SyncRun *run, SyncError *err)
{
	bool		same = false;
	char		db[128];

	if (!assess_same_database(run->src, run->tgt, &same, err))
		return false;
	if (!same)
		return true;
	if (!pgconn_query_value(run->tgt, "SELECT current_database()", 0, NULL, db, sizeof(db),
							false, err))
		return false;
	return sync_error_set(err, SYNC_ERR_USAGE,
						  "source and target are the same database (\"%s\"); point --target "
						  "at another, empty database", db);
}

/* Warnings are worth a line each when sync starts; infos are for assess. */
static void
print_warnings(const Findings *f)
{
	for (int i = 0; i < f->count; i++)
		if (f->items[i].severity == FINDING_WARNING)
			log_warn("%s%s%s%s: %s%s%s", f->items[i].check, f->items[i].object[0] ? " (" : "",
					 f->items[i].object, f->items[i].object[0] ? ")" : "", f->items[i].message,
					 f->items[i].fix[0] ? "; fix: " : "", f->items[i].fix);
}

/*
 * One run at a time per migration.  A second sync against the same target
 * database, started by mistake in another terminal, would "resume" with a
 * new snapshot under the first one's copy or fight over the slot.  The
 * lock is a session advisory lock in the target database, held by run->tgt
 * for the whole run and taken again whenever that session is reconnected
 * (RUN_LOCK_KEY is "pgst" and 1; cutover does not take it).  The session
 * asks the server for TCP keepalives every few seconds, so that a run whose
 * machine died or lost the network (a half-open connection the server
 * cannot see) releases the lock within about 25 s instead of hours.
 */
#define RUN_LOCK_KEY STATE_SYNC_LOCK_KEYS
#define RUN_LOCK_WAIT "5s"

static bool
take_run_lock(SyncRun *run, SyncError *err)
{
	char		got[8];
	PGresult   *res;

	/* ignored on a Unix-domain socket, where the peer's death is seen at once */
	if (!pgconn_exec(run->tgt, "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5;"
					 " SET tcp_keepalives_count = 3", err))
		return sync_error_context(err, "could not set up the target session");
	/*
	 * Wait a few seconds: a run killed just before this one started holds
	 * the lock until its server session notices it is gone.
	 */
	if (!pgconn_exec(run->tgt, "SET lock_timeout = '" RUN_LOCK_WAIT "'", err))
		return sync_error_context(err, "could not set up the target session");
	if (pgconn_query_value(run->tgt, "SELECT pg_catalog.pg_advisory_lock(" RUN_LOCK_KEY ") IS NULL",
						   0, NULL, got, sizeof(got), false, err))
		return pgconn_exec(run->tgt, "SET lock_timeout = 0", err);
	if (strcmp(err->sqlstate, "55P03") != 0)	/* lock_not_available */
		return sync_error_context(err, "could not take the migration's lock on the target");
	if (!pgconn_exec(run->tgt, "SET lock_timeout = 0", err))
		return false;
	res = pgconn_query(run->tgt,
					   "SELECT a.pid, coalesce(host(a.client_addr), 'local'),"
					   " to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS')"
					   " FROM pg_catalog.pg_locks l"
					   " JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
					   " WHERE l.locktype = 'advisory' AND l.granted"
					   " AND l.database = (SELECT oid FROM pg_catalog.pg_database"
					   "   WHERE datname = current_database())"
					   " AND l.classid = 1885827956 AND l.objid = 1 AND l.objsubid = 2",
					   0, NULL, err);
	if (res != NULL && PQntuples(res) == 1)
		sync_error_set(err, SYNC_ERR_PRECONDITION,
					   "another pgstream sync is already running for this target database "
					   "(its target session: PID %s, from %s, since %s); only one run at a "
					   "time: wait for it to end or stop it (it resumes when started again); "
					   "if its machine died or lost the network, its session ends within "
					   "about 25 s, or end it now on the target: SELECT "
					   "pg_terminate_backend(%s)",
					   PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
					   PQgetvalue(res, 0, 0));
	else
		sync_error_set(err, SYNC_ERR_PRECONDITION,
					   "another pgstream sync is already running for this target database; "
					   "only one run at a time: wait for it to end or stop it");
	PQclear(res);
	return false;
}

/*
 * How many more sessions this login may open on conn's server and database:
 * the least of the server's slots (less those kept for superusers), the
 * role's CONNECTION LIMIT and the database's, superusers being exempt from
 * the last two.  Counted from pg_stat_activity, so a snapshot, not a promise.
 */
static const char free_connections_sql[] =
	"SELECT least("
	" current_setting('max_connections')::int"
	"  - CASE WHEN r.rolsuper THEN 0"
	"    ELSE current_setting('superuser_reserved_connections')::int END"
	"  - (SELECT count(*) FROM pg_catalog.pg_stat_activity"
	"     WHERE backend_type = 'client backend'),"
	" CASE WHEN r.rolsuper OR r.rolconnlimit < 0 THEN 2147483647"
	"  ELSE r.rolconnlimit - (SELECT count(*) FROM pg_catalog.pg_stat_activity"
	"   WHERE usename = current_user AND backend_type = 'client backend') END,"
	" CASE WHEN r.rolsuper OR d.datconnlimit < 0 THEN 2147483647"
	"  ELSE d.datconnlimit - (SELECT count(*) FROM pg_catalog.pg_stat_activity"
	"   WHERE datname = current_database() AND backend_type = 'client backend') END)"
	" FROM pg_catalog.pg_roles r, pg_catalog.pg_database d"
	" WHERE r.rolname = current_user AND d.datname = current_database()";

/*
 * The copy and the index builds each open --jobs sessions on the target (and
 * the copy as many on the source) besides the run's own: fit --jobs to what
 * is free now rather than fail with "too many connections" mid-copy.
 */
static bool
fit_jobs_to_connections(SyncRun *run, SyncError *err)
{
	PGconn	   *conns[2] = {run->src, run->tgt};
	const char *names[2] = {"source", "target"};
	const long	besides[2] = {0, 1};	/* the index builds' own session */

	for (int i = 0; i < 2; i++)
	{
		char		value[32];
		long		free_now;

		if (!pgconn_query_value(conns[i], free_connections_sql, 0, NULL, value,
								sizeof(value), false, err))
			return sync_error_context(err, "could not count the free connections on the %s",
									  names[i]);
		free_now = strtol(value, NULL, 10);
		if (free_now - besides[i] < 1)
			return sync_error_set(err, SYNC_ERR_PRECONDITION,
								  "the %s allows only %ld more connection(s) for this login, "
								  "and sync needs at least %ld (max_connections, or the "
								  "CONNECTION LIMIT of the role or the database, is reached): "
								  "end other sessions or raise the limit", names[i],
								  free_now, besides[i] + 1);
		if (run->opt.jobs > free_now - besides[i])
		{
			log_warn("--jobs %ld lowered to %ld: the %s allows only %ld more connection(s) "
					 "for this login%s (raise max_connections or the CONNECTION LIMIT of the "
					 "role or the database for more)", run->opt.jobs, free_now - besides[i],
					 names[i], free_now, besides[i] ? ", and the index builds need one "
					 "besides their workers" : "");
			run->opt.jobs = free_now - besides[i];
		}
	}
	return true;
}

/*
 * --spool and --spool-dir: made and written to before anything else, so a
 * bad path is found now, not after the full load (--spool) or at the
 * first large transaction (--spool-dir).
 */
static bool
check_spool_dir(const char *dir, const char *option, SyncError *err)
{
	char		probe[PATH_MAX];
	int			fd;

	if (dir == NULL)
		return true;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return sync_error_set(err, SYNC_ERR_PRECONDITION, "cannot use %s as the spool "
							  "directory (%s): cannot create it: %s", dir, option, strerror(errno));
	snprintf(probe, sizeof(probe), "%s/.pgstream-probe-%ld", dir, (long) getpid());
	fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return sync_error_set(err, SYNC_ERR_PRECONDITION, "cannot use %s as the spool "
							  "directory (%s): cannot write there: %s", dir, option,
							  strerror(errno));
	close(fd);
	unlink(probe);
	return true;
}

/* No state on the target: it must be empty, and preflight must pass. */
static bool
prepare_fresh(SyncRun *run, SyncError *err)
{
	long		ntables;
	char		first[256];
	Findings	f;
	AssessOptions ao = {run->opt.slot, run->opt.no_follow ? NULL : run->opt.publication, false};
	bool		ok;

	if (!state_count_user_tables(run->tgt, &ntables, first, sizeof(first), err))
		return false;
	if (ntables > 0)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "target database is not empty: it holds %ld table(s), "
							  "for example %s; migrate into an empty database", ntables, first);
	findings_init(&f);
	ok = assess_run_mode(run->src, run->tgt, &ao, run->opt.no_key, &f, err);
	if (ok && findings_count(&f, FINDING_BLOCKING) > 0)
	{
		findings_print(&f, false);
		ok = sync_error_set(err, SYNC_ERR_PRECONDITION,
							"%d blocking problem(s) found before starting; nothing was changed",
							findings_count(&f, FINDING_BLOCKING));
		err->code = SYNC_ERR_PRECONDITION;
	}
	else if (ok)
		print_warnings(&f);
	findings_term(&f);
	if (!ok || !sync_connect_replication(run, err))
		return false;
	memset(&run->st, 0, sizeof(run->st));
	snprintf(run->st.source_system_id, sizeof(run->st.source_system_id), "%s", run->rc.systemid);
	snprintf(run->st.source_dbname, sizeof(run->st.source_dbname), "%s", run->rc.dbname);
	snprintf(run->st.slot_name, sizeof(run->st.slot_name), "%s", run->opt.slot);
	snprintf(run->st.publication_name, sizeof(run->st.publication_name), "%s", run->opt.publication);
	run->st.follow = !run->opt.no_follow;
	run->st.phase = PHASE_SCHEMA;
	/* one transaction: a kill in between must not leave half a state */
	if (!pgconn_exec(run->tgt, "BEGIN", err))
		return false;
	if (!state_create(run->tgt, &run->st, err) || !schema_create_state_table(run->tgt, err))
	{
		PQclear(PQexec(run->tgt, "ROLLBACK"));
		return false;
	}
	return pgconn_exec(run->tgt, "COMMIT", err);
}

/* State exists: it must be ours, for this source and these options. */
static bool
prepare_resume(SyncRun *run, SyncError *err)
{
	if (!sync_connect_replication(run, err) || !state_upgrade(run->tgt, err) ||
		!state_load(run->tgt, &run->st, err))
		return false;
	/*
	 * The names the migration was started with, recorded on the target: the
	 * default has changed since ("pgstream" before it was one per database)
	 * and must not orphan a migration started by an older pgstream.
	 */
	snprintf(run->recorded_slot, sizeof(run->recorded_slot), "%s", run->st.slot_name);
	snprintf(run->recorded_publication, sizeof(run->recorded_publication), "%s",
			 run->st.publication_name);
	if (!run->opt.slot_given)
		run->opt.slot = run->recorded_slot;
	if (!run->opt.publication_given)
		run->opt.publication = run->recorded_publication;
	if (strcmp(run->st.source_system_id, run->rc.systemid) != 0 ||
		strcmp(run->st.source_dbname, run->rc.dbname) != 0 ||
		strcmp(run->st.slot_name, run->opt.slot) != 0)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "target holds the state of another migration (source system %s, "
							  "database \"%s\", slot \"%s\"); use an empty target database, or "
							  "discard that migration with pgstream abort (same --source as it "
							  "had, this --target)",
							  run->st.source_system_id, run->st.source_dbname, run->st.slot_name);
	if (run->st.follow != !run->opt.no_follow)
		return sync_error_set(err, SYNC_ERR_USAGE,
							  "the interrupted run was started %s --no-follow; "
							  "run the same command again", run->st.follow ? "without" : "with");
	run->resuming = true;
	log_info("resuming the migration from phase \"%s\"", phase_name(run->st.phase));
	return schema_create_state_table(run->tgt, err);	/* IF NOT EXISTS */
}

/* Empty the tables a previous attempt copied into, before copying again. */
static bool
truncate_copied(SyncRun *run, SyncError *err)
{
	PGresult   *res = pgconn_query(run->tgt,
								   state_sql("SELECT string_agg(format('%I.%I', nspname, relname), ', ')"
								   " FROM {state}.tables"), 0, NULL, err);
	char	   *sql;
	bool		ok = true;

	if (res == NULL)
		return false;
	if (!PQgetisnull(res, 0, 0))
	{
		size_t		len = strlen(PQgetvalue(res, 0, 0)) + 16;

		sql = malloc(len);
		if (sql == NULL)
			ok = sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		else
		{
			snprintf(sql, len, "TRUNCATE %s", PQgetvalue(res, 0, 0));
			ok = pgconn_exec(run->tgt, sql, err);
			free(sql);
		}
	}
	PQclear(res);
	return ok;
}

/* Tell the user about schema steps pgstream will not run (superuser-only). */
static void
note_skipped_steps(SyncRun *run)
{
	SyncError	ignored;
	PGresult   *res = pgconn_query(run->tgt, state_sql("SELECT kind || ' ' || name FROM {state}.schema_steps"
								   " WHERE phase = 4 ORDER BY id"), 0, NULL, &ignored);

	for (int i = 0; res != NULL && i < PQntuples(res); i++)
		log_warn("not migrated: %s (only a superuser can create it on the target: event "
				 "triggers, and the objects named when the schema was captured, and "
				 "comments on them; extension comments come with the extension); its SQL "
				 "is in %s.schema_steps until the migration ends", PQgetvalue(res, i, 0),
				 state_schema_quoted());
	PQclear(res);
}

/*
 * --no-key-tables=full: give each such table REPLICA IDENTITY FULL, its
 * identity before noted on the target first so that pgstream abort can
 * put it back.
 */
static bool
set_identity_full(SyncRun *run, const NoKeyTables *t, SyncError *err)
{
	for (int i = 0; i < t->count; i++)
	{
		char		sql[400];
		char		original[8];
		const char *params[1] = {t->items[i].qualified};

		if (!pgconn_query_value(run->src, "SELECT relreplident FROM pg_catalog.pg_class"
								" WHERE oid = $1::regclass", 1, params, original,
								sizeof(original), false, err) ||
			!state_note_source_change(run->tgt, STATE_CHANGE_IDENTITY, t->items[i].nspname,
									  t->items[i].relname, original, err))
			return false;
		snprintf(sql, sizeof(sql), "ALTER TABLE %s REPLICA IDENTITY FULL", t->items[i].qualified);
		if (!pgconn_exec(run->src, sql, err))
			return sync_error_context(err, "could not set REPLICA IDENTITY FULL on %s",
									  t->items[i].qualified);
		log_warn("changed the source: %s now has REPLICA IDENTITY FULL (undo after the "
				 "migration: ALTER TABLE %s REPLICA IDENTITY DEFAULT)", t->items[i].qualified,
				 t->items[i].qualified);
	}
	return true;
}

/* --no-key-tables=insert-only: a second publication, and a note for cutover. */
static bool
publish_insert_only(SyncRun *run, const NoKeyTables *t, SyncError *err)
{
	char		name[128];
	const char **nsp = calloc((size_t) t->count + 1, sizeof(char *));
	const char **rel = calloc((size_t) t->count + 1, sizeof(char *));
	bool		ok = nsp && rel;

	snprintf(name, sizeof(name), "%s_insert_only", run->opt.publication);
	for (int i = 0; ok && i < t->count; i++)
	{
		nsp[i] = t->items[i].nspname;
		rel[i] = t->items[i].relname;
		log_warn("%s has no replica identity: only its INSERTs and TRUNCATEs are carried; "
				 "cutover compares it in full and fails if it differs", t->items[i].qualified);
	}
	ok = ok ? snapshot_drop_publication(run->src, name, err) &&
		snapshot_create_insert_only_publication(run->src, name, t, err) &&
		state_set_insert_only(run->tgt, name, nsp, rel, t->count, err)
		: sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	free(nsp);
	free(rel);
	return ok;
}

static bool
create_publications(SyncRun *run, SyncError *err)
{
	NoKeyTables t = {0};
	bool		ok = assess_list_no_key_tables(run->src, &t, err);

	if (ok && t.count > 0 && run->opt.no_key == NO_KEY_FULL)
		ok = set_identity_full(run, &t, err);
	if (ok && t.count > 0 && run->opt.no_key == NO_KEY_INSERT_ONLY)
		ok = publish_insert_only(run, &t, err);
	else if (ok && t.count > 0 && run->opt.no_key == NO_KEY_BLOCK)
		ok = sync_error_set(err, SYNC_ERR_PRECONDITION, "%d table(s) have no replica identity, "
							"for example %s; see pgstream assess", t.count, t.items[0].qualified);
	ok = ok && snapshot_create_publication(run->src, run->opt.publication,
										   run->opt.no_key == NO_KEY_INSERT_ONLY ? &t : NULL, err);
	no_key_tables_term(&t);
	return ok;
}

/*
 * The copy cannot go on (err says why and what to do): drop the slot and
 * publications this run made, so that nothing holds WAL on the source while
 * the operator acts.  Returns false; the caller's error stands.
 */
static bool
abandon_slot(SyncRun *run)
{
	SyncError	drop_err;

	fullload_close_sources(&run->sources);
	replclient_close(&run->rc);	/* the slot's snapshot */
	sync_error_clear(&drop_err);
	if (!snapshot_drop_slot(run->src, run->opt.slot, &drop_err) ||
		(!run->opt.no_follow && !snapshot_drop_publication(run->src, run->opt.publication, &drop_err)) ||
		(run->st.insert_only_publication[0] &&
		 !snapshot_drop_publication(run->src, run->st.insert_only_publication, &drop_err)))
		log_warn("could not drop slot \"%s\" on the source: %s; drop it with "
				 "SELECT pg_drop_replication_slot('%s') so that it holds no WAL",
				 run->opt.slot, drop_err.message, run->opt.slot);
	else
		log_info("dropped slot \"%s\" on the source: nothing holds WAL meanwhile",
				 run->opt.slot);
	return false;
}

/* While the slot is created: the copy's locks must not hold it up. */
static bool
watch_slot_creation(void *arg, SyncError *err)
{
	SyncRun    *run = arg;

	return fullload_watch_sources(&run->sources, run->src, err);
}

/* A new slot and its exported snapshot. */
static bool
create_slot(SyncRun *run, SyncError *err)
{
	if (!sync_connect_replication(run, err) ||
		!snapshot_create_slot_watched(&run->rc, run->opt.slot, &run->consistent_lsn,
									  run->snapshot, watch_slot_creation, run, err))
		return false;
	log_info("created slot \"%s\" at %X/%X with snapshot %s", run->opt.slot,
			 LSN_ARGS(run->consistent_lsn), run->snapshot);
	/* sync.after_slot_created: the snapshot exists, not yet imported */
	FAILPOINT("sync.after_slot_created");
	return true;
}

/* How many snapshots a run takes before it gives up on tables being rewritten. */
#define SNAPSHOT_ATTEMPTS 3

/*
 * The slot, its snapshot, and the copy's source sessions holding every
 * table's lock from before the snapshot to the end of the copy
 * (fullload.c, "Guarding the snapshot").  If the locks had to be let go
 * while the slot was created and a table was rewritten meanwhile, that
 * snapshot cannot copy it: drop the slot and take another, a few times,
 * then give up saying why.  The tables on the target were made from
 * pg_dump's own, earlier snapshot: their columns are checked against the
 * slot's.
 */
static bool
take_snapshot(SyncRun *run, FullLoadOptions *fo, SyncError *err)
{
	char		rewritten[320];

	for (int attempt = 1;; attempt++)
	{
		if (!fullload_lock_sources(fo, &run->sources, err) || !create_slot(run, err))
			return false;
		if (!fullload_import_sources(fo, &run->sources, rewritten, sizeof(rewritten), err))
			return abandon_slot(run);
		if (rewritten[0] == '\0')
			break;
		if (attempt == SNAPSHOT_ATTEMPTS)
		{
			sync_error_set(err, SYNC_ERR_PRECONDITION,
						   "%s, and so it went with each of %d snapshots; pause "
						   "what does that on the source until the copy has "
						   "started, then run the same command again",
						   rewritten, SNAPSHOT_ATTEMPTS);
			return abandon_slot(run);
		}
		log_warn("%s: that snapshot could miss its rows; taking a new one", rewritten);
		replclient_close(&run->rc);
		if (!snapshot_drop_slot(run->src, run->opt.slot, err))
			return false;
	}
	if (!fullload_check_target_tables(fo, run->tgt, err))
		return abandon_slot(run);
	/* sync.after_table_locks: the snapshot imported, every table locked */
	FAILPOINT("sync.after_table_locks");
	log_info("the copy holds ACCESS SHARE on the tables it reads until it ends: "
			 "a TRUNCATE or ALTER TABLE of them on the source waits until then");
	return true;
}

/*
 * Phases schema and copy: the schema (pg_dump with its own snapshot), then
 * the slot and its snapshot with the tables locked, then the copy.
 */
static bool
load_data(SyncRun *run, SyncError *err)
{
	FullLoadOptions fo = {run->opt.source, run->opt.target, run->snapshot,
	(int) run->opt.jobs, (int64_t) run->opt.split_mb * 1024 * 1024, run->opt.quiet, &cli_stop_requested,
	&run->sources};
	int			pre_total = 0,
				pre_done = 0;

	if (run->resuming)
	{
		log_info("the snapshot of the interrupted run ended with it; "
				 "restarting the copy from a new snapshot");
		if (!snapshot_drop_slot(run->src, run->opt.slot, err) ||
			(!run->opt.no_follow && !snapshot_drop_publication(run->src, run->opt.publication, err)) ||
			(run->st.insert_only_publication[0] &&
			 !snapshot_drop_publication(run->src, run->st.insert_only_publication, err)))
			return false;
	}
	/* the publications must exist before the slot's start point */
	if (!run->opt.no_follow && !create_publications(run, err))
		return false;
	if (!schema_count_steps(run->tgt, SCHEMA_PHASE_PRE, &pre_total, &pre_done, err))
		return false;
	/*
	 * The schema first, from pg_dump's own snapshot: pg_dump asks for a lock
	 * on every table, which must not queue behind a TRUNCATE that waits for
	 * the copy's locks.  take_snapshot() checks the columns under the
	 * slot's snapshot.
	 */
	if (pre_done == 0)
	{
		log_info("dumping the schema and creating tables on the target");
		if (!roles_sync(run->src, run->tgt, err) ||
			!schema_capture(run->opt.source, NULL, run->tgt, err) ||
			!schema_apply_pre_data(run->tgt, err))
			return false;
		note_skipped_steps(run);
	}
	else if (pre_done < pre_total)
	{
		/* a batched pre-data restore was interrupted: finish it */
		log_info("finishing the schema on the target (%d of %d steps done)", pre_done, pre_total);
		if (!schema_apply_pre_data(run->tgt, err) || !truncate_copied(run, err))
			return false;
	}
	else if (!truncate_copied(run, err))
		return false;
	if (!take_snapshot(run, &fo, err))
		return false;
	if (!state_set_phase(run->tgt, PHASE_COPY, run->consistent_lsn, err) ||
		!fullload_plan(&fo, run->tgt, err))
		return false;
	log_info("copying data with %d workers", fo.jobs);
	if (!fullload_run(&fo, run->tgt, err))
		return false;
	/* every table is read: TRUNCATE and ALTER TABLE may go on on the source */
	fullload_close_sources(&run->sources);
	return state_set_phase(run->tgt, PHASE_INDEX, 0, err);
}

static void
index_progress(int done, int total, const char *name, void *arg)
{
	(void) arg;
	log_debug("index %d/%d: %s", done, total, name);
}

static bool
build_indexes(SyncRun *run, SyncError *err)
{
	int			total = 0,
				done = 0;

	if (!schema_count_steps(run->tgt, SCHEMA_PHASE_INDEX, &total, &done, err))
		return false;
	log_info("building %d indexes and constraints with %ld workers (%d already built)",
			 total - done, run->opt.jobs, done);
	if (!schema_apply_indexes(run->opt.target, (int) run->opt.jobs,
							  (int) run->opt.index_mem_mb, index_progress, NULL, err))
		return false;
	return state_set_phase(run->tgt, run->opt.no_follow ? PHASE_FINAL : PHASE_CATCHUP, 0, err);
}

static bool
analyze_tables(SyncRun *run, SyncError *err)
{
	PGresult   *res = pgconn_query(run->tgt, state_sql("SELECT format('%I.%I', nspname, relname)"
								   " FROM {state}.tables ORDER BY est_bytes DESC"), 0, NULL, err);

	if (res == NULL)
		return false;
	for (int r = 0; r < PQntuples(res); r++)
	{
		char		sql[600];

		snprintf(sql, sizeof(sql), "ANALYZE %s", PQgetvalue(res, r, 0));
		if (!pgconn_exec(run->tgt, sql, err))
		{
			PQclear(res);
			return sync_error_context(err, "could not analyze table");
		}
	}
	PQclear(res);
	return true;
}

/* Between steps: false with "stopped by a signal" once INT/TERM/HUP came. */
static bool
not_stopped(SyncError *err)
{
	if (cli_stop_requested)
		return sync_error_set(err, SYNC_ERR_INTERNAL, "stopped by a signal");
	return true;
}

/* --no-follow, phase final: deferred schema, sequences, checks, clean-up. */
static bool
finish_offline(SyncRun *run, SyncError *err)
{
	long		nseq = 0,
				ntables = 0;
	struct timespec now;

	/* sync.before_final: the index phase is over, nothing final done */
	FAILPOINT("sync.before_final");
	/* counts first: policies created by the final phase may hide rows */
	if (!not_stopped(err) || !fullload_verify(run->tgt, &ntables, err) ||
		!not_stopped(err) || !schema_apply_final(run->tgt, err) ||
		!not_stopped(err) || !sequences_copy(run->src, run->tgt, &nseq, err) ||
		!not_stopped(err) || !analyze_tables(run, err) || !not_stopped(err))
		return false;
	if (!snapshot_drop_slot(run->src, run->opt.slot, err) ||
		!state_drop(run->tgt, err))
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	log_info("done: %ld tables copied (rows stored = rows sent, per range), %ld sequences set, "
			 "in %.1f s", ntables, nseq,
			 (double) (now.tv_sec - run->started.tv_sec) +
			 (double) (now.tv_nsec - run->started.tv_nsec) / 1e9);
	return true;
}

/* The slot must still exist and still have its WAL. */
static bool
check_slot(SyncRun *run, SyncError *err)
{
	const char *params[1] = {run->opt.slot};
	PGresult   *res = pgconn_query(run->src,
								   PQserverVersion(run->src) >= 130000 ?
								   "SELECT coalesce(wal_status, '') FROM pg_catalog.pg_replication_slots"
								   " WHERE slot_name = $1" :
								   "SELECT '' FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
								   1, params, err);
	bool		ok;

	if (res == NULL)
		return false;
	ok = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "lost") != 0;
	if (!ok)
		sync_error_set(err, SYNC_ERR_PRECONDITION,
					   "replication slot \"%s\" %s on the source, so the changes since the "
					   "last applied position can no longer be read; the migration cannot "
					   "continue: discard it with pgstream abort --drop-target-objects "
					   "and run sync again", run->opt.slot,
					   PQntuples(res) == 0 ? "no longer exists" : "has lost required WAL");
	PQclear(res);
	return ok;
}

/* (Re)connect whatever is missing and read the resume position. */
static bool
stream_connect(SyncRun *run, SyncError *err)
{
	PgconnOptions co = {PGCONN_SQL, "pgstream sync", true, NULL};

	if (run->src == NULL && (run->src = pgconn_connect(run->opt.source, &co, "source", err)) == NULL)
		return false;
	if (run->tgt == NULL &&
		((run->tgt = pgconn_connect(run->opt.target, &co, "target", err)) == NULL ||
		 !take_run_lock(run, err)))
		return false;

	/*
	 * The resume position is read only once every earlier apply session is
	 * gone: one still committing after the read would have its batches
	 * applied twice (writer_create checks the position again).
	 */
	if (!writer_end_earlier_sessions(run->tgt, err) || !state_load(run->tgt, &run->st, err) ||
		!check_slot(run, err))
		return false;
	return run->rc.conn != NULL ||
		replclient_connect(&run->rc, run->opt.source, "pgstream sync", err);
}

static void
disconnect_all(SyncRun *run)
{
	fullload_close_sources(&run->sources);
	replclient_close(&run->rc);
	pgconn_close(run->src);
	pgconn_close(run->tgt);
	run->src = run->tgt = NULL;
}

/* Sleep up to seconds, waking early on a stop request. */
static void
pause_unless_stopped(int seconds)
{
	for (int i = 0; i < seconds * 10 && !cli_stop_requested; i++)
		usleep(100 * 1000);
}

/* Live sync: stream until the cutover barrier is applied, reconnecting. */
static bool
follow(SyncRun *run, SyncError *err)
{
	char		spool[512];
	const char *tmpdir = getenv("TMPDIR");
	time_t		last_progress = time(NULL);
	int			backoff = 1;

	/* per source system and slot: two migrations on one machine never share it */
	snprintf(spool, sizeof(spool), "%s/pgstream-spool-%s-%s",
			 tmpdir && *tmpdir ? tmpdir : "/tmp", run->st.source_system_id, run->opt.slot);
	for (;;)
	{
		StreamOptions so = {run->opt.target, run->opt.slot, run->opt.publication,
			run->st.insert_only_publication[0] ? run->st.insert_only_publication : NULL,
			run->opt.spool_dir ? run->opt.spool_dir : spool, run->opt.wal_spool_dir, 0,
			BATCH_MAX_CHANGES, BATCH_MAX_MS,
		run->opt.quiet, &cli_stop_requested};
		Lsn			before = run->st.applied_lsn;

		sync_error_clear(err);
		if (stream_connect(run, err))
		{
			so.start_lsn = run->st.applied_lsn ? run->st.applied_lsn : run->st.consistent_lsn;
			/* sync.before_stream: the resume position is read, apply not started */
			FAILPOINT("sync.before_stream");
			if (stream_run(&so, &run->rc, run->src, run->tgt, err))
				break;
		}
		if (cli_stop_requested || !pgconn_error_is_transient(err))
			return false;
		if (run->tgt != NULL && state_load(run->tgt, &run->st, &(SyncError) {0}) &&
			run->st.applied_lsn > before)
			last_progress = time(NULL), backoff = 1;
		if (time(NULL) - last_progress >= run->opt.retry_timeout_s)
			return sync_error_context(err, "giving up after %ld s without progress "
									  "(--retry-timeout)", run->opt.retry_timeout_s);
		log_warn("%s; reconnecting in %d s", err->message, backoff);
		disconnect_all(run);
		pause_unless_stopped(backoff);
		backoff = backoff < 30 ? backoff * 2 : 30;
	}
	replclient_close(&run->rc);
	/* our own session may have lost the target while the applier's recovered */
	if (!state_set_phase(run->tgt, PHASE_CUTOVER, 0, err))
	{
		PgconnOptions co = {PGCONN_SQL, "pgstream sync", true, NULL};

		pgconn_close(run->tgt);
		run->tgt = pgconn_connect(run->opt.target, &co, "target", err);
		if (run->tgt == NULL || !take_run_lock(run, err) ||
			!state_set_phase(run->tgt, PHASE_CUTOVER, 0, err))
			return false;
	}
	log_info("the cutover barrier is applied: every change made before it is on the target; "
			 "pgstream cutover completes the migration");
	return true;
}

static bool
sync_execute(SyncRun *run, SyncError *err)
{
	bool		exists;

	if (!check_spool_dir(run->opt.wal_spool_dir, "--spool", err) ||
		!check_spool_dir(run->opt.spool_dir, "--spool-dir", err))
		return false;
	if (!sync_connect(run, err) || !check_not_same_database(run, err) ||
		!take_run_lock(run, err) || !fit_jobs_to_connections(run, err) ||
		!state_exists(run->tgt, &exists, err))
		return false;
	/* a fresh run's default names; a resumed run takes the recorded ones */
	if ((!run->opt.slot_given || !run->opt.publication_given) &&
		!cli_default_name(run->src, run->default_name, sizeof(run->default_name), err))
		return false;
	if (!run->opt.slot_given)
		run->opt.slot = run->default_name;
	if (!run->opt.publication_given)
		run->opt.publication = run->default_name;
	if (!(exists ? prepare_resume(run, err) : prepare_fresh(run, err)))
		return false;
	if ((run->st.phase == PHASE_SCHEMA || run->st.phase == PHASE_COPY) &&
		!load_data(run, err))
		return false;
	replclient_close(&run->rc);	/* the snapshot is no longer needed */
	if (!state_load(run->tgt, &run->st, err))
		return false;
	if (run->opt.no_follow && !snapshot_drop_slot(run->src, run->opt.slot, err))
		return false;
	if (run->st.phase == PHASE_INDEX && (!not_stopped(err) || !build_indexes(run, err)))
		return false;
	if (!state_load(run->tgt, &run->st, err))
		return false;
	switch (run->st.phase)
	{
		case PHASE_FINAL:
			return finish_offline(run, err);
		case PHASE_CATCHUP:
		case PHASE_STREAMING:
			return follow(run, err);
		case PHASE_CUTOVER:
			if (run->st.cutover_token[0] != '\0' &&
				strcmp(run->st.cutover_token, run->st.barrier_token) == 0 &&
				state_cutover_running(run->tgt))
			{
				log_info("the cutover barrier was already applied; run pgstream cutover");
				return true;
			}
			/* that cutover gave up or died after sync applied its barrier: keep streaming */
			log_warn("the cutover that wrote barrier %s gave up; streaming again",
					 run->st.barrier_token);
			return state_set_phase(run->tgt, PHASE_STREAMING, 0, err) && follow(run, err);
		default:
			return sync_error_set(err, SYNC_ERR_INTERNAL, "unexpected phase \"%s\"",
								  phase_name(run->st.phase));
	}
}

int
sync_main(const SyncOptions *opt)
{
	SyncRun		run;
	SyncError	err;
	int			rc = EXIT_OK;

	memset(&run, 0, sizeof(run));
	run.opt = *opt;
	cli_install_stop_handler();
	clock_gettime(CLOCK_MONOTONIC, &run.started);
	sync_error_clear(&err);
	if (!sync_execute(&run, &err))
	{
		log_sync_error(&err);
		if (run.st.phase != PHASE_NONE && run.tgt != NULL &&
			PQstatus(run.tgt) == CONNECTION_OK)
			state_load(run.tgt, &run.st, &(SyncError) {0});	/* the phase now */
		if (run.st.phase != PHASE_NONE)
		{
			state_set_failed(run.tgt, err.message);
			log_error("the migration stopped in phase \"%s\"%s", phase_name(run.st.phase),
					  err.code == SYNC_ERR_PRECONDITION ? "; fix what the message above says"
					  " first" : "; run the same command again to resume");
		}
		rc = err.code == SYNC_ERR_PRECONDITION && run.st.phase == PHASE_NONE ?
			EXIT_BLOCKED : cli_exit_code(&err);
	}
	disconnect_all(&run);
	return rc;
}
