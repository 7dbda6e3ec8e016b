/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-grpc.c - unit tests of libcore/grpc.c: the frame parser (table
 * cases, chunking, every truncation and every bit flip of a real stream),
 * request framing, grpc-timeout formatting, grpc-message decoding, the
 * status -> errno table and tu_grpc_call/tu_grpc_unary over a fake
 * transport.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "fake-transport.h"
#include "grpc.h"
#include "model.h"

struct collect {
	size_t n;
	size_t total;
	size_t lens[16];
	int fail_at; /* return an error from the n-th message (1-based), 0 = never */
};

static int on_msg(void *userdata, const uint8_t *msg, size_t len, struct tu_err *reterr)
{
	struct collect *c = userdata;

	assert_non_null(msg);
	if (c->n < 16)
		c->lens[c->n] = len;
	c->n++;
	c->total += len;
	if (c->fail_at && (int) c->n == c->fail_at)
		return tu_err_set(reterr, -ECANCELED, "callback refused message %zu", c->n);
	return 0;
}

struct frame_case {
	const char *name;
	const char *bytes; /* hex-free: raw bytes */
	size_t len;
	size_t max;
	int feed_r;      /* expected from feed */
	int finish_r;    /* expected from finish (when feed succeeded) */
	size_t n;        /* messages delivered */
	const char *msg; /* substring of the error */
};

#define B(s) s, sizeof(s) - 1

static const struct frame_case frame_cases[] = {
    {"empty stream", B(""), 16, 0, 0, 0, NULL},
    {"one empty message", B("\0\0\0\0\0"), 16, 0, 0, 1, NULL},
    {"one message", B("\0\0\0\0\3abc"), 16, 0, 0, 1, NULL},
    {"two messages", B("\0\0\0\0\3abc\0\0\0\0\1z"), 16, 0, 0, 2, NULL},
    {"message at the limit", B("\0\0\0\0\4abcd"), 4, 0, 0, 1, NULL},
    {"message over the limit", B("\0\0\0\0\5abcde"), 4, -EMSGSIZE, 0, 0,
     "gRPC message of 5 bytes is over the limit of 4 bytes"},
    {"huge length", B("\0\xff\xff\xff\xff"), 1024, -EMSGSIZE, 0, 0, "4294967295 bytes"},
    {"compressed flag", B("\1\0\0\0\1x"), 16, -EPROTO, 0, 0, "compressed gRPC message at byte 0"},
    {"compressed second frame", B("\0\0\0\0\1x\1\0\0\0\1x"), 16, -EPROTO, 0, 1,
     "compressed gRPC message at byte 6"},
    {"bad flags", B("\x80\0\0\0\1x"), 16, -EPROTO, 0, 0, "invalid gRPC frame flags 0x80"},
    {"HTTP text", B("HTTP/1.1 200 OK\r\n"), 1024, -EPROTO, 0, 0, "invalid gRPC frame flags 0x48"},
    {"truncated header", B("\0\0\0"), 16, 0, -EBADMSG, 0,
     "truncated gRPC frame (got 3 of 5 bytes)"},
    {"truncated body", B("\0\0\0\0\12abcd"), 16, 0, -EBADMSG, 0,
     "truncated gRPC frame (got 9 of 15 bytes)"},
    {"truncated second frame", B("\0\0\0\0\1x\0\0\0\0\2y"), 16, 0, -EBADMSG, 1,
     "truncated gRPC frame (got 6 of 7 bytes)"},
};

