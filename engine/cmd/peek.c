/*
 * engine/cmd/peek.c -- "pgstream peek": print the decoded change stream of an
 * existing logical slot, one line per pgoutput message, without ever
 * confirming a position (the slot does not move, so a second run prints the
 * same changes).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/pgconn.h"
#include "apply/relmap.h"
#include "engine/cli.h"
#include "engine/failpoint.h"
#include "engine/json.h"
#include "engine/log.h"
#include "apply/replclient.h"
#include "protocol/arena.h"
#include "protocol/names.h"
#include "protocol/pgoutput.h"

typedef struct PeekOptions
{
	const char *source;
	const char *slot;
	const char *publication;
	long		limit;			/* 0 = no limit */
	long		idle_exit_s;	/* 0 = never */
	bool		json;
} PeekOptions;

typedef struct Peek
{
	PeekOptions opt;
	ReplClient	rc;
	PgoutputState ps;
	RelMap		rels;
	Arena		arena;
	JsonWriter	jw;
	Xid			txn_xid;		/* xid of the open B..C, or 0 */
	Xid			stream_xid;		/* top xid of the open S..E block, or 0 */
	long		printed;
} Peek;

static const char *
replident_name(ReplicaIdentity r)
{
	switch (r)
	{
		case REPLICA_IDENTITY_DEFAULT:
			return "default";
		case REPLICA_IDENTITY_NOTHING:
			return "nothing";
		case REPLICA_IDENTITY_FULL:
			return "full";
		case REPLICA_IDENTITY_INDEX:
			return "index";
	}
	return "unknown";
}

static void
key_lsn(JsonWriter *w, const char *key, Lsn lsn)
{
	char		buf[LSN_FORMAT_MAX];

	json_key(w, key);
	json_string(w, lsn_format(lsn, buf));
}

static void
key_time(JsonWriter *w, const char *key, PgTimestamp ts)
{
	char		buf[TIMESTAMP_FORMAT_MAX];

	json_key(w, key);
	json_string(w, timestamp_format(ts, buf));
}

/* The xid a change belongs to: the stream's top xid or the open B..C's. */
static void
key_current_xid(Peek *p, JsonWriter *w)
{
	Xid			xid = p->ps.in_stream ? p->stream_xid : p->txn_xid;

	if (xid != 0)
	{
		json_key(w, "xid");
		json_uint(w, xid);
	}
}

static void
json_value(JsonWriter *w, const TupleValue *v)
{
	switch (v->kind)
	{
		case TUPLE_VALUE_NULL:
			json_null(w);
			break;
		case TUPLE_VALUE_UNCHANGED_TOAST:
			json_begin_object(w);
			json_key(w, "unchanged_toast");
			json_bool(w, true);
			json_end_object(w);
			break;
		case TUPLE_VALUE_TEXT:
			if (json_utf8_valid(v->data.ptr, v->data.len))
			{
				json_stringn(w, (const char *) v->data.ptr, v->data.len);
				break;
			}
			/* not UTF-8 (cannot happen with client_encoding=UTF8): show bytes */
			/* FALLTHROUGH */
		case TUPLE_VALUE_BINARY:
			json_begin_object(w);
			json_key(w, "binary_hex");
			json_hex(w, v->data.ptr, v->data.len);
			json_end_object(w);
			break;
	}
}

/* Emit tuple as {"col": value, ...}; only key columns when keys_only. */
static bool
json_tuple(JsonWriter *w, const RemoteRelation *rel, const TupleData *t,
		   bool keys_only, SyncError *err)
{
	if (t->ncols != rel->natts)
		return sync_error_set(err, SYNC_ERR_INVALID,
							  "tuple for \"%s\" has %u columns, its Relation "
							  "message announced %d", rel->display_name,
							  t->ncols, rel->natts);
	json_begin_object(w);
	for (int i = 0; i < rel->natts; i++)
	{
		if (keys_only && !rel->columns[i].is_key)
			continue;
		json_key(w, rel->columns[i].name);
		json_value(w, &t->values[i]);
	}
	json_end_object(w);
	return true;
}

