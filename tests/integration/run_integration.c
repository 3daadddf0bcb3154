/*
 * tests/integration/run_integration.c -- runs every integration suite in one
 * SRunner against real local PostgreSQL clusters.
 *
 * Environment: PGSTREAM_BIN (the engine binary, set by make
 * check-integration), CK_RUN_SUITE / CK_RUN_CASE to narrow the run,
 * CK_VERBOSITY, CK_FORK=no under gdb, PGSTREAM_TEST_KEEP=1 to keep the
 * cluster directories.  Exits non-zero if any test failed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tests/integration/suites.h"

static Suite *(*const suites[])(void) = {
    harness_suite,
    peek_suite,
    sync_suite,
    badinput_suite,
    tls_suite,
    assess_suite,
    schema_suite,
    roles_suite,
    stream_suite,
    drill_short_suite,
    spool_mode_suite,
    resume_suite,
    operator_suite,
    apply_inherit_suite,
    stream_faults_suite,
    cutover_suite,
    values_suite,
    majors_suite,
    versions_suite,
    oldsource_suite,
    verify_integration_suite,
    abort_suite,
    regress_suite,
    fidelity_suite,
};

int
main(void)
{
	SRunner *sr = NULL;
	int failed;

	/* Check forks per test: unbuffered output is never printed twice. */
	setvbuf(stdout, NULL, _IONBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
	{
		if (sr == NULL)
			sr = srunner_create(suites[i]());
		else
			srunner_add_suite(sr, suites[i]());
	}
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
