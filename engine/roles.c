/*
 * engine/roles.c -- the roles a database uses, created on the target (see
 * roles.h).
 */
#include "engine/roles.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/pgconn.h"
#include "apply/sqlbuild.h"
#include "engine/log.h"

/*
 * Roles the current database uses: what pg_shdepend records for its objects
 * (owners, grantees, policies, default privileges; not publications, which
 * are not migrated and include pgstream's own), its owner, roles with
 * settings in it, and the members of each of those, recursively.
 */
#define USED_ROLES_CTE \
	"WITH RECURSIVE db AS (SELECT oid, datdba FROM pg_catalog.pg_database" \
	"  WHERE datname = pg_catalog.current_database())," \
	" used(oid) AS (" \
	"  SELECT d.refobjid FROM pg_catalog.pg_shdepend d, db" \
	"   WHERE d.dbid = db.oid AND d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass" \
	"   AND d.classid <> 'pg_catalog.pg_publication'::pg_catalog.regclass" \
	"  UNION SELECT datdba FROM db" \
	"  UNION SELECT s.setrole FROM pg_catalog.pg_db_role_setting s, db" \
	"   WHERE s.setdatabase = db.oid AND s.setrole <> 0" \
	"  UNION SELECT m.member FROM pg_catalog.pg_auth_members m JOIN used u ON m.roleid = u.oid)," \
	" r AS (SELECT * FROM pg_catalog.pg_roles WHERE oid IN (SELECT oid FROM used)" \
	"  AND rolname !~ '^pg_')"

static const char source_roles_sql[] =
	USED_ROLES_CTE
	" SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,"
	" rolreplication, rolbypassrls, rolconnlimit, coalesce(rolvaliduntil::text, '')"
	" FROM r ORDER BY rolname";	/* name sorts bytewise; COLLATE on name needs 12 */

static const char source_members_sql[] =
	USED_ROLES_CTE
	" SELECT g.rolname, m.rolname, pg_catalog.bool_or(am.admin_option)"
	" FROM pg_catalog.pg_auth_members am JOIN r g ON g.oid = am.roleid"
	" JOIN r m ON m.oid = am.member GROUP BY 1, 2 ORDER BY 1, 2";

static const char source_passwords_sql[] =
	USED_ROLES_CTE
	" SELECT a.rolname, a.rolpassword FROM pg_catalog.pg_authid a"
	" WHERE a.oid IN (SELECT oid FROM r) AND a.rolpassword IS NOT NULL";

static const char source_settings_sql[] =
	USED_ROLES_CTE
	" SELECT r.rolname, split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)"
	" FROM pg_catalog.pg_db_role_setting s JOIN r ON r.oid = s.setrole, db,"
	" LATERAL pg_catalog.unnest(s.setconfig) AS c"
	" WHERE s.setdatabase = db.oid ORDER BY 1, 2";

static const char target_login_sql[] =
	"SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,"
	" pg_catalog.current_setting('server_version_num')::int"
	" FROM pg_catalog.pg_roles WHERE rolname = current_user";

static bool
is_t(const PGresult *res, int row, int col)
{
	return PQgetvalue(res, row, col)[0] == 't';
}

static RoleDef *
find_role(const RoleSet *set, const char *name)
{
	for (int i = 0; i < set->nroles; i++)
		if (strcmp(set->roles[i].name, name) == 0)
			return &set->roles[i];
	return NULL;
}

