/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-creds.c - unit tests of libcore/creds.c.  Certificates are made at
 * test time with the openssl CLI in a temporary directory: a CA, a client
 * identity with the Teleport cluster attribute (OID 1.3.9999.1.7), one
 * without it, an RSA PKCS#1 key, a mismatched key, an encrypted key, a DER
 * file, garbage PEM, identity files.  Validity is checked through the
 * now_usec argument (expired, not yet valid, expiring within 7 days).  The
 * PEM splitter gets a table of cases, and a good identity file every
 * truncation and every single-bit flip.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "creds.h"
#include "err.h"
#include "profile.h"

#define DAY_USEC (INT64_C(86400) * 1000000)

static char dir[256];

static int64_t now_usec(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}

static const char *p(const char *name)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int r = system(cmd);
	if (r != 0)
		fprintf(stderr, "command failed (%d): %s\n", r, cmd);
	return r;
}

static void write_file(const char *name, const char *data, size_t len, mode_t mode)
{
	int fd = open(p(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t) len);
	close(fd);
	chmod(p(name), mode);
}

static char *slurp(const char *name, size_t *ret_len)
{
	FILE *f = fopen(p(name), "re");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	*ret_len = n;
	return buf;
}

static int setup(void **state)
{
	(void) state;
	snprintf(dir, sizeof(dir), "/tmp/test-creds.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	const char *q = "2>/dev/null";
	FILE *f = fopen(p("oid.cnf"), "we");
	if (!f)
		return -1;
	fputs("oid_section = new_oids\n[ new_oids ]\nteleportCluster = 1.3.9999.1.7\n"
	      "[ req ]\ndistinguished_name = dn\n[ dn ]\n",
	      f);
	fclose(f);
	if (sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
	       "-out ca.crt -days 30 -subj '/O=example.com/CN=Host CA' %s",
	       dir, q) ||
	    sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca2.key "
	       "-out ca2.crt -days 30 -subj '/O=other.example/CN=Other CA' %s",
	       dir, q) ||
	    /* client: 10 days, with the cluster attribute */
	    sh("cd %s && openssl req -config oid.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout c.key "
	       "-out c.csr -subj '/CN=5a9f3c0e-host.example.com/O=Instance/teleportCluster=cluster.from.oid' %s && "
	       "openssl x509 -req -in c.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out c.crt -days 10 %s",
	       dir, q, q) ||
	    /* no cluster attribute: the issuer's O names the cluster */
	    sh("cd %s && openssl req -newkey rsa:2048 -nodes -keyout rsa8.key -out r.csr -subj '/CN=alice' %s && "
	       "openssl pkey -in rsa8.key -traditional -out rsa.key %s && "
	       "openssl x509 -req -in r.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out rsa.crt -days 10 %s",
	       dir, q, q, q) ||
	    sh("cd %s && openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out other.key %s",
	       dir, q) ||
	    sh("cd %s && openssl pkey -in c.key -aes128 -passout pass:secret -out enc.key %s", dir,
	       q) ||
	    sh("cd %s && openssl x509 -in c.crt -outform DER -out c.der %s", dir, q) ||
	    sh("cd %s && cat ca.crt ca2.crt > cas.crt && chmod 600 *.key", dir))
		return -1;

	/* tctl-style identity file: key, SSH cert line, TLS cert, @cert-authority line, CA */
	size_t kl, cl, al;
	char *k = slurp("c.key", &kl), *c = slurp("c.crt", &cl), *a = slurp("ca.crt", &al);
	char *id = malloc(kl + cl + al + 512);
	int n = snprintf(
	    id, kl + cl + al + 512,
	    "%sssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t\n%s"
	    "@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG\n%s",
	    k, c, a);
	write_file("identity", id, (size_t) n, 0600);
	/* wrong order: certificate first */
	n = snprintf(id, kl + cl + al + 512, "%s%s%s", c, k, a);
	write_file("identity-swapped", id, (size_t) n, 0600);
	write_file("identity-keyonly", k, kl, 0600);
	/* CRLF line endings and no final newline */
	{
		char *crlf = malloc(2 * (kl + cl + al) + 1), *o = crlf;
		n = snprintf(id, kl + cl + al + 512, "%s%s%s", k, c, a);
		for (int i = 0; i < n; i++) {
			if (id[i] == '\n')
				*o++ = '\r';
			*o++ = id[i];
		}
		write_file("identity-crlf", crlf, (size_t) (o - crlf) - 2, 0600);
		free(crlf);
	}
	/* a real OpenSSH user certificate for the same key, and an expired one */
	if (sh("cd %s && ssh-keygen -q -t ed25519 -N '' -f sshca %s && ssh-keygen -y -f c.key > c.pub && "
	       "ssh-keygen -q -s sshca -I alice -n alice -V -1h:+1d c.pub %s && mv c-cert.pub good-cert.pub && "
	       "ssh-keygen -q -s sshca -I alice -n alice -V 20200101:20200102 c.pub %s && "
	       "mv c-cert.pub old-cert.pub",
	       dir, q, q, q))
		return -1;
	{
		size_t gl, ol, sl;
		char *g = slurp("good-cert.pub", &gl), *o = slurp("old-cert.pub", &ol);
		char *sca = slurp("sshca.pub", &sl);
		char *buf = malloc(kl + cl + al + gl + ol + sl + 512);
		n = sprintf(buf, "%s%s%s@cert-authority example.com,*.example.com %s%s", k, g, c, sca, a);
		write_file("identity-ssh", buf, (size_t) n, 0600);
		n = sprintf(buf, "%s%s%s%s", k, o, c, a);
		write_file("identity-sshold", buf, (size_t) n, 0600);
		n = sprintf(buf, "%s%s%s", k, c, a);
		write_file("identity-nossh", buf, (size_t) n, 0600);
		write_file("identity-nossh-cert.pub", g, gl, 0644);
		free(g);
		free(o);
		free(sca);
		free(buf);
	}
	free(k);
	free(c);
	free(a);
	free(id);

	/* tsh profiles: v17 (separate TLS and SSH keys, cas/) and v16 (one key, -x509.pem, certs.pem) */
	if (sh("cd %s && K=prof/keys/proxy.test && mkdir -p $K/cas $K/alice-ssh && "
	       "printf 'proxy.test\\n' > prof/current-profile && "
	       "printf 'web_proxy_addr: proxy.test:3080\\nuser: alice\\ncluster: example.com\\n"
	       "tls_routing_enabled: true\\ndynamic_forward_ports: []\\n' > prof/proxy.test.yaml && "
	       "cp c.crt $K/alice.crt && cp c.key $K/alice.key && cp other.key $K/alice && "
	       "cp ca.crt $K/cas/example.com.pem && cp ca2.crt $K/cas/leaf.example.pem && "
	       "cp good-cert.pub $K/alice-ssh/example.com-cert.pub && "
	       "printf '@cert-authority proxy.test,example.com ssh-ed25519 AAAAC3Nz type=host\\n' > prof/known_hosts && "
	       "K=prof16/keys/proxy.test && mkdir -p $K && cp prof/proxy.test.yaml prof16/ && "
	       "cp c.crt $K/alice-x509.pem && cp c.key $K/alice && cp ca.crt $K/certs.pem",
	       dir))
		return -1;

	static const char garbage[] =
	    "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n";
	write_file("garbage.crt", garbage, sizeof(garbage) - 1, 0644);
	write_file("empty.crt", "", 0, 0644);
	return 0;
}

