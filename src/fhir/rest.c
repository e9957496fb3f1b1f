/* fhir/rest.c — handlers of the FHIR REST routes (fhir/rest.h).
 *
 * Each handler: parse the request, run one unit of work (store_read for reads, req_write for
 * writes so the audit record commits with the data), map the result. Access: the dispatcher did
 * RBAC for {type}; here auth_patient_access decides on the one patient a resource belongs to
 * (demographics level for administrative types, clinical otherwise — the same split as
 * auth_fhir_perm), and searches/histories are narrowed with auth_patient_scope.
 * Resources of compartment types that name no patient are reachable only with AUTH_SCOPE_ALL
 * (fail closed), matching fhir_access_sql().
 */
#include "fhir/rest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mctime.h"
#include "fhir/conditional.h"
#include "fhir/resource.h"
#include "fhir/rest_int.h"
#include "fhir/search.h"
#include "fhir/store.h"
#include "http/app.h"

#define FHIR_CT "application/fhir+json; charset=utf-8"
#define FHIR_MAX_BODY ((size_t)8 << 20)
#define HISTORY_DEFAULT 50
#define FORM_MAX_PAIRS 100

/* ---- small helpers ---- */

static int set_ct(struct reply *rep, int rc)
{
	if (rc == MC_OK)
		rep->content_type = FHIR_CT;
	return rc;
}

/* "Tue, 24 Nov 2026 13:02:11 GMT" (RFC 9110 IMF-fixdate). */
static void http_date(int64_t ms, char out[40])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7], tm.tm_mday, mo[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void version_headers(struct reply *rep, struct req *r, const struct fhir_meta *m)
{
	char etag[40], date[40];
	snprintf(etag, sizeof(etag), "W/\"%lld\"", (long long)m->version);
	http_date(m->last_updated_ms, date);
	reply_header(rep, r, "ETag", etag);
	reply_header(rep, r, "Last-Modified", date);
}

/* W/"3", "3" or 3 → 3. 0 when absent; -1 when malformed. */
static int64_t parse_etag(const char *h)
{
	if (!h)
		return 0;
	while (*h == ' ')
		h++;
	if (!strncmp(h, "W/", 2))
		h += 2;
	bool q = *h == '"';
	if (q)
		h++;
	if (*h < '0' || *h > '9')
		return -1;
	char *end;
	long long v = strtoll(h, &end, 10);
	if (q) {
		if (*end != '"')
			return -1;
		end++;
	}
	while (*end == ' ')
		end++;
	if (*end || v <= 0)
		return -1;
	return v;
}

static bool prefer_has(struct req *r, const char *what)
{
	const char *p = req_header(r, "Prefer");
	return p && strstr(p, what) != NULL;
}

static enum auth_access access_level(const char *type, bool write)
{
	bool demo = auth_fhir_perm(type, false) == PERM_READ_DEMOGRAPHICS;
	if (demo)
		return write ? AUTH_DEMOGRAPHICS_WRITE : AUTH_DEMOGRAPHICS_READ;
	return write ? AUTH_CLINICAL_WRITE : AUTH_CLINICAL_READ;
}

/* {type} must be a resource type served here. */
static int check_type(struct req *r, const char **type)
{
	const char *t = req_param(r, "type");
	*type = NULL;
	if (!t || !fhir_type_is_resource(t))
		return req_fail(r, MC_ENOTFOUND, "Unknown resource type", NULL, NULL);
	if (!strcmp(t, "AuditEvent"))
		return req_fail(r, MC_EMETHOD, "AuditEvent is served by the audit API (/api/v1/audit), read-only",
				NULL, NULL);
	*type = t;
	r->audit.resource_type = t;
	return MC_OK;
}

static int check_id(struct req *r, const char **id)
{
	const char *v = req_param(r, "id");
	*id = NULL;
	if (!v || !mcid_valid_fhir_id(v))
		return req_fail(r, MC_ENOTFOUND, "Resource not found", NULL, NULL);
	*id = v;
	r->audit.resource_id = v;
	return MC_OK;
}

/* May the caller reach a resource of type owned by patient pid ("" = none) at level? */
static int patient_gate(struct store_txn *t, struct req *r, const char *type, const char *pid, bool write)
{
	enum auth_access lvl = access_level(type, write);
	if (!pid || !pid[0]) {
		if (!fhir_type_in_patient_compartment(type) || auth_patient_scope(r->who, lvl) == AUTH_SCOPE_ALL)
			return MC_OK;
		return req_fail(r, MC_EFORBIDDEN, "Access to this resource is not allowed", NULL, NULL);
	}
	bool bg = false;
	int rc = auth_patient_access(t, r->who, pid, lvl, &bg);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "Access to this patient's data is not allowed", NULL, NULL);
	if (rc == MC_OK && bg)
		r->audit.reason = "break-the-glass";
	return rc;
}

