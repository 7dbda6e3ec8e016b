/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-conf.c - libcore/conf.c: the example etc/teleport-unix.yaml and the
 * good fixtures load with the right values and defaults; every bad fixture
 * fails with -EBADMSG naming the key and line; file permission refusals;
 * limits; every truncation of the example fails cleanly; tu_conf_path().
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "err.h"
#include "fsutil.h"

#define SEC UINT64_C(1000000)
#define MIN (60 * SEC)
#define HR  (60 * MIN)

static char tmpdir[64];

static const char *srcdir(void)
{
	const char *s = getenv("top_srcdir");
	return s && *s ? s : "..";
}

static void fixture(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/tests/fixtures/conf/%s", srcdir(), name);
}

static void example(char *out, size_t size)
{
	snprintf(out, size, "%s/etc/teleport-unix.yaml", srcdir());
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("'%s' does not contain '%s'", haystack, needle);
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-conf.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct tu_conf *load_ok(const char *path)
{
	struct tu_conf *c = NULL;
	struct tu_err e;
	char buf[1024];

	tu_err_clear(&e);
	int r = tu_conf_load(path, TU_CONF_RELAXED_PERMS, &c, &e);
	if (r != 0)
		fail_msg("%s: %d %s", path, r, tu_err_format(&e, buf, sizeof(buf)));
	assert_non_null(c);
	assert_string_equal(c->path, path);
	return c;
}

static const char *label(const struct tu_conf *c, const char *key)
{
	const struct tu_strv *v = NULL;

	for (size_t i = 0; i < c->host_labels.n; i++)
		if (!strcmp(c->host_labels.e[i].key, key))
			v = &c->host_labels.e[i].values;
	if (!v)
		return NULL;
	assert_int_equal(v->n, 1);
	return v->v[0];
}

static void test_example_loads(void **state)
{
	char p[512];
	struct tu_conf *c;

	example(p, sizeof(p));
	c = load_ok(p);
	assert_int_equal(c->n_addresses, 1);
	assert_string_equal(c->addresses[0].host, "auth.example.com");
	assert_int_equal(c->addresses[0].port, 3025);
	assert_string_equal(c->server_name, "teleport.cluster.local");
	assert_string_equal(c->cluster_name, "example.com");
	assert_string_equal(c->cert_path, "/var/lib/teleport-unix/host.crt");
	assert_string_equal(c->key_path, "/var/lib/teleport-unix/host.key");
	assert_string_equal(c->ca_path, "/var/lib/teleport-unix/ca.crt");
	assert_null(c->identity_file);
	assert_int_equal(c->connect_timeout_usec, SEC);
	assert_int_equal(c->request_timeout_usec, 3 * SEC);
	assert_int_equal(c->max_message_size, 64 << 20);
	assert_string_equal(c->host_name, "web-1");
	assert_null(c->host_id);
	assert_int_equal(c->host_labels.n, 2);
	assert_string_equal(label(c, "env"), "prod");
	assert_string_equal(label(c, "team"), "infra");
	assert_int_equal(c->source, TU_SOURCE_HOST_USER_CREATION);
	assert_int_equal(c->uid_min, 200000);
	assert_int_equal(c->uid_max, 899999999);
	assert_string_equal(c->home_template, "/home/{login}");
	assert_string_equal(c->shell, "/bin/bash");
	assert_string_equal(c->cache_dir, "/var/cache/teleport-unix");
	assert_int_equal(c->refresh_after_usec, 5 * MIN);
	assert_int_equal(c->offline_max_age_usec, 72 * HR);
	assert_int_equal(c->negative_ttl_usec, MIN);
	assert_int_equal(c->pam_offline, TU_OFFLINE_CACHED);
	assert_false(c->trust_teleport_env);
	assert_false(c->trust_ssh_cert);
	assert_int_equal(c->proxy_conn_upgrade, TU_CONN_UPGRADE_AUTO);
	assert_null(c->proxy_ca);
	assert_null(tu_conf_free(c));
}

static void test_minimal_defaults(void **state)
{
	char p[512], hn[256];
	struct tu_conf *c;

	fixture(p, sizeof(p), "good-minimal.yaml");
	c = load_ok(p);
	assert_int_equal(c->n_addresses, 1);
	assert_string_equal(c->addresses[0].host, "auth.example.com");
	assert_int_equal(c->addresses[0].port, TU_DEFAULT_AUTH_PORT);
	assert_string_equal(c->server_name, TU_DEFAULT_SERVER_NAME);
	assert_null(c->cluster_name);
	assert_null(c->cert_path);
	assert_null(c->key_path);
	assert_null(c->ca_path);
	assert_string_equal(c->identity_file, "/var/lib/teleport-unix/identity");
	assert_int_equal(c->connect_timeout_usec, SEC);
	assert_int_equal(c->request_timeout_usec, 3 * SEC);
	assert_int_equal(c->max_message_size, 64 << 20);
	assert_int_equal(gethostname(hn, sizeof(hn)), 0);
	assert_string_equal(c->host_name, hn);
	assert_null(c->host_id);
	assert_int_equal(c->host_labels.n, 0);
	assert_int_equal(c->source, TU_SOURCE_HOST_USER_CREATION);
	assert_int_equal(c->uid_min, 200000);
	assert_int_equal(c->uid_max, 899999999);
	assert_string_equal(c->home_template, "/home/{login}");
	assert_string_equal(c->shell, "/bin/bash");
	assert_string_equal(c->cache_dir, TU_LOCALSTATEDIR "/cache/teleport-unix");
	assert_int_equal(c->refresh_after_usec, 5 * MIN);
	assert_int_equal(c->offline_max_age_usec, 72 * HR);
	assert_int_equal(c->negative_ttl_usec, MIN);
	assert_int_equal(c->pam_offline, TU_OFFLINE_CACHED);
	assert_false(c->trust_teleport_env);
	assert_false(c->trust_ssh_cert);
	assert_int_equal(c->proxy_conn_upgrade, TU_CONN_UPGRADE_AUTO);
	assert_null(c->proxy_ca);
	tu_conf_free(c);
}

static void test_full(void **state)
{
	char p[512];
	struct tu_conf *c;

	fixture(p, sizeof(p), "good-full.yaml");
	c = load_ok(p);
	assert_int_equal(c->n_addresses, 3);
	assert_string_equal(c->addresses[0].host, "auth-1.example.com");
	assert_int_equal(c->addresses[0].port, 3080);
	assert_string_equal(c->addresses[1].host, "10.0.0.2");
	assert_int_equal(c->addresses[1].port, 3025);
	assert_string_equal(c->addresses[2].host, "2001:db8::7");
	assert_int_equal(c->addresses[2].port, 443);
	assert_string_equal(c->server_name, "auth.internal");
	assert_string_equal(c->cluster_name, "prod.example.com");
	assert_string_equal(c->cert_path, "/etc/tu/host.crt");
	assert_string_equal(c->key_path, "/etc/tu/host.key");
	assert_string_equal(c->ca_path, "/etc/tu/ca.crt");
	assert_null(c->identity_file);
	assert_int_equal(c->connect_timeout_usec, 500000);
	assert_int_equal(c->request_timeout_usec, 90 * SEC);
	assert_int_equal(c->max_message_size, 8 << 20);
	assert_string_equal(c->host_name, "db-7");
	assert_string_equal(c->host_id, "5a9f3c0e-1111-4000-8000-000000000001");
	assert_int_equal(c->host_labels.n, 3);
	assert_string_equal(label(c, "env"), "staging");
	assert_string_equal(label(c, "teleport.dev/team"), "infra");
	assert_string_equal(label(c, "empty"), "");
	assert_int_equal(c->source, TU_SOURCE_ALL_LOGINS);
	assert_int_equal(c->uid_min, 100000);
	assert_int_equal(c->uid_max, 199999);
	assert_string_equal(c->home_template, "/srv/home/{login}/");
	assert_string_equal(c->shell, "/usr/bin/zsh");
	assert_string_equal(c->cache_dir, "/var/tmp/tu-cache");
	assert_int_equal(c->refresh_after_usec, 0);
	assert_int_equal(c->offline_max_age_usec, 7 * 24 * HR);
	assert_int_equal(c->negative_ttl_usec, 30 * SEC);
	assert_int_equal(c->pam_offline, TU_OFFLINE_DENY);
	assert_true(c->trust_teleport_env);
	assert_true(c->trust_ssh_cert);
	tu_conf_free(c);
}

/* auth.credentials.profile: a directory (its current profile) or { dir, name }; no address needed. */
static void test_profile(void **state)
{
	struct tu_conf *c = NULL;
	struct tu_err e;
	char p[512];

	(void) state;
	fixture(p, sizeof(p), "good-profile.yaml");
	assert_int_equal(tu_conf_load(p, TU_CONF_RELAXED_PERMS, &c, &e), 0);
	assert_string_equal(c->profile_dir, "/root/.tsh");
	assert_null(c->profile_name);
	assert_int_equal(c->n_addresses, 0);
	assert_null(c->proxy.host);
	assert_null(c->identity_file);
	assert_null(c->cert_path);
	c = tu_conf_free(c);

	fixture(p, sizeof(p), "good-profile-named.yaml");
	assert_int_equal(tu_conf_load(p, TU_CONF_RELAXED_PERMS, &c, &e), 0);
	assert_string_equal(c->profile_dir, "/root/.tsh");
	assert_string_equal(c->profile_name, "example.teleport.sh");
	assert_int_equal(c->n_addresses, 1);
	c = tu_conf_free(c);

	assert_int_equal(tu_conf_new_default(&c, &e), 0);
	assert_null(c->profile_dir);
	assert_int_equal(c->n_addresses, 0);
	assert_non_null(c->host_name);
	assert_string_equal(c->server_name, "teleport.cluster.local");
	assert_int_equal(c->connect_timeout_usec, 1000000);
	c = tu_conf_free(c);
}

struct bad_case {
	const char *file;
	const char *key;
	unsigned line;
	const char *msg;
};

static const struct bad_case bad_cases[] = {
	{ "bad-syntax.yaml", "auth.addresses[1]", 3, "YAML syntax error: did not find expected ',' or ']'" },
	{ "bad-unknown-key.yaml", "auth.timeouts.requets", 7, "unknown key 'requets' (expected one of: connect, request)" },
	{ "bad-wrong-type.yaml", "auth.timeouts", 5, "expected a mapping, found a scalar" },
	{ "bad-wrong-type-list.yaml", "auth.addresses", 2, "expected a list of addresses" },
	{ "bad-duration.yaml", "auth.timeouts.connect", 6, "invalid duration 'fast' (expected e.g. 90s, 5m, 72h)" },
	{ "bad-address.yaml", "auth.addresses[1]", 4, "invalid address 'http://auth.example.com'" },
	{ "bad-port.yaml", "auth.addresses[0]", 2, "invalid port in address 'auth.example.com:99999' (must be 1-65535)" },
	{ "bad-no-addresses.yaml", "auth.addresses", 2, "at least one address is required" },
	{ "bad-duplicate-key.yaml", "pam.offline", 8, "duplicate key 'offline' (first at line 6)" },
	{ "bad-both-credentials.yaml", "auth.credentials.identity_file", 5, "key_pair and identity_file are mutually exclusive" },
	{ "bad-no-credentials.yaml", "auth.credentials", 3, "one of key_pair, identity_file or profile is required" },
	{ "bad-profile-and-identity.yaml", "auth.credentials.profile", 5, "identity_file and profile are mutually exclusive (identity_file at line 4)" },
	{ "bad-profile-name.yaml", "auth.credentials.profile.name", 5, "invalid profile name '../etc'" },
	{ "bad-profile-relative.yaml", "auth.credentials.profile", 3, "invalid path '.tsh' (must be absolute" },
	{ "bad-profile-no-dir.yaml", "auth.credentials.profile.dir", 3, "missing required key 'dir'" },
	{ "bad-missing-addresses.yaml", "auth.addresses", 2, "missing required key 'addresses'" },
	{ "bad-missing-credentials.yaml", "auth.credentials", 2, "missing required key 'credentials'" },
	{ "bad-missing-auth.yaml", "auth", 1, "missing required key 'auth'" },
	{ "bad-empty.yaml", "auth", 1, "missing required key 'auth' (the file is empty)" },
	{ "bad-key-pair-incomplete.yaml", "auth.credentials.key_pair.ca", 5, "missing required key 'ca'" },
	{ "bad-relative-path.yaml", "auth.credentials.key_pair.cert", 4, "invalid path 'host.crt' (must be absolute" },
	{ "bad-bool.yaml", "pam.trust_ssh_cert", 6, "invalid boolean 'yes' (expected true or false)" },
	{ "bad-uid-range.yaml", "accounts.uid_range", 6, "minimum uid 300000 must be less than maximum 200000" },
	{ "bad-uid-range-system.yaml", "accounts.uid_range", 6, "minimum uid 500 is below 1000" },
	{ "bad-uid-range-nobody.yaml", "accounts.uid_range", 6, "contains 65534 (nobody)" },
	{ "bad-uid-range-short.yaml", "accounts.uid_range", 6, "expected a list of two uids [min, max], found 1 item(s)" },
	{ "bad-home.yaml", "accounts.home", 6, "home '/home/shared' must contain {login}" },
	{ "bad-shell.yaml", "accounts.shell", 6, "':' is not allowed in a passwd field" },
	{ "bad-source.yaml", "accounts.source", 6, "invalid value 'everyone' (expected host_user_creation or all_logins)" },
	{ "bad-label-value.yaml", "host.labels.env", 7, "expected a string label value, found a list" },
	{ "bad-label-name.yaml", "host.labels.my env", 7, "invalid label name 'my env'" },
	{ "bad-anchor.yaml", "auth.addresses", 2, "YAML anchors (&) are not supported" },
	{ "bad-alias.yaml", "auth", 1, "YAML aliases (*x) are not supported" },
	{ "bad-tag.yaml", "auth.server_name", 3, "YAML tags (!) are not supported" },
	{ "bad-multi-doc.yaml", "", 5, "multiple YAML documents are not supported" },
	{ "bad-deep.yaml", "host.labels.a[0][0][0][0][0]", 7, "nesting too deep (limit 8 levels)" },
	{ "bad-null.yaml", "auth.server_name", 3, "missing value (expected a DNS name; remove the key to use the default)" },
	{ "bad-size.yaml", "auth.max_message_size", 5, "invalid size '64MB'" },
	{ "bad-top-level-list.yaml", "", 1, "expected a mapping at the top level, found a list" },
	{ "bad-refresh-after.yaml", "cache.refresh_after", 6, "refresh_after must not be longer than offline_max_age" },
	{ "bad-cache-dir.yaml", "cache.dir", 6, "invalid path 'var/cache/teleport-unix' (must be absolute" },
	{ "bad-offline.yaml", "pam.offline", 6, "invalid value 'allow' (expected cached or deny)" },
	{ "bad-timeout-zero.yaml", "auth.timeouts.request", 6, "duration '0s' out of range (must be between 1ms and 10m)" },
};

static void test_bad_fixtures(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *b = &bad_cases[i];
		struct tu_conf *c = (struct tu_conf *) (uintptr_t) 0x1;
		char p[512], buf[1024], want[600];
		struct tu_err e;
		int r;

		fixture(p, sizeof(p), b->file);
		tu_err_clear(&e);
		r = tu_conf_load(p, TU_CONF_RELAXED_PERMS, &c, &e);
		if (r != -EBADMSG)
			fail_msg("%s: got %d, want -EBADMSG (%s)", b->file, r,
				 tu_err_format(&e, buf, sizeof(buf)));
		assert_ptr_equal(c, (struct tu_conf *) (uintptr_t) 0x1); /* untouched */
		assert_int_equal(e.code, -EBADMSG);
		assert_string_equal(e.file, p);
		if (strcmp(e.key, b->key) != 0)
			fail_msg("%s: key '%s', want '%s'", b->file, e.key, b->key);
		if (e.line != b->line)
			fail_msg("%s: line %u, want %u (%s)", b->file, e.line, b->line, e.msg);
		assert_contains(e.msg, b->msg);
		/* the one-line form the CLI prints */
		if (b->key[0])
			snprintf(want, sizeof(want), "%s:%u: %s: ", p, b->line, b->key);
		else
			snprintf(want, sizeof(want), "%s:%u: ", p, b->line);
		assert_contains(tu_err_format(&e, buf, sizeof(buf)), want);
	}
}

