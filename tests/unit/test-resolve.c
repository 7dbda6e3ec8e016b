/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-resolve.c - unit tests of libcore/resolve.c: resolv.conf and hosts
 * parsing (tables), DNS query/answer bytes (CNAME chains, compression, wrong
 * ids and questions, every truncation of a real answer), and tu_resolve()
 * against an in-process DNS responder on 127.0.0.1 (opts.dns_port): answers,
 * NXDOMAIN, SERVFAIL with fail-over to a second server, a search list, and a
 * server that never answers, where the call must return by its deadline
 * (not glibc's 5 s x attempts).  No descriptor may be left behind.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <time.h>
#include <unistd.h>

/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h first */
#include <cmocka.h>
/* clang-format on */

#include "err.h"
#include "resolve.h"

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000;
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

static const char *addr_str(const struct tu_resolve_addr *a, char *buf, size_t size)
{
	return inet_ntop(a->family, a->a, buf, (socklen_t) size);
}

/* ------------------------------------------------------------ resolv.conf */

static void test_resolv_conf(void **state)
{
	struct tu_resolv_conf c;
	char b[64];
	static const char text[] = "# comment\n"
				   "; other comment\n"
				   "nameserver 192.0.2.1\n"
				   "nameserver   2001:db8::53 # trailing\n"
				   "nameserver not-an-address\n"
				   "nameserver 192.0.2.2\n"
				   "nameserver 192.0.2.3\n" /* a 4th: ignored, as glibc */
				   "domain first.example\n"
				   "search corp.example. lab.example bad..name\n"
				   "options ndots:2 timeout:1 attempts:9 rotate unknown:3\n";

	(void) state;
	tu_resolv_conf_parse(text, strlen(text), &c);
	assert_int_equal(c.n_ns, 3);
	assert_string_equal(addr_str(&c.ns[0], b, sizeof(b)), "192.0.2.1");
	assert_string_equal(addr_str(&c.ns[1], b, sizeof(b)), "2001:db8::53");
	assert_string_equal(addr_str(&c.ns[2], b, sizeof(b)), "192.0.2.2");
	assert_int_equal(c.n_search, 2); /* search replaced domain; the bad name dropped */
	assert_string_equal(c.search[0], "corp.example");
	assert_string_equal(c.search[1], "lab.example");
	assert_int_equal(c.ndots, 2);
	assert_int_equal(c.timeout, 1);
	assert_int_equal(c.attempts, 5); /* clamped */

	/* Nothing usable: glibc's default server, default options. */
	tu_resolv_conf_parse("", 0, &c);
	assert_int_equal(c.n_ns, 1);
	assert_string_equal(addr_str(&c.ns[0], b, sizeof(b)), "127.0.0.1");
	assert_int_equal(c.ndots, 1);
	assert_int_equal(c.timeout, 5);
	assert_int_equal(c.attempts, 2);
	assert_int_equal(c.n_search, 0);

	/* Not NUL-terminated, no final newline, a scope id. */
	static const char t2[] = "nameserver fe80::1%1\noptions timeout:0XXX";
	tu_resolv_conf_parse(t2, sizeof(t2) - 4, &c);
	assert_int_equal(c.n_ns, 1);
	assert_int_equal(c.ns_scope[0], 1);
	assert_int_equal(c.timeout, 1); /* timeout:0 means one second, as glibc */
}

/* ------------------------------------------------------------ hosts */

static void test_hosts(void **state)
{
	struct tu_resolve_result r = {0};
	char b[64];
	static const char text[] = "127.0.0.1 localhost\n"
				   "# 10.9.9.9 auth.example.com\n"
				   "10.0.0.1\tAuth.Example.COM. auth # comment auth2\n"
				   "10.0.0.2 other auth.example.com\n"
				   "fe80::1%eth0 auth.example.com\n" /* scoped: skipped */
				   "2001:db8::1 auth.example.com\n"
				   "10.0.0.1 auth.example.com\n" /* duplicate */
				   "garbage auth.example.com\n"
				   "10.0.0.3 auth2";

	(void) state;
	assert_int_equal(tu_hosts_lookup(text, strlen(text), "auth.example.com.", &r), 3);
	assert_int_equal(r.n, 3);
	assert_string_equal(addr_str(&r.addr[0], b, sizeof(b)), "10.0.0.1");
	assert_string_equal(addr_str(&r.addr[1], b, sizeof(b)), "10.0.0.2");
	assert_string_equal(addr_str(&r.addr[2], b, sizeof(b)), "2001:db8::1");

	memset(&r, 0, sizeof(r));
	assert_int_equal(tu_hosts_lookup(text, strlen(text), "AUTH2", &r), 1); /* not the comment */
	assert_string_equal(addr_str(&r.addr[0], b, sizeof(b)), "10.0.0.3");
	memset(&r, 0, sizeof(r));
	assert_int_equal(tu_hosts_lookup(text, strlen(text), "missing.example.com", &r), 0);
	assert_int_equal(r.n, 0);

	/* At most TU_RESOLVE_MAX_ADDRS. */
	char many[4096] = "";
	for (int i = 0; i < 20; i++) {
		char line[64];
		snprintf(line, sizeof(line), "10.1.0.%d many\n", i + 1);
		strcat(many, line);
	}
	memset(&r, 0, sizeof(r));
	assert_int_equal(tu_hosts_lookup(many, strlen(many), "many", &r), TU_RESOLVE_MAX_ADDRS);
	assert_int_equal(r.n, TU_RESOLVE_MAX_ADDRS);
}

/* ------------------------------------------------------------ DNS messages */

/* Builds an answer to query q (len ql): rcode, then records given as
 * (owner offset or name, type, rdata).  Minimal writer for the tests. */
struct msg {
	uint8_t b[1500];
	size_t n;
};

static void put16(struct msg *m, unsigned v)
{
	m->b[m->n++] = (uint8_t) (v >> 8);
	m->b[m->n++] = (uint8_t) v;
}

static void put_name(struct msg *m, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t) (dot - name) : strlen(name);
		m->b[m->n++] = (uint8_t) l;
		memcpy(m->b + m->n, name, l);
		m->n += l;
		name += l + (dot ? 1 : 0);
	}
	m->b[m->n++] = 0;
}

