/*
 * engine/log.c -- timestamped, thread-safe logging to stderr.
 */
#include "engine/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static LogLevel current_level = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", ""};

void
log_set_level(LogLevel level)
{
	current_level = level;
}

LogLevel
log_get_level(void)
{
	return current_level;
}

void
log_msg(LogLevel level, const char *fmt,...)
{
	struct timeval tv;
	struct tm	tm;
	char		stamp[32];
	va_list		ap;

	if (level < current_level || level >= LOG_NONE)
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s.%03d %-5s ", stamp, (int) (tv.tv_usec / 1000),
			level_names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

void
log_sync_error(const SyncError *err)
{
	if (err->sqlstate[0] != '\0')
		log_error("%s (SQLSTATE %s)", err->message, err->sqlstate);
	else
		log_error("%s", err->message);
}
