/*
 * tests/unit/fail_alloc.c -- see fail_alloc.h.
 */
#include "tests/unit/fail_alloc.h"

#include <stdlib.h>

static void *
fail_alloc_alloc(size_t size, void *ctx)
{
	FailAlloc *fa = ctx;

	if (fa->calls++ == fa->fail_at)
		return NULL;
	fa->live++;
	return malloc(size);
}

static void
fail_alloc_free(void *ptr, void *ctx)
{
	FailAlloc *fa = ctx;

	fa->live--;
	free(ptr);
}

void
fail_alloc_arena_init(Arena *a, FailAlloc *fa, int fail_at, size_t limit_bytes)
{
	ArenaAllocator al = {fail_alloc_alloc, fail_alloc_free, fa};

	fa->calls = 0;
	fa->live = 0;
	fa->fail_at = fail_at;
	arena_init(a, &al, limit_bytes);
}
