/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbac.c - Teleport's node-access RBAC, written from the behaviour of
 * lib/services/role.go, lib/utils/parse and api/types/role.go (see
 * API.md §4, §5): trait templates, node_labels and node_labels_expression
 * matching, allow vs deny across roles, host-user creation.  The three
 * small languages it uses live beside it: trait templates (template.c),
 * node_labels_expression (labelexpr.c) and regular expressions (rx.c).
 * Layer: libcore.  Pure: no clock, no I/O, no environment, no logging.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "err.h"
#include "labelexpr.h"
#include "rbac-internal.h"
#include "rbac.h"
#include "rx.h"
#include "template.h"

/* ---- login names ---- */

bool tu_rbac_valid_login(const char *login)
{
	size_t n;

	if (!login)
		return false;
	n = strlen(login);
	if (n < 1 || n > LOGIN_MAX || login[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char) login[i];
		if (c <= 0x20 || c == 0x7f || c == ':' || c == '/')
			return false;
		/* Go's unicode.IsSpace / IsControl beyond ASCII, in UTF-8. */
		unsigned char c1 = i + 1 < n ? (unsigned char) login[i + 1] : 0;
		unsigned char c2 = i + 2 < n ? (unsigned char) login[i + 2] : 0;
		if (c == 0xc2 && c1 >= 0x80 && (c1 <= 0x9f || c1 == 0xa0))
			return false; /* U+0080..U+009F controls, U+0085, U+00A0 */
		if (c == 0xe1 && c1 == 0x9a && c2 == 0x80)
			return false; /* U+1680 */
		if (c == 0xe2 && c1 == 0x80 && ((c2 >= 0x80 && c2 <= 0x8a) || c2 == 0xa8 || c2 == 0xa9 || c2 == 0xaf))
			return false; /* U+2000..U+200A, U+2028, U+2029, U+202F */
		if (c == 0xe2 && c1 == 0x81 && c2 == 0x9f)
			return false; /* U+205F */
		if (c == 0xe3 && c1 == 0x80 && c2 == 0x80)
			return false; /* U+3000 */
	}
	return true;
}

/* ---- label matching ---- */

/* Interpolates one label key or value: failures become "" (matches only an empty label). */
static int interp_label(struct tu_rx_cache *rx, const char *s, const struct tu_labels *traits, struct tu_strv *out,
			bool first_only)
{
	struct tu_strv v = { 0 };
	int k = tu_template_interpolate(rx, s, traits, &v, NULL);
	if (k == -ENOMEM) {
		tu_strv_done(&v);
		return k;
	}
	if (k < 0 || v.n == 0)
		k = strv_add(out, "");
	else if (first_only)
		k = strv_add(out, v.v[0]);
	else
		for (size_t j = 0; j < v.n && k >= 0; j++)
			k = strv_add(out, v.v[j]);
	tu_strv_done(&v);
	return k;
}

/* MatchLabelGetter on one selector; *ret_why names the failing key. */
static int match_labels(struct tu_rx_cache *rx, const struct tu_labels *sel, const struct tu_labels *traits,
			const struct tu_labels *host, bool *ret, struct tu_err *reterr)
{
	int k = 0;

	if (sel->n == 0) {
		*ret = false;
		return 0;
	}
	const struct tu_strv *w = labels_find(sel, "*");
	if (w && w->n == 1 && w->v[0] && strcmp(w->v[0], "*") == 0) {
		*ret = true;
		return 0;
	}
	for (size_t i = 0; i < sel->n; i++) {
		const struct tu_kv *e = &sel->e[i];
		const char *key = e->key ? e->key : "";
		struct tu_strv kv = { 0 }, vals = { 0 };
		const struct tu_strv *hv;
		bool any = false, wildcard = false;

		if (!tu_template_is_literal(key)) {
			k = interp_label(rx, key, traits, &kv, true);
			if (k < 0)
				return k;
			key = kv.v[0];
		}
		hv = labels_find(host, key);
		if (!hv) {
			tu_strv_done(&kv);
			*ret = false;
			return 0;
		}
		const char *hval = hv->n > 0 && hv->v[0] ? hv->v[0] : "";
		/* Any "*" among the values: the key existing is enough. */
		for (size_t j = 0; j < e->values.n && !wildcard; j++)
			if (e->values.v[j] && strcmp(e->values.v[j], "*") == 0)
				wildcard = true;
		/* Like utils.SliceMatchesRegex: first error or first match wins, in order. */
		for (size_t j = 0; !wildcard && j < e->values.n && !any && k >= 0; j++) {
			const char *pat = e->values.v[j] ? e->values.v[j] : "";
			if (tu_template_is_literal(pat)) {
				k = tu_rx_match_value(rx, pat, hval, &any, reterr);
				continue;
			}
			k = interp_label(rx, pat, traits, &vals, false);
			for (size_t x = 0; k >= 0 && x < vals.n && !wildcard && !any; x++) {
				if (strcmp(vals.v[x], "*") == 0)
					wildcard = true;
				else
					k = tu_rx_match_value(rx, vals.v[x], hval, &any, reterr);
			}
			tu_strv_done(&vals);
		}
		tu_strv_done(&kv);
		tu_strv_done(&vals);
		if (k < 0)
			return k;
		if (!wildcard && !any) {
			*ret = false;
			return 0;
		}
	}
	*ret = true;
	return 0;
}

