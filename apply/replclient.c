/*
 * apply/replclient.c -- walsender client over libpq.
 *
 * The loop follows pg_recvlogical's StreamLogicalLog(): PQgetCopyData in
 * async mode, poll() on the socket when it has nothing, keepalive replies and
 * periodic status updates, but split into a step function the caller drives.
 */
#include "apply/replclient.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "apply/pgconn.h"
#include "protocol/names.h"

#define DEFAULT_STATUS_INTERVAL_MS 10000
#define DEFAULT_RECEIVE_TIMEOUT_MS 60000	/* wal_receiver_timeout's default */

int64_t
replclient_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

PgTimestamp
replclient_wallclock(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return timestamp_from_unix_us((int64_t) tv.tv_sec * 1000000 + tv.tv_usec);
}

/* libpq's error message for the replication connection, on one line. */
static const char *
conn_error(const ReplClient *rc, char *buf, size_t size)
{
	return pgconn_one_line(PQerrorMessage(rc->conn), buf, size);
}

int
replclient_max_proto(int server_version)
{
	if (server_version >= 160000)
		return 4;
	if (server_version >= 150000)
		return 3;
	if (server_version >= 140000)
		return 2;
	if (server_version >= 100000)
		return 1;
	return 0;
}

static bool
identify_system(ReplClient *rc, SyncError *err)
{
	PGresult   *res = pgconn_query(rc->conn, "IDENTIFY_SYSTEM", 0, NULL, err);

	if (res == NULL)
		return sync_error_context(err, "IDENTIFY_SYSTEM failed");
	if (PQntuples(res) != 1 || PQnfields(res) < 4 ||
		!lsn_parse(PQgetvalue(res, 0, 2), &rc->server_flush_lsn))
	{
		PQclear(res);
		return sync_error_set(err, SYNC_ERR_INVALID,
							  "IDENTIFY_SYSTEM returned an unexpected result");
	}
	snprintf(rc->systemid, sizeof(rc->systemid), "%s", PQgetvalue(res, 0, 0));
	rc->timeline = (unsigned) strtoul(PQgetvalue(res, 0, 1), NULL, 10);
	snprintf(rc->dbname, sizeof(rc->dbname), "%s", PQgetvalue(res, 0, 3));
	PQclear(res);
	return true;
}

bool
replclient_connect(ReplClient *rc, const char *conninfo,
				   const char *application_name, SyncError *err)
{
	PgconnOptions opts = {PGCONN_REPLICATION, application_name, true, NULL};

	memset(rc, 0, sizeof(*rc));
	rc->status_interval_ms = DEFAULT_STATUS_INTERVAL_MS;
	rc->receive_timeout_ms = DEFAULT_RECEIVE_TIMEOUT_MS;
#ifdef PGSTREAM_FAILPOINTS
	/* test builds: a short timeout for the tests of a silent source */
	if (getenv("PGSTREAM_RECEIVE_TIMEOUT_MS") != NULL)
		rc->receive_timeout_ms = (int) strtol(getenv("PGSTREAM_RECEIVE_TIMEOUT_MS"), NULL, 10);
#endif
	rc->conn = pgconn_connect(conninfo, &opts, "source (replication)", err);
	if (rc->conn == NULL)
		return false;
	rc->server_version = PQserverVersion(rc->conn);
	if (replclient_max_proto(rc->server_version) == 0)
	{
		replclient_close(rc);
		return sync_error_set(err, SYNC_ERR_PRECONDITION,
							  "source server version %d has no pgoutput "
							  "(PostgreSQL 10 or later is required)",
							  rc->server_version / 10000);
	}
	if (!identify_system(rc, err))
	{
		replclient_close(rc);
		return false;
	}
	return true;
}

/*
 * publication_names is split with SplitIdentifierString, then the whole list
 * is a single-quoted literal: quote the name as an identifier ("" doubles a
 * double quote), then double every single quote.
 */
