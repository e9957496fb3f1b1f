/* cli/cmd_demo.c — placeholder until its module lands; replaced by the real command. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_demo(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "medcore demo: not built yet\n");
	return 1;
}