static int teardown(void **state)
{
	(void) state;
	if (dir[0])
		sh("rm -rf %s", dir);
	return 0;
}

static struct tu_creds *load_pair(const char *crt, const char *key, const char *ca, int64_t now,
				  int want, const char *want_file, const char *want_msg)
{
	struct tu_creds *c = NULL;
	struct tu_err e;

	tu_err_clear(&e);
	int r = tu_creds_load_key_pair(p(crt), p(key), p(ca), now, TU_CREDS_RELAXED_PERMS, &c, &e);
	if (r != want)
		fail_msg("%s/%s/%s: got %d, want %d (%s)", crt, key, ca, r, want, e.msg);
	if (want < 0) {
		assert_null(c);
		assert_int_equal(e.code, want);
		/* PEM problems name the file in e.file, file access problems in the message */
		if (want_file && strcmp(e.file, p(want_file)) != 0 && !strstr(e.msg, p(want_file)))
			fail_msg("error names '%s', want '%s' (%s)", e.file, p(want_file), e.msg);
		if (want_msg && !strstr(e.msg, want_msg))
			fail_msg("'%s' lacks '%s'", e.msg, want_msg);
	}
	return c;
}

static void test_good_pair(void **state)
{
	size_t n;
	_cleanup_(tu_creds_freep) struct tu_creds *c = NULL;

	(void) state;
	c = load_pair("c.crt", "c.key", "ca.crt", now_usec(), 0, NULL, NULL);
	assert_non_null(c);
	assert_string_equal(tu_creds_subject_cn(c), "5a9f3c0e-host.example.com");
	assert_string_equal(tu_creds_cluster(c), "cluster.from.oid");
	assert_string_equal(tu_creds_source(c), p("c.crt"));
	assert_true(tu_creds_not_after_usec(c) > now_usec() + 9 * DAY_USEC);
	assert_true(tu_creds_not_after_usec(c) <= now_usec() + 10 * DAY_USEC + 1000000);
	assert_true(tu_creds_not_before_usec(c) <= now_usec());
	assert_false(tu_creds_expiring_soon(c, now_usec()));
	assert_true(tu_creds_expiring_soon(c, now_usec() + 4 * DAY_USEC));
	assert_int_equal(strncmp(tu_creds_cert_pem(c, &n), "-----BEGIN CERTIFICATE-----\n", 28), 0);
	assert_int_equal(n, strlen(tu_creds_cert_pem(c, NULL)));
	assert_int_equal(strncmp(tu_creds_key_pem(c, &n), "-----BEGIN PRIVATE KEY-----\n", 28), 0);
	assert_int_equal(n, strlen(tu_creds_key_pem(c, NULL)));
	assert_int_equal(strncmp(tu_creds_ca_pem(c, &n), "-----BEGIN CERTIFICATE-----\n", 28), 0);
	assert_int_equal(tu_creds_n_ca(c), 1);
	assert_null(tu_creds_free(TAKE_PTR(c)));

	/* RSA PKCS#1 key, no cluster attribute (issuer O), two CAs */
	c = load_pair("rsa.crt", "rsa.key", "cas.crt", now_usec(), 0, NULL, NULL);
	assert_string_equal(tu_creds_subject_cn(c), "alice");
	assert_string_equal(tu_creds_cluster(c), "example.com");
	assert_int_equal(strncmp(tu_creds_key_pem(c, NULL), "-----BEGIN RSA PRIVATE KEY-----", 31),
			 0);
	assert_int_equal(tu_creds_n_ca(c), 2);
	assert_null(tu_creds_free(NULL));
}