static bool
json_change(Peek *p, const PgoutputMessage *m, SyncError *err)
{
	JsonWriter *w = &p->jw;
	const PgoutputChange *c = &m->u.change;
	const RemoteRelation *rel = relmap_get(&p->rels, c->relid);

	if (rel == NULL)
		return sync_error_set(err, SYNC_ERR_INVALID,
							  "%s for relation id %u that no Relation message "
							  "announced", pgoutput_msg_type_name(m->type),
							  c->relid);
	json_key(w, "relation");
	json_string(w, rel->display_name);
	if (c->old_kind != PGOUTPUT_OLD_NONE)
	{
		json_key(w, "old_kind");
		json_string(w, c->old_kind == PGOUTPUT_OLD_KEY ? "key" : "tuple");
		json_key(w, "old");
		if (!json_tuple(w, rel, &c->old_tuple, c->old_kind == PGOUTPUT_OLD_KEY, err))
			return false;
	}
	if (c->has_new_tuple)
	{
		json_key(w, "new");
		return json_tuple(w, rel, &c->new_tuple, false, err);
	}
	return true;
}

static void
json_relation(JsonWriter *w, const PgoutputRelation *r, const RemoteRelation *rel)
{
	json_key(w, "relid");
	json_uint(w, r->relid);
	json_key(w, "relation");
	json_string(w, rel->display_name);
	json_key(w, "replica_identity");
	json_string(w, replident_name(r->replident));
	json_key(w, "columns");
	json_begin_array(w);
	for (int i = 0; i < rel->natts; i++)
	{
		json_begin_object(w);
		json_key(w, "name");
		json_string(w, rel->columns[i].name);
		json_key(w, "type_oid");
		json_uint(w, rel->columns[i].type_oid);
		json_key(w, "typmod");
		json_int(w, rel->columns[i].typmod);
		json_key(w, "key");
		json_bool(w, rel->columns[i].is_key);
		json_end_object(w);
	}
	json_end_array(w);
}

static bool
json_truncate(Peek *p, const PgoutputTruncate *t, SyncError *err)
{
	JsonWriter *w = &p->jw;

	json_key(w, "relations");
	json_begin_array(w);
	for (uint32_t i = 0; i < t->nrelids; i++)
	{
		const RemoteRelation *rel = relmap_get(&p->rels, t->relids[i]);

		if (rel == NULL)
			return sync_error_set(err, SYNC_ERR_INVALID,
								  "truncate of relation id %u that no Relation "
								  "message announced", t->relids[i]);
		json_string(w, rel->display_name);
	}
	json_end_array(w);
	json_key(w, "cascade");
	json_bool(w, (t->flags & PGOUTPUT_TRUNCATE_CASCADE) != 0);
	json_key(w, "restart_identity");
	json_bool(w, (t->flags & PGOUTPUT_TRUNCATE_RESTART_IDENTITY) != 0);
	return true;
}

static void
json_message(Peek *p, const PgoutputLogicalMessage *lm)
{
	JsonWriter *w = &p->jw;

	json_key(w, "transactional");
	json_bool(w, (lm->flags & PGOUTPUT_MESSAGE_TRANSACTIONAL) != 0);
	json_key(w, "prefix");
	json_stringn(w, (const char *) lm->prefix.ptr, lm->prefix.len);
	if (json_utf8_valid(lm->content.ptr, lm->content.len))
	{
		json_key(w, "content");
		json_stringn(w, (const char *) lm->content.ptr, lm->content.len);
	}
	else
	{
		json_key(w, "content_hex");
		json_hex(w, lm->content.ptr, lm->content.len);
	}
}

static void
json_commit_fields(JsonWriter *w, Lsn commit_lsn, Lsn end_lsn, PgTimestamp t)
{
	key_lsn(w, "commit_lsn", commit_lsn);
	key_lsn(w, "end_lsn", end_lsn);
	key_time(w, "commit_time", t);
}

static void
json_prepare(JsonWriter *w, const PgoutputPrepare *pr)
{
	json_key(w, "xid");
	json_uint(w, pr->xid);
	json_key(w, "gid");
	json_stringn(w, (const char *) pr->gid.ptr, pr->gid.len);
	key_lsn(w, "prepare_lsn", pr->lsn);
	key_lsn(w, "end_lsn", pr->end_lsn);
}

