/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2-load.c - tu_h2_new() in the core: the transport that loads libcurl only
 * once Auth took a TCP connection (contract in h2.h).  Layer: libcore
 * (libc and libdl only; no libcurl, no libssl).
 *
 * Why: every process that links the core used to load libcurl, libssl and
 * their ~30 libraries at start-up (13 ms of every `teleport-unix
 * ssh-principals`, sshd's AuthorizedPrincipalsCommand, which runs once per
 * certificate login), even when the decision is made from the cache because
 * Auth is down.  Now the first call dials TCP here, with the transport's own
 * rules (addresses in order from the first, each name resolved by resolve.c
 * within its connect time, every address of a name tried in order within
 * min(auth.timeouts.connect, what the deadline leaves), the same errors and
 * messages, the fail-over summary).  Only a connection that is up loads
 * teleport-unix-h2.so (the libcurl transport, h2.c) from the directory this
 * library was loaded from, and hands it the socket; curl adopts it.
 *
 * The module stays loaded once loaded (libcurl and OpenSSL do not support
 * being unloaded); loading happens once per process (pthread_once) and a
 * failure to load is an -EIO of the call that needed it, naming the file.
 */
#include "h2.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "conf.h"
#include "creds.h"
#include "err.h"
#include "resolve.h"
#include "transport.h"

#define MAX_SERVER_NAME 253u
#define MAX_PATH_LEN    256u

struct lazy {
	struct tu_transport t; /* first: the vtable the callers see */
	const struct tu_conf *conf;
	const struct tu_creds *creds;
	uint64_t max_body;
	struct tu_transport *real; /* the module's transport, once loaded */
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static tu_h2_module_new_fn module_new;
static char load_error[PATH_MAX + 300];

extern char **environ;

int tu_h2_check_env(bool at_secure, char *const *envp, struct tu_err *reterr)
{
	static const char keylog[] = "SSLKEYLOGFILE=";

	if (!at_secure || !envp)
		return 0;
	for (char *const *e = envp; *e; e++)
		if (strncmp(*e, keylog, sizeof(keylog) - 1) == 0)
			return tu_err_set(
			    reterr, -EPERM,
			    "refusing to go online: SSLKEYLOGFILE is set in a setuid/setgid program "
			    "(libcurl would write TLS secrets to that file with our privileges)");
	return 0;
}

void tu_h2_addr_string(const char *host, uint16_t port, char *buf, size_t size)
{
	if (strchr(host, ':'))
		snprintf(buf, size, "[%s]:%u", host, port);
	else
		snprintf(buf, size, "%s:%u", host, port);
}

/* The module next to this library (the core is found by the loader's rules: the
 * program's RUNPATH, the PAM module's, or the NSS module's fixed path), else the
 * installed one (tu_h2_module_path). */
void tu_core_module_path(const char *core_path, const char *file, char *buf, size_t size)
{
	const char *slash;

	/* Only an absolute path: dladdr() names a core linked into the program by its argv[0],
	 * and a relative name would be resolved from the working directory, where anyone who
	 * can write would have their file run inside sshd, su or a cron job. */
	if (core_path && core_path[0] == '/' && (slash = strrchr(core_path, '/')) &&
	    (size_t) (slash - core_path) + 2 + strlen(file) <= size)
		snprintf(buf, size, "%.*s/%s", (int) (slash - core_path), core_path, file);
	else
		snprintf(buf, size, "%s/%s", TU_PKGLIBDIR, file);
}

void tu_h2_module_path(const char *core_path, char *buf, size_t size)
{
	tu_core_module_path(core_path, TU_H2_MODULE_FILE, buf, size);
}

static void load_module(void)
{
	char path[PATH_MAX];
	Dl_info di;
	void *h;

	tu_h2_module_path(dladdr((void *) tu_h2_new, &di) ? di.dli_fname : NULL, path,
			  sizeof(path));
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *why = dlerror();
		snprintf(load_error, sizeof(load_error), "cannot load the online transport: %s",
			 why ? why : path);
		return;
	}
	*(void **) &module_new = dlsym(h, TU_H2_MODULE_SYMBOL);
	if (!module_new) {
		snprintf(load_error, sizeof(load_error), "cannot load the online transport: %s has no %s", path,
			 TU_H2_MODULE_SYMBOL);
		(void) dlclose(h);
	}
}

static void note_tried(char *tried, size_t size, size_t *len, const struct tu_err *e)
{
	if (!e)
		return;
	int n = snprintf(tried + *len, size - *len, "%s%s", *len ? "; " : "", e->msg);
	if (n > 0 && (size_t) n < size - *len)
		*len += (size_t) n;
}

static socklen_t to_sockaddr(const struct tu_resolve_addr *a, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *) ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a->a, 4);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	memcpy(&s6->sin6_addr, a->a, 16);
	return sizeof(*s6);
}

/*
 * One TCP connect by `until` (CLOCK_MONOTONIC usec).  0 with *ret_fd, or the
 * negative errno of the failure (-ETIMEDOUT when until passed).
 */
