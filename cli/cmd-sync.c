/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-sync.c - placeholder until this command lands. */
#include "cli.h"

int cmd_sync(struct cli *c, int argc, char **argv)
{
	return cli_errorf(c, "sync: not implemented yet");
}
