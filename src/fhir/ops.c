/* fhir/ops.c — $validate, $meta and Patient $everything (fhir/ops.h), and the route table that
 * also carries the bulk-export routes (fhir/export.c).
 *
 * Same shape as fhir/rest.c: parse, one store unit, map the result. Patient access is decided by
 * auth_patient_access (one patient) or narrowed with fhir_access_sql (listings), and OAuth2 scopes
 * narrow the types a listing may contain (auth_scope_allows).
 */
#include "fhir/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mctime.h"
#include "fhir/export.h"
#include "fhir/search.h"
#include "fhir/store.h"
#include "http/app.h"

#define FHIR_CT "application/fhir+json; charset=utf-8"
#define OPS_MAX_BODY ((size_t)8 << 20)
#define EVERYTHING_DEFAULT 50
#define META_MAX_ITEMS 1000   /* distinct tags/profiles/labels listed by a type or system $meta */

static int page_max_of(const struct req *r)
{
	return r->app && r->app->cfg && r->app->cfg->page_max > 0 ? (int)r->app->cfg->page_max : 100;
}

static enum auth_access read_level(const char *type)
{
	return auth_fhir_perm(type, false) == PERM_READ_DEMOGRAPHICS ? AUTH_DEMOGRAPHICS_READ : AUTH_CLINICAL_READ;
}

