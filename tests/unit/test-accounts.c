/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-accounts.c - the POSIX mapping (libcore/accounts.c, SPEC §4): source
 * modes, owner choice, uid/gid from traits or hashing (order independence),
 * user-private groups, host_groups with local and generated gids, skipped
 * names.  Datasets are built with tests/unit/rbac-fixture.h.
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

#include "accounts.h"
#include "cleanup.h"
#include "conf.h"
#include "decide.h"
#include "err.h"
#include "idhash.h"
#include "log.h"
#include "rbac-fixture.h"
#include "snapshot.h"
#include "watch.h"

#define NOW     INT64_C(1700000000000000)
#define UID_MIN 200000u
#define UID_MAX 899999999u

static const struct fx_role base_roles[] = {
    /* Host-user creation on, logins from the trait plus a shared one, groups. */
    {.name = "dev",
     .allow_logins = "{{internal.logins}},ubuntu",
     .allow_labels = "*=*",
     .mode = TU_HOST_USER_MODE_KEEP,
     .allow_groups = "docker,devs"},
    /* Logins without host-user creation: only with source all_logins. */
    {.name = "viewer", .allow_logins = "viewer-{{internal.logins}},guest", .allow_labels = "*=*"},
    /* Legacy boolean. */
    {.name = "legacy", .allow_logins = "legacy", .allow_labels = "*=*", .legacy = 1},
    /* insecure-drop, with groups to skip. */
    {.name = "drop",
     .allow_logins = "dropper,root",
     .allow_labels = "*=*",
     .mode = TU_HOST_USER_MODE_INSECURE_DROP,
     .allow_groups = "root,ops"},
    /* Matches another host only. */
    {.name = "elsewhere",
     .allow_logins = "nothere",
     .allow_labels = "env=staging",
     .mode = TU_HOST_USER_MODE_KEEP},
};

struct fixture {
	struct tu_dataset d;
	struct tu_labels labels;
	struct tu_host host;
};

static void fixture_build(struct fixture *f, const struct fx_user *users, size_t n_users,
			  const struct fx_role *roles, size_t n_roles)
{
	memset(f, 0, sizeof(*f));
	f->d.users = calloc(n_users + 1, sizeof(*f->d.users));
	f->d.roles = calloc(n_roles + 1, sizeof(*f->d.roles));
	assert_non_null(f->d.users);
	assert_non_null(f->d.roles);
	for (size_t i = 0; i < n_users; i++)
		fx_user_build(&users[i], &f->d.users[f->d.n_users++]);
	for (size_t i = 0; i < n_roles; i++)
		fx_role_build(&roles[i], &f->d.roles[f->d.n_roles++]);
	f->labels = fx_labels("env=prod;team=infra");
	f->host = (struct tu_host){
	    .name = "web-1", .id = "5a9f3c0e", .cluster = "example.com", .labels = &f->labels};
}

static void fixture_done(struct fixture *f)
{
	tu_dataset_done(&f->d);
	fx_labels_free(&f->labels);
}

static struct tu_accounts_opts opts_default(int source)
{
	return (struct tu_accounts_opts){
	    .source = source,
	    .uid_min = UID_MIN,
	    .uid_max = UID_MAX,
	    .home_template = "/home/{login}",
	    .shell = "/bin/bash",
	};
}

static void compute_ok(const struct fixture *f, const struct tu_accounts_opts *o,
		       struct tu_accounts *ret)
{
	struct tu_err e;
	tu_err_clear(&e);
	int r = tu_accounts_compute(&f->d, &f->host, o, NOW, ret, &e);
	if (r < 0)
		fail_msg("tu_accounts_compute: %d %s", r, e.msg);
}

static const struct tu_account *must_find(const struct tu_accounts *a, const char *login)
{
	const struct tu_account *x = tu_accounts_find_login(a, login);
	if (!x)
		fail_msg("account '%s' missing", login);
	return x;
}

static bool has_gid(const struct tu_account *a, uint32_t gid)
{
	for (size_t i = 0; i < a->n_gids; i++)
		if (a->gids[i] == gid)
			return true;
	return false;
}

/* Logins of a result as "a,b,c" for compact assertions. */
static const char *logins_of(const struct tu_accounts *a, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; i < a->n_accounts; i++) {
		if (i)
			strncat(buf, ",", size - strlen(buf) - 1);
		strncat(buf, a->accounts[i].login, size - strlen(buf) - 1);
	}
	return buf;
}

/* ---- source modes ------------------------------------------------------------------------ */

static void test_source_modes(void **state)
{
	static const struct fx_user users[] = {
	    {.name = "alice", .roles = "dev", .traits = "logins=alice"},
	    {.name = "bob", .roles = "viewer", .traits = "logins=bob"},
	    {.name = "carol", .roles = "legacy"},
	    {.name = "dave", .roles = "drop"},
	    {.name = "erin", .roles = "elsewhere"},
	    /* viewer (no mode, no legacy flag) counts as "off" and vetoes dev's keep. */
	    {.name = "gina", .roles = "dev,viewer", .traits = "logins=gina"},
	};
	struct fixture f;
	struct tu_accounts a = {0};
	char buf[512];

	fixture_build(&f, users, ELEMENTSOF(users), base_roles, ELEMENTSOF(base_roles));

	struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
	compute_ok(&f, &o, &a);
	assert_string_equal(logins_of(&a, buf, sizeof(buf)), "alice,dropper,legacy,ubuntu");
	assert_int_equal(a.n_skipped, 2); /* login root, host group root */
	assert_string_equal(must_find(&a, "ubuntu")->owner, "alice");
	assert_int_equal(must_find(&a, "ubuntu")->n_owners, 1);
	tu_accounts_done(&a);

	o = opts_default(TU_SOURCE_ALL_LOGINS);
	compute_ok(&f, &o, &a);
	assert_string_equal(logins_of(&a, buf, sizeof(buf)),
			    "alice,dropper,gina,guest,legacy,ubuntu,viewer-bob,viewer-gina");
	assert_string_equal(must_find(&a, "viewer-bob")->owner, "bob");
	assert_string_equal(must_find(&a, "ubuntu")->owner, "alice");
	assert_int_equal(must_find(&a, "ubuntu")->n_owners, 2);
	assert_int_equal(must_find(&a, "guest")->n_owners, 2);
	tu_accounts_done(&a);
	fixture_done(&f);
}

/* Any matching role with mode off denies host-user creation (API.md §5). */
static void test_source_off_wins(void **state)
{
	static const struct fx_role roles[] = {
	    {.name = "keep",
	     .allow_logins = "k1",
	     .allow_labels = "*=*",
	     .mode = TU_HOST_USER_MODE_KEEP},
	    {.name = "off",
	     .allow_logins = "k2",
	     .allow_labels = "*=*",
	     .mode = TU_HOST_USER_MODE_OFF},
	};
	static const struct fx_user users[] = {
	    {.name = "u1", .roles = "keep"},
	    {.name = "u2", .roles = "keep,off"},
	};
	struct fixture f;
	struct tu_accounts a = {0};
	char buf[128];

	fixture_build(&f, users, ELEMENTSOF(users), roles, ELEMENTSOF(roles));
	struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
	compute_ok(&f, &o, &a);
	assert_string_equal(logins_of(&a, buf, sizeof(buf)), "k1");
	assert_string_equal(must_find(&a, "k1")->owner, "u1");
	assert_int_equal(must_find(&a, "k1")->n_owners, 1);
	tu_accounts_done(&a);
	fixture_done(&f);
}

