/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot.h - the on-disk snapshot format: writer, validating reader and
 * lookups.  Layer: libcore/base (libc only; linked hidden into the NSS module
 * and exported from libteleport-unix).
 *
 * One container format (docs/cache-format.md, byte by byte) holds two kinds:
 *  - TU_SNAPSHOT_KIND_ACCOUNTS: the public accounts snapshot
 *    (<cache.dir>/accounts.db, mode 0644): passwd records, group records, a
 *    per-login list of supplementary gids (initgroups), hash indexes by login,
 *    uid, group name and gid, and name-sorted enumeration indexes;
 *  - any other kind (TU_SNAPSHOT_KIND_STATE for <cache.dir>/state.db, 0600):
 *    an ordered list of typed opaque blobs (e.g. model.c encodings).
 *
 * Files are never updated in place: the writers build the whole file in
 * memory and replace the target atomically (temp file in the same directory,
 * fsync, rename, directory fsync).  Readers map the file read-only, validate
 * the header, section table, checksum (CRC-32C) and indexes before use, and
 * every accessor bounds-checks the record it touches again, so a corrupt or
 * hostile file gives -EBADMSG, never a crash.  Integers are little-endian
 * and read through memcpy; mapped memory is never cast to a struct.
 *
 * Thread safety: writers share no state.  An open struct tu_snapshot is
 * immutable and may be read from any number of threads; closing it while
 * another thread uses it is the caller's problem.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tu_err;
struct tu_snapshot;

#define TU_SNAPSHOT_KIND_ACCOUNTS 1u /* public passwd/group/initgroups snapshot */
#define TU_SNAPSHOT_KIND_STATE    2u /* private blob snapshot (users, roles, locks) */
#define TU_SNAPSHOT_KIND_ACCOUNTS_DELTA 3u /* accounts.delta: changes to one accounts.db */
#define TU_SNAPSHOT_KIND_STATE_DELTA    4u /* state.delta: changes to one state.db */

/* File names inside cache.dir (the same as cache.h's TU_CACHE_*_FILE). */
#define TU_SNAPSHOT_PUBLIC_FILE      "accounts.db"
#define TU_SNAPSHOT_STATE_FILE       "state.db"
/* Delta overlays next to them (docs/cache-format.md "Delta files"): "<name>.db" -> "<name>.delta". */
#define TU_SNAPSHOT_PUBLIC_DELTA_FILE "accounts.delta"
#define TU_SNAPSHOT_STATE_DELTA_FILE  "state.delta"
/* The online refresh's lock file in cache.dir; its mtime is the last attempt (NSS skips the
 * dlopen while it is younger than the recorded negative TTL). */
#define TU_SNAPSHOT_ONLINE_LOCK_FILE ".online.lock"

/*
 * Where the NSS module looks for the public snapshot: TU_SNAPSHOT_DEFAULT_DIR
 * "/" TU_SNAPSHOT_PUBLIC_FILE, unless the environment variable
 * TU_SNAPSHOT_DIR_ENV (read with secure_getenv, so never in setuid programs)
 * names another directory.  NSS cannot parse YAML: when cache.dir is not the
 * default, the cache writer must make <default dir>/accounts.db a symlink to
 * <cache.dir>/accounts.db (docs/cache-format.md).
 */
#ifndef TU_LOCALSTATEDIR
#define TU_LOCALSTATEDIR "/var"
#endif
#define TU_SNAPSHOT_DEFAULT_DIR TU_LOCALSTATEDIR "/cache/teleport-unix"
#define TU_SNAPSHOT_DIR_ENV     "TELEPORT_UNIX_CACHE_DIR"

/* Limits (a file or input over any of them is refused with -EMSGSIZE when
 * writing, -EBADMSG when reading). */
