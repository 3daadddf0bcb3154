/*
 * engine/cmd/sync.c -- "pgstream sync": options and help; the migration
 * itself is engine/sync.c (sync_main).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "apply/statesql.h"
#include "engine/cli.h"
#include "engine/sync.h"
#include "protocol/names.h"

static const char sync_help[] =
	"Usage: pgstream sync --source CONNINFO --target CONNINFO [OPTIONS]\n"
	"\n"
	"Migrate the source database to the target.  First a full load: schema\n"
	"without indexes, a parallel COPY of every table under one consistent\n"
	"snapshot, then indexes and constraints built in parallel.  Then:\n"
	"\n"
	"  without --no-follow  stream every change made since the snapshot from a\n"
	"                       logical replication slot and apply it to the target\n"
	"                       until \"pgstream cutover\" writes its barrier; then\n"
	"                       exit 0 (foreign keys, triggers and sequences are\n"
	"                       set by cutover);\n"
	"  with --no-follow     stop after the load: foreign keys, triggers,\n"
	"                       sequence values and ANALYZE, then clean up (an\n"
	"                       offline migration).\n"
	"\n"
	"The target database must exist and hold no tables.  Progress is kept in\n"
	"schema \"pgstream\" (--state-schema) on the target: if the run stops for any\n"
	"reason, run the same command again to resume.  \"pgstream status\" shows\n"
	"progress and lag.\n"
	"\n"
	"Options:\n"
	"  --source CONNINFO      source database (libpq string or URI); the login\n"
	"                         needs REPLICATION, SELECT on every table and, to\n"
	"                         create the publication, ownership of the tables\n"
	"  --target CONNINFO      target database (must exist; the login needs\n"
	"                         CREATE on it, superuser is not needed)\n"
	"  --no-follow            stop after the full load (offline migration)\n"
	"  --jobs N               parallel COPY and index workers (default: cores)\n"
	"  --split-size MB        split tables larger than this into ranges so that\n"
	"                         several workers copy one table (default 64)\n"
	"  --index-memory MB      maintenance_work_mem of each index-building\n"
	"                         session on the target, raised only, never lowered\n"
	"                         (default 256; 0 keeps the server's setting)\n"
	"  --slot NAME            replication slot name (default: one per source\n"
	"                         database, pgstream_<dbname>_<hash>; a resumed run\n"
	"                         uses the one recorded on the target)\n"
	"  --publication NAME     publication name (default: as the slot)\n"
	"  --state-schema NAME    schema on the target that holds the migration's\n"
	"                         state, dropped at the end (default \"pgstream\");\n"
	"                         give cutover and status the same name\n"
	"  --spool DIR            write the change stream to LZ4-compressed files in\n"
	"                         DIR (fsync'd before the source is told), so the\n"
	"                         source can recycle WAL while the target is slow or\n"
	"                         down; applied files are removed, the spool survives\n"
	"                         restarts, and sync stops before the disk is full\n"
	"  --spool-dir DIR        where large streamed transactions wait for their\n"
	"                         commit, LZ4-compressed (default $TMPDIR/pgstream-spool-*)\n"
	"  --no-key-tables=MODE   tables without primary key or replica identity\n"
	"                         (which block sync by default): \"full\" sets\n"
	"                         REPLICA IDENTITY FULL on them on the source;\n"
	"                         \"insert-only\" publishes only their INSERTs and\n"
	"                         TRUNCATEs, and cutover fails if they then differ\n"
	"  --pg-bin DIR           take pg_dump and pg_restore from DIR; they must be\n"
	"                         of the source's major or newer (default: the\n"
	"                         newest found, see docs/versions.md)\n"
	"  --retry-timeout SECS   while streaming, reconnect after a lost source or\n"
	"                         target connection with growing pauses, and give\n"
	"                         up after SECS without progress (default 300)\n"
	"  --quiet                no progress display\n"
	"  --help                 show this help\n"
	"\n"
	"Exit codes: 0 done (offline) or cut over (live), 1 failed (run again to\n"
	"resume), 2 blocking problems found before starting (nothing changed),\n"
	"3 usage error, 4 could not connect.\n";

static int
parse_sync_options(int argc, char **argv, SyncOptions *o)
{
	static const struct option longopts[] = {
		{"source", required_argument, NULL, 's'},
		{"target", required_argument, NULL, 't'},
		{"slot", required_argument, NULL, 'S'},
		{"publication", required_argument, NULL, 'p'},
		{"jobs", required_argument, NULL, 'j'},
		{"split-size", required_argument, NULL, 'z'},
		{"index-memory", required_argument, NULL, 'm'},
		{"no-follow", no_argument, NULL, 'n'},
		{"spool-dir", required_argument, NULL, 'd'},
		{"spool", required_argument, NULL, 'W'},
		{"retry-timeout", required_argument, NULL, 'r'},
		{"no-key-tables", required_argument, NULL, 'k'},
		{"state-schema", required_argument, NULL, 'x'},
		{"pg-bin", required_argument, NULL, 'B'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c;
	SyncError	err;
	const char *state_schema = STATE_SCHEMA_DEFAULT;
	const char *pg_bin = NULL;

	memset(o, 0, sizeof(*o));
	o->jobs = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 2;
	o->split_mb = SYNC_DEFAULT_SPLIT_MB;
	o->index_mem_mb = SYNC_DEFAULT_INDEX_MEM_MB;
	o->retry_timeout_s = SYNC_DEFAULT_RETRY_TIMEOUT_S;
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
				o->slot_given = true;
				break;
			case 'p':
				o->publication = optarg;
				o->publication_given = true;
				break;
			case 'j':
				if (!cli_parse_int(optarg, 1, 256, &o->jobs))
					return cli_usage_error("sync", "--jobs must be between 1 and 256");
				break;
			case 'z':
				if (!cli_parse_int(optarg, 1, 1024 * 1024, &o->split_mb))
					return cli_usage_error("sync", "--split-size must be a positive number of MB");
				break;
			case 'm':
				if (!cli_parse_int(optarg, 0, 64 * 1024, &o->index_mem_mb))
					return cli_usage_error("sync", "--index-memory must be a number of MB (0 to 65536)");
				break;
			case 'n':
				o->no_follow = true;
				break;
			case 'd':
				o->spool_dir = optarg;
				break;
			case 'W':
				o->wal_spool_dir = optarg;
				break;
			case 'k':
				if (!no_key_mode_parse(optarg, &o->no_key))
					return cli_usage_error("sync", "--no-key-tables must be \"full\" or \"insert-only\"");
				break;
			case 'r':
				if (!cli_parse_int(optarg, 0, 7 * 86400, &o->retry_timeout_s))
					return cli_usage_error("sync", "--retry-timeout must be a number of seconds");
				break;
			case 'x':
				state_schema = optarg;
				break;
			case 'B':
				pg_bin = optarg;
				break;
			case 'q':
				o->quiet = true;
				break;
			case 'h':
				fputs(sync_help, stdout);
				return -1;
			default:
				fputs("Try \"pgstream sync --help\".\n", stderr);
				return EXIT_USAGE;
		}
	}
	if (optind < argc || !o->source || !o->target)
	{
		fprintf(stderr, "pgstream sync: %s\nTry \"pgstream sync --help\".\n",
				optind < argc ? "unexpected argument" : "--source and --target are required");
		return EXIT_USAGE;
	}
	/* before anything exists: a slot the server folds is never found again */
	if (!names_check(o->slot, o->publication, &err))
	{
		fprintf(stderr, "pgstream sync: %s\n", err.message);
		return EXIT_USAGE;
	}
	if (!cli_use_state_schema("sync", state_schema) || !cli_use_pg_bin("sync", pg_bin))
		return EXIT_USAGE;
	return EXIT_OK;
}

int
cmd_sync(int argc, char **argv)
{
	SyncOptions opt;
	int			rc = parse_sync_options(argc, argv, &opt);

	if (rc != EXIT_OK)
		return rc < 0 ? EXIT_OK : rc;
	return sync_main(&opt);
}
