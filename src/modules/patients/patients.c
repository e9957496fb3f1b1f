/* modules/patients/patients.c — /api/v1/patients: registration with MRN and duplicate detection,
 * profile read/edit, search by name, MRN or birth date, care team. All views over FHIR Patient.
 *
 * Handlers parse, call the FHIR store inside one unit of work, and map the result. Access: the
 * dispatcher checked the route permission; which patient is checked here with auth_patient_access
 * inside the same snapshot as the read, and searches are restricted by auth_patient_scope.
 */
#include "modules/patients/patients.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mctime.h"
#include "events/events.h"
#include "fhir/resource.h"
#include "http/app.h"
#include "modules/patients/profile.h"
#include "store/store.h"

#define DUP_MAX 10          /* candidates listed in a 409 */
#define SEARCH_TERMS_MAX 5
#define PAGE_DEFAULT 20
#define PAGE_MAX 100

/* ---- helpers ---- */

static void json_free_cb(void *p) { json_decref(p); }

/* Keep j alive until the request ends. */
static json_t *own(struct req *r, json_t *j)
{
	if (j)
		arena_defer(r->arena, json_free_cb, j);
	return j;
}

/* fhir_validate's first issue, reported with the FHIR path. */
static int invalid_patient(struct req *r, const struct fhir_issues *is)
{
	json_t *d = json_array();
	for (size_t i = 0; i < is->n; i++)
		json_array_append_new(d, json_pack("{s:s, s:s}", "path", is->v[i].path, "message", is->v[i].msg));
	return req_fail(r, MC_EINVAL, is->n ? arena_strdup(r->arena, is->v[0].msg) : "invalid patient",
			is->n ? arena_strdup(r->arena, is->v[0].path) : NULL, json_pack("{s:o}", "issues", d));
}

static int profile_fail(struct req *r, const struct profile_error *pe)
{
	return req_fail(r, MC_EINVAL, arena_printf(r->arena, "%s: %s", pe->field, pe->msg), NULL,
			json_pack("{s:s}", "field", pe->field));
}

static bool caller_is_clinician(const struct req *r)
{
	return r->who && (r->who->role == ROLE_DOCTOR || r->who->role == ROLE_NURSE);
}

/* Every /patients/{id}/... route: the audit names the patient; a malformed id is simply unknown.
 * Returns the id, or NULL after recording the 404. */
static const char *patient_param(struct req *r, const char *action)
{
	const char *id = req_param(r, "id");
	r->audit.action = action;
	r->audit.resource_type = "Patient";
	r->audit.resource_id = id;
	r->audit.patient_id = id;
	if (!id || !mcid_valid_fhir_id(id)) {
		req_fail(r, MC_ENOTFOUND, "no such patient", NULL, NULL);
		return NULL;
	}
	return id;
}

/* ---- MRN ---- */

int patients_create_txn(struct store_txn *t, json_t *patient, struct fhir_meta *out, char mrn[16])
{
	int64_t n = 0;
	int rc = store_query_int(t, "UPDATE mrn_seq SET next = next + 1 WHERE id = 1 RETURNING next - 1", NULL, 0, &n);
	if (rc)
		return rc == MC_ENOTFOUND ? MC_EINTERNAL : rc;
	snprintf(mrn, 16, "MRN%08lld", (long long)n);
	json_t *ids = json_object_get(patient, "identifier");
	if (!json_is_array(ids)) {
		ids = json_array();
		json_object_set_new(patient, "identifier", ids);
	}
	json_t *id = json_pack("{s:s, s:{s:[{s:s, s:s}], s:s}, s:s, s:s}", "use", "usual", "type", "coding", "system",
			       "http://terminology.hl7.org/CodeSystem/v2-0203", "code", "MR", "text",
			       "Medical record number", "system", MC_MRN_SYSTEM, "value", mrn);
	json_array_insert_new(ids, 0, id);
	struct fhir_meta m;
	int rc2 = fhir_store_create(t, "Patient", patient, &m);
	/* The domain event, in the same unit: ids only (the MRN is an identifier: PHI, not sent). */
	if (rc2 == MC_OK) {
		json_t *payload = json_object();
		json_object_set_new(payload, "patient_id", json_string(m.id));
		json_object_set_new(payload, "version", json_integer((json_int_t)m.version));
		rc2 = events_emit(t, "patient.registered", m.id, "Patient", m.id, payload);
	}
	if (rc2 == MC_OK && out)
		*out = m;
	return rc2;
}

