/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-ws.c - unit tests of libcore/dial: the WebSocket upgrade's response
 * check (RFC 6455's Sec-WebSocket-Accept example, every way a Proxy or load
 * balancer can answer wrong, with errno and message), and the socket-pair
 * pump (tunnel-pump.c) over a fake carrier: bytes both ways in order, a
 * carrier's end closing curl's end, a carrier's error kept for the caller,
 * an open that fails, and no descriptor left behind.  The framing against
 * a Proxy is tested end to end in tests/integration/test_proxy_upgrade.py.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* clang-format off: cmocka needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "dial/tunnel-pump.h"
#include "dial/ws-tls.h"
#include "dial/ws.h"
#include "err.h"
#include "transport.h"

#define ELEMENTSOF_(a) (sizeof(a) / sizeof((a)[0]))

/* getrandom() as the kernel answers before its entropy pool is ready (early boot): a
 * blocking call would wait there (recorded here, and refused), GRND_NONBLOCK gets EAGAIN.
 * The dialers are compiled into this program, so this definition is the one they call. */
static bool entropy_not_ready, blocking_getrandom;

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	if (entropy_not_ready) {
		if (!(flags & GRND_NONBLOCK))
			blocking_getrandom = true;
		errno = EAGAIN;
		return -1;
	}
	return syscall(SYS_getrandom, buf, len, flags);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_accept_key(void **state)
{
	char out[29];

	(void) state;
	/* RFC 6455 §1.3 */
	tu_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#define KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static int check(const char *head, struct tu_err *e)
{
	tu_err_clear(e);
	return tu_ws_check_response(head, strlen(head), KEY, "the Proxy p:443", e);
}

static void test_check_response(void **state)
{
	struct tu_err e;

	(void) state;
	assert_int_equal(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			       "Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n"
			       "Sec-WebSocket-Protocol: alpn-ping",
			       &e),
			 0);
	/* header names in any case, values trimmed, Upgrade value case-insensitive */
	assert_int_equal(check("HTTP/1.1 101 x\r\nupgrade:  WebSocket \r\n"
			       "sec-websocket-accept:" ACCEPT
			       "\r\nSEC-WEBSOCKET-PROTOCOL: alpn-ping",
			       &e),
			 0);
	assert_int_equal(check("HTTP/1.1 404 Not Found\r\nContent-Length: 0", &e), -EOPNOTSUPP);
	assert_non_null(
	    strstr(e.msg, "the Proxy p:443 has no /webapi/connectionupgrade (HTTP 404)"));
	assert_int_equal(check("HTTP/1.1 502 Bad Gateway", &e), -EPROTO);
	assert_non_null(strstr(e.msg, "refused the connection upgrade with HTTP status 502"));
	assert_int_equal(
	    check("HTTP/1.1 101 x\r\nUpgrade: alpn-ping\r\nX-Teleport-Upgrade: alpn-ping", &e),
	    -EPROTO);
	assert_non_null(strstr(e.msg, "legacy connection upgrade"));
	assert_int_equal(
	    check("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " ACCEPT
		  "\r\nSec-WebSocket-Protocol: alpn",
		  &e),
	    -EPROTO);
	assert_non_null(strstr(e.msg, "sub-protocol 'alpn', not alpn-ping"));
	assert_int_equal(check("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: "
			       "alpn-ping\r\nSec-WebSocket-Accept: AAAAPLMBiTxaQ9kYGzzhZRbK+xOo=",
			       &e),
			 -EPROTO);
	assert_non_null(strstr(e.msg, "wrong Sec-WebSocket-Accept"));
	assert_int_equal(check("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: "
			       "alpn-ping",
			       &e),
			 -EPROTO);
	assert_non_null(strstr(e.msg, "wrong Sec-WebSocket-Accept"));
	assert_int_equal(check("SSH-2.0-OpenSSH_9.2", &e), -EPROTO);
	assert_non_null(strstr(e.msg, "not HTTP"));
	assert_int_equal(check("HTTP/1.1 1x1 nope", &e), -EPROTO);
	assert_int_equal(check("", &e), -EPROTO);
}

