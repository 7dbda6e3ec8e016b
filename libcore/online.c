/* SPDX-License-Identifier: Apache-2.0 */
/*
 * online.c - the function table libnss_teleport.so.2 reaches through dlopen
 * on a lookup miss (contract in online.h).  Layer: libcore.
 *
 * A miss by name first takes the cheap road: with a usable private state
 * snapshot, fetch the Teleport user of that name, the roles and the locks
 * (three RPCs), put them into the state and recompute both snapshots.  That
 * answers the common case (login = Teleport user name) within the
 * configured deadlines even in a cluster of 100k users.  A login owned some
 * other way appears with the next full sync.  A miss by id, or a missing or
 * stale state, needs the full sync (a uid names nobody in particular).
 * Three things keep this rare and cheap for the host:
 *  - at most one attempt per cache.negative_ttl: the public snapshot's
 *    creation time and the lock file's mtime (stamped at every attempt,
 *    failed ones too, so a dead Auth is not asked again by every lookup);
 *  - one refresh at a time per cache.dir (tu_cache_lock, shared with `sync`
 *    and `cache clear`); the others wait and then look again;
 *  - connect + request bounds the whole refresh, waiting for the lock and
 *    every RPC together (tu_auth_set_budget): a full fetch that needs more
 *    is left to `sync`;
 *  - the log sink is never touched: this library may be shared with
 *    pam_teleport.so in the same process, so messages go to the caller's
 *    function in req->log_fn only.
 */
#include "online.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cache.h"
#include "cleanup.h"
#include "conf.h"
#include "ctx.h"
#include "err.h"
#include "log.h"
#include "snapshot.h"
#include "transport.h"

/* Its mtime: the last attempt (NSS reads it too). */
#define LOCK_FILE TU_SNAPSHOT_ONLINE_LOCK_FILE

static void say(const struct tu_online_req *req, int prio, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(const struct tu_online_req *req, int prio, const char *fmt, ...)
{
	char msg[700];
	va_list ap;

	if (!req || !req->log_fn || (prio == LOG_DEBUG && !req->debug))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	req->log_fn(req->log_userdata, prio, msg);
}

/* Creation time of the public snapshot, or INT64_MIN when there is none usable. */
static int64_t public_created(const struct tu_conf *conf)
{
	char path[PATH_MAX];
	struct tu_snapshot *s = NULL;
	int64_t t = INT64_MIN;

	if (tu_cache_path(conf, TU_CACHE_PUBLIC_FILE, path, sizeof(path)) < 0)
		return t;
	if (tu_snapshot_open(path, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, NULL) >= 0) {
		t = tu_snapshot_created_usec(s);
		tu_snapshot_close(s);
	}
	return t;
}

/* Time of the last online attempt (the lock file's mtime), or INT64_MIN.  Only a lock file of
 * root's counts: anyone else's could be touched to stop refreshes (tu_cache_lock refuses it). */
static int64_t last_attempt(const struct tu_conf *conf)
{
	char path[PATH_MAX];
	struct stat st;

	if (tu_cache_path(conf, LOCK_FILE, path, sizeof(path)) < 0 || lstat(path, &st) < 0 ||
	    !S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & 0022))
		return INT64_MIN;
	return (int64_t) st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
}

/* Whether the snapshot, or the last attempt to refresh it, is younger than negative_ttl. */
static bool recent(const struct tu_conf *conf, int64_t now_usec)
{
	int64_t t = public_created(conf), a = last_attempt(conf);

	if (a > t)
		t = a;
	return t != INT64_MIN && t <= now_usec &&
	       (uint64_t) (now_usec - t) < conf->negative_ttl_usec;
}

/* Stamps the lock file's mtime with now: the time of this attempt. */
static void mark_attempt(int lock_fd, int64_t now_usec)
{
	struct timespec ts[2];

	if (now_usec < 0)
		return;
	ts[0].tv_sec = ts[1].tv_sec = now_usec / 1000000;
	ts[0].tv_nsec = ts[1].tv_nsec = (now_usec % 1000000) * 1000;
	(void) futimens(lock_fd, ts);
}

