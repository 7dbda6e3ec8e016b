/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache.h - the on-disk cache in cache.dir (SPEC §6).  Layer: libcore.
 *
 *   <cache.dir>/accounts.db  public snapshot, mode 0644: exactly what NSS
 *                            serves (passwd, group, initgroups); no secrets.
 *   <cache.dir>/state.db     private snapshot, mode 0600: the users, roles
 *                            and locks of the last sync (model.c encoding)
 *                            for offline PAM decisions.
 *
 * Both are written atomically (temp file, fsync, rename, directory fsync) in
 * the base snapshot format (base/snapshot.h); readers validate everything.
 * The private file is trusted only when it is a regular file owned by root
 * (or by the effective uid of an unprivileged caller, so tests can run) and
 * not accessible by group or others.
 *
 * Writers serialize on the refresh lock (tu_cache_lock: flock on
 * <cache.dir>/.online.lock): `sync`, the NSS online refresh and `cache
 * clear` hold it from before they read or fetch until after they wrote, so
 * the two files of one cache always come from the same writer and no writer
 * replaces data that another fetched after it; PAM saves only when it gets
 * the lock at once.  Readers never take it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts.h"
#include "model.h"
#include "rbac.h"

struct tu_conf;
struct tu_err;

#define TU_CACHE_PUBLIC_FILE "accounts.db"
#define TU_CACHE_STATE_FILE  "state.db"
#define TU_CACHE_DIAL_MEMO_FILE "dial.memo" /* the path to Auth that worked (dial/dial.h) */

/* What a save wrote (for `sync` output). */
struct tu_cache_counts {
	size_t n_users;
	size_t n_roles;
	size_t n_locks;
	size_t n_accounts;
	size_t n_groups;
	size_t n_skipped;
	bool user_ca_known;    /* the state holds Teleport's user CA (fetched now or kept) */
	bool user_ca_kept;     /* not fetched this time: the previous state's keys were kept */
	size_t n_user_ca_keys;
};

/*
 * Computes the accounts for h (accounts.h, with the config's accounts.* and
 * /etc/group read directly) from d at now_usec and writes both snapshots,
 * creating cache.dir (0755) when needed.  The state snapshot is written
 * first, so a crash between the two leaves the older public file (still
 * consistent with itself).  The caller holds the lock (tu_cache_lock) or
 * has no other writer (tests).  ret_counts may be NULL.
 * Errors: -EACCES/-EPERM (cannot create or write cache.dir, or
 * tu_cache_may_write refuses this process), -ENOMEM,
 * -EMSGSIZE (over the snapshot limits), other -errno from the file system;
 * detail (path) in reterr.
 */
int tu_cache_save(const struct tu_conf *conf, const struct tu_dataset *d, const struct tu_host *h,
		  int64_t now_usec, struct tu_cache_counts *ret_counts, struct tu_err *reterr);

/* What tu_cache_save_incremental (or tu_cache_save_prepared) wrote. */
struct tu_cache_write_stats {
	bool accounts_written;   /* false: state only (h NULL) */
	bool accounts_delta;     /* accounts.delta (else accounts.db in full) */
	size_t accounts_bytes;   /* bytes of the file written for the accounts */
	size_t accounts_changes; /* records written + names hidden in the delta (also when a full
				    write was chosen because it was over the limit) */
	bool state_delta;        /* state.delta (else state.db in full) */
	size_t state_bytes;      /* bytes of the file written for the state */
	size_t state_changes;    /* blobs written + keys hidden in the state delta */
	size_t encoded;          /* state.db records encoded by this save (the rest: the caller's) */
	int64_t compute_usec;    /* the accounts (0 when the caller gave them) */
	int64_t encode_usec;     /* state.db's records */
	int64_t write_usec;      /* building and writing the files (fsync, rename) */
};

/*
 * tu_cache_save for `teleport-unix watch`, one call per batch of events:
 * the same inputs and checks, but the accounts go to <cache.dir>/accounts.delta
 * when they differ from the current accounts.db in at most
 * tu_snapshot_delta_max_changes(records) records (max(256, n / 16)): one small
 * file instead of ~20 MB at 100k users (docs/cache-format.md "Delta files").
 * Otherwise (no accounts.db, or it cannot be read, or too many changes) it
 * writes accounts.db in full, which compacts: the old delta becomes stale.
 * The state goes to <cache.dir>/state.delta the same way (blobs identified by
 * type and key: users and roles by name; locks and the other keyless blobs as one
 * list per type), read with state.db by every reader (tu_cache_load_state*,
 * the user CA, status).  With h NULL only the state is written
 * (tu_cache_save_state_only).  ret_counts and ret_stats may be NULL.
 * Errors: as tu_cache_save.
 */