/* ---- owner choice ------------------------------------------------------------------------ */

static void test_owner_rules(void **state)
{
	static const struct fx_role roles[] = {
	    {.name = "r",
	     .allow_logins = "shared,ops,zed,{{internal.logins}}",
	     .allow_labels = "*=*",
	     .mode = TU_HOST_USER_MODE_KEEP},
	};
	static const struct fx_user users[] = {
	    /* "zed" is also a user's name: that user owns login zed even if others have it in
	       traits. */
	    {.name = "zz@example.com", .roles = "r", .traits = "logins=ops,zed"},
	    {.name = "mm@example.com", .roles = "r", .traits = "logins=ops"},
	    {.name = "zed", .roles = "r"},
	    {.name = "bb@example.com", .roles = "r"},
	    /* Ignored users: expired and bot; they own nothing even by name. */
	    {.name = "shared", .roles = "r", .expires = NOW - 1},
	};
	struct fixture f;
	struct tu_accounts a = {0};

	fixture_build(&f, users, ELEMENTSOF(users), roles, ELEMENTSOF(roles));
	struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
	compute_ok(&f, &o, &a);

	const struct tu_account *x = must_find(&a, "zed");
	assert_string_equal(x->owner, "zed");
	assert_int_equal(x->n_owners, 1);

	/* ops: two users hold it in their logins trait -> the smallest of those, shared. */
	x = must_find(&a, "ops");
	assert_string_equal(x->owner, "mm@example.com");
	assert_string_equal(x->gecos, "mm@example.com");
	assert_int_equal(x->n_owners, 2);

	/* shared: the user named "shared" is expired, nobody has it in traits: every grantee,
	 * smallest wins. */
	x = must_find(&a, "shared");
	assert_string_equal(x->owner, "bb@example.com");
	assert_int_equal(x->n_owners, 4);
	tu_accounts_done(&a);
	fixture_done(&f);
}

/* Our owner choice is decide.c's tu_decide_owners(), computed in bulk: they must agree. */
static void test_owners_match_decide(void **state)
{
	static const struct fx_role roles[] = {
	    {.name = "r",
	     .allow_logins = "shared,ops,{{internal.logins}}",
	     .allow_labels = "*=*",
	     .mode = TU_HOST_USER_MODE_KEEP},
	    {.name = "v", .allow_logins = "view-{{internal.logins}},ops", .allow_labels = "*=*"},
	};
	static const struct fx_user users[] = {
	    {.name = "zz@example.com", .roles = "r", .traits = "logins=ops,zed"},
	    {.name = "mm@example.com", .roles = "r,v", .traits = "logins=ops"},
	    {.name = "zed", .roles = "v"},
	    {.name = "bb@example.com", .roles = "r"},
	    {.name = "ops2", .roles = "r", .traits = "logins=ops2,shared"},
	    {.name = "cc", .roles = "v", .traits = "logins=cc"},
	};
	static const int sources[] = {TU_SOURCE_HOST_USER_CREATION, TU_SOURCE_ALL_LOGINS};
	struct fixture f;

	fixture_build(&f, users, ELEMENTSOF(users), roles, ELEMENTSOF(roles));
	for (size_t si = 0; si < ELEMENTSOF(sources); si++) {
		struct tu_accounts a = {0};
		struct tu_accounts_opts o = opts_default(sources[si]);
		compute_ok(&f, &o, &a);
		assert_true(a.n_accounts >= 4);
		for (size_t i = 0; i < a.n_accounts; i++) {
			struct tu_strv owners = {0};
			assert_int_equal(tu_decide_owners(&f.d, &f.host, sources[si],
							  a.accounts[i].login, &owners, NULL),
					 0);
			if (owners.n == 0 || strcmp(owners.v[0], a.accounts[i].owner) != 0 ||
			    owners.n != a.accounts[i].n_owners)
				fail_msg(
				    "source %d login %s: accounts says %s (%zu), decide says %s (%zu)",
				    sources[si], a.accounts[i].login, a.accounts[i].owner,
				    a.accounts[i].n_owners, owners.n ? owners.v[0] : "-", owners.n);
			tu_strv_done(&owners);
		}
		/* And a login that is no account has no owner there either. */
		struct tu_strv owners = {0};
		assert_int_equal(
		    tu_decide_owners(&f.d, &f.host, sources[si], "nobody-here", &owners, NULL), 0);
		assert_int_equal(owners.n, 0);
		tu_accounts_done(&a);
	}
	fixture_done(&f);
}

static void test_ignored_users(void **state)
{
	struct tu_user u = {.name = (char *) "x"};
	const char *why = NULL;

	assert_false(tu_accounts_user_ignored(&u, NOW, &why));
	assert_null(why);
	u.is_locked = true; /* locked users stay: PAM refuses, NSS shows */
	assert_false(tu_accounts_user_ignored(&u, NOW, &why));
	u.has_expires = true;
	u.expires_usec = NOW + 1;
	assert_false(tu_accounts_user_ignored(&u, NOW, &why));
	u.expires_usec = NOW;
	assert_true(tu_accounts_user_ignored(&u, NOW, &why));
	assert_string_equal(why, "user expired");
	u.has_expires = false;
	u.is_bot = true;
	assert_true(tu_accounts_user_ignored(&u, NOW, &why));
	assert_string_equal(why, "bot user");
}

/* ---- uids -------------------------------------------------------------------------------- */

static void test_uid_from_trait(void **state)
{
	static const struct fx_role roles[] = {
	    {.name = "r",
	     .allow_logins = "{{internal.logins}}",
	     .allow_labels = "*=*",
	     .mode = TU_HOST_USER_MODE_KEEP},
	};

	static const struct {
		const char *trait; /* host_user_uid value; NULL = none */
		bool used;         /* expect exactly that uid */
	} cases[] = {
	    {"300000", true},   {"200000", true},     {"899999999", true}, /* edges of the range */
	    {"199999", false},  {"900000000", false},                      /* out of range */
	    {"abc", false},     {"-300001", false},   {"+300002", false},    {"0300003", false},
	    {"300004 ", false}, {"", false},          {"4294967296", false}, {"0", false},
	    {NULL, false},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char traits[128];
		struct fixture f;
		struct tu_accounts a = {0};

		if (cases[i].trait)
			snprintf(traits, sizeof(traits), "logins=acct;host_user_uid=%s",
				 cases[i].trait);
		else
			snprintf(traits, sizeof(traits), "logins=acct");
		struct fx_user u = {.name = "someone", .roles = "r", .traits = traits};
		fixture_build(&f, &u, 1, roles, ELEMENTSOF(roles));
		struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
		compute_ok(&f, &o, &a);
		const struct tu_account *x = must_find(&a, "acct");
		if (cases[i].used) {
			uint32_t want = (uint32_t) strtoul(cases[i].trait, NULL, 10);
			if (x->uid != want)
				fail_msg("trait '%s': uid %u, want %u", cases[i].trait, x->uid,
					 want);
		} else {
			uint32_t want = tu_idhash_home("acct", UID_MIN, UID_MAX);
			if (x->uid != want)
				fail_msg("trait '%s': uid %u, want hashed %u",
					 cases[i].trait ? cases[i].trait : "(none)", x->uid, want);
		}
		assert_int_equal(x->gid, x->uid); /* user-private group */
		tu_accounts_done(&a);
		fixture_done(&f);
	}
}

