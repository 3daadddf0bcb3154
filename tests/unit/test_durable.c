/*
 * tests/unit/test_durable.c -- apply/durable.c: which applied source
 * positions may be confirmed to the source under asynchronous commit.
 */
#include "apply/durable.h"
#include "tests/unit/suites.h"

START_TEST(nothing_is_durable_before_the_target_flushes_it)
{
	DurableTracker t;

	durable_init(&t, 100);
	ck_assert(!durable_pending(&t));
	durable_note_commit(&t, 200, 5000);
	durable_note_commit(&t, 300, 6000);
	ck_assert(durable_pending(&t));
	ck_assert_uint_eq(t.durable, 100);
	ck_assert_uint_eq(durable_note_flush(&t, 4999), 100);
	ck_assert_uint_eq(durable_note_flush(&t, 5000), 200);
	ck_assert(durable_pending(&t));
	ck_assert_uint_eq(durable_note_flush(&t, 5999), 200);
	ck_assert_uint_eq(durable_note_flush(&t, 7000), 300);
	ck_assert(!durable_pending(&t));
}
END_TEST

START_TEST(a_flush_position_never_moves_back)
{
	DurableTracker t;

	durable_init(&t, 0);
	durable_note_commit(&t, 10, 1000);
	ck_assert_uint_eq(durable_note_flush(&t, 2000), 10);
	/* an older flush figure read later changes nothing */
	ck_assert_uint_eq(durable_note_flush(&t, 500), 10);
	/* a commit already below the flush position seen is durable at once */
	durable_note_commit(&t, 20, 1500);
	ck_assert_uint_eq(t.durable, 20);
	ck_assert(!durable_pending(&t));
}
END_TEST

START_TEST(a_sync_commit_makes_everything_before_it_durable)
{
	DurableTracker t;

	durable_init(&t, 0);
	durable_note_commit(&t, 10, 1000);
	durable_note_commit(&t, 20, 2000);
	durable_note_sync_commit(&t, 30);
	ck_assert_uint_eq(t.durable, 30);
	ck_assert(!durable_pending(&t));
	/* positions at or below the durable one are ignored */
	durable_note_commit(&t, 25, 9000);
	ck_assert(!durable_pending(&t));
}
END_TEST

START_TEST(a_full_ring_delays_durability_but_never_advances_it_early)
{
	DurableTracker t;
	Lsn			prev = 0;

	durable_init(&t, 0);
	for (int i = 1; i <= DURABLE_RING * 3; i++)
		durable_note_commit(&t, (Lsn) i * 10, (Lsn) i * 1000);
	ck_assert_int_eq(t.count, DURABLE_RING);
	/* walk the flush position up: durable must never pass a commit whose
	 * target position is above the flush position */
	for (Lsn f = 0; f <= DURABLE_RING * 3 * 1000; f += 250)
	{
		Lsn			d = durable_note_flush(&t, f);

		ck_assert_uint_ge(d, prev);	/* never backwards */
		/* commit i is at target i*1000: durable <= 10 * floor(f / 1000) */
		ck_assert_uint_le(d, (f / 1000) * 10);
		prev = d;
	}
	ck_assert_uint_eq(t.durable, DURABLE_RING * 3 * 10);
	ck_assert(!durable_pending(&t));
}
END_TEST

Suite *
durable_suite(void)
{
	Suite *s = suite_create("durable");
	TCase *tc = tcase_create("durable");

	tcase_add_test(tc, nothing_is_durable_before_the_target_flushes_it);
	tcase_add_test(tc, a_flush_position_never_moves_back);
	tcase_add_test(tc, a_sync_commit_makes_everything_before_it_durable);
	tcase_add_test(tc, a_full_ring_delays_durability_but_never_advances_it_early);
	suite_add_tcase(s, tc);
	return s;
}
