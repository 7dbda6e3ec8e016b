/* SPDX-License-Identifier: Apache-2.0 */
/*
 * resolve.c - Auth host names to addresses: numeric, /etc/hosts, then a
 * small DNS-over-UDP client bounded by the caller's deadline (resolve.h).
 * Layer: libcore; libc only, no NSS, no thread, no environment.
 *
 * Why not libresolv's res_nquery(): its timeout is whole seconds per try
 * (options timeout:N, RES_TIMEOUT) and the total is timeout x attempts x
 * servers, so a 1 s connect budget cannot be honoured to the millisecond;
 * here each try gets a slice of what is left and poll() never waits past
 * the deadline.
 */
#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"

#define HOSTS_PATH       "/etc/hosts"
#define RESOLV_CONF_PATH "/etc/resolv.conf"
#define MAX_RESOLV_CONF  (64 * 1024) /* bytes of resolv.conf read */
#define MAX_HOSTS_LINE   4096
#define DNS_QTYPE_A      1
#define DNS_QTYPE_CNAME  5
#define DNS_QTYPE_AAAA   28
#define DNS_CLASS_IN     1
#define DNS_MAX_UDP      1232 /* what we read of one datagram (no EDNS: servers send <= 512) */
#define MAX_CNAME_CHAIN  8
#define MAX_ANSWER_RR    256    /* answer records looked at in one message */
#define GRACE_USEC       200000 /* wait for the other family once one answered */
#define MIN_TRY_USEC     50000

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static bool ascii_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000;
}

/* A host name we are willing to look up: LDH labels (and '_'), 1..63 bytes each. */
static bool valid_name(const char *s, size_t n)
{
	size_t label = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > TU_RESOLVE_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* Lower case, no trailing dot; out has TU_RESOLVE_MAX_NAME + 1 bytes. */
static void normalize(const char *s, char *out)
{
	size_t n = strlen(s);

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n > TU_RESOLVE_MAX_NAME)
		n = TU_RESOLVE_MAX_NAME;
	for (size_t i = 0; i < n; i++)
		out[i] = ascii_lower(s[i]);
	out[n] = '\0';
}

static bool parse_numeric(const char *s, struct tu_resolve_addr *ret)
{
	struct tu_resolve_addr a = {0};

	if (inet_pton(AF_INET, s, a.a) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, a.a) == 1)
		a.family = AF_INET6;
	else
		return false;
	*ret = a;
	return true;
}

static bool addr_eq(const struct tu_resolve_addr *x, const struct tu_resolve_addr *y)
{
	return x->family == y->family && memcmp(x->a, y->a, x->family == AF_INET ? 4 : 16) == 0;
}

static bool add_addr(struct tu_resolve_result *r, const struct tu_resolve_addr *a)
{
	for (size_t i = 0; i < r->n; i++)
		if (addr_eq(&r->addr[i], a))
			return false;
	if (r->n >= TU_RESOLVE_MAX_ADDRS)
		return false;
	r->addr[r->n++] = *a;
	return true;
}

/* ------------------------------------------------------------ text files */

/* Splits [p, end) into whitespace-separated tokens, one at a time. */
static bool next_token(const char **p, const char *end, const char **ret_tok, size_t *ret_len)
{
	const char *s = *p;

	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
		s++;
	if (s >= end)
		return false;
	const char *t = s;
	while (s < end && *s != ' ' && *s != '\t' && *s != '\r')
		s++;
	*ret_tok = t;
	*ret_len = (size_t) (s - t);
	*p = s;
	return true;
}

static bool small_uint(const char *s, size_t n, unsigned max, unsigned *ret)
{
	unsigned v = 0;

	if (n == 0 || n > 4)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned) (s[i] - '0');
	}
	*ret = v > max ? max : v;
	return true;
}

