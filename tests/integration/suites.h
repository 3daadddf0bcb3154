/*
 * tests/integration/suites.h -- the integration suites run_integration runs.
 *
 * Each test_<area>.c exports one Suite *<area>_suite(void).  Add new ones
 * here and to the table in run_integration.c.
 */
#ifndef PGSTREAM_TESTS_INTEGRATION_SUITES_H
#define PGSTREAM_TESTS_INTEGRATION_SUITES_H

#include <check.h>

Suite *harness_suite(void);
Suite *peek_suite(void);
Suite *sync_suite(void);
Suite *badinput_suite(void);
Suite *tls_suite(void);
Suite *assess_suite(void);
Suite *schema_suite(void);
Suite *roles_suite(void);
Suite *stream_suite(void);
Suite *drill_short_suite(void);
Suite *spool_mode_suite(void);
Suite *resume_suite(void);
Suite *operator_suite(void);
Suite *apply_inherit_suite(void);
Suite *stream_faults_suite(void);
Suite *cutover_suite(void);
Suite *values_suite(void);
Suite *majors_suite(void);
Suite *versions_suite(void);
Suite *oldsource_suite(void);
Suite *verify_integration_suite(void); /* test_verify.c; verify_suite is the unit one */
Suite *abort_suite(void);
Suite *regress_suite(void);
Suite *fidelity_suite(void);

#endif /* PGSTREAM_TESTS_INTEGRATION_SUITES_H */
