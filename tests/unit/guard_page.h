/*
 * tests/unit/guard_page.h -- place a message so that it ends exactly where a
 * PROT_NONE page begins (picohttpparser's trick): any read past the end of
 * the message faults at once, with or without a sanitizer.
 */
#ifndef PGSTREAM_TESTS_UNIT_GUARD_PAGE_H
#define PGSTREAM_TESTS_UNIT_GUARD_PAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct GuardPage
{
	uint8_t *base; /* readable page, then the guard page */
	size_t page_size;
} GuardPage;

/* Map the two pages; fails the current test if that is impossible. */
void guard_page_init(GuardPage *g);

/* Copy len bytes (len <= page size) to the end of the readable page. */
const uint8_t *guard_page_place(GuardPage *g, const void *msg, size_t len);

void guard_page_term(GuardPage *g);

#endif
