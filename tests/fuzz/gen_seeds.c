/*
 * tests/fuzz/gen_seeds.c -- write the reviewed seed corpora from the
 * wire_build sample catalogue.  Run by hand when the catalogue changes; the
 * output is committed (see tests/fuzz/README.md):
 *
 *   cc -std=c17 -I. tests/fuzz/gen_seeds.c tests/support/wire_build.c \
 *      protocol/[a-z]*.c -o build/gen_seeds && build/gen_seeds tests/fuzz/seeds
 *
 * fuzz_pgoutput seeds are one configuration byte (see fuzz_pgoutput.c) and
 * the message; fuzz_replication seeds are XLogData envelopes around the same
 * messages, plus keepalives.
 */
#include <stdio.h>
#include <stdlib.h>

#include "protocol/pgoutput.h"
#include "protocol/replication.h"
#include "tests/support/wire_build.h"

static int
write_seed(const char *dir, const char *target, const char *name,
           const uint8_t *data, size_t len)
{
	char path[1024];
	FILE *f;

	(void) snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
	{
		perror(path);
		return -1;
	}
	return 0;
}

/* fuzz_pgoutput's configuration byte. */
static uint8_t
config_byte(int proto, const WireSample *s)
{
	return (uint8_t) ((proto - 1) | (s->in_stream ? 0x04 : 0) |
	                  (s->streaming_parallel ? 0x08 : 0));
}

static int
write_sample(const char *dir, const WireSample *s)
{
	uint8_t msg[2048];
	uint8_t env[2048 + REPL_XLOGDATA_HEADER_LEN];
	char name[256];
	ByteWriter w;
	size_t n = wire_sample_build(s, msg + 1, sizeof(msg) - 1);

	if (n == 0)
		return -1;
	msg[0] = config_byte(PGOUTPUT_PROTO_MAX, s);
	if (write_seed(dir, "fuzz_pgoutput", s->name, msg, n + 1) < 0)
		return -1;
	if (s->min_proto < PGOUTPUT_PROTO_MAX)
	{
		msg[0] = config_byte(s->min_proto, s);
		(void) snprintf(name, sizeof(name), "%s_proto%d", s->name,
		                s->min_proto);
		if (write_seed(dir, "fuzz_pgoutput", name, msg, n + 1) < 0)
			return -1;
	}
	byte_writer_init(&w, env, sizeof(env));
	wire_xlogdata(&w, 0x16B374D848, 0x16B374D848, 817552167123456, msg + 1, n);
	return write_seed(dir, "fuzz_replication", s->name, env, w.len);
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/fuzz/seeds";
	uint8_t buf[64];
	ByteWriter w;

	for (size_t i = 0; i < wire_sample_count(); i++)
		if (write_sample(dir, wire_sample(i)) < 0)
			return EXIT_FAILURE;
	for (uint8_t reply = 0; reply <= 1; reply++)
	{
		byte_writer_init(&w, buf, sizeof(buf));
		wire_keepalive(&w, 0x16B374D848, 817552167123456, reply);
		if (write_seed(dir, "fuzz_replication",
		               reply ? "keepalive_reply" : "keepalive", buf, w.len) < 0)
			return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
