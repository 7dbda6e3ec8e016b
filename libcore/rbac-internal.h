/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbac-internal.h - limits and small list helpers shared by rbac.c and the
 * three languages beside it (template.c, labelexpr.c, rx.c).  Included only
 * by those files and their tests.  Layer: libcore.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define TEMPLATE_MAX     4096 /* longest template / expression we evaluate */
#define RESULT_MAX       65536 /* bytes of one interpolated value */
#define VALUES_MAX       4096 /* values produced by one template */
#define EXPR_DEPTH_MAX   32
#define RX_CACHE_MAX     512
#define LOGIN_MAX        32

/* ---- small list helpers (own copies: rbac must not depend on model.c) ---- */

static inline int strv_addn(struct tu_strv *v, const char *s, size_t n)
{
	char *c = strndup(s, n);
	if (!c)
		return -ENOMEM;
	char **nv = realloc(v->v, (v->n + 2) * sizeof(char *));
	if (!nv) {
		free(c);
		return -ENOMEM;
	}
	nv[v->n++] = c;
	nv[v->n] = NULL;
	v->v = nv;
	return 0;
}

static inline int strv_add(struct tu_strv *v, const char *s)
{
	return strv_addn(v, s, strlen(s));
}

static inline bool strv_has(const struct tu_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], s) == 0)
			return true;
	return false;
}

static inline int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorts bytewise and drops duplicates in place. */
static inline void strv_sort_uniq(struct tu_strv *v)
{
	if (v->n < 2)
		return;
	qsort(v->v, v->n, sizeof(char *), cmp_strp);
	size_t w = 1;
	for (size_t i = 1; i < v->n; i++) {
		if (strcmp(v->v[i], v->v[w - 1]) == 0) {
			free(v->v[i]);
			continue;
		}
		v->v[w++] = v->v[i];
	}
	v->n = w;
	v->v[w] = NULL;
}

static inline const struct tu_strv *labels_find(const struct tu_labels *l, const char *key)
{
	if (!l)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		if (l->e[i].key && strcmp(l->e[i].key, key) == 0)
			return &l->e[i].values;
	return NULL;
}

static inline bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
