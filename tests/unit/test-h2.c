/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-h2.c - unit tests of libcore/h2.c without an Auth server: argument
 * checks, and the network failures a transport must turn into prompt, clean
 * errors (refused port, a listener that never answers the TLS handshake, a
 * peer that talks garbage or resets, fail-over across all of them, a
 * deadline already past), with no file descriptor left behind and no
 * SIGPIPE; a host name (from /etc/hosts) and an IPv6 literal reach curl as
 * numbers, and the transport's descriptors are close-on-exec.  The
 * TLS/HTTP/2 success paths are covered end to end by
 * tests/integration/test_transport.py.  Credentials are made at test time
 * with the openssl CLI.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "conf.h"
#include "creds.h"
#include "err.h"
#include "grpc.h"
#include "h2.h"
#include "transport.h"

static char dir[256];
static struct tu_creds *creds;

static int64_t wall_usec(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
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

static int setup(void **state)
{
	char cmd[2048], crt[300], key[300], ca[300];
	struct tu_err e;

	(void) state;
	snprintf(dir, sizeof(dir), "/tmp/test-h2.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(
	    cmd, sizeof(cmd),
	    "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
	    "-out ca.crt -days 2 -subj '/O=example.com/CN=CA' 2>/dev/null && "
	    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout c.key -out c.csr "
	    "-subj '/CN=host.example.com' 2>/dev/null && "
	    "openssl x509 -req -in c.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out c.crt -days 2 2>/dev/null",
	    dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(crt, sizeof(crt), "%s/c.crt", dir);
	snprintf(key, sizeof(key), "%s/c.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	return tu_creds_load_key_pair(crt, key, ca, wall_usec(), TU_CREDS_RELAXED_PERMS, &creds,
				      &e) < 0
		   ? -1
		   : 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void) state;
	creds = tu_creds_free(creds);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A listening socket on 127.0.0.1 (port in *ret_port). */
static int listener(uint16_t *ret_port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &l), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

/* A port nothing listens on. */
static uint16_t refused_port(void)
{
	uint16_t port;
	int fd = listener(&port);

	close(fd);
	return port;
}

enum peer_kind {
	PEER_GARBAGE, /* answers the ClientHello with plain text, then closes */
	PEER_RESET,   /* accepts and resets the connection */
};

struct peer {
	int fd;
	enum peer_kind kind;
	pthread_t thread;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	int c = accept4(p->fd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return NULL;
	if (p->kind == PEER_GARBAGE) {
		char buf[512];
		(void) !read(c, buf, sizeof(buf));
		static const char g[] = "HTTP/1.0 400 Bad Request\r\n\r\nthis is not TLS\r\n";
		(void) !write(c, g, sizeof(g) - 1);
	} else {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		(void) setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c);
	return NULL;
}

static void conf_init(struct tu_conf *c, char *hosts[], const uint16_t *ports, size_t n)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		c->addresses[i].host = hosts[i];
		c->addresses[i].port = ports[i];
	}
	c->n_addresses = n;
	c->server_name = (char *) "teleport.cluster.local";
	c->connect_timeout_usec = 300000;
	c->request_timeout_usec = 1000000;
	c->max_message_size = 1 << 20;
}

static int nop_data(void *userdata, const uint8_t *data, size_t len, struct tu_err *reterr)
{
	(void) userdata;
	(void) data;
	(void) len;
	(void) reterr;
	return 0;
}

/* One Ping over conf; returns the errno, fills e, and the elapsed seconds. */
static int ping_once(const struct tu_conf *conf, uint64_t budget_usec, struct tu_err *e,
		     double *ret_elapsed)
{
	struct tu_transport *t = NULL;
	struct tu_transport_status st = {.grpc_status = -1};
	static const uint8_t frame[5];
	int r;

	tu_err_clear(e);
	assert_int_equal(tu_h2_new(conf, creds, 0, &t, e), 0);
	uint64_t t0 = tu_transport_now_usec();
	r = t->call(t, "/proto.AuthService/Ping", frame, sizeof(frame), t0 + budget_usec, nop_data,
		    NULL, &st, e);
	*ret_elapsed = (double) (tu_transport_now_usec() - t0) / 1e6;
	tu_transport_free(t);
	return r;
}

static void test_new_checks(void **state)
{
	struct tu_transport *t = NULL;
	struct tu_conf c;
	struct tu_err e;
	char *hosts[] = {(char *) "127.0.0.1"};
	uint16_t ports[] = {1};

	(void) state;
	conf_init(&c, hosts, ports, 0);
	tu_err_clear(&e);
	assert_int_equal(tu_h2_new(&c, creds, 0, &t, &e), -EINVAL);
	assert_string_equal(e.key, "auth.addresses");
	assert_null(t);

	conf_init(&c, hosts, ports, 1);
	c.server_name = (char *) "bad name!";
	assert_int_equal(tu_h2_new(&c, creds, 0, &t, &e), -EINVAL);
	assert_string_equal(e.key, "auth.server_name");
	assert_null(t);

	conf_init(&c, hosts, ports, 1);
	assert_int_equal(tu_h2_new(&c, creds, 0, &t, &e), 0);
	struct tu_transport_status st;
	assert_int_equal(
	    t->call(t, "no-slash", (const uint8_t *) "", 0, UINT64_MAX, nop_data, NULL, &st, &e),
	    -EINVAL);
	assert_int_equal(
	    t->call(t, "/a b/c", (const uint8_t *) "", 0, UINT64_MAX, nop_data, NULL, &st, &e),
	    -EINVAL);
	/* a deadline already past: no connection attempt at all */
	assert_int_equal(t->call(t, "/proto.AuthService/Ping", (const uint8_t *) "", 0, 1, nop_data,
				 NULL, &st, &e),
			 -ETIMEDOUT);
	assert_string_equal(e.msg, "deadline passed before calling 127.0.0.1:1");
	tu_transport_free(t);
}

static void test_refused(void **state)
{
	char *hosts[] = {(char *) "127.0.0.1"};
	uint16_t ports[] = {refused_port()};
	struct tu_conf c;
	struct tu_err e;
	char want[128];
	double el;
	int fds = count_fds();

	(void) state;
	conf_init(&c, hosts, ports, 1);
	assert_int_equal(ping_once(&c, 1300000, &e, &el), -ECONNREFUSED);
	snprintf(want, sizeof(want), "cannot connect to 127.0.0.1:%u: connection refused",
		 ports[0]);
	assert_string_equal(e.msg, want);
	assert_true(el < 1.0);
	assert_int_equal(count_fds(), fds);
}

static void test_tls_never_answered(void **state)
{
	uint16_t port;
	int lfd = listener(&port); /* never accepted: the kernel completes TCP, nobody speaks TLS */
	char *hosts[] = {(char *) "127.0.0.1"};
	uint16_t ports[] = {port};
	struct tu_conf c;
	struct tu_err e;
	double el;
	int fds = count_fds();

	(void) state;
	conf_init(&c, hosts, ports, 1);
	assert_int_equal(ping_once(&c, 1300000, &e, &el), -ETIMEDOUT);
	assert_non_null(strstr(e.msg, "timed out after"));
	/* the connect timeout (300 ms), not the whole budget */
	assert_true(el >= 0.25 && el < 1.5);
	/* a deadline shorter than the connect timeout wins */
	c.connect_timeout_usec = 5000000;
	assert_int_equal(ping_once(&c, 400000, &e, &el), -ETIMEDOUT);
	assert_true(el >= 0.35 && el < 1.5);
	close(lfd);
	assert_int_equal(count_fds(), fds - 1); /* the listener is closed now */
}

static void test_bad_peers(void **state)
{
	static const enum peer_kind kinds[] = {PEER_GARBAGE, PEER_RESET};

	(void) state;
	for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
		struct peer p = {.kind = kinds[k]};
		uint16_t port;
		p.fd = listener(&port);
		assert_int_equal(pthread_create(&p.thread, NULL, peer_main, &p), 0);
		char *hosts[] = {(char *) "127.0.0.1"};
		uint16_t ports[] = {port};
		struct tu_conf c;
		struct tu_err e;
		double el;
		int fds = count_fds();

		conf_init(&c, hosts, ports, 1);
		int r = ping_once(&c, 1300000, &e, &el);
		pthread_join(p.thread, NULL);
		close(p.fd);
		if (r != -EPROTO && r != -EHOSTUNREACH)
			fail_msg("peer %zu: %d (%s)", k, r, e.msg);
		assert_non_null(strstr(e.msg, "127.0.0.1:"));
		assert_true(el < 1.0);
		assert_int_equal(count_fds(), fds - 1); /* the listener is closed now */
	}
}

