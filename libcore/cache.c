/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache.c - writes and reads the two cache snapshots (SPEC §6; contract in
 * cache.h).  Layer: libcore.  The byte format, its validation and the atomic
 * replace live in base/snapshot.c; the POSIX mapping in accounts.c; the
 * encoding of users, roles and locks in model.c.  This unit glues them and
 * owns the policy: file names and modes, the trust rule for the private
 * file, the offline age limit.
 */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accounts.h"
#include "cleanup.h"
#include "conf.h"
#include "err.h"
#include "etcgroup.h"
#include "fsutil.h"
#include "log.h"
#include "snapshot.h"

/* Blob types inside state.db (append-only: readers skip types they do not know). */
enum {
	STATE_BLOB_USER = 1, /* types.UserV2, tu_model_encode_user */
	STATE_BLOB_ROLE = 2, /* types.RoleV6 */
	STATE_BLOB_LOCK = 3, /* types.LockV2 */
	STATE_BLOB_AUTH_PREF = 4, /* types.AuthPreferenceV2, at most one; absent = not known */
	STATE_BLOB_LEFT_OUT = 6, /* at most one: users, roles left out of the last listing (u64 LE each) */
	STATE_BLOB_USER_CA = 5, /* types.CertAuthorityV2 (user, public keys), at most one; absent = not known */
};

/* A state file claiming to be from further in the future than this is not trusted to be fresh. */
#define FUTURE_SLACK_USEC (INT64_C(300) * 1000000)

static const char *cache_dir(const struct tu_conf *conf)
{
	return conf && conf->cache_dir && *conf->cache_dir ? conf->cache_dir
							   : TU_SNAPSHOT_DEFAULT_DIR;
}

int tu_cache_path(const struct tu_conf *conf, const char *file, char *buf, size_t size)
{
	const char *dir = cache_dir(conf);
	int n = snprintf(buf, size, "%s/%s", dir, file);
	if (n < 0 || (size_t) n >= size)
		return -ENAMETOOLONG;
	return 0;
}

static int path_or_err(const struct tu_conf *conf, const char *file, char *buf, size_t size,
		       struct tu_err *reterr)
{
	int r = tu_cache_path(conf, file, buf, size);
	if (r < 0)
		return tu_err_set(reterr, r, "cache.dir: path too long");
	return 0;
}

/*
 * The directory holding the cache must not let anyone else put files in it:
 * a hard link to an older root-owned state.db would roll decisions back, and
 * in a sticky world-writable directory (/tmp-like) anyone may still create
 * the lock file first and block every writer, or create names we are about
 * to use.  So: owned by root (or our euid when we are not root), not
 * writable by group or others, sticky or not.  -EPERM / -EACCES with the
 * reason.
 */
static int check_dir(const char *dir, struct tu_err *reterr)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return tu_err_set(reterr, -errno, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return tu_err_set(reterr, -ENOTDIR, "%s: not a directory", dir);
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return tu_err_set(reterr, -EPERM,
				  "refusing cache.dir %s: owned by uid %u, must be root", dir,
				  (unsigned) st.st_uid);
	if (st.st_mode & 0022)
		return tu_err_set(reterr, -EACCES,
				  "refusing cache.dir %s: writable by group or others (mode 0%o%s), must be 0755 and root's",
				  dir, (unsigned) (st.st_mode & 07777),
				  (st.st_mode & S_ISVTX) ? ", sticky" : "");
	return 0;
}

int tu_cache_may_write(struct tu_err *reterr)
{
	/* A setuid/setgid program (su, polkit helpers, AT_SECURE) or a process whose real uid is
	 * not its effective one runs for someone who may stop it (SIGSTOP while it holds the
	 * lock), shrink its limits (ulimit -f: a writer killed half-way, a temp file left) or
	 * time it: such a process only reads the cache. */
	if (getauxval(AT_SECURE) != 0)
		return tu_err_set(reterr, -EPERM,
				  "not writing the cache from a setuid/setgid program (AT_SECURE)");
	if (getuid() != geteuid())
		return tu_err_set(reterr, -EPERM,
				  "not writing the cache: real uid %u is not the effective uid %u",
				  (unsigned) getuid(), (unsigned) geteuid());
	return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

struct blobs {
	struct tu_blob *b;
	bool *borrowed; /* b[i].data is the caller's (tu_cache_encoded) */
	size_t n;
};

static void blobs_done(struct blobs *bl)
{
	for (size_t i = 0; i < bl->n; i++)
		if (!bl->borrowed || !bl->borrowed[i])
			free((void *) bl->b[i].data);
	free(bl->b);
	free(bl->borrowed);
	*bl = (struct blobs){0};
}

int tu_cache_encode_user(const struct tu_user *u, struct tu_cache_blob *ret)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = tu_model_encode_user(u, &buf, &len);
	if (r >= 0)
		*ret = (struct tu_cache_blob){.data = buf, .size = len};
	return r;
}

int tu_cache_encode_role(const struct tu_role *role, struct tu_cache_blob *ret)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = tu_model_encode_role(role, &buf, &len);
	if (r >= 0)
		*ret = (struct tu_cache_blob){.data = buf, .size = len};
	return r;
}

int tu_cache_encode_lock(const struct tu_lock *l, struct tu_cache_blob *ret)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = tu_model_encode_lock(l, &buf, &len);
	if (r >= 0)
		*ret = (struct tu_cache_blob){.data = buf, .size = len};
	return r;
}

/* Record i of one kind: the caller's encoding when it has one (borrowed), else encoded now; key
 * (the record's name, may be NULL) for the state file's by-name index. */
static int enc_one(struct blobs *bl, uint32_t type, const struct tu_cache_blob *pre, size_t i,
		   int (*encode)(const void *rec, struct tu_cache_blob *ret), const void *rec,
		   const char *key)
{
	struct tu_cache_blob b = {0};
	bool borrowed = pre && pre[i].data;
	int r = 0;

	if (borrowed)
		b = pre[i];
	else
		r = encode(rec, &b);
	if (r < 0)
		return r;
	bl->borrowed[bl->n] = borrowed;
	bl->b[bl->n++] = (struct tu_blob){.type = type,
					  .data = b.data,
					  .size = b.size,
					  .key = key,
					  .key_len = key ? strlen(key) : 0};
	return 0;
}

static int enc_user(const void *rec, struct tu_cache_blob *ret)
{
	return tu_cache_encode_user(rec, ret);
}

static int enc_role(const void *rec, struct tu_cache_blob *ret)
{
	return tu_cache_encode_role(rec, ret);
}

static int enc_lock(const void *rec, struct tu_cache_blob *ret)
{
	return tu_cache_encode_lock(rec, ret);
}

/* The STATE_BLOB_LEFT_OUT record: users, roles (u64 little-endian each); -EBADMSG when not 16 bytes. */
static int left_out_parse(const void *data, size_t size, size_t *ret_users, size_t *ret_roles)
{
	const uint8_t *p = data;
	uint64_t u = 0, r = 0;

	if (size != 16)
		return -EBADMSG;
	for (int k = 7; k >= 0; k--) {
		u = (u << 8) | p[k];
		r = (r << 8) | p[8 + k];
	}
	*ret_users = u > SIZE_MAX ? SIZE_MAX : (size_t) u;
	*ret_roles = r > SIZE_MAX ? SIZE_MAX : (size_t) r;
	return 0;
}

static int encode_state(const struct tu_dataset *d, const struct tu_cache_encoded *pre,
			struct blobs *ret, struct tu_err *reterr)
{
	size_t total;
	struct blobs bl = {0};
	int r = 0;

