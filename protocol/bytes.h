/*
 * protocol/bytes.h -- bounds-checked big-endian reader and writer.
 *
 * ByteReader's error is sticky (hiredis style): the first read past the end
 * records the field name and offset, sets failed, and every later read returns
 * zero without touching memory.  A decoder therefore reads straight through
 * and checks once at the end with byte_reader_finish().
 */
#ifndef PGSTREAM_PROTOCOL_BYTES_H
#define PGSTREAM_PROTOCOL_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/error.h"

/* A view into someone else's buffer; not NUL-terminated unless stated. */
typedef struct ByteView
{
	const uint8_t *ptr;
	size_t		len;
} ByteView;

typedef enum ByteReaderFailure
{
	BYTE_READER_OK = 0,
	BYTE_READER_TRUNCATED,		/* wanted more bytes than remain */
	BYTE_READER_INVALID,		/* a value is not allowed (see reason) */
	BYTE_READER_NOMEM			/* the caller's arena refused an allocation */
} ByteReaderFailure;

typedef struct ByteReader
{
	const uint8_t *buf;
	size_t		len;
	size_t		pos;
	ByteReaderFailure failure;	/* sticky */
	const char *failed_field;	/* static string naming the field */
	const char *reason;			/* static string, for BYTE_READER_INVALID */
	size_t		failed_offset;
} ByteReader;

void		byte_reader_init(ByteReader *r, const uint8_t *buf, size_t len);

static inline bool
byte_reader_failed(const ByteReader *r)
{
	return r->failure != BYTE_READER_OK;
}

static inline size_t
byte_reader_remaining(const ByteReader *r)
{
	return r->failure != BYTE_READER_OK ? 0 : r->len - r->pos;
}

uint8_t		byte_reader_u8(ByteReader *r, const char *field);
uint16_t	byte_reader_u16(ByteReader *r, const char *field);
uint32_t	byte_reader_u32(ByteReader *r, const char *field);
uint64_t	byte_reader_u64(ByteReader *r, const char *field);
int64_t		byte_reader_i64(ByteReader *r, const char *field);

/* n raw bytes as a view; an empty view on failure. */
ByteView	byte_reader_bytes(ByteReader *r, size_t n, const char *field);

/*
 * A NUL-terminated string; the view's len excludes the NUL, and ptr is a
 * valid C string (the NUL is inside the buffer).  Fails as truncated when no
 * NUL remains.
 */
ByteView	byte_reader_cstring(ByteReader *r, const char *field);

/*
 * Mark the reader invalid (sticky) with a reason, at the current offset.  The
 * first failure wins: a reader that has already failed is left as it is.
 */
void		byte_reader_invalid(ByteReader *r, const char *field, const char *reason);

/*
 * As byte_reader_invalid(), but report offset (normally where the offending
 * field started, so that "flags" read at byte 1 is reported at byte 1).
 */
void		byte_reader_invalid_at(ByteReader *r, size_t offset, const char *field,
								   const char *reason);

/* Mark the reader failed because memory for field could not be obtained. */
void		byte_reader_nomem(ByteReader *r, const char *field);

/*
 * Finish decoding message msg_name: if the reader failed, or if bytes remain
 * (trailing garbage), fill err and return false.  The message names the
 * message, the field and the offset, e.g.
 * "Insert: truncated at byte 9 reading \"relid\"" (SYNC_ERR_TRUNCATED),
 * "Commit: invalid \"flags\" at byte 1: must be 0" (SYNC_ERR_INVALID),
 * "Commit: 3 trailing bytes at byte 34" (SYNC_ERR_INVALID) or
 * "Relation: out of memory at byte 30 allocating \"columns\"" (SYNC_ERR_NOMEM).
 */
bool		byte_reader_finish(ByteReader *r, const char *msg_name, SyncError *err);

/* Fixed-buffer big-endian writer; overflow is sticky like the reader's. */
typedef struct ByteWriter
{
	uint8_t    *buf;
	size_t		cap;
	size_t		len;
	bool		overflow;
} ByteWriter;

void		byte_writer_init(ByteWriter *w, uint8_t *buf, size_t cap);
void		byte_writer_u8(ByteWriter *w, uint8_t v);
void		byte_writer_u16(ByteWriter *w, uint16_t v);
void		byte_writer_u32(ByteWriter *w, uint32_t v);
void		byte_writer_u64(ByteWriter *w, uint64_t v);
void		byte_writer_bytes(ByteWriter *w, const void *p, size_t n);
void		byte_writer_cstring(ByteWriter *w, const char *s);

#endif
