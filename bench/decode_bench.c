/*
 * bench/decode_bench.c -- decode throughput of protocol/ on a synthetic
 * walsender stream.
 *
 * Builds ~100 MB of CopyData payloads in memory, as libpq would hand them
 * over: a Relation, then transactions of Begin, 10 Inserts of 8 text columns,
 * 5 Updates (key + new tuple, one unchanged TOAST column) and Commit, each
 * wrapped in an XLogData envelope.  Then times replication_decode() +
 * pgoutput_decode() over the whole stream with a per-message arena reset, as
 * the engine does, and prints the best of a few passes.  Build and run: see
 * bench/README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol/pgoutput.h"
#include "protocol/replication.h"
#include "tests/support/wire_build.h"

#define TARGET_BYTES ((size_t) 100 * 1024 * 1024)
#define PASSES 5
#define NCOLS 8

/* The stream: frames of a 4-byte host-order length and one CopyData payload. */
typedef struct Stream
{
	uint8_t *buf;
	size_t len;
	size_t cap;
	size_t messages;
	size_t payload_bytes;
} Stream;

static const WireColumn columns[NCOLS] = {
    {1, "id", 20, -1},           {0, "customer_id", 2950, -1},
    {0, "name", 25, -1},         {0, "email", 1043, 259},
    {0, "created_at", 1184, -1}, {0, "amount", 1700, 655366},
    {0, "status", 25, -1},       {0, "description", 25, -1},
};

/* Wrap pgoutput message msg in an XLogData envelope and append it. */
static void
stream_add(Stream *s, const uint8_t *msg, size_t len, Lsn lsn)
{
	ByteWriter w;
	uint32_t frame;

	if (s->cap - s->len < len + 64)
	{
		(void) fprintf(stderr, "stream buffer full\n");
		exit(1);
	}
	byte_writer_init(&w, s->buf + s->len + 4, s->cap - s->len - 4);
	wire_xlogdata(&w, lsn, lsn, 817552167123456, msg, len);
	frame = (uint32_t) w.len;
	memcpy(s->buf + s->len, &frame, 4);
	s->len += 4 + w.len;
	s->messages++;
	s->payload_bytes += w.len;
}

/* One row's 8 text values; row varies the lengths a little. */
static void
row_texts(uint64_t row, char texts[NCOLS][80], const char *out[NCOLS])
{
	(void) snprintf(texts[0], 80, "%llu", (unsigned long long) row);
	(void) snprintf(texts[1], 80, "6f1c%04llx-8d2e-4b7a-9c3f-1a2b3c4d5e6f",
	                (unsigned long long) (row % 65536));
	(void) snprintf(texts[2], 80, "Customer %llu",
	                (unsigned long long) (row % 9973));
	(void) snprintf(texts[3], 80, "user%llu@example.com",
	                (unsigned long long) row);
	(void) snprintf(texts[4], 80, "2025-11-27 09:49:%02llu.123456+00",
	                (unsigned long long) (row % 60));
	(void) snprintf(texts[5], 80, "%llu.%02llu",
	                (unsigned long long) (row % 100000),
	                (unsigned long long) (row % 100));
	(void) snprintf(texts[6], 80, "%s", row % 3 == 0 ? "shipped" : "pending");
	(void) snprintf(texts[7], 80,
	                "order note %llu: leave at the door, ring twice, fragile",
	                (unsigned long long) row);
	for (int i = 0; i < NCOLS; i++)
		out[i] = texts[i];
}

static void
add_change(Stream *s, uint64_t row, bool update, Lsn lsn)
{
	uint8_t msg[2048];
	char texts[NCOLS][80];
	const char *vals[NCOLS];
	ByteWriter w;

	row_texts(row, texts, vals);
	byte_writer_init(&w, msg, sizeof(msg));
	byte_writer_u8(&w, update ? 'U' : 'I');
	byte_writer_u32(&w, 16385);
	if (update)
	{
		const char *key[NCOLS] = {vals[0]};

		byte_writer_u8(&w, 'K');
		wire_tuple_text(&w, NCOLS, key);
		vals[7] = NULL; /* stands in for an unchanged TOAST value below */
	}
	byte_writer_u8(&w, 'N');
	wire_tuple_text(&w, NCOLS, vals);
	if (update) /* turn the last column's 'n' into 'u' */
		msg[w.len - 1] = 'u';
	stream_add(s, msg, w.len, lsn);
}