/* -- the frame decoder (tu_ws_carrier_test_new) -- */

/* Decodes in (handed over chunk bytes at a time) into out; returns the last code. */
static int decode(const uint8_t *in, size_t len, size_t chunk, uint8_t *out, size_t size,
		  size_t *ret_len, struct tu_carrier **ret_c, struct tu_err *e)
{
	struct tu_carrier *c = NULL;
	size_t got = 0;
	int r = 0;

	assert_int_equal(tu_ws_carrier_test_new(in, len, chunk, &c), 0);
	for (unsigned i = 0; i < 100000 && r == 0; i++) {
		size_t n = 0;
		tu_err_clear(e);
		r = c->ops->read(c, out + got, size - got, &n, e);
		got += n;
		if (got == size)
			break;
	}
	*ret_len = got;
	if (ret_c)
		*ret_c = c;
	else
		c->ops->free(c);
	return r;
}

static void test_decoder(void **state)
{
	static const uint8_t frames[] = {
	    0x81, 0x02, 'h',  'i',                   /* text: skipped */
	    0x02, 0x03, 'a',  'b',  'c',             /* binary, not FIN */
	    0x89, 0x04, 't',  'e',  's',        't', /* ping between fragments */
	    0x00, 0x7e, 0x00, 0x02, 'd',        'e', /* continuation, 16-bit length */
	    0x80, 0xff, 0,    0,    0,          0,
	    0,    0,    0,    0x01,             /* continuation, 64-bit length, */
	    0x01, 0x02, 0x03, 0x04, 'f' ^ 0x01, /* masked (from a server!) */
	    0x8a, 0x00,                         /* an unsolicited pong: ignored */
	    0x82, 0x00,                         /* an empty binary frame */
	    0x88, 0x02, 0x03, 0xe8,             /* close */
	    0x82, 0x01, 'X',                    /* after the close: never read */
	};
	uint8_t out[64];
	size_t n = 0, olen = 0;
	struct tu_err e;
	struct tu_carrier *c;

	(void) state;
	/* whole, and one byte at a time: the same bytes, then a clean end */
	for (size_t chunk = 0; chunk <= 1; chunk++) {
		assert_int_equal(
		    decode(frames, sizeof(frames), chunk, out, sizeof(out), &n, &c, &e), -EPIPE);
		assert_int_equal(n, 6);
		assert_memory_equal(out, "abcdef", 6);
		/* the ping was answered: a FIN pong, masked with a zero key, same payload */
		const uint8_t *o = tu_ws_carrier_test_output(c, &olen);
		static const uint8_t pong[] = {0x8a, 0x84, 0, 0, 0, 0, 't', 'e', 's', 't'};
		assert_int_equal(olen, sizeof(pong));
		assert_memory_equal(o, pong, sizeof(pong));
		c->ops->free(c);
	}
}

static void test_decoder_errors(void **state)
{
	static const struct {
		const char *what;
		uint8_t in[16];
		size_t len;
		int r;
		const char *msg;
	} cases[] = {
	    {"reserved bit", {0xc2, 0x01, 'a'}, 3, -EPROTO, "reserved bits set"},
	    {"control over 125", {0x89, 0x7e, 0x00, 0x7e}, 4, -EPROTO, "over 125 bytes"},
	    {"fragmented control", {0x09, 0x00}, 2, -EPROTO, "fragmented"},
	    {"64-bit length, top bit",
	     {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0},
	     10,
	     -EPROTO,
	     "bad length"},
	    {"truncated header", {0x82}, 1, -ECONNRESET, "without a close frame"},
	    {"truncated payload", {0x82, 0x05, 'a', 'b'}, 4, -ECONNRESET, "without a close frame"},
	    {"no close frame", {0x82, 0x01, 'a'}, 3, -ECONNRESET, "without a close frame"},
	    {"empty", {0}, 0, -ECONNRESET, "without a close frame"},
	};

	uint8_t out[64];
	size_t n;
	struct tu_err e;

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF_(cases); i++) {
		int r = decode(cases[i].in, cases[i].len, 0, out, sizeof(out), &n, NULL, &e);
		if (r != cases[i].r || !strstr(e.msg, cases[i].msg))
			fail_msg("%s: got %d '%s'", cases[i].what, r, e.msg);
	}
}

