/*
 * engine/cutover.c -- "pgstream cutover": end a live migration.
 *
 *  0. every check that can fail comes first, before anything is done to
 *     the source: the target holds a streaming migration, no other cutover
 *     runs (advisory lock on the target, held until exit), the migration's
 *     slot is in this source database, no prepared transactions;
 *  1. the source is quiesced (--freeze: the database becomes read-only for
 *     new transactions, and every session that could write is ended and
 *     waited for until it is gone);
 *  2. a barrier is written into the source WAL as a transactional logical
 *     decoding message; the running sync applies everything committed before
 *     it (commit order), records the barrier in the same target transaction
 *     as the data, and exits.  Sources before PostgreSQL 14 (pgoutput
 *     protocol 1 carries no message): the barrier is the source's WAL insert
 *     position read after the freeze, armed on the target with the token;
 *     the message's (empty) transaction, committed after it, is what shows
 *     sync in the stream that everything before the position has arrived
 *     (docs/architecture.md, "Cutover barrier");
 *  3. the slot is peeked at: a change committed after the barrier fails the
 *     cutover (row counts miss UPDATEs); row counts are compared per table
 *     (with --verify, every table's digest too: engine/verify.h);
 *     then (the point of no return) sequences are set from the source,
 *     deferred foreign keys and triggers are created;
 *  4. slot, publication and the target's pgstream schema are dropped.
 * Before the point of no return, any failure and SIGINT, SIGTERM or SIGHUP
 * undo the run: the barrier is disarmed and the freeze this run made (never
 * one it found) is reset.  A barrier is honoured by sync only while the
 * cutover that wrote it holds the lock; if sync stopped at the barrier of a
 * cutover that did not finish, a new cutover uses that barrier only if the
 * slot shows nothing was committed after it, so a killed cutover cannot end
 * a migration with writes missing.  The report says what was verified;
 * exit 0 only if every step succeeded.
 *
 * Failpoints: cutover.after_freeze, cutover.before_barrier,
 * cutover.after_barrier, cutover.waiting (each poll while waiting),
 * cutover.after_barrier_applied, cutover.before_drop.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply/pgconn.h"
#include "apply/result.h"
#include "apply/statesql.h"
#include "engine/cli.h"
#include "engine/cutover.h"
#include "engine/failpoint.h"
#include "engine/log.h"
#include "apply/replclient.h"
#include "engine/schema/schema.h"
#include "engine/sequences.h"
#include "engine/snapshot.h"
#include "engine/state.h"
#include "engine/stream/stream.h"
#include "engine/verify.h"

/* One run.  What it did is recorded here so that a failure can undo it. */
typedef struct Cutover
{
	const CutoverOptions *o;
	PGconn	   *src;
	PGconn	   *tgt;
	MigrationState st;
	CutoverReport *r;
	bool		armed;			/* this run armed r->token on the target */
	bool		resumed;		/* sync had stopped at the barrier of a dead cutover */
	bool		final;			/* past the point of no return: finish */
	Lsn			position;		/* source < 14: the position barrier, else 0 */
} Cutover;

static bool check_untracked_tables(PGconn *src, PGconn *tgt, SyncError *err);
static bool wait_until(PGconn *conn, const char *sql, int nparams, const char *const *params,
					   double deadline, SyncError *err);

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* A random token so a barrier is never mistaken for an older one. */
static void
make_token(char *buf, size_t size)
{
	unsigned char raw[12];
	int			fd = open("/dev/urandom", O_RDONLY);
	ssize_t		n = fd >= 0 ? read(fd, raw, sizeof(raw)) : -1;

	if (fd >= 0)
		close(fd);
	if (n != (ssize_t) sizeof(raw))
		for (size_t i = 0; i < sizeof(raw); i++)
			raw[i] = (unsigned char) ((unsigned) getpid() * 31u + (unsigned) time(NULL) * 17u + i);
	for (size_t i = 0; i < sizeof(raw) && 2 * i + 2 < size; i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
}

/* Past the point of no return a signal no longer stops the run. */
static bool past_no_return = false;

/* A signal asked us to stop: fail here, and cmd_cutover undoes this run. */
static bool
not_stopped(SyncError *err)
{
	if (!cli_stop_requested || past_no_return)
		return true;
	return sync_error_set(err, SYNC_ERR_INTERNAL, "cutover stopped by %s before it finished",
						  cli_signal_name(cli_stop_signal));
}

/* A prepared transaction could be committed after the barrier by anyone. */
static bool
check_prepared(PGconn *src, SyncError *err)
{
	char		n[32];

	if (!pgconn_query_value(src, "SELECT count(*) FROM pg_catalog.pg_prepared_xacts"
							" WHERE database = pg_catalog.current_database()", 0, NULL, n,
							sizeof(n), false, err))
		return sync_error_context(err, "could not list prepared transactions on the source");
	if (strcmp(n, "0") != 0)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "%s prepared transaction(s) are pending on the source (see "
							  "pg_prepared_xacts); one committed after the barrier would be "
							  "lost: COMMIT PREPARED or ROLLBACK PREPARED them first", n);
	return true;
}

/*
 * Every check that can fail before the first action on the source: a typo
 * in --target or --source, a second cutover, a migration in the wrong phase
 * must change nothing there.
 */
