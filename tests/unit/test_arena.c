/*
 * tests/unit/test_arena.c -- Arena: zeroing, alignment, blocks, limit,
 * overflow, reset, and every allocation failing in turn (SQLite-style).
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/arena.h"
#include "tests/unit/fail_alloc.h"
#include "tests/unit/suites.h"

static bool
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

START_TEST(allocations_are_zeroed_and_aligned)
{
	Arena a;

	arena_init(&a, NULL, 0);
	for (size_t n = 0; n < 300; n += 7)
	{
		uint8_t *p = arena_alloc(&a, n);

		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq((uintptr_t) p % alignof(max_align_t), 0);
		ck_assert(all_zero(p, n));
		memset(p, 0xA5, n);
	}
	arena_term(&a);
}
END_TEST

START_TEST(large_request_gets_its_own_block_and_small_ones_continue)
{
	Arena a;
	FailAlloc c;
	uint8_t *small1;
	uint8_t *big;
	uint8_t *small2;

	fail_alloc_arena_init(&a, &c, -1, 0);
	small1 = arena_alloc(&a, 16);
	big = arena_alloc(&a, a.block_bytes * 3);
	small2 = arena_alloc(&a, 16);
	ck_assert_ptr_nonnull(big);
	ck_assert(all_zero(big, a.block_bytes * 3));
	ck_assert_int_eq(c.calls, 2);
	/* The second small allocation came from the first block. */
	ck_assert_ptr_eq(small2, small1 + 16);
	arena_term(&a);
	ck_assert_int_eq(c.live, 0);
}
END_TEST

START_TEST(limit_is_enforced_on_bytes_handed_out)
{
	Arena a;

	arena_init(&a, NULL, 256);
	ck_assert_ptr_nonnull(arena_alloc(&a, 128));
	ck_assert_ptr_nonnull(arena_alloc(&a, 128));
	ck_assert_ptr_null(arena_alloc(&a, 1));
	ck_assert_uint_eq(a.used_bytes, 256);
	arena_reset(&a);
	ck_assert_ptr_nonnull(arena_alloc(&a, 256));
	ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX));
	arena_term(&a);
}
END_TEST

START_TEST(array_size_overflow_returns_null)
{
	Arena a;

	arena_init(&a, NULL, 0);
	ck_assert_ptr_null(arena_alloc_array(&a, SIZE_MAX / 2 + 1, 2));
	ck_assert_ptr_null(arena_alloc_array(&a, SIZE_MAX, SIZE_MAX));
	ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX));
	ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX - 8));
	ck_assert_ptr_nonnull(arena_alloc_array(&a, 10, sizeof(uint64_t)));
	ck_assert_ptr_nonnull(arena_alloc_array(&a, 0, 8));
	arena_term(&a);
}
END_TEST

START_TEST(reset_keeps_one_block_and_zeroes_reused_memory)
{
	Arena a;
	FailAlloc c;

	fail_alloc_arena_init(&a, &c, -1, 0);
	for (int round = 0; round < 5; round++)
	{
		for (int i = 0; i < 40; i++)
		{
			uint8_t *p = arena_alloc(&a, 1000);

			ck_assert_ptr_nonnull(p);
			ck_assert(all_zero(p, 1000));
			memset(p, 0xFF, 1000);
		}
		(void) arena_alloc(&a, a.block_bytes * 2);
		arena_reset(&a);
		ck_assert_int_eq(c.live, 1);
		ck_assert_uint_eq(a.used_bytes, 0);
	}
	arena_term(&a);
	ck_assert_int_eq(c.live, 0);
	arena_term(&a);
}
END_TEST

START_TEST(default_allocator_is_used_when_none_is_given)
{
	Arena a;
	ArenaAllocator half = {NULL, NULL, NULL};

	arena_init(&a, &half, 0);
	ck_assert_ptr_nonnull(arena_alloc(&a, 10));
	arena_term(&a);
}
END_TEST

/*
 * A workload of mixed sizes over several blocks and resets.  With the
 * allocator call numbered fail_at failing, exactly one request returns NULL,
 * the arena stays usable, memory handed out is zeroed, and nothing leaks.
 * Returns how many requests failed; *calls gets the allocator calls made.
 */
static int
arena_workload(int fail_at, int *calls)
{
	static const size_t sizes[] = {8,     5000,  40000, 3,    9000,
	                               12000, 70000, 1,     16384};
	Arena a;
	FailAlloc c;
	int nulls = 0;

	fail_alloc_arena_init(&a, &c, fail_at, 0);
	for (int round = 0; round < 3; round++)
	{
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
		{
			uint8_t *p = arena_alloc(&a, sizes[k]);

			if (p == NULL)
			{
				nulls++;
				continue;
			}
			ck_assert(all_zero(p, sizes[k]));
			memset(p, 0x5A, sizes[k]);
		}
		arena_reset(&a);
		ck_assert_int_le(c.live, 1);
	}
	arena_term(&a);
	ck_assert_int_eq(c.live, 0);
	*calls = c.calls;
	return nulls;
}

START_TEST(every_allocation_failing_in_turn_is_survived)
{
	int total;
	int calls;

	ck_assert_int_eq(arena_workload(-1, &total), 0);
	ck_assert_int_ge(total, 10);
	for (int i = 0; i < total; i++)
		ck_assert_int_eq(arena_workload(i, &calls), 1);
}
END_TEST

Suite *
arena_suite(void)
{
	Suite *s = suite_create("arena");
	TCase *basic = tcase_create("allocation");
	TCase *oom = tcase_create("failing_allocator");

	tcase_add_test(basic, allocations_are_zeroed_and_aligned);
	tcase_add_test(basic,
	               large_request_gets_its_own_block_and_small_ones_continue);
	tcase_add_test(basic, limit_is_enforced_on_bytes_handed_out);
	tcase_add_test(basic, array_size_overflow_returns_null);
	tcase_add_test(basic, reset_keeps_one_block_and_zeroes_reused_memory);
	tcase_add_test(basic, default_allocator_is_used_when_none_is_given);
	tcase_add_test(oom, every_allocation_failing_in_turn_is_survived);
	suite_add_tcase(s, basic);
	suite_add_tcase(s, oom);
	return s;
}