/* Pings without end: answered until the output is full, then a clear error, never a hang. */
static void test_decoder_ping_flood(void **state)
{
	uint8_t in[2 * 20000];
	uint8_t out[16];
	size_t n;
	struct tu_err e;

	(void) state;
	for (size_t i = 0; i < sizeof(in); i += 2) {
		in[i] = 0x89;
		in[i + 1] = 0x00;
	}
	/* the test sink keeps 4 KiB, then the carrier's own 40 KiB buffer fills */
	int r = decode(in, sizeof(in), 0, out, sizeof(out), &n, NULL, &e);
	assert_true(r == -ECONNRESET || r == -EPROTO);
}

/* -- a fake carrier over a socket pair: the test plays the far side -- */

struct fake {
	struct tu_carrier c;
	int fd;
	int fail_read; /* an error to return from read, 0 none */
};

static int fake_read(struct tu_carrier *c, uint8_t *buf, size_t size, size_t *ret_n,
		     struct tu_err *e)
{
	struct fake *f = (struct fake *) c;
	ssize_t k;

	*ret_n = 0;
	if (f->fail_read)
		return tu_err_set(e, f->fail_read, "the far side said no: reason text");
	k = recv(f->fd, buf, size, MSG_DONTWAIT);
	if (k == 0)
		return -EPIPE;
	if (k < 0)
		return errno == EAGAIN ? 0 : tu_err_set(e, -errno, "recv");
	*ret_n = (size_t) k;
	return 0;
}

static int fake_write(struct tu_carrier *c, const uint8_t *buf, size_t len, size_t *ret_n,
		      struct tu_err *e)
{
	struct fake *f = (struct fake *) c;
	ssize_t k = send(f->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	*ret_n = 0;
	if (k < 0)
		return errno == EAGAIN ? 0 : tu_err_set(e, -errno, "send");
	*ret_n = (size_t) k;
	return 0;
}

static int fake_flush(struct tu_carrier *c, struct tu_err *e)
{
	(void) c;
	(void) e;
	return 0;
}

static void fake_poll(struct tu_carrier *c, int *fd, short *ev)
{
	*fd = ((struct fake *) c)->fd;
	*ev = POLLIN;
}

static void fake_free(struct tu_carrier *c)
{
	close(((struct fake *) c)->fd);
	free(c);
}

static const struct tu_carrier_ops fake_ops = {fake_read, fake_write, fake_flush, fake_poll,
					       fake_free};

struct opener {
	int far; /* the test's end of the last carrier */
	struct fake *last;
	int fail; /* the open fails with this */
};

static int fake_open(void *userdata, uint64_t deadline, struct tu_carrier **ret, struct tu_err *e)
{
	struct opener *o = userdata;
	int sp[2];

	(void) deadline;
	if (o->fail)
		return tu_err_set(e, o->fail, "cannot reach the far side");
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->c.ops = &fake_ops;
	f->fd = sp[0];
	o->far = sp[1];
	o->last = f;
	*ret = &f->c;
	return 0;
}

/* Plays curl: a socket connected to the dialer's listener (the pump accepts it on a step). */
static int open_as_curl(struct tu_stream_dialer *d, struct tu_err *e)
{
	struct sockaddr_un sa;
	socklen_t len = 0;
	int r = tu_stream_dialer_open(d, tu_transport_now_usec() + 1000000, &sa, &len, e);

	if (r < 0)
		return r;
	assert_int_equal(sa.sun_family, AF_UNIX);
	assert_int_equal(sa.sun_path[0], '\0'); /* abstract: nothing on disk */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *) &sa, len), 0);
	return fd;
}

