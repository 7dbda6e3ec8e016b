/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-ping.c - placeholder until this command lands. */
#include "cli.h"

int cmd_ping(struct cli *c, int argc, char **argv)
{
	return cli_errorf(c, "ping: not implemented yet");
}
