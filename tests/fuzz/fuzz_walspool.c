/*
 * tests/fuzz/fuzz_walspool.c -- fuzz the recovery and the reader of
 * engine/walspool over damaged segment files.
 *
 * Input: one configuration byte, then the bytes of the spool's segment
 * files.  Bit 0 of the configuration byte: split the bytes into two
 * segments (0000000000000001.seg and ...02.seg) at the offset in the next two
 * bytes (modulo the length), else one segment.
 *
 * Oracles besides the sanitizers: open fails only with an I/O or memory
 * error and a terminated message; after a successful open every record a
 * cursor returns fits in the input, and a cursor ends (0) or fails cleanly;
 * recovery is idempotent (a second open keeps the same bytes and resume
 * position); and what recovery kept, plus a record appended and flushed at a
 * boundary, survives a third open with that record's commit end as the
 * resume position and the record last.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/walspool.h"
#include "tests/fuzz/fuzz_target.h"

static char dir[256];

/* Remove every file of the spool directory. */
static void
clear_dir(void)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	char		path[600];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

static void
write_segment(int segno, const uint8_t *data, size_t len)
{
	char		path[600];
	int			fd;

	snprintf(path, sizeof(path), "%s/%016x.seg", dir, segno);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(len == 0 || write(fd, data, len) == (ssize_t) len);
	close(fd);
}

static bool
error_ok(const SyncError *err)
{
	return (err->code == SYNC_ERR_IO || err->code == SYNC_ERR_NOMEM ||
			err->code == SYNC_ERR_INTERNAL) &&
		memchr(err->message, '\0', sizeof(err->message)) != NULL;
}

/*
 * Read every record: the number of records (-1 if the cursor failed), the
 * last record's lsn and length.
 */
static long
read_all(WalSpool *s, size_t input_len, Lsn *last_lsn, size_t *last_len)
{
	SyncError	err;
	WalSpoolCursor *c = walspool_cursor_open(s, &err);
	long		n = 0;

	if (c == NULL)
	{
		FUZZ_CHECK(error_ok(&err));
		return -1;
	}
	for (;;)
	{
		Lsn			lsn;
		const uint8_t *data;
		size_t		len;
		int			r = walspool_cursor_next(c, &lsn, &data, &len, &err);

		if (r == 0)
			break;
		if (r < 0)
		{
			FUZZ_CHECK(error_ok(&err));
			n = -1;
			break;
		}
		FUZZ_CHECK(r == 1);
		/* frames are at most the input; a split record could be longer */
		FUZZ_CHECK(len <= input_len || len <= (size_t) 1024 * 1024 * 1024);
		FUZZ_CHECK(len == 0 || data != NULL);
		*last_lsn = lsn;
		*last_len = len;
		n++;
	}
	walspool_cursor_close(c);
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	WalSpoolOptions opts = {dir, 4096, 1};
	SyncError	err;
	WalSpool   *s;
	Lsn			resume;
	Lsn			resume2;
	Lsn			last_lsn = 0;
	size_t		last_len = 0;
	uint64_t	bytes;
	long		n;
	static const uint8_t rec[] = "fuzz";

	if (dir[0] == '\0')
	{
		const char *tmp = getenv("TMPDIR");

		snprintf(dir, sizeof(dir), "%s/pgstream-fuzz-walspool-XXXXXX",
				 tmp && *tmp ? tmp : "/tmp");
		FUZZ_CHECK(mkdtemp(dir) != NULL);
	}
	clear_dir();
	if (size == 0)
		return 0;
	if ((data[0] & 1) && size >= 3)
	{
		size_t		body = size - 3;
		size_t		at = body ? (size_t) (data[1] | data[2] << 8) % body : 0;

		write_segment(1, data + 3, at);
		write_segment(2, data + 3 + at, body - at);
	}
	else
		write_segment(1, data + 1, size - 1);

	s = walspool_open(&opts, &resume, &err);
	if (s == NULL)
	{
		FUZZ_CHECK(error_ok(&err));
		FUZZ_CHECK(resume == 0);
		return 0;
	}
	n = read_all(s, size, &last_lsn, &last_len);
	bytes = walspool_disk_bytes(s);
	walspool_close(s);

	/* recovery is idempotent */
	s = walspool_open(&opts, &resume2, &err);
	FUZZ_CHECK(s != NULL);
	FUZZ_CHECK(resume2 == resume);
	FUZZ_CHECK(walspool_disk_bytes(s) == bytes);
	FUZZ_CHECK(read_all(s, size, &last_lsn, &last_len) == n);

	/* what was kept, plus a record flushed at a boundary, survives */
	if (n >= 0 && resume < UINT64_MAX - 1)
	{
		FUZZ_CHECK(walspool_append(s, resume + 1, rec, sizeof(rec), &err));
		FUZZ_CHECK(walspool_flush(s, true, true, resume + 1, &err));
		walspool_close(s);
		s = walspool_open(&opts, &resume2, &err);
		FUZZ_CHECK(s != NULL);
		FUZZ_CHECK(resume2 == resume + 1);
		FUZZ_CHECK(read_all(s, size, &last_lsn, &last_len) == n + 1);
		FUZZ_CHECK(last_lsn == resume + 1 && last_len == sizeof(rec));
	}
	walspool_close(s);
	return 0;
}