	if (__builtin_add_overflow(d->n_users, d->n_roles, &total) ||
	    __builtin_add_overflow(total, d->n_locks, &total) ||
	    total + (d->auth_pref.known ? 1 : 0) + (d->user_ca.known ? 1 : 0) > TU_SNAPSHOT_MAX_RECORDS)
		return tu_err_set(
		    reterr, -EMSGSIZE,
		    "state cache: %zu users, %zu roles and %zu locks are over the limit of %u records",
		    d->n_users, d->n_roles, d->n_locks, TU_SNAPSHOT_MAX_RECORDS);
	bl.b = calloc(total + 1 /* the left-out counts */ + 2, sizeof(*bl.b)); /* + the auth preference and the user CA */
	bl.borrowed = calloc(total + 3, sizeof(*bl.borrowed));
	if (!bl.b || !bl.borrowed) {
		blobs_done(&bl);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}

	for (size_t i = 0; r >= 0 && i < d->n_users; i++) {
		if (d->users[i].unusable)
			continue; /* never stored (fetch drops them already) */
		r = enc_one(&bl, STATE_BLOB_USER, pre ? pre->users : NULL, i, enc_user, &d->users[i],
			    d->users[i].name);
	}
	for (size_t i = 0; r >= 0 && i < d->n_roles; i++) {
		if (d->roles[i].unusable)
			continue; /* it counts as missing */
		r = enc_one(&bl, STATE_BLOB_ROLE, pre ? pre->roles : NULL, i, enc_role, &d->roles[i],
			    d->roles[i].name);
	}
	for (size_t i = 0; r >= 0 && i < d->n_locks; i++)
		r = enc_one(&bl, STATE_BLOB_LOCK, pre ? pre->locks : NULL, i, enc_lock, &d->locks[i],
			    NULL);
	if (r >= 0 && d->auth_pref.known) {
		uint8_t *buf = NULL;
		size_t len = 0;
		r = tu_model_encode_auth_pref(&d->auth_pref, &buf, &len);
		if (r >= 0)
			bl.b[bl.n++] =
			    (struct tu_blob){.type = STATE_BLOB_AUTH_PREF, .data = buf, .size = len};
	}
	if (r >= 0 && d->user_ca.known) {
		uint8_t *buf = NULL;
		size_t len = 0;
		r = tu_model_encode_user_ca(&d->user_ca, &buf, &len);
		if (r >= 0)
			bl.b[bl.n++] =
			    (struct tu_blob){.type = STATE_BLOB_USER_CA, .data = buf, .size = len};
	}
	if (r >= 0 && (d->n_users_left_out || d->n_roles_left_out)) {
		uint8_t *buf = malloc(16);
		if (!buf) {
			r = -ENOMEM;
		} else {
			for (int k = 0; k < 8; k++) {
				buf[k] = (uint8_t) ((uint64_t) d->n_users_left_out >> (8 * k));
				buf[8 + k] = (uint8_t) ((uint64_t) d->n_roles_left_out >> (8 * k));
			}
			bl.b[bl.n++] = (struct tu_blob){.type = STATE_BLOB_LEFT_OUT, .data = buf, .size = 16};
		}
	}
	if (r < 0) {
		blobs_done(&bl);
		return tu_err_set(reterr, r, "state cache: encoding users, roles, locks and the auth preference failed");
	}
	/* Users and roles are keyed by name (the key index, docs/cache-format.md: a login
	 * decision reads the few it needs).  Every named user and role has its key, or the
	 * file has no index at all (readers then scan): a name over the key limit drops it. */
	for (size_t i = 0; i < bl.n; i++)
		if (bl.b[i].key_len > TU_SNAPSHOT_MAX_KEY) {
			for (size_t j = 0; j < bl.n; j++)
				bl.b[j].key = NULL, bl.b[j].key_len = 0;
			break;
		}
	*ret = bl;
	return 0;
}

/* The generation after the one in the current snapshot and in its delta (1 when there is none):
 * a full write makes the delta stale (docs/cache-format.md "Delta files"). */
static uint64_t next_generation(const char *path)
{
	return tu_snapshot_next_generation(path);
}

/*
 * Writes the accounts in full, or with incr (tu_cache_save_incremental) as a delta against the
 * current accounts.db when that is possible and small enough; any reason it is not (no or
 * unreadable base, too many changes) falls back to the full write.
 */
static int write_public(const struct tu_conf *conf, const char *path, const struct tu_accounts *a,
			int64_t now_usec, struct tu_cache_write_stats *incr, struct tu_err *reterr)
{
	_cleanup_free_ struct tu_pw_rec *pw =
	    calloc(a->n_accounts ? a->n_accounts : 1, sizeof(*pw));
	_cleanup_free_ struct tu_gr_rec *gr = calloc(a->n_groups ? a->n_groups : 1, sizeof(*gr));

	if (!pw || !gr)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	for (size_t i = 0; i < a->n_accounts; i++) {
		const struct tu_account *x = &a->accounts[i];
		pw[i] = (struct tu_pw_rec){
		    .name = x->login,
		    .gecos = x->gecos,
		    .dir = x->home,
		    .shell = x->shell,
		    .uid = x->uid,
		    .gid = x->gid,
		    .gids = x->gids,
		    .n_gids = x->n_gids,
		};
	}
	for (size_t i = 0; i < a->n_groups; i++) {
		const struct tu_group *g = &a->groups[i];
		size_t n_members = g->members.n;
		/* Membership that matters for access travels in each login's gid list (initgroups);
		 * the member list of a huge group is only informational, so it is capped. */
		if (n_members > TU_SNAPSHOT_MAX_MEMBERS) {
			tu_log(
			    LOG_NOTICE,
			    "cache: group '%s' has %zu members, listing the first %u in the group entry (initgroups stays complete)",
			    g->name, n_members, TU_SNAPSHOT_MAX_MEMBERS);
			n_members = TU_SNAPSHOT_MAX_MEMBERS;
		}
		gr[i] = (struct tu_gr_rec){
		    .name = g->name,
		    .gid = g->gid,
		    .members = (const char *const *) g->members.v,
		    .n_members = n_members,
		};
	}
	/* NSS cannot read the config: it finds negative_ttl here (no online attempt while younger).
	 */
	struct tu_snapshot_meta meta = {.negative_ttl_usec = conf->negative_ttl_usec};
	if (incr) {
		struct tu_snapshot_delta_stats ds;
		struct tu_err de;
		int r;

		tu_err_clear(&de);
		r = tu_snapshot_write_accounts_delta(path, pw, a->n_accounts, gr, a->n_groups, &meta,
						     now_usec, 0, &ds, &de);
		incr->accounts_changes = ds.n_records + ds.n_hidden;
		if (r >= 0) {
			incr->accounts_delta = true;
			incr->accounts_bytes = ds.bytes;
			return 0;
		}
		if (r == -ENOMEM)
			return tu_err_set(reterr, r, "out of memory");
		tu_log(r == -E2BIG || r == -ENOENT ? LOG_DEBUG : LOG_NOTICE,
		       "cache: writing accounts.db in full, not as a delta: %s", de.msg);
	}
	{
		_cleanup_free_ void *data = NULL;
		size_t size = 0;
		int r = tu_snapshot_build_accounts_meta(pw, a->n_accounts, gr, a->n_groups, &meta,
							next_generation(path), now_usec, &data,
							&size, reterr);

		if (r >= 0)
			r = tu_snapshot_replace_file(path, 0644, data, size, reterr);
		if (r >= 0 && incr)
			incr->accounts_bytes = size;
		return r;
	}
}

static int state_file_user_ca(const char *dir, const char *path, int64_t now_usec, uint64_t max_age_usec,
			      struct tu_user_ca *ret, struct tu_err *reterr);

void tu_cache_accounts_opts_done(struct tu_cache_accounts_opts *o)
{
	if (!o)
		return;
	if (o->etc_group) {
		tu_etcgroup_done(o->etc_group);
		free(o->etc_group);
	}
	free(o->local_groups);
	free(o->local_uids);
	*o = (struct tu_cache_accounts_opts){0};
}

int tu_cache_accounts_opts_load(const struct tu_conf *conf, const char *etc_group_path,
				struct tu_cache_accounts_opts *ret, struct tu_err *reterr)
{
	struct tu_cache_accounts_opts o = {0};
	size_t n_uids = 0;
	int r;

