/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err.h - the error context that travels beside a negative-errno return.
 * Layer: libcore/base (libc only).
 *
 * Convention (docs/errors.md): functions return 0 or a negative errno and,
 * where a human needs to know why, fill a caller-provided struct tu_err.
 * struct tu_err never allocates; a NULL pointer is accepted everywhere and
 * means "caller does not want the detail".  Thread-safe (no shared state).
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#define TU_ERR_MSG_MAX 512

struct tu_err {
	int code;                 /* negative errno, 0 when unset */
	int grpc_status;          /* gRPC status code, -1 when none */
	unsigned line;            /* 1-based line in .file, 0 when none */
	char file[256];           /* file the problem is in, "" when none */
	char key[128];            /* config key path (e.g. "auth.timeouts.connect"), "" when none */
	char msg[TU_ERR_MSG_MAX]; /* human readable, no trailing newline */
};

/* Resets e to "no error". Accepts NULL. */
void tu_err_clear(struct tu_err *e);

/*
 * Sets the message (printf-style) and code; returns code so callers can
 * write `return tu_err_set(reterr, -EBADMSG, "...")`.  Accepts NULL.
 * A message longer than TU_ERR_MSG_MAX is truncated with "...".
 */
int tu_err_set(struct tu_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int tu_err_setv(struct tu_err *e, int code, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* Records where: file (may be NULL) and 1-based line (0 = none). Accepts NULL e. */
void tu_err_at(struct tu_err *e, const char *file, unsigned line);

/* Records the config key path. Accepts NULL e. */
void tu_err_key(struct tu_err *e, const char *key);

/* Prepends "<prefix>: " to the message. Accepts NULL. */
void tu_err_prefix(struct tu_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Formats the whole error as one line "<file>:<line>: <key>: <msg>" leaving
 * out the parts that are unset, into buf (always NUL-terminated).
 * Returns buf.  When e->msg is empty, uses strerror(-e->code).
 */
const char *tu_err_format(const struct tu_err *e, char *buf, size_t size);

/*
 * Copies s into out (size bytes, NUL-terminated), replacing control
 * characters and non-ASCII bytes by '?' so hostile names cannot forge log
 * lines.  Returns out.
 */
const char *tu_sanitize(const char *s, char *out, size_t size);
