/*
 * protocol/pgoutput.h -- decoder for pgoutput logical replication messages,
 * protocol versions 1 to 4.
 *
 * One call decodes one XLogData payload.  Strings and values are views into
 * the caller's buffer (valid while it is); arrays come from the caller's
 * Arena.  The decoder keeps no hidden state: the only context it needs
 * (protocol version, whether we are inside a Stream Start/Stop block, whether
 * streaming is 'parallel') lives in PgoutputState, which the caller owns and
 * which pgoutput_decode() updates on Stream Start and Stream Stop.
 */
#ifndef PGSTREAM_PROTOCOL_PGOUTPUT_H
#define PGSTREAM_PROTOCOL_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/arena.h"
#include "protocol/bytes.h"
#include "protocol/decode.h"
#include "protocol/error.h"
#include "protocol/lsn.h"

typedef enum PgoutputMsgType
{
	PGOUTPUT_MSG_BEGIN = 'B',
	PGOUTPUT_MSG_COMMIT = 'C',
	PGOUTPUT_MSG_ORIGIN = 'O',
	PGOUTPUT_MSG_RELATION = 'R',
	PGOUTPUT_MSG_TYPE = 'Y',
	PGOUTPUT_MSG_INSERT = 'I',
	PGOUTPUT_MSG_UPDATE = 'U',
	PGOUTPUT_MSG_DELETE = 'D',
	PGOUTPUT_MSG_TRUNCATE = 'T',
	PGOUTPUT_MSG_MESSAGE = 'M',
	PGOUTPUT_MSG_STREAM_START = 'S',
	PGOUTPUT_MSG_STREAM_STOP = 'E',
	PGOUTPUT_MSG_STREAM_COMMIT = 'c',
	PGOUTPUT_MSG_STREAM_ABORT = 'A',
	PGOUTPUT_MSG_BEGIN_PREPARE = 'b',
	PGOUTPUT_MSG_PREPARE = 'P',
	PGOUTPUT_MSG_COMMIT_PREPARED = 'K',
	PGOUTPUT_MSG_ROLLBACK_PREPARED = 'r',
	PGOUTPUT_MSG_STREAM_PREPARE = 'p'
} PgoutputMsgType;

/* Never fails: "begin", "commit", ..., "stream_prepare", or "unknown". */
const char *pgoutput_msg_type_name(int type);

/* Lowest protocol version in which a message type may appear (0 if unknown). */
int			pgoutput_msg_min_proto(int type);

#define PGOUTPUT_PROTO_MIN 1
#define PGOUTPUT_PROTO_MAX 4

typedef enum TupleValueKind
{
	TUPLE_VALUE_NULL = 'n',
	TUPLE_VALUE_UNCHANGED_TOAST = 'u',
	TUPLE_VALUE_TEXT = 't',
	TUPLE_VALUE_BINARY = 'b'
} TupleValueKind;

typedef struct TupleValue
{
	TupleValueKind kind;
	ByteView	data;			/* text/binary only; not NUL-terminated */
} TupleValue;

typedef struct TupleData
{
	uint16_t	ncols;
	TupleValue *values;			/* arena; ncols entries */
} TupleData;

#define PGOUTPUT_COLUMN_FLAG_KEY 0x01

typedef struct RelationColumn
{
	uint8_t		flags;			/* PGOUTPUT_COLUMN_FLAG_KEY or 0 */
	ByteView	name;			/* NUL-terminated view */
	Oid			type_oid;		/* publisher's type OID */
	int32_t		typmod;
} RelationColumn;

typedef enum ReplicaIdentity
{
	REPLICA_IDENTITY_DEFAULT = 'd',
	REPLICA_IDENTITY_NOTHING = 'n',
	REPLICA_IDENTITY_FULL = 'f',
	REPLICA_IDENTITY_INDEX = 'i'
} ReplicaIdentity;

typedef struct PgoutputBegin
{
	Lsn			final_lsn;
	PgTimestamp commit_time;
	Xid			xid;
} PgoutputBegin;

typedef struct PgoutputCommit
{
	uint8_t		flags;
	Lsn			commit_lsn;
	Lsn			end_lsn;
	PgTimestamp commit_time;
} PgoutputCommit;

typedef struct PgoutputOrigin
{
	Lsn			origin_lsn;
	ByteView	name;
} PgoutputOrigin;

typedef struct PgoutputRelation
{
	Oid			relid;
	ByteView	nspname;		/* "" means pg_catalog */
	ByteView	relname;
	ReplicaIdentity replident;
	uint16_t	natts;
	RelationColumn *columns;	/* arena; natts entries */
} PgoutputRelation;

typedef struct PgoutputType
{
	Oid			typoid;
	ByteView	nspname;
	ByteView	typname;
} PgoutputType;

/* Old-tuple kinds in Update and Delete. */
#define PGOUTPUT_OLD_NONE 0
#define PGOUTPUT_OLD_KEY 'K'
#define PGOUTPUT_OLD_TUPLE 'O'

