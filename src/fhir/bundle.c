/* fhir/bundle.c — batch and transaction Bundles (fhir/bundle.h) and the route table of the FHIR
 * interactions beside rest.c.
 *
 * A request is handled in three phases. parse (request thread): the Bundle shell is validated, each
 * entry's request is parsed and its resource validated, RBAC is checked per entry — nothing is
 * written, so a transaction that fails here has no effect. run: a transaction runs every entry in
 * one write unit (tx_unit), a batch one unit (or read) per entry; each entry goes through the same
 * single-resource steps as the plain REST handlers (fhir/rest_int.h) and appends its own audit
 * record. reply: the response Bundle in request order.
 */
#include "fhir/bundle.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mctime.h"
#include "fhir/conditional.h"
#include "fhir/patch.h"
#include "fhir/resource.h"
#include "fhir/rest_int.h"
#include "fhir/search.h"
#include "http/app.h"

#define URL_MAX 4096

/* ---- pure helpers (unit-tested) ---- */

int fhir_bundle_pass(const char *method, const char *type)
{
	if (!method)
		return -1;
	if (!strcmp(method, "DELETE"))
		return 0;
	if (!strcmp(method, "POST"))
		return type && !strcmp(type, "Patient") ? 1 : 2;
	if (!strcmp(method, "PUT") || !strcmp(method, "PATCH"))
		return 3;
	if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
		return 4;
	return -1;
}

void fhir_bundle_order(const char *const *methods, const char *const *types, size_t n, size_t *order)
{
	size_t k = 0;
	for (int pass = 0; pass <= 5; pass++) {
		for (size_t i = 0; i < n; i++) {
			int p = fhir_bundle_pass(methods[i], types ? types[i] : NULL);
			if (p == pass || (pass == 5 && p < 0))
				order[k++] = i;
		}
	}
}

static int rewrite(json_t *j, const struct fhir_urn_map *m, bool strict, struct buf *path, char *bad,
		   size_t badsz, size_t *count)
{
	size_t mark = path->len;
	int rc = MC_OK;
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach(j, k, v) {
			path->len = mark;
			path->data[mark] = '\0';
			buf_printf(path, ".%s", k);
			if (!strcmp(k, "reference") && json_is_string(v)) {
				const char *s = json_string_value(v);
				size_t i;
				for (i = 0; i < m->n; i++)
					if (!strcmp(s, m->from[i]))
						break;
				if (i < m->n) {
					json_object_set_new(j, k, json_string(m->to[i]));
					if (count)
						(*count)++;
				} else if (strict && (!strncmp(s, "urn:uuid:", 9) || !strncmp(s, "urn:oid:", 8))) {
					if (bad)
						snprintf(bad, badsz, "%s", buf_str(path));
					rc = MC_EINVAL;
				}
			} else {
				rc = rewrite(v, m, strict, path, bad, badsz, count);
			}
			if (rc)
				break;
		}
	} else if (json_is_array(j)) {
		for (size_t i = 0; !rc && i < json_array_size(j); i++) {
			path->len = mark;
			path->data[mark] = '\0';
			buf_printf(path, "[%zu]", i);
			rc = rewrite(json_array_get(j, i), m, strict, path, bad, badsz, count);
		}
	}
	if (path->data) {
		path->len = mark;
		path->data[mark] = '\0';
	}
	return rc;
}

int fhir_bundle_rewrite_refs(json_t *res, const struct fhir_urn_map *m, bool strict, const char *prefix,
			     char *bad_path, size_t badsz, size_t *rewritten)
{
	struct buf path = BUF_INIT;
	buf_init(&path, 64 << 10);   /* a deeper path is cut, not an error: it only names a location */
	buf_putc(&path, 'x');   /* allocate: rewrite() writes terminators at marks */
	buf_reset(&path);
	path.data[0] = '\0';
	buf_puts(&path, prefix ? prefix : "");
	if (rewritten)
		*rewritten = 0;
	int rc = rewrite(res, m, strict, &path, bad_path, badsz, rewritten);
	buf_release(&path);
	return rc;
}

/* ---- entries ---- */

struct entry {
	size_t i;
	const char *method;        /* GET POST PUT PATCH DELETE */
	const char *type, *id;     /* from request.url */
	int64_t vid;               /* GET Type/id/_history/vid */
	const char *query;         /* after '?' (NULL when none) */
	json_t *res;               /* POST/PUT: entry.resource (validated) */
	json_t *ops;               /* PATCH: the JSON Patch */
	const char *full_url;
	const char *if_none_exist;
	int64_t if_match;
	const char *if_none_match;
	bool write;
	/* parse or run failure */
	int rc;
	const char *err_msg, *err_path;
	struct fhir_issues *issues;   /* validation issues (arena), prefixed paths */
	/* results */
	int status;
	struct fhir_meta meta;
	bool has_meta, created;
	json_t *out;               /* resource for the response (borrowed or arena-deferred) */
	const char *location;
	/* audit */
	const char *action, *patient_id, *reason, *audit_id;
};

