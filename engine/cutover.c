/*
 * engine/cutover.c -- "pgstream cutover": end a live migration.
 *
 *  1. the source is quiesced (--freeze: the database becomes read-only for
 *     new transactions and application sessions are ended);
 *  2. a barrier is written into the source WAL as a transactional logical
 *     decoding message; the running sync applies everything committed before
 *     it (commit order), records the barrier in the same target transaction
 *     as the data, and exits;
 *  3. sequences are set from the source, deferred foreign keys and triggers
 *     are created, row counts are compared per table;
 *  4. slot, publication and the target's pgstream schema are dropped.
 * The report says what was verified; exit 0 only if every step succeeded.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply/pgconn.h"
#include "apply/result.h"
#include "engine/cli.h"
#include "engine/failpoint.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/replclient.h"
#include "engine/schema.h"
#include "engine/sequences.h"
#include "engine/snapshot.h"
#include "engine/state.h"
#include "engine/stream.h"

typedef struct CutoverOptions
{
	const char *source;
	const char *target;
	bool		freeze;
	long		timeout_s;
	bool		json;
} CutoverOptions;

typedef struct CutoverReport
{
	char		token[64];
	char		barrier_lsn[LSN_FORMAT_MAX + 8];
	bool		froze;
	char		dbname[128];
	long		sequences;
	int			final_steps;
	PGresult   *counts;			/* table names, in the order of rows[] */
	long long  *rows;			/* rows per table (equal on both sides) */
	bool		counts_match;
	int			insert_only_checked;	/* tables compared in full */
	double		write_gap_s;
} CutoverReport;

