/* modules/lab/lab.c — lab orders, specimens, results with computed interpretation, critical-result
 * acknowledgement, a patient's results. See lab.h for the record, access rules, errors, events.
 */
#include "modules/lab/lab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mctime.h"
#include "events/events.h"
#include "fhir/resource.h"
#include "fhir/store.h"
#include "http/app.h"
#include "modules/lab/loinc.h"
#include "modules/medications/modutil.h"
#include "store/store.h"

/* ---- shared ---- */

static bool is_orderer(const struct req *r)
{
	return r->who->role == ROLE_DOCTOR || r->who->role == ROLE_NURSE || r->who->role == ROLE_INTEGRATION;
}

static bool is_lab(const struct req *r)
{
	return r->who->role == ROLE_LAB_TECH || r->who->role == ROLE_INTEGRATION;
}

/* Lab technicians reach a patient through a lab order for them; everyone else through
 * auth_patient_access. On refusal records the 403. */
static int lab_patient_gate(struct store_txn *t, struct req *r, const char *pid, enum auth_access what)
{
	if (r->who->role == ROLE_LAB_TECH) {
		struct store_arg a[] = {SA_TEXT(pid)};
		int64_t one;
		int rc = store_query_int(t, "SELECT 1 FROM lab_order WHERE patient_id = $1 LIMIT 1", a, 1, &one);
		if (rc == MC_ENOTFOUND)
			return req_fail(r, MC_EFORBIDDEN, "this patient has no lab order", NULL, NULL);
		return rc;
	}
	bool bg = false;
	int rc = auth_patient_access(t, r->who, pid, what, &bg);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "this patient is not in your care", NULL, NULL);
	if (rc == MC_OK && bg)
		r->audit.reason = "break-the-glass";
	return rc;
}

static json_t *ref(struct req *r, const char *type, const char *id)
{
	return json_pack("{s:s}", "reference", arena_printf(r->arena, "%s/%s", type, id));
}

static json_t *requester_ref(struct req *r)
{
	if (r->who->practitioner_id[0])
		return ref(r, "Practitioner", r->who->practitioner_id);
	return json_pack("{s:s}", "display", r->who->username);
}

/* A FHIR decimal from a table limit ("%g" keeps 3.5, 136, 0.04, 1.005 exact). */
static json_t *dec(double v)
{
	char s[32];
	snprintf(s, sizeof(s), "%g", v);
	return mcjson_decimal(s);
}

/* Milliseconds as minutes with one decimal (a JSON number). */
static json_t *minutes(int64_t ms)
{
	char s[32];
	snprintf(s, sizeof(s), "%.1f", (double)ms / 60000.0);
	return mcjson_decimal(s);
}

static json_t *quantity(double v, const char *unit)
{
	return json_pack("{s:o, s:s, s:s, s:s}", "value", dec(v), "unit", unit, "system", UCUM_SYSTEM, "code", unit);
}

struct order_row {
	char id[65], patient[65], priority[16], status[16], specimen[65], report[65], report_status[16];
	int64_t ordered_ms, final_ms;
	bool has_final;
};