bool
roles_read_source(PGconn *src, RoleSet *set, SyncError *err)
{
	PGresult   *res;
	SyncError	perr;

	memset(set, 0, sizeof(*set));
	if ((res = pgconn_query(src, source_roles_sql, 0, NULL, err)) == NULL)
		return sync_error_context(err, "could not read the roles the source database uses");
	set->roles = calloc((size_t) PQntuples(res) + 1, sizeof(RoleDef));
	if (set->roles == NULL)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		RoleDef    *r = &set->roles[set->nroles++];

		snprintf(r->name, sizeof(r->name), "%s", PQgetvalue(res, i, 0));
		r->super = is_t(res, i, 1);
		r->inherit = is_t(res, i, 2);
		r->createrole = is_t(res, i, 3);
		r->createdb = is_t(res, i, 4);
		r->login = is_t(res, i, 5);
		r->replication = is_t(res, i, 6);
		r->bypassrls = is_t(res, i, 7);
		r->connlimit = (int) strtol(PQgetvalue(res, i, 8), NULL, 10);
		snprintf(r->valid_until, sizeof(r->valid_until), "%s", PQgetvalue(res, i, 9));
	}
	PQclear(res);
	if ((res = pgconn_query(src, source_members_sql, 0, NULL, err)) == NULL)
		return sync_error_context(err, "could not read the source's role memberships");
	set->members = calloc((size_t) PQntuples(res) + 1, sizeof(RoleMembership));
	if (set->members == NULL)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		RoleMembership *m = &set->members[set->nmembers++];

		snprintf(m->role, sizeof(m->role), "%s", PQgetvalue(res, i, 0));
		snprintf(m->member, sizeof(m->member), "%s", PQgetvalue(res, i, 1));
		m->admin = is_t(res, i, 2);
	}
	PQclear(res);
	if ((res = pgconn_query(src, source_settings_sql, 0, NULL, err)) == NULL)
		return sync_error_context(err, "could not read the source's role settings");
	set->settings = calloc((size_t) PQntuples(res) + 1, sizeof(RoleSetting));
	if (set->settings == NULL)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		RoleSetting *st = &set->settings[set->nsettings++];

		snprintf(st->role, sizeof(st->role), "%s", PQgetvalue(res, i, 0));
		st->name = strdup(PQgetvalue(res, i, 1));
		st->value = strdup(PQgetvalue(res, i, 2));
		if (st->name == NULL || st->value == NULL)
		{
			PQclear(res);
			return sync_error_set(err, SYNC_ERR_INTERNAL, "out of memory");
		}
	}
	PQclear(res);
	/* only a superuser may read pg_authid: otherwise no password moves */
	sync_error_clear(&perr);
	res = pgconn_query(src, source_passwords_sql, 0, NULL, &perr);
	if (res == NULL && strcmp(perr.sqlstate, "42501") != 0)
	{
		*err = perr;
		return sync_error_context(err, "could not read the source's role passwords");
	}
	set->passwords_read = res != NULL;
	for (int i = 0; res != NULL && i < PQntuples(res); i++)
	{
		RoleDef    *r = find_role(set, PQgetvalue(res, i, 0));

		if (r != NULL && (r->password = strdup(PQgetvalue(res, i, 1))) == NULL)
		{
			PQclear(res);
			return sync_error_set(err, SYNC_ERR_INTERNAL, "out of memory");
		}
	}
	PQclear(res);
	return true;
}

bool
roles_read_target(PGconn *tgt, RoleSet *set, SyncError *err)
{
	PGresult   *res = pgconn_query(tgt, target_login_sql, 0, NULL, err);

	if (res == NULL)
		return sync_error_context(err, "could not read the target login's attributes");
	if (PQntuples(res) == 1)
	{
		set->login.super = is_t(res, 0, 0);
		set->login.createrole = is_t(res, 0, 1);
		set->login.createdb = is_t(res, 0, 2);
		set->login.replication = is_t(res, 0, 3);
		set->login.bypassrls = is_t(res, 0, 4);
		set->login.version = (int) strtol(PQgetvalue(res, 0, 5), NULL, 10);
	}
	PQclear(res);
	if ((res = pgconn_query(tgt, "SELECT rolname FROM pg_catalog.pg_roles", 0, NULL, err)) == NULL)
		return sync_error_context(err, "could not read the target's roles");
	for (int i = 0; i < PQntuples(res); i++)
	{
		RoleDef    *r = find_role(set, PQgetvalue(res, i, 0));

		if (r != NULL)
			r->on_target = true;
	}
	PQclear(res);
	return true;
}

/* ---- the plan (pure) ---- */

static char *
dup_or_oom(RolePlan *p, const char *s)
{
	char	   *d = strdup(s);

	if (d == NULL)
		p->oom = true;
	return d;
}

static void
push(RolePlan *p, char ***list, int *n, char *item)
{
	char	  **grown;

	if (item == NULL)
	{
		p->oom = true;
		return;
	}
	grown = realloc(*list, (size_t) (*n + 1) * sizeof(char *));
	if (grown == NULL)
	{
		free(item);
		p->oom = true;
		return;
	}
	*list = grown;
	(*list)[(*n)++] = item;
}

