/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-pam-oom.c - pam_teleport.so under allocation failure (issue 14):
 * the real Linux-PAM (pam_start_confdir) runs the module's account phase,
 * deciding offline from a snapshot (Auth unreachable, credentials absent,
 * host.id set), while every Nth allocation in the process fails
 * (an interposer over glibc's, for the module and libteleport-unix too).  For every N: never an allow for a locked user,
 * never a crash, and out of memory is PAM_BUF_ERR as docs/errors.md says
 * (it was PAM_AUTHINFO_UNAVAIL); a configuration that libyaml could not
 * finish reading stays a refusal (PAM_PERM_DENIED), and libpam's own
 * allocations failing give PAM_SYSTEM_ERR.
 */
#include <errno.h>
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
#include <security/pam_appl.h>

#include "cache.h"
#include "conf.h"
#include "ctx.h"
#include "cleanup.h"
#include "err.h"
#include "rbac-fixture.h"

/*
 * One allocation fails: the one after `countdown` more succeed while
 * `counting` (then `injected` says it happened).  Unlike
 * tests/unit/oom-interpose.h, later allocations succeed again, so what
 * libpam does after the module (its audit record) does not mask the
 * module's answer.  Default visibility: the dlopened module binds to these.
 */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t sz);
void *__libc_realloc(void *p, size_t n);

static bool counting, injected;
static long countdown = -1;

static bool fail_now(void)
{
	if (!counting || countdown < 0)
		return false;
	if (countdown-- == 0) {
		injected = true;
		return true;
	}
	return false;
}

TU_EXPORT void *malloc(size_t n)
{
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}

TU_EXPORT void *calloc(size_t n, size_t sz)
{
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, sz);
}

TU_EXPORT void *realloc(void *old, size_t n)
{
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(old, n);
}

TU_EXPORT void *reallocarray(void *old, size_t n, size_t sz)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, sz, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(old, bytes);
}

static char dir[256], module[1024];

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	(void) msg;
	(void) data;
	*resp = calloc((size_t) n, sizeof(**resp));
	return *resp ? PAM_SUCCESS : PAM_BUF_ERR;
}

static const struct fx_role roles[] = {
	{ "dev", .allow_logins = "{{internal.logins}}", .allow_labels = "env=dev", .mode = TU_HOST_USER_MODE_KEEP },
	{ 0 },
};
static const struct fx_user users[] = {
	{ "alice", "dev", "logins=alice" },
	{ "dave", "dev", "logins=dave" },
	{ 0 },
};
static const struct fx_lock locks[] = {
	{ "lock-dave", "user=dave", "investigation" },
	{ 0 },
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void) state;
	const char *b = getenv("top_builddir");
	char p[600], text[2048];

	snprintf(module, sizeof(module), "%s/.libs/pam_teleport.so", b ? b : ".");
	if (access(module, R_OK) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/tu-pam-oom-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(p, sizeof(p), "%s/pam.d", dir);
	(void) mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/t.yaml", dir);
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
		 "  dir: %s/cache\n",
		 dir, dir, dir, dir);
	write_file(p, text);
	snprintf(text, sizeof(text), "account required %s config=%s/t.yaml insecure_perms\n", module, dir);
	snprintf(p, sizeof(p), "%s/pam.d/tu", dir);
	write_file(p, text);

	struct tu_conf *conf = NULL;
	struct tu_err e = { 0 };
	struct tu_dataset d;
	struct tu_labels hl = fx_labels("env=dev");
	struct tu_host h = { "web-1", "host-uuid", NULL, &hl };
	snprintf(p, sizeof(p), "%s/t.yaml", dir);
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

/* The account phase for user with the allocation after `fail_after` more failing (-1: none). */
static int pam_acct_oom(const char *user, long fail_after, bool *ret_injected)
{
	char confdir[400];
	struct pam_conv c = { conv, NULL };
	pam_handle_t *pamh = NULL;
	int r;

	snprintf(confdir, sizeof(confdir), "%s/pam.d", dir);
	assert_int_equal(pam_start_confdir("tu", user, &c, confdir, &pamh), PAM_SUCCESS);
	/* Once without failures: libpam loads the stack on its first dispatch. */
	(void) pam_acct_mgmt(pamh, PAM_SILENT);
	injected = false;
	countdown = fail_after;
	counting = true;
	r = pam_acct_mgmt(pamh, PAM_SILENT);
	counting = false;
	countdown = -1;
	*ret_injected = injected;
	pam_end(pamh, r);
	return r;
}

static void sweep(const char *user, int want)
{
	int n_buf = 0, n_unavail = 0;
	bool inj = false;
	long n;

	assert_int_equal(pam_acct_oom(user, -1, &inj), want);
	for (n = 0; n < 200000; n++) {
		int r = pam_acct_oom(user, n, &inj);

		if (!inj) {
			assert_int_equal(r, want); /* N past the last allocation: the real answer */
			break;
		}
		if (want != PAM_SUCCESS && r == PAM_SUCCESS)
			fail_msg("%s: allocation %ld failing turned a refusal into an allow", user, n);
		if (getenv("TU_OOM_VERBOSE"))
			print_message("%s: %ld: %s\n", user, n, pam_strerror(NULL, r));
		n_buf += r == PAM_BUF_ERR;
		n_unavail += r == PAM_AUTHINFO_UNAVAIL;
		/* PAM_SYSTEM_ERR: libpam's own allocations around the module failing. */
		if (r != want && r != PAM_BUF_ERR && r != PAM_PERM_DENIED && r != PAM_SYSTEM_ERR)
			fail_msg("%s: allocation %ld failing gave '%s'", user, n, pam_strerror(NULL, r));
	}
	print_message("%s: %ld allocations tried, %d PAM_BUF_ERR, %d PAM_AUTHINFO_UNAVAIL\n", user, n, n_buf,
		      n_unavail);
	assert_true(n > 0);
	assert_true(n_buf > 0);
}

static void test_oom_alice(void **state)
{
	(void) state;
	sweep("alice", PAM_SUCCESS);
}

static void test_oom_dave(void **state)
{
	(void) state;
	sweep("dave", PAM_PERM_DENIED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oom_alice),
		cmocka_unit_test(test_oom_dave),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