static void test_missing_file(void **state)
{
	struct tu_conf *c = NULL;
	struct tu_err e;
	char p[128];

	snprintf(p, sizeof(p), "%s/nope.yaml", tmpdir);
	tu_err_clear(&e);
	assert_int_equal(tu_conf_load(p, 0, &c, &e), -ENOENT);
	assert_null(c);
	assert_contains(e.msg, "cannot open");
	assert_contains(e.msg, "nope.yaml: No such file or directory");
	tu_err_clear(&e);
	assert_int_equal(tu_conf_load(tmpdir, TU_CONF_RELAXED_PERMS, &c, &e), -EINVAL);
	assert_contains(e.msg, "not a regular file");
}

static void copy_example(const char *dst, mode_t mode)
{
	char p[512], *text = NULL;
	size_t len = 0;

	example(p, sizeof(p));
	assert_int_equal(tu_fs_read_file(p, 1 << 20, TU_FS_RELAXED, &text, &len, NULL), 0);
	assert_int_equal(tu_fs_write_atomic(dst, text, len, mode, NULL), 0);
	free(text);
}

static void test_permissions(void **state)
{
	const bool root = geteuid() == 0;
	struct tu_conf *c = NULL;
	struct tu_err e;
	char p[128], want[256];

	/* world-writable */
	snprintf(p, sizeof(p), "%s/ww.yaml", tmpdir);
	copy_example(p, 0666);
	tu_err_clear(&e);
	if (root) {
		assert_int_equal(tu_conf_load(p, 0, &c, &e), -EACCES);
		snprintf(want, sizeof(want), "refusing %s: writable by others (mode 0666)", p);
		assert_contains(e.msg, want);
		assert_null(c);
	} else {
		assert_int_equal(tu_conf_load(p, 0, &c, &e), -EPERM);
	}
	c = load_ok(p); /* relaxed */
	tu_conf_free(c);
	c = NULL;

	/* not owned by root */
	snprintf(p, sizeof(p), "%s/notroot.yaml", tmpdir);
	copy_example(p, 0644);
	if (root)
		assert_int_equal(chown(p, 4321, 4321), 0);
	tu_err_clear(&e);
	assert_int_equal(tu_conf_load(p, 0, &c, &e), -EPERM);
	snprintf(want, sizeof(want), "refusing %s: owned by uid %u, must be root", p,
		 root ? 4321u : (unsigned) geteuid());
	assert_contains(e.msg, want);
	assert_null(c);
	c = load_ok(p);
	tu_conf_free(c);
	c = NULL;

	/* root-owned 0644 / 0600 are fine */
	if (root) {
		snprintf(p, sizeof(p), "%s/good.yaml", tmpdir);
		copy_example(p, 0644);
		tu_err_clear(&e);
		assert_int_equal(tu_conf_load(p, 0, &c, &e), 0);
		tu_conf_free(c);
		c = NULL;
		copy_example(p, 0600);
		assert_int_equal(tu_conf_load(p, 0, &c, &e), 0);
		tu_conf_free(c);
	}
}

