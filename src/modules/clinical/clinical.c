/* modules/clinical/clinical.c — shared helpers (clinical_int.h), encounters, and the route table.
 *
 * Handlers parse and check the body, build the FHIR resource, and run one unit of work that checks
 * the patient and access inside the same transaction as the write (or read), then map the result.
 */
#include "modules/clinical/clinical.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mctime.h"
#include "events/events.h"
#include "fhir/resource.h"
#include "http/app.h"
#include "modules/clinical/clinical_int.h"

/* ---- helpers ---- */

static void json_free_cb(void *p) { json_decref(p); }

json_t *clin_own(struct req *r, json_t *j)
{
	if (j)
		arena_defer(r->arena, json_free_cb, j);
	return j;
}

int clin_bad(struct req *r, const char *field, const char *msg)
{
	return req_fail(r, MC_EINVAL, arena_printf(r->arena, "%s: %s", field, msg), NULL,
			json_pack("{s:s}", "field", field));
}

int clin_err_set(struct clin_err *e, int code, const char *field, const char *msg)
{
	e->field = field;
	e->msg = msg;
	return code;
}

int clin_fail(struct req *r, int rc, const struct clin_err *e)
{
	if (rc == MC_OK)
		return MC_OK;
	if (e && e->msg) {
		if (e->field)
			return req_fail(r, rc, arena_printf(r->arena, "%s: %s", e->field, e->msg), NULL,
					json_pack("{s:s}", "field", e->field));
		return req_fail(r, rc, e->msg, NULL, NULL);
	}
	switch (rc) {
	case MC_ENOTFOUND: return req_fail(r, rc, "not found", NULL, NULL);
	case MC_EFORBIDDEN: return req_fail(r, rc, "this patient is not in your care", NULL, NULL);
	case MC_EPRECOND: return req_fail(r, rc, "changed by someone else; reload and retry", NULL, NULL);
	default: return rc;
	}
}

const char *clin_patient_param(struct req *r, const char *name, const char *action, const char *type)
{
	const char *id = req_param(r, name);
	r->audit.action = action;
	r->audit.resource_type = type;
	r->audit.patient_id = id;
	if (!id || !mcid_valid_fhir_id(id)) {
		r->audit.patient_id = NULL;
		req_fail(r, MC_ENOTFOUND, "no such patient", NULL, NULL);
		return NULL;
	}
	return id;
}

int clin_gate(struct store_txn *t, struct req *r, const char *patient, enum auth_access level, struct clin_err *e)
{
	struct fhir_stored st;
	if (!patient || !mcid_valid_fhir_id(patient))
		return clin_err_set(e, MC_ENOTFOUND, NULL, "no such patient");
	int rc = fhir_store_read(t, r->arena, "Patient", patient, 0, &st);
	if (rc == MC_ENOTFOUND || rc == MC_EGONE)
		return clin_err_set(e, MC_ENOTFOUND, NULL, "no such patient");
	if (rc)
		return rc;
	bool bg = false;
	rc = auth_patient_access(t, r->who, patient, level, &bg);
	if (rc == MC_EFORBIDDEN)
		return clin_err_set(e, rc, NULL, "this patient is not in your care");
	if (rc)
		return rc;
	if (bg)
		r->audit.reason = "break-the-glass";
	r->audit.patient_id = arena_strdup(r->arena, patient);
	return MC_OK;
}

int clin_load(struct store_txn *t, struct req *r, const char *type, const char *id, const char *what,
	      json_t **out, struct fhir_meta *m, struct clin_err *e)
{
	struct fhir_stored st;
	const char *nf = arena_printf(r->arena, "no such %s", what);
	if (!id || !mcid_valid_fhir_id(id))
		return clin_err_set(e, MC_ENOTFOUND, NULL, nf);
	int rc = fhir_store_read(t, r->arena, type, id, 0, &st);
	if (rc == MC_ENOTFOUND || rc == MC_EGONE)
		return clin_err_set(e, MC_ENOTFOUND, NULL, nf);
	if (rc)
		return rc;
	json_t *j;
	if (mcjson_parse(st.json, st.json_len, &j, NULL))
		return MC_EINTERNAL;
	*out = clin_own(r, j);
	if (m)
		*m = st.meta;
	return MC_OK;
}