struct bctx {
	struct req *r;
	bool tx;
	size_t n;
	struct entry *e;
	size_t *order;
	struct entry *failed;      /* transaction: the entry that failed */
	bool audit_reads;
};

static void decref_cb(void *p) { json_decref(p); }

static const char *status_text(int s)
{
	switch (s) {
	case 200: return "200 OK";
	case 201: return "201 Created";
	case 204: return "204 No Content";
	case 304: return "304 Not Modified";
	case 400: return "400 Bad Request";
	case 401: return "401 Unauthorized";
	case 403: return "403 Forbidden";
	case 404: return "404 Not Found";
	case 405: return "405 Method Not Allowed";
	case 409: return "409 Conflict";
	case 410: return "410 Gone";
	case 412: return "412 Precondition Failed";
	case 413: return "413 Payload Too Large";
	case 415: return "415 Unsupported Media Type";
	case 422: return "422 Unprocessable Entity";
	default: return s >= 500 ? "500 Internal Server Error" : "400 Bad Request";
	}
}

/* Record a failure of entry e (message and path are client-safe, arena or static). */
static int efail(struct entry *e, int rc, const char *msg, const char *path)
{
	e->rc = rc;
	e->err_msg = msg;
	e->err_path = path;
	return rc;
}

static const char *epath(struct req *r, const struct entry *e, const char *rest)
{
	return arena_printf(r->arena, "Bundle.entry[%zu]%s", e->i, rest);
}

/* "Patient.name[0]" → "Bundle.entry[i].resource.name[0]" */
static void prefix_issues(struct req *r, const struct entry *e, struct fhir_issues *is, const char *type)
{
	size_t tl = strlen(type);
	for (size_t k = 0; k < is->n && k < FHIR_MAX_ISSUES; k++) {
		const char *p = is->v[k].path;
		const char *rest = !strncmp(p, type, tl) && (p[tl] == '.' || p[tl] == '\0') ? p + tl : "";
		if (!p[0])
			rest = "";
		const char *np = arena_printf(r->arena, "Bundle.entry[%zu].resource%s", e->i, rest);
		snprintf(is->v[k].path, sizeof(is->v[k].path), "%s", np);
	}
}

/* request.url → type, id, vid, query. Relative, or absolute on this server's own base. */
static int parse_url(struct req *r, struct entry *e, const char *url)
{
	const char *bad = epath(r, e, ".request.url");
	if (strlen(url) > URL_MAX)
		return efail(e, MC_EINVAL, "request.url is too long", bad);
	const char *own = arena_printf(r->arena, "%s/fhir/", r->base_url);
	if (!strncmp(url, own, strlen(own)))
		url += strlen(own);
	else if (strstr(url, "://") || !strncmp(url, "urn:", 4))
		return efail(e, MC_EINVAL, "request.url must be relative to this server (e.g. Patient/123)", bad);
	if (url[0] == '/')
		return efail(e, MC_EINVAL, "request.url must be relative (Patient/123, not /Patient/123)", bad);
	const char *q = strchr(url, '?');
	char *path = arena_strndup(r->arena, url, q ? (size_t)(q - url) : strlen(url));
	e->query = q ? arena_strdup(r->arena, q + 1) : NULL;
	char *seg[5];
	size_t ns = 0;
	for (char *p = path; ns < 5;) {
		seg[ns++] = p;
		char *s = strchr(p, '/');
		if (!s)
			break;
		*s = '\0';
		p = s + 1;
	}
	if (ns == 5 || !seg[0][0])
		return efail(e, MC_EINVAL, "request.url is not a supported FHIR URL", bad);
	for (size_t i = 0; i < ns; i++)
		if (!seg[i][0])
			return efail(e, MC_EINVAL, "request.url has an empty segment", bad);
	if (!fhir_type_is_resource(seg[0]))
		return efail(e, MC_ENOTFOUND, "Unknown resource type in request.url", bad);
	if (!strcmp(seg[0], "AuditEvent"))
		return efail(e, MC_EMETHOD, "AuditEvent is served by the audit API (/api/v1/audit), read-only", bad);
	e->type = seg[0];
	if (ns >= 2) {
		if (!mcid_valid_fhir_id(seg[1]))
			return efail(e, MC_EINVAL, "request.url has an invalid resource id", bad);
		e->id = seg[1];
	}
	if (ns == 3 || (ns == 4 && strcmp(seg[2], "_history")))
		return efail(e, MC_EINVAL, "request.url is not a supported FHIR URL", bad);
	if (ns == 4) {
		char *end;
		long long v = strtoll(seg[3], &end, 10);
		if (*end || v <= 0)
			return efail(e, MC_EINVAL, "request.url has an invalid version id", bad);
		e->vid = v;
	}
	if (e->query && (e->id || !e->query[0]))
		return efail(e, MC_EINVAL, "request.url: criteria apply to a type (Patient?identifier=x)", bad);
	return MC_OK;
}