/* The fields after "kind" and "lsn", per message type. */
static bool
json_body(Peek *p, const PgoutputMessage *m, const RemoteRelation *rel,
		  SyncError *err)
{
	JsonWriter *w = &p->jw;

	switch (m->type)
	{
		case PGOUTPUT_MSG_BEGIN:
			json_key(w, "xid");
			json_uint(w, m->u.begin.xid);
			key_lsn(w, "final_lsn", m->u.begin.final_lsn);
			key_time(w, "commit_time", m->u.begin.commit_time);
			return true;
		case PGOUTPUT_MSG_COMMIT:
			key_current_xid(p, w);
			json_commit_fields(w, m->u.commit.commit_lsn, m->u.commit.end_lsn,
							   m->u.commit.commit_time);
			return true;
		case PGOUTPUT_MSG_ORIGIN:
			key_lsn(w, "origin_lsn", m->u.origin.origin_lsn);
			json_key(w, "name");
			json_stringn(w, (const char *) m->u.origin.name.ptr, m->u.origin.name.len);
			return true;
		case PGOUTPUT_MSG_RELATION:
			json_relation(w, &m->u.relation, rel);
			return true;
		case PGOUTPUT_MSG_TYPE:
			json_key(w, "type_oid");
			json_uint(w, m->u.type.typoid);
			json_key(w, "schema");
			json_stringn(w, (const char *) m->u.type.nspname.ptr, m->u.type.nspname.len);
			json_key(w, "name");
			json_stringn(w, (const char *) m->u.type.typname.ptr, m->u.type.typname.len);
			return true;
		case PGOUTPUT_MSG_INSERT:
		case PGOUTPUT_MSG_UPDATE:
		case PGOUTPUT_MSG_DELETE:
			key_current_xid(p, w);
			return json_change(p, m, err);
		case PGOUTPUT_MSG_TRUNCATE:
			key_current_xid(p, w);
			return json_truncate(p, &m->u.truncate, err);
		case PGOUTPUT_MSG_MESSAGE:
			if (m->u.message.flags & PGOUTPUT_MESSAGE_TRANSACTIONAL)
				key_current_xid(p, w);
			json_message(p, &m->u.message);
			return true;
		case PGOUTPUT_MSG_STREAM_START:
			json_key(w, "xid");
			json_uint(w, m->u.stream_start.xid);
			json_key(w, "first_segment");
			json_bool(w, m->u.stream_start.first_segment);
			return true;
		case PGOUTPUT_MSG_STREAM_STOP:
			return true;
		case PGOUTPUT_MSG_STREAM_COMMIT:
			json_key(w, "xid");
			json_uint(w, m->u.stream_commit.xid);
			json_commit_fields(w, m->u.stream_commit.commit_lsn,
							   m->u.stream_commit.end_lsn,
							   m->u.stream_commit.commit_time);
			return true;
		case PGOUTPUT_MSG_STREAM_ABORT:
			json_key(w, "xid");
			json_uint(w, m->u.stream_abort.xid);
			json_key(w, "subxid");
			json_uint(w, m->u.stream_abort.subxid);
			return true;
		case PGOUTPUT_MSG_BEGIN_PREPARE:
		case PGOUTPUT_MSG_PREPARE:
		case PGOUTPUT_MSG_STREAM_PREPARE:
		case PGOUTPUT_MSG_COMMIT_PREPARED:
			json_prepare(w, &m->u.prepare);
			return true;
		case PGOUTPUT_MSG_ROLLBACK_PREPARED:
			json_key(w, "xid");
			json_uint(w, m->u.rollback_prepared.xid);
			json_key(w, "gid");
			json_stringn(w, (const char *) m->u.rollback_prepared.gid.ptr,
						 m->u.rollback_prepared.gid.len);
			return true;
	}
	return true;
}

/* Update the xid context that later lines report. */
static void
track_xids(Peek *p, const PgoutputMessage *m)
{
	if (m->type == PGOUTPUT_MSG_BEGIN)
		p->txn_xid = m->u.begin.xid;
	else if (m->type == PGOUTPUT_MSG_STREAM_START)
		p->stream_xid = m->u.stream_start.xid;
}

