/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-decide.c - table-driven tests of libcore/decide.c: owners (SPEC §4),
 * who is logging in (TELEPORT_USERNAME, SSH certificate key id, explicit
 * user, owner), user state, locks of every target kind (Teleport's
 * lock_test.go / ComputeLockTargets rules), RBAC verdicts, and the golden
 * vectors (alice/bob/carol, access/dev/no-prod, two locks).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "cache.h"
#include "cleanup.h"
#include "conf.h"
#include "decide.h"
#include "snapshot.h"
#include "err.h"
#include "rbac-fixture.h"

#define SEC 1000000LL
#define NOW (1800000000LL * SEC) /* 2027-01-15 */

/* ---- SSH certificates built by hand ---- */

struct blob {
	uint8_t b[4096];
	size_t n;
};

static void put_u32(struct blob *b, uint32_t v)
{
	b->b[b->n++] = (uint8_t) (v >> 24);
	b->b[b->n++] = (uint8_t) (v >> 16);
	b->b[b->n++] = (uint8_t) (v >> 8);
	b->b[b->n++] = (uint8_t) v;
}

static void put_str(struct blob *b, const char *s, size_t n)
{
	put_u32(b, (uint32_t) n);
	memcpy(b->b + b->n, s, n);
	b->n += n;
}

/*
 * Who signs the certificates built below: 'T' the test's Teleport user CA, any other letter
 * another CA; and their validity window (seconds).  Each CA is an ed25519 key whose private seed
 * is 32 bytes of that letter; put_sig really signs (the parser verifies signatures).
 */
static char cert_ca = 'T';
static uint64_t cert_after = 0, cert_before = UINT64_MAX;

static void put_u64(struct blob *b, uint64_t v)
{
	put_u32(b, (uint32_t) (v >> 32));
	put_u32(b, (uint32_t) v);
}

static EVP_PKEY *ca_key(char which)
{
	unsigned char seed[32];
	EVP_PKEY *k;

	memset(seed, which, sizeof(seed));
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	assert_non_null(k);
	return k;
}

static void ca_blob(struct blob *b, char which)
{
	EVP_PKEY *k = ca_key(which);
	unsigned char pk[32];
	size_t n = sizeof(pk);

	assert_int_equal(EVP_PKEY_get_raw_public_key(k, pk, &n), 1);
	EVP_PKEY_free(k);
	b->n = 0;
	put_str(b, "ssh-ed25519", 11);
	put_str(b, (const char *) pk, n);
}

static void b64(const struct blob *b, char *out);

/* The test's Teleport user CA as a dataset holds it ("ssh-ed25519 <base64>"). */
static char test_ca_line[128];
static char *test_ca_keys[2] = { test_ca_line, NULL };
static const struct tu_user_ca test_ca = { .known = true, .keys = { test_ca_keys, 1 } };

static void test_ca_init(void)
{
	struct blob b;

	ca_blob(&b, 'T');
	memcpy(test_ca_line, "ssh-ed25519 ", 12);
	b64(&b, test_ca_line + 12);
}

/* An ed25519 user certificate up to and including the key id; put_tail adds the rest. */
static void make_cert(struct blob *b, const char *type, uint32_t cert_type, const char *key_id)
{
	b->n = 0;
	put_str(b, type, strlen(type));
	put_str(b, "nonce-nonce-nonce-nonce-nonce-32", 32);
	int fields = strstr(type, "rsa") ? 2 : strstr(type, "ecdsa") ? 2 : 1;
	if (strncmp(type, "sk-", 3) == 0)
		fields++;
	for (int i = 0; i < fields; i++)
		put_str(b, "0123456789abcdef0123456789abcdef", 32);
	put_u32(b, 0);
	put_u32(b, 42); /* serial */
	put_u32(b, cert_type);
	put_str(b, key_id, strlen(key_id));
}

/* Appends reserved, the signature key (cert_ca) and a signature (never checked: sshd did). */
static void put_sig(struct blob *b)
{
	struct blob k, sig = { 0 };

	EVP_PKEY *key = ca_key(cert_ca);
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	unsigned char raw[64];
	size_t rl = sizeof(raw);

	put_str(b, "", 0); /* reserved */
	ca_blob(&k, cert_ca);
	put_str(b, (const char *) k.b, k.n);
	assert_non_null(m);
	assert_int_equal(EVP_DigestSignInit(m, NULL, NULL, NULL, key), 1);
	assert_int_equal(EVP_DigestSign(m, raw, &rl, b->b, b->n), 1);
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(key);
	put_str(&sig, "ssh-ed25519", 11);
	put_str(&sig, (const char *) raw, rl);
	put_str(b, (const char *) sig.b, sig.n);
}

/* Appends the rest of a certificate after the key id: principals, validity, critical options,
 * the extensions (name, value pairs; a NULL value is an extension without one), reserved,
 * signature key and signature. */
static void put_tail(struct blob *b, const char *const *ext)
{
	struct blob e = { 0 }, v;

	put_str(b, "\0\0\0\x04root", 8); /* principals: "root" */
	put_u64(b, cert_after);
	put_u64(b, cert_before);
	put_str(b, "", 0); /* critical options */
	for (size_t i = 0; ext && ext[i]; i += 2) {
		put_str(&e, ext[i], strlen(ext[i]));
		if (ext[i + 1]) {
			v.n = 0;
			put_str(&v, ext[i + 1], strlen(ext[i + 1]));
			put_str(&e, (const char *) v.b, v.n);
		} else {
			put_str(&e, "", 0);
		}
	}
	put_str(b, (const char *) e.b, e.n);
	put_sig(b);
}

