/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd-passwd.c - `teleport-unix passwd [LOGIN]` and `group [NAME]` (SPEC §7):
 * what the NSS module serves, read from the same public snapshot and packed
 * by the same code (base/snapshot.c, base/pack.c), printed as getent lines,
 * so the output is byte-for-byte what `getent passwd|group` prints through
 * libnss_teleport.so.2.  A key made only of digits is a uid/gid, as with
 * getent.  Exit 0 (an empty list too, as getent), 1 not found, 2 error.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cleanup.h"
#include "cli.h"
#include "ctx.h"
#include "err.h"
#include "pack.h"
#include "snapshot.h"

/* Whether key is numeric the way getent decides it, and its id. */
static bool parse_id(const char *s, uint32_t *ret)
{
	uint64_t v = 0;

	/* getent: a key strtoul() takes whole is an id ("0123" too); it saturates, then the
	 * value is cast to uid_t/gid_t. */
	if (!s || !*s)
		return false;
	for (size_t n = 0; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9')
			return false;
		if (v > (UINT64_MAX - 9) / 10)
			v = UINT64_MAX;
		else
			v = v * 10 + (uint64_t) (s[n] - '0');
	}
	*ret = (uint32_t) v;
	return true;
}

/* Opens the public snapshot of the configured cache.dir. Prints the error and returns 2 on failure.
 */
static int open_public(struct cli *c, const char *what, struct tu_snapshot **ret)
{
	struct tu_ctx *ctx = NULL;
	char path[PATH_MAX];
	struct tu_err e;
	int r;

	r = cli_open_ctx(c, &ctx);
	if (r != 0)
		return r;
	r = tu_cache_path(tu_ctx_conf(ctx), TU_CACHE_PUBLIC_FILE, path, sizeof(path));
	tu_ctx_free(ctx);
	if (r < 0)
		return cli_errorf(c, "%s: cache.dir: path too long", what);
	tu_err_clear(&e);
	r = tu_snapshot_open(path, TU_SNAPSHOT_KIND_ACCOUNTS,
			     TU_SNAPSHOT_CHECK_RECORDS | TU_SNAPSHOT_OVERLAY, ret, &e);
	if (r == -ENOENT)
		return cli_errorf(c, "%s: no accounts cache at %s (run 'teleport-unix sync')", what,
				  path);
	if (r < 0)
		return cli_error(c, what, &e);
	return 0;
}

static int print_pw(struct cli *c, struct json *j, const struct tu_pw_view *v)
{
	size_t need = tu_pack_passwd_size(v);
	_cleanup_free_ char *buf = need ? malloc(need) : NULL;
	struct passwd pw;
	char line[3 * 4096 + 512];

	if (!buf || tu_pack_passwd(v, &pw, buf, need) < 0 ||
	    tu_format_passwd_line(&pw, line, sizeof(line)) < 0)
		return -ENOMEM;
	if (!c->json) {
		printf("%s\n", line);
		return 0;
	}
	json_key_obj_begin(j, NULL);
	json_key_str(j, "name", pw.pw_name);
	json_key_int(j, "uid", (long long) pw.pw_uid);
	json_key_int(j, "gid", (long long) pw.pw_gid);
	json_key_str(j, "gecos", pw.pw_gecos);
	json_key_str(j, "dir", pw.pw_dir);
	json_key_str(j, "shell", pw.pw_shell);
	json_key_str(j, "line", line);
	json_obj_end(j);
	return 0;
}

static int print_gr(struct cli *c, struct json *j, const struct tu_gr_view *v)
{
	size_t need = tu_pack_group_size(v);
	_cleanup_free_ char *buf = need ? malloc(need) : NULL;
	_cleanup_free_ char *line = NULL;
	struct group gr;

	if (!buf || tu_pack_group(v, &gr, buf, need) < 0)
		return -ENOMEM;
	/* The line is never longer than the packed record (strings + one separator per pointer). */
	line = malloc(need + 64);
	if (!line || tu_format_group_line(&gr, line, need + 64) < 0)
		return -ENOMEM;
	if (!c->json) {
		printf("%s\n", line);
		return 0;
	}
	json_key_obj_begin(j, NULL);
	json_key_str(j, "name", gr.gr_name);
	json_key_int(j, "gid", (long long) gr.gr_gid);
	json_key_arr_begin(j, "members");
	for (char **m = gr.gr_mem; m && *m; m++)
		json_arr_str(j, *m);
	json_arr_end(j);
	json_key_str(j, "line", line);
	json_obj_end(j);
	return 0;
}

