/* http/request.c — what handlers call: request accessors, error recording, replies, and the
 * error bodies the dispatcher writes (OperationOutcome, the /api/v1 envelope, plain text). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mctime.h"
#include "http/app.h"
#include "http/http_int.h"

const char *req_param(const struct req *r, const char *name)
{
	for (size_t i = 0; i < r->nparams; i++)
		if (!strcmp(r->params[i].key, name))
			return r->params[i].value;
	return NULL;
}

const char *req_query(const struct req *r, const char *name)
{
	for (size_t i = 0; i < r->nquery; i++)
		if (!strcmp(r->query[i].key, name))
			return r->query[i].value;
	return NULL;
}

const char *req_header(const struct req *r, const char *name)
{
	const struct http_exchange *ex = r->conn;
	if (!ex || !ex->header)
		return NULL;
	return ex->header(ex->ctx, name);
}

static void json_decref_cb(void *p) { json_decref(p); }

int req_fail(struct req *r, int code, const char *msg, const char *path, json_t *details)
{
	r->err_msg = msg ? arena_strdup(r->arena, msg) : NULL;
	r->err_path = path ? arena_strdup(r->arena, path) : NULL;
	if (details) {
		/* owned by the request: released with its arena (an earlier one stays deferred too) */
		arena_defer(r->arena, json_decref_cb, details);
		r->err_details = details;
	}
	return code;
}

int req_json(struct req *r, json_t **out)
{
	*out = NULL;
	if (!r->body || !r->body_len)
		return req_fail(r, MC_EINVAL, "a JSON body is required", NULL, NULL);
	struct mcjson_error e;
	json_t *j;
	if (mcjson_parse(r->body, r->body_len, &j, &e)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "invalid JSON at line %d column %d: %s", e.line, e.column, e.text);
		return req_fail(r, MC_EINVAL, msg, NULL, NULL);
	}
	arena_defer(r->arena, json_decref_cb, j);
	*out = j;
	return MC_OK;
}

void reply_header(struct reply *rep, struct req *r, const char *name, const char *value)
{
	size_t cap = sizeof(rep->headers) / sizeof(rep->headers[0]);
	for (size_t i = 0; i < rep->nheaders; i++) {
		if (!strcasecmp(rep->headers[i].key, name)) {
			rep->headers[i].value = arena_strdup(r->arena, value);
			return;
		}
	}
	if (rep->nheaders == cap) {
		LOGW("reply header dropped: table full", "\"header\":\"%s\"", name);
		return;
	}
	rep->headers[rep->nheaders].key = arena_strdup(r->arena, name);
	rep->headers[rep->nheaders].value = arena_strdup(r->arena, value);
	rep->nheaders++;
}

int reply_fhir_bytes(struct reply *rep, int status, const char *json, size_t len)
{
	buf_reset(&rep->body);
	int rc = buf_append(&rep->body, json, len);
	if (rc)
		return rc;
	rep->status = status;
	rep->content_type = "application/fhir+json";
	return MC_OK;
}

int reply_fhir_json(struct reply *rep, int status, const json_t *j)
{
	buf_reset(&rep->body);
	int rc = mcjson_dump(j, &rep->body);
	if (rc)
		return rc;
	rep->status = status;
	rep->content_type = "application/fhir+json";
	return MC_OK;
}

static json_t *meta_obj(const struct req *r)
{
	char ts[32];
	mctime_format_ms(mctime_now_ms(), ts);
	json_t *meta = json_object();
	json_object_set_new(meta, "timestamp", json_string(ts));
	json_object_set_new(meta, "version", json_string(r->app && r->app->version ? r->app->version : MEDCORE_VERSION));
	if (r->request_id)
		json_object_set_new(meta, "requestId", json_string(r->request_id));
	return meta;
}

int reply_api(struct reply *rep, struct req *r, int status, json_t *data, json_t *pagination)
{
	json_t *env = json_object();
	json_object_set_new(env, "success", json_true());
	json_object_set_new(env, "data", data ? data : json_null());
	json_t *meta = meta_obj(r);
	if (pagination)
		json_object_set_new(meta, "pagination", pagination);
	json_object_set_new(env, "meta", meta);
	buf_reset(&rep->body);
	int rc = mcjson_dump(env, &rep->body);
	json_decref(env);
	if (rc)
		return rc;
	rep->status = status;
	rep->content_type = "application/json";
	return MC_OK;
}

