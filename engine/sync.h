/*
 * engine/sync.h -- the migration driver behind "pgstream sync"
 * (engine/cmd/sync.c parses the options and calls sync_main()).
 */
#ifndef PGSTREAM_ENGINE_SYNC_H
#define PGSTREAM_ENGINE_SYNC_H

#include <stdbool.h>

#include "engine/assess/assess.h"

#define SYNC_DEFAULT_SPLIT_MB 64
#define SYNC_DEFAULT_INDEX_MEM_MB 256
#define SYNC_DEFAULT_RETRY_TIMEOUT_S 300

typedef struct SyncOptions
{
	const char *source;
	const char *target;
	const char *slot;			/* --slot, else the state's or the default */
	const char *publication;	/* --publication, likewise */
	bool		slot_given;
	bool		publication_given;
	long		jobs;
	long		split_mb;
	long		index_mem_mb;
	const char *spool_dir;
	const char *wal_spool_dir;	/* --spool */
	long		retry_timeout_s;
	NoKeyMode	no_key;
	bool		no_follow;
	bool		quiet;
} SyncOptions;


/*
 * Run the migration with these options until it is done (offline), cut
 * over (live) or stopped; errors are logged and recorded on the target.
 * Returns the process exit code (engine/cli.h).
 */
int			sync_main(const SyncOptions *opt);

#endif
