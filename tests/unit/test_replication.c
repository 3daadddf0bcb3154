/*
 * tests/unit/test_replication.c -- the CopyBoth envelope (XLogData,
 * keepalive, status update) and FeedbackState's rules.
 */
#include <string.h>

#include "engine/stream/stream.h"
#include "protocol/replication.h"
#include "tests/support/wire_build.h"
#include "tests/unit/guard_page.h"
#include "tests/unit/suites.h"

static uint8_t buf[256];

static size_t
build_xlogdata(const void *payload, size_t len)
{
	ByteWriter w;

	byte_writer_init(&w, buf, sizeof(buf));
	wire_xlogdata(&w, 0x16B374D848, 0x16B374D849, 817552167123456, payload,
	              len);
	ck_assert(!w.overflow);
	return w.len;
}

static size_t
build_keepalive(uint8_t reply)
{
	ByteWriter w;

	byte_writer_init(&w, buf, sizeof(buf));
	wire_keepalive(&w, 0x3000060, -5, reply);
	return w.len;
}

START_TEST(decode_xlogdata_reads_header_and_payload_view)
{
	ReplMessage m;
	SyncError err;
	size_t n = build_xlogdata("E", 1);

	ck_assert_uint_eq(n, REPL_XLOGDATA_HEADER_LEN + 1);
	ck_assert_int_eq(replication_decode(buf, n, &m, &err), DECODE_OK);
	ck_assert_int_eq(m.kind, REPL_MSG_XLOGDATA);
	ck_assert_uint_eq(m.data_start, 0x16B374D848);
	ck_assert_uint_eq(m.wal_end, 0x16B374D849);
	ck_assert_int_eq(m.send_time, 817552167123456);
	ck_assert_ptr_eq(m.data, buf + REPL_XLOGDATA_HEADER_LEN);
	ck_assert_uint_eq(m.data_len, 1);
	ck_assert(!m.reply_requested);
}
END_TEST

START_TEST(decode_xlogdata_with_empty_payload_is_ok)
{
	ReplMessage m;
	SyncError err;
	size_t n = build_xlogdata(NULL, 0);

	ck_assert_int_eq(replication_decode(buf, n, &m, &err), DECODE_OK);
	ck_assert_uint_eq(m.data_len, 0);
}
END_TEST

START_TEST(decode_keepalive_reads_every_field)
{
	ReplMessage m;
	SyncError err;
	size_t n = build_keepalive(1);

	ck_assert_uint_eq(n, REPL_KEEPALIVE_LEN);
	ck_assert_int_eq(replication_decode(buf, n, &m, &err), DECODE_OK);
	ck_assert_int_eq(m.kind, REPL_MSG_KEEPALIVE);
	ck_assert_uint_eq(m.wal_end, 0x3000060);
	ck_assert_int_eq(m.send_time, -5);
	ck_assert(m.reply_requested);
	ck_assert_ptr_null(m.data);
	n = build_keepalive(0);
	ck_assert_int_eq(replication_decode(buf, n, &m, &err), DECODE_OK);
	ck_assert(!m.reply_requested);
}
END_TEST

START_TEST(keepalive_reply_flag_other_than_0_or_1_is_invalid)
{
	ReplMessage m;
	SyncError err;
	size_t n = build_keepalive(2);

	ck_assert_int_eq(replication_decode(buf, n, &m, &err), DECODE_INVALID);
	ck_assert_int_eq(err.code, SYNC_ERR_INVALID);
	ck_assert_str_eq(
	    err.message,
	    "Keepalive: invalid \"replyRequested\" at byte 17: must be 0 or 1");
}
END_TEST

START_TEST(keepalive_with_trailing_byte_is_invalid)
{
	ReplMessage m;
	SyncError err;
	size_t n = build_keepalive(0);

	buf[n++] = 0;
	ck_assert_int_eq(replication_decode(buf, n, &m, &err), DECODE_INVALID);
	ck_assert_str_eq(err.message, "Keepalive: 1 trailing bytes at byte 18");
}
END_TEST