/* Replaces (or adds) the user named like u in d; takes u's contents. */
static int put_user(struct tu_dataset *d, struct tu_user *u)
{
	for (size_t i = 0; i < d->n_users; i++) {
		if (d->users[i].name && strcmp(d->users[i].name, u->name) == 0) {
			tu_user_done(&d->users[i]);
			d->users[i] = *u;
			*u = (struct tu_user){0};
			return 0;
		}
	}
	struct tu_user *nu = reallocarray(d->users, d->n_users + 1, sizeof(*nu));
	if (!nu)
		return -ENOMEM;
	d->users = nu;
	d->users[d->n_users++] = *u;
	*u = (struct tu_user){0};
	return 0;
}

/*
 * The cheap refresh for a name: user `name`, all roles and locks and the
 * auth preference, merged into the state snapshot.  -ENODATA when there is
 * no usable state (the caller does a full sync), -ENOENT when Auth has no
 * such user.
 */
static int refresh_name(const struct tu_conf *conf, struct tu_auth *auth, const char *name,
			const struct tu_host *host, int64_t now, struct tu_err *e)
{
	struct tu_dataset d = {0};
	struct tu_user u = {0};
	struct tu_role *roles = NULL;
	struct tu_lock *locks = NULL;
	struct tu_auth_pref pref = {0};
	size_t n_roles = 0, n_locks = 0;
	int64_t created = 0;
	int r;

	if (tu_cache_load_state(conf, now, 0, &d, &created, NULL) < 0)
		return -ENODATA;
	r = tu_auth_get_user(auth, name, &u, e);
	if (r >= 0)
		r = tu_auth_list_roles(auth, &roles, &n_roles, e);
	if (r >= 0)
		r = tu_auth_get_locks(auth, &locks, &n_locks, e);
	if (r >= 0)
		r = tu_auth_get_auth_pref(auth, &pref, e);
	if (r >= 0)
		tu_auth_note_auth_pref(&pref);
	if (r >= 0 && u.unusable) {
		/* Never stored: as if Auth had no such user (the next sync leaves it out too). */
		size_t one = 1;
		(void) tu_users_drop_unusable(&u, &one);
		r = tu_err_set(e, -ENOENT, "the Teleport user's record cannot be used here");
	}
	if (r >= 0)
		(void) tu_roles_drop_unusable(roles, &n_roles); /* they count as missing */
	if (r >= 0) {
		r = put_user(&d, &u);
		if (r < 0)
			tu_err_set(e, r, "out of memory");
	}
	if (r >= 0) {
		tu_roles_free(d.roles, d.n_roles);
		tu_locks_free(d.locks, d.n_locks);
		d.roles = TAKE_PTR(roles);
		d.n_roles = n_roles;
		d.locks = TAKE_PTR(locks);
		d.n_locks = n_locks;
		tu_auth_pref_done(&d.auth_pref);
		d.auth_pref = pref;
		pref = (struct tu_auth_pref){0};
		/* The other users are as old as the state they came from: the merged state keeps
		 * that time, so offline_max_age still ends their use while full syncs fail. */
		r = tu_cache_save_merged(conf, &d, host, now, created, NULL, e);
	}
	tu_auth_pref_done(&pref);
	tu_user_done(&u);
	tu_roles_free(roles, n_roles);
	tu_locks_free(locks, n_locks);
	tu_dataset_done(&d);
	return r;
}

