/*
 * tests/unit/test_spool.c -- Spool: round trip, subtransaction aborts
 * checked against an in-memory model, corruption and truncation detection,
 * bounded memory at volume, and failing directories and writes.
 *
 * Every test gets a fresh mkdtemp directory (checked fixture), removed
 * afterwards with everything in it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/txspool.h"
#include "tests/unit/suites.h"

#define TOP_XID 700u

static char basedir[64]; /* per TCase, made in the parent process */
static char tmpdir[96];  /* per test, inside basedir */

/* ------------------------------------------------------------- fixture */

static void
remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (d == NULL)
	{
		(void) unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL)
	{
		char child[512];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		(void) snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		remove_tree(child);
	}
	closedir(d);
	(void) rmdir(path);
}

/*
 * A failing test's process exits before its checked teardown runs, so the
 * per-test directories live in a per-TCase one that the parent removes.
 */
static void
setup_basedir(void)
{
	(void) snprintf(basedir, sizeof(basedir), "/tmp/pgstream-spool-XXXXXX");
	if (mkdtemp(basedir) == NULL)
		abort();
}

static void
teardown_basedir(void)
{
	remove_tree(basedir);
}

static void
setup_tmpdir(void)
{
	(void) snprintf(tmpdir, sizeof(tmpdir), "%s/test-XXXXXX", basedir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown_tmpdir(void)
{
	remove_tree(tmpdir);
}

/* ----------------------------------------------------------- record data */

/* Deterministic record content: compressible text or random bytes. */
static void
fill_record(uint8_t *buf, size_t len, uint32_t seed, bool random)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++)
	{
		if (random)
		{
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			buf[i] = (uint8_t) x;
		}
		else
			buf[i] = (uint8_t) ("abcdefgh"[(seed + i / 16) % 8]);
	}
}

/* One record the spool should hold: who it belongs to and how to make it. */
typedef struct ModelRecord
{
	Xid xid;
	size_t len;
	uint32_t seed;
	bool random;
} ModelRecord;

/* What a replay should deliver, compared on the fly. */
typedef struct Expect
{
	const ModelRecord *recs;
	size_t nrecs;
	size_t seen;
	uint8_t *scratch; /* big enough for the largest record */
} Expect;

static bool
expect_record(const uint8_t *data, size_t len, void *arg, SyncError *err)
{
	Expect *e = arg;
	const ModelRecord *r;

	if (e->seen >= e->nrecs)
		return sync_error_set(err, SYNC_ERR_INTERNAL, "record %zu is extra",
		                      e->seen);
	r = &e->recs[e->seen];
	if (len != r->len)
		return sync_error_set(err, SYNC_ERR_INTERNAL,
		                      "record %zu has %zu bytes, expected %zu", e->seen,
		                      len, r->len);
	fill_record(e->scratch, len, r->seed, r->random);
	if (len > 0 && memcmp(data, e->scratch, len) != 0)
		return sync_error_set(err, SYNC_ERR_INTERNAL,
		                      "record %zu has the wrong content", e->seen);
	e->seen++;
	return true;
}

/* A growing list of records, mirrored into a spool. */
typedef struct Model
{
	ModelRecord *recs;
	size_t n;
	size_t cap;
	size_t max_len;
	uint64_t raw_bytes;
} Model;

static void
model_append(Model *m, Spool *s, Xid xid, size_t len, uint32_t seed,
             bool random)
{
	SyncError err;
	uint8_t *buf = len > 0 ? malloc(len) : NULL;

	if (m->n == m->cap)
	{
		m->cap = m->cap == 0 ? 64 : m->cap * 2;
		m->recs = realloc(m->recs, m->cap * sizeof(*m->recs));
		ck_assert_ptr_nonnull(m->recs);
	}
	m->recs[m->n++] = (ModelRecord){xid, len, seed, random};
	if (len > m->max_len)
		m->max_len = len;
	m->raw_bytes += len;
	fill_record(buf, len, seed, random);
	ck_assert_msg(spool_append(s, xid, buf, len, &err), "%s", err.message);
	free(buf);
}

