/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-delta.c - delta overlay files (libcore/base/snapshot.c, docs/cache-format.md
 * "Delta files"): base + delta must answer every lookup and enumerate exactly
 * like a full file of the new set (a property test over random change sets with
 * a fixed seed), stale and newer deltas, the change limit, hostile delta bytes
 * (every truncation, every bit flip, hostile values with valid checksums) and
 * the trust rules for the delta file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "crc32c.h"
#include "err.h"
#include "snapshot-internal.h"
#include "snapshot.h"

/* ---- a random account set -------------------------------------------------- */

#define MAX_USERS  400
#define MAX_SHARED 12
#define MAX_GIDS   6

struct user {
	char name[32], gecos[32], dir[48], shell[16];
	uint32_t uid, gid;
	uint32_t gids[MAX_GIDS];
	size_t n_gids;
	bool live;
};

struct set {
	struct user u[MAX_USERS];
	size_t n;
	bool shared_live[MAX_SHARED];
	uint32_t shared_gid[MAX_SHARED];
	/* flattened for the writer */
	struct tu_pw_rec pw[MAX_USERS];
	struct tu_gr_rec gr[MAX_USERS + MAX_SHARED];
	char gr_names[MAX_SHARED][16];
	const char *members[MAX_SHARED][MAX_USERS];
	size_t n_pw, n_gr;
};

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t) (rng % n) : 0;
}

static uint32_t next_id = 20000;

static void user_init(struct user *u, size_t k)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "u%zu%s", k, rnd(4) ? "" : ".x");
	snprintf(u->gecos, sizeof(u->gecos), "User %u", rnd(1000));
	snprintf(u->dir, sizeof(u->dir), "/home/%s", u->name);
	snprintf(u->shell, sizeof(u->shell), "%s", rnd(2) ? "/bin/sh" : "/bin/bash");
	u->uid = next_id++;
	u->gid = u->uid;
	u->n_gids = rnd(MAX_GIDS + 1);
	for (size_t i = 0; i < u->n_gids; i++)
		u->gids[i] = 5000 + rnd(MAX_SHARED);
	u->live = true;
}

static void set_random(struct set *s, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	for (size_t k = 0; k < n; k++)
		user_init(&s->u[k], k);
	for (size_t g = 0; g < MAX_SHARED; g++) {
		s->shared_live[g] = true;
		s->shared_gid[g] = 5000 + (uint32_t) g;
	}
}

/* The writer's input: passwd per live user, a private group per live user, shared groups with
 * the users that list them. */
static void set_flatten(struct set *s)
{
	s->n_pw = s->n_gr = 0;
	for (size_t k = 0; k < s->n; k++) {
		struct user *u = &s->u[k];

		if (!u->live)
			continue;
		s->pw[s->n_pw++] = (struct tu_pw_rec){u->name, u->gecos, u->dir, u->shell, u->uid,
						      u->gid, u->gids, u->n_gids};
		s->gr[s->n_gr++] = (struct tu_gr_rec){u->name, u->gid, NULL, 0};
	}
	for (size_t g = 0; g < MAX_SHARED; g++) {
		size_t m = 0;

		if (!s->shared_live[g])
			continue;
		snprintf(s->gr_names[g], sizeof(s->gr_names[g]), "g%zu", g);
		for (size_t k = 0; k < s->n; k++)
			for (size_t i = 0; s->u[k].live && i < s->u[k].n_gids; i++)
				if (s->u[k].gids[i] == s->shared_gid[g]) {
					s->members[g][m++] = s->u[k].name;
					break;
				}
		s->gr[s->n_gr++] = (struct tu_gr_rec){s->gr_names[g], s->shared_gid[g],
						      s->members[g], m};
	}
}

/* A random change set of about `changes` edits: deletes, field edits, new users, uids moved to
 * another name, uid swaps, group membership and shared groups removed or renumbered. */
static void set_change(struct set *s, size_t changes)
{
	for (size_t c = 0; c < changes; c++) {
		struct user *u = &s->u[rnd((uint32_t) s->n)];

		switch (rnd(8)) {
		case 0:
			u->live = false;
			break;
		case 1:
			snprintf(u->gecos, sizeof(u->gecos), "Edited %u", rnd(100000));
			break;
		case 2:
			if (s->n < MAX_USERS) {
				user_init(&s->u[s->n], s->n + 1000);
				s->n++;
			}
			break;
		case 3: /* the uid moves to a new name */
			if (u->live && s->n < MAX_USERS) {
				struct user *v = &s->u[s->n];

				user_init(v, s->n + 2000);
				s->n++;
				v->uid = u->uid;
				u->live = false;
			}
			break;
		case 4: { /* two users swap uids */
			struct user *v = &s->u[rnd((uint32_t) s->n)];
			uint32_t t = u->uid;

			u->uid = v->uid;
			v->uid = t;
			break;
		}
		case 5:
			u->n_gids = rnd(MAX_GIDS + 1);
			for (size_t i = 0; i < u->n_gids; i++)
				u->gids[i] = 5000 + rnd(MAX_SHARED);
			break;
		case 6:
			if (rnd(4) == 0) {
				size_t g = rnd(MAX_SHARED);

				s->shared_live[g] = !s->shared_live[g];
			}
			break;
		default:
			snprintf(u->shell, sizeof(u->shell), "/bin/%c", 'a' + rnd(26));
			break;
		}
	}
	/* duplicate gids inside one user's list are allowed; nothing else needed */
}

/* ---- comparing two views of the same set -------------------------------- */

static void pw_str(const struct tu_pw_view *v, char *out, size_t size)
{
	size_t n = (size_t) snprintf(out, size, "%s:%u:%u:%s:%s:%s:", v->name, (unsigned) v->uid,
				     (unsigned) v->gid, v->gecos, v->dir, v->shell);

	for (size_t i = 0; i < v->n_gids && n < size; i++)
		n += (size_t) snprintf(out + n, size - n, "%u,", (unsigned) tu_pw_view_gid(v, i));
}

