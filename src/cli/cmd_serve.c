/* cli/cmd_serve.c — placeholder until its module lands; replaced by the real command. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_serve(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "medcore serve: not built yet\n");
	return 1;
}
