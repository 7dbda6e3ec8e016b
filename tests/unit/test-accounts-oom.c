/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-accounts-oom.c - allocation-failure torture (STYLE §2.15 "torture
 * mode") for the POSIX mapping and the cache: this program replaces
 * malloc/calloc/realloc/free (glibc allows it; the library's calls resolve
 * here) and for every N fails the Nth allocation of one call, until the call
 * needs fewer than N.  Every run must end in success or -ENOMEM (never another
 * error, never a crash), leave the caller's output untouched on failure and
 * free everything it allocated.  Not built with sanitizers (they own malloc).
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

#include "accounts.h"
#include "cache.h"
#include "cleanup.h"
#include "conf.h"
#include "err.h"
#include "rbac-fixture.h"

#include "oom-interpose.h"

#define NOW INT64_C(1700000000000000)

static const struct fx_role roles[] = {
	{ .name = "dev", .allow_logins = "{{internal.logins}},ubuntu", .allow_labels = "*=*",
	  .mode = TU_HOST_USER_MODE_KEEP, .allow_groups = "docker,devs,team-{{internal.logins}}" },
	{ .name = "ops", .allow_logins = "ops,root,{{external.extra}}", .allow_labels = "env=prod",
	  .mode = TU_HOST_USER_MODE_INSECURE_DROP, .allow_groups = "ops,root" },
};
static const struct fx_user users[] = {
	{ .name = "alice@example.com", .roles = "dev", .traits = "logins=alice;host_user_uid=300001" },
	{ .name = "bob@example.com", .roles = "dev,ops", .traits = "logins=bob;host_user_gid=300777;extra=bad@x" },
	{ .name = "ops", .roles = "ops" },
	{ .name = "carol@example.com", .roles = "dev", .traits = "logins=carol,ops", .is_locked = true },
	{ .name = "old@example.com", .roles = "dev", .traits = "logins=old", .expires = NOW - 1 },
};
static const struct fx_lock locks[] = { { .name = "l1", .target = "user=bob@example.com", .message = "m" } };
static const struct tu_local_group local[] = { { "docker", 999 }, { "printers", 300777 } };

struct env {
	struct tu_dataset d;
	struct tu_labels labels;
	struct tu_host host;
	struct tu_conf *conf;
	char root[64];
	char group[128];
};

static struct env E;

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	close(fd);
}

static int setup(void **state)
{
	char yaml[512];
	struct tu_err e;

	E.d.users = calloc(ELEMENTSOF(users), sizeof(*E.d.users));
	E.d.roles = calloc(ELEMENTSOF(roles), sizeof(*E.d.roles));
	E.d.locks = calloc(ELEMENTSOF(locks), sizeof(*E.d.locks));
	for (size_t i = 0; i < ELEMENTSOF(users); i++)
		fx_user_build(&users[i], &E.d.users[E.d.n_users++]);
	for (size_t i = 0; i < ELEMENTSOF(roles); i++)
		fx_role_build(&roles[i], &E.d.roles[E.d.n_roles++]);
	for (size_t i = 0; i < ELEMENTSOF(locks); i++)
		fx_lock_build(&locks[i], &E.d.locks[E.d.n_locks++]);
	E.labels = fx_labels("env=prod");
	E.host = (struct tu_host){ .name = "web-1", .id = "id-1", .labels = &E.labels };

	snprintf(E.root, sizeof(E.root), "/tmp/tu-test-accounts-oom-XXXXXX");
	assert_non_null(mkdtemp(E.root));
	snprintf(E.group, sizeof(E.group), "%s/group", E.root);
	write_file(E.group, "docker:x:999:\nprinters:x:300777:\n");
	snprintf(yaml, sizeof(yaml),
		 "auth:\n  addresses: [\"127.0.0.1\"]\n  credentials:\n    identity_file: /nonexistent\n"
		 "host:\n  labels: { env: prod }\ncache:\n  dir: %s/cache\n",
		 E.root);
	tu_err_clear(&e);
	if (tu_conf_parse(yaml, strlen(yaml), "oom.yaml", &E.conf, &e) < 0)
		fail_msg("config: %s", e.msg);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", E.root);
	assert_int_equal(system(cmd), 0);
	tu_dataset_done(&E.d);
	fx_labels_free(&E.labels);
	tu_conf_free(E.conf);
	return 0;
}

