/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2.c - struct tu_transport over libcurl: gRPC's HTTP/2 exchange with mTLS,
 * a deadline, byte limits and fail-over across the paths to Auth (see h2.h;
 * the paths are dial/'s plan: direct addresses, Proxy TLS routing, the
 * upgrade, the tunnel, the remembered one first, one deadline).
 * Layer: libcore, built as the module teleport-unix-h2.so (with dial/, the
 * only objects that link libcurl and libssl), loaded by h2-load.c.  With
 * curl, only dial/find.c includes <curl/curl.h> (h2-curl.h).
 *
 * The loader's connection: without auth.proxy the core dials the first
 * address that answers TCP (h2-load.c); the open-socket callback hands curl
 * that descriptor when curl asks for exactly that peer, the socket-option
 * callback tells curl it is already connected, and that first call starts at
 * that address with the loader's fail-over summary.
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
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "cleanup.h"
#include "conf.h"
#include "creds.h"
#include "ossl-init.h"
#include "dial/dial.h"
#include "dial/tunnel-select.h"
#include "err.h"
#include "grpc.h"
#include "h2-curl.h"
#include "resolve.h"
#include "transport.h"

#define MAX_HEADER_BYTES \
	((size_t) 64 * 1024)  /* all response header and trailer lines of one call */
#define MAX_RAW_MESSAGE 1024u /* grpc-message before percent-decoding */
#define MAX_SERVER_NAME 253u
#define MAX_PATH_LEN    256u

/* One way to Auth (a dialer of dial/dial.h) and what h2 keeps about it. */
struct h2_addr {
	struct tu_dialer *d;
	char *host;    /* d->host (socket dialers); NULL for stream dialers */
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
	const struct tu_conf *conf;
	char *server_name;
	struct tu_dial_plan plan; /* owns the dialers addr[i].d */
	struct h2_addr addr[TU_DIAL_MAX];
	size_t n_addr;
	size_t cur; /* the path that worked last: tried first */
	bool worked;              /* some call succeeded on addr[cur] */
	struct tu_dial_memo memo; /* what find said and the path that worked (dial.memo) */
	bool need_find;           /* auth.proxy set and the memo holds no find answer */
	bool found_here;          /* find was asked by this process (not from the memo) */
	bool reached;             /* the last call got TLS + ALPN h2 from a server */
	/* The inner TLS's ALPN list for the connection being made (CTX callback). */
	uint8_t alpn[TU_DIAL_ALPN_MAX];
	size_t alpn_len;
	/* Stream dialers: the one curl's open-socket callback asks for a connection in
	 * this transfer (NULL: a socket dialer), by dial_deadline; its failure. */
	/* The loader's connection to a direct address (h2-load.c), adopted by curl at the
	 * first call when it asks for that peer (pre.fd -1 once curl has it). */
	struct tu_h2_predial pre;
	int adopted_fd; /* handed to curl, not yet told "already connected" (-1: none) */
	bool pre_pending; /* the first call after adopting has not run yet */
	struct tu_dialer *opening;
	struct tu_dialer *streams[TU_DIAL_MAX]; /* the plan's stream dialers (their pumps) */
	size_t n_streams;
	uint64_t dial_deadline;
	int dial_code;
	struct tu_err dial_err;
	uint64_t connect_timeout_usec;
	uint64_t max_body;
	tu_transport_tick_fn tick; /* set during h2_stream() only */
	void *tick_userdata;
	char errbuf[CURL_ERROR_SIZE];
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
static int global_ctx_index = -1; /* SSL_CTX ex_data slot: the struct h2 making the connection */

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
	tu_openssl_init();
	/* CURL_GLOBAL_DEFAULT: SSL init only; nothing that touches signals. */
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	global_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int tu_h2_curl_init(struct tu_err *reterr)
{
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
	return 0;
}

/*
 * The ALPN list of TLS routing ([teleport-auth@<hex>..., h2]).  libcurl 7.88
 * sets its own list on the SSL object (SSL_set_alpn_protos, "h2,http/1.1")
 * after our CTX callback ran, so a list set on the SSL_CTX would be
 * overridden.  OpenSSL calls the info callback with SSL_CB_HANDSHAKE_START
 * inside SSL_connect, before the ClientHello is built: setting the list
 * there puts exactly ours on the wire while curl still reads the selected
 * protocol ("h2") as usual (tests/integration/test_proxy.py checks both).
 */
static void alpn_info_cb(const SSL *ssl, int where, int ret)
{
	(void) ret;
	if (!(where & SSL_CB_HANDSHAKE_START) || global_ctx_index < 0)
		return;
	struct h2 *h = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), global_ctx_index);
	if (h && h->alpn_len)
		(void) SSL_set_alpn_protos((SSL *) ssl, h->alpn, (unsigned) h->alpn_len);
}

