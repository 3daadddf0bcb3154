/*
 * tests/fuzz/fuzz_replication.c -- fuzz replication_decode(), and feed each
 * XLogData payload on to pgoutput_decode() (protocol 4, outside and inside a
 * stream block, with and without parallel streaming), as the engine does.
 *
 * Oracles besides the sanitizers: status and error code agree; a keepalive is
 * exactly 18 bytes; an XLogData payload is exactly the bytes after the
 * 25-byte header.
 */
#include <string.h>

#include "protocol/pgoutput.h"
#include "protocol/replication.h"
#include "tests/fuzz/fuzz_target.h"

static void
check_status(DecodeStatus status, const SyncError *err)
{
	if (status == DECODE_OK)
		return;
	FUZZ_CHECK(status == DECODE_TRUNCATED || status == DECODE_INVALID);
	FUZZ_CHECK(status != DECODE_TRUNCATED || err->code == SYNC_ERR_TRUNCATED);
	FUZZ_CHECK(status != DECODE_INVALID || err->code == SYNC_ERR_INVALID ||
	           err->code == SYNC_ERR_NOMEM);
	FUZZ_CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL);
}

static void
decode_payload(const ReplMessage *rm, Arena *arena)
{
	for (int variant = 0; variant < 4; variant++)
	{
		PgoutputState st;
		PgoutputMessage m;
		SyncError err;
		DecodeStatus status;

		pgoutput_state_init(&st, PGOUTPUT_PROTO_MAX, (variant & 2) != 0);
		st.in_stream = (variant & 1) != 0;
		status = pgoutput_decode(rm->data, rm->data_len, &st, &m, arena, &err);
		check_status(status, &err);
		arena_reset(arena);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static Arena arena;
	static bool ready;
	ReplMessage rm;
	SyncError err;
	DecodeStatus status;

	if (!ready)
	{
		arena_init(&arena, NULL, 0);
		ready = true;
	}
	status = replication_decode(data, size, &rm, &err);
	check_status(status, &err);
	if (status != DECODE_OK)
		return 0;
	if (rm.kind == REPL_MSG_KEEPALIVE)
	{
		FUZZ_CHECK(size == REPL_KEEPALIVE_LEN && rm.data == NULL);
		return 0;
	}
	FUZZ_CHECK(rm.kind == REPL_MSG_XLOGDATA);
	FUZZ_CHECK(rm.data_len == size - REPL_XLOGDATA_HEADER_LEN);
	FUZZ_CHECK(rm.data_len == 0 || rm.data == data + REPL_XLOGDATA_HEADER_LEN);
	decode_payload(&rm, &arena);
	return 0;
}
