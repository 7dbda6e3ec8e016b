/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template.h - Teleport's trait templates (lib/utils/parse): "{{expr}}"
 * with prefix and suffix, internal/external traits, email.local,
 * regexp.replace.  Used by rbac.c (logins, label keys and values, host
 * groups) and labelexpr.c (its string literals and names).  Layer: libcore.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

struct tu_err;
struct tu_rx_cache;

/* The lexer state, shared with labelexpr.c for string literals and names. */
struct tu_tparse {
	const char *s;   /* expression text (not NUL-terminated at n) */
	size_t i, n;
	const struct tu_labels *traits;
	bool eval;       /* false: syntax check only */
	struct tu_rx_cache *rx;
	struct tu_err *err;
	int depth;
};

/* A name ([A-Za-z_][A-Za-z0-9_]*) at p->i into buf; -EBADMSG. */
int tu_tparse_ident(struct tu_tparse *p, char *buf, size_t size);
/* A Go string literal at p->i ("..." with escapes, or `...`); *ret malloc'ed; -EBADMSG, -ENOMEM. */
int tu_tparse_string(struct tu_tparse *p, char **ret);
/* The local part of an e-mail address (net/mail subset); *ret malloc'ed; -EBADMSG, -ENOMEM. */
int tu_template_email_local(const char *in, char **ret, struct tu_err *reterr);
/* Whether s has no template braces (used as-is). */
bool tu_template_is_literal(const char *s);
/* tu_rbac_interpolate with a regular expression cache (rx.h). */
int tu_template_interpolate(struct tu_rx_cache *rx, const char *tmpl, const struct tu_labels *traits, struct tu_strv *out, struct tu_err *reterr);
