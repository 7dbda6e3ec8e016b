/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tunnel-pump.c - socket-pair pumps between curl and a carrier, driven from
 * the caller's poll loop (see tunnel-pump.h), and the TCP dial with a
 * deadline that the carriers share.  Layer: libcore.
 */
#include "tunnel-pump.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "resolve.h"
#include "transport.h"

#define PUMP_BUF   ((size_t) 32 * 1024) /* bytes in flight each way, per pump */
#define MAX_PUMPS  2u                   /* curl holds one connection; one being replaced */
#define MAX_ROUNDS 64u                  /* copy rounds per step before polling again */
#define NAME_LEN   13u                  /* random characters of the abstract socket name */

_Static_assert(offsetof(struct sockaddr_un, sun_path) + 1 + NAME_LEN <= sizeof(struct sockaddr),
	       "the listener's address must fit in a struct sockaddr");

struct pump {
	struct tu_carrier *c;
	int lfd;              /* the listener curl connects to; -1 once accepted */
	int fd;               /* our end of curl's connection; -1 until accepted */
	uint8_t up[PUMP_BUF]; /* from curl, waiting for the carrier */
	size_t up_len;
	uint8_t down[PUMP_BUF]; /* from the carrier, waiting for curl */
	size_t down_off, down_len;
	bool carrier_eof; /* the carrier ended: close our end once down is drained */
};

struct tu_stream_dialer {
	char *via;
	tu_carrier_open_fn open_fn;
	void *userdata;
	void (*free_userdata)(void *);
	struct pump *p[MAX_PUMPS];
	bool has_error;
	struct tu_err last;
};

static void pump_free(struct pump *p)
{
	if (!p)
		return;
	if (p->c)
		p->c->ops->free(p->c);
	if (p->fd >= 0)
		close(p->fd);
	if (p->lfd >= 0)
		close(p->lfd);
	free(p);
}

int tu_stream_dialer_new(const char *via, tu_carrier_open_fn open_fn, void *userdata,
			 void (*free_userdata)(void *), struct tu_stream_dialer **ret,
			 struct tu_err *reterr)
{
	struct tu_stream_dialer *d = calloc(1, sizeof(*d));

	if (d)
		d->via = strdup(via);
	if (!d || !d->via) {
		free(d);
		if (free_userdata)
			free_userdata(userdata);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	d->open_fn = open_fn;
	d->userdata = userdata;
	d->free_userdata = free_userdata;
	*ret = d;
	return 0;
}

struct tu_stream_dialer *tu_stream_dialer_free(struct tu_stream_dialer *d)
{
	if (!d)
		return NULL;
	for (size_t i = 0; i < MAX_PUMPS; i++)
		pump_free(d->p[i]);
	if (d->free_userdata)
		d->free_userdata(d->userdata);
	free(d->via);
	free(d);
	return NULL;
}

const char *tu_stream_dialer_via(const struct tu_stream_dialer *d)
{
	return d->via;
}

bool tu_stream_dialer_last_error(const struct tu_stream_dialer *d, struct tu_err *ret)
{
	if (!d->has_error)
		return false;
	if (ret)
		*ret = d->last;
	return true;
}

static void pump_fail(struct tu_stream_dialer *d, size_t i, const struct tu_err *e)
{
	if (e && e->code) {
		d->last = *e;
		d->has_error = true;
	}
	pump_free(d->p[i]);
	d->p[i] = NULL;
}

/*
 * A listener on a fresh random abstract name, close-on-exec and non-blocking.
 * The whole address fits in a struct sockaddr (16 bytes: family, the
 * abstract namespace's NUL, 13 random characters, 78 bits), the size curl's
 * curl_sockaddr declares, so rewriting curl's address never relies on the
 * storage behind it.  Guessing the name gains nothing anyway: only a
 * connection from this process is accepted (SO_PEERCRED).
 */
static int make_listener(struct sockaddr_un *ret_addr, socklen_t *ret_len, struct tu_err *reterr)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	unsigned char rnd[NAME_LEN];
	int fd, r;

	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd)) {
		/* No entropy yet (early boot): never wait for it inside sshd or login.  The
		 * name needs no secrecy (abstract names are listed in /proc/net/unix, and
		 * SO_PEERCRED decides), only to be free: the clock, the pid and a counter,
		 * mixed; a name that is taken is bind()'s EADDRINUSE below. */
		static _Atomic unsigned counter;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t v = ((uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec) ^
			     ((uint64_t) getpid() << 32) ^
			     ((uint64_t) atomic_fetch_add(&counter, 1) << 52);
		for (size_t i = 0; i < sizeof(rnd); i++) {
			v += 0x9e3779b97f4a7c15u; /* splitmix64 */
			uint64_t z = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9u;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
			rnd[i] = (unsigned char) (z ^ (z >> 31));
		}
	}
	sa.sun_path[0] = '\0';
	for (size_t i = 0; i < sizeof(rnd); i++)
		sa.sun_path[1 + i] = alphabet[rnd[i] & 63];
	socklen_t len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + sizeof(rnd));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *) &sa, len) < 0 || listen(fd, 4) < 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return tu_err_set(reterr, r, "cannot make a local socket for the tunnel: %s",
				  strerror(-r));
	}
	*ret_addr = sa;
	*ret_len = len;
	return fd;
}