int tu_cache_save_incremental(const struct tu_conf *conf, const struct tu_dataset *d,
			      const struct tu_host *h, int64_t now_usec,
			      struct tu_cache_counts *ret_counts, struct tu_cache_write_stats *ret_stats,
			      struct tu_err *reterr);

/*
 * Only the private state snapshot, for a change that cannot change the
 * accounts (a lock, the auth preference: `teleport-unix watch`); accounts.db
 * is left as it is.  Same errors as tu_cache_save.
 */
int tu_cache_save_state_only(const struct tu_conf *conf, const struct tu_dataset *d, int64_t now_usec,
			     struct tu_err *reterr);

/* ---- for a writer that keeps its work between saves (`teleport-unix watch`) ---- */

struct tu_etcgroup;

/* The accounts options tu_cache_save uses: the config's accounts.* plus /etc/group
 * (etc_group_path, NULL = /etc/group; missing = none) and /etc/passwd's uids (unreadable =
 * none).  opts borrows the rest of the struct: release with tu_cache_accounts_opts_done.
 * Errors as tu_etcgroup_load, -ENOMEM. */
struct tu_cache_accounts_opts {
	struct tu_accounts_opts opts;
	struct tu_etcgroup *etc_group;
	struct tu_local_group *local_groups;
	uint32_t *local_uids;
};
int tu_cache_accounts_opts_load(const struct tu_conf *conf, const char *etc_group_path,
				struct tu_cache_accounts_opts *ret, struct tu_err *reterr);
void tu_cache_accounts_opts_done(struct tu_cache_accounts_opts *o);

/* One record of state.db encoded as the saves write it. */
struct tu_cache_blob {
	void *data; /* malloc'ed by the encoders below */
	size_t size;
};
/* The encoding of one user, role or lock record in state.db (what every save writes for it),
 * so a caller can keep it and re-encode only the records that changed.  -ENOMEM, -EMSGSIZE. */
int tu_cache_encode_user(const struct tu_user *u, struct tu_cache_blob *ret);
int tu_cache_encode_role(const struct tu_role *r, struct tu_cache_blob *ret);
int tu_cache_encode_lock(const struct tu_lock *l, struct tu_cache_blob *ret);

/* Records already encoded, parallel to d->users, d->roles, d->locks (each array may be
 * NULL; an entry with data NULL is encoded by the save).  Borrowed. */
struct tu_cache_encoded {
	const struct tu_cache_blob *users, *roles, *locks;
};

/*
 * tu_cache_save_incremental (delta true) or tu_cache_save (false) with the work done by the
 * caller; acc NULL: state.db only (tu_cache_save_state_only).  acc computed with
 * tu_cache_accounts_opts_load's options for the host (e.g. tu_accounts_compute_memo), pre (may
 * be NULL) the records the caller encoded with tu_cache_encode_*: they must be the encodings of
 * d's records as they are now.  Files, order, modes and errors as tu_cache_save.  ret_stats
 * may be NULL.
 */
int tu_cache_save_prepared(const struct tu_conf *conf, const struct tu_dataset *d,
			   const struct tu_accounts *acc, const struct tu_cache_encoded *pre,
			   int64_t now_usec, bool delta, struct tu_cache_write_stats *ret_stats,
			   struct tu_err *reterr);

/*
 * Same for a state merged from an older snapshot and a few fresh records
 * (the NSS name refresh, online.c): accounts are computed at now_usec, but
 * both snapshots are stamped as_of_usec (the older snapshot's creation time;
 * clamped to now_usec), so cache.offline_max_age keeps counting from the
 * last full sync and stale users stop being used while full syncs fail.
 */
int tu_cache_save_merged(const struct tu_conf *conf, const struct tu_dataset *d,
			 const struct tu_host *h, int64_t now_usec, int64_t as_of_usec,
			 struct tu_cache_counts *ret_counts, struct tu_err *reterr);

