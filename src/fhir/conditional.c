/* fhir/conditional.c — conditional create/update/delete matching and HTTP-date parsing
 * (fhir/conditional.h). The steps reuse rest.c's single-resource steps (fhir/rest_int.h) once the
 * target is known, so access checks and audit fields are exactly those of the plain interactions. */
#include "fhir/conditional.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mctime.h"
#include "fhir/resource.h"
#include "fhir/rest_int.h"
#include "fhir/search.h"
#include "http/app.h"

/* Result-shaping parameters make no sense as match criteria (and _count would hide matches). */
static bool result_param(const char *k)
{
	static const char *const no[] = {"_count",   "_offset",  "_sort",     "_total",      "_summary",
					 "_include", "_revinclude", "_elements", "_contained", "_containedType"};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (!strcmp(k, no[i]))
			return true;
	return false;
}

int fhir_cond_match(struct store_txn *t, struct req *r, const char *type, const char *query,
		    struct fhir_cond *out)
{
	memset(out, 0, sizeof(*out));
	if (!query || !*query)
		return req_fail(r, MC_EINVAL, "A conditional interaction needs search criteria", NULL, NULL);
	struct kv *q = NULL;
	size_t nq = 0;
	int rc = fhir_form_parse(r->arena, query, strlen(query), FHIR_COND_MAX_PARAMS, &q, &nq);
	if (rc)
		return req_fail(r, MC_EINVAL, "Invalid conditional search criteria", NULL, NULL);
	size_t ncrit = 0;
	for (size_t i = 0; i < nq; i++) {
		if (result_param(q[i].key))
			return req_fail(r, MC_EINVAL, "Conditional criteria cannot use result parameters (_count, _sort...)",
					NULL, NULL);
		/* search ignores an empty value; a criterion that silently matches everything is dangerous
		 * for conditional update and delete */
		if (!q[i].value || !*q[i].value)
			return req_fail(r, MC_EINVAL, "Conditional criteria must not have empty values", NULL, NULL);
		if (strcmp(q[i].key, "_format") && strcmp(q[i].key, "_pretty"))
			ncrit++;
	}
	if (!ncrit)
		return req_fail(r, MC_EINVAL, "A conditional interaction needs search criteria", NULL, NULL);
	struct kv *all = arena_zalloc(r->arena, sizeof(*all) * (nq + 2));
	memcpy(all, q, sizeof(*all) * nq);
	all[nq] = (struct kv){"_count", "2"};
	all[nq + 1] = (struct kv){"_total", "none"};
	struct fhir_search_opts o = {
		.access = {.scope = auth_patient_scope(r->who, fhir_rest_access_level(type, false)),
			   .patient_id = r->who ? r->who->patient_id : NULL,
			   .user_id = r->who ? r->who->user_id : 0},
		.page_max = 2,
		.strict = true,   /* an ignored criterion would widen the match */
	};
	struct fhir_search *s = NULL;
	const char *err = NULL;
	rc = fhir_search_compile(r->arena, type, all, nq + 2, &o, &s, &err);
	if (rc)
		return req_fail(r, rc, err ? err : "Invalid conditional search criteria", NULL, NULL);
	struct fhir_search_result res;
	rc = fhir_search_run(t, r->arena, s, &res);
	if (rc)
		return rc;
	if (res.n == 0)
		out->n = 0;
	else if (res.n == 1 && !res.more)
		out->n = 1;
	else
		out->n = 2;
	if (out->n == 1)
		out->one = res.v[0];
	return MC_OK;
}

