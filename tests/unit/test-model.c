/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-model.c - model.c against the golden Teleport wire vectors
 * ($TU_VECTORS_DIR, shared/vectors/teleport) and hostile input.
 *
 * Every file of the vector directory is handled (an unknown one fails the
 * test): each .bin is decoded as the message type its .txtpb header names
 * and the decoded model is compared field by field with the values read
 * from the .txtpb at run time (tests/unit/txtpb.c); each frame of each
 * .grpc file likewise; request .bin files must equal our encoders' output
 * for the values in their .txtpb.  Then: every bit flip and truncation of
 * every response vector decodes or fails cleanly, limits (size, counts,
 * memory, groups), exact error messages, unknown-field skipping, and
 * encode -> parse round trips.
 * TU_VECTORS_DIR unset: vector tests are skipped; set but unreadable: fail.
 */
#include <dirent.h>
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
#include "err.h"
#include "model.h"
#include "txtpb.h"

#define GO_ZERO_TIME_SEC (-62135596800LL)
#define MAX_VECTOR       (1u << 20)

/* ---------------------------------------------------------------------- */
/* file helpers                                                           */

static const char *vectors_dir(void)
{
	const char *d = getenv("TU_VECTORS_DIR");

	return d && *d ? d : NULL;
}

/* Reads dir/name into a malloc'ed buffer (NUL-terminated for text). */
static uint8_t *slurp(const char *dir, const char *name, size_t *ret_len)
{
	char path[PATH_MAX];
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t) st.st_size > MAX_VECTOR) {
		close(fd);
		return NULL;
	}
	buf = malloc((size_t) st.st_size + 1);
	assert_non_null(buf);
	while (got < (size_t) st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t) n;
	}
	close(fd);
	assert_int_equal(got, (size_t) st.st_size);
	buf[got] = 0;
	*ret_len = got;
	return buf;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && strcmp(s + a - b, suf) == 0;
}

/* A parsed .txtpb and its declared message type. */
struct txt {
	char type[128];
	struct tnode root;
};

static bool load_txt(const char *dir, const char *stem, struct txt *ret)
{
	char name[NAME_MAX + 16], err[256];
	_cleanup_free_ uint8_t *text = NULL;
	size_t len;

	snprintf(name, sizeof(name), "%s.txtpb", stem);
	text = slurp(dir, name, &len);
	if (!text)
		return false;
	if (txtpb_message_type((const char *) text, ret->type, sizeof(ret->type)) < 0)
		fail_msg("%s: no '# proto-message:' header", name);
	if (txtpb_parse((const char *) text, len, &ret->root, err, sizeof(err)) < 0)
		fail_msg("%s: %s", name, err);
	return true;
}

/* ---------------------------------------------------------------------- */
/* txtpb -> expected values                                               */

static int64_t num(const char *s, const char *what)
{
	char *end = NULL;
	long long v;

	assert_non_null(s);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != 0)
		fail_msg("%s: not an integer: %s", what, s);
	return v;
}

static bool boolean(const char *s)
{
	return s && (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "1") == 0 ||
		     strcmp(s, "t") == 0);
}

/* Timestamp node -> (has, usec) with Go's zero-time rule. */
static void expect_time(const struct tnode *ts, bool *has, int64_t *usec)
{
	const char *s, *ns;
	int64_t sec = 0, nanos = 0;

	*has = false;
	*usec = 0;
	if (!ts)
		return;
	s = txtpb_str(ts, "seconds");
	ns = txtpb_str(ts, "nanos");
	if (s)
		sec = num(s, "seconds");
	if (ns)
		nanos = num(ns, "nanos");
	if (sec <= GO_ZERO_TIME_SEC)
		return;
	*has = true;
	*usec = sec * 1000000 + nanos / 1000;
}

static void check_opt_str(const char *got, const char *want, const char *what)
{
	if (!want || !*want) {
		if (got)
			fail_msg("%s: expected unset, got \"%s\"", what, got);
		return;
	}
	if (!got)
		fail_msg("%s: expected \"%s\", got NULL", what, want);
	if (strcmp(got, want) != 0)
		fail_msg("%s: expected \"%s\", got \"%s\"", what, want, got);
}

static void check_strv(const struct tu_strv *v, const struct tnode *n, const char *path)
{
	const struct tnode *items[256];
	size_t cnt = txtpb_find(n, path, items, 256);

	assert_true(cnt <= 256);
	if (v->n != cnt)
		fail_msg("%s: %zu values, txtpb has %zu", path, v->n, cnt);
	for (size_t i = 0; i < cnt; i++)
		if (strcmp(v->v[i], items[i]->val) != 0)
			fail_msg("%s[%zu]: \"%s\" != \"%s\"", path, i, v->v[i], items[i]->val);
}

/* A wrappers.LabelValues node (map<string, StringValues> Values = 1). */
static void check_labels(const struct tu_labels *l, const struct tnode *n, const char *path)
{
	const struct tnode *lv = txtpb_get(n, path), *entries[256];
	size_t cnt = lv ? txtpb_find(lv, "Values", entries, 256) : 0;

	assert_true(cnt <= 256);
	if (l->n != cnt)
		fail_msg("%s: %zu keys, txtpb has %zu", path, l->n, cnt);
	for (size_t i = 0; i < cnt; i++) {
		const char *key = txtpb_str(entries[i], "key");
		const struct tu_strv *got;

		assert_non_null(key);
		got = tu_labels_get(l, key);
		if (!got)
			fail_msg("%s: key \"%s\" missing", path, key);
		check_strv(got, entries[i], "value.Values");
	}
}

static void check_user(const struct tu_user *u, const struct tnode *t)
{
	const struct tnode *labels[64];
	bool has, bot = false;
	int64_t usec;
	size_t nl = txtpb_find(t, "Metadata.Labels", labels, 64);

	check_opt_str(u->name, txtpb_str(t, "Metadata.Name"), "user name");
	check_strv(&u->roles, t, "Spec.Roles");
	check_labels(&u->traits, t, "Spec.Traits");
	for (size_t i = 0; i < nl && i < 64; i++) {
		const char *k = txtpb_str(labels[i], "key");
		if (k && strcmp(k, "teleport.internal/bot") == 0)
			bot = true;
	}
	assert_int_equal(u->is_bot, bot);
	assert_int_equal(u->is_locked, boolean(txtpb_str(t, "Spec.Status.IsLocked")));
	check_opt_str(u->locked_message, txtpb_str(t, "Spec.Status.LockedMessage"),
		      "locked_message");
	expect_time(txtpb_get(t, "Spec.Status.LockExpires"), &has, &usec);
	assert_int_equal(u->has_lock_expires, has);
	assert_int_equal(u->lock_expires_usec, usec);
	/* Expiry(): Metadata.Expires if set and non-zero, else Spec.Expires. */
	expect_time(txtpb_get(t, "Metadata.Expires"), &has, &usec);
	if (!has)
		expect_time(txtpb_get(t, "Spec.Expires"), &has, &usec);
	assert_int_equal(u->has_expires, has);
	assert_int_equal(u->expires_usec, usec);
}

static const struct {
	const char *name;
	int value;
} host_user_modes[] = {
    {"HOST_USER_MODE_UNSPECIFIED", 0},   {"HOST_USER_MODE_OFF", 1},
    {"HOST_USER_MODE_DROP", 2},          {"HOST_USER_MODE_KEEP", 3},
    {"HOST_USER_MODE_INSECURE_DROP", 4},
    /* types.RequireMFAType */
    {"OFF", 0}, {"SESSION", 1}, {"SESSION_AND_HARDWARE_KEY", 2}, {"HARDWARE_KEY_TOUCH", 3},
    {"HARDWARE_KEY_PIN", 4}, {"HARDWARE_KEY_TOUCH_AND_PIN", 5},
};

static int enum_value(const char *s)
{
	if (!s)
		return 0;
	for (size_t i = 0; i < ELEMENTSOF(host_user_modes); i++)
		if (strcmp(s, host_user_modes[i].name) == 0)
			return host_user_modes[i].value;
	return (int) num(s, "enum");
}

static void check_cond(const struct tu_role_cond *c, const struct tnode *t, const char *which)
{
	const struct tnode *n = txtpb_get(t, which);
	static const struct tnode empty = {0};

	if (!n)
		n = &empty;
	check_strv(&c->logins, n, "Logins");
	check_labels(&c->node_labels, n, "NodeLabels");
	check_opt_str(c->node_labels_expression, txtpb_str(n, "NodeLabelsExpression"),
		      "NodeLabelsExpression");
	check_strv(&c->host_groups, n, "HostGroups");
	check_strv(&c->host_sudoers, n, "HostSudoers");
}

