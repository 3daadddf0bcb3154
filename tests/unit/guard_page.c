/*
 * tests/unit/guard_page.c -- see guard_page.h.
 */
#include "tests/unit/guard_page.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <check.h>

void
guard_page_init(GuardPage *g)
{
	long ps = sysconf(_SC_PAGESIZE);
	void *p;

	ck_assert_int_gt(ps, 0);
	g->page_size = (size_t) ps;
	p = mmap(NULL, 2 * g->page_size, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	g->base = p;
	ck_assert_int_eq(mprotect(g->base + g->page_size, g->page_size, PROT_NONE),
	                 0);
}

const uint8_t *
guard_page_place(GuardPage *g, const void *msg, size_t len)
{
	uint8_t *dst;

	ck_assert_uint_le(len, g->page_size);
	dst = g->base + g->page_size - len;
	if (len > 0)
		memcpy(dst, msg, len);
	return dst;
}

void
guard_page_term(GuardPage *g)
{
	munmap(g->base, 2 * g->page_size);
	g->base = NULL;
}