START_TEST(every_prefix_of_an_envelope_is_truncated)
{
	ReplMessage m;
	SyncError err;
	size_t n = _i == 0 ? build_keepalive(1) : build_xlogdata(NULL, 0);

	for (size_t len = 0; len < n; len++)
	{
		ck_assert_int_eq(replication_decode(buf, len, &m, &err),
		                 DECODE_TRUNCATED);
		ck_assert_int_eq(err.code, SYNC_ERR_TRUNCATED);
	}
	ck_assert_int_eq(replication_decode(buf, 0, &m, &err), DECODE_TRUNCATED);
	ck_assert_str_eq(
	    err.message,
	    "replication: truncated at byte 0 reading \"message type\"");
	ck_assert_int_eq(replication_decode(buf, 5, &m, &err), DECODE_TRUNCATED);
	ck_assert_msg(strstr(err.message, "truncated at byte 1 reading \"") != NULL,
	              "%s", err.message);
}
END_TEST

START_TEST(envelopes_at_the_end_of_a_guard_page_do_not_over_read)
{
	GuardPage g;
	ReplMessage m;
	SyncError err;
	size_t n = _i == 0 ? build_keepalive(1) : build_xlogdata("BC", 2);

	guard_page_init(&g);
	for (size_t len = 0; len <= n; len++)
	{
		const uint8_t *p = guard_page_place(&g, buf, len);

		/* Past its 25-byte header an XLogData is whole: the payload is the
		 * rest. */
		size_t whole = _i == 0 ? n : REPL_XLOGDATA_HEADER_LEN;

		ck_assert_int_eq(replication_decode(p, len, &m, &err),
		                 len >= whole ? DECODE_OK : DECODE_TRUNCATED);
	}
	guard_page_term(&g);
}
END_TEST

START_TEST(unknown_envelope_type_is_invalid)
{
	ReplMessage m;
	SyncError err;
	uint8_t msg[REPL_STATUS_UPDATE_LEN] = {'r'};

	ck_assert_int_eq(replication_decode(msg, sizeof(msg), &m, &err),
	                 DECODE_INVALID);
	ck_assert_str_eq(
	    err.message,
	    "replication: invalid \"message type\" at byte 0: unknown type 0x72");
	for (int tag = 0; tag < 256; tag++)
	{
		msg[0] = (uint8_t) tag;
		if (tag != 'w' && tag != 'k')
			ck_assert_int_eq(replication_decode(msg, sizeof(msg), &m, &err),
			                 DECODE_INVALID);
	}
}
END_TEST

START_TEST(status_update_has_the_documented_layout)
{
	uint8_t out[REPL_STATUS_UPDATE_LEN + 8];
	static const uint8_t want[REPL_STATUS_UPDATE_LEN] = {
	    'r',  0,    0,    0,    0x16, 0xB3, 0x74, 0xD8, 0x48, 0, 0, 0,
	    0x16, 0xB3, 0x74, 0xD8, 0x00, 0,    0,    0,    0,    0, 0, 0,
	    0,    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 1,
	};

	memset(out, 0xEE, sizeof(out));
	ck_assert_uint_eq(
	    replication_encode_status(out, 0x16B374D848, 0x16B374D800, 0, -2, true),
	    REPL_STATUS_UPDATE_LEN);
	ck_assert_mem_eq(out, want, sizeof(want));
	ck_assert_uint_eq(out[REPL_STATUS_UPDATE_LEN], 0xEE);
}
END_TEST

START_TEST(kind_names_never_fail)
{
	ck_assert_str_eq(repl_message_kind_name('w'), "xlogdata");
	ck_assert_str_eq(repl_message_kind_name('k'), "keepalive");
	ck_assert_str_eq(repl_message_kind_name('r'), "unknown");
	ck_assert_str_eq(repl_message_kind_name(-1), "unknown");
}
END_TEST

/* ---------- FeedbackState ---------- */

START_TEST(feedback_starts_at_the_start_position)
{
	FeedbackState f;
	Lsn w;
	Lsn fl;

	feedback_init(&f, 0x5000);
	ck_assert(!f.idle);
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(w, 0x5000);
	ck_assert_uint_eq(fl, 0x5000);
}
END_TEST

