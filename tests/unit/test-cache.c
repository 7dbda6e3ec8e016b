/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-cache.c - the cache files (libcore/cache.c, SPEC §6): save/load round
 * trip, file modes, the public snapshot's content, stale / future / missing
 * state, the trust rule, and corrupt state files (every truncation and
 * single-bit flips) giving a clean error, never a crash, and the writers'
 * refresh lock (tu_cache_lock).  Works in a fresh
 * temporary directory per test.
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
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache.h"
#include "cleanup.h"
#include "conf.h"
#include "err.h"
#include "online.h"
#include "rbac-fixture.h"
#include "snapshot.h"

#define NOW    INT64_C(1700000000000000)
#define SEC    INT64_C(1000000)
#define MAXAGE (INT64_C(72) * 3600 * SEC)

struct env {
	char root[64];   /* temp dir */
	char dir[128];   /* cache.dir (not created: the save must create it) */
	char group[128]; /* an /etc/group stand-in */
	struct tu_conf *conf;
	struct tu_dataset d;
	struct tu_labels labels;
	struct tu_host host;
};

static const struct fx_role roles[] = {
    {.name = "dev",
     .allow_logins = "{{internal.logins}},ubuntu",
     .allow_labels = "*=*",
     .mode = TU_HOST_USER_MODE_KEEP,
     .allow_groups = "docker,devs"},
    {.name = "audit",
     .allow_logins = "auditor",
     .allow_labels = "env=prod",
     .mode = TU_HOST_USER_MODE_KEEP},
};
static const struct fx_user users[] = {
    {.name = "alice@example.com", .roles = "dev", .traits = "logins=alice;host_user_uid=300001"},
    {.name = "bob@example.com", .roles = "dev,audit", .traits = "logins=bob"},
    {.name = "carol@example.com", .roles = "dev", .traits = "logins=carol", .is_locked = true},
};
static const struct fx_lock locks[] = {
    {.name = "lock-1", .target = "user=carol@example.com", .message = "incident"},
};

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char yaml[1024];
	struct tu_err err;

	assert_non_null(e);
	snprintf(e->root, sizeof(e->root), "/tmp/tu-test-cache-XXXXXX");
	assert_non_null(mkdtemp(e->root));
	snprintf(e->dir, sizeof(e->dir), "%s/cache/sub", e->root);
	snprintf(e->group, sizeof(e->group), "%s/group", e->root);
	write_file(e->group, "root:x:0:\ndocker:x:999:someone\n", 0644);

	snprintf(
	    yaml, sizeof(yaml),
	    "auth:\n"
	    "  addresses: [\"127.0.0.1:3025\"]\n"
	    "  credentials:\n"
	    "    key_pair: { cert: /nonexistent/c, key: /nonexistent/k, ca: /nonexistent/ca }\n"
	    "host:\n"
	    "  labels: { env: prod }\n"
	    "accounts:\n"
	    "  uid_range: [200000, 899999999]\n"
	    "cache:\n"
	    "  dir: %s\n"
	    "  offline_max_age: 72h\n",
	    e->dir);
	tu_err_clear(&err);
	if (tu_conf_parse(yaml, strlen(yaml), "test.yaml", &e->conf, &err) < 0)
		fail_msg("config: %s", err.msg);

	e->d.users = calloc(ELEMENTSOF(users), sizeof(*e->d.users));
	e->d.roles = calloc(ELEMENTSOF(roles), sizeof(*e->d.roles));
	e->d.locks = calloc(ELEMENTSOF(locks), sizeof(*e->d.locks));
	for (size_t i = 0; i < ELEMENTSOF(users); i++)
		fx_user_build(&users[i], &e->d.users[e->d.n_users++]);
	for (size_t i = 0; i < ELEMENTSOF(roles); i++)
		fx_role_build(&roles[i], &e->d.roles[e->d.n_roles++]);
	for (size_t i = 0; i < ELEMENTSOF(locks); i++)
		fx_lock_build(&locks[i], &e->d.locks[e->d.n_locks++]);
	e->labels = fx_labels("env=prod");
	e->host = (struct tu_host){
	    .name = "web-1", .id = "uuid-1", .cluster = "example.com", .labels = &e->labels};
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->root);
	assert_int_equal(system(cmd), 0);
	tu_conf_free(e->conf);
	tu_dataset_done(&e->d);
	fx_labels_free(&e->labels);
	free(e);
	return 0;
}

static void path_of(struct env *e, const char *file, char *buf, size_t size)
{
	assert_int_equal(tu_cache_path(e->conf, file, buf, size), 0);
}