int reply_text(struct reply *rep, int status, const char *ctype, const char *text)
{
	buf_reset(&rep->body);
	int rc = buf_puts(&rep->body, text);
	if (rc)
		return rc;
	rep->status = status;
	rep->content_type = ctype ? ctype : "text/plain; charset=utf-8";
	return MC_OK;
}

/* The message a client sees when the handler gave none, and always for 5xx. */
static const char *default_message(int rc)
{
	switch (rc) {
	case MC_EINVAL: return "the request is invalid";
	case MC_EUNAUTH: return "authentication required";
	case MC_EFORBIDDEN: return "not allowed";
	case MC_ENOTFOUND: return "not found";
	case MC_EMETHOD: return "method not allowed";
	case MC_ENOTACCEPT: return "not acceptable";
	case MC_ECONFLICT: return "conflict";
	case MC_EGONE: return "gone";
	case MC_EPRECOND: return "precondition failed";
	case MC_ETOOBIG: return "request body too large";
	case MC_EMEDIA: return "unsupported content type: use application/json or application/fhir+json";
	case MC_EUNPROC: return "unprocessable";
	case MC_ELOCKED: return "account locked";
	case MC_EPRECONDREQ: return "precondition required";
	case MC_ERATE: return "too many requests";
	case MC_EHDRTOOBIG: return "request headers too large";
	case MC_ENOTIMPL: return "not implemented";
	case MC_EUNAVAIL: return "service unavailable";
	case MC_ETIMEOUT: return "timeout";
	default: return "internal error";
	}
}

void http_error_body(struct req *r, struct reply *rep, int rc, bool fhir, bool raw)
{
	int status = mc_http_status(rc);
	bool server_side = status >= 500;
	const char *msg = (!server_side && r->err_msg) ? r->err_msg : default_message(rc);
	buf_reset(&rep->body);
	rep->status = status;
	if (rc == MC_EUNAVAIL)   /* e.g. the database is away: clients back off and retry */
		reply_header(rep, r, "Retry-After", "1");
	if (raw) {
		buf_puts(&rep->body, msg);
		buf_putc(&rep->body, '\n');
		rep->content_type = "text/plain; charset=utf-8";
		return;
	}
	json_t *doc;
	if (fhir) {
		json_t *issue = json_object();
		json_object_set_new(issue, "severity", json_string("error"));
		json_object_set_new(issue, "code", json_string(mc_fhir_code(rc)));
		json_object_set_new(issue, "diagnostics", json_string(msg));
		if (!server_side && r->err_path)
			json_object_set_new(issue, "expression", json_pack("[s]", r->err_path));
		doc = json_object();
		json_object_set_new(doc, "resourceType", json_string("OperationOutcome"));
		json_object_set_new(doc, "issue", json_pack("[o]", issue));
		rep->content_type = "application/fhir+json";
	} else {
		json_t *err = json_object();
		json_object_set_new(err, "code", json_string(mc_wire_code(rc)));
		json_object_set_new(err, "message", json_string(msg));
		if (!server_side && r->err_details)
			json_object_set(err, "details", r->err_details);
		else if (!server_side && r->err_path)
			json_object_set_new(err, "details", json_pack("{s:s}", "path", r->err_path));
		doc = json_object();
		json_object_set_new(doc, "success", json_false());
		json_object_set_new(doc, "error", err);
		json_object_set_new(doc, "meta", meta_obj(r));
		rep->content_type = "application/json";
	}
	if (mcjson_dump(doc, &rep->body))
		buf_puts(&rep->body, "{}");
	json_decref(doc);
}

void http_error_reply(struct req *r, struct reply *rep, int rc)
{
	const struct route *rt = r->route;
	bool fhir, raw;
	if (rt) {
		fhir = rt->flags & ROUTE_FHIR;
		raw = rt->flags & ROUTE_RAW;
	} else {
		fhir = r->path && (!strcmp(r->path, "/fhir") || !strncmp(r->path, "/fhir/", 6));
		raw = false;
	}
	http_error_body(r, rep, rc, fhir, raw);
}