static void b64(const struct blob *b, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, i;
	for (i = 0; i + 2 < b->n; i += 3) {
		uint32_t v = (uint32_t) b->b[i] << 16 | (uint32_t) b->b[i + 1] << 8 | b->b[i + 2];
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = t[(v >> 6) & 63];
		out[o++] = t[v & 63];
	}
	if (b->n - i == 1) {
		uint32_t v = (uint32_t) b->b[i] << 16;
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (b->n - i == 2) {
		uint32_t v = (uint32_t) b->b[i] << 16 | (uint32_t) b->b[i + 1] << 8;
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = t[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
}

static char *auth_info_line(const char *type, uint32_t cert_type, const char *key_id)
{
	struct blob b;
	char *s = malloc(8192);
	make_cert(&b, type, cert_type, key_id);
	put_tail(&b, NULL);
	int n = snprintf(s, 8192, "publickey %s ", type);
	b64(&b, s + n);
	return s;
}

/* A complete certificate for key_id with these extensions, as an SSH_AUTH_INFO_0 line. */
static char *auth_info_ext(const char *key_id, const char *const *ext)
{
	static const char type[] = "ssh-ed25519-cert-v01@openssh.com";
	struct blob b;
	char *s = malloc(8192);

	make_cert(&b, type, 1, key_id);
	put_tail(&b, ext);
	int n = snprintf(s, 8192, "publickey %s ", type);
	b64(&b, s + n);
	return s;
}

#define DEVICE_EXTS "teleport-device-id", "dev-1", "teleport-device-asset-tag", "C02X", \
		    "teleport-device-credential-id", "cred-1"

static void test_ssh_cert_extensions(void **state)
{
	static const struct {
		const char *ext[10];
		bool mfa, device;
	} cases[] = {
		{ { NULL }, false, false },
		{ { "permit-pty", NULL, NULL }, false, false },
		{ { "mfa-verified", "webauthn-dev-1", NULL }, true, false },
		{ { "mfa-verified", NULL, NULL }, false, false },               /* no value */
		{ { "permit-pty", NULL, "mfa-verified", "x", NULL }, true, false },
		{ { DEVICE_EXTS, NULL }, false, true },
		{ { DEVICE_EXTS, "mfa-verified", "d", NULL }, true, true },
		{ { "teleport-device-id", "dev-1", "teleport-device-asset-tag", "C02X", NULL }, false, false },
		{ { "teleport-device-id", "dev-1", "teleport-device-asset-tag", "C02X", "teleport-device-credential-id", NULL, NULL },
		  false, false },
	};

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *line = auth_info_ext("mia", cases[i].ext);
		struct tu_ssh_cert c;

		assert_int_equal(tu_decide_ssh_cert(line, &c, NULL), 0);
		assert_string_equal(c.key_id, "mia");
		if (c.mfa_verified != cases[i].mfa || c.device_verified != cases[i].device)
			fail_msg("case %zu: mfa %d device %d", i, c.mfa_verified, c.device_verified);
	}
	/* The short test certificates (no tail): the key id, and no proof. */
	{
		_cleanup_free_ char *line = auth_info_line("ssh-ed25519-cert-v01@openssh.com", 1, "mia");
		struct tu_ssh_cert c;

		assert_int_equal(tu_decide_ssh_cert(line, &c, NULL), 0);
		assert_false(c.mfa_verified || c.device_verified);
	}
	/* An extension whose data is not one SSH string: the certificate is malformed. */
	{
		static const char type[] = "ssh-ed25519-cert-v01@openssh.com";
		struct blob b, e = { 0 };
		struct tu_ssh_cert c;
		struct tu_err err = { 0 };
		char line[8192];

		make_cert(&b, type, 1, "mia");
		put_str(&b, "", 0);
		for (int i = 0; i < 4; i++)
			put_u32(&b, 0);
		put_str(&b, "", 0);
		put_str(&e, "mfa-verified", 12);
		put_str(&e, "\0\0\0\x09short", 9); /* claims 9 bytes, holds 5 */
		put_str(&b, (const char *) e.b, e.n);
		int n = snprintf(line, sizeof(line), "publickey %s ", type);
		b64(&b, line + n);
		assert_int_equal(tu_decide_ssh_cert(line, &c, &err), -EBADMSG);
		assert_non_null(strstr(err.msg, "bad extensions"));
	}
}

/* The key id of a certificate from the test's Teleport CA, valid at NOW. */
static int key_id_of(const char *info, char *id, size_t size, struct tu_err *e)
{
	return tu_decide_ssh_cert_key_id(info, &test_ca, NOW, id, size, e);
}

static void test_ssh_cert_key_id(void **state)
{
	(void) state;
	static const char *types[] = {
		"ssh-ed25519-cert-v01@openssh.com", "ssh-rsa-cert-v01@openssh.com",
		"ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp521-cert-v01@openssh.com",
		"sk-ssh-ed25519-cert-v01@openssh.com", "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
	};
	char id[256];
	struct tu_err e;

	for (size_t i = 0; i < ELEMENTSOF(types); i++) {
		_cleanup_free_ char *s = auth_info_line(types[i], 1, "alice@example.com");
		assert_int_equal(key_id_of(s, id, sizeof(id), NULL), 0);
		assert_string_equal(id, "alice@example.com");
	}
	/* sshd may append information after the key */
	{
		_cleanup_free_ char *c = auth_info_line(types[0], 1, "carol");
		char buf[9000];
		snprintf(buf, sizeof(buf), "%s some extra info\r\n", c);
		assert_int_equal(key_id_of(buf, id, sizeof(id), NULL), 0);
		assert_string_equal(id, "carol");
	}
	/* several methods: the certificate line is found */
	{
		_cleanup_free_ char *c = auth_info_line(types[0], 1, "bob");
		char buf[9000];
		snprintf(buf, sizeof(buf), "password\npublickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\n%s\n", c);
		assert_int_equal(key_id_of(buf, id, sizeof(id), NULL), 0);
		assert_string_equal(id, "bob");
	}
	struct {
		const char *info;
		int want;
		const char *msg;
	} bad[] = {
		{ "", -ENOENT, "no certificate" },
		{ "password\n", -ENOENT, "no certificate" },
		{ "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==", -ENOENT, "no certificate" },
		{ "publickey ssh-ed25519-cert-v01@openssh.com !!!!", -EBADMSG, "base64" },
		{ "publickey ssh-ed25519-cert-v01@openssh.com AAAA=A", -EBADMSG, "base64" },
		{ "publickey ssh-ed25519-cert-v01@openssh.com ", -EBADMSG, "certificate type does not match" },
		{ "publickey foo-cert-v01@openssh.com AAAA", -EBADMSG, "unknown certificate type" },
		{ "publickey ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t", -EBADMSG, "truncated" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		memset(&e, 0, sizeof(e));
		int k = key_id_of(bad[i].info, id, sizeof(id), &e);
		if (k != bad[i].want || !strstr(e.msg, bad[i].msg))
			fail_msg("bad case %zu: want %d '%s' got %d '%s'", i, bad[i].want, bad[i].msg, k, e.msg);
	}
	assert_int_equal(key_id_of(NULL, id, sizeof(id), NULL), -ENOENT);
	/* host certificate, type mismatch, empty / control / long key ids */
	{
		_cleanup_free_ char *s = auth_info_line(types[0], 2, "host");
		memset(&e, 0, sizeof(e));
		assert_int_equal(key_id_of(s, id, sizeof(id), &e), -EBADMSG);
		assert_non_null(strstr(e.msg, "not a user certificate"));
	}
	{
		_cleanup_free_ char *s = auth_info_line(types[0], 1, "");
		assert_int_equal(key_id_of(s, id, sizeof(id), &e), -EBADMSG);
		_cleanup_free_ char *s2 = auth_info_line(types[0], 1, "a\nb");
		assert_int_equal(key_id_of(s2, id, sizeof(id), &e), -EBADMSG);
		char longid[300];
		memset(longid, 'x', sizeof(longid) - 1);
		longid[sizeof(longid) - 1] = '\0';
		_cleanup_free_ char *s3 = auth_info_line(types[0], 1, longid);
		assert_int_equal(key_id_of(s3, id, sizeof(id), &e), -EBADMSG);
		/* a small caller buffer is respected */
		_cleanup_free_ char *s4 = auth_info_line(types[0], 1, "abcdefgh");
		assert_int_equal(key_id_of(s4, id, 8, &e), -EBADMSG);
		assert_int_equal(key_id_of(s4, id, 9, &e), 0);
	}
	{
		/* blob type differs from the line's type */
		struct blob b;
		char s[8192];
		make_cert(&b, "ssh-rsa-cert-v01@openssh.com", 1, "x");
		int n = snprintf(s, sizeof(s), "publickey ssh-ed25519-cert-v01@openssh.com ");
		b64(&b, s + n);
		assert_int_equal(key_id_of(s, id, sizeof(id), &e), -EBADMSG);
	}
	{
		/* oversize input */
		char *big = malloc(70000);
		memset(big, 'A', 69999);
		big[69999] = '\0';
		assert_int_equal(key_id_of(big, id, sizeof(id), &e), -EMSGSIZE);
		memcpy(big, "publickey ssh-ed25519-cert-v01@openssh.com ", 43);
		big[65000] = '\0';
		assert_int_equal(key_id_of(big, id, sizeof(id), &e), -EBADMSG);
		free(big);
	}
	/* every truncation of a good line is a clean error */
	{
		_cleanup_free_ char *s = auth_info_line(types[0], 1, "alice");
		size_t n = strlen(s);
		for (size_t cut = 0; cut < n; cut++) {
			char *t = strndup(s, cut);
			int k = key_id_of(t, id, sizeof(id), NULL);
			assert_true(k == -ENOENT || k == -EBADMSG || (k == 0 && strcmp(id, "alice") == 0));
			free(t);
		}
	}
}

/* ---- a small world ---- */

static const struct fx_role roles[] = {
	{ "access", .allow_logins = "{{internal.logins}}", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP },
	{ "dev", .allow_logins = "dev,{{external.unix_login}}", .allow_labels = "env=staging,dev-*", .mode = TU_HOST_USER_MODE_KEEP },
	{ "no-prod", .deny_logins = "root", .deny_labels = "env=prod" },
	{ "no-hostuser", .allow_logins = "plain", .allow_labels = "*=*" },
	{ "shared", .allow_logins = "deploy", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP },
	{ "rootish", .allow_logins = "root", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP },
	{ "strict", .allow_logins = "strict", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP, .lock_mode = "strict" },
	{ "best", .allow_logins = "best", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP, .lock_mode = "best_effort" },
	{ "mfa", .allow_logins = "mfa-login", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP, .require_mfa = 1 },
	{ "hwkey", .allow_logins = "hw-login", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP, .require_mfa = 5 },
	{ "devtrust", .allow_logins = "dt-login", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP, .device_trust = "required" },
	{ "devopt", .allow_logins = "dto-login", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP, .device_trust = "optional" },
	{ "devhuman", .allow_logins = "dth-login", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP, .device_trust = "required-for-humans" },
	{ "devnew", .allow_logins = "dtx-login", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP, .device_trust = "some-future-mode" },
	{ "mfa-both", .allow_logins = "both", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP, .require_mfa = 1 },
	{ "plain-both", .allow_logins = "both", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP },
	{ "mfa-prod", .allow_logins = "mp-login", .allow_labels = "env=prod", .mode = TU_HOST_USER_MODE_KEEP, .require_mfa = 1 },
	{ "mp-any", .allow_logins = "mp-login", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP },
	{ 0 },
};

static const struct fx_user users[] = {
	{ "alice", "access,dev", "logins=alice,ubuntu;unix_login=al" },
	{ "bob", "dev", "logins=bob;unix_login=robert", .is_locked = true, .lock_expires = NOW + 3600 * SEC },
	{ "carol", "access", "logins=carol", .expires = NOW - SEC },
	{ "dave", "access", "logins=dave", .is_locked = true, .lock_expires = NOW - SEC },   /* lock over */
	{ "erin", "access", "logins=erin", .is_locked = true },                              /* no LockExpires */
	{ "frank@example.com", "access,no-prod", "logins=frank,root" },
	{ "gina", "shared", "" },
	{ "hank", "shared", "" },
	{ "ivan", "no-hostuser", "" },
	{ "judy", "access", "logins=judy", .expires = NOW + 3600 * SEC },
	{ "kim", "access", "logins=ubuntu" },
	{ "mallory", "access,dev,nonexistent-role", "logins=mal" },
	{ "rooty", "rootish", "" },
	{ "plain", "dev", "" },        /* named like a login it does not get */
	{ "xavier", "access", "logins=shared-by-trait" },
	{ "yvonne", "access", "logins=shared-by-trait" },
	{ "sid", "strict", "" },
	{ "bea", "best", "" },
	{ "mia", "mfa", "" },
	{ "hal", "hwkey", "" },
	{ "dan", "devtrust", "" },
	{ "otto", "devopt", "" },
	{ "dana", "devhuman", "" },
	{ "dex", "devnew", "" },
	{ "bo", "mfa-both,plain-both", "" },
	{ "ob", "plain-both,mfa-both", "" },
	{ "pam", "mfa-prod,mp-any", "" },
	{ 0 },
};

static const struct fx_lock locks[] = {
	{ "lock-bob", "user=bob", "investigating" },
	{ "lock-frank-expired", "user=frank@example.com", "old", NOW - SEC },
	{ "lock-judy-later", "user=judy", "until tomorrow", NOW + 86400 * SEC },
	{ "lock-role-dev-x", "role=nothing", NULL },
	{ "lock-login-ubuntu", "login=ubuntu", "no ubuntu today" },
	{ "lock-mfa", "mfa_device=dev-1", NULL },
	{ "lock-device", "device=d-1", NULL },
	{ 0 },
};

/* Locks that only some cases include. */
static const struct fx_lock host_locks[] = {
	{ "lock-host", "server_id=host-uuid", "maintenance" },
	{ 0 },
};

static const struct fx_lock host_locks_cluster[] = {
	{ "lock-host-c", "server_id=host-uuid.example.com", "maintenance" },
	{ 0 },
};

static const struct fx_lock host_locks_node[] = {
	{ "lock-node", "node=host-uuid", "legacy" },
	{ 0 },
};

static const struct fx_lock other_host_locks[] = {
	{ "lock-other", "server_id=other-uuid", NULL },
	{ "lock-other-c", "server_id=host-uuid.other.com", NULL },
	{ "lock-other-prefix", "server_id=host-uuid2", NULL },
	{ "lock-empty", "", NULL },
	{ 0 },
};

static const struct fx_lock role_locks[] = {
	{ "lock-dev", "role=dev", "change freeze", NOW + 3600 * SEC },
	{ 0 },
};

static const struct fx_lock multi_locks[] = {
	{ "lock-multi", "user=nobody;login=alice", "multi" },
	{ 0 },
};

/* ---- owners ---- */

struct owner_case {
	const char *login;
	int source;
	const char *host;
	const char *want;
};

static const struct owner_case owner_cases[] = {
	{ "alice", TU_SOURCE_HOST_USER_CREATION, "env=prod", "alice" },            /* step 1 */
	{ "ubuntu", TU_SOURCE_HOST_USER_CREATION, "env=prod", "alice,kim" },       /* step 2: shared */
	{ "al", TU_SOURCE_HOST_USER_CREATION, "env=staging", "alice" },            /* step 3 */
	{ "al", TU_SOURCE_HOST_USER_CREATION, "env=prod", "" },                    /* dev does not match prod */
	{ "dev", TU_SOURCE_HOST_USER_CREATION, "env=staging", "alice,bob,plain" },  /* mallory: a role is missing */
	{ "deploy", TU_SOURCE_HOST_USER_CREATION, "", "gina,hank" },
	{ "plain", TU_SOURCE_HOST_USER_CREATION, "", "" },                        /* role has no host users */
	{ "plain", TU_SOURCE_ALL_LOGINS, "", "plain" },                           /* step 1 once it is an account */
	{ "plain", TU_SOURCE_ALL_LOGINS, "env=staging", "plain" },
	{ "carol", TU_SOURCE_HOST_USER_CREATION, "", "" },                        /* expired users own nothing */
	{ "judy", TU_SOURCE_HOST_USER_CREATION, "", "judy" },
	{ "root", TU_SOURCE_HOST_USER_CREATION, "", "" },                         /* never an account */
	{ "nobody", TU_SOURCE_HOST_USER_CREATION, "", "" },
	{ "shared-by-trait", TU_SOURCE_HOST_USER_CREATION, "", "xavier,yvonne" },
	{ "bad:login", TU_SOURCE_HOST_USER_CREATION, "", "" },
	{ "", TU_SOURCE_HOST_USER_CREATION, "", "" },
	{ "robert", TU_SOURCE_ALL_LOGINS, "env=dev-1", "bob" },                    /* locked users still own */
	{ "frank", TU_SOURCE_HOST_USER_CREATION, "env=staging", "frank@example.com" },
	{ "frank", TU_SOURCE_HOST_USER_CREATION, "env=prod", "" },                 /* denied here */
	{ "mal", TU_SOURCE_HOST_USER_CREATION, "", "" },                          /* a role is missing: no account */
	{ "mal", TU_SOURCE_ALL_LOGINS, "", "" },
};

static void test_owners(void **state)
{
	(void) state;
	struct tu_dataset d;
	fx_dataset_build(&d, users, roles, locks);
	for (size_t i = 0; i < ELEMENTSOF(owner_cases); i++) {
		const struct owner_case *c = &owner_cases[i];
		struct tu_labels hl = fx_labels(c->host);
		struct tu_host h = { "web-1", "host-uuid", "example.com", &hl };
		struct tu_strv out = { 0 };
		char buf[256];
		/* tu_decide_owners has no clock: carol counts there; check through decide_pure for expiry */
		assert_int_equal(tu_decide_owners(&d, &h, c->source, c->login, &out, NULL), 0);
		const char *want = c->want;
		if (strcmp(c->login, "carol") == 0)
			want = "carol";
		if (strcmp(fx_join(&out, buf, sizeof(buf)), want) != 0)
			fail_msg("case %zu '%s': want '%s' got '%s'", i, c->login, want, buf);
		fx_strv_free(&out);
		fx_labels_free(&hl);
	}
	fx_dataset_free(&d);
}

/* ---- decisions ---- */

struct decide_case {
	const char *login;
	const char *host;
	const struct fx_lock *extra_locks;
	bool trust_env, trust_cert;
	int source;
	const char *tp_user;     /* TELEPORT_USERNAME */
	const char *cert_id;     /* SSH_AUTH_INFO_0 certificate key id ("!" = malformed) */
	const char *explicit_user;
	enum tu_verdict_kind want;
	const char *user;
	const char *reason;
	bool stale;              /* deciding from a snapshot */
};

#define HU TU_SOURCE_HOST_USER_CREATION
#define AL TU_SOURCE_ALL_LOGINS

static const struct decide_case decide_cases[] = {
	/* owners */
	{ "alice", "env=staging", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "alice", "allowed by role 'access' (logins 'alice')" },
	{ "al", "env=staging", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "alice", "allowed by role 'dev' (logins 'al')" },
	{ "nobody", "env=staging", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_UNKNOWN, "", "'nobody' is not a Teleport login on this host" },
	{ "root", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_UNKNOWN, "", "not a Teleport login" },
	{ "ubuntu", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "", "the login is shared, an identity is needed ('ubuntu' is granted to alice, kim)" },
	{ "deploy", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "", "the login is shared, an identity is needed" },
	{ "plain", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_UNKNOWN, "", "not a Teleport login" },
	{ "plain", "", NULL, 0, 0, AL, NULL, NULL, NULL, TU_VERDICT_DENY, "plain", "no role allows login 'plain' on this host" },
	/* a login only an expired user grants is still theirs: denied, never "unknown" (issue 14 F2) */
	{ "carol", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "carol", "Teleport user 'carol' has expired" },
	/* trusted identities */
	{ "deploy", "", NULL, 1, 0, HU, "gina", NULL, NULL, TU_VERDICT_ALLOW, "gina", "allowed by role 'shared'" },
	{ "deploy", "", NULL, 0, 0, HU, "gina", NULL, NULL, TU_VERDICT_DENY, "", "shared" },                  /* env not trusted */
	{ "deploy", "", NULL, 0, 1, HU, NULL, "hank", NULL, TU_VERDICT_ALLOW, "hank", "allowed" },
	{ "deploy", "", NULL, 0, 0, HU, NULL, "hank", NULL, TU_VERDICT_DENY, "", "shared" },                  /* cert not trusted */
	{ "deploy", "", NULL, 0, 1, HU, NULL, "!", NULL, TU_VERDICT_DENY, "", "shared" },                     /* malformed: owner path */
	{ "deploy", "", NULL, 1, 1, HU, "gina", "hank", NULL, TU_VERDICT_ALLOW, "gina", "allowed" },          /* env first */
	{ "deploy", "", NULL, 1, 1, HU, "", "hank", NULL, TU_VERDICT_ALLOW, "hank", "allowed" },
	{ "ubuntu", "", NULL, 1, 0, HU, "kim", NULL, NULL, TU_VERDICT_DENY, "kim", "locked by lock 'lock-login-ubuntu' (login=ubuntu): no ubuntu today" },
	{ "alice", "", NULL, 1, 0, HU, "ivan", NULL, NULL, TU_VERDICT_DENY, "ivan", "no role allows login 'alice'" },
	{ "alice", "", NULL, 1, 0, HU, "ghost", NULL, NULL, TU_VERDICT_DENY, "ghost", "Teleport user 'ghost' (TELEPORT_USERNAME) does not exist" },
	{ "anything", "", NULL, 0, 0, HU, NULL, NULL, "ghost", TU_VERDICT_DENY, "ghost", "does not exist" },
	{ "plain", "", NULL, 0, 0, HU, NULL, NULL, "ivan", TU_VERDICT_ALLOW, "ivan", "allowed by role 'no-hostuser'" },
	{ "root", "", NULL, 0, 0, HU, NULL, NULL, "rooty", TU_VERDICT_ALLOW, "rooty", "allowed" },
	{ "root", "env=prod", NULL, 0, 0, HU, NULL, NULL, "frank@example.com", TU_VERDICT_DENY, "frank@example.com", "denied by role 'no-prod' (deny node_labels match this host)" },
	{ "root", "env=staging", NULL, 0, 0, HU, NULL, NULL, "frank@example.com", TU_VERDICT_DENY, "frank@example.com", "denied by role 'no-prod' (deny logins 'root')" },
	{ "frank", "env=staging", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "frank@example.com", "allowed" },
	{ "frank", "env=prod", NULL, 0, 0, HU, NULL, NULL, "frank@example.com", TU_VERDICT_DENY, "frank@example.com", "no-prod" },
	/* user state */
	{ "robert", "env=dev-1", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "bob", "Teleport user 'bob' is locked" },
	{ "carol", "", NULL, 0, 0, HU, NULL, NULL, "carol", TU_VERDICT_DENY, "carol", "Teleport user 'carol' has expired" },
	{ "dave", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "dave", "allowed" },                 /* lock over */
	{ "erin", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "erin", "allowed" },                 /* no LockExpires */
	{ "judy", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "judy", "locked by lock 'lock-judy-later' (user=judy): until tomorrow" },
	/* a role that does not exist refuses the login (Teleport's FetchRoles fails) */
	{ "mal", "", NULL, 0, 0, HU, NULL, NULL, "mallory", TU_VERDICT_DENY, "mallory", "role 'nonexistent-role' does not exist or cannot be used" },
	{ "mal", "", NULL, 1, 0, HU, "mallory", NULL, NULL, TU_VERDICT_DENY, "mallory", "role 'nonexistent-role' does not exist" },
	{ "mal", "", NULL, 0, 0, HU, NULL, NULL, "mallory", TU_VERDICT_DENY, "mallory", "role 'nonexistent-role' does not exist", true },
	{ "mal", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_UNKNOWN, "", "not a Teleport login" },      /* owns nothing */
	/* locks */
	{ "bob", "", NULL, 0, 0, HU, NULL, NULL, "bob", TU_VERDICT_DENY, "bob", "locked" },
	{ "frank", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "frank@example.com", "allowed" },    /* expired lock */
	{ "alice", "", host_locks, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "alice", "locked by lock 'lock-host' (server_id=host-uuid): maintenance" },
	{ "alice", "", host_locks_cluster, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "alice", "locked by lock 'lock-host-c' (server_id=host-uuid.example.com)" },
	{ "alice", "", host_locks_node, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "alice", "locked by lock 'lock-node' (node=host-uuid): legacy" },
	{ "alice", "", other_host_locks, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "alice", "allowed" },
	{ "alice", "env=staging", role_locks, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "alice", "locked by lock 'lock-dev' (role=dev): change freeze" },
	{ "kim-login", "", role_locks, 0, 0, HU, NULL, NULL, "kim", TU_VERDICT_DENY, "kim", "no role allows" },
	{ "alice", "", multi_locks, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "alice", "locked by lock 'lock-multi' (login=alice): multi" },
	{ "ubuntu", "", NULL, 0, 0, HU, NULL, NULL, "alice", TU_VERDICT_DENY, "alice", "lock-login-ubuntu" },
	/* options.lock: strict denies when the lock view is a snapshot (offline) */
	{ "strict", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "sid", "allowed by role 'strict'" },
	{ "strict", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "sid", "role 'strict' sets options.lock: strict and the lock list is not current (offline)", true },
	{ "best", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "bea", "allowed", true },
	{ "alice", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "alice", "allowed", true },
	/* per-session MFA and device trust: only a session through Teleport (TELEPORT_USERNAME) proves them */
	{ "mfa-login", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "mia", "role 'mfa' allows login 'mfa-login' but requires per-session MFA (require_session_mfa), which this login does not prove" },
	{ "mfa-login", "", NULL, 1, 0, HU, "mia", NULL, NULL, TU_VERDICT_ALLOW, "mia", "allowed by role 'mfa' (logins 'mfa-login')" },
	{ "mfa-login", "", NULL, 0, 0, HU, "mia", NULL, NULL, TU_VERDICT_DENY, "mia", "requires per-session MFA" },     /* env not trusted */
	{ "mfa-login", "", NULL, 0, 1, HU, NULL, "mia", NULL, TU_VERDICT_DENY, "mia", "requires per-session MFA" },     /* a key id proves no MFA */
	{ "mfa-login", "", NULL, 1, 0, HU, "mia", NULL, "mia", TU_VERDICT_ALLOW, "mia", "allowed by role 'mfa'" },     /* online: identity passed on */
	{ "mfa-login", "", NULL, 0, 0, HU, NULL, NULL, "mia", TU_VERDICT_DENY, "mia", "requires per-session MFA" },     /* check USER LOGIN */
	{ "both", "", NULL, 1, 0, HU, "bo", NULL, NULL, TU_VERDICT_ALLOW, "bo", "allowed by role 'mfa-both'" },
	{ "hw-login", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "hal", "role 'hwkey' allows login 'hw-login' but requires per-session MFA" },
	{ "dt-login", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "dan", "role 'devtrust' allows login 'dt-login' but requires a trusted device (device_trust_mode: required), which this login does not prove" },
	{ "dth-login", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "dana", "requires a trusted device (device_trust_mode: required-for-humans)" },
	{ "dtx-login", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "dex", "requires a trusted device (device_trust_mode: some-future-mode)" },
	{ "dt-login", "", NULL, 1, 0, HU, "dan", NULL, NULL, TU_VERDICT_ALLOW, "dan", "allowed by role 'devtrust'" },
	{ "dto-login", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "otto", "allowed by role 'devopt'" },
	/* the first role that grants the login decides (Teleport's checkAccess), in the user's role order */
	{ "both", "", NULL, 0, 0, HU, NULL, NULL, "bo", TU_VERDICT_DENY, "bo", "role 'mfa-both' allows login 'both' but requires per-session MFA" },
	{ "both", "", NULL, 0, 0, HU, NULL, NULL, "ob", TU_VERDICT_ALLOW, "ob", "allowed by role 'plain-both'" },
	/* a role whose labels do not match this host asks for nothing */
	{ "mp-login", "env=dev", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_ALLOW, "pam", "allowed by role 'mp-any'" },
	{ "mp-login", "env=prod", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "pam", "role 'mfa-prod' allows login 'mp-login' but requires per-session MFA" },
	/* offline (from the cache) the same */
	{ "mfa-login", "", NULL, 1, 0, HU, "mia", NULL, NULL, TU_VERDICT_ALLOW, "mia", "allowed", true },
	{ "mfa-login", "", NULL, 0, 0, HU, NULL, NULL, NULL, TU_VERDICT_DENY, "mia", "requires per-session MFA", true },
};

static void test_decide_pure(void **state)
{
	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(decide_cases); i++) {
		const struct decide_case *c = &decide_cases[i];
		struct tu_dataset d;
		struct tu_labels hl = fx_labels(c->host);
		struct tu_host h = { "web-1", "host-uuid", "example.com", &hl };
		struct tu_decide_opts o = { c->trust_env, c->trust_cert, c->source, c->stale };
		_cleanup_free_ char *info = NULL;
		struct tu_verdict v;
		struct tu_err e = { 0 };

		fx_dataset_build(&d, users, roles, locks);
		d.user_ca = test_ca; /* borrowed, not freed by fx_dataset_free */
		for (size_t j = 0; c->extra_locks && c->extra_locks[j].name; j++) {
			d.locks = realloc(d.locks, (d.n_locks + 1) * sizeof(*d.locks));
			fx_lock_build(&c->extra_locks[j], &d.locks[d.n_locks++]);
		}
		if (c->cert_id)
			info = strcmp(c->cert_id, "!") == 0 ? strdup("publickey ssh-ed25519-cert-v01@openssh.com AAAA") :
							      auth_info_line("ssh-ed25519-cert-v01@openssh.com", 1, c->cert_id);
		struct tu_login_req req = { .login = c->login, .service = "sshd", .teleport_username = c->tp_user,
					    .ssh_auth_info = info, .explicit_user = c->explicit_user };
		memset(&v, 0x55, sizeof(v));
		assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, &e), 0);
		if (v.kind != c->want || strcmp(v.user, c->user) != 0 || !strstr(v.reason, c->reason))
			fail_msg("case %zu (%s): want %d '%s' '%s' got %d '%s' '%s'", i, c->login, c->want, c->user,
				 c->reason, v.kind, v.user, v.reason);
		assert_false(v.offline);
		fx_dataset_free(&d);
		fx_labels_free(&hl);
	}
}

