/* cli/cli.h — the subcommands of the one binary. Each returns a process exit code. */
#ifndef MC_CLI_CLI_H
#define MC_CLI_CLI_H

struct cli_command {
	const char *name;
	int (*fn)(int argc, char **argv);   /* argv[0] is the command name */
	const char *help;
};

int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_audit(int argc, char **argv);

/* Shared helper: open the store at url, run migrations; prints errors to stderr. */
struct store;
int cli_open_store(const char *url, int migrate, struct store **out);
/* One-time process start-up: sodium_init, jansson seed. Exits on failure. */
void cli_init(void);

#endif