static void conf_nameserver(struct tu_resolv_conf *c, const char *tok, size_t n)
{
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	struct tu_resolve_addr a;
	uint32_t scope = 0;

	if (c->n_ns >= TU_RESOLVE_MAX_NS || n >= sizeof(buf))
		return;
	memcpy(buf, tok, n);
	buf[n] = '\0';
	char *pct = strchr(buf, '%');
	if (pct) {
		unsigned v;
		*pct++ = '\0';
		if (small_uint(pct, strlen(pct), 0xFFFF, &v))
			scope = v;
		else
			scope = if_nametoindex(pct);
		if (scope == 0)
			return;
	}
	if (!parse_numeric(buf, &a) || (pct && a.family != AF_INET6))
		return;
	c->ns_scope[c->n_ns] = scope;
	c->ns[c->n_ns++] = a;
}

void tu_resolv_conf_parse(const char *text, size_t len, struct tu_resolv_conf *ret)
{
	struct tu_resolv_conf c = {.ndots = 1, .timeout = 5, .attempts = 2};
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		const char *le = nl ? nl : end;
		const char *kw, *tok;
		size_t kwn, tokn;
		const char *q = p;

		p = nl ? nl + 1 : end;
		if (!next_token(&q, le, &kw, &kwn) || kw[0] == '#' || kw[0] == ';')
			continue;
		if (kwn == 10 && memcmp(kw, "nameserver", 10) == 0) {
			if (next_token(&q, le, &tok, &tokn))
				conf_nameserver(&c, tok, tokn);
		} else if ((kwn == 6 && memcmp(kw, "domain", 6) == 0) ||
			   (kwn == 6 && memcmp(kw, "search", 6) == 0)) {
			bool one = kw[0] == 'd';
			c.n_search = 0; /* the last domain/search line wins, as in glibc */
			while (c.n_search < (one ? 1u : TU_RESOLVE_MAX_SEARCH) &&
			       next_token(&q, le, &tok, &tokn)) {
				if (tok[0] == '#' || tok[0] == ';')
					break;
				if (!valid_name(tok, tokn) || (tokn == 1 && tok[0] == '.'))
					continue;
				memcpy(c.search[c.n_search], tok, tokn);
				c.search[c.n_search][tokn] = '\0';
				normalize(c.search[c.n_search], c.search[c.n_search]);
				c.n_search++;
			}
		} else if (kwn == 7 && memcmp(kw, "options", 7) == 0) {
			while (next_token(&q, le, &tok, &tokn)) {
				unsigned v;
				if (tokn > 6 && memcmp(tok, "ndots:", 6) == 0 &&
				    small_uint(tok + 6, tokn - 6, 15, &v))
					c.ndots = v;
				else if (tokn > 8 && memcmp(tok, "timeout:", 8) == 0 &&
					 small_uint(tok + 8, tokn - 8, 30, &v))
					c.timeout = v ? v : 1;
				else if (tokn > 9 && memcmp(tok, "attempts:", 9) == 0 &&
					 small_uint(tok + 9, tokn - 9, 5, &v))
					c.attempts = v ? v : 1;
			}
		}
	}
	if (c.n_ns == 0) {
		c.n_ns = 1;
		c.ns[0].family = AF_INET;
		c.ns[0].a[0] = 127;
		c.ns[0].a[3] = 1;
	}
	*ret = c;
}

/* One hosts-file line: adds its address when one of its names is host. */
static size_t hosts_line(const char *line, size_t len, const char *host, size_t hlen,
			 struct tu_resolve_result *ret)
{
	const char *hash = memchr(line, '#', len);
	const char *end = hash ? hash : line + len;
	const char *p = line, *tok;
	size_t tokn;
	char buf[INET6_ADDRSTRLEN + 1];
	struct tu_resolve_addr a;

	if (!next_token(&p, end, &tok, &tokn) || tokn >= sizeof(buf))
		return 0;
	memcpy(buf, tok, tokn);
	buf[tokn] = '\0';
	if (!parse_numeric(buf, &a))
		return 0;
	while (next_token(&p, end, &tok, &tokn)) {
		if (tokn > 1 && tok[tokn - 1] == '.')
			tokn--;
		if (ascii_ieq(tok, tokn, host, hlen))
			return add_addr(ret, &a) ? 1 : 0;
	}
	return 0;
}

