/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd-ssh-principals.c - `teleport-unix ssh-principals LOGIN CERT-TYPE CERT`
 * (SPEC §7), OpenSSH's AuthorizedPrincipalsCommand for Teleport user
 * certificates:
 *
 *   AuthorizedPrincipalsCommand /usr/bin/teleport-unix ssh-principals %u %t %k
 *   AuthorizedPrincipalsCommandUser root
 *
 * sshd runs it after it has checked the certificate's signature against
 * TrustedUserCAKeys, with the login asked for (%u), the certificate's type
 * (%t) and the certificate itself in base64 (%k).  That signature is not
 * checked again here (issue 10; the argument, with OpenSSH's functions, is
 * in docs/SECURITY.md): OpenSSH verifies it with the certificate's signature
 * key whenever it decodes a certificate (sshkey.c cert_parse) and runs this
 * command only for a signature key listed in TrustedUserCAKeys
 * (auth2-pubkey.c user_cert_trusted_ca), %k being the blob it verified; and
 * only sshd reads our answer.  We still parse the whole certificate strictly
 * and require its signature key's bytes to be one of Teleport's user CA keys
 * (the state snapshot), a user certificate, valid now, with a key id; so no
 * OpenSSL is loaded for an offline decision.  We decide with the same
 * tu_decide() as pam_teleport.so, for the identity in that exact certificate
 * (its key id, and the per-session MFA / device extensions it carries), as
 * SSH_AUTH_INFO_0 would carry it: online within auth.timeouts, else from the
 * cache per pam.offline.  Allowed: print LOGIN, one line (sshd then also
 * requires LOGIN to be a principal of the certificate).  Refused: print
 * nothing.  The reason goes to syslog (authpriv) and stderr.
 *
 * Exit status: 0 allowed (LOGIN printed), 1 refused, 2 error (usage, bad
 * configuration, no usable data, or the time budget ran out): nothing is
 * printed unless the status is 0, and sshd refuses on any non-zero status.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "conf.h"
#include "ctx.h"
#include "decide.h"
#include "err.h"
#include "log.h"

/* sshd's %k is at most one certificate; Teleport's are a few KiB. */
#define CERT_B64_MAX (64 * 1024)

/* A watchdog past the decision's own budget: never keep sshd waiting. */
static void on_alarm(int sig)
{
	static const char msg[] = "teleport-unix: ssh-principals: out of time, refusing\n";
	(void) sig;
	(void) !write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(CLI_EXIT_ERROR);
}

static void arm_watchdog(unsigned seconds)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	sigemptyset(&sa.sa_mask);
	(void) sigaction(SIGALRM, &sa, NULL);
	alarm(seconds);
}

