/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2.c - struct tu_transport over libcurl: gRPC's HTTP/2 exchange with mTLS,
 * a deadline, byte limits and fail-over across Auth addresses (see h2.h).
 * Layer: libcore, built as the module teleport-unix-h2.so (the only object
 * that links libcurl and libssl), loaded by h2-load.c once the core has a
 * TCP connection to Auth.  The only file that includes <curl/curl.h>.
 *
 * The first call adopts that connection (struct tu_h2_predial): the
 * open-socket callback hands curl the connected descriptor when curl asks
 * for exactly that peer, and the socket-option callback tells curl it is
 * already connected.  That call starts at the dialled address with the
 * connect time already spent, and its fail-over summary continues the
 * loader's, so messages, order and time bounds are those of one dial.
 *
 * Connection reuse: one CURL easy handle in one multi handle per transport
 * keeps its connection cache, and the same CONNECT_TO entry for the address
 * that last worked lets curl pick the open connection again.  The URL always
 * names server_name (SNI + verified name); CONNECT_TO sends the bytes to the
 * dialled address.
 *
 * Names: curl never resolves anything.  We resolve each Auth host ourselves
 * (resolve.c: numeric, /etc/hosts, our own bounded DNS client; no NSS, no
 * thread) and hand curl the numbers through CURLOPT_RESOLVE for the very
 * name CONNECT_TO points at, so curl finds them in its DNS cache; a
 * resolver-start callback that aborts catches any lookup curl would still
 * start (that would be its threaded getaddrinfo, unbounded by our deadline).
 *
 * Descriptors: curl's sockets are made by our open-socket callback with
 * SOCK_CLOEXEC; the socket pair curl 7.88 makes in curl_multi_init() is
 * marked close-on-exec right after (mark_new_pair_cloexec()); OpenSSL is
 * told never to load openssl.cnf, which it would open without O_CLOEXEC.
 */
#include "h2.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "cleanup.h"
#include "conf.h"
#include "creds.h"
#include "dial/tunnel-pump.h"
#include "dial/tunnel-select.h"
#include "err.h"
#include "grpc.h"
#include "resolve.h"
#include "transport.h"

#define MAX_HEADER_BYTES \
	((size_t) 64 * 1024)  /* all response header and trailer lines of one call */
#define MAX_RAW_MESSAGE 1024u /* grpc-message before percent-decoding */
#define MAX_SERVER_NAME 253u
#define MAX_PATH_LEN    256u

struct h2_addr {
	char *host;
	uint16_t port;
	char curl_name[TU_RESOLVE_MAX_NAME + 1]; /* the name CONNECT_TO and RESOLVE use */
	struct tu_resolve_result res;           /* valid while now < res_until */
	uint64_t res_until;
};

struct h2 {
	struct tu_transport t; /* first: the vtable the callers see */
	CURL *curl;
	CURLM *multi;       /* ours, so its socket pair is made where we can mark it */
	bool curl_resolved; /* curl tried to resolve a name itself (aborted) */
	const struct tu_creds *creds;
	char *server_name;
	struct h2_addr addr[TU_MAX_AUTH_ADDRESSES];
	size_t n_addr;
	size_t cur; /* the address that worked last: tried first */
	uint64_t connect_timeout_usec;
	uint64_t max_body;
	tu_transport_tick_fn tick; /* set during h2_stream() only */
	void *tick_userdata;
	char errbuf[CURL_ERROR_SIZE];
	/* A path curl cannot open itself (dial/tunnel-pump.h): its sockets come from the
	 * dialer, and perform() pumps its bytes.  NULL: plain TCP. */
	struct tu_stream_dialer *dialer;
	uint64_t dial_deadline; /* for the dialer, set before each transfer */
	int dial_code;          /* the dialer's failure in this transfer, 0 none */
	struct tu_err dial_err;
	/* The loader's connection, until the first call is over (pre.fd -1 once curl has it). */
	struct tu_h2_predial pre;
	bool pre_pending; /* the first call has not run yet */
	int adopted_fd;   /* handed to curl, not yet told "already connected" (-1: none) */
};