#define TU_SNAPSHOT_MAX_SIZE     (1024u * 1024u * 1024u) /* whole file: 1 GiB */
#define TU_SNAPSHOT_MAX_RECORDS  (4u * 1024u * 1024u)    /* passwd, group or blob records */
#define TU_SNAPSHOT_MAX_NAME     255u                    /* login and group names, bytes */
#define TU_SNAPSHOT_MAX_FIELD    4095u                   /* gecos, home, shell, bytes */
#define TU_SNAPSHOT_MAX_MEMBERS  65535u                  /* members of one group */
#define TU_SNAPSHOT_MAX_GIDS     65535u                  /* supplementary gids of one login */
#define TU_SNAPSHOT_MAX_GR_BYTES (16u * 1024u * 1024u)   /* one group record */

/* ---- writing ---------------------------------------------------------- */

/* One passwd entry as the writer takes it (all strings borrowed, non-NULL). */
struct tu_pw_rec {
	const char *name;  /* login; 1..TU_SNAPSHOT_MAX_NAME bytes, no ':' '\n' ',' */
	const char *gecos; /* may be ""; no ':' or '\n' */
	const char *dir;   /* home */
	const char *shell;
	uid_t uid;
	gid_t gid;            /* primary gid */
	const uint32_t *gids; /* supplementary gids (initgroups); may be NULL when n_gids = 0 */
	size_t n_gids;
};

/* One group entry (strings borrowed, non-NULL). */
struct tu_gr_rec {
	const char *name;
	gid_t gid;
	const char *const *members; /* logins; may be NULL when n_members = 0 */
	size_t n_members;
};

/* One blob of a KIND_STATE (or other non-accounts) snapshot (data and key borrowed). */
struct tu_blob {
	uint32_t type;    /* caller-defined tag */
	const void *data; /* may be NULL when size = 0 */
	size_t size;
	const char *key;  /* NULL / key_len 0: not in the key index; any bytes, at most
			     TU_SNAPSHOT_MAX_KEY (the state keys users and roles by name) */
	size_t key_len;
};

#define TU_SNAPSHOT_MAX_KEY 65535u /* bytes of one blob key */

/*
 * Builds a complete accounts snapshot in memory (for tests and fuzz seeds;
 * tu_snapshot_write_accounts uses it).  The input order does not matter: the
 * file is the same for the same set of records.  Checks every record:
 * names non-empty, within limits, without ':', ',', '\n' or control
 * characters; no duplicate login, uid, group name or gid.
 * On success *ret_data (malloc'ed, caller frees) and *ret_size are set.
 * Errors: -EINVAL (bad or duplicate record, named in reterr), -EMSGSIZE (over
 * a limit), -ENOMEM.  Thread-safe.
 */
int tu_snapshot_build_accounts(const struct tu_pw_rec *pw, size_t n_pw, const struct tu_gr_rec *gr,
			       size_t n_gr, uint64_t generation, int64_t now_usec, void **ret_data,
			       size_t *ret_size, struct tu_err *reterr);

/*
 * What the NSS module needs from the config but cannot parse itself,
 * recorded in the accounts snapshot (optional section; absent = unknown).
 */
struct tu_snapshot_meta {
	uint64_t negative_ttl_usec; /* cache.negative_ttl: no online attempt while the snapshot is
				       younger */
};

/* Same as tu_snapshot_build_accounts / tu_snapshot_write_accounts, recording meta (may be NULL). */
int tu_snapshot_build_accounts_meta(const struct tu_pw_rec *pw, size_t n_pw,
				    const struct tu_gr_rec *gr, size_t n_gr,
				    const struct tu_snapshot_meta *meta, uint64_t generation,
				    int64_t now_usec, void **ret_data, size_t *ret_size,
				    struct tu_err *reterr);
int tu_snapshot_write_accounts_meta(const char *path, const struct tu_pw_rec *pw, size_t n_pw,
				    const struct tu_gr_rec *gr, size_t n_gr,
				    const struct tu_snapshot_meta *meta, uint64_t generation,
				    int64_t now_usec, struct tu_err *reterr);

/*
 * Builds the accounts snapshot and replaces path atomically with it, mode
 * 0644 (tu_fs_write_atomic: temp file in the same directory, fsync, rename,
 * fsync of the directory).  The directory must exist.
 * Errors: as tu_snapshot_build_accounts, plus -errno from the file system
 * (-EACCES, -ENOSPC, ...) with the path in reterr.  No temp file is left
 * behind on failure.
 */
