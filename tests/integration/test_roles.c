/*
 * tests/integration/test_roles.c -- the roles a database uses arrive on the
 * target (engine/roles.h), within what a non-superuser target login with
 * CREATEROLE may do (as on Azure).
 *
 *   roles_the_database_uses_are_created_with_their_memberships
 *       owners, grantees, a group and its member, a role only in a policy,
 *       default privileges and per-database settings (one a list, which
 *       stays a list): each exists on the
 *       target after sync --no-follow, with its attributes (REPLICATION and
 *       BYPASSRLS left out and reported by role), its memberships and its
 *       password hash (the source login is a superuser); a role of the
 *       source that the database does not use is not created; a role that
 *       already exists on the target keeps its own attributes.
 *   without_createrole_missing_roles_are_reported_and_the_run_goes_on
 *       a target login without CREATEROLE: assess warns about each missing
 *       role with the fix; sync still completes and names the roles it could
 *       not create.
 *   passwords_that_cannot_be_read_are_listed
 *       a source login that is not a superuser cannot read pg_authid: the
 *       login role is created without a password and the run says which
 *       role needs one, with the command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define RUN_TIMEOUT_MS 180000

static Cluster source;
static Cluster target;

static void
clusters_setup(void)
{
	ck_assert(cluster_init(&source, "roles-source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "roles-target", 0));
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
	ck_assert(cluster_psql(&target, "postgres",
	                       "CREATE ROLE migrator LOGIN CREATEROLE CREATEDB;"
	                       "CREATE ROLE plainlogin LOGIN"));
	ck_assert(cluster_psql(&source, "postgres",
	                       "CREATE ROLE srclogin LOGIN REPLICATION"));
}

static void
clusters_teardown(void)
{
	cluster_destroy(&source);
	cluster_destroy(&target);
}

/* sync --no-follow as user tgt_user on the target; stderr in *err_out. */
static int
run_sync(const char *db, const char *src_user, const char *tgt_user, char **err_out)
{
	char src[ITEST_CONNINFO_MAX];
	char tgt[ITEST_CONNINFO_MAX];
	const char *argv[] = {itest_pgstream_bin(), "sync", "--source", src, "--target", tgt,
	                      "--no-follow", "--slot", db, NULL};
	char *out = NULL;
	int status;

	snprintf(src, sizeof(src), "host='%s' port=%d user=%s dbname=%s", source.basedir,
	         source.port, src_user, db);
	snprintf(tgt, sizeof(tgt), "host='%s' port=%d user=%s dbname=%s", target.basedir,
	         target.port, tgt_user, db);
	status = proc_run(argv, NULL, RUN_TIMEOUT_MS, &out, err_out);
	if (status != 0)
		itest_print_output("pgstream sync", status, out, *err_out);
	free(out);
	return status;
}

static void
assert_has(const char *text, const char *what)
{
	ck_assert_msg(strstr(text, what) != NULL, "expected \"%s\" in:\n%s", what, text);
}

