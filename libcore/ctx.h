/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctx.h - struct tu_ctx: the per-call context shared by the PAM module and
 * the CLI: config, credentials, Auth client and host identity, each set up
 * lazily on first use.  Layer: libcore.  The one place that reads the
 * environment (always secure_getenv).  One ctx per thread.
 */
#pragma once

#include "creds.h"

#include <stdbool.h>
#include <stdint.h>

#include "rbac.h"

struct tu_conf;
struct tu_creds;
struct tu_auth;
struct tu_err;
struct tu_ctx;

enum {
	TU_CTX_RELAXED_PERMS = 1 << 0, /* config/key owner+mode checks off (CLI --insecure-perms, tests) */
};

/* Loads the config (path: see tu_conf_path()). Errors as tu_conf_load(). */
int tu_ctx_new(const char *config_path, unsigned flags, struct tu_ctx **ret, struct tu_err *reterr);
/*
 * The same with the credential replaced by the tsh profile directory
 * profile_dir (absolute; its current profile): the CLI's --profile.  When
 * config_path is NULL and no file is named by TELEPORT_UNIX_CONFIG, a
 * missing default configuration file is not an error: every setting takes
 * its default and the Proxy address comes from the profile (conf->proxy is
 * filled when the credential is loaded, unless auth.proxy is set).
 */
int tu_ctx_new_profile(const char *config_path, const char *profile_dir, unsigned flags,
		       struct tu_ctx **ret, struct tu_err *reterr);
struct tu_ctx *tu_ctx_free(struct tu_ctx *ctx);

/* For _cleanup_(tu_ctx_freep). */
void tu_ctx_freep(struct tu_ctx **ctx);

const struct tu_conf *tu_ctx_conf(const struct tu_ctx *ctx);

/* Loads the credentials on first call (checked against now_usec). Borrowed.
 * With a tsh profile and no auth.proxy, fills conf->proxy from the profile. */
int tu_ctx_creds(struct tu_ctx *ctx, int64_t now_usec, const struct tu_creds **ret, struct tu_err *reterr);

/* Creates the Auth client on first call (loads creds). Borrowed; connection reused. */
int tu_ctx_auth(struct tu_ctx *ctx, int64_t now_usec, struct tu_auth **ret, struct tu_err *reterr);

/*
 * This host: name (config or gethostname), id (config or the credential's
 * CN without ".<cluster>"), cluster (config cluster_name or the credential's),
 * labels (config).  Needs the credentials only when host.id is not set;
 * then a credential that cannot be loaded (missing, expired, wrong owner or
 * mode, no host id in its CN) is an error, never an empty id (offline
 * decisions would ignore locks on this host); with host.id set it only
 * leaves the cluster NULL.  Strings borrowed from ctx.
 * Errors: -ENOMEM, or tu_creds_load's errno with the reason in reterr.
 */
int tu_ctx_host(struct tu_ctx *ctx, int64_t now_usec, struct tu_host *ret, struct tu_err *reterr);

/* struct tu_host_hint: creds.h. */

/*
 * tu_ctx_host, taking the CN and cluster from hint instead of parsing the
 * certificate when the hint still describes this configuration's credential:
 * same file (key pair cert or identity file, not a tsh profile), the file's
 * stamp unchanged, the certificate valid at now_usec as tu_creds_load judges
 * it.  Anything else: the credential is read (tu_ctx_host).  hint may be NULL.
 * With host.id and auth.cluster_name both set the credential is not needed
 * at all (neither function reads it).
 */
int tu_ctx_host_hinted(struct tu_ctx *ctx, int64_t now_usec, const struct tu_host_hint *hint, struct tu_host *ret,
		       struct tu_err *reterr);

/* Current time in microseconds (CLOCK_REALTIME); the only clock read in libcore. */
int64_t tu_now_usec(void);