static void run_frame_case(const struct frame_case *tc, size_t chunk)
{
	struct tu_grpc_parser p;
	struct collect c = {0};
	struct tu_err e;
	int r = 0;

	tu_err_clear(&e);
	tu_grpc_parser_init(&p, tc->max, on_msg, &c);
	for (size_t off = 0; off < tc->len && r == 0; off += chunk) {
		size_t n = chunk < tc->len - off ? chunk : tc->len - off;
		r = tu_grpc_parser_feed(&p, (const uint8_t *) tc->bytes + off, n, &e);
	}
	if (r == 0)
		r = tu_grpc_parser_finish(&p, &e);
	int expect = tc->feed_r ? tc->feed_r : tc->finish_r;
	if (r != expect)
		fail_msg("%s (chunk %zu): got %d, expected %d (%s)", tc->name, chunk, r, expect,
			 e.msg);
	assert_int_equal(c.n, tc->n);
	assert_int_equal(tu_grpc_parser_count(&p), tc->n);
	if (tc->msg) {
		if (!strstr(e.msg, tc->msg))
			fail_msg("%s: message '%s' lacks '%s'", tc->name, e.msg, tc->msg);
		assert_int_equal(e.code, expect);
	}
	/* sticky */
	if (expect < 0) {
		assert_int_equal(tu_grpc_parser_feed(&p, (const uint8_t *) "\0", 1, NULL), expect);
		assert_int_equal(tu_grpc_parser_finish(&p, NULL), expect);
	}
	tu_grpc_parser_done(&p);
	tu_grpc_parser_done(&p); /* safe twice */
}

static void test_frame_table(void **state)
{
	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(frame_cases); i++) {
		run_frame_case(&frame_cases[i], 1);
		run_frame_case(&frame_cases[i], 2);
		run_frame_case(&frame_cases[i], 7);
		run_frame_case(&frame_cases[i], 1 << 20);
	}
}

static void test_callback_error_stops(void **state)
{
	struct tu_grpc_parser p;
	struct collect c = {.fail_at = 2};
	struct tu_err e;

	(void) state;
	tu_err_clear(&e);
	tu_grpc_parser_init(&p, 16, on_msg, &c);
	assert_int_equal(
	    tu_grpc_parser_feed(&p, (const uint8_t *) "\0\0\0\0\1a\0\0\0\0\1b\0\0\0\0\1c", 18, &e),
	    -ECANCELED);
	assert_int_equal(c.n, 2);
	assert_string_equal(e.msg, "callback refused message 2");
	tu_grpc_parser_done(&p);
}

/* The real 3-frame GetUsers stream: whole, in every chunking, every truncation, every bit flip. */
static int parse_user_msg(void *userdata, const uint8_t *msg, size_t len, struct tu_err *reterr)
{
	struct tu_dataset *d = userdata;

	return tu_model_parse_user_append(msg, len, &d->users, &d->n_users, reterr);
}

static int run_stream(const uint8_t *buf, size_t len, size_t max, size_t *ret_n, struct tu_err *e)
{
	struct tu_grpc_parser p;
	struct tu_dataset d = {0};
	int r;

	tu_err_clear(e);
	tu_grpc_parser_init(&p, max, parse_user_msg, &d);
	r = tu_grpc_parser_feed(&p, buf, len, e);
	if (r == 0)
		r = tu_grpc_parser_finish(&p, e);
	*ret_n = d.n_users;
	tu_grpc_parser_done(&p);
	tu_dataset_done(&d);
	return r;
}

static void test_stream_vector(void **state)
{
	size_t len, n;
	uint8_t *buf = read_vector("get_users_stream.grpc", &len);
	size_t bounds[4] = {0}, nb = 0;
	struct tu_err e;

	(void) state;
	assert_int_equal(run_stream(buf, len, 1 << 20, &n, &e), 0);
	assert_int_equal(n, 3);

	/* frame boundaries, from the prefixes */
	for (size_t off = 0; off < len && nb < 4;) {
		bounds[nb++] = off;
		uint32_t l = (uint32_t) buf[off + 1] << 24 | (uint32_t) buf[off + 2] << 16 |
			     (uint32_t) buf[off + 3] << 8 | buf[off + 4];
		off += 5 + l;
	}
	assert_int_equal(nb, 3);

	/* every truncation: a clean stop at a boundary, else "truncated gRPC frame" */
	for (size_t cut = 0; cut < len; cut++) {
		int r = run_stream(buf, cut, 1 << 20, &n, &e);
		bool boundary = cut == bounds[0] || cut == bounds[1] || cut == bounds[2];
		if (boundary) {
			assert_int_equal(r, 0);
		} else {
			if (r != -EBADMSG || !strstr(e.msg, "truncated gRPC frame"))
				fail_msg("cut %zu: %d %s", cut, r, e.msg);
		}
	}

	/* every single-bit flip: success or a clean error with a message */
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (uint8_t) (1u << bit);
			int r = run_stream(buf, len, 1 << 20, &n, &e);
			buf[i] ^= (uint8_t) (1u << bit);
			if (r == 0)
				continue;
			if (r != -EBADMSG && r != -EPROTO && r != -EMSGSIZE)
				fail_msg("flip %zu.%d: unexpected %d (%s)", i, bit, r, e.msg);
			assert_int_equal(e.code, r);
			assert_true(e.msg[0] != '\0');
		}
	}
	free(buf);
}