static void test_uid_trait_collisions(void **state)
{
	static const struct fx_role roles[] = {
	    {.name = "r",
	     .allow_logins = "{{internal.logins}}",
	     .allow_labels = "*=*",
	     .mode = TU_HOST_USER_MODE_KEEP},
	};
	static const struct fx_user users[] = {
	    /* Both claim 300000: the smaller login (amy) wins, bert is hashed. */
	    {.name = "u-bert", .roles = "r", .traits = "logins=bert;host_user_uid=300000"},
	    {.name = "u-amy", .roles = "r", .traits = "logins=amy;host_user_uid=300000"},
	    /* Claims a gid of a local group: refused, hashed instead. */
	    {.name = "u-cid", .roles = "r", .traits = "logins=cid;host_user_uid=300500"},
	};
	static const struct tu_local_group local[] = {{"printers", 300500}};
	struct fixture f;
	struct tu_accounts a = {0};

	fixture_build(&f, users, ELEMENTSOF(users), roles, ELEMENTSOF(roles));
	struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
	o.local_groups = local;
	o.n_local_groups = ELEMENTSOF(local);
	compute_ok(&f, &o, &a);
	assert_int_equal(must_find(&a, "amy")->uid, 300000);
	assert_int_not_equal(must_find(&a, "bert")->uid, 300000);
	assert_int_equal(must_find(&a, "bert")->uid, tu_idhash_home("bert", UID_MIN, UID_MAX));
	assert_int_not_equal(must_find(&a, "cid")->uid, 300500);
	tu_accounts_done(&a);
	fixture_done(&f);
}

/*
 * accounts.trait_id_range (issue 11 item 4): host_user_uid / host_user_gid
 * honoured inside their own fence, outside uid_range too (Teleport's
 * `useradd --uid`), never 0, 65534 or 65535, never an id a local account or
 * group holds, first login wins a clash; hashing stays inside uid_range.
 */
static void test_trait_id_range(void **state)
{
	static const struct fx_role roles[] = {
	    {.name = "r", .allow_logins = "{{internal.logins}}", .allow_labels = "*=*",
	     .mode = TU_HOST_USER_MODE_KEEP},
	};
	static const struct {
		const char *trait; /* host_user_uid */
		uint32_t want;     /* 0 = hashed */
	} cases[] = {
	    {"2001", 2001},       {"1000", 0} /* local account */, {"5000", 0} /* local group */,
	    {"65534", 0},         {"65535", 0},  {"0", 0},  {"999", 0} /* below the fence */,
	    {"60000", 60000},     {"300000", 300000} /* inside uid_range too */,
	    {"2147483647", 2147483647}, {"70000", 0} /* above this test's fence */,
	};
	static const uint32_t local_uids[] = {0, 1000, 1001, 65534};
	static const struct tu_local_group local[] = {{"nfs", 5000}};

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char traits[128];
		struct fixture f;
		struct tu_accounts a = {0};

		snprintf(traits, sizeof(traits), "logins=acct;host_user_uid=%s;host_user_gid=%s", cases[i].trait,
			 cases[i].trait);
		struct fx_user u = {.name = "someone", .roles = "r", .traits = traits};
		fixture_build(&f, &u, 1, roles, ELEMENTSOF(roles));
		struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
		o.trait_id_min = 1000;
		o.trait_id_max = strcmp(cases[i].trait, "70000") == 0 ? 65000 : 2147483647;
		o.local_uids = local_uids;
		o.n_local_uids = ELEMENTSOF(local_uids);
		o.local_groups = local;
		o.n_local_groups = ELEMENTSOF(local);
		compute_ok(&f, &o, &a);
		const struct tu_account *x = must_find(&a, "acct");
		uint32_t want = cases[i].want ? cases[i].want : tu_idhash_home("acct", UID_MIN, UID_MAX);
		if (x->uid != want || x->gid != want)
			fail_msg("trait '%s': uid %u gid %u, want %u", cases[i].trait, x->uid, x->gid, want);
		tu_accounts_done(&a);
		fixture_done(&f);
	}
	/* A clash: the first login (bytewise) wins, whatever the input order. */
	{
		static const struct fx_user users[] = {
		    {.name = "u-zed", .roles = "r", .traits = "logins=zed;host_user_uid=3000"},
		    {.name = "u-amy", .roles = "r", .traits = "logins=amy;host_user_uid=3000"},
		};
		struct fixture f;
		struct tu_accounts a = {0};

		fixture_build(&f, users, ELEMENTSOF(users), roles, ELEMENTSOF(roles));
		struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
		o.trait_id_min = 1000;
		o.trait_id_max = 2147483647;
		compute_ok(&f, &o, &a);
		assert_int_equal(must_find(&a, "amy")->uid, 3000);
		assert_int_equal(must_find(&a, "zed")->uid, tu_idhash_home("zed", UID_MIN, UID_MAX));
		tu_accounts_done(&a);
		fixture_done(&f);
	}
}

/* Builds n users u0000..: each with login l<i>, in the given order permutation. */
static void build_many(struct fixture *f, size_t n, const size_t *perm, const char *host_name)
{
	static const struct fx_role roles[] = {
	    {.name = "r",
	     .allow_logins = "{{internal.logins}},common",
	     .allow_labels = "env=prod",
	     .mode = TU_HOST_USER_MODE_KEEP,
	     .allow_groups = "g-{{internal.logins}},team"},
	};
	struct fx_user *users = calloc(n, sizeof(*users));
	char(*names)[32] = calloc(n, sizeof(*names));
	char(*traits)[64] = calloc(n, sizeof(*traits));
	assert_non_null(users);
	for (size_t i = 0; i < n; i++) {
		size_t k = perm ? perm[i] : i;
		snprintf(names[i], sizeof(names[i]), "user%04zu@example.com", k);
		snprintf(traits[i], sizeof(traits[i]), "logins=l%04zu", k);
		users[i] = (struct fx_user){.name = names[i], .roles = "r", .traits = traits[i]};
	}
	fixture_build(f, users, n, roles, ELEMENTSOF(roles));
	f->host.name = host_name;
	free(users);
	free(names);
	free(traits);
}

