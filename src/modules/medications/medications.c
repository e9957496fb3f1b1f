/* modules/medications/medications.c — /api/v1/prescriptions: prescribe, list, dispense, work list,
 * cancel and stop. See medications.h for the record, access rules, errors and events.
 *
 * Handlers validate the body without the database (codes, numbers), then run one write unit that
 * checks the patient and the relation, writes the FHIR resources, the med_supply rows, the events
 * and (req_write) the audit record together.
 */
#include "modules/medications/medications.h"

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
#include "modules/medications/modutil.h"
#include "modules/medications/rxnorm.h"
#include "store/store.h"

#define NAME_MAX_LEN 200
#define UNIT_MAX_LEN 32
#define DURATION_MAX_DAYS 365
#define LOT_MAX_LEN 64
#define UCUM_SYSTEM_MED "http://unitsofmeasure.org"

/* ---- shared ---- */

/* Pharmacists reach a patient through the prescription (see medications.h); everyone else
 * through auth_patient_access. *bg set when only break-the-glass allowed it. */
static int med_patient_gate(struct store_txn *t, struct req *r, const char *pid, enum auth_access what, bool *bg)
{
	*bg = false;
	if (r->who && r->who->role == ROLE_PHARMACIST && what == AUTH_CLINICAL_READ)
		return MC_OK;
	int rc = auth_patient_access(t, r->who, pid, what, bg);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "this patient is not in your care", NULL, NULL);
	if (rc == MC_OK && *bg)
		r->audit.reason = "break-the-glass";
	return rc;
}

static json_t *requester_ref(const struct req *r)
{
	if (r->who->practitioner_id[0])
		return json_pack("{s:s}", "reference", arena_printf(r->arena, "Practitioner/%s", r->who->practitioner_id));
	return json_pack("{s:s}", "display", r->who->username);
}

static const char *prescription_param(struct req *r, const char *action)
{
	const char *id = req_param(r, "id");
	r->audit.action = action;
	r->audit.resource_type = "MedicationRequest";
	r->audit.resource_id = id;
	if (!id || !mcid_valid_fhir_id(id)) {
		req_fail(r, MC_ENOTFOUND, "no such prescription", NULL, NULL);
		return NULL;
	}
	return id;
}

/* Thousandths of a unit as a JSON number: an integer when whole, else an exact decimal. */
static json_t *milli_json(long long m)
{
	if (m % 1000 == 0)
		return json_integer(m / 1000);
	char s[40];
	int n = snprintf(s, sizeof(s), "%s%lld.%03lld", m < 0 ? "-" : "", llabs(m) / 1000, llabs(m) % 1000);
	while (n > 0 && s[n - 1] == '0')
		s[--n] = 0;   /* "1.500" -> "1.5" (never reaches the point: m % 1000 != 0) */
	return mcjson_decimal(s);
}

/* ---- POST /api/v1/prescriptions ---- */

struct rx_item {
	const struct rxnorm_drug *drug;   /* NULL: name-only */
	const char *name;
	json_t *dose;                     /* number from the body (lexeme kept) */
	const char *unit;
	const struct med_route *route;
	const struct med_freq *freq;
	json_int_t days, refills;
	json_t *quantity;
	long long qty_milli, allowed_milli;
	char id[65];                      /* out: the MedicationRequest id */
};

struct rx_work {
	struct req *req;
	const char *patient, *encounter;
	struct rx_item *items;
	size_t n;
	char group[MCID_LEN + 1];
};