static void gr_str(const struct tu_gr_view *v, char *out, size_t size)
{
	size_t n = (size_t) snprintf(out, size, "%s:%u:", v->name, (unsigned) v->gid), cur = 0;
	const char *m;

	while ((m = tu_gr_view_next_member(v, &cur)) && n < size)
		n += (size_t) snprintf(out + n, size - n, "%s,", m);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Every entry, as sorted text lines (enumeration order differs: base first, then delta). */
static char *dump(const struct tu_snapshot *s)
{
	size_t np = tu_snapshot_passwd_count(s), ng = tu_snapshot_group_count(s), len = 0;
	char **lines = calloc(np + ng + 1, sizeof(*lines)), *out;

	assert_non_null(lines);
	for (size_t i = 0; i < np + ng; i++) {
		char buf[8192];

		if (i < np) {
			struct tu_pw_view v;

			assert_int_equal(tu_snapshot_passwd_at(s, i, &v, NULL), 0);
			pw_str(&v, buf + 2, sizeof(buf) - 2);
			buf[0] = 'p';
		} else {
			struct tu_gr_view v;

			assert_int_equal(tu_snapshot_group_at(s, i - np, &v, NULL), 0);
			gr_str(&v, buf + 2, sizeof(buf) - 2);
			buf[0] = 'g';
		}
		buf[1] = ' ';
		lines[i] = strdup(buf);
		assert_non_null(lines[i]);
		len += strlen(buf) + 1;
	}
	{
		struct tu_pw_view v;
		struct tu_gr_view g;

		assert_int_equal(tu_snapshot_passwd_at(s, np, &v, NULL), -ENOENT);
		assert_int_equal(tu_snapshot_group_at(s, ng, &g, NULL), -ENOENT);
	}
	qsort(lines, np + ng, sizeof(*lines), cmp_str);
	out = calloc(1, len + 1);
	assert_non_null(out);
	for (size_t i = 0; i < np + ng; i++) {
		strcat(out, lines[i]);
		strcat(out, "\n");
		free(lines[i]);
	}
	free(lines);
	return out;
}

/* One lookup of each kind, as text ("-" for not found). */
static void lookups(const struct tu_snapshot *s, const char *name, uint32_t id, char *out,
		    size_t size)
{
	struct tu_pw_view pv;
	struct tu_gr_view gv;
	char a[4096] = "-", b[4096] = "-", c[4096] = "-", d[4096] = "-";
	int r;

	if ((r = tu_snapshot_find_login(s, name, &pv, NULL)) == 0)
		pw_str(&pv, a, sizeof(a));
	else
		assert_int_equal(r, -ENOENT);
	if ((r = tu_snapshot_find_uid(s, id, &pv, NULL)) == 0)
		pw_str(&pv, b, sizeof(b));
	else
		assert_int_equal(r, -ENOENT);
	if ((r = tu_snapshot_find_group(s, name, &gv, NULL)) == 0)
		gr_str(&gv, c, sizeof(c));
	else
		assert_int_equal(r, -ENOENT);
	if ((r = tu_snapshot_find_gid(s, id, &gv, NULL)) == 0)
		gr_str(&gv, d, sizeof(d));
	else
		assert_int_equal(r, -ENOENT);
	snprintf(out, size, "%s|%s|%s|%s", a, b, c, d);
}

/* base + delta answers exactly like full, for every name and id either side has. */
static void assert_same(const struct tu_snapshot *overlay, const struct tu_snapshot *full,
			const struct set *before, const struct set *after)
{
	char *x = dump(overlay), *y = dump(full);

	assert_string_equal(x, y);
	free(x);
	free(y);
	assert_int_equal(tu_snapshot_passwd_count(overlay), tu_snapshot_passwd_count(full));
	assert_int_equal(tu_snapshot_group_count(overlay), tu_snapshot_group_count(full));
	for (int side = 0; side < 2; side++) {
		const struct set *s = side ? after : before;

		for (size_t k = 0; k < s->n; k++) {
			static char p[16384], q[16384];

			lookups(overlay, s->u[k].name, s->u[k].uid, p, sizeof(p));
			lookups(full, s->u[k].name, s->u[k].uid, q, sizeof(q));
			assert_string_equal(p, q);
		}
		for (size_t g = 0; g < MAX_SHARED; g++) {
			static char p[16384], q[16384];
			char name[16];

			snprintf(name, sizeof(name), "g%zu", g);
			lookups(overlay, name, s->shared_gid[g], p, sizeof(p));
			lookups(full, name, s->shared_gid[g], q, sizeof(q));
			assert_string_equal(p, q);
		}
	}
}

/* ---- tests ------------------------------------------------------------------- */

static const struct tu_snapshot_meta meta1 = {.negative_ttl_usec = 5000000};
static const struct tu_snapshot_meta meta2 = {.negative_ttl_usec = 7000000};

static void test_property(void **state)
{
	static struct set before, after;
	static const unsigned modes[] = {0, TU_SNAPSHOT_LAZY, TU_SNAPSHOT_CHECK_RECORDS};

	(void) state;
	for (int iter = 0; iter < 120; iter++) {
		_cleanup_free_ void *bdata = NULL, *ddata = NULL, *fdata = NULL;
		size_t bsize = 0, dsize = 0, fsize = 0, n = 1 + rnd(300);
		struct tu_snapshot_delta_stats st;
		struct tu_err e = {};
		int r;

		set_random(&before, n);
		set_flatten(&before);
		memcpy(&after, &before, sizeof(after));
		set_change(&after, iter % 10 == 0 ? 0 : 1 + rnd(iter % 3 ? 8 : 60));
		set_flatten(&after);
		assert_int_equal(tu_snapshot_build_accounts_meta(before.pw, before.n_pw, before.gr,
								 before.n_gr, &meta1, 7 + iter,
								 1000, &bdata, &bsize, &e),
				 0);
		r = tu_snapshot_build_accounts_meta(after.pw, after.n_pw, after.gr, after.n_gr,
						    &meta2, 1, 2000, &fdata, &fsize, &e);
		if (r == -EINVAL)
			continue; /* a swap made two users share a uid: not a valid set */
		assert_int_equal(r, 0);
		for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
			_cleanup_(tu_snapshot_closep) struct tu_snapshot *base = NULL, *full = NULL,
								 *plain = NULL;

			assert_int_equal(tu_snapshot_open_buffer(bdata, bsize,
								 TU_SNAPSHOT_KIND_ACCOUNTS, 0,
								 &plain, &e),
					 0);
			if (m == 0) {
				free(ddata);
				ddata = NULL;
				r = tu_snapshot_build_accounts_delta(plain, after.pw, after.n_pw,
								     after.gr, after.n_gr, &meta2,
								     3000, SIZE_MAX, &ddata, &dsize,
								     &st, &e);
				assert_int_equal(r, 0);
				assert_int_equal(st.base_generation, 7 + iter);
			}
			assert_int_equal(tu_snapshot_open_buffer(bdata, bsize,
								 TU_SNAPSHOT_KIND_ACCOUNTS,
								 modes[m], &base, &e),
					 0);
			assert_int_equal(tu_snapshot_attach_delta_buffer(base, ddata, dsize,
									 modes[m], &e),
					 1);
			assert_true(tu_snapshot_has_delta(base));
			assert_int_equal(tu_snapshot_open_buffer(fdata, fsize,
								 TU_SNAPSHOT_KIND_ACCOUNTS, 0,
								 &full, &e),
					 0);
			assert_same(base, full, &before, &after);
			assert_int_equal(tu_snapshot_generation(base), 7 + iter);
			assert_int_equal(tu_snapshot_created_usec(base), 3000);
			assert_int_equal(tu_snapshot_negative_ttl_usec(base), 7000000);
			/* The base alone still answers as before. */
			assert_false(tu_snapshot_has_delta(plain));
		}
	}
}

