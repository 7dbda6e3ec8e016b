/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-template.c - libcore/template.c on its own: tu_template_interpolate
 * with a shared pattern cache, the e-mail local part and the literal test
 * (Teleport's lib/utils/parse; the full tables are in test-rbac.c).
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
#include "rbac-fixture.h"
#include "rx.h"
#include "template.h"

static void test_template_interpolate(void **state)
{
	static const struct {
		const char *tmpl, *traits, *want; /* want NULL: -EBADMSG */
	} cases[] = {
		{ "{{external.foo}}", "foo=a,b", "a,b" },
		{ "IAM#{{external.foo}}:", "foo=a,b", "IAM#a:,IAM#b:" },
		{ "{{external.baz}}", "foo=a", "" },
		{ "{{internal.logins}}", "logins=x", "x" },
		{ "{{internal.foo}}", "foo=x", NULL },
		{ "{{regexp.replace(external.foo, \"^a-(.*)$\", \"$1\")}}", "foo=a-1,b-2", "1" },
		{ "{{email.local(external.mail)}}", "mail=Alice <alice@example.com>", "alice" },
		{ "{{", "", NULL },
	};
	struct tu_rx_cache c;

	(void) state;
	tu_rx_cache_init(&c);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tu_labels traits = fx_labels(cases[i].traits);
		struct tu_strv out = { 0 };
		char buf[256];
		int k = tu_template_interpolate(&c, cases[i].tmpl, &traits, &out, NULL);
		if (cases[i].want ? k != 0 || strcmp(fx_join(&out, buf, sizeof(buf)), cases[i].want) != 0 : k != -EBADMSG)
			fail_msg("'%s': want %s got %d '%s'", cases[i].tmpl, cases[i].want ? cases[i].want : "an error", k,
				 fx_join(&out, buf, sizeof(buf)));
		fx_strv_free(&out);
		fx_labels_free(&traits);
	}
	tu_rx_cache_done(&c);
}

static void test_template_email_local_and_literal(void **state)
{
	char *out = NULL;

	(void) state;
	assert_int_equal(tu_template_email_local("bob@example.com", &out, NULL), 0);
	assert_string_equal(out, "bob");
	free(out);
	assert_int_equal(tu_template_email_local("Alice <alice", &out, NULL), -EBADMSG);
	assert_int_equal(tu_template_email_local("", &out, NULL), -EBADMSG);
	assert_true(tu_template_is_literal("root"));
	assert_true(tu_template_is_literal(""));
	assert_false(tu_template_is_literal("{{internal.logins}}"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_template_interpolate),
		cmocka_unit_test(test_template_email_local_and_literal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
