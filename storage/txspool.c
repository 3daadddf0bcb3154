/*
 * storage/txspool.c -- on-disk spool for one streamed transaction.
 *
 * FILE FORMAT
 *
 * All integers are little-endian uint32, written and read with shifts.
 *
 *   file header (16 bytes)
 *     0  8  magic "PGSSPOOL"
 *     8  4  format version (1)
 *    12  4  top-level xid
 *
 *   then blocks, back to back, up to the end of the file:
 *
 *   block header (28 bytes)
 *     0  4  magic "SBLK"
 *     4  4  flags: 1 = STORED (the payload is the raw bytes, not LZ4),
 *              2 = SINGLE (one oversized record, see below)
 *     8  4  number of records
 *    12  4  raw length (bytes once decompressed)
 *    16  4  stored length (bytes of payload that follow this header)
 *    20  4  SINGLE: the record's xid; otherwise 0
 *    24  4  checksum: XXH32 of the payload as stored, seeded with XXH32
 *           (seed 0) of header bytes 0..23, so it covers the header too
 *   block payload (stored length bytes)
 *     LZ4 block format (LZ4_compress_default), or the raw bytes when LZ4
 *     would not make them smaller
 *
 *   raw bytes of an ordinary block (at most SPOOL_BLOCK_BYTES): records
 *     0  4  xid the record belongs to (top-level or subtransaction)
 *     4  4  length n
 *     8  n  the record
 *
 *   raw bytes of a SINGLE block: exactly one record, with no framing; its
 *   xid is in the block header.  Records that do not fit in an empty
 *   ordinary block (n > SPOOL_BLOCK_BYTES - 8) get one.
 *
 * IN MEMORY
 *
 * The block being filled lives in s->block until it is full; then it is
 * compressed into s->zbuf and written at s->file_end.  Subtransaction aborts
 * need to know where each subxact's first record went: an index keeps, per
 * xid, the file offset of the block that received it, the offset inside that
 * block's raw bytes and the counters at that moment.  Aborting truncates the
 * file at that block, reloads the block's surviving prefix into s->block
 * and forgets every index entry made since (the index is a stack: entries
 * are added in order of first record and removed from the top).
 */
#include "storage/txspool.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/checksum.h"

_Static_assert(sizeof(off_t) >= 8, "spool files need a 64-bit off_t");
_Static_assert(SPOOL_RECORD_MAX < LZ4_MAX_INPUT_SIZE,
               "a record must fit in one LZ4 block");

#define FILE_MAGIC_BYTES 8
#define FILE_VERSION 1u
#define FILE_HEADER_BYTES 16

#define BLOCK_MAGIC 0x4B4C4253u /* "SBLK" */
#define BLOCK_HEADER_BYTES 28
#define BLOCK_CHECKED_BYTES 24 /* header bytes covered by the checksum */
#define BLOCK_STORED 0x1u
#define BLOCK_SINGLE 0x2u
#define BLOCK_FLAGS_KNOWN (BLOCK_STORED | BLOCK_SINGLE)

#define RECORD_HEADER_BYTES 8

#define NO_ENTRY SIZE_MAX

static const uint8_t file_magic[FILE_MAGIC_BYTES] = {'P', 'G', 'S', 'S',
                                                     'P', 'O', 'O', 'L'};

typedef struct BlockHeader
{
	uint32_t flags;
	uint32_t nrecords;
	uint32_t raw_len;
	uint32_t stored_len;
	Xid xid;
	uint32_t checksum;
} BlockHeader;

/* Where a subtransaction's first record went, and the counters before it. */
typedef struct SubxactEntry
{
	Xid xid;
	uint32_t raw_off;          /* offset in the block's raw bytes */
	uint32_t block_records;    /* records before it in its block */
	uint64_t block_off;        /* file offset of its block */
	uint64_t records_before;   /* records before it in the spool */
	uint64_t raw_bytes_before; /* spool_raw_bytes() before it */
} SubxactEntry;

/*
 * Entries in order of first record, plus a linear-probing hash table on xid
 * holding entry index + 1 (0 = empty slot).  Entries are only ever removed
 * from the top, newest first, and for linear probing that exactly undoes
 * their insertions, so no tombstones are needed.
 */