static int dial_one(const struct sockaddr_storage *ss, socklen_t len, uint64_t until, int *ret_fd)
{
	_cleanup_close_ int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	int one = 1;

	if (fd < 0)
		return -errno;
	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* as curl sets it */
	if (connect(fd, (const struct sockaddr *) ss, len) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		for (;;) {
			uint64_t now = tu_transport_now_usec();
			if (now >= until)
				return -ETIMEDOUT;
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			uint64_t ms = (until - now + 999) / 1000;
			int n = poll(&p, 1, ms > INT_MAX ? INT_MAX : (int) ms);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0)
				continue; /* the loop decides whether time is up */
			int err = 0;
			socklen_t el = sizeof(err);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
				return -errno;
			if (err)
				return -err;
			break;
		}
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/*
 * The dial: h2.c's fail-over loop up to the TCP connection.  0 with *pre
 * filled (the connection up), or the error the transport would report.
 */
static int predial(const struct tu_conf *conf, uint64_t deadline_usec, struct tu_h2_predial *pre,
		   struct tu_err *reterr)
{
	size_t n = conf->n_addresses, tried_len = 0;
	int r = -EIO;

	pre->fd = -1;
	pre->tried[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *host = conf->addresses[i].host;
		uint16_t port = conf->addresses[i].port ? conf->addresses[i].port : TU_DEFAULT_AUTH_PORT;
		char addr[300];
		uint64_t now = tu_transport_now_usec();

		tu_h2_addr_string(host, port, addr, sizeof(addr));
		if (now >= deadline_usec) {
			if (i == 0)
				r = tu_err_set(reterr, -ETIMEDOUT, "deadline passed before calling %s", addr);
			break;
		}
		uint64_t remaining = deadline_usec - now;
		uint64_t connect = conf->connect_timeout_usec && conf->connect_timeout_usec < remaining
					   ? conf->connect_timeout_usec
					   : remaining;
		struct tu_resolve_result res;
		r = tu_resolve(host, now + connect, NULL, &res, reterr);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			if (reterr && r == -ETIMEDOUT)
				tu_err_prefix(reterr, "connecting to %s", addr);
			if (n > 1)
				note_tried(pre->tried, sizeof(pre->tried), &tried_len, reterr);
			continue;
		}
		uint64_t after = tu_transport_now_usec();
		if (after >= now + connect) {
			r = tu_err_set(reterr, -ETIMEDOUT,
				       "connecting to %s timed out after %" PRIu64 " ms (resolving its name)", addr,
				       (after - now) / 1000);
			if (n > 1)
				note_tried(pre->tried, sizeof(pre->tried), &tried_len, reterr);
			continue;
		}
		/* Every address of the name in order, as curl does, within the connect time. */
		int err = -EHOSTUNREACH;
		for (size_t j = 0; j < res.n; j++) {
			struct sockaddr_storage ss;
			socklen_t len = to_sockaddr(&res.addr[j], port, &ss);
			int fd = -1;
			int k = dial_one(&ss, len, now + connect, &fd);
			if (k == 0) {
				struct tu_resolve_addr first = res.addr[j];
				memmove(&res.addr[1], &res.addr[0], j * sizeof(res.addr[0]));
				res.addr[0] = first;
				pre->fd = fd;
				pre->index = i;
				pre->peer = ss;
				pre->peer_len = len;
				pre->res = res;
				pre->res_until = after + (uint64_t) res.ttl_sec * 1000000u;
				pre->started_usec = now;
				return 0;
			}
			if (k == -ENOMEM || k == -EMFILE || k == -ENFILE)
				return tu_err_set(reterr, k, "cannot connect to %s: %s", addr, strerror(-k));
			/* A refusal is what the address said; a time-out or an unreachable route
			 * of one address does not hide another's answer. */
			if (err != -ECONNREFUSED)
				err = k;
			if (k == -ETIMEDOUT)
				break;
		}
		uint64_t end = tu_transport_now_usec();
		if (err == -ECONNREFUSED)
			r = tu_err_set(reterr, -ECONNREFUSED, "cannot connect to %s: connection refused", addr);
		else if (err == -ETIMEDOUT)
			r = tu_err_set(reterr, -ETIMEDOUT, "connecting to %s timed out after %" PRIu64 " ms", addr,
				       (end - now) / 1000);
		else
			r = tu_err_set(reterr, -EHOSTUNREACH, "cannot connect to %s: %s", addr, strerror(-err));
		if (n > 1)
			note_tried(pre->tried, sizeof(pre->tried), &tried_len, reterr);
	}
	if (n > 1 && tried_len && reterr) {
		int code = reterr->code ? reterr->code : r;
		tu_err_set(reterr, code, "no Auth address answered: %s", pre->tried);
	}
	return r;
}

/*
 * Dials Auth and loads the module the first time a call or a stream needs it (l->real set
 * on success).  deadline_usec bounds the dial.  The path is checked before dialling, as
 * the transport does.
 */