int tu_snapshot_write_accounts(const char *path, const struct tu_pw_rec *pw, size_t n_pw,
			       const struct tu_gr_rec *gr, size_t n_gr, uint64_t generation,
			       int64_t now_usec, struct tu_err *reterr);

/*
 * Builds / writes a blob snapshot of the given kind (any value except
 * TU_SNAPSHOT_KIND_ACCOUNTS and 0).  Without keys, blobs keep their order.
 * When any blob has a key, the file gets a key index (docs/cache-format.md,
 * section BLOB_KEYS): blobs are then stored grouped by type in increasing
 * type order (keeping their order within a type), with each type's range
 * and a hash index on (type, key); a key may repeat (the lookup says so).
 * mode is the file mode (0600 for the private state).  Errors as above;
 * -EINVAL for a bad kind or a NULL key with a length, -EMSGSIZE for too
 * many or too large blobs, a key over TU_SNAPSHOT_MAX_KEY or more than 256
 * blob types with keys.
 */
int tu_snapshot_build_blobs(uint32_t kind, const struct tu_blob *blobs, size_t n_blobs,
			    uint64_t generation, int64_t now_usec, void **ret_data,
			    size_t *ret_size, struct tu_err *reterr);
int tu_snapshot_write_blobs(const char *path, mode_t mode, uint32_t kind,
			    const struct tu_blob *blobs, size_t n_blobs, uint64_t generation,
			    int64_t now_usec, struct tu_err *reterr);

/*
 * Writes size bytes to path atomically with the given mode (the writers use
 * it; same as fsutil.h's tu_fs_write_atomic).  Errors: -errno with the path
 * in reterr.
 */
int tu_snapshot_replace_file(const char *path, mode_t mode, const void *data, size_t size,
			     struct tu_err *reterr);

/* ---- delta files ------------------------------------------------------ */

/*
 * A delta file holds the records that changed since one base file (its
 * generation and header checksum), and the names hidden in that base
 * (changed or deleted).  Readers that open the base with TU_SNAPSHOT_OVERLAY
 * see base + delta as if one full file had been written (docs/cache-format.md,
 * "Delta files").  A writer never modifies a delta in place and never
 * removes one: a new delta replaces the old one by rename, and a full write
 * of the base bumps its generation, which makes the old delta stale.
 */

/* What a delta write did (also filled when it refused with -E2BIG). */
struct tu_snapshot_delta_stats {
	size_t n_records;    /* new or changed records in the delta */
	size_t n_hidden;     /* names hidden in the base (changed or deleted) */
	size_t max_changes;  /* the limit that applied */
	size_t bytes;        /* size of the delta file (0 when not written) */
	uint64_t base_generation;
};

/*
 * The default limit on a delta's changes (records written plus names hidden)
 * for a new set of n records: max(256, n / 16).  Above it a full write is
 * cheaper for the readers (and compacts).
 */
size_t tu_snapshot_delta_max_changes(size_t n_records);

/*
 * "<dir>/<name>.db" -> "<real dir>/<name>.delta" (any other name: "<name>.delta"),
 * with the directory resolved by realpath() (the default dir's accounts.db may be a
 * symlink: the delta is next to the real file).  Errors: -errno from realpath,
 * -ENAMETOOLONG.
 */
int tu_snapshot_delta_path(const char *base_path, char *buf, size_t size);

/*
 * Builds the accounts delta of the full record set (pw, gr, meta: the same
 * inputs as tu_snapshot_build_accounts_meta, checked the same way) against
 * base, an accounts snapshot opened without TU_SNAPSHOT_OVERLAY (the caller
 * keeps it open).  The result applies to exactly that base (its generation,
 * size and header checksum).  max_changes 0 = tu_snapshot_delta_max_changes.
 * Errors: as tu_snapshot_build_accounts; -E2BIG when the change set is over
 * the limit or the delta would not be smaller than half the base (write a full
 * file instead); -EBADMSG when base is unusable (not sorted, bad record);
 * -EINVAL when base is not a plain accounts snapshot.
 */