typedef struct SubxactIndex
{
	SubxactEntry *entries; /* owned */
	size_t nentries;
	size_t capacity;
	uint32_t *slots; /* owned */
	size_t nslots;   /* 0 or a power of two >= 2 * capacity */
	size_t last;     /* entry found by the previous lookup (a cache) */
} SubxactIndex;

struct Spool
{
	char *path; /* owned */
	int fd;
	Xid xid;
	bool broken;            /* sticky: an append or abort failed */
	uint8_t *block;         /* owned, SPOOL_BLOCK_BYTES */
	size_t block_len;       /* raw bytes buffered in block */
	uint32_t block_records; /* records buffered in block */
	uint8_t *zbuf;          /* owned, LZ4_COMPRESSBOUND(SPOOL_BLOCK_BYTES) */
	uint64_t file_end;      /* bytes written; the next block goes here */
	uint64_t file_records;  /* records in written blocks */
	uint64_t raw_bytes;     /* sum of record lengths */
	SubxactIndex index;
};

/* A block read back from the file. */
typedef struct LoadedBlock
{
	BlockHeader h;
	uint8_t *raw;   /* h.raw_len bytes */
	uint8_t *owned; /* SINGLE blocks only: buffer behind raw */
} LoadedBlock;

/* ---------------------------------------------------------------- bytes */

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
	       (uint32_t) p[3] << 24;
}

/* ---------------------------------------------------------------- index */

static size_t
index_home(const SubxactIndex *idx, Xid xid)
{
	return (size_t) ((uint32_t) (xid * 0x9E3779B1u)) & (idx->nslots - 1);
}

/* Slot holding xid, or the empty slot where it would go. */
static size_t
index_slot(const SubxactIndex *idx, Xid xid)
{
	size_t i = index_home(idx, xid);

	while (idx->slots[i] != 0 && idx->entries[idx->slots[i] - 1].xid != xid)
		i = (i + 1) & (idx->nslots - 1);
	return i;
}

/* Entry index of xid, or NO_ENTRY. */
static size_t
index_find(SubxactIndex *idx, Xid xid)
{
	uint32_t slot;

	if (idx->last < idx->nentries && idx->entries[idx->last].xid == xid)
		return idx->last;
	if (idx->nentries == 0)
		return NO_ENTRY;
	slot = idx->slots[index_slot(idx, xid)];
	if (slot == 0)
		return NO_ENTRY;
	idx->last = slot - 1;
	return idx->last;
}

/* Double the capacity and rehash; false on allocation failure. */
static bool
index_grow(SubxactIndex *idx)
{
	size_t capacity = idx->capacity == 0 ? 16 : idx->capacity * 2;
	SubxactEntry *entries;
	uint32_t *slots;

	if (capacity > UINT32_MAX / 4)
		return false;
	entries = realloc(idx->entries, capacity * sizeof(*entries));
	if (entries == NULL)
		return false;
	idx->entries = entries;
	slots = calloc(capacity * 2, sizeof(*slots));
	if (slots == NULL)
		return false;
	free(idx->slots);
	idx->slots = slots;
	idx->nslots = capacity * 2;
	idx->capacity = capacity;
	for (size_t i = 0; i < idx->nentries; i++)
		idx->slots[index_slot(idx, idx->entries[i].xid)] = (uint32_t) i + 1;
	return true;
}

/* Add e (whose xid must not be present); false on allocation failure. */
static bool
index_push(SubxactIndex *idx, const SubxactEntry *e)
{
	if (idx->nentries == idx->capacity && !index_grow(idx))
		return false;
	idx->entries[idx->nentries] = *e;
	idx->slots[index_slot(idx, e->xid)] = (uint32_t) ++idx->nentries;
	idx->last = idx->nentries - 1;
	return true;
}

/* Remove entries n and above, newest first. */
static void
index_truncate(SubxactIndex *idx, size_t n)
{
	while (idx->nentries > n)
	{
		idx->nentries--;
		idx->slots[index_slot(idx, idx->entries[idx->nentries].xid)] = 0;
	}
}

static void
index_term(SubxactIndex *idx)
{
	free(idx->entries);
	free(idx->slots);
	memset(idx, 0, sizeof(*idx));
}

/* ---------------------------------------------------------------- file I/O */