static void assert_same_accounts(const struct tu_accounts *a, const struct tu_accounts *b)
{
	assert_int_equal(a->n_accounts, b->n_accounts);
	assert_int_equal(a->n_groups, b->n_groups);
	for (size_t i = 0; i < a->n_accounts; i++) {
		assert_string_equal(a->accounts[i].login, b->accounts[i].login);
		assert_int_equal(a->accounts[i].uid, b->accounts[i].uid);
		assert_int_equal(a->accounts[i].gid, b->accounts[i].gid);
		assert_string_equal(a->accounts[i].owner, b->accounts[i].owner);
		assert_int_equal(a->accounts[i].n_gids, b->accounts[i].n_gids);
		for (size_t k = 0; k < a->accounts[i].n_gids; k++)
			assert_int_equal(a->accounts[i].gids[k], b->accounts[i].gids[k]);
	}
	for (size_t i = 0; i < a->n_groups; i++) {
		assert_string_equal(a->groups[i].name, b->groups[i].name);
		assert_int_equal(a->groups[i].gid, b->groups[i].gid);
		assert_int_equal(a->groups[i].members.n, b->groups[i].members.n);
		for (size_t k = 0; k < a->groups[i].members.n; k++)
			assert_string_equal(a->groups[i].members.v[k], b->groups[i].members.v[k]);
	}
}

static void test_order_independent(void **state)
{
	enum { N = 300 };

	size_t perm[N];
	struct fixture f1, f2, f3;
	struct tu_accounts a1 = {0}, a2 = {0}, a3 = {0};

	/* A narrow range forces many hash collisions, so probing order matters. */
	struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
	o.uid_min = 500000;
	o.uid_max = 501200;

	for (size_t i = 0; i < N; i++)
		perm[i] = N - 1 - i;
	/* A fixed shuffle (deterministic LCG), so the test is reproducible. */
	uint32_t x = 12345;
	for (size_t i = N - 1; i > 0; i--) {
		x = x * 1103515245u + 12345u;
		size_t j = x % (i + 1);
		size_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}

	build_many(&f1, N, NULL, "web-1");
	build_many(&f2, N, perm, "web-1");
	build_many(&f3, N, NULL, "db-7"); /* another host with the same labels */
	compute_ok(&f1, &o, &a1);
	compute_ok(&f2, &o, &a2);
	compute_ok(&f3, &o, &a3);
	assert_int_equal(a1.n_accounts, N + 1);         /* l0000.. plus common */
	assert_int_equal(a1.n_groups, (N + 1) + N + 1); /* UPGs, g-l*, team */
	assert_same_accounts(&a1, &a2);
	assert_same_accounts(&a1, &a3);

	/* Every id distinct across uids and generated gids, and in range. */
	for (size_t i = 0; i < a1.n_groups; i++) {
		assert_in_range(a1.groups[i].gid, o.uid_min, o.uid_max);
		for (size_t k = i + 1; k < a1.n_groups; k++)
			if (a1.groups[i].gid == a1.groups[k].gid)
				fail_msg("gid %u used by %s and %s", a1.groups[i].gid,
					 a1.groups[i].name, a1.groups[k].name);
	}
	tu_accounts_done(&a1);
	tu_accounts_done(&a2);
	tu_accounts_done(&a3);
	fixture_done(&f1);
	fixture_done(&f2);
	fixture_done(&f3);
}

/* A range too small for everyone: the leftovers are skipped, never duplicated. */
static void test_range_exhausted(void **state)
{
	struct fixture f;
	struct tu_accounts a = {0};
	struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);

	o.uid_min = 700000;
	o.uid_max = 700009; /* 10 ids for 20 accounts (plus groups) */
	build_many(&f, 19, NULL, "web-1");
	compute_ok(&f, &o, &a);
	assert_int_equal(a.n_accounts, 10);
	assert_true(a.n_skipped >= 10);
	for (size_t i = 0; i < a.n_accounts; i++)
		for (size_t k = i + 1; k < a.n_accounts; k++)
			assert_int_not_equal(a.accounts[i].uid, a.accounts[k].uid);
	tu_accounts_done(&a);
	fixture_done(&f);
}

/* ---- gids and groups --------------------------------------------------------------------- */

static void test_gid_and_groups(void **state)
{
	static const struct fx_role roles[] = {
	    {.name = "r",
	     .allow_logins = "{{internal.logins}}",
	     .allow_labels = "*=*",
	     .mode = TU_HOST_USER_MODE_KEEP,
	     .allow_groups = "docker,devs,{{external.extra}}"},
	};
	static const struct fx_user users[] = {
	    {.name = "alice", .roles = "r", .traits = "logins=alice;host_user_uid=300001"},
	    /* gid from the trait: a group named bob with gid 400000 is served. */
	    {.name = "bob", .roles = "r", .traits = "logins=bob;host_user_gid=400000"},
	    /* gid of a local group: that group is the primary group, nothing new served. */
	    {.name = "carl", .roles = "r", .traits = "logins=carl;host_user_gid=300777"},
	    /* A system gid (sudo's) outside uid_range is never taken from a trait. */
	    {.name = "gus", .roles = "r", .traits = "logins=gus;host_user_gid=27"},
	    /* An invalid gid trait falls back to the user-private group. */
	    {.name = "dina", .roles = "r", .traits = "logins=dina;host_user_gid=x1"},
	    /* host group named like another account: joins that user-private group. */
	    {.name = "eve", .roles = "r", .traits = "logins=eve;extra=alice,bad:name,root"},
	    /* A login named like a local group: gid = uid, no group entry. */
	    {.name = "fred", .roles = "r", .traits = "logins=staff"},
	};
	static const struct tu_local_group local[] = {
	    {"docker", 999}, {"staff", 50}, {"root", 0}, {"printers", 300777}, {"sudo", 27},
	};
	struct fixture f;
	struct tu_accounts a = {0};

	fixture_build(&f, users, ELEMENTSOF(users), roles, ELEMENTSOF(roles));
	struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
	o.local_groups = local;
	o.n_local_groups = ELEMENTSOF(local);
	compute_ok(&f, &o, &a);

	const struct tu_account *alice = must_find(&a, "alice");
	assert_int_equal(alice->uid, 300001);
	assert_int_equal(alice->gid, 300001);
	const struct tu_group *g = tu_accounts_find_group(&a, "alice");
	assert_non_null(g);
	assert_true(g->user_private);
	assert_int_equal(g->gid, 300001);
	/* eve joined alice's group through host_groups; alice herself is not listed. */
	assert_int_equal(g->members.n, 1);
	assert_string_equal(g->members.v[0], "eve");

	const struct tu_account *bob = must_find(&a, "bob");
	assert_int_equal(bob->gid, 400000);
	g = tu_accounts_find_group(&a, "bob");
	assert_non_null(g);
	assert_int_equal(g->gid, 400000);

	/* A gid a local group holds is never taken from a trait (issue 11): user-private. */
	const struct tu_account *carl = must_find(&a, "carl");
	assert_int_equal(carl->gid, carl->uid);
	assert_non_null(tu_accounts_find_group(&a, "carl"));
	assert_true(has_gid(carl, 999));

	const struct tu_account *gus = must_find(&a, "gus");
	assert_int_equal(gus->gid, gus->uid);
	assert_non_null(tu_accounts_find_group(&a, "gus"));

	const struct tu_account *dina = must_find(&a, "dina");
	assert_int_equal(dina->gid, dina->uid);

	/* Local docker keeps 999 and is not served by us; devs gets a generated gid. */
	assert_null(tu_accounts_find_group(&a, "docker"));
	assert_true(has_gid(alice, 999));
	assert_true(has_gid(bob, 999));
	const struct tu_group *devs = tu_accounts_find_group(&a, "devs");
	assert_non_null(devs);
	assert_false(devs->user_private);
	assert_in_range(devs->gid, UID_MIN, UID_MAX);
	assert_true(has_gid(alice, devs->gid));
	for (size_t i = 0; i < a.n_accounts; i++)
		assert_int_not_equal(a.accounts[i].uid, devs->gid);
	/* Members sorted, everyone with the role. */
	assert_int_equal(devs->members.n, 7);
	assert_string_equal(devs->members.v[0], "alice");
	assert_string_equal(devs->members.v[6], "staff");

	const struct tu_account *eve = must_find(&a, "eve");
	assert_true(has_gid(eve, 300001));
	/* "bad:name" is invalid, "root" is never granted (neither as name nor local gid 0). */
	assert_null(tu_accounts_find_group(&a, "bad:name"));
	assert_false(has_gid(eve, 0));
	for (size_t i = 1; i < eve->n_gids; i++)
		assert_true(eve->gids[i - 1] < eve->gids[i]); /* sorted, unique */

	const struct tu_account *staff = must_find(&a, "staff");
	assert_int_equal(staff->gid, staff->uid);
	g = tu_accounts_find_group(&a, "staff");
	assert_null(g); /* the local group owns the name */
	assert_int_equal(a.n_skipped, 2);
	tu_accounts_done(&a);
	fixture_done(&f);
}

