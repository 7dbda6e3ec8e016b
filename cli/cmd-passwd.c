/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-passwd.c - placeholder until this command lands. */
#include "cli.h"

int cmd_passwd(struct cli *c, int argc, char **argv)
{
	return cli_errorf(c, "passwd: not implemented yet");
}

int cmd_group(struct cli *c, int argc, char **argv)
{
	return cli_errorf(c, "group: not implemented yet");
}
