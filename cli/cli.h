/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - shared declarations of the teleport-unix admin CLI.
 * Each command lives in cli/cmd-<name>.c and returns the exit code of
 * SPEC §7 (0 ok, 1 not found / deny / degraded, 2 error).
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

struct tu_err;
struct tu_ctx;

struct cli {
	const char *config_path; /* -c/--config, NULL = default */
	bool json;               /* --json */
	bool insecure_perms;     /* --insecure-perms: skip owner/mode checks (tests) */
	bool tty;                /* stdout is a terminal (progress output) */
	const char *profile_dir; /* --profile[=DIR]: a tsh profile directory (absolute), NULL = none */
};

enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_NO = 1,    /* not found / deny / degraded */
	CLI_EXIT_ERROR = 2,
};

/* argv[0] is the command name; argc counts it. */
int cmd_ping(struct cli *c, int argc, char **argv);
int cmd_sync(struct cli *c, int argc, char **argv);
int cmd_user(struct cli *c, int argc, char **argv);
int cmd_check(struct cli *c, int argc, char **argv);
int cmd_passwd(struct cli *c, int argc, char **argv);
int cmd_group(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_doctor(struct cli *c, int argc, char **argv);
int cmd_cache(struct cli *c, int argc, char **argv);
int cmd_ssh_principals(struct cli *c, int argc, char **argv);
int cmd_watch(struct cli *c, int argc, char **argv);

/* Opens the context for c (config + flags); on failure prints the error line and returns 2. */
int cli_open_ctx(struct cli *c, struct tu_ctx **ret);

/* Prints "teleport-unix: <what>: <why>" to stderr (why from e), returns CLI_EXIT_ERROR.
 * With --json, also prints {"error": "..."} on stdout. */
int cli_error(struct cli *c, const char *what, const struct tu_err *e);
/* Same with a plain message. */
int cli_errorf(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Minimal JSON writer onto stdout (strings escaped per RFC 8259). */
struct json {
	FILE *f;
	int depth;
	bool first[32];
};
void json_begin(struct json *j, FILE *f);         /* opens the top-level object */
void json_end(struct json *j);                    /* closes it and prints "\n" */
void json_key_str(struct json *j, const char *key, const char *val); /* val NULL -> null */
void json_key_int(struct json *j, const char *key, long long val);
void json_key_bool(struct json *j, const char *key, bool val);
void json_key_obj_begin(struct json *j, const char *key);  /* key NULL inside arrays */
void json_obj_end(struct json *j);
void json_key_arr_begin(struct json *j, const char *key);
void json_arr_str(struct json *j, const char *val);
void json_arr_end(struct json *j);
void json_escape(FILE *f, const char *s);
