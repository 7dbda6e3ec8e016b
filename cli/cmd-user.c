/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd-user.c - `teleport-unix user NAME` (SPEC §7): one Teleport user as
 * Auth sees it now: roles, traits, status (login lock, expiry, locks in
 * force that target it), and what it gets on this host: the logins its
 * roles allow here and host-user creation.  Always online.
 * Exit 0, 1 when the user does not exist, 2 on errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "cli.h"
#include "ctx.h"
#include "decide.h"
#include "err.h"
#include "model.h"
#include "rbac.h"

#define MAX_ROLES 1024 /* a user holding more roles than this is refused, not truncated */

struct view {
	struct tu_user user;
	struct tu_dataset d;    /* the user's roles and the locks in force */
	struct tu_strv missing; /* role names Auth does not know */
	struct tu_strv logins;
	struct tu_host_user hu;
	struct tu_host host;
	const struct tu_lock **locks; /* those of d.locks that apply */
	size_t n_locks;
	struct tu_strv refused;       /* logins here an OpenSSH login is refused, parallel to: */
	struct tu_strv refused_why;
};

static void view_done(struct view *v)
{
	tu_user_done(&v->user);
	tu_dataset_done(&v->d);
	tu_strv_done(&v->missing);
	tu_strv_done(&v->logins);
	tu_host_user_done(&v->hu);
	tu_strv_done(&v->refused);
	tu_strv_done(&v->refused_why);
	free(v->locks);
}

/*
 * Which of the logins here a login without Teleport's proofs (a password,
 * plain key, console or su login) is refused, and why (a lock, per-session
 * MFA or a trusted device): the decision `check NAME LOGIN` would give.
 * Caller has put the user in v->d.
 */
static int find_refused(struct view *v, int64_t now, struct tu_err *e)
{
	const struct tu_decide_opts o = {0};

	for (size_t i = 0; i < v->logins.n; i++) {
		const struct tu_login_req req = {.login = v->logins.v[i], .explicit_user = v->user.name};
		struct tu_verdict vd;
		int r = tu_decide_pure(&v->d, &v->host, &o, &req, now, &vd, e);

		if (r < 0)
			return r;
		if (vd.kind == TU_VERDICT_ALLOW)
			continue;
		if (tu_strv_push(&v->refused, v->logins.v[i]) < 0 || tu_strv_push(&v->refused_why, vd.reason) < 0)
			return tu_err_set(e, -ENOMEM, "out of memory");
	}
	return 0;
}

/* The cluster's requirements, "" when none (or the preference is not known). */
static void cluster_line(const struct tu_auth_pref *p, char *buf, size_t size)
{
	char b[64];

	buf[0] = '\0';
	if (!p->known)
		return;
	if (p->require_mfa_type != 0)
		snprintf(buf, size, "per-session MFA");
	if (tu_decide_device_required(p->device_trust_mode))
		snprintf(buf + strlen(buf), size - strlen(buf), "%sa trusted device (%s)", buf[0] ? ", " : "",
			 tu_sanitize(p->device_trust_mode, b, sizeof(b)));
	if (p->locking_mode && p->locking_mode[0])
		snprintf(buf + strlen(buf), size - strlen(buf), "%slocking_mode %s", buf[0] ? ", " : "",
			 tu_sanitize(p->locking_mode, b, sizeof(b)));
}

static const char *fmt_utc(int64_t usec, char *buf, size_t size)
{
	time_t s = (time_t) (usec / 1000000);
	struct tm tm;

	if (!gmtime_r(&s, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "@%" PRId64, usec / 1000000);
	return buf;
}

static bool strv_has(const struct tu_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], s) == 0)
			return true;
	return false;
}

static bool set(const char *s)
{
	return s && *s;
}

/* Whether lock l concerns this user here: any target field equal to the
 * user, one of its roles, one of its logins here, or this host (Teleport
 * checks single-field targets, so one matching field is enough). */