int clin_check_owned(struct store_txn *t, struct req *r, const char *type, const char *id, const char *patient,
		     const char *field, json_t **out, struct clin_err *e)
{
	struct fhir_meta m;
	json_t *j;
	int rc = clin_load(t, r, type, id, field, &j, &m, e);
	if (rc == MC_ENOTFOUND)
		return clin_err_set(e, MC_EINVAL, field, arena_printf(r->arena, "no such %s", type));
	if (rc)
		return rc;
	if (strcmp(m.patient_id, patient))
		return clin_err_set(e, MC_EINVAL, field, arena_printf(r->arena, "the %s belongs to another patient", type));
	if (out)
		*out = j;
	return MC_OK;
}

int clin_validate(struct req *r, const json_t *res, const char *type)
{
	struct fhir_issues is;
	if (fhir_validate(res, type, &is) == MC_OK)
		return MC_OK;
	json_t *d = json_array();
	for (size_t i = 0; i < is.n; i++)
		json_array_append_new(d, json_pack("{s:s, s:s}", "path", is.v[i].path, "message", is.v[i].msg));
	return req_fail(r, MC_EINVAL, is.n ? arena_strdup(r->arena, is.v[0].msg) : "invalid resource",
			is.n ? arena_strdup(r->arena, is.v[0].path) : NULL, json_pack("{s:o}", "issues", d));
}

const char *clin_now(struct req *r)
{
	char ts[32];
	mctime_format_ms(mctime_now_ms(), ts);
	return arena_strdup(r->arena, ts);
}

int clin_str_field(struct req *r, const json_t *obj, const char *field, bool required, size_t max, const char **out)
{
	json_t *v = json_object_get(obj, field);
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return clin_bad(r, field, "is required");
		return MC_OK;
	}
	if (!json_is_string(v))
		return clin_bad(r, field, "must be a string");
	size_t n = json_string_length(v);
	if (n > max)
		return clin_bad(r, field, arena_printf(r->arena, "at most %zu characters", max));
	if (required && n == 0)
		return clin_bad(r, field, "must not be empty");
	/* FHIR strings may not be whitespace-only; treat such values as absent */
	const char *s = json_string_value(v);
	if (s[strspn(s, " \t\r\n")] == '\0') {
		if (required)
			return clin_bad(r, field, "must not be empty");
		return MC_OK;
	}
	if (strlen(s) != n)
		return clin_bad(r, field, "must not contain NUL characters");
	*out = s;
	return MC_OK;
}

int clin_date_field(struct req *r, const json_t *obj, const char *field, bool required, bool past_only,
		    const char **out, int64_t *ms)
{
	int rc = clin_str_field(r, obj, field, required, 40, out);
	if (rc || !*out)
		return rc;
	int64_t lo, hi;
	if (mctime_parse_fhir(*out, &lo, &hi, NULL))
		return clin_bad(r, field, "must be a date YYYY[-MM[-DD]] or a dateTime with time zone");
	if (strchr(*out, 'T') && !strchr(*out + 10, 'Z') && !strchr(*out + 10, '+') && !strchr(*out + 10, '-'))
		return clin_bad(r, field, "a dateTime needs a time zone (Z or +hh:mm)");
	if (past_only && lo > mctime_now_ms() + CLIN_FUTURE_SLACK_MS)
		return clin_bad(r, field, "must not be in the future");
	if (ms)
		*ms = lo;
	return MC_OK;
}

int clin_known_fields(struct req *r, const json_t *obj, const char *const *allowed)
{
	if (!json_is_object(obj))
		return req_fail(r, MC_EINVAL, "the body must be a JSON object", NULL, NULL);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = !strcmp(k, allowed[i]);
		if (!ok)
			return req_fail(r, MC_EINVAL, arena_printf(r->arena, "unknown field '%.40s'", k), NULL,
					json_pack("{s:s}", "field", k));
	}
	return MC_OK;
}

json_t *clin_ref(const char *type, const char *id)
{
	char buf[160];
	snprintf(buf, sizeof(buf), "%s/%s", type, id);
	return json_pack("{s:s}", "reference", buf);
}

json_t *clin_concept(const char *system, const char *code, const char *display, const char *text)
{
	json_t *c = json_object();
	if (code)
		json_object_set_new(c, "coding",
				    json_pack("[{s:s*, s:s, s:s*}]", "system", system, "code", code, "display", display));
	if (text)
		json_object_set_new(c, "text", json_string(text));
	return c;
}

