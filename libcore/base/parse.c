/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parse.c - strict number, duration, size and host:port parsers (see parse.h).
 * Layer: libcore/base (libc only).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC  UINT64_C(1000000)

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int tu_parse_digits(const char **cursor, const char *end, uint64_t *ret)
{
	const char *p = *cursor;
	uint64_t v = 0;

	if (p >= end || !is_digit(*p))
		return -EINVAL;
	for (; p < end && is_digit(*p); p++) {
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t) (*p - '0'), &v))
			return -ERANGE;
	}
	*cursor = p;
	*ret = v;
	return 0;
}

int tu_parse_u64(const char *s, uint64_t *ret)
{
	const char *p = s, *end;
	uint64_t v;
	int r;

	if (!s)
		return -EINVAL;
	end = s + strlen(s);
	r = tu_parse_digits(&p, end, &v);
	if (r < 0)
		return r;
	if (p != end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int tu_parse_u32(const char *s, uint32_t *ret)
{
	uint64_t v;
	int r = tu_parse_u64(s, &v);

	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return -ERANGE;
	*ret = (uint32_t) v;
	return 0;
}

struct unit {
	const char *name;
	uint64_t mult;
};

static const struct unit duration_units[] = {
	{ "us", 1 },
	{ "ms", USEC_PER_MSEC },
	{ "s", USEC_PER_SEC },
	{ "m", 60 * USEC_PER_SEC },
	{ "h", 3600 * USEC_PER_SEC },
	{ "d", 86400 * USEC_PER_SEC },
};

/* Matches the unit spelled [p, q) exactly against table. */
static const struct unit *find_unit(const struct unit *table, size_t n, const char *p, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(table[i].name) == len && memcmp(table[i].name, p, len) == 0)
			return &table[i];
	return NULL;
}

int tu_parse_duration(const char *s, uint64_t *ret_usec)
{
	const char *p, *end;
	uint64_t total = 0;
	int r;

	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "0") == 0) {
		*ret_usec = 0;
		return 0;
	}
	p = s;
	end = s + strlen(s);
	while (p < end) {
		uint64_t whole = 0, frac = 0, scale = 1, v;
		bool have_whole, have_frac = false;
		const struct unit *u;
		const char *q;

		/* number: digits, optional '.' and digits; at least one digit overall */
		have_whole = is_digit(*p);
		if (have_whole) {
			r = tu_parse_digits(&p, end, &whole);
			if (r < 0)
				return r;
		}
		if (p < end && *p == '.') {
			p++;
			for (; p < end && is_digit(*p); p++) {
				have_frac = true;
				if (scale < USEC_PER_SEC) { /* keep 6 digits, ignore the rest */
					frac = frac * 10 + (uint64_t) (*p - '0');
					scale *= 10;
				}
			}
			if (!have_frac)
				return -EINVAL; /* "1.s" */
		}
		if (!have_whole && !have_frac)
			return -EINVAL;

		for (q = p; q < end && is_alpha(*q); q++)
			;
		u = find_unit(duration_units, sizeof(duration_units) / sizeof(duration_units[0]), p,
			      (size_t) (q - p));
		if (!u)
			return -EINVAL;
		p = q;

		if (__builtin_mul_overflow(whole, u->mult, &v) ||
		    __builtin_add_overflow(total, v, &total))
			return -ERANGE;
		/* frac < 10^6 and mult <= 8.64e10, so the product fits in 64 bits */
		if (__builtin_add_overflow(total, frac * u->mult / scale, &total))
			return -ERANGE;
	}
	*ret_usec = total;
	return 0;
}

static const struct unit size_units[] = {
	{ "", 1 },
	{ "B", 1 },
	{ "K", UINT64_C(1) << 10 },
	{ "KiB", UINT64_C(1) << 10 },
	{ "M", UINT64_C(1) << 20 },
	{ "MiB", UINT64_C(1) << 20 },
	{ "G", UINT64_C(1) << 30 },
	{ "GiB", UINT64_C(1) << 30 },
};

int tu_parse_size(const char *s, uint64_t *ret_bytes)
{
	const char *p, *end;
	const struct unit *u;
	uint64_t v;
	int r;

	if (!s)
		return -EINVAL;
	p = s;
	end = s + strlen(s);
	r = tu_parse_digits(&p, end, &v);
	if (r < 0)
		return r;
	u = find_unit(size_units, sizeof(size_units) / sizeof(size_units[0]), p, (size_t) (end - p));
	if (!u)
		return -EINVAL;
	if (__builtin_mul_overflow(v, u->mult, &v))
		return -ERANGE;
	*ret_bytes = v;
	return 0;
}

