/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-idhash.c - libcore/base/idhash.c: pinned hash values (the hash may
 * never change), range and reserved ids respected, collisions resolved the
 * same way whatever the input order, fixed and avoided ids honoured,
 * exhaustion reported per name, bad input rejected with a message.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "idhash.h"

static void test_pinned(void **state)
{
	/* FNV-1a 64 reference values: changing the hash renumbers every host. */
	assert_true(tu_idhash_fnv1a("") == 0xcbf29ce484222325ull);
	assert_true(tu_idhash_fnv1a("a") == 0xaf63dc4c8601ec8cull);
	assert_true(tu_idhash_fnv1a("foobar") == 0x85944171f73967e8ull);
	assert_int_equal(tu_idhash_home("alice", 200000, 899999999),
			 200000 + (uint32_t) (tu_idhash_fnv1a("alice") % (899999999 - 200000 + 1)));
}

static void test_reserved_and_range(void **state)
{
	assert_true(tu_idhash_reserved(0));
	assert_true(tu_idhash_reserved(999));
	assert_false(tu_idhash_reserved(1000));
	assert_true(tu_idhash_reserved(65534));
	assert_true(tu_idhash_reserved(65535));
	assert_true(tu_idhash_reserved(0xFFFFFFFFu));
	assert_true(tu_idhash_reserved(0xFFFFFFFEu));
	assert_false(tu_idhash_reserved(0xFFFFFFFDu));
	/* A range of only reserved ids is empty. */
	assert_int_equal(tu_idhash_home("x", 65534, 65535), 0);
	assert_int_equal(tu_idhash_home("x", 10, 999), 0);
	assert_int_equal(tu_idhash_home("x", 5, 4), 0);
	/* Clamped to [1000, ...] and away from 65534/65535. */
	for (int i = 0; i < 2000; i++) {
		char n[16];
		uint32_t id;

		snprintf(n, sizeof(n), "n%d", i);
		id = tu_idhash_home(n, 0, 1010);
		assert_true(id >= 1000 && id <= 1010);
		id = tu_idhash_home(n, 65530, 65537);
		assert_true(id >= 65530 && id <= 65537 && id != 65534 && id != 65535);
	}
	assert_int_equal(tu_idhash_next(1010, 1000, 1010), 1000);
	assert_int_equal(tu_idhash_next(65533, 65530, 65537), 65536);
	assert_int_equal(tu_idhash_next(0xFFFFFFFDu, 0, 0xFFFFFFFFu), 1000);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

	return x < y ? -1 : x > y;
}

static void test_order_independent_and_unique(void **state)
{
	enum { N = 300 };
	static char names[N][16];
	const char *fwd[N], *rev[N], *shuf[N];
	uint32_t a[N], b[N], c[N], sorted[N];
	unsigned seed = 7;

	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "user%d", i);
		fwd[i] = names[i];
		rev[N - 1 - i] = names[i];
		shuf[i] = names[i];
	}
	for (int i = N - 1; i > 0; i--) {
		int j = (int) (rand_r(&seed) % (unsigned) (i + 1));
		const char *t = shuf[i];

		shuf[i] = shuf[j];
		shuf[j] = t;
	}
	/* A tiny range: lots of collisions, exactly enough room (1000..1299). */
	assert_int_equal(tu_idhash_assign(fwd, N, 1000, 1299, NULL, NULL, 0, a, NULL), 0);
	assert_int_equal(tu_idhash_assign(rev, N, 1000, 1299, NULL, NULL, 0, b, NULL), 0);
	assert_int_equal(tu_idhash_assign(shuf, N, 1000, 1299, NULL, NULL, 0, c, NULL), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(a[i], b[N - 1 - i]);
		for (int k = 0; k < N; k++)
			if (shuf[k] == fwd[i])
				assert_int_equal(a[i], c[k]);
		assert_true(a[i] >= 1000 && a[i] <= 1299);
	}
	memcpy(sorted, a, sizeof(sorted));
	qsort(sorted, N, sizeof(uint32_t), cmp_u32);
	for (int i = 1; i < N; i++)
		assert_true(sorted[i] != sorted[i - 1]);
	/* No collision: everybody gets the home slot. */
	assert_int_equal(tu_idhash_assign(fwd, 3, 200000, 899999999, NULL, NULL, 0, a, NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(a[i], tu_idhash_home(fwd[i], 200000, 899999999));
}

static void test_fixed_avoid_exhaustion(void **state)
{
	const char *names[] = { "a", "b", "c", "d" };
	const uint32_t fixed[] = { 0, 5000, 0, 0 };
	const uint32_t avoid[] = { 1000, 1001 };
	uint32_t ids[4] = { 0 }, keep[4] = { 9, 9, 9, 9 };
	struct tu_err e = {};

	/* Range 1000..1003 with 1000/1001 avoided: two slots for a, c, d -> one gets 0. */
	assert_int_equal(tu_idhash_assign(names, 4, 1000, 1003, fixed, avoid, 2, ids, &e), 0);
	assert_int_equal(ids[1], 5000);
	{
		int zero = 0, in_range = 0;

		for (int i = 0; i < 4; i++) {
			if (i == 1)
				continue;
			if (ids[i] == 0)
				zero++;
			else if (ids[i] == 1002 || ids[i] == 1003)
				in_range++;
		}
		assert_int_equal(zero, 1);
		assert_int_equal(in_range, 2);
		assert_true(ids[0] != ids[2] || ids[0] == 0);
	}
	/* A fixed id inside the range is never handed to another name. */
	{
		const uint32_t fx[] = { 0, 1002, 0, 0 };

		assert_int_equal(tu_idhash_assign(names, 4, 1000, 1003, fx, NULL, 0, ids, &e), 0);
		for (int i = 0; i < 4; i++)
			if (i != 1)
				assert_true(ids[i] != 1002);
	}
	/* Errors leave ret_ids alone and say why. */
	assert_int_equal(tu_idhash_assign(names, 4, 2000, 1000, NULL, NULL, 0, keep, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "inverted"));
	assert_int_equal(tu_idhash_assign(names, 4, 1, 999, NULL, NULL, 0, keep, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "no usable id"));
	{
		const char *dup[] = { "x", "y", "x" };

		assert_int_equal(tu_idhash_assign(dup, 3, 1000, 2000, NULL, NULL, 0, keep, &e), -EINVAL);
		assert_non_null(strstr(e.msg, "duplicate name 'x'"));
	}
	{
		const char *withnull[] = { "x", NULL };

		assert_int_equal(tu_idhash_assign(withnull, 2, 1000, 2000, NULL, NULL, 0, keep, &e), -EINVAL);
		assert_non_null(strstr(e.msg, "name 1 is NULL"));
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(keep[i], 9);
	assert_int_equal(tu_idhash_assign(NULL, 0, 1000, 2000, NULL, NULL, 0, NULL, &e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pinned),
		cmocka_unit_test(test_reserved_and_range),
		cmocka_unit_test(test_order_independent_and_unique),
		cmocka_unit_test(test_fixed_avoid_exhaustion),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