static int ensure_real(struct lazy *l, const char *path, uint64_t deadline_usec, struct tu_err *reterr)
{
	struct tu_h2_predial pre;
	int r;

	if (l->real)
		return 0;
	if (!tu_h2_valid_path(path))
		return tu_err_set(reterr, -EINVAL, "invalid RPC path");
	/* With auth.proxy the paths to Auth are the module's plan (dial/: Proxy paths, the
	 * remembered one first, /webapi/find): no TCP dial here, the module is loaded at once. */
	if (l->conf->proxy.host) {
		memset(&pre, 0, sizeof(pre));
		pre.fd = -1;
	} else {
		r = predial(l->conf, deadline_usec, &pre, reterr);
		if (r < 0)
			return r;
	}
	/* Auth is there: now the credential's key must parse and match (a load for an offline
	 * decision skipped that, TU_CREDS_DEFER_KEY_CHECK). */
	r = tu_creds_check_key(l->creds, reterr);
	if (r < 0) {
		if (pre.fd >= 0)
			close(pre.fd);
		return r;
	}
	(void) pthread_once(&load_once, load_module);
	if (!module_new) {
		if (pre.fd >= 0)
			close(pre.fd);
		return tu_err_set(reterr, -EIO, "%s", load_error);
	}
	r = module_new(l->conf, l->creds, l->max_body, &pre, &l->real, reterr); /* takes pre.fd */
	if (r < 0)
		l->real = NULL;
	return r;
}

static int lazy_call(struct tu_transport *t, const char *path, const uint8_t *body, size_t body_len,
		     uint64_t deadline_usec, tu_transport_data_fn on_data, void *userdata,
		     struct tu_transport_status *ret_status, struct tu_err *reterr)
{
	struct lazy *l = (struct lazy *) t;
	int r = ensure_real(l, path, deadline_usec, reterr);

	if (r < 0)
		return r;
	return l->real->call(l->real, path, body, body_len, deadline_usec, on_data, userdata, ret_status, reterr);
}

static const char *lazy_via(struct tu_transport *t, char *what, size_t size)
{
	struct lazy *l = (struct lazy *) t;

	if (l->real && l->real->via)
		return l->real->via(l->real, what, size);
	if (what && size)
		what[0] = '\0';
	return NULL;
}

/* A stream (transport.h): dialled like a call, with connecting bounded by the connect and
 * request timeouts, then the module's stream(). */
static int lazy_stream(struct tu_transport *t, const char *path, const uint8_t *body,
		       size_t body_len, tu_transport_data_fn on_data, tu_transport_tick_fn on_tick,
		       void *userdata, struct tu_transport_status *ret_status, struct tu_err *reterr)
{
	struct lazy *l = (struct lazy *) t;
	/* Connecting is bounded by the connect and request timeouts; the stream has no deadline. */
	int r = ensure_real(l, path,
			    tu_transport_now_usec() + l->conf->connect_timeout_usec +
				    l->conf->request_timeout_usec,
			    reterr);

	if (r < 0)
		return r;
	if (!l->real->stream)
		return tu_err_set(reterr, -EOPNOTSUPP, "this transport cannot hold a stream");
	return l->real->stream(l->real, path, body, body_len, on_data, on_tick, userdata, ret_status,
			       reterr);
}

static void lazy_close(struct tu_transport *t)
{
	struct lazy *l = (struct lazy *) t;

	if (!l)
		return;
	tu_transport_free(l->real);
	free(l);
}

int tu_h2_check_conf(const struct tu_conf *conf, struct tu_err *reterr)
{
	if ((conf->n_addresses == 0 && !conf->proxy.host) ||
	    conf->n_addresses > TU_MAX_AUTH_ADDRESSES) {
		tu_err_key(reterr, "auth.addresses");
		return tu_err_set(reterr, -EINVAL, "no Auth address configured");
	}
	if (!tu_h2_valid_server_name(conf->server_name ? conf->server_name : TU_DEFAULT_SERVER_NAME)) {
		tu_err_key(reterr, "auth.server_name");
		return tu_err_set(reterr, -EINVAL, "not a valid DNS name");
	}
	return 0;
}

bool tu_h2_valid_server_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_SERVER_NAME || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-'))
			return false;
	}
	return true;
}

bool tu_h2_valid_path(const char *p)
{
	size_t n = strlen(p);

	if (n < 2 || n > MAX_PATH_LEN || p[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '/' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int tu_h2_new(const struct tu_conf *conf, const struct tu_creds *creds, uint64_t max_body_bytes,
	      struct tu_transport **ret, struct tu_err *reterr)
{
	struct lazy *l;

	if (tu_h2_check_conf(conf, reterr) < 0)
		return -EINVAL;
	/* Before anything could load libcurl: a setuid program's SSLKEYLOGFILE. */
	if (tu_h2_check_env(getauxval(AT_SECURE) != 0, environ, reterr) < 0)
		return -EPERM;
	l = calloc(1, sizeof(*l));
	if (!l)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	l->t.call = lazy_call;
	l->t.close = lazy_close;
	l->t.via = lazy_via;
	l->t.stream = lazy_stream;
	l->conf = conf;
	l->creds = creds;
	l->max_body = max_body_bytes;
	*ret = &l->t;
	return 0;
}
