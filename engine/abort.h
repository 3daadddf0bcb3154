/*
 * engine/abort.h -- "pgstream abort": remove what a migration left behind,
 * at any phase and after a crash, without touching source data.
 *
 *   source  the slot (its walsender ended only when no sync runs), the
 *           publication and the insert-only one, the replica identities
 *           sync set with --no-key-tables=full (put back as they were) and
 *           a freeze a killed cutover left (both as noted in the state)
 *   target  the state schema; with drop_target_objects, the tables the
 *           state lists (and what depends on them)
 *
 * The names come from the state on the target when it is there, else from
 * the options, else the default for the source database (protocol/names.h).
 */
#ifndef PGSTREAM_ENGINE_ABORT_H
#define PGSTREAM_ENGINE_ABORT_H

#include <stdbool.h>

#include "protocol/error.h"

typedef struct AbortOptions
{
	const char *source;
	const char *target;
	const char *slot;			/* NULL: the state's, else the default */
	const char *publication;	/* likewise */
	bool		drop_target_objects;
} AbortOptions;

typedef struct AbortReport
{
	int			removed;		/* things removed or put back (each logged) */
	bool		refused;		/* nothing was changed: a run is going on, or
								 * --source is not the migration's */
	bool		source_unreachable; /* the source was left as it was */
	int			source_left;	/* known leftovers on the unreachable source */
} AbortReport;

/*
 * Remove what is left.  False with err set when abort must refuse (a sync
 * or cutover is running, the target holds another source's migration) or
 * a step failed; what was done before is logged and stays done, so running
 * abort again finishes the job.
 */
bool		abort_run(const AbortOptions *o, AbortReport *report, SyncError *err);

#endif