static const uint32_t g1[] = {5000};

static const struct tu_pw_rec pw1[] = {
    {"alice", "A", "/home/alice", "/bin/sh", 30000, 30000, g1, 1},
    {"bob", "B", "/home/bob", "/bin/sh", 30001, 30001, NULL, 0},
    {"carol", "C", "/home/carol", "/bin/sh", 30002, 30002, NULL, 0},
};
static const char *const devs1[] = {"alice"};
static const struct tu_gr_rec gr1[] = {
    {"alice", 30000, NULL, 0},
    {"bob", 30001, NULL, 0},
    {"carol", 30002, NULL, 0},
    {"devs", 5000, devs1, 1},
};
/* bob deleted, carol's uid moved to dave, alice's shell changed. */
static const struct tu_pw_rec pw2[] = {
    {"alice", "A", "/home/alice", "/bin/bash", 30000, 30000, g1, 1},
    {"carol", "C", "/home/carol", "/bin/sh", 30009, 30002, NULL, 0},
    {"dave", "D", "/home/dave", "/bin/sh", 30002, 30003, NULL, 0},
};
static const struct tu_gr_rec gr2[] = {
    {"alice", 30000, NULL, 0},
    {"carol", 30002, NULL, 0},
    {"dave", 30003, NULL, 0},
    {"devs", 5000, devs1, 1},
};

static void build_pair(uint64_t gen, void **b, size_t *bs, void **d, size_t *ds)
{
	struct tu_snapshot *base = NULL;
	struct tu_err e = {};
	struct tu_snapshot_delta_stats st;

	assert_int_equal(tu_snapshot_build_accounts(pw1, 3, gr1, 4, gen, 1000, b, bs, &e), 0);
	assert_int_equal(tu_snapshot_open_buffer(*b, *bs, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &base, &e), 0);
	assert_int_equal(tu_snapshot_build_accounts_delta(base, pw2, 3, gr2, 4, NULL, 2000, 0, d,
							  ds, &st, &e),
			 0);
	/* alice changed, carol changed, dave new; bob deleted: 3 + 1 hidden (alice, bob, carol) and
	 * groups: bob hidden, dave new */
	assert_int_equal(st.n_records, 4);
	assert_int_equal(st.n_hidden, 4);
	assert_int_equal(st.bytes, *ds);
	tu_snapshot_close(base);
}

static void test_hidden(void **state)
{
	_cleanup_free_ void *b = NULL, *d = NULL;
	_cleanup_(tu_snapshot_closep) struct tu_snapshot *s = NULL;
	struct tu_pw_view v;
	struct tu_gr_view g;
	size_t bs, ds;

	(void) state;
	build_pair(3, &b, &bs, &d, &ds);
	assert_int_equal(tu_snapshot_open_buffer(b, bs, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_LAZY, &s, NULL), 0);
	assert_int_equal(tu_snapshot_attach_delta_buffer(s, d, ds, TU_SNAPSHOT_LAZY, NULL), 1);
	/* deleted: neither by name nor by uid */
	assert_int_equal(tu_snapshot_find_login(s, "bob", &v, NULL), -ENOENT);
	assert_int_equal(tu_snapshot_find_uid(s, 30001, &v, NULL), -ENOENT);
	assert_int_equal(tu_snapshot_find_group(s, "bob", &g, NULL), -ENOENT);
	assert_int_equal(tu_snapshot_find_gid(s, 30001, &g, NULL), -ENOENT);
	/* uid moved from carol to dave; carol's new uid is found, her old one is dave's */
	assert_int_equal(tu_snapshot_find_uid(s, 30002, &v, NULL), 0);
	assert_string_equal(v.name, "dave");
	assert_int_equal(tu_snapshot_find_uid(s, 30009, &v, NULL), 0);
	assert_string_equal(v.name, "carol");
	assert_int_equal(tu_snapshot_find_login(s, "alice", &v, NULL), 0);
	assert_string_equal(v.shell, "/bin/bash");
	/* unchanged records come from the base */
	assert_int_equal(tu_snapshot_find_group(s, "devs", &g, NULL), 0);
	assert_int_equal(tu_snapshot_find_gid(s, 30000, &g, NULL), 0);
	assert_int_equal(tu_snapshot_passwd_count(s), 3);
	assert_int_equal(tu_snapshot_group_count(s), 4);
	assert_int_equal(tu_snapshot_created_usec(s), 2000);
}