static void test_bad_pairs(void **state)
{
	int64_t now = now_usec();

	(void) state;
	load_pair("c.crt", "other.key", "ca.crt", now, -EBADMSG, "other.key",
		  "the private key does not match the certificate in");
	load_pair("c.crt", "rsa.key", "ca.crt", now, -EBADMSG, "rsa.key", "does not match");
	load_pair("nope.crt", "c.key", "ca.crt", now, -ENOENT, "nope.crt",
		  "No such file or directory");
	load_pair("c.crt", "nope.key", "ca.crt", now, -ENOENT, "nope.key",
		  "No such file or directory");
	load_pair("c.crt", "c.key", "nope.crt", now, -ENOENT, "nope.crt",
		  "No such file or directory");
	load_pair("garbage.crt", "c.key", "ca.crt", now, -EBADMSG, "garbage.crt",
		  "the client certificate does not parse");
	load_pair("c.crt", "c.key", "garbage.crt", now, -EBADMSG, "garbage.crt",
		  "a CA certificate does not parse");
	load_pair("c.der", "c.key", "ca.crt", now, -EBADMSG, "c.der", "not a PEM file");
	load_pair("empty.crt", "c.key", "ca.crt", now, -EBADMSG, "empty.crt",
		  "no PEM block in the file");
	load_pair("c.crt", "c.key", "c.key", now, -EBADMSG, "c.key",
		  "PEM block 'PRIVATE KEY' where a CA CERTIFICATE was expected");
	load_pair("c.key", "c.key", "ca.crt", now, -EBADMSG, "c.key",
		  "where only certificates are expected");
	load_pair("c.crt", "c.crt", "ca.crt", now, -EBADMSG, "c.crt",
		  "PEM block 'CERTIFICATE' where a PRIVATE KEY was expected");
	load_pair("c.crt", "enc.key", "ca.crt", now, -EBADMSG, "enc.key",
		  "the private key is encrypted");
	tu_creds_free(load_pair("c.crt", "c.key", "ca.crt", now, 0, NULL, NULL));
	/* directories are refused */
	{
		struct tu_creds *c = NULL;
		struct tu_err e;
		assert_int_equal(tu_creds_load_key_pair(dir, p("c.key"), p("ca.crt"), now,
							TU_CREDS_RELAXED_PERMS, &c, &e),
				 -EINVAL);
		assert_non_null(strstr(e.msg, "not a regular file"));
	}
}

/* Issue 10: TU_CREDS_DEFER_KEY_CHECK loads what an offline decision needs (the certificate)
 * and leaves the key, the CAs and their match to tu_creds_check_key(), which then fails exactly
 * as a full load does: same code, file, line and message. */
static void deferred_same_as_full(const char *crt, const char *key, const char *ca, int64_t now)
{
	struct tu_creds *full = NULL, *lazy = NULL;
	struct tu_err ef, el;

	tu_err_clear(&ef);
	tu_err_clear(&el);
	int rf = tu_creds_load_key_pair(p(crt), p(key), p(ca), now, TU_CREDS_RELAXED_PERMS, &full, &ef);
	int rl = tu_creds_load_key_pair(p(crt), p(key), p(ca), now, TU_CREDS_RELAXED_PERMS | TU_CREDS_DEFER_KEY_CHECK,
					&lazy, &el);
	assert_int_equal(rl, 0);
	assert_non_null(lazy);
	assert_string_equal(tu_creds_subject_cn(lazy), "5a9f3c0e-host.example.com");
	rl = tu_creds_check_key(lazy, &el);
	if (rl != rf || strcmp(el.msg, ef.msg) != 0 || strcmp(el.file, ef.file) != 0 || el.line != ef.line)
		fail_msg("%s/%s/%s: deferred %d '%s' %s:%u, full %d '%s' %s:%u", crt, key, ca, rl, el.msg, el.file,
			 el.line, rf, ef.msg, ef.file, ef.line);
	if (rf == 0)
		assert_int_equal(tu_creds_check_key(lazy, &el), 0); /* remembered */
	tu_creds_free(full);
	tu_creds_free(lazy);
}

static void test_deferred_key_check(void **state)
{
	int64_t now = now_usec();

	(void) state;
	deferred_same_as_full("c.crt", "c.key", "ca.crt", now);
	deferred_same_as_full("c.crt", "other.key", "ca.crt", now);
	deferred_same_as_full("c.crt", "rsa.key", "ca.crt", now);
	deferred_same_as_full("c.crt", "c.key", "garbage.crt", now);
	deferred_same_as_full("c.crt", "c.key", "c.key", now);
	deferred_same_as_full("c.crt", "c.crt", "ca.crt", now);
	deferred_same_as_full("c.crt", "enc.key", "ca.crt", now);
	/* a full load has nothing left to check */
	struct tu_creds *c = load_pair("c.crt", "c.key", "ca.crt", now, 0, NULL, NULL);
	struct tu_err e;
	assert_int_equal(tu_creds_check_key(c, &e), 0);
	tu_creds_free(c);
}