/* State of one perform(). */
struct exchange {
	struct h2 *h;
	tu_transport_data_fn on_data;
	void *userdata;
	struct tu_err *reterr;
	const char *addr; /* "host:port" being dialled, for messages */
	int err;          /* set by a callback that aborted the transfer */
	bool connected;   /* TLS up and ALPN checked (prereq callback ran) */
	bool checked;     /* HTTP status and content-type checked */
	long http_status;
	char content_type[128];
	size_t header_bytes;
	uint64_t body_bytes;
	int grpc_status; /* -1 none, -2 unparsable */
	char grpc_message[MAX_RAW_MESSAGE + 1];
	size_t grpc_message_len;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;
static bool global_refused;

extern char **environ;

static void global_init(void)
{
	/* libcurl opens $SSLKEYLOGFILE at initialisation, whatever AT_SECURE says
	 * (it uses getenv, not secure_getenv): in su/sudo (PAM account phase) the
	 * invoking user would choose a file root appends to.  Refuse instead of
	 * touching the environment (process-wide state is the host's). */
	if (tu_h2_check_env(getauxval(AT_SECURE) != 0, environ, NULL) < 0) {
		global_refused = true;
		return;
	}
	/* libcurl asks OpenSSL to load openssl.cnf (OPENSSL_INIT_LOAD_CONFIG), which
	 * OpenSSL opens without O_CLOEXEC, in sshd, cron or any NSS caller.  Our TLS
	 * settings are all explicit (h2.h), so the config has nothing to give us:
	 * ask first for no config.  A process that already loaded it (sshd does at
	 * start-up) keeps it; this call is then a no-op. */
	tu_creds_init_openssl();
	/* CURL_GLOBAL_DEFAULT: SSL init only; nothing that touches signals. */
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int fail_cb(struct exchange *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_cb(struct exchange *x, int code, const char *fmt, ...)
{
	va_list ap;

	if (x->err)
		return x->err;
	va_start(ap, fmt);
	tu_err_setv(x->reterr, code, fmt, ap);
	va_end(ap);
	x->err = code;
	return code;
}

static bool header_is(const char *line, size_t name_len, const char *name)
{
	return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

static int parse_grpc_status(const char *v, size_t len)
{
	int s = 0;

	if (len == 0 || len > 3)
		return -2;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -2;
		s = s * 10 + (v[i] - '0');
	}
	return s;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct exchange *x = userdata;
	size_t len = size * nmemb;

	if (x->err)
		return 0;
	x->header_bytes += len;
	if (x->header_bytes > MAX_HEADER_BYTES) {
		fail_cb(x, -EMSGSIZE, "response headers from %s over %zu bytes", x->addr,
			MAX_HEADER_BYTES);
		return 0;
	}
	size_t l = len;
	while (l > 0 && (data[l - 1] == '\n' || data[l - 1] == '\r'))
		l--;
	if (l >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* status line: a new response starts (no 1xx in gRPC, but be safe) */
		const char *sp = memchr(data, ' ', l);
		x->http_status = 0;
		if (sp && (size_t) (data + l - sp) >= 4) {
			for (int i = 1; i <= 3; i++) {
				char c = sp[i];
				x->http_status =
				    c >= '0' && c <= '9' ? x->http_status * 10 + (c - '0') : -1;
				if (x->http_status < 0)
					break;
			}
		}
		x->content_type[0] = '\0';
		x->grpc_status = -1;
		x->grpc_message_len = 0;
		x->grpc_message[0] = '\0';
		return len;
	}
	const char *colon = memchr(data, ':', l);
	if (!colon)
		return len;
	size_t nlen = (size_t) (colon - data);
	const char *v = colon + 1;
	size_t vlen = l - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;

	if (header_is(data, nlen, "content-type")) {
		snprintf(x->content_type, sizeof(x->content_type), "%.*s", (int) vlen, v);
	} else if (header_is(data, nlen, "grpc-status")) {
		x->grpc_status = parse_grpc_status(v, vlen);
	} else if (header_is(data, nlen, "grpc-message")) {
		if (vlen > MAX_RAW_MESSAGE)
			vlen = MAX_RAW_MESSAGE;
		memcpy(x->grpc_message, v, vlen);
		x->grpc_message[vlen] = '\0';
		x->grpc_message_len = vlen;
	}
	return len;
}

static bool content_type_is_grpc(const char *ct)
{
	static const char base[] = "application/grpc";
	size_t n = sizeof(base) - 1;

	return strncasecmp(ct, base, n) == 0 && (ct[n] == '\0' || ct[n] == '+' || ct[n] == ';');
}

/* The response must be HTTP 200 with a gRPC content-type before any body byte counts. */
static int check_response(struct exchange *x)
{
	char ct[sizeof(x->content_type)];

	if (x->checked)
		return 0;
	x->checked = true;
	tu_sanitize(x->content_type[0] ? x->content_type : "none", ct, sizeof(ct));
	if (x->http_status != 200)
		return fail_cb(x, -EPROTO,
			       "%s answered HTTP status %ld (content-type %s): not a gRPC server?",
			       x->addr, x->http_status, ct);
	if (!content_type_is_grpc(x->content_type))
		return fail_cb(
		    x, -EPROTO,
		    "%s answered with content-type %s, not application/grpc: not a gRPC server?",
		    x->addr, ct);
	return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct exchange *x = userdata;
	size_t len = size * nmemb;

	if (x->err || check_response(x) < 0)
		return CURL_WRITEFUNC_ERROR;
	if (x->body_bytes + len > x->h->max_body) {
		fail_cb(x, -EMSGSIZE, "response from %s over the limit of %" PRIu64 " bytes",
			x->addr, x->h->max_body);
		return CURL_WRITEFUNC_ERROR;
	}
	x->body_bytes += len;
	int r = x->on_data(x->userdata, (const uint8_t *) data, len, x->reterr);
	if (r < 0) {
		x->err = r; /* the callback filled reterr */
		return CURL_WRITEFUNC_ERROR;
	}
	return len;
}

/* Runs once the connection is up, before the request goes out: insist on ALPN h2 here,
 * so an HTTP/1.1 server never sees our request (Teleport's would route it to its JSON API). */
static int on_prereq(void *userdata, char *primary_ip, char *local_ip, int primary_port,
		     int local_port)
{
	struct exchange *x = userdata;
	struct curl_tlssessioninfo *ti = NULL;
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;

	(void) primary_ip;
	(void) local_ip;
	(void) primary_port;
	(void) local_port;
	if (curl_easy_getinfo(x->h->curl, CURLINFO_TLS_SSL_PTR, &ti) == CURLE_OK && ti &&
	    ti->backend == CURLSSLBACKEND_OPENSSL && ti->internals)
		SSL_get0_alpn_selected((SSL *) ti->internals, &alpn, &alpn_len);
	else
		alpn_len = 0;
	if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
		fail_cb(x, -EPROTO, "%s did not negotiate HTTP/2 (ALPN h2)%s%.*s%s", x->addr,
			alpn_len ? "; it chose '" : "", (int) (alpn_len > 32 ? 32 : alpn_len),
			alpn_len ? (const char *) alpn : "", alpn_len ? "'" : "");
		x->connected = true; /* a TLS server answered: no point failing over for this */
		return CURL_PREREQFUNC_ABORT;
	}
	x->connected = true;
	return CURL_PREREQFUNC_OK;
}

static uint64_t ceil_ms(uint64_t usec)
{
	return usec / 1000 + (usec % 1000 != 0);
}

/* Maps a failed perform() to errno + message (callbacks' own errors come first). */
static int map_curl_error(struct exchange *x, CURLcode rc, uint64_t elapsed_usec)
{
	struct h2 *h = x->h;
	const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
	char d[CURL_ERROR_SIZE];
	long os_errno = 0;

	if (x->err)
		return x->err;
	tu_sanitize(detail, d, sizeof(d));
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return fail_cb(x, -EHOSTUNREACH, "cannot resolve %s: %s", x->addr, d);
	case CURLE_COULDNT_CONNECT:
		(void) curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == ECONNREFUSED)
			return fail_cb(x, -ECONNREFUSED, "cannot connect to %s: connection refused",
				       x->addr);
		if (os_errno == ETIMEDOUT)
			return fail_cb(x, -ETIMEDOUT, "cannot connect to %s: timed out", x->addr);
		return fail_cb(x, -EHOSTUNREACH, "cannot connect to %s: %s", x->addr, d);
	case CURLE_OPERATION_TIMEDOUT:
		if (!x->connected)
			return fail_cb(x, -ETIMEDOUT,
				       "connecting to %s timed out after %" PRIu64 " ms", x->addr,
				       elapsed_usec / 1000);
		return fail_cb(x, -ETIMEDOUT, "no complete answer from %s within %" PRIu64 " ms",
			       x->addr, elapsed_usec / 1000);
	case CURLE_PEER_FAILED_VERIFICATION:
		return fail_cb(
		    x, -EPROTO,
		    "TLS: the certificate of %s is not valid for '%s' under the configured CA: %s",
		    x->addr, h->server_name, d);
	case CURLE_SSL_CONNECT_ERROR:
		return fail_cb(x, -EPROTO, "TLS handshake with %s failed: %s", x->addr, d);
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
		return fail_cb(x, -EBADMSG, "the TLS library refused our credential: %s", d);
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		if (x->http_status == 0 &&
		    strstr(d, "not closed cleanly before end of the underlying stream"))
			return fail_cb(
			    x, -ECONNRESET,
			    "%s closed the connection without answering (did it refuse our client certificate?): %s",
			    x->addr, d);
		return fail_cb(x, -EPROTO, "HTTP/2 error from %s: %s", x->addr, d);
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		if (!x->connected)
			return fail_cb(x, -EHOSTUNREACH, "connection to %s failed during setup: %s",
				       x->addr, d);
		if (x->http_status == 0)
			/* TLS 1.3 servers reject a client certificate after the handshake, so
			 * that is what a silent close right after connecting usually means. */
			return fail_cb(
			    x, -ECONNRESET,
			    "%s closed the connection without answering (did it refuse our client certificate?): %s",
			    x->addr, d);
		return fail_cb(x, -ECONNRESET,
			       "connection to %s closed before the answer was complete: %s",
			       x->addr, d);
	case CURLE_OUT_OF_MEMORY:
		return fail_cb(x, -ENOMEM, "out of memory in libcurl");
	case CURLE_UNSUPPORTED_PROTOCOL:
		return fail_cb(x, -EPROTO, "%s: %s", x->addr, d);
	default:
		return fail_cb(x, -EIO, "request to %s failed: %s", x->addr, d);
	}
}

