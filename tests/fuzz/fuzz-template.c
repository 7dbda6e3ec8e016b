/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-template.c - libFuzzer target for the trait-template engine
 * (tu_rbac_interpolate), the node_labels_expression evaluator (through
 * tu_rbac_role_matches_host) and the SSH_AUTH_INFO_0 certificate reader
 * (tu_decide_ssh_cert_key_id).  The first byte picks the target.
 * Contract checks: results are 0 or a negative errno with a message; no
 * empty interpolated value; the key id is NUL-terminated and printable.
 *
 * Replayed by `make check` (tests/fuzz/local.mk).  libFuzzer build by hand,
 * from a build dir "build" (decide.c needs the rest of libcore):
 *   clang -g -fsanitize=fuzzer,address,undefined -include build/config.h \
 *     -Ilibcore -Ilibcore/base -Itests/unit tests/fuzz/fuzz-template.c \
 *     build/.libs/libteleport-unix.so -o fuzz-template
 *   ./fuzz-template -max_total_time=60 tests/fuzz/corpus/template
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"
#include "err.h"
#include "rbac-fixture.h"
#include "rbac.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[20000];
	struct tu_err e = { 0 };
	int k;

	if (size < 1 || size >= sizeof(s))
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';

	switch (data[0] % 3) {
	case 0: {
		struct tu_labels traits = fx_labels("logins=alice,root;email=Alice <alice@example.com>;team=db,web;empty=");
		struct tu_strv out = { 0 };
		k = tu_rbac_interpolate(s, &traits, &out, &e);
		if (k < 0 && (!e.msg[0] || k != e.code))
			abort();
		if (k == 0)
			for (size_t i = 0; i < out.n; i++)
				if (!out.v[i] || !out.v[i][0])
					abort();
		fx_strv_free(&out);
		fx_labels_free(&traits);
		break;
	}
	case 1: {
		struct fx_role rs = { "r", .allow_logins = "a", .allow_expr = s, .deny_expr = s };
		struct fx_user us = { "u", "r", "teams=db,web;email=a@b.c" };
		struct tu_labels hl = fx_labels("env=prod;team=db");
		struct tu_host h = { "h", "id", "c", &hl };
		struct tu_role r;
		struct tu_user u;
		bool m = false;
		fx_role_build(&rs, &r);
		fx_user_build(&us, &u);
		k = tu_rbac_role_matches_host(&r, false, &u, &h, &m, NULL, &e);
		if (k < 0 && k != -ENOMEM && k != -EBADMSG && k != -EMSGSIZE)
			abort();
		k = tu_rbac_role_matches_host(&r, true, &u, &h, &m, NULL, &e);
		fx_role_free(&r);
		fx_user_free(&u);
		fx_labels_free(&hl);
		break;
	}
	default: {
		char id[256];
		memset(id, 0x7e, sizeof(id));
		k = tu_decide_ssh_cert_key_id(s, id, sizeof(id), &e);
		if (k == 0) {
			size_t n = strnlen(id, sizeof(id));
			if (n == 0 || n >= sizeof(id))
				abort();
			for (size_t i = 0; i < n; i++)
				if ((unsigned char) id[i] < 0x20 || id[i] == 0x7f)
					abort();
			/* The extension reader sees the same certificate and the same key id. */
			struct tu_ssh_cert c;
			if (tu_decide_ssh_cert(s, &c, NULL) != 0 || strcmp(c.key_id, id) != 0)
				abort();
		} else if (k != -ENOENT && k != -EBADMSG && k != -EMSGSIZE && k != -ENOMEM) {
			abort();
		}
		break;
	}
	}
	return 0;
}
