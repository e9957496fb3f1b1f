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
int cmd_migrate_data(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_projections(int argc, char **argv);
int cmd_client(int argc, char **argv);
int cmd_simulate(int argc, char **argv);

/* Shared helper: open the store at url, run migrations; prints errors to stderr. */
struct store;
int cli_open_store(const char *url, int migrate, struct store **out);
/* serve: start the events dispatcher with the in-process consumers (--inprocess-consumers) and, with
 * --kafka-brokers, the Kafka bridge (cmd_worker.c). *d and *b may stay NULL; release them with
 * events_dispatcher_stop then events_bridge_free, before store_close. Prints errors to the log. */
struct mc_config;
struct events_dispatcher;
struct events_bridge;
int cli_events_start(const struct mc_config *cfg, struct store *s, struct events_dispatcher **d,
		     struct events_bridge **b);
/* Load settings for a subcommand (flags after argv[0]), set the log level; 0, or an exit code after
 * printing the error (cfg released then). cmd_worker.c. */
int cli_load_config(const char *cmd, int argc, char **argv, struct mc_config *cfg);
/* One-time process start-up: sodium_init, jansson seed. Exits on failure. */
void cli_init(void);

#endif