/* Steps the dialer until fd has n bytes to read (or 2 s pass). */
static ssize_t pump_read(struct tu_stream_dialer *d, int fd, char *buf, size_t n)
{
	size_t got = 0;
	uint64_t end = tu_transport_now_usec() + 2000000;

	while (got < n && tu_transport_now_usec() < end) {
		tu_stream_dialer_step(d);
		ssize_t k = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (k == 0)
			return (ssize_t) got;
		if (k > 0)
			got += (size_t) k;
		else
			usleep(1000);
	}
	return (ssize_t) got;
}

static void test_pump(void **state)
{
	struct opener o = {0};
	struct tu_stream_dialer *d = NULL;
	struct tu_err e = {0};
	struct pollfd pfd[TU_STREAM_MAX_FDS];
	char buf[64];
	int before = count_fds();

	(void) state;
	assert_int_equal(tu_stream_dialer_new("test path", fake_open, &o, NULL, &d, &e), 0);
	assert_string_equal(tu_stream_dialer_via(d), "test path");
	int curl_fd = open_as_curl(d, &e);
	assert_true(curl_fd >= 0);
	/* before the accept: the listener; after: curl's connection and the carrier */
	assert_int_equal(tu_stream_dialer_pollfds(d, pfd, TU_STREAM_MAX_FDS), 1);
	tu_stream_dialer_step(d);
	assert_int_equal(tu_stream_dialer_pollfds(d, pfd, TU_STREAM_MAX_FDS), 2);
	assert_true(fcntl(pfd[0].fd, F_GETFD) & FD_CLOEXEC);

	/* curl -> far side */
	assert_int_equal(send(curl_fd, "hello auth", 10, 0), 10);
	assert_int_equal(pump_read(d, o.far, buf, 10), 10);
	assert_memory_equal(buf, "hello auth", 10);
	/* far side -> curl */
	assert_int_equal(send(o.far, "hello curl", 10, 0), 10);
	assert_int_equal(pump_read(d, curl_fd, buf, 10), 10);
	assert_memory_equal(buf, "hello curl", 10);
	/* the far side ends: curl's end sees EOF after the last bytes */
	assert_int_equal(send(o.far, "bye", 3, 0), 3);
	close(o.far);
	assert_int_equal(pump_read(d, curl_fd, buf, 10), 3);
	assert_false(tu_stream_dialer_last_error(d, NULL));
	assert_int_equal(tu_stream_dialer_pollfds(d, pfd, TU_STREAM_MAX_FDS), 0);
	close(curl_fd);

	/* a carrier error ends the pump and is kept for the caller */
	curl_fd = open_as_curl(d, &e);
	assert_true(curl_fd >= 0);
	o.last->fail_read = -EPROTO;
	assert_int_equal(pump_read(d, curl_fd, buf, 10), 0);
	assert_true(tu_stream_dialer_last_error(d, &e));
	assert_int_equal(e.code, -EPROTO);
	assert_string_equal(e.msg, "the far side said no: reason text");
	close(o.far);
	close(curl_fd);

	/* curl closing its end ends the carrier */
	curl_fd = open_as_curl(d, &e);
	assert_true(curl_fd >= 0);
	tu_stream_dialer_step(d);
	close(curl_fd);
	assert_int_equal(pump_read(d, o.far, buf, 10), 0);
	close(o.far);

	/* an open that fails says why */
	o.fail = -ECONNREFUSED;
	assert_int_equal(open_as_curl(d, &e), -ECONNREFUSED);
	assert_string_equal(e.msg, "cannot reach the far side");
	d = tu_stream_dialer_free(d);
	assert_int_equal(count_fds(), before);
}

/* Only this process may take the place of curl: another process's connection is refused. */
static void test_pump_foreign_peer(void **state)
{
	struct opener o = {0};
	struct tu_stream_dialer *d = NULL;
	struct tu_err e = {0};
	struct sockaddr_un sa;
	socklen_t len = 0;
	char buf[8];
	int before = count_fds();

	(void) state;
	assert_int_equal(tu_stream_dialer_new("test path", fake_open, &o, NULL, &d, &e), 0);
	assert_int_equal(tu_stream_dialer_open(d, tu_transport_now_usec() + 1000000, &sa, &len, &e),
			 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *) &sa, len) < 0)
			_exit(1);
		(void) !write(fd, "evil", 4);
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	tu_stream_dialer_step(d);
	/* the foreign connection was dropped; nothing reached the far side */
	assert_int_equal(recv(o.far, buf, sizeof(buf), MSG_DONTWAIT), -1);
	/* ours still gets through */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(fd, (struct sockaddr *) &sa, len), 0);
	assert_int_equal(send(fd, "mine", 4, 0), 4);
	assert_int_equal(pump_read(d, o.far, buf, 4), 4);
	assert_memory_equal(buf, "mine", 4);
	close(fd);
	close(o.far);
	d = tu_stream_dialer_free(d);
	assert_int_equal(count_fds(), before);
}

