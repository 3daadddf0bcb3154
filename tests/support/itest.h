/*
 * tests/support/itest.h -- small helpers shared by the integration tests
 * that run the pgstream binary against a source and a target cluster
 * (test_sync.c, test_stream.c, test_spool_mode.c).
 *
 *   itest_pgstream_bin()         the binary under test ($PGSTREAM_BIN)
 *   itest_pgbench_path()         the pgbench to load the source with
 *   itest_make_db()              drop and create a database
 *   itest_conninfo()             a cluster's conninfo, as the superuser
 *   itest_migrator_conninfo()    the same, as the login "migrator"
 *   itest_assert_scalar()        one query's value is the expected one
 *   itest_assert_scalar_equal()  one query has the same value on both sides
 *   itest_table_fingerprint()    a table's row count and digest
 *   itest_print_output()         a command's status and output, on stderr
 *   itest_print_proc()           the same for a background process
 *   itest_assert_sync_exits_0()  sync exits 0 after a cutover
 *   itest_assert_pgbench_ok()    pgbench exited 0 and ran transactions
 *   itest_strip_space()          compact JSON (whitespace outside strings)
 *   itest_json_field()           one field of compact JSON
 *   itest_sleep_ms()
 *
 * The assertions are Check's (ck_assert*): call them from a test, where a
 * failure ends the test.
 */
#ifndef PGSTREAM_TESTS_SUPPORT_ITEST_H
#define PGSTREAM_TESTS_SUPPORT_ITEST_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "tests/support/cluster.h"
#include "tests/support/proc.h"

/* Size of a conninfo buffer filled by itest_conninfo() and friends. */
#define ITEST_CONNINFO_MAX (PATH_MAX + 256)

/*
 * $PGSTREAM_BIN, which make check-integration sets to build/<mode>/pgstream;
 * the test fails if it is not set.
 */
const char *itest_pgstream_bin(void);

/*
 * pgbench: in $PGSTREAM_PG_BINDIR, else the newest
 * /usr/lib/postgresql/<major>/bin that has it, else from $PATH (the same
 * rule the cluster harness uses for the server programs).
 */
const char *itest_pgbench_path(void);

/* Drop (if a previous run left it) and create a database; owner may be NULL. */
void itest_make_db(const Cluster *c, const char *name, const char *owner);

/*
 * buf (ITEST_CONNINFO_MAX bytes) receives cluster_conninfo(c, dbname),
 * copied out of its ring buffer: the superuser postgres.
 */
void itest_conninfo(char *buf, const Cluster *c, const char *dbname);

/*
 * buf (ITEST_CONNINFO_MAX bytes) receives a conninfo for dbname on c as the
 * non-superuser login "migrator" (which the test's fixture creates).
 */
void itest_migrator_conninfo(char *buf, const Cluster *c, const char *dbname);

/* The scalar result of sql on c/dbname, compared with expected. */
void itest_assert_scalar(const Cluster *c, const char *dbname, const char *sql,
                         const char *expected);

/* The same scalar result of sql on the source and on the target. */
void itest_assert_scalar_equal(const Cluster *src, const char *srcdb,
                               const Cluster *tgt, const char *tgtdb,
                               const char *sql);

/* "<count> rows, md5 <digest>" of a table (malloc'd); a query that fails
 * fails the test. */
char *itest_table_fingerprint(const Cluster *c, const char *dbname,
                              const char *table);

/* A command's status, stdout and stderr on stderr; out and err may be NULL. */
void itest_print_output(const char *what, int status, const char *out,
                        const char *err);

/* itest_print_output() with what a background process has written. */
void itest_print_proc(const char *what, const Proc *p, int status);

/* Wait for sync to exit after a cutover; assert status 0. */
void itest_assert_sync_exits_0(Proc *p);

/* pgbench (a background process that exited with status) succeeded. */
void itest_assert_pgbench_ok(Proc *p, int status);

/* s without whitespace outside JSON strings. */
void itest_strip_space(char *s);

/*
 * The value of the first "key" in compact JSON (see itest_strip_space): a
 * string's contents (escapes kept), or a number / true / false / null as
 * written.  Copied into buf; false if the key is absent.
 */
bool itest_json_field(const char *json, const char *key, char *buf,
                      size_t size);

void itest_sleep_ms(long ms);

#endif /* PGSTREAM_TESTS_SUPPORT_ITEST_H */