static void test_validity(void **state)
{
	struct tu_creds *c;

	(void) state;
	c = load_pair("c.crt", "c.key", "ca.crt", now_usec(), 0, NULL, NULL);
	int64_t nb = tu_creds_not_before_usec(c), na = tu_creds_not_after_usec(c);
	tu_creds_free(c);

	/* expired: at and after notAfter */
	load_pair("c.crt", "c.key", "ca.crt", na, -EKEYEXPIRED, "c.crt",
		  "the certificate expired on ");
	load_pair("c.crt", "c.key", "ca.crt", na + 365 * DAY_USEC, -EKEYEXPIRED, "c.crt", " UTC");
	/* the last valid microsecond */
	tu_creds_free(load_pair("c.crt", "c.key", "ca.crt", na - 1, 0, NULL, NULL));
	/* not yet valid, beyond the 5 minutes of clock skew tolerated */
	tu_creds_free(
	    load_pair("c.crt", "c.key", "ca.crt", nb - TU_CREDS_CLOCK_SKEW_USEC, 0, NULL, NULL));
	load_pair("c.crt", "c.key", "ca.crt", nb - TU_CREDS_CLOCK_SKEW_USEC - 1, -EKEYREJECTED,
		  "c.crt", "is not valid before");
	/* expiring soon: < 7 days */
	c = load_pair("c.crt", "c.key", "ca.crt", na - 7 * DAY_USEC + 1, 0, NULL, NULL);
	assert_true(tu_creds_expiring_soon(c, na - 7 * DAY_USEC + 1));
	assert_false(tu_creds_expiring_soon(c, na - 7 * DAY_USEC));
	tu_creds_free(c);
}

static void test_permissions(void **state)
{
	struct tu_creds *c = NULL;
	struct tu_err e;
	int64_t now = now_usec();

	(void) state;
	/* Files must be owned by root: as another user, only the refusal can be tested. */
	if (geteuid() != 0) {
		assert_int_equal(
		    tu_creds_load_key_pair(p("c.crt"), p("c.key"), p("ca.crt"), now, 0, &c, &e),
		    -EPERM);
		assert_non_null(strstr(e.msg, "must be root"));
		skip();
	}
	/* keys are 0600, certs 0644 (as openssl wrote them): accepted; a group-readable key too */
	sh("chmod 644 %s %s && chmod 640 %s", p("c.crt"), p("ca.crt"), p("c.key"));
	assert_int_equal(
	    tu_creds_load_key_pair(p("c.crt"), p("c.key"), p("ca.crt"), now, 0, &c, &e), 0);
	c = tu_creds_free(c);

	sh("chmod 644 %s", p("c.key"));
	assert_int_equal(
	    tu_creds_load_key_pair(p("c.crt"), p("c.key"), p("ca.crt"), now, 0, &c, &e), -EACCES);
	assert_non_null(strstr(e.msg, p("c.key")));
	assert_non_null(strstr(e.msg, "readable by others (mode 0644)"));
	assert_null(c);
	/* the relax flag skips it */
	assert_int_equal(tu_creds_load_key_pair(p("c.crt"), p("c.key"), p("ca.crt"), now,
						TU_CREDS_RELAXED_PERMS, &c, &e),
			 0);
	c = tu_creds_free(c);
	sh("chmod 600 %s", p("c.key"));

	/* a certificate is public, but must not be writable by others */
	sh("chmod 664 %s", p("ca.crt"));
	assert_int_equal(
	    tu_creds_load_key_pair(p("c.crt"), p("c.key"), p("ca.crt"), now, 0, &c, &e), -EACCES);
	assert_non_null(strstr(e.msg, p("ca.crt")));
	assert_non_null(strstr(e.msg, "writable by group (mode 0664)"));
	sh("chmod 644 %s", p("ca.crt"));

	sh("chmod 604 %s", p("identity"));
	assert_int_equal(tu_creds_load_identity(p("identity"), now, 0, &c, &e), -EACCES);
	assert_non_null(strstr(e.msg, "readable by others"));
	sh("chmod 600 %s", p("identity"));
	assert_int_equal(tu_creds_load_identity(p("identity"), now, 0, &c, &e), 0);
	c = tu_creds_free(c);

	/* a symlink is refused (O_NOFOLLOW), like the config */
	sh("ln -sf %s %s", p("ca.crt"), p("ca-link.crt"));
	assert_int_equal(
	    tu_creds_load_key_pair(p("c.crt"), p("c.key"), p("ca-link.crt"), now, 0, &c, &e),
	    -ELOOP);
	assert_non_null(strstr(e.msg, "is a symbolic link"));

	/* a file owned by someone else */
	sh("cp %s %s && chown 65534 %s", p("ca.crt"), p("ca-nobody.crt"), p("ca-nobody.crt"));
	assert_int_equal(
	    tu_creds_load_key_pair(p("c.crt"), p("c.key"), p("ca-nobody.crt"), now, 0, &c, &e),
	    -EPERM);
	assert_non_null(strstr(e.msg, "owned by uid 65534, must be root"));
	assert_null(c);
}