static void
add_transaction(Stream *s, uint64_t *row, Lsn *lsn, Xid xid)
{
	uint8_t msg[128];
	ByteWriter w;
	Lsn begin_lsn = *lsn;

	*lsn += (Lsn) 40 * 200;
	byte_writer_init(&w, msg, sizeof(msg));
	wire_begin(&w, *lsn, 817552167123456, xid);
	stream_add(s, msg, w.len, begin_lsn);
	for (int i = 0; i < 10; i++)
		add_change(s, (*row)++, false, begin_lsn + 200 * (Lsn) i);
	for (int i = 0; i < 5; i++)
		add_change(s, *row - 10 + (uint64_t) i * 2, true,
		           begin_lsn + 2000 + 200 * (Lsn) i);
	byte_writer_init(&w, msg, sizeof(msg));
	wire_commit(&w, 0, *lsn, *lsn + 48, 817552167123456);
	stream_add(s, msg, w.len, *lsn + 48);
	*lsn += 48;
}

static void
stream_build(Stream *s)
{
	uint8_t msg[1024];
	ByteWriter w;
	uint64_t row = 1;
	Lsn lsn = 0x16B374D848;
	Xid xid = 700;

	s->cap = TARGET_BYTES + (1 << 20);
	s->buf = malloc(s->cap);
	if (s->buf == NULL)
		exit(1);
	byte_writer_init(&w, msg, sizeof(msg));
	wire_relation(&w, 0, 16385, "public", "orders", 'd', NCOLS, columns);
	stream_add(s, msg, w.len, 0);
	while (s->len < TARGET_BYTES)
		add_transaction(s, &row, &lsn, xid++);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/*
 * Decode every frame; returns a checksum of decoded values so the work
 * cannot be optimised away, or exits on the first decode failure.
 */
static uint64_t
stream_decode(const Stream *s, Arena *arena)
{
	PgoutputState st;
	uint64_t sum = 0;
	size_t pos = 0;

	pgoutput_state_init(&st, PGOUTPUT_PROTO_MAX, false);
	while (pos < s->len)
	{
		uint32_t frame;
		ReplMessage rm;
		PgoutputMessage m;
		SyncError err;

		memcpy(&frame, s->buf + pos, 4);
		pos += 4;
		if (replication_decode(s->buf + pos, frame, &rm, &err) != DECODE_OK ||
		    pgoutput_decode(rm.data, rm.data_len, &st, &m, arena, &err) !=
		        DECODE_OK)
		{
			(void) fprintf(stderr, "decode failed at frame offset %zu: %s\n",
			               pos, err.message);
			exit(1);
		}
		pos += frame;
		sum += m.type == PGOUTPUT_MSG_INSERT || m.type == PGOUTPUT_MSG_UPDATE
		           ? m.u.change.new_tuple.values[0].data.len
		           : 1;
		arena_reset(arena);
	}
	return sum;
}

int
main(void)
{
	Stream s = {0};
	Arena arena;
	double best = 1e30;
	uint64_t sum = 0;

	stream_build(&s);
	arena_init(&arena, NULL, 0);
	for (int pass = 0; pass < PASSES; pass++)
	{
		double t0 = now_seconds();
		double dt;

		sum += stream_decode(&s, &arena);
		dt = now_seconds() - t0;
		if (dt < best)
			best = dt;
	}
	printf("stream: %zu messages, %.1f MB of CopyData payloads "
	       "(Relation, then Begin, 10 Insert, 5 Update, Commit per txn; "
	       "8 text columns)\n",
	       s.messages, (double) s.payload_bytes / 1e6);
	printf("best of %d passes: %.3f s, %.2f M messages/s, %.0f MB/s, "
	       "%.1f ns/message (checksum %llu)\n",
	       PASSES, best, (double) s.messages / best / 1e6,
	       (double) s.payload_bytes / best / 1e6,
	       best * 1e9 / (double) s.messages, (unsigned long long) sum);
	arena_term(&arena);
	free(s.buf);
	return 0;
}
