/* SPDX-License-Identifier: Apache-2.0 */
/*
 * accounts.h - Teleport users and roles -> the POSIX accounts and groups this
 * host serves (SPEC §4).  Layer: libcore, pure: no I/O, no clock (now is an
 * argument), no config parsing; the locally defined groups (/etc/group) are
 * passed in by the caller.  Uses rbac.h for every RBAC question.
 *
 * Rules (the contract tests in tests/unit/test-accounts.c pin each one):
 *  - Users that are expired (has_expires && expires_usec <= now) or bots are
 *    ignored: they own and grant nothing.  Locked users still count (NSS shows
 *    the account; PAM refuses the login).
 *  - A login L is an account when some user gets L here (tu_rbac_user_logins);
 *    with TU_SOURCE_HOST_USER_CREATION only users whose host-user creation is
 *    enabled here (tu_rbac_host_user) count.  "root" and names failing
 *    tu_rbac_valid_login or useradd's rule (shadow 4.13:
 *    [A-Za-z0-9_.][A-Za-z0-9_.-]*$?, not all digits, not "." or "..") are
 *    skipped with a log line; the same rule applies to group names.
 *  - Owner: the user named L (if that user is not ignored), else the users
 *    whose `logins` trait holds L, else the users granting L; the smallest
 *    name (bytewise) among the first non-empty step owns the attributes;
 *    n_owners counts that step's candidates (> 1 = shared account).
 *  - gecos = the owner's Teleport name (':' and control characters become '_').
 *  - uid: the owner's first `host_user_uid` trait value when it is a plain
 *    decimal in [trait_id_min, trait_id_max] (accounts.trait_id_range, its
 *    own fence: sites match existing file ownership, e.g. NFS homes at
 *    1000-60000, as Teleport's `useradd --uid` does), never 0, 65534 or
 *    65535, never a uid a local account (/etc/passwd) or a gid a local group
 *    holds, and not already claimed (logins are processed in bytewise order,
 *    so the smallest login wins a contested trait uid, on every host alike);
 *    else the deterministic hash of
 *    L (tu_idhash) probed past every taken id.  Accounts are processed in
 *    bytewise login order, so the result does not depend on input order.
 *  - gid: the owner's first `host_user_gid` trait value under the same rules
 *    (trait_id_range, never 0/65534/65535 nor an id a local account or group
 *    holds: traits may come from an identity provider, and a gid like 27
 *    (sudo) must never become anyone's primary group);
 *    else the user-private group: a group named L with gid = uid.  With a
 *    trait gid that a local group (or another of our groups) already has,
 *    that group is the primary group; otherwise a group named L with that gid
 *    is served (unless the name L is taken: then the gid has no entry).
 *  - Supplementary groups: the owner's host_groups (tu_rbac_host_user,
 *    allow minus deny).  A group defined locally keeps its local gid and is
 *    not served by us (the files module does; initgroups still reports it);
 *    a group named like one of our accounts' user-private groups is that
 *    group; any other gets the deterministic hash of its name, probed past
 *    every uid/gid taken by accounts, local groups and earlier groups.  "root"
 *    and gid 0 are never granted.
 *  - home = home_template with every "{login}" replaced; shell from config.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "rbac.h"

struct tu_err;
struct tu_conf;

/* A group defined in /etc/group (only name and gid matter here). */
struct tu_local_group {
	const char *name;
	uint32_t gid;
};

struct tu_accounts_opts {
	int source;       /* enum tu_accounts_source (conf.h) */
	uint32_t uid_min; /* inclusive range for hashed uids/gids */
	uint32_t uid_max;
	uint32_t trait_id_min; /* inclusive fence for host_user_uid/gid traits; 0/0 = uid_range */
	uint32_t trait_id_max;
	const uint32_t *local_uids; /* /etc/passwd uids, sorted; may be NULL when n_local_uids = 0 */
	size_t n_local_uids;
	const char *home_template; /* "{login}" is replaced; NULL = "/home/{login}" */
	const char *shell;         /* NULL = "/bin/bash" */
	const struct tu_local_group *local_groups; /* may be NULL when n_local_groups = 0 */
	size_t n_local_groups;
};

struct tu_account {
	char *login;
	uint32_t uid;
	uint32_t gid; /* primary gid */
	char *gecos;  /* the owner's Teleport name, sanitized */
	char *home;
	char *shell;
	char *owner;     /* the owner's Teleport name, unsanitized */
	size_t n_owners; /* candidates at the deciding step; > 1 = shared */
	uint32_t *gids;  /* supplementary gids (not the primary), sorted, unique */
	size_t n_gids;
};

struct tu_group {
	char *name;
	uint32_t gid;
	bool user_private; /* the user-private (or trait-gid) group of the account of the same name
			    */
	struct tu_strv
	    members; /* logins having it as a supplementary group, sorted (never the UPG owner) */
};

