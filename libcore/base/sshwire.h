/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sshwire.h - bounded readers of the SSH wire encoding (RFC 4251 §5: uint32,
 * uint64, string) over a byte range, shared by the certificate parser
 * (decide.c) and the signature check (sshsig.c).  Layer: libcore/base (libc
 * only).  Every reader checks the remaining length first and returns
 * -EBADMSG without moving when the value does not fit.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct tu_sshwire {
	const uint8_t *p;
	size_t n, off;
};

static inline int tu_sshwire_u32(struct tu_sshwire *b, uint32_t *v)
{
	if (b->n - b->off < 4)
		return -EBADMSG;
	*v = (uint32_t) b->p[b->off] << 24 | (uint32_t) b->p[b->off + 1] << 16 | (uint32_t) b->p[b->off + 2] << 8 |
	     b->p[b->off + 3];
	b->off += 4;
	return 0;
}

static inline int tu_sshwire_string(struct tu_sshwire *b, const uint8_t **ret, size_t *ret_len)
{
	uint32_t len;
	int k = tu_sshwire_u32(b, &len);
	if (k < 0)
		return k;
	if (len > b->n - b->off)
		return -EBADMSG;
	if (ret)
		*ret = b->p + b->off;
	if (ret_len)
		*ret_len = len;
	b->off += len;
	return 0;
}

static inline bool tu_sshwire_eq(const uint8_t *p, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(p, s, n) == 0;
}

static inline int tu_sshwire_u64(struct tu_sshwire *b, uint64_t *v)
{
	uint32_t hi, lo;
	int k = tu_sshwire_u32(b, &hi);

	if (k >= 0)
		k = tu_sshwire_u32(b, &lo);
	if (k >= 0)
		*v = (uint64_t) hi << 32 | lo;
	return k;
}