static void
push_sql(RolePlan *p, char *sql, const char *what)
{
	const char **w = realloc(p->what, (size_t) (p->nsql + 1) * sizeof(char *));

	if (w == NULL || sql == NULL)
	{
		free(sql);
		if (w != NULL)
			p->what = w;
		p->oom = true;
		return;
	}
	p->what = w;
	push(p, &p->sql, &p->nsql, sql);
	if (!p->oom)
		p->what[p->nsql - 1] = what;
}

/* A string literal that reads the same whatever standard_conforming_strings. */
static void
add_literal(StrBuf *s, const char *v)
{
	char		one[2] = {0, 0};

	strbuf_add(s, "E'");
	for (; *v; v++)
	{
		if (*v == '\'' || *v == '\\')
			strbuf_add(s, *v == '\'' ? "'" : "\\");
		one[0] = *v;
		strbuf_add(s, one);
	}
	strbuf_add(s, "'");
}

static void
add_ident(StrBuf *s, const char *name)
{
	char	   *q = sql_quote_ident(name);

	if (q == NULL)
		s->oom = true;
	else
		strbuf_add(s, q);
	free(q);
}

/* May the target login give this attribute to a role it creates? */
static bool
may_give(const RoleTargetLogin *l, char attr)
{
	if (l->super)
		return true;
	switch (attr)
	{
		case 'S':				/* SUPERUSER */
			return false;
		case 'D':				/* CREATEDB: CREATEROLE sufficed before 16 */
			return l->version < 160000 ? l->createrole : l->createdb;
		case 'R':				/* REPLICATION */
			return l->version >= 160000 && l->replication;
		case 'B':				/* BYPASSRLS */
			return l->version >= 160000 && l->bypassrls;
		default:				/* CREATEROLE, LOGIN, INHERIT, ... */
			return l->createrole;
	}
}

static void
plan_create(const RoleSet *set, const RoleDef *r, RolePlan *p)
{
	static const struct
	{
		char		code;
		const char *word;
		size_t		offset;
	}			attrs[] = {
		{'S', "SUPERUSER", offsetof(RoleDef, super)},
		{'D', "CREATEDB", offsetof(RoleDef, createdb)},
		{'C', "CREATEROLE", offsetof(RoleDef, createrole)},
		{'R', "REPLICATION", offsetof(RoleDef, replication)},
		{'B', "BYPASSRLS", offsetof(RoleDef, bypassrls)},
	};
	StrBuf		s = {0};
	StrBuf		dropped = {0};
	char		num[32];

	strbuf_add(&s, "CREATE ROLE ");
	add_ident(&s, r->name);
	strbuf_add(&s, r->login ? " WITH LOGIN" : " WITH NOLOGIN");
	strbuf_add(&s, r->inherit ? " INHERIT" : " NOINHERIT");
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
	{
		if (!*(const bool *) ((const char *) r + attrs[i].offset))
			continue;
		if (may_give(&set->login, attrs[i].code))
		{
			strbuf_add(&s, " ");
			strbuf_add(&s, attrs[i].word);
		}
		else
		{
			strbuf_add(&dropped, dropped.len ? ", " : "");
			strbuf_add(&dropped, attrs[i].word);
		}
	}
	if (r->connlimit >= 0)
	{
		snprintf(num, sizeof(num), " CONNECTION LIMIT %d", r->connlimit);
		strbuf_add(&s, num);
	}
	if (r->valid_until[0])
	{
		strbuf_add(&s, " VALID UNTIL ");
		add_literal(&s, r->valid_until);
	}
	if (r->password != NULL)
	{
		strbuf_add(&s, " PASSWORD ");
		add_literal(&s, r->password);
	}
	if (s.oom || dropped.oom)
		p->oom = true;
	push_sql(p, s.oom ? NULL : s.p, r->name);
	if (s.oom)
		free(s.p);
	push(p, &p->created, &p->ncreated, dup_or_oom(p, r->name));
	if (dropped.len > 0)
	{
		StrBuf		line = {0};

		strbuf_add(&line, "role ");
		add_ident(&line, r->name);
		strbuf_add(&line, " was created without ");
		strbuf_add(&line, dropped.p);
		push(p, &p->dropped, &p->ndropped, line.oom ? NULL : line.p);
		if (line.oom)
			free(line.p);
	}
	free(dropped.p);
	if (r->login && r->password == NULL)
	{
		StrBuf		line = {0};

		strbuf_add(&line, "ALTER ROLE ");
		add_ident(&line, r->name);
		strbuf_add(&line, " PASSWORD '...'");
		push(p, &p->need_password, &p->nneed_password, line.oom ? NULL : line.p);
		if (line.oom)
			free(line.p);
	}
}

