/*
 * storage/walspool.c -- durable on-disk spool of replication messages.
 *
 * FILE FORMAT
 *
 * DIR holds segment files named <segno>.seg, segno as 16 lower-case hex
 * digits, numbered increasingly from 1, plus an empty file "lock" that the
 * open spool holds with flock() so that two processes never share DIR.  A
 * segment is a sequence of frames, back to back, with no file header.  All
 * integers are little-endian, written and read with shifts.
 *
 *   frame header (36 bytes)
 *     0  4  magic "PGWF"
 *     4  4  flags: 1 = LZ4 (payload is an LZ4 block, else the raw bytes),
 *              2 = BOUNDARY (the data up to this frame's end is outside any
 *              transaction)
 *     8  4  raw length (bytes once decompressed, at most 8 MB)
 *    12  4  stored length (bytes of payload that follow this header)
 *    16  4  number of entries in the raw bytes
 *    20  8  last_commit_end: the highest commit end LSN of all records so far
 *    28  4  checksum: XXH32 of the stored payload, seeded with XXH32 (seed 0)
 *           of header bytes 0..27, so it covers the header too
 *    32  4  header checksum: XXH32 (seed 0) of header bytes 0..31, checked
 *           before the lengths are trusted (a damaged length must not make a
 *           frame in the middle look like a torn tail)
 *   frame payload (stored length bytes)
 *     LZ4 block format (LZ4_compress_default) when that is smaller than the
 *     raw bytes, otherwise the raw bytes
 *
 *   raw bytes: entries, back to back
 *     0  8  lsn of the record
 *     8  4  piece length n (bits 0..29) and flags: bit 31 MORE (the record
 *           continues in the next entry), bit 30 CONT (this entry continues
 *           the previous one)
 *    12  n  the record's bytes, or one piece of them
 *
 * A record that does not fit in an empty frame is split over consecutive
 * frames (MORE/CONT); such a frame is written with BOUNDARY clear.  A new
 * segment starts only after a frame the caller flushed "clean" (nothing
 * open, not even a streamed transaction: see walspool_flush), or at the
 * first frame written after open, so never in the middle of a record or a
 * transaction.  The caller deletes a segment only once everything in it is
 * applied and nothing is open.  An empty frame (no entries) records a new
 * boundary flag or last_commit_end.  Cleanness is not stored: after a
 * restart nothing before counts as open (the source sends partly streamed
 * transactions again from their beginning).
 *
 * DURABILITY AND RECOVERY
 *
 * Each frame is written with one pwrite loop at the flushed end of the
 * current segment and fsync'ed before walspool_flush returns; creating and
 * removing segments fsyncs DIR.  A failed write is truncated away.  After a
 * crash only the last frame of the last segment can be incomplete.  Open
 * scans every frame; in the last segment a bad frame counts as its torn tail
 * when less than a header is left, when its (intact) header says it runs
 * past the end of the file, or when only zero bytes follow its damaged part
 * (the payload when the header is intact, else the header); anything else is
 * corruption and an error.  The spool is then cut back to the end of the
 * last BOUNDARY frame.
 *
 * THREADS
 *
 * The writer owns the current segment's write descriptor and the open frame.
 * The segment list (number and flushed length of each segment) is shared
 * under a mutex; a cursor reads, with its own descriptor, only bytes below
 * the flushed length it saw under that mutex.  Segment files are opened and
 * unlinked under the mutex so that a listed segment always exists.
 */
#include "storage/walspool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "protocol/checksum.h"

_Static_assert(sizeof(off_t) >= 8, "spool segments need a 64-bit off_t");

#define MB ((uint64_t) 1024 * 1024)

#define FRAME_MAGIC 0x46574750u /* "PGWF" */
#define FRAME_HEADER_BYTES 36
#define FRAME_CHECKED_BYTES 28	/* header bytes covered by the checksum */
#define FRAME_HEADER_CHECKED_BYTES 32	/* ... and by the header checksum */
#define FRAME_LZ4 0x1u
#define FRAME_BOUNDARY 0x2u
#define FRAME_FLAGS_KNOWN (FRAME_LZ4 | FRAME_BOUNDARY)
#define FRAME_RAW_MAX ((size_t) 8 * 1024 * 1024)

#define ENTRY_HEADER_BYTES 12
#define ENTRY_MORE 0x80000000u
#define ENTRY_CONT 0x40000000u
#define ENTRY_LEN_MASK 0x3FFFFFFFu

#define RECORD_MAX ((size_t) 1024 * 1024 * 1024)
#define DEFAULT_SEGMENT_BYTES (64 * MB)
#define DEFAULT_MIN_FREE_BYTES (512 * MB)
#define FIRST_SEGNO 1
#define SEGMENT_NAME_BYTES 21	/* 16 hex digits, ".seg", NUL */
#define LOCK_NAME "lock"
#define FULL_HINT "free disk space or point --spool at a larger filesystem; " \
	"nothing was lost: sync resumes from the spool"

typedef struct FrameHeader
{
	uint32_t	flags;
	uint32_t	raw_len;
	uint32_t	stored_len;
	uint32_t	entries;
	Lsn			last_commit_end;
	uint32_t	checksum;
} FrameHeader;

typedef struct Segment
{
	uint64_t	segno;
	uint64_t	bytes;			/* flushed (valid) length */
} Segment;

struct WalSpool
{
	char	   *dir;			/* owned */
	int			dir_fd;
	int			lock_fd;
	uint64_t	segment_bytes;
	uint64_t	min_free_bytes;

	/* shared with cursors and release_before, under mu */
	pthread_mutex_t mu;
	Segment    *segs;			/* owned; ascending, the last is written */
	size_t		nsegs;
	size_t		segs_cap;
	_Atomic uint64_t disk_bytes;

