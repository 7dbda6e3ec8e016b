/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-model-oom.c - allocation-failure torture for model.c (STYLE's
 * "torture mode"): this program replaces malloc/calloc/realloc/free (glibc
 * supports that; the library's and protobuf-c's calls resolve to these) and
 * for every N fails the Nth allocation of one parse/encode call, until the
 * call needs fewer than N.  Each run must end in success or -ENOMEM (never
 * -EBADMSG or a crash), leave the caller's arrays untouched on failure and
 * free everything it allocated.  Not built with sanitizers (they own malloc).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "err.h"
#include "model.h"

#include "oom-interpose.h"

static uint8_t *slurp(const char *name, size_t *ret_len)
{
	char path[4096];
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", getenv("TU_VECTORS_DIR"), name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t) st.st_size + 1);
	assert_non_null(buf);
	n = read(fd, buf, (size_t) st.st_size);
	close(fd);
	assert_int_equal(n, st.st_size);
	*ret_len = (size_t) n;
	return buf;
}

/* One operation on (buf, len); returns 0 or a negative errno, frees its own results. */
typedef int (*op_fn)(const uint8_t *buf, size_t len);

static int op_user(const uint8_t *buf, size_t len)
{
	struct tu_user u = {0};
	struct tu_err e;
	int r = tu_model_parse_user(buf, len, &u, &e);

	if (r == 0) {
		uint8_t *out = NULL;
		size_t olen;
		r = tu_model_encode_user(&u, &out, &olen);
		free(out);
	} else {
		assert_null(u.name);
		assert_true(e.msg[0] != 0);
	}
	tu_user_done(&u);
	return r;
}

static int op_role(const uint8_t *buf, size_t len)
{
	struct tu_role ro = {0};
	struct tu_err e;
	int r = tu_model_parse_role(buf, len, &ro, &e);

	if (r == 0) {
		uint8_t *out = NULL;
		size_t olen;
		r = tu_model_encode_role(&ro, &out, &olen);
		free(out);
	} else {
		assert_null(ro.name);
	}
	tu_role_done(&ro);
	return r;
}

static int op_lock(const uint8_t *buf, size_t len)
{
	struct tu_lock l = {0};
	struct tu_err e;
	int r = tu_model_parse_lock(buf, len, &l, &e);

	if (r == 0) {
		uint8_t *out = NULL;
		size_t olen;
		r = tu_model_encode_lock(&l, &out, &olen);
		free(out);
	}
	tu_lock_done(&l);
	return r;
}

static int op_ping(const uint8_t *buf, size_t len)
{
	struct tu_ping p = {0};
	struct tu_err e;
	int r = tu_model_parse_ping(buf, len, &p, &e);

	tu_ping_done(&p);
	return r;
}

/*
 * Appends to an array that already holds one user (made and freed outside
 * the counted region): on failure it must still hold exactly that one.
 */
static int op_list_users(const uint8_t *buf, size_t len)
{
	struct tu_user *v;
	size_t n = 1;
	char *next = NULL;
	struct tu_err e;
	int r;

	counting = false;
	v = calloc(1, sizeof(*v));
	assert_non_null(v);
	v[0].name = strdup("pre");
	assert_non_null(v[0].name);
	counting = true;

	r = tu_model_parse_list_users_append(buf, len, &v, &n, &next, &e);
	free(next);
	for (size_t i = 1; i < n; i++)
		tu_user_done(&v[i]);

	counting = false;
	if (r < 0) {
		assert_int_equal(n, 1);
		assert_null(next);
	} else {
		assert_true(n > 1);
	}
	assert_string_equal(v[0].name, "pre");
	tu_users_free(v, 1);
	counting = true;
	return r;
}

static int op_get_roles(const uint8_t *buf, size_t len)
{
	struct tu_role *v = NULL;
	size_t n = 0;
	struct tu_err e;
	int r = tu_model_parse_get_roles_append(buf, len, &v, &n, &e);

	if (r < 0)
		assert_int_equal(n, 0);
	tu_roles_free(v, n);
	return r;
}

static int op_get_locks(const uint8_t *buf, size_t len)
{
	struct tu_lock *v = NULL;
	size_t n = 0;
	struct tu_err e;
	int r = tu_model_parse_get_locks_append(buf, len, &v, &n, &e);

	if (r < 0)
		assert_int_equal(n, 0);
	tu_locks_free(v, n);
	return r;
}

static int op_requests(const uint8_t *buf, size_t len)
{
	struct tu_lock_target t[2] = {{.user = (char *) "alice"}, {.role = (char *) "dev"}};
	uint8_t *out = NULL;
	size_t olen;
	int r;

	r = tu_model_encode_get_locks_request(t, 2, true, &out, &olen);
	free(out);
	out = NULL;
	if (r == 0) {
		r = tu_model_encode_list_users_request(2, "carol", &out, &olen);
		free(out);
	}
	return r;
}

/* Fails allocation 0, 1, 2, ... of op until op succeeds without an injected failure. */
static void torture(op_fn op, const char *file)
{
	size_t len = 0;
	uint8_t *buf = file ? slurp(file, &len) : NULL;
	long n;

	for (n = 0; n < 100000; n++) {
		int r;

		live = 0;
		injected = false;
		countdown = n;
		counting = true;
		r = op(buf, len);
		counting = false;
		countdown = -1;
		if (live != 0)
			fail_msg("%s: failing allocation %ld leaked %ld blocks (r=%d)",
				 file ? file : "requests", n, live, r);
		if (!injected) {
			assert_int_equal(r, 0);
			break;
		}
		if (r != -ENOMEM && r != 0)
			fail_msg("%s: failing allocation %ld gave %d, expected -ENOMEM",
				 file ? file : "requests", n, r);
	}
	print_message("%s: %ld allocation failure points\n", file ? file : "requests", n);
	assert_true(n > 0);
	free(buf);
}

static bool have_vectors(void)
{
	const char *d = getenv("TU_VECTORS_DIR");

	return d && *d;
}

static void test_oom(void **state)
{
	if (!have_vectors()) {
		skip();
		return;
	}
	torture(op_user, "user_alice.bin");
	torture(op_user, "user_bob_locked.bin");
	torture(op_user, "user_carol_expired.bin");
	torture(op_role, "role_access.bin");
	torture(op_role, "role_dev.bin");
	torture(op_lock, "lock_role_dev.bin");
	torture(op_ping, "ping_response.bin");
	torture(op_list_users, "users_v1_list_users_response_page1.bin");
	torture(op_get_roles, "get_roles_response.bin");
	torture(op_get_locks, "get_locks_response.bin");
	torture(op_requests, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_oom),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