START_TEST(roles_the_database_uses_are_created_with_their_memberships)
{
	const char *db = "roles_full";
	char *err = NULL;

	ck_assert(cluster_psql(&source, "postgres",
	                       "CREATE ROLE r1_owner NOLOGIN;"
	                       "CREATE ROLE r1_rw LOGIN PASSWORD 'rw-secret' CONNECTION LIMIT 7;"
	                       "CREATE ROLE r1_group NOLOGIN NOINHERIT;"
	                       "CREATE ROLE r1_ro LOGIN PASSWORD 'ro-secret' VALID UNTIL '2031-01-01 00:00:00+00';"
	                       "GRANT r1_group TO r1_ro WITH ADMIN OPTION;"
	                       "CREATE ROLE r1_auditor LOGIN REPLICATION BYPASSRLS;"
	                       "CREATE ROLE r1_policy NOLOGIN;"
	                       "CREATE ROLE r1_later NOLOGIN;"
	                       "CREATE ROLE r1_setting NOLOGIN;"
	                       "CREATE ROLE r1_unused LOGIN;"
	                       "CREATE ROLE r1_exists LOGIN CREATEDB"));
	ck_assert(cluster_psql(&target, "postgres", "CREATE ROLE r1_exists NOLOGIN"));
	itest_make_db(&source, db, NULL);
	itest_make_db(&target, db, "migrator");
	ck_assert(cluster_psql(&source, db,
	                       "CREATE SCHEMA app AUTHORIZATION r1_owner;"
	                       "CREATE TABLE app.t (id int PRIMARY KEY, v text);"
	                       "ALTER TABLE app.t OWNER TO r1_owner;"
	                       "GRANT SELECT, INSERT, UPDATE ON app.t TO r1_rw;"
	                       "GRANT SELECT ON app.t TO r1_group, r1_exists;"
	                       "GRANT USAGE ON SCHEMA app TO r1_auditor;"
	                       "ALTER TABLE app.t ENABLE ROW LEVEL SECURITY;"
	                       "CREATE POLICY p ON app.t TO r1_policy USING (true);"
	                       "ALTER DEFAULT PRIVILEGES FOR ROLE r1_owner IN SCHEMA app"
	                       " GRANT SELECT ON TABLES TO r1_later;"
	                       "ALTER ROLE r1_setting IN DATABASE roles_full SET work_mem = '8MB';"
	                       "ALTER ROLE r1_setting IN DATABASE roles_full"
	                       " SET search_path = app, \"My Schema\";"
	                       "ALTER ROLE r1_exists IN DATABASE roles_full SET work_mem = '9MB';"
	                       "INSERT INTO app.t VALUES (1, 'a')"));

	ck_assert_int_eq(run_sync(db, "postgres", "migrator", &err), 0);
	assert_has(err, "created 8 role(s) the source database uses: r1_auditor, r1_group, "
	                "r1_later, r1_owner, r1_policy, r1_ro, r1_rw, r1_setting");
	assert_has(err, "role \"r1_auditor\" was created without REPLICATION, BYPASSRLS (the "
	                "target login may not give them)");
	assert_has(err, "exist on the target and are used as they are: postgres, r1_exists");

	/* every role the database uses, with its attributes; not the unused one */
	itest_assert_scalar(&target, "postgres",
	                    "SELECT string_agg(format('%s:%s%s%s%s%s:%s', rolname,"
	                    " CASE WHEN rolcanlogin THEN 'L' ELSE 'n' END,"
	                    " CASE WHEN rolinherit THEN 'I' ELSE 'n' END,"
	                    " CASE WHEN rolcreatedb THEN 'D' ELSE 'n' END,"
	                    " CASE WHEN rolreplication THEN 'R' ELSE 'n' END,"
	                    " CASE WHEN rolbypassrls THEN 'B' ELSE 'n' END, rolconnlimit),"
	                    " ' ' ORDER BY rolname)"
	                    " FROM pg_roles WHERE rolname LIKE 'r1\\_%'",
	                    "r1_auditor:LInnn:-1 r1_exists:nInnn:-1 r1_group:nnnnn:-1"
	                    " r1_later:nInnn:-1 r1_owner:nInnn:-1 r1_policy:nInnn:-1"
	                    " r1_ro:LInnn:-1 r1_rw:LInnn:7 r1_setting:nInnn:-1");
	itest_assert_scalar(&target, "postgres",
	                    "SELECT rolvaliduntil = '2031-01-01 00:00:00+00'"
	                    " FROM pg_roles WHERE rolname = 'r1_ro'", "t");
	itest_assert_scalar(&target, "postgres",
	                    "SELECT string_agg(g.rolname || '>' || m.rolname || ':' || am.admin_option,"
	                    " ' ' ORDER BY g.rolname, m.rolname)"
	                    " FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid"
	                    " JOIN pg_roles m ON m.oid = am.member"
	                    " WHERE g.rolname LIKE 'r1\\_%' AND m.rolname LIKE 'r1\\_%'",
	                    "r1_group>r1_ro:true");
	/* role settings in the database, a list kept as a list; an existing
	 * role's settings are left alone */
	itest_assert_scalar(&target, "postgres",
	                    "SELECT string_agg(r.rolname || ':' || c, ' | ' ORDER BY r.rolname, c)"
	                    " FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole"
	                    " JOIN pg_database d ON d.oid = s.setdatabase,"
	                    " unnest(s.setconfig) c WHERE d.datname = 'roles_full'",
	                    "r1_setting:search_path=app, \"My Schema\" | r1_setting:work_mem=8MB");
	assert_has(err, "set 2 setting(s) of those roles in the target database");
	/* the password hash moved as it is */
	{
		char *a = cluster_query_scalar(&source, "postgres",
		                               "SELECT rolpassword FROM pg_authid"
		                               " WHERE rolname = 'r1_rw'");
		char *b = cluster_query_scalar(&target, "postgres",
		                               "SELECT rolpassword FROM pg_authid"
		                               " WHERE rolname = 'r1_rw'");

		ck_assert_ptr_nonnull(a);
		ck_assert_ptr_nonnull(b);
		ck_assert_str_eq(a, b);
		ck_assert(strncmp(a, "SCRAM-SHA-256$", 14) == 0);
		free(a);
		free(b);
	}
	ck_assert_msg(strstr(err, "rw-secret") == NULL && strstr(err, "SCRAM-SHA-256$") == NULL,
	              "a password or its hash is in sync's output");
	free(err);
}
END_TEST

