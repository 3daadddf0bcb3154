/*
 * protocol/error.c -- SyncError: set, extend with context, name.
 *
 * This is the one file in protocol/ that includes <stdio.h>, and only for
 * vsnprintf(): error messages are built from printf-style formats supplied
 * by every layer, and re-implementing printf here would be a liability.  No
 * function in this file performs I/O.
 */
#include "protocol/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const code_names[] = {
    [SYNC_ERR_NONE] = "none",       [SYNC_ERR_TRUNCATED] = "truncated",
    [SYNC_ERR_INVALID] = "invalid", [SYNC_ERR_NOMEM] = "out of memory",
    [SYNC_ERR_USAGE] = "usage",     [SYNC_ERR_CONNECT] = "connect",
    [SYNC_ERR_SERVER] = "server",   [SYNC_ERR_PRECONDITION] = "precondition",
    [SYNC_ERR_IO] = "io",           [SYNC_ERR_INTERNAL] = "internal",
};

const char *
sync_error_code_name(SyncErrorCode code)
{
	size_t i = (size_t) code;

	if (i >= sizeof(code_names) / sizeof(code_names[0]) ||
	    code_names[i] == NULL)
		return "unknown";
	return code_names[i];
}

void
sync_error_clear(SyncError *err)
{
	if (err == NULL)
		return;
	err->code = SYNC_ERR_NONE;
	err->sqlstate[0] = '\0';
	err->message[0] = '\0';
}

/*
 * Format into buf; a message longer than the buffer is cut, never overrun.
 * A format error leaves an empty string.
 */
static void format_message(char *buf, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
format_message(char *buf, size_t cap, const char *fmt, va_list ap)
{
	if (vsnprintf(buf, cap, fmt, ap) < 0)
		buf[0] = '\0';
}

bool
sync_error_set(SyncError *err, SyncErrorCode code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return false;
	err->code = code;
	err->sqlstate[0] = '\0';
	va_start(ap, fmt);
	format_message(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return false;
}

/* Append s to buf (of cap bytes, holding a string of *len), cutting at cap. */
static void
append(char *buf, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

bool
sync_error_context(SyncError *err, const char *fmt, ...)
{
	char old[SYNC_ERROR_MESSAGE_MAX];
	size_t len;
	va_list ap;

	if (err == NULL)
		return false;
	memcpy(old, err->message, sizeof(old));
	old[sizeof(old) - 1] = '\0';

	va_start(ap, fmt);
	format_message(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	len = strlen(err->message);
	if (old[0] != '\0')
	{
		append(err->message, sizeof(err->message), &len, ": ");
		append(err->message, sizeof(err->message), &len, old);
	}
	return false;
}