static bool
quote_publication(const char *pub, char *buf, size_t bufsize)
{
	size_t		o = 0;

	if (bufsize < 3)
		return false;
	buf[o++] = '"';
	for (const char *p = pub; *p; p++)
	{
		int			reps = (*p == '"' || *p == '\'') ? 2 : 1;

		for (int i = 0; i < reps; i++)
		{
			if (o + 2 >= bufsize)
				return false;
			buf[o++] = *p;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return true;
}

bool
replclient_build_start(const ReplClient *rc, const ReplStartOptions *opts,
					   char *buf, size_t bufsize, SyncError *err)
{
	char		pub[512],
				pub2[512] = "";
	int			proto = replclient_max_proto(rc->server_version);
	bool		v14 = rc->server_version >= 140000;
	int			n;

	if (!names_slot_valid(opts->slot))
		return sync_error_set(err, SYNC_ERR_USAGE,
							  "invalid replication slot name \"%s\": use 1 to 63 "
							  "lower case letters, digits and underscores",
							  opts->slot);
	if (!quote_publication(opts->publication, pub, sizeof(pub)) ||
		(opts->extra_publication &&
		 !quote_publication(opts->extra_publication, pub2 + 1, sizeof(pub2) - 1)))
		return sync_error_set(err, SYNC_ERR_USAGE, "publication name too long");
	if (pub2[1] != '\0')
		pub2[0] = ',';
	n = snprintf(buf, bufsize,
				 "START_REPLICATION SLOT %s LOGICAL %X/%X (proto_version '%d', "
				 "publication_names '%s%s'%s%s)",
				 opts->slot, LSN_ARGS(opts->start_lsn), proto, pub, pub2,
				 v14 && opts->want_messages ? ", messages 'true'" : "",
				 v14 && opts->want_streaming ? ", streaming 'on'" : "");
	if (n < 0 || (size_t) n >= bufsize)
		return sync_error_set(err, SYNC_ERR_INTERNAL, "START_REPLICATION too long");
	return true;
}

bool
replclient_start(ReplClient *rc, const ReplStartOptions *opts, SyncError *err)
{
	char		cmd[1024];
	PGresult   *res;

	if (!replclient_build_start(rc, opts, cmd, sizeof(cmd), err))
		return false;
	res = PQexec(rc->conn, cmd);
	if (PQresultStatus(res) != PGRES_COPY_BOTH)
	{
		pgconn_error_from_result(rc->conn, res, err);
		return sync_error_context(err, "could not start replication from slot \"%s\"",
								  opts->slot);
	}
	PQclear(res);
	rc->proto_version = replclient_max_proto(rc->server_version);
	rc->streaming = rc->server_version >= 140000 && opts->want_streaming;
	rc->messages = rc->server_version >= 140000 && opts->want_messages;
	feedback_init(&rc->feedback, opts->start_lsn);
	rc->last_status_us = rc->last_recv_us = replclient_now_us();
	rc->silent_us = 0;
	rc->ping_sent = false;
	return true;
}

bool
replclient_send_status(ReplClient *rc, bool ping, SyncError *err)
{
	uint8_t		buf[REPL_STATUS_UPDATE_LEN];
	char		msg[SYNC_ERROR_MESSAGE_MAX];
	Lsn			write_lsn,
				flush_lsn;
	size_t		n;

	feedback_next(&rc->feedback, &write_lsn, &flush_lsn);
	if (!rc->confirm)
		flush_lsn = INVALID_LSN;
	n = replication_encode_status(buf, write_lsn, flush_lsn, INVALID_LSN,
								  replclient_wallclock(), ping);
	if (PQputCopyData(rc->conn, (const char *) buf, (int) n) <= 0 ||
		PQflush(rc->conn) != 0)
		return sync_error_set(err, SYNC_ERR_CONNECT,
							  "could not send status update to source: %s",
							  conn_error(rc, msg, sizeof(msg)));
	rc->last_status_us = replclient_now_us();
	return true;
}

/*
 * Wait for the socket to become readable, at most timeout_ms.  A wait that
 * ends without bytes adds to the silence (see receive_timeout_ms).
 */
static int
wait_readable(ReplClient *rc, int timeout_ms, SyncError *err)
{
	struct pollfd pfd = {PQsocket(rc->conn), POLLIN, 0};
	char		msg[SYNC_ERROR_MESSAGE_MAX];
	int64_t		start = replclient_now_us();
	int			r;

	if (pfd.fd < 0)
	{
		sync_error_set(err, SYNC_ERR_CONNECT, "source connection lost");
		return -1;
	}
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0 && errno != EINTR)
	{
		sync_error_set(err, SYNC_ERR_IO, "poll failed: %s", strerror(errno));
		return -1;
	}
	if (r > 0)
	{
		rc->silent_us = 0;
		rc->ping_sent = false;
	}
	else
		rc->silent_us += replclient_now_us() - start;
	if (r > 0 && PQconsumeInput(rc->conn) == 0)
	{
		sync_error_set(err, SYNC_ERR_CONNECT, "lost connection to source: %s",
							  conn_error(rc, msg, sizeof(msg)));
		return -1;
	}
	return r > 0 ? 1 : 0;
}

/* The stream ended (-1) or failed (-2): fill err from the final result. */
static int
stream_ended(ReplClient *rc, int r, SyncError *err)
{
	PGresult   *res = PQgetResult(rc->conn);
	char		msg[SYNC_ERROR_MESSAGE_MAX];

	if (r == -2 || PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		if (res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR)
			pgconn_error_from_result(rc->conn, res, err);
		else
		{
			PQclear(res);
			sync_error_set(err, SYNC_ERR_CONNECT, "%s",
						   *PQerrorMessage(rc->conn) ? conn_error(rc, msg, sizeof(msg))
						   : "replication stream failed");
		}
		sync_error_context(err, "replication stream from source ended");
		return -1;
	}
	PQclear(res);
	sync_error_set(err, SYNC_ERR_CONNECT,
						  "source ended the replication stream");
	return -1;
}

/* Handle one CopyData payload; returns 1 when it is a message for the caller. */
static int
handle_copydata(ReplClient *rc, int len, int64_t now, ReplMessage *msg, SyncError *err)
{
	if (replication_decode((const uint8_t *) rc->copybuf, (size_t) len, msg, err) != DECODE_OK)
	{
		sync_error_context(err, "invalid message from source");
		return -1;
	}
	rc->last_recv_us = now;
	rc->silent_us = 0;
	rc->ping_sent = false;
	/* data clears the idle flag: it must not be confirmed before it is applied */
	if (msg->kind == REPL_MSG_XLOGDATA)
		feedback_note_data(&rc->feedback, msg->data_start);
	feedback_note_received(&rc->feedback, msg->wal_end);
	if (msg->kind == REPL_MSG_KEEPALIVE && msg->reply_requested &&
		!replclient_send_status(rc, false, err))
		return -1;
	return 1;
}

/*
 * True (err filled) when the source has been silent too long.  Half way to
 * receive_timeout_ms ask it for a reply (an idle but healthy walsender
 * answers at once); at the timeout give up with an error that makes sync
 * reconnect.  Without this a connection cut
 * silently (a dead network path, a frozen server) waited forever.
 */
static bool
receive_timed_out(ReplClient *rc, SyncError *err)
{
	int64_t		limit_us = (int64_t) rc->receive_timeout_ms * 1000;

	if (rc->receive_timeout_ms <= 0)
		return false;
	if (rc->silent_us >= limit_us)
	{
		sync_error_set(err, SYNC_ERR_CONNECT,
					   "nothing received from the source for %d s (receive timeout); "
					   "the connection is presumed lost",
					   (rc->receive_timeout_ms + 999) / 1000);
		return true;
	}
	if (!rc->ping_sent && rc->silent_us >= limit_us / 2)
	{
		if (!replclient_send_status(rc, true, err))
			return true;
		rc->ping_sent = true;
	}
	return false;
}

/*
 * The clock is read once per call and again only after a wait: a busy
 * stream calls this once per message.  With a timeout, whatever the socket
 * already holds is read before poll() is asked (under load it nearly always
 * holds something, and that saves a system call per wake-up).
 */
int
replclient_next(ReplClient *rc, int timeout_ms, ReplMessage *msg, SyncError *err)
{
	int64_t		now = replclient_now_us();
	int64_t		deadline = now + (int64_t) timeout_ms * 1000;
	bool		consumed = false;
	char		buf[SYNC_ERROR_MESSAGE_MAX];

	for (;;)
	{
		int			r;

		if (receive_timed_out(rc, err))
			return -1;
		if (now - rc->last_status_us >= (int64_t) rc->status_interval_ms * 1000 &&
			!replclient_send_status(rc, false, err))
			return -1;
		PQfreemem(rc->copybuf);
		rc->copybuf = NULL;
		r = PQgetCopyData(rc->conn, &rc->copybuf, 1);
		if (r > 0)
			return handle_copydata(rc, r, now, msg, err);
		if (r < 0)
			return stream_ended(rc, r, err);
		if (timeout_ms > 0 && !consumed)
		{
			consumed = true;
			if (PQconsumeInput(rc->conn) == 0)
			{
				sync_error_set(err, SYNC_ERR_CONNECT, "lost connection to source: %s",
									  conn_error(rc, buf, sizeof(buf)));
				return -1;
			}
			continue;
		}
		if (now >= deadline)
			return 0;
		{
			int64_t		wait_ms = (deadline - now) / 1000 + 1;
			int64_t		status_ms = rc->status_interval_ms -
				(now - rc->last_status_us) / 1000;

			if (status_ms < wait_ms)
				wait_ms = status_ms > 0 ? status_ms : 0;
			if (rc->receive_timeout_ms > 0)
			{
				/* wake for the ping and for the timeout */
				int64_t		next = rc->ping_sent ? rc->receive_timeout_ms :
					rc->receive_timeout_ms / 2;
				int64_t		left_ms = next - rc->silent_us / 1000 + 1;

				if (left_ms < wait_ms)
					wait_ms = left_ms > 0 ? left_ms : 0;
			}
			if (wait_readable(rc, (int) wait_ms, err) < 0)
				return -1;
		}
		now = replclient_now_us();
	}
}

void
replclient_close(ReplClient *rc)
{
	PQfreemem(rc->copybuf);
	rc->copybuf = NULL;
	if (rc->conn != NULL && PQstatus(rc->conn) == CONNECTION_OK &&
		PQtransactionStatus(rc->conn) == PQTRANS_ACTIVE)
	{
		/* Best effort: end COPY so the walsender exits cleanly. */
		if (PQputCopyEnd(rc->conn, NULL) > 0)
			PQflush(rc->conn);
	}
	pgconn_close(rc->conn);
	rc->conn = NULL;
}
