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
	BYTE_READER_INVALID			/* a value is not allowed (see reason) */
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

/* Mark the reader invalid (sticky) with a reason, at the current offset. */
void		byte_reader_invalid(ByteReader *r, const char *field, const char *reason);

/*
 * Finish decoding message msg_name: if the reader failed, or if bytes remain
 * (trailing garbage), fill err and return false.  The message names the
 * message, the field and the offset, e.g.
 * "Insert: truncated at byte 9 reading \"relid\"".
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
