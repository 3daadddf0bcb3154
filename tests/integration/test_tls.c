/*
 * tests/integration/test_tls.c -- TLS on every connection pgstream opens.
 *
 * The fixture makes a test CA and a server certificate for localhost and
 * 127.0.0.1 (SAN) with the openssl command (run without a shell), plus a
 * second, unrelated CA; both clusters run with ssl=on and that certificate.
 * pg_hba.conf then refuses every TCP connection without TLS
 * (hostnossl ... reject), so a connection that silently went without TLS
 * (pg_dump, the replication connection, the apply connections) fails.
 * Then over TCP:
 *   - sync --no-follow with sslmode=verify-full and the right CA succeeds
 *     (the replication connection and pg_dump use the same settings), and
 *     every table's rows (count and md5 digest) and the sequence are equal;
 *   - live sync over verify-full: streams changes made while it runs (its
 *     walsender and its target sessions are shown as TLS in pg_stat_ssl),
 *     then cutover over verify-full; the data is identical;
 *   - the wrong CA fails with one line naming the problem and sslrootcert;
 *   - a host name the certificate was not issued for fails the same way
 *     (host=wrong.invalid hostaddr=127.0.0.1: libpq connects to hostaddr
 *     and checks the certificate against host);
 *   - assess says both connections are encrypted and verified, and warns
 *     when a non-loopback host name is used without verification.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/suites.h"
#include "tests/support/cluster.h"
#include "tests/support/itest.h"
#include "tests/support/proc.h"

#define RUN_TIMEOUT_MS 180000
#define CONNINFO_MAX (PATH_MAX * 2 + 256)

static Cluster source;
static Cluster target;
static char certdir[PATH_MAX];

static const char *
pgstream_bin(void)
{
	const char *bin = getenv("PGSTREAM_BIN");

	ck_assert_msg(bin != NULL && *bin != '\0', "PGSTREAM_BIN is not set");
	return bin;
}

/* Run openssl in certdir; abort the fixture on failure. */
static void
openssl(const char *const args[])
{
	const char *argv[24];
	char *out = NULL;
	char *err = NULL;
	int n = 0;
	int status;

	argv[n++] = "openssl";
	for (int i = 0; args[i] != NULL && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	status = proc_run_in(certdir, argv, NULL, 60000, &out, &err);
	ck_assert_msg(status == 0, "openssl %s failed (%d): %s", args[0], status,
	              err ? err : "");
	free(out);
	free(err);
}

static void
write_file(const char *name, const char *text)
{
	char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", certdir, name);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "cannot write %s", path);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void
make_certificates(void)
{
	static const char *const ca[] = {
	    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
	    "-out", "ca.crt", "-days", "2", "-subj", "/CN=pgstream test CA", NULL};
	static const char *const wrong_ca[] = {
	    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
	    "wrongca.key", "-out", "wrongca.crt", "-days", "2", "-subj",
	    "/CN=pgstream unrelated CA", NULL};
	static const char *const csr[] = {
	    "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout",
	    "server.key", "-out", "server.csr", "-subj", "/CN=localhost", NULL};
	static const char *const sign[] = {
	    "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey",
	    "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2",
	    "-extfile", "san.ext", NULL};

	snprintf(certdir, sizeof(certdir), "/tmp/pgstream-tls-XXXXXX");
	ck_assert(mkdtemp(certdir) != NULL);
	openssl(ca);
	openssl(wrong_ca);
	openssl(csr);
	write_file("san.ext", "subjectAltName = DNS:localhost, IP:127.0.0.1\n");
	openssl(sign);
}

/* Copy a file from certdir into the cluster's data directory. */
static void
install(const Cluster *c, const char *name, mode_t mode)
{
	char from[PATH_MAX + 64];
	char to[PATH_MAX + 64];
	char *data;
	FILE *f;
	struct passwd *pw = getpwnam("postgres");

	snprintf(from, sizeof(from), "%s/%s", certdir, name);
	snprintf(to, sizeof(to), "%s/%s", c->datadir, name);
	data = proc_read_file(from);
	ck_assert_msg(data != NULL, "cannot read %s", from);
	f = fopen(to, "w");
	ck_assert_msg(f != NULL, "cannot write %s", to);
	fputs(data, f);
	ck_assert_int_eq(fclose(f), 0);
	free(data);
	ck_assert_int_eq(chmod(to, mode), 0);
	/* the server refuses a key file it does not own (or root, 0640) */
	if (geteuid() == 0 && pw != NULL)
		ck_assert_int_eq(chown(to, pw->pw_uid, pw->pw_gid), 0);
}

static void
configure_ssl(Cluster *c)
{
	install(c, "server.crt", 0644);
	install(c, "server.key", 0600);
	ck_assert(cluster_set(c, "ssl = on"));
	ck_assert(cluster_set(c, "ssl_cert_file = 'server.crt'"));
	ck_assert(cluster_set(c, "ssl_key_file = 'server.key'"));
}

static void
remove_certdir(void)
{
	static const char *const names[] = {"ca.key", "ca.crt", "ca.srl",
	                                    "wrongca.key", "wrongca.crt",
	                                    "server.key", "server.csr",
	                                    "server.crt", "san.ext"};
	char path[PATH_MAX + 64];

	if (certdir[0] == '\0')
		return;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
	{
		snprintf(path, sizeof(path), "%s/%s", certdir, names[i]);
		unlink(path);
	}
	rmdir(certdir);
	certdir[0] = '\0';
}

/* The harness keeps the Unix socket; TCP only with TLS. */
static const char hba_tls_only[] =
    "local all all trust\n"
    "hostssl all all 127.0.0.1/32 trust\n"
    "hostssl replication all 127.0.0.1/32 trust\n"
    "hostnossl all all 127.0.0.1/32 reject\n"
    "hostnossl replication all 127.0.0.1/32 reject\n";

static void
require_tls(Cluster *c)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/pg_hba.conf", c->datadir);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "cannot write %s", path);
	fputs(hba_tls_only, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert(cluster_reload(c));
}

static void
clusters_setup(void)
{
	make_certificates();
	ck_assert(cluster_init(&source, "source", CLUSTER_LOGICAL));
	ck_assert(cluster_init(&target, "target", 0));
	configure_ssl(&source);
	configure_ssl(&target);
	ck_assert(cluster_start(&source));
	ck_assert(cluster_start(&target));
	require_tls(&source);
	require_tls(&target);
}

static void
clusters_teardown(void)
{
	cluster_destroy(&source);
	cluster_destroy(&target);
	remove_certdir();
}

/* ---- helpers ---- */

static void
make_db(const Cluster *c, const char *name)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	ck_assert(cluster_psql(c, "postgres", sql));
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	ck_assert(cluster_psql(c, "postgres", sql));
}

/* TCP conninfo; host may carry extra keywords ("x hostaddr=127.0.0.1");
 * rootcert NULL leaves sslrootcert out. */
static void
tls_conninfo(char *buf, const Cluster *c, const char *dbname,
             const char *host, const char *sslmode, const char *rootcert)
{
	int n = snprintf(buf, CONNINFO_MAX,
	                 "host=%s port=%d user=postgres dbname=%s sslmode=%s"
	                 " connect_timeout=10",
	                 host, c->port, dbname, sslmode);

	if (rootcert != NULL)
		snprintf(buf + n, CONNINFO_MAX - (size_t) n, " sslrootcert='%s/%s'",
		         certdir, rootcert);
}

static int
run(const char *const argv[], char **out, char **err)
{
	int status = proc_run(argv, NULL, RUN_TIMEOUT_MS, out, err);

	if (*out == NULL)
		*out = strdup("");
	if (*err == NULL)
		*err = strdup("");
	return status;
}

/* Exactly one stderr line holds every needle. */
static void
assert_one_line(const char *err, const char *const needles[])
{
	int matching = 0;
	const char *line = err;

	while (*line)
	{
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t) (end - line) : strlen(line);
		char *copy = strndup(line, len);
		bool all = true;

		for (int i = 0; needles[i] != NULL; i++)
			all = all && strstr(copy, needles[i]) != NULL;
		matching += all;
		free(copy);
		line += len + (end ? 1 : 0);
	}
	ck_assert_msg(matching == 1, "%d lines hold \"%s\" and the rest:\n%s",
	              matching, needles[0], err);
}