/* 400 with an OperationOutcome listing every validation issue with its expression path. */
static int reply_issues(struct req *r, struct reply *rep, const struct fhir_issues *is)
{
	json_t *oo = json_object();
	json_t *arr = json_array();
	json_object_set_new(oo, "resourceType", json_string("OperationOutcome"));
	for (size_t i = 0; i < is->n && i < FHIR_MAX_ISSUES; i++) {
		json_t *e = json_object();
		json_object_set_new(e, "severity", json_string("error"));
		json_object_set_new(e, "code", json_string(is->v[i].code[0] ? is->v[i].code : "invalid"));
		json_object_set_new(e, "diagnostics", json_string(is->v[i].msg));
		if (is->v[i].path[0])
			json_object_set_new(e, "expression", json_pack("[s]", is->v[i].path));
		json_array_append_new(arr, e);
	}
	json_object_set_new(oo, "issue", arr);
	int rc = reply_fhir_json(rep, 400, oo);
	json_decref(oo);
	set_ct(rep, rc);
	if (is->n)
		req_fail(r, MC_EINVAL, is->v[0].msg, is->v[0].path[0] ? is->v[0].path : NULL, NULL);
	return rc ? rc : MC_EINVAL;
}

/* Parse and validate the body as a resource of type. */
static int body_resource(struct req *r, struct reply *rep, const char *type, json_t **out)
{
	json_t *res;
	int rc = req_json(r, &res);
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
		return reply_issues(r, rep, &is);
	if (rc)
		return req_fail(r, rc == MC_EINVAL ? rc : MC_EINVAL, "The resource is invalid", NULL, NULL);
	*out = res;
	return MC_OK;
}

static const char *prefer_return(struct req *r)
{
	if (prefer_has(r, "return=minimal"))
		return "minimal";
	if (prefer_has(r, "return=OperationOutcome"))
		return "OperationOutcome";
	return "representation";
}

/* The body of a successful write: the stored resource, nothing, or an OperationOutcome. */
static int reply_written(struct req *r, struct reply *rep, int status, json_t *res)
{
	const char *pr = prefer_return(r);
	if (!strcmp(pr, "minimal")) {
		buf_reset(&rep->body);
		rep->status = status;
		rep->content_type = NULL;
		return MC_OK;
	}
	if (!strcmp(pr, "OperationOutcome")) {
		json_t *oo = json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "resourceType", "OperationOutcome", "issue", "severity",
				       "information", "code", "informational", "diagnostics",
				       status == 201 ? "created" : "updated");
		int rc = reply_fhir_json(rep, status, oo);
		json_decref(oo);
		return set_ct(rep, rc);
	}
	return set_ct(rep, reply_fhir_json(rep, status, res));
}

/* ---- metadata ---- */

static pthread_once_t cap_once = PTHREAD_ONCE_INIT;
static char *cap_json;
static size_t cap_len;

static void cap_param(const struct fhir_sp *sp, void *arg)
{
	json_t *arr = arg;
	static const char *const names[] = {"number", "date", "string", "token", "reference",
					    "composite", "quantity", "uri", "special"};
	enum fhir_sp_type t = fhir_sp_type(sp);
	if (!fhir_search_param_supported(sp))
		return; /* not searchable here: not listed */
	const char *code = fhir_sp_code(sp);
	if (!code || !strcmp(code, "_id") || !strcmp(code, "_lastUpdated"))
		return; /* listed once, below */
	json_array_append_new(arr, json_pack("{s:s,s:s}", "name", code, "type", names[t]));
}

