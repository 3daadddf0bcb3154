/*
 * tests/unit/suites.h -- every unit-test suite, one per module.
 *
 * Each test_<module>.c defines <module>_suite(); run_unit.c adds them all to
 * one SRunner.  Run one suite with CK_RUN_SUITE=pgoutput, one test case with
 * CK_RUN_CASE=..., and use CK_FORK=no under a debugger.
 */
#ifndef PGSTREAM_TESTS_UNIT_SUITES_H
#define PGSTREAM_TESTS_UNIT_SUITES_H

#include <check.h>

Suite *error_suite(void);
Suite *lsn_suite(void);
Suite *bytes_suite(void);
Suite *arena_suite(void);
Suite *replication_suite(void);
Suite *pgoutput_suite(void);
Suite *schema_split_suite(void); /* engine/schema/schema.c */
Suite *spool_suite(void); /* storage/txspool.c */
Suite *redact_suite(void); /* apply/pgconn.c */
Suite *engine_suite(void); /* engine/ and apply/ pure helpers */
Suite *walspool_suite(void); /* storage/walspool.c */
Suite *durable_suite(void); /* apply/durable.c */
Suite *failpoint_suite(void); /* engine/failpoint.c */
Suite *names_suite(void); /* protocol/names.c */
Suite *writer_sql_suite(void); /* apply/sqlbuild.c */
Suite *roles_suite(void); /* engine/roles.c */
Suite *verify_suite(void); /* engine/verify.c */
Suite *strbuf_suite(void); /* protocol/strbuf.c */

#endif
