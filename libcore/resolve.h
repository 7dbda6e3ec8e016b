/* SPDX-License-Identifier: Apache-2.0 */
/*
 * resolve.h - turning an Auth host name into addresses without NSS, without
 * a thread and never past a deadline.  Layer: libcore (libc only).
 *
 * Why not getaddrinfo() (or libcurl, which calls it in a thread): it goes
 * through NSS, so from inside our NSS module it would recurse into NSS with
 * glibc's locks held; its DNS timeout is glibc's (5 s x attempts x servers),
 * not ours; and libcurl runs it in a thread that it joins when its own
 * timeout fires, so a silent DNS server held sshd past the budget.
 *
 * Order (docs/transport.md): a numeric IPv4/IPv6 address is used as it is;
 * else the first /etc/hosts line(s) naming the host (case-insensitive, every
 * address of every matching line); else DNS over UDP to the nameservers of
 * /etc/resolv.conf (A and AAAA, with its search list and ndots), with our
 * own small client: one non-blocking socket per family, poll() bounded by
 * the deadline, random query ids, answers accepted only from a server we
 * asked and only for the question we asked.  Nothing reads the environment
 * (RES_OPTIONS, LOCALDOMAIN, HOSTALIASES are ignored); every descriptor is
 * close-on-exec and closed before returning.  Thread-safe (no state).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct tu_err;

#define TU_RESOLVE_MAX_ADDRS   8   /* addresses kept per name */
#define TU_RESOLVE_MAX_NS      3   /* nameservers used, as glibc */
#define TU_RESOLVE_MAX_SEARCH  6   /* search domains used, as glibc */
#define TU_RESOLVE_MAX_NAME    253 /* a DNS name in text form */
#define TU_RESOLVE_CACHE_MAX_S 300 /* longest reuse of an answer by a caller */

enum tu_resolve_source {
	TU_RESOLVE_NUMERIC,
	TU_RESOLVE_HOSTS,
	TU_RESOLVE_DNS,
};

struct tu_resolve_addr {
	int family;          /* AF_INET or AF_INET6 */
	unsigned char a[16]; /* network order; 4 bytes used for AF_INET */
};

struct tu_resolve_result {
	enum tu_resolve_source source;
	size_t n; /* >= 1 on success */
	struct tu_resolve_addr addr[TU_RESOLVE_MAX_ADDRS];
	uint32_t ttl_sec; /* DNS: smallest TTL of the records used, capped at
			     TU_RESOLVE_CACHE_MAX_S; numeric/hosts: TU_RESOLVE_CACHE_MAX_S */
};

/* Test hooks; NULL (or a NULL/0 member) means the system's. */
struct tu_resolve_opts {
	const char *hosts_path;       /* default /etc/hosts */
	const char *resolv_conf_path; /* default /etc/resolv.conf */
	uint16_t dns_port;            /* default 53 */
};

/* What /etc/resolv.conf says, as far as we use it. */
struct tu_resolv_conf {
	size_t n_ns;
	struct tu_resolve_addr ns[TU_RESOLVE_MAX_NS];
	uint32_t ns_scope[TU_RESOLVE_MAX_NS]; /* IPv6 scope id (fe80::1%eth0), else 0 */
	size_t n_search;
	char search[TU_RESOLVE_MAX_SEARCH][TU_RESOLVE_MAX_NAME + 1];
	unsigned ndots;    /* default 1, at most 15 */
	unsigned timeout;  /* seconds per try, default 5, at most 30 */
	unsigned attempts; /* rounds over the servers, default 2, at most 5 */
};

/*
 * Resolves host (a name or a numeric address, no brackets) to at most
 * TU_RESOLVE_MAX_ADDRS addresses, returning by deadline_usec
 * (CLOCK_MONOTONIC, tu_transport_now_usec()) whatever the DNS servers do.
 * opts: NULL for the system files.  *ret is written only on success.
 * Errors (message in reterr names the host and why):
 *   -EINVAL        not a valid host name
 *   -EHOSTUNREACH  no such host (NXDOMAIN), no address records, or every
 *                  server failed (SERVFAIL, REFUSED, unreachable)
 *   -ETIMEDOUT     no answer by the deadline (or the deadline had passed)
 *   -ENOMEM, or the errno of socket() (e.g. -EMFILE)
 */
int tu_resolve(const char *host, uint64_t deadline_usec, const struct tu_resolve_opts *opts,
	       struct tu_resolve_result *ret, struct tu_err *reterr);

/*
 * Parses resolv.conf text (len bytes, need not be NUL-terminated) into
 * *ret.  Unknown lines and options are ignored, as glibc does; with no
 * usable nameserver line the server is 127.0.0.1.  Never fails.  Pure.
 */
void tu_resolv_conf_parse(const char *text, size_t len, struct tu_resolv_conf *ret);

/*
 * Looks host up in hosts-file text (len bytes): every address of every line
 * naming it (canonical name or alias, ASCII case-insensitive, a trailing dot
 * ignored) is appended to *ret (n starts at ret->n; at most
 * TU_RESOLVE_MAX_ADDRS; duplicates dropped).  Lines longer than 4096 bytes
 * are skipped.  Returns the number of addresses added.  Pure.
 */
size_t tu_hosts_lookup(const char *text, size_t len, const char *host,
		       struct tu_resolve_result *ret);

/*
 * DNS messages, exposed for tests.  tu_dns_build_query() writes a query
 * (recursion desired) for name (text, no trailing dot needed) and qtype
 * (1 = A, 28 = AAAA) with the given id into buf; returns its length, or
 * -EINVAL (bad name) / -ENOBUFS.
 *
 * tu_dns_parse_answer() checks that msg answers exactly that query (id,
 * QR, opcode, the one question) and collects the A or AAAA records of the
 * name, following CNAMEs (at most 8), into *ret (appending, deduplicated,
 * ttl_sec lowered to the smallest TTL used).  Returns the DNS RCODE (0
 * NOERROR, 3 NXDOMAIN, ...) with *ret_truncated set from the TC bit, or
 * -EBADMSG when msg is not a well-formed answer to the query (ignore it).
 */
int tu_dns_build_query(const char *name, uint16_t qtype, uint16_t id, uint8_t *buf, size_t size);
int tu_dns_parse_answer(const uint8_t *msg, size_t len, const char *name, uint16_t qtype,
			uint16_t id, struct tu_resolve_result *ret, int *ret_truncated);

/*
 * Formats r's addresses as "a,b,[v6]" (libcurl's CURLOPT_RESOLVE list)
 * into buf.  Returns 0, or -ENOBUFS.
 */
int tu_resolve_format_list(const struct tu_resolve_result *r, char *buf, size_t size);