size_t tu_hosts_lookup(const char *text, size_t len, const char *host,
		       struct tu_resolve_result *ret)
{
	char h[TU_RESOLVE_MAX_NAME + 1];
	const char *p = text, *end = text + len;
	size_t added = 0;

	normalize(host, h);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		const char *le = nl ? nl : end;
		if ((size_t) (le - p) <= MAX_HOSTS_LINE)
			added += hosts_line(p, (size_t) (le - p), h, strlen(h), ret);
		p = nl ? nl + 1 : end;
	}
	return added;
}

/* Streams the hosts file (it can be megabytes of block lists) a buffer at a time. */
static size_t hosts_file_lookup(const char *path, const char *host, uint64_t deadline,
				struct tu_resolve_result *ret)
{
	_cleanup_close_ int fd = -1;
	char buf[16384];
	size_t have = 0, added = 0;
	bool skipping = false; /* inside a line longer than the buffer */

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (have > 0 && !skipping)
				added += tu_hosts_lookup(buf, have, host, ret);
			return added;
		}
		have += (size_t) r;
		char *nl = memrchr(buf, '\n', have);
		if (!nl) {
			if (have == sizeof(buf)) {
				skipping = true;
				have = 0;
			}
			continue;
		}
		size_t whole = (size_t) (nl - buf) + 1;
		char *start = buf;
		if (skipping) {
			char *first = memchr(buf, '\n', whole);
			start = first + 1;
			skipping = false;
		}
		added += tu_hosts_lookup(start, (size_t) (buf + whole - start), host, ret);
		memmove(buf, buf + whole, have - whole);
		have -= whole;
		if (now_usec() >= deadline)
			return added;
	}
}

static void read_resolv_conf(const char *path, struct tu_resolv_conf *ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t have = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	buf = fd >= 0 ? malloc(MAX_RESOLV_CONF) : NULL;
	while (buf && have < MAX_RESOLV_CONF) {
		ssize_t r = read(fd, buf + have, MAX_RESOLV_CONF - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t) r;
	}
	tu_resolv_conf_parse(buf ? buf : "", have, ret);
}

/* ------------------------------------------------------------ DNS messages */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t) ((p[0] << 8) | p[1]);
}

int tu_dns_build_query(const char *name, uint16_t qtype, uint16_t id, uint8_t *buf, size_t size)
{
	size_t n = strlen(name), o = 12;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (!valid_name(name, n))
		return -EINVAL;
	if (size < 12 + n + 2 + 4)
		return -ENOBUFS;
	memset(buf, 0, 12);
	buf[0] = (uint8_t) (id >> 8);
	buf[1] = (uint8_t) id;
	buf[2] = 0x01; /* RD */
	buf[5] = 1;    /* QDCOUNT */
	for (size_t i = 0; i < n;) {
		const char *dot = memchr(name + i, '.', n - i);
		size_t l = dot ? (size_t) (dot - (name + i)) : n - i;
		buf[o++] = (uint8_t) l;
		for (size_t k = 0; k < l; k++)
			buf[o++] = (uint8_t) ascii_lower(name[i + k]);
		i += l + 1;
	}
	buf[o++] = 0;
	buf[o++] = (uint8_t) (qtype >> 8);
	buf[o++] = (uint8_t) qtype;
	buf[o++] = 0;
	buf[o++] = DNS_CLASS_IN;
	return (int) o;
}

/*
 * Reads a possibly compressed name at *off into out (lower case, dotted, no
 * trailing dot; "" for the root) and moves *off past it.  -1 when malformed:
 * out of bounds, a pointer loop, over 253 bytes, or a label holding '.' or NUL.
 */