	/* writer only */
	int			fd;				/* current (last) segment, write-only */
	uint64_t	cur_segno;
	uint64_t	cur_len;		/* flushed length of the current segment */
	uint8_t    *raw;			/* owned; open frame, FRAME_RAW_MAX bytes */
	size_t		raw_len;
	uint32_t	entries;
	bool		open_continues; /* open frame starts inside a record */
	uint8_t    *zbuf;			/* owned; header + stored payload */
	size_t		zbuf_cap;
	bool		last_boundary;	/* as recorded by the last frame */
	bool		last_clean;		/* the last frame was flushed clean */
	Lsn			last_commit_end;
	bool		broken;
};

struct WalSpoolCursor
{
	WalSpool   *s;
	uint64_t	segno;
	int			fd;
	uint64_t	off;			/* next frame in the segment */
	uint8_t    *stored;			/* owned */
	size_t		stored_cap;
	uint8_t    *raw;			/* owned; the current frame, decompressed */
	size_t		raw_cap;
	size_t		raw_len;
	size_t		pos;			/* next entry in raw */
	uint8_t    *rec;			/* owned; a record split over frames */
	size_t		rec_len;
	size_t		rec_cap;
	bool		in_record;
	Lsn			rec_lsn;
};

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

static void
put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t) v);
	put_u32(p + 4, (uint32_t) (v >> 32));
}

static uint64_t
get_u64(const uint8_t *p)
{
	return (uint64_t) get_u32(p) | (uint64_t) get_u32(p + 4) << 32;
}

/* ---------------------------------------------------------------- frames */

static uint32_t
frame_checksum(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
	return checksum_xxh32(payload, len, checksum_xxh32(hdr, FRAME_CHECKED_BYTES, 0));
}

/* Serialise h into out (the payload follows at out + FRAME_HEADER_BYTES). */
static void
frame_header_encode(FrameHeader *h, uint8_t *out)
{
	put_u32(out, FRAME_MAGIC);
	put_u32(out + 4, h->flags);
	put_u32(out + 8, h->raw_len);
	put_u32(out + 12, h->stored_len);
	put_u32(out + 16, h->entries);
	put_u64(out + 20, h->last_commit_end);
	h->checksum = frame_checksum(out, out + FRAME_HEADER_BYTES, h->stored_len);
	put_u32(out + 28, h->checksum);
	put_u32(out + 32, checksum_xxh32(out, FRAME_HEADER_CHECKED_BYTES, 0));
}

static size_t
stored_max(void)
{
	return (size_t) LZ4_compressBound((int) FRAME_RAW_MAX);
}

/* NULL if the header is well-formed, else what is wrong with it. */
static const char *
frame_header_decode(const uint8_t *in, FrameHeader *h)
{
	if (get_u32(in) != FRAME_MAGIC)
		return "bad frame magic";
	if (get_u32(in + 32) != checksum_xxh32(in, FRAME_HEADER_CHECKED_BYTES, 0))
		return "frame header checksum mismatch";
	h->flags = get_u32(in + 4);
	h->raw_len = get_u32(in + 8);
	h->stored_len = get_u32(in + 12);
	h->entries = get_u32(in + 16);
	h->last_commit_end = get_u64(in + 20);
	h->checksum = get_u32(in + 28);
	if ((h->flags & ~FRAME_FLAGS_KNOWN) != 0)
		return "unknown frame flags";
	if (h->raw_len > FRAME_RAW_MAX || h->stored_len > stored_max())
		return "frame length out of range";
	if ((h->flags & FRAME_LZ4) ? h->stored_len >= h->raw_len
		: h->stored_len != h->raw_len)
		return "stored length does not match raw length";
	if (h->entries > h->raw_len / ENTRY_HEADER_BYTES ||
		(h->entries == 0) != (h->raw_len == 0))
		return "entry count does not match raw length";
	return NULL;
}

static uint64_t
frame_bytes(const FrameHeader *h)
{
	return FRAME_HEADER_BYTES + (uint64_t) h->stored_len;
}

/* ---------------------------------------------------------------- file I/O */

static void
segment_name(uint64_t segno, char *out)
{
	(void) snprintf(out, SEGMENT_NAME_BYTES, "%016" PRIx64 ".seg", segno);
}

/* Segment number of a file name "<16 hex digits>.seg", or 0. */
static uint64_t
segment_parse(const char *name)
{
	uint64_t	segno = 0;

	if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
		return 0;
	for (int i = 0; i < 16; i++)
	{
		char		ch = name[i];
		int			d = ch >= '0' && ch <= '9' ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;

		if (d < 0)
			return 0;
		segno = segno << 4 | (uint64_t) d;
	}
	return segno;
}

/* Fail with errnum from an operation on segment segno. */
static bool
segment_error(const WalSpool *s, uint64_t segno, const char *verb, int errnum,
			  SyncError *err)
{
	char		name[SEGMENT_NAME_BYTES];

	segment_name(segno, name);
	return sync_error_set(err, SYNC_ERR_IO,
						  "could not %s spool segment \"%s/%s\": %s", verb,
						  s->dir, name, strerror(errnum));
}

/* A write failed with ENOSPC or EDQUOT: say what to do. */
static bool
full_error(const WalSpool *s, uint64_t segno, int errnum, SyncError *err)
{
	char		name[SEGMENT_NAME_BYTES];

	segment_name(segno, name);
	return sync_error_set(err, SYNC_ERR_IO,
						  "could not write spool segment \"%s/%s\": %s; %s",
						  s->dir, name, strerror(errnum), FULL_HINT);
}

