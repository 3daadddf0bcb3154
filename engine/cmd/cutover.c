/*
 * engine/cmd/cutover.c -- "pgstream cutover": options, help and the report;
 * the cutover itself is engine/cutover.c (cutover_main).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "apply/statesql.h"
#include "engine/cli.h"
#include "engine/cutover.h"
#include "engine/json.h"

static const char cutover_help[] =
	"Usage: pgstream cutover --source CONNINFO --target CONNINFO [OPTIONS]\n"
	"\n"
	"Finish a live migration started with \"pgstream sync\" (which must be\n"
	"running).  The source must be quiesced: no more writes.  cutover writes a\n"
	"barrier into the source WAL and waits until sync has applied everything\n"
	"committed before it; then sets sequences from the source, creates the\n"
	"deferred foreign keys and triggers on the target, compares row counts per\n"
	"table, drops the slot and publication on the source and the state schema\n"
	"on the target, and reports what it verified.\n"
	"\n"
	"Options:\n"
	"  --source CONNINFO   source database (same as given to sync)\n"
	"  --target CONNINFO   target database\n"
	"  --freeze            quiesce the source first: make the database read-only\n"
	"                      for new transactions and end every session that\n"
	"                      could write (undone if the cutover fails or is\n"
	"                      interrupted; else undo with ALTER DATABASE ...\n"
	"                      RESET default_transaction_read_only)\n"
	"  --timeout SECONDS   how long to wait for the barrier (default 300); on\n"
	"                      timeout the migration keeps streaming\n"
	"  --json              print the report as JSON on stdout\n"
	"  --verify            also compare every table's contents (row count and\n"
	"                      digest, as pgstream verify --data) before the point\n"
	"                      of no return; a difference fails the cutover\n"
	"  --state-schema NAME\n"
	"                      the schema on the target that holds the migration's\n"
	"                      state, as given to sync (default \"pgstream\")\n"
	"  --help              show this help\n"
	"\n"
	"SIGINT, SIGTERM and SIGHUP stop the cutover and undo it (before its point\n"
	"of no return; after it, it finishes).\n"
	"\n"
	"Exit codes: 0 cut over and verified, 1 failed, timed out or interrupted,\n"
	"3 usage error, 4 could not connect.\n";

static int
parse_options(int argc, char **argv, CutoverOptions *o)
{
	static const struct option longopts[] = {
		{"source", required_argument, NULL, 's'},
		{"target", required_argument, NULL, 't'},
		{"freeze", no_argument, NULL, 'f'},
		{"timeout", required_argument, NULL, 'T'},
		{"json", no_argument, NULL, 'j'},
		{"verify", no_argument, NULL, 'v'},
		{"state-schema", required_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c;
	const char *state_schema = STATE_SCHEMA_DEFAULT;

	memset(o, 0, sizeof(*o));
	o->timeout_s = CUTOVER_DEFAULT_TIMEOUT_S;
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
		else if (c == 'v')
			o->verify = true;
		else if (c == 'x')
			state_schema = optarg;
		else if (c == 'T')
		{
			if (!cli_parse_int(optarg, 1, 86400, &o->timeout_s))
				return cli_usage_error("cutover", "--timeout must be 1 to 86400 seconds");
		}
		else if (c == 'h')
		{
			fputs(cutover_help, stdout);
			return -1;
		}
		else
		{
			fputs("Try \"pgstream cutover --help\".\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (!o->source || !o->target || optind < argc)
		return cli_usage_error("cutover", "--source and --target are required");
	if (!cli_use_state_schema("cutover", state_schema))
		return EXIT_USAGE;
	return EXIT_OK;
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
		if (r->verified_tables >= 0)
			printf("  table contents (--verify): identical for %d tables\n", r->verified_tables);
		return;
	}
	json_init(&w);
	json_begin_object(&w);
	json_key(&w, "barrier_token");
	json_string(&w, r->token);
	json_key(&w, "barrier_lsn");
	json_string(&w, r->barrier_lsn);
	json_key(&w, "write_gap_seconds");
	json_double(&w, json_round(r->write_gap_s, 3));
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
	json_key(&w, "contents_identical");
	if (r->verified_tables >= 0)
		json_int(&w, r->verified_tables);
	else
		json_null(&w);
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

int
cmd_cutover(int argc, char **argv)
{
	CutoverOptions o;
	CutoverReport r;
	int			rc = parse_options(argc, argv, &o);

	if (rc != EXIT_OK)
		return rc < 0 ? EXIT_OK : rc;
	rc = cutover_main(&o, &r);
	if (rc == EXIT_OK)
		print_report(&r, o.json);
	cutover_report_free(&r);
	return rc;
}
