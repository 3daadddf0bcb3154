/*
 * engine/cmd/verify.c -- "pgstream verify": options, help and the report of
 * engine/verify.c (what is compared, and how, is described there).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/statesql.h"
#include "engine/cli.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/verify.h"

/* privilege notes printed in the text report; --json lists all */
#define TEXT_NOTES_MAX 5

static const char verify_help[] =
	"Usage: pgstream verify --source CONNINFO --target CONNINFO [OPTIONS]\n"
	"\n"
	"Prove that a migration arrived: compare the source and the target, and\n"
	"list every difference.  Both sides are only read.\n"
	"\n"
	"Schema: every object of the source (tables, columns, types, functions,\n"
	"constraints, indexes, triggers, rules, policies, views, sequences,\n"
	"operators, casts, collations, text search objects, extensions, foreign\n"
	"servers, statistics objects, ...), by identity, must be on the target and\n"
	"nothing else; columns (type, not null, default, identity, generated),\n"
	"constraints, indexes, triggers, rules, policies, views and domains must be\n"
	"defined alike.  Objects of the system schemas, members of extensions and\n"
	"pgstream's state schema are left out.  Differences pgstream makes on\n"
	"purpose are listed as expected and do not fail: publications and\n"
	"subscriptions, event triggers and default privileges are not migrated;\n"
	"other owners and grants are a note (pgstream does not migrate them).\n"
	"\n"
	"Data: every table (partitions, inheritance parents' own rows, populated\n"
	"materialized views; not foreign tables) must have the same number of rows\n"
	"and the same digest on both sides.  The digest does not depend on row\n"
	"order nor on column order, and counts duplicate rows.  Tables estimated\n"
	"above --chunk-rows rows with a primary key are cut into key ranges; the\n"
	"work is shared by --jobs sessions per side, which read one snapshot\n"
	"(REPEATABLE READ).  Progress is shown on stderr.\n"
	"\n"
	"Options:\n"
	"  --source CONNINFO   source database (libpq string or URI)\n"
	"  --target CONNINFO   target database\n"
	"  --schema            compare the schema only\n"
	"  --data              compare the data only (neither: both)\n"
	"  --jobs N            sessions per side for the data (default 2, 1-64)\n"
	"  --chunk-rows N      cut tables estimated above N rows into key ranges of\n"
	"                      about N rows (default 1000000)\n"
	"  --json              print one JSON document on stdout\n"
	"  --quiet             no progress on stderr\n"
	"  --state-schema NAME\n"
	"                      pgstream's state schema, left out of the comparison\n"
	"                      (default \"pgstream\")\n"
	"  --help              show this help\n"
	"\n"
	"Exit codes: 0 everything matches (expected differences allowed), 1 a\n"
	"difference was found or the comparison failed, 3 usage error, 4 could\n"
	"not connect.\n";