/* ---- names, fields, options -------------------------------------------------------------- */

static void test_fields_and_skips(void **state)
{
	static const struct fx_role roles[] = {
	    {.name = "r",
	     .allow_logins = "{{internal.logins}}",
	     .allow_labels = "*=*",
	     .mode = TU_HOST_USER_MODE_KEEP},
	};
	static const struct fx_user users[] = {
	    {.name = "we:ird\tname",
	     .roles = "r",
	     .traits =
		 "logins=weird,root,a,b,-dash,has space,x:y,12345,a@b,..,.,x$,$x,a.b,_x,Upper,\xc3\xa9t\xc3\xa9,a-,9lives"},
	};
	struct fixture f;
	struct tu_accounts a = {0};
	char buf[256];

	fixture_build(&f, users, ELEMENTSOF(users), roles, ELEMENTSOF(roles));
	struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
	o.home_template = "/srv/{login}/home-{login}";
	o.shell = "/bin/zsh";
	compute_ok(&f, &o, &a);
	/* root, all-digit, "." "..", '@', '$' not last and non-ASCII are skipped (useradd rules);
	 * -dash, "has space" and x:y never leave rbac. */
	assert_string_equal(logins_of(&a, buf, sizeof(buf)), "9lives,Upper,_x,a,a-,a.b,b,weird,x$");
	assert_int_equal(a.n_skipped, 7);
	const struct tu_account *x = must_find(&a, "weird");
	assert_string_equal(x->home, "/srv/weird/home-weird");
	assert_string_equal(x->shell, "/bin/zsh");
	assert_string_equal(x->gecos, "we_ird_name");
	assert_string_equal(x->owner, "we:ird\tname");
	tu_accounts_done(&a);
	fixture_done(&f);
}

static void test_bad_opts(void **state)
{
	static const struct {
		uint32_t min, max;
		const char *home, *shell;
		const char *want;
	} cases[] = {
	    {0, 100, NULL, NULL, "accounts.uid_range"},
	    {500, 400, NULL, NULL, "accounts.uid_range"},
	    {1000, 2000, "/home/a:b", NULL, "accounts.home"},
	    {1000, 2000, "", NULL, "accounts.home"},
	    {1000, 2000, NULL, "/bin/sh\n", "accounts.shell"},
	};
	struct fixture f;

	fixture_build(&f, NULL, 0, NULL, 0);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tu_accounts a = {.n_accounts = 42};
		struct tu_err e;
		struct tu_accounts_opts o = opts_default(TU_SOURCE_ALL_LOGINS);
		o.uid_min = cases[i].min;
		o.uid_max = cases[i].max;
		o.home_template = cases[i].home;
		o.shell = cases[i].shell;
		tu_err_clear(&e);
		assert_int_equal(tu_accounts_compute(&f.d, &f.host, &o, NOW, &a, &e), -EINVAL);
		assert_non_null(strstr(e.msg, cases[i].want));
		assert_int_equal(a.n_accounts, 42); /* untouched */
	}
	fixture_done(&f);
}

/*
 * Random clusters with everything colliding (a 90-id range, traits claiming ids in and out of
 * it, shared gids, host groups named like logins and like local groups): the result must
 * always be a valid snapshot (the builder refuses duplicate names, uids and gids) and the
 * invariants must hold.
 */
static uint32_t lcg(uint32_t *x)
{
	*x = *x * 1103515245u + 12345u;
	return (*x >> 8) & 0xffffff;
}