/* The cluster's auth preference: cluster-wide MFA and device trust, the default locking mode. */
static const struct pref_case {
	struct tu_auth_pref pref;
	const char *login;
	const char *tp_user;     /* trusted TELEPORT_USERNAME */
	bool stale;
	enum tu_verdict_kind want;
	const char *user;
	const char *reason;
} pref_cases[] = {
#define P(...) { .known = true, __VA_ARGS__ }
	{ P(.require_mfa_type = 1), "alice", NULL, false, TU_VERDICT_DENY, "alice",
	  "login 'alice' is allowed by role but the cluster requires per-session MFA (auth_preference require_session_mfa), which this login does not prove" },
	{ P(.require_mfa_type = 1), "alice", "alice", false, TU_VERDICT_ALLOW, "alice", "allowed by role 'access'" },
	{ P(.require_mfa_type = 1), "alice", NULL, true, TU_VERDICT_DENY, "alice", "the cluster requires per-session MFA" },
	{ P(.require_mfa_type = 3), "mfa-login", NULL, false, TU_VERDICT_DENY, "mia", "the cluster requires per-session MFA" },
	{ P(.require_mfa_type = 1), "nobody", NULL, false, TU_VERDICT_UNKNOWN, "", "not a Teleport login" },
	{ P(.require_mfa_type = 1), "robert", NULL, false, TU_VERDICT_DENY, "bob", "Teleport user 'bob' is locked" },
	{ P(.device_trust_mode = (char *) "required"), "alice", NULL, false, TU_VERDICT_DENY, "alice",
	  "the cluster requires a trusted device (auth_preference device_trust.mode: required)" },
	{ P(.device_trust_mode = (char *) "required-for-humans"), "alice", NULL, false, TU_VERDICT_DENY, "alice",
	  "the cluster requires a trusted device (auth_preference device_trust.mode: required-for-humans)" },
	{ P(.device_trust_mode = (char *) "off"), "alice", NULL, false, TU_VERDICT_ALLOW, "alice", "allowed" },
	{ P(.device_trust_mode = (char *) ""), "alice", NULL, false, TU_VERDICT_ALLOW, "alice", "allowed" },
	{ P(.device_trust_mode = (char *) "required"), "alice", "alice", false, TU_VERDICT_ALLOW, "alice", "allowed" },
	{ P(.device_trust_mode = (char *) "optional"), "alice", NULL, false, TU_VERDICT_ALLOW, "alice", "allowed" },
	{ { .known = false, .require_mfa_type = 1 }, "alice", NULL, false, TU_VERDICT_ALLOW, "alice", "allowed" },
	/* locking_mode: the cluster's default, a role's own mode overrides it, strict wins */
	{ P(.locking_mode = (char *) "strict"), "alice", NULL, false, TU_VERDICT_ALLOW, "alice", "allowed" },
	{ P(.locking_mode = (char *) "strict"), "alice", NULL, true, TU_VERDICT_DENY, "alice",
	  "the cluster's locking_mode is strict (no role overrides it) and the lock list is not current (offline)" },
	{ P(.locking_mode = (char *) "strict"), "mal", "mallory", true, TU_VERDICT_DENY, "mallory", "locking_mode is strict" },
	{ P(.locking_mode = (char *) "strict"), "best", NULL, true, TU_VERDICT_ALLOW, "bea", "allowed by role 'best'" },
	{ P(.locking_mode = (char *) "best_effort"), "strict", NULL, true, TU_VERDICT_DENY, "sid", "role 'strict' sets options.lock: strict" },
	{ P(.locking_mode = (char *) "best_effort"), "alice", NULL, true, TU_VERDICT_ALLOW, "alice", "allowed" },
	{ { .known = false, .locking_mode = NULL }, "alice", NULL, true, TU_VERDICT_ALLOW, "alice", "allowed" },
#undef P
};