static bool
preflight(Cutover *c, SyncError *err)
{
	bool		exists,
				got;
	char		db[128],
				v[8];
	const char *params[1];

	if (!state_exists(c->tgt, &exists, err))
		return false;
	if (!exists)
	{
		if (!pgconn_query_value(c->tgt, "SELECT pg_catalog.current_database()", 0, NULL, db,
								sizeof(db), false, err))
			return false;
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "target database \"%s\" holds no pgstream migration in schema "
							  "%s: check --target and --state-schema (if this migration's "
							  "cutover already completed, there is nothing left to do); "
							  "nothing was changed on the source", db, state_schema_quoted());
	}
	if (!state_cutover_lock(c->tgt, &got, err))
		return false;
	if (!got)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "another pgstream cutover is running for this migration; nothing "
							  "was changed on the source");
	if (!state_upgrade(c->tgt, err) || !state_load(c->tgt, &c->st, err))
		return false;
	if (!c->st.follow)
		return sync_error_set(err, SYNC_ERR_USAGE, "this migration is an offline copy "
							  "(--no-follow); it finishes without cutover");
	/*
	 * sync stopped at the barrier of a cutover that did not finish (killed,
	 * or it gave up after sync applied it).  That barrier is only as good as
	 * the quiet since: it is used only if the slot shows that nothing was
	 * committed after it (check_no_writes_after_barrier).
	 */
	c->resumed = c->st.phase == PHASE_CUTOVER && c->st.barrier_token[0] != '\0';
	if (!c->resumed && c->st.phase != PHASE_CATCHUP && c->st.phase != PHASE_STREAMING)
		return sync_error_set(err, SYNC_ERR_PRECONDITION, "the migration is in phase \"%s\"; "
							  "cutover needs sync to be streaming", phase_name(c->st.phase));
	/* the right source: this migration's slot is there, for this database */
	params[0] = c->st.slot_name;
	if (!pgconn_query_value(c->src, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots"
							" WHERE slot_name = $1 AND database = pg_catalog.current_database())",
							1, params, v, sizeof(v), false, err) ||
		!pgconn_query_value(c->src, "SELECT pg_catalog.current_database()", 0, NULL, db,
							sizeof(db), false, err))
		return sync_error_context(err, "could not look for the replication slot on the source");
	if (v[0] != 't')
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "replication slot \"%s\" of this migration is not in source "
							  "database \"%s\": check --source; nothing was changed on the source",
							  c->st.slot_name, db);
	return check_prepared(c->src, err) && check_untracked_tables(c->src, c->tgt, err);
}

/*
 * Sessions on the source database that could write: all but this one,
 * processes without a user (autovacuum), walsenders (they do not write),
 * parallel workers (they end with their leader), and pgstream's own
 * sessions by their exact names (an application called "pgstream-app" is
 * an application).  A role without pg_read_all_stats sees NULL
 * backend_type, backend_start and backend_xid for other users' sessions:
 * those are ended too.  $1 NULL: all of them; else only those connected
 * before $1 (one that connected after the freeze is read-only by default)
 * or holding a transaction id; sessions whose start is hidden are not seen
 * then, and the look at the slot after the barrier covers them.
 */
static const char writers_sql[] =
	"SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), backend_type"
	" FROM pg_catalog.pg_stat_activity WHERE datname = pg_catalog.current_database()"
	" AND pid <> pg_catalog.pg_backend_pid()"
	" AND usesysid IS NOT NULL"
	" AND coalesce(backend_type, '') NOT IN ('walsender', 'autovacuum worker', 'parallel worker')"
	" AND coalesce(application_name, '') NOT IN ('pgstream', 'pgstream sync', 'pgstream copy',"
	" 'pgstream schema', 'pgstream index', 'pgstream cutover', 'pgstream status',"
	" 'pgstream assess', 'pgstream peek')"
	" AND ($1::timestamptz IS NULL OR backend_start < $1::timestamptz"
	" OR backend_xid IS NOT NULL) ORDER BY pid";

#define SESSION_END_TIMEOUT_S 30
#define SESSION_END_ROUNDS 4

/*
 * pg_terminate_backend only sends a signal: a backend in the middle of its
 * COMMIT finishes it first.  Wait until every one is gone from
 * pg_stat_activity (it leaves only after its transaction has ended), so
 * that nothing it commits can follow the barrier.
 */
static bool
wait_sessions_gone(PGconn *src, const char *pids, SyncError *err)
{
	const char *params[1] = {pids};
	double		deadline = now_s() + SESSION_END_TIMEOUT_S;
	char		n[32];

	for (;;)
	{
		if (!pgconn_query_value(src, "SELECT count(*) FROM pg_catalog.pg_stat_activity"
								" WHERE pid = ANY ($1::int[])", 1, params, n, sizeof(n),
								false, err))
			return false;
		if (strcmp(n, "0") == 0)
			return true;
		if (!not_stopped(err))
			return false;
		if (now_s() > deadline)
			return sync_error_set(err, SYNC_ERR_PRECONDITION,
								  "%s session(s) on the source were told to end but are still "
								  "there after %d s (%s); the source is not quiet",
								  n, SESSION_END_TIMEOUT_S, pids);
		usleep(20 * 1000);
	}
}

