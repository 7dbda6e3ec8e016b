/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strbuf.c - bounded growable buffer (see strbuf.h).  Layer: libcore/base.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

void tu_strbuf_init(struct tu_strbuf *b, size_t max)
{
	*b = (struct tu_strbuf){ .max = max };
}

void tu_strbuf_done(struct tu_strbuf *b)
{
	free(b->buf);
	b->buf = NULL;
	b->len = b->cap = 0;
}

void tu_strbuf_reset(struct tu_strbuf *b)
{
	b->len = 0;
	if (b->buf)
		b->buf[0] = '\0';
}

int tu_strbuf_add(struct tu_strbuf *b, const void *data, size_t n)
{
	size_t need;

	if (__builtin_add_overflow(b->len, n, &need) || need > b->max)
		return -EMSGSIZE;
	if (need + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < need + 1) {
			if (__builtin_mul_overflow(cap, 2, &cap))
				return -ENOMEM;
		}
		if (cap > b->max + 1)
			cap = b->max + 1;
		char *p = realloc(b->buf, cap);
		if (!p)
			return -ENOMEM;
		b->buf = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->buf + b->len, data, n);
	b->len = need;
	b->buf[b->len] = '\0';
	return 0;
}

int tu_strbuf_adds(struct tu_strbuf *b, const char *s)
{
	return tu_strbuf_add(b, s, strlen(s));
}

int tu_strbuf_addc(struct tu_strbuf *b, char c)
{
	return tu_strbuf_add(b, &c, 1);
}

int tu_strbuf_addf(struct tu_strbuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t) n < sizeof(small))
		return tu_strbuf_add(b, small, (size_t) n);

	char *big = malloc((size_t) n + 1);
	if (!big)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t) n + 1, fmt, ap);
	va_end(ap);
	int r = tu_strbuf_add(b, big, (size_t) n);
	free(big);
	return r;
}

char *tu_strbuf_steal(struct tu_strbuf *b, size_t *ret_len)
{
	char *p = b->buf;

	if (!p) {
		p = strdup("");
		if (!p)
			return NULL;
	}
	if (ret_len)
		*ret_len = b->len;
	b->buf = NULL;
	b->len = b->cap = 0;
	return p;
}