static void test_decide_cluster_pref(void **state)
{
	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(pref_cases); i++) {
		const struct pref_case *c = &pref_cases[i];
		struct tu_dataset d;
		struct tu_labels hl = fx_labels("env=staging");
		struct tu_host h = { "web-1", "host-uuid", "example.com", &hl };
		struct tu_decide_opts o = { c->tp_user != NULL, false, HU, c->stale };
		struct tu_login_req req = { .login = c->login, .service = "sshd", .teleport_username = c->tp_user };
		struct tu_verdict v;
		struct tu_err e = { 0 };

		fx_dataset_build(&d, users, roles, locks);
		d.auth_pref = c->pref; /* borrowed: taken back before fx_dataset_free */
		memset(&v, 0x55, sizeof(v));
		assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, &e), 0);
		if (v.kind != c->want || strcmp(v.user, c->user) != 0 || !strstr(v.reason, c->reason))
			fail_msg("case %zu (%s): want %d '%s' '%s' got %d '%s' '%s'", i, c->login, c->want, c->user,
				 c->reason, v.kind, v.user, v.reason);
		d.auth_pref = (struct tu_auth_pref){ 0 };
		fx_dataset_free(&d);
		fx_labels_free(&hl);
	}
}

/* MFA and device requirements met by what a trusted Teleport certificate says. */
static void test_decide_cert_proof(void **state)
{
	static const struct {
		const char *login, *key_id;
		const char *ext[10];
		bool trust_cert;
		struct tu_auth_pref pref;
		enum tu_verdict_kind want;
		const char *reason;
	} cases[] = {
		{ "mfa-login", "mia", { "mfa-verified", "dev", NULL }, true, { 0 }, TU_VERDICT_ALLOW, "allowed by role 'mfa'" },
		{ "mfa-login", "mia", { NULL }, true, { 0 }, TU_VERDICT_DENY, "requires per-session MFA" },
		{ "mfa-login", "mia", { "mfa-verified", "dev", NULL }, false, { 0 }, TU_VERDICT_DENY, "requires per-session MFA" },
		{ "mfa-login", "mia", { DEVICE_EXTS, NULL }, true, { 0 }, TU_VERDICT_DENY, "requires per-session MFA" },
		{ "dt-login", "dan", { DEVICE_EXTS, NULL }, true, { 0 }, TU_VERDICT_ALLOW, "allowed by role 'devtrust'" },
		{ "dt-login", "dan", { "mfa-verified", "dev", NULL }, true, { 0 }, TU_VERDICT_DENY, "requires a trusted device" },
		{ "alice", "alice", { "mfa-verified", "dev", NULL }, true, { .known = true, .require_mfa_type = 1 },
		  TU_VERDICT_ALLOW, "allowed" },
		{ "alice", "alice", { NULL }, true, { .known = true, .require_mfa_type = 1 }, TU_VERDICT_DENY,
		  "the cluster requires per-session MFA" },
		{ "alice", "alice", { "mfa-verified", "dev", NULL }, true,
		  { .known = true, .require_mfa_type = 1, .device_trust_mode = (char *) "required" }, TU_VERDICT_DENY,
		  "the cluster requires a trusted device" },
	};

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tu_dataset d;
		struct tu_labels hl = fx_labels("env=staging");
		struct tu_host h = { "web-1", "host-uuid", "example.com", &hl };
		struct tu_decide_opts o = { false, cases[i].trust_cert, HU, false };
		_cleanup_free_ char *info = auth_info_ext(cases[i].key_id, cases[i].ext);
		struct tu_login_req req = { .login = cases[i].login, .service = "sshd", .ssh_auth_info = info };
		struct tu_verdict v;
		struct tu_err e = { 0 };

		fx_dataset_build(&d, users, roles, locks);
		d.user_ca = test_ca;
		d.auth_pref = cases[i].pref;
		assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, &e), 0);
		if (v.kind != cases[i].want || !strstr(v.reason, cases[i].reason))
			fail_msg("case %zu (%s): want %d '%s' got %d '%s'", i, cases[i].login, cases[i].want,
				 cases[i].reason, v.kind, v.reason);
		/* The same through `check`'s explicit user (the online path passes the identity on). */
		req.explicit_user = cases[i].key_id;
		assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, &e), 0);
		if (v.kind != cases[i].want)
			fail_msg("case %zu (%s, explicit): want %d got %d '%s'", i, cases[i].login, cases[i].want, v.kind,
				 v.reason);
		d.auth_pref = (struct tu_auth_pref){ 0 };
		fx_dataset_free(&d);
		fx_labels_free(&hl);
	}
}