/*
 * End the sessions that could write and wait until they are gone; then
 * look again (a session may have connected meanwhile, or a pooler
 * reconnected one before the freeze) until a look finds none.
 */
static bool
end_sessions(Cutover *c, SyncError *err)
{
	char		since[64];
	long		total = 0;

	if (!pgconn_query_value(c->src, "SELECT pg_catalog.clock_timestamp()::text", 0, NULL,
							since, sizeof(since), false, err))
		return false;
	for (int round = 0;; round++)
	{
		const char *params[1] = {round == 0 ? NULL : since};
		PGresult   *res = pgconn_query(c->src, writers_sql, 1, params, err);
		int			n;
		char	   *pids;
		size_t		len = 1;

		if (res == NULL)
			return sync_error_context(err, "could not list the sessions on the source");
		n = PQntuples(res);
		if (n == 0)
		{
			PQclear(res);
			break;
		}
		if (round == SESSION_END_ROUNDS)
		{
			sync_error_set(err, SYNC_ERR_PRECONDITION,
						   "%d session(s) on the source could still write after %d rounds of "
						   "ending them (pid %s, user \"%s\", application \"%s\", %s); the "
						   "source is not quiet", n, round, PQgetvalue(res, 0, 0),
						   PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
			PQclear(res);
			return false;
		}
		pids = malloc((size_t) n * 12 + 3);
		if (pids == NULL)
		{
			PQclear(res);
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		}
		pids[0] = '{';
		for (int i = 0; i < n; i++)
		{
			const char *p[1] = {PQgetvalue(res, i, 0)};
			PGresult   *t = pgconn_query(c->src, "SELECT pg_catalog.pg_terminate_backend($1::int)",
										 1, p, err);

			if (t == NULL)
			{
				sync_error_context(err, "could not end session pid %s (user \"%s\", application "
								   "\"%s\", %s) on the source (needs pg_signal_backend; "
								   "superuser sessions need a superuser)", PQgetvalue(res, i, 0),
								   PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
								   PQgetvalue(res, i, 3));
				PQclear(res);
				free(pids);
				return false;
			}
			PQclear(t);
			len += (size_t) snprintf(pids + len, 13, "%s%s", i ? "," : "", p[0]);
		}
		snprintf(pids + len, 2, "}");
		PQclear(res);
		total += n;
		if (!wait_sessions_gone(c->src, pids, err))
		{
			free(pids);
			return false;
		}
		free(pids);
	}
	log_info("ended %ld session(s) on the source; no session is left that could write", total);
	return check_prepared(c->src, err);
}

static bool
freeze_source(Cutover *c, SyncError *err)
{
	CutoverReport *r = c->r;
	char	   *q;
	char		sql[512],
				v[8];

	if (!pgconn_query_value(c->src, "SELECT pg_catalog.current_database()", 0, NULL, r->dbname,
							sizeof(r->dbname), false, err) ||
		!pgconn_query_value(c->src, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s"
							" JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase"
							" WHERE d.datname = pg_catalog.current_database() AND s.setrole = 0"
							" AND EXISTS (SELECT 1 FROM pg_catalog.unnest(s.setconfig) g"
							" WHERE g ~* '^default_transaction_read_only=(on|true|yes|1)$'))",
							0, NULL, v, sizeof(v), false, err))
		return sync_error_context(err, "could not read the source database's settings");
	if (v[0] == 't')
	{
		/* an earlier cutover or the operator froze it: not ours to undo */
		r->was_frozen = true;
		log_info("source database \"%s\" was already read-only for new transactions; this "
				 "cutover leaves that setting as it finds it", r->dbname);
	}
	else
	{
		/* noted first: pgstream abort undoes a freeze a killed cutover left */
		if (!state_note_source_change(c->tgt, STATE_CHANGE_FREEZE, "", r->dbname, "", err))
			return false;
		q = pgconn_quote_ident(c->src, r->dbname);
		if (q == NULL)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET default_transaction_read_only = on", q);
		free(q);
		if (!pgconn_exec(c->src, sql, err))
			return sync_error_context(err, "could not make the source database read-only");
		r->froze = true;
		log_info("source database \"%s\" is now read-only for new transactions; undo with: "
				 "ALTER DATABASE \"%s\" RESET default_transaction_read_only", r->dbname, r->dbname);
	}
	FAILPOINT("cutover.after_freeze");
	return not_stopped(err) && end_sessions(c, err);
}

/* Undo this run's freeze (never one it found). */
static void
unfreeze_source(Cutover *c)
{
	char	   *q = pgconn_quote_ident(c->src, c->r->dbname);
	char		sql[512];
	SyncError	e;

	if (q == NULL)
		return;
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s RESET default_transaction_read_only", q);
	free(q);
	if (pgconn_exec(c->src, sql, &e))
	{
		log_info("the source database \"%s\" is writable again", c->r->dbname);
		(void) state_forget_source_change(c->tgt, STATE_CHANGE_FREEZE, "", c->r->dbname, &e);
	}
	else
		log_error("could not make the source database \"%s\" writable again (%s); run: "
				  "ALTER DATABASE \"%s\" RESET default_transaction_read_only",
				  c->r->dbname, e.message, c->r->dbname);
}

/* Does this source take a position barrier (no messages in pgoutput)? */
static bool
position_barrier_source(PGconn *src)
{
	return PQserverVersion(src) < STATE_POSITION_BARRIER_SOURCE_MAX;
}

/*
 * Source < 14: the barrier position B is where the source's WAL insertion
 * is now, after the freeze: every transaction that committed before has
 * its commit record before B.  Read before anything is armed.
 */
static bool
read_position(Cutover *c, SyncError *err)
{
	char		v[LSN_FORMAT_MAX + 8];

	if (!pgconn_query_value(c->src, "SELECT pg_catalog.pg_current_wal_insert_lsn()::text", 0,
							NULL, v, sizeof(v), false, err) || !lsn_parse(v, &c->position))
		return sync_error_context(err, "could not read the WAL position of the source");
	snprintf(c->r->barrier_lsn, sizeof(c->r->barrier_lsn), "%s", v);
	return true;
}

/*
 * Write the barrier message in its own transaction, committed synchronously
 * (the WAL writer would flush an asynchronous commit only within
 * wal_writer_delay, and decoding stops at the flushed WAL).  On a source
 * < 14 its commit is the first after B: pgoutput protocol 1 sends every
 * decoded transaction, even one whose only content is a message it does
 * not carry, so sync sees a transaction that committed after B.
 */
static bool
emit_message(Cutover *c, SyncError *err)
{
	const char *params[2] = {CUTOVER_MESSAGE_PREFIX, c->r->token};
	PGresult   *res;

	if (!pgconn_exec(c->src, "BEGIN; SET LOCAL synchronous_commit = on", err))
		return false;
	res = pgconn_query(c->src, "SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)::text",
					   2, params, err);
	if (res == NULL)
	{
		PQclear(PQexec(c->src, "ROLLBACK"));
		return false;
	}
	if (c->position == 0)
		snprintf(c->r->barrier_lsn, sizeof(c->r->barrier_lsn), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return pgconn_exec(c->src, "COMMIT", err);
}

/*
 * Arm the barrier on the target (sync honours only the barrier whose token
 * is armed, and only while this cutover holds its lock), then write it into
 * the source WAL.
 */
static bool
write_barrier(Cutover *c, SyncError *err)
{
	CutoverReport *r = c->r;
	char		pos[LSN_FORMAT_MAX];
	const char *params[2] = {r->token, NULL};
	PGresult   *res;

	FAILPOINT("cutover.before_barrier");
	if (!not_stopped(err))
		return false;
	make_token(r->token, sizeof(r->token));
	if (position_barrier_source(c->src))
	{
		if (!read_position(c, err))
			return false;
		params[1] = lsn_format(c->position, pos);
	}
	res = pgconn_query(c->tgt, state_sql("UPDATE {state}.migration SET cutover_token = $1,"
										 " cutover_lsn = $2::pg_lsn, cutover_pid = pg_catalog.pg_backend_pid()"), 2, params, err);
	if (res == NULL)
		return sync_error_context(err, "could not arm the cutover barrier on the target");
	PQclear(res);
	c->armed = true;
	if (!emit_message(c, err))
		return sync_error_context(err, "could not write the cutover barrier on the source");
	if (c->position != 0)
		log_info("barrier %s at position %s (the source is PostgreSQL %d, whose pgoutput "
				 "carries no message); waiting for sync to apply everything before it",
				 r->token, r->barrier_lsn, PQserverVersion(c->src) / 10000);
	else
		log_info("barrier %s written at %s; waiting for sync to apply it", r->token,
				 r->barrier_lsn);
	FAILPOINT("cutover.after_barrier");
	return not_stopped(err);
}

/*
 * Take over the barrier sync stopped at: arm it again for this run (a sync
 * started meanwhile then waits instead of streaming past it); undone like a
 * barrier this run wrote.
 */
static bool
resume_barrier(Cutover *c, SyncError *err)
{
	CutoverReport *r = c->r;
	const char *params[2] = {c->st.barrier_token, "false"};
	PGresult   *res;

	FAILPOINT("cutover.before_barrier");
	if (!not_stopped(err))
		return false;
	snprintf(r->token, sizeof(r->token), "%s", c->st.barrier_token);
	/* a position barrier was recorded by sync as its position */
	if (position_barrier_source(c->src) && (c->position = c->st.barrier_lsn) == 0)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "sync stopped at barrier %s, but its position is not recorded; "
							  "run pgstream sync again, then cutover", r->token);
	if (c->position != 0)
		params[1] = "true";
	res = pgconn_query(c->tgt, state_sql("UPDATE {state}.migration SET cutover_token = $1,"
					   " cutover_lsn = CASE WHEN $2::boolean THEN barrier_lsn END,"
					   " cutover_pid = pg_catalog.pg_backend_pid()"
					   " RETURNING coalesce(barrier_lsn::text, '')"), 2, params, err);
	if (res == NULL)
		return sync_error_context(err, "could not arm the cutover barrier on the target");
	snprintf(r->barrier_lsn, sizeof(r->barrier_lsn), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	c->armed = true;
	log_info("sync stopped at barrier %s (at %s) of a cutover that did not finish; using it "
			 "only if nothing was written to the source after it", r->token, r->barrier_lsn);
	return true;
}

/* After a failed cutover: sync must ignore this barrier, or stream on past it. */
static void
disarm_barrier(Cutover *c)
{
	const char *params[1] = {c->r->token};
	SyncError	e;
	PGresult   *res = pgconn_query(c->tgt, state_sql("UPDATE {state}.migration SET cutover_token = NULL,"
								   " cutover_lsn = NULL, cutover_pid = NULL WHERE cutover_token = $1"), 1, params, &e);

	if (res != NULL)
		log_info("barrier %s disarmed: sync streams on past it", c->r->token);
	else
		log_warn("could not disarm barrier %s (%s); sync honours it only while this cutover "
				 "runs, so it will stream on past it", c->r->token, e.message);
	PQclear(res);
}

/*
 * Did anything reach the source after the barrier?  sync has stopped at it
 * and released the slot, so peek (without consuming) at what the slot holds
 * past the barrier: an INSERT, UPDATE, DELETE or TRUNCATE there was
 * committed after it and is not on the target.  Row counts would miss an
 * UPDATE; this does not.
 */
static bool
check_no_writes_after_barrier(Cutover *c, SyncError *err)
{
	char		pos[LSN_FORMAT_MAX];
	const char *params[4] = {c->st.slot_name, c->st.publication_name,
	c->st.insert_only_publication, c->position ? lsn_format(c->position, pos) : c->r->token};
	char		sql[1200],
				n[32],
				lsn[LSN_FORMAT_MAX + 8];
	const char *at[1] = {lsn};

	/*
	 * Decoding stops at the flushed WAL, and a commit made with
	 * synchronous_commit = off is not flushed yet: wait until everything
	 * inserted so far is (the WAL writer does it within wal_writer_delay).
	 */
	if (!pgconn_query_value(c->src, "SELECT pg_catalog.pg_current_wal_insert_lsn()::text", 0,
							NULL, lsn, sizeof(lsn), false, err) ||
		!wait_until(c->src, "SELECT pg_catalog.pg_current_wal_flush_lsn() >= $1::pg_lsn", 1, at,
					now_s() + 30, err))
		return sync_error_context(err, "could not wait for the source to flush its WAL");
	/*
	 * Output is in commit order; the barrier's own 'M' row splits it, or,
	 * for a position barrier, the last Commit ('C', whose lsn is the end of
	 * its commit record) at or before the position.
	 */
	snprintf(sql, sizeof(sql),
			 "WITH c AS (SELECT x.lsn, x.data, x.n FROM"
			 " pg_catalog.pg_logical_slot_peek_binary_changes("
			 "$1, NULL, NULL, 'proto_version', '1', 'publication_names',"
			 " pg_catalog.quote_ident($2) || coalesce(',' || pg_catalog.quote_ident("
			 "NULLIF($3, '')), '')%s) WITH ORDINALITY AS x(lsn, xid, data, n)),"
			 " b AS (SELECT coalesce(max(n), 0) AS n FROM c WHERE %s)"
			 " SELECT count(*) FROM c, b WHERE c.n > b.n"
			 " AND pg_catalog.get_byte(c.data, 0) IN (68, 73, 84, 85)",
			 PQserverVersion(c->src) >= 140000 ? ", 'messages', 'true'" : "",
			 c->position ? "pg_catalog.get_byte(data, 0) = 67 AND lsn <= $4::pg_lsn" :
			 "pg_catalog.get_byte(data, 0) = 77"
			 " AND position(pg_catalog.convert_to($4, 'UTF8') IN data) > 0");
	if (!pgconn_query_value(c->src, sql, 4, params, n, sizeof(n), false, err))
		return sync_error_context(err, "could not look for writes after the barrier");
	if (strcmp(n, "0") != 0 && c->resumed)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "sync stopped at barrier %s of a cutover that did not finish, and "
							  "the source was written after it (%s change(s) committed after it, "
							  "which are not on the target); nothing was dropped; run pgstream "
							  "sync again (it resumes streaming and applies them), then cutover",
							  c->r->token, n);
	if (strcmp(n, "0") != 0)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "the source was written after the barrier (%s change(s) committed "
							  "after it, which are not on the target): the source was not quiet "
							  "(without --freeze the application must stop first; with it, a "
							  "session that turns default_transaction_read_only off can still "
							  "write); nothing was dropped; run pgstream sync again (it resumes "
							  "streaming and applies them), then cutover", n);
	return true;
}

