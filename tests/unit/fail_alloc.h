/*
 * tests/unit/fail_alloc.h -- an ArenaAllocator that counts calls and live
 * blocks and fails the call numbered fail_at (SQLite-style OOM testing: run
 * a workload once to count its allocations, then once per index with that
 * allocation failing).
 */
#ifndef PGSTREAM_TESTS_UNIT_FAIL_ALLOC_H
#define PGSTREAM_TESTS_UNIT_FAIL_ALLOC_H

#include "protocol/arena.h"

typedef struct FailAlloc
{
	int calls;   /* allocation calls so far, failed ones included */
	int live;    /* blocks handed out and not yet freed */
	int fail_at; /* index of the call that fails; -1 = none */
} FailAlloc;

/* Reset the counters and arena_init(a, <this allocator>, limit_bytes). */
void fail_alloc_arena_init(Arena *a, FailAlloc *fa, int fail_at,
                           size_t limit_bytes);

#endif