/* ---- duplicate detection ---- */

static const char *first_given(const json_t *pat)
{
	json_t *n = json_array_get(json_object_get(pat, "name"), 0);
	json_t *g = json_array_get(json_object_get(n, "given"), 0);
	return json_is_string(g) ? json_string_value(g) : NULL;
}

static const char *family(const json_t *pat)
{
	return mcjson_str(json_array_get(json_object_get(pat, "name"), 0), "family");
}

static bool same_norm(const char *a, const char *b)
{
	char na[256], nb[256];
	if (!a || !b || fhir_normalize(a, na, sizeof(na)) || fhir_normalize(b, nb, sizeof(nb)))
		return false;
	return !strcmp(na, nb);
}

static bool shares_phone(const json_t *a, const json_t *b)
{
	size_t i, j;
	json_t *x, *y;
	json_array_foreach(json_object_get(a, "telecom"), i, x) {
		const char *sx = mcjson_str(x, "system");
		if (!sx || strcmp(sx, "phone"))
			continue;
		char dx[64];
		profile_phone_digits(mcjson_str(x, "value"), dx, sizeof(dx));
		json_array_foreach(json_object_get(b, "telecom"), j, y) {
			const char *sy = mcjson_str(y, "system");
			char dy[64];
			if (!sy || strcmp(sy, "phone"))
				continue;
			profile_phone_digits(mcjson_str(y, "value"), dy, sizeof(dy));
			if (dx[0] && !strcmp(dx, dy))
				return true;
		}
	}
	return false;
}

static bool shares_identifier(const json_t *a, const json_t *b)
{
	size_t i, j;
	json_t *x, *y;
	json_array_foreach(json_object_get(a, "identifier"), i, x) {
		const char *sx = mcjson_str(x, "system"), *vx = mcjson_str(x, "value");
		if (!sx || !vx || !strcmp(sx, MC_MRN_SYSTEM))
			continue;
		json_array_foreach(json_object_get(b, "identifier"), j, y) {
			const char *sy = mcjson_str(y, "system"), *vy = mcjson_str(y, "value");
			if (sy && vy && !strcmp(sx, sy) && !strcmp(vx, vy))
				return true;
		}
	}
	return false;
}

/* Same normalized name and birth date, plus same phone or same identifier. Candidates come from
 * the family-name index (exact normalized match), then are compared in full. */