/*
 * Teleport's ComputeLockTargets (lib/srv/ctx.go) for an SSH login: the
 * host's id and its FQDN "<id>.<cluster>" as ServerID (and the legacy Node),
 * and the certificate's "mfa-verified" value (MFADevice) and
 * "teleport-device-id" (Device).  The world's locks hold mfa_device=dev-1 and
 * device=d-1.
 */
static void test_compute_lock_targets(void **state)
{
	static const struct fx_lock fqdn[] = { { "lock-fqdn", "server_id=host-uuid.example.com", NULL }, { 0 } };
	static const struct fx_lock fqdn_node[] = { { "lock-fqdn-node", "node=host-uuid.example.com", NULL }, { 0 } };
	static const struct fx_lock bare[] = { { "lock-bare", "server_id=host-uuid", NULL }, { 0 } };
	static const struct fx_lock other[] = { { "lock-other", "server_id=host-uuid.other.com", NULL },
						{ "lock-prefix", "server_id=host-uuid2.example.com", NULL },
						{ "lock-dot", "server_id=host-uuid.", NULL },
						{ 0 } };
	static const struct {
		const char *name;
		const char *id, *cluster;
		const struct fx_lock *extra;
		const char *ext[10];
		enum tu_verdict_kind want;
		const char *reason;
	} cases[] = {
		{ "host FQDN", "host-uuid", "example.com", fqdn, { NULL }, TU_VERDICT_DENY, "(server_id=host-uuid.example.com)" },
		{ "host FQDN, legacy Node", "host-uuid", "example.com", fqdn_node, { NULL }, TU_VERDICT_DENY, "(node=host-uuid.example.com)" },
		{ "host FQDN, cluster unknown (fail closed)", "host-uuid", NULL, fqdn, { NULL }, TU_VERDICT_DENY, "lock-fqdn" },
		{ "host FQDN, host.id given as FQDN", "host-uuid.example.com", "example.com", fqdn, { NULL }, TU_VERDICT_DENY, "lock-fqdn" },
		{ "bare id, host.id given as FQDN", "host-uuid.example.com", "example.com", bare, { NULL }, TU_VERDICT_DENY, "lock-bare" },
		{ "other hosts and clusters", "host-uuid", "example.com", other, { NULL }, TU_VERDICT_ALLOW, "allowed" },
		{ "other hosts, cluster unknown", "host-uuid", NULL, other, { NULL }, TU_VERDICT_DENY, "lock-other" },
		{ "MFA device", "host-uuid", "example.com", NULL, { "mfa-verified", "dev-1", NULL }, TU_VERDICT_DENY,
		  "locked by lock 'lock-mfa' (mfa_device=dev-1)" },
		{ "other MFA device", "host-uuid", "example.com", NULL, { "mfa-verified", "dev-2", NULL }, TU_VERDICT_ALLOW, "allowed" },
		{ "trusted device", "host-uuid", "example.com", NULL,
		  { "teleport-device-id", "d-1", "teleport-device-asset-tag", "C02X", "teleport-device-credential-id", "c", NULL },
		  TU_VERDICT_DENY, "locked by lock 'lock-device' (device=d-1)" },
		{ "device id alone", "host-uuid", "example.com", NULL, { "teleport-device-id", "d-1", NULL }, TU_VERDICT_DENY,
		  "(device=d-1)" },
		{ "other device", "host-uuid", "example.com", NULL, { "teleport-device-id", "d-2", NULL }, TU_VERDICT_ALLOW, "allowed" },
		{ "no certificate", "host-uuid", "example.com", NULL, { NULL }, TU_VERDICT_ALLOW, "allowed" },
	};

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tu_dataset d;
		struct tu_labels hl = fx_labels("env=staging");
		struct tu_host h = { "web-1", cases[i].id, cases[i].cluster, &hl };
		/* The certificate is not trusted for the identity: locks apply all the same. */
		struct tu_decide_opts o = { false, false, HU, false };
		_cleanup_free_ char *info = auth_info_ext("alice", cases[i].ext);
		struct tu_login_req req = { .login = "alice", .service = "sshd", .ssh_auth_info = info };
		struct tu_verdict v;

		fx_dataset_build(&d, users, roles, locks);
		for (size_t j = 0; cases[i].extra && cases[i].extra[j].name; j++) {
			d.locks = realloc(d.locks, (d.n_locks + 1) * sizeof(*d.locks));
			fx_lock_build(&cases[i].extra[j], &d.locks[d.n_locks++]);
		}
		assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, NULL), 0);
		if (v.kind != cases[i].want || !strstr(v.reason, cases[i].reason))
			fail_msg("ComputeLockTargets '%s': want %d '%s' got %d '%s'", cases[i].name, cases[i].want,
				 cases[i].reason, v.kind, v.reason);
		fx_dataset_free(&d);
		fx_labels_free(&hl);
	}
	/* A certificate whose device id cannot be held (NUL byte): every device lock applies. */
	{
		static const char type[] = "ssh-ed25519-cert-v01@openssh.com";
		struct tu_ssh_cert c;
		struct blob b, e = { 0 }, v = { 0 };
		char line[8192];

		make_cert(&b, type, 1, "alice");
		put_str(&b, "", 0);
		for (int i = 0; i < 4; i++)
			put_u32(&b, 0);
		put_str(&b, "", 0);
		put_str(&e, "teleport-device-id", 18);
		put_str(&v, "d-\0x", 4);
		put_str(&e, (const char *) v.b, v.n);
		put_str(&b, (const char *) e.b, e.n);
		put_sig(&b);
		int n = snprintf(line, sizeof(line), "publickey %s ", type);
		b64(&b, line + n);
		assert_int_equal(tu_decide_ssh_cert(line, &c, NULL), 0);
		assert_true(c.ids_unreadable);
	}
}

/*
 * Records whose content cannot be represented (model.h): a user is refused
 * and owns nothing, a role counts as missing (its holders are refused, naming
 * it), a lock applies to everyone while in force.
 */
/*
 * Teleport's lib/services/lock_test.go TestLockTargetsFromTLSIdentity "all
 * locks", as facts for an SSH login: the identity llama (roles access,
 * editor, MFA device mfa-device-id, trusted device trusted-device-id) is
 * refused by a lock on any one of those targets.  (Access requests, join
 * tokens and bot instances do not reach a PAM login here.)
 */
static void test_lock_targets_from_identity(void **state)
{
	static const struct fx_role rs[] = {
		{ "access", .allow_logins = "llama", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP },
		{ "editor" },
		{ 0 },
	};
	static const struct fx_user us[] = { { "llama", "access,editor", "" }, { 0 } };
	static const char *const targets[] = { "user=llama", "role=access", "role=editor", "mfa_device=mfa-device-id",
					       "device=trusted-device-id", NULL /* no lock: allowed */ };
	static const char *const ext[] = { "mfa-verified", "mfa-device-id", "teleport-device-id", "trusted-device-id",
					   "teleport-device-asset-tag", "A", "teleport-device-credential-id", "c", NULL };

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(targets); i++) {
		struct fx_lock ls[] = { { "lock", targets[i] ? targets[i] : "user=somebody-else", NULL }, { 0 } };
		struct tu_dataset d;
		struct tu_labels hl = fx_labels("");
		struct tu_host h = { "web-1", "host-uuid", "example.com", &hl };
		struct tu_decide_opts o = { false, false, HU, false };
		_cleanup_free_ char *info = auth_info_ext("llama", ext);
		struct tu_login_req req = { .login = "llama", .ssh_auth_info = info, .explicit_user = "llama" };
		struct tu_verdict v;

		fx_dataset_build(&d, us, rs, ls);
		assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, NULL), 0);
		if (targets[i] ? v.kind != TU_VERDICT_DENY || !strstr(v.reason, targets[i]) : v.kind != TU_VERDICT_ALLOW)
			fail_msg("TestLockTargetsFromTLSIdentity/all locks: target %s: got %d '%s'",
				 targets[i] ? targets[i] : "(none)", v.kind, v.reason);
		fx_dataset_free(&d);
		fx_labels_free(&hl);
	}
}

static void test_unusable_records(void **state)
{
	static const struct {
		const char *mark; /* "user:NAME", "role:NAME" or "lock:NAME" */
		const char *login, *explicit_user;
		enum tu_verdict_kind want;
		const char *reason;
	} cases[] = {
		{ "user:alice", "alice", "alice", TU_VERDICT_DENY, "Teleport user 'alice' cannot be used here (Spec.Traits: embedded NUL byte)" },
		{ "user:alice", "alice", NULL, TU_VERDICT_UNKNOWN, "not a Teleport login" },
		{ "user:alice", "ubuntu", NULL, TU_VERDICT_DENY, "lock 'lock-login-ubuntu'" }, /* kim alone owns it now (not shared) */
		{ "role:dev", "al", "alice", TU_VERDICT_DENY, "role 'dev' does not exist or cannot be used" },
		{ "role:dev", "alice", "alice", TU_VERDICT_DENY, "role 'dev' does not exist or cannot be used" },
		{ "lock:lock-bob", "alice", "alice", TU_VERDICT_DENY, "locked by lock 'lock-bob' (its content cannot be read: Spec.Target.User: embedded NUL byte)" },
		{ "lock:lock-judy-later", "kim-login", "kim", TU_VERDICT_DENY, "lock 'lock-judy-later'" },
		{ "lock:lock-frank-expired", "alice", "alice", TU_VERDICT_ALLOW, "allowed" }, /* no longer in force */
	};

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tu_dataset d;
		struct tu_labels hl = fx_labels("env=staging");
		struct tu_host h = { "web-1", "host-uuid", "example.com", &hl };
		struct tu_decide_opts o = { false, false, HU, false };
		struct tu_login_req req = { .login = cases[i].login, .explicit_user = cases[i].explicit_user };
		struct tu_verdict v;
		const char *name = strchr(cases[i].mark, ':') + 1;

		fx_dataset_build(&d, users, roles, locks);
		if (strncmp(cases[i].mark, "user:", 5) == 0) {
			for (size_t j = 0; j < d.n_users; j++)
				if (strcmp(d.users[j].name, name) == 0)
					d.users[j].unusable = strdup("Spec.Traits: embedded NUL byte");
		} else if (strncmp(cases[i].mark, "role:", 5) == 0) {
			for (size_t j = 0; j < d.n_roles; j++)
				if (strcmp(d.roles[j].name, name) == 0)
					d.roles[j].unusable = strdup("Spec.Allow.Logins: invalid UTF-8");
		} else {
			for (size_t j = 0; j < d.n_locks; j++)
				if (strcmp(d.locks[j].name, name) == 0)
					d.locks[j].unreadable = strdup("Spec.Target.User: embedded NUL byte");
		}
		assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, NULL), 0);
		if (v.kind != cases[i].want || !strstr(v.reason, cases[i].reason))
			fail_msg("case %zu (%s, %s): want %d '%s' got %d '%s'", i, cases[i].mark, cases[i].login,
				 cases[i].want, cases[i].reason, v.kind, v.reason);
		for (size_t j = 0; j < d.n_users; j++)
			free(d.users[j].unusable), d.users[j].unusable = NULL;
		for (size_t j = 0; j < d.n_roles; j++)
			free(d.roles[j].unusable), d.roles[j].unusable = NULL;
		for (size_t j = 0; j < d.n_locks; j++)
			free(d.locks[j].unreadable), d.locks[j].unreadable = NULL;
		fx_dataset_free(&d);
		fx_labels_free(&hl);
	}
}