static void save_ok(struct env *e, int64_t now, struct tu_cache_counts *counts)
{
	struct tu_err err;
	tu_err_clear(&err);
	int r = tu_cache_save_full(e->conf, e->group, &e->d, &e->host, now, counts, &err);
	if (r < 0)
		fail_msg("tu_cache_save_full: %d %s", r, err.msg);
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void test_round_trip(void **state)
{
	struct env *e = *state;
	struct tu_cache_counts c;
	char pub[256], st[256];
	struct tu_dataset d = {.n_users = 99};
	int64_t created = 0;
	struct tu_err err;

	save_ok(e, NOW, &c);
	assert_int_equal(c.n_users, 3);
	assert_int_equal(c.n_roles, 2);
	assert_int_equal(c.n_locks, 1);
	assert_int_equal(c.n_accounts, 5); /* alice, auditor (env=prod), bob, carol, ubuntu */

	path_of(e, TU_CACHE_PUBLIC_FILE, pub, sizeof(pub));
	path_of(e, TU_CACHE_STATE_FILE, st, sizeof(st));
	assert_int_equal(mode_of(pub), 0644);
	assert_int_equal(mode_of(st), 0600);
	assert_int_equal(mode_of(e->dir), 0755);

	tu_err_clear(&err);
	assert_int_equal(tu_cache_load_state(e->conf, NOW + SEC, 0, &d, &created, &err), 0);
	assert_int_equal(created, NOW);
	assert_int_equal(d.n_users, 3);
	assert_int_equal(d.n_roles, 2);
	assert_int_equal(d.n_locks, 1);
	assert_string_equal(d.users[0].name, "alice@example.com");
	assert_true(d.users[2].is_locked);
	assert_string_equal(tu_labels_get(&d.users[0].traits, "host_user_uid")->v[0], "300001");
	assert_string_equal(d.roles[0].name, "dev");
	assert_int_equal(d.roles[0].create_host_user_mode, TU_HOST_USER_MODE_KEEP);
	assert_string_equal(d.roles[0].allow.host_groups.v[1], "devs");
	assert_string_equal(d.locks[0].target.user, "carol@example.com");
	tu_dataset_done(&d);

	/* Saving again replaces both files (and keeps the modes). */
	save_ok(e, NOW + 10 * SEC, NULL);
	assert_int_equal(mode_of(st), 0600);
	struct tu_cache_info info;
	assert_int_equal(tu_cache_info(e->conf, &info, NULL), 0);
	assert_true(info.has_public);
	assert_true(info.has_state);
	assert_int_equal(info.public_error, 0);
	assert_int_equal(info.state_error, 0);
	assert_int_equal(info.public_created_usec, NOW + 10 * SEC);
	assert_int_equal(info.state_created_usec, NOW + 10 * SEC);
	assert_int_equal(info.n_accounts, c.n_accounts);
	assert_int_equal(info.n_groups, c.n_groups);
	assert_int_equal(info.n_users, 3);
	assert_int_equal(info.n_roles, 2);
	assert_int_equal(info.n_locks, 1);
}

/* A profile context's settings (tu_ctx_new_profile: a person's tsh login) never write the
 * cache, by any of the writers; nothing appears on disk. */
static void test_read_only(void **state)
{
	struct env *e = *state;
	struct tu_cache_info info;
	struct tu_err err;

	e->conf->cache_read_only = true;
	tu_err_clear(&err);
	assert_int_equal(tu_cache_save(e->conf, &e->d, &e->host, NOW, NULL, &err), -EPERM);
	assert_non_null(strstr(err.msg, "not writing the cache in "));
	assert_non_null(strstr(err.msg, "tsh profile (--profile)"));
	assert_int_equal(tu_cache_save_full(e->conf, e->group, &e->d, &e->host, NOW, NULL, NULL),
			 -EPERM);
	assert_int_equal(tu_cache_save_merged(e->conf, &e->d, &e->host, NOW, NOW, NULL, NULL),
			 -EPERM);
	assert_int_equal(tu_cache_save_state_only(e->conf, &e->d, NOW, NULL), -EPERM);
	assert_int_equal(tu_cache_info(e->conf, &info, NULL), 0);
	assert_false(info.has_public);
	assert_false(info.has_state);
	e->conf->cache_read_only = false;
	save_ok(e, NOW, NULL);
}

/* The public file holds what getent shows, with local groups honoured. */
static void test_public_content(void **state)
{
	struct env *e = *state;
	char pub[256];
	struct tu_snapshot *s = NULL;
	struct tu_pw_view pw;
	struct tu_gr_view gr;
	struct tu_err err;

	save_ok(e, NOW, NULL);
	path_of(e, TU_CACHE_PUBLIC_FILE, pub, sizeof(pub));
	tu_err_clear(&err);
	assert_int_equal(
	    tu_snapshot_open(pub, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_CHECK_RECORDS, &s, &err),
	    0);
	assert_int_equal(tu_snapshot_find_login(s, "alice", &pw, NULL), 0);
	assert_int_equal(pw.uid, 300001);
	assert_int_equal(pw.gid, 300001);
	assert_string_equal(pw.gecos, "alice@example.com");
	assert_string_equal(pw.dir, "/home/alice");
	assert_string_equal(pw.shell, "/bin/bash");
	/* cache.negative_ttl travels to NSS in the snapshot (default 1m). */
	assert_int_equal(tu_snapshot_negative_ttl_usec(s), 60 * SEC);
	/* docker is local (999): in alice's initgroups list, not served as a group by us. */
	bool docker = false;
	for (size_t i = 0; i < pw.n_gids; i++)
		docker |= tu_pw_view_gid(&pw, i) == 999;
	assert_true(docker);
	assert_int_equal(tu_snapshot_find_group(s, "docker", &gr, NULL), -ENOENT);
	assert_int_equal(tu_snapshot_find_group(s, "devs", &gr, NULL), 0);
	assert_int_equal(gr.n_members, 5); /* alice, auditor, bob, carol, ubuntu */
	assert_int_equal(tu_snapshot_find_login(s, "auditor", &pw, NULL), 0);
	assert_string_equal(pw.gecos, "bob@example.com");
	assert_int_equal(tu_snapshot_find_login(s, "root", &pw, NULL), -ENOENT);
	tu_snapshot_close(s);
}

/* The watcher's save: a delta when accounts.db exists and few records changed, else in full. */
static void test_save_incremental(void **state)
{
	struct env *e = *state;
	struct tu_cache_write_stats st;
	struct tu_snapshot *s = NULL;
	struct tu_pw_view pw;
	struct tu_cache_info info;
	char pub[256], delta[256];
	struct tu_err err;
	struct stat before, after;

	path_of(e, TU_CACHE_PUBLIC_FILE, pub, sizeof(pub));
	path_of(e, TU_SNAPSHOT_PUBLIC_DELTA_FILE, delta, sizeof(delta));
	/* no accounts.db yet: written in full */
	tu_err_clear(&err);
	assert_int_equal(tu_cache_save_incremental(e->conf, &e->d, &e->host, NOW, NULL, &st, &err), 0);
	assert_true(st.accounts_written);
	assert_false(st.accounts_delta);
	assert_true(st.accounts_bytes > 0 && st.state_bytes > 0);
	assert_int_equal(stat(pub, &before), 0);
	assert_int_equal(access(delta, F_OK), -1);

	/* bob leaves: a delta; accounts.db untouched */
	tu_user_done(&e->d.users[1]);
	e->d.users[1] = e->d.users[2];
	e->d.n_users = 2;
	assert_int_equal(tu_cache_save_incremental(e->conf, &e->d, &e->host, NOW + SEC, NULL, &st, &err), 0);
	assert_true(st.accounts_delta);
	assert_true(st.accounts_changes >= 2); /* bob and auditor, their groups, devs */
	assert_true(st.state_delta); /* bob's user record hidden */
	assert_int_equal(st.state_changes, 1);
	{
		struct tu_dataset got = {0};
		char sdelta[256];
		int64_t created = 0;

		path_of(e, TU_SNAPSHOT_STATE_DELTA_FILE, sdelta, sizeof(sdelta));
		assert_int_equal(mode_of(sdelta), 0600);
		assert_int_equal(tu_cache_load_state(e->conf, NOW + SEC, MAXAGE, &got, &created, &err), 0);
		assert_int_equal(got.n_users, 2);
		assert_int_equal(got.n_roles, 2);
		assert_int_equal(got.n_locks, 1);
		assert_int_equal(created, NOW + SEC);
		tu_dataset_done(&got);
		/* a decision's load through the key index sees the delta too */
		{
			const char *const names[] = {"alice@example.com", "bob@example.com"};

			assert_int_equal(tu_cache_load_state_named(e->conf, NOW + SEC, MAXAGE, names, 2,
								   &got, NULL, &err), 0);
			assert_int_equal(got.n_users, 1); /* bob left */
			assert_string_equal(got.users[0].name, "alice@example.com");
			assert_int_equal(got.n_locks, 1);
			tu_dataset_done(&got);
		}
		/* the lock goes: a state-only delta, seen by the next load */
		tu_lock_done(&e->d.locks[0]);
		e->d.n_locks = 0;
		assert_int_equal(tu_cache_save_incremental(e->conf, &e->d, NULL, NOW + SEC, NULL, &st, &err), 0);
		assert_true(st.state_delta);
		assert_int_equal(tu_cache_load_state(e->conf, NOW + SEC, MAXAGE, &got, NULL, &err), 0);
		assert_int_equal(got.n_users, 2);
		assert_int_equal(got.n_locks, 0);
		tu_dataset_done(&got);
		{
			const char *const names[] = {"carol@example.com"};

			assert_int_equal(tu_cache_load_state_named(e->conf, NOW + SEC, MAXAGE, names, 1,
								   &got, NULL, &err), 0);
			assert_int_equal(got.n_users, 1);
			assert_int_equal(got.n_locks, 0);
			tu_dataset_done(&got);
		}
		/* a corrupt state delta: the state is refused, not read without it */
		assert_int_equal(tu_snapshot_replace_file(sdelta, 0600, "junk", 4, &err), 0);
		assert_int_equal(tu_cache_load_state(e->conf, NOW + SEC, MAXAGE, &got, NULL, &err), -EBADMSG);
		/* the next save writes it again (or in full) */
		assert_int_equal(tu_cache_save_incremental(e->conf, &e->d, NULL, NOW + SEC, NULL, &st, &err), 0);
		assert_int_equal(tu_cache_load_state(e->conf, NOW + SEC, MAXAGE, &got, NULL, &err), 0);
		assert_int_equal(got.n_locks, 0);
		tu_dataset_done(&got);
	}
	assert_int_equal(stat(pub, &after), 0);
	assert_true(before.st_ino == after.st_ino);
	assert_int_equal(mode_of(delta), 0644);
	assert_int_equal(
	    tu_snapshot_open(pub, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY | TU_SNAPSHOT_CHECK_RECORDS, &s, &err), 0);
	assert_true(tu_snapshot_has_delta(s));
	assert_int_equal(tu_snapshot_find_login(s, "bob", &pw, NULL), -ENOENT);
	assert_int_equal(tu_snapshot_find_login(s, "auditor", &pw, NULL), -ENOENT);
	assert_int_equal(tu_snapshot_find_login(s, "alice", &pw, NULL), 0);
	assert_int_equal(tu_snapshot_created_usec(s), NOW + SEC);
	s = tu_snapshot_close(s);
	/* status counts through the delta */
	assert_int_equal(tu_cache_info(e->conf, &info, &err), 0);
	assert_int_equal(info.public_created_usec, NOW + SEC);
	assert_int_equal(info.n_users, 2);
	/* state only (h NULL): accounts untouched */
	assert_int_equal(tu_cache_save_incremental(e->conf, &e->d, NULL, NOW + 2 * SEC, NULL, &st, &err), 0);
	assert_false(st.accounts_written);
	/* a full save (sync) compacts: the delta is stale from then on */
	save_ok(e, NOW + 3 * SEC, NULL);
	assert_int_equal(tu_snapshot_open(pub, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, &err), 0);
	assert_false(tu_snapshot_has_delta(s));
	assert_int_equal(tu_snapshot_find_login(s, "bob", &pw, NULL), -ENOENT);
	s = tu_snapshot_close(s);
	/* cache clear removes the delta too */
	assert_int_equal(tu_cache_clear(e->conf, &err), 0);
	assert_int_equal(access(delta, F_OK), -1);
}

static void test_missing_and_stale(void **state)
{
	struct env *e = *state;
	struct tu_dataset d = {.n_users = 99};
	int64_t created = 7;
	struct tu_err err;

	tu_err_clear(&err);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, &created, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "state.db"));
	assert_int_equal(d.n_users, 99);
	assert_int_equal(created, 7);

	save_ok(e, NOW, NULL);
	/* Exactly max age: still usable; one microsecond more: stale. */
	assert_int_equal(tu_cache_load_state(e->conf, NOW + MAXAGE, 0, &d, NULL, NULL), 0);
	tu_dataset_done(&d);
	d.n_users = 99;
	tu_err_clear(&err);
	assert_int_equal(tu_cache_load_state(e->conf, NOW + MAXAGE + 1, 0, &d, &created, &err),
			 -ESTALE);
	assert_non_null(strstr(err.msg, "offline_max_age"));
	assert_int_equal(d.n_users, 99);
	assert_int_equal(created, 7);
	/* An explicit max age overrides the config. */
	assert_int_equal(tu_cache_load_state(e->conf, NOW + 11 * SEC, 10 * SEC, &d, NULL, NULL),
			 -ESTALE);
	/* From the future: a little clock skew is fine, minutes are not. */
	assert_int_equal(tu_cache_load_state(e->conf, NOW - 60 * SEC, 0, &d, NULL, NULL), 0);
	tu_dataset_done(&d);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_load_state(e->conf, NOW - 3600 * SEC, 0, &d, NULL, &err),
			 -ESTALE);
	assert_non_null(strstr(err.msg, "future"));
}