static bool
corrupt_error(const WalSpool *s, uint64_t segno, uint64_t off,
			  const char *what, SyncError *err)
{
	char		name[SEGMENT_NAME_BYTES];

	segment_name(segno, name);
	return sync_error_set(err, SYNC_ERR_IO,
						  "spool segment \"%s/%s\" is corrupt at offset %" PRIu64
						  ": %s", s->dir, name, off, what);
}

static bool
dir_error(const WalSpool *s, const char *verb, int errnum, SyncError *err)
{
	return sync_error_set(err, SYNC_ERR_IO,
						  "could not %s spool directory \"%s\": %s", verb,
						  s->dir, strerror(errnum));
}

/* Write all of buf at off; 0 or errno (a write of 0 bytes counts as ENOSPC). */
static int
write_all(int fd, uint64_t off, const uint8_t *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = pwrite(fd, buf, len, (off_t) off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : ENOSPC;
		buf += n;
		len -= (size_t) n;
		off += (uint64_t) n;
	}
	return 0;
}

/* Read up to len bytes at off, stopping early only at end of file. */
static ssize_t
read_full(int fd, uint64_t off, uint8_t *buf, size_t len)
{
	size_t		done = 0;

	while (done < len)
	{
		ssize_t		n = pread(fd, buf + done, len - done, (off_t) (off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t) n;
	}
	return (ssize_t) done;
}

static int
fsync_retry(int fd)
{
	int			rc;

	do
		rc = fsync(fd);
	while (rc != 0 && errno == EINTR);
	return rc == 0 ? 0 : errno;
}

static int
truncate_retry(int fd, uint64_t len)
{
	int			rc;

	do
		rc = ftruncate(fd, (off_t) len);
	while (rc != 0 && errno == EINTR);
	return rc == 0 ? 0 : errno;
}

static int
segment_open(const WalSpool *s, uint64_t segno, int flags)
{
	char		name[SEGMENT_NAME_BYTES];

	segment_name(segno, name);
	return openat(s->dir_fd, name, flags | O_CLOEXEC, 0600);
}

/* ---------------------------------------------------------------- segment list */

/* Append a segment to the list; the caller holds mu or is alone. */
static bool
segs_push(WalSpool *s, uint64_t segno, uint64_t bytes, SyncError *err)
{
	if (s->nsegs == s->segs_cap)
	{
		size_t		cap = s->segs_cap == 0 ? 16 : s->segs_cap * 2;
		Segment    *p = realloc(s->segs, cap * sizeof(*p));

		if (p == NULL)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		s->segs = p;
		s->segs_cap = cap;
	}
	s->segs[s->nsegs].segno = segno;
	s->segs[s->nsegs].bytes = bytes;
	s->nsegs++;
	return true;
}

/* Index of segno in the list, or nsegs; the caller holds mu. */
static size_t
segs_find(const WalSpool *s, uint64_t segno)
{
	for (size_t i = 0; i < s->nsegs; i++)
		if (s->segs[i].segno == segno)
			return i;
	return s->nsegs;
}

static int
segno_cmp(const void *a, const void *b)
{
	uint64_t	x = ((const Segment *) a)->segno;
	uint64_t	y = ((const Segment *) b)->segno;

	return x < y ? -1 : x > y;
}

/* List DIR's segment files into s->segs, ascending, lengths unknown (0). */
static bool
segs_list(WalSpool *s, SyncError *err)
{
	int			fd = dup(s->dir_fd);
	DIR		   *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;
	bool		ok = true;

	if (d == NULL)
	{
		int			errnum = errno;

		if (fd >= 0)
			close(fd);
		return dir_error(s, "read", errnum, err);
	}
	rewinddir(d);
	while (ok && (de = readdir(d)) != NULL)
	{
		uint64_t	segno = segment_parse(de->d_name);

		if (segno != 0)
			ok = segs_push(s, segno, 0, err);
	}
	closedir(d);
	if (ok && s->nsegs > 1)
		qsort(s->segs, s->nsegs, sizeof(Segment), segno_cmp);
	return ok;
}

/* ---------------------------------------------------------------- recovery */

/* Where open cuts the spool: the end of the last BOUNDARY frame. */
typedef struct CutPoint
{
	size_t		index;			/* into s->segs */
	uint64_t	off;
	Lsn			resume_lsn;
} CutPoint;

/* Is every byte of [from, to) zero?  -1 on a read error. */
static int
rest_is_zero(int fd, uint64_t from, uint64_t to, uint8_t *buf, size_t cap)
{
	while (from < to)
	{
		size_t		want = (size_t) (to - from < cap ? to - from : cap);
		ssize_t		n = read_full(fd, from, buf, want);

		if (n < 0)
			return -1;
		if (n == 0)
			return 1;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != 0)
				return 0;
		from += (uint64_t) n;
	}
	return 1;
}

/*
 * Check the frame at off of a segment of size bytes, reading it into buf
 * (s->zbuf).  NULL if it is valid (*h filled in), else what is wrong and, in
 * *zero_from, where the bytes that must all be zero for it to count as a torn
 * tail start (size when it is torn by the end of the file).
 */
