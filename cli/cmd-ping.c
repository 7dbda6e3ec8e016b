/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd-ping.c - `teleport-unix ping` (SPEC §7): connect to Auth with the
 * configured credential, print the cluster name and server version, our
 * identity (certificate CN and cluster) and the certificate's expiry, with
 * a warning when fewer than 7 days are left.  When auth.cluster_name is
 * set, Ping must agree.  Exit 0 ok, 2 error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "cli.h"
#include "conf.h"
#include "creds.h"
#include "ctx.h"
#include "err.h"
#include "model.h"

static const char *fmt_utc(int64_t usec, char *buf, size_t size)
{
	time_t s = (time_t) (usec / 1000000);
	struct tm tm;

	if (!gmtime_r(&s, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "@%" PRId64, usec / 1000000);
	return buf;
}

/* "3 days", "5 hours", "12 minutes", or "expired". */
static const char *fmt_left(int64_t usec, char *buf, size_t size)
{
	int64_t s = usec / 1000000;

	if (s <= 0)
		snprintf(buf, size, "expired");
	else if (s >= INT64_C(2) * 86400)
		snprintf(buf, size, "%" PRId64 " days", s / 86400);
	else if (s >= INT64_C(2) * 3600)
		snprintf(buf, size, "%" PRId64 " hours", s / 3600);
	else
		snprintf(buf, size, "%" PRId64 " minutes", s / 60);
	return buf;
}

int cmd_ping(struct cli *c, int argc, char **argv)
{
	struct tu_ctx *ctx = NULL;
	const struct tu_creds *creds = NULL;
	struct tu_auth *auth = NULL;
	struct tu_ping p = {0};
	struct tu_err e;
	char t[64], left[64], name[256], want[256];
	int r, ret = CLI_EXIT_ERROR;

	if (argc > 1)
		return cli_errorf(c, "ping: unexpected argument '%s' (usage: teleport-unix ping)",
				  tu_sanitize(argv[1], name, sizeof(name)));
	r = cli_open_ctx(c, &ctx);
	if (r != 0)
		return r;

	int64_t now = tu_now_usec();
	tu_err_clear(&e);
	r = tu_ctx_creds(ctx, now, &creds, &e);
	if (r < 0) {
		ret = cli_error(c, "ping: credentials", &e);
		goto out;
	}
	tu_err_clear(&e);
	r = tu_ctx_auth(ctx, now, &auth, &e);
	if (r < 0) {
		ret = cli_error(c, "ping: auth", &e);
		goto out;
	}
	tu_err_clear(&e);
	r = tu_auth_ping(auth, &p, &e);
	if (r < 0) {
		ret = cli_error(c, "ping", &e);
		goto out;
	}
	const char *cluster = p.cluster_name ? p.cluster_name : "";
	const struct tu_conf *conf = tu_ctx_conf(ctx);
	if (conf->cluster_name && strcmp(conf->cluster_name, cluster) != 0) {
		ret = cli_errorf(c, "ping: Auth serves cluster '%s' but auth.cluster_name is '%s'",
				 tu_sanitize(cluster, name, sizeof(name)),
				 tu_sanitize(conf->cluster_name, want, sizeof(want)));
		goto out;
	}

	int64_t not_after = tu_creds_not_after_usec(creds);
	bool soon = tu_creds_expiring_soon(creds, now);
	fmt_utc(not_after, t, sizeof(t));
	fmt_left(not_after - now, left, sizeof(left));
	if (c->json) {
		struct json j;
		json_begin(&j, stdout);
		json_key_str(&j, "cluster_name", cluster);
		json_key_str(&j, "server_version", p.server_version);
		json_key_str(&j, "proxy_public_addr", p.proxy_public_addr);
		json_key_str(&j, "remote_addr", p.remote_addr);
		json_key_obj_begin(&j, "identity");
		json_key_str(&j, "subject_cn", tu_creds_subject_cn(creds));
		json_key_str(&j, "cluster", tu_creds_cluster(creds));
		json_key_str(&j, "credential", tu_creds_source(creds));
		json_key_str(&j, "not_after", t);
		json_key_int(&j, "expires_in_seconds", (long long) ((not_after - now) / 1000000));
		json_key_bool(&j, "expiring_soon", soon);
		json_key_str(&j, "profile", tu_creds_profile_name(creds));
		json_key_str(&j, "profile_proxy", tu_creds_proxy_addr(creds));
		json_obj_end(&j);
		json_end(&j);
	} else {
		printf("Cluster:         %s\n", tu_sanitize(cluster, name, sizeof(name)));
		printf("Server version:  %s\n",
		       tu_sanitize(p.server_version ? p.server_version : "", name, sizeof(name)));
		if (p.remote_addr)
			printf("Seen from Auth:  %s\n",
			       tu_sanitize(p.remote_addr, name, sizeof(name)));
		printf("Identity:        %s",
		       tu_sanitize(tu_creds_subject_cn(creds), name, sizeof(name)));
		if (tu_creds_cluster(creds))
			printf(" (cluster %s)",
			       tu_sanitize(tu_creds_cluster(creds), name, sizeof(name)));
		printf("\nCredential:      %s\n",
		       tu_sanitize(tu_creds_source(creds), name, sizeof(name)));
		if (tu_creds_profile_name(creds))
			printf("tsh profile:     %s (Proxy %s)\n",
			       tu_sanitize(tu_creds_profile_name(creds), name, sizeof(name)),
			       tu_sanitize(tu_creds_proxy_addr(creds), want, sizeof(want)));
		printf("Certificate:     valid until %s (%s left)\n", t, left);
	}
	if (soon)
		fprintf(
		    stderr,
		    "teleport-unix: warning: the certificate expires on %s (%s left): renew it\n",
		    t, left);
	ret = CLI_EXIT_OK;
out:
	tu_ping_done(&p);
	tu_ctx_free(ctx);
	return ret;
}