	o.etc_group = calloc(1, sizeof(*o.etc_group));
	if (!o.etc_group)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	r = tu_etcgroup_load(etc_group_path, o.etc_group, reterr);
	if (r == -ENOENT) {
		tu_log(LOG_DEBUG, "cache: %s missing, no local groups",
		       etc_group_path ? etc_group_path : TU_ETCGROUP_PATH);
		r = 0;
	}
	if (r < 0) {
		tu_cache_accounts_opts_done(&o);
		return r;
	}
	o.local_groups = calloc(o.etc_group->n ? o.etc_group->n : 1, sizeof(*o.local_groups));
	if (!o.local_groups) {
		tu_cache_accounts_opts_done(&o);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < o.etc_group->n; i++)
		o.local_groups[i] = (struct tu_local_group){.name = o.etc_group->e[i].name,
							    .gid = o.etc_group->e[i].gid};
	tu_accounts_opts_from_conf(conf, &o.opts);
	o.opts.local_groups = o.local_groups;
	o.opts.n_local_groups = o.etc_group->n;
	/* Trait ids never take a local account's uid (accounts.h); unreadable = none known. */
	if (tu_etcpasswd_load_uids(NULL, &o.local_uids, &n_uids, NULL) < 0) {
		o.local_uids = NULL;
		n_uids = 0;
	}
	o.opts.local_uids = o.local_uids;
	o.opts.n_local_uids = n_uids;
	*ret = o;
	return 0;
}

/* The size of the file at path, 0 when it cannot be told (for the write statistics). */
static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_size > 0 ? (uint64_t) st.st_size : 0;
}

static uint64_t mono_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/*
 * The one writer.  acc: accounts computed by the caller (NULL: computed here, unless
 * state_only); pre: records encoded by the caller (NULL: none); stats may be NULL.
 */
static int save_as_of(const struct tu_conf *conf, const char *etc_group_path,
		      const struct tu_dataset *d, const struct tu_host *h, int64_t now_usec,
		      int64_t as_of_usec, bool state_only, const struct tu_accounts *acc_in,
		      const struct tu_cache_encoded *pre, struct tu_cache_counts *ret_counts,
		      struct tu_cache_write_stats *ret_stats, bool delta, struct tu_err *reterr)
{
	char pub[PATH_MAX], state[PATH_MAX];
	struct tu_cache_accounts_opts co = {0};
	struct tu_accounts own = {0};
	const struct tu_accounts *acc = acc_in ? acc_in : &own;
	struct tu_cache_write_stats st = {0};
	struct blobs bl = {0};
	struct tu_user_ca carried = {0};
	struct tu_dataset dd;
	struct tu_err ce;
	uint64_t t0 = mono_usec(), t1;
	int r;

	/* PAM and NSS decide from this cache: never from what a person's tsh login could see
	 * (another cluster, or the records their roles may read: locks left out let people in). */
	if (conf->cache_read_only)
		return tu_err_set(reterr, -EPERM,
				  "not writing the cache in %s: the credential is a tsh profile "
				  "(--profile), not this host's",
				  conf->cache_dir ? conf->cache_dir : "(none)");
	r = tu_cache_may_write(reterr);
	if (r < 0)
		return r;
	r = path_or_err(conf, TU_CACHE_PUBLIC_FILE, pub, sizeof(pub), reterr);
	if (r < 0)
		return r;
	r = path_or_err(conf, TU_CACHE_STATE_FILE, state, sizeof(state), reterr);
	if (r < 0)
		return r;

	if (state_only || acc_in)
		goto state; /* the accounts depend on users and roles only: accounts.db stays */
	r = tu_cache_accounts_opts_load(conf, etc_group_path, &co, reterr);
	if (r < 0)
		goto out;
	r = tu_accounts_compute(d, h, &co.opts, now_usec, &own, reterr);
	if (r < 0)
		goto out;

state:
	t1 = mono_usec();
	st.compute_usec = (int64_t) (t1 - t0);
	/* A sync that could not fetch the user CA keeps the previous snapshot's keys, so a
	 * failing CA fetch never turns Teleport certificates into nothing (nor back on). */
	dd = *d; /* shallow: only user_ca may differ */
	tu_err_clear(&ce);
	if (!d->user_ca.known &&
	    state_file_user_ca(cache_dir(conf), state, now_usec, 0, &carried, &ce) == 0 && carried.known) {
		tu_log(LOG_NOTICE, "cache: Teleport's user CA not fetched this time, keeping the %zu key(s) of the previous state",
		       carried.keys.n);
		dd.user_ca = carried;
	}
	r = encode_state(&dd, pre, &bl, reterr);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < bl.n; i++)
		st.encoded += !bl.borrowed[i];
	t0 = mono_usec();
	st.encode_usec = (int64_t) (t0 - t1);

	r = tu_fs_mkdir_p(cache_dir(conf), 0755, reterr);
	if (r < 0) {
		tu_err_prefix(reterr, "cache.dir");
		goto out;
	}
	r = check_dir(cache_dir(conf), reterr);
	if (r < 0)
		goto out;
	/* The public file is for every process that resolves a user: warn when they cannot reach
	 * it. */
	struct stat dst;
	if (stat(cache_dir(conf), &dst) == 0 && (dst.st_mode & 0001) == 0)
		tu_log(
		    LOG_WARNING,
		    "cache: %s is not searchable by others (mode 0%o): unprivileged processes will not see Teleport accounts",
		    cache_dir(conf), (unsigned) (dst.st_mode & 07777));

	/* State first: a crash in between leaves an older public file, never accounts without
	 * state. */
	/* Stamped with the age of the oldest data in them, not the time of writing: the offline
	 * age limit counts from there. */
	r = -1;
	if (delta) {
		/* The watcher's save: the blobs that changed, as state.delta (docs/cache-format.md);
		 * over the limit, without a key index or with no state.db yet: in full below. */
		struct tu_snapshot_delta_stats ds;
		struct tu_err de;

		tu_err_clear(&de);
		r = tu_snapshot_write_blobs_delta(state, 0600, bl.b, bl.n, as_of_usec, 0, &ds, &de);
		st.state_changes = ds.n_records + ds.n_hidden;
		if (r >= 0) {
			st.state_delta = true;
			st.state_bytes = ds.bytes;
		} else if (r == -ENOMEM) {
			r = tu_err_set(reterr, r, "out of memory");
			goto out;
		} else
			tu_log(r == -E2BIG || r == -ENOENT ? LOG_DEBUG : LOG_NOTICE,
			       "cache: writing state.db in full, not as a delta: %s", de.msg);
	}
	if (r < 0) {
		_cleanup_free_ void *data = NULL;
		size_t size = 0;

		r = tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, bl.b, bl.n,
					    next_generation(state), as_of_usec, &data, &size, reterr);
		if (r >= 0)
			r = tu_snapshot_replace_file(state, 0600, data, size, reterr);
		if (r < 0)
			goto out;
		st.state_bytes = size;
	}
	if (!state_only) {
		r = write_public(conf, pub, acc, as_of_usec, delta ? &st : NULL, reterr);
		if (r < 0)
			goto out;
		st.accounts_written = true;
		if (!delta)
			st.accounts_bytes = file_size(pub);
	}
	st.write_usec = (int64_t) (mono_usec() - t0);

	if (ret_counts)
		*ret_counts = (struct tu_cache_counts){
		    .n_users = d->n_users,
		    .n_roles = d->n_roles,
		    .n_locks = d->n_locks,
		    .n_accounts = acc->n_accounts,
		    .n_groups = acc->n_groups,
		    .n_skipped = acc->n_skipped,
		    .user_ca_known = dd.user_ca.known,
		    .user_ca_kept = dd.user_ca.known && !d->user_ca.known,
		    .n_user_ca_keys = dd.user_ca.keys.n,
		};
	if (ret_stats)
		*ret_stats = st;
	r = 0;