static int validate_resource(struct req *r, struct entry *e, json_t *res)
{
	const char *rt = mcjson_str(res, "resourceType");
	if (!json_is_object(res) || !rt)
		return efail(e, MC_EINVAL, "entry.resource must be a FHIR resource", epath(r, e, ".resource"));
	if (strcmp(rt, e->type))
		return efail(e, MC_EINVAL, "entry.resource.resourceType does not match request.url",
			     epath(r, e, ".resource.resourceType"));
	struct fhir_issues *is = arena_zalloc(r->arena, sizeof(*is));
	int rc = fhir_validate(res, e->type, is);
	if (rc) {
		prefix_issues(r, e, is, e->type);
		e->issues = is->n ? is : NULL;
		return efail(e, MC_EINVAL, is->n ? is->v[0].msg : "entry.resource is invalid",
			     is->n ? is->v[0].path : epath(r, e, ".resource"));
	}
	return MC_OK;
}

/* PATCH entries carry the JSON Patch as a Binary (R4 §3.1.0.11.2: contentType
 * application/json-patch+json, data base64). */
static int patch_ops(struct req *r, struct entry *e, json_t *res)
{
	const char *bad = epath(r, e, ".resource");
	const char *rt = mcjson_str(res, "resourceType"), *ct = mcjson_str(res, "contentType");
	const char *data = mcjson_str(res, "data");
	if (!rt || strcmp(rt, "Binary") || !ct || strcmp(ct, "application/json-patch+json") || !data)
		return efail(e, MC_EINVAL,
			     "a PATCH entry needs a Binary resource with contentType application/json-patch+json and data",
			     bad);
	size_t dl = strlen(data), cap = dl / 4 * 3 + 3, n = 0;
	char *raw = arena_alloc(r->arena, cap + 1);
	if (sodium_base642bin((unsigned char *)raw, cap, data, dl, " \r\n", &n, NULL, sodium_base64_VARIANT_ORIGINAL))
		return efail(e, MC_EINVAL, "Binary.data is not valid base64", epath(r, e, ".resource.data"));
	raw[n] = '\0';
	json_t *ops;
	struct mcjson_error je;
	if (mcjson_parse(raw, n, &ops, &je))
		return efail(e, MC_EINVAL, "Binary.data is not a JSON document", epath(r, e, ".resource.data"));
	arena_defer(r->arena, decref_cb, ops);
	if (!json_is_array(ops))
		return efail(e, MC_EINVAL, "a JSON Patch document must be an array of operations",
			     epath(r, e, ".resource.data"));
	e->ops = ops;
	return MC_OK;
}

/* Parse one entry's request and resource; check RBAC. Records failures in e. */
static int parse_entry(struct req *r, struct entry *e, json_t *ej)
{
	if (!json_is_object(ej))
		return efail(e, MC_EINVAL, "entry must be an object", epath(r, e, ""));
	json_t *rq = json_object_get(ej, "request");
	if (!json_is_object(rq))
		return efail(e, MC_EINVAL, "entry.request is required", epath(r, e, ".request"));
	const char *m = mcjson_str(rq, "method"), *url = mcjson_str(rq, "url");
	static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
	e->method = NULL;
	for (size_t k = 0; m && k < sizeof(methods) / sizeof(methods[0]); k++)
		if (!strcmp(m, methods[k]))
			e->method = methods[k];
	if (!e->method)
		return efail(e, MC_EINVAL, "entry.request.method must be GET, POST, PUT, PATCH or DELETE",
			     epath(r, e, ".request.method"));
	if (!url || !url[0])
		return efail(e, MC_EINVAL, "entry.request.url is required", epath(r, e, ".request.url"));
	int rc = parse_url(r, e, url);
	if (rc)
		return rc;
	e->full_url = mcjson_str(ej, "fullUrl");
	e->write = strcmp(e->method, "GET") != 0;
	const char *im = mcjson_str(rq, "ifMatch");
	if (im) {
		e->if_match = fhir_rest_parse_etag(im);
		if (e->if_match < 0)
			return efail(e, MC_EINVAL, "ifMatch must be a version ETag such as W/\"1\"",
				     epath(r, e, ".request.ifMatch"));
	}
	e->if_none_exist = mcjson_str(rq, "ifNoneExist");
	e->if_none_match = mcjson_str(rq, "ifNoneMatch");
	bool bad_shape = false;
	const char *mm = e->method;
	if (!strcmp(mm, "POST"))
		bad_shape = e->id || e->query;
	else if (!strcmp(mm, "PUT") || !strcmp(mm, "DELETE"))
		bad_shape = !e->id && !e->query;
	else if (!strcmp(mm, "PATCH"))
		bad_shape = !e->id;
	if (bad_shape || (e->vid > 0 && strcmp(mm, "GET") != 0))
		return efail(e, MC_EINVAL, "request.url does not fit request.method", epath(r, e, ".request.url"));
	/* RBAC for the entry's type, as the dispatcher does for /fhir/{type} */
	if (!auth_has(r->who, auth_fhir_perm(e->type, e->write)))
		return efail(e, MC_EFORBIDDEN, "this action needs a permission you do not have", epath(r, e, ""));
	json_t *res = json_object_get(ej, "resource");
	if (!strcmp(mm, "POST") || !strcmp(mm, "PUT")) {
		if (!res)
			return efail(e, MC_EINVAL, "entry.resource is required for POST and PUT", epath(r, e, ".resource"));
		rc = validate_resource(r, e, res);
		if (rc)
			return rc;
		const char *bid = mcjson_str(res, "id");
		if (!strcmp(mm, "PUT") && e->id && (!bid || strcmp(bid, e->id)))
			return efail(e, MC_EINVAL, "entry.resource.id must equal the id in request.url",
				     epath(r, e, ".resource.id"));
		e->res = res;
	} else if (!strcmp(mm, "PATCH")) {
		if (!res)
			return efail(e, MC_EINVAL, "entry.resource is required for PATCH", epath(r, e, ".resource"));
		rc = patch_ops(r, e, res);
		if (rc)
			return rc;
	}
	return MC_OK;
}

