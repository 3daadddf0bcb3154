/*
 * engine/assess.h -- checks of source and target before anything moves.
 *
 * Each problem is a Finding with a severity, the check's name, the object it
 * concerns, a message and the exact fix.  "pgstream assess" prints them;
 * "pgstream sync" runs the same checks first and refuses to start on any
 * blocking finding, having changed nothing on either server.  The checks only
 * read.
 */
#ifndef PGSTREAM_ENGINE_ASSESS_H
#define PGSTREAM_ENGINE_ASSESS_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "protocol/error.h"

typedef enum FindingSeverity
{
	FINDING_BLOCKING,
	FINDING_WARNING,
	FINDING_INFO
} FindingSeverity;

typedef struct Finding
{
	FindingSeverity severity;
	char		check[48];
	char		object[256];
	char		message[512];
	char		fix[512];
} Finding;

typedef struct Findings
{
	Finding    *items;			/* owned */
	int			count;
	int			cap;
} Findings;

typedef struct AssessOptions
{
	const char *slot_name;
	const char *publication_name;	/* NULL when no publication is needed */
	bool		resuming;		/* slot/publication of our own may exist */
} AssessOptions;

/* Never fails: "blocking", "warning", "info". */
const char *finding_severity_name(FindingSeverity s);

void		findings_init(Findings *f);
void		findings_term(Findings *f);
void		findings_add(Findings *f, FindingSeverity sev, const char *check,
						 const char *object, const char *fix, const char *fmt,...)
			__attribute__((format(printf, 6, 7)));
int			findings_count(const Findings *f, FindingSeverity sev);

/* Run every check; false only when a check could not run at all. */
bool		assess_run(PGconn *source, PGconn *target, const AssessOptions *opts,
					   Findings *out, SyncError *err);

/* Print findings for humans (to stderr) or as {"findings": [...]} (stdout). */
void		findings_print(const Findings *f, bool json);

#endif