static void test_frame_request(void **state)
{
	uint8_t *b = NULL;
	size_t n = 0;

	(void) state;
	assert_int_equal(tu_grpc_frame((const uint8_t *) "abc", 3, &b, &n), 0);
	assert_int_equal(n, 8);
	assert_memory_equal(b, "\0\0\0\0\3abc", 8);
	free(b);
	assert_int_equal(tu_grpc_frame(NULL, 0, &b, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(b, "\0\0\0\0\0", 5);
	free(b);
	b = NULL;
	n = 77;
	assert_int_equal(tu_grpc_frame((const uint8_t *) "", (size_t) UINT32_MAX + 1, &b, &n),
			 -EMSGSIZE);
	assert_null(b);
	assert_int_equal(n, 77);
}

static void test_timeout_format(void **state)
{
	static const struct {
		uint64_t usec;
		const char *want;
	} cases[] = {
	    {0, "1m"},
	    {1, "1m"},
	    {999, "1m"},
	    {1000, "1m"},
	    {1001, "2m"},
	    {3000000, "3000m"},
	    {4000000, "4000m"},
	    {UINT64_C(99999999000), "99999999m"},
	    {UINT64_C(99999999001), "100000S"},
	    {UINT64_C(100000000000000), "1666667M"},
	    {UINT64_C(5999999940000000), "99999999M"},
	    {UINT64_C(5999999940000001), "1666667H"},
	    {UINT64_MAX, "99999999H"},
	};

	char buf[16];

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		assert_int_equal(tu_grpc_format_timeout(cases[i].usec, buf, sizeof(buf)), 0);
		if (strcmp(buf, cases[i].want) != 0)
			fail_msg("%llu usec: got %s, want %s", (unsigned long long) cases[i].usec,
				 buf, cases[i].want);
		assert_true(strlen(buf) <= 9);
	}
	assert_int_equal(tu_grpc_format_timeout(3000000, buf, 5), -ERANGE);
	assert_int_equal(tu_grpc_format_timeout(3000000, buf, 6), 0);
}

static void test_percent_decode(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
	    {"", ""},
	    {"plain text", "plain text"},
	    {"a%20b", "a b"},
	    {"100%25", "100%"},
	    {"%zz%4", "%zz%4"},
	    {"%", "%"},
	    {"line%0Abreak", "line?break"},
	    {"nul%00", "nul?"},
	    {"%C3%A9t%C3%A9", "\xc3\xa9t\xc3\xa9"},
	    {"user %22bob%22 is not found", "user \"bob\" is not found"},
	};

	char out[64];

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		size_t n =
		    tu_grpc_percent_decode(cases[i].in, strlen(cases[i].in), out, sizeof(out));
		assert_string_equal(out, cases[i].want);
		assert_int_equal(n, strlen(cases[i].want));
	}
	/* truncation keeps the NUL */
	assert_int_equal(tu_grpc_percent_decode("abcdef", 6, out, 4), 3);
	assert_string_equal(out, "abc");
	assert_int_equal(tu_grpc_percent_decode("abc", 3, out, 0), 0);
}

static void test_rpc_name(void **state)
{
	char b[64];

	(void) state;
	assert_string_equal(
	    tu_grpc_rpc_name("/teleport.users.v1.UsersService/GetUser", b, sizeof(b)),
	    "UsersService/GetUser");
	assert_string_equal(tu_grpc_rpc_name("/proto.AuthService/Ping", b, sizeof(b)),
			    "AuthService/Ping");
	assert_string_equal(tu_grpc_rpc_name("/Svc/M", b, sizeof(b)), "Svc/M");
	assert_string_equal(tu_grpc_rpc_name("/x", b, sizeof(b)), "x");
	assert_string_equal(tu_grpc_rpc_name(NULL, b, sizeof(b)), "");
	assert_string_equal(tu_grpc_code_name(7), "PERMISSION_DENIED");
	assert_string_equal(tu_grpc_code_name(17), "UNKNOWN_STATUS");
	assert_string_equal(tu_grpc_code_name(-1), "UNKNOWN_STATUS");
}

