/*
 * engine/cmd/status.c -- "pgstream status": the phase and per-table progress of
 * the migration whose state is on the target.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/pgconn.h"
#include "apply/result.h"
#include "apply/statesql.h"
#include "engine/cli.h"
#include "engine/failpoint.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/progress.h"
#include "engine/schema/schema.h"
#include "engine/state.h"

static const char status_help[] =
	"Usage: pgstream status --target CONNINFO [--json] [--state-schema NAME]\n"
	"\n"
	"Show the state of the migration recorded on the target: the phase\n"
	"(schema, copy, index, final, streaming, cutover, done, failed), the last\n"
	"error if any, and per-table copy progress.  With no migration state on the\n"
	"target the phase is \"none\" (a migration completes by removing its state).\n"
	"\n"
	"Options:\n"
	"  --target CONNINFO   target database (libpq string or URI)\n"
	"  --json              one JSON object on stdout\n"
	"  --state-schema NAME\n"
	"                      the schema on the target that holds the migration's\n"
	"                      state, as given to sync (default \"pgstream\")\n"
	"  --help              show this help\n";

typedef struct StatusReport
{
	MigrationState st;
	PGresult   *lag;			/* one row, see lag_sql */
	PGresult   *tables;			/* name, nparts, parts_done, rows, bytes, est_rows, est_bytes */
	int			index_total,
				index_done,
				final_total,
				final_done;
} StatusReport;

static const char lag_sql[] =
	"SELECT coalesce(source_lsn::text, ''), coalesce(received_lsn::text, ''),"
	" coalesce(applied_lsn::text, ''), coalesce(lag_bytes::text, ''),"
	" coalesce(round(lag_seconds::numeric, 3)::text, ''),"
	" coalesce(round(apply_rate::numeric, 1)::text, ''),"
	" coalesce(round(eta_seconds::numeric, 1)::text, ''),"
	" coalesce(to_char(caught_up_at, 'YYYY-MM-DD HH24:MI:SS'), ''),"
	" extract(epoch from now() - updated_at)::int"
	" FROM {state}.migration";

static bool
load_report(PGconn *tgt, StatusReport *r, SyncError *err)
{
	bool		exists;

	if (!state_exists(tgt, &exists, err))
		return false;
	if (!exists)
		return true;
	if (!state_load(tgt, &r->st, err) ||
		!schema_count_steps(tgt, SCHEMA_PHASE_INDEX, &r->index_total, &r->index_done, err) ||
		!schema_count_steps(tgt, SCHEMA_PHASE_FINAL, &r->final_total, &r->final_done, err))
		return false;
	r->lag = pgconn_query(tgt, state_sql(lag_sql), 0, NULL, err);
	if (r->lag == NULL)
		return false;
	r->tables = pgconn_query(tgt,
							 state_sql("SELECT format('%I.%I', t.nspname, t.relname), t.nparts,"
									   " count(*) FILTER (WHERE p.done), coalesce(sum(p.rows), 0),"
									   " coalesce(sum(p.bytes), 0), t.est_rows, t.est_bytes"
									   " FROM {state}.tables t JOIN {state}.copy_parts p USING (relid)"
									   " GROUP BY t.relid ORDER BY t.est_bytes DESC, 1"), 0, NULL, err);
	return r->tables != NULL;
}

static void
print_json(const StatusReport *r)
{
	JsonWriter	w;
	char		lsn[LSN_FORMAT_MAX];

	json_init(&w);
	json_begin_object(&w);
	json_key(&w, "phase");
	json_string(&w, phase_name(r->st.phase));
	if (r->st.phase != PHASE_NONE)
	{
		json_key(&w, "source_database");
		json_string(&w, r->st.source_dbname);
		json_key(&w, "slot");
		json_string(&w, r->st.slot_name);
		json_key(&w, "follow");
		json_bool(&w, r->st.follow);
		json_key(&w, "consistent_lsn");
		json_string(&w, lsn_format(r->st.consistent_lsn, lsn));
		json_key(&w, "error");
		if (r->st.error[0])
			json_string(&w, r->st.error);
		else
			json_null(&w);
		if (r->lag != NULL)
		{
			static const char *const keys[] = {"source_lsn", "received_lsn", "applied_lsn",
			"lag_bytes", "lag_seconds", "apply_rate", "eta_seconds"};

			for (int c = 0; c < 7; c++)
			{
				const char *v = PQgetvalue(r->lag, 0, c);

				json_key(&w, keys[c]);
				if (!*v)
					json_null(&w);
				else if (c < 3)
					json_string(&w, v);
				else	/* bytes and rates whole, seconds to the millisecond */
					json_double(&w, json_round(result_double(r->lag, 0, c),
											   c == 4 || c == 6 ? 3 : 0));
			}
			json_key(&w, "seconds_since_update");
			json_int(&w, result_int(r->lag, 0, 8));
		}
		json_key(&w, "indexes");
		json_begin_object(&w);
		json_key(&w, "total");
		json_int(&w, r->index_total);
		json_key(&w, "done");
		json_int(&w, r->index_done);
		json_end_object(&w);
		json_key(&w, "deferred_schema");
		json_begin_object(&w);
		json_key(&w, "total");
		json_int(&w, r->final_total);
		json_key(&w, "done");
		json_int(&w, r->final_done);
		json_end_object(&w);
		json_key(&w, "tables");
		json_begin_array(&w);
		for (int i = 0; r->tables && i < PQntuples(r->tables); i++)
		{
			static const char *const keys[] = {"name", "parts", "parts_done", "rows",
			"bytes", "est_rows", "est_bytes"};

			json_begin_object(&w);
			json_key(&w, keys[0]);
			json_string(&w, PQgetvalue(r->tables, i, 0));
			for (int c = 1; c < 7; c++)
			{
				json_key(&w, keys[c]);
				json_int(&w, result_int(r->tables, i, c));
			}
			json_end_object(&w);
		}
		json_end_array(&w);
	}
	json_end_object(&w);
	if (!w.oom)
		puts(w.data);
	json_term(&w);
}

