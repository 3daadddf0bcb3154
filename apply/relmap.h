/*
 * apply/relmap.h -- the remote relation cache: publisher relid -> names,
 * replica identity and published columns, as announced by the latest
 * pgoutput Relation message for that relid.
 *
 * Relation messages are replaced wholesale whenever a new one arrives
 * (pgoutput resends after any relcache invalidation).  Entries own copies of
 * every name, so they outlive the CopyData buffer they came from.
 */
#ifndef PGSTREAM_APPLY_RELMAP_H
#define PGSTREAM_APPLY_RELMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/error.h"
#include "protocol/lsn.h"
#include "protocol/pgoutput.h"

typedef struct RemoteColumn
{
	char	   *name;			/* owned */
	Oid			type_oid;
	int32_t		typmod;
	bool		is_key;
} RemoteColumn;

typedef struct RemoteRelation
{
	Oid			relid;
	char	   *nspname;		/* owned; "pg_catalog" when sent as "" */
	char	   *relname;		/* owned */
	char	   *display_name;	/* owned; "schema.table", unquoted, for output */
	ReplicaIdentity replident;
	int			natts;
	RemoteColumn *columns;		/* owned; natts entries */
	uint64_t	version;		/* bumped on every replacement */
} RemoteRelation;

typedef struct RelMap
{
	RemoteRelation **slots;		/* owned; open addressing by relid */
	size_t		nslots;			/* power of two, or 0 */
	size_t		count;
	uint64_t	next_version;
} RelMap;

void		relmap_init(RelMap *map);
void		relmap_term(RelMap *map);

/*
 * Insert or replace the entry for rel->relid.  Returns the stored entry, or
 * NULL with err set on out-of-memory (the old entry, if any, is kept).
 */
const RemoteRelation *relmap_update(RelMap *map, const PgoutputRelation *rel,
									SyncError *err);

/* The entry for relid, or NULL if no Relation message announced it. */
const RemoteRelation *relmap_get(const RelMap *map, Oid relid);

#endif
