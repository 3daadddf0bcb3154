/*
 * protocol/decode.c -- names for DecodeStatus values.
 */
#include "protocol/decode.h"

const char *
decode_status_name(DecodeStatus status)
{
	switch (status)
	{
		case DECODE_OK:
			return "ok";
		case DECODE_TRUNCATED:
			return "truncated";
		case DECODE_INVALID:
			return "invalid";
	}
	return "unknown";
}
