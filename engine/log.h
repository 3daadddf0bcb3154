/*
 * engine/log.h -- the only place pgstream prints diagnostics.
 *
 * Lines go to stderr as "2026-11-25 13:45:01.123 LEVEL message".  Safe to call
 * from any thread.  Libraries below engine/ never log: they return a
 * SyncError and engine/ decides what to say.
 */
#ifndef PGSTREAM_ENGINE_LOG_H
#define PGSTREAM_ENGINE_LOG_H

#include <stdbool.h>

#include "protocol/error.h"

typedef enum LogLevel
{
	LOG_DEBUG = 0,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
	LOG_NONE
} LogLevel;

void		log_set_level(LogLevel level);
LogLevel	log_get_level(void);
void		log_msg(LogLevel level, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Log err at ERROR level, with its SQLSTATE when it has one. */
void		log_sync_error(const SyncError *err);

#endif