static void test_identity(void **state)
{
	struct tu_creds *c = NULL;
	struct tu_err e;
	int64_t now = now_usec();
	size_t n;

	(void) state;
	assert_int_equal(tu_creds_load_identity(p("identity"), now, TU_CREDS_RELAXED_PERMS, &c, &e),
			 0);
	assert_string_equal(tu_creds_subject_cn(c), "5a9f3c0e-host.example.com");
	assert_string_equal(tu_creds_cluster(c), "cluster.from.oid");
	assert_string_equal(tu_creds_source(c), p("identity"));
	assert_int_equal(tu_creds_n_ca(c), 1);
	assert_int_equal(strncmp(tu_creds_key_pem(c, &n), "-----BEGIN PRIVATE KEY-----", 27), 0);
	/* the SSH lines are not part of any blob */
	assert_null(strstr(tu_creds_cert_pem(c, NULL), "ssh-"));
	assert_null(strstr(tu_creds_ca_pem(c, NULL), "cert-authority"));
	/* its SSH line is a truncated certificate: left out, with the reason; CA lines kept */
	assert_null(tu_creds_ssh_cert(c, &n));
	assert_int_equal(n, 0);
	assert_non_null(tu_creds_ssh_problem(c));
	assert_non_null(strstr(tu_creds_ssh_problem(c), "SSH certificate in"));
	assert_string_equal(tu_creds_ssh_known_hosts(c, &n),
			    "@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG\n");
	assert_int_equal(n, strlen(tu_creds_ssh_known_hosts(c, NULL)));
	c = tu_creds_free(c);

	assert_int_equal(
	    tu_creds_load_identity(p("identity-crlf"), now, TU_CREDS_RELAXED_PERMS, &c, &e), 0);
	assert_int_equal(tu_creds_n_ca(c), 1);
	assert_null(tu_creds_ssh_cert(c, NULL));
	assert_null(tu_creds_ssh_known_hosts(c, NULL));
	assert_null(tu_creds_ssh_problem(c));
	c = tu_creds_free(c);

	assert_int_equal(
	    tu_creds_load_identity(p("identity-swapped"), now, TU_CREDS_RELAXED_PERMS, &c, &e),
	    -EBADMSG);
	assert_string_equal(e.file, p("identity-swapped"));
	assert_non_null(strstr(e.msg, "PEM block 'CERTIFICATE' where a PRIVATE KEY was expected"));
	assert_int_equal(e.line, 1);
	assert_null(c);

	assert_int_equal(
	    tu_creds_load_identity(p("identity-keyonly"), now, TU_CREDS_RELAXED_PERMS, &c, &e),
	    -EBADMSG);
	assert_non_null(strstr(e.msg, "identity file has 1 PEM block(s)"));

	assert_int_equal(tu_creds_load_identity(p("nope"), now, TU_CREDS_RELAXED_PERMS, &c, &e),
			 -ENOENT);
	assert_int_equal(tu_creds_load_identity(p("identity"), now + 30 * DAY_USEC,
						TU_CREDS_RELAXED_PERMS, &c, &e),
			 -EKEYEXPIRED);
	assert_string_equal(e.file, p("identity"));
}

/* The SSH certificate and @cert-authority lines of identity files (the reverse tunnel's input). */
static void test_identity_ssh(void **state)
{
	struct tu_creds *c = NULL;
	struct tu_err e;
	int64_t now = now_usec();
	size_t n, gl;
	char *good = slurp("good-cert.pub", &gl);

	(void) state;
	assert_int_equal(
	    tu_creds_load_identity(p("identity-ssh"), now, TU_CREDS_RELAXED_PERMS, &c, &e), 0);
	assert_string_equal(tu_creds_ssh_cert(c, &n), good);
	assert_int_equal(n, gl);
	assert_null(tu_creds_ssh_problem(c));
	assert_non_null(tu_creds_ssh_known_hosts(c, NULL));
	assert_int_equal(strncmp(tu_creds_ssh_known_hosts(c, NULL),
				 "@cert-authority example.com,*.example.com ssh-ed25519 ", 54),
			 0);
	assert_ptr_equal(tu_creds_ssh_key_pem(c, &n), tu_creds_key_pem(c, NULL));
	c = tu_creds_free(c);

	/* an expired SSH certificate: the TLS side loads, the SSH one is left out with why */
	assert_int_equal(
	    tu_creds_load_identity(p("identity-sshold"), now, TU_CREDS_RELAXED_PERMS, &c, &e), 0);
	assert_null(tu_creds_ssh_cert(c, NULL));
	assert_non_null(strstr(tu_creds_ssh_problem(c), "expired on 2020-01-02"));
	assert_non_null(strstr(tu_creds_ssh_problem(c), "run tsh login"));
	c = tu_creds_free(c);

	/* no certificate line in the file: "<path>-cert.pub" beside it */
	assert_int_equal(
	    tu_creds_load_identity(p("identity-nossh"), now, TU_CREDS_RELAXED_PERMS, &c, &e), 0);
	assert_string_equal(tu_creds_ssh_cert(c, NULL), good);
	assert_null(tu_creds_ssh_known_hosts(c, NULL));
	c = tu_creds_free(c);
	/* the in-memory parser never looks beside */
	size_t il;
	char *id = slurp("identity-nossh", &il);
	assert_int_equal(tu_creds_parse_identity(id, il, "mem", now, &c, &e), 0);
	assert_null(tu_creds_ssh_cert(c, NULL));
	c = tu_creds_free(c);
	free(id);
	free(good);
}

