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

/* Never fails. */
const char *decode_status_name(DecodeStatus status);

#endif
