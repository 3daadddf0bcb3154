/*
 * tests/unit/test_walspool.c -- WalSpool: round trip across segments and
 * split records, a reader concurrent with a writer thread, recovery after a
 * simulated crash (non-boundary frames, torn and corrupt tails, corruption
 * in the middle), release of applied segments, empty flushes, the free-space
 * guard and bounded memory at volume.
 *
 * Every test gets a fresh mkdtemp directory (checked fixture), removed
 * afterwards with everything in it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/walspool.h"
#include "tests/unit/suites.h"

#define BIG_RECORD_MAX ((size_t) 20 * 1024 * 1024)
#define FRAME_HEADER 36

static char basedir[64];	/* per TCase, made in the parent process */
static char tmpdir[128];	/* per test, inside basedir */

/* ------------------------------------------------------------- fixture */

static void
remove_tree(const char *path)
{
	DIR		   *d = opendir(path);
	struct dirent *de;

	if (d == NULL)
	{
		(void) unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL)
	{
		char		child[512];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		(void) snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		remove_tree(child);
	}
	closedir(d);
	(void) rmdir(path);
}

/* A failing test exits before its checked teardown: the parent cleans up. */
static void
setup_basedir(void)
{
	(void) snprintf(basedir, sizeof(basedir), "/tmp/pgstream-walspool-XXXXXX");
	if (mkdtemp(basedir) == NULL)
		abort();
}

static void
teardown_basedir(void)
{
	remove_tree(basedir);
}

/* The spool directory itself is created by walspool_open (tmpdir/spool). */
static void
setup_tmpdir(void)
{
	char		parent[96];

	(void) snprintf(parent, sizeof(parent), "%s/test-XXXXXX", basedir);
	ck_assert_ptr_nonnull(mkdtemp(parent));
	(void) snprintf(tmpdir, sizeof(tmpdir), "%s/spool", parent);
}

static void
teardown_tmpdir(void)
{
	char	   *slash;

	remove_tree(tmpdir);
	slash = strrchr(tmpdir, '/');
	*slash = '\0';
	(void) rmdir(tmpdir);
}

/* ----------------------------------------------------------- helpers */

static WalSpool *
open_spool(uint64_t segment_bytes, Lsn *resume)
{
	WalSpoolOptions opts = {tmpdir, segment_bytes, 1};
	SyncError	err;
	Lsn			dummy;
	WalSpool   *s = walspool_open(&opts, resume ? resume : &dummy, &err);

	ck_assert_msg(s != NULL, "walspool_open: %s", err.message);
	return s;
}

static void
seg_path(uint64_t segno, char *out, size_t cap)
{
	(void) snprintf(out, cap, "%s/%016llx.seg", tmpdir, (unsigned long long) segno);
}

static uint64_t
file_size(uint64_t segno)
{
	char		path[160];
	struct stat st;

	seg_path(segno, path, sizeof(path));
	if (stat(path, &st) != 0)
		return UINT64_MAX;
	return (uint64_t) st.st_size;
}

static int
count_segments(void)
{
	DIR		   *d = opendir(tmpdir);
	struct dirent *de;
	int			n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		if (strlen(de->d_name) == 20 && strcmp(de->d_name + 16, ".seg") == 0)
			n++;
	closedir(d);
	return n;
}

/* One record the spool should hold and how to make its bytes. */
typedef struct Rec
{
	Lsn			lsn;
	size_t		len;
	uint32_t	seed;
	bool		random;
} Rec;

static void
rec_fill(const Rec *r, uint8_t *buf)
{
	static const char text[] = "BEGIN INSERT INTO public.orders VALUES ";
	uint32_t	x = r->seed * 2654435761u + 1;

	for (size_t i = 0; i < r->len; i++)
	{
		if (r->random)
		{
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			buf[i] = (uint8_t) x;
		}
		else
			buf[i] = (uint8_t) text[(i + r->seed) % (sizeof(text) - 1)] ^
				(uint8_t) (i % 64 == 0 ? r->seed : 0);
	}
}

/* A small compressible record number i. */
static Rec
small_rec(uint32_t i)
{
	Rec			r = {1000 + (Lsn) i * 16, (i * 7919u) % 700, i, false};

	if (i % 97 == 0)
		r.len = 0;
	return r;
}