/* ---- running entries ---- */

/* One audit record for entry e: appended in unit t, or queued when t is NULL. */
static int audit_entry(struct store_txn *t, struct bctx *c, struct entry *e, int outcome)
{
	struct req *r = c->r;
	if (!e->action)
		return MC_OK;
	bool read = !strcmp(e->action, "read") || !strcmp(e->action, "vread") || !strcmp(e->action, "search");
	if (read && outcome < 400 && !c->audit_reads)
		return MC_OK;
	struct audit_rec rec;
	memset(&rec, 0, sizeof(rec));
	if (r->who) {
		rec.user_id = r->who->user_id;
		rec.username = r->who->username;
		rec.role = auth_role_name(r->who->role);
	}
	rec.action = e->action;
	rec.resource_type = e->type;
	rec.resource_id = e->audit_id;
	rec.patient_id = e->patient_id;
	rec.reason = e->reason;
	rec.outcome = outcome;
	rec.request_id = r->request_id;
	rec.client_ip = r->client_ip;
	if (t)
		return audit_append(t, &rec);
	if (r->app && r->app->store && audit_append_async(r->app->store, &rec) != MC_OK)
		return MC_EINTERNAL;
	return MC_OK;
}

/* The audit action of an entry that failed before its step ran. */
static const char *action_of(const struct entry *e)
{
	if (!e->method || !strcmp(e->method, "GET"))
		return e->id ? "read" : "search";
	if (!strcmp(e->method, "POST"))
		return "create";
	if (!strcmp(e->method, "DELETE"))
		return "delete";
	return "update";
}

/* Keep what a step recorded in r->audit / r->err_* for entry e. */
static void take_audit(struct req *r, struct entry *e)
{
	e->action = r->audit.action;
	e->audit_id = r->audit.resource_id;
	e->patient_id = r->audit.patient_id;
	e->reason = r->audit.reason;
}

static int parse_stored(struct req *r, const struct fhir_stored *st, json_t **out)
{
	if (mcjson_parse(st->json, st->json_len, out, NULL))
		return MC_EINTERNAL;
	arena_defer(r->arena, decref_cb, *out);
	return MC_OK;
}

static int run_search(struct store_txn *t, struct bctx *c, struct entry *e)
{
	struct req *r = c->r;
	struct kv *q = NULL;
	size_t nq = 0;
	if (e->query && fhir_form_parse(r->arena, e->query, strlen(e->query), 100, &q, &nq))
		return efail(e, MC_EINVAL, "Invalid search criteria", epath(r, e, ".request.url"));
	struct fhir_search_opts o;
	fhir_rest_search_opts(r, e->type, &o);   /* the same rules as GET /fhir/{type} */
	struct fhir_search *s = NULL;
	const char *err = NULL;
	int rc = fhir_search_compile(r->arena, e->type, q, nq, &o, &s, &err);
	if (rc)
		return efail(e, rc, err ? err : "Invalid search", epath(r, e, ".request.url"));
	struct fhir_search_result res;
	rc = fhir_search_run(t, r->arena, s, &res);
	if (rc)
		return efail(e, rc, NULL, NULL);
	struct buf b = BUF_INIT;
	rc = fhir_search_bundle(&b, r->arena, arena_printf(r->arena, "%s/fhir", r->base_url), s, &res);
	json_t *out = NULL;
	if (!rc && mcjson_parse(b.data, b.len, &out, NULL))
		rc = MC_EINTERNAL;
	buf_release(&b);
	if (rc)
		return efail(e, rc, rc == MC_ETOOBIG ? "The result page is too large; lower _count" : NULL, NULL);
	arena_defer(r->arena, decref_cb, out);
	e->out = out;
	e->status = 200;
	r->audit.action = "search";
	return MC_OK;
}

