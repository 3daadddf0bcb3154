/*
 * engine/cutover.h -- the end of a live migration behind "pgstream cutover"
 * (engine/cmd/cutover.c parses the options, calls cutover_main() and prints
 * the report).  What the steps are: engine/cutover.c.
 */
#ifndef PGSTREAM_ENGINE_CUTOVER_H
#define PGSTREAM_ENGINE_CUTOVER_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "protocol/lsn.h"

#define CUTOVER_DEFAULT_TIMEOUT_S 300

typedef struct CutoverOptions
{
	const char *source;
	const char *target;
	bool		freeze;
	long		timeout_s;
	bool		json;
	bool		verify;			/* --verify: digests of every table too */
} CutoverOptions;

/* What a cutover did and verified, for the report. */
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
	bool		was_frozen;		/* read-only before this run: not ours to undo */
	int			verified_tables;	/* --verify: tables found identical; -1 without */
} CutoverReport;

/*
 * Run the cutover; on success *r holds the report (free it with
 * cutover_report_free() in every case).  Errors are logged; returns the
 * process exit code (engine/cli.h).
 */
int			cutover_main(const CutoverOptions *o, CutoverReport *r);

void		cutover_report_free(CutoverReport *r);

#endif