static uint8_t *scratch;		/* BIG_RECORD_MAX bytes */

static void
append_rec(WalSpool *s, const Rec *r)
{
	SyncError	err;

	/* ck_assert in hot loops would log a check point per call: abort only */
	rec_fill(r, scratch);
	if (!walspool_append(s, r->lsn, scratch, r->len, &err))
		ck_abort_msg("append: %s", err.message);
}

static void
flush(WalSpool *s, bool boundary, Lsn commit)
{
	SyncError	err;

	if (!walspool_flush(s, boundary, boundary, commit, &err))
		ck_abort_msg("flush: %s", err.message);
}

static void
check_rec(const Rec *r, Lsn lsn, const uint8_t *data, size_t len, size_t idx)
{
	if (lsn != r->lsn)
		ck_abort_msg("record %zu: lsn %llu, expected %llu", idx,
					 (unsigned long long) lsn, (unsigned long long) r->lsn);
	if (len != r->len)
		ck_abort_msg("record %zu: %zu bytes, expected %zu", idx, len, r->len);
	rec_fill(r, scratch);
	if (len > 0 && memcmp(data, scratch, len) != 0)
		ck_abort_msg("record %zu: content differs", idx);
}

/* Read every flushed record with a new cursor and compare with recs. */
static void
read_all(WalSpool *s, const Rec *recs, size_t n)
{
	SyncError	err;
	WalSpoolCursor *c = walspool_cursor_open(s, &err);
	size_t		i = 0;
	int			r;

	ck_assert_msg(c != NULL, "cursor_open: %s", err.message);
	for (;;)
	{
		Lsn			lsn;
		const uint8_t *data;
		size_t		len;

		r = walspool_cursor_next(c, &lsn, &data, &len, &err);
		if (r < 0)
			ck_abort_msg("cursor_next: %s", err.message);
		if (r == 0)
			break;
		if (i >= n)
			ck_abort_msg("more than %zu records", n);
		check_rec(&recs[i], lsn, data, len, i);
		i++;
	}
	ck_assert_uint_eq(i, n);
	walspool_cursor_close(c);
}

static void
setup_scratch(void)
{
	scratch = malloc(BIG_RECORD_MAX);
	ck_assert_ptr_nonnull(scratch);
}

static void
teardown_scratch(void)
{
	free(scratch);
	scratch = NULL;
}

/* Write small records first..first+n-1 into recs, then flush. */
static void
write_small(WalSpool *s, Rec *recs, uint32_t first, uint32_t n, bool boundary,
			Lsn commit)
{
	for (uint32_t i = 0; i < n; i++)
	{
		recs[first + i] = small_rec(first + i);
		append_rec(s, &recs[first + i]);
	}
	flush(s, boundary, commit);
}

/* Flip one byte of segment segno at off. */
static void
flip_byte(uint64_t segno, uint64_t off)
{
	char		path[160];
	int			fd;
	uint8_t		b;

	seg_path(segno, path, sizeof(path));
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, (off_t) off), 1);
	b ^= 0x5A;
	ck_assert_int_eq(pwrite(fd, &b, 1, (off_t) off), 1);
	close(fd);
}

static void
set_size(uint64_t segno, uint64_t len)
{
	char		path[160];

	seg_path(segno, path, sizeof(path));
	ck_assert_int_eq(truncate(path, (off_t) len), 0);
}

/* ----------------------------------------------------------- round trip */

START_TEST(test_round_trip)
{
	enum
	{
		NSMALL = 3000
	};
	Rec		   *recs = calloc(NSMALL + 4, sizeof(Rec));
	size_t		n = 0;
	Lsn			resume;
	WalSpool   *s = open_spool(64 * 1024, &resume);

	ck_assert_uint_eq(resume, 0);
	for (uint32_t i = 0; i < NSMALL; i++)
	{
		recs[n] = small_rec(i);
		append_rec(s, &recs[n++]);
		if (i % 50 == 49)
			flush(s, i % 100 == 99, recs[n - 1].lsn);
		if (i == 1000 || i == 2000)
		{
			/* > 8 MB: split over frames; random stays raw, text compresses */
			recs[n] = (Rec) {recs[n - 1].lsn + 1, 9 * 1024 * 1024 + 7, i, true};
			append_rec(s, &recs[n++]);
			recs[n] = (Rec) {recs[n - 1].lsn + 1, BIG_RECORD_MAX, i, false};
			append_rec(s, &recs[n++]);
		}
	}
	flush(s, true, 777777);
	/* a segment starts only after a clean frame: every other flush here */
	ck_assert_int_ge(count_segments(), 3);
	read_all(s, recs, n);
	walspool_close(s);

	s = open_spool(64 * 1024, &resume);
	ck_assert_uint_eq(resume, 777777);
	read_all(s, recs, n);
	walspool_close(s);
	free(recs);
}
END_TEST