static int find_duplicates(struct store_txn *t, const json_t *pat, json_t *out)
{
	const char *fam = family(pat), *bd = mcjson_str(pat, "birthDate");
	char norm[256];
	if (!fam || !bd || fhir_normalize(fam, norm, sizeof(norm)))
		return MC_OK;
	struct store_arg a[] = {SA_TEXT(norm)};
	struct store_rows *rows;
	int rc = store_query(t,
			     "SELECT v.json FROM resources r JOIN resource_versions v ON v.rkey = r.rkey AND "
			     "v.version = r.version WHERE r.type = 'Patient' AND r.deleted = 0 AND r.rkey IN "
			     "(SELECT rkey FROM idx_string WHERE param = 'family' AND norm = $1) LIMIT 200",
			     a, 1, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1 && json_array_size(out) < DUP_MAX) {
		size_t len;
		const char *js = store_rows_blob(rows, 0, &len);
		json_t *c = NULL;
		if (!js || mcjson_parse(js, len, &c, NULL))
			continue;
		const char *cbd = mcjson_str(c, "birthDate");
		if (cbd && !strcmp(cbd, bd) && same_norm(family(c), fam) && same_norm(first_given(c), first_given(pat)) &&
		    (shares_phone(c, pat) || shares_identifier(c, pat))) {
			json_array_append_new(out, json_pack("{s:O, s:s?}", "id", json_object_get(c, "id"), "mrn",
							     profile_identifier(c, MC_MRN_SYSTEM)));
		}
		json_decref(c);
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

/* ---- POST /api/v1/patients/register ---- */

struct reg_work {
	struct req *req;
	json_t *pat;
	bool force;
	json_t *dups;          /* out: candidates when MC_ECONFLICT */
	struct fhir_meta meta; /* out */
	char mrn[16];          /* out */
};

static int register_unit(struct store_txn *t, void *arg)
{
	struct reg_work *w = arg;
	if (!w->force) {
		int rc = find_duplicates(t, w->pat, w->dups);
		if (rc)
			return rc;
		if (json_array_size(w->dups))
			return MC_ECONFLICT;
	}
	int rc = patients_create_txn(t, w->pat, &w->meta, w->mrn);
	if (rc)
		return rc;
	w->req->audit.resource_id = arena_strdup(w->req->arena, w->meta.id);
	w->req->audit.patient_id = w->req->audit.resource_id;
	if (caller_is_clinician(w->req))
		rc = auth_care_team_add(t, w->meta.id, w->req->who->user_id, w->req->who->username);
	return rc;
}

static int h_register(struct req *r, struct reply *rep)
{
	static const char *const ignore[] = {"force", NULL};
	json_t *body;
	int rc = req_json(r, &body);
	if (rc)
		return rc;
	r->audit.action = "create";
	r->audit.resource_type = "Patient";
	json_t *force = json_object_get(body, "force");
	if (force && !json_is_boolean(force))
		return req_fail(r, MC_EINVAL, "force: must be true or false", NULL, json_pack("{s:s}", "field", "force"));
	bool want_force = json_is_true(force);
	/* Only clinicians and the integration account may override duplicate detection. */
	if (want_force && !auth_has(r->who, PERM_WRITE_PATIENT_DATA))
		return req_fail(r, MC_EFORBIDDEN, "this role may not override duplicate detection", NULL, NULL);
	json_t *pat = own(r, json_pack("{s:s}", "resourceType", "Patient"));
	struct profile_error pe;
	if (profile_apply(pat, body, ignore, &pe))
		return profile_fail(r, &pe);
	if (!family(pat) || !first_given(pat))
		return req_fail(r, MC_EINVAL, "firstName and lastName are required", NULL,
				json_pack("{s:s}", "field", family(pat) ? "firstName" : "lastName"));
	if (!json_object_get(pat, "birthDate"))
		return req_fail(r, MC_EINVAL, "birthDate is required", NULL, json_pack("{s:s}", "field", "birthDate"));
	if (!json_object_get(pat, "active"))
		json_object_set_new(pat, "active", json_true());
	struct fhir_issues is;
	if (fhir_validate(pat, "Patient", &is))
		return invalid_patient(r, &is);
	int64_t lo, hi;
	if (mctime_parse_fhir(mcjson_str(pat, "birthDate"), &lo, &hi, NULL) || lo > mctime_now_ms())
		return req_fail(r, MC_EINVAL, "birthDate: must be a past date", NULL, json_pack("{s:s}", "field", "birthDate"));

	struct reg_work w = {.req = r, .pat = pat, .force = want_force, .dups = own(r, json_array())};
	rc = req_write(r, register_unit, &w);
	if (rc == MC_ECONFLICT && json_array_size(w.dups))
		return req_fail(r, MC_ECONFLICT, "possible duplicate patient: same name and birth date with the same "
				"phone or identifier; review the candidates or resend with force",
				NULL, json_pack("{s:O}", "candidates", w.dups));
	if (rc)
		return rc;
	json_t *data = profile_from_patient(pat, MC_MRN_SYSTEM);
	json_object_set_new(data, "resourceType", json_string("Patient"));
	reply_header(rep, r, "Location", arena_printf(r->arena, "/fhir/Patient/%s", w.meta.id));
	return reply_api(rep, r, 201, data, NULL);
}

/* ---- GET/PUT /api/v1/patients/{id}/profile ---- */

struct prof_work {
	struct req *req;
	const char *id;
	enum auth_access level;
	json_t *body;          /* PUT: the edit */
	int64_t if_match;      /* PUT: 0 = none */
	json_t *pat;           /* out: the (new) Patient */
	struct fhir_meta meta;
	struct profile_error pe;
	struct fhir_issues is;
	bool profile_bad, fhir_bad, break_glass;
};

/* Read the current Patient and check access to it; shared by GET and PUT. */
static int load_patient(struct store_txn *t, struct prof_work *w)
{
	struct fhir_stored st;
	int rc = fhir_store_read(t, w->req->arena, "Patient", w->id, 0, &st);
	if (rc == MC_EGONE)
		rc = MC_ENOTFOUND; /* the task API does not distinguish; /fhir says 410 */
	if (rc)
		return rc;
	rc = auth_patient_access(t, w->req->who, w->id, w->level, &w->break_glass);
	if (rc)
		return rc;
	w->meta = st.meta;
	if (mcjson_parse(st.json, st.json_len, &w->pat, NULL))
		return MC_EINTERNAL;
	return MC_OK;
}

static int profile_read_unit(struct store_txn *t, void *arg)
{
	return load_patient(t, arg);
}

static int profile_update_unit(struct store_txn *t, void *arg)
{
	static const char *const ignore[] = {"version", "id", "mrn", "lastUpdated", NULL};
	struct prof_work *w = arg;
	int rc = load_patient(t, w);
	if (rc)
		return rc;
	if (w->if_match && w->if_match != w->meta.version)
		return MC_EPRECOND;
	if (profile_apply(w->pat, w->body, ignore, &w->pe)) {
		w->profile_bad = true;
		return MC_EINVAL;
	}
	if (fhir_validate(w->pat, "Patient", &w->is)) {
		w->fhir_bad = true;
		return MC_EINVAL;
	}
	bool created;
	return fhir_store_update(t, "Patient", w->id, w->pat, w->meta.version, &w->meta, &created);
}

static void prof_release(void *p)
{
	struct prof_work *w = p;
	json_decref(w->pat);
}

static int profile_result(struct req *r, struct reply *rep, struct prof_work *w, int rc)
{
	if (w->break_glass)
		r->audit.reason = "break-the-glass";
	if (w->profile_bad)
		return profile_fail(r, &w->pe);
	if (w->fhir_bad)
		return invalid_patient(r, &w->is);
	if (rc == MC_EPRECOND)
		return req_fail(r, rc, "the profile was changed by someone else; reload and retry", NULL,
				json_pack("{s:I}", "currentVersion", (json_int_t)w->meta.version));
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "no such patient", NULL, NULL);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "this patient is not in your care", NULL, NULL);
	if (rc)
		return rc;
	reply_header(rep, r, "ETag", arena_printf(r->arena, "W/\"%lld\"", (long long)w->meta.version));
	return reply_api(rep, r, 200, profile_from_patient(w->pat, MC_MRN_SYSTEM), NULL);
}

