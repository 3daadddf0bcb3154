/*
 * protocol/arena.h -- bump allocator with a byte limit and an injectable
 * allocator.
 *
 * Variable-length decoder output (column arrays, relid lists) lives in an
 * Arena owned by the caller and reset per message or per batch, in the spirit
 * of PostgreSQL's ApplyMessageContext.  The allocator hooks let tests make
 * every allocation fail in turn (SQLite-style OOM testing).
 */
#ifndef PGSTREAM_PROTOCOL_ARENA_H
#define PGSTREAM_PROTOCOL_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ArenaAllocator
{
	void	   *(*alloc) (size_t size, void *ctx);
	void		(*free) (void *ptr, void *ctx);
	void	   *ctx;
} ArenaAllocator;

typedef struct ArenaBlock ArenaBlock;

typedef struct Arena
{
	ArenaBlock *blocks;			/* owned; newest first */
	size_t		used_bytes;		/* bytes handed out since the last reset */
	size_t		limit_bytes;	/* 0 = unlimited */
	size_t		block_bytes;	/* default block size */
	ArenaAllocator allocator;
} Arena;

/* allocator may be NULL for malloc/free; limit_bytes 0 = unlimited. */
void		arena_init(Arena *a, const ArenaAllocator *allocator, size_t limit_bytes);

/*
 * Return size bytes aligned for any scalar, or NULL if the limit would be
 * exceeded or the allocator failed.  The memory is zeroed.
 */
void	   *arena_alloc(Arena *a, size_t size);

/*
 * Like arena_alloc(count * elem_size) but NULL on multiplication overflow.
 */
void	   *arena_alloc_array(Arena *a, size_t count, size_t elem_size);

/* Forget every allocation but keep one block for reuse. */
void		arena_reset(Arena *a);

/* Release everything. */
void		arena_term(Arena *a);

#endif