/* ----------------------------------------------------------- concurrency */

enum
{
	CONC_RECORDS = 8000,
	CONC_PER_FLUSH = 37
};

typedef struct Writer
{
	WalSpool   *s;
	_Atomic size_t flush_target;	/* records appended before the flush began */
	_Atomic bool failed;
	char		message[SYNC_ERROR_MESSAGE_MAX];
} Writer;

static void
writer_record(uint32_t i, uint8_t *buf, Rec *r)
{
	*r = small_rec(i);
	rec_fill(r, buf);
}

static void *
writer_main(void *arg)
{
	Writer	   *w = arg;
	uint8_t    *buf = malloc(1024);
	SyncError	err;

	for (uint32_t i = 0; i < CONC_RECORDS; i++)
	{
		Rec			r;
		bool		ok;
		bool		last = i % CONC_PER_FLUSH == CONC_PER_FLUSH - 1 ||
			i == CONC_RECORDS - 1;

		writer_record(i, buf, &r);
		ok = walspool_append(w->s, r.lsn, buf, r.len, &err);
		if (ok && last)
		{
			atomic_store(&w->flush_target, (size_t) i + 1);
			ok = walspool_flush(w->s, true, true, r.lsn, &err);
		}
		if (!ok)
		{
			memcpy(w->message, err.message, sizeof(w->message));
			atomic_store(&w->failed, true);
			break;
		}
	}
	free(buf);
	return NULL;
}

/* Read until CONC_RECORDS came back, releasing applied segments as we go. */
static void
reader_loop(Writer *w, WalSpoolCursor *c)
{
	SyncError	err;
	size_t		i = 0;
	uint64_t	released = 0;

	while (i < CONC_RECORDS && !w->failed)
	{
		Lsn			lsn;
		const uint8_t *data;
		size_t		len;
		int			r = walspool_cursor_next(c, &lsn, &data, &len, &err);
		Rec			want = small_rec((uint32_t) i);

		if (r < 0)
			ck_abort_msg("cursor_next: %s", err.message);
		if (r == 0)
		{
			nanosleep(&(struct timespec) {0, 50000}, NULL);
			continue;
		}
		if (i >= atomic_load(&w->flush_target))
			ck_abort_msg("record %zu read before its flush began", i);
		check_rec(&want, lsn, data, len, i);
		i++;
		if (walspool_cursor_segment(c) > released + 2)
		{
			released = walspool_cursor_segment(c);
			if (!walspool_release_before(w->s, released, &err))
				ck_abort_msg("release: %s", err.message);
		}
	}
	ck_assert_msg(!w->failed, "writer: %s", w->message);
	ck_assert_uint_eq(i, CONC_RECORDS);
}

START_TEST(test_concurrent_reader)
{
	Writer		w = {.s = open_spool(16 * 1024, NULL)};
	SyncError	err;
	WalSpoolCursor *c = walspool_cursor_open(w.s, &err);
	pthread_t	th;
	Lsn			lsn;
	const uint8_t *data;
	size_t		len;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
	reader_loop(&w, c);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(walspool_cursor_next(c, &lsn, &data, &len, &err), 0);
	ck_assert_int_le(count_segments(), 4);
	walspool_cursor_close(c);
	walspool_close(w.s);
}
END_TEST

/* ----------------------------------------------------------- recovery */

