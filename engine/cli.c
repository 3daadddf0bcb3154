/*
 * engine/cli.c -- shared command-line helpers.
 */
#include "engine/cli.h"

#include <errno.h>
#include <stdlib.h>

int
cli_exit_code(const SyncError *err)
{
	switch (err->code)
	{
		case SYNC_ERR_USAGE:
			return EXIT_USAGE;
		case SYNC_ERR_CONNECT:
			return EXIT_CONNECT;
		default:
			return EXIT_FAILED;
	}
}

bool
cli_parse_int(const char *text, long min, long max, long *out)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}