/* ---- roles against the host ---- */

static const struct tu_labels wildcard_labels = {
	.e = (struct tu_kv[]){ { .key = (char *) "*", .values = { .v = (char *[]){ (char *) "*", NULL }, .n = 1 } } },
	.n = 1,
};

static int role_matches_host(struct tu_rx_cache *rx, const struct tu_role *role, bool deny, const struct tu_user *u,
			     const struct tu_host *h, bool *ret_match, const char **ret_why, struct tu_err *reterr)
{
	const struct tu_role_cond *c = deny ? &role->deny : &role->allow;
	const struct tu_labels *sel = &c->node_labels;
	const struct tu_labels *traits = u ? &u->traits : NULL;
	const char *expr = c->node_labels_expression && c->node_labels_expression[0] ? c->node_labels_expression : NULL;
	bool lm = false, em = false;
	int k;

	/*
	 * v3 default (api/types/role.go): allow.node_labels unset -> {*: [*]}
	 * when allow.logins is non-empty.  The wire cannot tell unset from {},
	 * but Teleport's own nodes re-apply this default when their cache
	 * reads a role back, so a v3 role with logins and no labels grants
	 * every node there too.
	 */
	if (!deny && sel->n == 0 && role->version && strcmp(role->version, "v3") == 0 && c->logins.n > 0)
		sel = &wildcard_labels;

	if (ret_why)
		*ret_why = NULL;
	if (!deny && sel->n == 0 && !expr) {
		*ret_match = false;
		return 0;
	}
	if (sel->n > 0) {
		k = match_labels(rx, sel, traits, h ? h->labels : NULL, &lm, reterr);
		if (k < 0)
			return k;
		if (deny && lm) {
			*ret_match = true;
			return 0;
		}
		if (!deny && !lm) {
			*ret_match = false;
			return 0;
		}
	}
	if (!expr) {
		*ret_match = !deny && lm;
		return 0;
	}
	k = tu_labelexpr_eval(rx, expr, u ? u->name : NULL, traits, h ? h->labels : NULL, &em, reterr);
	if (k == -EOPNOTSUPP || k == -EBADMSG) {
		/* Fail closed: no allow, and a deny that applies. */
		if (ret_why)
			*ret_why = deny ? "node_labels_expression could not be evaluated, treated as matching (deny)"
					: "node_labels_expression could not be evaluated, treated as not matching (allow)";
		*ret_match = deny;
		return 0;
	}
	if (k < 0)
		return k;
	*ret_match = em;
	return 0;
}

int tu_rbac_role_matches_host(const struct tu_role *role, bool deny, const struct tu_user *u, const struct tu_host *h,
			      bool *ret_match, const char **ret_why, struct tu_err *reterr)
{
	bool m = false;
	const char *why = NULL;
	int k = role_matches_host(NULL, role, deny, u, h, &m, &why, reterr);
	if (k < 0)
		return k;
	*ret_match = m;
	if (ret_why)
		*ret_why = why;
	return 0;
}

/*
 * Whether a role's labels match with errors folded in, fail-closed: an
 * error in allow is "no match", in deny "match".  *why set for the reason.
 */
