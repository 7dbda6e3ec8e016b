/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws-tls.c - outer TLS to the Proxy's web port (see ws-tls.h).
 * Layer: libcore (OpenSSL).
 */
#include "ws-tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cleanup.h"
#include "creds.h"
#include "ossl-init.h"
#include "err.h"
#include "fsutil.h"
#include "transport.h"
#include "tunnel-pump.h"

#define MAX_CA_FILE ((size_t) 4 * 1024 * 1024) /* the system bundle is ~200 KiB */

struct tu_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	bool want_write;
	char what[128];
};

void tu_tls_free(struct tu_tls *t)
{
	if (!t)
		return;
	if (t->ssl)
		SSL_free(t->ssl);
	if (t->ctx)
		SSL_CTX_free(t->ctx);
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

/* Reads PEM certificates from path into store with our own open (O_CLOEXEC,
 * and the owner/mode check when we run as root): OpenSSL's loaders use fopen
 * without close-on-exec inside other people's processes. */
static int load_cas(X509_STORE *store, const char *path, bool configured, struct tu_err *reterr)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	unsigned n = 0;
	int r = tu_fs_read_file(path, MAX_CA_FILE, geteuid() == 0 && configured ? 0 : TU_FS_RELAXED,
				&buf, &len, reterr);

	if (r < 0) {
		tu_err_prefix(reterr, "%s", configured ? "auth.proxy_ca" : "the system CA bundle");
		return r;
	}
	BIO *bio = BIO_new_mem_buf(buf, (int) len);
	if (!bio)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	for (;;) {
		X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (!x)
			break;
		if (X509_STORE_add_cert(store, x) == 1)
			n++;
		X509_free(x);
	}
	BIO_free(bio);
	ERR_clear_error();
	if (n == 0)
		return tu_err_set(reterr, -EBADMSG, "%s %s holds no PEM certificate",
				  configured ? "auth.proxy_ca" : "the system CA bundle", path);
	return 0;
}

static int make_ctx(const struct tu_tls_opts *o, SSL_CTX **ret, struct tu_err *reterr)
{
	SSL_CTX *ctx;
	int r;

	tu_openssl_init();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return tu_err_set(reterr, -ENOMEM, "cannot create a TLS context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (o->ca_path) {
		r = load_cas(SSL_CTX_get_cert_store(ctx), o->ca_path, true, reterr);
	} else {
		/* OpenSSL's default bundle is a symbolic link on Debian (to
		 * /etc/ssl/certs/ca-certificates.crt): follow it here, read the
		 * target without following anything. */
		char real[PATH_MAX];
		const char *def = X509_get_default_cert_file();
		r = realpath(def, real) ? load_cas(SSL_CTX_get_cert_store(ctx), real, false, reterr)
					: tu_err_set(reterr, -errno, "the system CA bundle %s: %s",
						     def, strerror(errno));
	}
	if (r < 0) {
		SSL_CTX_free(ctx);
		return r;
	}
	*ret = ctx;
	return 0;
}

/*
 * OpenSSL's socket BIO writes with write(2): to a peer that has gone, that
 * raises SIGPIPE, which would kill a host process (sshd, cron, any getpwnam
 * caller) that did not ignore it.  This BIO is the socket BIO with
 * send(MSG_NOSIGNAL) and recv(), as curl does for its own TLS.
 */
static int nosig_write(BIO *b, const char *in, int inl)
{
	ssize_t n = send(BIO_get_fd(b, NULL), in, (size_t) inl, MSG_NOSIGNAL);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int) n;
}

static int nosig_read(BIO *b, char *out, int outl)
{
	ssize_t n = recv(BIO_get_fd(b, NULL), out, (size_t) outl, 0);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	return (int) n;
}

static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static void nosig_init(void)
{
	const BIO_METHOD *sock = BIO_s_socket();
	BIO_METHOD *m =
	    BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
			 "teleport-unix socket");

	/* Everything but the I/O from OpenSSL's own socket BIO (fd get/set, close flag). */
	if (m && BIO_meth_set_write(m, nosig_write) == 1 && BIO_meth_set_read(m, nosig_read) == 1 &&
	    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock)) == 1 &&
	    BIO_meth_set_create(m, BIO_meth_get_create(sock)) == 1 &&
	    BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock)) == 1 &&
	    BIO_meth_set_puts(m, BIO_meth_get_puts(sock)) == 1) {
		nosig_method = m;
		return;
	}
	BIO_meth_free(m);
}

