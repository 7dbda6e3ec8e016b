/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - teleport-unix: option parsing and command dispatch (SPEC §7).
 */
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ctx.h"
#include "err.h"
#include "log.h"

static const struct command {
	const char *name;
	int (*fn)(struct cli *c, int argc, char **argv);
	const char *usage;
} commands[] = {
	{ "ping", cmd_ping, "ping                     connect to Auth: cluster, version, identity, cert expiry" },
	{ "sync", cmd_sync, "sync [--force]           fetch users, roles, locks and write the cache" },
	{ "watch", cmd_watch, "watch                    keep the cache current from Auth's event stream (a service)" },
	{ "user", cmd_user, "user NAME                a Teleport user: roles, traits, status, logins here" },
	{ "check", cmd_check, "check USER LOGIN [--offline]  the PAM decision, with the reason" },
	{ "passwd", cmd_passwd, "passwd [LOGIN]           what NSS serves, getent-style" },
	{ "group", cmd_group, "group [NAME]             what NSS serves, getent-style" },
	{ "status", cmd_status, "status                   config, credentials, Auth reachability, cache" },
	{ "doctor", cmd_doctor, "doctor [--root DIR] [--offline]  check this host's NSS, PAM, sshd, files, cache, Auth" },
	{ "cache", cmd_cache, "cache clear              remove the cache" },
	{ "ssh-principals", cmd_ssh_principals,
	  "ssh-principals LOGIN CERT-TYPE CERT  sshd AuthorizedPrincipalsCommand (%u %t %k): prints LOGIN if allowed" },
};

/*
 * --profile's directory: DIR (made absolute), else tsh's own default,
 * $TELEPORT_HOME, else ~/.tsh of the effective user.
 */
static int profile_dir(const char *arg, char *buf, size_t size)
{
	const char *home;
	char cwd[PATH_MAX];
	int n;

	if (arg && *arg) {
		if (arg[0] == '/')
			n = snprintf(buf, size, "%s", arg);
		else if (getcwd(cwd, sizeof(cwd)))
			n = snprintf(buf, size, "%s/%s", cwd, arg);
		else
			return -1;
	} else if ((home = secure_getenv("TELEPORT_HOME")) && home[0] == '/') {
		n = snprintf(buf, size, "%s", home);
	} else {
		home = secure_getenv("HOME");
		if (!home || home[0] != '/') {
			struct passwd *pw = getpwuid(geteuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (!home || home[0] != '/')
			return -1;
		n = snprintf(buf, size, "%s/.tsh", home);
	}
	if (n < 0 || (size_t) n >= size)
		return -1;
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: teleport-unix [-c CONFIG] [--profile[=DIR]] [--json] [--insecure-perms] COMMAND [ARGS]\n\n"
		   "Options:\n"
		   "  -c, --config PATH   configuration file (default $TELEPORT_UNIX_CONFIG or %s)\n"
		   "      --profile[=DIR] use the current tsh profile of DIR (default $TELEPORT_HOME or ~/.tsh)\n"
		   "                      as the credential; the Proxy comes from the profile and the\n"
		   "                      configuration file may be absent\n"
		   "      --json          print one JSON document on stdout\n"
		   "      --insecure-perms  do not check owner/mode of config and key files (tests only)\n"
		   "  -h, --help          this help\n"
		   "  -V, --version       print the version\n\nCommands:\n",
		TU_SYSCONFDIR "/teleport-unix.yaml");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s\n", commands[i].usage);
}

int main(int argc, char **argv)
{
	struct cli c = { 0 };
	enum { OPT_JSON = 0x100, OPT_INSECURE, OPT_PROFILE };
	static char profile_buf[PATH_MAX];
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "insecure-perms", no_argument, NULL, OPT_INSECURE },
		{ "profile", optional_argument, NULL, OPT_PROFILE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int o;

	/* Stop at the first non-option: the command parses its own arguments. */
	while ((o = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			c.config_path = optarg;
			break;
		case OPT_JSON:
			c.json = true;
			break;
		case OPT_INSECURE:
			c.insecure_perms = true;
			break;
		case OPT_PROFILE:
			if (profile_dir(optarg, profile_buf, sizeof(profile_buf)) < 0) {
				fprintf(stderr, "teleport-unix: --profile: cannot tell the tsh profile directory (give --profile=DIR)\n");
				return CLI_EXIT_ERROR;
			}
			c.profile_dir = profile_buf;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case 'V':
			printf("teleport-unix %s\n", PACKAGE_VERSION);
			return CLI_EXIT_OK;
		default:
			usage(stderr);
			return CLI_EXIT_ERROR;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "teleport-unix: missing command (see --help)\n");
		return CLI_EXIT_ERROR;
	}
	c.tty = isatty(STDOUT_FILENO) == 1;
	if (!c.json)
		tu_log_set_sink(tu_log_stderr_sink, NULL, false);

	const char *name = argv[optind];
	/* doctor judges this host's own files; sshd runs ssh-principals with the host's
	 * configuration: a person's tsh login has no place in either */
	if (c.profile_dir && (strcmp(name, "doctor") == 0 || strcmp(name, "ssh-principals") == 0))
		return cli_errorf(&c, "%s: --profile does not apply (it checks this host's configuration)",
				  name);
	/* sync and watch write the cache PAM and NSS decide from: only with the host's credential */
	if (c.profile_dir && (strcmp(name, "sync") == 0 || strcmp(name, "watch") == 0))
		return cli_errorf(&c, "%s: --profile does not apply (it writes this host's cache)", name);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0) {
			/* Commands parse their own arguments with getopt from their argv[0]. */
			int idx = optind;
			optind = 0;
			return commands[i].fn(&c, argc - idx, argv + idx);
		}
	}
	return cli_errorf(&c, "unknown command '%s' (see --help)", name);
}