/* The lab_order row of id: MC_ENOTFOUND when none. */
static int order_load(struct store_txn *t, const char *id, struct order_row *o)
{
	struct store_arg a[] = {SA_TEXT(id)};
	struct store_rows *rows;
	int rc = store_query(t,
			     "SELECT order_id, patient_id, priority, status, specimen_id, report_id, report_status, ordered_ms, "
			     "final_ms FROM lab_order WHERE order_id = $1",
			     a, 1, &rows);
	if (rc)
		return rc;
	int step = store_rows_next(rows);
	if (step == 1) {
		memset(o, 0, sizeof(*o));
		const char *v;
		snprintf(o->id, sizeof(o->id), "%s", (v = store_rows_text(rows, 0)) ? v : "");
		snprintf(o->patient, sizeof(o->patient), "%s", (v = store_rows_text(rows, 1)) ? v : "");
		snprintf(o->priority, sizeof(o->priority), "%s", (v = store_rows_text(rows, 2)) ? v : "");
		snprintf(o->status, sizeof(o->status), "%s", (v = store_rows_text(rows, 3)) ? v : "");
		snprintf(o->specimen, sizeof(o->specimen), "%s", (v = store_rows_text(rows, 4)) ? v : "");
		snprintf(o->report, sizeof(o->report), "%s", (v = store_rows_text(rows, 5)) ? v : "");
		snprintf(o->report_status, sizeof(o->report_status), "%s", (v = store_rows_text(rows, 6)) ? v : "");
		o->ordered_ms = store_rows_int(rows, 7);
		o->has_final = !store_rows_null(rows, 8);
		o->final_ms = store_rows_int(rows, 8);
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	return step == 1 ? MC_OK : MC_ENOTFOUND;
}

struct order_test {
	char loinc[20], request[65], observation[65];
};

static int tests_load(struct store_txn *t, const char *order, struct order_test *out, size_t *n)
{
	struct store_arg a[] = {SA_TEXT(order)};
	struct store_rows *rows;
	*n = 0;
	int rc = store_query(t, "SELECT loinc, request_id, observation_id FROM lab_order_test WHERE order_id = $1 ORDER BY loinc",
			     a, 1, &rows);
	if (rc)
		return rc;
	int step;
	while (*n < LAB_TESTS_MAX && (step = store_rows_next(rows)) == 1) {
		const char *v;
		struct order_test *o = &out[(*n)++];
		snprintf(o->loinc, sizeof(o->loinc), "%s", (v = store_rows_text(rows, 0)) ? v : "");
		snprintf(o->request, sizeof(o->request), "%s", (v = store_rows_text(rows, 1)) ? v : "");
		snprintf(o->observation, sizeof(o->observation), "%s", (v = store_rows_text(rows, 2)) ? v : "");
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

/* Set status on every ServiceRequest of the order (new versions). */
static int requests_set_status(struct store_txn *t, struct req *r, const struct order_test *tests, size_t n,
			       const char *status, const char *reason)
{
	for (size_t i = 0; i < n; i++) {
		json_t *sr;
		struct fhir_meta m;
		int rc = mu_read(t, r, "ServiceRequest", tests[i].request, &sr, &m);
		if (rc)
			return rc == MC_ENOTFOUND ? MC_EINTERNAL : rc;
		const char *cur = mcjson_str(sr, "status");
		if (cur && !strcmp(cur, status))
			continue;
		json_object_set_new(sr, "status", json_string(status));
		if (reason && *reason)
			json_object_set_new(sr, "note", json_pack("[{s:s}]", "text", reason));
		bool created;
		if ((rc = fhir_store_update(t, "ServiceRequest", tests[i].request, sr, m.version, &m, &created)))
			return rc;
	}
	return MC_OK;
}

static const char *order_param(struct req *r, const char *action)
{
	const char *id = req_param(r, "id");
	r->audit.action = action;
	r->audit.resource_type = "ServiceRequest";
	r->audit.resource_id = id;
	if (!id || !mcid_valid_fhir_id(id)) {
		req_fail(r, MC_ENOTFOUND, "no such lab order", NULL, NULL);
		return NULL;
	}
	return id;
}

static int json_body(struct req *r, const char *const *keys, json_t **body)
{
	int rc = req_json(r, body);
	if (rc)
		return rc;
	if (!json_is_object(*body))
		return req_fail(r, MC_EINVAL, "the body must be a JSON object", NULL, NULL);
	return mu_known_keys(r, *body, "", keys);
}

/* ---- POST /api/v1/lab-orders ---- */

struct ord_work {
	struct req *req;
	const char *patient, *encounter, *priority;
	const struct loinc_test *tests[LAB_TESTS_MAX];
	char requests[LAB_TESTS_MAX][65];   /* out */
	size_t n;
	char id[MCID_LEN + 1];
};

static int order_unit(struct store_txn *t, void *arg)
{
	struct ord_work *w = arg;
	struct req *r = w->req;
	json_t *pat, *enc;
	int rc = mu_read(t, r, "Patient", w->patient, &pat, NULL);
	if (rc == MC_ENOTFOUND)
		return mu_field_fail(r, MC_EUNPROC, "patient", "no such patient");
	if (rc || (rc = lab_patient_gate(t, r, w->patient, AUTH_CLINICAL_WRITE)))
		return rc;
	if (w->encounter) {
		rc = mu_read(t, r, "Encounter", w->encounter, &enc, NULL);
		if (rc == MC_ENOTFOUND || (rc == MC_OK && !mu_ref_is(json_object_get(enc, "subject"), "Patient", w->patient)))
			return mu_field_fail(r, MC_EUNPROC, "encounter", "no such encounter for this patient");
		if (rc)
			return rc;
	}
	int64_t now_ms = mctime_now_ms();
	char now[32];
	mctime_format_ms(now_ms, now);
	struct store_arg a[] = {SA_TEXT(w->id), SA_TEXT(w->patient), SA_INT(r->who->user_id), SA_TEXT(w->priority),
				SA_INT(now_ms)};
	if ((rc = store_exec(t,
			     "INSERT INTO lab_order(order_id, patient_id, ordered_by, priority, status, ordered_ms, updated_ms) "
			     "VALUES($1, $2, $3, $4, 'active', $5, $5)",
			     a, 5)))
		return rc;
	json_t *ids = mu_own(r, json_array()), *codes = mu_own(r, json_array());
	for (size_t i = 0; i < w->n; i++) {
		const struct loinc_test *lt = w->tests[i];
		json_t *sr = json_pack(
			"{s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:[{s:[{s:s, s:s, s:s}]}], s:{s:[{s:s, s:s, s:s}], s:s}, s:o, "
			"s:s, s:o}",
			"resourceType", "ServiceRequest", "requisition", "system", LAB_ORDER_SYSTEM, "value", w->id, "status",
			"active", "intent", "order", "priority", w->priority, "category", "coding", "system",
			"http://snomed.info/sct", "code", "108252007", "display", "Laboratory procedure", "code", "coding",
			"system", LOINC_SYSTEM, "code", lt->code, "display", lt->name, "text", lt->name, "subject",
			ref(r, "Patient", w->patient), "authoredOn", now, "requester", requester_ref(r));
		mu_own(r, sr);
		if (w->encounter)
			json_object_set_new(sr, "encounter", ref(r, "Encounter", w->encounter));
		struct fhir_issues is;
		if (fhir_validate(sr, "ServiceRequest", &is))
			return req_fail(r, MC_EINTERNAL, "internal error", NULL, NULL);
		struct fhir_meta m;
		if ((rc = fhir_store_create(t, "ServiceRequest", sr, &m)))
			return rc;
		snprintf(w->requests[i], sizeof(w->requests[i]), "%s", m.id);
		struct store_arg b[] = {SA_TEXT(w->id), SA_TEXT(lt->code), SA_TEXT(m.id)};
		if ((rc = store_exec(t, "INSERT INTO lab_order_test(order_id, loinc, request_id) VALUES($1, $2, $3)", b, 3)))
			return rc;
		json_array_append_new(ids, json_string(m.id));
		json_array_append_new(codes, json_string(lt->code));
	}
	r->audit.resource_id = arena_strdup(r->arena, w->id);
	return events_emit(t, "lab.order.placed", w->patient, "ServiceRequest", w->id,
			   json_pack("{s:s, s:s, s:O, s:O}", "orderId", w->id, "priority", w->priority, "serviceRequests",
				     ids, "loinc", codes));
}

static int h_order(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"patient", "encounter", "tests", "priority", NULL};
	r->audit.action = "create";
	r->audit.resource_type = "ServiceRequest";
	json_t *body;
	int rc = json_body(r, keys, &body);
	if (rc)
		return rc;
	if (!is_orderer(r))
		return req_fail(r, MC_EFORBIDDEN, "only doctors and nurses order laboratory tests", NULL, NULL);
	struct ord_work *w = arena_zalloc(r->arena, sizeof(*w));
	w->req = r;
	w->patient = mcjson_str(body, "patient");
	w->encounter = mcjson_str(body, "encounter");
	if (!w->patient || !mcid_valid_fhir_id(w->patient))
		return mu_field_fail(r, MC_EINVAL, "patient", "must be a patient id");
	r->audit.patient_id = w->patient;
	if (json_object_get(body, "encounter") && (!w->encounter || !mcid_valid_fhir_id(w->encounter)))
		return mu_field_fail(r, MC_EINVAL, "encounter", "must be an encounter id");
	json_t *pr = json_object_get(body, "priority");
	w->priority = pr ? json_string_value(pr) : "routine";
	if (!w->priority || (strcmp(w->priority, "routine") && strcmp(w->priority, "urgent") && strcmp(w->priority, "stat")))
		return mu_field_fail(r, MC_EINVAL, "priority", "must be routine, urgent or stat");
	json_t *tests = json_object_get(body, "tests");
	if (!json_is_array(tests) || !json_array_size(tests) || json_array_size(tests) > LAB_TESTS_MAX)
		return mu_field_fail(r, MC_EINVAL, "tests", "give 1 to 30 LOINC codes");
	w->n = json_array_size(tests);
	for (size_t i = 0; i < w->n; i++) {
		const char *f = arena_printf(r->arena, "tests[%zu]", i);
		json_t *c = json_array_get(tests, i);
		if (!json_is_string(c))
			return mu_field_fail(r, MC_EINVAL, f, "must be a LOINC code");
		if (!(w->tests[i] = loinc_find(json_string_value(c))))
			return mu_field_fail(r, MC_EINVAL, f, "unknown LOINC code (not in the laboratory catalogue)");
		for (size_t j = 0; j < i; j++)
			if (w->tests[j] == w->tests[i])
				return mu_field_fail(r, MC_EINVAL, f, "ordered twice");
	}
	mcid_new(w->id);
	if ((rc = req_write(r, order_unit, w)))
		return rc;
	json_t *out = json_array();
	for (size_t i = 0; i < w->n; i++)
		json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s}", "loinc", w->tests[i]->code, "name",
						     w->tests[i]->name, "unit", w->tests[i]->unit, "serviceRequest",
						     w->requests[i]));
	return reply_api(rep, r, 201,
			 json_pack("{s:s, s:s, s:s?, s:s, s:s, s:o}", "id", w->id, "patient", w->patient, "encounter",
				   w->encounter, "priority", w->priority, "status", "active", "tests", out),
			 NULL);
}

