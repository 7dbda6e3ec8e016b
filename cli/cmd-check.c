/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-check.c - placeholder until this command lands. */
#include "cli.h"

int cmd_check(struct cli *c, int argc, char **argv)
{
	return cli_errorf(c, "check: not implemented yet");
}
