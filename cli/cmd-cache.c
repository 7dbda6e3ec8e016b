/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd-cache.c - `teleport-unix cache clear` (SPEC §7): removes both cache
 * snapshots (the private state first, so NSS keeps serving consistent data
 * until the public file goes), under the refresh lock so that no `sync` or
 * online refresh is half-way through a write.  Exit 0, or 2 on error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cache.h"
#include "cleanup.h"
#include "cli.h"
#include "conf.h"
#include "ctx.h"
#include "err.h"

int cmd_cache(struct cli *c, int argc, char **argv)
{
	struct tu_ctx *ctx = NULL;
	struct tu_err e;
	int r;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("Usage: teleport-unix [-c CONFIG] [--json] cache clear\n"
		       "Removes the cache (both snapshots).\n");
		return CLI_EXIT_OK;
	}
	if (argc != 2 || strcmp(argv[1], "clear") != 0)
		return cli_errorf(c, "cache: %s (usage: teleport-unix cache clear)",
				  argc < 2   ? "missing subcommand"
				  : argc > 2 ? "too many arguments"
					     : "unknown subcommand");
	r = cli_open_ctx(c, &ctx);
	if (r != 0)
		return r;
	const char *dir = tu_ctx_conf(ctx)->cache_dir;
	_cleanup_close_ int lock_fd = -1;
	struct stat st;

	tu_err_clear(&e);
	/* No cache.dir, nothing to clear and nothing to lock (nor to create). */
	r = stat(dir, &st) < 0 && errno == ENOENT
		? 0
		: tu_cache_lock(tu_ctx_conf(ctx), tu_cache_lock_budget(tu_ctx_conf(ctx)), &lock_fd,
				NULL, &e);
	if (r >= 0)
		r = tu_cache_clear(tu_ctx_conf(ctx), &e);
	if (r < 0) {
		r = cli_error(c, "cache clear", &e);
		tu_ctx_free(ctx);
		return r;
	}
	if (c->json) {
		struct json j;
		json_begin(&j, stdout);
		json_key_bool(&j, "cleared", true);
		json_key_str(&j, "cache_dir", dir);
		json_end(&j);
	} else
		printf("cache cleared: %s\n", dir);
	tu_ctx_free(ctx);
	return CLI_EXIT_OK;
}
