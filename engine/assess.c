/*
 * engine/assess.c -- pre-migration checks (see assess.h).
 */
#include "engine/assess.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/pgconn.h"
#include "engine/json.h"

const char *
finding_severity_name(FindingSeverity s)
{
	switch (s)
	{
		case FINDING_BLOCKING:
			return "blocking";
		case FINDING_WARNING:
			return "warning";
		case FINDING_INFO:
			return "info";
	}
	return "unknown";
}

void
findings_init(Findings *f)
{
	memset(f, 0, sizeof(*f));
}

void
findings_term(Findings *f)
{
	free(f->items);
	memset(f, 0, sizeof(*f));
}

void
findings_add(Findings *f, FindingSeverity sev, const char *check,
			 const char *object, const char *fix, const char *fmt,...)
{
	Finding    *it;
	va_list		ap;

	if (f->count == f->cap)
	{
		int			cap = f->cap ? f->cap * 2 : 16;
		Finding    *n = realloc(f->items, (size_t) cap * sizeof(*n));

		if (n == NULL)
			return;
		f->items = n;
		f->cap = cap;
	}
	it = &f->items[f->count++];
	it->severity = sev;
	snprintf(it->check, sizeof(it->check), "%s", check);
	snprintf(it->object, sizeof(it->object), "%s", object ? object : "");
	snprintf(it->fix, sizeof(it->fix), "%s", fix ? fix : "");
	va_start(ap, fmt);
	vsnprintf(it->message, sizeof(it->message), fmt, ap);
	va_end(ap);
}

int
findings_count(const Findings *f, FindingSeverity sev)
{
	int			n = 0;

	for (int i = 0; i < f->count; i++)
		n += f->items[i].severity == sev;
	return n;
}

/* One row of scalar settings read from the source in a single query. */
typedef struct SourceFacts
{
	int			version;
	char		wal_level[16];
	int			max_slots;
	int			used_slots;
	int			max_senders;
	int			used_senders;
	bool		can_replicate;
	bool		is_superuser;
} SourceFacts;

static bool
read_source_facts(PGconn *src, SourceFacts *sf, SyncError *err)
{
	PGresult   *res = pgconn_query(src,
								   "SELECT current_setting('wal_level'),"
								   " current_setting('max_replication_slots')::int,"
								   " (SELECT count(*) FROM pg_catalog.pg_replication_slots),"
								   " current_setting('max_wal_senders')::int,"
								   " (SELECT count(*) FROM pg_catalog.pg_stat_replication),"
								   " r.rolreplication OR r.rolsuper, r.rolsuper"
								   " FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
								   0, NULL, err);

	if (res == NULL)
		return sync_error_context(err, "could not read source settings");
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INTERNAL, "could not read source role");
	}
	sf->version = PQserverVersion(src);
	snprintf(sf->wal_level, sizeof(sf->wal_level), "%s", PQgetvalue(res, 0, 0));
	sf->max_slots = atoi(PQgetvalue(res, 0, 1));
	sf->used_slots = atoi(PQgetvalue(res, 0, 2));
	sf->max_senders = atoi(PQgetvalue(res, 0, 3));
	sf->used_senders = atoi(PQgetvalue(res, 0, 4));
	sf->can_replicate = PQgetvalue(res, 0, 5)[0] == 't';
	sf->is_superuser = PQgetvalue(res, 0, 6)[0] == 't';
	PQclear(res);
	return true;
}

static void
check_versions(const SourceFacts *sf, PGconn *tgt, Findings *out)
{
	int			tv = PQserverVersion(tgt);

	if (sf->version < 100000)
		findings_add(out, FINDING_BLOCKING, "version", "source",
					 "upgrade the source to PostgreSQL 10 or later",
					 "source runs PostgreSQL %d.%d, which has no pgoutput plugin",
					 sf->version / 10000, sf->version / 100 % 100);
	if (tv / 10000 < sf->version / 10000)
		findings_add(out, FINDING_BLOCKING, "version", "target",
					 "use a target running the same or a newer major version",
					 "target major version %d is older than source major version %d",
					 tv / 10000, sf->version / 10000);
}