static CURLcode on_ssl_ctx(CURL *curl, void *sslctx, void *userdata)
{
	struct h2 *h = userdata;

	(void) curl;
	if (!h->alpn_len)
		return CURLE_OK;
	if (global_ctx_index < 0 || !SSL_CTX_set_ex_data(sslctx, global_ctx_index, h))
		return CURLE_SSL_CERTPROBLEM;
	SSL_CTX_set_info_callback(sslctx, alpn_info_cb);
	return CURLE_OK;
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


/* "host:port" for a direct address (messages as before issue 12); "<path> via host:port"
 * for the others, so the user sees which way failed. */
static void addr_string(const struct h2_addr *a, char *buf, size_t size)
{
	if (a->d->path == TU_DIAL_DIRECT)
		snprintf(buf, size, "%s", a->d->what);
	else
		snprintf(buf, size, "%s (%s)", a->d->what, tu_dial_path_name(a->d->path));
}

/* curl's sockets: close-on-exec from birth (a fork+exec in another thread of
 * sshd or cron must not inherit our connection to Auth). */
curl_socket_t tu_h2_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	(void) clientp;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/*
 * h2's: for a stream dialer (dial.h), its dial() runs here, when curl needs a
 * connection (not when it reuses one), and curl's AF_UNIX socket connects to
 * the private address it returns; curl's storage behind a curl_sockaddr is a
 * sockaddr_storage.  Otherwise a new TCP socket.
 */
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

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct h2 *h = clientp;

	if (purpose == CURLSOCKTYPE_IPCXN && h && !h->opening && is_pre_peer(h, a)) {
		h->adopted_fd = h->pre.fd;
		h->pre.fd = -1; /* curl's now: it closes it */
		return h->adopted_fd;
	}
	if (purpose == CURLSOCKTYPE_IPCXN && h && h->opening) {
		struct sockaddr_un sa;
		socklen_t len = 0;

		tu_err_clear(&h->dial_err);
		int r = h->opening->dial(h->opening, h->dial_deadline, &sa, &len, &h->dial_err);
		if (r < 0) {
			h->dial_code = r;
			return CURL_SOCKET_BAD;
		}
		if (len > sizeof(sa) || len > sizeof(struct sockaddr_storage)) {
			h->dial_code = tu_err_set(&h->dial_err, -EIO, "stream address too long");
			return CURL_SOCKET_BAD;
		}
		a->family = AF_UNIX;
		a->protocol = 0;
		a->addrlen = len;
		memcpy(&a->addr, &sa, len);
		return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	}
	return tu_h2_open_socket(NULL, purpose, a);
}

/* Called only when curl would resolve a name itself: never let it. */
int tu_h2_refuse_resolver(void *resolver_state, void *reserved, void *userdata)
{
	(void) resolver_state;
	(void) reserved;
	(void) userdata;
	return 1;
}