static void check_role(const struct tu_role *r, const struct tnode *t)
{
	const struct tnode *chu = txtpb_get(t, "Spec.Options.CreateHostUser");
	const char *ttl = txtpb_str(t, "Spec.Options.MaxSessionTTL");

	check_opt_str(r->name, txtpb_str(t, "Metadata.Name"), "role name");
	check_opt_str(r->version, txtpb_str(t, "Version"), "role version");
	check_cond(&r->allow, t, "Spec.Allow");
	check_cond(&r->deny, t, "Spec.Deny");
	assert_int_equal(r->create_host_user_mode,
			 enum_value(txtpb_str(t, "Spec.Options.CreateHostUserMode")));
	if (!chu)
		assert_int_equal(r->create_host_user, TU_BOOL_UNSET);
	else
		assert_int_equal(r->create_host_user,
				 boolean(txtpb_str(chu, "Value")) ? TU_BOOL_TRUE : TU_BOOL_FALSE);
	check_opt_str(r->create_host_user_default_shell,
		      txtpb_str(t, "Spec.Options.CreateHostUserDefaultShell"),
		      "CreateHostUserDefaultShell");
	check_opt_str(r->lock_mode, txtpb_str(t, "Spec.Options.Lock"), "Options.Lock");
	check_opt_str(r->device_trust_mode, txtpb_str(t, "Spec.Options.DeviceTrustMode"),
		      "Options.DeviceTrustMode");
	{
		int mfa = enum_value(txtpb_str(t, "Spec.Options.RequireMFAType"));
		const char *legacy = txtpb_str(t, "Spec.Options.RequireSessionMFA");

		if (mfa == 0 && legacy && boolean(legacy))
			mfa = 1;
		assert_int_equal(r->require_mfa_type, mfa);
	}
	assert_int_equal(r->max_session_ttl_nsec, ttl ? num(ttl, "MaxSessionTTL") : 0);
}

static void check_target(const struct tu_lock_target *g, const struct tnode *t)
{
	check_opt_str(g->user, txtpb_str(t, "User"), "Target.User");
	check_opt_str(g->role, txtpb_str(t, "Role"), "Target.Role");
	check_opt_str(g->login, txtpb_str(t, "Login"), "Target.Login");
	check_opt_str(g->node, txtpb_str(t, "Node"), "Target.Node");
	check_opt_str(g->mfa_device, txtpb_str(t, "MFADevice"), "Target.MFADevice");
	check_opt_str(g->windows_desktop, txtpb_str(t, "WindowsDesktop"), "Target.WindowsDesktop");
	check_opt_str(g->access_request, txtpb_str(t, "AccessRequest"), "Target.AccessRequest");
	check_opt_str(g->device, txtpb_str(t, "Device"), "Target.Device");
	check_opt_str(g->server_id, txtpb_str(t, "ServerID"), "Target.ServerID");
}

static void check_lock(const struct tu_lock *l, const struct tnode *t)
{
	static const struct tnode empty = {0};
	const struct tnode *target = txtpb_get(t, "Spec.Target");
	bool has;
	int64_t usec;

	check_opt_str(l->name, txtpb_str(t, "Metadata.Name"), "lock name");
	check_target(&l->target, target ? target : &empty);
	check_opt_str(l->message, txtpb_str(t, "Spec.Message"), "lock message");
	expect_time(txtpb_get(t, "Spec.Expires"), &has, &usec);
	assert_int_equal(l->has_expires, has);
	assert_int_equal(l->expires_usec, usec);
}

static void check_ping(const struct tu_ping *p, const struct tnode *t)
{
	const char *s;

	s = txtpb_str(t, "ClusterName");
	assert_string_equal(p->cluster_name, s ? s : "");
	s = txtpb_str(t, "ServerVersion");
	assert_string_equal(p->server_version, s ? s : "");
	s = txtpb_str(t, "ProxyPublicAddr");
	assert_string_equal(p->proxy_public_addr, s ? s : "");
	s = txtpb_str(t, "RemoteAddr");
	assert_string_equal(p->remote_addr, s ? s : "");
}

/* ---------------------------------------------------------------------- */
/* dispatch by message type                                               */

enum kind {
	K_NONE,
	K_USER,
	K_ROLE,
	K_LOCK,
	K_PING,
	K_GET_USER_RESP,
	K_LIST_USERS_RESP,
	K_LIST_ROLES_RESP,
	K_GET_ROLES_RESP,
	K_GET_LOCKS_RESP,
	K_REQUEST,
};

static const struct {
	const char *type;
	enum kind kind;
} kinds[] = {
    {"types.UserV2", K_USER},
    {"types.RoleV6", K_ROLE},
    {"types.LockV2", K_LOCK},
    {"proto.PingResponse", K_PING},
    {"teleport.users.v1.GetUserResponse", K_GET_USER_RESP},
    {"teleport.users.v1.ListUsersResponse", K_LIST_USERS_RESP},
    {"proto.ListRolesResponse", K_LIST_ROLES_RESP},
    {"proto.GetRolesResponse", K_GET_ROLES_RESP},
    {"proto.GetLocksResponse", K_GET_LOCKS_RESP},
    {"proto.PingRequest", K_REQUEST},
    {"proto.GetUserRequest", K_REQUEST},
    {"proto.GetRoleRequest", K_REQUEST},
    {"proto.GetLocksRequest", K_REQUEST},
    {"proto.ListRolesRequest", K_REQUEST},
    {"teleport.users.v1.GetUserRequest", K_REQUEST},
    {"teleport.users.v1.ListUsersRequest", K_REQUEST},
};

static enum kind kind_of(const char *type)
{
	for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
		if (strcmp(kinds[i].type, type) == 0)
			return kinds[i].kind;
	return K_NONE;
}

/*
 * Decodes buf as kind; with t non-NULL compares with the txtpb.  Returns the
 * parser's result (0 or negative errno) and fills err.  Frees everything.
 */
static int decode(enum kind k, const uint8_t *buf, size_t len, const struct tnode *t,
		  struct tu_err *err)
{
	const struct tnode *items[64];
	size_t n = 0, cnt;
	char *next = NULL;
	int r = -EINVAL;

	tu_err_clear(err);
	switch (k) {
	case K_USER: {
		struct tu_user u = {0};
		r = tu_model_parse_user(buf, len, &u, err);
		if (r == 0 && t)
			check_user(&u, t);
		tu_user_done(&u);
		break;
	}
	case K_ROLE: {
		struct tu_role ro = {0};
		r = tu_model_parse_role(buf, len, &ro, err);
		if (r == 0 && t)
			check_role(&ro, t);
		tu_role_done(&ro);
		break;
	}
	case K_LOCK: {
		struct tu_lock l = {0};
		r = tu_model_parse_lock(buf, len, &l, err);
		if (r == 0 && t)
			check_lock(&l, t);
		tu_lock_done(&l);
		break;
	}
	case K_PING: {
		struct tu_ping p = {0};
		r = tu_model_parse_ping(buf, len, &p, err);
		if (r == 0 && t)
			check_ping(&p, t);
		tu_ping_done(&p);
		break;
	}
	case K_GET_USER_RESP: {
		struct tu_user u = {0};
		r = tu_model_parse_get_user_response(buf, len, &u, err);
		if (r == 0 && t) {
			const struct tnode *ut = txtpb_get(t, "user");
			assert_non_null(ut);
			check_user(&u, ut);
		}
		tu_user_done(&u);
		break;
	}
	case K_LIST_USERS_RESP: {
		struct tu_user *v = NULL;
		r = tu_model_parse_list_users_append(buf, len, &v, &n, &next, err);
		if (r == 0 && t) {
			cnt = txtpb_find(t, "users", items, 64);
			assert_int_equal(n, cnt);
			for (size_t i = 0; i < n; i++)
				check_user(&v[i], items[i]);
			check_opt_str(next, txtpb_str(t, "next_page_token"), "next_page_token");
		}
		tu_users_free(v, n);
		break;
	}
	case K_LIST_ROLES_RESP:
	case K_GET_ROLES_RESP: {
		struct tu_role *v = NULL;
		if (k == K_LIST_ROLES_RESP)
			r = tu_model_parse_list_roles_append(buf, len, &v, &n, &next, err);
		else
			r = tu_model_parse_get_roles_append(buf, len, &v, &n, err);
		if (r == 0 && t) {
			cnt = txtpb_find(t, "Roles", items, 64);
			assert_int_equal(n, cnt);
			for (size_t i = 0; i < n; i++)
				check_role(&v[i], items[i]);
			if (k == K_LIST_ROLES_RESP)
				check_opt_str(next, txtpb_str(t, "NextKey"), "NextKey");
		}
		tu_roles_free(v, n);
		break;
	}
	case K_GET_LOCKS_RESP: {
		struct tu_lock *v = NULL;
		r = tu_model_parse_get_locks_append(buf, len, &v, &n, err);
		if (r == 0 && t) {
			cnt = txtpb_find(t, "Locks", items, 64);
			assert_int_equal(n, cnt);
			for (size_t i = 0; i < n; i++)
				check_lock(&v[i], items[i]);
		}
		tu_locks_free(v, n);
		break;
	}
	default:
		fail_msg("no decoder for kind %d", k);
	}
	free(next);
	return r;
}

