/*
 * protocol/lsn.h -- WAL positions and PostgreSQL timestamps.
 *
 * An Lsn is a 64-bit byte position in the WAL, written "%X/%X" (high/low 32
 * bits).  A PgTimestamp is a TimestampTz: signed microseconds since
 * 2000-01-01 00:00:00 UTC.
 */
#ifndef PGSTREAM_PROTOCOL_LSN_H
#define PGSTREAM_PROTOCOL_LSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t Lsn;
typedef uint32_t Xid;
typedef uint32_t Oid;
typedef int64_t PgTimestamp;

#define INVALID_LSN ((Lsn) 0)
#define LSN_FORMAT_MAX 18		/* "FFFFFFFF/FFFFFFFF" + NUL */

/* For printf("%X/%X", LSN_ARGS(lsn)). */
#define LSN_ARGS(lsn) ((unsigned) ((lsn) >> 32)), ((unsigned) (lsn))

/* Microseconds between 1970-01-01 and 2000-01-01. */
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)

/*
 * Parse "16/B374D848" (1-8 hex digits on each side, either case, zero
 * padding allowed, nothing else).  Returns false on any other input and leaves
 * *out unchanged.
 */
bool		lsn_parse(const char *text, Lsn *out);

/* Write "%X/%X" into buf (at least LSN_FORMAT_MAX bytes); returns buf. */
char	   *lsn_format(Lsn lsn, char *buf);

/* Unix microseconds <-> PostgreSQL timestamps. */
PgTimestamp timestamp_from_unix_us(int64_t unix_us);
int64_t		timestamp_to_unix_us(PgTimestamp ts);

/*
 * Format as ISO 8601 UTC with microseconds, "2026-11-25 13:29:27.123456+00",
 * into buf (at least TIMESTAMP_FORMAT_MAX bytes); returns buf.  Works for the
 * whole int64 range PostgreSQL accepts; out-of-range values are printed as
 * "infinity"/"-infinity" as PostgreSQL does for its sentinels.
 */
#define TIMESTAMP_FORMAT_MAX 40
char	   *timestamp_format(PgTimestamp ts, char *buf);

#endif