typedef struct PgoutputChange	/* Insert, Update, Delete */
{
	Oid			relid;
	char		old_kind;		/* PGOUTPUT_OLD_NONE, _KEY or _TUPLE */
	TupleData	old_tuple;		/* valid when old_kind != NONE */
	bool		has_new_tuple;	/* Insert and Update */
	TupleData	new_tuple;
} PgoutputChange;

#define PGOUTPUT_TRUNCATE_CASCADE 0x01
#define PGOUTPUT_TRUNCATE_RESTART_IDENTITY 0x02

typedef struct PgoutputTruncate
{
	uint8_t		flags;
	uint32_t	nrelids;
	Oid		   *relids;			/* arena; nrelids entries */
} PgoutputTruncate;

#define PGOUTPUT_MESSAGE_TRANSACTIONAL 0x01

typedef struct PgoutputLogicalMessage
{
	uint8_t		flags;
	Lsn			lsn;
	ByteView	prefix;			/* NUL-terminated view */
	ByteView	content;		/* raw bytes */
} PgoutputLogicalMessage;

typedef struct PgoutputStreamStart
{
	Xid			xid;
	bool		first_segment;
} PgoutputStreamStart;

typedef struct PgoutputStreamCommit
{
	Xid			xid;
	uint8_t		flags;
	Lsn			commit_lsn;
	Lsn			end_lsn;
	PgTimestamp commit_time;
} PgoutputStreamCommit;

typedef struct PgoutputStreamAbort
{
	Xid			xid;
	Xid			subxid;
	bool		has_abort_info; /* streaming = parallel only */
	Lsn			abort_lsn;
	PgTimestamp abort_time;
} PgoutputStreamAbort;

/* Begin Prepare, Prepare, Stream Prepare, Commit Prepared. */
typedef struct PgoutputPrepare
{
	uint8_t		flags;			/* 0 for Begin Prepare (no flags field) */
	Lsn			lsn;			/* prepare_lsn, or commit_lsn for Commit Prepared */
	Lsn			end_lsn;
	PgTimestamp time;
	Xid			xid;
	ByteView	gid;
} PgoutputPrepare;

typedef struct PgoutputRollbackPrepared
{
	uint8_t		flags;
	Lsn			prepare_end_lsn;
	Lsn			rollback_end_lsn;
	PgTimestamp prepare_time;
	PgTimestamp rollback_time;
	Xid			xid;
	ByteView	gid;
} PgoutputRollbackPrepared;

typedef struct PgoutputMessage
{
	PgoutputMsgType type;
	bool		has_stream_xid; /* the optional in-stream xid prefix was present */
	Xid			stream_xid;
	union
	{
		PgoutputBegin begin;
		PgoutputCommit commit;
		PgoutputOrigin origin;
		PgoutputRelation relation;
		PgoutputType type;
		PgoutputChange change;	/* insert, update, delete */
		PgoutputTruncate truncate;
		PgoutputLogicalMessage message;
		PgoutputStreamStart stream_start;
		PgoutputStreamCommit stream_commit;
		PgoutputStreamAbort stream_abort;
		PgoutputPrepare prepare;	/* begin_prepare, prepare, stream_prepare, commit_prepared */
		PgoutputRollbackPrepared rollback_prepared;
	}			u;
} PgoutputMessage;

typedef struct PgoutputState
{
	int			proto_version;	/* 1..4 as negotiated */
	bool		in_stream;		/* between Stream Start and Stream Stop */
	bool		streaming_parallel; /* Stream Abort carries abort_lsn/time;
									 * honoured only with proto_version >= 4,
									 * the only versions that allow it */
} PgoutputState;

void		pgoutput_state_init(PgoutputState *state, int proto_version,
								bool streaming_parallel);

/*
 * Decode one pgoutput message.  On DECODE_OK *out is filled; otherwise err
 * names the message and the field ("Update: truncated at byte 14 reading
 * \"old tuple column kind\"") and *out is undefined.  Messages not allowed by
 * state->proto_version are DECODE_INVALID, as are unknown tags, unknown
 * flags, counts larger than the remaining bytes and trailing bytes.
 *
 * Stream blocks: a successful Stream Start sets state->in_stream and a
 * successful Stream Stop clears it; nothing else changes state.  Inside a
 * block only Origin, Relation, Type, Insert, Update, Delete, Truncate, Message
 * and Stream Stop are allowed (the others are DECODE_INVALID), and the
 * types that carry it read the Int32 xid prefix into stream_xid.
 *
 * Also DECODE_INVALID, distinguished by err->code: SYNC_ERR_NOMEM when arena
 * is NULL or refuses space for a non-empty array, SYNC_ERR_USAGE when
 * state->proto_version is outside 1..4.
 */
DecodeStatus pgoutput_decode(const uint8_t *buf, size_t len,
							 PgoutputState *state, PgoutputMessage *out,
							 Arena *arena, SyncError *err);

#endif
