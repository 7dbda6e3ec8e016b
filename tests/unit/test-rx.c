/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rx.c - libcore/rx.c on its own: Teleport's label value matching
 * (utils.MatchString: "*", globs, "^...$" RE2 translated to POSIX), the
 * compiled-pattern cache, and regexp.replace with RE2 group references.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "err.h"
#include "rx.h"

static void test_rx_match_value(void **state)
{
	static const struct {
		const char *pattern, *value;
		int want; /* 1 match, 0 no match, -1 -EBADMSG */
	} cases[] = {
		{ "*", "", 1 },           { "*", "anything", 1 },    { "prod", "prod", 1 },
		{ "prod", "prod2", 0 },   { "prod*", "prod-eu", 1 }, { "*-eu", "prod-eu", 1 },
		{ "a.b", "axb", 0 },      { "a.b", "a.b", 1 },       { "^db(.*)$", "db01", 1 },
		{ "^db(.*)$", "xdb", 0 }, { "^\\d+$", "123", 1 },    { "^\\d+$", "12a", 0 },
		{ "^(?:a|b)$", "b", 1 },  { "^(a$", "a", -1 },       { "^a*?$", "a", -1 } /* lazy: refused */,
	};
	struct tu_rx_cache c;

	(void) state;
	tu_rx_cache_init(&c);
	for (int round = 0; round < 2; round++) /* the second round is served from the cache */
		for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
			struct tu_err e = { 0 };
			bool m = false;
			int k = tu_rx_match_value(&c, cases[i].pattern, cases[i].value, &m, &e);
			int got = k == -EBADMSG ? -1 : k < 0 ? -2 : m;
			if (got != cases[i].want)
				fail_msg("'%s' ~ '%s': want %d got %d (%s)", cases[i].pattern, cases[i].value,
					 cases[i].want, got, e.msg);
		}
	tu_rx_cache_done(&c);
}

static void test_rx_replace_all(void **state)
{
	static const struct {
		const char *re, *s, *repl, *want; /* want NULL: no match */
	} cases[] = {
		{ "bar-(.*)", "bar-baz", "$1", "baz" },
		{ "bar-(?P<suffix>.*)", "bar-baz", "$suffix", "baz" },
		{ "foo-(.*)-(.*)", "foo-bar-baz", "$1.$2", "bar.baz" },
		{ "^bar-(.*)$", "foo-test1", "$1-matched", NULL },
		{ "(?:x)-(y)", "x-y", "${1}", "y" },
	};
	struct tu_rx_cache c;

	(void) state;
	tu_rx_cache_init(&c);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tu_rx_ref ref;
		char *out = NULL;
		bool matched = false;
		assert_int_equal(tu_rx_acquire(&c, cases[i].re, &ref, NULL), 0);
		assert_int_equal(tu_rx_replace_all(ref.rx, cases[i].s, cases[i].repl, &out, &matched, NULL), 0);
		if (cases[i].want ? !matched || strcmp(out, cases[i].want) != 0 : matched)
			fail_msg("replace '%s' in '%s': want %s got %s", cases[i].re, cases[i].s,
				 cases[i].want ? cases[i].want : "(no match)", matched ? out : "(no match)");
		free(out);
		tu_rx_release(&ref);
	}
	tu_rx_cache_done(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rx_match_value),
		cmocka_unit_test(test_rx_replace_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