static bool lock_applies(const struct tu_lock *l, const struct view *v)
{
	const struct tu_lock_target *t = &l->target;

	if (l->unreadable)
		return true; /* whom it targets cannot be told: everyone (decide.c) */
	if (set(t->user) && strcmp(t->user, v->user.name) == 0)
		return true;
	if (set(t->role) && strv_has(&v->user.roles, t->role))
		return true;
	if (set(t->login) && strv_has(&v->logins, t->login))
		return true;
	return tu_decide_lock_names_host(t->server_id, &v->host) || tu_decide_lock_names_host(t->node, &v->host);
}

static const char *mode_name(int32_t m)
{
	switch (m) {
	case TU_HOST_USER_MODE_OFF:
		return "off";
	case TU_HOST_USER_MODE_DROP:
		return "drop";
	case TU_HOST_USER_MODE_KEEP:
		return "keep";
	case TU_HOST_USER_MODE_INSECURE_DROP:
		return "insecure-drop";
	default:
		return "unspecified";
	}
}

enum status {
	ST_ACTIVE,
	ST_EXPIRED,
	ST_LOCKED,
};

static enum status user_status(const struct tu_user *u, int64_t now)
{
	if (u->has_expires && u->expires_usec <= now)
		return ST_EXPIRED;
	/* a login lock counts while LockExpires is in the future (Teleport's WithUserLock) */
	if (u->is_locked && u->has_lock_expires && u->lock_expires_usec > now)
		return ST_LOCKED;
	return ST_ACTIVE;
}

static const char *const status_names[] = {"active", "expired", "locked"};

static void print_list(const char *label, const struct tu_strv *v)
{
	char b[256];

	printf("%s", label);
	if (v->n == 0)
		printf("(none)");
	for (size_t i = 0; i < v->n; i++)
		printf("%s%s", i ? ", " : "", tu_sanitize(v->v[i], b, sizeof(b)));
	printf("\n");
}

static void print_text(const struct view *v, int64_t now)
{
	const struct tu_user *u = &v->user;
	char b[256], t[64];
	enum status st = user_status(u, now);

	printf("User:         %s\n", tu_sanitize(u->name, b, sizeof(b)));
	print_list("Roles:        ", &u->roles);
	if (v->missing.n)
		print_list("Unknown roles:", &v->missing);
	printf("Traits:%s\n", u->traits.n ? "" : "       (none)");
	for (size_t i = 0; i < u->traits.n; i++) {
		char label[160];
		snprintf(label, sizeof(label),
			 "  %s: ", tu_sanitize(u->traits.e[i].key, b, sizeof(b)));
		print_list(label, &u->traits.e[i].values);
	}
	printf("Status:       %s", status_names[st]);
	if (st == ST_EXPIRED)
		printf(" since %s", fmt_utc(u->expires_usec, t, sizeof(t)));
	if (st == ST_LOCKED) {
		printf(" until %s", fmt_utc(u->lock_expires_usec, t, sizeof(t)));
		if (set(u->locked_message))
			printf(" (%s)", tu_sanitize(u->locked_message, b, sizeof(b)));
	}
	if (st == ST_ACTIVE && u->has_expires)
		printf(" (expires %s)", fmt_utc(u->expires_usec, t, sizeof(t)));
	if (u->is_bot)
		printf(" (bot)");
	printf("\n");
	printf("Locks:%s\n", v->n_locks ? "" : "        (none in force)");
	for (size_t i = 0; i < v->n_locks; i++) {
		const struct tu_lock *l = v->locks[i];
		printf("  %s", tu_sanitize(l->name, b, sizeof(b)));
		if (set(l->message))
			printf(": %s", tu_sanitize(l->message, b, sizeof(b)));
		if (l->has_expires)
			printf(" (until %s)", fmt_utc(l->expires_usec, t, sizeof(t)));
		printf("\n");
	}
	printf("Host:         %s", tu_sanitize(v->host.name, b, sizeof(b)));
	if (set(v->host.id))
		printf(" (%s)", tu_sanitize(v->host.id, b, sizeof(b)));
	printf("\n");
	print_list("Logins here:  ", &v->logins);
	for (size_t i = 0; i < v->refused.n; i++) {
		char why[600];
		printf("%s%s: %s\n", i ? "              " : "Refused:      ", tu_sanitize(v->refused.v[i], b, sizeof(b)),
		       tu_sanitize(v->refused_why.v[i], why, sizeof(why)));
	}
	{
		char cl[200];
		cluster_line(&v->d.auth_pref, cl, sizeof(cl));
		if (cl[0])
			printf("Cluster:      requires %s\n", cl);
	}
	if (v->hu.enabled) {
		printf("Host user:    created (mode %s)", mode_name(v->hu.mode));
		if (v->hu.shell)
			printf(", shell %s", tu_sanitize(v->hu.shell, b, sizeof(b)));
		printf("\n");
		print_list("Host groups:  ", &v->hu.groups);
	} else {
		printf(
		    "Host user:    not created (host user creation is off for its roles on this host)\n");
	}
}

