/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pam.c - pam_teleport.so: the account- and session-phase shim (STYLE §2.4, SPEC §5).
 * Parses the module arguments, reads PAM_USER / PAM_SERVICE / PAM_RHOST and
 * TELEPORT_USERNAME / SSH_AUTH_INFO_0 from the PAM environment, calls
 * tu_decide() and maps the verdict to a PAM code from one table.  No
 * decision logic here, no signal or environment changes, no fd kept.
 *
 *   account [success=ok ignore=ignore user_unknown=ignore default=bad] pam_teleport.so [ARGS]
 *   session [success=ok ignore=ignore user_unknown=ignore default=die] pam_teleport.so [ARGS]
 *   ARGS: [config=PATH] [debug] [insecure_perms]
 *
 * The session line decides the OpenSSH logins whose identity comes from a
 * certificate (see identity_from_cert()); the account line all others.
 *
 * Failure policy (docs/errors.md): a configuration that cannot be loaded
 * fails closed with PAM_PERM_DENIED and a log line naming the problem --
 * not PAM_AUTHINFO_UNAVAIL, so that a stack written with
 * authinfo_unavail=ignore (to ride out Auth outages) never turns a broken
 * config into an open door.  Out of memory is PAM_BUF_ERR (docs/errors.md),
 * other internal errors PAM_AUTHINFO_UNAVAIL; the recommended stacking treats
 * both as bad.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "cleanup.h"
#include "conf.h"
#include "ctx.h"
#include "decide.h"
#include "err.h"
#include "log.h"
#include "snapshot.h"

#define PAM_EXPORT __attribute__((visibility("default")))

struct args {
	const char *config; /* NULL = tu_conf_path() default */
	bool debug;
	bool insecure_perms;
};

static void parse_args(pam_handle_t *pamh, int argc, const char **argv, struct args *a)
{
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "config=", 7) == 0 && argv[i][7])
			a->config = argv[i] + 7;
		else if (strcmp(argv[i], "debug") == 0)
			a->debug = true;
		else if (strcmp(argv[i], "insecure_perms") == 0)
			a->insecure_perms = true;
		else {
			char s[128];
			pam_syslog(pamh, LOG_WARNING, "unknown argument '%s', ignoring", tu_sanitize(argv[i], s, sizeof(s)));
		}
	}
}

static void sink(void *userdata, int priority, const char *msg)
{
	pam_syslog((pam_handle_t *) userdata, priority, "%s", msg);
}

/* The one verdict -> PAM code table (SPEC §5). */
static const struct {
	int code;
	const char *word;
} verdict_map[] = {
	[TU_VERDICT_ALLOW] = { PAM_SUCCESS, "allow" },
	[TU_VERDICT_DENY] = { PAM_PERM_DENIED, "deny" },
	[TU_VERDICT_UNKNOWN] = { PAM_USER_UNKNOWN, "unknown" },
	[TU_VERDICT_UNAVAIL] = { PAM_AUTHINFO_UNAVAIL, "unavailable" },
};

static const char *item(pam_handle_t *pamh, int type)
{
	const void *v = NULL;
	if (pam_get_item(pamh, type, &v) != PAM_SUCCESS)
		return NULL;
	return v;
}

/*
 * Not configured yet (the package is installed, /etc/teleport-unix.yaml not
 * written): the default configuration file does not exist and the public
 * snapshot that NSS serves does not name this login.  Such a login is none of
 * ours (PAM_USER_UNKNOWN), so installing the module locks nobody out.  A
 * configuration named by config= or TELEPORT_UNIX_CONFIG that is missing, a
 * dangling symlink, or a login the snapshot still serves stays a
 * configuration error: fail closed.
 */
static bool not_configured(const struct args *a, const char *login)
{
	_cleanup_(tu_snapshot_closep) struct tu_snapshot *s = NULL;
	const char *path = tu_conf_path(a->config);
	struct tu_pw_view pv;
	struct stat st;
	int k;

	if (strcmp(path, TU_CONF_DEFAULT_PATH) != 0 || lstat(path, &st) == 0 || errno != ENOENT)
		return false;
	k = tu_snapshot_open(TU_SNAPSHOT_DEFAULT_DIR "/" TU_SNAPSHOT_PUBLIC_FILE, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_OVERLAY, &s,
			     NULL);
	if (k == -ENOENT)
		return true;
	return k == 0 && tu_snapshot_find_login(s, login, &pv, NULL) == -ENOENT;
}

/*
 * Whether this login's identity is to come from the SSH certificate that sshd
 * verified (pam.trust_ssh_cert, an sshd login: SSH_AUTH_INFO_0 in the PAM
 * environment, even empty, or service "sshd"), and not from Teleport's own
 * SSH service (trusted TELEPORT_USERNAME).  OpenSSH fills SSH_AUTH_INFO_0
 * only for the session phase (its privilege separation leaves it empty
 * during pam_acct_mgmt), so such a login is decided in pam_sm_open_session.
 */
static bool identity_from_cert(const struct tu_conf *conf, const struct tu_login_req *req)
{
	if (!conf->trust_ssh_cert)
		return false;
	if (conf->trust_teleport_env && req->teleport_username && req->teleport_username[0])
		return false;
	return req->ssh_auth_info || (req->service && strcmp(req->service, "sshd") == 0);
}

/*
 * The decision for one phase.  Account: every login except those of
 * identity_from_cert() with an empty SSH_AUTH_INFO_0, which get PAM_IGNORE
 * (never a guessed owner).  Session: exactly those, now with the identity
 * sshd verified (or, without a Teleport certificate, the login's owner);
 * every other login was decided in the account phase: PAM_IGNORE.
 */