/* Encodes the request described by the txtpb t of type `type` with our encoders. */
static int encode_request(const char *type, const struct tnode *t, uint8_t **buf, size_t *len)
{
	const struct tnode *items[64];
	struct tu_lock_target targets[64] = {0};
	size_t n;
	const char *s;

	if (strcmp(type, "proto.PingRequest") == 0) {
		assert_int_equal(t->n, 0); /* no fields: the request is 0 bytes */
		*buf = malloc(1);
		*len = 0;
		return 0;
	}
	if (strcmp(type, "proto.GetUserRequest") == 0) {
		assert_null(txtpb_get(t, "WithSecrets"));
		return tu_model_encode_get_user_request(txtpb_str(t, "Name"), true, buf, len);
	}
	if (strcmp(type, "teleport.users.v1.GetUserRequest") == 0) {
		assert_null(txtpb_get(t, "with_secrets"));
		assert_null(txtpb_get(t, "current_user"));
		return tu_model_encode_get_user_request(txtpb_str(t, "name"), false, buf, len);
	}
	if (strcmp(type, "proto.GetRoleRequest") == 0)
		return tu_model_encode_get_role_request(txtpb_str(t, "Name"), buf, len);
	if (strcmp(type, "proto.ListRolesRequest") == 0) {
		s = txtpb_str(t, "Limit");
		return tu_model_encode_list_roles_request(s ? (int32_t) num(s, "Limit") : 0,
							  txtpb_str(t, "StartKey"), buf, len);
	}
	if (strcmp(type, "teleport.users.v1.ListUsersRequest") == 0) {
		s = txtpb_str(t, "page_size");
		return tu_model_encode_list_users_request(s ? (int32_t) num(s, "page_size") : 0,
							  txtpb_str(t, "page_token"), buf, len);
	}
	if (strcmp(type, "proto.GetLocksRequest") == 0) {
		n = txtpb_find(t, "Targets", items, 64);
		assert_true(n <= 64);
		for (size_t i = 0; i < n; i++) {
			targets[i].user = (char *) txtpb_str(items[i], "User");
			targets[i].role = (char *) txtpb_str(items[i], "Role");
			targets[i].login = (char *) txtpb_str(items[i], "Login");
			targets[i].node = (char *) txtpb_str(items[i], "Node");
			targets[i].mfa_device = (char *) txtpb_str(items[i], "MFADevice");
			targets[i].windows_desktop = (char *) txtpb_str(items[i], "WindowsDesktop");
			targets[i].access_request = (char *) txtpb_str(items[i], "AccessRequest");
			targets[i].device = (char *) txtpb_str(items[i], "Device");
			targets[i].server_id = (char *) txtpb_str(items[i], "ServerID");
		}
		return tu_model_encode_get_locks_request(
		    n ? targets : NULL, n, boolean(txtpb_str(t, "InForceOnly")), buf, len);
	}
	fail_msg("no encoder for %s", type);
	return -EINVAL;
}

/*
 * Every bit flip and every truncation of buf: success or a clean error with
 * a message; never a crash or leak (ASan/valgrind runs make the latter visible).
 */
static void mutate(enum kind k, const uint8_t *buf, size_t len, const char *name)
{
	_cleanup_free_ uint8_t *m = malloc(len ? len : 1);
	struct tu_err err;
	size_t ok = 0, bad = 0;

	assert_non_null(m);
	for (size_t i = 0; i < len * 8; i++) {
		int r;
		memcpy(m, buf, len);
		m[i / 8] ^= (uint8_t) (1u << (i % 8));
		r = decode(k, m, len, NULL, &err);
		if (r < 0) {
			if (r != -EBADMSG && r != -EMSGSIZE)
				fail_msg("%s bit %zu: unexpected %d", name, i, r);
			if (!err.msg[0])
				fail_msg("%s bit %zu: error without message", name, i);
			bad++;
		} else {
			ok++;
		}
	}
	for (size_t l = 0; l < len; l++) {
		int r = decode(k, buf, l, NULL, &err);
		if (r < 0 && ((r != -EBADMSG && r != -EMSGSIZE) || !err.msg[0]))
			fail_msg("%s truncated to %zu: %d \"%s\"", name, l, r, err.msg);
	}
	/* Flips in names, lengths and tags must be caught somewhere. */
	if (len > 16)
		assert_true(bad > 0);
	(void) ok;
}

/* ---------------------------------------------------------------------- */
/* vector tests                                                           */

struct seen {
	size_t bin, grpc, txt, frames, requests, mutated;
};

static void do_bin(const char *dir, const char *stem, struct seen *s)
{
	_cleanup_free_ uint8_t *buf = NULL, *enc = NULL;
	char name[NAME_MAX + 16];
	struct txt t = {0};
	struct tu_err err;
	size_t len, elen = 0;
	enum kind k;
	int r;

	snprintf(name, sizeof(name), "%s.bin", stem);
	buf = slurp(dir, name, &len);
	assert_non_null(buf);
	if (!load_txt(dir, stem, &t))
		fail_msg("%s has no %s.txtpb", name, stem);
	k = kind_of(t.type);
	if (k == K_NONE)
		fail_msg("%s: unknown message type %s", name, t.type);
	if (k == K_REQUEST) {
		r = encode_request(t.type, &t.root, &enc, &elen);
		if (r < 0)
			fail_msg("%s: encoder failed %d", name, r);
		if (elen != len || memcmp(enc, buf, len) != 0)
			fail_msg(
			    "%s: our %s encoding (%zu bytes) differs from the vector (%zu bytes)",
			    name, t.type, elen, len);
		s->requests++;
	} else {
		r = decode(k, buf, len, &t.root, &err);
		if (r < 0)
			fail_msg("%s (%s): %d %s", name, t.type, r, err.msg);
		mutate(k, buf, len, name);
		s->mutated++;
	}
	s->bin++;
	txtpb_free(&t.root);
}

/* Finds the types.UserV2 .txtpb whose Metadata.Name is name. */
static bool find_user_txt(const char *dir, const char *uname, struct txt *ret)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	assert_non_null(d);
	while (!found && (de = readdir(d))) {
		char stem[NAME_MAX + 1];
		struct txt t = {0};
		const char *nm;
		if (!has_suffix(de->d_name, ".txtpb"))
			continue;
		snprintf(stem, sizeof(stem), "%.*s", (int) (strlen(de->d_name) - 6), de->d_name);
		if (!load_txt(dir, stem, &t))
			continue;
		nm = txtpb_str(&t.root, "Metadata.Name");
		if (strcmp(t.type, "types.UserV2") == 0 && nm && strcmp(nm, uname) == 0) {
			*ret = t;
			found = true;
		} else {
			txtpb_free(&t.root);
		}
	}
	closedir(d);
	return found;
}

static void do_grpc(const char *dir, const char *stem, struct seen *s)
{
	_cleanup_free_ uint8_t *buf = NULL;
	char name[NAME_MAX + 16];
	struct txt t = {0};
	bool have_txt;
	struct tu_err err;
	size_t len, pos = 0, frames = 0;
	enum kind k;

	snprintf(name, sizeof(name), "%s.grpc", stem);
	buf = slurp(dir, name, &len);
	assert_non_null(buf);
	have_txt = load_txt(dir, stem, &t);
	/* get_users_stream.grpc: the legacy GetUsers server stream of types.UserV2 (README). */
	k = have_txt ? kind_of(t.type) : strcmp(stem, "get_users_stream") == 0 ? K_USER : K_NONE;
	if (k == K_NONE || k == K_REQUEST)
		fail_msg("%s: cannot tell the message type", name);

	while (pos < len) {
		uint32_t flen;
		if (len - pos < 5)
			fail_msg("%s: truncated frame header at %zu", name, pos);
		assert_int_equal(buf[pos], 0); /* not compressed */
		flen = (uint32_t) buf[pos + 1] << 24 | (uint32_t) buf[pos + 2] << 16 |
		       (uint32_t) buf[pos + 3] << 8 | buf[pos + 4];
		pos += 5;
		if (flen > len - pos)
			fail_msg("%s: frame %zu runs past the end", name, frames);
		if (have_txt) {
			int r = decode(k, buf + pos, flen, &t.root, &err);
			if (r < 0)
				fail_msg("%s frame %zu: %s", name, frames, err.msg);
		} else {
			/* Decode, then compare with the user's own vector. */
			struct tu_user u = {0};
			struct txt ut = {0};
			int r = tu_model_parse_user(buf + pos, flen, &u, &err);
			if (r < 0)
				fail_msg("%s frame %zu: %s", name, frames, err.msg);
			if (!find_user_txt(dir, u.name, &ut))
				fail_msg("%s frame %zu: no .txtpb for user %s", name, frames,
					 u.name);
			check_user(&u, &ut.root);
			txtpb_free(&ut.root);
			tu_user_done(&u);
		}
		pos += flen;
		frames++;
		s->frames++;
	}
	assert_true(frames > 0);
	if (!have_txt)
		assert_int_equal(frames, 3); /* alice, bob, carol */
	s->grpc++;
	if (have_txt)
		txtpb_free(&t.root);
}

static void test_vectors(void **state)
{
	const char *dir = vectors_dir();
	struct seen s = {0};
	struct dirent *de;
	DIR *d;

	if (!dir) {
		print_message("TU_VECTORS_DIR unset: skipping the golden vectors\n");
		skip();
		return;
	}
	d = opendir(dir);
	if (!d)
		fail_msg("TU_VECTORS_DIR=%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		char stem[NAME_MAX + 1];
		const char *n = de->d_name;

		if (n[0] == '.')
			continue;
		if (has_suffix(n, ".bin")) {
			snprintf(stem, sizeof(stem), "%.*s", (int) (strlen(n) - 4), n);
			do_bin(dir, stem, &s);
		} else if (has_suffix(n, ".grpc")) {
			snprintf(stem, sizeof(stem), "%.*s", (int) (strlen(n) - 5), n);
			do_grpc(dir, stem, &s);
		} else if (has_suffix(n, ".txtpb")) {
			s.txt++; /* read by its .bin / .grpc */
		} else if (strcmp(n, "README.md") != 0) {
			fail_msg("%s: unknown file in the vector directory", n);
		}
	}
	closedir(d);
	print_message(
	    "vectors: %zu .bin (%zu requests, %zu responses mutated), %zu .grpc with %zu frames, %zu .txtpb\n",
	    s.bin, s.requests, s.mutated, s.grpc, s.frames, s.txt);
	/* The public set has 27 .bin, 5 .grpc: make sure the directory was really read. */
	assert_true(s.bin >= 20);
	assert_true(s.grpc >= 4);
	assert_true(s.requests >= 10);
}

