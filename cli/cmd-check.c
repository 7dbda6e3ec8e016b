/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd-check.c - `teleport-unix check USER LOGIN [--offline]` (SPEC §7): the
 * PAM decision for Teleport user USER logging in as LOGIN on this host,
 * made by the same tu_decide() as pam_teleport.so, with the reason.
 * `check --ssh-cert FILE LOGIN`: the decision PAM makes for a login that came
 * with that OpenSSH user certificate (as sshd passes it in SSH_AUTH_INFO_0),
 * so pam.trust_ssh_cert and Teleport's user CA apply (docs/rbac.md).
 * Exit 0 allow, 1 deny (also "not a Teleport login"), 2 error or no data.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "ctx.h"
#include "decide.h"
#include "err.h"

static const char *const kind_word[] = {
	[TU_VERDICT_ALLOW] = "allow",
	[TU_VERDICT_DENY] = "deny",
	[TU_VERDICT_UNKNOWN] = "unknown",
	[TU_VERDICT_UNAVAIL] = "unavailable",
};

#define CERT_FILE_MAX (64 * 1024)

/*
 * An OpenSSH certificate file ("<type> <base64> [comment]", as ssh-keygen
 * writes it) as the SSH_AUTH_INFO_0 line sshd would write for it, into
 * *ret (malloc'ed).  The certificate itself is parsed by the decision.
 */
static int read_cert_file(struct cli *c, const char *path, char **ret)
{
	_cleanup_free_ char *buf = malloc(CERT_FILE_MAX + 1), *line = NULL;
	_cleanup_close_ int fd = -1;
	size_t n = 0;

	if (!buf)
		return cli_errorf(c, "check: out of memory");
	fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return cli_errorf(c, "check: --ssh-cert %s: %s", path, strerror(errno));
	for (;;) {
		ssize_t k = read(fd, buf + n, CERT_FILE_MAX + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return cli_errorf(c, "check: --ssh-cert %s: %s", path, strerror(errno));
		if (k == 0)
			break;
		n += (size_t) k;
		if (n > CERT_FILE_MAX)
			return cli_errorf(c, "check: --ssh-cert %s: larger than %d bytes", path, CERT_FILE_MAX);
	}
	buf[n] = '\0';
	const char *t = buf + strspn(buf, " \t\r\n");
	size_t tl = strcspn(t, " \t\r\n");
	const char *b = t + tl + strspn(t + tl, " \t");
	size_t bl = strcspn(b, " \t\r\n");
	if (tl == 0 || bl == 0 || memchr(t, '\0', tl) || memchr(b, '\0', bl))
		return cli_errorf(c, "check: --ssh-cert %s: not an OpenSSH certificate line \"<type> <base64>\"", path);
	line = malloc(tl + bl + 16);
	if (!line)
		return cli_errorf(c, "check: out of memory");
	snprintf(line, tl + bl + 16, "publickey %.*s %.*s", (int) tl, t, (int) bl, b);
	*ret = TAKE_PTR(line);
	return 0;
}

int cmd_check(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "offline", no_argument, NULL, 'o' },
		{ "ssh-cert", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct tu_ctx *ctx = NULL;
	struct tu_verdict v = { 0 };
	struct tu_err e = { 0 };
	_cleanup_free_ char *auth_info = NULL;
	const char *cert_path = NULL;
	bool offline = false;
	int o, r;

	while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (o) {
		case 'o':
			offline = true;
			break;
		case 'c':
			cert_path = optarg;
			break;
		case 'h':
			printf("Usage: teleport-unix check USER LOGIN [--offline]\n"
			       "       teleport-unix check --ssh-cert CERT-FILE LOGIN [--offline]\n");
			return CLI_EXIT_OK;
		default:
			return cli_errorf(c, "check: usage: check USER LOGIN [--offline] | check --ssh-cert FILE LOGIN");
		}
	}
	/* Allow --offline after the positional arguments too. */
	const char *pos[2] = { NULL, NULL };
	size_t n = 0;
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "--offline") == 0)
			offline = true;
		else if (n < 2)
			pos[n++] = argv[i];
		else
			return cli_errorf(c, "check: unexpected argument '%s'", argv[i]);
	}
	if (cert_path) {
		/* The certificate says who (when Teleport's user CA signed it): LOGIN only. */
		if (n != 1 || !pos[0][0])
			return cli_errorf(c, "check: usage: check --ssh-cert FILE LOGIN [--offline]");
		r = read_cert_file(c, cert_path, &auth_info);
		if (r != 0)
			return r;
		pos[1] = pos[0];
		pos[0] = NULL;
	} else if (n != 2 || !pos[0][0] || !pos[1][0]) {
		return cli_errorf(c, "check: usage: check USER LOGIN [--offline]");
	}

	r = cli_open_ctx(c, &ctx);
	if (r != 0)
		return r;
	struct tu_login_req req = { .login = pos[1], .service = cert_path ? "sshd" : "teleport-unix check",
				    .explicit_user = pos[0], .ssh_auth_info = auth_info };
	r = tu_decide(ctx, &req, tu_now_usec(), offline, &v, &e);
	tu_ctx_free(ctx);
	if (r < 0)
		return cli_error(c, "check", &e);

	const char *word = (size_t) v.kind < sizeof(kind_word) / sizeof(kind_word[0]) ? kind_word[v.kind] : "deny";
	if (c->json) {
		struct json j;
		json_begin(&j, stdout);
		json_key_str(&j, "user", pos[0] ? pos[0] : v.user[0] ? v.user : NULL);
		json_key_str(&j, "login", pos[1]);
		json_key_str(&j, "decision", word);
		json_key_bool(&j, "allowed", v.kind == TU_VERDICT_ALLOW);
		json_key_str(&j, "role", v.role[0] ? v.role : NULL);
		json_key_str(&j, "reason", v.reason);
		json_key_bool(&j, "offline", v.offline);
		json_key_bool(&j, "watched", v.watched);
		json_end(&j);
	} else if (v.kind == TU_VERDICT_UNAVAIL) {
		fprintf(stderr, "teleport-unix: check: %s\n", v.reason);
	} else {
		char line[700];
		tu_sanitize(v.reason, line, sizeof(line));
		printf("%s: %s%s\n", v.kind == TU_VERDICT_ALLOW ? "allow" : "deny", line,
		       v.watched ? " (from the watch-fed cache)" : v.offline ? " (offline)" : "");
	}
	switch (v.kind) {
	case TU_VERDICT_ALLOW:
		return CLI_EXIT_OK;
	case TU_VERDICT_DENY:
	case TU_VERDICT_UNKNOWN:
		return CLI_EXIT_NO;
	default:
		return CLI_EXIT_ERROR;
	}
}