/* A BIO on fd that never raises SIGPIPE; the fd stays ours (BIO_NOCLOSE). */
static BIO *nosig_bio(int fd)
{
	BIO *b;

	(void) pthread_once(&nosig_once, nosig_init);
	if (!nosig_method)
		return NULL;
	b = BIO_new(nosig_method);
	if (b)
		BIO_set_fd(b, fd, BIO_NOCLOSE);
	return b;
}

static void describe_ssl_error(struct tu_tls *t, const char *during, struct tu_err *reterr,
			       int *code)
{
	long vr = SSL_get_verify_result(t->ssl);
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "";

	if (vr != X509_V_OK) {
		*code = -EPROTO;
		tu_err_set(reterr, -EPROTO, "TLS to %s: its certificate is not trusted: %s",
			   t->what, X509_verify_cert_error_string(vr));
	} else if (e && ERR_GET_REASON(e) == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL) {
		*code = -ENOPROTOOPT;
		tu_err_set(reterr, -ENOPROTOOPT,
			   "TLS to %s: it refused the ALPN protocol (no_application_protocol)",
			   t->what);
	} else if (e) {
		ERR_error_string_n(e, buf, sizeof(buf));
		*code = -EPROTO;
		tu_err_set(reterr, -EPROTO, "TLS %s with %s failed: %s", during, t->what, buf);
	} else {
		*code = -ECONNRESET;
		tu_err_set(reterr, -ECONNRESET, "%s closed the connection during the TLS %s",
			   t->what, during);
	}
	ERR_clear_error();
}

int tu_tls_connect(int fd, const struct tu_tls_opts *o, uint64_t deadline_usec, struct tu_tls **ret,
		   struct tu_err *reterr)
{
	struct tu_tls *t = calloc(1, sizeof(*t));
	unsigned char in6[16];
	bool is_ip;
	int r;

	if (!t) {
		close(fd);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	t->fd = fd;
	snprintf(t->what, sizeof(t->what), "%s %s:%u", o->what, o->host, o->port);
	r = make_ctx(o, &t->ctx, reterr);
	if (r < 0)
		goto fail;
	t->ssl = SSL_new(t->ctx);
	BIO *bio = t->ssl ? nosig_bio(fd) : NULL;
	if (!bio) {
		r = tu_err_set(reterr, -ENOMEM, "cannot create a TLS connection");
		goto fail;
	}
	SSL_set_bio(t->ssl, bio, bio); /* the SSL owns the BIO now */
	is_ip = inet_pton(AF_INET, o->host, in6) == 1 || inet_pton(AF_INET6, o->host, in6) == 1;
	X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
	if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, o->host) != 1
		  : (SSL_set_tlsext_host_name(t->ssl, o->host) != 1 ||
		     X509_VERIFY_PARAM_set1_host(vp, o->host, 0) != 1)) {
		r = tu_err_set(reterr, -EINVAL, "cannot use '%s' as the TLS name of %s", o->host,
			       o->what);
		goto fail;
	}
	if (o->alpn) {
		unsigned char wire[256];
		size_t l = strlen(o->alpn);
		if (l == 0 || l > 255) {
			r = tu_err_set(reterr, -EINVAL, "bad ALPN protocol name");
			goto fail;
		}
		wire[0] = (unsigned char) l;
		memcpy(wire + 1, o->alpn, l);
		if (SSL_set_alpn_protos(t->ssl, wire, (unsigned) l + 1) != 0) {
			r = tu_err_set(reterr, -ENOMEM, "cannot set ALPN");
			goto fail;
		}
	}
	for (;;) {
		int k = SSL_connect(t->ssl);
		if (k == 1)
			break;
		int e = SSL_get_error(t->ssl, k);
		short ev;
		if (e == SSL_ERROR_WANT_READ)
			ev = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			ev = POLLOUT;
		else {
			describe_ssl_error(t, "handshake", reterr, &r);
			goto fail;
		}
		r = tu_dial_wait(fd, ev, deadline_usec);
		if (r == -ETIMEDOUT) {
			r = tu_err_set(reterr, -ETIMEDOUT,
				       "TLS handshake with %s did not finish in time", t->what);
			goto fail;
		}
		if (r < 0) {
			r = tu_err_set(reterr, r, "waiting for %s: %s", t->what, strerror(-r));
			goto fail;
		}
	}
	*ret = t;
	return 0;