static void test_failover_reports_every_address(void **state)
{
	uint16_t bh;
	int lfd = listener(&bh);
	char *hosts[] = {(char *) "127.0.0.1", (char *) "::1", (char *) "127.0.0.1"};
	uint16_t ports[] = {refused_port(), refused_port(), bh};
	struct tu_conf c;
	struct tu_err e;
	double el;

	(void) state;
	conf_init(&c, hosts, ports, 3);
	int r = ping_once(&c, 1300000, &e, &el);
	assert_int_equal(r, -ETIMEDOUT);
	assert_non_null(strstr(e.msg, "no Auth address answered: cannot connect to 127.0.0.1:"));
	assert_non_null(strstr(e.msg, "[::1]:"));
	assert_non_null(strstr(e.msg, "timed out after"));
	assert_true(el < 1.0);

	/* all blackholed: the deadline bounds the whole fail-over */
	char *h2[] = {(char *) "127.0.0.1", (char *) "127.0.0.1", (char *) "127.0.0.1",
		      (char *) "127.0.0.1"};
	uint16_t p2[] = {bh, bh, bh, bh};
	conf_init(&c, h2, p2, 4);
	r = ping_once(&c, 700000, &e, &el);
	assert_int_equal(r, -ETIMEDOUT);
	assert_true(el >= 0.6 && el < 2.0);
	close(lfd);
}