static void test_generations(void **state)
{
	_cleanup_free_ void *b = NULL, *d = NULL, *b2 = NULL, *b3 = NULL;
	size_t bs, ds, bs2, bs3;
	struct tu_snapshot *s = NULL;
	struct tu_err e = {};

	(void) state;
	build_pair(5, &b, &bs, &d, &ds);
	/* a newer base (generation 6): the delta is stale, the base alone answers */
	assert_int_equal(tu_snapshot_build_accounts(pw1, 3, gr1, 4, 6, 1000, &b2, &bs2, &e), 0);
	assert_int_equal(tu_snapshot_open_buffer(b2, bs2, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), 0);
	assert_int_equal(tu_snapshot_attach_delta_buffer(s, d, ds, 0, &e), 0);
	assert_false(tu_snapshot_has_delta(s));
	s = tu_snapshot_close(s);
	/* an older base (4): the reader must open both again */
	assert_int_equal(tu_snapshot_build_accounts(pw1, 3, gr1, 4, 4, 1000, &b3, &bs3, &e), 0);
	assert_int_equal(tu_snapshot_open_buffer(b3, bs3, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), 0);
	assert_int_equal(tu_snapshot_attach_delta_buffer(s, d, ds, 0, &e), -EAGAIN);
	assert_non_null(strstr(e.msg, "newer"));
	s = tu_snapshot_close(s);
	/* the same generation but another base (different bytes): stale */
	free(b3);
	b3 = NULL;
	assert_int_equal(tu_snapshot_build_accounts(pw1, 3, gr1, 4, 5, 1001, &b3, &bs3, &e), 0);
	assert_int_equal(tu_snapshot_open_buffer(b3, bs3, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), 0);
	assert_int_equal(tu_snapshot_attach_delta_buffer(s, d, ds, 0, &e), 0);
	s = tu_snapshot_close(s);
	/* a delta is not a base, nor the delta of a state file */
	assert_int_equal(tu_snapshot_open_buffer(d, ds, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), -EBADMSG);
	assert_int_equal(tu_snapshot_open_buffer(d, ds, TU_SNAPSHOT_KIND_STATE_DELTA, 0, &s, &e), -EBADMSG);
	/* a base cannot be attached as a delta */
	assert_int_equal(tu_snapshot_open_buffer(b, bs, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), 0);
	assert_int_equal(tu_snapshot_attach_delta_buffer(s, b, bs, 0, &e), -EBADMSG);
	s = tu_snapshot_close(s);
}

static void test_limit(void **state)
{
	static struct set before, after;
	_cleanup_free_ void *b = NULL, *d = NULL;
	_cleanup_(tu_snapshot_closep) struct tu_snapshot *s = NULL;
	struct tu_snapshot_delta_stats st;
	struct tu_err e = {};
	size_t bs, ds = 0;

	(void) state;
	set_random(&before, 300);
	set_flatten(&before);
	assert_int_equal(tu_snapshot_build_accounts(before.pw, before.n_pw, before.gr, before.n_gr,
						    1, 1, &b, &bs, &e),
			 0);
	assert_int_equal(tu_snapshot_open_buffer(b, bs, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), 0);
	/* nothing changed: an empty delta */
	assert_int_equal(tu_snapshot_build_accounts_delta(s, before.pw, before.n_pw, before.gr,
							  before.n_gr, NULL, 2, 0, &d, &ds, &st, &e),
			 0);
	assert_int_equal(st.n_records + st.n_hidden, 0);
	assert_int_equal(st.max_changes, 256);
	free(d);
	d = NULL;
	/* every user deleted: over any limit of 10 */
	memcpy(&after, &before, sizeof(after));
	for (size_t k = 0; k < after.n; k++)
		after.u[k].live = false;
	set_flatten(&after);
	assert_int_equal(tu_snapshot_build_accounts_delta(s, after.pw, after.n_pw, after.gr,
							  after.n_gr, NULL, 2, 10, &d, &ds, &st, &e),
			 -E2BIG);
	assert_null(d);
	assert_true(st.n_hidden > 10);
	assert_int_equal(tu_snapshot_delta_max_changes(100000), 6250);
	/* a bad new set is refused as the full writer refuses it */
	memcpy(&after, &before, sizeof(after));
	after.u[1].uid = after.u[0].uid;
	set_flatten(&after);
	assert_int_equal(tu_snapshot_build_accounts_delta(s, after.pw, after.n_pw, after.gr,
							  after.n_gr, NULL, 2, 0, &d, &ds, &st, &e),
			 -EINVAL);
}

/* Every lookup and the enumeration, for a hostile delta: must not crash, errors only. */
static void poke(const struct tu_snapshot *s)
{
	static const char *const names[] = {"alice", "bob", "carol", "dave", "devs", "zz"};
	static const uint32_t ids[] = {30000, 30001, 30002, 30003, 30009, 5000, 1};
	struct tu_pw_view v;
	struct tu_gr_view g;

	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		(void) tu_snapshot_find_login(s, names[i], &v, NULL);
		(void) tu_snapshot_find_group(s, names[i], &g, NULL);
	}
	for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
		(void) tu_snapshot_find_uid(s, ids[i], &v, NULL);
		(void) tu_snapshot_find_gid(s, ids[i], &g, NULL);
	}
	for (size_t i = 0; i < tu_snapshot_passwd_count(s) + 1; i++)
		(void) tu_snapshot_passwd_at(s, i, &v, NULL);
	for (size_t i = 0; i < tu_snapshot_group_count(s) + 1; i++)
		(void) tu_snapshot_group_at(s, i, &g, NULL);
}