void
roles_plan(const RoleSet *set, RolePlan *p)
{
	bool		can_create = set->login.super || set->login.createrole;

	memset(p, 0, sizeof(*p));
	for (int i = 0; i < set->nroles; i++)
	{
		const RoleDef *r = &set->roles[i];

		if (r->on_target)
			push(p, &p->existing, &p->nexisting, dup_or_oom(p, r->name));
		else if (!can_create)
			push(p, &p->cannot_create, &p->ncannot_create, dup_or_oom(p, r->name));
		else
			plan_create(set, r, p);
	}
	/* settings of the roles created here (existing ones stay as they are) */
	for (int i = 0; i < set->nsettings && can_create; i++)
	{
		const RoleDef *r = find_role(set, set->settings[i].role);
		int		   *grown;

		if (r == NULL || r->on_target)
			continue;
		grown = realloc(p->settings, (size_t) (p->nsettings + 1) * sizeof(int));
		if (grown == NULL)
		{
			p->oom = true;
			break;
		}
		p->settings = grown;
		p->settings[p->nsettings++] = i;
	}
	/* memberships that involve a role created here (existing ones stay as they are) */
	for (int i = 0; i < set->nmembers && can_create; i++)
	{
		const RoleMembership *m = &set->members[i];
		const RoleDef *g = find_role(set, m->role);
		const RoleDef *u = find_role(set, m->member);
		StrBuf		s = {0};

		if (g == NULL || u == NULL || (g->on_target && u->on_target))
			continue;
		strbuf_add(&s, "GRANT ");
		add_ident(&s, m->role);
		strbuf_add(&s, " TO ");
		add_ident(&s, m->member);
		if (m->admin)
			strbuf_add(&s, " WITH ADMIN OPTION");
		push_sql(p, s.oom ? NULL : s.p, m->member);
		if (s.oom)
			free(s.p);
	}
}

static void
free_list(char **list, int n)
{
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void
roles_plan_term(RolePlan *p)
{
	free_list(p->sql, p->nsql);
	free(p->what);
	free(p->settings);
	free_list(p->created, p->ncreated);
	free_list(p->existing, p->nexisting);
	free_list(p->dropped, p->ndropped);
	free_list(p->need_password, p->nneed_password);
	free_list(p->cannot_create, p->ncannot_create);
	memset(p, 0, sizeof(*p));
}

void
roles_set_term(RoleSet *set)
{
	for (int i = 0; i < set->nroles; i++)
		free(set->roles[i].password);
	free(set->roles);
	free(set->members);
	for (int i = 0; i < set->nsettings; i++)
	{
		free(set->settings[i].name);
		free(set->settings[i].value);
	}
	free(set->settings);
	memset(set, 0, sizeof(*set));
}

/* ---- applying and reporting ---- */

/* "a, b, c" of a list into buf (cut with "..." when long). */
static const char *
join(char *const *list, int n, char *buf, size_t size)
{
	size_t		len = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && len + 4 < size; i++)
		len += (size_t) snprintf(buf + len, size - len, "%s%s", i ? ", " : "", list[i]);
	if (len >= size)
		snprintf(buf + size - 4, 4, "...");
	return buf;
}

/* One role setting, in a transaction of its own (see roles.h). */
static bool
apply_setting(PGconn *tgt, const RoleSetting *st, SyncError *e)
{
	const char *params[2] = {st->name, st->value};
	StrBuf		s = {0};
	PGresult   *res;
	bool		ok;

	strbuf_add(&s, "ALTER ROLE ");
	add_ident(&s, st->role);
	strbuf_add(&s, " IN DATABASE ");
	add_ident(&s, PQdb(tgt));
	strbuf_add(&s, " SET ");
	add_ident(&s, st->name);
	strbuf_add(&s, " FROM CURRENT");
	if (s.oom)
	{
		free(s.p);
		return sync_error_set(e, SYNC_ERR_INTERNAL, "out of memory");
	}
	ok = pgconn_exec(tgt, "BEGIN", e);
	if (ok && (res = pgconn_query(tgt, "SELECT pg_catalog.set_config($1, $2, true)", 2,
								  params, e)) != NULL)
		PQclear(res);
	else
		ok = false;
	ok = ok && pgconn_exec(tgt, s.p, e) && pgconn_exec(tgt, "COMMIT", e);
	if (!ok && PQstatus(tgt) == CONNECTION_OK)
		PQclear(PQexec(tgt, "ROLLBACK"));
	free(s.p);
	return ok;
}

