/*
 * engine/progress.h -- progress of a long phase (copy, index build): per
 * table rows and bytes against the estimate, overall percent and ETA.
 *
 * On a terminal the display is redrawn in place about once a second; when
 * stderr is not a terminal a log line is written every 10 seconds.  Quiet
 * mode prints nothing.  Workers update counters with atomics; only the
 * thread calling progress_tick() prints.
 */
#ifndef PGSTREAM_ENGINE_PROGRESS_H
#define PGSTREAM_ENGINE_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct ProgressTable
{
	char	   *name;			/* owned */
	int64_t		est_rows;
	int64_t		est_bytes;
	int			nparts;
	atomic_llong rows;
	atomic_llong bytes;
	atomic_int	parts_done;
} ProgressTable;

typedef struct Progress
{
	const char *label;
	const char *done_verb;		/* "copied" unless the caller says "read" etc. */
	bool		quiet;
	bool		tty;
	ProgressTable *tables;		/* owned */
	int			ntables;
	int			cap;
	int64_t		est_bytes_total;
	int64_t		start_us;
	int64_t		last_draw_us;
	int64_t		bytes_at_start;	/* already done when this run began */
	int			lines_drawn;
} Progress;

void		progress_init(Progress *p, const char *label, bool quiet);
void		progress_term(Progress *p);

/* Register a table before workers start; returns its index. */
int			progress_add_table(Progress *p, const char *name, int64_t est_rows,
							   int64_t est_bytes, int nparts);

/* Counters; safe from any thread. */
void		progress_add(Progress *p, int table, int64_t rows, int64_t bytes);
void		progress_part_done(Progress *p, int table, int64_t rows, int64_t bytes);

/* Sleep up to sleep_ms, then draw if it is time.  Call from one thread. */
void		progress_tick(Progress *p, int sleep_ms);

/* Final summary line. */
void		progress_finish(Progress *p);

/* "1.2 GB" style, into buf (>= 16 bytes); returns buf. */
char	   *progress_format_bytes(int64_t bytes, char *buf, int size);

/* "1h02m", "3m05s", "12s"; "?" for negative. */
char	   *progress_format_duration(int64_t seconds, char *buf, int size);

#endif
