/* http/server.h — the HTTP server: libmicrohttpd with a thread pool, the one dispatcher behind it.
 *
 * Life cycle (cli/cmd_serve.c):
 *   router_build(tables)                      compile and check every module's routes (http_int.h)
 *   http_server_start(app, router, &srv)      listen on app->cfg->listen, serve
 *   http_server_port(srv)                     the bound port (for --listen HOST:0)
 *   http_server_stop(srv, wait_ms)            stop accepting, let in-flight requests finish
 *                                             (bounded by wait_ms), close every connection, free
 * app and router must outlive the server.
 */
#ifndef MC_HTTP_SERVER_H
#define MC_HTTP_SERVER_H
#include <stdint.h>

#include "http/route.h"

struct app;
struct router;
struct http_server;

/* MC_EINVAL for a bad listen address, MC_EUNAVAIL when the daemon cannot start (port in use). */
int http_server_start(struct app *app, const struct router *rt, struct http_server **out);
unsigned http_server_port(const struct http_server *srv);
void http_server_stop(struct http_server *srv, int64_t wait_ms);

/* Streaming and upgraded replies (struct reply's stream_fn / upgrade_fn, route.h). conn and
 * handle are the opaque values the server passed to those callbacks. Resume may be called from
 * any thread; suspend only from inside the stream function. */
void http_stream_suspend(void *conn);
void http_stream_resume(void *conn);
/* The upgraded connection is finished: the server closes the socket and releases the connection. */
void http_upgrade_close(void *handle);

/* The server's own public routes: /healthz /readyz /metrics /api/v1/openapi.json (health.c). */
extern const struct route_table health_routes;

#endif