static void
assert_no_traces(const char *srcdb, const char *tgtdb)
{
	char *v;

	v = cluster_query_scalar(&source, "postgres",
	                         "SELECT count(*) FROM pg_replication_slots");
	ck_assert_str_eq(v ? v : "NULL", "0");
	free(v);
	v = cluster_query_scalar(&source, srcdb,
	                         "SELECT count(*) FROM pg_publication");
	ck_assert_str_eq(v ? v : "NULL", "0");
	free(v);
	v = cluster_query_scalar(&target, tgtdb,
	                         "SELECT count(*) FROM pg_namespace"
	                         " WHERE nspname = 'pgstream'");
	ck_assert_str_eq(v ? v : "NULL", "0");
	free(v);
}

static const char schema_sql[] =
    "CREATE TABLE t (id int PRIMARY KEY, v text);"
    "INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 1000) i;"
    "CREATE SEQUENCE s START 42;";

/*
 * Every table of the source has the same row count and md5 of its rows
 * (itest_table_fingerprint) on the target, and the sequence the same
 * last_value: content, not only counts and lengths.
 */
static void
assert_same_content(const char *srcdb, const char *tgtdb,
                    const char *const tables[])
{
	for (int i = 0; tables[i] != NULL; i++)
	{
		char *a = itest_table_fingerprint(&source, srcdb, tables[i]);
		char *b = itest_table_fingerprint(&target, tgtdb, tables[i]);

		ck_assert_msg(strcmp(a, b) == 0, "table %s differs: source %s, "
		              "target %s", tables[i], a, b);
		free(a);
		free(b);
	}
	itest_assert_scalar_equal(&source, srcdb, &target, tgtdb,
	                          "SELECT last_value || ' ' || is_called FROM s");
	/* and pgstream did not compare two empty sides */
	itest_assert_scalar(&target, tgtdb, "SELECT count(*) > 0 FROM t", "t");
}