/* Early boot (sshd, getty's login before the kernel's pool is ready): the listener's name
 * never waits for entropy, and the pump still carries curl's bytes. */
static void test_pump_early_boot(void **state)
{
	struct opener o = {0};
	struct tu_stream_dialer *d = NULL;
	struct tu_err e = {0};
	char buf[8];
	int before = count_fds();

	(void) state;
	assert_int_equal(tu_stream_dialer_new("test path", fake_open, &o, NULL, &d, &e), 0);
	entropy_not_ready = true;
	blocking_getrandom = false;
	int fd = open_as_curl(d, &e);
	entropy_not_ready = false;
	assert_false(blocking_getrandom);
	assert_true(fd >= 0);
	assert_int_equal(send(fd, "boot", 4, 0), 4);
	assert_int_equal(pump_read(d, o.far, buf, 4), 4);
	assert_memory_equal(buf, "boot", 4);
	close(fd);
	close(o.far);
	d = tu_stream_dialer_free(d);
	assert_int_equal(count_fds(), before);
}

/* A peer that is gone: the TLS write fails with an error, never SIGPIPE (which is left at
 * its default here, so without MSG_NOSIGNAL this test process dies). */
static void test_tls_no_sigpipe(void **state)
{
	struct tu_tls_opts o = {.host = "127.0.0.1", .port = 1, .what = "the Proxy"};
	struct tu_tls *t = NULL;
	struct tu_err e = {0};
	int sp[2];

	(void) state;
	signal(SIGPIPE, SIG_DFL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp), 0);
	close(sp[1]);
	int r = tu_tls_connect(sp[0], &o, tu_transport_now_usec() + 1000000, &t, &e);
	assert_true(r == -ECONNRESET || r == -EPROTO);
	assert_null(t);
	assert_true(e.msg[0] != '\0');
}

static void test_dial_tcp(void **state)
{
	struct tu_err e = {0};
	int fd = -1, before = count_fds();
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t sl = sizeof(sa);

	(void) state;
	assert_int_equal(bind(ls, (struct sockaddr *) &sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *) &sa, &sl), 0);
	uint16_t port = ntohs(sa.sin_port);
	/* bound, not listening: refused */
	assert_int_equal(
	    tu_dial_tcp("127.0.0.1", port, "the Proxy", tu_transport_now_usec() + 1000000, &fd, &e),
	    -ECONNREFUSED);
	assert_non_null(strstr(e.msg, "the Proxy 127.0.0.1:"));
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(
	    tu_dial_tcp("127.0.0.1", port, "the Proxy", tu_transport_now_usec() + 1000000, &fd, &e),
	    0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
	close(ls);
	/* a deadline already past */
	assert_int_equal(
	    tu_dial_tcp("127.0.0.1", port, "the Proxy", tu_transport_now_usec(), &fd, &e),
	    -ETIMEDOUT);
	assert_int_equal(count_fds(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accept_key),
	    cmocka_unit_test(test_check_response),
	    cmocka_unit_test(test_decoder),
	    cmocka_unit_test(test_decoder_errors),
	    cmocka_unit_test(test_decoder_ping_flood),
	    cmocka_unit_test(test_pump),
	    cmocka_unit_test(test_pump_foreign_peer),
	    cmocka_unit_test(test_pump_early_boot),
	    cmocka_unit_test(test_tls_no_sigpipe),
	    cmocka_unit_test(test_dial_tcp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