/* Fail with the errno left by a failed call on the spool file. */
static bool
io_error(const Spool *s, const char *verb, int errnum, SyncError *err)
{
	return sync_error_set(err, SYNC_ERR_IO,
	                      "could not %s spool file \"%s\": %s", verb, s->path,
	                      strerror(errnum));
}

/* Fail because the file does not hold what we wrote. */
static bool
corrupt(const Spool *s, uint64_t off, const char *what, SyncError *err)
{
	return sync_error_set(err, SYNC_ERR_IO,
	                      "spool file \"%s\" is corrupt at offset %llu: %s",
	                      s->path, (unsigned long long) off, what);
}

/* Write all of buf at off; a write of 0 bytes is reported as ENOSPC. */
static bool
write_at(const Spool *s, uint64_t off, const uint8_t *buf, size_t len,
         SyncError *err)
{
	while (len > 0)
	{
		ssize_t n = pwrite(s->fd, buf, len, (off_t) off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return io_error(s, "write", n < 0 ? errno : ENOSPC, err);
		buf += n;
		len -= (size_t) n;
		off += (uint64_t) n;
	}
	return true;
}

/* Read exactly len bytes at off; end of file is corruption. */
static bool
read_at(const Spool *s, uint64_t off, uint8_t *buf, size_t len, SyncError *err)
{
	while (len > 0)
	{
		ssize_t n = pread(s->fd, buf, len, (off_t) off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return io_error(s, "read", errno, err);
		if (n == 0)
			return corrupt(s, off, "unexpected end of file", err);
		buf += n;
		len -= (size_t) n;
		off += (uint64_t) n;
	}
	return true;
}

static bool
truncate_at(Spool *s, uint64_t off, SyncError *err)
{
	int rc;

	do
		rc = ftruncate(s->fd, (off_t) off);
	while (rc != 0 && errno == EINTR);
	if (rc != 0)
		return io_error(s, "truncate", errno, err);
	s->file_end = off;
	return true;
}

/* mkdir one level; an existing entry is fine (open reports a non-directory). */
static bool
make_dir(const char *path, SyncError *err)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return true;
	return sync_error_set(err, SYNC_ERR_IO,
	                      "could not create spool directory \"%s\": %s", path,
	                      strerror(errno));
}

/* mkdir -p dir, mode 0700. */
static bool
make_dirs(const char *dir, SyncError *err)
{
	char *copy = strdup(dir);
	bool ok = true;

	if (copy == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	for (char *p = copy + 1; ok && *p != '\0'; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		ok = make_dir(copy, err);
		*p = '/';
	}
	if (ok)
		ok = make_dir(copy, err);
	free(copy);
	return ok;
}

/* ---------------------------------------------------------------- blocks */

/* Serialise h into out, with the checksum over it and the stored payload. */
static void
block_header_encode(BlockHeader *h, const uint8_t *payload, uint8_t *out)
{
	put_u32(out, BLOCK_MAGIC);
	put_u32(out + 4, h->flags);
	put_u32(out + 8, h->nrecords);
	put_u32(out + 12, h->raw_len);
	put_u32(out + 16, h->stored_len);
	put_u32(out + 20, h->xid);
	h->checksum =
	    checksum_xxh32(payload, h->stored_len, checksum_xxh32(out, BLOCK_CHECKED_BYTES, 0));
	put_u32(out + 24, h->checksum);
}

/*
 * LZ4-compress raw into dst (LZ4_COMPRESSBOUND(raw_len) bytes) and set
 * h->stored_len.  Returns the payload to write: dst, or raw itself (with
 * BLOCK_STORED set) when compression would not make it smaller.
 */
static const uint8_t *
block_compress(const uint8_t *raw, uint8_t *dst, BlockHeader *h)
{
	int n =
	    LZ4_compress_default((const char *) raw, (char *) dst, (int) h->raw_len,
	                         LZ4_COMPRESSBOUND((int) h->raw_len));

	if (n <= 0 || (uint32_t) n >= h->raw_len)
	{
		h->flags |= BLOCK_STORED;
		h->stored_len = h->raw_len;
		return raw;
	}
	h->stored_len = (uint32_t) n;
	return dst;
}

/* Write header and payload at file_end and advance the counters. */
static bool
block_write(Spool *s, BlockHeader *h, const uint8_t *payload, SyncError *err)
{
	uint8_t hdr[BLOCK_HEADER_BYTES];

	block_header_encode(h, payload, hdr);
	if (!write_at(s, s->file_end, hdr, sizeof(hdr), err) ||
	    !write_at(s, s->file_end + sizeof(hdr), payload, h->stored_len, err))
		return false;
	s->file_end += sizeof(hdr) + h->stored_len;
	s->file_records += h->nrecords;
	return true;
}

/* Compress and write the buffered block, if any, and empty the buffer. */
static bool
flush_block(Spool *s, SyncError *err)
{
	BlockHeader h = {0};
	const uint8_t *payload;

	if (s->block_records == 0)
		return true;
	h.nrecords = s->block_records;
	h.raw_len = (uint32_t) s->block_len;
	payload = block_compress(s->block, s->zbuf, &h);
	if (!block_write(s, &h, payload, err))
		return false;
	s->block_len = 0;
	s->block_records = 0;
	return true;
}

/* Write an oversized record as a SINGLE block of its own. */
static bool
write_single(Spool *s, Xid xid, const uint8_t *data, size_t len, SyncError *err)
{
	BlockHeader h = {.flags = BLOCK_SINGLE, .nrecords = 1, .xid = xid};
	uint8_t *zbuf = malloc((size_t) LZ4_COMPRESSBOUND((int) len));
	bool ok;

	if (zbuf == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM,
		                      "out of memory compressing a record of %zu bytes",
		                      len);
	h.raw_len = (uint32_t) len;
	ok = block_write(s, &h, block_compress(data, zbuf, &h), err);
	free(zbuf);
	return ok;
}

/* Copy a record that fits into the buffered block. */
static void
buffer_record(Spool *s, Xid xid, const uint8_t *data, size_t len)
{
	uint8_t *p = s->block + s->block_len;

	put_u32(p, xid);
	put_u32(p + 4, (uint32_t) len);
	if (len > 0)
		memcpy(p + RECORD_HEADER_BYTES, data, len);
	s->block_len += RECORD_HEADER_BYTES + len;
	s->block_records++;
}

/* ------------------------------------------------------- reading blocks */

/* Check a decoded header against the format's limits and the file size. */
static const char *
block_header_problem(const BlockHeader *h, uint64_t off, uint64_t file_end)
{
	bool single = (h->flags & BLOCK_SINGLE) != 0;

	if ((h->flags & ~BLOCK_FLAGS_KNOWN) != 0)
		return "unknown block flags";
	if (single && (h->nrecords != 1 || h->raw_len > SPOOL_RECORD_MAX ||
	               h->raw_len <= SPOOL_BLOCK_BYTES - RECORD_HEADER_BYTES))
		return "bad oversized-record block header";
	if (!single &&
	    (h->xid != 0 || h->raw_len > SPOOL_BLOCK_BYTES || h->nrecords == 0 ||
	     h->nrecords > h->raw_len / RECORD_HEADER_BYTES))
		return "bad block header";
	if ((h->flags & BLOCK_STORED) && h->stored_len != h->raw_len)
		return "bad stored length in block header";
	if (!(h->flags & BLOCK_STORED) &&
	    (h->stored_len == 0 || h->stored_len >= h->raw_len))
		return "bad compressed length in block header";
	if (h->stored_len > file_end - off - BLOCK_HEADER_BYTES)
		return "block extends past the end of the file";
	return NULL;
}

/* Read and check the header of the block at off. */
static bool
read_block_header(const Spool *s, uint64_t off, BlockHeader *h, uint8_t *hdr,
                  SyncError *err)
{
	const char *problem;

	memset(h, 0, sizeof(*h));
	if (s->file_end - off < BLOCK_HEADER_BYTES)
		return corrupt(s, off, "block header cut short", err);
	if (!read_at(s, off, hdr, BLOCK_HEADER_BYTES, err))
		return false;
	if (get_u32(hdr) != BLOCK_MAGIC)
		return corrupt(s, off, "bad block magic", err);
	h->flags = get_u32(hdr + 4);
	h->nrecords = get_u32(hdr + 8);
	h->raw_len = get_u32(hdr + 12);
	h->stored_len = get_u32(hdr + 16);
	h->xid = get_u32(hdr + 20);
	h->checksum = get_u32(hdr + 24);
	problem = block_header_problem(h, off, s->file_end);
	return problem == NULL || corrupt(s, off, problem, err);
}

/*
 * Read the payload of the block at off, check it against the checksum
 * (hdr is the header as read) and decompress it into b->raw (b->h.raw_len
 * bytes).  zbuf (b->h.stored_len bytes) receives compressed payloads;
 * STORED ones are read straight into b->raw.
 */
static bool
read_block_payload(const Spool *s, uint64_t off, const uint8_t *hdr,
                   const LoadedBlock *b, uint8_t *zbuf, SyncError *err)
{
	const BlockHeader *h = &b->h;
	uint8_t *stored = (h->flags & BLOCK_STORED) ? b->raw : zbuf;
	int n;

	if (!read_at(s, off + BLOCK_HEADER_BYTES, stored, h->stored_len, err))
		return false;
	if (checksum_xxh32(stored, h->stored_len, checksum_xxh32(hdr, BLOCK_CHECKED_BYTES, 0)) !=
	    h->checksum)
		return corrupt(s, off, "checksum mismatch", err);
	if (h->flags & BLOCK_STORED)
		return true;
	n = LZ4_decompress_safe((const char *) zbuf, (char *) b->raw,
	                        (int) h->stored_len, (int) h->raw_len);
	if (n < 0 || (uint32_t) n != h->raw_len)
		return corrupt(
		    s, off, "LZ4 data does not decompress to the block's length", err);
	return true;
}

/*
 * Read, decompress and verify the block at off.  Ordinary blocks land in
 * s->block (whose buffered content is lost); SINGLE blocks get buffers of
 * their own, b->owned, which the caller frees.
 */
static bool
load_block(Spool *s, uint64_t off, LoadedBlock *b, SyncError *err)
{
	uint8_t hdr[BLOCK_HEADER_BYTES];
	uint8_t *zbuf = s->zbuf;
	bool ok;

	b->owned = NULL;
	b->raw = s->block;
	if (!read_block_header(s, off, &b->h, hdr, err))
		return false;
	if (b->h.flags & BLOCK_SINGLE)
	{
		bool stored = (b->h.flags & BLOCK_STORED) != 0;

		b->raw = b->owned = malloc(b->h.raw_len);
		zbuf = stored ? NULL : malloc(b->h.stored_len);
		if (b->raw == NULL || (zbuf == NULL && !stored))
		{
			free(zbuf);
			return sync_error_set(
			    err, SYNC_ERR_NOMEM,
			    "out of memory reading a spooled record of %u bytes",
			    b->h.raw_len);
		}
	}
	ok = read_block_payload(s, off, hdr, b, zbuf, err);
	if (zbuf != s->zbuf)
		free(zbuf);
	return ok;
}

/* True if the raw bytes of an ordinary block split into h->nrecords records. */
static bool
records_fill_block(const BlockHeader *h, const uint8_t *raw)
{
	size_t off = 0;
	uint32_t n = 0;

	while (h->raw_len - off >= RECORD_HEADER_BYTES)
	{
		uint32_t len = get_u32(raw + off + 4);

		if (len > h->raw_len - off - RECORD_HEADER_BYTES)
			return false;
		off += RECORD_HEADER_BYTES + len;
		n++;
	}
	return off == h->raw_len && n == h->nrecords;
}

/* ---------------------------------------------------------------- public */

/* Allocate s's buffers and path. */
static bool
spool_alloc(Spool *s, const char *dir, SyncError *err)
{
	size_t size = strlen(dir) + sizeof("/xact-4294967295.spool");

	s->path = malloc(size);
	s->block = malloc(SPOOL_BLOCK_BYTES);
	s->zbuf = malloc(LZ4_COMPRESSBOUND(SPOOL_BLOCK_BYTES));
	if (s->path == NULL || s->block == NULL || s->zbuf == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	(void) snprintf(s->path, size, "%s/xact-%u.spool", dir, (unsigned) s->xid);
	return true;
}

/* Open (truncating) the spool file and write its header. */
static bool
spool_open(Spool *s, SyncError *err)
{
	uint8_t hdr[FILE_HEADER_BYTES];

	s->fd = open(s->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (s->fd < 0)
		return io_error(s, "create", errno, err);
	memcpy(hdr, file_magic, FILE_MAGIC_BYTES);
	put_u32(hdr + 8, FILE_VERSION);
	put_u32(hdr + 12, s->xid);
	if (!write_at(s, 0, hdr, sizeof(hdr), err))
		return false;
	s->file_end = sizeof(hdr);
	return true;
}

Spool *
spool_create(const char *dir, Xid xid, SyncError *err)
{
	Spool *s;

	if (dir == NULL || dir[0] == '\0')
	{
		sync_error_set(err, SYNC_ERR_USAGE, "spool directory is empty");
		return NULL;
	}
	if (!make_dirs(dir, err))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
	{
		sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		return NULL;
	}
	s->fd = -1;
	s->xid = xid;
	if (!spool_alloc(s, dir, err) || !spool_open(s, err))
	{
		spool_destroy(s, s->fd >= 0);
		return NULL;
	}
	return s;
}

static bool
check_usable(const Spool *s, SyncError *err)
{
	if (!s->broken)
		return true;
	return sync_error_set(
	    err, SYNC_ERR_IO,
	    "spool file \"%s\" is unusable after an earlier error", s->path);
}

/*
 * If no record is tagged xid yet, remember the current position: the record
 * about to be stored goes there.
 */
static bool
note_first_record(Spool *s, Xid xid, SyncError *err)
{
	SubxactEntry e = {
	    .xid = xid,
	    .raw_off = (uint32_t) s->block_len,
	    .block_records = s->block_records,
	    .block_off = s->file_end,
	    .records_before = s->file_records + s->block_records,
	    .raw_bytes_before = s->raw_bytes,
	};

	if (index_find(&s->index, xid) != NO_ENTRY || index_push(&s->index, &e))
		return true;
	return sync_error_set(err, SYNC_ERR_NOMEM,
	                      "out of memory indexing subtransaction %u",
	                      (unsigned) xid);
}

/* Store one validated record; on failure the spool state is undefined. */
static bool
append_record(Spool *s, Xid xid, const uint8_t *data, size_t len,
              SyncError *err)
{
	bool single = len > SPOOL_BLOCK_BYTES - RECORD_HEADER_BYTES;

	if (s->block_len + RECORD_HEADER_BYTES + len > SPOOL_BLOCK_BYTES &&
	    !flush_block(s, err))
		return false;
	if (!note_first_record(s, xid, err))
		return false;
	if (single && !write_single(s, xid, data, len, err))
		return false;
	if (!single)
		buffer_record(s, xid, data, len);
	s->raw_bytes += len;
	return true;
}

bool
spool_append(Spool *s, Xid subxid, const uint8_t *data, size_t len,
             SyncError *err)
{
	if (!check_usable(s, err))
		return false;
	if (len > SPOOL_RECORD_MAX)
		return sync_error_set(
		    err, SYNC_ERR_INVALID,
		    "record of %zu bytes exceeds the spool limit of %zu bytes", len,
		    SPOOL_RECORD_MAX);
	if (data == NULL && len > 0)
		return sync_error_set(err, SYNC_ERR_INTERNAL,
		                      "spool_append called with no data");
	if (append_record(s, subxid, data, len, err))
		return true;
	s->broken = true;
	return sync_error_context(err, "spooling transaction %u",
	                          (unsigned) s->xid);
}

/* Cut the spool back to just before entry e's record. */
static bool
rewind_to(Spool *s, const SubxactEntry *e, SyncError *err)
{
	LoadedBlock b;

	if (e->block_off < s->file_end)
	{
		if (e->raw_off > 0)
		{
			/* The block is an ordinary one: it holds earlier records. */
			if (!load_block(s, e->block_off, &b, err))
			{
				free(b.owned);
				return false;
			}
			free(b.owned);
			if ((b.h.flags & BLOCK_SINGLE) || e->raw_off > b.h.raw_len ||
			    e->block_records > b.h.nrecords)
				return corrupt(s, e->block_off,
				               "block does not match the subtransaction index",
				               err);
		}
		if (!truncate_at(s, e->block_off, err))
			return false;
	}
	s->block_len = e->raw_off;
	s->block_records = e->block_records;
	s->file_records = e->records_before - e->block_records;
	s->raw_bytes = e->raw_bytes_before;
	return true;
}

bool
spool_abort_subxact(Spool *s, Xid subxid, SyncError *err)
{
	size_t i;

	if (!check_usable(s, err))
		return false;
	i = index_find(&s->index, subxid);
	if (i == NO_ENTRY)
		return true;
	if (!rewind_to(s, &s->index.entries[i], err))
	{
		s->broken = true;
		return sync_error_context(
		    err, "aborting subtransaction %u of transaction %u",
		    (unsigned) subxid, (unsigned) s->xid);
	}
	index_truncate(&s->index, i);
	return true;
}

/* The file must be exactly as long as what we wrote, with our header. */
static bool
check_file(const Spool *s, SyncError *err)
{
	struct stat st;
	uint8_t hdr[FILE_HEADER_BYTES];

	if (fstat(s->fd, &st) != 0)
		return io_error(s, "stat", errno, err);
	if ((uint64_t) st.st_size != s->file_end)
		return sync_error_set(
		    err, SYNC_ERR_IO,
		    "spool file \"%s\" is corrupt: it has %lld bytes, expected %llu",
		    s->path, (long long) st.st_size, (unsigned long long) s->file_end);
	if (!read_at(s, 0, hdr, sizeof(hdr), err))
		return false;
	if (memcmp(hdr, file_magic, FILE_MAGIC_BYTES) != 0 ||
	    get_u32(hdr + 8) != FILE_VERSION || get_u32(hdr + 12) != s->xid)
		return corrupt(s, 0, "bad file header", err);
	return true;
}

/* Pass the records of a loaded block to fn, in order. */
static bool
deliver_block(const Spool *s, uint64_t off, const LoadedBlock *b,
              SpoolReplayFn fn, void *arg, SyncError *err)
{
	size_t pos = 0;

	if (b->h.flags & BLOCK_SINGLE)
		return fn(b->raw, b->h.raw_len, arg, err);
	if (!records_fill_block(&b->h, b->raw))
		return corrupt(s, off, "records do not fill the block", err);
	while (pos < b->h.raw_len)
	{
		size_t len = get_u32(b->raw + pos + 4);

		if (!fn(b->raw + pos + RECORD_HEADER_BYTES, len, arg, err))
			return false;
		pos += RECORD_HEADER_BYTES + len;
	}
	return true;
}

/* Load the block at *off, deliver it and move *off and *records past it. */
static bool
replay_block(Spool *s, uint64_t *off, uint64_t *records, SpoolReplayFn fn,
             void *arg, SyncError *err)
{
	LoadedBlock b;
	bool ok;

	if (!load_block(s, *off, &b, err))
	{
		free(b.owned);
		return false;
	}
	ok = deliver_block(s, *off, &b, fn, arg, err);
	free(b.owned);
	*off += BLOCK_HEADER_BYTES + b.h.stored_len;
	*records += b.h.nrecords;
	return ok;
}

bool
spool_replay(Spool *s, SpoolReplayFn fn, void *arg, SyncError *err)
{
	uint64_t off = FILE_HEADER_BYTES;
	uint64_t records = 0;

	if (!check_usable(s, err))
		return false;
	if (!flush_block(s, err))
	{
		s->broken = true;
		return false;
	}
	if (!check_file(s, err))
		return false;
	while (off < s->file_end)
		if (!replay_block(s, &off, &records, fn, arg, err))
			return false;
	if (records != s->file_records)
		return corrupt(s, off, "record count differs from what was written",
		               err);
	return true;
}

uint64_t
spool_record_count(const Spool *s)
{
	return s->file_records + s->block_records;
}

uint64_t
spool_raw_bytes(const Spool *s)
{
	return s->raw_bytes;
}

uint64_t
spool_file_bytes(const Spool *s)
{
	return s->file_end;
}

const char *
spool_path(const Spool *s)
{
	return s->path;
}

void
spool_destroy(Spool *s, bool remove_file)
{
	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	if (remove_file && s->path != NULL)
		unlink(s->path);
	index_term(&s->index);
	free(s->zbuf);
	free(s->block);
	free(s->path);
	free(s);
}