static void test_trust_rule(void **state)
{
	struct env *e = *state;
	struct tu_dataset d = {0};
	char st[256], link[300];
	struct tu_err err;

	save_ok(e, NOW, NULL);
	path_of(e, TU_CACHE_STATE_FILE, st, sizeof(st));

	assert_int_equal(chmod(st, 0640), 0);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, &err), -EACCES);
	assert_non_null(strstr(err.msg, "mode 0640"));
	assert_int_equal(chmod(st, 0604), 0);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, NULL), -EACCES);
	assert_int_equal(chmod(st, 0600), 0);

	/* A cache.dir others may write to (no sticky bit): anyone could swap state.db (or hard-link
	 * an older root-owned copy): refused for reading and writing.  Sticky too (issue 14 F7):
	 * anyone could still create the lock file first and block every writer. */
	assert_int_equal(chmod(e->dir, 0777), 0);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, &err), -EACCES);
	assert_non_null(strstr(err.msg, "writable by group or others"));
	tu_err_clear(&err);
	assert_int_equal(tu_cache_save_full(e->conf, e->group, &e->d, &e->host, NOW, NULL, &err),
			 -EACCES);
	assert_non_null(strstr(err.msg, "refusing cache.dir"));
	assert_int_equal(chmod(e->dir, 01777), 0);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, &err), -EACCES);
	assert_non_null(strstr(err.msg, "sticky"));
	tu_err_clear(&err);
	assert_int_equal(tu_cache_save_full(e->conf, e->group, &e->d, &e->host, NOW, NULL, &err),
			 -EACCES);
	assert_non_null(strstr(err.msg, "refusing cache.dir"));
	int lfd = -1;
	tu_err_clear(&err);
	assert_int_equal(tu_cache_lock(e->conf, 0, &lfd, NULL, &err), -EACCES);
	assert_non_null(strstr(err.msg, "sticky"));
	assert_int_equal(chmod(e->dir, 0775), 0); /* group-writable: the same */
	assert_int_equal(tu_cache_lock(e->conf, 0, &lfd, NULL, NULL), -EACCES);
	assert_int_equal(chmod(e->dir, 0755), 0);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, NULL), 0);
	tu_dataset_done(&d);

	/* A symlink is refused even when it points at a good file. */
	snprintf(link, sizeof(link), "%s/real.db", e->root);
	assert_int_equal(rename(st, link), 0);
	assert_int_equal(symlink(link, st), 0);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, &err), -EPERM);
	assert_non_null(strstr(err.msg, "symbolic link"));
	assert_int_equal(unlink(st), 0);

	/* A directory in its place. */
	assert_int_equal(mkdir(st, 0700), 0);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, NULL), -EPERM);
	assert_int_equal(rmdir(st), 0);

	if (geteuid() == 0) {
		/* A cache.dir owned by someone else. */
		assert_int_equal(chown(e->dir, 12345, 12345), 0);
		tu_err_clear(&err);
		assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, &err), -EPERM);
		assert_non_null(strstr(err.msg, "owned by uid 12345"));
		assert_int_equal(chown(e->dir, 0, 0), 0);
		/* Owned by someone else. */
		assert_int_equal(rename(link, st), 0);
		assert_int_equal(chown(st, 12345, 12345), 0);
		tu_err_clear(&err);
		assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, &err), -EPERM);
		assert_non_null(strstr(err.msg, "owned by uid 12345"));
	}
}