static int read_name(const uint8_t *m, size_t len, size_t *off, char *out)
{
	size_t pos = *off, olen = 0;
	bool jumped = false;
	unsigned hops = 0;

	for (;;) {
		if (pos >= len)
			return -1;
		uint8_t l = m[pos];
		if ((l & 0xC0) == 0xC0) {
			if (pos + 1 >= len || ++hops > 64)
				return -1;
			if (!jumped)
				*off = pos + 2;
			jumped = true;
			pos = ((size_t) (l & 0x3F) << 8) | m[pos + 1];
			continue;
		}
		if (l & 0xC0)
			return -1;
		if (l == 0) {
			if (!jumped)
				*off = pos + 1;
			break;
		}
		if (pos + 1 + l > len || olen + (olen ? 1u : 0u) + l > TU_RESOLVE_MAX_NAME)
			return -1;
		if (olen)
			out[olen++] = '.';
		for (size_t i = 0; i < l; i++) {
			char c = (char) m[pos + 1 + i];
			if (c == '.' || c == '\0')
				return -1;
			out[olen++] = ascii_lower(c);
		}
		pos += 1 + (size_t) l;
	}
	out[olen] = '\0';
	return 0;
}

struct rr {
	char owner[TU_RESOLVE_MAX_NAME + 1];
	uint16_t type, class;
	uint32_t ttl;
	size_t rdoff, rdlen;
};

static int read_rr(const uint8_t *m, size_t len, size_t *off, struct rr *rr)
{
	if (read_name(m, len, off, rr->owner) < 0 || *off + 10 > len)
		return -1;
	const uint8_t *p = m + *off;
	rr->type = be16(p);
	rr->class = be16(p + 2);
	rr->ttl = ((uint32_t) p[4] << 24) | ((uint32_t) p[5] << 16) | ((uint32_t) p[6] << 8) | p[7];
	rr->rdlen = be16(p + 8);
	rr->rdoff = *off + 10;
	if (rr->rdoff + rr->rdlen > len)
		return -1;
	*off = rr->rdoff + rr->rdlen;
	return 0;
}

static bool in_chain(char chain[][TU_RESOLVE_MAX_NAME + 1], size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(chain[i], s) == 0)
			return true;
	return false;
}

int tu_dns_parse_answer(const uint8_t *msg, size_t len, const char *name, uint16_t qtype,
			uint16_t id, struct tu_resolve_result *ret, int *ret_truncated)
{
	char chain[MAX_CNAME_CHAIN + 1][TU_RESOLVE_MAX_NAME + 1];
	size_t n_chain = 1, off = 12, an_start;
	struct rr rr;

	if (len < 12 || be16(msg) != id)
		return -EBADMSG;
	uint16_t flags = be16(msg + 2);
	if (!(flags & 0x8000) || ((flags >> 11) & 0xF) != 0 || be16(msg + 4) != 1)
		return -EBADMSG;
	unsigned an = be16(msg + 6);
	int rcode = flags & 0xF;
	normalize(name, chain[0]);
	if (read_name(msg, len, &off, rr.owner) < 0 || off + 4 > len ||
	    strcmp(rr.owner, chain[0]) != 0 || be16(msg + off) != qtype ||
	    be16(msg + off + 2) != DNS_CLASS_IN)
		return -EBADMSG;
	off += 4;
	*ret_truncated = (flags & 0x0200) != 0;
	if (rcode != 0)
		return rcode;
	if (an > MAX_ANSWER_RR)
		an = MAX_ANSWER_RR;
	an_start = off;

	/* Follow CNAMEs from the question's name, whatever order they come in. */
	for (bool grew = true; grew && n_chain <= MAX_CNAME_CHAIN;) {
		grew = false;
		off = an_start;
		for (unsigned i = 0; i < an && n_chain <= MAX_CNAME_CHAIN; i++) {
			if (read_rr(msg, len, &off, &rr) < 0)
				break; /* a truncated tail: use what came before */
			if (rr.type != DNS_QTYPE_CNAME || rr.class != DNS_CLASS_IN ||
			    strcmp(rr.owner, chain[n_chain - 1]) != 0)
				continue;
			size_t t = rr.rdoff;
			if (read_name(msg, len, &t, chain[n_chain]) < 0 ||
			    in_chain(chain, n_chain, chain[n_chain]))
				continue;
			n_chain++;
			grew = true;
		}
	}
	off = an_start;
	for (unsigned i = 0; i < an; i++) {
		struct tu_resolve_addr a = {0};
		if (read_rr(msg, len, &off, &rr) < 0)
			break;
		if (rr.type != qtype || rr.class != DNS_CLASS_IN ||
		    !in_chain(chain, n_chain, rr.owner))
			continue;
		if ((qtype == DNS_QTYPE_A && rr.rdlen != 4) ||
		    (qtype == DNS_QTYPE_AAAA && rr.rdlen != 16))
			continue;
		a.family = qtype == DNS_QTYPE_A ? AF_INET : AF_INET6;
		memcpy(a.a, msg + rr.rdoff, rr.rdlen);
		if (add_addr(ret, &a) && rr.ttl < ret->ttl_sec)
			ret->ttl_sec = rr.ttl;
	}
	return 0;
}