int tu_snapshot_build_accounts_delta(const struct tu_snapshot *base, const struct tu_pw_rec *pw,
				     size_t n_pw, const struct tu_gr_rec *gr, size_t n_gr,
				     const struct tu_snapshot_meta *meta, int64_t now_usec,
				     size_t max_changes, void **ret_data, size_t *ret_size,
				     struct tu_snapshot_delta_stats *ret_stats,
				     struct tu_err *reterr);

/*
 * Opens base_path (an accounts snapshot, trusted as tu_snapshot_open does),
 * builds the delta as above and replaces tu_snapshot_delta_path(base_path)
 * atomically with it (mode 0644, temp + fsync + rename + directory fsync).
 * Errors: -ENOENT (no base: write a full file), -E2BIG (write a full file),
 * the errors of tu_snapshot_open (-EBADMSG, -EPERM: write a full file) and of
 * the build and the write.  ret_stats may be NULL.
 */
int tu_snapshot_write_accounts_delta(const char *base_path, const struct tu_pw_rec *pw,
				     size_t n_pw, const struct tu_gr_rec *gr, size_t n_gr,
				     const struct tu_snapshot_meta *meta, int64_t now_usec,
				     size_t max_changes, struct tu_snapshot_delta_stats *ret_stats,
				     struct tu_err *reterr);

/*
 * The state delta (kind 4): the blobs (same inputs as tu_snapshot_build_blobs) that
 * differ from base, a state snapshot with a key index opened without
 * TU_SNAPSHOT_OVERLAY.  A blob is identified by (type, key); a type's keyless blobs
 * are compared as one ordered list and, when it changed, all hidden and written
 * again.  Errors as the accounts delta; also -E2BIG when the base has no key
 * index or a key appears twice (write in full).  tu_cache_save_incremental uses
 * it (docs/cache-format.md "Delta files").
 */
int tu_snapshot_build_blobs_delta(const struct tu_snapshot *base, const struct tu_blob *blobs,
				  size_t n_blobs, int64_t now_usec, size_t max_changes,
				  void **ret_data, size_t *ret_size,
				  struct tu_snapshot_delta_stats *ret_stats, struct tu_err *reterr);
int tu_snapshot_write_blobs_delta(const char *base_path, mode_t mode, const struct tu_blob *blobs,
				  size_t n_blobs, int64_t now_usec, size_t max_changes,
				  struct tu_snapshot_delta_stats *ret_stats, struct tu_err *reterr);

/*
 * The generation a full write of base_path must use: one more than the
 * larger of the base's and its delta's (so the old delta becomes stale even
 * when the base was unreadable); 1 when neither can be read.
 */
uint64_t tu_snapshot_next_generation(const char *base_path);

/* ---- reading ---------------------------------------------------------- */

/* Flags for tu_snapshot_open*. */
#define TU_SNAPSHOT_CHECK_RECORDS                                          \
	0x1u /* also walk every record at open (CLI, tests); lookups check \
		the records they touch in any case */
#define TU_SNAPSHOT_LAZY                                                      \
	0x2u /* checksum 64 KiB chunks on first use instead of the whole      \
		payload at open (NSS: first lookup cost independent of size); \
		a lookup touching a bad chunk fails with -EBADMSG */
#define TU_SNAPSHOT_OVERLAY                                                   \
	0x4u /* tu_snapshot_open: also open the delta next to the base and    \
		read base + delta (docs/cache-format.md "Delta files"); ignored \
		by tu_snapshot_open_buffer */

