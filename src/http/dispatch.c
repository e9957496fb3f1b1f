/* http/dispatch.c — the one dispatcher (STYLE §1).
 *
 * Every request goes: decode target -> match -> limits (body size, decided before the body is
 * read, see server.c) -> content type -> authenticate -> permission (default deny) -> handler ->
 * audit -> reply headers -> log line + metrics. A handler only holds the domain step.
 * Independent of libmicrohttpd: server.c feeds it, unit tests call it directly.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/metrics.h"
#include "http/app.h"
#include "http/http_int.h"

static bool request_id_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > HTTP_REQUEST_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
			  c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

/* "Application/JSON; charset=utf-8" -> "application/json" (arena). NULL when absent or empty. */
static const char *media_type(struct arena *a, const char *ct)
{
	if (!ct)
		return NULL;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strcspn(ct, ";");
	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	if (!n || n > 255)
		return n ? "" : NULL;
	char *m = arena_strndup(a, ct, n);
	for (char *p = m; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return m;
}

/* Host header as the client addressed us, when it looks like a host[:port]; else NULL. */
static const char *safe_host(const char *h)
{
	if (!h || !*h || strlen(h) > 255)
		return NULL;
	for (const char *p = h; *p; p++) {
		char c = *p;
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
			  c == '-' || c == ':' || c == '[' || c == ']';
		if (!ok)
			return NULL;
	}
	return h;
}

/* A request id: 12 bytes as base64url (16 chars), the same form as before. Ids need to be unique,
 * not secret: each thread draws a random key once, then numbers its requests through splitmix64
 * (a bijection), so a thread never repeats an id and two threads collide with negligible
 * probability — without a getrandom call per request. */
static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void new_request_id(char *out, size_t outsz)
{
	static _Thread_local uint64_t key[2], n;
	static _Thread_local bool seeded;
	if (!seeded) {
		randombytes_buf(key, sizeof(key));
		seeded = true;
	}
	n++;
	uint64_t hi = splitmix64(key[0] ^ n), lo = splitmix64(key[1] + n);
	unsigned char b[12];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(hi >> (8 * i));
	for (int i = 0; i < 4; i++)
		b[8 + i] = (unsigned char)(lo >> (8 * i));
	sodium_bin2base64(out, outsz, b, sizeof(b), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* a then b, NUL-terminated, in the arena. */
static char *arena_concat(struct arena *ar, const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *s = arena_alloc(ar, na + nb + 1);
	memcpy(s, a, na);
	memcpy(s + na, b, nb + 1);
	return s;
}

void http_call_begin(const struct http_service *svc, struct http_call *call, struct arena *a,
		     const char *method, const char *raw_target, struct http_exchange *ex,
		     const char *client_ip)
{
	struct req *r = &call->req;
	memset(call, 0, sizeof(*call));
	call->start_us = mctime_mono_us();
	buf_init(&call->rep.body, 0);
	r->arena = a;
	r->app = svc->app;
	r->method = arena_strdup(a, method);
	r->conn = ex;
	r->client_ip = client_ip ? arena_strdup(a, client_ip) : NULL;

	const char *rid = req_header(r, "X-Request-Id");
	if (rid && request_id_valid(rid)) {
		r->request_id = arena_strdup(a, rid);
	} else {
		char tok[32];
		new_request_id(tok, sizeof(tok));
		r->request_id = arena_strdup(a, tok);
	}
	/* log_set_request_id happens in http_call_run: between the access-handler calls this thread
	 * serves other connections. */

	const char *host = safe_host(req_header(r, "Host"));
	const char *listen = svc->app && svc->app->cfg ? svc->app->cfg->listen : "localhost";
	r->base_url = arena_concat(a, "http://", host ? host : listen);
	r->content_type = media_type(a, req_header(r, "Content-Type"));

	const char *q = strchr(raw_target, '?');
	size_t plen = q ? (size_t)(q - raw_target) : strlen(raw_target);
	r->path = arena_strndup(a, raw_target, plen);   /* replaced by the decoded path below */
	const struct mc_config *cfg = svc->app ? svc->app->cfg : NULL;
	size_t cfg_max = cfg ? (size_t)cfg->max_body : (size_t)1 << 20;

	char *segs[HTTP_MAX_SEGMENTS];
	size_t nsegs;
	char *path;
	int rc = http_path_decode(a, raw_target, plen, segs, &nsegs, &path);
	if (rc) {
		call->early_rc = rc;
		if (rc == MC_EINVAL)
			req_fail(r, rc, "invalid request path", NULL, NULL);
		goto early;
	}
	r->path = path;
	if (q && http_query_parse(a, q + 1, &r->query, &r->nquery)) {
		call->early_rc = req_fail(r, MC_EINVAL, "invalid query string", NULL, NULL);
		goto early;
	}
	call->mres = router_match(svc->router, r->method, segs, nsegs, &call->match);
	if (call->mres == MATCH_NO_PATH) {
		call->early_rc = MC_ENOTFOUND;
		goto early;
	}
	if (call->mres == MATCH_NO_METHOD) {
		if (strcmp(r->method, "OPTIONS"))
			call->early_rc = MC_EMETHOD;
		goto early;
	}
	r->route = call->match.cr->r;
	r->nparams = call->match.nparams;
	memcpy(r->params, call->match.params, sizeof(r->params[0]) * r->nparams);
	call->body_limit = r->route->max_body < cfg_max ? r->route->max_body : cfg_max;
	return;
early:
	call->discard_body = true;
	call->body_limit = cfg_max;
}

bool http_cors_allowed(const char *cfg, const char *origin)
{
	if (!cfg || !*cfg || !origin || !*origin)
		return false;
	if (!strcmp(cfg, "*"))
		return true;
	size_t ol = strlen(origin);
	for (const char *p = cfg; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ",");
		size_t m = n;
		while (m && p[m - 1] == ' ')
			m--;
		if (m && m == ol && !strncasecmp(p, origin, ol))
			return true;
		p += n;
	}
	return false;
}

static bool is_read_method(const char *m) { return !strcmp(m, "GET") || !strcmp(m, "HEAD"); }

/* A request that changes data: the route says so (ROUTE_WRITE), or its method can only mean it.
 * POST without ROUTE_WRITE is a read (FHIR POST _search). */
static bool is_write(const struct req *r)
{
	if (r->route && (r->route->flags & ROUTE_WRITE))
		return true;
	return !is_read_method(r->method) && strcmp(r->method, "POST") != 0;
}

static const char *action_for(const struct req *r)
{
	if (!is_write(r))
		return strcmp(r->method, "POST") ? "read" : "search";
	if (!strcmp(r->method, "POST"))
		return "create";
	if (!strcmp(r->method, "DELETE"))
		return "delete";
	return "update";
}

void http_audit_rec(const struct req *r, int outcome, struct audit_rec *rec)
{
	memset(rec, 0, sizeof(*rec));
	if (r->who) {
		rec->user_id = r->who->user_id;
		rec->username = r->who->username;
		rec->role = auth_role_name(r->who->role);
	}
	rec->action = r->audit.action;
	rec->resource_type = r->audit.resource_type ? r->audit.resource_type : req_param(r, "type");
	rec->resource_id = r->audit.resource_id ? r->audit.resource_id : req_param(r, "id");
	rec->patient_id = r->audit.patient_id;
	rec->reason = r->audit.reason;
	rec->outcome = outcome;
	rec->request_id = r->request_id;
	rec->client_ip = r->client_ip;
}

/* Authenticate from "Authorization: Bearer <token>". MC_OK sets r->who. */
static int authenticate(const struct http_service *svc, struct req *r, struct reply *rep)
{
	const char *h = req_header(r, "Authorization");
	const char *qt = r->route && (r->route->flags & ROUTE_QUERY_TOKEN) ? req_query(r, "access_token") : NULL;
	if (!h && qt) {
		h = arena_printf(r->arena, "Bearer %s", qt);   /* see ROUTE_QUERY_TOKEN */
	}
	if (!h || strncasecmp(h, "Bearer ", 7)) {
		reply_header(rep, r, "WWW-Authenticate", "Bearer realm=\"medcore\"");
		return req_fail(r, MC_EUNAUTH, "a bearer token is required", NULL, NULL);
	}
	const char *tok = h + 7;
	while (*tok == ' ')
		tok++;
	struct auth_principal *p = arena_zalloc(r->arena, sizeof(*p));
	int vrc = MC_EUNAUTH;
	if (*tok && strlen(tok) < AUTH_TOKEN_MAX && svc->ops.token_verify && svc->app)
		vrc = svc->ops.token_verify(svc->app->auth, tok, p);
	if (vrc == MC_EUNAVAIL)   /* the database could not check the user: retry later, not re-login */
		return MC_EUNAVAIL;
	if (vrc != MC_OK) {
		reply_header(rep, r, "WWW-Authenticate", "Bearer realm=\"medcore\", error=\"invalid_token\"");
		return req_fail(r, MC_EUNAUTH, "the token is invalid or expired", NULL, NULL);
	}
	r->who = p;
	return MC_OK;
}

static int authorize(const struct croute *cr, struct req *r)
{
	if (cr->perm >= 0 && !auth_has(r->who, (enum auth_perm)cr->perm))
		return req_fail(r, MC_EFORBIDDEN, "this action needs a permission you do not have", NULL, NULL);
	if (cr->r->flags & ROUTE_PERM_BY_TYPE) {
		const char *type = req_param(r, "type");
		enum auth_perm p = auth_fhir_perm(type ? type : "", is_write(r));
		if (!auth_has(r->who, p))
			return req_fail(r, MC_EFORBIDDEN, "this action needs a permission you do not have", NULL, NULL);
		/* OAuth2 scopes (client tokens) narrow the role, never widen it */
		if (!auth_scope_allows(r->who, type, is_write(r)))
			return req_fail(r, MC_EFORBIDDEN, "the token's scope does not allow this", NULL, NULL);
	} else if ((cr->r->flags & ROUTE_PHI) && !auth_scope_allows(r->who, NULL, is_write(r))) {
		/* patient data across types (system history, exports, /api/v1 views): only a "*" scope */
		return req_fail(r, MC_EFORBIDDEN, "the token's scope does not allow this", NULL, NULL);
	}
	return MC_OK;
}

static bool json_media(const char *ct)
{
	/* application/json-patch+json: RFC 6902 bodies of FHIR PATCH (fhir/patch.h checks its own) */
	return ct && (!strcmp(ct, "application/json") || !strcmp(ct, "application/fhir+json") ||
		      !strcmp(ct, "application/json-patch+json"));
}

/* match -> content type -> authn -> permission -> handler. Returns the handler's (or the
 * failing check's) MC_* code. */
static int dispatch(const struct http_service *svc, struct http_call *call)
{
	struct req *r = &call->req;
	struct reply *rep = &call->rep;
	const struct croute *cr = call->match.cr;
	unsigned flags = cr->r->flags;
	/* Writes take JSON; other routes with a body (POST _search: a form) check their own type. */
	if (r->body_len && (flags & ROUTE_WRITE) && !(flags & (ROUTE_RAW | ROUTE_BODY_ANY)) &&
	    !json_media(r->content_type))
		return MC_EMEDIA;
	if (!(flags & ROUTE_PUBLIC)) {
		int rc = authenticate(svc, r, rep);
		if (!rc)
			rc = authorize(cr, r);
		if (rc)
			return rc;
	}
	return cr->r->fn(r, rep);
}

static void audit_after(const struct http_service *svc, struct req *r, int status)
{
	if (!r->route || !(r->route->flags & ROUTE_PHI) || r->audit.done)
		return;
	if (!r->audit.action && (status == 401 || status == 403))
		r->audit.action = action_for(r);
	if (!r->audit.action)
		return;
	bool ok = status < 400;
	const struct mc_config *cfg = svc->app ? svc->app->cfg : NULL;
	if (ok && !is_write(r) && cfg && !cfg->audit_reads)
		return;
	if (!svc->ops.audit_async || !svc->app || !svc->app->store)
		return;
	struct audit_rec rec;
	http_audit_rec(r, status, &rec);
	if (svc->ops.audit_async(svc->app->store, &rec) != MC_OK)
		LOGE("audit: record could not be queued", "\"action\":\"%s\",\"outcome\":%d", rec.action, status);
}

static void preflight(const struct http_service *svc, struct http_call *call)
{
	struct req *r = &call->req;
	struct reply *rep = &call->rep;
	rep->status = 204;
	rep->content_type = NULL;
	reply_header(rep, r, "Allow", call->match.allow);
	const char *cors = svc->app && svc->app->cfg ? svc->app->cfg->cors_origins : "";
	if (http_cors_allowed(cors, req_header(r, "Origin"))) {
		reply_header(rep, r, "Access-Control-Allow-Methods", call->match.allow);
		reply_header(rep, r, "Access-Control-Allow-Headers",
			     "Authorization, Content-Type, X-Request-Id, If-Match, If-None-Match, If-None-Exist, Prefer");
		reply_header(rep, r, "Access-Control-Max-Age", "600");
	}
}

static void standard_headers(const struct http_service *svc, struct http_call *call)
{
	struct req *r = &call->req;
	struct reply *rep = &call->rep;
	reply_header(rep, r, "X-Request-Id", r->request_id);
	reply_header(rep, r, "X-Content-Type-Options", "nosniff");
	bool has_cc = false;
	for (size_t i = 0; i < rep->nheaders; i++)
		has_cc = has_cc || !strcasecmp(rep->headers[i].key, "Cache-Control");
	if (!has_cc)
		reply_header(rep, r, "Cache-Control", "no-store");
	if (rep->content_type && strstr(rep->content_type, "json"))
		reply_header(rep, r, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
	const char *cors = svc->app && svc->app->cfg ? svc->app->cfg->cors_origins : "";
	if (cors && *cors) {
		reply_header(rep, r, "Vary", "Origin");
		const char *origin = req_header(r, "Origin");
		if (http_cors_allowed(cors, origin)) {
			reply_header(rep, r, "Access-Control-Allow-Origin", origin);
			reply_header(rep, r, "Access-Control-Expose-Headers",
				     "X-Request-Id, ETag, Location, Last-Modified, Content-Location");
		}
	}
}

void http_count_status(struct status_slot *slots, _Atomic uint64_t *other, int status)
{
	for (size_t i = 0; i < HTTP_STATUS_SLOTS; i++) {
		int s = atomic_load_explicit(&slots[i].status, memory_order_acquire);
		if (s == 0) {
			int expect = 0;
			if (atomic_compare_exchange_strong(&slots[i].status, &expect, status))
				s = status;
			else
				s = expect;
		}
		if (s == status) {
			atomic_fetch_add_explicit(&slots[i].count, 1, memory_order_relaxed);
			return;
		}
	}
	atomic_fetch_add_explicit(other, 1, memory_order_relaxed);
}

static void account(const struct http_service *svc, struct http_call *call)
{
	struct req *r = &call->req;
	int status = call->rep.status;
	double secs = (double)(mctime_mono_us() - call->start_us) / 1e6;
	/* const_cast: the counters are atomics inside the otherwise read-only router */
	struct router *rt = (struct router *)svc->router;
	struct croute *cr = (struct croute *)call->match.cr;
	if (cr && call->mres == MATCH_OK && !call->early_rc) {
		http_count_status(cr->status, &cr->status_other, status);
		if (cr->duration)
			metrics_observe(cr->duration, secs);
	} else if (rt) {
		http_count_status(rt->unmatched, &rt->unmatched_other, status);
	}
	if (log_min_level <= LOG_INFO) {
		struct buf m = BUF_INIT, p = BUF_INIT;
		buf_init(&m, 256);
		buf_init(&p, 1024);
		buf_json_str(&m, r->method ? r->method : "");
		buf_json_str(&p, r->route ? r->route->pattern : "(unmatched)");
		LOGI("request", "\"method\":%s,\"route\":%s,\"status\":%d,\"ms\":%.3f", buf_str(&m), buf_str(&p),
		     status, secs * 1e3);
		buf_release(&m);
		buf_release(&p);
	}
}

void http_call_run(const struct http_service *svc, struct http_call *call)
{
	struct req *r = &call->req;
	struct reply *rep = &call->rep;
	log_set_request_id(r->request_id);
	int rc;
	if (call->early_rc) {
		rc = call->early_rc;
		if (rc == MC_EMETHOD)
			reply_header(rep, r, "Allow", call->match.allow);
		http_error_reply(r, rep, rc);
	} else if (call->mres == MATCH_NO_METHOD) {
		preflight(svc, call);   /* OPTIONS on a known path without an OPTIONS route */
	} else {
		rc = dispatch(svc, call);
		if (rc != MC_OK && rep->status == 0) {
			if (mc_http_status(rc) >= 500)
				LOGE("request failed", "\"code\":\"%s\"", mc_code_name(rc));
			http_error_reply(r, rep, rc);
		} else if (rc == MC_OK && rep->status == 0) {
			LOGE("handler returned without a reply", "\"route\":\"%s\"", r->route->pattern);
			http_error_reply(r, rep, MC_EINTERNAL);
		}
		audit_after(svc, r, rep->status);
	}
	standard_headers(svc, call);
	account(svc, call);
	log_set_request_id(NULL);
}