static int parse_item(struct req *r, json_t *it, size_t i, struct rx_item *out, json_t *warnings)
{
	static const char *const keys[] = {"rxnorm", "name", "dose", "unit", "route", "frequency", "durationDays",
					   "quantity", "refills", NULL};
	char *pfx = arena_printf(r->arena, "items[%zu].", i);
#define F(name) arena_printf(r->arena, "%s%s", pfx, name)
	if (!json_is_object(it))
		return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "items[%zu]", i), "must be an object");
	int rc = mu_known_keys(r, it, pfx, keys);
	if (rc)
		return rc;
	json_t *code = json_object_get(it, "rxnorm"), *name = json_object_get(it, "name");
	if (code && !json_is_string(code))
		return mu_field_fail(r, MC_EINVAL, F("rxnorm"), "must be a string");
	if (name && (!json_is_string(name) || !*json_string_value(name) || strlen(json_string_value(name)) > NAME_MAX_LEN))
		return mu_field_fail(r, MC_EINVAL, F("name"), "must be a string of 1 to 200 characters");
	if (code) {
		out->drug = rxnorm_find(json_string_value(code));
		if (!out->drug)
			return mu_field_fail(r, MC_EINVAL, F("rxnorm"), "unknown RxNorm code (not in the formulary subset)");
		out->name = name ? json_string_value(name) : out->drug->name;
	} else if (name) {
		out->name = json_string_value(name);
		json_array_append_new(warnings, json_pack("{s:s, s:s}", "field", F("rxnorm"), "message",
							  "no RxNorm code: name-only item, not checked against the formulary"));
	} else {
		return mu_field_fail(r, MC_EINVAL, F("rxnorm"), "give an RxNorm code (or at least a name)");
	}
	out->dose = json_object_get(it, "dose");
	if (!mcjson_is_number(out->dose) || !(mcjson_number_value(out->dose) > 0) ||
	    mcjson_number_value(out->dose) > 1e6)
		return mu_field_fail(r, MC_EINVAL, F("dose"), "must be a positive number");
	json_t *unit = json_object_get(it, "unit");
	if (!json_is_string(unit) || !*json_string_value(unit) || strlen(json_string_value(unit)) > UNIT_MAX_LEN)
		return mu_field_fail(r, MC_EINVAL, F("unit"), "must be a unit such as mg, mL or tablet");
	out->unit = json_string_value(unit);
	out->route = med_route_find(mcjson_str(it, "route"));
	if (!out->route)
		return mu_field_fail(r, MC_EINVAL, F("route"), "must be one of PO IV IM SC SL PR TOP INH NAS OPH OT TD");
	out->freq = med_freq_find(mcjson_str(it, "frequency"));
	if (!out->freq)
		return mu_field_fail(r, MC_EINVAL, F("frequency"),
				     "must be one of QD BID TID QID Q4H Q6H Q8H Q12H QHS QW PRN STAT");
	json_t *days = json_object_get(it, "durationDays");
	if (!json_is_integer(days) || json_integer_value(days) < 1 || json_integer_value(days) > DURATION_MAX_DAYS)
		return mu_field_fail(r, MC_EINVAL, F("durationDays"), "must be an integer from 1 to 365");
	out->days = json_integer_value(days);
	out->quantity = json_object_get(it, "quantity");
	if (!mcjson_is_number(out->quantity) || med_qty_milli(mcjson_number_value(out->quantity), &out->qty_milli))
		return mu_field_fail(r, MC_EINVAL, F("quantity"), "must be a positive number (at most 3 decimals)");
	json_t *refills = json_object_get(it, "refills");
	if (refills && (!json_is_integer(refills) || json_integer_value(refills) < 0 || json_integer_value(refills) > 99))
		return mu_field_fail(r, MC_EINVAL, F("refills"), "must be an integer from 0 to 99");
	out->refills = refills ? json_integer_value(refills) : 0;
	if (med_budget_milli(out->qty_milli, out->refills, &out->allowed_milli))
		return mu_field_fail(r, MC_EINVAL, F("quantity"), "too large");
#undef F
	return MC_OK;
}

static json_t *med_concept(const struct rx_item *it)
{
	json_t *c = json_pack("{s:s}", "text", it->name);
	if (it->drug)
		json_object_set_new(c, "coding", json_pack("[{s:s, s:s, s:s}]", "system", RXNORM_SYSTEM, "code",
							   it->drug->code, "display", it->drug->name));
	return c;
}

/* The number's text as the client wrote it. */
static const char *num_text(struct req *r, const json_t *n)
{
	if (json_is_integer(n))
		return arena_printf(r->arena, "%lld", (long long)json_integer_value(n));
	const char *d = mcjson_decimal_text(n);
	return d ? d : arena_printf(r->arena, "%g", mcjson_number_value(n));
}