static void test_profile(void **state)
{
	struct tu_creds *c = NULL;
	struct tu_err e;
	int64_t now = now_usec();
	size_t n, gl;
	uint16_t port = 0;
	char *good = slurp("good-cert.pub", &gl);

	(void) state;
	tu_err_clear(&e);
	assert_int_equal(
	    tu_creds_load_profile(p("prof"), NULL, now, TU_CREDS_RELAXED_PERMS, &c, &e), 0);
	assert_string_equal(tu_creds_source(c), p("prof/keys/proxy.test/alice.crt"));
	assert_string_equal(tu_creds_profile_name(c), "proxy.test");
	assert_string_equal(tu_creds_proxy_addr(c), "proxy.test:3080");
	assert_string_equal(tu_creds_proxy_host(c, &port), "proxy.test");
	assert_int_equal(port, 3080);
	assert_true(tu_creds_tls_routing(c));
	assert_false(tu_creds_conn_upgrade_required(c));
	assert_int_equal(tu_creds_n_ca(c), 2); /* every file in cas/ */
	assert_string_equal(tu_creds_ssh_cert(c, &n), good);
	assert_null(tu_creds_ssh_problem(c));
	assert_string_equal(tu_creds_ssh_known_hosts(c, NULL),
			    "@cert-authority proxy.test,example.com ssh-ed25519 AAAAC3Nz type=host\n");
	/* v17: the SSH key is its own file */
	assert_ptr_not_equal(tu_creds_ssh_key_pem(c, &n), tu_creds_key_pem(c, NULL));
	assert_int_equal(strncmp(tu_creds_ssh_key_pem(c, NULL), "-----BEGIN PRIVATE KEY-----", 27), 0);
	c = tu_creds_free(c);

	/* v17 without its SSH key: the certificate is not offered with the TLS key */
	assert_int_equal(sh("mv %s %s", p("prof/keys/proxy.test/alice"), p("prof/alice.bak")), 0);
	assert_int_equal(
	    tu_creds_load_profile(p("prof"), NULL, now, TU_CREDS_RELAXED_PERMS, &c, &e), 0);
	assert_null(tu_creds_ssh_cert(c, NULL));
	assert_non_null(strstr(tu_creds_ssh_problem(c), "SSH key"));
	assert_non_null(strstr(tu_creds_ssh_problem(c), "keys/proxy.test/alice"));
	assert_non_null(tu_creds_ssh_known_hosts(c, NULL));
	c = tu_creds_free(c);
	assert_int_equal(sh("mv %s %s", p("prof/alice.bak"), p("prof/keys/proxy.test/alice")), 0);

	/* named explicitly; v16 layout */
	assert_int_equal(tu_creds_load_profile(p("prof16"), "proxy.test", now,
					       TU_CREDS_RELAXED_PERMS, &c, &e),
			 0);
	assert_string_equal(tu_creds_source(c), p("prof16/keys/proxy.test/alice-x509.pem"));
	assert_int_equal(tu_creds_n_ca(c), 1); /* certs.pem */
	assert_ptr_equal(tu_creds_ssh_key_pem(c, NULL), tu_creds_key_pem(c, NULL));
	assert_null(tu_creds_ssh_cert(c, NULL));
	assert_non_null(strstr(tu_creds_ssh_problem(c), "alice-ssh/example.com-cert.pub"));
	assert_null(tu_creds_ssh_known_hosts(c, NULL));
	c = tu_creds_free(c);

	/* expired: the file and the fix */
	assert_int_equal(tu_creds_load_profile(p("prof"), NULL, now + 30 * DAY_USEC,
					       TU_CREDS_RELAXED_PERMS, &c, &e),
			 -EKEYEXPIRED);
	assert_string_equal(e.file, p("prof/keys/proxy.test/alice.crt"));
	assert_non_null(strstr(e.msg, "(run tsh login)"));
	assert_null(c);
	/* an SSH certificate that expired before the TLS one: left out, TLS still loads */
	assert_int_equal(tu_creds_load_profile(p("prof"), NULL, now + 2 * DAY_USEC,
					       TU_CREDS_RELAXED_PERMS, &c, &e),
			 0);
	assert_null(tu_creds_ssh_cert(c, NULL));
	assert_non_null(strstr(tu_creds_ssh_problem(c), "expired"));
	c = tu_creds_free(c);
	/* no such profile, no such directory */
	assert_int_equal(tu_creds_load_profile(p("prof"), "nope.test", now,
					       TU_CREDS_RELAXED_PERMS, &c, &e),
			 -ENOENT);
	assert_non_null(strstr(e.msg, "nope.test.yaml is missing (run tsh login)"));
	assert_int_equal(tu_creds_load_profile(p("nodir"), NULL, now, 0, &c, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "does not exist (run tsh login)"));
	assert_int_equal(tu_creds_load_profile("relative", NULL, now, 0, &c, &e), -EINVAL);
	free(good);
}

