/* cli/main.c — `medcore <command>`: one binary, many roles (DESIGN §1). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_command commands[] = {
	{"serve", cmd_serve, "serve the FHIR API, /api/v1 and the dashboard"},
	{"migrate", cmd_migrate, "apply missing database migrations"},
	{"user", cmd_user, "manage users: add, disable, reset-mfa"},
	{"demo", cmd_demo, "load demo users, practitioners and patients"},
	{"audit", cmd_audit, "audit verify: check the audit chain"},
	{"migrate-data", cmd_migrate_data, "copy a database to another (e.g. SQLite to PostgreSQL)"},
	{"worker", cmd_worker, "run event consumers from Kafka (scale-out)"},
	{"projections", cmd_projections, "projections rebuild: replay events into a read model"},
	{"simulate", cmd_simulate, "stream simulated device vitals to a server (NDJSON over HTTP)"},
	{"client", cmd_client, "client add: register an OAuth2 client (client credentials)"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: medcore <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "\n`medcore <command> --help` describes each command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("medcore %s\n", MEDCORE_VERSION);
		return 0;
	}
	cli_init();
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "medcore: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