#define valid_server_name tu_h2_valid_server_name
#define valid_path        tu_h2_valid_path

static void addr_string(const struct h2_addr *a, char *buf, size_t size)
{
	tu_h2_addr_string(a->host, a->port, buf, size);
}

/* Whether curl asks for the very peer the loader connected to. */
static bool is_pre_peer(const struct h2 *h, const struct curl_sockaddr *a)
{
	const struct sockaddr *p = (const struct sockaddr *) &h->pre.peer;

	if (h->pre.fd < 0 || a->family != p->sa_family || a->socktype != SOCK_STREAM)
		return false;
	if (p->sa_family == AF_INET && a->addrlen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *x = (const void *) &a->addr, *y = (const void *) p;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (p->sa_family == AF_INET6 && a->addrlen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *x = (const void *) &a->addr, *y = (const void *) p;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

/* curl's sockets: close-on-exec from birth (a fork+exec in another thread of
 * sshd or cron must not inherit our connection to Auth); the loader's
 * connection (close-on-exec too) when curl asks for its peer. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct h2 *h = clientp;

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (h && is_pre_peer(h, a)) {
		h->adopted_fd = h->pre.fd;
		h->pre.fd = -1; /* curl's now: it closes it */
		return h->adopted_fd;
	}
	if (h && h->dialer) {
		/* The dialer reaches Auth's TLS its own way (bounded by the connect
		 * deadline) and has curl connect to its private local socket instead
		 * (an address that fits curl_sockaddr's struct sockaddr). */
		struct sockaddr_un sa;
		socklen_t len = 0;
		tu_err_clear(&h->dial_err);
		int r = tu_stream_dialer_open(h->dialer, h->dial_deadline, &sa, &len, &h->dial_err);
		if (r < 0) {
			h->dial_code = r;
			return CURL_SOCKET_BAD;
		}
		if (len > sizeof(a->addr)) {
			h->dial_code = tu_err_set(&h->dial_err, -EIO, "stream address too long");
			return CURL_SOCKET_BAD;
		}
		a->family = AF_UNIX;
		a->protocol = 0;
		a->addrlen = len;
		memcpy(&a->addr, &sa, len);
		return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* TCP keepalive on every connection (main's on_sockopt calls it): a stream idle for hours
 * notices a dead peer within about a minute (30 s idle, then 3 probes 10 s apart), without
 * HTTP/2 PINGs (transport.h). */
static void set_keepalive(curl_socket_t fd)
{
	int on = 1, idle = 30, intvl = 10, cnt = 3;
	unsigned int user_timeout_ms = 60000;

	(void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	(void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	(void) setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
			  sizeof(user_timeout_ms));
}

/* Tells curl not to connect() the adopted descriptor again; keepalive on every connection. */
static int on_sockopt(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	struct h2 *h = clientp;

	if (purpose == CURLSOCKTYPE_IPCXN)
		set_keepalive(fd);
	if (h && h->adopted_fd >= 0 && fd == h->adopted_fd) {
		h->adopted_fd = -1;
		return CURL_SOCKOPT_ALREADY_CONNECTED;
	}
	return CURL_SOCKOPT_OK;
}

/* Called only when curl would resolve a name itself: never let it. */
static int on_resolver_start(void *resolver_state, void *reserved, void *userdata)
{
	struct h2 *h = userdata;

	(void) resolver_state;
	(void) reserved;
	h->curl_resolved = true;
	return 1;
}

#define MAX_PAIR_SCAN 4096 /* descriptors looked at for the lowest free ones */

/* The lowest free descriptor numbers (where socketpair() puts its two). */
static size_t lowest_free_fds(int *ret, size_t max)
{
	struct rlimit rl;
	size_t n = 0;
	int limit = MAX_PAIR_SCAN;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t) limit)
		limit = (int) rl.rlim_cur;
	for (int fd = 0; fd < limit && n < max; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			ret[n++] = fd;
	return n;
}

/*
 * libcurl 7.88 makes a socket pair (its wake-up channel) in curl_multi_init()
 * with plain socketpair(), no close-on-exec, and offers no option for it.
 * socketpair() takes the lowest free numbers, so those noted just before are
 * where it is: an AF_UNIX stream socket there without FD_CLOEXEC is curl's.
 * (A descriptor another thread opened at that very instant could take one of
 * the numbers; only one without FD_CLOEXEC that is also an AF_UNIX stream
 * socket would be touched, and it would merely become close-on-exec.)
 */
static void mark_new_pair_cloexec(const int *cand, size_t n)
{
	unsigned marked = 0;

	for (size_t i = 0; i < n && marked < 2; i++) {
		int fl = fcntl(cand[i], F_GETFD), v = 0;
		socklen_t vl = sizeof(v);
		if (fl < 0 || (fl & FD_CLOEXEC))
			continue;
		if (getsockopt(cand[i], SOL_SOCKET, SO_DOMAIN, &v, &vl) < 0 || v != AF_UNIX)
			continue;
		vl = sizeof(v);
		if (getsockopt(cand[i], SOL_SOCKET, SO_TYPE, &v, &vl) < 0 || v != SOCK_STREAM)
			continue;
		if (fcntl(cand[i], F_SETFD, fl | FD_CLOEXEC) == 0)
			marked++;
	}
}

/*
 * Addresses of h->addr[i] by conn_deadline (resolve.c), reused while the
 * answer's TTL lasts.  Fills *ret_list with curl's CURLOPT_RESOLVE entry
 * "<curl_name>:<port>:<addresses>".
 */
static int resolve_addr(struct h2 *h, size_t i, const char *what, uint64_t now,
			uint64_t conn_deadline, char *list, size_t list_size, struct tu_err *reterr)
{
	struct h2_addr *a = &h->addr[i];
	char addrs[TU_RESOLVE_MAX_ADDRS * 50];
	int r;

	if (now >= a->res_until || a->res.n == 0) {
		struct tu_resolve_result res;
		r = tu_resolve(a->host, conn_deadline, NULL, &res, reterr);
		if (r < 0) {
			if (reterr && r == -ETIMEDOUT)
				tu_err_prefix(reterr, "connecting to %s", what);
			return r;
		}
		a->res = res;
		a->res_until = tu_transport_now_usec() + (uint64_t) res.ttl_sec * 1000000u;
	}
	if (tu_resolve_format_list(&a->res, addrs, sizeof(addrs)) < 0)
		return tu_err_set(reterr, -EIO, "cannot format the addresses of %s", what);
	r = snprintf(list, list_size, "%s:%u:%s", a->curl_name, a->port, addrs);
	if (r < 0 || (size_t) r >= list_size)
		return tu_err_set(reterr, -EIO, "cannot format the addresses of %s", what);
	return 0;
}

/* A stream's tick (h2_stream): libcurl calls this after each read and while idle, about once a
 * second; a tick that fails ends the transfer with its own error. */
static int on_xferinfo(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct exchange *x = userdata;
	int r;

	(void) dltotal;
	(void) dlnow;
	(void) ultotal;
	(void) ulnow;
	if (!x || !x->h->tick || x->err)
		return x && x->err ? 1 : 0;
	r = x->h->tick(x->h->tick_userdata, x->reterr);
	if (r < 0) {
		x->err = r; /* the tick filled reterr */
		return 1;
	}
	return 0;
}

static int setup_call(struct h2 *h, struct exchange *x, const char *url, const uint8_t *body,
		      size_t body_len, struct curl_slist *headers)
{
	CURL *c = h->curl;
	CURLcode rc = CURLE_OK;

#define SET(opt, val)                                       \
	do {                                                \
		if (rc == CURLE_OK)                         \
			rc = curl_easy_setopt(c, opt, val); \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, (const char *) body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_len);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_PREREQFUNCTION, on_prereq);
	SET(CURLOPT_PREREQDATA, x);
	SET(CURLOPT_NOPROGRESS, h->tick ? 0L : 1L);
	SET(CURLOPT_XFERINFOFUNCTION, on_xferinfo);
	SET(CURLOPT_XFERINFODATA, x);
#undef SET
	return rc == CURLE_OK ? 0 : -EIO;
}

/* Appends the reason address `what` failed to the fail-over summary. */
static void note_tried(char *tried, size_t size, size_t *len, const struct tu_err *e)
{
	if (!e)
		return;
	int n = snprintf(tried + *len, size - *len, "%s%s", *len ? "; " : "", e->msg);
	if (n > 0 && (size_t) n < size - *len)
		*len += (size_t) n;
}

/* One transfer on our multi handle; curl's own timeouts (set by the caller) end it. */
static CURLcode perform(struct h2 *h)
{
	CURLMcode mc = curl_multi_add_handle(h->multi, h->curl);
	CURLcode rc = CURLE_FAILED_INIT;
	int running = 1;

	if (mc != CURLM_OK)
		return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
	while (running) {
		struct pollfd pfd[TU_STREAM_MAX_FDS];
		struct curl_waitfd wfd[TU_STREAM_MAX_FDS];
		unsigned n = 0;
		int wait_ms = 1000;

		mc = curl_multi_perform(h->multi, &running);
		if (h->dialer) {
			/* The dialer's pumps run in this loop, on this thread. */
			if (tu_stream_dialer_step(h->dialer))
				wait_ms = 0;
			n = (unsigned) tu_stream_dialer_pollfds(h->dialer, pfd, TU_STREAM_MAX_FDS);
			for (unsigned i = 0; i < n; i++) {
				wfd[i].fd = pfd[i].fd;
				wfd[i].events = (short) ((pfd[i].events & POLLIN ? CURL_WAIT_POLLIN : 0) |
							 (pfd[i].events & POLLOUT ? CURL_WAIT_POLLOUT : 0));
				wfd[i].revents = 0;
			}
		}
		if (mc == CURLM_OK && running)
			mc = curl_multi_poll(h->multi, n ? wfd : NULL, n, wait_ms, NULL);
		if (h->dialer)
			(void) tu_stream_dialer_step(h->dialer);
		if (mc != CURLM_OK)
			break;
	}
	for (;;) {
		int left = 0;
		CURLMsg *m = curl_multi_info_read(h->multi, &left);
		if (!m)
			break;
		if (m->msg == CURLMSG_DONE && m->easy_handle == h->curl)
			rc = m->data.result;
	}
	if (mc == CURLM_OUT_OF_MEMORY)
		rc = CURLE_OUT_OF_MEMORY;
	(void) curl_multi_remove_handle(h->multi, h->curl);
	return rc;
}

static int h2_call_loop(struct h2 *h, const char *url, const char *path, const uint8_t *body, size_t body_len,
			uint64_t deadline_usec, tu_transport_data_fn on_data, void *userdata,
			struct tu_transport_status *ret_status, struct tu_err *reterr, size_t start, size_t n_try,
			bool first, char *tried, size_t tried_size, size_t *tried_lenp)
{
	struct curl_slist *headers = NULL, *connect_to = NULL, *resolve = NULL;
	char tmo[32], hdr[64];
	char addr[TU_MAX_AUTH_ADDRESSES][300];
	char entry[TU_RESOLVE_MAX_NAME + 16 + TU_RESOLVE_MAX_ADDRS * 50];
	size_t tried_len = *tried_lenp;
	int r = -EIO;

	(void) path;
	for (size_t k = 0; k < n_try; k++) {
		size_t i = (start + k) % h->n_addr;
		struct exchange x = {
		    .h = h,
		    .on_data = on_data,
		    .userdata = userdata,
		    .reterr = reterr,
		    .addr = addr[i],
		    .grpc_status = -1,
		};
		char ct[340];
		uint64_t now = tu_transport_now_usec();

		addr_string(&h->addr[i], addr[i], sizeof(addr[i]));
		if (first && k == 0 && h->pre.started_usec && h->pre.started_usec <= now &&
		    h->pre.started_usec < deadline_usec)
			now = h->pre.started_usec; /* the loader's dial of this address */
		if (now >= deadline_usec) {
			if (k == 0)
				r = tu_err_set(reterr, -ETIMEDOUT,
					       "deadline passed before calling %s", addr[i]);
			break;
		}
		uint64_t remaining = deadline_usec - now;
		uint64_t connect = h->connect_timeout_usec && h->connect_timeout_usec < remaining
				       ? h->connect_timeout_usec
				       : remaining;

		/* The name first, inside this address's connect time (as curl counts it).
		 * A dialer resolves its own hops: curl gets a number it never dials. */
		h->dial_deadline = now + connect;
		h->dial_code = 0;
		if (h->dialer)
			r = snprintf(entry, sizeof(entry), "%s:%u:127.0.0.1", h->addr[i].curl_name,
				     h->addr[i].port) < (int) sizeof(entry)
				? 0
				: tu_err_set(reterr, -EIO, "address too long");
		else
			r = resolve_addr(h, i, addr[i], now, now + connect, entry, sizeof(entry),
					 reterr);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			if (h->n_addr > 1)
				note_tried(tried, tried_size, &tried_len, reterr);
			continue;
		}
		uint64_t after = tu_transport_now_usec();
		if (after >= now + connect) {
			r = tu_err_set(reterr, -ETIMEDOUT,
				       "connecting to %s timed out after %" PRIu64
				       " ms (resolving its name)",
				       addr[i], (after - now) / 1000);
			if (h->n_addr > 1)
				note_tried(tried, tried_size, &tried_len, reterr);
			continue;
		}
		connect = now + connect - after;
		remaining = deadline_usec - after;

		/* grpc-timeout: what is left; the server gives up when we do.  A stream
		 * (UINT64_MAX, h2_stream) sends none, as Teleport's own watchers. */
		const bool open_ended = deadline_usec == UINT64_MAX;
		if (tu_grpc_format_timeout(open_ended ? 1 : remaining, tmo, sizeof(tmo)) < 0)
			return tu_err_set(reterr, -EIO, "cannot format grpc-timeout");
		snprintf(hdr, sizeof(hdr), "grpc-timeout: %s", tmo);
		headers = NULL;
		static const char *const fixed[] = {
		    "Content-Type: application/grpc",
		    "TE: trailers",
		    "Accept:",
		    "Expect:",
		    ("User-Agent: teleport-unix/" PACKAGE_VERSION),
		};
		bool oom = false;
		for (size_t j = 0; j < ELEMENTSOF(fixed) + !open_ended && !oom; j++) {
			struct curl_slist *n =
			    curl_slist_append(headers, j < ELEMENTSOF(fixed) ? fixed[j] : hdr);
			if (!n)
				oom = true;
			else
				headers = n;
		}
		/* Empty host and port: every URL goes to this name, which RESOLVE maps
		 * to the numbers we found. */
		snprintf(ct, sizeof(ct), "::%s:%u", h->addr[i].curl_name, h->addr[i].port);
		connect_to = oom ? NULL : curl_slist_append(NULL, ct);
		resolve = connect_to ? curl_slist_append(NULL, entry) : NULL;
		if (!resolve) {
			curl_slist_free_all(headers);
			curl_slist_free_all(connect_to);
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		}

		h->errbuf[0] = '\0';
		h->curl_resolved = false;
		int sr = setup_call(h, &x, url, body, body_len, headers);
		if (sr == 0 &&
		    (curl_easy_setopt(h->curl, CURLOPT_RESOLVE, resolve) != CURLE_OK ||
		     curl_easy_setopt(h->curl, CURLOPT_CONNECT_TO, connect_to) != CURLE_OK ||
		     curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS,
				      (long) ceil_ms(connect)) != CURLE_OK ||
		     curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS,
				      open_ended ? 0L : (long) ceil_ms(remaining)) !=
			 CURLE_OK))
			sr = -EIO;
		CURLcode rc = sr == 0 ? perform(h) : CURLE_FAILED_INIT;
		uint64_t elapsed = tu_transport_now_usec() - now;

		/* The handle must not keep pointers to our stack or lists past this call. */
		(void) curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
		(void) curl_easy_setopt(h->curl, CURLOPT_CONNECT_TO, NULL);
		(void) curl_easy_setopt(h->curl, CURLOPT_RESOLVE, NULL);
		(void) curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, NULL);
		(void) curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, NULL);
		(void) curl_easy_setopt(h->curl, CURLOPT_PREREQDATA, NULL);
		(void) curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
		curl_slist_free_all(headers);
		curl_slist_free_all(connect_to);
		curl_slist_free_all(resolve);
		headers = connect_to = resolve = NULL;

		if (sr < 0)
			return tu_err_set(reterr, -EIO, "cannot set up libcurl for the call");
		if (h->curl_resolved)
			return tu_err_set(reterr, -EIO,
					  "internal error: libcurl tried to resolve a name for %s itself",
					  addr[i]);
		if (rc == CURLE_OK) {
			long v = 0;
			(void) curl_easy_getinfo(h->curl, CURLINFO_HTTP_VERSION, &v);
			if (v != CURL_HTTP_VERSION_2_0)
				return tu_err_set(reterr, -EPROTO,
						  "%s did not negotiate HTTP/2 (ALPN h2)", addr[i]);
			r = check_response(&x);
			if (r < 0)
				return r;
			h->cur = i;
			ret_status->grpc_status = x.grpc_status;
			tu_grpc_percent_decode(x.grpc_message, x.grpc_message_len,
					       ret_status->grpc_message,
					       sizeof(ret_status->grpc_message));
			return 0;
		}
		if (h->dialer && !x.err) {
			/* The dialer knows better than curl why the stream failed. */
			struct tu_err de;
			if (h->dial_code < 0) {
				if (reterr)
					*reterr = h->dial_err;
				return h->dial_code;
			}
			if (!x.connected && tu_stream_dialer_last_error(h->dialer, &de)) {
				if (reterr)
					*reterr = de;
				return de.code;
			}
		}
		r = map_curl_error(&x, rc, elapsed);
		/* Once a server answered TLS and ALPN, its errors are final: fail-over is for
		 * reaching one. */
		if (x.connected)
			return r;
		if (h->n_addr > 1)
			note_tried(tried, tried_size, &tried_len, reterr);
	}
	*tried_lenp = tried_len;
	if (h->n_addr > 1 && tried_len && reterr) {
		int code = reterr->code ? reterr->code : r;
		tu_err_set(reterr, code, "no Auth address answered: %s", tried);
	}
	return r;
}