/* ---- tests ---- */

START_TEST(verify_full_sync_succeeds)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	char *out;
	char *err;
	int status;

	make_db(&source, "tls_src");
	make_db(&target, "tls_tgt");
	ck_assert(cluster_psql(&source, "tls_src", schema_sql));
	tls_conninfo(src, &source, "tls_src", "localhost", "verify-full", "ca.crt");
	tls_conninfo(tgt, &target, "tls_tgt", "localhost", "verify-full", "ca.crt");
	{
		const char *const argv[] = {pgstream_bin(), "sync", "--source", src,
		                            "--target", tgt, "--no-follow", "--quiet",
		                            "--slot", "tls_slot", NULL};

		status = run(argv, &out, &err);
	}
	ck_assert_msg(status == 0, "sync over verify-full failed (%d):\n%s", status,
	              err);
	free(out);
	free(err);
	assert_same_content("tls_src", "tls_tgt", (const char *const[]){"t", NULL});
	assert_no_traces("tls_src", "tls_tgt");
}
END_TEST

/*
 * Live sync over verify-full: the copy, then changes streamed while sync
 * runs, then cutover, every connection over TLS (pg_hba.conf refuses TCP
 * without it, and pg_stat_ssl shows it).
 */
START_TEST(live_sync_over_verify_full_through_cutover)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	Proc sync;
	char *out;
	char *err;
	int status;

	make_db(&source, "tlsl_src");
	make_db(&target, "tlsl_tgt");
	ck_assert(cluster_psql(&source, "tlsl_src", schema_sql));
	tls_conninfo(src, &source, "tlsl_src", "localhost", "verify-full",
	             "ca.crt");
	tls_conninfo(tgt, &target, "tlsl_tgt", "localhost", "verify-full",
	             "ca.crt");
	{
		const char *const argv[] = {pgstream_bin(), "sync", "--source", src,
		                            "--target", tgt, "--quiet", "--slot",
		                            "tlsl_slot", NULL};

		ck_assert(proc_spawn(&sync, argv, NULL));
	}
	if (!cluster_wait_for(&target, "tlsl_tgt",
	                      "SELECT phase = 'streaming' FROM pgstream.migration",
	                      120000))
	{
		itest_print_proc("pgstream sync", &sync, proc_wait(&sync, 0));
		ck_abort_msg("sync over TLS never reached phase streaming");
	}
	/* changes made while streaming: inserts, updates, deletes, nextval */
	ck_assert(cluster_psql(&source, "tlsl_src",
	                       "INSERT INTO t SELECT i, md5(i::text) || 'live'"
	                       " FROM generate_series(1001, 3000) i;"
	                       "UPDATE t SET v = v || 'u' WHERE id % 7 = 0;"
	                       "DELETE FROM t WHERE id % 11 = 0;"
	                       "SELECT nextval('s') FROM generate_series(1, 5);"));
	ck_assert_msg(cluster_wait_for(&target, "tlsl_tgt",
	                               "SELECT count(*) = 2728 FROM t", 60000),
	              "the changes made while streaming were not applied");
	/* the walsender pgstream streams from, and pgstream's target sessions,
	 * are encrypted */
	itest_assert_scalar(&source, "postgres",
	                    "SELECT count(*) FILTER (WHERE s.ssl) || '/' ||"
	                    " count(*) FROM pg_stat_replication r"
	                    " JOIN pg_stat_ssl s USING (pid)"
	                    " WHERE r.application_name = 'pgstream sync'",
	                    "1/1");
	itest_assert_scalar(&target, "postgres",
	                    "SELECT count(*) > 0 AND bool_and(s.ssl)"
	                    " FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
	                    " WHERE a.datname = 'tlsl_tgt'"
	                    " AND a.application_name LIKE 'pgstream%'",
	                    "t");
	{
		const char *const argv[] = {pgstream_bin(), "cutover", "--source",
		                            src, "--target", tgt, "--json",
		                            "--timeout", "120", NULL};

		status = run(argv, &out, &err);
	}
	if (status != 0)
		itest_print_output("pgstream cutover", status, out, err);
	ck_assert_int_eq(status, 0);
	itest_strip_space(out);
	ck_assert_msg(strstr(out, "\"row_counts_equal\":true") != NULL,
	              "cutover report: %s", out);
	free(out);
	free(err);
	status = proc_wait(&sync, 60000);
	if (status != 0)
		itest_print_proc("pgstream sync", &sync, status);
	ck_assert_msg(status == 0, "sync exited %d after the cutover", status);
	proc_release(&sync);
	assert_same_content("tlsl_src", "tlsl_tgt",
	                    (const char *const[]){"t", NULL});
	assert_no_traces("tlsl_src", "tlsl_tgt");
}
END_TEST

