/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dial/dial.h - the ways to reach Auth (issue 12) and the seam between them
 * and the one HTTP/2 + gRPC layer (h2.c).  Layer: libcore (no curl, no
 * OpenSSL types here).
 *
 * A *dialer* yields a byte stream that carries Auth's own TLS (mTLS, Auth's
 * certificate verified against the cluster's Host CA, SNI
 * teleport.cluster.local): h2.c runs that TLS, HTTP/2 and gRPC the same way
 * whatever the path.  Paths, in the fixed order they are tried (docs/transport.md
 * "Paths to Auth"), with their `via:` names (`teleport-unix ping`):
 *
 *   TU_DIAL_DIRECT               "direct"                    auth.addresses (port 3025)
 *   TU_DIAL_TLS_ROUTING          "proxy tls-routing"         auth.proxy (web port, 443):
 *                                TCP to the Proxy, ALPN [teleport-auth@<hex(cluster)>
 *                                .teleport.cluster.local, h2]; the Proxy forwards the TLS
 *                                untouched to Auth
 *   TU_DIAL_TLS_ROUTING_UPGRADE  "proxy tls-routing+upgrade" the same TLS inside a WebSocket
 *                                (/webapi/connectionupgrade, alpn-ping): dial/ws*.c
 *   TU_DIAL_TUNNEL               "reverse tunnel"            SSH teleport-transport to
 *                                @remote-auth-server: dial/tunnel*.c
 *
 * Two kinds of dialer:
 *  - socket dialers (direct, tls-routing): host + port; curl connects the TCP
 *    socket itself (names resolved by resolve.c, CURLOPT_RESOLVE/CONNECT_TO),
 *    so the connection is reused across calls like today.  `alpn` is the
 *    inner TLS's ALPN list (wire format); empty = just "h2".
 *  - stream dialers (upgrade, tunnel; the shape of dial/tunnel-pump.h's
 *    struct tu_stream_dialer): when curl needs a connection, h2.c's
 *    open-socket callback calls dial(), which does the whole set-up by the
 *    deadline (TCP, outer TLS, HTTP upgrade or SSH handshake + channel) and
 *    returns the address of a private AF_UNIX listening socket; curl's own
 *    AF_UNIX socket (SOCK_CLOEXEC) connects there, and the dialer's pump
 *    copies bytes between that connection and the carrier.  (libcurl 7.88
 *    connect()s even a socket its socket-option callback calls connected, so
 *    it cannot be handed one end of a socketpair.)  h2.c drives every stream
 *    dialer of the plan from its curl_multi_poll() loop: pollfds() gives the
 *    descriptors to add (extra_fds), step() moves what can move before and
 *    after each wait.  No thread, no signal: the pumps run on the caller's
 *    thread only while a call is in progress.  A pump that dies closes its
 *    end, curl sees the connection end, and last_error() names why.
 *
 * Path order, one deadline (dial.c, tu_dial_plan_new): the remembered path
 * first (struct tu_dial_memo, stored in <cache.dir>/dial.memo so a PAM login
 * does not redo discovery), then the fixed order above, each dialer getting
 * what is left of the caller's deadline.  Once a server answered TLS + ALPN h2
 * its errors are final (fail-over is for reaching Auth, as before).
 */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct tu_conf;
struct tu_creds;
struct tu_err;

enum tu_dial_path {
	TU_DIAL_DIRECT = 0,
	TU_DIAL_TLS_ROUTING = 1,
	TU_DIAL_TLS_ROUTING_UPGRADE = 2,
	TU_DIAL_TUNNEL = 3,
	TU_DIAL_N_PATHS
};

/* The `via:` name ("direct", "proxy tls-routing", "proxy tls-routing+upgrade",
 * "reverse tunnel"); "unknown" out of range. */
const char *tu_dial_path_name(enum tu_dial_path p);

/* The reverse: -EINVAL for an unknown name. */
int tu_dial_path_from_name(const char *name, enum tu_dial_path *ret);

#define TU_DIAL_ALPN_MAX 512 /* bytes of an ALPN list in wire format */
#define TU_DIAL_WHAT_MAX 300 /* "host:port" (or a longer description) for messages */
#define TU_DIAL_MAX      (16 + 3) /* auth.addresses + proxy paths */

struct sockaddr_un;
struct tu_stream_dialer;

/* One way to Auth (see the top of this file). */
struct tu_dialer {
	enum tu_dial_path path;
	char what[TU_DIAL_WHAT_MAX]; /* "proxy.example.com:443" for messages and `ping` */
	/* Socket dialers: where curl connects (host without brackets).  NULL for
	 * stream dialers. */
	char *host;
	uint16_t port;
	/* Inner TLS ALPN list in wire format (1-byte length + name ...); 0 = "h2" only. */
	uint8_t alpn[TU_DIAL_ALPN_MAX];
	size_t alpn_len;
	/* Stream dialers only (NULL for socket dialers).  dial(): a carrier by
	 * deadline_usec (CLOCK_MONOTONIC, tu_transport_now_usec()) and the address
	 * curl's AF_UNIX socket connects to; errors as transport.h (-ETIMEDOUT,
	 * -ECONNREFUSED, -EHOSTUNREACH, -EPROTO ...) with a message naming the path
	 * and the hop. */
	int (*dial)(struct tu_dialer *d, uint64_t deadline_usec, struct sockaddr_un *ret_addr,
		    socklen_t *ret_len, struct tu_err *reterr);
	size_t (*pollfds)(struct tu_dialer *d, struct pollfd *fds, size_t max);
	void (*step)(struct tu_dialer *d);
	/* Why the last stream ended, when it ended with an error (false: none). */
	bool (*last_error)(const struct tu_dialer *d, struct tu_err *ret);
	void *state;                  /* the stream dialer's own, freed by free_state */
	void (*free_state)(void *state);
	/* Set by the upgrade's constructor when the upgrade is required
	 * (auth.proxy_conn_upgrade: always): the plan leaves plain TLS routing out. */
	bool replaces_tls_routing;
};