static int h2_call(struct tu_transport *t, const char *path, const uint8_t *body, size_t body_len,
		   uint64_t deadline_usec, tu_transport_data_fn on_data, void *userdata,
		   struct tu_transport_status *ret_status, struct tu_err *reterr)
{
	struct h2 *h = (struct h2 *) t;
	char url[16 + MAX_SERVER_NAME + MAX_PATH_LEN];
	char tried[1024] = "";
	size_t tried_len = 0;
	int r;

	if (!valid_path(path))
		return tu_err_set(reterr, -EINVAL, "invalid RPC path");
	snprintf(url, sizeof(url), "https://%s%s", h->server_name, path);

	/* The first call goes on where the loader's dial stopped: the addresses before
	 * pre.index failed already (their reasons start the summary), and the connect time
	 * of pre.index counts from when the loader began dialling it. */
	size_t start = h->cur, n_try = h->n_addr;
	bool first = h->pre_pending;
	h->pre_pending = false;
	if (h->dialer) {
		/* The stream dialer reaches its one address (the first): no fail-over. */
		start = 0;
		n_try = 1;
	}
	if (first) {
		start = h->pre.index;
		n_try = h->n_addr - h->pre.index;
		snprintf(tried, sizeof(tried), "%s", h->pre.tried);
		tried_len = strlen(tried);
	}
	r = h2_call_loop(h, url, path, body, body_len, deadline_usec, on_data, userdata, ret_status, reterr,
			 start, n_try, first, tried, sizeof(tried), &tried_len);
	if (h->pre.fd >= 0) {
		/* curl dialled another address of that name: the loader's connection is unused */
		close(h->pre.fd);
		h->pre.fd = -1;
	}
	return r;
}

