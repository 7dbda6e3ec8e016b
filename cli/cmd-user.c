/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-user.c - placeholder until this command lands. */
#include "cli.h"

int cmd_user(struct cli *c, int argc, char **argv)
{
	return cli_errorf(c, "user: not implemented yet");
}
