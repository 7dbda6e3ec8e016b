/* SPDX-License-Identifier: Apache-2.0 */
/*
 * model.h - our own view of Teleport resources (users, roles, locks, ping),
 * independent of protobuf.  Layer: libcore.  model.c converts protobuf-c
 * messages into these; everything else (rbac, accounts, decide, cache, CLI)
 * sees only these structs.
 *
 * Ownership: every string and array is heap-allocated and owned by the
 * enclosing struct; tu_*_done() frees the contents (safe on a zeroed or
 * half-built struct), tu_dataset_free() the whole set.
 * Time: int64 microseconds since the Unix epoch, with an explicit has_* flag
 * (Go's zero time and an absent field both become has_* = false).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A list of strings. */
struct tu_strv {
	char **v;
	size_t n;
};

/* One map entry: key -> list of values (traits, label selectors). */
struct tu_kv {
	char *key;
	struct tu_strv values;
};

/* map<string, StringValues>: traits and *Labels fields. Order as received. */
struct tu_labels {
	struct tu_kv *e;
	size_t n;
};

struct tu_user {
	char *name;                    /* with unusable set: as far as it could be read */
	struct tu_strv roles;
	struct tu_labels traits;       /* logins, host_user_uid, ... */
	bool is_bot;                   /* Metadata.Labels has teleport.internal/bot */
	/* Spec.Status (LoginStatus): failed-login lock */
	bool is_locked;
	char *locked_message;
	bool has_lock_expires;
	int64_t lock_expires_usec;
	/* Expiry() = Metadata.Expires if set and non-zero, else Spec.Expires */
	bool has_expires;
	int64_t expires_usec;
	/* Not NULL: this record's content cannot be represented safely (a string with a NUL
	 * byte or invalid UTF-8, a field that does not convert); why, for the log.  Such a
	 * user is left out of a listing (tu_users_drop_unusable), owns nothing and is
	 * refused (decide.c, accounts.c). */
	char *unusable;
};

/* Role conditions (allow or deny) we act on. */
struct tu_role_cond {
	struct tu_strv logins;
	struct tu_labels node_labels;
	char *node_labels_expression;  /* NULL when absent/empty */
	struct tu_strv host_groups;
	struct tu_strv host_sudoers;
};

enum tu_host_user_mode {
	TU_HOST_USER_MODE_UNSPECIFIED = 0,
	TU_HOST_USER_MODE_OFF = 1,
	TU_HOST_USER_MODE_DROP = 2,
	TU_HOST_USER_MODE_KEEP = 3,
	TU_HOST_USER_MODE_INSECURE_DROP = 4,
	/* other values may arrive (open enum): kept as the number */
};

/* Tri-state for types.BoolValue options: absent / explicit false / true. */
enum tu_bool_opt {
	TU_BOOL_UNSET = -1,
	TU_BOOL_FALSE = 0,
	TU_BOOL_TRUE = 1,
};

struct tu_role {
	char *name;
	char *version;                 /* "v3" ... "v8" */
	struct tu_role_cond allow;
	struct tu_role_cond deny;
	int32_t create_host_user_mode; /* enum tu_host_user_mode (Options 28) */
	enum tu_bool_opt create_host_user; /* legacy Options 20 */
	char *create_host_user_default_shell; /* Options 31, NULL when absent */
	char *lock_mode;               /* Options.Lock: "", "strict", "best_effort"; NULL = "" */
	int32_t require_mfa_type;      /* Options 23 (enum RequireMFAType, 0 = off; a legacy
	                                  RequireSessionMFA 13 = true reads as 1, SESSION) */
	char *device_trust_mode;       /* Options 24: "", "off", "optional", "required",
	                                  "required-for-humans"; NULL = "" */
	int64_t max_session_ttl_nsec;
	char *unusable;                /* as for tu_user: such a role counts as missing (rbac.c),
	                                  so its holders are refused */
};

struct tu_lock_target {
	/* NULL or "" = not set */
	char *user;
	char *role;
	char *login;
	char *node;            /* legacy field 4 */
	char *mfa_device;
	char *windows_desktop;
	char *access_request;
	char *device;
	char *server_id;
};