/* The public API's credential from PEM text in memory: the key pair checks, inputs named cert/key/ca. */
static void test_pem_in_memory(void **state)
{
	struct tu_creds *c = NULL;
	struct tu_err e;
	int64_t now = now_usec();
	size_t cl, kl, al, ol;
	char *crt = slurp("c.crt", &cl), *key = slurp("c.key", &kl), *ca = slurp("cas.crt", &al);
	char *other = slurp("other.key", &ol);

	(void) state;
	tu_err_clear(&e);
	assert_int_equal(tu_creds_parse_pem(crt, cl, key, kl, ca, al, now, &c, &e), 0);
	assert_string_equal(tu_creds_subject_cn(c), "5a9f3c0e-host.example.com");
	assert_int_equal(tu_creds_n_ca(c), 2);
	assert_string_equal(tu_creds_source(c), "PEM in memory");
	/* the caller's buffers are copied: wiping them changes nothing */
	memset(key, 0, kl);
	assert_int_equal(strncmp(tu_creds_key_pem(c, NULL), "-----BEGIN PRIVATE KEY-----", 27), 0);
	c = tu_creds_free(c);
	free(key);
	key = slurp("c.key", &kl);

	assert_int_equal(tu_creds_parse_pem(key, kl, key, kl, ca, al, now, &c, &e), -EBADMSG);
	assert_string_equal(e.file, "cert");
	assert_non_null(strstr(e.msg, "only certificates are expected"));
	assert_int_equal(tu_creds_parse_pem(crt, cl, other, ol, ca, al, now, &c, &e), -EBADMSG);
	assert_string_equal(e.file, "key");
	assert_non_null(strstr(e.msg, "does not match"));
	assert_int_equal(tu_creds_parse_pem(crt, cl, key, kl, key, kl, now, &c, &e), -EBADMSG);
	assert_string_equal(e.file, "ca");
	assert_int_equal(tu_creds_parse_pem(crt, cl, key, kl, ca, al, now + 30 * DAY_USEC, &c, &e),
			 -EKEYEXPIRED);
	assert_int_equal(tu_creds_parse_pem(crt, cl, key, kl, "", 0, now, &c, &e), -EBADMSG);
	assert_int_equal(tu_creds_parse_pem(NULL, 0, key, kl, ca, al, now, &c, &e), -EINVAL);
	assert_int_equal(tu_creds_parse_pem(crt, (size_t) 2 << 20, key, kl, ca, al, now, &c, &e),
			 -EMSGSIZE);
	assert_null(c);
	free(crt);
	free(key);
	free(ca);
	free(other);
}

/* The profile YAML reader: tsh's extra keys ignored, ours strict. */
static void test_profile_yaml(void **state)
{
	static const struct {
		const char *text;
		int want;
		const char *msg;
	} cases[] = {
	    {"web_proxy_addr: a.example:443\nuser: bob\n", 0, NULL},
	    {"web_proxy_addr: a.example\nuser: bob\nkube: {x: [1, {y: [2]}]}\n? [complex]\n: 1\n", 0, NULL},
	    {"web_proxy_addr: '[::1]:3080'\nuser: bob\n", 0, NULL},
	    {"", -EBADMSG, "the file is empty"},
	    {"user: bob\n", -EBADMSG, "missing web_proxy_addr"},
	    {"web_proxy_addr: a.example\n", -EBADMSG, "missing user"},
	    {"web_proxy_addr: a.example\nuser: ..\n", -EBADMSG, "invalid user name"},
	    {"web_proxy_addr: a.example\nuser: a/b\n", -EBADMSG, "invalid user name"},
	    {"web_proxy_addr: a.example\nuser: bob\ncluster: x/y\n", -EBADMSG, "invalid cluster"},
	    {"web_proxy_addr: a.example\nuser: bob\ntls_routing_enabled: maybe\n", -EBADMSG,
	     "invalid boolean"},
	    {"web_proxy_addr: a.example\nuser: [bob]\n", -EBADMSG, "expected a string, found a list"},
	    {"web_proxy_addr: 'a b'\nuser: bob\n", -EBADMSG, "invalid Proxy address"},
	    {"web_proxy_addr: &x a.example\nuser: *x\n", -EBADMSG, "aliases"},
	    {"[1, 2]\n", -EBADMSG, "expected a mapping"},
	    {"a: 'open\n", -EBADMSG, "YAML syntax error"},
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tu_profile pr = {0};
		struct tu_err e;
		tu_err_clear(&e);
		int r = tu_profile_parse(cases[i].text, strlen(cases[i].text), "f.yaml", "nm", &pr, &e);
		if (r != cases[i].want)
			fail_msg("case %zu: got %d want %d (%s)", i, r, cases[i].want, e.msg);
		if (cases[i].msg && !strstr(e.msg, cases[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].msg);
		if (r == 0) {
			assert_string_equal(pr.user, "bob");
			assert_string_equal(pr.cluster, "nm"); /* no cluster: the profile name */
			assert_true(pr.proxy_port == 443 || pr.proxy_port == 3080);
		} else {
			assert_string_equal(e.file, "f.yaml");
		}
		tu_profile_done(&pr);
	}
}

struct split_case {
	const char *name;
	const char *text;
	int want;
	size_t n;
	unsigned line;
	const char *msg;
};

#define PEM(l) "-----BEGIN " l "-----\nQUJD\n-----END " l "-----\n"

static const struct split_case split_cases[] = {
    {"empty", "", 0, 0, 0, NULL},
    {"text only", "hello\nworld\n", 0, 0, 0, NULL},
    {"one", PEM("CERTIFICATE"), 0, 1, 0, NULL},
    {"two with ssh lines",
     "ssh-rsa AAAA\n" PEM("PRIVATE KEY") "@cert-authority x\n" PEM("CERTIFICATE"), 0, 2, 0, NULL},
    {"no final newline", "-----BEGIN X-----\nQUJD\n-----END X-----", 0, 1, 0, NULL},
    {"crlf", "-----BEGIN X-----\r\nQUJD\r\n-----END X-----\r\n", 0, 1, 0, NULL},
    {"no END", "a\n-----BEGIN CERTIFICATE-----\nQUJD\n", -EBADMSG, 0, 2,
     "PEM block 'CERTIFICATE' has no END line"},
    {"END label differs", "-----BEGIN A-----\nQUJD\n-----END B-----\n", -EBADMSG, 0, 3,
     "PEM END label does not match the 'A' block started on line 1"},
    {"BEGIN inside", "-----BEGIN A-----\n-----BEGIN B-----\n", -EBADMSG, 0, 2,
     "PEM BEGIN inside the 'A' block started on line 1"},
    {"END alone", "x\n-----END A-----\n", -EBADMSG, 0, 2, "PEM END line without BEGIN"},
    {"bad label", "-----BEGIN a\x01-----\n", -EBADMSG, 0, 1, "invalid PEM label"},
    {"empty label", "-----BEGIN -----\n", -EBADMSG, 0, 1, "invalid PEM label"},
    {"too many", PEM("A") PEM("A") PEM("A") PEM("A"), -EMSGSIZE, 0, 12, "more than 3 PEM blocks"},
};

static void test_split_table(void **state)
{
	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(split_cases); i++) {
		const struct split_case *tc = &split_cases[i];
		struct tu_pem_block b[3];
		size_t n = 99;
		unsigned line = 0;
		struct tu_err e;

		tu_err_clear(&e);
		int r = tu_pem_split(tc->text, strlen(tc->text), b, 3, &n, &line, &e);
		if (r != tc->want)
			fail_msg("%s: got %d want %d (%s)", tc->name, r, tc->want, e.msg);
		if (r == 0) {
			assert_int_equal(n, tc->n);
		} else {
			assert_int_equal(n, 99);
			assert_int_equal(line, tc->line);
			assert_int_equal(e.line, tc->line);
			if (!strstr(e.msg, tc->msg))
				fail_msg("%s: '%s' lacks '%s'", tc->name, e.msg, tc->msg);
		}
	}
	/* a NUL byte */
	{
		struct tu_pem_block b[1];
		size_t n;
		struct tu_err e;
		assert_int_equal(tu_pem_split("ab\ncd\0e\n", 8, b, 1, &n, NULL, &e), -EBADMSG);
		assert_string_equal(e.msg, "NUL byte in the file: not a PEM file (DER?)");
		assert_int_equal(e.line, 2);
	}
	/* the text of a block spans BEGIN to END newline, the label is exact */
	{
		static const char t[] = "junk\n" PEM("EC PRIVATE KEY") "tail\n";
		struct tu_pem_block b[2];
		size_t n;
		assert_int_equal(tu_pem_split(t, sizeof(t) - 1, b, 2, &n, NULL, NULL), 0);
		assert_int_equal(n, 1);
		assert_int_equal(b[0].label_len, 14);
		assert_memory_equal(b[0].label, "EC PRIVATE KEY", 14);
		assert_ptr_equal(b[0].text, t + 5);
		assert_int_equal(b[0].len, strlen(PEM("EC PRIVATE KEY")));
		assert_int_equal(b[0].line, 2);
	}
}