/*
 * Opens path: open(O_RDONLY|O_CLOEXEC|O_NOCTTY), fstat (must be a regular
 * file within TU_SNAPSHOT_MAX_SIZE, owned by root or by the reader's real
 * effective uid, not writable by group or others: else -EPERM), mmap
 * read-only, close the fd, then
 * validate: magic, version, kind == expected_kind (0 = any), header size,
 * file size against the header, section table (every section inside the
 * file, overflow-checked, no overlap with the header), counts against the
 * limits, CRC-32C of the header, of the chunk table and of the payload,
 * every index entry pointing inside its section.  With TU_SNAPSHOT_LAZY the
 * payload checksum and the index scans are skipped: each lookup verifies the
 * 64 KiB chunks it reads (once per chunk per open snapshot, atomically, so
 * still thread-safe) and bounds-checks what it decodes.  No fd is kept.  On success *ret is set
 * (release with tu_snapshot_close).
 * With TU_SNAPSHOT_OVERLAY, the delta (tu_snapshot_delta_path) is opened too
 * (O_NOFOLLOW, the same owner and mode rules, the same flags) and attached when
 * it applies to this base; a stale one is ignored; one naming a newer base
 * makes it open both again (4 attempts, then -ESTALE); no delta = the base
 * alone; a delta that cannot be read fails the open (its path and reason in
 * reterr).
 * Errors: -ENOENT (no file), -EACCES, -EPERM (owner or mode refused), other -errno from open/mmap,
 * -EBADMSG (corrupt, truncated, foreign kind or version; the reason and the
 * byte offset in reterr), -ENOMEM.  Thread-safe.
 */
int tu_snapshot_open(const char *path, uint32_t expected_kind, unsigned flags,
		     struct tu_snapshot **ret, struct tu_err *reterr);

/*
 * Same on a caller's buffer, which is borrowed: it must outlive the
 * snapshot and stay unchanged.  Used by tests and the fuzzer.
 */
int tu_snapshot_open_buffer(const void *data, size_t size, uint32_t expected_kind, unsigned flags,
			    struct tu_snapshot **ret, struct tu_err *reterr);

/*
 * Attaches a delta held in a caller's buffer (borrowed like
 * tu_snapshot_open_buffer's) to base, which must have no delta yet.  flags as
 * for the base (TU_SNAPSHOT_LAZY, TU_SNAPSHOT_CHECK_RECORDS).  Returns 1 when
 * attached, 0 when the delta is stale (it names an older base, or another base
 * of the same generation: base alone is current), -EAGAIN when it names a newer
 * base (the caller's base was replaced meanwhile: open both again), -EBADMSG
 * (corrupt delta, or not the delta kind of base's kind), -ENOMEM.
 */
int tu_snapshot_attach_delta_buffer(struct tu_snapshot *base, const void *data, size_t size,
				    unsigned flags, struct tu_err *reterr);

/* Whether s reads through a delta (TU_SNAPSHOT_OVERLAY found a current one). */
bool tu_snapshot_has_delta(const struct tu_snapshot *s);

/* Unmaps and frees; accepts NULL; returns NULL. */
struct tu_snapshot *tu_snapshot_close(struct tu_snapshot *s);
void tu_snapshot_closep(struct tu_snapshot **s);

/* Header fields of an open snapshot.  With a delta attached: the base's kind and generation,
 * the delta's created time (its writer knew everything current then), the base's size. */
uint32_t tu_snapshot_kind(const struct tu_snapshot *s);
uint64_t tu_snapshot_generation(const struct tu_snapshot *s);
int64_t tu_snapshot_created_usec(const struct tu_snapshot *s);
size_t tu_snapshot_size(const struct tu_snapshot *s);
/* cache.negative_ttl recorded by the writer (tu_snapshot_*_meta), 0 when not recorded. */
uint64_t tu_snapshot_negative_ttl_usec(const struct tu_snapshot *s);

/*
 * Views: pointers into the mapping, valid until tu_snapshot_close.  Every
 * string is NUL-terminated and its length excludes the NUL.
 */
struct tu_pw_view {
	const char *name, *gecos, *dir, *shell;
	size_t name_len, gecos_len, dir_len, shell_len;
	uid_t uid;
	gid_t gid;
	size_t n_gids; /* supplementary gids: read them with tu_pw_view_gid() */
	const unsigned char *gids_raw;
};

struct tu_gr_view {
	const char *name;
	size_t name_len;
	gid_t gid;
	size_t n_members;
	const char *members; /* n_members NUL-terminated strings back to back */
	size_t members_size; /* bytes of members, NULs included */
};

