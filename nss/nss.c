/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nss.c - the _nss_teleport_* entry points (passwd, group, initgroups) over
 * the public accounts snapshot.  Layer: nss (libc + libtu-base only, loaded
 * into every process that resolves a user).
 *
 * Each lookup: check the arguments, borrow the process's validated mapping
 * of the snapshot, look up, pack into the caller's buffer, map the result to
 * an NSS status in one table (status_of).
 *
 * Why a cached mapping (STYLE §2.9.2 asks for a benchmark first; see
 * docs/PERFORMANCE.md): validating a 100k-account snapshot means a CRC over
 * ~10 MB, milliseconds per call, against a goal of ~250 ns per warm lookup.
 * So the first lookup maps and validates the file once, and later lookups
 * reuse it; at most once per recheck interval (default 100 ms, env
 * TELEPORT_UNIX_NSS_RECHECK_MSEC) one caller stat()s the path and re-maps
 * when device, inode, size, mtime or ctime of the snapshot or of its delta
 * (accounts.delta next to the real file: one more stat) changed.  Files are replaced by
 * rename, never modified in place, so an old mapping stays valid until it is
 * unmapped.
 *
 * Reclamation without a lock on the hot path: readers increment `active`
 * before loading `current` and decrement it when done.  A replaced mapping
 * goes to a retired list (under the refresh lock) and is unmapped only once
 * `active` has been seen at zero (or one: the refresher itself) after the
 * swap: any reader that starts later loads the new pointer.  The lock is
 * only ever try-locked on paths that already have a mapping to fall back
 * on, so a fork() while another thread held it cannot hang the child; with
 * no mapping and the lock busy, the call opens the file privately
 * (stateless, slow, correct).  It is not a pthread mutex but the pid of
 * the holder's process: a child forked while another thread held a mutex
 * would inherit it locked for ever and keep its old snapshot; a holder pid
 * that is not ours belongs to the parent, whose thread does not exist
 * here, so the child takes the lock over (refresh_trylock).  Such a child
 * may also have inherited `active` counts of readers that do not exist in
 * it: it then never unmaps the mappings it retires (memory only; correct
 * answers).  No fd is kept; every fd is O_CLOEXEC.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "dl.h"
#include "err.h"
#include "pack.h"
#include "snapshot.h"

#define NSS_EXPORT           __attribute__((visibility("default")))
#define RECHECK_ENV          "TELEPORT_UNIX_NSS_RECHECK_MSEC"
#define RECHECK_DEFAULT_MSEC 100u
#define RECHECK_MAX_MSEC     3600000u

/* The entry points glibc looks up with dlsym (declared here: no public header). */
enum nss_status _nss_teleport_getpwnam_r(const char *name, struct passwd *pwd, char *buf,
					 size_t buflen, int *errnop);
enum nss_status _nss_teleport_getpwuid_r(uid_t uid, struct passwd *pwd, char *buf, size_t buflen,
					 int *errnop);
enum nss_status _nss_teleport_getgrnam_r(const char *name, struct group *grp, char *buf,
					 size_t buflen, int *errnop);
enum nss_status _nss_teleport_getgrgid_r(gid_t gid, struct group *grp, char *buf, size_t buflen,
					 int *errnop);
enum nss_status _nss_teleport_setpwent(int stayopen);
enum nss_status _nss_teleport_endpwent(void);
enum nss_status _nss_teleport_getpwent_r(struct passwd *pwd, char *buf, size_t buflen, int *errnop);
enum nss_status _nss_teleport_setgrent(int stayopen);
enum nss_status _nss_teleport_endgrent(void);
enum nss_status _nss_teleport_getgrent_r(struct group *grp, char *buf, size_t buflen, int *errnop);
enum nss_status _nss_teleport_initgroups_dyn(const char *user, gid_t group, long int *start,
					     long int *size, gid_t **groupsp, long int limit,
					     int *errnop);