struct tu_lock {
	char *name;
	struct tu_lock_target target;
	char *message;
	bool has_expires;      /* Spec.Expires */
	int64_t expires_usec;
	/* Not NULL: the lock's content cannot be read (why).  It is never dropped: while in
	 * force (a lock whose expiry cannot be read is in force) it refuses every login here,
	 * since whom it targets cannot be told (decide.c).  Stored in the private snapshot as
	 * the Metadata label TU_MODEL_UNREADABLE_LABEL, and read back from it. */
	char *unreadable;
};

#define TU_MODEL_UNREADABLE_LABEL "teleport-unix.internal/unreadable"

struct tu_ping {
	char *cluster_name;
	char *server_version;
	char *proxy_public_addr;
	char *remote_addr;
};

/*
 * The cluster's auth preference (types.AuthPreferenceV2), the parts that
 * decide logins (API.md §4.2, §4.8): per-session MFA and device trust
 * required cluster-wide, and the default locking mode.
 */
struct tu_auth_pref {
	bool known;                /* false: not fetched (a server without the RPC, an older cache) */
	int32_t require_mfa_type;  /* Spec 12 (enum RequireMFAType, 0 = off; a legacy
	                              RequireSessionMFA 5 = true reads as 1, SESSION) */
	char *locking_mode;        /* Spec 9: "", "best_effort", "strict"; NULL = "" */
	char *device_trust_mode;   /* Spec 13.1: "", "off", "optional", "required",
	                              "required-for-humans"; NULL = "" */
};

/*
 * The cluster's SSH user certificate authority (types.CertAuthorityV2 of
 * type "user", public keys only): the keys that sign Teleport's SSH user
 * certificates.  keys holds one "<key type> <base64>" per key (the
 * authorized_keys form without options or comment): ActiveKeys.SSH, then
 * AdditionalTrustedKeys.SSH (the other key during a rotation), else the
 * legacy CheckingKeys; duplicates dropped.
 */
struct tu_user_ca {
	bool known;                /* false: not fetched (a server without TrustService, a
	                              failed fetch, an older cache); known with no keys: none */
	char *cluster;             /* Spec.ClusterName, NULL when absent */
	struct tu_strv keys;
};

#define TU_MODEL_MAX_CA_KEYS    64    /* keys in one user CA */
#define TU_MODEL_MAX_CA_KEY_LEN 16384 /* one "<type> <base64>" */

/* Everything a sync fetches. */
struct tu_dataset {
	struct tu_user *users;
	size_t n_users;
	size_t n_users_left_out;       /* users of the listing left out (unusable) */
	size_t n_roles_left_out;       /* roles of the listing left out (unusable: they count as missing) */
	struct tu_role *roles;
	size_t n_roles;
	struct tu_lock *locks;
	size_t n_locks;
	struct tu_auth_pref auth_pref;
	struct tu_user_ca user_ca;
};

void tu_strv_done(struct tu_strv *v);
void tu_labels_done(struct tu_labels *l);
void tu_user_done(struct tu_user *u);
void tu_role_done(struct tu_role *r);
void tu_lock_done(struct tu_lock *l);
void tu_ping_done(struct tu_ping *p);
void tu_auth_pref_done(struct tu_auth_pref *p);
void tu_user_ca_done(struct tu_user_ca *ca);
/* A deep copy of src into *ret (-ENOMEM). */
int tu_user_ca_copy(const struct tu_user_ca *src, struct tu_user_ca *ret);
void tu_dataset_done(struct tu_dataset *d);

/*
 * Removes the users (roles) marked unusable from v[0..*n), keeping the order,
 * and logs each at LOG_WARNING with its name sanitized and why.  Returns how
 * many were removed.
 */
size_t tu_users_drop_unusable(struct tu_user *v, size_t *n);
size_t tu_roles_drop_unusable(struct tu_role *v, size_t *n);

/* Appends a copy of s to v. -EINVAL (NULL), -EMSGSIZE (TU_MODEL_MAX_REPEATED reached), -ENOMEM. */
int tu_strv_push(struct tu_strv *v, const char *s);

/* Returns the values of key in l, or NULL when absent (borrowed from l). */
const struct tu_strv *tu_labels_get(const struct tu_labels *l, const char *key);

