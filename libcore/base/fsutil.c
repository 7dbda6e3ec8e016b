/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fsutil.c - trusted reads, atomic writes and mkdir -p (see fsutil.h).
 * Layer: libcore/base (libc only).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "fsutil.h"

/* Paths in messages are sanitized: a hostile name must not forge a log line. */
#define SHOWN_MAX 200

static const char *shown(const char *path, char buf[static SHOWN_MAX])
{
	return tu_sanitize(path ? path : "(file)", buf, SHOWN_MAX);
}

static int check_stat(const struct stat *st, const char *path, unsigned flags, struct tu_err *reterr)
{
	char b[SHOWN_MAX];
	unsigned mode = (unsigned) (st->st_mode & 07777);

	if (flags & TU_FS_RELAXED)
		return 0;
	if (st->st_uid != 0 && !((flags & TU_FS_OWNER_SELF) && st->st_uid == geteuid())) {
		if (flags & TU_FS_OWNER_SELF)
			return tu_err_set(reterr, -EPERM,
					  "refusing %s: owned by uid %u, must be root or uid %u",
					  shown(path, b), (unsigned) st->st_uid, (unsigned) geteuid());
		return tu_err_set(reterr, -EPERM, "refusing %s: owned by uid %u, must be root",
				  shown(path, b), (unsigned) st->st_uid);
	}
	if (st->st_mode & S_IWOTH)
		return tu_err_set(reterr, -EACCES, "refusing %s: writable by others (mode %04o)",
				  shown(path, b), mode);
	if (st->st_mode & S_IWGRP)
		return tu_err_set(reterr, -EACCES, "refusing %s: writable by group (mode %04o)",
				  shown(path, b), mode);
	if ((flags & TU_FS_SECRET) && (st->st_mode & S_IROTH))
		return tu_err_set(reterr, -EACCES,
				  "refusing %s: readable by others (mode %04o), secrets must not be",
				  shown(path, b), mode);
	return 0;
}

int tu_fs_check_trusted(int fd, const char *path, unsigned flags, struct tu_err *reterr)
{
	struct stat st;
	char b[SHOWN_MAX];

	if (fd < 0)
		return tu_err_set(reterr, -EBADF, "cannot check %s: no file descriptor", shown(path, b));
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		return tu_err_set(reterr, r, "cannot stat %s: %s", shown(path, b), strerror(-r));
	}
	return check_stat(&st, path, flags, reterr);
}

/* Frees a buffer that may hold a secret: wiped first (realloc would leave copies). */
static void free_wiped(char *buf, size_t cap, bool secret)
{
	if (buf && secret)
		explicit_bzero(buf, cap);
	free(buf);
}

/*
 * Reads fd to EOF into a new buffer of at most max bytes (+ NUL).  The size
 * hint comes from fstat, but the file may change under us, so the loop is
 * bounded by max, not by the hint.  -EMSGSIZE past max, -ENOMEM, -errno.
 */
static int read_all(int fd, size_t hint, size_t max, bool secret, char **ret, size_t *ret_len)
{
	size_t cap = hint + 1 < 64 ? 64 : hint + 1, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len + 1 >= cap) {
			size_t ncap = cap > (max + 2) / 2 ? max + 2 : cap * 2;
			char *nbuf = malloc(ncap);

			if (!nbuf) {
				free_wiped(buf, cap, secret);
				return -ENOMEM;
			}
			memcpy(nbuf, buf, len);
			free_wiped(buf, cap, secret);
			buf = nbuf;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			int r = -errno;
			if (r == -EINTR)
				continue;
			free_wiped(buf, cap, secret);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t) n;
		if (len > max) {
			free_wiped(buf, cap, secret);
			return -EMSGSIZE;
		}
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

int tu_fs_read_file(const char *path, size_t max, unsigned flags, char **ret, size_t *ret_len,
		    struct tu_err *reterr)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	char b[SHOWN_MAX];
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (!path || !*path || !ret)
		return tu_err_set(reterr, -EINVAL, "no file name given");
	if (max >= SIZE_MAX / 2)
		max = SIZE_MAX / 2;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		if (r == -ELOOP)
			return tu_err_set(reterr, r, "refusing %s: is a symbolic link", shown(path, b));
		return tu_err_set(reterr, r, "cannot open %s: %s", shown(path, b), strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		return tu_err_set(reterr, r, "cannot stat %s: %s", shown(path, b), strerror(-r));
	}
	if (!S_ISREG(st.st_mode))
		return tu_err_set(reterr, -EINVAL, "refusing %s: not a regular file", shown(path, b));
	r = check_stat(&st, path, flags, reterr);
	if (r < 0)
		return r;
	if (st.st_size < 0 || (unsigned long long) st.st_size > max)
		return tu_err_set(reterr, -EMSGSIZE, "refusing %s: %lld bytes, limit is %zu",
				  shown(path, b), (long long) st.st_size, max);

	r = read_all(fd, (size_t) st.st_size, max, flags & TU_FS_SECRET, &buf, &len);
	if (r == -EMSGSIZE)
		return tu_err_set(reterr, r, "refusing %s: larger than the limit of %zu bytes",
				  shown(path, b), max);
	if (r == -ENOMEM)
		return tu_err_set(reterr, r, "out of memory reading %s", shown(path, b));
	if (r < 0)
		return tu_err_set(reterr, r, "cannot read %s: %s", shown(path, b), strerror(-r));
	*ret = buf;
	if (ret_len)
		*ret_len = len;
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