static json_t *build_request(struct rx_work *w, const struct rx_item *it, const char *now)
{
	struct req *r = w->req;
	json_t *repeat = json_object();
	if (it->freq->frequency) {
		json_object_set_new(repeat, "frequency", json_integer(it->freq->frequency));
		json_object_set_new(repeat, "period", json_integer((json_int_t)it->freq->period));
		json_object_set_new(repeat, "periodUnit", json_string(it->freq->period_unit));
	} else {
		json_object_set_new(repeat, "count", json_integer(1));
	}
	json_object_set_new(repeat, "boundsDuration", json_pack("{s:I, s:s, s:s, s:s}", "value", (json_int_t)it->days,
								"unit", "d", "system", UCUM_SYSTEM_MED, "code", "d"));
	json_t *dosage = json_pack(
		"{s:s, s:{s:o, s:{s:s}}, s:b, s:{s:[{s:s, s:s, s:s}], s:s}, s:[{s:{s:O, s:s}}]}", "text",
		arena_printf(r->arena, "%s %s %s %s for %lld days", num_text(r, it->dose), it->unit, it->route->code,
			     it->freq->code, (long long)it->days),
		"timing", "repeat", repeat, "code", "text", it->freq->code, "asNeededBoolean", it->freq->as_needed,
		"route", "coding", "system", "http://snomed.info/sct", "code", it->route->snomed, "display",
		it->route->display, "text", it->route->code, "doseAndRate", "doseQuantity", "value", it->dose, "unit",
		it->unit);
	json_t *mr = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:o, s:{s:s}, s:s, s:o, s:[o], s:{s:I, s:{s:O}, "
			       "s:{s:I, s:s, s:s, s:s}}}",
			       "resourceType", "MedicationRequest", "status", "active", "intent", "order",
			       "groupIdentifier", "system", MED_GROUP_SYSTEM, "value", w->group,
			       "medicationCodeableConcept", med_concept(it), "subject", "reference",
			       arena_printf(r->arena, "Patient/%s", w->patient), "authoredOn", now, "requester",
			       requester_ref(r), "dosageInstruction", dosage, "dispenseRequest",
			       "numberOfRepeatsAllowed", (json_int_t)it->refills, "quantity", "value", it->quantity,
			       "expectedSupplyDuration", "value", (json_int_t)it->days, "unit", "d", "system",
			       UCUM_SYSTEM_MED, "code", "d");
	if (w->encounter)
		json_object_set_new(mr, "encounter",
				    json_pack("{s:s}", "reference", arena_printf(r->arena, "Encounter/%s", w->encounter)));
	return mr;
}

static int prescribe_unit(struct store_txn *t, void *arg)
{
	struct rx_work *w = arg;
	struct req *r = w->req;
	json_t *pat, *enc;
	int rc = mu_read(t, r, "Patient", w->patient, &pat, NULL);
	if (rc == MC_ENOTFOUND)
		return mu_field_fail(r, MC_EUNPROC, "patient", "no such patient");
	if (rc)
		return rc;
	bool bg;
	rc = med_patient_gate(t, r, w->patient, AUTH_CLINICAL_WRITE, &bg);
	if (rc)
		return rc;
	if (w->encounter) {
		rc = mu_read(t, r, "Encounter", w->encounter, &enc, NULL);
		if (rc == MC_ENOTFOUND || (rc == MC_OK && !mu_ref_is(json_object_get(enc, "subject"), "Patient", w->patient)))
			return mu_field_fail(r, MC_EUNPROC, "encounter", "no such encounter for this patient");
		if (rc)
			return rc;
	}
	char now[32];
	int64_t now_ms = mctime_now_ms();
	mctime_format_ms(now_ms, now);
	json_t *ids = json_array(), *codes = json_array();
	mu_own(r, ids);
	mu_own(r, codes);
	for (size_t i = 0; i < w->n; i++) {
		struct rx_item *it = &w->items[i];
		json_t *mr = mu_own(r, build_request(w, it, now));
		struct fhir_issues is;
		if (fhir_validate(mr, "MedicationRequest", &is))
			return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "items[%zu]", i),
					     arena_strdup(r->arena, is.n ? is.v[0].msg : "invalid"));
		struct fhir_meta m;
		rc = fhir_store_create(t, "MedicationRequest", mr, &m);
		if (rc)
			return rc;
		snprintf(it->id, sizeof(it->id), "%s", m.id);
		struct store_arg a[] = {SA_TEXT(it->id),         SA_TEXT(w->group),
					SA_TEXT(w->patient),     SA_TEXT(it->drug ? it->drug->code : NULL),
					SA_INT(r->who->user_id), SA_INT(it->allowed_milli),
					SA_INT(now_ms)};
		rc = store_exec(t,
				"INSERT INTO med_supply(request_id, group_id, patient_id, rxnorm, prescriber, allowed_milli, "
				"dispensed_milli, status, created_ms, updated_ms) VALUES($1, $2, $3, $4, $5, $6, 0, 'active', $7, $7)",
				a, 7);
		if (rc)
			return rc;
		json_array_append_new(ids, json_string(m.id));
		json_array_append_new(codes, it->drug ? json_string(it->drug->code) : json_null());
	}
	r->audit.resource_id = arena_strdup(r->arena, w->group);
	return events_emit(t, "prescription.issued", w->patient, "MedicationRequest", w->group,
			   json_pack("{s:s, s:O, s:O, s:I}", "prescriptionId", w->group, "medicationRequests", ids,
				     "rxnorm", codes, "items", (json_int_t)w->n));
}