/* ---- POST /api/v1/lab-orders/{id}/specimen ---- */

struct spec_work {
	struct req *req;
	const char *order, *status, *reason;
	char specimen[65];   /* out */
};

static int specimen_unit(struct store_txn *t, void *arg)
{
	struct spec_work *w = arg;
	struct req *r = w->req;
	struct order_row o;
	int rc = order_load(t, w->order, &o);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "no such lab order", NULL, NULL);
	if (rc)
		return rc;
	r->audit.patient_id = arena_strdup(r->arena, o.patient);
	if ((rc = lab_patient_gate(t, r, o.patient, AUTH_CLINICAL_WRITE)))
		return rc;
	if (strcmp(o.status, "active"))
		return req_fail(r, MC_ECONFLICT, arena_printf(r->arena, "the order is %s", o.status), NULL, NULL);
	struct order_test tests[LAB_TESTS_MAX];
	size_t n;
	if ((rc = tests_load(t, w->order, tests, &n)))
		return rc;
	char now[32];
	int64_t now_ms = mctime_now_ms();
	mctime_format_ms(now_ms, now);
	json_t *sp = NULL;
	struct fhir_meta m = {0};
	if (o.specimen[0]) {
		if ((rc = mu_read(t, r, "Specimen", o.specimen, &sp, &m)))
			return rc == MC_ENOTFOUND ? MC_EINTERNAL : rc;
	} else {
		json_t *reqs = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(reqs, ref(r, "ServiceRequest", tests[i].request));
		sp = mu_own(r, json_pack("{s:s, s:s, s:o, s:o, s:[{s:s, s:s}]}", "resourceType", "Specimen", "status",
					 "available", "subject", ref(r, "Patient", o.patient), "request", reqs,
					 "identifier", "system", LAB_ORDER_SYSTEM, "value", w->order));
	}
	bool collected = json_object_get(sp, "collection") != NULL;
	bool received = json_object_get(sp, "receivedTime") != NULL;
	const char *cur = mcjson_str(sp, "status");
	if (cur && !strcmp(cur, "unsatisfactory"))
		return req_fail(r, MC_ECONFLICT, "the specimen was rejected: collect a new one with a new order", NULL, NULL);
	if (!strcmp(w->status, "collected")) {
		if (collected)
			return req_fail(r, MC_ECONFLICT, "the specimen is already collected", NULL, NULL);
		json_object_set_new(sp, "collection", json_pack("{s:s}", "collectedDateTime", now));
	} else if (!strcmp(w->status, "received")) {
		if (!collected || received)
			return req_fail(r, MC_ECONFLICT,
					received ? "the specimen is already received" : "the specimen is not collected yet",
					NULL, NULL);
		json_object_set_new(sp, "receivedTime", json_string(now));
	} else {
		json_object_set_new(sp, "status", json_string("unsatisfactory"));
		json_object_set_new(sp, "note", json_pack("[{s:s}]", "text", w->reason));
	}
	struct fhir_issues is;
	if (fhir_validate(sp, "Specimen", &is))
		return req_fail(r, MC_EINTERNAL, "internal error", NULL, NULL);
	if (o.specimen[0]) {
		bool created;
		rc = fhir_store_update(t, "Specimen", o.specimen, sp, m.version, &m, &created);
	} else {
		rc = fhir_store_create(t, "Specimen", sp, &m);
	}
	if (rc)
		return rc;
	snprintf(w->specimen, sizeof(w->specimen), "%s", m.id);
	struct store_arg a[] = {SA_TEXT(w->order), SA_TEXT(m.id), SA_INT(now_ms)};
	if ((rc = store_exec(t, "UPDATE lab_order SET specimen_id = $2, updated_ms = $3 WHERE order_id = $1", a, 3)))
		return rc;
	return events_emit(t, "lab.specimen.updated", o.patient, "Specimen", m.id,
			   json_pack("{s:s, s:s, s:s}", "orderId", w->order, "specimenId", m.id, "status", w->status));
}

