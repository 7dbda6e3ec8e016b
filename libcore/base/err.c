/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err.c - struct tu_err, the fixed-size error context (see err.h).
 * Layer: libcore/base.
 */
#include <stdio.h>
#include <string.h>

#include "err.h"

void tu_err_clear(struct tu_err *e)
{
	if (!e)
		return;
	memset(e, 0, sizeof(*e));
	e->grpc_status = -1;
}

static void truncate_mark(char *buf, size_t size, int n)
{
	if (n >= 0 && (size_t) n >= size && size > 4)
		memcpy(buf + size - 4, "...", 4);
}

int tu_err_setv(struct tu_err *e, int code, const char *fmt, va_list ap)
{
	if (!e)
		return code;
	e->code = code;
	int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	truncate_mark(e->msg, sizeof(e->msg), n);
	return code;
}

int tu_err_set(struct tu_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tu_err_setv(e, code, fmt, ap);
	va_end(ap);
	return code;
}

void tu_err_at(struct tu_err *e, const char *file, unsigned line)
{
	if (!e)
		return;
	if (file)
		snprintf(e->file, sizeof(e->file), "%s", file);
	e->line = line;
}

void tu_err_key(struct tu_err *e, const char *key)
{
	if (!e || !key)
		return;
	snprintf(e->key, sizeof(e->key), "%s", key);
}

void tu_err_prefix(struct tu_err *e, const char *fmt, ...)
{
	char prefix[256];
	char old[TU_ERR_MSG_MAX];
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	int n = snprintf(e->msg, sizeof(e->msg), "%s: %s", prefix, old);
	truncate_mark(e->msg, sizeof(e->msg), n);
}

const char *tu_err_format(const struct tu_err *e, char *buf, size_t size)
{
	size_t off = 0;
	int n;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	if (!e)
		return buf;
#define APPEND(...)                                                                                \
	do {                                                                                       \
		if (off < size) {                                                                  \
			n = snprintf(buf + off, size - off, __VA_ARGS__);                          \
			if (n > 0)                                                                 \
				off += (size_t) n;                                                 \
		}                                                                                  \
	} while (0)
	if (e->file[0]) {
		if (e->line)
			APPEND("%s:%u: ", e->file, e->line);
		else
			APPEND("%s: ", e->file);
	}
	if (e->key[0])
		APPEND("%s: ", e->key);
	if (e->msg[0])
		APPEND("%s", e->msg);
	else
		APPEND("%s", strerror(e->code < 0 ? -e->code : e->code));
#undef APPEND
	if (off >= size)
		truncate_mark(buf, size, (int) off);
	return buf;
}

const char *tu_sanitize(const char *s, char *out, size_t size)
{
	size_t i = 0;

	if (size == 0)
		return out;
	if (!s)
		s = "(null)";
	for (; *s && i + 1 < size; s++, i++) {
		unsigned char c = (unsigned char) *s;
		out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char) c;
	}
	out[i] = '\0';
	return out;
}
