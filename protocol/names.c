/*
 * protocol/names.c -- see names.h.
 */
#include "protocol/names.h"

#include <stdint.h>
#include <string.h>

bool
names_slot_valid(const char *name)
{
	size_t		n = strlen(name);

	if (n == 0 || n > NAME_MAX_BYTES)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
			  (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return false;
	return true;
}

bool
names_publication_valid(const char *name)
{
	size_t		n = strlen(name);

	return n > 0 && n <= NAME_MAX_BYTES;
}

bool
names_state_schema_valid(const char *name)
{
	return names_publication_valid(name) && strncmp(name, "pg_", 3) != 0;
}

bool
names_check(const char *slot, const char *publication, SyncError *err)
{
	if (slot != NULL && !names_slot_valid(slot))
		return sync_error_set(err, SYNC_ERR_USAGE, "invalid replication slot name \"%s\": "
							  "use 1 to 63 lower case letters, digits and underscores", slot);
	if (publication != NULL && !names_publication_valid(publication))
		return sync_error_set(err, SYNC_ERR_USAGE, "invalid publication name \"%s\": use 1 "
							  "to 63 bytes (a longer name would be cut short by the server)",
							  publication);
	return true;
}

bool
names_state_schema_check(const char *name, SyncError *err)
{
	if (!names_publication_valid(name))
		return sync_error_set(err, SYNC_ERR_USAGE, "invalid --state-schema \"%s\": use 1 to 63 "
							  "bytes (a longer name would be cut short by the server)", name);
	if (!names_state_schema_valid(name))
		return sync_error_set(err, SYNC_ERR_USAGE, "invalid --state-schema \"%s\": names "
							  "starting with \"pg_\" are reserved by PostgreSQL", name);
	return true;
}

/*
 * At most this many bytes of the database name: "pgstream_" (9) + 32 + "_"
 * + 8 hex digits = 50, and 50 + "_insert_only" (12) = 62 <= 63.
 */
#define DEFAULT_PREFIX_MAX 32

void
names_default(const char *dbname, char *out, size_t outsize)
{
	char		prefix[DEFAULT_PREFIX_MAX + 1];
	size_t		n = 0;
	uint32_t	hash = 2166136261u;	/* FNV-1a: small, stable, no library */

	for (const unsigned char *p = (const unsigned char *) dbname; *p; p++)
	{
		hash = (hash ^ *p) * 16777619u;
		if (n < DEFAULT_PREFIX_MAX)
			prefix[n++] = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? (char) *p :
				(*p >= 'A' && *p <= 'Z') ? (char) (*p - 'A' + 'a') : '_';
	}
	prefix[n] = '\0';
	/* "pgstream_" prefix "_" hash, cut to outsize like snprintf would */
	{
		char		name[9 + DEFAULT_PREFIX_MAX + 1 + 8 + 1];
		size_t		len = 0;
		static const char hex[] = "0123456789abcdef";

		memcpy(name, "pgstream_", 9);
		len = 9;
		memcpy(name + len, prefix, n);
		len += n;
		if (n > 0)
			name[len++] = '_';
		for (int shift = 28; shift >= 0; shift -= 4)
			name[len++] = hex[(hash >> shift) & 0xF];
		name[len] = '\0';
		if (outsize > 0)
		{
			size_t		k = len < outsize - 1 ? len : outsize - 1;

			memcpy(out, name, k);
			out[k] = '\0';
		}
	}
}