/* The i-th supplementary gid of v (i < v->n_gids). */
gid_t tu_pw_view_gid(const struct tu_pw_view *v, size_t i);

/*
 * Iterates over a group's members: *cursor starts at 0; returns the next
 * member and advances, or NULL after the last one.
 */
const char *tu_gr_view_next_member(const struct tu_gr_view *v, size_t *cursor);

/* Number of passwd / group records (0 for blob snapshots). */
size_t tu_snapshot_passwd_count(const struct tu_snapshot *s);
size_t tu_snapshot_group_count(const struct tu_snapshot *s);

/*
 * Lookups in an accounts snapshot: O(1) expected (hash index), bounded by
 * the index size.  Fill *ret on success, leave it untouched on failure.
 * Errors: -ENOENT (no such entry; also for a blob snapshot), -EBADMSG (the
 * record found is malformed; reason in reterr, which may be NULL).
 * Thread-safe on the same snapshot.
 */
int tu_snapshot_find_login(const struct tu_snapshot *s, const char *name, struct tu_pw_view *ret,
			   struct tu_err *reterr);
int tu_snapshot_find_uid(const struct tu_snapshot *s, uid_t uid, struct tu_pw_view *ret,
			 struct tu_err *reterr);
int tu_snapshot_find_group(const struct tu_snapshot *s, const char *name, struct tu_gr_view *ret,
			   struct tu_err *reterr);
int tu_snapshot_find_gid(const struct tu_snapshot *s, gid_t gid, struct tu_gr_view *ret,
			 struct tu_err *reterr);

/*
 * Enumeration in login / group-name order (bytewise): the i-th record.
 * Errors: -ENOENT when i >= count, -EBADMSG.
 */
int tu_snapshot_passwd_at(const struct tu_snapshot *s, size_t i, struct tu_pw_view *ret,
			  struct tu_err *reterr);
int tu_snapshot_group_at(const struct tu_snapshot *s, size_t i, struct tu_gr_view *ret,
			 struct tu_err *reterr);

/* Blob snapshots: number of blobs, and the i-th (data borrowed from the mapping, not aligned).
 * Errors: -ENOENT when i >= count, -EBADMSG (TU_SNAPSHOT_LAZY: its bytes fail their checksum). */
size_t tu_snapshot_blob_count(const struct tu_snapshot *s);
int tu_snapshot_blob_at(const struct tu_snapshot *s, size_t i, uint32_t *ret_type,
			const void **ret_data, size_t *ret_size);

/*
 * Blob snapshots with a key index (written with keys): the blob of this type whose key is
 * key[0..key_len), O(1) expected, the probe bounded by the index size.  With
 * TU_SNAPSHOT_LAZY only the chunks holding the slots, the key bytes, the blob's index entry
 * and its data are checksummed.  Returns 0 (*ret_data, *ret_size set; data borrowed from the
 * mapping), -ENOENT (no blob of this type has this key; also for key_len 0 or over
 * TU_SNAPSHOT_MAX_KEY), -ENOTUNIQ (several blobs of this type have it: the caller scans),
 * -EOPNOTSUPP (the file has no key index: written without keys or by an older version; the
 * caller scans), -EBADMSG (corrupt; reason in reterr, which may be NULL).  Thread-safe.
 */
int tu_snapshot_find_blob(const struct tu_snapshot *s, uint32_t type, const char *key,
			  size_t key_len, const void **ret_data, size_t *ret_size,
			  struct tu_err *reterr);

/*
 * Blob snapshots with a key index: the blobs of this type are the indexes [*ret_first,
 * *ret_first + *ret_count) of tu_snapshot_blob_at (count 0 when there is none).  The range
 * table is checked at open (ranges contiguous, covering every blob, types increasing); that
 * each blob in a range has the range's type is checked at open without TU_SNAPSHOT_LAZY, so
 * a LAZY reader compares the type tu_snapshot_blob_at returns.  Errors: -EOPNOTSUPP (no key
 * index), -EBADMSG.
 */
int tu_snapshot_blob_type_range(const struct tu_snapshot *s, uint32_t type, size_t *ret_first,
				size_t *ret_count, struct tu_err *reterr);
