/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-pack.c - libcore/base/pack.c: every buffer size from 0 upward gives
 * -ERANGE with nothing written until the exact size, then a correct record;
 * gr_mem aligned for any buffer offset; getent line formatting.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pack.h"
#include "snapshot.h"

static struct tu_pw_view pw_view(void)
{
	struct tu_pw_view v = { 0 };

	v.name = "alice", v.name_len = 5;
	v.gecos = "Alice A", v.gecos_len = 7;
	v.dir = "/home/alice", v.dir_len = 11;
	v.shell = "/bin/bash", v.shell_len = 9;
	v.uid = 300000, v.gid = 300001;
	return v;
}

static const char members[] = "alice\0bob\0carol-the-long-name";

static struct tu_gr_view gr_view(size_t n_members)
{
	struct tu_gr_view v = { 0 };

	v.name = "devs", v.name_len = 4, v.gid = 5000;
	v.n_members = n_members;
	v.members = members;
	v.members_size = n_members == 0 ? 0 : n_members == 1 ? 6 : n_members == 2 ? 10 : sizeof(members);
	return v;
}

static void test_passwd(void **state)
{
	struct tu_pw_view v = pw_view();
	size_t need = tu_pack_passwd_size(&v);
	char buf[200];
	struct passwd pw;

	assert_int_equal(need, 6 + 2 + 8 + 12 + 10);
	for (size_t n = 0; n < need; n++) {
		memset(buf, 0xAA, sizeof(buf));
		memset(&pw, 0x55, sizeof(pw));
		assert_int_equal(tu_pack_passwd(&v, &pw, buf, n), -ERANGE);
		for (size_t k = 0; k < sizeof(buf); k++)
			assert_int_equal((unsigned char) buf[k], 0xAA);
		assert_int_equal(pw.pw_uid, 0x55555555);
	}
	memset(buf, 0xAA, sizeof(buf));
	assert_int_equal(tu_pack_passwd(&v, &pw, buf, need), 0);
	assert_string_equal(pw.pw_name, "alice");
	assert_string_equal(pw.pw_passwd, "*");
	assert_string_equal(pw.pw_gecos, "Alice A");
	assert_string_equal(pw.pw_dir, "/home/alice");
	assert_string_equal(pw.pw_shell, "/bin/bash");
	assert_int_equal(pw.pw_uid, 300000);
	assert_int_equal(pw.pw_gid, 300001);
	assert_int_equal((unsigned char) buf[need], 0xAA); /* nothing past the end */
	assert_int_equal(tu_pack_passwd(&v, &pw, NULL, 100), -ERANGE);
}

static void test_group(void **state)
{
	for (size_t nm = 0; nm <= 3; nm++)
		for (size_t skew = 0; skew < sizeof(char *); skew++) {
			struct tu_gr_view v = gr_view(nm);
			char raw[300], *buf = raw + skew;
			struct group gr;
			size_t n;
			int r = -ERANGE;

			for (n = 0; n < 200; n++) {
				memset(raw, 0xAA, sizeof(raw));
				r = tu_pack_group(&v, &gr, buf, n);
				if (r == 0)
					break;
				assert_int_equal(r, -ERANGE);
				for (size_t k = 0; k < sizeof(raw); k++)
					assert_int_equal((unsigned char) raw[k], 0xAA);
			}
			assert_int_equal(r, 0);
			assert_true(n <= tu_pack_group_size(&v));
			assert_int_equal((uintptr_t) gr.gr_mem % sizeof(char *), 0);
			assert_string_equal(gr.gr_name, "devs");
			assert_string_equal(gr.gr_passwd, "*");
			assert_int_equal(gr.gr_gid, 5000);
			if (nm >= 1)
				assert_string_equal(gr.gr_mem[0], "alice");
			if (nm >= 2)
				assert_string_equal(gr.gr_mem[1], "bob");
			if (nm >= 3)
				assert_string_equal(gr.gr_mem[2], "carol-the-long-name");
			assert_null(gr.gr_mem[nm]);
			/* Everything inside [buf, buf + n). */
			assert_true((char *) gr.gr_mem >= buf && gr.gr_passwd + 2 <= buf + n);
			assert_int_equal((unsigned char) buf[n], 0xAA);
		}
}

static void test_lines(void **state)
{
	struct tu_pw_view v = pw_view();
	struct tu_gr_view g = gr_view(3), g0 = gr_view(0);
	char buf[300], line[200];
	struct passwd pw;
	struct group gr;
	size_t need;

	assert_int_equal(tu_pack_passwd(&v, &pw, buf, sizeof(buf)), 0);
	assert_int_equal(tu_format_passwd_line(&pw, line, sizeof(line)), 0);
	assert_string_equal(line, "alice:*:300000:300001:Alice A:/home/alice:/bin/bash");
	need = strlen(line) + 1;
	for (size_t n = 0; n < need; n++) {
		line[0] = 'Z';
		assert_int_equal(tu_format_passwd_line(&pw, line, n), -ERANGE);
		if (n > 0)
			assert_string_equal(line, "");
	}
	assert_int_equal(tu_pack_group(&g, &gr, buf, sizeof(buf)), 0);
	assert_int_equal(tu_format_group_line(&gr, line, sizeof(line)), 0);
	assert_string_equal(line, "devs:*:5000:alice,bob,carol-the-long-name");
	need = strlen(line) + 1;
	for (size_t n = 0; n < need; n++) {
		assert_int_equal(tu_format_group_line(&gr, line, n), -ERANGE);
		if (n > 0)
			assert_string_equal(line, "");
	}
	assert_int_equal(tu_format_group_line(&gr, line, need), 0);
	assert_int_equal(tu_pack_group(&g0, &gr, buf, sizeof(buf)), 0);
	assert_int_equal(tu_format_group_line(&gr, line, sizeof(line)), 0);
	assert_string_equal(line, "devs:*:5000:");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_passwd),
		cmocka_unit_test(test_group),
		cmocka_unit_test(test_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