static void cap_build(void)
{
	char now[32];
	mctime_format_ms(mctime_now_ms(), now);
	json_t *resources = json_array();
	const char *const *types = fhir_resource_types();
	static const char *const inter[] = {"read",           "vread",        "update", "delete",
					    "history-instance", "history-type", "create", "search-type"};
	for (size_t i = 0; types && types[i]; i++) {
		if (!strcmp(types[i], "AuditEvent"))
			continue;
		json_t *ia = json_array();
		for (size_t k = 0; k < sizeof(inter) / sizeof(inter[0]); k++)
			json_array_append_new(ia, json_pack("{s:s}", "code", inter[k]));
		json_t *sp = json_array();
		json_array_append_new(sp, json_pack("{s:s,s:s}", "name", "_id", "type", "token"));
		json_array_append_new(sp, json_pack("{s:s,s:s}", "name", "_lastUpdated", "type", "date"));
		fhir_sp_each(types[i], cap_param, sp);
		json_t *r = json_object();
		json_object_set_new(r, "type", json_string(types[i]));
		json_object_set_new(r, "interaction", ia);
		json_object_set_new(r, "versioning", json_string("versioned"));
		json_object_set_new(r, "readHistory", json_true());
		json_object_set_new(r, "updateCreate", json_true());
		json_object_set_new(r, "conditionalCreate", json_true());
		json_object_set_new(r, "conditionalRead", json_string("full-support"));
		json_object_set_new(r, "conditionalUpdate", json_true());
		json_object_set_new(r, "conditionalDelete", json_string("single"));
		json_object_set_new(r, "searchParam", sp);
		json_array_append_new(resources, r);
	}
	json_t *rest = json_object();
	json_object_set_new(rest, "mode", json_string("server"));
	json_object_set_new(
		rest, "documentation",
		json_string("Search: string (starts-with, accent- and case-insensitive; :exact, :contains), token "
			    "(code, system|code, |code, system|; :not, :text, :of-type), date (eq ne lt gt le ge sa "
			    "eb ap; partial dates), reference (Type/id, id; :Type), number and quantity (prefixes), "
			    "uri (:below, :above), composite (code$value), phonetic (Soundex); :missing on every "
			    "kind; comma = OR, repeated parameter = AND; chains (one level), _has (one level), "
			    "_include/_revinclude (:iterate one level), _count, _sort (several keys; - for "
			    "descending), _total, _summary (true|text|data|count), _elements. Paging links carry a "
			    "snapshot bound (and a keyset cursor) so concurrent creates do not shift pages. "
			    "Unknown parameters are ignored with a warning (Prefer: handling=strict rejects them). "
			    "AuditEvent is served by /api/v1/audit."));
	{
		/* the share of R4 search parameters (search-parameters.json) supported end to end */
		size_t ok = 0, all = 0;
		double cov = fhir_search_coverage(&ok, &all);
		char pct[32];
		snprintf(pct, sizeof(pct), "%.1f%% (%zu of %zu)", cov * 100.0, ok, all);
		json_object_set_new(rest, "extension",
				    json_pack("[{s:s,s:s}]", "url", "https://medcore.example/fhir/StructureDefinition/search-coverage",
					      "valueString", pct));
	}
	json_object_set_new(
		rest, "security",
		json_pack("{s:[{s:[{s:s,s:s}]}],s:s}", "service", "coding", "system",
			  "http://terminology.hl7.org/CodeSystem/restful-security-service", "code", "OAuth",
			  "description", "Bearer access tokens from POST /api/v1/auth/login"));
	json_object_set_new(rest, "resource", resources);
	json_object_set_new(rest, "interaction", json_pack("[{s:s},{s:s},{s:s}]", "code", "history-system", "code",
							  "transaction", "code", "batch"));

	json_t *cs = json_object();
	json_object_set_new(cs, "resourceType", json_string("CapabilityStatement"));
	json_object_set_new(cs, "status", json_string("active"));
	json_object_set_new(cs, "date", json_string(now));
	json_object_set_new(cs, "publisher", json_string("medcore"));
	json_object_set_new(cs, "kind", json_string("instance"));
	json_object_set_new(cs, "software", json_pack("{s:s,s:s}", "name", "medcore", "version", MEDCORE_VERSION));
	json_object_set_new(cs, "implementation", json_pack("{s:s}", "description", "medcore FHIR R4 server"));
	json_object_set_new(cs, "fhirVersion", json_string("4.0.1"));
	json_object_set_new(cs, "format", json_pack("[s,s]", "application/fhir+json", "json"));
	json_object_set_new(cs, "rest", json_pack("[o]", rest));
	cap_json = mcjson_dumps(cs);
	cap_len = cap_json ? strlen(cap_json) : 0;
	json_decref(cs);
}

const char *fhir_capability_json(size_t *len)
{
	pthread_once(&cap_once, cap_build);
	if (len)
		*len = cap_len;
	return cap_json;
}

static int h_metadata(struct req *r, struct reply *rep)
{
	(void)r;
	size_t n;
	const char *j = fhir_capability_json(&n);
	if (!j)
		return MC_EINTERNAL;
	return set_ct(rep, reply_fhir_bytes(rep, 200, j, n));
}

/* ---- create ---- */

/* struct fhir_wctx: fhir/rest_int.h */

static bool is_doctor_or_nurse(const struct auth_principal *p)
{
	return p && (p->role == ROLE_DOCTOR || p->role == ROLE_NURSE);
}

static void audit_written(struct fhir_wctx *w)
{
	struct req *r = w->r;
	r->audit.resource_id = arena_strdup(r->arena, w->meta.id);
	r->audit.patient_id = w->meta.patient_id[0] ? arena_strdup(r->arena, w->meta.patient_id) : NULL;
}

static int create_unit(struct store_txn *t, void *arg)
{
	struct fhir_wctx *w = arg;
	struct req *r = w->r;
	bool is_patient = !strcmp(w->type, "Patient");
	if (w->if_none_exist) {
		/* conditional create (If-None-Exist / Bundle request.ifNoneExist): a match among what the
		 * caller may see is returned instead of creating (fhir/conditional.h) */
		struct fhir_cond c;
		int rc = fhir_cond_match(t, r, w->type, w->if_none_exist, &c);
		if (rc)
			return rc;
		if (c.n > 1)
			return req_fail(r, MC_EPRECOND, "If-None-Exist matches more than one resource", NULL, NULL);
		if (c.n == 1) {
			w->matched = true;
			w->match = c.one;
			w->meta = c.one.meta;
			r->audit.action = "read"; /* nothing was created */
			audit_written(w);
			return MC_OK;
		}
	}
	if (!is_patient) {
		char pid[65] = "";
		if (!fhir_patient_of(w->type, w->res, pid))
			pid[0] = '\0';
		int rc = patient_gate(t, r, w->type, pid, true);
		if (rc)
			return rc;
	}
	int rc = fhir_store_create(t, w->type, w->res, &w->meta);
	if (rc)
		return rc;
	if (is_patient && is_doctor_or_nurse(r->who)) {
		rc = auth_care_team_add(t, w->meta.id, r->who->user_id, r->who->username);
		if (rc)
			return rc;
	}
	audit_written(w);
	return MC_OK;
}