/* Issue 14 F1/F8: names are resolved by libcore (hosts file here), IPv6 literals reach curl
 * through a stand-in name, curl never resolves (an error would say "internal error"), and
 * every descriptor the transport holds is close-on-exec (curl's socket pair included). */
static void test_names_and_cloexec(void **state)
{
	char *hosts[] = {(char *) "localhost"};
	char *v6[] = {(char *) "::1"};
	uint16_t ports[] = {refused_port()};
	struct tu_transport *t = NULL;
	struct tu_conf c;
	struct tu_err e;
	char want[128];
	double el;
	bool before[1024] = {false};
	int fds = count_fds();

	(void) state;
	conf_init(&c, hosts, ports, 1);
	int r = ping_once(&c, 1300000, &e, &el);
	assert_true(r == -ECONNREFUSED || r == -EHOSTUNREACH);
	snprintf(want, sizeof(want), "cannot connect to localhost:%u: ", ports[0]);
	assert_non_null(strstr(e.msg, want));
	assert_null(strstr(e.msg, "internal error"));
	assert_true(el < 1.0);

	conf_init(&c, v6, ports, 1);
	r = ping_once(&c, 1300000, &e, &el);
	assert_true(r == -ECONNREFUSED || r == -EHOSTUNREACH);
	snprintf(want, sizeof(want), "cannot connect to [::1]:%u: ", ports[0]);
	assert_non_null(strstr(e.msg, want));
	assert_null(strstr(e.msg, "internal error"));
	assert_int_equal(count_fds(), fds);

	/* Issue 10: creating the transport opens and loads nothing; the first call that got a
	 * TCP connection loads libcurl, whose descriptors are all close-on-exec too. */
	uint16_t bh;
	int lfd = listener(&bh); /* takes TCP, never speaks TLS */
	uint16_t bh_ports[] = {bh};
	for (int fd = 0; fd < 1024; fd++)
		before[fd] = fcntl(fd, F_GETFD) >= 0;
	conf_init(&c, hosts, bh_ports, 1);
	tu_err_clear(&e);
	assert_int_equal(tu_h2_new(&c, creds, 0, &t, &e), 0);
	int added = 0;
	for (int fd = 0; fd < 1024; fd++)
		added += fcntl(fd, F_GETFD) >= 0 && !before[fd];
	assert_int_equal(added, 0);
	struct tu_transport_status st = {.grpc_status = -1};
	static const uint8_t frame[5];
	uint64_t t0 = tu_transport_now_usec();
	assert_int_equal(t->call(t, "/proto.AuthService/Ping", frame, sizeof(frame), t0 + 400000, nop_data,
				 NULL, &st, &e),
			 -ETIMEDOUT);
	for (int fd = 0; fd < 1024; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl < 0 || before[fd])
			continue;
		added++;
		assert_true(fl & FD_CLOEXEC);
	}
	assert_true(added >= 2); /* libcurl 7.88's wake-up socket pair, at least */
	tu_transport_free(t);
	close(lfd);
	assert_int_equal(count_fds(), fds);
}