/* Splits path into its directory ("." when none) and base name, into caller buffers. */
static int split_path(const char *path, char dir[static PATH_MAX], char base[static NAME_MAX + 1])
{
	const char *slash = strrchr(path, '/');
	size_t dlen, blen;

	if (!slash) {
		dir[0] = '.';
		dir[1] = '\0';
		blen = strlen(path);
		if (blen > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(base, path, blen + 1);
		return 0;
	}
	dlen = slash == path ? 1 : (size_t) (slash - path);
	blen = strlen(slash + 1);
	if (blen == 0)
		return -EINVAL;
	if (dlen >= PATH_MAX || blen > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	memcpy(base, slash + 1, blen + 1);
	return 0;
}

int tu_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		       struct tu_err *reterr)
{
	char dir[PATH_MAX], base[NAME_MAX + 1], tmp[PATH_MAX];
	char b[SHOWN_MAX];
	const char *what;
	int fd, dfd, r, n;

	if (!path || !*path || (!data && len > 0))
		return tu_err_set(reterr, -EINVAL, "no file name given");
	r = split_path(path, dir, base);
	if (r < 0)
		return tu_err_set(reterr, r, "cannot write %s: %s", shown(path, b), strerror(-r));
	n = snprintf(tmp, sizeof(tmp), "%s/.%.*s.XXXXXX", dir, NAME_MAX - 8, base);
	if (n < 0 || (size_t) n >= sizeof(tmp))
		return tu_err_set(reterr, -ENAMETOOLONG, "cannot write %s: %s", shown(path, b),
				  strerror(ENAMETOOLONG));

	/* mkostemp opens with O_CREAT|O_EXCL and mode 0600; we add O_CLOEXEC. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		return tu_err_set(reterr, r, "cannot create a temporary file next to %s: %s",
				  shown(path, b), strerror(-r));
	}

	what = "set the mode of";
	if (fchmod(fd, mode & 07777) < 0)
		goto fail_errno;
	what = "write";
	r = write_all(fd, data, len);
	if (r < 0)
		goto fail;
	what = "sync";
	if (fsync(fd) < 0)
		goto fail_errno;
	what = "close";
	r = close(fd);
	fd = -1;
	if (r < 0)
		goto fail_errno;
	what = "rename the temporary file to";
	if (rename(tmp, path) < 0)
		goto fail_errno;

	/* The rename is durable only once the directory entry is on disk. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		return tu_err_set(reterr, r, "wrote %s but cannot open its directory to sync: %s",
				  shown(path, b), strerror(-r));
	}
	if (fsync(dfd) < 0 && errno != EINVAL) {
		r = -errno;
		(void) close(dfd);
		return tu_err_set(reterr, r, "wrote %s but cannot sync its directory: %s",
				  shown(path, b), strerror(-r));
	}
	(void) close(dfd);
	return 0;

fail_errno:
	r = -errno;
fail:
	if (fd >= 0)
		(void) close(fd);
	(void) unlink(tmp);
	return tu_err_set(reterr, r, "cannot %s %s: %s", what, shown(path, b), strerror(-r));
}

int tu_fs_mkdir_p(const char *path, mode_t mode, struct tu_err *reterr)
{
	char buf[PATH_MAX];
	char b[SHOWN_MAX], b2[SHOWN_MAX];
	struct stat st;
	size_t len;
	int r;

	if (!path || !*path)
		return tu_err_set(reterr, -EINVAL, "no directory name given");
	len = strlen(path);
	if (len >= sizeof(buf))
		return tu_err_set(reterr, -ENAMETOOLONG, "cannot create %s: %s", shown(path, b),
				  strerror(ENAMETOOLONG));
	memcpy(buf, path, len + 1);

	/* Walk each prefix ending before a '/', then the whole path. */
	for (size_t i = 1; i <= len; i++) {
		bool last = i == len;

		if (!last && buf[i] != '/')
			continue;
		if (!last && buf[i - 1] == '/')
			continue; /* "a//b" */
		char saved = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, mode & 07777) == 0) {
			if (chmod(buf, mode & 07777) < 0) {
				r = -errno;
				return tu_err_set(reterr, r, "cannot set the mode of %s: %s",
						  shown(buf, b), strerror(-r));
			}
		} else if (errno == EEXIST) {
			if (stat(buf, &st) < 0) {
				r = -errno;
				return tu_err_set(reterr, r, "cannot stat %s: %s", shown(buf, b),
						  strerror(-r));
			}
			if (!S_ISDIR(st.st_mode))
				return tu_err_set(reterr, -ENOTDIR,
						  "cannot create %s: %s exists and is not a directory",
						  shown(path, b), shown(buf, b2));
		} else {
			r = -errno;
			return tu_err_set(reterr, r, "cannot create %s: %s", shown(buf, b),
					  strerror(-r));
		}
		buf[i] = saved;
	}
	return 0;
}