int tu_stream_dialer_open(struct tu_stream_dialer *d, uint64_t deadline_usec,
			  struct sockaddr_un *ret_addr, socklen_t *ret_len, struct tu_err *reterr)
{
	struct tu_carrier *c = NULL;
	size_t slot = MAX_PUMPS;
	int r, lfd;

	d->has_error = false;
	/* curl asks for a new socket only when it has no usable connection: the
	 * pumps of closed connections go, and the oldest if all slots are taken. */
	tu_stream_dialer_step(d);
	for (size_t i = 0; i < MAX_PUMPS && slot == MAX_PUMPS; i++)
		if (!d->p[i])
			slot = i;
	if (slot == MAX_PUMPS) {
		pump_free(d->p[0]);
		memmove(&d->p[0], &d->p[1], (MAX_PUMPS - 1) * sizeof(d->p[0]));
		d->p[MAX_PUMPS - 1] = NULL;
		slot = MAX_PUMPS - 1;
	}
	r = d->open_fn(d->userdata, deadline_usec, &c, reterr);
	if (r < 0)
		return r;
	struct pump *p = calloc(1, sizeof(*p));
	if (!p) {
		c->ops->free(c);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	lfd = make_listener(ret_addr, ret_len, reterr);
	if (lfd < 0) {
		c->ops->free(c);
		free(p);
		return lfd;
	}
	p->c = c;
	p->lfd = lfd;
	p->fd = -1;
	d->p[slot] = p;
	return 0;
}

/* Takes curl's connection from the listener: only one made by this process. */
static int pump_accept(struct pump *p)
{
	for (unsigned k = 0; k < 16; k++) {
		struct ucred cr;
		socklen_t cl = sizeof(cr);
		int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cr.pid == getpid() &&
		    cr.uid == geteuid()) {
			p->fd = fd;
			close(p->lfd);
			p->lfd = -1;
			return 1;
		}
		close(fd); /* someone else found the name: not theirs */
	}
	return 0;
}

/* One pass of copying; returns whether anything moved, or -1 when the pump is over. */
static int pump_round(struct pump *p, struct tu_err *e)
{
	bool moved = false;
	size_t n = 0;
	int r;

	if (p->fd < 0) {
		r = pump_accept(p);
		if (r <= 0)
			return r;
	}
	/* curl -> carrier */
	if (p->up_len < PUMP_BUF) {
		ssize_t k = recv(p->fd, p->up + p->up_len, PUMP_BUF - p->up_len, 0);
		if (k > 0) {
			p->up_len += (size_t) k;
			moved = true;
		} else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			return -1; /* curl closed the connection: end the carrier too */
		}
	}
	if (p->up_len > 0) {
		r = p->c->ops->write(p->c, p->up, p->up_len, &n, e);
		if (r < 0)
			return -1;
		if (n > 0) {
			memmove(p->up, p->up + n, p->up_len - n);
			p->up_len -= n;
			moved = true;
		}
	}
	if (p->c->ops->flush(p->c, e) < 0)
		return -1;

	/* carrier -> curl */
	if (!p->carrier_eof && p->down_len < PUMP_BUF) {
		if (p->down_off > 0) {
			memmove(p->down, p->down + p->down_off, p->down_len);
			p->down_off = 0;
		}
		r = p->c->ops->read(p->c, p->down + p->down_len, PUMP_BUF - p->down_len, &n, e);
		if (r == -EPIPE)
			p->carrier_eof = true;
		else if (r < 0)
			return -1;
		else if (n > 0) {
			p->down_len += n;
			moved = true;
		}
	}
	if (p->down_len > 0) {
		ssize_t k = send(p->fd, p->down + p->down_off, p->down_len, MSG_NOSIGNAL);
		if (k > 0) {
			p->down_off += (size_t) k;
			p->down_len -= (size_t) k;
			moved = true;
		} else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			return -1;
		}
	}
	if (p->carrier_eof && p->down_len == 0)
		return -1;
	return moved;
}