static int on_resolver_start(void *resolver_state, void *reserved, void *userdata)
{
	struct h2 *h = userdata;

	h->curl_resolved = true;
	return tu_h2_refuse_resolver(resolver_state, reserved, NULL);
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

CURLM *tu_h2_multi_new(void)
{
	int pair[4];
	size_t n_pair = lowest_free_fds(pair, ELEMENTSOF(pair));
	CURLM *m = curl_multi_init();

	if (m)
		mark_new_pair_cloexec(pair, n_pair);
	return m;
}

/*
 * Addresses of h->addr[i] by conn_deadline (resolve.c), reused while the
 * answer's TTL lasts.  Fills *ret_list with curl's CURLOPT_RESOLVE entry
 * "<curl_name>:<port>:<addresses>".  A stream dialer's connection needs no
 * name: its stand-in name maps to 127.0.0.1 and is never connected to.
 */
static int resolve_addr(struct h2 *h, size_t i, const char *what, uint64_t now,
			uint64_t conn_deadline, char *list, size_t list_size, struct tu_err *reterr)
{
	struct h2_addr *a = &h->addr[i];
	char addrs[TU_RESOLVE_MAX_ADDRS * 50];
	int r;

	if (!a->host) {
		r = snprintf(list, list_size, "%s:%u:127.0.0.1", a->curl_name, a->port);
		return r < 0 || (size_t) r >= list_size ? -EIO : 0;
	}
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

#define MAX_PUMP_FDS 16

/* Every stream dialer's pumps, in and around each wait (dial.h). */
static void pumps_step(const struct tu_h2_pumping *p)
{
	for (size_t i = 0; p && i < p->n; i++)
		p->d[i]->step(p->d[i]);
}

CURLcode tu_h2_perform(CURLM *multi, CURL *easy, const struct tu_h2_pumping *pumping)
{
	CURLMcode mc = curl_multi_add_handle(multi, easy);
	CURLcode rc = CURLE_FAILED_INIT;
	int running = 1;

	if (mc != CURLM_OK)
		return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
	while (running) {
		struct pollfd pfd[MAX_PUMP_FDS];
		struct curl_waitfd wfd[MAX_PUMP_FDS];
		size_t n = 0;

		mc = curl_multi_perform(multi, &running);
		if (mc != CURLM_OK || !running)
			break;
		pumps_step(pumping);
		for (size_t i = 0; pumping && i < pumping->n && n < MAX_PUMP_FDS; i++)
			n += pumping->d[i]->pollfds(pumping->d[i], pfd + n, MAX_PUMP_FDS - n);
		for (size_t i = 0; i < n; i++)
			wfd[i] = (struct curl_waitfd){
			    .fd = pfd[i].fd,
			    .events = (short) ((pfd[i].events & POLLIN ? CURL_WAIT_POLLIN : 0) |
					       (pfd[i].events & POLLOUT ? CURL_WAIT_POLLOUT : 0)),
			};
		mc = curl_multi_poll(multi, n ? wfd : NULL, (unsigned) n, 1000, NULL);
		if (mc != CURLM_OK)
			break;
		pumps_step(pumping);
	}
	for (;;) {
		int left = 0;
		CURLMsg *m = curl_multi_info_read(multi, &left);
		if (!m)
			break;
		if (m->msg == CURLMSG_DONE && m->easy_handle == easy)
			rc = m->data.result;
	}
	if (mc == CURLM_OUT_OF_MEMORY)
		rc = CURLE_OUT_OF_MEMORY;
	(void) curl_multi_remove_handle(multi, easy);
	return rc;
}

/* (Re)builds h->addr from the dialers of a plan (taking them over). */
static void adopt_plan(struct h2 *h, struct tu_dial_plan *plan)
{
	tu_dial_plan_done(&h->plan);
	h->plan = *plan;
	*plan = (struct tu_dial_plan){.n = 0};
	memset(h->addr, 0, sizeof(h->addr));
	h->n_addr = 0;
	for (size_t i = 0; i < h->plan.n; i++) {
		struct h2_addr *a = &h->addr[h->n_addr++];
		struct tu_dialer *d = h->plan.d[i];
		a->d = d;
		if (d->dial) {
			/* never resolved, never connected to: curl gets the socketpair end */
			a->host = NULL;
			a->port = 1;
			snprintf(a->curl_name, sizeof(a->curl_name), "auth-stream-%zu.invalid", i + 1);
			continue;
		}
		a->host = d->host;
		a->port = d->port;
		/* CURLOPT_RESOLVE cannot name a host with ':' (an IPv6 literal): a
		 * private stand-in name then (never resolved, .invalid). */
		if (strchr(d->host, ':') || strlen(d->host) > TU_RESOLVE_MAX_NAME)
			snprintf(a->curl_name, sizeof(a->curl_name), "auth-address-%zu.invalid",
				 i + 1);
		else
			snprintf(a->curl_name, sizeof(a->curl_name), "%s", d->host);
	}
	h->cur = 0;
	h->n_streams = 0;
	for (size_t i = 0; i < h->n_addr; i++)
		if (h->addr[i].d->dial)
			h->streams[h->n_streams++] = h->addr[i].d;
}

/* Discovery through /webapi/find, then the plan it picks; the memo is saved for the
 * next process (a PAM login goes straight to the path). */
static int discover(struct h2 *h, uint64_t deadline_usec, struct tu_err *reterr)
{
	struct tu_dial_memo m = {.upgrade = -1};
	struct tu_dial_plan plan;
	struct tu_err e;
	int r;

	/* A stream's call has no deadline (UINT64_MAX): find gets a call's budget. */
	uint64_t cap = tu_transport_now_usec() + h->conf->connect_timeout_usec +
		       h->conf->request_timeout_usec;
	r = tu_dial_find(h->conf, deadline_usec < cap ? deadline_usec : cap, &m, reterr);
	if (r < 0)
		return r;
	m.updated_usec = 0;
	h->memo = m;
	h->need_find = false;
	h->found_here = true;
	r = tu_dial_plan_new(h->conf, h->creds, &m, &plan, reterr);
	if (r < 0) {
		(void) tu_dial_memo_save(h->conf, &h->memo, &e); /* what the Proxy said still holds */
		return r;
	}
	adopt_plan(h, &plan);
	/* Best effort: a process that may not write the cache (su, a user's CLI) still works,
	 * it only asks again next time.  No log: the NSS path must not touch the sink. */
	(void) tu_dial_memo_save(h->conf, &h->memo, &e);
	return 0;
}

/* After a success on addr[i]: remember the path when it is not the one remembered. */
static void remember(struct h2 *h, size_t i)
{
	const struct tu_dialer *d = h->addr[i].d;
	struct tu_err e;

	h->cur = i;
	h->worked = true;
	/* Only a Proxy's paths are worth a file: without auth.proxy the addresses are tried in
	 * their configured order from the first, as before issue 12. */
	if (!h->conf->proxy.host)
		return;
	if (h->memo.valid && h->memo.has_path && h->memo.path == d->path &&
	    strcmp(h->memo.path_what, d->what) == 0)
		return;
	if (!h->memo.valid) {
		h->memo = (struct tu_dial_memo){.valid = true, .upgrade = -1};
		if (h->conf->proxy.host)
			snprintf(h->memo.proxy, sizeof(h->memo.proxy), "%s%s%s:%u",
				 strchr(h->conf->proxy.host, ':') ? "[" : "", h->conf->proxy.host,
				 strchr(h->conf->proxy.host, ':') ? "]" : "",
				 h->conf->proxy.port ? h->conf->proxy.port : TU_DEFAULT_PROXY_PORT);
	}
	h->memo.has_path = true;
	h->memo.path = d->path;
	if (d->path == TU_DIAL_TLS_ROUTING || d->path == TU_DIAL_TLS_ROUTING_UPGRADE)
		h->memo.upgrade = d->path == TU_DIAL_TLS_ROUTING_UPGRADE;
	snprintf(h->memo.path_what, sizeof(h->memo.path_what), "%s", d->what);
	(void) tu_dial_memo_save(h->conf, &h->memo, &e);
}

static int h2_try(struct tu_transport *t, const char *path, const uint8_t *body, size_t body_len,
		  uint64_t deadline_usec, tu_transport_data_fn on_data, void *userdata,
		  struct tu_transport_status *ret_status, struct tu_err *reterr)
{
	struct h2 *h = (struct h2 *) t;
	struct curl_slist *headers = NULL, *connect_to = NULL, *resolve = NULL;
	char url[16 + MAX_SERVER_NAME + MAX_PATH_LEN], tmo[32], hdr[64];
	char addr[TU_DIAL_MAX][TU_DIAL_WHAT_MAX + 40];
	char entry[TU_RESOLVE_MAX_NAME + 16 + TU_RESOLVE_MAX_ADDRS * 50];
	char tried[1024] = "";
	size_t tried_len = 0;
	bool skip_direct = false;
	bool skip[TU_DIAL_MAX] = {false};
	int r = -EIO;

	/* The first call after the loader's dial: the addresses before the one it reached
	 * failed a moment ago (their reasons start the summary); not again in this call. */
	if (h->pre_pending) {
		h->pre_pending = false;
		snprintf(tried, sizeof(tried), "%s", h->pre.tried);
		tried_len = strlen(tried);
		for (size_t i = 0; i < h->n_addr; i++)
			for (size_t j = 0; j < h->pre.index && j < h->conf->n_addresses; j++) {
				char w[TU_DIAL_WHAT_MAX];
				const struct tu_addr *ca = &h->conf->addresses[j];
				tu_h2_addr_string(ca->host, ca->port ? ca->port : TU_DEFAULT_AUTH_PORT, w,
						  sizeof(w));
				if (h->addr[i].d->path == TU_DIAL_DIRECT && strcmp(h->addr[i].d->what, w) == 0)
					skip[i] = true;
			}
	}

	if (!tu_h2_valid_path(path))
		return tu_err_set(reterr, -EINVAL, "invalid RPC path");
	snprintf(url, sizeof(url), "https://%s%s", h->server_name, path);

	/* No find answer yet: ask first when the Proxy is the only way, or the way to try
	 * first; with direct addresses first, only once those failed (below). */
	if (h->need_find && (h->n_addr == 0 || h->addr[h->cur].d->path != TU_DIAL_DIRECT)) {
		r = discover(h, deadline_usec, reterr);
		if (r < 0 && (h->n_addr == 0 || h->addr[0].d->path != TU_DIAL_DIRECT))
			return r;
		if (r < 0)
			note_tried(tried, sizeof(tried), &tried_len, reterr);
	}

	for (size_t k = 0; k < h->n_addr; k++) {
		size_t i = (h->cur + k) % h->n_addr;

		/* Reaching the Proxy's paths without a find answer: discover now, then go on
		 * with the paths it picks (the direct ones already failed). */
		if (h->need_find && h->addr[i].d->path != TU_DIAL_DIRECT) {
			size_t n_direct = 0;
			r = discover(h, deadline_usec, reterr);
			if (r < 0) {
				if (h->n_addr > 1)
					note_tried(tried, sizeof(tried), &tried_len, reterr);
				break;
			}
			while (n_direct < h->n_addr && h->addr[n_direct].d->path == TU_DIAL_DIRECT)
				n_direct++;
			if (n_direct >= h->n_addr)
				break;
			skip_direct = true; /* they failed already */
			h->cur = n_direct;
			k = 0;
			i = n_direct;
		}
		if ((skip_direct && h->addr[i].d->path == TU_DIAL_DIRECT) || skip[i])
			continue;
		struct h2_addr *a = &h->addr[i];
		struct exchange x = {
		    .h = h,
		    .on_data = on_data,
		    .userdata = userdata,
		    .reterr = reterr,
		    .addr = addr[i],
		    .grpc_status = -1,
		};
		struct tu_h2_pumping pumping = {.d = h->streams, .n = h->n_streams};
		char ct[340];
		uint64_t now = tu_transport_now_usec();

		addr_string(a, addr[i], sizeof(addr[i]));
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

		/* The name first, inside this address's connect time (as curl counts it). */
		r = resolve_addr(h, i, addr[i], now, now + connect, entry, sizeof(entry), reterr);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			if (h->n_addr > 1)
				note_tried(tried, sizeof(tried), &tried_len, reterr);
			continue;
		}
		/* A stream dialer opens its stream in curl's open-socket callback. */
		h->opening = a->d->dial ? a->d : NULL;
		h->dial_code = 0;
		uint64_t after = tu_transport_now_usec();
		if (after >= now + connect) {
			r = tu_err_set(reterr, -ETIMEDOUT,
				       "connecting to %s timed out after %" PRIu64
				       " ms (resolving its name)",
				       addr[i], (after - now) / 1000);
			if (h->n_addr > 1)
				note_tried(tried, sizeof(tried), &tried_len, reterr);
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
		snprintf(ct, sizeof(ct), "::%s:%u", a->curl_name, a->port);
		connect_to = oom ? NULL : curl_slist_append(NULL, ct);
		resolve = connect_to ? curl_slist_append(NULL, entry) : NULL;
		if (!resolve) {
			curl_slist_free_all(headers);
			curl_slist_free_all(connect_to);
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		}
		/* The inner TLS's ALPN for a connection made now (on_ssl_ctx). */
		memcpy(h->alpn, a->d->alpn, a->d->alpn_len);
		h->alpn_len = a->d->alpn_len;

		h->errbuf[0] = '\0';
		h->curl_resolved = false;
		h->dial_deadline = now + connect;
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
		CURLcode rc = sr == 0 ? tu_h2_perform(h->multi, h->curl, &pumping)
				      : CURLE_FAILED_INIT;
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
		h->opening = NULL;

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
			remember(h, i);
			ret_status->grpc_status = x.grpc_status;
			tu_grpc_percent_decode(x.grpc_message, x.grpc_message_len,
					       ret_status->grpc_message,
					       sizeof(ret_status->grpc_message));
			return 0;
		}
		struct tu_err de;
		if (h->dial_code < 0 && !x.err) {
			/* The stream dialer could not open: its message names the hop. */
			if (reterr)
				*reterr = h->dial_err;
			r = x.err = h->dial_code;
		} else if (a->d->dial && !x.err && !x.connected && a->d->last_error(a->d, &de)) {
			/* The stream ended with an error: the carrier knows better than curl. */
			if (reterr)
				*reterr = de;
			r = x.err = de.code ? de.code : -ECONNRESET;
		} else
			r = map_curl_error(&x, rc, elapsed);
		/* A Proxy that cuts the TLS routing handshake refused the route (Teleport closes
		 * the connection for a cluster it does not serve): say so. */
		if (a->d->path == TU_DIAL_TLS_ROUTING && !x.connected && reterr &&
		    (r == -EPROTO || r == -ECONNRESET || r == -EHOSTUNREACH)) {
			char was[TU_ERR_MSG_MAX];
			snprintf(was, sizeof(was), "%s", reterr->msg);
			const char *cl = h->conf->cluster_name ? h->conf->cluster_name
							       : tu_creds_cluster(h->creds);
			char cls[128];
			tu_err_set(reterr, r,
				   "the Proxy %s did not route us to Auth of cluster '%s' (is "
				   "auth.cluster_name right? is TLS routing on?): %s",
				   a->d->what, tu_sanitize(cl ? cl : "", cls, sizeof(cls)), was);
		}
		/* Once a server answered TLS and ALPN, its errors are final: fail-over is for
		 * reaching one. */
		if (x.connected) {
			h->reached = true;
			return r;
		}
		if (h->n_addr > 1)
			note_tried(tried, sizeof(tried), &tried_len, reterr);
	}
	if (h->n_addr > 1 && tried_len && reterr) {
		int code = reterr->code ? reterr->code : r;
		bool all_direct = true;
		for (size_t i = 0; i < h->n_addr; i++)
			all_direct = all_direct && h->addr[i].d->path == TU_DIAL_DIRECT;
		tu_err_set(reterr, code, "%s: %s",
			   all_direct ? "no Auth address answered" : "no path to Auth answered",
			   tried);
	}
	return r;
}

/*
 * One call over the plan.  When every path failed before reaching a server and
 * the Proxy's answer came from the memo (another process asked /webapi/find,
 * maybe long ago: TLS routing may have been turned off since), ask again once
 * in what is left of the deadline and try the paths it picks.
 */
static int h2_call(struct tu_transport *t, const char *path, const uint8_t *body, size_t body_len,
		   uint64_t deadline_usec, tu_transport_data_fn on_data, void *userdata,
		   struct tu_transport_status *ret_status, struct tu_err *reterr)
{
	struct h2 *h = (struct h2 *) t;
	int r;

	h->reached = false;
	r = h2_try(t, path, body, body_len, deadline_usec, on_data, userdata, ret_status, reterr);
	if (r == 0 || r == -ENOMEM || r == -EINVAL || h->reached || !h->conf->proxy.host ||
	    h->found_here || h->need_find || tu_transport_now_usec() >= deadline_usec)
		return r;
	struct tu_dial_memo old = h->memo;
	struct tu_err e;
	tu_err_clear(&e);
	if (discover(h, deadline_usec, &e) < 0)
		return r; /* the first error says more */
	if (old.found == h->memo.found && old.tls_routing == h->memo.tls_routing &&
	    strcmp(old.tunnel_addr, h->memo.tunnel_addr) == 0)
		return r; /* nothing changed: the same paths would fail the same way */
	return h2_try(t, path, body, body_len, deadline_usec, on_data, userdata, ret_status, reterr);
}

static const char *h2_via(struct tu_transport *t, char *what, size_t size)
{
	struct h2 *h = (struct h2 *) t;

	if (!h->worked || h->cur >= h->n_addr) {
		if (what && size)
			what[0] = '\0';
		return NULL;
	}
	if (what && size)
		snprintf(what, size, "%s", h->addr[h->cur].d->what);
	return tu_dial_path_name(h->addr[h->cur].d->path);
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
	if (h->pre.fd >= 0)
		close(h->pre.fd);
	tu_dial_plan_done(&h->plan);
	free(h->server_name);
	free(h);
}

static int h2_create(const struct tu_conf *conf, const struct tu_creds *creds, uint64_t max_body_bytes,
		     struct tu_transport **ret, struct tu_err *reterr)
{
	struct h2 *h;
	struct curl_blob cert = {0}, key = {0}, ca = {0};
	struct tu_dial_plan plan = {.n = 0};
	struct tu_err e;
	CURLcode rc = CURLE_OK;
	CURL *c;
	int r;

	r = tu_h2_check_conf(conf, reterr);
	if (r < 0)
		return r;
	r = tu_h2_curl_init(reterr);
	if (r < 0)
		return r;

	h = calloc(1, sizeof(*h));
	if (!h)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	h->t.call = h2_call;
	h->t.close = h2_close;
	h->t.via = h2_via;
	h->t.stream = h2_stream;
	h->creds = creds;
	h->conf = conf;
	h->pre.fd = h->adopted_fd = -1;
	h->connect_timeout_usec = conf->connect_timeout_usec;
	uint64_t max_msg =
	    conf->max_message_size ? conf->max_message_size : TU_GRPC_DEFAULT_MAX_MESSAGE;
	h->max_body = max_body_bytes ? max_body_bytes : 4 * (max_msg + TU_GRPC_FRAME_HEADER);
	h->server_name = strdup(conf->server_name ? conf->server_name : TU_DEFAULT_SERVER_NAME);
	if (!h->server_name)
		goto oom;

	/* The paths to Auth (dial/dial.c), the one that worked last first. */
	tu_err_clear(&e);
	h->memo = (struct tu_dial_memo){.upgrade = -1};
	if (tu_dial_memo_load(conf, &h->memo, &e) < 0) /* none, untrusted or bad: discover */
		h->memo = (struct tu_dial_memo){.upgrade = -1};
	r = tu_dial_plan_new(conf, creds, &h->memo, &plan, reterr);
	if (r == -EINVAL && h->memo.valid && conf->proxy.host) {
		/* The memo leaves no path (e.g. it says TLS routing is off): forget it and
		 * discover again at the first call. */
		h->memo = (struct tu_dial_memo){.upgrade = -1};
		tu_err_clear(reterr);
		r = tu_dial_plan_new(conf, creds, NULL, &plan, reterr);
	}
	if (r < 0) {
		h2_close(&h->t);
		return r;
	}
	adopt_plan(h, &plan);
	if (conf->proxy.host) {
		char want[TU_DIAL_WHAT_MAX];
		const char *ph = conf->proxy.host;
		snprintf(want, sizeof(want), strchr(ph, ':') ? "[%s]:%u" : "%s:%u", ph,
			 conf->proxy.port ? conf->proxy.port : TU_DEFAULT_PROXY_PORT);
		h->need_find = !(h->memo.valid && h->memo.found && strcmp(h->memo.proxy, want) == 0);
		if (h->memo.valid && strcmp(h->memo.proxy, want) != 0)
			h->memo = (struct tu_dial_memo){.upgrade = -1};
	}

	h->curl = curl_easy_init();
	if (!h->curl) {
		h2_close(&h->t);
		return tu_err_set(reterr, -ENOMEM, "cannot create a libcurl handle");
	}
	h->multi = tu_h2_multi_new();
	if (!h->multi) {
		h2_close(&h->t);
		return tu_err_set(reterr, -ENOMEM, "cannot create a libcurl multi handle");
	}
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
	SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	SET(CURLOPT_SSL_CTX_DATA, h);
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

/*
 * auth.proxy_conn_upgrade: always with auth.addresses (no auth.proxy): every
 * connection goes through the upgrade to the first address
 * (dial/tunnel-select.h), which starts on the loader's connection when that
 * went there; the plan becomes that one path.  With auth.proxy the plan has
 * the upgrade as a path of its own (dial/stream.c).
 */
static int upgrade_addresses(struct h2 *h, const struct tu_conf *conf, const struct tu_creds *creds,
			     struct tu_transport **ret, struct tu_err *reterr)
{
	struct tu_stream_dialer *sd = NULL;
	struct tu_dial_plan plan = {.n = 0};
	struct tu_dialer *dd = NULL;
	bool first = h->pre_pending && h->pre.fd >= 0 && h->n_addr &&
		     h->addr[h->cur].d->path == TU_DIAL_DIRECT && h->pre.index == 0;
	int pfd = first ? h->pre.fd : -1;
	int r = tu_tunnel_select(conf, creds, &pfd, &sd, reterr);

	if (first && pfd < 0)
		h->pre.fd = -1; /* the dialer took it */
	if (r < 0 || !sd) {
		if (r < 0)
			*ret = tu_transport_free(&h->t);
		return r;
	}
	char what[TU_DIAL_WHAT_MAX];
	tu_h2_addr_string(conf->addresses[0].host,
			  conf->addresses[0].port ? conf->addresses[0].port : TU_DEFAULT_AUTH_PORT,
			  what, sizeof(what));
	r = tu_dial_wrap_stream(TU_DIAL_TLS_ROUTING_UPGRADE, what, sd, &dd, reterr);
	if (r < 0) {
		*ret = tu_transport_free(&h->t);
		return r;
	}
	if (h->pre.fd >= 0)
		close(h->pre.fd);
	h->pre.fd = -1;
	h->pre_pending = false;
	plan.d[plan.n++] = dd;
	adopt_plan(h, &plan);
	return 0;
}

/*
 * The module's one export (h2-module.map), its entry point (h2.h).  pre:
 * the connection the core's loader made to conf->addresses[pre->index] for
 * the first call (fd -1 with auth.proxy: the plan decides there).  The first
 * call starts with that address's path, its name answer reused, and curl
 * adopts the socket when it asks for that peer (no second TCP handshake);
 * a connection curl never asked for is closed with the transport.
 */
__attribute__((visibility("default"))) int tu_h2_module_new(const struct tu_conf *conf,
							    const struct tu_creds *creds,
							    uint64_t max_body_bytes,
							    struct tu_h2_predial *pre,
							    struct tu_transport **ret,
							    struct tu_err *reterr)
{
	int pre_fd = pre ? pre->fd : -1;
	int r;

	if (pre)
		pre->fd = -1; /* ours from now on, whatever happens */
	r = h2_create(conf, creds, max_body_bytes, ret, reterr);
	if (r < 0 || pre_fd < 0) {
		if (pre_fd >= 0)
			close(pre_fd);
		return r < 0 ? r : upgrade_addresses((struct h2 *) *ret, conf, creds, ret, reterr);
	}
	struct h2 *h = (struct h2 *) *ret;
	char want[TU_DIAL_WHAT_MAX];
	if (pre->index < conf->n_addresses)
		tu_h2_addr_string(conf->addresses[pre->index].host,
				  conf->addresses[pre->index].port ? conf->addresses[pre->index].port
								   : TU_DEFAULT_AUTH_PORT,
				  want, sizeof(want));
	for (size_t i = 0; i < h->n_addr && pre->index < conf->n_addresses; i++) {
		if (h->addr[i].d->path != TU_DIAL_DIRECT || strcmp(h->addr[i].d->what, want) != 0)
			continue;
		h->pre = *pre;
		h->pre.fd = pre_fd;
		pre_fd = -1;
		h->addr[i].res = pre->res;
		h->addr[i].res_until = pre->res_until;
		h->cur = i;
		h->pre_pending = true;
		break;
	}
	if (pre_fd >= 0)
		close(pre_fd);
	return upgrade_addresses(h, conf, creds, ret, reterr);
}