static struct prof_work *prof_begin(struct req *r, enum auth_access level, const char *action)
{
	const char *id = patient_param(r, action);
	if (!id)
		return NULL;
	struct prof_work *w = arena_zalloc(r->arena, sizeof(*w));
	w->req = r;
	w->id = id;
	w->level = level;
	arena_defer(r->arena, prof_release, w);
	return w;
}

static int h_profile_get(struct req *r, struct reply *rep)
{
	struct prof_work *w = prof_begin(r, AUTH_DEMOGRAPHICS_READ, "read");
	if (!w)
		return MC_ENOTFOUND;
	return profile_result(r, rep, w, store_read(r->app->store, profile_read_unit, w));
}

static int parse_if_match(const char *h, int64_t *out)
{
	/* W/"3" or "3" */
	if (!h)
		return MC_OK;
	if (!strncmp(h, "W/", 2))
		h += 2;
	char *end;
	if (*h != '"')
		return MC_EINVAL;
	long long v = strtoll(h + 1, &end, 10);
	if (end == h + 1 || *end != '"' || end[1] || v < 1)
		return MC_EINVAL;
	*out = v;
	return MC_OK;
}

static int h_profile_put(struct req *r, struct reply *rep)
{
	struct prof_work *w = prof_begin(r, AUTH_DEMOGRAPHICS_WRITE, "update");
	if (!w)
		return MC_ENOTFOUND;
	int rc = req_json(r, &w->body);
	if (rc)
		return rc;
	if (!json_is_object(w->body))
		return req_fail(r, MC_EINVAL, "the body must be a JSON object", NULL, NULL);
	if (parse_if_match(req_header(r, "If-Match"), &w->if_match))
		return req_fail(r, MC_EINVAL, "If-Match must be W/\"<version>\"", NULL, NULL);
	json_t *ver = json_object_get(w->body, "version");
	if (ver && !w->if_match) {
		if (!json_is_integer(ver) || json_integer_value(ver) < 1)
			return req_fail(r, MC_EINVAL, "version: must be a positive integer", NULL,
					json_pack("{s:s}", "field", "version"));
		w->if_match = json_integer_value(ver);
	}
	return profile_result(r, rep, w, req_write(r, profile_update_unit, w));
}