static void answer_start(struct msg *m, const uint8_t *q, size_t ql, unsigned rcode, unsigned an)
{
	memcpy(m->b, q, ql);
	m->n = ql;
	m->b[2] = 0x81; /* QR RD */
	m->b[3] = (uint8_t) (0x80 | rcode);
	m->b[6] = (uint8_t) (an >> 8);
	m->b[7] = (uint8_t) an;
}

/* A record: owner as a pointer (ptr != 0) or a name. */
static void put_rr(struct msg *m, unsigned ptr, const char *owner, unsigned type, uint32_t ttl,
		   const void *rdata, size_t rdlen)
{
	if (ptr)
		put16(m, 0xC000 | ptr);
	else
		put_name(m, owner);
	put16(m, type);
	put16(m, 1);
	put16(m, ttl >> 16);
	put16(m, ttl & 0xFFFF);
	put16(m, (unsigned) rdlen);
	memcpy(m->b + m->n, rdata, rdlen);
	m->n += rdlen;
}

static void test_query_bytes(void **state)
{
	uint8_t q[300];
	static const uint8_t want[] = {0x12, 0x34, 0x01, 0x00, 0,   1, 0,   0,   0,   0,   0,   0,
				       4,    'a',  'u',  't',  'h', 7, 'e', 'x', 'a', 'm', 'p', 'l',
				       'e',  3,    'c',  'o',  'm', 0, 0,   28,  0,   1};

	(void) state;
	assert_int_equal(tu_dns_build_query("Auth.Example.com.", 28, 0x1234, q, sizeof(q)),
			 sizeof(want));
	assert_memory_equal(q, want, sizeof(want));
	assert_int_equal(tu_dns_build_query("a..b", 1, 1, q, sizeof(q)), -EINVAL);
	assert_int_equal(tu_dns_build_query("", 1, 1, q, sizeof(q)), -EINVAL);
	assert_int_equal(tu_dns_build_query("a b", 1, 1, q, sizeof(q)), -EINVAL);
	assert_int_equal(tu_dns_build_query("auth.example.com", 1, 1, q, 20), -ENOBUFS);
	char big[80];
	memset(big, 'a', 64);
	big[64] = '\0';
	assert_int_equal(tu_dns_build_query(big, 1, 1, q, sizeof(q)), -EINVAL); /* label > 63 */
}

