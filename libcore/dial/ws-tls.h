/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws-tls.h - the outer TLS to the Proxy's web port (the WebSocket upgrade
 * behind an L7 load balancer, and the reverse tunnel over TLS routing), with
 * OpenSSL on a non-blocking socket and a deadline for every blocking step.
 * Layer: libcore (OpenSSL).
 *
 * This TLS is the Proxy's *web* certificate (often a public one, ACME):
 * verified against the system roots, or only against auth.proxy_ca when set,
 * with the dialled host as the name (SNI too, for a name).  No client
 * certificate is sent on it.  Auth's own TLS (mTLS, Host CA) runs inside.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tu_err;
struct tu_tls;

struct tu_tls_opts {
	const char *host;    /* the name verified in the certificate; SNI when not an IP address */
	uint16_t port;       /* for messages */
	const char *ca_path; /* PEM CA certificates; NULL = the system roots */
	const char *alpn;    /* one protocol to offer; NULL = no ALPN */
	const char *what;    /* the peer in messages, e.g. "the Proxy" */
};

/*
 * The TLS handshake on fd (a connected non-blocking socket, taken: closed on
 * failure too) by deadline_usec.  Errors: -ETIMEDOUT, -EPROTO (handshake or
 * verification failed: reterr says why, e.g. the certificate's issuer is not
 * trusted), -ECONNRESET, -ENOENT/-EACCES/-EBADMSG (ca_path unusable), -ENOMEM.
 * When the peer refused the ALPN protocol (alert no_application_protocol)
 * the error is -ENOPROTOOPT.
 */
int tu_tls_connect(int fd, const struct tu_tls_opts *o, uint64_t deadline_usec, struct tu_tls **ret,
		   struct tu_err *reterr);

/* The protocol ALPN selected, "" when none.  Borrowed. */
const char *tu_tls_alpn(const struct tu_tls *t, char *buf, size_t size);

/* Non-blocking I/O: *ret_n bytes moved, 0 when it would block.  -EPIPE at the
 * peer's end (close_notify or EOF); other errors -ECONNRESET/-EPROTO. */
int tu_tls_read(struct tu_tls *t, uint8_t *buf, size_t size, size_t *ret_n, struct tu_err *reterr);
int tu_tls_write(struct tu_tls *t, const uint8_t *buf, size_t len, size_t *ret_n,
		 struct tu_err *reterr);

/* Whether the last operation waits for the socket to become writable. */
bool tu_tls_wants_write(const struct tu_tls *t);
int tu_tls_fd(const struct tu_tls *t);

/* Blocking forms bounded by deadline_usec: all of buf / at least one byte. */
int tu_tls_write_all(struct tu_tls *t, const uint8_t *buf, size_t len, uint64_t deadline_usec,
		     struct tu_err *reterr);
int tu_tls_read_some(struct tu_tls *t, uint8_t *buf, size_t size, uint64_t deadline_usec,
		     size_t *ret_n, struct tu_err *reterr);

/* Closes the connection (no close_notify wait) and frees; accepts NULL. */
void tu_tls_free(struct tu_tls *t);