static void test_random_invariants(void **state)
{
	static const char *const logins[] = {"ann",    "bo",  "cy",   "di", "ed",  "fi",
					     "gus",    "hal", "ivy",  "jo", "kai", "lu",
					     "docker", "ops", "root", "9"};
	static const struct tu_local_group local[] = {
	    {"docker", 999}, {"ops", 300010}, {"wheel", 10}, {"lu", 300020}};
	uint32_t x = 7;
	size_t total_accounts = 0, total_groups = 0, total_skipped = 0;

	for (int iter = 0; iter < 300; iter++) {
		struct fx_role roles[4];
		struct fx_user users[24];
		char rl[4][128], rg[4][128], un[24][32], ut[24][160];
		size_t nu = 4 + lcg(&x) % 20;

		for (int r = 0; r < 4; r++) {
			snprintf(rl[r], sizeof(rl[r]), "{{internal.logins}},%s",
				 logins[lcg(&x) % ELEMENTSOF(logins)]);
			snprintf(rg[r], sizeof(rg[r]), "%s,%s,g%u",
				 logins[lcg(&x) % ELEMENTSOF(logins)], r % 2 ? "docker" : "wheel",
				 lcg(&x) % 5);
			roles[r] = (struct fx_role){.name = r == 0   ? "a"
							    : r == 1 ? "b"
							    : r == 2 ? "c"
								     : "d",
						    .allow_logins = rl[r],
						    .allow_labels = "*=*",
						    .mode = r == 3 ? TU_HOST_USER_MODE_INSECURE_DROP
								   : TU_HOST_USER_MODE_KEEP,
						    .allow_groups = rg[r]};
		}
		for (size_t i = 0; i < nu; i++) {
			uint32_t k = lcg(&x);
			snprintf(un[i], sizeof(un[i]), "%s", logins[k % ELEMENTSOF(logins)]);
			if (k % 3 == 0)
				snprintf(un[i], sizeof(un[i]), "u%zu@x", i);
			int n = snprintf(ut[i], sizeof(ut[i]), "logins=%s",
					 logins[lcg(&x) % ELEMENTSOF(logins)]);
			if (lcg(&x) % 2)
				n += snprintf(ut[i] + n, sizeof(ut[i]) - (size_t) n,
					      ";host_user_uid=%u", 299990 + lcg(&x) % 110);
			if (lcg(&x) % 2)
				snprintf(ut[i] + n, sizeof(ut[i]) - (size_t) n, ";host_user_gid=%u",
					 299990 + lcg(&x) % 110);
			users[i] = (struct fx_user){
			    .name = un[i],
			    .roles = lcg(&x) % 2 ? "a,b" : (lcg(&x) % 2 ? "c" : "d"),
			    .traits = ut[i]};
		}
		struct fixture f;
		struct tu_accounts a = {0};
		fixture_build(&f, users, nu, roles, ELEMENTSOF(roles));
		struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
		o.uid_min = 300000;
		o.uid_max = 300089;
		o.local_groups = local;
		o.n_local_groups = ELEMENTSOF(local);
		compute_ok(&f, &o, &a);

		struct tu_pw_rec *pw = calloc(a.n_accounts + 1, sizeof(*pw));
		struct tu_gr_rec *gr = calloc(a.n_groups + 1, sizeof(*gr));
		for (size_t i = 0; i < a.n_accounts; i++) {
			const struct tu_account *ac = &a.accounts[i];
			assert_in_range(ac->uid, o.uid_min, o.uid_max);
			assert_true(strcmp(ac->login, "root") != 0 && strcmp(ac->login, "9") != 0);
			if (i > 0)
				assert_true(strcmp(a.accounts[i - 1].login, ac->login) < 0);
			for (size_t g = 0; g < ac->n_gids; g++)
				assert_int_not_equal(ac->gids[g], 0);
			pw[i] = (struct tu_pw_rec){.name = ac->login,
						   .gecos = ac->gecos,
						   .dir = ac->home,
						   .shell = ac->shell,
						   .uid = ac->uid,
						   .gid = ac->gid,
						   .gids = ac->gids,
						   .n_gids = ac->n_gids};
		}
		for (size_t i = 0; i < a.n_groups; i++) {
			const struct tu_group *g = &a.groups[i];
			for (size_t l = 0; l < ELEMENTSOF(local); l++)
				assert_true(strcmp(g->name, local[l].name) != 0 &&
					    g->gid != local[l].gid);
			gr[i] = (struct tu_gr_rec){.name = g->name,
						   .gid = g->gid,
						   .members = (const char *const *) g->members.v,
						   .n_members = g->members.n};
		}
		void *data = NULL;
		size_t size = 0;
		struct tu_err e;
		tu_err_clear(&e);
		if (tu_snapshot_build_accounts(pw, a.n_accounts, gr, a.n_groups, 1, NOW, &data,
					       &size, &e) < 0)
			fail_msg("iteration %d: snapshot refused the result: %s", iter, e.msg);
		total_accounts += a.n_accounts;
		total_groups += a.n_groups;
		total_skipped += a.n_skipped;
		free(data);
		free(pw);
		free(gr);
		tu_accounts_done(&a);
		fixture_done(&f);
	}
	print_message("random clusters: %zu accounts, %zu groups, %zu skipped\n", total_accounts,
		      total_groups, total_skipped);
	/* The generator really exercises the mapping, including exhausted ranges. */
	assert_true(total_accounts > 1000);
	assert_true(total_groups > total_accounts);
	assert_true(total_skipped > 300);
}

/* ---- the memo (issue 13: the watcher recomputes only what an event touched) ---------------- */

static const char *const memo_pool[] = {"ann", "bo", "cy", "di", "ed", "fi", "gus", "hal",
					"ivy", "jo", "docker", "ops", "root", "9", "u1@x", "u2@x",
					"u3@x", "u4@x", "u5@x", "u6@x"};
static const char *const memo_roles[] = {"a", "b", "c", "d", "e"};

/* A random user PUT (name from the pool) built like a listing would. */
static void memo_rand_user(uint32_t *x, const char *name, struct tu_user *u)
{
	char traits[200], roles[32];
	int n = snprintf(traits, sizeof(traits), "logins=%s",
			 memo_pool[lcg(x) % ELEMENTSOF(memo_pool)]);
	if (lcg(x) % 3 == 0)
		n += snprintf(traits + n, sizeof(traits) - (size_t) n, ",%s",
			      memo_pool[lcg(x) % ELEMENTSOF(memo_pool)]);
	if (lcg(x) % 2)
		n += snprintf(traits + n, sizeof(traits) - (size_t) n, ";host_user_uid=%u",
			      299990 + lcg(x) % 110);
	if (lcg(x) % 2)
		snprintf(traits + n, sizeof(traits) - (size_t) n, ";host_user_gid=%u",
			 299990 + lcg(x) % 110);
	snprintf(roles, sizeof(roles), "%s,%s", memo_roles[lcg(x) % ELEMENTSOF(memo_roles)],
		 memo_roles[lcg(x) % ELEMENTSOF(memo_roles)]);
	/* Some users expire during the run (now moves forward below). */
	int64_t exp = lcg(x) % 5 == 0 ? NOW + (int64_t) (lcg(x) % 200) * 1000000 : 0;
	struct fx_user fu = {.name = name, .roles = roles, .traits = traits, .expires = exp};
	fx_user_build(&fu, u);
}

static void memo_rand_role(uint32_t *x, const char *name, struct tu_role *r)
{
	char logins[128], groups[128];
	snprintf(logins, sizeof(logins), "{{internal.logins}},%s",
		 memo_pool[lcg(x) % ELEMENTSOF(memo_pool)]);
	snprintf(groups, sizeof(groups), "%s,%s,g%u", memo_pool[lcg(x) % ELEMENTSOF(memo_pool)],
		 lcg(x) % 2 ? "docker" : "wheel", lcg(x) % 5);
	static const int32_t modes[] = {TU_HOST_USER_MODE_KEEP, TU_HOST_USER_MODE_INSECURE_DROP,
					TU_HOST_USER_MODE_OFF, TU_HOST_USER_MODE_KEEP};
	struct fx_role fr = {.name = name,
			     .allow_logins = logins,
			     .allow_labels = lcg(x) % 4 ? "*=*" : "env=staging",
			     .mode = modes[lcg(x) % ELEMENTSOF(modes)],
			     .allow_groups = groups};
	fx_role_build(&fr, r);
}

/* Every field of the result, n_skipped included. */
static void assert_identical(const struct tu_accounts *a, const struct tu_accounts *b)
{
	assert_same_accounts(a, b);
	assert_int_equal(a->n_skipped, b->n_skipped);
	for (size_t i = 0; i < a->n_accounts; i++) {
		assert_string_equal(a->accounts[i].gecos, b->accounts[i].gecos);
		assert_string_equal(a->accounts[i].home, b->accounts[i].home);
		assert_string_equal(a->accounts[i].shell, b->accounts[i].shell);
		assert_int_equal(a->accounts[i].n_owners, b->accounts[i].n_owners);
	}
	for (size_t i = 0; i < a->n_groups; i++)
		assert_int_equal(a->groups[i].user_private, b->groups[i].user_private);
}