/* Every truncation and every single-bit flip of a good identity file: success or a clean error. */
static void test_identity_mutations(void **state)
{
	size_t len;
	char *buf = slurp("identity", &len);
	int64_t now = now_usec();
	size_t ok = 0, bad = 0;

	(void) state;
	for (size_t cut = 0; cut < len; cut++) {
		struct tu_creds *c = NULL;
		struct tu_err e;
		tu_err_clear(&e);
		int r = tu_creds_parse_identity(buf, cut, "identity", now, &c, &e);
		if (r == 0) {
			ok++;
			tu_creds_free(c);
			continue;
		}
		bad++;
		assert_null(c);
		assert_true(r == -EBADMSG || r == -EMSGSIZE);
		assert_true(e.msg[0] != '\0');
		assert_string_equal(e.file, "identity");
	}
	/* only the cuts inside the trailing newline/CA tail can still succeed... none can: the CA
	 * is last */
	assert_true(bad >= len - 2);

	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			struct tu_creds *c = NULL;
			struct tu_err e;
			buf[i] ^= (char) (1 << bit);
			tu_err_clear(&e);
			int r = tu_creds_parse_identity(buf, len, "identity", now, &c, &e);
			buf[i] ^= (char) (1 << bit);
			if (r == 0) {
				tu_creds_free(c);
				continue;
			}
			assert_null(c);
			if (r != -EBADMSG && r != -EMSGSIZE && r != -EKEYEXPIRED &&
			    r != -EKEYREJECTED)
				fail_msg("flip %zu.%d: %d (%s)", i, bit, r, e.msg);
			assert_true(e.msg[0] != '\0');
		}
	}
	(void) ok;
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_pair),          cmocka_unit_test(test_bad_pairs),
	    cmocka_unit_test(test_validity),           cmocka_unit_test(test_permissions),
	    cmocka_unit_test(test_identity),           cmocka_unit_test(test_identity_ssh),
	    cmocka_unit_test(test_split_table),        cmocka_unit_test(test_profile),
	    cmocka_unit_test(test_profile_yaml),        cmocka_unit_test(test_pem_in_memory),
	    cmocka_unit_test(test_identity_mutations), cmocka_unit_test(test_deferred_key_check),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
