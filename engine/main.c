/*
 * engine/main.c -- pgstream's entry point: dispatch to a subcommand.
 *
 * Only this file calls exit(); everything else returns an exit code.
 */
#include <stdio.h>
#include <string.h>

#include "engine/cli.h"

#define PGSTREAM_VERSION "0.1.0"

typedef struct Subcommand
{
	const char *name;
	int			(*run) (int argc, char **argv);
	const char *summary;
} Subcommand;

static const Subcommand subcommands[] = {
	{"assess", cmd_assess, "check source and target before a migration, with fixes"},
	{"sync", cmd_sync, "migrate a database: full load, then live sync until cutover"},
	{"cutover", cmd_cutover, "finish a live migration: barrier, sequences, FKs, checks"},
	{"verify", cmd_verify, "compare source and target: every object and every row"},
	{"status", cmd_status, "show the phase and progress recorded on the target"},
	{"abort", cmd_abort, "abandon a migration: remove its slot, publications and state"},
	{"peek", cmd_peek, "print the decoded change stream of a slot, without consuming it"},
};

static void
usage(FILE *out)
{
	fprintf(out,
			"pgstream %s -- move a live PostgreSQL database to another server\n\n"
			"Usage: pgstream COMMAND [OPTIONS]\n\nCommands:\n",
			PGSTREAM_VERSION);
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(out,
			"\nRun \"pgstream COMMAND --help\" for a command's options.\n"
			"Exit codes: 0 success, 1 failed, 2 blocking problems found,\n"
			"3 usage error, 4 could not connect.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2)
	{
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
		strcmp(argv[1], "help") == 0)
	{
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)
	{
		printf("pgstream %s\n", PGSTREAM_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "pgstream: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
