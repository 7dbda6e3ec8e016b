/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd-check.c - `teleport-unix check USER LOGIN [--offline]` (SPEC §7): the
 * PAM decision for Teleport user USER logging in as LOGIN on this host,
 * made by the same tu_decide() as pam_teleport.so, with the reason.
 * Exit 0 allow, 1 deny (also "not a Teleport login"), 2 error or no data.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

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

int cmd_check(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "offline", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct tu_ctx *ctx = NULL;
	struct tu_verdict v = { 0 };
	struct tu_err e = { 0 };
	bool offline = false;
	int o, r;

	while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (o) {
		case 'o':
			offline = true;
			break;
		case 'h':
			printf("Usage: teleport-unix check USER LOGIN [--offline]\n");
			return CLI_EXIT_OK;
		default:
			return cli_errorf(c, "check: usage: check USER LOGIN [--offline]");
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
	if (n != 2 || !pos[0][0] || !pos[1][0])
		return cli_errorf(c, "check: usage: check USER LOGIN [--offline]");

	r = cli_open_ctx(c, &ctx);
	if (r != 0)
		return r;
	struct tu_login_req req = { .login = pos[1], .service = "teleport-unix check", .explicit_user = pos[0] };
	r = tu_decide(ctx, &req, tu_now_usec(), offline, &v, &e);
	tu_ctx_free(ctx);
	if (r < 0)
		return cli_error(c, "check", &e);

	const char *word = (size_t) v.kind < sizeof(kind_word) / sizeof(kind_word[0]) ? kind_word[v.kind] : "deny";
	if (c->json) {
		struct json j;
		json_begin(&j, stdout);
		json_key_str(&j, "user", pos[0]);
		json_key_str(&j, "login", pos[1]);
		json_key_str(&j, "decision", word);
		json_key_bool(&j, "allowed", v.kind == TU_VERDICT_ALLOW);
		json_key_str(&j, "role", v.role[0] ? v.role : NULL);
		json_key_str(&j, "reason", v.reason);
		json_key_bool(&j, "offline", v.offline);
		json_end(&j);
	} else if (v.kind == TU_VERDICT_UNAVAIL) {
		fprintf(stderr, "teleport-unix: check: %s\n", v.reason);
	} else {
		char line[700];
		tu_sanitize(v.reason, line, sizeof(line));
		printf("%s: %s%s\n", v.kind == TU_VERDICT_ALLOW ? "allow" : "deny", line,
		       v.offline ? " (offline)" : "");
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