int tu_resolve_format_list(const struct tu_resolve_result *r, char *buf, size_t size)
{
	size_t o = 0;

	if (size == 0)
		return -ENOBUFS;
	buf[0] = '\0';
	for (size_t i = 0; i < r->n; i++) {
		char a[INET6_ADDRSTRLEN];
		if (!inet_ntop(r->addr[i].family, r->addr[i].a, a, sizeof(a)))
			return -ENOBUFS;
		bool v6 = r->addr[i].family == AF_INET6;
		int k = snprintf(buf + o, size - o, "%s%s%s%s", i ? "," : "", v6 ? "[" : "", a,
				 v6 ? "]" : "");
		if (k < 0 || (size_t) k >= size - o)
			return -ENOBUFS;
		o += (size_t) k;
	}
	return 0;
}

/* ------------------------------------------------------------ DNS client */

struct query {
	uint16_t qtype, id;
	uint8_t pkt[12 + TU_RESOLVE_MAX_NAME + 2 + 4];
	size_t len;
	bool done;        /* an answer (NOERROR or NXDOMAIN) arrived */
	bool failed_here; /* the server of the current try refused it */
	struct tu_resolve_result res;
};

struct dns {
	const struct tu_resolv_conf *conf;
	uint16_t port;
	int fd[2];      /* AF_INET, AF_INET6; -1 when none */
	int last_rcode; /* last failure code from a server, 0 none */
	int last_errno; /* last sendto() failure, 0 none */
	char last_server[INET6_ADDRSTRLEN];
	bool truncated;
	bool nxdomain; /* of the name being looked up */
};

static uint16_t random_id(void)
{
	uint16_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t) sizeof(v))
		return v;
	/* No entropy yet (early boot): still unpredictable enough to a remote
	 * guesser that cannot see our clock; TLS is what authenticates Auth. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint16_t) (ts.tv_nsec ^ (ts.tv_nsec >> 16) ^ getpid());
}

static socklen_t ns_sockaddr(const struct dns *d, size_t i, struct sockaddr_storage *ss)
{
	const struct tu_resolve_addr *a = &d->conf->ns[i];

	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *) ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(d->port);
		memcpy(&s4->sin_addr, a->a, 4);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(d->port);
	s6->sin6_scope_id = d->conf->ns_scope[i];
	memcpy(&s6->sin6_addr, a->a, 16);
	return sizeof(*s6);
}

/* Whether a datagram came from one of our nameservers' port 53. */
static bool from_nameserver(const struct dns *d, const struct sockaddr_storage *from)
{
	for (size_t i = 0; i < d->conf->n_ns; i++) {
		const struct tu_resolve_addr *a = &d->conf->ns[i];
		if (from->ss_family != a->family)
			continue;
		if (a->family == AF_INET) {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *) from;
			if (ntohs(s4->sin_port) == d->port && memcmp(&s4->sin_addr, a->a, 4) == 0)
				return true;
		} else {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *) from;
			if (ntohs(s6->sin6_port) == d->port &&
			    memcmp(&s6->sin6_addr, a->a, 16) == 0)
				return true;
		}
	}
	return false;
}

