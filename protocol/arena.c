/*
 * protocol/arena.c -- bump allocator over blocks from an injectable
 * allocator.
 *
 * Allocations are carved from the newest block; a request larger than the
 * block size is given a block of its own.  limit_bytes caps the bytes handed
 * out since the last reset (alignment padding included), so a hostile count in
 * a message cannot make a decoder take unbounded memory even when the count
 * fits in the input.  Every allocation is zeroed.
 */
#include "protocol/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_DEFAULT_BLOCK_BYTES ((size_t) 16 * 1024)
#define ARENA_ALIGN (alignof(max_align_t))

struct ArenaBlock
{
	ArenaBlock *next;
	size_t size; /* usable bytes in data */
	size_t used;
	max_align_t data[];
};

static void *
default_alloc(size_t size, void *ctx)
{
	(void) ctx;
	return malloc(size);
}

static void
default_free(void *ptr, void *ctx)
{
	(void) ctx;
	free(ptr);
}

void
arena_init(Arena *a, const ArenaAllocator *allocator, size_t limit_bytes)
{
	a->blocks = NULL;
	a->used_bytes = 0;
	a->limit_bytes = limit_bytes;
	a->block_bytes = ARENA_DEFAULT_BLOCK_BYTES;
	if (allocator != NULL && allocator->alloc != NULL &&
	    allocator->free != NULL)
		a->allocator = *allocator;
	else
	{
		a->allocator.alloc = default_alloc;
		a->allocator.free = default_free;
		a->allocator.ctx = NULL;
	}
}

/*
 * Get a block with at least need usable bytes and link it in.  A block
 * bigger than the default goes behind the current block, so the current
 * block's free space keeps serving small requests.
 */
static ArenaBlock *
arena_add_block(Arena *a, size_t need)
{
	size_t size = need > a->block_bytes ? need : a->block_bytes;
	ArenaBlock *b;

	if (size > SIZE_MAX - sizeof(ArenaBlock))
		return NULL;
	b = a->allocator.alloc(sizeof(ArenaBlock) + size, a->allocator.ctx);
	if (b == NULL)
		return NULL;
	b->size = size;
	b->used = 0;
	if (a->blocks != NULL && size > a->block_bytes)
	{
		b->next = a->blocks->next;
		a->blocks->next = b;
	}
	else
	{
		b->next = a->blocks;
		a->blocks = b;
	}
	return b;
}

void *
arena_alloc(Arena *a, size_t size)
{
	ArenaBlock *b = a->blocks;
	size_t need;
	uint8_t *p;

	if (size == 0)
		size = 1;
	if (size > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	need = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	if (a->limit_bytes != 0 && (a->used_bytes > a->limit_bytes ||
	                            need > a->limit_bytes - a->used_bytes))
		return NULL;
	if (b == NULL || b->size - b->used < need)
	{
		b = arena_add_block(a, need);
		if (b == NULL)
			return NULL;
	}
	p = (uint8_t *) b->data + b->used;
	b->used += need;
	a->used_bytes += need;
	memset(p, 0, size);
	return p;
}

void *
arena_alloc_array(Arena *a, size_t count, size_t elem_size)
{
	if (elem_size != 0 && count > SIZE_MAX / elem_size)
		return NULL;
	return arena_alloc(a, count * elem_size);
}

void
arena_reset(Arena *a)
{
	ArenaBlock *keep = NULL;
	ArenaBlock *b = a->blocks;

	while (b != NULL)
	{
		ArenaBlock *next = b->next;

		if (keep == NULL && b->size == a->block_bytes)
		{
			keep = b;
			keep->used = 0;
			keep->next = NULL;
		}
		else
			a->allocator.free(b, a->allocator.ctx);
		b = next;
	}
	a->blocks = keep;
	a->used_bytes = 0;
}

void
arena_term(Arena *a)
{
	ArenaBlock *b = a->blocks;

	while (b != NULL)
	{
		ArenaBlock *next = b->next;

		a->allocator.free(b, a->allocator.ctx);
		b = next;
	}
	a->blocks = NULL;
	a->used_bytes = 0;
}