static int h_prescribe(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"patient", "encounter", "items", NULL};
	json_t *body;
	int rc = req_json(r, &body);
	if (rc)
		return rc;
	r->audit.action = "create";
	r->audit.resource_type = "MedicationRequest";
	if (!json_is_object(body))
		return req_fail(r, MC_EINVAL, "the body must be a JSON object", NULL, NULL);
	if ((rc = mu_known_keys(r, body, "", keys)))
		return rc;
	struct rx_work w = {.req = r, .patient = mcjson_str(body, "patient"), .encounter = mcjson_str(body, "encounter")};
	if (!w.patient || !mcid_valid_fhir_id(w.patient))
		return mu_field_fail(r, MC_EINVAL, "patient", "must be a patient id");
	r->audit.patient_id = w.patient;
	if (json_object_get(body, "encounter") && (!w.encounter || !mcid_valid_fhir_id(w.encounter)))
		return mu_field_fail(r, MC_EINVAL, "encounter", "must be an encounter id");
	json_t *items = json_object_get(body, "items");
	if (!json_is_array(items) || !json_array_size(items) || json_array_size(items) > MED_ITEMS_MAX)
		return mu_field_fail(r, MC_EINVAL, "items", "give 1 to 20 items");
	w.n = json_array_size(items);
	w.items = arena_zalloc(r->arena, w.n * sizeof(*w.items));
	json_t *warnings = mu_own(r, json_array());
	for (size_t i = 0; i < w.n; i++)
		if ((rc = parse_item(r, json_array_get(items, i), i, &w.items[i], warnings)))
			return rc;
	mcid_new(w.group);
	rc = req_write(r, prescribe_unit, &w);
	if (rc)
		return rc;
	json_t *out = json_array();
	for (size_t i = 0; i < w.n; i++) {
		const struct rx_item *it = &w.items[i];
		json_array_append_new(out, json_pack("{s:s, s:s?, s:s, s:O, s:I, s:o}", "medicationRequest", it->id,
						     "rxnorm", it->drug ? it->drug->code : NULL, "name", it->name,
						     "quantity", it->quantity, "refills", (json_int_t)it->refills,
						     "maxDispensable", milli_json(it->allowed_milli)));
	}
	reply_header(rep, r, "Location", arena_printf(r->arena, "/api/v1/prescriptions/%s/medications", w.group));
	return reply_api(rep, r, 201,
			 json_pack("{s:s, s:s, s:s?, s:s, s:o, s:O}", "id", w.group, "patient", w.patient, "encounter",
				   w.encounter, "status", "active", "medications", out, "warnings", warnings),
			 NULL);
}

/* ---- med_supply rows of one prescription ---- */

struct supply_row {
	char request_id[65], patient[65], rxnorm[16], status[16];
	long long allowed, dispensed;
};

#define SUPPLY_COLS "request_id, patient_id, rxnorm, status, allowed_milli, dispensed_milli"

static void supply_fill(struct store_rows *rows, struct supply_row *s)
{
	memset(s, 0, sizeof(*s));
	const char *v;
	snprintf(s->request_id, sizeof(s->request_id), "%s", (v = store_rows_text(rows, 0)) ? v : "");
	snprintf(s->patient, sizeof(s->patient), "%s", (v = store_rows_text(rows, 1)) ? v : "");
	snprintf(s->rxnorm, sizeof(s->rxnorm), "%s", (v = store_rows_text(rows, 2)) ? v : "");
	snprintf(s->status, sizeof(s->status), "%s", (v = store_rows_text(rows, 3)) ? v : "");
	s->allowed = store_rows_int(rows, 4);
	s->dispensed = store_rows_int(rows, 5);
}

/* Every row of prescription gid (at most MED_ITEMS_MAX). *n = 0 when none. */
static int supply_load(struct store_txn *t, const char *gid, struct supply_row *out, size_t *n)
{
	struct store_arg a[] = {SA_TEXT(gid)};
	struct store_rows *rows;
	*n = 0;
	int rc = store_query(t, "SELECT " SUPPLY_COLS " FROM med_supply WHERE group_id = $1 ORDER BY created_ms, request_id",
			     a, 1, &rows);
	if (rc)
		return rc;
	int step;
	while (*n < MED_ITEMS_MAX && (step = store_rows_next(rows)) == 1)
		supply_fill(rows, &out[(*n)++]);
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}


