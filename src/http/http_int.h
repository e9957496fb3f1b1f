/* http/http_int.h — internals shared by the files of http/ and by its unit tests.
 *
 * The layer is split so that everything but server.c is independent of libmicrohttpd:
 *   router.c   compiled route tables, path decoding, query parsing, matching
 *   request.c  the req_* and reply_* functions handlers use, error bodies
 *   dispatch.c the one dispatcher (limits, content type, authn, permission, handler, audit, reply)
 *   write.c    req_write (the durable unit of work with its audit record)
 *   health.c   /healthz /readyz /metrics /api/v1/openapi.json
 *   server.c   libmicrohttpd glue, graceful shutdown
 */
#ifndef MC_HTTP_INT_H
#define MC_HTTP_INT_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "audit/audit.h"
#include "http/route.h"

#define HTTP_MAX_SEGMENTS 32        /* path segments; more is 404 */
#define HTTP_MAX_PARAMS 8           /* == array size of req->params */
#define HTTP_MAX_QUERY_ARGS 100     /* more is 400 */
#define HTTP_MAX_QUERY_LEN 16384    /* raw query string bytes; more is 400 */
#define HTTP_MAX_PATH_LEN 4096      /* raw path bytes; more is 404 */
#define HTTP_REQUEST_ID_MAX 64
#define HTTP_STATUS_SLOTS 24        /* distinct statuses counted per route (then "other") */

struct metric;

struct status_slot {
	_Atomic int status;                 /* 0 = free */
	_Atomic uint64_t count;
};

/* One route, compiled at start-up. */
struct croute {
	const struct route *r;
	char *segs[HTTP_MAX_SEGMENTS];      /* literal text, or NULL for a {param} segment */
	char *pnames[HTTP_MAX_SEGMENTS];    /* parameter name for {param} segments */
	size_t nsegs;
	int perm;                           /* enum auth_perm, or -1 when the route names none */
	uint64_t literal_mask;              /* bit (nsegs-1-i) set when segment i is literal: higher wins */
	struct metric *duration;            /* histogram, registered at build */
	struct status_slot status[HTTP_STATUS_SLOTS];
	_Atomic uint64_t status_other;
};

struct router {
	struct croute *routes;
	size_t n;
	struct status_slot unmatched[HTTP_STATUS_SLOTS];  /* requests that matched no route */
	_Atomic uint64_t unmatched_other;
};

/* Build from module tables. Fails (MC_EINVAL, reason in err) on: a bad method or pattern, a
 * duplicate method+pattern, an unknown permission name, a route that is neither ROUTE_PUBLIC nor
 * declares a permission or ROUTE_PERM_BY_TYPE (default deny), ROUTE_PERM_BY_TYPE without a {type}
 * segment. NULL table pointers are skipped. *out is freed with router_free. */
int router_build(const struct route_table *const *tables, size_t ntables, struct router **out,
		 char *err, size_t errsz);
void router_free(struct router *rt);

/* Split a raw request path into percent-decoded segments (strings in a).
 * MC_EINVAL (400) for a bad escape, an encoded '/' or NUL, a "." or ".." segment, a path not
 * starting with '/'; MC_ENOTFOUND for more than HTTP_MAX_SEGMENTS segments or an over-long path.
 * *path receives the decoded path ("/" + segments joined). */
int http_path_decode(struct arena *a, const char *raw, size_t rawlen, char **segs, size_t *nsegs,
		     char **path);
/* Parse a raw query string ("a=1&b=x%20y"; '+' is a space) into *out (arena array).
 * Empty pieces ("a=1&&b") are skipped; a key without '=' has value "". MC_EINVAL on a bad escape,
 * an encoded NUL, more than HTTP_MAX_QUERY_ARGS arguments or a query over HTTP_MAX_QUERY_LEN. */
int http_query_parse(struct arena *a, const char *raw, struct kv **out, size_t *n);

enum match_result { MATCH_OK, MATCH_NO_PATH, MATCH_NO_METHOD };
struct route_match {
	const struct croute *cr;            /* MATCH_OK */
	size_t nparams;
	struct kv params[HTTP_MAX_PARAMS];
	char allow[128];                    /* MATCH_NO_METHOD, and MATCH_OK: methods of the path */
};
/* The most specific route for method and segments (literal segments beat {params}, earlier
 * segments first). HEAD matches GET routes. Param values point into segs. */
enum match_result router_match(const struct router *rt, const char *method, char *const *segs,
			       size_t nsegs, struct route_match *m);

/* What the dispatcher needs from the outside world; server.c fills it with the real engines,
 * unit tests with fakes. */
struct http_ops {
	int (*token_verify)(struct auth *a, const char *token, struct auth_principal *out);
	int (*audit_async)(struct store *s, const struct audit_rec *r);
};

struct http_service {
	struct app *app;
	const struct router *router;
	struct http_ops ops;
};

/* How the dispatcher reads request headers (req->conn points to one). */
struct http_exchange {
	const char *(*header)(void *ctx, const char *name);   /* NULL when absent */
	void *ctx;
};

/* Per-request state kept between the access-handler calls. */
struct http_call {
	struct req req;
	struct reply rep;
	enum match_result mres;
	bool discard_body;                  /* early error: read and drop the body (bounded) */
	struct route_match match;
	int early_rc;                       /* MC_* decided before the body (400/404/405/413) */
	size_t body_limit;                  /* bytes the body may have */
	int64_t start_us;
};

/* Start a request: fills call->req (arena, method, path, query, request id from the headers,
 * route and params) and decides the body limit. raw_target is the request-target as received
 * (path and query, not decoded). The caller owns call and destroys it with http_call_end. */
void http_call_begin(const struct http_service *svc, struct http_call *call, struct arena *a,
		     const char *method, const char *raw_target, struct http_exchange *ex,
		     const char *client_ip);
/* Run the dispatcher on a complete request (body in call->req). Fills call->rep fully: status,
 * content type, body, all headers (request id, security headers, CORS). Logs the request line
 * and counts metrics. */
void http_call_run(const struct http_service *svc, struct http_call *call);
/* Fill call->rep with an error reply for rc (used for early failures and by http_call_run). */
void http_error_reply(struct req *r, struct reply *rep, int rc);

/* Error bodies, exposed for tests. Messages for 5xx are fixed, never detail. */
void http_error_body(struct req *r, struct reply *rep, int rc, bool fhir, bool raw);

/* Prometheus text for the per-route request counters (health.c's /metrics). */
void http_metrics_render(const struct router *rt, struct buf *out);
void http_count_status(struct status_slot *slots, _Atomic uint64_t *other, int status);

/* The OpenAPI 3.0 document generated from the route tables (health.c). New reference. */
json_t *http_openapi(const struct router *rt, const char *version);

/* The audit record for r (principal, request id, ip, req->audit, type/id path params). */
void http_audit_rec(const struct req *r, int outcome, struct audit_rec *rec);

/* CORS: is origin allowed by the comma list cfg ("" none, "*" any)? */
bool http_cors_allowed(const char *cfg, const char *origin);

#endif