static const char *
frame_check(WalSpool *s, int fd, uint64_t off, uint64_t size, FrameHeader *h,
			uint64_t *zero_from)
{
	uint8_t    *buf = s->zbuf;
	const char *problem;

	*zero_from = size;
	if (size - off < FRAME_HEADER_BYTES)
		return "incomplete frame header";
	*zero_from = off;
	if (read_full(fd, off, buf, FRAME_HEADER_BYTES) != FRAME_HEADER_BYTES)
		return "could not read frame header";
	if ((problem = frame_header_decode(buf, h)) != NULL)
		return problem;
	*zero_from = size;
	if (frame_bytes(h) > size - off)
		return "incomplete frame";
	*zero_from = off;
	if (read_full(fd, off + FRAME_HEADER_BYTES, buf + FRAME_HEADER_BYTES,
				  h->stored_len) != (ssize_t) h->stored_len)
		return "could not read frame payload";
	*zero_from = off + frame_bytes(h);
	if (frame_checksum(buf, buf + FRAME_HEADER_BYTES, h->stored_len) !=
		h->checksum)
		return "frame checksum mismatch";
	return NULL;
}

/*
 * A bad frame at off: a torn tail of the last segment (return true, the
 * segment's valid length is off) or an error.
 */
static bool
bad_frame(WalSpool *s, size_t index, int fd, uint64_t off, uint64_t zero_from,
		  uint64_t size, const char *problem, SyncError *err)
{
	int			zero;

	if (index + 1 < s->nsegs)
		return corrupt_error(s, s->segs[index].segno, off, problem, err);
	zero = rest_is_zero(fd, zero_from, size, s->zbuf, s->zbuf_cap);
	if (zero < 0)
		return segment_error(s, s->segs[index].segno, "read", errno, err);
	if (zero == 0)
		return corrupt_error(s, s->segs[index].segno, off, problem, err);
	return true;
}

/* Validate the frames of segment index, set its valid length, move *cut. */
static bool
scan_fd(WalSpool *s, size_t index, int fd, CutPoint *cut, SyncError *err)
{
	struct stat st;
	uint64_t	off = 0;
	uint64_t	size;

	if (fstat(fd, &st) != 0)
		return segment_error(s, s->segs[index].segno, "stat", errno, err);
	size = (uint64_t) st.st_size;
	while (off < size)
	{
		FrameHeader h;
		uint64_t	zero_from;
		const char *problem = frame_check(s, fd, off, size, &h, &zero_from);

		if (problem != NULL)
		{
			if (!bad_frame(s, index, fd, off, zero_from, size, problem, err))
				return false;
			break;
		}
		off += frame_bytes(&h);
		if (h.flags & FRAME_BOUNDARY)
			*cut = (CutPoint) {index, off, h.last_commit_end};
	}
	s->segs[index].bytes = off;
	return true;
}

static bool
scan_segment(WalSpool *s, size_t index, CutPoint *cut, SyncError *err)
{
	int			fd = segment_open(s, s->segs[index].segno, O_RDONLY);
	bool		ok;

	if (fd < 0)
		return segment_error(s, s->segs[index].segno, "open", errno, err);
	ok = scan_fd(s, index, fd, cut, err);
	close(fd);
	return ok;
}

/* Truncate segment index to len bytes and fsync it. */
static bool
truncate_segment(WalSpool *s, size_t index, uint64_t len, SyncError *err)
{
	uint64_t	segno = s->segs[index].segno;
	int			fd = segment_open(s, segno, O_WRONLY);
	int			rc;

	if (fd < 0)
		return segment_error(s, segno, "open", errno, err);
	rc = truncate_retry(fd, len);
	if (rc == 0)
		rc = fsync_retry(fd);
	close(fd);
	if (rc != 0)
		return segment_error(s, segno, "truncate", rc, err);
	s->segs[index].bytes = len;
	return true;
}

/* Remove every segment after cut, newest first, and cut the cut segment. */
static bool
apply_cut(WalSpool *s, const CutPoint *cut, SyncError *err)
{
	bool		removed = s->nsegs > cut->index + 1;

	if (s->nsegs == 0)
		return true;
	while (s->nsegs > cut->index + 1)
	{
		char		name[SEGMENT_NAME_BYTES];

		segment_name(s->segs[s->nsegs - 1].segno, name);
		if (unlinkat(s->dir_fd, name, 0) != 0)
			return segment_error(s, s->segs[s->nsegs - 1].segno, "remove",
								 errno, err);
		s->nsegs--;
	}
	if (removed && fsync_retry(s->dir_fd) != 0)
		return dir_error(s, "fsync", errno, err);
	return truncate_segment(s, cut->index, cut->off, err);
}

/* Validate all segments and cut the spool back to its last boundary. */
static bool
recover(WalSpool *s, Lsn *resume_lsn, SyncError *err)
{
	CutPoint	cut = {0, 0, 0};

	for (size_t i = 0; i < s->nsegs; i++)
		if (!scan_segment(s, i, &cut, err))
			return false;
	if (!apply_cut(s, &cut, err))
		return false;
	*resume_lsn = cut.resume_lsn;
	s->last_commit_end = cut.resume_lsn;
	return true;
}

/* ---------------------------------------------------------------- open */

static bool
open_dir(WalSpool *s, SyncError *err)
{
	if (mkdir(s->dir, 0700) != 0 && errno != EEXIST)
		return dir_error(s, "create", errno, err);
	s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0)
		return dir_error(s, "open", errno, err);
	s->lock_fd = openat(s->dir_fd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0)
		return dir_error(s, "create the lock file in", errno, err);
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
	{
		if (errno == EWOULDBLOCK)
			return sync_error_set(err, SYNC_ERR_USAGE,
								  "spool directory \"%s\" is in use by another pgstream",
								  s->dir);
		return dir_error(s, "lock", errno, err);
	}
	return true;
}

