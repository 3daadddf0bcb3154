/*
 * engine/roles.h -- the roles a database uses, created on the target.
 *
 * Roles are per server, not per database, so pg_dump of one database does
 * not carry them: after a migration the application's roles would not exist
 * on the target.  pgstream carries every role the source database uses --
 * owners, grantees, roles in policies and default privileges (pg_shdepend
 * records each), the database's owner, roles with settings in it -- and
 * every role that is a member of one of those (the login roles of a group),
 * with the memberships among them.
 *
 * Within what a non-superuser target login may do (Azure): a role missing on
 * the target is created (CREATEROLE needed), with its settings in this
 * database (ALTER ROLE ... IN DATABASE ... SET); one that exists is used as
 * it is.  Attributes the login may not give (SUPERUSER; REPLICATION and
 * BYPASSRLS unless superuser, or on 16+ unless it has them; CREATEDB on 16+
 * unless it has it) are left out and reported by role.  A password moves as
 * its hash when the source login can read pg_authid (superuser); otherwise
 * the report lists the login roles that need one, with the command.
 *
 *   RoleSet set;
 *   roles_read_source(src, &set, &err);     what the database uses
 *   roles_read_target(tgt, &set, &err);     what exists, what the login may
 *   roles_plan(&set, &plan);                pure: statements and the report
 *   roles_apply(tgt, &plan, &err);          run them; failures are reported
 */
#ifndef PGSTREAM_ENGINE_ROLES_H
#define PGSTREAM_ENGINE_ROLES_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "protocol/error.h"

#define ROLE_NAME_MAX 64		/* NAMEDATALEN */

typedef struct RoleDef
{
	char		name[ROLE_NAME_MAX];
	bool		super,
				inherit,
				createrole,
				createdb,
				login,
				replication,
				bypassrls;
	int			connlimit;		/* -1: none */
	char		valid_until[64];	/* "" or a timestamptz as text */
	char	   *password;		/* hash from pg_authid, or NULL (owned) */
	bool		on_target;		/* a role of that name exists there */
} RoleDef;

typedef struct RoleMembership
{
	char		role[ROLE_NAME_MAX];
	char		member[ROLE_NAME_MAX];
	bool		admin;
} RoleMembership;

/* ALTER ROLE role IN DATABASE <this one> SET name = value, on the source. */
typedef struct RoleSetting
{
	char		role[ROLE_NAME_MAX];
	char	   *name;			/* owned */
	char	   *value;			/* owned; as pg_db_role_setting holds it */
} RoleSetting;

/* What the target login may give (read from the target). */
typedef struct RoleTargetLogin
{
	int			version;		/* server_version_num */
	bool		super,
				createrole,
				createdb,
				replication,
				bypassrls;
} RoleTargetLogin;

typedef struct RoleSet
{
	RoleDef    *roles;			/* sorted by name */
	int			nroles;
	RoleMembership *members;
	int			nmembers;
	RoleSetting *settings;
	int			nsettings;
	bool		passwords_read;	/* the source login could read pg_authid */
	RoleTargetLogin login;
} RoleSet;

typedef struct RolePlan
{
	char	  **sql;			/* statements to run on the target, in order */
	const char **what;			/* per statement: the role it is for */
	int			nsql;
	int		   *settings;		/* indexes into RoleSet.settings to apply */
	int			nsettings;
	/* the report, one line each (malloc'd) */
	char	  **created;		/* roles the plan creates */
	int			ncreated;
	char	  **existing;		/* used as they are */
	int			nexisting;
	char	  **dropped;		/* "role "r" was created without ATTR, ATTR" */
	int			ndropped;
	char	  **need_password;	/* login roles created without one */
	int			nneed_password;
	char	  **cannot_create;	/* missing, and the login may not create roles */
	int			ncannot_create;
	bool		oom;
} RolePlan;

bool		roles_read_source(PGconn *src, RoleSet *set, SyncError *err);
bool		roles_read_target(PGconn *tgt, RoleSet *set, SyncError *err);

/* Pure: what to run on the target and what to report.  Free with
 * roles_plan_term. */
void		roles_plan(const RoleSet *set, RolePlan *plan);

/*
 * Run the plan, then the role settings it chose (each as set_config() of the
 * stored value and ALTER ROLE ... IN DATABASE ... SET ... FROM CURRENT, so a
 * list such as a search_path keeps its elements).  A statement that fails is
 * a warning (the role is then named in *failed, malloc'd, NULL if none).
 * False only if the target is lost.
 */
bool		roles_apply(PGconn *tgt, const RoleSet *set, const RolePlan *plan, char **failed,
						SyncError *err);

/* Log the report (info and warning lines). */
void		roles_report(const RolePlan *plan);

void		roles_plan_term(RolePlan *plan);
void		roles_set_term(RoleSet *set);

/* read, plan, apply and report in one step (sync's schema phase). */
bool		roles_sync(PGconn *src, PGconn *tgt, SyncError *err);

#endif							/* PGSTREAM_ENGINE_ROLES_H */