static void put_bytes(const char *path, const void *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd >= 0);
	if (size > 0)
		assert_int_equal(write(fd, data, size), (ssize_t) size);
	close(fd);
}

static void *get_bytes(const char *path, size_t *ret_size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	void *p = malloc((size_t) st.st_size);
	assert_int_equal(read(fd, p, (size_t) st.st_size), st.st_size);
	close(fd);
	*ret_size = (size_t) st.st_size;
	return p;
}

static void test_corrupt_state(void **state)
{
	struct env *e = *state;
	char st[256];
	size_t size;
	struct tu_err err;

	save_ok(e, NOW, NULL);
	path_of(e, TU_CACHE_STATE_FILE, st, sizeof(st));
	_cleanup_free_ uint8_t *good = get_bytes(st, &size);
	_cleanup_free_ uint8_t *bad = malloc(size);
	assert_true(size > 64);

	/* Every truncation. */
	for (size_t n = 0; n < size; n++) {
		struct tu_dataset d = {.n_users = 99};
		put_bytes(st, good, n);
		tu_err_clear(&err);
		int r = tu_cache_load_state(e->conf, NOW, 0, &d, NULL, &err);
		if (r != -EBADMSG)
			fail_msg("truncated to %zu: %d (%s)", n, r, err.msg);
		assert_true(err.msg[0] != '\0');
		assert_int_equal(d.n_users, 99);
	}
	/* Single-bit flips: every bit of the first 256 bytes (header, tables), then every 7th bit.
	 */
	for (size_t bit = 0; bit < size * 8; bit += bit < 256 * 8 ? 1 : 7) {
		struct tu_dataset d = {.n_users = 99};
		memcpy(bad, good, size);
		bad[bit / 8] ^= (uint8_t) (1u << (bit % 8));
		put_bytes(st, bad, size);
		int r = tu_cache_load_state(e->conf, NOW, 0, &d, NULL, NULL);
		if (r != -EBADMSG && r != -ESTALE)
			fail_msg("bit %zu flipped: %d", bit, r);
		assert_int_equal(d.n_users, 99);
	}
	/* A public snapshot in place of the state file is foreign. */
	char pub[256];
	size_t psize;
	path_of(e, TU_CACHE_PUBLIC_FILE, pub, sizeof(pub));
	_cleanup_free_ uint8_t *pubdata = get_bytes(pub, &psize);
	put_bytes(st, pubdata, psize);
	struct tu_dataset d = {0};
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, NULL), -EBADMSG);

	/* And the status view reports it without failing. */
	struct tu_cache_info info;
	assert_int_equal(tu_cache_info(e->conf, &info, NULL), 0);
	assert_true(info.has_state);
	assert_int_equal(info.state_error, -EBADMSG);
	assert_true(info.has_public);
	assert_int_equal(info.public_error, 0);
}