fail:
	ERR_clear_error();
	tu_tls_free(t);
	return r;
}

const char *tu_tls_alpn(const struct tu_tls *t, char *buf, size_t size)
{
	const unsigned char *p = NULL;
	unsigned n = 0;

	SSL_get0_alpn_selected(t->ssl, &p, &n);
	snprintf(buf, size, "%.*s", (int) n, p ? (const char *) p : "");
	return buf;
}

int tu_tls_fd(const struct tu_tls *t)
{
	return t->fd;
}

bool tu_tls_wants_write(const struct tu_tls *t)
{
	return t->want_write;
}

static int io_result(struct tu_tls *t, int k, const char *during, struct tu_err *reterr)
{
	int e = SSL_get_error(t->ssl, k), code = -EPROTO;

	if (e == SSL_ERROR_WANT_READ) {
		t->want_write = false;
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		t->want_write = true;
		return 0;
	}
	if (e == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		return -EPIPE;
	}
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		ERR_clear_error();
		return tu_err_set(reterr, -ECONNRESET, "%s closed the connection", t->what);
	}
	describe_ssl_error(t, during, reterr, &code);
	return code;
}

int tu_tls_read(struct tu_tls *t, uint8_t *buf, size_t size, size_t *ret_n, struct tu_err *reterr)
{
	size_t n = 0;
	int k = SSL_read_ex(t->ssl, buf, size, &n);

	*ret_n = 0;
	if (k == 1) {
		t->want_write = false;
		*ret_n = n;
		return 0;
	}
	return io_result(t, 0, "read", reterr);
}

int tu_tls_write(struct tu_tls *t, const uint8_t *buf, size_t len, size_t *ret_n,
		 struct tu_err *reterr)
{
	size_t n = 0;
	int k;

	*ret_n = 0;
	if (len == 0)
		return 0;
	k = SSL_write_ex(t->ssl, buf, len, &n);
	if (k == 1) {
		t->want_write = false;
		*ret_n = n;
		return 0;
	}
	int r = io_result(t, 0, "write", reterr);
	return r == -EPIPE ? tu_err_set(reterr, -ECONNRESET, "%s closed the connection", t->what)
			   : r;
}

int tu_tls_write_all(struct tu_tls *t, const uint8_t *buf, size_t len, uint64_t deadline_usec,
		     struct tu_err *reterr)
{
	while (len > 0) {
		size_t n = 0;
		int r = tu_tls_write(t, buf, len, &n, reterr);
		if (r < 0)
			return r;
		buf += n;
		len -= n;
		if (n == 0 &&
		    tu_dial_wait(t->fd, t->want_write ? POLLOUT : POLLIN, deadline_usec) < 0)
			return tu_err_set(reterr, -ETIMEDOUT, "%s did not take our request in time",
					  t->what);
	}
	return 0;
}

int tu_tls_read_some(struct tu_tls *t, uint8_t *buf, size_t size, uint64_t deadline_usec,
		     size_t *ret_n, struct tu_err *reterr)
{
	for (;;) {
		size_t n = 0;
		int r = tu_tls_read(t, buf, size, &n, reterr);
		if (r < 0)
			return r;
		if (n > 0) {
			*ret_n = n;
			return 0;
		}
		if (tu_dial_wait(t->fd, t->want_write ? POLLOUT : POLLIN, deadline_usec) < 0)
			return tu_err_set(reterr, -ETIMEDOUT, "%s did not answer in time", t->what);
	}
}
