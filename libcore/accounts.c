/* SPDX-License-Identifier: Apache-2.0 */
/*
 * accounts.c - Teleport users and roles -> POSIX accounts and groups
 * (SPEC §4; rules in accounts.h).  Layer: libcore, pure (no I/O, no clock).
 *
 * Shape of the computation, chosen so 100k users x 1k roles stays in
 * O(users x roles-per-user + accounts log accounts):
 *   1. per eligible user: the logins it gets here and its host-user result
 *      (rbac, through one tu_rbac_index);
 *   2. one sorted array of (login, user) grants and one of (logins-trait
 *      value, user): each login's owner is found by binary search;
 *   3. ids are handed out in bytewise login (then group-name) order, claimed
 *      trait ids first, so the answer depends on the set of users, never on
 *      the order Auth listed them in.
 */
#include "accounts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "conf.h"
#include "err.h"
#include "idhash.h"
#include "log.h"
#include "strbuf.h"

#define DEFAULT_HOME   "/home/{login}"
#define DEFAULT_SHELL  "/bin/bash"
/* After this many skip lines at LOG_INFO, the rest go to LOG_DEBUG (a summary follows). */
#define MAX_LOUD_SKIPS 20

/* ---- small containers ------------------------------------------------------------------- */

/* A set of uint32 ids (open addressing; 0 marks an empty slot, so id 0 is kept aside). */
struct idset {
	uint32_t *slot;
	size_t cap; /* power of two */
	size_t n;
	bool has_zero;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static bool idset_has(const struct idset *s, uint32_t id)
{
	if (id == 0)
		return s->has_zero;
	if (s->cap == 0)
		return false;
	for (size_t k = mix64(id) & (s->cap - 1);; k = (k + 1) & (s->cap - 1)) {
		if (s->slot[k] == 0)
			return false;
		if (s->slot[k] == id)
			return true;
	}
}

static int idset_grow(struct idset *s, size_t want)
{
	if (want * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		while (want * 2 > ncap)
			ncap *= 2;
		uint32_t *ns = calloc(ncap, sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			if (s->slot[i] == 0)
				continue;
			size_t k = mix64(s->slot[i]) & (ncap - 1);
			while (ns[k] != 0)
				k = (k + 1) & (ncap - 1);
			ns[k] = s->slot[i];
		}
		free(s->slot);
		s->slot = ns;
		s->cap = ncap;
	}
	return 0;
}

/* Room for n ids in all (one allocation instead of doubling and rehashing as it fills). */
static int idset_reserve(struct idset *s, size_t n)
{
	return idset_grow(s, n);
}

static int idset_add(struct idset *s, uint32_t id)
{
	if (id == 0) {
		s->has_zero = true;
		return 0;
	}
	int r = idset_grow(s, s->n + 1);
	if (r < 0)
		return r;
	size_t k = mix64(id) & (s->cap - 1);
	while (s->slot[k] != 0) {
		if (s->slot[k] == id)
			return 0;
		k = (k + 1) & (s->cap - 1);
	}
	s->slot[k] = id;
	s->n++;
	return 0;
}

static void idset_done(struct idset *s)
{
	free(s->slot);
	*s = (struct idset){0};
}

/* A map from borrowed name to a size_t value (open addressing; value+1 stored, 0 = empty). */
struct namemap {
	const char **key;
	size_t *val1;
	size_t cap;
	size_t n;
};

static uint64_t hash_str(const char *s)
{
	uint64_t x = 1469598103934665603ULL;
	for (; *s; s++)
		x = (x ^ (unsigned char) *s) * 1099511628211ULL;
	return mix64(x);
}

static bool namemap_get(const struct namemap *m, const char *name, size_t *ret)
{
	if (m->cap == 0)
		return false;
	for (size_t k = hash_str(name) & (m->cap - 1);; k = (k + 1) & (m->cap - 1)) {
		if (m->val1[k] == 0)
			return false;
		if (strcmp(m->key[k], name) == 0) {
			*ret = m->val1[k] - 1;
			return true;
		}
	}
}

static int namemap_grow(struct namemap *m, size_t want)
{
	if (want * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		while (want * 2 > ncap)
			ncap *= 2;
		const char **nk = calloc(ncap, sizeof(*nk));
		size_t *nv = calloc(ncap, sizeof(*nv));
		if (!nk || !nv) {
			free(nk);
			free(nv);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (m->val1[i] == 0)
				continue;
			size_t k = hash_str(m->key[i]) & (ncap - 1);
			while (nv[k] != 0)
				k = (k + 1) & (ncap - 1);
			nk[k] = m->key[i];
			nv[k] = m->val1[i];
		}
		free(m->key);
		free(m->val1);
		m->key = nk;
		m->val1 = nv;
		m->cap = ncap;
	}
	return 0;
}

/* Room for n names in all (one allocation instead of doubling and rehashing as it fills). */
static int namemap_reserve(struct namemap *m, size_t n)
{
	return namemap_grow(m, n);
}

/* Sets name -> val (replacing); name must outlive the map. */
static int namemap_put(struct namemap *m, const char *name, size_t val)
{
	int r = namemap_grow(m, m->n + 1);
	if (r < 0)
		return r;
	size_t k = hash_str(name) & (m->cap - 1);
	while (m->val1[k] != 0) {
		if (strcmp(m->key[k], name) == 0) {
			m->val1[k] = val + 1;
			return 0;
		}
		k = (k + 1) & (m->cap - 1);
	}
	m->key[k] = name;
	m->val1[k] = val + 1;
	m->n++;
	return 0;
}

static void namemap_done(struct namemap *m)
{
	free(m->key);
	free(m->val1);
	*m = (struct namemap){0};
}

/* ---- the computation state ---------------------------------------------------------------- */

/* What one user gives here: depends on the user record, its roles, the host and opts->source
 * only (never on now_usec or other users), so tu_accounts_memo keeps it between calls. */
struct uinfo {
	bool eligible; /* not ignored (per call: expiry depends on now_usec) */
	bool hu_ok;    /* hu was computed */
	struct tu_host_user hu;
	struct tu_strv logins; /* logins this user gets here (counting the source rule) */
};

/* One user's memoized result, keyed by the user's name. */
struct memo_entry {
	char *name;        /* owned: the key of tu_accounts_memo.by_name */
	bool computed;     /* ui holds the result for the record seen below */
	struct uinfo ui;   /* ui.eligible unused here */
	/* The record it was computed from (a guard besides invalidation: a replaced record has
	 * new strings). */
	const char *rec_name;
	const void *rec_roles;
	const void *rec_traits;
	uint64_t pass;   /* the last call that saw this user in the dataset */
	size_t index;    /* its index in d->users in that call */
	bool eligible;   /* its eligibility in that call */
};

struct tu_accounts_memo {
	struct memo_entry **e; /* each allocated alone: s->ui points into them while e grows */
	size_t n, cap;
	struct namemap by_name; /* user name -> index into e */
	uint64_t pass;
	/* The entry of each d->users index in the last call (a user at the same index with the
	 * same name needs no lookup), and the one being filled. */
	struct memo_entry **by_index, **next_index;
	size_t n_by_index;
	size_t n_computed; /* users computed by the last call */
	bool valid_opts;
	int source; /* opts->source the entries were computed for */
};

/* A (name, user) pair: a login grant, or a `logins` trait value. Both strings borrowed. */
struct pair {
	const char *name;
	const char *user;
	size_t ui;
	uint64_t prefix; /* name's first 8 bytes, big-endian, zero-padded (name_prefix) */
};

/*
 * The first 8 bytes of s as a big-endian number, zero-padded past the end: comparing two of
 * them orders like strcmp on those bytes (unsigned, the terminator lowest), so a sort compares
 * integers and calls strcmp only on equal prefixes.
 */
static uint64_t name_prefix(const char *s)
{
	uint64_t v = 0;
	size_t i = 0;

	for (; i < 8 && s[i]; i++)
		v = (v << 8) | (unsigned char) s[i];
	return i == 0 ? 0 : v << (8 * (8 - i)); /* (a shift by 64 would be undefined) */
}

/* Per-account work data beside the output array. */
struct acc_work {
	size_t owner;          /* index into d->users */
	bool has_group_record; /* a group named like the login is ours */
};

struct state {
	const struct tu_dataset *d;
	const struct tu_host *h;
	const struct tu_accounts_opts *o;
	int64_t now_usec;
	struct tu_rbac_index *ix;
	struct tu_accounts_memo *memo; /* NULL: everything computed afresh */
	struct tu_dataset roles_only;   /* memo: the index only looks roles up */
	struct uinfo **ui;              /* per d->users index: own_ui's or a memo entry's */
	struct uinfo *own_ui;
	struct pair *grants;
	size_t n_grants;
	struct pair *traits;
	size_t n_traits;
	struct namemap local_by_name; /* local group name -> index into o->local_groups */
	struct idset local_gids;
	struct idset taken;           /* every uid and gid handed out, plus local gids */
	struct idset our_gids;        /* gids of the groups we serve */
	struct namemap group_by_name; /* our group name -> index into out.groups */
	struct acc_work *work;
	struct tu_accounts out;
	size_t cap_groups;
	size_t loud; /* skip lines logged so far at NOTICE */
};

static void skip_log(struct state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void skip_log(struct state *s, const char *fmt, ...)
{
	va_list ap;
	int prio = s->loud < MAX_LOUD_SKIPS ? LOG_INFO : LOG_DEBUG;

	s->loud++;
	s->out.n_skipped++;
	va_start(ap, fmt);
	tu_logv(prio, fmt, ap);
	va_end(ap);
}

static const char *san(const char *s, char *buf, size_t size)
{
	return tu_sanitize(s ? s : "", buf, size);
}

/* A plain decimal u32: digits only, no sign, no leading zero (except "0"), no overflow. */
static bool parse_id(const char *s, uint32_t *ret)
{
	uint64_t v = 0;
	size_t n = 0;

	if (!s || !*s)
		return false;
	if (s[0] == '0' && s[1] != '\0')
		return false;
	for (; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 10)
			return false;
		v = v * 10 + (uint64_t) (s[n] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*ret = (uint32_t) v;
	return true;
}

static const char *first_trait(const struct tu_user *u, const char *key)
{
	const struct tu_strv *v = tu_labels_get(&u->traits, key);
	return v && v->n > 0 ? v->v[0] : NULL;
}

bool tu_accounts_user_ignored(const struct tu_user *u, int64_t now_usec, const char **ret_why)
{
	const char *why = NULL;

	if (u->unusable)
		why = "its record cannot be used";
	else if (u->is_bot)
		why = "bot user";
	else if (u->has_expires && u->expires_usec <= now_usec)
		why = "user expired";
	if (ret_why)
		*ret_why = why;
	return why != NULL;
}

void tu_accounts_opts_from_conf(const struct tu_conf *conf, struct tu_accounts_opts *ret)
{
	*ret = (struct tu_accounts_opts){
	    .source = conf->source,
	    .uid_min = conf->uid_min,
	    .uid_max = conf->uid_max,
	    .trait_id_min = conf->trait_id_min,
	    .trait_id_max = conf->trait_id_max,
	    .home_template = conf->home_template,
	    .shell = conf->shell,
	};
}

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	int r = strcmp(x->name, y->name);
	if (r != 0)
		return r;
	return strcmp(x->user, y->user);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	return x < y ? -1 : x > y;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* First index in sorted p[0..n) whose name is >= name. */
static size_t lower_bound(const struct pair *p, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(p[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int push_pair(struct pair **arr, size_t *n, size_t *cap, const char *name, const char *user,
		     size_t ui)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		struct pair *np = reallocarray(*arr, ncap, sizeof(*np));
		if (!np)
			return -ENOMEM;
		*arr = np;
		*cap = ncap;
	}
	(*arr)[(*n)++] =
	    (struct pair){.name = name, .user = user, .ui = ui, .prefix = name_prefix(name)};
	return 0;
}

/* The per-user step for u (eligible): its host-user result and, by the source rule, its logins.
 * Logs like tu_accounts_compute always did; -ENOMEM only. */
static int compute_uinfo(struct state *s, const struct tu_user *u, struct uinfo *ui,
			 struct tu_err *reterr)
{
	char b1[128], b2[256];
	struct tu_err e;
	int r;

	if (!s->ix) {
		/* The per-user rules look roles up only; with a memo the users are not indexed. */
		r = tu_rbac_index_new(s->memo ? &s->roles_only : s->d, &s->ix, reterr);
		if (r < 0)
			return r;
	}
	tu_err_clear(&e);
	r = tu_rbac_host_user_ix(s->ix, u, s->h, &ui->hu, &e);
	if (r == -ENOMEM)
		return tu_err_set(reterr, r, "out of memory");
	if (r < 0) {
		tu_log(LOG_INFO, "accounts: host user settings of '%s': %s, ignoring",
		       san(u->name, b1, sizeof(b1)), tu_err_format(&e, b2, sizeof(b2)));
	} else
		ui->hu_ok = true;

	if (s->o->source == TU_SOURCE_HOST_USER_CREATION && !(ui->hu_ok && ui->hu.enabled))
		return 0;

	tu_err_clear(&e);
	r = tu_rbac_user_logins_ix(s->ix, u, s->h, &ui->logins, &e);
	if (r == -ENOMEM)
		return tu_err_set(reterr, r, "out of memory");
	if (r < 0) {
		tu_log(LOG_INFO, "accounts: logins of '%s': %s, ignoring",
		       san(u->name, b1, sizeof(b1)), tu_err_format(&e, b2, sizeof(b2)));
		tu_strv_done(&ui->logins); /* no grants */
	}
	return 0;
}

static void uinfo_done(struct uinfo *ui)
{
	tu_host_user_done(&ui->hu);
	tu_strv_done(&ui->logins);
	*ui = (struct uinfo){0};
}

/* Forgets entry k's result (the entry and its key stay). */
static void entry_forget(struct memo_entry *x)
{
	if (x->computed)
		uinfo_done(&x->ui);
	x->computed = false;
}

static const struct uinfo NOT_ELIGIBLE = {0};

/*
 * The memo's result for eligible user i, computed when it has none (or the record is not the
 * one it was computed from).  -EEXIST: a second user of the same name in d (the caller then
 * computes afresh: the memo is keyed by name).
 */
static int memo_uinfo(struct state *s, size_t i, struct tu_err *reterr)
{
	struct tu_accounts_memo *m = s->memo;
	const struct tu_user *u = &s->d->users[i];
	struct memo_entry *x;
	size_t k;
	int r;

	if (i < m->n_by_index && m->by_index[i] && strcmp(m->by_index[i]->name, u->name) == 0) {
		x = m->by_index[i];
		goto found;
	}
	if (!namemap_get(&m->by_name, u->name, &k)) {
		if (m->n == m->cap) {
			size_t ncap = m->cap ? m->cap * 2 : 256;
			struct memo_entry **ne = reallocarray(m->e, ncap, sizeof(*ne));
			if (!ne)
				return tu_err_set(reterr, -ENOMEM, "out of memory");
			m->e = ne;
			m->cap = ncap;
		}
		x = calloc(1, sizeof(*x));
		if (x)
			x->name = strdup(u->name);
		if (!x || !x->name) {
			free(x);
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		}
		/* The map borrows x->name. */
		r = namemap_put(&m->by_name, x->name, m->n);
		if (r < 0) {
			free(x->name);
			free(x);
			return tu_err_set(reterr, r, "out of memory");
		}
		m->e[m->n] = x;
		k = m->n++;
	}
	x = m->e[k];
found:
	if (x->pass == m->pass)
		return -EEXIST;
	x->pass = m->pass;
	x->index = i;
	x->eligible = true;
	if (x->computed && (x->rec_name != u->name || x->rec_roles != (const void *) u->roles.v ||
			    x->rec_traits != (const void *) u->traits.e))
		entry_forget(x);
	if (!x->computed) {
		r = compute_uinfo(s, u, &x->ui, reterr);
		if (r < 0) {
			uinfo_done(&x->ui);
			return r;
		}
		x->computed = true;
		x->rec_name = u->name;
		x->rec_roles = u->roles.v;
		x->rec_traits = u->traits.e;
		m->n_computed++;
	}
	s->ui[i] = &x->ui;
	if (m->next_index)
		m->next_index[i] = x;
	return 0;
}

/* Step 1: per user, the logins it gets and its host-user result. */
static int collect_users(struct state *s, struct tu_err *reterr)
{
	const struct tu_dataset *d = s->d;
	size_t cap_g = 0, cap_t = 0;
	char b1[128];
	int r;

	s->ui = calloc(d->n_users ? d->n_users : 1, sizeof(*s->ui));
	if (!s->ui)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	if (!s->memo) {
		s->own_ui = calloc(d->n_users ? d->n_users : 1, sizeof(*s->own_ui));
		if (!s->own_ui)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
	}

	for (size_t i = 0; i < d->n_users; i++) {
		const struct tu_user *u = &d->users[i];
		struct uinfo *ui;
		const char *why;

		s->ui[i] = (struct uinfo *) &NOT_ELIGIBLE;
		if (!u->name || !*u->name)
			continue;
		if (tu_accounts_user_ignored(u, s->now_usec, &why)) {
			tu_log(LOG_DEBUG, "accounts: ignoring Teleport user '%s': %s",
			       san(u->name, b1, sizeof(b1)), why);
			continue;
		}
		if (s->memo) {
			r = memo_uinfo(s, i, reterr);
			if (r < 0)
				return r;
		} else {
			s->ui[i] = &s->own_ui[i];
			s->ui[i]->eligible = true;
			r = compute_uinfo(s, u, s->ui[i], reterr);
			if (r < 0)
				return r;
		}
		ui = s->ui[i];

		/* The `logins` trait, for the owner rule (step 2), counts even without a grant
		 * here. */
		const struct tu_strv *tl = tu_labels_get(&u->traits, "logins");
		for (size_t k = 0; tl && k < tl->n; k++) {
			if (!tl->v[k] || !*tl->v[k])
				continue;
			r = push_pair(&s->traits, &s->n_traits, &cap_t, tl->v[k], u->name, i);
			if (r < 0)
				return tu_err_set(reterr, r, "out of memory");
		}
		for (size_t k = 0; k < ui->logins.n; k++) {
			r = push_pair(&s->grants, &s->n_grants, &cap_g, ui->logins.v[k], u->name,
				      i);
			if (r < 0)
				return tu_err_set(reterr, r, "out of memory");
		}
	}
	if (s->n_grants > 1)
		qsort(s->grants, s->n_grants, sizeof(*s->grants), cmp_pair);
	if (s->n_traits > 1)
		qsort(s->traits, s->n_traits, sizeof(*s->traits), cmp_pair);
	return 0;
}

/* The eligible user named name: its index into d->users. */
static bool eligible_user_named(const struct state *s, const char *name, size_t *ret)
{
	size_t k;

	if (s->memo) {
		if (!namemap_get(&s->memo->by_name, name, &k))
			return false;
		const struct memo_entry *x = s->memo->e[k];
		if (x->pass != s->memo->pass || !x->eligible)
			return false;
		*ret = x->index;
		return true;
	}
	const struct tu_user *named = tu_rbac_index_user(s->ix, name);
	if (!named)
		return false;
	k = (size_t) (named - s->d->users);
	if (k >= s->d->n_users || !s->ui[k]->eligible)
		return false;
	*ret = k;
	return true;
}

/* The owner of login (SPEC §4): returns the index into d->users; *ret_n = candidates at that step.
 */
static size_t find_owner(struct state *s, const char *login, size_t first_grant, size_t *ret_n)
{
	size_t i;
	if (eligible_user_named(s, login, &i)) {
		*ret_n = 1;
		return i;
	}

	size_t t = lower_bound(s->traits, s->n_traits, login);
	if (t < s->n_traits && strcmp(s->traits[t].name, login) == 0) {
		size_t n = 0;
		const char *prev = NULL;
		/* Count distinct users (a trait may list a value twice). */
		for (size_t k = t; k < s->n_traits && strcmp(s->traits[k].name, login) == 0; k++) {
			if (!prev || strcmp(prev, s->traits[k].user) != 0)
				n++;
			prev = s->traits[k].user;
		}
		*ret_n = n;
		return s->traits[t].ui;
	}

	size_t n = 0;
	const char *prev = NULL;
	for (size_t k = first_grant; k < s->n_grants && strcmp(s->grants[k].name, login) == 0;
	     k++) {
		if (!prev || strcmp(prev, s->grants[k].user) != 0)
			n++;
		prev = s->grants[k].user;
	}
	*ret_n = n;
	return s->grants[first_grant].ui;
}

static char *expand_home(const char *tmpl, const char *login)
{
	struct tu_strbuf b;
	static const char key[] = "{login}";

	tu_strbuf_init(&b, 4096);
	for (const char *p = tmpl; *p;) {
		const char *q = strstr(p, key);
		if (!q) {
			if (tu_strbuf_adds(&b, p) < 0)
				goto fail;
			break;
		}
		if (tu_strbuf_add(&b, p, (size_t) (q - p)) < 0 || tu_strbuf_adds(&b, login) < 0)
			goto fail;
		p = q + sizeof(key) - 1;
	}
	return tu_strbuf_steal(&b, NULL);
fail:
	tu_strbuf_done(&b);
	return NULL;
}

static char *sanitize_gecos(const char *s)
{
	char *r = strdup(s ? s : "");
	if (!r)
		return NULL;
	for (unsigned char *p = (unsigned char *) r; *p; p++)
		if (*p == ':' || *p < 0x20 || *p == 0x7f)
			*p = '_';
	return r;
}

/* Adds a new group of ours (name copied). Returns its index via *ret_idx. */
static int add_group(struct state *s, const char *name, uint32_t gid, bool upg, size_t *ret_idx)
{
	if (s->out.n_groups == s->cap_groups) {
		size_t ncap = s->cap_groups ? s->cap_groups * 2 : 64;
		struct tu_group *ng = reallocarray(s->out.groups, ncap, sizeof(*ng));
		if (!ng)
			return -ENOMEM;
		s->out.groups = ng;
		s->cap_groups = ncap;
	}
	struct tu_group *g = &s->out.groups[s->out.n_groups];
	*g = (struct tu_group){.gid = gid, .user_private = upg};
	g->name = strdup(name);
	if (!g->name)
		return -ENOMEM;
	s->out.n_groups++;
	/* The map borrows g->name: the string does not move when the array grows. */
	int r = namemap_put(&s->group_by_name, g->name, s->out.n_groups - 1);
	if (r < 0)
		return r;
	*ret_idx = s->out.n_groups - 1;
	r = idset_add(&s->our_gids, gid);
	if (r < 0)
		return r;
	return idset_add(&s->taken, gid);
}

/* Appends id to a growable array. */
static int push_id(uint32_t **arr, size_t *n, size_t *cap, uint32_t id)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		uint32_t *na = reallocarray(*arr, ncap, sizeof(*na));
		if (!na)
			return -ENOMEM;
		*arr = na;
		*cap = ncap;
	}
	(*arr)[(*n)++] = id;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	return x < y ? -1 : x > y;
}

/*
 * Why a host_user_uid / host_user_gid trait id cannot be used, or NULL: the
 * fence accounts.trait_id_range (traits may come from an identity provider),
 * never 0, 65534 (nobody) or 65535 (the 16-bit -1), never an id a local
 * account or group holds (it would hand over their files).
 */
static const char *trait_id_refused(const struct state *s, uint32_t id)
{
	uint32_t lo = s->o->trait_id_min ? s->o->trait_id_min : s->o->uid_min;
	uint32_t hi = s->o->trait_id_max ? s->o->trait_id_max : s->o->uid_max;

	if (id == 0 || id == 65534 || id == 65535)
		return "a reserved id";
	if (id < lo || id > hi)
		return "outside accounts.trait_id_range";
	if (s->o->n_local_uids && bsearch(&id, s->o->local_uids, s->o->n_local_uids, sizeof(id), cmp_id))
		return "held by a local account";
	if (idset_has(&s->local_gids, id))
		return "held by a local group";
	return NULL;
}

/* A usable host_user_gid trait value (trait_id_refused). */
static bool trait_gid(const struct state *s, const struct tu_user *u, uint32_t *ret)
{
	const char *tv = first_trait(u, "host_user_gid");
	uint32_t gid;
	if (!tv || !parse_id(tv, &gid) || trait_id_refused(s, gid))
		return false;
	*ret = gid;
	return true;
}

/*
 * Names we serve: Teleport's login rule (tu_rbac_valid_login: 1..32 bytes,
 * ...) and shadow-utils' useradd/groupadd rule (Debian 12, shadow 4.13):
 * [A-Za-z0-9_.][A-Za-z0-9_.-]* with an optional final '$', not "." or "..",
 * not all digits (a numeric name reads as a uid to getent, chown, ps ...).
 * That also keeps ',' ':' '@' and non-ASCII out of passwd and group lines.
 */
static bool valid_name(const char *name)
{
	size_t n;
	bool digits = true;

	if (!tu_rbac_valid_login(name))
		return false;
	n = strlen(name);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!(c >= '0' && c <= '9'))
			digits = false;
		if (alnum || c == '_' || c == '.')
			continue;
		if (c == '-' && i > 0)
			continue;
		if (c == '$' && i == n - 1 && i > 0)
			continue;
		return false;
	}
	return !digits;
}