static int role_matches_safe(struct tu_rx_cache *rx, const struct tu_role *role, bool deny, const struct tu_user *u,
			     const struct tu_host *h, bool *ret, char *why, size_t why_size)
{
	struct tu_err e = { 0 };
	const char *w = NULL;
	int k = role_matches_host(rx, role, deny, u, h, ret, &w, &e);
	if (k == -ENOMEM)
		return k;
	if (k < 0) {
		*ret = deny;
		if (why)
			snprintf(why, why_size, "%s", e.msg[0] ? e.msg : "invalid node_labels");
		return 0;
	}
	if (why && w)
		snprintf(why, why_size, "%s", w);
	else if (why)
		why[0] = '\0';
	return 0;
}

/* Appends the interpolated, valid logins of one condition (duplicates possible). */
static int cond_logins(struct tu_rx_cache *rx, const struct tu_role_cond *c, const struct tu_user *u, struct tu_strv *out)
{
	for (size_t j = 0; j < c->logins.n; j++) {
		struct tu_strv v = { 0 };
		const char *t = c->logins.v[j];
		int k;
		if (!t)
			continue;
		if (tu_template_is_literal(t)) {
			if (tu_rbac_valid_login(t) && (k = strv_add(out, t)) < 0)
				return k;
			continue;
		}
		k = tu_template_interpolate(rx, t, u ? &u->traits : NULL, &v, NULL);
		if (k == -ENOMEM) {
			tu_strv_done(&v);
			return k;
		}
		for (size_t x = 0; k >= 0 && x < v.n; x++)
			if (tu_rbac_valid_login(v.v[x]))
				k = strv_add(out, v.v[x]);
		tu_strv_done(&v);
		if (k == -ENOMEM)
			return k;
	}
	return 0;
}

/*
 * Whether the condition's logins hold login after interpolation.  Allow
 * lists only count valid Unix names (Teleport filters them); deny lists are
 * compared as they are.
 */
static int cond_has_login(struct tu_rx_cache *rx, const struct tu_role_cond *c, const struct tu_user *u, const char *login,
			  bool *ret)
{
	*ret = false;
	if (c == NULL)
		return 0;
	for (size_t j = 0; j < c->logins.n && !*ret; j++) {
		const char *t = c->logins.v[j];
		if (!t)
			continue;
		if (tu_template_is_literal(t)) {
			if (strcmp(t, login) == 0)
				*ret = true;
			continue;
		}
		struct tu_strv v = { 0 };
		int k = tu_template_interpolate(rx, t, u ? &u->traits : NULL, &v, NULL);
		if (k == -ENOMEM) {
			tu_strv_done(&v);
			return k;
		}
		if (k >= 0 && strv_has(&v, login))
			*ret = true;
		tu_strv_done(&v);
	}
	return 0;
}

/* ---- the role set of a user ---- */

/* Per-role data the index precomputes: the valid literal allow logins, sorted. */
struct role_info {
	const struct tu_role *r;
	const char **lit;     /* borrowed from r */
	size_t n_lit;
	bool tmpl;            /* some allow login is a template */
};

struct roleset {
	const struct tu_role **r;
	const struct role_info **info; /* parallel to r; NULL without an index */
	size_t n;
	const char *missing;           /* the first of the user's roles not in the data, or NULL */
};

struct tu_rbac_index {
	const struct tu_dataset *d;
	struct role_info *roles;      /* sorted by name */
	const struct tu_user **users; /* sorted by name */
	struct tu_rx_cache rx;
};

static int cmp_role(const void *a, const void *b)
{
	const struct role_info *x = a, *y = b;
	return strcmp(x->r->name ? x->r->name : "", y->r->name ? y->r->name : "");
}