static int refresh(const struct tu_online_req *req, const char *name, const char *what)
{
	struct tu_ctx *ctx = NULL;
	struct tu_auth *auth = NULL;
	struct tu_dataset d = {0};
	struct tu_host host;
	struct tu_err e;
	char why[700];
	_cleanup_close_ int lock_fd = -1;
	bool waited = false;
	int r;

	if (!req || req->size < offsetof(struct tu_online_req, now_usec) + sizeof(req->now_usec))
		return -EINVAL;
	/* The NSS side checks these too; a second look costs nothing. */
	if (getauxval(AT_SECURE) != 0)
		return -EPERM;
	if (geteuid() != 0 || tu_cache_may_write(NULL) < 0)
		return -EPERM;

	tu_err_clear(&e);
	r = tu_ctx_new(req->config_path, 0, &ctx, &e);
	if (r < 0) {
		say(req, LOG_WARNING, "online lookup of %s: config: %s", what,
		    tu_err_format(&e, why, sizeof(why)));
		return r == -ENOENT ? -EIO : r;
	}
	const struct tu_conf *conf = tu_ctx_conf(ctx);
	int64_t now = req->now_usec;
	/* Everything below, waiting for the lock included, within connect + request. */
	const uint64_t budget = conf->connect_timeout_usec + conf->request_timeout_usec;
	const uint64_t started = tu_transport_now_usec();

	if (recent(conf, now)) {
		say(req, LOG_DEBUG,
		    "online lookup of %s: cache or last attempt younger than cache.negative_ttl, not fetching",
		    what);
		r = -ENOENT;
		goto out;
	}

	r = tu_cache_lock(conf, budget, &lock_fd, &waited, &e);
	if (r < 0) {
		say(req, LOG_WARNING, "online lookup of %s: %s", what,
		    tu_err_format(&e, why, sizeof(why)));
		if (r == -ENOENT)
			r = -EIO;
		goto out;
	}
	if (waited && recent(conf, now)) {
		/* Someone else refreshed (or tried) while we waited: look again. */
		r = 0;
		goto out;
	}
	mark_attempt(lock_fd, now);

	tu_err_clear(&e);
	r = tu_ctx_host(ctx, now, &host, &e);
	if (r >= 0)
		r = tu_ctx_auth(ctx, now, &auth, &e);
	/* The host process (ls, sshd, ...) waits at most the budget, all RPCs together: a full
	 * fetch that needs longer fails here and is left to `sync`. */
	if (r >= 0) {
		uint64_t spent = tu_transport_now_usec() - started;

		tu_auth_set_budget(auth, spent < budget ? budget - spent : 1);
	}
	if (r >= 0 && name) {
		r = refresh_name(conf, auth, name, &host, now, &e);
		if (r == -ENOENT) {
			say(req, LOG_DEBUG, "online lookup of %s: no such Teleport user", what);
			goto out;
		}
		if (r >= 0)
			say(req, LOG_INFO, "online lookup of %s: user, roles and locks refreshed",
			    what);
	}
	if ((r >= 0 && !name) || r == -ENODATA) {
		tu_err_clear(&e);
		r = tu_auth_fetch_all(auth, &d, &e);
		if (r >= 0)
			tu_auth_note_auth_pref(&d.auth_pref);
		if (r >= 0)
			r = tu_cache_save(conf, &d, &host, now, NULL, &e);
		if (r >= 0)
			say(req, LOG_INFO,
			    "online lookup of %s: cache refreshed (%zu users, %zu roles)", what,
			    d.n_users, d.n_roles);
	}
	if (r < 0) {
		say(req, LOG_WARNING, "online lookup of %s: %s", what,
		    tu_err_format(&e, why, sizeof(why)));
		/* -ENOENT means "the miss stands" to the caller; a missing credential file is a
		 * failure. */
		if (r == -ENOENT)
			r = -EIO;
		goto out;
	}
	if (tu_cache_link_default(conf, &e) < 0)
		say(req, LOG_NOTICE, "online lookup of %s: %s", what,
		    tu_err_format(&e, why, sizeof(why)));
	r = 0;
out:
	tu_dataset_done(&d);
	tu_ctx_free(ctx);
	return r;
}

static int refresh_for_name(const struct tu_online_req *req, const char *name)
{
	char what[300], clean[256];

	if (!name || !*name)
		return -EINVAL;
	snprintf(what, sizeof(what), "'%s'", tu_sanitize(name, clean, sizeof(clean)));
	return refresh(req, name, what);
}

static int refresh_for_id(const struct tu_online_req *req, uint32_t id)
{
	char what[32];

	snprintf(what, sizeof(what), "id %u", id);
	return refresh(req, NULL, what);
}

static const struct tu_online_v1 table = {
    .version = TU_ONLINE_VERSION,
    .size = sizeof(struct tu_online_v1),
    .refresh_for_name = refresh_for_name,
    .refresh_for_id = refresh_for_id,
};

const struct tu_online_v1 *tu_online_v1_get(void)
{
	return &table;
}