static void fix_crc(unsigned char *b, size_t size)
{
	uint32_t hdr = snap_le32(b + H_HDR_SIZE), crc;

	if (hdr < SNAP_HDR_SIZE || hdr > size)
		return;
	/* the chunk table: recomputed when its shape is still the writer's */
	for (uint32_t i = 0; i < snap_le32(b + H_N_SECTIONS) && SNAP_HDR_SIZE + 32 * (i + 1) <= hdr; i++) {
		const unsigned char *e = b + SNAP_HDR_SIZE + 32 * i;

		if (snap_le32(e) == SEC_CHUNKS && snap_le64(e + 8) <= size &&
		    snap_le64(e + 16) <= size - snap_le64(e + 8) && snap_le64(e + 8) >= hdr) {
			size_t off = snap_le64(e + 8), len = snap_le64(e + 16);

			for (size_t k = 0; 4 * (k + 1) <= len; k++) {
				size_t a = hdr + k * SNAP_CHUNK, z = a + SNAP_CHUNK > off ? off : a + SNAP_CHUNK;

				if (a < z)
					snap_put32(b + off + 4 * k, tu_crc32c(0, b + a, z - a));
			}
			snap_put32(b + H_CHUNK_CRC, tu_crc32c(0, b + off, len));
		}
	}
	snap_put32(b + H_PAYLOAD_CRC, tu_crc32c(0, b + hdr, size - hdr));
	crc = tu_crc32c(0, b, H_HEADER_CRC);
	crc = tu_crc32c(crc, b + H_HEADER_CRC + 4, hdr - H_HEADER_CRC - 4);
	snap_put32(b + H_HEADER_CRC, crc);
}

