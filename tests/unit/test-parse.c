/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-parse.c - table tests for libcore/base/parse.c: integers, durations,
 * sizes and host:port, including overflow edges and "ret_ untouched on
 * failure".
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parse.h"

#define SENTINEL64 UINT64_C(0xdeadbeefcafe)
#define SENTINEL32 UINT32_C(0xdeadbeef)

struct u64_case {
	const char *in;
	int r;
	uint64_t v;
};

static void test_u64(void **state)
{
	static const struct u64_case cases[] = {
		{ "0", 0, 0 },
		{ "7", 0, 7 },
		{ "007", 0, 7 },
		{ "3025", 0, 3025 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "99999999999999999999999", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "1 ", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
		{ "1e3", -EINVAL, 0 },
		{ "12a", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = SENTINEL64;
		int r = tu_parse_u64(cases[i].in, &v);
		if (r != cases[i].r)
			fail_msg("'%s': got %d, want %d", cases[i].in, r, cases[i].r);
		assert_int_equal(v, r == 0 ? cases[i].v : SENTINEL64);
	}
	assert_int_equal(tu_parse_u64(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static void test_u32(void **state)
{
	static const struct {
		const char *in;
		int r;
		uint32_t v;
	} cases[] = {
		{ "0", 0, 0 },
		{ "4294967295", 0, UINT32_MAX },
		{ "4294967296", -ERANGE, 0 },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "-0", -EINVAL, 0 },
		{ "1\n", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t v = SENTINEL32;
		int r = tu_parse_u32(cases[i].in, &v);
		if (r != cases[i].r)
			fail_msg("'%s': got %d, want %d", cases[i].in, r, cases[i].r);
		assert_int_equal(v, r == 0 ? cases[i].v : SENTINEL32);
	}
}

static void test_digits_cursor(void **state)
{
	const char *s = "123:456";
	const char *p = s;
	uint64_t v = 0;

	assert_int_equal(tu_parse_digits(&p, s + strlen(s), &v), 0);
	assert_int_equal(v, 123);
	assert_ptr_equal(p, s + 3);
	/* the end bound is respected */
	p = s;
	assert_int_equal(tu_parse_digits(&p, s + 2, &v), 0);
	assert_int_equal(v, 12);
	/* no digit: cursor untouched */
	p = s + 3;
	assert_int_equal(tu_parse_digits(&p, s + strlen(s), &v), -EINVAL);
	assert_ptr_equal(p, s + 3);
}

#define US  UINT64_C(1)
#define MS  UINT64_C(1000)
#define SEC UINT64_C(1000000)
#define MIN (60 * SEC)
#define HR  (60 * MIN)
#define DAY (24 * HR)

static void test_duration(void **state)
{
	static const struct u64_case cases[] = {
		{ "90s", 0, 90 * SEC },
		{ "5m", 0, 5 * MIN },
		{ "72h", 0, 72 * HR },
		{ "1s", 0, SEC },
		{ "500ms", 0, 500 * MS },
		{ "250us", 0, 250 * US },
		{ "1h30m", 0, HR + 30 * MIN },
		{ "1h30m15s", 0, HR + 30 * MIN + 15 * SEC },
		{ "2d", 0, 2 * DAY },
		{ "1.5h", 0, HR + 30 * MIN },
		{ ".5s", 0, SEC / 2 },
		{ "0.25s", 0, 250 * MS },
		{ "1.0000019s", 0, SEC + 1 }, /* fraction past 6 digits truncated */
		{ "0", 0, 0 },
		{ "0s", 0, 0 },
		{ "00m", 0, 0 },
		{ "1m1m", 0, 2 * MIN },
		{ "18446744073709551615us", 0, UINT64_MAX },
		{ "18446744073709551616us", -ERANGE, 0 },
		{ "18446744073709551615us1us", -ERANGE, 0 },
		{ "213503982335d", -ERANGE, 0 },
		{ "5124095576h", 0, UINT64_C(5124095576) * HR },
		{ "5124095577h", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "1", -EINVAL, 0 },
		{ "90", -EINVAL, 0 },
		{ "s", -EINVAL, 0 },
		{ "fast", -EINVAL, 0 },
		{ "-5s", -EINVAL, 0 },
		{ "+5s", -EINVAL, 0 },
		{ " 5s", -EINVAL, 0 },
		{ "5s ", -EINVAL, 0 },
		{ "5 s", -EINVAL, 0 },
		{ "5sec", -EINVAL, 0 },
		{ "5S", -EINVAL, 0 },
		{ "5ns", -EINVAL, 0 },
		{ "1.s", -EINVAL, 0 },
		{ ".s", -EINVAL, 0 },
		{ "1..5s", -EINVAL, 0 },
		{ "1h30", -EINVAL, 0 },
		{ "1w", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = SENTINEL64;
		int r = tu_parse_duration(cases[i].in, &v);
		if (r != cases[i].r)
			fail_msg("'%s': got %d, want %d", cases[i].in, r, cases[i].r);
		if (v != (r == 0 ? cases[i].v : SENTINEL64))
			fail_msg("'%s': got %llu, want %llu", cases[i].in, (unsigned long long) v,
				 (unsigned long long) cases[i].v);
	}
	assert_int_equal(tu_parse_duration(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static void test_size(void **state)
{
	static const struct u64_case cases[] = {
		{ "0", 0, 0 },
		{ "67108864", 0, 67108864 },
		{ "64MiB", 0, UINT64_C(64) << 20 },
		{ "64M", 0, UINT64_C(64) << 20 },
		{ "512K", 0, 512 << 10 },
		{ "512KiB", 0, 512 << 10 },
		{ "1GiB", 0, UINT64_C(1) << 30 },
		{ "1G", 0, UINT64_C(1) << 30 },
		{ "100B", 0, 100 },
		{ "17179869183G", 0, UINT64_C(17179869183) << 30 },
		{ "17179869184G", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "MiB", -EINVAL, 0 },
		{ "64 MiB", -EINVAL, 0 },
		{ "64mib", -EINVAL, 0 },
		{ "64MB", -EINVAL, 0 },
		{ "1.5M", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = SENTINEL64;
		int r = tu_parse_size(cases[i].in, &v);
		if (r != cases[i].r)
			fail_msg("'%s': got %d, want %d", cases[i].in, r, cases[i].r);
		assert_int_equal(v, r == 0 ? cases[i].v : SENTINEL64);
	}
}

struct hp_case {
	const char *in;
	uint16_t def;
	int r;
	const char *host;
	uint16_t port;
};

static void test_hostport(void **state)
{
	static const struct hp_case cases[] = {
		{ "auth.example.com:3025", 3025, 0, "auth.example.com", 3025 },
		{ "auth.example.com", 3025, 0, "auth.example.com", 3025 },
		{ "auth", 443, 0, "auth", 443 },
		{ "1.2.3.4:3025", 3025, 0, "1.2.3.4", 3025 },
		{ "127.0.0.1:1", 3025, 0, "127.0.0.1", 1 },
		{ "127.0.0.1:65535", 3025, 0, "127.0.0.1", 65535 },
		{ "[::1]:3025", 3025, 0, "::1", 3025 },
		{ "[::1]", 3025, 0, "::1", 3025 },
		{ "[2001:db8::1]:443", 3025, 0, "2001:db8::1", 443 },
		{ "[fe80::1%eth0]:3025", 3025, 0, "fe80::1%eth0", 3025 },
		{ "my_host-1.internal:80", 3025, 0, "my_host-1.internal", 80 },
		{ "host:03025", 3025, 0, "host", 3025 },
		{ "host:0", 3025, -ERANGE, NULL, 0 },
		{ "host:65536", 3025, -ERANGE, NULL, 0 },
		{ "host:999999", 3025, -ERANGE, NULL, 0 },
		{ "[::1]:0", 3025, -ERANGE, NULL, 0 },
		{ "", 3025, -EINVAL, NULL, 0 },
		{ ":3025", 3025, -EINVAL, NULL, 0 },
		{ "[]:3025", 3025, -EINVAL, NULL, 0 },
		{ "host:", 3025, -EINVAL, NULL, 0 },
		{ "host:http", 3025, -EINVAL, NULL, 0 },
		{ "host:-1", 3025, -EINVAL, NULL, 0 },
		{ "host:+1", 3025, -EINVAL, NULL, 0 },
		{ "host:30 25", 3025, -EINVAL, NULL, 0 },
		{ "host:3025x", 3025, -EINVAL, NULL, 0 },
		{ "host:12345678", 3025, -ERANGE, NULL, 0 },
		{ "host:1234567x", 3025, -EINVAL, NULL, 0 },
		{ "::1", 3025, -EINVAL, NULL, 0 },
		{ "::1:3025", 3025, -EINVAL, NULL, 0 },
		{ "[::1", 3025, -EINVAL, NULL, 0 },
		{ "[::1]x", 3025, -EINVAL, NULL, 0 },
		{ "[::1]:", 3025, -EINVAL, NULL, 0 },
		{ "[not-v6]:1", 3025, -EINVAL, NULL, 0 },
		{ "[1.2.3.4]:1", 3025, -EINVAL, NULL, 0 },
		{ "[fe80::1%]:1", 3025, -EINVAL, NULL, 0 },
		{ "[fe80::1%e/0]:1", 3025, -EINVAL, NULL, 0 },
		{ "300.1.1.1:3025", 3025, -EINVAL, NULL, 0 },
		{ "1.2.3:3025", 3025, -EINVAL, NULL, 0 },
		{ "-host:1", 3025, -EINVAL, NULL, 0 },
		{ ".host:1", 3025, -EINVAL, NULL, 0 },
		{ "a..b:1", 3025, -EINVAL, NULL, 0 },
		{ "ho st:1", 3025, -EINVAL, NULL, 0 },
		{ "host/x:1", 3025, -EINVAL, NULL, 0 },
		{ "http://host:1", 3025, -EINVAL, NULL, 0 },
		{ " host:1", 3025, -EINVAL, NULL, 0 },
		{ "host", 0, -EINVAL, NULL, 0 }, /* no default port */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *host = (char *) "untouched";
		uint16_t port = 4242;
		int r = tu_parse_hostport(cases[i].in, cases[i].def, &host, &port);
		if (r != cases[i].r)
			fail_msg("'%s': got %d, want %d", cases[i].in, r, cases[i].r);
		if (r == 0) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
			free(host);
		} else {
			assert_string_equal(host, "untouched");
			assert_int_equal(port, 4242);
		}
	}
}

static void test_hostport_length(void **state)
{
	char name[300];
	char *host = NULL;
	uint16_t port = 0;

	memset(name, 'a', sizeof(name));
	name[TU_PARSE_HOST_MAX] = '\0';
	assert_int_equal(tu_parse_hostport(name, 1, &host, &port), 0);
	assert_int_equal(strlen(host), TU_PARSE_HOST_MAX);
	free(host);
	name[TU_PARSE_HOST_MAX] = 'a';
	name[TU_PARSE_HOST_MAX + 1] = '\0';
	assert_int_equal(tu_parse_hostport(name, 1, &host, &port), -EINVAL);
}

static void test_check_hostname(void **state)
{
	assert_int_equal(tu_parse_check_hostname("teleport.cluster.local"), 0);
	assert_int_equal(tu_parse_check_hostname("10.0.0.1"), 0);
	assert_int_equal(tu_parse_check_hostname(""), -EINVAL);
	assert_int_equal(tu_parse_check_hostname("a:1"), -EINVAL);
	assert_int_equal(tu_parse_check_hostname("bad name"), -EINVAL);
	assert_int_equal(tu_parse_check_hostname(NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_u32),
		cmocka_unit_test(test_digits_cursor),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_hostport_length),
		cmocka_unit_test(test_check_hostname),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