/* ---- GET /api/v1/prescriptions/{id}/medications ---- */

struct list_work {
	struct req *req;
	const char *gid;
	json_t *out;
};

static int list_unit(struct store_txn *t, void *arg)
{
	struct list_work *w = arg;
	struct req *r = w->req;
	struct supply_row rows[MED_ITEMS_MAX];
	size_t n;
	int rc = supply_load(t, w->gid, rows, &n);
	if (rc)
		return rc;
	if (!n)
		return req_fail(r, MC_ENOTFOUND, "no such prescription", NULL, NULL);
	r->audit.patient_id = arena_strdup(r->arena, rows[0].patient);
	bool bg;
	if ((rc = med_patient_gate(t, r, rows[0].patient, AUTH_CLINICAL_READ, &bg)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		json_t *mr;
		if ((rc = mu_read(t, r, "MedicationRequest", rows[i].request_id, &mr, NULL)))
			return rc == MC_ENOTFOUND ? MC_EINTERNAL : rc;
		json_array_append_new(w->out, json_pack("{s:O, s:{s:o, s:o, s:o}}", "medicationRequest", mr, "supply",
							"maxDispensable", milli_json(rows[i].allowed), "dispensed",
							milli_json(rows[i].dispensed), "remaining",
							milli_json(rows[i].allowed - rows[i].dispensed)));
	}
	return MC_OK;
}

static int h_list(struct req *r, struct reply *rep)
{
	struct list_work w = {.req = r, .gid = prescription_param(r, "read")};
	if (!w.gid)
		return MC_ENOTFOUND;
	w.out = mu_own(r, json_array());
	int rc = store_read(r->app->store, list_unit, &w);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_pack("{s:s, s:O}", "id", w.gid, "medications", w.out), NULL);
}

/* ---- PUT /api/v1/prescriptions/{id}/dispense ---- */

struct disp_item {
	const char *request_id;
	json_t *quantity;
	long long qty_milli;
	const char *lot;
	char dispense_id[65];             /* out */
	long long remaining;              /* out */
};

struct disp_work {
	struct req *req;
	const char *gid;
	struct disp_item *items;
	size_t n;
};

static int dispense_one(struct store_txn *t, struct disp_work *w, struct disp_item *it, size_t i,
			const struct supply_row *row, const char *now, int64_t now_ms)
{
	struct req *r = w->req;
	const char *field = arena_printf(r->arena, "items[%zu].quantity", i);
	if (strcmp(row->status, "active"))
		return req_fail(r, MC_ECONFLICT, arena_printf(r->arena, "items[%zu]: the medication request is %s", i, row->status),
				NULL, json_pack("{s:s, s:s}", "field", arena_printf(r->arena, "items[%zu].medicationRequest", i),
						"status", row->status));
	struct store_arg a[] = {SA_TEXT(it->request_id), SA_INT(it->qty_milli), SA_INT(now_ms)};
	/* the guard: one statement, so nothing can interleave between the check and the increment */
	int rc = store_exec(t,
			    "UPDATE med_supply SET dispensed_milli = dispensed_milli + $2, updated_ms = $3, "
			    "status = CASE WHEN dispensed_milli + $2 = allowed_milli THEN 'completed' ELSE status END "
			    "WHERE request_id = $1 AND status = 'active' AND dispensed_milli + $2 <= allowed_milli",
			    a, 3);
	if (rc)
		return rc;
	if (store_changes(t) != 1) {
		long long left = 0;
		int64_t v;
		if (!store_query_int(t, "SELECT allowed_milli - dispensed_milli FROM med_supply WHERE request_id = $1", a, 1, &v))
			left = v;
		return req_fail(r, MC_ECONFLICT,
				arena_printf(r->arena, "%s: exceeds what remains of quantity x (1 + refills)", field), NULL,
				json_pack("{s:s, s:o}", "field", field, "remaining", milli_json(left)));
	}
	int64_t left = 0;
	if ((rc = store_query_int(t, "SELECT allowed_milli - dispensed_milli FROM med_supply WHERE request_id = $1", a, 1, &left)))
		return rc;
	it->remaining = left;
	json_t *mr;
	struct fhir_meta mm;
	if ((rc = mu_read(t, r, "MedicationRequest", it->request_id, &mr, &mm)))
		return rc == MC_ENOTFOUND ? MC_EINTERNAL : rc;
	json_t *md = json_pack("{s:s, s:s, s:O, s:O, s:[{s:s}], s:{s:O}, s:s}", "resourceType", "MedicationDispense",
			       "status", "completed", "medicationCodeableConcept",
			       json_object_get(mr, "medicationCodeableConcept"), "subject", json_object_get(mr, "subject"),
			       "authorizingPrescription", "reference",
			       arena_printf(r->arena, "MedicationRequest/%s", it->request_id), "quantity", "value",
			       it->quantity, "whenHandedOver", now);
	mu_own(r, md);
	if (r->who->practitioner_id[0])
		json_object_set_new(md, "performer",
				    json_pack("[{s:{s:s}}]", "actor", "reference",
					      arena_printf(r->arena, "Practitioner/%s", r->who->practitioner_id)));
	if (it->lot)
		json_object_set_new(md, "extension", json_pack("[{s:s, s:s}]", "url", "urn:medcore:dispense-lot",
								"valueString", it->lot));
	struct fhir_issues is;
	if (fhir_validate(md, "MedicationDispense", &is))
		return req_fail(r, MC_EINVAL, arena_strdup(r->arena, is.n ? is.v[0].msg : "invalid dispense"), NULL, NULL);
	struct fhir_meta dm;
	if ((rc = fhir_store_create(t, "MedicationDispense", md, &dm)))
		return rc;
	snprintf(it->dispense_id, sizeof(it->dispense_id), "%s", dm.id);
	if (left == 0) {
		/* fully dispensed: the request is complete (a new version) */
		json_object_set_new(mr, "status", json_string("completed"));
		bool created;
		if ((rc = fhir_store_update(t, "MedicationRequest", it->request_id, mr, mm.version, &mm, &created)))
			return rc;
	}
	return events_emit(t, "prescription.dispensed", row->patient, "MedicationDispense", dm.id,
			   json_pack("{s:s, s:s, s:s, s:s?, s:O, s:o}", "prescriptionId", w->gid, "medicationRequest",
				     it->request_id, "medicationDispense", dm.id, "rxnorm",
				     row->rxnorm[0] ? row->rxnorm : NULL, "quantity", it->quantity, "remaining",
				     milli_json(left)));
}