/* Finds by name (linear; callers with many lookups build their own index). NULL when absent. */
const struct tu_user *tu_dataset_find_user(const struct tu_dataset *d, const char *name);
const struct tu_role *tu_dataset_find_role(const struct tu_dataset *d, const char *name);

/* Frees n elements and the array itself (NULL accepted). */
void tu_users_free(struct tu_user *v, size_t n);
void tu_roles_free(struct tu_role *v, size_t n);
void tu_locks_free(struct tu_lock *v, size_t n);

/*
 * Decoding limits (model.c).  A serialized message larger than
 * TU_MODEL_MAX_MESSAGE is refused (-EMSGSIZE) before decoding; while
 * decoding, every repeated/map field instance may hold at most
 * TU_MODEL_MAX_REPEATED elements, a message at most TU_MODEL_MAX_ELEMENTS
 * fields in total, and protobuf-c may allocate at most TU_MODEL_MAX_ALLOC
 * bytes (capped ProtobufCAllocator).  Nesting is bounded by the schema
 * (unknown fields are skipped, never descended into), checked against
 * TU_MODEL_MAX_DEPTH.
 */
#define TU_MODEL_MAX_MESSAGE  (64u << 20)
#define TU_MODEL_MAX_ALLOC    (128u << 20)
#define TU_MODEL_MAX_REPEATED (1u << 20)
#define TU_MODEL_MAX_ELEMENTS (16u << 20)
#define TU_MODEL_MAX_DEPTH    32u

/*
 * Wire decoding (model.c; the only place besides auth.c that sees protobuf).
 * Each parses one serialized message (no gRPC framing) into *ret (zeroed by
 * the caller or not: it is overwritten only on success, the old content is
 * not freed).
 * Errors: -EBADMSG (malformed, with detail in reterr), -EMSGSIZE (over limits), -ENOMEM.
 *
 * Framing is checked on the wire (a malformed frame or message is -EBADMSG).
 * Content is judged per record (a user, role or lock, whether alone or in a
 * list): a declared string with an embedded NUL byte or invalid UTF-8, or a
 * record field that does not convert (empty name, bad timestamp), marks that
 * record (tu_user.unusable, tu_role.unusable, tu_lock.unreadable, with why
 * naming the field) instead of failing the call; one hostile record never
 * stops a listing.  Outside records (page tokens, ping, the auth preference)
 * the same problems are -EBADMSG naming the field.  Unknown fields (any wire
 * type except the deprecated groups) are skipped.  Conversions:
 *  - names (Metadata.Name) must be non-empty (-EBADMSG otherwise);
 *  - optional strings are NULL when absent or "" (tu_ping: never NULL);
 *  - timestamps: absent or Go zero time (seconds <= -62135596800) = not set;
 *    nanos outside 0..999999999 or a year past 9999 = -EBADMSG;
 *  - map fields keep wire order; a key sent twice keeps its first position
 *    and the last value (protobuf semantics); an absent map value is an
 *    empty list.
 */
struct tu_err;
int tu_model_parse_user(const uint8_t *buf, size_t len, struct tu_user *ret, struct tu_err *reterr);   /* types.UserV2 */
int tu_model_parse_role(const uint8_t *buf, size_t len, struct tu_role *ret, struct tu_err *reterr);   /* types.RoleV6 */
int tu_model_parse_lock(const uint8_t *buf, size_t len, struct tu_lock *ret, struct tu_err *reterr);   /* types.LockV2 */
int tu_model_parse_ping(const uint8_t *buf, size_t len, struct tu_ping *ret, struct tu_err *reterr);   /* proto.PingResponse */
/* types.AuthPreferenceV2; sets ret->known. */
int tu_model_parse_auth_pref(const uint8_t *buf, size_t len, struct tu_auth_pref *ret, struct tu_err *reterr);
/*
 * types.CertAuthorityV2; sets ret->known.  -EBADMSG when Spec.Type is set and
 * not "user", or a public key is not "<type> <base64>[ comment]" (printable,
 * type and base64 alphabet, at most TU_MODEL_MAX_CA_KEY_LEN); -EMSGSIZE over
 * TU_MODEL_MAX_CA_KEYS keys.
 */
