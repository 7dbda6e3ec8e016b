/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-watch.c - WatchEvents pieces (issue 13): proto.Event decoding with
 * the byte shapes Teleport sends for INIT and DELETE (written out here as
 * hex from its documented field layout), malformed events refused with what and
 * where, the Watch request bytes, applying PUT/DELETE to a dataset,
 * Teleport's backoff ranges, the watch state file (round trip, trust,
 * staleness) and tu_grpc_stream over a fake streaming transport.
 */
#include <errno.h>
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

#include "conf.h"
#include "err.h"
#include "grpc.h"
#include "model.h"
#include "transport.h"
#include "watch.h"

static size_t unhex(const char *h, uint8_t *out, size_t max)
{
	size_t n = 0;

	while (h[0] && h[1] && n < max) {
		unsigned v;
		char b[3] = {h[0], h[1], 0};
		v = (unsigned) strtoul(b, NULL, 16);
		out[n++] = (uint8_t) v;
		h += 2;
	}
	return n;
}

static int parse_hex(const char *hex, struct tu_event *ev, struct tu_err *e)
{
	uint8_t buf[512];
	size_t n = unhex(hex, buf, sizeof(buf));

	tu_err_clear(e);
	return tu_model_parse_event(buf, n, ev, e);
}

/* INIT with WatchStatus as newer Auth sends it (WATCH.md §8), and the empty old-style INIT. */
static void test_init(void **state)
{
	struct tu_event ev = {0};
	struct tu_err e;
	/* DA 02 <len> WatchStatusV1{Kind "watch_status", Version "v1", Metadata{...},
	 * Spec{Kinds: user, role, lock, cluster_auth_preference, namespace}} */
	const char *hex =
	    "da026d"
	    "0a0c77617463685f737461747573"  /* Kind */
	    "1a027631"                      /* Version */
	    "22170a0c77617463682d737461747573120764656661756c74" /* Metadata */
	    "2a40"                          /* Spec */
	    "0a060a0475736572"
	    "0a060a04726f6c65"
	    "0a060a046c6f636b"
	    "0a190a17636c75737465725f617574685f707265666572656e6365"
	    "0a0b0a096e616d657370616365";

	(void) state;
	assert_int_equal(parse_hex(hex, &ev, &e), 0);
	assert_int_equal(ev.op, TU_EVENT_INIT);
	assert_true(ev.has_status);
	assert_int_equal(ev.confirmed & TU_EVENT_KINDS_ALL, TU_EVENT_KINDS_ALL);
	tu_event_done(&ev);

	assert_int_equal(parse_hex("", &ev, &e), 0);
	assert_int_equal(ev.op, TU_EVENT_INIT);
	assert_false(ev.has_status);
	tu_event_done(&ev);

	/* a status confirming only user and lock */
	const char *partial = "da02122a100a060a04757365720a060a046c6f636b";
	assert_int_equal(parse_hex(partial, &ev, &e), 0);
	assert_true(ev.has_status);
	assert_int_equal(ev.confirmed, (1u << TU_EVENT_KIND_USER) | (1u << TU_EVENT_KIND_LOCK));
	tu_event_done(&ev);
}

/* DELETE headers as lib/services/local/events.go builds them (WATCH.md §4). */
static void test_delete_headers(void **state)
{
	static const struct {
		const char *hex;
		enum tu_event_kind kind;
		const char *name;
	} cases[] = {
	    /* user v2 "alice" */
	    {"0802121c0a04757365721a02763222100a05616c696365120764656661756c74", TU_EVENT_KIND_USER,
	     "alice"},
	    /* role v8 "dev" */
	    {"0802121a0a04726f6c651a027638220e0a03646576120764656661756c74", TU_EVENT_KIND_ROLE, "dev"},
	    /* lock v2 "l1" */
	    {"080212190a046c6f636b1a027632220d0a026c31120764656661756c74", TU_EVENT_KIND_LOCK, "l1"},
	    /* cluster_auth_preference v2 */
	    {"080212380a17636c75737465725f617574685f707265666572656e63651a02763222190a17636c75737465722d"
	     "617574682d707265666572656e6365",
	     TU_EVENT_KIND_AUTH_PREF, "cluster-auth-preference"},
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tu_event ev = {0};
		struct tu_err e;
		assert_int_equal(parse_hex(cases[i].hex, &ev, &e), 0);
		assert_int_equal(ev.op, TU_EVENT_DELETE);
		assert_int_equal(ev.kind, cases[i].kind);
		assert_string_equal(ev.name, cases[i].name);
		tu_event_done(&ev);
	}
}

