/*
 * protocol/bytes.c -- bounds-checked big-endian reader and writer.
 *
 * Every read checks the bytes remaining before touching memory, and decodes
 * with shifts, never with pointer casts, so alignment and host byte order do
 * not matter.  Failures are sticky: see bytes.h.
 */
#include "protocol/bytes.h"

#include <string.h>

void
byte_reader_init(ByteReader *r, const uint8_t *buf, size_t len)
{
	r->buf = buf;
	r->len = buf != NULL ? len : 0;
	r->pos = 0;
	r->failure = BYTE_READER_OK;
	r->failed_field = NULL;
	r->reason = NULL;
	r->failed_offset = 0;
}

/* Record the first failure only; later ones would hide the cause. */
static void
reader_fail(ByteReader *r, ByteReaderFailure failure, size_t offset,
            const char *field, const char *reason)
{
	if (r->failure != BYTE_READER_OK)
		return;
	r->failure = failure;
	r->failed_offset = offset;
	r->failed_field = field != NULL ? field : "?";
	r->reason = reason;
}

/*
 * Claim n bytes for field and return a pointer to them, or NULL (and fail as
 * truncated) when fewer than n remain or the reader already failed.
 */
static const uint8_t *
reader_take(ByteReader *r, size_t n, const char *field)
{
	const uint8_t *p;

	if (r->failure != BYTE_READER_OK)
		return NULL;
	if (n > r->len - r->pos)
	{
		reader_fail(r, BYTE_READER_TRUNCATED, r->pos, field, NULL);
		return NULL;
	}
	p = r->buf + r->pos;
	r->pos += n;
	return p;
}

uint8_t
byte_reader_u8(ByteReader *r, const char *field)
{
	const uint8_t *p = reader_take(r, 1, field);

	return p != NULL ? p[0] : 0;
}

uint16_t
byte_reader_u16(ByteReader *r, const char *field)
{
	const uint8_t *p = reader_take(r, 2, field);

	if (p == NULL)
		return 0;
	return (uint16_t) ((uint16_t) p[0] << 8 | (uint16_t) p[1]);
}

uint32_t
byte_reader_u32(ByteReader *r, const char *field)
{
	const uint8_t *p = reader_take(r, 4, field);

	if (p == NULL)
		return 0;
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
	       (uint32_t) p[2] << 8 | (uint32_t) p[3];
}

uint64_t
byte_reader_u64(ByteReader *r, const char *field)
{
	const uint8_t *p = reader_take(r, 8, field);
	uint64_t v = 0;

	if (p == NULL)
		return 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | (uint64_t) p[i];
	return v;
}

int64_t
byte_reader_i64(ByteReader *r, const char *field)
{
	uint64_t u = byte_reader_u64(r, field);

	/* Two's complement without relying on implementation-defined casts. */
	if (u <= (uint64_t) INT64_MAX)
		return (int64_t) u;
	return -(int64_t) (~u) - 1;
}

ByteView
byte_reader_bytes(ByteReader *r, size_t n, const char *field)
{
	ByteView v = {NULL, 0};
	const uint8_t *p = reader_take(r, n, field);

	if (p != NULL)
	{
		v.ptr = p;
		v.len = n;
	}
	return v;
}

ByteView
byte_reader_cstring(ByteReader *r, const char *field)
{
	ByteView v = {NULL, 0};
	const uint8_t *start;
	const uint8_t *nul;
	size_t left = byte_reader_remaining(r);

	if (r->failure != BYTE_READER_OK)
		return v;
	start = r->buf + r->pos;
	nul = left > 0 ? memchr(start, '\0', left) : NULL;
	if (nul == NULL)
	{
		reader_fail(r, BYTE_READER_TRUNCATED, r->pos, field, NULL);
		return v;
	}
	v.ptr = start;
	v.len = (size_t) (nul - start);
	r->pos += v.len + 1;
	return v;
}

void
byte_reader_invalid(ByteReader *r, const char *field, const char *reason)
{
	reader_fail(r, BYTE_READER_INVALID, r->pos, field, reason);
}

void
byte_reader_invalid_at(ByteReader *r, size_t offset, const char *field,
                       const char *reason)
{
	reader_fail(r, BYTE_READER_INVALID, offset, field, reason);
}

void
byte_reader_nomem(ByteReader *r, const char *field)
{
	reader_fail(r, BYTE_READER_NOMEM, r->pos, field, NULL);
}

bool
byte_reader_finish(ByteReader *r, const char *msg_name, SyncError *err)
{
	const char *field = r->failed_field;
	size_t at = r->failed_offset;

	switch (r->failure)
	{
		case BYTE_READER_OK:
			break;
		case BYTE_READER_TRUNCATED:
			return sync_error_set(err, SYNC_ERR_TRUNCATED,
			                      "%s: truncated at byte %zu reading \"%s\"",
			                      msg_name, at, field);
		case BYTE_READER_INVALID:
			return sync_error_set(
			    err, SYNC_ERR_INVALID, "%s: invalid \"%s\" at byte %zu: %s",
			    msg_name, field, at,
			    r->reason != NULL ? r->reason : "not allowed");
		case BYTE_READER_NOMEM:
			return sync_error_set(
			    err, SYNC_ERR_NOMEM,
			    "%s: out of memory at byte %zu allocating \"%s\"", msg_name, at,
			    field);
	}
	if (r->pos != r->len)
		return sync_error_set(err, SYNC_ERR_INVALID,
		                      "%s: %zu trailing bytes at byte %zu", msg_name,
		                      r->len - r->pos, r->pos);
	return true;
}

void
byte_writer_init(ByteWriter *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = buf != NULL ? cap : 0;
	w->len = 0;
	w->overflow = false;
}

/* Claim n bytes of room, or NULL (and overflow, sticky) if they do not fit. */
static uint8_t *
writer_room(ByteWriter *w, size_t n)
{
	uint8_t *p;

	if (w->overflow || n > w->cap - w->len)
	{
		w->overflow = true;
		return NULL;
	}
	p = w->buf + w->len;
	w->len += n;
	return p;
}

void
byte_writer_u8(ByteWriter *w, uint8_t v)
{
	uint8_t *p = writer_room(w, 1);

	if (p != NULL)
		p[0] = v;
}

void
byte_writer_u16(ByteWriter *w, uint16_t v)
{
	uint8_t *p = writer_room(w, 2);

	if (p == NULL)
		return;
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
}

void
byte_writer_u32(ByteWriter *w, uint32_t v)
{
	uint8_t *p = writer_room(w, 4);

	if (p == NULL)
		return;
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (24 - 8 * i));
}

void
byte_writer_u64(ByteWriter *w, uint64_t v)
{
	uint8_t *p = writer_room(w, 8);

	if (p == NULL)
		return;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (56 - 8 * i));
}

void
byte_writer_bytes(ByteWriter *w, const void *p, size_t n)
{
	uint8_t *dst = writer_room(w, n);

	if (dst != NULL && n > 0)
		memcpy(dst, p, n);
}

void
byte_writer_cstring(ByteWriter *w, const char *s)
{
	byte_writer_bytes(w, s, strlen(s) + 1);
}