START_TEST(test_recovery_cuts_non_boundary)
{
	Rec			recs[400];
	Lsn			resume;
	WalSpool   *s = open_spool(1024, NULL);
	uint64_t	size_at_boundary;
	int			segs_at_boundary;

	write_small(s, recs, 0, 100, true, 5000);
	size_at_boundary = walspool_disk_bytes(s);
	segs_at_boundary = count_segments();
	write_small(s, recs, 100, 100, false, 6000);
	write_small(s, recs, 200, 100, false, 6000);
	for (uint32_t i = 300; i < 400; i++)
	{
		recs[i] = small_rec(i);
		append_rec(s, &recs[i]);	/* buffered only: lost in the "crash" */
	}
	ck_assert_int_gt(count_segments(), segs_at_boundary);
	walspool_close(s);

	s = open_spool(1024, &resume);
	ck_assert_uint_eq(resume, 5000);
	ck_assert_uint_eq(walspool_disk_bytes(s), size_at_boundary);
	ck_assert_int_eq(count_segments(), segs_at_boundary);
	read_all(s, recs, 100);
	/* the spool goes on from the boundary */
	write_small(s, recs, 100, 50, true, 7000);
	read_all(s, recs, 150);
	walspool_close(s);
	s = open_spool(1024, &resume);
	ck_assert_uint_eq(resume, 7000);
	read_all(s, recs, 150);
	walspool_close(s);
}
END_TEST

START_TEST(test_recovery_nothing_at_boundary)
{
	Rec			recs[50];
	Lsn			resume;
	WalSpool   *s = open_spool(0, NULL);

	write_small(s, recs, 0, 50, false, 100);
	walspool_close(s);
	s = open_spool(0, &resume);
	ck_assert_uint_eq(resume, 0);
	ck_assert_uint_eq(walspool_disk_bytes(s), 0);
	read_all(s, recs, 0);
	walspool_close(s);
}
END_TEST

/* Three boundary frames of 10 records in segment 1; sizes after each. */
static void
three_frames(Rec *recs, uint64_t *sizes)
{
	WalSpool   *s = open_spool(0, NULL);

	for (uint32_t f = 0; f < 3; f++)
	{
		write_small(s, recs, f * 10, 10, true, 100 * (f + 1));
		sizes[f] = file_size(1);
	}
	walspool_close(s);
}

static void
reopen_expect(Lsn want_resume, uint64_t want_size, const Rec *recs, size_t n)
{
	Lsn			resume;
	WalSpool   *s = open_spool(0, &resume);

	ck_assert_uint_eq(resume, want_resume);
	ck_assert_uint_eq(file_size(1), want_size);
	read_all(s, recs, n);
	walspool_close(s);
}

START_TEST(test_torn_tail)
{
	Rec			recs[30];
	uint64_t	sizes[3];

	three_frames(recs, sizes);
	set_size(1, sizes[1] + (sizes[2] - sizes[1]) / 2);	/* torn payload */
	reopen_expect(200, sizes[1], recs, 20);
	set_size(1, sizes[1] + 10);	/* torn header */
	reopen_expect(200, sizes[1], recs, 20);
}
END_TEST

START_TEST(test_zero_and_corrupt_tail)
{
	Rec			recs[30];
	uint64_t	sizes[3];

	three_frames(recs, sizes);
	set_size(1, sizes[2] + 4096);	/* zeros after the last frame */
	reopen_expect(300, sizes[2], recs, 30);
	flip_byte(1, sizes[2] - 1);	/* checksum of the last frame */
	reopen_expect(200, sizes[1], recs, 20);
}
END_TEST