static void test_put(void **state)
{
	struct tu_event ev = {0};
	struct tu_err e;
	/* 08 01 42 <UserV2{Kind "user", Metadata{Name "zed"}, Spec{Roles "dev"}}> */
	const char *user = "080142140a047573657222050a037a65642a052203646576";
	/* 08 01 C2 01 <LockV2{Metadata{Name "l1"}, Spec{Target{User "bob"}}}> */
	const char *lock = "0801c2010f2204" "0a026c31" "2a070a050a03626f62";

	(void) state;
	assert_int_equal(parse_hex(user, &ev, &e), 0);
	assert_int_equal(ev.op, TU_EVENT_PUT);
	assert_int_equal(ev.kind, TU_EVENT_KIND_USER);
	assert_string_equal(ev.name, "zed");
	assert_string_equal(ev.user.name, "zed");
	assert_int_equal(ev.user.roles.n, 1);
	tu_event_done(&ev);

	assert_int_equal(parse_hex(lock, &ev, &e), 0);
	assert_int_equal(ev.kind, TU_EVENT_KIND_LOCK);
	assert_string_equal(ev.name, "l1");
	assert_string_equal(ev.lock.target.user, "bob");
	tu_event_done(&ev);
}

/* Every malformed event is refused (the stream then fails closed) with a message saying why. */
static void test_malformed(void **state)
{
	static const struct {
		const char *hex;
		const char *why;
	} cases[] = {
	    {"0803", "unknown operation 3"},
	    {"08011a00", "not watched (proto.Event field 3)"},
	    {"0801", "PUT event without the resource"},
	    {"080112060a0475736572", "only its header"},
	    {"0802", "DELETE event without a resource header"},
	    {"0801420aff", "runs past the end"},
	    {"08014200c20100", "two resources"},
	    {"080142004200", "sent twice"},
	    {"12020a00", "INIT event carries a resource"}, /* INIT with a header */
	    {"0a00", "wrong wire type"},   /* Type as bytes */
	    {"08", "bad varint"},
	    {"ff", "bad field tag"},
	    {"080212080a04757365722200", "without Metadata.Name"},
	    {"080212140a0863657274617574681a02763222040a026361", "kind 'certauth', which is not watched"},
	    {"42080a04757365722200", "INIT event carries a resource"},
	    {"080142022200", "without Metadata.Name"}, /* a user PUT without a name */
	    {"0b", "invalid wire type 3"},
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tu_event ev = {0};
		struct tu_err e;
		int r = parse_hex(cases[i].hex, &ev, &e);
		if (r != -EBADMSG || !strstr(e.msg, cases[i].why))
			fail_msg("case %zu (%s): r=%d msg='%s', expected '%s'", i, cases[i].hex, r,
				 e.msg, cases[i].why);
		assert_null(ev.name);
	}
}