static int h2_stream(struct tu_transport *t, const char *path, const uint8_t *body,
		     size_t body_len, tu_transport_data_fn on_data, tu_transport_tick_fn on_tick,
		     void *userdata, struct tu_transport_status *ret_status, struct tu_err *reterr)
{
	struct h2 *h = (struct h2 *) t;
	uint64_t max_body = h->max_body;
	int r;

	h->max_body = UINT64_MAX;
	h->tick = on_tick;
	h->tick_userdata = userdata;
	r = h2_call(t, path, body, body_len, UINT64_MAX, on_data, userdata, ret_status, reterr);
	h->tick = NULL;
	h->tick_userdata = NULL;
	h->max_body = max_body;
	(void) curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 1L);
	(void) curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, NULL);
	return r;
}

static void h2_close(struct tu_transport *t)
{
	struct h2 *h = (struct h2 *) t;

	if (!h)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	if (h->multi)
		curl_multi_cleanup(h->multi); /* closes the cached connection and curl's pair */
	tu_stream_dialer_free(h->dialer);
	if (h->pre.fd >= 0)
		close(h->pre.fd);
	for (size_t i = 0; i < h->n_addr; i++)
		free(h->addr[i].host);
	free(h->server_name);
	free(h);
}

/* The module's one export (h2-module.map); the core finds it with dlsym(). */
__attribute__((visibility("default"))) int tu_h2_module_new(const struct tu_conf *conf,
							    const struct tu_creds *creds,
							    uint64_t max_body_bytes,
							    struct tu_h2_predial *pre,
							    struct tu_transport **ret,
							    struct tu_err *reterr)
{
	struct h2 *h;
	struct curl_blob cert = {0}, key = {0}, ca = {0};
	CURLcode rc = CURLE_OK;
	CURL *c;
	/* The loader's connection is ours from here: closed on every error path. */
	_cleanup_close_ int pre_fd = pre ? pre->fd : -1;