static int dispense_unit(struct store_txn *t, void *arg)
{
	struct disp_work *w = arg;
	struct req *r = w->req;
	struct supply_row rows[MED_ITEMS_MAX];
	size_t n;
	int rc = supply_load(t, w->gid, rows, &n);
	if (rc)
		return rc;
	if (!n)
		return req_fail(r, MC_ENOTFOUND, "no such prescription", NULL, NULL);
	r->audit.patient_id = arena_strdup(r->arena, rows[0].patient);
	char now[32];
	int64_t now_ms = mctime_now_ms();
	mctime_format_ms(now_ms, now);
	for (size_t i = 0; i < w->n; i++) {
		struct disp_item *it = &w->items[i];
		const struct supply_row *row = NULL;
		for (size_t j = 0; j < n && !row; j++)
			if (!strcmp(rows[j].request_id, it->request_id))
				row = &rows[j];
		if (!row)
			return mu_field_fail(r, MC_EUNPROC, arena_printf(r->arena, "items[%zu].medicationRequest", i),
					     "not a medication request of this prescription");
		/* rows[] is a snapshot from before this unit's earlier items: re-read the status */
		struct store_arg a[] = {SA_TEXT(it->request_id)};
		char *st = NULL;
		if ((rc = store_query_text(t, "SELECT status FROM med_supply WHERE request_id = $1", a, 1, &st)))
			return rc;
		struct supply_row cur = *row;
		snprintf(cur.status, sizeof(cur.status), "%s", st);
		free(st);
		if ((rc = dispense_one(t, w, it, i, &cur, now, now_ms)))
			return rc;
	}
	return MC_OK;
}

