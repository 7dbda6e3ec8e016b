/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rx.h - Teleport's regular expressions (Go RE2) on POSIX ERE: the
 * translation, a cache of compiled patterns, label value matching
 * (utils.MatchString: "*", globs, "^...$") and regexp.replace.  Used by
 * rbac.c, template.c and labelexpr.c.  Layer: libcore.  Thread-safe: the
 * cache is mutex-guarded; a compiled pattern is shared read-only.
 */
#pragma once

#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tu_err;

#define TU_RX_GROUPS_MAX 32

struct tu_rx {
	char *pattern;                /* as written (RE2 syntax) */
	regex_t re;
	size_t n_groups;              /* RE2 capturing groups */
	int group_map[TU_RX_GROUPS_MAX + 1]; /* RE2 group number -> POSIX group number */
	char *group_names[TU_RX_GROUPS_MAX + 1];
};

struct tu_rx_cache {
	pthread_mutex_t lock;
	struct tu_rx **e;
	size_t n;
};

struct tu_rx_ref {
	struct tu_rx *rx;
	bool owned;
};

/* An empty cache (no allocation). */
void tu_rx_cache_init(struct tu_rx_cache *c);
/* Frees every compiled pattern; c may be reused after tu_rx_cache_init. */
void tu_rx_cache_done(struct tu_rx_cache *c);
/*
 * The compiled form of pattern (RE2 syntax, translated; see rx.c), from the
 * cache or compiled now (and cached while there is room).  Release with
 * tu_rx_release.  -EBADMSG (invalid or unsupported, reason in reterr), -ENOMEM.
 */
int tu_rx_acquire(struct tu_rx_cache *c, const char *pattern, struct tu_rx_ref *ret, struct tu_err *reterr);
void tu_rx_release(struct tu_rx_ref *r);
/*
 * Teleport's utils.MatchString for one label value: "*" anything, "^...$" a
 * regular expression, else a glob ('*' any run).  -EBADMSG for an invalid
 * regular expression.
 */
int tu_rx_match_value(struct tu_rx_cache *c, const char *pattern, const char *value, bool *ret,
		      struct tu_err *reterr);
/*
 * regexp.replace for one string: every match of r in s replaced with repl
 * ($1, ${1}, $name, ${name} expanded); *ret malloc'ed; *ret_matched false
 * when nothing matched (Teleport then drops the value).  -ENOMEM, -EMSGSIZE.
 */
int tu_rx_replace_all(const struct tu_rx *r, const char *s, const char *repl, char **ret, bool *ret_matched, struct tu_err *reterr);