/* Sends every unanswered query to nameserver i; false when none could be sent. */
static bool send_try(struct dns *d, size_t i, struct query *q, size_t nq)
{
	struct sockaddr_storage ss;
	socklen_t sl = ns_sockaddr(d, i, &ss);
	int fd = d->fd[d->conf->ns[i].family == AF_INET ? 0 : 1];
	bool sent = false;

	(void) inet_ntop(d->conf->ns[i].family, d->conf->ns[i].a, d->last_server,
			 sizeof(d->last_server));
	for (size_t k = 0; k < nq; k++) {
		if (q[k].done)
			continue;
		q[k].failed_here = false;
		if (fd < 0) {
			d->last_errno = EAFNOSUPPORT;
			q[k].failed_here = true;
			continue;
		}
		if (sendto(fd, q[k].pkt, q[k].len, MSG_NOSIGNAL, (struct sockaddr *) &ss, sl) < 0) {
			d->last_errno = errno;
			q[k].failed_here = true;
			continue;
		}
		sent = true;
	}
	return sent;
}

static void receive(struct dns *d, int fd, const char *name, struct query *q, size_t nq)
{
	uint8_t buf[DNS_MAX_UDP];

	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n =
		    recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *) &from, &fl);
		if (n < 0)
			return; /* EAGAIN, or an ICMP error for an earlier send: poll again */
		if (!from_nameserver(d, &from))
			continue;
		for (size_t k = 0; k < nq; k++) {
			struct tu_resolve_result r = q[k].res;
			int tc = 0;
			if (q[k].done)
				continue;
			int rc = tu_dns_parse_answer(buf, (size_t) n, name, q[k].qtype, q[k].id, &r,
						     &tc);
			if (rc == -EBADMSG)
				continue;
			if (rc == 0 || rc == 3) {
				q[k].res = r;
				q[k].done = true;
				if (tc && r.n == 0)
					d->truncated = true;
				if (rc == 3) { /* NXDOMAIN: the name has no record of any type */
					d->nxdomain = true;
					for (size_t j = 0; j < nq; j++)
						q[j].done = true;
				}
			} else {
				d->last_rcode = rc;
				q[k].failed_here = true;
			}
			break;
		}
	}
}

static bool all_done(const struct query *q, size_t nq)
{
	for (size_t k = 0; k < nq; k++)
		if (!q[k].done)
			return false;
	return true;
}

static bool all_failed_or_done(const struct query *q, size_t nq)
{
	for (size_t k = 0; k < nq; k++)
		if (!q[k].done && !q[k].failed_here)
			return false;
	return true;
}

/*
 * Asks for name's A and AAAA records.  Returns 0 with addresses in *res,
 * -ENOENT (NXDOMAIN), -ENODATA (no address record), -EHOSTUNREACH (every
 * server failed), -ETIMEDOUT (no answer in time).
 */
static int dns_lookup(struct dns *d, const char *name, uint64_t deadline,
		      struct tu_resolve_result *res)
{
	struct query q[2] = {{.qtype = DNS_QTYPE_A}, {.qtype = DNS_QTYPE_AAAA}};
	const size_t nq = ELEMENTSOF(q);
	size_t n_tries = (size_t) d->conf->attempts * d->conf->n_ns, tried = 0;
	uint64_t try_end = 0, grace_end = 0;

	d->nxdomain = false;