static int h_dispense(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"items", NULL};
	static const char *const ikeys[] = {"medicationRequest", "quantity", "lot", NULL};
	struct disp_work w = {.req = r, .gid = prescription_param(r, "update")};
	if (!w.gid)
		return MC_ENOTFOUND;
	json_t *body;
	int rc = req_json(r, &body);
	if (rc)
		return rc;
	if (!json_is_object(body))
		return req_fail(r, MC_EINVAL, "the body must be a JSON object", NULL, NULL);
	if ((rc = mu_known_keys(r, body, "", keys)))
		return rc;
	json_t *items = json_object_get(body, "items");
	if (!json_is_array(items) || !json_array_size(items) || json_array_size(items) > MED_ITEMS_MAX)
		return mu_field_fail(r, MC_EINVAL, "items", "give 1 to 20 items");
	w.n = json_array_size(items);
	w.items = arena_zalloc(r->arena, w.n * sizeof(*w.items));
	for (size_t i = 0; i < w.n; i++) {
		json_t *it = json_array_get(items, i);
		char *pfx = arena_printf(r->arena, "items[%zu].", i);
		if (!json_is_object(it))
			return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "items[%zu]", i), "must be an object");
		if ((rc = mu_known_keys(r, it, pfx, ikeys)))
			return rc;
		struct disp_item *d = &w.items[i];
		d->request_id = mcjson_str(it, "medicationRequest");
		if (!d->request_id || !mcid_valid_fhir_id(d->request_id))
			return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "%smedicationRequest", pfx),
					     "must be a MedicationRequest id");
		d->quantity = json_object_get(it, "quantity");
		if (!mcjson_is_number(d->quantity) || med_qty_milli(mcjson_number_value(d->quantity), &d->qty_milli))
			return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "%squantity", pfx),
					     "must be a positive number (at most 3 decimals)");
		json_t *lot = json_object_get(it, "lot");
		if (lot && (!json_is_string(lot) || !*json_string_value(lot) || strlen(json_string_value(lot)) > LOT_MAX_LEN))
			return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "%slot", pfx), "must be 1 to 64 characters");
		d->lot = lot ? json_string_value(lot) : NULL;
	}
	rc = req_write(r, dispense_unit, &w);
	if (rc)
		return rc;
	json_t *out = json_array();
	for (size_t i = 0; i < w.n; i++)
		json_array_append_new(out, json_pack("{s:s, s:s, s:O, s:o}", "medicationRequest", w.items[i].request_id,
						     "medicationDispense", w.items[i].dispense_id, "quantity",
						     w.items[i].quantity, "remaining", milli_json(w.items[i].remaining)));
	return reply_api(rep, r, 200, json_pack("{s:s, s:o}", "id", w.gid, "dispensed", out), NULL);
}

/* ---- GET /api/v1/prescriptions/pending-dispensing ---- */

struct pend_work {
	struct req *req;
	json_t *out;
};