/* A well-formed container (checksum fine) whose records are not users/roles/locks. */
static void test_bad_records(void **state)
{
	struct env *e = *state;
	char st[256];
	static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff,
				       0xff, 0x0f, 0x01}; /* length past the end */
	struct tu_blob blobs[] = {
	    {.type = 99, .data = "future", .size = 6}, /* unknown type: skipped */
	    {.type = 1, .data = junk, .size = sizeof(junk)},
	};
	struct tu_dataset d = {.n_users = 99};
	struct tu_err err;

	save_ok(e, NOW, NULL);
	path_of(e, TU_CACHE_STATE_FILE, st, sizeof(st));
	tu_err_clear(&err);
	assert_int_equal(
	    tu_snapshot_write_blobs(st, 0600, TU_SNAPSHOT_KIND_STATE, blobs, 2, 1, NOW, &err), 0);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "record 1"));
	assert_int_equal(d.n_users, 99);

	/* Only unknown records: an empty but valid state. */
	assert_int_equal(
	    tu_snapshot_write_blobs(st, 0600, TU_SNAPSHOT_KIND_STATE, blobs, 1, 1, NOW, NULL), 0);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, NULL), 0);
	assert_int_equal(d.n_users, 0);
	assert_int_equal(d.n_roles, 0);
	tu_dataset_done(&d);
}

/* The auth preference rides in the state file; a file without it (older writer) reads as unknown. */
static void test_auth_pref(void **state)
{
	struct env *e = *state;
	char st[256];
	struct tu_dataset d = {0};
	struct tu_err err;
	uint8_t *pref = NULL;
	size_t pref_len = 0;
	const struct tu_auth_pref strict = {.known = true, .require_mfa_type = 1,
					    .locking_mode = (char *) "strict",
					    .device_trust_mode = (char *) "required"};

	save_ok(e, NOW, NULL);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, NULL), 0);
	assert_false(d.auth_pref.known);
	tu_dataset_done(&d);

	e->d.auth_pref = strict;
	save_ok(e, NOW, NULL);
	e->d.auth_pref = (struct tu_auth_pref){0}; /* borrowed */
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, NULL), 0);
	assert_true(d.auth_pref.known);
	assert_int_equal(d.auth_pref.require_mfa_type, 1);
	assert_string_equal(d.auth_pref.locking_mode, "strict");
	assert_string_equal(d.auth_pref.device_trust_mode, "required");
	assert_int_equal(d.n_users, 3);
	tu_dataset_done(&d);

	/* Two of them: which one holds?  Neither: the file is refused. */
	assert_int_equal(tu_model_encode_auth_pref(&strict, &pref, &pref_len), 0);
	struct tu_blob blobs[] = {
	    {.type = 4, .data = pref, .size = pref_len},
	    {.type = 4, .data = pref, .size = pref_len},
	};
	path_of(e, TU_CACHE_STATE_FILE, st, sizeof(st));
	assert_int_equal(tu_snapshot_write_blobs(st, 0600, TU_SNAPSHOT_KIND_STATE, blobs, 2, 1, NOW, NULL), 0);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "record 1: a second auth preference"));
	assert_false(d.auth_pref.known);
	free(pref);
}