static void test_decide_bad_input(void **state)
{
	(void) state;
	struct tu_dataset d = { 0 };
	struct tu_host h = { "h", "id", NULL, NULL };
	struct tu_decide_opts o = { 0 };
	struct tu_verdict v = { .kind = TU_VERDICT_ALLOW };
	struct tu_err e = { 0 };
	struct tu_login_req req = { 0 };

	assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "no login"));
	assert_int_equal(v.kind, TU_VERDICT_ALLOW); /* untouched */
	req.login = "x";
	assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, &e), 0);
	assert_int_equal(v.kind, TU_VERDICT_UNKNOWN);
	/* hostile names are sanitized in reasons */
	req.login = "a\x1b[31m";
	assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, &e), 0);
	assert_null(strchr(v.reason, '\x1b'));
	/* no host id: host locks cannot match */
	struct fx_user us[] = { { "u", "r", "" }, { 0 } };
	struct fx_role rs[] = { { "r", .allow_logins = "u", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP }, { 0 } };
	struct fx_lock ls[] = { { "l", "server_id=", NULL }, { 0 } };
	fx_dataset_build(&d, us, rs, ls);
	h.id = "";
	req.login = "u";
	assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, &e), 0);
	assert_int_equal(v.kind, TU_VERDICT_ALLOW);
	fx_dataset_free(&d);
}

/* ---- the golden vectors ---- */

static int read_vector(const char *name, uint8_t **ret, size_t *ret_len)
{
	const char *dir = getenv("TU_VECTORS_DIR");
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/vectors/teleport", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint8_t *b = malloc(65536);
	ssize_t n = read(fd, b, 65536);
	close(fd);
	if (n < 0) {
		free(b);
		return -EIO;
	}
	*ret = b;
	*ret_len = (size_t) n;
	return 0;
}

static void test_vectors(void **state)
{
	(void) state;
	static const char *user_files[] = { "user_alice.bin", "user_bob_locked.bin", "user_carol_expired.bin" };
	static const char *role_files[] = { "role_access.bin", "role_dev.bin", "role_no_prod.bin" };
	static const char *lock_files[] = { "lock_user_bob.bin", "lock_role_dev.bin" };
	struct tu_dataset d = { 0 };
	uint8_t *b;
	size_t n;

	d.users = calloc(3, sizeof(*d.users));
	d.roles = calloc(3, sizeof(*d.roles));
	d.locks = calloc(2, sizeof(*d.locks));
	for (size_t i = 0; i < 3; i++) {
		if (read_vector(user_files[i], &b, &n) < 0)
			skip();
		assert_int_equal(tu_model_parse_user(b, n, &d.users[d.n_users++], NULL), 0);
		free(b);
		assert_int_equal(read_vector(role_files[i], &b, &n), 0);
		assert_int_equal(tu_model_parse_role(b, n, &d.roles[d.n_roles++], NULL), 0);
		free(b);
	}
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(read_vector(lock_files[i], &b, &n), 0);
		assert_int_equal(tu_model_parse_lock(b, n, &d.locks[d.n_locks++], NULL), 0);
		free(b);
	}
	struct {
		const char *host, *login, *explicit_user;
		int64_t now;
		int source;
		enum tu_verdict_kind want;
		const char *user, *reason;
	} cases[] = {
		/* 2027: role dev is locked until 2030-06-30; bob is locked; carol expired 2024 */
		{ "env=prod", "alice", NULL, NOW, AL, TU_VERDICT_DENY, "alice", "locked by lock '66fa42a2-61b4-5933-944b-93171f68dcae' (role=dev): Change freeze for role dev (INC-4211)" },
		{ "env=prod", "robert", "bob", NOW, AL, TU_VERDICT_DENY, "bob", "Teleport user 'bob' is locked: user has exceeded maximum failed login attempts" },
		{ "env=prod", "carol", "carol", NOW, AL, TU_VERDICT_DENY, "carol", "has expired" },
		{ "env=prod", "carol", NULL, NOW, AL, TU_VERDICT_DENY, "carol", "has expired" }, /* issue 14 F2 */
		{ "env=prod", "alice", NULL, NOW, HU, TU_VERDICT_UNKNOWN, "", "not a Teleport login" }, /* access: no host users */
		{ "env=staging;team=infra", "dev", NULL, NOW, HU, TU_VERDICT_DENY, "bob", "is locked" }, /* alice has access (host users off) */
		/* 2031: the dev lock is over */
		{ "env=prod", "alice", NULL, 1940000000LL * SEC, AL, TU_VERDICT_ALLOW, "alice", "allowed by role 'access' (logins 'alice')" },
		{ "env=prod", "ubuntu", NULL, 1940000000LL * SEC, AL, TU_VERDICT_ALLOW, "alice", "allowed by role 'access'" },
		{ "env=staging;team=infra", "dev", "alice", 1940000000LL * SEC, AL, TU_VERDICT_ALLOW, "alice", "allowed by role 'dev' (logins 'dev')" },
		{ "env=prod;team=infra", "dev", "alice", 1940000000LL * SEC, AL, TU_VERDICT_DENY, "alice", "no role allows login 'dev'" },
		{ "env=staging;team=infra", "robert", NULL, 1940000000LL * SEC, AL, TU_VERDICT_DENY, "bob", "locked" },
		{ "env=staging;team=infra", "root", "alice", 1940000000LL * SEC, AL, TU_VERDICT_DENY, "alice", "no role allows login 'root'" },
		/* bob's LoginStatus lock runs to 2035; the user lock has no end */
		{ "env=staging;team=infra", "robert", "bob", 2100000000LL * SEC, AL, TU_VERDICT_DENY, "bob", "locked by lock '4a34ce72-f546-538f-a528-5df6f8fea9db' (user=bob): Suspicious activity" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tu_labels hl = fx_labels(cases[i].host);
		struct tu_host h = { "web-1", "host-uuid", "example.com", &hl };
		struct tu_decide_opts o = { false, false, cases[i].source };
		struct tu_login_req req = { .login = cases[i].login, .explicit_user = cases[i].explicit_user };
		struct tu_verdict v;
		assert_int_equal(tu_decide_pure(&d, &h, &o, &req, cases[i].now, &v, NULL), 0);
		if (v.kind != cases[i].want || strcmp(v.user, cases[i].user) != 0 || !strstr(v.reason, cases[i].reason))
			fail_msg("vector case %zu: want %d '%s' '%s' got %d '%s' '%s'", i, cases[i].want, cases[i].user,
				 cases[i].reason, v.kind, v.user, v.reason);
		fx_labels_free(&hl);
	}
	tu_dataset_done(&d);
}

/* Reads tests/fixtures/ssh-cert/<name> (made by gen.sh there with ssh-keygen) into buf. */
static void ssh_fixture(const char *name, char *buf, size_t size)
{
	const char *top = getenv("top_srcdir");
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/tests/fixtures/ssh-cert/%s", top && *top ? top : "..", name);
	f = fopen(path, "re");
	if (!f)
		fail_msg("%s: cannot open", path);
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
}

/* A user CA holding the public key line of fixture name (comment dropped). */
static void fixture_ca(const char *name, char *line, size_t size, char **keys, struct tu_user_ca *ca)
{
	ssh_fixture(name, line, size);
	char *sp = strchr(line, ' ');
	sp = sp ? strchr(sp + 1, ' ') : NULL;
	if (sp)
		*sp = '\0';
	keys[0] = line;
	*ca = (struct tu_user_ca){ .known = true, .keys = { keys, 1 } };
}

/*
 * Certificates made by ssh-keygen (tests/fixtures/ssh-cert/gen.sh): the one
 * from "Teleport's" CA is an identity, the same one from a self-made CA is
 * not, whatever its key id and extensions say; validity window; no CA known.
 */