enum db { DB_PASSWD, DB_GROUP };

static int print_one(struct cli *c, struct json *j, const struct tu_snapshot *s, enum db db,
		     const char *key, struct tu_err *e)
{
	uint32_t id;
	bool numeric = parse_id(key, &id);
	int r;

	if (db == DB_PASSWD) {
		struct tu_pw_view v;
		r = numeric ? tu_snapshot_find_uid(s, id, &v, e)
			    : tu_snapshot_find_login(s, key, &v, e);
		return r < 0 ? r : print_pw(c, j, &v);
	}
	struct tu_gr_view v;
	r = numeric ? tu_snapshot_find_gid(s, id, &v, e) : tu_snapshot_find_group(s, key, &v, e);
	return r < 0 ? r : print_gr(c, j, &v);
}

static int print_all(struct cli *c, struct json *j, const struct tu_snapshot *s, enum db db,
		     size_t *ret_n, struct tu_err *e)
{
	size_t n = db == DB_PASSWD ? tu_snapshot_passwd_count(s) : tu_snapshot_group_count(s);
	int r = 0;

	for (size_t i = 0; i < n && r >= 0; i++) {
		if (db == DB_PASSWD) {
			struct tu_pw_view v;
			r = tu_snapshot_passwd_at(s, i, &v, e);
			if (r >= 0)
				r = print_pw(c, j, &v);
		} else {
			struct tu_gr_view v;
			r = tu_snapshot_group_at(s, i, &v, e);
			if (r >= 0)
				r = print_gr(c, j, &v);
		}
	}
	*ret_n = n;
	return r;
}

/*
 * passwd and group share everything but the record type.  With --json the
 * document is built in memory and printed only when complete, so an error
 * prints exactly one JSON document (the error).
 */
static int run(struct cli *c, int argc, char **argv, enum db db)
{
	const char *what = db == DB_PASSWD ? "passwd" : "group";
	_cleanup_(tu_snapshot_closep) struct tu_snapshot *s = NULL;
	_cleanup_free_ char *doc = NULL;
	size_t doc_len = 0, n = 1;
	FILE *mem = NULL;
	struct tu_err e;
	struct json j;
	int r;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("Usage: teleport-unix [-c CONFIG] [--json] %s [%s]\n"
		       "Prints what the NSS module serves, as getent does.\n",
		       what, db == DB_PASSWD ? "LOGIN|UID" : "NAME|GID");
		return CLI_EXIT_OK;
	}
	if (argc > 2)
		return cli_errorf(c, "%s: too many arguments (usage: teleport-unix %s [%s])", what,
				  what, db == DB_PASSWD ? "LOGIN|UID" : "NAME|GID");
	r = open_public(c, what, &s);
	if (r != 0)
		return r;
	if (c->json) {
		mem = open_memstream(&doc, &doc_len);
		if (!mem)
			return cli_errorf(c, "%s: out of memory", what);
		json_begin(&j, mem);
		json_key_arr_begin(&j, what);
	}
	tu_err_clear(&e);
	if (argc == 2)
		r = print_one(c, &j, s, db, argv[1], &e);
	else
		r = print_all(c, &j, s, db, &n, &e);
	if (c->json) {
		json_arr_end(&j);
		json_end(&j);
		if (fclose(mem) != 0 && r >= 0)
			r = -ENOMEM;
	}
	if (r < 0 && r != -ENOENT) {
		if (r == -ENOMEM && e.code == 0)
			tu_err_set(&e, r, "out of memory");
		return cli_error(c, what, &e);
	}
	if (c->json)
		fwrite(doc, 1, doc_len, stdout);
	/* Like getent: an empty enumeration is not an error, a missing key is "not found". */
	return r == -ENOENT ? CLI_EXIT_NO : CLI_EXIT_OK;
}

int cmd_passwd(struct cli *c, int argc, char **argv)
{
	return run(c, argc, argv, DB_PASSWD);
}

int cmd_group(struct cli *c, int argc, char **argv)
{
	return run(c, argc, argv, DB_GROUP);
}
