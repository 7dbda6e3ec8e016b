/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fsutil.c - libcore/base/fsutil.c: trust checks (owner, mode, secret),
 * bounded reads, atomic writes (mode, no temp left behind on failure) and
 * mkdir -p.  Owner refusals are tested by chown()ing to another uid when run
 * as root; as non-root the file is simply not root's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "fsutil.h"

static char tmpdir[64];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-fsutil.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", tmpdir, name);
}

static void make_file(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t) strlen(content));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* Number of entries in dir whose name starts with '.', besides . and .. */
static int count_hidden(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] == '.' && strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("'%s' does not contain '%s'", haystack, needle);
}

static void test_write_atomic(void **state)
{
	char p[128], *data = NULL;
	struct tu_err e;
	struct stat st;
	size_t len = 0;
	mode_t old = umask(077);

	tu_err_clear(&e);
	path_in(p, sizeof(p), "snap");
	assert_int_equal(tu_fs_write_atomic(p, "first", 5, 0644, &e), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644); /* not subject to the umask */
	assert_int_equal(tu_fs_write_atomic(p, "second!", 7, 0600, &e), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(tu_fs_read_file(p, 100, TU_FS_RELAXED, &data, &len, &e), 0);
	assert_int_equal(len, 7);
	assert_string_equal(data, "second!");
	free(data);
	/* empty content is fine */
	assert_int_equal(tu_fs_write_atomic(p, NULL, 0, 0600, &e), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(count_hidden(tmpdir), 0);
	umask(old);
}

static void test_write_atomic_failure_leaves_no_temp(void **state)
{
	char p[128], sub[128];
	struct tu_err e;

	/* The target is a directory: the temp file is written, the rename fails. */
	path_in(p, sizeof(p), "isdir");
	assert_int_equal(mkdir(p, 0755), 0);
	tu_err_clear(&e);
	assert_int_equal(tu_fs_write_atomic(p, "x", 1, 0644, &e), -EISDIR);
	assert_int_equal(e.code, -EISDIR);
	assert_contains(e.msg, "cannot rename the temporary file to");
	assert_contains(e.msg, "isdir");
	assert_int_equal(count_hidden(tmpdir), 0);

	/* Missing directory. */
	path_in(sub, sizeof(sub), "nodir/file");
	tu_err_clear(&e);
	assert_int_equal(tu_fs_write_atomic(sub, "x", 1, 0644, &e), -ENOENT);
	assert_contains(e.msg, "cannot create a temporary file next to");
	assert_contains(e.msg, "nodir/file");

	/* Bad arguments. */
	assert_int_equal(tu_fs_write_atomic("", "x", 1, 0644, NULL), -EINVAL);
	path_in(sub, sizeof(sub), "trailing/");
	assert_int_equal(tu_fs_write_atomic(sub, "x", 1, 0644, NULL), -EINVAL);
	assert_int_equal(count_hidden(tmpdir), 0);
}

static void test_read_file(void **state)
{
	char p[128], l[128], d[128];
	char *data = (char *) "untouched";
	size_t len = 4242;
	struct tu_err e;

	path_in(p, sizeof(p), "ten");
	make_file(p, "0123456789", 0644);
	tu_err_clear(&e);
	assert_int_equal(tu_fs_read_file(p, 10, TU_FS_RELAXED, &data, &len, &e), 0);
	assert_int_equal(len, 10);
	assert_string_equal(data, "0123456789");
	free(data);
	data = (char *) "untouched";
	len = 4242;

	/* one byte over the limit */
	assert_int_equal(tu_fs_read_file(p, 9, TU_FS_RELAXED, &data, &len, &e), -EMSGSIZE);
	assert_contains(e.msg, "limit is 9");
	assert_string_equal(data, "untouched");
	assert_int_equal(len, 4242);

	/* ret_len is optional */
	assert_int_equal(tu_fs_read_file(p, 10, TU_FS_RELAXED, &data, NULL, &e), 0);
	free(data);
	data = (char *) "untouched";

	/* missing */
	path_in(d, sizeof(d), "missing");
	tu_err_clear(&e);
	assert_int_equal(tu_fs_read_file(d, 10, TU_FS_RELAXED, &data, &len, &e), -ENOENT);
	assert_contains(e.msg, "cannot open");
	assert_contains(e.msg, "No such file or directory");

	/* symlink: refused even though its target is fine */
	path_in(l, sizeof(l), "link");
	assert_int_equal(symlink(p, l), 0);
	tu_err_clear(&e);
	assert_int_equal(tu_fs_read_file(l, 10, TU_FS_RELAXED, &data, &len, &e), -ELOOP);
	assert_contains(e.msg, "is a symbolic link");

	/* directory */
	tu_err_clear(&e);
	assert_int_equal(tu_fs_read_file(tmpdir, 10, TU_FS_RELAXED, &data, &len, &e), -EINVAL);
	assert_contains(e.msg, "not a regular file");

	/* empty file */
	path_in(d, sizeof(d), "empty");
	make_file(d, "", 0644);
	assert_int_equal(tu_fs_read_file(d, 10, TU_FS_RELAXED, &data, &len, &e), 0);
	assert_int_equal(len, 0);
	assert_string_equal(data, "");
	free(data);

	/* /proc files claim size 0: the buffer must grow past the fstat hint, and stop at max */
	assert_int_equal(tu_fs_read_file("/proc/self/status", 1 << 20, TU_FS_RELAXED | TU_FS_SECRET,
					 &data, &len, &e), 0);
	assert_true(len > 200);
	assert_int_equal(strlen(data), len);
	assert_non_null(strstr(data, "Name:"));
	free(data);
	data = (char *) "untouched";
	tu_err_clear(&e);
	assert_int_equal(tu_fs_read_file("/proc/self/status", 100, TU_FS_RELAXED, &data, &len, &e),
			 -EMSGSIZE);
	assert_contains(e.msg, "larger than the limit of 100 bytes");
	assert_string_equal(data, "untouched");
}

struct trust_case {
	const char *name;
	mode_t mode;
	uid_t owner;
	unsigned flags;
	int r;
	const char *msg;
};

static void test_trust(void **state)
{
	const bool root = geteuid() == 0;
	const struct trust_case cases[] = {
		{ "ok-0644", 0644, 0, 0, 0, NULL },
		{ "ok-0600", 0600, 0, 0, 0, NULL },
		{ "ok-0444", 0444, 0, 0, 0, NULL },
		{ "other-w", 0666, 0, 0, -EACCES, "writable by others (mode 0666)" },
		{ "other-w2", 0602, 0, 0, -EACCES, "writable by others (mode 0602)" },
		{ "group-w", 0664, 0, 0, -EACCES, "writable by group (mode 0664)" },
		{ "secret-ok", 0600, 0, TU_FS_SECRET, 0, NULL },
		{ "secret-grp", 0640, 0, TU_FS_SECRET, 0, NULL },
		{ "secret-o", 0644, 0, TU_FS_SECRET, -EACCES, "readable by others (mode 0644)" },
		{ "relaxed", 0666, 0, TU_FS_RELAXED, 0, NULL },
		{ "not-root", 0644, 4321, 0, -EPERM, "owned by uid 4321, must be root" },
		{ "not-root-r", 0666, 4321, TU_FS_RELAXED, 0, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct trust_case *c = &cases[i];
		char p[128], want[256];
		char *data = (char *) "untouched";
		struct tu_err e;
		int r;

		if (!root && c->owner == 0 && c->r == 0 && !(c->flags & TU_FS_RELAXED))
			continue; /* we cannot create root's files */
		path_in(p, sizeof(p), c->name);
		make_file(p, "data", c->mode);
		if (root && c->owner != 0)
			assert_int_equal(chown(p, c->owner, c->owner), 0);
		if (!root && c->owner == 0 && !(c->flags & TU_FS_RELAXED)) {
			/* as non-root the owner check fires first */
			tu_err_clear(&e);
			assert_int_equal(tu_fs_read_file(p, 100, c->flags, &data, NULL, &e), -EPERM);
			continue;
		}

		tu_err_clear(&e);
		r = tu_fs_read_file(p, 100, c->flags, &data, NULL, &e);
		if (r != c->r)
			fail_msg("%s: got %d, want %d (%s)", c->name, r, c->r, e.msg);
		if (r == 0) {
			assert_string_equal(data, "data");
			free(data);
		} else {
			assert_string_equal(data, "untouched");
			snprintf(want, sizeof(want), "refusing %s: %s", p, c->msg);
			assert_contains(e.msg, want);
			assert_int_equal(e.code, c->r);
		}

		/* the fd form agrees */
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		tu_err_clear(&e);
		assert_int_equal(tu_fs_check_trusted(fd, p, c->flags, &e), c->r);
		close(fd);
	}
	assert_int_equal(tu_fs_check_trusted(-1, "x", 0, NULL), -EBADF);
}

static void test_mkdir_p(void **state)
{
	char p[160], f[160];
	struct tu_err e;
	struct stat st;
	mode_t old = umask(077);

	snprintf(p, sizeof(p), "%s/a/b//c/", tmpdir);
	assert_int_equal(tu_fs_mkdir_p(p, 0755, &e), 0);
	snprintf(p, sizeof(p), "%s/a/b/c", tmpdir);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0755);
	/* again: fine, existing modes untouched */
	assert_int_equal(tu_fs_mkdir_p(p, 0700, &e), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);

	/* a component is a file */
	snprintf(f, sizeof(f), "%s/a/file", tmpdir);
	make_file(f, "", 0644);
	snprintf(p, sizeof(p), "%s/a/file/sub", tmpdir);
	tu_err_clear(&e);
	assert_int_equal(tu_fs_mkdir_p(p, 0755, &e), -ENOTDIR);
	assert_contains(e.msg, "exists and is not a directory");

	assert_int_equal(tu_fs_mkdir_p("", 0755, &e), -EINVAL);
	assert_int_equal(tu_fs_mkdir_p("/", 0755, &e), 0);
	umask(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_write_atomic_failure_leaves_no_temp),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_trust),
		cmocka_unit_test(test_mkdir_p),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
