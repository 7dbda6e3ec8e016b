/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd-status.c - `teleport-unix status`: config, credentials (expiry), Auth
 * reachability and the cache's age and counts.  Exit 0 healthy, 1 degraded
 * (something needs attention but logins still work), 2 broken (logins
 * cannot be decided: no config, or neither Auth nor a usable cache).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "cache.h"
#include "cleanup.h"
#include "cli.h"
#include "conf.h"
#include "creds.h"
#include "ctx.h"
#include "err.h"
#include "watch.h"

static void fmt_time(int64_t usec, char *buf, size_t size)
{
	time_t t = (time_t) (usec / 1000000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "?");
}

static void fmt_age(int64_t usec, char *buf, size_t size)
{
	int64_t s = usec / 1000000;

	if (s < 0)
		snprintf(buf, size, "in the future");
	else if (s < 120)
		snprintf(buf, size, "%llds ago", (long long) s);
	else if (s < 7200)
		snprintf(buf, size, "%lldm ago", (long long) (s / 60));
	else
		snprintf(buf, size, "%lldh ago", (long long) (s / 3600));
}

int cmd_status(struct cli *c, int argc, char **argv)
{
	_cleanup_(tu_ctx_freep) struct tu_ctx *ctx = NULL;
	const struct tu_creds *creds = NULL;
	struct tu_auth *auth = NULL;
	struct tu_ping ping = { 0 };
	struct tu_cache_info ci = { 0 };
	struct tu_err ecreds, eauth, ecache;
	int64_t now = tu_now_usec();
	bool degraded = false, auth_ok = false, cache_ok = false;
	char buf[1024], t1[64], t2[64];
	int r;

	if (argc > 1)
		return cli_errorf(c, "status: unexpected argument '%s'", argv[1]);
	r = cli_open_ctx(c, &ctx);
	if (r != 0)
		return r;
	const struct tu_conf *conf = tu_ctx_conf(ctx);

	tu_err_clear(&ecreds);
	tu_err_clear(&eauth);
	tu_err_clear(&ecache);
	int rc = tu_ctx_creds(ctx, now, &creds, &ecreds);
	if (rc >= 0) {
		if (tu_creds_expiring_soon(creds, now))
			degraded = true;
		r = tu_ctx_auth(ctx, now, &auth, &eauth);
		if (r >= 0)
			r = tu_auth_ping(auth, &ping, &eauth);
		auth_ok = r >= 0;
	}
	if (!auth_ok)
		degraded = true;

	r = tu_cache_info(conf, &ci, &ecache);
	if (r >= 0) {
		cache_ok = ci.has_state && ci.state_error == 0 &&
			   now - ci.state_created_usec <= (int64_t) conf->offline_max_age_usec && ci.has_public &&
			   ci.public_error == 0;
		if (!cache_ok)
			degraded = true;
	} else {
		degraded = true;
	}
	struct tu_watch_state ws = {0};
	struct tu_err ewatch;
	tu_err_clear(&ewatch);
	int wr = tu_watch_state_read(conf, &ws, &ewatch);
	bool watch_current = wr >= 0 && tu_watch_state_current(&ws, now);
	/* A watcher that is not stopped but not current either (backoff, dead) needs attention. */
	if (wr >= 0 && ws.phase != TU_WATCH_STOPPED && !watch_current)
		degraded = true;

	/* Broken: a login can be decided neither online nor from the cache. */
	bool broken = !auth_ok && !(cache_ok && conf->pam_offline == TU_OFFLINE_CACHED);
	const char *verdict = broken ? "broken" : degraded ? "degraded" : "healthy";

	if (c->json) {
		struct json j;
		json_begin(&j, stdout);
		json_key_str(&j, "status", verdict);
		json_key_str(&j, "config", conf->path);
		json_key_obj_begin(&j, "credentials");
		json_key_bool(&j, "ok", rc >= 0);
		if (rc >= 0) {
			fmt_time(tu_creds_not_after_usec(creds), t1, sizeof(t1));
			json_key_str(&j, "identity", tu_creds_subject_cn(creds));
			json_key_str(&j, "cluster", tu_creds_cluster(creds));
			json_key_str(&j, "expires", t1);
			json_key_bool(&j, "expiring_soon", tu_creds_expiring_soon(creds, now));
		} else {
			json_key_str(&j, "error", tu_err_format(&ecreds, buf, sizeof(buf)));
		}
		json_obj_end(&j);
		json_key_obj_begin(&j, "auth");
		json_key_bool(&j, "reachable", auth_ok);
		if (auth_ok) {
			json_key_str(&j, "cluster", ping.cluster_name);
			json_key_str(&j, "server_version", ping.server_version);
		} else if (rc >= 0) {
			json_key_str(&j, "error", tu_err_format(&eauth, buf, sizeof(buf)));
		}
		json_obj_end(&j);
		json_key_obj_begin(&j, "cache");
		json_key_str(&j, "dir", conf->cache_dir);
		json_key_bool(&j, "usable", cache_ok);
		json_key_bool(&j, "has_public", ci.has_public);
		json_key_bool(&j, "has_state", ci.has_state);
		if (ci.has_public) {
			json_key_int(&j, "accounts", (long long) ci.n_accounts);
			json_key_int(&j, "groups", (long long) ci.n_groups);
			json_key_int(&j, "public_age_seconds", (long long) ((now - ci.public_created_usec) / 1000000));
		}
		if (ci.has_state && ci.state_error == 0) {
			json_key_int(&j, "users", (long long) ci.n_users);
			json_key_int(&j, "roles", (long long) ci.n_roles);
			json_key_int(&j, "locks", (long long) ci.n_locks);
			json_key_int(&j, "users_left_out", (long long) ci.n_users_left_out);
			json_key_int(&j, "roles_left_out", (long long) ci.n_roles_left_out);
			json_key_bool(&j, "user_ca_known", ci.has_user_ca);
			json_key_int(&j, "user_ca_keys", (long long) ci.n_user_ca_keys);
			json_key_int(&j, "state_age_seconds", (long long) ((now - ci.state_created_usec) / 1000000));
		}
		json_obj_end(&j);
		json_key_obj_begin(&j, "watch");
		json_key_bool(&j, "running", wr >= 0 && ws.phase != TU_WATCH_STOPPED);
		json_key_bool(&j, "current", watch_current);
		if (wr >= 0) {
			json_key_str(&j, "phase", tu_watch_phase_name(ws.phase));
			json_key_int(&j, "pid", (long long) ws.pid);
			if (ws.connected_since_usec) {
				fmt_time(ws.connected_since_usec, t1, sizeof(t1));
				json_key_str(&j, "connected_since", t1);
			} else
				json_key_str(&j, "connected_since", NULL);
			if (ws.last_event_usec) {
				fmt_time(ws.last_event_usec, t1, sizeof(t1));
				json_key_str(&j, "last_event", t1);
			} else
				json_key_str(&j, "last_event", NULL);
			json_key_int(&j, "heartbeat_age_seconds", (long long) ((now - ws.heartbeat_usec) / 1000000));
			json_key_int(&j, "events", (long long) ws.events);
			json_key_int(&j, "last_write_ms", (long long) (ws.write_duration_usec / 1000));
			json_key_str(&j, "last_write_kind", ws.write_kind[0] ? ws.write_kind : NULL);
			json_key_int(&j, "last_write_bytes", (long long) ws.write_bytes);
			json_key_int(&j, "last_write_recomputed", (long long) ws.write_recomputed);
			json_key_int(&j, "relists", (long long) ws.relists);
			json_key_int(&j, "reconnects", (long long) ws.reconnects);
			json_key_int(&j, "reconnect_attempt", (long long) ws.attempt);
			json_key_str(&j, "last_error", ws.last_error[0] ? ws.last_error : NULL);
		} else if (wr != -ENOENT) {
			json_key_str(&j, "error", tu_err_format(&ewatch, buf, sizeof(buf)));
		}
		json_obj_end(&j);
		json_end(&j);
	} else {
		printf("config:       %s\n", conf->path ? conf->path : "(none: defaults, --profile)");
		if (rc >= 0) {
			fmt_time(tu_creds_not_after_usec(creds), t1, sizeof(t1));
			printf("credentials:  %s (cluster %s), expires %s%s\n", tu_creds_subject_cn(creds),
			       tu_creds_cluster(creds) ? tu_creds_cluster(creds) : "?", t1,
			       tu_creds_expiring_soon(creds, now) ? "  WARNING: less than 7 days left" : "");
		} else {
			printf("credentials:  unusable: %s\n", tu_err_format(&ecreds, buf, sizeof(buf)));
		}
		if (auth_ok)
			printf("auth:         reachable, cluster %s, Teleport %s\n", ping.cluster_name ? ping.cluster_name : "?",
			       ping.server_version ? ping.server_version : "?");
		else if (rc >= 0)
			printf("auth:         unreachable: %s\n", tu_err_format(&eauth, buf, sizeof(buf)));
		else
			printf("auth:         not tried (no credentials)\n");
		printf("cache:        %s\n", conf->cache_dir);
		if (ci.has_public && ci.public_error == 0) {
			fmt_age(now - ci.public_created_usec, t2, sizeof(t2));
			printf("  accounts:   %zu accounts, %zu groups (written %s)\n", ci.n_accounts, ci.n_groups, t2);
		} else if (ci.has_public) {
			printf("  accounts:   unusable: %s\n", strerror(-ci.public_error));
		} else {
			printf("  accounts:   none (run 'teleport-unix sync')\n");
		}
		if (ci.has_state && ci.state_error == 0) {
			fmt_age(now - ci.state_created_usec, t2, sizeof(t2));
			printf("  state:      %zu users, %zu roles, %zu locks (synced %s%s)\n", ci.n_users, ci.n_roles,
			       ci.n_locks, t2,
			       now - ci.state_created_usec > (int64_t) conf->offline_max_age_usec
				       ? ", older than cache.offline_max_age"
				       : "");
			if (ci.has_user_ca)
				printf("  user CA:    %zu key%s (SSH certificates it signed are Teleport identities)\n",
				       ci.n_user_ca_keys, ci.n_user_ca_keys == 1 ? "" : "s");
			else
				printf("  user CA:    unknown (SSH certificates prove no identity)\n");
			if (ci.n_users_left_out || ci.n_roles_left_out)
				printf("  left out:   %zu users, %zu roles (their records cannot be used; see the sync log)\n",
				       ci.n_users_left_out, ci.n_roles_left_out);
		} else if (ci.has_state) {
			printf("  state:      unusable: %s\n", strerror(-ci.state_error));
		} else {
			printf("  state:      none (offline logins impossible until a sync)\n");
		}
		if (wr == -ENOENT)
			printf("watch:        not running (the sync timer keeps the cache)\n");
		else if (wr < 0)
			printf("watch:        unreadable state: %s\n", tu_err_format(&ewatch, buf, sizeof(buf)));
		else {
			printf("watch:        %s%s (pid %lld)\n", tu_watch_phase_name(ws.phase),
			       ws.phase == TU_WATCH_CURRENT && !watch_current ? ", but no heartbeat: the watcher died or hangs" : "",
			       (long long) ws.pid);
			if (ws.connected_since_usec) {
				fmt_time(ws.connected_since_usec, t1, sizeof(t1));
				printf("  connected:  since %s\n", t1);
			}
			if (ws.last_event_usec) {
				fmt_age(now - ws.last_event_usec, t2, sizeof(t2));
				printf("  events:     %llu applied, last %s\n", (unsigned long long) ws.events, t2);
			} else
				printf("  events:     none yet\n");
			if (ws.last_write_usec)
				printf("  writes:     last took %.1f ms (%s, %.1f MB, %llu users mapped again)\n",
				       (double) ws.write_duration_usec / 1000.0,
				       strcmp(ws.write_kind, "state") == 0   ? "state.db only"
				       : strcmp(ws.write_kind, "full") == 0  ? "accounts.db and state.db"
				       : strcmp(ws.write_kind, "delta") == 0 ? "delta files"
				       : ws.write_kind[0]                   ? ws.write_kind
									    : "both snapshots",
				       (double) ws.write_bytes / 1e6,
				       (unsigned long long) ws.write_recomputed);
			printf("  reconnects: %llu (current attempt %llu), %llu full lists\n",
			       (unsigned long long) ws.reconnects, (unsigned long long) ws.attempt,
			       (unsigned long long) ws.relists);
			if (ws.last_error[0])
				printf("  last end:   %s\n", ws.last_error);
		}
		printf("status:       %s\n", verdict);
	}
	tu_ping_done(&ping);
	return broken ? CLI_EXIT_ERROR : degraded ? CLI_EXIT_NO : CLI_EXIT_OK;
}