static int h_specimen(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"status", "reason", NULL};
	struct spec_work w = {.req = r, .order = order_param(r, "update")};
	if (!w.order)
		return MC_ENOTFOUND;
	r->audit.resource_type = "Specimen";
	json_t *body;
	int rc = json_body(r, keys, &body);
	if (rc)
		return rc;
	w.status = mcjson_str(body, "status");
	if (!w.status || (strcmp(w.status, "collected") && strcmp(w.status, "received") && strcmp(w.status, "rejected")))
		return mu_field_fail(r, MC_EINVAL, "status", "must be collected, received or rejected");
	if (!(w.reason = mu_reason(r, body, !strcmp(w.status, "rejected"))))
		return MC_EINVAL;
	if ((rc = req_write(r, specimen_unit, &w)))
		return rc;
	return reply_api(rep, r, 200, json_pack("{s:s, s:s, s:s}", "order", w.order, "specimen", w.specimen, "status", w.status),
			 NULL);
}

/* ---- PUT /api/v1/lab-orders/{id}/status ---- */

struct stat_work {
	struct req *req;
	const char *order, *status, *reason;
	char from[16];   /* out */
};

static int status_unit(struct store_txn *t, void *arg)
{
	struct stat_work *w = arg;
	struct req *r = w->req;
	struct order_row o;
	int rc = order_load(t, w->order, &o);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "no such lab order", NULL, NULL);
	if (rc)
		return rc;
	r->audit.patient_id = arena_strdup(r->arena, o.patient);
	if ((rc = lab_patient_gate(t, r, o.patient, AUTH_CLINICAL_WRITE)))
		return rc;
	snprintf(w->from, sizeof(w->from), "%s", o.status);
	/* active <-> on-hold; either -> revoked (cancelled). revoked and completed are final. */
	bool ok = (!strcmp(o.status, "active") || !strcmp(o.status, "on-hold")) && strcmp(o.status, w->status);
	if (!ok)
		return req_fail(r, MC_ECONFLICT, arena_printf(r->arena, "the order is %s: cannot become %s", o.status, w->status),
				NULL, json_pack("{s:s}", "status", o.status));
	struct order_test tests[LAB_TESTS_MAX];
	size_t n;
	if ((rc = tests_load(t, w->order, tests, &n)) ||
	    (rc = requests_set_status(t, r, tests, n, w->status, w->reason)))
		return rc;
	struct store_arg a[] = {SA_TEXT(w->order), SA_TEXT(w->status), SA_INT(mctime_now_ms())};
	if ((rc = store_exec(t, "UPDATE lab_order SET status = $2, updated_ms = $3 WHERE order_id = $1", a, 3)))
		return rc;
	return events_emit(t, "lab.order.status", o.patient, "ServiceRequest", w->order,
			   json_pack("{s:s, s:s, s:s}", "orderId", w->order, "from", o.status, "status", w->status));
}

static int h_status(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"status", "reason", NULL};
	struct stat_work w = {.req = r, .order = order_param(r, "update")};
	if (!w.order)
		return MC_ENOTFOUND;
	json_t *body;
	int rc = json_body(r, keys, &body);
	if (rc)
		return rc;
	w.status = mcjson_str(body, "status");
	if (!w.status || (strcmp(w.status, "active") && strcmp(w.status, "on-hold") && strcmp(w.status, "revoked")))
		return mu_field_fail(r, MC_EINVAL, "status", "must be active, on-hold or revoked (cancelled)");
	if (!(w.reason = mu_reason(r, body, !strcmp(w.status, "revoked"))))
		return MC_EINVAL;
	if ((rc = req_write(r, status_unit, &w)))
		return rc;
	return reply_api(rep, r, 200, json_pack("{s:s, s:s, s:s}", "id", w.order, "from", w.from, "status", w.status), NULL);
}

/* ---- POST /api/v1/lab-results ---- */

struct res_item {
	const struct loinc_test *test;
	json_t *value;
	double v;
	enum lab_flag flag;
	char observation[65];   /* out */
};

