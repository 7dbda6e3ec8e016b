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

/* struct tu_err, TU_ERR_MSG_MAX, tu_err_clear() and tu_err_format() are part of the
 * public API: defined once, in the installed header. */
#include "teleport-unix/err.h"

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
 * Copies s into out (size bytes, NUL-terminated), replacing control
 * characters and non-ASCII bytes by '?' so hostile names cannot forge log
 * lines.  Returns out.
 */
const char *tu_sanitize(const char *s, char *out, size_t size);
