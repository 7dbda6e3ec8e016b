/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-cache.c - placeholder until this command lands. */
#include "cli.h"

int cmd_cache(struct cli *c, int argc, char **argv)
{
	return cli_errorf(c, "cache: not implemented yet");
}