/* ---------------------------------------------------------------------- */
/* hand-made wire                                                         */

struct wb {
	uint8_t *b;
	size_t n, cap;
};

static void wb_byte(struct wb *w, uint8_t c)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->b = realloc(w->b, w->cap);
		assert_non_null(w->b);
	}
	w->b[w->n++] = c;
}

static void wb_varint(struct wb *w, uint64_t v)
{
	while (v >= 0x80) {
		wb_byte(w, (uint8_t) (v | 0x80));
		v >>= 7;
	}
	wb_byte(w, (uint8_t) v);
}

static void wb_bytes(struct wb *w, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		wb_byte(w, ((const uint8_t *) p)[i]);
}

static void wb_tag(struct wb *w, uint32_t field, unsigned wt)
{
	wb_varint(w, (uint64_t) field << 3 | wt);
}

/* field (LEN) = payload */
static void wb_len(struct wb *w, uint32_t field, const void *p, size_t n)
{
	wb_tag(w, field, 2);
	wb_varint(w, n);
	wb_bytes(w, p, n);
}

static void wb_str(struct wb *w, uint32_t field, const char *s)
{
	wb_len(w, field, s, strlen(s));
}

/* types.Metadata{Name: name} wrapped as field 4 of a resource. */
static void wb_resource_name(struct wb *w, const char *name)
{
	struct wb md = {0};

	wb_str(&md, 1, name);
	wb_len(w, 4, md.b, md.n);
	free(md.b);
}

static void test_errors_name_the_problem(void **state)
{
	struct tu_user u = {0};
	struct tu_role ro = {0};
	struct tu_lock l = {0};
	struct tu_err err;
	struct wb w = {0};
	int r;

	/* Embedded NUL in Metadata.Name: protobuf-c would truncate it silently. */
	{
		struct wb md = {0};
		wb_len(&md, 1, "al\0ice", 6);
		wb_len(&w, 4, md.b, md.n);
		free(md.b);
	}
	/* Content of one record: the record is marked (model.h), the call succeeds. */
	r = tu_model_parse_user(w.b, w.n, &u, &err);
	assert_int_equal(r, 0);
	assert_non_null(u.unusable);
	assert_string_equal(u.unusable, "Metadata.Name: embedded NUL byte at offset 6");
	tu_user_done(&u);

	/* Invalid UTF-8 (overlong '/'). */
	w.n = 0;
	{
		struct wb md = {0};
		wb_len(&md, 1, "a\xc0\xaf", 3);
		wb_len(&w, 4, md.b, md.n);
		free(md.b);
	}
	r = tu_model_parse_role(w.b, w.n, &ro, &err);
	assert_int_equal(r, 0);
	assert_string_equal(ro.unusable, "Metadata.Name: invalid UTF-8 at offset 5");
	tu_role_done(&ro);

	/* Known field with the wrong wire type (Kind as varint). */
	w.n = 0;
	wb_tag(&w, 1, 0);
	wb_varint(&w, 5);
	r = tu_model_parse_lock(w.b, w.n, &l, &err);
	assert_int_equal(r, -EBADMSG);
	assert_non_null(strstr(err.msg, "types.LockV2: Kind: wire type 0, expected 2 at offset 0"));

	/* Length past the end. */
	w.n = 0;
	wb_tag(&w, 4, 2);
	wb_varint(&w, 100);
	wb_bytes(&w, "xx", 2);
	r = tu_model_parse_user(w.b, w.n, &u, &err);
	assert_int_equal(r, -EBADMSG);
	assert_non_null(
	    strstr(err.msg, "field 4: length 100 runs past the end (2 bytes left) at offset 0"));

	/* 11-byte varint. */
	w.n = 0;
	wb_tag(&w, 9, 0);
	for (int i = 0; i < 10; i++)
		wb_byte(&w, 0x80);
	wb_byte(&w, 0x01);
	r = tu_model_parse_user(w.b, w.n, &u, &err);
	assert_int_equal(r, -EBADMSG);
	assert_non_null(strstr(err.msg, "varint longer than 10 bytes"));

	/* Field number 0, invalid wire type. */
	w.n = 0;
	wb_byte(&w, 0x02);
	wb_byte(&w, 0x00);
	assert_int_equal(tu_model_parse_user(w.b, w.n, &u, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "field number 0"));
	w.n = 0;
	wb_tag(&w, 3, 7);
	assert_int_equal(tu_model_parse_user(w.b, w.n, &u, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "invalid wire type 7"));

	/* No Metadata.Name. */
	w.n = 0;
	wb_str(&w, 1, "user");
	r = tu_model_parse_user(w.b, w.n, &u, &err);
	assert_int_equal(r, 0);
	assert_string_equal(u.unusable, "types.UserV2 without Metadata.Name");
	assert_null(u.name);
	tu_user_done(&u);

	/* Timestamp nanos out of range. */
	w.n = 0;
	wb_resource_name(&w, "x");
	{
		struct wb spec = {0}, ts = {0};
		wb_tag(&ts, 1, 0);
		wb_varint(&ts, 1700000000);
		wb_tag(&ts, 2, 0);
		wb_varint(&ts, 1000000000);
		wb_len(&spec, 3, ts.b, ts.n); /* LockSpecV2.Expires */
		wb_len(&w, 5, spec.b, spec.n);
		free(spec.b);
		free(ts.b);
	}
	/* A lock is never dropped: unreadable, and with no readable expiry in force. */
	r = tu_model_parse_lock(w.b, w.n, &l, &err);
	assert_int_equal(r, 0);
	assert_non_null(strstr(l.unreadable, "Spec.Expires: nanos 1000000000 out of range"));
	assert_string_equal(l.name, "x");
	assert_false(l.has_expires);
	tu_lock_done(&l);

	/* Outside a record the same content is an error naming the field. */
	w.n = 0;
	wb_str(&w, 1, "clu");
	w.b[w.n - 1] = '\0';
	{
		struct tu_ping p = {0};
		assert_int_equal(tu_model_parse_ping(w.b, w.n, &p, &err), -EBADMSG);
		assert_non_null(strstr(err.msg, "embedded NUL byte"));
	}

	/* GetUserResponse without user. */
	assert_int_equal(tu_model_parse_get_user_response((const uint8_t *) "", 0, &u, &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "without user"));

	/* NULL buffer with a length. */
	assert_int_equal(tu_model_parse_user(NULL, 3, &u, &err), -EINVAL);
	free(w.b);
}

static void test_limits(void **state)
{
	struct tu_role ro = {0};
	struct tu_user u = {0};
	struct tu_err err;
	struct wb w = {0}, allow = {0}, spec = {0};
	uint8_t *big;
	int r;

	/* Over the message size limit: refused before decoding. */
	big = calloc(1, (size_t) TU_MODEL_MAX_MESSAGE + 1);
	assert_non_null(big);
	r = tu_model_parse_user(big, (size_t) TU_MODEL_MAX_MESSAGE + 1, &u, &err);
	assert_int_equal(r, -EMSGSIZE);
	assert_non_null(strstr(err.msg, "exceeds the 67108864 byte limit"));
	free(big);

	/* Huge count: RoleV6.Spec.Allow.Logins with one element too many. */
	for (size_t i = 0; i <= TU_MODEL_MAX_REPEATED; i++) {
		wb_byte(&allow, 0x0a);
		wb_byte(&allow, 0x00);
	}
	wb_len(&spec, 2, allow.b, allow.n);
	wb_resource_name(&w, "r");
	wb_len(&w, 5, spec.b, spec.n);
	r = tu_model_parse_role(w.b, w.n, &ro, &err);
	assert_int_equal(r, -EMSGSIZE);
	assert_string_equal(err.msg,
			    "types.RoleV6: Spec: Allow: Logins: more than 1048576 elements");
	free(allow.b);
	free(spec.b);

	/* Groups (wire types 3/4, also the way to nest without lengths) are refused. */
	w.n = 0;
	for (int i = 0; i < 100000; i++)
		wb_tag(&w, 100, 3);
	r = tu_model_parse_user(w.b, w.n, &u, &err);
	assert_int_equal(r, -EBADMSG);
	assert_non_null(strstr(err.msg, "group wire type 3 not supported"));

	/* Deep nesting inside an unknown field is skipped, not descended. */
	{
		struct wb in = {0}, out = {0};
		for (int i = 0; i < 2000; i++) {
			out.n = 0;
			wb_len(&out, 1000, in.b, in.n);
			struct wb tmp = in;
			in = out;
			out = tmp;
		}
		w.n = 0;
		wb_resource_name(&w, "deep");
		wb_bytes(&w, in.b, in.n);
		r = tu_model_parse_user(w.b, w.n, &u, &err);
		assert_int_equal(r, 0);
		assert_string_equal(u.name, "deep");
		tu_user_done(&u);
		free(in.b);
		free(out.b);
	}

	/* Memory cap: many small messages (Metadata.Labels entries) in several roles. */
	{
		struct wb md = {0}, role = {0}, resp = {0};
		for (size_t i = 0; i < 1000000; i++) {
			wb_byte(&md, 0x2a);
			wb_byte(&md, 0x00);
		}
		wb_len(&role, 4, md.b, md.n);
		for (int i = 0; i < 2; i++)
			wb_len(&resp, 1, role.b, role.n);
		struct tu_role *v = NULL;
		size_t n = 0;
		r = tu_model_parse_get_roles_append(resp.b, resp.n, &v, &n, &err);
		assert_int_equal(r, -EMSGSIZE);
		assert_non_null(
		    strstr(err.msg, "decoding needs more than 134217728 bytes of memory"));
		assert_null(v);
		assert_int_equal(n, 0);
		free(md.b);
		free(role.b);
		free(resp.b);
	}
	free(w.b);
}

