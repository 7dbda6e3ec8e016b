/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth.c - the Teleport Auth API client (see auth.h): which RPC to call,
 * in which order, with which fallback, and paging.  Layer: libcore.
 *
 * It sees neither libcurl nor protobuf-c: requests and responses go through
 * model.h's encoders/parsers, bytes through grpc.c over a struct
 * tu_transport.  Fallbacks follow the v15-era Go client (API.md §2.2): the
 * newer RPC first, the legacy one when the server answers UNIMPLEMENTED;
 * which one worked is remembered for the life of the client.
 */
#include "auth.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "conf.h"
#include "creds.h"
#include "err.h"
#include "grpc.h"
#include "h2.h"
#include "log.h"
#include "model.h"
#include "transport.h"

#define RPC_PING          "/proto.AuthService/Ping"
#define RPC_GET_USER_V1   "/teleport.users.v1.UsersService/GetUser"
#define RPC_LIST_USERS_V1 "/teleport.users.v1.UsersService/ListUsers"
#define RPC_GET_USER      "/proto.AuthService/GetUser"
#define RPC_GET_USERS     "/proto.AuthService/GetUsers"
#define RPC_GET_ROLE      "/proto.AuthService/GetRole"
#define RPC_LIST_ROLES    "/proto.AuthService/ListRoles"
#define RPC_GET_ROLES     "/proto.AuthService/GetRoles"
#define RPC_GET_LOCKS     "/proto.AuthService/GetLocks"
#define RPC_GET_PREF_V1   "/teleport.clusterconfig.v1.ClusterConfigService/GetAuthPreference"
#define RPC_GET_PREF      "/proto.AuthService/GetAuthPreference"
#define RPC_GET_CA        "/teleport.trust.v1.TrustService/GetCertAuthority"
#define RPC_WATCH_EVENTS  "/proto.AuthService/WatchEvents"

#define PAGE_SIZE             1000    /* the Go client's default; halved on RESOURCE_EXHAUSTED */
#define MAX_PAGES             100000u /* a server that never ends paging is an error */
#define STREAM_PROGRESS_EVERY 256u

enum rpc_support {
	RPC_UNKNOWN = 0,
	RPC_WORKS,
	RPC_MISSING, /* answered UNIMPLEMENTED: use the legacy RPC */
};

struct tu_auth {
	struct tu_transport *t;
	uint64_t timeout_usec; /* per RPC: connect + request */
	size_t max_message;
	uint64_t budget_deadline; /* CLOCK_MONOTONIC; 0 = none (tu_auth_set_budget) */
	tu_progress_fn progress;
	void *progress_userdata;
	enum rpc_support users_v1;
	enum rpc_support list_roles;
	enum rpc_support pref_v1;
	char *cluster; /* the local cluster's name (for its user CA); NULL = ask Ping */
	/* Within one budget (one login decision or lookup), Auth's refusal or unreachability,
	 * as the transport reported it: later calls of that budget get the same answer without
	 * dialling again (tu_auth_set_budget). */
	int unreachable;
	struct tu_err unreachable_e;
};