static void test_status_table(void **state)
{
	static const struct {
		int code;
		const char *message;
		int want;
		const char *text;
	} cases[] = {
	    {0, "", 0, NULL},
	    {1, "", -EIO, "UsersService/GetUser failed: CANCELLED"},
	    {2, "boom", -EIO, "UsersService/GetUser failed: UNKNOWN: boom"},
	    {3, "bad", -EIO, "UsersService/GetUser failed: INVALID_ARGUMENT: bad"},
	    {4, "", -ETIMEDOUT, "UsersService/GetUser failed: DEADLINE_EXCEEDED"},
	    {5, "user \"x\" is not found", -ENOENT,
	     "UsersService/GetUser failed: NOT_FOUND: user \"x\" is not found"},
	    {6, "", -EIO, "ALREADY_EXISTS"},
	    {7, "access denied to perform action \"read\" on \"user\"", -EACCES,
	     "Auth refused: the credential lacks permission for UsersService/GetUser (access denied to perform action \"read\" on \"user\")"},
	    {7, "", -EACCES,
	     "Auth refused: the credential lacks permission for UsersService/GetUser (PERMISSION_DENIED)"},
	    {8, "too big", -EIO, "RESOURCE_EXHAUSTED: too big"},
	    {9, "", -EIO, "FAILED_PRECONDITION"},
	    {10, "", -EIO, "ABORTED"},
	    {11, "", -EIO, "OUT_OF_RANGE"},
	    {12, "unknown service teleport.users.v1.UsersService", -EOPNOTSUPP,
	     "UsersService/GetUser failed: UNIMPLEMENTED: unknown service teleport.users.v1.UsersService"},
	    {13, "", -EIO, "INTERNAL"},
	    {14, "backend down", -EIO, "UsersService/GetUser failed: UNAVAILABLE: backend down"},
	    {15, "", -EIO, "DATA_LOSS"},
	    {16, "no cert", -EACCES,
	     "Auth refused: the credential lacks permission for UsersService/GetUser (no cert)"},
	    {17, "", -EPROTO, "UsersService/GetUser: invalid grpc-status in the answer"},
	    {999, "x", -EPROTO, "invalid grpc-status in the answer (x)"},
	    {-1, "", -EPROTO, "UsersService/GetUser: no grpc-status trailer"},
	    {-2, "", -EPROTO, "invalid grpc-status"},
	};

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tu_err e;
		tu_err_clear(&e);
		int r = tu_grpc_status_to_errno(
		    cases[i].code, "/teleport.users.v1.UsersService/GetUser", cases[i].message, &e);
		if (r != cases[i].want)
			fail_msg("status %d: got %d, want %d", cases[i].code, r, cases[i].want);
		if (cases[i].text && !strstr(e.msg, cases[i].text))
			fail_msg("status %d: '%s' lacks '%s'", cases[i].code, e.msg, cases[i].text);
		if (r < 0) {
			assert_int_equal(e.code, r);
			if (cases[i].code >= 0)
				assert_int_equal(e.grpc_status, cases[i].code);
		}
		/* NULL reterr accepted */
		assert_int_equal(tu_grpc_status_to_errno(cases[i].code, "/a.B/C", NULL, NULL),
				 cases[i].want);
	}
}