int clin_event(struct store_txn *t, const char *name, const struct fhir_meta *m)
{
	json_t *p = json_pack("{s:s, s:I}", "patient_id", m->patient_id, "version", (json_int_t)m->version);
	return events_emit(t, name, m->patient_id[0] ? m->patient_id : NULL, m->type, m->id, p);
}

bool clin_notes_role(const struct auth_principal *p)
{
	return p && (p->role == ROLE_DOCTOR || p->role == ROLE_NURSE);
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
		return clin_bad(r, name, arena_printf(r->arena, "must be an integer from %lld to %lld", (long long)lo,
						      (long long)hi));
	*out = n;
	return MC_OK;
}

int clin_paging(struct req *r, const char *const *extra, int64_t *page, int64_t *limit)
{
	*page = 1;
	*limit = CLIN_PAGE_DEFAULT;
	for (size_t i = 0; i < r->nquery; i++) {
		const char *k = r->query[i].key;
		bool ok = !strcmp(k, "page") || !strcmp(k, "limit");
		for (size_t j = 0; extra && extra[j] && !ok; j++)
			ok = !strcmp(k, extra[j]);
		if (!ok)
			return req_fail(r, MC_EINVAL, arena_printf(r->arena, "unknown query parameter '%.40s'", k), NULL,
					json_pack("{s:s}", "field", k));
	}
	int rc = int_query(r, "page", 1, 1, 1000000, page);
	return rc ? rc : int_query(r, "limit", CLIN_PAGE_DEFAULT, 1, CLIN_PAGE_MAX, limit);
}

json_t *clin_pagination(int64_t page, int64_t limit, int64_t total)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "page", (json_int_t)page, "limit", (json_int_t)limit, "total",
			 (json_int_t)total, "totalPages", (json_int_t)((total + limit - 1) / limit));
}

int clin_create_unit(struct store_txn *t, void *arg)
{
	struct clin_create *c = arg;
	int rc = clin_gate(t, c->req, c->patient, c->level, &c->err);
	if (!rc && c->prep)
		rc = c->prep(t, c);
	if (!rc)
		rc = fhir_store_create(t, c->type, c->res, &c->meta);
	if (rc)
		return rc;
	c->req->audit.resource_id = arena_strdup(c->req->arena, c->meta.id);
	return c->event ? clin_event(t, c->event, &c->meta) : MC_OK;
}

int clin_create_reply(struct req *r, struct reply *rep, struct clin_create *c, json_t *(*view)(const json_t *res))
{
	int rc = clin_validate(r, c->res, c->type);
	if (rc)
		return rc;
	c->req = r;
	r->audit.action = "create";
	r->audit.resource_type = c->type;
	rc = clin_fail(r, req_write(r, clin_create_unit, c), &c->err);
	if (rc)
		return rc;
	reply_header(rep, r, "Location", arena_printf(r->arena, "/fhir/%s/%s", c->type, c->meta.id));
	return reply_api(rep, r, 201, view ? view(c->res) : json_incref(c->res), NULL);
}

/* ---- listing ---- */

struct list_work {
	struct req *req;
	const char *patient, *type, *extra;
	enum auth_access level;
	int64_t limit, offset, total;
	json_t *items;
	json_t *(*view)(const json_t *res);
	struct clin_err err;
};

