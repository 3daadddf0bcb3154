/*
 * protocol/strbuf.h -- the one growing byte buffer of the project: SQL text,
 * COPY text, JSON output and captured subprocess output are all built in it.
 *
 * The contents are always NUL-terminated (p is NULL until the first add),
 * so a buffer of text can be handed to libpq or printf as it is.  Running
 * out of memory is sticky: oom is set, later adds do nothing, and the caller
 * checks it once at the end instead of after every add.
 */
#ifndef PGSTREAM_PROTOCOL_STRBUF_H
#define PGSTREAM_PROTOCOL_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct StrBuf
{
	char	   *p;				/* owned; NULL until the first add */
	size_t		len;			/* bytes used, not counting the NUL */
	size_t		cap;
	bool		oom;			/* an add failed: contents are incomplete */
} StrBuf;

/* Append n bytes (may contain NULs). */
void		strbuf_addn(StrBuf *b, const void *data, size_t n);

/* Append a NUL-terminated string. */
void		strbuf_add(StrBuf *b, const char *s);

/* Append one byte. */
void		strbuf_addc(StrBuf *b, char c);

/* Append the decimal form of v. */
void		strbuf_add_int(StrBuf *b, long long v);

/* Forget the contents, keep the memory (oom is cleared too). */
void		strbuf_reset(StrBuf *b);

/*
 * Hand the contents over: the malloc'd NUL-terminated string (an empty one
 * if nothing was added), or NULL on out-of-memory; b is left empty.
 */
char	   *strbuf_steal(StrBuf *b);

/* Free the contents and leave b empty. */
void		strbuf_free(StrBuf *b);

#endif
