/* SPDX-License-Identifier: Apache-2.0 */
/*
 * idhash.c - deterministic name -> id hashing with order-independent
 * collision resolution.  Layer: libcore/base, pure.
 */
#include "idhash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "err.h"

#define ID_HI_LIMIT 0xFFFFFFFDu

uint64_t tu_idhash_fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 1099511628211ull;
	return h;
}

bool tu_idhash_reserved(uint32_t id)
{
	return id < TU_IDHASH_MIN_ID || id == 65534u || id == 65535u || id >= 0xFFFFFFFEu;
}

static bool usable_range(uint32_t min, uint32_t max, uint32_t *lo, uint32_t *hi)
{
	*lo = min < TU_IDHASH_MIN_ID ? TU_IDHASH_MIN_ID : min;
	*hi = max > ID_HI_LIMIT ? ID_HI_LIMIT : max;
	if (*lo > *hi)
		return false;
	/* Only reserved ids left (e.g. [65534, 65535]). */
	for (uint32_t id = *lo;; id++) {
		if (!tu_idhash_reserved(id))
			return true;
		if (id == *hi)
			return false;
	}
}

/* Moves id forward (wrapping) to the first non-reserved id; lo..hi has one. */
static uint32_t settle(uint32_t id, uint32_t lo, uint32_t hi)
{
	for (int i = 0; i < 8 && tu_idhash_reserved(id); i++)
		id = id >= hi ? lo : id + 1;
	return tu_idhash_reserved(id) ? 0 : id;
}

uint32_t tu_idhash_home(const char *name, uint32_t min, uint32_t max)
{
	uint32_t lo, hi;
	uint64_t range;

	if (!name || !usable_range(min, max, &lo, &hi))
		return 0;
	range = (uint64_t) hi - lo + 1;
	return settle(lo + (uint32_t) (tu_idhash_fnv1a(name) % range), lo, hi);
}

uint32_t tu_idhash_next(uint32_t id, uint32_t min, uint32_t max)
{
	uint32_t lo, hi;

	if (!usable_range(min, max, &lo, &hi))
		return 0;
	id = (id >= hi || id < lo) ? lo : id + 1;
	return settle(id, lo, hi);
}

/* A set of u32 (0 never stored: it is reserved anyway). */
struct idset {
	uint32_t *v;
	size_t cap; /* power of two */
	size_t n;
};

static size_t idset_slot(uint32_t id, size_t cap)
{
	uint32_t h = id * 0x9E3779B1u;

	return (h ^ (h >> 15)) & (cap - 1);
}

static bool idset_has(const struct idset *s, uint32_t id)
{
	for (size_t k = idset_slot(id, s->cap);; k = (k + 1) & (s->cap - 1)) {
		if (s->v[k] == id)
			return true;
		if (s->v[k] == 0)
			return false;
	}
}

static void idset_add(struct idset *s, uint32_t id)
{
	size_t k;

	if (id == 0)
		return;
	for (k = idset_slot(id, s->cap); s->v[k] != 0; k = (k + 1) & (s->cap - 1))
		if (s->v[k] == id)
			return;
	s->v[k] = id;
	s->n++;
}

struct order {
	uint64_t h;
	const char *name;
	size_t i;
};

static int cmp_order(const void *a, const void *b)
{
	const struct order *x = a, *y = b;

	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return strcmp(x->name, y->name);
}

int tu_idhash_assign(const char *const *names, size_t n, uint32_t min, uint32_t max,
		     const uint32_t *fixed, const uint32_t *avoid, size_t n_avoid,
		     uint32_t *ret_ids, struct tu_err *reterr)
{
	_cleanup_free_ struct order *ord = NULL;
	_cleanup_free_ uint32_t *ids = NULL;
	struct idset set = {};
	uint32_t lo, hi;
	size_t cap = 16;

	if (min > max)
		return tu_err_set(reterr, -EINVAL, "id range [%u, %u] is inverted", min, max);
	if (!usable_range(min, max, &lo, &hi))
		return tu_err_set(reterr, -EINVAL,
				  "id range [%u, %u] has no usable id (ids below %u are reserved)",
				  min, max, TU_IDHASH_MIN_ID);
	if (n > 4u * 1024 * 1024 || n_avoid > 16u * 1024 * 1024)
		return tu_err_set(reterr, -EMSGSIZE, "too many names (%zu) or ids to avoid (%zu)",
				  n, n_avoid);
	if ((n && (!names || !ret_ids)) || (n_avoid && !avoid))
		return tu_err_set(reterr, -EINVAL, "NULL array");

	ord = calloc(n ? n : 1, sizeof(*ord));
	ids = calloc(n ? n : 1, sizeof(*ids));
	while (cap < 2 * (n + n_avoid))
		cap <<= 1;
	set.cap = cap;
	set.v = calloc(cap, sizeof(uint32_t));
	if (!ord || !ids || !set.v) {
		free(set.v);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (!names[i]) {
			free(set.v);
			return tu_err_set(reterr, -EINVAL, "name %zu is NULL", i);
		}
		ord[i] = (struct order){.h = tu_idhash_fnv1a(names[i]), .name = names[i], .i = i};
	}
	qsort(ord, n, sizeof(*ord), cmp_order);
	for (size_t i = 1; i < n; i++)
		if (strcmp(ord[i - 1].name, ord[i].name) == 0) {
			free(set.v);
			return tu_err_set(reterr, -EINVAL, "duplicate name '%.64s'", ord[i].name);
		}

	for (size_t i = 0; i < n_avoid; i++)
		idset_add(&set, avoid[i]);
	for (size_t i = 0; i < n; i++)
		if (fixed && fixed[i]) {
			ids[i] = fixed[i];
			idset_add(&set, fixed[i]);
		}
	for (size_t k = 0; k < n; k++) {
		size_t i = ord[k].i;
		uint64_t range = (uint64_t) hi - lo + 1, steps;
		uint32_t id;

		if (fixed && fixed[i])
			continue;
		id = settle(lo + (uint32_t) (ord[k].h % range), lo, hi);
		/* Only taken ids can block: after set.n + 3 steps we have seen them all. */
		for (steps = 0; id && idset_has(&set, id) && steps <= set.n + 3 && steps < range;
		     steps++)
			id = tu_idhash_next(id, lo, hi);
		if (id && idset_has(&set, id))
			id = 0;
		ids[i] = id;
		idset_add(&set, id);
	}
	free(set.v);
	if (n)
		memcpy(ret_ids, ids, n * sizeof(*ids));
	return 0;
}
