/*
 * tests/integration/test_tls.c -- TLS on every connection pgstream opens.
 *
 * The fixture makes a test CA and a server certificate for localhost and
 * 127.0.0.1 (SAN) with the openssl command (run without a shell), plus a
 * second, unrelated CA; both clusters run with ssl=on and that certificate.
 * Then over TCP:
 *   - sync --no-follow with sslmode=verify-full and the right CA succeeds
 *     (the replication connection and pg_dump use the same settings);
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

/* ---- tests ---- */

START_TEST(verify_full_sync_succeeds)
{
	char src[CONNINFO_MAX];
	char tgt[CONNINFO_MAX];
	char *out;
	char *err;
	char *v;
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
	v = cluster_query_scalar(&target, "tls_tgt",
	                         "SELECT count(*) || ':' || sum(length(v)) FROM t");
	ck_assert_str_eq(v ? v : "NULL", "1000:32000");
	free(v);
	assert_no_traces("tls_src", "tls_tgt");
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
	tcase_add_test(tc, wrong_ca_fails_clearly);
	tcase_add_test(tc, wrong_host_name_fails_clearly);
	tcase_add_test(tc, assess_reports_tls_in_use_and_verified);
	suite_add_tcase(s, tc);
	return s;
}