out:
	tu_user_ca_done(&carried);
	blobs_done(&bl);
	tu_accounts_done(&own);
	tu_cache_accounts_opts_done(&co);
	return r;
}

int tu_cache_save_prepared(const struct tu_conf *conf, const struct tu_dataset *d,
			   const struct tu_accounts *acc, const struct tu_cache_encoded *pre,
			   int64_t now_usec, bool delta, struct tu_cache_write_stats *ret_stats,
			   struct tu_err *reterr)
{
	return save_as_of(conf, NULL, d, NULL, now_usec, now_usec, acc == NULL, acc, pre, NULL,
			  ret_stats, delta, reterr);
}

int tu_cache_save_full(const struct tu_conf *conf, const char *etc_group_path,
		       const struct tu_dataset *d, const struct tu_host *h, int64_t now_usec,
		       struct tu_cache_counts *ret_counts, struct tu_err *reterr)
{
	return save_as_of(conf, etc_group_path, d, h, now_usec, now_usec, false, NULL, NULL, ret_counts,
			  NULL, false, reterr);
}

int tu_cache_save(const struct tu_conf *conf, const struct tu_dataset *d, const struct tu_host *h,
		  int64_t now_usec, struct tu_cache_counts *ret_counts, struct tu_err *reterr)
{
	return save_as_of(conf, NULL, d, h, now_usec, now_usec, false, NULL, NULL, ret_counts, NULL,
			  false, reterr);
}

int tu_cache_save_incremental(const struct tu_conf *conf, const struct tu_dataset *d,
			      const struct tu_host *h, int64_t now_usec,
			      struct tu_cache_counts *ret_counts, struct tu_cache_write_stats *ret_stats,
			      struct tu_err *reterr)
{
	return save_as_of(conf, NULL, d, h, now_usec, now_usec, h == NULL, NULL, NULL, ret_counts,
			  ret_stats, true, reterr);
}

int tu_cache_save_state_only(const struct tu_conf *conf, const struct tu_dataset *d,
			     int64_t now_usec, struct tu_err *reterr)
{
	return save_as_of(conf, NULL, d, NULL, now_usec, now_usec, true, NULL, NULL, NULL, NULL, false,
			  reterr);
}

int tu_cache_save_merged(const struct tu_conf *conf, const struct tu_dataset *d,
			 const struct tu_host *h, int64_t now_usec, int64_t as_of_usec,
			 struct tu_cache_counts *ret_counts, struct tu_err *reterr)
{
	return save_as_of(conf, NULL, d, h, now_usec, as_of_usec < now_usec ? as_of_usec : now_usec,
			  false, NULL, NULL, ret_counts, NULL, false, reterr);
}

/* ---- reading the private state ------------------------------------------------------------ */

/* A read-only mapping of a trusted private file. */
struct mapping {
	void *p;
	size_t size;
	void *dp; /* the delta (state.delta) read with it, or NULL */
	size_t dsize;
};

static void mapping_done(struct mapping *m)
{
	if (m->p && m->p != MAP_FAILED)
		(void) munmap(m->p, m->size);
	if (m->dp && m->dp != MAP_FAILED)
		(void) munmap(m->dp, m->dsize);
	*m = (struct mapping){0};
}

static int map_trusted(const char *path, struct mapping *ret, struct tu_err *reterr);

/*
 * Maps the state file at path and opens it with flags, then its delta
 * (state.delta, the same trust rule) when one applies to it
 * (docs/cache-format.md "Delta files"): a stale delta is ignored, one for a
 * newer base means the base was replaced meanwhile (map both again, 4
 * attempts), an unreadable one fails the open.  *m holds both mappings.
 * Errors: those of map_trusted and tu_snapshot_open_buffer, -ESTALE.
 */
static int open_state_file(const char *path, unsigned flags, struct mapping *m,
			   struct tu_snapshot **ret_s, struct tu_err *e)
{
	char dpath[PATH_MAX];

	for (int attempt = 0; attempt < 4; attempt++) {
		struct mapping d = {0};
		struct tu_snapshot *s = NULL;
		int r = map_trusted(path, m, e);

		if (r >= 0)
			r = tu_snapshot_open_buffer(m->p, m->size, TU_SNAPSHOT_KIND_STATE, flags, &s, e);
		if (r < 0)
			return r;
		r = tu_snapshot_delta_path(path, dpath, sizeof(dpath));
		if (r < 0) {
			/* -ENOMEM (realpath) stays -ENOMEM: test-accounts-oom */
			tu_snapshot_close(s);
			mapping_done(m);
			return tu_err_set(e, r, "%s: the delta's path: %s", path, strerror(-r));
		}
		r = map_trusted(dpath, &d, e);
		if (r == -ENOENT) {
			tu_err_clear(e);
			*ret_s = s;
			return 0;
		}
		if (r >= 0)
			r = tu_snapshot_attach_delta_buffer(s, d.p, d.size, flags, e);
		if (r > 0) {
			m->dp = d.p, m->dsize = d.size;
			*ret_s = s;
			return 0;
		}
		mapping_done(&d);
		if (r == 0) {
			*ret_s = s;
			return 0;
		}
		tu_snapshot_close(s);
		mapping_done(m);
		if (r != -EAGAIN) {
			tu_err_prefix(e, "%s", dpath);
			return r;
		}
	}
	return tu_err_set(e, -ESTALE, "%s: its delta keeps naming a newer state file", path);
}

/*
 * Opens path without following symlinks and applies the trust rule on the
 * same fd that is then mapped (no window between check and read): a regular
 * file, owned by root (or by our euid when we are not root), no permission
 * bits for group or others.
 */
static int map_trusted(const char *path, struct mapping *ret, struct tu_err *reterr)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			return tu_err_set(reterr, -EPERM, "refusing %s: is a symbolic link", path);
		return tu_err_set(reterr, -e, "%s: %s", path, strerror(e));
	}
	if (fstat(fd, &st) < 0)
		return tu_err_set(reterr, -errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return tu_err_set(reterr, -EPERM, "refusing %s: not a regular file", path);
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return tu_err_set(reterr, -EPERM, "refusing %s: owned by uid %u, must be root",
				  path, (unsigned) st.st_uid);
	if (st.st_mode & 077)
		return tu_err_set(
		    reterr, -EACCES,
		    "refusing %s: accessible by group or others (mode 0%o), must be 0600", path,
		    (unsigned) (st.st_mode & 07777));
	if (st.st_size <= 0 || (uint64_t) st.st_size > TU_SNAPSHOT_MAX_SIZE)
		return tu_err_set(reterr, -EBADMSG, "%s: size %lld is not a valid snapshot size",
				  path, (long long) st.st_size);
	void *p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return tu_err_set(reterr, -errno, "%s: mmap: %s", path, strerror(errno));
	ret->p = p;
	ret->size = (size_t) st.st_size;
	return 0;
}

/*
 * A full read checks the key index against the records (a decision through the index relies
 * on it, tu_cache_load_state_named): a named user or role is the blob its name finds, or its
 * name is not unique.  data NULL: not checked.  Files without the index pass.
 */
static int key_agrees(const struct tu_snapshot *s, uint32_t type, const char *name,
		      const void *data, struct tu_err *reterr)
{
	const void *found;
	size_t size;
	int r;

	if (!data || !name || !name[0])
		return 0;
	r = tu_snapshot_find_blob(s, type, name, strlen(name), &found, &size, reterr);
	if (r == -EOPNOTSUPP || r == -ENOTUNIQ || (r == 0 && found == data))
		return 0;
	if (r == -EBADMSG)
		return r;
	return tu_err_set(reterr, -EBADMSG, "the key index does not find the %s named '%.64s'",
			  type == STATE_BLOB_USER ? "user" : "role", name);
}

