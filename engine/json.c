/*
 * engine/json.c -- streaming JSON writer.
 */
#include "engine/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
json_init(JsonWriter *w)
{
	memset(w, 0, sizeof(*w));
}

void
json_reset(JsonWriter *w)
{
	w->len = 0;
	if (w->data)
		w->data[0] = '\0';
	w->oom = false;
	w->depth = 0;
	w->need_comma[0] = false;
	w->after_key = false;
}

void
json_term(JsonWriter *w)
{
	free(w->data);
	memset(w, 0, sizeof(*w));
}

static void
put(JsonWriter *w, const char *s, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n + 1 > w->cap)
	{
		size_t		cap = w->cap ? w->cap : 256;
		char	   *p;

		while (cap < w->len + n + 1)
			cap *= 2;
		p = realloc(w->data, cap);
		if (p == NULL)
		{
			w->oom = true;
			return;
		}
		w->data = p;
		w->cap = cap;
	}
	memcpy(w->data + w->len, s, n);
	w->len += n;
	w->data[w->len] = '\0';
}

/* Emit the separator a new value needs at the current position. */
static void
begin_value(JsonWriter *w)
{
	if (w->after_key)
	{
		w->after_key = false;
		return;
	}
	if (w->need_comma[w->depth])
		put(w, ",", 1);
	w->need_comma[w->depth] = true;
}

static void
open_container(JsonWriter *w, char c)
{
	begin_value(w);
	put(w, &c, 1);
	if (w->depth < JSON_MAX_DEPTH - 1)
		w->depth++;
	w->need_comma[w->depth] = false;
}

static void
close_container(JsonWriter *w, char c)
{
	put(w, &c, 1);
	if (w->depth > 0)
		w->depth--;
}

void
json_begin_object(JsonWriter *w)
{
	open_container(w, '{');
}

void
json_end_object(JsonWriter *w)
{
	close_container(w, '}');
}

void
json_begin_array(JsonWriter *w)
{
	open_container(w, '[');
}

void
json_end_array(JsonWriter *w)
{
	close_container(w, ']');
}

static void
put_escaped(JsonWriter *w, const char *s, size_t len)
{
	static const char hexd[] = "0123456789abcdef";
	size_t		start = 0;

	put(w, "\"", 1);
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];
		char		esc[7];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(w, s + start, i - start);
		start = i + 1;
		if (c == '"' || c == '\\')
		{
			esc[0] = '\\';
			esc[1] = (char) c;
			put(w, esc, 2);
		}
		else if (c == '\n')
			put(w, "\\n", 2);
		else if (c == '\t')
			put(w, "\\t", 2);
		else if (c == '\r')
			put(w, "\\r", 2);
		else
		{
			memcpy(esc, "\\u00", 4);
			esc[4] = hexd[c >> 4];
			esc[5] = hexd[c & 15];
			put(w, esc, 6);
		}
	}
	put(w, s + start, len - start);
	put(w, "\"", 1);
}

void
json_key(JsonWriter *w, const char *key)
{
	begin_value(w);
	put_escaped(w, key, strlen(key));
	put(w, ":", 1);
	w->after_key = true;
}

void
json_stringn(JsonWriter *w, const char *s, size_t len)
{
	begin_value(w);
	put_escaped(w, s, len);
}

void
json_string(JsonWriter *w, const char *s)
{
	json_stringn(w, s, strlen(s));
}

void
json_hex(JsonWriter *w, const uint8_t *p, size_t len)
{
	static const char hexd[] = "0123456789abcdef";
	char		pair[2];

	begin_value(w);
	put(w, "\"", 1);
	for (size_t i = 0; i < len; i++)
	{
		pair[0] = hexd[p[i] >> 4];
		pair[1] = hexd[p[i] & 15];
		put(w, pair, 2);
	}
	put(w, "\"", 1);
}

void
json_int(JsonWriter *w, int64_t v)
{
	char		buf[32];
	int			n = snprintf(buf, sizeof(buf), "%lld", (long long) v);

	begin_value(w);
	put(w, buf, (size_t) n);
}

void
json_uint(JsonWriter *w, uint64_t v)
{
	char		buf[32];
	int			n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long) v);

	begin_value(w);
	put(w, buf, (size_t) n);
}

void
json_double(JsonWriter *w, double v)
{
	char		buf[64];
	int			n;

	if (!isfinite(v))
	{
		json_null(w);
		return;
	}
	/*
	 * %.17g always reads back the same but prints 1.374 as
	 * 1.3740000000000001: take the fewest digits that still do.
	 */
	for (int digits = 15; digits <= 17; digits++)
	{
		n = snprintf(buf, sizeof(buf), "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	begin_value(w);
	put(w, buf, (size_t) n);
}

void
json_bool(JsonWriter *w, bool v)
{
	begin_value(w);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void
json_null(JsonWriter *w)
{
	begin_value(w);
	put(w, "null", 4);
}

/* Length of the UTF-8 sequence at p, or 0 if it is malformed. */
static size_t
utf8_seq_len(const uint8_t *p, size_t avail)
{
	uint8_t		c = p[0];
	size_t		n;
	uint32_t	cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++)
	{
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		(cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

bool
json_utf8_valid(const uint8_t *p, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		size_t		n = utf8_seq_len(p + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

double
json_round(double v, int decimals)
{
	double		scale = pow(10.0, decimals);
	double		r;

	if (!isfinite(v))
		return v;
	r = round(v * scale) / scale;
	return r == 0.0 ? 0.0 : r;	/* no "-0" */
}
