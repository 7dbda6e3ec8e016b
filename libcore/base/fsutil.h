/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fsutil.h - careful file access: trust checks on owner and mode (like sshd's
 * StrictModes), bounded reads through O_NOFOLLOW, atomic replacement
 * (temp file, fsync, rename, directory fsync) and mkdir -p.
 * Layer: libcore/base (libc only; usable from the NSS module).
 *
 * Every function returns 0 or a negative errno and, when reterr is non-NULL,
 * fills it with a one-line reason that names the path.  None of them keeps
 * state: all are thread-safe, all file descriptors are O_CLOEXEC.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

struct tu_err;

enum {
	/* Secret material (keys, identity files, private cache): also refuse when others may read it. */
	TU_FS_SECRET = 1 << 0,
	/* Skip the owner and mode checks entirely (tests; CLI --insecure-perms). */
	TU_FS_RELAXED = 1 << 1,
	/* The owner may also be the effective uid (a tsh profile read by the user who logged
	 * in; for root this is the root-only rule). */
	TU_FS_OWNER_SELF = 1 << 2,
};

/* Upper bound used by callers that have no better idea (1 MiB). */
#define TU_FS_DEFAULT_MAX_READ (1024 * 1024)

/*
 * Checks that the file open on fd (described in messages as path, which may
 * be NULL) can be trusted: owned by root (uid 0) and writable by neither
 * group nor others.  With TU_FS_SECRET it must also not be readable by
 * others (group-readable is allowed: "root:ssl-cert 0640" is common).
 * With TU_FS_RELAXED nothing is checked (returns 0 after a valid fstat).
 * Errors: -EPERM "refusing <path>: owned by uid N, must be root",
 * -EACCES "refusing <path>: writable by group|others (mode 0NNN)" or
 * "readable by others (mode 0NNN)", or the errno of fstat().
 */
int tu_fs_check_trusted(int fd, const char *path, unsigned flags, struct tu_err *reterr);

/*
 * Reads a whole regular file of at most max bytes into a new NUL-terminated
 * buffer (*ret, caller frees; *ret_len excludes the NUL, ret_len may be NULL).
 * The file is opened O_RDONLY|O_CLOEXEC|O_NOFOLLOW|O_NOCTTY and checked with
 * tu_fs_check_trusted(flags) before a byte is read.  Outputs are written only
 * on success.  With TU_FS_SECRET every intermediate or failed buffer is wiped
 * (explicit_bzero) before it is freed; the caller wipes the returned one.
 * Errors: -ENOENT (missing), -ELOOP (path is a symlink), -EINVAL (not a
 * regular file), -EPERM/-EACCES (untrusted, see above, or open() refused),
 * -EMSGSIZE (larger than max), -ENOMEM, other errno from open/read.
 */
int tu_fs_read_file(const char *path, size_t max, unsigned flags, char **ret, size_t *ret_len,
		    struct tu_err *reterr);

/*
 * Replaces path atomically with len bytes of data and the given mode
 * (exactly: set with fchmod, not subject to the umask).  A temp file
 * ".<name>.XXXXXX" is created in the same directory with O_EXCL|O_CLOEXEC,
 * written fully, fsynced, renamed over path, then the directory is fsynced.
 * On any failure the temp file is removed and path is untouched (readers see
 * the old or the new content, never a mix).
 * Errors: -EINVAL (empty path or ending in '/'), -ENAMETOOLONG, errno from
 * the failing syscall (-ENOENT directory missing, -EACCES, -ENOSPC, -EISDIR...).
 */
int tu_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		       struct tu_err *reterr);

/*
 * Creates path and any missing parents.  Directories it creates get exactly
 * mode (chmod after mkdir, so the umask does not apply); existing ones are
 * left alone.  Succeeds when path already is a directory.
 * Errors: -EINVAL (empty path), -ENAMETOOLONG, -ENOTDIR (a
 * component exists and is not a directory), errno from mkdir/chmod.
 */
int tu_fs_mkdir_p(const char *path, mode_t mode, struct tu_err *reterr);