static void test_answer_parse(void **state)
{
	uint8_t q[300];
	struct msg m;
	struct tu_resolve_result r;
	int tc = -1;
	char b[64];
	static const uint8_t a1[4] = {10, 0, 0, 1}, a2[4] = {10, 0, 0, 2}, a3[4] = {10, 0, 0, 3};

	(void) state;
	int ql = tu_dns_build_query("auth.example.com", 1, 0xBEEF, q, sizeof(q));
	assert_true(ql > 0);

	/* Two A records (owner by pointer to the question), one for another name. */
	answer_start(&m, q, (size_t) ql, 0, 3);
	put_rr(&m, 12, NULL, 1, 300, a1, 4);
	put_rr(&m, 0, "evil.example.com", 1, 300, a3, 4);
	put_rr(&m, 12, NULL, 1, 60, a2, 4);
	memset(&r, 0, sizeof(r));
	r.ttl_sec = TU_RESOLVE_CACHE_MAX_S;
	assert_int_equal(tu_dns_parse_answer(m.b, m.n, "AUTH.example.com.", 1, 0xBEEF, &r, &tc), 0);
	assert_int_equal(tc, 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(addr_str(&r.addr[0], b, sizeof(b)), "10.0.0.1");
	assert_string_equal(addr_str(&r.addr[1], b, sizeof(b)), "10.0.0.2");
	assert_int_equal(r.ttl_sec, 60);

	/* Every truncation is an error or a subset, never a crash. */
	for (size_t n = 0; n < m.n; n++) {
		struct tu_resolve_result t = {0};
		int rc = tu_dns_parse_answer(m.b, n, "auth.example.com", 1, 0xBEEF, &t, &tc);
		assert_true(rc == -EBADMSG || (rc == 0 && t.n <= 2));
	}
	/* Every single-bit flip: no crash, at most the records there are. */
	for (size_t bit = 0; bit < m.n * 8; bit++) {
		struct tu_resolve_result t = {0};
		m.b[bit / 8] ^= (uint8_t) (1u << (bit % 8));
		(void) tu_dns_parse_answer(m.b, m.n, "auth.example.com", 1, 0xBEEF, &t, &tc);
		assert_true(t.n <= 3);
		m.b[bit / 8] ^= (uint8_t) (1u << (bit % 8));
	}

	/* Wrong id, a query (no QR), another question, another type: not ours. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(tu_dns_parse_answer(m.b, m.n, "auth.example.com", 1, 0xBEEE, &r, &tc),
			 -EBADMSG);
	assert_int_equal(
	    tu_dns_parse_answer(q, (size_t) ql, "auth.example.com", 1, 0xBEEF, &r, &tc), -EBADMSG);
	assert_int_equal(tu_dns_parse_answer(m.b, m.n, "other.example.com", 1, 0xBEEF, &r, &tc),
			 -EBADMSG);
	assert_int_equal(tu_dns_parse_answer(m.b, m.n, "auth.example.com", 28, 0xBEEF, &r, &tc),
			 -EBADMSG);

	/* NXDOMAIN and SERVFAIL are returned as RCODEs; TC is reported. */
	answer_start(&m, q, (size_t) ql, 3, 0);
	assert_int_equal(tu_dns_parse_answer(m.b, m.n, "auth.example.com", 1, 0xBEEF, &r, &tc), 3);
	answer_start(&m, q, (size_t) ql, 2, 0);
	m.b[2] |= 0x02;
	assert_int_equal(tu_dns_parse_answer(m.b, m.n, "auth.example.com", 1, 0xBEEF, &r, &tc), 2);
	assert_int_equal(tc, 1);

	/* A CNAME chain, records out of order; a record of the alias's target only. */
	answer_start(&m, q, (size_t) ql, 0, 3);
	put_rr(&m, 0, "lb.example.net", 1, 30, a2, 4);
	{
		struct msg t = {.n = 0};
		put_name(&t, "lb.example.net");
		put_rr(&m, 0, "alias.example.org", 5, 300, t.b, t.n);
		t.n = 0;
		put_name(&t, "alias.example.org");
		put_rr(&m, 12, NULL, 5, 300, t.b, t.n);
	}
	memset(&r, 0, sizeof(r));
	r.ttl_sec = TU_RESOLVE_CACHE_MAX_S;
	assert_int_equal(tu_dns_parse_answer(m.b, m.n, "auth.example.com", 1, 0xBEEF, &r, &tc), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(addr_str(&r.addr[0], b, sizeof(b)), "10.0.0.2");
	assert_int_equal(r.ttl_sec, 30);

	/* A compression pointer loop in an owner name: that record is skipped. */
	answer_start(&m, q, (size_t) ql, 0, 1);
	size_t at = m.n;
	put16(&m, 0xC000 | (unsigned) at);
	put16(&m, 1);
	put16(&m, 1);
	put16(&m, 0);
	put16(&m, 60);
	put16(&m, 4);
	memcpy(m.b + m.n, a1, 4);
	m.n += 4;
	memset(&r, 0, sizeof(r));
	assert_int_equal(tu_dns_parse_answer(m.b, m.n, "auth.example.com", 1, 0xBEEF, &r, &tc), 0);
	assert_int_equal(r.n, 0);

	/* AAAA with a wrong length is ignored. */
	ql = tu_dns_build_query("auth.example.com", 28, 7, q, sizeof(q));
	answer_start(&m, q, (size_t) ql, 0, 1);
	put_rr(&m, 12, NULL, 28, 60, a1, 4);
	memset(&r, 0, sizeof(r));
	assert_int_equal(tu_dns_parse_answer(m.b, m.n, "auth.example.com", 28, 7, &r, &tc), 0);
	assert_int_equal(r.n, 0);
}

static void test_format_list(void **state)
{
	struct tu_resolve_result r = {.n = 2};
	char buf[128];

	(void) state;
	r.addr[0].family = AF_INET;
	inet_pton(AF_INET, "10.0.0.1", r.addr[0].a);
	r.addr[1].family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", r.addr[1].a);
	assert_int_equal(tu_resolve_format_list(&r, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.0.0.1,[2001:db8::1]");
	assert_int_equal(tu_resolve_format_list(&r, buf, 12), -ENOBUFS);
}

/* ------------------------------------------------------------ live, in process */

enum dns_mode { DNS_ANSWER, DNS_DROP, DNS_SERVFAIL };

struct responder {
	int fd;
	uint16_t port;
	enum dns_mode mode;
	int stop_pipe[2];
	pthread_t th;
	int queries;
};

/* Answers every query for *.example.test, A only (AAAA: no data), NXDOMAIN else. */
static void *responder_main(void *arg)
{
	struct responder *s = arg;
	static const uint8_t a[4] = {192, 0, 2, 7};

	for (;;) {
		struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN},
				      {.fd = s->stop_pipe[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0 || p[1].revents)
			return NULL;
		uint8_t q[512];
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(s->fd, q, sizeof(q), 0, (struct sockaddr *) &from, &fl);
		if (n < 17)
			continue;
		__atomic_add_fetch(&s->queries, 1, __ATOMIC_SEQ_CST);
		if (s->mode == DNS_DROP)
			continue;
		struct msg m;
		/* the question's name as text */
		char name[256] = "";
		size_t o = 12, nl = 0;
		while (o < (size_t) n && q[o] && nl < 200) {
			if (nl)
				name[nl++] = '.';
			memcpy(name + nl, q + o + 1, q[o]);
			nl += q[o];
			o += 1u + q[o];
		}
		name[nl] = '\0';
		unsigned qtype = (unsigned) (q[o + 1] << 8 | q[o + 2]);
		bool ours = nl > 13 && strcmp(name + nl - 13, ".example.test") == 0;
		if (s->mode == DNS_SERVFAIL)
			answer_start(&m, q, (size_t) n, 2, 0);
		else if (!ours)
			answer_start(&m, q, (size_t) n, 3, 0);
		else if (qtype == 1) {
			answer_start(&m, q, (size_t) n, 0, 1);
			put_rr(&m, 12, NULL, 1, 120, a, 4);
		} else
			answer_start(&m, q, (size_t) n, 0, 0);
		(void) sendto(s->fd, m.b, m.n, 0, (struct sockaddr *) &from, fl);
	}
}

static void responder_start(struct responder *s, enum dns_mode mode, const char *ip, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	socklen_t sl = sizeof(sa);
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s->fd >= 0);
	(void) setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, ip, &sa.sin_addr);
	assert_int_equal(bind(s->fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *) &sa, &sl), 0);
	s->port = ntohs(sa.sin_port);
	assert_int_equal(pipe2(s->stop_pipe, O_CLOEXEC), 0);
	assert_int_equal(pthread_create(&s->th, NULL, responder_main, s), 0);
}

static void responder_stop(struct responder *s)
{
	assert_int_equal(write(s->stop_pipe[1], "x", 1), 1);
	pthread_join(s->th, NULL);
	close(s->fd);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
}

static char tmpdir[64];
static char conf_path[128], hosts_path[128];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void) state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-resolve.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/resolv.conf", tmpdir);
	snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", tmpdir);
	write_file(hosts_path, "127.0.0.1 localhost\n10.7.7.7 fromhosts.example.test\n");
	return 0;
}