static void test_hostile(void **state)
{
	_cleanup_free_ void *b = NULL, *d = NULL;
	_cleanup_free_ unsigned char *copy = NULL;
	size_t bs, ds;
	struct tu_err e = {};

	(void) state;
	build_pair(3, &b, &bs, &d, &ds);
	copy = malloc(ds);
	assert_non_null(copy);
	/* every truncation */
	for (size_t n = 0; n < ds; n++) {
		struct tu_snapshot *s = NULL;

		assert_int_equal(tu_snapshot_open_buffer(b, bs, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), 0);
		tu_err_clear(&e);
		assert_int_equal(tu_snapshot_attach_delta_buffer(s, d, n, 0, &e), -EBADMSG);
		assert_true(e.msg[0] != '\0');
		tu_snapshot_close(s);
	}
	/* every bit flip: refused at attach, or (LAZY) by the lookups that read it */
	for (size_t bit = 0; bit < 8 * ds; bit++) {
		for (int lazy = 0; lazy < 2; lazy++) {
			struct tu_snapshot *s = NULL;
			int r;

			memcpy(copy, d, ds);
			copy[bit / 8] ^= (unsigned char) (1u << (bit % 8));
			assert_int_equal(tu_snapshot_open_buffer(b, bs, TU_SNAPSHOT_KIND_ACCOUNTS,
								 lazy ? TU_SNAPSHOT_LAZY : 0, &s, &e),
					 0);
			r = tu_snapshot_attach_delta_buffer(s, copy, ds, lazy ? TU_SNAPSHOT_LAZY : 0, &e);
			if (!lazy && r != -EBADMSG)
				fail_msg("bit %zu flipped: attach gave %d", bit, r);
			if (r == 1)
				poke(s);
			tu_snapshot_close(s);
		}
	}
	/* every byte set to hostile values, checksums recomputed: errors, never a crash (ASan) */
	static const unsigned char vals[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
	for (size_t i = 0; i < ds; i++)
		for (size_t v = 0; v < sizeof(vals); v++)
			for (int mode = 0; mode < 3; mode++) {
				static const unsigned flags[] = {0, TU_SNAPSHOT_LAZY, TU_SNAPSHOT_CHECK_RECORDS};
				struct tu_snapshot *s = NULL;

				memcpy(copy, d, ds);
				if (copy[i] == vals[v])
					continue;
				copy[i] = vals[v];
				fix_crc(copy, ds);
				assert_int_equal(tu_snapshot_open_buffer(b, bs, TU_SNAPSHOT_KIND_ACCOUNTS,
									 flags[mode], &s, &e),
						 0);
				if (tu_snapshot_attach_delta_buffer(s, copy, ds, flags[mode], &e) == 1)
					poke(s);
				tu_snapshot_close(s);
			}
}

/* ---- state deltas -------------------------------------------------------------- */

struct bset {
	struct tu_blob b[300];
	char keys[300][16];
	char data[300][40];
	size_t n;
};

/* users (type 1) and roles (type 2) keyed by name, locks (3) and one auth preference (4) keyless:
 * the state writer's shape, grouped by type. */
static void bset_make(struct bset *s, size_t users, size_t roles, size_t locks, unsigned salt)
{
	s->n = 0;
	for (size_t i = 0; i < users + roles + locks + 1; i++) {
		uint32_t t = i < users ? 1 : i < users + roles ? 2 : i < users + roles + locks ? 3 : 4;
		size_t k = s->n++;

		snprintf(s->keys[k], sizeof(s->keys[k]), "%c%zu", t == 1 ? 'u' : 'r', i);
		snprintf(s->data[k], sizeof(s->data[k]), "t%u-%zu-%u", t, i, salt);
		s->b[k] = (struct tu_blob){t, s->data[k], strlen(s->data[k]), t <= 2 ? s->keys[k] : NULL,
					   t <= 2 ? strlen(s->keys[k]) : 0};
	}
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Every blob of a type (through its range) as sorted "type:data" lines. */
static char *blob_dump(const struct tu_snapshot *s)
{
	size_t n = tu_snapshot_blob_count(s), len = 0;
	char **lines = calloc(n + 1, sizeof(*lines)), *out;
	size_t m = 0;

	assert_non_null(lines);
	for (uint32_t t = 1; t <= 5; t++) {
		size_t first = 0, count = 0;

		assert_int_equal(tu_snapshot_blob_type_range(s, t, &first, &count, NULL), 0);
		for (size_t i = first; i < first + count; i++) {
			uint32_t type;
			const void *data;
			size_t size;
			char buf[128];

			assert_int_equal(tu_snapshot_blob_at(s, i, &type, &data, &size), 0);
			assert_int_equal(type, t);
			snprintf(buf, sizeof(buf), "%u:%.*s", type, (int) size, (const char *) data);
			lines[m++] = strdup(buf);
			len += strlen(buf) + 1;
		}
	}
	assert_int_equal(m, n);
	qsort(lines, m, sizeof(*lines), cmp_line);
	out = calloc(1, len + 1);
	for (size_t i = 0; i < m; i++) {
		strcat(out, lines[i]);
		strcat(out, "\n");
		free(lines[i]);
	}
	free(lines);
	return out;
}

static void find_str(const struct tu_snapshot *s, uint32_t t, const char *key, char *out, size_t size)
{
	const void *data;
	size_t len;
	int r = tu_snapshot_find_blob(s, t, key, strlen(key), &data, &len, NULL);

	if (r == 0)
		snprintf(out, size, "%.*s", (int) len, (const char *) data);
	else
		snprintf(out, size, "error %d", r);
}

static void test_state_property(void **state)
{
	static struct bset before, after;

	(void) state;
	for (int iter = 0; iter < 150; iter++) {
		_cleanup_free_ void *bdata = NULL, *ddata = NULL, *fdata = NULL;
		_cleanup_(tu_snapshot_closep) struct tu_snapshot *plain = NULL, *base = NULL, *full = NULL;
		size_t bsize, dsize, fsize, nu = rnd(120), nr = rnd(20), nl = rnd(5);
		struct tu_snapshot_delta_stats st;
		struct tu_err e = {};
		unsigned mode = iter % 3 == 0 ? 0 : iter % 3 == 1 ? TU_SNAPSHOT_LAZY : TU_SNAPSHOT_CHECK_RECORDS;

		bset_make(&before, nu, nr, nl, 0);
		/* after: same shape, a few changed, some dropped, some added, locks maybe changed */
		memcpy(&after, &before, sizeof(after));
		for (size_t k = 0; k < after.n; k++) {
			after.b[k].key = after.b[k].key ? after.keys[k] : NULL;
			after.b[k].data = after.data[k];
		}
		for (int c = 0; c < 1 + (int) rnd(6); c++) {
			size_t k = rnd((uint32_t) after.n);

			switch (rnd(3)) {
			case 0: /* changed */
				snprintf(after.data[k], sizeof(after.data[k]), "changed-%u", rnd(1000));
				after.b[k].size = strlen(after.data[k]);
				break;
			case 1: /* dropped */
				memmove(&after.b[k], &after.b[k + 1], (after.n - k - 1) * sizeof(after.b[0]));
				after.n--;
				break;
			default: /* a new user, among the users */
				if (after.n < 300) {
					size_t at = 0, nn = after.n;

					memmove(&after.b[at + 1], &after.b[at], (nn - at) * sizeof(after.b[0]));
					snprintf(after.keys[299 - c], 16, "new%d-%d", iter, c);
					snprintf(after.data[299 - c], 40, "newdata-%d", c);
					after.b[at] = (struct tu_blob){1, after.data[299 - c],
								       strlen(after.data[299 - c]),
								       after.keys[299 - c],
								       strlen(after.keys[299 - c])};
					after.n++;
				}
				break;
			}
		}
		assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, before.b, before.n, 3 + iter, 10, &bdata, &bsize, &e), 0);
		assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, after.b, after.n, 1, 20, &fdata, &fsize, &e), 0);
		assert_int_equal(tu_snapshot_open_buffer(bdata, bsize, TU_SNAPSHOT_KIND_STATE, 0, &plain, &e), 0);
		assert_int_equal(tu_snapshot_build_blobs_delta(plain, after.b, after.n, 30, SIZE_MAX, &ddata, &dsize, &st, &e), 0);
		assert_int_equal(tu_snapshot_open_buffer(bdata, bsize, TU_SNAPSHOT_KIND_STATE, mode, &base, &e), 0);
		if (tu_snapshot_attach_delta_buffer(base, ddata, dsize, mode, &e) != 1)
			fail_msg("iteration %d: attach: %s", iter, e.msg);
		assert_int_equal(tu_snapshot_open_buffer(fdata, fsize, TU_SNAPSHOT_KIND_STATE, 0, &full, &e), 0);
		assert_int_equal(tu_snapshot_blob_count(base), tu_snapshot_blob_count(full));
		{
			char *x = blob_dump(base), *y = blob_dump(full);

			assert_string_equal(x, y);
			free(x);
			free(y);
		}
		for (int side = 0; side < 2; side++) {
			const struct bset *bs = side ? &after : &before;

			for (size_t k = 0; k < bs->n; k++) {
				char p[64], q[64];

				if (!bs->b[k].key)
					continue;
				find_str(base, bs->b[k].type, bs->b[k].key, p, sizeof(p));
				find_str(full, bs->b[k].type, bs->b[k].key, q, sizeof(q));
				assert_string_equal(p, q);
			}
		}
		assert_int_equal(tu_snapshot_created_usec(base), 30);
	}
}

static void poke_blobs(const struct tu_snapshot *s)
{
	static const char *const keys[] = {"u0", "u1", "u2", "r3", "new", "x"};

	for (size_t i = 0; i < tu_snapshot_blob_count(s) + 1; i++) {
		uint32_t t;
		const void *d;
		size_t n;

		if (tu_snapshot_blob_at(s, i, &t, &d, &n) == 0 && n > 0) {
			volatile unsigned char c = ((const unsigned char *) d)[n - 1];

			(void) c;
		}
	}
	for (uint32_t t = 0; t < 6; t++) {
		size_t first, count;
		const void *d;
		size_t n;

		(void) tu_snapshot_blob_type_range(s, t, &first, &count, NULL);
		for (size_t k = 0; k < ELEMENTSOF(keys); k++)
			(void) tu_snapshot_find_blob(s, t, keys[k], strlen(keys[k]), &d, &n, NULL);
	}
}