/*
 * Random PUT/DELETE sequences of users and roles applied with tu_watch_apply (as the watcher
 * does), in batches, with the clock moving past expiries and the local groups changing: after
 * every batch the memoized result equals a fresh tu_accounts_compute.  With forget_role left
 * out, the same run must diverge (the comparison can fail).
 */
static int memo_run(uint32_t seed, bool forget_roles, size_t *ret_computed, size_t *ret_full)
{
	static const struct tu_local_group local_a[] = {
	    {"docker", 999}, {"ops", 300010}, {"wheel", 10}, {"lu", 300020}};
	static const struct tu_local_group local_b[] = {{"docker", 999}, {"g1", 300030}};
	uint32_t x = seed;
	struct fixture f;
	struct tu_accounts_memo *m = NULL;
	int diverged = 0;

	fixture_build(&f, NULL, 0, NULL, 0);
	assert_int_equal(tu_accounts_memo_new(&m), 0);
	for (size_t i = 0; i < 4; i++) {
		struct tu_event ev = {.op = TU_EVENT_PUT, .kind = TU_EVENT_KIND_ROLE,
				      .name = (char *) memo_roles[i]};
		memo_rand_role(&x, memo_roles[i], &ev.role);
		assert_int_equal(tu_watch_apply(&f.d, &ev, NULL, NULL), 0);
		tu_role_done(&ev.role);
	}
	for (size_t i = 0; i < 14; i++) {
		struct tu_event ev = {.op = TU_EVENT_PUT, .kind = TU_EVENT_KIND_USER,
				      .name = (char *) memo_pool[i]};
		memo_rand_user(&x, memo_pool[i], &ev.user);
		assert_int_equal(tu_watch_apply(&f.d, &ev, NULL, NULL), 0);
		tu_user_done(&ev.user);
	}
	int64_t now = NOW;
	for (int step = 0; step < 400; step++) {
		size_t batch = 1 + (lcg(&x) % 4 == 0 ? lcg(&x) % 4 : 0);
		for (size_t k = 0; k < batch; k++) {
			bool role = lcg(&x) % 3 == 0, del = lcg(&x) % 5 == 0;
			const char *name = role ? memo_roles[lcg(&x) % ELEMENTSOF(memo_roles)]
						: memo_pool[lcg(&x) % ELEMENTSOF(memo_pool)];
			struct tu_event ev = {.op = del ? TU_EVENT_DELETE : TU_EVENT_PUT,
					      .kind = role ? TU_EVENT_KIND_ROLE : TU_EVENT_KIND_USER,
					      .name = (char *) name};
			if (!del && role)
				memo_rand_role(&x, name, &ev.role);
			else if (!del)
				memo_rand_user(&x, name, &ev.user);
			assert_int_equal(tu_watch_apply(&f.d, &ev, NULL, NULL), 0);
			tu_user_done(&ev.user);
			tu_role_done(&ev.role);
			if (!role)
				tu_accounts_memo_forget_user(m, name);
			else if (forget_roles)
				tu_accounts_memo_forget_role(m, &f.d, name);
		}
		now += (int64_t) (lcg(&x) % 3) * 1000000;
		struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
		o.uid_min = 300000;
		o.uid_max = 300089;
		o.local_groups = step % 50 < 25 ? local_a : local_b;
		o.n_local_groups = step % 50 < 25 ? ELEMENTSOF(local_a) : ELEMENTSOF(local_b);
		if (step >= 300)
			o.source = TU_SOURCE_ALL_LOGINS; /* a source change clears the memo */

		struct tu_accounts a = {0}, b = {0};
		struct tu_err e;
		tu_err_clear(&e);
		if (tu_accounts_compute_memo(m, &f.d, &f.host, &o, now, &a, &e) < 0)
			fail_msg("step %d: tu_accounts_compute_memo: %s", step, e.msg);
		*ret_computed += tu_accounts_memo_last_computed(m);
		*ret_full += f.d.n_users;
		if (tu_accounts_compute(&f.d, &f.host, &o, now, &b, &e) < 0)
			fail_msg("step %d: tu_accounts_compute: %s", step, e.msg);
		if (forget_roles)
			assert_identical(&a, &b);
		else if (!diverged) {
			char la[2048], lb[2048];
			logins_of(&a, la, sizeof(la));
			logins_of(&b, lb, sizeof(lb));
			diverged = strcmp(la, lb) != 0;
		}
		tu_accounts_done(&a);
		tu_accounts_done(&b);
	}
	tu_accounts_memo_free(m);
	fixture_done(&f);
	return diverged;
}

static void test_memo_random_events(void **state)
{
	size_t computed = 0, full = 0;

	for (uint32_t seed = 1; seed <= 6; seed++)
		assert_int_equal(memo_run(seed, true, &computed, &full), 0);
	print_message("memo: %zu users computed where a fresh mapping computes %zu\n", computed,
		      full);
	assert_true(computed * 3 < full);
	/* Without the role invalidation the memo serves stale logins: the comparison sees it. */
	size_t c2 = 0, f2 = 0;
	int diverged = 0;
	for (uint32_t seed = 1; seed <= 6; seed++)
		diverged += memo_run(seed, false, &c2, &f2);
	assert_true(diverged > 0);
}

/* Many users in one call (the memo grows while the pass holds results of earlier users), then
 * one user changed: the same as afresh, one user mapped again. */
static void test_memo_many(void **state)
{
	struct fixture f;
	struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
	struct tu_accounts_memo *m = NULL;
	struct tu_accounts a = {0}, b = {0};

	build_many(&f, 1500, NULL, "web-1");
	assert_int_equal(tu_accounts_memo_new(&m), 0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(tu_accounts_compute_memo(m, &f.d, &f.host, &o, NOW, &a, NULL), 0);
		assert_int_equal(tu_accounts_memo_last_computed(m), round == 0 ? 1500 : 1);
		assert_int_equal(tu_accounts_compute(&f.d, &f.host, &o, NOW, &b, NULL), 0);
		assert_identical(&a, &b);
		assert_non_null(tu_accounts_find_login(&a, round == 0 ? "l0700" : "new0700"));
		tu_accounts_done(&a);
		tu_accounts_done(&b);
		/* user0700 now has the login new0700 */
		struct tu_event ev = {.op = TU_EVENT_PUT, .kind = TU_EVENT_KIND_USER,
				      .name = "user0700@example.com"};
		struct fx_user fu = {.name = "user0700@example.com", .roles = "r",
				     .traits = "logins=new0700"};
		fx_user_build(&fu, &ev.user);
		assert_int_equal(tu_watch_apply(&f.d, &ev, NULL, NULL), 0);
		tu_user_done(&ev.user);
		tu_accounts_memo_forget_user(m, "user0700@example.com");
	}
	tu_accounts_memo_free(m);
	fixture_done(&f);
}