/* One entry inside unit t (a write unit, or a read for GET entries of a batch). */
static int run_entry(struct store_txn *t, struct bctx *c, struct entry *e)
{
	struct req *r = c->r;
	memset(&r->audit, 0, sizeof(r->audit));
	r->audit.resource_type = e->type;
	r->err_msg = r->err_path = NULL;
	int rc = MC_OK;
	struct fhir_wctx w = {.r = r, .type = e->type, .id = e->id, .res = e->res, .if_match = e->if_match};
	const char *m = e->method;
	if (!strcmp(m, "GET")) {
		if (!e->id) {
			rc = run_search(t, c, e);
		} else {
			r->audit.action = e->vid ? "vread" : "read";
			r->audit.resource_id = e->id;
			struct fhir_rctx rc_ = {.r = r, .type = e->type, .id = e->id, .version = e->vid};
			rc = fhir_rest_read_step(t, &rc_);
			if (rc == MC_OK || rc == MC_EGONE) {
				e->meta = rc_.st.meta;
				e->has_meta = true;
			}
			if (rc == MC_ENOTFOUND)
				req_fail(r, rc, "Resource not found", NULL, NULL);
			else if (rc == MC_EGONE)
				req_fail(r, rc, "Resource deleted", NULL, NULL);
			if (rc == MC_OK && !e->vid && e->if_none_match &&
			    (fhir_rest_parse_etag(e->if_none_match) == rc_.st.meta.version ||
			     !strcmp(e->if_none_match, "*"))) {
				e->status = 304;
			} else if (rc == MC_OK) {
				rc = parse_stored(r, &rc_.st, &e->out);
				e->status = 200;
			}
		}
	} else if (!strcmp(m, "POST")) {
		r->audit.action = "create";
		if (!c->tx)
			json_object_del(e->res, "id"); /* the server assigns it (a transaction preset it) */
		w.if_none_exist = e->if_none_exist;
		rc = fhir_rest_create_step(t, &w);
		if (rc == MC_OK) {
			e->status = w.matched ? 200 : 201;
			e->created = !w.matched;
			if (w.matched)
				rc = parse_stored(r, &w.match, &e->out);
			else
				e->out = e->res;
		}
	} else if (!strcmp(m, "PUT")) {
		r->audit.action = "update";
		rc = e->id ? fhir_rest_update_step(t, &w) : fhir_cond_update_step(t, &w, e->query);
		if (rc == MC_OK) {
			e->status = w.created ? 201 : 200;
			e->created = w.created;
			e->out = e->res;
		}
	} else if (!strcmp(m, "PATCH")) {
		r->audit.action = "update";
		r->audit.resource_id = e->id;
		struct fhir_issues *is = arena_zalloc(r->arena, sizeof(*is));
		rc = fhir_patch_step(t, &w, e->ops, NULL, is);
		if (rc == MC_EINVAL && is->n) {
			prefix_issues(r, e, is, e->type);
			e->issues = is;
		}
		if (rc == MC_OK) {
			e->status = 200;
			e->out = w.res;
		}
	} else { /* DELETE */
		r->audit.action = "delete";
		r->audit.resource_id = e->id;
		if (e->id) {
			rc = fhir_rest_delete_step(t, &w);
			if (rc == MC_ENOTFOUND)
				req_fail(r, rc, "Resource not found", NULL, NULL);
		} else {
			rc = fhir_cond_delete_step(t, &w, e->query);
		}
		if (rc == MC_OK)
			e->status = 204;
	}
	if (rc == MC_OK && strcmp(m, "GET") && w.meta.id[0]) {
		e->meta = w.meta;
		e->has_meta = true;
	}
	if (e->has_meta && !e->meta.deleted && e->status != 304 && strcmp(m, "GET"))
		e->location = arena_printf(r->arena, "%s/%s/_history/%lld", e->type, e->meta.id,
					   (long long)e->meta.version);
	take_audit(r, e);
	if (rc) {
		if (rc == MC_ECONFLICT && !r->err_msg)
			req_fail(r, rc, "A resource with this id already exists", NULL, NULL);
		/* entry path: the step's element path is relative to the resource */
		const char *p = r->err_path;
		const char *path = p ? arena_printf(r->arena, "Bundle.entry[%zu].resource.%s", e->i,
						    !strncmp(p, e->type, strlen(e->type)) && p[strlen(e->type)] == '.'
							    ? p + strlen(e->type) + 1
							    : p)
				     : epath(r, e, "");
		if (e->issues)
			path = e->issues->v[0].path;
		efail(e, rc, r->err_msg, path);
		e->status = mc_http_status(rc);
	}
	return rc;
}