int tu_auth_new_with_transport(struct tu_transport *t, uint64_t request_timeout_usec,
			       size_t max_message_size, struct tu_auth **ret, struct tu_err *reterr)
{
	struct tu_auth *a = calloc(1, sizeof(*a));

	if (!a) {
		tu_transport_free(t);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	a->t = t;
	a->timeout_usec = request_timeout_usec ? request_timeout_usec : UINT64_C(4000000);
	a->max_message = max_message_size ? max_message_size : TU_GRPC_DEFAULT_MAX_MESSAGE;
	*ret = a;
	return 0;
}

int tu_auth_new(const struct tu_conf *conf, const struct tu_creds *creds, struct tu_auth **ret,
		struct tu_err *reterr)
{
	struct tu_transport *t = NULL;
	int r;

	r = tu_h2_new(conf, creds, 0, &t, reterr);
	if (r < 0)
		return r;
	/* A blackholed Auth may cost the connect timeout and then the request timeout, never more.
	 */
	r = tu_auth_new_with_transport(t, conf->connect_timeout_usec + conf->request_timeout_usec,
				       conf->max_message_size ? (size_t) conf->max_message_size : 0, ret,
				       reterr);
	if (r < 0)
		return r;
	/* The cluster our host certificate belongs to: its user CA signs its users' certificates. */
	r = tu_auth_set_cluster(*ret, conf->cluster_name ? conf->cluster_name : tu_creds_cluster(creds));
	if (r < 0) {
		*ret = tu_auth_free(*ret);
		return tu_err_set(reterr, r, "out of memory");
	}
	return 0;
}

const char *tu_auth_via(struct tu_auth *a, char *what, size_t size)
{
	if (what && size)
		what[0] = '\0';
	return a->t->via ? a->t->via(a->t, what, size) : NULL;
}

int tu_auth_set_cluster(struct tu_auth *a, const char *cluster)
{
	char *c = NULL;

	if (cluster && *cluster && !(c = strdup(cluster)))
		return -ENOMEM;
	free(a->cluster);
	a->cluster = c;
	return 0;
}

struct tu_auth *tu_auth_free(struct tu_auth *a)
{
	if (!a)
		return NULL;
	tu_transport_free(a->t);
	free(a->cluster);
	free(a);
	return NULL;
}

void tu_auth_set_progress(struct tu_auth *a, tu_progress_fn fn, void *userdata)
{
	a->progress = fn;
	a->progress_userdata = userdata;
}

static void progress(struct tu_auth *a, const char *what, size_t n)
{
	if (a->progress)
		a->progress(a->progress_userdata, what, n);
}

void tu_auth_set_budget(struct tu_auth *a, uint64_t budget_usec)
{
	a->unreachable = 0; /* a new budget dials again */
	a->budget_deadline = budget_usec ? tu_transport_now_usec() + budget_usec : 0;
}

/* This RPC's deadline: its own timeout, capped by the caller's budget. */
static int deadline(const struct tu_auth *a, const char *path, uint64_t *ret, struct tu_err *e)
{
	uint64_t now = tu_transport_now_usec();
	uint64_t d = now + a->timeout_usec;
	char rpc[128];

	if (a->budget_deadline) {
		if (now >= a->budget_deadline)
			return tu_err_set(e, -ETIMEDOUT,
					  "no time left for %s: the caller's time budget is spent",
					  tu_grpc_rpc_name(path, rpc, sizeof(rpc)));
		if (a->budget_deadline < d)
			d = a->budget_deadline;
	}
	*ret = d;
	return 0;
}

/* A timeout at the budget's end (not the RPC's own) says so: the caller's bound, not Auth's. */
static int budget_note(const struct tu_auth *a, uint64_t d, int r, struct tu_err *e)
{
	if (r == -ETIMEDOUT && a->budget_deadline && d == a->budget_deadline)
		tu_err_prefix(e, "time budget for all RPCs spent");
	return r;
}

static int unary(struct tu_auth *a, const char *path, const uint8_t *req, size_t req_len,
		 uint8_t **ret_msg, size_t *ret_len, struct tu_err *e)
{
	uint64_t d = 0;

	tu_err_clear(e);
	int r = deadline(a, path, &d, e);
	if (r < 0)
		return r;
	if (a->unreachable) {
		/* Refused or unreachable a moment ago in this budget: the same answer, no dial. */
		if (e)
			*e = a->unreachable_e;
		return a->unreachable;
	}
	r = budget_note(a, d, tu_grpc_unary(a->t, path, req, req_len, d, a->max_message, ret_msg, ret_len, e), e);
	/* Only the transport's own verdict on reaching Auth (no gRPC status: nothing answered),
	 * and only under a budget: sync and watch, which set none, dial every time. */
	if (a->budget_deadline && e && e->grpc_status < 0 &&
	    (r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ENETUNREACH)) {
		a->unreachable = r;
		a->unreachable_e = *e;
	}
	return r;
}

/* Adds which RPC's answer did not decode. */
static int malformed(struct tu_err *e, const char *path, int r)
{
	char rpc[128];

	tu_err_prefix(e, "malformed answer to %s", tu_grpc_rpc_name(path, rpc, sizeof(rpc)));
	return r;
}

static int done(struct tu_err *reterr, const struct tu_err *e, int r)
{
	if (r < 0 && reterr)
		*reterr = *e;
	return r;
}

int tu_auth_ping(struct tu_auth *a, struct tu_ping *ret, struct tu_err *reterr)
{
	_cleanup_free_ uint8_t *msg = NULL;
	struct tu_err e;
	size_t len = 0;
	struct tu_ping p = {0};
	int r;

	r = unary(a, RPC_PING, NULL, 0, &msg, &len, &e);
	if (r < 0)
		return done(reterr, &e, r);
	r = tu_model_parse_ping(msg, len, &p, &e);
	if (r < 0)
		return done(reterr, &e, malformed(&e, RPC_PING, r));
	*ret = p;
	return 0;
}

static int not_found(struct tu_err *e, const char *what, const char *name)
{
	char n[128];
	int status = e->grpc_status;

	tu_err_set(e, -ENOENT, "%s '%s' not found", what, tu_sanitize(name, n, sizeof(n)));
	e->grpc_status = status;
	return -ENOENT;
}

int tu_auth_get_user(struct tu_auth *a, const char *name, struct tu_user *ret,
		     struct tu_err *reterr)
{
	_cleanup_free_ uint8_t *req = NULL, *msg = NULL;
	struct tu_user u = {0};
	struct tu_err e;
	size_t req_len = 0, len = 0;
	int r;

	tu_err_clear(&e);
	if (!name || !*name)
		return tu_err_set(reterr, -EINVAL, "empty user name");

	if (a->users_v1 != RPC_MISSING) {
		r = tu_model_encode_get_user_request(name, false, &req, &req_len);
		if (r < 0)
			return tu_err_set(reterr, r, "cannot encode the GetUser request: %s",
					  strerror(-r));
		r = unary(a, RPC_GET_USER_V1, req, req_len, &msg, &len, &e);
		if (r == 0) {
			a->users_v1 = RPC_WORKS;
			r = tu_model_parse_get_user_response(msg, len, &u, &e);
			if (r < 0)
				return done(reterr, &e, malformed(&e, RPC_GET_USER_V1, r));
			*ret = u;
			return 0;
		}
		if (r != -EOPNOTSUPP) {
			if (r == -ENOENT)
				r = not_found(&e, "Teleport user", name);
			return done(reterr, &e, r);
		}
		/* Teleport < 15: no users.v1 service. */
		a->users_v1 = RPC_MISSING;
		free(TAKE_PTR(req));
	}

	r = tu_model_encode_get_user_request(name, true, &req, &req_len);
	if (r < 0)
		return tu_err_set(reterr, r, "cannot encode the GetUser request: %s", strerror(-r));
	r = unary(a, RPC_GET_USER, req, req_len, &msg, &len, &e);
	if (r == -ENOENT)
		r = not_found(&e, "Teleport user", name);
	if (r < 0)
		return done(reterr, &e, r);
	r = tu_model_parse_user(msg, len, &u, &e);
	if (r < 0)
		return done(reterr, &e, malformed(&e, RPC_GET_USER, r));
	*ret = u;
	return 0;
}

/* Whether a paged call should be retried with a smaller page: the server's
 * RESOURCE_EXHAUSTED, or our own message limit (the Go client's grpc-go
 * reports that one as RESOURCE_EXHAUSTED too). */
static bool page_too_big(int r, const struct tu_err *e)
{
	return e->grpc_status == TU_GRPC_RESOURCE_EXHAUSTED ||
	       (r == -EMSGSIZE && e->grpc_status < 0);
}

static int check_next(const char *path, const char *token, const char *next, unsigned pages,
		      struct tu_err *e)
{
	char rpc[128];

	if (token && strcmp(token, next) == 0)
		return tu_err_set(e, -EPROTO, "%s returned the same page token twice (paging loop)",
				  tu_grpc_rpc_name(path, rpc, sizeof(rpc)));
	if (pages >= MAX_PAGES)
		return tu_err_set(e, -EMSGSIZE, "%s: more than %u pages",
				  tu_grpc_rpc_name(path, rpc, sizeof(rpc)), MAX_PAGES);
	return 0;
}

struct stream_users {
	struct tu_auth *a;
	struct tu_user *users;
	size_t n;
};

static int on_stream_user(void *userdata, const uint8_t *msg, size_t len, struct tu_err *reterr)
{
	struct stream_users *s = userdata;
	int r = tu_model_parse_user_append(msg, len, &s->users, &s->n, reterr);

	if (r < 0)
		return malformed(reterr, RPC_GET_USERS, r);
	if (s->n % STREAM_PROGRESS_EVERY == 0)
		progress(s->a, "users", s->n);
	return 0;
}

static int list_users_legacy(struct tu_auth *a, struct tu_user **ret, size_t *ret_n,
			     struct tu_err *e)
{
	struct stream_users s = {.a = a};
	int r;

	uint64_t d = 0;

	tu_err_clear(e);
	r = deadline(a, RPC_GET_USERS, &d, e);
	if (r < 0)
		return r;
	/* proto.GetUsersRequest{WithSecrets: false} encodes to 0 bytes. */
	r = tu_grpc_call(a->t, RPC_GET_USERS, NULL, 0, d, a->max_message, on_stream_user, &s, NULL,
			 e);
	r = budget_note(a, d, r, e);
	if (r < 0) {
		tu_users_free(s.users, s.n);
		return r;
	}
	progress(a, "users", s.n);
	*ret = s.users;
	*ret_n = s.n;
	return 0;
}

/*
 * One paged listing (ListUsers / ListRoles): pages of page_size, halved on
 * RESOURCE_EXHAUSTED or an oversize answer, next-page tokens checked, the
 * newer RPC remembered as missing when its first page answers UNIMPLEMENTED.
 * Returns 0 with the items appended to *items / *n (left for the caller to
 * free on failure), 1 when the caller must use the legacy RPC, or -errno.
 */
struct pager {
	const char *rpc;
	const char *what;  /* "users" / "roles": progress and messages */
	enum rpc_support *support;
	int (*encode)(int32_t page_size, const char *token, uint8_t **ret_buf, size_t *ret_len);
	int (*append)(const uint8_t *msg, size_t len, void *items, size_t *n, char **next, struct tu_err *e);
};

static int list_paged(struct tu_auth *a, const struct pager *p, void *items, size_t *n, struct tu_err *e)
{
	char *token = NULL;
	int32_t page_size = PAGE_SIZE;
	unsigned pages = 0;
	int r = 0;

	if (*p->support == RPC_MISSING)
		return 1;
	for (;;) {
		_cleanup_free_ uint8_t *req = NULL, *msg = NULL;
		size_t req_len = 0, len = 0;
		char *next = NULL;

		r = p->encode(page_size, token, &req, &req_len);
		if (r < 0) {
			tu_err_set(e, r, "cannot encode the %s request: %s", p->rpc, strerror(-r));
			break;
		}
		r = unary(a, p->rpc, req, req_len, &msg, &len, e);
		if (r == -EOPNOTSUPP && pages == 0 && *p->support != RPC_WORKS) {
			*p->support = RPC_MISSING;
			r = 1;
			break;
		}
		if (r < 0 && page_too_big(r, e) && page_size > 1) {
			page_size /= 2;
			continue;
		}
		if (r < 0)
			break;
		*p->support = RPC_WORKS;
		r = p->append(msg, len, items, n, &next, e);
		if (r < 0) {
			malformed(e, p->rpc, r);
			break;
		}
		pages++;
		progress(a, p->what, *n);
		if (!next)
			break;
		r = check_next(p->rpc, token, next, pages, e);
		free(token);
		token = next;
		if (r < 0)
			break;
	}
	free(token);
	return r;
}

static int append_users(const uint8_t *msg, size_t len, void *items, size_t *n, char **next, struct tu_err *e)
{
	return tu_model_parse_list_users_append(msg, len, items, n, next, e);
}

static int append_roles(const uint8_t *msg, size_t len, void *items, size_t *n, char **next, struct tu_err *e)
{
	return tu_model_parse_list_roles_append(msg, len, items, n, next, e);
}

int tu_auth_list_users(struct tu_auth *a, struct tu_user **ret, size_t *ret_n,
		       struct tu_err *reterr)
{
	const struct pager p = { RPC_LIST_USERS_V1, "users", &a->users_v1, tu_model_encode_list_users_request,
				 append_users };
	struct tu_user *users = NULL;
	size_t n = 0;
	struct tu_err e;
	int r;

	tu_err_clear(&e);
	r = list_paged(a, &p, &users, &n, &e);
	if (r == 1)
		return done(reterr, &e, list_users_legacy(a, ret, ret_n, &e));
	if (r < 0) {
		tu_users_free(users, n);
		return done(reterr, &e, r);
	}
	*ret = users;
	*ret_n = n;
	return 0;
}

int tu_auth_get_role(struct tu_auth *a, const char *name, struct tu_role *ret,
		     struct tu_err *reterr)
{
	_cleanup_free_ uint8_t *req = NULL, *msg = NULL;
	struct tu_role role = {0};
	struct tu_err e;
	size_t req_len = 0, len = 0;
	int r;

	if (!name || !*name)
		return tu_err_set(reterr, -EINVAL, "empty role name");
	r = tu_model_encode_get_role_request(name, &req, &req_len);
	if (r < 0)
		return tu_err_set(reterr, r, "cannot encode the GetRole request: %s", strerror(-r));
	r = unary(a, RPC_GET_ROLE, req, req_len, &msg, &len, &e);
	if (r == -ENOENT)
		r = not_found(&e, "role", name);
	if (r < 0)
		return done(reterr, &e, r);
	r = tu_model_parse_role(msg, len, &role, &e);
	if (r < 0)
		return done(reterr, &e, malformed(&e, RPC_GET_ROLE, r));
	*ret = role;
	return 0;
}

static int list_roles_legacy(struct tu_auth *a, struct tu_role **ret, size_t *ret_n,
			     struct tu_err *e)
{
	_cleanup_free_ uint8_t *msg = NULL;
	struct tu_role *roles = NULL;
	size_t n = 0, len = 0;
	int r;

	/* google.protobuf.Empty: 0 bytes. */
	r = unary(a, RPC_GET_ROLES, NULL, 0, &msg, &len, e);
	if (r < 0)
		return r;
	r = tu_model_parse_get_roles_append(msg, len, &roles, &n, e);
	if (r < 0)
		return malformed(e, RPC_GET_ROLES, r);
	progress(a, "roles", n);
	*ret = roles;
	*ret_n = n;
	return 0;
}

int tu_auth_list_roles(struct tu_auth *a, struct tu_role **ret, size_t *ret_n,
		       struct tu_err *reterr)
{
	const struct pager p = { RPC_LIST_ROLES, "roles", &a->list_roles, tu_model_encode_list_roles_request,
				 append_roles };
	struct tu_role *roles = NULL;
	size_t n = 0;
	struct tu_err e;
	int r;

	tu_err_clear(&e);
	r = list_paged(a, &p, &roles, &n, &e);
	if (r == 1)
		return done(reterr, &e, list_roles_legacy(a, ret, ret_n, &e));
	if (r < 0) {
		tu_roles_free(roles, n);
		return done(reterr, &e, r);
	}
	*ret = roles;
	*ret_n = n;
	return 0;
}

int tu_auth_get_locks(struct tu_auth *a, struct tu_lock **ret, size_t *ret_n, struct tu_err *reterr)
{
	_cleanup_free_ uint8_t *req = NULL, *msg = NULL;
	struct tu_lock *locks = NULL;
	size_t n = 0, req_len = 0, len = 0;
	struct tu_err e;
	int r;

	r = tu_model_encode_get_locks_request(NULL, 0, true, &req, &req_len);
	if (r < 0)
		return tu_err_set(reterr, r, "cannot encode the GetLocks request: %s",
				  strerror(-r));
	r = unary(a, RPC_GET_LOCKS, req, req_len, &msg, &len, &e);
	if (r < 0)
		return done(reterr, &e, r);
	r = tu_model_parse_get_locks_append(msg, len, &locks, &n, &e);
	if (r < 0)
		return done(reterr, &e, malformed(&e, RPC_GET_LOCKS, r));
	progress(a, "locks", n);
	*ret = locks;
	*ret_n = n;
	return 0;
}

void tu_auth_note_auth_pref(const struct tu_auth_pref *p)
{
	if (!p->known)
		tu_log(LOG_NOTICE, "Auth serves no GetAuthPreference: cluster-wide MFA, device trust and locking mode unknown, roles decide");
}

int tu_auth_get_auth_pref(struct tu_auth *a, struct tu_auth_pref *ret, struct tu_err *reterr)
{
	_cleanup_free_ uint8_t *msg = NULL;
	struct tu_auth_pref p = {0};
	const char *path = RPC_GET_PREF_V1;
	struct tu_err e;
	size_t len = 0;
	int r = -EOPNOTSUPP;

	/* Both take an empty request (GetAuthPreferenceRequest {} / Empty). */
	if (a->pref_v1 != RPC_MISSING) {
		r = unary(a, path, NULL, 0, &msg, &len, &e);
		if (r == 0)
			a->pref_v1 = RPC_WORKS;
		else if (r == -EOPNOTSUPP)
			a->pref_v1 = RPC_MISSING; /* before clusterconfig.v1 */
	}
	if (r == -EOPNOTSUPP) {
		path = RPC_GET_PREF;
		r = unary(a, path, NULL, 0, &msg, &len, &e);
	}
	if (r == -EOPNOTSUPP) {
		/* Neither: a server that is not Teleport.  Roles still decide.  Said once per
		 * sync / refresh (tu_auth_note_auth_pref), not with every login's decision. */
		tu_log(LOG_DEBUG, "Auth serves no GetAuthPreference");
		*ret = (struct tu_auth_pref){0};
		return 0;
	}
	if (r < 0)
		return done(reterr, &e, r);
	r = tu_model_parse_auth_pref(msg, len, &p, &e);
	if (r < 0)
		return done(reterr, &e, malformed(&e, path, r));
	*ret = p;
	return 0;
}

int tu_auth_get_user_ca(struct tu_auth *a, struct tu_user_ca *ret, struct tu_err *reterr)
{
	_cleanup_free_ uint8_t *req = NULL, *msg = NULL;
	struct tu_user_ca ca = {0};
	struct tu_err e;
	size_t req_len = 0, len = 0;
	char cl[128];
	int r;

	tu_err_clear(&e);
	if (!a->cluster) {
		struct tu_ping p = {0};
		r = tu_auth_ping(a, &p, &e);
		if (r < 0)
			return done(reterr, &e, r);
		r = tu_auth_set_cluster(a, p.cluster_name);
		tu_ping_done(&p);
		if (r < 0)
			return tu_err_set(reterr, r, "out of memory");
		if (!a->cluster)
			return tu_err_set(reterr, -EBADMSG, "Auth's Ping names no cluster: cannot ask for its user CA");
	}
	r = tu_model_encode_get_cert_authority_request("user", a->cluster, &req, &req_len);
	if (r < 0)
		return tu_err_set(reterr, r, "encoding GetCertAuthorityRequest: %s", strerror(-r));
	r = unary(a, RPC_GET_CA, req, req_len, &msg, &len, &e);
	if (r == -EOPNOTSUPP) {
		/* Teleport before 13 has no TrustService (its Go client then used the HTTP API,
		 * which we do not speak): no CA known, so SSH certificates prove nothing. */
		tu_log(LOG_NOTICE, "Auth serves no TrustService.GetCertAuthority: Teleport's user CA is unknown, SSH certificates prove no identity");
		*ret = (struct tu_user_ca){0};
		return 0;
	}
	if (r == -ENOENT) {
		/* A real answer: this cluster has no user CA.  Nothing can match it. */
		tu_log(LOG_WARNING, "Auth has no user CA for cluster '%s': SSH certificates prove no identity",
		       tu_sanitize(a->cluster, cl, sizeof(cl)));
		*ret = (struct tu_user_ca){.known = true};
		return 0;
	}
	if (r < 0)
		return done(reterr, &e, r);
	r = tu_model_parse_user_ca(msg, len, &ca, &e);
	if (r >= 0 && ca.cluster && strcmp(ca.cluster, a->cluster) != 0) {
		char got[128];
		r = tu_err_set(&e, -EBADMSG, "asked for the user CA of cluster '%s', got cluster '%s'",
			       tu_sanitize(a->cluster, cl, sizeof(cl)), tu_sanitize(ca.cluster, got, sizeof(got)));
		tu_user_ca_done(&ca);
	}
	if (r < 0)
		return done(reterr, &e, malformed(&e, RPC_GET_CA, r));
	*ret = ca;
	return 0;
}

int tu_auth_fetch_all(struct tu_auth *a, struct tu_dataset *ret, struct tu_err *reterr)
{
	struct tu_dataset d = {0};
	int r;

	r = tu_auth_list_users(a, &d.users, &d.n_users, reterr);
	if (r >= 0)
		r = tu_auth_list_roles(a, &d.roles, &d.n_roles, reterr);
	if (r >= 0) {
		/* One record that cannot be represented never stops the others (model.h):
		 * users are left out, roles too (their holders are then refused, rbac.c),
		 * and counted; locks are kept, unreadable ones applying to everyone. */
		d.n_users_left_out = tu_users_drop_unusable(d.users, &d.n_users);
		d.n_roles_left_out = tu_roles_drop_unusable(d.roles, &d.n_roles);
	}
	if (r >= 0)
		r = tu_auth_get_locks(a, &d.locks, &d.n_locks, reterr);
	if (r >= 0)
		r = tu_auth_get_auth_pref(a, &d.auth_pref, reterr);
	if (r >= 0) {
		/* The user CA is not worth losing users, roles and locks for: on failure it stays
		 * unknown and the cache keeps the previous snapshot's keys (cache.c). */
		struct tu_err e;
		char why[TU_ERR_MSG_MAX + 64];

		tu_err_clear(&e);
		int k = tu_auth_get_user_ca(a, &d.user_ca, &e);
		if (k == -ENOMEM)
			r = tu_err_set(reterr, k, "out of memory");
		else if (k < 0)
			tu_log(LOG_WARNING, "fetching Teleport's user CA failed, keeping the previous one: %s",
			       tu_err_format(&e, why, sizeof(why)));
	}
	if (r < 0) {
		tu_dataset_done(&d);
		return r;
	}
	*ret = d;
	return 0;
}

struct watch_call {
	tu_auth_event_fn on_event;
	tu_auth_tick_fn on_tick;
	void *userdata;
	uint64_t n;
};

static int on_watch_tick(void *userdata, struct tu_err *reterr)
{
	struct watch_call *w = userdata;

	return w->on_tick ? w->on_tick(w->userdata, reterr) : 0;
}

static int on_watch_message(void *userdata, const uint8_t *msg, size_t len, struct tu_err *reterr)
{
	struct watch_call *w = userdata;
	struct tu_event ev = {0};
	int r;

	r = tu_model_parse_event(msg, len, &ev, reterr);
	if (r < 0) {
		tu_err_prefix(reterr, "WatchEvents: event #%llu (%zu bytes)",
			      (unsigned long long) w->n + 1, len);
		return r;
	}
	w->n++;
	r = w->on_event(w->userdata, &ev, reterr);
	tu_event_done(&ev);
	return r;
}

int tu_auth_watch(struct tu_auth *a, tu_auth_event_fn on_event, tu_auth_tick_fn on_tick, void *userdata,
		  struct tu_err *reterr)
{
	_cleanup_free_ uint8_t *req = NULL;
	struct watch_call w = {.on_event = on_event, .on_tick = on_tick, .userdata = userdata};
	size_t req_len = 0;
	int r;

	r = tu_model_encode_watch_request(&req, &req_len);
	if (r < 0)
		return tu_err_set(reterr, r, "cannot encode the WatchEvents request");
	return tu_grpc_stream(a->t, RPC_WATCH_EVENTS, req, req_len, a->max_message, on_watch_message,
			      on_watch_tick, &w, reterr);
}