/* A state delta's bytes: every truncation and bit flip refused, hostile values never crash. */
static void test_state_hostile(void **state)
{
	static struct bset before, after;
	_cleanup_free_ void *b = NULL, *d = NULL;
	_cleanup_free_ unsigned char *copy = NULL;
	struct tu_snapshot *s = NULL;
	size_t bs, ds;
	struct tu_err e = {};

	(void) state;
	bset_make(&before, 3, 2, 2, 0);
	bset_make(&after, 4, 1, 1, 1); /* users changed and one added, a role gone, locks changed */
	assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, before.b, before.n, 5, 1, &b, &bs, &e), 0);
	assert_int_equal(tu_snapshot_open_buffer(b, bs, TU_SNAPSHOT_KIND_STATE, 0, &s, &e), 0);
	assert_int_equal(tu_snapshot_build_blobs_delta(s, after.b, after.n, 2, 0, &d, &ds, NULL, &e), 0);
	s = tu_snapshot_close(s);
	copy = malloc(ds);
	assert_non_null(copy);
	for (size_t n = 0; n < ds; n++) {
		assert_int_equal(tu_snapshot_open_buffer(b, bs, TU_SNAPSHOT_KIND_STATE, 0, &s, &e), 0);
		assert_int_equal(tu_snapshot_attach_delta_buffer(s, d, n, 0, &e), -EBADMSG);
		s = tu_snapshot_close(s);
	}
	for (size_t bit = 0; bit < 8 * ds; bit++)
		for (int lazy = 0; lazy < 2; lazy++) {
			int r;

			memcpy(copy, d, ds);
			copy[bit / 8] ^= (unsigned char) (1u << (bit % 8));
			assert_int_equal(tu_snapshot_open_buffer(b, bs, TU_SNAPSHOT_KIND_STATE,
								 lazy ? TU_SNAPSHOT_LAZY : 0, &s, &e), 0);
			r = tu_snapshot_attach_delta_buffer(s, copy, ds, lazy ? TU_SNAPSHOT_LAZY : 0, &e);
			if (!lazy && r != -EBADMSG)
				fail_msg("bit %zu flipped: attach gave %d", bit, r);
			if (r == 1)
				poke_blobs(s);
			s = tu_snapshot_close(s);
		}
	static const unsigned char vals[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
	for (size_t i = 0; i < ds; i++)
		for (size_t v = 0; v < sizeof(vals); v++)
			for (int mode = 0; mode < 3; mode++) {
				static const unsigned flags[] = {0, TU_SNAPSHOT_LAZY, TU_SNAPSHOT_CHECK_RECORDS};

				memcpy(copy, d, ds);
				if (copy[i] == vals[v])
					continue;
				copy[i] = vals[v];
				fix_crc(copy, ds);
				assert_int_equal(tu_snapshot_open_buffer(b, bs, TU_SNAPSHOT_KIND_STATE, flags[mode], &s, &e), 0);
				if (tu_snapshot_attach_delta_buffer(s, copy, ds, flags[mode], &e) == 1)
					poke_blobs(s);
				s = tu_snapshot_close(s);
			}
	/* a base without a key index takes no state delta: the writer says write in full */
	{
		_cleanup_free_ void *b2 = NULL, *d2 = NULL;
		size_t bs2, ds2;
		const struct tu_blob plain[] = {{3, "x", 1, NULL, 0}};

		assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, plain, 1, 5, 1, &b2, &bs2, &e), 0);
		assert_int_equal(tu_snapshot_open_buffer(b2, bs2, TU_SNAPSHOT_KIND_STATE, 0, &s, &e), 0);
		assert_int_equal(tu_snapshot_build_blobs_delta(s, after.b, after.n, 2, 0, &d2, &ds2, NULL, &e), -E2BIG);
		/* and refuses a delta for a keyed base */
		assert_int_equal(tu_snapshot_attach_delta_buffer(s, d, ds, 0, &e), 0); /* another base: stale */
		s = tu_snapshot_close(s);
	}
}

/* ---- files -------------------------------------------------------------------- */

static char dir[PATH_MAX];

static void path_of(char *buf, const char *name)
{
	size_t n = strlen(dir);

	memcpy(buf, dir, n);
	buf[n] = '/';
	memcpy(buf + n + 1, name, strlen(name) + 1);
}

static int setup_dir(void **state)
{
	(void) state;
	snprintf(dir, sizeof(dir), "/tmp/tu-delta-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	chmod(dir, 0755);
	return 0;
}

static int teardown_dir(void **state)
{
	char p[PATH_MAX];
	static const char *const files[] = {"accounts.db", "accounts.delta", "link.db", "x.delta"};

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		path_of(p, files[i]);
		(void) unlink(p);
	}
	(void) rmdir(dir);
	return 0;
}

static void expect_shell(const struct tu_snapshot *s, const char *login, const char *shell)
{
	struct tu_pw_view v;

	assert_int_equal(tu_snapshot_find_login(s, login, &v, NULL), 0);
	assert_string_equal(v.shell, shell);
}