/*
 * Tables on the source that the migration does not carry (created after it
 * started): never let cutover pass over them in silence.
 */
static bool
check_untracked_tables(PGconn *src, PGconn *tgt, SyncError *err)
{
	static const char list[] =
		"SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c"
		" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
		" WHERE c.relkind = 'r' AND c.relpersistence = 'p'"
		" AND n.nspname NOT IN ('pg_catalog', 'information_schema', {state_literal})"
		" AND n.nspname !~ '^pg_(toast|temp)'"
		" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
		"   WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid"
		"   AND d.deptype = 'e')";
	PGresult   *s = pgconn_query(src, state_sql(list), 0, NULL, err);
	PGresult   *t = s ? pgconn_query(tgt, state_sql("SELECT format('%I.%I', nspname, relname)"
									 " FROM {state}.tables"), 0, NULL, err) : NULL;
	char		missing[400] = "";
	int			nmissing = 0;

	for (int i = 0; t != NULL && i < PQntuples(s); i++)
	{
		bool		found = false;

		for (int j = 0; !found && j < PQntuples(t); j++)
			found = strcmp(PQgetvalue(s, i, 0), PQgetvalue(t, j, 0)) == 0;
		if (!found && nmissing++ < 5)
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s",
					 missing[0] ? ", " : "", PQgetvalue(s, i, 0));
	}
	PQclear(s);
	PQclear(t);
	if (t == NULL)
		return false;
	if (nmissing > 0)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "%d table(s) on the source are not part of this migration (created "
							  "after it started): %s; their rows are not on the target; migrate "
							  "them separately or drop them, then run cutover again",
							  nmissing, missing);
	return true;
}