	for (size_t k = 0; k < nq; k++) {
		q[k].id = random_id();
		q[k].res.ttl_sec = TU_RESOLVE_CACHE_MAX_S;
		int n = tu_dns_build_query(name, q[k].qtype, q[k].id, q[k].pkt, sizeof(q[k].pkt));
		if (n < 0)
			return -ENOENT;
		q[k].len = (size_t) n;
	}
	for (;;) {
		uint64_t now = now_usec();
		if (all_done(q, nq) || now >= deadline || (grace_end && now >= grace_end))
			break;
		if (now >= try_end || all_failed_or_done(q, nq)) {
			if (tried >= n_tries) {
				if (now >= try_end || all_failed_or_done(q, nq))
					break;
			} else {
				uint64_t left = deadline - now;
				uint64_t slice = left / (n_tries - tried);
				uint64_t cap = (uint64_t) d->conf->timeout * 1000000u;
				if (slice < MIN_TRY_USEC)
					slice = left < MIN_TRY_USEC ? left : MIN_TRY_USEC;
				if (slice > cap)
					slice = cap;
				size_t i = tried % d->conf->n_ns;
				tried++;
				try_end = now + slice;
				if (!send_try(d, i, q, nq)) {
					try_end = now;
					continue;
				}
			}
		}
		uint64_t until = try_end < deadline ? try_end : deadline;
		if (grace_end && grace_end < until)
			until = grace_end;
		struct pollfd p[2];
		nfds_t np = 0;
		for (int f = 0; f < 2; f++)
			if (d->fd[f] >= 0)
				p[np++] = (struct pollfd){.fd = d->fd[f], .events = POLLIN};
		int ms = until > now ? (int) ((until - now + 999) / 1000) : 0;
		int pr = poll(p, np, ms);
		if (pr < 0 && errno != EINTR)
			return -EHOSTUNREACH;
		for (nfds_t f = 0; pr > 0 && f < np; f++)
			if (p[f].revents)
				receive(d, p[f].fd, name, q, nq);
		/* One family answered with addresses: give the other a short grace only
		 * (some servers never answer AAAA queries). */
		if (!grace_end && (q[0].res.n || q[1].res.n) && !all_done(q, nq))
			grace_end = now_usec() + GRACE_USEC;
	}
	for (size_t k = 0; k < nq; k++)
		for (size_t i = 0; i < q[k].res.n; i++)
			if (add_addr(res, &q[k].res.addr[i]) && q[k].res.ttl_sec < res->ttl_sec)
				res->ttl_sec = q[k].res.ttl_sec;
	if (res->n > 0)
		return 0;
	if (all_done(q, nq))
		return d->nxdomain ? -ENOENT : d->truncated ? -EHOSTUNREACH : -ENODATA;
	if (now_usec() >= deadline || (!d->last_rcode && !d->last_errno))
		return -ETIMEDOUT;
	return -EHOSTUNREACH;
}

static const char *rcode_name(int rc)
{
	switch (rc) {
	case 1:
		return "FORMERR";
	case 2:
		return "SERVFAIL";
	case 4:
		return "NOTIMP";
	case 5:
		return "REFUSED";
	default:
		return "an error";
	}
}

static int resolve_dns(const char *host, uint64_t start, uint64_t deadline,
		       const struct tu_resolve_opts *opts, struct tu_resolve_result *ret,
		       struct tu_err *reterr)
{
	struct tu_resolv_conf conf;
	char cand[TU_RESOLVE_MAX_SEARCH + 1][TU_RESOLVE_MAX_NAME + 1];
	size_t n_cand = 0, dots = 0;
	char h[TU_RESOLVE_MAX_NAME + 1];
	struct dns d = {.conf = &conf, .fd = {-1, -1}};
	int r = -ENOENT;
	bool absolute = host[strlen(host) - 1] == '.';

	read_resolv_conf(opts && opts->resolv_conf_path ? opts->resolv_conf_path : RESOLV_CONF_PATH,
			 &conf);
	d.port = opts && opts->dns_port ? opts->dns_port : 53;
	normalize(host, h);
	for (const char *c = h; *c; c++)
		dots += *c == '.';

	/* Candidates in glibc's order: as given first when it has ndots dots. */
	if (absolute || dots >= conf.ndots)
		snprintf(cand[n_cand++], sizeof(cand[0]), "%s", h);
	for (size_t i = 0; !absolute && i < conf.n_search; i++) {
		size_t hl = strlen(h), sl = strlen(conf.search[i]);
		if (hl + 1 + sl > TU_RESOLVE_MAX_NAME)
			continue;
		memcpy(cand[n_cand], h, hl);
		cand[n_cand][hl] = '.';
		memcpy(cand[n_cand] + hl + 1, conf.search[i], sl + 1);
		n_cand++;
	}
	if (!absolute && dots < conf.ndots)
		snprintf(cand[n_cand++], sizeof(cand[0]), "%s", h);