/*
 * A stream dialer of dial/tunnel-pump.h as a path (taken: freed with the
 * dialer, also on failure).  Defined in dial/stream.c.  -ENOMEM.
 */
int tu_dial_wrap_stream(enum tu_dial_path path, const char *what, struct tu_stream_dialer *sd,
			struct tu_dialer **ret, struct tu_err *reterr);

/* Frees d (host, state); accepts NULL; returns NULL. */
struct tu_dialer *tu_dialer_free(struct tu_dialer *d);

/*
 * What /webapi/find said about a Proxy (PROXY.md §5), the detection of the
 * upgrade, and the path that worked last: remembered in <cache.dir>/dial.memo
 * (text, one `key value` per line, root's, 0644, written atomically) so that
 * a PAM login or NSS refresh goes straight to the path that worked.
 */
struct tu_dial_memo {
	bool valid;                 /* read from the cache or filled by discovery */
	char proxy[TU_DIAL_WHAT_MAX]; /* the auth.proxy it is about ("" = none): a memo for
				     * another Proxy is ignored */
	bool found;                 /* /webapi/find answered */
	bool tls_routing;           /* proxy.tls_routing_enabled */
	char tunnel_addr[TU_DIAL_WHAT_MAX]; /* TunnelAddr() as host:port ("" = unknown) */
	char cluster[256];          /* cluster_name from find ("" = unknown) */
	int upgrade;                /* -1 unknown, 0 not needed, 1 needed (ws path) */
	bool has_path;
	enum tu_dial_path path;     /* the path that worked last */
	char path_what[TU_DIAL_WHAT_MAX]; /* its address (which of auth.addresses) */
	int64_t updated_usec;       /* CLOCK_REALTIME of the last write */
};

/*
 * The ALPN list to reach Auth of `cluster` through TLS routing, wire format:
 * "teleport-auth@" + lowercase hex(cluster) + ".teleport.cluster.local", then
 * "h2".  Returns the length, or -ENAMETOOLONG/-EINVAL.
 */
int tu_dial_alpn_auth(const char *cluster, uint8_t *buf, size_t size);

/*
 * Constructors of the stream dialers: the upgrade in dial/stream.c (over
 * dial/ws.h), the reverse tunnel not written yet (a weak stand-in in dial.c
 * answers -EOPNOTSUPP; a tunnel*.c defining it plugs in).  conf,
 * creds and memo are borrowed for the call only.  -EOPNOTSUPP: the path does
 * not apply (no SSH certificate, upgrade not needed, ...): the plan skips it.
 */
int tu_dial_upgrade_new(const struct tu_conf *conf, const struct tu_creds *creds,
			const struct tu_dial_memo *memo, struct tu_dialer **ret,
			struct tu_err *reterr);
int tu_dial_tunnel_new(const struct tu_conf *conf, const struct tu_creds *creds,
		       const struct tu_dial_memo *memo, struct tu_dialer **ret,
		       struct tu_err *reterr);

/* The ordered dialers for conf + creds. */
struct tu_dial_plan {
	struct tu_dialer *d[TU_DIAL_MAX];
	size_t n;
};

/*
 * Builds the plan: direct (each auth.addresses), then with auth.proxy:
 * tls-routing, tls-routing+upgrade, reverse tunnel (those whose constructor
 * does not answer -EOPNOTSUPP); the memo's path moved to the front.  memo may
 * be NULL.  Errors: -EINVAL (nothing to dial: no address, no proxy; bad
 * cluster name), -ENOMEM.
 */
int tu_dial_plan_new(const struct tu_conf *conf, const struct tu_creds *creds,
		     const struct tu_dial_memo *memo, struct tu_dial_plan *ret,
		     struct tu_err *reterr);
void tu_dial_plan_done(struct tu_dial_plan *p);

/*
 * Discovery: GET https://<auth.proxy>/webapi/find (HTTP/1.1 over TLS, the
 * Proxy's web certificate verified against the system roots or
 * auth.proxy_ca), by deadline_usec.  Fills ret->found, tls_routing,
 * tunnel_addr (PROXY.md §5 TunnelAddr()), cluster; sets ret->proxy.
 * Errors: -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EPROTO (TLS, HTTP status
 * not 200: "is this a Teleport Proxy?"), -EBADMSG (not the JSON of find),
 * -ENOMEM; every message names the Proxy address.
 */
int tu_dial_find(const struct tu_conf *conf, uint64_t deadline_usec, struct tu_dial_memo *ret,
		 struct tu_err *reterr);

/* Pure parser of a find answer (for tests and the fuzzer): -EBADMSG with the reason. */
int tu_dial_find_parse(const char *json, size_t len, uint16_t web_port, struct tu_dial_memo *ret,
		       struct tu_err *reterr);

/* Memo in <cache.dir>/dial.memo: load (-ENOENT none; -EPERM untrusted file; -EBADMSG bad)
 * and save (only where tu_cache_may_write allows; best effort for callers). */
int tu_dial_memo_load(const struct tu_conf *conf, struct tu_dial_memo *ret,
		      struct tu_err *reterr);
int tu_dial_memo_save(const struct tu_conf *conf, const struct tu_dial_memo *m,
		      struct tu_err *reterr);