static int list_unit(struct store_txn *t, void *arg)
{
	struct list_work *w = arg;
	int rc = clin_gate(t, w->req, w->patient, w->level, &w->err);
	if (rc)
		return rc;
	const char *extra = w->extra ? w->extra : "";
	struct store_arg a[] = {SA_TEXT(w->patient), SA_TEXT(w->type), SA_INT(w->limit), SA_INT(w->offset)};
	rc = store_query_int(t,
			     arena_printf(w->req->arena,
					  "SELECT count(*) FROM resources r WHERE r.patient_id = $1 AND r.type = $2 AND "
					  "r.deleted = 0%s",
					  extra),
			     a, 2, &w->total);
	if (rc)
		return rc;
	struct store_rows *rows;
	rc = store_query(t,
			 arena_printf(w->req->arena,
				      "SELECT v.json FROM resources r JOIN resource_versions v ON v.rkey = r.rkey AND "
				      "v.version = r.version WHERE r.patient_id = $1 AND r.type = $2 AND r.deleted = 0%s "
				      "ORDER BY r.rkey DESC LIMIT $3 OFFSET $4",
				      extra),
			 a, 4, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1) {
		size_t len;
		const char *js = store_rows_blob(rows, 0, &len);
		json_t *j;
		if (!js || mcjson_parse(js, len, &j, NULL))
			continue;
		json_array_append_new(w->items, w->view ? w->view(j) : json_incref(j));
		json_decref(j);
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

int clin_list_reply(struct req *r, struct reply *rep, const char *patient, enum auth_access level, const char *type,
		    const char *extra_where, json_t *(*view)(const json_t *res))
{
	struct list_work w = {.req = r, .patient = patient, .type = type, .extra = extra_where, .level = level,
			      .view = view};
	int64_t page, limit;
	int rc = clin_paging(r, NULL, &page, &limit);
	if (rc)
		return rc;
	r->audit.action = "search";
	r->audit.resource_type = type;
	w.limit = limit;
	w.offset = (page - 1) * limit;
	w.items = clin_own(r, json_array());
	rc = clin_fail(r, store_read(r->app->store, list_unit, &w), &w.err);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_incref(w.items), clin_pagination(page, limit, w.total));
}

/* ---- encounters ---- */

#define ACT_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-ActCode"

static const struct {
	const char *code, *display, *alias;
} enc_classes[] = {
	{"AMB", "ambulatory", "ambulatory"},   {"EMER", "emergency", "emergency"},
	{"IMP", "inpatient encounter", "inpatient"}, {"HH", "home health", "home"},
	{"VR", "virtual", "virtual"},          {"SS", "short stay", "short-stay"},
	{"OBSENC", "observation encounter", "observation"},
};

struct enc_open {
	struct req *req;                 /* NULL when called from scheduling */
	const char *patient, *appointment, *practitioner, *class_code, *class_display, *reason;
	int64_t user_id;                 /* the opener joins the care team (0: none) */
	const char *added_by;
	bool via_appointment_ok;         /* HTTP: allowed through an appointment naming the caller */
	json_t *res;                     /* out: the Encounter (owned by caller: decref) */
	struct fhir_meta meta;           /* out */
	bool existing;                   /* out: already open for that appointment */
	struct clin_err err;
};

/* Does the Appointment name Practitioner/<pid> as a participant? */
static bool appointment_names(const json_t *appt, const char *pid)
{
	char ref[96];
	snprintf(ref, sizeof(ref), "Practitioner/%s", pid);
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(appt, "participant"), i, p) {
		const char *s = mcjson_str(json_object_get(p, "actor"), "reference");
		if (s && !strcmp(s, ref))
			return true;
	}
	return false;
}

/* The Encounter already open for appointment, if any: its id into out (65 bytes). */
static int open_for_appointment(struct store_txn *t, const char *patient, const char *appt, char out[65])
{
	struct store_arg a[] = {SA_TEXT(patient), SA_TEXT(appt)};
	char *id = NULL;
	int rc = store_query_text(t,
				  "SELECT r.id FROM resources r WHERE r.type = 'Encounter' AND r.deleted = 0 AND "
				  "r.patient_id = $1 AND r.rkey IN (SELECT rkey FROM idx_ref WHERE param = 'appointment' "
				  "AND ref_id = $2) AND r.rkey IN (SELECT rkey FROM idx_token WHERE param = 'status' AND "
				  "code = 'in-progress') ORDER BY r.rkey LIMIT 1",
				  a, 2, &id);
	if (rc == MC_OK)
		snprintf(out, 65, "%s", id);
	free(id);
	return rc;
}