static bool is_host_char(char c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

/* [p, p+len): a DNS name or a dotted IPv4 address. */
static int check_hostname(const char *p, size_t len)
{
	bool all_numeric = true;
	char tmp[16];

	if (len == 0 || len > TU_PARSE_HOST_MAX)
		return -EINVAL;
	if (p[0] == '-' || p[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!is_host_char(p[i]))
			return -EINVAL;
		if (p[i] == '.' && i + 1 < len && p[i + 1] == '.')
			return -EINVAL; /* empty label */
		if (!is_digit(p[i]) && p[i] != '.')
			all_numeric = false;
	}
	/* "300.1.1.1" or "1.2.3" would be sent to DNS and fail obscurely: refuse now. */
	if (all_numeric) {
		if (len >= sizeof(tmp))
			return -EINVAL;
		memcpy(tmp, p, len);
		tmp[len] = '\0';
		struct in_addr a;
		if (inet_pton(AF_INET, tmp, &a) != 1)
			return -EINVAL;
	}
	return 0;
}

int tu_parse_check_hostname(const char *s)
{
	if (!s)
		return -EINVAL;
	return check_hostname(s, strlen(s));
}

/* [p, p+len): an IPv6 address with an optional %zone, as found between brackets. */
static int check_ipv6(const char *p, size_t len)
{
	char tmp[64];
	const char *pct;
	size_t alen;
	struct in6_addr a;

	if (len == 0 || len >= sizeof(tmp))
		return -EINVAL;
	pct = memchr(p, '%', len);
	alen = pct ? (size_t) (pct - p) : len;
	if (pct) {
		size_t zlen = len - alen - 1;
		if (zlen == 0 || zlen > 15) /* IFNAMSIZ - 1 */
			return -EINVAL;
		for (size_t i = 0; i < zlen; i++)
			if (!is_alpha(pct[1 + i]) && !is_digit(pct[1 + i]) && pct[1 + i] != '.' &&
			    pct[1 + i] != '-' && pct[1 + i] != '_')
				return -EINVAL;
	}
	memcpy(tmp, p, alen);
	tmp[alen] = '\0';
	if (inet_pton(AF_INET6, tmp, &a) != 1)
		return -EINVAL;
	return 0;
}

static int parse_port(const char *p, const char *end, uint16_t *ret)
{
	uint64_t v;
	int r;

	if (end - p > 5) {
		/* all digits but too long: out of range; anything else: syntax */
		for (const char *q = p; q < end; q++)
			if (!is_digit(*q))
				return -EINVAL;
		return -ERANGE;
	}
	r = tu_parse_digits(&p, end, &v);
	if (r < 0)
		return r;
	if (p != end)
		return -EINVAL;
	if (v == 0 || v > 65535)
		return -ERANGE;
	*ret = (uint16_t) v;
	return 0;
}

int tu_parse_hostport(const char *s, uint16_t default_port, char **ret_host, uint16_t *ret_port)
{
	const char *host, *hend, *end, *rest;
	uint16_t port = default_port;
	char *copy;
	int r;

	if (!s || !*s)
		return -EINVAL;
	end = s + strlen(s);
	if (s[0] == '[') {
		host = s + 1;
		hend = memchr(host, ']', (size_t) (end - host));
		if (!hend)
			return -EINVAL;
		r = check_ipv6(host, (size_t) (hend - host));
		if (r < 0)
			return r;
		rest = hend + 1;
	} else {
		const char *colon = memchr(s, ':', (size_t) (end - s));
		host = s;
		hend = colon ? colon : end;
		if (colon && memchr(colon + 1, ':', (size_t) (end - colon - 1)))
			return -EINVAL; /* unbracketed IPv6 */
		r = check_hostname(host, (size_t) (hend - host));
		if (r < 0)
			return r;
		rest = hend;
	}

	if (rest == end) {
		if (default_port == 0)
			return -EINVAL;
	} else {
		if (*rest != ':')
			return -EINVAL;
		r = parse_port(rest + 1, end, &port);
		if (r < 0)
			return r;
	}

	copy = strndup(host, (size_t) (hend - host));
	if (!copy)
		return -ENOMEM;
	*ret_host = copy;
	*ret_port = port;
	return 0;
}
