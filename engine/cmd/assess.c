/*
 * engine/cmd/assess.c -- "pgstream assess": run the pre-migration checks
 * and print the findings.  Reads only; changes nothing on either server.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "apply/pgconn.h"
#include "apply/statesql.h"
#include "engine/assess/assess.h"
#include "engine/cli.h"
#include "engine/failpoint.h"
#include "engine/log.h"
#include "engine/state.h"
#include "protocol/names.h"

static const char assess_help[] =
	"Usage: pgstream assess --source CONNINFO --target CONNINFO [OPTIONS]\n"
	"\n"
	"Check source and target before a migration and list every problem found,\n"
	"each with a severity (blocking, warning, info), the object concerned, a\n"
	"message and the exact fix.  Nothing is changed on either server.\n"
	"\"pgstream sync\" runs the same checks and refuses to start on a blocking\n"
	"finding.\n"
	"\n"
	"Options:\n"
	"  --source CONNINFO    source database (libpq string or URI)\n"
	"  --target CONNINFO    target database\n"
	"  --slot NAME          slot name sync will use (default: sync's, one per\n"
	"                       source database, or the one an interrupted sync\n"
	"                       recorded on the target)\n"
	"  --publication NAME   publication name sync will use (default: likewise)\n"
	"  --pg-bin DIR         check the pg_dump in DIR, as sync --pg-bin would use\n"
	"  --state-schema NAME  state schema name sync will use (default \"pgstream\"):\n"
	"                       the source must not have a schema of that name\n"
	"  --no-follow          assess an offline migration (sync --no-follow): no\n"
	"                       publication, so replica identity and the other\n"
	"                       live-only checks are skipped\n"
	"  --no-key-tables MODE assess as for sync --no-key-tables=MODE (full or\n"
	"                       insert-only): tables without a replica identity\n"
	"                       become warnings saying what sync will do\n"
	"  --json               {\"findings\": [{\"severity\", \"check\", \"object\",\n"
	"                       \"message\", \"fix\"}, ...]} on stdout\n"
	"  --help               show this help\n"
	"\n"
	"Findings go to stderr, one line each (severity: check (object): message;\n"
	"fix: ...), or with --json to stdout.  When the target already holds the\n"
	"state of an interrupted sync, the checks are those of a resumed run.\n"
	"\n"
	"Exit codes: 0 no blocking finding, 2 blocking findings, 3 usage error,\n"
	"4 could not connect, 1 a check could not run.\n";

/* Does the target hold the state of a sync (in the state schema)? */
static bool
target_has_state(PGconn *tgt)
{
	char		buf[8];
	SyncError	ignored;

	return pgconn_query_value(tgt, state_sql("SELECT pg_catalog.to_regclass("
							  "pg_catalog.quote_ident({state_literal}) || '.migration')"
							  " IS NOT NULL"), 0, NULL, buf, sizeof(buf), false,
							  &ignored) && buf[0] == 't';
}

int
cmd_assess(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"source", required_argument, NULL, 's'},
		{"target", required_argument, NULL, 't'},
		{"slot", required_argument, NULL, 'S'},
		{"publication", required_argument, NULL, 'p'},
		{"json", no_argument, NULL, 'j'},
		{"no-follow", no_argument, NULL, 'n'},
		{"no-key-tables", required_argument, NULL, 'k'},
		{"state-schema", required_argument, NULL, 'x'},
		{"pg-bin", required_argument, NULL, 'B'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	AssessOptions ao = {NULL, NULL, false};
	bool		no_follow = false;
	char		default_name[NAMES_DEFAULT_SIZE];
	MigrationState st;
	const char *state_schema = STATE_SCHEMA_DEFAULT;
	const char *pg_bin = NULL;
	const char *source = NULL,
			   *target = NULL;
	bool		json = false;
	NoKeyMode	no_key = NO_KEY_BLOCK;
	int			c,
				rc = EXIT_OK;
	PgconnOptions co = {PGCONN_SQL, "pgstream assess", true, NULL};
	PGconn	   *src = NULL,
			   *tgt = NULL;
	SyncError	err;
	Findings	f;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 's':
				source = optarg;
				break;
			case 't':
				target = optarg;
				break;
			case 'S':
				ao.slot_name = optarg;
				break;
			case 'p':
				ao.publication_name = optarg;
				break;
			case 'j':
				json = true;
				break;
			case 'x':
				state_schema = optarg;
				break;
			case 'B':
				pg_bin = optarg;
				break;
			case 'n':
				no_follow = true;
				break;
			case 'k':
				if (!no_key_mode_parse(optarg, &no_key))
				{
					fputs("pgstream assess: --no-key-tables must be \"full\" or "
						  "\"insert-only\"\n", stderr);
					return EXIT_USAGE;
				}
				break;
			case 'h':
				fputs(assess_help, stdout);
				return EXIT_OK;
			default:
				fputs("Try \"pgstream assess --help\".\n", stderr);
				return EXIT_USAGE;
		}
	}
	if (source == NULL || target == NULL || optind < argc)
	{
		fputs("pgstream assess: --source and --target are required\n", stderr);
		return EXIT_USAGE;
	}
	sync_error_clear(&err);
	if (!names_check(ao.slot_name, ao.publication_name, &err))
	{
		fprintf(stderr, "pgstream assess: %s\n", err.message);
		return EXIT_USAGE;
	}
	if (!cli_use_state_schema("assess", state_schema) || !cli_use_pg_bin("assess", pg_bin))
		return EXIT_USAGE;
	cli_install_quit_handler("assess");
	findings_init(&f);
	if (!pgconn_check_conninfo(source, "source", &err) ||
		!pgconn_check_conninfo(target, "target", &err))
	{
		log_sync_error(&err);
		return cli_exit_code(&err);
	}
	src = pgconn_connect(source, &co, "source", &err);
	tgt = src ? pgconn_connect(target, &co, "target", &err) : NULL;
	if (tgt != NULL)
		ao.resuming = target_has_state(tgt);
	/* the names sync would use: recorded by an interrupted run, else the default */
	if (tgt != NULL && ao.resuming && state_load(tgt, &st, &(SyncError) {0}))
	{
		ao.slot_name = ao.slot_name ? ao.slot_name : st.slot_name;
		ao.publication_name = ao.publication_name ? ao.publication_name : st.publication_name;
	}
	if (tgt != NULL && (ao.slot_name == NULL || ao.publication_name == NULL) &&
		!cli_default_name(src, default_name, sizeof(default_name), &err))
	{
		log_sync_error(&err);
		pgconn_close(src);
		pgconn_close(tgt);
		return cli_exit_code(&err);
	}
	ao.slot_name = ao.slot_name ? ao.slot_name : default_name;
	ao.publication_name = no_follow ? NULL :
		ao.publication_name ? ao.publication_name : default_name;
	/* assess.after_connect: both connected, nothing checked yet */
	FAILPOINT("assess.after_connect");
	if (tgt == NULL || !assess_run_mode(src, tgt, &ao, no_key, &f, &err))
	{
		log_sync_error(&err);
		rc = cli_exit_code(&err);
	}
	else
	{
		findings_print(&f, json);
		rc = findings_count(&f, FINDING_BLOCKING) > 0 ? EXIT_BLOCKED : EXIT_OK;
	}
	findings_term(&f);
	pgconn_close(src);
	pgconn_close(tgt);
	return rc;
}
