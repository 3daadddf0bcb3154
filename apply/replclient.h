/*
 * apply/replclient.h -- the walsender client: a replication=database
 * connection, IDENTIFY_SYSTEM, START_REPLICATION with pgoutput options gated
 * on the source version, reading CopyData, answering keepalives and sending
 * standby status updates.
 *
 * Positions reported to the source come from a FeedbackState
 * (protocol/replication.h): write/flush never move backwards, and flush never
 * runs ahead of what the caller declared durable.  A client opened with
 * confirm=false (peek) always reports flush 0, so the slot never advances.
 */
#ifndef PGSTREAM_APPLY_REPLCLIENT_H
#define PGSTREAM_APPLY_REPLCLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "protocol/error.h"
#include "protocol/lsn.h"
#include "protocol/replication.h"

typedef struct ReplClient
{
	PGconn	   *conn;			/* owned */
	int			server_version; /* e.g. 150004 */
	char		systemid[32];
	unsigned	timeline;
	Lsn			server_flush_lsn;	/* xlogpos from IDENTIFY_SYSTEM */
	char		dbname[128];

	/* negotiated at start */
	int			proto_version;
	bool		streaming;
	bool		messages;
	bool		streaming_parallel; /* never set: we use 'on' */

	bool		confirm;		/* report durable positions as flushed */
	FeedbackState feedback;
	int			status_interval_ms;
	int64_t		last_status_us; /* monotonic clock */
	int64_t		last_recv_us;

	/*
	 * Like wal_receiver_timeout: after receive_timeout_ms of waiting on a
	 * silent socket replclient_next fails (SYNC_ERR_CONNECT); half way it
	 * asks the server for a reply.  Only time spent waiting for the socket
	 * counts, not time the caller spends elsewhere.  0 = never.
	 */
	int			receive_timeout_ms;
	int64_t		silent_us;		/* waited since bytes last arrived */
	bool		ping_sent;		/* during this silence */

	char	   *copybuf;		/* owned; last PQgetCopyData buffer */
} ReplClient;

typedef struct ReplStartOptions
{
	const char *slot;
	const char *publication;
	Lsn			start_lsn;		/* 0/0 = the slot's confirmed_flush */
	bool		want_streaming; /* stream large transactions (PG14+) */
	bool		want_messages;	/* logical decoding messages (PG14+) */
	const char *extra_publication;	/* a second publication, or NULL */
} ReplStartOptions;

/* Highest pgoutput proto_version a server of this version accepts (0: none). */
int			replclient_max_proto(int server_version);

/*
 * Connect (replication=database) and run IDENTIFY_SYSTEM.  The client is
 * zeroed first; on failure err is set and the client holds nothing.
 */
bool		replclient_connect(ReplClient *rc, const char *conninfo,
							   const char *application_name, SyncError *err);

/*
 * Build the START_REPLICATION command for opts and this server into buf.
 * Exposed for unit tests.  Returns false if the slot name is not a valid
 * replication slot name or buf is too small.
 */
bool		replclient_build_start(const ReplClient *rc,
								   const ReplStartOptions *opts, char *buf,
								   size_t bufsize, SyncError *err);

/* START_REPLICATION; the connection is in CopyBoth mode afterwards. */
bool		replclient_start(ReplClient *rc, const ReplStartOptions *opts,
							 SyncError *err);

/*
 * Wait up to timeout_ms for the next message.  Returns 1 and fills *msg
 * (valid until the next call), 0 on timeout, -1 with err set on error, when
 * the server ended the stream, or when nothing arrived for
 * receive_timeout_ms of waiting.  Keepalives asking for a reply are answered
 * here, and a status update is sent whenever status_interval_ms has passed,
 * so the caller only has to call this often enough.  With timeout_ms 0 only
 * messages already read from the socket are returned (no system call).
 */
int			replclient_next(ReplClient *rc, int timeout_ms, ReplMessage *msg,
							SyncError *err);

/* Send a status update now (ping asks the server to answer at once). */
bool		replclient_send_status(ReplClient *rc, bool ping, SyncError *err);

/* End COPY gracefully if streaming, and close. Safe on a zeroed client. */
void		replclient_close(ReplClient *rc);

/* Monotonic microseconds. */
int64_t		replclient_now_us(void);

/* Wall clock as a PostgreSQL timestamp. */
PgTimestamp replclient_wallclock(void);

#endif