/* What the last look at the path found: a mapping, or why there is none. */
struct cached {
	struct tu_snapshot *snap; /* NULL: err says why */
	int err;                  /* 0 with snap, else -ENOENT / -EBADMSG / -EPERM / ... */
	bool have_stat;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
	char path[PATH_MAX];
	/* The delta next to the real file (docs/cache-format.md "Delta files"), "" when its path
	 * could not be made; what stat() said of it before the open (dexists false: absent). */
	char dpath[PATH_MAX];
	bool dexists;
	dev_t ddev;
	ino_t dino;
	off_t dsize;
	struct timespec dmtim, dctim;
	struct cached *next_retired;
};

static _Atomic(struct cached *) current;
static atomic_uint active;
static _Atomic uint64_t next_check_nsec;
static atomic_bool have_retired;
static _Atomic pid_t refresh_owner; /* the refresh lock: holder's pid, 0 = free */
static struct cached *retired;      /* under the refresh lock */

/* Recursion guard: we never call NSS ourselves, but a future online path might. */
static _Thread_local bool in_module;

static uint64_t mono_nsec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) < 0)
		return 0;
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static uint64_t recheck_nsec(void)
{
	const char *e = secure_getenv(RECHECK_ENV);
	uint64_t v = 0;

	if (!e || !*e)
		return (uint64_t) RECHECK_DEFAULT_MSEC * 1000000u;
	for (; *e; e++) {
		if (*e < '0' || *e > '9' || v > RECHECK_MAX_MSEC)
			return (uint64_t) RECHECK_DEFAULT_MSEC * 1000000u;
		v = v * 10 + (uint64_t) (*e - '0');
	}
	return (v > RECHECK_MAX_MSEC ? RECHECK_MAX_MSEC : v) * 1000000u;
}