START_TEST(without_createrole_missing_roles_are_reported_and_the_run_goes_on)
{
	const char *db = "roles_nocreate";
	char *err = NULL;

	ck_assert(cluster_psql(&source, "postgres", "CREATE ROLE r2_owner NOLOGIN"));
	itest_make_db(&source, db, NULL);
	itest_make_db(&target, db, "plainlogin");
	ck_assert(cluster_psql(&source, db,
	                       "CREATE TABLE t (id int PRIMARY KEY);"
	                       "ALTER TABLE t OWNER TO r2_owner;"
	                       "INSERT INTO t VALUES (1)"));
	{
		char src[ITEST_CONNINFO_MAX];
		char tgt[ITEST_CONNINFO_MAX];
		const char *argv[] = {itest_pgstream_bin(), "assess", "--source", src, "--target",
		                      tgt, "--no-follow", NULL};
		char *out = NULL;
		char *aerr = NULL;
		int status;

		itest_conninfo(src, &source, db);
		snprintf(tgt, sizeof(tgt), "host='%s' port=%d user=plainlogin dbname=%s",
		         target.basedir, target.port, db);
		status = proc_run(argv, NULL, RUN_TIMEOUT_MS, &out, &aerr);
		if (status != 0 || strstr(aerr, "r2_owner") == NULL)
			itest_print_output("pgstream assess", status, out, aerr);
		ck_assert_int_eq(status, 0);
		assert_has(aerr, "warning: roles (r2_owner): ");
		assert_has(aerr, "the source database uses this role, it is missing on the target, "
		                "and the target login may not create roles");
		free(out);
		free(aerr);
	}
	ck_assert_int_eq(run_sync(db, "postgres", "plainlogin", &err), 0);
	assert_has(err, "1 role(s) the source database uses are missing on the target and the "
	                "target login may not create roles (no CREATEROLE): r2_owner");
	itest_assert_scalar(&target, "postgres",
	                    "SELECT count(*) FROM pg_roles WHERE rolname = 'r2_owner'", "0");
	itest_assert_scalar(&target, db, "SELECT count(*) FROM t", "1");
	free(err);
}
END_TEST

START_TEST(passwords_that_cannot_be_read_are_listed)
{
	const char *db = "roles_nopw";
	char *err = NULL;

	ck_assert(cluster_psql(&source, "postgres",
	                       "CREATE ROLE r3_app LOGIN PASSWORD 'app-secret'"));
	itest_make_db(&source, db, NULL);
	itest_make_db(&target, db, "migrator");
	ck_assert(cluster_psql(&source, db,
	                       "CREATE TABLE t (id int PRIMARY KEY);"
	                       "GRANT SELECT ON t TO r3_app, srclogin;"
	                       "INSERT INTO t VALUES (1)"));
	ck_assert_int_eq(run_sync(db, "srclogin", "migrator", &err), 0);
	assert_has(err, "were created without a password (the source login cannot read "
	                "pg_authid): set one with ALTER ROLE \"r3_app\" PASSWORD '...'");
	itest_assert_scalar(&target, "postgres",
	                    "SELECT rolcanlogin AND rolpassword IS NULL FROM pg_authid"
	                    " WHERE rolname = 'r3_app'", "t");
	free(err);
}
END_TEST

Suite *
roles_suite(void)
{
	Suite *s = suite_create("roles");
	TCase *tc = tcase_create("roles");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, roles_the_database_uses_are_created_with_their_memberships);
	tcase_add_test(tc, without_createrole_missing_roles_are_reported_and_the_run_goes_on);
	tcase_add_test(tc, passwords_that_cannot_be_read_are_listed);
	suite_add_tcase(s, tc);
	return s;
}