/* ---- GET /api/v1/patients?q= ---- */

struct search_work {
	struct req *req;
	struct buf where;                 /* conditions after WHERE */
	struct store_arg args[16];
	size_t nargs;
	int64_t limit, offset;
	int64_t total;                    /* out */
	json_t *items;                    /* out */
};

static int add_arg(struct search_work *w, struct store_arg a)
{
	w->args[w->nargs] = a;
	return (int)++w->nargs;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

static bool looks_like_date(const char *q)
{
	size_t n = strlen(q);
	return (n == 4 && all_digits(q, 4)) ||
	       (n == 7 && all_digits(q, 4) && q[4] == '-' && all_digits(q + 5, 2)) ||
	       (n == 10 && all_digits(q, 4) && q[4] == '-' && all_digits(q + 5, 2) && q[7] == '-' &&
		all_digits(q + 8, 2));
}

static bool looks_like_mrn(const char *q)
{
	return (q[0] == 'M' || q[0] == 'm') && (q[1] == 'R' || q[1] == 'r') && (q[2] == 'N' || q[2] == 'n') &&
	       all_digits(q + 3, strlen(q + 3));
}

/* Build the WHERE clause for q. Values are bound; only fixed SQL text is appended. */
static int compile_q(struct search_work *w, const char *q)
{
	struct arena *a = w->req->arena;
	buf_puts(&w->where, "r.type = 'Patient' AND r.deleted = 0");
	if (!q || !*q)
		return MC_OK;
	if (strlen(q) > 200)
		return MC_EINVAL;
	if (looks_like_mrn(q)) {
		char *mrn = arena_strdup(a, q);
		mrn[0] = 'M', mrn[1] = 'R', mrn[2] = 'N';
		int n = add_arg(w, SA_TEXT(mrn));
		buf_printf(&w->where, " AND r.rkey IN (SELECT rkey FROM idx_token WHERE param = 'identifier' AND "
				      "system = '" MC_MRN_SYSTEM "' AND code = $%d)", n);
		return MC_OK;
	}
	if (looks_like_date(q)) {
		int64_t lo, hi;
		if (mctime_parse_fhir(q, &lo, &hi, NULL))
			return MC_EINVAL;
		int n1 = add_arg(w, SA_INT(lo)), n2 = add_arg(w, SA_INT(hi));
		buf_printf(&w->where, " AND r.rkey IN (SELECT rkey FROM idx_date WHERE param = 'birthdate' AND "
				      "lo >= $%d AND hi <= $%d)", n1, n2);
		return MC_OK;
	}
	/* Names: every word must start some part of the patient's name (accent/case-insensitive). */
	char *norm = arena_alloc(a, 512);
	if (fhir_normalize(q, norm, 512))
		return MC_EINVAL;
	int terms = 0;
	for (char *p = norm; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		char *e = p;
		while (*e && *e != ' ' && *e != ',')
			e++;
		if (e == p)
			break;
		if (++terms > SEARCH_TERMS_MAX)
			return MC_EINVAL;
		char *lo = arena_strndup(a, p, (size_t)(e - p));
		char *hi = arena_strndup(a, p, (size_t)(e - p));
		hi[e - p - 1]++; /* smallest string greater than every string with prefix lo */
		int n1 = add_arg(w, SA_TEXT(lo)), n2 = add_arg(w, SA_TEXT(hi));
		buf_printf(&w->where, " AND r.rkey IN (SELECT rkey FROM idx_string WHERE param = 'name' AND "
				      "norm >= $%d AND norm < $%d)", n1, n2);
		p = e;
	}
	return MC_OK;
}

static int compile_scope(struct search_work *w)
{
	const struct auth_principal *p = w->req->who;
	switch (auth_patient_scope(p, AUTH_DEMOGRAPHICS_READ)) {
	case AUTH_SCOPE_ALL:
		return MC_OK;
	case AUTH_SCOPE_NONE:
		return MC_EFORBIDDEN;
	case AUTH_SCOPE_OWN: {
		int n = add_arg(w, SA_TEXT(p->patient_id));
		buf_printf(&w->where, " AND r.id = $%d", n);
		return MC_OK;
	}
	case AUTH_SCOPE_CARE: {
		int u = add_arg(w, SA_INT(p->user_id)), now = add_arg(w, SA_INT(mctime_now_ms()));
		buf_puts(&w->where, " AND ");
		buf_printf(&w->where, AUTH_CARE_SQL, "r.id", u, now, "r.id", u, now);
		return MC_OK;
	}
	}
	return MC_EFORBIDDEN;
}

static int search_unit(struct store_txn *t, void *arg)
{
	struct search_work *w = arg;
	struct arena *a = w->req->arena;
	char *sql = arena_printf(a, "SELECT count(*) FROM resources r WHERE %s", buf_str(&w->where));
	int rc = store_query_int(t, sql, w->args, w->nargs, &w->total);
	if (rc)
		return rc;
	size_t n = w->nargs;
	int nl = add_arg(w, SA_INT(w->limit)), no = add_arg(w, SA_INT(w->offset));
	sql = arena_printf(a,
			   "SELECT v.json FROM resources r JOIN resource_versions v ON v.rkey = r.rkey AND "
			   "v.version = r.version WHERE %s ORDER BY (SELECT min(norm) FROM idx_string s WHERE "
			   "s.rkey = r.rkey AND s.param = 'family'), r.rkey LIMIT $%d OFFSET $%d",
			   buf_str(&w->where), nl, no);
	struct store_rows *rows;
	rc = store_query(t, sql, w->args, w->nargs, &rows);
	w->nargs = n;
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1) {
		size_t len;
		const char *js = store_rows_blob(rows, 0, &len);
		json_t *pat;
		if (js && !mcjson_parse(js, len, &pat, NULL)) {
			json_array_append_new(w->items, profile_from_patient(pat, MC_MRN_SYSTEM));
			json_decref(pat);
		}
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

static int int_query(struct req *r, const char *name, int64_t dflt, int64_t lo, int64_t hi, int64_t *out)
{
	const char *v = req_query(r, name);
	*out = dflt;
	if (!v)
		return MC_OK;
	char *end;
	long long n = strtoll(v, &end, 10);
	if (end == v || *end || n < lo || n > hi)
		return req_fail(r, MC_EINVAL, arena_printf(r->arena, "%s: must be an integer from %lld to %lld", name,
							   (long long)lo, (long long)hi),
				NULL, json_pack("{s:s}", "field", name));
	*out = n;
	return MC_OK;
}

static void search_release(void *p)
{
	struct search_work *w = p;
	buf_release(&w->where);
}

static int h_search(struct req *r, struct reply *rep)
{
	struct search_work *w = arena_zalloc(r->arena, sizeof(*w));
	w->req = r;
	buf_init(&w->where, 8192);
	arena_defer(r->arena, search_release, w);
	r->audit.action = "search";
	r->audit.resource_type = "Patient";
	int64_t page, limit;
	int rc = int_query(r, "page", 1, 1, 1000000, &page);
	if (!rc)
		rc = int_query(r, "limit", PAGE_DEFAULT, 1, PAGE_MAX, &limit);
	if (rc)
		return rc;
	for (size_t i = 0; i < r->nquery; i++) {
		const char *k = r->query[i].key;
		if (strcmp(k, "q") && strcmp(k, "page") && strcmp(k, "limit"))
			return req_fail(r, MC_EINVAL, arena_printf(r->arena, "unknown query parameter '%.40s'", k), NULL,
					json_pack("{s:s}", "field", k));
	}
	if (compile_q(w, req_query(r, "q")))
		return req_fail(r, MC_EINVAL, "q: give a name (up to 5 words), an MRN or a birth date YYYY[-MM[-DD]]",
				NULL, json_pack("{s:s}", "field", "q"));
	rc = compile_scope(w);
	if (rc)
		return req_fail(r, rc, "this role may not list patients", NULL, NULL);
	w->limit = limit;
	w->offset = (page - 1) * limit;
	w->items = own(r, json_array());
	rc = store_read(r->app->store, search_unit, w);
	if (rc)
		return rc;
	json_t *pg = json_pack("{s:I, s:I, s:I, s:I}", "page", (json_int_t)page, "limit", (json_int_t)limit, "total",
			       (json_int_t)w->total, "totalPages", (json_int_t)((w->total + limit - 1) / limit));
	return reply_api(rep, r, 200, json_incref(w->items), pg);
}

/* ---- care team ---- */

struct team_work {
	struct req *req;
	const char *patient;
	const char *username;
	int64_t user_id;
	json_t *members;   /* out (GET) */
	bool bad_user;
};

static int team_add_unit(struct store_txn *t, void *arg)
{
	struct team_work *w = arg;
	struct fhir_stored st;
	int rc = fhir_store_read(t, w->req->arena, "Patient", w->patient, 0, &st);
	if (rc)
		return rc == MC_EGONE ? MC_ENOTFOUND : rc;
	rc = auth_patient_access(t, w->req->who, w->patient, AUTH_DEMOGRAPHICS_WRITE, NULL);
	if (rc)
		return rc;
	struct store_arg a[] = {SA_TEXT(w->username), SA_INT(w->user_id)};
	struct store_rows *rows;
	rc = store_query(t, "SELECT id, role, active FROM users WHERE username = $1 OR id = $2", a, 2, &rows);
	if (rc)
		return rc;
	int step = store_rows_next(rows);
	enum auth_role role = ROLE__COUNT;
	int64_t uid = 0;
	bool active = false;
	if (step == 1) {
		uid = store_rows_int(rows, 0);
		auth_role_parse(store_rows_text(rows, 1), &role);
		active = store_rows_int(rows, 2) != 0;
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	if (step == 0 || !active || !auth_role_is_clinician(role)) {
		w->bad_user = true;
		return MC_EINVAL;
	}
	w->user_id = uid;
	return auth_care_team_add(t, w->patient, uid, w->req->who->username);
}

static int h_team_add(struct req *r, struct reply *rep)
{
	struct team_work w = {.req = r, .patient = patient_param(r, "update"), .user_id = -1};
	if (!w.patient)
		return MC_ENOTFOUND;
	r->audit.reason = "care-team";
	json_t *body;
	int rc = req_json(r, &body);
	if (rc)
		return rc;
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v) {
		if (!strcmp(k, "username") && json_is_string(v))
			w.username = json_string_value(v);
		else if (!strcmp(k, "user_id") && json_is_integer(v))
			w.user_id = json_integer_value(v);
		else
			return req_fail(r, MC_EINVAL, arena_printf(r->arena, "%.40s: unknown field or wrong type", k), NULL,
					json_pack("{s:s}", "field", k));
	}
	if (!w.username && w.user_id < 0)
		return req_fail(r, MC_EINVAL, "give username or user_id of a clinician", NULL, NULL);
	rc = req_write(r, team_add_unit, &w);
	if (w.bad_user)
		return req_fail(r, MC_EINVAL, "the user does not exist, is disabled or is not a clinician", NULL, NULL);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "no such patient", NULL, NULL);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "this patient is not in your care", NULL, NULL);
	if (rc)
		return rc;
	return reply_api(rep, r, 201, json_pack("{s:s, s:I}", "patient", w.patient, "user_id", (json_int_t)w.user_id),
			 NULL);
}

