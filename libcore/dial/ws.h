/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws.h - the ALPN connection upgrade through an L7 load balancer
 * (PROXY.md §3): TLS to the Proxy's web address (ws-tls.h), an HTTP/1.1
 * WebSocket upgrade on /webapi/connectionupgrade with sub-protocol
 * alpn-ping, then Auth's TLS carried in binary frames (every frame we send
 * is masked with an all-zero key, as Teleport's client does; the Proxy's
 * pings are answered with pongs).  Also the test dial that tells whether
 * the upgrade is needed, and the memory of its answer in cache.dir.
 * Layer: libcore (OpenSSL through ws-tls.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tu_carrier;
struct tu_conf;
struct tu_err;
struct tu_stream_dialer;

#define TU_WS_PATH             "/webapi/connectionupgrade"
#define TU_WS_SUBPROTOCOL      "alpn-ping"
#define TU_ALPN_REVERSE_TUNNEL "teleport-reversetunnel"
#define TU_WS_MEMORY_FILE      "proxy-upgrade"                 /* in cache.dir */
#define TU_WS_MEMORY_USEC      (UINT64_C(24) * 3600 * 1000000) /* a remembered answer is kept 24 h */

struct tu_ws_target {
	const char *host; /* the Proxy's (or load balancer's) web address */
	uint16_t port;
	const char *ca_path; /* auth.proxy_ca, NULL = system roots */
};

/*
 * TLS + upgrade by deadline_usec; *ret carries Auth's bytes.  Errors:
 * -EOPNOTSUPP (404: no connection upgrade there: a Proxy older than 13, or
 * not a Teleport Proxy), -EPROTO (any other status, a wrong
 * Sec-WebSocket-Accept or sub-protocol, the legacy upgrade, TLS refused),
 * -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -ECONNRESET, -ENOMEM.
 */
int tu_ws_connect(const struct tu_ws_target *t, uint64_t deadline_usec, struct tu_carrier **ret,
		  struct tu_err *reterr);

/* The same over fd, a TCP connection to t's address already made (taken, closed on failure). */
int tu_ws_connect_fd(const struct tu_ws_target *t, int fd, uint64_t deadline_usec,
		     struct tu_carrier **ret, struct tu_err *reterr);

/* A stream dialer (tunnel-pump.h) that opens tu_ws_connect() carriers; t is copied. */
int tu_ws_dialer_new(const struct tu_ws_target *t, struct tu_stream_dialer **ret,
		     struct tu_err *reterr);

/* The same, starting on first_fd: a TCP connection to t's address already made (the
 * loader's, h2-load.c), taken (closed on failure too) and used for the first carrier. */
int tu_ws_dialer_new_fd(const struct tu_ws_target *t, int first_fd, struct tu_stream_dialer **ret,
			struct tu_err *reterr);

/*
 * Teleport's test (IsALPNConnUpgradeRequired): a TLS handshake offering only
 * ALPN teleport-reversetunnel.  Required when the peer refuses the protocol
 * (no_application_protocol) or completes without selecting one (an L7 load
 * balancer terminating TLS); not required when it selects one.  Any other
 * failure (refused, timeout, untrusted certificate) answers "not required",
 * as Teleport does: the path itself then fails with its own error.
 */
void tu_ws_upgrade_required(const struct tu_ws_target *t, uint64_t deadline_usec,
			    bool *ret_required);

/*
 * auth.proxy_conn_upgrade applied to t: always / never, or auto: the answer
 * remembered in <cache.dir>/proxy-upgrade for this host:port (younger than
 * TU_WS_MEMORY_USEC), else the test dial, remembered when we may write there
 * (a failed write is ignored).  now_usec: wall clock (seconds kept).
 */
void tu_ws_decide(const struct tu_conf *conf, const struct tu_ws_target *t, int64_t now_usec,
		  uint64_t deadline_usec, bool *ret_upgrade, bool *ret_remembered);

/* Drops the remembered answer (after the path it chose failed). */
void tu_ws_forget(const struct tu_conf *conf);

/*
 * Tests and fuzzers: a carrier with no connection that decodes in (len bytes,
 * borrowed while it lives) as frames from the Proxy, handed over chunk bytes
 * at a time (0 = as much as fits), ending like a connection closed without a
 * close frame.  What it sends (frames, pongs) is kept, up to 4 KiB, for
 * tu_ws_carrier_test_output().  Free with its ops->free.  -ENOMEM.
 */
int tu_ws_carrier_test_new(const uint8_t *in, size_t len, size_t chunk, struct tu_carrier **ret);
const uint8_t *tu_ws_carrier_test_output(struct tu_carrier *c, size_t *ret_len);

/* base64(SHA-1(key + the RFC 6455 GUID)) into out (29 bytes with the NUL). Exposed for tests. */
void tu_ws_accept_key(const char *key, char out[29]);

/*
 * Checks an upgrade response head (status line and headers, len bytes
 * without the blank line) for the key we sent.  0 or an error as
 * tu_ws_connect's, with what (the peer) in the message.  Pure; for tests.
 */
int tu_ws_check_response(const char *head, size_t len, const char *key, const char *what,
			 struct tu_err *reterr);
