/*
 * engine/sequences.h -- sequence values are not carried by logical
 * replication; pgstream reads them on the source when the data is final
 * (end of an offline copy, or at cutover) and sets them on the target.
 */
#ifndef PGSTREAM_ENGINE_SEQUENCES_H
#define PGSTREAM_ENGINE_SEQUENCES_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "protocol/error.h"

/*
 * Copy every sequence's state (last_value, is_called) from source to target.
 * A sequence the source login cannot read is an error, never a silent reset.
 * *count receives the number of sequences set.
 */
bool		sequences_copy(PGconn *source, PGconn *target, long *count,
						   SyncError *err);

#endif