static int parse_state(const struct tu_snapshot *s, tu_cache_user_filter_fn filter, void *userdata,
		       struct tu_dataset *ret, struct tu_err *reterr)
{
	struct tu_dataset d = {0};
	size_t n = tu_snapshot_blob_count(s), nu = 0, nr = 0, nl = 0;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t type;
		const void *data;
		size_t size;
		if (tu_snapshot_blob_at(s, i, &type, &data, &size) < 0)
			return tu_err_set(reterr, -EBADMSG, "record %zu unreadable", i);
		nu += type == STATE_BLOB_USER;
		nr += type == STATE_BLOB_ROLE;
		nl += type == STATE_BLOB_LOCK;
	}
	/* With a filter (the watch-fed fast path) a few users are parsed: the array grows
	 * (pass 3) instead of zeroing one entry per user of the file (12 MB at 100k users). */
	size_t users_cap = filter ? (nu < 8 ? nu : 8) : nu;
	d.users = calloc(users_cap ? users_cap : 1, sizeof(*d.users));
	d.roles = calloc(nr ? nr : 1, sizeof(*d.roles));
	d.locks = calloc(nl ? nl : 1, sizeof(*d.locks));
	if (!d.users || !d.roles || !d.locks) {
		tu_dataset_done(&d);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; r >= 0 && i < n; i++) {
		uint32_t type;
		const void *data;
		size_t size;
		if (tu_snapshot_blob_at(s, i, &type, &data, &size) < 0) {
			r = tu_err_set(reterr, -EBADMSG, "record %zu unreadable", i);
			break;
		}
		/* model.c wants a const uint8_t *: the mapping is read-only and stays until we
		 * return. */
		switch (type) {
		case STATE_BLOB_USER:
			if (filter)
				break; /* after everything else, below */
			r = tu_model_parse_user(data, size, &d.users[d.n_users], reterr);
			if (r >= 0)
				r = key_agrees(s, type, d.users[d.n_users++].name, data, reterr);
			break;
		case STATE_BLOB_ROLE:
			r = tu_model_parse_role(data, size, &d.roles[d.n_roles], reterr);
			if (r >= 0)
				r = key_agrees(s, type, d.roles[d.n_roles++].name, filter ? NULL : data,
					       reterr);
			break;
		case STATE_BLOB_LOCK:
			r = tu_model_parse_lock(data, size, &d.locks[d.n_locks], reterr);
			if (r >= 0)
				d.n_locks++;
			break;
		case STATE_BLOB_LEFT_OUT:
			r = left_out_parse(data, size, &d.n_users_left_out, &d.n_roles_left_out);
			if (r < 0)
				tu_err_set(reterr, r, "left-out counts of %zu bytes, expected 16", size);
			break;
		case STATE_BLOB_AUTH_PREF:
			if (d.auth_pref.known) {
				r = tu_err_set(reterr, -EBADMSG, "a second auth preference");
				break;
			}
			r = tu_model_parse_auth_pref(data, size, &d.auth_pref, reterr);
			break;
		case STATE_BLOB_USER_CA:
			if (d.user_ca.known) {
				r = tu_err_set(reterr, -EBADMSG, "a second user CA");
				break;
			}
			r = tu_model_parse_user_ca(data, size, &d.user_ca, reterr);
			break;
		default:
			break; /* a newer writer's extra data */
		}
		if (r < 0 && r != -ENOMEM) {
			tu_err_prefix(reterr, "record %zu", i);
			r = -EBADMSG;
		}
	}
	/* The users the filter wants, judged on their serialized bytes with the roles, locks
	 * and settings above already parsed. */
	for (size_t i = 0; filter && r >= 0 && i < n; i++) {
		uint32_t type;
		const void *data;
		size_t size;
		if (tu_snapshot_blob_at(s, i, &type, &data, &size) < 0) {
			r = tu_err_set(reterr, -EBADMSG, "record %zu unreadable", i);
			break;
		}
		if (type != STATE_BLOB_USER || !filter(&d, data, size, userdata))
			continue;
		if (d.n_users == users_cap) {
			size_t cap = users_cap ? users_cap * 2 : 8;
			struct tu_user *u = d.n_users < nu ? reallocarray(d.users, cap, sizeof(*u)) : NULL;
			if (!u) {
				r = d.n_users < nu ? tu_err_set(reterr, -ENOMEM, "out of memory")
						   : tu_err_set(reterr, -EBADMSG, "record %zu: more users than counted", i);
				break;
			}
			memset(u + users_cap, 0, (cap - users_cap) * sizeof(*u));
			d.users = u;
			users_cap = cap;
		}
		r = tu_model_parse_user(data, size, &d.users[d.n_users], reterr);
		if (r >= 0)
			d.n_users++;
		else if (r != -ENOMEM) {
			tu_err_prefix(reterr, "record %zu", i);
			r = -EBADMSG;
		}
	}
	if (r < 0) {
		tu_dataset_done(&d);
		if (r == -ENOMEM)
			return tu_err_set(reterr, r, "out of memory");
		return r;
	}
	*ret = d;
	return 0;
}

int tu_cache_parse_state(const void *data, size_t size, struct tu_dataset *ret,
			 int64_t *ret_created_usec, struct tu_err *reterr)
{
	struct tu_snapshot *s = NULL;
	struct tu_dataset d;
	int r;

	r = tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_STATE, TU_SNAPSHOT_CHECK_RECORDS,
				    &s, reterr);
	if (r < 0)
		return r == -ENOMEM ? r : -EBADMSG;
	r = parse_state(s, NULL, NULL, &d, reterr);
	if (r >= 0) {
		if (ret_created_usec)
			*ret_created_usec = tu_snapshot_created_usec(s);
		*ret = d;
	}
	tu_snapshot_close(s);
	return r;
}

int tu_cache_load_state(const struct tu_conf *conf, int64_t now_usec, uint64_t max_age_usec,
			struct tu_dataset *ret, int64_t *ret_created_usec, struct tu_err *reterr)
{
	return tu_cache_load_state_filtered(conf, now_usec, max_age_usec, NULL, NULL, ret,
					    ret_created_usec, reterr);
}

/*
 * Maps and opens the private state for a decision: trust rule, header, age.  On success *m
 * and *ret_s are set (the caller closes both).  Logs a corrupt file; errors as
 * tu_cache_load_state, reason in e.
 */
static int open_state(const struct tu_conf *conf, int64_t now_usec, uint64_t max_age_usec,
		      unsigned flags, char *path, size_t path_size, struct mapping *m,
		      struct tu_snapshot **ret_s, int64_t *ret_created, struct tu_err *e)
{
	char why[600];
	int64_t created;
	int r;

	r = path_or_err(conf, TU_CACHE_STATE_FILE, path, path_size, e);
	if (r < 0)
		return r;
	if (max_age_usec == 0)
		max_age_usec = conf->offline_max_age_usec;

	r = check_dir(cache_dir(conf), e);
	if (r == -ENOENT)
		r = tu_err_set(e, -ENOENT, "%s: no such file or directory", path);
	if (r < 0)
		return r;
	/* The header first: a stale file is refused before its records are parsed. */
	r = open_state_file(path, flags, m, ret_s, e);
	if (r < 0) {
		if (r == -EBADMSG || r == -EINVAL) {
			tu_err_prefix(e, "%s", path);
			tu_log(LOG_WARNING, "cache: corrupt or foreign state file, ignoring: %s",
			       tu_err_format(e, why, sizeof(why)));
			r = -EBADMSG;
		}
		return r;
	}
	created = tu_snapshot_created_usec(*ret_s);
	if (created > now_usec && created - now_usec > FUTURE_SLACK_USEC)
		return tu_err_set(e, -ESTALE,
				  "%s: written %lld s in the future (clock skew?), not trusted", path,
				  (long long) ((created - now_usec) / 1000000));
	if (created < now_usec && (uint64_t) (now_usec - created) > max_age_usec)
		return tu_err_set(
		    e, -ESTALE, "%s: last sync %lld s ago, older than cache.offline_max_age (%llu s)",
		    path, (long long) ((now_usec - created) / 1000000),
		    (unsigned long long) (max_age_usec / 1000000));
	*ret_created = created;
	return 0;
}

