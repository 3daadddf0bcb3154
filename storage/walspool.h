/*
 * storage/walspool.h -- durable on-disk spool of replication messages.
 *
 * "pgstream sync --spool DIR" decouples receiving from applying: a receiver
 * thread appends every replication message (its Lsn and raw pgoutput
 * payload) to segment files DIR/<16 hex digits>.seg, LZ4-compressed and
 * fsync'ed before their position is confirmed to the source, so the source
 * can recycle WAL while the target is slow or down.  An applier thread reads
 * the records back in order with a cursor, possibly while the receiver keeps
 * appending, and releases segments once their records are applied.
 *
 * Records are buffered in an open frame; walspool_flush() writes it as one
 * checksummed frame and fsyncs it.  A frame flushed with boundary=true says
 * that the data so far ends outside any transaction and carries the highest
 * commit end LSN seen; after a crash walspool_open() cuts the spool back to
 * the last such frame.  See storage/walspool.c for the on-disk format.
 *
 * Threads: one writer (append, flush) and any number of cursors, each used by
 * one thread, may run concurrently; release_before is safe with both.
 * Functions that return bool fill err when they return false and never log.
 * After a failed append or flush the writer side is unusable (every later
 * append or flush fails); cursors and release_before keep working.
 */
#ifndef PGSTREAM_STORAGE_WALSPOOL_H
#define PGSTREAM_STORAGE_WALSPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/error.h"
#include "protocol/lsn.h"

typedef struct WalSpool WalSpool;
typedef struct WalSpoolCursor WalSpoolCursor;

typedef struct WalSpoolOptions
{
	const char *dir;			/* created 0700 if missing */
	uint64_t	segment_bytes;	/* rotate after this many bytes on disk
								 * (default 64 MB if 0) */
	uint64_t	min_free_bytes; /* refuse to write when the filesystem would
								 * have less free (statvfs f_bavail*f_frsize);
								 * 0 = default: max(512 MB, 2% of the
								 * filesystem) */
} WalSpoolOptions;

/*
 * Open the spool, recovering what a previous process left: validate every
 * frame of every segment (in order); cut off (ftruncate) a torn or corrupt
 * tail frame and everything after it, and then everything after the last
 * frame flushed with boundary=true (see walspool_flush), so the spool ends at
 * a transaction boundary.  *resume_lsn = the last_commit_end recorded by the
 * last kept frame (0 if the spool is empty).  A corrupt frame that is NOT at
 * the tail of the last segment is an error (never silently skip data in the
 * middle).  Returns NULL and fills err on failure.
 */
WalSpool   *walspool_open(const WalSpoolOptions *opts, Lsn *resume_lsn,
						  SyncError *err);

/*
 * Writer side (one thread at a time).  Buffer one record (at most 1 GB) in
 * the open (unflushed) frame.  When the open frame would exceed 8 MB raw it
 * is written as a frame with boundary=false first; a record larger than that
 * is split over several frames and comes back whole.
 */
bool		walspool_append(WalSpool *s, Lsn lsn, const uint8_t *data, size_t len,
							SyncError *err);

/*
 * Close the open frame: compress it, write it with its header, fsync the
 * segment file (and the directory when a segment was created).  boundary =
 * the data appended so far ends outside any transaction (recovery keeps the
 * spool up to the last such frame, so only its last_commit_end may be
 * confirmed to the source); clean = boundary, and no streamed transaction is
 * open either (a new segment may start after this frame, and only after such
 * a frame, or at the first frame after walspool_open); last_commit_end = the
 * highest commit end LSN among all records so far.  A flush with nothing
 * buffered and the same boundary/commit values is a no-op; with new values it
 * writes an empty frame.  Rotates to a new segment first if the current one
 * reached segment_bytes and the last frame was clean.  Fails with
 * SYNC_ERR_IO, leaving the failed frame absent on disk, when writing would
 * leave less than min_free_bytes free.
 */
bool		walspool_flush(WalSpool *s, bool boundary, bool clean,
						   Lsn last_commit_end, SyncError *err);

/*
 * Reader side (another thread, concurrently with the writer).  A cursor
 * starts at the oldest segment's first record.
 */
WalSpoolCursor *walspool_cursor_open(WalSpool *s, SyncError *err);

/*
 * 1: a record (*lsn, *data and *len valid until the next call on this cursor);
 * 0: nothing more flushed yet (the caller waits and calls again; never
 * returns unflushed data); -1: error (err filled in).
 */
int			walspool_cursor_next(WalSpoolCursor *c, Lsn *lsn,
								 const uint8_t **data, size_t *len,
								 SyncError *err);

/* Segment number the cursor is reading (segments are numbered increasingly). */
uint64_t	walspool_cursor_segment(const WalSpoolCursor *c);

/* Safe with NULL. */
void		walspool_cursor_close(WalSpoolCursor *c);

/*
 * Delete every segment with a number < segno (their records are applied).
 * Never deletes the segment being written.  Thread-safe with the writer.
 */
bool		walspool_release_before(WalSpool *s, uint64_t segno, SyncError *err);

/* Bytes in segment files now. */
uint64_t	walspool_disk_bytes(const WalSpool *s);

const char *walspool_dir(const WalSpool *s);

/* Does not flush; safe with NULL.  Close every cursor first. */
void		walspool_close(WalSpool *s);

#endif