/* Resolve the options' defaults (min_free_bytes needs the filesystem size). */
static bool
apply_options(WalSpool *s, const WalSpoolOptions *opts, SyncError *err)
{
	struct statvfs vfs;
	uint64_t	two_percent;

	s->segment_bytes = opts->segment_bytes ? opts->segment_bytes
		: DEFAULT_SEGMENT_BYTES;
	s->min_free_bytes = opts->min_free_bytes;
	if (s->min_free_bytes != 0)
		return true;
	if (fstatvfs(s->dir_fd, &vfs) != 0)
		return dir_error(s, "stat the filesystem of", errno, err);
	two_percent = (uint64_t) vfs.f_blocks * vfs.f_frsize / 50;
	s->min_free_bytes = two_percent > DEFAULT_MIN_FREE_BYTES ? two_percent
		: DEFAULT_MIN_FREE_BYTES;
	return true;
}

/* Create the spool's first segment (the spool holds none). */
static bool
create_first_segment(WalSpool *s, SyncError *err)
{
	int			fd = segment_open(s, FIRST_SEGNO, O_WRONLY | O_CREAT | O_EXCL);

	if (fd < 0)
		return segment_error(s, FIRST_SEGNO, "create", errno, err);
	close(fd);
	if (fsync_retry(s->dir_fd) != 0)
		return dir_error(s, "fsync", errno, err);
	return segs_push(s, FIRST_SEGNO, 0, err);
}

/* Open the last segment for writing at its (recovered) end. */
static bool
open_writer(WalSpool *s, SyncError *err)
{
	uint64_t	total = 0;

	if (s->nsegs == 0 && !create_first_segment(s, err))
		return false;
	s->cur_segno = s->segs[s->nsegs - 1].segno;
	s->cur_len = s->segs[s->nsegs - 1].bytes;
	s->fd = segment_open(s, s->cur_segno, O_WRONLY);
	if (s->fd < 0)
		return segment_error(s, s->cur_segno, "open", errno, err);
	for (size_t i = 0; i < s->nsegs; i++)
		total += s->segs[i].bytes;
	atomic_store(&s->disk_bytes, total);
	s->last_boundary = true;
	/*
	 * The spool now ends at a boundary and a new replication session begins:
	 * the source sends every transaction it had only partly streamed again
	 * from its start, so nothing before is open any more.
	 */
	s->last_clean = true;
	return true;
}

static WalSpool *
spool_alloc(const WalSpoolOptions *opts, SyncError *err)
{
	WalSpool   *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory"), NULL;
	s->dir_fd = s->lock_fd = s->fd = -1;
	s->dir = strdup(opts->dir);
	s->zbuf_cap = FRAME_HEADER_BYTES + stored_max();
	s->raw = malloc(FRAME_RAW_MAX);
	s->zbuf = malloc(s->zbuf_cap);
	if (s->dir == NULL || s->raw == NULL || s->zbuf == NULL ||
		pthread_mutex_init(&s->mu, NULL) != 0)
	{
		free(s->dir);
		free(s->raw);
		free(s->zbuf);
		free(s);
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory"), NULL;
	}
	atomic_init(&s->disk_bytes, 0);
	return s;
}

WalSpool *
walspool_open(const WalSpoolOptions *opts, Lsn *resume_lsn, SyncError *err)
{
	WalSpool   *s;

	*resume_lsn = INVALID_LSN;
	if (opts == NULL || opts->dir == NULL || opts->dir[0] == '\0')
		return sync_error_set(err, SYNC_ERR_USAGE,
							  "no spool directory given"), NULL;
	if ((s = spool_alloc(opts, err)) == NULL)
		return NULL;
	if (!open_dir(s, err) || !apply_options(s, opts, err) ||
		!segs_list(s, err) || !recover(s, resume_lsn, err) ||
		!open_writer(s, err))
	{
		walspool_close(s);
		*resume_lsn = INVALID_LSN;
		return NULL;
	}
	return s;
}

/* ---------------------------------------------------------------- writer */

static bool
writer_usable(const WalSpool *s, SyncError *err)
{
	if (!s->broken)
		return true;
	return sync_error_set(err, SYNC_ERR_IO,
						  "spool \"%s\" is unusable after an earlier error",
						  s->dir);
}

/* Fail, and leave the writer unusable, if writing need bytes is too much. */
static bool
check_free_space(WalSpool *s, uint64_t need, SyncError *err)
{
	struct statvfs vfs;
	uint64_t	avail;

	if (fstatvfs(s->dir_fd, &vfs) != 0)
		return dir_error(s, "stat the filesystem of", errno, err);
	avail = (uint64_t) vfs.f_bavail * vfs.f_frsize;
	if (avail >= need && avail - need >= s->min_free_bytes)
		return true;
	return sync_error_set(err, SYNC_ERR_IO,
						  "spool directory \"%s\" is almost full: %" PRIu64
						  " bytes free, writing %" PRIu64 " more would leave less than the %"
						  PRIu64 " bytes that must stay free; %s",
						  s->dir, avail, need, s->min_free_bytes, FULL_HINT);
}

/* Create the next segment and make it the current one. */
static bool
rotate(WalSpool *s, SyncError *err)
{
	uint64_t	segno = s->cur_segno + 1;
	int			fd = segment_open(s, segno, O_WRONLY | O_CREAT | O_EXCL);
	bool		ok;

	if (fd < 0)
		return segment_error(s, segno, "create", errno, err);
	if (fsync_retry(s->dir_fd) != 0)
	{
		close(fd);
		return dir_error(s, "fsync", errno, err);
	}
	pthread_mutex_lock(&s->mu);
	ok = segs_push(s, segno, 0, err);
	pthread_mutex_unlock(&s->mu);
	if (!ok)
	{
		close(fd);
		return false;
	}
	close(s->fd);
	s->fd = fd;
	s->cur_segno = segno;
	s->cur_len = 0;
	return true;
}