/* Drop the first record of xid and everything after it, as the spool does. */
static void
model_abort(Model *m, Spool *s, Xid xid)
{
	SyncError err;

	for (size_t i = 0; i < m->n; i++)
	{
		if (m->recs[i].xid != xid)
			continue;
		for (size_t k = i; k < m->n; k++)
			m->raw_bytes -= m->recs[k].len;
		m->n = i;
		break;
	}
	ck_assert_msg(spool_abort_subxact(s, xid, &err), "%s", err.message);
}

/* Replay s and check it delivers exactly the model, counters included. */
static void
check_replay(Spool *s, const Model *m)
{
	SyncError err;
	Expect e = {m->recs, m->n, 0, malloc(m->max_len + 1)};

	ck_assert_uint_eq(spool_record_count(s), m->n);
	ck_assert_uint_eq(spool_raw_bytes(s), m->raw_bytes);
	ck_assert_msg(spool_replay(s, expect_record, &e, &err), "%s", err.message);
	ck_assert_uint_eq(e.seen, m->n);
	free(e.scratch);
}

static Spool *
create_spool(void)
{
	SyncError err;
	Spool *s = spool_create(tmpdir, TOP_XID, &err);

	ck_assert_msg(s != NULL, "%s", err.message);
	return s;
}

static off_t
file_size(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

/* ------------------------------------------------------------ creation */

START_TEST(create_makes_missing_directories_and_an_empty_spool)
{
	SyncError err;
	char dir[128];
	struct stat st;
	Model m = {0};
	Spool *s;

	(void) snprintf(dir, sizeof(dir), "%s/a/b", tmpdir);
	s = spool_create(dir, 42, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	ck_assert_ptr_nonnull(strstr(spool_path(s), "/a/b/xact-42.spool"));
	ck_assert_uint_eq(spool_record_count(s), 0);
	ck_assert_uint_eq(spool_raw_bytes(s), 0);
	ck_assert_int_eq(file_size(spool_path(s)), spool_file_bytes(s));
	check_replay(s, &m);
	(void) snprintf(dir, sizeof(dir), "%s", spool_path(s));
	spool_destroy(s, true);
	ck_assert_int_eq(access(dir, F_OK), -1);
}
END_TEST

START_TEST(create_truncates_an_existing_spool_and_destroy_keeps_or_removes)
{
	Model m = {0};
	Model empty = {0};
	Spool *s = create_spool();
	char path[256];

	for (uint32_t i = 0; i < 2000; i++)
		model_append(&m, s, TOP_XID, 90, i, false);
	check_replay(s, &m);
	(void) snprintf(path, sizeof(path), "%s", spool_path(s));
	spool_destroy(s, false);
	ck_assert_int_gt(file_size(path), 1000);

	s = create_spool();
	ck_assert_int_eq(file_size(path), spool_file_bytes(s));
	check_replay(s, &empty);
	spool_destroy(s, true);
	ck_assert_int_eq(access(path, F_OK), -1);
	spool_destroy(NULL, true);
	free(m.recs);
}
END_TEST

/* ---------------------------------------------------------- round trip */

START_TEST(records_of_varied_sizes_come_back_in_order)
{
	static const size_t sizes[] = {0,     1,       7,     8,     100,   1000,
	                               65527, 65528,   65529, 65536, 0,     3,
	                               70000, 1 << 20, 0,     5,     200000};
	Model m = {0};
	Spool *s = create_spool();
	SyncError err;

	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			model_append(&m, s, TOP_XID + (uint32_t) (i % 3), sizes[i],
			             (uint32_t) round * 100 + (uint32_t) i,
			             (i + round) % 2 == 0);
	/* A zero-length record may come with no buffer at all. */
	ck_assert(spool_append(s, TOP_XID, NULL, 0, &err));
	m.recs[m.n++] = (ModelRecord){TOP_XID, 0, 0, false};
	check_replay(s, &m);
	ck_assert_int_eq(file_size(spool_path(s)), spool_file_bytes(s));
	/* Replay again, then append after a replay and replay once more. */
	check_replay(s, &m);
	model_append(&m, s, TOP_XID, 33, 1, false);
	check_replay(s, &m);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

START_TEST(many_small_records_span_blocks_and_compress)
{
	Model m = {0};
	Spool *s = create_spool();

	for (uint32_t i = 0; i < 20000; i++)
		model_append(&m, s, TOP_XID, 20 + i % 50, i, false);
	check_replay(s, &m);
	ck_assert_uint_lt(spool_file_bytes(s), spool_raw_bytes(s) / 4);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

static bool
stop_at_five(const uint8_t *data, size_t len, void *arg, SyncError *err)
{
	int *calls = arg;

	(void) data;
	(void) len;
	if (++*calls == 5)
		return sync_error_set(err, SYNC_ERR_SERVER, "target refused record 5");
	return true;
}

START_TEST(callback_failure_stops_replay_with_its_error)
{
	Model m = {0};
	Spool *s = create_spool();
	SyncError err;
	int calls = 0;

	for (uint32_t i = 0; i < 10; i++)
		model_append(&m, s, TOP_XID, 10, i, false);
	ck_assert(!spool_replay(s, stop_at_five, &calls, &err));
	ck_assert_int_eq(calls, 5);
	ck_assert_int_eq(err.code, SYNC_ERR_SERVER);
	ck_assert_str_eq(err.message, "target refused record 5");
	check_replay(s, &m);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

START_TEST(oversized_record_is_refused_and_the_spool_stays_usable)
{
	Model m = {0};
	Spool *s = create_spool();
	SyncError err;
	uint8_t byte = 0;

	model_append(&m, s, TOP_XID, 10, 1, false);
	ck_assert(!spool_append(s, TOP_XID, &byte, SPOOL_RECORD_MAX + 1, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_INVALID);
	ck_assert(!spool_append(s, TOP_XID, NULL, 1, &err));
	model_append(&m, s, TOP_XID, 10, 2, false);
	check_replay(s, &m);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

/* ---------------------------------------------------- subxact aborts */

START_TEST(abort_in_the_current_block)
{
	Model m = {0};
	Spool *s = create_spool();
	uint64_t file_bytes;

	for (uint32_t i = 0; i < 3; i++)
		model_append(&m, s, TOP_XID, 100, i, false);
	model_append(&m, s, 10, 100, 3, false);
	model_append(&m, s, 10, 0, 4, false);
	model_append(&m, s, TOP_XID, 100, 5, false);
	file_bytes = spool_file_bytes(s);
	model_abort(&m, s, 10);
	ck_assert_uint_eq(m.n, 3);
	ck_assert_uint_eq(spool_file_bytes(s), file_bytes);
	check_replay(s, &m);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

START_TEST(abort_in_an_earlier_written_block)
{
	Model m = {0};
	Spool *s = create_spool();
	uint64_t before;

	for (uint32_t i = 0; i < 1500; i++)
		model_append(&m, s, TOP_XID, 100, i, true);
	model_append(&m, s, 10, 100, 9999, true);
	for (uint32_t i = 0; i < 3000; i++)
		model_append(&m, s, i % 2 ? TOP_XID : 10, 100, i, true);
	before = spool_file_bytes(s);
	model_abort(&m, s, 10);
	ck_assert_uint_eq(m.n, 1500);
	ck_assert_uint_lt(spool_file_bytes(s), before);
	check_replay(s, &m);
	ck_assert_int_eq(file_size(spool_path(s)), spool_file_bytes(s));
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

START_TEST(abort_of_a_subxid_with_no_record_is_a_noop)
{
	Model m = {0};
	Spool *s = create_spool();
	uint64_t file_bytes;

	for (uint32_t i = 0; i < 1000; i++)
		model_append(&m, s, i % 2 ? TOP_XID : 10, 100, i, false);
	file_bytes = spool_file_bytes(s);
	model_abort(&m, s, 11);
	ck_assert_uint_eq(m.n, 1000);
	ck_assert_uint_eq(spool_file_bytes(s), file_bytes);
	check_replay(s, &m);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

START_TEST(abort_of_the_first_record_empties_the_spool)
{
	Model m = {0};
	Spool *s = create_spool();
	uint64_t empty_bytes = spool_file_bytes(s);

	model_append(&m, s, 10, 100, 0, false);
	for (uint32_t i = 0; i < 2000; i++)
		model_append(&m, s, i % 2 ? TOP_XID : 11, 100, i, false);
	model_append(&m, s, 12, 100000, 7, true);
	model_abort(&m, s, 10);
	ck_assert_uint_eq(m.n, 0);
	ck_assert_uint_eq(spool_file_bytes(s), empty_bytes);
	check_replay(s, &m);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

START_TEST(abort_then_more_appends_then_replay)
{
	Model m = {0};
	Spool *s = create_spool();

	for (uint32_t i = 0; i < 700; i++)
		model_append(&m, s, TOP_XID, 120, i, false);
	model_append(&m, s, 10, 50, 1, false);
	for (uint32_t i = 0; i < 700; i++)
		model_append(&m, s, 10, 120, i, false);
	model_abort(&m, s, 10);
	/* The reloaded partial block fills up and is written again. */
	for (uint32_t i = 0; i < 2000; i++)
		model_append(&m, s, i % 3 ? TOP_XID : 11, 120, i + 5000, false);
	model_abort(&m, s, 10); /* gone already: no-op */
	model_append(&m, s, 12, 80000, 3, true);
	model_append(&m, s, TOP_XID, 10, 4, false);
	check_replay(s, &m);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

START_TEST(abort_of_a_subxact_starting_with_an_oversized_record)
{
	Model m = {0};
	Spool *s = create_spool();

	model_append(&m, s, TOP_XID, 100, 1, false);
	model_append(&m, s, 10, 300000, 2, true);
	model_append(&m, s, TOP_XID, 100, 3, false);
	model_append(&m, s, 10, 100, 4, false);
	model_abort(&m, s, 10);
	ck_assert_uint_eq(m.n, 1);
	check_replay(s, &m);
	model_append(&m, s, 11, 100, 5, false);
	check_replay(s, &m);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

START_TEST(nested_subxacts_abort_inner_then_outer)
{
	Model m = {0};
	Spool *s = create_spool();

	model_append(&m, s, TOP_XID, 100, 1, false);
	model_append(&m, s, 10, 100, 2, false);
	model_append(&m, s, 11, 100, 3, false); /* child of 10 */
	model_abort(&m, s, 11);
	model_append(&m, s, 10, 100, 4, false);
	ck_assert_uint_eq(m.n, 3);
	check_replay(s, &m);
	model_abort(&m, s, 10);
	ck_assert_uint_eq(m.n, 1);
	check_replay(s, &m);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

/*
 * Thousands of subtransactions (the index grows and shrinks many times),
 * random record sizes and random aborts, checked against the model.
 */
START_TEST(random_appends_and_aborts_match_the_model)
{
	Model m = {0};
	Spool *s = create_spool();
	uint32_t rng = 12345u + (uint32_t) _i;
	Xid next_xid = 1000;

	for (int op = 0; op < 6000; op++)
	{
		uint32_t r;

		rng = rng * 1103515245u + 12345u;
		r = rng >> 8;
		if (r % 100 < 8 && next_xid > 1000)
			model_abort(&m, s, 1000 + (r / 100) % (next_xid - 1000));
		else if (r % 100 < 20)
			model_append(&m, s, next_xid++, r % 300, r, r % 2);
		else
		{
			Xid xid = r % 4 == 0 || next_xid == 1000
			              ? TOP_XID
			              : 1000 + (r / 7) % (next_xid - 1000);
			size_t len = r % 97 == 0 ? 70000 + r % 5000 : r % 400;

			model_append(&m, s, xid, len, r, r % 5 == 0);
		}
	}
	check_replay(s, &m);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

/* --------------------------------------------------------- corruption */

/* A small spool (a few ordinary blocks and a SINGLE one) for tampering. */
static Spool *
small_spool(Model *m)
{
	Spool *s = create_spool();

	for (uint32_t i = 0; i < 1300; i++)
		model_append(m, s, i < 650 ? TOP_XID : 10, 100, i / 200, false);
	model_append(m, s, TOP_XID, 70000, 1, false);
	model_append(m, s, TOP_XID, 100, 2, false);
	/* Replaying writes the last block out. */
	check_replay(s, m);
	return s;
}

static bool
count_record(const uint8_t *data, size_t len, void *arg, SyncError *err)
{
	(void) data;
	(void) len;
	(void) err;
	++*(size_t *) arg;
	return true;
}

static void
write_byte(int fd, off_t off, uint8_t b)
{
	ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
}

START_TEST(every_flipped_byte_is_detected)
{
	Model m = {0};
	Spool *s = small_spool(&m);
	off_t size = file_size(spool_path(s));
	int fd = open(spool_path(s), O_RDWR);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_lt(size, 8000);
	for (off_t off = 0; off < size; off++)
	{
		SyncError err;
		uint8_t orig;
		size_t seen = 0;

		ck_assert_int_eq(pread(fd, &orig, 1, off), 1);
		write_byte(fd, off, orig ^ (uint8_t) (1u << (off % 8)));
		ck_assert_msg(!spool_replay(s, count_record, &seen, &err),
		              "flip at offset %lld went unnoticed", (long long) off);
		ck_assert_int_eq(err.code, SYNC_ERR_IO);
		ck_assert_ptr_nonnull(strstr(err.message, "is corrupt"));
		ck_assert_ptr_nonnull(strstr(err.message, spool_path(s)));
		write_byte(fd, off, orig);
	}
	close(fd);
	check_replay(s, &m);
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

START_TEST(truncated_or_extended_file_is_detected)
{
	Model m = {0};
	Spool *s = small_spool(&m);
	off_t size = file_size(spool_path(s));
	const off_t cuts[] = {0, 1, 16, 17, 44, size / 2, size - 1};
	SyncError err;
	size_t seen = 0;

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
	{
		ck_assert_int_eq(truncate(spool_path(s), cuts[i]), 0);
		ck_assert(!spool_replay(s, count_record, &seen, &err));
		ck_assert_ptr_nonnull(strstr(err.message, "is corrupt"));
	}
	ck_assert_int_eq(truncate(spool_path(s), size + 100), 0);
	ck_assert(!spool_replay(s, count_record, &seen, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "expected"));
	spool_destroy(s, true);
	free(m.recs);
}
END_TEST

/* ------------------------------------------------------------- volume */

static uint8_t *
put_text(uint8_t *p, const char *text)
{
	size_t n = strlen(text);

	for (size_t k = 0; k < n; k++)
		p[k] = (uint8_t) text[k];
	return p + n;
}

static uint8_t *
put_digits(uint8_t *p, uint32_t v, int width)
{
	for (int k = width - 1; k >= 0; k--, v /= 10)
		p[k] = (uint8_t) ('0' + v % 10);
	return p + width;
}

/*
 * A 100-byte record shaped like a pgoutput INSERT with text columns
 * (snprintf would make it the slowest part of the test).
 */
static void
insert_message(uint8_t *buf, uint32_t i)
{
	static const uint8_t head[] = {'I', 0, 0, 0x40, 0x01, 'N', 0, 4, 't'};
	uint8_t *p = buf + sizeof(head);

	memcpy(buf, head, sizeof(head));
	p = put_digits(p, i, 8);
	p = put_text(p, "|customer-");
	p = put_digits(p, i % 100000, 7);
	p = put_text(p, "|2024-05-");
	p = put_digits(p, 1 + i % 28, 2);
	p = put_text(p, " 12:");
	p = put_digits(p, i % 60, 2);
	p = put_text(p, ":");
	p = put_digits(p, (i / 60) % 60, 2);
	p = put_text(p, "+00|status=active|note=");
	memset(p, 'x', (size_t) (buf + 100 - p));
}

static size_t
resident_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long total = 0;
	unsigned long resident = 0;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%lu %lu", &total, &resident), 2);
	(void) fclose(f);
	return resident * (size_t) sysconf(_SC_PAGESIZE);
}

/* RSS growth since before, 0 if it shrank. */
static size_t
resident_growth(size_t before)
{
	size_t now = resident_bytes();

	return now > before ? now - before : 0;
}

typedef struct VolumeCheck
{
	uint32_t next;
	uint8_t buf[101];
} VolumeCheck;

static bool
check_insert(const uint8_t *data, size_t len, void *arg, SyncError *err)
{
	VolumeCheck *v = arg;

	insert_message(v->buf, v->next);
	if (len != 100 || memcmp(data, v->buf, 100) != 0)
		return sync_error_set(err, SYNC_ERR_INTERNAL, "record %u differs",
		                      v->next);
	v->next++;
	return true;
}

#define VOLUME_RECORDS 1000000u
#define RSS_GROWTH_MAX ((size_t) 32 * 1024 * 1024)

START_TEST(a_million_records_compress_and_memory_stays_flat)
{
	SyncError err;
	VolumeCheck v = {0};
	uint8_t buf[101];
	size_t rss_before = resident_bytes();
	Spool *s = create_spool();

	/* ck_assert in this loop would log a check point per record. */
	for (uint32_t i = 0; i < VOLUME_RECORDS; i++)
	{
		insert_message(buf, i);
		if (!spool_append(s, i % 10 ? TOP_XID : 10 + i / 1000, buf, 100, &err))
			ck_abort_msg("%s", err.message);
	}
	ck_assert_uint_lt(resident_growth(rss_before), RSS_GROWTH_MAX);
	ck_assert_msg(spool_replay(s, check_insert, &v, &err), "%s", err.message);
	ck_assert_uint_eq(v.next, VOLUME_RECORDS);
	ck_assert_uint_eq(spool_record_count(s), VOLUME_RECORDS);
	ck_assert_uint_eq(spool_raw_bytes(s), (uint64_t) 100 * VOLUME_RECORDS);
	ck_assert_uint_lt(spool_file_bytes(s), spool_raw_bytes(s) / 2);
	ck_assert_uint_lt(resident_growth(rss_before), RSS_GROWTH_MAX);
	spool_destroy(s, true);
}
END_TEST

/* ------------------------------------------------------------ failures */

START_TEST(create_fails_cleanly_when_the_directory_cannot_be_made)
{
	SyncError err;
	char file[128];
	char dir[160];
	int fd;

	(void) snprintf(file, sizeof(file), "%s/plain", tmpdir);
	fd = open(file, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	(void) snprintf(dir, sizeof(dir), "%s/sub", file);
	ck_assert_ptr_null(spool_create(dir, 1, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.message, "plain/sub"));
	ck_assert_ptr_nonnull(strstr(err.message, strerror(ENOTDIR)));
	/* The directory exists as a file: creating the spool file fails. */
	ck_assert_ptr_null(spool_create(file, 1, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.message, "plain/xact-1.spool"));
	ck_assert_ptr_null(spool_create("", 1, &err));
	ck_assert_int_eq(err.code, SYNC_ERR_USAGE);
}
END_TEST

/*
 * RLIMIT_FSIZE makes writes past the limit fail with EFBIG, as a full disk
 * would with ENOSPC.  CK_FORK runs each test in its own process; the limit
 * and the signal disposition are restored anyway for CK_FORK=no.
 */
START_TEST(failed_write_names_the_file_and_the_spool_stays_failed)
{
	struct rlimit old;
	struct rlimit lim;
	void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
	Spool *s = create_spool();
	SyncError err;
	uint8_t buf[1000];
	bool ok = true;
	size_t seen = 0;
	int i;

	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t) 200 * 1024;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (i = 0; ok && i < 1000; i++)
	{
		fill_record(buf, sizeof(buf), (uint32_t) i, true);
		ok = spool_append(s, TOP_XID, buf, sizeof(buf), &err);
	}
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	(void) signal(SIGXFSZ, old_handler);
	ck_assert(!ok);
	ck_assert_int_eq(err.code, SYNC_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.message, spool_path(s)));
	ck_assert_ptr_nonnull(strstr(err.message, strerror(EFBIG)));
	ck_assert(!spool_append(s, TOP_XID, buf, 10, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "unusable"));
	ck_assert(!spool_abort_subxact(s, TOP_XID, &err));
	ck_assert(!spool_replay(s, count_record, &seen, &err));
	spool_destroy(s, true);
}
END_TEST

Suite *
spool_suite(void)
{
	Suite *s = suite_create("spool");
	TCase *basic = tcase_create("round_trip");
	TCase *abort = tcase_create("subxact_abort");
	TCase *corrupt = tcase_create("corruption");
	TCase *volume = tcase_create("volume");
	TCase *fail = tcase_create("failures");
	TCase *all[] = {basic, abort, corrupt, volume, fail};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
	{
		tcase_add_unchecked_fixture(all[i], setup_basedir, teardown_basedir);
		tcase_add_checked_fixture(all[i], setup_tmpdir, teardown_tmpdir);
		suite_add_tcase(s, all[i]);
	}
	tcase_add_test(basic, create_makes_missing_directories_and_an_empty_spool);
	tcase_add_test(
	    basic, create_truncates_an_existing_spool_and_destroy_keeps_or_removes);
	tcase_add_test(basic, records_of_varied_sizes_come_back_in_order);
	tcase_add_test(basic, many_small_records_span_blocks_and_compress);
	tcase_add_test(basic, callback_failure_stops_replay_with_its_error);
	tcase_add_test(basic,
	               oversized_record_is_refused_and_the_spool_stays_usable);
	tcase_add_test(abort, abort_in_the_current_block);
	tcase_add_test(abort, abort_in_an_earlier_written_block);
	tcase_add_test(abort, abort_of_a_subxid_with_no_record_is_a_noop);
	tcase_add_test(abort, abort_of_the_first_record_empties_the_spool);
	tcase_add_test(abort, abort_then_more_appends_then_replay);
	tcase_add_test(abort, abort_of_a_subxact_starting_with_an_oversized_record);
	tcase_add_test(abort, nested_subxacts_abort_inner_then_outer);
	tcase_add_loop_test(abort, random_appends_and_aborts_match_the_model, 0, 4);
	tcase_add_test(corrupt, every_flipped_byte_is_detected);
	tcase_add_test(corrupt, truncated_or_extended_file_is_detected);
	tcase_add_test(volume, a_million_records_compress_and_memory_stays_flat);
	tcase_set_timeout(volume, 60);
	tcase_add_test(fail,
	               create_fails_cleanly_when_the_directory_cannot_be_made);
	tcase_add_test(fail,
	               failed_write_names_the_file_and_the_spool_stays_failed);
	return s;
}