int tu_cache_load_state_filtered(const struct tu_conf *conf, int64_t now_usec,
				 uint64_t max_age_usec, tu_cache_user_filter_fn filter,
				 void *userdata, struct tu_dataset *ret, int64_t *ret_created_usec,
				 struct tu_err *reterr)
{
	char path[PATH_MAX], why[600];
	struct mapping m = {0};
	struct tu_snapshot *s = NULL;
	struct tu_dataset d;
	struct tu_err e; /* our own, so the log line has the reason even when reterr is NULL */
	int64_t created = 0;
	int r;

	tu_err_clear(&e);
	/* With a filter (a login decision) the payload is checksummed chunk by chunk as records
	 * are read, once, instead of whole at open and again with every record walked. */
	r = open_state(conf, now_usec, max_age_usec, filter ? TU_SNAPSHOT_LAZY : 0, path,
		       sizeof(path), &m, &s, &created, &e);
	if (r < 0)
		goto out;
	if (filter) {
		r = parse_state(s, filter, userdata, &d, &e);
		if (r < 0 && r != -ENOMEM)
			r = -EBADMSG;
	} else if (tu_snapshot_has_delta(s)) {
		r = parse_state(s, NULL, NULL, &d, &e);
		if (r < 0 && r != -ENOMEM)
			r = -EBADMSG;
	} else
		r = tu_cache_parse_state(m.p, m.size, &d, NULL, &e);
	if (r < 0) {
		if (r == -EBADMSG) {
			tu_err_prefix(&e, "%s", path);
			tu_log(LOG_WARNING, "cache: corrupt state file, ignoring: %s",
			       tu_err_format(&e, why, sizeof(why)));
		}
		goto out;
	}
	*ret = d;
	if (ret_created_usec)
		*ret_created_usec = created;
	r = 0;
out:
	if (r < 0 && reterr)
		*reterr = e;
	tu_snapshot_close(s);
	mapping_done(&m);
	return r;
}

/* ---- a decision's records through the key index ----------------------------------------- */

/* Every blob of one type through its range (LAZY: the type of each is checked here). */
static int parse_range(const struct tu_snapshot *s, uint32_t type, size_t *ret_first,
		       size_t *ret_count, struct tu_err *reterr)
{
	int r = tu_snapshot_blob_type_range(s, type, ret_first, ret_count, reterr);

	if (r < 0)
		return r;
	for (size_t i = *ret_first; i < *ret_first + *ret_count; i++) {
		uint32_t t;
		const void *data;
		size_t size;

		if (tu_snapshot_blob_at(s, i, &t, &data, &size) < 0 || t != type)
			return tu_err_set(reterr, -EBADMSG, "record %zu unreadable or not of type %u",
					  i, type);
	}
	return 0;
}

/* The blob of type keyed name: parsed into *ret by parse and *n incremented (0), absent (0,
 * *n as it was), -EOPNOTSUPP when the key is not unique (the caller scans), -EBADMSG,
 * -ENOMEM. */
static int parse_named(const struct tu_snapshot *s, uint32_t type, const char *name,
		       int (*parse)(const uint8_t *, size_t, void *, struct tu_err *),
		       const char *(*name_of)(const void *), void *ret, size_t *n,
		       struct tu_err *reterr)
{
	const void *data;
	size_t size;
	int r = tu_snapshot_find_blob(s, type, name, strlen(name), &data, &size, reterr);

	if (r == -ENOENT)
		return 0;
	if (r == -ENOTUNIQ)
		return -EOPNOTSUPP;
	if (r < 0)
		return r;
	r = parse(data, size, ret, reterr);
	if (r < 0)
		return r;
	(*n)++;
	/* The index must name the record it points at: a decision relies on it. */
	if (!name_of(ret) || strcmp(name_of(ret), name) != 0)
		return tu_err_set(reterr, -EBADMSG, "the key index names '%.64s' for a record named '%.64s'",
				  name, name_of(ret) ? name_of(ret) : "");
	return 0;
}

static int parse_user_v(const uint8_t *p, size_t n, void *ret, struct tu_err *e)
{
	return tu_model_parse_user(p, n, ret, e);
}

static int parse_role_v(const uint8_t *p, size_t n, void *ret, struct tu_err *e)
{
	return tu_model_parse_role(p, n, ret, e);
}

static const char *user_name(const void *u)
{
	return ((const struct tu_user *) u)->name;
}

static const char *role_name(const void *r)
{
	return ((const struct tu_role *) r)->name;
}

static bool have_role(const struct tu_dataset *d, const char *name)
{
	for (size_t i = 0; i < d->n_roles; i++)
		if (d->roles[i].name && strcmp(d->roles[i].name, name) == 0)
			return true;
	return false;
}

static int parse_state_named(const struct tu_snapshot *s, const char *const *names, size_t n_names,
			     struct tu_dataset *ret, struct tu_err *reterr)
{
	struct tu_dataset d = {0};
	size_t lf, ln, af, an, cf, cn, role_cap = 0;
	int r;

	if ((r = parse_range(s, STATE_BLOB_LOCK, &lf, &ln, reterr)) < 0 ||
	    (r = parse_range(s, STATE_BLOB_AUTH_PREF, &af, &an, reterr)) < 0 ||
	    (r = parse_range(s, STATE_BLOB_USER_CA, &cf, &cn, reterr)) < 0)
		return r;
	if (an > 1 || cn > 1)
		return tu_err_set(reterr, -EBADMSG, "a second %s", an > 1 ? "auth preference" : "user CA");
	d.users = calloc(n_names ? n_names : 1, sizeof(*d.users));
	d.locks = calloc(ln ? ln : 1, sizeof(*d.locks));
	if (!d.users || !d.locks) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = lf; i < lf + ln; i++) {
		uint32_t t;
		const void *data;
		size_t size;

		if (tu_snapshot_blob_at(s, i, &t, &data, &size) < 0) {
			r = tu_err_set(reterr, -EBADMSG, "record %zu unreadable", i);
			goto fail;
		}
		r = tu_model_parse_lock(data, size, &d.locks[d.n_locks], reterr);
		if (r < 0)
			goto fail;
		d.n_locks++;
	}
	for (size_t i = af; i < af + an; i++) {
		uint32_t t;
		const void *data;
		size_t size;

		r = tu_snapshot_blob_at(s, i, &t, &data, &size) < 0
			? tu_err_set(reterr, -EBADMSG, "record %zu unreadable", i)
			: tu_model_parse_auth_pref(data, size, &d.auth_pref, reterr);
		if (r < 0)
			goto fail;
	}
	for (size_t i = cf; i < cf + cn; i++) {
		uint32_t t;
		const void *data;
		size_t size;

		r = tu_snapshot_blob_at(s, i, &t, &data, &size) < 0
			? tu_err_set(reterr, -EBADMSG, "record %zu unreadable", i)
			: tu_model_parse_user_ca(data, size, &d.user_ca, reterr);
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < n_names; i++) {
		bool dup = false;

		for (size_t j = 0; j < i; j++)
			dup = dup || strcmp(names[j], names[i]) == 0;
		if (dup || !names[i][0])
			continue;
		r = parse_named(s, STATE_BLOB_USER, names[i], parse_user_v, user_name,
				&d.users[d.n_users], &d.n_users, reterr);
		if (r < 0)
			goto fail;
	}
	/* Their roles, by name (a role that is not there stays missing, as in a full read). */
	for (size_t i = 0; i < d.n_users; i++)
		for (size_t j = 0; j < d.users[i].roles.n; j++) {
			const char *name = d.users[i].roles.v[j];

			if (!name || !name[0] || have_role(&d, name))
				continue;
			if (d.n_roles == role_cap) {
				size_t cap = role_cap ? 2 * role_cap : 8;
				struct tu_role *nr = reallocarray(d.roles, cap, sizeof(*nr));

				if (!nr) {
					r = -ENOMEM;
					goto fail;
				}
				memset(nr + role_cap, 0, (cap - role_cap) * sizeof(*nr));
				d.roles = nr;
				role_cap = cap;
			}
			r = parse_named(s, STATE_BLOB_ROLE, name, parse_role_v, role_name,
					&d.roles[d.n_roles], &d.n_roles, reterr);
			if (r < 0)
				goto fail;
		}
	if (!d.roles && !(d.roles = calloc(1, sizeof(*d.roles)))) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = d;
	return 0;