/* Poll until sql (one boolean) is true or the deadline passes. */
static bool
wait_until(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   double deadline, SyncError *err)
{
	char		v[8];

	for (;;)
	{
		if (!pgconn_query_value(conn, sql, nparams, params, v, sizeof(v), false, err))
			return false;
		if (v[0] == 't')
			return true;
		FAILPOINT("cutover.waiting");
		if (!not_stopped(err))
			return false;
		if (now_s() > deadline)
			return sync_error_set(err, SYNC_ERR_PRECONDITION, "timed out");
		usleep(100 * 1000);
	}
}

/* How long no sync may hold the migration before cutover gives up waiting
 * (a sync that lost a connection lets go while it waits to reconnect). */
#define NO_SYNC_GRACE_S 15.0

/*
 * Wait until sync has applied this run's barrier.  Two things end the wait
 * early, in seconds rather than at --timeout (issue 16 item 5):
 *  - no sync holds the migration (its run lock, engine/sync.c RUN_LOCK_KEY)
 *    for NO_SYNC_GRACE_S: fail with sync's last error;
 *  - sync stopped at another barrier, of a cutover killed just as this one
 *    began (it was honoured while the dead one's session was still ending):
 *    take that barrier over as resume_barrier() does; the check for writes
 *    after it follows, as for every barrier.
 */