/* Teleport's user CA (blob type 5): stored, kept when a sync could not fetch it, counted. */
static void test_user_ca(void **state)
{
	struct env *e = *state;
	char st[256];
	struct tu_dataset d = {0};
	struct tu_user_ca ca = {0};
	struct tu_cache_counts c;
	struct tu_cache_info info;
	struct tu_err err;
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	static char k1[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlbGVwb3J0LXVzZXItY2EtdGVzdC1rZXk=";
	static char k2[] = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAAQC7";
	char *keys[] = {k1, k2, NULL};

	/* Stored and read back (also by tu_cache_load_user_ca and tu_cache_info). */
	e->d.user_ca = (struct tu_user_ca){.known = true, .cluster = (char *) "example.com", .keys = {keys, 2}};
	save_ok(e, NOW, &c);
	assert_true(c.user_ca_known && !c.user_ca_kept);
	assert_int_equal(c.n_user_ca_keys, 2);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, NULL), 0);
	assert_true(d.user_ca.known);
	assert_int_equal(d.user_ca.keys.n, 2);
	assert_string_equal(d.user_ca.keys.v[0], k1);
	assert_string_equal(d.user_ca.cluster, "example.com");
	tu_dataset_done(&d);
	assert_int_equal(tu_cache_load_user_ca(e->conf, NOW, &ca, NULL), 0);
	assert_true(ca.known);
	assert_int_equal(ca.keys.n, 2);
	tu_user_ca_done(&ca);
	assert_int_equal(tu_cache_info(e->conf, &info, NULL), 0);
	assert_true(info.has_user_ca);
	assert_int_equal(info.n_user_ca_keys, 2);

	/* A sync that could not fetch it keeps the previous keys. */
	e->d.user_ca = (struct tu_user_ca){0};
	save_ok(e, NOW + SEC, &c);
	assert_true(c.user_ca_known && c.user_ca_kept);
	assert_int_equal(c.n_user_ca_keys, 2);
	assert_int_equal(tu_cache_load_state(e->conf, NOW + SEC, 0, &d, NULL, NULL), 0);
	assert_true(d.user_ca.known);
	assert_int_equal(d.user_ca.keys.n, 2);
	tu_dataset_done(&d);

	/* An answer without keys replaces them: nothing matches any more. */
	e->d.user_ca = (struct tu_user_ca){.known = true};
	save_ok(e, NOW + 2 * SEC, &c);
	e->d.user_ca = (struct tu_user_ca){0};
	assert_true(c.user_ca_known && !c.user_ca_kept);
	assert_int_equal(c.n_user_ca_keys, 0);
	assert_int_equal(tu_cache_load_state(e->conf, NOW + 2 * SEC, 0, &d, NULL, NULL), 0);
	assert_true(d.user_ca.known);
	assert_int_equal(d.user_ca.keys.n, 0);
	tu_dataset_done(&d);

	/* Too old for a decision: refused like the rest of the state. */
	assert_int_equal(tu_cache_load_user_ca(e->conf, NOW + 400 * 24 * 3600 * SEC, &ca, NULL), -ESTALE);

	/* Two CAs: refused. */
	struct tu_user_ca one = {.known = true, .keys = {keys, 1}};
	assert_int_equal(tu_model_encode_user_ca(&one, &blob, &blob_len), 0);
	struct tu_blob blobs[] = {
	    {.type = 5, .data = blob, .size = blob_len},
	    {.type = 5, .data = blob, .size = blob_len},
	};
	path_of(e, TU_CACHE_STATE_FILE, st, sizeof(st));
	assert_int_equal(tu_snapshot_write_blobs(st, 0600, TU_SNAPSHOT_KIND_STATE, blobs, 2, 1, NOW, NULL), 0);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "record 1: a second user CA"));
	assert_int_equal(tu_cache_load_user_ca(e->conf, NOW, &ca, NULL), -EBADMSG);
	free(blob);
}

static void test_clear(void **state)
{
	struct env *e = *state;
	char pub[256], st[256];
	struct tu_cache_info info;
	struct tu_err err;

	/* Clearing nothing is fine. */
	assert_int_equal(tu_cache_clear(e->conf, NULL), 0);
	assert_int_equal(tu_cache_info(e->conf, &info, NULL), 0);
	assert_false(info.has_public);
	assert_false(info.has_state);

	save_ok(e, NOW, NULL);
	path_of(e, TU_CACHE_PUBLIC_FILE, pub, sizeof(pub));
	path_of(e, TU_CACHE_STATE_FILE, st, sizeof(st));
	char lock[256];
	path_of(e, TU_SNAPSHOT_ONLINE_LOCK_FILE, lock, sizeof(lock));
	write_file(lock, "", 0600);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_clear(e->conf, &err), 0);
	assert_int_equal(access(pub, F_OK), -1);
	assert_int_equal(access(st, F_OK), -1);
	assert_int_equal(access(lock, F_OK), -1);
	assert_int_equal(tu_cache_clear(e->conf, NULL), 0);
}