static void
after_print(Peek *p, const PgoutputMessage *m)
{
	if (m->type == PGOUTPUT_MSG_COMMIT)
		p->txn_xid = 0;
	else if (m->type == PGOUTPUT_MSG_STREAM_STOP)
		p->stream_xid = 0;
}

/*
 * Text form: one short line per message, e.g.
 * "0/16B3748 insert public.t xid=734".  Values are only in --json output.
 */
static void
print_text(Peek *p, Lsn lsn, const PgoutputMessage *m, const RemoteRelation *rel)
{
	char		lsnbuf[LSN_FORMAT_MAX];
	Xid			xid = p->ps.in_stream ? p->stream_xid : p->txn_xid;

	if (m->type == PGOUTPUT_MSG_INSERT || m->type == PGOUTPUT_MSG_UPDATE ||
		m->type == PGOUTPUT_MSG_DELETE)
		rel = relmap_get(&p->rels, m->u.change.relid);
	printf("%s %s%s%s", lsn_format(lsn, lsnbuf), pgoutput_msg_type_name(m->type),
		   rel ? " " : "", rel ? rel->display_name : "");
	if (m->type == PGOUTPUT_MSG_BEGIN)
		xid = m->u.begin.xid;
	if (xid != 0)
		printf(" xid=%u", xid);
	if (m->type == PGOUTPUT_MSG_COMMIT)
		printf(" end_lsn=%s", lsn_format(m->u.commit.end_lsn, lsnbuf));
	if (m->type == PGOUTPUT_MSG_STREAM_COMMIT)
		printf(" end_lsn=%s", lsn_format(m->u.stream_commit.end_lsn, lsnbuf));
	putchar('\n');
}

static bool
handle_xlogdata(Peek *p, const ReplMessage *rm, SyncError *err)
{
	PgoutputMessage m;
	const RemoteRelation *rel = NULL;
	bool		was_in_stream = p->ps.in_stream;

	arena_reset(&p->arena);
	if (pgoutput_decode(rm->data, rm->data_len, &p->ps, &m, &p->arena, err) != DECODE_OK)
		return sync_error_context(err, "could not decode message at %X/%X",
								  LSN_ARGS(rm->data_start));
	if (m.type == PGOUTPUT_MSG_RELATION &&
		(rel = relmap_update(&p->rels, &m.u.relation, err)) == NULL)
		return false;
	track_xids(p, &m);
	/* Stream Stop has already cleared in_stream; print it inside the block. */
	if (m.type == PGOUTPUT_MSG_STREAM_STOP)
		p->ps.in_stream = was_in_stream;
	if (p->opt.json)
	{
		json_reset(&p->jw);
		json_begin_object(&p->jw);
		json_key(&p->jw, "kind");
		json_string(&p->jw, pgoutput_msg_type_name(m.type));
		key_lsn(&p->jw, "lsn", rm->data_start);
		if (!json_body(p, &m, rel, err))
			return false;
		json_end_object(&p->jw);
		if (p->jw.oom)
			return sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		puts(p->jw.data);
	}
	else
		print_text(p, rm->data_start, &m, rel);
	if (m.type == PGOUTPUT_MSG_STREAM_STOP)
		p->ps.in_stream = false;
	after_print(p, &m);
	p->printed++;
	return true;
}

static const char peek_help[] =
	"Usage: pgstream peek --source CONNINFO --slot NAME --publication NAME [OPTIONS]\n"
	"\n"
	"Print the decoded change stream of an existing logical replication slot\n"
	"(pgoutput), one line per message.  The slot is never advanced: running\n"
	"peek twice shows the same changes.  The slot must not be in use by\n"
	"another consumer while peek runs.\n"
	"\n"
	"Options:\n"
	"  --source CONNINFO     source server (libpq connection string or URI);\n"
	"                        the role needs the REPLICATION attribute\n"
	"  --slot NAME           existing logical slot using the pgoutput plugin\n"
	"  --publication NAME    publication whose changes to decode\n"
	"  --limit N             exit after N messages\n"
	"  --idle-exit SECONDS   exit after SECONDS without data (default: never)\n"
	"  --json                one JSON object per line (kind, lsn, xid,\n"
	"                        relation, old/new column values, ...)\n"
	"  --help                show this help\n"
	"\n"
	"Stops on --limit, --idle-exit, SIGINT or SIGTERM; exit code 0 then.\n";