static int cmp_user(const void *a, const void *b)
{
	const struct tu_user *x = *(const struct tu_user *const *) a, *y = *(const struct tu_user *const *) b;
	return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

int tu_rbac_index_new(const struct tu_dataset *d, struct tu_rbac_index **ret, struct tu_err *reterr)
{
	struct tu_rbac_index *ix = calloc(1, sizeof(*ix));
	if (!ix)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	ix->d = d;
	ix->roles = calloc(d->n_roles + 1, sizeof(*ix->roles));
	ix->users = calloc(d->n_users + 1, sizeof(*ix->users));
	if (!ix->roles || !ix->users) {
		free(ix->roles);
		free(ix->users);
		free(ix);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < d->n_roles; i++) {
		struct role_info *ri = &ix->roles[i];
		const struct tu_strv *l = &d->roles[i].allow.logins;
		ri->r = &d->roles[i];
		ri->lit = calloc(l->n + 1, sizeof(char *));
		if (!ri->lit) {
			ix->d = d;
			tu_rx_cache_init(&ix->rx);
			tu_rbac_index_free(ix);
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		}
		for (size_t j = 0; j < l->n; j++) {
			if (!l->v[j])
				continue;
			if (!tu_template_is_literal(l->v[j]))
				ri->tmpl = true;
			else if (tu_rbac_valid_login(l->v[j]))
				ri->lit[ri->n_lit++] = l->v[j];
		}
		qsort(ri->lit, ri->n_lit, sizeof(char *), cmp_strp);
	}
	for (size_t i = 0; i < d->n_users; i++)
		ix->users[i] = &d->users[i];
	qsort(ix->roles, d->n_roles, sizeof(*ix->roles), cmp_role);
	qsort(ix->users, d->n_users, sizeof(*ix->users), cmp_user);
	tu_rx_cache_init(&ix->rx);
	*ret = ix;
	return 0;
}

struct tu_rbac_index *tu_rbac_index_free(struct tu_rbac_index *ix)
{
	if (!ix)
		return NULL;
	tu_rx_cache_done(&ix->rx);
	for (size_t i = 0; ix->roles && i < ix->d->n_roles; i++)
		free(ix->roles[i].lit);
	free(ix->roles);
	free(ix->users);
	free(ix);
	return NULL;
}

const struct tu_dataset *tu_rbac_index_dataset(const struct tu_rbac_index *ix)
{
	return ix->d;
}

static const struct role_info *index_role(const struct tu_rbac_index *ix, const char *name)
{
	size_t lo = 0, hi = ix->d->n_roles;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix->roles[mid].r->name ? ix->roles[mid].r->name : "", name);
		if (c == 0)
			return &ix->roles[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct tu_role *tu_rbac_index_role(const struct tu_rbac_index *ix, const char *name)
{
	const struct role_info *ri = index_role(ix, name);
	return ri ? ri->r : NULL;
}

const struct tu_user *tu_rbac_index_user(const struct tu_rbac_index *ix, const char *name)
{
	size_t lo = 0, hi = ix->d->n_users;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix->users[mid]->name ? ix->users[mid]->name : "", name);
		if (c == 0)
			return ix->users[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct tu_role *find_role_linear(const struct tu_dataset *d, const char *name)
{
	for (size_t i = 0; i < d->n_roles; i++)
		if (d->roles[i].name && strcmp(d->roles[i].name, name) == 0)
			return &d->roles[i];
	return NULL;
}

/*
 * The user's roles present in the dataset, in the user's order, without
 * duplicates.  A role that is not there (it does not exist, or its record
 * could not be used) is noted in ret->missing: Teleport's FetchRoles fails
 * when any role of the user cannot be fetched, and the login with it.
 */
static int roleset_build(const struct tu_dataset *d, const struct tu_rbac_index *ix, const struct tu_user *u,
			 struct roleset *ret)
{
	ret->n = 0;
	ret->missing = NULL;
	ret->r = calloc(u->roles.n + 1, sizeof(*ret->r));
	ret->info = ix ? calloc(u->roles.n + 1, sizeof(*ret->info)) : NULL;
	if (!ret->r || (ix && !ret->info)) {
		free(ret->r);
		free(ret->info);
		ret->r = NULL; /* callers free both again on every path */
		ret->info = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < u->roles.n; i++) {
		const char *name = u->roles.v[i];
		const struct role_info *ri = NULL;
		const struct tu_role *r;
		bool dup = false;
		if (!name)
			continue;
		if (ix) {
			ri = index_role(ix, name);
			r = ri ? ri->r : NULL;
		} else {
			r = find_role_linear(d, name);
		}
		if (!r || r->unusable) {
			if (!ret->missing)
				ret->missing = name;
			continue;
		}
		for (size_t j = 0; j < ret->n; j++)
			if (ret->r[j] == r)
				dup = true;
		if (dup)
			continue;
		if (ix)
			ret->info[ret->n] = ri;
		ret->r[ret->n++] = r;
	}
	return 0;
}

/* ---- the decisions ---- */

static void access_set(struct tu_access *a, bool allowed, const char *role, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void access_set(struct tu_access *a, bool allowed, const char *role, const char *fmt, ...)
{
	va_list ap;
	a->allowed = allowed;
	snprintf(a->role, sizeof(a->role), "%s", role ? role : "");
	va_start(ap, fmt);
	vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
	va_end(ap);
}

static int check_login(struct tu_rx_cache *rx, const struct roleset *rs, const struct tu_user *u, const char *login,
		       const struct tu_host *h, struct tu_access *ret)
{
	char why[TU_ERR_MSG_MAX];
	char slogin[128];
	int k;

	tu_sanitize(login, slogin, sizeof(slogin));
	if (rs->missing) {
		char srole[128];
		tu_sanitize(rs->missing, srole, sizeof(srole));
		access_set(ret, false, rs->missing,
			   "role '%s' does not exist or cannot be used (Teleport refuses every login of a user whose roles cannot all be fetched)",
			   srole);
		return 0;
	}
	/* Deny pass: any role whose deny labels match, or whose deny logins hold login. */
	for (size_t i = 0; i < rs->n; i++) {
		const struct tu_role *r = rs->r[i];
		bool m = false;
		k = role_matches_safe(rx, r, true, u, h, &m, why, sizeof(why));
		if (k < 0)
			return k;
		if (m) {
			if (why[0])
				access_set(ret, false, r->name, "denied by role '%s' (deny node_labels: %s)", r->name, why);
			else
				access_set(ret, false, r->name, "denied by role '%s' (deny node_labels match this host)", r->name);
			return 0;
		}
		k = cond_has_login(rx, &r->deny, u, login, &m);
		if (k < 0)
			return k;
		if (m) {
			access_set(ret, false, r->name, "denied by role '%s' (deny logins '%s')", r->name, slogin);
			return 0;
		}
	}
	/* Allow pass. */
	const char *last_why_role = NULL;
	char last_why[TU_ERR_MSG_MAX] = "";
	for (size_t i = 0; i < rs->n; i++) {
		const struct tu_role *r = rs->r[i];
		bool m = false;
		k = role_matches_safe(rx, r, false, u, h, &m, why, sizeof(why));
		if (k < 0)
			return k;
		if (m) {
			m = false;
		} else {
			if (why[0]) {
				last_why_role = r->name;
				snprintf(last_why, sizeof(last_why), "%s", why);
			}
			continue;
		}
		if (!tu_rbac_valid_login(login)) {
			k = 0;
		} else if (rs->info) {
			m = bsearch(&login, rs->info[i]->lit, rs->info[i]->n_lit, sizeof(char *), cmp_strp) != NULL;
			k = !m && rs->info[i]->tmpl ? cond_has_login(rx, &r->allow, u, login, &m) : 0;
		} else {
			k = cond_has_login(rx, &r->allow, u, login, &m);
		}
		if (k < 0)
			return k;
		if (m) {
			access_set(ret, true, r->name, "allowed by role '%s' (logins '%s')", r->name, slogin);
			return 0;
		}
	}
	if (last_why_role)
		access_set(ret, false, "", "no role allows login '%s' on this host (role '%s': %s)", slogin,
			   last_why_role, last_why);
	else
		access_set(ret, false, "", "no role allows login '%s' on this host", slogin);
	return 0;
}

static int check_login_common(const struct tu_dataset *d, const struct tu_rbac_index *ix, struct tu_rx_cache *rx,
			      const struct tu_user *u, const char *login, const struct tu_host *h,
			      struct tu_access *ret, struct tu_err *reterr)
{
	struct roleset rs = { 0 };
	struct tu_access a = { 0 };
	int k;

	if (!u || !login) {
		access_set(ret, false, "", "no user or login");
		return tu_err_set(reterr, -EINVAL, "no user or login");
	}
	k = roleset_build(d, ix, u, &rs);
	if (k >= 0)
		k = check_login(rx, &rs, u, login, h, &a);
	free(rs.r);
	free(rs.info);
	if (k < 0) {
		access_set(ret, false, "", "internal error: %s", strerror(-k));
		return tu_err_set(reterr, k, "checking login: %s", strerror(-k));
	}
	*ret = a;
	return 0;
}

int tu_rbac_check_login(const struct tu_dataset *d, const struct tu_user *u, const char *login, const struct tu_host *h,
			struct tu_access *ret, struct tu_err *reterr)
{
	struct tu_rx_cache rx;
	int k;
	tu_rx_cache_init(&rx);
	k = check_login_common(d, NULL, &rx, u, login, h, ret, reterr);
	tu_rx_cache_done(&rx);
	return k;
}

int tu_rbac_check_login_ix(const struct tu_rbac_index *ix, const struct tu_user *u, const char *login,
			   const struct tu_host *h, struct tu_access *ret, struct tu_err *reterr)
{
	return check_login_common(ix->d, ix, (struct tu_rx_cache *) &ix->rx, u, login, h, ret, reterr);
}

static int user_logins(const struct tu_dataset *d, const struct tu_rbac_index *ix, struct tu_rx_cache *rx,
		       const struct tu_user *u, const struct tu_host *h, struct tu_strv *ret, struct tu_err *reterr)
{
	struct roleset rs = { 0 };
	struct tu_strv allow = { 0 }, deny = { 0 };
	bool denied_all = false;
	int k;

	k = roleset_build(d, ix, u, &rs);
	if (rs.missing)
		denied_all = true; /* a role that cannot be fetched: no login at all */
	for (size_t i = 0; k >= 0 && i < rs.n && !denied_all; i++) {
		bool m = false;
		k = role_matches_safe(rx, rs.r[i], true, u, h, &m, NULL, 0);
		if (k >= 0 && m)
			denied_all = true;
		else if (k >= 0)
			for (size_t j = 0; j < rs.r[i]->deny.logins.n && k >= 0; j++) {
				const char *t = rs.r[i]->deny.logins.v[j];
				if (!t)
					continue;
				k = tu_template_is_literal(t) ? strv_add(&deny, t) : tu_template_interpolate(rx, t, &u->traits, &deny, NULL);
				if (k < 0 && k != -ENOMEM)
					k = 0;
			}
	}
	for (size_t i = 0; k >= 0 && !denied_all && i < rs.n; i++) {
		bool m = false;
		k = role_matches_safe(rx, rs.r[i], false, u, h, &m, NULL, 0);
		if (k >= 0 && m)
			k = cond_logins(rx, &rs.r[i]->allow, u, &allow);
	}
	free(rs.r);
	free(rs.info);
	if (k < 0) {
		tu_strv_done(&allow);
		tu_strv_done(&deny);
		return tu_err_set(reterr, k, "computing logins: %s", strerror(-k));
	}
	/* allow minus deny */
	size_t w = 0;
	strv_sort_uniq(&deny);
	for (size_t i = 0; i < allow.n; i++) {
		if (deny.n > 0 && bsearch(&allow.v[i], deny.v, deny.n, sizeof(char *), cmp_strp)) {
			free(allow.v[i]);
			continue;
		}
		allow.v[w++] = allow.v[i];
	}
	allow.n = w;
	if (allow.v)
		allow.v[w] = NULL;
	strv_sort_uniq(&allow);
	tu_strv_done(&deny);
	*ret = allow;
	return 0;
}

int tu_rbac_user_logins(const struct tu_dataset *d, const struct tu_user *u, const struct tu_host *h,
			struct tu_strv *ret, struct tu_err *reterr)
{
	struct tu_rx_cache rx;
	int k;
	tu_rx_cache_init(&rx);
	k = user_logins(d, NULL, &rx, u, h, ret, reterr);
	tu_rx_cache_done(&rx);
	return k;
}

int tu_rbac_user_logins_ix(const struct tu_rbac_index *ix, const struct tu_user *u, const struct tu_host *h,
			   struct tu_strv *ret, struct tu_err *reterr)
{
	return user_logins(ix->d, ix, (struct tu_rx_cache *) &ix->rx, u, h, ret, reterr);
}

/* ---- host user creation (access_checker.go HostUsers) ---- */

static int32_t role_host_user_mode(const struct tu_role *r)
{
	int32_t m = r->create_host_user_mode;
	if (m == TU_HOST_USER_MODE_UNSPECIFIED)
		m = r->create_host_user == TU_BOOL_TRUE ? TU_HOST_USER_MODE_KEEP : TU_HOST_USER_MODE_OFF;
	return m;
}

static int host_user(const struct tu_dataset *d, const struct tu_rbac_index *ix, struct tu_rx_cache *rx,
		     const struct tu_user *u, const struct tu_host *h, struct tu_host_user *ret, struct tu_err *reterr)
{
	struct roleset rs = { 0 };
	struct tu_host_user hu = { 0 };
	struct tu_strv deny = { 0 };
	bool off = false, any = false;
	int32_t mode = TU_HOST_USER_MODE_UNSPECIFIED;
	const char *shell = NULL;
	int k;

	k = roleset_build(d, ix, u, &rs);
	if (rs.missing)
		rs.n = 0; /* a role that cannot be fetched: no host user (and no login) */
	for (size_t i = 0; k >= 0 && i < rs.n; i++) {
		const struct tu_role *r = rs.r[i];
		bool m = false;
		k = role_matches_safe(rx, r, false, u, h, &m, NULL, 0);
		if (k < 0 || !m)
			continue;
		any = true;
		int32_t rm = role_host_user_mode(r);
		if (rm == TU_HOST_USER_MODE_OFF)
			off = true;
		if (mode == TU_HOST_USER_MODE_UNSPECIFIED)
			mode = rm;
		if (mode == TU_HOST_USER_MODE_INSECURE_DROP && rm == TU_HOST_USER_MODE_KEEP)
			mode = TU_HOST_USER_MODE_KEEP;
		for (size_t j = 0; j < r->allow.host_groups.n && k >= 0; j++) {
			const char *g = r->allow.host_groups.v[j];
			if (!g)
				continue;
			k = tu_template_is_literal(g) ? strv_add(&hu.groups, g) : tu_template_interpolate(rx, g, &u->traits, &hu.groups, NULL);
			if (k < 0 && k != -ENOMEM)
				k = 0;
		}
		if (!shell && r->create_host_user_default_shell && r->create_host_user_default_shell[0])
			shell = r->create_host_user_default_shell;
	}
	for (size_t i = 0; k >= 0 && i < rs.n; i++) {
		const struct tu_role *r = rs.r[i];
		bool m = false;
		k = role_matches_safe(rx, r, true, u, h, &m, NULL, 0);
		if (k < 0 || !m)
			continue;
		for (size_t j = 0; j < r->deny.host_groups.n && k >= 0; j++) {
			const char *g = r->deny.host_groups.v[j];
			if (!g)
				continue;
			k = tu_template_is_literal(g) ? strv_add(&deny, g) : tu_template_interpolate(rx, g, &u->traits, &deny, NULL);
			if (k < 0 && k != -ENOMEM)
				k = 0;
		}
	}
	free(rs.r);
	free(rs.info);
	if (k >= 0 && shell) {
		hu.shell = strdup(shell);
		if (!hu.shell)
			k = -ENOMEM;
	}
	if (k < 0) {
		tu_strv_done(&deny);
		tu_host_user_done(&hu);
		return tu_err_set(reterr, k, "host user creation: %s", strerror(-k));
	}
	size_t w = 0;
	for (size_t i = 0; i < hu.groups.n; i++) {
		if (!hu.groups.v[i][0] || strv_has(&deny, hu.groups.v[i])) {
			free(hu.groups.v[i]);
			continue;
		}
		hu.groups.v[w++] = hu.groups.v[i];
	}
	hu.groups.n = w;
	if (hu.groups.v)
		hu.groups.v[w] = NULL;
	strv_sort_uniq(&hu.groups);
	tu_strv_done(&deny);
	/* Any matching role with OFF denies; DROP (deprecated) and unknown modes create nothing. */
	hu.mode = off ? TU_HOST_USER_MODE_OFF : mode;
	hu.enabled = any && !off && (mode == TU_HOST_USER_MODE_KEEP || mode == TU_HOST_USER_MODE_INSECURE_DROP);
	*ret = hu;
	return 0;
}

int tu_rbac_host_user(const struct tu_dataset *d, const struct tu_user *u, const struct tu_host *h,
		      struct tu_host_user *ret, struct tu_err *reterr)
{
	struct tu_rx_cache rx;
	int k;
	tu_rx_cache_init(&rx);
	k = host_user(d, NULL, &rx, u, h, ret, reterr);
	tu_rx_cache_done(&rx);
	return k;
}

int tu_rbac_host_user_ix(const struct tu_rbac_index *ix, const struct tu_user *u, const struct tu_host *h,
			 struct tu_host_user *ret, struct tu_err *reterr)
{
	return host_user(ix->d, ix, (struct tu_rx_cache *) &ix->rx, u, h, ret, reterr);
}

void tu_host_user_done(struct tu_host_user *hu)
{
	if (!hu)
		return;
	tu_strv_done(&hu->groups);
	free(hu->shell);
	hu->shell = NULL;
	hu->enabled = false;
}
