/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-etcgroup.c - libcore/base/etcgroup.c: nss_files-like parsing of a
 * group file (comments, NIS lines, malformed lines skipped and counted,
 * first entry wins), lookups, limits and missing files.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "etcgroup.h"

static char path[64];

static void write_file(const char *content, size_t len)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/test-etcgroup-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	return 0;
}

static void test_parse(void **state)
{
	static const char f[] = "root:x:0:\n"
				"# a comment\n"
				"\n"
				"docker:x:999:alice,bob\n"
				"+nisgroup::0:\n"
				"-other::1:\n"
				"toofew:x:5\n"
				"toomany:x:5:a:b\n"
				"badgid:x:12a:\n"
				"neg:x:-1:\n"
				"huge:x:4294967296:\n"
				"max:x:4294967295:\n"
				":x:7:\n"
				"docker:x:1234:\n"
				"wheel:*:10:root\n"
				"last:x:42:noeol";
	struct tu_etcgroup g = { 0 };
	uint32_t gid = 77;

	write_file(f, sizeof(f) - 1);
	assert_int_equal(tu_etcgroup_load(path, &g, NULL), 0);
	assert_int_equal(g.n, 5); /* root docker max wheel last */
	assert_int_equal(g.n_skipped, 7);
	assert_int_equal(tu_etcgroup_find(&g, "docker", &gid), 0);
	assert_int_equal(gid, 999); /* first wins */
	assert_int_equal(tu_etcgroup_find(&g, "root", &gid), 0);
	assert_int_equal(gid, 0);
	assert_int_equal(tu_etcgroup_find(&g, "max", &gid), 0);
	assert_int_equal(gid, 4294967295u);
	assert_int_equal(tu_etcgroup_find(&g, "last", &gid), 0);
	assert_int_equal(gid, 42);
	assert_int_equal(tu_etcgroup_find(&g, "wheel", &gid), 0);
	assert_int_equal(gid, 10);
	gid = 77;
	assert_int_equal(tu_etcgroup_find(&g, "badgid", &gid), -ENOENT);
	assert_int_equal(tu_etcgroup_find(&g, "nisgroup", &gid), -ENOENT);
	assert_int_equal(tu_etcgroup_find(&g, "+nisgroup", &gid), -ENOENT);
	assert_int_equal(tu_etcgroup_find(&g, NULL, &gid), -ENOENT);
	assert_int_equal(gid, 77);
	/* Sorted by name. */
	for (size_t i = 1; i < g.n; i++)
		assert_true(strcmp(g.e[i - 1].name, g.e[i].name) < 0);
	tu_etcgroup_done(&g);
	assert_int_equal(g.n, 0);
	assert_null(g.e);
	tu_etcgroup_done(&g); /* twice is fine */

	assert_int_equal(tu_etcgroup_lookup(path, "wheel", &gid, NULL), 0);
	assert_int_equal(gid, 10);
	assert_int_equal(tu_etcgroup_lookup(path, "nope", &gid, NULL), -ENOENT);
}

static void test_errors(void **state)
{
	struct tu_etcgroup g = { 0 };
	struct tu_err e = {};
	char *big;
	size_t n = TU_ETCGROUP_MAX_LINE + 100;
	uint32_t gid;

	assert_int_equal(tu_etcgroup_load("/nonexistent/group", &g, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "/nonexistent/group"));
	assert_int_equal(tu_etcgroup_lookup("/nonexistent/group", "x", &gid, NULL), -ENOENT);

	big = malloc(n + 20);
	memcpy(big, "ok:x:1:\nbig:x:2:", 16);
	memset(big + 16, 'm', n);
	big[16 + n] = '\n';
	write_file(big, n + 17);
	assert_int_equal(tu_etcgroup_load(path, &g, &e), -EMSGSIZE);
	assert_non_null(strstr(e.msg, "line 2 is longer"));
	assert_int_equal(e.line, 2);
	assert_null(g.e);
	free(big);

	write_file("", 0);
	assert_int_equal(tu_etcgroup_load(path, &g, &e), 0);
	assert_int_equal(g.n, 0);
	tu_etcgroup_done(&g);
}

static void test_system_file(void **state)
{
	struct tu_etcgroup g = { 0 };
	uint32_t gid;

	/* The real /etc/group parses and has root = 0 (read directly, no NSS). */
	if (access("/etc/group", R_OK) != 0)
		skip();
	assert_int_equal(tu_etcgroup_load(NULL, &g, NULL), 0);
	assert_int_equal(tu_etcgroup_find(&g, "root", &gid), 0);
	assert_int_equal(gid, 0);
	tu_etcgroup_done(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_system_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