static void test_unknown_fields_skipped(void **state)
{
	const char *dir = vectors_dir();
	_cleanup_free_ uint8_t *buf = NULL;
	struct tu_user a = {0}, b = {0};
	struct tu_err err;
	struct wb w = {0};
	size_t len;

	if (!dir) {
		skip();
		return;
	}
	buf = slurp(dir, "user_alice.bin", &len);
	assert_non_null(buf);
	assert_int_equal(tu_model_parse_user(buf, len, &a, &err), 0);

	wb_bytes(&w, buf, len);
	wb_tag(&w, 1000, 0); /* varint */
	wb_varint(&w, UINT64_MAX);
	wb_tag(&w, 1001, 1); /* fixed64 */
	wb_bytes(&w, "12345678", 8);
	wb_str(&w, 1002, "unknown"); /* LEN */
	wb_tag(&w, 1003, 5);         /* fixed32 */
	wb_bytes(&w, "1234", 4);
	wb_tag(&w, (1u << 29) - 1, 0); /* largest field number: 5-byte tag */
	wb_varint(&w, 1);
	/* Metadata sent a second time with the reserved ID = 7 (older servers): merged. */
	{
		struct wb md = {0};
		wb_tag(&md, 7, 0);
		wb_varint(&md, 42);
		wb_len(&w, 4, md.b, md.n);
		free(md.b);
	}
	if (tu_model_parse_user(w.b, w.n, &b, &err) != 0)
		fail_msg("unknown fields: %s", err.msg);
	assert_string_equal(b.name, "alice");
	assert_int_equal(b.roles.n, a.roles.n);
	assert_int_equal(b.traits.n, a.traits.n);
	tu_user_done(&a);
	tu_user_done(&b);
	free(w.b);
}

/* ---------------------------------------------------------------------- */
/* round trips                                                            */

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static void assert_strv_eq(const struct tu_strv *a, const struct tu_strv *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_string_equal(a->v[i], b->v[i]);
}

static void assert_labels_eq(const struct tu_labels *a, const struct tu_labels *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_string_equal(a->e[i].key, b->e[i].key);
		assert_strv_eq(&a->e[i].values, &b->e[i].values);
	}
}

static void assert_user_eq(const struct tu_user *a, const struct tu_user *b)
{
	assert_string_equal(a->name, b->name);
	assert_strv_eq(&a->roles, &b->roles);
	assert_labels_eq(&a->traits, &b->traits);
	assert_int_equal(a->is_bot, b->is_bot);
	assert_int_equal(a->is_locked, b->is_locked);
	assert_true(str_eq(a->locked_message, b->locked_message));
	assert_int_equal(a->has_lock_expires, b->has_lock_expires);
	assert_int_equal(a->lock_expires_usec, b->lock_expires_usec);
	assert_int_equal(a->has_expires, b->has_expires);
	assert_int_equal(a->expires_usec, b->expires_usec);
}

static void assert_cond_eq(const struct tu_role_cond *a, const struct tu_role_cond *b)
{
	assert_strv_eq(&a->logins, &b->logins);
	assert_labels_eq(&a->node_labels, &b->node_labels);
	assert_true(str_eq(a->node_labels_expression, b->node_labels_expression));
	assert_strv_eq(&a->host_groups, &b->host_groups);
	assert_strv_eq(&a->host_sudoers, &b->host_sudoers);
}

static void assert_role_eq(const struct tu_role *a, const struct tu_role *b)
{
	assert_string_equal(a->name, b->name);
	assert_true(str_eq(a->version, b->version));
	assert_cond_eq(&a->allow, &b->allow);
	assert_cond_eq(&a->deny, &b->deny);
	assert_int_equal(a->create_host_user_mode, b->create_host_user_mode);
	assert_int_equal(a->create_host_user, b->create_host_user);
	assert_true(str_eq(a->create_host_user_default_shell, b->create_host_user_default_shell));
	assert_true(str_eq(a->lock_mode, b->lock_mode));
	assert_int_equal(a->require_mfa_type, b->require_mfa_type);
	assert_true(str_eq(a->device_trust_mode, b->device_trust_mode));
	assert_int_equal(a->max_session_ttl_nsec, b->max_session_ttl_nsec);
}

static void assert_lock_eq(const struct tu_lock *a, const struct tu_lock *b)
{
	const struct tu_lock_target *x = &a->target, *y = &b->target;

	assert_string_equal(a->name, b->name);
	assert_true(str_eq(x->user, y->user));
	assert_true(str_eq(x->role, y->role));
	assert_true(str_eq(x->login, y->login));
	assert_true(str_eq(x->node, y->node));
	assert_true(str_eq(x->mfa_device, y->mfa_device));
	assert_true(str_eq(x->windows_desktop, y->windows_desktop));
	assert_true(str_eq(x->access_request, y->access_request));
	assert_true(str_eq(x->device, y->device));
	assert_true(str_eq(x->server_id, y->server_id));
	assert_true(str_eq(a->message, b->message));
	assert_int_equal(a->has_expires, b->has_expires);
	assert_int_equal(a->expires_usec, b->expires_usec);
}

static void add_label(struct tu_labels *l, const char *key, const char *const *vals, size_t n)
{
	l->e = realloc(l->e, (l->n + 1) * sizeof(*l->e));
	assert_non_null(l->e);
	l->e[l->n] = (struct tu_kv){.key = strdup(key)};
	for (size_t i = 0; i < n; i++)
		assert_int_equal(tu_strv_push(&l->e[l->n].values, vals[i]), 0);
	l->n++;
}

static void test_round_trip_user(void **state)
{
	static const char *const logins[] = {"alice", "root", "ünïcode"};
	static const char *const none[] = {NULL};
	static const int64_t times[] = {-62135596799000000LL + 1, -1, 0, 1, 1727762405123456LL,
					253402300799999999LL};
	struct tu_err err;

	for (size_t ti = 0; ti < ELEMENTSOF(times); ti++) {
		struct tu_user u = {0}, back = {0};
		_cleanup_free_ uint8_t *buf = NULL;
		size_t len;

		u.name = strdup("alice");
		assert_int_equal(tu_strv_push(&u.roles, "access"), 0);
		assert_int_equal(tu_strv_push(&u.roles, ""), 0);
		add_label(&u.traits, "logins", logins, 3);
		add_label(&u.traits, "empty", none, 0);
		u.is_bot = ti % 2;
		u.is_locked = true;
		u.locked_message = strdup("too many attempts");
		u.has_lock_expires = true;
		u.lock_expires_usec = times[ti];
		u.has_expires = ti % 2 == 0;
		u.expires_usec = u.has_expires ? times[ELEMENTSOF(times) - 1 - ti] : 0;

		assert_int_equal(tu_model_encode_user(&u, &buf, &len), 0);
		assert_int_equal(tu_model_parse_user(buf, len, &back, &err), 0);
		assert_user_eq(&u, &back);
		tu_user_done(&u);
		tu_user_done(&back);
	}

	/* Unrepresentable times are refused by the encoder. */
	{
		struct tu_user u = {
		    .name = (char *) "x", .has_expires = true, .expires_usec = INT64_MIN};
		uint8_t *buf = NULL;
		size_t len;
		assert_int_equal(tu_model_encode_user(&u, &buf, &len), -EINVAL);
		assert_null(buf);
	}
}

static void test_round_trip_role_lock(void **state)
{
	static const char *const env[] = {"staging", "dev-*"};
	struct tu_role r = {0}, rb = {0};
	struct tu_lock l = {0}, lb = {0};
	uint8_t *buf = NULL;
	size_t len;
	struct tu_err err;

	r.name = strdup("dev");
	r.version = strdup("v7");
	assert_int_equal(tu_strv_push(&r.allow.logins, "{{external.unix_login}}"), 0);
	add_label(&r.allow.node_labels, "env", env, 2);
	add_label(&r.deny.node_labels, "env", env + 1, 1);
	r.allow.node_labels_expression = strdup("labels.env == \"dev\"");
	assert_int_equal(tu_strv_push(&r.allow.host_groups, "wheel"), 0);
	assert_int_equal(tu_strv_push(&r.allow.host_sudoers, "ALL=(ALL) NOPASSWD: ALL"), 0);
	assert_int_equal(tu_strv_push(&r.deny.logins, "root"), 0);
	r.create_host_user_mode = 99; /* open enum: unknown values are kept */
	r.create_host_user = TU_BOOL_FALSE;
	r.create_host_user_default_shell = strdup("/bin/zsh");
	r.lock_mode = strdup("strict");
	r.require_mfa_type = 2;
	r.device_trust_mode = strdup("required");
	r.max_session_ttl_nsec = 28800000000000LL;
	assert_int_equal(tu_model_encode_role(&r, &buf, &len), 0);
	assert_int_equal(tu_model_parse_role(buf, len, &rb, &err), 0);
	assert_role_eq(&r, &rb);
	free(buf);
	tu_role_done(&rb);
	r.create_host_user = TU_BOOL_TRUE;
	r.create_host_user_mode = -5;
	assert_int_equal(tu_model_encode_role(&r, &buf, &len), 0);
	assert_int_equal(tu_model_parse_role(buf, len, &rb, &err), 0);
	assert_role_eq(&r, &rb);
	free(buf);
	tu_role_done(&rb);
	tu_role_done(&r);
	assert_int_equal(r.create_host_user, TU_BOOL_UNSET); /* done() leaves a clean struct */

	l.name = strdup("lock-1");
	l.target.user = strdup("u");
	l.target.role = strdup("r");
	l.target.login = strdup("l");
	l.target.node = strdup("n");
	l.target.mfa_device = strdup("m");
	l.target.windows_desktop = strdup("w");
	l.target.access_request = strdup("a");
	l.target.device = strdup("d");
	l.target.server_id = strdup("s");
	l.message = strdup("msg");
	l.has_expires = true;
	l.expires_usec = 1909051200000001LL;
	assert_int_equal(tu_model_encode_lock(&l, &buf, &len), 0);
	assert_int_equal(tu_model_parse_lock(buf, len, &lb, &err), 0);
	assert_lock_eq(&l, &lb);
	free(buf);
	tu_lock_done(&lb);
	tu_lock_done(&l);

	/* Nameless resources cannot be encoded. */
	assert_int_equal(tu_model_encode_lock(&l, &buf, &len), -EINVAL);
	assert_int_equal(tu_model_encode_role(&r, &buf, &len), -EINVAL);
}