struct res_work {
	struct req *req;
	const char *order, *status;
	struct res_item items[LAB_TESTS_MAX];
	size_t n;
	bool created;                 /* out: first report */
	char report[65];              /* out */
	int64_t tat_ms;               /* out: -1 unless final */
};

static json_t *observation_json(struct res_work *w, const struct order_row *o, const struct order_test *ot,
				const struct res_item *it, const char *now)
{
	struct req *r = w->req;
	const struct loinc_test *lt = it->test;
	json_t *range = json_object();
	if (!isnan(lt->low))
		json_object_set_new(range, "low", quantity(lt->low, lt->unit));
	if (!isnan(lt->high))
		json_object_set_new(range, "high", quantity(lt->high, lt->unit));
	json_object_set_new(range, "text", json_string("typical adult reference interval"));
	json_t *obs = json_pack(
		"{s:s, s:s, s:[o], s:[{s:[{s:s, s:s, s:s}]}], s:{s:[{s:s, s:s, s:s}], s:s}, s:o, s:s, s:s, "
		"s:{s:O, s:s, s:s, s:s}, s:[{s:[{s:s, s:s, s:s}]}], s:[o]}",
		"resourceType", "Observation", "status", w->status, "basedOn", ref(r, "ServiceRequest", ot->request),
		"category", "coding", "system",
		"http://terminology.hl7.org/CodeSystem/observation-category", "code", "laboratory", "display", "Laboratory",
		"code", "coding", "system", LOINC_SYSTEM, "code", lt->code, "display", lt->name, "text", lt->name, "subject",
		ref(r, "Patient", o->patient), "effectiveDateTime", now, "issued", now, "valueQuantity", "value", it->value,
		"unit", lt->unit, "system", UCUM_SYSTEM, "code", lt->unit, "interpretation", "coding", "system",
		INTERP_SYSTEM, "code", lab_flag_code(it->flag), "display", lab_flag_display(it->flag), "referenceRange",
		range);
	return obs;
}

/* preliminary -> preliminary | final; final -> amended; amended -> amended. "" = no report yet. */
static bool status_step_ok(const char *from, const char *to)
{
	if (!*from)
		return strcmp(to, "amended") != 0;
	if (!strcmp(from, "preliminary"))
		return strcmp(to, "amended") != 0;
	return !strcmp(to, "amended");
}