/* ---- transaction ---- */

/* POST entries with urn: fullUrls get their ids before anything is written (after conditional
 * creates are matched), then every reference to them is rewritten. */
static int tx_resolve(struct store_txn *t, struct bctx *c)
{
	struct req *r = c->r;
	const char **from = arena_zalloc(r->arena, sizeof(char *) * (c->n + 1));
	const char **to = arena_zalloc(r->arena, sizeof(char *) * (c->n + 1));
	size_t nm = 0;
	for (size_t k = 0; k < c->n; k++) {
		struct entry *e = &c->e[c->order[k]];
		if (strcmp(e->method, "POST"))
			continue;
		const char *id = NULL;
		if (e->if_none_exist) {
			memset(&r->audit, 0, sizeof(r->audit));
			r->err_msg = r->err_path = NULL;
			struct fhir_cond m;
			int rc = fhir_cond_match(t, r, e->type, e->if_none_exist, &m);
			if (rc == MC_OK && m.n > 1)
				rc = req_fail(r, MC_EPRECOND, "ifNoneExist matches more than one resource", NULL, NULL);
			if (rc) {
				efail(e, rc, r->err_msg, epath(r, e, ".request.ifNoneExist"));
				e->status = mc_http_status(rc);
				c->failed = e;
				return rc;
			}
			if (m.n == 1)
				id = arena_strdup(r->arena, m.one.meta.id);  /* the create step returns it */
			else
				e->if_none_exist = NULL;  /* no match: a plain create with the preset id */
		}
		if (!id) {
			char nid[MCID_LEN + 1];
			mcid_new(nid);
			id = arena_strdup(r->arena, nid);
			json_object_set_new(e->res, "id", json_string(id));
		}
		if (e->full_url && (!strncmp(e->full_url, "urn:uuid:", 9) || !strncmp(e->full_url, "urn:oid:", 8))) {
			for (size_t j = 0; j < nm; j++) {
				if (!strcmp(from[j], e->full_url)) {
					efail(e, MC_EINVAL, "fullUrl is used by more than one entry", epath(r, e, ".fullUrl"));
					e->status = 400;
					c->failed = e;
					return MC_EINVAL;
				}
			}
			from[nm] = e->full_url;
			to[nm++] = arena_printf(r->arena, "%s/%s", e->type, id);
		}
	}
	struct fhir_urn_map map = {nm, from, to};
	for (size_t k = 0; k < c->n; k++) {
		struct entry *e = &c->e[k];
		if (!e->res)
			continue;
		char bad[256] = "";
		const char *prefix = arena_printf(r->arena, "Bundle.entry[%zu].resource", e->i);
		if (fhir_bundle_rewrite_refs(e->res, &map, true, prefix, bad, sizeof(bad), NULL)) {
			efail(e, MC_EINVAL, "The reference names no entry of this Bundle (urn: fullUrl not found)",
			      arena_strdup(r->arena, bad));
			e->status = 400;
			c->failed = e;
			return MC_EINVAL;
		}
	}
	return MC_OK;
}

static int tx_unit(struct store_txn *t, void *arg)
{
	struct bctx *c = arg;
	bool resolved = false;
	for (size_t k = 0; k < c->n; k++) {
		struct entry *e = &c->e[c->order[k]];
		if (!resolved && fhir_bundle_pass(e->method, e->type) >= 1) {
			int rc = tx_resolve(t, c);
			if (rc)
				return rc;
			resolved = true;
		}
		int rc = run_entry(t, c, e);
		if (rc) {
			c->failed = e;
			return rc;
		}
		rc = audit_entry(t, c, e, e->status);
		if (rc)
			return rc;
	}
	if (!resolved)
		return tx_resolve(t, c);
	return MC_OK;
}

/* ---- batch ---- */

struct one {
	struct bctx *c;
	struct entry *e;
};

static int batch_unit(struct store_txn *t, void *arg)
{
	struct one *o = arg;
	int rc = run_entry(t, o->c, o->e);
	if (rc == MC_OK && o->e->write)
		rc = audit_entry(t, o->c, o->e, o->e->status);
	return rc;
}

/* ---- reply ---- */

static json_t *outcome_of(const struct entry *e)
{
	json_t *issues = json_array();
	int status = mc_http_status(e->rc);
	if (e->issues) {
		for (size_t k = 0; k < e->issues->n && k < FHIR_MAX_ISSUES; k++) {
			const struct fhir_issue *is = &e->issues->v[k];
			json_t *x = json_pack("{s:s,s:s,s:s}", "severity", "error", "code",
					      is->code[0] ? is->code : "invalid", "diagnostics", is->msg);
			if (is->path[0])
				json_object_set_new(x, "expression", json_pack("[s]", is->path));
			json_array_append_new(issues, x);
		}
	} else {
		const char *msg = status < 500 && e->err_msg ? e->err_msg : status >= 500 ? "internal error" : "failed";
		json_t *x = json_pack("{s:s,s:s,s:s}", "severity", "error", "code", mc_fhir_code(e->rc), "diagnostics", msg);
		if (status < 500 && e->err_path)
			json_object_set_new(x, "expression", json_pack("[s]", e->err_path));
		json_array_append_new(issues, x);
	}
	return json_pack("{s:s,s:o}", "resourceType", "OperationOutcome", "issue", issues);
}

