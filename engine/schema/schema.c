/*
 * engine/schema/schema.c -- the schema stage: pg_dump once, split into steps kept
 * on the target, apply them in three phases.  See schema.h for the phases
 * and the state table.
 *
 * NOTES
 *
 * Capture.  pg_dump -Fc --section=pre-data --section=post-data --snapshot
 * writes an archive (like --schema-only, but with the MATERIALIZED VIEW DATA
 * entries that REFRESH populated materialized views); three
 * `pg_restore -l` runs list its entries (all of them, --section=pre-data and
 * --section=post-data), so the section of every entry is pg_restore's own
 * decision, not ours.  Then one `pg_restore -f - -L list` per group (pre-data,
 * post-data, skipped, refresh) prints the SQL of that group's entries, and
 * schema_script_split() cuts the script at the header comment pg_restore
 * writes before each entry (_printTocEntry in pg_backup_archiver.c),
 * checking each header against the -l line of the entry expected there.
 * Running pg_restore once per entry would be exact too, but far too slow for
 * a database with thousands of objects.
 *
 * Order.  pg_restore -L restores in the order of the list file, except for
 * entries it defers to a later pass: ACLs (we pass --no-privileges), EVENT
 * TRIGGER entries with their comments, and MATERIALIZED VIEW DATA (both of
 * which get pg_restore runs of their own).  So each script's entries come in
 * our order, and the split checks that they do.
 *
 * Session state.  The script starts with SETs (statement_timeout,
 * client_encoding, search_path = '', check_function_bodies = false, ...).
 * They are kept once, as row 0, rewritten as SET LOCAL so that running them
 * at the start of each step's transaction leaves the connection's own
 * settings alone.  SETs that pg_restore prints between entries only when the
 * value changes (default_table_access_method, default_tablespace) are
 * tracked and repeated at the top of every later step, so each step is
 * complete on its own, whatever order or session it runs in.
 *
 * Encoding.  pg_dump runs with --encoding=UTF8, so all text is UTF-8 like
 * our connections, whatever the source database's encoding.
 *
 * Exactly once.  A step's SQL and "UPDATE ... SET done = true" commit
 * together, after "SELECT done ... FOR UPDATE" has checked the step is not
 * done, so two runs racing, or a crash at any point, can neither build an
 * index twice nor skip one.
 */
#include "engine/schema/schema.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply/pgconn.h"
#include "apply/statesql.h"
#include "engine/cli.h"
#include "engine/failpoint.h"
#include "engine/log.h"
#include "engine/subproc.h"

#define TRAILER "\n--\n-- PostgreSQL database dump complete\n--\n"
#define MAX_STATE 8 /* stateful SETs tracked between entries */
/* pre-data steps per transaction when one transaction needs too many locks */
#define SCHEMA_PRE_BATCH 100

const char *
schema_phase_name(int phase)
{
	switch (phase)
	{
		case SCHEMA_PHASE_SESSION:
			return "session";
		case SCHEMA_PHASE_PRE:
			return "pre-data";
		case SCHEMA_PHASE_INDEX:
			return "index";
		case SCHEMA_PHASE_FINAL:
			return "final";
		case SCHEMA_PHASE_SKIPPED:
			return "skipped";
	}
	return "unknown";
}

/* ---------------------------------------------------------------------
 * A growing string.  Out-of-memory is sticky and checked once at the end.
 * --------------------------------------------------------------------- */

typedef struct Buf
{
	char *data; /* owned */
	size_t len;
	size_t cap;
	bool nomem;
} Buf;