/*
 * Whether this process may write the cache: not in a setuid/setgid program
 * (AT_SECURE) and only when the real uid is the effective uid (root for a
 * root-owned cache.dir).  Every writer below checks it first (tu_cache_save*,
 * tu_cache_lock, tu_cache_clear, tu_cache_link_default), so PAM inside `su`
 * or a polkit helper decides from the cache but never writes it.
 * Errors: -EPERM with the reason in reterr.  Thread-safe.
 */
int tu_cache_may_write(struct tu_err *reterr);

/*
 * The trust rule for an open lock file: a regular file owned by root (or by
 * the euid of an unprivileged caller, for tests), not writable by group or
 * others.  -EPERM/-EACCES with the path and reason in reterr.
 */
int tu_cache_check_lock_fd(int fd, const char *path, struct tu_err *reterr);

/*
 * Same with /etc/group taken from etc_group_path (NULL = "/etc/group"); for
 * tests and for callers that already hold the accounts options.
 */
int tu_cache_save_full(const struct tu_conf *conf, const char *etc_group_path,
		       const struct tu_dataset *d, const struct tu_host *h, int64_t now_usec,
		       struct tu_cache_counts *ret_counts, struct tu_err *reterr);

/*
 * Loads the private state snapshot for an offline decision.  max_age_usec 0
 * means conf->offline_max_age_usec.  On success *ret is a new dataset
 * (release with tu_dataset_done) and *ret_created_usec (may be NULL) the
 * time of the sync that wrote it.  Outputs are untouched on failure.
 * Errors: -ENOENT (no state file), -ESTALE (older than max_age, or created
 * more than 5 minutes in the future), -EACCES/-EPERM (owner or mode
 * refused), -EBADMSG (corrupt or foreign file: logged, never a crash),
 * -ENOMEM.  Thread-safe.
 */
int tu_cache_load_state(const struct tu_conf *conf, int64_t now_usec, uint64_t max_age_usec,
			struct tu_dataset *ret, int64_t *ret_created_usec, struct tu_err *reterr);

/*
 * tu_cache_load_state, parsing only the users filter accepts: filter sees
 * the dataset with everything but the users already parsed (roles, locks,
 * auth preference, user CA) and one user's serialized record (types.UserV2
 * bytes); true parses it.  For a login decision that needs a few users of
 * many (decide.c); the filter must accept a superset of the users that can
 * matter.  Same errors as tu_cache_load_state.
 */
typedef bool (*tu_cache_user_filter_fn)(const struct tu_dataset *d, const void *user, size_t size,
					void *userdata);
int tu_cache_load_state_filtered(const struct tu_conf *conf, int64_t now_usec, uint64_t max_age_usec,
				 tu_cache_user_filter_fn filter, void *userdata, struct tu_dataset *ret,
				 int64_t *ret_created_usec, struct tu_err *reterr);

/*
 * The inputs of one login decision through the state file's key index (issue 13 item 6):
 * the users named in names (an absent one is simply not in *ret; duplicates and "" are
 * ignored), the roles those users hold (by name; an absent role stays absent), every lock,
 * the auth preference and the user CA; no other record is read.  The file is opened with
 * TU_SNAPSHOT_LAZY: only the 64 KiB chunks these lookups touch are checksummed, and each
 * lookup bounds-checks what it reads.  Same trust and age rules as tu_cache_load_state
 * (max_age_usec 0 = conf->offline_max_age_usec).  Errors as tu_cache_load_state, plus
 * -EOPNOTSUPP: the file has no key index (written by an older version) or a name is not
 * unique in it: the caller falls back to tu_cache_load_state_filtered.
 */
int tu_cache_load_state_named(const struct tu_conf *conf, int64_t now_usec, uint64_t max_age_usec,
			      const char *const *names, size_t n_names, struct tu_dataset *ret,
			      int64_t *ret_created_usec, struct tu_err *reterr);

/*
 * Validates and parses a private state snapshot held in memory (no trust or
 * age checks: tu_cache_load_state does those).  Same outputs and errors as
 * tu_cache_load_state minus -ENOENT/-ESTALE/-EACCES.  For tests and the
 * fuzzer (tests/fuzz/fuzz-state.c).  Thread-safe.
 */