int tu_model_parse_user_ca(const uint8_t *buf, size_t len, struct tu_user_ca *ret, struct tu_err *reterr);

/*
 * Wire encoding of the fields we keep, as the same Teleport messages
 * (types.UserV2 / RoleV6 / LockV2), so the private cache snapshot can store
 * them and read them back with tu_model_parse_*().  Round trip is lossless
 * for every field of the structs above, with optional strings "" and NULL
 * both coming back as NULL (the expiry of a user is stored as
 * Metadata.Expires, is_bot as the Metadata label teleport.internal/bot).
 * *ret_buf is malloc'ed.  -EINVAL: NULL/empty name, or a has_* time not
 * after 0001-01-01 or past 9999-12-31; -EMSGSIZE: over TU_MODEL_MAX_MESSAGE;
 * -ENOMEM.
 */
int tu_model_encode_user(const struct tu_user *u, uint8_t **ret_buf, size_t *ret_len);
int tu_model_encode_role(const struct tu_role *r, uint8_t **ret_buf, size_t *ret_len);
int tu_model_encode_lock(const struct tu_lock *l, uint8_t **ret_buf, size_t *ret_len);
/* -EINVAL when !p->known (an unknown preference is stored as no record at all). */
int tu_model_encode_auth_pref(const struct tu_auth_pref *p, uint8_t **ret_buf, size_t *ret_len);
/* As types.CertAuthorityV2 (every key in ActiveKeys); -EINVAL when !ca->known. */
int tu_model_encode_user_ca(const struct tu_user_ca *ca, uint8_t **ret_buf, size_t *ret_len);
/* teleport.trust.v1.GetCertAuthorityRequest {type, domain, include_key = false}. */
int tu_model_encode_get_cert_authority_request(const char *type, const char *domain, uint8_t **ret_buf,
					       size_t *ret_len);

/*
 * Whole RPC messages, so auth.c never needs protobuf-c types.
 *
 * Responses: the *_append functions parse one response and APPEND its items
 * to the caller's array (*items, *n_items: NULL/0 to start; realloc'ed),
 * so paging loops just call them once per page.  On failure *items and
 * *n_items are untouched (nothing of the page is appended).  ret_next gets
 * the page token (malloc'ed) or NULL when the field is absent/empty (=
 * last page); ret_next may be NULL when the caller does not want it.
 * Adding more than TU_MODEL_MAX_REPEATED items in total is -EMSGSIZE.
 */
/* teleport.users.v1.GetUserResponse: -EBADMSG when .user is absent. */
int tu_model_parse_get_user_response(const uint8_t *buf, size_t len, struct tu_user *ret, struct tu_err *reterr);
/* teleport.users.v1.ListUsersResponse {users, next_page_token}. */
int tu_model_parse_list_users_append(const uint8_t *buf, size_t len, struct tu_user **users, size_t *n_users,
				     char **ret_next, struct tu_err *reterr);
/* proto.ListRolesResponse {Roles, NextKey}. */
int tu_model_parse_list_roles_append(const uint8_t *buf, size_t len, struct tu_role **roles, size_t *n_roles,
				     char **ret_next, struct tu_err *reterr);
/* proto.GetRolesResponse {Roles} (legacy). */
int tu_model_parse_get_roles_append(const uint8_t *buf, size_t len, struct tu_role **roles, size_t *n_roles,
				    struct tu_err *reterr);
/* proto.GetLocksResponse {Locks}. */
int tu_model_parse_get_locks_append(const uint8_t *buf, size_t len, struct tu_lock **locks, size_t *n_locks,
				    struct tu_err *reterr);
/* One types.UserV2 (a frame of the legacy GetUsers stream), appended. */
int tu_model_parse_user_append(const uint8_t *buf, size_t len, struct tu_user **users, size_t *n_users,
			       struct tu_err *reterr);

/*
 * WatchEvents (shared/teleport/WATCH.md): one proto.Event.
 *   INIT   first on every stream; has_status when it carries a WatchStatus
 *          (Auth >= 13), confirmed then holds bit (1u << kind) per kind
 *          it accepted; an old Auth sends an empty INIT (has_status false).
 *   PUT    kind and name of the resource, the record decoded in user / role /
 *          lock / auth_pref (as the list RPCs decode them: bad content marks
 *          the record, tu_user.unusable etc., it does not fail the event).
 *   DELETE kind and name (from the ResourceHeader, or the resource itself).
 */
