/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-auth.c - unit tests of libcore/auth.c over a scripted fake transport
 * (tests/unit/fake-transport.h) and the shared wire vectors
 * ($TU_VECTORS_DIR): RPC paths and request bytes, fallbacks on
 * UNIMPLEMENTED, paging, page halving on RESOURCE_EXHAUSTED, the legacy
 * GetUsers stream, error mapping and malformed answers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "err.h"
#include "fake-transport.h"
#include "grpc.h"
#include "model.h"

#define TIMEOUT_USEC UINT64_C(4000000)
#define PING_PATH    "/proto.AuthService/Ping"

static struct tu_auth *auth_over(struct fake_transport *f, size_t max_message)
{
	struct tu_auth *a = NULL;

	assert_int_equal(tu_auth_new_with_transport(&f->t, TIMEOUT_USEC, max_message, &a, NULL), 0);
	assert_non_null(a);
	return a;
}

/* The request message of call i equals the vector file's bytes. */
static void assert_request(const struct fake_transport *f, size_t i, const char *vector)
{
	size_t n;
	uint8_t *want = read_vector(vector, &n);

	assert_true(i < f->n_calls);
	if (f->req_lens[i] != n || (n && memcmp(f->reqs[i], want, n) != 0))
		fail_msg("request %zu to %s differs from %s (%zu vs %zu bytes)", i, f->paths[i],
			 vector, f->req_lens[i], n);
	free(want);
}

static void test_ping(void **state)
{
	size_t len;
	uint8_t *body = read_vector("ping_response.grpc", &len);
	const struct fake_step steps[] = {{"/proto.AuthService/Ping", body, len, 0, NULL, 0, NULL}};
	struct fake_transport *f = fake_new(steps, 1);
	bool closed = false;
	struct tu_auth *a = auth_over(f, 0);
	struct tu_ping p = {0};
	struct tu_err e;

	(void) state;
	f->closed = &closed;
	f->chunk = 1;
	uint64_t before = tu_transport_now_usec();
	assert_int_equal(tu_auth_ping(a, &p, &e), 0);
	assert_string_equal(p.cluster_name, "example.com");
	assert_string_equal(p.server_version, "16.4.0");
	assert_request(f, 0, "ping_request.bin");
	/* the deadline is now + the per-RPC budget */
	assert_true(f->deadlines[0] >= before + TIMEOUT_USEC);
	assert_true(f->deadlines[0] <= tu_transport_now_usec() + TIMEOUT_USEC);
	tu_ping_done(&p);
	assert_false(f->unexpected);
	assert_null(tu_auth_free(a));
	assert_true(closed);
	free(body);
}

