/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-status.c - placeholder until this command lands. */
#include "cli.h"

int cmd_status(struct cli *c, int argc, char **argv)
{
	return cli_errorf(c, "status: not implemented yet");
}
