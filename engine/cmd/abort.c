/*
 * engine/cmd/abort.c -- "pgstream abort": options, help and exit codes.
 * The work is in engine/abort.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "apply/statesql.h"
#include "engine/abort.h"
#include "engine/cli.h"
#include "engine/log.h"
#include "protocol/names.h"

static const char abort_help[] =
	"Usage: pgstream abort --source CONNINFO --target CONNINFO [OPTIONS]\n"
	"\n"
	"Abandon a migration: remove everything it left, at any phase and after a\n"
	"crash.  Source data is never touched.  On the source: the replication\n"
	"slot (which keeps WAL until it is dropped), the publications, the\n"
	"REPLICA IDENTITY FULL that sync --no-key-tables=full set (put back as it\n"
	"was) and the read-only default of a cutover --freeze that did not finish.\n"
	"On the target: the state schema, and with --drop-target-objects the\n"
	"tables the migration copied.\n"
	"\n"
	"Refused while a pgstream sync or cutover runs for the target database\n"
	"(stop it first).  Running it again when nothing is left says so and\n"
	"exits 0.  The names come from the migration's state on the target; when\n"
	"that is gone, from --slot and --publication, else sync's defaults for the\n"
	"source database.\n"
	"\n"
	"Options:\n"
	"  --source CONNINFO       source database of the migration\n"
	"  --target CONNINFO       target database of the migration\n"
	"  --drop-target-objects   also drop the tables the migration's state lists\n"
	"                          on the target (with what depends on them); other\n"
	"                          objects restored from the schema dump are left,\n"
	"                          and the tables that remain are named\n"
	"  --slot NAME             slot name, if sync was given --slot and the\n"
	"                          target's state is gone\n"
	"  --publication NAME      publication name, likewise\n"
	"  --state-schema NAME     the state schema sync used (default \"pgstream\")\n"
	"  --help                  show this help\n"
	"\n"
	"Exit codes: 0 nothing is left, 1 a step failed (run again to finish),\n"
	"2 refused (a sync or cutover runs, or the target holds another source's\n"
	"migration; nothing changed), 3 usage error, 4 could not connect (when\n"
	"only the source was unreachable, the target was cleaned and what may be\n"
	"left on the source is listed).\n";

static int
parse_abort_options(int argc, char **argv, AbortOptions *o)
{
	static const struct option longopts[] = {
		{"source", required_argument, NULL, 's'},
		{"target", required_argument, NULL, 't'},
		{"slot", required_argument, NULL, 'S'},
		{"publication", required_argument, NULL, 'p'},
		{"state-schema", required_argument, NULL, 'x'},
		{"drop-target-objects", no_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *state_schema = STATE_SCHEMA_DEFAULT;
	SyncError	err;
	int			c;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 's':
				o->source = optarg;
				break;
			case 't':
				o->target = optarg;
				break;
			case 'S':
				o->slot = optarg;
				break;
			case 'p':
				o->publication = optarg;
				break;
			case 'x':
				state_schema = optarg;
				break;
			case 'D':
				o->drop_target_objects = true;
				break;
			case 'h':
				fputs(abort_help, stdout);
				return -1;
			default:
				fputs("Try \"pgstream abort --help\".\n", stderr);
				return EXIT_USAGE;
		}
	}
	if (optind < argc || !o->source || !o->target)
	{
		fprintf(stderr, "pgstream abort: %s\nTry \"pgstream abort --help\".\n",
				optind < argc ? "unexpected argument" : "--source and --target are required");
		return EXIT_USAGE;
	}
	sync_error_clear(&err);
	if (!names_check(o->slot, o->publication, &err))
	{
		fprintf(stderr, "pgstream abort: %s\n", err.message);
		return EXIT_USAGE;
	}
	return cli_use_state_schema("abort", state_schema) ? EXIT_OK : EXIT_USAGE;
}

int
cmd_abort(int argc, char **argv)
{
	AbortOptions o;
	AbortReport r;
	SyncError	err;
	int			rc = parse_abort_options(argc, argv, &o);

	if (rc != EXIT_OK)
		return rc < 0 ? EXIT_OK : rc;
	cli_install_quit_handler("abort");
	sync_error_clear(&err);
	if (!abort_run(&o, &r, &err))
	{
		log_sync_error(&err);
		return r.refused ? EXIT_BLOCKED : cli_exit_code(&err);
	}
	if (r.removed == 0)
		log_info("nothing was left to remove: no slot, publication or state of this "
				 "migration was found");
	else
		log_info("the migration is abandoned: %d thing(s) removed or put back", r.removed);
	return EXIT_OK;
}