START_TEST(wrong_ca_fails_clearly)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const needles[] = {"could not connect to source",
	                                      "certificate verify failed",
	                                      "sslrootcert", NULL};
	char *out;
	char *err;
	int status;

	make_db(&source, "tls_src");
	make_db(&target, "tls_tgt");
	ck_assert(cluster_psql(&source, "tls_src", schema_sql));
	tls_conninfo(src, &source, "tls_src", "localhost", "verify-full",
	             "wrongca.crt");
	tls_conninfo(tgt, &target, "tls_tgt", "localhost", "verify-full", "ca.crt");
	{
		const char *const argv[] = {pgstream_bin(), "sync", "--source", src,
		                            "--target", tgt, "--no-follow", "--quiet",
		                            "--slot", "tls_slot", NULL};

		status = run(argv, &out, &err);
	}
	ck_assert_msg(status == 4, "sync with the wrong CA: exit %d\n%s", status,
	              err);
	assert_one_line(err, needles);
	free(out);
	free(err);
	assert_no_traces("tls_src", "tls_tgt");
}
END_TEST

START_TEST(wrong_host_name_fails_clearly)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const needles[] = {"could not connect to target",
	                                      "does not match host name",
	                                      "wrong.invalid", "verify-ca", NULL};
	char *out;
	char *err;
	int status;

	make_db(&source, "tls_src");
	make_db(&target, "tls_tgt");
	ck_assert(cluster_psql(&source, "tls_src", schema_sql));
	tls_conninfo(src, &source, "tls_src", "localhost", "verify-full", "ca.crt");
	tls_conninfo(tgt, &target, "tls_tgt", "wrong.invalid hostaddr=127.0.0.1",
	             "verify-full", "ca.crt");
	{
		const char *const argv[] = {pgstream_bin(), "assess", "--source", src,
		                            "--target", tgt, NULL};

		status = run(argv, &out, &err);
	}
	ck_assert_msg(status == 4, "assess with a wrong host name: exit %d\n%s",
	              status, err);
	assert_one_line(err, needles);
	free(out);
	free(err);
	{
		const char *const argv[] = {pgstream_bin(), "sync", "--source", src,
		                            "--target", tgt, "--no-follow", "--quiet",
		                            "--slot", "tls_slot", NULL};

		status = run(argv, &out, &err);
	}
	ck_assert_msg(status == 4, "sync with a wrong host name: exit %d\n%s",
	              status, err);
	assert_one_line(err, needles);
	free(out);
	free(err);
	assert_no_traces("tls_src", "tls_tgt");
}
END_TEST