static int64_t mono_msec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool same_inode(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static void test_lock(void **state)
{
	struct env *e = *state;
	char lock[256];
	int fd1 = -1, fd2 = -1;
	bool waited = true;
	struct tu_err err;
	int64_t t0;

	/* Creates cache.dir and the lock file (0600), and the first taker did not wait. */
	tu_err_clear(&err);
	assert_int_equal(tu_cache_lock(e->conf, 0, &fd1, &waited, &err), 0);
	assert_false(waited);
	path_of(e, TU_SNAPSHOT_ONLINE_LOCK_FILE, lock, sizeof(lock));
	assert_int_equal(mode_of(lock), 0600);
	assert_int_equal(mode_of(e->dir), 0755);

	/* Busy: budget 0 answers at once, a budget is waited out; both name the file. */
	tu_err_clear(&err);
	assert_int_equal(tu_cache_lock(e->conf, 0, &fd2, NULL, &err), -EWOULDBLOCK);
	assert_non_null(strstr(err.msg, lock));
	assert_int_equal(fd2, -1);
	t0 = mono_msec();
	tu_err_clear(&err);
	assert_int_equal(tu_cache_lock(e->conf, 150000, &fd2, NULL, &err), -ETIMEDOUT);
	assert_true(mono_msec() - t0 >= 150);
	assert_non_null(strstr(err.msg, "still held"));
	assert_int_equal(fd2, -1);

	/* Released: the next one gets it; a waiter is told it waited. */
	close(fd1);
	int held[2];
	char byte;
	assert_int_equal(pipe(held), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The child takes it, says so, and holds it for 300 ms. */
		int fd = -1;
		close(held[0]);
		if (tu_cache_lock(e->conf, 5000000, &fd, NULL, NULL) < 0 || write(held[1], "x", 1) != 1)
			_exit(1);
		usleep(300000);
		_exit(0);
	}
	close(held[1]);
	assert_int_equal(read(held[0], &byte, 1), 1);
	close(held[0]);
	assert_int_equal(tu_cache_lock(e->conf, 5000000, &fd2, &waited, NULL), 0);
	assert_true(waited); /* the child held it for 300 ms after saying so */
	close(fd2);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* `cache clear` removes the file while someone waits: the waiter locks the new file, so a
	 * third writer cannot hold the lock at the same time. */
	assert_int_equal(tu_cache_lock(e->conf, 0, &fd1, NULL, NULL), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = -1;
		close(fd1);
		if (tu_cache_lock(e->conf, 5000000, &fd, NULL, NULL) < 0)
			_exit(1);
		/* Holding it: nobody else may. */
		_exit(same_inode(fd, lock) && tu_cache_lock(e->conf, 0, &fd1, NULL, NULL) == -EWOULDBLOCK ? 0 : 2);
	}
	usleep(100000);
	assert_int_equal(tu_cache_clear(e->conf, NULL), 0);
	assert_int_equal(access(lock, F_OK), -1);
	close(fd1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* cache.dir that cannot be created: a clear error naming it. */
	char yaml[512];
	struct tu_conf *bad = NULL;
	snprintf(yaml, sizeof(yaml),
		 "auth:\n  addresses: [\"127.0.0.1:3025\"]\n  credentials:\n"
		 "    key_pair: { cert: /n/c, key: /n/k, ca: /n/ca }\ncache:\n  dir: %s/group/cache\n",
		 e->root);
	assert_int_equal(tu_conf_parse(yaml, strlen(yaml), "t.yaml", &bad, NULL), 0);
	tu_err_clear(&err);
	assert_true(tu_cache_lock(bad, 0, &fd1, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "cache.dir"));
	tu_conf_free(bad);
}

/* Issue 14 F7: a lock file that is not root's regular file is refused, never trusted. */
static void test_lock_file_trust(void **state)
{
	struct env *e = *state;
	char lock[256], other[256];
	struct tu_err err;
	int fd = -1;

	/* cache.dir exists (a first lock creates it), then the lock file is replaced. */
	assert_int_equal(tu_cache_lock(e->conf, 0, &fd, NULL, NULL), 0);
	close(fd);
	fd = -1;
	path_of(e, TU_SNAPSHOT_ONLINE_LOCK_FILE, lock, sizeof(lock));

	/* A symbolic link (to a file we may lock): refused, not followed. */
	assert_int_equal(unlink(lock), 0);
	snprintf(other, sizeof(other), "%s/other-lock", e->root);
	write_file(other, "", 0600);
	assert_int_equal(symlink(other, lock), 0);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_lock(e->conf, 0, &fd, NULL, &err), -EPERM);
	assert_non_null(strstr(err.msg, "symbolic link"));
	assert_int_equal(fd, -1);

	/* Not a regular file. */
	assert_int_equal(unlink(lock), 0);
	assert_int_equal(mkfifo(lock, 0600), 0);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_lock(e->conf, 0, &fd, NULL, &err), -EPERM);
	assert_non_null(strstr(err.msg, "not a regular file"));

	/* Writable by others. */
	assert_int_equal(unlink(lock), 0);
	write_file(lock, "", 0666);
	assert_int_equal(chmod(lock, 0666), 0);
	tu_err_clear(&err);
	assert_int_equal(tu_cache_lock(e->conf, 0, &fd, NULL, &err), -EACCES);
	assert_non_null(strstr(err.msg, "writable by group or others"));

	/* Created by another user (root only: chown). */
	if (geteuid() == 0) {
		assert_int_equal(chmod(lock, 0600), 0);
		assert_int_equal(chown(lock, 65534, 65534), 0);
		tu_err_clear(&err);
		assert_int_equal(tu_cache_lock(e->conf, 0, &fd, NULL, &err), -EPERM);
		assert_non_null(strstr(err.msg, "owned by uid 65534"));
		tu_err_clear(&err);
		assert_int_equal(tu_cache_save_full(e->conf, e->group, &e->d, &e->host, NOW, NULL, &err), 0);
	} else {
		print_message("note: not root, the lock file of another user was not tried\n");
	}
	/* Removed: a fresh one of ours works again. */
	assert_int_equal(unlink(lock), 0);
	assert_int_equal(tu_cache_lock(e->conf, 0, &fd, NULL, NULL), 0);
	close(fd);
}

/* Issue 14 F5: a merged state keeps its oldest time, so the offline age limit still ends it. */
static void test_save_merged_keeps_oldest(void **state)
{
	struct env *e = *state;
	struct tu_dataset d;
	struct tu_cache_info info;
	int64_t created = 0;

	assert_int_equal(tu_cache_save_merged(e->conf, &e->d, &e->host, NOW, NOW - 3600 * SEC, NULL, NULL),
			 0);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, &created, NULL), 0);
	tu_dataset_done(&d);
	assert_true(created == NOW - 3600 * SEC);
	assert_int_equal(tu_cache_info(e->conf, &info, NULL), 0);
	assert_true(info.public_created_usec == NOW - 3600 * SEC);
	/* Past offline_max_age counted from the oldest part: stale, whatever was merged since. */
	assert_int_equal(tu_cache_save_merged(e->conf, &e->d, &e->host, NOW, NOW - MAXAGE - SEC, NULL, NULL),
			 0);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, NULL, NULL), -ESTALE);
	/* A time in the future is clamped to now. */
	assert_int_equal(tu_cache_save_merged(e->conf, &e->d, &e->host, NOW, NOW + 3600 * SEC, NULL, NULL),
			 0);
	assert_int_equal(tu_cache_load_state(e->conf, NOW, 0, &d, &created, NULL), 0);
	tu_dataset_done(&d);
	assert_true(created == NOW);
}