START_TEST(write_is_the_running_max_of_received_positions)
{
	FeedbackState f;
	Lsn w;
	Lsn fl;

	feedback_init(&f, 0x100);
	feedback_note_received(&f, 0x900);
	feedback_note_received(&f, 0x400); /* 'w' LSNs are not monotonic */
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(w, 0x900);
	ck_assert_uint_eq(fl, 0x100);
}
END_TEST

START_TEST(flush_follows_durable_while_busy)
{
	FeedbackState f;
	Lsn w;
	Lsn fl;

	feedback_init(&f, 0x100);
	feedback_note_received(&f, 0x900);
	feedback_note_durable(&f, 0x500);
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(w, 0x900);
	ck_assert_uint_eq(fl, 0x500);
	feedback_note_durable(&f, 0x300); /* durable never goes back either */
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(fl, 0x500);
}
END_TEST

START_TEST(flush_is_never_ahead_of_received)
{
	FeedbackState f;
	Lsn w;
	Lsn fl;

	feedback_init(&f, 0x100);
	feedback_note_received(&f, 0x200);
	feedback_note_durable(&f, 0x900);
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(fl, 0x200);
	ck_assert_uint_le(fl, w);
}
END_TEST

START_TEST(flush_moves_up_to_received_when_idle)
{
	FeedbackState f;
	Lsn w;
	Lsn fl;

	feedback_init(&f, 0x100);
	feedback_note_received(&f, 0x500);
	feedback_note_durable(&f, 0x400);
	feedback_note_received(&f, 0x800); /* a keepalive's walEnd */
	feedback_set_idle(&f, true);
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(w, 0x800);
	ck_assert_uint_eq(fl, 0x800);
}
END_TEST

START_TEST(reported_flush_never_goes_backwards_after_idle)
{
	FeedbackState f;
	Lsn w;
	Lsn fl;

	feedback_init(&f, 0x100);
	feedback_note_received(&f, 0x800);
	feedback_set_idle(&f, true);
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(fl, 0x800);
	/* A new transaction arrives: busy again, durable still behind. */
	feedback_set_idle(&f, false);
	feedback_note_received(&f, 0x900);
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(w, 0x900);
	ck_assert_uint_eq(fl, 0x800);
}
END_TEST

/*
 * Issue 13: the receiver decided "idle" once per turn, then read a
 * transaction and answered a keepalive in the same turn, confirming it.
 * Data arriving ends idleness by itself.
 */
START_TEST(data_after_idle_is_not_confirmed_before_it_is_durable)
{
	FeedbackState f;
	Lsn w;
	Lsn fl;

	feedback_init(&f, 0x100);
	feedback_note_received(&f, 0x800);
	feedback_set_idle(&f, true);	/* decided at the start of a turn */
	feedback_note_data(&f, 0x900);	/* Begin */
	feedback_note_data(&f, 0x950);	/* Insert */
	feedback_note_data(&f, 0xA00);	/* Commit */
	feedback_note_received(&f, 0xA80);	/* keepalive asking for a reply */
	ck_assert(!f.idle);
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(w, 0xA80);
	ck_assert_uint_eq(fl, 0x100);
	/* applied and durable: confirmed */
	feedback_note_durable(&f, 0xA00);
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(fl, 0xA00);
	/* only the caller, having looked, says idle again */
	feedback_set_idle(&f, true);
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(fl, 0xA80);
}
END_TEST

/* A keepalive alone does not end idleness (the slot moves on an idle source). */
START_TEST(keepalive_keeps_idle)
{
	FeedbackState f;
	Lsn w;
	Lsn fl;

	feedback_init(&f, 0x100);
	feedback_set_idle(&f, true);
	feedback_note_received(&f, 0x300);
	ck_assert(f.idle);
	feedback_next(&f, &w, &fl);
	ck_assert_uint_eq(fl, 0x300);
}
END_TEST

/*
 * The restart skip (engine/stream/stream.c): applied_lsn is the end of the last
 * commit applied; a commit record may start exactly there and must then be
 * applied.  "<=" instead of "<" lost that transaction.
 */
