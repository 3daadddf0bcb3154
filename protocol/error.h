/*
 * protocol/error.h -- the one error value every layer returns.
 *
 * A SyncError is filled in by the function that fails and extended with
 * context by each caller on the way up ("applying transaction 712 finished at
 * 0/1A2B3C: duplicate key ...").  Nothing below engine/ logs; engine/ decides
 * what to print and whether to retry.
 */
#ifndef PGSTREAM_PROTOCOL_ERROR_H
#define PGSTREAM_PROTOCOL_ERROR_H

#include <stdbool.h>
#include <stddef.h>

typedef enum SyncErrorCode
{
	SYNC_ERR_NONE = 0,
	SYNC_ERR_TRUNCATED,		/* input ended before a field */
	SYNC_ERR_INVALID,		/* input is present but violates the protocol */
	SYNC_ERR_NOMEM,			/* an allocation or arena limit failed */
	SYNC_ERR_USAGE,			/* bad command-line or configuration input */
	SYNC_ERR_CONNECT,		/* could not connect or authenticate */
	SYNC_ERR_SERVER,		/* the server returned an error (see sqlstate) */
	SYNC_ERR_PRECONDITION,	/* a server is not in a state we can work with */
	SYNC_ERR_IO,			/* local file or process failure */
	SYNC_ERR_INTERNAL		/* a bug: an invariant of ours did not hold */
} SyncErrorCode;

#define SYNC_ERROR_MESSAGE_MAX 512

typedef struct SyncError
{
	SyncErrorCode code;
	char		sqlstate[6];	/* "" unless code == SYNC_ERR_SERVER */
	char		message[SYNC_ERROR_MESSAGE_MAX];
} SyncError;

/* Never fails; returns a static string such as "truncated". */
const char *sync_error_code_name(SyncErrorCode code);

/* Clear an error value. */
void		sync_error_clear(SyncError *err);

/*
 * Set err (overwriting any previous content).  Returns false so that callers
 * can write "return sync_error_set(err, ...);" in a bool function.
 */
bool		sync_error_set(SyncError *err, SyncErrorCode code, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/*
 * Prefix the existing message with context: "context: old message".  Keeps
 * code and sqlstate.  Returns false, as sync_error_set does.
 */
bool		sync_error_context(SyncError *err, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

#endif