static int h_create(struct req *r, struct reply *rep)
{
	const char *type;
	json_t *res;
	int rc = check_type(r, &type);
	if (rc)
		return rc;
	r->audit.action = "create";
	rc = body_resource(r, rep, type, &res);
	if (rc)
		return rc;
	json_object_del(res, "id"); /* FHIR create: the server assigns the id */
	struct fhir_wctx w = {.r = r, .type = type, .res = res, .if_none_exist = req_header(r, "If-None-Exist")};
	rc = req_write(r, create_unit, &w);
	if (rc == MC_ECONFLICT)
		return req_fail(r, rc, "A resource with this id already exists", NULL, NULL);
	if (rc)
		return rc;
	if (w.matched) {
		version_headers(rep, r, &w.meta);
		if (!strcmp(prefer_return(r), "representation"))
			return set_ct(rep, reply_fhir_bytes(rep, 200, w.match.json, w.match.json_len));
		return reply_written(r, rep, 200, NULL);
	}
	char *loc = arena_printf(r->arena, "%s/fhir/%s/%s/_history/%lld", r->base_url, type, w.meta.id,
				 (long long)w.meta.version);
	reply_header(rep, r, "Location", loc);
	version_headers(rep, r, &w.meta);
	return reply_written(r, rep, 201, res);
}

/* ---- read, vread ---- */

/* struct fhir_rctx: fhir/rest_int.h */

static int read_unit(struct store_txn *t, void *arg)
{
	struct fhir_rctx *c = arg;
	int rc = fhir_store_read(t, c->r->arena, c->type, c->id, c->version, &c->st);
	if (rc != MC_OK && rc != MC_EGONE)
		return rc;
	if (c->version) {
		/* the owner of the resource as it is now decides access to every version */
		struct fhir_stored cur;
		int crc = fhir_store_read(t, c->r->arena, c->type, c->id, 0, &cur);
		if (crc != MC_OK && crc != MC_EGONE)
			return crc;
		memcpy(c->st.meta.patient_id, cur.meta.patient_id, sizeof(c->st.meta.patient_id));
	}
	c->r->audit.patient_id = c->st.meta.patient_id[0] ? arena_strdup(c->r->arena, c->st.meta.patient_id) : NULL;
	int grc = patient_gate(t, c->r, c->type, c->st.meta.patient_id, false);
	return grc ? grc : rc;
}

static int do_read(struct req *r, struct reply *rep, int64_t version)
{
	const char *type, *id;
	int rc = check_type(r, &type);
	if (rc)
		return rc;
	r->audit.action = version ? "vread" : "read";
	rc = check_id(r, &id);
	if (rc)
		return rc;
	struct fhir_rctx c = {.r = r, .type = type, .id = id, .version = version};
	rc = store_read(r->app->store, read_unit, &c);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "Resource not found", NULL, NULL);
	if (rc == MC_EGONE) {
		version_headers(rep, r, &c.st.meta);
		return req_fail(r, rc, "Resource deleted", NULL, NULL);
	}
	if (rc)
		return rc;
	version_headers(rep, r, &c.st.meta);
	const char *inm = req_header(r, "If-None-Match");
	const char *ims = inm ? NULL : req_header(r, "If-Modified-Since");
	int64_t ims_ms = 0;
	bool not_modified = inm ? parse_etag(inm) == c.st.meta.version || !strcmp(inm, "*")
				: ims && fhir_http_date_parse(ims, &ims_ms) == MC_OK &&
					  c.st.meta.last_updated_ms / 1000 <= ims_ms / 1000;
	if (!version && not_modified) {
		buf_reset(&rep->body);
		rep->status = 304;
		rep->content_type = NULL;
		return MC_OK;
	}
	return set_ct(rep, reply_fhir_bytes(rep, 200, c.st.json, c.st.json_len));
}

static int h_read(struct req *r, struct reply *rep)
{
	return do_read(r, rep, 0);
}

static int h_vread(struct req *r, struct reply *rep)
{
	const char *vid = req_param(r, "vid");
	char *end;
	long long v = vid ? strtoll(vid, &end, 10) : 0;
	if (!vid || !*vid || *end || v <= 0) {
		r->audit.action = "vread";
		return req_fail(r, MC_ENOTFOUND, "Version not found", NULL, NULL);
	}
	return do_read(r, rep, v);
}

/* ---- update, delete ---- */