static void test_env_check(void **state)
{
	char *clean[] = { (char *) "PATH=/usr/bin", (char *) "SSLKEYLOGFILEX=1", NULL };
	char *keylog[] = { (char *) "PATH=/usr/bin", (char *) "SSLKEYLOGFILE=/etc/shadow", NULL };
	struct tu_err e;

	(void) state;
	tu_err_clear(&e);
	assert_int_equal(tu_h2_check_env(false, keylog, &e), 0); /* an admin debugging: their choice */
	assert_int_equal(tu_h2_check_env(true, clean, &e), 0);
	assert_int_equal(tu_h2_check_env(true, NULL, &e), 0);
	assert_int_equal(tu_h2_check_env(true, keylog, &e), -EPERM);
	assert_non_null(strstr(e.msg, "SSLKEYLOGFILE is set in a setuid/setgid program"));
	assert_int_equal(tu_h2_check_env(true, keylog, NULL), -EPERM);
}

/* Where the transport module is loaded from: next to the core only when the core's own
 * path is absolute (dladdr() gives argv[0] for a core linked into the program, and a
 * relative name would be looked up from the working directory: a file planted there
 * would run in sshd or a cron job); anything else is the installed module. */
static void test_module_path(void **state)
{
	char p[PATH_MAX];

	(void) state;
	tu_h2_module_path("/usr/lib/x/teleport-unix/libteleport-unix.so.0", p, sizeof(p));
	assert_string_equal(p, "/usr/lib/x/teleport-unix/" TU_H2_MODULE_FILE);
	tu_h2_module_path("/libteleport-unix.so.0", p, sizeof(p));
	assert_string_equal(p, "/" TU_H2_MODULE_FILE);
	tu_h2_module_path("bin/teleport-unix", p, sizeof(p));
	assert_string_equal(p, TU_PKGLIBDIR "/" TU_H2_MODULE_FILE);
	tu_h2_module_path("./teleport-unix", p, sizeof(p));
	assert_string_equal(p, TU_PKGLIBDIR "/" TU_H2_MODULE_FILE);
	tu_h2_module_path("teleport-unix", p, sizeof(p));
	assert_string_equal(p, TU_PKGLIBDIR "/" TU_H2_MODULE_FILE);
	tu_h2_module_path("", p, sizeof(p));
	assert_string_equal(p, TU_PKGLIBDIR "/" TU_H2_MODULE_FILE);
	tu_h2_module_path(NULL, p, sizeof(p));
	assert_string_equal(p, TU_PKGLIBDIR "/" TU_H2_MODULE_FILE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_checks),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_tls_never_answered),
	    cmocka_unit_test(test_bad_peers),
	    cmocka_unit_test(test_failover_reports_every_address),
	    cmocka_unit_test(test_names_and_cloexec),
	    cmocka_unit_test(test_env_check),
	    cmocka_unit_test(test_module_path),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