START_TEST(restart_skip_boundary_is_exact)
{
	ck_assert(stream_already_applied(0x1000, 0x2000));
	ck_assert(stream_already_applied(0x1FFF, 0x2000));
	ck_assert(!stream_already_applied(0x2000, 0x2000));
	ck_assert(!stream_already_applied(0x2001, 0x2000));
	ck_assert(!stream_already_applied(0x10, 0)); /* nothing applied yet */
	ck_assert(!stream_already_applied(0, 0));
	ck_assert(stream_already_applied(0, 1));
	ck_assert(stream_already_applied(UINT64_MAX - 1, UINT64_MAX));
	ck_assert(!stream_already_applied(UINT64_MAX, UINT64_MAX));
}
END_TEST

/*
 * The position barrier (sources < 14, engine/stream/stream.c): B = 0x5000.  A
 * commit record that starts at B or later committed after the freeze; only
 * a commit at or after B proves every earlier commit has arrived, and only
 * between transactions may the barrier be recorded where the applier is.
 */
/*
 * --spool, after the barrier (engine/stream/stream.c): which spooled messages are a
 * write committed after it.  Inside a streamed block a change may still be
 * aborted; its Stream Commit is the write.
 */
START_TEST(spooled_writes_after_the_barrier_are_recognised)
{
	bool in_stream = false;
	const uint8_t B[] = {'B'}, C[] = {'C'}, I[] = {'I'}, U[] = {'U'}, D[] = {'D'},
	              T[] = {'T'}, S[] = {'S'}, E[] = {'E'}, c[] = {'c'}, A[] = {'A'},
	              R[] = {'R'}, M[] = {'M'};

	ck_assert(!stream_is_write_after_barrier(&in_stream, NULL, 0));
	ck_assert(!stream_is_write_after_barrier(&in_stream, B, 1));
	ck_assert(!stream_is_write_after_barrier(&in_stream, R, 1));
	ck_assert(!stream_is_write_after_barrier(&in_stream, M, 1));
	ck_assert(stream_is_write_after_barrier(&in_stream, I, 1));
	ck_assert(stream_is_write_after_barrier(&in_stream, U, 1));
	ck_assert(stream_is_write_after_barrier(&in_stream, D, 1));
	ck_assert(stream_is_write_after_barrier(&in_stream, T, 1));
	ck_assert(!stream_is_write_after_barrier(&in_stream, C, 1));
	/* a streamed block: its changes are not writes yet */
	ck_assert(!stream_is_write_after_barrier(&in_stream, S, 1));
	ck_assert(in_stream);
	ck_assert(!stream_is_write_after_barrier(&in_stream, I, 1));
	ck_assert(!stream_is_write_after_barrier(&in_stream, T, 1));
	ck_assert(!stream_is_write_after_barrier(&in_stream, E, 1));
	ck_assert(!in_stream);
	ck_assert(!stream_is_write_after_barrier(&in_stream, A, 1));
	ck_assert(stream_is_write_after_barrier(&in_stream, c, 1));
	ck_assert(!in_stream);
}
END_TEST

START_TEST(position_barrier_is_decided_from_commit_positions)
{
	/* nothing armed: never */
	ck_assert_int_eq(stream_position_barrier(0, 0x9000, false, 0), POSITION_BARRIER_NOT_YET);
	ck_assert_int_eq(stream_position_barrier(0, 0, false, 0x9000), POSITION_BARRIER_NOT_YET);
	/* between transactions: the highest commit seen decides */
	ck_assert_int_eq(stream_position_barrier(0x5000, 0, false, 0), POSITION_BARRIER_NOT_YET);
	ck_assert_int_eq(stream_position_barrier(0x5000, 0x4FFF, false, 0),
	                 POSITION_BARRIER_NOT_YET);
	ck_assert_int_eq(stream_position_barrier(0x5000, 0x5000, false, 0),
	                 POSITION_BARRIER_REACHED);
	ck_assert_int_eq(stream_position_barrier(0x5000, 0x7000, false, 0),
	                 POSITION_BARRIER_REACHED);
	/* inside a transaction: not where the barrier can be recorded */
	ck_assert_int_eq(stream_position_barrier(0x5000, 0x7000, true, 0),
	                 POSITION_BARRIER_NOT_YET);
	/* at a Begin: that transaction's commit decides, before it is applied */
	ck_assert_int_eq(stream_position_barrier(0x5000, 0, false, 0x4FFF),
	                 POSITION_BARRIER_NOT_YET);
	ck_assert_int_eq(stream_position_barrier(0x5000, 0, false, 0x5000),
	                 POSITION_BARRIER_BEFORE_THIS);
	ck_assert_int_eq(stream_position_barrier(0x5000, 0x1000, false, 0x6000),
	                 POSITION_BARRIER_BEFORE_THIS);
	/* a Begin before B after a commit past B cannot happen (commit order);
	 * the Begin still decides only for itself */
	ck_assert_int_eq(stream_position_barrier(0x5000, 0x6000, false, 0x4000),
	                 POSITION_BARRIER_NOT_YET);
}
END_TEST