static int update_unit(struct store_txn *t, void *arg)
{
	struct fhir_wctx *w = arg;
	struct req *r = w->r;
	struct fhir_stored cur;
	int rc = fhir_store_read(t, r->arena, w->type, w->id, 0, &cur);
	bool exists = rc == MC_OK || rc == MC_EGONE;
	if (!exists && rc != MC_ENOTFOUND)
		return rc;
	bool is_patient = !strcmp(w->type, "Patient");
	if (exists) {
		rc = patient_gate(t, r, w->type, cur.meta.patient_id, true);
		if (rc)
			return rc;
	}
	if (!is_patient) {
		char pid[65] = "";
		if (!fhir_patient_of(w->type, w->res, pid))
			pid[0] = '\0';
		if (!exists || strcmp(pid, cur.meta.patient_id) != 0) {
			rc = patient_gate(t, r, w->type, pid, true);
			if (rc)
				return rc;
		}
	} else if (!exists && !is_doctor_or_nurse(r->who)) {
		/* a new Patient with a client-chosen id: demographics write over any patient needed */
		if (auth_patient_scope(r->who, AUTH_DEMOGRAPHICS_WRITE) != AUTH_SCOPE_ALL)
			return req_fail(r, MC_EFORBIDDEN, "Access to this patient's data is not allowed", NULL, NULL);
	}
	rc = fhir_store_update(t, w->type, w->id, w->res, w->if_match, &w->meta, &w->created);
	if (rc == MC_EPRECOND)
		return req_fail(r, rc, "The resource has changed (If-Match does not match the current version)", NULL,
				NULL);
	if (rc)
		return rc;
	if (is_patient && w->created && is_doctor_or_nurse(r->who)) {
		rc = auth_care_team_add(t, w->meta.id, r->who->user_id, r->who->username);
		if (rc)
			return rc;
	}
	audit_written(w);
	return MC_OK;
}

static int h_update(struct req *r, struct reply *rep)
{
	const char *type, *id;
	json_t *res;
	int rc = check_type(r, &type);
	if (rc)
		return rc;
	r->audit.action = "update";
	rc = check_id(r, &id);
	if (rc)
		return req_fail(r, MC_EINVAL, "Invalid resource id in the URL", NULL, NULL);
	int64_t im = parse_etag(req_header(r, "If-Match"));
	if (im < 0)
		return req_fail(r, MC_EINVAL, "If-Match must be a version ETag such as W/\"1\"", NULL, NULL);
	rc = body_resource(r, rep, type, &res);
	if (rc)
		return rc;
	const char *bid = mcjson_str(res, "id");
	char *idpath = arena_printf(r->arena, "%s.id", type);
	if (!bid)
		return req_fail(r, MC_EINVAL, "The resource must contain its id", idpath, NULL);
	if (strcmp(bid, id) != 0)
		return req_fail(r, MC_EINVAL, "The id in the body does not match the URL", idpath, NULL);
	struct fhir_wctx w = {.r = r, .type = type, .id = id, .res = res, .if_match = im};
	rc = req_write(r, update_unit, &w);
	if (rc)
		return rc;
	if (w.created) {
		char *loc = arena_printf(r->arena, "%s/fhir/%s/%s/_history/%lld", r->base_url, type, w.meta.id,
					 (long long)w.meta.version);
		reply_header(rep, r, "Location", loc);
	}
	version_headers(rep, r, &w.meta);
	return reply_written(r, rep, w.created ? 201 : 200, res);
}

static int delete_unit(struct store_txn *t, void *arg)
{
	struct fhir_wctx *w = arg;
	struct req *r = w->r;
	struct fhir_stored cur;
	int rc = fhir_store_read(t, r->arena, w->type, w->id, 0, &cur);
	if (rc != MC_OK && rc != MC_EGONE)
		return rc;
	rc = patient_gate(t, r, w->type, cur.meta.patient_id, true);
	if (rc)
		return rc;
	rc = fhir_store_delete(t, w->type, w->id, w->if_match, &w->meta);
	if (rc == MC_EPRECOND)
		return req_fail(r, rc, "The resource has changed (If-Match does not match the current version)", NULL,
				NULL);
	if (rc)
		return rc;
	audit_written(w);
	return MC_OK;
}

static int h_delete(struct req *r, struct reply *rep)
{
	const char *type, *id;
	int rc = check_type(r, &type);
	if (rc)
		return rc;
	r->audit.action = "delete";
	rc = check_id(r, &id);
	if (rc)
		return rc;
	int64_t im = parse_etag(req_header(r, "If-Match"));
	if (im < 0)
		return req_fail(r, MC_EINVAL, "If-Match must be a version ETag such as W/\"1\"", NULL, NULL);
	struct fhir_wctx w = {.r = r, .type = type, .id = id, .if_match = im};
	rc = req_write(r, delete_unit, &w);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "Resource not found", NULL, NULL);
	if (rc)
		return rc;
	version_headers(rep, r, &w.meta);
	buf_reset(&rep->body);
	rep->status = 204;
	rep->content_type = NULL;
	return MC_OK;
}

/* ---- bundles ---- */

static int bundle_open(struct buf *b, const char *btype, int64_t total)
{
	char id[MCID_LEN + 1], now[32];
	mcid_new(id);
	mctime_format_ms(mctime_now_ms(), now);
	int rc = buf_printf(b, "{\"resourceType\":\"Bundle\",\"id\":\"%s\",\"meta\":{\"lastUpdated\":\"%s\"},"
			       "\"type\":\"%s\"",
			    id, now, btype);
	if (!rc && total >= 0)
		rc = buf_printf(b, ",\"total\":%lld", (long long)total);
	return rc;
}

/* link array: self, next (when more), previous (when offset > 0). base is the URL without query;
 * query the canonical query ("" allowed). */
