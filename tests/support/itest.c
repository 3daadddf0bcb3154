/*
 * tests/support/itest.c -- small helpers shared by the integration tests
 * that run the pgstream binary (see itest.h).
 */
#include "tests/support/itest.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <check.h>

#define SYNC_EXIT_TIMEOUT_MS 60000

const char *
itest_pgstream_bin(void)
{
	const char *bin = getenv("PGSTREAM_BIN");

	ck_assert_msg(bin != NULL && *bin != '\0',
	              "PGSTREAM_BIN is not set (run through make "
	              "check-integration, or set it to build/<mode>/pgstream)");
	return bin;
}

const char *
itest_pgbench_path(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("PGSTREAM_PG_BINDIR");
	struct stat st;
	DIR *dir;
	long best = -1;

	if (path[0] != '\0')
		return path;
	if (env != NULL && *env != '\0')
	{
		snprintf(path, sizeof(path), "%s/pgbench", env);
		return path;
	}
	dir = opendir("/usr/lib/postgresql");
	if (dir != NULL)
	{
		struct dirent *de;

		while ((de = readdir(dir)) != NULL)
		{
			char candidate[PATH_MAX];
			char *end;
			long major = strtol(de->d_name, &end, 10);

			if (end == de->d_name || *end != '\0' || major <= best)
				continue;
			snprintf(candidate, sizeof(candidate),
			         "/usr/lib/postgresql/%s/bin/pgbench", de->d_name);
			if (stat(candidate, &st) == 0)
			{
				best = major;
				memcpy(path, candidate, sizeof(path));
			}
		}
		closedir(dir);
	}
	if (path[0] == '\0')
		snprintf(path, sizeof(path), "pgbench");
	return path;
}

void
itest_make_db(const Cluster *c, const char *name, const char *owner)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	ck_assert(cluster_psql(c, "postgres", sql));
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s%s%s", name,
	         owner ? " OWNER " : "", owner ? owner : "");
	ck_assert(cluster_psql(c, "postgres", sql));
}

void
itest_conninfo(char *buf, const Cluster *c, const char *dbname)
{
	snprintf(buf, ITEST_CONNINFO_MAX, "%s", cluster_conninfo(c, dbname));
}

void
itest_migrator_conninfo(char *buf, const Cluster *c, const char *dbname)
{
	snprintf(buf, ITEST_CONNINFO_MAX,
	         "host='%s' port=%d user=migrator dbname=%s", c->basedir, c->port,
	         dbname);
}

void
itest_assert_scalar(const Cluster *c, const char *dbname, const char *sql,
                    const char *expected)
{
	char *value = NULL;

	ck_assert_msg(cluster_query(c, dbname, sql, &value), "query failed: %s",
	              sql);
	ck_assert_msg(value != NULL && strcmp(value, expected) == 0,
	              "%s/%s: %s\n  expected: %s\n  actual:   %s", c->name, dbname,
	              sql, expected, value ? value : "NULL");
	free(value);
}

void
itest_assert_scalar_equal(const Cluster *src, const char *srcdb,
                          const Cluster *tgt, const char *tgtdb,
                          const char *sql)
{
	char *a = cluster_query_scalar(src, srcdb, sql);
	char *b = cluster_query_scalar(tgt, tgtdb, sql);

	ck_assert_msg(a != NULL && b != NULL && strcmp(a, b) == 0,
	              "%s\n  source: %s\n  target: %s", sql, a ? a : "NULL",
	              b ? b : "NULL");
	free(a);
	free(b);
}

char *
itest_table_fingerprint(const Cluster *c, const char *dbname, const char *table)
{
	char sql[600];
	char *count;
	char *digest;
	char *out;
	size_t len;

	/*
	 * A query that fails is a failed test, never a placeholder: two failed
	 * queries would give the same placeholder and compare equal.
	 */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	count = cluster_query_scalar(c, dbname, sql);
	ck_assert_msg(count != NULL, "%s/%s: could not count the rows of %s",
	              c->name, dbname, table);
	digest = cluster_table_digest(c, dbname, table, "t::text COLLATE \"C\"");
	ck_assert_msg(digest != NULL, "%s/%s: could not digest the rows of %s",
	              c->name, dbname, table);
	len = strlen(count) + strlen(digest) + 16;
	out = malloc(len);
	ck_assert_ptr_nonnull(out);
	snprintf(out, len, "%s rows, md5 %s", count, digest);
	free(count);
	free(digest);
	return out;
}

void
itest_print_output(const char *what, int status, const char *out,
                   const char *err)
{
	fprintf(stderr,
	        "---- %s: status %d\n---- stdout:\n%s---- stderr:\n%s----\n", what,
	        status, out ? out : "", err ? err : "");
}

void
itest_print_proc(const char *what, const Proc *p, int status)
{
	char *out = proc_stdout(p);
	char *err = proc_stderr(p);

	itest_print_output(what, status, out, err);
	free(out);
	free(err);
}

void
itest_assert_sync_exits_0(Proc *p)
{
	int status = proc_wait(p, SYNC_EXIT_TIMEOUT_MS);

	if (status != 0)
		itest_print_proc("pgstream sync", p, status);
	ck_assert_msg(status == 0, "sync exited with %d after the cutover", status);
}

void
itest_assert_pgbench_ok(Proc *p, int status)
{
	char *out = proc_stdout(p);

	if (status != 0)
		itest_print_proc("pgbench", p, status);
	ck_assert_int_eq(status, 0);
	ck_assert_msg(out != NULL && strstr(out, "number of transactions actually "
	                                         "processed") != NULL,
	              "pgbench output: %s", out ? out : "");
	free(out);
}

void
itest_strip_space(char *s)
{
	char *w = s;
	bool in_string = false;

	for (const char *r = s; *r; r++)
	{
		if (in_string)
		{
			*w++ = *r;
			if (*r == '\\' && r[1] != '\0')
				*w++ = *++r;
			else if (*r == '"')
				in_string = false;
			continue;
		}
		if (*r == '"')
			in_string = true;
		if (*r != ' ' && *r != '\n' && *r != '\t' && *r != '\r')
			*w++ = *r;
	}
	*w = '\0';
}

bool
itest_json_field(const char *json, const char *key, char *buf, size_t size)
{
	char pat[80];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (p == NULL)
		return false;
	p += strlen(pat);
	if (*p == '"')
	{
		for (p++; *p && *p != '"'; p++)
		{
			if (*p == '\\' && p[1] != '\0' && n + 2 < size)
				buf[n++] = *p++;
			if (n + 1 < size)
				buf[n++] = *p;
		}
	}
	else
		for (; *p && *p != ',' && *p != '}' && *p != ']'; p++)
			if (n + 1 < size)
				buf[n++] = *p;
	buf[n] = '\0';
	return true;
}

void
itest_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}
