/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth.h - Teleport Auth API client: Ping, users, roles, locks, the auth
 * preference, with the Go client's fallbacks (users.v1 -> legacy on
 * UNIMPLEMENTED, ListRoles -> GetRoles, clusterconfig.v1 -> AuthService),
 * paging and streaming.  Layer: libcore.  Together with model.c
 * the only code that sees protobuf-c types.
 *
 * A struct tu_auth holds one transport (one HTTP/2 connection reused across
 * calls, fail-over across the configured addresses).  Not shared between
 * threads: one per thread/call site.
 *
 * Errors (negative errno, detail in reterr, gRPC status in reterr->grpc_status):
 *   -ENOENT        NOT_FOUND
 *   -EACCES        PERMISSION_DENIED / UNAUTHENTICATED ("the credential lacks ...")
 *   -EOPNOTSUPP    UNIMPLEMENTED with no fallback left
 *   -ETIMEDOUT     deadline passed (connect or request)
 *   -ECONNREFUSED, -EHOSTUNREACH  Auth unreachable (all addresses)
 *   -ECONNRESET    Auth closed the connection before answering (e.g. refused our certificate)
 *   -EPROTO        not HTTP/2 / not gRPC / TLS failure
 *   -EBADMSG       malformed protobuf or framing
 *   -EMSGSIZE      over the message size limit
 *   -EIO           other gRPC status (UNAVAILABLE, INTERNAL, ...)
 *   -EKEYEXPIRED   our certificate expired
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct tu_conf;
struct tu_creds;
struct tu_err;
struct tu_transport;
struct tu_auth;

/* Creates a client from config + loaded credentials (borrowed; must outlive the client). */
int tu_auth_new(const struct tu_conf *conf, const struct tu_creds *creds, struct tu_auth **ret, struct tu_err *reterr);

/* Test seam: a client over an arbitrary transport (see transport.h). Takes ownership of t. */
int tu_auth_new_with_transport(struct tu_transport *t, uint64_t request_timeout_usec, size_t max_message_size,
			       struct tu_auth **ret, struct tu_err *reterr);

struct tu_auth *tu_auth_free(struct tu_auth *a);

/* Progress callback for long fetches (sync's progress bar): what, count so far. May be NULL. */
typedef void (*tu_progress_fn)(void *userdata, const char *what, size_t count);
void tu_auth_set_progress(struct tu_auth *a, tu_progress_fn fn, void *userdata);

/*
 * Bounds every following call, together, to budget_usec from now (0 lifts
 * the bound).  Each RPC already has its own deadline (connect + request
 * timeout); this caps a sequence of them (a PAM decision's GetUser +
 * GetLocks, a sync's pages) so the sum never exceeds what the caller can
 * wait.  A call made after the budget is spent fails at once with
 * -ETIMEDOUT without touching the network.
 */
void tu_auth_set_budget(struct tu_auth *a, uint64_t budget_usec);

int tu_auth_ping(struct tu_auth *a, struct tu_ping *ret, struct tu_err *reterr);

/* -ENOENT when the user does not exist. */
int tu_auth_get_user(struct tu_auth *a, const char *name, struct tu_user *ret, struct tu_err *reterr);

/* All users: ListUsers paging, legacy GetUsers stream on UNIMPLEMENTED. */
int tu_auth_list_users(struct tu_auth *a, struct tu_user **ret, size_t *ret_n, struct tu_err *reterr);

/* -ENOENT when the role does not exist. */
int tu_auth_get_role(struct tu_auth *a, const char *name, struct tu_role *ret, struct tu_err *reterr);

/* All roles: ListRoles paging, legacy GetRoles on UNIMPLEMENTED. */
int tu_auth_list_roles(struct tu_auth *a, struct tu_role **ret, size_t *ret_n, struct tu_err *reterr);

/* Locks in force (GetLocks InForceOnly=true, no targets). */
int tu_auth_get_locks(struct tu_auth *a, struct tu_lock **ret, size_t *ret_n, struct tu_err *reterr);

/*
 * The cluster's auth preference: ClusterConfigService.GetAuthPreference,
 * the legacy AuthService.GetAuthPreference on UNIMPLEMENTED.  When neither
 * exists (not a Teleport server), 0 with ret->known = false.
 */
int tu_auth_get_auth_pref(struct tu_auth *a, struct tu_auth_pref *ret, struct tu_err *reterr);

/*
 * The local cluster's SSH user CA, public keys only:
 * TrustService.GetCertAuthority {type "user", domain <cluster>, include_key
 * false} (Node role: cert_authority readnosecrets).  The cluster is
 * auth.cluster_name, else the credential's, else Ping's.  A server without
 * TrustService (UNIMPLEMENTED, Teleport < 13) gives 0 with ret->known =
 * false; NOT_FOUND gives 0 with a known CA without keys.  An answer for
 * another cluster is -EBADMSG.
 */
int tu_auth_get_user_ca(struct tu_auth *a, struct tu_user_ca *ret, struct tu_err *reterr);

/* Which cluster's user CA to ask for (tu_auth_new sets it; tests with a fake transport). -ENOMEM. */
int tu_auth_set_cluster(struct tu_auth *a, const char *cluster);

/*
 * The NOTICE that the cluster-wide settings are unknown (p->known false: Auth
 * serves neither GetAuthPreference), for a sync or refresh (cmd-sync.c,
 * online.c) to log once; tu_auth_get_auth_pref and tu_auth_fetch_all only
 * log it at LOG_DEBUG, so a login's decision does not repeat it.
 */
void tu_auth_note_auth_pref(const struct tu_auth_pref *p);

/*
 * Receives one event of a WatchEvents stream.  ev belongs to the callee,
 * which may move records out of it (it is tu_event_done'd after the call).
 * Returns 0 or a negative errno (reterr filled) to end the stream.
 */
typedef int (*tu_auth_event_fn)(void *userdata, struct tu_event *ev, struct tu_err *reterr);
typedef int (*tu_auth_tick_fn)(void *userdata, struct tu_err *reterr);

/*
 * Holds one AuthService/WatchEvents stream for user, role, lock and
 * cluster_auth_preference (WATCH.md), calling on_event per decoded event and
 * on_tick after each batch of data and about once a second (transport.h),
 * until a callback fails or the stream ends.  Always returns a negative
 * errno: the callbacks' code, a malformed event (-EBADMSG: the stream is
 * dropped, fail closed), or the stream's end (Auth's status mapped as for
 * every RPC; -EIO "ended the stream" for OK).  Not bounded by the budget or
 * the request timeout (connecting is bounded by the connect timeout).
 */
int tu_auth_watch(struct tu_auth *a, tu_auth_event_fn on_event, tu_auth_tick_fn on_tick, void *userdata,
		  struct tu_err *reterr);

/*
 * Everything for a sync: users, roles, locks, the auth preference, the user
 * CA.  A failed CA fetch (other than -ENOMEM) is logged and leaves
 * ret->user_ca unknown; it never fails the rest.
 */
int tu_auth_fetch_all(struct tu_auth *a, struct tu_dataset *ret, struct tu_err *reterr);
