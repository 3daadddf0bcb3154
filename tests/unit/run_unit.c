/*
 * tests/unit/run_unit.c -- run every unit-test suite in one SRunner.
 *
 * Prints Check's summary line and exits non-zero if any test failed.  No
 * server and no network: the whole run is meant to take well under 5 s.
 */
#include <stdlib.h>

#include "tests/unit/suites.h"

int
main(void)
{
	SRunner *sr = srunner_create(error_suite());
	int failed;

	srunner_add_suite(sr, lsn_suite());
	srunner_add_suite(sr, bytes_suite());
	srunner_add_suite(sr, arena_suite());
	srunner_add_suite(sr, replication_suite());
	srunner_add_suite(sr, pgoutput_suite());
	srunner_add_suite(sr, schema_split_suite());
	srunner_add_suite(sr, spool_suite());
	srunner_add_suite(sr, redact_suite());
	srunner_add_suite(sr, engine_suite());
	srunner_add_suite(sr, walspool_suite());
	srunner_add_suite(sr, durable_suite());
	srunner_add_suite(sr, failpoint_suite());
	srunner_add_suite(sr, names_suite());
	srunner_add_suite(sr, writer_sql_suite());
	srunner_add_suite(sr, roles_suite());
	srunner_add_suite(sr, verify_suite());
	srunner_add_suite(sr, strbuf_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
