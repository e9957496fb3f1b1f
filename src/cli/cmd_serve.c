/* cli/cmd_serve.c — `medcore serve`: open the store (migrating), start auth and the HTTP server,
 * wait for SIGTERM/SIGINT, shut down gracefully, exit 0.
 *
 * Signals are blocked in every thread (the mask is set before any thread starts and inherited)
 * and taken synchronously with sigwait() here, so no handler runs in async-signal context.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "cli/cli.h"
#include "cli/modules.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/metrics.h"
#include "events/events.h"
#include "events/kafka.h"
#include "fhir/export.h"
#include "http/app.h"
#include "http/http_int.h"
#include "http/server.h"
#include "modules/vitals/vitals_module.h"
#include "modules/vitals/live.h"
#include "store/store.h"

/* How long in-flight requests may take to finish after SIGTERM. */
#define SHUTDOWN_WAIT_MS 10000

static int serve_usage(FILE *out)
{
	fprintf(out, "usage: medcore serve [settings...]\n\n");
	config_help(out);
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	int64_t t0 = mctime_mono_us();
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return serve_usage(stdout);

	struct mc_config cfg;
	char err[256] = "";
	int used = 0;
	if (config_load(&cfg, argc - 1, argv + 1, &used, err, sizeof(err))) {
		fprintf(stderr, "medcore serve: %s\n", err);
		config_release(&cfg);
		return 2;
	}
	if (used != argc - 1) {
		fprintf(stderr, "medcore serve: unexpected argument '%s' (see --help)\n", argv[1 + used]);
		config_release(&cfg);
		return 2;
	}
	enum log_level lvl;
	if (log_level_parse(cfg.log_level, &lvl)) {
		fprintf(stderr, "medcore serve: --log-level must be debug, info, warn, error or off\n");
		config_release(&cfg);
		return 2;
	}
	log_min_level = lvl;

	/* Before any thread exists, so every thread inherits the blocked set. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	int code = 1;
	struct router *rt = NULL;
	struct store *store = NULL;
	struct auth *auth = NULL;
	struct http_server *srv = NULL;
	struct events_dispatcher *events = NULL;
	struct events_bridge *bridge = NULL;
	if (router_build(cli_route_tables, cli_route_tables_n, &rt, err, sizeof(err))) {
		struct buf b = BUF_INIT;
		buf_json_str(&b, err);
		LOGE("route table rejected", "\"reason\":%s", buf_str(&b));
		buf_release(&b);
		goto out;
	}
	if (cli_open_store(cfg.db, 1, &store))
		goto out;
	if (auth_create(&cfg, store, &auth)) {
		LOGE("auth engine failed to start", "%s", "\"component\":\"auth\"");
		goto out;
	}
	struct app app = {
		.cfg = &cfg,
		.store = store,
		.auth = auth,
		.started_ms = mctime_now_ms(),
		.version = MEDCORE_VERSION,
		.router = rt,
	};
	if (cli_events_start(&cfg, store, &events, &bridge))
		goto out;
	if (vitals_module_start(&app))   /* its own store and writer (DESIGN §5) */
		goto out;
	if (vitals_live_start(&app))     /* alerting + live push; sinks on the vitals module */
		goto out;
	int rc = http_server_start(&app, rt, &srv);
	if (rc) {
		LOGE("http server failed to start", "\"code\":\"%s\"", mc_code_name(rc));
		goto out;
	}
	{
		char host[256];
		const char *colon = strrchr(cfg.listen, ':');
		size_t hl = colon ? (size_t)(colon - cfg.listen) : 0;
		snprintf(host, sizeof(host), "%.*s", (int)hl, cfg.listen);
		struct buf h = BUF_INIT;
		buf_json_str(&h, host);
		/* written whatever --log-level says: it carries the bound port (tests and
		 * supervisors read it) */
		log_write(LOG_INFO, "listening",
			  "\"host\":%s,\"port\":%u,\"routes\":%zu,\"db\":\"%s\",\"startup_ms\":%.1f", buf_str(&h),
			  http_server_port(srv), rt->n, store_backend_name(store),
			  (double)(mctime_mono_us() - t0) / 1e3);
		buf_release(&h);
	}

	int sig = 0;
	while (sigwait(&set, &sig) != 0)
		;
	LOGI("shutting down", "\"signal\":%d", sig);
	vitals_live_stop();   /* ends SSE streams and WebSockets: they count as requests in flight */
	http_server_stop(srv, SHUTDOWN_WAIT_MS);
	srv = NULL;
	code = 0;
out:
	vitals_live_stop();   /* idempotent; before the server stops (suspended streams) */
	http_server_stop(srv, 0);
	fhir_export_shutdown();      /* its worker uses the store: join it before store_close */
	vitals_module_stop();          /* no HTTP thread ingests any more: checkpoint, close */
	events_dispatcher_stop(events);   /* before the store closes; a consumer call in flight ends first */
	events_bridge_free(bridge);
	if (auth)
		auth_destroy(auth);      /* first: its login workers may still queue writes */
	if (store) {
		store_close(store);      /* drains the writer: queued audit records commit */
		audit_async_forget(store);
	}
	router_free(rt);
	config_release(&cfg);
	if (code == 0)
		LOGI("stopped", "%s", "\"exit\":0");
	metrics_free_all();
	return code;
}