/*
 * Random walks: reported write and flush never decrease, flush <= write,
 * and while busy flush is never above max(durable, last reported flush).
 */
START_TEST(random_walks_keep_every_rule)
{
	uint64_t x = 0x2545F4914F6CDD1Du + (uint64_t) _i;
	FeedbackState f;
	Lsn prev_w = 0x1000;
	Lsn prev_f = 0x1000;

	feedback_init(&f, 0x1000);
	for (int step = 0; step < 2000; step++)
	{
		Lsn w;
		Lsn fl;
		Lsn pos;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pos = 0x1000 + (x >> 8) % 0x100000;
		if (x % 4 == 0 && (x >> 5) % 2 == 0)
			feedback_note_received(&f, pos);
		else if (x % 4 == 0)
			feedback_note_data(&f, pos);
		else if (x % 4 == 1)
			feedback_note_durable(&f, pos);
		else if (x % 4 == 2)
			feedback_set_idle(&f, (x >> 3) % 2 == 0);
		feedback_next(&f, &w, &fl);
		ck_assert_uint_ge(w, prev_w);
		ck_assert_uint_ge(fl, prev_f);
		ck_assert_uint_le(fl, w);
		if (!f.idle)
			ck_assert_uint_le(fl, f.durable > prev_f ? f.durable : prev_f);
		prev_w = w;
		prev_f = fl;
	}
}
END_TEST

Suite *
replication_suite(void)
{
	Suite *s = suite_create("replication");
	TCase *env = tcase_create("envelope");
	TCase *fb = tcase_create("feedback");

	tcase_add_test(env, decode_xlogdata_reads_header_and_payload_view);
	tcase_add_test(env, decode_xlogdata_with_empty_payload_is_ok);
	tcase_add_test(env, decode_keepalive_reads_every_field);
	tcase_add_test(env, keepalive_reply_flag_other_than_0_or_1_is_invalid);
	tcase_add_test(env, keepalive_with_trailing_byte_is_invalid);
	tcase_add_loop_test(env, every_prefix_of_an_envelope_is_truncated, 0, 2);
	tcase_add_loop_test(
	    env, envelopes_at_the_end_of_a_guard_page_do_not_over_read, 0, 2);
	tcase_add_test(env, unknown_envelope_type_is_invalid);
	tcase_add_test(env, status_update_has_the_documented_layout);
	tcase_add_test(env, kind_names_never_fail);
	tcase_add_test(fb, feedback_starts_at_the_start_position);
	tcase_add_test(fb, write_is_the_running_max_of_received_positions);
	tcase_add_test(fb, flush_follows_durable_while_busy);
	tcase_add_test(fb, flush_is_never_ahead_of_received);
	tcase_add_test(fb, flush_moves_up_to_received_when_idle);
	tcase_add_test(fb, reported_flush_never_goes_backwards_after_idle);
	tcase_add_test(fb, data_after_idle_is_not_confirmed_before_it_is_durable);
	tcase_add_test(fb, keepalive_keeps_idle);
	tcase_add_test(fb, restart_skip_boundary_is_exact);
	tcase_add_test(fb, position_barrier_is_decided_from_commit_positions);
	tcase_add_test(fb, spooled_writes_after_the_barrier_are_recognised);
	tcase_add_loop_test(fb, random_walks_keep_every_rule, 0, 8);
	suite_add_tcase(s, env);
	suite_add_tcase(s, fb);
	return s;
}
