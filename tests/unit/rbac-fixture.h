/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbac-fixture.h - compact builders for users, roles, locks and label maps
 * shared by test-rbac.c and test-decide.c.  Test-only, header-only.
 *
 * Label maps are written "key=v1,v2;key2=v3" (';' between keys, ',' between
 * values); lists "a,b,c".  Everything is freed with the fx_*_free helpers,
 * which do not depend on model.c.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "rbac.h"

static inline void fx_strv_add(struct tu_strv *v, const char *s, size_t n)
{
	v->v = realloc(v->v, (v->n + 2) * sizeof(char *));
	v->v[v->n++] = strndup(s, n);
	v->v[v->n] = NULL;
}

/* "a,b,c" -> list; NULL or "" -> empty. */
static inline struct tu_strv fx_list(const char *s)
{
	struct tu_strv v = { 0 };
	if (!s || !*s)
		return v;
	for (;;) {
		const char *c = strchr(s, ',');
		fx_strv_add(&v, s, c ? (size_t) (c - s) : strlen(s));
		if (!c)
			break;
		s = c + 1;
	}
	return v;
}

/* "k=v1,v2;k2=v3" -> map; a key with no '=' gets no values. */
static inline struct tu_labels fx_labels(const char *s)
{
	struct tu_labels l = { 0 };
	if (!s || !*s)
		return l;
	for (;;) {
		const char *semi = strchr(s, ';');
		size_t len = semi ? (size_t) (semi - s) : strlen(s);
		char *ent = strndup(s, len);
		char *eq = strchr(ent, '=');
		l.e = realloc(l.e, (l.n + 1) * sizeof(*l.e));
		memset(&l.e[l.n], 0, sizeof(l.e[l.n]));
		if (eq) {
			*eq = '\0';
			l.e[l.n].values = fx_list(eq + 1);
			if (!eq[1])
				fx_strv_add(&l.e[l.n].values, "", 0);
		}
		l.e[l.n].key = strdup(ent);
		l.n++;
		free(ent);
		if (!semi)
			break;
		s = semi + 1;
	}
	return l;
}

static inline void fx_strv_free(struct tu_strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	v->v = NULL;
	v->n = 0;
}

static inline void fx_labels_free(struct tu_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->e[i].key);
		fx_strv_free(&l->e[i].values);
	}
	free(l->e);
	l->e = NULL;
	l->n = 0;
}

/* A role in one line. */
struct fx_role {
	const char *name;
	const char *version;      /* NULL = "v7" */
	const char *allow_logins;
	const char *allow_labels;
	const char *allow_expr;
	const char *deny_logins;
	const char *deny_labels;
	const char *deny_expr;
	int32_t mode;             /* create_host_user_mode */
	int legacy;               /* legacy create_host_user: 0 unset, 1 true, 2 false */
	const char *shell;
	const char *allow_groups;
	const char *deny_groups;
	const char *lock_mode;    /* options.lock */
	int32_t require_mfa;      /* options.require_session_mfa (RequireMFAType) */
	const char *device_trust; /* options.device_trust_mode */
};

static inline void fx_role_build(const struct fx_role *s, struct tu_role *r)
{
	memset(r, 0, sizeof(*r));
	r->name = strdup(s->name);
	r->version = strdup(s->version ? s->version : "v7");
	r->allow.logins = fx_list(s->allow_logins);
	r->allow.node_labels = fx_labels(s->allow_labels);
	r->allow.node_labels_expression = s->allow_expr ? strdup(s->allow_expr) : NULL;
	r->allow.host_groups = fx_list(s->allow_groups);
	r->deny.logins = fx_list(s->deny_logins);
	r->deny.node_labels = fx_labels(s->deny_labels);
	r->deny.node_labels_expression = s->deny_expr ? strdup(s->deny_expr) : NULL;
	r->deny.host_groups = fx_list(s->deny_groups);
	r->create_host_user_mode = s->mode;
	r->create_host_user = s->legacy == 1 ? TU_BOOL_TRUE : s->legacy == 2 ? TU_BOOL_FALSE : TU_BOOL_UNSET;
	r->create_host_user_default_shell = s->shell ? strdup(s->shell) : NULL;
	r->lock_mode = s->lock_mode ? strdup(s->lock_mode) : NULL;
	r->require_mfa_type = s->require_mfa;
	r->device_trust_mode = s->device_trust ? strdup(s->device_trust) : NULL;
}

static inline void fx_cond_free(struct tu_role_cond *c)
{
	fx_strv_free(&c->logins);
	fx_labels_free(&c->node_labels);
	free(c->node_labels_expression);
	fx_strv_free(&c->host_groups);
	fx_strv_free(&c->host_sudoers);
}

