/* http/route.h — what a module hands to the router, and what a handler sees.
 *
 * Routes are a table. The one dispatcher (http/dispatch.c) does, in order: match method and
 * path -> body/content-type limits -> authenticate -> permission (default deny) -> handler ->
 * audit -> reply. A handler holds only the domain step: parse, call domain code, map the result.
 *
 * Memory: everything a handler allocates for the request comes from req->arena, freed after the
 * response is sent. Strings in struct req are valid for the whole request.
 */
#ifndef MC_HTTP_ROUTE_H
#define MC_HTTP_ROUTE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "store/store.h"

struct req;
struct reply;
struct arena;
struct app;

typedef int route_fn(struct req *req, struct reply *rep);   /* returns MC_* */

enum route_flags {
	ROUTE_PUBLIC = 1 << 0,   /* no authentication, no permission */
	ROUTE_WRITE = 1 << 1,    /* changes data: handler uses req_write(); a body must be JSON (415);
	                            PERM_BY_TYPE asks for the write permission. POST without it is
	                            a read (FHIR POST _search: the handler checks its form body) */
	ROUTE_PHI = 1 << 2,      /* touches patient data: the dispatcher audits it */
	ROUTE_FHIR = 1 << 3,     /* errors as OperationOutcome (else the /api/v1 envelope) */
	ROUTE_RAW = 1 << 4,      /* errors as plain text (health, metrics) */
	ROUTE_PERM_BY_TYPE = 1 << 5, /* permission depends on the {type} path parameter (FHIR) */
	ROUTE_BODY_ANY = 1 << 6,  /* a ROUTE_WRITE whose handler checks its own body type (NDJSON) */
	ROUTE_QUERY_TOKEN = 1 << 7,  /* also accept the bearer token as ?access_token= when there is no
	                                Authorization header: browsers cannot set headers on a WebSocket
	                                or EventSource. The token then shows in URLs (proxy logs, history):
	                                only for the live-push routes, and tokens are short-lived. */
};

struct route {
	const char *method;      /* "GET", "POST", ... */
	const char *pattern;     /* "/api/v1/patients/{id}/profile"; {name} matches one segment */
	route_fn *fn;
	unsigned flags;
	const char *permission;  /* wire name, e.g. "read:patient_data"; NULL only with ROUTE_PUBLIC
	                            or ROUTE_PERM_BY_TYPE */
	size_t max_body;         /* 0: takes no body; else bytes (capped by --max-body) */
	const char *summary;     /* one line for the OpenAPI document */
};

struct kv {
	const char *key, *value;
};

/* What the dispatcher audits for ROUTE_PHI routes; handlers fill what they know. */
struct req_audit {
	const char *action;         /* "create" "read" "vread" "update" "delete" "search" "history" ... */
	const char *resource_type;
	const char *resource_id;
	const char *patient_id;     /* the patient whose data this is; NULL if none/unknown */
	const char *reason;         /* break-the-glass reason etc. */
	bool done;                  /* set by req_write(): already written in the unit's transaction */
};

struct req {
	struct arena *arena;
	struct app *app;
	const char *method;
	const char *path;           /* percent-decoded, no query string */
	const char *body;           /* NUL-terminated; NULL when none */
	size_t body_len;
	const char *content_type;   /* media type only, lowercased, no parameters; NULL when none */
	const char *request_id;
	const char *client_ip;
	const char *base_url;       /* "http://host:port" as the client addressed us */
	const struct route *route;
	struct auth_principal *who; /* NULL on public routes */
	size_t nparams;
	struct kv params[8];        /* path parameters, in pattern order */
	size_t nquery;
	struct kv *query;           /* decoded query arguments, in order; repeated keys kept */
	void *conn;                 /* the server connection (headers); opaque */
	struct req_audit audit;
	/* error detail for the dispatcher's error body (set with req_fail) */
	const char *err_msg;
	const char *err_path;       /* FHIR element path, OperationOutcome.issue.expression */
	json_t *err_details;        /* /api/v1 error.details; owned by the request */
};

const char *req_param(const struct req *r, const char *name);    /* NULL when absent */
const char *req_query(const struct req *r, const char *name);    /* first value, NULL when absent */
const char *req_header(const struct req *r, const char *name);   /* NULL when absent */
/* Record the error for the response and return code (for `return req_fail(...)`). msg must be
 * safe for the client: no PHI, no SQL, no internals. path/details may be NULL. details is stolen. */
int req_fail(struct req *r, int code, const char *msg, const char *path, json_t *details);
/* Run fn as one durable unit of work (store_write: returns once durable). When the route is
 * ROUTE_PHI and req->audit.action is set before the call, the audit record (principal, request id,
 * ip, req->audit, outcome 201 for "create" else 200) is appended in the same transaction after fn
 * succeeds, and req->audit.done is set. fn runs on the writer thread while this thread waits, so
 * it may fill req->audit.resource_id/patient_id; the record is built after fn returns.
 * Returns fn's code (or the audit append's). MC_EUNAVAIL when the app has no store. */
int req_write(struct req *r, store_work_fn *fn, void *arg);
/* Parse the body as JSON (decimals kept, duplicates rejected); on failure records the error. */
int req_json(struct req *r, json_t **out);   /* *out is owned by the request arena */

/* Streaming replies (Server-Sent Events). The server calls fn on its own thread whenever it can
 * send: it returns bytes written into buf (> 0), -1 to end the stream, or 0 when it has nothing
 * now — and then it must itself have called http_stream_suspend(conn) (http/server.h) under the lock
 * that its producer takes before calling http_stream_resume(conn), so no wake-up is lost. free(arg)
 * runs once when the response is destroyed (the connection is gone); conn is invalid afterwards. */
typedef long reply_stream_fn(void *arg, void *conn, char *buf, size_t max);
/* Connection upgrade (WebSocket). After the 101 reply and its headers are sent, the server calls fn
 * once on its own thread: fd is the socket, now the callee's until it calls
 * http_upgrade_close(handle); extra holds bytes the client already sent past the request. When the
 * upgrade does not happen (client gone, server stopping) free(arg) is called instead, once. */
typedef void reply_upgrade_fn(void *arg, int fd, const char *extra, size_t extra_len, void *handle);

struct reply {
	int status;
	const char *content_type;   /* static or arena string */
	struct buf body;
	size_t nheaders;
	struct kv headers[16];      /* arena strings; the dispatcher adds up to 8 of its own */
	/* At most one of these, set by a handler on success (status 200 / 101); body is then unused. */
	reply_stream_fn *stream_fn;
	void (*stream_free)(void *arg);
	void *stream_arg;
	reply_upgrade_fn *upgrade_fn;
	void (*upgrade_free)(void *arg);
	void *upgrade_arg;
};

void reply_header(struct reply *rep, struct req *r, const char *name, const char *value);
/* FHIR JSON body (application/fhir+json) from already-serialized bytes */
int reply_fhir_bytes(struct reply *rep, int status, const char *json, size_t len);
int reply_fhir_json(struct reply *rep, int status, const json_t *j);
/* /api/v1 success envelope {success:true,data,meta{timestamp,version[,pagination]}}; data and
 * pagination are stolen (pagination may be NULL). */
int reply_api(struct reply *rep, struct req *r, int status, json_t *data, json_t *pagination);
int reply_text(struct reply *rep, int status, const char *ctype, const char *text);

/* A module's routes. */
struct route_table {
	const struct route *routes;
	size_t n;
};

#endif
