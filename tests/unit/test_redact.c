/*
 * tests/unit/test_redact.c -- apply/pgconn.c's text handling: passwords are
 * removed from connection strings and from the errors about them, and
 * libpq's multi-line messages become one line with a fix attached.
 *
 * No server is needed: everything here runs on strings.
 */
#include <string.h>

#include "apply/pgconn.h"
#include "tests/unit/suites.h"

#define SECRET "Sup3r;Secr3t"

/* ---- pgconn_redact ---- */

static const struct
{
	const char *conninfo;
	const char *expected;
} redact_cases[] = {
    {"host=db.example.com user=alice password=" SECRET " dbname=app",
     "user=alice dbname=app host=db.example.com"},
    {"password='" SECRET "' host=h", "host=h"},
    {"postgresql://alice:" SECRET "@db.example.com:5433/app?sslmode=verify-full",
     "user=alice dbname=app host=db.example.com port=5433 sslmode=verify-full"},
    {"postgres://alice:" SECRET "@h/app", "user=alice dbname=app host=h"},
    {"host=h dbname=app", "dbname=app host=h"},
    {"host=h password='" SECRET "' password=" SECRET "x", "host=h"},
    /* unparseable: nothing of it is repeated */
    {"host=h password=" SECRET " 'unterminated", "(invalid connection string)"},
    {"postgresql://alice:" SECRET "@[::1", "(invalid connection string)"},
};

START_TEST(redact_removes_the_password)
{
	char buf[512];

	pgconn_redact(redact_cases[_i].conninfo, buf, sizeof(buf));
	ck_assert_str_eq(buf, redact_cases[_i].expected);
	ck_assert_ptr_null(strstr(buf, SECRET));
}
END_TEST

START_TEST(redact_into_a_small_buffer_stays_terminated)
{
	char buf[8];

	pgconn_redact("host=a.very.long.host.name password=" SECRET, buf,
	              sizeof(buf));
	ck_assert_uint_lt(strlen(buf), sizeof(buf));
	ck_assert_ptr_null(strstr(buf, "Sup"));
}
END_TEST

/* ---- invalid connection strings: the error never repeats a secret ---- */

static const char *const malformed_with_password[] = {
    /* libpq would quote "Secr3t" as the keyword missing its "=" */
    "host=h password=Sup3r Secr3t",
    "host=h password=x Secr3t",
    /* libpq quotes the whole URI in these */
    "postgresql://alice:Secr3t@[::1",
    "postgresql://alice:Secr3t@h/db?bogus",
    "postgresql://alice:Secr3t@h/db?bogus=1",
    "host=h password='Secr3t",
};

START_TEST(invalid_conninfo_error_has_no_secret_and_one_line)
{
	SyncError err;
	const char *ci = malformed_with_password[_i];

	sync_error_clear(&err);
	ck_assert(!pgconn_check_conninfo(ci, "source", &err));
	ck_assert_int_eq(err.code, SYNC_ERR_USAGE);
	ck_assert_msg(strstr(err.message, "Secr3t") == NULL, "leaked: %s",
	              err.message);
	ck_assert_ptr_null(strchr(err.message, '\n'));
	ck_assert_ptr_nonnull(strstr(err.message, "invalid source connection string"));
	ck_assert_ptr_nonnull(strstr(err.message, "keyword=value"));
}
END_TEST

START_TEST(invalid_conninfo_without_password_names_the_keyword)
{
	SyncError err;

	ck_assert(!pgconn_check_conninfo("hots=h dbname=x", "target", &err));
	ck_assert_ptr_nonnull(strstr(err.message, "\"hots\""));
	ck_assert_ptr_nonnull(strstr(err.message, "invalid target connection string"));
}
END_TEST

/* A URI with a password and an unknown parameter: the name, not the secret. */
START_TEST(an_unknown_uri_parameter_is_named_without_the_password)
{
	SyncError err;

	sync_error_clear(&err);
	ck_assert(!pgconn_check_conninfo("postgresql://alice:Secr3t@h/db?sslmode=require&bogus=1",
	                                 "source", &err));
	ck_assert_int_eq(err.code, SYNC_ERR_USAGE);
	ck_assert_msg(strstr(err.message, "Secr3t") == NULL, "leaked: %s", err.message);
	ck_assert_msg(strstr(err.message, "unknown parameter \"bogus\" in the URI") != NULL,
	              "%s", err.message);
}
END_TEST

/*
 * Values libpq only rejects when it connects (exit 4, "could not connect")
 * are usage errors (exit 3), named with their keyword.
 */
static const struct
{
	const char *conninfo;
	const char *says;
} bad_values[] = {
    {"host=h port=abc", "port \"abc\" is not a port number"},
    {"host=h port=70000", "port \"70000\" is not a port number"},
    {"host=a,b port=5432,x", "port \"x\" is not a port number"},
    {"postgresql://h:99999/db", "port \"99999\" is not a port number"},
    {"host=h sslmode=bogus", "sslmode \"bogus\" is not one of"},
    {"postgresql://u:Secr3t@h/db?sslmode=bogus", "sslmode \"bogus\" is not one of"},
    {"host=h target_session_attrs=primary-ish", "target_session_attrs \"primary-ish\""},
    {"host=h connect_timeout=soon", "connect_timeout \"soon\" is not a number"},
};