static int
parse_options(int argc, char **argv, VerifyOptions *o, bool *json)
{
	static const struct option longopts[] = {
		{"source", required_argument, NULL, 's'},
		{"target", required_argument, NULL, 't'},
		{"schema", no_argument, NULL, 'S'},
		{"data", no_argument, NULL, 'D'},
		{"jobs", required_argument, NULL, 'j'},
		{"chunk-rows", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'J'},
		{"quiet", no_argument, NULL, 'q'},
		{"state-schema", required_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *state_schema = STATE_SCHEMA_DEFAULT;
	long		v;
	int			c;

	memset(o, 0, sizeof(*o));
	o->jobs = 2;
	o->chunk_rows = 1000000;
	o->command = "pgstream verify";
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		if (c == 's')
			o->source = optarg;
		else if (c == 't')
			o->target = optarg;
		else if (c == 'S')
			o->schema = true;
		else if (c == 'D')
			o->data = true;
		else if (c == 'J')
			*json = true;
		else if (c == 'q')
			o->quiet = true;
		else if (c == 'x')
			state_schema = optarg;
		else if (c == 'j')
		{
			if (!cli_parse_int(optarg, 1, 64, &v))
				return fputs("pgstream verify: --jobs must be 1 to 64\n", stderr), EXIT_USAGE;
			o->jobs = (int) v;
		}
		else if (c == 'c')
		{
			if (!cli_parse_int(optarg, 1, 1000000000000L, &v))
				return fputs("pgstream verify: --chunk-rows must be a positive number\n",
							 stderr), EXIT_USAGE;
			o->chunk_rows = v;
		}
		else if (c == 'h')
			return fputs(verify_help, stdout), -1;
		else
			return fputs("Try \"pgstream verify --help\".\n", stderr), EXIT_USAGE;
	}
	if (!o->source || !o->target || optind < argc)
		return fputs("pgstream verify: --source and --target are required\n", stderr), EXIT_USAGE;
	if (!o->schema && !o->data)
		o->schema = o->data = true;
	if (!cli_use_state_schema("verify", state_schema))
		return EXIT_USAGE;
	return EXIT_OK;
}

static const VerifyObject *
diff_object(const VerifyDiff *d)
{
	return d->source ? d->source : d->target;
}

/* "missing on the target: function public.f(integer)" */
static void
print_diff(const VerifyDiff *d, const char *prefix)
{
	const VerifyObject *ob = diff_object(d);

	switch (d->kind)
	{
		case VERIFY_DIFF_MISSING:
			printf("  %smissing on the target: %s %s", prefix, ob->type, ob->identity);
			break;
		case VERIFY_DIFF_EXTRA:
			printf("  %sextra on the target: %s %s", prefix, ob->type, ob->identity);
			break;
		case VERIFY_DIFF_DEFINITION:
			printf("  %sdefined differently: %s %s", prefix, ob->type, ob->identity);
			break;
		case VERIFY_DIFF_PRIVILEGES:
			printf("  %sother owner or grants: %s %s", prefix, ob->type, ob->identity);
			break;
	}
	printf(d->reason ? " (%s)\n" : "\n", d->reason);
	if (d->kind == VERIFY_DIFF_DEFINITION)
		printf("      source: %s\n      target: %s\n", d->source->definition,
			   d->target->definition);
}

static void
print_schema_text(const VerifyReport *r)
{
	size_t		privileges = 0;

	printf("schema: %zu objects on the source, %zu on the target, %zu difference(s)\n",
		   r->nsource_objects, r->ntarget_objects, verify_schema_failures(r));
	for (size_t i = 0; i < r->ndiffs; i++)
		if (r->diffs[i].verdict == VERIFY_FAIL)
			print_diff(&r->diffs[i], "");
	for (size_t i = 0; i < r->ndiffs; i++)
		if (r->diffs[i].verdict == VERIFY_EXPECTED)
			print_diff(&r->diffs[i], "expected: ");
	if (r->state_schema_on_target)
		printf("  expected: schema %s on the target, left out (pgstream's state of a "
			   "migration that is not finished)\n", state_schema_quoted());
	for (size_t i = 0; i < r->ndiffs; i++)
	{
		if (r->diffs[i].verdict != VERIFY_NOTE)
			continue;
		if (r->diffs[i].kind != VERIFY_DIFF_PRIVILEGES)
			print_diff(&r->diffs[i], "note: ");
		else if (privileges++ < TEXT_NOTES_MAX)
			print_diff(&r->diffs[i], "note: ");
	}
	if (privileges > TEXT_NOTES_MAX)
		printf("  note: %zu more objects with another owner or other grants (--json lists "
			   "them all)\n", privileges - TEXT_NOTES_MAX);
}

static void
print_data_text(const VerifyReport *r)
{
	char		line[600];

	printf("data: %d tables, %d differ (%.1f s)\n", r->ntables, verify_table_failures(r),
		   r->data_seconds);
	for (int i = 0; i < r->ntables; i++)
		if (r->tables[i].status != VERIFY_TABLE_MATCH)
			printf("  %s: %s\n", r->tables[i].name,
				   verify_table_describe(&r->tables[i], line, sizeof(line)));
}

static void
json_object_fields(JsonWriter *w, const VerifyDiff *d)
{
	const VerifyObject *ob = diff_object(d);

	json_key(w, "kind");
	json_string(w, verify_diff_kind_name(d->kind));
	json_key(w, "verdict");
	json_string(w, verify_verdict_name(d->verdict));
	json_key(w, "type");
	json_string(w, ob->type);
	json_key(w, "identity");
	json_string(w, ob->identity);
	json_key(w, "reason");
	if (d->reason)
		json_string(w, d->reason);
	else
		json_null(w);
	if (d->kind == VERIFY_DIFF_DEFINITION || d->kind == VERIFY_DIFF_PRIVILEGES)
	{
		bool		def = d->kind == VERIFY_DIFF_DEFINITION;

		json_key(w, "source");
		json_string(w, def ? d->source->definition : d->source->privileges);
		json_key(w, "target");
		json_string(w, def ? d->target->definition : d->target->privileges);
	}
}

static void
json_schema(JsonWriter *w, const VerifyReport *r)
{
	json_key(w, "schema");
	if (!r->schema_checked)
		return json_null(w);
	json_begin_object(w);
	json_key(w, "match");
	json_bool(w, verify_schema_failures(r) == 0);
	json_key(w, "source_objects");
	json_uint(w, r->nsource_objects);
	json_key(w, "target_objects");
	json_uint(w, r->ntarget_objects);
	json_key(w, "failures");
	json_uint(w, verify_schema_failures(r));
	json_key(w, "state_schema_on_target");
	json_bool(w, r->state_schema_on_target);
	json_key(w, "differences");
	json_begin_array(w);
	for (size_t i = 0; i < r->ndiffs; i++)
	{
		json_begin_object(w);
		json_object_fields(w, &r->diffs[i]);
		json_end_object(w);
	}
	json_end_array(w);
	json_end_object(w);
}

static void
json_digest(JsonWriter *w, const char *key, const VerifyDigest *d)
{
	char		hex[40];

	snprintf(hex, sizeof(hex), "%016" PRIx64 "%016" PRIx64, d->sum[0], d->sum[1]);
	json_key(w, key);
	json_string(w, hex);
}

static void
json_data(JsonWriter *w, const VerifyReport *r)
{
	json_key(w, "data");
	if (!r->data_checked)
		return json_null(w);
	json_begin_object(w);
	json_key(w, "match");
	json_bool(w, verify_table_failures(r) == 0);
	json_key(w, "seconds");
	json_double(w, r->data_seconds);
	json_key(w, "tables_differing");
	json_int(w, verify_table_failures(r));
	json_key(w, "tables");
	json_begin_array(w);
	for (int i = 0; i < r->ntables; i++)
	{
		const VerifyTable *t = &r->tables[i];

		json_begin_object(w);
		json_key(w, "name");
		json_string(w, t->name);
		json_key(w, "status");
		json_string(w, verify_table_status_name(t->status));
		json_key(w, "source_rows");
		json_int(w, t->source.rows);
		json_key(w, "target_rows");
		if (t->status == VERIFY_TABLE_MATCH || t->status == VERIFY_TABLE_DIFFERENT)
			json_int(w, t->target.rows);
		else
			json_null(w);
		json_digest(w, "source_digest", &t->source);
		json_digest(w, "target_digest", &t->target);
		json_key(w, "chunks");
		json_int(w, t->nchunks);
		json_key(w, "chunks_differing");
		json_int(w, t->chunks_differing);
		json_key(w, "error");
		if (t->error)
			json_string(w, t->error);
		else
			json_null(w);
		json_end_object(w);
	}
	json_end_array(w);
	json_end_object(w);
}

static void
print_json(const VerifyReport *r)
{
	JsonWriter	w;

	json_init(&w);
	json_begin_object(&w);
	json_key(&w, "match");
	json_bool(&w, verify_report_ok(r));
	json_key(&w, "source_version");
	json_int(&w, r->source_major);
	json_key(&w, "target_version");
	json_int(&w, r->target_major);
	json_schema(&w, r);
	json_data(&w, r);
	json_end_object(&w);
	if (!w.oom)
		puts(w.data);
	json_term(&w);
}

int
cmd_verify(int argc, char **argv)
{
	VerifyOptions o;
	VerifyReport r;
	SyncError	err;
	bool		json = false;
	int			rc = parse_options(argc, argv, &o, &json);

	if (rc != EXIT_OK)
		return rc < 0 ? EXIT_OK : rc;
	cli_install_quit_handler("verify");
	sync_error_clear(&err);
	if (!verify_run(&o, &r, &err))
	{
		log_sync_error(&err);
		verify_report_term(&r);
		return cli_exit_code(&err);
	}
	if (json)
		print_json(&r);
	else
	{
		if (r.schema_checked)
			print_schema_text(&r);
		if (r.data_checked)
			print_data_text(&r);
	}
	rc = verify_report_ok(&r) ? EXIT_OK : EXIT_FAILED;
	if (rc == EXIT_OK)
		log_info("verify: source and target match");
	else
		log_error("verify: source and target differ: %zu schema difference(s), %d table(s)",
				  verify_schema_failures(&r), verify_table_failures(&r));
	verify_report_term(&r);
	return rc;
}