static bool
wait_for_barrier(Cutover *c, double deadline, SyncError *err)
{
	double		no_sync_since = 0;

	for (;;)
	{
		const char *params[1] = {c->r->token};
		PGresult   *res = pgconn_query(c->tgt, state_sql(
			"SELECT coalesce(barrier_token = $1, false),"
			" phase = 'cutover' AND barrier_token IS NOT NULL AND barrier_token <> $1,"
			" " STATE_SYNC_RUNNING_SQL ","
			" coalesce(error, ''), coalesce(barrier_token, ''),"
			" coalesce(barrier_lsn::text, '')"
			" FROM {state}.migration"), 1, params, err);
		bool		applied,
					other,
					running;

		if (res == NULL)
			return false;
		if (PQntuples(res) != 1)
		{
			PQclear(res);
			return sync_error_set(err, SYNC_ERR_PRECONDITION,
								  "the migration's state on the target is gone");
		}
		applied = PQgetvalue(res, 0, 0)[0] == 't';
		other = PQgetvalue(res, 0, 1)[0] == 't';
		running = PQgetvalue(res, 0, 2)[0] == 't';
		if (applied)
		{
			PQclear(res);
			return true;
		}
		if (other)
		{
			log_info("sync stopped at barrier %s of a cutover that did not finish, as this "
					 "one wrote %s", PQgetvalue(res, 0, 4), c->r->token);
			snprintf(c->st.barrier_token, sizeof(c->st.barrier_token), "%s",
					 PQgetvalue(res, 0, 4));
			if (!lsn_parse(PQgetvalue(res, 0, 5), &c->st.barrier_lsn))
				c->st.barrier_lsn = 0;
			PQclear(res);
			c->resumed = true;
			/* arm it for this run as a re-run would (resume_barrier) */
			return resume_barrier(c, err);
		}
		if (running)
			no_sync_since = 0;
		else if (no_sync_since == 0)
			no_sync_since = now_s();
		else if (now_s() - no_sync_since >= NO_SYNC_GRACE_S)
		{
			const char *last = PQgetvalue(res, 0, 3);

			sync_error_set(err, SYNC_ERR_PRECONDITION,
						   "no pgstream sync has been running for this migration for %.0f s%s%s%s; "
						   "start it again (the same command) and run cutover again",
						   NO_SYNC_GRACE_S, last[0] ? " (its last error: " : "", last,
						   last[0] ? ")" : "");
			PQclear(res);
			return false;
		}
		PQclear(res);
		FAILPOINT("cutover.waiting");
		if (!not_stopped(err))
			return false;
		if (now_s() > deadline)
			return sync_error_set(err, SYNC_ERR_PRECONDITION, "timed out");
		usleep(100 * 1000);
	}
}

/*
 * sync has released the slot: is the barrier still recorded?  With --spool,
 * sync may have confirmed writes made after the barrier to the source before
 * it applied the barrier: the slot no longer holds them, so the look at the
 * slot would miss them.  sync then keeps its spool and takes the barrier
 * back before it lets the slot go, saying why in the state's error.
 */
