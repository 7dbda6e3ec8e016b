/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd-sync.c - `teleport-unix sync` (SPEC §7): fetch users, roles and locks
 * from Auth, map them to accounts, write both cache snapshots, print the
 * counts.  Progress goes to stderr only when stderr is a terminal (and not
 * with --json).  Exit 0, or 2 on any error (the cache is then untouched,
 * except that when Auth cannot be asked, users who expired since the last
 * sync are dropped from the cache: drop_expired_offline).
 * The refresh lock (tu_cache_lock) is held from before the fetch until both
 * files are written: a concurrent online refresh or second sync waits or
 * gives up, and never replaces newer data with older.
 * A cache.dir other than the compiled-in default is linked from there for
 * the NSS module (tu_cache_link_default), except with --insecure-perms
 * (test mode), which never touches system directories.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "cache.h"
#include "cleanup.h"
#include "cli.h"
#include "conf.h"
#include "ctx.h"
#include "err.h"
#include "log.h"
#include "model.h"
#include "watch.h"

static void progress(void *userdata, const char *what, size_t count)
{
	(void) userdata;
	fprintf(stderr, "\rfetching %s: %zu ", what, count);
	fflush(stderr);
}

/*
 * Auth cannot be asked: the accounts of users who expired since the cache
 * was written must not be served for as long as the outage lasts (issue 14
 * F2; PAM refuses them anyway).  When someone in the private state expired
 * after both its sync and the last write of the public file, recompute the
 * cache from that state at now, keeping the state's time (nothing looks
 * fresher than it is: offline_max_age still counts from the last full
 * sync).  The caller holds the lock.  Returns how many expired, or -errno.
 */
static int drop_expired_offline(const struct tu_conf *conf, const struct tu_host *host, int64_t now,
				struct tu_err *e)
{
	char pub[4096];
	struct tu_dataset d = {0};
	struct stat st;
	int64_t created = 0, since;
	int n = 0, r;

	r = tu_cache_load_state(conf, now, UINT64_MAX, &d, &created, e);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	since = created;
	if (tu_cache_path(conf, TU_CACHE_PUBLIC_FILE, pub, sizeof(pub)) == 0 && stat(pub, &st) == 0) {
		int64_t written = (int64_t) st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
		if (written > since)
			since = written;
	}
	for (size_t i = 0; i < d.n_users; i++) {
		const struct tu_user *u = &d.users[i];
		n += u->has_expires && u->expires_usec > since && u->expires_usec <= now;
	}
	if (n > 0)
		r = tu_cache_save_merged(conf, &d, host, now, created, NULL, e);
	tu_dataset_done(&d);
	return r < 0 ? r : n;
}