/* Step 2: accounts with owner, uid, gid, gecos, home, shell. */
static int build_accounts(struct state *s, struct tu_err *reterr)
{
	const char *home_t = s->o->home_template ? s->o->home_template : DEFAULT_HOME;
	const char *shell = s->o->shell ? s->o->shell : DEFAULT_SHELL;
	char b1[128], b2[128];
	size_t cap = 0;
	int r;

	/* Pass A: one account per distinct valid login, with its owner. */
	for (size_t k = 0; k < s->n_grants;) {
		const char *login = s->grants[k].name;
		size_t first = k;
		while (k < s->n_grants && strcmp(s->grants[k].name, login) == 0)
			k++;

		if (strcmp(login, "root") == 0 || !valid_name(login)) {
			skip_log(s, "accounts: skipping login '%s': %s", san(login, b1, sizeof(b1)),
				 strcmp(login, "root") == 0
				     ? "root is never served"
				     : "not a valid user name (useradd rules)");
			continue;
		}
		if (s->out.n_accounts == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct tu_account *na = reallocarray(s->out.accounts, ncap, sizeof(*na));
			struct acc_work *nw = reallocarray(s->work, ncap, sizeof(*nw));
			if (na)
				s->out.accounts = na;
			if (nw)
				s->work = nw;
			if (!na || !nw)
				return tu_err_set(reterr, -ENOMEM, "out of memory");
			cap = ncap;
		}
		struct tu_account *a = &s->out.accounts[s->out.n_accounts];
		struct acc_work *w = &s->work[s->out.n_accounts];
		*a = (struct tu_account){0};
		*w = (struct acc_work){0};
		w->owner = find_owner(s, login, first, &a->n_owners);
		const struct tu_user *ou = &s->d->users[w->owner];
		a->login = strdup(login);
		a->owner = strdup(ou->name);
		a->gecos = sanitize_gecos(ou->name);
		a->home = expand_home(home_t, login);
		a->shell = strdup(shell);
		s->out.n_accounts++;
		if (!a->login || !a->owner || !a->gecos || !a->home || !a->shell)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
	}

	/* Pass B: uids claimed by trait (in login order, the first claim wins). */
	size_t n = s->out.n_accounts;
	if (idset_reserve(&s->taken, 2 * n + s->o->n_local_groups) < 0)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	_cleanup_free_ uint32_t *fixed = calloc(n ? n : 1, sizeof(uint32_t));
	_cleanup_free_ uint32_t *ids = calloc(n ? n : 1, sizeof(uint32_t));
	_cleanup_free_ const char **names = calloc(n ? n : 1, sizeof(char *));
	_cleanup_free_ uint32_t *avoid = NULL;
	size_t n_avoid = 0, cap_avoid = 0;
	if (!fixed || !ids || !names)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct tu_account *a = &s->out.accounts[i];
		const char *tv = first_trait(&s->d->users[s->work[i].owner], "host_user_uid");
		uint32_t uid;

		names[i] = a->login;
		if (!tv)
			continue;
		if (!parse_id(tv, &uid))
			tu_log(
			    LOG_INFO,
			    "accounts: login '%s': host_user_uid '%s' is not a number, using a hashed uid",
			    san(a->login, b1, sizeof(b1)), san(tv, b2, sizeof(b2)));
		else if (trait_id_refused(s, uid))
			tu_log(LOG_INFO, "accounts: login '%s': host_user_uid %u is %s, using a hashed uid",
			       san(a->login, b1, sizeof(b1)), uid, trait_id_refused(s, uid));
		else if (idset_has(&s->taken, uid))
			tu_log(
			    LOG_INFO,
			    "accounts: login '%s': host_user_uid %u already taken, using a hashed uid",
			    san(a->login, b1, sizeof(b1)), uid);
		else {
			fixed[i] = uid;
			r = idset_add(&s->taken, uid);
			if (r < 0)
				return tu_err_set(reterr, r, "out of memory");
		}
	}

	/* Pass C: local gids and trait gids are avoided, so no hashed uid (= its UPG gid) lands on
	 * them. */
	for (size_t i = 0; i < s->o->n_local_groups; i++)
		if (push_id(&avoid, &n_avoid, &cap_avoid, s->o->local_groups[i].gid) < 0)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		uint32_t gid;
		if (!trait_gid(s, &s->d->users[s->work[i].owner], &gid))
			continue;
		if (push_id(&avoid, &n_avoid, &cap_avoid, gid) < 0 || idset_add(&s->taken, gid) < 0)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
	}

	/* Pass D: hashed uids, independent of input order (tu_idhash_assign). */
	r = tu_idhash_assign(names, n, s->o->uid_min, s->o->uid_max, fixed, avoid, n_avoid, ids,
			     reterr);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct tu_account *a = &s->out.accounts[i];
		a->uid = ids[i];
		if (a->uid == 0) {
			skip_log(s, "accounts: skipping login '%s': no free uid in [%u, %u]",
				 san(a->login, b1, sizeof(b1)), s->o->uid_min, s->o->uid_max);
			continue;
		}
		r = idset_add(&s->taken, a->uid);
		if (r < 0)
			return tu_err_set(reterr, r, "out of memory");
	}

	/* Drop accounts without a uid (compacting keeps the login order). */
	size_t j = 0;
	for (size_t i = 0; i < s->out.n_accounts; i++) {
		struct tu_account *a = &s->out.accounts[i];
		if (a->uid == 0) {
			free(a->login);
			free(a->owner);
			free(a->gecos);
			free(a->home);
			free(a->shell);
			continue;
		}
		s->out.accounts[j] = *a;
		s->work[j] = s->work[i];
		j++;
	}
	s->out.n_accounts = j;

	/* Most accounts get a group of their name. */
	if (namemap_reserve(&s->group_by_name, s->out.n_accounts) < 0 ||
	    idset_reserve(&s->our_gids, s->out.n_accounts) < 0)
		return tu_err_set(reterr, -ENOMEM, "out of memory");

	/* Pass E: primary groups. User-private groups first (gid = uid, already reserved). */
	for (size_t i = 0; i < s->out.n_accounts; i++) {
		struct tu_account *a = &s->out.accounts[i];
		const char *tv = first_trait(&s->d->users[s->work[i].owner], "host_user_gid");
		uint32_t gid;
		size_t gi;

		if (trait_gid(s, &s->d->users[s->work[i].owner], &gid))
			continue; /* pass F */
		if (tv)
			tu_log(
			    LOG_INFO,
			    "accounts: login '%s': host_user_gid '%s' cannot be used (not a number, outside accounts.trait_id_range, reserved or held locally), using the user-private group",
			    san(a->login, b1, sizeof(b1)), san(tv, b2, sizeof(b2)));
		a->gid = a->uid;
		if (namemap_get(&s->local_by_name, a->login, &gi)) {
			tu_log(
			    LOG_INFO,
			    "accounts: login '%s': a local group has that name, serving gid %u without a group entry",
			    san(a->login, b1, sizeof(b1)), a->gid);
			continue;
		}
		r = add_group(s, a->login, a->gid, true, &gi);
		if (r < 0)
			return tu_err_set(reterr, r, "out of memory");
		s->work[i].has_group_record = true;
	}

	/* Pass F: primary groups from the host_user_gid trait. */
	for (size_t i = 0; i < s->out.n_accounts; i++) {
		struct tu_account *a = &s->out.accounts[i];
		uint32_t gid;
		size_t gi;

		if (!trait_gid(s, &s->d->users[s->work[i].owner], &gid))
			continue;
		a->gid = gid;
		if (idset_has(&s->local_gids, gid))
			continue; /* a local group is the primary group */
		bool gid_ours = idset_has(&s->our_gids, gid);
		if (gid_ours)
			continue; /* shares a group we already serve */
		if (namemap_get(&s->local_by_name, a->login, &gi) ||
		    namemap_get(&s->group_by_name, a->login, &gi)) {
			tu_log(
			    LOG_INFO,
			    "accounts: login '%s': a group with that name exists, serving gid %u without a group entry",
			    san(a->login, b1, sizeof(b1)), gid);
			continue;
		}
		r = add_group(s, a->login, gid, true, &gi);
		if (r < 0)
			return tu_err_set(reterr, r, "out of memory");
		s->work[i].has_group_record = true;
	}
	return 0;
}