struct inline_case {
	const char *text;
	int r;
	const char *key;
	const char *msg;
};

#define BASE "auth:\n  addresses: [a]\n  credentials: {identity_file: /i}\n"

static void test_inline(void **state)
{
	static const struct inline_case cases[] = {
		{ BASE, 0, NULL, NULL },
		{ BASE "pam: {trust_ssh_cert: \"true\"}\n", 0, NULL, NULL },
		{ BASE "pam: {trust_ssh_cert: FALSE}\n", 0, NULL, NULL },
		{ BASE "pam: {trust_ssh_cert: on}\n", -EBADMSG, "pam.trust_ssh_cert", "invalid boolean 'on'" },
		{ BASE "pam: {trust_ssh_cert: 1}\n", -EBADMSG, "pam.trust_ssh_cert", "invalid boolean '1'" },
		{ BASE "host: {name: \"a\\0b\"}\n", -EBADMSG, "host.name", "NUL byte" },
		{ BASE "host: {name: \"a\\nb\"}\n", -EBADMSG, "host.name", "control characters" },
		{ BASE "host: {name: \"\"}\n", -EBADMSG, "host.name", "must not be empty" },
		{ BASE "host: {id: ~}\n", -EBADMSG, "host.id", "missing value" },
		{ BASE "host: {labels: {a: ~}}\n", -EBADMSG, "host.labels.a", "missing value (quote it" },
		{ BASE "host: {labels: {a: b, a: c}}\n", -EBADMSG, "host.labels.a", "duplicate label 'a'" },
		{ BASE "host: {labels: []}\n", -EBADMSG, "host.labels", "expected a mapping of label names" },
		{ BASE "host: {labels: {}}\n", 0, NULL, NULL },
		{ BASE "host: []\n", -EBADMSG, "host", "expected a mapping, found a list" },
		{ BASE "accounts: {uid_range: [1000, 1.5]}\n", -EBADMSG, "accounts.uid_range", "invalid uid '1.5'" },
		{ BASE "accounts: {uid_range: [1000, 4294967295]}\n", -EBADMSG, "accounts.uid_range", "invalid uid '4294967295'" },
		{ BASE "accounts: {uid_range: [1000, 2000]}\n", 0, NULL, NULL },
		{ BASE "accounts: {uid_range: [70000, 2147483647]}\n", 0, NULL, NULL },
		{ BASE "accounts: {uid_range: 5}\n", -EBADMSG, "accounts.uid_range", "found a scalar" },
		{ BASE "accounts: {home: \"/home/{user}\"}\n", -EBADMSG, "accounts.home", "must contain {login}" },
		{ BASE "accounts: {home: \"/h/{login}/{x}\"}\n", -EBADMSG, "accounts.home", "only the {login} placeholder" },
		{ BASE "accounts: {home: \"/h/{login}{login}\"}\n", 0, NULL, NULL },
		{ BASE "accounts: {shell: bash}\n", -EBADMSG, "accounts.shell", "must be absolute" },
		{ BASE "cache: {negative_ttl: 2d}\n", -EBADMSG, "cache.negative_ttl", "out of range (must be between 0 and 1d)" },
		{ BASE "cache: {offline_max_age: 0}\n", -EBADMSG, "cache.offline_max_age", "use pam.offline: deny" },
		{ BASE "cache: {refresh_after: 999999999999d}\n", -EBADMSG, "cache.refresh_after", "is too large" },
		{ BASE "cache: {offline_max_age: 1m}\n", -EBADMSG, "cache.offline_max_age", "refresh_after must not be longer" },
		{ BASE "cache:\n  dir: /x\n  dir: /y\n", -EBADMSG, "cache.dir", "duplicate key 'dir' (first at line 5)" },
		{ "auth:\n  addresses: [a]\n  addresses: [b]\n  credentials: {identity_file: /i}\n", -EBADMSG, "auth.addresses", "duplicate key" },
		{ "auth:\n  addresses: [a, [b]]\n  credentials: {identity_file: /i}\n", -EBADMSG, "auth.addresses[1]", "expected an address (host:port), found a list" },
		{ "auth:\n  addresses: [a, \"\"]\n  credentials: {identity_file: /i}\n", -EBADMSG, "auth.addresses[1]", "invalid address ''" },
		{ "auth:\n  addresses: [\"::1\"]\n  credentials: {identity_file: /i}\n", -EBADMSG, "auth.addresses[0]", "[ipv6]:port" },
		{ "auth:\n  addresses: [a]\n  credentials: {identity_file: /i}\n  max_message_size: 100\n", -EBADMSG, "auth.max_message_size", "out of range (must be between 1KiB and 1GiB)" },
		{ "auth:\n  addresses: [a]\n  credentials: {identity_file: /i}\n  max_message_size: 2GiB\n", -EBADMSG, "auth.max_message_size", "out of range" },
		{ "auth:\n  addresses: [a]\n  credentials: {identity_file: /i}\n  server_name: \"x y\"\n", -EBADMSG, "auth.server_name", "invalid server name" },
		{ "auth:\n  addresses: [a]\n  credentials: {identity_file: /i, key_pair: 1}\n", -EBADMSG, "auth.credentials.key_pair", "expected a mapping, found a scalar" },
		{ "auth:\n  addresses: [a]\n  credentials: {identity_file: /i}\n  timeouts: {connect: 11m}\n", -EBADMSG, "auth.timeouts.connect", "out of range" },
		{ "auth: {addresses: [a], credentials: {identity_file: /i}}\nfoo: 1\n", -EBADMSG, "foo", "unknown key 'foo' (expected one of: auth, host, accounts, cache, pam)" },
		{ "auth: {addresses: [a], credentials: {identity_file: /i}}\n[x]: 1\n", -EBADMSG, "", "mapping keys must be strings, found a list" },
		{ "auth: {addresses: [a], credentials: {identity_file: /i}, proxy_conn_upgrade: always, proxy_ca: /p.pem}\n", 0, NULL, NULL },
		{ "auth: {addresses: [a], credentials: {identity_file: /i}, proxy_conn_upgrade: never}\n", 0, NULL, NULL },
		{ "auth: {addresses: [a], credentials: {identity_file: /i}, proxy_conn_upgrade: yes}\n", -EBADMSG, "auth.proxy_conn_upgrade", "invalid value 'yes' (expected auto, always or never)" },
		{ "auth: {addresses: [a], credentials: {identity_file: /i}, proxy_conn_upgrade: [auto]}\n", -EBADMSG, "auth.proxy_conn_upgrade", "found a list" },
		{ "auth: {addresses: [a], credentials: {identity_file: /i}, proxy_ca: ca.pem}\n", -EBADMSG, "auth.proxy_ca", "must be absolute" },
		{ "~\n", -EBADMSG, "auth", "the file is empty" },
		{ "", -EBADMSG, "auth", "the file is empty" },
		{ "just text\n", -EBADMSG, "", "expected a mapping at the top level, found a scalar" },
		{ "auth: {addresses: [a], credentials: {identity_file: /i}}\n\tfoo: 1\n", -EBADMSG, "", "YAML syntax error" },
		{ "\xff\xfe\x00", -EBADMSG, "", "YAML syntax error" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct inline_case *t = &cases[i];
		struct tu_conf *c = NULL;
		struct tu_err e;
		char buf[1024];
		size_t len = strlen(t->text);
		int r;

		if (!strcmp(t->text, "\xff\xfe\x00"))
			len = 3;
		tu_err_clear(&e);
		r = tu_conf_parse(t->text, len, "inline.yaml", &c, &e);
		if (r != t->r)
			fail_msg("case %zu: got %d, want %d (%s)\n%s", i, r, t->r,
				 tu_err_format(&e, buf, sizeof(buf)), t->text);
		if (r == 0) {
			assert_non_null(c);
			assert_null(c->path);
			tu_conf_free(c);
			continue;
		}
		assert_null(c);
		assert_string_equal(e.file, "inline.yaml");
		assert_true(e.line >= 1);
		if (strcmp(e.key, t->key) != 0)
			fail_msg("case %zu: key '%s', want '%s' (%s)", i, e.key, t->key, e.msg);
		assert_contains(e.msg, t->msg);
	}
}

#define BIG ((size_t) 1 << 21)

static void test_limits(void **state)
{
	struct tu_conf *c = NULL;
	struct tu_err e;
	char *big;
	size_t off;

	/* 17 addresses */
	big = malloc(BIG);
	assert_non_null(big);
	off = (size_t) snprintf(big, BIG, "auth:\n  credentials: {identity_file: /i}\n  addresses:\n");
	for (int i = 0; i < 17; i++)
		off += (size_t) snprintf(big + off, BIG - off, "    - h%d\n", i);
	tu_err_clear(&e);
	assert_int_equal(tu_conf_parse(big, off, NULL, &c, &e), -EBADMSG);
	assert_string_equal(e.key, "auth.addresses");
	assert_string_equal(e.file, "<config>");
	assert_contains(e.msg, "too many addresses (17, limit 16)");

	/* 16 is fine */
	off = (size_t) snprintf(big, BIG, "auth:\n  credentials: {identity_file: /i}\n  addresses:\n");
	for (int i = 0; i < 16; i++)
		off += (size_t) snprintf(big + off, BIG - off, "    - h%d:%d\n", i, 1000 + i);
	assert_int_equal(tu_conf_parse(big, off, NULL, &c, &e), 0);
	assert_int_equal(c->n_addresses, 16);
	assert_string_equal(c->addresses[15].host, "h15");
	assert_int_equal(c->addresses[15].port, 1015);
	c = tu_conf_free(c);

	/* 257 labels */
	off = (size_t) snprintf(big, BIG, BASE "host:\n  labels:\n");
	for (int i = 0; i < 257; i++)
		off += (size_t) snprintf(big + off, BIG - off, "    l%d: v\n", i);
	tu_err_clear(&e);
	assert_int_equal(tu_conf_parse(big, off, NULL, &c, &e), -EBADMSG);
	assert_string_equal(e.key, "host.labels");
	assert_contains(e.msg, "too many labels (257, limit 256)");

	/* a scalar longer than the limit */
	off = (size_t) snprintf(big, BIG, BASE "host:\n  name: ");
	memset(big + off, 'x', 5000);
	off += 5000;
	big[off++] = '\n';
	tu_err_clear(&e);
	assert_int_equal(tu_conf_parse(big, off, NULL, &c, &e), -EBADMSG);
	assert_string_equal(e.key, "host.name");
	assert_contains(e.msg, "value too long");

	/* too many nodes */
	off = (size_t) snprintf(big, BIG, BASE "host:\n  labels: {a: [");
	for (int i = 0; i < 20000; i++)
		off += (size_t) snprintf(big + off, BIG - off, "1,");
	off += (size_t) snprintf(big + off, BIG - off, "1]}\n");
	tu_err_clear(&e);
	assert_int_equal(tu_conf_parse(big, off, NULL, &c, &e), -EBADMSG);
	assert_contains(e.msg, "too many YAML nodes");

	/* over the file size limit */
	memset(big, '#', BIG);
	tu_err_clear(&e);
	assert_int_equal(tu_conf_parse(big, (1 << 20) + 1, NULL, &c, &e), -EMSGSIZE);
	assert_null(c);
	free(big);
}

/* Every prefix of the example either loads or fails cleanly with a located error. */
static void test_truncations(void **state)
{
	char p[512], *text = NULL, buf[1024];
	size_t len = 0, ok = 0;

	example(p, sizeof(p));
	assert_int_equal(tu_fs_read_file(p, 1 << 20, TU_FS_RELAXED, &text, &len, NULL), 0);
	for (size_t n = 0; n <= len; n++) {
		struct tu_conf *c = NULL;
		struct tu_err e;
		int r;

		tu_err_clear(&e);
		r = tu_conf_parse(text, n, "t.yaml", &c, &e);
		if (r == 0) {
			ok++;
			tu_conf_free(c);
			continue;
		}
		if (r != -EBADMSG || !e.msg[0] || e.line == 0)
			fail_msg("prefix %zu: %d %s", n, r, tu_err_format(&e, buf, sizeof(buf)));
		assert_null(c);
	}
	/* once the credentials are in, later prefixes load */
	assert_true(ok > 0);
	free(text);
}

/* Every single-bit flip of the example: loads, or fails cleanly with a located error. */
static void test_bit_flips(void **state)
{
	char p[512], *text = NULL, buf[1024];
	size_t len = 0, ok = 0, bad = 0;

	example(p, sizeof(p));
	assert_int_equal(tu_fs_read_file(p, 1 << 20, TU_FS_RELAXED, &text, &len, NULL), 0);
	for (size_t i = 0; i < len; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			struct tu_conf *c = NULL;
			struct tu_err e;
			int r;

			text[i] ^= (char) (1u << bit);
			tu_err_clear(&e);
			r = tu_conf_parse(text, len, "f.yaml", &c, &e);
			text[i] ^= (char) (1u << bit);
			if (r == 0) {
				ok++;
				tu_conf_free(c);
				continue;
			}
			bad++;
			if (r != -EBADMSG || !e.msg[0] || e.line == 0 || c)
				fail_msg("flip %zu/%u: %d %s", i, bit, r,
					 tu_err_format(&e, buf, sizeof(buf)));
		}
	}
	/* flips in comments are harmless, flips in keys are not */
	assert_true(ok > 0 && bad > 0);
	free(text);
}

static void test_conf_path(void **state)
{
	assert_string_equal(tu_conf_path("/x.yaml"), "/x.yaml");
	unsetenv("TELEPORT_UNIX_CONFIG");
	assert_string_equal(tu_conf_path(NULL), TU_CONF_DEFAULT_PATH);
	assert_string_equal(tu_conf_path(""), TU_CONF_DEFAULT_PATH);
	setenv("TELEPORT_UNIX_CONFIG", "/env.yaml", 1);
	assert_string_equal(tu_conf_path(NULL), "/env.yaml");
	assert_string_equal(tu_conf_path("/cli.yaml"), "/cli.yaml");
	setenv("TELEPORT_UNIX_CONFIG", "", 1);
	assert_string_equal(tu_conf_path(NULL), TU_CONF_DEFAULT_PATH);
	unsetenv("TELEPORT_UNIX_CONFIG");
	assert_null(tu_conf_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_loads),
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_bad_fixtures),
		cmocka_unit_test(test_profile),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_permissions),
		cmocka_unit_test(test_inline),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_conf_path),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