static void
buf_add(Buf *b, const char *p, size_t n)
{
	if (b->nomem)
		return;
	if (b->len + n + 1 > b->cap)
	{
		size_t cap = b->cap ? b->cap : 256;
		char *grown;

		while (cap < b->len + n + 1)
			cap *= 2;
		grown = realloc(b->data, cap);
		if (grown == NULL)
		{
			b->nomem = true;
			return;
		}
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
buf_adds(Buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* The string (possibly "") or NULL on out-of-memory; b is emptied. */
static char *
buf_take(Buf *b)
{
	char *s = b->data;

	if (b->nomem)
	{
		free(s);
		s = NULL;
	}
	else if (s == NULL)
		s = calloc(1, 1);
	memset(b, 0, sizeof(*b));
	return s;
}

static void
buf_term(Buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Does the n-byte string p start with prefix? */
static bool
mem_starts_with(const char *p, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && memcmp(p, prefix, k) == 0;
}

static char *
dup_range(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s != NULL)
	{
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* ---------------------------------------------------------------------
 * pg_restore -l
 * --------------------------------------------------------------------- */

/* "<id>; <catalog oid> <oid> <rest>" from a NUL-terminated line. */
static bool
parse_toc_line(const char *line, SchemaTocEntry *e)
{
	char *end;
	long id;
	unsigned long catalog, oid;

	if (line[0] < '0' || line[0] > '9')
		return false;
	errno = 0;
	id = strtol(line, &end, 10);
	if (errno != 0 || id <= 0 || id > INT_MAX || end[0] != ';' || end[1] != ' ')
		return false;
	line = end + 2;
	if (line[0] < '0' || line[0] > '9')
		return false;
	catalog = strtoul(line, &end, 10);
	if (errno != 0 || end[0] != ' ' || end[1] < '0' || end[1] > '9')
		return false;
	oid = strtoul(end + 1, &end, 10);
	if (errno != 0 || end[0] != ' ' || catalog > UINT_MAX || oid > UINT_MAX)
		return false;
	e->dump_id = (int) id;
	e->catalog_oid = (Oid) catalog;
	e->oid = (Oid) oid;
	e->rest = strdup(end + 1);
	return true;
}

static bool
toc_append(SchemaToc *toc, size_t *cap, const SchemaTocEntry *e)
{
	if (toc->count == *cap)
	{
		size_t ncap = *cap ? *cap * 2 : 64;
		SchemaTocEntry *grown = realloc(toc->entries, ncap * sizeof(*grown));

		if (grown == NULL)
			return false;
		toc->entries = grown;
		*cap = ncap;
	}
	toc->entries[toc->count++] = *e;
	return true;
}

bool
schema_toc_parse(const char *text, SchemaToc *toc, SyncError *err)
{
	size_t cap = 0;
	const char *p = text;

	memset(toc, 0, sizeof(*toc));
	while (*p != '\0')
	{
		size_t n = strcspn(p, "\n");
		char *line = dup_range(p, n);
		SchemaTocEntry e = {0};
		bool ok = line != NULL;

		if (ok && n > 0 && line[0] != ';')
		{
			ok = parse_toc_line(line, &e);
			if (!ok)
			{
				sync_error_set(
				    err, SYNC_ERR_INVALID,
				    "unexpected line in pg_restore -l output: \"%.80s\"", line);
				free(line);
				schema_toc_term(toc);
				return false;
			}
			ok = e.rest != NULL && toc_append(toc, &cap, &e);
			if (!ok)
				free(e.rest);
		}
		free(line);
		if (!ok)
		{
			schema_toc_term(toc);
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		}
		p += n + (p[n] == '\n');
	}
	return true;
}

void
schema_toc_term(SchemaToc *toc)
{
	if (toc == NULL)
		return;
	for (size_t i = 0; i < toc->count; i++)
		free(toc->entries[i].rest);
	free(toc->entries);
	memset(toc, 0, sizeof(*toc));
}

bool
schema_toc_entry_is_skipped(const SchemaTocEntry *entry)
{
	/*
	 * "EVENT TRIGGER - et owner" and "COMMENT - EVENT TRIGGER et owner" need
	 * a superuser.  "COMMENT - EXTENSION x" needs the extension's owner, who
	 * on a managed target may be the admin who created it beforehand; the
	 * comment comes from the extension's control file anyway.
	 */
	return starts_with(entry->rest, "EVENT TRIGGER ") ||
	       starts_with(entry->rest, "COMMENT - EVENT TRIGGER ") ||
	       starts_with(entry->rest, "COMMENT - EXTENSION ");
}

SchemaPhase
schema_post_data_phase(const char *desc)
{
	if (strcmp(desc, "INDEX") == 0 || strcmp(desc, "CONSTRAINT") == 0 ||
	    strcmp(desc, "INDEX ATTACH") == 0)
		return SCHEMA_PHASE_INDEX;
	return SCHEMA_PHASE_FINAL;
}

/* ---------------------------------------------------------------------
 * Session statements: the preamble and the SETs between entries
 * --------------------------------------------------------------------- */

/* SETs pg_restore prints before an entry only when their value changes. */
static const char *const state_prefixes[] = {
    "SET default_tablespace = ",  "SET default_table_access_method = ",
    "SET search_path = ",         "SET default_with_oids = ",
    "SET SESSION AUTHORIZATION ",
};

typedef struct SessionState
{
	int count;
	int which[MAX_STATE];  /* index into state_prefixes */
	char *stmt[MAX_STATE]; /* owned, localized, with '\n' */
} SessionState;

/* Index of the stateful SET the line is, or -1. */
static int
state_kind(const char *line, size_t n)
{
	if (n == 0 || line[n - 1] != ';')
		return -1;
	for (size_t i = 0; i < sizeof(state_prefixes) / sizeof(state_prefixes[0]);
	     i++)
		if (mem_starts_with(line, n, state_prefixes[i]))
			return (int) i;
	return -1;
}

/*
 * Rewrite one session-level statement to its transaction-local form:
 * "SET x = y;" -> "SET LOCAL x = y;" and pg_catalog.set_config(..., false)
 * -> (..., true).  Appends it with a newline.  False for any other form.
 */
static bool
localize_stmt(const char *line, size_t n, Buf *out)
{
	static const char set_config[] = "SELECT pg_catalog.set_config(";
	static const char session_end[] = ", false);";
	size_t tail = sizeof(session_end) - 1;

	if (mem_starts_with(line, n, "SET ") &&
	    !mem_starts_with(line, n, "SET LOCAL "))
	{
		buf_adds(out, "SET LOCAL ");
		buf_add(out, line + 4, n - 4);
	}
	else if (mem_starts_with(line, n, set_config) && n > tail &&
	         memcmp(line + n - tail, session_end, tail) == 0)
	{
		buf_add(out, line, n - tail);
		buf_adds(out, ", true);");
	}
	else
		return false;
	buf_adds(out, "\n");
	return true;
}

static bool
state_set(SessionState *st, int kind, const char *line, size_t n)
{
	Buf b = {0};
	char *stmt;
	int i;

	(void) localize_stmt(line, n, &b); /* every state prefix is a SET */
	stmt = buf_take(&b);
	if (stmt == NULL)
		return false;
	for (i = 0; i < st->count && st->which[i] != kind; i++)
		;
	if (i == st->count)
	{
		if (st->count == MAX_STATE)
		{
			free(stmt);
			return false;
		}
		st->which[st->count++] = kind;
	}
	else
		free(st->stmt[i]);
	st->stmt[i] = stmt;
	return true;
}

static void
state_term(SessionState *st)
{
	for (int i = 0; i < st->count; i++)
		free(st->stmt[i]);
	memset(st, 0, sizeof(*st));
}

/* Is this line a psql meta-command pg_restore adds (\restrict KEY)? */
static bool
is_restrict_line(const char *line, size_t n)
{
	return mem_starts_with(line, n, "\\restrict ") ||
	       mem_starts_with(line, n, "\\unrestrict ");
}

/*
 * The text before the first entry: comments, blank lines, \restrict, the
 * fixed SETs (into preamble, localized) and maybe stateful SETs.
 */
static bool
parse_preamble(const char *text, size_t end, Buf *preamble, SessionState *st,
               SyncError *err)
{
	size_t pos = 0;

	while (pos < end)
	{
		const char *line = text + pos;
		size_t n = strcspn(line, "\n");
		int kind;

		if (n > end - pos)
			n = end - pos;
		pos += n + 1;
		if (n == 0 || mem_starts_with(line, n, "--") ||
		    is_restrict_line(line, n))
			continue;
		kind = state_kind(line, n);
		if (kind >= 0)
		{
			if (!state_set(st, kind, line, n))
				return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		}
		else if (line[n - 1] != ';' || !localize_stmt(line, n, preamble))
			return sync_error_set(err, SYNC_ERR_INVALID,
			                      "unexpected statement at the start of "
			                      "pg_restore output: \"%.*s\"",
			                      (int) (n > 80 ? 80 : n), line);
		if (preamble->nomem)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	return true;
}

/* Settings a newer pg_restore may print that older servers reject. */
static const struct
{
	const char *stmt_prefix;
	int min_server_version;
} versioned_settings[] = {
    {"SET LOCAL transaction_timeout ", 170000},
};

char *
schema_preamble_for_server(const char *preamble, int server_version)
{
	Buf b = {0};

	for (const char *p = preamble; *p != '\0';)
	{
		size_t n = strcspn(p, "\n");
		bool keep = true;

		for (size_t i = 0;
		     i < sizeof(versioned_settings) / sizeof(versioned_settings[0]);
		     i++)
			if (server_version < versioned_settings[i].min_server_version &&
			    mem_starts_with(p, n, versioned_settings[i].stmt_prefix))
				keep = false;
		if (keep)
			buf_add(&b, p, n + (p[n] == '\n'));
		p += n + (p[n] == '\n');
	}
	return buf_take(&b);
}

/* ---------------------------------------------------------------------
 * Headers
 * --------------------------------------------------------------------- */

/* A header found in the script. */
typedef struct Header
{
	size_t start; /* offset of its first "--" line */
	size_t body;  /* offset just after it ("--\n\n") */
	size_t line;  /* offset of "-- Name: ..." */
	size_t line_len;
} Header;

/*
 * If a header ("--\n-- ...Name: ...; Type: ...\n--\n") starts at text+pos,
 * fill h.
 */
static bool
header_at(const char *text, size_t pos, size_t end, Header *h)
{
	const char *l2 = text + pos + 3;
	size_t n;
	char *copy;
	bool is_header;

	if (end - pos < 8 || memcmp(text + pos, "--\n-- ", 6) != 0)
		return false;
	n = strcspn(l2, "\n");
	if ((size_t) (l2 - text) + n + 4 > end || memcmp(l2 + n, "\n--\n", 4) != 0)
		return false;
	copy = dup_range(l2, n);
	is_header = copy != NULL && strstr(copy, "Name: ") != NULL &&
	            strstr(copy, "; Type: ") != NULL;
	free(copy);
	if (!is_header)
		return false;
	h->start = pos;
	h->line = (size_t) (l2 - text);
	h->line_len = n;
	h->body = h->line + n + 4;
	if (h->body < end && text[h->body] == '\n')
		h->body++;
	return true;
}

/* All headers in text[0..end), in order.  *out is malloc'd. */
static bool
find_headers(const char *text, size_t end, Header **out, size_t *count)
{
	size_t cap = 0;

	*out = NULL;
	*count = 0;
	for (size_t pos = 0; pos < end; pos++)
	{
		Header h;

		if ((pos > 0 && text[pos - 1] != '\n') ||
		    !header_at(text, pos, end, &h))
			continue;
		if (*count == cap)
		{
			Header *grown;

			cap = cap ? cap * 2 : 64;
			grown = realloc(*out, cap * sizeof(Header));
			if (grown == NULL)
				return false;
			*out = grown;
		}
		(*out)[(*count)++] = h;
		pos = h.body - 1;
	}
	return true;
}

/* Does rest ("DESC SCHEMA TAG OWNER") start with desc, schema and tag? */
static bool
rest_matches(const char *rest, const char *desc, size_t desc_len,
             const char *schema, size_t schema_len, const char *tag,
             size_t tag_len)
{
	const char *p = rest;

	if (strncmp(p, desc, desc_len) != 0 || p[desc_len] != ' ')
		return false;
	p += desc_len + 1;
	if (strncmp(p, schema, schema_len) != 0 || p[schema_len] != ' ')
		return false;
	p += schema_len + 1;
	return strncmp(p, tag, tag_len) == 0 && p[tag_len] == ' ';
}

typedef struct HeaderFields
{
	const char *desc;
	size_t desc_len;
	const char *schema;
	size_t schema_len;
	const char *tag;
	size_t tag_len;
	int matches;
	bool ambiguous; /* two readings with different types */
} HeaderFields;

/* Try every reading of "TAG; Type: DESC; Schema: SCHEMA; Owner: ..." with
 * the given type position against the expected -l line. */
static void
match_with_type_at(const char *h, const char *type_at, const char *rest,
                   HeaderFields *f)
{
	const char *desc = type_at + strlen("; Type: ");

	for (const char *s = strstr(desc, "; Schema: "); s;
	     s = strstr(s + 1, "; Schema: "))
	{
		const char *schema = s + strlen("; Schema: ");

		for (const char *o = strstr(schema, "; Owner: "); o;
		     o = strstr(o + 1, "; Owner: "))
		{
			size_t dl = (size_t) (s - desc), sl = (size_t) (o - schema),
			       tl = (size_t) (type_at - h);

			if (!rest_matches(rest, desc, dl, schema, sl, h, tl))
				continue;
			if (f->matches > 0 &&
			    (f->desc_len != dl || memcmp(f->desc, desc, dl) != 0))
				f->ambiguous = true;
			if (f->matches++ == 0)
				*f = (HeaderFields){desc, dl, schema, sl, h, tl, 1, false};
		}
	}
}

/*
 * Read the fields of a header line (without "-- Name: ") the way that fits
 * the expected entry; names may contain "; Type: " and the like, so every
 * reading is tried and exactly one entry type must fit.
 */
static bool
match_header(const char *h, const SchemaTocEntry *e, SchemaChunk *c)
{
	HeaderFields f = {0};

	for (const char *t = strstr(h, "; Type: "); t;
	     t = strstr(t + 1, "; Type: "))
		match_with_type_at(h, t, e->rest, &f);
	if (f.matches == 0 || f.ambiguous)
		return false;
	c->desc = dup_range(f.desc, f.desc_len);
	c->schema = dup_range(f.schema, f.schema_len);
	c->tag = dup_range(f.tag, f.tag_len);
	return true;
}

/* ---------------------------------------------------------------------
 * Splitting
 * --------------------------------------------------------------------- */

/* Offset of the trailer ("--\n-- PostgreSQL database dump complete"), after
 * checking only blank lines and \unrestrict follow it; 0 if not found. */
static size_t
find_trailer(const char *text, size_t len)
{
	const char *last = NULL;
	const char *p;
	size_t pos;

	for (p = strstr(text, TRAILER); p; p = strstr(p + 1, TRAILER))
		last = p;
	if (last == NULL)
		return 0;
	pos = (size_t) (last - text) + strlen(TRAILER);
	while (pos < len)
	{
		size_t n = strcspn(text + pos, "\n");

		if (n > 0 && !is_restrict_line(text + pos, n))
			return 0;
		pos += n + 1;
	}
	return (size_t) (last - text) + 1;
}

/* Start of the last line of text[lo..hi) (hi is just after its end). */
static size_t
last_line_start(const char *text, size_t lo, size_t hi)
{
	size_t p = hi;

	while (p > lo && text[p - 1] != '\n')
		p--;
	return p;
}

/*
 * Remove the stateful SETs pg_restore printed before the next entry from
 * the end of text[lo..*hi); each sits on its own line after a blank line.
 * Their offsets go to sets[] (last first).  Returns how many.
 */
static int
strip_state_tail(const char *text, size_t lo, size_t *hi,
                 size_t sets[MAX_STATE])
{
	int n = 0;

	for (;;)
	{
		size_t end = *hi, ls;

		while (end > lo && text[end - 1] == '\n')
			end--;
		ls = last_line_start(text, lo, end);
		if (n == MAX_STATE || ls < lo || ls < 2 || text[ls - 2] != '\n' ||
		    state_kind(text + ls, end - ls) < 0)
			return n;
		sets[n++] = ls;
		*hi = ls;
	}
}

/* chunk->sql = the SETs in effect + text[lo..hi) without trailing newlines. */
static bool
make_chunk_sql(const char *text, size_t lo, size_t hi, const SessionState *st,
               SchemaChunk *chunk)
{
	Buf b = {0};

	while (hi > lo && (text[hi - 1] == '\n' || text[hi - 1] == ' '))
		hi--;
	while (lo < hi && text[lo] == '\n')
		lo++;
	if (hi > lo)
	{
		for (int i = 0; i < st->count; i++)
			buf_adds(&b, st->stmt[i]);
		buf_add(&b, text + lo, hi - lo);
		buf_adds(&b, "\n");
	}
	chunk->sql = buf_take(&b);
	return chunk->sql != NULL;
}

typedef struct SplitState
{
	const char *text;
	const Header *headers;
	size_t nheaders;
	size_t trailer;
	SessionState session;
} SplitState;

/* Fill chunk k: check its header, take its SQL, then note the SETs that
 * come before the next entry. */
static bool
split_one(SplitState *s, size_t k, const SchemaTocEntry *e, SchemaChunk *chunk,
          SyncError *err)
{
	const Header *h = &s->headers[k];
	size_t hi = k + 1 < s->nheaders ? s->headers[k + 1].start : s->trailer;
	size_t sets[MAX_STATE];
	int nsets = 0;
	char *line = dup_range(s->text + h->line, h->line_len);

	if (line == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	if (!starts_with(line, "-- Name: ") || !match_header(line + 9, e, chunk))
	{
		sync_error_set(
		    err, SYNC_ERR_INVALID,
		    "entry %zu of the pg_restore output does not match TOC entry %d: "
		    "expected \"%.120s\", found \"%.120s\"",
		    k + 1, e->dump_id, e->rest, line);
		free(line);
		return false;
	}
	free(line);
	if (k + 1 < s->nheaders)
		nsets = strip_state_tail(s->text, h->body, &hi, sets);
	if (chunk->desc == NULL || chunk->schema == NULL || chunk->tag == NULL ||
	    !make_chunk_sql(s->text, h->body, hi, &s->session, chunk))
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	while (nsets-- > 0)
	{
		const char *l = s->text + sets[nsets];

		if (!state_set(&s->session, state_kind(l, strcspn(l, "\n")), l,
		               strcspn(l, "\n")))
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	return true;
}

void
schema_script_term(SchemaScript *script)
{
	if (script == NULL)
		return;
	for (size_t i = 0; i < script->count; i++)
	{
		free(script->chunks[i].desc);
		free(script->chunks[i].schema);
		free(script->chunks[i].tag);
		free(script->chunks[i].sql);
	}
	free(script->chunks);
	free(script->preamble);
	memset(script, 0, sizeof(*script));
}

/* Find the trailer and headers and check their count. */
static bool
split_prepare(SplitState *s, size_t n, Header **headers, SyncError *err)
{
	size_t len = strlen(s->text);

	s->trailer = find_trailer(s->text, len);
	if (s->trailer == 0)
		return sync_error_set(err, SYNC_ERR_INVALID,
		                      "pg_restore output does not end with the "
		                      "\"dump complete\" trailer; it may be cut short");
	if (!find_headers(s->text, s->trailer, headers, &s->nheaders))
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	s->headers = *headers;
	if (s->nheaders != n)
		return sync_error_set(err, SYNC_ERR_INVALID,
		                      "pg_restore printed %zu entries, expected %zu",
		                      s->nheaders, n);
	return true;
}

bool
schema_script_split(const char *text, const SchemaTocEntry *expected, size_t n,
                    SchemaScript *out, SyncError *err)
{
	SplitState s = {.text = text};
	Header *headers = NULL;
	Buf preamble = {0};
	bool ok;

	memset(out, 0, sizeof(*out));
	ok = split_prepare(&s, n, &headers, err) &&
	     parse_preamble(text, n > 0 ? headers[0].start : s.trailer, &preamble,
	                    &s.session, err);
	if (ok && n > 0 && (out->chunks = calloc(n, sizeof(SchemaChunk))) == NULL)
		ok = sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	for (size_t k = 0; ok && k < n; k++)
	{
		out->count = k + 1;
		ok = split_one(&s, k, &expected[k], &out->chunks[k], err);
	}
	if (ok && (out->preamble = buf_take(&preamble)) == NULL)
		ok = sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	buf_term(&preamble);
	state_term(&s.session);
	free(headers);
	if (!ok)
		schema_script_term(out);
	return ok;
}

/* ---------------------------------------------------------------------
 * Capture: pg_dump, pg_restore, the source's partitions and sizes
 * --------------------------------------------------------------------- */

/*
 * Entries are restored in groups, one pg_restore run each.  pg_restore
 * defers EVENT TRIGGER and MATERIALIZED VIEW DATA entries to a late pass
 * whatever the order of the list, so they get runs of their own and the
 * split can insist on list order everywhere.
 */
enum
{
	GROUP_PRE,     /* pre-data section */
	GROUP_POST,    /* post-data: index or final phase by type */
	GROUP_SKIP,    /* event triggers and comments on them */
	GROUP_REFRESH, /* MATERIALIZED VIEW DATA: REFRESH, in the final phase */
	NGROUPS
};

static const char *const group_names[NGROUPS] = {"pre-data", "post-data",
                                                 "skipped", "refresh"};

/* What the source says about an index or constraint. */
typedef struct RelInfo
{
	Oid catalog_oid;
	Oid oid;
	bool partitioned; /* on a partitioned table */
	int64_t bytes;    /* size of the table it is on */
} RelInfo;

/* One row of pgstream.schema_steps. */
typedef struct Step
{
	int id;
	int dump_id;
	SchemaPhase phase;
	int wave;
	const char *kind; /* borrowed from a chunk */
	char *name;       /* owned */
	const char *sql;  /* borrowed from a chunk */
	int64_t rel_bytes;
} Step;

typedef struct Capture
{
	char dir[PATH_MAX / 2]; /* temporary directory, "" if none */
	char dump[PATH_MAX];
	char pg_dump[PATH_MAX];
	char pg_restore[PATH_MAX];
	int pg_dump_major;  /* e.g. 15 */
	char *conninfo;     /* owned: source without password */
	char *password_env; /* owned: "PGPASSWORD=..." or NULL */
	SchemaToc full;
	SchemaToc pre;
	SchemaToc post;
	SchemaTocEntry *group[NGROUPS]; /* owned arrays of borrowed entries */
	int *group_ids[NGROUPS];        /* owned: position in full, from 1 */
	size_t group_n[NGROUPS];
	SchemaScript script[NGROUPS];
	RelInfo *rels; /* owned, sorted by (catalog_oid, oid) */
	size_t nrels;
	RelInfo *superuser_only; /* owned, sorted: SCHEMA_SUPERUSER_ONLY_SQL */
	size_t nsuperuser_only;
	Step *steps; /* owned */
	size_t nsteps;
} Capture;

/* Session settings for pg_dump's connection (all exist from PostgreSQL 9.6). */
#define PG_DUMP_NO_TIMEOUTS \
	"-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0"

/* Append "keyword='value' " to b, quoted for a libpq connection string. */
static void
add_conninfo_pair(Buf *b, const char *keyword, const char *value)
{
	buf_adds(b, keyword);
	buf_adds(b, "='");
	for (const char *p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			buf_adds(b, "\\");
		buf_add(b, p, 1);
	}
	buf_adds(b, "' ");
}

/*
 * Split conninfo into a connection string without the password (for a
 * command line) and "PGPASSWORD=<password>" (for the environment; NULL if
 * there is no password).
 */
static bool
split_password(const char *conninfo, char **without, char **password_env,
               SyncError *err)
{
	PQconninfoOption *opts;
	Buf b = {0};
	Buf pw = {0};

	if (!pgconn_check_conninfo(conninfo, "source", err))
		return false;
	opts = PQconninfoParse(conninfo, NULL);
	if (opts == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
	{
		if (o->val == NULL || strcmp(o->keyword, "options") == 0)
			continue;
		if (strcmp(o->keyword, "password") != 0)
			add_conninfo_pair(&b, o->keyword, o->val);
		else if (pw.len == 0)
		{
			buf_adds(&pw, "PGPASSWORD=");
			buf_adds(&pw, o->val);
		}
	}
	/*
	 * pg_dump turns the timeouts off itself, but only after its first
	 * queries: a role's statement_timeout of a few ms would fail those.
	 */
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
	{
		if (strcmp(o->keyword, "options") == 0)
		{
			Buf		 options = {0};

			buf_adds(&options, o->val ? o->val : "");
			buf_adds(&options, o->val && *o->val ? " " : "");
			buf_adds(&options, PG_DUMP_NO_TIMEOUTS);
			if (options.nomem)
				b.nomem = true;
			else
				add_conninfo_pair(&b, "options", options.data);
			free(options.data);
		}
	}
	PQconninfoFree(opts);
	*without = buf_take(&b);
	*password_env = pw.len > 0 ? buf_take(&pw) : NULL;
	if (pw.nomem || *without == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	return true;
}

/* Major version of pg_dump from "pg_dump (PostgreSQL) 15.18 (Debian ...)". */
static bool
read_pg_dump_version(Capture *c, SyncError *err)
{
	const char *const argv[] = {c->pg_dump, "--version", NULL};
	SubprocOptions opts = {.capture_stdout = true, .max_stdout_bytes = 4096};
	char *out = NULL;
	const char *p;

	if (!subproc_run(argv, &opts, &out, NULL, err))
		return false;
	p = strstr(out, ") ");
	c->pg_dump_major = p ? (int) strtol(p + 2, NULL, 10) : 0;
	if (c->pg_dump_major < 10)
		sync_error_set(err, SYNC_ERR_PRECONDITION,
		               "unexpected pg_dump version \"%.60s\"", out);
	free(out);
	return c->pg_dump_major >= 10;
}

static bool
capture_prepare(Capture *c, const char *source_conninfo, SyncError *err)
{
	const char *tmp = getenv("TMPDIR");

	if (!subproc_find_pg_program("pg_dump", c->pg_dump, sizeof(c->pg_dump),
	                             err) ||
	    !subproc_find_pg_program("pg_restore", c->pg_restore,
	                             sizeof(c->pg_restore), err) ||
	    !read_pg_dump_version(c, err) ||
	    !split_password(source_conninfo, &c->conninfo, &c->password_env, err))
		return false;
	snprintf(c->dir, sizeof(c->dir), "%s/pgstream-schema-XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(c->dir) == NULL)
	{
		sync_error_set(err, SYNC_ERR_IO,
		               "could not create temporary directory \"%s\": %s",
		               c->dir, strerror(errno));
		c->dir[0] = '\0';
		return false;
	}
	snprintf(c->dump, sizeof(c->dump), "%s/schema.dump", c->dir);
	return true;
}

/* Options that select what pg_dump and pg_restore leave out. */
#define LEAVE_OUT_OPTIONS                                                      \
	"--no-privileges", "--no-publications", "--no-subscriptions",              \
	    "--no-security-labels"

static bool
capture_dump(Capture *c, const char *snapshot, SyncError *err)
{
	const char *env[] = {c->password_env, NULL};
	/* a signal ends pg_dump too: it is never left running on its own */
	SubprocOptions opts = {.env_extra = env, .stop = &cli_stop_requested};
	char snapshot_opt[256];
	char exclude_opt[160];
	const char *argv[24];
	int n = 0;

	snprintf(snapshot_opt, sizeof(snapshot_opt), "--snapshot=%s",
	         snapshot ? snapshot : "");
	/* a pattern: quoted, every character of the name is taken literally */
	snprintf(exclude_opt, sizeof(exclude_opt), "--exclude-schema=%s",
	         state_schema_quoted());
	argv[n++] = c->pg_dump;
	argv[n++] = "--format=custom";
	/* not --schema-only: that would leave out MATERIALIZED VIEW DATA */
	argv[n++] = "--section=pre-data";
	argv[n++] = "--section=post-data";
	argv[n++] = "--no-blobs";
	if (c->pg_dump_major >= 18)
		argv[n++] = "--no-statistics"; /* planner statistics are data */
	argv[n++] = "--encoding=UTF8";
	argv[n++] = "--no-sync";
	argv[n++] = exclude_opt;
	for (const char *const *o = (const char *const[]){LEAVE_OUT_OPTIONS, NULL};
	     *o; o++)
		argv[n++] = *o;
	if (snapshot != NULL && *snapshot != '\0')
		argv[n++] = snapshot_opt;
	argv[n++] = "--file";
	argv[n++] = c->dump;
	if (*c->conninfo != '\0')
	{
		argv[n++] = "--dbname";
		argv[n++] = c->conninfo;
	}
	argv[n] = NULL;
	if (!subproc_run(argv, &opts, NULL, NULL, err))
		return sync_error_context(err, "could not dump the source schema");
	return true;
}

/* pg_restore -l [--section=section] into toc. */
static bool
capture_list(Capture *c, const char *section, SchemaToc *toc, SyncError *err)
{
	SubprocOptions opts = {.capture_stdout = true};
	char section_opt[64];
	const char *argv[12] = {c->pg_restore, "--list", LEAVE_OUT_OPTIONS};
	int n = 0;
	char *out = NULL;
	bool ok;

	while (argv[n] != NULL)
		n++;
	if (section != NULL)
	{
		snprintf(section_opt, sizeof(section_opt), "--section=%s", section);
		argv[n++] = section_opt;
	}
	argv[n++] = c->dump;
	argv[n] = NULL;
	if (!subproc_run(argv, &opts, &out, NULL, err))
		return sync_error_context(err, "could not list the schema dump");
	ok = schema_toc_parse(out, toc, err);
	free(out);
	return ok;
}

static int
compare_int(const void *a, const void *b)
{
	int x = *(const int *) a, y = *(const int *) b;

	return (x > y) - (x < y);
}

/* Sorted dump ids of toc (malloc'd; NULL on out-of-memory unless empty). */
static int *
sorted_ids(const SchemaToc *toc)
{
	int *ids = malloc((toc->count + 1) * sizeof(int));

	if (ids == NULL)
		return NULL;
	for (size_t i = 0; i < toc->count; i++)
		ids[i] = toc->entries[i].dump_id;
	qsort(ids, toc->count, sizeof(int), compare_int);
	return ids;
}

static bool
has_id(const int *ids, size_t n, int id)
{
	return bsearch(&id, ids, n, sizeof(int), compare_int) != NULL;
}

/* Put every entry of the full list in its group, in TOC order. */
static bool
assign_groups(Capture *c, const int *pre_ids, const int *post_ids,
              SyncError *err)
{
	for (int g = 0; g < NGROUPS; g++)
	{
		c->group[g] = calloc(c->full.count + 1, sizeof(SchemaTocEntry));
		c->group_ids[g] = calloc(c->full.count + 1, sizeof(int));
		if (c->group[g] == NULL || c->group_ids[g] == NULL)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < c->full.count; i++)
	{
		const SchemaTocEntry *e = &c->full.entries[i];
		bool in_pre = has_id(pre_ids, c->pre.count, e->dump_id);
		bool in_post = has_id(post_ids, c->post.count, e->dump_id);
		int g;

		if (in_pre == in_post)
			return sync_error_set(err, SYNC_ERR_INVALID,
			                      "TOC entry %d (%.100s) is in %s of the "
			                      "pre-data and post-data sections",
			                      e->dump_id, e->rest,
			                      in_pre ? "both" : "neither");
		g = schema_toc_entry_is_skipped(e)                    ? GROUP_SKIP
		    : in_pre                                          ? GROUP_PRE
		    : starts_with(e->rest, "MATERIALIZED VIEW DATA ") ? GROUP_REFRESH
		                                                      : GROUP_POST;
		c->group_ids[g][c->group_n[g]] = (int) i + 1;
		c->group[g][c->group_n[g]++] = *e;
	}
	if (c->pre.count + c->post.count != c->full.count)
		return sync_error_set(err, SYNC_ERR_INVALID,
		                      "pg_restore listed %zu entries in all, but %zu "
		                      "pre-data and %zu post-data",
		                      c->full.count, c->pre.count, c->post.count);
	return true;
}

static bool
capture_classify(Capture *c, SyncError *err)
{
	int *pre_ids = NULL;
	int *post_ids = NULL;
	bool ok;

	if (!capture_list(c, NULL, &c->full, err) ||
	    !capture_list(c, "pre-data", &c->pre, err) ||
	    !capture_list(c, "post-data", &c->post, err))
		return false;
	pre_ids = sorted_ids(&c->pre);
	post_ids = sorted_ids(&c->post);
	if (pre_ids == NULL || post_ids == NULL)
		ok = sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	else
		ok = assign_groups(c, pre_ids, post_ids, err);
	free(pre_ids);
	free(post_ids);
	return ok;
}

/* Write a pg_restore -L list of the n entries. */
static bool
write_list(const char *path, const SchemaTocEntry *entries, size_t n,
           SyncError *err)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (f == NULL)
		return sync_error_set(err, SYNC_ERR_IO, "could not create \"%s\": %s",
		                      path, strerror(errno));
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%d; %u %u %s\n", entries[i].dump_id, entries[i].catalog_oid,
		        entries[i].oid, entries[i].rest);
	ok = !ferror(f);
	if (fclose(f) != 0 || !ok)
		return sync_error_set(err, SYNC_ERR_IO, "could not write \"%s\": %s",
		                      path, strerror(errno));
	return true;
}

/* pg_restore the entries of group g as SQL and split it. */
static bool
capture_script(Capture *c, int g, SyncError *err)
{
	SubprocOptions opts = {.capture_stdout = true};
	char list[PATH_MAX];
	const char *argv[] = {
	    c->pg_restore,      "--file=-",        "--use-list", list, "--no-owner",
	    "--no-tablespaces", LEAVE_OUT_OPTIONS, c->dump,      NULL};
	char *out = NULL;
	bool ok;

	if (c->group_n[g] == 0)
		return true;
	snprintf(list, sizeof(list), "%s/%s.list", c->dir, group_names[g]);
	if (!write_list(list, c->group[g], c->group_n[g], err))
		return false;
	if (!subproc_run(argv, &opts, &out, NULL, err))
		return sync_error_context(err, "could not extract the %s schema",
		                          group_names[g]);
	ok = schema_script_split(out, c->group[g], c->group_n[g], &c->script[g],
	                         err);
	free(out);
	(void) unlink(list);
	if (!ok)
		return sync_error_context(err, "could not split the %s schema",
		                          group_names[g]);
	return true;
}

/* All scripts were made from one archive: their preambles must agree. */
static const char *
capture_preamble(const Capture *c, SyncError *err)
{
	const char *preamble = NULL;

	for (int g = 0; g < NGROUPS; g++)
	{
		const char *p = c->script[g].preamble;

		if (p == NULL)
			continue;
		if (preamble != NULL && strcmp(preamble, p) != 0)
		{
			sync_error_set(err, SYNC_ERR_INVALID,
			               "pg_restore printed different session settings for "
			               "different parts of one dump");
			return NULL;
		}
		preamble = p;
	}
	return preamble ? preamble : "";
}

static int
compare_rel(const void *a, const void *b)
{
	const RelInfo *x = a, *y = b;

	if (x->catalog_oid != y->catalog_oid)
		return x->catalog_oid < y->catalog_oid ? -1 : 1;
	return (x->oid > y->oid) - (x->oid < y->oid);
}

static const RelInfo *
find_rel(const Capture *c, Oid catalog_oid, Oid oid)
{
	RelInfo key = {.catalog_oid = catalog_oid, .oid = oid};

	if (c->nrels == 0)
		return NULL;
	return bsearch(&key, c->rels, c->nrels, sizeof(RelInfo), compare_rel);
}

/*
 * Indexes and PRIMARY KEY / UNIQUE / EXCLUDE constraints of the source:
 * whether they are on a partitioned table, and that table's size.  The
 * catalog oid and oid match the TOC's, so no name parsing is needed.
 */
#define REL_INFO_SQL                                                           \
	"SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid,"       \
	"       c.oid, c.relkind = 'I', pg_catalog.pg_relation_size(i.indrelid)"   \
	"  FROM pg_catalog.pg_index i"                                             \
	"  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"                     \
	" WHERE c.oid >= 16384"                                                    \
	" UNION ALL "                                                              \
	"SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid,"  \
	"       con.oid, t.relkind = 'p', pg_catalog.pg_relation_size(t.oid)"      \
	"  FROM pg_catalog.pg_constraint con"                                      \
	"  JOIN pg_catalog.pg_class t ON t.oid = con.conrelid"                     \
	" WHERE con.contype IN ('p', 'u', 'x') AND con.oid >= 16384"

static bool
read_rel_info(Capture *c, PGconn *src, SyncError *err)
{
	PGresult *res = pgconn_query(src, REL_INFO_SQL, 0, NULL, err);
	int n;

	if (res == NULL)
		return false;
	n = PQntuples(res);
	c->rels = calloc((size_t) n + 1, sizeof(RelInfo));
	if (c->rels == NULL)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	for (int r = 0; r < n; r++)
	{
		RelInfo *ri = &c->rels[r];

		ri->catalog_oid = (Oid) strtoul(PQgetvalue(res, r, 0), NULL, 10);
		ri->oid = (Oid) strtoul(PQgetvalue(res, r, 1), NULL, 10);
		ri->partitioned = PQgetvalue(res, r, 2)[0] == 't';
		ri->bytes = PQgetisnull(res, r, 3)
		                ? 0
		                : strtoll(PQgetvalue(res, r, 3), NULL, 10);
	}
	c->nrels = (size_t) n;
	PQclear(res);
	qsort(c->rels, c->nrels, sizeof(RelInfo), compare_rel);
	return true;
}

/*
 * The objects only a superuser can create (SCHEMA_SUPERUSER_ONLY_SQL), read
 * under the dump's snapshot: their TOC entries become skipped steps, and
 * each is named with the reason, so that nothing is left out silently.
 */
static bool
read_superuser_only(Capture *c, PGconn *src, SyncError *err)
{
	PGresult *res = pgconn_query(src, SCHEMA_SUPERUSER_ONLY_SQL, 0, NULL, err);
	int n;

	if (res == NULL)
		return false;
	n = PQntuples(res);
	c->superuser_only = calloc((size_t) n + 1, sizeof(RelInfo));
	if (c->superuser_only == NULL)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	for (int r = 0; r < n; r++)
	{
		c->superuser_only[r].catalog_oid =
		    (Oid) strtoul(PQgetvalue(res, r, 0), NULL, 10);
		c->superuser_only[r].oid = (Oid) strtoul(PQgetvalue(res, r, 1), NULL, 10);
		log_warn("not migrated: %s %s: only a superuser can create %s on the "
		         "target (%s); create it there as a superuser after the "
		         "migration if you need it",
		         PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
		         PQgetvalue(res, r, 2), PQgetvalue(res, r, 4));
	}
	c->nsuperuser_only = (size_t) n;
	PQclear(res);
	qsort(c->superuser_only, c->nsuperuser_only, sizeof(RelInfo), compare_rel);
	return true;
}

static bool
is_superuser_only(const Capture *c, Oid catalog_oid, Oid oid)
{
	RelInfo key = {.catalog_oid = catalog_oid, .oid = oid};

	return c->nsuperuser_only > 0 &&
	       bsearch(&key, c->superuser_only, c->nsuperuser_only,
	               sizeof(RelInfo), compare_rel) != NULL;
}

static bool
capture_rel_info(Capture *c, const char *source_conninfo, const char *snapshot,
                 SyncError *err)
{
	PgconnOptions opts = {.kind = PGCONN_SQL,
	                      .application_name = "pgstream schema",
	                      .no_timeouts = true};
	PGconn *src;
	char *lit = NULL;
	char sql[512];
	bool ok;

	src = pgconn_connect(source_conninfo, &opts, "source", err);
	if (src == NULL)
		return false;
	ok = pgconn_exec(src, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	                 err);
	if (ok && snapshot != NULL && *snapshot != '\0')
	{
		lit = pgconn_quote_literal(src, snapshot);
		if (lit == NULL)
			ok = sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		else if ((size_t) snprintf(sql, sizeof(sql),
		                           "SET TRANSACTION SNAPSHOT %s",
		                           lit) >= sizeof(sql))
			ok = sync_error_set(err, SYNC_ERR_USAGE, "snapshot name too long");
		else
			ok = pgconn_exec(src, sql, err);
	}
	ok = ok && read_rel_info(c, src, err) && read_superuser_only(c, src, err) &&
	     pgconn_exec(src, "COMMIT", err);
	free(lit);
	pgconn_close(src);
	if (!ok)
		return sync_error_context(err, "could not read index sizes and "
		                          "superuser-only objects from the source");
	return true;
}

/* "schema.tag", or "tag" for entries without a schema. */
static char *
step_name(const SchemaChunk *chunk)
{
	Buf b = {0};

	if (strcmp(chunk->schema, "-") != 0)
	{
		buf_adds(&b, chunk->schema);
		buf_adds(&b, ".");
	}
	buf_adds(&b, chunk->tag);
	return buf_take(&b);
}

static void
fill_step(const Capture *c, int g, size_t k, Step *s)
{
	const SchemaChunk *chunk = &c->script[g].chunks[k];
	const SchemaTocEntry *e = &c->group[g][k];

	s->id = c->group_ids[g][k];
	s->dump_id = e->dump_id;
	s->kind = chunk->desc;
	s->sql = chunk->sql;
	s->wave = 1;
	if (is_superuser_only(c, e->catalog_oid, e->oid))
		s->phase = SCHEMA_PHASE_SKIPPED;
	else if (g == GROUP_PRE)
		s->phase = SCHEMA_PHASE_PRE;
	else if (g == GROUP_SKIP)
		s->phase = SCHEMA_PHASE_SKIPPED;
	else if (g == GROUP_REFRESH)
		s->phase = SCHEMA_PHASE_FINAL;
	else
		s->phase = schema_post_data_phase(chunk->desc);
	if (s->phase == SCHEMA_PHASE_INDEX)
	{
		const RelInfo *ri = find_rel(c, e->catalog_oid, e->oid);

		if (strcmp(chunk->desc, "INDEX ATTACH") == 0 || (ri && ri->partitioned))
			s->wave = 2;
		s->rel_bytes = ri ? ri->bytes : 0;
	}
}

/* Can an entry of type desc be in group g?  (Groups are chosen from the -l
 * line; the type comes from the checked header.) */
static bool
group_holds(int g, const char *desc)
{
	bool refresh = strcmp(desc, "MATERIALIZED VIEW DATA") == 0;
	bool skip =
	    strcmp(desc, "EVENT TRIGGER") == 0 || strcmp(desc, "COMMENT") == 0;

	if (g == GROUP_REFRESH)
		return refresh;
	if (g == GROUP_SKIP)
		return skip;
	return !refresh && strcmp(desc, "EVENT TRIGGER") != 0;
}

/* The chunk of step i (steps are numbered through the groups in order). */
static const SchemaChunk *
step_chunk(const Capture *c, size_t i)
{
	for (int g = 0; g < NGROUPS; g++)
	{
		if (i < c->group_n[g])
			return &c->script[g].chunks[i];
		i -= c->group_n[g];
	}
	return NULL;
}

/*
 * A COMMENT entry has no oid in the TOC; its tag is the commented object's
 * type and name ("FUNCTION f(integer)", "COLUMN t.c").  A comment on an
 * object left out (is_superuser_only) is left out with it, and so are the
 * REFRESH of a materialized view, the SHELL TYPE of a base type, the
 * ATTACH of a partition or index, the OWNED BY of a sequence and the ROW
 * SECURITY of a table left out
 * (their TOC entries have no catalog oid either, and the object's tag).
 */
static void
skip_comments_on_skipped(Capture *c)
{
	for (size_t i = 0; i < c->nsteps; i++)
	{
		const SchemaChunk *cm = step_chunk(c, i);

		/* entries without a catalog oid, named after their object's tag */
		const char *owner_desc =
		    strcmp(cm->desc, "MATERIALIZED VIEW DATA") == 0 ? "MATERIALIZED VIEW"
		    : strcmp(cm->desc, "SHELL TYPE") == 0           ? "TYPE"
		    : strcmp(cm->desc, "TABLE ATTACH") == 0         ? "TABLE"
		    : strcmp(cm->desc, "INDEX ATTACH") == 0         ? "INDEX"
		    : strcmp(cm->desc, "SEQUENCE OWNED BY") == 0    ? "SEQUENCE"
		    : strcmp(cm->desc, "ROW SECURITY") == 0         ? "TABLE"
		                                                    : NULL;

		if (c->steps[i].phase == SCHEMA_PHASE_SKIPPED ||
		    (strcmp(cm->desc, "COMMENT") != 0 && owner_desc == NULL))
			continue;
		for (size_t j = 0; j < c->nsteps; j++)
		{
			const SchemaChunk *o = step_chunk(c, j);
			size_t dl = strlen(o->desc), tl = strlen(o->tag);
			bool named;

			if (c->steps[j].phase != SCHEMA_PHASE_SKIPPED ||
			    strcmp(o->desc, "COMMENT") == 0 ||
			    strcmp(cm->schema, o->schema) != 0)
				continue;
			/* "<DESC> <tag>", or "COLUMN <tag>.<column>" of a relation;
			 * a REFRESH or a shell type has its object's tag */
			named = owner_desc ? strcmp(o->desc, owner_desc) == 0 &&
			                         strcmp(cm->tag, o->tag) == 0
			                : (strncmp(cm->tag, o->desc, dl) == 0 && cm->tag[dl] == ' ' &&
			         strcmp(cm->tag + dl + 1, o->tag) == 0) ||
			        (strncmp(cm->tag, "COLUMN ", 7) == 0 &&
			         strncmp(cm->tag + 7, o->tag, tl) == 0 &&
			         cm->tag[7 + tl] == '.');
			if (named)
			{
				c->steps[i].phase = SCHEMA_PHASE_SKIPPED;
				break;
			}
		}
	}
}

/*
 * pg_restore sets default_table_access_method before a table only when it
 * changes, and the split repeats it at the top of every later step (see
 * "Session state").  After a table of an access method left out (which is
 * left out with it), the steps that follow would set an access method the
 * target does not have, and fail.  None of them uses it (a relation that
 * does depends on it and is left out too): drop that SET from them.
 */
static void
drop_skipped_access_methods(Capture *c)
{
	for (size_t j = 0; j < c->nsteps; j++)
	{
		const SchemaChunk *am = step_chunk(c, j);
		char set[256];
		size_t setlen;

		if (c->steps[j].phase != SCHEMA_PHASE_SKIPPED ||
		    strcmp(am->desc, "ACCESS METHOD") != 0)
			continue;
		setlen = (size_t) snprintf(set, sizeof(set),
		                           "SET LOCAL default_table_access_method = %s;\n",
		                           am->tag);
		if (setlen >= sizeof(set))
			continue;
		for (size_t i = 0; i < c->nsteps; i++)
		{
			char *sql = (char *) step_chunk(c, i)->sql;
			char *at;

			if (c->steps[i].phase == SCHEMA_PHASE_SKIPPED)
				continue;
			while ((at = strstr(sql, set)) != NULL &&
			       (at == sql || at[-1] == '\n'))
				memmove(at, at + setlen, strlen(at + setlen) + 1);
		}
	}
}

static bool
capture_build_steps(Capture *c, SyncError *err)
{
	size_t total = 0;

	for (int g = 0; g < NGROUPS; g++)
		total += c->group_n[g];

	c->steps = calloc(total + 1, sizeof(Step));
	if (c->steps == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	for (int g = 0; g < NGROUPS; g++)
	{
		for (size_t k = 0; k < c->group_n[g]; k++)
		{
			Step *s = &c->steps[c->nsteps++];
			const char *desc = c->script[g].chunks[k].desc;

			fill_step(c, g, k, s);
			s->name = step_name(&c->script[g].chunks[k]);
			if (s->name == NULL)
				return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
			if (!group_holds(g, desc))
				return sync_error_set(err, SYNC_ERR_INTERNAL,
				                      "TOC entry %d of type \"%s\" was put "
				                      "in the %s group",
				                      s->dump_id, desc, group_names[g]);
		}
	}
	skip_comments_on_skipped(c);
	drop_skipped_access_methods(c);
	return true;
}

/* Append s to b escaped for COPY's text format. */
static void
copy_escape(Buf *b, const char *s)
{
	for (const char *p = s; *p; p++)
	{
		const char *esc = *p == '\\'   ? "\\\\"
		                  : *p == '\n' ? "\\n"
		                  : *p == '\r' ? "\\r"
		                  : *p == '\t' ? "\\t"
		                               : NULL;

		if (esc != NULL)
			buf_adds(b, esc);
		else
			buf_add(b, p, 1);
	}
}

static void
copy_row(Buf *b, const Step *s)
{
	char num[96];

	snprintf(num, sizeof(num), "%d\t%d\t%d\t%d\t", s->id, s->dump_id,
	         (int) s->phase, s->wave);
	buf_adds(b, num);
	copy_escape(b, s->kind);
	buf_adds(b, "\t");
	copy_escape(b, s->name);
	buf_adds(b, "\t");
	copy_escape(b, s->sql);
	snprintf(num, sizeof(num), "\t%lld\n", (long long) s->rel_bytes);
	buf_adds(b, num);
}

static bool
copy_flush(PGconn *conn, Buf *b, SyncError *err)
{
	if (b->nomem)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	if (b->len > 0 && PQputCopyData(conn, b->data, (int) b->len) != 1)
		return sync_error_set(err, SYNC_ERR_SERVER,
		                      "could not send COPY data: %s",
		                      PQerrorMessage(conn));
	b->len = 0;
	return true;
}

/* COPY the preamble (row 0) and the steps into pgstream.schema_steps. */
static bool
copy_steps(PGconn *conn, const Step *steps, size_t n, const char *preamble,
           SyncError *err)
{
	Step row0 = {.kind = "PREAMBLE",
	             .name = (char *) "session settings",
	             .sql = preamble};
	PGresult *res;
	Buf b = {0};
	bool ok;

	res = PQexec(conn, state_sql("COPY {state}.schema_steps"
	                   " (id, dump_id, phase, wave, kind, name, sql, rel_bytes)"
	                   " FROM STDIN"));
	if (PQresultStatus(res) != PGRES_COPY_IN)
		return pgconn_error_from_result(conn, res, err);
	PQclear(res);
	copy_row(&b, &row0);
	ok = true;
	for (size_t i = 0; ok && i < n; i++)
	{
		copy_row(&b, &steps[i]);
		if (b.len >= (1 << 20))
			ok = copy_flush(conn, &b, err);
	}
	ok = ok && copy_flush(conn, &b, err);
	buf_term(&b);
	if (PQputCopyEnd(conn, ok ? NULL : "pgstream: capture failed") != 1 && ok)
		ok = sync_error_set(err, SYNC_ERR_SERVER, "could not end COPY: %s",
		                    PQerrorMessage(conn));
	while ((res = PQgetResult(conn)) != NULL)
	{
		if (ok && PQresultStatus(res) != PGRES_COMMAND_OK)
			ok = pgconn_error_from_result(conn, res, err);
		else
			PQclear(res);
	}
	return ok;
}

static bool
capture_store(Capture *c, PGconn *target, const char *preamble, SyncError *err)
{
	char applied[32];
	bool ok;

	ok = pgconn_exec(target, "BEGIN", err) &&
	     pgconn_exec(
	         target,
	         state_sql("LOCK TABLE {state}.schema_steps IN SHARE ROW EXCLUSIVE MODE"),
	         err) &&
	     pgconn_query_value(
	         target, state_sql("SELECT count(*) FROM {state}.schema_steps WHERE done"), 0,
	         NULL, applied, sizeof(applied), false, err);
	if (ok && strcmp(applied, "0") != 0)
		ok = sync_error_set(
		    err, SYNC_ERR_PRECONDITION,
		    "%s schema steps captured earlier were already applied; "
		    "they cannot be replaced by a new capture",
		    applied);
	ok = ok && pgconn_exec(target, state_sql("DELETE FROM {state}.schema_steps"), err) &&
	     copy_steps(target, c->steps, c->nsteps, preamble, err) &&
	     pgconn_exec(target, "COMMIT", err);
	if (!ok)
	{
		PQclear(PQexec(target, "ROLLBACK"));
		return sync_error_context(
		    err, "could not store the schema steps on the target");
	}
	return true;
}

static void
capture_term(Capture *c)
{

	for (int g = 0; g < NGROUPS; g++)
	{
		free(c->group[g]);
		free(c->group_ids[g]);
		schema_script_term(&c->script[g]);
	}
	for (size_t i = 0; i < c->nsteps; i++)
		free(c->steps[i].name);
	free(c->steps);
	free(c->rels);
	free(c->superuser_only);
	schema_toc_term(&c->full);
	schema_toc_term(&c->pre);
	schema_toc_term(&c->post);
	free(c->conninfo);
	free(c->password_env);
	if (c->dir[0] != '\0')
	{
		char path[PATH_MAX];

		(void) unlink(c->dump);
		for (int g = 0; g < NGROUPS; g++)
		{
			snprintf(path, sizeof(path), "%s/%s.list", c->dir, group_names[g]);
			(void) unlink(path);
		}
		(void) rmdir(c->dir);
	}
}

bool
schema_capture(const char *source_conninfo, const char *snapshot_name,
               PGconn *target, SyncError *err)
{
	Capture *c = calloc(1, sizeof(Capture));
	const char *preamble = NULL;
	bool ok;

	if (c == NULL)
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	ok = capture_prepare(c, source_conninfo, err) &&
	     capture_dump(c, snapshot_name, err) && capture_classify(c, err) &&
	     capture_script(c, GROUP_PRE, err) &&
	     capture_script(c, GROUP_POST, err) &&
	     capture_script(c, GROUP_SKIP, err) &&
	     capture_script(c, GROUP_REFRESH, err) &&
	     (preamble = capture_preamble(c, err)) != NULL &&
	     capture_rel_info(c, source_conninfo, snapshot_name, err) &&
	     capture_build_steps(c, err) && capture_store(c, target, preamble, err);
	capture_term(c);
	free(c);
	return ok;
}

bool
schema_create_state_table(PGconn *target, SyncError *err)
{
	return pgconn_exec(target,
	                   state_sql("CREATE TABLE IF NOT EXISTS {state}.schema_steps ("
	                   " id integer PRIMARY KEY,"
	                   " dump_id integer NOT NULL,"
	                   " phase smallint NOT NULL,"
	                   " wave smallint NOT NULL,"
	                   " kind text NOT NULL,"
	                   " name text NOT NULL,"
	                   " sql text NOT NULL,"
	                   " rel_bytes bigint NOT NULL DEFAULT 0,"
	                   " done boolean NOT NULL DEFAULT false)"),
	                   err) ||
	       sync_error_context(err, "could not create %s.schema_steps",
	                          state_schema_quoted());
}

bool
schema_count_steps(PGconn *target, int phase, int *total, int *done,
                   SyncError *err)
{
	char p[16];
	const char *params[] = {p};
	PGresult *res;

	snprintf(p, sizeof(p), "%d", phase);
	res = pgconn_query(target,
	                   state_sql("SELECT count(*), count(*) FILTER (WHERE done)"
	                   "  FROM {state}.schema_steps WHERE phase = $1"),
	                   1, params, err);
	if (res == NULL)
		return sync_error_context(err, "could not count %s schema steps",
		                          schema_phase_name(phase));
	*total = (int) strtol(PQgetvalue(res, 0, 0), NULL, 10);
	*done = (int) strtol(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return true;
}

/* ---------------------------------------------------------------------
 * Applying steps
 * --------------------------------------------------------------------- */

typedef struct StepRow
{
	int id;
	char *label; /* owned: "KIND name" */
	char *sql;   /* owned */
} StepRow;

typedef struct StepList
{
	StepRow *rows; /* owned */
	size_t count;
} StepList;

static void
steps_term(StepList *l)
{
	for (size_t i = 0; i < l->count; i++)
	{
		free(l->rows[i].label);
		free(l->rows[i].sql);
	}
	free(l->rows);
	memset(l, 0, sizeof(*l));
}

/* Run a query returning (id, label, sql) rows into l. */
static bool
load_steps(PGconn *conn, const char *query, StepList *l, SyncError *err)
{
	PGresult *res = pgconn_query(conn, state_sql(query), 0, NULL, err);	/* STEP_COLUMNS */
	int n;

	memset(l, 0, sizeof(*l));
	if (res == NULL)
		return sync_error_context(err, "could not read schema steps");
	n = PQntuples(res);
	l->rows = calloc((size_t) n + 1, sizeof(StepRow));
	for (int r = 0; l->rows != NULL && r < n; r++)
	{
		StepRow *s = &l->rows[r];

		s->id = (int) strtol(PQgetvalue(res, r, 0), NULL, 10);
		s->label = strdup(PQgetvalue(res, r, 1));
		s->sql = strdup(PQgetvalue(res, r, 2));
		l->count = (size_t) r + 1;
		if (s->label == NULL || s->sql == NULL)
			break;
	}
	PQclear(res);
	if (l->rows == NULL || l->count != (size_t) n ||
	    (n > 0 && l->rows[n - 1].sql == NULL))
	{
		steps_term(l);
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	return true;
}

#define STEP_COLUMNS                                                           \
	"SELECT id, kind || ' ' || name, sql FROM {state}.schema_steps"

/* "BEGIN;" followed by the captured session settings (row 0). */
static char *
load_begin_sql(PGconn *conn, SyncError *err)
{
	PGresult *res = pgconn_query(
	    conn,
	    state_sql("SELECT sql FROM {state}.schema_steps WHERE id = 0 AND phase = 0"), 0,
	    NULL, err);
	Buf b = {0};
	char *s;

	if (res == NULL)
		return sync_error_context(err, "could not read schema steps"), NULL;
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		sync_error_set(err, SYNC_ERR_PRECONDITION,
		               "no schema was captured on the target "
		               "(%s.schema_steps has no session row)",
		               state_schema_quoted());
		return NULL;
	}
	s = schema_preamble_for_server(PQgetvalue(res, 0, 0),
	                               PQserverVersion(conn));
	PQclear(res);
	if (s != NULL)
	{
		buf_adds(&b, "BEGIN;\n");
		buf_adds(&b, s);
		free(s);
		s = buf_take(&b);
	}
	if (s == NULL)
		sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	return s;
}

static void
rollback_quietly(PGconn *conn)
{
	if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		PQclear(PQexec(conn, "ROLLBACK"));
}

/* In an open transaction: lock the step's row; *done says if it is done. */
static bool
lock_step(PGconn *conn, const char *id, bool *done, SyncError *err)
{
	const char *params[] = {id};
	PGresult *res = pgconn_query(
	    conn, state_sql("SELECT done FROM {state}.schema_steps WHERE id = $1 FOR UPDATE"),
	    1, params, err);

	if (res == NULL)
		return false;
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_PRECONDITION, "the step is gone");
	}
	*done = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return true;
}

/*
 * Apply one step in its own transaction together with its done mark.  A
 * step found done already (by another run) is left alone.
 */
static bool
run_step(PGconn *conn, const char *begin_sql, const StepRow *step,
         SyncError *err)
{
	char id[16];
	const char *params[] = {id};
	bool done = false;
	bool ok;
	PGresult *res;

	snprintf(id, sizeof(id), "%d", step->id);
	ok = pgconn_exec(conn, begin_sql, err) && lock_step(conn, id, &done, err);
	if (ok && !done)
	{
		ok = (step->sql[0] == '\0' || pgconn_exec(conn, step->sql, err));
		if (ok)
		{
			res = pgconn_query(
			    conn,
			    state_sql("UPDATE {state}.schema_steps SET done = true WHERE id = $1"), 1,
			    params, err);
			ok = res != NULL;
			PQclear(res);
		}
	}
	ok = ok && pgconn_exec(conn, "COMMIT", err);
	if (!ok)
	{
		char		first[96];
		size_t		n = 0;
		const char *p = step->sql;

		rollback_quietly(conn);
		/* the statement's first line that is not a comment, for the reader */
		while (*p == '\n' || (p[0] == '-' && p[1] == '-'))
			p = *p == '\n' ? p + 1 : (strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p));
		while (p[n] != '\0' && p[n] != '\n' && n < sizeof(first) - 4)
			n++;
		snprintf(first, sizeof(first), "%.*s%s", (int) n, p,
				 p[n] != '\0' && p[n] != '\n' ? "..." : "");
		if (err->sqlstate[0] != '\0')
			return sync_error_context(err, "step %d (%s), statement \"%s\", SQLSTATE %s",
									  step->id, step->label, first, err->sqlstate);
		return sync_error_context(err, "step %d (%s), statement \"%s\"", step->id,
								  step->label, first);
	}
	return true;
}

/*
 * Lock the not-done pre-data steps rows[from..to) in an open transaction;
 * false if one of them is gone or done (another run got there first).
 */
static bool
lock_pre_batch(PGconn *conn, const StepList *l, size_t from, size_t to,
               SyncError *err)
{
	char lo[16], hi[16], count[16];
	const char *params[] = {lo, hi};

	snprintf(lo, sizeof(lo), "%d", l->rows[from].id);
	snprintf(hi, sizeof(hi), "%d", l->rows[to - 1].id);
	if (!pgconn_query_value(
	        conn,
	        state_sql("SELECT count(*) FROM (SELECT FROM"
	        " {state}.schema_steps WHERE phase = 1 AND NOT done"
	        " AND id BETWEEN $1 AND $2 FOR UPDATE) s"),
	        2, params, count, sizeof(count), false, err))
		return false;
	if (strtol(count, NULL, 10) != (long) (to - from))
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
		                      "pre-data steps %s to %s were applied by "
		                      "someone else meanwhile",
		                      lo, hi);
	return true;
}

/* Apply rows[from..to) in one transaction that also marks them done. */
static bool
apply_pre_batch(PGconn *conn, const char *begin_sql, const StepList *l,
                size_t from, size_t to, SyncError *err)
{
	char lo[16], hi[16];
	const char *params[] = {lo, hi};
	PGresult *res;
	bool ok;

	snprintf(lo, sizeof(lo), "%d", l->rows[from].id);
	snprintf(hi, sizeof(hi), "%d", l->rows[to - 1].id);
	ok = pgconn_exec(conn, begin_sql, err) &&
	     lock_pre_batch(conn, l, from, to, err);
	for (size_t i = from; ok && i < to; i++)
	{
		if (l->rows[i].sql[0] != '\0' &&
		    !pgconn_exec(conn, l->rows[i].sql, err))
			ok = sync_error_context(err, "step %d (%s)", l->rows[i].id,
			                        l->rows[i].label);
	}
	if (ok)
	{
		res = pgconn_query(conn,
		                   state_sql("UPDATE {state}.schema_steps SET done = true"
		                   " WHERE phase = 1 AND id BETWEEN $1 AND $2"),
		                   2, params, err);
		ok = res != NULL;
		PQclear(res);
	}
	ok = ok && pgconn_exec(conn, "COMMIT", err);
	if (!ok)
		rollback_quietly(conn);
	return ok;
}

bool
schema_apply_pre_data(PGconn *target, SyncError *err)
{
	char *begin_sql = load_begin_sql(target, err);
	StepList l = {0};
	bool ok;

	if (begin_sql == NULL)
		return false;
	ok = load_steps(target,
	                STEP_COLUMNS " WHERE phase = 1 AND NOT done ORDER BY id",
	                &l, err);
	/*
	 * One transaction, as pg_restore --single-transaction; but every object
	 * created holds a lock until commit, and the server's lock table
	 * (max_locks_per_transaction) may be too small for a large schema.
	 * Then, and only then, commit in batches: each batch commits with its
	 * done marks, so a crash in between loses nothing and repeats nothing.
	 */
	if (ok && l.count > 0 &&
	    !apply_pre_batch(target, begin_sql, &l, 0, l.count, err))
	{
		ok = strcmp(err->sqlstate, "53200") == 0; /* out of shared memory */
		for (size_t from = 0; ok && from < l.count; from += SCHEMA_PRE_BATCH)
			ok = apply_pre_batch(target, begin_sql, &l, from,
			                     from + SCHEMA_PRE_BATCH < l.count
			                         ? from + SCHEMA_PRE_BATCH
			                         : l.count,
			                     err);
	}
	steps_term(&l);
	free(begin_sql);
	if (!ok)
		return sync_error_context(err,
		                          "could not create the schema on the target");
	return true;
}

bool
schema_apply_final(PGconn *target, SyncError *err)
{
	char *begin_sql = load_begin_sql(target, err);
	StepList l = {0};
	bool ok;

	if (begin_sql == NULL)
		return false;
	ok = load_steps(target,
	                STEP_COLUMNS " WHERE phase = 3 AND NOT done ORDER BY id",
	                &l, err);
	for (size_t i = 0; ok && i < l.count; i++)
	{
		ok = run_step(target, begin_sql, &l.rows[i], err);
		/* schema.after_final_step: a final step (a foreign key, a trigger,
		 * ...) and its done mark are committed, the next not begun */
		if (ok)
			FAILPOINT("schema.after_final_step");
	}
	steps_term(&l);
	free(begin_sql);
	if (!ok)
		return sync_error_context(err,
		                          "could not apply the final schema steps");
	return true;
}

/* ---------------------------------------------------------------------
 * The index phase: a pool of connections for wave 1
 * --------------------------------------------------------------------- */

typedef struct IndexPool
{
	pthread_mutex_t lock;
	const char *conninfo;
	int index_mem_mb; /* raise maintenance_work_mem to this; 0: leave it */
	const char *begin_sql;
	const StepList *steps;
	size_t next; /* next step to hand out */
	int done;    /* steps done, for progress */
	int total;
	bool failed;
	SyncError error;    /* the first failure */
	PGcancel **cancels; /* per worker, NULL when not connected */
	int nworkers;
	int finished; /* workers that have returned */
	SchemaProgressFn progress;
	void *progress_arg;
} IndexPool;

typedef struct IndexWorker
{
	IndexPool *pool;
	int slot;
	pthread_t thread;
} IndexWorker;

/* Record the first failure and cancel what the other workers are running.
 * Called with the lock held. */
static void
pool_fail_locked(IndexPool *pool, int slot, const SyncError *e)
{
	char buf[256];

	if (pool->failed)
		return;
	pool->failed = true;
	pool->error = *e;
	for (int i = 0; i < pool->nworkers; i++)
		if (i != slot && pool->cancels[i] != NULL)
			(void) PQcancel(pool->cancels[i], buf, sizeof(buf));
}

static void
pool_step_done(IndexPool *pool, const StepRow *step)
{
	/* schema.after_index_step: a step and its done mark are committed */
	FAILPOINT("schema.after_index_step");
	pool->done++;
	if (pool->progress != NULL)
		pool->progress(pool->done, pool->total, step->label,
		               pool->progress_arg);
}

bool
schema_raise_index_memory(PGconn *conn, int mem_mb, SyncError *err)
{
	char kb[32];
	const char *params[1] = {kb};
	PGresult *res;

	if (mem_mb <= 0)
		return true;
	snprintf(kb, sizeof(kb), "%lld", (long long) mem_mb * 1024);
	res = pgconn_query(conn,
	                   "SELECT pg_catalog.set_config('maintenance_work_mem', $1 || 'kB', false)"
	                   " FROM pg_catalog.pg_settings"
	                   " WHERE name = 'maintenance_work_mem' AND setting::bigint < $1::bigint",
	                   1, params, err);
	if (res == NULL)
		return sync_error_context(err, "could not set maintenance_work_mem");
	PQclear(res);
	return true;
}

/* Connect a worker's session; registers its cancel handle. */
static PGconn *
worker_connect(IndexPool *pool, int slot, SyncError *err)
{
	PgconnOptions opts = {.kind = PGCONN_SQL,
	                      .application_name = "pgstream index",
	                      .no_timeouts = true};
	PGconn *conn = pgconn_connect(pool->conninfo, &opts, "target", err);
	PGcancel *cancel;

	if (conn == NULL)
		return NULL;
	if (!schema_raise_index_memory(conn, pool->index_mem_mb, err))
	{
		pgconn_close(conn);
		return NULL;
	}
	cancel = PQgetCancel(conn);
	if (cancel == NULL)
	{
		pgconn_close(conn);
		sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_lock(&pool->lock);
	pool->cancels[slot] = cancel;
	pthread_mutex_unlock(&pool->lock);
	return conn;
}

static void
worker_disconnect(IndexPool *pool, int slot, PGconn *conn)
{
	PGcancel *cancel;

	pthread_mutex_lock(&pool->lock);
	cancel = pool->cancels[slot];
	pool->cancels[slot] = NULL;
	pthread_mutex_unlock(&pool->lock);
	if (cancel != NULL)
		PQfreeCancel(cancel);
	pgconn_close(conn);
}

/* The next step to run, or NULL when there is none or the pool failed. */
static const StepRow *
pool_take(IndexPool *pool)
{
	const StepRow *step = NULL;

	pthread_mutex_lock(&pool->lock);
	/*
	 * A stop request hands out no more steps at once: the watcher polls
	 * only every 50 ms, and short builds could otherwise run the whole
	 * phase to its end after the operator asked it to stop.
	 */
	if (!pool->failed && cli_stop_requested)
	{
		SyncError	e;

		sync_error_set(&e, SYNC_ERR_INTERNAL, "stopped by a signal");
		pool_fail_locked(pool, -1, &e);
	}
	if (!pool->failed && pool->next < pool->steps->count)
		step = &pool->steps->rows[pool->next++];
	pthread_mutex_unlock(&pool->lock);
	return step;
}

static void *
index_worker_main(void *arg)
{
	IndexWorker *w = arg;
	IndexPool *pool = w->pool;
	SyncError e;
	PGconn *conn = worker_connect(pool, w->slot, &e);
	const StepRow *step;

	if (conn == NULL)
	{
		pthread_mutex_lock(&pool->lock);
		pool_fail_locked(pool, w->slot, &e);
		pool->finished++;
		pthread_mutex_unlock(&pool->lock);
		return NULL;
	}
	while ((step = pool_take(pool)) != NULL)
	{
		bool ok = run_step(conn, pool->begin_sql, step, &e);

		pthread_mutex_lock(&pool->lock);
		if (ok)
			pool_step_done(pool, step);
		else
			pool_fail_locked(pool, w->slot, &e);
		pthread_mutex_unlock(&pool->lock);
		if (!ok)
			break;
	}
	worker_disconnect(pool, w->slot, conn);
	pthread_mutex_lock(&pool->lock);
	pool->finished++;
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/*
 * While the workers run: on a stop request (INT, TERM, HUP) fail the pool,
 * which cancels every running index build (its step stays not done, so the
 * next run builds it again) and hands out no more.
 */
static void
watch_stop(IndexPool *pool, int started)
{
	struct timespec step = {0, 50 * 1000 * 1000};

	for (;;)
	{
		bool		over;

		pthread_mutex_lock(&pool->lock);
		over = pool->finished == started || pool->failed;
		if (!pool->failed && cli_stop_requested)
		{
			SyncError	e;

			sync_error_set(&e, SYNC_ERR_INTERNAL, "stopped by a signal");
			pool_fail_locked(pool, -1, &e);
			over = true;
		}
		pthread_mutex_unlock(&pool->lock);
		if (over)
			return;
		nanosleep(&step, NULL);
	}
}

/* Run the steps with up to jobs workers. */
static bool
run_pool(IndexPool *pool, int jobs, SyncError *err)
{
	IndexWorker *workers;
	int started = 0;

	pool->nworkers =
	    jobs < (int) pool->steps->count ? jobs : (int) pool->steps->count;
	if (pool->nworkers == 0)
		return true;
	workers = calloc((size_t) pool->nworkers, sizeof(IndexWorker));
	pool->cancels = calloc((size_t) pool->nworkers, sizeof(PGcancel *));
	if (workers == NULL || pool->cancels == NULL)
	{
		free(workers);
		return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
	}
	for (; started < pool->nworkers; started++)
	{
		workers[started] = (IndexWorker){.pool = pool, .slot = started};
		if (pthread_create(&workers[started].thread, NULL, index_worker_main,
		                   &workers[started]) != 0)
		{
			SyncError e;

			sync_error_set(&e, SYNC_ERR_INTERNAL, "could not start a thread");
			pthread_mutex_lock(&pool->lock);
			pool_fail_locked(pool, -1, &e);
			pthread_mutex_unlock(&pool->lock);
			break;
		}
	}
	watch_stop(pool, started);
	for (int i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	free(workers);
	if (pool->failed)
		*err = pool->error;
	return !pool->failed;
}

/* Wave 2: partitioned parents and INDEX ATTACH, in TOC order. */
static bool
run_serial(PGconn *conn, IndexPool *pool, const StepList *l, SyncError *err)
{
	for (size_t i = 0; i < l->count; i++)
	{
		if (cli_stop_requested)
			return sync_error_set(err, SYNC_ERR_INTERNAL, "stopped by a signal");
		if (!run_step(conn, pool->begin_sql, &l->rows[i], err))
			return false;
		pool_step_done(pool, &l->rows[i]);
	}
	return true;
}

bool
schema_apply_indexes(const char *target_conninfo, int jobs, int index_mem_mb,
                     SchemaProgressFn progress, void *progress_arg,
                     SyncError *err)
{
	PgconnOptions opts = {.kind = PGCONN_SQL,
	                      .application_name = "pgstream index",
	                      .no_timeouts = true};
	IndexPool pool = {.conninfo = target_conninfo,
	                  .index_mem_mb = index_mem_mb,
	                  .progress = progress,
	                  .progress_arg = progress_arg};
	StepList wave1 = {0}, wave2 = {0};
	char *begin_sql = NULL;
	PGconn *conn;
	bool ok;

	if (jobs < 1)
		return sync_error_set(err, SYNC_ERR_USAGE, "jobs must be at least 1");
	conn = pgconn_connect(target_conninfo, &opts, "target", err);
	if (conn == NULL)
		return false;
	pthread_mutex_init(&pool.lock, NULL);
	ok = schema_raise_index_memory(conn, index_mem_mb, err) &&
	     (begin_sql = load_begin_sql(conn, err)) != NULL &&
	     schema_count_steps(conn, SCHEMA_PHASE_INDEX, &pool.total, &pool.done,
	                        err) &&
	     load_steps(conn,
	                STEP_COLUMNS " WHERE phase = 2 AND wave = 1 AND NOT done"
	                             " ORDER BY rel_bytes DESC, id",
	                &wave1, err) &&
	     load_steps(conn,
	                STEP_COLUMNS " WHERE phase = 2 AND wave = 2 AND NOT done"
	                             " ORDER BY id",
	                &wave2, err);
	pool.begin_sql = begin_sql;
	pool.steps = &wave1;
	ok = ok && run_pool(&pool, jobs, err) &&
	     run_serial(conn, &pool, &wave2, err);
	pgconn_close(conn);
	pthread_mutex_destroy(&pool.lock);
	free(pool.cancels);
	free(begin_sql);
	steps_term(&wave1);
	steps_term(&wave2);
	if (!ok)
		return sync_error_context(err,
		                          "could not build indexes and constraints");
	return true;
}
