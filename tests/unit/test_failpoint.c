/*
 * tests/unit/test_failpoint.c -- engine/failpoint.c: arming from the
 * environment, the N-th hit, crash and pause.  Each case forks a child so
 * that the environment is read afresh (failpoints parse it once per process).
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/failpoint.h"
#include "tests/support/failpoint_ctl.h"
#include "tests/unit/suites.h"

#ifdef PGSTREAM_FAILPOINTS

/* Run body in a child with PGSTREAM_FAILPOINTS=spec; its wait status. */
static int
in_child(const char *spec, const char *dir, int (*body)(void))
{
	pid_t		pid = fork();
	int			status = 0;

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
	{
		setenv("PGSTREAM_FAILPOINTS", spec, 1);
		if (dir != NULL)
			setenv("PGSTREAM_FAILPOINT_DIR", dir, 1);
		_exit(body());
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

/* exit code: bit i set when the i-th call fired */
static int
error_pattern(void)
{
	int			bits = 0;

	for (int i = 0; i < 5; i++)
		if (FAILPOINT_ERROR("unit.err"))
			bits |= 1 << i;
	if (FAILPOINT_ERROR("unit.other"))
		bits |= 1 << 6;
	return bits;
}

START_TEST(error_fires_on_the_nth_hit_only)
{
	int			st = in_child("unit.err=error@3", NULL, error_pattern);

	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 1 << 2);
	st = in_child("unit.err=error", NULL, error_pattern);
	ck_assert_int_eq(WEXITSTATUS(st), 1 << 0);
	st = in_child("unit.x=crash;unit.err=error@4+", NULL, error_pattern);
	ck_assert_int_eq(WEXITSTATUS(st), (1 << 3) | (1 << 4));
	st = in_child("unit.none=error", NULL, error_pattern);
	ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

static int
hit_crash_twice(void)
{
	FAILPOINT("unit.crash");	/* first hit: armed for the second */
	FAILPOINT("unit.crash");
	return 0;
}

START_TEST(crash_kills_like_kill_9)
{
	int			st = in_child("unit.crash=crash@2", NULL, hit_crash_twice);

	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGKILL);
}
END_TEST

START_TEST(a_malformed_spec_stops_the_process)
{
	int			st = in_child("unit.crash=explode", NULL, hit_crash_twice);

	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 70);
	st = in_child("unit.crash=crash@0", NULL, hit_crash_twice);
	ck_assert_int_eq(WEXITSTATUS(st), 70);
}
END_TEST

static int
pause_then_exit(void)
{
	FAILPOINT("unit.pause");
	return 42;
}

START_TEST(pause_waits_until_released)
{
	FailpointDir d;
	pid_t		pid;
	int			status;

	ck_assert(fpctl_init(&d));
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
	{
		setenv("PGSTREAM_FAILPOINTS", "unit.pause=pause", 1);
		setenv("PGSTREAM_FAILPOINT_DIR", d.path, 1);
		_exit(pause_then_exit());
	}
	ck_assert(fpctl_wait(&d, "unit.pause", 10000));
	/* paused: still running */
	ck_assert_int_eq(waitpid(pid, &status, WNOHANG), 0);
	fpctl_release(&d, "unit.pause");
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 42);
	fpctl_cleanup(&d);
}
END_TEST

#endif

Suite *
failpoint_suite(void)
{
	Suite	   *s = suite_create("failpoint");
	TCase	   *tc = tcase_create("core");

#ifdef PGSTREAM_FAILPOINTS
	tcase_add_test(tc, error_fires_on_the_nth_hit_only);
	tcase_add_test(tc, crash_kills_like_kill_9);
	tcase_add_test(tc, a_malformed_spec_stops_the_process);
	tcase_add_test(tc, pause_waits_until_released);
#endif
	suite_add_tcase(s, tc);
	return s;
}