static int bundle_links(struct buf *b, const char *base, const char *query, int count, int offset, bool more)
{
	struct {
		const char *rel;
		int off;
		bool on;
	} l[] = {{"self", offset, true},
		 {"next", offset + count, more},
		 {"previous", offset - count < 0 ? 0 : offset - count, offset > 0}};
	int rc = buf_puts(b, ",\"link\":[");
	bool first = true;
	for (size_t i = 0; !rc && i < 3; i++) {
		if (!l[i].on)
			continue;
		struct buf u = BUF_INIT;
		rc = buf_printf(&u, "%s?%s%s_count=%d&_offset=%d", base, query, query[0] ? "&" : "", count, l[i].off);
		rc = rc ? rc : buf_printf(b, "%s{\"relation\":\"%s\",\"url\":", first ? "" : ",", l[i].rel);
		rc = rc ? rc : buf_json_str(b, buf_str(&u));
		rc = rc ? rc : buf_putc(b, '}');
		buf_release(&u);
		first = false;
	}
	return rc ? rc : buf_putc(b, ']');
}

static int reply_bundle(struct reply *rep, struct buf *b)
{
	buf_release(&rep->body);
	rep->body = *b;
	*b = (struct buf)BUF_INIT;
	rep->status = 200;
	rep->content_type = FHIR_CT;
	return MC_OK;
}

/* ---- search ---- */

struct sctx {
	struct req *r;
	struct fhir_search *s;
	struct fhir_search_result res;
};

static int search_unit(struct store_txn *t, void *arg)
{
	struct sctx *c = arg;
	return fhir_search_run(t, c->r->arena, c->s, &c->res);
}

/* Access rules for another resource type reached by a search (chains, _has, _include): the
 * same RBAC and token-scope checks the dispatcher makes for {type}, then the patient scope. */
static int search_type_access(void *ctx, const char *type, struct fhir_access *out)
{
	struct req *r = ctx;
	if (!type || !strcmp(type, "AuditEvent") || !auth_has(r->who, auth_fhir_perm(type, false)) ||
	    !auth_scope_allows(r->who, type, false))
		return MC_EFORBIDDEN;
	out->scope = auth_patient_scope(r->who, access_level(type, false));
	out->patient_id = r->who ? r->who->patient_id : NULL;
	out->user_id = r->who ? r->who->user_id : 0;
	return MC_OK;
}

void fhir_rest_search_opts(struct req *r, const char *type, struct fhir_search_opts *o)
{
	*o = (struct fhir_search_opts){
		.access = {.scope = auth_patient_scope(r->who, access_level(type, false)),
			   .patient_id = r->who ? r->who->patient_id : NULL,
			   .user_id = r->who ? r->who->user_id : 0},
		.type_access = search_type_access,
		.type_access_ctx = r,
		.page_max = r->app && r->app->cfg ? (int)r->app->cfg->page_max : 100,
		.strict = prefer_has(r, "handling=strict"),   /* lenient is the default */
	};
}

static int do_search(struct req *r, struct reply *rep, const struct kv *q, size_t nq)
{
	const char *type = NULL;
	int rc = check_type(r, &type);
	if (rc)
		return rc;
	r->audit.action = "search";
	struct fhir_search_opts o;
	fhir_rest_search_opts(r, type, &o);
	if (o.access.scope == AUTH_SCOPE_OWN && r->who->patient_id[0])
		r->audit.patient_id = r->who->patient_id;
	struct sctx c = {.r = r};
	const char *err = NULL;
	rc = fhir_search_compile(r->arena, type, q, nq, &o, &c.s, &err);
	if (rc)
		return req_fail(r, rc, err ? err : "Invalid search", NULL, NULL);
	rc = store_read(r->app->store, search_unit, &c);
	if (rc)
		return rc;
	struct buf b = BUF_INIT;
	rc = fhir_search_bundle(&b, r->arena, arena_printf(r->arena, "%s/fhir", r->base_url), c.s, &c.res);
	if (rc) {
		buf_release(&b);
		return rc == MC_ETOOBIG ? req_fail(r, MC_ETOOBIG, "The result page is too large; lower _count", NULL, NULL)
					: rc;
	}
	return reply_bundle(rep, &b);
}

static int h_search(struct req *r, struct reply *rep)
{
	return do_search(r, rep, r->query, r->nquery);
}

static int h_search_post(struct req *r, struct reply *rep)
{
	struct kv *form = NULL;
	size_t nf = 0;
	if (r->body && r->body_len) {
		if (!r->content_type || strcmp(r->content_type, "application/x-www-form-urlencoded") != 0)
			return req_fail(r, MC_EMEDIA, "POST _search takes application/x-www-form-urlencoded", NULL,
					NULL);
		int rc = fhir_form_parse(r->arena, r->body, r->body_len, FORM_MAX_PAIRS, &form, &nf);
		if (rc)
			return req_fail(r, MC_EINVAL, "Invalid form body", NULL, NULL);
	}
	size_t n = r->nquery + nf;
	struct kv *all = arena_zalloc(r->arena, sizeof(*all) * (n ? n : 1));
	if (r->nquery)
		memcpy(all, r->query, sizeof(*all) * r->nquery);
	if (nf)
		memcpy(all + r->nquery, form, sizeof(*all) * nf);
	return do_search(r, rep, all, n);
}

/* ---- history ---- */

