/*
 * engine/snapshot.h -- the logical slot and its exported snapshot, and the
 * publication, on the source.
 *
 * The slot is created on the replication connection with an exported
 * snapshot; that connection must then stay idle (no command at all) until
 * every reader has imported the snapshot, because the next command on it
 * clears the snapshot.  The connection is opened with idle timeouts off so
 * the source does not end it while it waits.
 */
#ifndef PGSTREAM_ENGINE_SNAPSHOT_H
#define PGSTREAM_ENGINE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "engine/assess/assess.h"
#include "apply/replclient.h"
#include "protocol/error.h"
#include "protocol/lsn.h"

#define SNAPSHOT_NAME_MAX 64

/*
 * The CREATE_REPLICATION_SLOT command for a source of server_version: the
 * option syntax "(SNAPSHOT 'export')" on 15+, the keyword EXPORT_SNAPSHOT on
 * 10-14 (15 still takes it, 11-14 know only it).  Pure, for unit tests.
 */
void		snapshot_slot_command(int server_version, const char *slot, char *buf,
								  size_t size);

/*
 * CREATE_REPLICATION_SLOT slot LOGICAL pgoutput with an exported snapshot
 * (option syntax on 15+, keyword syntax on 10-14).  Persistent, never
 * TWO_PHASE.
 */
bool		snapshot_create_slot(ReplClient *rc, const char *slot,
								 Lsn *consistent_lsn, char *snapshot_name,
								 SyncError *err);

/*
 * The same, calling watch(arg, err) every half second while the server has
 * not answered (it waits for the transactions running on the source to
 * end).  watch returns false, with err set, to give up.
 */
typedef bool (*SlotWatchFn) (void *arg, SyncError *err);
bool		snapshot_create_slot_watched(ReplClient *rc, const char *slot,
										 Lsn *consistent_lsn, char *snapshot_name,
										 SlotWatchFn watch, void *arg,
										 SyncError *err);

/* Does a slot of this name exist on the source?  *active when in use. */
bool		snapshot_slot_exists(PGconn *source, const char *slot, bool *exists,
								 bool *active, SyncError *err);

/* Drop the slot if it exists (waiting up to a few seconds if it is active). */
bool		snapshot_drop_slot(PGconn *source, const char *slot, SyncError *err);

/*
 * Create the publication for every table that logical replication can carry:
 * permanent tables outside system schemas, partitions themselves (not their
 * root: the target has the same partitions, a row moving between partitions
 * arrives as a delete and an insert, and a TRUNCATE of one partition is only
 * sent this way), not tables of extensions.  A table list, not FOR ALL
 * TABLES, so it needs only table ownership (as on Azure); tables created
 * later are caught by cutover.
 */
bool		snapshot_create_publication(PGconn *source, const char *name,
										const NoKeyTables *exclude, SyncError *err);

/*
 * A publication for INSERT and TRUNCATE only, for tables whose UPDATE and
 * DELETE could not be published (no replica identity); qualified names are
 * already quoted.
 */
bool		snapshot_create_insert_only_publication(PGconn *source, const char *name,
													const NoKeyTables *tables,
													SyncError *err);

/* Does a publication of this name exist on the source? */
bool		snapshot_publication_exists(PGconn *source, const char *name,
										bool *exists, SyncError *err);

/* Drop the publication if it exists. */
bool		snapshot_drop_publication(PGconn *source, const char *name,
									  SyncError *err);

#endif