static inline void fx_role_free(struct tu_role *r)
{
	free(r->name);
	free(r->version);
	fx_cond_free(&r->allow);
	fx_cond_free(&r->deny);
	free(r->create_host_user_default_shell);
	free(r->lock_mode);
	free(r->device_trust_mode);
}

/* A user in one line. */
struct fx_user {
	const char *name;
	const char *roles;
	const char *traits;
	bool is_locked;
	int64_t lock_expires; /* 0 = not set */
	int64_t expires;      /* 0 = not set */
};

static inline void fx_user_build(const struct fx_user *s, struct tu_user *u)
{
	memset(u, 0, sizeof(*u));
	u->name = strdup(s->name);
	u->roles = fx_list(s->roles);
	u->traits = fx_labels(s->traits);
	u->is_locked = s->is_locked;
	u->has_lock_expires = s->lock_expires != 0;
	u->lock_expires_usec = s->lock_expires;
	u->has_expires = s->expires != 0;
	u->expires_usec = s->expires;
}

static inline void fx_user_free(struct tu_user *u)
{
	free(u->name);
	fx_strv_free(&u->roles);
	fx_labels_free(&u->traits);
	free(u->locked_message);
}

/* A lock in one line: target "user=bob" / "role=dev" / "login=root" / "server_id=x" / "node=x". */
struct fx_lock {
	const char *name;
	const char *target;
	const char *message;
	int64_t expires; /* 0 = none */
};

static inline void fx_lock_build(const struct fx_lock *s, struct tu_lock *l)
{
	memset(l, 0, sizeof(*l));
	l->name = strdup(s->name);
	l->message = s->message ? strdup(s->message) : NULL;
	l->has_expires = s->expires != 0;
	l->expires_usec = s->expires;
	struct tu_labels t = fx_labels(s->target);
	for (size_t i = 0; i < t.n; i++) {
		char *v = t.e[i].values.n ? strdup(t.e[i].values.v[0]) : NULL;
		const char *k = t.e[i].key;
		char **slot = strcmp(k, "user") == 0 ? &l->target.user :
			      strcmp(k, "role") == 0 ? &l->target.role :
			      strcmp(k, "login") == 0 ? &l->target.login :
			      strcmp(k, "node") == 0 ? &l->target.node :
			      strcmp(k, "server_id") == 0 ? &l->target.server_id :
			      strcmp(k, "device") == 0 ? &l->target.device :
			      strcmp(k, "mfa_device") == 0 ? &l->target.mfa_device : &l->target.access_request;
		free(*slot);
		*slot = v;
	}
	fx_labels_free(&t);
}

static inline void fx_lock_free(struct tu_lock *l)
{
	free(l->name);
	free(l->message);
	free(l->target.user);
	free(l->target.role);
	free(l->target.login);
	free(l->target.node);
	free(l->target.mfa_device);
	free(l->target.windows_desktop);
	free(l->target.access_request);
	free(l->target.device);
	free(l->target.server_id);
}

/* A dataset from NULL-name-terminated spec arrays (any may be NULL). */
static inline void fx_dataset_build(struct tu_dataset *d, const struct fx_user *us, const struct fx_role *rs,
				    const struct fx_lock *ls)
{
	memset(d, 0, sizeof(*d));
	for (size_t i = 0; us && us[i].name; i++) {
		d->users = realloc(d->users, (d->n_users + 1) * sizeof(*d->users));
		fx_user_build(&us[i], &d->users[d->n_users++]);
	}
	for (size_t i = 0; rs && rs[i].name; i++) {
		d->roles = realloc(d->roles, (d->n_roles + 1) * sizeof(*d->roles));
		fx_role_build(&rs[i], &d->roles[d->n_roles++]);
	}
	for (size_t i = 0; ls && ls[i].name; i++) {
		d->locks = realloc(d->locks, (d->n_locks + 1) * sizeof(*d->locks));
		fx_lock_build(&ls[i], &d->locks[d->n_locks++]);
	}
}

static inline void fx_dataset_free(struct tu_dataset *d)
{
	for (size_t i = 0; i < d->n_users; i++)
		fx_user_free(&d->users[i]);
	for (size_t i = 0; i < d->n_roles; i++)
		fx_role_free(&d->roles[i]);
	for (size_t i = 0; i < d->n_locks; i++)
		fx_lock_free(&d->locks[i]);
	free(d->users);
	free(d->roles);
	free(d->locks);
	memset(d, 0, sizeof(*d));
}

/* Joins a list with ',' into buf (for comparisons). */
static inline const char *fx_join(const struct tu_strv *v, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < v->n && o + 1 < size; i++) {
		int w = snprintf(buf + o, size - o, "%s%s", i ? "," : "", v->v[i]);
		if (w < 0)
			break;
		o += (size_t) w;
	}
	return buf;
}