static int team_list_unit(struct store_txn *t, void *arg)
{
	struct team_work *w = arg;
	struct fhir_stored st;
	int rc = fhir_store_read(t, w->req->arena, "Patient", w->patient, 0, &st);
	if (rc)
		return rc == MC_EGONE ? MC_ENOTFOUND : rc;
	rc = auth_patient_access(t, w->req->who, w->patient, AUTH_DEMOGRAPHICS_READ, NULL);
	if (rc)
		return rc;
	struct store_arg a[] = {SA_TEXT(w->patient)};
	struct store_rows *rows;
	rc = store_query(t,
			 "SELECT u.id, u.username, u.role, c.added_ms FROM care_team c JOIN users u ON u.id = c.user_id "
			 "WHERE c.patient_id = $1 AND c.active = 1 ORDER BY u.username",
			 a, 1, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1) {
		char ts[32];
		mctime_format_ms(store_rows_int(rows, 3), ts);
		json_array_append_new(w->members,
				      json_pack("{s:I, s:s, s:s, s:s}", "user_id", (json_int_t)store_rows_int(rows, 0),
						"username", store_rows_text(rows, 1), "role", store_rows_text(rows, 2),
						"since", ts));
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

static int h_team_list(struct req *r, struct reply *rep)
{
	struct team_work w = {.req = r, .patient = patient_param(r, "read")};
	if (!w.patient)
		return MC_ENOTFOUND;
	w.members = own(r, json_array());
	int rc = store_read(r->app->store, team_list_unit, &w);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "no such patient", NULL, NULL);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "this patient is not in your care", NULL, NULL);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_incref(w.members), NULL);
}