/* Every response vector: parse -> encode -> parse gives the same model. */
static void test_round_trip_vectors(void **state)
{
	const char *dir = vectors_dir();
	struct dirent *de;
	size_t checked = 0;
	DIR *d;

	if (!dir) {
		skip();
		return;
	}
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d))) {
		_cleanup_free_ uint8_t *buf = NULL, *enc = NULL;
		char stem[NAME_MAX + 1];
		struct txt t = {0};
		struct tu_err err;
		size_t len, elen;
		enum kind k;

		if (!has_suffix(de->d_name, ".bin"))
			continue;
		snprintf(stem, sizeof(stem), "%.*s", (int) (strlen(de->d_name) - 4), de->d_name);
		assert_true(load_txt(dir, stem, &t));
		k = kind_of(t.type);
		txtpb_free(&t.root);
		buf = slurp(dir, de->d_name, &len);
		assert_non_null(buf);
		if (k == K_USER) {
			struct tu_user a = {0}, b = {0};
			assert_int_equal(tu_model_parse_user(buf, len, &a, &err), 0);
			assert_int_equal(tu_model_encode_user(&a, &enc, &elen), 0);
			assert_int_equal(tu_model_parse_user(enc, elen, &b, &err), 0);
			assert_user_eq(&a, &b);
			tu_user_done(&a);
			tu_user_done(&b);
			checked++;
		} else if (k == K_ROLE) {
			struct tu_role a = {0}, b = {0};
			assert_int_equal(tu_model_parse_role(buf, len, &a, &err), 0);
			assert_int_equal(tu_model_encode_role(&a, &enc, &elen), 0);
			assert_int_equal(tu_model_parse_role(enc, elen, &b, &err), 0);
			assert_role_eq(&a, &b);
			tu_role_done(&a);
			tu_role_done(&b);
			checked++;
		} else if (k == K_LOCK) {
			struct tu_lock a = {0}, b = {0};
			assert_int_equal(tu_model_parse_lock(buf, len, &a, &err), 0);
			assert_int_equal(tu_model_encode_lock(&a, &enc, &elen), 0);
			assert_int_equal(tu_model_parse_lock(enc, elen, &b, &err), 0);
			assert_lock_eq(&a, &b);
			tu_lock_done(&a);
			tu_lock_done(&b);
			checked++;
		}
	}
	closedir(d);
	assert_true(checked >= 8);
}

/* ---------------------------------------------------------------------- */
/* helpers and append semantics                                           */

static void test_helpers(void **state)
{
	struct tu_dataset d = {0};
	struct tu_labels l = {0};
	static const char *const v1[] = {"a"}, *const v2[] = {"b", "c"};
	struct tu_strv s = {0};

	assert_int_equal(tu_strv_push(&s, "x"), 0);
	assert_int_equal(tu_strv_push(&s, "y"), 0);
	assert_int_equal(tu_strv_push(&s, NULL), -EINVAL);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.v[1], "y");
	tu_strv_done(&s);
	tu_strv_done(&s); /* idempotent */

	add_label(&l, "k1", v1, 1);
	add_label(&l, "k2", v2, 2);
	assert_int_equal(tu_labels_get(&l, "k2")->n, 2);
	assert_null(tu_labels_get(&l, "k3"));
	assert_null(tu_labels_get(NULL, "k1"));
	tu_labels_done(&l);

	d.users = calloc(2, sizeof(*d.users));
	d.n_users = 2;
	d.users[0].name = strdup("alice");
	d.users[1].name = strdup("bob");
	d.roles = calloc(1, sizeof(*d.roles));
	d.n_roles = 1;
	d.roles[0].name = strdup("dev");
	assert_ptr_equal(tu_dataset_find_user(&d, "bob"), &d.users[1]);
	assert_null(tu_dataset_find_user(&d, "carol"));
	assert_ptr_equal(tu_dataset_find_role(&d, "dev"), &d.roles[0]);
	assert_null(tu_dataset_find_role(&d, "access"));
	tu_dataset_done(&d);
	tu_dataset_done(NULL);
	tu_user_done(NULL);
	tu_role_done(NULL);
	tu_lock_done(NULL);
	tu_ping_done(NULL);
}

/* A map key sent twice keeps its first position and the last value. */
static void test_duplicate_map_key(void **state)
{
	struct wb w = {0}, spec = {0}, traits = {0};
	struct tu_user u = {0};
	struct tu_err err;

	for (int i = 0; i < 3; i++) {
		struct wb entry = {0}, sv = {0};
		wb_str(&sv, 1, i == 2 ? "second" : "first");
		wb_str(&entry, 1, i == 1 ? "other" : "logins");
		wb_len(&entry, 2, sv.b, sv.n);
		wb_len(&traits, 1, entry.b, entry.n);
		free(entry.b);
		free(sv.b);
	}
	wb_len(&spec, 5, traits.b, traits.n);
	wb_resource_name(&w, "dup");
	wb_len(&w, 5, spec.b, spec.n);
	assert_int_equal(tu_model_parse_user(w.b, w.n, &u, &err), 0);
	assert_int_equal(u.traits.n, 2);
	assert_string_equal(u.traits.e[0].key, "logins");
	assert_int_equal(u.traits.e[0].values.n, 1);
	assert_string_equal(u.traits.e[0].values.v[0], "second");
	tu_user_done(&u);
	free(w.b);
	free(spec.b);
	free(traits.b);
}

/* Big maps stay O(n log n); a merged list over the limit is -EMSGSIZE. */
static void test_big_maps_and_merges(void **state)
{
	struct wb w = {0}, spec = {0}, traits = {0}, roles = {0};
	struct tu_user u = {0};
	struct tu_err err;
	const size_t nkeys = 300000;
	char key[32];
	int r;

	for (size_t i = 0; i < nkeys; i++) {
		struct wb entry = {0};
		/* every key twice, in different halves: first position, last value */
		snprintf(key, sizeof(key), "k%zu", i % (nkeys / 2));
		wb_str(&entry, 1, key);
		wb_len(&traits, 1, entry.b, entry.n);
		free(entry.b);
	}
	wb_len(&spec, 5, traits.b, traits.n);
	wb_resource_name(&w, "many");
	wb_len(&w, 5, spec.b, spec.n);
	r = tu_model_parse_user(w.b, w.n, &u, &err);
	assert_int_equal(r, 0);
	assert_int_equal(u.traits.n, nkeys / 2);
	assert_string_equal(u.traits.e[0].key, "k0");
	assert_string_equal(u.traits.e[nkeys / 2 - 1].key, "k149999");
	tu_user_done(&u);

	/* Spec sent twice with 600000 roles each: protobuf-c merges them into 1.2M. */
	for (size_t i = 0; i < 600000; i++) {
		wb_byte(&roles, 0x22);
		wb_byte(&roles, 0x00);
	}
	w.n = 0;
	wb_resource_name(&w, "merged");
	wb_len(&w, 5, roles.b, roles.n);
	wb_len(&w, 5, roles.b, roles.n);
	r = tu_model_parse_user(w.b, w.n, &u, &err);
	assert_int_equal(r, -EMSGSIZE);
	assert_string_equal(
	    err.msg,
	    "types.UserV2: more than 1048576 elements after merging repeated sub-messages");
	assert_null(u.name);
	free(w.b);
	free(spec.b);
	free(traits.b);
	free(roles.b);
}