bool
roles_apply(PGconn *tgt, const RoleSet *set, const RolePlan *plan, char **failed,
			SyncError *err)
{
	StrBuf		names = {0};

	*failed = NULL;
	for (int i = 0; i < plan->nsql; i++)
	{
		SyncError	e;

		sync_error_clear(&e);
		if (pgconn_exec(tgt, plan->sql[i], &e))
			continue;
		if (PQstatus(tgt) != CONNECTION_OK)
		{
			*err = e;
			free(names.p);
			return sync_error_context(err, "could not create role \"%s\" on the target",
									  plan->what[i]);
		}
		/* the statement holds a password hash: name the role, not the SQL */
		log_warn("could not create or grant role \"%s\" on the target: %s", plan->what[i],
				 e.message);
		strbuf_add(&names, names.len ? ", " : "");
		strbuf_add(&names, plan->what[i]);
	}
	for (int i = 0; i < plan->nsettings; i++)
	{
		const RoleSetting *st = &set->settings[plan->settings[i]];
		SyncError	e;

		sync_error_clear(&e);
		if (apply_setting(tgt, st, &e))
			continue;
		if (PQstatus(tgt) != CONNECTION_OK)
		{
			*err = e;
			free(names.p);
			return sync_error_context(err, "could not set %s for role \"%s\" on the target",
									  st->name, st->role);
		}
		log_warn("could not set %s for role \"%s\" in the target database: %s", st->name,
				 st->role, e.message);
		strbuf_add(&names, names.len ? ", " : "");
		strbuf_add(&names, st->role);
	}
	*failed = names.p;
	return true;
}

void
roles_report(const RolePlan *plan)
{
	char		buf[2048];

	if (plan->ncreated > 0)
		log_info("created %d role(s) the source database uses: %s", plan->ncreated,
				 join(plan->created, plan->ncreated, buf, sizeof(buf)));
	if (plan->nsettings > 0)
		log_info("set %d setting(s) of those roles in the target database", plan->nsettings);
	if (plan->nexisting > 0)
		log_info("%d role(s) the source database uses exist on the target and are used as "
				 "they are: %s", plan->nexisting,
				 join(plan->existing, plan->nexisting, buf, sizeof(buf)));
	for (int i = 0; i < plan->ndropped; i++)
		log_warn("%s (the target login may not give them)", plan->dropped[i]);
	if (plan->nneed_password > 0)
		log_warn("%d login role(s) were created without a password (the source login cannot "
				 "read pg_authid): set one with %s", plan->nneed_password,
				 join(plan->need_password, plan->nneed_password, buf, sizeof(buf)));
	if (plan->ncannot_create > 0)
		log_warn("%d role(s) the source database uses are missing on the target and the "
				 "target login may not create roles (no CREATEROLE): %s; create them, or "
				 "ALTER ROLE <target login> CREATEROLE", plan->ncannot_create,
				 join(plan->cannot_create, plan->ncannot_create, buf, sizeof(buf)));
}

bool
roles_sync(PGconn *src, PGconn *tgt, SyncError *err)
{
	RoleSet		set;
	RolePlan	plan;
	char	   *failed = NULL;
	bool		ok;

	ok = roles_read_source(src, &set, err) && roles_read_target(tgt, &set, err);
	if (!ok)
	{
		roles_set_term(&set);
		return false;
	}
	roles_plan(&set, &plan);
	if (plan.oom)
		ok = sync_error_set(err, SYNC_ERR_INTERNAL, "out of memory");
	else if ((ok = roles_apply(tgt, &set, &plan, &failed, err)))
	{
		roles_report(&plan);
		if (failed != NULL)
			log_warn("roles not created or granted as on the source: %s", failed);
	}
	free(failed);
	roles_plan_term(&plan);
	roles_set_term(&set);
	return ok;
}