static int results_unit(struct store_txn *t, void *arg)
{
	struct res_work *w = arg;
	struct req *r = w->req;
	struct order_row o;
	int rc = order_load(t, w->order, &o);
	if (rc == MC_ENOTFOUND)
		return mu_field_fail(r, MC_EUNPROC, "order", "no such lab order");
	if (rc)
		return rc;
	r->audit.patient_id = arena_strdup(r->arena, o.patient);
	if ((rc = lab_patient_gate(t, r, o.patient, AUTH_CLINICAL_WRITE)))
		return rc;
	if (!strcmp(o.status, "revoked") || !strcmp(o.status, "on-hold"))
		return req_fail(r, MC_ECONFLICT,
				!strcmp(o.status, "revoked") ? "the order was cancelled" : "the order is on hold", NULL,
				json_pack("{s:s}", "orderStatus", o.status));
	if (!status_step_ok(o.report_status, w->status))
		return req_fail(r, MC_ECONFLICT,
				arena_printf(r->arena, "the report is %s: cannot become %s%s",
					     o.report_status[0] ? o.report_status : "absent", w->status,
					     !strcmp(w->status, "amended") ? "" : " (correct a final report with amended)"),
				NULL, json_pack("{s:s}", "reportStatus", o.report_status));
	struct order_test tests[LAB_TESTS_MAX];
	size_t n;
	if ((rc = tests_load(t, w->order, tests, &n)))
		return rc;
	int64_t now_ms = mctime_now_ms();
	char now[32];
	mctime_format_ms(now_ms, now);
	json_t *obs_ids = mu_own(r, json_array()), *codes = mu_own(r, json_array());
	for (size_t i = 0; i < w->n; i++) {
		struct res_item *it = &w->items[i];
		struct order_test *ot = NULL;
		for (size_t j = 0; j < n && !ot; j++)
			if (!strcmp(tests[j].loinc, it->test->code))
				ot = &tests[j];
		if (!ot)
			return mu_field_fail(r, MC_EUNPROC, arena_printf(r->arena, "results[%zu].loinc", i),
					     "this test was not ordered");
		json_t *obs = mu_own(r, observation_json(w, &o, ot, it, now));
		struct fhir_issues is;
		if (fhir_validate(obs, "Observation", &is))
			return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "results[%zu]", i),
					     arena_strdup(r->arena, is.n ? is.v[0].msg : "invalid"));
		struct fhir_meta m;
		if (ot->observation[0]) {
			bool created;
			rc = fhir_store_update(t, "Observation", ot->observation, obs, 0, &m, &created);
		} else {
			rc = fhir_store_create(t, "Observation", obs, &m);
		}
		if (rc)
			return rc;
		snprintf(ot->observation, sizeof(ot->observation), "%s", m.id);
		snprintf(it->observation, sizeof(it->observation), "%s", m.id);
		struct store_arg a[] = {SA_TEXT(w->order), SA_TEXT(ot->loinc), SA_TEXT(m.id)};
		if ((rc = store_exec(t, "UPDATE lab_order_test SET observation_id = $3 WHERE order_id = $1 AND loinc = $2", a, 3)))
			return rc;
		json_array_append_new(obs_ids, json_string(m.id));
		json_array_append_new(codes, json_string(it->test->code));
		if (lab_flag_critical(it->flag)) {
			struct store_arg c[] = {SA_TEXT(m.id), SA_TEXT(w->order), SA_TEXT(o.patient), SA_TEXT(it->test->code),
						SA_TEXT(lab_flag_code(it->flag)), SA_INT(now_ms)};
			/* a new critical value (also by amendment) needs a new acknowledgement */
			if ((rc = store_exec(t,
					     "INSERT INTO lab_critical(observation_id, order_id, patient_id, loinc, flag, created_ms) "
					     "VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT(observation_id) DO UPDATE SET "
					     "flag = excluded.flag, created_ms = excluded.created_ms, ack_by = NULL, ack_ms = NULL",
					     c, 6)))
				return rc;
			if ((rc = events_emit(t, "lab.result.critical", o.patient, "Observation", m.id,
					      json_pack("{s:s, s:s, s:s, s:s, s:s}", "orderId", w->order, "observationId",
							m.id, "loinc", it->test->code, "interpretation",
							lab_flag_code(it->flag), "status", w->status))))
				return rc;
		}
	}
	/* the report groups every observation of the order so far */
	json_t *results = json_array(), *based = json_array();
	for (size_t j = 0; j < n; j++) {
		json_array_append_new(based, ref(r, "ServiceRequest", tests[j].request));
		if (tests[j].observation[0])
			json_array_append_new(results, ref(r, "Observation", tests[j].observation));
	}
	json_t *code = n == 1 ? json_pack("{s:[{s:s, s:s}], s:s}", "coding", "system", LOINC_SYSTEM, "code", tests[0].loinc,
					  "text", "Laboratory report")
			      : json_pack("{s:s}", "text", "Laboratory report");
	json_t *dr = mu_own(r, json_pack("{s:s, s:s, s:o, s:[{s:[{s:s, s:s, s:s}]}], s:o, s:o, s:s, s:s, s:o}",
					 "resourceType", "DiagnosticReport", "status", w->status, "basedOn", based,
					 "category", "coding", "system", "http://terminology.hl7.org/CodeSystem/v2-0074",
					 "code", "LAB", "display", "Laboratory", "code", code, "subject",
					 ref(r, "Patient", o.patient), "effectiveDateTime", now, "issued", now, "result",
					 results));
	int64_t final_ms = o.has_final ? o.final_ms : (!strcmp(w->status, "final") ? now_ms : -1);
	w->tat_ms = final_ms >= 0 ? final_ms - o.ordered_ms : -1;
	if (w->tat_ms >= 0) {
		json_object_set_new(dr, "extension", json_pack("[{s:s, s:{s:o, s:s, s:s, s:s}}]", "url", LAB_TAT_URL,
								"valueDuration", "value", minutes(w->tat_ms), "unit",
								"min", "system", UCUM_SYSTEM, "code", "min"));
	}
	struct fhir_issues is;
	if (fhir_validate(dr, "DiagnosticReport", &is))
		return req_fail(r, MC_EINTERNAL, "internal error", NULL, NULL);
	struct fhir_meta dm;
	if (o.report[0]) {
		bool created;
		rc = fhir_store_update(t, "DiagnosticReport", o.report, dr, 0, &dm, &created);
	} else {
		rc = fhir_store_create(t, "DiagnosticReport", dr, &dm);
		w->created = true;
	}
	if (rc)
		return rc;
	snprintf(w->report, sizeof(w->report), "%s", dm.id);
	r->audit.resource_id = arena_strdup(r->arena, dm.id);
	bool final = strcmp(w->status, "preliminary") != 0;
	if (final && !strcmp(o.status, "active") && (rc = requests_set_status(t, r, tests, n, "completed", NULL)))
		return rc;
	struct store_arg a[] = {SA_TEXT(w->order), SA_TEXT(dm.id), SA_TEXT(w->status), SA_INT(now_ms),
				final_ms >= 0 ? SA_INT(final_ms) : SA_NULL(), SA_TEXT(final ? "completed" : o.status)};
	if ((rc = store_exec(t,
			     "UPDATE lab_order SET report_id = $2, report_status = $3, result_ms = $4, updated_ms = $4, "
			     "final_ms = $5, status = $6 WHERE order_id = $1",
			     a, 6)))
		return rc;
	const char *ev = !strcmp(w->status, "final") ? "lab.result.final"
			 : !strcmp(w->status, "amended") ? "lab.result.amended" : "lab.result.preliminary";
	json_t *payload = json_pack("{s:s, s:s, s:s, s:O, s:O}", "orderId", w->order, "reportId", dm.id, "status",
				    w->status, "observations", obs_ids, "loinc", codes);
	if (w->tat_ms >= 0)
		json_object_set_new(payload, "turnaroundMs", json_integer(w->tat_ms));
	return events_emit(t, ev, o.patient, "DiagnosticReport", dm.id, payload);
}