static void json_strv(struct json *j, const char *key, const struct tu_strv *v)
{
	json_key_arr_begin(j, key);
	for (size_t i = 0; i < v->n; i++)
		json_arr_str(j, v->v[i]);
	json_arr_end(j);
}

static void print_json(const struct view *v, int64_t now)
{
	const struct tu_user *u = &v->user;
	enum status st = user_status(u, now);
	struct json j;
	char t[64];

	json_begin(&j, stdout);
	json_key_str(&j, "name", u->name);
	json_strv(&j, "roles", &u->roles);
	json_strv(&j, "unknown_roles", &v->missing);
	json_key_obj_begin(&j, "traits");
	for (size_t i = 0; i < u->traits.n; i++)
		json_strv(&j, u->traits.e[i].key, &u->traits.e[i].values);
	json_obj_end(&j);
	json_key_str(&j, "status", status_names[st]);
	json_key_bool(&j, "is_bot", u->is_bot);
	json_key_str(&j, "expires", u->has_expires ? fmt_utc(u->expires_usec, t, sizeof(t)) : NULL);
	json_key_bool(&j, "login_locked", st == ST_LOCKED);
	json_key_str(&j, "locked_message", st == ST_LOCKED ? u->locked_message : NULL);
	json_key_str(&j, "lock_expires",
		     st == ST_LOCKED ? fmt_utc(u->lock_expires_usec, t, sizeof(t)) : NULL);
	json_key_arr_begin(&j, "locks");
	for (size_t i = 0; i < v->n_locks; i++) {
		const struct tu_lock *l = v->locks[i];
		json_key_obj_begin(&j, NULL);
		json_key_str(&j, "name", l->name);
		json_key_str(&j, "message", l->message);
		json_key_str(&j, "expires",
			     l->has_expires ? fmt_utc(l->expires_usec, t, sizeof(t)) : NULL);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_key_obj_begin(&j, "host");
	json_key_str(&j, "name", v->host.name);
	json_key_str(&j, "id", v->host.id);
	json_obj_end(&j);
	json_strv(&j, "logins", &v->logins);
	json_key_arr_begin(&j, "refused");
	for (size_t i = 0; i < v->refused.n; i++) {
		json_key_obj_begin(&j, NULL);
		json_key_str(&j, "login", v->refused.v[i]);
		json_key_str(&j, "reason", v->refused_why.v[i]);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	if (v->d.auth_pref.known) {
		const struct tu_auth_pref *p = &v->d.auth_pref;
		json_key_obj_begin(&j, "cluster");
		json_key_bool(&j, "require_session_mfa", p->require_mfa_type != 0);
		json_key_str(&j, "device_trust_mode", p->device_trust_mode ? p->device_trust_mode : "");
		json_key_str(&j, "locking_mode", p->locking_mode ? p->locking_mode : "");
		json_obj_end(&j);
	} else {
		json_key_str(&j, "cluster", NULL);
	}
	json_key_obj_begin(&j, "host_user");
	json_key_bool(&j, "enabled", v->hu.enabled);
	json_key_str(&j, "mode", v->hu.enabled ? mode_name(v->hu.mode) : NULL);
	if (v->hu.enabled) {
		json_strv(&j, "groups", &v->hu.groups);
	} else {
		json_key_arr_begin(&j, "groups");
		json_arr_end(&j);
	}
	json_key_str(&j, "shell", v->hu.shell);
	json_obj_end(&j);
	json_end(&j);
}

/* Fetches the user's roles one by one (GetRole needs less than ListRoles). */
static int fetch_roles(struct tu_auth *auth, struct view *v, struct tu_err *e)
{
	size_t n = v->user.roles.n;

	if (n > MAX_ROLES)
		return tu_err_set(e, -EMSGSIZE, "user has %zu roles, more than %u", n, MAX_ROLES);
	v->d.roles = calloc(n ? n : 1, sizeof(*v->d.roles));
	if (!v->d.roles)
		return tu_err_set(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		tu_err_clear(e);
		int r = tu_auth_get_role(auth, v->user.roles.v[i], &v->d.roles[v->d.n_roles], e);
		if (r == -ENOENT) {
			if (tu_strv_push(&v->missing, v->user.roles.v[i]) < 0)
				return tu_err_set(e, -ENOMEM, "out of memory");
			continue;
		}
		if (r < 0)
			return r;
		v->d.n_roles++;
	}
	return 0;
}

int cmd_user(struct cli *c, int argc, char **argv)
{
	struct tu_ctx *ctx = NULL;
	struct tu_auth *auth = NULL;
	struct view v = {0};
	struct tu_err e;
	int r, ret = CLI_EXIT_ERROR;

	if (argc != 2 || !argv[1][0])
		return cli_errorf(
		    c, "user: expected one Teleport user name (usage: teleport-unix user NAME)");
	r = cli_open_ctx(c, &ctx);
	if (r != 0)
		return r;

	int64_t now = tu_now_usec();
	tu_err_clear(&e);
	r = tu_ctx_auth(ctx, now, &auth, &e);
	if (r < 0) {
		ret = cli_error(c, "user: auth", &e);
		goto out;
	}
	tu_err_clear(&e);
	r = tu_auth_get_user(auth, argv[1], &v.user, &e);
	if (r == -ENOENT) {
		cli_error(c, "user", &e);
		ret = CLI_EXIT_NO;
		goto out;
	}
	if (r < 0) {
		ret = cli_error(c, "user", &e);
		goto out;
	}
	r = fetch_roles(auth, &v, &e);
	if (r < 0) {
		ret = cli_error(c, "user: roles", &e);
		goto out;
	}
	tu_err_clear(&e);
	r = tu_auth_get_locks(auth, &v.d.locks, &v.d.n_locks, &e);
	if (r < 0) {
		ret = cli_error(c, "user: locks", &e);
		goto out;
	}
	tu_err_clear(&e);
	r = tu_auth_get_auth_pref(auth, &v.d.auth_pref, &e);
	if (r < 0) {
		ret = cli_error(c, "user: auth preference", &e);
		goto out;
	}
	tu_err_clear(&e);
	r = tu_ctx_host(ctx, now, &v.host, &e);
	if (r < 0) {
		ret = cli_error(c, "user: host identity", &e);
		goto out;
	}
	/* Only this user: a dataset of one. */
	v.d.users = &v.user;
	v.d.n_users = 1;
	tu_err_clear(&e);
	r = tu_rbac_user_logins(&v.d, &v.user, &v.host, &v.logins, &e);
	if (r >= 0) {
		tu_err_clear(&e);
		r = tu_rbac_host_user(&v.d, &v.user, &v.host, &v.hu, &e);
	}
	if (r >= 0) {
		tu_err_clear(&e);
		r = find_refused(&v, now, &e);
	}
	v.d.users = NULL;
	v.d.n_users = 0;
	if (r < 0) {
		ret = cli_error(c, "user: access on this host", &e);
		goto out;
	}
	v.locks = calloc(v.d.n_locks ? v.d.n_locks : 1, sizeof(*v.locks));
	if (!v.locks) {
		ret = cli_errorf(c, "user: out of memory");
		goto out;
	}
	for (size_t i = 0; i < v.d.n_locks; i++)
		if (lock_applies(&v.d.locks[i], &v))
			v.locks[v.n_locks++] = &v.d.locks[i];

	if (c->json)
		print_json(&v, now);
	else
		print_text(&v, now);
	ret = CLI_EXIT_OK;
out:
	view_done(&v);
	tu_ctx_free(ctx);
	return ret;
}