static void
check_source_settings(const SourceFacts *sf, const AssessOptions *o, Findings *out)
{
	int			need = o->resuming ? 0 : 1;

	if (strcmp(sf->wal_level, "logical") != 0)
		findings_add(out, FINDING_BLOCKING, "wal_level", "source",
					 "ALTER SYSTEM SET wal_level = logical; then restart the source "
					 "(on Azure: set the server parameter wal_level to LOGICAL and restart)",
					 "wal_level is \"%s\"; logical decoding needs \"logical\"",
					 sf->wal_level);
	if (sf->max_slots - sf->used_slots < need)
		findings_add(out, FINDING_BLOCKING, "max_replication_slots", "source",
					 "raise max_replication_slots (restart needed) or drop an unused slot",
					 "all %d replication slots are in use", sf->max_slots);
	if (sf->max_senders - sf->used_senders < 1 + need)
		findings_add(out, FINDING_BLOCKING, "max_wal_senders", "source",
					 "raise max_wal_senders (restart needed)",
					 "%d of %d WAL senders are in use; pgstream needs %d free",
					 sf->used_senders, sf->max_senders, 1 + need);
	if (!sf->can_replicate)
		findings_add(out, FINDING_BLOCKING, "replication_privilege", "source",
					 "ALTER ROLE <source login> WITH REPLICATION;",
					 "the source login has neither REPLICATION nor superuser");
}

static void
check_name_taken(PGconn *src, const AssessOptions *o, Findings *out)
{
	const char *params[1] = {o->slot_name};
	SyncError	err;
	PGresult   *res = pgconn_query(src, "SELECT 1 FROM pg_catalog.pg_replication_slots"
								   " WHERE slot_name = $1", 1, params, &err);

	if (res != NULL && PQntuples(res) > 0 && !o->resuming)
		findings_add(out, FINDING_BLOCKING, "slot_name", o->slot_name,
					 "choose another name with --slot, or drop the old slot: "
					 "SELECT pg_drop_replication_slot('<name>');",
					 "a replication slot named \"%s\" already exists on the source",
					 o->slot_name);
	PQclear(res);
	if (o->publication_name == NULL)
		return;
	params[0] = o->publication_name;
	res = pgconn_query(src, "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1",
					   1, params, &err);
	if (res != NULL && PQntuples(res) > 0 && !o->resuming)
		findings_add(out, FINDING_BLOCKING, "publication_name", o->publication_name,
					 "choose another name with --publication, or DROP PUBLICATION it",
					 "a publication named \"%s\" already exists on the source",
					 o->publication_name);
	PQclear(res);
}

static void
check_target(PGconn *tgt, Findings *out)
{
	SyncError	err;
	char		buf[8];

	if (pgconn_query_value(tgt, "SELECT has_database_privilege(current_database(), 'CREATE')",
						   0, NULL, buf, sizeof(buf), false, &err) && buf[0] != 't')
		findings_add(out, FINDING_BLOCKING, "target_privileges", "target",
					 "GRANT CREATE ON DATABASE <target db> TO <target login>;",
					 "the target login cannot create schemas in the target database");
}

bool
assess_run(PGconn *source, PGconn *target, const AssessOptions *opts,
		   Findings *out, SyncError *err)
{
	SourceFacts sf;

	if (!read_source_facts(source, &sf, err))
		return false;
	check_versions(&sf, target, out);
	check_source_settings(&sf, opts, out);
	check_name_taken(source, opts, out);
	check_target(target, out);
	return true;
}

static void
print_json(const Findings *f)
{
	JsonWriter	w;

	json_init(&w);
	json_begin_object(&w);
	json_key(&w, "findings");
	json_begin_array(&w);
	for (int i = 0; i < f->count; i++)
	{
		json_begin_object(&w);
		json_key(&w, "severity");
		json_string(&w, finding_severity_name(f->items[i].severity));
		json_key(&w, "check");
		json_string(&w, f->items[i].check);
		json_key(&w, "object");
		json_string(&w, f->items[i].object);
		json_key(&w, "message");
		json_string(&w, f->items[i].message);
		json_key(&w, "fix");
		json_string(&w, f->items[i].fix);
		json_end_object(&w);
	}
	json_end_array(&w);
	json_end_object(&w);
	if (!w.oom)
		puts(w.data);
	json_term(&w);
}

void
findings_print(const Findings *f, bool json)
{
	if (json)
	{
		print_json(f);
		return;
	}
	for (int i = 0; i < f->count; i++)
	{
		const Finding *it = &f->items[i];

		fprintf(stderr, "%-8s %s%s%s%s: %s\n", finding_severity_name(it->severity),
				it->check, it->object[0] ? " (" : "", it->object,
				it->object[0] ? ")" : "", it->message);
		if (it->fix[0])
			fprintf(stderr, "         fix: %s\n", it->fix);
	}
}