enum tu_event_op {
	TU_EVENT_INIT = 0,
	TU_EVENT_PUT = 1,
	TU_EVENT_DELETE = 2,
};

enum tu_event_kind {
	TU_EVENT_KIND_NONE = 0,
	TU_EVENT_KIND_USER = 1,
	TU_EVENT_KIND_ROLE = 2,
	TU_EVENT_KIND_LOCK = 3,
	TU_EVENT_KIND_AUTH_PREF = 4,
};
#define TU_EVENT_KINDS_ALL 0x1eu /* the four kinds teleport-unix watches, as confirmed bits */

struct tu_event {
	enum tu_event_op op;
	enum tu_event_kind kind;
	char *name;           /* PUT/DELETE: Metadata.Name; NULL for INIT */
	bool has_status;      /* INIT: a WatchStatus came */
	unsigned confirmed;   /* INIT with status: accepted kinds, bit (1u << kind) */
	struct tu_user user;  /* PUT user (moved out by the consumer, or freed by tu_event_done) */
	struct tu_role role;
	struct tu_lock lock;
	struct tu_auth_pref auth_pref;
};

void tu_event_done(struct tu_event *e);
/* "user", "role", "lock", "cluster_auth_preference"; "?" otherwise. */
const char *tu_event_kind_name(enum tu_event_kind k);
/* "INIT", "PUT", "DELETE"; "?" otherwise. */
const char *tu_event_op_name(enum tu_event_op op);

/*
 * Parses one proto.Event.  Fails closed, with what and where in reterr:
 * -EBADMSG for broken framing, an Operation other than INIT/PUT/DELETE, a
 * resource of a kind we did not ask for (Teleport's client closes its
 * watcher on those too), two resources in one event, an INIT carrying a
 * resource, a PUT without its resource, a DELETE of an unknown kind or
 * without a name; -EMSGSIZE over the limits; -ENOMEM.  *ret is written
 * only on success.
 */
int tu_model_parse_event(const uint8_t *buf, size_t len, struct tu_event *ret, struct tu_err *reterr);

/* proto.Watch{Kinds: user, role, lock, cluster_auth_preference} (no partial success: all or an error). */
int tu_model_encode_watch_request(uint8_t **ret_buf, size_t *ret_len);

/*
 * Requests, canonical proto3 encoding (byte-identical to protoc's output).
 * *ret_buf is malloc'ed (a 0-byte message still gets a 1-byte allocation,
 * *ret_len = 0).  -EINVAL on a NULL/empty required name or negative size,
 * -ENOMEM.  Requests with no fields (proto.PingRequest, google.protobuf.Empty
 * for GetRoles, proto.GetUsersRequest with WithSecrets=false) are 0 bytes:
 * send an empty message, no encoder needed.
 */
/* legacy=false: teleport.users.v1.GetUserRequest{name}; true: proto.GetUserRequest{Name}. */
int tu_model_encode_get_user_request(const char *name, bool legacy, uint8_t **ret_buf, size_t *ret_len);
/* teleport.users.v1.ListUsersRequest{page_size, page_token (NULL/"" = first page)}. */
int tu_model_encode_list_users_request(int32_t page_size, const char *page_token, uint8_t **ret_buf,
				       size_t *ret_len);
/* proto.GetRoleRequest{Name}. */
int tu_model_encode_get_role_request(const char *name, uint8_t **ret_buf, size_t *ret_len);
/* proto.ListRolesRequest{Limit, StartKey (NULL/"" = first page)}. */
int tu_model_encode_list_roles_request(int32_t limit, const char *start_key, uint8_t **ret_buf, size_t *ret_len);
/* proto.GetLocksRequest{Targets (n_targets may be 0, targets then NULL), InForceOnly}. */
int tu_model_encode_get_locks_request(const struct tu_lock_target *targets, size_t n_targets, bool in_force_only,
				      uint8_t **ret_buf, size_t *ret_len);
/* proto.GetLockRequest{Name}. */
int tu_model_encode_get_lock_request(const char *name, uint8_t **ret_buf, size_t *ret_len);