static bool
check_barrier_kept(Cutover *c, SyncError *err)
{
	const char *params[1] = {c->r->token};
	PGresult   *res = pgconn_query(c->tgt, state_sql(
		"SELECT coalesce(barrier_token = $1, false), coalesce(error, '')"
		" FROM {state}.migration"), 1, params, err);
	bool		kept;

	if (res == NULL)
		return sync_error_context(err, "could not read the migration's state on the target");
	kept = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	if (!kept)
		sync_error_set(err, SYNC_ERR_PRECONDITION, "sync took barrier %s back: %s; nothing "
					   "was dropped", c->r->token, PQntuples(res) == 1 &&
					   PQgetvalue(res, 0, 1)[0] ? PQgetvalue(res, 0, 1) :
					   "(no reason recorded)");
	PQclear(res);
	return kept;
}

/*
 * Unlogged on the source: its changes after the snapshot are not in the WAL
 * and never streamed, as assess warned (unlogged_tables).
 */
static bool
table_is_unlogged(PGconn *src, const char *qualified)
{
	const char *params[1] = {qualified};
	char		v[8] = "";
	SyncError	e;

	return pgconn_query_value(src, "SELECT coalesce((SELECT relpersistence = 'u'"
							  " FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass($1)),"
							  " false)", 1, params, v, sizeof(v), false, &e) && v[0] == 't';
}

static bool
compare_counts(PGconn *src, PGconn *tgt, CutoverReport *r, SyncError *err)
{
	PGresult   *tables = pgconn_query(tgt, state_sql("SELECT format('%I.%I', nspname, relname)"
									  " FROM {state}.tables ORDER BY 1"), 0, NULL, err);

	if (tables == NULL)
		return false;
	r->counts = tables;
	r->counts_match = true;
	r->rows = calloc((size_t) PQntuples(tables) + 1, sizeof(long long));
	if (r->rows == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	for (int i = 0; i < PQntuples(tables); i++)
	{
		char		sql[700],
					s[32],
					t[32];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM ONLY %s", PQgetvalue(tables, i, 0));
		if (!pgconn_query_value(src, sql, 0, NULL, s, sizeof(s), false, err) ||
			!pgconn_query_value(tgt, sql, 0, NULL, t, sizeof(t), false, err))
			return sync_error_context(err, "could not count rows of %s", PQgetvalue(tables, i, 0));
		r->rows[i] = strtoll(t, NULL, 10);
		if (strcmp(s, t) != 0 && table_is_unlogged(src, PQgetvalue(tables, i, 0)))
			log_warn("%s is unlogged: copied once, at the snapshot (its later changes are "
					 "not in the WAL): %s rows on the source, %s on the target; not compared",
					 PQgetvalue(tables, i, 0), s, t);
		else if (strcmp(s, t) != 0)
		{
			log_error("row counts differ for %s: %s on source, %s on target",
					  PQgetvalue(tables, i, 0), s, t);
			r->counts_match = false;
		}
	}
	if (!r->counts_match)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "row counts differ between source and target; the migration "
							  "state is kept for inspection");
	log_info("row counts match for %d tables", PQntuples(tables));
	return true;
}

/*
 * Tables published for INSERT and TRUNCATE only may have missed UPDATEs and
 * DELETEs: compare them in full (ordered digests) and name any that differ.
 */
static bool
compare_insert_only(PGconn *src, PGconn *tgt, int *checked, SyncError *err)
{
	PGresult   *t = pgconn_query(tgt, state_sql("SELECT format('%I.%I', nspname, relname)"
								 " FROM {state}.insert_only_tables ORDER BY 1"), 0, NULL, err);
	char		differ[400] = "";

	if (t == NULL)
		return false;
	*checked = PQntuples(t);
	for (int i = 0; i < PQntuples(t); i++)
	{
		char		sql[800],
					a[64],
					b[64];

		snprintf(sql, sizeof(sql), "SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY"
				 " x::text COLLATE \"C\"), '')) FROM ONLY %s x", PQgetvalue(t, i, 0));
		if (!pgconn_query_value(src, sql, 0, NULL, a, sizeof(a), false, err) ||
			!pgconn_query_value(tgt, sql, 0, NULL, b, sizeof(b), false, err))
		{
			PQclear(t);
			return false;
		}
		if (strcmp(a, b) != 0 && strlen(differ) + strlen(PQgetvalue(t, i, 0)) + 3 < sizeof(differ))
			snprintf(differ + strlen(differ), sizeof(differ) - strlen(differ), "%s%s",
					 differ[0] ? ", " : "", PQgetvalue(t, i, 0));
	}
	PQclear(t);
	if (differ[0])
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "insert-only tables differ between source and target (UPDATE or "
							  "DELETE on the source was not carried): %s; copy them again before "
							  "switching over", differ);
	if (*checked > 0)
		log_info("%d insert-only table(s) are identical on source and target", *checked);
	return true;
}

/*
 * Steps 0-4.  Until the point of no return (source and target agree) a
 * signal or any failure makes cutover_main undo this run: disarm the
 * barrier, unfreeze what this run froze.  After it the run finishes: the
 * deferred schema is on the target then, and the source must stay frozen
 * (a failure there keeps it frozen and says so).
 */
