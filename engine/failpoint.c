/*
 * engine/failpoint.c -- see failpoint.h.  Compiled to an empty unit unless
 * PGSTREAM_FAILPOINTS is defined (test builds).
 */
#include "engine/failpoint.h"

#ifdef PGSTREAM_FAILPOINTS

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_POINTS 16
#define NAME_MAX_LEN 64

typedef enum FpAction
{
	FP_CRASH,
	FP_PAUSE,
	FP_ERROR,
	FP_SIGNAL
} FpAction;

typedef struct FpPoint
{
	char		name[NAME_MAX_LEN];
	FpAction	action;
	int			signo;			/* FP_SIGNAL */
	long		nth;			/* fire on this hit (1-based) */
	bool		and_later;		/* ... and on every later one */
	long		hits;
} FpPoint;

static pthread_once_t fp_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t fp_lock = PTHREAD_MUTEX_INITIALIZER;
static FpPoint fp_points[MAX_POINTS];
static int	fp_count;

static bool
parse_action(const char *s, size_t len, FpPoint *p)
{
	static const struct
	{
		const char *word;
		FpAction	action;
		int			signo;
	}			actions[] = {
		{"crash", FP_CRASH, 0},
		{"pause", FP_PAUSE, 0},
		{"error", FP_ERROR, 0},
		{"sigterm", FP_SIGNAL, SIGTERM},
		{"sigint", FP_SIGNAL, SIGINT},
		{"sighup", FP_SIGNAL, SIGHUP},
	};

	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
	{
		if (strlen(actions[i].word) == len && memcmp(actions[i].word, s, len) == 0)
		{
			p->action = actions[i].action;
			p->signo = actions[i].signo;
			return true;
		}
	}
	return false;
}

/* One "name=action[@N[+]]" item; false (and a message) when malformed. */
static bool
parse_item(const char *item, size_t len, FpPoint *p)
{
	const char *eq = memchr(item, '=', len);
	const char *at;
	size_t		action_len;

	memset(p, 0, sizeof(*p));
	p->nth = 1;
	if (eq == NULL || eq == item || (size_t) (eq - item) >= NAME_MAX_LEN)
		return false;
	memcpy(p->name, item, (size_t) (eq - item));
	at = memchr(eq + 1, '@', len - (size_t) (eq + 1 - item));
	action_len = (size_t) ((at ? at : item + len) - (eq + 1));
	if (!parse_action(eq + 1, action_len, p))
		return false;
	if (at != NULL)
	{
		char		num[24];
		size_t		nlen = (size_t) (item + len - (at + 1));
		char	   *end;

		if (nlen == 0 || nlen >= sizeof(num))
			return false;
		memcpy(num, at + 1, nlen);
		num[nlen] = '\0';
		if (num[nlen - 1] == '+')
		{
			p->and_later = true;
			num[nlen - 1] = '\0';
		}
		errno = 0;
		p->nth = strtol(num, &end, 10);
		if (errno != 0 || *end != '\0' || p->nth < 1)
			return false;
	}
	return true;
}

static void
fp_load(void)
{
	const char *spec = getenv("PGSTREAM_FAILPOINTS");
	const char *s = spec;

	if (spec == NULL)
		return;
	while (*s != '\0')
	{
		size_t		len = strcspn(s, ";");

		if (len > 0)
		{
			if (fp_count == MAX_POINTS || !parse_item(s, len, &fp_points[fp_count]))
			{
				fprintf(stderr, "pgstream: bad PGSTREAM_FAILPOINTS item \"%.*s\"\n",
						(int) len, s);
				_exit(70);
			}
			fp_count++;
		}
		s += len;
		if (*s == ';')
			s++;
	}
}

/* Sleep in 5 ms steps until path is gone. */
static void
fp_pause(const char *name)
{
	const char *dir = getenv("PGSTREAM_FAILPOINT_DIR");
	char		path[4096];
	char		tmp[4200];
	char		pid[32];
	int			fd;
	int			n;
	struct timespec step = {0, 5 * 1000 * 1000};

	if (dir == NULL)
	{
		fprintf(stderr, "pgstream: failpoint %s: pause needs PGSTREAM_FAILPOINT_DIR\n", name);
		_exit(70);
	}
	snprintf(path, sizeof(path), "%s/%s.paused", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(pid, sizeof(pid), "%ld\n", (long) getpid());
	/* written under another name and renamed: a waiter never sees it empty */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, pid, (size_t) n) != n || close(fd) != 0 ||
		rename(tmp, path) != 0)
	{
		fprintf(stderr, "pgstream: failpoint %s: cannot create %s: %s\n",
				name, path, strerror(errno));
		_exit(70);
	}
	fprintf(stderr, "pgstream: failpoint %s: paused\n", name);
	while (access(path, F_OK) == 0)
		nanosleep(&step, NULL);
	fprintf(stderr, "pgstream: failpoint %s: released\n", name);
}

/* The armed point for name, if this hit fires it. */
static const FpPoint *
fp_fire(const char *name)
{
	const FpPoint *fire = NULL;

	pthread_once(&fp_once, fp_load);
	if (fp_count == 0)
		return NULL;
	pthread_mutex_lock(&fp_lock);
	for (int i = 0; i < fp_count; i++)
	{
		FpPoint    *p = &fp_points[i];

		if (strcmp(p->name, name) != 0)
			continue;
		p->hits++;
		if (p->hits == p->nth || (p->and_later && p->hits > p->nth))
			fire = p;
		break;
	}
	pthread_mutex_unlock(&fp_lock);
	return fire;
}

static bool
fp_run(const char *name)
{
	const FpPoint *p = fp_fire(name);

	if (p == NULL)
		return false;
	switch (p->action)
	{
		case FP_CRASH:
			fprintf(stderr, "pgstream: failpoint %s: crash\n", name);
			raise(SIGKILL);
			_exit(137);
		case FP_PAUSE:
			fp_pause(name);
			return false;
		case FP_SIGNAL:
			fprintf(stderr, "pgstream: failpoint %s: raising signal %d\n", name, p->signo);
			raise(p->signo);
			return false;
		case FP_ERROR:
			fprintf(stderr, "pgstream: failpoint %s: error\n", name);
			return true;
	}
	return false;
}

void
failpoint_hit(const char *name)
{
	(void) fp_run(name);
}

bool
failpoint_error(const char *name)
{
	return fp_run(name);
}

#else

/* ISO C forbids an empty translation unit. */
typedef int failpoint_unused;

#endif