static void test_unwritable_dir(void **state)
{
	struct env *e = *state;
	struct tu_err err;
	char blocker[256];

	/* cache.dir's parent is a regular file: mkdir fails with a message naming the path. */
	snprintf(blocker, sizeof(blocker), "%s/cache", e->root);
	write_file(blocker, "x", 0644);
	tu_err_clear(&err);
	int r = tu_cache_save_full(e->conf, e->group, &e->d, &e->host, NOW, NULL, &err);
	assert_true(r < 0);
	assert_non_null(strstr(err.msg, "cache"));
}

/* ---- online.h: the table NSS dlopens --------------------------------------------------- */

struct logged {
	int n;
	char last[700];
};

static void log_collect(void *userdata, int priority, const char *msg)
{
	struct logged *l = userdata;
	(void) priority;
	l->n++;
	snprintf(l->last, sizeof(l->last), "%s", msg);
}

/* A config file for tu_ctx_new (root-owned, 0644), Auth on a port nobody listens on. */
static void write_online_config(struct env *e, char *path, size_t size)
{
	char yaml[1024];
	snprintf(path, size, "%s/online.yaml", e->root);
	snprintf(yaml, sizeof(yaml),
		 "auth:\n"
		 "  addresses: [\"127.0.0.1:1\"]\n"
		 "  credentials:\n"
		 "    key_pair: { cert: %s/none.crt, key: %s/none.key, ca: %s/none.ca }\n"
		 "  timeouts: { connect: 1s, request: 1s }\n"
		 "host:\n"
		 "  id: 5a9f3c0e-0000-4000-8000-000000000001\n"
		 "  labels: { env: prod }\n"
		 "cache:\n"
		 "  dir: %s\n"
		 "  negative_ttl: 1m\n",
		 e->root, e->root, e->root, e->dir);
	write_file(path, yaml, 0644);
}

static void test_online_table(void **state)
{
	struct env *e = *state;
	const struct tu_online_v1 *t = tu_online_v1_get();
	struct logged lg = {0};
	char cfg[256];

	assert_non_null(t);
	assert_int_equal(t->version, TU_ONLINE_VERSION);
	assert_int_equal(t->size, sizeof(struct tu_online_v1));
	assert_non_null(t->refresh_for_name);
	assert_non_null(t->refresh_for_id);

	/* A request from an older/smaller caller struct is refused, not misread. */
	struct tu_online_req small = {.size = 8};
	assert_int_equal(t->refresh_for_name(&small, "x"), -EINVAL);
	assert_int_equal(t->refresh_for_name(NULL, "x"), -EINVAL);

	if (geteuid() != 0) {
		struct tu_online_req req = {.size = sizeof(req), .now_usec = NOW};
		assert_int_equal(t->refresh_for_id(&req, 1), -EPERM);
		skip();
	}
	write_online_config(e, cfg, sizeof(cfg));
	struct tu_online_req req = {
	    .size = sizeof(req),
	    .config_path = cfg,
	    .log_fn = log_collect,
	    .log_userdata = &lg,
	    .now_usec = NOW,
	};
	assert_int_equal(t->refresh_for_name(&req, ""), -EINVAL);

	/* A snapshot younger than negative_ttl answers the miss: no network, -ENOENT. */
	save_ok(e, NOW - 30 * SEC, NULL);
	assert_int_equal(t->refresh_for_name(&req, "ghost"), -ENOENT);
	assert_int_equal(t->refresh_for_id(&req, 123456), -ENOENT);
	assert_int_equal(lg.n, 0); /* debug is off */

	/* Older than that: it tries Auth; the missing credential is a failure (never -ENOENT),
	 * logged. */
	req.now_usec = NOW + 120 * SEC;
	int r = t->refresh_for_name(&req, "gh\nost");
	assert_true(r < 0 && r != -ENOENT);
	assert_int_equal(lg.n, 1);
	assert_non_null(strstr(lg.last, "online lookup of 'gh?ost'"));
	/* That attempt counts: within negative_ttl of it nothing is tried again (a dead Auth is not
	 * asked by every lookup); after it, it is. */
	req.now_usec = NOW + 150 * SEC;
	assert_int_equal(t->refresh_for_id(&req, 42), -ENOENT);
	assert_int_equal(lg.n, 1);
	req.now_usec = NOW + 181 * SEC;
	r = t->refresh_for_id(&req, 42);
	assert_true(r < 0 && r != -ENOENT);
	assert_int_equal(lg.n, 2);
	assert_non_null(strstr(lg.last, "online lookup of id 42"));
	/* The cache is untouched by the failed refresh. */
	struct tu_cache_info info;
	assert_int_equal(tu_cache_info(e->conf, &info, NULL), 0);
	assert_int_equal(info.public_created_usec, NOW - 30 * SEC);

	/* A config that cannot be loaded is a failure too. */
	req.config_path = "/nonexistent/teleport-unix.yaml";
	r = t->refresh_for_id(&req, 7);
	assert_true(r < 0 && r != -ENOENT);
	assert_non_null(strstr(lg.last, "config"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_public_content, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_and_stale, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trust_rule, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_auth_pref, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_user_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clear, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unwritable_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock_file_trust, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_save_merged_keeps_oldest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_online_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_save_incremental, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