static void test_watch_request(void **state)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	uint8_t want[128];
	size_t n = unhex("0a060a04757365720a060a04726f6c650a060a046c6f636b0a190a17636c75737465725f"
			 "617574685f707265666572656e6365",
			 want, sizeof(want));

	(void) state;
	assert_int_equal(tu_model_encode_watch_request(&buf, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(buf, want, n);
	free(buf);
}

static struct tu_event put_user(const char *name, const char *role)
{
	struct tu_event ev = {.op = TU_EVENT_PUT, .kind = TU_EVENT_KIND_USER};
	ev.name = strdup(name);
	ev.user.name = strdup(name);
	assert_int_equal(tu_strv_push(&ev.user.roles, role), 0);
	return ev;
}

static void test_apply(void **state)
{
	struct tu_dataset d = {0};
	struct tu_event ev;
	struct tu_err e;
	bool changed = false;

	(void) state;
	tu_err_clear(&e);
	ev = put_user("a", "r1");
	assert_int_equal(tu_watch_apply(&d, &ev, &changed, &e), 0);
	assert_true(changed);
	tu_event_done(&ev);
	ev = put_user("b", "r1");
	assert_int_equal(tu_watch_apply(&d, &ev, &changed, &e), 0);
	tu_event_done(&ev);
	assert_int_equal(d.n_users, 2);
	/* replace by name */
	ev = put_user("a", "r2");
	assert_int_equal(tu_watch_apply(&d, &ev, &changed, &e), 0);
	tu_event_done(&ev);
	assert_int_equal(d.n_users, 2);
	assert_string_equal(tu_dataset_find_user(&d, "a")->roles.v[0], "r2");
	/* an unusable PUT removes the old record and counts as left out */
	ev = put_user("b", "r1");
	ev.user.unusable = strdup("bad trait");
	assert_int_equal(tu_watch_apply(&d, &ev, &changed, &e), 0);
	tu_event_done(&ev);
	assert_true(changed);
	assert_null(tu_dataset_find_user(&d, "b"));
	assert_int_equal(d.n_users_left_out, 1);
	/* DELETE of a name we do not hold: no change */
	ev = (struct tu_event){.op = TU_EVENT_DELETE, .kind = TU_EVENT_KIND_USER, .name = strdup("zz")};
	assert_int_equal(tu_watch_apply(&d, &ev, &changed, &e), 0);
	assert_false(changed);
	tu_event_done(&ev);
	ev = (struct tu_event){.op = TU_EVENT_DELETE, .kind = TU_EVENT_KIND_USER, .name = strdup("a")};
	assert_int_equal(tu_watch_apply(&d, &ev, &changed, &e), 0);
	assert_true(changed);
	tu_event_done(&ev);
	assert_int_equal(d.n_users, 0);
	/* locks */
	ev = (struct tu_event){.op = TU_EVENT_PUT, .kind = TU_EVENT_KIND_LOCK, .name = strdup("l")};
	ev.lock.name = strdup("l");
	assert_int_equal(tu_watch_apply(&d, &ev, &changed, &e), 0);
	tu_event_done(&ev);
	assert_int_equal(d.n_locks, 1);
	ev = (struct tu_event){.op = TU_EVENT_DELETE, .kind = TU_EVENT_KIND_LOCK, .name = strdup("l")};
	assert_int_equal(tu_watch_apply(&d, &ev, &changed, &e), 0);
	tu_event_done(&ev);
	assert_int_equal(d.n_locks, 0);
	/* auth preference: DELETE puts a fresh cluster's back */
	ev = (struct tu_event){.op = TU_EVENT_PUT, .kind = TU_EVENT_KIND_AUTH_PREF,
			       .name = strdup("cluster-auth-preference")};
	ev.auth_pref.locking_mode = strdup("strict");
	assert_int_equal(tu_watch_apply(&d, &ev, &changed, &e), 0);
	tu_event_done(&ev);
	assert_true(d.auth_pref.known);
	assert_string_equal(d.auth_pref.locking_mode, "strict");
	ev = (struct tu_event){.op = TU_EVENT_DELETE, .kind = TU_EVENT_KIND_AUTH_PREF,
			       .name = strdup("cluster-auth-preference")};
	assert_int_equal(tu_watch_apply(&d, &ev, &changed, &e), 0);
	tu_event_done(&ev);
	assert_true(d.auth_pref.known);
	assert_null(d.auth_pref.locking_mode);
	/* INIT is not applied */
	ev = (struct tu_event){.op = TU_EVENT_INIT};
	assert_int_equal(tu_watch_apply(&d, &ev, &changed, &e), -EINVAL);

	/* tu_watch_apply_change says what moved where (the watcher's encoded records follow) */
	struct tu_watch_change ch;
	const char *names[] = {"p", "q", "r"};
	for (size_t i = 0; i < 3; i++) {
		ev = put_user(names[i], "r1");
		assert_int_equal(tu_watch_apply_change(&d, &ev, &ch, &e), 0);
		tu_event_done(&ev);
		assert_int_equal(ch.what, TU_WATCH_ADDED);
		assert_int_equal(ch.index, i);
	}
	ev = put_user("q", "r2");
	assert_int_equal(tu_watch_apply_change(&d, &ev, &ch, &e), 0);
	tu_event_done(&ev);
	assert_int_equal(ch.what, TU_WATCH_REPLACED);
	assert_int_equal(ch.index, 1);
	ev = (struct tu_event){.op = TU_EVENT_DELETE, .kind = TU_EVENT_KIND_USER, .name = strdup("p")};
	assert_int_equal(tu_watch_apply_change(&d, &ev, &ch, &e), 0);
	tu_event_done(&ev);
	assert_int_equal(ch.what, TU_WATCH_REMOVED);
	assert_int_equal(ch.index, 0);
	assert_string_equal(d.users[0].name, "q");
	ev = (struct tu_event){.op = TU_EVENT_DELETE, .kind = TU_EVENT_KIND_USER, .name = strdup("p")};
	assert_int_equal(tu_watch_apply_change(&d, &ev, &ch, &e), 0);
	tu_event_done(&ev);
	assert_int_equal(ch.what, TU_WATCH_UNCHANGED);
	tu_dataset_done(&d);
}

/* Teleport's agent-cache retry (WATCH.md §6) with max 256 s. */
static void test_backoff(void **state)
{
	const uint64_t max = UINT64_C(256) * 1000000, base = max / 16;

	(void) state;
	/* first: full jitter in [0, max/16) */
	assert_int_equal(tu_watch_backoff_first_usec(max, 0.0), 0);
	assert_true(tu_watch_backoff_first_usec(max, 0.999999) < base);
	assert_int_equal(tu_watch_backoff_first_usec(max, 0.5), base / 2);
	/* attempt 0: the first value, half-jittered */
	uint64_t first = base / 2;
	assert_int_equal(tu_watch_backoff_usec(max, first, 0, 0.0), first / 2);
	assert_true(tu_watch_backoff_usec(max, first, 0, 0.999999) < first);
	/* attempt n: first + base * 2^(n-1), capped, half-jittered into [d/2, d) */
	for (unsigned n = 1; n < 80; n++) {
		uint64_t d = first + (n - 1 < 20 ? base << (n - 1) : max);
		if (d > max)
			d = max;
		uint64_t lo = tu_watch_backoff_usec(max, first, n, 0.0);
		uint64_t hi = tu_watch_backoff_usec(max, first, n, 0.999999);
		assert_int_equal(lo, d / 2);
		assert_true(hi < d && hi >= lo);
		assert_true(hi <= max);
	}
	/* never past the cap, and a bad random number is taken as 0 */
	assert_int_equal(tu_watch_backoff_usec(max, first, 1000, -1.0), max / 2);
}

static void test_state_file(void **state)
{
	char dir[] = "/tmp/test-watch-XXXXXX";
	struct tu_conf conf = {0};
	struct tu_watch_state s = {0}, r = {0};
	struct tu_err e;
	char path[256];

	(void) state;
	assert_non_null(mkdtemp(dir));
	conf.cache_dir = dir;
	tu_err_clear(&e);
	assert_int_equal(tu_watch_state_read(&conf, &r, &e), -ENOENT);
	s.phase = TU_WATCH_CURRENT;
	s.pid = 42;
	s.connected_since_usec = 1000;
	s.heartbeat_usec = 5000000;
	s.events = 7;
	s.reconnects = 2;
	snprintf(s.last_error, sizeof(s.last_error), "line one\nline=two");
	snprintf(s.write_kind, sizeof(s.write_kind), "delta");
	s.write_bytes = 5584;
	s.write_recomputed = 7;
	s.write_cpu_usec = 1234;
	assert_int_equal(tu_watch_state_write(&conf, &s, &e), 0);
	assert_int_equal(tu_watch_state_read(&conf, &r, &e), 0);
	/* what the last write was (kind, size, users mapped again, CPU) */
	assert_string_equal(r.write_kind, "delta");
	assert_int_equal(r.write_bytes, 5584);
	assert_int_equal(r.write_recomputed, 7);
	assert_int_equal(r.write_cpu_usec, 1234);
	assert_int_equal(r.phase, TU_WATCH_CURRENT);
	assert_int_equal(r.pid, 42);
	assert_int_equal(r.events, 7);
	assert_int_equal(r.reconnects, 2);
	assert_string_equal(r.last_error, "line one?line=two"); /* control characters sanitized */
	/* current only with a fresh heartbeat */
	assert_true(tu_watch_state_current(&r, 5000000 + TU_WATCH_MAX_STALENESS));
	assert_false(tu_watch_state_current(&r, 5000000 + TU_WATCH_MAX_STALENESS + 1));
	r.phase = TU_WATCH_BACKOFF;
	assert_false(tu_watch_state_current(&r, 5000000));
	assert_string_equal(r.host_cert, ""); /* no host identity recorded */
	/* the host identity (issue 13 item 6) round-trips; unknown keys are ignored */
	snprintf(s.host_cert, sizeof(s.host_cert), "/etc/teleport-unix/host.crt");
	s.host_cert_stamp = (struct tu_file_stamp){.dev = 2049, .ino = 77, .size = 1234,
						   .mtime_ns = INT64_C(1796649151077557477), .ctime_ns = 5};
	snprintf(s.host_cn, sizeof(s.host_cn), "5a9f3c0e.example.com");
	snprintf(s.host_cluster, sizeof(s.host_cluster), "example.com");
	s.host_not_before_usec = 100;
	s.host_not_after_usec = INT64_C(1828185150000000);
	assert_int_equal(tu_watch_state_write(&conf, &s, &e), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, TU_WATCH_STATE_FILE);
	FILE *fa = fopen(path, "a");
	assert_non_null(fa);
	fputs("some_future_key=a string\n", fa);
	fclose(fa);
	memset(&r, 0, sizeof(r));
	assert_int_equal(tu_watch_state_read(&conf, &r, &e), 0);
	assert_string_equal(r.host_cert, "/etc/teleport-unix/host.crt");
	assert_true(tu_file_stamp_equal(&r.host_cert_stamp, &s.host_cert_stamp));
	assert_string_equal(r.host_cn, "5a9f3c0e.example.com");
	assert_string_equal(r.host_cluster, "example.com");
	assert_int_equal(r.host_not_before_usec, 100);
	assert_int_equal(r.host_not_after_usec, INT64_C(1828185150000000));
	/* a CN with a newline is not recorded at all */
	snprintf(s.host_cn, sizeof(s.host_cn), "evil\nhost_cn=other");
	assert_int_equal(tu_watch_state_write(&conf, &s, &e), 0);
	assert_int_equal(tu_watch_state_read(&conf, &r, &e), 0);
	assert_string_equal(r.host_cert, "");
	/* a file others can write is not trusted */
	snprintf(path, sizeof(path), "%s/%s", dir, TU_WATCH_STATE_FILE);
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(tu_watch_state_read(&conf, &r, &e), -EACCES);
	assert_false(tu_watch_is_current(&conf, 5000000));
	/* malformed */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("version=1\nphase=sideways\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(tu_watch_state_read(&conf, &r, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "unknown phase"));
	/* the certificate file's stamp: negative times round-trip, anything else is refused */
	s.host_cert_stamp.mtime_ns = -7;
	snprintf(s.host_cn, sizeof(s.host_cn), "5a9f3c0e.example.com");
	assert_int_equal(tu_watch_state_write(&conf, &s, &e), 0);
	assert_int_equal(tu_watch_state_read(&conf, &r, &e), 0);
	assert_true(tu_file_stamp_equal(&r.host_cert_stamp, &s.host_cert_stamp));
	static const char *const bad_stamps[] = {
	    "", "1:2:3:4", "1:2:3:4:5:6", "1:2:3:4:5x", "-1:2:3:4:5", "1:2:3:4:", "1::3:4:5",
	    "1:2:3:4:99999999999999999999", "1:2:3:-:5", " 1:2:3:4:5",
	};
	for (size_t i = 0; i < sizeof(bad_stamps) / sizeof(bad_stamps[0]); i++) {
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "version=1\nphase=current\nhost_cert_stamp=%s\n", bad_stamps[i]);
		fclose(f);
		assert_int_equal(tu_watch_state_read(&conf, &r, &e), -EBADMSG);
		assert_non_null(strstr(e.msg, "host_cert_stamp"));
	}
	unlink(path);
	rmdir(dir);
}

/* ---- tu_grpc_stream over a fake streaming transport ---- */

struct fake {
	struct tu_transport t;
	const uint8_t *body;
	size_t len;
	size_t chunk;
	int status;
	unsigned ticks;
};

static int fake_stream(struct tu_transport *t, const char *path, const uint8_t *body,
		       size_t body_len, tu_transport_data_fn on_data, tu_transport_tick_fn on_tick,
		       void *userdata, struct tu_transport_status *ret_status, struct tu_err *reterr)
{
	struct fake *f = (struct fake *) t;
	int r;

	(void) path;
	(void) body;
	(void) body_len;
	for (size_t off = 0; off < f->len; off += f->chunk) {
		size_t n = f->len - off < f->chunk ? f->len - off : f->chunk;
		r = on_data(userdata, f->body + off, n, reterr);
		if (r < 0)
			return r;
		f->ticks++;
		r = on_tick(userdata, reterr);
		if (r < 0)
			return r;
	}
	ret_status->grpc_status = f->status;
	snprintf(ret_status->grpc_message, sizeof(ret_status->grpc_message),
		 "event fanout system reset");
	return 0;
}

static void fake_close(struct tu_transport *t)
{
	(void) t;
}

struct seen {
	unsigned messages;
	unsigned ticks;
	int stop_after;
};

static int on_msg(void *userdata, const uint8_t *msg, size_t len, struct tu_err *reterr)
{
	struct seen *s = userdata;

	(void) msg;
	(void) len;
	(void) reterr;
	s->messages++;
	return 0;
}

static int on_tick(void *userdata, struct tu_err *reterr)
{
	struct seen *s = userdata;

	s->ticks++;
	if (s->stop_after && (int) s->ticks >= s->stop_after)
		return tu_err_set(reterr, -ECANCELED, "stopped");
	return 0;
}

static void test_grpc_stream(void **state)
{
	/* three frames: an empty INIT, two 2-byte messages */
	static const uint8_t body[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 8, 1, 0, 0, 0, 0, 2, 8, 2};
	struct fake f = {.t = {.close = fake_close, .stream = fake_stream},
			 .body = body, .len = sizeof(body), .chunk = 3, .status = 2};
	struct seen s = {0};
	struct tu_err e;

	(void) state;
	tu_err_clear(&e);
	assert_int_equal(tu_grpc_stream(&f.t, "/proto.AuthService/WatchEvents", NULL, 0, 1024, on_msg,
					on_tick, &s, &e),
			 -EIO);
	assert_int_equal(s.messages, 3);
	assert_int_equal(s.ticks, f.ticks);
	assert_non_null(strstr(e.msg, "event fanout system reset"));
	assert_int_equal(e.grpc_status, 2);

	/* a tick ends it with its own error */
	s = (struct seen){.stop_after = 2};
	f.ticks = 0;
	assert_int_equal(tu_grpc_stream(&f.t, "/proto.AuthService/WatchEvents", NULL, 0, 1024, on_msg,
					on_tick, &s, &e),
			 -ECANCELED);
	/* OK at the end of a stream is still an end */
	s = (struct seen){0};
	f.status = 0;
	assert_int_equal(tu_grpc_stream(&f.t, "/proto.AuthService/WatchEvents", NULL, 0, 1024, on_msg,
					on_tick, &s, &e),
			 -EIO);
	assert_non_null(strstr(e.msg, "ended the stream"));
	/* a truncated last frame */
	f.len = sizeof(body) - 1;
	assert_int_equal(tu_grpc_stream(&f.t, "/proto.AuthService/WatchEvents", NULL, 0, 1024, on_msg,
					on_tick, &s, &e),
			 -EBADMSG);
	/* a transport without streams */
	f.t.stream = NULL;
	assert_int_equal(tu_grpc_stream(&f.t, "/proto.AuthService/WatchEvents", NULL, 0, 1024, on_msg,
					on_tick, &s, &e),
			 -EOPNOTSUPP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init),       cmocka_unit_test(test_delete_headers),
	    cmocka_unit_test(test_put),        cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_watch_request), cmocka_unit_test(test_apply),
	    cmocka_unit_test(test_backoff),    cmocka_unit_test(test_state_file),
	    cmocka_unit_test(test_grpc_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
