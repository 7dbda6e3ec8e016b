/* SPDX-License-Identifier: Apache-2.0 */
/*
 * idhash.h - deterministic uid/gid hashing of names into a range, with
 * deterministic collision resolution (SPEC §4: the same users give the same
 * ids on every host).  Layer: libcore/base, pure (no I/O, no clock).
 *
 * The hash is fixed forever (changing it would renumber every account):
 * FNV-1a 64-bit of the name's bytes, then id = lo + h mod (hi - lo + 1),
 * where [lo, hi] is the usable range: [max(min, TU_IDHASH_MIN_ID),
 * min(max, 0xFFFFFFFD)].  Reserved ids (tu_idhash_reserved) are never
 * produced: probing moves past them.  Thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tu_err;

/* Ids below this are system ids and never assigned. */
#define TU_IDHASH_MIN_ID 1000u

/* 64-bit FNV-1a of s (the raw hash). */
uint64_t tu_idhash_fnv1a(const char *s);

/* Whether id may never be assigned: < TU_IDHASH_MIN_ID, 65534 (nobody),
 * 65535 (16-bit -1), 0xFFFFFFFE, 0xFFFFFFFF ((uid_t) -1). */
bool tu_idhash_reserved(uint32_t id);

/*
 * The home id of name in [min, max]: the hash slot, moved forward (with
 * wrap-around) past reserved ids.  Returns 0 when the usable range is empty
 * (min > max, or nothing but reserved ids in it).
 */
uint32_t tu_idhash_home(const char *name, uint32_t min, uint32_t max);

/*
 * The next candidate after id when probing in [min, max]: id + 1, wrapping
 * to the start of the usable range, skipping reserved ids.  0 when the range
 * is empty.  A caller probes at most (hi - lo + 1) times.
 */
uint32_t tu_idhash_next(uint32_t id, uint32_t min, uint32_t max);

/*
 * Assigns ids to n distinct names, independently of their order:
 *  - names with fixed[i] != 0 (fixed may be NULL) get fixed[i] as they are
 *    (not range-checked: the caller validated them) and claim it;
 *  - every id in avoid[0..n_avoid) is taken (e.g. local group gids);
 *  - the others, taken in (hash, name) order, get their home id probed
 *    forward past taken and reserved ids.
 * ret_ids[i] is the id for names[i], or 0 when the range is exhausted (the
 * caller skips and logs that name).
 * Errors: -EINVAL (min > max, empty usable range, a NULL or duplicate name;
 * detail in reterr), -ENOMEM, -EMSGSIZE (n over 4Mi).  ret_ids untouched on failure.
 * Cost: O((n + n_avoid) log n) expected.
 */
int tu_idhash_assign(const char *const *names, size_t n, uint32_t min, uint32_t max,
		     const uint32_t *fixed, const uint32_t *avoid, size_t n_avoid,
		     uint32_t *ret_ids, struct tu_err *reterr);
