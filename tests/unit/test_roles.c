/*
 * tests/unit/test_roles.c -- roles_plan() (engine/roles.c): what is created
 * on the target, which attributes a non-superuser login may give on each
 * major, which memberships are granted, what is reported.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/roles.h"
#include "tests/unit/suites.h"

static RoleDef
role(const char *name, bool login)
{
	RoleDef r;

	memset(&r, 0, sizeof(r));
	strcpy(r.name, name);
	r.login = login;
	r.inherit = true;
	r.connlimit = -1;
	return r;
}

START_TEST(missing_roles_are_created_with_what_the_login_may_give)
{
	RoleDef roles[3];
	RoleMembership m[2] = {{"grp", "app", true}, {"grp", "old", false}};
	RoleSet set;
	RolePlan p;

	roles[0] = role("app", true);
	roles[0].replication = roles[0].bypassrls = roles[0].createdb = true;
	roles[0].connlimit = 5;
	roles[0].password = (char *) "SCRAM-SHA-256$4096:x'y";
	roles[1] = role("grp", false);
	roles[1].inherit = false;
	roles[2] = role("old", true);
	roles[2].on_target = true;
	memset(&set, 0, sizeof(set));
	set.roles = roles;
	set.nroles = 3;
	set.members = m;
	set.nmembers = 2;
	set.login.version = 150000;
	set.login.createrole = true;

	{
		static RoleSetting st[2] = {{"app", (char *) "work_mem", (char *) "8MB"},
		                            {"old", (char *) "work_mem", (char *) "9MB"}};

		set.settings = st;
		set.nsettings = 2;
	}
	roles_plan(&set, &p);
	ck_assert(!p.oom);
	/* only the created role's settings; the existing role is left alone */
	ck_assert_int_eq(p.nsettings, 1);
	ck_assert_int_eq(p.settings[0], 0);
	ck_assert_int_eq(p.nsql, 4);
	ck_assert_str_eq(p.sql[0], "CREATE ROLE \"app\" WITH LOGIN INHERIT CREATEDB CONNECTION "
	                           "LIMIT 5 PASSWORD E'SCRAM-SHA-256$4096:x''y'");
	ck_assert_str_eq(p.sql[1], "CREATE ROLE \"grp\" WITH NOLOGIN NOINHERIT");
	ck_assert_str_eq(p.sql[2], "GRANT \"grp\" TO \"app\" WITH ADMIN OPTION");
	/* grp is created here, so its membership with an existing role is too */
	ck_assert_str_eq(p.sql[3], "GRANT \"grp\" TO \"old\"");
	ck_assert_int_eq(p.ncreated, 2);
	ck_assert_int_eq(p.nexisting, 1);
	ck_assert_str_eq(p.existing[0], "old");
	ck_assert_int_eq(p.ndropped, 1);
	ck_assert_str_eq(p.dropped[0], "role \"app\" was created without REPLICATION, BYPASSRLS");
	ck_assert_int_eq(p.nneed_password, 0);
	roles_plan_term(&p);

	/* 16+: CREATEDB, REPLICATION and BYPASSRLS only if the login has them */
	set.login.version = 160000;
	set.login.replication = true;
	roles_plan(&set, &p);
	ck_assert_str_eq(p.sql[0], "CREATE ROLE \"app\" WITH LOGIN INHERIT REPLICATION CONNECTION "
	                           "LIMIT 5 PASSWORD E'SCRAM-SHA-256$4096:x''y'");
	ck_assert_str_eq(p.dropped[0], "role \"app\" was created without CREATEDB, BYPASSRLS");
	roles_plan_term(&p);

	/* a superuser login gives everything */
	set.login.super = true;
	roles[0].super = true;
	roles[0].password = NULL;
	roles_plan(&set, &p);
	ck_assert_str_eq(p.sql[0], "CREATE ROLE \"app\" WITH LOGIN INHERIT SUPERUSER CREATEDB "
	                           "REPLICATION BYPASSRLS CONNECTION LIMIT 5");
	ck_assert_int_eq(p.ndropped, 0);
	ck_assert_int_eq(p.nneed_password, 1);
	ck_assert_str_eq(p.need_password[0], "ALTER ROLE \"app\" PASSWORD '...'");
	roles_plan_term(&p);
}
END_TEST

START_TEST(without_createrole_nothing_is_run_and_missing_roles_are_named)
{
	RoleDef roles[2];
	RoleMembership m[1] = {{"a\"b", "c", false}};
	RoleSet set;
	RolePlan p;

	roles[0] = role("a\"b", false);
	roles[1] = role("c", true);
	roles[1].on_target = true;
	memset(&set, 0, sizeof(set));
	set.roles = roles;
	set.nroles = 2;
	set.members = m;
	set.nmembers = 1;
	set.login.version = 150000;

	roles_plan(&set, &p);
	ck_assert_int_eq(p.nsql, 0);
	ck_assert_int_eq(p.ncannot_create, 1);
	ck_assert_str_eq(p.cannot_create[0], "a\"b");
	ck_assert_int_eq(p.nexisting, 1);
	roles_plan_term(&p);

	/* names are quoted */
	set.login.createrole = true;
	roles_plan(&set, &p);
	ck_assert_int_eq(p.nsql, 2);
	ck_assert_str_eq(p.sql[0], "CREATE ROLE \"a\"\"b\" WITH NOLOGIN INHERIT");
	ck_assert_str_eq(p.sql[1], "GRANT \"a\"\"b\" TO \"c\"");
	roles_plan_term(&p);
}
END_TEST

Suite *
roles_suite(void)
{
	Suite *s = suite_create("roles");
	TCase *tc = tcase_create("plan");

	tcase_add_test(tc, missing_roles_are_created_with_what_the_login_may_give);
	tcase_add_test(tc, without_createrole_nothing_is_run_and_missing_roles_are_named);
	suite_add_tcase(s, tc);
	return s;
}