static void
print_text(const StatusReport *r)
{
	char		a[16],
				b[16];

	printf("phase: %s\n", phase_name(r->st.phase));
	if (r->st.phase == PHASE_NONE)
	{
		printf("no pgstream migration state in schema %s on this target\n",
			   state_schema_quoted());
		return;
	}
	printf("source database: %s (slot \"%s\", %s)\n", r->st.source_dbname,
		   r->st.slot_name, r->st.follow ? "live sync" : "offline copy");
	if (r->st.error[0])
		printf("last error: %s\n", r->st.error);
	if (r->st.follow && r->lag != NULL && *PQgetvalue(r->lag, 0, 2))
		printf("source at %s, received %s, applied %s\nlag: %s bytes, %s s; apply rate %s "
			   "changes/s; ETA %s s; updated %s s ago%s%s\n",
			   PQgetvalue(r->lag, 0, 0), PQgetvalue(r->lag, 0, 1), PQgetvalue(r->lag, 0, 2),
			   PQgetvalue(r->lag, 0, 3), PQgetvalue(r->lag, 0, 4), PQgetvalue(r->lag, 0, 5),
			   *PQgetvalue(r->lag, 0, 6) ? PQgetvalue(r->lag, 0, 6) : "?",
			   PQgetvalue(r->lag, 0, 8),
			   *PQgetvalue(r->lag, 0, 7) ? "; caught up since " : "", PQgetvalue(r->lag, 0, 7));
	printf("indexes and constraints: %d/%d built\n", r->index_done, r->index_total);
	printf("deferred schema (foreign keys, triggers): %d/%d applied\n",
		   r->final_done, r->final_total);
	printf("%-40s %11s %14s %21s\n", "table", "parts", "rows", "bytes");
	for (int i = 0; r->tables && i < PQntuples(r->tables); i++)
		printf("%-40s %5s/%-5s %14s %9s / ~%-9s\n", PQgetvalue(r->tables, i, 0),
			   PQgetvalue(r->tables, i, 2), PQgetvalue(r->tables, i, 1),
			   PQgetvalue(r->tables, i, 3),
			   progress_format_bytes(result_int(r->tables, i, 4), a, sizeof(a)),
			   progress_format_bytes(result_int(r->tables, i, 6), b, sizeof(b)));
}

int
cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"target", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"state-schema", required_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *target = NULL;
	const char *state_schema = STATE_SCHEMA_DEFAULT;
	bool		json = false;
	int			c;
	SyncError	err;
	PgconnOptions co = {PGCONN_SQL, "pgstream status", false, NULL};
	PGconn	   *tgt;
	StatusReport r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		if (c == 't')
			target = optarg;
		else if (c == 'j')
			json = true;
		else if (c == 'x')
			state_schema = optarg;
		else if (c == 'h')
		{
			fputs(status_help, stdout);
			return EXIT_OK;
		}
		else
		{
			fputs("Try \"pgstream status --help\".\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (target == NULL || optind < argc)
	{
		fputs("pgstream status: --target is required\n", stderr);
		return EXIT_USAGE;
	}
	if (!cli_use_state_schema("status", state_schema))
		return EXIT_USAGE;
	cli_install_quit_handler("status");
	memset(&r, 0, sizeof(r));
	sync_error_clear(&err);
	tgt = pgconn_connect(target, &co, "target", &err);
	/* status.after_connect: connected, nothing read yet */
	FAILPOINT("status.after_connect");
	if (tgt == NULL || !load_report(tgt, &r, &err))
	{
		log_sync_error(&err);
		pgconn_close(tgt);
		return cli_exit_code(&err);
	}
	if (json)
		print_json(&r);
	else
		print_text(&r);
	PQclear(r.tables);
	PQclear(r.lag);
	pgconn_close(tgt);
	return EXIT_OK;
}