/* Every active clinician user linked to the Practitioner joins the care team. */
static int team_add_practitioner(struct store_txn *t, const char *patient, const char *pid, const char *by)
{
	struct store_arg a[] = {SA_TEXT(pid)};
	struct store_rows *rows;
	int rc = store_query(t, "SELECT id, role FROM users WHERE practitioner_id = $1 AND active = 1 ORDER BY id LIMIT 50",
			     a, 1, &rows);
	if (rc)
		return rc;
	int64_t ids[50];
	size_t n = 0;
	int step;
	while ((step = store_rows_next(rows)) == 1) {
		enum auth_role role;
		if (!auth_role_parse(store_rows_text(rows, 1), &role) && auth_role_is_clinician(role) && n < 50)
			ids[n++] = store_rows_int(rows, 0);
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	for (size_t i = 0; i < n && !rc; i++)
		rc = auth_care_team_add(t, patient, ids[i], by);
	return rc;
}

static int encounter_open(struct store_txn *t, struct enc_open *o)
{
	struct fhir_stored st;
	struct arena *tmp = o->req ? NULL : arena_create();
	struct arena *a = o->req ? o->req->arena : tmp;
	int rc = fhir_store_read(t, a, "Patient", o->patient, 0, &st);
	if (rc == MC_ENOTFOUND || rc == MC_EGONE)
		rc = clin_err_set(&o->err, MC_ENOTFOUND, NULL, "no such patient");
	bool need_appt_check = false;   /* HTTP caller not in care: the appointment must name them */
	if (!rc && o->req) {
		rc = auth_patient_access(t, o->req->who, o->patient, AUTH_CLINICAL_WRITE, NULL);
		if (rc == MC_EFORBIDDEN && o->via_appointment_ok) {
			rc = MC_OK;
			need_appt_check = true;
		} else if (rc == MC_EFORBIDDEN) {
			rc = clin_err_set(&o->err, rc, NULL, "this patient is not in your care");
		}
	}
	if (!rc && o->appointment) {
		rc = fhir_store_read(t, a, "Appointment", o->appointment, 0, &st);
		if (rc == MC_ENOTFOUND || rc == MC_EGONE)
			rc = clin_err_set(&o->err, o->req ? MC_EINVAL : MC_ENOTFOUND, "appointment", "no such appointment");
		else if (!rc && strcmp(st.meta.patient_id, o->patient))
			rc = clin_err_set(&o->err, MC_EINVAL, "appointment", "the appointment is for another patient");
		if (!rc && need_appt_check) {
			json_t *appt = NULL;
			bool names = !mcjson_parse(st.json, st.json_len, &appt, NULL) && o->practitioner &&
				     appointment_names(appt, o->practitioner);
			json_decref(appt);
			rc = names ? MC_OK : clin_err_set(&o->err, MC_EFORBIDDEN, NULL, "this patient is not in your care");
		}
		char open_id[65];
		int rc2 = rc ? rc : open_for_appointment(t, o->patient, o->appointment, open_id);
		if (!rc && rc2 == MC_OK) {
			rc = fhir_store_read(t, a, "Encounter", open_id, 0, &st);
			if (!rc && mcjson_parse(st.json, st.json_len, &o->res, NULL))
				rc = MC_EINTERNAL;
			if (!rc) {
				o->meta = st.meta;
				o->existing = true;
			}
		} else if (!rc && rc2 != MC_ENOTFOUND) {
			rc = rc2;
		}
	}
	arena_destroy(tmp);
	if (rc || o->existing)
		return rc;

	char now[32];
	mctime_format_ms(mctime_now_ms(), now);
	json_t *e = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:o, s:{s:s}}", "resourceType", "Encounter", "status",
			      "in-progress", "class", "system", ACT_SYSTEM, "code", o->class_code, "display",
			      o->class_display, "subject", clin_ref("Patient", o->patient), "period", "start", now);
	if (o->practitioner && o->practitioner[0])
		json_object_set_new(e, "participant", json_pack("[{s:o}]", "individual", clin_ref("Practitioner", o->practitioner)));
	if (o->appointment)
		json_object_set_new(e, "appointment", json_pack("[o]", clin_ref("Appointment", o->appointment)));
	if (o->reason)
		json_object_set_new(e, "reasonCode", json_pack("[{s:s}]", "text", o->reason));
	o->res = e;
	struct fhir_issues is;
	if (fhir_validate(e, "Encounter", &is))
		return clin_err_set(&o->err, MC_EINVAL, NULL, "the encounter is not valid FHIR");
	rc = fhir_store_create(t, "Encounter", e, &o->meta);
	if (!rc && o->practitioner && o->practitioner[0])
		rc = team_add_practitioner(t, o->patient, o->practitioner, o->added_by);
	if (!rc && o->user_id > 0)
		rc = auth_care_team_add(t, o->patient, o->user_id, o->added_by);
	if (!rc)
		rc = clin_event(t, "encounter.started", &o->meta);
	return rc;
}

