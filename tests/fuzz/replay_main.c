/*
 * tests/fuzz/replay_main.c -- run a fuzz target over saved inputs without
 * libFuzzer, so that `make fuzz-replay` checks the reviewed seeds under gcc
 * with ASan and UBSan.
 *
 * Usage: replay_<target> PATH...   Each PATH is a file or a directory whose
 * regular files are replayed (not recursively).  Exits non-zero if a path
 * cannot be read, if no path is given, or if a directory holds no input: a
 * replay that ran nothing must not pass (a lost or mistyped seed directory
 * would otherwise look like a clean run).  A broken invariant traps, as
 * under libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz_target.h"

/* Read a whole file into a malloc'd buffer of exactly its size. */
static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long size;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0)
	{
		buf = malloc(size > 0 ? (size_t) size : 1);
		if (buf != NULL && fread(buf, 1, (size_t) size, f) != (size_t) size)
		{
			free(buf);
			buf = NULL;
		}
		*len = (size_t) size;
	}
	(void) fclose(f); /* read-only: nothing to flush */
	return buf;
}

static int
replay_file(const char *path)
{
	size_t len = 0;
	uint8_t *buf = read_file(path, &len);

	if (buf == NULL)
	{
		(void) fprintf(stderr, "could not read \"%s\": %s\n", path,
		               strerror(errno));
		return -1;
	}
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 1;
}

/* Replay every regular file in dir; returns the count, or -1 on error. */
static int
replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];
	struct stat sb;
	int count = 0;

	if (d == NULL)
	{
		(void) fprintf(stderr, "could not open \"%s\": %s\n", dir,
		               strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL)
	{
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >=
		        (int) sizeof(path) ||
		    stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		if (replay_file(path) < 0)
		{
			count = -1;
			break;
		}
		count++;
	}
	closedir(d);
	return count;
}

int
main(int argc, char **argv)
{
	struct stat sb;

	if (argc < 2)
	{
		(void) fprintf(stderr, "usage: %s PATH...\n", argv[0]);
		return EXIT_FAILURE;
	}
	for (int i = 1; i < argc; i++)
	{
		int n = stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)
		            ? replay_dir(argv[i])
		            : replay_file(argv[i]);

		if (n < 0)
			return EXIT_FAILURE;
		if (n == 0)
		{
			(void) fprintf(stderr, "\"%s\" holds no input to replay\n",
			               argv[i]);
			return EXIT_FAILURE;
		}
		printf("%s: replayed %d input%s\n", argv[i], n, n == 1 ? "" : "s");
	}
	return EXIT_SUCCESS;
}