static const struct route routes[] = {
	{"POST", "/api/v1/patients/register", h_register, ROUTE_WRITE | ROUTE_PHI, "write:demographics", 65536,
	 "Register a patient: assigns an MRN, detects duplicates (409 unless force)"},
	{"GET", "/api/v1/patients", h_search, ROUTE_PHI, "read:demographics", 0,
	 "Find patients by name, MRN or birth date (q), paged"},
	{"GET", "/api/v1/patients/{id}/profile", h_profile_get, ROUTE_PHI, "read:demographics", 0,
	 "A patient's demographic profile"},
	{"PUT", "/api/v1/patients/{id}/profile", h_profile_put, ROUTE_WRITE | ROUTE_PHI, "write:demographics", 65536,
	 "Edit a patient's demographic profile (If-Match: W/\"version\" or body.version)"},
	{"GET", "/api/v1/patients/{id}/care-team", h_team_list, ROUTE_PHI, "read:demographics", 0,
	 "The clinicians on a patient's care team"},
	{"POST", "/api/v1/patients/{id}/care-team", h_team_add, ROUTE_WRITE | ROUTE_PHI, "manage:care_team", 4096,
	 "Add a clinician to a patient's care team"},
};

const struct route_table patients_routes = {routes, sizeof(routes) / sizeof(routes[0])};