int fhir_cond_update_step(struct store_txn *t, struct fhir_wctx *w, const char *query)
{
	struct req *r = w->r;
	struct fhir_cond c;
	int rc = fhir_cond_match(t, r, w->type, query, &c);
	if (rc)
		return rc;
	if (c.n > 1)
		return req_fail(r, MC_EPRECOND, "The criteria match more than one resource", NULL, NULL);
	const char *bid = mcjson_str(w->res, "id");
	if (c.n == 1) {
		if (bid && strcmp(bid, c.one.meta.id) != 0)
			return req_fail(r, MC_EINVAL, "The id in the body does not match the resource the criteria select",
					arena_printf(r->arena, "%s.id", w->type), NULL);
		w->id = arena_strdup(r->arena, c.one.meta.id);
		return fhir_rest_update_step(t, w);
	}
	if (bid) {
		/* FHIR: no match and an id in the body — update-as-create with that id, unless it is taken
		 * by a resource the criteria did not select */
		struct fhir_stored cur;
		rc = fhir_store_read(t, r->arena, w->type, bid, 0, &cur);
		if (rc == MC_OK || rc == MC_EGONE)
			return req_fail(r, MC_EPRECOND, "The id in the body names a resource the criteria do not match",
					NULL, NULL);
		if (rc != MC_ENOTFOUND)
			return rc;
		w->id = bid;
		return fhir_rest_update_step(t, w);
	}
	rc = fhir_rest_create_step(t, w);
	if (rc == MC_OK)
		w->created = true;
	return rc;
}

int fhir_cond_delete_step(struct store_txn *t, struct fhir_wctx *w, const char *query)
{
	struct req *r = w->r;
	struct fhir_cond c;
	int rc = fhir_cond_match(t, r, w->type, query, &c);
	if (rc)
		return rc;
	if (c.n > 1)
		return req_fail(r, MC_EPRECOND, "The criteria match more than one resource", NULL, NULL);
	if (c.n == 0) {
		memset(&w->meta, 0, sizeof(w->meta));
		return MC_OK;
	}
	w->id = arena_strdup(r->arena, c.one.meta.id);
	return fhir_rest_delete_step(t, w);
}

/* ---- HTTP-date ---- */

static int month_of(const char *m)
{
	static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	for (int i = 0; i < 12; i++)
		if (!strncmp(m, mo[i], 3) && m[3] == '\0')
			return i + 1;
	return 0;
}

int fhir_http_date_parse(const char *s, int64_t *ms)
{
	if (!s || strlen(s) > 64)
		return MC_EINVAL;
	char wd[16], mon[8], tz[8];
	int d, y, hh, mm, ss, n = 0;
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	if (sscanf(s, "%15[A-Za-z], %2d %3s %4d %2d:%2d:%2d %3s%n", wd, &d, mon, &y, &hh, &mm, &ss, tz, &n) == 8 &&
	    !s[n]) {
		/* fall through to the checks */
	} else if (sscanf(s, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d %3s%n", wd, &d, mon, &y, &hh, &mm, &ss, tz, &n) ==
			   8 &&
		   !s[n]) {
		y += y < 70 ? 2000 : 1900;   /* RFC 850: two-digit year */
	} else if (sscanf(s, "%15[A-Za-z] %3s %2d %2d:%2d:%2d %4d%n", wd, mon, &d, &hh, &mm, &ss, &y, &n) == 7 && !s[n]) {
		snprintf(tz, sizeof(tz), "GMT");   /* asctime */
	} else {
		return MC_EINVAL;
	}
	int m = month_of(mon);
	if (!m || strcmp(tz, "GMT") || d < 1 || d > 31 || y < 1970 || y > 9999 || hh > 23 || mm > 59 || ss > 60 ||
	    hh < 0 || mm < 0 || ss < 0)
		return MC_EINVAL;
	int64_t days = mctime_days_from_civil(y, (unsigned)m, (unsigned)d);
	*ms = ((days * 24 + hh) * 60 + mm) * 60000 + (int64_t)ss * 1000;
	return MC_OK;
}

/* ---- PUT /fhir/{type}?q, DELETE /fhir/{type}?q ---- */

struct cctx {
	struct fhir_wctx w;
	const char *query;
};

static int cond_update_unit(struct store_txn *t, void *arg)
{
	struct cctx *c = arg;
	return fhir_cond_update_step(t, &c->w, c->query);
}

static int cond_delete_unit(struct store_txn *t, void *arg)
{
	struct cctx *c = arg;
	return fhir_cond_delete_step(t, &c->w, c->query);
}

/* The query string as received, re-encoded from the decoded pairs (the dispatcher decoded it). */
static const char *query_of(struct req *r)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < r->nquery; i++) {
		if (i)
			buf_putc(&b, '&');
		fhir_url_encode(&b, r->query[i].key);
		buf_putc(&b, '=');
		fhir_url_encode(&b, r->query[i].value ? r->query[i].value : "");
	}
	const char *q = arena_strdup(r->arena, buf_str(&b));
	buf_release(&b);
	return q;
}