static bool
cutover_execute(Cutover *c, double t0, SyncError *err)
{
	const char *params[1];
	double		deadline = now_s() + (double) c->o->timeout_s;
	int			total = 0;

	if (!preflight(c, err) || !not_stopped(err) ||
		(c->o->freeze && !freeze_source(c, err)) ||
		!(c->resumed ? resume_barrier(c, err) : write_barrier(c, err)))
		return false;
	if (!c->resumed && !wait_for_barrier(c, deadline, err))
		return cli_stop_requested || strcmp(err->message, "timed out") != 0 ? false :
			sync_error_context(err, "the barrier was not applied within %ld s (is pgstream sync "
							   "running?); the migration is still streaming", c->o->timeout_s);
	params[0] = c->st.slot_name;
	if (!wait_until(c->src, "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots"
					" WHERE slot_name = $1 AND active)", 1, params, deadline, err))
		return cli_stop_requested ? false :
			sync_error_context(err, "sync did not release slot \"%s\"", c->st.slot_name);
	if (!check_barrier_kept(c, err))
		return false;
	log_info("barrier applied; sync has stopped");
	FAILPOINT("cutover.after_barrier_applied");
	/* compare before the deferred schema: its row security policies may hide rows */
	if (!not_stopped(err) || !check_no_writes_after_barrier(c, err) ||
		!check_untracked_tables(c->src, c->tgt, err) || !compare_counts(c->src, c->tgt, c->r, err) ||
		!compare_insert_only(c->src, c->tgt, &c->r->insert_only_checked, err) ||
		(c->o->verify && !verify_cutover_data(c->o->source, c->o->target,
											  &c->r->verified_tables, err)) ||
		!not_stopped(err))
		return false;
	c->final = past_no_return = true;
	log_info("source and target agree; finishing (signals are no longer obeyed)");
	if (!sequences_copy(c->src, c->tgt, &c->r->sequences, err) ||
		!schema_apply_final(c->tgt, err) ||
		!schema_count_steps(c->tgt, SCHEMA_PHASE_FINAL, &total, &c->r->final_steps, err))
		return false;
	/* a write while the deferred schema was built would be lost with the slot */
	FAILPOINT("cutover.before_drop");
	if (!check_no_writes_after_barrier(c, err))
		return false;
	if (!snapshot_drop_slot(c->src, c->st.slot_name, err) ||
		!snapshot_drop_publication(c->src, c->st.publication_name, err) ||
		(c->st.insert_only_publication[0] &&
		 !snapshot_drop_publication(c->src, c->st.insert_only_publication, err)) ||
		!state_drop(c->tgt, err))
		return false;
	c->r->write_gap_s = now_s() - t0;
	return true;
}

/* After a failure: take back what this run did to the migration and the source. */
static void
cutover_undo(Cutover *c)
{
	if (c->armed)
		disarm_barrier(c);
	if (c->final)
	{
		/* the deferred schema may be on the target: writes now would meet it */
		if (c->r->froze || c->r->was_frozen)
			log_error("the source database \"%s\" stays read-only: the cutover failed after "
					  "its point of no return; fix the cause and run pgstream sync, then "
					  "cutover, again", c->r->dbname);
		return;
	}
	if (c->r->froze)
		unfreeze_source(c);
	else if (c->r->was_frozen)
		log_info("the source database \"%s\" stays read-only, as it was before this cutover",
				 c->r->dbname);
	if (cli_stop_requested && c->st.slot_name[0] != '\0')
		log_info("the migration keeps its state; run pgstream cutover again when ready");
}

int
cutover_main(const CutoverOptions *o, CutoverReport *r)
{
	Cutover		c;
	SyncError	err;
	PgconnOptions co = {PGCONN_SQL, "pgstream cutover", true, NULL};
	int			rc = EXIT_OK;
	double		t0;

	/* a signal must never leave the source frozen: undo, then exit */
	cli_install_undo_handler("cutover");
	memset(r, 0, sizeof(*r));
	r->verified_tables = -1;
	memset(&c, 0, sizeof(c));
	c.o = o;
	c.r = r;
	sync_error_clear(&err);
	t0 = now_s();
	c.src = pgconn_connect(o->source, &co, "source", &err);
	c.tgt = c.src ? pgconn_connect(o->target, &co, "target", &err) : NULL;
	/* this session writes the barrier, even if an earlier cutover froze the database */
	if (c.tgt == NULL || !pgconn_exec(c.src, "SET default_transaction_read_only = off", &err) ||
		!cutover_execute(&c, t0, &err))
	{
		log_sync_error(&err);
		cutover_undo(&c);
		rc = cli_exit_code(&err);
	}
	else
	{
		if (cli_stop_requested)
			log_info("%s arrived after the point of no return; the cutover finished",
					 cli_signal_name(cli_stop_signal));
		log_info("cutover done: write gap %.2f s", r->write_gap_s);
	}
	pgconn_close(c.src);
	pgconn_close(c.tgt);
	return rc;
}

void
cutover_report_free(CutoverReport *r)
{
	PQclear(r->counts);
	free(r->rows);
	r->counts = NULL;
	r->rows = NULL;
}
