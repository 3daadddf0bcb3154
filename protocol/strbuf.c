/*
 * protocol/strbuf.c -- the growing byte buffer (see strbuf.h).
 */
#include "protocol/strbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STRBUF_MIN_CAP 256

/* Make room for n more bytes and the NUL; false (and oom) if impossible. */
static bool
reserve(StrBuf *b, size_t n)
{
	size_t		need,
				cap;
	char	   *grown;

	if (b->oom)
		return false;
	if (n > SIZE_MAX - b->len - 1)
	{
		b->oom = true;
		return false;
	}
	need = b->len + n + 1;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : STRBUF_MIN_CAP;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	grown = realloc(b->p, cap);
	if (grown == NULL)
	{
		b->oom = true;
		return false;
	}
	b->p = grown;
	b->cap = cap;
	return true;
}

void
strbuf_addn(StrBuf *b, const void *data, size_t n)
{
	if (!reserve(b, n))
		return;
	if (n > 0)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
strbuf_add(StrBuf *b, const char *s)
{
	strbuf_addn(b, s, strlen(s));
}

void
strbuf_addc(StrBuf *b, char c)
{
	strbuf_addn(b, &c, 1);
}

void
strbuf_add_int(StrBuf *b, long long v)
{
	char		digits[24];
	size_t		i = sizeof(digits);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long) v : (unsigned long long) v;

	do
	{
		digits[--i] = (char) ('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		digits[--i] = '-';
	strbuf_addn(b, digits + i, sizeof(digits) - i);
}

void
strbuf_reset(StrBuf *b)
{
	b->len = 0;
	b->oom = false;
	if (b->p != NULL)
		b->p[0] = '\0';
}

char *
strbuf_steal(StrBuf *b)
{
	char	   *s;

	if (b->oom)
	{
		strbuf_free(b);
		return NULL;
	}
	if (b->p == NULL)
		strbuf_addn(b, "", 0);
	s = b->oom ? NULL : b->p;
	if (s == NULL)
		free(b->p);
	memset(b, 0, sizeof(*b));
	return s;
}

void
strbuf_free(StrBuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}