static int h_results(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"order", "results", "status", NULL};
	static const char *const ikeys[] = {"loinc", "value", "unit", NULL};
	r->audit.action = "create";
	r->audit.resource_type = "DiagnosticReport";
	json_t *body;
	int rc = json_body(r, keys, &body);
	if (rc)
		return rc;
	if (!is_lab(r))
		return req_fail(r, MC_EFORBIDDEN, "results are entered by the laboratory", NULL, NULL);
	struct res_work *w = arena_zalloc(r->arena, sizeof(*w));
	w->req = r;
	w->order = mcjson_str(body, "order");
	if (!w->order || !mcid_valid_fhir_id(w->order))
		return mu_field_fail(r, MC_EINVAL, "order", "must be a lab order id");
	w->status = mcjson_str(body, "status");
	if (!w->status ||
	    (strcmp(w->status, "preliminary") && strcmp(w->status, "final") && strcmp(w->status, "amended")))
		return mu_field_fail(r, MC_EINVAL, "status", "must be preliminary, final or amended");
	json_t *res = json_object_get(body, "results");
	if (!json_is_array(res) || !json_array_size(res) || json_array_size(res) > LAB_TESTS_MAX)
		return mu_field_fail(r, MC_EINVAL, "results", "give 1 to 30 results");
	w->n = json_array_size(res);
	for (size_t i = 0; i < w->n; i++) {
		json_t *it = json_array_get(res, i);
		char *pfx = arena_printf(r->arena, "results[%zu].", i);
		if (!json_is_object(it))
			return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "results[%zu]", i), "must be an object");
		/* interpretation, referenceRange... are refused here: they are computed, never taken */
		if ((rc = mu_known_keys(r, it, pfx, ikeys)))
			return rc;
		struct res_item *ri = &w->items[i];
		if (!(ri->test = loinc_find(mcjson_str(it, "loinc"))))
			return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "%sloinc", pfx),
					     "unknown LOINC code (not in the laboratory catalogue)");
		for (size_t j = 0; j < i; j++)
			if (w->items[j].test == ri->test)
				return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "%sloinc", pfx), "given twice");
		ri->value = json_object_get(it, "value");
		ri->v = mcjson_number_value(ri->value);
		if (!mcjson_is_number(ri->value) || !isfinite(ri->v) || fabs(ri->v) > 1e9)
			return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "%svalue", pfx), "must be a number");
		const char *unit = mcjson_str(it, "unit");
		if (!unit || strcmp(unit, ri->test->unit))
			return req_fail(r, MC_EINVAL,
					arena_printf(r->arena, "%sunit: must be %s (UCUM) for LOINC %s", pfx, ri->test->unit,
						     ri->test->code),
					NULL,
					json_pack("{s:s, s:s}", "field", arena_printf(r->arena, "%sunit", pfx), "expected",
						  ri->test->unit));
		ri->flag = loinc_interpret(ri->test, ri->v);
	}
	if ((rc = req_write(r, results_unit, w)))
		return rc;
	json_t *out = json_array();
	for (size_t i = 0; i < w->n; i++) {
		const struct res_item *ri = &w->items[i];
		json_t *range = json_object();
		if (!isnan(ri->test->low))
			json_object_set_new(range, "low", dec(ri->test->low));
		if (!isnan(ri->test->high))
			json_object_set_new(range, "high", dec(ri->test->high));
		json_array_append_new(out, json_pack("{s:s, s:s, s:O, s:s, s:s, s:b, s:o}", "loinc", ri->test->code,
						     "observation", ri->observation, "value", ri->value, "unit",
						     ri->test->unit, "interpretation", lab_flag_code(ri->flag), "critical",
						     lab_flag_critical(ri->flag), "referenceRange", range));
	}
	json_t *data = json_pack("{s:s, s:s, s:s, s:o}", "order", w->order, "report", w->report, "status", w->status,
				 "results", out);
	if (w->tat_ms >= 0)
		json_object_set_new(data, "turnaroundMinutes", minutes(w->tat_ms));
	return reply_api(rep, r, w->created ? 201 : 200, data, NULL);
}

/* ---- GET /api/v1/lab-results/patient/{patientId} ---- */

struct hist_work {
	struct req *req;
	const char *patient;
	json_t *out;
};

static int history_unit(struct store_txn *t, void *arg)
{
	struct hist_work *w = arg;
	struct req *r = w->req;
	json_t *pat;
	int rc = mu_read(t, r, "Patient", w->patient, &pat, NULL);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "no such patient", NULL, NULL);
	if (rc || (rc = lab_patient_gate(t, r, w->patient, AUTH_CLINICAL_READ)))
		return rc;
	struct store_arg a[] = {SA_TEXT(w->patient), SA_INT(LAB_HISTORY_MAX)};
	struct store_rows *rows;
	if ((rc = store_query(t,
			      "SELECT order_id, priority, status, report_id, report_status, ordered_ms, final_ms FROM lab_order "
			      "WHERE patient_id = $1 ORDER BY ordered_ms DESC, order_id LIMIT $2",
			      a, 2, &rows)))
		return rc;
	/* collect the rows first: reading resources while the cursor is open is fine, but keep it simple */
	struct {
		char id[65], report[65];
	} ids[LAB_HISTORY_MAX];
	size_t n = 0;
	int step;
	while ((step = store_rows_next(rows)) == 1 && n < LAB_HISTORY_MAX) {
		char ts[32];
		mctime_format_ms(store_rows_int(rows, 5), ts);
		json_t *e = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "order", store_rows_text(rows, 0), "priority",
				      store_rows_text(rows, 1), "orderStatus", store_rows_text(rows, 2), "reportStatus",
				      store_rows_text(rows, 4), "ordered", ts);
		if (!store_rows_null(rows, 6))
			json_object_set_new(e, "turnaroundMinutes",
					    minutes(store_rows_int(rows, 6) - store_rows_int(rows, 5)));
		json_array_append_new(w->out, e);
		snprintf(ids[n].id, sizeof(ids[n].id), "%s", store_rows_text(rows, 0));
		const char *rep = store_rows_text(rows, 3);
		snprintf(ids[n].report, sizeof(ids[n].report), "%s", rep ? rep : "");
		n++;
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	for (size_t i = 0; i < n; i++) {
		if (!ids[i].report[0])
			continue;
		json_t *dr, *e = json_array_get(w->out, i);
		if ((rc = mu_read(t, r, "DiagnosticReport", ids[i].report, &dr, NULL)))
			return rc == MC_ENOTFOUND ? MC_EINTERNAL : rc;
		json_object_set(e, "report", dr);
		json_t *obs = json_array(), *x;
		size_t k;
		json_object_set_new(e, "observations", obs);
		json_array_foreach(json_object_get(dr, "result"), k, x) {
			const char *s = mcjson_str(x, "reference");
			json_t *o;
			if (s && !strncmp(s, "Observation/", 12) && !mu_read(t, r, "Observation", s + 12, &o, NULL))
				json_array_append(obs, o);
		}
	}
	return MC_OK;
}

