/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-labels.c - libFuzzer target for label matching: a label value
 * pattern against a value (tu_rbac_match_value: globs, ^...$ regexes and
 * their RE2 -> POSIX translation), and a whole node_labels selector
 * ("k=v1,v2;k2=v3", keys and values possibly templated) against a host,
 * on the allow and the deny side, with and without the index.
 * Input: "pattern\nvalue" or, with a leading '#', a selector.
 *
 * Replayed by `make check` (tests/fuzz/local.mk).  libFuzzer build by hand:
 *   clang -g -fsanitize=fuzzer,address,undefined -include build/config.h \
 *     -Ilibcore -Ilibcore/base -Itests/unit tests/fuzz/fuzz-labels.c \
 *     libcore/rbac.c libcore/base/{err,strbuf,log}.c -lpthread -o fuzz-labels
 *   ./fuzz-labels -max_total_time=60 tests/fuzz/corpus/labels
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rbac-fixture.h"
#include "rbac.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[8192];
	struct tu_err e = { 0 };
	bool m = false;
	int k;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (strlen(s) != size)
		return 0;

	if (s[0] != '#') {
		char *nl = strchr(s, '\n');
		const char *value = "";
		if (nl) {
			*nl = '\0';
			value = nl + 1;
		}
		k = tu_rbac_match_value(s, value, &m, &e);
		if (k < 0 && (k != -EBADMSG && k != -EMSGSIZE && k != -ENOMEM))
			abort();
		if (k < 0 && !e.msg[0])
			abort();
		return 0;
	}

	struct fx_role rs[] = { { "r", .allow_logins = "a,{{internal.logins}}", .allow_labels = s + 1, .deny_labels = s + 1 },
				{ 0 } };
	struct fx_user us[] = { { "u", "r", "logins=x;env=prod;k=team" }, { 0 } };
	struct tu_dataset d;
	struct tu_labels hl = fx_labels("env=prod;team=db;empty=");
	struct tu_host h = { "h", "id", "c", &hl };
	struct tu_rbac_index *ix = NULL;
	struct tu_access a1, a2;

	fx_dataset_build(&d, us, rs, NULL);
	(void) tu_rbac_role_matches_host(&d.roles[0], false, &d.users[0], &h, &m, NULL, &e);
	(void) tu_rbac_role_matches_host(&d.roles[0], true, &d.users[0], &h, &m, NULL, &e);
	if (tu_rbac_check_login(&d, &d.users[0], "a", &h, &a1, NULL) == 0 &&
	    tu_rbac_index_new(&d, &ix, NULL) == 0) {
		/* The indexed path must agree with the plain one. */
		if (tu_rbac_check_login_ix(ix, &d.users[0], "a", &h, &a2, NULL) == 0 && a1.allowed != a2.allowed)
			abort();
		/* Allow and deny share the selector: nothing can be allowed. */
		if (a1.allowed)
			abort();
		tu_rbac_index_free(ix);
	}
	fx_dataset_free(&d);
	fx_labels_free(&hl);
	return 0;
}