	for (size_t i = 0; i < conf.n_ns; i++) {
		int f = conf.ns[i].family == AF_INET ? 0 : 1;
		if (d.fd[f] < 0) {
			d.fd[f] =
			    socket(conf.ns[i].family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (d.fd[f] < 0)
				d.last_errno = errno;
		}
	}
	if (d.fd[0] < 0 && d.fd[1] < 0) {
		int e = d.last_errno ? d.last_errno : EAFNOSUPPORT;
		return tu_err_set(reterr,
				  e == EMFILE || e == ENFILE || e == ENOMEM ? -e : -EHOSTUNREACH,
				  "cannot resolve %s: no socket for DNS: %s", host, strerror(e));
	}

	int worst = -ENOENT;
	for (size_t i = 0; i < n_cand; i++) {
		struct tu_resolve_result res = {.source = TU_RESOLVE_DNS,
						.ttl_sec = TU_RESOLVE_CACHE_MAX_S};
		r = dns_lookup(&d, cand[i], deadline, &res);
		if (r == 0) {
			*ret = res;
			break;
		}
		if (r == -ETIMEDOUT) {
			worst = r;
			break;
		}
		/* Keep the most telling reason: a failing server over "no such name". */
		if (r == -EHOSTUNREACH || (r == -ENODATA && worst == -ENOENT))
			worst = r;
	}
	for (int f = 0; f < 2; f++)
		if (d.fd[f] >= 0)
			(void) close(d.fd[f]);
	if (r == 0)
		return 0;

	uint64_t ms = (now_usec() - start) / 1000;
	switch (worst) {
	case -ETIMEDOUT:
		return tu_err_set(
		    reterr, -ETIMEDOUT,
		    "cannot resolve %s: no answer from the DNS server%s (%s%s) within %llu ms",
		    host, conf.n_ns > 1 ? "s" : "", d.last_server,
		    conf.n_ns > 1 ? " and others in resolv.conf" : "", (unsigned long long) ms);
	case -ENODATA:
		return tu_err_set(reterr, -EHOSTUNREACH,
				  "cannot resolve %s: the name has no address (A/AAAA) record",
				  host);
	case -EHOSTUNREACH:
		if (d.truncated)
			return tu_err_set(
			    reterr, -EHOSTUNREACH,
			    "cannot resolve %s: the DNS answer was truncated and held no address",
			    host);
		if (d.last_rcode)
			return tu_err_set(reterr, -EHOSTUNREACH,
					  "cannot resolve %s: DNS server %s answered %s", host,
					  d.last_server, rcode_name(d.last_rcode));
		return tu_err_set(reterr, -EHOSTUNREACH, "cannot resolve %s: DNS server %s: %s",
				  host, d.last_server, strerror(d.last_errno ? d.last_errno : EIO));
	default:
		return tu_err_set(reterr, -EHOSTUNREACH,
				  "cannot resolve %s: no such host (not in %s, DNS: NXDOMAIN)",
				  host, opts && opts->hosts_path ? opts->hosts_path : HOSTS_PATH);
	}
}

int tu_resolve(const char *host, uint64_t deadline_usec, const struct tu_resolve_opts *opts,
	       struct tu_resolve_result *ret, struct tu_err *reterr)
{
	struct tu_resolve_result res = {.ttl_sec = TU_RESOLVE_CACHE_MAX_S};
	char safe[64];
	uint64_t start = now_usec();

	if (!host || !parse_numeric(host, &res.addr[0])) {
		size_t n = host ? strlen(host) : 0;
		if (!host || !valid_name(host, n) || (n == 1 && host[0] == '.')) {
			tu_sanitize(host ? host : "(null)", safe, sizeof(safe));
			return tu_err_set(reterr, -EINVAL, "'%s' is not a valid host name", safe);
		}
	} else {
		res.source = TU_RESOLVE_NUMERIC;
		res.n = 1;
		*ret = res;
		return 0;
	}
	if (start >= deadline_usec)
		return tu_err_set(reterr, -ETIMEDOUT, "deadline passed before resolving %s", host);
	res.source = TU_RESOLVE_HOSTS;
	if (hosts_file_lookup(opts && opts->hosts_path ? opts->hosts_path : HOSTS_PATH, host,
			      deadline_usec, &res) > 0) {
		*ret = res;
		return 0;
	}
	return resolve_dns(host, start, deadline_usec, opts, ret, reterr);
}
