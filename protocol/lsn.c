/*
 * protocol/lsn.c -- parse and format WAL positions; convert and format
 * PostgreSQL timestamps.
 *
 * No libc time or stdio functions: timestamp_format() does the calendar
 * arithmetic itself (days -> civil date, proleptic Gregorian, as PostgreSQL's
 * j2date() does), so it cannot fail and works for the whole range PostgreSQL
 * accepts, 4714-11-24 BC to 294276-12-31 AD.
 */
#include "protocol/lsn.h"

#define USECS_PER_SEC INT64_C(1000000)
#define USECS_PER_DAY INT64_C(86400000000)
#define UNIX_DAYS_AT_PG_EPOCH 10957 /* 1970-01-01 .. 2000-01-01 */

/* PostgreSQL's DT_NOBEGIN/DT_NOEND and the valid range (datatype/timestamp.h).
 */
#define PG_DT_NOBEGIN INT64_MIN
#define PG_DT_NOEND INT64_MAX
#define PG_MIN_TIMESTAMP INT64_C(-211813488000000000)
#define PG_END_TIMESTAMP INT64_C(9223371331200000000)

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Parse 1 to 8 hex digits at *p followed by the character stop; advance *p
 * past stop.  False on anything else.
 */
static bool
parse_hex32(const char **p, char stop, uint32_t *out)
{
	const char *s = *p;
	uint32_t v = 0;
	int n = 0;
	int d;

	while ((d = hex_value(s[n])) >= 0)
	{
		if (n == 8)
			return false;
		v = v << 4 | (uint32_t) d;
		n++;
	}
	if (n == 0 || s[n] != stop)
		return false;
	*p = s + n + 1;
	*out = v;
	return true;
}

bool
lsn_parse(const char *text, Lsn *out)
{
	const char *p = text;
	uint32_t hi;
	uint32_t lo;

	if (text == NULL || !parse_hex32(&p, '/', &hi) ||
	    !parse_hex32(&p, '\0', &lo))
		return false;
	*out = (Lsn) hi << 32 | lo;
	return true;
}

/* Write v in upper-case hex without leading zeros; return the end. */
static char *
put_hex32(char *p, uint32_t v)
{
	static const char digits[] = "0123456789ABCDEF";
	int shift = 28;

	while (shift > 0 && (v >> shift) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		*p++ = digits[(v >> shift) & 0xF];
	return p;
}

char *
lsn_format(Lsn lsn, char *buf)
{
	char *p = put_hex32(buf, (uint32_t) (lsn >> 32));

	*p++ = '/';
	p = put_hex32(p, (uint32_t) lsn);
	*p = '\0';
	return buf;
}

PgTimestamp
timestamp_from_unix_us(int64_t unix_us)
{
	if (unix_us == INT64_MAX)
		return PG_DT_NOEND;
	if (unix_us < INT64_MIN + PG_EPOCH_OFFSET_US)
		return PG_DT_NOBEGIN;
	return unix_us - PG_EPOCH_OFFSET_US;
}

int64_t
timestamp_to_unix_us(PgTimestamp ts)
{
	if (ts == PG_DT_NOBEGIN)
		return INT64_MIN;
	if (ts > INT64_MAX - PG_EPOCH_OFFSET_US)
		return INT64_MAX;
	return ts + PG_EPOCH_OFFSET_US;
}

/* Write v in decimal, zero-padded to at least width digits; return the end. */
static char *
put_uint(char *p, uint64_t v, int width)
{
	char tmp[20];
	int n = 0;

	do
	{
		tmp[n++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n < width)
		tmp[n++] = '0';
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

static char *
put_str(char *p, const char *s)
{
	while (*s != '\0')
		*p++ = *s++;
	return p;
}

typedef struct CivilDate
{
	int64_t year; /* astronomical: 0 is 1 BC */
	int month;
	int day;
} CivilDate;

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's method). */
static CivilDate
civil_from_days(int64_t z)
{
	CivilDate c;
	int64_t era;
	int64_t doe;
	int64_t yoe;
	int64_t doy;
	int64_t mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	c.day = (int) (doy - (153 * mp + 2) / 5 + 1);
	c.month = (int) (mp < 10 ? mp + 3 : mp - 9);
	c.year = yoe + era * 400 + (c.month <= 2 ? 1 : 0);
	return c;
}

/* "HH:MM:SS.uuuuuu" for a microsecond of the day. */
static char *
put_time_of_day(char *p, int64_t usec)
{
	int64_t secs = usec / USECS_PER_SEC;

	p = put_uint(p, (uint64_t) (secs / 3600), 2);
	*p++ = ':';
	p = put_uint(p, (uint64_t) (secs / 60 % 60), 2);
	*p++ = ':';
	p = put_uint(p, (uint64_t) (secs % 60), 2);
	*p++ = '.';
	return put_uint(p, (uint64_t) (usec % USECS_PER_SEC), 6);
}

char *
timestamp_format(PgTimestamp ts, char *buf)
{
	int64_t days;
	int64_t usec;
	CivilDate c;
	char *p = buf;

	if (ts < PG_MIN_TIMESTAMP || ts >= PG_END_TIMESTAMP)
	{
		p = put_str(p, ts < 0 ? "-infinity" : "infinity");
		*p = '\0';
		return buf;
	}

	days = ts / USECS_PER_DAY;
	usec = ts % USECS_PER_DAY;
	if (usec < 0)
	{
		usec += USECS_PER_DAY;
		days--;
	}
	c = civil_from_days(days + UNIX_DAYS_AT_PG_EPOCH);
	p = put_uint(p, (uint64_t) (c.year > 0 ? c.year : 1 - c.year), 4);
	*p++ = '-';
	p = put_uint(p, (uint64_t) c.month, 2);
	*p++ = '-';
	p = put_uint(p, (uint64_t) c.day, 2);
	*p++ = ' ';
	p = put_time_of_day(p, usec);
	p = put_str(p, c.year > 0 ? "+00" : "+00 BC");
	*p = '\0';
	return buf;
}