/* The whole request fails with entry e's outcome. */
static int reply_entry_failure(struct req *r, struct reply *rep, const struct entry *e)
{
	json_t *oo = outcome_of(e);
	int rc = reply_fhir_json(rep, mc_http_status(e->rc), oo);
	json_decref(oo);
	if (rc)
		return rc;
	rep->content_type = FHIR_REST_CT;
	req_fail(r, e->rc, e->err_msg, e->err_path, NULL);
	return e->rc;
}

static int reply_bundle(struct bctx *c, struct reply *rep)
{
	struct req *r = c->r;
	const char *pr = fhir_rest_prefer_return(r);
	char id[MCID_LEN + 1], now[32];
	mcid_new(id);
	mctime_format_ms(mctime_now_ms(), now);
	json_t *b = json_object();
	json_object_set_new(b, "resourceType", json_string("Bundle"));
	json_object_set_new(b, "id", json_string(id));
	json_object_set_new(b, "meta", json_pack("{s:s}", "lastUpdated", now));
	json_object_set_new(b, "type", json_string(c->tx ? "transaction-response" : "batch-response"));
	json_t *arr = json_array();
	for (size_t i = 0; i < c->n; i++) {
		struct entry *e = &c->e[i];
		json_t *en = json_object();
		json_t *resp = json_object();
		json_object_set_new(resp, "status", json_string(status_text(e->status ? e->status : 500)));
		if (e->rc) {
			json_object_set_new(resp, "outcome", outcome_of(e));
		} else {
			if (e->has_meta && !e->meta.deleted && e->meta.id[0])
				json_object_set_new(en, "fullUrl", json_string(arena_printf(r->arena, "%s/fhir/%s/%s",
											   r->base_url, e->type, e->meta.id)));
			if (e->location)
				json_object_set_new(resp, "location", json_string(e->location));
			if (e->has_meta && e->meta.id[0]) {
				char etag[40], lm[32];
				snprintf(etag, sizeof(etag), "W/\"%lld\"", (long long)e->meta.version);
				mctime_format_ms(e->meta.last_updated_ms, lm);
				json_object_set_new(resp, "etag", json_string(etag));
				json_object_set_new(resp, "lastModified", json_string(lm));
			}
			bool is_write = strcmp(e->method, "GET") != 0;
			if (e->out && (!is_write || !strcmp(pr, "representation")))
				json_object_set(en, "resource", e->out);
			else if (e->out && is_write && !strcmp(pr, "OperationOutcome"))
				json_object_set_new(resp, "outcome",
						    json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "resourceType", "OperationOutcome",
							      "issue", "severity", "information", "code", "informational",
							      "diagnostics", e->created ? "created" : "updated"));
		}
		json_object_set_new(en, "response", resp);
		json_array_append_new(arr, en);
	}
	json_object_set_new(b, "entry", arr);
	int rc = reply_fhir_json(rep, 200, b);
	json_decref(b);
	if (rc == MC_OK)
		rep->content_type = FHIR_REST_CT;
	return rc;
}

/* ---- the handler ---- */

/* Validate the Bundle without its entries' resources (each is validated as its own type). */
static int validate_shell(struct req *r, struct reply *rep, json_t *bundle)
{
	json_t *shell = json_copy(bundle);
	json_t *entries = json_object_get(bundle, "entry");
	if (json_is_array(entries)) {
		json_t *ne = json_array();
		for (size_t i = 0; i < json_array_size(entries); i++) {
			json_t *e = json_array_get(entries, i);
			json_t *c = json_is_object(e) ? json_copy(e) : json_incref(e);
			if (json_is_object(c))
				json_object_del(c, "resource");
			json_array_append_new(ne, c);
		}
		json_object_set_new(shell, "entry", ne);
	}
	struct fhir_issues is;
	memset(&is, 0, sizeof(is));
	int rc = fhir_validate(shell, "Bundle", &is);
	json_decref(shell);
	if (rc == MC_EINVAL && is.n)
		return fhir_rest_reply_issues(r, rep, &is);
	if (rc)
		return req_fail(r, MC_EINVAL, "The Bundle is invalid", NULL, NULL);
	return MC_OK;
}

