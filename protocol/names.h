/*
 * protocol/names.h -- the rules for names pgstream sends to the server.
 *
 * One rule per kind of name, used by every command before it changes
 * anything: a name the server would fold, truncate or reject must be refused
 * at the command line, not discovered after a slot or a schema exists.
 *
 *   slot         1..63 bytes of [a-z0-9_], as ReplicationSlotValidateName
 *                demands; "UPPER" is refused here (the replication command
 *                would fold it to "upper" and the SQL functions reject it,
 *                so the run would lose track of its own slot)
 *   publication  1..63 bytes, no NUL: pgstream quotes it, so any character
 *                is fine, but a longer name would be truncated silently to
 *                NAMEDATALEN - 1 and then never found again
 *   state schema 1..63 bytes, and not starting with "pg_" (the server
 *                reserves those for system schemas and refuses to create
 *                one); any other character is fine, it is always quoted
 */
#ifndef PGSTREAM_PROTOCOL_NAMES_H
#define PGSTREAM_PROTOCOL_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "protocol/error.h"

#define NAME_MAX_BYTES 63		/* NAMEDATALEN - 1 */

bool		names_slot_valid(const char *name);

/*
 * The default slot and publication name for a source database:
 * "pgstream_<dbname, sanitized and cut>_<8 hex digits hashing the exact
 * dbname>".  Replication slots are one namespace per server, so one name
 * per database lets two migrations of one server run side by side; the
 * hash tells apart names that sanitize alike ("Shop" and "shop").  Always
 * a valid slot name, short enough that "<name>_insert_only" (sync
 * --no-key-tables=insert-only) is a valid publication name too.  outsize
 * should be NAMES_DEFAULT_SIZE.
 */
#define NAMES_DEFAULT_SIZE 64
void		names_default(const char *dbname, char *out, size_t outsize);
bool		names_publication_valid(const char *name);
bool		names_state_schema_valid(const char *name);

/*
 * Check a slot and a publication name (either may be NULL: not given).
 * True if both are fine; otherwise false with SYNC_ERR_USAGE and the message
 * for the operator ("invalid replication slot name \"UPPER\": use 1 to 63
 * lower case letters, digits and underscores").
 */
bool		names_check(const char *slot, const char *publication, SyncError *err);

/*
 * Check a --state-schema name: true if fine; otherwise false with
 * SYNC_ERR_USAGE and the message ("invalid --state-schema \"pg_x\": names
 * starting with \"pg_\" are reserved by PostgreSQL").
 */
bool		names_state_schema_check(const char *name, SyncError *err);

#endif