fail:
	tu_dataset_done(&d);
	if (r == -ENOMEM)
		return tu_err_set(reterr, r, "out of memory");
	if (r == -EOPNOTSUPP)
		return r;
	return -EBADMSG;
}

int tu_cache_load_state_named(const struct tu_conf *conf, int64_t now_usec, uint64_t max_age_usec,
			      const char *const *names, size_t n_names, struct tu_dataset *ret,
			      int64_t *ret_created_usec, struct tu_err *reterr)
{
	char path[PATH_MAX], why[600];
	struct mapping m = {0};
	struct tu_snapshot *s = NULL;
	struct tu_dataset d;
	struct tu_err e;
	int64_t created = 0;
	int r;

	tu_err_clear(&e);
	/* LAZY: only the chunks the lookups below touch are checksummed, and each lookup checks
	 * the bounds of what it reads (docs/cache-format.md). */
	r = open_state(conf, now_usec, max_age_usec, TU_SNAPSHOT_LAZY, path, sizeof(path), &m, &s,
		       &created, &e);
	if (r < 0)
		goto out;
	r = parse_state_named(s, names, n_names, &d, &e);
	if (r < 0) {
		if (r == -EBADMSG) {
			tu_err_prefix(&e, "%s", path);
			tu_log(LOG_WARNING, "cache: corrupt state file, ignoring: %s",
			       tu_err_format(&e, why, sizeof(why)));
		}
		goto out;
	}
	*ret = d;
	if (ret_created_usec)
		*ret_created_usec = created;
	r = 0;
out:
	if (r < 0 && reterr)
		*reterr = e;
	tu_snapshot_close(s);
	mapping_done(&m);
	return r;
}

/* ---- the user CA ---------------------------------------------------------------------------- */

/*
 * Only the user CA of the state file at path (in dir), trusted like any state
 * file; max_age_usec 0: any age.  ret->known false when the file has none.
 */
static int state_file_user_ca(const char *dir, const char *path, int64_t now_usec, uint64_t max_age_usec,
			      struct tu_user_ca *ret, struct tu_err *reterr)
{
	struct mapping m = {0};
	struct tu_snapshot *s = NULL;
	struct tu_user_ca ca = {0};
	int r;

	r = check_dir(dir, reterr);
	if (r >= 0)
		/* LAZY: only the chunks read below are checksummed (the CA's, through the key
		 * index's type ranges when the file has them: every state write runs this); the
		 * delta, when there is one, is read with it. */
		r = open_state_file(path, TU_SNAPSHOT_LAZY, &m, &s, reterr);
	if (r >= 0 && max_age_usec) {
		int64_t created = tu_snapshot_created_usec(s);
		if ((created > now_usec && created - now_usec > FUTURE_SLACK_USEC) ||
		    (created < now_usec && (uint64_t) (now_usec - created) > max_age_usec))
			r = tu_err_set(reterr, -ESTALE, "%s: too old or from the future for its user CA", path);
	}
	size_t first = 0, count = s ? tu_snapshot_blob_count(s) : 0;
	if (r >= 0 && s) {
		int k = tu_snapshot_blob_type_range(s, STATE_BLOB_USER_CA, &first, &count, reterr);
		if (k == -EOPNOTSUPP) /* no index: every blob */
			first = 0, count = tu_snapshot_blob_count(s);
		else if (k < 0)
			r = k;
	}
	for (size_t i = first; r >= 0 && s && i < first + count; i++) {
		uint32_t type;
		const void *data;
		size_t size;
		if (tu_snapshot_blob_at(s, i, &type, &data, &size) < 0) {
			r = tu_err_set(reterr, -EBADMSG, "%s: record %zu unreadable", path, i);
			break;
		}
		if (type != STATE_BLOB_USER_CA)
			continue;
		if (ca.known) {
			r = tu_err_set(reterr, -EBADMSG, "%s: a second user CA", path);
			break;
		}
		r = tu_model_parse_user_ca(data, size, &ca, reterr);
	}
	tu_snapshot_close(s);
	mapping_done(&m);
	if (r < 0) {
		tu_user_ca_done(&ca);
		return r;
	}
	*ret = ca;
	return 0;
}

int tu_cache_load_user_ca(const struct tu_conf *conf, int64_t now_usec, struct tu_user_ca *ret,
			  struct tu_err *reterr)
{
	char path[PATH_MAX];
	int r = path_or_err(conf, TU_CACHE_STATE_FILE, path, sizeof(path), reterr);

	if (r < 0)
		return r;
	return state_file_user_ca(cache_dir(conf), path, now_usec, conf->offline_max_age_usec, ret, reterr);
}

/* ---- the link NSS follows --------------------------------------------------------------- */

