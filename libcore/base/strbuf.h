/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strbuf.h - a growable byte buffer that cannot exist without a size limit
 * (after curl's dynbuf / OpenSSH's sshbuf).  Layer: libcore/base.
 * The content is always NUL-terminated (the NUL is not counted in len).
 * Not thread-safe per object.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

struct tu_strbuf {
	char *buf;
	size_t len;
	size_t cap;
	size_t max; /* len may never exceed this */
};

/* Initialises an empty buffer that may grow to max bytes. Never fails. */
void tu_strbuf_init(struct tu_strbuf *b, size_t max);

/* Frees the storage and resets to empty (max kept). */
void tu_strbuf_done(struct tu_strbuf *b);

/* Empties without freeing. */
void tu_strbuf_reset(struct tu_strbuf *b);

/* Appends n bytes. -EMSGSIZE past max (buffer unchanged), -ENOMEM. */
int tu_strbuf_add(struct tu_strbuf *b, const void *data, size_t n);
int tu_strbuf_adds(struct tu_strbuf *b, const char *s);
int tu_strbuf_addc(struct tu_strbuf *b, char c);
int tu_strbuf_addf(struct tu_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hands the storage to the caller (NUL-terminated, never NULL on success: "" when empty)
 * and resets b. Returns NULL on -ENOMEM. Caller frees. */
char *tu_strbuf_steal(struct tu_strbuf *b, size_t *ret_len);
