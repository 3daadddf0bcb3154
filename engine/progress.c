/*
 * engine/progress.c -- live progress display.
 */
#include "engine/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/log.h"

#define LOG_INTERVAL_US (10 * 1000000)
#define DRAW_INTERVAL_US (1000000)
#define MAX_TABLE_LINES 8

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
progress_init(Progress *p, const char *label, bool quiet)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->done_verb = "copied";
	p->quiet = quiet;
	p->tty = isatty(STDERR_FILENO);
	p->start_us = p->last_draw_us = now_us();
}

void
progress_term(Progress *p)
{
	for (int i = 0; i < p->ntables; i++)
		free(p->tables[i].name);
	free(p->tables);
	memset(p, 0, sizeof(*p));
}

int
progress_add_table(Progress *p, const char *name, int64_t est_rows,
				   int64_t est_bytes, int nparts)
{
	ProgressTable *t;

	if (p->ntables == p->cap)
	{
		int			cap = p->cap ? p->cap * 2 : 64;
		ProgressTable *nt = realloc(p->tables, (size_t) cap * sizeof(*nt));

		if (nt == NULL)
			return -1;
		p->tables = nt;
		p->cap = cap;
	}
	t = &p->tables[p->ntables];
	memset(t, 0, sizeof(*t));
	t->name = strdup(name);
	t->est_rows = est_rows;
	t->est_bytes = est_bytes;
	t->nparts = nparts;
	p->est_bytes_total += est_bytes;
	return p->ntables++;
}

void
progress_add(Progress *p, int table, int64_t rows, int64_t bytes)
{
	if (table < 0 || table >= p->ntables)
		return;
	atomic_fetch_add(&p->tables[table].rows, rows);
	atomic_fetch_add(&p->tables[table].bytes, bytes);
}

void
progress_part_done(Progress *p, int table, int64_t rows, int64_t bytes)
{
	if (table < 0 || table >= p->ntables)
		return;
	progress_add(p, table, rows, bytes);
	atomic_fetch_add(&p->tables[table].parts_done, 1);
	if (rows || bytes)
		p->bytes_at_start += bytes;
}