int cmd_sync(struct cli *c, int argc, char **argv)
{
	struct tu_ctx *ctx = NULL;
	struct tu_auth *auth = NULL;
	struct tu_dataset d = {0};
	struct tu_host host;
	struct tu_cache_counts counts;
	struct tu_err e;
	_cleanup_close_ int lock_fd = -1;
	bool show_progress = !c->json && isatty(STDERR_FILENO) == 1;
	int r, ret = CLI_EXIT_ERROR;

	bool force = false;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("Usage: teleport-unix [-c CONFIG] [--json] sync [--force]\n"
		       "Fetches users, roles and locks from Auth and rewrites the cache.\n"
		       "While `teleport-unix watch` keeps the cache current it does nothing\n"
		       "(no list calls), unless --force.\n");
		return CLI_EXIT_OK;
	}
	if (argc == 2 && strcmp(argv[1], "--force") == 0)
		force = true;
	else if (argc > 1)
		return cli_errorf(c, "sync: unexpected argument '%s' (usage: teleport-unix sync [--force])",
				  argv[1]);
	r = cli_open_ctx(c, &ctx);
	if (r != 0)
		return r;

	/* Quiet clusters cost nothing (issue 13): the timer's sync lists nothing while the watch
	 * stream keeps the cache current. */
	if (!force && tu_watch_is_current(tu_ctx_conf(ctx), tu_now_usec())) {
		if (c->json) {
			struct json j;
			json_begin(&j, stdout);
			json_key_bool(&j, "skipped", true);
			json_key_str(&j, "reason", "teleport-unix watch keeps the cache current");
			json_key_str(&j, "cache_dir", tu_ctx_conf(ctx)->cache_dir);
			json_end(&j);
		} else
			printf("skipped: teleport-unix watch keeps the cache current (sync --force lists anyway)\n");
		tu_ctx_free(ctx);
		return CLI_EXIT_OK;
	}

	tu_err_clear(&e);
	r = tu_cache_lock(tu_ctx_conf(ctx), tu_cache_lock_budget(tu_ctx_conf(ctx)), &lock_fd, NULL,
			  &e);
	if (r < 0) {
		ret = cli_error(c, "sync: waiting for another refresh of the cache", &e);
		goto out;
	}

	int64_t now = tu_now_usec();
	tu_err_clear(&e);
	r = tu_ctx_host(ctx, now, &host, &e);
	if (r < 0) {
		ret = cli_error(c, "sync: host identity", &e);
		goto out;
	}
	tu_err_clear(&e);
	r = tu_ctx_auth(ctx, now, &auth, &e);
	if (r < 0) {
		ret = cli_error(c, "sync: auth", &e);
		goto expired;
	}
	if (show_progress)
		tu_auth_set_progress(auth, progress, NULL);
	tu_err_clear(&e);
	r = tu_auth_fetch_all(auth, &d, &e);
	if (show_progress) {
		fputs("\r\033[K", stderr);
		tu_auth_set_progress(auth, NULL, NULL);
	}
	if (r < 0) {
		ret = cli_error(c, "sync: fetching from Auth", &e);
		goto expired;
	}
	tu_auth_note_auth_pref(&d.auth_pref);

	/* The mapping's time is the time of the data, not of the start of the fetch. */
	now = tu_now_usec();
	tu_err_clear(&e);
	r = tu_cache_save(tu_ctx_conf(ctx), &d, &host, now, &counts, &e);
	if (r < 0) {
		ret = cli_error(c, "sync: writing the cache", &e);
		goto out;
	}
	/* The host identity read from the certificate, for offline decisions without an X.509
	 * parse (issue 10, watch.h tu_host_record_write); the credential is loaded and checked. */
	const struct tu_creds *creds = NULL;
	tu_err_clear(&e);
	if (tu_ctx_creds(ctx, now, &creds, &e) < 0 || tu_host_record_write(tu_ctx_conf(ctx), creds, &e) < 0) {
		char why[600];
		tu_log(LOG_WARNING, "sync: the host identity is not recorded (%s): offline decisions will read the certificate",
		       tu_err_format(&e, why, sizeof(why)));
	}
	/* Let NSS find a non-default cache.dir; not in test mode, which must not touch system dirs.
	 */
	if (!c->insecure_perms) {
		tu_err_clear(&e);
		if (tu_cache_link_default(tu_ctx_conf(ctx), &e) < 0) {
			char why[600];
			tu_log(LOG_WARNING, "sync: the NSS module will not find this cache: %s",
			       tu_err_format(&e, why, sizeof(why)));
		}
	}

	if (c->json) {
		struct json j;
		json_begin(&j, stdout);
		json_key_int(&j, "users", (long long) counts.n_users);
		json_key_int(&j, "roles", (long long) counts.n_roles);
		json_key_int(&j, "locks", (long long) counts.n_locks);
		json_key_int(&j, "accounts", (long long) counts.n_accounts);
		json_key_int(&j, "groups", (long long) counts.n_groups);
		json_key_int(&j, "skipped", (long long) counts.n_skipped);
		json_key_int(&j, "users_left_out", (long long) d.n_users_left_out);
		json_key_int(&j, "roles_left_out", (long long) d.n_roles_left_out);
		json_key_bool(&j, "user_ca_known", counts.user_ca_known);
		json_key_bool(&j, "user_ca_kept", counts.user_ca_kept);
		json_key_int(&j, "user_ca_keys", (long long) counts.n_user_ca_keys);
		json_key_str(&j, "cache_dir", tu_ctx_conf(ctx)->cache_dir);
		json_end(&j);
	} else {
		printf("users %zu, roles %zu, locks %zu, accounts %zu, groups %zu\n",
		       counts.n_users, counts.n_roles, counts.n_locks, counts.n_accounts,
		       counts.n_groups);
		if (d.n_users_left_out || d.n_roles_left_out)
			printf("left out: %zu users, %zu roles (their records cannot be used; see the log)\n",
			       d.n_users_left_out, d.n_roles_left_out);
		/* Teleport's user CA decides whether an SSH certificate proves anything (docs/rbac.md). */
		if (!counts.user_ca_known)
			printf("user CA: unknown (Auth did not answer it): SSH certificates prove no identity\n");
		else
			printf("user CA: %zu key%s%s\n", counts.n_user_ca_keys, counts.n_user_ca_keys == 1 ? "" : "s",
			       counts.user_ca_kept ? " (kept from the previous sync: fetching it failed)" : "");
	}
	ret = CLI_EXIT_OK;
	goto out;
expired:
	tu_err_clear(&e);
	r = drop_expired_offline(tu_ctx_conf(ctx), &host, tu_now_usec(), &e);
	if (r > 0)
		tu_log(LOG_NOTICE,
		       "sync: the cache no longer serves the account(s) of %d Teleport user(s) who expired since the last sync",
		       r);
	else if (r < 0) {
		char why[600];
		tu_log(LOG_WARNING, "sync: dropping expired users from the cache: %s",
		       tu_err_format(&e, why, sizeof(why)));
	}
out:
	tu_dataset_done(&d);
	tu_ctx_free(ctx);
	return ret;
}
