/* SPDX-License-Identifier: Apache-2.0 */
/*
 * online.c - the function table libnss_teleport.so.2 reaches through dlopen
 * on a lookup miss (contract in online.h).  Layer: libcore.
 *
 * A refresh is a full sync (users, roles, locks -> both snapshots): a login
 * may be granted to any user through any role, and a uid names no user, so
 * fetching "just that user" could not answer either question correctly.
 * Three things keep it rare and cheap for the host:
 *  - no fetch while the public snapshot is younger than cache.negative_ttl;
 *  - one refresh at a time per cache.dir (flock on a lock file); the others
 *    wait, bounded by the connect + request timeouts, and then find the
 *    fresh snapshot;
 *  - the process-wide log sink is never touched: this library may be shared
 *    with pam_teleport.so in the same process, so messages go to the
 *    caller's function in req->log_fn only.
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
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cache.h"
#include "cleanup.h"
#include "conf.h"
#include "ctx.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "snapshot.h"

#define LOCK_FILE      ".online.lock"
#define LOCK_POLL_USEC 50000

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
	if (tu_snapshot_open(path, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, NULL) >= 0) {
		t = tu_snapshot_created_usec(s);
		tu_snapshot_close(s);
	}
	return t;
}

static bool recent(const struct tu_conf *conf, int64_t now_usec)
{
	int64_t t = public_created(conf);
	return t != INT64_MIN && t <= now_usec &&
	       (uint64_t) (now_usec - t) < conf->negative_ttl_usec;
}

static void sleep_usec(long usec)
{
	struct timespec ts = {.tv_sec = usec / 1000000, .tv_nsec = (usec % 1000000) * 1000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Takes the refresh lock within budget_usec.  *ret_waited tells whether
 * another refresh held it (its result may already answer the caller).
 */
static int lock_refresh(const struct tu_conf *conf, uint64_t budget_usec, int *ret_fd,
			bool *ret_waited)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	bool waited = false;

	if (tu_cache_path(conf, LOCK_FILE, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0)
		return -errno;
	for (uint64_t spent = 0;; spent += LOCK_POLL_USEC) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (spent >= budget_usec)
			return -ETIMEDOUT;
		waited = true;
		sleep_usec(LOCK_POLL_USEC);
	}
	*ret_fd = TAKE_FD(fd);
	*ret_waited = waited;
	return 0;
}

static int refresh(const struct tu_online_req *req, const char *what)
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
	if (geteuid() != 0)
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

	if (recent(conf, now)) {
		say(req, LOG_DEBUG,
		    "online lookup of %s: snapshot younger than cache.negative_ttl, not fetching",
		    what);
		r = -ENOENT;
		goto out;
	}

	r = tu_fs_mkdir_p(conf->cache_dir, 0755, &e);
	if (r >= 0)
		r = lock_refresh(conf, conf->connect_timeout_usec + conf->request_timeout_usec,
				 &lock_fd, &waited);
	if (r < 0) {
		say(req, LOG_WARNING, "online lookup of %s: cannot lock %s/%s: %s", what,
		    conf->cache_dir, LOCK_FILE, strerror(-r));
		if (r == -ENOENT)
			r = -EIO;
		goto out;
	}
	if (waited && recent(conf, now)) {
		/* Someone else refreshed while we waited: look again. */
		r = 0;
		goto out;
	}

	tu_err_clear(&e);
	r = tu_ctx_host(ctx, now, &host, &e);
	if (r >= 0)
		r = tu_ctx_auth(ctx, now, &auth, &e);
	if (r >= 0)
		r = tu_auth_fetch_all(auth, &d, &e);
	if (r >= 0)
		r = tu_cache_save(conf, &d, &host, now, NULL, &e);
	if (r >= 0 && tu_cache_link_default(conf, &e) < 0)
		say(req, LOG_NOTICE, "online lookup of %s: %s", what,
		    tu_err_format(&e, why, sizeof(why)));
	if (r < 0) {
		say(req, LOG_WARNING, "online lookup of %s: %s", what,
		    tu_err_format(&e, why, sizeof(why)));
		/* -ENOENT means "the miss stands" to the caller; a missing credential file is a
		 * failure. */
		if (r == -ENOENT)
			r = -EIO;
		goto out;
	}
	say(req, LOG_INFO, "online lookup of %s: cache refreshed (%zu users, %zu roles)", what,
	    d.n_users, d.n_roles);
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
	return refresh(req, what);
}

static int refresh_for_id(const struct tu_online_req *req, uint32_t id)
{
	char what[32];

	snprintf(what, sizeof(what), "id %u", id);
	return refresh(req, what);
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