bool tu_stream_dialer_step(struct tu_stream_dialer *d)
{
	bool more = false;

	for (size_t i = 0; i < MAX_PUMPS; i++) {
		struct tu_err e = {0};
		unsigned k;
		if (!d->p[i])
			continue;
		for (k = 0; k < MAX_ROUNDS; k++) {
			int r = pump_round(d->p[i], &e);
			if (r < 0) {
				pump_fail(d, i, &e);
				break;
			}
			if (r == 0)
				break;
		}
		/* Still moving when the rounds ran out: bytes may wait in buffers that
		 * poll() cannot see (OpenSSL's, the carrier's). */
		if (k == MAX_ROUNDS)
			more = true;
	}
	return more;
}

size_t tu_stream_dialer_pollfds(struct tu_stream_dialer *d, struct pollfd *fds, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < MAX_PUMPS; i++) {
		struct pump *p = d->p[i];
		int cfd = -1;
		short cev = 0;
		if (!p || n + 2 > max)
			continue;
		if (p->fd < 0) {
			/* Waiting for curl to connect: its bytes wait in the socket meanwhile. */
			fds[n].fd = p->lfd;
			fds[n].events = POLLIN;
			fds[n].revents = 0;
			n++;
			continue;
		}
		fds[n].fd = p->fd;
		fds[n].events =
		    (short) ((p->up_len < PUMP_BUF ? POLLIN : 0) | (p->down_len > 0 ? POLLOUT : 0));
		fds[n].revents = 0;
		n++;
		p->c->ops->poll(p->c, &cfd, &cev);
		if (cfd >= 0) {
			/* No room for the carrier's data: wait for curl to read instead. */
			if (p->down_len >= PUMP_BUF)
				cev = (short) (cev & ~POLLIN);
			fds[n].fd = cfd;
			fds[n].events = cev;
			fds[n].revents = 0;
			n++;
		}
	}
	return n;
}

int tu_dial_wait(int fd, short events, uint64_t deadline_usec)
{
	for (;;) {
		uint64_t now = tu_transport_now_usec();
		struct pollfd pfd = {.fd = fd, .events = events};
		if (now >= deadline_usec)
			return -ETIMEDOUT;
		uint64_t ms = (deadline_usec - now + 999) / 1000;
		int k = poll(&pfd, 1, ms > 60000 ? 60000 : (int) ms);
		if (k > 0)
			return 0;
		if (k < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_one(const struct tu_resolve_addr *a, uint16_t port, uint64_t deadline_usec,
		       int *ret_fd)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int one = 1, soerr = 0;
	socklen_t el = sizeof(soerr);
	_cleanup_close_ int fd = -1;

	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a->a, 4);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, a->a, 16);
		sl = sizeof(*s6);
	}
	fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *) &ss, sl) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		int r = tu_dial_wait(fd, POLLOUT, deadline_usec);
		if (r < 0)
			return r;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0)
			return -errno;
		if (soerr)
			return -soerr;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int tu_dial_tcp(const char *host, uint16_t port, const char *what, uint64_t deadline_usec,
		int *ret_fd, struct tu_err *reterr)
{
	struct tu_resolve_result res;
	uint64_t start = tu_transport_now_usec();
	int r = tu_resolve(host, deadline_usec, NULL, &res, reterr);

	if (r < 0) {
		tu_err_prefix(reterr, "connecting to %s %s:%u", what, host, port);
		return r;
	}
	r = -EHOSTUNREACH;
	for (size_t i = 0; i < res.n; i++) {
		r = connect_one(&res.addr[i], port, deadline_usec, ret_fd);
		if (r == 0)
			return 0;
		if (r == -ETIMEDOUT || r == -ENOMEM || r == -EMFILE || r == -ENFILE)
			break;
	}
	if (r == -ETIMEDOUT)
		return tu_err_set(reterr, r, "connecting to %s %s:%u timed out after %llu ms", what,
				  host, port,
				  (unsigned long long) (tu_transport_now_usec() - start) / 1000);
	if (r == -ECONNREFUSED)
		return tu_err_set(reterr, r, "%s %s:%u refused the connection", what, host, port);
	if (r != -ENOMEM && r != -EMFILE && r != -ENFILE)
		r = -EHOSTUNREACH;
	return tu_err_set(reterr, r, "cannot connect to %s %s:%u: %s", what, host, port,
			  strerror(-r));
}