static int check_type(struct req *r, const char **type)
{
	const char *t = req_param(r, "type");
	*type = NULL;
	if (!t || !fhir_type_is_resource(t) || !strcmp(t, "AuditEvent"))
		return req_fail(r, MC_ENOTFOUND, "Unknown resource type", NULL, NULL);
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

/* May the caller read a resource of type owned by pid ("" = none)? The rest.c rule. */
static int read_gate(struct store_txn *t, struct req *r, const char *type, const char *pid, enum auth_access lvl)
{
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

static int reply_json(struct reply *rep, int status, json_t *j)
{
	int rc = reply_fhir_json(rep, status, j);
	json_decref(j);
	if (rc == MC_OK)
		rep->content_type = FHIR_CT;
	return rc;
}

/* ---- $validate ---- */

static void add_issue(json_t *issues, const char *sev, const char *code, const char *msg, const char *path)
{
	json_t *e = json_pack("{s:s,s:s,s:s}", "severity", sev, "code", code, "diagnostics", msg);
	if (path && path[0])
		json_object_set_new(e, "expression", json_pack("[s]", path));
	json_array_append_new(issues, e);
}

json_t *fhir_validate_outcome(const json_t *res, const char *type, const char *id, const char *mode)
{
	json_t *issues = json_array();
	bool del = mode && !strcmp(mode, "delete");
	if (mode && strcmp(mode, "create") && strcmp(mode, "update") && !del) {
		add_issue(issues, "error", "invalid", "mode must be create, update or delete", NULL);
	} else if (!del) {
		const char *rt = json_is_object(res) ? mcjson_str(res, "resourceType") : NULL;
		const char *rid = json_is_object(res) ? mcjson_str(res, "id") : NULL;
		if (!json_is_object(res)) {
			add_issue(issues, "error", "structure", "The body must be a FHIR resource (a JSON object)", NULL);
		} else if (!rt || strcmp(rt, type)) {
			add_issue(issues, "error", "invalid", "resourceType does not match the URL", "resourceType");
		} else {
			struct fhir_issues is;
			memset(&is, 0, sizeof(is));
			if (fhir_validate(res, type, &is) != MC_OK) {
				for (size_t i = 0; i < is.n && i < FHIR_MAX_ISSUES; i++)
					add_issue(issues, "error", is.v[i].code[0] ? is.v[i].code : "invalid", is.v[i].msg,
						  is.v[i].path);
				if (!is.n)
					add_issue(issues, "error", "invalid", "The resource is invalid", NULL);
			}
			if ((id && rid && strcmp(id, rid)) || (mode && !strcmp(mode, "update") && !rid)) {
				char idpath[80];
				snprintf(idpath, sizeof(idpath), "%s.id", type);
				add_issue(issues, "error", "invalid",
					  rid ? "The id in the resource does not match the URL"
					      : "An update needs the resource's id",
					  idpath);
			}
		}
	}
	if (!json_array_size(issues))
		add_issue(issues, "information", "informational", "ok", NULL);
	json_t *oo = json_pack("{s:s,s:o}", "resourceType", "OperationOutcome", "issue", issues);
	return oo;
}

/* The body is the resource, or a Parameters with "resource" (and optionally "mode"). */
static int h_validate(struct req *r, struct reply *rep)
{
	const char *type = NULL, *id = NULL;
	int rc = check_type(r, &type);
	if (rc)
		return rc;
	if (req_param(r, "id")) {
		rc = check_id(r, &id);
		if (rc)
			return rc;
	}
	if (r->body_len && (!r->content_type || (strcmp(r->content_type, "application/fhir+json") &&
						 strcmp(r->content_type, "application/json"))))
		return MC_EMEDIA;
	const char *mode = req_query(r, "mode");
	json_t *body = NULL, *res = NULL;
	if (r->body_len) {
		rc = req_json(r, &body);
		if (rc)
			return rc;
		res = body;
		const char *rt = json_is_object(body) ? mcjson_str(body, "resourceType") : NULL;
		if (rt && !strcmp(rt, "Parameters") && strcmp(type, "Parameters")) {
			res = NULL;
			json_t *ps = json_object_get(body, "parameter");
			for (size_t i = 0; json_is_array(ps) && i < json_array_size(ps); i++) {
				json_t *p = json_array_get(ps, i);
				const char *name = mcjson_str(p, "name");
				if (name && !strcmp(name, "resource"))
					res = json_object_get(p, "resource");
				else if (name && !strcmp(name, "mode") && !mode)
					mode = mcjson_str(p, "valueCode");
			}
		}
	}
	if (!res && !(mode && !strcmp(mode, "delete")))
		return req_fail(r, MC_EINVAL, "$validate needs a resource in the body", NULL, NULL);
	return reply_json(rep, 200, fhir_validate_outcome(res, type, id, mode));
}

/* ---- $meta ---- */

struct mctx {
	struct req *r;
	const char *type, *id;
	json_t *meta;   /* result, owned here until replied */
};

static int meta_instance_unit(struct store_txn *t, void *arg)
{
	struct mctx *c = arg;
	struct fhir_stored st;
	int rc = fhir_store_read(t, c->r->arena, c->type, c->id, 0, &st);
	if (rc != MC_OK && rc != MC_EGONE)
		return rc;
	c->r->audit.patient_id = st.meta.patient_id[0] ? arena_strdup(c->r->arena, st.meta.patient_id) : NULL;
	int grc = read_gate(t, c->r, c->type, st.meta.patient_id, read_level(c->type));
	if (grc || rc)
		return grc ? grc : rc;
	json_t *res = NULL;
	if (mcjson_parse(st.json, st.json_len, &res, NULL))
		return MC_EINTERNAL;
	json_t *m = json_object_get(res, "meta");
	c->meta = m ? json_incref(m) : json_object();
	json_decref(res);
	return MC_OK;
}

/* Distinct (system, code, display) of a token index parameter, or uris of _profile, over the
 * current resources of type (NULL = all) that the caller may list. */
static int meta_collect(struct store_txn *t, struct mctx *c, const char *param, bool uri, json_t *into)
{
	struct fhir_sql q;
	fhir_sql_init(&q);
	int rc = uri ? buf_puts(&q.sql, "SELECT DISTINCT x.uri, '', '' FROM idx_uri x")
		     : buf_puts(&q.sql, "SELECT DISTINCT x.system, x.code, COALESCE(x.text, '') FROM idx_token x");
	rc = rc ? rc : buf_puts(&q.sql, " JOIN resources r ON r.rkey = x.rkey WHERE r.deleted = 0 AND x.param = ");
	rc = rc ? rc : fhir_sql_arg(&q, SA_TEXT(param));
	if (!rc && c->type) {
		rc = buf_puts(&q.sql, " AND r.type = ");
		rc = rc ? rc : fhir_sql_arg(&q, SA_TEXT(c->type));
	}
	struct fhir_access acc = {
		.scope = auth_patient_scope(c->r->who, c->type ? read_level(c->type) : AUTH_CLINICAL_READ),
		.patient_id = c->r->who ? c->r->who->patient_id : NULL,
		.user_id = c->r->who ? c->r->who->user_id : 0,
	};
	rc = rc ? rc : fhir_access_sql(&q, &acc, c->type);
	rc = rc ? rc : buf_printf(&q.sql, " ORDER BY 1, 2 LIMIT %d", META_MAX_ITEMS);
	struct store_rows *rows = NULL;
	if (!rc)
		rc = store_query(t, q.sql.data, q.args, q.nargs, &rows);
	int st = 0;
	while (!rc && (st = store_rows_next(rows)) == 1) {
		const char *a = store_rows_text(rows, 0), *b = store_rows_text(rows, 1), *d = store_rows_text(rows, 2);
		if (uri) {
			json_array_append_new(into, json_string(a ? a : ""));
			continue;
		}
		json_t *coding = json_object();
		if (a && a[0])
			json_object_set_new(coding, "system", json_string(a));
		if (b && b[0])
			json_object_set_new(coding, "code", json_string(b));
		if (d && d[0])
			json_object_set_new(coding, "display", json_string(d));
		json_array_append_new(into, coding);
	}
	if (!rc && st < 0)
		rc = -st;
	store_rows_close(rows);
	fhir_sql_release(&q);
	return rc;
}

static int meta_list_unit(struct store_txn *t, void *arg)
{
	struct mctx *c = arg;
	json_t *tag = json_array(), *sec = json_array(), *prof = json_array();
	int rc = meta_collect(t, c, "_tag", false, tag);
	rc = rc ? rc : meta_collect(t, c, "_security", false, sec);
	rc = rc ? rc : meta_collect(t, c, "_profile", true, prof);
	c->meta = json_object();
	if (json_array_size(prof))
		json_object_set(c->meta, "profile", prof);
	if (json_array_size(sec))
		json_object_set(c->meta, "security", sec);
	if (json_array_size(tag))
		json_object_set(c->meta, "tag", tag);
	json_decref(tag);
	json_decref(sec);
	json_decref(prof);
	return rc;
}

static int do_meta(struct req *r, struct reply *rep, const char *type, const char *id)
{
	r->audit.action = "meta";
	struct mctx c = {.r = r, .type = type, .id = id};
	int rc = store_read(r->app->store, id ? meta_instance_unit : meta_list_unit, &c);
	if (rc) {
		json_decref(c.meta);
		if (rc == MC_ENOTFOUND)
			return req_fail(r, rc, "Resource not found", NULL, NULL);
		if (rc == MC_EGONE)
			return req_fail(r, rc, "Resource deleted", NULL, NULL);
		return rc;
	}
	json_t *p = json_pack("{s:s,s:[{s:s,s:o}]}", "resourceType", "Parameters", "parameter", "name", "return",
			      "valueMeta", c.meta);
	return reply_json(rep, 200, p);
}

static int h_meta_system(struct req *r, struct reply *rep)
{
	return do_meta(r, rep, NULL, NULL);
}

static int h_meta_type(struct req *r, struct reply *rep)
{
	const char *type = NULL;
	int rc = check_type(r, &type);
	return rc ? rc : do_meta(r, rep, type, NULL);
}

static int h_meta_instance(struct req *r, struct reply *rep)
{
	const char *type = NULL, *id = NULL;
	int rc = check_type(r, &type);
	rc = rc ? rc : check_id(r, &id);
	return rc ? rc : do_meta(r, rep, type, id);
}

/* ---- Patient $everything ---- */

struct ectx {
	struct req *r;
	const char *pid;
	const char **types;   /* NULL-terminated; NULL = every type */
	int64_t since;
	int count, offset;
	int64_t total;
	struct fhir_stored *v;
	int n;
	bool more;
};

static int everything_where(struct fhir_sql *q, const struct ectx *c)
{
	int rc = buf_puts(&q->sql, " FROM resources r JOIN resource_versions v ON v.rkey = r.rkey AND v.version = "
				   "r.version WHERE r.deleted = 0 AND r.type <> 'AuditEvent' AND r.patient_id = ");
	rc = rc ? rc : fhir_sql_arg(q, SA_TEXT(c->pid));
	if (!rc && c->since > 0) {
		rc = buf_puts(&q->sql, " AND r.last_updated_ms >= ");
		rc = rc ? rc : fhir_sql_arg(q, SA_INT(c->since));
	}
	if (!rc && c->types) {
		rc = buf_puts(&q->sql, " AND r.type IN (");
		for (size_t i = 0; !rc && c->types[i]; i++) {
			rc = i ? buf_puts(&q->sql, ", ") : MC_OK;
			rc = rc ? rc : fhir_sql_arg(q, SA_TEXT(c->types[i]));
		}
		if (!rc && !c->types[0])
			rc = buf_puts(&q->sql, "NULL");
		rc = rc ? rc : buf_puts(&q->sql, ")");
	}
	return rc;
}

static int everything_unit(struct store_txn *t, void *arg)
{
	struct ectx *c = arg;
	struct req *r = c->r;
	struct fhir_stored pat;
	int rc = fhir_store_read(t, r->arena, "Patient", c->pid, 0, &pat);
	if (rc != MC_OK && rc != MC_EGONE)
		return rc;
	int grc = read_gate(t, r, "Patient", c->pid, AUTH_CLINICAL_READ);
	if (grc || rc)
		return grc ? grc : rc;

	struct fhir_sql q;
	fhir_sql_init(&q);
	rc = everything_where(&q, c);
	if (!rc) {
		struct buf cs = BUF_INIT;
		rc = buf_printf(&cs, "SELECT count(*)%s", buf_str(&q.sql));
		rc = rc ? rc : store_query_int(t, cs.data, q.args, q.nargs, &c->total);
		buf_release(&cs);
	}
	struct buf s = BUF_INIT;
	/* the Patient first, then everything else in insertion order (stable pages) */
	if (!rc)
		rc = buf_printf(&s,
				"SELECT r.type, r.id, r.version, r.last_updated_ms, v.json%s ORDER BY "
				"CASE WHEN r.type = 'Patient' THEN 0 ELSE 1 END, r.rkey LIMIT %d OFFSET %d",
				buf_str(&q.sql), c->count + 1, c->offset);
	struct store_rows *rows = NULL;
	if (!rc)
		rc = store_query(t, s.data, q.args, q.nargs, &rows);
	buf_release(&s);
	c->v = arena_zalloc(r->arena, sizeof(*c->v) * (size_t)(c->count + 1));
	int st = 0;
	while (!rc && (st = store_rows_next(rows)) == 1) {
		if (c->n == c->count) {
			c->more = true;
			break;
		}
		struct fhir_stored *e = &c->v[c->n++];
		snprintf(e->meta.type, sizeof(e->meta.type), "%s", store_rows_text(rows, 0));
		snprintf(e->meta.id, sizeof(e->meta.id), "%s", store_rows_text(rows, 1));
		e->meta.version = store_rows_int(rows, 2);
		e->meta.last_updated_ms = store_rows_int(rows, 3);
		size_t len = 0;
		const void *j = store_rows_blob(rows, 4, &len);
		char *copy = arena_alloc(r->arena, len + 1);
		if (len)
			memcpy(copy, j, len);
		copy[len] = '\0';
		e->json = copy;
		e->json_len = len;
	}
	if (!rc && st < 0)
		rc = -st;
	store_rows_close(rows);
	fhir_sql_release(&q);
	return rc;
}

/* May the caller read resources of this type at all (role and token scope)? Some compartment
 * types need more than read:patient_data (notes: access:clinical_notes), so every type is checked
 * the way the dispatcher checks {type}. */
static bool type_readable(const struct req *r, const char *type)
{
	return strcmp(type, "AuditEvent") && auth_has(r->who, auth_fhir_perm(type, false)) &&
	       auth_scope_allows(r->who, type, false);
}

/* _type: a comma list of resource types, narrowed to the types the caller may read.
 * Returns a NULL-terminated arena array. */
static int everything_types(struct req *r, const char *list, const char ***out)
{
	*out = NULL;
	const char *const *all = fhir_resource_types();
	size_t cap = 0;
	while (all && all[cap])
		cap++;
	const char **v = arena_zalloc(r->arena, sizeof(*v) * (cap + 1));
	size_t n = 0;
	if (list) {
		char *dup = arena_strdup(r->arena, list);
		for (char *p = dup; p && *p;) {
			char *comma = strchr(p, ',');
			if (comma)
				*comma = '\0';
			if (!fhir_type_is_resource(p))
				return req_fail(r, MC_EINVAL, "_type must list resource types", NULL, NULL);
			if (n < cap && type_readable(r, p))
				v[n++] = p;
			p = comma ? comma + 1 : NULL;
		}
	} else {
		for (size_t i = 0; i < cap; i++)
			if (fhir_type_in_patient_compartment(all[i]) && type_readable(r, all[i]))
				v[n++] = all[i];
	}
	v[n] = NULL;
	*out = v;
	return MC_OK;
}

static int h_everything(struct req *r, struct reply *rep)
{
	const char *type = NULL, *id = NULL;
	int rc = check_type(r, &type);
	if (rc)
		return rc;
	if (strcmp(type, "Patient"))
		return req_fail(r, MC_ENOTFOUND, "$everything is defined for Patient only", NULL, NULL);
	rc = check_id(r, &id);
	if (rc)
		return rc;
	r->audit.action = "everything";
	r->audit.patient_id = id;
	int pmax = page_max_of(r);
	struct ectx c = {.r = r, .pid = id, .count = EVERYTHING_DEFAULT < pmax ? EVERYTHING_DEFAULT : pmax};
	const char *tlist = NULL;
	struct buf canon = BUF_INIT;
	for (size_t i = 0; i < r->nquery; i++) {
		const char *k = r->query[i].key, *v = r->query[i].value ? r->query[i].value : "";
		char *end;
		if (!strcmp(k, "_count")) {
			long n = strtol(v, &end, 10);
			if (!*v || *end || n < 1) {
				buf_release(&canon);
				return req_fail(r, MC_EINVAL, "_count must be a positive integer", NULL, NULL);
			}
			c.count = n > pmax ? pmax : (int)n;
		} else if (!strcmp(k, "_offset")) {
			long n = strtol(v, &end, 10);
			if (!*v || *end || n < 0 || n > 1000000) {
				buf_release(&canon);
				return req_fail(r, MC_EINVAL, "_offset must be a non-negative integer", NULL, NULL);
			}
			c.offset = (int)n;
		} else if (!strcmp(k, "_since") || !strcmp(k, "_type")) {
			if (!strcmp(k, "_since")) {
				int64_t lo, hi;
				if (mctime_parse_fhir(v, &lo, &hi, NULL)) {
					buf_release(&canon);
					return req_fail(r, MC_EINVAL, "_since must be a FHIR instant", NULL, NULL);
				}
				c.since = lo;
			} else {
				tlist = v;
			}
			buf_printf(&canon, "%s%s=", canon.len ? "&" : "", k);
			fhir_url_encode(&canon, v);
		} else if (strcmp(k, "_format") && strcmp(k, "_pretty")) {
			buf_release(&canon);
			return req_fail(r, MC_EINVAL, "Unknown parameter (supported: _count, _offset, _since, _type)", NULL,
					NULL);
		}
	}
	rc = everything_types(r, tlist, &c.types);
	if (!rc)
		rc = store_read(r->app->store, everything_unit, &c);
	if (rc) {
		buf_release(&canon);
		if (rc == MC_ENOTFOUND)
			return req_fail(r, rc, "Resource not found", NULL, NULL);
		if (rc == MC_EGONE)
			return req_fail(r, rc, "Resource deleted", NULL, NULL);
		return rc;
	}

	struct buf b = BUF_INIT;
	char bid[MCID_LEN + 1], now[32];
	mcid_new(bid);
	mctime_format_ms(mctime_now_ms(), now);
	char *base = arena_printf(r->arena, "%s/fhir/Patient/%s/$everything", r->base_url, id);
	const char *q = buf_str(&canon);
	rc = buf_printf(&b,
			"{\"resourceType\":\"Bundle\",\"id\":\"%s\",\"meta\":{\"lastUpdated\":\"%s\"},"
			"\"type\":\"searchset\",\"total\":%lld,\"link\":[",
			bid, now, (long long)c.total);
	struct {
		const char *rel;
		int off;
		bool on;
	} links[] = {{"self", c.offset, true},
		     {"next", c.offset + c.count, c.more},
		     {"previous", c.offset - c.count < 0 ? 0 : c.offset - c.count, c.offset > 0}};
	bool first = true;
	for (size_t i = 0; !rc && i < 3; i++) {
		if (!links[i].on)
			continue;
		char *u = arena_printf(r->arena, "%s?%s%s_count=%d&_offset=%d", base, q, q[0] ? "&" : "", c.count,
				       links[i].off);
		rc = buf_printf(&b, "%s{\"relation\":\"%s\",\"url\":", first ? "" : ",", links[i].rel);
		rc = rc ? rc : buf_json_str(&b, u);
		rc = rc ? rc : buf_putc(&b, '}');
		first = false;
	}
	buf_release(&canon);
	rc = rc ? rc : buf_putc(&b, ']');
	if (!rc && c.n)
		rc = buf_puts(&b, ",\"entry\":[");
	for (int i = 0; !rc && i < c.n; i++) {
		const struct fhir_stored *e = &c.v[i];
		char *full = arena_printf(r->arena, "%s/fhir/%s/%s", r->base_url, e->meta.type, e->meta.id);
		rc = buf_printf(&b, "%s{\"fullUrl\":", i ? "," : "");
		rc = rc ? rc : buf_json_str(&b, full);
		rc = rc ? rc : buf_puts(&b, ",\"resource\":");
		rc = rc ? rc : buf_append(&b, e->json, e->json_len);
		rc = rc ? rc : buf_puts(&b, ",\"search\":{\"mode\":\"match\"}}");
	}
	if (!rc && c.n)
		rc = buf_putc(&b, ']');
	rc = rc ? rc : buf_putc(&b, '}');
	if (rc) {
		buf_release(&b);
		return rc == MC_ETOOBIG ? req_fail(r, rc, "The result page is too large; lower _count", NULL, NULL) : rc;
	}
	buf_release(&rep->body);
	rep->body = b;
	rep->status = 200;
	rep->content_type = FHIR_CT;
	return MC_OK;
}

/* ---- the table ---- */

#define F_TYPED (ROUTE_FHIR | ROUTE_PHI | ROUTE_PERM_BY_TYPE)

static const struct route routes[] = {
	{"POST", "/fhir/{type}/$validate", h_validate, ROUTE_FHIR | ROUTE_PERM_BY_TYPE, NULL, OPS_MAX_BODY,
	 "$validate: check a resource against the R4 definitions; nothing is stored"},
	{"POST", "/fhir/{type}/{id}/$validate", h_validate, ROUTE_FHIR | ROUTE_PERM_BY_TYPE, NULL, OPS_MAX_BODY,
	 "$validate for an update of this resource (the ids must match)"},
	{"GET", "/fhir/$meta", h_meta_system, ROUTE_FHIR | ROUTE_PHI, "read:patient_data", 0,
	 "$meta: the tags, profiles and security labels in use"},
	{"GET", "/fhir/{type}/$meta", h_meta_type, F_TYPED, NULL, 0, "$meta over one resource type"},
	{"GET", "/fhir/{type}/{id}/$meta", h_meta_instance, F_TYPED, NULL, 0, "$meta of one resource"},
	{"GET", "/fhir/{type}/{id}/$everything", h_everything, F_TYPED, NULL, 0,
	 "Patient $everything: the patient's compartment as a paged searchset (_count, _since, _type)"},
	{"GET", "/fhir/$export", fhir_export_h_kickoff, ROUTE_FHIR | ROUTE_PHI, "read:patient_data", 0,
	 "Bulk export of everything (Prefer: respond-async; _type, _since, _outputFormat)"},
	{"GET", "/fhir/Patient/$export", fhir_export_h_kickoff, ROUTE_FHIR | ROUTE_PHI, "read:patient_data", 0,
	 "Bulk export of every patient's compartment"},
	{"GET", "/fhir/Group/{id}/$export", fhir_export_h_kickoff, ROUTE_FHIR | ROUTE_PHI, "read:patient_data", 0,
	 "Bulk export of the compartments of a Group's members"},
	{"GET", "/fhir/$export-status/{job}", fhir_export_h_status, ROUTE_FHIR, "read:patient_data", 0,
	 "Bulk export status: 202 with X-Progress while running, 200 with the manifest when done"},
	{"DELETE", "/fhir/$export-status/{job}", fhir_export_h_cancel, ROUTE_FHIR, "read:patient_data", 0,
	 "Cancel a bulk export and delete its files"},
	{"GET", "/fhir/$export-file/{job}/{file}", fhir_export_h_file, ROUTE_FHIR | ROUTE_PHI, "read:patient_data", 0,
	 "One NDJSON file of a finished bulk export (its owner only)"},
};

const struct route_table fhir_ops_routes = {routes, sizeof(routes) / sizeof(routes[0])};