/* Both sinks: the administrator reads syslog, a person running it by hand reads stderr. */
static void say(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int priority, const char *fmt, ...)
{
	char line[1400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	syslog(LOG_AUTHPRIV | priority, "%s", line);
	fprintf(stderr, "teleport-unix: ssh-principals: %s\n", line);
}

static void both_sink(void *userdata, int priority, const char *msg)
{
	(void) userdata;
	syslog(LOG_AUTHPRIV | priority, "%s", msg);
	fprintf(stderr, "teleport-unix: %s\n", msg);
}

/* An OpenSSH certificate key type: "<alg>-cert-v01@openssh.com", plain characters. */
static bool cert_type_ok(const char *t)
{
	static const char suffix[] = "-cert-v01@openssh.com";
	size_t n = strlen(t);

	if (n <= sizeof(suffix) - 1 || n > 128 || strcmp(t + n - (sizeof(suffix) - 1), suffix) != 0)
		return false;
	return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@.-_") == n;
}

int cmd_ssh_principals(struct cli *c, int argc, char **argv)
{
	struct tu_ctx *ctx = NULL;
	struct tu_verdict v = { 0 };
	struct tu_ssh_cert cert = { 0 };
	struct tu_err e = { 0 };
	char slogin[128], stype[160], suser[300], sreason[600], skeyid[300], err[1024];
	int r;

	openlog("teleport-unix", LOG_PID, LOG_AUTHPRIV);
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("Usage: teleport-unix ssh-principals LOGIN CERT-TYPE CERT-BASE64\n"
		       "  sshd_config: AuthorizedPrincipalsCommand /path/to/teleport-unix ssh-principals %%u %%t %%k\n");
		return CLI_EXIT_OK;
	}
	if (argc != 4 || !argv[1][0] || !argv[2][0] || !argv[3][0]) {
		say(LOG_ERR, "usage: ssh-principals LOGIN CERT-TYPE CERT-BASE64 (sshd: %%u %%t %%k), refusing");
		return CLI_EXIT_ERROR;
	}
	const char *login = argv[1], *type = argv[2], *b64 = argv[3];
	tu_sanitize(login, slogin, sizeof(slogin));
	tu_sanitize(type, stype, sizeof(stype));
	if (!cert_type_ok(type)) {
		say(LOG_NOTICE, "login '%s': key type '%s' is not an OpenSSH certificate, refusing", slogin, stype);
		return CLI_EXIT_NO;
	}
	size_t n = strnlen(b64, CERT_B64_MAX + 1);
	if (n > CERT_B64_MAX) {
		say(LOG_NOTICE, "login '%s': certificate over %d bytes of base64, refusing", slogin, CERT_B64_MAX);
		return CLI_EXIT_NO;
	}

	/* SSH_AUTH_INFO_0's form, so the PAM session check and this see the same thing. */
	size_t size = strlen("publickey ") + strlen(type) + 1 + n + 2;
	_cleanup_free_ char *info = malloc(size);
	if (!info) {
		say(LOG_ERR, "login '%s': out of memory, refusing", slogin);
		return CLI_EXIT_ERROR;
	}
	snprintf(info, size, "publickey %s %s\n", type, b64);
	r = tu_decide_ssh_cert_parse(info, TU_SSH_CERT_SSHD_VERIFIED, &cert, &e);
	if (r < 0) {
		say(LOG_NOTICE, "login '%s': unreadable certificate, refusing: %s", slogin,
		    tu_err_format(&e, err, sizeof(err)));
		return CLI_EXIT_NO;
	}
	tu_sanitize(cert.key_id, skeyid, sizeof(skeyid));

	tu_log_set_sink(both_sink, NULL, false);
	r = tu_ctx_new(c->config_path, c->insecure_perms ? TU_CTX_RELAXED_PERMS : 0, &ctx, &e);
	if (r < 0) {
		say(LOG_ERR, "login '%s' certificate '%s': configuration error, refusing: %s", slogin, skeyid,
		    tu_err_format(&e, err, sizeof(err)));
		return CLI_EXIT_ERROR;
	}
	const struct tu_conf *conf = tu_ctx_conf(ctx);
	if (!conf->trust_ssh_cert) {
		tu_ctx_free(ctx);
		say(LOG_ERR, "login '%s' certificate '%s': pam.trust_ssh_cert is false in the configuration, so "
			     "certificates carry no Teleport identity; refusing",
		    slogin, skeyid);
		return CLI_EXIT_ERROR;
	}
	/* Online gets connect + request; loading the cache after that is quick. */
	uint64_t budget = conf->connect_timeout_usec + conf->request_timeout_usec;
	arm_watchdog((unsigned) (budget / 1000000u) + 3u);

	struct tu_login_req req = {
		.login = login, .service = "sshd", .ssh_auth_info = info, .ssh_cert_sshd_verified = true,
	};
	r = tu_decide(ctx, &req, tu_now_usec(), false, &v, &e);
	if (r < 0) {
		tu_ctx_free(ctx);
		alarm(0);
		say(LOG_ERR, "login '%s' certificate '%s': decision failed, refusing: %s", slogin, skeyid,
		    tu_err_format(&e, err, sizeof(err)));
		return CLI_EXIT_ERROR;
	}
	tu_sanitize(v.user[0] ? v.user : "-", suser, sizeof(suser));
	tu_sanitize(v.reason, sreason, sizeof(sreason));
	const char *off = v.offline ? " (offline, from cache)" : "";
	tu_ctx_free(ctx);
	alarm(0);

	/* Only the certificate's own identity counts here: a verdict for somebody else (the
	 * login's owner, even one named like the key id) means the certificate was no identity
	 * (tu_decide_ssh_cert_trusted: not signed by Teleport's user CA, or not valid now; the
	 * decision judged it with the CA keys it decided with: Auth's when online, else the
	 * snapshot's). */
	if (v.kind != TU_VERDICT_UNAVAIL && (!v.cert_identity || strcmp(v.user, cert.key_id) != 0)) {
		say(LOG_NOTICE, "login '%s' certificate '%s': refusing, the certificate carries no Teleport identity "
				"here (not signed by Teleport's user CA, or not valid now); as the login's owner: %s%s",
		    slogin, skeyid, sreason, off);
		return CLI_EXIT_NO;
	}
	if (v.kind == TU_VERDICT_ALLOW) {
		say(LOG_INFO, "login '%s' Teleport user '%s': allow%s: %s", slogin, suser, off, sreason);
		printf("%s\n", login);
		return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
	}
	switch (v.kind) {
	case TU_VERDICT_UNAVAIL:
		say(LOG_ERR, "login '%s' certificate '%s': refusing, no decision possible: %s", slogin, skeyid, sreason);
		return CLI_EXIT_ERROR;
	default:
		say(LOG_NOTICE, "login '%s' certificate '%s' Teleport user '%s': deny%s: %s", slogin, skeyid, suser, off,
		    sreason);
		return CLI_EXIT_NO;
	}
}
