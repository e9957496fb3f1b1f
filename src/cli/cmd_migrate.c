/* cli/cmd_migrate.c — placeholder until its module lands; replaced by the real command. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_migrate(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "medcore migrate: not built yet\n");
	return 1;
}