int clinical_encounter_open_txn(struct store_txn *t, const char *patient_id, const char *appointment_id,
				const char *practitioner_id, struct fhir_meta *out)
{
	if (!patient_id || !mcid_valid_fhir_id(patient_id) ||
	    (appointment_id && appointment_id[0] && !mcid_valid_fhir_id(appointment_id)) ||
	    (practitioner_id && practitioner_id[0] && !mcid_valid_fhir_id(practitioner_id)))
		return MC_EINVAL;
	struct enc_open o = {.patient = patient_id,
			     .appointment = appointment_id && appointment_id[0] ? appointment_id : NULL,
			     .practitioner = practitioner_id && practitioner_id[0] ? practitioner_id : NULL,
			     .class_code = "AMB", .class_display = "ambulatory", .added_by = "check-in"};
	int rc = encounter_open(t, &o);
	json_decref(o.res);
	if (!rc && out)
		*out = o.meta;
	return rc;
}

static int encounter_open_unit(struct store_txn *t, void *arg)
{
	struct enc_open *o = arg;
	int rc = encounter_open(t, o);
	clin_own(o->req, o->res);
	if (!rc) {
		o->req->audit.resource_id = arena_strdup(o->req->arena, o->meta.id);
		o->req->audit.patient_id = arena_strdup(o->req->arena, o->patient);
	}
	return rc;
}

int clin_h_encounter_open(struct req *r, struct reply *rep)
{
	static const char *const fields[] = {"patient", "appointment", "class", "reason", NULL};
	r->audit.action = "create";
	r->audit.resource_type = "Encounter";
	const struct auth_principal *p = r->who;
	if (!p || !(p->role == ROLE_DOCTOR || p->role == ROLE_NURSE || p->role == ROLE_INTEGRATION))
		return req_fail(r, MC_EFORBIDDEN, "only doctors and nurses open encounters", NULL, NULL);
	json_t *body;
	int rc = req_json(r, &body);
	if (!rc)
		rc = clin_known_fields(r, body, fields);
	struct enc_open o = {.req = r, .class_code = "AMB", .class_display = "ambulatory"};
	const char *cls = NULL;
	if (!rc)
		rc = clin_str_field(r, body, "patient", true, 64, &o.patient);
	if (!rc)
		rc = clin_str_field(r, body, "appointment", false, 64, &o.appointment);
	if (!rc)
		rc = clin_str_field(r, body, "class", false, 32, &cls);
	if (!rc)
		rc = clin_str_field(r, body, "reason", false, CLIN_TEXT_MAX, &o.reason);
	if (rc)
		return rc;
	if (!mcid_valid_fhir_id(o.patient))
		return req_fail(r, MC_ENOTFOUND, "no such patient", NULL, NULL);
	r->audit.patient_id = o.patient;
	if (o.appointment && !mcid_valid_fhir_id(o.appointment))
		return clin_bad(r, "appointment", "no such appointment");
	if (cls) {
		bool found = false;
		for (size_t i = 0; i < sizeof(enc_classes) / sizeof(enc_classes[0]) && !found; i++) {
			if (!strcasecmp(cls, enc_classes[i].code) || !strcasecmp(cls, enc_classes[i].alias)) {
				o.class_code = enc_classes[i].code;
				o.class_display = enc_classes[i].display;
				found = true;
			}
		}
		if (!found)
			return clin_bad(r, "class", "one of AMB (ambulatory), EMER (emergency), IMP (inpatient), HH (home), "
						    "VR (virtual), SS (short-stay), OBSENC (observation)");
	}
	o.practitioner = p->practitioner_id[0] ? p->practitioner_id : NULL;
	o.via_appointment_ok = o.appointment && o.practitioner;
	if (auth_role_is_clinician(p->role))
		o.user_id = p->user_id;
	o.added_by = p->username;
	rc = clin_fail(r, req_write(r, encounter_open_unit, &o), &o.err);
	if (rc)
		return rc;
	reply_header(rep, r, "Location", arena_printf(r->arena, "/fhir/Encounter/%s", o.meta.id));
	return reply_api(rep, r, o.existing ? 200 : 201, json_incref(o.res), NULL);
}

