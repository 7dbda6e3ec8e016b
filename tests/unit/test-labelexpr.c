/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-labelexpr.c - libcore/labelexpr.c on its own: node_labels_expression
 * (Teleport's label_expressions.go predicate language, the subset we
 * evaluate; anything else is an error, on which rbac.c fails closed).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "err.h"
#include "labelexpr.h"
#include "rbac-fixture.h"
#include "rx.h"

static void test_labelexpr_eval(void **state)
{
	static const struct {
		const char *expr;
		int want; /* 1 true, 0 false, -1 an error (unsupported or malformed) */
	} cases[] = {
		{ "labels[\"env\"] == \"prod\"", 1 },
		{ "labels.env == \"dev\"", 0 },
		{ "labels[\"missing\"] == \"\"", 1 },
		{ "labels[\"env\"] != \"prod\" || labels[\"team\"] == \"db\"", 1 },
		{ "!(labels[\"env\"] == \"prod\")", 0 },
		{ "contains(user.spec.traits[\"teams\"], labels[\"team\"])", 1 },
		{ "contains_any(user.spec.traits[\"teams\"], [\"x\", \"web\"])", -1 }, /* list literals: not in the subset */
		{ "contains_all(user.spec.traits[\"teams\"], user.spec.traits[\"none\"])", 0 }, /* empty items: false */
		{ "regexp.match(user.spec.traits[\"teams\"], \"^we.*$\")", 1 },
		{ "regexp.match(user.spec.traits[\"teams\"], \"dev*\")", 0 },
		{ "contains(labels_matching(\"te*\"), \"db\")", 1 },
		{ "contains(strings.upper(user.spec.traits[\"teams\"]), \"DB\")", 1 },
		{ "contains(email.local(user.spec.traits[\"email\"]), \"alice\")", 1 },
		{ "labels[\"env\"]", -1 },              /* not a boolean */
		{ "labels[\"env\"] == ", -1 },
		{ "exists(labels[\"env\"])", -1 },     /* unknown function */
		{ "true && false", 0 },
	};
	struct tu_labels traits = fx_labels("teams=db,web;email=alice@example.com");
	struct tu_labels host = fx_labels("env=prod;team=db");
	struct tu_rx_cache c;

	(void) state;
	tu_rx_cache_init(&c);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tu_err e = { 0 };
		bool m = false;
		int k = tu_labelexpr_eval(&c, cases[i].expr, &traits, &host, &m, &e);
		int got = k == -ENOMEM ? -2 : k < 0 ? -1 : m; /* any other error: rbac.c fails closed */
		if (got != cases[i].want)
			fail_msg("'%s': want %d got %d (%s)", cases[i].expr, cases[i].want, got, e.msg);
	}
	tu_rx_cache_done(&c);
	fx_labels_free(&traits);
	fx_labels_free(&host);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_labelexpr_eval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