START_TEST(values_libpq_rejects_late_are_usage_errors)
{
	SyncError err;

	sync_error_clear(&err);
	ck_assert(!pgconn_check_conninfo(bad_values[_i].conninfo, "target", &err));
	ck_assert_int_eq(err.code, SYNC_ERR_USAGE);
	ck_assert_msg(strstr(err.message, bad_values[_i].says) != NULL, "%s: %s",
	              bad_values[_i].conninfo, err.message);
	ck_assert_msg(strstr(err.message, "Secr3t") == NULL, "leaked: %s", err.message);
	ck_assert_ptr_nonnull(strstr(err.message, "invalid target connection string"));
}
END_TEST

START_TEST(valid_conninfo_passes)
{
	SyncError err;

	sync_error_clear(&err);
	ck_assert(pgconn_check_conninfo("host=h password=" SECRET, "source", &err));
	ck_assert(pgconn_check_conninfo("postgresql://u:p@h/db", "source", &err));
	ck_assert(pgconn_check_conninfo("", "source", &err));
	ck_assert(pgconn_check_conninfo("host=a,b port=5432,5433 sslmode=verify-full"
	                                " target_session_attrs=read-write connect_timeout=10",
	                                "source", &err));
	ck_assert(pgconn_check_conninfo("host=a,b port=,5433", "source", &err));
	ck_assert(pgconn_check_conninfo("postgresql://u@h:5432/db?sslmode=disable&application_name=x",
	                                "source", &err));
	ck_assert_int_eq(err.code, SYNC_ERR_NONE);
}
END_TEST

/* ---- one line ---- */

static const struct
{
	const char *in;
	const char *out;
} one_line_cases[] = {
    {"connection to server at \"127.0.0.1\", port 1 failed: Connection "
     "refused\n\tIs the server running on that host and accepting TCP/IP "
     "connections?\n",
     "connection to server at \"127.0.0.1\", port 1 failed: Connection "
     "refused; Is the server running on that host and accepting TCP/IP "
     "connections?"},
    {"connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  "
     "password authentication failed for user \"alice\"\n",
     "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL: "
     "password authentication failed for user \"alice\""},
    {"first.\nsecond\n\n", "first; second"},
    {"  \n", ""},
    {"", ""},
};

START_TEST(one_line_joins_lines)
{
	char buf[512];

	pgconn_one_line(one_line_cases[_i].in, buf, sizeof(buf));
	ck_assert_str_eq(buf, one_line_cases[_i].out);
}
END_TEST

START_TEST(one_line_truncates_safely)
{
	char buf[6];

	pgconn_one_line("abc\n\tdefghij", buf, sizeof(buf));
	ck_assert_uint_lt(strlen(buf), sizeof(buf));
	ck_assert_ptr_null(strchr(buf, '\n'));
	pgconn_one_line(NULL, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
}
END_TEST

/* ---- hints ---- */

static const struct
{
	const char *message;
	const char *needle; /* in the hint; NULL: no hint */
} hint_cases[] = {
    {"FATAL: password authentication failed for user \"a\"", "PGPASSWORD"},
    {"fe_sendauth: no password supplied", ".pgpass"},
    {"FATAL: database \"nope\" does not exist", "CREATE DATABASE"},
    {"FATAL: role \"nobody\" does not exist", "user"},
    {"FATAL: no pg_hba.conf entry for host \"1.2.3.4\"", "pg_hba.conf"},
    {"FATAL: must be superuser or replication role to start walsender",
     "WITH REPLICATION"},
    {"FATAL: permission denied to start WAL sender", "WITH REPLICATION"},
    {"SSL error: certificate verify failed", "sslrootcert"},
    {"server certificate for \"x\" does not match host name \"y\"",
     "verify-ca"},
    {"root certificate file \"/nope\" does not exist", "sslrootcert"},
    {"connection to server at \"192.0.2.1\", port 5432 failed: timeout "
     "expired",
     "firewall"},
    {"failed: Connection refused; Is the server running", "listen"},
    {"something else entirely", NULL},
};

START_TEST(connect_hint_says_what_to_do)
{
	const char *hint = pgconn_connect_hint(hint_cases[_i].message);

	if (hint_cases[_i].needle == NULL)
		ck_assert_ptr_null(hint);
	else
		ck_assert_msg(hint != NULL && strstr(hint, hint_cases[_i].needle),
		              "%s -> %s", hint_cases[_i].message,
		              hint ? hint : "(none)");
}
END_TEST

#define N(a) ((int) (sizeof(a) / sizeof((a)[0])))

Suite *
redact_suite(void)
{
	Suite *s = suite_create("redact");
	TCase *tc;

	tc = tcase_create("redact");
	tcase_add_loop_test(tc, redact_removes_the_password, 0, N(redact_cases));
	tcase_add_test(tc, redact_into_a_small_buffer_stays_terminated);
	suite_add_tcase(s, tc);

	tc = tcase_create("conninfo_errors");
	tcase_add_loop_test(tc, invalid_conninfo_error_has_no_secret_and_one_line,
	                    0, N(malformed_with_password));
	tcase_add_test(tc, invalid_conninfo_without_password_names_the_keyword);
	tcase_add_test(tc, valid_conninfo_passes);
	tcase_add_test(tc, an_unknown_uri_parameter_is_named_without_the_password);
	tcase_add_loop_test(tc, values_libpq_rejects_late_are_usage_errors, 0, N(bad_values));
	suite_add_tcase(s, tc);

	tc = tcase_create("one_line");
	tcase_add_loop_test(tc, one_line_joins_lines, 0, N(one_line_cases));
	tcase_add_test(tc, one_line_truncates_safely);
	tcase_add_loop_test(tc, connect_hint_says_what_to_do, 0, N(hint_cases));
	suite_add_tcase(s, tc);
	return s;
}
