/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-template.c - libFuzzer target for the trait-template engine
 * (tu_rbac_interpolate), the node_labels_expression evaluator (through
 * tu_rbac_role_matches_host) and the SSH_AUTH_INFO_0 certificate reader
 * (tu_decide_ssh_cert, tu_decide_ssh_cert_trusted, tu_decide_ssh_cert_key_id).
 * The first byte picks the target.  Contract checks: results are 0 or a
 * negative errno with a message; no empty interpolated value; the key id is
 * NUL-terminated and printable; a parsed certificate whose signature
 * verifies is an identity for a CA holding its own signature key (inside its
 * validity) and for no other (no CA known: -ENOKEY; another key:
 * -EKEYREJECTED); one whose signature does not verify is never one.
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

static void b64_encode(const uint8_t *p, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = t[(v >> 6) & 63];
		out[o++] = t[v & 63];
	}
	if (n - i == 1) {
		out[o++] = t[p[i] >> 2];
		out[o++] = t[(p[i] & 3) << 4];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		out[o++] = t[p[i] >> 2];
		out[o++] = t[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		out[o++] = t[(p[i + 1] & 15) << 2];
		out[o++] = '=';
	}
	out[o] = '\0';
}

/* The certificate target: parser, CA match and key id agree. */
static void cert_target(const char *s)
{
	static struct tu_ssh_cert c;
	static char line[TU_SSH_CERT_CA_KEY_MAX * 2];
	struct tu_err e = { 0 };
	char id[256];
	int k;

	memset(id, 0x7e, sizeof(id));
	/* sshd's %k reading (issue 10: no signature check) accepts and refuses exactly the same
	 * inputs, with the same fields, and only claims the signature on sshd's word. */
	static struct tu_ssh_cert sc;
	struct tu_err se = { 0 };
	int ks = tu_decide_ssh_cert_parse(s, TU_SSH_CERT_SSHD_VERIFIED, &sc, &se);
	k = tu_decide_ssh_cert(s, &c, &e);
	if (ks != k || (k == 0 && (!sc.signature_ok || !sc.sshd_verified || c.sshd_verified ||
				   strcmp(sc.key_id, c.key_id) != 0 || sc.ca_key_len != c.ca_key_len ||
				   sc.valid_after != c.valid_after || sc.valid_before != c.valid_before ||
				   sc.mfa_verified != c.mfa_verified || sc.device_verified != c.device_verified)))
		abort();
	if (k != 0) {
		if ((k != -ENOENT && k != -EBADMSG && k != -EMSGSIZE && k != -ENOMEM) || !e.msg[0] || !se.msg[0])
			abort();
		return;
	}
	if (c.ca_key_len == 0 || c.ca_key_len > sizeof(c.ca_key))
		abort();
	/* A CA holding exactly the certificate's signature key ("x <base64>"). */
	char *keys[1] = { line };
	struct tu_user_ca ca = { .known = true, .keys = { keys, 1 } }, none = { 0 };
	line[0] = 'x';
	line[1] = ' ';
	b64_encode(c.ca_key, c.ca_key_len, line + 2);
	int64_t inside = c.valid_after < (uint64_t) INT64_MAX / 1000000 ? (int64_t) c.valid_after * 1000000 : -1;
	k = tu_decide_ssh_cert_key_id(s, &ca, inside, id, sizeof(id), &e);
	if (!c.signature_ok) {
		if (k != -EKEYREJECTED) /* the right key, a signature that does not verify */
			abort();
	} else if (inside >= 0 && c.valid_after < c.valid_before) {
		if (k != 0 || strcmp(id, c.key_id) != 0)
			abort();
		size_t n = strnlen(id, sizeof(id));
		if (n == 0 || n >= sizeof(id))
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char) id[i] < 0x20 || id[i] == 0x7f)
				abort();
	} else if (k != 0 && k != -EKEYEXPIRED) {
		abort();
	}
	if (tu_decide_ssh_cert_trusted(&c, &none, inside, NULL) != -ENOKEY)
		abort();
	line[2] = line[2] == 'A' ? 'B' : 'A'; /* another key */
	k = tu_decide_ssh_cert_trusted(&c, &ca, inside, NULL);
	if (k == 0 || (k != -EKEYREJECTED && k != -EKEYEXPIRED))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char s[70000];
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
	default:
		cert_target(s);
		break;
	}
	return 0;
}