struct enc_work {
	struct req *req;
	const char *id, *end;
	int64_t end_ms;
	json_t *res;
	struct fhir_meta meta;
	struct clin_err err;
};

static int encounter_finish_unit(struct store_txn *t, void *arg)
{
	struct enc_work *w = arg;
	int rc = clin_load(t, w->req, "Encounter", w->id, "encounter", &w->res, &w->meta, &w->err);
	if (!rc)
		rc = clin_gate(t, w->req, w->meta.patient_id, AUTH_CLINICAL_WRITE, &w->err);
	if (rc)
		return rc;
	const char *st = mcjson_str(w->res, "status");
	if (!st || (strcmp(st, "in-progress") && strcmp(st, "arrived") && strcmp(st, "triaged") && strcmp(st, "onleave")))
		return clin_err_set(&w->err, MC_ECONFLICT, NULL,
				    arena_printf(w->req->arena, "the encounter is not open (status %s)", st ? st : "none"));
	json_t *period = json_object_get(w->res, "period");
	if (!json_is_object(period)) {
		period = json_object();
		json_object_set_new(w->res, "period", period);
	}
	int64_t lo, hi;
	const char *start = mcjson_str(period, "start");
	if (start && !mctime_parse_fhir(start, &lo, &hi, NULL) && w->end_ms < lo)
		return clin_err_set(&w->err, MC_EINVAL, "end", "must not be before the encounter's start");
	json_object_set_new(period, "end", json_string(w->end));
	json_object_set_new(w->res, "status", json_string("finished"));
	bool created;
	rc = fhir_store_update(t, "Encounter", w->id, w->res, w->meta.version, &w->meta, &created);
	if (rc)
		return rc;
	w->req->audit.resource_id = w->id;
	return clin_event(t, "encounter.finished", &w->meta);
}

int clin_h_encounter_finish(struct req *r, struct reply *rep)
{
	static const char *const fields[] = {"end", NULL};
	struct enc_work w = {.req = r, .id = req_param(r, "id")};
	r->audit.action = "update";
	r->audit.resource_type = "Encounter";
	r->audit.resource_id = w.id;
	int rc;
	if (r->body && r->body_len) {
		json_t *body;
		rc = req_json(r, &body);
		if (!rc)
			rc = clin_known_fields(r, body, fields);
		if (!rc)
			rc = clin_date_field(r, body, "end", false, true, &w.end, &w.end_ms);
		if (rc)
			return rc;
		if (w.end && !strchr(w.end, 'T'))
			return clin_bad(r, "end", "must be a dateTime with a time zone");
	}
	if (!w.end) {
		w.end = clin_now(r);
		w.end_ms = mctime_now_ms();
	}
	rc = clin_fail(r, req_write(r, encounter_finish_unit, &w), &w.err);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_incref(w.res), NULL);
}

static int encounter_get_unit(struct store_txn *t, void *arg)
{
	struct enc_work *w = arg;
	int rc = clin_load(t, w->req, "Encounter", w->id, "encounter", &w->res, &w->meta, &w->err);
	return rc ? rc : clin_gate(t, w->req, w->meta.patient_id, AUTH_CLINICAL_READ, &w->err);
}

int clin_h_encounter_get(struct req *r, struct reply *rep)
{
	struct enc_work w = {.req = r, .id = req_param(r, "id")};
	r->audit.action = "read";
	r->audit.resource_type = "Encounter";
	r->audit.resource_id = w.id;
	int rc = clin_fail(r, store_read(r->app->store, encounter_get_unit, &w), &w.err);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_incref(w.res), NULL);
}

int clin_h_encounter_list(struct req *r, struct reply *rep)
{
	const char *pid = clin_patient_param(r, "id", "search", "Encounter");
	if (!pid)
		return MC_ENOTFOUND;
	return clin_list_reply(r, rep, pid, AUTH_CLINICAL_READ, "Encounter", NULL, NULL);
}

/* ---- the route table ---- */

