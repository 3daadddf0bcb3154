/*
 * tests/support/failpoint_ctl.c -- see failpoint_ctl.h.
 */
#include "tests/support/failpoint_ctl.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/proc.h"

bool
fpctl_init(FailpointDir *d)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(d->path, sizeof(d->path), "%s/pgstream-fp-XXXXXX",
			 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(d->path) == NULL)
	{
		perror("fpctl_init: mkdtemp");
		d->path[0] = '\0';
		return false;
	}
	return true;
}

void
fpctl_env(const FailpointDir *d, char *buf, size_t size)
{
	snprintf(buf, size, "PGSTREAM_FAILPOINT_DIR=%s", d->path);
}

static void
paused_path(const FailpointDir *d, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.paused", d->path, name);
}

bool
fpctl_paused(const FailpointDir *d, const char *name)
{
	char		path[PATH_MAX + 128];

	paused_path(d, name, path, sizeof(path));
	return access(path, F_OK) == 0;
}

bool
fpctl_wait(const FailpointDir *d, const char *name, int timeout_ms)
{
	long long	deadline = proc_now_ms() + timeout_ms;
	struct timespec step = {0, 5 * 1000 * 1000};

	while (!fpctl_paused(d, name))
	{
		if (proc_now_ms() > deadline)
		{
			fprintf(stderr, "fpctl_wait: %s did not pause within %d ms\n",
					name, timeout_ms);
			return false;
		}
		nanosleep(&step, NULL);
	}
	return true;
}

void
fpctl_release(const FailpointDir *d, const char *name)
{
	char		path[PATH_MAX + 128];

	paused_path(d, name, path, sizeof(path));
	unlink(path);
}

void
fpctl_cleanup(FailpointDir *d)
{
	DIR		   *dir;
	struct dirent *e;

	if (d->path[0] == '\0')
		return;
	dir = opendir(d->path);
	if (dir != NULL)
	{
		while ((e = readdir(dir)) != NULL)
		{
			char		path[PATH_MAX + 300];

			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", d->path, e->d_name);
			unlink(path);
		}
		closedir(dir);
	}
	rmdir(d->path);
	d->path[0] = '\0';
}