	if (pre)
		pre->fd = -1;
	if (conf->n_addresses == 0 || conf->n_addresses > TU_MAX_AUTH_ADDRESSES) {
		tu_err_key(reterr, "auth.addresses");
		return tu_err_set(reterr, -EINVAL, "no Auth address configured");
	}
	const char *sn = conf->server_name ? conf->server_name : TU_DEFAULT_SERVER_NAME;
	if (!valid_server_name(sn)) {
		tu_err_key(reterr, "auth.server_name");
		return tu_err_set(reterr, -EINVAL, "not a valid DNS name");
	}
	(void) pthread_once(&global_once, global_init);
	if (global_refused)
		return tu_h2_check_env(true, environ, reterr) < 0
			   ? -EPERM
			   : tu_err_set(reterr, -EPERM,
					"refusing to go online (unsafe environment)");
	if (global_rc != CURLE_OK)
		return tu_err_set(reterr, -EIO, "libcurl initialisation failed: %s",
				  curl_easy_strerror(global_rc));
	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
	if (!vi || !(vi->features & CURL_VERSION_HTTP2) || !(vi->features & CURL_VERSION_SSL))
		return tu_err_set(reterr, -EPROTO,
				  "libcurl %s was built without HTTP/2 or TLS support",
				  vi ? vi->version : "?");