/*
 * A new segment starts only after a clean frame (see walspool_flush): then
 * the oldest segment kept always starts where nothing was open, and a
 * restart that reads the spool from there never meets the middle of a
 * transaction whose beginning was released.  A long transaction makes its
 * segment longer than segment_bytes instead.
 */
static bool
should_rotate(const WalSpool *s)
{
	return s->cur_len > 0 && s->cur_len >= s->segment_bytes &&
		s->last_clean && !s->open_continues;
}

/* Compress the open frame into s->zbuf behind an encoded header. */
static void
frame_encode(WalSpool *s, bool boundary, Lsn last_commit_end, FrameHeader *h)
{
	uint8_t    *payload = s->zbuf + FRAME_HEADER_BYTES;
	int			n = 0;

	if (s->raw_len > 0)
		n = LZ4_compress_default((const char *) s->raw, (char *) payload,
								 (int) s->raw_len, (int) stored_max());
	h->flags = boundary ? FRAME_BOUNDARY : 0;
	if (n > 0 && (size_t) n < s->raw_len)
	{
		h->flags |= FRAME_LZ4;
		h->stored_len = (uint32_t) n;
	}
	else
	{
		if (s->raw_len > 0)
			memcpy(payload, s->raw, s->raw_len);
		h->stored_len = (uint32_t) s->raw_len;
	}
	h->raw_len = (uint32_t) s->raw_len;
	h->entries = s->entries;
	h->last_commit_end = last_commit_end;
	frame_header_encode(h, s->zbuf);
}

/* Write and fsync len bytes of s->zbuf at the end of the current segment. */
static bool
frame_store(WalSpool *s, uint64_t len, SyncError *err)
{
	const char *verb = "write";
	int			rc = write_all(s->fd, s->cur_len, s->zbuf, (size_t) len);

	if (rc == 0)
	{
		verb = "fsync";
		rc = fsync_retry(s->fd);
	}
	if (rc == 0)
		return true;
	/* Leave the segment as it was; best effort, open would cut it anyway. */
	if (truncate_retry(s->fd, s->cur_len) == 0)
		(void) fsync_retry(s->fd);
	if (rc == ENOSPC || rc == EDQUOT)
		return full_error(s, s->cur_segno, rc, err);
	return segment_error(s, s->cur_segno, verb, rc, err);
}

/* Publish a stored frame of len bytes to cursors and reset the open frame. */
static void
frame_done(WalSpool *s, uint64_t len, bool boundary, bool clean,
		   Lsn last_commit_end)
{
	s->cur_len += len;
	pthread_mutex_lock(&s->mu);
	s->segs[s->nsegs - 1].bytes = s->cur_len;
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add(&s->disk_bytes, len);
	s->raw_len = 0;
	s->entries = 0;
	s->open_continues = false;
	s->last_boundary = boundary;
	s->last_clean = clean;
	s->last_commit_end = last_commit_end;
}

/* Write the open frame durably; on failure the writer becomes unusable. */
static bool
frame_write(WalSpool *s, bool boundary, bool clean, Lsn last_commit_end,
			SyncError *err)
{
	FrameHeader h;
	uint64_t	len;

	frame_encode(s, boundary, last_commit_end, &h);
	len = frame_bytes(&h);
	s->broken = true;
	if (!check_free_space(s, len, err))
		return false;
	if (should_rotate(s) && !rotate(s, err))
		return false;
	if (!frame_store(s, len, err))
		return false;
	s->broken = false;
	frame_done(s, len, boundary, clean, last_commit_end);
	return true;
}

static void
buffer_entry(WalSpool *s, Lsn lsn, const uint8_t *data, size_t len,
			 uint32_t flags)
{
	uint8_t    *p = s->raw + s->raw_len;

	put_u64(p, lsn);
	put_u32(p + 8, (uint32_t) len | flags);
	if (len > 0)
		memcpy(p + ENTRY_HEADER_BYTES, data, len);
	s->raw_len += ENTRY_HEADER_BYTES + len;
	s->entries++;
}

/*
 * Buffer a record as one entry or, when it does not fit in the room left,
 * as pieces over several frames (each full one written with boundary=false).
 * The open frame has room for more than an entry header.
 */
static bool
buffer_pieces(WalSpool *s, Lsn lsn, const uint8_t *data, size_t len,
			  SyncError *err)
{
	uint32_t	flags = 0;

	for (;;)
	{
		size_t		room = FRAME_RAW_MAX - s->raw_len - ENTRY_HEADER_BYTES;
		size_t		piece = len < room ? len : room;

		buffer_entry(s, lsn, data, piece, flags | (piece < len ? ENTRY_MORE : 0));
		if (piece == len)
			return true;
		data += piece;
		len -= piece;
		flags = ENTRY_CONT;
		if (!frame_write(s, false, false, s->last_commit_end, err))
			return false;
		s->open_continues = true;
	}
}

bool
walspool_append(WalSpool *s, Lsn lsn, const uint8_t *data, size_t len,
				SyncError *err)
{
	if (!writer_usable(s, err))
		return false;
	if (len > RECORD_MAX || (data == NULL && len > 0))
		return sync_error_set(err, SYNC_ERR_INVALID,
							  "cannot spool a record of %zu bytes at %X/%X (the limit is %zu)",
							  len, LSN_ARGS(lsn), RECORD_MAX);
	if (s->raw_len > 0 && ENTRY_HEADER_BYTES + len > FRAME_RAW_MAX - s->raw_len &&
		!frame_write(s, false, false, s->last_commit_end, err))
		return false;
	return buffer_pieces(s, lsn, data, len, err);
}