static int h_history(struct req *r, struct reply *rep)
{
	struct hist_work w = {.req = r, .patient = req_param(r, "patientId")};
	r->audit.action = "search";
	r->audit.resource_type = "DiagnosticReport";
	r->audit.patient_id = w.patient;
	if (!w.patient || !mcid_valid_fhir_id(w.patient))
		return req_fail(r, MC_ENOTFOUND, "no such patient", NULL, NULL);
	w.out = mu_own(r, json_array());
	int rc = store_read(r->app->store, history_unit, &w);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_incref(w.out), NULL);
}

/* ---- POST /api/v1/lab-results/{id}/acknowledge ---- */

struct ack_work {
	struct req *req;
	const char *obs;
	bool already;
	int64_t ack_ms;
	char flag[8];
};

static int ack_unit(struct store_txn *t, void *arg)
{
	struct ack_work *w = arg;
	struct req *r = w->req;
	struct store_arg a[] = {SA_TEXT(w->obs), SA_INT(r->who->user_id), SA_INT(mctime_now_ms())};
	struct store_rows *rows;
	int rc = store_query(t, "SELECT patient_id, flag, ack_ms FROM lab_critical WHERE observation_id = $1", a, 1, &rows);
	if (rc)
		return rc;
	char pid[65] = "";
	int step = store_rows_next(rows);
	if (step == 1) {
		snprintf(pid, sizeof(pid), "%s", store_rows_text(rows, 0));
		snprintf(w->flag, sizeof(w->flag), "%s", store_rows_text(rows, 1));
		w->already = !store_rows_null(rows, 2);
		w->ack_ms = store_rows_int(rows, 2);
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	if (step == 0)
		return req_fail(r, MC_ENOTFOUND, "no critical result with this id", NULL, NULL);
	r->audit.patient_id = arena_strdup(r->arena, pid);
	if ((rc = lab_patient_gate(t, r, pid, AUTH_CLINICAL_WRITE)))
		return rc;
	if (w->already)
		return MC_OK;
	w->ack_ms = a[2].i;
	if ((rc = store_exec(t, "UPDATE lab_critical SET ack_by = $2, ack_ms = $3 WHERE observation_id = $1", a, 3)))
		return rc;
	return events_emit(t, "lab.result.critical.acknowledged", pid, "Observation", w->obs,
			   json_pack("{s:s, s:I}", "observationId", w->obs, "by", (json_int_t)r->who->user_id));
}

static int h_ack(struct req *r, struct reply *rep)
{
	struct ack_work w = {.req = r, .obs = req_param(r, "id")};
	r->audit.action = "update";
	r->audit.resource_type = "Observation";
	r->audit.resource_id = w.obs;
	if (!w.obs || !mcid_valid_fhir_id(w.obs))
		return req_fail(r, MC_ENOTFOUND, "no critical result with this id", NULL, NULL);
	if (r->who->role != ROLE_DOCTOR && r->who->role != ROLE_NURSE)
		return req_fail(r, MC_EFORBIDDEN, "critical results are acknowledged by doctors and nurses", NULL, NULL);
	int rc = req_write(r, ack_unit, &w);
	if (rc)
		return rc;
	char ts[32];
	mctime_format_ms(w.ack_ms, ts);
	return reply_api(rep, r, 200,
			 json_pack("{s:s, s:s, s:s, s:b}", "observation", w.obs, "interpretation", w.flag, "acknowledged", ts,
				   "alreadyAcknowledged", w.already),
			 NULL);
}

static const struct route routes[] = {
	{"POST", "/api/v1/lab-orders", h_order, ROUTE_WRITE | ROUTE_PHI, "access:lab_results", 16384,
	 "Order laboratory tests: one ServiceRequest per LOINC code"},
	{"POST", "/api/v1/lab-orders/{id}/specimen", h_specimen, ROUTE_WRITE | ROUTE_PHI, "access:lab_results", 4096,
	 "Specimen tracking: collected, received or rejected"},
	{"PUT", "/api/v1/lab-orders/{id}/status", h_status, ROUTE_WRITE | ROUTE_PHI, "access:lab_results", 4096,
	 "Put an order on hold, resume it, or cancel it (revoked)"},
	{"POST", "/api/v1/lab-results", h_results, ROUTE_WRITE | ROUTE_PHI, "access:lab_results", 65536,
	 "Enter results (preliminary, final, amended): interpretation computed from the reference ranges"},
	{"GET", "/api/v1/lab-results/patient/{patientId}", h_history, ROUTE_PHI, "access:lab_results", 0,
	 "A patient's lab orders with their reports and observations, newest first"},
	{"POST", "/api/v1/lab-results/{id}/acknowledge", h_ack, ROUTE_WRITE | ROUTE_PHI, "access:lab_results", 1024,
	 "Acknowledge a critical result (an Observation flagged LL or HH)"},
};

const struct route_table lab_routes = {routes, sizeof(routes) / sizeof(routes[0])};