static void test_ssh_cert_fixtures(void **state)
{
	char cert_t[4096], cert_o[4096], info[4200], ca_t_line[1024], ca_o_line[1024], id[256];
	char *keys_t[1], *keys_o[1];
	struct tu_user_ca ca_t, ca_o, both;
	char *keys_both[2];
	struct tu_ssh_cert c;
	struct tu_err e;

	(void) state;
	ssh_fixture("mia-teleport-cert.pub", cert_t, sizeof(cert_t));
	ssh_fixture("mia-other-cert.pub", cert_o, sizeof(cert_o));
	fixture_ca("teleport_ca.pub", ca_t_line, sizeof(ca_t_line), keys_t, &ca_t);
	fixture_ca("other_ca.pub", ca_o_line, sizeof(ca_o_line), keys_o, &ca_o);

	snprintf(info, sizeof(info), "publickey %s", cert_t);
	assert_int_equal(tu_decide_ssh_cert(info, &c, NULL), 0);
	assert_string_equal(c.key_id, "mia");
	assert_true(c.mfa_verified);
	assert_string_equal(c.mfa_device, "webauthn-1");
	assert_true(c.serial == 7);
	assert_true(c.valid_after < (uint64_t) (NOW / SEC) && (uint64_t) (NOW / SEC) < c.valid_before);
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &ca_t, NOW, NULL), 0);
	assert_int_equal(key_id_of(info, id, sizeof(id), NULL), -EKEYREJECTED); /* not the hand-made test CA */
	assert_int_equal(tu_decide_ssh_cert_key_id(info, &ca_t, NOW, id, sizeof(id), NULL), 0);
	assert_string_equal(id, "mia");
	/* outside its validity window (2026-01-01 .. 2030-01-01) */
	memset(&e, 0, sizeof(e));
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &ca_t, 1700000000LL * SEC, &e), -EKEYEXPIRED);
	assert_non_null(strstr(e.msg, "validity"));
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &ca_t, 1900000000LL * SEC, NULL), -EKEYEXPIRED);
	/* the other CA's certificate: same key id, same extensions, proves nothing */
	snprintf(info, sizeof(info), "publickey %s", cert_o);
	assert_int_equal(tu_decide_ssh_cert(info, &c, NULL), 0);
	assert_string_equal(c.key_id, "mia");
	assert_true(c.mfa_verified);
	memset(&e, 0, sizeof(e));
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &ca_t, NOW, &e), -EKEYREJECTED);
	assert_non_null(strstr(e.msg, "not Teleport's user CA"));
	assert_int_equal(tu_decide_ssh_cert_key_id(info, &ca_t, NOW, id, sizeof(id), NULL), -EKEYREJECTED);
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &ca_o, NOW, NULL), 0); /* an RSA CA matches as well */
	/* no CA known, or one without keys */
	struct tu_user_ca none = { 0 }, empty = { .known = true };
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &none, NOW, NULL), -ENOKEY);
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &empty, NOW, NULL), -ENOKEY);
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, NULL, NOW, NULL), -ENOKEY);
	/* a rotation: two keys, the second signed it */
	keys_both[0] = ca_t_line;
	keys_both[1] = ca_o_line;
	both = (struct tu_user_ca){ .known = true, .keys = { keys_both, 2 } };
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &both, NOW, NULL), 0);
	/* an ECDSA P-384 CA's certificate verifies with its key, not with the others */
	{
		char cert_e[4096], ca_e_line[1024];
		char *keys_e[1];
		struct tu_user_ca ca_e;

		ssh_fixture("mia-ecdsa-cert.pub", cert_e, sizeof(cert_e));
		fixture_ca("ecdsa_ca.pub", ca_e_line, sizeof(ca_e_line), keys_e, &ca_e);
		snprintf(info, sizeof(info), "publickey %s", cert_e);
		assert_int_equal(tu_decide_ssh_cert(info, &c, NULL), 0);
		assert_true(c.signature_ok);
		assert_int_equal(tu_decide_ssh_cert_trusted(&c, &ca_e, NOW, NULL), 0);
		assert_int_equal(tu_decide_ssh_cert_trusted(&c, &ca_t, NOW, NULL), -EKEYREJECTED);
	}
	/*
	 * A forged certificate: Teleport's CA public key (public: anyone may copy it) as its
	 * signature key, any key id and extensions, a signature that does not verify.  sshd would
	 * never pass it; a forged SSH_AUTH_INFO_0 (pam_env with user_readenv) could.  Refused.
	 */
	{
		struct blob b;
		char line[8192];
		static const char *const mfa[] = { "mfa-verified", "x", NULL };

		make_cert(&b, "ssh-ed25519-cert-v01@openssh.com", 1, "mia");
		put_tail(&b, mfa);
		b.b[b.n - 1] ^= 1; /* the last signature byte */
		int k0 = snprintf(line, sizeof(line), "publickey ssh-ed25519-cert-v01@openssh.com ");
		b64(&b, line + k0);
		assert_int_equal(tu_decide_ssh_cert(line, &c, NULL), 0);
		assert_false(c.signature_ok);
		memset(&e, 0, sizeof(e));
		assert_int_equal(tu_decide_ssh_cert_trusted(&c, &test_ca, NOW, &e), -EKEYREJECTED);
		assert_non_null(strstr(e.msg, "signature does not verify"));
		/* the same certificate unmodified verifies */
		b.b[b.n - 1] ^= 1;
		b64(&b, line + k0);
		assert_int_equal(tu_decide_ssh_cert(line, &c, NULL), 0);
		assert_true(c.signature_ok);
		assert_int_equal(tu_decide_ssh_cert_trusted(&c, &test_ca, NOW, NULL), 0);
	}
	/* every truncation and one-byte change of the base64 is a clean answer, never a crash */
	snprintf(info, sizeof(info), "publickey %s", cert_t);
	size_t n = (size_t) (strrchr(info, ' ') - info); /* up to the comment ssh-keygen wrote */
	for (size_t cut = 0; cut < n; cut += 3) {
		char saved = info[cut];
		if (saved == '=')
			continue; /* only the padding cut: the same bytes (padding is optional) */
		info[cut] = '\0';
		int k = tu_decide_ssh_cert(info, &c, NULL);
		if (k != -ENOENT && k != -EBADMSG)
			fail_msg("cut at %zu: %d", cut, k);
		info[cut] = saved;
		info[cut] = saved == 'A' ? 'B' : 'A';
		k = tu_decide_ssh_cert(info, &c, NULL);
		assert_true(k == 0 || k == -ENOENT || k == -EBADMSG);
		info[cut] = saved;
	}
	/* trailing garbage after the certificate */
	{
		struct blob b;
		char line[8192];
		make_cert(&b, "ssh-ed25519-cert-v01@openssh.com", 1, "mia");
		put_tail(&b, NULL);
		put_u32(&b, 0);
		int k = snprintf(line, sizeof(line), "publickey ssh-ed25519-cert-v01@openssh.com ");
		b64(&b, line + k);
		memset(&e, 0, sizeof(e));
		assert_int_equal(tu_decide_ssh_cert(line, &c, &e), -EBADMSG);
		assert_non_null(strstr(e.msg, "trailing garbage"));
	}
}

/*
 * Issue 10: sshd's %k (ssh-principals) is parsed with TU_SSH_CERT_SSHD_VERIFIED: the
 * signature is sshd's word (OpenSSH verified it when it decoded the certificate), so a
 * flipped signature byte is not noticed here; everything else is checked as always: the
 * signature key's bytes must be Teleport's user CA, the window must hold, the blob must
 * parse whole.  Without the flag (SSH_AUTH_INFO_0 in PAM) the same certificate is refused,
 * and TU_SSH_CERT_NO_VERIFY never counts as verified.
 */
static void test_ssh_cert_sshd_verified(void **state)
{
	struct tu_ssh_cert c;
	struct tu_err e;
	struct blob b;
	char line[8192];
	static const char *const mfa[] = { "mfa-verified", "x", NULL };
	(void) state;

	cert_after = 1799999000;
	cert_before = 1800003600;
	make_cert(&b, "ssh-ed25519-cert-v01@openssh.com", 1, "mia");
	put_tail(&b, mfa);
	cert_after = 0;
	cert_before = UINT64_MAX;
	b.b[b.n - 1] ^= 1; /* the last signature byte */
	int k0 = snprintf(line, sizeof(line), "publickey ssh-ed25519-cert-v01@openssh.com ");
	b64(&b, line + k0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(tu_decide_ssh_cert_parse(line, TU_SSH_CERT_SSHD_VERIFIED, &c, NULL), 0);
	assert_true(c.signature_ok);
	assert_true(c.sshd_verified);
	assert_true(c.mfa_verified);
	assert_string_equal(c.key_id, "mia");
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &test_ca, NOW, NULL), 0);
	/* the window and the CA still count */
	memset(&e, 0, sizeof(e));
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &test_ca, 1700000000LL * SEC, &e), -EKEYEXPIRED);
	{
		static char other_line[128];
		static char *other_keys[2] = { other_line, NULL };
		const struct tu_user_ca other = { .known = true, .keys = { other_keys, 1 } };
		struct blob ob;
		ob.n = 0;
		ca_blob(&ob, 'O');
		memcpy(other_line, "ssh-ed25519 ", 12);
		b64(&ob, other_line + 12);
		assert_int_equal(tu_decide_ssh_cert_trusted(&c, &other, NOW, NULL), -EKEYREJECTED);
	}
	/* SSH_AUTH_INFO_0's reading (flags 0) checks the signature: refused */
	memset(&c, 0, sizeof(c));
	assert_int_equal(tu_decide_ssh_cert_parse(line, 0, &c, NULL), 0);
	assert_false(c.signature_ok);
	assert_false(c.sshd_verified);
	memset(&e, 0, sizeof(e));
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &test_ca, NOW, &e), -EKEYREJECTED);
	assert_non_null(strstr(e.msg, "signature does not verify"));
	/* a reader that never trusts it never sees it as verified */
	memset(&c, 0, sizeof(c));
	assert_int_equal(tu_decide_ssh_cert_parse(line, TU_SSH_CERT_NO_VERIFY, &c, NULL), 0);
	assert_false(c.signature_ok);
	assert_int_equal(tu_decide_ssh_cert_trusted(&c, &test_ca, NOW, NULL), -EKEYREJECTED);
	/* bad input stays a clean refusal with the flag: every truncation of the blob */
	for (size_t cut = 0; cut < b.n; cut += 5) {
		struct blob t = b;
		t.n = cut;
		b64(&t, line + k0);
		int k = tu_decide_ssh_cert_parse(line, TU_SSH_CERT_SSHD_VERIFIED, &c, NULL);
		if (k != -EBADMSG && k != -ENOENT)
			fail_msg("cut at %zu: %d", cut, k);
	}
}

/*
 * The decision with certificates (issue 14 F3): one from Teleport's user CA
 * is the identity and proves its extensions; one from any other CA (or with
 * no CA known) proves nothing and the login is decided as without it; a
 * Teleport certificate naming no Teleport user is refused.
 */
static void test_decide_cert_ca(void **state)
{
	static const struct {
		const char *name, *login, *key_id;
		char ca;                    /* who signed: 'T' Teleport's, else another CA */
		bool ca_known;
		const char *ext[4];
		enum tu_verdict_kind want;
		const char *user, *reason;
	} cases[] = {
		{ "Teleport cert, MFA", "mfa-login", "mia", 'T', true, { "mfa-verified", "dev", NULL }, TU_VERDICT_ALLOW, "mia",
		  "allowed by role 'mfa'" },
		{ "self-made cert, MFA bypass refused", "mfa-login", "mia", 'X', true, { "mfa-verified", "dev", NULL },
		  TU_VERDICT_DENY, "mia", "requires per-session MFA" },
		{ "no CA known, MFA bypass refused", "mfa-login", "mia", 'T', false, { "mfa-verified", "dev", NULL },
		  TU_VERDICT_DENY, "mia", "requires per-session MFA" },
		{ "locked bob's self-made cert naming gina on a shared login", "deploy", "gina", 'X', true, { NULL },
		  TU_VERDICT_DENY, "", "the login is shared" },
		{ "Teleport cert on a shared login", "deploy", "gina", 'T', true, { NULL }, TU_VERDICT_ALLOW, "gina",
		  "allowed" },
		{ "Teleport cert, unknown key id", "alice", "nobody", 'T', true, { NULL }, TU_VERDICT_DENY, "nobody",
		  "key id 'nobody' names no Teleport user" },
		{ "self-made cert, unknown key id: the owner decides", "alice", "nobody", 'X', true, { NULL },
		  TU_VERDICT_ALLOW, "alice", "allowed" },
		{ "self-made cert for root: not a Teleport login", "root", "alice", 'X', true, { NULL }, TU_VERDICT_UNKNOWN,
		  "", "not a Teleport login" },
	};

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tu_dataset d;
		struct tu_labels hl = fx_labels("env=staging");
		struct tu_host h = { "web-1", "host-uuid", "example.com", &hl };
		struct tu_decide_opts o = { false, true, HU, false };
		struct tu_verdict v;

		cert_ca = cases[i].ca;
		_cleanup_free_ char *info = auth_info_ext(cases[i].key_id, cases[i].ext);
		cert_ca = 'T';
		struct tu_login_req req = { .login = cases[i].login, .service = "sshd", .ssh_auth_info = info };

		fx_dataset_build(&d, users, roles, locks);
		if (cases[i].ca_known)
			d.user_ca = test_ca;
		/* SSH_AUTH_INFO_0's reading, then sshd's %k reading (issue 10): the same verdicts */
		for (int sshd = 0; sshd < 2; sshd++) {
			req.ssh_cert_sshd_verified = sshd;
			assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, NULL), 0);
			if (v.kind != cases[i].want || strcmp(v.user, cases[i].user) != 0 ||
			    !strstr(v.reason, cases[i].reason))
				fail_msg("'%s' (%d): want %d '%s' '%s' got %d '%s' '%s'", cases[i].name, sshd, cases[i].want,
					 cases[i].user, cases[i].reason, v.kind, v.user, v.reason);
			/* the identity is the certificate's only for Teleport's CA (ssh-principals
			 * tells "the owner, named like the key id" apart by this) */
			assert_int_equal(v.cert_identity, cases[i].ca == 'T' && cases[i].ca_known);
		}
		fx_dataset_free(&d);
		fx_labels_free(&hl);
	}
	/* An expired Teleport certificate proves nothing either. */
	{
		struct tu_dataset d;
		struct tu_labels hl = fx_labels("env=staging");
		struct tu_host h = { "web-1", "host-uuid", "example.com", &hl };
		struct tu_decide_opts o = { false, true, HU, false };
		static const char *const mfa[] = { "mfa-verified", "dev", NULL };
		struct tu_verdict v;

		cert_before = (uint64_t) (NOW / SEC);
		_cleanup_free_ char *info = auth_info_ext("mia", mfa);
		cert_before = UINT64_MAX;
		struct tu_login_req req = { .login = "mfa-login", .service = "sshd", .ssh_auth_info = info };
		fx_dataset_build(&d, users, roles, locks);
		d.user_ca = test_ca;
		assert_int_equal(tu_decide_pure(&d, &h, &o, &req, NOW, &v, NULL), 0);
		assert_int_equal(v.kind, TU_VERDICT_DENY);
		assert_non_null(strstr(v.reason, "requires per-session MFA"));
		fx_dataset_free(&d);
		fx_labels_free(&hl);
	}
}