static void test_files(void **state)
{
	char base[PATH_MAX], delta[PATH_MAX], dp[PATH_MAX];
	struct tu_snapshot *s = NULL, *old = NULL;
	struct tu_snapshot_delta_stats st;
	struct tu_pw_view v;
	struct tu_err e = {};
	uint64_t g;

	(void) state;
	path_of(base, "accounts.db");
	path_of(delta, "accounts.delta");
	assert_int_equal(tu_snapshot_delta_path(base, dp, sizeof(dp)), -ENOENT);
	/* no base: the caller writes a full file */
	assert_int_equal(tu_snapshot_write_accounts_delta(base, pw2, 3, gr2, 4, NULL, 2, 0, &st, &e), -ENOENT);
	assert_int_equal(tu_snapshot_next_generation(base), 1);
	assert_int_equal(tu_snapshot_write_accounts(base, pw1, 3, gr1, 4, 1, 1000, &e), 0);
	assert_int_equal(tu_snapshot_delta_path(base, dp, sizeof(dp)), 0);
	assert_string_equal(dp, delta);

	/* base alone, then base + delta */
	assert_int_equal(tu_snapshot_open(base, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, &e), 0);
	assert_false(tu_snapshot_has_delta(s));
	s = tu_snapshot_close(s);
	assert_int_equal(tu_snapshot_write_accounts_delta(base, pw2, 3, gr2, 4, NULL, 2000, 0, &st, &e), 0);
	assert_true(st.bytes > 0);
	assert_int_equal(st.base_generation, 1);
	assert_int_equal(tu_snapshot_open(base, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY | TU_SNAPSHOT_LAZY, &old, &e), 0);
	assert_true(tu_snapshot_has_delta(old));
	expect_shell(old, "alice", "/bin/bash");
	assert_int_equal(tu_snapshot_find_login(old, "bob", &v, NULL), -ENOENT);
	/* without the flag: the base alone */
	assert_int_equal(tu_snapshot_open(base, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), 0);
	expect_shell(s, "alice", "/bin/sh");
	s = tu_snapshot_close(s);
	assert_int_equal(tu_snapshot_next_generation(base), 2);

	/* compaction while a reader holds base 1 + delta: the reader keeps its consistent view;
	 * a new reader sees base 2 and ignores the stale delta */
	g = tu_snapshot_next_generation(base);
	assert_int_equal(tu_snapshot_write_accounts(base, pw2, 3, gr2, 4, g, 3000, &e), 0);
	expect_shell(old, "alice", "/bin/bash");
	assert_int_equal(tu_snapshot_find_uid(old, 30002, &v, NULL), 0);
	assert_string_equal(v.name, "dave");
	assert_int_equal(tu_snapshot_open(base, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, &e), 0);
	assert_false(tu_snapshot_has_delta(s));
	assert_int_equal(tu_snapshot_generation(s), 2);
	expect_shell(s, "alice", "/bin/bash");
	s = tu_snapshot_close(s);
	/* the next delta is for base 2 */
	assert_int_equal(tu_snapshot_write_accounts_delta(base, pw1, 3, gr1, 4, NULL, 4000, 0, &st, &e), 0);
	assert_int_equal(st.base_generation, 2);
	expect_shell(old, "alice", "/bin/bash");
	assert_int_equal(tu_snapshot_open(base, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, &e), 0);
	assert_true(tu_snapshot_has_delta(s));
	expect_shell(s, "alice", "/bin/sh");
	assert_int_equal(tu_snapshot_created_usec(s), 4000);
	s = tu_snapshot_close(s);
	old = tu_snapshot_close(old);

	/* a delta naming a newer base than the file (the base was replaced by an older copy, or
	 * the writer is mid-way): bounded retries, then a clear error */
	{
		_cleanup_free_ void *b = NULL, *d = NULL;
		size_t bs, ds;

		build_pair(9, &b, &bs, &d, &ds);
		assert_int_equal(tu_snapshot_replace_file(delta, 0644, d, ds, &e), 0);
		tu_err_clear(&e);
		assert_int_equal(tu_snapshot_open(base, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, &e), -ESTALE);
		assert_non_null(strstr(e.msg, "accounts.delta"));
		/* the next full write goes past the delta's generation */
		assert_int_equal(tu_snapshot_next_generation(base), 10);
	}
	/* a corrupt delta fails the open, naming the file and the reason */
	{
		static const char junk[200] = "\x89TUSNAP\n";

		assert_int_equal(tu_snapshot_replace_file(delta, 0644, junk, sizeof(junk), &e), 0);
		tu_err_clear(&e);
		assert_int_equal(tu_snapshot_open(base, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, &e), -EBADMSG);
		assert_non_null(strstr(e.msg, "accounts.delta"));
	}
	/* trust: group-writable, a symlink */
	assert_int_equal(tu_snapshot_write_accounts(base, pw1, 3, gr1, 4, 20, 1000, &e), 0);
	assert_int_equal(tu_snapshot_write_accounts_delta(base, pw2, 3, gr2, 4, NULL, 2000, 0, &st, &e), 0);
	assert_int_equal(chmod(delta, 0664), 0);
	assert_int_equal(tu_snapshot_open(base, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, &e), -EPERM);
	assert_int_equal(chmod(delta, 0644), 0);
	{
		char other[PATH_MAX];

		path_of(other, "x.delta");
		assert_int_equal(rename(delta, other), 0);
		assert_int_equal(symlink(other, delta), 0);
		assert_int_equal(tu_snapshot_open(base, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, &e), -EPERM);
		assert_non_null(strstr(e.msg, "symbolic link"));
		assert_int_equal(unlink(delta), 0);
		assert_int_equal(rename(other, delta), 0);
	}
	/* the base reached through a symlink: the delta next to the real file */
	{
		char link[PATH_MAX];

		path_of(link, "link.db");
		assert_int_equal(symlink(base, link), 0);
		assert_int_equal(tu_snapshot_delta_path(link, dp, sizeof(dp)), 0);
		assert_string_equal(dp, delta);
		assert_int_equal(tu_snapshot_open(link, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, &e), 0);
		assert_true(tu_snapshot_has_delta(s));
		s = tu_snapshot_close(s);
	}
	if (geteuid() == 0) {
		assert_int_equal(chown(delta, 65534, 65534), 0);
		assert_int_equal(tu_snapshot_open(base, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s, &e), -EPERM);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_property),
	    cmocka_unit_test(test_hidden),
	    cmocka_unit_test(test_generations),
	    cmocka_unit_test(test_limit),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_state_property),
	    cmocka_unit_test(test_state_hostile),
	    cmocka_unit_test_setup_teardown(test_files, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