#define RW (ROUTE_WRITE | ROUTE_PHI)
#define RP ROUTE_PHI
static const struct route routes[] = {
	{"POST", "/api/v1/encounters", clin_h_encounter_open, RW, "write:patient_data", 8192,
	 "Open an encounter (in-progress); the clinician joins the care team"},
	{"GET", "/api/v1/encounters/{id}", clin_h_encounter_get, RP, "read:patient_data", 0, "An encounter"},
	{"PUT", "/api/v1/encounters/{id}/finish", clin_h_encounter_finish, RW, "write:patient_data", 1024,
	 "Finish an open encounter (end defaults to now)"},
	{"GET", "/api/v1/patients/{id}/encounters", clin_h_encounter_list, RP, "read:patient_data", 0,
	 "A patient's encounters, newest first"},
	{"POST", "/api/v1/consultations", clin_h_note_create, RW, "write:patient_data", 131072,
	 "Write a consultation note (SOAP Composition, preliminary)"},
	{"GET", "/api/v1/consultations/{id}", clin_h_note_get, RP, "read:patient_data", 0, "A consultation note"},
	{"PUT", "/api/v1/consultations/{id}", clin_h_note_amend, RW, "write:patient_data", 131072,
	 "Edit a draft or amend a signed note (new version; reason required once signed)"},
	{"POST", "/api/v1/consultations/{id}/sign", clin_h_note_sign, RW, "write:patient_data", 0,
	 "Sign a note (author only): status final, attester"},
	{"GET", "/api/v1/consultations/{id}/_history", clin_h_note_history, RP, "read:patient_data", 0,
	 "Every version of a note, newest first"},
	{"GET", "/api/v1/consultations/patient/{patientId}", clin_h_note_list, RP, "read:patient_data", 0,
	 "A patient's consultation notes, newest first"},
	{"GET", "/api/v1/icd10", clin_h_icd10, 0, "self", 0, "Search the ICD-10-CM subset (q: code or title words)"},
	{"POST", "/api/v1/patients/{id}/conditions", clin_h_condition_add, RW, "write:patient_data", 16384,
	 "Record a diagnosis (ICD-10-CM Condition)"},
	{"GET", "/api/v1/patients/{id}/conditions", clin_h_condition_list, RP, "read:patient_data", 0,
	 "A patient's conditions"},
	{"GET", "/api/v1/patients/{id}/problems", clin_h_problems, RP, "read:patient_data", 0,
	 "The problem list: active problem-list-item conditions"},
	{"POST", "/api/v1/patients/{id}/allergies", clin_h_allergy_add, RW, "write:patient_data", 16384,
	 "Record an allergy or intolerance"},
	{"GET", "/api/v1/patients/{id}/allergies", clin_h_allergy_list, RP, "read:patient_data", 0,
	 "A patient's allergies and intolerances"},
	{"POST", "/api/v1/patients/{id}/care-plans", clin_h_careplan_add, RW, "write:patient_data", 65536,
	 "Create a care plan with activities"},
	{"GET", "/api/v1/patients/{id}/care-plans", clin_h_careplan_list, RP, "read:patient_data", 0,
	 "A patient's care plans"},
	{"POST", "/api/v1/patients/{id}/family-members", clin_h_family_add, RW, "write:patient_data", 16384,
	 "Record a family member's history (and an emergency contact)"},
	{"GET", "/api/v1/patients/{id}/family-members", clin_h_family_list, RP, "read:patient_data", 0,
	 "A patient's family history"},
	{"POST", "/api/v1/patients/{id}/coverage", clin_h_coverage_add, RW, "write:demographics", 16384,
	 "Record insurance coverage"},
	{"GET", "/api/v1/patients/{id}/coverage", clin_h_coverage_list, RP, "read:demographics", 0,
	 "A patient's insurance coverage"},
	{"GET", "/api/v1/patients/{id}/medical-history", clin_h_history, RP, "read:patient_data", 0,
	 "The patient's timeline across encounters, diagnoses, allergies, notes, plans, orders and results"},
};
#undef RW
#undef RP

const struct route_table clinical_routes = {routes, sizeof(routes) / sizeof(routes[0])};

int clin_period_fields(struct req *r, const json_t *obj, const char **start, const char **end)
{
	int64_t s_ms = 0, e_ms = 0;
	int rc = clin_date_field(r, obj, "start", false, false, start, &s_ms);
	if (!rc)
		rc = clin_date_field(r, obj, "end", false, false, end, &e_ms);
	if (!rc && *start && *end && e_ms < s_ms)
		rc = clin_bad(r, "end", "must not be before start");
	return rc;
}