/* ---- the watch-fed decision through the state file's key index (issue 13 item 6) ---- */

struct state_env {
	char dir[64];
	char path[128];
	struct tu_conf *conf;
};

static void state_env_init(struct state_env *se)
{
	char yaml[1024];
	struct tu_err e = { 0 };

	snprintf(se->dir, sizeof(se->dir), "/tmp/tu-test-decide-XXXXXX");
	assert_non_null(mkdtemp(se->dir));
	snprintf(se->path, sizeof(se->path), "%s/%s", se->dir, TU_CACHE_STATE_FILE);
	snprintf(yaml, sizeof(yaml),
		 "auth:\n  addresses: [\"127.0.0.1:3025\"]\n  credentials:\n"
		 "    key_pair: { cert: /nonexistent/c, key: /nonexistent/k, ca: /nonexistent/ca }\n"
		 "cache:\n  dir: %s\n",
		 se->dir);
	if (tu_conf_parse(yaml, strlen(yaml), "t.yaml", &se->conf, &e) < 0)
		fail_msg("config: %s", e.msg);
}

static void state_env_done(struct state_env *se)
{
	(void) unlink(se->path);
	(void) rmdir(se->dir);
	tu_conf_free(se->conf);
}

/* Rewrites the state file without its key index, as a version before it wrote it. */
static void strip_key_index(const char *path)
{
	struct tu_snapshot *s = NULL;
	struct tu_blob *b;
	size_t n;

	assert_int_equal(tu_snapshot_open(path, TU_SNAPSHOT_KIND_STATE, 0, &s, NULL), 0);
	n = tu_snapshot_blob_count(s);
	b = calloc(n + 1, sizeof(*b));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(tu_snapshot_blob_at(s, i, &b[i].type, &b[i].data, &b[i].size), 0);
	assert_int_equal(tu_snapshot_write_blobs(path, 0600, TU_SNAPSHOT_KIND_STATE, b, n, 1, NOW, NULL), 0);
	free(b);
	tu_snapshot_close(s);
}

/* One decision three ways: tu_decide_pure on the whole dataset, and tu_decide_from_state on
 * the saved state with and without its key index; all three must say the same, byte for
 * byte.  Returns whether the index alone answered. */
static bool same_answer(struct state_env *se, size_t i, struct tu_dataset *d, const struct tu_host *h,
			const struct tu_decide_opts *o, const struct tu_login_req *req)
{
	struct tu_verdict full, fast, scan;
	struct tu_err e = { 0 };
	bool indexed = false, indexed_old = true;
	struct tu_snapshot *s = NULL;
	size_t first, count;

	memset(&full, 0x55, sizeof(full));
	assert_int_equal(tu_decide_pure(d, h, o, req, NOW, &full, &e), 0);
	full.offline = true;
	if (tu_cache_save_state_only(se->conf, d, NOW, &e) < 0)
		fail_msg("case %zu: save: %s", i, e.msg);
	/* the writer did write the index */
	assert_int_equal(tu_snapshot_open(se->path, TU_SNAPSHOT_KIND_STATE, TU_SNAPSHOT_CHECK_RECORDS, &s, NULL), 0);
	assert_int_equal(tu_snapshot_blob_type_range(s, 1, &first, &count, NULL), 0);
	tu_snapshot_close(s);
	memset(&fast, 0x55, sizeof(fast));
	if (tu_decide_from_state(se->conf, h, o, req, NOW, &fast, &indexed, &e) < 0)
		fail_msg("case %zu (%s): %s", i, req->login, e.msg);
	strip_key_index(se->path);
	memset(&scan, 0x55, sizeof(scan));
	if (tu_decide_from_state(se->conf, h, o, req, NOW, &scan, &indexed_old, &e) < 0)
		fail_msg("case %zu (%s): %s", i, req->login, e.msg);
	assert_false(indexed_old); /* no index: every user record was filtered */
	if (memcmp(&full, &fast, sizeof(full)) != 0 || memcmp(&full, &scan, sizeof(full)) != 0)
		fail_msg("case %zu (%s): full %d '%s' '%s' '%s', index %d '%s' '%s' '%s' (indexed %d), scan %d '%s' '%s' '%s'",
			 i, req->login, full.kind, full.user, full.role, full.reason, fast.kind, fast.user, fast.role,
			 fast.reason, indexed, scan.kind, scan.user, scan.role, scan.reason);
	return indexed;
}

static void test_decide_from_state_index(void **state)
{
	(void) state;
	struct state_env se;
	size_t n_indexed = 0, n_scanned = 0, n = 0;

	state_env_init(&se);
	for (size_t i = 0; i < ELEMENTSOF(decide_cases); i++) {
		const struct decide_case *c = &decide_cases[i];
		struct tu_dataset d;
		struct tu_labels hl = fx_labels(c->host);
		struct tu_host h = { "web-1", "host-uuid", "example.com", &hl };
		struct tu_decide_opts o = { c->trust_env, c->trust_cert, c->source, c->stale };
		_cleanup_free_ char *info = NULL;

		fx_dataset_build(&d, users, roles, locks);
		d.user_ca = test_ca; /* borrowed */
		for (size_t j = 0; c->extra_locks && c->extra_locks[j].name; j++) {
			d.locks = realloc(d.locks, (d.n_locks + 1) * sizeof(*d.locks));
			fx_lock_build(&c->extra_locks[j], &d.locks[d.n_locks++]);
		}
		if (c->cert_id)
			info = strcmp(c->cert_id, "!") == 0 ? strdup("publickey ssh-ed25519-cert-v01@openssh.com AAAA") :
							      auth_info_line("ssh-ed25519-cert-v01@openssh.com", 1, c->cert_id);
		struct tu_login_req req = { .login = c->login, .service = "sshd", .teleport_username = c->tp_user,
					    .ssh_auth_info = info, .explicit_user = c->explicit_user };
		if (!c->login[0])
			goto next;
		bool indexed = same_answer(&se, i, &d, &h, &o, &req);
		/* An offline decision (tu_decide, Auth unreachable, issue 10) reads the state this
		 * way too, with the lock list not current: the same verdicts as the whole file. */
		struct tu_decide_opts off = o;
		off.stale_locks = true;
		(void) same_answer(&se, 2000 + i, &d, &h, &off, &req);
		n_indexed += indexed;
		n_scanned += !indexed;
		n++;
		/* Where the index must answer alone, and where it must not. */
		if (strcmp(c->login, "alice") == 0 && !c->explicit_user && !c->tp_user && !c->extra_locks)
			assert_true(indexed);                 /* the user named like the login */
		if (c->explicit_user && strcmp(c->explicit_user, "ghost") == 0)
			assert_true(indexed);                 /* a user absent: known absent by the index */
		if (c->explicit_user && strcmp(c->explicit_user, "mallory") == 0)
			assert_true(indexed);                 /* a role absent */
		if (c->extra_locks == host_locks || c->extra_locks == role_locks)
			assert_true(indexed);                 /* locks on the host, on a role */
		if (strcmp(c->login, "judy") == 0)
			assert_true(indexed);                 /* a lock on the user */
		if (strcmp(c->login, "ubuntu") == 0 && !c->explicit_user && !c->tp_user)
			assert_false(indexed);                /* owners by trait: every user */
		if (strcmp(c->login, "al") == 0 || strcmp(c->login, "nobody") == 0)
			assert_false(indexed);                /* owners by role / nobody: every user */
next:
		fx_dataset_free(&d);
		fx_labels_free(&hl);
	}
	/* The cluster's auth preference goes through the index too. */
	for (size_t i = 0; i < ELEMENTSOF(pref_cases); i++) {
		const struct pref_case *c = &pref_cases[i];
		struct tu_dataset d;
		struct tu_labels hl = fx_labels("env=staging");
		struct tu_host h = { "web-1", "host-uuid", "example.com", &hl };
		struct tu_decide_opts o = { c->tp_user != NULL, false, HU, c->stale };
		struct tu_login_req req = { .login = c->login, .service = "sshd", .teleport_username = c->tp_user };

		fx_dataset_build(&d, users, roles, locks);
		d.auth_pref = c->pref; /* borrowed */
		n_indexed += same_answer(&se, 1000 + i, &d, &h, &o, &req);
		n++;
		struct tu_decide_opts off = o; /* offline: strict locking_mode denies */
		off.stale_locks = true;
		(void) same_answer(&se, 3000 + i, &d, &h, &off, &req);
		d.auth_pref = (struct tu_auth_pref){ 0 };
		fx_dataset_free(&d);
		fx_labels_free(&hl);
	}
	/* Most decisions name their user: the index answers them alone. */
	assert_true(n_indexed > n / 2);
	assert_true(n_scanned > 0);
	state_env_done(&se);
}

int main(void)
{
	test_ca_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ssh_cert_key_id),
		cmocka_unit_test(test_ssh_cert_fixtures),
		cmocka_unit_test(test_ssh_cert_sshd_verified),
		cmocka_unit_test(test_decide_cert_ca),
		cmocka_unit_test(test_ssh_cert_extensions),
		cmocka_unit_test(test_decide_cert_proof),
		cmocka_unit_test(test_owners),
		cmocka_unit_test(test_decide_pure),
		cmocka_unit_test(test_decide_cluster_pref),
		cmocka_unit_test(test_compute_lock_targets),
		cmocka_unit_test(test_unusable_records),
		cmocka_unit_test(test_lock_targets_from_identity),
		cmocka_unit_test(test_decide_bad_input),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_decide_from_state_index),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
