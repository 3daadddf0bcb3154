/*
 * apply/statesql.c -- see statesql.h.
 */
#include "apply/statesql.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One expanded text; the list only grows until state_schema_set(). */
typedef struct Expansion
{
	struct Expansion *next;
	char	   *sql;			/* the text as given */
	char	   *expanded;
} Expansion;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char name[64] = STATE_SCHEMA_DEFAULT;
static char quoted[2 * sizeof(name) + 3] = "\"" STATE_SCHEMA_DEFAULT "\"";
static char literal[2 * sizeof(name) + 4] = "'" STATE_SCHEMA_DEFAULT "'";
static Expansion *expansions;

/* Write s into out between open and close, doubling every quote (and every
 * backslash if backslash is set). */
static void
quote(char *out, const char *open, const char *s, char q, bool backslash, char close)
{
	size_t		o = strlen(open);

	memcpy(out, open, o);
	for (; *s; s++)
	{
		if (*s == q || (backslash && *s == '\\'))
			out[o++] = *s;
		out[o++] = *s;
	}
	out[o++] = close;
	out[o] = '\0';
}

void
state_schema_set(const char *newname)
{
	bool		backslash = strchr(newname, '\\') != NULL;

	pthread_mutex_lock(&lock);
	/* names_state_schema_check allows at most 63 bytes */
	snprintf(name, sizeof(name), "%s", newname);
	quote(quoted, "\"", name, '"', false, '"');
	quote(literal, backslash ? "E'" : "'", name, '\'', backslash, '\'');
	while (expansions != NULL)
	{
		Expansion  *next = expansions->next;

		free(expansions->sql);
		free(expansions->expanded);
		free(expansions);
		expansions = next;
	}
	pthread_mutex_unlock(&lock);
}

const char *
state_schema_name(void)
{
	return name;
}

const char *
state_schema_quoted(void)
{
	return quoted;
}

static const struct
{
	const char *token;
	const char *value;
}			placeholders[] = {
	{"{state}", quoted},
	{"{state_literal}", literal},
};

/* The placeholder that starts at p, or -1. */
static int
placeholder_at(const char *p)
{
	for (int i = 0; i < (int) (sizeof(placeholders) / sizeof(placeholders[0])); i++)
		if (strncmp(p, placeholders[i].token, strlen(placeholders[i].token)) == 0)
			return i;
	return -1;
}

/* sql expanded, malloc'd; NULL if out of memory. */
static char *
expand(const char *sql)
{
	size_t		size = 1;
	char	   *out;
	size_t		o = 0;

	for (const char *p = sql; *p;)
	{
		int			i = placeholder_at(p);

		size += i < 0 ? 1 : strlen(placeholders[i].value);
		p += i < 0 ? 1 : strlen(placeholders[i].token);
	}
	out = malloc(size);
	if (out == NULL)
		return NULL;
	for (const char *p = sql; *p;)
	{
		int			i = placeholder_at(p);

		if (i < 0)
			out[o++] = *p++;
		else
		{
			memcpy(out + o, placeholders[i].value, strlen(placeholders[i].value));
			o += strlen(placeholders[i].value);
			p += strlen(placeholders[i].token);
		}
	}
	out[o] = '\0';
	return out;
}

const char *
state_sql(const char *sql)
{
	const char *result = sql;
	Expansion  *e;

	if (strchr(sql, '{') == NULL)
		return sql;
	pthread_mutex_lock(&lock);
	for (e = expansions; e != NULL; e = e->next)
		if (strcmp(e->sql, sql) == 0)
			break;
	if (e == NULL && (e = calloc(1, sizeof(*e))) != NULL)
	{
		e->sql = strdup(sql);
		e->expanded = expand(sql);
		if (e->sql == NULL || e->expanded == NULL)
		{
			free(e->sql);
			free(e->expanded);
			free(e);
			e = NULL;
		}
		else
		{
			e->next = expansions;
			expansions = e;
		}
	}
	if (e != NULL)
		result = e->expanded;
	pthread_mutex_unlock(&lock);
	return result;
}