static void test_get_user_v1(void **state)
{
	size_t len;
	uint8_t *body = framed_vector("users_v1_get_user_response.bin", &len);
	const struct fake_step steps[] = {
	    {"/teleport.users.v1.UsersService/GetUser", body, len, 0, NULL, 0, NULL},
	    {"/teleport.users.v1.UsersService/GetUser", NULL, 0, 5, "user \"zed\" is not found", 0,
	     NULL},
	    {"/teleport.users.v1.UsersService/GetUser", NULL, 0, 7,
	     "access denied to perform action \"read\" on \"user\"", 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_user u = {0};
	struct tu_err e;

	(void) state;
	assert_int_equal(tu_auth_get_user(a, "alice", &u, &e), 0);
	assert_string_equal(u.name, "alice");
	assert_int_equal(u.roles.n, 2);
	assert_request(f, 0, "users_v1_get_user_request.bin");
	tu_user_done(&u);

	memset(&u, 0, sizeof(u));
	assert_int_equal(tu_auth_get_user(a, "zed", &u, &e), -ENOENT);
	assert_string_equal(e.msg, "Teleport user 'zed' not found");
	assert_int_equal(e.grpc_status, 5);
	assert_null(u.name);

	assert_int_equal(tu_auth_get_user(a, "alice", &u, &e), -EACCES);
	assert_string_equal(
	    e.msg, "Auth refused: the credential lacks permission for UsersService/GetUser "
		   "(access denied to perform action \"read\" on \"user\")");
	assert_int_equal(e.grpc_status, 7);
	assert_null(u.name);

	assert_int_equal(tu_auth_get_user(a, "", &u, &e), -EINVAL);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(body);
}

static void test_get_user_fallback(void **state)
{
	size_t len;
	uint8_t *body = read_vector("user_alice.grpc", &len);
	const struct fake_step steps[] = {
	    {"/teleport.users.v1.UsersService/GetUser", NULL, 0, 12,
	     "unknown service teleport.users.v1.UsersService", 0, NULL},
	    {"/proto.AuthService/GetUser", body, len, 0, NULL, 0, NULL},
	    /* remembered: the second lookup goes straight to the legacy RPC */
	    {"/proto.AuthService/GetUser", NULL, 0, 5, "not found", 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_user u = {0};
	struct tu_err e;

	(void) state;
	assert_int_equal(tu_auth_get_user(a, "alice", &u, &e), 0);
	assert_string_equal(u.name, "alice");
	assert_request(f, 0, "users_v1_get_user_request.bin");
	assert_request(f, 1, "get_user_request.bin");
	tu_user_done(&u);
	memset(&u, 0, sizeof(u));
	assert_int_equal(tu_auth_get_user(a, "bob", &u, &e), -ENOENT);
	assert_string_equal(e.msg, "Teleport user 'bob' not found");
	assert_int_equal(f->n_calls, 3);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(body);
}

static void test_legacy_unimplemented_too(void **state)
{
	const struct fake_step steps[] = {
	    {"/teleport.users.v1.UsersService/GetUser", NULL, 0, 12, "", 0, NULL},
	    {"/proto.AuthService/GetUser", NULL, 0, 12, "unknown method GetUser", 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_user u = {0};
	struct tu_err e;

	(void) state;
	assert_int_equal(tu_auth_get_user(a, "alice", &u, &e), -EOPNOTSUPP);
	assert_string_equal(e.msg,
			    "AuthService/GetUser failed: UNIMPLEMENTED: unknown method GetUser");
	assert_false(f->unexpected);
	tu_auth_free(a);
}

static void test_list_users_paging(void **state)
{
	size_t l1, l2;
	uint8_t *p1 = framed_vector("users_v1_list_users_response_page1.bin", &l1);
	uint8_t *p2 = framed_vector("users_v1_list_users_response_page2.bin", &l2);
	const struct fake_step steps[] = {
	    {"/teleport.users.v1.UsersService/ListUsers", p1, l1, 0, NULL, 0, NULL},
	    {"/teleport.users.v1.UsersService/ListUsers", p2, l2, 0, NULL, 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_user *users = NULL;
	size_t n = 0;
	uint8_t *want = NULL;
	size_t want_len = 0;
	struct tu_err e;

	(void) state;
	assert_int_equal(tu_auth_list_users(a, &users, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(users[0].name, "alice");
	assert_string_equal(users[1].name, "bob");
	assert_string_equal(users[2].name, "carol");
	/* page size 1000, then the token of page 1 */
	assert_int_equal(tu_model_encode_list_users_request(1000, NULL, &want, &want_len), 0);
	assert_int_equal(f->req_lens[0], want_len);
	assert_memory_equal(f->reqs[0], want, want_len);
	free(want);
	assert_int_equal(tu_model_encode_list_users_request(1000, "carol", &want, &want_len), 0);
	assert_int_equal(f->req_lens[1], want_len);
	assert_memory_equal(f->reqs[1], want, want_len);
	free(want);
	tu_users_free(users, n);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(p1);
	free(p2);
}

static void test_list_users_halves_page(void **state)
{
	size_t l2;
	uint8_t *p2 = framed_vector("users_v1_list_users_response_page2.bin", &l2);
	const struct fake_step steps[] = {
	    {"/teleport.users.v1.UsersService/ListUsers", NULL, 0, 8, "message too large", 0, NULL},
	    {"/teleport.users.v1.UsersService/ListUsers", NULL, 0, 8, "still too large", 0, NULL},
	    {"/teleport.users.v1.UsersService/ListUsers", p2, l2, 0, NULL, 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_user *users = NULL;
	size_t n = 0;
	uint8_t *want = NULL;
	size_t want_len = 0;

	(void) state;
	assert_int_equal(tu_auth_list_users(a, &users, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(tu_model_encode_list_users_request(250, NULL, &want, &want_len), 0);
	assert_int_equal(f->req_lens[2], want_len);
	assert_memory_equal(f->reqs[2], want, want_len);
	free(want);
	tu_users_free(users, n);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(p2);
}

static void test_list_users_fallback_stream(void **state)
{
	size_t len;
	uint8_t *stream = read_vector("get_users_stream.grpc", &len);
	const struct fake_step steps[] = {
	    {"/teleport.users.v1.UsersService/ListUsers", NULL, 0, 12, "unknown service", 0, NULL},
	    {"/proto.AuthService/GetUsers", stream, len, 0, NULL, 0, NULL},
	    {"/proto.AuthService/GetUsers", stream, len, 0, NULL, 0, NULL},
	    {"/proto.AuthService/GetUsers", stream, len - 1, 0, NULL, 0, NULL},
	};
	static const size_t chunks[] = {0, 1, 5};

	(void) state;
	for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
		struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
		struct tu_auth *a = auth_over(f, 0);
		struct tu_user *users = NULL;
		size_t n = 0;
		struct tu_err e;

		f->chunk = chunks[c];
		assert_int_equal(tu_auth_list_users(a, &users, &n, &e), 0);
		assert_int_equal(n, 3);
		assert_string_equal(users[0].name, "alice");
		assert_string_equal(users[1].name, "bob");
		assert_string_equal(users[2].name, "carol");
		assert_int_equal(f->req_lens[1], 0);
		tu_users_free(users, n);

		/* remembered */
		assert_int_equal(tu_auth_list_users(a, &users, &n, &e), 0);
		assert_int_equal(n, 3);
		tu_users_free(users, n);

		/* a stream cut in its last frame is an error, and nothing leaks out */
		users = (struct tu_user *) 0x1;
		n = 77;
		assert_int_equal(tu_auth_list_users(a, &users, &n, &e), -EBADMSG);
		assert_non_null(strstr(e.msg, "truncated gRPC frame"));
		assert_ptr_equal(users, (struct tu_user *) 0x1);
		assert_int_equal(n, 77);
		assert_false(f->unexpected);
		tu_auth_free(a);
	}
	free(stream);
}

static void test_list_users_errors(void **state)
{
	size_t l1;
	uint8_t *p1 = framed_vector("users_v1_list_users_response_page1.bin", &l1);
	const struct fake_step steps[] = {
	    /* page 1 then the same page again: the token repeats */
	    {NULL, p1, l1, 0, NULL, 0, NULL},
	    {NULL, p1, l1, 0, NULL, 0, NULL},
	    /* UNIMPLEMENTED after ListUsers once worked is not a reason to fall back */
	    {NULL, NULL, 0, 12, "gone", 0, NULL},
	    /* transport failure */
	    {NULL, NULL, 0, 0, NULL, -ECONNREFUSED,
	     "cannot connect to 127.0.0.1:1: connection refused"},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_user *users = NULL;
	size_t n = 0;
	struct tu_err e;

	(void) state;
	assert_int_equal(tu_auth_list_users(a, &users, &n, &e), -EPROTO);
	assert_string_equal(
	    e.msg, "UsersService/ListUsers returned the same page token twice (paging loop)");
	assert_null(users);
	assert_int_equal(tu_auth_list_users(a, &users, &n, &e), -EOPNOTSUPP);
	assert_int_equal(tu_auth_list_users(a, &users, &n, &e), -ECONNREFUSED);
	assert_string_equal(e.msg, "cannot connect to 127.0.0.1:1: connection refused");
	assert_null(users);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(p1);
}

static void test_roles(void **state)
{
	size_t l1, l2, lr, lall;
	uint8_t *p1 = framed_vector("list_roles_response_page1.bin", &l1);
	uint8_t *p2 = framed_vector("list_roles_response_page2.bin", &l2);
	uint8_t *role = framed_vector("role_dev.bin", &lr);
	uint8_t *all = framed_vector("get_roles_response.bin", &lall);
	const struct fake_step steps[] = {
	    {"/proto.AuthService/ListRoles", p1, l1, 0, NULL, 0, NULL},
	    {"/proto.AuthService/ListRoles", p2, l2, 0, NULL, 0, NULL},
	    {"/proto.AuthService/GetRole", role, lr, 0, NULL, 0, NULL},
	    {"/proto.AuthService/GetRole", NULL, 0, 5, "role nope is not found", 0, NULL},
	};
	const struct fake_step legacy[] = {
	    {"/proto.AuthService/ListRoles", NULL, 0, 12, "unknown method ListRoles", 0, NULL},
	    {"/proto.AuthService/GetRoles", all, lall, 0, NULL, 0, NULL},
	    {"/proto.AuthService/GetRoles", all, lall, 0, NULL, 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_role *roles = NULL, r = {0};
	size_t n = 0;
	uint8_t *want = NULL;
	size_t want_len = 0;
	struct tu_err e;

	(void) state;
	assert_int_equal(tu_auth_list_roles(a, &roles, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(roles[0].name, "access");
	assert_string_equal(roles[1].name, "dev");
	assert_string_equal(roles[2].name, "no-prod");
	assert_int_equal(tu_model_encode_list_roles_request(1000, "no-prod", &want, &want_len), 0);
	assert_int_equal(f->req_lens[1], want_len);
	assert_memory_equal(f->reqs[1], want, want_len);
	free(want);
	tu_roles_free(roles, n);

	assert_int_equal(tu_auth_get_role(a, "dev", &r, &e), 0);
	assert_string_equal(r.name, "dev");
	assert_request(f, 2, "get_role_request.bin");
	tu_role_done(&r);
	memset(&r, 0, sizeof(r));
	assert_int_equal(tu_auth_get_role(a, "nope", &r, &e), -ENOENT);
	assert_string_equal(e.msg, "role 'nope' not found");
	assert_false(f->unexpected);
	tu_auth_free(a);

	f = fake_new(legacy, ELEMENTSOF(legacy));
	a = auth_over(f, 0);
	assert_int_equal(tu_auth_list_roles(a, &roles, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(f->req_lens[1], 0);
	tu_roles_free(roles, n);
	assert_int_equal(tu_auth_list_roles(a, &roles, &n, &e), 0); /* remembered */
	tu_roles_free(roles, n);
	assert_int_equal(f->n_calls, 3);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(p1);
	free(p2);
	free(role);
	free(all);
}

static size_t progress_calls;
static size_t progress_last;

static void on_progress(void *userdata, const char *what, size_t count)
{
	(void) userdata;
	assert_non_null(what);
	progress_calls++;
	progress_last = count;
}

static void test_locks_and_fetch_all(void **state)
{
	size_t lu, lp2, lr, ll;
	uint8_t *users = read_vector("users_v1_list_users_response_page1.grpc", &lu);
	uint8_t *page2 = framed_vector("users_v1_list_users_response_page2.bin", &lp2);
	uint8_t *roles = framed_vector("list_roles_response_page2.bin", &lr);
	uint8_t *locks = read_vector("get_locks_response.grpc", &ll);
	const struct fake_step steps[] = {
	    {"/proto.AuthService/GetLocks", locks, ll, 0, NULL, 0, NULL},
	    {"/teleport.users.v1.UsersService/ListUsers", users, lu, 0, NULL, 0, NULL},
	    {"/teleport.users.v1.UsersService/ListUsers", page2, lp2, 0, NULL, 0, NULL},
	    {"/proto.AuthService/ListRoles", roles, lr, 0, NULL, 0, NULL},
	    {"/proto.AuthService/GetLocks", locks, ll, 0, NULL, 0, NULL},
	    {"/teleport.clusterconfig.v1.ClusterConfigService/GetAuthPreference", NULL, 0, 12, "unknown service", 0, NULL},
	    {"/proto.AuthService/GetAuthPreference", NULL, 0, 12, "unknown method", 0, NULL},
	    {"/teleport.trust.v1.TrustService/GetCertAuthority", NULL, 0, 12, "unknown service", 0, NULL},
	    /* fetch_all failing half way returns nothing */
	    {"/teleport.users.v1.UsersService/ListUsers", page2, lp2, 0, NULL, 0, NULL},
	    {"/proto.AuthService/ListRoles", NULL, 0, 14, "connection reset", 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_lock *l = NULL;
	size_t n = 0;
	struct tu_dataset d = {0};
	struct tu_err e;

	(void) state;
	tu_auth_set_progress(a, on_progress, NULL);
	assert_int_equal(tu_auth_set_cluster(a, "example.com"), 0);
	assert_int_equal(tu_auth_get_locks(a, &l, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_request(f, 0, "get_locks_request_in_force.bin");
	tu_locks_free(l, n);

	progress_calls = 0;
	assert_int_equal(tu_auth_fetch_all(a, &d, &e), 0);
	assert_int_equal(d.n_users, 3);
	assert_int_equal(d.n_roles, 1);
	assert_int_equal(d.n_locks, 2);
	assert_false(d.auth_pref.known); /* neither RPC: not a Teleport server, roles decide */
	assert_false(d.user_ca.known);   /* no TrustService: certificates prove nothing */
	assert_true(progress_calls >= 3);
	assert_int_equal(progress_last, 2);
	tu_dataset_done(&d);

	memset(&d, 0, sizeof(d));
	assert_int_equal(tu_auth_fetch_all(a, &d, &e), -EIO);
	assert_string_equal(e.msg, "AuthService/ListRoles failed: UNAVAILABLE: connection reset");
	assert_null(d.users);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(users);
	free(roles);
	free(locks);
	free(page2);
}

/* One AuthPreferenceV2 as a gRPC frame. */
static uint8_t *framed_pref(const struct tu_auth_pref *p, size_t *ret_len)
{
	uint8_t *m = NULL, *b = NULL;
	size_t n = 0;

	assert_int_equal(tu_model_encode_auth_pref(p, &m, &n), 0);
	assert_int_equal(tu_grpc_frame(m, n, &b, ret_len), 0);
	free(m);
	return b;
}

static void test_auth_pref(void **state)
{
	static const char v1[] = "/teleport.clusterconfig.v1.ClusterConfigService/GetAuthPreference";
	static const char legacy[] = "/proto.AuthService/GetAuthPreference";
	const struct tu_auth_pref strict = {
	    .known = true, .require_mfa_type = 1, .locking_mode = (char *) "strict",
	    .device_trust_mode = (char *) "required"};
	const struct tu_auth_pref plain = {.known = true};
	size_t ls, lp;
	uint8_t *bs = framed_pref(&strict, &ls), *bp = framed_pref(&plain, &lp);
	static const uint8_t junk[] = {0, 0, 0, 0, 3, 0x2a, 0x05, 0x01};
	const struct fake_step current[] = {
	    /* a current server: the clusterconfig.v1 service answers */
	    {v1, bs, ls, 0, NULL, 0, NULL},
	    {v1, bp, lp, 0, NULL, 0, NULL},
	};
	const struct fake_step older[] = {
	    /* one before clusterconfig.v1: the legacy RPC, and only it from then on */
	    {v1, NULL, 0, 12, "unknown service teleport.clusterconfig.v1.ClusterConfigService", 0, NULL},
	    {legacy, bs, ls, 0, NULL, 0, NULL},
	    {legacy, NULL, 0, 7, "access denied to perform action \"read\" on \"cluster_auth_preference\"", 0, NULL},
	    {legacy, junk, sizeof(junk), 0, NULL, 0, NULL},
	};
	struct fake_transport *f = fake_new(current, ELEMENTSOF(current));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_auth_pref p = {0};
	struct tu_err e;

	(void) state;
	assert_int_equal(tu_auth_get_auth_pref(a, &p, &e), 0);
	assert_true(p.known);
	assert_int_equal(p.require_mfa_type, 1);
	assert_string_equal(p.locking_mode, "strict");
	assert_string_equal(p.device_trust_mode, "required");
	assert_int_equal(f->req_lens[0], 0); /* an empty request */
	tu_auth_pref_done(&p);
	assert_int_equal(tu_auth_get_auth_pref(a, &p, &e), 0);
	assert_true(p.known);
	assert_int_equal(p.require_mfa_type, 0);
	assert_null(p.locking_mode);
	assert_null(p.device_trust_mode);
	tu_auth_pref_done(&p);
	assert_false(f->unexpected);
	tu_auth_free(a);

	f = fake_new(older, ELEMENTSOF(older));
	a = auth_over(f, 0);
	assert_int_equal(tu_auth_get_auth_pref(a, &p, &e), 0);
	assert_true(p.known);
	assert_string_equal(p.locking_mode, "strict");
	tu_auth_pref_done(&p);
	/* Refused: an error, never "unknown" (which would let roles alone decide). */
	assert_int_equal(tu_auth_get_auth_pref(a, &p, &e), -EACCES);
	assert_false(p.known);
	assert_int_equal(tu_auth_get_auth_pref(a, &p, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "malformed answer to AuthService/GetAuthPreference"));
	assert_false(p.known);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(bs);
	free(bp);
}

/* One CertAuthorityV2 (user, public keys) as a gRPC frame. */
static uint8_t *framed_ca(const char *cluster, const char *const *keys, size_t n_keys, size_t *ret_len)
{
	uint8_t *m = NULL, *b = NULL;
	size_t n = 0;
	struct tu_user_ca ca = {.known = true, .cluster = (char *) cluster};

	for (size_t i = 0; i < n_keys; i++)
		assert_int_equal(tu_strv_push(&ca.keys, keys[i]), 0);
	assert_int_equal(tu_model_encode_user_ca(&ca, &m, &n), 0);
	tu_strv_done(&ca.keys);
	assert_int_equal(tu_grpc_frame(m, n, &b, ret_len), 0);
	free(m);
	return b;
}

/*
 * Teleport's user CA: TrustService.GetCertAuthority {user, <cluster>, no keys}; the cluster from
 * Ping when not known; UNIMPLEMENTED (before Teleport 13) and NOT_FOUND are answers, not errors;
 * an answer for another cluster is refused; a failed fetch never fails a sync's fetch_all.
 */
static void test_user_ca(void **state)
{
	static const char rpc[] = "/teleport.trust.v1.TrustService/GetCertAuthority";
	static const char *const keys[] = {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlbGVwb3J0LXVzZXItY2EtdGVzdC1rZXk=",
					   "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAAQC7"};
	size_t lc, lo, lp, lu, lr, ll;
	uint8_t *good = framed_ca("example.com", keys, 2, &lc), *other = framed_ca("other.com", keys, 1, &lo);
	uint8_t *ping = read_vector("ping_response.grpc", &lp);
	uint8_t *users = framed_vector("users_v1_list_users_response_page2.bin", &lu); /* the last page */
	uint8_t *roles = framed_vector("list_roles_response_page2.bin", &lr);
	uint8_t *locks = read_vector("get_locks_response.grpc", &ll);
	const struct fake_step steps[] = {
	    {"/proto.AuthService/Ping", ping, lp, 0, NULL, 0, NULL},
	    {rpc, good, lc, 0, NULL, 0, NULL},
	    {rpc, NULL, 0, 5, "key \"/authorities/user/example.com\" is not found", 0, NULL},
	    {rpc, NULL, 0, 12, "unknown service teleport.trust.v1.TrustService", 0, NULL},
	    {rpc, other, lo, 0, NULL, 0, NULL},
	    {rpc, NULL, 0, 7, "access denied", 0, NULL},
	    /* a sync whose CA fetch fails keeps users, roles and locks */
	    {"/teleport.users.v1.UsersService/ListUsers", users, lu, 0, NULL, 0, NULL},
	    {"/proto.AuthService/ListRoles", roles, lr, 0, NULL, 0, NULL},
	    {"/proto.AuthService/GetLocks", locks, ll, 0, NULL, 0, NULL},
	    {"/teleport.clusterconfig.v1.ClusterConfigService/GetAuthPreference", NULL, 0, 12, "x", 0, NULL},
	    {"/proto.AuthService/GetAuthPreference", NULL, 0, 12, "x", 0, NULL},
	    {rpc, NULL, 0, 14, "connection reset", 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_user_ca ca = {0};
	struct tu_dataset d = {0};
	uint8_t *want = NULL;
	size_t want_len = 0;
	struct tu_err e;

	(void) state;
	assert_int_equal(tu_auth_get_user_ca(a, &ca, &e), 0);
	assert_true(ca.known);
	assert_string_equal(ca.cluster, "example.com");
	assert_int_equal(ca.keys.n, 2);
	assert_string_equal(ca.keys.v[0], keys[0]);
	assert_string_equal(ca.keys.v[1], keys[1]);
	tu_user_ca_done(&ca);
	/* the request: type user, the cluster Ping named, include_key false */
	assert_int_equal(tu_model_encode_get_cert_authority_request("user", "example.com", &want, &want_len), 0);
	assert_int_equal(f->req_lens[1], want_len);
	assert_memory_equal(f->reqs[1], want, want_len);
	free(want);

	assert_int_equal(tu_auth_get_user_ca(a, &ca, &e), 0); /* NOT_FOUND: known, no keys */
	assert_true(ca.known);
	assert_int_equal(ca.keys.n, 0);
	tu_user_ca_done(&ca);
	assert_int_equal(tu_auth_get_user_ca(a, &ca, &e), 0); /* UNIMPLEMENTED: unknown */
	assert_false(ca.known);
	assert_int_equal(tu_auth_get_user_ca(a, &ca, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "got cluster 'other.com'"));
	assert_int_equal(tu_auth_get_user_ca(a, &ca, &e), -EACCES);
	assert_false(ca.known);

	assert_int_equal(tu_auth_fetch_all(a, &d, &e), 0);
	assert_true(d.n_users > 0 && d.n_roles > 0 && d.n_locks > 0);
	assert_false(d.user_ca.known);
	tu_dataset_done(&d);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(good);
	free(other);
	free(ping);
	free(users);
	free(roles);
	free(locks);
}

static void test_malformed_answers(void **state)
{
	static const uint8_t garbage[] = {0, 0, 0, 0, 3, 0xff, 0xff, 0xff};
	size_t len;
	uint8_t *ping = read_vector("ping_response.grpc", &len);
	uint8_t two[512], big[300];
	memcpy(two, ping, len);
	memcpy(two + len, ping, len);
	/* a 200-byte message, over the 100-byte limit below */
	memset(big, 0, sizeof(big));
	big[3] = 0;
	big[4] = 200;
	const struct fake_step steps[] = {
	    {NULL, garbage, sizeof(garbage), 0, NULL, 0, NULL},
	    {NULL, two, 2 * len, 0, NULL, 0, NULL},
	    {NULL, ping, len - 3, 0, NULL, 0, NULL},
	    {NULL, ping, len, -1, NULL, 0, NULL},
	    {NULL, big, 205, 0, NULL, 0, NULL},
	    {NULL, NULL, 0, 0, NULL, -ETIMEDOUT,
	     "no complete answer from 10.0.0.1:3025 within 4000 ms"},
	    {NULL, ping, len, 0, NULL, 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 100);
	struct tu_ping p = {0};
	struct tu_err e;

	(void) state;
	assert_true(2 * len <= sizeof(two));
	assert_int_equal(tu_auth_ping(a, &p, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "malformed answer to AuthService/Ping"));
	assert_null(p.cluster_name);
	assert_int_equal(tu_auth_ping(a, &p, &e), -EBADMSG);
	assert_string_equal(e.msg,
			    "unary RPC AuthService/Ping answered with more than one message");
	assert_int_equal(tu_auth_ping(a, &p, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "truncated gRPC frame (got"));
	assert_int_equal(tu_auth_ping(a, &p, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "no grpc-status trailer"));
	assert_int_equal(tu_auth_ping(a, &p, &e), -EMSGSIZE);
	assert_string_equal(e.msg, "gRPC message of 200 bytes is over the limit of 100 bytes");
	assert_int_equal(tu_auth_ping(a, &p, &e), -ETIMEDOUT);
	assert_int_equal(tu_auth_ping(a, &p, NULL), 0);
	tu_ping_done(&p);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(ping);
}

static void test_budget(void **state)
{
	size_t len;
	uint8_t *body = read_vector("ping_response.grpc", &len);
	const struct fake_step steps[] = {
	    {PING_PATH, body, len, 0, NULL, 0, NULL},
	    {PING_PATH, body, len, 0, NULL, 0, NULL},
	    {PING_PATH, body, len, 0, NULL, 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_ping p = {0};
	struct tu_err e;

	(void) state;
	/* a budget shorter than the per-RPC timeout caps the deadline */
	uint64_t before = tu_transport_now_usec();
	tu_auth_set_budget(a, 1000000);
	assert_int_equal(tu_auth_ping(a, &p, &e), 0);
	tu_ping_done(&p);
	assert_true(f->deadlines[0] >= before + 1000000);
	assert_true(f->deadlines[0] < before + TIMEOUT_USEC);

	/* a budget longer than it does not extend it */
	before = tu_transport_now_usec();
	tu_auth_set_budget(a, 60 * TIMEOUT_USEC);
	assert_int_equal(tu_auth_ping(a, &p, &e), 0);
	tu_ping_done(&p);
	assert_true(f->deadlines[1] <= tu_transport_now_usec() + TIMEOUT_USEC);

	/* spent: no network call at all */
	tu_auth_set_budget(a, 1);
	usleep(2000);
	memset(&p, 0, sizeof(p));
	assert_int_equal(tu_auth_ping(a, &p, &e), -ETIMEDOUT);
	assert_string_equal(e.msg,
			    "no time left for AuthService/Ping: the caller's time budget is spent");
	assert_int_equal(f->n_calls, 2);
	assert_null(p.cluster_name);

	/* lifted */
	tu_auth_set_budget(a, 0);
	assert_int_equal(tu_auth_ping(a, &p, &e), 0);
	tu_ping_done(&p);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(body);
}

/* Within one budget a refused or unreachable Auth is dialled once (issue 10: an offline
 * ssh-principals asks for the user CA, then the user); a new budget, or none, dials again. */
static void test_unreachable_once_per_budget(void **state)
{
	size_t len;
	uint8_t *body = read_vector("ping_response.grpc", &len);
	const struct fake_step steps[] = {
	    {PING_PATH, NULL, 0, 0, NULL, -ECONNREFUSED, "cannot connect to 127.0.0.1:1: connection refused"},
	    {PING_PATH, NULL, 0, 0, NULL, -EHOSTUNREACH, "cannot connect to 10.0.0.1:3025: No route to host"},
	    {PING_PATH, NULL, 0, 14, "unavailable", 0, NULL},
	    {PING_PATH, NULL, 0, 0, NULL, -ECONNREFUSED, "refused, no budget"},
	    {PING_PATH, NULL, 0, 0, NULL, -ECONNREFUSED, "refused, no budget"},
	    {PING_PATH, body, len, 0, NULL, 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_auth *a = auth_over(f, 0);
	struct tu_ping p = {0};
	struct tu_err e;

	(void) state;
	tu_auth_set_budget(a, 60 * TIMEOUT_USEC);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tu_auth_ping(a, &p, &e), -ECONNREFUSED);
		assert_string_equal(e.msg, "cannot connect to 127.0.0.1:1: connection refused");
		assert_int_equal(f->n_calls, 1);
	}
	/* a new budget dials again; unreachable is remembered too */
	tu_auth_set_budget(a, 60 * TIMEOUT_USEC);
	assert_int_equal(tu_auth_ping(a, &p, &e), -EHOSTUNREACH);
	assert_int_equal(tu_auth_ping(a, &p, &e), -EHOSTUNREACH);
	assert_string_equal(e.msg, "cannot connect to 10.0.0.1:3025: No route to host");
	assert_int_equal(f->n_calls, 2);
	/* an answer from Auth (a gRPC status) is no reason to stop asking */
	tu_auth_set_budget(a, 60 * TIMEOUT_USEC);
	assert_true(tu_auth_ping(a, &p, &e) < 0);
	assert_int_equal(e.grpc_status, 14);
	/* without a budget (sync, watch) every call dials */
	tu_auth_set_budget(a, 0);
	assert_int_equal(tu_auth_ping(a, &p, &e), -ECONNREFUSED);
	assert_int_equal(tu_auth_ping(a, &p, &e), -ECONNREFUSED);
	assert_int_equal(tu_auth_ping(a, &p, &e), 0);
	assert_int_equal(f->n_calls, 6);
	tu_ping_done(&p);
	assert_false(f->unexpected);
	tu_auth_free(a);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ping),
	    cmocka_unit_test(test_get_user_v1),
	    cmocka_unit_test(test_get_user_fallback),
	    cmocka_unit_test(test_legacy_unimplemented_too),
	    cmocka_unit_test(test_list_users_paging),
	    cmocka_unit_test(test_list_users_halves_page),
	    cmocka_unit_test(test_list_users_fallback_stream),
	    cmocka_unit_test(test_list_users_errors),
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test(test_locks_and_fetch_all),
	    cmocka_unit_test(test_auth_pref),
	    cmocka_unit_test(test_user_ca),
	    cmocka_unit_test(test_malformed_answers),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_unreachable_once_per_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