static int check(pam_handle_t *pamh, int flags, int argc, const char **argv, bool session)
{
	struct args a = { 0 };
	struct tu_ctx *ctx = NULL;
	struct tu_verdict v = { 0 };
	struct tu_err e = { 0 };
	char slogin[128], suser[300], sreason[600], sservice[64], srhost[300], err[1024];
	int k, code;

	parse_args(pamh, argc, argv, &a);
	struct tu_login_req req = {
		.login = item(pamh, PAM_USER),
		.service = item(pamh, PAM_SERVICE),
		.rhost = item(pamh, PAM_RHOST),
		.teleport_username = pam_getenv(pamh, "TELEPORT_USERNAME"),
		/* sshd with ExposeAuthInfo puts SSH_AUTH_INFO_0 in the PAM environment. */
		.ssh_auth_info = pam_getenv(pamh, "SSH_AUTH_INFO_0"),
	};
	if (!req.login || !req.login[0]) {
		pam_syslog(pamh, LOG_ERR, "no user name (PAM_USER), failing");
		return PAM_USER_UNKNOWN;
	}
	tu_sanitize(req.login, slogin, sizeof(slogin));

	tu_log_set_sink(sink, pamh, a.debug);
	if (a.insecure_perms)
		pam_syslog(pamh, LOG_WARNING, "insecure_perms: not checking the owner and mode of the configuration");
	k = tu_ctx_new(a.config, a.insecure_perms ? TU_CTX_RELAXED_PERMS : 0, &ctx, &e);
	if (k == -ENOMEM) {
		pam_syslog(pamh, LOG_ERR, "login '%s': out of memory loading the configuration, failing", slogin);
		tu_log_set_sink(NULL, NULL, false);
		return PAM_BUF_ERR;
	}
	if (k == -ENOENT && not_configured(&a, req.login)) {
		pam_syslog(pamh, LOG_DEBUG, "login '%s': %s does not exist and no Teleport account has this name: "
			   "not configured, not a Teleport login", slogin, TU_CONF_DEFAULT_PATH);
		tu_log_set_sink(NULL, NULL, false);
		return PAM_USER_UNKNOWN;
	}
	if (k < 0) {
		pam_syslog(pamh, LOG_ERR, "login '%s': configuration error, failing closed: %s", slogin,
			   tu_err_format(&e, err, sizeof(err)));
		tu_log_set_sink(NULL, NULL, false);
		if (!(flags & PAM_SILENT))
			pam_error(pamh, "Teleport: access denied (configuration error)");
		return PAM_PERM_DENIED;
	}
	bool from_cert = identity_from_cert(tu_ctx_conf(ctx), &req);
	if (session ? !from_cert : (from_cert && !(req.ssh_auth_info && req.ssh_auth_info[0]))) {
		if (from_cert)
			pam_syslog(pamh, LOG_INFO,
				   "login '%s': the identity comes from the SSH certificate, which sshd shows only to the "
				   "session phase: deciding there (pam_teleport.so must be in the session stack)",
				   slogin);
		tu_ctx_free(ctx);
		tu_log_set_sink(NULL, NULL, false);
		return PAM_IGNORE;
	}
	k = tu_decide(ctx, &req, tu_now_usec(), false, &v, &e);
	tu_ctx_free(ctx);
	tu_log_set_sink(NULL, NULL, false);
	if (k < 0) {
		pam_syslog(pamh, LOG_ERR, "login '%s': decision failed, failing closed: %s", slogin,
			   tu_err_format(&e, err, sizeof(err)));
		return k == -ENOMEM ? PAM_BUF_ERR : PAM_AUTHINFO_UNAVAIL; /* docs/errors.md */
	}
	if ((size_t) v.kind >= sizeof(verdict_map) / sizeof(verdict_map[0]) || !verdict_map[v.kind].word) {
		pam_syslog(pamh, LOG_ERR, "login '%s': unexpected verdict %d, failing closed", slogin, (int) v.kind);
		return PAM_PERM_DENIED;
	}
	code = verdict_map[v.kind].code;
	tu_sanitize(v.user[0] ? v.user : "-", suser, sizeof(suser));
	tu_sanitize(v.reason, sreason, sizeof(sreason));
	tu_sanitize(req.service ? req.service : "-", sservice, sizeof(sservice));
	tu_sanitize(req.rhost ? req.rhost : "-", srhost, sizeof(srhost));
	pam_syslog(pamh, v.kind == TU_VERDICT_ALLOW ? LOG_INFO : LOG_NOTICE,
		   "login '%s' service '%s' rhost '%s' Teleport user '%s': %s%s: %s", slogin, sservice, srhost, suser,
		   verdict_map[v.kind].word,
		   v.watched ? " (from the watch-fed cache)" : v.offline ? " (offline, from cache)" : "", sreason);
	if (v.kind == TU_VERDICT_DENY && !(flags & PAM_SILENT))
		pam_error(pamh, "Teleport: access denied");
	if (v.kind == TU_VERDICT_UNAVAIL && !(flags & PAM_SILENT))
		pam_error(pamh, "Teleport: cannot check access right now");
	return code;
}

PAM_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}

PAM_EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}

PAM_EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return check(pamh, flags, argc, argv, false);
}

PAM_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return check(pamh, flags, argc, argv, true);
}

PAM_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}

PAM_EXPORT int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}
