/*
 * protocol/decode.h -- the status every decoder returns.
 */
#ifndef PGSTREAM_PROTOCOL_DECODE_H
#define PGSTREAM_PROTOCOL_DECODE_H

typedef enum DecodeStatus
{
	DECODE_OK = 0,
	DECODE_TRUNCATED,			/* the input ended inside a field */
	DECODE_INVALID				/* a tag, flag, count or value is not allowed */
} DecodeStatus;

/*
 * Which SyncErrorCode accompanies each status: DECODE_TRUNCATED always comes
 * with SYNC_ERR_TRUNCATED.  DECODE_INVALID normally comes with
 * SYNC_ERR_INVALID; it also covers the two failures that are not the input's
 * fault, which callers can tell apart by err->code: SYNC_ERR_NOMEM (the
 * caller's Arena refused an allocation) and SYNC_ERR_USAGE (the caller's
 * PgoutputState is not usable, e.g. proto_version 9).
 */

/* Never fails. */
const char *decode_status_name(DecodeStatus status);

#endif