/* a and b name the same directory string, ignoring trailing slashes. */
static bool same_dir(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

int tu_cache_link_default(const struct tu_conf *conf, struct tu_err *reterr)
{
	char target[PATH_MAX], link[PATH_MAX], tmp[PATH_MAX + 32];
	struct stat st;
	int r;

	if (same_dir(cache_dir(conf), TU_SNAPSHOT_DEFAULT_DIR))
		return 0;
	r = tu_cache_may_write(reterr);
	if (r < 0)
		return r;
	r = path_or_err(conf, TU_CACHE_PUBLIC_FILE, target, sizeof(target), reterr);
	if (r < 0)
		return r;
	if (snprintf(link, sizeof(link), "%s/%s", TU_SNAPSHOT_DEFAULT_DIR, TU_CACHE_PUBLIC_FILE) >=
	    (int) sizeof(link))
		return tu_err_set(reterr, -ENAMETOOLONG, "%s: path too long",
				  TU_SNAPSHOT_DEFAULT_DIR);

	if (lstat(link, &st) == 0) {
		if (!S_ISLNK(st.st_mode))
			return tu_err_set(reterr, -EEXIST,
					  "%s exists and is not a symbolic link, leaving it alone",
					  link);
		char cur[PATH_MAX];
		ssize_t n = readlink(link, cur, sizeof(cur) - 1);
		if (n >= 0) {
			cur[n] = '\0';
			if (strcmp(cur, target) == 0)
				return 0;
		}
	} else if (errno != ENOENT)
		return tu_err_set(reterr, -errno, "%s: %s", link, strerror(errno));

	r = tu_fs_mkdir_p(TU_SNAPSHOT_DEFAULT_DIR, 0755, reterr);
	if (r < 0)
		return r;
	/* A new link under a temporary name, renamed over the old one: readers see one or the
	 * other. */
	snprintf(tmp, sizeof(tmp), "%s.link-%ld", link, (long) getpid());
	(void) unlink(tmp);
	if (symlink(target, tmp) < 0)
		return tu_err_set(reterr, -errno, "creating %s: %s", tmp, strerror(errno));
	if (rename(tmp, link) < 0) {
		r = -errno;
		(void) unlink(tmp);
		return tu_err_set(reterr, r, "renaming %s to %s: %s", tmp, link, strerror(-r));
	}
	return 0;
}

/* ---- the refresh lock ---------------------------------------------------------------------- */

#define LOCK_POLL_USEC 20000

uint64_t tu_cache_lock_budget(const struct tu_conf *conf)
{
	/* Long enough for a name refresh (three RPCs) and a full one after it. */
	return 4 * (conf->connect_timeout_usec + conf->request_timeout_usec) + 5000000;
}

int tu_cache_check_lock_fd(int fd, const char *path, struct tu_err *reterr)
{
	struct stat st;

	/* Whoever owns the lock file can hold it for ever (every sync times out) or set its mtime
	 * (the time of the last online attempt) to stop online refreshes. */
	if (fstat(fd, &st) < 0)
		return tu_err_set(reterr, -errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return tu_err_set(reterr, -EPERM, "refusing lock file %s: not a regular file", path);
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return tu_err_set(reterr, -EPERM,
				  "refusing lock file %s: owned by uid %u, must be root's (remove it)",
				  path, (unsigned) st.st_uid);
	if (st.st_mode & 0022)
		return tu_err_set(reterr, -EACCES,
				  "refusing lock file %s: writable by group or others (mode 0%o)", path,
				  (unsigned) (st.st_mode & 07777));
	return 0;
}

/* Whether fd is still the file at path (cache clear may have removed it meanwhile). */
static bool still_linked(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

int tu_cache_lock(const struct tu_conf *conf, uint64_t budget_usec, int *ret_fd, bool *ret_waited,
		  struct tu_err *reterr)
{
	char path[PATH_MAX];
	bool waited = false;
	uint64_t spent = 0;
	int r;

	r = tu_cache_may_write(reterr);
	if (r < 0)
		return r;
	r = path_or_err(conf, TU_SNAPSHOT_ONLINE_LOCK_FILE, path, sizeof(path), reterr);
	if (r < 0)
		return r;
	r = tu_fs_mkdir_p(cache_dir(conf), 0755, reterr);
	if (r < 0) {
		tu_err_prefix(reterr, "cache.dir");
		return r;
	}
	r = check_dir(cache_dir(conf), reterr);
	if (r < 0)
		return r;
	for (;;) {
		_cleanup_close_ int fd =
		    open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);

		if (fd < 0) {
			if (errno == ELOOP)
				return tu_err_set(reterr, -EPERM,
						  "refusing lock file %s: is a symbolic link", path);
			return tu_err_set(reterr, -errno, "opening %s: %s", path, strerror(errno));
		}
		r = tu_cache_check_lock_fd(fd, path, reterr);
		if (r < 0)
			return r;
		for (;;) {
			if (flock(fd, LOCK_EX | LOCK_NB) == 0)
				break;
			if (errno != EWOULDBLOCK && errno != EINTR)
				return tu_err_set(reterr, -errno, "locking %s: %s", path,
						  strerror(errno));
			if (budget_usec == 0)
				return tu_err_set(reterr, -EWOULDBLOCK,
						  "%s is held by another refresh", path);
			if (spent >= budget_usec)
				return tu_err_set(
				    reterr, -ETIMEDOUT,
				    "%s still held by another refresh after %llu ms", path,
				    (unsigned long long) (budget_usec / 1000));
			waited = true;
			struct timespec ts = {.tv_nsec = LOCK_POLL_USEC * 1000};
			(void) nanosleep(&ts, NULL);
			spent += LOCK_POLL_USEC;
		}
		if (still_linked(fd, path)) {
			*ret_fd = TAKE_FD(fd);
			if (ret_waited)
				*ret_waited = waited;
			return 0;
		}
		/* Locked a file that `cache clear` removed meanwhile: lock the new one. */
	}
}

/* ---- clear and info ---------------------------------------------------------------------- */

int tu_cache_clear(const struct tu_conf *conf, struct tu_err *reterr)
{
	/* The public file goes last: until then NSS keeps serving consistent data.  The lock file
	 * goes too: its mtime is the last online attempt, and a cleared cache starts afresh; so
	 * does the remembered path to Auth (dial.memo: the next call discovers again), and the
	 * recorded host identity (watch.h TU_HOST_RECORD_FILE: the next sync records it again). */
	static const char *const files[] = {TU_CACHE_STATE_FILE, TU_SNAPSHOT_STATE_DELTA_FILE, "host.identity",
					    TU_CACHE_PUBLIC_FILE, TU_SNAPSHOT_PUBLIC_DELTA_FILE,
					    TU_SNAPSHOT_ONLINE_LOCK_FILE, TU_CACHE_DIAL_MEMO_FILE};
	char path[PATH_MAX], link[PATH_MAX], cur[PATH_MAX];
	int r;

	r = tu_cache_may_write(reterr);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		r = path_or_err(conf, files[i], path, sizeof(path), reterr);
		if (r < 0)
			return r;
		if (unlink(path) < 0 && errno != ENOENT)
			return tu_err_set(reterr, -errno, "removing %s: %s", path, strerror(errno));
	}
	/* The default dir's link, when it points at this cache (tu_cache_link_default). */
	r = path_or_err(conf, TU_CACHE_PUBLIC_FILE, path, sizeof(path), reterr);
	if (r < 0)
		return r;
	if (!same_dir(cache_dir(conf), TU_SNAPSHOT_DEFAULT_DIR) &&
	    snprintf(link, sizeof(link), "%s/%s", TU_SNAPSHOT_DEFAULT_DIR, TU_CACHE_PUBLIC_FILE) <
		(int) sizeof(link)) {
		ssize_t n = readlink(link, cur, sizeof(cur) - 1);
		if (n >= 0) {
			cur[n] = '\0';
			if (strcmp(cur, path) == 0 && unlink(link) < 0 && errno != ENOENT)
				return tu_err_set(reterr, -errno, "removing %s: %s", link,
						  strerror(errno));
		}
	}
	return 0;
}

int tu_cache_info(const struct tu_conf *conf, struct tu_cache_info *ret, struct tu_err *reterr)
{
	char pub[PATH_MAX], state[PATH_MAX];
	struct tu_cache_info info = {0};
	struct tu_snapshot *s = NULL;
	struct mapping m = {0};
	int r;

	r = path_or_err(conf, TU_CACHE_PUBLIC_FILE, pub, sizeof(pub), reterr);
	if (r < 0)
		return r;
	r = path_or_err(conf, TU_CACHE_STATE_FILE, state, sizeof(state), reterr);
	if (r < 0)
		return r;

	r = tu_snapshot_open(pub, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, NULL);
	if (r == -ENOMEM)
		return tu_err_set(reterr, r, "out of memory");
	if (r >= 0) {
		info.has_public = true;
		info.public_created_usec = tu_snapshot_created_usec(s);
		info.n_accounts = tu_snapshot_passwd_count(s);
		info.n_groups = tu_snapshot_group_count(s);
		s = tu_snapshot_close(s);
	} else if (r != -ENOENT) {
		info.has_public = true;
		info.public_error = r;
	}

	r = check_dir(cache_dir(conf), NULL);
	if (r >= 0)
		r = open_state_file(state, 0, &m, &s, NULL);
	if (r == -ENOMEM) {
		mapping_done(&m);
		return tu_err_set(reterr, r, "out of memory");
	}
	if (r >= 0) {
		info.has_state = true;
		info.state_created_usec = tu_snapshot_created_usec(s);
		for (size_t i = 0; i < tu_snapshot_blob_count(s); i++) {
			uint32_t type;
			const void *data;
			size_t size;
			if (tu_snapshot_blob_at(s, i, &type, &data, &size) < 0)
				continue;
			info.n_users += type == STATE_BLOB_USER;
			info.n_roles += type == STATE_BLOB_ROLE;
			info.n_locks += type == STATE_BLOB_LOCK;
			if (type == STATE_BLOB_LEFT_OUT)
				(void) left_out_parse(data, size, &info.n_users_left_out, &info.n_roles_left_out);
			if (type == STATE_BLOB_USER_CA && !info.has_user_ca) {
				struct tu_user_ca ca = {0};
				if (tu_model_parse_user_ca(data, size, &ca, NULL) >= 0) {
					info.has_user_ca = true;
					info.n_user_ca_keys = ca.keys.n;
				}
				tu_user_ca_done(&ca);
			}
		}
		tu_snapshot_close(s);
	} else if (r != -ENOENT) {
		info.has_state = true;
		info.state_error = r;
	}
	mapping_done(&m);
	*ret = info;
	return 0;
}