static int h_bundle(struct req *r, struct reply *rep)
{
	r->audit.resource_type = "Bundle";
	json_t *bundle;
	int rc = req_json(r, &bundle);
	if (rc)
		return rc;
	const char *rt = mcjson_str(bundle, "resourceType");
	if (!json_is_object(bundle) || !rt || strcmp(rt, "Bundle"))
		return req_fail(r, MC_EINVAL, "POST /fhir takes a Bundle", "Bundle.resourceType", NULL);
	const char *bt = mcjson_str(bundle, "type");
	if (!bt || (strcmp(bt, "transaction") && strcmp(bt, "batch")))
		return req_fail(r, MC_EINVAL, "Bundle.type must be transaction or batch", "Bundle.type", NULL);
	bool tx = !strcmp(bt, "transaction");
	r->audit.action = tx ? "transaction" : "batch";
	json_t *entries = json_object_get(bundle, "entry");
	size_t n = json_array_size(entries);
	if (entries && !json_is_array(entries))
		return req_fail(r, MC_EINVAL, "Bundle.entry must be an array", "Bundle.entry", NULL);
	if (n > FHIR_BUNDLE_MAX_ENTRIES)
		return req_fail(r, MC_ETOOBIG, "A Bundle may have at most 1000 entries", "Bundle.entry", NULL);
	rc = validate_shell(r, rep, bundle);
	if (rc)
		return rc;

	struct bctx c = {.r = r, .tx = tx, .n = n};
	c.audit_reads = !r->app || !r->app->cfg || r->app->cfg->audit_reads;
	c.e = arena_zalloc(r->arena, sizeof(*c.e) * (n ? n : 1));
	c.order = arena_zalloc(r->arena, sizeof(*c.order) * (n ? n : 1));
	const char **methods = arena_zalloc(r->arena, sizeof(char *) * (n ? n : 1));
	const char **types = arena_zalloc(r->arena, sizeof(char *) * (n ? n : 1));
	for (size_t i = 0; i < n; i++) {
		struct entry *e = &c.e[i];
		e->i = i;
		if (parse_entry(r, e, json_array_get(entries, i))) {
			e->status = mc_http_status(e->rc);
			if (tx) {
				if (e->issues) {
					req_fail(r, MC_EINVAL, e->err_msg, e->err_path, NULL);
					return fhir_rest_reply_issues(r, rep, e->issues);
				}
				return req_fail(r, e->rc, e->err_msg, e->err_path, NULL);
			}
		}
		methods[i] = e->method;
		types[i] = e->type;
	}
	/* the entries audit themselves; the dispatcher audits only a failure of the whole request */
	r->audit.action = NULL;
	if (tx) {
		fhir_bundle_order(methods, types, n, c.order);
		rc = req_write(r, tx_unit, &c);
		if (rc) {
			r->audit.action = "transaction";
			r->audit.resource_type = c.failed ? c.failed->type : "Bundle";
			if (c.failed && c.failed->rc)
				return reply_entry_failure(r, rep, c.failed);
			return rc;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			struct entry *e = &c.e[i];
			if (e->rc) {
				e->action = action_of(e);
				audit_entry(NULL, &c, e, e->status);
				continue;
			}
			struct one o = {&c, e};
			if (e->write)
				rc = req_write(r, batch_unit, &o);
			else
				rc = r->app && r->app->store ? store_read(r->app->store, batch_unit, &o) : MC_EUNAVAIL;
			if (rc && !e->rc) {
				efail(e, rc, NULL, NULL);
				e->status = mc_http_status(rc);
			}
			if (rc || !e->write)
				audit_entry(NULL, &c, e, e->status); /* failures and reads: queued, best effort */
		}
	}
	memset(&r->audit, 0, sizeof(r->audit));
	r->audit.done = true;
	r->err_msg = r->err_path = NULL;
	return reply_bundle(&c, rep);
}

/* ---- the table ---- */

static const struct route routes[] = {
	{"POST", "/fhir", h_bundle, ROUTE_FHIR | ROUTE_PHI | ROUTE_WRITE, "self", FHIR_BUNDLE_MAX_BODY,
	 "batch or transaction Bundle (access checked per entry)"},
	{"PATCH", "/fhir/{type}/{id}", fhir_h_patch, ROUTE_FHIR | ROUTE_PHI | ROUTE_PERM_BY_TYPE | ROUTE_WRITE, NULL,
	 (size_t)1 << 20, "JSON Patch (application/json-patch+json)"},
	{"PUT", "/fhir/{type}", fhir_h_cond_update, ROUTE_FHIR | ROUTE_PHI | ROUTE_PERM_BY_TYPE | ROUTE_WRITE, NULL,
	 (size_t)8 << 20, "conditional update (criteria in the query)"},
	{"DELETE", "/fhir/{type}", fhir_h_cond_delete, ROUTE_FHIR | ROUTE_PHI | ROUTE_PERM_BY_TYPE | ROUTE_WRITE, NULL,
	 0, "conditional delete (criteria in the query)"},
};

const struct route_table fhir_bundle_routes = {routes, sizeof(routes) / sizeof(routes[0])};