bool
walspool_flush(WalSpool *s, bool boundary, bool clean, Lsn last_commit_end,
			   SyncError *err)
{
	if (!writer_usable(s, err))
		return false;
	clean = clean && boundary;
	if (s->raw_len == 0 && boundary == s->last_boundary &&
		last_commit_end == s->last_commit_end)
	{
		/* nothing new to write: the last frame ends where this one would */
		s->last_clean = s->last_clean || clean;
		return true;
	}
	return frame_write(s, boundary, clean, last_commit_end, err);
}

/* ---------------------------------------------------------------- release */

/* Unlink the oldest segment; the caller holds mu. */
static bool
remove_oldest(WalSpool *s, SyncError *err)
{
	char		name[SEGMENT_NAME_BYTES];

	segment_name(s->segs[0].segno, name);
	if (unlinkat(s->dir_fd, name, 0) != 0 && errno != ENOENT)
		return segment_error(s, s->segs[0].segno, "remove", errno, err);
	atomic_fetch_sub(&s->disk_bytes, s->segs[0].bytes);
	memmove(s->segs, s->segs + 1, (s->nsegs - 1) * sizeof(Segment));
	s->nsegs--;
	return true;
}

bool
walspool_release_before(WalSpool *s, uint64_t segno, SyncError *err)
{
	bool		ok = true;
	bool		removed = false;

	pthread_mutex_lock(&s->mu);
	while (ok && s->nsegs > 1 && s->segs[0].segno < segno)
	{
		ok = remove_oldest(s, err);
		removed = removed || ok;
	}
	pthread_mutex_unlock(&s->mu);
	if (removed && fsync_retry(s->dir_fd) != 0 && ok)
		return dir_error(s, "fsync", errno, err);
	return ok;
}

/* ---------------------------------------------------------------- cursor */