START_TEST(test_corrupt_middle_of_last_segment)
{
	Rec			recs[30];
	uint64_t	sizes[3];
	WalSpoolOptions opts;
	SyncError	err;
	Lsn			resume = 1;

	three_frames(recs, sizes);
	flip_byte(1, sizes[0] + FRAME_HEADER + 3);	/* payload of frame 2 */
	opts = (WalSpoolOptions) {tmpdir, 0, 1};
	ck_assert_ptr_null(walspool_open(&opts, &resume, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_IO);
	ck_assert_msg(strstr(err.message, "corrupt") != NULL, "%s", err.message);
	ck_assert_uint_eq(resume, 0);
	ck_assert_uint_eq(file_size(1), sizes[2]);	/* nothing was cut */
}
END_TEST

START_TEST(test_damaged_length_is_not_a_tail)
{
	Rec			recs[30];
	uint64_t	sizes[3];
	WalSpoolOptions opts = {tmpdir, 0, 1};
	SyncError	err;
	Lsn			resume;

	three_frames(recs, sizes);
	flip_byte(1, sizes[0] + 14);	/* stored length of frame 2: "runs past EOF" */
	ck_assert_ptr_null(walspool_open(&opts, &resume, &err));
	ck_assert_msg(strstr(err.message, "header checksum") != NULL, "%s", err.message);
	ck_assert_uint_eq(file_size(1), sizes[2]);
}
END_TEST

START_TEST(test_corrupt_middle_segment)
{
	Rec			recs[200];
	WalSpool   *s = open_spool(4096, NULL);
	WalSpoolOptions opts = {tmpdir, 4096, 1};
	SyncError	err;
	Lsn			resume;

	for (uint32_t f = 0; f < 20; f++)
		write_small(s, recs, f * 10, 10, true, f + 1);
	walspool_close(s);
	ck_assert_int_ge(count_segments(), 3);
	flip_byte(2, FRAME_HEADER + 5);
	ck_assert_ptr_null(walspool_open(&opts, &resume, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_IO);
	ck_assert_msg(strstr(err.message, "0000000000000002.seg") != NULL &&
				  strstr(err.message, "corrupt") != NULL, "%s", err.message);

	/* a truncated non-last segment is corrupt too, not a torn tail */
	flip_byte(2, FRAME_HEADER + 5);
	set_size(2, file_size(2) - 1);
	ck_assert_ptr_null(walspool_open(&opts, &resume, &err));
	ck_assert_msg(strstr(err.message, "corrupt") != NULL, "%s", err.message);
}
END_TEST

/* ----------------------------------------------------------- release */

START_TEST(test_release_before)
{
	Rec			recs[300];
	WalSpool   *s = open_spool(4096, NULL);
	SyncError	err;
	WalSpoolCursor *c;
	uint64_t	before;
	uint64_t	last;
	size_t		i;

	for (uint32_t f = 0; f < 30; f++)
		write_small(s, recs, f * 10, 10, true, f + 1);
	ck_assert_int_ge(count_segments(), 5);
	c = walspool_cursor_open(s, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(walspool_cursor_segment(c), 1);
	for (i = 0; i < 150; i++)
	{
		Lsn			lsn;
		const uint8_t *data;
		size_t		len;

		ck_assert_int_eq(walspool_cursor_next(c, &lsn, &data, &len, &err), 1);
		check_rec(&recs[i], lsn, data, len, i);
	}
	ck_assert_uint_gt(walspool_cursor_segment(c), 2);
	before = walspool_disk_bytes(s);
	ck_assert(walspool_release_before(s, walspool_cursor_segment(c), &err));
	ck_assert_uint_eq(file_size(1), UINT64_MAX);
	ck_assert_uint_eq(file_size(walspool_cursor_segment(c) - 1), UINT64_MAX);
	ck_assert_uint_ne(file_size(walspool_cursor_segment(c)), UINT64_MAX);
	ck_assert_uint_lt(walspool_disk_bytes(s), before);
	for (; i < 300; i++)
	{
		Lsn			lsn;
		const uint8_t *data;
		size_t		len;

		ck_assert_int_eq(walspool_cursor_next(c, &lsn, &data, &len, &err), 1);
		check_rec(&recs[i], lsn, data, len, i);
	}
	last = walspool_cursor_segment(c);
	walspool_cursor_close(c);

	/* the segment being written is never deleted */
	ck_assert(walspool_release_before(s, UINT64_MAX, &err));
	ck_assert_int_eq(count_segments(), 1);
	ck_assert_uint_eq(walspool_disk_bytes(s), file_size(last));
	walspool_close(s);
}
END_TEST

/* ----------------------------------------------------------- invariants */

/* Append small records first..first+n-1, then flush with both flags. */
static void
write_frame(WalSpool *s, Rec *recs, uint32_t first, uint32_t n, bool boundary,
			bool clean, Lsn commit)
{
	SyncError	err;

	for (uint32_t i = 0; i < n; i++)
	{
		recs[first + i] = small_rec(first + i);
		append_rec(s, &recs[first + i]);
	}
	if (!walspool_flush(s, boundary, clean, commit, &err))
		ck_abort_msg("flush: %s", err.message);
}

/* The first record a new cursor reads must be recs[want]. */
static void
first_record_is(WalSpool *s, const Rec *recs, size_t want)
{
	SyncError	err;
	WalSpoolCursor *c = walspool_cursor_open(s, &err);
	Lsn			lsn;
	const uint8_t *data;
	size_t		len;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(walspool_cursor_next(c, &lsn, &data, &len, &err), 1);
	check_rec(&recs[want], lsn, data, len, want);
	walspool_cursor_close(c);
}

/*
 * Invariant (docs/architecture.md, "the spool"): a segment starts only
 * after a clean frame (no transaction and no streamed transaction open) or
 * at the first frame after open; so once the segments before it are
 * released, a reader starting at the oldest one never meets the middle of
 * a transaction.  Issue 13: rotation used to happen after any frame.
 */
START_TEST(test_segment_starts_only_after_clean_frame)
{
	Rec			recs[60];
	Lsn			resume;
	SyncError	err;
	WalSpool   *s = open_spool(1, NULL);	/* rotate whenever allowed */

	write_frame(s, recs, 0, 5, true, true, 10);
	ck_assert_int_eq(count_segments(), 1);
	write_frame(s, recs, 5, 5, false, false, 10);	/* after clean: new */
	ck_assert_int_eq(count_segments(), 2);
	write_frame(s, recs, 10, 5, true, false, 20);	/* inside a transaction */
	ck_assert_int_eq(count_segments(), 2);
	write_frame(s, recs, 15, 5, false, true, 20);	/* a stream is open */
	ck_assert_int_eq(count_segments(), 2);
	write_frame(s, recs, 20, 5, true, true, 30);	/* clean ignored above */
	ck_assert_int_eq(count_segments(), 2);
	write_frame(s, recs, 25, 5, false, false, 30);	/* after clean: new */
	ck_assert_int_eq(count_segments(), 3);
	read_all(s, recs, 30);

	/* released up to segment 3, the spool starts with record 25 */
	ck_assert(walspool_release_before(s, 3, &err));
	first_record_is(s, recs, 25);
	write_frame(s, recs, 30, 5, true, false, 40);	/* stays in segment 3 */
	write_frame(s, recs, 35, 5, false, false, 50);
	ck_assert_int_eq(count_segments(), 1);
	walspool_close(s);

	/*
	 * Recovery cuts the spool back to the boundary frame that recorded 40;
	 * a new session then starts where nothing is open (the source sends
	 * partly streamed transactions again): the next frame may start a
	 * segment.
	 */
	s = open_spool(1, &resume);
	ck_assert_uint_eq(resume, 40);
	ck_assert_int_eq(count_segments(), 1);
	first_record_is(s, recs, 25);
	write_frame(s, recs, 35, 5, false, false, 40);
	ck_assert_int_eq(count_segments(), 2);
	ck_assert(walspool_release_before(s, 4, &err));
	first_record_is(s, recs, 35);
	walspool_close(s);
}
END_TEST

/*
 * Invariant: what may be confirmed to the source is the last_commit_end of
 * the last boundary frame that is on disk, never that of a later frame.
 */
START_TEST(test_resume_is_the_last_boundary_frame)
{
	Rec			recs[40];
	Lsn			resume;
	WalSpool   *s = open_spool(0, NULL);

	write_frame(s, recs, 0, 10, true, true, 100);
	write_frame(s, recs, 10, 10, false, false, 200);	/* commit 200, then a Begin */
	write_frame(s, recs, 20, 10, true, false, 300);	/* boundary, a stream open */
	write_frame(s, recs, 30, 10, false, false, 400);
	walspool_close(s);
	s = open_spool(0, &resume);
	ck_assert_uint_eq(resume, 300);
	read_all(s, recs, 30);
	walspool_close(s);
}
END_TEST

/* A record of zero bytes (the session marker of engine/stream/stream.c) round-trips. */
START_TEST(test_empty_record_round_trips)
{
	SyncError	err;
	WalSpool   *s = open_spool(0, NULL);
	WalSpoolCursor *c;
	Lsn			lsn;
	const uint8_t *data;
	size_t		len;

	ck_assert(walspool_append(s, 0x77, NULL, 0, &err));
	ck_assert(walspool_flush(s, true, true, 0, &err));
	c = walspool_cursor_open(s, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(walspool_cursor_next(c, &lsn, &data, &len, &err), 1);
	ck_assert_uint_eq(lsn, 0x77);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(walspool_cursor_next(c, &lsn, &data, &len, &err), 0);
	walspool_cursor_close(c);
	walspool_close(s);
}
END_TEST

/* ----------------------------------------------------------- empty flush */

START_TEST(test_empty_flush)
{
	Lsn			resume;
	WalSpool   *s = open_spool(0, &resume);
	uint64_t	size;

	flush(s, true, 0);			/* same as the empty spool: no-op */
	ck_assert_uint_eq(file_size(1), 0);
	flush(s, true, 100);
	size = file_size(1);
	ck_assert_uint_eq(size, FRAME_HEADER);
	flush(s, true, 100);
	ck_assert_uint_eq(file_size(1), size);
	flush(s, false, 100);
	ck_assert_uint_eq(file_size(1), 2 * FRAME_HEADER);
	walspool_close(s);

	s = open_spool(0, &resume);	/* the non-boundary frame is cut */
	ck_assert_uint_eq(resume, 100);
	ck_assert_uint_eq(file_size(1), FRAME_HEADER);
	read_all(s, NULL, 0);
	walspool_close(s);
}
END_TEST

/* ----------------------------------------------------------- free space */

START_TEST(test_min_free_guard)
{
	Rec			recs[40];
	WalSpoolOptions opts = {tmpdir, 0, UINT64_MAX / 4};
	SyncError	err;
	Lsn			resume;
	WalSpool   *s = open_spool(0, NULL);
	uint64_t	size;

	write_small(s, recs, 0, 20, true, 20);
	walspool_close(s);
	size = file_size(1);

	s = walspool_open(&opts, &resume, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	for (uint32_t i = 20; i < 40; i++)
	{
		recs[i] = small_rec(i);
		append_rec(s, &recs[i]);
	}
	ck_assert(!walspool_flush(s, true, true, 40, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_IO);
	ck_assert_msg(strstr(err.message, tmpdir) != NULL &&
				  strstr(err.message, "bytes free") != NULL &&
				  strstr(err.message, "free disk space or point --spool at a larger filesystem") != NULL &&
				  strstr(err.message, "nothing was lost") != NULL, "%s", err.message);
	ck_assert_uint_eq(file_size(1), size);
	ck_assert(!walspool_append(s, 1, (const uint8_t *) "x", 1, &err));
	ck_assert_msg(strstr(err.message, "unusable after an earlier error") != NULL,
				  "%s", err.message);
	ck_assert(!walspool_flush(s, true, true, 40, &err));
	read_all(s, recs, 20);		/* the reader still works */
	walspool_close(s);

	s = open_spool(0, &resume);
	ck_assert_uint_eq(resume, 20);
	read_all(s, recs, 20);
	walspool_close(s);
}
END_TEST

/* A write that fails half way (file size limit) leaves the spool as it was. */
START_TEST(test_failed_write_leaves_spool_intact)
{
	Rec			recs[21];
	SyncError	err;
	Lsn			resume;
	WalSpool   *s = open_spool(0, NULL);
	uint64_t	size;
	struct rlimit lim;

	write_small(s, recs, 0, 20, true, 20);
	size = file_size(1);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
	lim.rlim_cur = (rlim_t) size + 100;
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	recs[20] = (Rec) {99999, 5000, 1, true};
	append_rec(s, &recs[20]);
	ck_assert(!walspool_flush(s, true, true, 99999, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_IO);
	ck_assert_msg(strstr(err.message, "0000000000000001.seg") != NULL &&
				  strstr(err.message, "could not write") != NULL, "%s", err.message);
	ck_assert_uint_eq(file_size(1), size);
	ck_assert(!walspool_flush(s, true, true, 99999, &err));
	ck_assert_msg(strstr(err.message, "unusable") != NULL, "%s", err.message);
	read_all(s, recs, 20);
	walspool_close(s);

	s = open_spool(0, &resume);
	ck_assert_uint_eq(resume, 20);
	read_all(s, recs, 20);
	walspool_close(s);
}
END_TEST

/* ----------------------------------------------------------- misc */

START_TEST(test_locked_and_bad_dir)
{
	WalSpool   *s = open_spool(0, NULL);
	WalSpoolOptions opts = {tmpdir, 0, 1};
	WalSpoolOptions bad = {"/proc/self/nonexistent/spool", 0, 1};
	SyncError	err;
	Lsn			resume;

	ck_assert_ptr_null(walspool_open(&opts, &resume, &err));
	ck_assert_msg(strstr(err.message, "in use") != NULL, "%s", err.message);
	ck_assert_str_eq(walspool_dir(s), tmpdir);
	walspool_close(s);
	walspool_close(NULL);
	walspool_cursor_close(NULL);
	ck_assert_ptr_null(walspool_open(&bad, &resume, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_IO);
}
END_TEST

/* ----------------------------------------------------------- volume */

static size_t
resident_bytes(void)
{
	FILE	   *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0;
	unsigned long resident = 0;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%lu %lu", &size, &resident), 2);
	fclose(f);
	return (size_t) resident * (size_t) sysconf(_SC_PAGESIZE);
}

enum
{
	VOLUME_RECORDS = 200000,
	VOLUME_RECORD_BYTES = 200
};

#define RSS_GROWTH_MAX ((size_t) 24 * 1024 * 1024)

START_TEST(test_volume_memory)
{
	WalSpool   *s = open_spool(0, NULL);
	SyncError	err;
	WalSpoolCursor *c;
	size_t		rss_before = resident_bytes();
	uint64_t	raw = 0;
	size_t		i = 0;
	Lsn			lsn;
	const uint8_t *data;
	size_t		len;

	for (uint32_t k = 0; k < VOLUME_RECORDS; k++)
	{
		Rec			r = {1000 + (Lsn) k, VOLUME_RECORD_BYTES - 8 + k % 16, k, false};

		append_rec(s, &r);
		raw += r.len;
		if (k % 5000 == 4999)
			flush(s, true, r.lsn);
	}
	ck_assert_uint_lt(resident_bytes() - rss_before, RSS_GROWTH_MAX);
	ck_assert_uint_lt(walspool_disk_bytes(s), raw / 2);
	c = walspool_cursor_open(s, &err);
	ck_assert_ptr_nonnull(c);
	while (walspool_cursor_next(c, &lsn, &data, &len, &err) == 1)
	{
		Rec			r = {1000 + (Lsn) i, VOLUME_RECORD_BYTES - 8 + i % 16, (uint32_t) i, false};

		check_rec(&r, lsn, data, len, i);
		i++;
	}
	ck_assert_uint_eq(i, VOLUME_RECORDS);
	ck_assert_uint_lt(resident_bytes() - rss_before, RSS_GROWTH_MAX);
	walspool_cursor_close(c);
	walspool_close(s);
}
END_TEST

Suite *
walspool_suite(void)
{
	Suite	   *s = suite_create("walspool");
	TCase	   *basic = tcase_create("round_trip");
	TCase	   *recovery = tcase_create("recovery");
	TCase	   *ops = tcase_create("operations");
	TCase	   *all[] = {basic, recovery, ops};

	tcase_add_test(basic, test_round_trip);
	tcase_add_test(basic, test_concurrent_reader);
	tcase_add_test(basic, test_volume_memory);
	tcase_add_test(recovery, test_recovery_cuts_non_boundary);
	tcase_add_test(recovery, test_recovery_nothing_at_boundary);
	tcase_add_test(recovery, test_torn_tail);
	tcase_add_test(recovery, test_zero_and_corrupt_tail);
	tcase_add_test(recovery, test_corrupt_middle_of_last_segment);
	tcase_add_test(recovery, test_damaged_length_is_not_a_tail);
	tcase_add_test(recovery, test_corrupt_middle_segment);
	tcase_add_test(ops, test_release_before);
	tcase_add_test(ops, test_segment_starts_only_after_clean_frame);
	tcase_add_test(ops, test_resume_is_the_last_boundary_frame);
	tcase_add_test(ops, test_empty_record_round_trips);
	tcase_add_test(ops, test_empty_flush);
	tcase_add_test(ops, test_min_free_guard);
	tcase_add_test(ops, test_failed_write_leaves_spool_intact);
	tcase_add_test(ops, test_locked_and_bad_dir);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
	{
		tcase_add_unchecked_fixture(all[i], setup_basedir, teardown_basedir);
		tcase_add_checked_fixture(all[i], setup_tmpdir, teardown_tmpdir);
		tcase_add_checked_fixture(all[i], setup_scratch, teardown_scratch);
		tcase_set_timeout(all[i], 120);
		suite_add_tcase(s, all[i]);
	}
	return s;
}
