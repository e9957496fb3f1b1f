/* cli/cmd_user.c — placeholder until its module lands; replaced by the real command. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_user(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "medcore user: not built yet\n");
	return 1;
}