static void test_unary_over_fake(void **state)
{
	size_t ping_len;
	uint8_t *ping = framed_vector("ping_response.bin", &ping_len);
	uint8_t two[512];
	const struct fake_step steps[] = {
	    {"/proto.AuthService/Ping", ping, ping_len, 0, NULL, 0, NULL},
	    {NULL, two, 2 * ping_len, 0, NULL, 0, NULL},
	    {NULL, NULL, 0, 0, NULL, 0, NULL},
	    {NULL, ping, ping_len, -1, NULL, 0, NULL},
	    {NULL, ping, ping_len - 1, 0, NULL, 0, NULL},
	    {NULL, NULL, 0, 7, "nope", 0, NULL},
	    {NULL, NULL, 0, 0, NULL, -ETIMEDOUT,
	     "no complete answer from 127.0.0.1:3025 within 3000 ms"},
	    {NULL, ping, ping_len, 0, NULL, 0, NULL},
	};
	struct fake_transport *f = fake_new(steps, ELEMENTSOF(steps));
	struct tu_err e;
	uint8_t *msg = NULL;
	size_t len = 0;

	(void) state;
	assert_true(2 * ping_len <= sizeof(two));
	memcpy(two, ping, ping_len);
	memcpy(two + ping_len, ping, ping_len);
	f->chunk = 3;

	tu_err_clear(&e);
	assert_int_equal(
	    tu_grpc_unary(&f->t, "/proto.AuthService/Ping", NULL, 0, 123, 1 << 20, &msg, &len, &e),
	    0);
	assert_int_equal(len, ping_len - 5);
	assert_memory_equal(msg, ping + 5, len);
	assert_int_equal(f->req_lens[0], 0);
	assert_int_equal(f->deadlines[0], 123);
	free(msg);
	msg = NULL;

	assert_int_equal(
	    tu_grpc_unary(&f->t, "/proto.AuthService/Ping", NULL, 0, 1, 1 << 20, &msg, &len, &e),
	    -EBADMSG);
	assert_string_equal(e.msg,
			    "unary RPC AuthService/Ping answered with more than one message");
	assert_null(msg);

	assert_int_equal(
	    tu_grpc_unary(&f->t, "/proto.AuthService/Ping", NULL, 0, 1, 1 << 20, &msg, &len, &e),
	    -EBADMSG);
	assert_string_equal(
	    e.msg, "unary RPC AuthService/Ping answered with 0 messages, expected exactly 1");

	assert_int_equal(
	    tu_grpc_unary(&f->t, "/proto.AuthService/Ping", NULL, 0, 1, 1 << 20, &msg, &len, &e),
	    -EPROTO);
	assert_non_null(strstr(e.msg, "no grpc-status trailer"));

	assert_int_equal(
	    tu_grpc_unary(&f->t, "/proto.AuthService/Ping", NULL, 0, 1, 1 << 20, &msg, &len, &e),
	    -EBADMSG);
	assert_non_null(strstr(e.msg, "truncated gRPC frame"));

	assert_int_equal(
	    tu_grpc_unary(&f->t, "/proto.AuthService/Ping", NULL, 0, 1, 1 << 20, &msg, &len, &e),
	    -EACCES);
	assert_string_equal(
	    e.msg, "Auth refused: the credential lacks permission for AuthService/Ping (nope)");
	assert_int_equal(e.grpc_status, 7);

	assert_int_equal(
	    tu_grpc_unary(&f->t, "/proto.AuthService/Ping", NULL, 0, 1, 1 << 20, &msg, &len, &e),
	    -ETIMEDOUT);
	assert_string_equal(e.msg, "no complete answer from 127.0.0.1:3025 within 3000 ms");

	/* message limit: the ping message is 78 bytes */
	assert_int_equal(
	    tu_grpc_unary(&f->t, "/proto.AuthService/Ping", NULL, 0, 1, 10, &msg, &len, &e),
	    -EMSGSIZE);
	assert_non_null(strstr(e.msg, "over the limit of 10 bytes"));
	assert_null(msg);

	/* request over the limit never reaches the transport */
	size_t calls = f->n_calls;
	assert_int_equal(tu_grpc_unary(&f->t, "/proto.AuthService/Ping",
				       (const uint8_t *) "0123456789abc", 13, 1, 10, &msg, &len,
				       &e),
			 -EMSGSIZE);
	assert_int_equal(f->n_calls, calls);
	assert_false(f->unexpected);

	tu_transport_free(&f->t);
	free(ping);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame_table),     cmocka_unit_test(test_callback_error_stops),
	    cmocka_unit_test(test_stream_vector),   cmocka_unit_test(test_frame_request),
	    cmocka_unit_test(test_timeout_format),  cmocka_unit_test(test_percent_decode),
	    cmocka_unit_test(test_rpc_name),        cmocka_unit_test(test_status_table),
	    cmocka_unit_test(test_unary_over_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