	h = calloc(1, sizeof(*h));
	if (!h)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	h->t.call = h2_call;
	h->t.close = h2_close;
	h->t.stream = h2_stream;
	h->pre.fd = -1;
	h->adopted_fd = -1;
	h->creds = creds;
	h->connect_timeout_usec = conf->connect_timeout_usec;
	uint64_t max_msg =
	    conf->max_message_size ? conf->max_message_size : TU_GRPC_DEFAULT_MAX_MESSAGE;
	h->max_body = max_body_bytes ? max_body_bytes : 4 * (max_msg + TU_GRPC_FRAME_HEADER);
	h->server_name = strdup(sn);
	if (!h->server_name)
		goto oom;
	for (size_t i = 0; i < conf->n_addresses; i++) {
		h->addr[i].host = strdup(conf->addresses[i].host);
		if (!h->addr[i].host)
			goto oom;
		h->addr[i].port =
		    conf->addresses[i].port ? conf->addresses[i].port : TU_DEFAULT_AUTH_PORT;
		/* CURLOPT_RESOLVE cannot name a host with ':' (an IPv6 literal): a
		 * private stand-in name then (never resolved, .invalid). */
		if (strchr(h->addr[i].host, ':') || strlen(h->addr[i].host) > TU_RESOLVE_MAX_NAME)
			snprintf(h->addr[i].curl_name, sizeof(h->addr[i].curl_name),
				 "auth-address-%zu.invalid", i + 1);
		else
			snprintf(h->addr[i].curl_name, sizeof(h->addr[i].curl_name), "%s",
				 h->addr[i].host);
		h->n_addr++;
	}
	if (pre && pre_fd >= 0 && pre->index < h->n_addr) {
		h->pre = *pre;
		h->pre.fd = TAKE_FD(pre_fd);
		h->pre.tried[sizeof(h->pre.tried) - 1] = '\0';
		h->pre_pending = true;
		h->cur = pre->index;
		/* The loader's answer for that name, the connected address first (curl tries
		 * the addresses of a name in order). */
		h->addr[pre->index].res = pre->res;
		h->addr[pre->index].res_until = pre->res_until;
	}
	/* A stream dialer (dial/tunnel-select.h: the connection upgrade) carries every
	 * connection instead of TCP; it starts on the loader's connection when that went to
	 * the address it dials. */
	int pfd = h->pre_pending && h->pre.index == 0 ? h->pre.fd : -1;
	int sr = tu_tunnel_select(conf, creds, &pfd, &h->dialer, reterr);
	if (pfd < 0 && h->pre_pending && h->pre.index == 0)
		h->pre.fd = -1; /* the dialer took it */
	if (sr < 0) {
		h2_close(&h->t);
		return sr;
	}
	if (h->dialer) {
		if (h->pre.fd >= 0)
			close(h->pre.fd);
		h->pre.fd = -1;
		h->pre_pending = false;
		h->cur = 0;
	}