static int snapshot_path(char *buf, size_t size)
{
	const char *dir = secure_getenv(TU_SNAPSHOT_DIR_ENV);

	if (!dir || dir[0] != '/')
		dir = TU_SNAPSHOT_DEFAULT_DIR;
	if ((size_t) snprintf(buf, size, "%s/%s", dir, TU_SNAPSHOT_PUBLIC_FILE) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static bool same_file(const struct cached *c, const char *path, const struct stat *st)
{
	return c && c->have_stat && strcmp(c->path, path) == 0 && c->dev == st->st_dev &&
	       c->ino == st->st_ino && c->size == st->st_size &&
	       c->mtim.tv_sec == st->st_mtim.tv_sec && c->mtim.tv_nsec == st->st_mtim.tv_nsec &&
	       c->ctim.tv_sec == st->st_ctim.tv_sec && c->ctim.tv_nsec == st->st_ctim.tv_nsec;
}

/* Records what stat() says of the delta now (before the open: a later change is seen by the
 * next check). */
static void delta_stat(struct cached *c)
{
	struct stat st;

	c->dexists = c->dpath[0] && lstat(c->dpath, &st) == 0;
	if (c->dexists) {
		c->ddev = st.st_dev, c->dino = st.st_ino, c->dsize = st.st_size;
		c->dmtim = st.st_mtim, c->dctim = st.st_ctim;
	}
}

/* Whether the delta is still what was stat()ed before c was opened (one lstat). */
static bool same_delta(const struct cached *c)
{
	struct stat st;

	if (!c->dpath[0])
		return true; /* no path: the base's own check decides */
	if (lstat(c->dpath, &st) < 0)
		return !c->dexists && errno == ENOENT;
	return c->dexists && c->ddev == st.st_dev && c->dino == st.st_ino &&
	       c->dsize == st.st_size && c->dmtim.tv_sec == st.st_mtim.tv_sec &&
	       c->dmtim.tv_nsec == st.st_mtim.tv_nsec && c->dctim.tv_sec == st.st_ctim.tv_sec &&
	       c->dctim.tv_nsec == st.st_ctim.tv_nsec;
}

static void cached_free(struct cached *c)
{
	if (!c)
		return;
	tu_snapshot_close(c->snap);
	free(c);
}

/* Unmaps retired mappings when no reader but (optionally) the caller is inside. */
static void reclaim_locked(unsigned self)
{
	if (!retired || atomic_load(&active) > self)
		return;
	while (retired) {
		struct cached *c = retired;

		retired = c->next_retired;
		cached_free(c);
	}
	atomic_store(&have_retired, false);
}

/* A corrupt or foreign file is logged once per version of the file, never to the program's stderr.
 */
static void log_unusable(const char *path, const struct tu_err *e)
{
	char msg[600];

	(void) tu_err_format(e, msg, sizeof(msg));
	syslog(LOG_AUTHPRIV | LOG_WARNING, "teleport-unix nss: %s: %s, ignoring", path, msg);
}

/*
 * Try-locks the refresh lock.  A holder pid other than ours was written in
 * the process we were forked from (memory is copied, threads are not): that
 * holder will never unlock here, so we take over from it.  Two threads of
 * this process racing for the take-over: one compare-exchange wins.
 */
static bool refresh_trylock(void)
{
	pid_t self = getpid(), cur = 0;

	if (atomic_compare_exchange_strong(&refresh_owner, &cur, self))
		return true;
	return cur != self && atomic_compare_exchange_strong(&refresh_owner, &cur, self);
}

static void refresh_unlock(void)
{
	atomic_store(&refresh_owner, 0);
}

/* Looks at the path and swaps `current` when the file changed.  Caller holds the refresh lock. */
static void refresh_locked(uint64_t now)
{
	struct cached *old = atomic_load(&current), *c;
	struct tu_err e = {};
	struct stat st;
	char path[PATH_MAX];
	int r;

	atomic_store(&next_check_nsec, now + recheck_nsec());
	r = snapshot_path(path, sizeof(path));
	if (r == 0 && stat(path, &st) < 0)
		r = -errno;
	if (r == 0 && same_file(old, path, &st) && same_delta(old))
		return;
	if (r < 0 && old && !old->have_stat && old->err == r && strcmp(old->path, path) == 0)
		return;

	c = calloc(1, sizeof(*c));
	if (!c)
		return; /* keep what we have; try again next time */
	(void) snprintf(c->path, sizeof(c->path), "%s", path);
	if (r == 0) {
		c->have_stat = true;
		c->dev = st.st_dev, c->ino = st.st_ino, c->size = st.st_size;
		c->mtim = st.st_mtim, c->ctim = st.st_ctim;
		if (tu_snapshot_delta_path(path, c->dpath, sizeof(c->dpath)) < 0)
			c->dpath[0] = '\0';
		delta_stat(c);
		r = tu_snapshot_open(path, TU_SNAPSHOT_KIND_ACCOUNTS,
				     TU_SNAPSHOT_LAZY | TU_SNAPSHOT_OVERLAY, &c->snap, &e);
		if (r < 0 && r != -ENOENT)
			log_unusable(path, &e);
	}
	c->err = r;
	atomic_store(&current, c);
	if (old) {
		old->next_retired = retired;
		retired = old;
		atomic_store(&have_retired, true);
	}
}

/* A borrowed snapshot for one lookup. */
struct lease {
	struct tu_snapshot *snap;
	bool private_snap; /* opened for this call only */
};

/* Returns 0 with a snapshot, or the reason there is none (-ENOENT: no file, -EBADMSG, ...). */
static int lease_get(struct lease *l)
{
	struct cached *c;
	uint64_t now;

	atomic_fetch_add(&active, 1);
	c = atomic_load(&current);
	now = mono_nsec();
	if (!c || now >= atomic_load(&next_check_nsec)) {
		if (refresh_trylock()) {
			refresh_locked(now);
			reclaim_locked(1);
			refresh_unlock();
			c = atomic_load(&current);
		}
	}
	if (!c) {
		/* Another thread is mapping the file right now (or held the lock across fork()). */
		char path[PATH_MAX];
		int r;

		atomic_fetch_sub(&active, 1);
		r = snapshot_path(path, sizeof(path));
		if (r < 0)
			return r;
		r = tu_snapshot_open(path, TU_SNAPSHOT_KIND_ACCOUNTS,
				     TU_SNAPSHOT_LAZY | TU_SNAPSHOT_OVERLAY, &l->snap, NULL);
		if (r < 0)
			return r;
		l->private_snap = true;
		return 0;
	}
	if (!c->snap) {
		atomic_fetch_sub(&active, 1);
		return c->err;
	}
	l->snap = c->snap;
	l->private_snap = false;
	return 0;
}

static void lease_put(struct lease *l)
{
	if (l->private_snap) {
		l->snap = tu_snapshot_close(l->snap);
		return;
	}
	if (atomic_fetch_sub(&active, 1) == 1 && atomic_load(&have_retired) &&
	    refresh_trylock()) {
		reclaim_locked(0);
		refresh_unlock();
	}
	l->snap = NULL;
}

/*
 * The one errno -> NSS status table (STYLE §2.6, docs/errors.md).  `avail`
 * is false when the snapshot itself could not be used: then even -ENOENT (no
 * file) is UNAVAIL, not NOTFOUND.  errno is restored first because glibc
 * passes &errno as errnop.
 */
static enum nss_status status_of(int r, bool avail, int saved_errno, int *errnop)
{
	errno = saved_errno;
	if (r == 0)
		return NSS_STATUS_SUCCESS;
	switch (r) {
	case -ENOENT:
		*errnop = ENOENT;
		return avail ? NSS_STATUS_NOTFOUND : NSS_STATUS_UNAVAIL;
	case -ERANGE:
		*errnop = ERANGE;
		return NSS_STATUS_TRYAGAIN;
	case -ENOMEM:
	case -EAGAIN:
		*errnop = -r;
		return NSS_STATUS_TRYAGAIN;
	default:
		*errnop = -r > 0 ? -r : EIO;
		return NSS_STATUS_UNAVAIL;
	}
}

static bool name_ok(const char *name)
{
	return name && name[0] && strnlen(name, TU_SNAPSHOT_MAX_NAME + 1) <= TU_SNAPSHOT_MAX_NAME;
}

enum lookup_kind { BY_LOGIN, BY_UID, BY_GROUP, BY_GID };

/* One lookup: lease, find, pack.  *ret_avail tells status_of whether the snapshot was there. */
/* What a miss needs to know about the snapshot that answered it. */
struct miss_info {
	bool have;
	int64_t created_usec;
	uint64_t negative_ttl_usec;
};

static int lookup_once(enum lookup_kind kind, const char *name, uint32_t id, void *result,
		       char *buf, size_t buflen, bool *ret_avail, struct miss_info *info)
{
	struct lease l = {};
	struct tu_pw_view pv;
	struct tu_gr_view gv;
	int r;

	*ret_avail = true;
	r = lease_get(&l);
	if (r < 0) {
		*ret_avail = false;
		return r;
	}

	switch (kind) {
	case BY_LOGIN:
		r = tu_snapshot_find_login(l.snap, name, &pv, NULL);
		break;
	case BY_UID:
		r = tu_snapshot_find_uid(l.snap, (uid_t) id, &pv, NULL);
		break;
	case BY_GROUP:
		r = tu_snapshot_find_group(l.snap, name, &gv, NULL);
		break;
	default:
		r = tu_snapshot_find_gid(l.snap, (gid_t) id, &gv, NULL);
		break;
	}
	/* Never root's ids, whatever the file says (SPEC §4: root is never served). */
	bool is_pw = kind == BY_LOGIN || kind == BY_UID;

	if (r == 0 && ((is_pw && (pv.uid == 0 || pv.gid == 0)) || (!is_pw && gv.gid == 0)))
		r = -ENOENT;
	else if (r == 0)
		r = (kind == BY_LOGIN || kind == BY_UID) ? tu_pack_passwd(&pv, result, buf, buflen)
							 : tu_pack_group(&gv, result, buf, buflen);
	else if (r == -ENOENT) {
		info->have = true;
		info->created_usec = tu_snapshot_created_usec(l.snap);
		info->negative_ttl_usec = tu_snapshot_negative_ttl_usec(l.snap);
	}
	lease_put(&l);
	return r;
}

/*
 * Whether the core would refuse to go online anyway, so we need not load it:
 * the snapshot (snapshot_is_recent: a clock read, checked before anything
 * else), or the core's last attempt (attempt_is_recent: the mtime of its
 * lock file next to the real snapshot, system calls, checked only where
 * going online is allowed), is younger than the cache.negative_ttl the
 * writer recorded.  Without a recorded TTL the core decides.
 */
static bool snapshot_is_recent(const struct miss_info *info)
{
	struct timespec ts;
	int64_t now;

	if (!info->have || info->negative_ttl_usec == 0 || clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return false;
	now = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	return info->created_usec <= now &&
	       (uint64_t) (now - info->created_usec) < info->negative_ttl_usec;
}

static bool attempt_is_recent(const struct miss_info *info)
{
	char path[PATH_MAX], real[PATH_MAX], *slash;
	struct timespec ts;
	struct stat st;
	int64_t now;

	if (!info->have || info->negative_ttl_usec == 0 || clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return false;
	now = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	if (snapshot_path(path, sizeof(path)) < 0 || !realpath(path, real) ||
	    !(slash = strrchr(real, '/')))
		return false;
	if ((size_t) (slash - real) + sizeof("/" TU_SNAPSHOT_ONLINE_LOCK_FILE) > sizeof(real))
		return false;
	memcpy(slash + 1, TU_SNAPSHOT_ONLINE_LOCK_FILE, sizeof(TU_SNAPSHOT_ONLINE_LOCK_FILE));
	/* Only root's lock file tells the time of the last attempt: anyone else's could be touched
	 * to stop every refresh (the core refuses such a file too). */
	if (lstat(real, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 0022))
		return false;
	{
		int64_t m = (int64_t) st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;

		if (m > now || (uint64_t) (now - m) >= info->negative_ttl_usec)
			return false;
		/* Believed by the next misses until it runs out (at most 100 ms). */
		tu_nss_remember_offline((info->negative_ttl_usec - (uint64_t) (now - m)) * 1000u);
		return true;
	}
}

/*
 * Argument checks, the lookup, and on a miss (or no snapshot at all) the
 * online refresh where dl.c allows it, then one more lookup.
 */
static int lookup(enum lookup_kind kind, const char *name, uint32_t id, void *result, char *buf,
		  size_t buflen, bool *ret_avail)
{
	bool by_name = kind == BY_LOGIN || kind == BY_GROUP;
	struct miss_info info = {};
	int r;

	*ret_avail = true;
	if (by_name && !name_ok(name))
		return -ENOENT;
	if (!by_name && id == 0)
		return -ENOENT; /* root and its group are the files module's, never ours */
	if (!result || !buf || buflen == 0)
		return -ERANGE;
	if (in_module) {
		*ret_avail = false;
		return -EDEADLK;
	}
	in_module = true;
	r = lookup_once(kind, name, id, result, buf, buflen, ret_avail, &info);
	/* Cheapest first: the snapshot's own answer and "stayed offline lately" (the answer of
	 * the checks below, remembered for at most 100 ms) cost a clock read each; the uid
	 * checks, access() of the config and the lock file's lstat() come only when those leave
	 * the question open (docs/PERFORMANCE.md, NSS miss). */
	if (r == -ENOENT && !snapshot_is_recent(&info) &&
	    !(info.have && tu_nss_offline_lately()) && tu_nss_online_allowed() &&
	    !attempt_is_recent(&info) && tu_nss_online_refresh(by_name ? name : NULL, id) == 0) {
		/* A new snapshot was written: look at the path now, not in 100 ms. */
		atomic_store(&next_check_nsec, 0);
		r = lookup_once(kind, name, id, result, buf, buflen, ret_avail, &info);
	}
	in_module = false;
	return r;
}

NSS_EXPORT enum nss_status _nss_teleport_getpwnam_r(const char *name, struct passwd *pwd, char *buf,
						    size_t buflen, int *errnop)
{
	int saved = errno;
	bool avail;
	int r = lookup(BY_LOGIN, name, 0, pwd, buf, buflen, &avail);

	return status_of(r, avail, saved, errnop);
}

NSS_EXPORT enum nss_status _nss_teleport_getpwuid_r(uid_t uid, struct passwd *pwd, char *buf,
						    size_t buflen, int *errnop)
{
	int saved = errno;
	bool avail;
	int r = lookup(BY_UID, NULL, uid, pwd, buf, buflen, &avail);

	return status_of(r, avail, saved, errnop);
}

NSS_EXPORT enum nss_status _nss_teleport_getgrnam_r(const char *name, struct group *grp, char *buf,
						    size_t buflen, int *errnop)
{
	int saved = errno;
	bool avail;
	int r = lookup(BY_GROUP, name, 0, grp, buf, buflen, &avail);

	return status_of(r, avail, saved, errnop);
}

NSS_EXPORT enum nss_status _nss_teleport_getgrgid_r(gid_t gid, struct group *grp, char *buf,
						    size_t buflen, int *errnop)
{
	int saved = errno;
	bool avail;
	int r = lookup(BY_GID, NULL, gid, grp, buf, buflen, &avail);

	return status_of(r, avail, saved, errnop);
}

/*
 * Enumeration: one state per database under its own mutex (STYLE §2.9.1).
 * It holds a private mapping from set*ent to end*ent so that a getpwnam in
 * the middle of a getpwent loop (or a snapshot replaced meanwhile) cannot
 * disturb the position.
 */
struct ent_state {
	pthread_mutex_t lock;
	struct tu_snapshot *snap;
	int err; /* why snap is NULL after set*ent */
	size_t idx;
	bool opened;
};

static struct ent_state pw_ent = {.lock = PTHREAD_MUTEX_INITIALIZER};
static struct ent_state gr_ent = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void ent_unlock(pthread_mutex_t **m)
{
	if (*m)
		(void) pthread_mutex_unlock(*m);
}

#define ENT_LOCK(st)                                                                \
	_cleanup_(ent_unlock) __attribute__((unused)) pthread_mutex_t *_ent_lock_ = \
	    (pthread_mutex_lock(&(st)->lock), &(st)->lock)

static int ent_open_locked(struct ent_state *st)
{
	char path[PATH_MAX];
	int r;

	st->snap = tu_snapshot_close(st->snap);
	st->idx = 0;
	st->opened = true;
	r = snapshot_path(path, sizeof(path));
	/* Enumeration reads every record anyway: validate the whole file up front. */
	if (r == 0)
		r = tu_snapshot_open(path, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY,
				     &st->snap, NULL);
	st->err = r;
	return r;
}

static enum nss_status ent_set(struct ent_state *st)
{
	int saved = errno, dummy;
	ENT_LOCK(st);
	int r = ent_open_locked(st);

	return status_of(r, r == 0, saved, &dummy);
}

static enum nss_status ent_end(struct ent_state *st)
{
	int saved = errno;
	ENT_LOCK(st);

	st->snap = tu_snapshot_close(st->snap);
	st->opened = false;
	st->idx = 0;
	errno = saved;
	return NSS_STATUS_SUCCESS;
}

static enum nss_status ent_get(struct ent_state *st, bool pw, void *result, char *buf,
			       size_t buflen, int *errnop)
{
	int saved = errno, r;
	ENT_LOCK(st);

	if (!result || !buf || buflen == 0)
		return status_of(-ERANGE, true, saved, errnop);
	if (!st->opened)
		(void) ent_open_locked(st);
	if (!st->snap)
		return status_of(st->err ? st->err : -ENOENT, false, saved, errnop);
	/* Bad records and root's ids are skipped, like the lookups do; the loop ends at the count.
	 */
	for (;;) {
		bool skip = false;

		if (pw) {
			struct tu_pw_view v;

			r = tu_snapshot_passwd_at(st->snap, st->idx, &v, NULL);
			skip = r == 0 && (v.uid == 0 || v.gid == 0);
			if (r == 0 && !skip)
				r = tu_pack_passwd(&v, result, buf, buflen);
		} else {
			struct tu_gr_view v;

			r = tu_snapshot_group_at(st->snap, st->idx, &v, NULL);
			skip = r == 0 && v.gid == 0;
			if (r == 0 && !skip)
				r = tu_pack_group(&v, result, buf, buflen);
		}
		if (r == -EBADMSG || skip) {
			st->idx++;
			continue;
		}
		/* -ERANGE: the same entry again with a bigger buffer. */
		if (r == 0)
			st->idx++;
		return status_of(r, true, saved, errnop);
	}
}

NSS_EXPORT enum nss_status _nss_teleport_setpwent(int stayopen)
{
	return ent_set(&pw_ent);
}

NSS_EXPORT enum nss_status _nss_teleport_endpwent(void)
{
	return ent_end(&pw_ent);
}

NSS_EXPORT enum nss_status _nss_teleport_getpwent_r(struct passwd *pwd, char *buf, size_t buflen,
						    int *errnop)
{
	return ent_get(&pw_ent, true, pwd, buf, buflen, errnop);
}

NSS_EXPORT enum nss_status _nss_teleport_setgrent(int stayopen)
{
	return ent_set(&gr_ent);
}

NSS_EXPORT enum nss_status _nss_teleport_endgrent(void)
{
	return ent_end(&gr_ent);
}

NSS_EXPORT enum nss_status _nss_teleport_getgrent_r(struct group *grp, char *buf, size_t buflen,
						    int *errnop)
{
	return ent_get(&gr_ent, false, grp, buf, buflen, errnop);
}

/* Appends gid to (*groupsp)[*start] unless present or skip; grows within limit. */
static int add_gid(gid_t gid, gid_t skip, long int *start, long int *size, gid_t **groupsp,
		   long int limit)
{
	gid_t *g = *groupsp;

	if (gid == skip)
		return 0;
	for (long int i = 0; i < *start; i++)
		if (g[i] == gid)
			return 0;
	if (*start >= *size) {
		long int nsize;
		gid_t *ng;

		if (limit > 0 && *size >= limit)
			return -ERANGE; /* full: glibc stops adding */
		if (__builtin_mul_overflow(*size > 0 ? *size : 8, 2, &nsize))
			return -ENOMEM;
		if (limit > 0 && nsize > limit)
			nsize = limit;
		ng = realloc(g, (size_t) nsize * sizeof(gid_t));
		if (!ng)
			return -ENOMEM;
		*groupsp = g = ng;
		*size = nsize;
	}
	g[(*start)++] = gid;
	return 0;
}

NSS_EXPORT enum nss_status _nss_teleport_initgroups_dyn(const char *user, gid_t group,
							long int *start, long int *size,
							gid_t **groupsp, long int limit,
							int *errnop)
{
	int saved = errno, r;
	struct lease l = {};
	struct tu_pw_view v;

	if (!name_ok(user))
		return status_of(-ENOENT, true, saved, errnop);
	if (!start || !size || !groupsp || *start < 0 || *size < *start)
		return status_of(-EINVAL, true, saved, errnop);
	if (in_module)
		return status_of(-EDEADLK, false, saved, errnop);
	in_module = true;
	r = lease_get(&l);
	if (r < 0) {
		in_module = false;
		return status_of(r, false, saved, errnop);
	}
	r = tu_snapshot_find_login(l.snap, user, &v, NULL);
	if (r == 0 && (v.uid == 0 || v.gid == 0))
		r = -ENOENT;
	for (size_t i = 0; r == 0 && i < v.n_gids; i++) {
		if (tu_pw_view_gid(&v, i) == 0)
			continue; /* never grant root's group */
		r = add_gid(tu_pw_view_gid(&v, i), group, start, size, groupsp, limit);
		if (r == -ERANGE) {
			r = 0; /* at the caller's limit: what fits is the answer */
			break;
		}
	}
	lease_put(&l);
	in_module = false;
	return status_of(r, true, saved, errnop);
}
