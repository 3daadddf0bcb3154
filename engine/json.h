/*
 * engine/json.h -- a small streaming JSON writer for machine-readable output
 * (peek --json, status --json, assess --json, cutover --json).
 *
 * The writer tracks commas itself; callers just say key/value in order.
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 are never
 * emitted raw (json_utf8_valid tells the caller to choose another form).
 */
#ifndef PGSTREAM_ENGINE_JSON_H
#define PGSTREAM_ENGINE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32

typedef struct JsonWriter
{
	char	   *data;			/* owned, NUL-terminated */
	size_t		len;
	size_t		cap;
	bool		oom;			/* sticky: an allocation failed */
	int			depth;
	bool		need_comma[JSON_MAX_DEPTH];
	bool		after_key;
} JsonWriter;

void		json_init(JsonWriter *w);
void		json_reset(JsonWriter *w);	/* empty, keep the buffer */
void		json_term(JsonWriter *w);

void		json_begin_object(JsonWriter *w);
void		json_end_object(JsonWriter *w);
void		json_begin_array(JsonWriter *w);
void		json_end_array(JsonWriter *w);
void		json_key(JsonWriter *w, const char *key);

void		json_string(JsonWriter *w, const char *s);
void		json_stringn(JsonWriter *w, const char *s, size_t len);
void		json_hex(JsonWriter *w, const uint8_t *p, size_t len);	/* as a string */
void		json_int(JsonWriter *w, int64_t v);
void		json_uint(JsonWriter *w, uint64_t v);
/* The shortest form that reads back as the same double; null if not finite */
void		json_double(JsonWriter *w, double v);

/*
 * v rounded to decimals places (0: a whole number), for values whose last
 * digits are noise: seconds to the millisecond (3), rates to whole units.
 */
double		json_round(double v, int decimals);
void		json_bool(JsonWriter *w, bool v);
void		json_null(JsonWriter *w);

/* True when p[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool		json_utf8_valid(const uint8_t *p, size_t len);

#endif
