/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctx.c - struct tu_ctx: config, credentials, Auth client and host identity,
 * each set up lazily (see ctx.h).  Layer: libcore.  The only clock read in
 * libcore lives here (tu_now_usec); the environment is read only through
 * tu_conf_path() (secure_getenv).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cleanup.h"
#include "conf.h"
#include "creds.h"
#include "ctx.h"
#include "err.h"

struct tu_ctx {
	struct tu_conf *conf;
	unsigned flags;
	struct tu_creds *creds;
	struct tu_auth *auth;
	char host_name[256];
	char *host_id;
	char *cluster;
	bool host_done;
	bool profile_option; /* tu_ctx_new_profile: an administrator's CLI, not PAM/NSS */
	/* The last hint tu_ctx_host_hinted got (copied): the credential's load takes the CN,
	 * cluster and validity from it when it still describes the file (issue 10). */
	struct tu_host_hint hint;
	char *hint_file, *hint_cn, *hint_cluster;
};

int64_t tu_now_usec(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int tu_ctx_new(const char *config_path, unsigned flags, struct tu_ctx **ret, struct tu_err *reterr)
{
	struct tu_ctx *ctx;
	struct tu_conf *conf = NULL;
	int r;

	r = tu_conf_load(tu_conf_path(config_path), (flags & TU_CTX_RELAXED_PERMS) ? TU_CONF_RELAXED_PERMS : 0,
			 &conf, reterr);
	if (r < 0)
		return r;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		tu_conf_free(conf);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	ctx->conf = conf;
	ctx->flags = flags;
	*ret = ctx;
	return 0;
}

int tu_ctx_new_profile(const char *config_path, const char *profile_dir, unsigned flags,
		       struct tu_ctx **ret, struct tu_err *reterr)
{
	struct tu_ctx *ctx = NULL;
	struct tu_conf *conf = NULL;
	const char *path = tu_conf_path(config_path);
	int r;

	if (!profile_dir || profile_dir[0] != '/')
		return tu_err_set(reterr, -EINVAL, "the tsh profile directory must be an absolute path");
	r = tu_conf_load(path, (flags & TU_CTX_RELAXED_PERMS) ? TU_CONF_RELAXED_PERMS : 0, &conf,
			 reterr);
	/* No configuration file at the default place: every default, the profile names the
	 * Proxy.  A file named explicitly (-c, TELEPORT_UNIX_CONFIG) must exist. */
	if (r == -ENOENT && strcmp(path, TU_CONF_DEFAULT_PATH) == 0)
		r = tu_conf_new_default(&conf, reterr);
	if (r < 0)
		return r;
	free(conf->cert_path);
	free(conf->key_path);
	free(conf->ca_path);
	free(conf->identity_file);
	free(conf->profile_dir);
	free(conf->profile_name);
	conf->cert_path = conf->key_path = conf->ca_path = conf->identity_file = NULL;
	conf->profile_name = NULL;
	conf->profile_dir = strdup(profile_dir);
	conf->cache_read_only = true;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx || !conf->profile_dir) {
		free(ctx);
		tu_conf_free(conf);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	ctx->conf = conf;
	ctx->flags = flags;
	ctx->profile_option = true;
	*ret = ctx;
	return 0;
}

struct tu_ctx *tu_ctx_free(struct tu_ctx *ctx)
{
	if (!ctx)
		return NULL;
	tu_auth_free(ctx->auth);
	tu_creds_free(ctx->creds);
	tu_conf_free(ctx->conf);
	free(ctx->host_id);
	free(ctx->cluster);
	free(ctx->hint_file);
	free(ctx->hint_cn);
	free(ctx->hint_cluster);
	free(ctx);
	return NULL;
}

void tu_ctx_freep(struct tu_ctx **ctx)
{
	*ctx = tu_ctx_free(*ctx);
}

const struct tu_conf *tu_ctx_conf(const struct tu_ctx *ctx)
{
	return ctx->conf;
}

/* The credential, its private key not parsed yet (host identity, Auth client: the
 * transport checks the key once Auth took a connection, h2-load.c). */
static int ctx_creds_deferred(struct tu_ctx *ctx, int64_t now_usec, const struct tu_creds **ret,
			      struct tu_err *reterr)
{
	if (!ctx->creds) {
		unsigned f = ((ctx->flags & TU_CTX_RELAXED_PERMS) ? TU_CREDS_RELAXED_PERMS : 0) |
			     TU_CREDS_DEFER_KEY_CHECK;
		int r = tu_creds_load_hinted(ctx->conf, now_usec, f, ctx->hint_file ? &ctx->hint : NULL, &ctx->creds,
					     reterr);
		if (r < 0)
			return r;
		/* A tsh profile names its Proxy: the one to reach Auth through, unless
		 * auth.proxy says otherwise (PROXY.md §1a, DefaultAddrs). */
		const char *host = tu_creds_proxy_host(ctx->creds, NULL);
		if (host && !ctx->conf->proxy.host) {
			ctx->conf->proxy.host = strdup(host);
			if (!ctx->conf->proxy.host) {
				ctx->creds = tu_creds_free(ctx->creds);
				return tu_err_set(reterr, -ENOMEM, "out of memory");
			}
			(void) tu_creds_proxy_host(ctx->creds, &ctx->conf->proxy.port);
		}
	}
	*ret = ctx->creds;
	return 0;
}

int tu_ctx_creds(struct tu_ctx *ctx, int64_t now_usec, const struct tu_creds **ret, struct tu_err *reterr)
{
	int r = ctx_creds_deferred(ctx, now_usec, ret, reterr);

	return r < 0 ? r : tu_creds_check_key(*ret, reterr);
}

int tu_ctx_auth(struct tu_ctx *ctx, int64_t now_usec, struct tu_auth **ret, struct tu_err *reterr)
{
	const struct tu_creds *creds;
	struct tu_auth *a = NULL;
	int r;

	if (ctx->auth) {
		*ret = ctx->auth;
		return 0;
	}
	r = ctx_creds_deferred(ctx, now_usec, &creds, reterr);
	if (r < 0)
		return r;
	r = tu_auth_new(ctx->conf, creds, &a, reterr);
	if (r < 0)
		return r;
	if (ctx->conf->cluster_name) {
		/* SPEC §3: when cluster_name is configured, Ping must agree. */
		struct tu_ping ping = { 0 };
		r = tu_auth_ping(a, &ping, reterr);
		if (r < 0) {
			tu_auth_free(a);
			return r;
		}
		if (!ping.cluster_name || strcmp(ping.cluster_name, ctx->conf->cluster_name) != 0) {
			r = tu_err_set(reterr, -EPROTO, "Auth serves cluster '%s', but auth.cluster_name is '%s'",
				       ping.cluster_name ? ping.cluster_name : "", ctx->conf->cluster_name);
			tu_ping_done(&ping);
			tu_auth_free(a);
			return r;
		}
		tu_ping_done(&ping);
	}
	ctx->auth = a;
	*ret = a;
	return 0;
}

/* The id and cluster from a certificate's subject CN and cluster (creds_cluster may be NULL). */
static int host_derive(struct tu_ctx *ctx, const char *cn, const char *creds_cluster, struct tu_err *reterr)
{
	const char *cl = ctx->conf->cluster_name ? ctx->conf->cluster_name : creds_cluster;

	if (cl && !ctx->cluster) {
		ctx->cluster = strdup(cl);
		if (!ctx->cluster)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	if (ctx->conf->host_id)
		return 0;
	if (!cn)
		cn = "";
	/* Teleport host certificates carry "<host-uuid>.<cluster>" as CN (API.md §1.6). */
	size_t n = strlen(cn), cl_len = cl ? strlen(cl) : 0;
	if (cl_len && n > cl_len + 1 && cn[n - cl_len - 1] == '.' && strcmp(cn + n - cl_len, cl) == 0)
		n -= cl_len + 1;
	if (n == 0)
		return tu_err_set(reterr, -EBADMSG, "the credential's subject CN holds no host id");
	ctx->host_id = strndup(cn, n);
	if (!ctx->host_id)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	return 0;
}

static int host_from_creds(struct tu_ctx *ctx, int64_t now_usec, struct tu_err *reterr)
{
	const struct tu_creds *creds;
	int r;

	r = ctx_creds_deferred(ctx, now_usec, &creds, reterr);
	if (r < 0)
		return r;
	/* A tsh profile holds a user's certificate: its CN names a person, not this host. */
	if (!ctx->conf->host_id && tu_creds_profile_name(creds)) {
		const char *cl = ctx->conf->cluster_name ? ctx->conf->cluster_name : tu_creds_cluster(creds);
		if (cl && !ctx->cluster) {
			ctx->cluster = strdup(cl);
			if (!ctx->cluster)
				return tu_err_set(reterr, -ENOMEM, "out of memory");
		}
		if (ctx->profile_option)
			return 0; /* an administrator's CLI check: host-id locks cannot be matched */
		tu_err_key(reterr, "host.id");
		return tu_err_set(reterr, -EINVAL,
				  "host.id must be set with a tsh profile credential (a user's certificate does not name this host)");
	}
	return host_derive(ctx, tu_creds_subject_cn(creds), tu_creds_cluster(creds), reterr);
}

/*
 * Issue 13 item 6: the CN and cluster the watcher read from this very file, instead of
 * ~2.4 M instructions of PEM and X.509 parsing per PAM call.  1 when used, 0 when the hint
 * does not apply (the caller reads the credential), -ENOMEM.
 */
static int host_from_hint(struct tu_ctx *ctx, int64_t now_usec, const struct tu_host_hint *hint, struct tu_err *reterr)
{
	const struct tu_conf *conf = ctx->conf;
	const char *file = conf->identity_file ? conf->identity_file : conf->cert_path;
	struct tu_file_stamp now_stamp;

	if (!hint || !hint->cert_file || !hint->cn || !hint->cn[0] || ctx->creds || ctx->profile_option ||
	    conf->profile_dir || !file || strcmp(file, hint->cert_file) != 0)
		return 0;
	/* what tu_creds_load would refuse (clock skew allowed before, none after) */
	if (now_usec < hint->not_before_usec - TU_CREDS_CLOCK_SKEW_USEC || now_usec >= hint->not_after_usec)
		return 0;
	if (tu_file_stamp_get(file, &now_stamp) < 0 || !tu_file_stamp_equal(&now_stamp, &hint->stamp))
		return 0;
	int r = host_derive(ctx, hint->cn, hint->cluster && hint->cluster[0] ? hint->cluster : NULL, reterr);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		/* as if not hinted: the credential's own reading gives the error */
		free(ctx->host_id);
		ctx->host_id = NULL;
		if (!conf->cluster_name) {
			free(ctx->cluster);
			ctx->cluster = NULL;
		}
		return 0;
	}
	return 1;
}

int tu_ctx_host(struct tu_ctx *ctx, int64_t now_usec, struct tu_host *ret, struct tu_err *reterr)
{
	return tu_ctx_host_hinted(ctx, now_usec, NULL, ret, reterr);
}

/* Keeps a copy of hint for the credential's load (tu_creds_load_hinted); -ENOMEM. */
static int keep_hint(struct tu_ctx *ctx, const struct tu_host_hint *hint)
{
	if (!hint || !hint->cert_file || !hint->cn || !hint->cn[0] || ctx->hint_file)
		return 0;
	ctx->hint = *hint;
	ctx->hint_file = strdup(hint->cert_file);
	ctx->hint_cn = strdup(hint->cn);
	ctx->hint_cluster = strdup(hint->cluster ? hint->cluster : "");
	if (!ctx->hint_file || !ctx->hint_cn || !ctx->hint_cluster) {
		free(ctx->hint_file);
		free(ctx->hint_cn);
		free(ctx->hint_cluster);
		ctx->hint_file = ctx->hint_cn = ctx->hint_cluster = NULL;
		return -ENOMEM;
	}
	ctx->hint.cert_file = ctx->hint_file;
	ctx->hint.cn = ctx->hint_cn;
	ctx->hint.cluster = ctx->hint_cluster;
	return 0;
}

int tu_ctx_host_hinted(struct tu_ctx *ctx, int64_t now_usec, const struct tu_host_hint *hint, struct tu_host *ret,
		       struct tu_err *reterr)
{
	if (!ctx->host_done) {
		if (keep_hint(ctx, hint) < 0)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		if (ctx->conf->host_name)
			snprintf(ctx->host_name, sizeof(ctx->host_name), "%s", ctx->conf->host_name);
		else if (gethostname(ctx->host_name, sizeof(ctx->host_name) - 1) < 0)
			ctx->host_name[0] = '\0';
		ctx->host_name[sizeof(ctx->host_name) - 1] = '\0';
		if (ctx->conf->cluster_name && !ctx->cluster) {
			ctx->cluster = strdup(ctx->conf->cluster_name);
			if (!ctx->cluster)
				return tu_err_set(reterr, -ENOMEM, "out of memory");
		}
		if (ctx->conf->host_id) {
			ctx->host_id = strdup(ctx->conf->host_id);
			if (!ctx->host_id)
				return tu_err_set(reterr, -ENOMEM, "out of memory");
		}
		/* The cluster (host locks name "<id>.<cluster>") and, without host.id, the id:
		 * from the credential.  With host.id but no cluster, any "<id>.<...>" lock counts
		 * (decide.c).  Without host.id a credential that cannot be read is an error, never
		 * an empty id: locks on this host would then silently not match offline. */
		struct tu_err e;
		tu_err_clear(&e);
		int r = 0;
		if (!ctx->conf->host_id || !ctx->conf->cluster_name) {
			r = host_from_hint(ctx, now_usec, hint, &e);
			if (r == -ENOMEM)
				return tu_err_set(reterr, r, "out of memory");
			r = r > 0 ? 0 : host_from_creds(ctx, now_usec, &e);
		}
		if (r < 0 && !ctx->conf->host_id) {
			if (r == -ENOMEM)
				return tu_err_set(reterr, r, "out of memory");
			if (e.file[0] && reterr) {
				/* keep the file and line the credential's error names */
				*reterr = e;
				tu_err_prefix(reterr, "this host's id is unknown (host.id is not set and the credential cannot be read)");
				return r;
			}
			return tu_err_set(reterr, r,
					  "this host's id is unknown (host.id is not set and the credential cannot be read: %s)",
					  e.msg[0] ? e.msg : strerror(-r));
		}
		ctx->host_done = true;
	}
	*ret = (struct tu_host){
		.name = ctx->host_name,
		.id = ctx->host_id ? ctx->host_id : "",
		.cluster = ctx->cluster,
		.labels = &ctx->conf->host_labels,
	};
	return 0;
}