WalSpoolCursor *
walspool_cursor_open(WalSpool *s, SyncError *err)
{
	WalSpoolCursor *c = calloc(1, sizeof(*c));
	int			errnum;

	if (c == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory"), NULL;
	c->s = s;
	pthread_mutex_lock(&s->mu);
	c->segno = s->segs[0].segno;
	c->fd = segment_open(s, c->segno, O_RDONLY);
	errnum = errno;
	pthread_mutex_unlock(&s->mu);
	if (c->fd < 0)
	{
		segment_error(s, c->segno, "open", errnum, err);
		free(c);
		return NULL;
	}
	return c;
}

/* Make *buf at least need bytes (contents not kept). */
static bool
ensure_cap(uint8_t **buf, size_t *cap, size_t need, SyncError *err)
{
	uint8_t    *p;

	if (*cap >= need)
		return true;
	p = malloc(need);
	if (p == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	free(*buf);
	*buf = p;
	*cap = need;
	return true;
}

/* Check that raw holds exactly the header's entries; NULL or the problem. */
static const char *
entries_check(const uint8_t *raw, size_t len, uint32_t entries)
{
	size_t		pos = 0;

	for (uint32_t i = 0; i < entries; i++)
	{
		size_t		n;

		if (len - pos < ENTRY_HEADER_BYTES)
			return "entry header runs past the frame";
		n = get_u32(raw + pos + 8) & ENTRY_LEN_MASK;
		if (n > len - pos - ENTRY_HEADER_BYTES)
			return "entry runs past the frame";
		pos += ENTRY_HEADER_BYTES + n;
	}
	return pos == len ? NULL : "frame has bytes after its last entry";
}

/* Read exactly len bytes at off of the cursor's segment. */
static bool
cursor_read(WalSpoolCursor *c, uint64_t off, uint8_t *buf, size_t len,
			SyncError *err)
{
	ssize_t		n = read_full(c->fd, off, buf, len);

	if (n < 0)
		return segment_error(c->s, c->segno, "read", errno, err);
	if ((size_t) n != len)
		return corrupt_error(c->s, c->segno, off,
							 "file ends before its flushed length", err);
	return true;
}

/* What is wrong with the payload of frame h (decompressed into c->raw). */
static const char *
cursor_decode_payload(WalSpoolCursor *c, const uint8_t *hdr,
					  const FrameHeader *h)
{
	if (frame_checksum(hdr, c->stored, h->stored_len) != h->checksum)
		return "frame checksum mismatch";
	if (!(h->flags & FRAME_LZ4))
	{
		if (h->raw_len > 0)
			memcpy(c->raw, c->stored, h->raw_len);
	}
	else if (LZ4_decompress_safe((const char *) c->stored, (char *) c->raw,
								 (int) h->stored_len, (int) h->raw_len) !=
			 (int) h->raw_len)
		return "frame does not decompress";
	return entries_check(c->raw, h->raw_len, h->entries);
}

/* Load the frame at c->off, which must end at or before limit. */
static bool
cursor_load_frame(WalSpoolCursor *c, uint64_t limit, SyncError *err)
{
	uint8_t		hdr[FRAME_HEADER_BYTES];
	FrameHeader h;
	const char *problem;

	if (!cursor_read(c, c->off, hdr, sizeof(hdr), err))
		return false;
	problem = frame_header_decode(hdr, &h);
	if (problem == NULL && frame_bytes(&h) > limit - c->off)
		problem = "frame runs past the flushed end";
	if (problem != NULL)
		return corrupt_error(c->s, c->segno, c->off, problem, err);
	if (!ensure_cap(&c->stored, &c->stored_cap, (size_t) h.stored_len + 1, err) ||
		!ensure_cap(&c->raw, &c->raw_cap, (size_t) h.raw_len + 1, err) ||
		!cursor_read(c, c->off + FRAME_HEADER_BYTES, c->stored, h.stored_len, err))
		return false;
	if ((problem = cursor_decode_payload(c, hdr, &h)) != NULL)
		return corrupt_error(c->s, c->segno, c->off, problem, err);
	c->raw_len = h.raw_len;
	c->pos = 0;
	c->off += frame_bytes(&h);
	return true;
}

/* Move to the segment after c->segno, opened under mu by the caller. */
static void
cursor_switch(WalSpoolCursor *c, uint64_t segno, int fd)
{
	close(c->fd);
	c->fd = fd;
	c->segno = segno;
	c->off = 0;
}

/*
 * Load the next flushed frame: 1 loaded, 0 nothing flushed yet, -1 error.
 * Moves on to the next segment when the current one is complete.
 */
static int
cursor_next_frame(WalSpoolCursor *c, SyncError *err)
{
	WalSpool   *s = c->s;

	for (;;)
	{
		size_t		i;
		bool		found;
		uint64_t	limit;
		uint64_t	next = 0;
		int			fd = -1;

		pthread_mutex_lock(&s->mu);
		i = segs_find(s, c->segno);
		found = i < s->nsegs;
		limit = found ? s->segs[i].bytes : 0;
		if (found && i + 1 < s->nsegs && c->off >= limit)
		{
			next = s->segs[i + 1].segno;
			fd = segment_open(s, next, O_RDONLY);
		}
		pthread_mutex_unlock(&s->mu);
		if (!found)
			return sync_error_set(err, SYNC_ERR_INTERNAL,
								  "spool segment %" PRIu64 " was released while a cursor was reading it",
								  c->segno), -1;
		if (c->off < limit)
			return cursor_load_frame(c, limit, err) ? 1 : -1;
		if (next == 0)
			return 0;
		if (fd < 0)
			return segment_error(s, next, "open", errno, err), -1;
		cursor_switch(c, next, fd);
	}
}

/* Add a piece to the record being collected in c->rec. */
static bool
cursor_collect(WalSpoolCursor *c, Lsn lsn, const uint8_t *piece, size_t n,
			   SyncError *err)
{
	if (!c->in_record)
	{
		c->in_record = true;
		c->rec_lsn = lsn;
		c->rec_len = 0;
	}
	if (n > RECORD_MAX - c->rec_len)
		return corrupt_error(c->s, c->segno, c->off, "record exceeds 1 GB", err);
	if (c->rec_len + n > c->rec_cap)
	{
		size_t		cap = c->rec_cap * 2 > c->rec_len + n ? c->rec_cap * 2
			: c->rec_len + n;

		if (cap > RECORD_MAX)
			cap = RECORD_MAX;
		uint8_t    *p = realloc(c->rec, cap);

		if (p == NULL)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		c->rec = p;
		c->rec_cap = cap;
	}
	if (n > 0)
		memcpy(c->rec + c->rec_len, piece, n);
	c->rec_len += n;
	return true;
}

/*
 * Take the entry at c->pos: 1 a whole record is in *lsn, *data and *len;
 * 0 a piece of a split record was collected (go on); -1 error.
 */
static int
cursor_take_entry(WalSpoolCursor *c, Lsn *lsn, const uint8_t **data,
				  size_t *len, SyncError *err)
{
	const uint8_t *p = c->raw + c->pos;
	Lsn			entry_lsn = get_u64(p);
	uint32_t	word = get_u32(p + 8);
	size_t		n = word & ENTRY_LEN_MASK;
	bool		cont = (word & ENTRY_CONT) != 0;

	c->pos += ENTRY_HEADER_BYTES + n;
	if (cont != c->in_record || (cont && entry_lsn != c->rec_lsn))
		return corrupt_error(c->s, c->segno, c->off,
							 "pieces of a split record out of order", err), -1;
	if (!cont && !(word & ENTRY_MORE))
	{
		*lsn = entry_lsn;
		*data = p + ENTRY_HEADER_BYTES;
		*len = n;
		return 1;
	}
	if (!cursor_collect(c, entry_lsn, p + ENTRY_HEADER_BYTES, n, err))
		return -1;
	if (word & ENTRY_MORE)
		return 0;
	c->in_record = false;
	*lsn = c->rec_lsn;
	*data = c->rec;
	*len = c->rec_len;
	return 1;
}

int
walspool_cursor_next(WalSpoolCursor *c, Lsn *lsn, const uint8_t **data,
					 size_t *len, SyncError *err)
{
	if (!c->in_record && c->rec_cap > FRAME_RAW_MAX)
	{
		/* the big record returned last time is no longer needed */
		free(c->rec);
		c->rec = NULL;
		c->rec_cap = 0;
	}
	for (;;)
	{
		int			r;

		if (c->pos < c->raw_len)
			r = cursor_take_entry(c, lsn, data, len, err);
		else if ((r = cursor_next_frame(c, err)) == 1)
			r = 0;
		else if (r == 0)
			return 0;
		if (r != 0)
			return r;
	}
}

uint64_t
walspool_cursor_segment(const WalSpoolCursor *c)
{
	return c->segno;
}

void
walspool_cursor_close(WalSpoolCursor *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->stored);
	free(c->raw);
	free(c->rec);
	free(c);
}

/* ---------------------------------------------------------------- accessors */

uint64_t
walspool_disk_bytes(const WalSpool *s)
{
	return atomic_load(&s->disk_bytes);
}

const char *
walspool_dir(const WalSpool *s)
{
	return s->dir;
}

void
walspool_close(WalSpool *s)
{
	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	pthread_mutex_destroy(&s->mu);
	free(s->segs);
	free(s->raw);
	free(s->zbuf);
	free(s->dir);
	free(s);
}