	h->curl = curl_easy_init();
	if (!h->curl) {
		h2_close(&h->t);
		return tu_err_set(reterr, -ENOMEM, "cannot create a libcurl handle");
	}
	int pair[4];
	size_t n_pair = lowest_free_fds(pair, ELEMENTSOF(pair));
	h->multi = curl_multi_init();
	if (!h->multi) {
		h2_close(&h->t);
		return tu_err_set(reterr, -ENOMEM, "cannot create a libcurl multi handle");
	}
	mark_new_pair_cloexec(pair, n_pair);
	/* The blobs point into creds (NOCOPY), so the key is not copied into curl's heap. */
	cert.data = (void *) tu_creds_cert_pem(creds, &cert.len);
	key.data = (void *) tu_creds_key_pem(creds, &key.len);
	ca.data = (void *) tu_creds_ca_pem(creds, &ca.len);
	cert.flags = key.flags = ca.flags = CURL_BLOB_NOCOPY;

	c = h->curl;
#define SET(opt, val)                                       \
	do {                                                \
		if (rc == CURLE_OK)                         \
			rc = curl_easy_setopt(c, opt, val); \
	} while (0)
	SET(CURLOPT_ERRORBUFFER, h->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, ""); /* ignore http(s)_proxy from the environment */
	SET(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
	SET(CURLOPT_SSL_ENABLE_ALPN, 1L);
	SET(CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_CAINFO, NULL); /* only the credential's CAs, never the system store */
	SET(CURLOPT_CAPATH, NULL);
	SET(CURLOPT_CAINFO_BLOB, &ca);
	SET(CURLOPT_SSLCERTTYPE, "PEM");
	SET(CURLOPT_SSLCERT_BLOB, &cert);
	SET(CURLOPT_SSLKEYTYPE, "PEM");
	SET(CURLOPT_SSLKEY_BLOB, &key);
	SET(CURLOPT_TCP_NODELAY, 1L);
	SET(CURLOPT_ACCEPT_ENCODING, NULL);
	SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
	SET(CURLOPT_OPENSOCKETDATA, h);
	SET(CURLOPT_SOCKOPTFUNCTION, on_sockopt);
	SET(CURLOPT_SOCKOPTDATA, h);
	SET(CURLOPT_RESOLVER_START_FUNCTION, on_resolver_start);
	SET(CURLOPT_RESOLVER_START_DATA, h);
#undef SET
	if (rc != CURLE_OK) {
		h2_close(&h->t);
		return tu_err_set(reterr, -EIO, "cannot configure libcurl: %s",
				  curl_easy_strerror(rc));
	}
	*ret = &h->t;
	return 0;
oom:
	h2_close(&h->t);
	return tu_err_set(reterr, -ENOMEM, "out of memory");
}