static const char cutover_help[] =
	"Usage: pgstream cutover --source CONNINFO --target CONNINFO [OPTIONS]\n"
	"\n"
	"Finish a live migration started with \"pgstream sync\" (which must be\n"
	"running).  The source must be quiesced: no more writes.  cutover writes a\n"
	"barrier into the source WAL and waits until sync has applied everything\n"
	"committed before it; then sets sequences from the source, creates the\n"
	"deferred foreign keys and triggers on the target, compares row counts per\n"
	"table, drops the slot and publication on the source and the pgstream\n"
	"schema on the target, and reports what it verified.\n"
	"\n"
	"Options:\n"
	"  --source CONNINFO   source database (same as given to sync)\n"
	"  --target CONNINFO   target database\n"
	"  --freeze            quiesce the source first: make the database read-only\n"
	"                      for new transactions and end application sessions\n"
	"                      (undo with ALTER DATABASE ... RESET\n"
	"                      default_transaction_read_only)\n"
	"  --timeout SECONDS   how long to wait for the barrier (default 300); on\n"
	"                      timeout the migration keeps streaming\n"
	"  --json              print the report as JSON on stdout\n"
	"  --help              show this help\n"
	"\n"
	"Exit codes: 0 cut over and verified, 1 failed or timed out, 3 usage\n"
	"error, 4 could not connect.\n";

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
parse_options(int argc, char **argv, CutoverOptions *o)
{
	static const struct option longopts[] = {
		{"source", required_argument, NULL, 's'},
		{"target", required_argument, NULL, 't'},
		{"freeze", no_argument, NULL, 'f'},
		{"timeout", required_argument, NULL, 'T'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c;

	memset(o, 0, sizeof(*o));
	o->timeout_s = 300;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		if (c == 's')
			o->source = optarg;
		else if (c == 't')
			o->target = optarg;
		else if (c == 'f')
			o->freeze = true;
		else if (c == 'j')
			o->json = true;
		else if (c == 'T')
		{
			if (!cli_parse_int(optarg, 1, 86400, &o->timeout_s))
				return fputs("pgstream cutover: --timeout must be 1 to 86400 seconds\n", stderr), EXIT_USAGE;
		}
		else if (c == 'h')
			return fputs(cutover_help, stdout), -1;
		else
			return fputs("Try \"pgstream cutover --help\".\n", stderr), EXIT_USAGE;
	}
	if (!o->source || !o->target || optind < argc)
		return fputs("pgstream cutover: --source and --target are required\n", stderr), EXIT_USAGE;
	return EXIT_OK;
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

static bool
freeze_source(PGconn *src, CutoverReport *r, SyncError *err)
{
	char	   *q;
	char		sql[512];
	PGresult   *res;

	/* a cutover killed after freezing left the database read-only: not for us */
	if (!pgconn_exec(src, "SET default_transaction_read_only = off", err) ||
		!pgconn_query_value(src, "SELECT current_database()", 0, NULL, r->dbname,
							sizeof(r->dbname), false, err))
		return false;
	q = pgconn_quote_ident(src, r->dbname);
	if (q == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET default_transaction_read_only = on", q);
	free(q);
	if (!pgconn_exec(src, sql, err))
		return sync_error_context(err, "could not make the source database read-only");
	r->froze = true;
	FAILPOINT("cutover.after_freeze");
	log_info("source database \"%s\" is now read-only for new transactions; undo with: "
			 "ALTER DATABASE \"%s\" RESET default_transaction_read_only", r->dbname, r->dbname);
	res = pgconn_query(src,
					   "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity"
					   " WHERE datname = current_database() AND pid <> pg_catalog.pg_backend_pid()"
					   " AND backend_type = 'client backend'"
					   " AND coalesce(application_name, '') NOT LIKE 'pgstream%'", 0, NULL, err);
	if (res == NULL)
		return sync_error_context(err, "could not end application sessions on the source "
								  "(needs pg_signal_backend)");
	log_info("ended %s application session(s) on the source", PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

static void
unfreeze_source(PGconn *src, const CutoverReport *r)
{
	char	   *q = pgconn_quote_ident(src, r->dbname);
	char		sql[512];
	SyncError	ignored;

	if (q == NULL)
		return;
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s RESET default_transaction_read_only", q);
	free(q);
	if (pgconn_exec(src, sql, &ignored))
		log_info("source database \"%s\" is writable again", r->dbname);
}

/*
 * Arm the barrier on the target (sync honours only the barrier whose token
 * is armed), then write it into the source WAL.
 */
static bool
write_barrier(PGconn *src, PGconn *tgt, CutoverReport *r, SyncError *err)
{
	const char *params[2] = {CUTOVER_MESSAGE_PREFIX, r->token};
	PGresult   *res;

	FAILPOINT("cutover.before_barrier");
	make_token(r->token, sizeof(r->token));
	res = pgconn_query(tgt, "UPDATE pgstream.migration SET cutover_token = $1", 1,
					   params + 1, err);
	if (res == NULL)
		return sync_error_context(err, "could not arm the cutover barrier on the target");
	PQclear(res);
	if (!pgconn_exec(src, "SET default_transaction_read_only = off", err))
		return false;
	res = pgconn_query(src, "SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)::text",
					   2, params, err);
	if (res == NULL)
		return sync_error_context(err, "could not write the cutover barrier on the source");
	snprintf(r->barrier_lsn, sizeof(r->barrier_lsn), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	log_info("barrier %s written at %s; waiting for sync to apply it", r->token, r->barrier_lsn);
	FAILPOINT("cutover.after_barrier");
	return true;
}

/* After a failed wait: sync must ignore this barrier if it reaches it later. */
static void
disarm_barrier(PGconn *tgt, const char *token)
{
	const char *params[1] = {token};
	SyncError	ignored;

	PQclear(pgconn_query(tgt, "UPDATE pgstream.migration SET cutover_token = NULL"
						 " WHERE cutover_token = $1", 1, params, &ignored));
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
		" AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgstream')"
		" AND n.nspname !~ '^pg_(toast|temp)'"
		" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
		"   WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid"
		"   AND d.deptype = 'e')";
	PGresult   *s = pgconn_query(src, list, 0, NULL, err);
	PGresult   *t = s ? pgconn_query(tgt, "SELECT format('%I.%I', nspname, relname)"
									 " FROM pgstream.tables", 0, NULL, err) : NULL;
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
		if (now_s() > deadline)
			return sync_error_set(err, SYNC_ERR_PRECONDITION, "timed out");
		FAILPOINT("cutover.waiting");
		usleep(100 * 1000);
	}
}

static bool
compare_counts(PGconn *src, PGconn *tgt, CutoverReport *r, SyncError *err)
{
	PGresult   *tables = pgconn_query(tgt, "SELECT format('%I.%I', nspname, relname)"
									  " FROM pgstream.tables ORDER BY 1", 0, NULL, err);

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
		if (strcmp(s, t) != 0)
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
	PGresult   *t = pgconn_query(tgt, "SELECT format('%I.%I', nspname, relname)"
								 " FROM pgstream.insert_only_tables ORDER BY 1", 0, NULL, err);
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

static void
print_report(const CutoverReport *r, bool json)
{
	JsonWriter	w;
	int			n = r->counts ? PQntuples(r->counts) : 0;

	if (!json)
	{
		printf("cutover complete\n  barrier: %s at %s\n  write gap: %.2f s\n"
			   "  sequences set: %ld\n  deferred schema steps applied: %d\n"
			   "  row counts: %s for %d tables\n", r->token, r->barrier_lsn, r->write_gap_s,
			   r->sequences, r->final_steps, r->counts_match ? "equal" : "DIFFERENT", n);
		for (int i = 0; i < n; i++)
			printf("    %-50s %lld rows\n", PQgetvalue(r->counts, i, 0), r->rows[i]);
		return;
	}
	json_init(&w);
	json_begin_object(&w);
	json_key(&w, "barrier_token");
	json_string(&w, r->token);
	json_key(&w, "barrier_lsn");
	json_string(&w, r->barrier_lsn);
	json_key(&w, "write_gap_seconds");
	json_double(&w, r->write_gap_s);
	json_key(&w, "froze_source");
	json_bool(&w, r->froze);
	json_key(&w, "checks");
	json_begin_object(&w);
	json_key(&w, "barrier_applied");
	json_bool(&w, true);
	json_key(&w, "sequences_set");
	json_int(&w, r->sequences);
	json_key(&w, "deferred_schema_steps");
	json_int(&w, r->final_steps);
	json_key(&w, "row_counts_equal");
	json_bool(&w, r->counts_match);
	json_key(&w, "insert_only_tables_identical");
	json_int(&w, r->insert_only_checked);
	json_end_object(&w);
	json_key(&w, "tables");
	json_begin_array(&w);
	for (int i = 0; i < n; i++)
	{
		json_begin_object(&w);
		json_key(&w, "name");
		json_string(&w, PQgetvalue(r->counts, i, 0));
		json_key(&w, "rows");
		json_int(&w, r->rows[i]);
		json_end_object(&w);
	}
	json_end_array(&w);
	json_end_object(&w);
	if (!w.oom)
		puts(w.data);
	json_term(&w);
}

/* Steps 2-4 once the source is quiet. */
static bool
cutover_execute(const CutoverOptions *o, PGconn *src, PGconn *tgt, CutoverReport *r,
				double t0, SyncError *err)
{
	MigrationState st;
	const char *params[1];
	double		deadline = now_s() + (double) o->timeout_s;
	int			total = 0;

	if (!state_load(tgt, &st, err))
		return false;
	if (!st.follow)
		return sync_error_set(err, SYNC_ERR_USAGE, "this migration is an offline copy "
							  "(--no-follow); it finishes without cutover");
	if (st.phase != PHASE_CATCHUP && st.phase != PHASE_STREAMING && st.phase != PHASE_CUTOVER)
		return sync_error_set(err, SYNC_ERR_PRECONDITION, "the migration is in phase \"%s\"; "
							  "cutover needs sync to be streaming", phase_name(st.phase));
	if (st.phase != PHASE_CUTOVER)
	{
		if (!write_barrier(src, tgt, r, err))
			return false;
		params[0] = r->token;
		if (!wait_until(tgt, "SELECT coalesce(barrier_token = $1, false) FROM pgstream.migration",
						1, params, deadline, err))
		{
			disarm_barrier(tgt, r->token);
			return sync_error_context(err, "the barrier was not applied within %ld s (is "
									  "pgstream sync running?); the migration is still streaming",
									  o->timeout_s);
		}
	}
	else if (st.cutover_token[0] == '\0' || strcmp(st.cutover_token, st.barrier_token) != 0)
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "sync stopped at barrier %s of a cutover that had already given "
							  "up, so later writes may be missing; run pgstream sync again (it "
							  "resumes streaming), then cutover", st.barrier_token);
	else
	{
		snprintf(r->token, sizeof(r->token), "%s", st.barrier_token);
		snprintf(r->barrier_lsn, sizeof(r->barrier_lsn), "(applied earlier)");
	}
	params[0] = st.slot_name;
	if (!wait_until(src, "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots"
					" WHERE slot_name = $1 AND active)", 1, params, deadline, err))
		return sync_error_context(err, "sync did not release slot \"%s\"", st.slot_name);
	log_info("barrier applied; sync has stopped");
	FAILPOINT("cutover.after_barrier_applied");
	/* compare before the deferred schema: its row security policies may hide rows */
	if (!check_untracked_tables(src, tgt, err) || !compare_counts(src, tgt, r, err) ||
		!compare_insert_only(src, tgt, &r->insert_only_checked, err) ||
		!sequences_copy(src, tgt, &r->sequences, err) ||
		!schema_apply_final(tgt, err) ||
		!schema_count_steps(tgt, SCHEMA_PHASE_FINAL, &total, &r->final_steps, err))
		return false;
	if (!snapshot_drop_slot(src, st.slot_name, err) ||
		!snapshot_drop_publication(src, st.publication_name, err) ||
		(st.insert_only_publication[0] &&
		 !snapshot_drop_publication(src, st.insert_only_publication, err)) ||
		!state_drop(tgt, err))
		return false;
	r->write_gap_s = now_s() - t0;
	return true;
}

int
cmd_cutover(int argc, char **argv)
{
	CutoverOptions o;
	CutoverReport r;
	SyncError	err;
	PgconnOptions co = {PGCONN_SQL, "pgstream cutover", true, NULL};
	PGconn	   *src = NULL,
			   *tgt = NULL;
	int			rc = parse_options(argc, argv, &o);
	double		t0;

	if (rc != EXIT_OK)
		return rc < 0 ? EXIT_OK : rc;
	memset(&r, 0, sizeof(r));
	sync_error_clear(&err);
	t0 = now_s();
	src = pgconn_connect(o.source, &co, "source", &err);
	tgt = src ? pgconn_connect(o.target, &co, "target", &err) : NULL;
	if (tgt == NULL || (o.freeze && !freeze_source(src, &r, &err)) ||
		!cutover_execute(&o, src, tgt, &r, t0, &err))
	{
		log_sync_error(&err);
		if (r.froze)
			unfreeze_source(src, &r);
		rc = cli_exit_code(&err);
	}
	else
	{
		log_info("cutover done: write gap %.2f s", r.write_gap_s);
		print_report(&r, o.json);
	}
	PQclear(r.counts);
	free(r.rows);
	pgconn_close(src);
	pgconn_close(tgt);
	return rc;
}