static int
parse_peek_options(int argc, char **argv, PeekOptions *o)
{
	static const struct option longopts[] = {
		{"source", required_argument, NULL, 's'},
		{"slot", required_argument, NULL, 'S'},
		{"publication", required_argument, NULL, 'p'},
		{"limit", required_argument, NULL, 'l'},
		{"idle-exit", required_argument, NULL, 'i'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c;
	SyncError	err;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 's':
				o->source = optarg;
				break;
			case 'S':
				o->slot = optarg;
				break;
			case 'p':
				o->publication = optarg;
				break;
			case 'l':
				if (!cli_parse_int(optarg, 1, 1000000000, &o->limit))
				{
					fprintf(stderr, "pgstream peek: --limit must be a positive integer\n");
					return EXIT_USAGE;
				}
				break;
			case 'i':
				if (!cli_parse_int(optarg, 1, 86400 * 365, &o->idle_exit_s))
				{
					fprintf(stderr, "pgstream peek: --idle-exit must be a positive number of seconds\n");
					return EXIT_USAGE;
				}
				break;
			case 'j':
				o->json = true;
				break;
			case 'h':
				fputs(peek_help, stdout);
				return -1;
			default:
				fputs("Try \"pgstream peek --help\".\n", stderr);
				return EXIT_USAGE;
		}
	}
	if (optind < argc || !o->source || !o->slot || !o->publication)
	{
		fprintf(stderr, "pgstream peek: %s\nTry \"pgstream peek --help\".\n",
				optind < argc ? "unexpected argument"
				: "--source, --slot and --publication are required");
		return EXIT_USAGE;
	}
	if (!names_check(o->slot, o->publication, &err))
	{
		fprintf(stderr, "pgstream peek: %s\n", err.message);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Read and print until limit, idle timeout or signal. */
static bool
peek_loop(Peek *p, SyncError *err)
{
	int64_t		last_data = replclient_now_us();

	while (!cli_stop_requested && (p->opt.limit == 0 || p->printed < p->opt.limit))
	{
		ReplMessage rm;
		int			r = replclient_next(&p->rc, 500, &rm, err);

		if (r < 0)
			return false;
		if (r > 0 && rm.kind == REPL_MSG_XLOGDATA)
		{
			last_data = replclient_now_us();
			if (!handle_xlogdata(p, &rm, err))
				return false;
			/* peek.after_message: a message was read and printed */
			FAILPOINT("peek.after_message");
			continue;
		}
		if (p->opt.idle_exit_s > 0 &&
			replclient_now_us() - last_data >= p->opt.idle_exit_s * 1000000)
			break;
	}
	return true;
}

int
cmd_peek(int argc, char **argv)
{
	Peek		p;
	SyncError	err;
	ReplStartOptions so;
	int			rc = parse_peek_options(argc, argv, &p.opt);

	if (rc != EXIT_OK)
		return rc < 0 ? EXIT_OK : rc;
	cli_install_stop_handler();
	sync_error_clear(&err);
	relmap_init(&p.rels);
	arena_init(&p.arena, NULL, 0);
	json_init(&p.jw);
	p.txn_xid = p.stream_xid = 0;
	p.printed = 0;
	so = (ReplStartOptions) {p.opt.slot, p.opt.publication, INVALID_LSN, true, true, NULL};
	if (!replclient_connect(&p.rc, p.opt.source, "pgstream peek", &err))
		rc = cli_exit_code(&err);
	else
	{
		p.rc.confirm = false;
		pgoutput_state_init(&p.ps, replclient_max_proto(p.rc.server_version), false);
		if (!replclient_start(&p.rc, &so, &err) || !peek_loop(&p, &err))
			rc = cli_exit_code(&err);
		fflush(stdout);
		replclient_close(&p.rc);
	}
	if (rc != EXIT_OK)
		log_sync_error(&err);
	relmap_term(&p.rels);
	arena_term(&p.arena);
	json_term(&p.jw);
	return rc;
}
