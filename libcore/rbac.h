/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbac.h - Teleport's node-access RBAC as pure functions: trait
 * interpolation, node_labels matching (with role-version defaults), allow
 * vs deny across roles, host-user creation, and who owns a login.
 * Layer: libcore.  No PAM, network, clock, YAML or protobuf in here.
 * All functions are thread-safe (no shared state).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct tu_err;

/* The host a decision is made for. */
struct tu_host {
	const char *name;               /* host name */
	const char *id;                 /* host UUID (lock server_id target) */
	const char *cluster;            /* cluster name, may be NULL */
	const struct tu_labels *labels; /* node labels; one value per key */
};

/*
 * Expands one template ("{{internal.logins}}", "{{external.x}}",
 * "{{email.local(external.email)}}", "{{regexp.replace(internal.x, \"re\", \"r\")}}",
 * literal text with prefix/suffix) against traits, appending results to out.
 * A missing trait adds nothing and returns 0.  A malformed template returns
 * -EBADMSG with the reason in reterr (callers drop that entry).
 */
int tu_rbac_interpolate(const char *tmpl, const struct tu_labels *traits, struct tu_strv *out, struct tu_err *reterr);

/*
 * Whether role's allow (deny=false) or deny (deny=true) node_labels /
 * node_labels_expression match the host, for user u (label templates are
 * interpolated).  Applies role-version defaults (v3).  An expression we
 * cannot evaluate is treated as not matching in allow and matching in deny;
 * *ret_why then says so (static string, or NULL).
 */
int tu_rbac_role_matches_host(const struct tu_role *role, bool deny, const struct tu_user *u, const struct tu_host *h,
			      bool *ret_match, const char **ret_why, struct tu_err *reterr);

/* The result of checking one login for one user. */
struct tu_access {
	bool allowed;
	char role[256];   /* the allowing role, or the denying role */
	char reason[512]; /* human-readable: which role/rule decided */
};

/*
 * Node access for user u as login on host h, across u's roles found in d.
 * A role of u that is not in d (it does not exist, or could not be used)
 * refuses every login, naming the role in ret->role and ret->reason
 * (Teleport's FetchRoles fails the login).  Deny wins over allow.  Never
 * fails open: errors leave ret->allowed false.
 */
int tu_rbac_check_login(const struct tu_dataset *d, const struct tu_user *u, const char *login, const struct tu_host *h,
			struct tu_access *ret, struct tu_err *reterr);

/* The logins u gets on h (allowed minus denied, valid Unix names), sorted, unique; none when a
 * role of u is missing from d. */
int tu_rbac_user_logins(const struct tu_dataset *d, const struct tu_user *u, const struct tu_host *h,
			struct tu_strv *ret, struct tu_err *reterr);

/* Host user creation for u on h (API.md §5); disabled when a role of u is missing from d. */
struct tu_host_user {
	bool enabled;          /* some matching role enables it and none says off */
	int32_t mode;          /* enum tu_host_user_mode resolved */
	struct tu_strv groups; /* host_groups (allow minus deny), interpolated, sorted unique */
	char *shell;           /* create_host_user_default_shell or NULL */
};

int tu_rbac_host_user(const struct tu_dataset *d, const struct tu_user *u, const struct tu_host *h,
		      struct tu_host_user *ret, struct tu_err *reterr);
void tu_host_user_done(struct tu_host_user *hu);

/* useradd-style login check used for logins (API.md §4.6 plus no "root" handled by callers). */
bool tu_rbac_valid_login(const char *login);

/*
 * An index over a dataset for callers doing many lookups (sync of many
 * users, owner resolution): users and roles sorted by name (built once,
 * O(n log n)), plus a cache of compiled regular expressions (mutex-guarded,
 * so one index may be shared by threads).  Borrows d: d must outlive the
 * index and not change.  -ENOMEM.
 */
struct tu_rbac_index;
int tu_rbac_index_new(const struct tu_dataset *d, struct tu_rbac_index **ret, struct tu_err *reterr);
/* Accepts NULL; returns NULL. */
struct tu_rbac_index *tu_rbac_index_free(struct tu_rbac_index *ix);
/* O(log n) lookups by name; NULL when absent.  Borrowed from the dataset. */
const struct tu_role *tu_rbac_index_role(const struct tu_rbac_index *ix, const char *name);
const struct tu_user *tu_rbac_index_user(const struct tu_rbac_index *ix, const char *name);
const struct tu_dataset *tu_rbac_index_dataset(const struct tu_rbac_index *ix);

/* The same as the tu_rbac_* functions above, with role lookup through ix. */
int tu_rbac_check_login_ix(const struct tu_rbac_index *ix, const struct tu_user *u, const char *login,
			   const struct tu_host *h, struct tu_access *ret, struct tu_err *reterr);
int tu_rbac_user_logins_ix(const struct tu_rbac_index *ix, const struct tu_user *u, const struct tu_host *h,
			   struct tu_strv *ret, struct tu_err *reterr);
int tu_rbac_host_user_ix(const struct tu_rbac_index *ix, const struct tu_user *u, const struct tu_host *h,
			 struct tu_host_user *ret, struct tu_err *reterr);

/*
 * Label value matching as Teleport's utils.MatchString: "*" anything, a
 * value "^...$" is a regular expression (POSIX ERE after translating the
 * common RE2 escapes \d \w \s; see docs), anything else a glob where '*'
 * matches any run.  -EBADMSG for an invalid regular expression.
 */
int tu_rbac_match_value(const char *pattern, const char *value, bool *ret_match, struct tu_err *reterr);
