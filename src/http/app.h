/* http/app.h — what every handler can reach: configuration, the store, the auth engine.
 * One struct app per server process, built by cli/serve and read-only after start. */
#ifndef MC_HTTP_APP_H
#define MC_HTTP_APP_H
#include <stdint.h>

struct mc_config;
struct store;
struct auth;
struct router;

struct app {
	const struct mc_config *cfg;
	struct store *store;
	struct auth *auth;          /* token keys, login worker pool; see auth/ */
	int64_t started_ms;
	const char *version;        /* MEDCORE_VERSION */
	const struct router *router; /* the compiled route tables (OpenAPI, metrics); set by serve */
};

#endif