struct hctx {
	struct req *r;
	const char *type, *id;
	int64_t since;
	int offset, count;
	struct fhir_access acc;
	bool use_acc;
	struct fhir_stored *v;
	int n;
	int64_t total;
};

static int history_unit(struct store_txn *t, void *arg)
{
	struct hctx *c = arg;
	if (c->id) {
		struct fhir_stored cur;
		int rc = fhir_store_read(t, c->r->arena, c->type, c->id, 0, &cur);
		if (rc != MC_OK && rc != MC_EGONE)
			return rc;
		c->r->audit.patient_id = cur.meta.patient_id[0] ? arena_strdup(c->r->arena, cur.meta.patient_id) : NULL;
		rc = patient_gate(t, c->r, c->type, cur.meta.patient_id, false);
		if (rc)
			return rc;
	}
	return fhir_store_history_ex(t, c->r->arena, c->type, c->id, c->since, c->offset, c->count,
				     c->use_acc ? &c->acc : NULL, &c->v, &c->n, &c->total);
}

static int history_params(struct req *r, struct hctx *c, struct buf *canon)
{
	int page_max = r->app && r->app->cfg ? (int)r->app->cfg->page_max : 100;
	c->count = HISTORY_DEFAULT < page_max ? HISTORY_DEFAULT : page_max;
	for (size_t i = 0; i < r->nquery; i++) {
		const char *k = r->query[i].key, *v = r->query[i].value ? r->query[i].value : "";
		char *end;
		if (!strcmp(k, "_count")) {
			long n = strtol(v, &end, 10);
			if (!*v || *end || n < 0)
				return req_fail(r, MC_EINVAL, "_count must be a non-negative integer", NULL, NULL);
			c->count = n > page_max ? page_max : (int)n;
		} else if (!strcmp(k, "_offset")) {
			long n = strtol(v, &end, 10);
			if (!*v || *end || n < 0 || n > 1000000)
				return req_fail(r, MC_EINVAL, "_offset must be a non-negative integer", NULL, NULL);
			c->offset = (int)n;
		} else if (!strcmp(k, "_since")) {
			int64_t lo, hi;
			if (mctime_parse_fhir(v, &lo, &hi, NULL))
				return req_fail(r, MC_EINVAL, "_since must be a FHIR instant", NULL, NULL);
			c->since = lo;
			if (canon->len)
				buf_putc(canon, '&');
			buf_puts(canon, "_since=");
			fhir_url_encode(canon, v);
		} else if (strcmp(k, "_format") && strcmp(k, "_pretty")) {
			if (!prefer_has(r, "handling=lenient"))
				return req_fail(r, MC_EINVAL, "Unknown history parameter (supported: _count, _offset, _since)",
						NULL, NULL);
		}
	}
	return MC_OK;
}

static int do_history(struct req *r, struct reply *rep, const char *type, const char *id)
{
	r->audit.action = "history";
	struct hctx c = {.r = r, .type = type, .id = id};
	struct buf canon = BUF_INIT;
	int rc = history_params(r, &c, &canon);
	if (rc) {
		buf_release(&canon);
		return rc;
	}
	if (!id) {
		/* listings: narrow to the patients the caller may see */
		enum auth_access lvl = type ? access_level(type, false) : AUTH_CLINICAL_READ;
		c.use_acc = true;
		c.acc.scope = auth_patient_scope(r->who, lvl);
		c.acc.patient_id = r->who ? r->who->patient_id : NULL;
		c.acc.user_id = r->who ? r->who->user_id : 0;
	}
	rc = store_read(r->app->store, history_unit, &c);
	if (rc) {
		buf_release(&canon);
		if (rc == MC_ENOTFOUND)
			return req_fail(r, rc, "Resource not found", NULL, NULL);
		return rc;
	}
	struct buf b = BUF_INIT;
	char *base = id ? arena_printf(r->arena, "%s/fhir/%s/%s/_history", r->base_url, type, id)
			: type ? arena_printf(r->arena, "%s/fhir/%s/_history", r->base_url, type)
			       : arena_printf(r->arena, "%s/fhir/_history", r->base_url);
	rc = bundle_open(&b, "history", c.total);
	rc = rc ? rc : bundle_links(&b, base, buf_str(&canon), c.count, c.offset, c.offset + c.n < c.total);
	buf_release(&canon);
	if (!rc && c.n)
		rc = buf_puts(&b, ",\"entry\":[");
	for (int i = 0; !rc && i < c.n; i++) {
		const struct fhir_stored *e = &c.v[i];
		const struct fhir_meta *m = &e->meta;
		char *full = arena_printf(r->arena, "%s/fhir/%s/%s", r->base_url, m->type, m->id);
		char lu[32];
		mctime_format_ms(m->last_updated_ms, lu);
		const char *method = m->deleted ? "DELETE" : m->version == 1 ? "POST" : "PUT";
		const char *url = m->version == 1 && !m->deleted ? arena_strdup(r->arena, m->type)
								  : arena_printf(r->arena, "%s/%s", m->type, m->id);
		const char *status = m->deleted ? "204" : m->version == 1 ? "201" : "200";
		rc = buf_printf(&b, "%s{\"fullUrl\":", i ? "," : "");
		rc = rc ? rc : buf_json_str(&b, full);
		if (!rc && e->json) {
			rc = buf_puts(&b, ",\"resource\":");
			rc = rc ? rc : buf_append(&b, e->json, e->json_len);
		}
		rc = rc ? rc : buf_printf(&b, ",\"request\":{\"method\":\"%s\",\"url\":", method);
		rc = rc ? rc : buf_json_str(&b, url);
		rc = rc ? rc : buf_printf(&b,
					  "},\"response\":{\"status\":\"%s\",\"etag\":\"W/\\\"%lld\\\"\","
					  "\"lastModified\":\"%s\"}}",
					  status, (long long)m->version, lu);
	}
	if (!rc && c.n)
		rc = buf_putc(&b, ']');
	rc = rc ? rc : buf_putc(&b, '}');
	if (rc) {
		buf_release(&b);
		return rc;
	}
	return reply_bundle(rep, &b);
}

