/*
 * storage/txspool.h -- on-disk spool for one streamed (in-progress) transaction.
 *
 * With "streaming on" the source sends a large transaction in chunks
 * (Stream Start ... Stream Stop), interleaved with other transactions, and
 * decides its fate only later with Stream Commit or Stream Abort.  Its
 * changes must not be applied before the commit, and holding them in memory
 * would make memory grow with the transaction.  A Spool keeps them in a
 * local file instead, LZ4-compressed in blocks of about 64 kB, and replays
 * them in order when the commit arrives.  This is what PostgreSQL's apply
 * worker does with a BufFile per xid (worker.c, "STREAMED TRANSACTIONS").
 *
 * Memory use is one raw block and one compressed block (about 130 kB) plus
 * a small index with one entry per subtransaction, whatever the size of the
 * spool.  A record larger than a block gets a block of its own and a
 * temporary buffer of its own size while it is written or replayed.
 *
 * The file is never fsync'ed: its transaction was never confirmed to the
 * source, so after a crash the source streams it again from its beginning.
 *
 * A Spool is not thread-safe.  Functions that return bool fill err when
 * they return false and never log.  After a failed write, truncation or
 * subtransaction abort the spool is left unusable: every later call fails
 * (a sticky error, as in hiredis) and the caller should destroy it.
 */
#ifndef PGSTREAM_STORAGE_TXSPOOL_H
#define PGSTREAM_STORAGE_TXSPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/error.h"
#include "protocol/lsn.h"

/* Raw bytes a block holds before it is compressed and written. */
#define SPOOL_BLOCK_BYTES ((size_t) 64 * 1024)

/* Largest record accepted (PostgreSQL's limit for one field is 1 GB). */
#define SPOOL_RECORD_MAX ((size_t) 1024 * 1024 * 1024)

typedef struct Spool Spool;

/*
 * Replay callback: one record's bytes, valid only until the callback
 * returns.  Return false to stop the replay; err must then be filled in.
 */
typedef bool (*SpoolReplayFn) (const uint8_t *data, size_t len, void *arg,
							   SyncError *err);

/*
 * Create the spool file for top-level transaction xid in dir, named
 * "xact-<xid>.spool".  Missing directories on the way to dir are created
 * with mode 0700.  An existing file of that name is truncated: after a
 * reconnect an unfinished streamed transaction is re-streamed from its
 * beginning (first_segment = 1).  Returns NULL with err filled on failure.
 */
Spool	   *spool_create(const char *dir, Xid xid, SyncError *err);

/*
 * Append one record (a raw pgoutput message payload of len bytes, at most
 * SPOOL_RECORD_MAX; data may be NULL when len is 0) tagged with subxid, the
 * transaction it belongs to (the top-level xid or a subtransaction's xid).
 * The bytes are copied or written before the call returns.
 */
bool		spool_append(Spool *s, Xid subxid, const uint8_t *data,
						 size_t len, SyncError *err);

/*
 * Subtransaction abort (Stream Abort with subxid != xid): drop the first
 * record tagged subxid and every record appended after it, whether still
 * buffered or already written (the file is truncated at the start of the
 * block that holds that record and the block's surviving prefix goes back
 * into the buffer).  Does nothing if no record is tagged subxid.
 */
bool		spool_abort_subxact(Spool *s, Xid subxid, SyncError *err);

/*
 * Write the buffered block, then call fn on every record in append order,
 * reading the file one block at a time.  Each block is checked (layout,
 * lengths, LZ4 result and an XXH32 checksum) before any of its records is
 * passed on; corruption or truncation fails with an error naming the file
 * and offset.  On failure fn may already have seen earlier records, so the
 * caller must roll back whatever it applied.  fn must not call other spool
 * functions on s.  The spool stays usable: it may be replayed again or
 * appended to.
 */
bool		spool_replay(Spool *s, SpoolReplayFn fn, void *arg, SyncError *err);

/* Records currently in the spool (aborted ones are not counted). */
uint64_t	spool_record_count(const Spool *s);

/* Sum of the lengths of those records, without any framing. */
uint64_t	spool_raw_bytes(const Spool *s);

/* Bytes written to the file so far (the buffered block not included). */
uint64_t	spool_file_bytes(const Spool *s);

/* The spool file's path, owned by s. */
const char *spool_path(const Spool *s);

/* Close the file, remove it when remove_file, free s.  NULL is allowed. */
void		spool_destroy(Spool *s, bool remove_file);

#endif