static void test_append_untouched_on_failure(void **state)
{
	struct wb good = {0}, bad = {0}, user = {0};
	struct tu_user *v = NULL;
	size_t n = 0;
	char *next = NULL;
	struct tu_err err;

	wb_resource_name(&user, "u1");
	wb_len(&good, 1, user.b, user.n);
	wb_str(&good, 2, "tok");
	assert_int_equal(tu_model_parse_list_users_append(good.b, good.n, &v, &n, &next, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(next, "tok");
	free(next);
	next = NULL;

	/* Second page: one good user, then a nameless one: appended, the second marked. */
	wb_len(&bad, 1, user.b, user.n);
	wb_len(&bad, 1, "", 0);
	assert_int_equal(tu_model_parse_list_users_append(bad.b, bad.n, &v, &n, &next, &err), 0);
	assert_int_equal(n, 3);
	assert_null(v[1].unusable);
	assert_string_equal(v[2].unusable, "types.UserV2 without Metadata.Name");
	assert_int_equal(tu_users_drop_unusable(v, &n), 1);
	assert_int_equal(n, 2);

	/* Third page: a good user, then a frame cut short -> nothing appended. */
	bad.n = 0;
	wb_len(&bad, 1, user.b, user.n);
	wb_tag(&bad, 1, 2);
	wb_varint(&bad, 50);
	assert_int_equal(tu_model_parse_list_users_append(bad.b, bad.n, &v, &n, &next, &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "runs past the end"));
	assert_int_equal(n, 2);
	assert_null(next);
	assert_string_equal(v[0].name, "u1");

	/* Legacy stream frame appended. */
	assert_int_equal(tu_model_parse_user_append(user.b, user.n, &v, &n, &err), 0);
	assert_int_equal(n, 3);
	tu_users_free(v, n);
	free(good.b);
	free(bad.b);
	free(user.b);
}

/* A user with a trait holding a NUL byte (a valid proto3 string). */
static void wb_user_with_trait(struct wb *w, const char *name, const char *value, size_t value_len)
{
	struct wb spec = {0}, traits = {0}, entry = {0}, sv = {0};

	wb_len(&sv, 1, value, value_len);    /* StringValues.Values */
	wb_str(&entry, 1, "logins");         /* map key */
	wb_len(&entry, 2, sv.b, sv.n);       /* map value */
	wb_len(&traits, 1, entry.b, entry.n);
	wb_str(&spec, 1, "access");          /* Roles */
	wb_len(&spec, 5, traits.b, traits.n);
	wb_resource_name(w, name);
	wb_len(w, 5, spec.b, spec.n);
	free(spec.b);
	free(traits.b);
	free(entry.b);
	free(sv.b);
}

/*
 * Issue 11: one hostile record never stops a listing.  A user whose trait
 * holds a NUL byte is marked and left out; the others are kept; a framing
 * error anywhere still fails the call.  A lock that cannot be read is kept,
 * marked, and stays marked through the private snapshot's encoding.
 */
static void test_records_judged_one_by_one(void **state)
{
	struct wb page = {0}, u1 = {0}, bad = {0}, u3 = {0}, lk = {0}, lpage = {0};
	struct tu_user *v = NULL;
	struct tu_lock *locks = NULL;
	size_t n = 0, n_locks = 0;
	struct tu_err err;

	wb_user_with_trait(&u1, "alice", "alice", 5);
	wb_user_with_trait(&bad, "mallory", "mal\0root", 8);
	wb_user_with_trait(&u3, "zoe", "zoe", 3);
	wb_len(&page, 1, u1.b, u1.n);
	wb_len(&page, 1, bad.b, bad.n);
	wb_len(&page, 1, u3.b, u3.n);
	assert_int_equal(tu_model_parse_list_users_append(page.b, page.n, &v, &n, NULL, &err), 0);
	assert_int_equal(n, 3);
	assert_null(v[0].unusable);
	assert_null(v[2].unusable);
	assert_non_null(v[1].unusable);
	assert_non_null(strstr(v[1].unusable, "embedded NUL byte"));
	assert_non_null(strstr(v[1].unusable, "Spec.Traits"));
	assert_int_equal(tu_users_drop_unusable(v, &n), 1);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "alice");
	assert_string_equal(v[1].name, "zoe");
	tu_users_free(v, n);

	/* GetUserResponse: the one user, marked. */
	{
		struct wb resp = {0};
		struct tu_user u = {0};
		wb_len(&resp, 1, bad.b, bad.n);
		assert_int_equal(tu_model_parse_get_user_response(resp.b, resp.n, &u, &err), 0);
		assert_non_null(u.unusable);
		tu_user_done(&u);
		free(resp.b);
	}

	/* A lock whose target user holds a NUL byte. */
	{
		struct wb spec = {0}, target = {0};
		wb_len(&target, 1, "bob\0x", 5); /* LockTarget.User */
		wb_len(&spec, 1, target.b, target.n);
		wb_resource_name(&lk, "lock-odd");
		wb_len(&lk, 5, spec.b, spec.n);
		free(spec.b);
		free(target.b);
	}
	wb_len(&lpage, 1, lk.b, lk.n);
	assert_int_equal(tu_model_parse_get_locks_append(lpage.b, lpage.n, &locks, &n_locks, &err), 0);
	assert_int_equal(n_locks, 1);
	assert_non_null(locks[0].unreadable);
	assert_string_equal(locks[0].name, "lock-odd");
	{
		uint8_t *buf = NULL;
		size_t len = 0;
		struct tu_lock back = {0};
		assert_int_equal(tu_model_encode_lock(&locks[0], &buf, &len), 0);
		assert_int_equal(tu_model_parse_lock(buf, len, &back, &err), 0);
		assert_non_null(back.unreadable);
		assert_string_equal(back.unreadable, locks[0].unreadable);
		tu_lock_done(&back);
		free(buf);
	}
	tu_locks_free(locks, n_locks);

	free(page.b);
	free(u1.b);
	free(bad.b);
	free(u3.b);
	free(lk.b);
	free(lpage.b);
	(void) state;
}

static void test_request_encoders_reject(void **state)
{
	uint8_t *buf = NULL;
	size_t len;

	assert_int_equal(tu_model_encode_get_user_request(NULL, false, &buf, &len), -EINVAL);
	assert_int_equal(tu_model_encode_get_user_request("", true, &buf, &len), -EINVAL);
	assert_int_equal(tu_model_encode_get_role_request("", &buf, &len), -EINVAL);
	assert_int_equal(tu_model_encode_get_lock_request(NULL, &buf, &len), -EINVAL);
	assert_int_equal(tu_model_encode_list_users_request(-1, NULL, &buf, &len), -EINVAL);
	assert_int_equal(tu_model_encode_list_roles_request(-1, NULL, &buf, &len), -EINVAL);
	assert_int_equal(tu_model_encode_get_locks_request(NULL, 2, true, &buf, &len), -EINVAL);
	assert_null(buf);

	/* Empty request: 0 bytes but a real allocation. */
	assert_int_equal(tu_model_encode_get_locks_request(NULL, 0, false, &buf, &len), 0);
	assert_non_null(buf);
	assert_int_equal(len, 0);
	free(buf);
	assert_int_equal(tu_model_encode_get_lock_request("abc", &buf, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(buf,
			    "\x0a\x03"
			    "abc",
			    5);
	free(buf);
}

/* A role's options as servers of every age send them: RequireSessionMFA (13, bool, v10 and
 * older), RequireMFAType (23, enum, open), DeviceTrustMode (24). */
/* types.AuthPreferenceV2 written by hand with Teleport's numbers, unknown fields around ours. */
static void test_auth_pref(void **state)
{
	static const struct {
		int legacy;         /* Spec 5: -1 absent */
		int64_t type;       /* Spec 12: -1 absent */
		const char *lock;   /* Spec 9: NULL absent */
		const char *device; /* Spec 13.1: NULL absent */
		int32_t want_type;
	} cases[] = {
		{-1, -1, NULL, NULL, 0},      {1, -1, "strict", NULL, 1},     {-1, 1, "best_effort", "required", 1},
		{1, 4, NULL, "optional", 4},  {-1, 0, "", "off", 0},          {0, -1, NULL, "", 0},
	};

	(void) state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct wb w = {0}, spec = {0}, md = {0}, dt = {0}, webauthn = {0};
		struct tu_auth_pref p = {0}, q = {0};
		_cleanup_free_ uint8_t *enc = NULL;
		size_t enc_len = 0;
		struct tu_err err;

		wb_str(&w, 1, "cluster_auth_preference");
		wb_str(&w, 3, "v2");
		wb_str(&md, 1, "cluster-auth-preference");
		wb_len(&w, 4, md.b, md.n);
		wb_str(&spec, 1, "local");
		wb_str(&spec, 2, "on");
		wb_str(&webauthn, 1, "example.com"); /* Webauthn 10: unknown to us, skipped */
		wb_len(&spec, 10, webauthn.b, webauthn.n);
		if (cases[i].legacy >= 0) {
			wb_tag(&spec, 5, 0);
			wb_varint(&spec, (uint64_t) cases[i].legacy);
		}
		if (cases[i].lock)
			wb_str(&spec, 9, cases[i].lock);
		if (cases[i].type >= 0) {
			wb_tag(&spec, 12, 0);
			wb_varint(&spec, (uint64_t) cases[i].type);
		}
		if (cases[i].device) {
			wb_str(&dt, 1, cases[i].device);
			wb_tag(&dt, 2, 0); /* AutoEnroll */
			wb_varint(&dt, 1);
			wb_len(&spec, 13, dt.b, dt.n);
		}
		wb_len(&w, 5, spec.b, spec.n);
		if (tu_model_parse_auth_pref(w.b, w.n, &p, &err) != 0)
			fail_msg("case %zu: %s", i, err.msg);
		assert_true(p.known);
		assert_int_equal(p.require_mfa_type, cases[i].want_type);
		assert_true(str_eq(p.locking_mode, cases[i].lock && *cases[i].lock ? cases[i].lock : NULL));
		assert_true(str_eq(p.device_trust_mode, cases[i].device && *cases[i].device ? cases[i].device : NULL));
		/* What the state cache stores reads back the same. */
		assert_int_equal(tu_model_encode_auth_pref(&p, &enc, &enc_len), 0);
		assert_int_equal(tu_model_parse_auth_pref(enc, enc_len, &q, &err), 0);
		assert_true(q.known);
		assert_int_equal(q.require_mfa_type, p.require_mfa_type);
		assert_true(str_eq(q.locking_mode, p.locking_mode));
		assert_true(str_eq(q.device_trust_mode, p.device_trust_mode));
		tu_auth_pref_done(&p);
		tu_auth_pref_done(&q);
		assert_false(p.known);
		free(w.b);
		free(spec.b);
		free(md.b);
		free(dt.b);
		free(webauthn.b);
	}
	/* An unknown preference is not stored; a truncated one is an error. */
	{
		struct tu_auth_pref unknown = {0}, p = {0};
		uint8_t *enc = NULL;
		size_t n = 0;
		static const uint8_t cut[] = {0x2a, 0x05, 0x4a, 0x06, 's'};
		struct tu_err err;

		assert_int_equal(tu_model_encode_auth_pref(&unknown, &enc, &n), -EINVAL);
		assert_null(enc);
		assert_int_equal(tu_model_parse_auth_pref(cut, sizeof(cut), &p, &err), -EBADMSG);
		assert_false(p.known);
	}
}

static void test_role_mfa_options(void **state)
{
	const char *dir = vectors_dir();
	_cleanup_free_ uint8_t *buf = NULL;
	static const struct {
		int legacy;          /* field 13: -1 absent */
		int64_t type;        /* field 23: -1 absent */
		const char *device;  /* field 24: NULL absent */
		int32_t want_type;
	} cases[] = {
		{-1, -1, NULL, 0},         {1, -1, NULL, 1},       {0, -1, NULL, 0},
		{-1, 1, NULL, 1},          {-1, 5, "required", 5}, {1, 3, NULL, 3},
		{-1, 99, "optional", 99}, /* open enum: kept, and anything but 0 requires MFA */
		{-1, 0, "off", 0},
	};
	size_t len;

	(void) state;
	if (!dir) {
		skip();
		return;
	}
	buf = slurp(dir, "role_dev.bin", &len);
	assert_non_null(buf);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct wb w = {0}, spec = {0}, opt = {0};
		struct tu_role r = {0};
		struct tu_err err;

		if (cases[i].legacy >= 0) {
			wb_tag(&opt, 13, 0);
			wb_varint(&opt, (uint64_t) cases[i].legacy);
		}
		if (cases[i].type >= 0) {
			wb_tag(&opt, 23, 0);
			wb_varint(&opt, (uint64_t) cases[i].type);
		}
		if (cases[i].device)
			wb_str(&opt, 24, cases[i].device);
		/* A second Spec.Options after the vector's own: protobuf merges them. */
		wb_bytes(&w, buf, len);
		wb_len(&spec, 1, opt.b, opt.n);
		wb_len(&w, 5, spec.b, spec.n);
		if (tu_model_parse_role(w.b, w.n, &r, &err) != 0)
			fail_msg("case %zu: %s", i, err.msg);
		assert_string_equal(r.name, "dev");
		assert_int_equal(r.require_mfa_type, cases[i].want_type);
		assert_true(str_eq(r.device_trust_mode, cases[i].device));
		tu_role_done(&r);
		free(w.b);
		free(spec.b);
		free(opt.b);
	}
}

/* Appends field num (wire type LEN) holding n bytes of p to buf at *off (all small here). */
static void put_len_field(uint8_t *buf, size_t *off, unsigned num, const void *p, size_t n)
{
	buf[(*off)++] = (uint8_t) (num << 3 | 2);
	assert_true(n < 16384);
	if (n < 128) {
		buf[(*off)++] = (uint8_t) n;
	} else {
		buf[(*off)++] = (uint8_t) (0x80 | (n & 0x7f));
		buf[(*off)++] = (uint8_t) (n >> 7);
	}
	memcpy(buf + *off, p, n);
	*off += n;
}

/* types.CertAuthorityV2 {Spec {Type, CheckingKeys..., ActiveKeys {SSH {PublicKey}}...}} by hand. */
static size_t ca_bytes(uint8_t *out, const char *type, const char *const *checking, const char *const *active)
{
	uint8_t spec[8192], ks[4096], pair[1024];
	size_t so = 0, ko = 0, o = 0;

	if (type)
		put_len_field(spec, &so, 1, type, strlen(type));
	for (size_t i = 0; checking && checking[i]; i++)
		put_len_field(spec, &so, 3, checking[i], strlen(checking[i]));
	for (size_t i = 0; active && active[i]; i++) {
		size_t po = 0;
		put_len_field(pair, &po, 1, active[i], strlen(active[i]));
		put_len_field(ks, &ko, 1, pair, po);
	}
	if (ko)
		put_len_field(spec, &so, 11, ks, ko);
	put_len_field(out, &o, 5, spec, so);
	return o;
}

static void test_user_ca(void **state)
{
	static const char k1[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlbGVwb3J0LXVzZXItY2EtdGVzdC1rZXk=";
	static const char *const active[] = {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlbGVwb3J0LXVzZXItY2EtdGVzdC1rZXk= teleport\n",
					     "  ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlbGVwb3J0LXVzZXItY2EtdGVzdC1rZXk=\n", NULL};
	static const char *const legacy[] = {"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAAQC7 old\n", NULL};
	uint8_t buf[16384], *enc = NULL;
	size_t n, enc_len = 0;
	struct tu_user_ca ca = {0}, back = {0};
	struct tu_err e;

	(void) state;
	/* ActiveKeys, comment and duplicate dropped; CheckingKeys ignored when ActiveKeys has keys */
	n = ca_bytes(buf, "user", legacy, active);
	assert_int_equal(tu_model_parse_user_ca(buf, n, &ca, NULL), 0);
	assert_true(ca.known);
	assert_int_equal(ca.keys.n, 1);
	assert_string_equal(ca.keys.v[0], k1);
	/* round trip through the cache's encoding */
	assert_int_equal(tu_model_encode_user_ca(&ca, &enc, &enc_len), 0);
	assert_int_equal(tu_model_parse_user_ca(enc, enc_len, &back, NULL), 0);
	assert_int_equal(back.keys.n, 1);
	assert_string_equal(back.keys.v[0], k1);
	free(enc);
	tu_user_ca_done(&back);
	tu_user_ca_done(&ca);
	/* Teleport <= 9: only CheckingKeys */
	n = ca_bytes(buf, "user", legacy, NULL);
	assert_int_equal(tu_model_parse_user_ca(buf, n, &ca, NULL), 0);
	assert_int_equal(ca.keys.n, 1);
	assert_string_equal(ca.keys.v[0], "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAAQC7");
	tu_user_ca_done(&ca);
	/* an empty message: known, no keys */
	assert_int_equal(tu_model_parse_user_ca(buf, 0, &ca, NULL), 0);
	assert_true(ca.known);
	assert_int_equal(ca.keys.n, 0);
	tu_user_ca_done(&ca);
	/* not a user CA, not a key, too many keys: refused, *ret untouched */
	static const struct {
		const char *type;
		const char *key;
		const char *msg;
	} bad[] = {
		{"host", NULL, "not 'user'"},
		{"user", "ssh-ed25519", "not \"<type> <base64>\""},
		{"user", "ssh-ed25519 AAAA!x", "not \"<type> <base64>\""},
		{"user", "", "an empty CA public key"},
		{"user", "\x01 AAAA", "not \"<type> <base64>\""},
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		const char *keys[] = {bad[i].key, NULL};
		n = ca_bytes(buf, bad[i].type, NULL, bad[i].key ? keys : NULL);
		tu_err_clear(&e);
		struct tu_user_ca untouched = {.known = false, .cluster = (char *) "x"};
		int r = tu_model_parse_user_ca(buf, n, &untouched, &e);
		if (r != -EBADMSG || !strstr(e.msg, bad[i].msg) || strcmp(untouched.cluster, "x") != 0)
			fail_msg("bad CA %zu: %d '%s'", i, r, e.msg);
	}
	{
		static char many[70][64];
		const char *keys[71];
		for (int i = 0; i < 70; i++) {
			snprintf(many[i], sizeof(many[i]), "ssh-ed25519 AAAA%04d", i);
			keys[i] = many[i];
		}
		keys[70] = NULL;
		n = ca_bytes(buf, "user", NULL, keys);
		tu_err_clear(&e);
		assert_int_equal(tu_model_parse_user_ca(buf, n, &ca, &e), -EMSGSIZE);
		assert_non_null(strstr(e.msg, "more than 64 CA public keys"));
	}
	/* the request: type, domain, include_key false; both needed */
	assert_int_equal(tu_model_encode_get_cert_authority_request("user", "", &enc, &enc_len), -EINVAL);
	assert_int_equal(tu_model_encode_get_cert_authority_request("user", "c", &enc, &enc_len), 0);
	assert_int_equal(enc_len, 9); /* 0a 04 "user" 12 01 "c" */
	assert_memory_equal(enc, "\x0a\x04user\x12\x01" "c", 9);
	free(enc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_errors_name_the_problem),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_unknown_fields_skipped),
	    cmocka_unit_test(test_role_mfa_options),
	    cmocka_unit_test(test_auth_pref),
	    cmocka_unit_test(test_round_trip_user),
	    cmocka_unit_test(test_round_trip_role_lock),
	    cmocka_unit_test(test_round_trip_vectors),
	    cmocka_unit_test(test_helpers),
	    cmocka_unit_test(test_duplicate_map_key),
	    cmocka_unit_test(test_big_maps_and_merges),
	    cmocka_unit_test(test_append_untouched_on_failure),
	    cmocka_unit_test(test_records_judged_one_by_one),
	    cmocka_unit_test(test_request_encoders_reject),
	    cmocka_unit_test(test_user_ca),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
