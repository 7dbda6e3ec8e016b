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
		int k = tu_labelexpr_eval(&c, cases[i].expr, "alice", &traits, &host, &m, &e);
		int got = k == -ENOMEM ? -2 : k < 0 ? -1 : m; /* any other error: rbac.c fails closed */
		if (got != cases[i].want)
			fail_msg("'%s': want %d got %d (%s)", cases[i].expr, cases[i].want, got, e.msg);
	}
	tu_rx_cache_done(&c);
	fx_labels_free(&traits);
	fx_labels_free(&host);
}

/*
 * Teleport's TestLabelExpressions (lib/services/label_expressions_test.go),
 * ported as facts under their titles.  want is Teleport's answer: 1 match,
 * 0 no match, -1 an error.  Forms outside our subset (set(...), comments)
 * are errors here, on which rbac.c fails closed; they
 * are listed with want -1 and the reason.
 */
static void test_teleport_label_expressions(void **state)
{
	static const struct {
		const char *name, *expr, *labels, *traits;
		int want;
	} cases[] = {
		{ "label equality", "labels[\"env\"] == \"staging\"", "env=staging", "", 1 },
		{ "label inequality", "labels[\"env\"] != \"production\"", "env=production", "", 0 },
		{ "username match", "user.metadata.name == \"alice\"", "", "", 1 },
		{ "wrong type", "user.spec.traits[\"allow-env\"] == \"staging\"", "", "allow-env=staging", -1 },
		{ "contains match", "contains(user.spec.traits[\"allow-env\"], labels[\"env\"])", "env=staging",
		  "allow-env=dev,staging", 1 },
		{ "contains not match", "contains(user.spec.traits[\"allow-env\"], labels[\"env\"])", "env=production",
		  "allow-env=dev,staging", 0 },
		{ "contains wrong type", "contains(labels, \"env\")", "env=staging", "", -1 },
		{ "set contains match (not in our subset: fails closed)",
		  "contains(set(\"dev\", \"staging\"), labels[\"env\"])", "env=staging", "", -1 },
		{ "boolean logic",
		  "contains(user.spec.traits[\"allow-env\"], labels[\"env\"]) && "
		  "contains(user.spec.traits[\"groups\"], labels[\"group\"]) || "
		  "contains(user.spec.traits[\"groups\"], \"super-admin\")",
		  "env=staging;group=devs", "allow-env=dev,staging,production;groups=devs,security", 1 },
		{ "regexp.match", "regexp.match(labels[\"owner\"], \"dev-*\") && !regexp.match(labels[\"env\"], \"^prod.*$\")",
		  "owner=dev-123;env=staging", "", 1 },
		{ "regexp.replace",
		  "contains(regexp.replace(user.spec.traits[\"groups\"], \"^team-(.*)$\", \"$1\"), labels[\"team\"]) && "
		  "contains(regexp.replace(labels[\"env\"], \"^(.*)$\", \"env-$1\"), \"env-staging\")",
		  "team=security;env=staging", "groups=team-security", 1 },
		{ "email.local",
		  "contains(email.local(user.spec.traits[\"email\"]), labels[\"owner\"]) && "
		  "contains(email.local(user.spec.traits[\"full email\"]), labels[\"owner\"])",
		  "owner=test", "email=test@example.com;full email=Test <test@example.com>", 1 },
		{ "email.local error", "contains(email.local(user.spec.traits[\"email\"]), labels[\"owner\"])", "owner=test",
		  "email=test", -1 },
		{ "string helpers",
		  "contains(strings.lower(user.spec.traits[\"logins\"]), \"name\") && "
		  "contains(strings.upper(labels[\"env\"]), \"STAGING\")",
		  "env=staging", "logins=test,Name", 1 },
		{ "labels_matching name", "contains(labels_matching(\"^project-(name|label)$\"), \"skunkworks\")",
		  "project-name=skunkworks;project-label=secret", "", 1 },
		{ "labels_matching label", "contains(labels_matching(\"^project-(name|label)$\"), \"skunkworks\")",
		  "project-name=secret;project-label=skunkworks", "", 1 },
		{ "labels_matching glob", "contains(labels_matching(\"project-*\"), \"skunkworks\")",
		  "project-name=skunkworks;project-label=secret", "", 1 },
		{ "labels_matching no match", "contains(labels_matching(\"project-*\"), \"skunkworks\")", "project=skunkworks",
		  "", 0 },
		{ "contains_any match", "contains_any(user.spec.traits[\"projects\"], labels_matching(\"project-*\"))",
		  "project-name=skunkworks;project-label=secret", "projects=parser,skunkworks,algorithms", 1 },
		{ "contains_any no match", "contains_any(user.spec.traits[\"projects\"], labels_matching(\"project-*\"))",
		  "project-name=skunkworks;project-label=secret", "projects=parser,algorithms", 0 },
		{ "contains_any empty first arg",
		  "contains_any(user.spec.traits[\"projects\"], labels_matching(\"project-*\"))",
		  "project-name=skunkworks;project-label=secret", "", 0 },
		{ "contains_any empty second arg",
		  "contains_any(user.spec.traits[\"projects\"], labels_matching(\"project-*\"))", "team=security",
		  "projects=parser,algorithms", 0 },
		{ "contains_all match", "contains_all(user.spec.traits[\"projects\"], labels_matching(\"project-*\"))",
		  "project-primary=parser;project-secondary=algorithms", "projects=parser,skunkworks,algorithms", 1 },
		{ "contains_all no match", "contains_all(user.spec.traits[\"projects\"], labels_matching(\"project-*\"))",
		  "project-primary=parser;project-secondary=algorithms;project-label=secret",
		  "projects=parser,skunkworks,algorithms", 0 },
		{ "contains_all empty first arg",
		  "contains_all(user.spec.traits[\"projects\"], labels_matching(\"project-*\"))",
		  "project-primary=parser;project-secondary=algorithms;project-label=secret", "", 0 },
		{ "contains_all empty second arg",
		  "contains_all(user.spec.traits[\"projects\"], labels_matching(\"project-*\"))", "team=security",
		  "projects=parser,skunkworks,algorithms", 0 },
	};
	struct tu_rx_cache c;

	(void) state;
	tu_rx_cache_init(&c);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tu_labels traits = fx_labels(cases[i].traits);
		struct tu_labels host = fx_labels(cases[i].labels);
		struct tu_err e = { 0 };
		bool m = false;
		int k = tu_labelexpr_eval(&c, cases[i].expr, "alice", &traits, &host, &m, &e);
		int got = k == -ENOMEM ? -2 : k < 0 ? -1 : m;
		if (got != cases[i].want)
			fail_msg("TestLabelExpressions/%s: want %d got %d (%s)", cases[i].name, cases[i].want, got, e.msg);
		fx_labels_free(&traits);
		fx_labels_free(&host);
	}
	tu_rx_cache_done(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_labelexpr_eval),
		cmocka_unit_test(test_teleport_label_expressions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
