/* http/health.c — the server's own public routes: liveness, readiness, Prometheus metrics and the
 * OpenAPI document, which is generated from the compiled route tables so it cannot drift. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/json.h"
#include "core/metrics.h"
#include "http/app.h"
#include "http/http_int.h"
#include "http/server.h"
#include "store/store.h"

static int h_healthz(struct req *r, struct reply *rep)
{
	(void)r;
	return reply_text(rep, 200, "text/plain; charset=utf-8", "ok");
}

static int h_readyz(struct req *r, struct reply *rep)
{
	struct store *s = r->app ? r->app->store : NULL;
	int cur = 0, latest = 0;
	if (!s || store_ping(s) != MC_OK)
		return reply_text(rep, 503, "text/plain; charset=utf-8", "database unavailable");
	if (store_schema_version(s, &cur, &latest) != MC_OK || cur != latest)
		return reply_text(rep, 503, "text/plain; charset=utf-8", "schema not current");
	return reply_text(rep, 200, "text/plain; charset=utf-8", "ready");
}

static int64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long long size = 0, res = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%lld %lld", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (int64_t)res * sysconf(_SC_PAGESIZE);
}

static void render_slots(struct buf *o, const char *method, const char *route, const struct status_slot *slots,
			 const _Atomic uint64_t *other)
{
	for (size_t i = 0; i < HTTP_STATUS_SLOTS; i++) {
		int st = atomic_load(&slots[i].status);
		if (!st)
			break;
		buf_printf(o, "medcore_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n", method,
			   route, st, (unsigned long long)atomic_load(&slots[i].count));
	}
	uint64_t n = atomic_load(other);
	if (n)
		buf_printf(o, "medcore_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\"} %llu\n",
			   method, route, (unsigned long long)n);
}

void http_metrics_render(const struct router *rt, struct buf *o)
{
	buf_puts(o, "# HELP medcore_http_requests_total HTTP requests by route and status\n"
		    "# TYPE medcore_http_requests_total counter\n");
	if (!rt)
		return;
	for (size_t i = 0; i < rt->n; i++)
		render_slots(o, rt->routes[i].r->method, rt->routes[i].r->pattern, rt->routes[i].status,
			     &rt->routes[i].status_other);
	render_slots(o, "", "(unmatched)", rt->unmatched, &rt->unmatched_other);
}

static int h_metrics(struct req *r, struct reply *rep)
{
	struct buf *o = &rep->body;
	buf_reset(o);
	metrics_render(o);
	http_metrics_render(r->app ? r->app->router : NULL, o);
	if (r->app && r->app->store) {
		struct store_stats st;
		memset(&st, 0, sizeof(st));
		store_stats(r->app->store, &st);
		buf_printf(o,
			   "# HELP medcore_store_commits_total Group commits by the writer\n"
			   "# TYPE medcore_store_commits_total counter\nmedcore_store_commits_total %llu\n"
			   "# HELP medcore_store_units_total Units of work run by the writer\n"
			   "# TYPE medcore_store_units_total counter\nmedcore_store_units_total %llu\n"
			   "# HELP medcore_store_units_failed_total Units of work rolled back\n"
			   "# TYPE medcore_store_units_failed_total counter\nmedcore_store_units_failed_total %llu\n",
			   (unsigned long long)st.commits, (unsigned long long)st.units,
			   (unsigned long long)st.units_failed);
	}
	buf_printf(o,
		   "# HELP medcore_process_resident_memory_bytes Resident set size\n"
		   "# TYPE medcore_process_resident_memory_bytes gauge\nmedcore_process_resident_memory_bytes %lld\n",
		   (long long)rss_bytes());
	if (r->app)
		buf_printf(o,
			   "# HELP medcore_process_start_time_seconds Start time since the Unix epoch\n"
			   "# TYPE medcore_process_start_time_seconds gauge\nmedcore_process_start_time_seconds %.3f\n",
			   (double)r->app->started_ms / 1e3);
	rep->status = 200;
	rep->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return MC_OK;
}

static json_t *path_params(const struct croute *c)
{
	json_t *a = json_array();
	for (size_t i = 0; i < c->nsegs; i++) {
		if (!c->pnames[i])
			continue;
		json_array_append_new(a, json_pack("{s:s,s:s,s:b,s:{s:s}}", "name", c->pnames[i], "in", "path",
						   "required", 1, "schema", "type", "string"));
	}
	return a;
}

static json_t *operation(const struct croute *c)
{
	const struct route *r = c->r;
	json_t *op = json_object();
	json_object_set_new(op, "summary", json_string(r->summary ? r->summary : r->pattern));
	char opid[512];
	size_t k = 0;
	for (const char *p = r->method; *p && k + 1 < sizeof(opid); p++)
		opid[k++] = (char)tolower((unsigned char)*p);
	for (const char *p = r->pattern; *p && k + 1 < sizeof(opid); p++)
		opid[k++] = isalnum((unsigned char)*p) ? *p : '_';
	opid[k] = '\0';
	json_object_set_new(op, "operationId", json_string(opid));
	const char *tag = (r->flags & ROUTE_FHIR) ? "fhir" : (r->flags & ROUTE_PUBLIC) ? "public" : "api";
	json_object_set_new(op, "tags", json_pack("[s]", tag));
	if (r->flags & ROUTE_PUBLIC)
		json_object_set_new(op, "security", json_array());
	else
		json_object_set_new(op, "security", json_pack("[{s:[]}]", "bearerAuth"));
	if (r->permission)
		json_object_set_new(op, "x-permission", json_string(r->permission));
	else if (r->flags & ROUTE_PERM_BY_TYPE)
		json_object_set_new(op, "x-permission", json_string("by resource type"));
	json_t *params = path_params(c);
	if (json_array_size(params))
		json_object_set_new(op, "parameters", params);
	else
		json_decref(params);
	bool fhir = r->flags & ROUTE_FHIR, raw = r->flags & ROUTE_RAW;
	const char *ctype = fhir ? "application/fhir+json" : "application/json";
	if (r->max_body && !raw)
		json_object_set_new(op, "requestBody",
				    json_pack("{s:b,s:{s:{s:{s:s}}}}", "required", 1, "content", ctype, "schema",
					      "type", "object"));
	json_t *resp = json_object();
	if (raw) {
		json_object_set_new(resp, "200", json_pack("{s:s}", "description", "OK"));
	} else if (fhir) {
		json_object_set_new(resp, "200", json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", "OK", "content",
							   ctype, "schema", "type", "object"));
		json_object_set_new(resp, "default",
				    json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", "OperationOutcome", "content",
					      ctype, "schema", "$ref", "#/components/schemas/OperationOutcome"));
	} else {
		json_object_set_new(resp, "200", json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", "OK", "content",
							   ctype, "schema", "$ref", "#/components/schemas/Envelope"));
		json_object_set_new(resp, "default",
				    json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", "Error", "content", ctype,
					      "schema", "$ref", "#/components/schemas/ErrorEnvelope"));
	}
	json_object_set_new(op, "responses", resp);
	return op;
}

static json_t *components(void)
{
	json_t *meta = json_pack("{s:s,s:{s:{s:s,s:s},s:{s:s},s:{s:s},s:{s:s}}}", "type", "object", "properties",
				 "timestamp", "type", "string", "format", "date-time", "version", "type", "string",
				 "requestId", "type", "string", "pagination", "type", "object");
	json_t *env = json_pack("{s:s,s:[s,s],s:{s:{s:s},s:{},s:O}}", "type", "object", "required", "success",
				"meta", "properties", "success", "type", "boolean", "data", "meta", meta);
	json_t *err = json_pack("{s:s,s:[s,s,s],s:{s:{s:s},s:{s:s,s:[s,s],s:{s:{s:s},s:{s:s},s:{s:s}}},s:o}}",
				"type", "object", "required", "success", "error", "meta", "properties", "success",
				"type", "boolean", "error", "type", "object", "required", "code", "message",
				"properties", "code", "type", "string", "message", "type", "string", "details",
				"type", "object", "meta", meta);
	json_t *oo = json_pack("{s:s,s:{s:{s:s},s:{s:s,s:{s:s}}}}", "type", "object", "properties", "resourceType",
			       "type", "string", "issue", "type", "array", "items", "type", "object");
	return json_pack("{s:{s:{s:s,s:s,s:s}},s:{s:o,s:o,s:o}}", "securitySchemes", "bearerAuth", "type", "http",
			 "scheme", "bearer", "bearerFormat", "JWT", "schemas", "Envelope", env, "ErrorEnvelope",
			 err, "OperationOutcome", oo);
}

json_t *http_openapi(const struct router *rt, const char *version)
{
	json_t *paths = json_object();
	for (size_t i = 0; rt && i < rt->n; i++) {
		const struct croute *c = &rt->routes[i];
		json_t *item = json_object_get(paths, c->r->pattern);
		if (!item) {
			item = json_object();
			json_object_set_new(paths, c->r->pattern, item);
		}
		char m[16];
		size_t k = 0;
		for (const char *p = c->r->method; *p && k + 1 < sizeof(m); p++)
			m[k++] = (char)tolower((unsigned char)*p);
		m[k] = '\0';
		json_object_set_new(item, m, operation(c));
	}
	return json_pack("{s:s,s:{s:s,s:s,s:s},s:o,s:o}", "openapi", "3.0.3", "info", "title", "medcore API",
			 "version", version ? version : MEDCORE_VERSION, "description",
			 "Generated from the server's route tables.", "paths", paths, "components", components());
}

static int h_openapi(struct req *r, struct reply *rep)
{
	json_t *doc = http_openapi(r->app ? r->app->router : NULL, r->app ? r->app->version : NULL);
	buf_reset(&rep->body);
	int rc = mcjson_dump(doc, &rep->body);
	json_decref(doc);
	if (rc)
		return rc;
	rep->status = 200;
	rep->content_type = "application/json";
	return MC_OK;
}

static const struct route routes[] = {
	{"GET", "/healthz", h_healthz, ROUTE_PUBLIC | ROUTE_RAW, NULL, 0, "liveness: the process runs"},
	{"GET", "/readyz", h_readyz, ROUTE_PUBLIC | ROUTE_RAW, NULL, 0,
	 "readiness: the database answers and its schema is current"},
	{"GET", "/metrics", h_metrics, ROUTE_PUBLIC | ROUTE_RAW, NULL, 0, "Prometheus metrics"},
	{"GET", "/api/v1/openapi.json", h_openapi, ROUTE_PUBLIC, NULL, 0,
	 "this OpenAPI document, generated from the route tables"},
};

const struct route_table health_routes = {routes, sizeof(routes) / sizeof(routes[0])};
