/* SPDX-License-Identifier: Apache-2.0 */
/*
 * labelexpr.h - node_labels_expression, a subset of Teleport's predicate
 * language (lib/services/label_expressions.go, API.md §4.4).  Used by
 * rbac.c.  Layer: libcore.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

struct tu_err;
struct tu_rx_cache;

/*
 * Evaluates expr against the user (user.metadata.name = user_name, may be
 * NULL; user.spec.traits = traits) and the host's labels into
 * *ret_match.  -EBADMSG for a malformed expression, -EOPNOTSUPP for a
 * function or form outside the subset (the caller fails closed on both),
 * -ENOMEM.
 */
int tu_labelexpr_eval(struct tu_rx_cache *rx, const char *expr, const char *user_name, const struct tu_labels *traits,
		      const struct tu_labels *host, bool *ret, struct tu_err *reterr);