/* Whether a host group name may be granted. */
static bool group_name_ok(const char *g)
{
	return g && strcmp(g, "root") != 0 && valid_name(g);
}

static int add_gid(struct tu_account *a, uint32_t gid)
{
	for (size_t k = 0; k < a->n_gids; k++)
		if (a->gids[k] == gid)
			return 0;
	uint32_t *n = reallocarray(a->gids, a->n_gids + 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	a->gids = n;
	a->gids[a->n_gids++] = gid;
	return 0;
}

/* Step 3: supplementary groups from the owners' host_groups. */
/* Appends a copy of login to g's members; *cap is the room in members.v (doubling: a group
 * every account joins has 100k members, and growing by one element each time copied them all
 * again and again). */
static int member_push(struct tu_group *g, size_t *cap, const char *login)
{
	char *copy;

	if (g->members.n >= TU_MODEL_MAX_REPEATED)
		return -EMSGSIZE;
	if (g->members.n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		char **nv = reallocarray(g->members.v, ncap, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		g->members.v = nv;
		*cap = ncap;
	}
	copy = strdup(login);
	if (!copy)
		return -ENOMEM;
	g->members.v[g->members.n++] = copy;
	return 0;
}

static int build_groups(struct state *s, struct tu_err *reterr)
{
	_cleanup_free_ const char **gen = NULL;
	_cleanup_free_ uint32_t *avoid = NULL;
	_cleanup_free_ uint32_t *gids = NULL;
	_cleanup_free_ size_t *mcap = NULL; /* per group: room in members.v */
	size_t n_gen = 0, cap_gen = 0, n_avoid = 0, cap_avoid = 0;
	struct namemap seen_bad = {0}, seen_gen = {0};
	char b1[128];
	int r = 0;

	/* Collect the names that need a generated gid, then hand gids out in name order. */
	for (size_t i = 0; i < s->out.n_accounts; i++) {
		const struct uinfo *ui = s->ui[s->work[i].owner];
		if (!ui->hu_ok)
			continue;
		for (size_t k = 0; k < ui->hu.groups.n; k++) {
			const char *g = ui->hu.groups.v[k];
			size_t x;
			if (!group_name_ok(g)) {
				if (!namemap_get(&seen_bad, g ? g : "", &x)) {
					r = namemap_put(&seen_bad, g ? g : "", 0);
					if (r < 0)
						goto oom;
					skip_log(s, "accounts: skipping host group '%s': %s",
						 san(g, b1, sizeof(b1)),
						 g && strcmp(g, "root") == 0
						     ? "root is never granted"
						     : "not a valid group name");
				}
				continue;
			}
			if (namemap_get(&s->local_by_name, g, &x) ||
			    namemap_get(&s->group_by_name, g, &x) || namemap_get(&seen_gen, g, &x))
				continue;
			/* Each name once: the sort below then sees distinct groups, not
			 * memberships. */
			if (namemap_put(&seen_gen, g, 0) < 0)
				goto oom;
			if (n_gen == cap_gen) {
				size_t ncap = cap_gen ? cap_gen * 2 : 64;
				const char **ng = reallocarray(gen, ncap, sizeof(*ng));
				if (!ng)
					goto oom;
				gen = ng;
				cap_gen = ncap;
			}
			gen[n_gen++] = g;
		}
	}
	if (n_gen > 1)
		qsort(gen, n_gen, sizeof(*gen), cmp_cstr);
	size_t n_uniq = 0;
	for (size_t i = 0; i < n_gen; i++)
		if (i == 0 || strcmp(gen[i], gen[n_uniq - 1]) != 0)
			gen[n_uniq++] = gen[i];
	if (n_uniq > 0) {
		/* Every id in use: local gids, account uids and primary gids, our groups' gids. */
		for (size_t i = 0; i < s->o->n_local_groups; i++)
			if (push_id(&avoid, &n_avoid, &cap_avoid, s->o->local_groups[i].gid) < 0)
				goto oom;
		for (size_t i = 0; i < s->out.n_accounts; i++)
			if (push_id(&avoid, &n_avoid, &cap_avoid, s->out.accounts[i].uid) < 0 ||
			    push_id(&avoid, &n_avoid, &cap_avoid, s->out.accounts[i].gid) < 0)
				goto oom;
		for (size_t i = 0; i < s->out.n_groups; i++)
			if (push_id(&avoid, &n_avoid, &cap_avoid, s->out.groups[i].gid) < 0)
				goto oom;
		gids = calloc(n_uniq, sizeof(*gids));
		if (!gids)
			goto oom;
		r = tu_idhash_assign(gen, n_uniq, s->o->uid_min, s->o->uid_max, NULL, avoid,
				     n_avoid, gids, reterr);
		if (r < 0) {
			namemap_done(&seen_bad);
			namemap_done(&seen_gen);
			return r;
		}
	}
	for (size_t i = 0; i < n_uniq; i++) {
		size_t gi;
		if (gids[i] == 0) {
			skip_log(s, "accounts: skipping host group '%s': no free gid in [%u, %u]",
				 san(gen[i], b1, sizeof(b1)), s->o->uid_min, s->o->uid_max);
			continue;
		}
		r = add_group(s, gen[i], gids[i], false, &gi);
		if (r < 0)
			goto oom;
	}

	/* Memberships, in login order (so member lists come out sorted). */
	mcap = calloc(s->out.n_groups ? s->out.n_groups : 1, sizeof(*mcap));
	if (!mcap)
		goto oom;
	for (size_t i = 0; i < s->out.n_accounts; i++) {
		struct tu_account *a = &s->out.accounts[i];
		const struct uinfo *ui = s->ui[s->work[i].owner];
		if (!ui->hu_ok)
			continue;
		for (size_t k = 0; k < ui->hu.groups.n; k++) {
			const char *g = ui->hu.groups.v[k];
			size_t x;
			if (!group_name_ok(g))
				continue;
			if (namemap_get(&s->local_by_name, g, &x)) {
				uint32_t lg = s->o->local_groups[x].gid;
				if (lg == 0)
					continue; /* gid 0 is root's group: never granted */
				if (lg != a->gid && add_gid(a, lg) < 0)
					goto oom;
				continue;
			}
			if (!namemap_get(&s->group_by_name, g, &x))
				continue; /* skipped above */
			struct tu_group *grp = &s->out.groups[x];
			if (grp->gid == a->gid)
				continue; /* already the primary group */
			if (add_gid(a, grp->gid) < 0 || member_push(grp, &mcap[x], a->login) < 0)
				goto oom;
		}
		if (a->n_gids > 1)
			qsort(a->gids, a->n_gids, sizeof(*a->gids), cmp_u32);
	}
	namemap_done(&seen_bad);
	namemap_done(&seen_gen);
	return 0;
oom:
	namemap_done(&seen_bad);
	namemap_done(&seen_gen);
	return tu_err_set(reterr, -ENOMEM, "out of memory");
}

static int cmp_group(const void *a, const void *b)
{
	return strcmp(((const struct tu_group *) a)->name, ((const struct tu_group *) b)->name);
}

static void state_done(struct state *s)
{
	if (s->own_ui) {
		for (size_t i = 0; i < s->d->n_users; i++)
			uinfo_done(&s->own_ui[i]);
		free(s->own_ui);
	}
	free(s->ui);
	free(s->grants);
	free(s->traits);
	free(s->work);
	namemap_done(&s->local_by_name);
	namemap_done(&s->group_by_name);
	idset_done(&s->local_gids);
	idset_done(&s->taken);
	idset_done(&s->our_gids);
	tu_rbac_index_free(s->ix);
	tu_accounts_done(&s->out);
}

static bool bad_field(const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (*p == ':' || *p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

static int compute(const struct tu_dataset *d, const struct tu_host *h,
		   const struct tu_accounts_opts *o, int64_t now_usec, struct tu_accounts_memo *memo,
		   struct tu_accounts *ret, struct tu_err *reterr)
{
	struct state s = {.d = d,
			  .h = h,
			  .o = o,
			  .now_usec = now_usec,
			  .memo = memo,
			  .roles_only = {.roles = d->roles, .n_roles = d->n_roles}};
	int r;

	if (o->uid_min == 0 || o->uid_min > o->uid_max)
		return tu_err_set(reterr, -EINVAL,
				  "accounts.uid_range: [%u, %u] is empty or includes 0", o->uid_min,
				  o->uid_max);
	if (o->home_template && (bad_field(o->home_template) || !*o->home_template))
		return tu_err_set(
		    reterr, -EINVAL,
		    "accounts.home: must be non-empty without ':' or control characters");
	if (o->shell && (bad_field(o->shell) || !*o->shell))
		return tu_err_set(
		    reterr, -EINVAL,
		    "accounts.shell: must be non-empty without ':' or control characters");

	if (!memo) {
		/* Users by name too (find_owner); the memo has its own map. */
		r = tu_rbac_index_new(d, &s.ix, reterr);
		if (r < 0)
			goto out;
	} else {
		if (memo->valid_opts && memo->source != o->source)
			tu_accounts_memo_clear(memo); /* the logins depend on the source rule */
		memo->valid_opts = true;
		memo->source = o->source;
		memo->pass++;
		memo->n_computed = 0;
		free(memo->next_index);
		/* Without it (no memory) every user is looked up by name: slower, same result. */
		memo->next_index = calloc(d->n_users ? d->n_users : 1, sizeof(*memo->next_index));
		if (namemap_reserve(&memo->by_name, d->n_users) < 0) {
			r = tu_err_set(reterr, -ENOMEM, "out of memory");
			goto out;
		}
	}

	for (size_t i = 0; i < o->n_local_groups; i++) {
		const struct tu_local_group *lg = &o->local_groups[i];
		if (!lg->name)
			continue;
		r = namemap_put(&s.local_by_name, lg->name, i);
		if (r >= 0)
			r = idset_add(&s.local_gids, lg->gid);
		if (r >= 0)
			r = idset_add(&s.taken, lg->gid);
		if (r < 0) {
			r = tu_err_set(reterr, r, "out of memory");
			goto out;
		}
	}

	r = collect_users(&s, reterr);
	if (r < 0)
		goto out;
	r = build_accounts(&s, reterr);
	if (r < 0)
		goto out;
	r = build_groups(&s, reterr);
	if (r < 0)
		goto out;

	if (s.out.n_groups > 1)
		qsort(s.out.groups, s.out.n_groups, sizeof(*s.out.groups), cmp_group);
	if (s.loud > MAX_LOUD_SKIPS)
		tu_log(LOG_INFO, "accounts: %zu more skipped (see debug log)",
		       s.loud - MAX_LOUD_SKIPS);

	*ret = s.out;
	s.out = (struct tu_accounts){0};
	r = 0;
out:
	state_done(&s);
	return r;
}

int tu_accounts_compute(const struct tu_dataset *d, const struct tu_host *h,
			const struct tu_accounts_opts *o, int64_t now_usec, struct tu_accounts *ret,
			struct tu_err *reterr)
{
	return compute(d, h, o, now_usec, NULL, ret, reterr);
}

/* ---- the memo ----------------------------------------------------------------------------- */

int tu_accounts_memo_new(struct tu_accounts_memo **ret)
{
	struct tu_accounts_memo *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	*ret = m;
	return 0;
}

void tu_accounts_memo_clear(struct tu_accounts_memo *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		entry_forget(m->e[i]);
		free(m->e[i]->name);
		free(m->e[i]);
	}
	free(m->e);
	namemap_done(&m->by_name);
	free(m->by_index);
	free(m->next_index);
	*m = (struct tu_accounts_memo){.pass = m->pass};
}

struct tu_accounts_memo *tu_accounts_memo_free(struct tu_accounts_memo *m)
{
	tu_accounts_memo_clear(m);
	free(m);
	return NULL;
}

void tu_accounts_memo_forget_user(struct tu_accounts_memo *m, const char *name)
{
	size_t k;

	if (m && name && namemap_get(&m->by_name, name, &k))
		entry_forget(m->e[k]);
}

void tu_accounts_memo_forget_role(struct tu_accounts_memo *m, const struct tu_dataset *d,
				  const char *role)
{
	if (!m || !d || !role)
		return;
	for (size_t i = 0; i < d->n_users; i++) {
		const struct tu_user *u = &d->users[i];
		for (size_t k = 0; k < u->roles.n; k++)
			if (u->roles.v[k] && strcmp(u->roles.v[k], role) == 0) {
				tu_accounts_memo_forget_user(m, u->name);
				break;
			}
	}
}

size_t tu_accounts_memo_last_computed(const struct tu_accounts_memo *m)
{
	return m ? m->n_computed : 0;
}

/* Drops what the last call did not see (users deleted or renamed); rebuilds the map when most of
 * it is such names, so a long-running watcher does not grow with churn. */
static int memo_sweep(struct tu_accounts_memo *m)
{
	size_t live = 0;

	for (size_t i = 0; i < m->n; i++) {
		if (m->e[i]->pass == m->pass)
			live++;
		else {
			entry_forget(m->e[i]);
			m->e[i]->eligible = false;
		}
	}
	if (m->n - live <= 1024 || m->n - live <= live)
		return 0;
	/* The new map first (the names do not move), so a failure leaves the memo as it was. */
	struct namemap nm = {0};
	size_t j = 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->e[i]->pass == m->pass && namemap_put(&nm, m->e[i]->name, j++) < 0) {
			namemap_done(&nm);
			return -ENOMEM;
		}
	j = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (m->e[i]->pass != m->pass) {
			free(m->e[i]->name);
			free(m->e[i]);
		} else
			m->e[j++] = m->e[i];
	}
	m->n = j;
	namemap_done(&m->by_name);
	m->by_name = nm;
	return 0;
}

int tu_accounts_compute_memo(struct tu_accounts_memo *m, const struct tu_dataset *d,
			     const struct tu_host *h, const struct tu_accounts_opts *o,
			     int64_t now_usec, struct tu_accounts *ret, struct tu_err *reterr)
{
	int r;

	if (!m)
		return compute(d, h, o, now_usec, NULL, ret, reterr);
	r = compute(d, h, o, now_usec, m, ret, reterr);
	if (r == -EEXIST) {
		/* Two users of one name (Auth never lists that; a hand-made dataset may): the memo
		 * cannot tell them apart, so this call computes afresh. */
		tu_accounts_memo_clear(m);
		return compute(d, h, o, now_usec, NULL, ret, reterr);
	}
	if (r < 0) {
		tu_accounts_memo_clear(m); /* a half-done pass: start over next time */
		return r;
	}
	free(m->by_index);
	m->by_index = m->next_index;
	m->n_by_index = m->by_index ? d->n_users : 0;
	m->next_index = NULL;
	(void) memo_sweep(m);
	return 0;
}

void tu_accounts_done(struct tu_accounts *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n_accounts; i++) {
		struct tu_account *x = &a->accounts[i];
		free(x->login);
		free(x->gecos);
		free(x->home);
		free(x->shell);
		free(x->owner);
		free(x->gids);
	}
	free(a->accounts);
	for (size_t i = 0; i < a->n_groups; i++) {
		free(a->groups[i].name);
		tu_strv_done(&a->groups[i].members);
	}
	free(a->groups);
	*a = (struct tu_accounts){0};
}

const struct tu_account *tu_accounts_find_login(const struct tu_accounts *a, const char *login)
{
	size_t lo = 0, hi = a->n_accounts;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(a->accounts[mid].login, login);
		if (c == 0)
			return &a->accounts[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct tu_group *tu_accounts_find_group(const struct tu_accounts *a, const char *name)
{
	size_t lo = 0, hi = a->n_groups;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(a->groups[mid].name, name);
		if (c == 0)
			return &a->groups[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