/* {type} as the single-resource routes check it (404 unknown, 405 AuditEvent). */
static int cond_type(struct req *r, const char **type)
{
	return fhir_rest_check_type(r, type);
}

int fhir_h_cond_update(struct req *r, struct reply *rep)
{
	const char *type = NULL;
	int rc = cond_type(r, &type);
	if (rc)
		return rc;
	r->audit.action = "update";
	int64_t im = fhir_rest_parse_etag(req_header(r, "If-Match"));
	if (im < 0)
		return req_fail(r, MC_EINVAL, "If-Match must be a version ETag such as W/\"1\"", NULL, NULL);
	json_t *res;
	rc = req_json(r, &res);
	if (rc)
		return rc;
	if (!json_is_object(res))
		return req_fail(r, MC_EINVAL, "The body must be a JSON object (a FHIR resource)", NULL, NULL);
	const char *rt = mcjson_str(res, "resourceType");
	if (!rt || strcmp(rt, type) != 0)
		return req_fail(r, MC_EINVAL, "resourceType does not match the URL", "resourceType", NULL);
	struct fhir_issues is;
	memset(&is, 0, sizeof(is));
	rc = fhir_validate(res, type, &is);
	if (rc == MC_EINVAL && is.n)
		return fhir_rest_reply_issues(r, rep, &is);
	if (rc)
		return req_fail(r, MC_EINVAL, "The resource is invalid", NULL, NULL);
	struct cctx c = {.w = {.r = r, .type = type, .res = res, .if_match = im}, .query = query_of(r)};
	rc = req_write(r, cond_update_unit, &c);
	if (rc)
		return rc;
	if (c.w.created) {
		char *loc = arena_printf(r->arena, "%s/fhir/%s/%s/_history/%lld", r->base_url, type, c.w.meta.id,
					 (long long)c.w.meta.version);
		reply_header(rep, r, "Location", loc);
	}
	fhir_rest_version_headers(rep, r, &c.w.meta);
	int wrc = fhir_rest_reply_written(r, rep, c.w.created ? 201 : 200, res);
	if (wrc == MC_OK && rep->content_type)
		rep->content_type = FHIR_REST_CT;
	return wrc;
}

int fhir_h_cond_delete(struct req *r, struct reply *rep)
{
	const char *type = NULL;
	int rc = cond_type(r, &type);
	if (rc)
		return rc;
	r->audit.action = "delete";
	int64_t im = fhir_rest_parse_etag(req_header(r, "If-Match"));
	if (im < 0)
		return req_fail(r, MC_EINVAL, "If-Match must be a version ETag such as W/\"1\"", NULL, NULL);
	struct cctx c = {.w = {.r = r, .type = type, .if_match = im}, .query = query_of(r)};
	rc = req_write(r, cond_delete_unit, &c);
	if (rc)
		return rc;
	if (c.w.meta.id[0])
		fhir_rest_version_headers(rep, r, &c.w.meta);
	buf_reset(&rep->body);
	rep->status = 204;
	rep->content_type = NULL;
	return MC_OK;
}