static int h_history_instance(struct req *r, struct reply *rep)
{
	const char *type, *id;
	int rc = check_type(r, &type);
	if (rc)
		return rc;
	r->audit.action = "history";
	rc = check_id(r, &id);
	if (rc)
		return rc;
	return do_history(r, rep, type, id);
}

static int h_history_type(struct req *r, struct reply *rep)
{
	const char *type;
	int rc = check_type(r, &type);
	if (rc)
		return rc;
	return do_history(r, rep, type, NULL);
}

static int h_history_system(struct req *r, struct reply *rep)
{
	return do_history(r, rep, NULL, NULL);
}

/* ---- the steps shared with bundle.c, patch.c, conditional.c (fhir/rest_int.h) ---- */

int fhir_rest_create_step(struct store_txn *t, void *w) { return create_unit(t, w); }
int fhir_rest_update_step(struct store_txn *t, void *w) { return update_unit(t, w); }
int fhir_rest_delete_step(struct store_txn *t, void *w) { return delete_unit(t, w); }
int fhir_rest_read_step(struct store_txn *t, void *c) { return read_unit(t, c); }
int fhir_rest_patient_gate(struct store_txn *t, struct req *r, const char *type, const char *pid, bool write)
{
	return patient_gate(t, r, type, pid, write);
}
enum auth_access fhir_rest_access_level(const char *type, bool write) { return access_level(type, write); }
int fhir_rest_check_type(struct req *r, const char **type) { return check_type(r, type); }
int64_t fhir_rest_parse_etag(const char *h) { return parse_etag(h); }
void fhir_rest_http_date(int64_t ms, char out[40]) { http_date(ms, out); }
void fhir_rest_version_headers(struct reply *rep, struct req *r, const struct fhir_meta *m)
{
	version_headers(rep, r, m);
}
const char *fhir_rest_prefer_return(struct req *r) { return prefer_return(r); }
int fhir_rest_reply_written(struct req *r, struct reply *rep, int status, json_t *res)
{
	return reply_written(r, rep, status, res);
}
int fhir_rest_reply_issues(struct req *r, struct reply *rep, const struct fhir_issues *is)
{
	return reply_issues(r, rep, is);
}
bool fhir_rest_joins_care_team(const struct auth_principal *p) { return is_doctor_or_nurse(p); }

/* ---- the table ---- */

#define F_READ (ROUTE_FHIR | ROUTE_PHI | ROUTE_PERM_BY_TYPE)
#define F_WRITE (ROUTE_FHIR | ROUTE_PHI | ROUTE_PERM_BY_TYPE | ROUTE_WRITE)

static const struct route routes[] = {
	{"GET", "/fhir/metadata", h_metadata, ROUTE_PUBLIC | ROUTE_FHIR, NULL, 0,
	 "CapabilityStatement: the types, interactions and search parameters served"},
	{"GET", "/fhir/_history", h_history_system, ROUTE_FHIR | ROUTE_PHI, "read:patient_data", 0,
	 "system history (Bundle type history), newest first"},
	{"POST", "/fhir/{type}", h_create, F_WRITE, NULL, FHIR_MAX_BODY, "create a resource"},
	{"GET", "/fhir/{type}", h_search, F_READ, NULL, 0, "search (searchset Bundle)"},
	{"POST", "/fhir/{type}/_search", h_search_post, F_READ, NULL, 65536, "search with a form-encoded body"},
	{"GET", "/fhir/{type}/_history", h_history_type, F_READ, NULL, 0, "type history"},
	{"GET", "/fhir/{type}/{id}", h_read, F_READ, NULL, 0, "read the current version"},
	{"PUT", "/fhir/{type}/{id}", h_update, F_WRITE, NULL, FHIR_MAX_BODY, "update (or create with this id)"},
	{"DELETE", "/fhir/{type}/{id}", h_delete, F_WRITE, NULL, 0, "logical delete (tombstone version)"},
	{"GET", "/fhir/{type}/{id}/_history", h_history_instance, F_READ, NULL, 0, "instance history"},
	{"GET", "/fhir/{type}/{id}/_history/{vid}", h_vread, F_READ, NULL, 0, "read a version (vread)"},
};

const struct route_table fhir_routes = {routes, sizeof(routes) / sizeof(routes[0])};