/* The result.  accounts sorted by login, groups sorted by name (both bytewise). */
struct tu_accounts {
	struct tu_account *accounts;
	size_t n_accounts;
	struct tu_group *groups;
	size_t n_groups;
	size_t n_skipped; /* logins and groups skipped (invalid, root, collisions) */
};

/* Fills opts from conf (borrowing its strings); local groups are left empty. */
void tu_accounts_opts_from_conf(const struct tu_conf *conf, struct tu_accounts_opts *ret);

/*
 * Computes the accounts and groups for host h from d at now_usec.  Problems
 * with single users, logins or groups (invalid names, RBAC template errors,
 * unresolvable collisions) are logged at LOG_INFO/LOG_DEBUG through tu_log and
 * skipped, never fatal.  On success *ret is filled (release with
 * tu_accounts_done); on failure it is untouched.
 * Errors: -EINVAL (bad opts: empty or inverted uid range, with detail),
 * -ENOMEM.  Thread-safe (no shared state).
 * Cost: O(users x roles-per-user + accounts x log(accounts)).
 */
int tu_accounts_compute(const struct tu_dataset *d, const struct tu_host *h,
			const struct tu_accounts_opts *opts, int64_t now_usec,
			struct tu_accounts *ret, struct tu_err *reterr);

/* Frees the contents; safe on a zeroed struct; leaves it zeroed. */
void tu_accounts_done(struct tu_accounts *a);

/*
 * A memo for a caller that recomputes the accounts of one host again and
 * again as a few records change (`teleport-unix watch`, issue 13): it keeps,
 * per Teleport user (keyed by name), the part of the mapping that depends
 * only on that user's record, its roles, the host and opts->source (its
 * logins here, its host-user result: host groups, mode), and recomputes only
 * the users it has no result for.  The global step (owners, uid/gid
 * assignment with collision probing, groups, memberships, skips) runs in
 * full on every call, with the same code, so tu_accounts_compute_memo's
 * result is identical to tu_accounts_compute's on the same input
 * (tests/unit/test-accounts.c applies random event sequences and compares).
 *
 * The contract: after changing d, the caller forgets what changed:
 *   - a user PUT or DELETE: tu_accounts_memo_forget_user(m, name);
 *   - a role PUT or DELETE: tu_accounts_memo_forget_role(m, d, role name)
 *     (its holders in d: users list their roles by name, so the holders of a
 *     role that was just created or deleted are found too);
 *   - a different host (labels, name) or dataset replaced wholesale (a new
 *     listing): tu_accounts_memo_clear(m).
 * opts->source is checked (a change clears the memo); the other opts (id
 * ranges, local groups and uids, home, shell) only feed the global step and
 * may change freely; now_usec too (expiry is checked on every call).  As a
 * guard besides the contract, a user whose record is not the one a result
 * was computed from (other name, roles or traits storage) is recomputed.
 * Users no longer in d are dropped after each call.  d's user names must be
 * unique (Auth's are); with duplicates the call computes afresh.
 * Not thread-safe (one memo per caller).  Cost per call: O(users +
 * grants log grants) for the global step, plus the rbac work of the
 * forgotten users only.
 */
struct tu_accounts_memo;

/* -ENOMEM. */
int tu_accounts_memo_new(struct tu_accounts_memo **ret);
/* Accepts NULL; returns NULL. */
struct tu_accounts_memo *tu_accounts_memo_free(struct tu_accounts_memo *m);
/* Forgets everything (the next call computes every user). */
void tu_accounts_memo_clear(struct tu_accounts_memo *m);
/* Forgets the result of the user named name (absent: nothing to do). */
void tu_accounts_memo_forget_user(struct tu_accounts_memo *m, const char *name);
/* Forgets the results of every user of d that lists role. */
void tu_accounts_memo_forget_role(struct tu_accounts_memo *m, const struct tu_dataset *d,
				  const char *role);
/* How many users the last tu_accounts_compute_memo call computed (the rest came from m). */
size_t tu_accounts_memo_last_computed(const struct tu_accounts_memo *m);

/*
 * tu_accounts_compute with m (NULL: the same as tu_accounts_compute).  Same
 * outputs, logs and errors; on failure m is cleared (the next call starts
 * over).
 */
int tu_accounts_compute_memo(struct tu_accounts_memo *m, const struct tu_dataset *d,
			     const struct tu_host *h, const struct tu_accounts_opts *opts,
			     int64_t now_usec, struct tu_accounts *ret, struct tu_err *reterr);

/* Binary search by login / uid / group name / gid.  NULL when absent.  Borrowed from a. */
const struct tu_account *tu_accounts_find_login(const struct tu_accounts *a, const char *login);
const struct tu_group *tu_accounts_find_group(const struct tu_accounts *a, const char *name);

/* Whether u is ignored by the mapping at now_usec (expired or bot); *ret_why a static string. */
bool tu_accounts_user_ignored(const struct tu_user *u, int64_t now_usec, const char **ret_why);