static int teardown(void **state)
{
	(void) state;
	unlink(conf_path);
	unlink(hosts_path);
	rmdir(tmpdir);
	return 0;
}

static int resolve(const char *host, uint64_t budget_usec, uint16_t port,
		   struct tu_resolve_result *r, struct tu_err *e)
{
	struct tu_resolve_opts o = {
	    .hosts_path = hosts_path, .resolv_conf_path = conf_path, .dns_port = port};

	tu_err_clear(e);
	return tu_resolve(host, mono_usec() + budget_usec, &o, r, e);
}

static void test_live(void **state)
{
	struct responder good, bad;
	struct tu_resolve_result r;
	struct tu_err e;
	char b[64];
	int fds = count_fds();

	(void) state;
	responder_start(&good, DNS_ANSWER, "127.0.0.1", 0);
	/* Numeric: no file, no DNS. */
	assert_int_equal(resolve("192.0.2.99", 1000000, good.port, &r, &e), 0);
	assert_int_equal(r.source, TU_RESOLVE_NUMERIC);
	assert_int_equal(resolve("2001:db8::5", 1000000, good.port, &r, &e), 0);
	assert_int_equal(r.addr[0].family, AF_INET6);
	/* hosts before DNS */
	write_file(conf_path, "nameserver 127.0.0.1\n");
	assert_int_equal(resolve("FromHosts.example.test", 1000000, good.port, &r, &e), 0);
	assert_int_equal(r.source, TU_RESOLVE_HOSTS);
	assert_string_equal(addr_str(&r.addr[0], b, sizeof(b)), "10.7.7.7");
	assert_int_equal(good.queries, 0);
	/* DNS: A answered, AAAA no data */
	assert_int_equal(resolve("auth.example.test", 1000000, good.port, &r, &e), 0);
	assert_int_equal(r.source, TU_RESOLVE_DNS);
	assert_int_equal(r.n, 1);
	assert_string_equal(addr_str(&r.addr[0], b, sizeof(b)), "192.0.2.7");
	assert_int_equal(r.ttl_sec, 120);
	/* NXDOMAIN */
	assert_int_equal(resolve("auth.example.org", 1000000, good.port, &r, &e), -EHOSTUNREACH);
	assert_non_null(strstr(e.msg, "no such host"));
	/* search list: "auth" -> auth.example.test (0 dots < ndots 1) */
	write_file(conf_path, "nameserver 127.0.0.1\nsearch nothere.invalid example.test\n");
	assert_int_equal(resolve("auth", 1000000, good.port, &r, &e), 0);
	assert_string_equal(addr_str(&r.addr[0], b, sizeof(b)), "192.0.2.7");
	/* an absolute name does not use the search list */
	assert_int_equal(resolve("auth.", 1000000, good.port, &r, &e), -EHOSTUNREACH);
	/* invalid names */
	assert_int_equal(resolve("a b", 1000000, good.port, &r, &e), -EINVAL);
	assert_int_equal(resolve("", 1000000, good.port, &r, &e), -EINVAL);

	/* SERVFAIL from the first server: the second one answers, promptly. */
	responder_start(&bad, DNS_SERVFAIL, "127.0.0.2", good.port);
	write_file(conf_path, "nameserver 127.0.0.2\nnameserver 127.0.0.1\n");
	uint64_t t0 = mono_usec();
	assert_int_equal(resolve("auth.example.test", 2000000, good.port, &r, &e), 0);
	assert_true(mono_usec() - t0 < 500000);
	/* SERVFAIL alone: a clear error, long before the deadline. */
	write_file(conf_path, "nameserver 127.0.0.2\n");
	t0 = mono_usec();
	assert_int_equal(resolve("auth.example.test", 2000000, good.port, &r, &e), -EHOSTUNREACH);
	assert_non_null(strstr(e.msg, "SERVFAIL"));
	assert_true(mono_usec() - t0 < 500000);
	responder_stop(&bad);

	/* A server that never answers: back by the deadline, whatever resolv.conf says. */
	responder_start(&bad, DNS_DROP, "127.0.0.3", good.port);
	write_file(conf_path, "nameserver 127.0.0.3\noptions timeout:30 attempts:5\n");
	t0 = mono_usec();
	assert_int_equal(resolve("auth.example.test", 300000, good.port, &r, &e), -ETIMEDOUT);
	uint64_t took = mono_usec() - t0;
	assert_true(took >= 290000);
	assert_true(took < 360000);
	assert_non_null(strstr(e.msg, "no answer from the DNS server (127.0.0.3)"));
	assert_true(bad.queries >= 2); /* A and AAAA at least */
	/* A deadline already past. */
	assert_int_equal(resolve("auth.example.test", 0, good.port, &r, &e), -ETIMEDOUT);
	/* The silent one first, the good one second: the tries share the time. */
	write_file(conf_path, "nameserver 127.0.0.3\nnameserver 127.0.0.1\noptions timeout:5\n");
	t0 = mono_usec();
	assert_int_equal(resolve("auth.example.test", 1000000, good.port, &r, &e), 0);
	assert_true(mono_usec() - t0 < 800000);
	responder_stop(&bad);
	responder_stop(&good);
	assert_int_equal(count_fds(), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resolv_conf), cmocka_unit_test(test_hosts),
	    cmocka_unit_test(test_query_bytes), cmocka_unit_test(test_answer_parse),
	    cmocka_unit_test(test_format_list), cmocka_unit_test(test_live),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