static int pending_unit(struct store_txn *t, void *arg)
{
	struct pend_work *w = arg;
	struct store_arg a[] = {SA_INT(MED_PENDING_MAX)};
	struct store_rows *rows;
	int rc = store_query(t,
			     "SELECT request_id, patient_id, rxnorm, status, allowed_milli, dispensed_milli, group_id, created_ms "
			     "FROM med_supply WHERE status = 'active' AND dispensed_milli < allowed_milli "
			     "ORDER BY created_ms, request_id LIMIT $1",
			     a, 1, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1) {
		struct supply_row s;
		supply_fill(rows, &s);
		char ts[32];
		mctime_format_ms(store_rows_int(rows, 7), ts);
		json_array_append_new(w->out, json_pack("{s:s, s:s, s:s, s:s?, s:o, s:o, s:o, s:s}", "prescriptionId",
							store_rows_text(rows, 6), "medicationRequest", s.request_id,
							"patient", s.patient, "rxnorm", s.rxnorm[0] ? s.rxnorm : NULL,
							"maxDispensable", milli_json(s.allowed), "dispensed",
							milli_json(s.dispensed), "remaining", milli_json(s.allowed - s.dispensed),
							"prescribed", ts));
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

static int h_pending(struct req *r, struct reply *rep)
{
	r->audit.action = "search";
	r->audit.resource_type = "MedicationRequest";
	struct pend_work w = {.req = r, .out = mu_own(r, json_array())};
	int rc = store_read(r->app->store, pending_unit, &w);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_incref(w.out), NULL);
}

/* ---- POST /api/v1/prescriptions/{id}/cancel and /stop ---- */

struct end_work {
	struct req *req;
	const char *gid, *reason;
	bool cancel;            /* cancel: nothing dispensed yet; stop: no further dispensing */
	json_t *ids;            /* out */
};

static int end_unit(struct store_txn *t, void *arg)
{
	struct end_work *w = arg;
	struct req *r = w->req;
	struct supply_row rows[MED_ITEMS_MAX];
	size_t n;
	int rc = supply_load(t, w->gid, rows, &n);
	if (rc)
		return rc;
	if (!n)
		return req_fail(r, MC_ENOTFOUND, "no such prescription", NULL, NULL);
	r->audit.patient_id = arena_strdup(r->arena, rows[0].patient);
	bool bg;
	if ((rc = med_patient_gate(t, r, rows[0].patient, AUTH_CLINICAL_WRITE, &bg)))
		return rc;
	const char *to = w->cancel ? "cancelled" : "stopped";
	for (size_t i = 0; i < n; i++) {
		if (w->cancel && rows[i].dispensed > 0)
			return req_fail(r, MC_ECONFLICT, "part of this prescription was dispensed: stop it instead", NULL, NULL);
		if (strcmp(rows[i].status, "active"))
			continue;
		struct store_arg a[] = {SA_TEXT(rows[i].request_id), SA_TEXT(to), SA_INT(mctime_now_ms())};
		if ((rc = store_exec(t, "UPDATE med_supply SET status = $2, updated_ms = $3 WHERE request_id = $1", a, 3)))
			return rc;
		json_t *mr;
		struct fhir_meta m;
		if ((rc = mu_read(t, r, "MedicationRequest", rows[i].request_id, &mr, &m)))
			return rc == MC_ENOTFOUND ? MC_EINTERNAL : rc;
		json_object_set_new(mr, "status", json_string(to));
		json_object_set_new(mr, "statusReason", json_pack("{s:s}", "text", w->reason));
		bool created;
		if ((rc = fhir_store_update(t, "MedicationRequest", rows[i].request_id, mr, m.version, &m, &created)))
			return rc;
		json_array_append_new(w->ids, json_string(rows[i].request_id));
	}
	if (!json_array_size(w->ids))
		return req_fail(r, MC_ECONFLICT, "no active medication request left in this prescription", NULL, NULL);
	return events_emit(t, w->cancel ? "prescription.cancelled" : "prescription.stopped", rows[0].patient,
			   "MedicationRequest", w->gid,
			   json_pack("{s:s, s:O}", "prescriptionId", w->gid, "medicationRequests", w->ids));
}

static int end_common(struct req *r, struct reply *rep, bool cancel)
{
	static const char *const keys[] = {"reason", NULL};
	struct end_work w = {.req = r, .gid = prescription_param(r, "update"), .cancel = cancel};
	if (!w.gid)
		return MC_ENOTFOUND;
	json_t *body;
	int rc = req_json(r, &body);
	if (rc)
		return rc;
	if (!json_is_object(body))
		return req_fail(r, MC_EINVAL, "the body must be a JSON object", NULL, NULL);
	if ((rc = mu_known_keys(r, body, "", keys)))
		return rc;
	if (!(w.reason = mu_reason(r, body, true)))
		return MC_EINVAL;
	w.ids = mu_own(r, json_array());
	if ((rc = req_write(r, end_unit, &w)))
		return rc;
	return reply_api(rep, r, 200,
			 json_pack("{s:s, s:s, s:O}", "id", w.gid, "status", cancel ? "cancelled" : "stopped",
				   "medicationRequests", w.ids),
			 NULL);
}

static int h_cancel(struct req *r, struct reply *rep) { return end_common(r, rep, true); }
static int h_stop(struct req *r, struct reply *rep) { return end_common(r, rep, false); }

static const struct route routes[] = {
	{"POST", "/api/v1/prescriptions", h_prescribe, ROUTE_WRITE | ROUTE_PHI, "prescribe:medication", 65536,
	 "Prescribe: one MedicationRequest per item, tied by groupIdentifier"},
	{"GET", "/api/v1/prescriptions/pending-dispensing", h_pending, ROUTE_PHI, "manage:inventory", 0,
	 "Pharmacy work list: active medication requests not yet fully dispensed"},
	{"GET", "/api/v1/prescriptions/{id}/medications", h_list, ROUTE_PHI, "read:patient_data", 0,
	 "The medication requests of a prescription with what was dispensed"},
	{"PUT", "/api/v1/prescriptions/{id}/dispense", h_dispense, ROUTE_WRITE | ROUTE_PHI, "manage:inventory", 16384,
	 "Dispense (partially or fully): never more than quantity x (1 + refills)"},
	{"POST", "/api/v1/prescriptions/{id}/cancel", h_cancel, ROUTE_WRITE | ROUTE_PHI, "prescribe:medication", 4096,
	 "Cancel a prescription nothing of which was dispensed"},
	{"POST", "/api/v1/prescriptions/{id}/stop", h_stop, ROUTE_WRITE | ROUTE_PHI, "prescribe:medication", 4096,
	 "Stop a prescription: no further dispensing"},
};

const struct route_table medications_routes = {routes, sizeof(routes) / sizeof(routes[0])};