/* One operation; returns 0 or a negative errno and frees what it produced. */
typedef int (*op_fn)(void);

static int op_compute(void)
{
	struct tu_accounts a = { .n_accounts = 4242 };
	struct tu_accounts_opts o = {
		.source = TU_SOURCE_HOST_USER_CREATION,
		.uid_min = 200000,
		.uid_max = 899999999,
		.home_template = "/home/{login}",
		.shell = "/bin/bash",
		.local_groups = local,
		.n_local_groups = ELEMENTSOF(local),
	};
	int r = tu_accounts_compute(&E.d, &E.host, &o, NOW, &a, NULL);
	if (r < 0) {
		assert_int_equal(a.n_accounts, 4242); /* untouched */
		return r;
	}
	assert_int_equal(a.n_accounts, 5); /* alice, bob, carol, ops, ubuntu */
	tu_accounts_done(&a);
	return 0;
}

/* The watcher's path: a memo, a full pass, one user forgotten, a second pass (issue 13). */
static int op_compute_memo(void)
{
	struct tu_accounts a = { .n_accounts = 4242 };
	struct tu_accounts_memo *m = NULL;
	struct tu_accounts_opts o = {
		.source = TU_SOURCE_HOST_USER_CREATION,
		.uid_min = 200000,
		.uid_max = 899999999,
		.local_groups = local,
		.n_local_groups = ELEMENTSOF(local),
	};
	int r = tu_accounts_memo_new(&m);
	if (r < 0)
		return r;
	for (int pass = 0; pass < 2; pass++) {
		r = tu_accounts_compute_memo(m, &E.d, &E.host, &o, NOW, &a, NULL);
		if (r < 0) {
			assert_int_equal(a.n_accounts, 4242); /* untouched */
			break;
		}
		assert_int_equal(a.n_accounts, 5);
		tu_accounts_done(&a);
		a.n_accounts = 4242;
		tu_accounts_memo_forget_user(m, E.d.users[0].name);
	}
	tu_accounts_memo_free(m);
	return r;
}

static int op_load_state(void)
{
	struct tu_dataset d = { .n_users = 4242 };
	int64_t created = 7;
	int r = tu_cache_load_state(E.conf, NOW, 0, &d, &created, NULL);
	if (r < 0) {
		assert_int_equal(d.n_users, 4242);
		assert_int_equal(created, 7);
		return r;
	}
	assert_int_equal(d.n_users, ELEMENTSOF(users));
	tu_dataset_done(&d);
	return 0;
}

static int op_save(void)
{
	return tu_cache_save_full(E.conf, E.group, &E.d, &E.host, NOW, NULL, NULL);
}

static void torture(op_fn op, const char *what)
{
	long n;

	for (n = 0; n < 100000; n++) {
		int r;

		live = 0;
		injected = false;
		countdown = n;
		counting = true;
		r = op();
		counting = false;
		countdown = -1;
		if (live != 0)
			fail_msg("%s: failing allocation %ld leaked %ld blocks (r=%d)", what, n, live, r);
		if (!injected) {
			assert_int_equal(r, 0);
			break;
		}
		if (r != -ENOMEM && r != 0)
			fail_msg("%s: failing allocation %ld gave %d, expected -ENOMEM", what, n, r);
	}
	print_message("%s: %ld allocation failure points\n", what, n);
	assert_true(n > 10);
}

static void test_compute_oom(void **state)
{
	torture(op_compute, "tu_accounts_compute");
}

static void test_compute_memo_oom(void **state)
{
	torture(op_compute_memo, "tu_accounts_compute_memo");
}

static void test_save_and_load_oom(void **state)
{
	assert_int_equal(op_save(), 0);
	torture(op_load_state, "tu_cache_load_state");
	torture(op_save, "tu_cache_save_full");
	/* What the tortured saves left behind is a complete, loadable cache. */
	assert_int_equal(op_load_state(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compute_oom),
		cmocka_unit_test(test_compute_memo_oom),
		cmocka_unit_test(test_save_and_load_oom),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