int tu_cache_parse_state(const void *data, size_t size, struct tu_dataset *ret,
			 int64_t *ret_created_usec, struct tu_err *reterr);

/*
 * Only Teleport's user CA from the private state snapshot (same trust rule
 * and cache.offline_max_age as tu_cache_load_state, without parsing users,
 * roles and locks): for an online decision when Auth did not answer the CA.
 * ret->known false when the snapshot has none.  Errors as tu_cache_load_state.
 */
int tu_cache_load_user_ca(const struct tu_conf *conf, int64_t now_usec, struct tu_user_ca *ret,
			  struct tu_err *reterr);

/* Removes both snapshot files, the online lock file (so the next miss may go online), the path memo (dial.memo) and the
 * default dir's link when it points here; a missing file is fine.  The caller holds the lock
 * (tu_cache_lock); whoever waits for it meanwhile notices the file is gone and locks anew.
 * Errors: -EACCES/-EPERM, other -errno, with the path in reterr. */
int tu_cache_clear(const struct tu_conf *conf, struct tu_err *reterr);

/* For `status`: what is on disk.  Missing files are not errors (has_* false). */
struct tu_cache_info {
	bool has_public;
	int64_t public_created_usec;
	size_t n_accounts;
	size_t n_groups;
	int public_error; /* 0, or -errno why the public file is unusable (present but bad) */
	bool has_state;
	int64_t state_created_usec;
	size_t n_users;
	size_t n_roles;
	size_t n_locks;
	size_t n_users_left_out; /* left out of the last sync: their records cannot be used */
	size_t n_roles_left_out;
	int state_error; /* 0, or -errno (e.g. -EACCES when not readable by us, -EBADMSG) */
	bool has_user_ca;      /* the state holds Teleport's user CA */
	size_t n_user_ca_keys;
};

/* Fills *ret; fails only for -ENOMEM or an unusable cache.dir path. */
int tu_cache_info(const struct tu_conf *conf, struct tu_cache_info *ret, struct tu_err *reterr);

/*
 * NSS cannot read the YAML config: it reads TU_SNAPSHOT_DEFAULT_DIR
 * "/accounts.db" (or $TELEPORT_UNIX_CACHE_DIR).  When cache.dir is somewhere
 * else, this makes <default dir>/accounts.db a symlink to
 * <cache.dir>/accounts.db (replaced atomically; the default dir is created
 * 0755 when missing), so NSS finds the snapshot.  Nothing to do (0) when
 * cache.dir is the default.  A regular file at the link's place is left
 * alone (-EEXIST: someone else's cache).  Called by `sync` and the online
 * refresh after a successful save (not by tu_cache_save itself, so tests
 * writing to temporary directories do not touch the system directory).
 * Errors: -EEXIST, -errno from mkdir/symlink/rename, with the path in reterr.
 */
int tu_cache_link_default(const struct tu_conf *conf, struct tu_err *reterr);

/*
 * Takes the cache's refresh lock, creating cache.dir (0755) and the lock
 * file (0600) when needed; waits (polling) at most budget_usec, 0 = try
 * once.  Refuses (before creating anything) where tu_cache_may_write says
 * no, a cache.dir that group or others can write (sticky or not), and a
 * lock file that is not a regular file of root's (tu_cache_check_lock_fd).
 * On success *ret_fd holds the lock until closed, and *ret_waited
 * (may be NULL) tells whether another writer held it first (its result may
 * already answer the caller).  The lock file's mtime is the time of the last
 * online attempt (online.c), so this does not touch it.
 * Errors: -EWOULDBLOCK (busy, budget 0), -ETIMEDOUT (still busy after the
 * budget), -EPERM/-EACCES (refused as above), -errno from mkdir/open/flock;
 * detail (path) in reterr.
 */
int tu_cache_lock(const struct tu_conf *conf, uint64_t budget_usec, int *ret_fd, bool *ret_waited,
		  struct tu_err *reterr);

/* How long `sync` and `cache clear` wait for another writer: a refresh holds the lock for a few
 * RPCs, each bounded by the connect and request timeouts. */
uint64_t tu_cache_lock_budget(const struct tu_conf *conf);

/* Builds "<cache.dir>/<file>" into buf; -ENAMETOOLONG when it does not fit. */
int tu_cache_path(const struct tu_conf *conf, const char *file, char *buf, size_t size);
