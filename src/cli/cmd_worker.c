/* cli/cmd_worker.c — `medcore worker --consumers NAMES --kafka-brokers HOSTS`: run event consumers
 * from the Kafka topic medcore.domain-events instead of in-process (scale-out, DESIGN §3), and the
 * events start-up that `serve` shares (cli_events_start).
 *
 * Each named consumer gets its own thread and consumer group ("medcore-<name>"). Signals are taken
 * synchronously with sigwait() as in serve; on SIGTERM/SIGINT the threads finish the message in hand,
 * commit, and leave their group.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/modules.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "events/events.h"
#include "events/kafka.h"
#include "store/store.h"

#define WORKER_CONSUMERS_MAX 32

/* ---- serve's side ---------------------------------------------------------------------------- */

static bool inprocess_wanted(const char *list, const char *name)
{
	if (!list || !list[0] || !strcmp(list, "none"))
		return false;
	return !strcmp(list, "all") || config_list_has(list, name);
}

int cli_events_start(const struct mc_config *cfg, struct store *s, struct events_dispatcher **d,
		     struct events_bridge **b)
{
	const struct events_consumer *list[WORKER_CONSUMERS_MAX + 1];
	size_t n = 0;
	*d = NULL;
	*b = NULL;
	for (size_t i = 0; i < cli_consumers_n && n < WORKER_CONSUMERS_MAX; i++)
		if (inprocess_wanted(cfg->inprocess_consumers, cli_consumers[i]->name))
			list[n++] = cli_consumers[i];
	if (cfg->kafka_brokers && cfg->kafka_brokers[0]) {
		if (events_bridge_create(cfg->kafka_brokers, NULL, b)) {
			LOGE("events: the kafka bridge failed to start", "\"component\":\"%s\"", "events");
			return MC_EINVAL;
		}
		list[n++] = events_bridge_consumer(*b);
	}
	int rc = events_dispatcher_start(s, list, n, d);
	if (rc) {
		LOGE("events: the dispatcher failed to start", "\"code\":\"%s\"", mc_code_name(rc));
		events_bridge_free(*b);
		*b = NULL;
		return rc;
	}
	LOGI("events: dispatcher started", "\"consumers\":%zu,\"kafka\":%s", n, *b ? "true" : "false");
	return MC_OK;
}

/* ---- medcore worker -------------------------------------------------------------------------- */

struct wthread {
	pthread_t th;
	struct store *s;
	const char *brokers;
	const struct events_consumer *c;
	atomic_bool *stop;
	int rc;
};

static void *wthread_main(void *arg)
{
	struct wthread *w = arg;
	w->rc = events_kafka_consume(w->s, w->brokers, w->c, NULL, w->stop);
	return NULL;
}

static int worker_usage(FILE *out)
{
	fprintf(out, "usage: medcore worker --consumers NAME[,NAME...] --kafka-brokers HOST:PORT[,...] [settings...]\n\n"
		     "Runs the named event consumers from the Kafka topic medcore.domain-events (consumer group\n"
		     "medcore-<name>). Run serve with --inprocess-consumers listing the others.\nconsumers:");
	for (size_t i = 0; i < cli_consumers_n; i++)
		fprintf(out, " %s", cli_consumers[i]->name);
	fprintf(out, "\n\n");
	config_help(out);
	return 0;
}

/* Take "--NAME VALUE" / "--NAME=VALUE" out of argv (compacting it); *val is argv-owned or NULL. */
static int take_flag(int *argc, char **argv, const char *name, const char **val)
{
	size_t nl = strlen(name);
	*val = NULL;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) || strncmp(a + 2, name, nl))
			continue;
		int drop;
		if (a[2 + nl] == '=') {
			*val = a + 3 + nl;
			drop = 1;
		} else if (a[2 + nl] == '\0') {
			if (i + 1 >= *argc)
				return MC_EINVAL;
			*val = argv[i + 1];
			drop = 2;
		} else {
			continue;
		}
		memmove(&argv[i], &argv[i + drop], (size_t)(*argc - i - drop) * sizeof(*argv));
		*argc -= drop;
		return MC_OK;
	}
	return MC_OK;
}

int cli_load_config(const char *cmd, int argc, char **argv, struct mc_config *cfg)
{
	char err[256] = "";
	int used = 0;
	if (config_load(cfg, argc - 1, argv + 1, &used, err, sizeof(err))) {
		fprintf(stderr, "medcore %s: %s\n", cmd, err);
		config_release(cfg);
		return 2;
	}
	if (used != argc - 1) {
		fprintf(stderr, "medcore %s: unexpected argument '%s' (see --help)\n", cmd, argv[1 + used]);
		config_release(cfg);
		return 2;
	}
	enum log_level lvl;
	if (log_level_parse(cfg->log_level, &lvl)) {
		fprintf(stderr, "medcore %s: --log-level must be debug, info, warn, error or off\n", cmd);
		config_release(cfg);
		return 2;
	}
	log_min_level = lvl;
	return 0;
}

int cmd_worker(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return worker_usage(stdout);
	const char *names = NULL;
	if (take_flag(&argc, argv, "consumers", &names) || !names || !names[0]) {
		fprintf(stderr, "medcore worker: --consumers NAME[,NAME...] is required (see --help)\n");
		return 2;
	}
	struct mc_config cfg;
	int code = cli_load_config("worker", argc, argv, &cfg);
	if (code)
		return code;
	if (!cfg.kafka_brokers[0]) {
		fprintf(stderr, "medcore worker: --kafka-brokers (or MEDCORE_KAFKA_BROKERS) is required\n");
		config_release(&cfg);
		return 2;
	}
	struct wthread w[WORKER_CONSUMERS_MAX];
	size_t n = 0;
	char *copy = mc_strdup(names);
	code = 0;
	for (char *p = copy, *e; p && *p; p = e) {
		e = strchr(p, ',');
		if (e)
			*e++ = '\0';
		const struct events_consumer *c = cli_consumer_find(p);
		if (!c || n == WORKER_CONSUMERS_MAX) {
			fprintf(stderr, "medcore worker: unknown consumer '%s' (see --help)\n", p);
			code = 2;
			break;
		}
		memset(&w[n], 0, sizeof(w[n]));
		w[n++].c = c;
	}
	free(copy);
	if (code) {
		config_release(&cfg);
		return code;
	}

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct store *store = NULL;
	atomic_bool stop = false;
	size_t started = 0;
	code = 1;
	if (cli_open_store(cfg.db, 1, &store))
		goto out;
	for (size_t i = 0; i < n; i++) {
		w[i].s = store;
		w[i].brokers = cfg.kafka_brokers;
		w[i].stop = &stop;
		if (pthread_create(&w[i].th, NULL, wthread_main, &w[i]) != 0)
			goto out;
		started++;
	}
	log_write(LOG_INFO, "worker ready", "\"consumers\":%zu", n);
	int sig = 0;
	while (sigwait(&set, &sig) != 0)
		;
	LOGI("worker shutting down", "\"signal\":%d", sig);
	code = 0;
out:
	atomic_store(&stop, true);
	for (size_t i = 0; i < started; i++) {
		pthread_join(w[i].th, NULL);
		if (w[i].rc)
			code = 1;
	}
	store_close(store);
	config_release(&cfg);
	metrics_free_all();
	return code;
}