/* A role change reaches its holders' logins; a user rename, delete and duplicate names. */
static void test_memo_roles_and_users(void **state)
{
	static const struct fx_role roles[] = {
	    {.name = "dev", .allow_logins = "{{internal.logins}},shared", .allow_labels = "*=*",
	     .mode = TU_HOST_USER_MODE_KEEP},
	    {.name = "ops", .allow_logins = "opsy", .allow_labels = "*=*",
	     .mode = TU_HOST_USER_MODE_KEEP},
	};
	static const struct fx_user users[] = {
	    {.name = "alice", .roles = "dev", .traits = "logins=al"},
	    {.name = "bob", .roles = "ops", .traits = "logins=bo"},
	    {.name = "carol", .roles = "dev,ops", .traits = "logins=ca"},
	};
	struct fixture f;
	struct tu_accounts_opts o = opts_default(TU_SOURCE_HOST_USER_CREATION);
	struct tu_accounts_memo *m = NULL;
	struct tu_accounts a = {0};
	char buf[512];

	fixture_build(&f, users, ELEMENTSOF(users), roles, ELEMENTSOF(roles));
	assert_int_equal(tu_accounts_memo_new(&m), 0);
	assert_int_equal(tu_accounts_compute_memo(m, &f.d, &f.host, &o, NOW, &a, NULL), 0);
	assert_string_equal(logins_of(&a, buf, sizeof(buf)), "al,ca,opsy,shared");
	assert_int_equal(tu_accounts_memo_last_computed(m), 3);
	tu_accounts_done(&a);

	/* Nothing changed: nobody is computed again. */
	assert_int_equal(tu_accounts_compute_memo(m, &f.d, &f.host, &o, NOW, &a, NULL), 0);
	assert_int_equal(tu_accounts_memo_last_computed(m), 0);
	tu_accounts_done(&a);

	/* Role "ops" now grants "night": its two holders only are computed again. */
	struct tu_event ev = {.op = TU_EVENT_PUT, .kind = TU_EVENT_KIND_ROLE, .name = "ops"};
	struct fx_role ops2 = {.name = "ops", .allow_logins = "night", .allow_labels = "*=*",
			       .mode = TU_HOST_USER_MODE_KEEP};
	fx_role_build(&ops2, &ev.role);
	assert_int_equal(tu_watch_apply(&f.d, &ev, NULL, NULL), 0);
	tu_role_done(&ev.role);
	tu_accounts_memo_forget_role(m, &f.d, "ops");
	assert_int_equal(tu_accounts_compute_memo(m, &f.d, &f.host, &o, NOW, &a, NULL), 0);
	assert_string_equal(logins_of(&a, buf, sizeof(buf)), "al,ca,night,shared");
	assert_int_equal(tu_accounts_memo_last_computed(m), 2);
	assert_string_equal(must_find(&a, "night")->owner, "bob");
	assert_int_equal(must_find(&a, "night")->n_owners, 2);
	tu_accounts_done(&a);

	/* A rename (delete bob, put robert): the new name is computed, the old one is gone. */
	struct tu_event del = {.op = TU_EVENT_DELETE, .kind = TU_EVENT_KIND_USER, .name = "bob"};
	assert_int_equal(tu_watch_apply(&f.d, &del, NULL, NULL), 0);
	tu_accounts_memo_forget_user(m, "bob");
	struct tu_event put = {.op = TU_EVENT_PUT, .kind = TU_EVENT_KIND_USER, .name = "robert"};
	struct fx_user rob = {.name = "robert", .roles = "ops", .traits = "logins=bo"};
	fx_user_build(&rob, &put.user);
	assert_int_equal(tu_watch_apply(&f.d, &put, NULL, NULL), 0);
	tu_user_done(&put.user);
	tu_accounts_memo_forget_user(m, "robert");
	assert_int_equal(tu_accounts_compute_memo(m, &f.d, &f.host, &o, NOW, &a, NULL), 0);
	assert_int_equal(tu_accounts_memo_last_computed(m), 1);
	assert_string_equal(must_find(&a, "night")->owner, "carol");
	assert_int_equal(must_find(&a, "night")->n_owners, 2); /* carol and robert, no bob */
	tu_accounts_done(&a);

	/* The guard: a record replaced without forget_user is still computed again. */
	struct tu_event put2 = {.op = TU_EVENT_PUT, .kind = TU_EVENT_KIND_USER, .name = "alice"};
	struct fx_user al2 = {.name = "alice", .roles = "ops", .traits = "logins=al"};
	fx_user_build(&al2, &put2.user);
	assert_int_equal(tu_watch_apply(&f.d, &put2, NULL, NULL), 0);
	tu_user_done(&put2.user);
	assert_int_equal(tu_accounts_compute_memo(m, &f.d, &f.host, &o, NOW, &a, NULL), 0);
	assert_string_equal(logins_of(&a, buf, sizeof(buf)), "ca,night,shared");
	tu_accounts_done(&a);

	/* Two users of one name (a hand-made dataset): computed afresh, same as without memo. */
	struct tu_user *nu = realloc(f.d.users, (f.d.n_users + 1) * sizeof(*nu));
	assert_non_null(nu);
	f.d.users = nu;
	struct fx_user dup = {.name = "carol", .roles = "dev", .traits = "logins=zed"};
	fx_user_build(&dup, &f.d.users[f.d.n_users++]);
	struct tu_accounts b = {0};
	assert_int_equal(tu_accounts_compute_memo(m, &f.d, &f.host, &o, NOW, &a, NULL), 0);
	assert_int_equal(tu_accounts_compute(&f.d, &f.host, &o, NOW, &b, NULL), 0);
	assert_identical(&a, &b);
	tu_accounts_done(&a);
	tu_accounts_done(&b);

	tu_accounts_memo_free(m);
	fixture_done(&f);
}

static void test_empty(void **state)
{
	struct fixture f;
	struct tu_accounts a = {0};

	fixture_build(&f, NULL, 0, NULL, 0);
	struct tu_accounts_opts o = opts_default(TU_SOURCE_ALL_LOGINS);
	o.home_template = NULL; /* defaults */
	o.shell = NULL;
	compute_ok(&f, &o, &a);
	assert_int_equal(a.n_accounts, 0);
	assert_int_equal(a.n_groups, 0);
	assert_null(tu_accounts_find_login(&a, "x"));
	tu_accounts_done(&a);
	tu_accounts_done(&a); /* twice is fine */
	fixture_done(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_source_modes),         cmocka_unit_test(test_source_off_wins),
	    cmocka_unit_test(test_owner_rules),          cmocka_unit_test(test_owners_match_decide),
	    cmocka_unit_test(test_ignored_users),        cmocka_unit_test(test_uid_from_trait),
	    cmocka_unit_test(test_uid_trait_collisions), cmocka_unit_test(test_order_independent),
	    cmocka_unit_test(test_trait_id_range),
	    cmocka_unit_test(test_range_exhausted),      cmocka_unit_test(test_gid_and_groups),
	    cmocka_unit_test(test_fields_and_skips),     cmocka_unit_test(test_bad_opts),
	    cmocka_unit_test(test_random_invariants),    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_memo_random_events), cmocka_unit_test(test_memo_roles_and_users),
	    cmocka_unit_test(test_memo_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