char *
progress_format_bytes(int64_t bytes, char *buf, int size)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	double		v = (double) bytes;
	int			u = 0;

	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	snprintf(buf, (size_t) size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

char *
progress_format_duration(int64_t s, char *buf, int size)
{
	if (s < 0)
		snprintf(buf, (size_t) size, "?");
	else if (s >= 3600)
		snprintf(buf, (size_t) size, "%lldh%02lldm", (long long) s / 3600,
				 (long long) (s % 3600) / 60);
	else if (s >= 60)
		snprintf(buf, (size_t) size, "%lldm%02llds", (long long) s / 60, (long long) s % 60);
	else
		snprintf(buf, (size_t) size, "%llds", (long long) s);
	return buf;
}

/*
 * Fraction of a table done: 1 when all its parts are, else rows against the
 * row estimate (capped below 1), so the overall percent does not depend on
 * the difference between heap size and COPY text size.
 */
static double
table_fraction(const ProgressTable *t)
{
	double		f;

	if (atomic_load(&t->parts_done) >= t->nparts)
		return 1.0;
	if (t->est_rows <= 0)
		return 0.0;
	f = (double) atomic_load(&t->rows) / (double) t->est_rows;
	return f > 0.99 ? 0.99 : f;
}

/* Overall line: "copy  45.0%  1.2 GB copied  35.0 MB/s  ETA 42s  tables 3/10". */
static void
overall_line(const Progress *p, char *line, size_t size)
{
	int64_t		copied = 0,
				tables_done = 0;
	double		weighted = 0,
				total = 0,
				pct,
				rate;
	int64_t		elapsed = now_us() - p->start_us;
	char		a[16],
				r[16],
				e[16];

	for (int i = 0; i < p->ntables; i++)
	{
		double		w = (double) (p->tables[i].est_bytes > 0 ? p->tables[i].est_bytes : 8192);

		copied += atomic_load(&p->tables[i].bytes);
		tables_done += atomic_load(&p->tables[i].parts_done) >= p->tables[i].nparts;
		weighted += w * table_fraction(&p->tables[i]);
		total += w;
	}
	pct = total > 0 ? 100.0 * weighted / total : 100.0;
	rate = elapsed > 0 ? (double) (copied - p->bytes_at_start) * 1e6 / (double) elapsed : 0;
	snprintf(line, size, "%s %5.1f%%  %s %s  %s/s  ETA %s  tables %lld/%d", p->label, pct,
			 progress_format_bytes(copied, a, sizeof(a)), p->done_verb,
			 progress_format_bytes((int64_t) rate, r, sizeof(r)),
			 progress_format_duration(pct >= 100.0 ? 0 : pct > 0.5 ?
									  (int64_t) ((double) elapsed / 1e6 * (100.0 - pct) / pct) : -1,
									  e, sizeof(e)),
			 (long long) tables_done, p->ntables);
}

static void
table_line(const ProgressTable *t, char *line, size_t size)
{
	char		a[16],
				b[16];

	snprintf(line, size, "  %-40.40s %10lld / ~%lld rows  %s / ~%s  parts %d/%d", t->name,
			 (long long) atomic_load(&t->rows), (long long) t->est_rows,
			 progress_format_bytes(atomic_load(&t->bytes), a, sizeof(a)),
			 progress_format_bytes(t->est_bytes, b, sizeof(b)),
			 atomic_load(&t->parts_done), t->nparts);
}

static bool
table_active(const ProgressTable *t)
{
	int			done = atomic_load(&t->parts_done);

	return done < t->nparts && (done > 0 || atomic_load(&t->rows) > 0);
}

static void
draw_tty(Progress *p)
{
	char		line[512];
	int			lines = 0;

	if (p->lines_drawn > 0)
		fprintf(stderr, "\033[%dA", p->lines_drawn);
	overall_line(p, line, sizeof(line));
	fprintf(stderr, "\r\033[K%s\n", line);
	lines++;
	for (int i = 0; i < p->ntables && lines <= MAX_TABLE_LINES; i++)
		if (table_active(&p->tables[i]))
		{
			table_line(&p->tables[i], line, sizeof(line));
			fprintf(stderr, "\033[K%s\n", line);
			lines++;
		}
	for (int i = lines; i < p->lines_drawn; i++)
		fprintf(stderr, "\033[K\n");
	if (p->lines_drawn > lines)
		fprintf(stderr, "\033[%dA", p->lines_drawn - lines);
	fflush(stderr);
	p->lines_drawn = lines;
}

static void
draw_log(Progress *p)
{
	char		line[512];

	overall_line(p, line, sizeof(line));
	log_info("%s", line);
	for (int i = 0; i < p->ntables; i++)
		if (table_active(&p->tables[i]))
		{
			table_line(&p->tables[i], line, sizeof(line));
			log_info("%s", line);
		}
}

void
progress_tick(Progress *p, int sleep_ms)
{
	int64_t		now;

	usleep((useconds_t) sleep_ms * 1000);
	if (p->quiet)
		return;
	now = now_us();
	if (now - p->last_draw_us < (p->tty ? DRAW_INTERVAL_US : LOG_INTERVAL_US))
		return;
	p->last_draw_us = now;
	if (p->tty)
		draw_tty(p);
	else
		draw_log(p);
}

void
progress_finish(Progress *p)
{
	char		line[512];

	if (p->quiet)
		return;
	if (p->tty && p->lines_drawn > 0)
	{
		fprintf(stderr, "\033[%dA", p->lines_drawn);
		for (int i = 0; i < p->lines_drawn; i++)
			fprintf(stderr, "\033[K\n");
		fprintf(stderr, "\033[%dA", p->lines_drawn);
		p->lines_drawn = 0;
	}
	overall_line(p, line, sizeof(line));
	log_info("%s (%.1f s)", line, (double) (now_us() - p->start_us) / 1e6);
}