START_TEST(assess_reports_tls_in_use_and_verified)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	static const char *const src_ok[] = {
	    "info: tls (source)", "encrypted (TLS", "is verified (sslmode=verify-full)",
	    NULL};
	static const char *const tgt_ok[] = {
	    "info: tls (target)", "encrypted (TLS", "is verified (sslmode=verify-ca)",
	    NULL};
	static const char *const src_warn[] = {
	    "warning: tls (source)", "\"db.example.invalid\"", "not verified",
	    "sslmode=verify-full", NULL};
	char *out;
	char *err;
	int status;

	make_db(&source, "tls_src");
	make_db(&target, "tls_tgt");
	ck_assert(cluster_psql(&source, "tls_src", schema_sql));
	tls_conninfo(src, &source, "tls_src", "localhost", "verify-full", "ca.crt");
	tls_conninfo(tgt, &target, "tls_tgt", "127.0.0.1", "verify-ca", "ca.crt");
	{
		const char *const argv[] = {pgstream_bin(), "assess", "--source", src,
		                            "--target", tgt, "--no-follow", NULL};

		status = run(argv, &out, &err);
	}
	ck_assert_msg(status == 0, "assess: exit %d\n%s", status, err);
	assert_one_line(err, src_ok);
	assert_one_line(err, tgt_ok);
	free(out);
	free(err);
	/* a name that is not loopback, encrypted but unverified: a warning */
	tls_conninfo(src, &source, "tls_src", "db.example.invalid hostaddr=127.0.0.1",
	             "require", NULL);
	{
		const char *const argv[] = {pgstream_bin(), "assess", "--source", src,
		                            "--target", tgt, "--no-follow", NULL};

		status = run(argv, &out, &err);
	}
	ck_assert_msg(status == 0, "assess: exit %d\n%s", status, err);
	assert_one_line(err, src_warn);
	free(out);
	free(err);
}
END_TEST

Suite *
tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("tls");

	tcase_add_unchecked_fixture(tc, clusters_setup, clusters_teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, verify_full_sync_succeeds);
	tcase_add_test(tc, live_sync_over_verify_full_through_cutover);
	tcase_add_test(tc, wrong_ca_fails_clearly);
	tcase_add_test(tc, wrong_host_name_fails_clearly);
	tcase_add_test(tc, assess_reports_tls_in_use_and_verified);
	suite_add_tcase(s, tc);
	return s;
}
