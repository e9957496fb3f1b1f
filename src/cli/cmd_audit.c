/* cli/cmd_audit.c — placeholder until its module lands; replaced by the real command. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_audit(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "medcore audit: not built yet\n");
	return 1;
}
