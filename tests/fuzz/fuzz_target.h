/*
 * tests/fuzz/fuzz_target.h -- the libFuzzer entry point every fuzz_*.c
 * defines.  The same object links either with libFuzzer (make fuzz) or with
 * replay_main.c (make fuzz-replay, plain gcc), which feeds it seed files.
 */
#ifndef PGSTREAM_TESTS_FUZZ_TARGET_H
#define PGSTREAM_TESTS_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Stop at once on a broken invariant; libFuzzer and the sanitizers report
 * the input and a stack trace.
 */
#define FUZZ_CHECK(cond)                                                       \
	do                                                                         \
	{                                                                          \
		if (!(cond))                                                           \
			__builtin_trap();                                                  \
	} while (0)

#endif
