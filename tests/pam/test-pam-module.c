/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-pam-module.c - pam_teleport.so from the build tree in a real
 * Linux-PAM stack (pam_start_confdir with a service file in a temporary
 * directory, as Linux-PAM's own faillock test does), deciding offline from
 * a cache snapshot written with tu_cache_save(): every return code of SPEC
 * §5, PAM_SILENT, the [success=ok user_unknown=ignore default=bad]
 * stacking, other phases returning PAM_IGNORE, a broken configuration.
 * Auth is "127.0.0.1:1" (nothing listens), so nothing here needs a server.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <security/pam_appl.h>

#include "cache.h"
#include "conf.h"
#include "ctx.h"
#include "err.h"
#include "rbac-fixture.h"

static char dir[256];
static char module[1024];
static int n_messages;
static char last_message[512];

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	(void) data;
	*resp = calloc((size_t) n, sizeof(**resp));
	for (int i = 0; i < n; i++) {
		n_messages++;
		snprintf(last_message, sizeof(last_message), "%s", msg[i]->msg ? msg[i]->msg : "");
	}
	return PAM_SUCCESS;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void write_config(const char *name, const char *offline)
{
	char path[512], text[2048];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(text, sizeof(text),
		 "auth:\n"
		 "  addresses: [\"127.0.0.1:1\"]\n"
		 "  credentials:\n"
		 "    key_pair: { cert: %s/none.crt, key: %s/none.key, ca: %s/none.ca }\n"
		 "  timeouts: { connect: 1s, request: 1s }\n"
		 "host:\n"
		 "  name: web-1\n"
		 "  id: host-uuid\n"
		 "  labels: { env: dev }\n"
		 "cache:\n"
		 "  dir: %s/cache\n"
		 "pam:\n"
		 "  offline: %s\n",
		 dir, dir, dir, dir, offline);
	write_file(path, text);
}

static const struct fx_role roles[] = {
	{ "dev", .allow_logins = "{{internal.logins}}", .allow_labels = "env=dev", .mode = TU_HOST_USER_MODE_KEEP },
	{ "no-root", .deny_logins = "root" },
	{ "strict", .allow_logins = "sid", .allow_labels = "*=*", .mode = TU_HOST_USER_MODE_KEEP, .lock_mode = "strict" },
	{ 0 },
};

static const struct fx_user users[] = {
	{ "alice", "dev", "logins=alice" },
	{ "dave", "dev", "logins=dave" },
	{ "gina", "dev", "logins=deploy" },
	{ "hank", "dev", "logins=deploy" },
	{ "sid", "strict", "" },
	{ 0 },
};

static const struct fx_lock locks[] = {
	{ "lock-dave", "user=dave", "investigation" },
	{ 0 },
};

static int setup(void **state)
{
	(void) state;
	const char *b = getenv("top_builddir");
	snprintf(module, sizeof(module), "%s/.libs/pam_teleport.so", b ? b : ".");
	if (access(module, R_OK) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/tu-pam-test-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char p[512];
	snprintf(p, sizeof(p), "%s/cache", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/pam.d", dir);
	mkdir(p, 0755);
	write_config("cached.yaml", "cached");
	write_config("deny.yaml", "deny");
	snprintf(p, sizeof(p), "%s/broken.yaml", dir);
	write_file(p, "auth: [this is: not valid\n");

	/* The snapshot the module decides from. */
	struct tu_conf *conf = NULL;
	struct tu_err e = { 0 };
	struct tu_dataset d;
	struct tu_labels hl = fx_labels("env=dev");
	struct tu_host h = { "web-1", "host-uuid", NULL, &hl };
	snprintf(p, sizeof(p), "%s/cached.yaml", dir);
	if (tu_conf_load(p, TU_CONF_RELAXED_PERMS, &conf, &e) < 0) {
		fprintf(stderr, "config: %s\n", e.msg);
		return -1;
	}
	fx_dataset_build(&d, users, roles, locks);
	int k = tu_cache_save(conf, &d, &h, tu_now_usec(), NULL, &e);
	if (k < 0)
		fprintf(stderr, "cache: %s\n", e.msg);
	fx_dataset_free(&d);
	fx_labels_free(&hl);
	tu_conf_free(conf);
	return k < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void) state;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Runs one phase of a service: service_text has two %s, the module path then the test directory. */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int run(const char *service_text, const char *user, int phase, int flags)
{
	char path[512], text[2048];
	pam_handle_t *pamh = NULL;
	struct pam_conv c = { conv, NULL };
	int r;

	snprintf(text, sizeof(text), service_text, module, dir, module, dir);
	snprintf(path, sizeof(path), "%s/pam.d/tu", dir);
	write_file(path, text);
	snprintf(path, sizeof(path), "%s/pam.d", dir);
	n_messages = 0;
	last_message[0] = '\0';
	r = pam_start_confdir("tu", user, &c, path, &pamh);
	assert_int_equal(r, PAM_SUCCESS);
	switch (phase) {
	case 0:
		r = pam_acct_mgmt(pamh, flags);
		break;
	case 1:
		r = pam_authenticate(pamh, flags);
		break;
	default:
		r = pam_open_session(pamh, flags);
		if (r == PAM_SUCCESS)
			r = pam_close_session(pamh, flags);
		break;
	}
	pam_end(pamh, r);
	return r;
}

#define ALONE   "account required %s config=%s/cached.yaml insecure_perms\n"
#define STACKED "account [success=ok user_unknown=ignore default=bad] %s config=%s/cached.yaml insecure_perms\naccount required pam_permit.so\n"

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void test_codes(void **state)
{
	(void) state;
	int fds = count_fds();
	static const struct {
		const char *user;
		int want;
	} cases[] = {
		{ "alice", PAM_SUCCESS },
		{ "dave", PAM_PERM_DENIED },        /* lock */
		{ "deploy", PAM_PERM_DENIED },      /* shared, no identity */
		{ "root", PAM_USER_UNKNOWN },
		{ "localonly", PAM_USER_UNKNOWN },
		{ "bad:name", PAM_USER_UNKNOWN },
		{ "sid", PAM_PERM_DENIED },         /* options.lock: strict, offline */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = run(ALONE, cases[i].user, 0, 0);
		if (r != cases[i].want)
			fail_msg("%s: want %d got %d (%s)", cases[i].user, cases[i].want, r, pam_strerror(NULL, r));
	}
	/* No descriptor is left open by the module (Auth connections, cache files). */
	assert_int_equal(count_fds(), fds);
}

static void test_messages_and_silent(void **state)
{
	(void) state;
	assert_int_equal(run(ALONE, "dave", 0, 0), PAM_PERM_DENIED);
	assert_int_equal(n_messages, 1);
	assert_string_equal(last_message, "Teleport: access denied");
	assert_int_equal(run(ALONE, "dave", 0, PAM_SILENT), PAM_PERM_DENIED);
	assert_int_equal(n_messages, 0);
	assert_int_equal(run(ALONE, "alice", 0, 0), PAM_SUCCESS);
	assert_int_equal(n_messages, 0);
}

static void test_stacking(void **state)
{
	(void) state;
	assert_int_equal(run(STACKED, "localonly", 0, 0), PAM_SUCCESS);
	assert_int_equal(run(STACKED, "root", 0, 0), PAM_SUCCESS);
	assert_int_equal(run(STACKED, "alice", 0, 0), PAM_SUCCESS);
	assert_int_equal(run(STACKED, "dave", 0, 0), PAM_PERM_DENIED);
	assert_int_equal(run(STACKED, "deploy", 0, 0), PAM_PERM_DENIED);
}

static void test_offline_deny_and_broken_config(void **state)
{
	(void) state;
	assert_int_equal(run("account required %s config=%s/deny.yaml insecure_perms\n", "alice", 0, 0),
			 PAM_AUTHINFO_UNAVAIL);
	assert_int_equal(n_messages, 1);
	assert_int_equal(run("account required %s config=%s/broken.yaml insecure_perms\n", "localonly", 0, 0),
			 PAM_PERM_DENIED);
	assert_int_equal(run("account [success=ok user_unknown=ignore default=bad] %s config=%s/broken.yaml insecure_perms\n"
			     "account required pam_permit.so\n", "localonly", 0, 0),
			 PAM_PERM_DENIED);
	assert_int_equal(run("account required %s config=%s/missing.yaml insecure_perms\n", "alice", 0, 0),
			 PAM_PERM_DENIED);
	/* Without insecure_perms the test's own (non-root) config is refused: closed. */
	if (geteuid() != 0)
		assert_int_equal(run("account required %s config=%s/cached.yaml\n", "alice", 0, 0), PAM_PERM_DENIED);
}

static void test_other_phases_ignore(void **state)
{
	(void) state;
	assert_int_equal(run("auth optional %s config=%s/broken.yaml\nauth required pam_permit.so\n", "dave", 1, 0),
			 PAM_SUCCESS);
	assert_int_equal(run("session optional %s config=%s/broken.yaml\nsession required pam_permit.so\n", "dave", 2, 0),
			 PAM_SUCCESS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codes),
		cmocka_unit_test(test_messages_and_silent),
		cmocka_unit_test(test_stacking),
		cmocka_unit_test(test_offline_deny_and_broken_config),
		cmocka_unit_test(test_other_phases_ignore),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
