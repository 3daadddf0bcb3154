/*
 * apply/result.h -- reading numbers out of a PGresult.
 *
 * Values come from the server, but are still parsed with error detection
 * (atoi and friends are banned by `make lint`): a value that is not a number
 * reads as 0, which callers treat as "unknown".
 */
#ifndef PGSTREAM_APPLY_RESULT_H
#define PGSTREAM_APPLY_RESULT_H

#include <errno.h>
#include <stdlib.h>

#include <libpq-fe.h>

static inline long long
result_int(const PGresult *res, int row, int col)
{
	const char *s = PQgetvalue(res, row, col);
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	return errno != 0 || end == s ? 0 : v;
}

static inline double
result_double(const PGresult *res, int row, int col)
{
	const char *s = PQgetvalue(res, row, col);
	char	   *end;
	double		v = strtod(s, &end);

	return end == s ? 0.0 : v;
}

#endif
